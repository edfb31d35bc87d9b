//! The store test-suite: every backend must pass it.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::io::Read;

use farol_model::org::Distribution;
use farol_model::{ClassificationType, Event, Position, Record, Reject, ReportStatus, Timestamp};
use farol_store::testing::PostgresSchema;
use farol_store::{Archived, Claimed, Cursor, EventQuery, NewReport, Outcome, Row, SqliteStore, Store, Visibility};
use proptest::prelude::*;

fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("farol.db")).unwrap();
    (dir, store)
}

/// A test of the suite, run once per backend.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite_store {
            $(#[test]
            fn $test() {
                let (_dir, store) = super::sqlite();
                super::$test(&store);
            })*
        }
        mod postgres_store {
            use farol_store::testing::PostgresSchema;

            $(#[test]
            fn $test() {
                if let Some(schema) = PostgresSchema::new() {
                    super::$test(&schema.open());
                }
            })*
        }
    };
}

on_every_backend!(
    archive_is_content_addressed_and_streams_back,
    empty_input_is_a_report_of_zero_bytes,
    a_failing_input_leaves_nothing_behind,
    events_are_stored_once_per_hash_and_reprocessing_replaces_them,
    leases_give_each_report_one_holder_until_they_run_out,
    finishing_records_errors_in_feed_health,
    collector_state_and_results_are_kept_per_feed,
    organizations_with_assets_and_contacts,
    datasets_are_versioned_and_one_version_is_active,
    routed_events_are_found_by_organization_and_survive_reprocessing,
    an_organization_s_index_keeps_its_runs_apart_per_report_and_splits_them_on_rerouting,
    accounts_sessions_tokens_and_the_audit_log,
    notifications_read_new_events_report_by_report_and_queue_each_digest_once,
    incidents_are_listed_with_their_own_organizations_and_events,
    incident_files_tasks_searches_and_mail_are_kept_once,
    a_named_lock_is_held_by_one_holder_at_a_time,
);

fn new_report(feed: &str) -> NewReport {
    NewReport {
        feed: feed.into(),
        format: "intelmq".into(),
        name: Some("r.json".into()),
        received_at: Timestamp::now(),
    }
}

fn archive(store: &dyn Store, feed: &str, bytes: &[u8]) -> Archived {
    store.archive(&new_report(feed), &mut &bytes[..], &mut |_| {}).unwrap()
}

/// A base like the pipeline's: fields that most events share, one that some override.
fn base_event() -> Event {
    let mut e = Event::default();
    e.set("feed.provider", "Example").unwrap();
    e.set("source.geolocation.cc", "PT").unwrap();
    e
}

fn record(pairs: &[(&str, &str)], offset: u64) -> Record {
    let mut event = Event::default();
    for (k, v) in pairs {
        event.set(k, v).unwrap();
    }
    event.validate().unwrap();
    let hash = event.hash();
    Record { event, position: Position { offset, len: 10, line: None }, hash, routing: Default::default() }
}

fn archive_is_content_addressed_and_streams_back(store: &dyn Store) {
    // Several chunks, not compressible to nothing.
    let bytes: Vec<u8> = (0..(4 * farol_store::CHUNK_SIZE + 12345)).map(|i| (i * 7919 % 251) as u8).collect();
    let Archived::New(first) = archive(store, "feed-a", &bytes) else { panic!("expected a new report") };
    assert_eq!(first.status, ReportStatus::Stored);
    assert_eq!(first.size, bytes.len() as u64);
    let sha: String = <sha2::Sha256 as sha2::Digest>::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(first.sha256, sha);
    let Archived::Existing(again) = archive(store, "feed-a", &bytes) else { panic!("expected the same report") };
    assert_eq!(again.id, first.id);
    let Archived::New(other_feed) = archive(store, "feed-b", &bytes) else { panic!("another feed is another report") };
    assert_ne!(other_feed.id, first.id);
    let mut back = Vec::new();
    store.raw(first.id).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, bytes);
    assert_eq!(store.reports(Some("feed-a"), 10).unwrap().len(), 1);
    assert_eq!(store.unfinished_reports().unwrap().len(), 2);
}

fn empty_input_is_a_report_of_zero_bytes(store: &dyn Store) {
    let Archived::New(r) = archive(store, "f", b"") else { panic!() };
    assert_eq!(r.size, 0);
    let mut back = Vec::new();
    store.raw(r.id).unwrap().read_to_end(&mut back).unwrap();
    assert!(back.is_empty());
}

fn a_failing_input_leaves_nothing_behind(store: &dyn Store) {
    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("connection reset"));
            }
            self.0 -= 1;
            buf.fill(b'x');
            Ok(buf.len())
        }
    }
    let err = store.archive(&new_report("f"), &mut Broken(3), &mut |_| {}).unwrap_err();
    assert_eq!(err.to_string(), "connection reset");
    assert!(store.reports(None, 10).unwrap().is_empty());
}

fn events_are_stored_once_per_hash_and_reprocessing_replaces_them(store: &dyn Store) {
    let Archived::New(report) = archive(store, "f", b"raw") else { panic!() };
    store.begin_processing(report.id).unwrap();
    let a = record(&[("source.ip", "192.0.2.1"), ("time.source", "2024-06-01T10:00:00Z")], 0);
    let b = record(&[("source.ip", "192.0.2.2"), ("time.source", "2024-06-01T10:00:00Z")], 10);
    let mut w = store.event_writer(report.id, &Event::default(), Distribution::Affected).unwrap();
    let mut written = w
        .write(
            vec![Row::new(&a, &Event::default()), Row::new(&b, &Event::default()), Row::new(&a, &Event::default())],
            vec![],
        )
        .unwrap();
    let reject = Reject::new(Position { offset: 20, len: 3, line: Some(3) }, "bad", b"xyz");
    let flushed = w.write(vec![Row::new(&b, &Event::default())], vec![reject.clone()]).unwrap();
    assert_eq!(flushed.inserted + flushed.duplicates, 0, "below the batch size nothing is written yet");
    let more = w.flush().unwrap();
    written.inserted += more.inserted;
    written.duplicates += more.duplicates;
    assert_eq!((written.inserted, written.duplicates), (2, 2));
    let events =
        store.events(&EventQuery { visible: farol_store::Visibility::All, limit: 10, ..Default::default() }).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(store.event(events[0].id, &Visibility::All).unwrap().unwrap(), events[0]);
    assert_eq!(store.rejects(report.id, 10).unwrap(), vec![reject]);

    store.begin_processing(report.id).unwrap();
    assert!(
        store
            .events(&EventQuery { visible: farol_store::Visibility::All, limit: 10, ..Default::default() })
            .unwrap()
            .is_empty()
    );
    assert!(store.rejects(report.id, 10).unwrap().is_empty());
    let mut w = store.event_writer(report.id, &Event::default(), Distribution::Affected).unwrap();
    w.write(vec![Row::new(&a, &Event::default())], vec![]).unwrap();
    assert_eq!(w.flush().unwrap().inserted, 1);
    let done = store.finish_processing(report.id, &Outcome::default()).unwrap();
    assert_eq!(done.status, ReportStatus::Done);
    assert!(store.unfinished_reports().unwrap().is_empty());
}

fn leases_give_each_report_one_holder_until_they_run_out(store: &dyn Store) {
    let Archived::New(first) = archive(store, "feed-a", b"one") else { panic!() };
    let Archived::New(second) = archive(store, "feed-a", b"two") else { panic!() };
    let t = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
    let at = |secs: i64| t.add_secs(secs).unwrap();
    let taken = |c: Claimed| match c {
        Claimed::Taken(r) => r.id,
        other => panic!("not taken: {other:?}"),
    };

    // Oldest first; a report taken is not offered again while its lease runs.
    assert_eq!(taken(store.claim_report(None, "a", at(0), at(60)).unwrap()), first.id);
    assert_eq!(taken(store.claim_report(None, "b", at(1), at(61)).unwrap()), second.id);
    assert!(matches!(store.claim_report(None, "c", at(2), at(62)).unwrap(), Claimed::Nothing));
    let Claimed::Held(held) = store.claim_report(Some(first.id), "c", at(2), at(62)).unwrap() else { panic!() };
    assert_eq!(held.holder.as_deref(), Some("a"));
    assert_eq!(taken(store.claim_report(Some(first.id), "a", at(2), at(62)).unwrap()), first.id, "its own again");

    // "a" renews; "b" stalls: after its lease, its report goes to "c", and "b" has lost it. Its
    // writer, begun while it held the report, can add nothing more.
    let mut stalled = store.event_writer(second.id, &Event::default(), Distribution::Affected).unwrap();
    assert!(store.renew_claim(first.id, "a", at(120)).unwrap());
    assert!(matches!(store.claim_report(None, "c", at(90), at(150)).unwrap(), Claimed::Taken(r) if r.id == second.id));
    let late = record(&[("source.ip", "192.0.2.1"), ("time.source", "2024-06-01T10:00:00Z")], 0);
    stalled.write(vec![Row::new(&late, &Event::default())], vec![]).unwrap();
    assert!(matches!(stalled.flush(), Err(farol_store::StoreError::Conflict(_))));
    assert!(
        store.events(&EventQuery { visible: Visibility::All, limit: 10, ..Default::default() }).unwrap().is_empty()
    );
    assert!(!store.renew_claim(second.id, "b", at(150)).unwrap());
    store.release_claim(second.id, "b").unwrap();
    assert_eq!(store.report(second.id).unwrap().holder.as_deref(), Some("c"), "only the holder gives it up");

    // "b", which lost its report to "c", cannot finish it: its events may be gone.
    let by = |holder: &str| Outcome { holder: Some(holder.to_owned()), ..Default::default() };
    store.begin_processing(second.id).unwrap();
    assert!(matches!(store.finish_processing(second.id, &by("b")), Err(farol_store::StoreError::Conflict(_))));
    assert_eq!(store.report(second.id).unwrap().status, ReportStatus::Processing);

    // A finished report is not offered again, but can be taken to be reprocessed.
    store.begin_processing(first.id).unwrap();
    store.finish_processing(first.id, &by("a")).unwrap();
    store.release_claim(first.id, "a").unwrap();
    assert_eq!(store.report(first.id).unwrap().holder, None);
    assert!(matches!(store.claim_report(None, "d", at(200), at(260)).unwrap(), Claimed::Taken(r) if r.id == second.id));
    assert!(matches!(store.claim_report(None, "e", at(200), at(260)).unwrap(), Claimed::Nothing));
    assert_eq!(taken(store.claim_report(Some(first.id), "e", at(200), at(260)).unwrap()), first.id);
}

fn finishing_records_errors_in_feed_health(store: &dyn Store) {
    let Archived::New(r1) = archive(store, "f", b"1") else { panic!() };
    let Archived::New(r2) = archive(store, "f", b"2") else { panic!() };
    let mut ok = Outcome::default();
    ok.counts.events = 5;
    store.finish_processing(r1.id, &ok).unwrap();
    let failed = Outcome { error: Some("the report is empty".into()), ..Default::default() };
    assert_eq!(store.finish_processing(r2.id, &failed).unwrap().status, ReportStatus::Failed);
    let health = store.feed_health(Timestamp::now()).unwrap();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].reports_24h, 2);
    assert_eq!(health[0].events_24h, 5);
    assert_eq!(health[0].last_error.as_ref().unwrap().1, "the report is empty");
    assert!(health[0].last_success.is_some());
}

/// What a query should return, computed the obvious way.
fn model(all: &[(i64, Record, &str)], q: &EventQuery) -> Vec<i64> {
    let mut hits: Vec<&(i64, Record, &str)> = all
        .iter()
        .filter(|(_, r, feed)| {
            let e = &r.event;
            let t = e.time().unwrap();
            q.since.is_none_or(|s| t >= s)
                && q.until.is_none_or(|u| t <= u)
                && q.source.is_none_or(|n| e.source_ip.is_some_and(|ip| n.contains(&ip)))
                && q.asn.is_none_or(|a| e.source_asn == Some(a))
                && q.cc.as_ref().is_none_or(|cc| e.source_geolocation_cc.as_deref() == Some(cc.as_str()))
                && q.kind.is_none_or(|k| e.classification_type == Some(k))
                && q.taxonomy.is_none_or(|t| e.classification_taxonomy == Some(t))
                && q.feed.as_ref().is_none_or(|f| f == feed)
        })
        .collect();
    hits.sort_by_key(|(id, r, _)| std::cmp::Reverse((r.event.time().unwrap(), *id)));
    let hits = hits
        .into_iter()
        .filter(|(id, r, _)| q.after.is_none_or(|c| (r.event.time().unwrap().micros(), *id) < (c.time, c.id)));
    hits.map(|(id, ..)| *id).take(q.limit).collect()
}

fn arb_record() -> impl Strategy<Value = (Record, usize)> {
    (0u8..6, 0u32..3, 0usize..4, 0i64..(72 * 3600), prop::bool::ANY, 0usize..2).prop_map(
        |(ip, asn, kind, secs, v6, feed)| {
            let kinds = ["infected-system", "scanner", "c2-server", "phishing"];
            let ip = if v6 { format!("2001:db8::{ip}") } else { format!("192.0.2.{ip}") };
            let time = Timestamp::from_secs(1_717_200_000 + secs).unwrap().to_string();
            let asn = (64500 + asn).to_string();
            let cc = if asn.ends_with('0') { "PT" } else { "ES" };
            let r = record(
                &[
                    ("source.ip", &ip),
                    ("source.asn", &asn),
                    ("source.geolocation.cc", cc),
                    ("classification.type", kinds[kind]),
                    ("time.source", &time),
                ],
                0,
            );
            (r, feed)
        },
    )
}

fn arb_query() -> impl Strategy<Value = EventQuery> {
    (
        prop::option::of(0i64..(72 * 3600)),
        prop::option::of(0i64..(72 * 3600)),
        prop::option::of(prop_oneof![
            Just("192.0.2.3/32"),
            Just("192.0.2.0/30"),
            Just("2001:db8::/126"),
            Just("0.0.0.0/0")
        ]),
        prop::option::of(64500u32..64503),
        prop::option::of(prop_oneof![Just("PT"), Just("ES")]),
        prop::option::of(prop_oneof![Just(ClassificationType::Scanner), Just(ClassificationType::C2Server)]),
        prop::option::of(prop_oneof![Just(farol_model::Taxonomy::MaliciousCode), Just(farol_model::Taxonomy::Fraud)]),
        prop::option::of(prop_oneof![Just("feed-0"), Just("feed-1")]),
        1usize..30,
    )
        .prop_map(|(since, until, net, asn, cc, kind, taxonomy, feed, limit)| EventQuery {
            since: since.and_then(|s| Timestamp::from_secs(1_717_200_000 + s)),
            until: until.and_then(|s| Timestamp::from_secs(1_717_200_000 + s)),
            source: net.map(|n| n.parse().unwrap()),
            asn,
            cc: cc.map(String::from),
            kind,
            taxonomy,
            feed: feed.map(String::from),
            limit,
            visible: farol_store::Visibility::All,
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every filter, alone and combined, and paging with a cursor, against the obvious model,
    /// on every backend.
    #[test]
    fn queries_match_the_model(records in prop::collection::vec(arb_record(), 1..120), queries in prop::collection::vec(arb_query(), 1..12)) {
        let (_dir, store) = sqlite();
        queries_against_the_model(&store, &records, &queries)?;
        if let Some(schema) = PostgresSchema::new() {
            queries_against_the_model(&schema.open(), &records, &queries)?;
        }
    }
}

fn queries_against_the_model(
    store: &dyn Store,
    records: &[(Record, usize)],
    queries: &[EventQuery],
) -> Result<(), TestCaseError> {
    let mut all = Vec::new();
    for feed in 0..2 {
        let name = format!("feed-{feed}");
        let Archived::New(report) = archive(store, &name, name.as_bytes()) else { panic!() };
        store.begin_processing(report.id).unwrap();
        let base = base_event();
        let mut w = store.event_writer(report.id, &base, Distribution::Affected).unwrap();
        let mine: Vec<&Record> = records.iter().filter(|(_, f)| *f == feed).map(|(r, _)| r).collect();
        w.write(mine.iter().map(|r| Row::new(r, &base)).collect(), vec![]).unwrap();
        w.flush().unwrap();
        for r in mine {
            // Recover ids: the store keeps the first of equal hashes.
            let found = store
                .events(&EventQuery {
                    visible: farol_store::Visibility::All,
                    report: Some(report.id),
                    limit: 10_000,
                    ..Default::default()
                })
                .unwrap();
            if let Some(e) = found.iter().find(|e| e.hash == r.hash)
                && !all.iter().any(|(id, _, _): &(i64, Record, &str)| *id == e.id)
            {
                all.push((e.id, r.clone(), if feed == 0 { "feed-0" } else { "feed-1" }));
            }
        }
    }
    for q in queries {
        let got: Vec<i64> = store.events(q).unwrap().iter().map(|e| e.id).collect();
        prop_assert_eq!(&got, &model(&all, q), "query {:?}", q);
        // Paging through with the cursor visits the same events as one big page.
        let mut paged = Vec::new();
        let mut page = EventQuery { limit: 3, ..q.clone() };
        loop {
            let events = store.events(&page).unwrap();
            paged.extend(events.iter().map(|e| e.id));
            match events.last() {
                Some(last) if events.len() == 3 => page.after = Some(last.cursor()),
                _ => break,
            }
        }
        let everything = model(&all, &EventQuery { limit: usize::MAX, ..q.clone() });
        prop_assert_eq!(paged, everything);
    }
    Ok(())
}

#[test]
fn cursors_round_trip_as_text() {
    let c = Cursor { time: -5, id: 42 };
    assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
    assert!("x".parse::<Cursor>().is_err());
}

fn collector_state_and_results_are_kept_per_feed(store: &dyn Store) {
    assert_eq!(store.collector_state("f").unwrap(), None);
    store.set_collector_state("f", r#"{"etag":"x"}"#).unwrap();
    assert_eq!(store.collector_state("f").unwrap().as_deref(), Some(r#"{"etag":"x"}"#));
    store.record_feed_result("f", Some("connection refused")).unwrap();
    store.record_feed_result("g", None).unwrap();
    // What streams and partners keep is not a feed.
    store.set_collector_state("stream:org:1", r#"{"through":3}"#).unwrap();
    let health = store.feed_health(Timestamp::now()).unwrap();
    assert_eq!(health.iter().map(|h| h.feed.as_str()).collect::<Vec<_>>(), ["f", "g"]);
    assert_eq!(health[0].last_error.as_ref().unwrap().1, "connection refused");
    assert!(health[1].last_success.is_some());
}

fn org(name: &str, assets: &[(&str, &str)]) -> farol_model::org::Org {
    use farol_model::org::{Asset, Contact, Org, OrgId, Sector};
    Org {
        id: OrgId(0),
        name: name.into(),
        sector: Sector::Health,
        handle: None,
        assets: assets.iter().map(|(k, v)| Asset::parse_kind(k, v).unwrap()).collect(),
        contacts: vec![Contact::new(&format!("soc@{}.pt", name.to_lowercase().replace(' ', "-"))).unwrap()],
    }
}

fn organizations_with_assets_and_contacts(store: &dyn Store) {
    use farol_store::StoreError;
    let a = store
        .add_org(&org("Hospital X", &[("asn", "64500"), ("prefix", "192.0.2.0/24"), ("domain", "hospital-x.pt")]))
        .unwrap();
    let b = store.add_org(&org("Shop", &[])).unwrap();
    assert!(
        matches!(store.add_org(&org("hospital x", &[])), Err(StoreError::Conflict(_))),
        "names are unique in any case"
    );
    let orgs = store.orgs().unwrap();
    assert_eq!(orgs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["Hospital X", "Shop"]);
    assert_eq!(orgs[0].assets.len(), 3);
    assert_eq!(orgs[0].contacts[0].email, "soc@hospital-x.pt");
    let mut changed = orgs[0].clone();
    changed.assets.truncate(1);
    changed.name = "Hospital X, E.P.E.".into();
    store.update_org(&changed).unwrap();
    let again = store.orgs().unwrap();
    assert_eq!((again[0].name.as_str(), again[0].assets.len()), ("Hospital X, E.P.E.", 1));
    assert!(store.remove_org(b).unwrap());
    assert!(!store.remove_org(b).unwrap());
    let mut gone = changed.clone();
    gone.id = b;
    assert!(matches!(store.update_org(&gone), Err(StoreError::NotFound(_))));
    assert_eq!(store.orgs().unwrap().len(), 1);
    assert_eq!(store.orgs().unwrap()[0].id, a);
    // The removed organization was the newest; its id names it still where events were routed
    // and in the audit log, so it is not handed out again.
    let c = store.add_org(&org("Clinic", &[])).unwrap();
    assert!(c.0 > b.0, "the id of a removed organization was given to another: {c:?}");
}

/// A version of the dataset "asn" holding `data`.
fn dataset(data: &'static [u8]) -> farol_store::NewDataset<'static> {
    farol_store::NewDataset {
        name: "asn",
        format: "csv",
        priority: 20,
        description: "",
        source: "asn.csv",
        sha256: [7; 32],
        ranges: 2,
        rejected: 0,
        data,
    }
}

fn datasets_are_versioned_and_one_version_is_active(store: &dyn Store) {
    let one = store.add_dataset(&dataset(b"first")).unwrap();
    let two = store.add_dataset(&dataset(b"second")).unwrap();
    assert_eq!((one.version, two.version), (1, 2));
    assert_eq!(store.datasets(false).unwrap().iter().map(|d| d.id).collect::<Vec<_>>(), [two.id]);
    assert_eq!(store.datasets(true).unwrap().len(), 2);
    assert_eq!(store.dataset_data(two.id).unwrap(), b"second");
    assert!(store.remove_dataset("asn").unwrap());
    assert!(store.datasets(false).unwrap().is_empty());
    assert!(!store.remove_dataset("asn").unwrap());
}

/// Writes routed events for one report and processes it again: the index by organization
/// follows the events, and queries by organization and scope see exactly them.
fn routed_events_are_found_by_organization_and_survive_reprocessing(store: &dyn Store) {
    use farol_model::{Routing, Scope, org::OrgId};
    let a = store.add_org(&org("A", &[])).unwrap();
    let b = store.add_org(&org("B", &[])).unwrap();
    let Archived::New(report) = archive(store, "f", b"x") else { panic!() };
    // `twice`: the batch holds its first row twice (the writer then reads the new ids back).
    let write = |store: &dyn Store, twice: bool| {
        store.begin_processing(report.id).unwrap();
        let base = Event::default();
        let mut w = store.event_writer(report.id, &base, Distribution::Affected).unwrap();
        let mut rows = Vec::new();
        for (i, orgs) in [vec![a], vec![a, b], vec![], vec![b]].into_iter().enumerate() {
            let mut r =
                record(&[("source.ip", &format!("192.0.2.{i}")), ("time.source", "2024-06-01T10:00:00Z")], i as u64);
            let scope = if orgs.is_empty() { Scope::Outside } else { Scope::Org };
            r.routing = Routing { orgs, scope };
            rows.push(Row::new(&r, &base));
        }
        if twice {
            rows.push(rows[0].clone());
        }
        w.write(rows, vec![]).unwrap();
        w.flush().unwrap();
        store.finish_processing(report.id, &Outcome::default()).unwrap();
    };
    let ids = |q: EventQuery| {
        let mut v: Vec<String> = store
            .events(&EventQuery { visible: farol_store::Visibility::All, limit: 100, ..q })
            .unwrap()
            .iter()
            .map(|e| e.event.source_ip.unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    for twice in [false, true] {
        write(store, twice);
        assert_eq!(
            ids(EventQuery { visible: farol_store::Visibility::All, org: Some(a), ..EventQuery::default() }),
            ["192.0.2.0", "192.0.2.1"]
        );
        assert_eq!(
            ids(EventQuery { visible: farol_store::Visibility::All, org: Some(b), ..EventQuery::default() }),
            ["192.0.2.1", "192.0.2.3"]
        );
        assert_eq!(
            ids(EventQuery {
                visible: farol_store::Visibility::All,
                scope: Some(Scope::Outside),
                ..EventQuery::default()
            }),
            ["192.0.2.2"]
        );
        assert!(
            ids(EventQuery { visible: farol_store::Visibility::All, org: Some(OrgId(999)), ..EventQuery::default() })
                .is_empty()
        );
    }
    // Rerouting moves an event from one organization to another.
    let all = store.events_after(0, 100).unwrap();
    assert_eq!(all.len(), 4);
    let moved = all.iter().find(|e| e.routing.orgs == [a]).unwrap();
    store
        .set_routing(&[farol_store::Rerouted { id: moved.id, routing: Routing { orgs: vec![b], scope: Scope::Org } }])
        .unwrap();
    assert_eq!(
        ids(EventQuery { visible: farol_store::Visibility::All, org: Some(a), ..EventQuery::default() }),
        ["192.0.2.1"]
    );
    assert_eq!(
        ids(EventQuery { visible: farol_store::Visibility::All, org: Some(b), ..EventQuery::default() }),
        ["192.0.2.0", "192.0.2.1", "192.0.2.3"]
    );
    assert_eq!(store.event(moved.id, &Visibility::All).unwrap().unwrap().routing.orgs, [b]);
    // A removed organization takes its index with it.
    store.remove_org(b).unwrap();
    assert!(
        ids(EventQuery { visible: farol_store::Visibility::All, org: Some(b), ..EventQuery::default() }).is_empty()
    );
}

fn an_organization_s_index_keeps_its_runs_apart_per_report_and_splits_them_on_rerouting(store: &dyn Store) {
    use farol_model::org::OrgId;
    use farol_model::{Routing, Scope, Tlp};
    let a = store.add_org(&org("A", &[])).unwrap();
    let b = store.add_org(&org("B", &[])).unwrap();
    // Written in address order, an organization's events of an hour have consecutive ids.
    let write = |bytes: &[u8], net: &str, orgs: &[Vec<OrgId>]| {
        let Archived::New(report) = archive(store, "f", bytes) else { panic!() };
        store.begin_processing(report.id).unwrap();
        let base = Event::default();
        let mut w = store.event_writer(report.id, &base, Distribution::Affected).unwrap();
        let rows = orgs.iter().enumerate().map(|(i, orgs)| {
            let mut r = record(&[("source.ip", &format!("{net}.{i}")), ("time.source", "2024-06-01T10:00:00Z")], 0);
            r.routing =
                Routing { orgs: orgs.clone(), scope: if orgs.is_empty() { Scope::Outside } else { Scope::Org } };
            Row::new(&r, &base)
        });
        w.write(rows.collect(), vec![]).unwrap();
        w.flush().unwrap();
        store.finish_processing(report.id, &Outcome::default()).unwrap();
        report
    };
    let routed = |orgs: Vec<OrgId>, n: usize| std::iter::repeat_n(orgs, n);
    let first: Vec<Vec<OrgId>> =
        routed(vec![a], 5).chain(routed(vec![a, b], 3)).chain(routed(vec![], 1)).chain(routed(vec![b], 3)).collect();
    let first = write(b"1", "192.0.2", &first);
    write(b"2", "198.51.100", &vec![vec![a]; 3]);
    let of = |org: OrgId| {
        let q = EventQuery { visible: Visibility::All, org: Some(org), limit: 100, ..EventQuery::default() };
        let mut v: Vec<String> =
            store.events(&q).unwrap().iter().map(|e| e.event.source_ip.unwrap().to_string()).collect();
        v.sort();
        v
    };
    let inside_a = Visibility::Scoped { inside: Some((a, Tlp::Red)), shared: None };
    let seen_by_a = |ip: &str| {
        let all = store.events_after(0, 100).unwrap();
        let id = all.iter().find(|e| e.event.source_ip.unwrap().to_string() == ip).unwrap().id;
        store.event(id, &inside_a).unwrap().is_some()
    };
    let a_first: Vec<String> =
        (0..8).map(|i| format!("192.0.2.{i}")).chain((0..3).map(|i| format!("198.51.100.{i}"))).collect();
    assert_eq!(of(a), a_first);
    assert_eq!(of(b), ["192.0.2.10", "192.0.2.11", "192.0.2.5", "192.0.2.6", "192.0.2.7", "192.0.2.9"]);
    assert_eq!(store.tally(&EventQuery { visible: inside_a.clone(), ..EventQuery::default() }).unwrap().events, 11);

    // Moving an event out of the middle of a run leaves the events on either side.
    let all = store.events_after(0, 100).unwrap();
    let middle = all.iter().find(|e| e.event.source_ip.unwrap().to_string() == "192.0.2.2").unwrap();
    store
        .set_routing(&[farol_store::Rerouted { id: middle.id, routing: Routing { orgs: vec![b], scope: Scope::Org } }])
        .unwrap();
    assert_eq!(of(a), a_first.iter().filter(|ip| *ip != "192.0.2.2").cloned().collect::<Vec<_>>());
    assert_eq!(of(b).len(), 7);
    assert!(seen_by_a("192.0.2.1") && seen_by_a("192.0.2.3") && !seen_by_a("192.0.2.2") && !seen_by_a("192.0.2.9"));

    // Processing the first report again takes its events out of the index, not the second's.
    store.begin_processing(first.id).unwrap();
    assert_eq!(of(a), ["198.51.100.0", "198.51.100.1", "198.51.100.2"]);
    assert!(of(b).is_empty());
}

fn notifications_read_new_events_report_by_report_and_queue_each_digest_once(store: &dyn Store) {
    use farol_model::org::OrgId;
    use farol_model::{Routing, Scope, Tlp};
    use farol_store::{Delivery, Mark, NewMessage, OutboxState};
    let a = store.add_org(&org("A", &[])).unwrap();
    let b = store.add_org(&org("B", &[])).unwrap();
    // Events for `a` and `b` by turns (several runs), in a report left unfinished or not.
    let write = |bytes: &[u8], orgs: &[OrgId], tlp: &str, finish: bool| {
        let Archived::New(report) = archive(store, "f", bytes) else { panic!() };
        store.begin_processing(report.id).unwrap();
        let base = Event::default();
        let mut w = store.event_writer(report.id, &base, Distribution::Affected).unwrap();
        let rows = orgs.iter().enumerate().map(|(i, &o)| {
            let ip = format!("192.0.{}.{i}", bytes[0]);
            let mut r = record(&[("source.ip", &ip), ("time.source", "2024-06-01T10:00:00Z"), ("tlp", tlp)], 0);
            r.routing = Routing { orgs: vec![o], scope: Scope::Org };
            Row::new(&r, &base)
        });
        w.write(rows.collect(), vec![]).unwrap();
        w.flush().unwrap();
        if finish {
            store.finish_processing(report.id, &Outcome::default()).unwrap();
        }
        report.id.0
    };
    let r1 = write(&[1], &[a, a, b, a, b, a, a], "AMBER", true);
    let r2 = write(&[2], &[a, b], "AMBER", false);
    let r3 = write(&[3], &[a, a, a], "RED", true);
    // The unfinished report holds back the one after it.
    assert_eq!(store.finished_through().unwrap(), r1);
    let visible = Visibility::Scoped { inside: Some((a, Tlp::AmberStrict)), shared: None };
    let read = |reports: (i64, i64), after: i64, limit: usize| -> Vec<(i64, String)> {
        let events = store.new_events(a, &visible, reports, after, limit).unwrap();
        assert!(events.windows(2).all(|w| w[0].id < w[1].id), "in id order");
        events.iter().map(|e| (e.id, e.event.source_ip.unwrap().to_string())).collect()
    };
    let ips = |reports, limit| -> Vec<String> { read(reports, 0, limit).into_iter().map(|(_, ip)| ip).collect() };
    assert_eq!(ips((0, r1), 100), ["192.0.1.0", "192.0.1.1", "192.0.1.3", "192.0.1.5", "192.0.1.6"]);
    assert_eq!(ips((0, r1), 2), ["192.0.1.0", "192.0.1.1"]);
    // Page by page, from the last event read.
    let page = read((0, r1), 0, 2);
    let next: Vec<String> = read((0, r1), page[1].0, 2).into_iter().map(|(_, ip)| ip).collect();
    assert_eq!(next, ["192.0.1.3", "192.0.1.5"]);
    store.finish_processing(farol_model::ReportId(r2), &Outcome::default()).unwrap();
    assert_eq!(store.finished_through().unwrap(), r3);
    // TLP:RED is not for the organization: report 3 brings it nothing.
    assert_eq!(ips((r1, r3), 100), ["192.0.2.0"]);
    assert!(ips((r3, r3), 100).is_empty());
    assert_eq!(store.report_before(Timestamp::parse("2000-01-01").unwrap()).unwrap(), 0);
    assert_eq!(store.report_before(Timestamp::now().add_secs(60).unwrap()).unwrap(), r3);

    // A digest is queued with its mark, or not at all.
    let now = Timestamp::now();
    let mark = Mark { org: a, email: "soc@a.example".into(), last_report: r3, last_sent: Some(now) };
    assert_eq!(store.queue_message(farol_store::Record::Mark(&mark), &mut |_| None).unwrap(), None);
    assert!(store.notify_marks().unwrap().is_empty() && store.outbox(None, 10).unwrap().is_empty());
    let message = |id: i64| NewMessage {
        org: a,
        sender: "cert@cert.example".into(),
        recipients: vec!["soc@a.example".into()],
        subject: format!("#{id}"),
        events: 6,
        message: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
    };
    let id = store.queue_message(farol_store::Record::Mark(&mark), &mut |id| Some(message(id))).unwrap().unwrap();
    assert_eq!(store.notify_marks().unwrap(), std::slice::from_ref(&mark));
    let due = store.outbox_due(now, 10).unwrap();
    assert_eq!((due.len(), &due[0].subject, &due[0].message), (1, &format!("#{id}"), &message(id).message));
    let later = now.add_secs(300).unwrap();
    store.record_delivery(id, &Delivery::Retry { at: later, error: "421 busy".into() }).unwrap();
    assert!(store.outbox_due(now, 10).unwrap().is_empty());
    assert_eq!(store.outbox_due(later, 10).unwrap()[0].attempts, 1);
    store.record_delivery(id, &Delivery::Sent(later)).unwrap();
    assert!(store.outbox_due(later, 10).unwrap().is_empty());
    let listed = &store.outbox(Some(a), 10).unwrap()[0];
    assert_eq!((listed.state, listed.attempts, listed.last_error.as_deref()), (OutboxState::Sent, 2, None));
    assert!(store.outbox(Some(b), 10).unwrap().is_empty());
    assert!(store.record_delivery(id + 1, &Delivery::Sent(later)).is_err());
}

fn incidents_are_listed_with_their_own_organizations_and_events(store: &dyn Store) {
    use farol_model::incident::{Entry, EntryKind, Incident, Severity};
    use farol_model::{ClassificationType, Tlp};
    use farol_store::IncidentFilter;
    let orgs: Vec<_> = ["A", "B", "C"].iter().map(|n| store.add_org(&org(n, &[])).unwrap()).collect();
    let Archived::New(report) = archive(store, "f", b"x") else { panic!() };
    store.begin_processing(report.id).unwrap();
    let base = Event::default();
    let mut w = store.event_writer(report.id, &base, Distribution::Affected).unwrap();
    let rows = || {
        (0..4)
            .map(|i| {
                Row::new(
                    &record(&[("source.ip", &format!("192.0.2.{i}")), ("time.source", "2024-06-01T10:00:00Z")], 0),
                    &base,
                )
            })
            .collect()
    };
    w.write(rows(), vec![]).unwrap();
    w.flush().unwrap();
    let events: Vec<i64> = store.events_after(0, 10).unwrap().iter().map(|e| e.id).collect();
    let now = Timestamp::now();
    let entry = Entry::new(EntryKind::Created, None, "opened", now);
    let links =
        [(vec![orgs[0], orgs[1]], vec![events[0]]), (vec![], vec![]), (vec![orgs[1]], vec![events[1], events[3]])];
    for (n, (o, e)) in links.iter().enumerate() {
        let i = Incident {
            orgs: o.clone(),
            events: e.clone(),
            ..Incident::new(&format!("#{n}"), ClassificationType::Scanner, Severity::Low, Tlp::Amber, now)
        };
        store.add_incident(&i, &entry, &[]).unwrap();
    }
    let listed = |org| {
        let filter = IncidentFilter { org, limit: 10, ..IncidentFilter::default() };
        store.incidents(&filter).unwrap().into_iter().map(|i| (i.title, i.orgs, i.events)).collect::<Vec<_>>()
    };
    let expected: Vec<_> =
        links.iter().enumerate().rev().map(|(n, (o, e))| (format!("#{n}"), o.clone(), e.clone())).collect();
    assert_eq!(listed(None), expected, "newest first, each with its own links");
    assert_eq!(listed(Some(orgs[1])), [expected[0].clone(), expected[2].clone()]);
    assert!(listed(Some(orgs[2])).is_empty());
    let one = store.incident(3).unwrap().unwrap();
    assert_eq!((one.orgs, one.events), (vec![orgs[1]], vec![events[1], events[3]]));
    assert!(store.incident(4).unwrap().is_none());

    // Processing the report again gives its events new ids (after another report's): the links
    // follow them.
    let Archived::New(other) = archive(store, "f", b"y") else { panic!() };
    store.begin_processing(other.id).unwrap();
    let mut w = store.event_writer(other.id, &base, Distribution::Affected).unwrap();
    w.write(
        vec![Row::new(&record(&[("source.ip", "203.0.113.1"), ("time.source", "2024-06-01T11:00:00Z")], 0), &base)],
        vec![],
    )
    .unwrap();
    w.flush().unwrap();
    store.begin_processing(report.id).unwrap();
    let mut w = store.event_writer(report.id, &base, Distribution::Affected).unwrap();
    w.write(rows(), vec![]).unwrap();
    w.flush().unwrap();
    store.finish_processing(report.id, &Outcome::default()).unwrap();
    let again: Vec<i64> = store
        .events_after(0, 10)
        .unwrap()
        .iter()
        .filter(|e| e.event.source_ip.is_some_and(|ip| ip.to_string().starts_with("192.0.2.")))
        .map(|e| e.id)
        .collect();
    assert!(again.iter().all(|id| !events.contains(id)), "{again:?} {events:?}");
    assert_eq!(store.incident(3).unwrap().unwrap().events, [again[1], again[3]]);
}

fn incident_files_tasks_searches_and_mail_are_kept_once(store: &dyn Store) {
    use farol_model::Tlp;
    use farol_model::incident::{Entry, EntryKind, Incident, NewFile, Severity, Task};
    use farol_store::{Mail, Record, Search};
    let now = Timestamp::now();
    let file =
        |name: &str| NewFile { name: name.into(), content_type: "text/plain".into(), data: name.as_bytes().to_vec() };
    let mut i = Incident::new("x", ClassificationType::Phishing, Severity::Low, Tlp::Amber, now);
    i.add_tasks(&["one".into(), "two".into()]);
    i.add_tasks(&["two".into()]);
    let i = store.add_incident(&i, &Entry::new(EntryKind::Created, None, "opened", now), &[file("a.txt")]).unwrap();
    store.add_entry(i.id, &Entry::new(EntryKind::Comment, Some(1), "c", now), &[file("b.txt"), file("c.txt")]).unwrap();
    let timeline = store.timeline(i.id).unwrap();
    let names: Vec<Vec<&str>> = timeline.iter().map(|e| e.files.iter().map(|f| f.name.as_str()).collect()).collect();
    assert_eq!(names, [vec!["a.txt"], vec!["b.txt", "c.txt"]]);
    let b = &timeline[1].files[0];
    assert_eq!((b.size, b.sha256.len()), (5, 64));
    let stored = store.file(b.id).unwrap().unwrap();
    assert_eq!(
        (stored.incident, stored.entry.kind, stored.entry.user, stored.file),
        (i.id, EntryKind::Comment, Some(1), file("b.txt"))
    );
    assert!(store.file(999).unwrap().is_none());
    assert!(store.add_entry(999, &Entry::new(EntryKind::Comment, None, "c", now), &[file("x")]).is_err());

    // Tasks are kept in order, with when they were done.
    let mut i = store.incident(i.id).unwrap().unwrap();
    assert_eq!(i.tasks, [Task { text: "one".into(), done: None }, Task { text: "two".into(), done: None }]);
    i.tasks[1].done = Some((now, None));
    store.update_incident(&i, &Entry::new(EntryKind::Task, None, "task 2 done", now)).unwrap();
    assert_eq!(store.incident(i.id).unwrap().unwrap().tasks[1].done.map(|d| d.0.micros()), Some(now.micros()));

    // A message about the incident is queued with its timeline entry, or not at all.
    let note = Entry::new(EntryKind::Notification, None, "to A", now);
    assert_eq!(store.queue_message(Record::Entry(i.id, &note), &mut |_| None).unwrap(), None);
    assert_eq!(store.timeline(i.id).unwrap().len(), 3);

    // Searches by name; the same name replaces.
    let search = |q: &str| Search { name: "mine".into(), query: q.into(), created: now, created_by: None };
    store.save_search(&search("asn=1")).unwrap();
    store.save_search(&search("asn=2")).unwrap();
    assert_eq!(store.searches().unwrap(), [search("asn=2")]);
    assert!(store.remove_search("mine").unwrap() && !store.remove_search("mine").unwrap());

    // An e-mail is taken once, whatever it is.
    let reply = Mail::Reply {
        incident: i.id,
        entry: Entry::new(EntryKind::Mail, None, "thanks", now),
        files: vec![file("m.eml")],
    };
    assert_eq!(store.receive_mail("<r@x>", &reply).unwrap(), Some(i.id));
    assert_eq!(store.receive_mail("<r@x>", &reply).unwrap(), None);
    let new = Mail::New {
        incident: Incident::new("mail", ClassificationType::Undetermined, Severity::Medium, Tlp::Amber, now),
        entry: Entry::new(EntryKind::Mail, None, "hello", now),
        files: vec![],
    };
    let opened = store.receive_mail("<n@x>", &new).unwrap().unwrap();
    assert_eq!(store.receive_mail("<n@x>", &new).unwrap(), None);
    assert_eq!(store.incidents(&farol_store::IncidentFilter { limit: 10, ..Default::default() }).unwrap().len(), 2);
    assert_eq!(store.timeline(opened).unwrap()[0].text, "hello");
    let to_nowhere = Mail::Reply { incident: 999, entry: Entry::new(EntryKind::Mail, None, "?", now), files: vec![] };
    assert!(store.receive_mail("<z@x>", &to_nowhere).is_err());
    assert!(store.receive_mail("<z@x>", &new).unwrap().is_some(), "a failed message was not recorded as taken");
}

fn accounts_sessions_tokens_and_the_audit_log(store: &dyn Store) {
    use farol_model::org::Role;
    use farol_store::{AuditEntry, StoreError, Token, TokenScope, User};
    let a = store.add_org(&org("A", &[])).unwrap();
    let b = store.add_org(&org("B", &[])).unwrap();
    let now = Timestamp::now();
    let user = |email: &str, org, role| User {
        id: 0,
        email: email.into(),
        org,
        role,
        password: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        totp: None,
        disabled: false,
        failures: 0,
        locked_until: None,
        created_at: now,
    };
    let ana = store.add_user(&user("ana@a.example", a, Role::Analyst)).unwrap();
    let bea = store.add_user(&user("bea@b.example", b, Role::OrgMember)).unwrap();
    assert!(matches!(store.add_user(&user("ANA@a.example", b, Role::OrgMember)), Err(StoreError::Conflict(_))));
    assert_eq!(store.user_by_email("Ana@A.example").unwrap().map(|u| u.id), Some(ana.id));
    assert_eq!(store.users(Some(b)).unwrap(), std::slice::from_ref(&bea));
    assert_eq!(store.users(None).unwrap().len(), 2);

    // Sessions by the hash of their secret; disabling a user ends them.
    store.add_session(b"s1", bea.id, "csrf", now).unwrap();
    let later = now.add_secs(60).unwrap();
    store.touch_session(b"s1", later).unwrap();
    let session = store.session(b"s1").unwrap().unwrap();
    assert_eq!((session.user.id, session.csrf.as_str(), session.seen_at.micros()), (bea.id, "csrf", later.micros()));
    let locked = User { failures: 3, locked_until: Some(later), ..bea.clone() };
    store.update_user(&locked).unwrap();
    assert_eq!(store.user(bea.id).unwrap().unwrap(), locked);
    assert!(store.session(b"s1").unwrap().is_some());
    store.update_user(&User { disabled: true, ..locked }).unwrap();
    assert!(store.session(b"s1").unwrap().is_none());
    assert!(matches!(store.update_user(&User { id: 999, ..bea.clone() }), Err(StoreError::NotFound(_))));

    // Tokens: looking one up marks it used; revoked once, by its own user only.
    let token = Token {
        id: 0,
        user: ana.id,
        name: "misp".into(),
        scope: TokenScope::Write,
        created_at: now,
        expires_at: None,
        revoked_at: None,
        used_at: None,
    };
    let t = store.add_token(b"t1", &token).unwrap();
    let (found, owner) = store.token(b"t1", later).unwrap().unwrap();
    assert_eq!((found.id, found.scope, owner.id), (t.id, TokenScope::Write, ana.id));
    assert_eq!(store.tokens(ana.id).unwrap()[0].used_at.map(Timestamp::micros), Some(later.micros()));
    assert!(store.token(b"t2", later).unwrap().is_none());
    assert!(!store.revoke_token(t.id, bea.id, later).unwrap());
    assert!(store.revoke_token(t.id, ana.id, later).unwrap() && !store.revoke_token(t.id, ana.id, later).unwrap());
    assert!(!store.tokens(ana.id).unwrap()[0].is_valid(later));

    // The audit log, newest first, per organization.
    for (n, org) in [(1, Some(a)), (2, Some(b)), (3, None)] {
        let entry = AuditEntry {
            at: now,
            user: Some(ana.id),
            org,
            action: format!("action {n}"),
            target: None,
            ip: Some("192.0.2.1".into()),
            detail: None,
        };
        store.audit(&entry).unwrap();
    }
    let actions = |org| store.audit_log(org, 10).unwrap().into_iter().map(|e| e.action).collect::<Vec<_>>();
    assert_eq!(actions(None), ["action 3", "action 2", "action 1"]);
    assert_eq!(actions(Some(a)), ["action 1"]);
    assert_eq!(store.audit_log(None, 1).unwrap().len(), 1);
}

fn a_named_lock_is_held_by_one_holder_at_a_time(store: &dyn Store) {
    let held = store.lock("stream", false).unwrap().expect("free");
    assert!(store.lock("stream", false).unwrap().is_none(), "held by another");
    let other = store.lock("notify", false).unwrap();
    assert!(other.is_some(), "another name is another lock");
    // A waiting holder gets it once it is released.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let next = store.lock("stream", true).unwrap();
            tx.send(next.is_some()).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(rx.try_recv().is_err(), "still waiting");
        drop(held);
        assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap());
    });
    assert!(store.lock("stream", false).unwrap().is_some(), "released when the waiter's was dropped");
}

/// What the statistics rollups must answer, recounted from the stored events themselves.
fn recount(store: &dyn Store, q: &farol_store::HostQuery) -> (u64, u64, u64) {
    use std::collections::BTreeSet;
    let mut ips = BTreeSet::new();
    let mut ip_days = BTreeSet::new();
    let mut events = 0;
    for e in store.events_after(0, 10_000).unwrap() {
        let ev = &e.event;
        let day = ev.time().unwrap().day();
        let family = ev.classification_identifier.as_deref().map(str::to_lowercase);
        let inside = match &q.scope {
            farol_store::HostScope::All => true,
            farol_store::HostScope::Country(cc) => ev.source_geolocation_cc.as_deref() == Some(cc.as_str()),
            farol_store::HostScope::Asn(asn) => ev.source_asn == Some(*asn),
            farol_store::HostScope::Orgs(orgs) => e.routing.orgs.iter().any(|o| orgs.contains(o)),
        };
        if inside
            && (q.from_day..=q.to_day).contains(&day)
            && (q.types.is_empty() || ev.classification_type.is_some_and(|t| q.types.contains(&t)))
            && (q.family.is_none() || family == q.family)
        {
            let ip = ev.source_ip.unwrap();
            ips.insert(ip);
            ip_days.insert((day, ip));
            // An event of several organizations counts once per organization asked about.
            events += match &q.scope {
                farol_store::HostScope::Orgs(orgs) => e.routing.orgs.iter().filter(|o| orgs.contains(o)).count() as u64,
                _ => 1,
            };
        }
    }
    (ips.len() as u64, ip_days.len() as u64, events)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The rollups agree with the events after writing, duplicates, reprocessing a report with
    /// fewer events, and rerouting.
    #[test]
    fn statistics_rollups_follow_the_events(
        events in proptest::collection::vec((0u8..5, 0u8..4, 0u8..24, any::<bool>(), 0u8..3, 0u8..4), 1..60),
        keep in 0usize..60,
        moved in 0usize..60,
    ) {
        let (_dir, store) = sqlite();
        rollups_follow_the_events(&store, &events, keep, moved)?;
        if let Some(schema) = PostgresSchema::new() {
            rollups_follow_the_events(&schema.open(), &events, keep, moved)?;
        }
    }
}

/// An event of the statistics test: address, day, hour, scanner or not, family, organizations
/// (a bit each).
type HostEvent = (u8, u8, u8, bool, u8, u8);

fn rollups_follow_the_events(
    store: &dyn Store,
    events: &[HostEvent],
    keep: usize,
    moved: usize,
) -> Result<(), TestCaseError> {
    use farol_model::{Routing, Scope};
    use farol_store::{Breakdown, HostQuery, HostScope};
    let orgs = [store.add_org(&org("A", &[])).unwrap(), store.add_org(&org("B", &[])).unwrap()];
    let rows_of = |events: &[HostEvent]| -> Vec<Row> {
        events
            .iter()
            .enumerate()
            .map(|(i, &(ip, day, hour, scan, family, routed))| {
                let time = format!("2024-06-0{}T{hour:02}:00:00Z", day + 1);
                let kind = if scan { "scanner" } else { "infected-system" };
                let family = ["zeus", "Mirai", "emotet"][family as usize];
                let cc = if ip < 3 { "PT" } else { "ES" };
                let asn = (64500 + u32::from(ip % 2)).to_string();
                let mut r = record(
                    &[
                        ("source.ip", &format!("192.0.2.{ip}")),
                        ("time.source", &time),
                        ("classification.type", kind),
                        ("classification.identifier", family),
                        ("source.geolocation.cc", cc),
                        ("source.asn", &asn),
                    ],
                    i as u64,
                );
                let mine: Vec<_> =
                    orgs.iter().enumerate().filter(|(k, _)| routed >> k & 1 == 1).map(|(_, o)| *o).collect();
                r.routing = Routing { scope: if mine.is_empty() { Scope::Outside } else { Scope::Org }, orgs: mine };
                Row::new(&r, &Event::default())
            })
            .collect()
    };
    // A report whose processing stops before it finishes, as a crash would leave it.
    let process_until = |bytes: &[u8], rows: Vec<Row>, finish: bool| {
        let report = match archive(store, "f", bytes) {
            Archived::New(r) | Archived::Existing(r) => r,
        };
        store.begin_processing(report.id).unwrap();
        let mut w = store.event_writer(report.id, &Event::default(), Distribution::Affected).unwrap();
        w.write(rows, vec![]).unwrap();
        w.flush().unwrap();
        if finish {
            store.finish_processing(report.id, &Outcome::default()).unwrap();
        }
    };
    let process = |bytes: &[u8], rows: Vec<Row>| process_until(bytes, rows, true);
    let half = events.len() / 2;
    process(b"first", rows_of(&events[..half]));
    // The second report repeats the first's events: duplicates count nothing.
    process(b"second", rows_of(events));
    process(b"first", rows_of(&events[..keep.min(half)]));
    // Interrupted, then done again: counted once.
    let mut third = events.to_vec();
    third.iter_mut().for_each(|e| e.2 = (e.2 + 1) % 24);
    process_until(b"third", rows_of(&third), false);
    let stored = store.events_after(0, 10_000).unwrap();
    if let Some(e) = stored.get(moved % stored.len().max(1)) {
        // To one organization, to both, or out of the constituency.
        let to = [&orgs[1..], &orgs[..], &[]][moved % 3].to_vec();
        let routing = Routing { scope: if to.is_empty() { Scope::Outside } else { Scope::Org }, orgs: to };
        store.set_routing(&[farol_store::Rerouted { id: e.id, routing }]).unwrap();
    }
    let day = Timestamp::parse("2024-06-01T00:00:00Z").unwrap().day();
    for scope in [
        HostScope::All,
        HostScope::Country("PT".into()),
        HostScope::Asn(64501),
        HostScope::Orgs(vec![orgs[0]]),
        HostScope::Orgs(orgs.to_vec()),
    ] {
        for (from, to) in [(day, day + 3), (day + 1, day + 2)] {
            for (types, family) in
                [(vec![], None), (vec![ClassificationType::InfectedSystem], Some("mirai".to_owned()))]
            {
                let q = HostQuery { scope: scope.clone(), from_day: from, to_day: to, types, family, max_tlp: None };
                let c = store.hosts(&q).unwrap();
                prop_assert_eq!((c.hosts, c.host_days, c.events), recount(store, &q), "{:?}", q);
                let days = store.host_breakdown(&q, Breakdown::Day).unwrap();
                prop_assert_eq!(days.iter().map(|d| d.host_days).sum::<u64>(), c.host_days);
                for d in days {
                    let one: i64 = d.key.parse().unwrap();
                    let q1 = HostQuery { from_day: one, to_day: one, ..q.clone() };
                    prop_assert_eq!(d.hosts, recount(store, &q1).0);
                }
            }
        }
    }
    process(b"third", rows_of(&third[..half]));
    let q = HostQuery {
        scope: HostScope::Orgs(orgs.to_vec()),
        from_day: day,
        to_day: day + 3,
        types: vec![],
        family: None,
        max_tlp: None,
    };
    let c = store.hosts(&q).unwrap();
    prop_assert_eq!((c.hosts, c.host_days, c.events), recount(store, &q));
    let all =
        HostQuery { scope: HostScope::All, from_day: day, to_day: day + 3, types: vec![], family: None, max_tlp: None };
    let by_org = store.host_breakdown(&all, Breakdown::Org).unwrap();
    for o in orgs {
        let expected = recount(store, &HostQuery { scope: HostScope::Orgs(vec![o]), ..all.clone() }).0;
        let got = by_org.iter().find(|c| c.key == o.0.to_string()).map_or(0, |c| c.hosts);
        prop_assert_eq!(got, expected);
    }
    // A removed organization's events still count in the whole, and under the others.
    let whole = store.hosts(&all).unwrap();
    store.remove_org(orgs[0]).unwrap();
    prop_assert_eq!(store.hosts(&all).unwrap(), whole);
    let b = HostQuery { scope: HostScope::Orgs(vec![orgs[1]]), ..all.clone() };
    let c = store.hosts(&b).unwrap();
    prop_assert_eq!((c.hosts, c.host_days, c.events), recount(store, &b));
    prop_assert!(store.host_breakdown(&all, Breakdown::Org).unwrap().iter().all(|c| c.key != orgs[0].0.to_string()));
    Ok(())
}

/// PostgreSQL files events by month, in partitions made as events arrive; times before 1990 or
/// from 2100 on go to the default partition. Every event reads back whichever partition holds it.
#[test]
fn postgres_partitions_events_by_month() {
    let Some(schema) = PostgresSchema::new() else { return };
    let store = schema.open();
    let Archived::New(report) = archive(&store, "f", b"x") else { panic!() };
    store.begin_processing(report.id).unwrap();
    let times = ["2024-06-01T10:00:00Z", "2024-06-30T23:59:59Z", "2024-07-01T00:00:00Z", "1985-01-01T00:00:00Z"];
    let mut w = store.event_writer(report.id, &Event::default(), Distribution::Affected).unwrap();
    let rows = times
        .iter()
        .map(|t| Row::new(&record(&[("source.ip", "192.0.2.1"), ("time.source", t)], 0), &Event::default()));
    w.write(rows.collect(), vec![]).unwrap();
    assert_eq!(w.flush().unwrap().inserted, 4);
    let mut admin = postgres::Client::connect(&schema.url, postgres::NoTls).unwrap();
    let partitions: Vec<(String, i64)> = admin
        .query("SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1 ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [("events_2024_06", 2), ("events_2024_07", 1), ("events_other", 1)];
    assert_eq!(partitions, expected.map(|(p, n)| (p.to_owned(), n)));
    let all = store.events(&EventQuery { visible: Visibility::All, limit: 10, ..Default::default() }).unwrap();
    assert_eq!(all.len(), 4);
    // A second writer of the same events finds them stored, in every partition.
    store.begin_processing(report.id).unwrap();
    let mut w = store.event_writer(report.id, &Event::default(), Distribution::Affected).unwrap();
    let rows = times
        .iter()
        .map(|t| Row::new(&record(&[("source.ip", "192.0.2.1"), ("time.source", t)], 0), &Event::default()));
    w.write(rows.clone().chain(rows).collect(), vec![]).unwrap();
    assert_eq!(w.flush().unwrap(), farol_store::Written { inserted: 4, duplicates: 4 });
}

/// TLS to the database: with `sslmode=require` farol speaks TLS and checks the server's
/// certificate against `sslrootcert` and its name; another CA or another name is refused.
/// `FAROL_TEST_POSTGRES_TLS_URL` names the server by the name its certificate holds.
#[test]
fn postgres_speaks_tls_and_checks_the_server() {
    let Ok(url) = std::env::var("FAROL_TEST_POSTGRES_TLS_URL") else {
        assert!(
            std::env::var_os("FAROL_REQUIRE_POSTGRES").is_none(),
            "FAROL_REQUIRE_POSTGRES is set but FAROL_TEST_POSTGRES_TLS_URL names no server"
        );
        return;
    };
    let plain = std::env::var("FAROL_TEST_POSTGRES_URL").unwrap();
    let schema = PostgresSchema::create(&format!("{url}&application_name=farol_tls_test"), "farol_tls_test")
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let store = schema.open();
    store.orgs().unwrap();
    let mut admin = postgres::Client::connect(&plain, postgres::NoTls).unwrap();
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE s.ssl AND a.application_name = 'farol_tls_test'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(encrypted > 0, "the store's connections are encrypted");

    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&other, ca.cert.pem()).unwrap();
    let root = url.split("sslrootcert=").nth(1).unwrap().split('&').next().unwrap();
    let refused = |url: &str| farol_store::PostgresStore::open(url).unwrap_err().to_string();
    let err = refused(&url.replace(root, other.to_str().unwrap()));
    assert!(err.contains("certificate"), "{err}");
    let err = refused(&url.replace("localhost", "127.0.0.1"));
    assert!(err.contains("certificate"), "{err}");
    let err = refused(&url.replace("sslmode=require", "sslmode=verify-ca"));
    assert!(err.contains("farol knows disable"), "{err}");
}

/// A store migrated by a newer farol is refused, not written with an older schema.
#[test]
fn postgres_refuses_a_store_from_a_newer_farol() {
    let Some(schema) = PostgresSchema::new() else { return };
    drop(schema.open());
    let mut admin = postgres::Client::connect(&schema.url, postgres::NoTls).unwrap();
    admin.batch_execute("UPDATE farol_schema SET version = 99").unwrap();
    let err = farol_store::PostgresStore::open(&schema.url).unwrap_err().to_string();
    assert!(err.contains("schema version 99, newer than this farol knows"), "{err}");
    assert_eq!(farol_store::Location::Postgres(schema.url.clone()).schema_version().unwrap().0, 99);
}

/// Events stored before PostgreSQL kept statistics (schema version 2) are counted when the
/// store migrates: the rollups then answer as if they had been kept all along.
#[test]
fn postgres_counts_the_events_of_an_older_store_on_migrating() {
    use farol_model::{Routing, Scope};
    use farol_store::{Breakdown, HostQuery, HostScope};
    let Some(schema) = PostgresSchema::new() else { return };
    let store = schema.open();
    let a = store.add_org(&org("A", &[])).unwrap();
    let Archived::New(report) = archive(&store, "f", b"x") else { panic!() };
    store.begin_processing(report.id).unwrap();
    let mut w = store.event_writer(report.id, &Event::default(), Distribution::Affected).unwrap();
    let rows = (0..6u8)
        .map(|i| {
            let time = format!("2024-06-0{}T10:00:00Z", 1 + i % 2);
            let mut r = record(&[("source.ip", &format!("192.0.2.{}", i % 5)), ("time.source", &time)], 0);
            r.routing = Routing { orgs: if i < 3 { vec![a] } else { vec![] }, scope: Scope::Org };
            Row::new(&r, &Event::default())
        })
        .collect();
    w.write(rows, vec![]).unwrap();
    w.flush().unwrap();
    let day = Timestamp::parse("2024-06-01").unwrap().day();
    let counts = |store: &dyn Store| {
        [HostScope::All, HostScope::Orgs(vec![a])].map(|scope| {
            let q = HostQuery { scope, from_day: day, to_day: day + 1, types: vec![], family: None, max_tlp: None };
            store.host_breakdown(&q, Breakdown::Day).unwrap()
        })
    };
    let before = counts(&store);
    assert_eq!(before[0].iter().map(|c| c.events).sum::<u64>(), 6);
    drop(store);
    let mut admin = postgres::Client::connect(&schema.url, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "DROP TABLE host_days, population, community_members, indicator_orgs, indicator_sightings,
                        indicator_mark, indicators, communities;
             UPDATE farol_schema SET version = 2",
        )
        .unwrap();
    assert_eq!(counts(&schema.open()), before);
}

/// `copy-store`: the store comes across as it was, ids included: events of both address
/// families, routed and aggregated ones, rejects, raw bytes, organizations, IP datasets,
/// collector states, statistics and denominators.
#[test]
fn a_sqlite_store_copies_into_postgresql_as_it_was() {
    use farol_model::org::OrgId;
    use farol_model::{Routing, Scope};
    let Some(schema) = PostgresSchema::new() else { return };
    let (dir, sqlite) = sqlite();
    let a = sqlite.add_org(&org("A", &[("prefix", "192.0.2.0/24")])).unwrap();
    let removed = sqlite.add_org(&org("Removed", &[])).unwrap();
    sqlite.remove_org(removed).unwrap();
    let Archived::New(report) = archive(&sqlite, "f", b"raw bytes") else { panic!() };
    sqlite.begin_processing(report.id).unwrap();
    let base = base_event();
    let mut w = sqlite.event_writer(report.id, &base, Distribution::Affected).unwrap();
    let mut rows = Vec::new();
    for (i, ip) in ["192.0.2.1", "2001:db8::7", "198.51.100.9"].iter().enumerate() {
        let mut r = record(&[("source.ip", ip), ("time.source", "2024-06-01T10:00:00Z")], i as u64 * 10);
        r.routing = if i == 0 { Routing { orgs: vec![a], scope: Scope::Org } } else { Routing::default() };
        let mut row = Row::new(&r, &base);
        if i == 2 {
            row.part = Some(farol_store::Part { count: 5, first_seen: 1, last_seen: 9 });
        }
        rows.push(row);
    }
    let reject = Reject::new(Position { offset: 30, len: 3, line: Some(4) }, "bad", b"xyz");
    w.write(rows, vec![reject]).unwrap();
    w.flush().unwrap();
    sqlite.finish_processing(report.id, &Outcome::default()).unwrap();
    sqlite.add_dataset(&dataset(b"ranges")).unwrap();
    sqlite.set_collector_state("f", "etag").unwrap();
    let population = farol_store::Population {
        scope: "country".into(),
        key: "PT".into(),
        metric: "internet-users".into(),
        valid_from: 19_000,
        value: 8_500_000.5,
    };
    sqlite.add_population(std::slice::from_ref(&population)).unwrap();

    let path = dir.path().join("farol.db");
    let copied = farol_store::sqlite_to_postgres(&path, &schema.url, &mut |_, _| {}).unwrap();
    assert!(copied.contains(&("events", 3)), "{copied:?}");
    let pg = schema.open();
    let all = EventQuery { visible: Visibility::All, limit: 10, ..Default::default() };
    let events = sqlite.events(&all).unwrap();
    assert_eq!(pg.events(&all).unwrap(), events);
    assert!(events.iter().any(|e| e.aggregate.is_some_and(|a| a.count == 5)));
    let of_a = EventQuery { org: Some(OrgId(a.0)), ..all.clone() };
    assert_eq!(pg.events(&of_a).unwrap().len(), 1);
    assert_eq!(pg.rejects(report.id, 10).unwrap(), sqlite.rejects(report.id, 10).unwrap());
    assert_eq!(pg.reports(None, 10).unwrap(), sqlite.reports(None, 10).unwrap());
    let mut raw = Vec::new();
    pg.raw(report.id).unwrap().read_to_end(&mut raw).unwrap();
    assert_eq!(raw, b"raw bytes");
    assert_eq!(pg.orgs().unwrap(), sqlite.orgs().unwrap());
    assert_eq!(pg.datasets(true).unwrap(), sqlite.datasets(true).unwrap());
    assert_eq!(pg.dataset_data(1).unwrap(), b"ranges");
    assert_eq!(pg.collector_state("f").unwrap().as_deref(), Some("etag"));
    // The statistics rollups and the denominators.
    assert_eq!(pg.population().unwrap(), [population]);
    let day = Timestamp::parse("2024-06-01").unwrap().day();
    for scope in [farol_store::HostScope::All, farol_store::HostScope::Orgs(vec![OrgId(a.0)])] {
        let q = farol_store::HostQuery {
            scope,
            from_day: day - 1,
            to_day: day + 1,
            types: vec![],
            family: None,
            max_tlp: None,
        };
        assert_eq!(
            pg.host_breakdown(&q, farol_store::Breakdown::Day).unwrap(),
            sqlite.host_breakdown(&q, farol_store::Breakdown::Day).unwrap()
        );
        assert!(pg.hosts(&q).unwrap().events > 0);
    }
    // Ids go on after the largest ever given, that of the removed organization included.
    assert!(pg.add_org(&org("B", &[])).unwrap().0 > removed.0);
}
