//! A compact binary form of an event, for storage: about a third of its JSON size.
//!
//! An event is written as its difference from a base event: in the store, the fields that every
//! event of a report shares (the feed's defaults, the time it was received) are kept once with
//! the report, and each event only says what differs.
//!
//! Layout: a version byte; for each field that differs, its index in [`Field::ALL`] and its value,
//! or `0xFE` and the index of a field the base has and the event lacks; then `0xFF`, the number of
//! extra keys that differ, and each key with its JSON text (or an empty text: the key is absent).
//! Integers are LEB128 varints (signed ones zigzagged), text is length-prefixed UTF-8.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use compact_str::CompactString;
use ipnet::IpNet;
use serde_json::Value;

use crate::event::{Event, Field};
use crate::taxonomy::{ClassificationType, Taxonomy};
use crate::time::Timestamp;
use crate::tlp::Tlp;

const VERSION: u8 = 1;
const EXTRA: u8 = 0xFF;
pub(crate) const TOMBSTONE: u8 = 0xFE;

/// A stored value that encodes itself.
pub(crate) trait Codec: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(input: &mut &[u8]) -> Option<Self>;
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        v |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn get_str<'a>(input: &mut &'a [u8]) -> Option<&'a str> {
    let n = usize::try_from(get_varint(input)?).ok()?;
    std::str::from_utf8(take(input, n)?).ok()
}

impl Codec for CompactString {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        get_str(input).map(CompactString::from)
    }
}

impl Codec for IpAddr {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            IpAddr::V4(v4) => {
                out.push(4);
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.push(6);
                out.extend_from_slice(&v6.octets());
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        match take(input, 1)?[0] {
            4 => <[u8; 4]>::try_from(take(input, 4)?).ok().map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            6 => <[u8; 16]>::try_from(take(input, 16)?).ok().map(|b| IpAddr::V6(Ipv6Addr::from(b))),
            _ => None,
        }
    }
}

impl Codec for IpNet {
    fn encode(&self, out: &mut Vec<u8>) {
        self.addr().encode(out);
        out.push(self.prefix_len());
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let addr = IpAddr::decode(input)?;
        IpNet::new(addr, take(input, 1)?[0]).ok()
    }
}

impl Codec for u16 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        u16::try_from(get_varint(input)?).ok()
    }
}

impl Codec for u32 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        u32::try_from(get_varint(input)?).ok()
    }
}

impl Codec for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, ((self << 1) ^ (self >> 63)) as u64);
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let z = get_varint(input)?;
        Some(((z >> 1) as i64) ^ -((z & 1) as i64))
    }
}

impl Codec for f64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        // Only finite numbers are ever stored.
        <[u8; 8]>::try_from(take(input, 8)?).ok().map(f64::from_le_bytes).filter(|f| f.is_finite())
    }
}

impl Codec for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        match take(input, 1)?[0] {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl Codec for Timestamp {
    fn encode(&self, out: &mut Vec<u8>) {
        self.micros().encode(out);
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        Timestamp::from_micros(i64::decode(input)?)
    }
}

/// Enums are stored by their position in their `ALL` list, which is append-only.
macro_rules! enum_codec {
    ($ty:ty) => {
        impl Codec for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                let i = <$ty>::ALL.iter().position(|v| v == self).unwrap_or(0);
                put_varint(out, i as u64);
            }
            fn decode(input: &mut &[u8]) -> Option<Self> {
                let i = usize::try_from(get_varint(input)?).ok()?;
                <$ty>::ALL.get(i).copied()
            }
        }
    };
}
enum_codec!(Taxonomy);
enum_codec!(ClassificationType);
enum_codec!(Tlp);

impl Codec for Value {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.to_string().as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        serde_json::from_str(get_str(input)?).ok()
    }
}

/// Why stored bytes could not be decoded: a bug or a corrupted row, never user input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored event is corrupt or of an unknown version")]
pub struct CorruptEvent;

impl Event {
    /// Appends the compact form of this event to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_delta(&Event::default(), out);
    }

    pub fn decode(input: &[u8]) -> Result<Event, CorruptEvent> {
        Event::decode_delta(input, &Event::default())
    }

    /// Appends the compact form of what differs between this event and `base`.
    pub fn encode_delta(&self, base: &Event, out: &mut Vec<u8>) {
        out.push(VERSION);
        self.encode_fields(base, out);
        // Both lists are sorted by key: one merge finds what this event adds, changes and
        // removes. The count goes before the entries; a placeholder byte holds it (counts
        // under 128 fit), so nothing is collected first.
        let at = out.len();
        out.extend([EXTRA, 0]);
        let mut count = 0u64;
        let (mut ours, mut theirs) = (self.extra.iter().peekable(), base.extra.iter().peekable());
        loop {
            let (key, value) = match (ours.peek().copied(), theirs.peek().copied()) {
                (None, None) => break,
                (Some((k, v)), Some((b, w))) if k == b => {
                    ours.next();
                    theirs.next();
                    if v == w {
                        continue;
                    }
                    (k, Some(v))
                }
                (Some((k, v)), Some((b, _))) if k < b => {
                    ours.next();
                    (k, Some(v))
                }
                (Some((k, v)), None) => {
                    ours.next();
                    (k, Some(v))
                }
                (_, Some((b, _))) => {
                    theirs.next();
                    (b, None)
                }
            };
            count += 1;
            put_bytes(out, key.as_bytes());
            match value {
                Some(v) => v.encode(out),
                None => put_varint(out, 0),
            }
        }
        match u8::try_from(count) {
            Ok(0) => out.truncate(at),
            Ok(n) if n < 0x80 => out[at + 1] = n,
            _ => {
                let mut varint = Vec::new();
                put_varint(&mut varint, count);
                out.splice(at + 1..at + 2, varint);
            }
        }
    }

    /// `self` with what most of `events` share: each field and extra key whose value is the
    /// same in more than half of them. Events encoded against it (see [`Event::encode_delta`])
    /// leave those out; the others store a tombstone or their own value, as they do for any
    /// base. One majority vote per field, over the events in order.
    pub fn with_shared(&self, events: &[&Event]) -> Event {
        let mut common = self.clone();
        let most = |same: &dyn Fn(&Event, &Event) -> bool| -> Option<&Event> {
            let (mut candidate, mut votes) = (events.first()?, 0);
            for e in events {
                if votes == 0 {
                    (candidate, votes) = (e, 1);
                } else if same(candidate, e) {
                    votes += 1;
                } else {
                    votes -= 1;
                }
            }
            (events.iter().filter(|e| same(candidate, e)).count() > events.len() / 2).then_some(*candidate)
        };
        for &field in Field::ALL {
            if let Some(c) = most(&|a, b| a.get(field) == b.get(field))
                && c.has(field)
            {
                common.copy_field(c, field);
            }
        }
        let mut keys: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for e in events {
            for key in e.extra.keys() {
                *keys.entry(key).or_default() += 1;
            }
        }
        for (key, _) in keys.into_iter().filter(|&(_, n)| n > events.len() / 2) {
            if let Some(value) = most(&|a, b| a.extra.get(key) == b.extra.get(key)).and_then(|c| c.extra.get(key)) {
                common.extra.insert(key, value.clone());
            }
        }
        common
    }

    /// Reads an event written by [`Event::encode_delta`] against the same `base`.
    pub fn decode_delta(mut input: &[u8], base: &Event) -> Result<Event, CorruptEvent> {
        let input = &mut input;
        if take(input, 1) != Some(&[VERSION][..]) {
            return Err(CorruptEvent);
        }
        let mut event = base.clone();
        while let Some((&tag, rest)) = input.split_first() {
            *input = rest;
            match tag {
                EXTRA => {
                    let n = get_varint(input).ok_or(CorruptEvent)?;
                    for _ in 0..n {
                        let key = get_str(input).ok_or(CorruptEvent)?.to_owned();
                        let text = get_str(input).ok_or(CorruptEvent)?;
                        if text.is_empty() {
                            event.extra.remove(&key);
                        } else {
                            event.extra.insert(key, serde_json::from_str(text).map_err(|_| CorruptEvent)?);
                        }
                    }
                    break;
                }
                TOMBSTONE => {
                    let (&index, rest) = input.split_first().ok_or(CorruptEvent)?;
                    *input = rest;
                    event.remove(*Field::ALL.get(usize::from(index)).ok_or(CorruptEvent)?);
                }
                _ => {
                    let field = Field::ALL.get(usize::from(tag)).ok_or(CorruptEvent)?;
                    event.decode_field(*field, input).ok_or(CorruptEvent)?;
                }
            }
        }
        if input.is_empty() { Ok(event) } else { Err(CorruptEvent) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_kind_round_trips() {
        let mut e = Event::default();
        let pairs = [
            ("time.source", "2024-06-01T10:12:44.25+00:00"),
            ("feed.accuracy", "87.5"),
            ("classification.type", "vulnerable-system"),
            ("classification.taxonomy", "vulnerable"),
            ("source.ip", "2001:db8::1"),
            ("destination.ip", "192.0.2.9"),
            ("source.port", "65535"),
            ("source.asn", "4294967295"),
            ("source.network", "2001:db8::/32"),
            ("source.tor_node", "true"),
            ("source.geolocation.latitude", "-38.7"),
            ("rtir_id", "-42"),
            ("tlp", "AMBER+STRICT"),
            ("source.fqdn", "caf\u{e9}.example.pt"),
            ("extra.nested", "x"),
        ];
        for (k, v) in pairs {
            e.set(k, v).unwrap();
        }
        e.set_json("output", &serde_json::json!({"a": [1, 2]})).unwrap();
        e.set_json("extra.count", &serde_json::json!(3)).unwrap();
        let mut buf = Vec::new();
        e.encode(&mut buf);
        assert_eq!(Event::decode(&buf).unwrap(), e);
    }

    #[test]
    fn deltas_against_a_base_round_trip() {
        let mut base = Event::default();
        for (k, v) in [("feed.name", "sinkhole"), ("tlp", "AMBER"), ("extra.source", "x"), ("extra.gone", "y")] {
            base.set(k, v).unwrap();
        }
        let mut e = base.clone();
        e.set("source.ip", "192.0.2.1").unwrap();
        e.set("tlp", "RED").unwrap();
        e.remove(Field::FeedName);
        e.extra.remove("gone");
        e.set("extra.new", "z").unwrap();
        let mut delta = Vec::new();
        e.encode_delta(&base, &mut delta);
        let mut full = Vec::new();
        e.encode(&mut full);
        assert!(delta.len() < full.len());
        assert_eq!(Event::decode_delta(&delta, &base).unwrap(), e);
        // An event equal to its base is one byte.
        let mut same = Vec::new();
        base.encode_delta(&base, &mut same);
        assert_eq!(same, [VERSION]);
    }

    #[test]
    fn what_most_events_share_goes_into_the_base() {
        let event = |pairs: &[(&str, &str)]| {
            let mut e = Event::default();
            pairs.iter().for_each(|(k, v)| e.set(k, v).unwrap());
            e
        };
        let events = [
            event(&[("source.ip", "192.0.2.1"), ("destination.port", "80"), ("extra.severity", "high")]),
            event(&[("source.ip", "192.0.2.2"), ("destination.port", "8080"), ("extra.severity", "high")]),
            event(&[("source.ip", "192.0.2.3"), ("destination.port", "80"), ("extra.public", "x")]),
            event(&[("source.ip", "192.0.2.4"), ("destination.port", "80"), ("extra.severity", "high")]),
        ];
        let mut defaults = Event::default();
        defaults.set("feed.name", "sinkhole").unwrap();
        let refs: Vec<&Event> = events.iter().collect();
        let base = defaults.with_shared(&refs);
        // Three of four: shared; the addresses all differ, and one of four is not most.
        let expected = event(&[("feed.name", "sinkhole"), ("destination.port", "80"), ("extra.severity", "high")]);
        assert_eq!(base, expected);
        // Two of four is not more than half.
        assert_eq!(defaults.with_shared(&refs[1..3]), defaults);
        assert_eq!(defaults.with_shared(&[]), defaults);
        for e in &events {
            let (mut delta, mut full) = (Vec::new(), Vec::new());
            e.encode_delta(&base, &mut delta);
            e.encode_delta(&defaults, &mut full);
            assert_eq!(Event::decode_delta(&delta, &base).unwrap(), *e);
            if e.extra.contains_key("severity") {
                assert!(delta.len() < full.len());
            }
        }
    }

    #[test]
    fn more_than_127_extra_changes_round_trip() {
        // The count of changed keys then takes two bytes of varint.
        let mut base = Event::default();
        for i in 0..150 {
            base.set(&format!("extra.k{i:03}"), "base").unwrap();
        }
        let mut e = base.clone();
        for i in 0..150 {
            match i % 3 {
                0 => drop(e.extra.remove(&format!("k{i:03}"))),
                1 => e.set(&format!("extra.k{i:03}"), "changed").unwrap(),
                _ => {}
            }
            e.set(&format!("extra.n{i:03}"), "new").unwrap();
        }
        let mut delta = Vec::new();
        e.encode_delta(&base, &mut delta);
        assert_eq!(Event::decode_delta(&delta, &base).unwrap(), e);
    }

    #[test]
    fn corrupt_bytes_are_an_error_not_a_panic() {
        let mut e = Event::default();
        e.set("source.ip", "192.0.2.1").unwrap();
        e.set("extra.k", "v").unwrap();
        let mut buf = Vec::new();
        e.encode(&mut buf);
        for cut in 0..buf.len() {
            let _ = Event::decode(&buf[..cut]);
        }
        assert_eq!(Event::decode(&[]), Err(CorruptEvent));
        // Found by the fuzzer (issue 2): a stored NaN would not compare equal to itself.
        let mut nan = vec![VERSION, 34];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(Event::decode(&nan), Err(CorruptEvent));
        assert_eq!(Event::decode(&[9]), Err(CorruptEvent));
        // Found by the fuzzer (issue 8's CI): a 25-digit JSON number read back as a different
        // float once written again, until serde_json parsed floats exactly (`float_roundtrip`).
        let long = b"\x01\x50\x19444444444454544444444444444";
        let event = Event::decode(long).unwrap();
        let mut again = Vec::new();
        event.encode(&mut again);
        assert_eq!(Event::decode(&again), Ok(event));
        assert_eq!(Event::decode(&[VERSION, 200]), Err(CorruptEvent));
        assert_eq!(
            Event::decode(&[VERSION, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(CorruptEvent)
        );
    }

    #[test]
    fn stored_indexes_are_pinned() {
        // The stored form refers to fields and enum values by position: these must never move.
        assert_eq!(Field::ALL[0].name(), "time.source");
        assert_eq!(Field::ALL[11].name(), "source.ip");
        assert_eq!(Field::ALL[80].name(), "output");
        assert_eq!(ClassificationType::ALL[0].as_str(), "harmful-speech");
        assert_eq!(ClassificationType::ALL[43].as_str(), "weak-crypto");
        assert_eq!(Tlp::ALL[3], Tlp::AmberStrict);
    }
}
