//! Indicators as STIX 2.1: each becomes an `indicator` with a STIX pattern, the cyber
//! observable it names with the `observed-data` that saw it, a `sighting` by the center, and,
//! when its malware family is known, a `malware` it `indicates`; a bundle adds a `report` that
//! names them all. Every object is marked with its TLP 2.0 marking definition, whose objects go
//! into the bundle.
//!
//! Ids are UUIDv5, so that the same indicator has the same id in every bundle and a consumer
//! tells versions apart by `modified`: observables with the namespace STIX gives them, the rest
//! with farol's own namespace and the center's name.

use farol_model::incident::Incident;
use farol_model::indicator::{Indicator, IndicatorKind, Origin};
use farol_model::org::{Distribution, OrgId};
use farol_model::{ClassificationType, Timestamp, Tlp};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// The namespace STIX 2.1 gives UUIDv5 ids of cyber observables.
const OBSERVABLES: [u8; 16] = uuid_bytes("00abedb4-aa42-466c-9c01-fed23315a9b7");
/// farol's namespace for the ids of the other objects it writes.
const FAROL: [u8; 16] = uuid_bytes("3b9a6f1e-5d2c-4c8e-9f4a-1e7b2d6c8a50");

/// The TLP 2.0 marking extension's definition.
const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// Sighting counts above this are written as this (STIX's upper bound).
const MAX_COUNT: u64 = 999_999_999;

const fn uuid_bytes(s: &str) -> [u8; 16] {
    let s = s.as_bytes();
    let mut out = [0u8; 16];
    let (mut i, mut o) = (0, 0);
    while i < s.len() {
        if s[i] != b'-' {
            let hi = hex(s[i]);
            let lo = hex(s[i + 1]);
            out[o] = hi << 4 | lo;
            o += 1;
            i += 1;
        }
        i += 1;
    }
    out
}

const fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lower-case hex digit"),
    }
}

/// RFC 4122 version 5: SHA-1 of the namespace and the name.
pub fn uuid5(namespace: &[u8; 16], name: &[u8]) -> String {
    uuid_from_hash(namespace, name, 5)
}

/// The UUID of a name's SHA-1 in a namespace, marked as `version`: 5 for observables, as STIX
/// asks; 4 for the other objects, whose ids STIX wants to be (pseudo-)random UUIDv4, which a
/// hash is, while staying the same for the same object.
fn uuid_from_hash(namespace: &[u8; 16], name: &[u8], version: u8) -> String {
    let hash = Sha1::new().chain_update(namespace).chain_update(name).finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// A UUIDv5 in farol's namespace, for ids that must stay the same (TAXII collections).
pub fn farol_uuid(name: &str) -> String {
    uuid_from_hash(&FAROL, name.as_bytes(), 4)
}

/// What a STIX indicator from elsewhere says, as farol keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub kind: IndicatorKind,
    pub value: String,
    /// From its markings (TLP 2.0 or 1.0); `None` when unmarked.
    pub tlp: Option<Tlp>,
    pub category: ClassificationType,
    pub confidence: Option<u8>,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub description: Option<String>,
    pub revoked: bool,
}

impl Incoming {
    /// The indicator farol keeps of it: from `origin`, shared as `distribution` says, with the
    /// TLP it was marked with (unmarked is AMBER: never shared wider than the sender asked).
    pub fn into_indicator(
        self,
        origin: Origin,
        distribution: Distribution,
        community: Option<i64>,
        orgs: Vec<OrgId>,
        now: Timestamp,
    ) -> Indicator {
        Indicator {
            id: 0,
            kind: self.kind,
            value: self.value,
            category: self.category,
            family: None,
            tlp: self.tlp.unwrap_or(Tlp::Amber),
            distribution,
            community,
            orgs,
            confidence: self.confidence.unwrap_or(50),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            // Its own times, so that the same object sent again changes nothing.
            first_seen: self.valid_from,
            last_seen: self.valid_from,
            sightings: 0,
            origin,
            description: self.description,
            created: now,
            modified: now,
            revoked: self.revoked,
        }
    }
}

/// Reads a STIX 2.1 indicator whose pattern names one observable (`[ipv4-addr:value = '...']`,
/// a network, a domain, a URL, a file hash, an e-mail address).
pub fn read_indicator(o: &Value) -> Result<Incoming, String> {
    let text = |k: &str| o.get(k).and_then(Value::as_str);
    let id = text("id").unwrap_or("(no id)");
    if text("type") != Some("indicator") {
        return Err(format!("{id}: farol takes in indicators, not {}", text("type").unwrap_or("untyped objects")));
    }
    if text("pattern_type").is_some_and(|t| t != "stix") {
        return Err(format!("{id}: only STIX patterns are read"));
    }
    let fields =
        farol_feeds::stix_pattern_fields(text("pattern").unwrap_or_default()).map_err(|e| format!("{id}: {e}"))?;
    let [observable] = fields.as_slice() else {
        return Err(format!("{id}: the pattern names {} observables; farol keeps indicators of one", fields.len()));
    };
    let [(field, value)] = observable.as_slice() else {
        return Err(format!("{id}: the pattern names several properties; farol keeps indicators of one"));
    };
    let kind = match *field {
        "source.ip" => IndicatorKind::Ip,
        "source.network" => IndicatorKind::Cidr,
        "source.fqdn" => IndicatorKind::Domain,
        "source.url" => IndicatorKind::Url,
        "source.account" => IndicatorKind::Email,
        "malware.hash.md5" => IndicatorKind::Md5,
        "malware.hash.sha1" => IndicatorKind::Sha1,
        _ => IndicatorKind::Sha256,
    };
    let value = kind.normalize(value).map_err(|e| format!("{id}: {e}"))?;
    let strings = |k: &str| -> Vec<&str> {
        o.get(k).and_then(Value::as_array).map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect())
    };
    let tlp = strings("object_marking_refs").into_iter().filter_map(Tlp::from_stix_marking).max();
    let category = strings("labels")
        .into_iter()
        .find_map(|l| ClassificationType::parse(l).map(|r| r.value()))
        .unwrap_or(if strings("indicator_types").contains(&"malicious-activity") {
            ClassificationType::Blacklist
        } else {
            ClassificationType::Undetermined
        });
    let time =
        |k: &str| text(k).map(|t| Timestamp::parse(t).ok_or_else(|| format!("{id}: {k} {t:?} is not a timestamp")));
    let valid_from = time("valid_from").ok_or_else(|| format!("{id}: valid_from is required"))??;
    let valid_until = time("valid_until").transpose()?;
    if valid_until.is_some_and(|u| u <= valid_from) {
        return Err(format!("{id}: valid_until is not after valid_from"));
    }
    let confidence = o.get("confidence").and_then(Value::as_u64).map(|c| c.min(100) as u8);
    let description = text("description").or(text("name")).map(|d| d.chars().take(4096).collect());
    let revoked = o.get("revoked").and_then(Value::as_bool).unwrap_or(false);
    Ok(Incoming { kind, value, tlp, category, confidence, valid_from, valid_until, description, revoked })
}

/// A STIX timestamp: UTC, to the microsecond.
pub fn time(t: Timestamp) -> String {
    let (y, mo, d, h, mi, s, us) = t.to_parts();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

/// The cyber observable an indicator names: its type and its properties.
fn observable(i: &Indicator) -> (&'static str, Value) {
    let address = |v: &str| if v.contains(':') { "ipv6-addr" } else { "ipv4-addr" };
    match i.kind {
        IndicatorKind::Ip | IndicatorKind::Cidr => (address(&i.value), json!({ "value": i.value })),
        IndicatorKind::Domain => ("domain-name", json!({ "value": i.value })),
        IndicatorKind::Url => ("url", json!({ "value": i.value })),
        IndicatorKind::Email => ("email-addr", json!({ "value": i.value })),
        IndicatorKind::Md5 | IndicatorKind::Sha1 | IndicatorKind::Sha256 => {
            ("file", json!({ "hashes": { hash_name(i.kind): i.value } }))
        }
    }
}

fn hash_name(kind: IndicatorKind) -> &'static str {
    match kind {
        IndicatorKind::Md5 => "MD5",
        IndicatorKind::Sha1 => "SHA-1",
        _ => "SHA-256",
    }
}

/// The id STIX gives an observable: UUIDv5 of the canonical JSON (RFC 8785) of its
/// id-contributing properties, here one string each.
fn observable_id(kind: &str, properties: &Value) -> String {
    let quoted = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let canonical = match properties.get("hashes") {
        Some(Value::Object(h)) => {
            let (name, value) = h.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
            format!("{{\"hashes\":{{{}:{}}}}}", quoted(&Value::String(name)), quoted(&value))
        }
        _ => format!("{{\"value\":{}}}", quoted(&properties["value"])),
    };
    format!("{kind}--{}", uuid5(&OBSERVABLES, canonical.as_bytes()))
}

/// A STIX pattern that matches the indicator's value.
pub fn pattern(i: &Indicator) -> String {
    let quoted = format!("'{}'", i.value.replace('\\', "\\\\").replace('\'', "\\'"));
    let (kind, _) = observable(i);
    match i.kind {
        IndicatorKind::Cidr => format!("[{kind}:value ISSUBSET {quoted}]"),
        IndicatorKind::Md5 => format!("[file:hashes.MD5 = {quoted}]"),
        IndicatorKind::Sha1 | IndicatorKind::Sha256 => format!("[file:hashes.'{}' = {quoted}]", hash_name(i.kind)),
        _ => format!("[{kind}:value = {quoted}]"),
    }
}

/// TLP 2.0's marking definition object.
pub fn marking(tlp: Tlp) -> Value {
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp.stix_marking_id(),
        "created": "2022-10-01T00:00:00.000Z",
        "name": tlp.label(),
        "extensions": { TLP2_EXTENSION: { "extension_type": "property-extension", "tlp_2_0": tlp.as_str().to_ascii_lowercase() } }
    })
}

/// An address an incident's events came from, and when and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub address: String,
    pub first: Timestamp,
    pub last: Timestamp,
    pub count: u64,
}

/// Who writes the bundle.
#[derive(Debug, Clone)]
pub struct Producer {
    /// The center's name (`CERT.PT`).
    pub name: String,
}

/// A STIX object: `type`, `spec_version` and `id`, then `properties`.
fn object(kind: &str, id: &str, properties: Value) -> Value {
    let mut o = json!({ "type": kind, "spec_version": "2.1", "id": id });
    if let (Value::Object(o), Value::Object(p)) = (&mut o, properties) {
        o.extend(p);
    }
    o
}

/// When a fixed object (the center, a malware family) was made: the same in every bundle.
const FIXED: &str = "1970-01-01T00:00:00.000000Z";

/// What the objects about one thing share: their creation, version and TLP marking.
struct Stamp<'a> {
    created: String,
    modified: String,
    marking: &'a str,
}

impl Producer {
    fn id(&self, kind: &str, name: &str) -> String {
        format!("{kind}--{}", farol_uuid(&format!("{}\0{kind}\0{name}", self.name)))
    }

    /// A domain or relationship object this center made, with the stamp's times and marking.
    fn made(&self, kind: &str, id: &str, stamp: &Stamp<'_>, properties: Value) -> Value {
        let mut o = object(kind, id, properties);
        o["created"] = stamp.created.clone().into();
        o["modified"] = stamp.modified.clone().into();
        o["created_by_ref"] = self.id("identity", "").into();
        o["object_marking_refs"] = json!([stamp.marking]);
        o
    }

    /// An observable of the stamp's marking, and its id.
    fn marked_observable(kind: &str, properties: Value, stamp: &Stamp<'_>) -> (String, Value) {
        let id = observable_id(kind, &properties);
        let mut o = object(kind, &id, properties);
        o["object_marking_refs"] = json!([stamp.marking]);
        (id, o)
    }

    /// The center as a STIX identity.
    pub fn identity(&self) -> Value {
        let properties = json!({ "created": FIXED, "modified": FIXED, "name": self.name,
            "identity_class": "organization", "sectors": ["government-national"] });
        object("identity", &self.id("identity", ""), properties)
    }

    /// The id an indicator has in every bundle.
    pub fn indicator_id(&self, i: &Indicator) -> String {
        self.id("indicator", &format!("{}\0{}\0{}", i.kind, i.value, i.origin))
    }

    /// The STIX objects of one indicator, the indicator first.
    pub fn objects(&self, i: &Indicator) -> Vec<Value> {
        let id = self.indicator_id(i);
        let stamp = Stamp { created: time(i.created), modified: time(i.modified), marking: i.tlp.stix_marking_id() };
        let indicator_types = match i.category.as_str() {
            "scanner" | "brute-force" | "spam" | "ddos" => "anomalous-activity",
            _ => "malicious-activity",
        };
        let mut name = format!("{} {}", i.category, i.value);
        if let Some(f) = &i.family {
            name = format!("{f} {name}");
        }
        let seen = format!(
            "Seen {} time(s) from {} to {} ({}, {})",
            i.sightings,
            time(i.first_seen),
            time(i.last_seen),
            i.origin,
            i.tlp.label()
        );
        let mut indicator = self.made(
            "indicator",
            &id,
            &stamp,
            json!({
                "name": name.chars().take(256).collect::<String>(),
                "description": i.description.clone().unwrap_or(seen),
                "indicator_types": [indicator_types],
                "pattern": pattern(i),
                "pattern_type": "stix",
                "pattern_version": "2.1",
                "valid_from": time(i.valid_from),
                "confidence": i.confidence,
                "labels": [i.category.as_str()],
            }),
        );
        if let Some(until) = i.valid_until.filter(|u| *u > i.valid_from) {
            indicator["valid_until"] = time(until).into();
        }
        if i.revoked {
            indicator["revoked"] = true.into();
        }
        let (kind, properties) = observable(i);
        let (observable_id, sco) = Producer::marked_observable(kind, properties, &stamp);
        let count = i.sightings.clamp(1, MAX_COUNT);
        let observed_id = self.id("observed-data", &id);
        let observed = self.made(
            "observed-data",
            &observed_id,
            &stamp,
            json!({ "first_observed": time(i.first_seen), "last_observed": time(i.last_seen),
                "number_observed": count, "object_refs": [observable_id] }),
        );
        let sighting = self.made(
            "sighting",
            &self.id("sighting", &id),
            &stamp,
            json!({ "sighting_of_ref": id, "first_seen": time(i.first_seen), "last_seen": time(i.last_seen),
                "count": count, "observed_data_refs": [observed_id], "where_sighted_refs": [self.id("identity", "")] }),
        );
        let mut out = vec![indicator, sco, observed, sighting];
        if let Some(family) = &i.family {
            let malware = self.id("malware", &family.to_lowercase());
            out.push(self.relationship(&id, "indicates", &malware, &stamp));
        }
        out
    }

    fn relationship(&self, source: &str, kind: &str, target: &str, stamp: &Stamp<'_>) -> Value {
        let id = self.id("relationship", &format!("{source}\0{kind}\0{target}"));
        self.made(
            "relationship",
            &id,
            stamp,
            json!({ "relationship_type": kind, "source_ref": source, "target_ref": target }),
        )
    }

    /// An incident as a STIX bundle: the `incident` (its class, severity and status as labels),
    /// and for each address its events came from, the observable and the `observed-data` of
    /// those events, `related-to` the incident; all marked with the incident's TLP.
    pub fn incident_bundle(&self, i: &Incident, modified: Timestamp, seen: &[Seen]) -> Value {
        let id = self.id("incident", &i.id.to_string());
        let stamp = Stamp {
            created: time(i.created),
            modified: time(modified.max(i.created)),
            marking: i.tlp.stix_marking_id(),
        };
        let description =
            format!("{} incident {} ({}), {} severity, {}", self.name, i.id, i.class, i.severity, i.status);
        let incident = self.made(
            "incident",
            &id,
            &stamp,
            json!({ "name": i.title, "description": description,
                "labels": [i.class.as_str(), i.severity.as_str(), i.status.as_str()] }),
        );
        let mut objects = vec![self.identity(), marking(i.tlp), incident];
        for s in seen {
            let kind = if s.address.contains(':') { "ipv6-addr" } else { "ipv4-addr" };
            let (sco_id, sco) = Producer::marked_observable(kind, json!({ "value": s.address }), &stamp);
            let observed_id = self.id("observed-data", &format!("{id}\0{}", s.address));
            let observed = self.made(
                "observed-data",
                &observed_id,
                &stamp,
                json!({ "first_observed": time(s.first), "last_observed": time(s.last),
                    "number_observed": s.count.clamp(1, MAX_COUNT), "object_refs": [sco_id] }),
            );
            objects.extend([sco, observed, self.relationship(&observed_id, "related-to", &id, &stamp)]);
        }
        bundle_of(objects)
    }

    /// A malware family's object: fixed, so that it is the same in every bundle.
    pub fn malware(&self, family: &str) -> Value {
        let properties = json!({ "created": FIXED, "modified": FIXED, "created_by_ref": self.id("identity", ""),
            "name": family, "is_family": true });
        object("malware", &self.id("malware", &family.to_lowercase()), properties)
    }

    /// A bundle of indicators with everything they refer to: the center's identity, the
    /// malware families, the TLP markings, and a report that names them all.
    pub fn bundle(&self, indicators: &[Indicator]) -> Value {
        let mut objects = vec![self.identity()];
        let mut families: Vec<&str> = indicators.iter().filter_map(|i| i.family.as_deref()).collect();
        families.sort_unstable_by_key(|f| f.to_lowercase());
        families.dedup_by_key(|f| f.to_lowercase());
        objects.extend(families.into_iter().map(|f| self.malware(f)));
        let mut tlps: Vec<Tlp> = indicators.iter().map(|i| i.tlp).collect();
        tlps.sort_unstable();
        tlps.dedup();
        objects.extend(tlps.into_iter().map(marking));
        for i in indicators {
            objects.extend(self.objects(i));
        }
        // The report is marked as the most restrictive of them.
        if let (Some(newest), Some(tlp)) =
            (indicators.iter().map(|i| i.modified).max(), indicators.iter().map(|i| i.tlp).max())
        {
            let refs: Vec<String> = indicators.iter().map(|i| self.indicator_id(i)).collect();
            let stamp = Stamp { created: time(newest), modified: time(newest), marking: tlp.stix_marking_id() };
            objects.push(self.made(
                "report",
                &self.id("report", &refs.concat()),
                &stamp,
                json!({ "name": format!("{} indicators", self.name),
                    "description": format!("{} indicators shared by {}", indicators.len(), self.name),
                    "report_types": ["indicator"], "published": time(newest), "object_refs": refs }),
            ));
        }
        bundle_of(objects)
    }
}

/// A bundle of these objects; its id follows from what it holds.
fn bundle_of(objects: Vec<Value>) -> Value {
    let content: String = objects.iter().map(|o| format!("{}{}", o["id"], o["modified"])).collect();
    json!({ "type": "bundle", "id": format!("bundle--{}", farol_uuid(&content)), "objects": objects })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn observable_ids_are_the_ones_stix_gives() {
        // The test vectors of ../shared/specs/TAXII_STIX.md, computed with Python's uuid5.
        for (kind, properties, id) in [
            ("ipv4-addr", json!({"value": "198.51.100.3"}), "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4"),
            ("domain-name", json!({"value": "example.com"}), "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7"),
            (
                "url",
                json!({"value": "https://example.com/research/index.html"}),
                "url--47c3cf9a-5027-5bf0-997a-017c7edc7c55",
            ),
            (
                "file",
                json!({"hashes": {"SHA-256": "fe90a7e910cb3a4739bed9180e807e93fa70c90f25a8915476f5e4bfbac681db"}}),
                "file--b91bcf06-0d11-5a89-9c3a-8d4279aefe56",
            ),
        ] {
            assert_eq!(observable_id(kind, &properties), id);
        }
    }

    #[test]
    fn patterns_quote_what_they_match() {
        let mut i = crate::tests::indicator(IndicatorKind::Url, "http://x.example/it's\\here");
        assert_eq!(pattern(&i), r"[url:value = 'http://x.example/it\'s\\here']");
        i.kind = IndicatorKind::Cidr;
        i.value = "2001:db8::/32".into();
        assert_eq!(pattern(&i), "[ipv6-addr:value ISSUBSET '2001:db8::/32']");
        i.kind = IndicatorKind::Sha1;
        i.value = "a".repeat(40);
        assert_eq!(pattern(&i), format!("[file:hashes.'SHA-1' = '{}']", "a".repeat(40)));
    }

    #[test]
    fn indicators_read_back_what_was_written() {
        let p = Producer { name: "CERT.PT".into() };
        for (kind, value) in [
            (IndicatorKind::Ip, "192.0.2.1"),
            (IndicatorKind::Cidr, "2001:db8::/32"),
            (IndicatorKind::Url, "http://x.example/it's"),
            (IndicatorKind::Sha256, "ab".repeat(32).as_str()),
            (IndicatorKind::Email, "a@b.example"),
        ] {
            let mut i = crate::tests::indicator(kind, value);
            i.tlp = Tlp::AmberStrict;
            let read = read_indicator(&p.objects(&i)[0]).unwrap();
            assert_eq!((read.kind, read.value.as_str(), read.tlp), (kind, value, Some(Tlp::AmberStrict)));
            assert_eq!((read.category, read.valid_from, read.valid_until), (i.category, i.valid_from, i.valid_until));
        }
        let observable = p.objects(&crate::tests::indicator(IndicatorKind::Ip, "192.0.2.1"))[1].clone();
        assert!(read_indicator(&observable).unwrap_err().contains("farol takes in indicators, not ipv4-addr"));
        let two = json!({"type": "indicator", "id": "indicator--x", "valid_from": "2026-01-01T00:00:00Z",
            "pattern": "[ipv4-addr:value = '192.0.2.1'] AND [domain-name:value = 'x.example']"});
        assert!(read_indicator(&two).unwrap_err().contains("combines observables"));
    }

    #[test]
    fn incidents_carry_the_addresses_of_their_events() {
        use farol_model::incident::Severity;
        let p = Producer { name: "CERT.PT".into() };
        let t = Timestamp::from_ymd_hms(2026, 10, 1, 0, 0, 0).unwrap();
        let mut i = Incident::new(
            "Emotet at a hospital",
            ClassificationType::InfectedSystem,
            Severity::High,
            Tlp::AmberStrict,
            t,
        );
        i.id = 7;
        let seen = [Seen { address: "192.0.2.7".into(), first: t, last: t.add_secs(60).unwrap(), count: 3 }];
        let b = p.incident_bundle(&i, t.add_secs(3600).unwrap(), &seen);
        let objects = b["objects"].as_array().unwrap();
        let incident = objects.iter().find(|o| o["type"] == "incident").unwrap();
        assert_eq!(incident["name"], "Emotet at a hospital");
        assert_eq!(incident["object_marking_refs"][0], Tlp::AmberStrict.stix_marking_id());
        assert_eq!(objects.iter().filter(|o| o["type"] == "observed-data").count(), 1);
        let related = objects.iter().find(|o| o["type"] == "relationship").unwrap();
        assert_eq!(related["target_ref"], incident["id"]);
        assert!(objects.iter().all(|o| o["type"] == "marking-definition"
            || o["type"] == "identity"
            || o["object_marking_refs"][0] == Tlp::AmberStrict.stix_marking_id()));
    }

    #[test]
    fn markings_are_tlp_2_0() {
        let m = marking(Tlp::AmberStrict);
        assert_eq!(m["id"], "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003");
        assert_eq!(m["extensions"][TLP2_EXTENSION]["tlp_2_0"], "amber+strict");
        assert_eq!(m["name"], "TLP:AMBER+STRICT");
    }

    #[test]
    fn bundles_are_the_same_for_the_same_indicators() {
        let p = Producer { name: "CERT.PT".into() };
        let mut i = crate::tests::indicator(IndicatorKind::Ip, "192.0.2.1");
        i.family = Some("Emotet".into());
        let a = p.bundle(std::slice::from_ref(&i));
        assert_eq!(a, p.bundle(std::slice::from_ref(&i)));
        let types: Vec<&str> = a["objects"].as_array().unwrap().iter().map(|o| o["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "identity",
                "malware",
                "marking-definition",
                "indicator",
                "ipv4-addr",
                "observed-data",
                "sighting",
                "relationship",
                "report"
            ]
        );
        i.modified = i.modified.add_secs(1).unwrap();
        let b = p.bundle(&[i]);
        assert_ne!(a["id"], b["id"]);
        assert_eq!(a["objects"][3]["id"], b["objects"][3]["id"], "a new version keeps the id");
    }
}
