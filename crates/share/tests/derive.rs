//! Deriving indicators from stored events: what the rules pick, how sightings add up, and that
//! deriving again or processing a report again never counts an event twice.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use farol_model::indicator::{Community, Indicator, IndicatorKind};
use farol_model::org::Distribution;
use farol_model::{Event, Position, Record, ReportId, Routing, Timestamp, Tlp};
use farol_share::{FeedSharing, Rule, derive};
use farol_store::{Archived, Grant, IndicatorQuery, NewReport, Outcome, Row, Store};

/// Archives a report of `feed` with these events (field pairs) and, when `process`, writes
/// them as its events.
fn report(store: &dyn Store, feed: &str, n: u32, events: &[&[(&str, &str)]], process: bool) -> ReportId {
    let new = NewReport { feed: feed.into(), format: "intelmq".into(), name: None, received_at: Timestamp::now() };
    let Archived::New(report) = store.archive(&new, &mut format!("{feed} {n}").as_bytes(), &mut |_| {}).unwrap() else {
        panic!("new bytes")
    };
    if process {
        write(store, report.id, feed, events);
    }
    report.id
}

/// Writes a report's events as the pipeline would, each with its feed's name.
fn write(store: &dyn Store, id: ReportId, feed: &str, events: &[&[(&str, &str)]]) {
    store.begin_processing(id).unwrap();
    let mut writer = store.event_writer(id, &Event::default(), Distribution::Affected).unwrap();
    let rows = events
        .iter()
        .enumerate()
        .map(|(i, pairs)| {
            let mut event = Event::default();
            event.set("feed.name", feed).unwrap();
            for (k, v) in *pairs {
                event.set(k, v).unwrap();
            }
            event.validate().unwrap();
            let hash = event.hash();
            let record = Record {
                event,
                position: Position { offset: i as u64, len: 1, line: None },
                hash,
                routing: Routing::default(),
            };
            Row::new(&record, &Event::default())
        })
        .collect();
    writer.write(rows, vec![]).unwrap();
    writer.flush().unwrap();
    store.finish_processing(id, &Outcome::default()).unwrap();
}

fn all(store: &dyn Store) -> Vec<Indicator> {
    store.indicators(&IndicatorQuery { grants: vec![Grant::All], limit: usize::MAX, ..Default::default() }).unwrap()
}

fn find<'a>(all: &'a [Indicator], value: &str) -> &'a Indicator {
    all.iter().find(|i| i.value == value).unwrap_or_else(|| panic!("no indicator {value} in {all:?}"))
}

const C2: &[(&str, &str)] = &[
    ("classification.type", "c2-server"),
    ("classification.taxonomy", "malicious-code"),
    ("source.ip", "192.0.2.1"),
    ("source.fqdn", "C2.Example."),
    ("malware.name", "emotet"),
    ("time.source", "2026-10-01T10:00:00Z"),
    ("tlp", "GREEN"),
];

#[test]
fn indicators_follow_the_events_once_each() {
    farol_store::testing::on_every_backend(|store| {
        let isac = store
            .add_community(&Community { id: 0, name: "isac".into(), description: String::new(), members: vec![] })
            .unwrap();
        let feeds: HashMap<String, FeedSharing> = [
            ("feodo", Distribution::Constituents, None),
            ("isac-feed", Distribution::Community, Some("isac")),
            ("lost", Distribution::Community, Some("no-such-community")),
        ]
        .into_iter()
        .map(|(f, distribution, c)| (f.to_owned(), FeedSharing { distribution, community: c.map(str::to_owned) }))
        .collect();
        let rules = Rule::defaults();
        let now = Timestamp::from_ymd_hms(2026, 10, 10, 0, 0, 0).unwrap();

        let later: &[(&str, &str)] = &[
            ("classification.type", "c2-server"),
            ("source.ip", "192.0.2.1"),
            ("time.source", "2026-10-03T10:00:00Z"),
            ("tlp", "AMBER"),
            ("feed.accuracy", "95"),
        ];
        let phishing: &[(&str, &str)] = &[
            ("classification.type", "phishing"),
            ("source.url", "http://bank.example.net/login"),
            ("time.source", "2026-10-02T10:00:00Z"),
        ];
        let bot: &[(&str, &str)] = &[
            ("classification.type", "infected-system"),
            ("source.ip", "198.51.100.9"),
            ("time.source", "2026-10-02T10:00:00Z"),
        ];
        let first = report(store, "feodo", 1, &[C2, later, phishing, bot], true);
        let d = derive(store, &rules, &feeds, now).unwrap();
        assert_eq!((d.reports, d.sightings), (1, 3), "{d:?}");
        let got = all(store);
        assert_eq!(got.len(), 3, "the bot's address is a victim, not an indicator: {got:?}");
        let ip = find(&got, "192.0.2.1");
        assert_eq!((ip.kind, ip.sightings, ip.tlp, ip.confidence), (IndicatorKind::Ip, 2, Tlp::Amber, 95));
        assert_eq!(ip.family.as_deref(), Some("emotet"));
        assert_eq!(ip.distribution, Distribution::Constituents);
        assert_eq!(ip.first_seen, Timestamp::parse("2026-10-01T10:00:00Z").unwrap());
        assert_eq!(ip.last_seen, Timestamp::parse("2026-10-03T10:00:00Z").unwrap());
        assert_eq!(ip.valid_until, ip.last_seen.add_secs(30 * 86_400));
        assert_eq!(find(&got, "c2.example").kind, IndicatorKind::Domain);
        assert_eq!(find(&got, "http://bank.example.net/login").kind, IndicatorKind::Url);
        // Searching ignores case, and its text is taken literally.
        let search = |text: &str| -> Vec<String> {
            let q =
                IndicatorQuery { grants: vec![Grant::All], search: Some(text.into()), limit: 10, ..Default::default() };
            store.indicators(&q).unwrap().into_iter().map(|i| i.value).collect()
        };
        assert_eq!(search("BANK.Example"), ["http://bank.example.net/login"]);
        assert!(search("bank%login").is_empty() && search("c2_example").is_empty());
        assert_eq!(store.indicator_mark().unwrap(), first.0);

        // Nothing new: nothing changes, not even a version.
        assert_eq!(derive(store, &rules, &feeds, now).unwrap().reports, 0);
        assert_eq!(all(store), got);

        // Processing the report again forgets and derives it again: still two sightings.
        write(store, first, "feodo", &[C2, later, phishing, bot]);
        assert_eq!(store.indicator_mark().unwrap(), first.0 - 1);
        derive(store, &rules, &feeds, now).unwrap();
        let again = all(store);
        assert_eq!(find(&again, "192.0.2.1").sightings, 2);
        assert!(find(&again, "192.0.2.1").modified > ip.modified, "a new version");

        // A report still being received holds back the ones after it.
        let pending = report(store, "feodo", 2, &[], false);
        let shared = report(store, "isac-feed", 3, &[C2], true);
        assert_eq!(derive(store, &rules, &feeds, now).unwrap().reports, 0);
        // (The same event again would be a duplicate, stored once: not a new sighting.)
        let fourth: &[(&str, &str)] = &[
            ("classification.type", "c2-server"),
            ("source.ip", "192.0.2.1"),
            ("time.source", "2026-10-04T10:00:00Z"),
        ];
        write(store, pending, "feodo", &[fourth]);
        let d = derive(store, &rules, &feeds, now).unwrap();
        assert_eq!(d.reports, 2);
        assert_eq!(store.indicator_mark().unwrap(), shared.0);
        let got = all(store);
        assert_eq!(find(&got, "192.0.2.1").sightings, 3);
        let from_isac: Vec<_> = got.iter().filter(|i| i.origin.to_string() == "feed:isac-feed").collect();
        assert_eq!(from_isac.len(), 2);
        assert!(from_isac.iter().all(|i| i.distribution == Distribution::Community && i.community == Some(isac.id)));

        // A community that does not exist shares with nobody.
        report(store, "lost", 4, &[C2], true);
        derive(store, &rules, &feeds, now).unwrap();
        let lost: Vec<_> = all(store).into_iter().filter(|i| i.origin.to_string() == "feed:lost").collect();
        assert!(!lost.is_empty() && lost.iter().all(|i| i.distribution == Distribution::Producer), "{lost:?}");
    });
}

#[test]
fn versions_page_without_gaps() {
    farol_store::testing::on_every_backend(|store| {
        let now = Timestamp::now();
        let events: Vec<Vec<(String, String)>> = (0..50)
            .map(|n| {
                vec![
                    ("classification.type".to_owned(), "scanner".to_owned()),
                    ("source.ip".to_owned(), format!("203.0.113.{n}")),
                    ("time.source".to_owned(), "2026-10-01T10:00:00Z".to_owned()),
                ]
            })
            .collect();
        let borrowed: Vec<Vec<(&str, &str)>> =
            events.iter().map(|e| e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()).collect();
        let slices: Vec<&[(&str, &str)]> = borrowed.iter().map(Vec::as_slice).collect();
        report(store, "scans", 1, &slices, true);
        derive(store, &Rule::defaults(), &HashMap::new(), now).unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let q = IndicatorQuery { grants: vec![Grant::All], after, limit: 7, ..Default::default() };
            let page = store.indicators(&q).unwrap();
            let Some(last) = page.last() else { break };
            after = Some(farol_store::Version { modified: last.modified.micros(), id: last.id });
            seen.extend(page.into_iter().map(|i| i.value));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 50);
        // For people, the newest first: the same versions the other way round.
        let oldest = all(store);
        let q =
            IndicatorQuery { grants: vec![Grant::All], newest_first: true, limit: usize::MAX, ..Default::default() };
        let newest: Vec<_> = store.indicators(&q).unwrap().into_iter().rev().collect();
        assert_eq!(newest, oldest);
        // Every version is its own: one time, one indicator.
        let mut versions: Vec<i64> = all(store).iter().map(|i| i.modified.micros()).collect();
        versions.dedup();
        assert_eq!(versions.len(), 50);
    });
}

#[test]
fn putting_the_same_indicator_again_keeps_its_version() {
    farol_store::testing::on_every_backend(|store| {
        report(store, "feodo", 1, &[C2], true);
        derive(store, &Rule::defaults(), &HashMap::new(), Timestamp::now()).unwrap();
        let before = all(store);
        for i in &before {
            assert_eq!(store.put_indicator(i, Timestamp::now()).unwrap().modified, i.modified, "{i:?}");
        }
        let mut changed = before[0].clone();
        changed.revoked = true;
        let after = store.put_indicator(&changed, Timestamp::now()).unwrap();
        assert!(after.modified > before[0].modified && after.revoked);
        assert_eq!(all(store).len(), before.len());
    });
}
