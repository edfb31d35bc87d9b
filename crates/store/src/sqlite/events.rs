//! Writing events in sorted batches, and reading them back through the hour-prefixed indexes.

use std::collections::{BTreeSet, HashMap};

use farol_model::org::{Distribution, OrgId};
use farol_model::{Reject, ReportId};
use ipnet::IpNet;
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior, params, params_from_iter};

use crate::row::{BATCH_ROWS, IpKey, Row, decode_orgs, encode_orgs, type_condition};
pub(super) use crate::stored::{Bases, RawEvent};
use crate::{EventQuery, EventWriter, Result, StoredEvent, Tally, Visibility, Written};

impl ToSql for IpKey {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            IpKey::None => ToSqlOutput::Borrowed(ValueRef::Blob(&[])),
            IpKey::V4(v) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(*v))),
            IpKey::V6(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Rollup rows a report's writer holds before it writes them: grouped over many batches, an
/// infected host that connects all day is one row, and memory stays bounded (eight times as
/// many were faster by a tenth to a quarter in the ingest benchmark, and peaked 50 to 130 MB
/// higher; see BENCHMARKS.md).
const TALLY_ROWS: usize = 1 << 16;

pub(super) struct Writer {
    conn: Connection,
    checkpoints: super::checkpoint::Checkpointer,
    report: ReportId,
    feed: i64,
    /// The process that held the report when the writer began: batches go in only while it
    /// still does.
    holder: Option<String>,
    rows: Vec<Row>,
    rejects: Vec<Reject>,
    /// The statistics of the batches written, not yet in the rollups: they go in with the
    /// last batch (a crash before leaves the report unfinished, and processing it again
    /// starts its rollup rows anew).
    tally: super::stats::Tally,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        checkpoints: super::checkpoint::Checkpointer,
        report: ReportId,
        feed: i64,
        holder: Option<String>,
    ) -> Writer {
        Writer {
            conn,
            checkpoints,
            report,
            feed,
            holder,
            rows: Vec::with_capacity(BATCH_ROWS),
            rejects: Vec::new(),
            tally: super::stats::Tally::default(),
        }
    }
}

impl EventWriter for Writer {
    fn write(&mut self, rows: Vec<Row>, rejects: Vec<Reject>) -> Result<Written> {
        if crate::row::gather(&mut self.rows, &mut self.rejects, rows, rejects) {
            self.commit(false)
        } else {
            Ok(Written::default())
        }
    }

    fn flush(&mut self) -> Result<Written> {
        self.commit(true)
    }
}

impl Writer {
    /// Writes the queued batch in one transaction; `last`: and the statistics held.
    fn commit(&mut self, last: bool) -> Result<Written> {
        if self.rows.is_empty() && self.rejects.is_empty() && (!last || self.tally.len() == 0) {
            return Ok(Written::default());
        }
        Row::sort(&mut self.rows);
        let mut written = Written::default();
        self.checkpoints.before_write();
        // Immediate: no other writer can come between reading the largest id and inserting.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        // A process that stalled past its lease must not add events after another took the
        // report over and removed what was there: the new holder would count them as duplicates.
        let held = "SELECT 1 FROM reports WHERE id = ?1 AND holder IS ?2";
        if tx.query_row(held, params![self.report.0, self.holder], |_| Ok(())).optional()?.is_none() {
            return Err(crate::StoreError::taken_over(self.report));
        }
        // Ids are handed out above the largest, so this batch's rows get the ids after it.
        let before: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
        for group in self.rows.chunks(ROWS_PER_INSERT) {
            let mut insert = tx.prepare_cached(&insert_sql(group.len()))?;
            for (i, row) in group.iter().enumerate() {
                bind_row(&mut insert, i * COLUMNS + 1, row, self.feed, self.report)?;
            }
            let inserted = insert.raw_execute()? as u64;
            let observations: u64 = group.iter().map(|r| r.part.map_or(1, |p| p.count)).sum();
            written.inserted += inserted;
            written.duplicates += observations - inserted;
        }
        // When every row was new, the rows got the ids after `before` in their order; otherwise
        // the rows inserted (not those ignored as already stored) are read back. Both are
        // cheaper than `RETURNING`, which costs every batch, routed or not.
        let all_new = written.inserted == self.rows.len() as u64;
        if self.rows.iter().any(|r| !r.orgs.is_empty()) {
            let mut keys = Vec::new();
            if all_new {
                for (row, id) in self.rows.iter().zip(before + 1..) {
                    keys.extend(row.orgs.iter().map(|&org| (org, row.hour, id)));
                }
            } else {
                let mut routed =
                    tx.prepare_cached("SELECT id, hour, orgs FROM events WHERE id > ?1 AND orgs IS NOT NULL")?;
                let mut rows = routed.query([before])?;
                while let Some(row) = rows.next()? {
                    let (id, hour, orgs): (i64, i64, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
                    keys.extend(decode_orgs(&orgs).into_iter().map(|org| (org, hour, id)));
                }
            }
            index_by_org(&tx, keys)?;
        }
        // The statistics count the new events, likewise.
        if all_new {
            self.rows.iter().for_each(|r| self.tally.add_row(r));
        } else {
            self.tally.merge(super::stats::inserted(&tx, before)?);
        }
        if last || self.tally.len() >= TALLY_ROWS {
            std::mem::take(&mut self.tally).write(&tx, self.report.0)?;
        }
        let mut part = tx.prepare_cached(
            "INSERT INTO event_parts (report_id, hash, count, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (report_id, hash) DO UPDATE SET count = count + excluded.count,
                first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)",
        )?;
        for row in &self.rows {
            if let Some(p) = row.part {
                part.execute(params![self.report.0, row.hash, n(p.count), p.first_seen, p.last_seen])?;
            }
        }
        let mut hour = tx.prepare_cached("INSERT OR IGNORE INTO event_hours (hour) VALUES (?1)")?;
        for h in self.rows.iter().map(|r| r.hour).collect::<BTreeSet<_>>() {
            hour.execute([h])?;
        }
        let mut reject = tx.prepare_cached(
            "INSERT INTO rejects (report_id, line, offset, len, reason, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in &self.rejects {
            reject.execute(params![
                self.report.0,
                r.position.line.map(n),
                n(r.position.offset),
                n(r.position.len),
                r.reason,
                r.raw
            ])?;
        }
        if written.inserted > 0 {
            let last = before + i64::try_from(written.inserted).unwrap_or(i64::MAX);
            tx.execute(
                "UPDATE reports SET first_event = min(coalesce(first_event, ?2), ?2),
                                    last_event = max(coalesce(last_event, ?3), ?3) WHERE id = ?1",
                params![self.report.0, before + 1, last],
            )?;
        }
        drop((hour, reject, part));
        tx.commit()?;
        self.checkpoints.committed();
        self.rows.clear();
        self.rejects.clear();
        Ok(written)
    }
}

/// Rows per INSERT statement: one statement for many rows saves most of SQLite's per-statement
/// work (about a fifth of the writer's time in the ingest benchmark).
const ROWS_PER_INSERT: usize = 32;
const COLUMNS: usize = 17;

fn insert_sql(rows: usize) -> String {
    super::insert_many(
        "IGNORE",
        "events (hour, time, hash, feed_id, type, source_ip, source_asn, source_cc, report_id, raw_offset, raw_len,
                 data, orgs, scope, aggregated, tlp, family)",
        rows,
    )
}

/// Files events under each of their organizations, given as (organization, hour, event id):
/// consecutive ids of one organization and hour become one run.
pub(super) fn index_by_org(tx: &Connection, mut keys: Vec<(i64, i64, i64)>) -> Result<()> {
    const PER_INSERT: usize = 64;
    keys.sort_unstable();
    let runs = super::runs(keys.into_iter().map(|(org, hour, id)| ((org, hour), id)));
    for chunk in runs.chunks(PER_INSERT) {
        let sql = super::insert_many("FAIL", "org_runs (org_id, hour, first_id, last_id)", chunk.len());
        let values = chunk.iter().flat_map(|&((org, hour), first, last)| [org, hour, first, last]);
        tx.prepare_cached(&sql)?.execute(params_from_iter(values))?;
    }
    Ok(())
}

/// The run of `org` that holds event `id` of `hour`: (first, last).
fn run_of(tx: &Connection, org: i64, hour: i64, id: i64) -> Result<Option<(i64, i64)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT first_id, last_id FROM org_runs WHERE org_id = ?1 AND hour = ?2 AND first_id <= ?3
         ORDER BY first_id DESC LIMIT 1",
    )?;
    let run: Option<(i64, i64)> = stmt.query_row([org, hour, id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    Ok(run.filter(|&(_, last)| last >= id))
}

/// Takes one event out of an organization's index, splitting its run.
pub(super) fn unindex(tx: &Connection, org: i64, hour: i64, id: i64) -> Result<()> {
    let Some((first, last)) = run_of(tx, org, hour, id)? else { return Ok(()) };
    tx.prepare_cached("DELETE FROM org_runs WHERE org_id = ?1 AND hour = ?2 AND first_id = ?3")?
        .execute([org, hour, first])?;
    let mut insert =
        tx.prepare_cached("INSERT INTO org_runs (org_id, hour, first_id, last_id) VALUES (?1, ?2, ?3, ?4)")?;
    for (a, b) in [(first, id - 1), (id + 1, last)] {
        if a <= b {
            insert.execute([org, hour, a, b])?;
        }
    }
    Ok(())
}

/// Takes all the events of one report, given as (id, hour, organizations), out of the index:
/// whole runs, since a run never holds another report's events.
pub(super) fn unindex_report(tx: &Connection, routed: &[(i64, i64, Vec<u8>)]) -> Result<()> {
    let mut gone: HashMap<(i64, i64), i64> = HashMap::new();
    let mut delete = tx.prepare_cached("DELETE FROM org_runs WHERE org_id = ?1 AND hour = ?2 AND first_id = ?3")?;
    for (id, hour, orgs) in routed {
        for org in decode_orgs(orgs) {
            // Events come in id order: one inside the run just deleted needs nothing more.
            if gone.get(&(org, *hour)).is_some_and(|&last| last >= *id) {
                continue;
            }
            if let Some((first, last)) = run_of(tx, org, *hour, *id)? {
                delete.execute([org, *hour, first])?;
                gone.insert((org, *hour), last);
            }
        }
    }
    Ok(())
}

/// SQL that is 1 when event `e` is in the networks of organization `org` (an SQL expression),
/// else 0: one seek in its runs.
fn in_runs(org: &str) -> String {
    format!(
        "coalesce((SELECT x.last_id >= e.id FROM org_runs x WHERE x.org_id = {org} AND x.hour = e.hour
                   AND x.first_id <= e.id ORDER BY x.first_id DESC LIMIT 1), 0)"
    )
}

fn bind_row(stmt: &mut rusqlite::CachedStatement<'_>, at: usize, row: &Row, feed: i64, report: ReportId) -> Result<()> {
    stmt.raw_bind_parameter(at, row.hour)?;
    stmt.raw_bind_parameter(at + 1, row.time)?;
    stmt.raw_bind_parameter(at + 2, row.hash)?;
    stmt.raw_bind_parameter(at + 3, feed)?;
    stmt.raw_bind_parameter(at + 4, row.kind)?;
    stmt.raw_bind_parameter(at + 5, row.source_ip)?;
    stmt.raw_bind_parameter(at + 6, row.source_asn)?;
    stmt.raw_bind_parameter(at + 7, row.source_cc.as_deref())?;
    stmt.raw_bind_parameter(at + 8, report.0)?;
    stmt.raw_bind_parameter(at + 9, n(row.raw_offset))?;
    stmt.raw_bind_parameter(at + 10, n(row.raw_len))?;
    stmt.raw_bind_parameter(at + 11, &row.data)?;
    stmt.raw_bind_parameter(at + 12, encode_orgs(&row.orgs))?;
    stmt.raw_bind_parameter(at + 13, row.scope)?;
    stmt.raw_bind_parameter(at + 14, row.part.map(|_| 1))?;
    stmt.raw_bind_parameter(at + 15, row.tlp)?;
    stmt.raw_bind_parameter(at + 16, row.family.as_deref())?;
    Ok(())
}

pub(super) const EVENT_COLUMNS: &str = "e.id, e.report_id, f.name, e.hash, e.raw_offset, e.raw_len, e.data, r.common, e.orgs, e.scope, e.aggregated, e.time";
pub(super) const EVENT_JOINS: &str = "JOIN feeds f ON f.id = e.feed_id JOIN reports r ON r.id = e.report_id";

pub(super) fn stored_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok(RawEvent {
        id: row.get(0)?,
        report: row.get(1)?,
        feed: row.get(2)?,
        hash: row.get(3)?,
        offset: row.get(4)?,
        len: row.get(5)?,
        data: row.get(6)?,
        common: row.get(7)?,
        orgs: decode_orgs(row.get::<_, Option<Vec<u8>>>(8)?.as_deref().unwrap_or_default()),
        scope: row.get(9)?,
        aggregated: row.get::<_, Option<i64>>(10)?.is_some(),
        time: row.get(11)?,
    })
}

pub(super) fn decode(conn: &Connection, raw: RawEvent, bases: &Bases) -> Result<StoredEvent> {
    let aggregate = if raw.aggregated {
        conn.prepare_cached(
            "SELECT sum(count), min(first_seen), max(last_seen) FROM event_parts WHERE hash = ?1 HAVING count(*) > 0",
        )?
        .query_row([raw.hash], |r| Ok(crate::stored::aggregate(r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
    } else {
        None
    };
    raw.decode(bases, aggregate)
}

pub(super) fn by_id(conn: &Connection, id: i64, visible: &Visibility, bases: &Bases) -> Result<Option<StoredEvent>> {
    let mut args = vec![SqlValue::Integer(id)];
    let Some(allowed) = visibility(visible, None, &mut args) else { return Ok(None) };
    let raw = conn
        .query_row(
            &format!("SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS} WHERE e.id = ?1 AND {allowed}"),
            params_from_iter(args.iter()),
            stored_event,
        )
        .optional()?;
    raw.map(|r| decode(conn, r, bases)).transpose()
}

/// The events in an organization's networks from reports after `reports.0` up to `reports.1`,
/// in id order, through the index by organization (only its runs that reach into the id range of
/// those reports).
pub(super) fn new_events(
    conn: &Connection,
    org: OrgId,
    visible: &Visibility,
    reports: (i64, i64),
    after: i64,
    limit: usize,
    bases: &Bases,
) -> Result<Vec<StoredEvent>> {
    let (first, last): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT min(first_event), max(last_event) FROM reports WHERE id > ?1 AND id <= ?2",
        [reports.0, reports.1],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(first), Some(last)) = (first, last) else { return Ok(Vec::new()) };
    let first = first.max(after.saturating_add(1));
    let mut args = vec![SqlValue::Integer(org.0), first.into(), last.into(), reports.0.into(), reports.1.into()];
    let Some(allowed) = visibility(visible, Some(org), &mut args) else { return Ok(Vec::new()) };
    args.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM org_runs o CROSS JOIN events e ON e.id BETWEEN max(o.first_id, ?2) AND min(o.last_id, ?3)
         {EVENT_JOINS}
         WHERE o.org_id = ?1 AND o.last_id >= ?2 AND o.first_id <= ?3 AND e.report_id > ?4 AND e.report_id <= ?5 AND {allowed}
         ORDER BY e.id LIMIT ?{}",
        args.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let raws = stmt.query_map(params_from_iter(args.iter()), stored_event)?.collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(|r| decode(conn, r, bases)).collect()
}

/// The SQL condition that lets through what `visible` allows, with its arguments appended to
/// `args`; `None` when nothing is visible. `joined` is the organization whose events the query
/// already reads through the index by organization.
fn visibility(visible: &Visibility, joined: Option<OrgId>, args: &mut Vec<SqlValue>) -> Option<String> {
    let mut arg = |v: i64| {
        args.push(SqlValue::Integer(v));
        format!("?{}", args.len())
    };
    match visible {
        Visibility::Nothing => None,
        Visibility::All => Some("1".to_owned()),
        Visibility::Scoped { inside, shared } => {
            let mut any = Vec::new();
            if let Some((org, tlp)) = inside
                && joined == Some(*org)
            {
                any.push(format!(
                    "(e.tlp <= {} AND r.distribution >= {})",
                    arg(tlp.code().into()),
                    arg(Distribution::Affected.code().into())
                ));
            } else if let Some((org, tlp)) = inside {
                any.push(format!(
                    "({} AND e.tlp <= {} AND r.distribution >= {})",
                    in_runs(&arg(org.0)),
                    arg(tlp.code().into()),
                    arg(Distribution::Affected.code().into())
                ));
            }
            if let Some((reach, tlp)) = shared {
                any.push(format!(
                    "(r.distribution >= {} AND e.tlp <= {})",
                    arg(reach.code().into()),
                    arg(tlp.code().into())
                ));
            }
            (!any.is_empty()).then(|| format!("({})", any.join(" OR ")))
        }
    }
}

/// The bounds of `source_ip` values inside a network, as the column stores them.
fn ip_bounds(net: &IpNet) -> (SqlValue, SqlValue) {
    match net {
        IpNet::V4(v4) => (
            SqlValue::Integer(i64::from(u32::from(v4.network()))),
            SqlValue::Integer(i64::from(u32::from(v4.broadcast()))),
        ),
        IpNet::V6(v6) => {
            (SqlValue::Blob(v6.network().octets().to_vec()), SqlValue::Blob(v6.broadcast().octets().to_vec()))
        }
    }
}

/// An organization's user sees the events in its networks, and those shared with every
/// constituent: a query for such a viewer, as one part for each, each read through its own
/// index (the second only when some report is shared that far). `None` for other queries.
fn split(conn: &Connection, q: &EventQuery) -> Result<Option<(EventQuery, Option<EventQuery>)>> {
    let (Visibility::Scoped { inside: Some(inside), shared }, None) = (&q.visible, q.org) else { return Ok(None) };
    let own = EventQuery {
        visible: Visibility::Scoped { inside: Some(*inside), shared: None },
        org: Some(inside.0),
        ..q.clone()
    };
    let Some(shared) = shared else { return Ok(Some((own, None))) };
    let exists = "SELECT EXISTS (SELECT 1 FROM reports WHERE distribution >= ?1)";
    if !conn.query_row(exists, [shared.0.code()], |r| r.get::<_, bool>(0))? {
        return Ok(Some((own, None)));
    }
    let others = EventQuery { visible: Visibility::Scoped { inside: None, shared: Some(*shared) }, ..q.clone() };
    Ok(Some((own, Some(others))))
}

/// The events a query selects, newest first.
pub(super) fn query(conn: &Connection, q: &EventQuery, bases: &Bases) -> Result<Vec<StoredEvent>> {
    let Some((own, others)) = split(conn, q)? else { return select(conn, q, bases) };
    let mut events = select(conn, &own, bases)?;
    if let Some(others) = others {
        events.extend(select(conn, &others, bases)?);
        events.sort_by_key(|e| std::cmp::Reverse(e.cursor()));
        events.dedup_by_key(|e| e.id);
        events.truncate(q.limit);
    }
    Ok(events)
}

fn select(conn: &Connection, q: &EventQuery, bases: &Bases) -> Result<Vec<StoredEvent>> {
    let Some(Plan { from, order, filters, mut args }) = plan(q) else { return Ok(Vec::new()) };
    args.push(i64::try_from(q.limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM {from} {EVENT_JOINS} WHERE {filters} ORDER BY {order} LIMIT ?{}",
        args.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), stored_event)?;
    let raws = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(|r| decode(conn, r, bases)).collect()
}

/// Counts what a query selects (its limit aside) from the indexed columns alone.
pub(super) fn tally(conn: &Connection, q: &EventQuery) -> Result<Tally> {
    let mut tally = Tally::default();
    match split(conn, q)? {
        None => count(conn, q, None, &mut tally)?,
        Some((own, others)) => {
            count(conn, &own, None, &mut tally)?;
            if let Some(others) = others {
                // What the organization shares with every constituent is already counted
                // where it is in its networks.
                count(conn, &others, own.org, &mut tally)?;
            }
        }
    }
    Ok(tally)
}

/// Adds what `q` selects to `tally`, leaving out the events in the networks of `except`.
fn count(conn: &Connection, q: &EventQuery, except: Option<OrgId>, tally: &mut Tally) -> Result<()> {
    let Some(Plan { from, mut filters, args, .. }) = plan(q) else { return Ok(()) };
    if let Some(org) = except {
        // An id of ours, an integer: safe in the SQL text.
        filters.push_str(&format!(" AND NOT {}", in_runs(&org.0.to_string())));
    }
    let sql = format!("SELECT e.type, e.source_asn, e.orgs, e.time FROM {from} {EVENT_JOINS} WHERE {filters}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    while let Some(row) = rows.next()? {
        let orgs = match row.get_ref(2)? {
            ValueRef::Blob(orgs) => decode_orgs(orgs),
            _ => Vec::new(),
        };
        tally.count(row.get(0)?, row.get(1)?, &orgs, row.get(3)?);
    }
    Ok(())
}

/// How to run a query: the index, the conditions and their arguments; `None` when it can
/// select nothing.
struct Plan {
    /// The tables, and the index that drives the scan.
    from: String,
    order: &'static str,
    filters: String,
    args: Vec<SqlValue>,
}

/// Chooses the plan here rather than leaving it to statistics: the most selective filter picks
/// the index, and the hour range of the time filter bounds every index scan.
fn plan(q: &EventQuery) -> Option<Plan> {
    const HOUR: i64 = 3_600_000_000;
    let lo_time = q.since.map_or(i64::MIN, |t| t.micros());
    let hi_time = q.until.map_or(i64::MAX, |t| t.micros());
    let (lo_hour, hi_hour) = (lo_time.div_euclid(HOUR), hi_time.div_euclid(HOUR));
    // A later page starts in the hour of the event it continues after.
    let hi_hour = q.after.map_or(hi_hour, |a| hi_hour.min(a.time.div_euclid(HOUR)));
    let mut args: Vec<SqlValue> = Vec::new();
    let allowed = visibility(&q.visible, q.org, &mut args)?;
    let mut arg = |v: SqlValue| {
        args.push(v);
        format!("?{}", args.len())
    };
    let mut filters = vec![allowed, format!("e.time BETWEEN {} AND {}", arg(lo_time.into()), arg(hi_time.into()))];
    // Only where an index on (hour, ...) is chosen: every argument made must be used.
    let hours = |arg: &mut dyn FnMut(SqlValue) -> String| {
        format!(
            "e.hour IN (SELECT hour FROM event_hours WHERE hour BETWEEN {} AND {})",
            arg(lo_hour.into()),
            arg(hi_hour.into())
        )
    };
    let types = type_condition(q.kind, q.taxonomy);
    let index = if let Some(org) = q.org {
        // Through the index by organization, newest hour first: a page needs only the last
        // hours, however many events the organization has.
        filters.push(format!(
            "o.org_id = {} AND o.hour BETWEEN {} AND {}",
            arg(org.0.into()),
            arg(lo_hour.into()),
            arg(hi_hour.into())
        ));
        "orgs"
    } else if let Some(net) = &q.source {
        let (lo, hi) = ip_bounds(net);
        filters.push(hours(&mut arg));
        filters.push(format!("e.source_ip BETWEEN {} AND {}", arg(lo), arg(hi)));
        "events_dedup"
    } else if let Some(asn) = q.asn {
        filters.push(hours(&mut arg));
        filters.push(format!("e.source_asn = {}", arg(i64::from(asn).into())));
        "events_asn"
    } else if q.feed.is_some() || types.is_some() {
        let feeds = match &q.feed {
            Some(feed) => {
                format!("e.feed_id = (SELECT id FROM feeds WHERE name = {})", arg(SqlValue::Text(feed.clone())))
            }
            None => "e.feed_id IN (SELECT id FROM feeds)".to_owned(),
        };
        filters.push(feeds);
        filters.extend(types.clone());
        filters.push(format!("e.hour BETWEEN {} AND {}", arg(lo_hour.into()), arg(hi_hour.into())));
        "events_class"
    } else if let Some(report) = q.report {
        // A report's events lie in the id range its processing recorded.
        let r = arg(report.0.into());
        filters.push(format!(
            "e.id BETWEEN (SELECT first_event FROM reports WHERE id = {r}) AND (SELECT last_event FROM reports WHERE id = {r})"
        ));
        "rowid"
    } else {
        "events_time"
    };
    if let (Some(types), false) = (types, index == "events_class") {
        filters.push(types);
    }
    if let (Some(feed), false) = (&q.feed, index == "events_class") {
        filters.push(format!("f.name = {}", arg(SqlValue::Text(feed.clone()))));
    }
    if let (Some(asn), false) = (q.asn, index == "events_asn") {
        filters.push(format!("e.source_asn = {}", arg(i64::from(asn).into())));
    }
    if let Some(cc) = &q.cc {
        filters.push(format!("e.source_cc = {}", arg(SqlValue::Text(cc.to_ascii_uppercase()))));
    }
    if let Some(report) = q.report {
        filters.push(format!("e.report_id = {}", arg(report.0.into())));
    }
    if let (Some(net), true) = (&q.source, q.org.is_some()) {
        let (lo, hi) = ip_bounds(net);
        filters.push(format!("e.source_ip BETWEEN {} AND {}", arg(lo), arg(hi)));
    }
    if let Some(scope) = q.scope {
        filters.push(format!("e.scope = {}", scope.code()));
    }
    if let Some(after) = q.after {
        let (t, i) = (arg(after.time.into()), arg(after.id.into()));
        filters.push(format!("(e.time < {t} OR (e.time = {t} AND e.id < {i}))"));
    }
    let (from, order) = match index {
        // Hours are whole, so newest hour first then newest first within it is newest first.
        // CROSS JOIN keeps the runs outside: the planner would otherwise read every event of the
        // window through the time index and look for its run (minutes instead of a second for a
        // large organization's dashboard).
        "orgs" => (
            "org_runs o CROSS JOIN events e ON e.id BETWEEN o.first_id AND o.last_id".to_owned(),
            "o.hour DESC, e.time DESC, e.id DESC",
        ),
        "rowid" => ("events e NOT INDEXED".to_owned(), "e.time DESC, e.id DESC"),
        index => (format!("events e INDEXED BY {index}"), "e.time DESC, e.id DESC"),
    };
    Some(Plan { from, order, filters: filters.join(" AND "), args })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_organization_s_events_are_read_run_by_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&dir.path().join("farol.db")).unwrap();
        let q = EventQuery { visible: Visibility::All, org: Some(OrgId(1)), ..EventQuery::default() };
        let Plan { from, filters, args, .. } = plan(&q).unwrap();
        let sql = format!("SELECT e.id FROM {from} {EVENT_JOINS} WHERE {filters}");
        let steps = store.query_plan(&sql, params_from_iter(args.iter()));
        assert!(steps[0].starts_with("SEARCH o USING PRIMARY KEY (org_id=?"), "{steps:?}");
        assert!(steps[1].starts_with("SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{steps:?}");
    }
}
