//! The `farol` command: parses the command line, loads the configuration and hands the work to
//! the library crates.

// A binary has no public API: `pub` here only says what the modules share.
#![allow(unreachable_pub)]

mod cmd;
mod config;
mod enrichment;
mod output;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (rejected records are not a failure: see the summary and `farol reports show`)
  1  the operation failed (I/O, store); the message says what to do
  2  usage or configuration error
  3  a report, event or directory that was named does not exist
  4  a report was processed but ended with a report-level error (truncated, empty);
     the records read before the problem are kept";

/// farol: collect, enrich, route and share security events for a national CERT.
#[derive(Debug, Parser)]
#[command(name = "farol", version, after_long_help = EXIT_CODES, max_term_width = 100)]
struct Cli {
    /// The farol directory: farol.toml, feeds.d/ and the data
    #[arg(short, long, global = true, env = "FAROL_DIR", default_value = ".")]
    dir: PathBuf,
    /// More log output on stderr (-v: info, -vv: debug); FAROL_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No progress bars
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A synthetic country in seconds: 200+ organizations, 180 days of feeds through the real
    /// pipeline, accounts; then the portal
    Demo(cmd::demo::Args),
    /// Create a farol directory: a commented farol.toml, feeds.d/ and the store
    Init(cmd::init::Args),
    /// Store a report and turn it into events
    Ingest(cmd::ingest::Args),
    /// Search stored events
    Events(cmd::events::Args),
    /// List reports, or show one with its rejected records
    Reports(cmd::reports::Args),
    /// Rebuild events from archived reports (after a parser or configuration change)
    Reprocess(cmd::ingest::ReprocessArgs),
    /// Process the reports that wait, beside other workers on the same store
    Worker(cmd::worker::Args),
    /// Publish each organization's new events to its AMQP exchange ([streams] in farol.toml)
    Stream(cmd::stream::Args),
    /// Copy the store, consistent and checked, while farol runs
    Backup(cmd::init::BackupArgs),
    /// Bring the store to this farol's schema (every command does it on opening; this says so)
    Migrate,
    /// Copy the SQLite store into an empty PostgreSQL database, ids and all
    CopyStore(cmd::init::CopyStoreArgs),
    /// Run feed collectors (HTTP, files, spool directories): once, or on their schedules
    Collect(cmd::collect::Args),
    /// List feeds with their health: last report, last error, events and rejects in 24 hours
    Feeds,
    /// List the formats farol reads, and the Shadowserver report types it knows
    Formats,
    /// Load and list IP data (MMDB, ip2asn, RIR delegated statistics, CSV ranges)
    Ipdata(cmd::ipdata::Args),
    /// Manage the organizations of the constituency, their networks and contacts
    Org(cmd::org::Args),
    /// Recompute which organizations stored events concern (after organizations change)
    Reroute(cmd::org::RerouteArgs),
    /// Show what farol knows about an address or a domain: AS, country, organization, warninglists
    Lookup(cmd::lookup::Args),
    /// List the warninglists in use
    Warninglists,
    /// Serve the REST API and the web portal, and run the feed schedules
    Serve(cmd::serve::Args),
    /// Manage users of the portal and the API, and their tokens
    User(cmd::user::Args),
    /// E-mail each organization's contacts a digest of the new events in its networks
    Notify(cmd::notify::Args),
    /// Mute rules: events left out of notifications (a known sinkhole, an accepted risk)
    Inhibition(cmd::notify::InhibitionArgs),
    /// Open, follow and close incidents: status, severity, assignee, events, timeline
    Incident(cmd::incident::Args),
    /// Take in the e-mail in the incident Maildir: new incidents, and replies to open ones
    Intake(cmd::incident::IntakeArgs),
    /// Infection rates per 1,000 over time: a country, an AS, an organization or a sector
    Stats(cmd::stats::Args),
    /// Load and list the denominators of the rates (internet users, subscribers, hosts)
    Population(cmd::stats::PopulationArgs),
    /// Write the national threat report: one self-contained HTML page
    Report(cmd::stats::ReportArgs),
    /// Training exercises: replay a scenario at accelerated time, then measure the response
    Exercise(cmd::exercise::Args),
    /// Sharing communities: groups of organizations that share indicators with each other
    Community(cmd::share::CommunityArgs),
    /// Indicators derived from events or added by hand; exports for defenders (blocklists,
    /// Suricata, Snort, RPZ, STIX)
    Indicators(cmd::share::IndicatorsArgs),
    /// Partner centers: pull their TAXII collections into indicators, push ours to them
    Partners(cmd::share::PartnersArgs),
}

/// A usage or configuration error (exit code 2).
#[derive(Debug)]
struct Usage(String);

/// Something named does not exist (exit code 3).
#[derive(Debug)]
struct Missing(String);

/// A report was processed but ended with a report-level error (exit code 4).
#[derive(Debug)]
struct Partial(String);

macro_rules! message_error {
    ($($t:ty),+) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for $t {}
    )+};
}
message_error!(Usage, Missing, Partial);

fn exit_code(e: &anyhow::Error) -> u8 {
    if e.is::<Usage>() || e.is::<config::ConfigErrors>() {
        2
    } else if e.is::<Missing>() {
        3
    } else if e.is::<Partial>() {
        4
    } else if let Some(farol_store::StoreError::NoReport(_) | farol_store::StoreError::NotFound(_)) = e.downcast_ref() {
        3
    } else if let Some(farol_store::StoreError::Conflict(_)) = e.downcast_ref() {
        2
    } else {
        1
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAROL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Whether the reader of our output went away (`farol ... | head`): not an error to report.
fn reader_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

fn main() -> ExitCode {
    // `println!` panics when the reader of stdout went away; like other command-line tools,
    // farol then stops quietly.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        report(info);
    }));
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let ui = output::Ui { quiet: cli.quiet };
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Init(args) => cmd::init::run(&cli.dir, args),
        Command::Ingest(args) => cmd::ingest::run(&cli.dir, args, &ui),
        Command::Events(args) => cmd::events::run(&cli.dir, args),
        Command::Reports(args) => cmd::reports::run(&cli.dir, args),
        Command::Reprocess(args) => cmd::ingest::reprocess(&cli.dir, args, &ui),
        Command::Worker(args) => cmd::worker::run(&cli.dir, args, &ui),
        Command::Stream(args) => cmd::stream::run(&cli.dir, args),
        Command::Backup(args) => cmd::init::backup(&cli.dir, args),
        Command::Migrate => cmd::init::migrate(&cli.dir),
        Command::CopyStore(args) => cmd::init::copy_store(&cli.dir, args, &ui),
        Command::Collect(args) => cmd::collect::run(&cli.dir, args),
        Command::Feeds => cmd::reports::feeds(&cli.dir),
        Command::Formats => cmd::reports::formats(&cli.dir),
        Command::Ipdata(args) => cmd::ipdata::run(&cli.dir, args),
        Command::Org(args) => cmd::org::run(&cli.dir, args),
        Command::Reroute(args) => cmd::org::reroute(&cli.dir, args, &ui),
        Command::Lookup(args) => cmd::lookup::run(&cli.dir, args),
        Command::Warninglists => cmd::lookup::warninglists(&cli.dir),
        Command::Serve(args) => cmd::serve::run(&cli.dir, args),
        Command::User(args) => cmd::user::run(&cli.dir, args),
        Command::Notify(args) => cmd::notify::run(&cli.dir, args),
        Command::Inhibition(args) => cmd::notify::inhibition(&cli.dir, args),
        Command::Incident(args) => cmd::incident::run(&cli.dir, args),
        Command::Intake(args) => cmd::incident::intake(&cli.dir, args),
        Command::Stats(args) => cmd::stats::run(&cli.dir, args),
        Command::Population(args) => cmd::stats::population(&cli.dir, args),
        Command::Report(args) => cmd::stats::report(&cli.dir, args),
        Command::Exercise(args) => cmd::exercise::run(&cli.dir, args),
        Command::Community(args) => cmd::share::community(&cli.dir, args),
        Command::Indicators(args) => cmd::share::indicators(&cli.dir, args),
        Command::Partners(args) => cmd::share::partners(&cli.dir, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if reader_gone(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
