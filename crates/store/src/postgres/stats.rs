//! Statistics from the rollups (the writer keeps them, see `events.rs`), and the
//! denominators.

use postgres::Client;
use postgres::types::ToSql;

use crate::sql;
use crate::{Breakdown, HostCount, HostQuery, Population, Result};

pub(super) fn count(c: &mut Client, q: &HostQuery, by: Option<Breakdown>) -> Result<Vec<HostCount>> {
    let (text, params) = sql::count_sql(q, by, sql::Rollup::Indexed, |n| format!("${n}"));
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    Ok(c.query(&text, &refs)?.iter().map(|r| sql::host_count(by, r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

pub(super) fn add_population(c: &mut Client, rows: &[Population]) -> Result<usize> {
    let mut tx = c.transaction()?;
    let insert = tx.prepare(
        "INSERT INTO population (scope, key, metric, valid_from, value) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (scope, key, metric, valid_from) DO UPDATE SET value = excluded.value",
    )?;
    let mut n = 0;
    for p in rows {
        n += tx.execute(&insert, &[&p.scope, &p.key, &p.metric, &p.valid_from, &p.value])?;
    }
    tx.commit()?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

pub(super) fn population(c: &mut Client) -> Result<Vec<Population>> {
    let rows = c.query(
        "SELECT scope, key, metric, valid_from, value FROM population ORDER BY scope, key, metric, valid_from",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| Population { scope: r.get(0), key: r.get(1), metric: r.get(2), valid_from: r.get(3), value: r.get(4) })
        .collect())
}
