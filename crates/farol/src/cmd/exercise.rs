//! `farol exercise`: training exercises. A scenario (a TOML file: organizations, and timed steps
//! that deliver events or injects) is replayed at accelerated time into a workspace of its own,
//! while analysts work it in the portal or the CLI; `farol exercise summary` then measures how
//! long they took to detect, notify and resolve.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use farol_model::incident::{EntryKind, Status};
use farol_model::{ClassificationType, Timestamp};
use farol_store::IncidentFilter;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Usage;
use crate::config::FILE_NAME;

/// The scenarios that ship with farol.
const SHIPPED: [(&str, &str); 3] = [
    ("ransomware-hospital", include_str!("../../exercises/ransomware-hospital.toml")),
    ("botnet-university", include_str!("../../exercises/botnet-university.toml")),
    ("phishing-ministry", include_str!("../../exercises/phishing-ministry.toml")),
];

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  farol exercise list
  farol exercise run ransomware-hospital --speed 10      ten scenario minutes a real minute
  farol exercise run my-scenario.toml --dir drill-2026
  farol -d farol-exercise-ransomware-hospital exercise summary

A scenario is a TOML file (see the shipped ones in crates/farol/exercises/): [[org]] entries
(name, sector, prefix or asn, email) and [[step]] entries at scenario times (\"0m\", \"45m\",
\"2h\"): `events = { count, network, type, family, url }` arrive as a partner's IntelMQ feed
through `farol ingest`; `inject = \"...\"` is printed to the console and, with `from` and
`subject`, delivered to the incident Maildir as that constituent's e-mail.")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the shipped scenarios
    List,
    /// Replay a scenario (a shipped name or a TOML file) into a new workspace, and serve it
    Run {
        scenario: String,
        /// The workspace (default: farol-exercise-NAME)
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Scenario minutes per real minute
        #[arg(long, default_value_t = 1.0, value_parser = |s: &str| s.parse::<f64>().ok().filter(|v| *v > 0.0 && v.is_finite()).ok_or_else(|| format!("expected a positive number, found {s:?}")))]
        speed: f64,
        /// Address and port of the portal
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Deliver the steps and stop, without serving the portal
        #[arg(long)]
        no_serve: bool,
    },
    /// The after-action summary of the exercise in this workspace: time to detect, to notify, to resolve
    Summary {
        #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
        format: SummaryFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SummaryFormat {
    Text,
    Json,
}

/// A scenario as its file says it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    title: String,
    summary: String,
    #[serde(rename = "org")]
    orgs: Vec<ScenarioOrg>,
    #[serde(rename = "step")]
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioOrg {
    name: String,
    sector: farol_model::org::Sector,
    prefix: Option<Ipv4Net>,
    asn: Option<u32>,
    email: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at: String,
    events: Option<Events>,
    inject: Option<String>,
    from: Option<String>,
    subject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Events {
    count: u32,
    network: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    family: String,
    url: Option<String>,
}

impl Scenario {
    /// Reads and checks a scenario; every problem is named.
    fn parse(origin: &str, text: &str) -> Result<Scenario> {
        let s: Scenario = toml::from_str(text).map_err(|e| Usage(format!("{origin}: {e}")))?;
        let mut errors = Vec::new();
        for (i, step) in s.steps.iter().enumerate() {
            let at = format!("step {} (at {})", i + 1, step.at);
            if let Err(e) = offset(&step.at) {
                errors.push(format!("{at}: {e}"));
            }
            if step.events.is_none() && step.inject.is_none() {
                errors.push(format!("{at}: give events or an inject"));
            }
            if step.from.is_some() != step.subject.is_some() {
                errors.push(format!("{at}: from and subject go together"));
            }
            if let Some(e) = &step.events {
                if ClassificationType::parse(&e.kind).is_none() {
                    errors.push(format!("{at}: unknown classification type {:?}", e.kind));
                }
                if !s.orgs.iter().any(|o| o.name == e.network && o.prefix.is_some()) {
                    errors.push(format!("{at}: network {:?} is not an organization with a prefix", e.network));
                }
            }
        }
        if s.steps.windows(2).any(|w| offset(&w[0].at).ok() > offset(&w[1].at).ok()) {
            errors.push("steps must be in time order".into());
        }
        if errors.is_empty() { Ok(s) } else { Err(Usage(format!("{origin}: {}", errors.join("; "))).into()) }
    }
}

/// A step's time from the start, in seconds: `0m`, `45m`, `2h`.
fn offset(at: &str) -> Result<i64, String> {
    if at.trim().trim_end_matches(['s', 'm', 'h']) == "0" {
        return Ok(0);
    }
    crate::config::parse_duration(at).map_err(|_| format!("expected a time such as 0m, 45m or 2h, found {at:?}"))
}

/// What `run` leaves in the workspace for `summary`.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    scenario: String,
    title: String,
    /// Microseconds since the epoch.
    started: i64,
    speed: f64,
    /// (scenario time, what happened)
    delivered: Vec<(String, String)>,
}

const RECORD: &str = "exercise.json";

pub fn run(dir: &Path, args: Args) -> Result<()> {
    match args.command {
        Command::List => {
            for (name, text) in SHIPPED {
                let s = Scenario::parse(name, text)?;
                println!("{name:<22} {}\n{:<22} {}\n", s.title, "", s.summary.replace('\n', " "));
            }
            Ok(())
        }
        Command::Run { scenario, dir: into, speed, listen, no_serve } => {
            let (name, text) = match SHIPPED.iter().find(|(n, _)| *n == scenario) {
                Some((n, t)) => ((*n).to_owned(), (*t).to_owned()),
                None if Path::new(&scenario).is_file() => {
                    let name = Path::new(&scenario)
                        .file_stem()
                        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
                    (name, std::fs::read_to_string(&scenario).with_context(|| format!("cannot read {scenario}"))?)
                }
                None => {
                    let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
                    bail!(Usage(format!("no scenario {scenario:?}: one of {}, or a TOML file", names.join(", "))))
                }
            };
            let s = Scenario::parse(&name, &text)?;
            let dir = into.unwrap_or_else(|| PathBuf::from(format!("farol-exercise-{name}")));
            play(&dir, &name, &s, speed, (!no_serve).then_some(listen))
        }
        Command::Summary { format } => summary(dir, format),
    }
}

/// The analyst account of every exercise workspace.
const ANALYST: &str = "analyst@cert.exercise";
const PASSWORD: &str = "exercise-only-password";

fn play(dir: &Path, name: &str, s: &Scenario, speed: f64, listen: Option<SocketAddr>) -> Result<()> {
    if dir.join(FILE_NAME).exists() {
        bail!(Usage(format!("{} already holds a farol directory: remove it, or give another --dir", dir.display())));
    }
    let d = dir.to_str().ok_or_else(|| Usage("the workspace path must be UTF-8".into()))?;
    super::demo::farol_init(dir, "CERT Exercise")?;
    let config = dir.join(FILE_NAME);
    let text = std::fs::read_to_string(&config)?;
    std::fs::write(&config, text.replacen("# maildir = \"mail\"", "maildir = \"mail\"", 1))?;
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join("mail").join(sub))?;
    }
    let files = dir.join("exercise");
    std::fs::create_dir_all(&files)?;
    let ipdata = files.join("asn-ipv4-pt.csv");
    std::fs::write(&ipdata, include_str!("../../../../data/ipdata-sample/asn-ipv4-pt.csv"))?;
    super::demo::farol(dir, &["ipdata", "load", path(&ipdata)?], None)?;
    let mut csv = String::from("name,sector,asns,prefixes,domains,abuse_email,language,interval,format\n");
    for o in &s.orgs {
        let asn = o.asn.map(|a| a.to_string()).unwrap_or_default();
        let prefix = o.prefix.map(|p| p.to_string()).unwrap_or_default();
        csv.push_str(&format!(
            "\"{}\",{},{asn},{prefix},,{},en,daily,csv\n",
            o.name.replace('"', "\"\""),
            o.sector,
            o.email
        ));
    }
    let orgs = files.join("orgs.csv");
    std::fs::write(&orgs, csv)?;
    super::demo::farol(dir, &["org", "import", path(&orgs)?], None)?;
    super::demo::farol(dir, &["user", "add", ANALYST, "--role", "analyst", "--password-stdin"], Some(PASSWORD))?;

    println!("{}\n\n{}\n", s.title, s.summary.replace('\n', " "));
    println!("Workspace {d}; the analyst account: {ANALYST}, password {PASSWORD}.");
    let started = Timestamp::now();
    let mut record = Record {
        scenario: name.to_owned(),
        title: s.title.clone(),
        started: started.micros(),
        speed,
        delivered: Vec::new(),
    };
    let save =
        |record: &Record| -> Result<()> { Ok(std::fs::write(dir.join(RECORD), serde_json::to_vec_pretty(record)?)?) };
    save(&record)?;
    let server = match listen {
        Some(addr) => {
            println!(
                "The portal: http://{addr} (Ctrl-C ends the exercise; `farol -d {d} exercise summary` then measures it)\n"
            );
            let dir = dir.to_owned();
            Some(std::thread::spawn(move || super::serve::run(&dir, super::serve::Args::listening(addr))))
        }
        None => None,
    };
    let clock = Instant::now();
    for (i, step) in s.steps.iter().enumerate() {
        let at = offset(&step.at).map_err(Usage)?;
        let due = Duration::from_secs_f64(at as f64 / speed);
        if let Some(wait) = due.checked_sub(clock.elapsed()) {
            std::thread::sleep(wait);
        }
        let stamp = format!("T+{:02}:{:02}", at / 3600, at % 3600 / 60);
        if let Some(e) = &step.events {
            let what = deliver_events(dir, s, e, i)?;
            println!("[{stamp}] {what}");
            record.delivered.push((stamp.clone(), what));
        }
        if let Some(text) = &step.inject {
            println!("[{stamp}] INJECT: {text}");
            if let (Some(from), Some(subject)) = (&step.from, &step.subject) {
                write_mail(dir, i, from, subject, text)?;
                println!("          (e-mail from {from} in the incident Maildir: the portal takes it in within 30 s)");
            }
            record.delivered.push((stamp, format!("inject: {text}")));
        }
        save(&record)?;
    }
    match listen {
        Some(_) => {
            println!("\nEvery step is delivered: work the incidents, then Ctrl-C and `farol -d {d} exercise summary`.")
        }
        None => println!("\nEvery step is delivered."),
    }
    match server {
        Some(handle) => handle.join().map_err(|_| anyhow::anyhow!("the portal stopped"))?,
        None => Ok(()),
    }
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| Usage("paths must be UTF-8".into()).into())
}

/// Writes a step's events as a partner's IntelMQ feed and ingests it; returns what it did.
fn deliver_events(dir: &Path, s: &Scenario, e: &Events, step: usize) -> Result<String> {
    let org = s.orgs.iter().find(|o| o.name == e.network).and_then(|o| o.prefix).context("checked when read")?;
    let now = Timestamp::now().to_rfc3339();
    let mut lines = String::new();
    let size = 1u64 << (32 - u32::from(org.prefix_len()));
    for k in 0..u64::from(e.count) {
        // Spread over the network, the same addresses for the same step.
        let offset = (k * 7919 + step as u64 * 104_729) % size;
        let ip = Ipv4Addr::from(u32::from(org.network()) + offset as u32);
        let mut ev = json!({
            "time.source": now, "source.ip": ip.to_string(), "classification.type": e.kind,
            "feed.provider": "Partner CERT (exercise)", "tlp": "AMBER",
        });
        if !e.family.is_empty() {
            ev["malware.name"] = json!(e.family);
            ev["classification.identifier"] = json!(e.family);
        }
        if let Some(url) = &e.url {
            ev["source.url"] = json!(url);
        }
        lines.push_str(&ev.to_string());
        lines.push('\n');
    }
    let file = dir.join("exercise").join(format!("step-{}.jsonl", step + 1));
    std::fs::write(&file, lines)?;
    super::demo::farol(dir, &["ingest", "--feed", "partner-cert", path(&file)?], None)?;
    let family = if e.family.is_empty() { String::new() } else { format!(", {}", e.family) };
    Ok(format!("{} event(s) from partner-cert ({}{family}) in {}", e.count, e.kind, e.network))
}

/// Delivers an inject as the e-mail a constituent would send, into the Maildir's `new/`.
fn write_mail(dir: &Path, step: usize, from: &str, subject: &str, text: &str) -> Result<()> {
    let now = Timestamp::now();
    let name = format!("{}.exercise-{}.farol", now.secs(), step + 1);
    let mut f = std::fs::File::create(dir.join("mail/tmp").join(&name))?;
    write!(
        f,
        "From: {from}\r\nTo: incidents@cert.exercise\r\nSubject: {subject}\r\nDate: {}\r\n\
         Message-ID: <exercise-{}-{}@cert.exercise>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
        rfc2822(now),
        now.micros(),
        step + 1
    )?;
    drop(f);
    // Delivered as a mail transfer agent delivers: written in tmp/, then moved into new/.
    std::fs::rename(dir.join("mail/tmp").join(&name), dir.join("mail/new").join(&name))?;
    Ok(())
}

fn rfc2822(t: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s, _) = t.to_parts();
    let weekday = DAYS[t.day().rem_euclid(7) as usize];
    format!("{weekday}, {d} {} {y} {h:02}:{mi:02}:{s:02} +0000", MONTHS[(mo as usize).saturating_sub(1).min(11)])
}

/// A duration in scenario time, as people read it.
fn span(micros: i64, speed: f64) -> String {
    let secs = (micros as f64 / 1e6 * speed).round() as i64;
    format!("{}h {:02}m {:02}s", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn summary(dir: &Path, format: SummaryFormat) -> Result<()> {
    let text = std::fs::read(dir.join(RECORD)).map_err(|_| {
        crate::Missing(format!("no exercise in {}: run `farol exercise run SCENARIO` first", dir.display()))
    })?;
    let record: Record = serde_json::from_slice(&text).context("exercise.json is damaged")?;
    let (_, store) = super::open(dir)?;
    let started = record.started;
    let mut detected = None; // the first incident the center opened
    let mut reported = None; // the first incident from a constituent's e-mail
    let mut notified = None; // the first e-mail the center sent about one
    let mut closed = Vec::new();
    // The workspace is the exercise's own: every incident opened since the start is part of it.
    let incidents: Vec<_> = store
        .incidents(&IncidentFilter { limit: 10_000, ..Default::default() })?
        .into_iter()
        .filter(|i| i.created.micros() >= started)
        .collect();
    let first = |slot: &mut Option<i64>, at: i64| *slot = Some(slot.map_or(at, |s| s.min(at)));
    for i in &incidents {
        let timeline = store.timeline(i.id)?;
        let at = i.created.micros() - started;
        if timeline.first().is_some_and(|e| e.kind == EntryKind::Mail) {
            first(&mut reported, at);
        } else {
            first(&mut detected, at);
        }
        for e in timeline.iter().filter(|e| e.kind == EntryKind::Notification) {
            first(&mut notified, e.at.micros() - started);
        }
        closed.push(i.closed.filter(|_| i.status == Status::Resolved).map(|c| c.micros() - started));
    }
    // Resolved: every incident of the exercise resolved; the time of the last.
    let resolved = (!closed.is_empty() && closed.iter().all(Option::is_some))
        .then(|| closed.iter().flatten().max().copied())
        .flatten();
    let show = |v: Option<i64>| v.map_or("not yet".to_owned(), |m| span(m, record.speed));
    if format == SummaryFormat::Json {
        let scenario_secs = |v: Option<i64>| v.map(|m| (m as f64 / 1e6 * record.speed).round() as i64);
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "scenario": record.scenario, "title": record.title, "speed": record.speed,
                "incidents": incidents.len(),
                "seconds_to_detect": scenario_secs(detected), "seconds_to_first_report": scenario_secs(reported),
                "seconds_to_notify": scenario_secs(notified), "seconds_to_resolve": scenario_secs(resolved),
            }))?
        );
        return Ok(());
    }
    println!(
        "After-action summary: {} ({}), in scenario time (x{} speed)\n",
        record.title, record.scenario, record.speed
    );
    println!("  time to detect (first incident the center opened)   {}", show(detected));
    println!("  first report by a constituent's e-mail              {}", show(reported));
    println!("  time to notify (first e-mail to an organization)    {}", show(notified));
    println!("  time to resolve (every incident resolved)           {}", show(resolved));
    println!("\nWhat the scenario delivered:");
    for (stamp, what) in &record.delivered {
        println!("  [{stamp}] {what}");
    }
    println!("\nIncidents of the exercise: {}", incidents.len());
    for i in &incidents {
        println!("  {:>4}  {:<9} {:<8} {}", i.id, i.status.as_str(), i.severity.as_str(), i.title);
    }
    Ok(())
}
