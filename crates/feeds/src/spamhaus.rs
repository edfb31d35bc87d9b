//! Spamhaus DROP: the text list (`drop.txt`, `dropv6.txt`) and the JSON-lines lists
//! (`drop_v4.json`, `drop_v6.json`, `asndrop.json`).

use farol_model::{Event, Position, Timestamp};
use serde_json::{Map, Value};

use crate::framing::{Frame, Lines};
use crate::{Confidence, ConfigError, Format, Output, ParseConfig, Parser, Probe};

pub(crate) const FORMAT: Format = Format {
    name: "spamhaus-drop",
    description: "Spamhaus DROP lists: drop.txt/dropv6.txt, and drop_v4.json/drop_v6.json/asndrop.json lines",
    build: |config, _| Ok(Box::new(Drop::new(config)?)),
    detect,
};

fn detect(p: &Probe<'_>) -> Option<Confidence> {
    let head = String::from_utf8_lossy(&p.head[..p.head.len().min(4096)]);
    let text = head.contains("; Spamhaus") || head.lines().any(|l| l.contains(" ; SBL"));
    let json = head.contains("\"sblid\"") || (head.contains("\"asn\"") && head.contains("\"asname\""));
    (text || json).then_some(Confidence::Certain)
}

#[derive(Debug)]
struct Drop {
    lines: Lines,
    state: State,
}

#[derive(Debug, Default)]
struct State {
    /// The list's `Last-Modified` header, the time of every entry after it.
    modified: Option<Timestamp>,
}

impl Drop {
    fn new(config: &ParseConfig) -> Result<Drop, ConfigError> {
        Ok(Drop { lines: Lines::new(config.max_record()), state: State::default() })
    }
}

fn blocklist(e: &mut Event, sbl: Option<&str>) -> Result<(), String> {
    e.set("classification.type", "blacklist").map_err(|err| err.to_string())?;
    e.set("classification.identifier", "spamhaus-drop").map_err(|err| err.to_string())?;
    if let Some(sbl) = sbl.filter(|s| !s.is_empty()) {
        e.extra.insert("sbl", Value::String(sbl.to_owned()));
        let _ = e.set("event_description.url", &format!("https://check.spamhaus.org/sbl/query/{sbl}"));
    }
    Ok(())
}

fn text_entry(line: &str, modified: Option<Timestamp>) -> Result<Event, String> {
    let (cidr, sbl) = line.split_once(';').map_or((line, None), |(c, s)| (c, Some(s.trim())));
    let mut e = Event::default();
    e.set("source.network", cidr.trim()).map_err(|err| err.to_string())?;
    e.time_source = modified;
    blocklist(&mut e, sbl)?;
    Ok(e)
}

fn json_entry(m: &Map<String, Value>) -> Result<Event, String> {
    let mut e = Event::default();
    let text = |k: &str| m.get(k).and_then(Value::as_str);
    if let Some(cidr) = m.get("cidr") {
        e.set_json("source.network", cidr).map_err(|err| err.to_string())?;
    } else if let Some(asn) = m.get("asn") {
        e.set_json("source.asn", asn).map_err(|err| err.to_string())?;
        if let Some(name) = text("asname") {
            let _ = e.set("source.as_name", name);
        }
        if let Some(cc) = text("cc") {
            let _ = e.set("source.geolocation.cc", cc);
        }
    } else {
        return Err("expected a cidr or an asn".to_owned());
    }
    for key in ["rir", "domain"] {
        if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
            e.extra.insert(key, v.clone());
        }
    }
    blocklist(&mut e, text("sblid"))?;
    Ok(e)
}

fn rfc2822(value: &str) -> Option<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    Timestamp::from_micros(t.timestamp_micros())
}

impl State {
    fn line(&mut self, frame: Frame<'_>, out: &mut Output) {
        let (bytes, position): (&[u8], Position) = match frame {
            Frame::Record { bytes, position } => (bytes, position),
            Frame::TooLong { position, head } => {
                out.reject(position, format!("line longer than the limit ({} bytes)", position.len), head);
                return;
            }
        };
        let Ok(line) = std::str::from_utf8(bytes) else {
            out.reject(position, "invalid UTF-8", bytes);
            return;
        };
        let line = line.trim();
        if let Some(comment) = line.strip_prefix(';') {
            if let Some(date) = comment.trim().strip_prefix("Last-Modified:") {
                self.modified = rfc2822(date);
            }
            return;
        }
        if line.is_empty() {
            return;
        }
        let result = if line.starts_with('{') {
            match serde_json::from_str::<Map<String, Value>>(line) {
                // The last line of the JSON lists describes the list itself.
                Ok(m) if m.get("type").and_then(Value::as_str) == Some("metadata") => {
                    if let Some(ts) = m.get("timestamp").and_then(Value::as_i64) {
                        self.modified = Timestamp::from_secs(ts);
                    }
                    return;
                }
                Ok(m) => json_entry(&m),
                Err(e) => Err(format!("invalid JSON: {e}")),
            }
        } else {
            text_entry(line, self.modified)
        };
        match result {
            Ok(e) => out.event(e, position, bytes),
            Err(reason) => out.reject(position, reason, bytes),
        }
    }
}

impl Parser for Drop {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        let state = &mut self.state;
        self.lines.push(chunk, &mut |frame| state.line(frame, out));
    }

    fn finish(&mut self, out: &mut Output) {
        let state = &mut self.state;
        self.lines.finish(&mut |frame| state.line(frame, out));
    }
}
