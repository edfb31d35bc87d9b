//! `farol.toml`: reading it, checking all of it at once, and the commented default that
//! `farol init` writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use farol_feeds::ParseConfig;
use farol_model::org::Distribution;
use farol_pipeline::{Defaults, Feed};
use serde::Deserialize;

pub const FILE_NAME: &str = "farol.toml";
/// One file per feed, named after the feed: `feeds.d/NAME.toml`.
pub const FEEDS_DIR: &str = "feeds.d";
/// Operator warninglists in MISP's format: `warninglists/*.json`.
pub const WARNINGLISTS_DIR: &str = "warninglists";

/// The whole configuration, checked.
#[derive(Debug)]
pub struct Config {
    pub center: Center,
    /// The store: `[store]` or `FAROL_DATABASE_URL`.
    pub store: farol_store::Location,
    /// Where temporary files go: the SQLite store's directory, or `data/`.
    pub data_dir: PathBuf,
    pub feeds: BTreeMap<String, Feed>,
    /// The feeds that have a collector, with their schedules.
    pub collectors: Vec<farol_collect::Collector>,
    /// Shadowserver's schema, when the operator points farol at one (otherwise the shipped one).
    pub shadowserver: Option<std::sync::Arc<farol_feeds::shadowserver::Schema>>,
    /// The operator's warninglist files.
    pub warninglists: Vec<PathBuf>,
    pub server: Server,
    pub notify: Notify,
    /// `[incidents]` and `[playbooks]`: deadlines, playbooks, files.
    pub incidents: farol_model::incident::Handling,
    /// `[incidents] maildir`: where an MTA delivers the e-mail that becomes incidents.
    pub maildir: Option<PathBuf>,
    /// `[stats]`: peer countries and dated marks for the statistics and the report.
    pub stats: Stats,
    /// `[[indicators.rules]]`: which events give indicators (the built-in rules when none).
    pub indicator_rules: Vec<farol_share::Rule>,
    /// `[partners.NAME]`: partner centers whose TAXII collections farol pulls (and pushes to).
    pub partners: Vec<Partner>,
    /// `[processing] workers`: reports are only archived where they arrive, and `farol worker`
    /// processes process them.
    pub queue: bool,
    /// `[streams]`: each organization's new events to its AMQP exchange.
    pub streams: Option<farol_collect::stream::StreamConfig>,
}

/// A partner center, checked; its community and pushed collection are names the store resolves.
#[derive(Debug, Clone)]
pub struct Partner {
    pub name: String,
    pub http: farol_collect::HttpConfig,
    pub distribution: Distribution,
    pub community: Option<String>,
    /// Ours to push: constituency, partners or community:NAME.
    pub push: Option<String>,
    pub schedule: Option<farol_collect::Schedule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerSection {
    url: String,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
    schedule: Option<String>,
    #[serde(default)]
    allow_private: bool,
    distribution: Option<String>,
    community: Option<String>,
    push: Option<String>,
    timeout_secs: Option<u64>,
}

fn partners(sections: BTreeMap<String, PartnerSection>, errors: &mut Vec<String>) -> Vec<Partner> {
    let mut out = Vec::new();
    for (name, p) in sections {
        let mut problems = Vec::new();
        if !p.url.ends_with('/') || !p.url.contains("/collections/") {
            problems.push(format!("url {:?}: the partner's collection, ending in /collections/ID/", p.url));
        }
        let distribution = match p.distribution.as_deref().map(str::parse::<Distribution>) {
            None => Distribution::Constituents,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                problems.push(e);
                Distribution::Producer
            }
        };
        if (distribution == Distribution::Community) != p.community.is_some() {
            problems.push("community goes with distribution = \"community\", and it with community".into());
        }
        if let Some(push) = &p.push
            && !(push == "constituency" || push == "partners" || push.starts_with("community:"))
        {
            problems.push(format!("push {push:?}: constituency, partners or community:NAME"));
        }
        let schedule = match p.schedule.as_deref().map(str::parse::<farol_collect::Schedule>) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                problems.push(e);
                None
            }
        };
        let mut headers = BTreeMap::new();
        if let Some(token) = p.token {
            headers.insert("Authorization".to_owned(), format!("Token {token}"));
        }
        let http = farol_collect::HttpConfig {
            url: p.url,
            headers,
            username: p.username,
            password: p.password,
            timeout_secs: p.timeout_secs.unwrap_or(300),
            max_bytes: 1 << 30,
            allow_private: p.allow_private,
            retries: 3,
            retry_delay_ms: 1000,
            name: None,
        };
        errors.extend(problems.iter().map(|e| format!("partners.{name}: {e}")));
        if problems.is_empty() {
            out.push(Partner { name, http, distribution, community: p.community, push: p.push, schedule });
        }
    }
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorsSection {
    #[serde(default)]
    rules: Vec<RuleSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    types: Vec<String>,
    fields: Vec<String>,
    #[serde(default = "default_confidence")]
    confidence: u8,
    valid_days: Option<u32>,
}

fn default_confidence() -> u8 {
    50
}

fn indicator_rules(section: IndicatorsSection, errors: &mut Vec<String>) -> Vec<farol_share::Rule> {
    if section.rules.is_empty() {
        return farol_share::Rule::defaults();
    }
    let mut rules = Vec::new();
    for (n, r) in section.rules.into_iter().enumerate() {
        let mut problems = Vec::new();
        let types = r
            .types
            .iter()
            .filter_map(|t| {
                farol_model::ClassificationType::parse(t).map(|t| t.value()).or_else(|| {
                    problems.push(format!("unknown classification type {t:?} (see `farol taxonomy`)"));
                    None
                })
            })
            .collect();
        let fields = r
            .fields
            .iter()
            .filter_map(|f| {
                farol_model::Field::from_name(f).or_else(|| {
                    problems.push(format!("unknown field {f:?}"));
                    None
                })
            })
            .collect();
        match farol_share::Rule::new(types, fields, r.confidence, r.valid_days) {
            Ok(rule) if problems.is_empty() => rules.push(rule),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
        errors.extend(problems.into_iter().map(|p| format!("indicators.rules[{n}]: {p}")));
    }
    rules
}

/// `[stats]`, checked.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub peers: Vec<String>,
    pub marks: Vec<farol_stats::Mark>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsSection {
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    marks: Vec<MarkSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkSection {
    date: String,
    label: String,
}

fn stats(section: StatsSection, errors: &mut Vec<String>) -> Stats {
    let mut peers = Vec::new();
    for cc in section.peers {
        if cc.len() == 2 && cc.chars().all(|c| c.is_ascii_alphabetic()) {
            peers.push(cc.to_ascii_uppercase());
        } else {
            errors.push(format!("stats.peers: expected two-letter country codes such as ES, found {cc:?}"));
        }
    }
    let mut marks = Vec::new();
    for m in section.marks {
        match farol_stats::parse_day(&m.date) {
            Some(day) => marks.push(farol_stats::Mark { day, label: m.label }),
            None => errors.push(format!("stats.marks: expected a date such as 2024-03-01, found {:?}", m.date)),
        }
    }
    Stats { peers, marks }
}

/// `[notify]`, checked: how notifications are written and where they are sent.
#[derive(Debug, Clone)]
pub struct Notify {
    pub settings: farol_notify::Settings,
    /// Whether `from` was given: nothing is sent without it.
    pub has_sender: bool,
    /// `FAROL_SMTP_URL`, else `smtp_url`.
    pub smtp_url: Option<String>,
    /// The operator's templates (which need not exist).
    pub templates: PathBuf,
    /// The center's OpenPGP secret key (ASCII-armored), to sign every message.
    pub signing_key: Option<PathBuf>,
    /// The CA certificate (PEM) of an SMTP server whose certificate no public CA signed.
    pub smtp_ca: Option<PathBuf>,
}

/// The environment variable that holds the passphrase of `[notify] signing_key`.
pub const SIGNING_PASSPHRASE_ENV: &str = "FAROL_SIGNING_PASSPHRASE";

/// The environment variable that names the SMTP server, credentials included; it overrides
/// `[notify] smtp_url`.
pub const SMTP_URL_ENV: &str = "FAROL_SMTP_URL";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentsSection {
    #[serde(default)]
    first_response: BTreeMap<String, String>,
    #[serde(default)]
    resolution: BTreeMap<String, String>,
    max_file_mib: Option<usize>,
    file_types: Option<Vec<String>>,
    maildir: Option<PathBuf>,
}

/// How incidents are handled: the defaults, with what `[incidents]` and `[playbooks]` give
/// instead.
fn handling(
    section: &IncidentsSection,
    playbooks: BTreeMap<String, Vec<String>>,
    errors: &mut Vec<String>,
) -> farol_model::incident::Handling {
    use farol_model::incident::{FileRules, Handling, Severity};
    let mut d = farol_model::incident::Deadlines::default();
    for (key, given, into) in [
        ("first_response", &section.first_response, &mut d.first_response),
        ("resolution", &section.resolution, &mut d.resolution),
    ] {
        for (severity, duration) in given {
            match (severity.parse::<Severity>(), parse_duration(duration)) {
                (Ok(s), Ok(secs)) => into[s as usize] = secs,
                (Err(e), _) | (_, Err(e)) => errors.push(format!("incidents.{key}.{severity}: {e}")),
            }
        }
    }
    let mut files = FileRules::default();
    match section.max_file_mib {
        Some(0) => errors.push("incidents.max_file_mib: expected at least 1".to_owned()),
        Some(mib) => files.max_bytes = mib.saturating_mul(1 << 20),
        None => {}
    }
    if let Some(types) = &section.file_types {
        files.types = types.iter().map(|t| t.trim().to_ascii_lowercase()).collect();
    }
    for class in playbooks.keys() {
        if farol_model::ClassificationType::parse(class).map(|c| c.value().as_str()) != Some(class.as_str()) {
            errors
                .push(format!("playbooks.{class}: expected a classification type such as phishing or infected-system"));
        }
    }
    for (class, tasks) in &playbooks {
        if tasks.iter().any(|t| t.trim().is_empty() || t.contains('\n')) {
            errors.push(format!("playbooks.{class}: each task is one line of text"));
        }
    }
    Handling { deadlines: d, playbooks, files }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifySection {
    from: Option<String>,
    reply_to: Option<String>,
    smtp_url: Option<String>,
    daily_hour: Option<u32>,
    max_events: Option<usize>,
    templates: Option<PathBuf>,
    signing_key: Option<PathBuf>,
    smtp_ca: Option<PathBuf>,
}

/// `[server]`, checked: where `farol serve` listens, and its TLS certificate chain and key
/// (paths resolved against the farol directory).
#[derive(Debug, Clone, Default)]
pub struct Server {
    pub listen: Option<std::net::SocketAddr>,
    pub tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    listen: Option<std::net::SocketAddr>,
    tls_certificate: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Center {
    /// The national center's name.
    pub name: String,
    /// The country the center serves (ISO 3166 alpha-2).
    pub country: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    center: Center,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    shadowserver: ShadowserverSection,
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    notify: NotifySection,
    #[serde(default)]
    incidents: IncidentsSection,
    #[serde(default)]
    playbooks: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    stats: StatsSection,
    #[serde(default)]
    indicators: IndicatorsSection,
    #[serde(default)]
    partners: BTreeMap<String, PartnerSection>,
    #[serde(default)]
    processing: ProcessingSection,
    streams: Option<farol_collect::stream::StreamConfig>,
    #[serde(default)]
    feeds: BTreeMap<String, toml::Table>,
}

/// The store that `FAROL_DATABASE_URL` or else `[store]` names, and the directory for
/// temporary files.
fn store(dir: &Path, section: &StoreSection) -> std::result::Result<(farol_store::Location, PathBuf), String> {
    if section.path.is_some() && section.url.is_some() {
        return Err("store: give path or url, not both".to_owned());
    }
    let location = match (std::env::var("FAROL_DATABASE_URL"), &section.url) {
        (Ok(url), _) => farol_store::Location::parse(dir, &url).map_err(|e| format!("FAROL_DATABASE_URL: {e}"))?,
        (Err(_), Some(url)) => farol_collect::expand(url)
            .map_err(|e| e.to_string())
            .and_then(|url| farol_store::Location::parse(dir, &url))
            .map_err(|e| format!("store.url: {e}"))?,
        (Err(_), None) => {
            farol_store::Location::Sqlite(dir.join(section.path.as_deref().unwrap_or(Path::new("data/farol.db"))))
        }
    };
    let data = match &location {
        farol_store::Location::Sqlite(path) => path.parent().map_or_else(|| dir.join("data"), Path::to_owned),
        farol_store::Location::Postgres(_) => dir.join("data"),
    };
    Ok((location, data))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessingSection {
    #[serde(default)]
    workers: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    /// The SQLite file.
    path: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`; `${VAR}` is read from
    /// the environment.
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowserverSection {
    /// Shadowserver's `intelmq.json`, instead of the schema farol ships.
    schema: Option<PathBuf>,
}

/// The environment variable that points farol at a Shadowserver schema file.
pub const SHADOWSERVER_SCHEMA_ENV: &str = "FAROL_SHADOWSERVER_SCHEMA";

fn load_schema(path: &Path) -> Result<farol_feeds::shadowserver::Schema, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let schema =
        farol_feeds::shadowserver::Schema::from_json(&text).map_err(|e| format!("{}: {}", path.display(), e.0))?;
    if !schema.unknown_converters.is_empty() {
        tracing::warn!(
            schema = %path.display(),
            converters = %schema.unknown_converters.join(", "),
            "the Shadowserver schema names converters this farol does not know; their values are kept as they come"
        );
    }
    Ok(schema)
}

/// The feed-level keys; everything else in a feed's table is how to parse it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedSection {
    provider: Option<String>,
    format: Option<String>,
    tlp: Option<String>,
    accuracy: Option<f64>,
    code: Option<String>,
    documentation: Option<String>,
    url: Option<String>,
    #[serde(default)]
    constants: BTreeMap<String, String>,
    collector: Option<farol_collect::CollectorConfig>,
    schedule: Option<String>,
    aggregate: Option<AggregateSection>,
    warninglisted: Option<String>,
    distribution: Option<String>,
    community: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateSection {
    key: Vec<String>,
    window: String,
}

const FEED_KEYS: &[&str] = &[
    "provider",
    "format",
    "tlp",
    "accuracy",
    "code",
    "documentation",
    "url",
    "constants",
    "collector",
    "schedule",
    "aggregate",
    "warninglisted",
    "distribution",
    "community",
];

/// A length of time such as `90s`, `10m`, `1h`, `1d` or `1w`, in seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let unit = match s.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        Some('w') => 7 * 86_400,
        _ => 0,
    };
    s[..s.len().saturating_sub(1)]
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0 && unit > 0)
        .map(|n| n.saturating_mul(unit))
        .ok_or_else(|| format!("expected a duration such as 10m, 1h or 1d, found {s:?}"))
}

/// Every problem found in the configuration.
#[derive(Debug)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<String>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} has {} problem(s):", self.file.display(), self.errors.len())?;
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        write!(f, "fix them and run the command again")
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads `DIR/farol.toml` and `DIR/feeds.d/*.toml`, reporting every error at once.
    pub fn load(dir: &Path) -> Result<Config> {
        let file = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::Error::new(crate::Missing(format!(
                    "no {FILE_NAME} in {}: run `farol init {}` to create one, or pass --dir (or set FAROL_DIR) to use another",
                    dir.display(),
                    dir.display()
                )))
            } else {
                anyhow::Error::new(e).context(format!("cannot read {}", file.display()))
            }
        })?;
        let parsed: File =
            toml::from_str(&text).map_err(|e| ConfigErrors { file: file.clone(), errors: vec![e.to_string()] })?;
        let mut errors = Vec::new();
        let mut feeds = BTreeMap::new();
        let mut tables: Vec<(String, toml::Table, String)> = parsed
            .feeds
            .into_iter()
            .map(|(name, t)| {
                let origin = format!("feeds.{name}");
                (name, t, origin)
            })
            .collect();
        for (name, table, origin) in feed_files(dir, &mut errors) {
            if tables.iter().any(|(n, ..)| *n == name) {
                errors.push(format!("{origin}: feed {name} is also declared in {FILE_NAME}"));
            } else {
                tables.push((name, table, origin));
            }
        }
        let mut collections = Vec::new();
        for (name, table, origin) in tables {
            match build_feed(&name, table) {
                Ok((feed, collection)) => {
                    if let Some((config, schedule)) = collection {
                        collections.push((name.clone(), config, schedule));
                    }
                    feeds.insert(name, feed);
                }
                Err(es) => errors.extend(es.into_iter().map(|e| format!("{origin}: {e}"))),
            }
        }
        if let Some(cc) = &parsed.center.country
            && (cc.len() != 2 || !cc.chars().all(|c| c.is_ascii_uppercase()))
        {
            errors.push(format!("center.country: expected a two-letter country code such as PT, found {cc:?}"));
        }
        let schema_path = std::env::var_os(SHADOWSERVER_SCHEMA_ENV)
            .map(PathBuf::from)
            .or_else(|| parsed.shadowserver.schema.as_ref().map(|p| dir.join(p)));
        let shadowserver = match schema_path.map(|p| load_schema(&p)) {
            Some(Ok(schema)) => Some(std::sync::Arc::new(schema)),
            Some(Err(e)) => {
                errors.push(format!("shadowserver.schema: {e}"));
                None
            }
            None => None,
        };
        for feed in feeds.values_mut() {
            feed.parse.shadowserver_schema.clone_from(&shadowserver);
        }
        let section = parsed.server;
        let tls = match (section.tls_certificate, section.tls_key) {
            (Some(certificate), Some(key)) => Some((dir.join(certificate), dir.join(key))),
            (None, None) => None,
            _ => {
                errors.push("server: tls_certificate and tls_key go together: give both, or neither".to_owned());
                None
            }
        };
        let server = Server { listen: section.listen, tls };
        let notify = notify_settings(dir, &parsed.center, parsed.notify, &mut errors);
        let incidents = handling(&parsed.incidents, parsed.playbooks, &mut errors);
        let maildir = parsed.incidents.maildir.as_ref().map(|m| dir.join(m));
        let stats = stats(parsed.stats, &mut errors);
        let indicator_rules = indicator_rules(parsed.indicators, &mut errors);
        let (store, data_dir) = store(dir, &parsed.store).unwrap_or_else(|e| {
            errors.push(e);
            (farol_store::Location::Sqlite(PathBuf::new()), PathBuf::new())
        });
        let partners = partners(parsed.partners, &mut errors);
        if let Some(streams) = &parsed.streams {
            errors.extend(streams.problems().into_iter().map(|e| format!("streams.{e}")));
        }
        let warninglists = warninglist_files(dir);
        for path in &warninglists {
            if let Err(e) = read_warninglist(path) {
                errors.push(e);
            }
        }
        let collectors = collections
            .into_iter()
            .filter_map(|(name, config, schedule)| {
                let config = match config {
                    farol_collect::CollectorConfig::File { path } => {
                        farol_collect::CollectorConfig::File { path: dir.join(path) }
                    }
                    farol_collect::CollectorConfig::Spool { dir: spool } => {
                        farol_collect::CollectorConfig::Spool { dir: dir.join(spool) }
                    }
                    http => http,
                };
                Some(farol_collect::Collector { feed: feeds.get(&name)?.clone(), config, schedule })
            })
            .collect();
        if !errors.is_empty() {
            return Err(ConfigErrors { file, errors }.into());
        }
        Ok(Config {
            collectors,
            shadowserver,
            warninglists,
            center: parsed.center,
            server,
            notify,
            incidents,
            maildir,
            stats,
            indicator_rules,
            partners,
            queue: parsed.processing.workers,
            streams: parsed.streams,
            store,
            data_dir,
            feeds,
        })
    }

    /// The feed a stored report is processed with: its feed, in the format the report was
    /// stored in unless the feed names one.
    pub fn report_feed(&self, report: &farol_model::Report) -> Result<Feed> {
        let mut feed = self.feed(&report.feed, None)?;
        feed.format.get_or_insert_with(|| report.format.clone());
        Ok(feed)
    }

    /// The feed named `name`: as configured, or an ad-hoc one whose format is given or detected.
    pub fn feed(&self, name: &str, format: Option<&str>) -> Result<Feed> {
        let mut feed = match self.feeds.get(name) {
            Some(feed) => feed.clone(),
            None => {
                if matches!(format, Some("csv" | "json")) {
                    anyhow::bail!(crate::Usage(format!(
                        "feed {name} is not declared: the {} format needs a column mapping; declare the feed in {} \
                         or {}/{name}.toml (see the comments in {FILE_NAME})",
                        format.unwrap_or_default(),
                        FILE_NAME,
                        FEEDS_DIR
                    )));
                }
                let mut feed = Feed::adhoc(name, None);
                feed.parse.shadowserver_schema.clone_from(&self.shadowserver);
                feed
            }
        };
        if let Some(f) = format {
            farol_feeds::format(f).map_err(|e| crate::Usage(e.0))?;
            feed.format = Some(f.to_owned());
        }
        Ok(feed)
    }
}

impl Config {
    /// The national scope's country, from `[center] country`.
    pub fn country(&self) -> Option<[u8; 2]> {
        let b = self.center.country.as_deref()?.as_bytes();
        (b.len() == 2).then(|| [b[0], b[1]])
    }
}

fn notify_settings(dir: &Path, center: &Center, section: NotifySection, errors: &mut Vec<String>) -> Notify {
    let defaults = farol_notify::Settings::default();
    let settings = farol_notify::Settings {
        center: center.name.clone(),
        from: section.from.clone().unwrap_or(defaults.from),
        reply_to: section.reply_to,
        daily_hour: section.daily_hour.unwrap_or(defaults.daily_hour),
        max_events: section.max_events.unwrap_or(defaults.max_events),
    };
    errors.extend(settings.problems().into_iter().map(|e| format!("notify.{e}")));
    let smtp_url = std::env::var(SMTP_URL_ENV).ok().filter(|u| !u.is_empty()).or(section.smtp_url);
    let templates = dir.join(section.templates.unwrap_or_else(|| PathBuf::from("templates/notify")));
    let signing_key = section.signing_key.map(|p| dir.join(p));
    let smtp_ca = section.smtp_ca.map(|p| dir.join(p));
    if let Some(ca) = smtp_ca.as_ref().filter(|c| !c.is_file()) {
        errors.push(format!("notify.smtp_ca: no file {}", ca.display()));
    }
    if let Some(key) = signing_key.as_ref().filter(|k| !k.is_file()) {
        errors.push(format!("notify.signing_key: no file {}", key.display()));
    }
    Notify { settings, has_sender: section.from.is_some(), smtp_url, templates, signing_key, smtp_ca }
}

fn warninglist_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join(WARNINGLISTS_DIR)) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Reads one operator warninglist.
pub fn read_warninglist(path: &Path) -> Result<farol_enrich::warninglist::Warninglist, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    farol_enrich::warninglist::Warninglist::from_misp_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn feed_files(dir: &Path, errors: &mut Vec<String>) -> Vec<(String, toml::Table, String)> {
    let Ok(entries) = std::fs::read_dir(dir.join(FEEDS_DIR)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let origin = format!("{FEEDS_DIR}/{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(table) => out.push((name, table, origin)),
            Err(e) => errors.push(format!("{origin}: {e}")),
        }
    }
    out
}

/// A feed's collector and schedule, as configured.
type Collection = Option<(farol_collect::CollectorConfig, Option<farol_collect::Schedule>)>;

fn build_feed(name: &str, mut table: toml::Table) -> Result<(Feed, Collection), Vec<String>> {
    let mut errors = Vec::new();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        errors.push(format!("feed name {name:?} must be letters, digits, '-', '_' or '.'"));
    }
    let feed_level: toml::Table =
        FEED_KEYS.iter().filter_map(|k| table.remove(*k).map(|v| ((*k).to_owned(), v))).collect();
    let section: FeedSection = feed_level.try_into().unwrap_or_else(|e: toml::de::Error| {
        errors.push(e.to_string());
        FeedSection::default()
    });
    let parse: ParseConfig = table.try_into().unwrap_or_else(|e: toml::de::Error| {
        errors.push(e.message().to_owned());
        ParseConfig::default()
    });
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            pairs.push((k.to_owned(), v));
        }
    };
    put("feed.provider", section.provider);
    put("tlp", section.tlp);
    put("feed.accuracy", section.accuracy.map(|a| a.to_string()));
    put("feed.code", section.code);
    put("feed.documentation", section.documentation);
    put("feed.url", section.url);
    pairs.extend(section.constants);
    let defaults = Defaults::new(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap_or_else(|es| {
        errors.extend(es.into_iter().map(|e| e.to_string()));
        Defaults::default()
    });
    let schedule = match section.schedule.as_deref().map(str::parse::<farol_collect::Schedule>) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => None,
    };
    if schedule.is_some() && section.collector.is_none() {
        errors.push("schedule needs a collector: add [feeds.NAME.collector]".to_owned());
    }
    let collection = section.collector.map(|c| (c, schedule));
    let aggregate = section.aggregate.and_then(|a| {
        parse_duration(&a.window)
            .and_then(|w| farol_pipeline::Aggregation::new(&a.key, w))
            .map_err(|e| errors.push(format!("aggregate: {e}")))
            .ok()
    });
    let drop_warninglisted = match section.warninglisted.as_deref() {
        None | Some("mark") => false,
        Some("drop") => true,
        Some(other) => {
            errors.push(format!("warninglisted: expected \"mark\" or \"drop\", found {other:?}"));
            false
        }
    };
    let distribution = match section.distribution.as_deref().map(str::parse::<Distribution>) {
        None => Distribution::Affected,
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            errors.push(format!("distribution: {e}"));
            Distribution::Affected
        }
    };
    match (&section.community, distribution) {
        (Some(c), Distribution::Community) => {
            if let Err(e) = farol_model::indicator::Community::check_name(c) {
                errors.push(format!("community: {e}"));
            }
        }
        (None, Distribution::Community) => {
            errors
                .push("distribution = \"community\" needs community = \"NAME\" (see farol community list)".to_owned());
        }
        (Some(_), _) => errors.push("community is for distribution = \"community\"".to_owned()),
        (None, _) => {}
    }
    let feed = Feed {
        name: name.to_owned(),
        format: section.format,
        parse,
        defaults,
        aggregate,
        drop_warninglisted,
        distribution,
        community: section.community,
    };
    if let Some(format) = &feed.format {
        match farol_feeds::format(format) {
            Ok(f) => {
                if let Err(e) = (f.build)(&feed.parse, None) {
                    errors.push(e.0);
                }
            }
            Err(e) => errors.push(e.0),
        }
    }
    if errors.is_empty() { Ok((feed, collection)) } else { Err(errors) }
}

/// The commented configuration that `farol init` writes.
pub fn template(center: &str, country: Option<&str>) -> String {
    let country = match country {
        Some(cc) => format!("country = \"{cc}\""),
        None => "# country = \"PT\"".to_owned(),
    };
    format!(
        r##"# farol configuration. Paths are relative to the directory of this file.
# Every key is documented here; `farol --help` lists the commands.

[center]
# The national center (CERT/CSIRT) that runs this farol.
name = "{center}"
# The country it serves, as an ISO 3166 two-letter code: the national scope. Events in no
# organization's networks are "national" when their source is in this country, "outside"
# otherwise.
{country}

[store]
# The embedded store: one SQLite file. Back it up with `farol backup FILE` (while farol runs).
# Or a PostgreSQL database shared by farol processes on several machines (OPERATIONS.md):
# url = "postgres://farol:${{FAROL_DB_PASSWORD}}@db.example:5432/farol?sslmode=require"
# (sslmode=require: TLS, the server's certificate and name checked against sslrootcert=PEM or
# the system's CAs.)
# FAROL_DATABASE_URL (sqlite://PATH or postgres://...) overrides both.
path = "data/farol.db"

[server]
# Where `farol serve` listens (--listen overrides it). Plain HTTP on 127.0.0.1 by default; give
# a certificate chain and its private key (PEM files) and it speaks HTTPS only, with Secure
# cookies and HSTS.
# listen = "0.0.0.0:8443"
# tls_certificate = "tls/fullchain.pem"
# tls_key = "tls/privkey.pem"

[notify]
# E-mail to the organizations of the constituency: `farol notify` queues a digest of the new
# events in each organization's networks for each contact that is due (see `farol org add
# --interval`) and sends it; `farol serve` does the same every minute. Nothing is sent until
# `from` is set. Templates: templates/notify/LANG/*.txt beside this file replace the shipped
# ones of the same name (`farol notify templates` writes them out to start from).
# from = "{center} <cert@cert.example>"
# reply_to = "incidents@cert.example"
# The SMTP server: smtp://host:25 (plain), smtp://host:587?tls=required (STARTTLS),
# smtps://user:password@host:465 (TLS). FAROL_SMTP_URL overrides it; keep credentials there.
# smtp_url = "smtp://127.0.0.1:25"
# The CA certificate (PEM) of a relay whose TLS certificate no public CA signed.
# smtp_ca = "keys/smtp-ca.pem"
# Daily digests fall due at this hour (UTC), weekly ones on Mondays at this hour.
# daily_hour = 6
# At most this many events in one message's attachment (the portal lists all).
# max_events = 50000
# templates = "templates/notify"
# Sign every message with the center's OpenPGP key (PGP/MIME): an ASCII-armored secret key, as
# `gpg --armor --export-secret-keys cert@cert.example` writes it; its passphrase, if any, in
# FAROL_SIGNING_PASSPHRASE.
# signing_key = "keys/notify-signing-key.asc"

[incidents]
# Time allowed for the first response (leaving "new") and for resolution, by severity; open
# incidents past them are listed by `farol incident list --overdue`. The defaults:
# first_response = {{ critical = "1h", high = "4h", medium = "1d", low = "3d" }}
# resolution = {{ critical = "1d", high = "3d", medium = "7d", low = "30d" }}
# Files with reports, comments and e-mail: the largest, in MiB, and the media types accepted
# (files of a type with a signature, such as PDF or PNG, must start with it). The defaults:
# max_file_mib = 10
# file_types = ["text/plain", "text/csv", "application/json", "application/pdf", "image/png",
#   "image/jpeg", "image/gif", "message/rfc822", "application/zip", "application/gzip",
#   "application/vnd.tcpdump.pcap"]
# E-mail intake: a Maildir (new/, cur/, tmp/) into which the MTA delivers the center's incident
# address. `farol serve` takes in each new message: a reply whose subject carries an incident's
# ticket ([{center} #INC-42]) joins that incident; any other message opens one. `farol intake`
# does the same once.
# maildir = "mail"

[playbooks]
# Task checklists by incident class (an RSIT classification type), added to an incident when it
# is opened with that class or moved to it; `farol incident task ID N` ticks one.
phishing = [
  "Confirm the site imitates the brand and collect its URLs",
  "Ask the hosting provider and the registrar to take it down",
  "Submit the URLs to browser blocklists",
  "Tell the imitated organization",
  "Check the site is down",
]
infected-system = [
  "Identify the owner of the network and its abuse contact",
  "Notify the owner with the evidence (events and times)",
  "Confirm the system was cleaned",
]
malware-distribution = [
  "Collect a sample and its hashes",
  "Ask the hosting provider to remove the files",
  "Share the indicators with the constituency",
]
ddos = [
  "Identify the target, the vectors and the peak rate",
  "Put the target in touch with its upstream providers",
  "Notify the owners of amplifiers seen in the attack",
]
system-compromise = [
  "Establish the scope: systems, data and services affected",
  "Advise isolating the affected systems and keeping evidence",
  "Report to the authorities as the law requires",
  "Collect indicators and share them with the constituency",
]

[stats]
# Statistics and `farol report`: peer countries drawn beside the national rate, and dated
# marks (an intervention, a takedown, an outbreak) drawn on the charts; rates before and after
# each mark are compared. Denominators: `farol population load FILE`.
peers = []
# marks = [{{ date = "2024-03-01", label = "Botnet takedown" }}]

[indicators]
# Indicators (`farol indicators`) are derived from events by rules: which classification types
# give them, from which fields, how sure the center is (0-100; a feed's accuracy wins) and how
# many days after they were last seen they hold. Without rules, the built-in ones apply:
# c2-server (source.ip, source.fqdn, source.url), phishing and malware-distribution URLs and
# the hashes of what they serve, and scanner, brute-force and spam addresses for 7 days.
# They are shared under each feed's distribution and TLP (TAXII, STIX, blocklists).
# [[indicators.rules]]
# types = ["c2-server"]
# fields = ["source.ip", "source.fqdn"]
# confidence = 80
# valid_days = 30

# Partner centers: their TAXII 2.1 collection is pulled into indicators (origin partner:NAME,
# their TLP kept; unmarked is AMBER) on its schedule by `farol serve`, or by `farol partners
# pull`; `push` sends one of ours to it. What a partner sent never goes back to it.
# [partners.cert-es]
# url = "https://taxii.cert.example/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/"
# username = "${{CERT_ES_USER}}"          # or token = "${{CERT_ES_TOKEN}}"
# password = "${{CERT_ES_PASSWORD}}"
# schedule = "1h"
# distribution = "constituents"          # how its indicators are shared onwards
# push = "partners"                      # constituency, partners or community:NAME

[processing]
# Who processes reports. By default the process that receives a report (`farol ingest`, the
# collectors and uploads of `farol serve`) processes it at once. With workers = true they only
# archive it, and `farol worker` processes (any number, on this machine or others sharing the
# store) process the reports in turn; a worker that dies leaves its report to the others.
workers = false

# Live event streams (AMQP, RabbitMQ), as n6's stream API has them: every organization's new
# events go to a topic exchange of its own, EXCHANGE_PREFIX + its id (farol.org.12), with the
# routing key taxonomy.type.feed (malicious-code.infected-system.shadowserver-sinkhole), as
# IntelMQ JSON. A stream carries what the organization's e-mail digests would (its networks, up
# to TLP:AMBER+STRICT) from the moment it starts; `farol serve` and `farol stream` publish.
# Give each organization a RabbitMQ user that may only read its own exchange (see OPERATIONS.md).
# [streams]
# url = "amqp://farol:${{FAROL_AMQP_PASSWORD}}@127.0.0.1:5672/%2f"
# exchange_prefix = "farol.org."
# queues = false                      # true: also a durable queue per organization, bound to all
# batch = 1000                        # events published before waiting for the broker's confirmation
# every_secs = 10

[shadowserver]
# Shadowserver's current IntelMQ schema (intelmq.json, from
# https://interchange.shadowserver.org/intelmq/v1/schema) instead of the one farol ships:
# every report type it lists then works. FAROL_SHADOWSERVER_SCHEMA overrides this.
# schema = "shadowserver-schema.json"

# Feeds. Declare each one here as [feeds.NAME], or in its own file feeds.d/NAME.toml
# (the same keys, without the [feeds.NAME] header). A feed that is not declared can still be
# ingested when its format describes itself (IntelMQ JSON).
#
# [feeds.example-sinkhole]
# provider = "Example sinkhole operator"   # becomes feed.provider
# format = "csv"                           # see `farol formats`; detected when omitted
# tlp = "AMBER"                            # default TLP of its events (AMBER when none is given)
# # Who besides the center may see its events, within their TLP: producer (the center only),
# # affected (the organizations whose networks they concern; the default), community (the
# # members of `community`, see `farol community`), constituents, partners.
# distribution = "affected"
# community = "health-isac"               # with distribution = "community"
# accuracy = 100                           # feed.accuracy
# documentation = "https://example.org/feed"
#
# # Where the reports come from, and when (an interval such as 30m, 6h, 1d, or a cron
# # expression in UTC such as "0 5 * * *"). `farol collect` runs collectors; `farol serve`
# # runs them on their schedules.
# schedule = "1h"
# [feeds.example-sinkhole.collector]
# kind = "http"                            # http, misp-feed, file (path = ...), spool (dir = ...) or amqp (url, queue)
# url = "https://feeds.example.org/sinkhole/latest.csv"
# headers = {{ "Auth-Key" = "${{EXAMPLE_KEY}}" }}   # ${{VAR}} is read from the environment
# # username = "${{EXAMPLE_USER}}"  password = "${{EXAMPLE_PASSWORD}}"
# # timeout_secs = 300  max_bytes = 1073741824  retries = 3
# # allow_private = false                  # true to reach loopback or private addresses
#
# # Set on every event that does not already have the field.
# [feeds.example-sinkhole.constants]
# "classification.type" = "infected-system"
#
# # Which column goes to which field. Columns not named are kept as extra.<column>
# # (unmapped = "drop" discards them). "" ignores a column. For a CSV without a header,
# # list the targets in order instead: columns = ["time.source", "source.ip", ""]
# [feeds.example-sinkhole.columns]
# timestamp = "time.source"
# src_ip = "source.ip"
# src_port = "source.port"
# infection = "malware.name"
#
# time_format = "%Y-%m-%d %H:%M:%S"        # strftime, or auto (default), unix, unix_ms
# max_record = 1048576                     # longest record accepted, in bytes
#
# [feeds.example-sinkhole.csv]
# delimiter = ","
# quote = '"'
# comment = "#"                            # "" when no line is a comment
# header = true
# skip_lines = 0
#
# [feeds.example-json.json]
# layout = "auto"                          # auto, array (one JSON array) or lines (JSON Lines)
#
# # Repeated observations of the same key within the window become one event with a count
# # and first and last seen (the key must include source.ip).
# aggregate = {{ key = ["source.ip", "classification.identifier", "destination.port"], window = "1h" }}
# # Events whose source is on a warninglist (warninglists/*.json in MISP's format, and the
# # built-in reserved ranges) are marked with extra.warninglists; "drop" drops them instead.
# warninglisted = "mark"
#
# [feeds.example-scans.shadowserver]
# report = "scan_rdp"                      # when the file names do not say the report type
"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(main: &str, files: &[(&str, &str)]) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), main).unwrap();
        std::fs::create_dir(dir.path().join(FEEDS_DIR)).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(FEEDS_DIR).join(name), text).unwrap();
        }
        Config::load(dir.path())
    }

    #[test]
    fn the_template_is_valid() {
        let c = load(&template("CERT-XX", Some("PT")), &[]).unwrap();
        assert_eq!(c.center.name, "CERT-XX");
        assert!(c.feeds.is_empty());
    }

    #[test]
    fn feeds_come_from_both_places() {
        let c = load(
            "[center]\nname = \"X\"\n[feeds.a]\nformat = \"intelmq\"\n",
            &[("b.toml", "format = \"csv\"\n[columns]\nip = \"source.ip\"\n")],
        )
        .unwrap();
        assert_eq!(c.feeds.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let err = load(
            "[center]\nname = \"X\"\n\
             [feeds.a]\nformat = \"csv\"\ntlp = \"PINK\"\n[feeds.a.columns]\nip = \"src.ip\"\n\
             [feeds.b]\nformat = \"xml\"\ncolour = 1\n",
            &[("c.toml", "format = \"intelmq\"\n[constants]\n\"source.asn\" = \"x\"\n"), ("a.toml", "")],
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "feeds.a: tlp: expected a TLP label",
            "feeds.a: columns: \"src.ip\" is not a harmonization field",
            "feeds.b: unknown field `colour`",
            "feeds.b: unknown format \"xml\"",
            "feeds.d/c.toml: source.asn: expected an AS number",
            "feeds.d/a.toml: feed a is also declared in farol.toml",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }

    #[test]
    fn a_certificate_needs_its_key_and_paths_are_the_directory_s() {
        let err = load("[center]\nname = \"X\"\n[server]\ntls_certificate = \"c.pem\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("tls_certificate and tls_key go together"), "{err}");
        let c =
            load("[center]\nname = \"X\"\n[server]\ntls_certificate = \"c.pem\"\ntls_key = \"k.pem\"\n", &[]).unwrap();
        let (certificate, key) = c.server.tls.unwrap();
        assert!(key.ends_with("k.pem") && certificate.is_absolute());
    }
}
