//! Aggregation against an obviously correct model: whatever the observations, however they are
//! split into reports and batches, and however often reports are processed again, each key and
//! window is one event whose count, first and last seen are those of its observations.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use farol_model::Timestamp;
use farol_pipeline::{Aggregation, Feed, Ingested, Input, LEASE, Lease, Quiet, ingest, process};
use farol_store::{EventQuery, SqliteStore, Store};
use proptest::prelude::*;

const WINDOW: i64 = 3600;
const START: i64 = 1_717_200_000; // 2024-06-01T00:00:00Z

/// One observation: which address, which malware, which port, seconds after START.
type Obs = (u8, u8, u8, i64);

fn line(&(ip, id, port, t): &Obs) -> String {
    let time = Timestamp::from_micros((START + t) * 1_000_000).unwrap();
    format!(
        r#"{{"source.ip": "192.0.2.{ip}", "classification.identifier": "bot{id}", "destination.port": {}, "time.source": "{time}", "classification.type": "infected-system"}}"#,
        80 + u16::from(port)
    )
}

fn feed() -> Feed {
    let key = ["source.ip", "classification.identifier", "destination.port"].map(String::from);
    Feed { aggregate: Some(Aggregation::new(&key, WINDOW).unwrap()), ..Feed::adhoc("sinkhole", Some("intelmq")) }
}

/// An aggregate's key in the model: address, identifier, port and window.
type Key = (u8, u8, u8, i64);
/// What the model expects of it: observations, first and last seen.
type Seen = (u64, i64, i64);

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn aggregation_agrees_with_a_model(
        obs in proptest::collection::vec((0u8..3, 0u8..2, 0u8..2, 0i64..4 * WINDOW), 1..120),
        cuts in proptest::collection::vec(0usize..120, 0..4),
        again in proptest::collection::vec(0usize..5, 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("farol.db")).unwrap();
        let feed = feed();
        // Split the observations into reports at the cut points.
        let mut bounds: BTreeSet<usize> = cuts.into_iter().map(|c| c % obs.len()).collect();
        bounds.insert(0);
        bounds.insert(obs.len());
        let bounds: Vec<usize> = bounds.into_iter().collect();
        let mut model: BTreeMap<Key, Seen> = BTreeMap::new();
        let mut seen_bytes = BTreeSet::new();
        let mut reports = Vec::new();
        for w in bounds.windows(2) {
            let part = &obs[w[0]..w[1]];
            let text: String = part.iter().map(|o| line(o) + "\n").collect();
            let ingested = ingest(&store, &feed, Input { reader: Box::new(text.as_bytes()), name: None, size: None, queue: false }, &[], &Quiet).unwrap();
            match ingested {
                Ingested::Processed(s) => {
                    prop_assert!(seen_bytes.insert(text.clone()));
                    let c = s.report.counts;
                    prop_assert_eq!(c.events + c.duplicates, part.len() as u64, "every observation is counted");
                    reports.push(s.report);
                    for &(ip, id, port, t) in part {
                        let e = model.entry((ip, id, port, t.div_euclid(WINDOW))).or_insert((0, i64::MAX, i64::MIN));
                        *e = (e.0 + 1, e.1.min(t), e.2.max(t));
                    }
                }
                Ingested::AlreadyIngested(_) => prop_assert!(seen_bytes.contains(&text)),
                Ingested::Queued(_) => prop_assert!(false, "nothing was queued"),
            }
        }
        // Processing reports again changes nothing.
        for i in again {
            if let Some(r) = reports.get(i % reports.len().max(1)) {
                process(&Lease::take(&store, r.id, LEASE).unwrap(), &feed, &[], &Quiet).unwrap();
            }
        }
        let events = store.events(&EventQuery { visible: farol_store::Visibility::All, limit: 10_000, ..EventQuery::default() }).unwrap();
        let mut stored = BTreeMap::new();
        for e in &events {
            let a = e.aggregate.expect("aggregated events carry their counts");
            let ip = e.event.source_ip.unwrap().to_string().rsplit('.').next().unwrap().parse::<u8>().unwrap();
            let id = e.event.classification_identifier.as_deref().unwrap()[3..].parse::<u8>().unwrap();
            let port = (e.event.destination_port.unwrap() - 80) as u8;
            let first = a.first_seen.micros() / 1_000_000 - START;
            let last = a.last_seen.micros() / 1_000_000 - START;
            // Filed under the start of its window.
            prop_assert_eq!(e.cursor().time.rem_euclid(WINDOW * 1_000_000), 0);
            prop_assert!(stored.insert((ip, id, port, first.div_euclid(WINDOW)), (a.count, first, last)).is_none());
        }
        prop_assert_eq!(stored, model);
    }
}

#[test]
fn the_key_must_hold_the_address() {
    assert!(Aggregation::new(&["classification.identifier".into()], 60).unwrap_err().contains("source.ip"));
    assert!(Aggregation::new(&["source.ip".into(), "nope".into()], 60).unwrap_err().contains("nope"));
    assert!(Aggregation::new(&["source.ip".into()], 0).is_err());
}
