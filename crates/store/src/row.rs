//! An event in the shape the store writes it: the indexed columns next to the compact encoding.

use std::net::IpAddr;

use farol_model::{ClassificationType, Event, Record, Reject, Taxonomy, Timestamp, Tlp};

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// Rows per transaction in both backends: large transactions amortize the index pages each one
/// touches (see BENCHMARKS.md), and the batch is sorted so that index inserts stay close together.
pub(crate) const BATCH_ROWS: usize = 32_768;

/// Adds `rows` and `rejects` to a writer's batch; true when the batch is full.
pub(crate) fn gather(batch: &mut Vec<Row>, held: &mut Vec<Reject>, rows: Vec<Row>, rejects: Vec<Reject>) -> bool {
    if batch.is_empty() && rows.len() >= BATCH_ROWS {
        *batch = rows;
    } else {
        batch.extend(rows);
    }
    held.extend(rejects);
    batch.len() >= BATCH_ROWS || held.len() >= BATCH_ROWS
}

/// One event row, prepared off the writer's thread so that the writer only binds and steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Hours since the epoch: the leading column of the indexes, so that inserts stay local.
    pub hour: i64,
    /// Microseconds: `time.source`, or `time.observation` when the feed gave no time.
    pub time: i64,
    pub hash: i64,
    /// `classification.type` as its position in [`ClassificationType::ALL`].
    pub kind: Option<u8>,
    pub source_ip: IpKey,
    pub source_asn: Option<u32>,
    pub source_cc: Option<compact_str::CompactString>,
    /// The malware family, for the statistics: `classification.identifier` of malicious-code
    /// events (IntelMQ's "the malware family name" there: CTIP's `Malware`, Shadowserver's
    /// `infection`), else `malware.name`.
    pub family: Option<compact_str::CompactString>,
    pub raw_offset: u64,
    pub raw_len: u64,
    pub data: Vec<u8>,
    /// Routing: the organizations (as a varint list, empty for none) and the scope's code.
    pub orgs: Vec<i64>,
    pub scope: u8,
    /// The event's TLP as 0 (CLEAR) to 4 (RED); AMBER when the event has none.
    pub tlp: u8,
    /// For an aggregated event: the observations of this report it stands for.
    pub part: Option<Part>,
}

/// Observations that one report contributes to an aggregated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// `source.ip` as the indexes hold it: IPv4 as an integer, IPv6 as 16 bytes, absent as an empty
/// blob (never NULL, so that the unique index sees events without an address as equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpKey {
    None,
    V4(u32),
    V6([u8; 16]),
}

impl IpKey {
    /// The address again.
    pub(crate) fn addr(self) -> Option<IpAddr> {
        match self {
            IpKey::None => None,
            IpKey::V4(v) => Some(IpAddr::V4(v.into())),
            IpKey::V6(b) => Some(IpAddr::V6(b.into())),
        }
    }
}

impl From<Option<IpAddr>> for IpKey {
    fn from(ip: Option<IpAddr>) -> IpKey {
        match ip {
            None => IpKey::None,
            Some(IpAddr::V4(v4)) => IpKey::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => IpKey::V6(v6.octets()),
        }
    }
}

impl Row {
    /// Prepares a validated record (it has a time) for writing, as its difference from the
    /// fields that every event of its report shares.
    pub fn new(record: &Record, common: &Event) -> Row {
        let e = &record.event;
        let time = e.time().map_or(0, Timestamp::micros);
        let mut data = Vec::with_capacity(256);
        e.encode_delta(common, &mut data);
        Row {
            hour: time.div_euclid(MICROS_PER_HOUR),
            time,
            hash: i64::from_be_bytes(record.hash.0.to_be_bytes()),
            kind: e.classification_type.map(type_code),
            source_ip: e.source_ip.into(),
            source_asn: e.source_asn,
            source_cc: e.source_geolocation_cc.clone(),
            family: e.family(),
            raw_offset: record.position.offset,
            raw_len: record.position.len,
            data,
            orgs: record.routing.orgs.iter().map(|o| o.0).collect(),
            scope: record.routing.scope.code(),
            tlp: e.tlp.unwrap_or(Tlp::Amber).code(),
            part: None,
        }
    }

    /// Puts a batch in the order in which it is written, which keeps index inserts close
    /// together. The keys are sorted apart from the rows, which then move once each, instead of
    /// at every step of the sort (a quarter less time sorting, in `perf` of the ingest benchmark).
    pub(crate) fn sort(rows: &mut [Row]) {
        rows.sort_by_cached_key(|r| (r.hour, r.source_ip, r.hash));
    }
}

/// Organization ids as stored: varints, `None` for none.
pub(crate) fn encode_orgs(orgs: &[i64]) -> Option<Vec<u8>> {
    if orgs.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(orgs.len() * 2);
    for &o in orgs {
        let mut v = o.unsigned_abs();
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    Some(out)
}

pub(crate) fn decode_orgs(bytes: &[u8]) -> Vec<i64> {
    let mut out = Vec::new();
    let (mut v, mut shift) = (0u64, 0u32);
    for &b in bytes {
        v |= u64::from(b & 0x7f) << shift.min(63);
        shift += 7;
        if b < 0x80 {
            out.push(i64::try_from(v).unwrap_or(i64::MAX));
            (v, shift) = (0, 0);
        }
    }
    out
}

/// The condition on `e.type` that a query's type and taxonomy make, in both backends' SQL (type
/// codes are small integers of our own: safe in the SQL text); `false` when they exclude each
/// other, `None` for any type.
pub(crate) fn type_condition(kind: Option<ClassificationType>, taxonomy: Option<Taxonomy>) -> Option<String> {
    let codes: Vec<String> = match (kind, taxonomy) {
        (Some(k), Some(t)) if k.taxonomy() != t => return Some("false".to_owned()),
        (Some(k), _) => vec![type_code(k).to_string()],
        (None, Some(t)) => Taxonomy::types(t).iter().map(|&t| type_code(t).to_string()).collect(),
        (None, None) => return None,
    };
    Some(format!("e.type IN ({})", codes.join(", ")))
}

/// The stored code of a classification type.
pub(crate) fn type_code(t: ClassificationType) -> u8 {
    ClassificationType::ALL.iter().position(|&x| x == t).and_then(|i| u8::try_from(i).ok()).unwrap_or(u8::MAX)
}
