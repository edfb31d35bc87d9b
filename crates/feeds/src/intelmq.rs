//! The `intelmq` format: IntelMQ events as JSON, one per line (as IntelMQ's file output writes
//! them) or in an array.

use farol_model::{Event, Position};

use crate::json::JsonRecords;
use crate::{Confidence, Format, JsonLayout, Output, ParseConfig, Parser, Probe};

pub(crate) const FORMAT: Format = Format {
    name: "intelmq",
    description: "IntelMQ events as JSON lines (or a JSON array), flat or hierarchical",
    build: |config, _| Ok(Box::new(IntelMqParser::new(config))),
    detect,
};

/// IntelMQ JSON if the first record is an object whose keys are all harmonization names.
fn detect(probe: &Probe<'_>) -> Option<Confidence> {
    let text = std::str::from_utf8(probe.head).ok().or_else(|| {
        // The head may end inside a multi-byte character.
        let valid = std::str::from_utf8(probe.head).err()?.valid_up_to();
        std::str::from_utf8(&probe.head[..valid]).ok()
    })?;
    let first = text.trim_start().trim_start_matches('[').trim_start();
    let line = first.lines().next()?;
    let value: serde_json::Value = serde_json::from_str(line.trim_end_matches(',')).ok()?;
    let keys: Vec<&String> = value.as_object()?.keys().collect();
    let known = |k: &&String| {
        k.starts_with("extra.") || *k == "extra" || *k == "__type" || farol_model::Field::from_name(k).is_some()
    };
    let dotted = keys.iter().any(|k| k.contains('.'));
    (!keys.is_empty() && dotted && keys.iter().all(known)).then(|| {
        let named = probe.name.is_some_and(|n| n.contains("intelmq"));
        if named { Confidence::Certain } else { Confidence::Plausible }
    })
}

#[derive(Debug)]
pub(crate) struct IntelMqParser {
    records: JsonRecords,
}

impl IntelMqParser {
    pub(crate) fn new(config: &ParseConfig) -> IntelMqParser {
        IntelMqParser { records: JsonRecords::new(JsonLayout::Auto, config.max_record()) }
    }
}

fn record(bytes: &[u8], position: Position, out: &mut Output) {
    match Event::from_intelmq_json(bytes) {
        Ok(event) => out.event(event, position, bytes),
        Err(e) => out.reject(position, e.to_string(), bytes),
    }
}

impl Parser for IntelMqParser {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        self.records.push(chunk, out, &mut record);
    }

    fn finish(&mut self, out: &mut Output) {
        self.records.finish(out, &mut record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_all;

    #[test]
    fn reads_lines_and_rejects_bad_ones() {
        let input = b"{\"source.ip\": \"192.0.2.1\", \"classification.type\": \"scanner\"}\n\
                      {\"source.ip\": \"192.0.2.300\"}\n\
                      {\"source.ip\": \"192.0.2.2\", \"unknown\": 1}\n\
                      {\"source.ip\"\n";
        let out = parse_all(&mut IntelMqParser::new(&ParseConfig::default()), input);
        assert_eq!(out.events.len(), 1);
        let reasons: Vec<_> = out.rejects.iter().map(|r| (r.position.line, r.reason.clone())).collect();
        assert_eq!(reasons[0], (Some(2), r#"source.ip: expected an IPv4 or IPv6 address, found "192.0.2.300""#.into()));
        assert!(reasons[1].1.starts_with("unknown: expected a harmonization field name"));
        assert!(reasons[2].1.starts_with("invalid JSON: EOF while parsing"), "{}", reasons[2].1);
    }

    #[test]
    fn reads_an_array() {
        let input = br#"[{"source.ip": "192.0.2.1"}, {"source.ip": "192.0.2.2"}]"#;
        let out = parse_all(&mut IntelMqParser::new(&ParseConfig::default()), input);
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.fatal, None);
    }
}
