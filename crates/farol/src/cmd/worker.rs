//! `farol worker`: processes the reports that wait, beside any number of other workers on the
//! same store. Each report is leased to one worker at a time; a worker that dies stops renewing,
//! and another takes the report over when the lease runs out.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use farol_pipeline::Lease;
use farol_store::Outcome;

use crate::output::Ui;
use crate::progress::Bar;

#[derive(Debug, clap::Args)]
#[command(after_help = "Reports wait for workers when farol.toml says `[processing] workers = true` \
    (collectors and uploads then only archive) or when ingested with `farol ingest --queue`; reports \
    left unfinished by a process that died are taken over too.\n\n\
    Examples:\n  farol worker                 process reports as they arrive, until Ctrl-C or SIGTERM\n  \
    farol worker --once          process what waits, then exit\n\n\
    Stopping a worker at any moment loses nothing: Ctrl-C or SIGTERM lets the report in hand finish \
    (a second one stops at once), and a report left unfinished is processed again by another worker \
    once its lease has run out.")]
pub struct Args {
    /// How long a report stays this worker's without a sign of life, in seconds; then another
    /// worker may take it over
    #[arg(long, default_value_t = farol_pipeline::LEASE.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease: u64,
    /// How often to look for new reports when none waits (seconds)
    #[arg(long, default_value_t = 1.0)]
    poll: f64,
    /// Process the reports that wait, then exit
    #[arg(long)]
    once: bool,
}

pub fn run(dir: &Path, args: Args, ui: &Ui) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let live = Arc::new(farol_enrich::Live::new(crate::enrichment::snapshot(&config, &*store)?));
    let experts = crate::enrichment::experts(Arc::clone(&live));
    let mut seen = crate::enrichment::fingerprint(&config, &*store)?;
    let lease = Duration::from_secs(args.lease);
    let poll = Duration::try_from_secs_f64(args.poll)
        .map_err(|_| crate::Usage(format!("--poll {}: give a number of seconds", args.poll)))?;
    let stopping = stop_on_signal();
    if !args.once {
        println!("worker {} waiting for reports (Ctrl-C stops)", std::process::id());
    }
    let mut processed = 0u64;
    while !stopping.load(Ordering::Relaxed) {
        let Some(held) = Lease::next(&*store, lease)? else {
            if args.once {
                break;
            }
            std::thread::sleep(poll);
            continue;
        };
        // New IP data, organizations or warninglists since the last report.
        let now = crate::enrichment::fingerprint(&config, &*store)?;
        if now != seen {
            live.replace(crate::enrichment::snapshot(&config, &*store)?);
            seen = now;
        }
        let report = held.report().clone();
        let feed = match config.report_feed(&report) {
            Ok(feed) => feed,
            // Trying again would fail again: the report fails, and waits for `farol reprocess`.
            Err(e) => {
                let error = format!("{e:#} (in the farol.toml of worker {})", std::process::id());
                eprintln!("report {}: {error}", report.id);
                store.begin_processing(report.id)?;
                let holder = Some(held.holder().to_owned());
                store.finish_processing(report.id, &Outcome { error: Some(error), holder, ..Default::default() })?;
                continue;
            }
        };
        let bar = Bar::new(ui.quiet);
        let result = farol_pipeline::process(&held, &feed, &experts(&feed), &bar);
        bar.finish();
        drop(held);
        match result {
            Ok(summary) => {
                super::ingest::print_summary(&summary);
                processed += 1;
                super::share::derive(&config, &*store)?;
            }
            // The report waits for the next try (by this worker or another); others go on.
            Err(e) => {
                eprintln!("report {}: {e}", report.id);
                std::thread::sleep(poll);
            }
        }
    }
    println!("worker {}: {processed} report(s) processed", std::process::id());
    Ok(())
}

/// Ctrl-C or SIGTERM: finish the report in hand, then stop; a second one stops at once.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stopping = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stopping);
    let watcher = std::thread::Builder::new().name("farol-signals".into()).spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            super::serve::shutdown_signal().await;
            flag.store(true, Ordering::Relaxed);
            eprintln!("stopping after the report in hand (Ctrl-C again stops at once)");
            super::serve::shutdown_signal().await;
            std::process::exit(130);
        });
    });
    if watcher.is_err() {
        tracing::warn!("cannot watch for Ctrl-C; it stops the worker at once");
    }
    stopping
}
