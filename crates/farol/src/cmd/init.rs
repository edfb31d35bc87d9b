//! `farol init`: a new farol directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::config::{self, FEEDS_DIR, FILE_NAME};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to create (default: --dir)
    dir: Option<PathBuf>,
    /// The national center's name, written into farol.toml
    #[arg(long, default_value = "CERT")]
    center: String,
}

pub fn run(default_dir: &Path, args: Args) -> Result<()> {
    let dir = args.dir.as_deref().unwrap_or(default_dir);
    std::fs::create_dir_all(dir.join(FEEDS_DIR)).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join(FILE_NAME);
    if file.exists() {
        println!("{} already exists: left as it is", file.display());
    } else {
        std::fs::write(&file, config::template(&args.center))
            .with_context(|| format!("cannot write {}", file.display()))?;
        println!("wrote {}", file.display());
    }
    let (config, _store) = super::open(dir)?;
    println!("store for {} ready at {}", config.center.name, config.store_path.display());
    let d = dir.display();
    println!(
        "\nnext:\n  declare feeds in {d}/{FILE_NAME} or {d}/{FEEDS_DIR}/NAME.toml\n  farol -d {d} ingest --feed NAME FILE\n  farol -d {d} events"
    );
    Ok(())
}
