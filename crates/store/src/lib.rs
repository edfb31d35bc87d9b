//! Where farol keeps everything: the [`Store`] trait, its embedded SQLite backend, and its
//! PostgreSQL backend for deployments across machines.
//!
//! Only this crate writes SQL. A report's raw bytes are archived ([`Store::archive`]) before
//! anything is parsed; events are written in large sorted batches through an [`EventWriter`];
//! each event is stored once per [`EventHash`](farol_model::EventHash).

mod accounts;
mod archive;
mod copy;
mod notify;
mod postgres;
mod row;
mod sharing;
mod sql;
mod sqlite;
mod stored;
#[doc(hidden)]
pub mod testing;

use std::collections::BTreeMap;
use std::io::Read;

use farol_model::incident::{Entry, Incident, NewFile, Status};
use farol_model::indicator::{Community, Indicator};
use farol_model::org::{Distribution, Org, OrgId};
use farol_model::{
    ClassificationType, Counts, Event, EventHash, Position, Reject, Report, ReportId, Routing, Scope, Taxonomy,
    Timestamp, Tlp,
};
use ipnet::IpNet;

pub use accounts::{AuditEntry, Session, Token, TokenScope, User};
pub use archive::CHUNK_SIZE;
pub use copy::sqlite_to_postgres;
pub use notify::{Delivery, Inhibition, Mark, NewMessage, OutboxMessage, OutboxState};
pub use postgres::PostgresStore;
pub use row::{Part, Row};
pub use sharing::{Grant, IndicatorQuery, Sighting, Version};
pub use sqlite::SqliteStore;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Schema(String),
    #[error("no report {0}")]
    NoReport(ReportId),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A time the store wrote itself, so always in range.
pub(crate) fn stored_time(v: i64) -> Timestamp {
    Timestamp::from_micros(v).unwrap_or_else(Timestamp::now)
}

/// An optional time as stored (out of range reads as none).
pub(crate) fn time(v: Option<i64>) -> Option<Timestamp> {
    v.and_then(Timestamp::from_micros)
}

impl StoreError {
    /// What a process that stalled past its lease meets when it goes on with its report.
    pub(crate) fn taken_over(report: ReportId) -> StoreError {
        StoreError::Conflict(format!(
            "report {report} was taken over by another process while this one stalled past its lease; \
             it is theirs to finish"
        ))
    }
}

/// Where a store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// The embedded store: one SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (with
    /// connection parameters such as `?options=-c%20search_path%3Dfarol`).
    Postgres(String),
}

impl Location {
    /// Reads `sqlite://PATH` (relative to `dir` unless absolute) or `postgres://...`.
    pub fn parse(dir: &std::path::Path, url: &str) -> Result<Location, String> {
        if let Some(path) = url.strip_prefix("sqlite://").filter(|p| !p.is_empty()) {
            return Ok(Location::Sqlite(dir.join(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres::check(url).map_err(|e| format!("{}: {e}", Location::Postgres(url.into())))?;
            return Ok(Location::Postgres(url.to_owned()));
        }
        let scheme = url.split("://").next().unwrap_or(url);
        Err(format!("expected sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE, found {scheme:?}"))
    }

    /// Opens the store, creating and migrating it as needed.
    pub fn open(&self) -> Result<std::sync::Arc<dyn Store>> {
        Ok(match self {
            Location::Sqlite(path) => std::sync::Arc::new(SqliteStore::open(path)?),
            Location::Postgres(url) => std::sync::Arc::new(PostgresStore::open(url)?),
        })
    }

    /// The schema version of the store (0 when there is none yet), and the version this farol
    /// migrates stores to.
    pub fn schema_version(&self) -> Result<(usize, usize)> {
        match self {
            Location::Sqlite(path) => SqliteStore::schema_version(path),
            Location::Postgres(url) => PostgresStore::schema_version(url),
        }
    }
}

/// Names the store without the password a PostgreSQL URL may hold.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
                let server = rest.rsplit_once('@').map_or(rest, |(_, server)| server);
                write!(f, "postgres://{}", server.split('?').next().unwrap_or(server))
            }
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// A report about to be archived.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub feed: String,
    pub format: String,
    pub name: Option<String>,
    pub received_at: Timestamp,
}

/// The outcome of archiving.
#[derive(Debug, Clone)]
pub enum Archived {
    /// New bytes, now stored durably.
    New(Report),
    /// The same bytes were already stored for this feed: this is that report.
    Existing(Report),
}

/// The outcome of claiming a report for processing.
#[derive(Debug, Clone)]
pub enum Claimed {
    /// The report is the claimer's until its lease runs out.
    Taken(Report),
    /// Another process holds the report (see [`Report::holder`]).
    Held(Report),
    /// No report waits to be processed.
    Nothing,
}

/// Which events a reader may see. The access policy (`farol-policy`) builds it; the store
/// applies it inside every event query. The default sees nothing, so that a query whose
/// visibility was forgotten fails closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Visibility {
    #[default]
    Nothing,
    /// The national center: everything.
    All,
    /// An organization or a partner.
    Scoped {
        /// Events in this organization's networks, up to this TLP, when their distribution
        /// reaches the affected organizations.
        inside: Option<(OrgId, Tlp)>,
        /// Events whose distribution reaches at least this far, up to this TLP.
        shared: Option<(Distribution, Tlp)>,
    },
}

/// Which events to read. Every filter is optional; results are newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Who is reading: only what this allows is returned.
    pub visible: Visibility,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// One address (a /32 or /128) or a network.
    pub source: Option<IpNet>,
    pub asn: Option<u32>,
    pub cc: Option<String>,
    pub taxonomy: Option<Taxonomy>,
    pub kind: Option<ClassificationType>,
    pub feed: Option<String>,
    pub report: Option<ReportId>,
    /// Events in this organization's networks.
    pub org: Option<OrgId>,
    pub scope: Option<Scope>,
    /// Continue after this event (from [`StoredEvent::cursor`]).
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// A position in the newest-first order of events: resume a listing after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub time: i64,
    pub id: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.time, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Cursor, String> {
        let (t, i) = s.split_once('_').ok_or_else(|| format!("invalid cursor {s:?}"))?;
        Ok(Cursor {
            time: t.parse().map_err(|_| format!("invalid cursor {s:?}"))?,
            id: i.parse().map_err(|_| format!("invalid cursor {s:?}"))?,
        })
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub report: ReportId,
    pub feed: String,
    pub hash: EventHash,
    /// Where the record sits in the report's raw bytes.
    pub position: Position,
    pub event: Event,
    /// The time the event is filed under: its time, or the start of its aggregation window.
    pub filed: Timestamp,
    pub routing: Routing,
    /// For an aggregated event, the observations it stands for.
    pub aggregate: Option<Aggregate>,
}

/// The observations an aggregated event stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A version of an IP dataset, as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRecord {
    pub id: i64,
    pub name: String,
    pub version: u32,
    pub format: String,
    pub priority: i32,
    pub description: String,
    /// Where it was loaded from (a file name).
    pub source: String,
    pub sha256: String,
    pub loaded_at: Timestamp,
    pub ranges: u64,
    pub rejected: u64,
    pub active: bool,
}

/// A dataset to store: its next version is assigned by the store.
#[derive(Debug, Clone)]
pub struct NewDataset<'a> {
    pub name: &'a str,
    pub format: &'a str,
    pub priority: i32,
    pub description: &'a str,
    pub source: &'a str,
    pub sha256: [u8; 32],
    pub ranges: u64,
    pub rejected: u64,
    /// The dataset's encoded ranges.
    pub data: &'a [u8],
}

/// Counts of the events a query selects, whatever its limit: what a dashboard shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    pub by_type: BTreeMap<ClassificationType, u64>,
    pub by_asn: BTreeMap<u32, u64>,
    /// By organization whose networks the events are in.
    pub by_org: BTreeMap<OrgId, u64>,
    /// By UTC day (its midnight), from the time the events are filed under.
    pub by_day: BTreeMap<Timestamp, u64>,
}

impl Tally {
    /// Counts one event from its indexed columns: type code, AS, organizations, time filed.
    pub(crate) fn count(&mut self, kind: Option<u8>, asn: Option<u32>, orgs: &[i64], time: i64) {
        const DAY: i64 = 86_400_000_000;
        self.events += 1;
        if let Some(t) = kind.and_then(|k| ClassificationType::ALL.get(usize::from(k))) {
            *self.by_type.entry(*t).or_default() += 1;
        }
        if let Some(asn) = asn {
            *self.by_asn.entry(asn).or_default() += 1;
        }
        for &org in orgs {
            *self.by_org.entry(OrgId(org)).or_default() += 1;
        }
        if let Some(day) = Timestamp::from_micros(time.div_euclid(DAY) * DAY) {
            *self.by_day.entry(day).or_default() += 1;
        }
    }
}

/// An event's routing, to store in place of what it had.
#[derive(Debug, Clone)]
pub struct Rerouted {
    pub id: i64,
    pub routing: Routing,
}

impl StoredEvent {
    pub fn cursor(&self) -> Cursor {
        Cursor { time: self.filed.micros(), id: self.id }
    }
}

/// What a feed's reports have done lately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedHealth {
    pub feed: String,
    pub last_report: Option<Timestamp>,
    /// The last report that was processed without a report-level error.
    pub last_success: Option<Timestamp>,
    pub last_error: Option<(Timestamp, String)>,
    pub reports_24h: u64,
    pub events_24h: u64,
    pub rejects_24h: u64,
}

/// What processing a report ended with.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub counts: Counts,
    /// A report-level error (the records read before it are kept).
    pub error: Option<String>,
    /// Who processed it: when given, the report is finished only if this holder still holds its
    /// lease. A process whose lease another took over (it stalled past the lease, the other may
    /// have removed its events and died) must not mark the report done.
    pub holder: Option<String>,
}

/// What one flush of the event writer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    pub duplicates: u64,
}

/// Writes one report's events and rejects in large transactions.
pub trait EventWriter: Send {
    /// Queues rows and rejects; writes them when the batch is full.
    fn write(&mut self, rows: Vec<Row>, rejects: Vec<Reject>) -> Result<Written>;
    /// Writes whatever is queued.
    fn flush(&mut self) -> Result<Written>;
}

/// The storage backend. Methods block; async callers run them on a blocking thread.
pub trait Store: Send + Sync {
    /// Stores a report's raw bytes durably (compressed, addressed by SHA-256), or finds the
    /// report that already holds the same bytes for the same feed. `progress` is told how many
    /// bytes have been read so far.
    fn archive(&self, new: &NewReport, input: &mut dyn Read, progress: &mut dyn FnMut(u64)) -> Result<Archived>;

    fn report(&self, id: ReportId) -> Result<Report>;

    /// The most recent reports, newest first, optionally of one feed.
    fn reports(&self, feed: Option<&str>, limit: usize) -> Result<Vec<Report>>;

    /// Reports that were archived but not processed to the end (interrupted or never started).
    fn unfinished_reports(&self) -> Result<Vec<Report>>;

    /// Takes a report for `holder` until `until`: report `id`, or with `None` the oldest that
    /// waits (stored, or left unfinished by a holder whose lease ran out before `now`). A report
    /// whose lease still runs is not taken, unless `holder` is its own.
    fn claim_report(&self, id: Option<ReportId>, holder: &str, now: Timestamp, until: Timestamp) -> Result<Claimed>;

    /// Extends `holder`'s lease; false when the report is no longer its.
    fn renew_claim(&self, id: ReportId, holder: &str, until: Timestamp) -> Result<bool>;

    /// Gives the report up, if `holder` still has it.
    fn release_claim(&self, id: ReportId, holder: &str) -> Result<()>;

    /// The raw bytes of a report, as a stream.
    fn raw(&self, id: ReportId) -> Result<Box<dyn Read + Send>>;

    /// Prepares a report to be (re)processed: removes the events and rejects an earlier run wrote
    /// and marks it as processing.
    fn begin_processing(&self, id: ReportId) -> Result<()>;

    /// A writer for one report's events. `common` holds the fields its events share (see
    /// [`Row::new`]); it is kept with the report.
    /// `distribution` says who besides the center may receive the report's events; it is in
    /// force before the first event is written.
    fn event_writer(
        &self,
        report: ReportId,
        common: &Event,
        distribution: Distribution,
    ) -> Result<Box<dyn EventWriter>>;

    fn finish_processing(&self, id: ReportId, outcome: &Outcome) -> Result<Report>;

    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>>;

    /// One event, if it exists and `visible` allows it.
    fn event(&self, id: i64, visible: &Visibility) -> Result<Option<StoredEvent>>;
    /// Counts what `query` selects (its `after` and `limit` do not apply).
    fn tally(&self, query: &EventQuery) -> Result<Tally>;

    fn rejects(&self, report: ReportId, limit: usize) -> Result<Vec<Reject>>;

    fn feed_health(&self, now: Timestamp) -> Result<Vec<FeedHealth>>;

    /// What a collector, a partner exchange or a stream remembered after its last run (opaque to
    /// the store), under its key: a feed's name, `partner:NAME`, `stream:org:ID`.
    fn collector_state(&self, key: &str) -> Result<Option<String>>;

    fn set_collector_state(&self, key: &str, state: &str) -> Result<()>;

    /// Records that a feed's collector ran, with the error that stopped it if any.
    fn record_feed_result(&self, feed: &str, error: Option<&str>) -> Result<()>;

    /// Counts of stored events and reports, for summaries.
    fn totals(&self) -> Result<Totals>;

    /// Adds an organization (its id is ignored); the name must be new.
    fn add_org(&self, org: &Org) -> Result<OrgId>;

    /// Replaces an organization's name, sector, handle, assets and contacts.
    fn update_org(&self, org: &Org) -> Result<()>;

    /// Removes an organization and its routing; false when there was none.
    fn remove_org(&self, id: OrgId) -> Result<bool>;

    /// Every organization, with assets and contacts, by name.
    fn orgs(&self) -> Result<Vec<Org>>;

    /// Stores a new version of an IP dataset and makes it the active one of its name.
    fn add_dataset(&self, new: &NewDataset<'_>) -> Result<DatasetRecord>;

    /// The active datasets (all versions with `all`), by name and version.
    fn datasets(&self, all: bool) -> Result<Vec<DatasetRecord>>;

    /// A dataset's encoded ranges.
    fn dataset_data(&self, id: i64) -> Result<Vec<u8>>;

    /// Deactivates every version of a dataset; false when there was none.
    fn remove_dataset(&self, name: &str) -> Result<bool>;

    /// Events with ids above `after`, in id order: for passes over the whole store.
    fn events_after(&self, after: i64, limit: usize) -> Result<Vec<StoredEvent>>;

    /// Replaces the routing of events.
    fn set_routing(&self, events: &[Rerouted]) -> Result<()>;

    /// Adds a user (its id is ignored); the e-mail address must be new.
    fn add_user(&self, user: &User) -> Result<User>;

    /// Replaces a user's fields; disabling a user ends its sessions.
    fn update_user(&self, user: &User) -> Result<()>;

    fn user(&self, id: i64) -> Result<Option<User>>;

    fn user_by_email(&self, email: &str) -> Result<Option<User>>;

    /// Users by e-mail address, of one organization or all.
    fn users(&self, org: Option<OrgId>) -> Result<Vec<User>>;

    /// Starts a session, known by the SHA-256 of its id.
    fn add_session(&self, hash: &[u8], user: i64, csrf: &str, now: Timestamp) -> Result<()>;

    fn session(&self, hash: &[u8]) -> Result<Option<Session>>;

    fn touch_session(&self, hash: &[u8], now: Timestamp) -> Result<()>;

    fn remove_session(&self, hash: &[u8]) -> Result<()>;

    /// Stores a token (its id is ignored), known by the SHA-256 of its secret.
    fn add_token(&self, hash: &[u8], token: &Token) -> Result<Token>;

    /// The token with this hash and its user, marked as used now; valid or not.
    fn token(&self, hash: &[u8], now: Timestamp) -> Result<Option<(Token, User)>>;

    fn tokens(&self, user: i64) -> Result<Vec<Token>>;

    /// Revokes one of a user's tokens; false when the user had no such token to revoke.
    fn revoke_token(&self, id: i64, user: i64, now: Timestamp) -> Result<bool>;

    fn audit(&self, entry: &AuditEntry) -> Result<()>;

    /// The newest audit entries, of one organization or all.
    fn audit_log(&self, org: Option<OrgId>, limit: usize) -> Result<Vec<AuditEntry>>;

    /// Opens an incident (its id is made here) with the first entry of its timeline and the
    /// files that came with it; every event it names must exist.
    fn add_incident(&self, incident: &Incident, entry: &Entry, files: &[NewFile]) -> Result<Incident>;

    fn incident(&self, id: i64) -> Result<Option<Incident>>;

    /// Incidents, newest first.
    fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>>;

    /// Replaces an incident's fields, organizations and events, and adds an entry to its
    /// timeline, in one transaction.
    fn update_incident(&self, incident: &Incident, entry: &Entry) -> Result<()>;

    /// Adds an entry to an incident's timeline (a comment, correspondence) with its files.
    fn add_entry(&self, incident: i64, entry: &Entry, files: &[NewFile]) -> Result<()>;

    /// An incident's timeline, oldest first, each entry with its files (without their data).
    fn timeline(&self, incident: i64) -> Result<Vec<Entry>>;

    /// A file of a timeline entry, with its data and the entry it came with.
    fn file(&self, id: i64) -> Result<Option<StoredFile>>;

    /// Takes in an e-mail as a new incident or a reply, once per `message_id` in one
    /// transaction: the incident's id, or `None` when that message was taken in before.
    fn receive_mail(&self, message_id: &str, mail: &Mail) -> Result<Option<i64>>;

    /// Saves an event search under its name, replacing one of the same name.
    fn save_search(&self, search: &Search) -> Result<()>;

    /// The saved searches, by name.
    fn searches(&self) -> Result<Vec<Search>>;

    /// Removes a saved search; false when there was none.
    fn remove_search(&self, name: &str) -> Result<bool>;

    /// What every contact has been told.
    fn notify_marks(&self) -> Result<Vec<Mark>>;

    /// The last report such that it and every report before it are finished (processed or
    /// failed): the reports whose events may be told about. 0 when there is none.
    fn finished_through(&self) -> Result<i64>;

    /// The last report received before `time`; 0 when there is none.
    fn report_before(&self, time: Timestamp) -> Result<i64>;

    /// The events in an organization's networks that reports after `reports.0` up to
    /// `reports.1` brought, as far as `visible` allows, in id order from the event after `after`.
    fn new_events(
        &self,
        org: OrgId,
        visible: &Visibility,
        reports: (i64, i64),
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;

    /// Records what a contact has been told without queueing a message (nothing was new).
    fn set_mark(&self, mark: &Mark) -> Result<()>;

    /// Queues the message `make` builds from its outbox id, and records what it tells (a
    /// contact's new mark, an incident's timeline entry) in one transaction: a message is
    /// queued once or not at all. Returns the outbox id; `None` (and nothing changed) when
    /// `make` builds nothing.
    fn queue_message(&self, record: Record<'_>, make: &mut dyn FnMut(i64) -> Option<NewMessage>)
    -> Result<Option<i64>>;

    /// Pending messages due at `now`, oldest first.
    fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>>;

    /// The newest messages of the outbox, of one organization or all, without their bytes.
    fn outbox(&self, org: Option<OrgId>, limit: usize) -> Result<Vec<OutboxMessage>>;

    /// Records how an attempt to deliver a message ended.
    fn record_delivery(&self, id: i64, delivery: &Delivery) -> Result<()>;

    /// Adds a mute rule (its id is ignored).
    fn add_inhibition(&self, rule: &Inhibition) -> Result<Inhibition>;

    /// Every mute rule, expired ones included.
    fn inhibitions(&self) -> Result<Vec<Inhibition>>;

    /// Removes a mute rule; false when there was none.
    fn remove_inhibition(&self, id: i64) -> Result<bool>;

    /// Distinct source addresses, address-days and events over the query's whole period,
    /// counted exactly.
    fn hosts(&self, query: &HostQuery) -> Result<HostCount>;

    /// The same per day, country, AS, organization, type or family; days in order, the rest
    /// the most addresses first.
    fn host_breakdown(&self, query: &HostQuery, by: Breakdown) -> Result<Vec<HostCount>>;

    /// Adds or replaces denominators; returns how many rows were written.
    fn add_population(&self, rows: &[Population]) -> Result<usize>;

    fn population(&self) -> Result<Vec<Population>>;

    /// Adds a community (its id is ignored); a conflict when its name is taken or a member
    /// does not exist.
    fn add_community(&self, community: &Community) -> Result<Community>;

    /// Renames a community, or changes its description or members.
    fn update_community(&self, community: &Community) -> Result<()>;

    /// Removes a community; its indicators are then shared with no community. False when
    /// there was none.
    fn remove_community(&self, id: i64) -> Result<bool>;

    /// Every community with its members, by name.
    fn communities(&self) -> Result<Vec<Community>>;

    /// The last report whose events indicators were derived from; every report before it was
    /// derived too. Processing a report again moves it back before that report.
    fn indicator_mark(&self) -> Result<i64>;

    /// A report's events of these classification types with ids above `after`, in id order.
    fn report_events(
        &self,
        report: ReportId,
        types: &[ClassificationType],
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;

    /// Records what a report's events showed (replacing what it showed before) and moves the
    /// mark to it, in one transaction. Each indicator touched gets a new version.
    fn add_sightings(&self, report: ReportId, sightings: &[Sighting], now: Timestamp) -> Result<()>;

    /// Adds an indicator, or replaces the one of the same kind, value and origin (its id and
    /// `created` are ignored), with a new version; returns it as stored.
    fn put_indicator(&self, indicator: &Indicator, now: Timestamp) -> Result<Indicator>;

    /// Indicators, in version order, as far as the query's grants allow.
    fn indicators(&self, query: &IndicatorQuery) -> Result<Vec<Indicator>>;

    /// Removes an indicator; false when there was none.
    fn remove_indicator(&self, id: i64) -> Result<bool>;

    /// Takes the lock named `name`, which one process at a time holds among all that share the
    /// store, on any machine (the live streams' publisher, the notification rounds), waiting
    /// for it when `wait`; `None` when another holds it and not `wait`. Dropping it releases it,
    /// as does the end of the process.
    fn lock(&self, name: &str, wait: bool) -> Result<Option<StoreLock>>;
}

/// A lock of [`Store::lock`], held until dropped.
pub struct StoreLock(#[allow(dead_code, reason = "held for its lock")] Box<dyn Send>);

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

/// What a queued message records beside it.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    /// A digest: what the contact has now been told.
    Mark(&'a Mark),
    /// A message about an incident: the entry in its timeline.
    Entry(i64, &'a Entry),
}

/// A file of a timeline entry.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub incident: i64,
    /// The entry it came with (without its list of files).
    pub entry: Entry,
    pub file: NewFile,
}

/// An e-mail taken in: a new incident, or a reply to one.
#[derive(Debug, Clone)]
pub enum Mail {
    New { incident: Incident, entry: Entry, files: Vec<NewFile> },
    Reply { incident: i64, entry: Entry, files: Vec<NewFile> },
}

/// An event search kept by name, in the query language of `GET /api/v1/events`
/// (`asn=64500&type=phishing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub name: String,
    pub query: String,
    pub created: Timestamp,
    pub created_by: Option<i64>,
}

/// Links events (which must exist) to an incident, with the organizations of their networks;
/// returns how many were not linked before.
pub fn link_events(store: &dyn Store, i: &mut Incident, events: &[i64]) -> Result<usize> {
    let before = i.events.len();
    for &id in events {
        let e = store.event(id, &Visibility::All)?.ok_or_else(|| StoreError::NotFound(format!("no event {id}")))?;
        if !i.events.contains(&id) {
            i.events.push(id);
        }
        for o in e.routing.orgs {
            if !i.orgs.contains(&o) {
                i.orgs.push(o);
            }
        }
    }
    Ok(i.events.len() - before)
}

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Those that concern this organization.
    pub org: Option<OrgId>,
    pub status: Option<Status>,
    /// Open ones only (new, open, stalled).
    pub open: bool,
    pub limit: usize,
}

/// Whose addresses a statistic counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostScope {
    All,
    /// Addresses registered in this country (ISO 3166 alpha-2).
    Country(String),
    Asn(u32),
    /// Addresses in the networks of any of these organizations.
    Orgs(Vec<OrgId>),
}

/// A question to the statistics rollups: distinct source addresses and their events, in a
/// range of UTC days.
#[derive(Debug, Clone)]
pub struct HostQuery {
    pub scope: HostScope,
    /// Days since 1970-01-01, both inclusive.
    pub from_day: i64,
    pub to_day: i64,
    /// Classification types counted; all when empty.
    pub types: Vec<ClassificationType>,
    /// `malware.name`.
    pub family: Option<String>,
    /// Only events with this TLP or a lower one (for public figures: CLEAR).
    pub max_tlp: Option<Tlp>,
}

/// What statistics are broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdown {
    /// Days since 1970-01-01, in order.
    Day,
    Country,
    Asn,
    /// Organization ids.
    Org,
    /// Classification type names.
    Type,
    /// Malware families (`malware.name`).
    Family,
}

/// Distinct addresses and events for one key of a [`Breakdown`] (empty for a total).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCount {
    pub key: String,
    /// Distinct addresses over the whole period.
    pub hosts: u64,
    /// Distinct addresses per day, summed over the days: divided by the days, the mean number
    /// of addresses seen a day.
    pub host_days: u64,
    pub events: u64,
}

/// A denominator: how many internet users (or subscribers, active hosts) a country, AS,
/// organization or sector has, from a day on.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// `country`, `asn`, `org` or `sector`.
    pub scope: String,
    pub key: String,
    pub metric: String,
    /// Days since 1970-01-01.
    pub valid_from: i64,
    pub value: f64,
}

/// Sizes of what is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub reports: u64,
    pub events: u64,
    pub rejects: u64,
}
