//! `farol init`: a new farol directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use farol_model::org::{Org, OrgId, Sector};

use crate::config::{self, FEEDS_DIR, FILE_NAME};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to create (default: --dir)
    dir: Option<PathBuf>,
    /// The national center's name, written into farol.toml
    #[arg(long, default_value = "CERT")]
    center: String,
    /// The country it serves (ISO 3166 two letters, such as PT): the national scope
    #[arg(long, value_parser = |s: &str| {
        let s = s.to_ascii_uppercase();
        if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) { Ok(s) } else { Err(format!("expected two letters such as PT, found {s:?}")) }
    })]
    country: Option<String>,
}

pub fn run(default_dir: &Path, args: Args) -> Result<()> {
    let dir = args.dir.as_deref().unwrap_or(default_dir);
    std::fs::create_dir_all(dir.join(FEEDS_DIR)).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join(FILE_NAME);
    if file.exists() {
        println!("{} already exists: left as it is", file.display());
    } else {
        std::fs::write(&file, config::template(&args.center, args.country.as_deref()))
            .with_context(|| format!("cannot write {}", file.display()))?;
        println!("wrote {}", file.display());
    }
    let (config, store) = super::open(dir)?;
    // The center is an organization of its own: its analysts' accounts belong to it.
    let orgs = store.orgs()?;
    if !orgs.iter().any(|o| o.sector == Sector::NationalCenter) {
        let name = config.center.name.clone();
        let center =
            Org { id: OrgId(0), name, sector: Sector::NationalCenter, handle: None, assets: vec![], contacts: vec![] };
        store.add_org(&center)?;
    }
    println!("store for {} ready at {}", config.center.name, config.store);
    let d = dir.display();
    println!(
        "\nnext:\n  declare feeds in {d}/{FILE_NAME} or {d}/{FEEDS_DIR}/NAME.toml\n  farol -d {d} ingest --feed NAME FILE\n  farol -d {d} events"
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
#[command(after_help = "The copy is consistent while farol serves, ingests and works: it is the store \
    as of the moment the copy began. To restore: stop farol, put the copy in the place of the store \
    (`[store] path`, data/farol.db by default; remove farol.db-wal and farol.db-shm beside it), start \
    farol. Keep farol.toml, feeds.d/ and the TLS and signing keys with it.\n\n\
    Example:\n  farol backup /var/backups/farol/farol-$(date +%F).db")]
pub struct BackupArgs {
    /// The file to write (it must not exist)
    file: PathBuf,
}

pub fn backup(dir: &Path, args: BackupArgs) -> Result<()> {
    let config = config::Config::load(dir)?;
    let farol_store::Location::Sqlite(path) = &config.store else {
        anyhow::bail!(
            "farol backup copies a SQLite store; back a PostgreSQL store up with pg_dump \
             (OPERATIONS.md, \"PostgreSQL\")"
        );
    };
    let store = farol_store::SqliteStore::open(path)?;
    let started = std::time::Instant::now();
    store.backup(&args.file).with_context(|| format!("cannot back the store up to {}", args.file.display()))?;
    let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up {} to {} ({}, integrity checked) in {:.1}s",
        store.path().display(),
        args.file.display(),
        crate::output::bytes(size),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `farol migrate`: brings the store to this farol's schema, saying from which version.
pub fn migrate(dir: &Path) -> Result<()> {
    let config = config::Config::load(dir)?;
    let (before, latest) = config.store.schema_version()?;
    super::store(&config)?;
    let path = &config.store;
    if before == latest {
        println!("the store at {path} has schema version {latest}: up to date");
    } else {
        println!("the store at {path} migrated from schema version {before} to {latest}");
    }
    Ok(())
}
