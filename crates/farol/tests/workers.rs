//! Many workers: three `farol worker` processes, killed at random with SIGKILL and started again
//! while reports keep arriving, complete every report; no event is lost or stored twice.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use farol_model::{ReportStatus, Timestamp};
use farol_store::testing::PostgresSchema;
use farol_store::{EventQuery, Location, Store, Visibility};

mod common;

use common::{Dir, command, init, init_on_postgres};

fn ingest(dir: &Dir, file: &std::path::Path, queue: bool) {
    let mut c = command(dir, &["--quiet", "ingest", "--feed", "example-sinkhole"]);
    c.arg(file);
    if queue {
        c.arg("--queue");
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Events stored, counted the slow way: every row, not the reports' summaries.
fn events(store: &dyn Store) -> usize {
    store.events(&EventQuery { visible: Visibility::All, limit: usize::MAX, ..Default::default() }).unwrap().len()
}

/// A farol directory's store, as its farol.toml names it.
fn store(dir: &Dir, schema: Option<&PostgresSchema>) -> std::sync::Arc<dyn Store> {
    match schema {
        Some(schema) => Location::Postgres(schema.url.clone()),
        None => Location::Sqlite(dir.path.join("data/farol.db")),
    }
    .open()
    .unwrap()
}

fn worker(dir: &Dir) -> Child {
    command(dir, &["--quiet", "worker", "--lease", "2", "--poll", "0.05"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn killed_workers_complete_every_report_without_loss_or_duplicates() {
    killed_workers(None, 100_000);
}

/// On PostgreSQL, as workers on several machines would share it: they claim reports with
/// `FOR UPDATE SKIP LOCKED` and write with COPY.
#[test]
fn killed_workers_on_postgresql_complete_every_report_without_loss_or_duplicates() {
    if let Some(schema) = PostgresSchema::new() {
        killed_workers(Some(&schema), 50_000);
    }
}

fn killed_workers(schema: Option<&PostgresSchema>, rows: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let files = 10u64;
    let day = Timestamp::parse("2024-06-01").unwrap();
    let files: Vec<PathBuf> = (0..files)
        .map(|i| {
            let path = tmp.path().join(format!("2024-06-{:02}-event4_sinkhole-{i}.csv", i + 1));
            let start = day.add_secs(86_400 * i as i64).unwrap();
            farol_synth::sinkhole_csv(&mut std::fs::File::create(&path).unwrap(), rows, i + 1, start).unwrap();
            path
        })
        .collect();

    // What one process stores, uninterrupted.
    let clean = init();
    for f in &files {
        ingest(&clean, f, false);
    }
    let expected = events(&*store(&clean, None));

    let dir = std::sync::Arc::new(schema.map_or_else(init, init_on_postgres));
    let store = store(&dir, schema);
    let mut workers: Vec<Child> = (0..3).map(|_| worker(&dir)).collect();
    let feeder = {
        let (dir, files) = (std::sync::Arc::clone(&dir), files.clone());
        std::thread::spawn(move || {
            for f in &files {
                ingest(&dir, f, true);
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };

    // Every 0.1 to 0.6 seconds, kill (SIGKILL) a worker that holds a report, or now and then an
    // idle one, and start a new one; until the reports are in and several kills have landed
    // while the victim was processing.
    let (mut kills, mut holding, mut rng) = (0, 0, 0x2545_f491_u64);
    let started = Instant::now();
    while !feeder.is_finished() || holding < 3 {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(100 + (rng >> 33) % 500));
        let reports = store.reports(None, 100).unwrap();
        let holds = |w: &Child| {
            let pid = format!(":{}:", w.id());
            reports
                .iter()
                .any(|r| r.status == ReportStatus::Processing && r.holder.as_ref().is_some_and(|h| h.contains(&pid)))
        };
        let busy: Vec<usize> = (0..workers.len()).filter(|&i| holds(&workers[i])).collect();
        let victim = match busy.len() {
            0 if (rng >> 40) % 3 == 0 => ((rng >> 20) % 3) as usize,
            0 => {
                if feeder.is_finished() && reports.iter().all(|r| r.status == ReportStatus::Done) {
                    break; // nothing left to interrupt
                }
                continue;
            }
            n => busy[((rng >> 20) as usize) % n],
        };
        workers[victim].kill().unwrap();
        workers[victim].wait().unwrap();
        workers[victim] = worker(&dir);
        kills += 1;
        holding += usize::from(!busy.is_empty());
    }
    feeder.join().unwrap();
    assert!(holding >= 3, "kills while a worker held a report: {holding} of {kills}");

    // The survivors and the new workers finish everything.
    loop {
        let reports = store.reports(None, 100).unwrap();
        if reports.len() == files.len() && reports.iter().all(|r| r.status == ReportStatus::Done) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "not finished: {reports:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let reports = store.reports(None, 100).unwrap();
    for r in &reports {
        assert_eq!(r.counts.events + r.counts.duplicates, rows, "{r:?}");
    }
    assert_eq!(events(&*store), expected, "nothing lost, nothing twice");
    assert_eq!(reports.iter().map(|r| r.counts.events).sum::<u64>() as usize, expected);

    // SIGTERM: a worker finishes what it holds and exits cleanly.
    for mut w in workers {
        let term = std::process::Command::new("kill").args(["-TERM", &w.id().to_string()]).status().unwrap();
        assert!(term.success());
        let status = w.wait().unwrap();
        assert!(status.success(), "{status}");
        let mut out = String::new();
        std::io::Read::read_to_string(w.stdout.as_mut().unwrap(), &mut out).unwrap();
        assert!(out.contains("report(s) processed"), "{out}");
    }
    eprintln!("{kills} kills, {holding} while the worker held a report");
}
