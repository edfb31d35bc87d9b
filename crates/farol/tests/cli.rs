//! The `farol` command as a user runs it: bad input, exit codes, output formats, reprocessing.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

mod common;

use common::{command, examples, farol, init, stderr, stdout, write};

#[test]
fn an_empty_file_is_reported() {
    let d = init();
    let f = write(&d, "empty.jsonl", b"");
    let o = farol(&d, &["ingest", "--feed", "partner-intelmq", &f]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stdout(&o).contains("ended with an error: the report is empty (0 bytes)"), "{}", stdout(&o));
}

#[test]
fn a_truncated_gzip_keeps_what_came_before_the_cut() {
    let d = init();
    let text = std::fs::read(examples().join("2024-06-01-event4_sinkhole-example.csv")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let gz = gz.finish().unwrap();
    let f = write(&d, "2024-06-01-event4_sinkhole-cut.csv.gz", &gz[..gz.len() * 3 / 4]);
    let o = farol(&d, &["ingest", "--feed", "example-sinkhole", &f]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stdout(&o).contains("the gzip stream is cut short"), "{}", stdout(&o));
    let events = farol(&d, &["events", "--limit", "0", "--format", "intelmq"]);
    let n = stdout(&events).lines().count();
    assert!(n > 100 && n < 300, "the records before the cut are kept: {n}");
}

#[test]
fn invalid_utf8_and_wrong_column_counts_are_rejects() {
    let d = init();
    let mut csv = std::fs::read(examples().join("2024-06-01-event4_sinkhole-example.csv")).unwrap();
    csv.extend_from_slice(b"2024-06-01 23:59:59,tcp,2.80.1.9,1234,3243,PT,LISBOA,LISB\xffN,,0,,,,,high,198.51.100.20,80,64496,US,,,sinkhole.example.net,0,,SinkholeExample,mirai,mirai,,http,,,,\n");
    let f = write(&d, "2024-06-01-event4_sinkhole-x.csv", &csv);
    let o = farol(&d, &["ingest", "--feed", "example-sinkhole", &f]);
    assert!(o.status.success(), "rejects are not a failure: {}", stderr(&o));
    assert!(stdout(&o).contains("300 new events"), "{}", stdout(&o));
    assert!(stdout(&o).contains("3 rejected"), "{}", stdout(&o));
    let show = stdout(&farol(&d, &["reports", "show", "1"]));
    assert!(show.contains("line 303  expected 33 columns (as in the header), found 6"), "{show}");
    assert!(show.contains(r#"line 304  column "src_city": invalid UTF-8 at byte 4 of the value"#), "{show}");
}

#[test]
fn a_one_gigabyte_line_is_one_reject_with_flat_memory() {
    let d = init();
    let mut child = Command::new(env!("CARGO_BIN_EXE_farol"))
        .arg("-d")
        .arg(&d.path)
        .args(["--quiet", "ingest", "--feed", "partner-intelmq", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(br#"{"source.ip": "192.0.2.1", "time.source": "2024-06-01T00:00:00Z"}"#).unwrap();
        stdin.write_all(b"\n{\"comment\": \"").unwrap();
        let block = vec![b'x'; 1 << 20];
        for _ in 0..1024 {
            stdin.write_all(&block).unwrap();
        }
        stdin.write_all(b"\"}\n{\"source.ip\": \"192.0.2.2\", \"time.source\": \"2024-06-01T00:00:00Z\"}\n").unwrap();
    });
    let pid = child.id();
    let peak = std::thread::spawn(move || {
        let mut peak = 0u64;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                break;
            };
            peak = peak.max(kib);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        peak
    });
    writer.join().unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 records: 2 new events, 0 duplicates, 0 dropped, 1 rejected"), "{}", stdout(&o));
    let show = stdout(&farol(&d, &["reports", "show", "1"]));
    assert!(show.contains("line 2  record longer than the limit (1073741839 bytes)"), "{show}");
    let peak_mib = peak.join().unwrap() / 1024;
    assert!(peak_mib < 200, "peak RSS {peak_mib} MiB for a 1 GiB line");
}

#[test]
fn exit_codes_say_what_went_wrong() {
    let d = init();
    let f = write(&d, "x.jsonl", b"{}\n");
    let code = |o: Output| o.status.code();
    assert_eq!(code(farol(&d, &["ingest", "--feed", "partner-intelmq", "--format", "xml", &f])), Some(2));
    assert_eq!(code(farol(&d, &["ingest", "--feed", "partner-intelmq", "/nonexistent.jsonl"])), Some(3));
    assert_eq!(code(farol(&d, &["reports", "show", "42"])), Some(3));
    assert_eq!(code(farol(&d, &["events", "--cc", "Portugal"])), Some(2));
    assert_eq!(code(farol(&d, &["events", "--since", "yesterday"])), Some(2));
    let o = Command::new(env!("CARGO_BIN_EXE_farol")).args(["-d", "/nonexistent/farol", "events"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("run `farol init /nonexistent/farol`"), "{}", stderr(&o));
    let csv = write(&d, "x.csv", b"a,b\n1,2\n");
    let o = farol(&d, &["ingest", "--feed", "undeclared", "--format", "csv", &csv]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("feed undeclared is not declared"), "{}", stderr(&o));
    let o = farol(&d, &["ingest", "--feed", "undeclared", &csv]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot tell the format"), "{}", stderr(&o));
}

/// `farol ... | head`: when the reader of the output goes away, farol stops quietly, whether it
/// was printing line by line or writing through a buffer.
#[test]
fn a_reader_that_goes_away_stops_farol_quietly() {
    let d = init();
    let example = examples().join("2024-06-01-event4_sinkhole-example.csv");
    assert!(farol(&d, &["ingest", "--feed", "example-sinkhole", example.to_str().unwrap()]).status.success());
    for args in [&["exercise", "list"][..], &["events", "--limit", "0"], &["org", "list"]] {
        let mut child = command(&d, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success() && o.stderr.is_empty(), "farol {args:?}: {}", stderr(&o));
    }
}

#[test]
fn outputs_and_reprocessing() {
    let d = init();
    let sinkhole = examples().join("2024-06-01-event4_sinkhole-example.csv");
    let sinkhole = sinkhole.to_str().unwrap();
    assert!(farol(&d, &["ingest", "--feed", "example-sinkhole", sinkhole]).status.success());
    let again = farol(&d, &["ingest", "--feed", "example-sinkhole", sinkhole]);
    assert!(stdout(&again).contains("already ingested"), "{}", stdout(&again));

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&farol(&d, &["events", "--limit", "5", "--format", "json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 5);
    assert_eq!(json[0]["event"]["classification.type"], "infected-system");

    let csv = stdout(&farol(&d, &["events", "--limit", "0", "--format", "csv"]));
    assert!(csv.starts_with("time.source,feed.name,classification.taxonomy,"));
    assert_eq!(csv.lines().count(), 301);

    // IntelMQ output reads back as the same events.
    let intelmq = stdout(&farol(&d, &["events", "--limit", "0", "--format", "intelmq"]));
    let f = write(&d, "export.jsonl", intelmq.as_bytes());
    let o = farol(&d, &["ingest", "--feed", "example-sinkhole", "--format", "intelmq", &f]);
    assert!(stdout(&o).contains("300 records: 0 new events, 300 duplicates"), "{}", stdout(&o));

    let before = stdout(&farol(&d, &["events", "--limit", "0", "--format", "intelmq"]));
    let o = farol(&d, &["reprocess", "1"]);
    assert!(stdout(&o).contains("300 new events"), "{}", stdout(&o));
    let after = stdout(&farol(&d, &["events", "--limit", "0", "--format", "intelmq"]));
    let sorted = |s: &str| {
        let mut v: Vec<&str> = s.lines().collect();
        v.sort_unstable();
        v.join("\n")
    };
    assert_eq!(sorted(&before), sorted(&after), "reprocessing rebuilds the same events");

    let page = stdout(&farol(&d, &["events", "--limit", "2"]));
    let cursor = page.lines().last().unwrap().split("--after ").nth(1).unwrap().split(',').next().unwrap().to_owned();
    let next = stdout(&farol(&d, &["events", "--limit", "2", "--after", &cursor]));
    assert_ne!(page.lines().nth(1), next.lines().nth(1), "the cursor moves on");
}

#[test]
fn collect_once_runs_every_collector_and_a_broken_one_stops_no_other() {
    use std::io::{BufRead as _, BufReader};
    let d = init();
    // A real HTTP server on 127.0.0.1 serving the partner's events.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = std::fs::read_to_string(examples().join("partner-events.jsonl")).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let response =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    let local = examples().join("2024-06-01-event4_sinkhole-example.csv");
    let feeds = format!(
        "[feeds.partner-http]\nformat = \"intelmq\"\nschedule = \"1h\"\n[feeds.partner-http.collector]\nkind = \"http\"\n\
         url = \"http://127.0.0.1:{port}/partner-events.jsonl\"\nallow_private = true\n\
         [feeds.broken]\nformat = \"intelmq\"\n[feeds.broken.collector]\nkind = \"http\"\nurl = \"http://127.0.0.1:1/nothing\"\n\
         allow_private = true\nretries = 0\n\
         [feeds.local-file]\nformat = \"shadowserver\"\n[feeds.local-file.collector]\nkind = \"file\"\npath = {local:?}\n"
    );
    let mut toml = std::fs::read_to_string(d.path.join("farol.toml")).unwrap();
    toml.push_str(&feeds);
    std::fs::write(d.path.join("farol.toml"), toml).unwrap();
    let o = farol(&d, &["collect", "--once"]);
    assert!(stderr(&o).contains("broken: downloading http://127.0.0.1:1/nothing failed"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // The others ran anyway: the example sinkhole report is in Shadowserver's event4_sinkhole layout.
    assert!(stdout(&o).contains("(partner-http, partner-events.jsonl"), "{}", stdout(&o));
    assert!(
        stdout(&o)
            .contains("(local-file, 2024-06-01-event4_sinkhole-example.csv, 54.1 KiB): 302 records: 300 new events"),
        "{}",
        stdout(&o)
    );
    let feeds = stdout(&farol(&d, &["feeds"]));
    assert!(feeds.contains("broken"), "{feeds}");
}

/// The restore drill: a backup taken while a big report is being ingested is a working store;
/// restored in place of another, it holds what was acknowledged, and `reprocess --unfinished`
/// completes what was in flight.
#[test]
fn a_backup_taken_while_ingesting_restores_into_a_working_store() {
    let d = init();
    let example = examples().join("2024-06-01-event4_sinkhole-example.csv");
    assert!(farol(&d, &["ingest", "--feed", "example-sinkhole", example.to_str().unwrap()]).status.success());
    let big = d.path.join("2024-06-02-event4_sinkhole-big.csv");
    let day = farol_model::Timestamp::parse("2024-06-02").unwrap();
    farol_synth::sinkhole_csv(&mut std::fs::File::create(&big).unwrap(), 200_000, 7, day).unwrap();
    let mut ingest = command(&d, &["--quiet", "ingest", "--feed", "example-sinkhole", big.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let copy = d.path.join("backup.db");
    let o = farol(&d, &["backup", copy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("integrity checked"), "{}", stdout(&o));
    assert!(ingest.try_wait().unwrap().is_none(), "the backup was taken while the report was being ingested");
    assert!(ingest.wait().unwrap().success());
    let again = farol(&d, &["backup", copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "an existing file is never overwritten");
    assert!(stderr(&again).contains("give a new file"), "{}", stderr(&again));

    // Restore into another directory, as onto a new machine.
    let r = init();
    std::fs::copy(&copy, r.path.join("data/farol.db")).unwrap();
    for stale in ["farol.db-wal", "farol.db-shm"] {
        let _ = std::fs::remove_file(r.path.join("data").join(stale));
    }
    let o = farol(&r, &["reprocess", "--unfinished"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let store = farol_store::SqliteStore::open(&r.path.join("data/farol.db")).unwrap();
    let reports = farol_store::Store::reports(&store, None, 10).unwrap();
    assert!(reports.iter().all(|r| r.status == farol_model::ReportStatus::Done), "{reports:?}");
    let first = reports.iter().find(|r| r.name.as_deref() == Some("2024-06-01-event4_sinkhole-example.csv")).unwrap();
    assert_eq!(first.counts.events, 300, "what was acknowledged before the backup is in it");
    let stored: u64 = reports.iter().map(|r| r.counts.events).sum();
    let events = stdout(&farol(&r, &["events", "--limit", "0", "--format", "intelmq"]));
    assert_eq!(events.lines().count() as u64, stored, "every report's events, once");
}

#[test]
fn farol_database_url_chooses_the_store() {
    let d = init();
    let example = examples().join("2024-06-01-event4_sinkhole-example.csv");
    let ingest = |url: &str| {
        command(&d, &["ingest", "--feed", "example-sinkhole", example.to_str().unwrap()])
            .env("FAROL_DATABASE_URL", url)
            .output()
            .unwrap()
    };
    let migrate = command(&d, &["migrate"]).env("FAROL_DATABASE_URL", "sqlite://elsewhere.db").output().unwrap();
    assert!(stdout(&migrate).contains("migrated from schema version 0 to"), "{}", stdout(&migrate));
    assert!(stdout(&farol(&d, &["migrate"])).contains("up to date"));
    let o = ingest("sqlite://elsewhere.db");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.path.join("elsewhere.db").exists());
    let o = command(&d, &["reports"]).env("FAROL_DATABASE_URL", "sqlite://elsewhere.db").output().unwrap();
    assert!(stdout(&o).contains("done"), "{}", stdout(&o));
    assert!(stdout(&farol(&d, &["reports"])).contains("no reports yet"), "farol.toml's store is another");

    // Nothing listens on port 1: the message names the server, never the password.
    let o = ingest("postgres://farol:s3cret@127.0.0.1:1/farol");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot open the store at postgres://127.0.0.1:1/farol: cannot connect"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cret"), "no secret in messages");
    let toml = d.path.join("farol.toml");
    let config = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        config.replace("path = \"data/farol.db\"", "path = \"data/farol.db\"\nurl = \"sqlite://x.db\""),
    )
    .unwrap();
    let o = farol(&d, &["reports"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("store: give path or url, not both"), "{}", stderr(&o));
    std::fs::write(&toml, config).unwrap();
    let o = ingest("mysql://x");
    assert!(stderr(&o).contains("expected sqlite://PATH"), "{}", stderr(&o));
}
