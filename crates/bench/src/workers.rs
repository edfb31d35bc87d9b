//! Ingest by workers: reports queued with `farol ingest --queue`, then processed by one or more
//! `farol worker --once` processes on the embedded store or PostgreSQL.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Result, bail};

pub(crate) fn run(
    rows: u64,
    reports: u64,
    workers: &[usize],
    work: Option<PathBuf>,
    database: Option<&str>,
) -> Result<()> {
    let farol = crate::farol_binary()?;
    let work = work.unwrap_or_else(|| PathBuf::from("target/bench"));
    let per_report = rows / reports.max(1);
    let inputs: Vec<PathBuf> =
        (1..=reports).map(|seed| crate::generated(&work, per_report, seed)).collect::<Result<_>>()?;
    println!("| workers | reports × rows | wall time | events/s | peak RSS of a worker |");
    println!("|---:|---:|---:|---:|---:|");
    for &n in workers {
        let schema = crate::bench_schema(database)?;
        let dir = crate::fresh_store(&farol, &work, false, schema.as_ref())?;
        let queued = Command::new(&farol)
            .arg("-d")
            .arg(&dir)
            .args(["--quiet", "ingest", "--queue", "--feed", "example-sinkhole"])
            .args(&inputs)
            .stdout(Stdio::null())
            .status()?;
        if !queued.success() {
            bail!("farol ingest --queue failed");
        }
        eprintln!("{n} worker(s): {reports} reports of {per_report} rows");
        let started = Instant::now();
        let running: Vec<_> = (0..n)
            .map(|_| {
                let mut worker = Command::new(&farol);
                worker.arg("-d").arg(&dir).args(["--quiet", "worker", "--once"]);
                std::thread::spawn(move || crate::measured(&mut worker))
            })
            .collect();
        let mut peak = 0;
        for r in running {
            let (_, p, output) = r.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))??;
            if !output.status.success() {
                bail!("farol worker failed: {}", String::from_utf8_lossy(&output.stdout));
            }
            peak = peak.max(p);
        }
        let elapsed = started.elapsed();
        println!(
            "| {n} | {reports} × {per_report} | {:.1} s | {:.0} | {:.0} MB |",
            elapsed.as_secs_f64(),
            (per_report * reports) as f64 / elapsed.as_secs_f64(),
            peak as f64 / 1024.0
        );
    }
    Ok(())
}
