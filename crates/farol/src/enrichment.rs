//! The data behind enrichment and routing, loaded from the store and the farol directory.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use farol_enrich::constituency::Constituency;
use farol_enrich::ipdata::{Dataset, DatasetMeta, Format, IpData, stored};
use farol_enrich::warninglist::Warninglists;
use farol_enrich::{Enricher, Live, Snapshot};
use farol_model::expert::Expert;
use farol_pipeline::{Experts, Feed};
use farol_store::Store;

use crate::config::{Config, read_warninglist};

/// The active IP datasets, the organizations and the warninglists, as they are now.
pub fn snapshot(config: &Config, store: &dyn Store) -> Result<Snapshot> {
    let mut datasets = Vec::new();
    for record in store.datasets(false)? {
        let bytes = store.dataset_data(record.id)?;
        let loaded = stored::decode(&bytes).ok_or_else(|| {
            anyhow!("IP dataset {} is damaged in the store: load its file again with `farol ipdata load`", record.name)
        })?;
        let meta = DatasetMeta {
            id: record.id,
            name: record.name,
            version: record.version,
            format: Format::parse(&record.format).unwrap_or(Format::Csv),
            priority: record.priority,
        };
        datasets.push(Dataset::build(meta, loaded));
    }
    let lists = config
        .warninglists
        .iter()
        .map(|p| read_warninglist(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!(e))?;
    Ok(Snapshot {
        ipdata: IpData::new(datasets),
        constituency: Constituency::new(&store.orgs()?, config.country()),
        warninglists: Warninglists::new(lists),
    })
}

/// What the snapshot is built from, summed up: it changes when a dataset is loaded or removed,
/// an organization or its networks change, or a warninglist file changes.
pub fn fingerprint(config: &Config, store: &dyn Store) -> Result<u64> {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for d in store.datasets(false)? {
        d.id.hash(&mut h);
    }
    format!("{:?}", store.orgs()?).hash(&mut h);
    for path in &config.warninglists {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        (path, modified).hash(&mut h);
    }
    Ok(h.finish())
}

/// Each feed's expert chain, with the snapshot current when a report starts.
pub fn experts(live: Arc<Live>) -> Experts {
    Arc::new(move |feed: &Feed| {
        vec![Box::new(Enricher::new(live.current(), feed.drop_warninglisted)) as Box<dyn Expert>]
    })
}

/// Experts for one command's run.
pub fn load(config: &Config, store: &dyn Store) -> Result<Experts> {
    Ok(experts(Arc::new(Live::new(snapshot(config, store)?))))
}
