//! The statistics page: rates per 1,000 over time, drawn as SVG by the server, through
//! [`farol_policy::statistics`]: the center sees any subject and the rankings; an
//! organization's users their organization against its sector and the nation; partners the
//! nation.

use std::collections::BTreeMap;
use std::sync::Arc;

use farol_model::Timestamp;
use farol_model::org::Sector;
use farol_policy::{Statistics, Viewer};
use farol_stats::svg::{Stacked, number};
use farol_stats::{By, Day, Denominators, Filter, Ranking, Subject, date, parse_day};
use farol_store::{HostScope, Store, StoreError};
use minijinja::{Value, context};

use crate::Failure;

/// Pages computed in the last minute, by viewer kind and question: the figures of a 180-day
/// view take seconds to count, and change only as reports come in.
#[derive(Debug, Default)]
pub(crate) struct Cache(std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Value)>>);

const FRESH: std::time::Duration = std::time::Duration::from_secs(60);

impl Cache {
    pub(crate) fn get(&self, key: &str) -> Option<Value> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key).filter(|(at, _)| at.elapsed() < FRESH).map(|(_, v)| v.clone())
    }

    pub(crate) fn put(&self, key: String, value: Value) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (at, _)| at.elapsed() < FRESH);
        map.insert(key, (std::time::Instant::now(), value));
    }
}

/// What the statistics need besides the store.
#[derive(Debug, Clone, Default)]
pub struct StatsConfig {
    /// The nation (ISO 3166 alpha-2).
    pub country: Option<String>,
    /// Countries drawn beside it for the center.
    pub peers: Vec<String>,
    pub marks: Vec<farol_stats::Mark>,
    /// The IP data, whose announced address space stands in where no population was loaded.
    pub live: Option<Arc<farol_enrich::Live>>,
}

/// The page's question, checked.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    from: Day,
    to: Day,
    by: By,
    /// What the center asked about (`None`: the nation).
    subject: Option<Asked>,
}

#[derive(Debug, Clone)]
enum Asked {
    Country(String),
    Asn(u32),
    Org(i64),
    Sector(Sector),
}

/// The most periods a page counts.
const MAX_PERIODS: usize = 400;

/// Reads `from`, `to`, `by` and one of `country`, `asn`, `org`, `sector`.
pub(crate) fn ask(params: &BTreeMap<String, String>) -> Result<Ask, Failure> {
    let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let day = |k: &str| -> Result<Option<Day>, Failure> {
        get(k)
            .map(|v| parse_day(v).ok_or_else(|| Failure::bad(format!("{k}: expected a date such as 2024-06-01"))))
            .transpose()
    };
    let to = day("to")?.unwrap_or_else(|| Timestamp::now().day());
    let from = day("from")?.unwrap_or(to - 179);
    if from > to {
        return Err(Failure::bad("from is after to"));
    }
    if to - from > 3660 {
        return Err(Failure::bad("at most ten years at a time"));
    }
    let by = get("by").map_or(Ok(By::Week), |b| b.parse().map_err(Failure::bad))?;
    // Each period is counted on its own: a page holds a bounded number of them.
    if farol_stats::periods(from, to, by).len() > MAX_PERIODS {
        return Err(Failure::bad(format!(
            "more than {MAX_PERIODS} periods: ask by a longer period (by=week, month or quarter) or for fewer days"
        )));
    }
    let subject = if let Some(cc) = get("country") {
        if cc.len() != 2 || !cc.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(Failure::bad("country: expected two letters such as PT"));
        }
        Some(Asked::Country(cc.to_ascii_uppercase()))
    } else if let Some(asn) = get("asn") {
        let n =
            asn.trim_start_matches(['A', 'S', 'a', 's']).parse().map_err(|_| Failure::bad("asn: expected a number"))?;
        Some(Asked::Asn(n))
    } else if let Some(org) = get("org") {
        Some(Asked::Org(org.parse().map_err(|_| Failure::bad("org: expected an organization id"))?))
    } else if let Some(sector) = get("sector") {
        Some(Asked::Sector(sector.parse().map_err(Failure::bad)?))
    } else {
        None
    };
    Ok(Ask { from, to, by, subject })
}

/// Everything the page shows, for this viewer.
pub(crate) fn view(store: &dyn Store, config: &StatsConfig, viewer: &Viewer, ask: &Ask) -> Result<Value, StoreError> {
    let access = farol_policy::statistics(viewer);
    let orgs = store.orgs()?;
    let space = config.live.as_ref().map(|l| l.current().ipdata.address_space()).unwrap_or_default();
    let denominators = Denominators::new(store.population()?, space);
    let Some(nation_cc) = config.country.clone() else {
        return Ok(context! { missing => "No national country is configured: set [center] country in farol.toml." });
    };
    let nation = Subject::Country(nation_cc.clone());
    let mut aggregate = Filter::infected(ask.from, ask.to);
    if access != Statistics::All {
        aggregate.max_tlp = Some(farol_policy::AGGREGATES);
    }
    let own = |org: farol_model::org::OrgId| orgs.iter().find(|o| o.id == org).cloned();
    // The subject, how far its events count, and what is drawn beside it.
    let (subject, filter, beside): (Subject, Filter, Vec<Subject>) = match access {
        Statistics::All => {
            let subject = match &ask.subject {
                None => nation.clone(),
                Some(Asked::Country(cc)) => Subject::Country(cc.clone()),
                Some(Asked::Asn(n)) => Subject::Asn(*n),
                Some(Asked::Org(id)) => match own(farol_model::org::OrgId(*id)) {
                    Some(o) => Subject::Org(o),
                    None => return Ok(context! { missing => format!("No organization {id}.") }),
                },
                Some(Asked::Sector(s)) => Subject::sector(*s, &orgs),
            };
            let mut beside: Vec<Subject> = config.peers.iter().map(|p| Subject::Country(p.clone())).collect();
            if subject != nation {
                beside.insert(0, nation.clone());
            }
            (subject, aggregate.clone(), beside)
        }
        Statistics::Own(org) => {
            let Some(o) = own(org) else { return Ok(context! { missing => "Your organization is gone." }) };
            let mut filter = aggregate.clone();
            filter.max_tlp = Some(farol_policy::OWN_STATISTICS);
            let sector = Subject::sector(o.sector, &orgs);
            (Subject::Org(o), filter, vec![sector, nation.clone()])
        }
        Statistics::Aggregates => (nation.clone(), aggregate.clone(), Vec::new()),
    };
    let points = farol_stats::series(store, &subject, &filter, ask.by, &denominators)?;
    let mut lines = vec![farol_stats::line(subject.to_string(), &points)];
    for other in &beside {
        lines.push(farol_stats::rate_line(store, other, &aggregate, ask.by, &denominators)?);
    }
    let world = farol_stats::world_series(store, &aggregate, ask.by, &denominators)?;
    if world.iter().any(|p| p.denominator.is_some()) {
        lines.push(farol_stats::line("countries in the data".into(), &world));
    }
    let chart = farol_stats::rate_chart(&points, lines, &config.marks);
    let denominator = points.iter().rev().find_map(|p| p.denominator.clone());
    let rows: Vec<Value> = points
        .iter()
        .map(|p| {
            context! {
                period => p.period.label, hosts => p.hosts, daily => number(p.daily_mean()),
                rate => p.rate().map(number), denominator => p.denominator.as_ref().map(|d| format!("{:.0}", d.value)),
            }
        })
        .collect();
    let scope = subject.scope();
    let months = farol_stats::periods(ask.from, ask.to, By::Month);
    let families = Stacked {
        title: "Malware families' shares of infected addresses, by month".into(),
        x_labels: months.iter().map(|p| p.label.clone()).collect(),
        series: farol_stats::family_shares(store, scope.clone(), &filter, &months, 6)?,
    }
    .render();
    // Rankings name networks and organizations: the center's to see.
    let (asns, sectors, top_orgs) = if access == Statistics::All {
        let asns = farol_stats::ranking(store, scope.clone(), &filter, Ranking::Asn, &orgs, &denominators, 10)?;
        let chart = farol_stats::asn_bars(&asns);
        // Sectors and organizations are the constituency's, whatever country their addresses
        // are registered in.
        let constituency = if matches!(subject, Subject::Country(_)) { HostScope::All } else { scope.clone() };
        let ranked = |by| -> Result<Vec<Value>, StoreError> {
            Ok(farol_stats::ranking(store, constituency.clone(), &filter, by, &orgs, &denominators, 15)?
                .iter()
                .map(|r| context! { key => r.key, label => r.label, hosts => r.hosts, daily => number(r.daily_mean), rate => r.rate().map(number) })
                .collect())
        };
        (Some(chart), ranked(Ranking::Sector)?, ranked(Ranking::Org)?)
    } else {
        (None, Vec::new(), Vec::new())
    };
    let ratios: Vec<Value> = farol_stats::mark_ratios(store, &scope, &filter, &config.marks)?
        .into_iter()
        .map(|(m, rr)| {
            context! {
                date => date(m.day), label => m.label, before => number(rr.before), after => number(rr.after),
                ratio => number(rr.ratio), low => number(rr.low), high => number(rr.high),
            }
        })
        .collect();
    let subject_name = subject.to_string();
    Ok(context! {
        subject => subject_name, from => date(ask.from), to => date(ask.to), by => format!("{:?}", ask.by).to_lowercase(),
        chart, rows, families, asns, sectors, top_orgs, ratios,
        source => denominator.map(|d| d.source),
        center_view => access == Statistics::All,
        all_sectors => Sector::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    })
}
