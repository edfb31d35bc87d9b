//! TAXII 2.1 through HTTP: media types, authentication, collections per audience, paging,
//! filters, adding objects and their status, removal; and that no collection shares more than
//! its audience may have.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{indicator, org, start, token, user};
use farol_model::indicator::Community;
use farol_model::org::{Distribution, Role, Sector};
use farol_model::{Timestamp, Tlp};
use farol_store::{Store, TokenScope};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TAXII: &str = "application/taxii+json;version=2.1";
const PASSWORD: &str = "a good long passphrase";

struct Client<'a> {
    s: &'a common::Server,
    auth: (String, Option<String>),
}

impl Client<'_> {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.s.http.request(method, format!("{}{path}", self.s.base)).header("accept", TAXII);
        match &self.auth {
            (email, Some(password)) => r.basic_auth(email, Some(password)),
            (token, None) => r.header("authorization", format!("Token {token}")),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let r = self.request(reqwest::Method::GET, path).send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        assert_eq!(headers["content-type"], TAXII, "{path}");
        (status, r.json().await.unwrap(), headers)
    }

    /// The collections by alias: id, can_write.
    async fn collections(&self) -> Vec<(String, String, bool)> {
        let (status, body, _) = self.get("/taxii2/api/collections/").await;
        assert_eq!(status, StatusCode::OK);
        let mut all: Vec<_> = body["collections"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|c| {
                (c["alias"].as_str().unwrap().to_owned(), c["id"].as_str().unwrap().to_owned(), c["can_write"] == true)
            })
            .collect();
        all.sort();
        all
    }

    async fn collection(&self, alias: &str) -> String {
        self.collections().await.into_iter().find(|c| c.0 == alias).unwrap_or_else(|| panic!("no {alias}")).1
    }

    /// Every object of a collection, page by page.
    async fn all(&self, id: &str, query: &str) -> Vec<Value> {
        let mut objects = Vec::new();
        let mut next = String::new();
        loop {
            let (status, page, _) =
                self.get(&format!("/taxii2/api/collections/{id}/objects/?limit=4{query}{next}")).await;
            assert_eq!(status, StatusCode::OK);
            let got = page["objects"].as_array().cloned().unwrap_or_default();
            assert!(got.len() <= 4);
            objects.extend(got);
            match (page["more"].as_bool(), page["next"].as_str()) {
                (Some(true), Some(n)) => next = format!("&next={n}"),
                _ => break,
            }
        }
        objects
    }
}

fn values(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o["type"] == "indicator")
        .map(|o| o["pattern"].as_str().unwrap().split('\'').nth(1).unwrap().to_owned())
        .collect()
}

fn tlps(objects: &[Value]) -> BTreeSet<String> {
    let label = |id: &str| Tlp::ALL.into_iter().find(|t| t.stix_marking_id() == id).unwrap().label();
    objects
        .iter()
        .flat_map(|o| o["object_marking_refs"].as_array().cloned().unwrap_or_default())
        .map(|m| label(m.as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxii_collections_share_what_each_audience_may_have() {
    let s = start().await;
    let store: &dyn Store = s.store.as_ref();
    let center = org(store, "CERT", Sector::NationalCenter);
    let (a, b) = (org(store, "Hospital A", Sector::Health), org(store, "Water B", Sector::DrinkingWater));
    let abroad = org(store, "CERT-XX", Sector::InternationalPartner);
    let isac = store
        .add_community(&Community { id: 0, name: "isac".into(), description: String::new(), members: vec![a] })
        .unwrap();
    let now = Timestamp::now();
    for i in [
        indicator("192.0.2.1", Tlp::Green, Distribution::Constituents, None, &[]),
        indicator("192.0.2.2", Tlp::Red, Distribution::Constituents, None, &[]),
        indicator("192.0.2.3", Tlp::Green, Distribution::Community, Some(isac.id), &[]),
        indicator("192.0.2.4", Tlp::AmberStrict, Distribution::Community, Some(isac.id), &[a]),
        indicator("192.0.2.5", Tlp::Amber, Distribution::Affected, None, &[a]),
        indicator("192.0.2.6", Tlp::Clear, Distribution::Partners, None, &[]),
    ] {
        store.put_indicator(&i, now).unwrap();
    }
    user(store, "analyst@cert.example", center, Role::Analyst);
    user(store, "member@a.example", a, Role::OrgMember);
    let org_b = user(store, "member@b.example", b, Role::OrgMember);
    let partner_user = user(store, "taxii@cert-xx.example", abroad, Role::Partner);
    let basic = |email: &str| Client { s: &s, auth: (email.to_owned(), Some(PASSWORD.to_owned())) };
    let analyst = basic("analyst@cert.example");
    let member_a = basic("member@a.example");
    let member_b = Client { s: &s, auth: (token(store, &org_b, TokenScope::Write), None) };
    let partner = Client { s: &s, auth: (token(store, &partner_user, TokenScope::Write), None) };

    // Media types and authentication.
    let bare = s.http.get(format!("{}/taxii2/", s.base)).header("accept", TAXII).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert!(bare.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let wrong = basic("analyst@cert.example");
    let wrong = Client { auth: (wrong.auth.0, Some("not the passphrase".into())), ..wrong };
    assert_eq!(wrong.get("/taxii2/").await.0, StatusCode::UNAUTHORIZED);
    let json = s
        .http
        .get(format!("{}/taxii2/", s.base))
        .header("accept", "application/json")
        .basic_auth("analyst@cert.example", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::NOT_ACCEPTABLE);
    let (status, discovery, _) = analyst.get("/taxii2/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(discovery["api_roots"], json!(["/taxii2/api/"]));
    let (_, root, _) = analyst.get("/taxii2/api/").await;
    assert_eq!(root["versions"], json!([TAXII]));

    // Each audience reads its own collections.
    let aliases = |c: Vec<(String, String, bool)>| c.into_iter().map(|c| c.0).collect::<Vec<_>>();
    let mut expected = vec!["community-isac".to_owned(), "constituency".into(), "partners".into()];
    expected.extend([center, a, b, abroad].map(|o| format!("org-{o}")));
    expected.sort();
    assert_eq!(aliases(analyst.collections().await), expected);
    assert_eq!(aliases(member_a.collections().await), ["community-isac", "constituency", &format!("org-{a}")]);
    assert_eq!(aliases(member_b.collections().await), ["constituency".to_owned(), format!("org-{b}")]);
    assert_eq!(aliases(partner.collections().await), ["partners"]);

    let constituency = analyst.collection("constituency").await;
    let community = analyst.collection("community-isac").await;
    let own_a = analyst.collection(&format!("org-{a}")).await;
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    let all = analyst.all(&constituency, "").await;
    assert_eq!(values(&all), set(&["192.0.2.1", "192.0.2.6"]), "TLP:RED stays with the center");
    assert!(tlps(&all).iter().all(|t| t == "TLP:CLEAR" || t == "TLP:GREEN"));
    let in_community = member_a.all(&community, "").await;
    assert_eq!(values(&in_community), set(&["192.0.2.3"]), "AMBER+STRICT never reaches a community");
    assert_eq!(values(&member_a.all(&own_a, "").await), set(&["192.0.2.4", "192.0.2.5"]));
    assert_eq!(member_b.get(&format!("/taxii2/api/collections/{community}/")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(member_b.get(&format!("/taxii2/api/collections/{own_a}/objects/")).await.0, StatusCode::NOT_FOUND);

    // Each object once, in pages; the prelude, then an indicator's objects together.
    let ids: Vec<&str> = all.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let kinds: BTreeSet<&str> = all.iter().map(|o| o["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "identity",
            "indicator",
            "ipv4-addr",
            "malware",
            "marking-definition",
            "observed-data",
            "relationship",
            "sighting"
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(all.iter().filter(|o| o["type"] == "identity").count(), 1);
    assert!(
        ids.iter().filter(|id| !id.starts_with("malware--")).count()
            == ids.iter().filter(|id| !id.starts_with("malware--")).collect::<BTreeSet<_>>().len()
    );
    let only = analyst.all(&constituency, "&match%5Btype%5D=indicator").await;
    assert_eq!(only.len(), 2);
    assert!(only.iter().all(|o| o["type"] == "indicator"));

    // added_after the last date added: nothing new.
    let (_, page, headers) = analyst.get(&format!("/taxii2/api/collections/{constituency}/objects/?limit=1000")).await;
    assert_eq!(page["objects"].as_array().unwrap().len(), all.len());
    let last = headers["x-taxii-date-added-last"].to_str().unwrap().to_owned();
    let (_, empty, _) =
        analyst.get(&format!("/taxii2/api/collections/{constituency}/objects/?added_after={last}")).await;
    assert_eq!(empty, json!({}));
    let (status, _, _) = analyst.get(&format!("/taxii2/api/collections/{constituency}/objects/?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // One object, its versions, the manifest.
    let first = only[0]["id"].as_str().unwrap();
    let (status, one, _) = analyst.get(&format!("/taxii2/api/collections/{constituency}/objects/{first}/")).await;
    assert_eq!((status, one["objects"][0]["id"].as_str()), (StatusCode::OK, Some(first)));
    let (_, versions, _) =
        analyst.get(&format!("/taxii2/api/collections/{constituency}/objects/{first}/versions/")).await;
    assert_eq!(versions["versions"], json!([only[0]["modified"]]));
    let (_, manifest, _) = analyst.get(&format!("/taxii2/api/collections/{constituency}/manifest/?limit=1000")).await;
    assert_eq!(manifest["objects"].as_array().unwrap().len(), all.len());
    assert_eq!(manifest["objects"][0]["media_type"], "application/stix+json;version=2.1");

    // Adding: an organization to its community; a status with every count and list.
    let envelope = json!({ "objects": [
        { "type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
          "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z",
          "pattern": "[domain-name:value = 'phish.example']", "pattern_type": "stix",
          "valid_from": "2026-11-01T00:00:00Z", "labels": ["phishing"],
          "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"] },
        { "type": "malware", "spec_version": "2.1", "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
          "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": "x", "is_family": true }
    ]});
    let post = |c: &Client<'_>, id: &str| {
        c.request(reqwest::Method::POST, &format!("/taxii2/api/collections/{id}/objects/"))
            .header("content-type", TAXII)
            .body(envelope.to_string())
            .send()
    };
    let r = post(&member_a, &community).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let status: Value = r.json().await.unwrap();
    assert_eq!((status["status"].as_str(), status["total_count"].as_u64()), (Some("complete"), Some(2)));
    assert_eq!((status["success_count"].as_u64(), status["failure_count"].as_u64()), (Some(1), Some(1)));
    assert_eq!(status["successes"].as_array().unwrap().len(), 1);
    assert!(status["failures"][0]["message"].as_str().unwrap().contains("not malware"));
    let (code, again, _) = member_a.get(&format!("/taxii2/api/status/{}", status["id"].as_str().unwrap())).await;
    assert_eq!((code, &again), (StatusCode::OK, &status));
    assert!(values(&member_a.all(&community, "").await).contains("phish.example"));
    let audit = store.audit_log(None, 50).unwrap();
    assert!(audit.iter().any(|e| e.action == "taxii.add" && e.ip.as_deref() == Some("127.0.0.1")), "{audit:?}");
    // Above what a community shares, an object would reach nobody there: refused, with why.
    let mut amber = envelope["objects"][0].clone();
    amber["pattern"] = json!("[domain-name:value = 'amber.example']");
    amber["object_marking_refs"] = json!([Tlp::Amber.stix_marking_id()]);
    let r = member_a
        .request(reqwest::Method::POST, &format!("/taxii2/api/collections/{community}/objects/"))
        .header("content-type", TAXII)
        .body(json!({ "objects": [amber] }).to_string())
        .send()
        .await
        .unwrap();
    let refused: Value = r.json().await.unwrap();
    assert_eq!(refused["failure_count"], 1, "{refused}");
    assert!(refused["failures"][0]["message"].as_str().unwrap().contains("shares up to TLP:GREEN"), "{refused}");
    assert_eq!(post(&member_b, &constituency).await.unwrap().status(), StatusCode::FORBIDDEN);
    let plain = member_a
        .request(reqwest::Method::POST, &format!("/taxii2/api/collections/{community}/objects/"))
        .header("content-type", "application/json")
        .body(envelope.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A partner's indicators never go back to it.
    let partners = partner.collection("partners").await;
    assert_eq!(post(&partner, &partners).await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(values(&partner.all(&partners, "").await), set(&["192.0.2.6"]));
    assert_eq!(values(&analyst.all(&partners, "").await), set(&["192.0.2.6", "phish.example"]));

    // Removal: the center only.
    let target = only[0]["id"].as_str().unwrap();
    let delete = |c: &Client<'_>| {
        c.request(reqwest::Method::DELETE, &format!("/taxii2/api/collections/{constituency}/objects/{target}/")).send()
    };
    let before = analyst.all(&constituency, "&match%5Btype%5D=indicator").await;
    assert_eq!(delete(&member_b).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(delete(&analyst).await.unwrap().status(), StatusCode::OK);
    let after = analyst.all(&constituency, "&match%5Btype%5D=indicator").await;
    assert_eq!(after.len(), before.len() - 1);
    assert!(after.iter().all(|o| o["id"] != target));
}
