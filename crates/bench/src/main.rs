//! `farol-bench`: the benchmarks of BENCHMARKS.md. Each one generates its input, runs the real
//! `farol` binary in a fresh directory and reports throughput and peak resident memory.

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use farol_model::Timestamp;
use farol_store::testing::PostgresSchema;

mod intelmq;
mod latency;
mod stream;
mod workers;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "farol-bench", about = "Benchmarks of farol; run them with ./bench/run")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a synthetic sinkhole report (Shadowserver event4_sinkhole columns)
    Gen {
        #[arg(long, default_value_t = 1000)]
        rows: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "2024-06-01")]
        day: String,
        /// Output file; standard output when omitted
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Parse a generated report on one core, without storing it: records per second
    Parse {
        /// shadowserver (an event4_sinkhole CSV), csv (the same, with a column mapping) or ctip
        #[arg(long, default_value = "shadowserver")]
        format: String,
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
    /// Longest-prefix lookups on one core over a synthetic routing table of N IPv4 prefixes
    Lookup {
        #[arg(long, default_value_t = 1_000_000)]
        prefixes: u32,
        #[arg(long, default_value_t = 20_000_000)]
        lookups: u32,
    },
    /// Ingest a generated sinkhole report of N rows into a fresh embedded store
    Ingest {
        #[arg(long, default_value_t = 5_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where inputs and stores are kept (default: target/bench)
        #[arg(long)]
        work: Option<PathBuf>,
        /// Without IP data and organizations (no enrichment, no routing)
        #[arg(long)]
        bare: bool,
        /// Into this PostgreSQL database (postgres://...) instead of the embedded store, in a
        /// schema farol_bench made anew
        #[arg(long)]
        database: Option<String>,
    },
    /// Side by side with IntelMQ: its own Shadowserver parser bot (from PyPI, in a virtualenv
    /// made here) and `farol ingest` on the same generated Shadowserver report
    Intelmq {
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// The IntelMQ release from PyPI
        #[arg(long, default_value = "3.5.0")]
        version: String,
        /// Where inputs, stores and the virtualenv are kept (default: target/bench)
        #[arg(long)]
        work: Option<PathBuf>,
    },
    /// Ingest by `farol worker` processes: N rows in reports queued first, processed by one
    /// worker, then by two, with enrichment and routing on
    Workers {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long, default_value_t = 8)]
        reports: u64,
        /// How many workers, one run each
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// Where inputs and stores are kept (default: target/bench)
        #[arg(long)]
        work: Option<PathBuf>,
        /// On this PostgreSQL database (postgres://...) instead of the embedded store, in a
        /// schema farol_bench made anew
        #[arg(long)]
        database: Option<String>,
    },
    /// Live streams: a report of N rows enriched and routed, then published by `farol stream
    /// --once` to each organization's exchange and durable queue on a RabbitMQ
    Stream {
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
        broker: String,
        /// Where inputs and stores are kept (default: target/bench)
        #[arg(long)]
        work: Option<PathBuf>,
    },
    /// Latency of portal pages under a steady load from wrk, on a store of N events over the
    /// last 7 days (built once a day, then reused)
    Latency {
        #[arg(long, default_value_t = 10_000_000)]
        rows: u64,
        /// Requests per second, in all
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Seconds of load per page (more than 60 includes one recount of the dashboard)
        #[arg(long, default_value_t = 70)]
        seconds: u32,
        /// Where inputs and stores are kept (default: target/bench)
        #[arg(long)]
        work: Option<PathBuf>,
        /// A PostgreSQL server to keep the store in (schema farol_bench, made anew each run)
        /// instead of the embedded store: postgres://USER@HOST:PORT/DATABASE
        #[arg(long)]
        database: Option<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Gen { rows, seed, day, out } => {
            let day = Timestamp::parse(&day).context("--day: expected a date such as 2024-06-01")?;
            match out {
                Some(path) => {
                    let mut f = BufWriter::new(std::fs::File::create(&path)?);
                    farol_synth::sinkhole_csv(&mut f, rows, seed, day)?;
                    f.flush()?;
                }
                None => {
                    let mut out = BufWriter::new(std::io::stdout().lock());
                    farol_synth::sinkhole_csv(&mut out, rows, seed, day)?;
                    out.flush()?;
                }
            }
            Ok(())
        }
        Cmd::Ingest { rows, seed, work, bare, database } => ingest(rows, seed, work, bare, database.as_deref()),
        Cmd::Intelmq { rows, version, work } => intelmq::run(rows, &version, work),
        Cmd::Workers { rows, reports, workers, work, database } => {
            workers::run(rows, reports, &workers, work, database.as_deref())
        }
        Cmd::Stream { rows, broker, work } => stream::run(rows, &broker, work),
        Cmd::Latency { rows, rate, seconds, work, database } => {
            latency::run(rows, rate, seconds, work, database.as_deref())
        }
        Cmd::Parse { format, rows } => parse(&format, rows),
        Cmd::Lookup { prefixes, lookups } => lookup(prefixes, lookups),
    }
}

/// Parses `rows` generated records of a format on this thread, draining events as the pipeline
/// does, and reports records per second.
fn parse(format: &str, rows: u64) -> Result<()> {
    let day = Timestamp::parse("2024-06-01").context("date")?;
    let mut input = Vec::new();
    let (config, name) = match format {
        "shadowserver" => {
            farol_synth::sinkhole_csv(&mut input, rows, 1, day)?;
            (farol_feeds::ParseConfig::default(), "2024-06-01-event4_sinkhole-bench.csv")
        }
        "csv" => {
            farol_synth::sinkhole_csv(&mut input, rows, 1, day)?;
            let text = std::fs::read_to_string("examples/feeds/example-sinkhole.toml")
                .context("run from the repository root")?;
            let mut table: toml::Table = toml::from_str(&text)?;
            for key in ["provider", "format", "tlp", "documentation", "constants"] {
                table.remove(key);
            }
            (table.try_into()?, "sinkhole.csv")
        }
        "ctip" => {
            farol_synth::ctip_jsonl(&mut input, rows, 1, day)?;
            (farol_feeds::ParseConfig::default(), "ctip.json")
        }
        other => bail!("unknown format {other:?}: shadowserver, csv or ctip"),
    };
    let build = farol_feeds::format(format).map_err(|e| anyhow::anyhow!(e.0))?.build;
    // The best of three runs: the machine's other work only ever makes a run slower.
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let mut parser = build(&config, Some(name)).map_err(|e| anyhow::anyhow!(e.0))?;
        let mut out = farol_feeds::Output::default();
        let (mut events, mut rejects) = (0usize, 0usize);
        let started = Instant::now();
        for chunk in input.chunks(256 * 1024) {
            parser.push(chunk, &mut out);
            if out.events.len() >= 2048 {
                events += out.events.len();
                rejects += out.rejects.len();
                // As the pipeline does: the buffers are kept for the next batch.
                out.events.clear();
                out.rejects.clear();
                out.raw.clear();
            }
        }
        parser.finish(&mut out);
        events += out.events.len();
        rejects += out.rejects.len();
        best = best.min(started.elapsed());
        if rejects > 0 || events as u64 != rows {
            bail!("expected {rows} events, got {events} and {rejects} rejects");
        }
    }
    println!(
        "| {format} | {rows} | {:.0} MB | {:.2} s | {:.0} |",
        input.len() as f64 / 1e6,
        best.as_secs_f64(),
        rows as f64 / best.as_secs_f64()
    );
    Ok(())
}

/// A routing table shaped like the Internet's (most prefixes /24, nested in shorter ones),
/// then random addresses looked up one after another on this thread.
fn lookup(prefixes: u32, lookups: u32) -> Result<()> {
    use farol_enrich::ipdata::{Dataset, DatasetMeta, Format, Info, Loaded, Span};
    let mut rng = farol_synth::Rng::new(7);
    let mut loaded = Loaded::default();
    for i in 0..prefixes {
        let len = match rng.below(100) {
            0..60 => 24,
            60..75 => 22 + rng.below(2) as u8,
            75..90 => 16 + rng.below(6) as u8,
            _ => 8 + rng.below(8) as u8,
        };
        let net = (rng.next_u64() as u32) & (u32::MAX << (32 - len));
        let info = Info { asn: Some(1 + i % 70_000), ..Info::default() };
        loaded.push(Span::V4(net, net | !(u32::MAX << (32 - len))), info);
    }
    let raw: Vec<(u32, u32, u32)> = loaded
        .ranges
        .iter()
        .filter_map(|&(s, i)| if let Span::V4(a, b) = s { Some((a, b, i)) } else { None })
        .collect();
    let map = farol_enrich::range::RangeMap::build(raw);
    let started = Instant::now();
    let meta = DatasetMeta { id: 1, name: "synthetic".into(), version: 1, format: Format::Csv, priority: 0 };
    let data = Dataset::build(meta, loaded);
    let built = started.elapsed();
    let keys: Vec<u32> = (0..lookups).map(|_| rng.next_u64() as u32).collect();
    let mut best = Duration::MAX;
    let mut found = 0u64;
    for _ in 0..3 {
        let started = Instant::now();
        found = 0;
        for &k in &keys {
            if let Some(hit) = data.get(farol_enrich::range::Addr::V4(k)) {
                found += u64::from(hit.info.asn.is_some());
            }
        }
        best = best.min(started.elapsed());
    }
    let mut best_raw = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut sum = 0u64;
        for &k in &keys {
            sum += map.get(k).map_or(0, |r| u64::from(r.value));
        }
        std::hint::black_box(sum);
        best_raw = best_raw.min(started.elapsed());
    }
    println!("| prefixes | build | memory | lookups/s (value) | lookups/s (AS, network) | found |");
    println!(
        "| {prefixes} | {:.2} s | {:.1} MB | {:.0} | {:.0} | {:.0}% |",
        built.as_secs_f64(),
        data.heap_bytes() as f64 / 1e6,
        f64::from(lookups) / best_raw.as_secs_f64(),
        f64::from(lookups) / best.as_secs_f64(),
        found as f64 * 100.0 / f64::from(lookups),
    );
    Ok(())
}

/// The sample IP data, the national scope, and one organization per Portuguese network of the
/// sample (428, by prefix) plus one per AS number: enrichment and routing as a center runs them.
fn constituency(farol: &Path, dir: &Path) -> Result<()> {
    let run = |args: &[&str]| -> Result<()> {
        let status = Command::new(farol).arg("-d").arg(dir).args(args).stdout(Stdio::null()).status()?;
        if !status.success() {
            bail!("farol {} failed", args.join(" "));
        }
        Ok(())
    };
    let sample = Path::new("data/ipdata-sample");
    for file in ["asn-ipv4-pt.csv", "country-ipv4.csv"] {
        run(&["ipdata", "load", &sample.join(file).to_string_lossy()])?;
    }
    let config = dir.join("farol.toml");
    let text = std::fs::read_to_string(&config)?.replace("# country = \"PT\"", "country = \"PT\"");
    std::fs::write(&config, text)?;
    let mut csv = String::from("name,sector,asns,prefixes\n");
    let mut asns = std::collections::BTreeSet::new();
    for (i, line) in std::fs::read_to_string(sample.join("asn-ipv4-pt.csv"))?.lines().enumerate() {
        let cols: Vec<&str> = line.splitn(4, ',').collect();
        let (Some(first), Some(last), Some(asn)) = (cols.first(), cols.get(1), cols.get(2)) else { continue };
        let (first, last): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (first.parse()?, last.parse()?);
        let prefixes = farol_enrich::ripe::range_to_prefixes(first, last);
        let list: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
        csv += &format!("Network {i},private,,{}\n", list.join(" "));
        asns.insert(asn.to_string());
    }
    for asn in asns {
        csv += &format!("Operator of AS{asn},isp,{asn},\n");
    }
    let orgs = dir.join("orgs.csv");
    std::fs::write(&orgs, csv)?;
    run(&["org", "import", &orgs.to_string_lossy()])
}

/// With `--database`, the schema farol_bench made anew there for one run (dropped after it).
fn bench_schema(database: Option<&str>) -> Result<Option<PostgresSchema>> {
    database.map(|url| PostgresSchema::create(url, "farol_bench")).transpose().context("--database")
}

/// The `farol` binary built next to this one.
fn farol_binary() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let farol = me.with_file_name("farol");
    if !farol.exists() {
        bail!("{} is missing: build it with `cargo build --release -p farol` (./bench/run does)", farol.display());
    }
    Ok(farol)
}

fn ingest(rows: u64, seed: u64, work: Option<PathBuf>, bare: bool, database: Option<&str>) -> Result<()> {
    let farol = farol_binary()?;
    let work = work.unwrap_or_else(|| PathBuf::from("target/bench"));
    let input = generated(&work, rows, seed)?;
    let size = std::fs::metadata(&input)?.len();
    let mut schema = bench_schema(database)?;
    let dir = fresh_store(&farol, &work, bare, schema.as_ref())?;
    eprintln!("ingesting {} ({:.0} MB)", input.display(), size as f64 / 1e6);
    let (elapsed, peak_kib, stdout) = farol_ingest(&farol, &dir, &input)?;
    let db = match &mut schema {
        Some(schema) => schema.size()?,
        None => std::fs::metadata(dir.join("data/farol.db"))?.len(),
    };
    println!("{}", stdout.trim());
    println!();
    println!("| rows | input | wall time | events/s end to end | peak RSS | store size |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {:.0} MB | {:.1} s | {:.0} | {:.0} MB | {:.0} MB |",
        rows,
        size as f64 / 1e6,
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        db as f64 / 1e6
    );
    Ok(())
}

/// A generated sinkhole report of `rows` rows in `work`, made once and then reused.
fn generated(work: &Path, rows: u64, seed: u64) -> Result<PathBuf> {
    std::fs::create_dir_all(work)?;
    let input = work.join(format!("2024-06-01-event4_sinkhole-{rows}-{seed}.csv"));
    if !input.exists() {
        eprintln!("generating {} rows into {}", rows, input.display());
        let tmp = input.with_extension("tmp");
        let mut f = BufWriter::new(std::fs::File::create(&tmp)?);
        farol_synth::sinkhole_csv(&mut f, rows, seed, Timestamp::parse("2024-06-01").context("date")?)?;
        f.flush()?;
        drop(f);
        std::fs::rename(&tmp, &input)?;
    }
    Ok(input)
}

/// A new farol directory `work/store` with the example sinkhole feed, and unless `bare`, IP data
/// and organizations; its store in `schema` when one is given.
fn fresh_store(farol: &Path, work: &Path, bare: bool, schema: Option<&PostgresSchema>) -> Result<PathBuf> {
    let dir = work.join("store");
    new_dir(farol, &dir, schema)?;
    if !bare {
        constituency(farol, &dir)?;
    }
    Ok(dir)
}

/// A new farol directory at `dir` with the example sinkhole feed, its store in `schema` when
/// given.
fn new_dir(farol: &Path, dir: &Path, schema: Option<&PostgresSchema>) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let status = Command::new(farol).args(["init", "--center", "BENCH"]).arg(dir).stdout(Stdio::null()).status()?;
    if !status.success() {
        bail!("farol init failed");
    }
    if let Some(schema) = schema {
        let store = format!("url = \"{}\"", schema.url);
        let toml = std::fs::read_to_string(dir.join("farol.toml"))?.replace("path = \"data/farol.db\"", &store);
        std::fs::write(dir.join("farol.toml"), toml)?;
        // The center's organization, in the new store.
        let status = Command::new(farol).arg("-d").arg(dir).arg("migrate").stdout(Stdio::null()).status()?;
        if !status.success() {
            bail!("farol migrate failed");
        }
    }
    let feeds = Path::new("examples/feeds/example-sinkhole.toml");
    std::fs::copy(feeds, dir.join("feeds.d/example-sinkhole.toml")).context("run from the repository root")?;
    Ok(())
}

/// `farol ingest` of `input` into `dir`: wall time, peak RSS in KiB and what it printed.
fn farol_ingest(farol: &Path, dir: &Path, input: &Path) -> Result<(Duration, u64, String)> {
    let mut ingest = Command::new(farol);
    ingest.arg("-d").arg(dir).args(["--quiet", "ingest", "--feed", "example-sinkhole"]).arg(input);
    let (elapsed, peak, output) = measured(&mut ingest)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("farol ingest failed: {stdout}");
    }
    Ok((elapsed, peak, stdout))
}

/// Runs a command to its end: wall time, peak RSS in KiB and its output.
fn measured(command: &mut Command) -> Result<(Duration, u64, std::process::Output)> {
    let started = Instant::now();
    let child = command.stdout(Stdio::piped()).spawn()?;
    let peak = watch_peak_rss(child.id());
    let output = child.wait_with_output()?;
    Ok((started.elapsed(), peak.join().unwrap_or(0), output))
}

/// Polls the child's peak resident set (VmHWM) until it exits; returns the last value in KiB.
fn watch_peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut peak = 0;
        while let Ok(status) = std::fs::read_to_string(&path) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            match hwm {
                Some(kib) => peak = peak.max(kib),
                // A zombie has no memory lines left: the process is done.
                None => break,
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    })
}
