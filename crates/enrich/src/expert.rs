//! The enrichment expert: fills what the IP data knows, marks warninglist hits, routes.

use std::sync::{Arc, RwLock};

use farol_model::expert::{Expert, Verdict};
use farol_model::{Event, Field, FieldValue, Record};
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
}

impl Enricher {
    pub fn new(snapshot: Arc<Snapshot>, drop_warninglisted: bool) -> Enricher {
        Enricher { snapshot, drop_warninglisted }
    }
}

/// The source and destination fields enrichment fills, per side.
struct Side {
    ip: Field,
    asn: Field,
    as_name: Field,
    network: Field,
    cc: Field,
}

const SIDES: [Side; 2] = [
    Side {
        ip: Field::SourceIp,
        asn: Field::SourceAsn,
        as_name: Field::SourceAsName,
        network: Field::SourceNetwork,
        cc: Field::SourceGeolocationCc,
    },
    Side {
        ip: Field::DestinationIp,
        asn: Field::DestinationAsn,
        as_name: Field::DestinationAsName,
        network: Field::DestinationNetwork,
        cc: Field::DestinationGeolocationCc,
    },
];

/// Fills the fields the event lacks from the IP data; where the feed gave a value that the
/// data contradicts, the feed's stays and the data's is kept beside it.
pub fn enrich(data: &IpData, event: &mut Event) {
    if data.is_empty() {
        return;
    }
    let mut provenance = Map::new();
    let mut differs = Map::new();
    for side in &SIDES {
        let Some(FieldValue::Ip(ip)) = event.get(side.ip) else { continue };
        let answer = data.lookup(ip);
        let mut fill = |field: Field, value: FieldValue<'_>, from: &DatasetMeta| match event.get(field) {
            None => {
                if event.set_field(field, &value.to_text()).is_ok() {
                    provenance.insert(field.name().to_owned(), Value::String(from.label()));
                }
            }
            Some(current) if current != value => {
                differs.insert(field.name().to_owned(), value.to_json());
            }
            Some(_) => {}
        };
        if let Some((asn, d)) = answer.asn {
            fill(side.asn, FieldValue::Int(asn.into()), d);
        }
        if let Some((name, d)) = answer.as_name {
            fill(side.as_name, FieldValue::Str(name), d);
        }
        if let Some((net, d)) = answer.network {
            fill(side.network, FieldValue::Net(net), d);
        }
        if let Some((cc, d)) = answer.cc {
            fill(side.cc, FieldValue::Str(std::str::from_utf8(&cc).unwrap_or_default()), d);
        }
    }
    if !provenance.is_empty() {
        event.extra.insert(PROVENANCE, Value::Object(provenance));
    }
    if !differs.is_empty() {
        event.extra.insert(DIFFERS, Value::Object(differs));
    }
}

impl Expert for Enricher {
    fn name(&self) -> &str {
        "enrich"
    }

    fn process(&self, record: &mut Record) -> Verdict {
        let s = &self.snapshot;
        enrich(&s.ipdata, &mut record.event);
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

    fn shared(&self) -> &[&'static str] {
        &[PROVENANCE]
    }
}
