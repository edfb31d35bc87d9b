//! The authorization matrix through HTTP: the data and model of the store-level matrix
//! (`crates/policy/tests/fixture`), with a real user and token for each of its 21 users, and
//! every user's view of every event through the API's listing (page by page) and detail, and
//! the portal's event page. The answers are compared with the model, not with the policy.

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
