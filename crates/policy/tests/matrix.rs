//! The authorization matrix: 21 users of every role across seven organizations, 600 events
//! across every TLP label, distribution and routing, and every user's view of every event
//! through the store's listing and detail queries, compared with a model written from the TLP
//! 2.0 definitions rather than from the policy's code.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use farol_model::org::{Distribution, Org, OrgId, Role, Sector};
use farol_model::{Event, Position, Record, Routing, Scope, Timestamp, Tlp};
use farol_policy::{Viewer, events};
use farol_store::{Archived, EventQuery, NewReport, Outcome, Row, SqliteStore, Store};

struct Stored {
    id: i64,
    tlp: Tlp,
    distribution: Distribution,
    orgs: Vec<OrgId>,
}

/// Whether `user` may see the event, case by case from the TLP definitions: RED for named
/// recipients only, AMBER and AMBER+STRICT for the recipient organization (here: an affected
/// one), GREEN and CLEAR for the community the distribution names.
fn model(user: &Viewer, e: &Stored) -> bool {
    if matches!(user.role, Role::Admin | Role::Analyst) {
        return true;
    }
    let partner = user.role == Role::Partner;
    let affected = !partner && e.orgs.contains(&user.org) && e.distribution != Distribution::Producer;
    let community = match e.distribution {
        Distribution::Producer | Distribution::Affected | Distribution::Community => false,
        Distribution::Constituents => !partner,
        Distribution::Partners => true,
    };
    match e.tlp {
        Tlp::Red => false,
        Tlp::AmberStrict | Tlp::Amber => affected,
        Tlp::Green | Tlp::Clear => affected || community,
    }
}

/// A small deterministic generator: the matrix is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn every_user_sees_exactly_what_the_model_allows() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("farol.db")).unwrap();
    let org = |name: &str, sector| {
        let org = Org { id: OrgId(0), name: name.into(), sector, handle: None, assets: vec![], contacts: vec![] };
        store.add_org(&org).unwrap()
    };
    let center = org("CERT", Sector::NationalCenter);
    let constituents: Vec<OrgId> = (0..5).map(|i| org(&format!("Org {i}"), Sector::Health)).collect();
    let partner = org("Partner CERT", Sector::InternationalPartner);

    let mut users = Vec::new();
    let mut add = |org: OrgId, role: Role| users.push(Viewer { user: users.len() as i64 + 1, org, role });
    for role in [Role::Admin, Role::Admin, Role::Analyst, Role::Analyst] {
        add(center, role);
    }
    for &o in &constituents {
        add(o, Role::OrgAdmin);
        add(o, Role::OrgMember);
        add(o, Role::OrgMember);
    }
    add(partner, Role::Partner);
    add(partner, Role::Partner);
    assert!(users.len() >= 20);

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut stored = Vec::new();
    for (n, &distribution) in Distribution::ALL.iter().enumerate() {
        let new = NewReport { feed: "f".into(), format: "intelmq".into(), name: None, received_at: Timestamp::now() };
        let Archived::New(report) = store.archive(&new, &mut format!("report {n}").as_bytes(), &mut |_| {}).unwrap()
        else {
            panic!("a new report")
        };
        store.begin_processing(report.id).unwrap();
        let mut writer = store.event_writer(report.id, &Event::default(), distribution).unwrap();
        let mut rows = Vec::new();
        let mut planned = Vec::new();
        for i in 0..120u64 {
            let tlp = Tlp::ALL[rng.below(5) as usize];
            let orgs: BTreeSet<OrgId> = (0..rng.below(3)).map(|_| constituents[rng.below(5) as usize]).collect();
            let mut event = Event::default();
            event.set("source.ip", &format!("10.{n}.{}.{}", i / 250, i % 250)).unwrap();
            event.set("time.source", &format!("2024-06-0{}T10:{:02}:00Z", n + 1, i % 60)).unwrap();
            event.set("tlp", tlp.as_str()).unwrap();
            event.validate().unwrap();
            let hash = event.hash();
            let orgs: Vec<OrgId> = orgs.into_iter().collect();
            let scope = if orgs.is_empty() { Scope::National } else { Scope::Org };
            let record = Record {
                event,
                position: Position { offset: i, len: 1, line: None },
                hash,
                routing: Routing { orgs: orgs.clone(), scope },
            };
            rows.push(Row::new(&record, &Event::default()));
            planned.push((tlp, orgs));
        }
        writer.write(rows, vec![]).unwrap();
        writer.flush().unwrap();
        store.finish_processing(report.id, &Outcome::default()).unwrap();
        let mut ids: Vec<i64> = store
            .events(&EventQuery {
                visible: farol_store::Visibility::All,
                report: Some(report.id),
                limit: usize::MAX,
                ..Default::default()
            })
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        ids.sort_unstable();
        assert_eq!(ids.len(), planned.len());
        for (id, (tlp, orgs)) in ids.into_iter().zip(planned) {
            stored.push(Stored { id, tlp, distribution, orgs });
        }
    }
    assert!(stored.len() >= 500);

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
}

/// A query whose visibility was not set sees nothing.
#[test]
fn a_query_without_a_viewer_sees_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("farol.db")).unwrap();
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
    let all =
        store.events(&EventQuery { visible: farol_store::Visibility::All, limit: 10, ..Default::default() }).unwrap();
    assert_eq!(all.len(), 1);
    assert!(store.events(&EventQuery { limit: 10, ..Default::default() }).unwrap().is_empty());
    assert!(store.event(all[0].id, &farol_store::Visibility::Nothing).unwrap().is_none());
}
