//! The pipeline end to end, on a temporary store.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;

use farol_model::expert::{Expert, Verdict};
use farol_model::{Record, ReportStatus};
use farol_pipeline::{Feed, Ingested, Input, LEASE, Lease, Quiet, ingest};
use farol_store::{EventQuery, SqliteStore, Store};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("farol.db")).unwrap();
    (dir, store)
}

fn input(bytes: &[u8]) -> Input<'_> {
    Input { reader: Box::new(bytes), name: Some("events.jsonl".into()), size: Some(bytes.len() as u64), queue: false }
}

fn run(store: &SqliteStore, feed: &Feed, bytes: &[u8]) -> Ingested {
    ingest(store, feed, input(bytes), &[], &Quiet).unwrap()
}

fn processed(i: Ingested) -> farol_pipeline::Summary {
    match i {
        Ingested::Processed(s) => s,
        other => panic!("not processed: {other:?}"),
    }
}

const EVENTS: &str = r#"{"source.ip": "192.0.2.1", "time.source": "2024-06-01T10:00:00+00:00", "classification.type": "scanner"}
{"source.ip": "192.0.2.2", "time.source": "2024-06-01T10:00:00+00:00", "classification.type": "scanner"}
{"source.ip": "192.0.2.1", "time.source": "2024-06-01T10:00:00+00:00", "classification.type": "scanner"}
{"source.ip": "not an ip"}
{"classification.type": "scanner", "time.source": "2024-06-01T10:00:00+00:00"}
"#;

#[test]
fn ingests_counts_and_recognizes_the_same_bytes() {
    let (_dir, store) = store();
    let feed = Feed::adhoc("scans", Some("intelmq"));
    let s = processed(run(&store, &feed, EVENTS.as_bytes()));
    let c = s.report.counts;
    assert_eq!((c.records, c.events, c.duplicates, c.rejects), (5, 2, 1, 2));
    assert_eq!(s.report.status, ReportStatus::Done);
    let rejects = store.rejects(s.report.id, 10).unwrap();
    assert_eq!(rejects[0].reason, r#"source.ip: expected an IPv4 or IPv6 address, found "not an ip""#);
    assert_eq!(rejects[0].position.line, Some(4));
    assert!(rejects[1].reason.starts_with("event has nothing to act on"));
    assert_eq!(rejects[1].raw, EVENTS.lines().nth(4).unwrap().as_bytes());

    let events =
        store.events(&EventQuery { visible: farol_store::Visibility::All, limit: 10, ..Default::default() }).unwrap();
    assert_eq!(events.len(), 2);
    let e = &events[0].event;
    assert_eq!(e.feed_name.as_deref(), Some("scans"), "feed.name defaults to the feed");
    assert!(e.time_observation.is_some());
    assert_eq!(e.classification_taxonomy.map(|t| t.as_str()), Some("information-gathering"));

    let Ingested::AlreadyIngested(again) = run(&store, &feed, EVENTS.as_bytes()) else {
        panic!("expected already ingested")
    };
    assert_eq!(again.id, s.report.id);
}

#[test]
fn an_interrupted_report_is_finished_by_the_next_ingest() {
    let (_dir, store) = store();
    let feed = Feed::adhoc("scans", Some("intelmq"));
    let first = processed(run(&store, &feed, EVENTS.as_bytes()));
    // As if the process had died while processing.
    store.begin_processing(first.report.id).unwrap();
    let again = processed(run(&store, &feed, EVENTS.as_bytes()));
    assert_eq!(again.report.id, first.report.id);
    assert_eq!(again.report.counts, first.report.counts);
    assert_eq!(
        store
            .events(&EventQuery { visible: farol_store::Visibility::All, limit: 10, ..Default::default() })
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_queued_report_waits_for_one_worker() {
    let (_dir, store) = store();
    let feed = Feed::adhoc("scans", Some("intelmq"));
    let queued = ingest(&store, &feed, Input { queue: true, ..input(EVENTS.as_bytes()) }, &[], &Quiet).unwrap();
    let Ingested::Queued(report) = queued else { panic!("expected queued: {queued:?}") };
    assert_eq!(report.status, ReportStatus::Stored);
    assert!(
        store
            .events(&EventQuery { visible: farol_store::Visibility::All, limit: 10, ..Default::default() })
            .unwrap()
            .is_empty()
    );

    let lease = Lease::next(&store, LEASE).unwrap().expect("the stored report waits");
    assert_eq!(lease.report().id, report.id);
    assert!(Lease::next(&store, LEASE).unwrap().is_none(), "one worker per report");
    let held = Lease::take(&store, report.id, LEASE).unwrap_err();
    assert!(
        matches!(&held, farol_pipeline::Error::Held { holder, .. } if holder.contains(&std::process::id().to_string())),
        "{held}"
    );
    // The same bytes again, inline: the worker has them.
    assert!(matches!(run(&store, &feed, EVENTS.as_bytes()), Ingested::Queued(r) if r.holder.is_some()));

    let done = farol_pipeline::process(&lease, &feed, &[], &Quiet).unwrap();
    assert_eq!((done.report.status, done.report.counts.events), (ReportStatus::Done, 2));
    drop(lease);
    assert_eq!(store.report(report.id).unwrap().holder, None, "given up");
    assert!(Lease::next(&store, LEASE).unwrap().is_none(), "nothing waits");
    assert!(Lease::take(&store, report.id, LEASE).is_ok(), "reprocessing takes it again");
}

#[test]
fn experts_can_drop_and_reject() {
    struct NoScanners;
    impl Expert for NoScanners {
        fn name(&self) -> &str {
            "no-scanners"
        }
        fn process(&self, record: &mut Record) -> Verdict {
            match record.event.source_ip.map(|ip| ip.to_string()).as_deref() {
                Some("192.0.2.1") => Verdict::Drop,
                Some(_) => Verdict::Reject("not wanted".into()),
                None => Verdict::Keep,
            }
        }
    }
    let (_dir, store) = store();
    let feed = Feed::adhoc("scans", Some("intelmq"));
    let experts: Vec<Box<dyn Expert>> = vec![Box::new(NoScanners)];
    let Ingested::Processed(s) = ingest(&store, &feed, input(EVENTS.as_bytes()), &experts, &Quiet).unwrap() else {
        panic!()
    };
    assert_eq!((s.report.counts.dropped, s.report.counts.events, s.report.counts.rejects), (2, 0, 3));
}

#[test]
fn a_truncated_gzip_keeps_the_records_before_the_cut() {
    let lines: String = (0..20_000)
        .map(|i| format!("{{\"source.ip\": \"10.0.{}.{}\", \"time.source\": \"2024-06-01\"}}\n", i / 256, i % 256))
        .collect();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(lines.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let cut = &gz[..gz.len() * 2 / 3];
    let (_dir, store) = store();
    let s = processed(run(&store, &Feed::adhoc("f", None), cut));
    assert_eq!(s.report.status, ReportStatus::Failed);
    assert!(s.report.error.as_deref().unwrap().starts_with("the gzip stream is cut short"), "{:?}", s.report.error);
    assert!(s.report.counts.events > 5_000, "{:?}", s.report.counts);
    assert!(s.report.counts.events < 20_000);
}

#[test]
fn an_empty_report_says_so() {
    let (_dir, store) = store();
    let s = processed(run(&store, &Feed::adhoc("f", Some("intelmq")), b""));
    assert_eq!(s.report.status, ReportStatus::Failed);
    assert_eq!(s.report.error.as_deref(), Some("the report is empty (0 bytes)"));
}

#[test]
fn csv_with_a_mapping_and_defaults() {
    let config: farol_feeds::ParseConfig = toml::from_str(
        r#"
        [columns]
        ip = "source.ip"
        ts = "time.source"
        "#,
    )
    .unwrap();
    let defaults =
        farol_pipeline::Defaults::new([("classification.type", "infected-system"), ("tlp", "AMBER")]).unwrap();
    let feed = Feed { parse: config, defaults, ..Feed::adhoc("sinkhole", Some("csv")) };
    let (_dir, store) = store();
    let s = processed(run(
        &store,
        &feed,
        b"ip,ts,family\n192.0.2.1,2024-06-01 10:00:00,mirai\n192.0.2.2,2024-06-01 10:00:00\n",
    ));
    assert_eq!((s.report.counts.events, s.report.counts.rejects), (1, 1));
    let e = &store
        .events(&EventQuery { visible: farol_store::Visibility::All, limit: 1, ..Default::default() })
        .unwrap()[0]
        .event;
    assert_eq!(e.tlp, Some(farol_model::Tlp::Amber));
    assert_eq!(e.extra["family"], "mirai");
    assert_eq!(e.classification_type, Some(farol_model::ClassificationType::InfectedSystem));
}

#[test]
fn each_member_of_a_zip_is_its_own_report() {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("a/first.jsonl", options).unwrap();
    zip.write_all(EVENTS.as_bytes()).unwrap();
    zip.add_directory("empty/", options).unwrap();
    zip.start_file("second.jsonl", options).unwrap();
    zip.write_all(b"{\"source.ip\": \"192.0.2.9\", \"time.source\": \"2024-06-01\"}\n").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let (_dir, store) = store();
    let feed = Feed::adhoc("partner", None);
    let (results, error) = farol_pipeline::ingest_all(&store, &feed, input(&bytes), &[], &Quiet).unwrap();
    assert!(error.is_none());
    let names: Vec<String> = results.into_iter().map(|r| processed(r).report.name.unwrap()).collect();
    assert_eq!(names, ["a/first.jsonl", "second.jsonl"]);
    assert_eq!(
        store
            .events(&EventQuery { visible: farol_store::Visibility::All, limit: 10, ..Default::default() })
            .unwrap()
            .len(),
        3
    );

    // A cut archive keeps the members before the cut.
    let (_dir, store) = self::store();
    let headers: Vec<usize> =
        bytes.windows(4).enumerate().filter(|(_, w)| w == b"PK\x03\x04").map(|(i, _)| i).collect();
    let cut = headers.last().unwrap() + 30 + "second.jsonl".len() + 5;
    let (results, error) = farol_pipeline::ingest_all(&store, &feed, input(&bytes[..cut]), &[], &Quiet).unwrap();
    assert_eq!(results.len(), 1);
    let error = error.unwrap().to_string();
    assert!(error.starts_with("zip member second.jsonl: "), "{error}");
}

/// Past the first batch, each event goes straight to its row, stored against the fields most
/// of the first batch shared: every event comes back as it went in, those that differ from
/// that base too, with what an expert added.
#[test]
fn events_after_the_first_batch_come_back_as_they_went_in() {
    struct Asn;
    impl Expert for Asn {
        fn name(&self) -> &str {
            "asn"
        }
        fn process(&self, record: &mut Record) -> Verdict {
            record.event.source_asn = Some(if record.event.source_port == Some(443) { 64501 } else { 64500 });
            Verdict::Keep
        }
    }
    // The first batch's events all have port 80; later ones 443, or none.
    let port = |i: u32| match i {
        0..2048 => Some(80),
        _ if i.is_multiple_of(2) => Some(443),
        _ => None,
    };
    let lines: String = (0..5_000u32)
        .map(|i| {
            let p = port(i).map(|p| format!(", \"source.port\": {p}")).unwrap_or_default();
            let ip = format!("10.0.{}.{}", i >> 8, i & 255);
            format!(
                "{{\"source.ip\": \"{ip}\", \"time.source\": \"2024-06-01T10:00:00+00:00\", \"extra.n\": {i}{p}}}\n"
            )
        })
        .collect();
    let (_dir, store) = store();
    let experts: Vec<Box<dyn Expert>> = vec![Box::new(Asn)];
    let feed = Feed::adhoc("f", Some("intelmq"));
    let s = processed(ingest(&store, &feed, input(lines.as_bytes()), &experts, &Quiet).unwrap());
    assert_eq!(s.report.counts.events, 5_000);
    let all = EventQuery { visible: farol_store::Visibility::All, limit: 10_000, ..EventQuery::default() };
    let events = store.events(&all).unwrap();
    assert_eq!(events.len(), 5_000);
    for e in &events {
        let i = u32::try_from(e.event.extra.get("n").and_then(|n| n.as_u64()).unwrap()).unwrap();
        assert_eq!(e.event.source_ip.unwrap().to_string(), format!("10.0.{}.{}", i >> 8, i & 255));
        assert_eq!(e.event.source_port, port(i), "event {i}");
        assert_eq!(e.event.source_asn, Some(if port(i) == Some(443) { 64501 } else { 64500 }), "event {i}");
        assert_eq!(e.event.feed_name.as_deref(), Some("f"));
    }
}
