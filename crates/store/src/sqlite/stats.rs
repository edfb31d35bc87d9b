//! The statistics rollups (`host_days`, `host_orgs`): kept in step with the events table, and
//! counted from.

use std::collections::HashMap;

use farol_model::ClassificationType;
use rusqlite::types::{FromSql, FromSqlResult, ValueRef};
use rusqlite::{Connection, params, params_from_iter};

use crate::row::{IpKey, decode_orgs, type_code};
use crate::{Breakdown, HostCount, HostQuery, HostScope, Population, Result};

impl FromSql for IpKey {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(match value {
            ValueRef::Integer(v) => IpKey::V4(u32::try_from(v).unwrap_or_default()),
            ValueRef::Blob(b) => b.try_into().map_or(IpKey::None, IpKey::V6),
            _ => IpKey::None,
        })
    }
}

/// An event's place in `host_orgs`, less the organization: (day, address, type, family, TLP).
type HostKey = (i64, IpKey, i64, String, i64);

/// Changes to `host_orgs`: events to add (or, negative, to take away) per organization and key.
#[derive(Debug, Default)]
pub(super) struct OrgHosts(HashMap<(i64, HostKey), i64>);

impl OrgHosts {
    /// Counts one event under each of its organizations (`orgs` as stored).
    pub(super) fn add(&mut self, orgs: &[u8], key: &HostKey, delta: i64) {
        if key.1 == IpKey::None {
            return;
        }
        for org in decode_orgs(orgs) {
            *self.0.entry((org, key.clone())).or_default() += delta;
        }
    }

    pub(super) fn apply(self, tx: &Connection) -> Result<()> {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO host_orgs (org, day, ip, type, family, tlp, events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO UPDATE SET events = events + excluded.events",
        )?;
        let mut emptied = tx.prepare_cached(
            "DELETE FROM host_orgs WHERE org = ?1 AND day = ?2 AND ip = ?3 AND type = ?4 AND family = ?5 AND tlp = ?6
             AND events <= 0",
        )?;
        let mut changes: Vec<_> = self.0.into_iter().filter(|(_, d)| *d != 0).collect();
        changes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((org, (day, ip, kind, family, tlp)), delta) in changes {
            upsert.execute(params![org, day, ip, kind, family, tlp, delta])?;
            if delta < 0 {
                emptied.execute(params![org, day, ip, kind, family, tlp])?;
            }
        }
        Ok(())
    }
}

/// The columns of an event that place it in the rollups, as [`host_key`] reads them.
pub(super) const KEY_COLUMNS: &str =
    "hour / 24 AS day, source_ip AS ip, coalesce(type, -1) AS type, coalesce(family, '') AS family, tlp";

pub(super) fn host_key(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<HostKey> {
    Ok((row.get(at)?, row.get(at + 1)?, row.get(at + 2)?, row.get(at + 3)?, row.get(at + 4)?))
}

/// Counts the events with ids above `after` (a batch just written, or everything) into both
/// rollups.
pub(super) fn add_events(tx: &Connection, after: i64) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO host_days (day, ip, type, family, tlp, asn, cc, events)
         SELECT {KEY_COLUMNS}, max(source_asn), max(source_cc), count(*) FROM events
         WHERE id > ?1 AND source_ip <> x'' GROUP BY 1, 2, 3, 4, 5
         ON CONFLICT DO UPDATE SET events = events + excluded.events,
            asn = coalesce(excluded.asn, asn), cc = coalesce(excluded.cc, cc)"
    ))?
    .execute([after])?;
    let mut orgs = OrgHosts::default();
    let mut routed = tx.prepare_cached(&format!(
        "SELECT orgs, {KEY_COLUMNS} FROM events WHERE id > ?1 AND orgs IS NOT NULL AND source_ip <> x''"
    ))?;
    let mut rows = routed.query([after])?;
    while let Some(row) = rows.next()? {
        orgs.add(&row.get::<_, Vec<u8>>(0)?, &host_key(row, 1)?, 1);
    }
    orgs.apply(tx)
}

/// Takes a report's events (ids `first..=last`) out of both rollups, before they are deleted.
pub(super) fn remove_events(tx: &Connection, first: i64, last: i64, report: i64) -> Result<()> {
    tx.execute(
        &format!(
            "UPDATE host_days SET events = host_days.events - gone.n
             FROM (SELECT {KEY_COLUMNS}, count(*) AS n FROM events
                   WHERE id BETWEEN ?1 AND ?2 AND report_id = ?3 AND source_ip <> x'' GROUP BY 1, 2, 3, 4, 5) AS gone
             WHERE host_days.day = gone.day AND host_days.ip = gone.ip AND host_days.type = gone.type
               AND host_days.family = gone.family AND host_days.tlp = gone.tlp"
        ),
        params![first, last, report],
    )?;
    tx.execute(
        "DELETE FROM host_days WHERE day BETWEEN
            (SELECT min(hour) / 24 FROM events WHERE id BETWEEN ?1 AND ?2 AND report_id = ?3) AND
            (SELECT max(hour) / 24 FROM events WHERE id BETWEEN ?1 AND ?2 AND report_id = ?3)
         AND events <= 0",
        params![first, last, report],
    )?;
    let mut orgs = OrgHosts::default();
    let mut routed = tx.prepare_cached(&format!(
        "SELECT orgs, {KEY_COLUMNS} FROM events
         WHERE id BETWEEN ?1 AND ?2 AND report_id = ?3 AND orgs IS NOT NULL AND source_ip <> x''"
    ))?;
    let mut rows = routed.query(params![first, last, report])?;
    while let Some(row) = rows.next()? {
        orgs.add(&row.get::<_, Vec<u8>>(0)?, &host_key(row, 1)?, -1);
    }
    orgs.apply(tx)
}

/// The rollup and the conditions a query reads: `h` is `host_days`, `o` `host_orgs` when the
/// query needs organizations.
fn from_where(q: &HostQuery, by_org: bool) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let orgs = by_org || matches!(q.scope, HostScope::Orgs(_));
    let mut sql = String::from(if orgs {
        "FROM host_orgs o JOIN host_days h ON h.day = o.day AND h.ip = o.ip AND h.type = o.type AND h.family = o.family
           AND h.tlp = o.tlp"
    } else {
        "FROM host_days h"
    });
    let mut args = vec![Value::Integer(q.from_day), Value::Integer(q.to_day)];
    sql.push_str(if orgs { " WHERE o.day BETWEEN ?1 AND ?2" } else { " WHERE h.day BETWEEN ?1 AND ?2" });
    match &q.scope {
        HostScope::All => {}
        HostScope::Country(cc) => {
            args.push(Value::Text(cc.to_ascii_uppercase()));
            sql.push_str(&format!(" AND h.cc = ?{}", args.len()));
        }
        HostScope::Asn(asn) => {
            args.push(Value::Integer(i64::from(*asn)));
            sql.push_str(&format!(" AND h.asn = ?{}", args.len()));
        }
        HostScope::Orgs(ids) => {
            let list: Vec<String> = ids.iter().map(|o| o.0.to_string()).collect();
            sql.push_str(&format!(" AND o.org IN ({})", list.join(", ")));
        }
    }
    if !q.types.is_empty() {
        let codes: Vec<String> = q.types.iter().map(|&t| i64::from(type_code(t)).to_string()).collect();
        sql.push_str(&format!(" AND h.type IN ({})", codes.join(", ")));
    }
    if let Some(tlp) = q.max_tlp {
        sql.push_str(&format!(" AND h.tlp <= {}", tlp.code()));
    }
    if let Some(family) = &q.family {
        args.push(Value::Text(family.to_lowercase()));
        sql.push_str(&format!(" AND h.family = ?{}", args.len()));
    }
    (sql, args)
}

/// Distinct addresses, address-days and events over the query's whole period.
pub(super) fn hosts(conn: &Connection, q: &HostQuery) -> Result<HostCount> {
    Ok(count(conn, q, None)?.pop().unwrap_or_default())
}

/// The same per value of `by`: days in order, the rest the most addresses first.
pub(super) fn breakdown(conn: &Connection, q: &HostQuery, by: Breakdown) -> Result<Vec<HostCount>> {
    count(conn, q, Some(by))
}

fn count(conn: &Connection, q: &HostQuery, by: Option<Breakdown>) -> Result<Vec<HostCount>> {
    let (from, args) = from_where(q, by == Some(Breakdown::Org));
    let orgs = by == Some(Breakdown::Org) || matches!(q.scope, HostScope::Orgs(_));
    let events = if orgs { "o.events" } else { "h.events" };
    let key = match by {
        None => "''",
        Some(Breakdown::Day) => "h.day",
        Some(Breakdown::Country) => "coalesce(h.cc, '')",
        Some(Breakdown::Asn) => "coalesce(h.asn, '')",
        Some(Breakdown::Org) => "o.org",
        Some(Breakdown::Type) => "h.type",
        Some(Breakdown::Family) => "h.family",
    };
    let order = if by == Some(Breakdown::Day) { "1" } else { "2 DESC, 1" };
    // One row per key, day and address first: their number is the address-days.
    let sql = format!(
        "SELECT k, count(DISTINCT ip), count(*), sum(n) FROM
            (SELECT {key} AS k, h.day AS day, h.ip AS ip, sum({events}) AS n {from} GROUP BY 1, 2, 3)
         GROUP BY 1 ORDER BY {order}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        let key = match r.get_ref(0)? {
            ValueRef::Integer(v) if by == Some(Breakdown::Type) => {
                usize::try_from(v).ok().and_then(|i| ClassificationType::ALL.get(i)).map_or("", |t| t.as_str()).into()
            }
            ValueRef::Integer(v) => v.to_string(),
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            _ => String::new(),
        };
        let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.unsigned_abs()) };
        Ok(HostCount { key, hosts: n(1)?, host_days: n(2)?, events: n(3)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn add_population(conn: &Connection, rows: &[Population]) -> Result<usize> {
    let tx = conn.unchecked_transaction()?;
    let mut n = 0;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO population (scope, key, metric, valid_from, value) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO UPDATE SET value = excluded.value",
        )?;
        for p in rows {
            n += insert.execute(params![p.scope, p.key, p.metric, p.valid_from, p.value])?;
        }
    }
    tx.commit()?;
    Ok(n)
}

pub(super) fn population(conn: &Connection) -> Result<Vec<Population>> {
    let mut stmt = conn.prepare_cached(
        "SELECT scope, key, metric, valid_from, value FROM population ORDER BY scope, key, metric, valid_from",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Population { scope: r.get(0)?, key: r.get(1)?, metric: r.get(2)?, valid_from: r.get(3)?, value: r.get(4)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
