//! The dashboard's figures: exact counts over a window, per distinct access filter, kept for a
//! minute. A stale figure is served while one task recounts it, so no page waits for a count
//! over millions of events once the first one is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use farol_model::org::OrgId;
use farol_store::{EventQuery, Tally};

use crate::{App, Failure};

/// How long figures are served without recounting.
const FRESH: Duration = Duration::from_secs(60);
/// Figures nobody asked for in this long are forgotten.
const FORGOTTEN: Duration = Duration::from_secs(600);

/// What the dashboard shows for one access filter and window.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    pub(crate) tally: Tally,
    /// The organizations' names, as they were at the count.
    pub(crate) names: HashMap<OrgId, String>,
}

struct Entry {
    counted: Instant,
    figures: Arc<Figures>,
    recounting: bool,
}

/// Figures by access filter and window.
#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<String, Entry>>,
    /// Held while figures nobody has yet are counted, so that a crowd of first requests
    /// counts them once.
    first: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dashboard::Cache")
    }
}

impl App {
    /// The figures for `query`; `window` names its time range (`24h`), which its timestamps
    /// cannot do from one request to the next.
    pub(crate) async fn figures(self: &Arc<Self>, window: &str, query: EventQuery) -> Result<Arc<Figures>, Failure> {
        let key = format!("{window} {:?}", query.visible);
        if let Some(figures) = self.cached(&key, &query) {
            return Ok(figures);
        }
        let _first = self.dashboards.first.lock().await;
        if let Some(figures) = self.cached(&key, &query) {
            return Ok(figures);
        }
        let figures = self.count(query).await?;
        self.remember(key, Ok(Arc::clone(&figures)));
        Ok(figures)
    }

    /// The figures kept for `key`, if any; when they are over a minute old, one task
    /// recounts them meanwhile.
    fn cached(self: &Arc<Self>, key: &str, query: &EventQuery) -> Option<Arc<Figures>> {
        let mut entries = self.dashboards.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get_mut(key)?;
        if entry.counted.elapsed() >= FRESH && !entry.recounting {
            entry.recounting = true;
            let (app, key, query) = (Arc::clone(self), key.to_owned(), query.clone());
            tokio::spawn(async move {
                let counted = app.count(query).await;
                app.remember(key, counted);
            });
        }
        Some(Arc::clone(&entry.figures))
    }

    async fn count(self: &Arc<Self>, query: EventQuery) -> Result<Arc<Figures>, Failure> {
        self.blocking(move |s| {
            let tally = s.tally(&query)?;
            let names = s.orgs()?.into_iter().map(|o| (o.id, o.name)).collect();
            Ok(Arc::new(Figures { tally, names }))
        })
        .await
    }

    fn remember(&self, key: String, counted: Result<Arc<Figures>, Failure>) {
        let mut cache = self.dashboards.entries.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, e| e.counted.elapsed() < FORGOTTEN);
        match counted {
            Ok(figures) => {
                cache.insert(key, Entry { counted: Instant::now(), figures, recounting: false });
            }
            Err(e) => {
                tracing::error!(error = %e.message, "cannot count the dashboard's figures; showing the last ones");
                if let Some(entry) = cache.get_mut(&key) {
                    entry.recounting = false;
                }
            }
        }
    }
}
