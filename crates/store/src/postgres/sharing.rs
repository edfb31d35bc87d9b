//! Communities and indicators.

use farol_model::indicator::{Community, Indicator};
use farol_model::org::OrgId;
use farol_model::{ReportId, Timestamp};
use postgres::types::ToSql;
use postgres::{Client, GenericClient, Transaction};

use super::conflict;
use crate::sql::{self, INDICATOR_COLUMNS, RawIndicator};
use crate::{Grant, IndicatorQuery, Result, Sighting, StoreError};

/// Indicator versions are handed out under this advisory lock, so that they commit in order.
const VERSIONS: i64 = 7_248_305;

/// Maps a foreign key violation (what it refers to is missing) to [`StoreError::Conflict`].
fn missing(e: postgres::Error, what: impl FnOnce() -> String) -> StoreError {
    if e.code() == Some(&postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
        StoreError::Conflict(what())
    } else {
        e.into()
    }
}

pub(super) fn add_community(c: &mut Client, community: &Community) -> Result<Community> {
    let mut tx = c.transaction()?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO communities (name, description) VALUES ($1, $2) RETURNING id",
            &[&community.name, &community.description],
        )
        .map_err(|e| conflict(e, || format!("a community named {:?} exists", community.name)))?
        .get(0);
    write_members(&mut tx, id, &community.members)?;
    tx.commit()?;
    Ok(Community { id, ..community.clone() })
}

pub(super) fn update_community(c: &mut Client, community: &Community) -> Result<()> {
    let mut tx = c.transaction()?;
    let n = tx
        .execute(
            "UPDATE communities SET name = $2, description = $3 WHERE id = $1",
            &[&community.id, &community.name, &community.description],
        )
        .map_err(|e| conflict(e, || format!("a community named {:?} exists", community.name)))?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("no community {}", community.id)));
    }
    write_members(&mut tx, community.id, &community.members)?;
    tx.commit()?;
    Ok(())
}

fn write_members(tx: &mut Transaction<'_>, id: i64, members: &[OrgId]) -> Result<()> {
    tx.execute("DELETE FROM community_members WHERE community_id = $1", &[&id])?;
    for m in members {
        tx.execute(
            "INSERT INTO community_members (community_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &m.0],
        )
        .map_err(|e| missing(e, || format!("no organization {m}")))?;
    }
    Ok(())
}

pub(super) fn communities(c: &mut Client) -> Result<Vec<Community>> {
    let rows = c.query(
        "SELECT id, name, description,
                array(SELECT org_id FROM community_members m WHERE m.community_id = c.id ORDER BY org_id)
         FROM communities c ORDER BY name",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| Community {
            id: r.get(0),
            name: r.get(1),
            description: r.get(2),
            members: r.get::<_, Vec<i64>>(3).into_iter().map(OrgId).collect(),
        })
        .collect())
}

/// Versions are unique and increase: the next is `now` or just after the newest. Takes the
/// lock that the transaction holds until it ends.
fn next_version(tx: &mut Transaction<'_>, now: Timestamp) -> Result<i64> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&VERSIONS])?;
    let newest: Option<i64> = tx.query_one("SELECT max(modified) FROM indicators", &[])?.get(0);
    Ok(newest.map_or(now.micros(), |m| (m + 1).max(now.micros())))
}

pub(super) fn add_sightings(c: &mut Client, report: ReportId, sightings: &[Sighting], now: Timestamp) -> Result<()> {
    let mut tx = c.transaction()?;
    let first = next_version(&mut tx, now)?;
    let upsert = tx.prepare(
        "INSERT INTO indicators AS i (kind, value, origin, category, family, tlp, distribution, community_id,
                                      confidence, valid_from, valid_until, first_seen, last_seen, created, modified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10, $12, $13, $13)
         ON CONFLICT (kind, value, origin) DO UPDATE SET
            category = excluded.category, family = coalesce(excluded.family, i.family),
            tlp = greatest(i.tlp, excluded.tlp), distribution = least(i.distribution, excluded.distribution),
            community_id = CASE WHEN excluded.distribution < i.distribution THEN excluded.community_id
                                ELSE i.community_id END,
            confidence = greatest(i.confidence, excluded.confidence),
            valid_from = least(i.valid_from, excluded.valid_from),
            valid_until = CASE WHEN i.valid_until IS NULL OR excluded.valid_until IS NULL THEN NULL
                               ELSE greatest(i.valid_until, excluded.valid_until) END,
            first_seen = least(i.first_seen, excluded.first_seen), last_seen = greatest(i.last_seen, excluded.last_seen),
            modified = excluded.modified
         RETURNING id",
    )?;
    let count = tx.prepare(
        "INSERT INTO indicator_sightings (indicator_id, report_id, count) VALUES ($1, $2, $3)
         ON CONFLICT (indicator_id, report_id) DO UPDATE SET count = excluded.count",
    )?;
    let total = tx.prepare(
        "UPDATE indicators SET sightings = (SELECT sum(count) FROM indicator_sightings WHERE indicator_id = $1)
         WHERE id = $1",
    )?;
    let org = tx.prepare(
        "INSERT INTO indicator_orgs (indicator_id, org_id) SELECT $1, id FROM orgs WHERE id = $2 ON CONFLICT DO NOTHING",
    )?;
    for (version, s) in (first..).zip(sightings) {
        let until = s.valid_for.map(|d| s.last_seen.micros().saturating_add(d));
        let id: i64 = tx
            .query_one(
                &upsert,
                &[
                    &s.kind.as_str(),
                    &s.value,
                    &s.origin.as_string(),
                    &s.category.as_str(),
                    &s.family,
                    &i64::from(s.tlp.code()),
                    &i64::from(s.distribution.code()),
                    &s.community,
                    &i64::from(s.confidence),
                    &s.first_seen.micros(),
                    &until,
                    &s.last_seen.micros(),
                    &version,
                ],
            )?
            .get(0);
        tx.execute(&count, &[&id, &report.0, &super::n(s.count)])?;
        tx.execute(&total, &[&id])?;
        for o in &s.orgs {
            tx.execute(&org, &[&id, &o.0])?;
        }
    }
    tx.execute("UPDATE indicator_mark SET report_id = greatest(report_id, $1)", &[&report.0])?;
    tx.commit()?;
    Ok(())
}

/// Processing a report again: what it showed is forgotten, and it is derived again.
pub(super) fn forget_report(tx: &mut Transaction<'_>, report: ReportId) -> Result<()> {
    tx.execute(
        "WITH gone AS (DELETE FROM indicator_sightings WHERE report_id = $1 RETURNING indicator_id)
         UPDATE indicators i SET sightings = coalesce(
             (SELECT sum(count) FROM indicator_sightings s WHERE s.indicator_id = i.id AND s.report_id <> $1), 0)
         WHERE id IN (SELECT indicator_id FROM gone)",
        &[&report.0],
    )?;
    tx.execute("UPDATE indicator_mark SET report_id = least(report_id, $1::bigint - 1)", &[&report.0])?;
    Ok(())
}

pub(super) fn put_indicator(c: &mut Client, i: &Indicator, now: Timestamp) -> Result<Indicator> {
    let mut tx = c.transaction()?;
    let version = next_version(&mut tx, now)?;
    let changed = tx
        .query_opt(
            "INSERT INTO indicators AS i (kind, value, origin, category, family, tlp, distribution, community_id,
                                          confidence, valid_from, valid_until, first_seen, last_seen, sightings,
                                          description, created, modified, revoked)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17)
             ON CONFLICT (kind, value, origin) DO UPDATE SET
                category = excluded.category, family = excluded.family, tlp = excluded.tlp,
                distribution = excluded.distribution, community_id = excluded.community_id,
                confidence = excluded.confidence, valid_from = excluded.valid_from, valid_until = excluded.valid_until,
                first_seen = excluded.first_seen, last_seen = excluded.last_seen, sightings = excluded.sightings,
                description = excluded.description, modified = excluded.modified, revoked = excluded.revoked
             WHERE (i.category, i.family, i.tlp, i.distribution, i.community_id, i.confidence, i.valid_from,
                    i.valid_until, i.first_seen, i.last_seen, i.sightings, i.description, i.revoked)
                   IS DISTINCT FROM (excluded.category, excluded.family, excluded.tlp, excluded.distribution,
                    excluded.community_id, excluded.confidence, excluded.valid_from, excluded.valid_until,
                    excluded.first_seen, excluded.last_seen, excluded.sightings, excluded.description, excluded.revoked)
             RETURNING id",
            &[
                &i.kind.as_str(),
                &i.value,
                &i.origin.as_string(),
                &i.category.as_str(),
                &i.family,
                &i64::from(i.tlp.code()),
                &i64::from(i.distribution.code()),
                &i.community,
                &i64::from(i.confidence),
                &i.valid_from.micros(),
                &i.valid_until.map(Timestamp::micros),
                &i.first_seen.micros(),
                &i.last_seen.micros(),
                &super::n(i.sightings),
                &i.description,
                &version,
                &i.revoked,
            ],
        )
        .map_err(|e| missing(e, || "the indicator's community does not exist".to_owned()))?;
    // Unchanged: the same version, unless its organizations changed.
    let id: i64 = match changed {
        Some(row) => row.get(0),
        None => tx
            .query_one(
                "SELECT id FROM indicators WHERE kind = $1 AND value = $2 AND origin = $3",
                &[&i.kind.as_str(), &i.value, &i.origin.as_string()],
            )?
            .get(0),
    };
    let orgs: Vec<i64> = tx
        .query_one("SELECT array(SELECT org_id FROM indicator_orgs WHERE indicator_id = $1 ORDER BY org_id)", &[&id])?
        .get(0);
    let mut wanted: Vec<i64> = i.orgs.iter().map(|o| o.0).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if orgs != wanted {
        tx.execute("DELETE FROM indicator_orgs WHERE indicator_id = $1", &[&id])?;
        for o in &wanted {
            tx.execute("INSERT INTO indicator_orgs (indicator_id, org_id) VALUES ($1, $2)", &[&id, o])
                .map_err(|e| missing(e, || format!("no organization {o}")))?;
        }
        tx.execute("UPDATE indicators SET modified = $2 WHERE id = $1", &[&id, &version])?;
    }
    let stored =
        read(&mut tx, &IndicatorQuery { grants: vec![Grant::All], ids: vec![id], limit: 1, ..Default::default() })?;
    tx.commit()?;
    stored.into_iter().next().ok_or_else(|| StoreError::NotFound(format!("no indicator {id}")))
}

pub(super) fn read(c: &mut impl GenericClient, q: &IndicatorQuery) -> Result<Vec<Indicator>> {
    let Some((rest, params)) = sql::indicator_sql(q, |n| format!("${n}")) else { return Ok(Vec::new()) };
    let text = format!(
        "SELECT {INDICATOR_COLUMNS},
                array(SELECT org_id FROM indicator_orgs o WHERE o.indicator_id = i.id ORDER BY org_id)
         FROM indicators i {rest}"
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    c.query(&text, &refs)?
        .iter()
        .map(|r| {
            RawIndicator {
                id: r.get(0),
                kind: r.get(1),
                value: r.get(2),
                origin: r.get(3),
                category: r.get(4),
                family: r.get(5),
                tlp: r.get(6),
                distribution: r.get(7),
                community: r.get(8),
                confidence: r.get(9),
                valid_from: r.get(10),
                valid_until: r.get(11),
                first_seen: r.get(12),
                last_seen: r.get(13),
                sightings: r.get(14),
                description: r.get(15),
                created: r.get(16),
                modified: r.get(17),
                revoked: r.get(18),
                orgs: r.get(19),
            }
            .decode()
        })
        .collect()
}
