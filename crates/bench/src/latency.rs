//! `farol-bench latency`: the portal's pages under a steady load from wrk, on a store of N
//! events spread over the 7 days before today, enriched and routed like the ingest benchmark's.

use std::io::{BufWriter, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use farol_model::Timestamp;

const DAYS: i64 = 7;
const PASSWORD: &str = "a benchmark passphrase";

pub(crate) fn run(rows: u64, rate: u32, seconds: u32, work: Option<PathBuf>, database: Option<&str>) -> Result<()> {
    let farol = super::farol_binary()?;
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed: `apt-get install wrk` (Debian) or see https://github.com/wg/wrk");
    }
    let work = work.unwrap_or_else(|| PathBuf::from("target/bench"));
    // A PostgreSQL store is built anew each run (its schema goes with the run); a SQLite one
    // once a day.
    let schema = super::bench_schema(database)?;
    let store = if schema.is_some() { "postgresql" } else { "sqlite" };
    let dir = work.join(format!("latency-{rows}-{store}"));
    let today = Timestamp::now().micros().div_euclid(86_400_000_000);
    let ready = dir.join(format!("ready-{today}"));
    let org = biggest_network()?;
    if schema.is_some() || !ready.exists() {
        build(&farol, &work, &dir, rows, today, schema.as_ref())?;
        for (email, org, role) in
            [("analyst@bench.example", None, "analyst"), ("isp@bench.example", Some(&org), "org-member")]
        {
            let mut cmd = Command::new(&farol);
            cmd.arg("-d").arg(&dir).args(["user", "add", email, "--role", role, "--password-stdin"]);
            if let Some(org) = org {
                cmd.args(["--org", org]);
            }
            let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).spawn()?;
            child.stdin.take().context("stdin")?.write_all(PASSWORD.as_bytes())?;
            if !child.wait()?.success() {
                bail!("farol user add {email} failed");
            }
        }
        std::fs::write(&ready, "")?;
    }
    let token = |email: &str| -> Result<String> {
        let out = Command::new(&farol).arg("-d").arg(&dir).args(["user", "token", email]).output()?;
        if !out.status.success() {
            bail!("farol user token {email} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let (analyst, isp) = (token("analyst@bench.example")?, token("isp@bench.example")?);

    let addr: SocketAddr = "127.0.0.1:18080".parse()?;
    let server = Server::start(&farol, &dir, addr)?;
    let pages = [
        ("organization user: events, last 7 days", "/events?since=7d", &isp),
        ("organization user: dashboard", "/", &isp),
        ("analyst: dashboard", "/", &analyst),
    ];
    let mut results = Vec::new();
    for (name, path, token) in pages {
        eprintln!("{name}: {path} at {rate} requests/s for {seconds} s");
        // The first request of a dashboard counts its figures; the load measures the pages
        // people get from then on (and, over a minute, one recount in the background).
        let started = Instant::now();
        get(addr, path, token)?;
        let first = started.elapsed();
        results.push((name, path, first, wrk(addr, path, token, rate, seconds)?));
    }
    drop(server);

    println!(
        "{store} store: {rows} events over the {DAYS} days before today; the organization user's organization is {org}"
    );
    println!();
    println!("| page | path | first request | requests/s | p50 | p90 | p99 | max | wrk timeouts |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, path, first, w) in results {
        println!(
            "| {name} | `{path}` | {:.0} ms | {:.0} | {} | {} | {} | {} | {} |",
            first.as_secs_f64() * 1e3,
            w.rate,
            w.p50,
            w.p90,
            w.p99,
            w.max,
            w.timeouts
        );
    }
    Ok(())
}

/// The organization of the largest Portuguese range of the sample: the routing benchmark names
/// it "Network N", and it receives the most events (addresses are drawn by range size).
fn biggest_network() -> Result<String> {
    let sample =
        std::fs::read_to_string("data/ipdata-sample/asn-ipv4-pt.csv").context("run from the repository root")?;
    let size = |line: &str| -> Option<u32> {
        let mut cols = line.splitn(3, ',');
        let first: std::net::Ipv4Addr = cols.next()?.parse().ok()?;
        let last: std::net::Ipv4Addr = cols.next()?.parse().ok()?;
        Some(u32::from(last) - u32::from(first))
    };
    let (i, _) = sample.lines().enumerate().max_by_key(|(_, l)| size(l).unwrap_or(0)).context("empty sample")?;
    Ok(format!("Network {i}"))
}

/// A farol directory with the benchmark constituency and `rows` events over the 7 days before
/// `today` (days since the epoch).
fn build(
    farol: &Path,
    work: &Path,
    dir: &Path,
    rows: u64,
    today: i64,
    schema: Option<&farol_store::testing::PostgresSchema>,
) -> Result<()> {
    super::new_dir(farol, dir, schema)?;
    super::constituency(farol, dir)?;
    let inputs = work.join("latency-input");
    std::fs::create_dir_all(&inputs)?;
    let mut files = Vec::new();
    for d in today - DAYS..today {
        let day = Timestamp::from_micros(d * 86_400_000_000).context("day")?;
        let name = format!("{}-event4_sinkhole-pt.csv", &day.to_rfc3339()[..10]);
        let path = inputs.join(name);
        eprintln!("generating {} rows into {}", rows / DAYS as u64, path.display());
        let mut f = BufWriter::new(std::fs::File::create(&path)?);
        farol_synth::sinkhole_csv(&mut f, rows / DAYS as u64, d as u64, day)?;
        f.flush()?;
        files.push(path);
    }
    eprintln!("ingesting {} files", files.len());
    let status = Command::new(farol)
        .arg("-d")
        .arg(dir)
        .args(["--quiet", "ingest", "--feed", "example-sinkhole"])
        .args(&files)
        .status()?;
    if !status.success() {
        bail!("farol ingest failed");
    }
    for f in files {
        std::fs::remove_file(f)?;
    }
    Ok(())
}

/// `farol serve`, stopped when dropped.
struct Server(Child);

impl Server {
    fn start(farol: &Path, dir: &Path, addr: SocketAddr) -> Result<Server> {
        let child = Command::new(farol)
            .arg("-d")
            .arg(dir)
            .args(["serve", "--listen", &addr.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        let server = Server(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("farol serve did not start on {addr}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request, read to the end; fails unless the answer is 200.
fn get(addr: SocketAddr, path: &str, token: &str) -> Result<()> {
    let mut s = TcpStream::connect(addr)?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", answer.lines().next().unwrap_or_default());
    }
    Ok(())
}

/// What wrk measured.
struct Measured {
    rate: f64,
    p50: String,
    p90: String,
    p99: String,
    max: String,
    timeouts: u32,
}

/// wrk with as many connections as it takes, each waiting between requests so that together
/// they send `rate` requests a second.
fn wrk(addr: SocketAddr, path: &str, token: &str, rate: u32, seconds: u32) -> Result<Measured> {
    const CONNECTIONS: u32 = 20;
    let script = std::env::temp_dir().join(format!("farol-bench-pace-{}.lua", std::process::id()));
    std::fs::write(&script, format!("function delay()\n  return {}\nend\n", CONNECTIONS * 1000 / rate.max(1)))?;
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", &CONNECTIONS.to_string(), "-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://{addr}{path}"))
        .output()?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    // wrk counts the requests its paced connections still wait to send when the time is up as
    // timeouts (one per connection at most): reported, not fatal. Anything else is.
    let timeouts = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors: connect 0, read 0, write 0, timeout "))
        .map_or(Ok(0), str::parse::<u32>)?;
    if !out.status.success() || text.contains("Non-2xx") || (text.contains("Socket errors") && timeouts == 0) {
        bail!("wrk reported errors:\n{text}");
    }
    let after = |label: &str| -> Result<String> {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(label)).with_context(|| format!("{label} in\n{text}"))?;
        Ok(line.split_whitespace().nth(1).unwrap_or_default().to_owned())
    };
    let max = text
        .lines()
        .find(|l| l.trim_start().starts_with("Latency"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or_default()
        .to_owned();
    Ok(Measured {
        rate: after("Requests/sec:")?.parse().context("Requests/sec")?,
        p50: after("50%")?,
        p90: after("90%")?,
        p99: after("99%")?,
        max,
        timeouts,
    })
}
