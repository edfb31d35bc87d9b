//! The `json` format (JSON objects with a key mapping from `farol.toml`), and the record
//! splitting that every JSON-based format shares.

use std::collections::BTreeMap;

use farol_model::{Event, Position};
use serde_json::Value;

use crate::framing::{Frame, JsonArray, Lines};
use crate::mapping::{Target, apply, is_time};
use crate::{Columns, ConfigError, Format, JsonLayout, Output, ParseConfig, Parser, TimeFormat, Unmapped};

pub(crate) const FORMAT: Format = Format {
    name: "json",
    description: "JSON objects (an array or one per line) with a key mapping in farol.toml",
    build: |config, _| Ok(Box::new(JsonParser::new(config)?)),
    detect: |_| None,
};

/// Splits a JSON report into records: the elements of a top-level array, or one per line.
#[derive(Debug)]
pub(crate) struct JsonRecords {
    layout: JsonLayout,
    lines: Lines,
    array: JsonArray,
    /// While the layout is `Auto`: the bytes before the first one that decides it.
    pending: Vec<u8>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Leading whitespace kept while deciding the layout; past this, the report is read as lines.
const MAX_PENDING: usize = 64 * 1024;

/// The layout a report's first bytes show: `[` for an array, anything else for lines; `None`
/// while only whitespace (or the start of a byte order mark) has been seen.
fn decide(pending: &[u8]) -> Option<JsonLayout> {
    if pending.len() < BOM.len() && BOM.starts_with(pending) {
        return None;
    }
    let body = pending.strip_prefix(BOM).unwrap_or(pending);
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    Some(if *first == b'[' { JsonLayout::Array } else { JsonLayout::Lines })
}

impl JsonRecords {
    pub(crate) fn new(layout: JsonLayout, max: usize) -> JsonRecords {
        JsonRecords { layout, lines: Lines::new(max), array: JsonArray::new(max), pending: Vec::new() }
    }

    /// Calls `record` for each complete record; rejects oversized ones into `out`.
    pub(crate) fn push(
        &mut self,
        chunk: &[u8],
        out: &mut Output,
        record: &mut impl FnMut(&[u8], Position, &mut Output),
    ) {
        let pending;
        let mut chunk = chunk;
        if self.layout == JsonLayout::Auto {
            self.pending.extend_from_slice(chunk);
            match decide(&self.pending) {
                Some(layout) => self.layout = layout,
                None if self.pending.len() > MAX_PENDING => self.layout = JsonLayout::Lines,
                None => return,
            }
            pending = std::mem::take(&mut self.pending);
            chunk = &pending;
        }
        let mut f = |frame: Frame<'_>| emit(frame, out, record);
        match self.layout {
            JsonLayout::Array => self.array.push(chunk, &mut f),
            _ => self.lines.push(chunk, &mut f),
        }
    }

    pub(crate) fn finish(&mut self, out: &mut Output, record: &mut impl FnMut(&[u8], Position, &mut Output)) {
        let mut f = |frame: Frame<'_>| emit(frame, out, record);
        match self.layout {
            JsonLayout::Array => {
                self.array.finish(&mut f);
                if let Some(e) = self.array.error() {
                    out.fatal.get_or_insert_with(|| e.to_owned());
                }
            }
            JsonLayout::Lines => self.lines.finish(&mut f),
            JsonLayout::Auto if self.pending.iter().all(|b| b.is_ascii_whitespace() || BOM.contains(b)) => {
                out.fatal = Some("the report is empty: expected JSON".to_owned());
            }
            JsonLayout::Auto => {
                // Only a partial byte order mark: whatever it is, it is one bad line.
                self.lines.push(&std::mem::take(&mut self.pending), &mut f);
                self.lines.finish(&mut f);
            }
        }
    }
}

fn emit(frame: Frame<'_>, out: &mut Output, record: &mut impl FnMut(&[u8], Position, &mut Output)) {
    match frame {
        Frame::Record { bytes, .. } if bytes.iter().all(u8::is_ascii_whitespace) => {}
        Frame::Record { bytes, position } => record(bytes, position, out),
        Frame::TooLong { position, head } => {
            out.reject(position, format!("record longer than the limit ({} bytes)", position.len), head);
        }
    }
}

#[derive(Debug)]
pub(crate) struct JsonParser {
    records: JsonRecords,
    mapper: Mapper,
}

impl JsonParser {
    pub(crate) fn new(config: &ParseConfig) -> Result<JsonParser, ConfigError> {
        let columns = match &config.columns {
            Some(Columns::ByName(map)) => {
                map.iter().map(|(k, t)| Ok((k.clone(), Target::parse(t)?))).collect::<Result<_, ConfigError>>()?
            }
            Some(Columns::ByPosition(_)) => {
                return Err(ConfigError("the json format maps keys by name: write columns as a table".into()));
            }
            None => return Err(ConfigError("the json format needs a key mapping: add [feeds.NAME.columns]".into())),
        };
        config.time_format.check()?;
        Ok(JsonParser {
            records: JsonRecords::new(config.json.layout, config.max_record()),
            mapper: Mapper { columns, unmapped: config.unmapped, time: config.time_format.clone() },
        })
    }
}

#[derive(Debug)]
struct Mapper {
    columns: BTreeMap<String, Target>,
    unmapped: Unmapped,
    time: TimeFormat,
}

impl Mapper {
    fn record(&self, bytes: &[u8], position: Position, out: &mut Output) {
        match self.event(bytes) {
            Ok(e) => out.event(e, position, bytes),
            Err(reason) => out.reject(position, reason, bytes),
        }
    }

    /// Maps one JSON object; keys of nested objects are joined with dots (`{"a": {"b": 1}}` is `a.b`).
    fn event(&self, bytes: &[u8]) -> Result<Event, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        if !value.is_object() {
            return Err("expected a JSON object".to_owned());
        }
        let mut flat = BTreeMap::new();
        crate::flatten_json("", &value, &mut flat);
        let mut event = Event::default();
        for (key, v) in &flat {
            let target = self.columns.get(key).cloned().unwrap_or_else(|| Target::unmapped(key, self.unmapped));
            let result = match (&target, v) {
                (_, Value::Null) | (Target::Skip, _) => Ok(()),
                (Target::Extra(k), v) => {
                    event.extra.insert(k, v.clone());
                    Ok(())
                }
                (Target::Field(_), Value::String(s)) => apply(&mut event, &target, s.trim(), &self.time),
                // Epoch numbers go through the time format like epoch strings.
                (Target::Field(f), Value::Number(n)) if is_time(*f) => {
                    apply(&mut event, &target, &n.to_string(), &self.time)
                }
                (Target::Field(f), v) => event.set_json(f.name(), v),
            };
            result.map_err(|e| format!("key {key:?}: {e}"))?;
        }
        Ok(event)
    }
}

impl Parser for JsonParser {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        self.records
            .push(chunk, out, &mut |bytes, position, out: &mut Output| self.mapper.record(bytes, position, out));
    }

    fn finish(&mut self, out: &mut Output) {
        self.records.finish(out, &mut |bytes, position, out: &mut Output| self.mapper.record(bytes, position, out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_all;

    fn run(config: &str, input: &[u8]) -> Output {
        let config: ParseConfig = toml::from_str(config).unwrap();
        let whole = parse_all(&mut JsonParser::new(&config).unwrap(), input);
        for chunk in [1, 3, 16] {
            let mut p = JsonParser::new(&config).unwrap();
            let mut out = Output::default();
            for c in input.chunks(chunk) {
                p.push(c, &mut out);
            }
            p.finish(&mut out);
            assert_eq!(
                (&out.events, &out.rejects, &out.fatal),
                (&whole.events, &whole.rejects, &whole.fatal),
                "chunk {chunk}"
            );
        }
        whole
    }

    const MAPPING: &str = r#"
        [columns]
        addr = "source.ip"
        "when.seen" = "time.source"
        family = "malware.name"
    "#;

    #[test]
    fn arrays_and_lines_map_the_same() {
        let array = br#"
          [{"addr": "192.0.2.1", "when": {"seen": 1717236764}, "family": "Qakbot", "asn": 64500, "tags": ["a"]},
           {"addr": "bad", "when": {"seen": 1717236764}},
           [1]]"#;
        let out = run(MAPPING, array);
        assert_eq!(
            out.events[0].event.to_intelmq_json(),
            r#"{"extra.asn":64500,"extra.tags":["a"],"malware.name":"qakbot","source.ip":"192.0.2.1","time.source":"2024-06-01T10:12:44+00:00"}"#
        );
        let reasons: Vec<_> = out.rejects.iter().map(|r| (r.position.line, r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (Some(3), r#"key "addr": source.ip: expected an IPv4 or IPv6 address, found "bad""#),
                (Some(4), "expected a JSON object"),
            ]
        );
        let lines = b"{\"addr\": \"192.0.2.1\", \"when\": {\"seen\": \"2024-06-01T10:12:44Z\"}}\n\nnot json\n";
        let out = run(MAPPING, lines);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.rejects[0].position.line, Some(3));
        assert!(
            out.rejects[0].reason.starts_with("invalid JSON: expected ident at line 1"),
            "{}",
            out.rejects[0].reason
        );
    }

    /// Found by the fuzzer (issue 2): a partial byte order mark on a line of its own was lost when
    /// the input arrived one byte at a time.
    #[test]
    fn a_partial_byte_order_mark_is_a_reject_in_any_chunking() {
        let out = run(MAPPING, b"\xEF\n@");
        assert_eq!(out.rejects.len(), 2);
        let out = run(MAPPING, b"\xEF\xBB\xBF[{\"addr\": \"192.0.2.1\", \"when\": {\"seen\": 1}}]");
        assert_eq!((out.events.len(), out.rejects.len()), (1, 0));
    }

    #[test]
    fn truncated_and_empty_reports() {
        let out = run(MAPPING, br#"[{"addr": "192.0.2.1", "when": {"seen": 1}}, {"addr": "192.0"#);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.rejects.len(), 1);
        assert_eq!(out.fatal.as_deref(), Some("the JSON array is cut short: the element at byte 45 is not terminated"));
        assert_eq!(run(MAPPING, b"  \n ").fatal.as_deref(), Some("the report is empty: expected JSON"));
    }
}
