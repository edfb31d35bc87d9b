//! Live streams: `farol stream --once` publishing a report's events to the organizations'
//! exchanges of a RabbitMQ, each organization with a durable queue, with publisher confirms.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use amqprs::channel::{ExchangeDeleteArguments, QueueDeleteArguments};
use amqprs::connection::Connection;
use anyhow::{Context as _, Result, bail};

pub(crate) fn run(rows: u64, broker: &str, work: Option<PathBuf>) -> Result<()> {
    let farol = crate::farol_binary()?;
    let work = work.unwrap_or_else(|| PathBuf::from("target/bench"));
    let input = crate::generated(&work, rows, 1)?;
    let dir = crate::fresh_store(&farol, &work, false, None)?;
    let prefix = format!("farol-bench-{}.", std::process::id());
    let toml = dir.join("farol.toml");
    let mut config = std::fs::read_to_string(&toml)?;
    config += &format!("\n[streams]\nurl = \"{broker}\"\nexchange_prefix = \"{prefix}\"\nqueues = true\n");
    std::fs::write(&toml, config)?;
    let farol_in = |args: &[&str]| -> Result<String> {
        let out =
            Command::new(&farol).arg("-d").arg(&dir).arg("--quiet").args(args).stderr(Stdio::inherit()).output()?;
        if !out.status.success() {
            bail!("farol {} failed", args.join(" "));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // The streams start (exchanges and queues declared), then the report arrives.
    farol_in(&["stream", "--once"])?;
    farol_in(&["ingest", "--feed", "example-sinkhole", input.to_str().context("a UTF-8 path")?])?;
    eprintln!("publishing {rows} events to {broker}");
    let mut stream = Command::new(&farol);
    stream.arg("-d").arg(&dir).args(["--quiet", "stream", "--once"]);
    let measured = crate::measured(&mut stream);
    let orgs = cleanup(broker, &prefix, &farol_in(&["org", "list", "--format", "json"])?);
    let (elapsed, peak, output) = measured?;
    let said = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("farol stream failed: {said}");
    }
    let published: u64 = said
        .lines()
        .find_map(|l| l.split_once(" event(s) published").map(|(n, _)| n.trim().parse()))
        .context("farol stream said nothing of what it published")??;
    println!("| events published | organizations | wall time | events/s | peak RSS |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {published} | {} | {:.1} s | {:.0} | {:.0} MB |",
        orgs?,
        elapsed.as_secs_f64(),
        published as f64 / elapsed.as_secs_f64(),
        peak as f64 / 1024.0
    );
    Ok(())
}

/// Deletes the benchmark's queues and exchanges; returns how many organizations had them.
fn cleanup(broker: &str, prefix: &str, orgs: &str) -> Result<usize> {
    let orgs: Vec<serde_json::Value> = serde_json::from_str(orgs)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _inside = runtime.enter();
    runtime.block_on(async {
        let args = farol_collect::connection_arguments(broker)?;
        let connection = Connection::open(&args).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let channel = connection.open_channel(None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        for org in &orgs {
            let name = format!("{prefix}{}", org["id"]);
            channel.queue_delete(QueueDeleteArguments::new(&name)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            channel.exchange_delete(ExchangeDeleteArguments::new(&name)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let _ = channel.close().await;
        let _ = connection.close().await;
        Ok(orgs.len())
    })
}
