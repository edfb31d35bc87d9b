//! Writing events with COPY, and reading them back.

use std::collections::HashSet;
use std::net::IpAddr;

use farol_model::org::{Distribution, OrgId};
use farol_model::{ClassificationType, Reject, ReportId};
use ipnet::IpNet;
use postgres::Client;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::n;
use crate::row::{BATCH_ROWS, Row, type_code, type_condition};
use crate::stored::{Bases, RawEvent, aggregate};
use crate::{EventQuery, EventWriter, Rerouted, Result, StoredEvent, Tally, Visibility, Written};

/// The columns a batch is copied into, in the order [`Writer::commit`] writes them.
const BATCH_COLUMNS: &str = "hour, time, hash, type, source_ip, source_asn, source_cc, raw_offset, raw_len, data, \
     orgs, scope, aggregated, tlp, family, count, first_seen, last_seen";

const BATCH_TYPES: [Type; 18] = [
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INET,
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::BYTEA,
    Type::INT8_ARRAY,
    Type::INT8,
    Type::BOOL,
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::INT8,
];

/// One report's writer, on a connection of its own.
pub(super) struct Writer {
    client: Client,
    report: ReportId,
    feed: i64,
    /// The process that held the report when the writer began: batches go in only while it
    /// still does.
    holder: Option<String>,
    rows: Vec<Row>,
    rejects: Vec<Reject>,
    /// Hours whose monthly partition exists.
    partitioned: HashSet<i64>,
}

impl Writer {
    pub(super) fn new(mut client: Client, report: ReportId, feed: i64, holder: Option<String>) -> Result<Writer> {
        // Each batch is copied here, then inserted into the events that are not stored yet.
        client.batch_execute(
            "CREATE TEMPORARY TABLE batch (
                 hour bigint, time bigint, hash bigint, type bigint, source_ip inet, source_asn bigint,
                 source_cc text, raw_offset bigint, raw_len bigint, data bytea, orgs bigint[], scope bigint,
                 aggregated boolean, tlp bigint, family text, count bigint, first_seen bigint, last_seen bigint
             ) ON COMMIT DELETE ROWS",
        )?;
        Ok(Writer {
            client,
            report,
            feed,
            holder,
            rows: Vec::with_capacity(BATCH_ROWS),
            rejects: Vec::new(),
            partitioned: HashSet::new(),
        })
    }

    /// Makes the monthly partitions of the batch's hours, one process at a time, in a
    /// transaction of its own (creating a partition locks the events table briefly).
    fn partition(&mut self) -> Result<()> {
        let hours: Vec<i64> = {
            let mut new: Vec<i64> =
                self.rows.iter().map(|r| r.hour).filter(|h| !self.partitioned.contains(h)).collect();
            new.sort_unstable();
            new.dedup();
            new
        };
        if hours.is_empty() {
            return Ok(());
        }
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&super::PARTITIONING])?;
        tx.execute("SELECT farol_events_partition(h) FROM unnest($1::bigint[]) h", &[&hours])?;
        tx.commit()?;
        self.partitioned.extend(hours);
        Ok(())
    }

    fn commit(&mut self) -> Result<Written> {
        if self.rows.is_empty() && self.rejects.is_empty() {
            return Ok(Written::default());
        }
        Row::sort(&mut self.rows);
        self.partition()?;
        let mut tx = self.client.transaction()?;
        // A process that stalled past its lease must not add events after another took the
        // report over and removed what was there: the new holder would count them as
        // duplicates. The lock keeps claimers off the report until the batch is in (or out).
        let held = tx.query_opt(
            "SELECT 1 FROM reports WHERE id = $1 AND holder IS NOT DISTINCT FROM $2 FOR NO KEY UPDATE",
            &[&self.report.0, &self.holder],
        )?;
        if held.is_none() {
            return Err(crate::StoreError::taken_over(self.report));
        }
        let mut copy = BinaryCopyInWriter::new(
            tx.copy_in(&format!("COPY batch ({BATCH_COLUMNS}) FROM STDIN (FORMAT binary)"))?,
            &BATCH_TYPES,
        );
        for r in &self.rows {
            copy.write(&[
                &r.hour,
                &r.time,
                &r.hash,
                &r.kind.map(i64::from),
                &r.source_ip.addr(),
                &r.source_asn.map(i64::from),
                &r.source_cc.as_deref(),
                &n(r.raw_offset),
                &n(r.raw_len),
                &r.data,
                &(!r.orgs.is_empty()).then_some(&r.orgs[..]),
                &i64::from(r.scope),
                &r.part.is_some(),
                &i64::from(r.tlp),
                &r.family.as_deref(),
                &r.part.map(|p| n(p.count)),
                &r.part.map(|p| p.first_seen),
                &r.part.map(|p| p.last_seen),
            ])?;
        }
        copy.finish()?;
        let inserted = tx.query_one(
            &format!(
                "WITH new AS (
                 INSERT INTO events (id, hour, time, hash, feed_id, type, source_ip, source_asn, source_cc, report_id,
                                     raw_offset, raw_len, data, orgs, scope, aggregated, tlp, family)
                 SELECT nextval('event_ids'), hour, time, hash, $1, type, source_ip, source_asn, source_cc, $2,
                        raw_offset, raw_len, data, orgs, scope, aggregated, tlp, family
                 FROM batch
                 ON CONFLICT DO NOTHING
                 RETURNING id, hour, source_ip, type, family, tlp, source_asn, source_cc, orgs),
             -- The statistics count the new events (see migration4.sql).
             counted AS (
                 INSERT INTO host_days (report_id, org, day, ip, type, family, tlp, asn, cc, events, org_events)
                 SELECT $2, o.org, hour / 24, source_ip, coalesce(type, -1), coalesce(family, ''), tlp,
                        min(source_asn), min(source_cc), count(*) FILTER (WHERE o.i = 1), count(*)
                 FROM new, {} WHERE source_ip IS NOT NULL GROUP BY 2, 3, 4, 5, 6, 7)
             SELECT count(*), min(id), max(id) FROM new",
                each_org("orgs")
            ),
            &[&self.feed, &self.report.0],
        )?;
        let (count, first, last): (i64, Option<i64>, Option<i64>) = (inserted.get(0), inserted.get(1), inserted.get(2));
        let observations: u64 = self.rows.iter().map(|r| r.part.map_or(1, |p| p.count)).sum();
        let written = Written { inserted: count.unsigned_abs(), duplicates: observations - count.unsigned_abs() };
        tx.execute(
            "INSERT INTO event_parts (report_id, hash, count, first_seen, last_seen)
             SELECT $1, hash, sum(count)::bigint, min(first_seen), max(last_seen) FROM batch WHERE count IS NOT NULL GROUP BY hash
             ON CONFLICT (report_id, hash) DO UPDATE SET count = event_parts.count + excluded.count,
                first_seen = least(event_parts.first_seen, excluded.first_seen),
                last_seen = greatest(event_parts.last_seen, excluded.last_seen)",
            &[&self.report.0],
        )?;
        if !self.rejects.is_empty() {
            let insert = tx.prepare(
                "INSERT INTO rejects (report_id, line, \"offset\", len, reason, raw) VALUES ($1, $2, $3, $4, $5, $6)",
            )?;
            for r in &self.rejects {
                let p = &r.position;
                tx.execute(&insert, &[&self.report.0, &p.line.map(n), &n(p.offset), &n(p.len), &r.reason, &r.raw])?;
            }
        }
        if let (Some(first), Some(last)) = (first, last) {
            tx.execute(
                "UPDATE reports SET first_event = least(first_event, $2), last_event = greatest(last_event, $3) WHERE id = $1",
                &[&self.report.0, &first, &last],
            )?;
        }
        tx.commit()?;
        self.rows.clear();
        self.rejects.clear();
        Ok(written)
    }
}

impl EventWriter for Writer {
    fn write(&mut self, rows: Vec<Row>, rejects: Vec<Reject>) -> Result<Written> {
        if crate::row::gather(&mut self.rows, &mut self.rejects, rows, rejects) {
            self.commit()
        } else {
            Ok(Written::default())
        }
    }

    fn flush(&mut self) -> Result<Written> {
        self.commit()
    }
}

const EVENT_COLUMNS: &str = "e.id, e.report_id, f.name, e.hash, e.raw_offset, e.raw_len, e.data, r.common, e.orgs, \
     e.scope, e.aggregated, e.time";
const EVENT_JOINS: &str = "JOIN feeds f ON f.id = e.feed_id JOIN reports r ON r.id = e.report_id";

fn raw_event(row: &postgres::Row) -> RawEvent {
    RawEvent {
        id: row.get(0),
        report: row.get(1),
        feed: row.get(2),
        hash: row.get(3),
        offset: row.get(4),
        len: row.get(5),
        data: row.get(6),
        common: row.get(7),
        orgs: row.get::<_, Option<Vec<i64>>>(8).unwrap_or_default(),
        scope: row.get(9),
        aggregated: row.get(10),
        time: row.get(11),
    }
}

fn decode(c: &mut Client, rows: Vec<postgres::Row>, bases: &Bases) -> Result<Vec<StoredEvent>> {
    rows.iter()
        .map(|row| {
            let raw = raw_event(row);
            let aggregate = if raw.aggregated {
                c.query_opt(
                    "SELECT sum(count)::bigint, min(first_seen), max(last_seen) FROM event_parts WHERE hash = $1
                     HAVING count(*) > 0",
                    &[&raw.hash],
                )?
                .map(|r| aggregate(r.get(0), r.get(1), r.get(2)))
            } else {
                None
            };
            raw.decode(bases, aggregate)
        })
        .collect()
}

/// A query's arguments, numbered as they are added.
#[derive(Default)]
struct Args(Vec<Box<dyn ToSql + Sync>>);

impl Args {
    /// Adds an argument; returns its placeholder.
    fn add(&mut self, v: impl ToSql + Sync + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

/// The SQL condition that lets through what `visible` allows; `None` when nothing is visible.
fn visibility(visible: &Visibility, args: &mut Args) -> Option<String> {
    match visible {
        Visibility::Nothing => None,
        Visibility::All => Some("true".to_owned()),
        Visibility::Scoped { inside, shared } => {
            let affected = i64::from(Distribution::Affected.code());
            let mut any = Vec::new();
            if let Some((org, tlp)) = inside {
                any.push(format!(
                    "(e.orgs @> ARRAY[{}::bigint] AND e.tlp <= {} AND r.distribution >= {})",
                    args.add(org.0),
                    args.add(i64::from(tlp.code())),
                    args.add(affected)
                ));
            }
            if let Some((reach, tlp)) = shared {
                any.push(format!(
                    "(r.distribution >= {} AND e.tlp <= {})",
                    args.add(i64::from(reach.code())),
                    args.add(i64::from(tlp.code()))
                ));
            }
            (!any.is_empty()).then(|| format!("({})", any.join(" OR ")))
        }
    }
}

/// The conditions of a query and their arguments; `None` when it can select nothing.
fn filters(q: &EventQuery) -> Option<(String, Args)> {
    let mut args = Args::default();
    let mut filters = vec![visibility(&q.visible, &mut args)?];
    if q.since.is_some() || q.until.is_some() {
        let lo = q.since.map_or(i64::MIN, |t| t.micros());
        let hi = q.until.map_or(i64::MAX, |t| t.micros());
        filters.push(format!("e.time BETWEEN {} AND {}", args.add(lo), args.add(hi)));
    }
    filters.extend(type_condition(q.kind, q.taxonomy));
    if let Some(org) = q.org {
        filters.push(format!("e.orgs @> ARRAY[{}::bigint]", args.add(org.0)));
    }
    if let Some(net) = q.source {
        let (lo, hi) = match net {
            IpNet::V4(v4) => (IpAddr::V4(v4.network()), IpAddr::V4(v4.broadcast())),
            IpNet::V6(v6) => (IpAddr::V6(v6.network()), IpAddr::V6(v6.broadcast())),
        };
        filters.push(format!("e.source_ip BETWEEN {} AND {}", args.add(lo), args.add(hi)));
    }
    if let Some(asn) = q.asn {
        filters.push(format!("e.source_asn = {}", args.add(i64::from(asn))));
    }
    if let Some(cc) = &q.cc {
        filters.push(format!("e.source_cc = {}", args.add(cc.to_ascii_uppercase())));
    }
    if let Some(feed) = &q.feed {
        filters.push(format!("f.name = {}", args.add(feed.clone())));
    }
    if let Some(report) = q.report {
        // A report's events lie in the id range its processing recorded.
        let r = args.add(report.0);
        filters.push(format!(
            "e.report_id = {r} AND e.id BETWEEN (SELECT first_event FROM reports WHERE id = {r})
                                        AND (SELECT last_event FROM reports WHERE id = {r})"
        ));
    }
    if let Some(scope) = q.scope {
        filters.push(format!("e.scope = {}", scope.code()));
    }
    if let Some(after) = q.after {
        let (t, i) = (args.add(after.time), args.add(after.id));
        filters.push(format!("(e.time, e.id) < ({t}, {i})"));
    }
    Some((filters.join(" AND "), args))
}

/// The events a query selects, newest first.
pub(super) fn query(c: &mut Client, q: &EventQuery, bases: &Bases) -> Result<Vec<StoredEvent>> {
    let Some((filters, mut args)) = filters(q) else { return Ok(Vec::new()) };
    let limit = args.add(n(q.limit as u64));
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS} WHERE {filters} ORDER BY e.time DESC, e.id DESC LIMIT {limit}"
    );
    let rows = c.query(&sql, &args.refs())?;
    decode(c, rows, bases)
}

/// Counts what a query selects (its limit aside) from the indexed columns, as they stream in.
pub(super) fn tally(c: &mut Client, q: &EventQuery) -> Result<Tally> {
    use postgres::fallible_iterator::FallibleIterator as _;
    let mut tally = Tally::default();
    let Some((filters, args)) = filters(q) else { return Ok(tally) };
    let sql = format!("SELECT e.type, e.source_asn, e.orgs, e.time FROM events e {EVENT_JOINS} WHERE {filters}");
    let mut rows = c.query_raw(&sql, args.refs())?;
    while let Some(row) = rows.next()? {
        let kind = row.get::<_, Option<i64>>(0).and_then(|k| u8::try_from(k).ok());
        let asn = row.get::<_, Option<i64>>(1).and_then(|a| u32::try_from(a).ok());
        tally.count(kind, asn, &row.get::<_, Option<Vec<i64>>>(2).unwrap_or_default(), row.get(3));
    }
    Ok(tally)
}

pub(super) fn by_id(c: &mut Client, id: i64, visible: &Visibility, bases: &Bases) -> Result<Option<StoredEvent>> {
    let mut args = Args::default();
    let id = args.add(id);
    let Some(allowed) = visibility(visible, &mut args) else { return Ok(None) };
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS} WHERE e.id = {id} AND {allowed}");
    let rows = c.query(&sql, &args.refs())?;
    Ok(decode(c, rows, bases)?.pop())
}

/// Events after `after` in id order, whoever may see them (for rerouting).
pub(super) fn after(c: &mut Client, after: i64, limit: usize, bases: &Bases) -> Result<Vec<StoredEvent>> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS} WHERE e.id > $1 ORDER BY e.id LIMIT $2");
    let rows = c.query(&sql, &[&after, &n(limit as u64)])?;
    decode(c, rows, bases)
}

/// A report's events of some classification types, after an event id, in id order, through the
/// id range its processing recorded.
pub(super) fn of_report(
    c: &mut Client,
    report: ReportId,
    types: &[ClassificationType],
    after: i64,
    limit: usize,
    bases: &Bases,
) -> Result<Vec<StoredEvent>> {
    let codes: Vec<i64> = types.iter().map(|&t| i64::from(type_code(t))).collect();
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS}
         WHERE e.id BETWEEN greatest($2::bigint + 1, r.first_event) AND r.last_event AND e.report_id = $1
           AND e.type = ANY($3)
         ORDER BY e.id LIMIT $4"
    );
    let rows = c.query(&sql, &[&report.0, &after, &codes, &n(limit as u64)])?;
    decode(c, rows, bases)
}

/// The events in an organization's networks from reports after `reports.0` up to `reports.1`,
/// in id order after `after`.
pub(super) fn new_events(
    c: &mut Client,
    org: OrgId,
    visible: &Visibility,
    reports: (i64, i64),
    after: i64,
    limit: usize,
    bases: &Bases,
) -> Result<Vec<StoredEvent>> {
    let range = c.query_one(
        "SELECT min(first_event), max(last_event) FROM reports WHERE id > $1 AND id <= $2",
        &[&reports.0, &reports.1],
    )?;
    let (Some(first), Some(last)) = (range.get::<_, Option<i64>>(0), range.get::<_, Option<i64>>(1)) else {
        return Ok(Vec::new());
    };
    let mut args = Args::default();
    let fixed = format!(
        "e.orgs @> ARRAY[{}::bigint] AND e.id BETWEEN {} AND {} AND e.report_id > {} AND e.report_id <= {}",
        args.add(org.0),
        args.add(first.max(after.saturating_add(1))),
        args.add(last),
        args.add(reports.0),
        args.add(reports.1)
    );
    let Some(allowed) = visibility(visible, &mut args) else { return Ok(Vec::new()) };
    let limit = args.add(n(limit as u64));
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS} WHERE {fixed} AND {allowed} ORDER BY e.id LIMIT {limit}"
    );
    let rows = c.query(&sql, &args.refs())?;
    decode(c, rows, bases)
}

/// A list of organizations as rows `o(org, i)`, `i` counting from 1; one row of none (NULL)
/// for an empty list, as the statistics count an event of no organization (migration4.sql).
fn each_org(list: &str) -> String {
    format!("unnest(CASE WHEN cardinality({list}) > 0 THEN {list} ELSE '{{NULL}}' END) WITH ORDINALITY AS o(org, i)")
}

pub(super) fn set_routing(c: &mut Client, events: &[Rerouted]) -> Result<()> {
    let mut tx = c.transaction()?;
    // The statistics move the event's counts from its old organizations to its new ones.
    let correct = tx.prepare(&format!(
        "INSERT INTO host_days (report_id, org, day, ip, type, family, tlp, asn, cc, events, org_events)
         SELECT e.report_id, m.org, e.hour / 24, e.source_ip, coalesce(e.type, -1), coalesce(e.family, ''), e.tlp,
                e.source_asn, e.source_cc, CASE WHEN m.i = 1 THEN m.n ELSE 0 END, m.n
         FROM events e, LATERAL (SELECT o.*, -1 AS n FROM {} UNION ALL SELECT o.*, 1 FROM {}) m
         WHERE e.id = $1 AND e.source_ip IS NOT NULL AND e.orgs IS DISTINCT FROM $2",
        each_org("e.orgs"),
        each_org("$2::bigint[]")
    ))?;
    let update = tx.prepare("UPDATE events SET orgs = $2, scope = $3 WHERE id = $1")?;
    for e in events {
        let orgs: Vec<i64> = e.routing.orgs.iter().map(|o| o.0).collect();
        let orgs = (!orgs.is_empty()).then_some(orgs);
        tx.execute(&correct, &[&e.id, &orgs])?;
        tx.execute(&update, &[&e.id, &orgs, &i64::from(e.routing.scope.code())])?;
    }
    tx.commit()?;
    Ok(())
}
