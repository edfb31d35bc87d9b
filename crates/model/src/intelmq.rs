//! IntelMQ's JSON form of an event: one object with dotted keys (`"source.ip"`), `extra.*` keys
//! for free data, and values as IntelMQ's harmonization writes them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::event::{Event, FieldError};

/// Why a JSON object is not an IntelMQ event; lists every bad field, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntelMqError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Fields(Vec<FieldError>),
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Event {
    /// Reads one IntelMQ event from JSON text.
    pub fn from_intelmq_json(text: &[u8]) -> Result<Event, IntelMqError> {
        let value: Value = serde_json::from_slice(text).map_err(|e| IntelMqError::Json(e.to_string()))?;
        Event::from_intelmq(&value)
    }

    /// Reads one IntelMQ event: flat dotted keys, or IntelMQ's hierarchical form
    /// (`{"source": {"ip": ...}}`). `__type` is ignored; `extra` may be an object.
    pub fn from_intelmq(value: &Value) -> Result<Event, IntelMqError> {
        let Value::Object(map) = value else {
            return Err(IntelMqError::NotAnObject(json_kind(value)));
        };
        let mut event = Event::default();
        let mut errors = Vec::new();
        for (key, v) in map {
            match (key.as_str(), v) {
                ("__type", _) => {}
                ("extra", Value::Object(extra)) => {
                    for (k, v) in extra {
                        set(&mut event, &mut errors, &format!("extra.{k}"), v);
                    }
                }
                // IntelMQ before 1.0 kept extra as a JSON string.
                ("extra", Value::String(s)) => match serde_json::from_str::<Map<String, Value>>(s) {
                    Ok(extra) => {
                        for (k, v) in &extra {
                            set(&mut event, &mut errors, &format!("extra.{k}"), v);
                        }
                    }
                    Err(_) if s.is_empty() => {}
                    Err(_) => errors.push(FieldError::new("extra", "a JSON object", s)),
                },
                (key, Value::Object(inner)) if !key.starts_with("extra.") => {
                    flatten(key, inner, &mut |k, v| set(&mut event, &mut errors, k, v));
                }
                (key, v) => set(&mut event, &mut errors, key, v),
            }
        }
        if errors.is_empty() { Ok(event) } else { Err(IntelMqError::Fields(errors)) }
    }

    /// The event as IntelMQ's flat JSON object, keys sorted as IntelMQ writes them.
    pub fn to_intelmq(&self) -> Map<String, Value> {
        let mut sorted = BTreeMap::new();
        for (field, value) in self.iter() {
            sorted.insert(field.name().to_owned(), value.to_json());
        }
        for (key, value) in &self.extra {
            sorted.insert(format!("extra.{key}"), value.clone());
        }
        sorted.into_iter().collect()
    }

    /// The event as one line of IntelMQ JSON.
    pub fn to_intelmq_json(&self) -> String {
        Value::Object(self.to_intelmq()).to_string()
    }
}

fn set(event: &mut Event, errors: &mut Vec<FieldError>, key: &str, value: &Value) {
    if let Err(e) = event.set_json(key, value) {
        errors.push(e);
    }
}

fn flatten(prefix: &str, map: &Map<String, Value>, set: &mut impl FnMut(&str, &Value)) {
    for (k, v) in map {
        let key = format!("{prefix}.{k}");
        match v {
            Value::Object(inner) if !key.starts_with("extra.") => flatten(&key, inner, set),
            v => set(&key, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An event as IntelMQ 3 writes it, using every kind of field.
    const INTELMQ_EVENT: &str = r#"{"classification.identifier": "andromeda", "classification.taxonomy": "malicious-code", "classification.type": "infected-system", "destination.asn": 64496, "destination.geolocation.cc": "US", "destination.ip": "198.51.100.7", "destination.port": 80, "event_description.text": "Sinkhole connection", "extra.count": 3, "extra.naics": 517311, "extra.public_source": "SinkholeX", "extra.tags": ["a", "b"], "feed.accuracy": 100.0, "feed.name": "Sinkhole-Events IPv4", "feed.provider": "Shadowserver", "malware.name": "andromeda", "protocol.application": "http", "protocol.transport": "tcp", "raw": "InRpbWVzdGFtcCI=", "source.as_name": "MEO - SERVICOS DE COMUNICACOES E MULTIMEDIA S.A.", "source.asn": 3243, "source.geolocation.cc": "PT", "source.geolocation.city": "LISBON", "source.geolocation.latitude": 38.7167, "source.geolocation.longitude": -9.1333, "source.geolocation.region": "LISBOA", "source.ip": "2.80.1.2", "source.network": "2.80.0.0/14", "source.port": 49152, "source.reverse_dns": "bl5-1-2.dsl.telepac.pt", "source.tor_node": false, "time.observation": "2024-06-02T01:00:00.123456+00:00", "time.source": "2024-06-01T10:12:44+00:00", "tlp": "AMBER"}"#;

    #[test]
    fn round_trips_exactly() {
        let input: Value = serde_json::from_str(INTELMQ_EVENT).unwrap();
        let event = Event::from_intelmq(&input).unwrap();
        assert_eq!(Value::Object(event.to_intelmq()), input);
        let line = event.to_intelmq_json();
        let again = Event::from_intelmq_json(line.as_bytes()).unwrap();
        assert_eq!(again, event);
        assert_eq!(line, serde_json::to_string(&input).unwrap(), "keys sorted as IntelMQ sorts them");
    }

    #[test]
    fn reads_hierarchical_and_legacy_forms() {
        let input = json!({
            "__type": "Event",
            "source": {"ip": "192.0.2.1", "geolocation": {"cc": "pt"}},
            "classification": {"type": "botnet drone", "taxonomy": "malicious code"},
            "extra": {"a": {"b": 1}},
            "feed.accuracy": 100
        });
        let e = Event::from_intelmq(&input).unwrap();
        assert_eq!(
            Value::Object(e.to_intelmq()),
            json!({"source.ip": "192.0.2.1", "source.geolocation.cc": "PT",
                   "classification.type": "infected-system", "classification.taxonomy": "malicious-code",
                   "extra.a": {"b": 1}, "feed.accuracy": 100.0})
        );
        let old = json!({"extra": "{\"x\": 1}", "source.ip": "192.0.2.1"});
        assert_eq!(Event::from_intelmq(&old).unwrap().extra["x"], json!(1));
    }

    #[test]
    fn reports_every_bad_field() {
        let input = json!({"source.ip": "nope", "source.port": 70000, "tlp": "GREEN", "bogus": 1});
        let err = Event::from_intelmq(&input).unwrap_err().to_string();
        assert!(err.contains(r#"source.ip: expected an IPv4 or IPv6 address, found "nope""#), "{err}");
        assert!(err.contains(r#"source.port: expected a port number from 0 to 65535, found "70000""#), "{err}");
        assert!(err.contains("bogus: expected a harmonization field name"), "{err}");
        assert_eq!(Event::from_intelmq(&json!([1])).unwrap_err().to_string(), "expected a JSON object, found an array");
        assert!(Event::from_intelmq_json(b"{").unwrap_err().to_string().starts_with("invalid JSON"));
    }
}
