//! SQL that both backends run: the statistics questions (which rows of the rollup, which of
//! its counts, how the answer is grouped) and which indicators a query may read. Only
//! placeholders differ (`?1` in SQLite, `$1` in PostgreSQL).

use farol_model::indicator::{Indicator, IndicatorKind, Origin};
use farol_model::org::{Distribution, OrgId};
use farol_model::{ClassificationType, Timestamp, Tlp};
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::row::type_code;
use crate::{Breakdown, Grant, HostCount, HostQuery, HostScope, IndicatorQuery, Result, StoreError};

/// A parameter of a statement.
#[derive(Debug)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Int(v) => rusqlite::ToSql::to_sql(v),
            Param::Text(t) => rusqlite::ToSql::to_sql(t),
        }
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Int(v) => v.to_sql(ty, out),
            Param::Text(t) => t.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <String as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// A statement's parameters, numbered as they are added.
pub(crate) struct Params {
    list: Vec<Param>,
    placeholder: fn(usize) -> String,
}

impl Params {
    pub(crate) fn new(placeholder: fn(usize) -> String) -> Params {
        Params { list: Vec::new(), placeholder }
    }

    /// Adds a parameter; returns its placeholder.
    pub(crate) fn add(&mut self, p: Param) -> String {
        self.list.push(p);
        (self.placeholder)(self.list.len())
    }

    pub(crate) fn into_list(self) -> Vec<Param> {
        self.list
    }
}

/// How [`count_sql`] finds the statistics rollup's rows of some days or organizations.
#[derive(Clone, Copy)]
pub(crate) enum Rollup {
    /// Through the rollup's own indexes (PostgreSQL).
    Indexed,
    /// Through the runs of rowids that `host_day_runs` keeps by day and organization (SQLite).
    Runs,
}

/// The SQLite rollup's rows joined to their runs (`host_day_runs r`, `host_days h`). NOT
/// INDEXED: SQLite would otherwise build an index on a column asked of the rows (a country, an
/// AS) and search it for every run (minutes instead of a tenth of a second on the demo's store).
pub(crate) const RUN_ROWS: &str =
    "host_day_runs r CROSS JOIN host_days h NOT INDEXED ON h.rowid BETWEEN r.first_id AND r.last_id";

/// The statement that counts `q`, by `by` (one row with an empty key for none), with its
/// placeholders as `placeholder` writes the n-th (from 1), and its parameters. Each row is the
/// key as text, distinct addresses, address-days and events.
pub(crate) fn count_sql(
    q: &HostQuery,
    by: Option<Breakdown>,
    rollup: Rollup,
    placeholder: fn(usize) -> String,
) -> (String, Vec<Param>) {
    let orgs = by == Some(Breakdown::Org) || matches!(q.scope, HostScope::Orgs(_));
    let mut params = Params::new(placeholder);
    // A run's rows have its day and organization, so both are asked of the run.
    let (from, at) = match rollup {
        Rollup::Indexed => ("host_days h", "h"),
        Rollup::Runs => (RUN_ROWS, "r"),
    };
    // Asked by organization, each row counts its events under its own; otherwise each event
    // counts once, in the row of its first organization (or of none).
    let (events, only) =
        if orgs { ("org_events", format!(" AND {at}.org IS NOT NULL")) } else { ("events", String::new()) };
    let mut rows = format!(
        "FROM {from} WHERE {at}.day BETWEEN {} AND {}{only}",
        params.add(Param::Int(q.from_day)),
        params.add(Param::Int(q.to_day))
    );
    match &q.scope {
        HostScope::All => {}
        HostScope::Country(cc) => {
            rows.push_str(&format!(" AND h.cc = {}", params.add(Param::Text(cc.to_ascii_uppercase()))))
        }
        HostScope::Asn(asn) => rows.push_str(&format!(" AND h.asn = {}", params.add(Param::Int(i64::from(*asn))))),
        HostScope::Orgs(ids) => {
            let list: Vec<String> = ids.iter().map(|o| o.0.to_string()).collect();
            rows.push_str(&format!(" AND {at}.org IN ({})", list.join(", ")));
        }
    }
    if let Some(family) = &q.family {
        rows.push_str(&format!(" AND h.family = {}", params.add(Param::Text(family.to_lowercase()))));
    }
    if !q.types.is_empty() {
        let codes: Vec<String> = q.types.iter().map(|&t| i64::from(type_code(t)).to_string()).collect();
        rows.push_str(&format!(" AND h.type IN ({})", codes.join(", ")));
    }
    if let Some(tlp) = q.max_tlp {
        rows.push_str(&format!(" AND h.tlp <= {}", tlp.code()));
    }
    let key = match by {
        None => "''",
        Some(Breakdown::Day) => "CAST(h.day AS TEXT)",
        Some(Breakdown::Country) => "coalesce(h.cc, '')",
        Some(Breakdown::Asn) => "coalesce(CAST(h.asn AS TEXT), '')",
        Some(Breakdown::Org) => "CAST(h.org AS TEXT)",
        Some(Breakdown::Type) => "CAST(h.type AS TEXT)",
        Some(Breakdown::Family) => "h.family",
    };
    let order = if by == Some(Breakdown::Day) { "min(day)" } else { "2 DESC, 1" };
    // One row per key, day and address first (those whose events sum above zero: rerouting
    // appends corrections): their number is the address-days.
    let sql = format!(
        "SELECT k, count(DISTINCT ip), count(*), CAST(sum(n) AS BIGINT) FROM
            (SELECT {key} AS k, h.day AS day, h.ip AS ip, sum(h.{events}) AS n {rows}
             GROUP BY 1, 2, 3 HAVING sum(h.{events}) > 0) AS g
         GROUP BY 1 ORDER BY {order}"
    );
    (sql, params.into_list())
}

/// A row of [`count_sql`]'s answer.
pub(crate) fn host_count(by: Option<Breakdown>, key: String, hosts: i64, host_days: i64, events: i64) -> HostCount {
    let key = match by {
        Some(Breakdown::Type) => key
            .parse::<usize>()
            .ok()
            .and_then(|i| ClassificationType::ALL.get(i))
            .map_or(String::new(), |t| t.as_str().to_owned()),
        _ => key,
    };
    HostCount { key, hosts: hosts.unsigned_abs(), host_days: host_days.unsigned_abs(), events: events.unsigned_abs() }
}

/// What an indicator query may read and how (after `FROM indicators i`): its conditions, order
/// and limit; `None` when no grant allows anything.
pub(crate) fn indicator_sql(q: &IndicatorQuery, placeholder: fn(usize) -> String) -> Option<(String, Vec<Param>)> {
    if q.grants.is_empty() {
        return None;
    }
    let mut params = Params::new(placeholder);
    let mut int = |v: i64| params.add(Param::Int(v));
    let allowed: Vec<String> = q
        .grants
        .iter()
        .map(|g| match *g {
            Grant::All => "1 = 1".to_owned(),
            Grant::Inside(org, tlp) => format!(
                "(i.distribution >= {} AND i.tlp <= {} AND EXISTS (SELECT 1 FROM indicator_orgs o
                  WHERE o.org_id = {} AND o.indicator_id = i.id))",
                Distribution::Affected.code(),
                int(tlp.code().into()),
                int(org.0)
            ),
            Grant::Community(c, tlp) => format!(
                "(i.distribution = {} AND i.community_id = {} AND i.tlp <= {})",
                Distribution::Community.code(),
                int(c),
                int(tlp.code().into())
            ),
            Grant::Reach(d, tlp) => {
                format!("(i.distribution >= {} AND i.tlp <= {})", int(d.code().into()), int(tlp.code().into()))
            }
        })
        .collect();
    let mut conds = vec![format!("({})", allowed.join(" OR "))];
    if !q.kinds.is_empty() {
        let list: Vec<String> = q.kinds.iter().map(|k| params.add(Param::Text(k.as_str().to_owned()))).collect();
        conds.push(format!("i.kind IN ({})", list.join(", ")));
    }
    if !q.ids.is_empty() {
        let list: Vec<String> = q.ids.iter().map(|&id| params.add(Param::Int(id))).collect();
        conds.push(format!("i.id IN ({})", list.join(", ")));
    }
    if let Some(t) = q.valid_at {
        let t = params.add(Param::Int(t.micros()));
        conds.push(format!("NOT i.revoked AND i.valid_from <= {t} AND (i.valid_until IS NULL OR i.valid_until > {t})"));
    }
    if let Some(v) = q.after {
        let (m, id) = (params.add(Param::Int(v.modified)), params.add(Param::Int(v.id)));
        conds.push(format!("(i.modified, i.id) > ({m}, {id})"));
    }
    if let Some(s) = &q.search {
        let like = format!("%{}%", s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        // Whatever the case, as SQLite's LIKE has it and PostgreSQL's does not.
        conds.push(format!("lower(i.value) LIKE lower({}) ESCAPE '\\'", params.add(Param::Text(like))));
    }
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let limit = params.add(Param::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    Some((
        format!("WHERE {} ORDER BY i.modified {order}, i.id {order} LIMIT {limit}", conds.join(" AND ")),
        params.into_list(),
    ))
}

/// The columns of an indicator as both backends read them (its organizations follow).
pub(crate) const INDICATOR_COLUMNS: &str = "i.id, i.kind, i.value, i.origin, i.category, i.family, i.tlp, i.distribution, \
     i.community_id, i.confidence, i.valid_from, i.valid_until, i.first_seen, i.last_seen, i.sightings, i.description, \
     i.created, i.modified, i.revoked";

/// An indicator's row as stored.
pub(crate) struct RawIndicator {
    pub id: i64,
    pub kind: String,
    pub value: String,
    pub origin: String,
    pub category: String,
    pub family: Option<String>,
    pub tlp: i64,
    pub distribution: i64,
    pub community: Option<i64>,
    pub confidence: i64,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub sightings: i64,
    pub description: Option<String>,
    pub created: i64,
    pub modified: i64,
    pub revoked: bool,
    pub orgs: Vec<i64>,
}

impl RawIndicator {
    pub(crate) fn decode(self) -> Result<Indicator> {
        let id = self.id;
        let corrupt = |what: &str, v: String| StoreError::Corrupt(format!("indicator {id}: {what} {v:?}"));
        let at = |m: i64| Timestamp::from_micros(m).ok_or_else(|| corrupt("time", m.to_string()));
        let code = |v: i64| usize::try_from(v).unwrap_or(usize::MAX);
        let mut orgs: Vec<OrgId> = self.orgs.into_iter().map(OrgId).collect();
        orgs.sort_unstable();
        Ok(Indicator {
            id,
            kind: self.kind.parse::<IndicatorKind>().map_err(|e| corrupt("kind", e))?,
            value: self.value,
            category: ClassificationType::parse(&self.category)
                .map(|r| r.value())
                .ok_or_else(|| corrupt("category", self.category.clone()))?,
            family: self.family,
            tlp: Tlp::ALL.get(code(self.tlp)).copied().ok_or_else(|| corrupt("tlp", self.tlp.to_string()))?,
            distribution: Distribution::ALL
                .get(code(self.distribution))
                .copied()
                .ok_or_else(|| corrupt("distribution", self.distribution.to_string()))?,
            community: self.community,
            orgs,
            confidence: u8::try_from(self.confidence).unwrap_or(u8::MAX),
            valid_from: at(self.valid_from)?,
            valid_until: self.valid_until.map(at).transpose()?,
            first_seen: at(self.first_seen)?,
            last_seen: at(self.last_seen)?,
            sightings: self.sightings.max(0).unsigned_abs(),
            origin: Origin::parse(&self.origin).map_err(|e| corrupt("origin", e))?,
            description: self.description,
            created: at(self.created)?,
            modified: at(self.modified)?,
            revoked: self.revoked,
        })
    }
}
