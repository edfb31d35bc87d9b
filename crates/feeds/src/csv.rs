//! The `csv` format (delimited text with a column mapping from `farol.toml`), and the CSV record
//! splitting that every CSV-based format shares.

use farol_model::{Event, Position};

use crate::mapping::{Target, apply};
use crate::{Columns, ConfigError, CsvOptions, Format, Output, ParseConfig, Parser, TimeFormat};

pub(crate) const FORMAT: Format = Format {
    name: "csv",
    description: "delimited text (CSV, TSV) with a column mapping in farol.toml",
    build: |config, _| Ok(Box::new(CsvParser::new(config)?)),
    // Without a mapping, a CSV file says nothing about which column is what.
    detect: |_| None,
};

/// A CSV record with more fields than this is rejected as malformed.
const MAX_FIELDS: usize = 10_000;

/// One CSV record as the splitter found it: its cells as text, trimmed.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub(crate) cells: &'a [&'a str],
    pub(crate) position: Position,
    /// The record's first bytes, without its line terminator.
    pub(crate) raw: &'a [u8],
}

/// What the splitter hands over: a record, or why a record cannot be read.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    Record(Record<'a>),
    TooLong {
        position: Position,
        raw: &'a [u8],
        max: usize,
    },
    /// A cell (counted from 0) that is not UTF-8, and the offset of the bad byte in it.
    BadText {
        position: Position,
        raw: &'a [u8],
        column: usize,
        byte: usize,
    },
}

impl<'a> Item<'a> {
    /// Returns the record, or rejects what is not one; `names` are the header's column names.
    pub(crate) fn record(self, out: &mut Output, names: &[String]) -> Option<Record<'a>> {
        match self.header() {
            Ok(r) => Some(r),
            Err((position, raw, column, reason)) => {
                let reason = match column {
                    Some(c) if c < names.len() => format!("column {:?}: {reason}", names[c]),
                    Some(c) => format!("column {}: {reason}", c + 1),
                    None => reason,
                };
                out.reject(position, reason, raw);
                None
            }
        }
    }

    /// The record, or why it cannot be read (and the column concerned, counted from 0).
    #[allow(clippy::type_complexity)]
    fn header(self) -> Result<Record<'a>, (Position, &'a [u8], Option<usize>, String)> {
        match self {
            Item::Record(r) => Ok(r),
            Item::TooLong { position, raw, max } => Err((
                position,
                raw,
                None,
                format!(
                    "record longer than {max} bytes or with more than {MAX_FIELDS} fields ({} bytes)",
                    position.len
                ),
            )),
            Item::BadText { position, raw, column, byte } => {
                Err((position, raw, Some(column), format!("invalid UTF-8 at byte {byte} of the value")))
            }
        }
    }

    /// The header record's names, trimmed, without a byte order mark.
    pub(crate) fn names(self) -> Result<Vec<String>, String> {
        match self.header() {
            Ok(r) => Ok(r.cells.iter().map(|c| c.trim_start_matches('\u{feff}').to_owned()).collect()),
            Err((_, _, Some(c), _)) => Err(format!("the header is not valid UTF-8 (column {})", c + 1)),
            Err((_, _, None, reason)) => Err(format!("the header cannot be read: {reason}")),
        }
    }
}

/// Splits CSV into records with positions, fed chunks of any size. Blank lines, comment lines
/// and a number of leading lines are skipped; quoted fields may span lines.
#[derive(Debug)]
pub(crate) struct CsvRecords {
    reader: csv_core::Reader,
    comment: Option<u8>,
    skip_lines: usize,
    max: usize,
    fields: Vec<u8>,
    ends: Vec<usize>,
    out_len: usize,
    ends_len: usize,
    state: State,
    record: Position,
    raw: Vec<u8>,
    oversized: bool,
    /// How many of the record's last bytes are its line terminator.
    terminator: usize,
    offset: u64,
    line: u64,
    /// The first bytes, held until they show whether the input starts with a UTF-8 byte order
    /// mark (dropped here so that it is dropped however the input is cut into chunks).
    bom: Option<Vec<u8>>,
    /// Whether csv-core has been given input yet.
    started: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records: blank lines, comments and skipped lines are consumed here.
    Boundary,
    SkipLine,
    InRecord,
}

fn ascii(c: char, what: &str) -> Result<u8, ConfigError> {
    u8::try_from(c)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| ConfigError(format!("csv.{what}: expected one ASCII character, found {c:?}")))
}

impl CsvRecords {
    pub(crate) fn new(opts: &CsvOptions, max: usize) -> Result<CsvRecords, ConfigError> {
        let comment = match opts.comment.chars().collect::<Vec<_>>().as_slice() {
            [] => None,
            [c] => Some(ascii(*c, "comment")?),
            _ => return Err(ConfigError(format!("csv.comment: expected one character, found {:?}", opts.comment))),
        };
        let reader = csv_core::ReaderBuilder::new()
            .delimiter(ascii(opts.delimiter, "delimiter")?)
            .quote(ascii(opts.quote, "quote")?)
            .build();
        Ok(CsvRecords {
            reader,
            comment,
            skip_lines: opts.skip_lines,
            max,
            fields: vec![0; 1024],
            ends: vec![0; 64],
            out_len: 0,
            ends_len: 0,
            state: State::Boundary,
            record: Position::default(),
            raw: Vec::new(),
            oversized: false,
            terminator: 0,
            offset: 0,
            line: 1,
            bom: Some(Vec::new()),
            started: false,
        })
    }

    pub(crate) fn push(&mut self, chunk: &[u8], f: &mut impl FnMut(Item<'_>)) {
        match self.bom.take() {
            None => self.run(chunk, false, f),
            Some(mut head) => {
                head.extend_from_slice(chunk);
                if head.len() < BOM.len() && BOM.starts_with(&head) {
                    self.bom = Some(head);
                } else {
                    self.start(&head, f);
                }
            }
        }
    }

    /// Runs the first bytes, without a byte order mark.
    fn start(&mut self, head: &[u8], f: &mut impl FnMut(Item<'_>)) {
        match head.strip_prefix(BOM) {
            Some(rest) => {
                self.offset = BOM.len() as u64;
                self.run(rest, false, f);
            }
            None => self.run(head, false, f),
        }
    }

    pub(crate) fn finish(&mut self, f: &mut impl FnMut(Item<'_>)) {
        if let Some(head) = self.bom.take() {
            self.start(&head, f);
        }
        if self.state == State::InRecord {
            self.run(&[], true, f);
        }
    }

    fn consume(&mut self, bytes: &[u8]) {
        self.offset += bytes.len() as u64;
        self.line += memchr::memchr_iter(b'\n', bytes).count() as u64;
    }

    fn start_record(&mut self) {
        self.state = State::InRecord;
        self.record = Position { offset: self.offset, len: 0, line: Some(self.line) };
        self.raw.clear();
        self.oversized = false;
        self.out_len = 0;
        self.ends_len = 0;
    }

    /// Feeds `input` through the state machine; `finishing` flushes a last record.
    fn run(&mut self, mut input: &[u8], finishing: bool, f: &mut impl FnMut(Item<'_>)) {
        loop {
            match self.state {
                State::SkipLine => match memchr::memchr(b'\n', input) {
                    Some(i) => {
                        self.consume(&input[..=i]);
                        input = &input[i + 1..];
                        self.state = State::Boundary;
                    }
                    None => {
                        self.consume(input);
                        return;
                    }
                },
                State::Boundary => {
                    let Some(&b) = input.first() else {
                        return;
                    };
                    if self.skip_lines > 0 {
                        self.skip_lines -= 1;
                        self.state = State::SkipLine;
                    } else if b == b'\n' || b == b'\r' {
                        self.consume(&input[..1]);
                        input = &input[1..];
                    } else if Some(b) == self.comment {
                        self.state = State::SkipLine;
                    } else {
                        self.start_record();
                    }
                }
                State::InRecord => {
                    if input.is_empty() && !finishing {
                        return;
                    }
                    // csv-core drops a byte order mark that starts its first input, wherever
                    // that is and only when the mark arrives whole; the mark is dropped above,
                    // at the start of the report only. One byte first is never a mark.
                    let feed = if self.started { input } else { &input[..input.len().min(1)] };
                    self.started = true;
                    let (result, nin, nout, nend) = self.reader.read_record(
                        feed,
                        &mut self.fields[self.out_len..],
                        &mut self.ends[self.ends_len..],
                    );
                    let consumed = &input[..nin];
                    let room = farol_model::Reject::MAX_RAW.saturating_sub(self.raw.len());
                    self.raw.extend_from_slice(&consumed[..consumed.len().min(room)]);
                    self.consume(consumed);
                    self.terminator = match consumed {
                        // A terminator split across chunks: "\r" ended the last one.
                        [b'\n'] if self.terminator == 1 => 2,
                        [.., b'\r', b'\n'] => 2,
                        [.., b'\n' | b'\r'] => 1,
                        [] => self.terminator,
                        _ => 0,
                    };
                    input = &input[nin..];
                    self.out_len += nout;
                    self.ends_len += nend;
                    match result {
                        csv_core::ReadRecordResult::InputEmpty => {
                            if input.is_empty() && !finishing {
                                return;
                            }
                        }
                        csv_core::ReadRecordResult::OutputFull => {
                            if self.fields.len() >= self.max {
                                // Keep scanning to the end of the record, but not its bytes.
                                self.oversized = true;
                                self.out_len = 0;
                            } else {
                                self.fields.resize((self.fields.len() * 2).min(self.max.max(1024)), 0);
                            }
                        }
                        csv_core::ReadRecordResult::OutputEndsFull => {
                            if self.ends.len() >= MAX_FIELDS {
                                self.oversized = true;
                                self.ends_len = 0;
                            } else {
                                self.ends.resize(self.ends.len() * 2, 0);
                            }
                        }
                        csv_core::ReadRecordResult::Record => {
                            if feed.is_empty() {
                                // Ended by the end of the input, not by a terminator: what
                                // the last bytes were (newlines inside quotes) is the record's.
                                self.terminator = 0;
                            }
                            self.state = State::Boundary;
                            self.record.len = self.offset - self.record.offset - self.terminator as u64;
                            self.emit(f);
                        }
                        csv_core::ReadRecordResult::End => return,
                    }
                }
            }
        }
    }

    fn emit(&mut self, f: &mut impl FnMut(Item<'_>)) {
        let position = self.record;
        let raw = &self.raw[..self.raw.len().min(usize::try_from(position.len).unwrap_or(usize::MAX))];
        if self.oversized {
            f(Item::TooLong { position, raw, max: self.max });
            return;
        }
        // One UTF-8 check for the whole record; a cell boundary inside a character means that
        // the cells on either side are not text, which `get` reports as `None`.
        let ends = &self.ends[..self.ends_len];
        let all = &self.fields[..ends.last().copied().unwrap_or(0)];
        let cells = std::str::from_utf8(all).ok().and_then(|text| {
            let mut start = 0;
            ends.iter()
                .map(|&end| {
                    let cell = text.get(start..end).map(str::trim_ascii);
                    start = end;
                    cell
                })
                .collect::<Option<Vec<&str>>>()
        });
        match cells {
            Some(cells) => f(Item::Record(Record { cells: &cells, position, raw })),
            None => {
                let mut start = 0;
                for (column, &end) in ends.iter().enumerate() {
                    if let Err(e) = std::str::from_utf8(&self.fields[start..end]) {
                        f(Item::BadText { position, raw, column, byte: e.valid_up_to() });
                        return;
                    }
                    start = end;
                }
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct CsvParser {
    records: CsvRecords,
    mapping: Mapping,
}

#[derive(Debug)]
struct Mapping {
    by_name: Option<Vec<(String, Target)>>,
    unmapped: crate::Unmapped,
    time: TimeFormat,
    /// Column names and targets, from the header or the positional mapping.
    header: Option<Vec<String>>,
    targets: Vec<Target>,
    failed: bool,
}

impl CsvParser {
    pub(crate) fn new(config: &ParseConfig) -> Result<CsvParser, ConfigError> {
        let opts = &config.csv;
        let (by_name, targets, header) = match &config.columns {
            None => return Err(ConfigError("the csv format needs a column mapping: add [feeds.NAME.columns]".into())),
            Some(Columns::ByName(map)) => {
                if !opts.header {
                    return Err(ConfigError(
                        "columns are named but csv.header is false: name columns only when the first record is a header, \
                         otherwise list them in order (columns = [\"time.source\", \"source.ip\", ...])"
                            .into(),
                    ));
                }
                let pairs = map
                    .iter()
                    .map(|(col, t)| Ok((col.clone(), Target::parse(t)?)))
                    .collect::<Result<Vec<_>, ConfigError>>()?;
                (Some(pairs), Vec::new(), None)
            }
            Some(Columns::ByPosition(list)) => {
                let targets = list.iter().map(|t| Target::parse(t)).collect::<Result<Vec<_>, _>>()?;
                (None, targets, Some(list.clone()))
            }
        };
        config.time_format.check()?;
        Ok(CsvParser {
            records: CsvRecords::new(opts, config.max_record())?,
            mapping: Mapping {
                by_name,
                unmapped: config.unmapped,
                time: config.time_format.clone(),
                // With a positional mapping and a header, the header is read and then ignored.
                header: if opts.header { None } else { header },
                targets,
                failed: false,
            },
        })
    }
}

impl Mapping {
    fn record(&mut self, item: Item<'_>, out: &mut Output) {
        if self.failed {
            return;
        }
        let Some(header) = &self.header else {
            if let Err(message) = item.names().and_then(|names| self.read_header(names)) {
                out.fatal = Some(message);
                self.failed = true;
            }
            return;
        };
        let Some(record) = item.record(out, header) else { return };
        if record.cells.len() != header.len() {
            let reason = format!(
                "expected {} columns{}, found {}",
                header.len(),
                if self.by_name.is_some() { " (as in the header)" } else { " (as in the mapping)" },
                record.cells.len()
            );
            out.reject(record.position, reason, record.raw);
            return;
        }
        out.build(record.position, record.raw, |event| self.fill(event, header, record.cells));
    }

    fn read_header(&mut self, names: Vec<String>) -> Result<(), String> {
        if let Some(by_name) = &self.by_name {
            let missing: Vec<&str> = by_name
                .iter()
                .filter(|(col, t)| *t != Target::Skip && !names.contains(col))
                .map(|(col, _)| col.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "the mapping names columns that the header does not have: {}; the header has: {}",
                    missing.join(", "),
                    names.join(", ")
                ));
            }
            self.targets = names
                .iter()
                .map(|n| {
                    by_name
                        .iter()
                        .find(|(col, _)| col == n)
                        .map_or_else(|| Target::unmapped(n, self.unmapped), |(_, t)| t.clone())
                })
                .collect();
        } else if names.len() != self.targets.len() {
            return Err(format!(
                "the header has {} columns but the mapping lists {}: {}",
                names.len(),
                self.targets.len(),
                names.join(", ")
            ));
        }
        self.header = Some(names);
        Ok(())
    }

    fn fill(&self, event: &mut Event, header: &[String], cells: &[&str]) -> Result<(), String> {
        for ((target, value), name) in self.targets.iter().zip(cells).zip(header) {
            apply(event, target, value, &self.time).map_err(|e| format!("column {name:?}: {e}"))?;
        }
        Ok(())
    }
}

impl Parser for CsvParser {
    fn push(&mut self, chunk: &[u8], out: &mut Output) {
        let mapping = &mut self.mapping;
        self.records.push(chunk, &mut |item| mapping.record(item, out));
    }

    fn finish(&mut self, out: &mut Output) {
        let mapping = &mut self.mapping;
        self.records.finish(&mut |item| mapping.record(item, out));
        if mapping.header.is_none() && !mapping.failed {
            out.fatal = Some("the report is empty: expected a header line".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_all;

    fn parser(toml_config: &str) -> CsvParser {
        let config: ParseConfig = toml::from_str(toml_config).unwrap();
        CsvParser::new(&config).unwrap()
    }

    const MAPPING: &str = r#"
        time_format = "%Y-%m-%d %H:%M:%S"
        [columns]
        timestamp = "time.source"
        ip = "source.ip"
        port = "source.port"
        infection = "malware.name"
        ignored = ""
    "#;

    fn run(config: &str, input: &[u8]) -> Output {
        let whole = parse_all(&mut parser(config), input);
        for chunk in [1, 2, 3, 7, 64] {
            let mut p = parser(config);
            let mut out = Output::default();
            for c in input.chunks(chunk) {
                p.push(c, &mut out);
            }
            p.finish(&mut out);
            assert_eq!(out.events, whole.events, "chunk {chunk}");
            assert_eq!(out.rejects, whole.rejects, "chunk {chunk}");
            assert_eq!(out.fatal, whole.fatal, "chunk {chunk}");
        }
        whole
    }

    #[test]
    fn maps_columns_and_keeps_the_rest_under_extra() {
        let input = b"# a comment\ntimestamp,ip,port,infection,ignored,tag\n\
            2024-06-01 10:00:00,192.0.2.1,1024,Andromeda,x,\"a,b\"\r\n\n\
            2024-06-01 10:00:01,192.0.2.2,,,,";
        let out = run(MAPPING, input);
        assert_eq!(out.rejects, vec![]);
        assert_eq!(out.fatal, None);
        let events: Vec<String> = out.events.iter().map(|p| p.event.to_intelmq_json()).collect();
        assert_eq!(
            events,
            [
                r#"{"extra.tag":"a,b","malware.name":"andromeda","source.ip":"192.0.2.1","source.port":1024,"time.source":"2024-06-01T10:00:00+00:00"}"#,
                r#"{"source.ip":"192.0.2.2","time.source":"2024-06-01T10:00:01+00:00"}"#,
            ]
        );
        let positions: Vec<_> =
            out.events.iter().map(|p| (p.position.offset, p.position.len, p.position.line)).collect();
        assert_eq!(positions, [(52, 52, Some(3)), (107, 33, Some(5))]);
        assert_eq!(&input[52..52 + 52], b"2024-06-01 10:00:00,192.0.2.1,1024,Andromeda,x,\"a,b\"");
    }

    #[test]
    fn bad_records_become_rejects_with_position_and_reason() {
        let input = "timestamp,ip,port,infection,ignored\n\
            2024-06-01 10:00:00,192.0.2.1,80,a,b\n\
            2024-06-01 10:00:00,999.0.0.1,80,a,b\n\
            2024-06-01 10:00:00,192.0.2.1,80\n\
            yesterday,192.0.2.1,80,a,b\n\
            2024-06-01 10:00:00,192.0.2.1,\u{ff}80,a,b\n";
        let mut bytes = input.as_bytes().to_vec();
        let at = bytes.iter().position(|&b| b == 0xc3).unwrap();
        bytes[at] = 0xff;
        let out = run(MAPPING, &bytes);
        assert_eq!(out.events.len(), 1);
        let rejects: Vec<(Option<u64>, &str)> =
            out.rejects.iter().map(|r| (r.position.line, r.reason.as_str())).collect();
        assert_eq!(
            rejects,
            [
                (Some(3), r#"column "ip": source.ip: expected an IPv4 or IPv6 address, found "999.0.0.1""#),
                (Some(4), "expected 5 columns (as in the header), found 3"),
                (
                    Some(5),
                    r#"column "timestamp": time.source: expected a time written as %Y-%m-%d %H:%M:%S, found "yesterday""#
                ),
                (Some(6), r#"column "port": invalid UTF-8 at byte 0 of the value"#),
            ]
        );
        assert_eq!(out.rejects[1].raw, b"2024-06-01 10:00:00,192.0.2.1,80");
    }

    #[test]
    fn whole_report_problems_are_fatal() {
        let out = run(MAPPING, b"ts,ip\n1,2\n");
        assert_eq!(
            out.fatal.as_deref(),
            Some(
                "the mapping names columns that the header does not have: infection, port, timestamp; the header has: ts, ip"
            )
        );
        assert!(out.events.is_empty() && out.rejects.is_empty());
        assert_eq!(run(MAPPING, b"").fatal.as_deref(), Some("the report is empty: expected a header line"));
        assert_eq!(
            run(MAPPING, b"# only a comment\n").fatal.as_deref(),
            Some("the report is empty: expected a header line")
        );
    }

    #[test]
    fn positional_mapping_without_header() {
        let config = r#"
            columns = ["source.ip", "time.source", "extra.attacks"]
            [csv]
            header = false
            delimiter = "\t"
        "#;
        let out = run(config, b"192.0.2.1\t1717236764\t3\n192.0.2.2\t1717236765\n");
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].event.extra["attacks"], "3");
        assert_eq!(out.rejects[0].reason, "expected 3 columns (as in the mapping), found 2");
    }

    /// Found by the fuzzer (issue 3): csv-core drops a byte order mark only when it arrives in
    /// one piece, so a mark cut across chunks became part of the first column's name.
    #[test]
    fn a_byte_order_mark_is_dropped_however_it_is_cut() {
        let input = b"\xEF\xBB\xBFtimestamp,ip,port,infection,ignored\n2024-06-01 10:00:00,192.0.2.1,80,a,b\n";
        let out = run(MAPPING, input);
        assert_eq!((out.events.len(), out.fatal), (1, None));
        assert_eq!(out.events[0].position.offset, 39);
        // Two bytes of a mark are not a mark: they are the (bad) header.
        assert!(run(MAPPING, b"\xEF\xBB").fatal.unwrap().contains("the header is not valid UTF-8"));
        // A record that the end of the input ends keeps its last newlines, however it is cut
        // (found by the fuzzer: they were counted as its terminator only when they came last).
        let open = run(MAPPING, b"timestamp,ip,port,infection,ignored\n\"\n\n");
        assert_eq!(open.rejects[0].position.len, 3);
        // A mark after blank lines is part of the header, however it is cut (found by the fuzzer).
        let late = run(MAPPING, b"\r\r\xEF\xBB\xBF\r\n\x87");
        assert!(late.fatal.unwrap().starts_with("the mapping names columns that the header does not have"));
    }

    #[test]
    fn an_oversized_record_is_rejected_without_being_buffered() {
        let config = format!("max_record = 2048\n{MAPPING}");
        let mut input = b"timestamp,ip,port,infection,ignored\n".to_vec();
        input.extend(b"2024-06-01 10:00:00,192.0.2.1,80,");
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend(b",b\n2024-06-01 10:00:00,192.0.2.9,80,a,b\n");
        let out = run(&config, &input);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.rejects.len(), 1);
        assert_eq!(
            out.rejects[0].reason,
            "record longer than 2048 bytes or with more than 10000 fields (100035 bytes)"
        );
        assert_eq!(out.rejects[0].raw.len(), farol_model::Reject::MAX_RAW);
    }

    #[test]
    fn configuration_errors_are_clear() {
        let err = |config: &str| CsvParser::new(&toml::from_str(config).unwrap()).unwrap_err().0;
        assert_eq!(err(""), "the csv format needs a column mapping: add [feeds.NAME.columns]");
        assert!(err("[columns]\nip = \"source.ipv4\"").contains("\"source.ipv4\" is not a harmonization field"));
        assert!(err("[csv]\ndelimiter = \"\u{e9}\"\n[columns]\nip = \"source.ip\"").contains("csv.delimiter"));
        assert!(err("[csv]\nheader = false\n[columns]\nip = \"source.ip\"").contains("csv.header is false"));
    }
}
