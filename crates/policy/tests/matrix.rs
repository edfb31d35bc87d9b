//! The authorization matrix: 21 users of every role across seven organizations, 600 events
//! across every TLP label, distribution and routing, and every user's view of every event
//! through the store's listing and detail queries, compared with a model written from the TLP
//! 2.0 definitions rather than from the policy's code.

#![allow(clippy::unwrap_used)]

mod fixture;

use std::collections::{BTreeMap, BTreeSet};

use farol_model::org::{Distribution, OrgId};
use farol_model::{Event, Position, Record, Routing, Timestamp};
use farol_policy::{Viewer, events};
use farol_store::{Archived, EventQuery, NewReport, Row};
use fixture::model;

#[test]
fn every_user_sees_exactly_what_the_model_allows() {
    farol_store::testing::on_every_backend(|store| {
        let (roles, stored) = fixture::populate(store);
        let users: Vec<Viewer> =
            roles.iter().enumerate().map(|(i, &(org, role))| Viewer { user: i as i64 + 1, org, role }).collect();

        let mut disagreements = Vec::new();
        for user in &users {
            let visible = events(user);
            let listed: BTreeSet<i64> = store
                .events(&EventQuery { visible: visible.clone(), limit: usize::MAX, ..Default::default() })
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect();
            // The dashboard's counts go through the same filter.
            let tally = store.tally(&EventQuery { visible: visible.clone(), ..Default::default() }).unwrap();
            let mut by_org: BTreeMap<OrgId, u64> = BTreeMap::new();
            for o in stored.iter().filter(|e| model(user, e)).flat_map(|e| &e.orgs) {
                *by_org.entry(*o).or_default() += 1;
            }
            let count = stored.iter().filter(|e| model(user, e)).count() as u64;
            if tally.events != count || tally.by_org != by_org {
                disagreements
                    .push(format!("{:?} of org {}: tally {tally:?}, model {count} {by_org:?}", user.role, user.org));
            }
            for e in &stored {
                let expected = model(user, e);
                let detail = store.event(e.id, &visible).unwrap().is_some();
                if listed.contains(&e.id) != expected || detail != expected {
                    disagreements.push(format!(
                        "{:?} of org {} on event {} ({:?}, {:?}, orgs {:?}): model {expected}, listing {}, detail {detail}",
                        user.role,
                        user.org,
                        e.id,
                        e.tlp,
                        e.distribution,
                        e.orgs,
                        listed.contains(&e.id)
                    ));
                }
            }
        }
        assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
        // The matrix exercises every kind of answer: some users see all, some part, some none.
        let seen: Vec<usize> = users.iter().map(|u| stored.iter().filter(|e| model(u, e)).count()).collect();
        assert!(seen.contains(&stored.len()) && seen.iter().any(|&n| n > 0 && n < stored.len()));
    });
}

/// A query whose visibility was not set sees nothing.
#[test]
fn a_query_without_a_viewer_sees_nothing() {
    farol_store::testing::on_every_backend(|store| {
        let new = NewReport { feed: "f".into(), format: "intelmq".into(), name: None, received_at: Timestamp::now() };
        let Archived::New(report) = store.archive(&new, &mut &b"x"[..], &mut |_| {}).unwrap() else { panic!() };
        store.begin_processing(report.id).unwrap();
        let mut w = store.event_writer(report.id, &Event::default(), Distribution::Partners).unwrap();
        let mut event = Event::default();
        event.set("source.ip", "192.0.2.1").unwrap();
        event.set("time.source", "2024-06-01T00:00:00Z").unwrap();
        event.set("tlp", "CLEAR").unwrap();
        let hash = event.hash();
        let record = Record { event, position: Position::default(), hash, routing: Routing::default() };
        w.write(vec![Row::new(&record, &Event::default())], vec![]).unwrap();
        w.flush().unwrap();
        let all = store
            .events(&EventQuery { visible: farol_store::Visibility::All, limit: 10, ..Default::default() })
            .unwrap();
        assert_eq!(all.len(), 1);
        assert!(store.events(&EventQuery { limit: 10, ..Default::default() }).unwrap().is_empty());
        assert!(store.event(all[0].id, &farol_store::Visibility::Nothing).unwrap().is_none());
    });
}

/// Indicators: every user's listing (and every TAXII collection a user may read) against the
/// model of the fixture, written from the TLP 2.0 definitions.
#[test]
fn every_user_sees_exactly_the_indicators_the_model_allows() {
    use farol_model::Tlp;
    use farol_model::indicator::Indicator;
    use farol_policy::{Collection, collections, indicators};
    use farol_store::IndicatorQuery;

    farol_store::testing::on_every_backend(|store| {
        let (roles, _) = fixture::populate(store);
        let (communities, stored) = fixture::populate_indicators(store);
        let orgs: Vec<OrgId> = store.orgs().unwrap().iter().map(|o| o.id).collect();
        let model = |v: &Viewer, i: &Indicator| fixture::indicator_model(v, i, &communities);
        let all = |grants| {
            let q = IndicatorQuery { grants, limit: usize::MAX, ..Default::default() };
            store.indicators(&q).unwrap().into_iter().map(|i| i.id).collect::<BTreeSet<i64>>()
        };
        let mut disagreements = Vec::new();
        for (n, &(org, role)) in roles.iter().enumerate() {
            let v = Viewer { user: n as i64 + 1, org, role };
            let listed = all(indicators(&v, &communities));
            let mut readable = BTreeSet::new();
            for c in collections(&v, &communities, &orgs) {
                let held = all(vec![c.grant()]);
                for i in stored.iter().filter(|i| held.contains(&i.id)) {
                    let community =
                        matches!(c, Collection::Community(_) | Collection::Constituency | Collection::Partners);
                    if !model(&v, i) || (community && i.tlp > Tlp::Green) {
                        disagreements.push(format!("{role:?} of {org} reads {} ({:?}) in {c:?}", i.id, i.tlp));
                    }
                }
                readable.extend(held);
            }
            for i in &stored {
                if listed.contains(&i.id) != model(&v, i) {
                    disagreements.push(format!(
                        "{role:?} of {org} on indicator {} ({:?}, {:?}, community {:?}, orgs {:?}): model {}",
                        i.id,
                        i.tlp,
                        i.distribution,
                        i.community,
                        i.orgs,
                        model(&v, i)
                    ));
                }
            }
            if !role.is_center() && readable != listed {
                disagreements
                    .push(format!("{role:?} of {org}: the collections hold other indicators than the listing"));
            }
        }
        assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
        let seen: Vec<usize> = (roles.iter().enumerate())
            .map(|(n, &(org, role))| stored.iter().filter(|i| model(&Viewer { user: n as i64, org, role }, i)).count())
            .collect();
        assert!(seen.contains(&stored.len()) && seen.iter().any(|&n| n > 0 && n < stored.len()));
    });
}
