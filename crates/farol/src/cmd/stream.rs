//! `farol stream`: each organization's new events to its AMQP exchange, round after round; the
//! rounds `farol serve` runs when `[streams]` is configured.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use farol_collect::stream::{Published, StreamConfig};
use farol_store::Store;

use crate::Usage;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  farol stream          publish round after round, until Ctrl-C\n  \
    farol stream --once   one round, then exit\n\n\
    [streams] in farol.toml names the broker. An organization's stream starts when farol first \
    sees it (its exchange is declared then) and carries the reports finished from then on. \
    Stopping at any moment loses nothing: the next round publishes again what the broker had \
    not confirmed. `farol serve` runs the same rounds; only one process publishes at a time.")]
pub struct Args {
    /// One round, then exit
    #[arg(long)]
    once: bool,
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let streams = config.streams.clone().ok_or_else(|| {
        Usage("no streams: add a [streams] section with the broker's url to farol.toml (see its comments)".into())
    })?;
    let runtime = tokio::runtime::Runtime::new()?;
    if args.once {
        let _lock = store.lock(LOCK, true)?;
        let published = runtime.block_on(farol_collect::stream::round(store, &streams, &mut None)).context(
            "the stream round stopped (what the broker confirmed is kept; the next round goes on from there)",
        )?;
        print(&published, true);
        return Ok(());
    }
    println!("publishing every {}s (Ctrl-C stops)", streams.every_secs);
    runtime.block_on(rounds(store, streams, true));
    Ok(())
}

/// The store's lock that the publishing process holds: one at a time, on any machine.
const LOCK: &str = "stream";

/// Rounds every `every_secs`, skipped while another process publishes; a failed round is
/// reported and the next one tries again. `verbose`: say on stdout what each round published.
pub async fn rounds(store: Arc<dyn Store>, streams: StreamConfig, verbose: bool) {
    let mut seen = None;
    loop {
        let s = Arc::clone(&store);
        let lock = tokio::task::spawn_blocking(move || s.lock(LOCK, false))
            .await
            .unwrap_or_else(|e| Err(farol_store::StoreError::Io(std::io::Error::other(e))));
        match lock {
            Ok(Some(_lock)) => match farol_collect::stream::round(Arc::clone(&store), &streams, &mut seen).await {
                Ok(p) if verbose => print(&p, false),
                Ok(p) => tracing::info!(started = p.started, events = p.events, "stream round"),
                Err(e) => tracing::error!(error = %e, "stream round failed; the next one goes on from where it stood"),
            },
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot take the stream lock"),
        }
        tokio::time::sleep(Duration::from_secs(streams.every_secs)).await;
    }
}

/// What a round published; with `always`, also when it was nothing.
fn print(p: &Published, always: bool) {
    if p.started > 0 {
        println!("{} stream(s) started: they carry the reports finished from now on", p.started);
    }
    if always || p.events > 0 {
        println!("{} event(s) published to {} organization(s)", p.events, p.orgs);
    }
}
