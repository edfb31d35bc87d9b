//! `farol org`: the organizations of the constituency, their networks and contacts; and
//! `farol reroute`, which applies changes to stored events.

use std::collections::BTreeSet;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use farol_enrich::ipdata::split_csv;
use farol_model::org::{Asset, Contact, Interval, NotifyFormat, Org, OrgId, Sector};
use farol_store::{Rerouted, Store};
use serde::Deserialize;

use crate::output::{Table, count, csv_cell};
use crate::{Missing, Usage};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Add an organization
    #[command(
        after_help = "Example:\n  farol org add \"Hospital X\" --sector health --asn 64500 --prefix 192.0.2.0/24 \\\n    \
        --domain hospital-x.pt --abuse-email soc@hospital-x.pt --language pt"
    )]
    Add {
        name: String,
        #[command(flatten)]
        details: Details,
    },
    /// Add or update organizations from a CSV or TOML file, or from RIPE database split files
    #[command(after_help = IMPORT_HELP)]
    Import {
        /// CSV or TOML files; with --ripe, RIPE database split files (gzip is undone)
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The files are RIPE database split files (ripe.db.inetnum, .inet6num, .aut-num, .role, .organisation)
        #[arg(long)]
        ripe: bool,
        /// With --ripe: only networks registered in this country (default: [center] country)
        #[arg(long)]
        country: Option<String>,
        /// With --ripe: the sector of new organizations
        #[arg(long, default_value = "unclassified")]
        sector: Sector,
    },
    /// List organizations
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Show one organization: its networks, domains and contacts
    Show {
        /// Its name or id
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an organization
    Edit {
        /// Its name or id
        org: String,
        /// A new name
        #[arg(long)]
        rename: Option<String>,
        #[command(flatten)]
        details: Details,
        /// Remove these assets (AS64500, 192.0.2.0/24, example.pt) or contacts (e-mail addresses)
        #[arg(long, value_name = "ASSET|EMAIL")]
        remove: Vec<String>,
    },
    /// Remove an organization (its events stay, without it)
    Remove {
        /// Its name or id
        org: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ListFormat {
    Table,
    Json,
    Csv,
}

const IMPORT_HELP: &str = "\
An organization is matched by name (and, for RIPE imports, by its RIPE handle): an existing one
is updated (its sector, networks, domains and contacts are replaced by the file's), a new one is
added. Every line is checked first; if any is wrong, nothing is written.

CSV, with a header (several values in a cell separated by spaces):
  name,sector,asns,prefixes,domains,abuse_email,language,interval,format
  Hospital X,health,64500,192.0.2.0/24 2001:db8::/32,hospital-x.pt,soc@hospital-x.pt,pt,daily,csv

TOML:
  [[org]]
  name = \"Hospital X\"
  sector = \"health\"
  asns = [64500]
  prefixes = [\"192.0.2.0/24\"]
  domains = [\"hospital-x.pt\"]
  contacts = [{ email = \"soc@hospital-x.pt\", language = \"pt\", interval = \"daily\", format = \"csv\" }]

RIPE (https://ftp.ripe.net/ripe/dbase/split/):
  farol org import --ripe ripe.db.inetnum.gz ripe.db.inet6num.gz ripe.db.aut-num.gz \\
    ripe.db.role.gz ripe.db.organisation.gz --country PT";

/// What `add` and `edit` take.
#[derive(Debug, Default, clap::Args)]
struct Details {
    /// See `farol org add --help` for the list
    #[arg(long)]
    sector: Option<Sector>,
    /// An AS number it operates (repeatable)
    #[arg(long, value_name = "ASN")]
    asn: Vec<String>,
    /// A network it owns, IPv4 or IPv6 (repeatable)
    #[arg(long, value_name = "CIDR")]
    prefix: Vec<String>,
    /// A domain it owns, with everything under it (repeatable)
    #[arg(long, value_name = "DOMAIN")]
    domain: Vec<String>,
    /// Where notifications go (repeatable)
    #[arg(long, value_name = "EMAIL")]
    abuse_email: Vec<String>,
    /// The notification language of the contacts given (pt, en)
    #[arg(long)]
    language: Option<String>,
    /// How often the contacts given are notified
    #[arg(long)]
    interval: Option<Interval>,
    /// The attachment format of the contacts given
    #[arg(long)]
    notify_format: Option<NotifyFormat>,
    /// An outside identifier (a RIPE organisation handle)
    #[arg(long)]
    handle: Option<String>,
}

impl Details {
    /// Adds the assets and contacts given to `org`; every error at once.
    fn apply(self, org: &mut Org) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if let Some(s) = self.sector {
            org.sector = s;
        }
        if self.handle.is_some() {
            org.handle = self.handle;
        }
        for (kind, values) in [("asn", &self.asn), ("prefix", &self.prefix), ("domain", &self.domain)] {
            for v in values {
                match Asset::parse_kind(kind, v) {
                    Ok(a) if !org.assets.contains(&a) => org.assets.push(a),
                    Ok(_) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        for email in &self.abuse_email {
            match Contact::new(email) {
                Ok(mut c) => {
                    if let Some(l) = &self.language {
                        c.language.clone_from(l);
                    }
                    c.interval = self.interval.unwrap_or(c.interval);
                    c.format = self.notify_format.unwrap_or(c.format);
                    org.contacts.retain(|x| x.email != c.email);
                    org.contacts.push(c);
                }
                Err(e) => errors.push(e),
            }
        }
        // Settings without addresses apply to the contacts it has.
        if self.abuse_email.is_empty() {
            for c in &mut org.contacts {
                if let Some(l) = &self.language {
                    c.language.clone_from(l);
                }
                c.interval = self.interval.unwrap_or(c.interval);
                c.format = self.notify_format.unwrap_or(c.format);
            }
        }
        if let Some(l) = &self.language
            && !(l.len() == 2 && l.chars().all(|c| c.is_ascii_lowercase()))
        {
            errors.push(format!("--language: expected a two-letter language code such as pt or en, found {l:?}"));
        }
        org.assets.sort();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn usage(errors: Vec<String>) -> anyhow::Error {
    Usage(errors.join("\n")).into()
}

/// An organization by name (any case) or id.
pub fn find(store: &dyn Store, key: &str) -> Result<Org> {
    let orgs = store.orgs()?;
    let id = key.parse::<i64>().ok();
    orgs.into_iter()
        .find(|o| o.name.eq_ignore_ascii_case(key) || Some(o.id.0) == id)
        .ok_or_else(|| Missing(format!("no organization {key:?}: `farol org list` shows them")).into())
}

/// Organizations' names by id, for tables; a removed organization reads "(removed)".
pub fn names(store: &dyn Store) -> Result<impl Fn(OrgId) -> String> {
    let names: std::collections::HashMap<_, _> = store.orgs()?.into_iter().map(|o| (o.id, o.name)).collect();
    Ok(move |o: OrgId| names.get(&o).cloned().unwrap_or_else(|| "(removed)".to_owned()))
}

const REROUTE_HINT: &str = "stored events keep their routing until `farol reroute`";

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (config, store) = super::open(dir)?;
    match args.command {
        Command::Add { name, details } => {
            let name = check_name(&name)?;
            let sector = details.sector.ok_or_else(|| Usage("--sector is required for a new organization".into()))?;
            let mut org = Org { id: OrgId(0), name, sector, handle: None, assets: vec![], contacts: vec![] };
            details.apply(&mut org).map_err(usage)?;
            let id = store.add_org(&org).map_err(conflict)?;
            println!("added organization {id}: {} ({}); {REROUTE_HINT}", org.name, summary(&org));
        }
        Command::Edit { org, rename, details, remove } => {
            let mut org = find(&*store, &org)?;
            if let Some(n) = rename {
                org.name = check_name(&n)?;
            }
            details.apply(&mut org).map_err(usage)?;
            for r in remove {
                let before = (org.assets.len(), org.contacts.len());
                let r = r.trim().to_ascii_lowercase();
                org.assets.retain(|a| a.to_string().to_ascii_lowercase() != r && a.value() != r);
                org.contacts.retain(|c| c.email.to_ascii_lowercase() != r);
                if before == (org.assets.len(), org.contacts.len()) {
                    return Err(Usage(format!("--remove {r}: {} has no such asset or contact", org.name)).into());
                }
            }
            store.update_org(&org).map_err(conflict)?;
            println!("updated organization {}: {} ({}); {REROUTE_HINT}", org.id, org.name, summary(&org));
        }
        Command::Remove { org } => {
            let org = find(&*store, &org)?;
            store.remove_org(org.id)?;
            println!("removed organization {}: {}; {REROUTE_HINT}", org.id, org.name);
        }
        Command::List { format } => list(&store.orgs()?, format)?,
        Command::Show { org, json } => {
            let org = find(&*store, &org)?;
            // Where its live stream goes, when streams are on.
            let exchange = config.streams.as_ref().map(|s| s.exchange(org.id));
            if json {
                let mut value = org_json(&org);
                value["stream_exchange"] = exchange.into();
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print!("{}", detail(&org));
                if let Some(exchange) = exchange {
                    println!("  stream      AMQP exchange {exchange}, routing keys taxonomy.type.feed");
                }
            }
        }
        Command::Import { files, ripe, country, sector } => {
            let orgs = if ripe {
                let country = country.or(config.center.country.clone());
                ripe_orgs(&files, country.as_deref(), sector)?
            } else {
                let mut all = Vec::new();
                let mut errors = Vec::new();
                for f in &files {
                    match read_file(f) {
                        Ok(orgs) => all.extend(orgs),
                        Err(es) => errors.extend(es.into_iter().map(|e| format!("{}: {e}", f.display()))),
                    }
                }
                if !errors.is_empty() {
                    return Err(Usage(format!("nothing was imported:\n  {}", errors.join("\n  "))).into());
                }
                all
            };
            let (added, updated) = import(&*store, orgs)?;
            println!("{} organization(s) added, {} updated; {REROUTE_HINT}", count(added), count(updated));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(Usage(format!("{name:?} is not a usable name (1 to 200 printable characters)")).into());
    }
    Ok(name.to_owned())
}

fn conflict(e: farol_store::StoreError) -> anyhow::Error {
    match e {
        farol_store::StoreError::Conflict(m) => Usage(m).into(),
        e => e.into(),
    }
}

fn summary(org: &Org) -> String {
    let n = |kind: &str| org.assets.iter().filter(|a| a.kind() == kind).count();
    format!(
        "{}, {} AS, {} prefixes, {} domains, {} contacts",
        org.sector,
        n("asn"),
        n("prefix"),
        n("domain"),
        org.contacts.len()
    )
}

fn detail(org: &Org) -> String {
    let mut s =
        format!("organization {}: {}\n  sector      {} ({})\n", org.id, org.name, org.sector, org.sector.description());
    if let Some(h) = &org.handle {
        s += &format!("  handle      {h}\n");
    }
    for (kind, label) in [("asn", "ASNs"), ("prefix", "prefixes"), ("domain", "domains")] {
        let list: Vec<String> = org.assets.iter().filter(|a| a.kind() == kind).map(ToString::to_string).collect();
        if !list.is_empty() {
            s += &format!("  {label:<11} {}\n", list.join(", "));
        }
    }
    for c in &org.contacts {
        s += &format!("  contact     {} ({}, {}, {})\n", c.email, c.language, c.interval, c.format);
    }
    s
}

fn org_json(org: &Org) -> serde_json::Value {
    let assets =
        |kind: &str| -> Vec<String> { org.assets.iter().filter(|a| a.kind() == kind).map(Asset::value).collect() };
    serde_json::json!({
        "id": org.id.0,
        "name": org.name,
        "sector": org.sector,
        "handle": org.handle,
        "asns": org.assets.iter().filter_map(|a| if let Asset::Asn(n) = a { Some(n) } else { None }).collect::<Vec<_>>(),
        "prefixes": assets("prefix"),
        "domains": assets("domain"),
        "contacts": org.contacts,
    })
}

fn list(orgs: &[Org], format: ListFormat) -> Result<()> {
    match format {
        ListFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&orgs.iter().map(org_json).collect::<Vec<_>>())?)
        }
        ListFormat::Csv => {
            println!("id,name,sector,asns,prefixes,domains,abuse_email");
            for o in orgs {
                let join = |kind: &str| {
                    o.assets.iter().filter(|a| a.kind() == kind).map(Asset::value).collect::<Vec<_>>().join(" ")
                };
                let emails = o.contacts.iter().map(|c| c.email.as_str()).collect::<Vec<_>>().join(" ");
                let cells = [
                    o.id.to_string(),
                    o.name.clone(),
                    o.sector.to_string(),
                    join("asn"),
                    join("prefix"),
                    join("domain"),
                    emails,
                ];
                println!("{}", cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
            }
        }
        ListFormat::Table => {
            if orgs.is_empty() {
                println!(
                    "no organizations yet: farol org add NAME --sector SECTOR --prefix CIDR, or farol org import FILE"
                );
                return Ok(());
            }
            let mut t = Table::new(&["id", "name", "sector", "asns", "prefixes", "domains", "contacts"]);
            for o in orgs {
                let n = |kind: &str| o.assets.iter().filter(|a| a.kind() == kind).count().to_string();
                t.row(vec![
                    o.id.to_string(),
                    o.name.clone(),
                    o.sector.to_string(),
                    n("asn"),
                    n("prefix"),
                    n("domain"),
                    o.contacts.len().to_string(),
                ]);
            }
            print!("{}", t.render());
        }
    }
    Ok(())
}

/// One organization as an import file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgEntry {
    name: String,
    sector: Sector,
    #[serde(default)]
    asns: Vec<u32>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    contacts: Vec<ContactEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactEntry {
    email: String,
    #[serde(default = "english")]
    language: String,
    #[serde(default = "daily")]
    interval: Interval,
    #[serde(default = "csv_format")]
    format: NotifyFormat,
}

fn english() -> String {
    "en".into()
}
fn daily() -> Interval {
    Interval::Daily
}
fn csv_format() -> NotifyFormat {
    NotifyFormat::Csv
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    org: Vec<OrgEntry>,
}

impl OrgEntry {
    fn into_org(self) -> Result<Org, Vec<String>> {
        let mut errors = Vec::new();
        let mut assets: Vec<Asset> = self.asns.into_iter().map(Asset::Asn).collect();
        for (kind, list) in [("prefix", &self.prefixes), ("domain", &self.domains)] {
            for v in list {
                match Asset::parse_kind(kind, v) {
                    Ok(a) => assets.push(a),
                    Err(e) => errors.push(e),
                }
            }
        }
        let mut contacts = Vec::new();
        for c in self.contacts {
            match farol_model::org::check_email(&c.email) {
                Ok(email) => {
                    contacts.push(Contact { email, language: c.language, interval: c.interval, format: c.format })
                }
                Err(e) => errors.push(e),
            }
        }
        assets.sort();
        assets.dedup();
        if !errors.is_empty() {
            return Err(errors.into_iter().map(|e| format!("{}: {e}", self.name)).collect());
        }
        Ok(Org { id: OrgId(0), name: self.name, sector: self.sector, handle: None, assets, contacts })
    }
}

fn read_file(path: &Path) -> Result<Vec<Org>, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read it: {e}")])?;
    let mut errors = Vec::new();
    let entries: Vec<(String, OrgEntry)> = if path.extension().is_some_and(|e| e == "toml") {
        let file: TomlFile = toml::from_str(&text).map_err(|e| vec![e.to_string()])?;
        file.org.into_iter().enumerate().map(|(i, o)| (format!("org {}", i + 1), o)).collect()
    } else {
        csv_entries(&text, &mut errors)
    };
    let mut orgs = Vec::new();
    for (at, entry) in entries {
        match entry.into_org() {
            Ok(o) => orgs.push(o),
            Err(es) => errors.extend(es.into_iter().map(|e| format!("{at}: {e}"))),
        }
    }
    if errors.is_empty() { Ok(orgs) } else { Err(errors) }
}

/// The entries of an import CSV; what is wrong goes to `errors`.
fn csv_entries(text: &str, errors: &mut Vec<String>) -> Vec<(String, OrgEntry)> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else { return Vec::new() };
    let split = |line: &str, at: usize| split_csv(line).map_err(|e| vec![format!("line {}: {e}", at + 1)]);
    let header: Vec<String> = match split(header, 0) {
        Ok(h) => h.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
        Err(e) => {
            errors.extend(e);
            return Vec::new();
        }
    };
    if !header.iter().any(|h| h == "name") || !header.iter().any(|h| h == "sector") {
        errors.push("the header must name at least the columns name and sector".into());
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let cells = match split(line, i) {
            Ok(c) => c,
            Err(e) => {
                errors.extend(e);
                continue;
            }
        };
        let get =
            |col: &str| header.iter().position(|h| h == col).and_then(|p| cells.get(p)).map(|s| s.trim()).unwrap_or("");
        let words = |col: &str| get(col).split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let at = format!("line {}", i + 1);
        let sector = match get("sector").parse::<Sector>() {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("{at}: {e}"));
                continue;
            }
        };
        let asns = match words("asns").iter().map(|a| Asset::parse_kind("asn", a)).collect::<Result<Vec<_>, _>>() {
            Ok(a) => a.into_iter().filter_map(|a| if let Asset::Asn(n) = a { Some(n) } else { None }).collect(),
            Err(e) => {
                errors.push(format!("{at}: {e}"));
                continue;
            }
        };
        let (interval, format) = (get("interval"), get("format"));
        let contact = |email: String| -> Result<ContactEntry, String> {
            Ok(ContactEntry {
                email,
                language: Some(get("language")).filter(|l| !l.is_empty()).unwrap_or("en").to_owned(),
                interval: if interval.is_empty() { Interval::Daily } else { interval.parse()? },
                format: if format.is_empty() { NotifyFormat::Csv } else { format.parse()? },
            })
        };
        let contacts = match words("abuse_email").into_iter().map(contact).collect::<Result<Vec<_>, _>>() {
            Ok(c) => c,
            Err(e) => {
                errors.push(format!("{at}: {e}"));
                continue;
            }
        };
        let entry = OrgEntry {
            name: get("name").to_owned(),
            sector,
            asns,
            prefixes: words("prefixes"),
            domains: words("domains"),
            contacts,
        };
        if entry.name.is_empty() {
            errors.push(format!("{at}: the name is empty"));
            continue;
        }
        out.push((at, entry));
    }
    out
}

fn ripe_orgs(files: &[PathBuf], country: Option<&str>, sector: Sector) -> Result<Vec<Org>> {
    let mut import = farol_enrich::ripe::Import::new(country);
    for f in files {
        let file = std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
        let mut reader = std::io::BufReader::new(file);
        let encoding = farol_pipeline::Encoding::sniff(reader.fill_buf()?);
        let decoded = encoding.decoder(reader).with_context(|| format!("cannot read {}", f.display()))?;
        farol_enrich::ripe::objects(std::io::BufReader::new(decoded), |o| import.add(o))
            .with_context(|| format!("cannot read {}", f.display()))?;
    }
    let (found, skipped, problems) = import.finish();
    for p in problems.iter().take(20) {
        eprintln!("skipped: {p}");
    }
    if skipped > 0 {
        println!("{} network(s) outside the country or without an abuse mailbox were left out", count(skipped));
    }
    Ok(found
        .into_iter()
        .map(|f| Org {
            id: OrgId(0),
            name: f.name,
            sector,
            handle: Some(f.handle),
            assets: f.assets.into_iter().collect(),
            contacts: f.abuse.iter().filter_map(|e| Contact::new(e).ok()).collect(),
        })
        .collect())
}

/// Adds or updates, matching by handle, then by name. Imported organizations keep the sector
/// an analyst gave them when the import does not know better (RIPE imports are unclassified).
fn import(store: &dyn Store, orgs: Vec<Org>) -> Result<(u64, u64)> {
    let existing = store.orgs()?;
    let (mut added, mut updated) = (0, 0);
    let mut seen = BTreeSet::new();
    for mut org in orgs {
        if !seen.insert(org.name.to_ascii_lowercase()) {
            // Two RIPE organisations may share a name: keep them apart.
            org.name = format!("{} ({})", org.name, org.handle.as_deref().unwrap_or("?"));
        }
        let current = existing
            .iter()
            .find(|o| (org.handle.is_some() && o.handle == org.handle) || o.name.eq_ignore_ascii_case(&org.name));
        match current {
            Some(current) => {
                org.id = current.id;
                if org.sector == Sector::Unclassified {
                    org.sector = current.sector;
                }
                org.handle = org.handle.or(current.handle.clone());
                store.update_org(&org).map_err(conflict)?;
                updated += 1;
            }
            None => {
                store.add_org(&org).map_err(conflict)?;
                added += 1;
            }
        }
    }
    Ok((added, updated))
}

#[derive(Debug, clap::Args)]
pub struct RerouteArgs {
    /// Only events at or after this time (see `farol events --help`)
    #[arg(long)]
    since: Option<String>,
}

/// Recomputes every stored event's routing from the organizations as they are now.
pub fn reroute(dir: &Path, args: RerouteArgs, ui: &crate::output::Ui) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let since = args.since.as_deref().map(farol_model::parse::time).transpose().map_err(Usage)?;
    let snapshot = crate::enrichment::snapshot(&config, &*store)?;
    let total = store.totals()?.events;
    let bar = crate::progress::Bar::new(ui.quiet);
    farol_pipeline::Progress::phase(&bar, "rerouting", None);
    let (mut seen, mut changed, mut after) = (0u64, 0u64, 0i64);
    loop {
        let page = store.events_after(after, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let mut updates = Vec::new();
        for e in &page {
            seen += 1;
            if since.is_some_and(|s| e.event.time().is_some_and(|t| t < s)) {
                continue;
            }
            let routing = snapshot.constituency.route(&e.event);
            if routing != e.routing {
                updates.push(Rerouted { id: e.id, routing });
            }
        }
        changed += updates.len() as u64;
        store.set_routing(&updates)?;
        farol_pipeline::Progress::update(&bar, seen, seen);
    }
    bar.finish();
    println!("{} of {} event(s) rerouted", count(changed), count(total.max(seen)));
    Ok(())
}
