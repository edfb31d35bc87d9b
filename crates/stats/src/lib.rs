//! Statistics: how many hosts are infected, per 1,000 of a population, over time.
//!
//! Counts come from the store's rollups (distinct source addresses per day, exact); the
//! denominators from population data that operators load, or, where none was loaded, from the
//! announced IPv4 address space of the IP data, labelled as a proxy wherever it is used. The
//! rate of a period is the mean number of distinct infected addresses a day, per 1,000 of the
//! denominator: the measure of Microsoft's Security Intelligence Report (computers cleaned per
//! mille), so that a week and a quarter compare.

pub mod report;
pub mod svg;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use farol_enrich::ipdata::AddressSpace;
use farol_model::Timestamp;
use farol_model::org::{Asset, Org, Sector};
use farol_store::{Breakdown, HostCount, HostQuery, HostScope, Population, Result, Store};

/// A UTC day: days since 1970-01-01.
pub type Day = i64;

/// `2024-06-01` for a day.
pub fn date(day: Day) -> String {
    let (y, m, d, ..) = Timestamp::from_secs(day * 86_400).map_or((1970, 1, 1, 0, 0, 0, 0), Timestamp::to_parts);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day of `2024-06-01` (or of any timestamp farol reads).
pub fn parse_day(s: &str) -> Option<Day> {
    let s = s.trim();
    let t = if s.len() == 10 { Timestamp::parse(&format!("{s}T00:00:00Z")) } else { Timestamp::parse(s) };
    t.map(Timestamp::day)
}

fn ymd(day: Day) -> (i64, u32, u32) {
    let (y, m, d, ..) = Timestamp::from_secs(day * 86_400).map_or((1970, 1, 1, 0, 0, 0, 0), Timestamp::to_parts);
    (y, m, d)
}

fn day_of(y: i64, m: u32, d: u32) -> Day {
    Timestamp::from_ymd_hms(y, m, d, 0, 0, 0).map_or(0, Timestamp::day)
}

/// How periods are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
    Quarter,
}

impl FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<By, String> {
        match s {
            "day" => Ok(By::Day),
            "week" => Ok(By::Week),
            "month" => Ok(By::Month),
            "quarter" => Ok(By::Quarter),
            _ => Err(format!("unknown period {s:?}; one of: day, week, month, quarter")),
        }
    }
}

/// Days `first..=last`, with a label: `2024-06-01`, `2024-W22`, `2024-06`, `2024-Q2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub first: Day,
    pub last: Day,
    pub label: String,
}

impl Period {
    pub fn days(&self) -> i64 {
        self.last - self.first + 1
    }
}

/// The periods that cover `from..=to`, the first and last cut at those days.
pub fn periods(from: Day, to: Day, by: By) -> Vec<Period> {
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        let (y, m, _) = ymd(day);
        let (next, label) = match by {
            By::Day => (day + 1, date(day)),
            By::Week => {
                // 1970-01-01 was a Thursday.
                let monday = day - (day + 3).rem_euclid(7);
                let thursday = monday + 3;
                let (wy, ..) = ymd(thursday);
                let week = (thursday - day_of(wy, 1, 1)) / 7 + 1;
                (monday + 7, format!("{wy}-W{week:02}"))
            }
            By::Month => {
                let next = if m == 12 { day_of(y + 1, 1, 1) } else { day_of(y, m + 1, 1) };
                (next, format!("{y}-{m:02}"))
            }
            By::Quarter => {
                let q = (m - 1) / 3;
                let next = if q == 3 { day_of(y + 1, 1, 1) } else { day_of(y, q * 3 + 4, 1) };
                (next, format!("{y}-Q{}", q + 1))
            }
        };
        out.push(Period { first: day, last: (next - 1).min(to), label });
        day = next;
    }
    out
}

/// What a statistic is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Country(String),
    Asn(u32),
    Org(Org),
    /// A sector, with its organizations.
    Sector(Sector, Vec<Org>),
}

impl Subject {
    /// A sector, with its organizations among `orgs`.
    pub fn sector(sector: Sector, orgs: &[Org]) -> Subject {
        Subject::Sector(sector, orgs.iter().filter(|o| o.sector == sector).cloned().collect())
    }

    /// The addresses counted for it.
    pub fn scope(&self) -> HostScope {
        match self {
            Subject::Country(cc) => HostScope::Country(cc.to_ascii_uppercase()),
            Subject::Asn(asn) => HostScope::Asn(*asn),
            Subject::Org(org) => HostScope::Orgs(vec![org.id]),
            Subject::Sector(_, orgs) => HostScope::Orgs(orgs.iter().map(|o| o.id).collect()),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Country(cc) => f.write_str(cc),
            Subject::Asn(asn) => write!(f, "AS{asn}"),
            Subject::Org(org) => f.write_str(&org.name),
            Subject::Sector(s, _) => write!(f, "sector {s}"),
        }
    }
}

/// What a rate is divided by, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Denominator {
    pub value: f64,
    /// `internet-users (population data from 2024-01-01)`, or the proxy's description.
    pub source: String,
    /// True when it is the announced address space, not a population.
    pub proxy: bool,
}

/// Metrics preferred when a subject has several.
const METRICS: [&str; 3] = ["internet-users", "subscribers", "active-hosts"];

/// The proxy's label, wherever a proxy is used.
pub const PROXY: &str = "announced IPv4 addresses (proxy: no population loaded)";

/// Denominators for any subject: loaded population data first, else the address space.
#[derive(Debug, Clone, Default)]
pub struct Denominators {
    population: HashMap<(String, String), Vec<Population>>,
    space: AddressSpace,
}

impl Denominators {
    pub fn new(population: Vec<Population>, space: AddressSpace) -> Denominators {
        let mut by_key: HashMap<(String, String), Vec<Population>> = HashMap::new();
        for p in population {
            by_key.entry((p.scope.clone(), p.key.to_lowercase())).or_default().push(p);
        }
        Denominators { population: by_key, space }
    }

    /// The subject's denominator on `day`.
    pub fn of(&self, subject: &Subject, day: Day) -> Option<Denominator> {
        let (scope, key) = match subject {
            Subject::Country(cc) => ("country", cc.to_lowercase()),
            Subject::Asn(asn) => ("asn", asn.to_string()),
            Subject::Org(org) => ("org", org.name.to_lowercase()),
            Subject::Sector(s, _) => ("sector", s.as_str().to_owned()),
        };
        if let Some(d) = self.population.get(&(scope.to_owned(), key)).and_then(|rows| population_on(rows, day)) {
            return Some(d);
        }
        let value = match subject {
            Subject::Country(cc) => {
                let cc = cc.to_ascii_uppercase();
                let cc: [u8; 2] = cc.as_bytes().try_into().ok()?;
                self.space.countries.get(&cc).copied()?
            }
            Subject::Asn(asn) => self.space.asns.get(asn).copied()?,
            Subject::Org(org) => self.org_space(org),
            Subject::Sector(_, orgs) => {
                // Each organization by its own population when it has one.
                let sum: f64 =
                    orgs.iter().filter_map(|o| self.of(&Subject::Org(o.clone()), day)).map(|d| d.value).sum();
                return (sum > 0.0).then(|| Denominator {
                    value: sum,
                    source: "its organizations' populations or announced IPv4 addresses".into(),
                    proxy: true,
                });
            }
        };
        (value > 0).then(|| Denominator { value: value as f64, source: PROXY.into(), proxy: true })
    }

    /// An organization's address space: its ASes' announced addresses, or the size of its IPv4
    /// prefixes when it lists no AS (prefixes of an organization with ASes lie in them).
    fn org_space(&self, org: &Org) -> u64 {
        let asns: u64 =
            org.assets.iter().filter_map(|a| if let Asset::Asn(n) = a { self.space.asns.get(n) } else { None }).sum();
        if org.assets.iter().any(|a| matches!(a, Asset::Asn(_))) {
            return asns;
        }
        org.assets
            .iter()
            .filter_map(|a| match a {
                Asset::Prefix(ipnet::IpNet::V4(n)) => Some(1u64 << (32 - u32::from(n.prefix_len()))),
                _ => None,
            })
            .sum()
    }
}

/// The population valid on `day` in the preferred metric: the latest that started on or
/// before it, else the earliest.
fn population_on(rows: &[Population], day: Day) -> Option<Denominator> {
    let metric = METRICS
        .iter()
        .find(|m| rows.iter().any(|p| p.metric == **m))
        .map_or_else(|| rows.first().map(|p| p.metric.as_str()), |m| Some(*m))?;
    let rows: Vec<&Population> = rows.iter().filter(|p| p.metric == metric).collect();
    let p = rows
        .iter()
        .filter(|p| p.valid_from <= day)
        .max_by_key(|p| p.valid_from)
        .or_else(|| rows.iter().min_by_key(|p| p.valid_from))?;
    (p.value > 0.0).then(|| Denominator {
        value: p.value,
        source: format!("{metric} (population data from {})", date(p.valid_from)),
        proxy: false,
    })
}

/// A dated event to mark on the charts (an intervention, a takedown, an outbreak); rates
/// before and after it are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub day: Day,
    pub label: String,
}

/// For each mark inside the filter's days, the rate ratio of the scope from it on against
/// before it (marks where either side saw nothing are left out).
pub fn mark_ratios<'m>(
    store: &dyn Store,
    scope: &HostScope,
    filter: &Filter,
    marks: &'m [Mark],
) -> Result<Vec<(&'m Mark, RateRatio)>> {
    let mut out = Vec::new();
    for m in marks.iter().filter(|m| m.day > filter.from && m.day <= filter.to) {
        let before = store.hosts(&filter.query(scope.clone(), filter.from, m.day - 1))?;
        let after = store.hosts(&filter.query(scope.clone(), m.day, filter.to))?;
        if let Some(rr) = rate_ratio(&before, m.day - filter.from, &after, filter.to - m.day + 1) {
            out.push((m, rr));
        }
    }
    Ok(out)
}

/// The rates of `lines` (the first is the subject's, whose `points` give the periods and the
/// unit) with the marks on their periods, as an SVG chart.
pub fn rate_chart(points: &[Point], lines: Vec<svg::Line>, marks: &[Mark]) -> String {
    let marks = marks
        .iter()
        .filter_map(|m| {
            points.iter().position(|p| p.period.first <= m.day && m.day <= p.period.last).map(|i| (i, m.label.clone()))
        })
        .collect();
    let proxy = points.iter().rev().find_map(|p| p.denominator.as_ref()).is_some_and(|d| d.proxy);
    let unit = if proxy { "announced addresses" } else { "internet users" };
    svg::TimeSeries {
        title: format!("Infected hosts per 1,000 {unit} a day"),
        y_label: format!("per 1,000 {unit}"),
        x_labels: points.iter().map(|p| p.period.label.clone()).collect(),
        lines,
        marks,
    }
    .render()
}

/// A series' rates, as a chart line.
pub fn line(name: String, points: &[Point]) -> svg::Line {
    svg::Line { name, values: points.iter().map(Point::rate).collect() }
}

/// A subject's rate per period as a chart line, from one count per day: for a line beside the
/// subject's, where the distinct addresses over each period are not needed.
pub fn rate_line(
    store: &dyn Store,
    subject: &Subject,
    filter: &Filter,
    by: By,
    denominators: &Denominators,
) -> Result<svg::Line> {
    let q = filter.query(subject.scope(), filter.from, filter.to);
    let daily: HashMap<Day, u64> = store
        .host_breakdown(&q, Breakdown::Day)?
        .into_iter()
        .filter_map(|c| Some((c.key.parse().ok()?, c.host_days)))
        .collect();
    let values = periods(filter.from, filter.to, by)
        .into_iter()
        .map(|p| {
            let host_days: u64 = (p.first..=p.last).filter_map(|d| daily.get(&d)).sum();
            denominators.of(subject, p.first).map(|d| host_days as f64 / p.days() as f64 / d.value * 1000.0)
        })
        .collect();
    Ok(svg::Line { name: subject.to_string(), values })
}

/// The ASes with the most infected addresses a day, as bars.
pub fn asn_bars(asns: &[Ranked]) -> String {
    svg::Bars {
        title: "Autonomous systems with the most infected addresses a day".into(),
        unit: "distinct infected addresses on an average day".into(),
        bars: asns.iter().map(|r| (r.label.clone(), r.daily_mean)).collect(),
    }
    .render()
}

/// One period of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub period: Period,
    /// Distinct infected addresses over the period.
    pub hosts: u64,
    /// Distinct addresses per day, summed over the period's days.
    pub host_days: u64,
    pub events: u64,
    pub denominator: Option<Denominator>,
}

impl Point {
    /// Distinct addresses seen on an average day of the period.
    pub fn daily_mean(&self) -> f64 {
        self.host_days as f64 / self.period.days().max(1) as f64
    }

    /// Infected hosts per 1,000 per day, averaged over the period.
    pub fn rate(&self) -> Option<f64> {
        self.denominator.as_ref().map(|d| self.daily_mean() / d.value * 1000.0)
    }
}

/// What is counted as infected, and in which days: the query without its scope.
#[derive(Debug, Clone)]
pub struct Filter {
    pub from: Day,
    pub to: Day,
    pub types: Vec<farol_model::ClassificationType>,
    pub family: Option<String>,
    /// Only events with this TLP or a lower one (a public report: CLEAR).
    pub max_tlp: Option<farol_model::Tlp>,
}

impl Filter {
    /// Infected systems (the botnet drones of sinkhole data) from `from` to `to`.
    pub fn infected(from: Day, to: Day) -> Filter {
        Filter { from, to, types: vec![farol_model::ClassificationType::InfectedSystem], family: None, max_tlp: None }
    }

    pub fn query(&self, scope: HostScope, from: Day, to: Day) -> HostQuery {
        HostQuery {
            scope,
            from_day: from,
            to_day: to,
            types: self.types.clone(),
            family: self.family.clone(),
            max_tlp: self.max_tlp,
        }
    }
}

/// The subject's counts and rate per period.
pub fn series(
    store: &dyn Store,
    subject: &Subject,
    filter: &Filter,
    by: By,
    denominators: &Denominators,
) -> Result<Vec<Point>> {
    let periods = periods(filter.from, filter.to, by);
    let scope = subject.scope();
    let daily: HashMap<i64, HostCount> = if by == By::Day {
        let q = filter.query(scope.clone(), filter.from, filter.to);
        store.host_breakdown(&q, Breakdown::Day)?.into_iter().filter_map(|c| Some((c.key.parse().ok()?, c))).collect()
    } else {
        HashMap::new()
    };
    periods
        .into_iter()
        .map(|period| {
            let count = if by == By::Day {
                daily.get(&period.first).cloned().unwrap_or_default()
            } else {
                store.hosts(&filter.query(scope.clone(), period.first, period.last))?
            };
            let denominator = denominators.of(subject, period.first);
            Ok(Point { hosts: count.hosts, host_days: count.host_days, events: count.events, denominator, period })
        })
        .collect()
}

/// The world in the data: every country that has events and a denominator, summed, per
/// period. `None` for a period with fewer than two such countries.
pub fn world_series(store: &dyn Store, filter: &Filter, by: By, denominators: &Denominators) -> Result<Vec<Point>> {
    periods(filter.from, filter.to, by)
        .into_iter()
        .map(|period| {
            let q = filter.query(HostScope::All, period.first, period.last);
            let mut point = Point { hosts: 0, host_days: 0, events: 0, denominator: None, period };
            let (mut value, mut countries, mut proxy) = (0.0, 0, false);
            for c in store.host_breakdown(&q, Breakdown::Country)? {
                let Some(d) = denominators.of(&Subject::Country(c.key.clone()), point.period.first) else { continue };
                value += d.value;
                countries += 1;
                proxy |= d.proxy;
                point.hosts += c.hosts;
                point.host_days += c.host_days;
                point.events += c.events;
            }
            if countries >= 2 {
                let source = if proxy { PROXY } else { "population data" };
                point.denominator =
                    Some(Denominator { value, source: format!("{countries} countries in the data, {source}"), proxy });
            }
            Ok(point)
        })
        .collect()
}

/// A subject's rate after a date against before it, with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRatio {
    /// Mean distinct infected addresses a day, before and after.
    pub before: f64,
    pub after: f64,
    /// after / before: below 1 is an improvement.
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
}

/// The ratio of daily means, the address-days taken as Poisson counts: the interval is
/// exp(ln RR ± 1.96 √(1/a + 1/b)). The denominator is the same on both sides and cancels.
/// `None` when either side saw nothing.
pub fn rate_ratio(before: &HostCount, before_days: i64, after: &HostCount, after_days: i64) -> Option<RateRatio> {
    if before.host_days == 0 || after.host_days == 0 || before_days <= 0 || after_days <= 0 {
        return None;
    }
    let (a, b) = (before.host_days as f64, after.host_days as f64);
    let (rb, ra) = (a / before_days as f64, b / after_days as f64);
    let ratio = ra / rb;
    let se = (1.0 / a + 1.0 / b).sqrt();
    Some(RateRatio {
        before: rb,
        after: ra,
        ratio,
        low: (ratio.ln() - 1.96 * se).exp(),
        high: (ratio.ln() + 1.96 * se).exp(),
    })
}

/// One entry of a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub key: String,
    pub label: String,
    pub hosts: u64,
    pub daily_mean: f64,
    pub denominator: Option<Denominator>,
}

impl Ranked {
    pub fn rate(&self) -> Option<f64> {
        self.denominator.as_ref().map(|d| self.daily_mean / d.value * 1000.0)
    }
}

/// ASes, organizations or sectors of the scope, by distinct infected addresses, the first
/// `limit`; `orgs` names organizations and places them in sectors.
pub fn ranking(
    store: &dyn Store,
    scope: HostScope,
    filter: &Filter,
    by: Ranking,
    orgs: &[Org],
    denominators: &Denominators,
    limit: usize,
) -> Result<Vec<Ranked>> {
    let days = (filter.to - filter.from + 1).max(1) as f64;
    let q = filter.query(scope.clone(), filter.from, filter.to);
    let org = |id: &str| orgs.iter().find(|o| o.id.0.to_string() == id);
    let mut out: Vec<Ranked> = match by {
        Ranking::Asn => store
            .host_breakdown(&q, Breakdown::Asn)?
            .into_iter()
            .filter_map(|c| {
                let asn: u32 = c.key.parse().ok()?;
                let denominator = denominators.of(&Subject::Asn(asn), filter.from);
                Some(Ranked {
                    label: format!("AS{asn}"),
                    key: c.key,
                    hosts: c.hosts,
                    daily_mean: c.host_days as f64 / days,
                    denominator,
                })
            })
            .collect(),
        Ranking::Org => store
            .host_breakdown(&q, Breakdown::Org)?
            .into_iter()
            .filter_map(|c| {
                let org = org(&c.key)?;
                Some(Ranked {
                    label: org.name.clone(),
                    denominator: denominators.of(&Subject::Org(org.clone()), filter.from),
                    key: c.key,
                    hosts: c.hosts,
                    daily_mean: c.host_days as f64 / days,
                })
            })
            .collect(),
        Ranking::Sector => {
            let mut out = Vec::new();
            for sector in Sector::ALL {
                let subject = Subject::sector(*sector, orgs);
                if matches!(&subject, Subject::Sector(_, members) if members.is_empty()) {
                    continue;
                }
                let mut q = q.clone();
                q.scope = match (&scope, subject.scope()) {
                    (HostScope::Orgs(within), HostScope::Orgs(of)) => {
                        HostScope::Orgs(of.into_iter().filter(|o| within.contains(o)).collect())
                    }
                    (_, of) => of,
                };
                let c = store.hosts(&q)?;
                if c.hosts > 0 {
                    out.push(Ranked {
                        key: sector.as_str().into(),
                        label: sector.as_str().into(),
                        hosts: c.hosts,
                        daily_mean: c.host_days as f64 / days,
                        denominator: denominators.of(&subject, filter.from),
                    });
                }
            }
            out
        }
    };
    out.sort_by(|a, b| b.hosts.cmp(&a.hosts).then_with(|| a.label.cmp(&b.label)));
    out.truncate(limit);
    Ok(out)
}

/// What a ranking ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    Asn,
    Org,
    Sector,
}

/// A network's daily mean before and after a date.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    pub label: String,
    pub before: f64,
    pub after: f64,
}

impl Change {
    /// after / before - 1: -0.6 is 60% fewer infected addresses a day.
    pub fn relative(&self) -> f64 {
        self.after / self.before - 1.0
    }
}

/// The ASes whose daily mean fell the most (relatively) from before `at` to from `at` on,
/// among those with at least `min_daily` infected addresses a day before.
pub fn most_improved(
    store: &dyn Store,
    scope: HostScope,
    filter: &Filter,
    at: Day,
    min_daily: f64,
    limit: usize,
) -> Result<Vec<Change>> {
    if at <= filter.from || at > filter.to {
        return Ok(Vec::new());
    }
    let per_asn = |from: Day, to: Day| -> Result<HashMap<String, f64>> {
        let days = (to - from + 1) as f64;
        Ok(store
            .host_breakdown(&filter.query(scope.clone(), from, to), Breakdown::Asn)?
            .into_iter()
            .map(|c| (c.key, c.host_days as f64 / days))
            .collect())
    };
    let before = per_asn(filter.from, at - 1)?;
    let after = per_asn(at, filter.to)?;
    let mut out: Vec<Change> = before
        .into_iter()
        .filter(|(k, b)| *b >= min_daily && !k.is_empty())
        .map(|(key, before)| Change {
            label: format!("AS{key}"),
            after: after.get(&key).copied().unwrap_or(0.0),
            key,
            before,
        })
        .collect();
    out.sort_by(|a, b| a.relative().total_cmp(&b.relative()).then_with(|| a.key.cmp(&b.key)));
    out.truncate(limit);
    Ok(out)
}

/// Malware families' shares of the distinct infected addresses, per period: (family, share
/// per period), the largest families first, the rest summed as `other`.
pub fn family_shares(
    store: &dyn Store,
    scope: HostScope,
    filter: &Filter,
    periods: &[Period],
    top: usize,
) -> Result<Vec<(String, Vec<f64>)>> {
    let overall = store.host_breakdown(&filter.query(scope.clone(), filter.from, filter.to), Breakdown::Family)?;
    let names: Vec<String> = overall.iter().take(top).map(|c| c.key.clone()).collect();
    let mut shares: Vec<(String, Vec<f64>)> =
        names.iter().map(|n| (if n.is_empty() { "unnamed".to_owned() } else { n.clone() }, Vec::new())).collect();
    let other = overall.len() > top;
    if other {
        shares.push(("other".into(), Vec::new()));
    }
    for p in periods {
        let counts = store.host_breakdown(&filter.query(scope.clone(), p.first, p.last), Breakdown::Family)?;
        let total: u64 = counts.iter().map(|c| c.hosts).sum();
        let share = |c: &HostCount| if total == 0 { 0.0 } else { c.hosts as f64 / total as f64 };
        for (i, name) in names.iter().enumerate() {
            shares[i].1.push(counts.iter().find(|c| &c.key == name).map_or(0.0, share));
        }
        if other {
            let rest: f64 = counts.iter().filter(|c| !names.contains(&c.key)).map(share).sum();
            shares[names.len()].1.push(rest);
        }
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cut_at_weeks_months_and_quarters() {
        let from = parse_day("2024-05-30").unwrap();
        let to = parse_day("2024-07-02").unwrap();
        let weeks = periods(from, to, By::Week);
        assert_eq!(weeks[0].label, "2024-W22");
        assert_eq!((date(weeks[0].first), date(weeks[0].last)), ("2024-05-30".into(), "2024-06-02".into()));
        assert_eq!(date(weeks[1].first), "2024-06-03");
        assert_eq!(weeks.last().unwrap().label, "2024-W27");
        let months: Vec<String> = periods(from, to, By::Month).into_iter().map(|p| p.label).collect();
        assert_eq!(months, ["2024-05", "2024-06", "2024-07"]);
        let quarters = periods(from, to, By::Quarter);
        assert_eq!(quarters.len(), 2);
        assert_eq!((quarters[0].label.as_str(), quarters[0].days()), ("2024-Q2", 32));
        assert_eq!(periods(from, to, By::Day).len(), 34);
        // ISO week 1 of 2021 starts on 4 January; 1 January 2021 is in 2020's week 53.
        assert_eq!(
            periods(parse_day("2021-01-01").unwrap(), parse_day("2021-01-01").unwrap(), By::Week)[0].label,
            "2020-W53"
        );
    }

    #[test]
    fn the_rate_ratio_and_its_interval() {
        let c = |host_days| HostCount { key: String::new(), hosts: 0, host_days, events: 0 };
        // 100 address-days in 10 days before, 50 in 10 days after: half, and an interval
        // of exp(±1.96·√(1/100 + 1/50)) around it.
        let rr = rate_ratio(&c(100), 10, &c(50), 10).unwrap();
        assert!((rr.ratio - 0.5).abs() < 1e-12);
        let se = (0.01f64 + 0.02).sqrt();
        assert!((rr.low - 0.5 * (-1.96 * se).exp()).abs() < 1e-12);
        assert!((rr.high - 0.5 * (1.96 * se).exp()).abs() < 1e-12);
        assert!(rr.low < 0.5 && rr.high > 0.5 && rr.high < 1.0);
        assert_eq!(rate_ratio(&c(0), 10, &c(5), 10), None);
    }

    #[test]
    fn population_before_proxy() {
        let pop = |valid_from, value, metric: &str| Population {
            scope: "country".into(),
            key: "PT".into(),
            metric: metric.into(),
            valid_from,
            value,
        };
        let mut space = AddressSpace::default();
        space.countries.insert(*b"PT", 6_000_000);
        space.countries.insert(*b"ES", 30_000_000);
        let d = Denominators::new(
            vec![
                pop(100, 8_000_000.0, "internet-users"),
                pop(200, 9_000_000.0, "internet-users"),
                pop(0, 1.0, "other"),
            ],
            space,
        );
        let pt = Subject::Country("pt".into());
        assert_eq!(d.of(&pt, 150).unwrap().value, 8_000_000.0);
        assert_eq!(d.of(&pt, 250).unwrap().value, 9_000_000.0);
        assert_eq!(d.of(&pt, 50).unwrap().value, 8_000_000.0, "before any, the earliest");
        assert!(!d.of(&pt, 150).unwrap().proxy);
        let es = d.of(&Subject::Country("ES".into()), 150).unwrap();
        assert_eq!((es.value, es.proxy, es.source.as_str()), (30_000_000.0, true, PROXY));
        assert_eq!(d.of(&Subject::Country("FR".into()), 150), None);
    }
}
