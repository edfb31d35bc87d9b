//! `farol community` and `farol indicators`: who shares with whom, and what is shared.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use farol_model::indicator::{Community, Indicator, IndicatorKind, Origin};
use farol_model::org::{Distribution, OrgId};
use farol_model::{ClassificationType, Timestamp, Tlp};
use farol_policy::Collection;
use farol_share::export::Format;
use farol_share::stix::Producer;
use farol_store::{Grant, IndicatorQuery, Store};

use crate::config::Config;
use crate::output::{Table, count};
use crate::{Missing, Usage};

#[derive(Debug, clap::Args)]
pub struct CommunityArgs {
    #[command(subcommand)]
    command: CommunityCommand,
}

#[derive(Debug, Subcommand)]
enum CommunityCommand {
    /// Add a community: a group of organizations that share indicators up to TLP:GREEN
    Add {
        /// Lower-case letters, digits and '-' (health-isac); also names its TAXII collection
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// A member organization (name or id); repeat for more
        #[arg(long = "member", value_name = "ORG")]
        members: Vec<String>,
    },
    /// List the communities and their members
    List,
    /// Add or remove members, or change the description
    Edit {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "add", value_name = "ORG")]
        add: Vec<String>,
        #[arg(long = "remove", value_name = "ORG")]
        remove: Vec<String>,
    },
    /// Remove a community; what was shared with it is then shared with nobody but the center
    Remove { name: String },
}

pub fn community(dir: &Path, args: CommunityArgs) -> Result<()> {
    let (_, store) = super::open(dir)?;
    let members = |names: &[String]| -> Result<Vec<OrgId>> {
        names.iter().map(|n| super::org::find(&*store, n).map(|o| o.id)).collect()
    };
    match args.command {
        CommunityCommand::Add { name, description, members: names } => {
            Community::check_name(&name).map_err(Usage)?;
            let c = Community { id: 0, name, description, members: members(&names)? };
            let c = store.add_community(&c)?;
            println!("community {} added with {} members", c.name, c.members.len());
        }
        CommunityCommand::List => {
            let names = super::org::names(&*store)?;
            let mut table = Table::new(&["name", "members", "description"]);
            for c in store.communities()? {
                let members: Vec<String> = c.members.iter().map(|&m| names(m)).collect();
                table.row(vec![c.name, members.join(", "), c.description]);
            }
            if table.is_empty() {
                println!("no communities: `farol community add NAME --member ORG` adds one");
            } else {
                print!("{}", table.render());
            }
        }
        CommunityCommand::Edit { name, description, add, remove } => {
            let mut c = find(&*store, &name)?;
            if let Some(d) = description {
                c.description = d;
            }
            c.members.extend(members(&add)?);
            let remove = members(&remove)?;
            c.members.retain(|m| !remove.contains(m));
            c.members.sort_unstable();
            c.members.dedup();
            store.update_community(&c)?;
            println!("community {} has {} members", c.name, c.members.len());
        }
        CommunityCommand::Remove { name } => {
            let c = find(&*store, &name)?;
            store.remove_community(c.id)?;
            println!("community {} removed", c.name);
        }
    }
    Ok(())
}

fn find(store: &dyn Store, name: &str) -> Result<Community> {
    store
        .communities()?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Missing(format!("no community {name:?}: `farol community list` shows them")).into())
}

#[derive(Debug, clap::Args)]
pub struct IndicatorsArgs {
    #[command(subcommand)]
    command: IndicatorsCommand,
}

#[derive(Debug, Subcommand)]
enum IndicatorsCommand {
    /// Derive indicators from the events of the reports processed since the last time
    /// (`farol ingest` and `farol serve` do this themselves)
    Derive,
    /// List indicators, the newest versions first
    List {
        #[command(flatten)]
        select: Select,
        /// Only those whose value contains this text
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Add an indicator by hand (or change the one of the same kind and value added by hand)
    Add {
        /// ip, cidr, domain, url, md5, sha1, sha256 or email
        kind: IndicatorKind,
        value: String,
        /// What it indicates, as a classification type (c2-server, phishing, ...)
        #[arg(long)]
        category: String,
        #[arg(long, default_value = "AMBER")]
        tlp: Tlp,
        /// producer, affected, community, constituents or partners
        #[arg(long, default_value = "constituents")]
        distribution: Distribution,
        /// The community, with --distribution community
        #[arg(long)]
        community: Option<String>,
        #[arg(long, default_value_t = 75)]
        confidence: u8,
        /// Days it holds from now; for ever when omitted
        #[arg(long)]
        valid_days: Option<u32>,
        #[arg(long)]
        family: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Withdraw an indicator: shared as revoked from now on, left out of blocklists
    Revoke { id: i64 },
    /// Take in a partner's STIX 2.1 bundle (or TAXII envelope): its indicators of one
    /// observable, with their TLP (unmarked is AMBER)
    Import {
        file: PathBuf,
        /// The partner it came from: the indicators' origin is partner:NAME
        #[arg(long)]
        partner: String,
        /// How they are shared onwards
        #[arg(long, default_value = "constituents")]
        distribution: Distribution,
        /// The community, with --distribution community
        #[arg(long)]
        community: Option<String>,
    },
    /// Write indicators for defenders: blocklists, CSV, Suricata or Snort rules, an RPZ zone,
    /// a STIX 2.1 bundle
    Export {
        /// ip, domain, url, csv, suricata, snort, rpz or stix
        format: Format,
        #[command(flatten)]
        select: Select,
        /// Where to write it; standard output when omitted
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// Which indicators a listing or export holds.
#[derive(Debug, clap::Args)]
struct Select {
    /// What an audience receives instead of everything: constituency, partners,
    /// community:NAME or org:NAME (as its TAXII collection holds it)
    #[arg(long = "for", value_name = "AUDIENCE")]
    audience: Option<String>,
    /// Only this kind
    #[arg(long)]
    kind: Option<IndicatorKind>,
    /// Expired and revoked ones too
    #[arg(long)]
    all: bool,
}

impl Select {
    fn query(&self, store: &dyn Store, now: Timestamp) -> Result<IndicatorQuery> {
        let grants = match &self.audience {
            None => vec![Grant::All],
            Some(a) => vec![audience(store, a)?.grant()],
        };
        Ok(IndicatorQuery {
            grants,
            kinds: self.kind.into_iter().collect(),
            valid_at: (!self.all).then_some(now),
            limit: usize::MAX,
            ..Default::default()
        })
    }
}

/// The collection an audience reads.
fn audience(store: &dyn Store, a: &str) -> Result<Collection> {
    Ok(match a.split_once(':') {
        None if a == "constituency" => Collection::Constituency,
        None if a == "partners" => Collection::Partners,
        Some(("community", name)) => Collection::Community(find(store, name)?.id),
        Some(("org", name)) => Collection::Org(super::org::find(store, name)?.id),
        _ => anyhow::bail!(Usage(format!("--for {a:?}: expected constituency, partners, community:NAME or org:NAME"))),
    })
}

/// How each configured feed shares what it brings.
pub fn feed_sharing(config: &Config) -> HashMap<String, farol_share::FeedSharing> {
    config
        .feeds
        .iter()
        .map(|(name, f)| {
            let sharing = farol_share::FeedSharing { distribution: f.distribution, community: f.community.clone() };
            (name.clone(), sharing)
        })
        .collect()
}

/// Derives indicators from the reports finished since the last derivation; says so when any.
pub fn derive(config: &Config, store: &dyn Store) -> Result<farol_share::Derived> {
    let done = farol_share::derive(store, &config.indicator_rules, &feed_sharing(config), Timestamp::now())?;
    if done.sightings > 0 {
        println!(
            "indicators: {} seen in {} events of {} reports (`farol indicators list`)",
            count(done.sightings),
            count(done.events),
            count(done.reports)
        );
    }
    Ok(done)
}

pub fn indicators(dir: &Path, args: IndicatorsArgs) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let now = Timestamp::now();
    let producer = Producer { name: config.center.name.clone() };
    match args.command {
        IndicatorsCommand::Derive => {
            if derive(&config, &*store)?.reports == 0 {
                println!("no reports to derive indicators from");
            }
        }
        IndicatorsCommand::List { select, search, limit } => {
            let q = IndicatorQuery { search, limit, newest_first: true, ..select.query(&*store, now)? };
            let communities: HashMap<i64, String> = store.communities()?.into_iter().map(|c| (c.id, c.name)).collect();
            let mut table = Table::new(&[
                "id",
                "kind",
                "value",
                "category",
                "family",
                "tlp",
                "shared with",
                "conf.",
                "sightings",
                "last seen",
                "valid until",
                "origin",
            ]);
            for i in store.indicators(&q)? {
                let shared = match (i.distribution, i.community.and_then(|c| communities.get(&c))) {
                    (Distribution::Community, Some(c)) => format!("community {c}"),
                    (d, _) => d.to_string(),
                };
                let until = if i.revoked {
                    "revoked".to_owned()
                } else {
                    i.valid_until.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
                };
                table.row(vec![
                    i.id.to_string(),
                    i.kind.to_string(),
                    i.value,
                    i.category.as_str().to_owned(),
                    i.family.unwrap_or_default(),
                    i.tlp.label(),
                    shared,
                    i.confidence.to_string(),
                    count(i.sightings),
                    i.last_seen.to_rfc3339(),
                    until,
                    i.origin.to_string(),
                ]);
            }
            if table.is_empty() {
                println!(
                    "no indicators: they are derived from events as reports are ingested (see [indicators] in farol.toml)"
                );
            } else {
                print!("{}", table.render());
            }
        }
        IndicatorsCommand::Add {
            kind,
            value,
            category,
            tlp,
            distribution,
            community,
            confidence,
            valid_days,
            family,
            description,
        } => {
            let value = kind.normalize(&value).map_err(Usage)?;
            let category = ClassificationType::parse(&category).map(|r| r.value()).ok_or_else(|| {
                Usage(format!("--category {category:?}: not a classification type (see `farol taxonomy`)"))
            })?;
            let community = sharing_community(&*store, distribution, community)?;
            if confidence > 100 {
                anyhow::bail!(Usage(format!("--confidence {confidence}: 0 to 100")));
            }
            let until = valid_days
                .map(|d| now.add_secs(i64::from(d) * 86_400))
                .map(|t| t.ok_or_else(|| Usage("--valid-days is too large".into())))
                .transpose()?;
            let i = Indicator {
                id: 0,
                kind,
                value,
                category,
                family,
                tlp,
                distribution,
                community,
                orgs: Vec::new(),
                confidence,
                valid_from: now,
                valid_until: until,
                first_seen: now,
                last_seen: now,
                sightings: 0,
                origin: Origin::User(config.center.name.clone()),
                description,
                created: now,
                modified: now,
                revoked: false,
            };
            let i = store.put_indicator(&i, now)?;
            println!("indicator {} ({} {}) stored, {}", i.id, i.kind, i.value, i.tlp.label());
        }
        IndicatorsCommand::Revoke { id } => {
            let q = IndicatorQuery { grants: vec![Grant::All], ids: vec![id], limit: 1, ..Default::default() };
            let mut i = store
                .indicators(&q)?
                .pop()
                .ok_or_else(|| Missing(format!("no indicator {id}: `farol indicators list --all` shows them")))?;
            i.revoked = true;
            store.put_indicator(&i, now)?;
            println!("indicator {id} ({} {}) revoked", i.kind, i.value);
        }
        IndicatorsCommand::Import { file, partner, distribution, community } => {
            let community = sharing_community(&*store, distribution, community)?;
            let text = std::fs::read(&file).map_err(|e| Usage(format!("cannot read {}: {e}", file.display())))?;
            let bundle: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| Usage(format!("{} is not JSON: {e}", file.display())))?;
            let objects = bundle.get("objects").and_then(|o| o.as_array()).ok_or_else(|| {
                Usage(format!(
                    "{} is neither a STIX bundle nor a TAXII envelope: it has no \"objects\"",
                    file.display()
                ))
            })?;
            let (mut kept, mut unchanged, mut refused) = (0, 0, Vec::new());
            for o in objects.iter().filter(|o| o["type"] == "indicator") {
                match farol_share::stix::read_indicator(o) {
                    Ok(r) => {
                        let i =
                            r.into_indicator(Origin::Partner(partner.clone()), distribution, community, vec![], now);
                        if store.put_indicator(&i, now)?.modified >= now { kept += 1 } else { unchanged += 1 }
                    }
                    Err(e) => refused.push(e),
                }
            }
            println!(
                "{}: {kept} indicators new or changed, {unchanged} unchanged, {} not kept, {} other objects",
                file.display(),
                refused.len(),
                objects.iter().filter(|o| o["type"] != "indicator").count()
            );
            for reason in refused.iter().take(10) {
                println!("  not kept: {reason}");
            }
        }
        IndicatorsCommand::Export { format, select, out } => {
            let all = store.indicators(&select.query(&*store, now)?)?;
            let text = farol_share::export::write(format, &all, &producer, now);
            match out {
                Some(path) => {
                    std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    eprintln!("{} indicators written to {} ({})", all.len(), path.display(), format.name());
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct PartnersArgs {
    #[command(subcommand)]
    command: PartnersCommand,
}

#[derive(Debug, Subcommand)]
enum PartnersCommand {
    /// List the partner centers of farol.toml, with what each exchange did last
    List,
    /// Pull what is new in partners' TAXII collections (and push to those that have `push`)
    Pull {
        /// Only this partner
        name: Option<String>,
    },
}

/// A configured partner, with its community and pushed collection resolved in the store.
pub fn partner(config: &Config, store: &dyn Store, p: &crate::config::Partner) -> Result<farol_collect::Partner> {
    let community = p.community.as_deref().map(|c| find(store, c).map(|c| c.id)).transpose()?;
    let push = p.push.as_deref().map(|a| audience(store, a).map(Collection::grant)).transpose()?;
    Ok(farol_collect::Partner {
        name: p.name.clone(),
        center: config.center.name.clone(),
        http: p.http.clone(),
        distribution: p.distribution,
        community,
        push,
        page: 100,
    })
}

pub fn partners(dir: &Path, args: PartnersArgs) -> Result<()> {
    let (config, store) = super::open(dir)?;
    match args.command {
        PartnersCommand::List => {
            let mut table = Table::new(&["name", "collection", "schedule", "shared as", "push", "last exchange"]);
            for p in &config.partners {
                let last = store.collector_state(&result_key(&p.name))?.unwrap_or_else(|| "never".to_owned());
                table.row(vec![
                    p.name.clone(),
                    p.http.url.clone(),
                    p.schedule.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
                    p.distribution.to_string(),
                    p.push.clone().unwrap_or_else(|| "-".to_owned()),
                    last,
                ]);
            }
            if table.is_empty() {
                println!("no partners: add [partners.NAME] to farol.toml (see the comments there)");
            } else {
                print!("{}", table.render());
            }
        }
        PartnersCommand::Pull { name } => {
            let chosen: Vec<_> =
                config.partners.iter().filter(|p| name.as_ref().is_none_or(|n| *n == p.name)).collect();
            if chosen.is_empty() {
                anyhow::bail!(Missing(format!(
                    "no partner {}in farol.toml: add [partners.NAME]",
                    name.map(|n| format!("{n} ")).unwrap_or_default()
                )));
            }
            let runtime = tokio::runtime::Runtime::new()?;
            let mut failed = 0;
            for p in chosen {
                let partner = partner(&config, &*store, p)?;
                let result = runtime.block_on(farol_collect::exchange(&*store, &partner));
                record(&*store, &p.name, result.as_ref().err())?;
                match result {
                    Ok(x) => println!(
                        "{}: {} objects in {} pages, {} indicators new or changed, {} not kept (patterns farol cannot keep), {} pushed",
                        p.name, x.objects, x.pages, x.kept, x.skipped, x.pushed
                    ),
                    Err(e) => {
                        eprintln!("{}: {e}", p.name);
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!(crate::Partial(format!("{failed} partner exchange(s) failed")));
            }
        }
    }
    Ok(())
}

fn result_key(partner: &str) -> String {
    format!("partner-result:{partner}")
}

/// Records how an exchange with a partner ended, for `farol partners list`.
pub fn record(store: &dyn Store, partner: &str, error: Option<&farol_collect::Error>) -> Result<()> {
    let now = Timestamp::now().to_rfc3339();
    let text = error.map_or_else(|| format!("{now} ok"), |e| format!("{now} error: {e}"));
    Ok(store.set_collector_state(&result_key(partner), &text)?)
}

/// The community `--community` names, which goes with `--distribution community` only.
fn sharing_community(store: &dyn Store, distribution: Distribution, community: Option<String>) -> Result<Option<i64>> {
    Ok(match (distribution, community) {
        (Distribution::Community, Some(c)) => Some(find(store, &c)?.id),
        (Distribution::Community, None) => {
            anyhow::bail!(Usage("--distribution community needs --community NAME".into()))
        }
        (_, Some(_)) => anyhow::bail!(Usage("--community goes with --distribution community".into())),
        (_, None) => None,
    })
}
