//! The TAXII 2.1 client: pulls a partner center's collection into indicators (origin: the
//! partner, its TLP as marked, never lowered) and pushes one of ours to it. Pulls resume after
//! the last date added seen (kept in the store after every page), page with `next` or, where a
//! server gives none, with `added_after`; pushes resume after the last version sent. Nothing
//! goes back where it came from: what a partner sent is never pushed to it.

use std::time::Duration;

use farol_model::indicator::Origin;
use farol_model::org::Distribution;
use farol_model::{Timestamp, error_chain};
use farol_store::{Grant, IndicatorQuery, Store, Version};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::http::{HttpConfig, checked_url, client, expand, shown};

const TAXII: &str = "application/taxii+json;version=2.1";
/// Pages read in one exchange at most: a server that always says "more" cannot hold farol;
/// the next exchange goes on from the checkpoint.
const MAX_PAGES: u64 = 10_000;

/// A partner center, as `[partners.NAME]` gives it.
#[derive(Debug, Clone)]
pub struct Partner {
    pub name: String,
    /// Our center's name: the identity of what we push.
    pub center: String,
    /// The partner's collection (`https://.../api-root/collections/ID/`), its credentials
    /// (`username` and `password`, or a token in `headers`) and limits.
    pub http: HttpConfig,
    /// How what it sends is shared onwards.
    pub distribution: Distribution,
    pub community: Option<i64>,
    /// Ours to push to it, as the store reads it (a collection's grant).
    pub push: Option<Grant>,
    /// Objects asked for per page.
    pub page: usize,
}

/// What one exchange did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    pub pages: u64,
    pub objects: u64,
    /// Indicators new or changed here.
    pub kept: u64,
    /// Indicators farol does not keep (patterns of several observables, other pattern languages).
    pub skipped: u64,
    pub pushed: u64,
}

/// What the store remembers of a partner between exchanges.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The last date added pulled (the partner's clock, as it wrote it).
    added_after: Option<String>,
    /// The last version of ours pushed.
    pushed: Option<(i64, i64)>,
}

fn state_key(name: &str) -> String {
    format!("partner:{name}")
}

/// Pulls what is new in the partner's collection, then pushes what is new of ours.
pub async fn exchange(store: &dyn Store, partner: &Partner) -> Result<Exchange, Error> {
    let url = checked_url(&partner.http)?;
    if !url.path().ends_with('/') {
        return Err(Error::Fetch(format!(
            "url {}: expected the partner's collection, .../collections/ID/",
            shown(&url)
        )));
    }
    let http = client(&partner.http)?;
    let key = state_key(&partner.name);
    let mut state: State =
        store.collector_state(&key)?.map(|s| serde_json::from_str(&s).unwrap_or_default()).unwrap_or_default();
    let mut done = Exchange::default();
    let origin = Origin::Partner(partner.name.clone());
    let mut next: Option<String> = None;
    loop {
        let mut page_url = url.join("objects/").map_err(|e| Error::Fetch(e.to_string()))?;
        {
            let mut q = page_url.query_pairs_mut();
            q.append_pair("limit", &partner.page.to_string());
            if let Some(a) = &state.added_after {
                q.append_pair("added_after", a);
            }
            if let Some(n) = &next {
                q.append_pair("next", n);
            }
        }
        let response = send(partner, http.get(page_url.clone())).await?;
        let last_added = header(&response, "x-taxii-date-added-last");
        let body: Value = json(response, &page_url).await?;
        done.pages += 1;
        let objects = body.get("objects").and_then(Value::as_array).cloned().unwrap_or_default();
        done.objects += objects.len() as u64;
        let now = Timestamp::now();
        for o in &objects {
            match farol_share::stix::read_indicator(o) {
                Ok(r) => {
                    let i = r.into_indicator(origin.clone(), partner.distribution, partner.community, Vec::new(), now);
                    if store.put_indicator(&i, now)?.modified >= now {
                        done.kept += 1;
                    }
                }
                // The identity, markings, observables, sightings that come with them are context.
                Err(_) if o.get("type").and_then(Value::as_str) == Some("indicator") => done.skipped += 1,
                Err(_) => {}
            }
        }
        let more = body.get("more").and_then(Value::as_bool).unwrap_or(false);
        next = body.get("next").and_then(Value::as_str).map(str::to_owned);
        if let Some(last) = last_added.filter(|_| !objects.is_empty()) {
            // Without `next`, the next page starts after this one's last date added.
            if next.is_none() || !more {
                state.added_after = Some(last);
            }
        }
        if !more || objects.is_empty() || done.pages >= MAX_PAGES {
            break;
        }
        if next.is_none() {
            store.set_collector_state(&key, &serde_json::to_string(&state).unwrap_or_default())?;
        }
    }
    store.set_collector_state(&key, &serde_json::to_string(&state).unwrap_or_default())?;
    if let Some(grant) = partner.push {
        done.pushed = push(store, partner, &http, &url, grant, &mut state).await?;
        store.set_collector_state(&key, &serde_json::to_string(&state).unwrap_or_default())?;
    }
    Ok(done)
}

/// Sends the versions of ours after the last one sent, in envelopes of a page each.
async fn push(
    store: &dyn Store,
    partner: &Partner,
    http: &reqwest::Client,
    url: &reqwest::Url,
    grant: Grant,
    state: &mut State,
) -> Result<u64, Error> {
    let producer = farol_share::stix::Producer { name: partner.center.clone() };
    let origin = Origin::Partner(partner.name.clone());
    let target = url.join("objects/").map_err(|e| Error::Fetch(e.to_string()))?;
    let mut pushed = 0;
    loop {
        let after = state.pushed.map(|(modified, id)| Version { modified, id });
        let q = IndicatorQuery { grants: vec![grant], after, limit: partner.page, ..Default::default() };
        let batch = store.indicators(&q)?;
        let Some(last) = batch.last() else { break };
        let last = (last.modified.micros(), last.id);
        // Nothing goes back where it came from.
        let objects: Vec<Value> =
            batch.iter().filter(|i| i.origin != origin).flat_map(|i| producer.objects(i).into_iter().take(1)).collect();
        if !objects.is_empty() {
            let body = json!({ "objects": objects }).to_string();
            let request = http.post(target.clone()).header(reqwest::header::CONTENT_TYPE, TAXII).body(body);
            let status: Value = json(send(partner, request).await?, &target).await?;
            pushed += status.get("success_count").and_then(Value::as_u64).unwrap_or(0);
        }
        state.pushed = Some(last);
        if batch.len() < partner.page {
            break;
        }
    }
    Ok(pushed)
}

/// Sends a request with the partner's credentials; an error says what the partner answered.
async fn send(partner: &Partner, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
    let mut request = request.header(reqwest::header::ACCEPT, TAXII);
    for (name, value) in &partner.http.headers {
        request = request.header(name.as_str(), expand(value)?);
    }
    if let Some(user) = &partner.http.username {
        let password = partner.http.password.as_deref().map(expand).transpose()?;
        request = request.basic_auth(expand(user)?, password);
    }
    let response = request
        .timeout(Duration::from_secs(partner.http.timeout_secs))
        .send()
        .await
        .map_err(|e| Error::Fetch(format!("partner {}: {}", partner.name, error_chain(&e))))?;
    if !response.status().is_success() {
        let status = response.status();
        let text: String = response.text().await.unwrap_or_default().chars().take(300).collect();
        return Err(Error::Fetch(format!("partner {} answered {status}: {text}", partner.name)));
    }
    Ok(response)
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn json(response: reqwest::Response, url: &reqwest::Url) -> Result<Value, Error> {
    let bytes = response.bytes().await.map_err(|e| Error::Fetch(format!("{}: {e}", shown(url))))?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| Error::Fetch(format!("{}: not JSON: {e}", shown(url))))
}
