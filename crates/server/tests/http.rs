//! The server over real HTTP on 127.0.0.1: authentication, the access policy on every route
//! and method, CSRF, lockout and the security headers.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, events, org, start, token, user};
use farol_model::org::{Role, Sector};
use farol_store::TokenScope;
use reqwest::{Method, StatusCode};

/// Every route, with a path that names an object where the route has one.
const ROUTES: &[&str] = &[
    "/",
    "/login",
    "/logout",
    "/events",
    "/events.csv",
    "/events/1",
    "/upload",
    "/orgs",
    "/password",
    "/users",
    "/users/1/disable",
    "/tokens",
    "/tokens/1/revoke",
    "/audit",
    "/notifications",
    "/notifications/preview?org=2&email=soc%40a.example",
    "/incidents",
    "/incidents/1",
    "/incidents/1/comments",
    "/stats",
    "/sharing",
    "/communities",
    "/communities/1/add",
    "/indicators",
    "/stats?org=2&from=2024-06-01&to=2024-06-30",
    "/healthz",
    "/metrics",
    "/static/farol.css",
    "/api/v1/events",
    "/api/v1/events/1",
    "/api/v1/reports",
    "/api/v1/reports/1/rejects",
    "/api/v1/feeds",
    "/api/v1/orgs",
    "/api/v1/orgs/1",
    "/api/v1/users",
    "/api/v1/users/1",
    "/api/v1/me",
    "/api/v1/tokens",
    "/api/v1/tokens/1",
    "/api/v1/audit",
    "/api/v1/incidents",
    "/api/v1/incidents/1",
    "/api/v1/incidents/1/comments",
    "/api/v1/indicators",
    "/api/v1/indicators?format=stix",
    "/api/v1/openapi.json",
    "/api/v1/nothing",
    "/taxii2/",
    "/taxii2/api/",
    "/taxii2/api/collections/",
    "/taxii2/api/collections/00000000-0000-4000-8000-000000000000/objects/",
    "/taxii2/api/status/00000000-0000-4000-8000-000000000000",
];

const METHODS: &[Method] = &[Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_method_answers_without_leaking_or_failing() {
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let a = org(s.store.as_ref(), "Org A", Sector::Health);
    let b = org(s.store.as_ref(), "Org B", Sector::Energy);
    let ids = events(s.store.as_ref(), &[a, b]);
    let analyst = user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    let member = user(s.store.as_ref(), "m@a.example", a, Role::OrgMember);
    let tokens = [
        ("anonymous", None),
        ("analyst", Some(token(s.store.as_ref(), &analyst, TokenScope::Write))),
        ("member", Some(token(s.store.as_ref(), &member, TokenScope::Read))),
    ];
    for (who, token) in &tokens {
        for route in ROUTES {
            for method in METHODS {
                let mut req = s.http.request(method.clone(), format!("{}{route}", s.base));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status();
                assert!(!status.is_server_error(), "{who} {method} {route}: {status}");
                for header in
                    ["content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy"]
                {
                    assert!(resp.headers().contains_key(header), "{who} {method} {route}: no {header}");
                }
                let public =
                    ["/login", "/healthz", "/metrics", "/static/farol.css", "/api/v1/openapi.json"].contains(route);
                if *who == "anonymous" && !public && *method == Method::GET && status.is_success() {
                    panic!("anonymous GET {route} answered {status}");
                }
                if *who == "member" && method == Method::GET {
                    let center_only = [
                        "/api/v1/reports",
                        "/api/v1/reports/1/rejects",
                        "/api/v1/feeds",
                        "/api/v1/audit",
                        "/notifications",
                        "/notifications/preview?org=2&email=soc%40a.example",
                    ];
                    if center_only.contains(route) {
                        assert!(
                            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
                            "member GET {route}: {status}"
                        );
                    }
                }
            }
        }
    }
    // Every operation of the OpenAPI document is served.
    let doc: serde_json::Value =
        s.http.get(format!("{}/api/v1/openapi.json", s.base)).send().await.unwrap().json().await.unwrap();
    let analyst_read = token(s.store.as_ref(), &analyst, TokenScope::Read);
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let url = format!("{}/api/v1{}", s.base, path.replace("{id}", "1"));
            let r = s
                .http
                .request(method.to_uppercase().parse().unwrap(), url)
                .bearer_auth(&analyst_read)
                .send()
                .await
                .unwrap();
            assert_ne!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(!r.text().await.unwrap().contains("no such API route"), "{method} {path}");
        }
    }
    // An organization's user sees its own event, and another organization's is "not found".
    let member_token = tokens[2].1.as_ref().unwrap();
    let get = |path: String| s.http.get(format!("{}{path}", s.base)).bearer_auth(member_token).send();
    assert_eq!(get(format!("/api/v1/events/{}", ids[0])).await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(format!("/api/v1/events/{}", ids[1])).await.unwrap().status(), StatusCode::NOT_FOUND);
    let listed: serde_json::Value = get("/api/v1/events".into()).await.unwrap().json().await.unwrap();
    let listed: Vec<i64> = listed["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(listed, [ids[0]]);
    // A read token cannot write; a write token can upload, and the upload is audited.
    let upload = |t: &str| {
        s.http.post(format!("{}/api/v1/reports?feed=sinkhole", s.base)).bearer_auth(t.to_owned()).body(
            "{\"source.ip\": \"198.51.100.7\", \"time.source\": \"2024-06-01T00:00:00Z\", \"classification.type\": \"scanner\"}\n",
        )
    };
    assert_eq!(upload(member_token).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // (The loop above revoked token 1 with DELETE /api/v1/tokens/1: the analyst's.)
    let revoked = tokens[1].1.as_ref().unwrap();
    assert_eq!(upload(revoked).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let analyst_token = &token(s.store.as_ref(), &analyst, TokenScope::Write);
    // Nobody revokes another user's token.
    let theirs = s.store.tokens(analyst.id).unwrap().last().unwrap().id;
    let r = s.http.delete(format!("{}/api/v1/tokens/{theirs}", s.base)).bearer_auth(member_token).send().await.unwrap();
    assert!(r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::FORBIDDEN, "{}", r.status());
    assert!(s.store.tokens(analyst.id).unwrap().last().unwrap().revoked_at.is_none());
    let member_id = s.store.user_by_email("m@a.example").unwrap().unwrap().id;
    assert!(!s.store.revoke_token(theirs, member_id, farol_model::Timestamp::now()).unwrap());
    let r = upload(analyst_token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["events"], 1);
    assert_eq!(upload(analyst_token).send().await.unwrap().status(), StatusCode::OK, "the same bytes again");
    let audit = s.store.audit_log(None, 10).unwrap();
    assert!(audit.iter().any(|e| e.action == "upload" && e.user == Some(analyst.id)));
    // Bad input is a 4xx that says what is wrong.
    let r = s
        .http
        .get(format!("{}/api/v1/events?since=yesterday", s.base))
        .bearer_auth(analyst_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("since"));
    let r = s.http.get(format!("{}/api/v1/events", s.base)).bearer_auth("farol_nonsense").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Logs in through the form: the login page's double-submit token, then the session cookie.
async fn login(s: &Server, email: &str, password: &str) -> reqwest::Response {
    login_with_code(s, email, password, "").await
}

async fn login_with_code(s: &Server, email: &str, password: &str, code: &str) -> reqwest::Response {
    let page = s.http.get(format!("{}/login", s.base)).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    s.http
        .post(format!("{}/login", s.base))
        .header("cookie", cookie)
        .form(&[("email", email), ("password", password), ("csrf", &csrf), ("code", code)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_csrf_tokens_and_failed_logins_lock_the_account() {
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    let ok = login(&s, "ana@cert.example", "a good long passphrase").await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let session = set_session(&ok);
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    let cookie = session.split(';').next().unwrap().to_owned();
    let csrf = csrf_of(&s, &cookie).await;
    // Without the CSRF token a session cannot change anything; with it, it can.
    let new_token = |csrf: Option<&str>| {
        let mut r = s
            .http
            .post(format!("{}/api/v1/tokens", s.base))
            .header("cookie", &cookie)
            .body("{\"name\": \"script\", \"scope\": \"read\"}");
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    assert_eq!(new_token(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(new_token(Some("wrong")).await.unwrap().status(), StatusCode::FORBIDDEN);
    let made = new_token(Some(&csrf)).await.unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let secret = made.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    assert!(s.store.tokens(1).unwrap().iter().all(|t| !format!("{t:?}").contains(&secret)), "tokens are stored hashed");
    // Five wrong passwords lock the account, even against the right one.
    for _ in 0..5 {
        assert_eq!(login(&s, "ana@cert.example", "wrong password!!").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&s, "ana@cert.example", "a good long passphrase").await.status(), StatusCode::UNAUTHORIZED);
    let log = s.store.audit_log(None, 20).unwrap();
    assert_eq!(log.iter().filter(|e| e.action == "login-failed").count(), 6);
    // Past the rate limit, attempts from the address are refused. The limit is 10 in a clock
    // minute: 21 attempts pass it even when a minute turns while they run (the count then
    // starts over).
    let mut attempts = 1;
    while login(&s, "nobody@cert.example", "whatever it is").await.status() != StatusCode::TOO_MANY_REQUESTS {
        attempts += 1;
        assert!(attempts <= 21, "21 attempts and none refused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_a_second_factor_needs_the_current_code() {
    use farol_server::totp;
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let mut ana = user(s.store.as_ref(), "ana@cert.example", center, Role::Admin);
    let secret = totp::new_secret();
    ana.totp = Some(secret.clone());
    s.store.update_user(&ana).unwrap();
    let now = farol_model::Timestamp::now().secs();
    let code = |step: i64| format!("{:06}", totp::password(&totp::unbase32(&secret).unwrap(), step, 6));
    let pass = "a good long passphrase";
    assert_eq!(login(&s, "ana@cert.example", pass).await.status(), StatusCode::UNAUTHORIZED, "no code");
    let stale = code(now / 30 - 10);
    assert_eq!(login_with_code(&s, "ana@cert.example", pass, &stale).await.status(), StatusCode::UNAUTHORIZED);
    let ok = login_with_code(&s, "ana@cert.example", pass, &code(now / 30)).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER, "the current code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_cookies_are_secure_and_responses_carry_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.signing_key.serialize_pem()).unwrap();
    let tls = farol_server::tls::Tls::from_pem_files(&cert, &key).unwrap();
    let trusting = common::client()
        .add_root_certificate(reqwest::Certificate::from_pem(issued.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", "127.0.0.1:0".parse().unwrap());
    let mut s = common::start_with(Some(tls), trusting).await;
    let port = s.base.rsplit(':').next().unwrap().to_owned();
    // The certificate names localhost: ask for it by that name.
    s.base = format!("https://localhost:{port}");
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);

    let health = s.http.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    let page = s.http.get(format!("{}/login", s.base)).send().await.unwrap();
    let cookies: Vec<_> = page.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(!cookies.is_empty() && cookies.iter().all(|c| c.contains("; Secure")), "{cookies:?}");
    let logged_in = login(&s, "ana@cert.example", "a good long passphrase").await;
    assert_eq!(logged_in.status(), StatusCode::SEE_OTHER);
    assert!(set_session(&logged_in).contains("; Secure"));

    // Plain HTTP to the TLS port gets no answer, and a client that does not trust the
    // certificate is refused.
    let plain = common::client().build().unwrap();
    assert!(plain.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err());
    assert!(plain.get(format!("https://127.0.0.1:{port}/healthz")).send().await.is_err());
    // Those failed handshakes left the server serving.
    let again = s.http.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

/// The CSRF token of a session, as `/api/v1/me` tells it.
async fn csrf_of(s: &Server, cookie: &str) -> String {
    let me = s.http.get(format!("{}/api/v1/me", s.base)).header("cookie", cookie).send().await.unwrap();
    me.json::<serde_json::Value>().await.unwrap()["csrf"].as_str().unwrap().to_owned()
}

/// The `Set-Cookie` line of the session cookie that a login answered with.
fn set_session(login: &reqwest::Response) -> String {
    let mut lines = login.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap());
    lines.find(|v| v.starts_with("farol_session=")).unwrap().to_owned()
}

/// The session cookie of a fresh login.
async fn session(s: &Server, email: &str) -> String {
    let ok = login(s, email, "a good long passphrase").await;
    set_session(&ok).split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_counts_what_each_user_may_see() {
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let a = org(s.store.as_ref(), "Hospital A", Sector::Health);
    let b = org(s.store.as_ref(), "Energy B", Sector::Energy);
    let now = farol_model::Timestamp::now().to_rfc3339();
    // Org A: three events now; org B: one now and one long ago (outside every window).
    common::events_at(s.store.as_ref(), &[a, a, a, b], &now);
    common::events(s.store.as_ref(), &[b]);
    user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    user(s.store.as_ref(), "m@b.example", b, Role::OrgMember);

    let page = |cookie: String| {
        let http = s.http.clone();
        let url = format!("{}/", s.base);
        async move { http.get(url).header("cookie", cookie).send().await.unwrap().text().await.unwrap() }
    };
    let analyst = page(session(&s, "ana@cert.example").await).await;
    assert!(analyst.contains("4 events in the last 24 hours"), "{analyst}");
    let hospital = analyst.find("Hospital A").unwrap();
    let energy = analyst.find("Energy B").unwrap();
    assert!(hospital < energy, "the most affected organization comes first");
    assert!(analyst.contains("infected-system"));
    assert!(analyst.contains("0 open (0 past a deadline)"), "the center's incident figures: {analyst}");

    let member = page(session(&s, "m@b.example").await).await;
    assert!(member.contains("1 event in the networks of <strong>Energy B</strong>"), "{member}");
    assert!(!member.contains("Hospital A") && member.contains("<svg"), "{member}");
    assert!(!member.contains("Median time to first response"), "incident figures are the center's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_admin_manages_its_own_organization_s_users_only() {
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let a = org(s.store.as_ref(), "Org A", Sector::Health);
    let b = org(s.store.as_ref(), "Org B", Sector::Energy);
    let admin = user(s.store.as_ref(), "root@cert.example", center, Role::Admin);
    let boss = user(s.store.as_ref(), "boss@a.example", a, Role::OrgAdmin);
    let other = user(s.store.as_ref(), "m@b.example", b, Role::OrgMember);
    let boss_token = token(s.store.as_ref(), &boss, TokenScope::Write);
    let api = |method: Method, path: &str, body: serde_json::Value, t: &str| {
        s.http.request(method, format!("{}/api/v1{path}", s.base)).bearer_auth(t.to_owned()).json(&body).send()
    };

    // Into its own organization, as a member: the answer holds the password made, which works.
    let r =
        api(Method::POST, "/users", serde_json::json!({"email": "new@a.example", "role": "org-member"}), &boss_token)
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: serde_json::Value = r.json().await.unwrap();
    assert_eq!((made["org"].as_i64(), made["role"].as_str()), (Some(a.0), Some("org-member")));
    let password = made["password"].as_str().unwrap().to_owned();
    let hash = s.store.user_by_email("new@a.example").unwrap().unwrap().password.unwrap();
    assert!(hash.starts_with("$argon2id$") && farol_server::auth::verify_password(&hash, &password));
    let again =
        api(Method::POST, "/users", serde_json::json!({"email": "new@a.example", "role": "org-member"}), &boss_token);
    assert_eq!(again.await.unwrap().status(), StatusCode::CONFLICT);

    // Not into another organization (which it cannot even see), not as the center's analyst.
    let elsewhere = serde_json::json!({"email": "x@b.example", "role": "org-member", "org": b.0});
    assert_eq!(api(Method::POST, "/users", elsewhere, &boss_token).await.unwrap().status(), StatusCode::NOT_FOUND);
    let analyst = serde_json::json!({"email": "x@a.example", "role": "analyst"});
    assert_eq!(api(Method::POST, "/users", analyst, &boss_token).await.unwrap().status(), StatusCode::FORBIDDEN);
    let bad =
        api(Method::POST, "/users", serde_json::json!({"email": "not an address", "role": "org-member"}), &boss_token);
    assert_eq!(bad.await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert!(
        s.store.user_by_email("x@b.example").unwrap().is_none()
            && s.store.user_by_email("x@a.example").unwrap().is_none()
    );

    // It disables its member, whose token stops working; another organization's user is not found.
    let member = s.store.user_by_email("new@a.example").unwrap().unwrap();
    let member_token = token(s.store.as_ref(), &member, TokenScope::Read);
    let disable = serde_json::json!({"disabled": true});
    let r = api(Method::PATCH, &format!("/users/{}", member.id), disable.clone(), &boss_token).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        api(Method::GET, "/me", serde_json::json!({}), &member_token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = api(Method::PATCH, &format!("/users/{}", other.id), disable.clone(), &boss_token).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!s.store.user(other.id).unwrap().unwrap().disabled);
    // Nobody disables themselves; a member manages nobody.
    let r = api(Method::PATCH, &format!("/users/{}", boss.id), disable.clone(), &boss_token).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let other_token = token(s.store.as_ref(), &other, TokenScope::Write);
    let r =
        api(Method::POST, "/users", serde_json::json!({"email": "y@b.example", "role": "org-member"}), &other_token);
    assert_eq!(r.await.unwrap().status(), StatusCode::FORBIDDEN);

    // The center's admin manages anyone, within the roles of each organization.
    let admin_token = token(s.store.as_ref(), &admin, TokenScope::Write);
    let promote = serde_json::json!({"role": "org-admin"});
    let r = api(Method::PATCH, &format!("/users/{}", other.id), promote, &admin_token).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = api(Method::PATCH, &format!("/users/{}", other.id), serde_json::json!({"role": "analyst"}), &admin_token);
    assert_eq!(r.await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.store.user(other.id).unwrap().unwrap().role, Role::OrgAdmin);
    let audit = s.store.audit_log(None, 20).unwrap();
    assert!(audit.iter().any(|e| e.action == "user-add" && e.user == Some(boss.id)));
    assert!(audit.iter().any(|e| e.action == "user-change" && e.user == Some(admin.id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_change_their_own_password_with_the_current_one() {
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let ana = user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    let cookie = session(&s, "ana@cert.example").await;
    let csrf = csrf_of(&s, &cookie).await;
    let change = |csrf: String, current: &'static str, new: &'static str, repeat: &'static str| {
        let http = s.http.clone();
        let (url, cookie) = (format!("{}/password", s.base), cookie.clone());
        async move {
            let form = [("csrf", csrf.as_str()), ("current", current), ("new", new), ("repeat", repeat)];
            http.post(url).header("cookie", cookie).form(&form).send().await.unwrap().text().await.unwrap()
        }
    };
    let fresh = "a fresher long passphrase";
    assert!(change("forged".into(), "a good long passphrase", fresh, fresh).await.contains("The form expired"));
    assert!(change(csrf.clone(), "not the password", fresh, fresh).await.contains("The current password is wrong"));
    assert_eq!(s.store.user(ana.id).unwrap().unwrap().failures, 1, "a wrong password counts towards the lockout");
    assert!(change(csrf.clone(), "a good long passphrase", fresh, "something else").await.contains("differ"));
    assert!(change(csrf.clone(), "a good long passphrase", "short", "short").await.contains("at least 12"));
    assert!(change(csrf.clone(), "a good long passphrase", fresh, fresh).await.contains("Your password was changed"));

    let hash = s.store.user(ana.id).unwrap().unwrap().password.unwrap();
    assert!(farol_server::auth::verify_password(&hash, fresh));
    assert!(!farol_server::auth::verify_password(&hash, "a good long passphrase"));
    assert_eq!(login(&s, "ana@cert.example", fresh).await.status(), StatusCode::SEE_OTHER);
    let audit = s.store.audit_log(None, 20).unwrap();
    assert!(audit.iter().any(|e| e.action == "password-change" && e.user == Some(ana.id)));
    assert!(audit.iter().any(|e| e.action == "password-change-failed" && e.user == Some(ana.id)));

    // Wrong passwords lock the page as they lock the login: then not even the right one works.
    for _ in 0..farol_server::auth::LOCKOUT_AFTER {
        assert!(change(csrf.clone(), "not the password", fresh, fresh).await.contains("The current password is wrong"));
    }
    let answer = change(csrf.clone(), fresh, "yet another long passphrase", "yet another long passphrase").await;
    assert!(answer.contains("Too many wrong passwords"), "{answer}");
    let hash = s.store.user(ana.id).unwrap().unwrap().password.unwrap();
    assert!(farol_server::auth::verify_password(&hash, fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_center_previews_notifications_and_organizations_do_not_see_them() {
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let a = org(s.store.as_ref(), "Hospital A", Sector::Health);
    let mut hospital = s.store.orgs().unwrap().into_iter().find(|o| o.id == a).unwrap();
    hospital.contacts.push(farol_model::org::Contact::new("soc@hospital-a.example").unwrap());
    s.store.update_org(&hospital).unwrap();
    events(s.store.as_ref(), &[a, a]);
    user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    user(s.store.as_ref(), "m@a.example", a, Role::OrgAdmin);
    let get = |path: &str, cookie: String| {
        let (http, url) = (s.http.clone(), format!("{}{path}", s.base));
        async move {
            let r = http.get(url).header("cookie", cookie).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let analyst = session(&s, "ana@cert.example").await;
    let (status, page) = get("/notifications", analyst.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("soc@hospital-a.example"), "{page}");
    assert!(
        page.contains("[TLP:AMBER] [CERT Test #preview] 2 security events in the networks of Hospital A"),
        "{page}"
    );
    let preview = format!("/notifications/preview?org={}&email=soc%40hospital-a.example", a.0);
    let (status, page) = get(&preview, analyst.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Dear Hospital A security team"), "{page}");
    let (status, _) = get("/notifications/preview?org=999&email=x%40y.example", analyst).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Not even the organization's own administrator: the page holds every organization's contacts.
    let member = session(&s, "m@a.example").await;
    assert_eq!(get("/notifications", member.clone()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&preview, member).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_see_and_comment_on_their_own_incidents_only() {
    use farol_model::incident::{Entry, EntryKind, Incident, Severity};
    use farol_model::{ClassificationType, Timestamp, Tlp};
    let s = start().await;
    let store = s.store.as_ref();
    let center = org(store, "CERT", Sector::NationalCenter);
    let a = org(store, "Hospital A", Sector::Health);
    let b = org(store, "Energy B", Sector::Energy);
    let ids = events(store, &[a, b]);
    user(store, "ana@cert.example", center, Role::Analyst);
    let member_a = user(store, "m@a.example", a, Role::OrgMember);
    let member_b = user(store, "m@b.example", b, Role::OrgMember);
    let new = |title: &str, orgs: Vec<_>, events: Vec<i64>, tlp: Tlp| {
        let i = Incident {
            orgs,
            events,
            ..Incident::new(title, ClassificationType::Phishing, Severity::High, tlp, Timestamp::now())
        };
        let entry = Entry::new(EntryKind::Created, None, format!("opened: {title}"), Timestamp::now());
        store.add_incident(&i, &entry, &[]).unwrap().id
    };
    let shared = new("Phishing kit on both networks", vec![a, b], ids.clone(), Tlp::Amber);
    let only_b = new("Only B", vec![b], vec![ids[1]], Tlp::Amber);
    let red = new("Red for A", vec![a], vec![], Tlp::Red);
    let at = Timestamp::now();
    store.add_entry(shared, &Entry::new(EntryKind::Change, None, "concerns Energy B", at), &[]).unwrap();
    store.add_entry(shared, &Entry::new(EntryKind::Comment, Some(member_b.id), "B here", at), &[]).unwrap();

    let get = |path: String, token: String| {
        let (http, url) = (s.http.clone(), format!("{}{path}", s.base));
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status();
            (status, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let token_a = token(store, &member_a, TokenScope::Write);
    let (_, list) = get("/api/v1/incidents".into(), token_a.clone()).await;
    let listed: Vec<&serde_json::Value> = list["incidents"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!((listed[0]["id"].as_i64(), &listed[0]["orgs"]), (Some(shared), &serde_json::json!([a.0])));
    let (status, detail) = get(format!("/api/v1/incidents/{shared}"), token_a.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["events"], serde_json::json!([ids[0]]), "only the events A may see");
    assert_eq!(detail["timeline"], serde_json::json!([]), "neither changes nor B's comments: {detail}");
    for hidden in [only_b, red, 999] {
        assert_eq!(get(format!("/api/v1/incidents/{hidden}"), token_a.clone()).await.0, StatusCode::NOT_FOUND);
    }
    // A comments; B and A each see their own organization's comments and the center's.
    let post = |token: String, text: String| {
        let (http, url) = (s.http.clone(), format!("{}/api/v1/incidents/{shared}/comments", s.base));
        async move {
            http.post(url).bearer_auth(token).json(&serde_json::json!({ "text": text })).send().await.unwrap().status()
        }
    };
    assert_eq!(post(token_a.clone(), "A here".into()).await, StatusCode::CREATED);
    assert_eq!(post(token_a.clone(), " ".into()).await, StatusCode::BAD_REQUEST);
    assert_eq!(post(token_a.clone(), "x".repeat(10_001)).await, StatusCode::BAD_REQUEST);
    let read_only = token(store, &member_a, TokenScope::Read);
    assert_eq!(post(read_only, "no".into()).await, StatusCode::FORBIDDEN);
    let (_, detail) = get(format!("/api/v1/incidents/{shared}"), token_a.clone()).await;
    let texts = |d: &serde_json::Value| {
        d["timeline"].as_array().unwrap().iter().map(|e| format!("{}: {}", e["by"], e["text"])).collect::<Vec<_>>()
    };
    assert_eq!(texts(&detail), ["\"m@a.example\": \"A here\""]);
    let token_b = token(store, &member_b, TokenScope::Read);
    let (_, detail) = get(format!("/api/v1/incidents/{shared}"), token_b).await;
    assert_eq!(texts(&detail), ["\"m@b.example\": \"B here\""]);
    let analyst = token(store, &store.user_by_email("ana@cert.example").unwrap().unwrap(), TokenScope::Read);
    let (_, detail) = get(format!("/api/v1/incidents/{shared}"), analyst).await;
    assert_eq!(detail["timeline"].as_array().unwrap().len(), 4, "the center sees everything: {detail}");
    assert_eq!(detail["orgs"], serde_json::json!([a.0, b.0]));

    // The portal: the same view, and comments need the session's CSRF token.
    let cookie = session(&s, "m@a.example").await;
    let page = s.http.get(format!("{}/incidents/{shared}", s.base)).header("cookie", &cookie).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Phishing kit on both networks") && html.contains("A here") && !html.contains("B here"),
        "{html}"
    );
    let form = |csrf: String| {
        let (http, url, cookie) = (s.http.clone(), format!("{}/incidents/{shared}/comments", s.base), cookie.clone());
        async move {
            let form = reqwest::multipart::Form::new().text("csrf", csrf).text("text", "from the portal");
            http.post(url).header("cookie", cookie).multipart(form).send().await.unwrap().status()
        }
    };
    assert_eq!(form("wrong".into()).await, StatusCode::FORBIDDEN);
    assert_eq!(form(csrf_of(&s, &cookie).await).await, StatusCode::SEE_OTHER);
    let html = s
        .http
        .get(format!("{}/incidents", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Phishing kit on both networks") && !html.contains("Only B") && !html.contains("Red for A"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_handle_incidents_that_organizations_report_with_files() {
    use base64::Engine;
    use farol_model::incident::{Entry, EntryKind, Incident, Severity};
    use farol_model::org::Contact;
    use farol_model::{ClassificationType, Timestamp, Tlp};
    use serde_json::{Value, json};
    let s = start().await;
    let store = s.store.as_ref();
    let center = org(store, "CERT", Sector::NationalCenter);
    let a = org(store, "Hospital A", Sector::Health);
    let b = org(store, "Energy B", Sector::Energy);
    let mut hospital = store.orgs().unwrap().into_iter().find(|o| o.id == a).unwrap();
    hospital.contacts.push(Contact::new("soc@a.example").unwrap());
    store.update_org(&hospital).unwrap();
    let ids = events(store, &[a, b]);
    let analyst = user(store, "ana@cert.example", center, Role::Analyst);
    let member_a = user(store, "m@a.example", a, Role::OrgMember);
    let member_b = user(store, "m@b.example", b, Role::OrgMember);
    let (ana, ma, mb) = (
        token(store, &analyst, TokenScope::Write),
        token(store, &member_a, TokenScope::Write),
        token(store, &member_b, TokenScope::Write),
    );
    let call = |method: Method, path: String, token: &str, body: Option<Value>| {
        let mut r = s.http.request(method, format!("{}/api/v1{path}", s.base)).bearer_auth(token.to_owned());
        if let Some(body) = body {
            r = r.json(&body);
        }
        async move {
            let r = r.send().await.unwrap();
            let (status, headers) = (r.status(), r.headers().clone());
            let bytes = r.bytes().await.unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null), headers, bytes)
        }
    };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    // A's report with its files; files the rules refuse refuse the report.
    let report = |files: Value| json!({ "title": "Ransom note on a PC", "description": "Files encrypted", "affected": ["192.0.2.0"], "files": files });
    for bad in [
        json!([{ "name": "page.html", "content_type": "text/html", "data": b64(b"<script>") }]),
        json!([{ "name": "fake.pdf", "data": b64(b"<html>") }]),
        json!([{ "name": "x.txt", "data": "not base64!" }]),
    ] {
        let (status, body, ..) = call(Method::POST, "/incidents".into(), &ma, Some(report(bad))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().starts_with("files: "), "{body}");
    }
    let pdf = b"%PDF-1.4\n%%EOF\n";
    let files = json!([{ "name": "note.pdf", "data": b64(pdf) }, { "name": "log.txt", "data": b64(b"12:00 ransom") }]);
    let (status, created, ..) = call(Method::POST, "/incidents".into(), &ma, Some(report(files))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert!(created.get("tasks").is_none(), "organizations are not shown the center's handling: {created}");

    // The analyst triages it: open, phishing (whose playbook comes with it), assigned, B added.
    let change = json!({ "status": "open", "class": "phishing", "assignee": "ana@cert.example", "add_orgs": [b.0], "note": "triaged" });
    let (status, changed, ..) = call(Method::PATCH, format!("/incidents/{id}"), &ana, Some(change.clone())).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed["changes"],
        json!([
            "status: new → open",
            "class: undetermined → phishing",
            "assigned to ana@cert.example",
            "concerns Energy B"
        ])
    );
    for (token, body, want) in [
        (&ma, json!({ "status": "resolved" }), StatusCode::FORBIDDEN),
        (&ana, json!({ "status": "new" }), StatusCode::BAD_REQUEST),
        (&ana, json!({ "severity": "huge" }), StatusCode::BAD_REQUEST),
        (&ana, json!({ "assignee": "m@a.example" }), StatusCode::BAD_REQUEST),
        (&ana, json!({ "status": "open" }), StatusCode::BAD_REQUEST),
        (&ana, json!({ "colour": "red" }), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(call(Method::PATCH, format!("/incidents/{id}"), token, Some(body.clone())).await.0, want, "{body}");
    }
    assert_eq!(
        call(Method::PATCH, "/incidents/999".into(), &ana, Some(json!({ "status": "open" }))).await.0,
        StatusCode::NOT_FOUND
    );

    // Events linked through a saved search; playbook tasks ticked.
    let search = json!({ "name": "Hospital A", "query": format!("org={}", a.0) });
    assert_eq!(call(Method::POST, "/searches".into(), &ma, Some(search.clone())).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(Method::POST, "/searches".into(), &ana, Some(search)).await.0, StatusCode::NO_CONTENT);
    let bad = json!({ "name": "x", "query": "asn=x" });
    assert_eq!(call(Method::POST, "/searches".into(), &ana, Some(bad)).await.0, StatusCode::BAD_REQUEST);
    let (_, listed, ..) = call(Method::GET, "/searches".into(), &ana, None).await;
    assert_eq!(listed["searches"][0]["name"], "Hospital A");
    let link = |body: Value| call(Method::POST, format!("/incidents/{id}/events"), &ana, Some(body));
    let (status, linked, ..) = link(json!({ "search": "Hospital A" })).await;
    assert_eq!((status, &linked), (StatusCode::OK, &json!({ "linked": 1, "more": false })));
    assert_eq!(link(json!({ "events": [999_999] })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(link(json!({ "search": "nothing saved" })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(link(json!({ "query": "type=nonsense" })).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        call(Method::POST, format!("/incidents/{id}/tasks/2"), &ana, Some(json!({ "done": true }))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(Method::POST, format!("/incidents/{id}/tasks/3"), &ana, Some(json!({ "done": true }))).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(Method::POST, format!("/incidents/{id}/tasks/1"), &ma, Some(json!({ "done": true }))).await.0,
        StatusCode::FORBIDDEN
    );

    // A message to the organizations: A has a contact, B none.
    let (status, queued, ..) = call(
        Method::POST,
        format!("/incidents/{id}/messages"),
        &ana,
        Some(json!({ "text": "Please isolate the PC." })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{queued}");
    assert_eq!(
        queued["queued"],
        json!([{ "org": "Energy B", "recipients": [] }, { "org": "Hospital A", "recipients": ["soc@a.example"] }])
    );
    let outbox = store.outbox(None, 10).unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].subject, format!("[TLP:AMBER] [CERT Test #INC-{id}] Ransom note on a PC"));

    let (_, seen, ..) = call(Method::GET, format!("/incidents/{id}"), &ana, None).await;
    assert_eq!((seen["status"].as_str(), seen["assignee"].as_i64()), (Some("open"), Some(analyst.id)));
    assert_eq!(seen["events"], json!([ids[0]]));
    assert_eq!(seen["tasks"][0]["done"], Value::Null);
    assert!(seen["tasks"][1]["done"].is_string(), "{seen}");
    let kinds: Vec<&str> = seen["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["correspondence", "change", "link", "task", "notification"]);
    let files = &seen["timeline"][0]["files"];
    assert_eq!((files[0]["name"].as_str(), files[0]["type"].as_str()), (Some("note.pdf"), Some("application/pdf")));
    let file = files[0]["id"].as_i64().unwrap();

    // A sees its report and its files, not the center's handling; B sees the incident but not
    // A's words and files.
    let (_, seen_a, ..) = call(Method::GET, format!("/incidents/{id}"), &ma, None).await;
    let kinds: Vec<&str> = seen_a["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["correspondence"], "{seen_a}");
    let (status, _, headers, bytes) = call(Method::GET, format!("/incidents/{id}/files/{file}"), &ma, None).await;
    assert_eq!((status, &bytes[..]), (StatusCode::OK, &pdf[..]));
    assert_eq!(headers["content-disposition"], "attachment; filename=\"note.pdf\"");
    assert_eq!(headers["content-security-policy"], "sandbox; default-src 'none'");
    let (_, seen_b, ..) = call(Method::GET, format!("/incidents/{id}"), &mb, None).await;
    assert_eq!(seen_b["timeline"], json!([]), "{seen_b}");
    assert_eq!(call(Method::GET, format!("/incidents/{id}/files/{file}"), &mb, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(Method::GET, format!("/incidents/999/files/{file}"), &ana, None).await.0, StatusCode::NOT_FOUND);

    // An incident nobody answered for three days is overdue; merged into the first, it is closed.
    let old = Timestamp::now().add_secs(-3 * 86_400).unwrap();
    let late = Incident::new("Scan from 192.0.2.9", ClassificationType::Scanner, Severity::Medium, Tlp::Amber, old);
    let late = store.add_incident(&late, &Entry::new(EntryKind::Created, None, "opened", old), &[]).unwrap().id;
    let (_, overdue, ..) = call(Method::GET, "/incidents?overdue=true".into(), &ana, None).await;
    let listed: Vec<i64> = overdue["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(listed, [late]);
    assert_eq!(overdue["incidents"][0]["overdue"], "first_response");
    let (status, ..) = call(Method::POST, format!("/incidents/{late}/merge"), &ana, Some(json!({ "into": id }))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, merged, ..) = call(Method::GET, format!("/incidents/{late}"), &ana, None).await;
    assert_eq!((merged["status"].as_str(), merged["merged_into"].as_i64()), (Some("rejected"), Some(id)));
    let (_, overdue, ..) = call(Method::GET, "/incidents?overdue=true".into(), &ana, None).await;
    assert_eq!(overdue["incidents"], json!([]));

    // The portal: the analyst's page has the handling forms, which change the incident; A's has none.
    let page = |cookie: String| {
        let (http, url) = (s.http.clone(), format!("{}/incidents/{id}", s.base));
        async move { http.get(url).header("cookie", cookie).send().await.unwrap().text().await.unwrap() }
    };
    let cookie = session(&s, "ana@cert.example").await;
    let html = page(cookie.clone()).await;
    assert!(html.contains("<h2>Handle</h2>") && html.contains("Take the site down"), "{html}");
    let csrf = csrf_of(&s, &cookie).await;
    let form =
        [("csrf", csrf.as_str()), ("status", "stalled"), ("severity", "medium"), ("tlp", "AMBER"), ("note", "waiting")];
    let r = s
        .http
        .post(format!("{}/incidents/{id}/change", s.base))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(page(cookie).await.contains("status: open → stalled"));
    let html = page(session(&s, "m@a.example").await).await;
    assert!(!html.contains("<h2>Handle</h2>") && html.contains("note.pdf"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_show_each_viewer_what_the_policy_allows() {
    let s = start().await;
    let store = s.store.as_ref();
    let center = org(store, "CERT", Sector::NationalCenter);
    let a = org(store, "Hospital A", Sector::Health);
    let b = org(store, "Bank B", Sector::Banking);
    events(store, &[a, a, b]);
    let analyst = token(store, &user(store, "ana@cert.example", center, Role::Analyst), TokenScope::Read);
    let member = token(store, &user(store, "m@a.example", a, Role::OrgMember), TokenScope::Read);
    let partner = token(store, &user(store, "p@partner.example", center, Role::Partner), TokenScope::Read);
    let page = |token: &str, query: &str| {
        let r = s.http.get(format!("{}/stats?from=2024-06-01&to=2024-06-30&{query}", s.base)).bearer_auth(token);
        async move {
            let r = r.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    // The center: rankings that name organizations, and any organization on its own.
    let (status, html) = page(&analyst, "").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Statistics: PT") && html.contains("<svg"), "{html}");
    assert!(html.contains("Hospital A") && html.contains("Bank B"), "{html}");
    let (_, html) = page(&analyst, &format!("org={}&by=day", a.0)).await;
    assert!(html.contains("Statistics: Hospital A"));
    assert!(html.contains("<tr><td>2024-06-01</td><td>2</td>"), "two infected addresses: {html}");
    // An organization's user: its own organization, its sector and the nation, no other name,
    // whatever it asks for.
    for query in ["", &format!("org={}", b.0), "sector=banking"] {
        let (status, html) = page(&member, query).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Statistics: Hospital A") && html.contains("sector health"), "{html}");
        assert!(!html.contains("Bank B") && !html.contains("banking"), "{query}: {html}");
    }
    // A partner: the nation.
    let (_, html) = page(&partner, "").await;
    assert!(html.contains("Statistics: PT") && !html.contains("Hospital A") && !html.contains("Bank B"));
    // A question that makes no sense is a 400 that says why.
    let (status, html) = page(&analyst, "by=fortnight").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("fortnight"), "{html}");
    // Ten years by day would be thousands of counts: refused with what to ask instead.
    let r = s.http.get(format!("{}/stats?from=2015-01-01&to=2024-12-31&by=day", s.base)).bearer_auth(&analyst);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("by=week, month or quarter"));
}
