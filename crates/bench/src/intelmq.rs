//! Side by side with IntelMQ: IntelMQ's own Shadowserver parser bot, installed from PyPI into a
//! virtualenv, and `farol ingest`, on the same generated Shadowserver report.
//!
//! IntelMQ runs in its library mode (`bench/intelmq_shadowserver.py`): the parser bot alone, its
//! events serialized to JSON as a pipeline would before Redis, then dropped; no collector, no
//! Redis, no other bot. farol does the whole ingest: archive, parse, validate, hash, store.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// Rows per report in the chunked run, as IntelMQ's file collector splits a big file.
const CHUNK: u64 = 10_000;

pub(crate) fn run(rows: u64, version: &str, work: Option<PathBuf>) -> Result<()> {
    let farol = crate::farol_binary()?;
    let work = work.unwrap_or_else(|| PathBuf::from("target/bench"));
    let input = crate::generated(&work, rows, 1)?;
    let python = virtualenv(&work, version)?;
    let root = intelmq_root(&work)?;

    let mut results = Vec::new();
    for (label, chunk) in [
        ("IntelMQ, the report whole (as its Shadowserver collectors deliver it)", 0),
        ("IntelMQ, reports of 10,000 rows", CHUNK),
    ] {
        eprintln!("{label}: {} rows", rows);
        let mut bot = Command::new(&python);
        bot.arg("bench/intelmq_shadowserver.py").arg(&input).arg(chunk.to_string()).env("INTELMQ_ROOT_DIR", &root);
        let (elapsed, peak, output) = crate::measured(&mut bot)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("the IntelMQ parser failed: {stdout}");
        }
        let line: serde_json::Value = serde_json::from_str(stdout.trim()).context("the IntelMQ driver's output")?;
        let (events, errors) = (line["events"].as_u64().unwrap_or(0), line["errors"].as_u64().unwrap_or(0));
        if events != rows || errors != 0 {
            bail!("IntelMQ parsed {events} events with {errors} errors from {rows} rows");
        }
        results.push((label.to_owned(), elapsed, peak));
    }

    eprintln!("farol ingest: {rows} rows");
    let dir = crate::fresh_store(&farol, &work, true, None)?;
    let (elapsed, peak, stdout) = crate::farol_ingest(&farol, &dir, &input)?;
    if !stdout.contains(" 0 rejected") {
        bail!("farol rejected rows that IntelMQ parsed: {stdout}");
    }
    let farol_rate = rate(rows, elapsed);

    println!(
        "| {rows} rows of event4_sinkhole | wall time | events/s | peak RSS | farol's events/s ÷ | ÷ farol's RSS |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| farol ingest (archive, parse, store) | {:.2} s | {:.0} | {:.0} MB | | |",
        elapsed.as_secs_f64(),
        farol_rate,
        mib(peak)
    );
    for (label, e, p) in &results {
        println!(
            "| {label} | {:.2} s | {:.0} | {:.0} MB | {:.0}× | {:.1}× |",
            e.as_secs_f64(),
            rate(rows, *e),
            mib(*p),
            farol_rate / rate(rows, *e),
            *p as f64 / peak.max(1) as f64
        );
    }
    Ok(())
}

fn rate(rows: u64, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A virtualenv with IntelMQ `version` from PyPI, made once; its python.
fn virtualenv(work: &Path, version: &str) -> Result<PathBuf> {
    let venv = work.join(format!("intelmq-{version}"));
    let python = venv.join("bin/python");
    let ready = python.exists()
        && Command::new(&python).args(["-c", "import intelmq.bots.parsers.shadowserver.parser"]).status()?.success();
    if !ready {
        eprintln!("installing IntelMQ {version} from PyPI into {}", venv.display());
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().context("python3 is needed")?;
        let installed = made.success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", &format!("intelmq=={version}")])
                .status()?
                .success();
        if !installed {
            bail!("cannot install IntelMQ {version} into {}", venv.display());
        }
    }
    Ok(std::path::absolute(python)?)
}

/// IntelMQ's directory tree (INTELMQ_ROOT_DIR), with the Shadowserver schema farol ships, in
/// the place where IntelMQ keeps the one it downloads.
fn intelmq_root(work: &Path) -> Result<PathBuf> {
    let root = std::path::absolute(work.join("intelmq-root"))?;
    let bots = root.join("var/lib/bots");
    std::fs::create_dir_all(&bots)?;
    std::fs::create_dir_all(root.join("var/log"))?;
    std::fs::copy("crates/feeds/schema/shadowserver.json", bots.join("shadowserver-schema.json"))
        .context("run from the repository root")?;
    Ok(root)
}
