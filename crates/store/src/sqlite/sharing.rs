//! Communities and indicators.

use farol_model::indicator::{Community, Indicator};
use farol_model::org::OrgId;
use farol_model::{ClassificationType, ReportId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params, params_from_iter};

use super::constituency::conflict;
use super::events::{Bases, EVENT_COLUMNS, EVENT_JOINS, decode, stored_event};
use crate::row::type_code;
use crate::sql::{INDICATOR_COLUMNS, RawIndicator};
use crate::{Grant, IndicatorQuery, Result, Sighting, StoreError, StoredEvent};

pub(super) fn add_community(conn: &Connection, c: &Community) -> Result<Community> {
    let tx = conn.unchecked_transaction()?;
    tx.execute("INSERT INTO communities (name, description) VALUES (?1, ?2)", params![c.name, c.description])
        .map_err(|e| conflict(e, || format!("a community named {:?} exists", c.name)))?;
    let id = tx.last_insert_rowid();
    write_members(&tx, id, &c.members)?;
    tx.commit()?;
    Ok(Community { id, ..c.clone() })
}

pub(super) fn update_community(conn: &Connection, c: &Community) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    let n = tx
        .execute(
            "UPDATE communities SET name = ?2, description = ?3 WHERE id = ?1",
            params![c.id, c.name, c.description],
        )
        .map_err(|e| conflict(e, || format!("a community named {:?} exists", c.name)))?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no community {}", c.id)));
    }
    write_members(&tx, c.id, &c.members)?;
    tx.commit()?;
    Ok(())
}

fn write_members(tx: &Connection, id: i64, members: &[OrgId]) -> Result<()> {
    tx.execute("DELETE FROM community_members WHERE community_id = ?1", [id])?;
    let mut add =
        tx.prepare_cached("INSERT OR IGNORE INTO community_members (community_id, org_id) VALUES (?1, ?2)")?;
    for m in members {
        add.execute([id, m.0]).map_err(|e| conflict(e, || format!("no organization {m}")))?;
    }
    Ok(())
}

pub(super) fn remove_community(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn.execute("DELETE FROM communities WHERE id = ?1", [id])? > 0)
}

pub(super) fn communities(conn: &Connection) -> Result<Vec<Community>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, description FROM communities ORDER BY name")?;
    let mut all = stmt
        .query_map([], |r| {
            Ok(Community { id: r.get(0)?, name: r.get(1)?, description: r.get(2)?, members: Vec::new() })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut members =
        conn.prepare_cached("SELECT org_id FROM community_members WHERE community_id = ?1 ORDER BY org_id")?;
    for c in &mut all {
        c.members = members.query_map([c.id], |r| Ok(OrgId(r.get(0)?)))?.collect::<rusqlite::Result<_>>()?;
    }
    Ok(all)
}

pub(super) fn indicator_mark(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT report_id FROM indicator_mark", [], |r| r.get(0))?)
}

/// Versions are unique and increase: the next is `now` or just after the newest.
fn next_version(tx: &Connection, now: Timestamp) -> Result<i64> {
    let newest: Option<i64> = tx.query_row("SELECT max(modified) FROM indicators", [], |r| r.get(0))?;
    Ok(newest.map_or(now.micros(), |m| (m + 1).max(now.micros())))
}

pub(super) fn add_sightings(conn: &Connection, report: ReportId, sightings: &[Sighting], now: Timestamp) -> Result<()> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let first = next_version(&tx, now)?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO indicators (kind, value, origin, category, family, tlp, distribution, community_id, confidence,
                                 valid_from, valid_until, first_seen, last_seen, created, modified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10, ?12, ?13, ?13)
         ON CONFLICT (kind, value, origin) DO UPDATE SET
            category = excluded.category, family = coalesce(excluded.family, family),
            tlp = max(tlp, excluded.tlp), distribution = min(distribution, excluded.distribution),
            community_id = CASE WHEN excluded.distribution < distribution THEN excluded.community_id ELSE community_id END,
            confidence = max(confidence, excluded.confidence),
            valid_from = min(valid_from, excluded.valid_from),
            valid_until = CASE WHEN valid_until IS NULL OR excluded.valid_until IS NULL THEN NULL
                               ELSE max(valid_until, excluded.valid_until) END,
            first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen),
            modified = excluded.modified
         RETURNING id",
    )?;
    let mut count = tx.prepare_cached(
        "INSERT INTO indicator_sightings (indicator_id, report_id, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (indicator_id, report_id) DO UPDATE SET count = excluded.count",
    )?;
    let mut total = tx.prepare_cached(
        "UPDATE indicators SET sightings = (SELECT sum(count) FROM indicator_sightings WHERE indicator_id = ?1) WHERE id = ?1",
    )?;
    let mut org = tx.prepare_cached(
        "INSERT OR IGNORE INTO indicator_orgs (indicator_id, org_id) SELECT ?1, id FROM orgs WHERE id = ?2",
    )?;
    for (version, s) in (first..).zip(sightings) {
        let until = s.valid_for.map(|d| s.last_seen.micros().saturating_add(d));
        let id: i64 = upsert.query_row(
            params![
                s.kind.as_str(),
                s.value,
                s.origin.as_string(),
                s.category.as_str(),
                s.family,
                s.tlp.code(),
                s.distribution.code(),
                s.community,
                s.confidence,
                s.first_seen.micros(),
                until,
                s.last_seen.micros(),
                version,
            ],
            |r| r.get(0),
        )?;
        count.execute(params![id, report.0, i64::try_from(s.count).unwrap_or(i64::MAX)])?;
        total.execute([id])?;
        for o in &s.orgs {
            org.execute([id, o.0])?;
        }
    }
    tx.execute("UPDATE indicator_mark SET report_id = max(report_id, ?1)", [report.0])?;
    drop((upsert, count, total, org));
    tx.commit()?;
    Ok(())
}

/// Processing a report again: what it showed is forgotten, and it is derived again.
pub(super) fn forget_report(tx: &Connection, report: ReportId) -> Result<()> {
    let touched: Vec<i64> = tx
        .prepare_cached("SELECT indicator_id FROM indicator_sightings WHERE report_id = ?1")?
        .query_map([report.0], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    tx.execute("DELETE FROM indicator_sightings WHERE report_id = ?1", [report.0])?;
    let mut total = tx.prepare_cached(
        "UPDATE indicators SET sightings = coalesce((SELECT sum(count) FROM indicator_sightings WHERE indicator_id = ?1), 0)
         WHERE id = ?1",
    )?;
    for id in touched {
        total.execute([id])?;
    }
    tx.execute("UPDATE indicator_mark SET report_id = min(report_id, ?1 - 1)", [report.0])?;
    Ok(())
}

pub(super) fn put_indicator(conn: &Connection, i: &Indicator, now: Timestamp) -> Result<Indicator> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let version = next_version(&tx, now)?;
    let changed: Option<i64> = tx
        .query_row(
            "INSERT INTO indicators (kind, value, origin, category, family, tlp, distribution, community_id, confidence,
                                     valid_from, valid_until, first_seen, last_seen, sightings, description, created,
                                     modified, revoked)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, ?17)
             ON CONFLICT (kind, value, origin) DO UPDATE SET
                category = excluded.category, family = excluded.family, tlp = excluded.tlp,
                distribution = excluded.distribution, community_id = excluded.community_id,
                confidence = excluded.confidence, valid_from = excluded.valid_from, valid_until = excluded.valid_until,
                first_seen = excluded.first_seen, last_seen = excluded.last_seen, sightings = excluded.sightings,
                description = excluded.description, modified = excluded.modified, revoked = excluded.revoked
             WHERE (category, family, tlp, distribution, community_id, confidence, valid_from, valid_until, first_seen,
                    last_seen, sightings, description, revoked)
                   IS NOT (excluded.category, excluded.family, excluded.tlp, excluded.distribution, excluded.community_id,
                    excluded.confidence, excluded.valid_from, excluded.valid_until, excluded.first_seen,
                    excluded.last_seen, excluded.sightings, excluded.description, excluded.revoked)
             RETURNING id",
            params![
                i.kind.as_str(),
                i.value,
                i.origin.as_string(),
                i.category.as_str(),
                i.family,
                i.tlp.code(),
                i.distribution.code(),
                i.community,
                i.confidence,
                i.valid_from.micros(),
                i.valid_until.map(Timestamp::micros),
                i.first_seen.micros(),
                i.last_seen.micros(),
                i64::try_from(i.sightings).unwrap_or(i64::MAX),
                i.description,
                version,
                i.revoked,
            ],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| conflict(e, || "the indicator's community or organizations do not exist".to_owned()))?;
    // Unchanged: the same version, unless its organizations changed.
    let id: i64 = match changed {
        Some(id) => id,
        None => tx.query_row(
            "SELECT id FROM indicators WHERE kind = ?1 AND value = ?2 AND origin = ?3",
            params![i.kind.as_str(), i.value, i.origin.as_string()],
            |r| r.get(0),
        )?,
    };
    let mut orgs: Vec<i64> = tx
        .prepare_cached("SELECT org_id FROM indicator_orgs WHERE indicator_id = ?1")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    orgs.sort_unstable();
    let mut wanted: Vec<i64> = i.orgs.iter().map(|o| o.0).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if orgs != wanted {
        tx.execute("DELETE FROM indicator_orgs WHERE indicator_id = ?1", [id])?;
        for o in &wanted {
            tx.execute("INSERT INTO indicator_orgs (indicator_id, org_id) VALUES (?1, ?2)", [id, *o])
                .map_err(|e| conflict(e, || format!("no organization {o}")))?;
        }
        tx.execute("UPDATE indicators SET modified = ?2 WHERE id = ?1", [id, version])?;
    }
    let stored =
        read(&tx, &IndicatorQuery { grants: vec![Grant::All], ids: vec![id], limit: 1, ..Default::default() })?;
    tx.commit()?;
    stored.into_iter().next().ok_or_else(|| StoreError::NotFound(format!("no indicator {id}")))
}

pub(super) fn read(conn: &Connection, q: &IndicatorQuery) -> Result<Vec<Indicator>> {
    let Some((rest, params)) = crate::sql::indicator_sql(q, |n| format!("?{n}")) else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INDICATOR_COLUMNS}, (SELECT group_concat(org_id) FROM indicator_orgs o WHERE o.indicator_id = i.id)
         FROM indicators i {rest}"
    ))?;
    let mut rows = stmt.query(params_from_iter(params.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let orgs: Option<String> = r.get(19)?;
        let raw = RawIndicator {
            id: r.get(0)?,
            kind: r.get(1)?,
            value: r.get(2)?,
            origin: r.get(3)?,
            category: r.get(4)?,
            family: r.get(5)?,
            tlp: r.get(6)?,
            distribution: r.get(7)?,
            community: r.get(8)?,
            confidence: r.get(9)?,
            valid_from: r.get(10)?,
            valid_until: r.get(11)?,
            first_seen: r.get(12)?,
            last_seen: r.get(13)?,
            sightings: r.get(14)?,
            description: r.get(15)?,
            created: r.get(16)?,
            modified: r.get(17)?,
            revoked: r.get(18)?,
            orgs: orgs.iter().flat_map(|s| s.split(',')).filter_map(|s| s.parse().ok()).collect(),
        };
        out.push(raw.decode()?);
    }
    Ok(out)
}

/// A report's events of some classification types, after an event id, in id order: through
/// the id range its processing recorded, decoding only the events of those types.
pub(super) fn report_events(
    conn: &Connection,
    report: ReportId,
    types: &[ClassificationType],
    after: i64,
    limit: usize,
    bases: &Bases,
) -> Result<Vec<StoredEvent>> {
    // Type codes are small integers of our own: safe to write into the SQL text.
    let codes = types.iter().map(|&t| type_code(t).to_string()).collect::<Vec<_>>().join(",");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e NOT INDEXED {EVENT_JOINS}
         WHERE e.id BETWEEN max(?2 + 1, (SELECT first_event FROM reports WHERE id = ?1))
                        AND (SELECT last_event FROM reports WHERE id = ?1)
           AND e.report_id = ?1 AND e.type IN ({codes})
         ORDER BY e.id LIMIT ?3"
    ))?;
    let raws = stmt
        .query_map(params![report.0, after, i64::try_from(limit).unwrap_or(i64::MAX)], stored_event)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    raws.into_iter().map(|r| decode(conn, r, bases)).collect()
}
