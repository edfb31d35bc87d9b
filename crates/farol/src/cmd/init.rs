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
    add_center(&config, &*store)?;
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

#[derive(Debug, clap::Args)]
#[command(after_help = "For a center that outgrows one machine: the SQLite store (the directory's \
    [store] path) goes into a new PostgreSQL database with its ids, in one transaction, while farol \
    may go on running (the copy is the store as of its start). Then point [store] url at the \
    database and start the workers (OPERATIONS.md, \"PostgreSQL\").\n\n\
    Example:\n  farol copy-store --to postgres://farol@db.cert.example/farol")]
pub struct CopyStoreArgs {
    /// The PostgreSQL database: postgres://USER:PASSWORD@HOST:PORT/DATABASE (`${VAR}` is read
    /// from the environment); its farol tables must be empty
    #[arg(long)]
    to: String,
}

/// `farol copy-store`: the SQLite store into an empty PostgreSQL database.
pub fn copy_store(dir: &Path, args: CopyStoreArgs, ui: &crate::output::Ui) -> Result<()> {
    let config = config::Config::load(dir)?;
    let farol_store::Location::Sqlite(from) = &config.store else {
        return Err(
            crate::Usage("copy-store copies a SQLite store, and this directory's store is PostgreSQL".into()).into()
        );
    };
    let url = farol_collect::expand(&args.to).map_err(|e| crate::Usage(format!("--to: {e}")))?;
    let to = match farol_store::Location::parse(dir, &url).map_err(|e| crate::Usage(format!("--to: {e}")))? {
        farol_store::Location::Postgres(url) => url,
        farol_store::Location::Sqlite(_) => return Err(crate::Usage("--to: give a postgres:// URL".into()).into()),
    };
    let started = std::time::Instant::now();
    let bar = crate::progress::Bar::new(ui.quiet);
    let copied = farol_store::sqlite_to_postgres(from, &to, &mut |table, rows| bar.rows(table, rows));
    bar.finish();
    let copied = copied.with_context(|| {
        format!("cannot copy {} into {}", from.display(), farol_store::Location::Postgres(to.clone()))
    })?;
    let mut table = crate::output::Table::new(&["table", "rows"]);
    for (name, rows) in &copied {
        table.row(vec![(*name).to_owned(), crate::output::count(*rows)]);
    }
    print!("{}", table.render());
    println!(
        "copied {} into {} in {:.1}s; to use it, set in farol.toml:\n  [store]\n  url = \"{}\"",
        from.display(),
        farol_store::Location::Postgres(to.clone()),
        started.elapsed().as_secs_f64(),
        without_password(&args.to)
    );
    Ok(())
}

/// A database URL to print: a password given literally becomes a variable to set.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((userinfo, host)) if !userinfo.contains("${") => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:${{FAROL_DB_PASSWORD}}@{host}"),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// The center is an organization of its own, in every store: its analysts' accounts belong to it.
fn add_center(config: &config::Config, store: &dyn farol_store::Store) -> Result<()> {
    if !store.orgs()?.iter().any(|o| o.sector == Sector::NationalCenter) {
        let name = config.center.name.clone();
        let center =
            Org { id: OrgId(0), name, sector: Sector::NationalCenter, handle: None, assets: vec![], contacts: vec![] };
        store.add_org(&center)?;
    }
    Ok(())
}

/// `farol migrate`: brings the store to this farol's schema, saying from which version, and
/// makes the center's organization (a new PostgreSQL store has none).
pub fn migrate(dir: &Path) -> Result<()> {
    let config = config::Config::load(dir)?;
    let (before, latest) =
        config.store.schema_version().with_context(|| format!("cannot open the store at {}", config.store))?;
    add_center(&config, &*super::store(&config)?)?;
    let path = &config.store;
    if before == latest {
        println!("the store at {path} has schema version {latest}: up to date");
    } else {
        println!("the store at {path} migrated from schema version {before} to {latest}");
    }
    Ok(())
}
