//! What the server tests share: a store with organizations, users and events, and a server
//! on a free port of 127.0.0.1.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use farol_model::indicator::{Indicator, IndicatorKind, Origin};
use farol_model::org::{Distribution, Org, OrgId, Role, Sector};
use farol_model::{ClassificationType, Event, Position, Record, Routing, Scope, Timestamp, Tlp};
use farol_pipeline::Feed;
use farol_server::{App, Config, auth};
use farol_store::{Archived, NewReport, Outcome, Row, SqliteStore, Store, TokenScope, User};
use reqwest::redirect;

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    pub(crate) http: reqwest::Client,
}

pub(crate) fn org(store: &dyn Store, name: &str, sector: Sector) -> OrgId {
    let o = Org { id: OrgId(0), name: name.into(), sector, handle: None, assets: vec![], contacts: vec![] };
    store.add_org(&o).unwrap()
}

pub(crate) fn user(store: &dyn Store, email: &str, org: OrgId, role: Role) -> User {
    let u = User {
        id: 0,
        email: email.into(),
        org,
        role,
        password: Some(auth::hash_password("a good long passphrase").unwrap()),
        totp: None,
        disabled: false,
        failures: 0,
        locked_until: None,
        created_at: Timestamp::now(),
    };
    store.add_user(&u).unwrap()
}

pub(crate) fn token(store: &dyn Store, user: &User, scope: TokenScope) -> String {
    let (secret, t) = auth::make_token(user, "test", scope, None).unwrap();
    store.add_token(&auth::digest(&secret), &t).unwrap();
    secret
}

/// One event for each organization, AMBER, distributed to the affected organizations.
pub(crate) fn events(store: &dyn Store, orgs: &[OrgId]) -> Vec<i64> {
    events_at(store, orgs, "2024-06-01T10:00:00Z")
}

/// [`events`] at the time `at`.
pub(crate) fn events_at(store: &dyn Store, orgs: &[OrgId], at: &str) -> Vec<i64> {
    let new =
        NewReport { feed: "sinkhole".into(), format: "intelmq".into(), name: None, received_at: Timestamp::now() };
    let raw = format!("raw report at {at}");
    let Archived::New(report) = store.archive(&new, &mut raw.as_bytes(), &mut |_| {}).unwrap() else { panic!() };
    store.begin_processing(report.id).unwrap();
    let mut w = store.event_writer(report.id, &Event::default(), Distribution::Affected).unwrap();
    let mut rows = Vec::new();
    for (i, &o) in orgs.iter().enumerate() {
        let mut e = Event::default();
        e.set("source.ip", &format!("192.0.2.{i}")).unwrap();
        e.set("time.source", at).unwrap();
        e.set("classification.type", "infected-system").unwrap();
        e.set("tlp", "AMBER").unwrap();
        let hash = e.hash();
        let r = Record {
            event: e,
            position: Position::default(),
            hash,
            routing: Routing { orgs: vec![o], scope: Scope::Org },
        };
        rows.push(Row::new(&r, &Event::default()));
    }
    w.write(rows, vec![]).unwrap();
    w.flush().unwrap();
    store.finish_processing(report.id, &Outcome::default()).unwrap();
    let all = store
        .events(&farol_store::EventQuery { visible: farol_store::Visibility::All, limit: 100, ..Default::default() })
        .unwrap();
    // In the order of `orgs`: the addresses say which.
    let mut ids: Vec<(String, i64)> = all.iter().map(|e| (e.event.source_ip.unwrap().to_string(), e.id)).collect();
    ids.sort();
    ids.into_iter().map(|(_, id)| id).collect()
}

pub(crate) async fn start() -> Server {
    start_with(None, client()).await
}

/// A server over TLS when `tls` is given; `http` is the client to talk to it with.
pub(crate) async fn start_with(tls: Option<farol_server::tls::Tls>, http: reqwest::ClientBuilder) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("farol.db")).unwrap());
    let feeds = BTreeMap::from([("sinkhole".to_owned(), Feed::adhoc("sinkhole", Some("intelmq")))]);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let notify = Arc::new(farol_server::Notify {
        settings: farol_notify::Settings { center: "CERT Test".into(), ..Default::default() },
        writer: Arc::new(farol_notify::Writer {
            templates: Arc::new(farol_notify::Templates::load(None).unwrap()),
            signer: None,
        }),
        sends: false,
    });
    let config = Config {
        center: "CERT Test".into(),
        tls,
        feeds,
        experts: Arc::new(|_: &Feed| Vec::new()),
        notify,
        incidents: farol_model::incident::Handling {
            playbooks: BTreeMap::from([(
                "phishing".into(),
                vec!["Take the site down".into(), "Check it is down".into()],
            )]),
            ..Default::default()
        },
        stats: farol_server::StatsConfig { country: Some("PT".into()), ..Default::default() },
        queue: false,
    };
    let app = App::new(Arc::clone(&store), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("{scheme}://{}", listener.local_addr().unwrap());
    tokio::spawn(farol_server::serve(listener, app, std::future::pending()));
    let http = http.redirect(redirect::Policy::none()).build().unwrap();
    Server { base, store, _dir: dir, http }
}

/// An HTTP client. (Another crate of the workspace asks reqwest for rustls without a
/// cryptography provider, and features are shared: the tests install one.)
pub(crate) fn client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A command-and-control address of the Emotet family, from a feed, seen now.
pub(crate) fn indicator(
    value: &str,
    tlp: Tlp,
    distribution: Distribution,
    community: Option<i64>,
    orgs: &[OrgId],
) -> Indicator {
    let now = Timestamp::now();
    Indicator {
        id: 0,
        kind: IndicatorKind::Ip,
        value: value.into(),
        category: ClassificationType::C2Server,
        family: Some("emotet".into()),
        tlp,
        distribution,
        community,
        orgs: orgs.to_vec(),
        confidence: 80,
        valid_from: now,
        valid_until: None,
        first_seen: now,
        last_seen: now,
        sightings: 2,
        origin: Origin::Feed("feodo".into()),
        description: None,
        created: now,
        modified: now,
        revoked: false,
    }
}
