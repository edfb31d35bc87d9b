//! `farol lookup`: what farol knows about an address or a domain; `farol warninglists`.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;
use farol_model::Event;
use serde_json::{Map, Value, json};

use crate::Usage;
use crate::output::{Table, count};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    /// The event field names (source.asn, source.as_name, source.network, source.geolocation.cc)
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  farol lookup 193.136.0.1\n  farol lookup mail.hospital-x.pt --format json")]
pub struct Args {
    /// An IPv4 or IPv6 address, or a domain name
    target: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let snapshot = crate::enrichment::snapshot(&config, &*store)?;
    let target = args.target.trim();
    let mut event = Event::default();
    if let Ok(ip) = target.parse::<IpAddr>() {
        event.source_ip = Some(ip);
    } else {
        event
            .set("source.fqdn", target)
            .map_err(|_| Usage(format!("{target:?} is neither an IP address nor a domain name")))?;
    }
    farol_enrich::enrich(&snapshot.ipdata, &mut event);
    let lists: Vec<&str> = snapshot.warninglists.hits(&event);
    let routing = snapshot.constituency.route(&event);
    let orgs = store.orgs()?;
    let name_of =
        |id: farol_model::org::OrgId| orgs.iter().find(|o| o.id == id).map_or("?".to_owned(), |o| o.name.clone());
    let mut out = Map::new();
    let intelmq = event.to_intelmq();
    for (k, v) in &intelmq {
        if !k.starts_with("extra.") {
            out.insert(k.clone(), v.clone());
        }
    }
    let sources = event.extra.get(farol_enrich::PROVENANCE).cloned().unwrap_or(Value::Object(Map::new()));
    out.insert(
        "organizations".into(),
        json!(routing.orgs.iter().map(|&id| json!({"id": id.0, "name": name_of(id)})).collect::<Vec<_>>()),
    );
    out.insert("scope".into(), json!(routing.scope.as_str()));
    out.insert("warninglists".into(), json!(lists));
    out.insert("datasets".into(), sources.clone());
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&Value::Object(out))?),
        Format::Text => {
            println!("{target}");
            for (k, v) in &intelmq {
                if k.starts_with("extra.") || k == "source.ip" || k == "source.fqdn" {
                    continue;
                }
                let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                let from = sources.get(k).and_then(Value::as_str).map(|d| format!("  (from {d})")).unwrap_or_default();
                println!("  {k:<24}{value}{from}");
            }
            let names: Vec<String> = routing.orgs.iter().map(|&id| format!("{} (#{id})", name_of(id))).collect();
            println!("  {:<24}{}", "organizations", if names.is_empty() { "none".into() } else { names.join(", ") });
            println!("  {:<24}{}", "scope", routing.scope.as_str());
            println!("  {:<24}{}", "warninglists", if lists.is_empty() { "none".into() } else { lists.join(", ") });
            if snapshot.ipdata.is_empty() {
                println!("(no IP data loaded: farol ipdata load FILE)");
            }
        }
    }
    Ok(())
}

/// `farol warninglists`: the lists in use.
pub fn warninglists(dir: &Path) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let snapshot = crate::enrichment::snapshot(&config, &*store)?;
    let mut t = Table::new(&["name", "entries", "version", "description"]);
    for l in snapshot.warninglists.lists() {
        t.row(vec![
            l.name.clone(),
            count(l.entries as u64),
            l.version.clone(),
            l.description.chars().take(70).collect(),
        ]);
    }
    print!("{}", t.render());
    println!("(add lists in MISP's warninglist format as {}/*.json)", crate::config::WARNINGLISTS_DIR);
    Ok(())
}
