//! `farol reports` and `farol feeds`.

use std::path::Path;

use anyhow::Result;
use farol_model::{Report, ReportId, Timestamp};

use crate::output::{Table, bytes, count, preview};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    show: Option<Show>,
    /// Only this feed's reports
    #[arg(long)]
    feed: Option<String>,
    /// How many reports, newest first
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

#[derive(Debug, clap::Subcommand)]
enum Show {
    /// One report in detail, with its rejected records
    Show {
        id: i64,
        /// How many rejected records to list
        #[arg(long, default_value_t = 20)]
        rejects: usize,
    },
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (_, store) = super::open(dir)?;
    if let Some(Show::Show { id, rejects }) = args.show {
        let report = store.report(ReportId(id))?;
        print!("{}", detail(&report));
        let list = store.rejects(report.id, rejects)?;
        if !list.is_empty() {
            println!("\nrejected records ({} of {}):", list.len(), count(report.counts.rejects));
            let mut t = Table::new(&["where", "reason", "record"]);
            for r in list {
                t.row(vec![r.position.to_string(), r.reason, preview(&r.raw, 80)]);
            }
            print!("{}", t.render());
        }
        return Ok(());
    }
    let reports = store.reports(args.feed.as_deref(), args.limit)?;
    if reports.is_empty() {
        println!("no reports yet: farol ingest --feed NAME FILE");
        return Ok(());
    }
    let mut t = Table::new(&["id", "feed", "received", "name", "size", "status", "events", "dup", "rejects"]);
    for r in reports {
        t.row(vec![
            r.id.to_string(),
            r.feed,
            r.received_at.to_rfc3339(),
            r.name.unwrap_or_else(|| "-".into()),
            bytes(r.size),
            match &r.holder {
                Some(holder) => format!("{} by {holder}", r.status),
                None => r.status.to_string(),
            },
            count(r.counts.events),
            count(r.counts.duplicates),
            count(r.counts.rejects),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

fn detail(r: &Report) -> String {
    let c = &r.counts;
    let mut s = format!(
        "report {}\n  feed        {}\n  format      {}\n  name        {}\n  received    {}\n  size        {}\n  sha256      {}\n  status      {}\n",
        r.id,
        r.feed,
        r.format,
        r.name.as_deref().unwrap_or("-"),
        r.received_at.to_rfc3339(),
        bytes(r.size),
        r.sha256,
        r.status
    );
    if let Some(holder) = &r.holder {
        s.push_str(&format!("  held by     {holder}\n"));
    }
    if let Some(t) = r.processed_at {
        s.push_str(&format!("  processed   {}\n", t.to_rfc3339()));
    }
    s.push_str(&format!(
        "  records     {}\n  events      {} new, {} duplicates, {} dropped\n  rejects     {}\n",
        count(c.records),
        count(c.events),
        count(c.duplicates),
        count(c.dropped),
        count(c.rejects)
    ));
    if let Some(e) = &r.error {
        s.push_str(&format!("  error       {e}\n"));
    }
    s
}

pub fn feeds(dir: &Path) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let health = store.feed_health(Timestamp::now())?;
    let mut names: Vec<&str> = config.feeds.keys().map(String::as_str).collect();
    names.extend(health.iter().map(|h| h.feed.as_str()));
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        println!("no feeds: declare them in farol.toml or feeds.d/NAME.toml");
        return Ok(());
    }
    let mut t = Table::new(&[
        "feed",
        "format",
        "collector",
        "last report",
        "last success",
        "last error",
        "reports 24h",
        "events 24h",
        "rejects 24h",
    ]);
    let when = |t: Option<Timestamp>| t.map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    for name in names {
        let h = health.iter().find(|h| h.feed == name);
        let format = config.feeds.get(name).map_or("(not declared)", |f| f.format.as_deref().unwrap_or("detect"));
        let collector = config.collectors.iter().find(|c| c.feed.name == name).map_or_else(
            || "-".to_owned(),
            |c| {
                let kind = match &c.config {
                    farol_collect::CollectorConfig::File { .. } => "file",
                    farol_collect::CollectorConfig::Spool { .. } => "spool",
                    farol_collect::CollectorConfig::Http(_) => "http",
                    farol_collect::CollectorConfig::MispFeed(_) => "misp-feed",
                    farol_collect::CollectorConfig::Amqp(_) => "amqp",
                };
                c.schedule.as_ref().map_or_else(|| kind.to_owned(), |s| format!("{kind}, {s}"))
            },
        );
        t.row(vec![
            name.to_owned(),
            format.to_owned(),
            collector,
            when(h.and_then(|h| h.last_report)),
            when(h.and_then(|h| h.last_success)),
            h.and_then(|h| h.last_error.as_ref())
                .map_or_else(|| "-".to_owned(), |(t, e)| format!("{}: {}", t.to_rfc3339(), preview(e.as_bytes(), 60))),
            count(h.map_or(0, |h| h.reports_24h)),
            count(h.map_or(0, |h| h.events_24h)),
            count(h.map_or(0, |h| h.rejects_24h)),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

pub fn formats(dir: &Path) -> Result<()> {
    let mut t = Table::new(&["format", "reads"]);
    for f in farol_feeds::FORMATS {
        t.row(vec![f.name.to_owned(), f.description.to_owned()]);
    }
    print!("{}", t.render());
    // The schema in use: the operator's if configured (needs a farol directory), else the shipped one.
    let schema = crate::config::Config::load(dir)
        .ok()
        .and_then(|c| c.shadowserver)
        .unwrap_or_else(farol_feeds::shadowserver::Schema::builtin);
    let types = schema.report_types();
    println!(
        "\nShadowserver report types in the schema in use ({}, {}): {}",
        types.len(),
        schema.created.as_deref().unwrap_or("undated"),
        types.join(", ")
    );
    Ok(())
}
