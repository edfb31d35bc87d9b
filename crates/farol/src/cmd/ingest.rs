//! `farol ingest` and `farol reprocess`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use farol_model::{Report, ReportId, ReportStatus};
use farol_pipeline::{Ingested, Input, LEASE, Lease, Summary};

use crate::output::{Ui, bytes, count};
use crate::progress::Bar;
use crate::{Missing, Partial, Usage};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  farol ingest --feed shadowserver-sinkhole 2024-06-01-event4_sinkhole-pt.csv\n  \
    zcat events.jsonl.gz | farol ingest --feed partner-x --format intelmq -")]
pub struct Args {
    /// The feed the reports come from (declared in farol.toml, or ad hoc for self-describing formats)
    #[arg(long)]
    feed: String,
    /// The format: intelmq, csv or json (default: the feed's, or detected from each report)
    #[arg(long)]
    format: Option<String>,
    /// Files to ingest, each its own report; `-` reads standard input. gzip and zstd are undone.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Only archive the reports: `farol worker` processes process them (the default when
    /// farol.toml says `[processing] workers = true`)
    #[arg(long)]
    queue: bool,
}

pub fn run(dir: &Path, args: Args, ui: &Ui) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let feed = config.feed(&args.feed, args.format.as_deref())?;
    let experts = crate::enrichment::load(&config, &*store)?;
    let mut partial = Vec::new();
    for file in &args.files {
        let input = open_input(file, args.queue || config.queue)?;
        let bar = Bar::new(ui.quiet);
        let result = farol_pipeline::ingest_all(&*store, &feed, input, &experts(&feed), &bar);
        bar.finish();
        let explain = |e: farol_pipeline::Error| match e {
            farol_pipeline::Error::Config(m) => anyhow::Error::new(Usage(m)),
            farol_pipeline::Error::Detect(d) => anyhow::Error::new(Usage(format!("{}: {d}", file.display()))),
            other => anyhow::Error::new(other).context(format!("cannot ingest {}", file.display())),
        };
        let (results, error) = result.map_err(explain)?;
        for ingested in results {
            match ingested {
                Ingested::Processed(summary) => {
                    print_summary(&summary);
                    if summary.report.status == ReportStatus::Failed {
                        partial.push(summary.report.id);
                    }
                }
                Ingested::Queued(report) => print_queued(&report),
                Ingested::AlreadyIngested(report) => println!(
                    "report {} ({}): these bytes were already ingested for feed {} at {}; nothing to do \
                     (`farol reprocess {}` processes them again)",
                    report.id,
                    report.name.as_deref().unwrap_or("stdin"),
                    report.feed,
                    report.received_at,
                    report.id
                ),
            }
        }
        if let Some(e) = error {
            return Err(explain(e));
        }
    }
    super::share::derive(&config, &*store)?;
    partial_error(&partial)
}

fn open_input(file: &Path, queue: bool) -> Result<Input<'static>> {
    if file.as_os_str() == "-" {
        return Ok(Input { reader: Box::new(std::io::stdin()), name: None, size: None, queue });
    }
    let f = std::fs::File::open(file).map_err(|e| {
        let message = format!("cannot open {}: {e}", file.display());
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::Error::new(Missing(message))
        } else {
            anyhow::anyhow!(message)
        }
    })?;
    let size = f.metadata().ok().map(|m| m.len());
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(Input { reader: Box::new(f), name, size, queue })
}

pub fn print_queued(r: &Report) {
    let name = r.name.as_deref().unwrap_or("stdin");
    match &r.holder {
        Some(holder) => println!("report {} ({}, {name}): stored; {holder} is processing it", r.id, r.feed),
        None => println!("report {} ({}, {name}): stored; a `farol worker` processes it", r.id, r.feed),
    }
}

pub fn print_summary(s: &Summary) {
    let r = &s.report;
    let c = &r.counts;
    println!(
        "report {} ({}, {}, {}): {} records: {} new events, {} duplicates, {} dropped, {} rejected in {:.2}s ({} events/s)",
        r.id,
        r.feed,
        r.name.as_deref().unwrap_or("stdin"),
        bytes(r.size),
        count(c.records),
        count(c.events),
        count(c.duplicates),
        count(c.dropped),
        count(c.rejects),
        s.elapsed.as_secs_f64(),
        count(s.events_per_sec() as u64),
    );
    if let Some(error) = &r.error {
        println!("  report {} ended with an error: {error}", r.id);
    }
    if c.rejects > 0 {
        println!("  see the rejected records with: farol reports show {}", r.id);
    }
}

fn partial_error(failed: &[ReportId]) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = failed.iter().map(ToString::to_string).collect();
    Err(Partial(format!(
        "{} report(s) ended with a report-level error: {} (details: farol reports show ID)",
        failed.len(),
        ids.join(", ")
    ))
    .into())
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Reprocessing is idempotent: a report's earlier events and rejects are replaced.")]
pub struct ReprocessArgs {
    /// Reports to process again
    #[arg(value_name = "REPORT_ID", conflicts_with_all = ["feed", "unfinished"])]
    reports: Vec<i64>,
    /// Every report of this feed
    #[arg(long, conflicts_with = "unfinished")]
    feed: Option<String>,
    /// Every report whose processing was interrupted
    #[arg(long)]
    unfinished: bool,
}

pub fn reprocess(dir: &Path, args: ReprocessArgs, ui: &Ui) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let reports: Vec<Report> = if let Some(feed) = &args.feed {
        let all = store.reports(Some(feed), usize::MAX)?;
        if all.is_empty() {
            return Err(Missing(format!("feed {feed} has no reports")).into());
        }
        all.into_iter().rev().collect()
    } else if args.unfinished {
        store.unfinished_reports()?
    } else if args.reports.is_empty() {
        return Err(Usage("name the reports to reprocess, or use --feed NAME or --unfinished".into()).into());
    } else {
        args.reports.iter().map(|&id| store.report(ReportId(id))).collect::<Result<_, _>>()?
    };
    let experts = crate::enrichment::load(&config, &*store)?;
    let mut partial = Vec::new();
    for report in &reports {
        let feed = config.report_feed(report)?;
        let lease = match Lease::take(&*store, report.id, LEASE) {
            Err(farol_pipeline::Error::Held { report, holder }) => {
                println!("report {report} is being processed by {holder}: left to it");
                continue;
            }
            lease => lease?,
        };
        let bar = Bar::new(ui.quiet);
        let result = farol_pipeline::process(&lease, &feed, &experts(&feed), &bar);
        bar.finish();
        let summary = result.with_context(|| format!("cannot reprocess report {}", report.id))?;
        print_summary(&summary);
        if summary.report.status == ReportStatus::Failed {
            partial.push(summary.report.id);
        }
    }
    if reports.is_empty() {
        println!("nothing to reprocess");
    }
    super::share::derive(&config, &*store)?;
    partial_error(&partial)
}
