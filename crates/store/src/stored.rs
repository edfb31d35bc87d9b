//! Events as both backends read them back: the row's columns, then the decoded event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use farol_model::org::OrgId;
use farol_model::{Event, EventHash, Position, ReportId, Routing, Scope, Timestamp};

use crate::{Aggregate, Result, StoreError, StoredEvent};

/// Decoded base events (`reports.common`), keyed by their stored bytes: a base that changes
/// (a report processed again with a new configuration) is simply another key.
#[derive(Debug, Default)]
pub(crate) struct Bases(Mutex<HashMap<Vec<u8>, Arc<Event>>>);

impl Bases {
    pub(crate) fn get(&self, blob: &[u8]) -> Result<Arc<Event>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(base) = map.get(blob) {
            return Ok(base.clone());
        }
        let base = if blob.is_empty() {
            Event::default()
        } else {
            Event::decode(blob).map_err(|e| StoreError::Corrupt(format!("report base: {e}")))?
        };
        // Bases are small and few; a bound keeps a long-running server from collecting them all.
        if map.len() > 4096 {
            map.clear();
        }
        let base = Arc::new(base);
        map.insert(blob.to_vec(), base.clone());
        Ok(base)
    }
}

/// A row as read, before its event is decoded.
pub(crate) struct RawEvent {
    pub(crate) id: i64,
    pub(crate) report: i64,
    pub(crate) feed: String,
    pub(crate) hash: i64,
    pub(crate) offset: i64,
    pub(crate) len: i64,
    pub(crate) data: Vec<u8>,
    pub(crate) common: Option<Vec<u8>>,
    pub(crate) orgs: Vec<i64>,
    pub(crate) scope: i64,
    pub(crate) aggregated: bool,
    pub(crate) time: i64,
}

impl RawEvent {
    /// Decodes the event against its report's base; `aggregate`: the observations it stands
    /// for, when it is aggregated.
    pub(crate) fn decode(self, bases: &Bases, aggregate: Option<Aggregate>) -> Result<StoredEvent> {
        let base = bases.get(self.common.as_deref().unwrap_or_default())?;
        let event = Event::decode_delta(&self.data, &base)
            .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", self.id)))?;
        Ok(StoredEvent {
            id: self.id,
            report: ReportId(self.report),
            feed: self.feed,
            hash: EventHash(u64::from_be_bytes(self.hash.to_be_bytes())),
            position: Position { offset: self.offset.unsigned_abs(), len: self.len.unsigned_abs(), line: None },
            event,
            filed: Timestamp::from_micros(self.time).unwrap_or_else(Timestamp::now),
            routing: Routing { orgs: self.orgs.into_iter().map(OrgId).collect(), scope: Scope::from_code(self.scope) },
            aggregate,
        })
    }
}

/// An aggregate as its parts sum up: (count, first seen, last seen).
pub(crate) fn aggregate(count: i64, first_seen: i64, last_seen: i64) -> Aggregate {
    let time = |t: i64| Timestamp::from_micros(t).unwrap_or_else(Timestamp::now);
    Aggregate { count: count.unsigned_abs(), first_seen: time(first_seen), last_seen: time(last_seen) }
}
