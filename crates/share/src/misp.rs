//! Indicators as a MISP feed: `manifest.json`, `hashes.csv` and one `{"Event": ...}` file per
//! event, the layout MISP subscribes to. An event gathers the indicators of one origin and
//! category first seen on one UTC day, so that its members never change; its UUID and its
//! attributes' follow from them, and its timestamp is its newest attribute's.
//!
//! TLP goes into MISP's distribution as well as into tags: CLEAR is "all communities" (3),
//! GREEN "this community" (1), AMBER and above "your organisation only" (0).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use farol_model::Tlp;
use farol_model::indicator::{Indicator, IndicatorKind};
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::stix::{Producer, farol_uuid};

/// A MISP feed, ready to serve.
#[derive(Debug, Default)]
pub struct Feed {
    pub manifest: Value,
    pub hashes: String,
    /// By event UUID.
    pub events: BTreeMap<String, Value>,
}

fn tag(tlp: Tlp) -> Value {
    let colour = match tlp {
        Tlp::Clear => "#FFFFFF",
        Tlp::Green => "#33FF00",
        Tlp::Amber | Tlp::AmberStrict => "#FFC000",
        Tlp::Red => "#FF2B2B",
    };
    json!({ "name": format!("tlp:{}", tlp.as_str().to_ascii_lowercase()), "colour": colour, "exportable": true })
}

fn distribution(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "3",
        Tlp::Green => "1",
        _ => "0",
    }
}

/// The MISP attribute type and category of an indicator.
fn attribute_type(i: &Indicator) -> (&'static str, &'static str) {
    let source = matches!(i.category.as_str(), "scanner" | "brute-force" | "spam" | "ddos");
    match i.kind {
        IndicatorKind::Ip | IndicatorKind::Cidr if source => ("ip-src", "Network activity"),
        IndicatorKind::Ip | IndicatorKind::Cidr => ("ip-dst", "Network activity"),
        IndicatorKind::Domain => ("domain", "Network activity"),
        IndicatorKind::Url => ("url", "Network activity"),
        IndicatorKind::Md5 => ("md5", "Payload delivery"),
        IndicatorKind::Sha1 => ("sha1", "Payload delivery"),
        IndicatorKind::Sha256 => ("sha256", "Payload delivery"),
        IndicatorKind::Email => ("email-src", "Payload delivery"),
    }
}

/// MISP's timestamps: seconds since 1970, as a string.
fn secs(t: farol_model::Timestamp) -> String {
    t.secs().to_string()
}

/// ISO 8601 with microseconds, as MISP writes `first_seen` and `last_seen`.
fn seen(t: farol_model::Timestamp) -> String {
    let (y, mo, d, h, mi, s, us) = t.to_parts();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}+00:00")
}

/// The feed of these indicators.
pub fn feed(producer: &Producer, indicators: &[Indicator]) -> Feed {
    let org = json!({ "name": producer.name, "uuid": farol_uuid(&format!("{}\0misp-org", producer.name)) });
    let mut groups: BTreeMap<(String, &str, String), Vec<&Indicator>> = BTreeMap::new();
    for i in indicators {
        let (y, mo, d, ..) = i.created.to_parts();
        let day = format!("{y:04}-{mo:02}-{d:02}");
        groups.entry((i.origin.to_string(), i.category.as_str(), day)).or_default().push(i);
    }
    let mut out = Feed { manifest: json!({}), ..Feed::default() };
    for ((origin, category, day), members) in groups {
        let uuid = farol_uuid(&format!("{}\0misp-event\0{origin}\0{category}\0{day}", producer.name));
        let tlp = members.iter().map(|i| i.tlp).max().unwrap_or(Tlp::Amber);
        let timestamp = members.iter().map(|i| i.modified).max().map(secs).unwrap_or_default();
        let info = format!("{}: {category} indicators from {origin}, {day}", producer.name);
        let attributes: Vec<Value> = members
            .iter()
            .map(|i| {
                let (kind, attribute_category) = attribute_type(i);
                let mut comment = format!("confidence {}, seen {} time(s)", i.confidence, i.sightings);
                if let Some(f) = &i.family {
                    comment = format!("{f}; {comment}");
                }
                let _ = writeln!(out.hashes, "{:x},{uuid}", Md5::digest(i.value.as_bytes()));
                json!({
                    "uuid": farol_uuid(&format!("{}\0misp-attribute\0{}\0{}\0{}", producer.name, i.kind, i.value, i.origin)),
                    "type": kind,
                    "category": attribute_category,
                    "value": i.value,
                    "to_ids": !i.revoked,
                    "distribution": "5",
                    "sharing_group_id": "0",
                    "timestamp": secs(i.modified),
                    "comment": comment,
                    "deleted": false,
                    "first_seen": seen(i.first_seen),
                    "last_seen": seen(i.last_seen),
                    "Tag": [tag(i.tlp)],
                })
            })
            .collect();
        out.manifest[&uuid] = json!({
            "Orgc": org, "Tag": [tag(tlp)], "info": info, "date": day, "analysis": 2, "threat_level_id": 2,
            "timestamp": timestamp.parse::<i64>().unwrap_or(0),
        });
        let event = json!({ "Event": {
            "uuid": uuid, "info": info, "date": day, "threat_level_id": "2", "analysis": "2",
            "distribution": distribution(tlp), "sharing_group_id": "0", "published": true,
            "timestamp": timestamp, "publish_timestamp": timestamp, "Orgc": org, "Tag": [tag(tlp)],
            "Attribute": attributes,
        }});
        out.events.insert(uuid, event);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tests::indicator;

    #[test]
    fn one_event_per_origin_category_and_day_with_hashes_of_every_value() {
        let p = Producer { name: "CERT.PT".into() };
        let mut a = indicator(IndicatorKind::Ip, "192.0.2.1");
        a.tlp = Tlp::Green;
        let mut b = indicator(IndicatorKind::Domain, "evil.example");
        b.id = 2;
        let mut c = indicator(IndicatorKind::Ip, "192.0.2.9");
        c.created = c.created.add_secs(86_400).unwrap();
        let f = feed(&p, &[a, b, c]);
        assert_eq!(f.events.len(), 2);
        let (uuid, first) =
            f.events.iter().find(|(_, e)| e["Event"]["Attribute"].as_array().unwrap().len() == 2).unwrap();
        let e = &first["Event"];
        assert_eq!(e["Tag"][0]["name"], "tlp:amber", "the most restrictive of its attributes");
        assert_eq!(e["distribution"], "0");
        assert_eq!(e["Attribute"][0]["type"], "ip-dst");
        assert_eq!(e["Attribute"][0]["Tag"][0]["name"], "tlp:green");
        assert_eq!(e["Attribute"][1]["type"], "domain");
        assert_eq!(f.manifest[uuid]["info"], e["info"]);
        assert_eq!(f.hashes.lines().count(), 3);
        assert!(f.hashes.contains(&format!("{:x},{uuid}", Md5::digest(b"evil.example"))));
        assert_eq!(feed(&p, &[indicator(IndicatorKind::Ip, "192.0.2.1")]).events.len(), 1);
    }
}
