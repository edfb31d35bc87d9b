//! `farol ipdata`: load IP data files (who announces an address, where it is registered), list
//! and retire them.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use farol_enrich::ipdata::{Format, stored};
use farol_store::NewDataset;
use sha2::{Digest, Sha256};

use crate::output::{Table, bytes, count};
use crate::{Missing, Usage};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Load a file as a new version of a dataset; events processed from now on use it
    #[command(
        after_help = "Formats (detected from the content when --format is omitted; gzip and zstd are undone):\n  \
        mmdb       MaxMind DB: GeoLite2-ASN, GeoLite2-Country, DB-IP Lite, ip-location-db\n  \
        ip2asn     iptoasn.com ip2asn-v4.tsv, ip2asn-v6.tsv, ip2asn-combined.tsv, ip2asn-v4-u32.tsv\n  \
        delegated  RIR statistics: delegated-ripencc-extended-latest and the other registries'\n  \
        csv        ip-location-db CSV: first,last,asn,as_name or first,last,cc (dotted or integers)\n\n\
        When several datasets answer for an address, the highest priority wins, attribute by attribute\n\
        (defaults: mmdb 30, ip2asn and csv 20, delegated 10).\n\n\
        Example:\n  farol ipdata load GeoLite2-ASN.mmdb\n  farol ipdata load --name ripe delegated-ripencc-extended-latest"
    )]
    Load {
        file: PathBuf,
        #[arg(long, value_parser = |s: &str| Format::parse(s).ok_or_else(|| format!("unknown format {s:?}: mmdb, ip2asn, delegated or csv")))]
        format: Option<Format>,
        /// The dataset's name (default: the file name without extensions)
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        priority: Option<i32>,
    },
    /// List the datasets in use (--all: every version ever loaded)
    List {
        #[arg(long)]
        all: bool,
    },
    /// Stop using a dataset (its versions stay in the store, inactive)
    Remove { name: String },
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (_, store) = super::open(dir)?;
    match args.command {
        Command::Load { file, format, name, priority } => {
            let raw = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let encoding = farol_pipeline::Encoding::sniff(&raw);
            let mut content = Vec::new();
            encoding
                .decoder(&raw[..])
                .and_then(|mut d| d.read_to_end(&mut content))
                .with_context(|| format!("{}: the {} stream cannot be read", file.display(), encoding.name()))?;
            let format = match format.or_else(|| Format::detect(&content)) {
                Some(f) => f,
                None => {
                    return Err(Usage(format!(
                        "{}: cannot tell its format; give --format mmdb, ip2asn, delegated or csv",
                        file.display()
                    ))
                    .into());
                }
            };
            let loaded = format.load(&content).map_err(|e| Usage(format!("{}: {e}", file.display())))?;
            if loaded.ranges.is_empty() {
                return Err(Usage(format!(
                    "{}: no usable range in it as {format} ({} line(s) rejected); is --format right?",
                    file.display(),
                    count(loaded.rejected)
                ))
                .into());
            }
            let name = name.unwrap_or_else(|| dataset_name(&file));
            let source = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let data = stored::encode(&loaded);
            let (asns, countries) = loaded.provides();
            let record = store.add_dataset(&NewDataset {
                name: &name,
                format: format.name(),
                priority: priority.unwrap_or(format.default_priority()),
                description: &loaded.description,
                source: &source,
                sha256: Sha256::digest(&raw).into(),
                ranges: loaded.ranges.len() as u64,
                rejected: loaded.rejected,
                data: &data,
            })?;
            let provides = match (asns, countries) {
                (true, true) => "AS numbers and countries",
                (true, false) => "AS numbers",
                _ => "countries",
            };
            println!(
                "loaded {} version {} ({format}, {}): {} ranges with {provides}, priority {}",
                record.name,
                record.version,
                bytes(raw.len() as u64),
                count(record.ranges),
                record.priority
            );
            if loaded.rejected > 0 {
                println!("{} line(s) rejected:", count(loaded.rejected));
                for r in loaded.rejects.iter().take(10) {
                    let at = r.line.map(|l| format!("line {l}: ")).unwrap_or_default();
                    println!("  {at}{}", r.reason);
                }
            }
            println!("events processed from now on are enriched with it; `farol reprocess` re-enriches stored reports");
        }
        Command::List { all } => {
            let list = store.datasets(all)?;
            if list.is_empty() {
                println!("no IP data loaded: farol ipdata load FILE (see --help for the formats)");
                return Ok(());
            }
            let mut t = Table::new(&[
                "id", "name", "version", "format", "priority", "ranges", "rejected", "loaded", "source", "sha256",
                "active",
            ]);
            for d in list {
                t.row(vec![
                    d.id.to_string(),
                    d.name,
                    d.version.to_string(),
                    d.format,
                    d.priority.to_string(),
                    count(d.ranges),
                    count(d.rejected),
                    d.loaded_at.to_rfc3339(),
                    d.source,
                    d.sha256.chars().take(12).collect(),
                    if d.active { "yes" } else { "no" }.into(),
                ]);
            }
            print!("{}", t.render());
        }
        Command::Remove { name } => {
            if !store.remove_dataset(&name)? {
                return Err(Missing(format!("no active IP dataset {name:?}: `farol ipdata list` shows them")).into());
            }
            println!("{name} is no longer used; events already enriched keep what it said");
        }
    }
    Ok(())
}

/// `GeoLite2-ASN.mmdb` is `GeoLite2-ASN`; `ip2asn-v4.tsv.gz` is `ip2asn-v4`.
fn dataset_name(file: &Path) -> String {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "ipdata".into());
    let mut name = name.as_str();
    for ext in [".gz", ".zst", ".mmdb", ".tsv", ".csv", ".txt"] {
        name = name.strip_suffix(ext).unwrap_or(name);
    }
    name.to_owned()
}
