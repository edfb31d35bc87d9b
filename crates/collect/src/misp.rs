//! The MISP feed collector: a MISP feed (`manifest.json`, then one `UUID.json` per event) is
//! read as MISP instances read it. Each event newer than the last one taken is fetched and
//! ingested as a report of its own, in the order of their timestamps; what was taken is kept
//! in the store after each event, so that an interrupted run resumes where it stopped.

use std::collections::BTreeMap;

use farol_pipeline::Feed;
use serde_json::Value;

use crate::http::{HttpConfig, checked_url, client, download, get, shown};
use crate::{Context, Error, Run, ingest_temporary};

/// The largest manifest accepted.
const MAX_MANIFEST: usize = 64 << 20;

/// An event's UUID as a feed may name it: nothing that could leave the feed's directory.
fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

pub(crate) async fn run(ctx: &Context, feed: &Feed, config: &HttpConfig) -> Result<Run, Error> {
    let mut base = checked_url(config)?;
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let client = client(config)?;
    let manifest_url = base.join("manifest.json").map_err(|e| Error::Fetch(e.to_string()))?;
    let response = get(&client, config, &manifest_url, &[]).await?;
    if !response.status().is_success() {
        return Err(Error::Fetch(format!("{} answered {}", shown(&manifest_url), response.status())));
    }
    let bytes = response.bytes().await.map_err(|e| Error::Fetch(format!("{}: {e}", shown(&manifest_url))))?;
    if bytes.len() > MAX_MANIFEST {
        return Err(Error::Fetch(format!("{} is larger than {MAX_MANIFEST} bytes", shown(&manifest_url))));
    }
    let manifest: BTreeMap<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Fetch(format!("{} is not a MISP manifest: {e}", shown(&manifest_url))))?;
    let (store, name) = (ctx.store.clone(), feed.name.clone());
    let text = tokio::task::spawn_blocking(move || store.collector_state(&name)).await.ok().transpose()?.flatten();
    let mut taken: BTreeMap<String, i64> = text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    // MISP writes timestamps as numbers or as strings of digits.
    let stamp =
        |v: &Value| v.get("timestamp").and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok())).unwrap_or(0);
    let mut due: Vec<(i64, &String)> = manifest
        .iter()
        .filter(|(uuid, entry)| is_uuid(uuid) && taken.get(*uuid).is_none_or(|t| stamp(entry) > *t))
        .map(|(uuid, entry)| (stamp(entry), uuid))
        .collect();
    due.sort();
    let mut run = Run { unchanged: due.is_empty(), ..Run::default() };
    std::fs::create_dir_all(&ctx.workdir)?;
    for (timestamp, uuid) in due {
        let url = base.join(&format!("{uuid}.json")).map_err(|e| Error::Fetch(e.to_string()))?;
        let response = get(&client, config, &url, &[]).await?;
        if !response.status().is_success() {
            return Err(Error::Fetch(format!("{} answered {}", shown(&url), response.status())));
        }
        let tmp = ctx.workdir.join(format!("misp-{}-{uuid}.part", feed.name));
        if let Err(e) = download(response, &tmp, config.max_bytes, &url).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        run.ingested.extend(ingest_temporary(ctx, feed, &tmp, Some(format!("{uuid}.json"))).await?);
        taken.insert(uuid.clone(), timestamp);
        let (store, name, text) =
            (ctx.store.clone(), feed.name.clone(), serde_json::to_string(&taken).unwrap_or_default());
        tokio::task::spawn_blocking(move || store.set_collector_state(&name, &text)).await.ok().transpose()?;
    }
    Ok(run)
}
