//! `farol collect`: run feed collectors now, or on their schedules.

use std::path::Path;

use anyhow::Result;
use farol_model::ReportStatus;
use farol_pipeline::Ingested;

use crate::{Missing, Partial, Usage};

#[derive(Debug, clap::Args)]
#[command(after_help = "Collectors are declared per feed in farol.toml ([feeds.NAME.collector]).\n\n\
    Examples:\n  farol collect --once              every collector, once\n  farol collect --once feodo        one feed\n  \
    farol collect                     every scheduled feed, until Ctrl-C")]
pub struct Args {
    /// Only this feed
    feed: Option<String>,
    /// Run each collector once and exit, instead of following the schedules
    #[arg(long)]
    once: bool,
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let collectors: Vec<_> =
        config.collectors.iter().filter(|c| args.feed.as_ref().is_none_or(|f| *f == c.feed.name)).cloned().collect();
    if collectors.is_empty() {
        return Err(match &args.feed {
            Some(f) if config.feeds.contains_key(f) => {
                Usage(format!("feed {f} has no collector: add [feeds.{f}.collector] to farol.toml")).into()
            }
            Some(f) => Missing(format!("no feed {f} in farol.toml")).into(),
            None => Usage("no feed has a collector: add [feeds.NAME.collector] to farol.toml".into()).into(),
        });
    }
    let experts = crate::enrichment::load(&config, &*store)?;
    let workdir = config.data_dir.join("tmp");
    let ctx = farol_collect::Context { store, experts, workdir, queue: config.queue };
    let runtime = tokio::runtime::Runtime::new()?;
    if !args.once {
        let scheduled = collectors.iter().filter(|c| c.schedule.is_some()).count();
        if scheduled == 0 {
            return Err(
                Usage("no selected feed has a schedule: add schedule = \"1h\" to it, or use --once".into()).into()
            );
        }
        println!("collecting {scheduled} feed(s) on their schedules; Ctrl-C stops");
        runtime.block_on(farol_collect::run_schedules(ctx, collectors, async {
            let _ = tokio::signal::ctrl_c().await;
        }));
        return Ok(());
    }
    let mut failed = Vec::new();
    for collector in &collectors {
        let name = &collector.feed.name;
        match runtime.block_on(farol_collect::run_once(&ctx, collector)) {
            Ok(run) if run.unchanged => println!("{name}: nothing new at the source"),
            Ok(run) => {
                for ingested in run.ingested {
                    match ingested {
                        Ingested::Processed(s) => {
                            super::ingest::print_summary(&s);
                            if s.report.status == ReportStatus::Failed {
                                failed.push(format!("{name}: report {} ended with an error", s.report.id));
                            }
                        }
                        Ingested::Queued(r) => super::ingest::print_queued(&r),
                        Ingested::AlreadyIngested(r) => {
                            println!("{name}: report {} unchanged since its last collection", r.id)
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                failed.push(format!("{name}: {e}"));
            }
        }
    }
    super::share::derive(&config, ctx.store.as_ref())?;
    if failed.is_empty() {
        Ok(())
    } else {
        // The other feeds ran: a broken feed never stops them.
        Err(Partial(format!("{} of {} collector(s) failed", failed.len(), collectors.len())).into())
    }
}
