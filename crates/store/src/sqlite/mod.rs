//! The embedded backend: one SQLite database in WAL mode.

mod accounts;
mod checkpoint;
mod constituency;
mod events;
mod incidents;
mod notify;
mod sharing;
mod stats;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use farol_model::incident::{Entry, Incident, NewFile};
use farol_model::indicator::{Community, Indicator};
use farol_model::org::{Distribution, Org, OrgId};
use farol_model::{ClassificationType, Counts, Event, Reject, Report, ReportId, ReportStatus, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::archive::{self, ChunkReader};
use crate::{
    Archived, AuditEntry, Breakdown, Claimed, DatasetRecord, Delivery, EventQuery, EventWriter, FeedHealth, HostCount,
    HostQuery, IncidentFilter, IndicatorQuery, Inhibition, Mail, Mark, NewDataset, NewMessage, NewReport,
    OutboxMessage, Outcome, Population, Record, Rerouted, Result, Search, Session, Sighting, Store, StoreError,
    StoreLock, StoredEvent, StoredFile, Tally, Token, Totals, User, Visibility,
};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("migration2.sql"),
    include_str!("migration3.sql"),
    include_str!("migration4.sql"),
    include_str!("migration5.sql"),
    include_str!("migration6.sql"),
    include_str!("migration7.sql"),
    include_str!("migration8.sql"),
    include_str!("migration9.sql"),
    include_str!("migration10.sql"),
    include_str!("migration11.sql"),
    include_str!("migration12.sql"),
    include_str!("migration13.sql"),
    include_str!("migration14.sql"),
    include_str!("migration15.sql"),
];

/// The migration that last shaped the statistics rollup anew (9 added it), which [`migrate`]
/// fills from the events: a store migrated from before 9 has it counted once, at 14.
const STATS_MIGRATION: usize = 14;

/// Pages of 16 KiB halve the B-tree work of bulk inserts compared with the default 4 KiB.
const PAGE_SIZE: u32 = 16_384;

/// A report still "receiving" without a heartbeat for this long was abandoned by a crashed
/// process; its partial chunks are removed.
const STALE_RECEIVING: i64 = 10 * 60 * 1_000_000;

/// The embedded store.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    /// Short reads and writes share this connection; long ones (archiving, event batches,
    /// streaming raw bytes) open their own.
    conn: Mutex<Connection>,
    /// Decoded `reports.common` blobs, by their bytes.
    bases: events::Bases,
}

impl SqliteStore {
    /// Opens the database at `path`, creating it and applying migrations as needed.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = connect(path)?;
        migrate(&conn)?;
        Ok(SqliteStore { path: path.to_owned(), conn: Mutex::new(conn), bases: events::Bases::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the store at `path` (0 when there is none yet), and the version
    /// this farol migrates stores to.
    pub fn schema_version(path: &Path) -> Result<(usize, usize)> {
        let found = if path.exists() {
            let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))?
        } else {
            0
        };
        Ok((found, MIGRATIONS.len()))
    }

    /// Writes a consistent copy of the whole store to `to` (a new file) while others go on
    /// reading and writing, then checks the copy's integrity. The copy is an ordinary store:
    /// restoring is putting it in the place of the store while no farol runs.
    pub fn backup(&self, to: &Path) -> Result<()> {
        if to.exists() {
            return Err(StoreError::Conflict(format!("{} exists: give a new file", to.display())));
        }
        let target = to.to_str().ok_or_else(|| StoreError::Conflict(format!("{}: not UTF-8", to.display())))?;
        // One read transaction: the copy is the store as of its start, compacted.
        connect(&self.path)?.execute("VACUUM INTO ?1", [target])?;
        let copy = Connection::open(to)?;
        let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Schema(format!(
                "the copy at {} failed its integrity check: {check}",
                to.display()
            )));
        }
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn)
    }

    /// SQLite's plan for `sql`, a detail per step: for tests that pin a plan.
    #[cfg(test)]
    fn query_plan(&self, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let steps = stmt.query_map(params, |r| r.get::<_, String>(3))?;
            Ok(steps.collect::<rusqlite::Result<_>>()?)
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

fn connect(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(60))?;
    // Every transaction here writes. Begun deferred, one that reads first could not become a
    // writer once another process has written meanwhile (SQLITE_BUSY, at once, whatever the
    // timeout); begun immediate, it waits its turn.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    // page_size only takes effect before the first table is created.
    conn.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE};
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -32768;
         PRAGMA temp_store = MEMORY;"
    ))?;
    Ok(conn)
}

/// Runs of consecutive ids under one key, `(key, first, last)`, from `(key, id)` pairs sorted
/// by key and id: what `org_runs` and `host_day_runs` hold instead of a row per id.
fn runs<K: PartialEq>(ids: impl IntoIterator<Item = (K, i64)>) -> Vec<(K, i64, i64)> {
    let mut runs: Vec<(K, i64, i64)> = Vec::new();
    for (key, id) in ids {
        match runs.last_mut() {
            Some((k, _, last)) if *k == key && *last + 1 == id => *last = id,
            _ => runs.push((key, id, id)),
        }
    }
    runs
}

/// `INSERT OR {conflict} INTO {into} VALUES (?, …), …`, one statement for `rows` rows: it saves
/// most of SQLite's work per statement. `into` is the table and its columns, `table (a, b)`.
/// Never a plain `INSERT` (`OR ABORT`): SQLite would first copy every page such a statement
/// changes into a statement journal, to undo the statement alone should a row break a
/// constraint (over a quarter of the rollups' writing at 5 million rows). `OR FAIL` stops at
/// such a row instead, and an error rolls the writer's whole transaction back anyway.
fn insert_many(conflict: &str, into: &str, rows: usize) -> String {
    let one = format!("({})", vec!["?"; into.matches(',').count() + 1].join(", "));
    format!("INSERT OR {conflict} INTO {into} VALUES {}", vec![one; rows].join(", "))
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Schema(format!(
            "the store has schema version {version}, newer than this farol knows ({}): upgrade farol",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == STATS_MIGRATION {
            stats::count_all(&tx)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

fn feed_id(conn: &Connection, name: &str) -> Result<i64> {
    conn.execute("INSERT OR IGNORE INTO feeds (name) VALUES (?1)", [name])?;
    Ok(conn.query_row("SELECT id FROM feeds WHERE name = ?1", [name], |r| r.get(0))?)
}

const REPORT_COLUMNS: &str = "r.id, f.name, r.format, r.name, r.sha256, r.size, r.received_at, r.status, \
     r.records, r.events, r.duplicates, r.dropped, r.rejects, r.error, r.processed_at, r.holder";

fn report_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Report> {
    let micros = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row.get::<_, Option<i64>>(i)?.and_then(Timestamp::from_micros))
    };
    let sha: Option<Vec<u8>> = row.get(4)?;
    let status: String = row.get(7)?;
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.unsigned_abs()) };
    Ok(Report {
        id: ReportId(row.get(0)?),
        feed: row.get(1)?,
        format: row.get(2)?,
        name: row.get(3)?,
        sha256: sha.map(|s| s.iter().map(|b| format!("{b:02x}")).collect()).unwrap_or_default(),
        size: count(5)?,
        received_at: micros(6)?.unwrap_or_else(Timestamp::now),
        // "receiving" reports are never returned; anything unknown reads as failed.
        status: ReportStatus::parse(&status).unwrap_or(ReportStatus::Failed),
        counts: Counts {
            records: count(8)?,
            events: count(9)?,
            duplicates: count(10)?,
            dropped: count(11)?,
            rejects: count(12)?,
        },
        error: row.get(13)?,
        processed_at: micros(14)?,
        holder: row.get(15)?,
    })
}

fn load_report(conn: &Connection, id: ReportId) -> Result<Report> {
    conn.query_row(
        &format!("SELECT {REPORT_COLUMNS} FROM reports r JOIN feeds f ON f.id = r.feed_id WHERE r.id = ?1 AND r.status <> 'receiving'"),
        [id.0],
        report_from_row,
    )
    .optional()?
    .ok_or(StoreError::NoReport(id))
}

/// Removes reports whose archiving process died before finishing.
fn remove_abandoned(conn: &Connection, now: Timestamp) -> Result<()> {
    conn.execute(
        "DELETE FROM reports WHERE status = 'receiving' AND heartbeat < ?1",
        [now.micros() - STALE_RECEIVING],
    )?;
    Ok(())
}

impl Store for SqliteStore {
    fn archive(&self, new: &NewReport, input: &mut dyn Read, progress: &mut dyn FnMut(u64)) -> Result<Archived> {
        let conn = connect(&self.path)?;
        remove_abandoned(&conn, Timestamp::now())?;
        let feed = feed_id(&conn, &new.feed)?;
        conn.execute(
            "INSERT INTO reports (feed_id, format, name, received_at, status, heartbeat)
             VALUES (?1, ?2, ?3, ?4, 'receiving', ?5)",
            params![feed, new.format, new.name, new.received_at.micros(), Timestamp::now().micros()],
        )?;
        let id = conn.last_insert_rowid();
        let result = archive::write_chunks(&mut SqliteChunks { conn: &conn, report: id, tx: None }, input, progress);
        let (sha, size) = match result {
            Ok(done) => done,
            Err(e) => {
                // Best effort: a failed read leaves nothing behind (or the abandoned-report sweep
                // removes it later).
                let _ = conn.execute("DELETE FROM reports WHERE id = ?1", [id]);
                return Err(e);
            }
        };
        let tx = conn.unchecked_transaction()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM reports WHERE feed_id = ?1 AND sha256 = ?2 AND status <> 'receiving'",
                params![feed, &sha[..]],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = existing {
            tx.execute("DELETE FROM reports WHERE id = ?1", [id])?;
            tx.commit()?;
            return Ok(Archived::Existing(load_report(&conn, ReportId(existing))?));
        }
        tx.execute(
            "UPDATE reports SET sha256 = ?2, size = ?3, status = 'stored' WHERE id = ?1",
            params![id, &sha[..], i64::try_from(size).unwrap_or(i64::MAX)],
        )?;
        tx.commit()?;
        Ok(Archived::New(load_report(&conn, ReportId(id))?))
    }

    fn report(&self, id: ReportId) -> Result<Report> {
        self.with(|c| load_report(c, id))
    }

    fn reports(&self, feed: Option<&str>, limit: usize) -> Result<Vec<Report>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {REPORT_COLUMNS} FROM reports r JOIN feeds f ON f.id = r.feed_id
                 WHERE r.status <> 'receiving' AND (?1 IS NULL OR f.name = ?1)
                 ORDER BY r.id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![feed, limit as i64], report_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn unfinished_reports(&self) -> Result<Vec<Report>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {REPORT_COLUMNS} FROM reports r JOIN feeds f ON f.id = r.feed_id
                 WHERE r.status IN ('stored', 'processing') ORDER BY r.id"
            ))?;
            let rows = stmt.query_map([], report_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn claim_report(&self, id: Option<ReportId>, holder: &str, now: Timestamp, until: Timestamp) -> Result<Claimed> {
        self.with(|c| {
            // One statement: SQLite runs it under the write lock, so two claimers never both win.
            // Without an id, the oldest report that waits.
            let taken: Option<i64> = c
                .query_row(
                    "UPDATE reports SET holder = ?1, lease_until = ?3
                     WHERE id = coalesce(?4, (SELECT id FROM reports WHERE status IN ('stored', 'processing')
                                                AND (lease_until IS NULL OR lease_until < ?2) ORDER BY id LIMIT 1))
                       AND status <> 'receiving' AND (lease_until IS NULL OR lease_until < ?2 OR holder = ?1)
                     RETURNING id",
                    params![holder, now.micros(), until.micros(), id.map(|i| i.0)],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(match (taken, id) {
                (Some(taken), _) => Claimed::Taken(load_report(c, ReportId(taken))?),
                (None, Some(id)) => Claimed::Held(load_report(c, id)?),
                (None, None) => Claimed::Nothing,
            })
        })
    }

    fn renew_claim(&self, id: ReportId, holder: &str, until: Timestamp) -> Result<bool> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE reports SET lease_until = ?3 WHERE id = ?1 AND holder = ?2",
                params![id.0, holder, until.micros()],
            )?;
            Ok(n == 1)
        })
    }

    fn release_claim(&self, id: ReportId, holder: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE reports SET holder = NULL, lease_until = NULL WHERE id = ?1 AND holder = ?2",
                params![id.0, holder],
            )?;
            Ok(())
        })
    }

    fn raw(&self, id: ReportId) -> Result<Box<dyn Read + Send>> {
        self.report(id)?;
        let conn = connect(&self.path)?;
        // Chunks are read once, in order: a cache would only hold what is never read again.
        conn.execute_batch("PRAGMA cache_size = -1024")?;
        let mut seq = 0i64;
        let next = move || -> std::io::Result<Option<Vec<u8>>> {
            let data = conn
                .query_row("SELECT data FROM report_chunks WHERE report_id = ?1 AND seq = ?2", [id.0, seq], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(std::io::Error::other)?;
            seq += 1;
            Ok(data)
        };
        Ok(Box::new(ChunkReader::new(next)))
    }

    fn begin_processing(&self, id: ReportId) -> Result<()> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let range: Option<(Option<i64>, Option<i64>)> = tx
                .query_row(
                    "SELECT first_event, last_event FROM reports WHERE id = ?1 AND status <> 'receiving'",
                    [id.0],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (first, last) = range.ok_or(StoreError::NoReport(id))?;
            if let (Some(first), Some(last)) = (first, last) {
                // The index by organization first: it is keyed by organization, not by event.
                let routed: Vec<(i64, i64, Vec<u8>)> = tx
                    .prepare(
                        "SELECT id, hour, orgs FROM events WHERE id BETWEEN ?1 AND ?2 AND report_id = ?3 AND orgs IS NOT NULL
                         ORDER BY id",
                    )?
                    .query_map([first, last, id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                events::unindex_report(&tx, &routed)?;
                tx.execute("DELETE FROM events WHERE id BETWEEN ?1 AND ?2 AND report_id = ?3", [first, last, id.0])?;
            }
            stats::forget_report(&tx, id.0)?;
            sharing::forget_report(&tx, id)?;
            tx.execute("DELETE FROM event_parts WHERE report_id = ?1", [id.0])?;
            tx.execute("DELETE FROM rejects WHERE report_id = ?1", [id.0])?;
            tx.execute(
                "UPDATE reports SET status = 'processing', records = 0, events = 0, duplicates = 0, dropped = 0,
                 rejects = 0, error = NULL, processed_at = NULL, first_event = NULL, last_event = NULL WHERE id = ?1",
                [id.0],
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
        let conn = connect(&self.path)?;
        // Batches are written sorted by hour, so the pages an insert touches are few and hot:
        // 8 MB of cache writes as fast as 32 MB, with a peak RSS 30 to 40 MB lower (BENCHMARKS.md).
        // Its commits' pages are copied into the database on a thread of their own.
        conn.execute_batch("PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 0")?;
        let checkpoints = checkpoint::Checkpointer::start(&self.path, checkpoint::RESTART_PAGES)?;
        let mut blob = Vec::new();
        common.encode(&mut blob);
        conn.execute(
            "UPDATE reports SET common = ?2, distribution = ?3 WHERE id = ?1",
            params![report.0, blob, distribution.code()],
        )?;
        let (feed, holder) = conn
            .query_row("SELECT feed_id, holder FROM reports WHERE id = ?1", [report.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or(StoreError::NoReport(report))?;
        Ok(Box::new(events::Writer::new(conn, checkpoints, report, feed, holder)))
    }

    fn finish_processing(&self, id: ReportId, outcome: &Outcome) -> Result<Report> {
        self.with(|c| {
            let now = Timestamp::now().micros();
            let status = if outcome.error.is_some() { ReportStatus::Failed } else { ReportStatus::Done };
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            let k = &outcome.counts;
            let tx = c.unchecked_transaction()?;
            let finished = tx.execute(
                "UPDATE reports SET status = ?2, records = ?3, events = ?4, duplicates = ?5, dropped = ?6,
                 rejects = ?7, error = ?8, processed_at = ?9 WHERE id = ?1 AND (?10 IS NULL OR holder = ?10)",
                params![id.0, status.as_str(), n(k.records), n(k.events), n(k.duplicates), n(k.dropped), n(k.rejects), outcome.error, now, outcome.holder],
            )?;
            if finished == 0 {
                load_report(&tx, id)?;
                return Err(StoreError::taken_over(id));
            }
            match &outcome.error {
                None => tx.execute(
                    "UPDATE feeds SET last_success_at = ?2 WHERE id = (SELECT feed_id FROM reports WHERE id = ?1)",
                    params![id.0, now],
                )?,
                Some(e) => tx.execute(
                    "UPDATE feeds SET last_error_at = ?2, last_error = ?3 WHERE id = (SELECT feed_id FROM reports WHERE id = ?1)",
                    params![id.0, now, e],
                )?,
            };
            incidents::relink(&tx, id.0)?;
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
        // Counting reads every event of the window, a second or more on a large store: on a
        // connection of its own, so that page views do not wait behind it.
        events::tally(&connect(&self.path)?, &unpaged)
    }

    fn rejects(&self, report: ReportId, limit: usize) -> Result<Vec<Reject>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT line, offset, len, reason, raw FROM rejects WHERE report_id = ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![report.0, limit as i64], |r| {
                Ok(Reject {
                    position: farol_model::Position {
                        line: r.get::<_, Option<i64>>(0)?.map(i64::unsigned_abs),
                        offset: r.get::<_, i64>(1)?.unsigned_abs(),
                        len: r.get::<_, i64>(2)?.unsigned_abs(),
                    },
                    reason: r.get(3)?,
                    raw: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn feed_health(&self, now: Timestamp) -> Result<Vec<FeedHealth>> {
        self.with(|c| {
            let since = now.micros() - 86_400_000_000;
            let mut stmt = c.prepare(
                "SELECT f.name, f.last_success_at, f.last_error_at, f.last_error,
                        (SELECT max(received_at) FROM reports WHERE feed_id = f.id AND status <> 'receiving'),
                        count(r.id), coalesce(sum(r.events), 0), coalesce(sum(r.rejects), 0)
                 FROM feeds f LEFT JOIN reports r
                   ON r.feed_id = f.id AND r.received_at >= ?1 AND r.status <> 'receiving'
                 GROUP BY f.id ORDER BY f.name",
            )?;
            let rows = stmt.query_map([since], |r| {
                let t = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
                    Ok(r.get::<_, Option<i64>>(i)?.and_then(Timestamp::from_micros))
                };
                let error: Option<String> = r.get(3)?;
                Ok(FeedHealth {
                    feed: r.get(0)?,
                    last_success: t(1)?,
                    last_error: t(2)?.zip(error),
                    last_report: t(4)?,
                    reports_24h: r.get::<_, i64>(5)?.unsigned_abs(),
                    events_24h: r.get::<_, i64>(6)?.unsigned_abs(),
                    rejects_24h: r.get::<_, i64>(7)?.unsigned_abs(),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn collector_state(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| Ok(c.query_row("SELECT value FROM states WHERE key = ?1", [key], |r| r.get(0)).optional()?))
    }

    fn set_collector_state(&self, key: &str, state: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO states (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, state],
            )?;
            Ok(())
        })
    }

    fn record_feed_result(&self, feed: &str, error: Option<&str>) -> Result<()> {
        self.with(|c| {
            feed_id(c, feed)?;
            let now = Timestamp::now().micros();
            match error {
                None => c.execute("UPDATE feeds SET last_success_at = ?2 WHERE name = ?1", params![feed, now])?,
                Some(e) => c.execute(
                    "UPDATE feeds SET last_error_at = ?2, last_error = ?3 WHERE name = ?1",
                    params![feed, now, e],
                )?,
            };
            Ok(())
        })
    }

    fn add_org(&self, org: &Org) -> Result<OrgId> {
        self.with(|c| constituency::add_org(c, org))
    }

    fn update_org(&self, org: &Org) -> Result<()> {
        self.with(|c| constituency::update_org(c, org))
    }

    fn remove_org(&self, id: OrgId) -> Result<bool> {
        self.with(|c| constituency::remove_org(c, id))
    }

    fn orgs(&self) -> Result<Vec<Org>> {
        self.with(constituency::orgs)
    }

    fn add_dataset(&self, new: &NewDataset<'_>) -> Result<DatasetRecord> {
        self.with(|c| constituency::add_dataset(c, new))
    }

    fn datasets(&self, all: bool) -> Result<Vec<DatasetRecord>> {
        self.with(|c| constituency::datasets(c, all))
    }

    fn dataset_data(&self, id: i64) -> Result<Vec<u8>> {
        self.with(|c| constituency::dataset_data(c, id))
    }

    fn remove_dataset(&self, name: &str) -> Result<bool> {
        self.with(|c| constituency::remove_dataset(c, name))
    }

    fn events_after(&self, after: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.with(|c| constituency::events_after(c, after, limit, &self.bases))
    }

    fn set_routing(&self, events: &[Rerouted]) -> Result<()> {
        self.with(|c| constituency::set_routing(c, events))
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
        self.with(|c| accounts::touch_session(c, hash, now))
    }

    fn remove_session(&self, hash: &[u8]) -> Result<()> {
        self.with(|c| accounts::remove_session(c, hash))
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
        self.with(|c| accounts::revoke_token(c, id, user, now))
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
        self.with(|c| incidents::remove_search(c, name))
    }

    fn notify_marks(&self) -> Result<Vec<Mark>> {
        self.with(notify::marks)
    }

    fn finished_through(&self) -> Result<i64> {
        self.with(|c| notify::finished_through(c, Timestamp::now().micros() - STALE_RECEIVING))
    }

    fn report_before(&self, time: Timestamp) -> Result<i64> {
        self.with(|c| notify::report_before(c, time))
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
        self.with(|c| notify::remove_inhibition(c, id))
    }

    fn hosts(&self, query: &HostQuery) -> Result<HostCount> {
        self.with(|c| stats::hosts(c, query))
    }

    fn host_breakdown(&self, query: &HostQuery, by: Breakdown) -> Result<Vec<HostCount>> {
        self.with(|c| stats::breakdown(c, query, by))
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
        self.with(|c| sharing::remove_community(c, id))
    }

    fn communities(&self) -> Result<Vec<Community>> {
        self.with(sharing::communities)
    }

    fn indicator_mark(&self) -> Result<i64> {
        self.with(sharing::indicator_mark)
    }

    fn report_events(
        &self,
        report: ReportId,
        types: &[ClassificationType],
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        self.with(|c| sharing::report_events(c, report, types, after, limit, &self.bases))
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
        self.with(|c| Ok(c.execute("DELETE FROM indicators WHERE id = ?1", [id])? > 0))
    }

    fn lock(&self, name: &str, wait: bool) -> Result<Option<StoreLock>> {
        // A file beside the database: the processes that share it share its directory.
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("farol.{name}.lock")))?;
        if wait {
            file.lock()?;
        } else if let Err(e) = file.try_lock() {
            return match e {
                std::fs::TryLockError::WouldBlock => Ok(None),
                std::fs::TryLockError::Error(e) => Err(e.into()),
            };
        }
        Ok(Some(StoreLock(Box::new(file))))
    }

    fn totals(&self) -> Result<Totals> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT count(*), coalesce(sum(events), 0), coalesce(sum(rejects), 0) FROM reports WHERE status <> 'receiving'",
                [],
                |r| {
                    Ok(Totals {
                        reports: r.get::<_, i64>(0)?.unsigned_abs(),
                        events: r.get::<_, i64>(1)?.unsigned_abs(),
                        rejects: r.get::<_, i64>(2)?.unsigned_abs(),
                    })
                },
            )?)
        })
    }
}

/// Streams `input` into compressed chunks; returns the SHA-256 and size of what was read. The
/// hash is computed on a second thread: on a small machine SHA-256 costs as much as zstd.
/// Archive chunks go in over one connection, in transactions of some megabytes.
struct SqliteChunks<'c> {
    conn: &'c Connection,
    report: i64,
    tx: Option<rusqlite::Transaction<'c>>,
}

impl archive::Chunks for SqliteChunks<'_> {
    fn put(&mut self, seq: i64, data: &[u8]) -> Result<()> {
        let tx = match &mut self.tx {
            Some(tx) => tx,
            None => self.tx.insert(self.conn.unchecked_transaction()?),
        };
        tx.execute(
            "INSERT INTO report_chunks (report_id, seq, data) VALUES (?1, ?2, ?3)",
            params![self.report, seq, data],
        )?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            tx.execute("UPDATE reports SET heartbeat = ?2 WHERE id = ?1", [self.report, Timestamp::now().micros()])?;
            tx.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_of_version_1_is_migrated_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("farol.db");
        {
            let conn = connect(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch("PRAGMA user_version = 1; INSERT INTO feeds (name) VALUES ('old');").unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        store.set_collector_state("old", "s").unwrap();
        assert_eq!(store.collector_state("old").unwrap().as_deref(), Some("s"));
        let version: usize = store.with(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    #[test]
    fn version_5_turns_the_index_by_organization_into_runs_within_each_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("farol.db");
        {
            let conn = connect(&path).unwrap();
            conn.execute_batch(&MIGRATIONS[..4].join(";\n")).unwrap();
            // Events 1 to 6 of hour 10: 4 and 6 from report 2, the others from report 1.
            let mut sql = "PRAGMA user_version = 4;".to_owned();
            for (id, report) in [(1, 1), (2, 1), (3, 1), (4, 2), (5, 1), (6, 2)] {
                sql += &format!(
                    "INSERT INTO events (id, hour, time, hash, feed_id, source_ip, report_id, raw_offset, raw_len, data)
                     VALUES ({id}, 10, 0, {id}, 1, x'', {report}, 0, 0, x'');"
                );
            }
            for (org, id) in [(7, 1), (7, 2), (7, 3), (7, 4), (7, 5), (8, 2), (8, 6)] {
                sql += &format!("INSERT INTO event_orgs (org_id, hour, event_id) VALUES ({org}, 10, {id});");
            }
            conn.execute_batch(&sql).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let runs: Vec<(i64, i64, i64)> = store
            .with(|c| {
                let mut stmt = c.prepare("SELECT org_id, first_id, last_id FROM org_runs ORDER BY org_id, first_id")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(runs, [(7, 1, 3), (7, 4, 4), (7, 5, 5), (8, 2, 2), (8, 6, 6)]);
    }

    #[test]
    fn the_rollup_counts_the_events_already_stored() {
        use crate::{HostQuery, HostScope, Store};
        // From before the rollup, and from the rollup of version 13 (read by its own indexes).
        for version in [8, 13] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("farol.db");
            stored_events(&path, version);
            let store = SqliteStore::open(&path).unwrap();
            let q =
                |scope| HostQuery { scope, from_day: 20000, to_day: 20000, types: vec![], family: None, max_tlp: None };
            let all = store.hosts(&q(HostScope::All)).unwrap();
            assert_eq!((all.hosts, all.host_days, all.events), (2, 2, 3), "from version {version}");
            let org = store.hosts(&q(HostScope::Orgs(vec![OrgId(7)]))).unwrap();
            assert_eq!((org.hosts, org.events), (1, 2), "from version {version}");
            let both = store.hosts(&q(HostScope::Orgs(vec![OrgId(7), OrgId(8)]))).unwrap();
            assert_eq!((both.hosts, both.events), (1, 3), "from version {version}");
            // Every row of the rollup is in a run: none left over from before.
            let orphans: i64 = store
                .with(|c| {
                    let sql = "SELECT count(*) FROM host_days h WHERE NOT EXISTS
                                   (SELECT 1 FROM host_day_runs r WHERE h.rowid BETWEEN r.first_id AND r.last_id)";
                    Ok(c.query_row(sql, [], |r| r.get(0))?)
                })
                .unwrap();
            assert_eq!(orphans, 0, "from version {version}");
        }
    }

    /// A store of schema `version` with three events: 192.0.2.1 twice on day 20000 (hour
    /// 480000), routed to organization 7, then to 7 and 8; 192.0.2.2 once. From version 13 on,
    /// with the first event's row in the rollup as version 13 wrote it.
    fn stored_events(path: &Path, version: usize) {
        let conn = connect(path).unwrap();
        conn.execute_batch(&MIGRATIONS[..version].join(";\n")).unwrap();
        let mut sql = format!("PRAGMA user_version = {version};");
        for (id, ip, orgs) in
            [(1, 3_221_225_985u32, "x'07'"), (2, 3_221_225_985, "x'0708'"), (3, 3_221_225_986, "NULL")]
        {
            sql += &format!(
                "INSERT INTO events (id, hour, time, hash, feed_id, type, source_ip, report_id, raw_offset, raw_len,
                                     data, orgs, scope, tlp)
                 VALUES ({id}, 480000, 0, {id}, 1, 0, {ip}, 1, 0, 0, x'', {orgs}, 0, 2);"
            );
        }
        if version >= 13 {
            sql += "INSERT INTO host_days (report_id, org, day, ip, type, family, tlp, events, org_events)
                    VALUES (1, 7, 20000, 3221225985, 0, '', 2, 1, 1);";
        }
        conn.execute_batch(&sql).unwrap();
    }

    #[test]
    fn version_12_keeps_states_apart_from_feeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("farol.db");
        {
            let conn = connect(&path).unwrap();
            conn.execute_batch(&MIGRATIONS[..11].join(";\n")).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 11;
                 INSERT INTO feeds (name, collector_state) VALUES ('shadowserver', '{\"etag\":\"x\"}'),
                     ('partner:cert-es', '{\"added_after\":\"t\"}'), ('quiet', NULL);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.collector_state("shadowserver").unwrap().as_deref(), Some("{\"etag\":\"x\"}"));
        assert_eq!(store.collector_state("partner:cert-es").unwrap().as_deref(), Some("{\"added_after\":\"t\"}"));
        assert_eq!(store.collector_state("quiet").unwrap(), None);
        let feeds: Vec<String> = store.feed_health(Timestamp::now()).unwrap().into_iter().map(|h| h.feed).collect();
        assert_eq!(feeds, ["quiet", "shadowserver"], "a partner's state is not a feed");
    }

    #[test]
    fn a_store_from_a_newer_farol_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("farol.db");
        connect(&path).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
        let err = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("newer than this farol knows"), "{err}");
    }
}
