//! The statistics rollup (`host_days`): kept in step with the events table, and counted from.

use std::collections::HashMap;

use compact_str::CompactString;
use rusqlite::types::{FromSql, FromSqlResult, ValueRef};
use rusqlite::{Connection, ToSql, params, params_from_iter};

use crate::Row;
use crate::row::{IpKey, decode_orgs};
use crate::{Breakdown, HostCount, HostQuery, Population, Result};

impl FromSql for IpKey {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(match value {
            ValueRef::Integer(v) => IpKey::V4(u32::try_from(v).unwrap_or_default()),
            ValueRef::Blob(b) => b.try_into().map_or(IpKey::None, IpKey::V6),
            _ => IpKey::None,
        })
    }
}

/// A rollup row's key: (day, address, classification type, family (its index among the
/// tally's), TLP), small so that a tally of a day's hosts stays small.
type HostKey = (i32, IpKey, i16, u32, u8);

/// A key's events (negative: taken away) as the whole counts them and as its organization
/// does, AS and country.
#[derive(Debug, Clone, Copy, Default)]
struct Count {
    events: i64,
    org_events: i64,
    asn: Option<u32>,
    cc: Option<[u8; 2]>,
}

impl Count {
    fn bump(&mut self, other: Count) {
        self.events += other.events;
        self.org_events += other.org_events;
        self.asn = self.asn.or(other.asn);
        self.cc = self.cc.or(other.cc);
    }
}

/// What one report adds to the rollup (or, negative, takes away), grouped: events per
/// organization (0 for none) and key.
#[derive(Debug, Default)]
pub(super) struct Tally {
    families: Vec<CompactString>,
    family_ids: foldhash::HashMap<CompactString, u32>,
    keys: foldhash::HashMap<(i64, HostKey), Count>,
}

/// Rollup rows per INSERT statement.
const ROWS_PER_INSERT: usize = 64;

fn cc_of(cc: Option<&str>) -> Option<[u8; 2]> {
    cc.and_then(|c| c.as_bytes().try_into().ok())
}

impl Tally {
    /// How many rows it would write.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    fn family(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.family_ids.get(name) {
            return i;
        }
        let i = u32::try_from(self.families.len()).unwrap_or(u32::MAX);
        self.families.push(name.into());
        self.family_ids.insert(name.into(), i);
        i
    }

    /// Adds another tally of the same report.
    pub(super) fn merge(&mut self, other: Tally) {
        let ids: Vec<u32> = other.families.iter().map(|f| self.family(f)).collect();
        for ((org, k), c) in other.keys {
            self.keys.entry((org, (k.0, k.1, k.2, ids[k.3 as usize], k.4))).or_default().bump(c);
        }
    }

    /// The key of an event with a source address.
    fn key(&mut self, day: i64, ip: IpKey, kind: i64, family: &str, tlp: i64) -> Option<HostKey> {
        (ip != IpKey::None).then(|| {
            let day = i32::try_from(day).unwrap_or_default();
            (day, ip, i16::try_from(kind).unwrap_or(-1), self.family(family), u8::try_from(tlp).unwrap_or(u8::MAX))
        })
    }

    /// Counts `n` events of `key` under each of `orgs` and, once, in the whole: in the row of
    /// the first organization, or of none when there is none.
    fn count(&mut self, key: HostKey, asn: Option<u32>, cc: Option<[u8; 2]>, orgs: &[i64], n: i64) {
        let none = [0];
        let orgs = if orgs.is_empty() { &none[..] } else { orgs };
        for (i, &org) in orgs.iter().enumerate() {
            let events = if i == 0 { n } else { 0 };
            self.keys.entry((org, key)).or_default().bump(Count { events, org_events: n, asn, cc });
        }
    }

    /// One new event, as the writer has it.
    pub(super) fn add_row(&mut self, r: &Row) {
        let family = r.family.as_deref().unwrap_or_default();
        let kind = r.kind.map_or(-1, i64::from);
        if let Some(key) = self.key(r.hour.div_euclid(24), r.source_ip, kind, family, i64::from(r.tlp)) {
            self.count(key, r.source_asn, cc_of(r.source_cc.as_deref()), &r.orgs, 1);
        }
    }

    /// One stored event, read with [`EVENT_KEY`] from column `at` on, counted `n` times under
    /// `orgs` (its own when `None`).
    fn add_stored(&mut self, row: &rusqlite::Row<'_>, at: usize, n: i64, orgs: Option<&[i64]>) -> rusqlite::Result<()> {
        let family: String = row.get(at + 3)?;
        let Some(key) = self.key(row.get(at)?, row.get(at + 1)?, row.get(at + 2)?, &family, row.get(at + 4)?) else {
            return Ok(());
        };
        let own = decode_orgs(&row.get::<_, Option<Vec<u8>>>(at + 7)?.unwrap_or_default());
        let cc = cc_of(row.get::<_, Option<String>>(at + 6)?.as_deref());
        self.count(key, row.get(at + 5)?, cc, orgs.unwrap_or(&own), n);
        Ok(())
    }

    /// Appends the tally's rows, sorted by organization and day, and a run for each
    /// organization's rows of a day (consecutive rowids), marked with `report`: the rows need
    /// no index of their own, and their inserts all land at the table's end.
    pub(super) fn write(self, tx: &Connection, report: i64) -> Result<()> {
        let mut rows: Vec<_> = self.keys.into_iter().filter(|(_, c)| c.events != 0 || c.org_events != 0).collect();
        rows.sort_unstable_by_key(|&((org, (day, ..)), _)| (org, day));
        // SQLite gives each row the rowid after the largest.
        let before: i64 = tx.query_row("SELECT coalesce(max(rowid), 0) FROM host_days", [], |r| r.get(0))?;
        let into = "host_days (report_id, org, day, ip, type, family, tlp, asn, cc, events, org_events)";
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = super::insert_many("FAIL", into, chunk.len());
            let text: Vec<(Option<i64>, &str, Option<&str>)> = chunk
                .iter()
                .map(|((org, k), c)| {
                    (
                        (*org != 0).then_some(*org),
                        self.families[k.3 as usize].as_str(),
                        c.cc.as_ref().and_then(|cc| std::str::from_utf8(cc).ok()),
                    )
                })
                .collect();
            let mut values: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 11);
            for (((_, (day, ip, kind, _, tlp)), c), (org, family, cc)) in chunk.iter().zip(&text) {
                values.extend([&report as &dyn ToSql, org, day, ip, kind, family, tlp, &c.asn, cc]);
                values.extend([&c.events as &dyn ToSql, &c.org_events]);
            }
            tx.prepare_cached(&sql)?.execute(params_from_iter(values))?;
        }
        let runs = super::runs(rows.iter().zip(before + 1..).map(|(&((org, (day, ..)), _), id)| ((org, day), id)));
        let mut insert = tx.prepare_cached(
            "INSERT OR FAIL INTO host_day_runs (report_id, org, day, first_id, last_id) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for ((org, day), first, last) in runs {
            insert.execute(params![report, (org != 0).then_some(org), day, first, last])?;
        }
        Ok(())
    }
}

/// The rollup rows of the runs that `runs` (a condition on `host_day_runs r`) selects.
pub(super) fn rows_of(runs: &str) -> String {
    format!("SELECT h.rowid FROM {} WHERE {runs}", crate::sql::RUN_ROWS)
}

/// The columns [`Tally::add_stored`] reads from `events`.
const EVENT_KEY: &str =
    "hour / 24, source_ip, coalesce(type, -1), coalesce(family, ''), tlp, source_asn, source_cc, orgs";

/// The new events of a batch (ids above `after`), read back: when the batch held duplicates,
/// only the events inserted count.
pub(super) fn inserted(tx: &Connection, after: i64) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut stmt = tx.prepare_cached(&format!("SELECT {EVENT_KEY} FROM events WHERE id > ?1"))?;
    let mut rows = stmt.query([after])?;
    while let Some(row) = rows.next()? {
        tally.add_stored(row, 0, 1, None)?;
    }
    Ok(tally)
}

/// Takes a report's rows out of the rollup (before its events are deleted).
pub(super) fn forget_report(tx: &Connection, report: i64) -> Result<()> {
    tx.execute(&format!("DELETE FROM host_days WHERE rowid IN ({})", rows_of("r.report_id = ?1")), [report])?;
    tx.execute("DELETE FROM host_day_runs WHERE report_id = ?1", [report])?;
    Ok(())
}

/// Moves events' counts from their old organizations to their new ones: (event id, new
/// organizations as stored), before the events are updated.
pub(super) fn reroute(tx: &Connection, events: &[(i64, Option<Vec<u8>>)]) -> Result<()> {
    let mut per_report: HashMap<i64, Tally> = HashMap::new();
    let mut stmt = tx.prepare_cached(&format!("SELECT report_id, {EVENT_KEY} FROM events WHERE id = ?1"))?;
    for (id, new) in events {
        let mut rows = stmt.query([id])?;
        if let Some(row) = rows.next()? {
            let tally = per_report.entry(row.get(0)?).or_default();
            tally.add_stored(row, 1, -1, None)?;
            tally.add_stored(row, 1, 1, Some(&decode_orgs(new.as_deref().unwrap_or_default())))?;
        }
    }
    for (report, tally) in per_report {
        tally.write(tx, report)?;
    }
    Ok(())
}

/// Counts every stored event: the rollups of a store that had none.
pub(super) fn count_all(tx: &Connection) -> Result<()> {
    let mut per_report: HashMap<i64, Tally> = HashMap::new();
    let mut stmt = tx.prepare(&format!("SELECT report_id, {EVENT_KEY} FROM events"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        per_report.entry(row.get(0)?).or_default().add_stored(row, 1, 1, None)?;
    }
    for (report, tally) in per_report {
        tally.write(tx, report)?;
    }
    Ok(())
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
    let (sql, params) = crate::sql::count_sql(q, by, crate::sql::Rollup::Runs, |n| format!("?{n}"));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params.iter()), |r| {
        Ok(crate::sql::host_count(by, r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use farol_model::org::OrgId;

    use super::*;
    use crate::HostScope;

    /// Asked of some days, or of some organizations' days, the rollup is read through the runs'
    /// indexes, then by rowid: never a scan of the rollup.
    #[test]
    fn the_rollup_is_read_run_by_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(&dir.path().join("farol.db")).unwrap();
        for (scope, by, index) in [
            (HostScope::All, None, "host_day_runs_day"),
            (HostScope::All, Some(Breakdown::Org), "host_day_runs_day"),
            (HostScope::Orgs(vec![OrgId(1), OrgId(2)]), None, "host_day_runs_org"),
            (HostScope::Country("PT".into()), Some(Breakdown::Day), "host_day_runs_day"),
            (HostScope::Asn(64500), None, "host_day_runs_day"),
        ] {
            let q = HostQuery { scope, from_day: 20_000, to_day: 20_006, types: vec![], family: None, max_tlp: None };
            let (sql, params) = crate::sql::count_sql(&q, by, crate::sql::Rollup::Runs, |n| format!("?{n}"));
            let steps = store.query_plan(&sql, params_from_iter(params.iter()));
            let reads: Vec<&String> =
                steps.iter().filter(|s| s.starts_with("SEARCH") || s.starts_with("SCAN")).collect();
            assert!(reads[0].starts_with(&format!("SEARCH r USING INDEX {index}")), "{steps:?}");
            assert!(reads[1].starts_with("SEARCH h USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{steps:?}");
        }
    }
}
