//! The `n6` format: events from CERT Polska's n6 (its REST API's JSON array, or one event per
//! line as its stream delivers them). An event with several addresses becomes one event per
//! address.

use farol_model::{Event, Position};
use serde_json::{Map, Value};

use crate::json::JsonRecords;
use crate::{Confidence, ConfigError, Format, JsonLayout, Output, ParseConfig, Parser, Probe};

pub(crate) const FORMAT: Format = Format {
    name: "n6",
    description: "n6 events (CERT Polska), a JSON array or one object per line",
    build: |config, _| Ok(Box::new(N6::new(config)?)),
    detect,
};

fn detect(p: &Probe<'_>) -> Option<Confidence> {
    let head = String::from_utf8_lossy(&p.head[..p.head.len().min(4096)]);
    let n6 = head.contains("\"category\"")
        && head.contains("\"source\"")
        && (head.contains("\"restriction\"") || head.contains("\"confidence\""));
    n6.then_some(Confidence::Certain)
}

/// n6 categories as RSIT taxonomy types, with an identifier.
fn category(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "amplifier" => ("ddos-amplifier", "amplifier"),
        "bots" => ("infected-system", "malware-generic"),
        "backdoor" => ("system-compromise", "backdoor"),
        "cnc" => ("c2-server", "c2-server"),
        "deface" => ("unauthorised-information-modification", "defacement"),
        "dns-query" => ("other", "dns-query"),
        "dos-attacker" => ("ddos", "dos-attacker"),
        "dos-victim" => ("ddos", "dos-victim"),
        "flow" => ("other", "flow"),
        "flow-anomaly" => ("other", "flow-anomaly"),
        "fraud" => ("masquerade", "fraud"),
        "leak" => ("data-leak", "leak"),
        "malurl" => ("malware-distribution", "malurl"),
        "malware-action" => ("malware-configuration", "malware-configuration"),
        "phish" => ("phishing", "phishing"),
        "proxy" => ("proxy", "open-proxy"),
        "sandbox-url" => ("malware-distribution", "sandbox-url"),
        "scanning" => ("scanner", "scanning"),
        "server-exploit" => ("exploit", "server-exploit"),
        "spam" => ("spam", "spam"),
        "spam-url" => ("spam", "spam-url"),
        "tor" => ("tor", "tor-exit-node"),
        "vulnerable" => ("vulnerable-system", "vulnerable"),
        "webinject" => ("malware-configuration", "webinject"),
        "other" => ("other", "other"),
        _ => return None,
    })
}

#[derive(Debug)]
struct N6 {
    records: JsonRecords,
}

impl N6 {
    fn new(config: &ParseConfig) -> Result<N6, ConfigError> {
        Ok(N6 { records: JsonRecords::new(JsonLayout::Auto, config.max_record()) })
    }
}

fn events(m: &Map<String, Value>) -> Result<Vec<Event>, String> {
    let mut e = Event::default();
    let set = |e: &mut Event, key: &str, field: &str| -> Result<(), String> {
        match m.get(key) {
            Some(v) if !v.is_null() && v != "unknown" => e.set_json(field, v).map_err(|err| format!("{key}: {err}")),
            _ => Ok(()),
        }
    };
    set(&mut e, "time", "time.source")?;
    set(&mut e, "dip", "destination.ip")?;
    set(&mut e, "dport", "destination.port")?;
    set(&mut e, "sport", "source.port")?;
    set(&mut e, "proto", "protocol.transport")?;
    set(&mut e, "fqdn", "source.fqdn")?;
    set(&mut e, "url", "source.url")?;
    set(&mut e, "md5", "malware.hash.md5")?;
    set(&mut e, "sha1", "malware.hash.sha1")?;
    set(&mut e, "sha256", "malware.hash.sha256")?;
    let cat = m.get("category").and_then(Value::as_str).unwrap_or("");
    let name = m.get("name").and_then(Value::as_str);
    if m.get("type").and_then(Value::as_str) == Some("bl-update") {
        e.set("classification.type", "blacklist").map_err(|err| err.to_string())?;
    } else if let Some((kind, ident)) = category(cat) {
        e.set("classification.type", kind).map_err(|err| err.to_string())?;
        let ident = if cat == "bots" { name.unwrap_or(ident) } else { ident };
        e.set("classification.identifier", ident).map_err(|err| err.to_string())?;
    } else {
        // A category this version does not know: kept, and classified as undetermined.
        e.set("classification.type", "undetermined").map_err(|err| err.to_string())?;
        e.extra.insert("n6.category", Value::String(cat.to_owned()));
    }
    if let (Some(name), "bots" | "cnc") = (name, cat) {
        let _ = e.set("malware.name", name);
    }
    match m.get("restriction").and_then(Value::as_str) {
        Some("public") => e.set("tlp", "CLEAR").map_err(|err| err.to_string())?,
        Some("need-to-know") => e.set("tlp", "AMBER").map_err(|err| err.to_string())?,
        Some("internal") => e.set("tlp", "RED").map_err(|err| err.to_string())?,
        _ => {}
    }
    for (key, extra) in [
        ("id", "n6.id"),
        ("source", "n6.source"),
        ("confidence", "n6.confidence"),
        ("origin", "n6.origin"),
        ("expires", "n6.expires"),
        ("adip", "n6.adip"),
        ("name", "n6.name"),
    ] {
        if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
            e.extra.insert(extra, v.clone());
        }
    }
    let addresses = match m.get("address") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return Ok(vec![e]),
    };
    addresses
        .iter()
        .map(|a| {
            let mut ev = e.clone();
            let field = |k: &str| a.get(k).filter(|v| !v.is_null());
            if let Some(ip) = field("ip") {
                ev.set_json("source.ip", ip).map_err(|err| format!("address: {err}"))?;
            }
            if let Some(asn) = field("asn") {
                ev.set_json("source.asn", asn).map_err(|err| format!("address: {err}"))?;
            }
            if let Some(cc) = field("cc") {
                ev.set_json("source.geolocation.cc", cc).map_err(|err| format!("address: {err}"))?;
            }
            if let Some(rdns) = field("rdns") {
                let _ = ev.set_json("source.reverse_dns", rdns);
            }
            Ok(ev)
        })
        .collect()
}

fn record(bytes: &[u8], position: Position, out: &mut Output) {
    let result = serde_json::from_slice::<Map<String, Value>>(bytes)
        .map_err(|e| format!("invalid JSON: {e}"))
        .and_then(|m| events(&m));
    match result {
        Ok(list) => {
            for e in list {
                out.event(e, position, bytes);
            }
        }
        Err(reason) => out.reject(position, reason, bytes),
    }
}

impl Parser for N6 {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        self.records.push(chunk, out, &mut record);
    }

    fn finish(&mut self, out: &mut Output) {
        self.records.finish(out, &mut record);
    }
}
