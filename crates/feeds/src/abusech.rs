//! abuse.ch's feeds: URLhaus (CSV), Feodo Tracker (CSV and JSON) and ThreatFox (JSON export).

use farol_model::{Event, Position};
use serde_json::{Map, Value};

use crate::csv::{CsvRecords, Item};
use crate::framing::{Frame, JsonNested};
use crate::json::JsonRecords;
use crate::{Confidence, ConfigError, CsvOptions, Format, JsonLayout, Output, ParseConfig, Parser, Probe};

pub(crate) const URLHAUS: Format = Format {
    name: "urlhaus",
    description: "abuse.ch URLhaus CSV (csv_recent, csv_online, the full dump)",
    build: |config, _| Ok(Box::new(CsvFeed::new(config, urlhaus)?)),
    detect: |p| detect_text(p, &[&["id,dateadded,url,url_status"]], "urlhaus"),
};

pub(crate) const FEODO: Format = Format {
    name: "feodo",
    description: "abuse.ch Feodo Tracker botnet C2 IP blocklist, CSV or JSON",
    build: |config, _| Ok(Box::new(Feodo::new(config)?)),
    detect: |p| {
        let markers: &[&[&str]] = &[
            &["first_seen_utc,dst_ip,dst_port"],
            &["first_seen,dst_ip,dst_port"],
            &["ip_address:", "first_seen:", "malware:"],
        ];
        detect_text(p, markers, "feodo")
    },
};

pub(crate) const THREATFOX: Format = Format {
    name: "threatfox",
    description: "abuse.ch ThreatFox JSON export (an object of IOC ids) or API answer",
    build: |config, _| Ok(Box::new(ThreatFox::new(config))),
    detect: |p| {
        detect_text(
            p,
            &[&["ioc_value:", "ioc_type:", "threat_type:"], &["ioc:", "ioc_type:", "threat_type:"]],
            "threatfox",
        )
    },
};

/// Certain when the content has all the markers of one set (quotes and spaces after commas and
/// colons ignored) and the name mentions the feed; plausible on the content alone.
fn detect_text(p: &Probe<'_>, markers: &[&[&str]], name: &str) -> Option<Confidence> {
    let head = String::from_utf8_lossy(&p.head[..p.head.len().min(8192)]);
    let text = head.replace('"', "").replace(", ", ",").replace(": ", ":");
    let found = markers.iter().any(|set| set.iter().all(|m| text.contains(m)));
    found.then(|| {
        if p.name.is_some_and(|n| n.to_ascii_lowercase().contains(name)) {
            Confidence::Certain
        } else {
            Confidence::Plausible
        }
    })
}

/// The host of a URL as source.ip or source.fqdn, and its explicit port.
fn url_host(event: &mut Event, url: &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => (v6, None),
        },
        None => match host_port.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (host_port, None),
        },
    };
    if event.set("source.ip", host).is_err() {
        let _ = event.set("source.fqdn", host);
    }
    if let Some(p) = port {
        let _ = event.set("source.port", p);
    }
}

/// A JSON member as text: strings as they are, null or absent as empty, anything else as JSON.
fn json_text(m: &Map<String, Value>, key: &str) -> String {
    match m.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn set(event: &mut Event, field: &str, value: &str, column: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    event.set(field, value).map_err(|e| format!("{column}: {e}"))
}

/// A feed whose records are CSV lines under a `#` comment header, read by a row function.
struct CsvFeed {
    records: CsvRecords,
    row: fn(&[&str]) -> Result<Option<Event>, String>,
}

impl std::fmt::Debug for CsvFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvFeed").finish_non_exhaustive()
    }
}

impl CsvFeed {
    fn new(config: &ParseConfig, row: fn(&[&str]) -> Result<Option<Event>, String>) -> Result<CsvFeed, ConfigError> {
        let opts = CsvOptions { header: false, ..CsvOptions::default() };
        Ok(CsvFeed { records: CsvRecords::new(&opts, config.max_record())?, row })
    }
}

fn csv_record(row: fn(&[&str]) -> Result<Option<Event>, String>, item: Item<'_>, out: &mut Output) {
    let Some(record) = item.record(out, &[]) else { return };
    match row(record.cells) {
        Ok(Some(event)) => out.event(event, record.position, record.raw),
        Ok(None) => {}
        Err(reason) => out.reject(record.position, reason, record.raw),
    }
}

impl Parser for CsvFeed {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        let row = self.row;
        self.records.push(chunk, &mut |item| csv_record(row, item, out));
    }

    fn finish(&mut self, out: &mut Output) {
        let row = self.row;
        self.records.finish(&mut |item| csv_record(row, item, out));
    }
}

/// `id, dateadded, url, url_status, last_online, threat, tags, urlhaus_link, reporter`, or the
/// older layout without `last_online`.
fn urlhaus(cells: &[&str]) -> Result<Option<Event>, String> {
    if cells.first() == Some(&"id") {
        return Ok(None);
    }
    let (id, added, url, status, last_online, threat, tags, link, reporter) = match *cells {
        [id, added, url, status, last, threat, tags, link, reporter] => {
            (id, added, url, status, Some(last), threat, tags, link, reporter)
        }
        [id, added, url, status, threat, tags, link, reporter] => {
            (id, added, url, status, None, threat, tags, link, reporter)
        }
        _ => return Err(format!("expected 9 columns (or 8 in older dumps), found {}", cells.len())),
    };
    let mut e = Event::default();
    set(&mut e, "time.source", &format!("{added} UTC"), "dateadded")?;
    set(&mut e, "source.url", url, "url")?;
    url_host(&mut e, url);
    set(&mut e, "status", status, "url_status")?;
    set(&mut e, "classification.type", "malware-distribution", "threat")?;
    set(&mut e, "classification.identifier", threat, "threat")?;
    set(&mut e, "event_description.url", link, "urlhaus_link")?;
    e.extra.insert("urlhaus.id", Value::String(id.to_owned()));
    if let Some(last) = last_online.filter(|l| !l.is_empty() && *l != "None") {
        e.extra.insert("last_online", Value::String(last.to_owned()));
    }
    if !tags.is_empty() && tags != "None" {
        e.extra.insert("tags", tags.split(',').map(|t| Value::String(t.trim().to_owned())).collect());
    }
    if !reporter.is_empty() {
        e.extra.insert("reporter", Value::String(reporter.to_owned()));
    }
    Ok(Some(e))
}

/// `first_seen_utc, dst_ip, dst_port, c2_status, last_online, malware`, or the older
/// `first_seen, dst_ip, dst_port, malware`.
fn feodo_csv(cells: &[&str]) -> Result<Option<Event>, String> {
    if cells.first().is_some_and(|c| c.starts_with("first_seen")) {
        return Ok(None);
    }
    let (first_seen, ip, port, status, last_online, malware) = match *cells {
        [first, ip, port, status, last, malware] => (first, ip, port, Some(status), Some(last), malware),
        [first, ip, port, malware] => (first, ip, port, None, None, malware),
        _ => return Err(format!("expected 6 columns (or 4 in the older layout), found {}", cells.len())),
    };
    let mut e = Event::default();
    set(&mut e, "time.source", &format!("{first_seen} UTC"), "first_seen_utc")?;
    set(&mut e, "source.ip", ip, "dst_ip")?;
    set(&mut e, "source.port", port, "dst_port")?;
    if let Some(s) = status {
        set(&mut e, "status", s, "c2_status")?;
    }
    if let Some(l) = last_online.filter(|l| !l.is_empty()) {
        e.extra.insert("last_online", Value::String(l.to_owned()));
    }
    c2(&mut e, malware)?;
    Ok(Some(e))
}

fn c2(e: &mut Event, malware: &str) -> Result<(), String> {
    set(e, "classification.type", "c2-server", "malware")?;
    if !malware.is_empty() {
        set(e, "malware.name", malware, "malware")?;
        set(e, "classification.identifier", &malware.to_lowercase(), "malware")?;
    }
    Ok(())
}

/// Feodo Tracker's blocklist: CSV, or JSON when the report starts with `[`.
#[derive(Debug)]
struct Feodo {
    max: usize,
    inner: Option<FeodoInner>,
    /// Leading whitespace, kept until the first other byte says CSV or JSON.
    pending: Vec<u8>,
}

#[derive(Debug)]
enum FeodoInner {
    Csv(Box<CsvFeed>),
    Json(Box<JsonRecords>),
}

impl Feodo {
    fn new(config: &ParseConfig) -> Result<Feodo, ConfigError> {
        Ok(Feodo { max: config.max_record(), inner: None, pending: Vec::new() })
    }

    fn start(&mut self, first: u8) -> Result<FeodoInner, ConfigError> {
        Ok(if first == b'[' {
            FeodoInner::Json(Box::new(JsonRecords::new(JsonLayout::Array, self.max)))
        } else {
            let opts = CsvOptions { header: false, ..CsvOptions::default() };
            FeodoInner::Csv(Box::new(CsvFeed { records: CsvRecords::new(&opts, self.max)?, row: feodo_csv }))
        })
    }
}

impl FeodoInner {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        match self {
            FeodoInner::Csv(c) => c.push(chunk, out),
            FeodoInner::Json(j) => j.push(chunk, out, &mut feodo_json),
        }
    }
}

fn feodo_json(bytes: &[u8], position: Position, out: &mut Output) {
    let result =
        serde_json::from_slice::<Map<String, Value>>(bytes).map_err(|e| format!("invalid JSON: {e}")).and_then(|m| {
            let text = |k: &str| json_text(&m, k);
            let mut e = Event::default();
            let (first, last) = (text("first_seen"), text("last_online"));
            let time = match (first.is_empty(), last.is_empty()) {
                (false, _) => format!("{first} UTC"),
                (true, false) => format!("{last}T00:00:00Z"),
                (true, true) => {
                    return Err("first_seen and last_online are both empty: the record has no time".to_owned());
                }
            };
            set(&mut e, "time.source", &time, "first_seen")?;
            set(&mut e, "source.ip", &text("ip_address"), "ip_address")?;
            set(&mut e, "source.port", &text("port"), "port")?;
            set(&mut e, "status", &text("status"), "status")?;
            // Not always a valid name; the address is what matters.
            let _ = set(&mut e, "source.reverse_dns", &text("hostname"), "hostname");
            set(&mut e, "source.asn", &text("as_number"), "as_number")?;
            set(&mut e, "source.as_name", &text("as_name"), "as_name")?;
            set(&mut e, "source.geolocation.cc", &text("country"), "country")?;
            if let Some(Value::String(l)) = m.get("last_online") {
                e.extra.insert("last_online", Value::String(l.clone()));
            }
            c2(&mut e, &text("malware"))?;
            Ok(e)
        });
    match result {
        Ok(e) => out.event(e, position, bytes),
        Err(reason) => out.reject(position, reason, bytes),
    }
}

impl Parser for Feodo {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        if self.inner.is_none() {
            let Some(&first) = chunk.iter().find(|b| !b.is_ascii_whitespace()) else {
                self.pending.extend_from_slice(chunk);
                return;
            };
            match self.start(first) {
                Ok(mut inner) => {
                    inner.push(&std::mem::take(&mut self.pending), out);
                    self.inner = Some(inner);
                }
                Err(e) => {
                    out.fatal = Some(e.0);
                    return;
                }
            }
        }
        if let Some(inner) = &mut self.inner {
            inner.push(chunk, out);
        }
    }

    fn finish(&mut self, out: &mut Output) {
        match &mut self.inner {
            Some(FeodoInner::Csv(c)) => c.finish(out),
            Some(FeodoInner::Json(j)) => j.finish(out, &mut feodo_json),
            None => out.fatal = Some("the report is empty".to_owned()),
        }
    }
}

/// ThreatFox: each IOC is an object two levels down (`{"<id>": [{...}]}` in the export,
/// `{"data": [{...}]}` from the API).
#[derive(Debug)]
struct ThreatFox {
    nested: JsonNested,
}

impl ThreatFox {
    fn new(config: &ParseConfig) -> ThreatFox {
        ThreatFox { nested: JsonNested::new(2, config.max_record()) }
    }
}

fn threatfox_frame(frame: Frame<'_>, key: &[u8], out: &mut Output) {
    match frame {
        Frame::TooLong { position, head } => {
            out.reject(position, format!("record longer than the limit ({} bytes)", position.len), head);
        }
        Frame::Record { bytes, position } => match threatfox_ioc(bytes, key) {
            Ok(e) => out.event(e, position, bytes),
            Err(reason) => out.reject(position, reason, bytes),
        },
    }
}

fn threatfox_ioc(bytes: &[u8], key: &[u8]) -> Result<Event, String> {
    let m: Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let text = |k: &str| json_text(&m, k);
    let value = if m.contains_key("ioc_value") { text("ioc_value") } else { text("ioc") };
    let mut e = Event::default();
    let first = if m.contains_key("first_seen_utc") { text("first_seen_utc") } else { text("first_seen") };
    set(&mut e, "time.source", &format!("{first} UTC"), "first_seen_utc")?;
    match text("ioc_type").as_str() {
        "ip:port" => {
            let (ip, port) =
                value.rsplit_once(':').ok_or_else(|| format!("ioc_value: expected IP:port, found {value:?}"))?;
            set(&mut e, "source.ip", ip.trim_matches(['[', ']']), "ioc_value")?;
            set(&mut e, "source.port", port, "ioc_value")?;
        }
        "domain" => set(&mut e, "source.fqdn", &value, "ioc_value")?,
        "url" => {
            set(&mut e, "source.url", &value, "ioc_value")?;
            url_host(&mut e, &value);
        }
        "md5_hash" => set(&mut e, "malware.hash.md5", &value, "ioc_value")?,
        "sha1_hash" => set(&mut e, "malware.hash.sha1", &value, "ioc_value")?,
        "sha256_hash" => set(&mut e, "malware.hash.sha256", &value, "ioc_value")?,
        other => return Err(format!("ioc_type: expected ip:port, domain, url or a hash type, found {other:?}")),
    }
    let kind = match text("threat_type").as_str() {
        "botnet_cc" => "c2-server",
        "payload_delivery" | "cc_skimming" => "malware-distribution",
        "payload" => "malware",
        _ => "undetermined",
    };
    set(&mut e, "classification.type", kind, "threat_type")?;
    let malware = text("malware");
    if !malware.is_empty() {
        set(&mut e, "classification.identifier", &malware, "malware")?;
    }
    let printable = text("malware_printable");
    if !printable.is_empty() && printable != "Unknown malware" {
        let _ = e.set("malware.name", &printable);
    }
    if let Some(c) = m.get("confidence_level").and_then(Value::as_f64).filter(|c| (0.0..=100.0).contains(c)) {
        e.feed_accuracy = Some(c);
    }
    let reference = text("reference");
    if e.set("event_description.url", &reference).is_err() && !reference.is_empty() {
        e.extra.insert("reference", Value::String(reference));
    }
    for k in ["last_seen_utc", "last_seen", "reporter", "malware_alias", "threat_type", "anonymous", "id"] {
        if let Some(v) = m.get(k).filter(|v| !v.is_null() && *v != "") {
            e.extra.insert(k, v.clone());
        }
    }
    match m.get("tags") {
        Some(Value::String(t)) if !t.is_empty() => {
            e.extra.insert("tags", t.split(',').map(|t| Value::String(t.trim().to_owned())).collect());
        }
        Some(v @ Value::Array(_)) => {
            e.extra.insert("tags", v.clone());
        }
        _ => {}
    }
    if !key.is_empty() && key != b"data" {
        e.extra.insert("threatfox.id", Value::String(String::from_utf8_lossy(key).into_owned()));
    }
    Ok(e)
}

impl Parser for ThreatFox {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        self.nested.push(chunk, &mut |frame, key| threatfox_frame(frame, key, out));
    }

    fn finish(&mut self, out: &mut Output) {
        self.nested.finish(&mut |frame, key| threatfox_frame(frame, key, out));
        if let Some(e) = self.nested.error() {
            out.fatal = Some(e.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        let check = |url: &str, expected: &str| {
            let mut e = Event::default();
            url_host(&mut e, url);
            let mut got = e.to_intelmq_json();
            got.retain(|c| c != '"');
            assert_eq!(got, expected, "{url}");
        };
        check("http://198.51.100.7:40411/Mozi.m", "{source.ip:198.51.100.7,source.port:40411}");
        check("https://evil.example/x", "{source.fqdn:evil.example}");
        check("http://[2001:db8::1]:8080/", "{source.ip:2001:db8::1,source.port:8080}");
        check("http://user@host.example/", "{source.fqdn:host.example}");
    }
}
