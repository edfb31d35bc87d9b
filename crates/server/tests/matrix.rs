//! The authorization matrix through HTTP: the data and model of the store-level matrix
//! (`crates/policy/tests/fixture`), with a real user and token for each of its 21 users, and
//! every user's view of every event through the API's listing (page by page) and detail, and
//! the portal's event page; and the indicators of the same users through the API, every export
//! format and TAXII. The answers are compared with the model, not with the policy.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../policy/tests/fixture/mod.rs"]
mod fixture;

use std::collections::BTreeSet;

use common::{start, token, user};
use farol_model::org::Role;
use farol_policy::Viewer;
use farol_store::TokenScope;
use fixture::model;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_user_sees_through_http_exactly_what_the_model_allows() {
    let s = start().await;
    let (roles, stored) = fixture::populate(s.store.as_ref());
    let mut users = Vec::new();
    for (i, &(org, role)) in roles.iter().enumerate() {
        let u = user(s.store.as_ref(), &format!("user{i}@matrix.example"), org, role);
        let secret = token(s.store.as_ref(), &u, TokenScope::Read);
        users.push((Viewer { user: u.id, org, role }, secret));
    }
    let get =
        |path: String, secret: &str| s.http.get(format!("{}{path}", s.base)).bearer_auth(secret.to_owned()).send();

    let mut disagreements = Vec::new();
    for (viewer, secret) in &users {
        let expected: BTreeSet<i64> = stored.iter().filter(|e| model(viewer, e)).map(|e| e.id).collect();
        // The listing, in pages of an odd size, newest first without repeats.
        let mut listed = Vec::new();
        let mut next = String::new();
        loop {
            let page: serde_json::Value =
                get(format!("/api/v1/events?limit=37{next}"), secret).await.unwrap().json().await.unwrap();
            listed.extend(page["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()));
            match page["next"].as_str() {
                Some(cursor) => next = format!("&after={cursor}"),
                None => break,
            }
        }
        let set: BTreeSet<i64> = listed.iter().copied().collect();
        if set.len() != listed.len() || set != expected {
            disagreements.push(format!(
                "{:?} of org {}: listing {} events, model {}",
                viewer.role,
                viewer.org,
                listed.len(),
                expected.len()
            ));
        }
        // Every event's detail, in the API and in the portal: 200 or "not found", never "forbidden".
        for e in &stored {
            let want = if expected.contains(&e.id) { StatusCode::OK } else { StatusCode::NOT_FOUND };
            for path in [format!("/api/v1/events/{}", e.id), format!("/events/{}", e.id)] {
                let got = get(path.clone(), secret).await.unwrap().status();
                if got != want {
                    disagreements
                        .push(format!("{:?} of org {} GET {path}: {got}, model {want}", viewer.role, viewer.org));
                }
            }
        }
    }
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
    // Every role took part, and the answers were of every kind.
    assert!(users.len() >= 20 && Role::ALL.iter().all(|r| users.iter().any(|(v, _)| v.role == *r)));
    let seen: Vec<usize> = users.iter().map(|(v, _)| stored.iter().filter(|e| model(v, e)).count()).collect();
    assert!(seen.contains(&stored.len()) && seen.iter().any(|&n| n > 0 && n < stored.len()));
}

/// Incidents, their timelines and their files, and the center's pages, through HTTP: every
/// user of the matrix against a model written here. An organization's users see the incidents
/// that concern their organization up to TLP:AMBER+STRICT, and in them the comments and
/// correspondence of the center and of their own organization, with those entries' files; the
/// center sees everything; partners nothing. Only the center reaches the notifications page,
/// the saved searches and the handling of incidents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_their_timelines_and_files_reach_exactly_whom_the_model_allows() {
    use farol_model::Tlp;
    use farol_model::incident::{Entry, EntryKind, Incident, NewFile, Severity};
    use farol_model::org::OrgId;
    use farol_model::{ClassificationType, Timestamp};

    let s = start().await;
    let store = s.store.as_ref();
    let (roles, _) = fixture::populate(store);
    let mut users = Vec::new();
    for (i, &(org, role)) in roles.iter().enumerate() {
        let u = user(store, &format!("user{i}@matrix.example"), org, role);
        let secret = token(store, &u, TokenScope::Write);
        users.push((Viewer { user: u.id, org, role }, secret));
    }
    let constituents: Vec<OrgId> = users
        .iter()
        .filter(|(v, _)| v.role == Role::OrgMember)
        .map(|(v, _)| v.org)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let center = |role: Role| matches!(role, Role::Admin | Role::Analyst);

    // Incidents over every TLP and mix of organizations, each with an entry of every kind by
    // an author of every kind, and a file with each entry.
    let mut rng = fixture::Rng(0x2545_f491_4f6c_dd1d);
    let mut incidents = Vec::new();
    for n in 0..15 {
        let tlp = Tlp::ALL[n % 5];
        let orgs: BTreeSet<OrgId> = (0..rng.below(3)).map(|_| constituents[rng.below(5) as usize]).collect();
        let i = Incident {
            orgs: orgs.iter().copied().collect(),
            ..Incident::new(
                &format!("incident {n}"),
                ClassificationType::Phishing,
                Severity::Medium,
                tlp,
                Timestamp::now(),
            )
        };
        let created = Entry::new(EntryKind::Created, None, format!("opened {n}"), Timestamp::now());
        let id = store.add_incident(&i, &created, &[]).unwrap().id;
        let mut entries = Vec::new();
        for (k, kind) in EntryKind::ALL.iter().enumerate() {
            let (author, author_org) = match rng.below(3) {
                0 => (None, None),
                _ => {
                    let (v, _) = &users[rng.below(users.len() as u64) as usize];
                    (Some(v.user), Some((v.org, v.role)))
                }
            };
            let text = format!("entry {n}.{k}");
            let file = NewFile {
                name: format!("{text}.txt"),
                content_type: "text/plain".into(),
                data: text.clone().into_bytes(),
            };
            store.add_entry(id, &Entry::new(*kind, author, text.clone(), Timestamp::now()), &[file]).unwrap();
            entries.push((text, *kind, author_org));
        }
        let files: Vec<i64> = store.timeline(id).unwrap().iter().flat_map(|e| e.files.iter().map(|f| f.id)).collect();
        incidents.push((id, orgs, tlp, entries, files));
    }
    let sees_incident = |v: &Viewer, orgs: &BTreeSet<OrgId>, tlp: Tlp| match v.role {
        Role::Admin | Role::Analyst => true,
        Role::OrgAdmin | Role::OrgMember => orgs.contains(&v.org) && tlp <= Tlp::AmberStrict,
        Role::Partner => false,
    };
    let sees_entry = |v: &Viewer, kind: EntryKind, author: Option<(OrgId, Role)>| {
        center(v.role)
            || (matches!(kind, EntryKind::Comment | EntryKind::Correspondence)
                && author.is_none_or(|(org, role)| center(role) || org == v.org))
    };

    let get =
        |path: String, secret: &str| s.http.get(format!("{}{path}", s.base)).bearer_auth(secret.to_owned()).send();
    let mut disagreements = Vec::new();
    let mut differ = |what: String, got: String, want: String| {
        if got != want {
            disagreements.push(format!("{what}: {got}, model {want}"));
        }
    };
    let (mut shown, mut hidden) = (0, 0);
    // The center's users each change every incident (its severity, back and forth), after
    // reading it: the n-th of them reads the n changes of those before.
    let mut changes_made = 0;
    for (v, secret) in &users {
        let who = format!("{:?} of org {}", v.role, v.org);
        let list: serde_json::Value = get("/api/v1/incidents".into(), secret).await.unwrap().json().await.unwrap();
        let listed: BTreeSet<i64> =
            list["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
        let expected: BTreeSet<i64> =
            incidents.iter().filter(|(_, orgs, tlp, ..)| sees_incident(v, orgs, *tlp)).map(|i| i.0).collect();
        differ(format!("{who} lists"), format!("{listed:?}"), format!("{expected:?}"));
        for (id, orgs, tlp, entries, files) in &incidents {
            let visible = sees_incident(v, orgs, *tlp);
            let want = if visible { StatusCode::OK } else { StatusCode::NOT_FOUND };
            for path in [
                format!("/api/v1/incidents/{id}"),
                format!("/api/v1/incidents/{id}?format=stix"),
                format!("/incidents/{id}"),
            ] {
                let got = get(path.clone(), secret).await.unwrap().status();
                differ(format!("{who} GET {path}"), got.to_string(), want.to_string());
            }
            let detail: serde_json::Value =
                get(format!("/api/v1/incidents/{id}"), secret).await.unwrap().json().await.unwrap_or_default();
            let (changes, texts): (Vec<String>, Vec<String>) = detail["timeline"]
                .as_array()
                .map(|t| t.iter().map(|e| e["text"].as_str().unwrap().to_owned()).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .partition(|t| t.starts_with("severity: "));
            let want_changes = if center(v.role) { changes_made } else { 0 };
            differ(
                format!("{who} reads changes of incident {id}"),
                changes.len().to_string(),
                want_changes.to_string(),
            );
            let mut want_texts = BTreeSet::new();
            for (n, (text, kind, author)) in entries.iter().enumerate() {
                let seen = visible && sees_entry(v, *kind, *author);
                if seen {
                    want_texts.insert(text.clone());
                }
                // Entry n + 1 (after "opened") has file n.
                let want = if seen { StatusCode::OK } else { StatusCode::NOT_FOUND };
                let path = format!("/api/v1/incidents/{id}/files/{}", files[n]);
                let got = get(path.clone(), secret).await.unwrap().status();
                differ(format!("{who} GET {path}"), got.to_string(), want.to_string());
                if seen { shown += 1 } else { hidden += 1 }
            }
            if center(v.role) && visible {
                want_texts.insert(format!("opened {}", id - incidents[0].0));
            }
            let texts: BTreeSet<String> = texts.into_iter().collect();
            differ(format!("{who} reads incident {id}"), format!("{texts:?}"), format!("{want_texts:?}"));
            // Handling is the center's, even of the incidents an organization sees.
            let change = s
                .http
                .patch(format!("{}/api/v1/incidents/{id}", s.base))
                .bearer_auth(secret.clone())
                .json(&serde_json::json!({ "severity": if changes_made % 2 == 0 { "low" } else { "medium" } }))
                .send()
                .await
                .unwrap()
                .status();
            let want = if center(v.role) { "200 OK" } else { "403 Forbidden" };
            differ(format!("{who} PATCH incident {id}"), change.to_string(), want.to_owned());
        }
        if center(v.role) {
            changes_made += 1;
        }
        for path in ["/api/v1/searches", "/notifications"] {
            let got = get(path.into(), secret).await.unwrap().status();
            let want = if center(v.role) {
                StatusCode::OK
            } else if path.starts_with("/api") {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            differ(format!("{who} GET {path}"), got.to_string(), want.to_string());
        }
    }
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
    assert!(shown > 0 && hidden > shown, "files both shown and hidden: {shown} shown, {hidden} hidden");
}

/// Indicators through every read path: the API's JSON pages, each export format (a blocklist,
/// CSV, Suricata rules, an RPZ zone, a STIX bundle), the MISP feed and every TAXII collection a
/// user may read, for every user of the matrix, against the fixture's model. No collection of a
/// community, the constituency or partners holds anything above TLP:GREEN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indicators_reach_exactly_whom_the_model_allows_through_every_export_and_taxii() {
    let s = start().await;
    let (roles, _) = fixture::populate(s.store.as_ref());
    let (communities, stored) = fixture::populate_indicators(s.store.as_ref());
    let value_of: std::collections::HashMap<String, i64> = stored.iter().map(|i| (i.value.clone(), i.id)).collect();
    let ids = |values: &mut dyn Iterator<Item = String>| -> BTreeSet<i64> {
        values.filter_map(|v| value_of.get(&v).copied()).collect()
    };
    // The center's TAXII collections are its audiences' (what stays with the center is in none).
    let audiences: BTreeSet<i64> = stored
        .iter()
        .filter(|i| {
            (roles.iter().filter(|(_, role)| !role.is_center()))
                .any(|&(org, role)| fixture::indicator_model(&Viewer { user: 0, org, role }, i, &communities))
        })
        .map(|i| i.id)
        .collect();
    let mut disagreements = Vec::new();
    for (n, &(org, role)) in roles.iter().enumerate() {
        let u = user(s.store.as_ref(), &format!("ind{n}@matrix.example"), org, role);
        let secret = token(s.store.as_ref(), &u, TokenScope::Read);
        let viewer = Viewer { user: u.id, org, role };
        let expected: BTreeSet<i64> =
            stored.iter().filter(|i| fixture::indicator_model(&viewer, i, &communities)).map(|i| i.id).collect();
        let get = |path: String| {
            let r = s.http.get(format!("{}{path}", s.base)).bearer_auth(secret.clone());
            async move {
                r.header("accept", "application/taxii+json;version=2.1").send().await.unwrap().text().await.unwrap()
            }
        };
        let mut paths: Vec<(String, BTreeSet<i64>)> = Vec::new();
        // The JSON pages.
        let mut listed = BTreeSet::new();
        let mut after = String::new();
        loop {
            let page: serde_json::Value =
                serde_json::from_str(&get(format!("/api/v1/indicators?limit=97{after}")).await).unwrap();
            listed.extend(page["indicators"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()));
            match page["next"].as_str() {
                Some(n) => after = format!("&after={n}"),
                None => break,
            }
        }
        paths.push(("json".into(), listed));
        let lines = |text: String, f: fn(&str) -> Option<String>| text.lines().filter_map(f).collect::<Vec<_>>();
        let ip = get("/api/v1/indicators?format=ip".into()).await;
        paths.push(("ip".into(), ids(&mut lines(ip, |l| (!l.starts_with('#')).then(|| l.to_owned())).into_iter())));
        let csv = get("/api/v1/indicators?format=csv".into()).await;
        paths.push(("csv".into(), ids(&mut lines(csv, |l| l.split(',').nth(1).map(str::to_owned)).into_iter())));
        let rules = get("/api/v1/indicators?format=suricata".into()).await;
        let rule_ip = |l: &str| l.split("<> ").nth(1)?.split(' ').next().map(str::to_owned);
        paths.push(("suricata".into(), ids(&mut lines(rules, rule_ip).into_iter())));
        let rpz = get("/api/v1/indicators?format=rpz".into()).await;
        let rpz_ip = |l: &str| {
            let o: Vec<&str> = l.strip_suffix(".rpz-ip CNAME .")?.split('.').collect();
            Some(format!("{}.{}.{}.{}", o[4], o[3], o[2], o[1]))
        };
        paths.push(("rpz".into(), ids(&mut lines(rpz, rpz_ip).into_iter())));
        let bundle: serde_json::Value =
            serde_json::from_str(&get("/api/v1/indicators?format=stix".into()).await).unwrap();
        paths.push(("stix".into(), ids(&mut patterns(&bundle["objects"]).into_iter())));
        // The MISP feed: the manifest's events, each event's attributes.
        let manifest: serde_json::Value = serde_json::from_str(&get("/misp/manifest.json".into()).await).unwrap();
        let mut values = Vec::new();
        for uuid in manifest.as_object().unwrap().keys() {
            let event: serde_json::Value = serde_json::from_str(&get(format!("/misp/{uuid}.json")).await).unwrap();
            let attributes = event["Event"]["Attribute"].as_array().unwrap();
            values.extend(attributes.iter().map(|a| a["value"].as_str().unwrap().to_owned()));
        }
        let hashes = get("/misp/hashes.csv".into()).await;
        assert_eq!(hashes.lines().count(), values.len());
        paths.push(("misp".into(), ids(&mut values.into_iter())));
        // TAXII: every collection this user may read, every object, page by page.
        let listing: serde_json::Value = serde_json::from_str(&get("/taxii2/api/collections/".into()).await).unwrap();
        let mut via_taxii = BTreeSet::new();
        for c in listing["collections"].as_array().cloned().unwrap_or_default() {
            let (id, alias) = (c["id"].as_str().unwrap(), c["alias"].as_str().unwrap());
            let mut objects = Vec::new();
            let mut next = String::new();
            loop {
                let page: serde_json::Value =
                    serde_json::from_str(&get(format!("/taxii2/api/collections/{id}/objects/?limit=1000{next}")).await)
                        .unwrap();
                objects.extend(page["objects"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(n) => next = format!("&next={n}"),
                    None => break,
                }
            }
            let held = ids(&mut patterns(&serde_json::Value::Array(objects)).into_iter());
            let shared = !alias.starts_with("org-");
            for i in stored.iter().filter(|i| held.contains(&i.id)) {
                if shared && i.tlp > farol_model::Tlp::Green {
                    disagreements.push(format!("{role:?} of {org}: {:?} indicator {} in {alias}", i.tlp, i.id));
                }
            }
            via_taxii.extend(held);
        }
        paths.push(("taxii".into(), via_taxii));
        for (path, got) in paths {
            let expected = if path == "taxii" && role.is_center() { &audiences } else { &expected };
            if got != *expected {
                let extra: Vec<_> = got.difference(expected).collect();
                let missing: Vec<_> = expected.difference(&got).collect();
                disagreements.push(format!("{role:?} of {org} through {path}: extra {extra:?}, missing {missing:?}"));
            }
        }
    }
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
}

/// The values of the indicators' patterns among STIX objects.
fn patterns(objects: &serde_json::Value) -> Vec<String> {
    let all = objects.as_array().cloned().unwrap_or_default();
    all.iter()
        .filter(|o| o["type"] == "indicator")
        .filter_map(|o| o["pattern"].as_str()?.split('\'').nth(1).map(str::to_owned))
        .collect()
}
