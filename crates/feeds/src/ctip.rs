//! The `ctip` format: Microsoft's Cyber Threat Intelligence Program feeds of infected machines.
//!
//! Two variants, told apart by their keys: the current one ("Azure", one JSON object per line,
//! `DataFeed` such as `CTIP-Infected`) and the legacy Interflow one (a JSON array of objects
//! with lower-case keys such as `networksourceipv4`). Both become malicious-code /
//! infected-system events with the malware family as identifier, except `CTIP-C2` records,
//! which describe command-and-control servers (c2-server).

use std::collections::BTreeMap;

use base64::Engine as _;
use farol_model::{Event, Position, Timestamp};
use serde_json::{Map, Value};

use crate::json::JsonRecords;
use crate::{Confidence, ConfigError, Format, JsonLayout, Output, ParseConfig, Parser, Probe};

pub(crate) const FORMAT: Format = Format {
    name: "ctip",
    description: "Microsoft CTIP botnet feeds: the Infected/C2 JSON-lines variant and the Interflow JSON array",
    build: |config, _| Ok(Box::new(CtipParser::new(config)?)),
    detect,
};

fn detect(probe: &Probe<'_>) -> Option<Confidence> {
    let head = String::from_utf8_lossy(&probe.head[..probe.head.len().min(4096)]);
    let azure = head.contains("\"DataFeed\"") && (head.contains("\"SourcedFrom\"") || head.contains("\"ThreatCode\""));
    let interflow = head.contains("\"indicatorthreattype\"") || head.contains("\"networksourceipv4\"");
    (azure || interflow).then_some(Confidence::Certain)
}

#[derive(Debug)]
pub(crate) struct CtipParser {
    records: JsonRecords,
}

impl CtipParser {
    pub(crate) fn new(config: &ParseConfig) -> Result<CtipParser, ConfigError> {
        Ok(CtipParser { records: JsonRecords::new(JsonLayout::Auto, config.max_record()) })
    }
}

fn record(bytes: &[u8], position: Position, out: &mut Output) {
    let result =
        serde_json::from_slice::<Value>(bytes).map_err(|e| format!("invalid JSON: {e}")).and_then(|v| match v {
            Value::Object(map) if map.contains_key("indicatorthreattype") || map.contains_key("networksourceipv4") => {
                interflow(&map)
            }
            Value::Object(map) => azure(&map),
            _ => Err("expected a JSON object".to_owned()),
        });
    match result {
        Ok(event) => out.event(event, position, bytes),
        Err(reason) => out.reject(position, reason, bytes),
    }
}

impl Parser for CtipParser {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        self.records.push(chunk, out, &mut record);
    }

    fn finish(&mut self, out: &mut Output) {
        self.records.finish(out, &mut record);
    }
}

/// Sets a field, naming the CTIP key in the error.
fn set(event: &mut Event, key: &str, field: &str, value: &Value) -> Result<(), String> {
    event.set_json(field, value).map_err(|e| format!("{key}: {e}"))
}

/// `"a, a"` as CTIP sometimes repeats an address: the first one.
fn first_of_list(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.split(',').next().unwrap_or("").trim().to_owned()),
        other => other.clone(),
    }
}

fn interflow(map: &Map<String, Value>) -> Result<Event, String> {
    match map.get("indicatorthreattype").and_then(Value::as_str) {
        Some("Botnet") | None => {}
        Some(other) => return Err(format!("indicatorthreattype: expected Botnet, found {other:?}")),
    }
    let mut e = Event::default();
    for (key, value) in map {
        if value.is_null() || value == "" {
            continue;
        }
        match key.as_str() {
            "firstreporteddatetime" => set(&mut e, key, "time.source", value)?,
            "networksourceipv4" => set(&mut e, key, "source.ip", value)?,
            "networksourceport" => set(&mut e, key, "source.port", value)?,
            "networkdestinationipv4" => {
                let ip = first_of_list(value);
                if ip != "0.0.0.0" {
                    set(&mut e, key, "destination.ip", &ip)?;
                }
            }
            "networkdestinationport" => set(&mut e, key, "destination.port", value)?,
            "networksourceasn" => set(&mut e, key, "source.asn", value)?,
            // Not always a name: skipped when it is the address or not a valid domain.
            "hostname" => {
                if Some(value) != map.get("networkdestinationipv4") {
                    let _ = e.set_json("destination.fqdn", value);
                }
            }
            "externalid" => {
                set(&mut e, key, "malware.name", value)?;
                let family = value.as_str().map(str::to_lowercase).map(Value::String).unwrap_or_else(|| value.clone());
                set(&mut e, key, "classification.identifier", &family)?;
            }
            "description" => set(&mut e, key, "event_description.text", value)?,
            "tlplevel" => set(&mut e, key, "tlp", value)?,
            "useragent" => {
                e.extra.insert("user_agent", value.clone());
            }
            "confidence" => {
                let c = value.as_f64().or_else(|| value.as_str().and_then(|s| s.parse().ok()));
                let c = c
                    .filter(|c| (0.0..=100.0).contains(c))
                    .ok_or_else(|| format!("confidence: expected 0 to 100, found {value}"))?;
                e.feed_accuracy = Some(c);
            }
            "version" | "indicatorthreattype" | "indicatorexpirationdatetime" => {}
            other => {
                e.extra.insert(other, value.clone());
            }
        }
    }
    e.set("classification.type", "infected-system").map_err(|err| err.to_string())?;
    Ok(e)
}

/// Where an Azure-variant key goes: a field, or a key under `extra`.
enum To {
    Field(&'static str),
    Extra(&'static str),
}

fn azure_target(key: &str) -> Option<To> {
    use To::{Extra, Field};
    Some(match key {
        "DataFeed" => Field("feed.name"),
        "SourcedFrom" => Field("event_description.text"),
        "Malware" => Extra("malware"),
        "ThreatCode" => Field("malware.name"),
        "TotalEncounters" => Extra("total_encounters"),
        "TLP" => Field("tlp"),
        "SourceIp" => Field("source.ip"),
        "SourcePort" => Field("source.port"),
        "DestinationIp" => Field("destination.ip"),
        "DestinationPort" => Field("destination.port"),
        "HttpInfo.HttpHost" => Extra("http.host"),
        "HttpInfo.HttpRequest" => Extra("http.request"),
        "HttpInfo.HttpMethod" => Extra("http.method"),
        "HttpInfo.HttpReferrer" => Extra("http.referrer"),
        "HttpInfo.HttpVersion" => Extra("http.version"),
        "HttpInfo.HttpUserAgent" | "Payload.UserAgent" => Extra("user_agent"),
        "Signatures.Sha256" => Extra("signatures.sha256"),
        "Payload.Referer" => Extra("http_referer"),
        "Payload.URI" => Field("destination.urlpath"),
        "Payload.type" => Field("protocol.application"),
        "DateTimeReceivedUtc"
        | "DateTimeReceivedUtcTxt"
        | "ThreatConfidence"
        | "Payload.ts"
        | "Payload.Protocol"
        | "TargetIp"
        | "TargetPort" => return None,
        _ => {
            for (side, prefix) in
                [("source", "SourceIpInfo.SourceIp"), ("destination", "DestinationIpInfo.DestinationIp")]
            {
                if let Some(rest) = key.strip_prefix(prefix) {
                    return Some(ip_info(side, rest));
                }
            }
            if let Some(n) = key.strip_prefix("CustomInfo.CustomField") {
                return Some(Extra(match n {
                    "1" => "custom_field1",
                    "2" => "custom_field2",
                    "3" => "custom_field3",
                    "4" => "custom_field4",
                    _ => "custom_field5",
                }));
            }
            return None;
        }
    })
}

fn ip_info(side: &str, attribute: &str) -> To {
    let source = side == "source";
    let pick = |s: &'static str, d: &'static str| if source { s } else { d };
    match attribute {
        "AsnNumber" => To::Field(pick("source.asn", "destination.asn")),
        "AsnOrgName" => To::Field(pick("source.as_name", "destination.as_name")),
        "CountryCode" => To::Field(pick("source.geolocation.cc", "destination.geolocation.cc")),
        "Region" => To::Field(pick("source.geolocation.region", "destination.geolocation.region")),
        "City" => To::Field(pick("source.geolocation.city", "destination.geolocation.city")),
        "Latitude" => To::Field(pick("source.geolocation.latitude", "destination.geolocation.latitude")),
        "Longitude" => To::Field(pick("source.geolocation.longitude", "destination.geolocation.longitude")),
        "PostalCode" => To::Extra(pick("source.geolocation.postal_code", "destination.geolocation.postal_code")),
        "MetroCode" => To::Extra(pick("source.geolocation.metro_code", "destination.geolocation.metro_code")),
        "AreaCode" => To::Extra(pick("source.geolocation.area_code", "destination.geolocation.area_code")),
        "ConnectionType" => To::Field("protocol.application"),
        _ => To::Extra(pick("source.ip_info", "destination.ip_info")),
    }
}

/// Windows FILETIME (100-nanosecond ticks since 1601-01-01) to a timestamp.
fn filetime(ticks: &Value) -> Option<Timestamp> {
    let ticks = ticks.as_i64().or_else(|| ticks.as_str()?.parse().ok()).filter(|&t| t >= 0)?;
    Timestamp::from_micros(ticks.checked_div(10)?.checked_sub(11_644_473_600_000_000)?)
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

fn azure(map: &Map<String, Value>) -> Result<Event, String> {
    let mut flat = BTreeMap::new();
    for (k, v) in map {
        if k == "Payload" {
            // Base64 of JSON (or of anything; "AA==" is an empty payload).
            if let Some(text) = v.as_str() {
                let decoded = base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap_or_default();
                match serde_json::from_slice::<Value>(&decoded) {
                    Ok(payload @ Value::Object(_)) => flatten("Payload", &payload, &mut flat),
                    _ if decoded.iter().all(|&b| b == 0) => {}
                    _ => {
                        flat.insert("Payload".into(), v.clone());
                    }
                }
            }
            continue;
        }
        flatten(k, v, &mut flat);
    }
    let mut e = Event::default();
    let time = flat
        .get("DateTimeReceivedUtc")
        .and_then(filetime)
        .or_else(|| flat.get("DateTimeReceivedUtcTxt").and_then(Value::as_str).and_then(Timestamp::parse));
    e.time_source = Some(time.ok_or("DateTimeReceivedUtc: expected a Windows file time, found none")?);
    for (key, value) in &flat {
        if value.is_null() || value == "" {
            continue;
        }
        match azure_target(key) {
            Some(To::Field(field)) => set(&mut e, key, field, value)?,
            Some(To::Extra(name)) => {
                e.extra.insert(name, value.clone());
            }
            None if key.starts_with("Payload.") => {
                if key == "Payload.ts" {
                    e.extra.insert("payload.timestamp", value.clone());
                } else if key == "Payload.Protocol" {
                    // "HTTP/1.1": the application protocol is the part before the slash.
                    if let Some(p) = value.as_str().and_then(|s| s.split('/').next()) {
                        let _ = e.set("protocol.application", p);
                    }
                } else {
                    let rest = &key["Payload.".len()..];
                    e.extra.insert(format!("payload.{rest}"), value.clone());
                }
            }
            None if matches!(
                key.as_str(),
                "DateTimeReceivedUtc" | "DateTimeReceivedUtcTxt" | "TargetIp" | "TargetPort"
            ) => {}
            None if key == "ThreatConfidence" => {
                e.feed_accuracy = match value.as_str() {
                    Some("High") => Some(100.0),
                    Some("Medium") => Some(50.0),
                    Some("Low") => Some(20.0),
                    Some("Informational") => Some(10.0),
                    _ => None,
                };
            }
            // Keys this version does not know are kept, not refused.
            None => {
                e.extra.insert(key, value.clone());
            }
        }
    }
    let c2 = flat.get("DataFeed").and_then(Value::as_str) == Some("CTIP-C2");
    e.set("classification.type", if c2 { "c2-server" } else { "infected-system" }).map_err(|err| err.to_string())?;
    let family = flat.get("Malware").or_else(|| flat.get("ThreatCode"));
    if let Some(family) = family.and_then(Value::as_str) {
        set(&mut e, "Malware", "classification.identifier", &Value::String(family.to_lowercase()))?;
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_converts() {
        // 2024-06-01T10:12:44Z
        let ticks = (1_717_236_764i64 + 11_644_473_600) * 10_000_000;
        assert_eq!(filetime(&Value::from(ticks)).unwrap().to_string(), "2024-06-01T10:12:44+00:00");
        assert_eq!(filetime(&Value::from(ticks.to_string())).unwrap().to_string(), "2024-06-01T10:12:44+00:00");
        assert!(filetime(&Value::from(-1)).is_none());
        assert!(filetime(&Value::from("soon")).is_none());
    }
}
