//! `farol stats`, `farol population` and `farol report`: infection rates, their denominators,
//! and the national threat report.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use farol_model::org::Sector;
use farol_model::{ClassificationType, Timestamp};
use farol_stats::{By, Day, Denominators, Filter, Ranking, Subject, date, parse_day};
use farol_store::{Population, Store};
use serde_json::json;

use crate::Usage;
use crate::config::Config;
use crate::output::{Table, count};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Top {
    Asn,
    Org,
    Sector,
    Family,
}

fn day_arg(s: &str) -> Result<Day, String> {
    parse_day(s).ok_or_else(|| format!("expected a date such as 2024-06-01, found {s:?}"))
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Per period: the distinct infected addresses, the mean seen a day, the denominator with \
its source, and the infected hosts per 1,000 a day (averaged over the period). Denominators come from \
`farol population load`; where none is loaded, the announced IPv4 address space of the IP data stands \
in, labelled as a proxy.

Examples:
  farol stats                                   the national country, by week, the last 90 days
  farol stats --asn 3243 --by month --from 2024-01-01 --to 2024-06-30
  farol stats --sector health --format csv
  farol stats --top asn                         the networks with the most infected addresses
  farol stats --intervention 2024-03-01         rates before and after, with the rate ratio")]
pub struct Args {
    /// A country (ISO 3166 two letters); the default is [center] country
    #[arg(long, group = "subject")]
    country: Option<String>,
    /// An autonomous system
    #[arg(long, group = "subject", value_parser = |s: &str| s.trim_start_matches(['A', 'S', 'a', 's']).parse::<u32>().map_err(|_| format!("expected an AS number such as 3243, found {s:?}")))]
    asn: Option<u32>,
    /// An organization, by id or name
    #[arg(long, group = "subject")]
    org: Option<String>,
    /// A sector (health, energy, academic, isp, ...)
    #[arg(long, group = "subject")]
    sector: Option<Sector>,
    /// First day (default: 90 days before --to)
    #[arg(long, value_parser = day_arg)]
    from: Option<Day>,
    /// Last day (default: today, UTC)
    #[arg(long, value_parser = day_arg)]
    to: Option<Day>,
    #[arg(long, default_value = "week", value_parser = |s: &str| s.parse::<By>())]
    by: By,
    /// What counts as infected: a classification type (default infected-system)
    #[arg(long = "type", value_parser = |s: &str| ClassificationType::parse(s).map(|r| r.value()).ok_or_else(|| format!("unknown classification type {s:?}")))]
    kind: Option<ClassificationType>,
    /// Only this malware family (malware.name)
    #[arg(long)]
    family: Option<String>,
    /// Rank instead: ASes, organizations, sectors or malware families over the whole period
    #[arg(long, value_enum)]
    top: Option<Top>,
    /// Compare the daily rate before this date with the rate from it on (rate ratio, 95% CI)
    #[arg(long, value_parser = day_arg)]
    intervention: Option<Day>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// What the commands share: the store, the organizations and the denominators.
struct Context {
    config: Config,
    store: std::sync::Arc<dyn Store>,
    orgs: Vec<farol_model::org::Org>,
    denominators: Denominators,
}

fn context(dir: &Path) -> Result<Context> {
    let (config, store) = super::open(dir)?;
    let snapshot = crate::enrichment::snapshot(&config, &*store)?;
    let denominators = Denominators::new(store.population()?, snapshot.ipdata.address_space());
    Ok(Context { orgs: store.orgs()?, config, store, denominators })
}

fn today() -> Day {
    Timestamp::now().day()
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let cx = context(dir)?;
    let subject = if let Some(cc) = &args.country {
        country(cc)?
    } else if let Some(asn) = args.asn {
        Subject::Asn(asn)
    } else if let Some(key) = &args.org {
        Subject::Org(super::org::find(&*cx.store, key)?)
    } else if let Some(sector) = args.sector {
        Subject::sector(sector, &cx.orgs)
    } else {
        let cc = cx.config.center.country.as_deref().ok_or_else(|| {
            Usage(
                "which country? give --country CC (or --asn, --org, --sector), or set [center] country in farol.toml"
                    .into(),
            )
        })?;
        country(cc)?
    };
    let to = args.to.unwrap_or_else(today);
    let from = args.from.unwrap_or(to - 89);
    if from > to {
        return Err(Usage(format!("--from {} is after --to {}", date(from), date(to))).into());
    }
    let mut filter = Filter::infected(from, to);
    if let Some(kind) = args.kind {
        filter.types = vec![kind];
    }
    filter.family = args.family.clone();
    if let Some(top) = args.top {
        return print_top(&cx, &subject, &filter, top, args.format);
    }
    let points = farol_stats::series(&*cx.store, &subject, &filter, args.by, &cx.denominators)?;
    let world = if matches!(subject, Subject::Country(_)) {
        let w = farol_stats::world_series(&*cx.store, &filter, args.by, &cx.denominators)?;
        w.iter().any(|p| p.denominator.is_some()).then_some(w)
    } else {
        None
    };
    let ratio = args.intervention.map(|at| intervention(&cx, &subject, &filter, at)).transpose()?;
    match args.format {
        Format::Json => {
            let rows: Vec<_> = points
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    json!({
                        "period": p.period.label, "from": date(p.period.first), "to": date(p.period.last),
                        "hosts": p.hosts, "host_days": p.host_days, "daily_mean": p.daily_mean(), "events": p.events,
                        "denominator": p.denominator.as_ref().map(|d| d.value),
                        "denominator_source": p.denominator.as_ref().map(|d| d.source.clone()),
                        "proxy": p.denominator.as_ref().map(|d| d.proxy),
                        "rate_per_1000": p.rate(),
                        "world_rate_per_1000": world.as_ref().and_then(|w| w[i].rate()),
                    })
                })
                .collect();
            let mut out = json!({ "subject": subject.to_string(), "periods": rows });
            if let Some(rr) = ratio {
                out["intervention"] = json!({
                    "date": date(args.intervention.unwrap_or_default()), "before": rr.before, "after": rr.after,
                    "rate_ratio": rr.ratio, "ci95": [rr.low, rr.high],
                });
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table | Format::Csv => {
            let mut headers = vec!["period", "infected", "a day", "denominator", "source", "per 1,000"];
            if world.is_some() {
                headers.push("world per 1,000");
            }
            let mut t = Table::new(&headers);
            for (i, p) in points.iter().enumerate() {
                let mut row = vec![
                    p.period.label.clone(),
                    p.hosts.to_string(),
                    farol_stats::svg::number(p.daily_mean()),
                    p.denominator.as_ref().map_or("–".into(), |d| format!("{:.0}", d.value)),
                    p.denominator.as_ref().map_or("none".into(), |d| d.source.clone()),
                    p.rate().map_or("–".into(), farol_stats::svg::number),
                ];
                if let Some(w) = &world {
                    row.push(w[i].rate().map_or("–".into(), farol_stats::svg::number));
                }
                t.row(row);
            }
            if args.format == Format::Csv {
                print!("{}", t.csv());
            } else {
                println!("{subject}, {} to {}, distinct infected addresses", date(from), date(to));
                print!("{}", t.render());
                if let Some(rr) = ratio {
                    println!(
                        "\nsince {}: {} a day against {} before; rate ratio {} (95% CI {} to {})",
                        date(args.intervention.unwrap_or_default()),
                        farol_stats::svg::number(rr.after),
                        farol_stats::svg::number(rr.before),
                        farol_stats::svg::number(rr.ratio),
                        farol_stats::svg::number(rr.low),
                        farol_stats::svg::number(rr.high)
                    );
                }
            }
        }
    }
    Ok(())
}

fn country(cc: &str) -> Result<Subject> {
    if cc.len() == 2 && cc.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(Subject::Country(cc.to_ascii_uppercase()))
    } else {
        Err(Usage(format!("expected a two-letter country code such as PT, found {cc:?}")).into())
    }
}

fn intervention(cx: &Context, subject: &Subject, filter: &Filter, at: Day) -> Result<farol_stats::RateRatio> {
    if at <= filter.from || at > filter.to {
        return Err(Usage(format!(
            "--intervention {} must lie after --from {} and not after --to {}",
            date(at),
            date(filter.from),
            date(filter.to)
        ))
        .into());
    }
    let before = cx.store.hosts(&filter.query(subject.scope(), filter.from, at - 1))?;
    let after = cx.store.hosts(&filter.query(subject.scope(), at, filter.to))?;
    farol_stats::rate_ratio(&before, at - filter.from, &after, filter.to - at + 1)
        .ok_or_else(|| Usage("no infected addresses before or after the intervention: no rate ratio".into()).into())
}

fn print_top(cx: &Context, subject: &Subject, filter: &Filter, top: Top, format: Format) -> Result<()> {
    let scope = subject.scope();
    // (name, infected, a day, rate, denominator as shown)
    let rows: Vec<(String, u64, f64, Option<f64>, String)> = match top {
        Top::Family => {
            let days = (filter.to - filter.from + 1) as f64;
            cx.store
                .host_breakdown(&filter.query(scope, filter.from, filter.to), farol_store::Breakdown::Family)?
                .into_iter()
                .take(20)
                .map(|c| {
                    let name = if c.key.is_empty() { "unnamed".into() } else { c.key };
                    (name, c.hosts, c.host_days as f64 / days, None, String::new())
                })
                .collect()
        }
        _ => {
            let by = match top {
                Top::Asn => Ranking::Asn,
                Top::Org => Ranking::Org,
                _ => Ranking::Sector,
            };
            farol_stats::ranking(&*cx.store, scope, filter, by, &cx.orgs, &cx.denominators, 20)?
                .into_iter()
                .map(|r| {
                    let rate = r.rate();
                    let denominator = r
                        .denominator
                        .map_or("–".into(), |d| format!("{:.0}{}", d.value, if d.proxy { " (proxy)" } else { "" }));
                    (r.label, r.hosts, r.daily_mean, rate, denominator)
                })
                .collect()
        }
    };
    if format == Format::Json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(name, hosts, mean, rate, denominator)| {
                json!({"name": name, "hosts": hosts, "daily_mean": mean, "rate_per_1000": rate, "denominator": denominator})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut t = Table::new(&["name", "infected", "a day", "denominator", "per 1,000"]);
    for (name, hosts, mean, rate, denominator) in rows {
        let rate = rate.map_or("–".into(), farol_stats::svg::number);
        t.row(vec![name, hosts.to_string(), farol_stats::svg::number(mean), denominator, rate]);
    }
    if format == Format::Csv {
        print!("{}", t.csv());
    } else {
        println!("{subject}, {} to {}: {}", date(filter.from), date(filter.to), count(t.len() as u64));
        print!("{}", t.render());
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct PopulationArgs {
    #[command(subcommand)]
    command: PopulationCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PopulationCommand {
    /// Load denominators from CSV: scope,key,metric,value,valid_from (a header line is optional)
    #[command(after_help = "scope is country, asn, org or sector; key a country code, an AS number, an \
organization's name or a sector; metric what is counted (internet-users, subscribers, active-hosts); \
valid_from the first day the value holds (YYYY-MM-DD). Loading a row again replaces its value.

Example:
  country,PT,internet-users,8900000,2024-01-01
  asn,3243,subscribers,2500000,2024-01-01
  sector,health,active-hosts,120000,2024-01-01")]
    Load { file: PathBuf },
    /// List the denominators loaded
    List,
}

/// One line of a population file, checked.
fn population_line(fields: &[&str]) -> Result<Population, String> {
    let [scope, key, metric, value, valid_from] = fields else {
        return Err(format!("expected 5 fields (scope,key,metric,value,valid_from), found {}", fields.len()));
    };
    let key = key.trim();
    match scope.trim() {
        "country" if key.len() == 2 && key.chars().all(|c| c.is_ascii_alphabetic()) => {}
        "asn" if key.trim_start_matches(['A', 'S', 'a', 's']).parse::<u32>().is_ok() => {}
        "org" if !key.is_empty() => {}
        "sector" if key.parse::<Sector>().is_ok() => {}
        "country" | "asn" | "org" | "sector" => return Err(format!("{scope}: {key:?} is not a valid key")),
        other => return Err(format!("unknown scope {other:?}; one of: country, asn, org, sector")),
    }
    let key = match scope.trim() {
        "country" => key.to_ascii_uppercase(),
        "asn" => key.trim_start_matches(['A', 'S', 'a', 's']).to_owned(),
        _ => key.to_owned(),
    };
    let metric = metric.trim().to_ascii_lowercase().replace([' ', '_'], "-");
    if metric.is_empty() || !metric.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("metric {metric:?}: expected a word such as internet-users"));
    }
    let value: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .ok_or_else(|| format!("value {:?}: expected a positive number", value.trim()))?;
    let valid_from = parse_day(valid_from)
        .ok_or_else(|| format!("valid_from {:?}: expected a date such as 2024-01-01", valid_from.trim()))?;
    Ok(Population { scope: scope.trim().to_owned(), key, metric, valid_from, value })
}

pub fn population(dir: &Path, args: PopulationArgs) -> Result<()> {
    let (_, store) = super::open(dir)?;
    match args.command {
        PopulationCommand::Load { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            // A line that is not UTF-8 is one bad line, not a bad file.
            let text = String::from_utf8_lossy(&bytes);
            let mut rows = Vec::new();
            let mut bad = 0;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') || (i == 0 && line.starts_with("scope")) {
                    continue;
                }
                let fields: Vec<&str> = line.split(',').collect();
                match population_line(&fields) {
                    Ok(p) => rows.push(p),
                    Err(e) => {
                        bad += 1;
                        eprintln!("{}:{}: {e}", file.display(), i + 1);
                    }
                }
            }
            let n = store.add_population(&rows)?;
            println!(
                "loaded {} denominator(s) from {}{}",
                n,
                file.display(),
                if bad > 0 { format!(", {bad} line(s) rejected") } else { String::new() }
            );
            if rows.is_empty() && bad > 0 {
                return Err(Usage(format!("no line of {} could be read", file.display())).into());
            }
        }
        PopulationCommand::List => {
            let mut t = Table::new(&["scope", "key", "metric", "value", "valid from"]);
            for p in store.population()? {
                t.row(vec![p.scope, p.key, p.metric, format!("{:.0}", p.value), date(p.valid_from)]);
            }
            if t.is_empty() {
                println!(
                    "no population loaded: rates use the announced IPv4 address space (a proxy); see `farol population load --help`"
                );
            } else {
                print!("{}", t.render());
            }
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  farol report --from 2024-01-01 --to 2024-06-30 --out report.html\n  farol report --public --out public.html     TLP:CLEAR: aggregates only, no organization named"
)]
pub struct ReportArgs {
    /// First day (default: 180 days before --to)
    #[arg(long, value_parser = day_arg)]
    from: Option<Day>,
    /// Last day (default: today, UTC)
    #[arg(long, value_parser = day_arg)]
    to: Option<Day>,
    /// The country (default: [center] country)
    #[arg(long)]
    country: Option<String>,
    /// A public report (TLP:CLEAR): aggregates only, no organization named, nothing from
    /// TLP:AMBER+STRICT or RED events
    #[arg(long)]
    public: bool,
    /// Where to write the HTML
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
}

pub fn report(dir: &Path, args: ReportArgs) -> Result<()> {
    let cx = context(dir)?;
    let cc = match args.country.as_deref().or(cx.config.center.country.as_deref()) {
        Some(cc) => cc.to_ascii_uppercase(),
        None => {
            return Err(Usage("which country? give --country CC, or set [center] country in farol.toml".into()).into());
        }
    };
    country(&cc)?;
    let to = args.to.unwrap_or_else(today);
    let from = args.from.unwrap_or(to - 179);
    if from > to {
        return Err(Usage(format!("--from {} is after --to {}", date(from), date(to))).into());
    }
    let spec = farol_stats::report::Spec {
        center: cx.config.center.name.clone(),
        country: cc,
        from,
        to,
        public: args.public,
        peers: cx.config.stats.peers.clone(),
        marks: cx.config.stats.marks.clone(),
    };
    let html = farol_stats::report::render(&*cx.store, &spec, &cx.orgs, &cx.denominators)?;
    std::fs::write(&args.out, html).with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} ({}, {} to {})",
        args.out.display(),
        if args.public { "TLP:CLEAR" } else { "TLP:AMBER" },
        date(from),
        date(to)
    );
    Ok(())
}
