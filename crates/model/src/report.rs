//! Reports (one unit of raw input), rejects (records that could not become events) and the
//! record that travels through the pipeline.

use std::fmt;

use crate::event::{Event, EventHash};
use crate::time::Timestamp;

/// A report's id in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(pub i64);

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a report is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportStatus {
    /// Archived durably, not yet processed.
    Stored,
    /// Being turned into events (or interrupted while it was: processing again is safe).
    Processing,
    /// Every record became an event or a reject.
    Done,
    /// Processing stopped with an error that is not about a record (for example an unknown format).
    Failed,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Stored => "stored",
            ReportStatus::Processing => "processing",
            ReportStatus::Done => "done",
            ReportStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<ReportStatus> {
        [ReportStatus::Stored, ReportStatus::Processing, ReportStatus::Done, ReportStatus::Failed]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ReportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub id: ReportId,
    pub feed: String,
    /// The parser that reads it, e.g. `intelmq` or `csv`.
    pub format: String,
    /// The name it arrived under (file name, URL path), if any.
    pub name: Option<String>,
    /// Lowercase hex SHA-256 of the raw bytes.
    pub sha256: String,
    pub size: u64,
    pub received_at: Timestamp,
    pub status: ReportStatus,
    pub counts: Counts,
    /// The last processing error that was not about a single record.
    pub error: Option<String>,
    pub processed_at: Option<Timestamp>,
    /// The process that holds the report while it is processed (`host:pid:n`), until its lease
    /// runs out.
    pub holder: Option<String>,
}

/// What processing a report produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records read.
    pub records: u64,
    /// New events stored.
    pub events: u64,
    /// Events that were already stored (same event hash).
    pub duplicates: u64,
    /// Events that experts dropped on purpose (for example by a warninglist rule).
    pub dropped: u64,
    /// Records that could not be read or validated.
    pub rejects: u64,
}

/// Where a record sits in its report's raw bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Byte offset of the record's first byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// 1-based line number of the record's first line, for line-oriented formats.
    pub line: Option<u64>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}"),
            None => write!(f, "byte {}", self.offset),
        }
    }
}

/// A record that could not become an event: where it was, why, and its bytes (cut to
/// [`Reject::MAX_RAW`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub position: Position,
    pub reason: String,
    pub raw: Vec<u8>,
}

impl Reject {
    /// How much of a rejected record is kept: enough to see what went wrong.
    pub const MAX_RAW: usize = 4096;

    pub fn new(position: Position, reason: impl Into<String>, raw: &[u8]) -> Reject {
        let raw = raw[..raw.len().min(Reject::MAX_RAW)].to_vec();
        Reject { position, reason: reason.into(), raw }
    }
}

/// An event on its way through the pipeline, with what the pipeline knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub event: Event,
    /// Where the record came from in the raw report.
    pub position: Position,
    /// Digest of what the feed said, taken before enrichment.
    pub hash: EventHash,
    /// The organizations the event concerns, once routing has run.
    pub routing: Routing,
}

/// Which organizations an event concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub orgs: Vec<crate::org::OrgId>,
    pub scope: Scope,
}

/// Whether an event lies in the constituency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Routing has not run (no organizations, no national scope configured).
    #[default]
    Unrouted,
    /// In the networks of one or more organizations.
    Org,
    /// In the national scope (its country), in no organization's networks.
    National,
    /// Outside the constituency.
    Outside,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Unrouted, Scope::Org, Scope::National, Scope::Outside];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Unrouted => "unrouted",
            Scope::Org => "org",
            Scope::National => "national",
            Scope::Outside => "outside",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Scope {
        Scope::ALL.get(usize::try_from(code).unwrap_or(0)).copied().unwrap_or_default()
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}: unrouted, org, national or outside"))
    }
}
