//! Collectors: where a feed's reports come from (a file, a spool directory, an HTTP(S) URL, an
//! AMQP queue), and the schedules that run them; the TAXII client that exchanges indicators with
//! partner centers; and the live AMQP event streams to the organizations. A collector only
//! fetches; the pipeline archives and processes what it fetched, and a broken feed never stops
//! the others.

mod amqp;
mod http;
mod misp;
mod schedule;
mod spool;
pub mod stream;
mod taxii;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use farol_pipeline::{Experts, Feed, Ingested, Input, Quiet};
use farol_store::Store;
use serde::Deserialize;

pub use amqp::{AmqpConfig, connection_arguments};
pub use http::{HttpConfig, expand, forbidden};
pub use schedule::{Schedule, run_schedules};
pub use taxii::{Exchange, Partner, exchange};

/// Where a feed's reports come from, as written under `[feeds.NAME.collector]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CollectorConfig {
    /// One file, read on every run (unchanged content is recognized and skipped).
    File { path: PathBuf },
    /// Every file that appears in a directory, once; then moved to `done/` or `failed/`.
    Spool { dir: PathBuf },
    /// An HTTP(S) download.
    Http(HttpConfig),
    /// A MISP feed: its manifest, then each event that is new or changed, as a report.
    #[serde(rename = "misp-feed")]
    MispFeed(HttpConfig),
    /// An AMQP queue (RabbitMQ): the events IntelMQ or n6 publish, one JSON object a message.
    Amqp(AmqpConfig),
}

/// Why a collector run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Fetch(String),
    #[error(transparent)]
    Ingest(#[from] farol_pipeline::Error),
    #[error(transparent)]
    Store(#[from] farol_store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A feed with its collector, ready to run.
#[derive(Debug, Clone)]
pub struct Collector {
    pub feed: Feed,
    pub config: CollectorConfig,
    pub schedule: Option<Schedule>,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct Run {
    pub ingested: Vec<Ingested>,
    /// Nothing new at the source (HTTP 304, an empty spool).
    pub unchanged: bool,
}

/// What collectors share: the store, what builds each feed's expert chain, and the directory
/// where downloads wait until they are complete.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub experts: Experts,
    pub workdir: PathBuf,
    /// Reports are only archived: `farol worker` processes process them.
    pub queue: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("workdir", &self.workdir).finish_non_exhaustive()
    }
}

/// Runs a collector once. The outcome is also recorded as the feed's last success or error.
pub async fn run_once(ctx: &Context, collector: &Collector) -> Result<Run, Error> {
    let result = run_inner(ctx, collector).await;
    let error = result.as_ref().err().map(ToString::to_string);
    let (name, store) = (collector.feed.name.clone(), ctx.store.clone());
    let _ = tokio::task::spawn_blocking(move || store.record_feed_result(&name, error.as_deref())).await;
    result
}

async fn run_inner(ctx: &Context, collector: &Collector) -> Result<Run, Error> {
    let feed = collector.feed.clone();
    match &collector.config {
        CollectorConfig::File { path } => {
            let (path, ctx) = (path.clone(), ctx.clone());
            blocking(move || Ok(Run { ingested: ingest_file(&ctx, &feed, &path)?, unchanged: false })).await
        }
        CollectorConfig::Spool { dir } => {
            let (dir, ctx) = (dir.clone(), ctx.clone());
            blocking(move || spool::run(&ctx, &feed, &dir)).await
        }
        CollectorConfig::Http(config) => http::run(ctx, &feed, config).await,
        CollectorConfig::MispFeed(config) => misp::run(ctx, &feed, config).await,
        CollectorConfig::Amqp(config) => amqp::run(ctx, &feed, config).await,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Fetch(format!("the collector stopped unexpectedly: {e}")))?
}

/// Archives and processes a complete temporary file off the async threads, then removes it.
pub(crate) async fn ingest_temporary(
    ctx: &Context,
    feed: &Feed,
    tmp: &Path,
    name: Option<String>,
) -> Result<Vec<Ingested>, Error> {
    let (c, f, t) = (ctx.clone(), feed.clone(), tmp.to_owned());
    let ingested = blocking(move || ingest_named(&c, &f, &t, name)).await;
    let _ = tokio::fs::remove_file(tmp).await;
    ingested
}

/// Archives and processes one file (each member, for a zip).
pub(crate) fn ingest_file(ctx: &Context, feed: &Feed, path: &Path) -> Result<Vec<Ingested>, Error> {
    ingest_named(ctx, feed, path, path.file_name().map(|n| n.to_string_lossy().into_owned()))
}

pub(crate) fn ingest_named(
    ctx: &Context,
    feed: &Feed,
    path: &Path,
    name: Option<String>,
) -> Result<Vec<Ingested>, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::Fetch(format!("cannot open {}: {e}", path.display())))?;
    let size = file.metadata().ok().map(|m| m.len());
    let input = Input { reader: Box::new(file), name, size, queue: ctx.queue };
    let experts = (ctx.experts)(feed);
    let (ingested, error) = farol_pipeline::ingest_all(&*ctx.store, feed, input, &experts, &Quiet)?;
    match error {
        Some(e) => Err(e.into()),
        None => Ok(ingested),
    }
}
