//! Crash safety: `farol ingest` killed with SIGKILL at any moment loses no acknowledged report and
//! duplicates no event; running the same command again completes the report.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use farol_model::{ReportStatus, Timestamp};
use farol_store::{SqliteStore, Store};

fn farol(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_farol"));
    c.arg("-d").arg(dir).arg("--quiet");
    c
}

fn init(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_farol")).arg("init").arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let feed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/feeds/example-sinkhole.toml");
    std::fs::copy(feed, dir.join("feeds.d/example-sinkhole.toml")).unwrap();
}

fn ingest(dir: &Path, file: &Path) -> std::process::Output {
    farol(dir).args(["ingest", "--feed", "example-sinkhole"]).arg(file).output().unwrap()
}

fn store(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("data/farol.db")).unwrap()
}

/// Events stored, counted the slow way: every row, not the report's summary.
fn events(dir: &Path) -> usize {
    store(dir)
        .events(&farol_store::EventQuery {
            visible: farol_store::Visibility::All,
            limit: usize::MAX,
            ..Default::default()
        })
        .unwrap()
        .len()
}

#[test]
fn killed_ingests_complete_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("2024-06-02-event4_sinkhole-big.csv");
    let small = tmp.path().join("2024-06-01-event4_sinkhole-small.csv");
    let day = Timestamp::parse("2024-06-01").unwrap();
    farol_synth::sinkhole_csv(&mut std::fs::File::create(&small).unwrap(), 2_000, 1, day).unwrap();
    let rows = 300_000;
    farol_synth::sinkhole_csv(&mut std::fs::File::create(&big).unwrap(), rows, 2, day.add_secs(86_400).unwrap())
        .unwrap();

    // What an uninterrupted run stores.
    let clean = tmp.path().join("clean");
    init(&clean);
    assert!(ingest(&clean, &big).status.success());
    let expected = events(&clean);
    assert!(expected > 100_000, "the generator repeats hosts but not connections: {expected}");

    let dir = tmp.path().join("crashy");
    init(&dir);
    assert!(ingest(&dir, &small).status.success(), "an acknowledged report");
    let acknowledged = events(&dir);
    let first = store(&dir).reports(None, 1).unwrap()[0].id;

    // Kill while archiving or before, then at several points of processing.
    let mut killed_while_processing = 0;
    for (wait_for_processing, delay) in [(false, 20u64), (false, 80), (true, 0), (true, 150), (true, 500)] {
        let mut child = farol(&dir)
            .args(["ingest", "--feed", "example-sinkhole"])
            .arg(&big)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while wait_for_processing && started.elapsed() < Duration::from_secs(60) {
            let processing =
                store(&dir).unfinished_reports().unwrap().iter().any(|r| r.status == ReportStatus::Processing);
            if processing || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let s = store(&dir);
        if s.unfinished_reports().unwrap().iter().any(|r| r.status == ReportStatus::Processing) {
            killed_while_processing += 1;
        }
        // The acknowledged report is untouched.
        assert_eq!(s.report(first).unwrap().status, ReportStatus::Done);
        let query = farol_store::EventQuery {
            visible: farol_store::Visibility::All,
            report: Some(first),
            limit: usize::MAX,
            ..Default::default()
        };
        assert_eq!(s.events(&query).unwrap().len(), acknowledged);
    }
    assert!(killed_while_processing >= 2, "kills must land while the report is being processed");

    // Running the same command again finishes the interrupted report.
    let out = ingest(&dir, &big);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reports = store(&dir).reports(None, 10).unwrap();
    assert_eq!(reports.len(), 2, "one report per distinct file: {reports:?}");
    assert!(reports.iter().all(|r| r.status == ReportStatus::Done), "{reports:?}");
    assert_eq!(events(&dir), acknowledged + expected, "nothing lost, nothing twice");
    let big_report = reports.iter().find(|r| r.name.as_deref().is_some_and(|n| n.contains("big"))).unwrap();
    assert_eq!(big_report.counts.events + big_report.counts.duplicates, rows);
}
