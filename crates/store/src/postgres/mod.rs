//! The PostgreSQL backend, for a center that outgrows one machine: workers on several machines
//! share one database, claim reports with `FOR UPDATE SKIP LOCKED`, and write events with COPY
//! into monthly partitions.
//!
//! It keeps what the SQLite store keeps, in PostgreSQL's terms: see ARCHITECTURE.md.

mod accounts;
mod events;
mod incidents;
mod notify;
mod orgs;
mod sharing;
mod stats;
mod tls;

use std::io::Read;
use std::sync::Mutex;

use farol_model::incident::{Entry, Incident, NewFile};
use farol_model::indicator::{Community, Indicator};
use farol_model::org::{Distribution, Org, OrgId};
use farol_model::{ClassificationType, Counts, Event, Reject, Report, ReportId, ReportStatus, Timestamp};
use postgres::error::SqlState;
use postgres::{Client, GenericClient};

use crate::archive::{self, ChunkReader};
use crate::stored::Bases;
use crate::{
    Archived, AuditEntry, Breakdown, Claimed, DatasetRecord, Delivery, EventQuery, EventWriter, FeedHealth, HostCount,
    HostQuery, IncidentFilter, IndicatorQuery, Inhibition, Mail, Mark, NewDataset, NewMessage, NewReport,
    OutboxMessage, Outcome, Population, Record, Rerouted, Result, Search, Session, Sighting, Store, StoreError,
    StoreLock, StoredEvent, StoredFile, Tally, Token, Totals, User, Visibility,
};

/// Schema migrations, applied in order; the table `farol_schema` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("migration2.sql"),
    include_str!("migration3.sql"),
    include_str!("migration4.sql"),
];

/// As in the SQLite store: a report still "receiving" without a heartbeat for this long was
/// abandoned by a crashed process.
const STALE_RECEIVING: i64 = 10 * 60 * 1_000_000;

/// Advisory locks: one migration at a time; one process making partitions at a time; new
/// report rows commit under `REPORT_IDS` shared, and `finished_through` reads under it
/// exclusive. (Loading a dataset locks 7_248_303 with the hash of its name.)
const MIGRATING: i64 = 7_248_301;
pub(super) const PARTITIONING: i64 = 7_248_302;
const REPORT_IDS: i64 = 7_248_304;

/// The first key of the locks of [`Store::lock`] (the second is the hash of the name).
const NAMED: i32 = 7_248_306;

/// A connection that holds a session lock: closing it releases the lock.
struct Holding(Option<Client>);

impl Drop for Holding {
    fn drop(&mut self) {
        close(self.0.take().into_iter().collect());
    }
}

/// Closes connections on a thread of their own: the synchronous client closes by blocking on a
/// runtime of its own, which panics on a thread that drives async tasks (`farol stream`,
/// `farol serve`), where the last reference to the store, or a lock, may go.
fn close(clients: Vec<Client>) {
    if !clients.is_empty() {
        let _ = std::thread::spawn(move || drop(clients)).join();
    }
}

/// Idle connections kept for reuse.
const IDLE: usize = 8;

/// The PostgreSQL store.
pub struct PostgresStore {
    target: tls::Target,
    idle: Mutex<Vec<Client>>,
    bases: Bases,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        close(std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner())));
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`) and
    /// applies migrations as needed.
    pub fn open(url: &str) -> Result<PostgresStore> {
        let store =
            PostgresStore { target: tls::Target::new(url)?, idle: Mutex::new(Vec::new()), bases: Bases::default() };
        migrate(&mut store.connect()?)?;
        Ok(store)
    }

    /// The schema version of the database at `url`, and the version this farol migrates to.
    pub fn schema_version(url: &str) -> Result<(usize, usize)> {
        let mut client = connect(url)?;
        Ok((version(&mut client)?, MIGRATIONS.len()))
    }

    fn connect(&self) -> Result<Client> {
        self.target.connect()
    }

    /// Runs `f` on a connection of the pool (a new one when none is idle).
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => self.connect()?,
        };
        let out = f(&mut client);
        // A transaction `f` left open was rolled back when it was dropped.
        if !client.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < IDLE {
                idle.push(client);
            }
        }
        out
    }
}

pub(crate) use tls::check;

/// A connection to the database at `url` (for one-off work: a store keeps its [`tls::Target`]).
pub(crate) fn connect(url: &str) -> Result<Client> {
    tls::Target::new(url)?.connect()
}

fn version(client: &mut Client) -> Result<usize> {
    if !client.query_one("SELECT to_regclass('farol_schema') IS NOT NULL", &[])?.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client.query_opt("SELECT version FROM farol_schema", &[])?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0).unsigned_abs() as usize))
}

fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    // Processes starting together migrate one after the other.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATING])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS farol_schema (version bigint NOT NULL)")?;
    let found = tx.query_opt("SELECT version FROM farol_schema", &[])?.map(|r| r.get::<_, i64>(0));
    let version = found.unwrap_or(0).unsigned_abs() as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Schema(format!(
            "the store has schema version {version}, newer than this farol knows ({}): upgrade farol",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[version..] {
        tx.batch_execute(sql)?;
    }
    let latest = MIGRATIONS.len() as i64;
    if found.is_none() {
        tx.execute("INSERT INTO farol_schema (version) VALUES ($1)", &[&latest])?;
    } else {
        tx.execute("UPDATE farol_schema SET version = $1", &[&latest])?;
    }
    tx.commit()?;
    Ok(())
}

/// Maps a unique violation to [`StoreError::Conflict`] with `what` as its message.
pub(super) fn conflict(e: postgres::Error, what: impl FnOnce() -> String) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) { StoreError::Conflict(what()) } else { e.into() }
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn feed_id(c: &mut impl GenericClient, name: &str) -> Result<i64> {
    c.execute("INSERT INTO feeds (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", &[&name])?;
    Ok(c.query_one("SELECT id FROM feeds WHERE name = $1", &[&name])?.get(0))
}

const REPORT_COLUMNS: &str = "r.id, f.name, r.format, r.name, r.sha256, r.size, r.received_at, r.status, \
     r.records, r.events, r.duplicates, r.dropped, r.rejects, r.error, r.processed_at, r.holder";

fn report_from_row(row: &postgres::Row) -> Report {
    let micros = |i: usize| row.get::<_, Option<i64>>(i).and_then(Timestamp::from_micros);
    let count = |i: usize| row.get::<_, i64>(i).unsigned_abs();
    let sha: Option<Vec<u8>> = row.get(4);
    let status: String = row.get(7);
    Report {
        id: ReportId(row.get(0)),
        feed: row.get(1),
        format: row.get(2),
        name: row.get(3),
        sha256: sha.map(|s| s.iter().map(|b| format!("{b:02x}")).collect()).unwrap_or_default(),
        size: count(5),
        received_at: micros(6).unwrap_or_else(Timestamp::now),
        status: ReportStatus::parse(&status).unwrap_or(ReportStatus::Failed),
        counts: Counts {
            records: count(8),
            events: count(9),
            duplicates: count(10),
            dropped: count(11),
            rejects: count(12),
        },
        error: row.get(13),
        processed_at: micros(14),
        holder: row.get(15),
    }
}

fn load_report(c: &mut impl GenericClient, id: ReportId) -> Result<Report> {
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM reports r JOIN feeds f ON f.id = r.feed_id WHERE r.id = $1 AND r.status <> 'receiving'"
    );
    c.query_opt(&sql, &[&id.0])?.map(|r| report_from_row(&r)).ok_or(StoreError::NoReport(id))
}

/// Archive chunks go in over the archiving connection, in transactions of some megabytes.
struct PostgresChunks<'c> {
    client: &'c mut Client,
    report: i64,
    open: bool,
}

impl archive::Chunks for PostgresChunks<'_> {
    fn put(&mut self, seq: i64, data: &[u8]) -> Result<()> {
        if !self.open {
            self.client.batch_execute("BEGIN")?;
            self.open = true;
        }
        self.client.execute(
            "INSERT INTO report_chunks (report_id, seq, data) VALUES ($1, $2, $3)",
            &[&self.report, &seq, &data],
        )?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.open {
            let now = Timestamp::now().micros();
            self.client.execute("UPDATE reports SET heartbeat = $2 WHERE id = $1", &[&self.report, &now])?;
            self.client.batch_execute("COMMIT")?;
            self.open = false;
        }
        Ok(())
    }
}

impl Store for PostgresStore {
    fn archive(&self, new: &NewReport, input: &mut dyn Read, progress: &mut dyn FnMut(u64)) -> Result<Archived> {
        // A connection of its own: archiving a large report takes a while.
        let mut client = self.connect()?;
        let now = Timestamp::now().micros();
        client.execute(
            "DELETE FROM reports WHERE status = 'receiving' AND heartbeat < $1",
            &[&(now - STALE_RECEIVING)],
        )?;
        let feed = feed_id(&mut client, &new.feed)?;
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&REPORT_IDS])?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO reports (feed_id, format, name, received_at, status, heartbeat)
                 VALUES ($1, $2, $3, $4, 'receiving', $5) RETURNING id",
                &[&feed, &new.format, &new.name, &new.received_at.micros(), &now],
            )?
            .get(0);
        tx.commit()?;
        let result = archive::write_chunks(
            &mut PostgresChunks { client: &mut client, report: id, open: false },
            input,
            progress,
        );
        let (sha, size) = match result {
            Ok(done) => done,
            Err(e) => {
                // Best effort: a failed read leaves nothing behind (or the sweep above removes
                // it later).
                let _ = client.batch_execute("ROLLBACK");
                let _ = client.execute("DELETE FROM reports WHERE id = $1", &[&id]);
                return Err(e);
            }
        };
        // The same bytes stored for the feed before (or by another process meanwhile) are that
        // report: the unique index on (feed, sha256) says so.
        let stored = client.execute(
            "UPDATE reports SET sha256 = $2, size = $3, status = 'stored' WHERE id = $1",
            &[&id, &&sha[..], &n(size)],
        );
        if let Err(e) = stored {
            if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
                return Err(e.into());
            }
            client.execute("DELETE FROM reports WHERE id = $1", &[&id])?;
            let row =
                client.query_one("SELECT id FROM reports WHERE feed_id = $1 AND sha256 = $2", &[&feed, &&sha[..]])?;
            return Ok(Archived::Existing(load_report(&mut client, ReportId(row.get(0)))?));
        }
        Ok(Archived::New(load_report(&mut client, ReportId(id))?))
    }

    fn report(&self, id: ReportId) -> Result<Report> {
        self.with(|c| load_report(c, id))
    }

    fn reports(&self, feed: Option<&str>, limit: usize) -> Result<Vec<Report>> {
        self.with(|c| {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM reports r JOIN feeds f ON f.id = r.feed_id
                 WHERE r.status <> 'receiving' AND ($1::text IS NULL OR f.name = $1)
                 ORDER BY r.id DESC LIMIT $2"
            );
            Ok(c.query(&sql, &[&feed, &n(limit as u64)])?.iter().map(report_from_row).collect())
        })
    }

    fn unfinished_reports(&self) -> Result<Vec<Report>> {
        self.with(|c| {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM reports r JOIN feeds f ON f.id = r.feed_id
                 WHERE r.status IN ('stored', 'processing') ORDER BY r.id"
            );
            Ok(c.query(&sql, &[])?.iter().map(report_from_row).collect())
        })
    }

    fn claim_report(&self, id: Option<ReportId>, holder: &str, now: Timestamp, until: Timestamp) -> Result<Claimed> {
        self.with(|c| {
            let (now, until) = (now.micros(), until.micros());
            // Under READ COMMITTED a claimer that waited for another's update sees the new lease
            // and takes nothing; without an id, the oldest report that waits and no other
            // claimer is looking at (SKIP LOCKED: workers on many machines never queue up).
            let taken = match id {
                Some(id) => c.query_opt(
                    "UPDATE reports SET holder = $1, lease_until = $3
                     WHERE id = $4 AND status <> 'receiving' AND (lease_until IS NULL OR lease_until < $2 OR holder = $1)
                     RETURNING id",
                    &[&holder, &now, &until, &id.0],
                )?,
                None => c.query_opt(
                    "UPDATE reports SET holder = $1, lease_until = $3
                     WHERE id = (SELECT id FROM reports WHERE status IN ('stored', 'processing')
                                   AND (lease_until IS NULL OR lease_until < $2)
                                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING id",
                    &[&holder, &now, &until],
                )?,
            };
            Ok(match (taken, id) {
                (Some(taken), _) => Claimed::Taken(load_report(c, ReportId(taken.get(0)))?),
                (None, Some(id)) => Claimed::Held(load_report(c, id)?),
                (None, None) => Claimed::Nothing,
            })
        })
    }

    fn renew_claim(&self, id: ReportId, holder: &str, until: Timestamp) -> Result<bool> {
        self.with(|c| {
            let sql = "UPDATE reports SET lease_until = $3 WHERE id = $1 AND holder = $2";
            Ok(c.execute(sql, &[&id.0, &holder, &until.micros()])? == 1)
        })
    }

    fn release_claim(&self, id: ReportId, holder: &str) -> Result<()> {
        self.with(|c| {
            let sql = "UPDATE reports SET holder = NULL, lease_until = NULL WHERE id = $1 AND holder = $2";
            c.execute(sql, &[&id.0, &holder])?;
            Ok(())
        })
    }

    fn raw(&self, id: ReportId) -> Result<Box<dyn Read + Send>> {
        self.report(id)?;
        let mut client = self.connect()?;
        let mut seq = 0i64;
        let next = move || -> std::io::Result<Option<Vec<u8>>> {
            let row = client
                .query_opt("SELECT data FROM report_chunks WHERE report_id = $1 AND seq = $2", &[&id.0, &seq])
                .map_err(std::io::Error::other)?;
            seq += 1;
            Ok(row.map(|r| r.get(0)))
        };
        Ok(Box::new(ChunkReader::new(next)))
    }

    fn begin_processing(&self, id: ReportId) -> Result<()> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let range = tx
                .query_opt(
                    "SELECT first_event, last_event FROM reports WHERE id = $1 AND status <> 'receiving'",
                    &[&id.0],
                )?
                .ok_or(StoreError::NoReport(id))?;
            let (first, last): (Option<i64>, Option<i64>) = (range.get(0), range.get(1));
            if let (Some(first), Some(last)) = (first, last) {
                tx.execute(
                    "DELETE FROM events WHERE id BETWEEN $1 AND $2 AND report_id = $3",
                    &[&first, &last, &id.0],
                )?;
            }
            tx.execute("DELETE FROM event_parts WHERE report_id = $1", &[&id.0])?;
            tx.execute("DELETE FROM rejects WHERE report_id = $1", &[&id.0])?;
            tx.execute("DELETE FROM host_days WHERE report_id = $1", &[&id.0])?;
            sharing::forget_report(&mut tx, id)?;
            tx.execute(
                "UPDATE reports SET status = 'processing', records = 0, events = 0, duplicates = 0, dropped = 0,
                 rejects = 0, error = NULL, processed_at = NULL, first_event = NULL, last_event = NULL WHERE id = $1",
                &[&id.0],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn event_writer(
        &self,
        report: ReportId,
        common: &Event,
        distribution: Distribution,
    ) -> Result<Box<dyn EventWriter>> {
        let mut client = self.connect()?;
        let mut blob = Vec::new();
        common.encode(&mut blob);
        let row = client
            .query_opt(
                "UPDATE reports SET common = $2, distribution = $3 WHERE id = $1 RETURNING feed_id, holder",
                &[&report.0, &blob, &i64::from(distribution.code())],
            )?
            .ok_or(StoreError::NoReport(report))?;
        Ok(Box::new(events::Writer::new(client, report, row.get(0), row.get(1))?))
    }

    fn finish_processing(&self, id: ReportId, outcome: &Outcome) -> Result<Report> {
        self.with(|c| {
            let now = Timestamp::now().micros();
            let status = if outcome.error.is_some() { ReportStatus::Failed } else { ReportStatus::Done };
            let k = &outcome.counts;
            let mut tx = c.transaction()?;
            let finished = tx.execute(
                "UPDATE reports SET status = $2, records = $3, events = $4, duplicates = $5, dropped = $6,
                 rejects = $7, error = $8, processed_at = $9 WHERE id = $1 AND ($10::text IS NULL OR holder = $10)",
                &[
                    &id.0,
                    &status.as_str(),
                    &n(k.records),
                    &n(k.events),
                    &n(k.duplicates),
                    &n(k.dropped),
                    &n(k.rejects),
                    &outcome.error,
                    &now,
                    &outcome.holder,
                ],
            )?;
            if finished == 0 {
                load_report(&mut tx, id)?;
                return Err(StoreError::taken_over(id));
            }
            match &outcome.error {
                None => tx.execute(
                    "UPDATE feeds SET last_success_at = $2 WHERE id = (SELECT feed_id FROM reports WHERE id = $1)",
                    &[&id.0, &now],
                )?,
                Some(e) => tx.execute(
                    "UPDATE feeds SET last_error_at = $2, last_error = $3 WHERE id = (SELECT feed_id FROM reports WHERE id = $1)",
                    &[&id.0, &now, e],
                )?,
            };
            incidents::relink(&mut tx, id.0)?;
            tx.commit()?;
            load_report(c, id)
        })
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        self.with(|c| events::query(c, query, &self.bases))
    }

    fn event(&self, id: i64, visible: &Visibility) -> Result<Option<StoredEvent>> {
        self.with(|c| events::by_id(c, id, visible, &self.bases))
    }

    fn tally(&self, query: &EventQuery) -> Result<Tally> {
        let unpaged = EventQuery { after: None, ..query.clone() };
        self.with(|c| events::tally(c, &unpaged))
    }

    fn rejects(&self, report: ReportId, limit: usize) -> Result<Vec<Reject>> {
        self.with(|c| {
            let rows = c.query(
                "SELECT line, \"offset\", len, reason, raw FROM rejects WHERE report_id = $1 ORDER BY id LIMIT $2",
                &[&report.0, &n(limit as u64)],
            )?;
            Ok(rows
                .iter()
                .map(|r| Reject {
                    position: farol_model::Position {
                        line: r.get::<_, Option<i64>>(0).map(i64::unsigned_abs),
                        offset: r.get::<_, i64>(1).unsigned_abs(),
                        len: r.get::<_, i64>(2).unsigned_abs(),
                    },
                    reason: r.get(3),
                    raw: r.get(4),
                })
                .collect())
        })
    }

    fn feed_health(&self, now: Timestamp) -> Result<Vec<FeedHealth>> {
        self.with(|c| {
            let since = now.micros() - 86_400_000_000;
            let rows = c.query(
                "SELECT f.name, f.last_success_at, f.last_error_at, f.last_error,
                        (SELECT max(received_at) FROM reports WHERE feed_id = f.id AND status <> 'receiving'),
                        count(r.id), coalesce(sum(r.events), 0)::bigint, coalesce(sum(r.rejects), 0)::bigint
                 FROM feeds f LEFT JOIN reports r
                   ON r.feed_id = f.id AND r.received_at >= $1 AND r.status <> 'receiving'
                 GROUP BY f.id ORDER BY f.name",
                &[&since],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    let t = |i: usize| r.get::<_, Option<i64>>(i).and_then(Timestamp::from_micros);
                    FeedHealth {
                        feed: r.get(0),
                        last_success: t(1),
                        last_error: t(2).zip(r.get::<_, Option<String>>(3)),
                        last_report: t(4),
                        reports_24h: r.get::<_, i64>(5).unsigned_abs(),
                        events_24h: r.get::<_, i64>(6).unsigned_abs(),
                        rejects_24h: r.get::<_, i64>(7).unsigned_abs(),
                    }
                })
                .collect())
        })
    }

    fn collector_state(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| Ok(c.query_opt("SELECT value FROM states WHERE key = $1", &[&key])?.map(|r| r.get(0))))
    }

    fn set_collector_state(&self, key: &str, state: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO states (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &state],
            )?;
            Ok(())
        })
    }

    fn record_feed_result(&self, feed: &str, error: Option<&str>) -> Result<()> {
        self.with(|c| {
            feed_id(c, feed)?;
            let now = Timestamp::now().micros();
            match error {
                None => c.execute("UPDATE feeds SET last_success_at = $2 WHERE name = $1", &[&feed, &now])?,
                Some(e) => c.execute(
                    "UPDATE feeds SET last_error_at = $2, last_error = $3 WHERE name = $1",
                    &[&feed, &now, &e],
                )?,
            };
            Ok(())
        })
    }

    fn totals(&self) -> Result<Totals> {
        self.with(|c| {
            let r = c.query_one(
                "SELECT count(*), coalesce(sum(events), 0)::bigint, coalesce(sum(rejects), 0)::bigint
                 FROM reports WHERE status <> 'receiving'",
                &[],
            )?;
            Ok(Totals {
                reports: r.get::<_, i64>(0).unsigned_abs(),
                events: r.get::<_, i64>(1).unsigned_abs(),
                rejects: r.get::<_, i64>(2).unsigned_abs(),
            })
        })
    }

    fn add_org(&self, org: &Org) -> Result<OrgId> {
        self.with(|c| orgs::add_org(c, org))
    }

    fn update_org(&self, org: &Org) -> Result<()> {
        self.with(|c| orgs::update_org(c, org))
    }

    fn remove_org(&self, id: OrgId) -> Result<bool> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let removed = tx.execute("DELETE FROM orgs WHERE id = $1", &[&id.0])? > 0;
            // Its events stay; the list of organizations, which is also the index by
            // organization here, loses it (`farol reroute` recomputes their scope).
            tx.execute(
                "UPDATE events SET orgs = nullif(array_remove(orgs, $1::bigint), '{}') WHERE orgs @> ARRAY[$1::bigint]",
                &[&id.0],
            )?;
            // Its rows of the statistics count in the whole as before, under no organization.
            tx.execute("UPDATE host_days SET org = NULL WHERE org = $1", &[&id.0])?;
            tx.commit()?;
            Ok(removed)
        })
    }

    fn orgs(&self) -> Result<Vec<Org>> {
        self.with(orgs::orgs)
    }

    fn add_dataset(&self, new: &NewDataset<'_>) -> Result<DatasetRecord> {
        self.with(|c| orgs::add_dataset(c, new))
    }

    fn datasets(&self, all: bool) -> Result<Vec<DatasetRecord>> {
        self.with(|c| orgs::datasets(c, all))
    }

    fn dataset_data(&self, id: i64) -> Result<Vec<u8>> {
        self.with(|c| orgs::dataset_data(c, id))
    }

    fn remove_dataset(&self, name: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("UPDATE ipdata SET active = false WHERE name = $1 AND active", &[&name])? > 0))
    }

    fn events_after(&self, after: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.with(|c| events::after(c, after, limit, &self.bases))
    }

    fn set_routing(&self, events: &[Rerouted]) -> Result<()> {
        self.with(|c| events::set_routing(c, events))
    }

    fn finished_through(&self) -> Result<i64> {
        self.with(|c| {
            let stale_before = Timestamp::now().micros() - STALE_RECEIVING;
            // Ids are handed out before their rows commit: a report whose row is not visible yet
            // must not be passed over. Every new report row commits under the shared lock.
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&REPORT_IDS])?;
            // A report still arriving or being processed holds back the ones after it.
            let row = tx.query_one(
                "SELECT coalesce(
                     (SELECT min(id) - 1 FROM reports
                      WHERE status IN ('stored', 'processing') OR (status = 'receiving' AND heartbeat >= $1)),
                     (SELECT max(id) FROM reports), 0)",
                &[&stale_before],
            )?;
            tx.commit()?;
            Ok(row.get(0))
        })
    }

    fn report_before(&self, time: Timestamp) -> Result<i64> {
        self.with(|c| {
            let sql = "SELECT coalesce((SELECT max(id) FROM reports WHERE received_at < $1), 0)";
            Ok(c.query_one(sql, &[&time.micros()])?.get(0))
        })
    }

    fn new_events(
        &self,
        org: OrgId,
        visible: &Visibility,
        reports: (i64, i64),
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        self.with(|c| events::new_events(c, org, visible, reports, after, limit, &self.bases))
    }

    fn add_user(&self, user: &User) -> Result<User> {
        self.with(|c| accounts::add_user(c, user))
    }

    fn update_user(&self, user: &User) -> Result<()> {
        self.with(|c| accounts::update_user(c, user))
    }

    fn user(&self, id: i64) -> Result<Option<User>> {
        self.with(|c| accounts::user(c, id))
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.with(|c| accounts::user_by_email(c, email))
    }

    fn users(&self, org: Option<OrgId>) -> Result<Vec<User>> {
        self.with(|c| accounts::users(c, org))
    }

    fn add_session(&self, hash: &[u8], user: i64, csrf: &str, now: Timestamp) -> Result<()> {
        self.with(|c| accounts::add_session(c, hash, user, csrf, now))
    }

    fn session(&self, hash: &[u8]) -> Result<Option<Session>> {
        self.with(|c| accounts::session(c, hash))
    }

    fn touch_session(&self, hash: &[u8], now: Timestamp) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE sessions SET seen_at = $2 WHERE hash = $1", &[&hash, &now.micros()])?;
            Ok(())
        })
    }

    fn remove_session(&self, hash: &[u8]) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM sessions WHERE hash = $1", &[&hash])?;
            Ok(())
        })
    }

    fn add_token(&self, hash: &[u8], token: &Token) -> Result<Token> {
        self.with(|c| accounts::add_token(c, hash, token))
    }

    fn token(&self, hash: &[u8], now: Timestamp) -> Result<Option<(Token, User)>> {
        self.with(|c| accounts::token(c, hash, now))
    }

    fn tokens(&self, user: i64) -> Result<Vec<Token>> {
        self.with(|c| accounts::tokens(c, user))
    }

    fn revoke_token(&self, id: i64, user: i64, now: Timestamp) -> Result<bool> {
        self.with(|c| {
            let sql = "UPDATE tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL";
            Ok(c.execute(sql, &[&id, &user, &now.micros()])? > 0)
        })
    }

    fn audit(&self, entry: &AuditEntry) -> Result<()> {
        self.with(|c| accounts::audit(c, entry))
    }

    fn audit_log(&self, org: Option<OrgId>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.with(|c| accounts::audit_log(c, org, limit))
    }

    fn add_incident(&self, incident: &Incident, entry: &Entry, files: &[NewFile]) -> Result<Incident> {
        self.with(|c| incidents::add_incident(c, incident, entry, files))
    }

    fn incident(&self, id: i64) -> Result<Option<Incident>> {
        self.with(|c| incidents::incident(c, id))
    }

    fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>> {
        self.with(|c| incidents::incidents(c, filter))
    }

    fn update_incident(&self, incident: &Incident, entry: &Entry) -> Result<()> {
        self.with(|c| incidents::update_incident(c, incident, entry))
    }

    fn add_entry(&self, incident: i64, entry: &Entry, files: &[NewFile]) -> Result<()> {
        self.with(|c| incidents::add_entry(c, incident, entry, files))
    }

    fn timeline(&self, incident: i64) -> Result<Vec<Entry>> {
        self.with(|c| incidents::timeline(c, incident))
    }

    fn file(&self, id: i64) -> Result<Option<StoredFile>> {
        self.with(|c| incidents::file(c, id))
    }

    fn receive_mail(&self, message_id: &str, mail: &Mail) -> Result<Option<i64>> {
        self.with(|c| incidents::receive_mail(c, message_id, mail))
    }

    fn save_search(&self, search: &Search) -> Result<()> {
        self.with(|c| incidents::save_search(c, search))
    }

    fn searches(&self) -> Result<Vec<Search>> {
        self.with(incidents::searches)
    }

    fn remove_search(&self, name: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM searches WHERE name = $1", &[&name])? > 0))
    }

    fn notify_marks(&self) -> Result<Vec<Mark>> {
        self.with(notify::marks)
    }

    fn set_mark(&self, mark: &Mark) -> Result<()> {
        self.with(|c| notify::set_mark(c, mark))
    }

    fn queue_message(
        &self,
        record: Record<'_>,
        make: &mut dyn FnMut(i64) -> Option<NewMessage>,
    ) -> Result<Option<i64>> {
        self.with(|c| notify::queue_message(c, record, make))
    }

    fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.with(|c| notify::outbox_due(c, now, limit))
    }

    fn outbox(&self, org: Option<OrgId>, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.with(|c| notify::outbox(c, org, limit))
    }

    fn record_delivery(&self, id: i64, delivery: &Delivery) -> Result<()> {
        self.with(|c| notify::record_delivery(c, id, delivery))
    }

    fn add_inhibition(&self, rule: &Inhibition) -> Result<Inhibition> {
        self.with(|c| notify::add_inhibition(c, rule))
    }

    fn inhibitions(&self) -> Result<Vec<Inhibition>> {
        self.with(notify::inhibitions)
    }

    fn remove_inhibition(&self, id: i64) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM inhibitions WHERE id = $1", &[&id])? > 0))
    }

    fn hosts(&self, query: &HostQuery) -> Result<HostCount> {
        self.with(|c| Ok(stats::count(c, query, None)?.pop().unwrap_or_default()))
    }

    fn host_breakdown(&self, query: &HostQuery, by: Breakdown) -> Result<Vec<HostCount>> {
        self.with(|c| stats::count(c, query, Some(by)))
    }

    fn add_population(&self, rows: &[Population]) -> Result<usize> {
        self.with(|c| stats::add_population(c, rows))
    }

    fn population(&self) -> Result<Vec<Population>> {
        self.with(stats::population)
    }

    fn add_community(&self, community: &Community) -> Result<Community> {
        self.with(|c| sharing::add_community(c, community))
    }

    fn update_community(&self, community: &Community) -> Result<()> {
        self.with(|c| sharing::update_community(c, community))
    }

    fn remove_community(&self, id: i64) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM communities WHERE id = $1", &[&id])? > 0))
    }

    fn communities(&self) -> Result<Vec<Community>> {
        self.with(sharing::communities)
    }

    fn indicator_mark(&self) -> Result<i64> {
        self.with(|c| Ok(c.query_one("SELECT report_id FROM indicator_mark", &[])?.get(0)))
    }

    fn report_events(
        &self,
        report: ReportId,
        types: &[ClassificationType],
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        self.with(|c| events::of_report(c, report, types, after, limit, &self.bases))
    }

    fn add_sightings(&self, report: ReportId, sightings: &[Sighting], now: Timestamp) -> Result<()> {
        self.with(|c| sharing::add_sightings(c, report, sightings, now))
    }

    fn put_indicator(&self, indicator: &Indicator, now: Timestamp) -> Result<Indicator> {
        self.with(|c| sharing::put_indicator(c, indicator, now))
    }

    fn indicators(&self, query: &IndicatorQuery) -> Result<Vec<Indicator>> {
        self.with(|c| sharing::read(c, query))
    }

    fn remove_indicator(&self, id: i64) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM indicators WHERE id = $1", &[&id])? > 0))
    }

    fn lock(&self, name: &str, wait: bool) -> Result<Option<StoreLock>> {
        // A session lock on a connection of its own, held while the connection lives.
        let mut client = self.connect()?;
        let taken = if wait {
            client.execute("SELECT pg_advisory_lock($1, hashtext($2))", &[&NAMED, &name])?;
            true
        } else {
            client.query_one("SELECT pg_try_advisory_lock($1, hashtext($2))", &[&NAMED, &name])?.get(0)
        };
        Ok(taken.then(|| StoreLock(Box::new(Holding(Some(client))))))
    }
}
