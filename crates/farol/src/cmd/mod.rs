//! One module per command.

pub mod collect;
pub mod demo;
pub mod events;
pub mod exercise;
pub mod incident;
pub mod ingest;
pub mod init;
pub mod ipdata;
pub mod lookup;
pub mod notify;
pub mod org;
pub mod reports;
pub mod serve;
pub mod share;
pub mod stats;
pub mod stream;
pub mod user;
pub mod worker;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use farol_store::Store;

use crate::config::Config;

/// Loads the configuration and opens the store of a farol directory.
pub fn open(dir: &Path) -> Result<(Config, Arc<dyn Store>)> {
    let config = Config::load(dir)?;
    let store = store(&config)?;
    Ok((config, store))
}

/// Opens (creating and migrating as needed) the store the configuration names.
pub fn store(config: &Config) -> Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    config.store.open().with_context(|| format!("cannot open the store at {}", config.store))
}
