//! The `misp` format: MISP events (`{"Event": ...}`, as in a MISP feed's `<uuid>.json` or a
//! `restSearch` answer). Each attribute that names something to act on (an address, a domain,
//! a URL, a file hash, an account) becomes an event; the others are context and stay in the
//! archived report.

use farol_model::{Event, Position, Tlp};
use serde_json::{Map, Value};

use crate::{Confidence, ConfigError, Format, Output, ParseConfig, Parser, Probe};

pub(crate) const FORMAT: Format = Format {
    name: "misp",
    description: "MISP events in MISP's JSON format (a feed's event files, restSearch answers)",
    build: |config, _| Ok(Box::new(Misp::new(config)?)),
    detect,
};

fn detect(p: &Probe<'_>) -> Option<Confidence> {
    let head = String::from_utf8_lossy(&p.head[..p.head.len().min(4096)]).replace(' ', "");
    (head.contains("{\"Event\":{") || (head.contains("\"response\":[") && head.contains("\"Event\"")))
        .then_some(Confidence::Certain)
}

/// The largest MISP document read (it is parsed whole: events refer to their tags and objects
/// across the document).
const MAX_DOCUMENT: usize = 64 << 20;

#[derive(Debug)]
struct Misp {
    doc: Vec<u8>,
    max: usize,
    too_big: bool,
}

impl Misp {
    fn new(config: &ParseConfig) -> Result<Misp, ConfigError> {
        Ok(Misp { doc: Vec::new(), max: MAX_DOCUMENT.max(config.max_record()), too_big: false })
    }
}

impl Parser for Misp {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        if self.too_big {
            return;
        }
        if self.doc.len() + chunk.len() > self.max {
            self.too_big = true;
            self.doc = Vec::new();
            out.fatal =
                Some(format!("the MISP document is larger than {} bytes; raise max_record to read it", self.max));
            return;
        }
        self.doc.extend_from_slice(chunk);
    }

    fn finish(&mut self, out: &mut Output) {
        if self.too_big {
            return;
        }
        let doc = std::mem::take(&mut self.doc);
        let position = Position { offset: 0, len: doc.len() as u64, line: None };
        let value: Value = match serde_json::from_slice(&doc) {
            Ok(v) => v,
            Err(e) => {
                out.fatal = Some(if doc.iter().all(u8::is_ascii_whitespace) {
                    "the report is empty: expected a MISP event".to_owned()
                } else {
                    format!("invalid JSON: {e}")
                });
                return;
            }
        };
        let events: Vec<&Value> = match &value {
            Value::Object(m) if m.contains_key("Event") => vec![&value],
            Value::Object(m) if m.get("response").is_some_and(Value::is_array) => {
                m["response"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
            }
            Value::Array(list) => list.iter().collect(),
            Value::Object(m) if m.values().all(|v| v.get("info").is_some() && v.get("timestamp").is_some()) => {
                out.fatal = Some(
                    "this is a MISP feed's manifest.json, which lists events without their attributes; \
                     ingest the event files it names (a MISP feed collector does this)"
                        .to_owned(),
                );
                return;
            }
            _ => {
                out.fatal = Some("expected a MISP event: {\"Event\": {...}}".to_owned());
                return;
            }
        };
        for wrapper in events {
            match wrapper.get("Event").and_then(Value::as_object) {
                Some(event) => misp_event(event, position, out),
                None => out.reject(position, "expected {\"Event\": {...}}", wrapper.to_string().as_bytes()),
            }
        }
    }
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

fn tag_names(m: &Map<String, Value>) -> Vec<&str> {
    m.get("Tag")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |tags| tags.iter().filter_map(|t| t.get("name")?.as_str()).collect())
}

fn tlp_of(tags: &[&str]) -> Option<Tlp> {
    tags.iter().filter_map(|t| t.strip_prefix("tlp:")?.parse().ok()).max()
}

/// A classification from an `rsit:` or `ecsirt:` machine tag (`rsit:malicious-code="c2-server"`).
fn classification_of(tags: &[&str]) -> Option<String> {
    tags.iter().find_map(|t| {
        let (ns, rest) = t.split_once(':')?;
        if ns != "rsit" && ns != "ecsirt" {
            return None;
        }
        let (_, kind) = rest.split_once('=')?;
        let kind = kind.trim_matches('"');
        farol_model::ClassificationType::parse(kind).map(|r| r.value().as_str().to_owned())
    })
}

/// What an attribute type names, as event fields: `None` for context (comments, file names).
fn fields(kind: &str, value: &str) -> Option<Vec<(&'static str, String)>> {
    let ip = |v: &str| if v.contains('/') { ("source.network", v.to_owned()) } else { ("source.ip", v.to_owned()) };
    let split = || value.split_once('|').map(|(a, b)| (a.to_owned(), b.to_owned()));
    Some(match kind {
        "ip-src" | "ip-dst" => vec![ip(value)],
        "ip-src|port" | "ip-dst|port" => {
            let (a, p) = split()?;
            vec![ip(&a), ("source.port", p)]
        }
        "domain" | "hostname" => vec![("source.fqdn", value.to_owned())],
        "domain|ip" | "hostname|port" => {
            let (a, b) = split()?;
            vec![("source.fqdn", a), (if kind == "domain|ip" { "source.ip" } else { "source.port" }, b)]
        }
        "url" => vec![("source.url", value.to_owned())],
        "uri" => vec![("source.urlpath", value.to_owned())],
        "md5" => vec![("malware.hash.md5", value.to_owned())],
        "sha1" => vec![("malware.hash.sha1", value.to_owned())],
        "sha256" => vec![("malware.hash.sha256", value.to_owned())],
        "filename|md5" | "filename|sha1" | "filename|sha256" => {
            let (_, h) = split()?;
            let field = match kind {
                "filename|md5" => "malware.hash.md5",
                "filename|sha1" => "malware.hash.sha1",
                _ => "malware.hash.sha256",
            };
            vec![(field, h)]
        }
        "email-src" | "email-dst" | "email" => vec![("source.account", value.to_owned())],
        "AS" => vec![("source.asn", value.to_owned())],
        _ => return None,
    })
}

fn misp_event(event: &Map<String, Value>, position: Position, out: &mut Output) {
    let event_tags = tag_names(event);
    let mut attributes: Vec<(&Map<String, Value>, Option<&str>)> = event
        .get("Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a.as_object()?, None)))
        .collect();
    for object in event.get("Object").and_then(Value::as_array).into_iter().flatten() {
        let name = object.get("name").and_then(Value::as_str);
        for a in object.get("Attribute").and_then(Value::as_array).into_iter().flatten() {
            if let Some(a) = a.as_object() {
                attributes.push((a, name));
            }
        }
    }
    for (attribute, object_name) in attributes {
        if attribute.get("deleted").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let kind = text(attribute, "type");
        let Some(values) = fields(kind, text(attribute, "value")) else { continue };
        let raw = Value::Object(attribute.clone()).to_string();
        match attribute_event(event, &event_tags, attribute, object_name, values) {
            Ok(e) => out.event(e, position, raw.as_bytes()),
            Err(reason) => {
                out.reject(position, format!("attribute {}: {reason}", text(attribute, "uuid")), raw.as_bytes())
            }
        }
    }
}

fn attribute_event(
    event: &Map<String, Value>,
    event_tags: &[&str],
    attribute: &Map<String, Value>,
    object_name: Option<&str>,
    values: Vec<(&'static str, String)>,
) -> Result<Event, String> {
    let mut e = Event::default();
    for (field, value) in values {
        e.set(field, &value).map_err(|err| err.to_string())?;
    }
    let tags = tag_names(attribute);
    // A time: the attribute's first sighting, its last change, or the event's date.
    let time = attribute
        .get("first_seen")
        .and_then(Value::as_str)
        .and_then(farol_model::Timestamp::parse)
        .or_else(|| epoch(attribute.get("timestamp")?))
        .or_else(|| farol_model::Timestamp::parse(text(event, "date")))
        .ok_or("no time: neither first_seen, timestamp nor the event's date")?;
    e.time_source = Some(time);
    let kind = classification_of(&tags).or_else(|| classification_of(event_tags)).unwrap_or_else(|| {
        let by_type = match (
            text(attribute, "category"),
            e.malware_hash_md5.is_some() || e.malware_hash_sha1.is_some() || e.malware_hash_sha256.is_some(),
        ) {
            (_, true) => "malware",
            ("Payload delivery", _) => "malware-distribution",
            _ => "blacklist",
        };
        by_type.to_owned()
    });
    e.set("classification.type", &kind).map_err(|err| err.to_string())?;
    // The more restrictive of the attribute's and the event's label: never lowered.
    e.tlp = tlp_of(&tags).max(tlp_of(event_tags));
    let _ = e.set("event_description.text", text(event, "info"));
    let _ = e.set("misp.event_uuid", text(event, "uuid"));
    let _ = e.set("misp.attribute_uuid", text(attribute, "uuid"));
    let mut extra = |k: &str, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_null() && *v != "") {
            e.extra.insert(k, v.clone());
        }
    };
    extra("misp.category", attribute.get("category"));
    extra("misp.type", attribute.get("type"));
    extra("misp.to_ids", attribute.get("to_ids"));
    extra("misp.comment", attribute.get("comment"));
    extra("misp.distribution", event.get("distribution"));
    extra("misp.threat_level_id", event.get("threat_level_id"));
    extra("misp.orgc", event.get("Orgc").and_then(|o| o.get("name")));
    if let Some(name) = object_name {
        e.extra.insert("misp.object", Value::String(name.to_owned()));
    }
    let all: Vec<Value> = event_tags.iter().chain(&tags).map(|t| Value::String((*t).to_owned())).collect();
    if !all.is_empty() {
        e.extra.insert("misp.tags", Value::Array(all));
    }
    Ok(e)
}

/// MISP writes Unix times as strings or numbers.
fn epoch(v: &Value) -> Option<farol_model::Timestamp> {
    let secs = v.as_i64().or_else(|| v.as_str()?.parse().ok())?;
    farol_model::Timestamp::from_secs(secs)
}
