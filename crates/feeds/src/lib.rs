//! Feed formats: streaming parsers that turn a report's raw bytes into events and rejects.
//!
//! A parser is fed the report in chunks of any size ([`Parser::push`]) and told when it ends
//! ([`Parser::finish`]); it appends events and rejects to an [`Output`] that the caller drains.
//! Parsers never do I/O and never panic: every bad record becomes a [`Reject`] with its position
//! and reason, and memory stays bounded by the longest record allowed.
//!
//! Adding a format is one module with a [`Format`] entry in [`FORMATS`].

mod abusech;
mod csv;
mod ctip;
pub mod framing;
mod intelmq;
mod json;
pub mod mail;
mod mapping;
mod misp;
mod n6;
pub mod shadowserver;
mod spamhaus;
mod stix;

pub use stix::pattern_fields as stix_pattern_fields;

use std::collections::BTreeMap;

use farol_model::{Event, Position, Reject};
use serde::Deserialize;

pub use mapping::{Columns, TimeFormat, Unmapped};

/// A streaming parser for one report.
pub trait Parser: Send {
    /// Consumes the next chunk of the report.
    fn push(&mut self, chunk: &[u8], out: &mut Output);
    /// The report has ended: emits what was held back for lack of a terminator.
    fn finish(&mut self, out: &mut Output);
}

/// What a parser produced since the caller last drained it.
#[derive(Debug, Default)]
pub struct Output {
    pub events: Vec<Parsed>,
    /// The first bytes of each event's record ([`Parsed::raw`] points here), so that a later
    /// step that rejects the event can keep what it came from.
    pub raw: Vec<u8>,
    pub rejects: Vec<Reject>,
    /// A problem with the report as a whole (a missing header column, not JSON at all). The
    /// parser ignores further input once this is set.
    pub fatal: Option<String>,
}

/// An event and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub event: Event,
    pub position: Position,
    /// The record's first bytes (up to [`Reject::MAX_RAW`]) in [`Output::raw`].
    pub raw: std::ops::Range<usize>,
}

impl Output {
    pub fn event(&mut self, event: Event, position: Position, raw: &[u8]) {
        let start = self.raw.len();
        self.raw.extend_from_slice(&raw[..raw.len().min(Reject::MAX_RAW)]);
        self.events.push(Parsed { event, position, raw: start..self.raw.len() });
    }

    /// Builds an event where it will stay (an event is large: moving it costs a copy) from a
    /// record; a record that `fill` refuses becomes a reject with its reason.
    pub fn build(&mut self, position: Position, raw: &[u8], fill: impl FnOnce(&mut Event) -> Result<(), String>) {
        self.events.push(Parsed { event: Event::default(), position, raw: 0..0 });
        let last = self.events.len() - 1;
        match fill(&mut self.events[last].event) {
            Ok(()) => {
                let start = self.raw.len();
                self.raw.extend_from_slice(&raw[..raw.len().min(Reject::MAX_RAW)]);
                self.events[last].raw = start..self.raw.len();
            }
            Err(reason) => {
                self.events.pop();
                self.reject(position, reason, raw);
            }
        }
    }

    pub fn reject(&mut self, position: Position, reason: impl Into<String>, raw: &[u8]) {
        self.rejects.push(Reject::new(position, reason, raw));
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.rejects.is_empty() && self.fatal.is_none()
    }
}

/// Runs a parser over a whole report held in memory: for tests and small inputs.
pub fn parse_all(parser: &mut dyn Parser, bytes: &[u8]) -> Output {
    let mut out = Output::default();
    parser.push(bytes, &mut out);
    parser.finish(&mut out);
    out
}

/// How to read a feed's reports, as written under `[feeds.NAME]` in `farol.toml`. Every key is
/// optional; what a format needs it checks when the parser is built.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParseConfig {
    /// Which input column or JSON key goes to which field.
    pub columns: Option<Columns>,
    /// What to do with columns that `columns` does not name.
    pub unmapped: Unmapped,
    /// How times are written; `auto` reads ISO 8601 and Unix epochs.
    pub time_format: TimeFormat,
    pub csv: CsvOptions,
    pub json: JsonOptions,
    /// The longest record accepted, in bytes (default 1 MiB).
    pub max_record: Option<usize>,
    pub shadowserver: ShadowserverOptions,
    /// The Shadowserver schema to use instead of the one farol ships; loaded by whoever reads
    /// the configuration (parsers do no I/O).
    #[serde(skip)]
    pub shadowserver_schema: Option<std::sync::Arc<shadowserver::Schema>>,
}

/// Options of the `shadowserver` format.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowserverOptions {
    /// The report type (`scan_http`), for reports whose file name does not say it.
    pub report: Option<String>,
}

impl ParseConfig {
    fn max_record(&self) -> usize {
        self.max_record.unwrap_or(framing::DEFAULT_MAX_RECORD)
    }
}

/// Options of the `csv` format.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvOptions {
    /// The field separator: one ASCII character, or `"\t"`.
    pub delimiter: char,
    pub quote: char,
    /// Lines starting with this character are skipped (`#` by default; `""` for none).
    pub comment: String,
    /// Whether the first record names the columns.
    pub header: bool,
    /// Lines to skip before the header or the first record.
    pub skip_lines: usize,
}

impl Default for CsvOptions {
    fn default() -> CsvOptions {
        CsvOptions { delimiter: ',', quote: '"', comment: "#".to_owned(), header: true, skip_lines: 0 }
    }
}

/// How the records of a JSON report are laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonLayout {
    /// An array if the report starts with `[`, otherwise one object per line.
    #[default]
    Auto,
    /// One top-level array of records.
    Array,
    /// One record per line (JSON Lines, NDJSON).
    Lines,
}

/// Options of the `json` format.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonOptions {
    pub layout: JsonLayout,
}

/// A configuration that a parser cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Builds a parser for one report; the report's name, if any, is the second argument.
pub type Builder = fn(&ParseConfig, Option<&str>) -> Result<Box<dyn Parser>, ConfigError>;

/// A feed format: its name, what it reads, how to build its parser and how to recognize it.
#[derive(Debug)]
pub struct Format {
    pub name: &'static str,
    pub description: &'static str,
    pub build: Builder,
    /// How sure the format is that a report with this name and these first bytes is its own.
    pub detect: fn(&Probe<'_>) -> Option<Confidence>,
}

/// What detection looks at: the report's name and its first bytes (decompressed).
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub name: Option<&'a str>,
    pub head: &'a [u8],
}

/// How sure a format is about a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    /// The content fits, but other formats might too.
    Plausible,
    /// Content and name both say so.
    Certain,
}

/// Every format farol reads.
pub static FORMATS: &[Format] = &[
    intelmq::FORMAT,
    shadowserver::FORMAT,
    ctip::FORMAT,
    abusech::URLHAUS,
    abusech::FEODO,
    abusech::THREATFOX,
    spamhaus::FORMAT,
    n6::FORMAT,
    stix::FORMAT,
    misp::FORMAT,
    csv::FORMAT,
    json::FORMAT,
];

/// The format with this name.
pub fn format(name: &str) -> Result<&'static Format, ConfigError> {
    FORMATS.iter().find(|f| f.name == name).ok_or_else(|| {
        let names: Vec<_> = FORMATS.iter().map(|f| f.name).collect();
        ConfigError(format!("unknown format {name:?}; the formats are: {}", names.join(", ")))
    })
}

/// Why no single format could be chosen for a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error("cannot tell the format of this report; give it with --format (one of: {0})")]
    Unknown(String),
    #[error("this report could be any of {0}; give the format with --format")]
    Ambiguous(String),
}

/// Chooses the format of a report from its name and first bytes: the most confident match,
/// if only one format reaches that confidence.
pub fn detect(probe: &Probe<'_>) -> Result<&'static Format, DetectError> {
    let scored: Vec<(Confidence, &Format)> = FORMATS.iter().filter_map(|f| (f.detect)(probe).map(|c| (c, f))).collect();
    let Some(best) = scored.iter().map(|(c, _)| *c).max() else {
        let names: Vec<_> = FORMATS.iter().map(|f| f.name).collect();
        return Err(DetectError::Unknown(names.join(", ")));
    };
    let top: Vec<&Format> = scored.iter().filter(|(c, _)| *c == best).map(|(_, f)| *f).collect();
    match top.as_slice() {
        [one] => Ok(one),
        many => Err(DetectError::Ambiguous(many.iter().map(|f| f.name).collect::<Vec<_>>().join(", "))),
    }
}

/// Keys of a flattened JSON object, in the dotted form used by `columns`.
pub(crate) fn flatten_json(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_json(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_intelmq_and_refuses_to_guess_mapped_formats() {
        let probe = Probe { name: Some("events.json"), head: br#"{"source.ip": "192.0.2.1", "feed.name": "x"}"# };
        assert_eq!(detect(&probe).unwrap().name, "intelmq");
        let probe = Probe { name: Some("x.csv"), head: b"ip,port\n192.0.2.1,80\n" };
        let err = detect(&probe).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot tell the format of this report; give it with --format (one of: intelmq, "),
            "{err}"
        );
        assert!(format("nope").unwrap_err().to_string().starts_with("unknown format \"nope\""));
    }
}
