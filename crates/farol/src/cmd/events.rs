//! `farol events`: search stored events.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;
use farol_model::{ClassificationType, Field, Taxonomy, Timestamp};
use farol_store::{Cursor, EventQuery, StoredEvent, Visibility};
use ipnet::IpNet;

use crate::Usage;
use farol_model::export::{csv_header, csv_row};
use farol_model::parse;

use crate::output::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading
    Table,
    /// A JSON array of {id, report, feed, hash, event}
    Json,
    /// CSV with a header; cells that a spreadsheet would run as formulas are neutralized
    Csv,
    /// IntelMQ JSON, one event per line (what IntelMQ's file output writes)
    Intelmq,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Times are ISO 8601 (2024-06-01, 2024-06-01T10:00:00Z) or relative to now (30m, 24h, 7d, 2w).\n\n\
    Examples:\n  farol events --since 7d --asn 3243\n  farol events --cidr 192.0.2.0/24 --format csv > events.csv\n  \
    farol events --type infected-system --limit 0 --format intelmq"
)]
pub struct Args {
    /// Events at or after this time
    #[arg(long, value_parser = parse::time)]
    since: Option<Timestamp>,
    /// Events at or before this time
    #[arg(long, value_parser = parse::time)]
    until: Option<Timestamp>,
    /// source.ip equal to this address
    #[arg(long, conflicts_with = "cidr")]
    ip: Option<IpAddr>,
    /// source.ip inside this network
    #[arg(long)]
    cidr: Option<IpNet>,
    /// source.asn
    #[arg(long, value_parser = parse::asn)]
    asn: Option<u32>,
    /// source.geolocation.cc (two letters)
    #[arg(long)]
    cc: Option<String>,
    /// classification.taxonomy, e.g. malicious-code
    #[arg(long, value_parser = parse::taxonomy)]
    taxonomy: Option<Taxonomy>,
    /// classification.type, e.g. infected-system
    #[arg(long = "type", value_parser = parse::kind)]
    kind: Option<ClassificationType>,
    /// The feed the events came from
    #[arg(long)]
    feed: Option<String>,
    /// The report the events came from
    #[arg(long)]
    report: Option<i64>,
    /// Events in this organization's networks (its name or id)
    #[arg(long)]
    org: Option<String>,
    /// Where routing placed them: org, national, outside, unrouted
    #[arg(long, value_parser = |s: &str| s.parse::<farol_model::Scope>())]
    scope: Option<farol_model::Scope>,
    /// How many events to show, newest first; 0 shows all
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after this cursor (printed after a full page)
    #[arg(long)]
    after: Option<Cursor>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Events are read in pages, so that any number can be exported with flat memory.
const PAGE: usize = 1000;

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (_, store) = super::open(dir)?;
    if let Some(cc) = &args.cc
        && (cc.len() != 2 || !cc.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return Err(Usage(format!("--cc: expected a two-letter country code such as PT, found {cc:?}")).into());
    }
    let org = match &args.org {
        Some(key) => Some(super::org::find(&*store, key)?.id),
        None => None,
    };
    let want = if args.limit == 0 { usize::MAX } else { args.limit };
    let mut query = EventQuery {
        // The command line is the operator's, on the center's own machine.
        visible: Visibility::All,
        since: args.since,
        until: args.until,
        source: args.cidr.or(args.ip.map(IpNet::from)),
        asn: args.asn,
        cc: args.cc,
        taxonomy: args.taxonomy,
        kind: args.kind,
        feed: args.feed,
        report: args.report.map(farol_model::ReportId),
        org,
        scope: args.scope,
        after: args.after,
        limit: want.min(PAGE),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut table = Table::new(&["id", "time", "feed", "type", "source.ip", "port", "asn", "cc", "identifier"]);
    let mut shown = 0usize;
    let mut last = None;
    match args.format {
        Format::Csv => writeln!(out, "{}", csv_header())?,
        Format::Json => write!(out, "[")?,
        _ => {}
    }
    loop {
        query.limit = (want - shown).min(PAGE);
        let page = store.events(&query)?;
        for e in &page {
            match args.format {
                Format::Table => table.row(table_row(e)),
                Format::Intelmq => writeln!(out, "{}", e.event.to_intelmq_json())?,
                Format::Csv => writeln!(out, "{}", csv_row(&e.event))?,
                Format::Json => {
                    if shown > 0 {
                        write!(out, ",")?;
                    }
                    let value = serde_json::json!({
                        "id": e.id, "report": e.report.0, "feed": e.feed, "hash": e.hash.to_string(),
                        "event": e.event.to_intelmq(),
                    });
                    write!(out, "\n{value}")?;
                }
            }
            shown += 1;
        }
        last = page.last().map(StoredEvent::cursor).or(last);
        if page.len() < query.limit || shown >= want {
            break;
        }
        query.after = last;
    }
    match args.format {
        Format::Json => writeln!(out, "\n]")?,
        Format::Table if table.is_empty() => writeln!(out, "no events match")?,
        Format::Table => {
            write!(out, "{}", table.render())?;
            if let (true, Some(c)) = (shown == want, last) {
                writeln!(out, "(first {shown}; more with --after {c}, or --limit 0 for all)")?;
            }
        }
        _ => {}
    }
    out.flush()?;
    Ok(())
}

fn text(e: &StoredEvent, f: Field) -> String {
    e.event.get(f).map(|v| v.to_text()).unwrap_or_default()
}

fn table_row(e: &StoredEvent) -> Vec<String> {
    let time = e.event.time().map(|t| t.to_rfc3339()).unwrap_or_default();
    vec![
        e.id.to_string(),
        time,
        e.feed.clone(),
        text(e, Field::ClassificationType),
        text(e, Field::SourceIp),
        text(e, Field::SourcePort),
        text(e, Field::SourceAsn),
        text(e, Field::SourceGeolocationCc),
        text(e, Field::ClassificationIdentifier),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_absolute_and_relative() {
        assert_eq!(parse::time("2024-06-01").unwrap().to_string(), "2024-06-01T00:00:00+00:00");
        let week = parse::time("1w").unwrap();
        let now = Timestamp::now();
        assert!((now.secs() - week.secs() - 7 * 86_400).abs() < 5);
        assert!(parse::time("yesterday").unwrap_err().contains("expected a time"));
        assert!(parse::time("99999999999999d").is_err());
    }
}
