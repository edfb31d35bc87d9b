//! The `stix` format: STIX 2.1 bundles (or TAXII envelopes) as input. Indicators with simple
//! patterns, observed data and sightings become events; cyber observables, indicators and
//! markings met along the way resolve the references between them.

use std::collections::HashMap;

use farol_model::{Event, Position, Tlp};
use serde_json::{Map, Value};

use crate::framing::{Frame, JsonNested};
use crate::{Confidence, ConfigError, Format, Output, ParseConfig, Parser, Probe};

pub(crate) const FORMAT: Format = Format {
    name: "stix",
    description: "STIX 2.1 bundles or TAXII 2.1 envelopes: indicators, observed-data, sightings",
    build: |config, _| Ok(Box::new(Stix::new(config)?)),
    detect,
};

fn detect(p: &Probe<'_>) -> Option<Confidence> {
    let head = String::from_utf8_lossy(&p.head[..p.head.len().min(8192)]).replace(' ', "");
    let bundle = head.contains("\"type\":\"bundle\"");
    let envelope = head.contains("\"objects\":[") && head.contains("\"spec_version\":\"2.1\"");
    (bundle || envelope).then_some(Confidence::Certain)
}

/// Objects kept to resolve references; beyond this many the report is refused.
const MAX_KEPT: usize = 1_000_000;

/// Field values that an observable or a simple pattern stands for.
type Observables = Vec<Vec<(&'static str, String)>>;

#[derive(Debug, Clone)]
struct Indicator {
    observables: Observables,
    kind: &'static str,
    tlp: Option<Tlp>,
    name: Option<String>,
}

#[derive(Debug)]
struct Stix {
    nested: JsonNested,
    state: State,
}

/// What the objects seen so far say about the ones still to come.
#[derive(Debug, Default)]
struct State {
    /// Cyber observables by id: what each stands for.
    observables: HashMap<String, Vec<(&'static str, String)>>,
    indicators: HashMap<String, Indicator>,
    /// Observed data and sightings whose references were not yet seen.
    pending: Vec<(Map<String, Value>, Position, Vec<u8>)>,
    kept: usize,
}

impl Stix {
    fn new(config: &ParseConfig) -> Result<Stix, ConfigError> {
        Ok(Stix { nested: JsonNested::new(2, config.max_record()), state: State::default() })
    }
}

impl State {
    fn frame(&mut self, frame: Frame<'_>, out: &mut Output) {
        let (bytes, position) = match frame {
            Frame::Record { bytes, position } => (bytes, position),
            Frame::TooLong { position, head } => {
                out.reject(position, format!("STIX object longer than the limit ({} bytes)", position.len), head);
                return;
            }
        };
        let object = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return out.reject(position, "expected a STIX object", bytes),
            Err(e) => return out.reject(position, format!("invalid JSON: {e}"), bytes),
        };
        self.kept += 1;
        if self.kept > MAX_KEPT && out.fatal.is_none() {
            out.fatal = Some(format!("more than {MAX_KEPT} STIX objects in one bundle: split it"));
            return;
        }
        let id = text(&object, "id").to_owned();
        match text(&object, "type") {
            "indicator" => match indicator(&object) {
                Ok(ind) => {
                    self.emit(&object, &ind, position, bytes, "valid_from", out);
                    self.indicators.insert(id, ind);
                }
                Err(reason) => out.reject(position, reason, bytes),
            },
            "observed-data" | "sighting" => {
                if !self.resolve(&object, position, bytes, out) {
                    self.pending.push((object, position, bytes.to_vec()));
                }
            }
            kind => {
                if let Some(values) = sco(kind, &object) {
                    self.observables.insert(id, values);
                }
            }
        }
    }

    /// Emits the events of an observed-data or sighting whose references are known; false when
    /// one is not (yet).
    fn resolve(&mut self, object: &Map<String, Value>, position: Position, bytes: &[u8], out: &mut Output) -> bool {
        if text(object, "type") == "sighting" {
            let Some(ind) = self.indicators.get(text(object, "sighting_of_ref")).cloned() else { return false };
            self.emit(object, &ind, position, bytes, "first_seen", out);
            return true;
        }
        let mut observables = Vec::new();
        if let Some(Value::Object(embedded)) = object.get("objects") {
            for sco_value in embedded.values() {
                if let Some(m) = sco_value.as_object()
                    && let Some(values) = sco(text(m, "type"), m)
                {
                    observables.push(values);
                }
            }
        } else if let Some(Value::Array(refs)) = object.get("object_refs") {
            for r in refs.iter().filter_map(Value::as_str) {
                match self.observables.get(r) {
                    Some(values) => observables.push(values.clone()),
                    // References to objects that stand for no observable (a process) are fine.
                    None if !is_observable_ref(r) => {}
                    None => return false,
                }
            }
        }
        let ind = Indicator { observables, kind: "other", tlp: None, name: None };
        self.emit(object, &ind, position, bytes, "first_observed", out);
        true
    }

    fn emit(
        &self,
        object: &Map<String, Value>,
        ind: &Indicator,
        position: Position,
        bytes: &[u8],
        time_key: &str,
        out: &mut Output,
    ) {
        if ind.observables.is_empty() {
            out.reject(
                position,
                format!("{} {}: nothing farol can act on", text(object, "type"), text(object, "id")),
                bytes,
            );
            return;
        }
        for values in &ind.observables {
            let result = (|| -> Result<Event, String> {
                let mut e = Event::default();
                for (field, value) in values {
                    e.set(field, value).map_err(|err| err.to_string())?;
                }
                let time = [time_key, "created", "modified"].iter().map(|k| text(object, k)).find(|t| !t.is_empty());
                if let Some(t) = time {
                    e.set("time.source", t).map_err(|err| err.to_string())?;
                }
                e.set("classification.type", ind.kind).map_err(|err| err.to_string())?;
                if let Some(tlp) = tlp(object).max(ind.tlp) {
                    e.tlp = Some(tlp);
                }
                if let Some(name) = &ind.name {
                    let _ = e.set("event_description.text", name);
                }
                if let Some(c) = object.get("confidence").and_then(Value::as_f64).filter(|c| (0.0..=100.0).contains(c))
                {
                    e.feed_accuracy = Some(c);
                }
                e.extra.insert("stix.id", Value::String(text(object, "id").to_owned()));
                for key in [
                    "number_observed",
                    "count",
                    "valid_until",
                    "last_seen",
                    "last_observed",
                    "labels",
                    "indicator_types",
                ] {
                    if let Some(v) = object.get(key) {
                        e.extra.insert(format!("stix.{key}"), v.clone());
                    }
                }
                Ok(e)
            })();
            match result {
                Ok(e) => out.event(e, position, bytes),
                Err(reason) => out.reject(position, reason, bytes),
            }
        }
    }
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

fn is_observable_ref(id: &str) -> bool {
    let kind = id.split("--").next().unwrap_or("");
    matches!(kind, "ipv4-addr" | "ipv6-addr" | "domain-name" | "url" | "email-addr" | "file" | "autonomous-system")
}

fn tlp(object: &Map<String, Value>) -> Option<Tlp> {
    let refs = object.get("object_marking_refs")?.as_array()?;
    refs.iter().filter_map(Value::as_str).filter_map(Tlp::from_stix_marking).max()
}

/// What a cyber observable stands for, as event fields.
fn sco(kind: &str, m: &Map<String, Value>) -> Option<Vec<(&'static str, String)>> {
    let value = text(m, "value");
    let field = match kind {
        "ipv4-addr" | "ipv6-addr" if value.contains('/') => "source.network",
        "ipv4-addr" | "ipv6-addr" => "source.ip",
        "domain-name" => "source.fqdn",
        "url" => "source.url",
        "email-addr" => "source.account",
        "autonomous-system" => return m.get("number").map(|n| vec![("source.asn", n.to_string())]),
        "file" => {
            let hashes = m.get("hashes")?.as_object()?;
            let values: Vec<(&'static str, String)> =
                hashes.iter().filter_map(|(k, v)| Some((hash_field(k)?, v.as_str()?.to_owned()))).collect();
            return (!values.is_empty()).then_some(values);
        }
        _ => return None,
    };
    (!value.is_empty()).then(|| vec![(field, value.to_owned())])
}

fn hash_field(name: &str) -> Option<&'static str> {
    match name.trim_matches('\'').to_ascii_uppercase().as_str() {
        "MD5" => Some("malware.hash.md5"),
        "SHA-1" | "SHA1" => Some("malware.hash.sha1"),
        "SHA-256" | "SHA256" => Some("malware.hash.sha256"),
        _ => None,
    }
}

fn indicator(m: &Map<String, Value>) -> Result<Indicator, String> {
    let id = text(m, "id");
    let pattern_type = text(m, "pattern_type");
    if !pattern_type.is_empty() && pattern_type != "stix" {
        return Err(format!("indicator {id}: pattern_type {pattern_type:?} is not a STIX pattern"));
    }
    let observables = pattern(text(m, "pattern")).map_err(|e| format!("indicator {id}: {e}"))?;
    let types: Vec<&str> = m
        .get("indicator_types")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect());
    let kind = if types.contains(&"compromised") {
        "system-compromise"
    } else if types.contains(&"malicious-activity") || types.is_empty() {
        "blacklist"
    } else {
        "undetermined"
    };
    Ok(Indicator { observables, kind, tlp: tlp(m), name: m.get("name").and_then(Value::as_str).map(str::to_owned) })
}

/// The event fields a simple STIX pattern names, one list per observable; why not, when it is
/// not simple. For whoever takes in STIX indicators (TAXII) without parsing a report.
pub fn pattern_fields(p: &str) -> Result<Observables, String> {
    pattern(p)
}

/// The observables of a simple STIX pattern: comparisons with `=` (or `ISSUBSET` for
/// networks) joined by `OR`. Anything that needs several observables at once (`AND`,
/// `FOLLOWEDBY`) is not one event.
fn pattern(p: &str) -> Result<Observables, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_quote = false;
    let mut escape = false;
    for c in p.chars() {
        if in_quote {
            current.push(c);
            if escape {
                escape = false;
            } else if c == '\\' {
                escape = true;
            } else if c == '\'' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '\'' => {
                in_quote = true;
                current.push(c);
            }
            '[' | ']' | '(' | ')' => current.push(' '),
            _ => current.push(c),
        }
        if current.ends_with(" OR ") {
            current.truncate(current.len() - 4);
            parts.push(std::mem::take(&mut current));
        } else if current.ends_with(" AND ") || current.ends_with(" FOLLOWEDBY ") {
            return Err(format!(
                "the pattern {p:?} combines observables; farol reads patterns of one observable (or several joined by OR)"
            ));
        }
    }
    if in_quote {
        return Err(format!("the pattern {p:?} has an unterminated string"));
    }
    parts.push(current);
    parts.iter().map(|c| comparison(c.trim(), p)).collect()
}

fn comparison(c: &str, p: &str) -> Result<Vec<(&'static str, String)>, String> {
    let unsupported = || format!("cannot read the comparison {c:?} of the pattern {p:?}");
    let (path, rest) = c.split_once(char::is_whitespace).ok_or_else(unsupported)?;
    let rest = rest.trim_start();
    let (op, value) = rest.split_once(char::is_whitespace).ok_or_else(unsupported)?;
    let value = value.trim();
    let value = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).ok_or_else(unsupported)?;
    let value = value.replace("\\'", "'").replace("\\\\", "\\");
    let (object, property) = path.split_once(':').ok_or_else(unsupported)?;
    let field = match (object, property, op) {
        ("ipv4-addr" | "ipv6-addr", "value", "ISSUBSET") => "source.network",
        ("ipv4-addr" | "ipv6-addr", "value", "=") if value.contains('/') => "source.network",
        ("ipv4-addr" | "ipv6-addr", "value", "=") => "source.ip",
        ("domain-name", "value", "=") => "source.fqdn",
        ("url", "value", "=") => "source.url",
        ("email-addr", "value", "=") => "source.account",
        ("file", hashes, "=") if hashes.starts_with("hashes.") => {
            hash_field(&hashes["hashes.".len()..]).ok_or_else(unsupported)?
        }
        _ => return Err(unsupported()),
    };
    Ok(vec![(field, value)])
}

impl Parser for Stix {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        let state = &mut self.state;
        self.nested.push(chunk, &mut |frame, _| state.frame(frame, out));
    }

    fn finish(&mut self, out: &mut Output) {
        let state = &mut self.state;
        self.nested.finish(&mut |frame, _| state.frame(frame, out));
        if let Some(e) = self.nested.error() {
            out.fatal = Some(e.to_owned());
        }
        for (object, position, bytes) in std::mem::take(&mut state.pending) {
            if !state.resolve(&object, position, &bytes, out) {
                let reason = format!(
                    "{} {}: refers to objects that are not in the bundle",
                    text(&object, "type"),
                    text(&object, "id")
                );
                out.reject(position, reason, &bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let check = |p: &str| {
            pattern(p).map(|o| o.into_iter().flatten().map(|(f, v)| format!("{f}={v}")).collect::<Vec<_>>().join(" | "))
        };
        assert_eq!(check("[ipv4-addr:value = '198.51.100.1']").unwrap(), "source.ip=198.51.100.1");
        assert_eq!(check("[ipv4-addr:value ISSUBSET '198.51.100.0/24']").unwrap(), "source.network=198.51.100.0/24");
        assert_eq!(check("[file:hashes.'SHA-256' = 'ab']").unwrap(), "malware.hash.sha256=ab");
        assert_eq!(check("[file:hashes.MD5 = 'cd']").unwrap(), "malware.hash.md5=cd");
        assert_eq!(check("[url:value = 'http://x.example/it\\'s']").unwrap(), "source.url=http://x.example/it's");
        assert_eq!(
            check("[domain-name:value = 'a.example' OR domain-name:value = 'b.example'] OR [ipv4-addr:value = '192.0.2.1']").unwrap(),
            "source.fqdn=a.example | source.fqdn=b.example | source.ip=192.0.2.1"
        );
        assert!(
            check("[ipv4-addr:value = '1.2.3.4' AND network-traffic:dst_port = 80]")
                .unwrap_err()
                .contains("combines observables")
        );
        assert!(check("[process:name = 'x']").unwrap_err().contains("cannot read the comparison"));
        assert!(check("[url:value = 'unterminated]").unwrap_err().contains("unterminated"));
    }
}
