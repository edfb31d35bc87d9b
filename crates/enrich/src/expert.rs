//! The enrichment expert: fills what the IP data knows, marks warninglist hits, routes.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use compact_str::CompactString;
use farol_model::expert::{Expert, Verdict};
use farol_model::{Event, Field, Record};
use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::constituency::Constituency;
use crate::ipdata::{DatasetMeta, IpData};
use crate::warninglist::Warninglists;

/// Where each field that enrichment filled came from: `{"source.asn": "ip2asn#3", ...}`.
pub const PROVENANCE: &str = "enrichment";
/// What the IP data says where the feed said otherwise: `{"source.asn": 3243}`.
pub const DIFFERS: &str = "enrichment_differs";
/// The warninglists the event's source is on.
pub const WARNINGLISTS: &str = "warninglists";

/// Everything enrichment and routing need, loaded once and shared by every report processed
/// while it is current.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub ipdata: IpData,
    pub constituency: Constituency,
    pub warninglists: Warninglists,
}

/// The current snapshot, replaced whole when data changes: reports being processed keep the
/// one they started with, the next ones get the new one.
#[derive(Debug, Default)]
pub struct Live(RwLock<Arc<Snapshot>>);

impl Live {
    pub fn new(snapshot: Snapshot) -> Live {
        Live(RwLock::new(Arc::new(snapshot)))
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn replace(&self, snapshot: Snapshot) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(snapshot);
    }
}

/// The expert. `drop_warninglisted` drops events whose source is on a warninglist instead of
/// marking them (a feed's `warninglisted = "drop"`).
#[derive(Debug)]
pub struct Enricher {
    snapshot: Arc<Snapshot>,
    drop_warninglisted: bool,
    /// The provenance object last built: nearly every event of a report has the same one.
    last: Mutex<Option<(Ids, Value)>>,
}

impl Enricher {
    pub fn new(snapshot: Arc<Snapshot>, drop_warninglisted: bool) -> Enricher {
        Enricher { snapshot, drop_warninglisted, last: Mutex::default() }
    }

    /// [`enrich`], with the provenance object built once per combination of datasets.
    fn enrich(&self, event: &mut Event) {
        let sources = fill(&self.snapshot.ipdata, event);
        if sources.iter().all(Option::is_none) {
            return;
        }
        let ids: Ids = sources.map(|d| d.map(|d| d.id));
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let value = match &*last {
            Some((known, value)) if *known == ids => value.clone(),
            _ => last.insert((ids, provenance(&sources))).1.clone(),
        };
        event.extra.insert(PROVENANCE, value);
    }
}

/// The fields enrichment fills, source side then destination side, each side in the order
/// AS number, AS name, network, country.
const FILLED: [Field; 8] = [
    Field::SourceAsn,
    Field::SourceAsName,
    Field::SourceNetwork,
    Field::SourceGeolocationCc,
    Field::DestinationAsn,
    Field::DestinationAsName,
    Field::DestinationNetwork,
    Field::DestinationGeolocationCc,
];

/// Which dataset filled each of [`FILLED`], if one did.
type Sources<'a> = [Option<&'a DatasetMeta>; 8];
/// The same by dataset id, by which the provenance object is cached.
type Ids = [Option<i64>; 8];

/// One side's address and the fields enrichment fills, borrowed together.
struct Slots<'e> {
    ip: Option<IpAddr>,
    asn: &'e mut Option<u32>,
    as_name: &'e mut Option<CompactString>,
    network: &'e mut Option<IpNet>,
    cc: &'e mut Option<CompactString>,
}

fn slots(e: &mut Event) -> [Slots<'_>; 2] {
    [
        Slots {
            ip: e.source_ip,
            asn: &mut e.source_asn,
            as_name: &mut e.source_as_name,
            network: &mut e.source_network,
            cc: &mut e.source_geolocation_cc,
        },
        Slots {
            ip: e.destination_ip,
            asn: &mut e.destination_asn,
            as_name: &mut e.destination_as_name,
            network: &mut e.destination_network,
            cc: &mut e.destination_geolocation_cc,
        },
    ]
}

/// Fills the fields the event lacks from the IP data, and returns which dataset filled each.
/// Where the feed gave a value that the data contradicts, the feed's stays and the data's is
/// kept beside it in `extra.enrichment_differs`.
fn fill<'d>(data: &'d IpData, event: &mut Event) -> Sources<'d> {
    let mut sources: Sources<'d> = [None; 8];
    if data.is_empty() {
        return sources;
    }
    let mut differs = Map::new();
    for (side, slot) in slots(event).into_iter().enumerate() {
        let Some(ip) = slot.ip else { continue };
        let answer = data.lookup(ip);
        let mut note = |k: usize, outcome: Outcome, from: &'d DatasetMeta| match outcome {
            Outcome::Filled => sources[side * 4 + k] = Some(from),
            Outcome::Differs(theirs) => {
                differs.insert(FILLED[side * 4 + k].name().to_owned(), theirs);
            }
            Outcome::Agrees => {}
        };
        if let Some((asn, d)) = answer.asn {
            note(0, set(slot.asn, asn, |v| Value::from(*v)), d);
        }
        if let Some((name, d)) = answer.as_name {
            note(1, set(slot.as_name, CompactString::from(name), |v| Value::from(v.as_str())), d);
        }
        if let Some((net, d)) = answer.network {
            note(2, set(slot.network, net, |v| Value::from(v.to_string())), d);
        }
        if let Some((cc, d)) = answer.cc
            && let Ok(cc) = std::str::from_utf8(&cc)
        {
            note(3, set(slot.cc, CompactString::from(cc), |v| Value::from(v.as_str())), d);
        }
    }
    if !differs.is_empty() {
        event.extra.insert(DIFFERS, Value::Object(differs));
    }
    sources
}

enum Outcome {
    Filled,
    Agrees,
    Differs(Value),
}

/// Fills an absent field; a present one stays as it is.
fn set<T: PartialEq>(slot: &mut Option<T>, value: T, json: impl FnOnce(&T) -> Value) -> Outcome {
    match slot {
        None => {
            *slot = Some(value);
            Outcome::Filled
        }
        Some(current) if *current != value => Outcome::Differs(json(&value)),
        Some(_) => Outcome::Agrees,
    }
}

/// `{"source.asn": "ip2asn#3", ...}` for the fields the sources filled.
fn provenance(sources: &Sources<'_>) -> Value {
    let named =
        FILLED.iter().zip(sources).filter_map(|(f, d)| Some((f.name().to_owned(), Value::String((*d)?.label()))));
    Value::Object(named.collect())
}

/// Fills the fields the event lacks from the IP data and records in `extra.enrichment` which
/// dataset version filled each; see [`fill`].
pub fn enrich(data: &IpData, event: &mut Event) {
    let sources = fill(data, event);
    if sources.iter().any(Option::is_some) {
        event.extra.insert(PROVENANCE, provenance(&sources));
    }
}

impl Expert for Enricher {
    fn name(&self) -> &str {
        "enrich"
    }

    fn process(&self, record: &mut Record) -> Verdict {
        let s = &self.snapshot;
        self.enrich(&mut record.event);
        let hits = s.warninglists.hits(&record.event);
        if !hits.is_empty() {
            if self.drop_warninglisted {
                return Verdict::Drop;
            }
            record.event.extra.insert(WARNINGLISTS, Value::from(hits));
        }
        record.routing = s.constituency.route(&record.event);
        Verdict::Keep
    }
}
