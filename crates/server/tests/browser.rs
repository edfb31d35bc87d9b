//! The portal in a real browser: Debian's chromium driven through chromedriver (WebDriver),
//! against the real server. Screenshots of every page go to `target/browser-screenshots/`.
//!
//! Without chromedriver the test says so and passes, unless `FAROL_REQUIRE_BROWSER` is set (as
//! `.ci/run` sets it, after installing chromium and chromium-driver).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, org, start, user};
use farol_model::org::{Role, Sector};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    driver: Child,
    url: String,
    http: reqwest::Client,
    shots: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

impl Browser {
    async fn start() -> Option<Browser> {
        let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        if !std::path::Path::new(&driver).exists() {
            assert!(
                std::env::var_os("FAROL_REQUIRE_BROWSER").is_none(),
                "{driver} is missing: install chromium and chromium-driver (Debian packages)"
            );
            eprintln!("skipped: {driver} is missing (install chromium and chromium-driver to run the browser tests)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = common::client().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }}}});
        let session: Value =
            http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let id = session["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_owned();
        let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser { driver: child, url: format!("{base}/session/{id}"), http, shots })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut r = self.http.request(method.clone(), format!("{}{path}", self.url));
        if method != reqwest::Method::GET {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self.call(reqwest::Method::POST, "/element", json!({ "using": "css selector", "value": css })).await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let r = self.http.post(format!("{}/element", self.url)).json(&json!({ "using": "css selector", "value": css }));
        let v: Value = r.send().await.ok()?.json().await.ok()?;
        v["value"][ELEMENT].as_str().map(str::to_owned)
    }

    async fn find_all(&self, css: &str) -> usize {
        let v = self.call(reqwest::Method::POST, "/elements", json!({ "using": "css selector", "value": css })).await;
        v.as_array().unwrap().len()
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/clear"), json!({})).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/value"), json!({ "text": text })).await;
    }

    /// Clicks something that stays on the page (an option of a list).
    async fn press(&self, css: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), json!({})).await;
    }

    /// Clicks something that loads a new page, and waits until the new page is there.
    async fn click(&self, css: &str) {
        let page = self.find("html").await;
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), json!({})).await;
        for _ in 0..100 {
            // Mid-navigation there may be no document at all: keep waiting.
            if self.try_find("html").await.is_some_and(|now| now != page) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} loaded no new page");
    }

    async fn text(&self) -> String {
        let body = self.find("body").await;
        self.call(reqwest::Method::GET, &format!("/element/{body}/text"), json!(null))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn current(&self) -> String {
        self.call(reqwest::Method::GET, "/url", json!(null)).await.as_str().unwrap().to_owned()
    }

    async fn screenshot(&self, name: &str) {
        use std::io::Write as _;
        let png = self.call(reqwest::Method::GET, "/screenshot", json!(null)).await;
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, png.as_str().unwrap()).unwrap();
        std::fs::File::create(self.shots.join(format!("{name}.png"))).unwrap().write_all(&bytes).unwrap();
    }

    async fn fetch(&self, path: &str) -> String {
        let script =
            "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done);";
        let v = self.call(reqwest::Method::POST, "/execute/async", json!({ "script": script, "args": [path] })).await;
        v.as_str().unwrap().to_owned()
    }

    async fn login(&self, s: &Server, email: &str) {
        self.open(&format!("{}/login", s.base)).await;
        self.fill("#email", email).await;
        self.fill("#password", "a good long passphrase").await;
        self.click("#login").await;
    }

    async fn logout(&self) {
        self.click("form.logout button").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_and_organization_users_use_the_portal() {
    let Some(b) = Browser::start().await else { return };
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let a = org(s.store.as_ref(), "Hospital A", Sector::Health);
    let other = org(s.store.as_ref(), "Energy B", Sector::Energy);
    // Recent events, so that the dashboards have something to count.
    let ids = common::events_at(s.store.as_ref(), &[a, other], &farol_model::Timestamp::now().to_rfc3339());
    user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    user(s.store.as_ref(), "soc@hospital-a.example", a, Role::OrgAdmin);

    // A wrong password is refused with a message.
    b.open(&format!("{}/login", s.base)).await;
    b.screenshot("login").await;
    b.fill("#email", "ana@cert.example").await;
    b.fill("#password", "not the password").await;
    b.click("#login").await;
    assert!(b.text().await.contains("is wrong"));

    // The analyst: dashboard, search, an event with its raw record, export, upload.
    b.login(&s, "ana@cert.example").await;
    assert!(b.current().await.ends_with('/'), "{}", b.current().await);
    let dashboard = b.text().await;
    assert!(dashboard.contains("Dashboard") && dashboard.contains("Feeds"), "{dashboard}");
    b.screenshot("analyst-dashboard").await;
    b.open(&format!("{}/events", s.base)).await;
    assert_eq!(b.find_all("table.events tbody tr").await, 2);
    b.fill("input[name=cidr]", "192.0.2.1").await;
    b.click("#search").await;
    assert_eq!(b.find_all("table.events tbody tr").await, 1);
    b.screenshot("analyst-events").await;
    b.click("table.events tbody tr a").await;
    let detail = b.text().await;
    assert!(detail.contains(&format!("Event {}", ids[1])) && detail.contains("Raw record"), "{detail}");
    b.screenshot("analyst-event").await;
    b.open(&format!("{}/events?since=2024-01-01", s.base)).await;
    let csv = b.fetch("/events.csv?since=2024-01-01").await;
    assert!(csv.starts_with("time.source,feed.name") && csv.lines().count() == 3, "{csv}");
    b.open(&format!("{}/upload", s.base)).await;
    let report = std::env::temp_dir().join(format!("farol-browser-{}.jsonl", std::process::id()));
    std::fs::write(
        &report,
        "{\"source.ip\": \"198.51.100.9\", \"time.source\": \"2024-06-02T00:00:00Z\", \"classification.type\": \"scanner\"}\n",
    )
    .unwrap();
    b.fill("#file", &report.to_string_lossy()).await;
    b.click("#upload").await;
    let result = b.text().await;
    assert!(result.contains("1 new events"), "{result}");
    b.screenshot("analyst-upload").await;
    std::fs::remove_file(&report).unwrap();
    b.logout().await;
    assert!(b.current().await.ends_with("/login"));

    // The organization's user sees its own event only; another's URL is "not found".
    b.login(&s, "soc@hospital-a.example").await;
    b.screenshot("org-dashboard").await;
    b.open(&format!("{}/events", s.base)).await;
    assert_eq!(b.find_all("table.events tbody tr").await, 1);
    b.screenshot("org-events").await;
    b.open(&format!("{}/events/{}", s.base, ids[0])).await;
    let own = b.text().await;
    assert!(own.contains("192.0.2.0") && !own.contains("Raw record"), "{own}");
    b.open(&format!("{}/events/{}", s.base, ids[1])).await;
    let theirs = b.text().await;
    assert!(theirs.contains("404") && !theirs.contains("192.0.2.1"), "{theirs}");
    b.screenshot("org-other-event").await;
    b.open(&format!("{}/upload", s.base)).await;
    assert!(b.text().await.contains("403"));

    // As its organization's administrator, it adds a colleague, who logs in with the password
    // shown once.
    b.open(&format!("{}/users", s.base)).await;
    assert!(!b.text().await.contains("ana@cert.example"));
    b.fill("#email", "new@hospital-a.example").await;
    b.click("#add-user").await;
    let added = b.text().await;
    assert!(added.contains("new@hospital-a.example was added"), "{added}");
    b.screenshot("org-users").await;
    let password = added.split("shown this once: ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    b.logout().await;
    b.open(&format!("{}/login", s.base)).await;
    b.fill("#email", "new@hospital-a.example").await;
    b.fill("#password", &password).await;
    b.click("#login").await;
    assert!(b.current().await.ends_with('/'), "{}", b.current().await);
    assert!(b.text().await.contains("new@hospital-a.example (org-member)"));
    let _ = b.call(reqwest::Method::DELETE, "", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_is_reported_with_a_file_and_handled_in_the_portal() {
    let Some(b) = Browser::start().await else { return };
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let a = org(s.store.as_ref(), "Hospital A", Sector::Health);
    common::events_at(s.store.as_ref(), &[a], &farol_model::Timestamp::now().to_rfc3339());
    user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    user(s.store.as_ref(), "soc@hospital-a.example", a, Role::OrgAdmin);
    let mut hospital = s.store.orgs().unwrap().into_iter().find(|o| o.id == a).unwrap();
    hospital.contacts.push(farol_model::org::Contact::new("abuse@hospital-a.example").unwrap());
    s.store.update_org(&hospital).unwrap();

    // The hospital reports a phishing page, with the e-mail that led to it as a file.
    b.login(&s, "soc@hospital-a.example").await;
    b.open(&format!("{}/incidents", s.base)).await;
    b.fill("#title", "Phishing page imitating our intranet").await;
    b.fill("#class", "phishing").await;
    b.fill("#description", "Staff received a link to a fake login page.").await;
    b.fill("#affected", "https://intranet-login.example/").await;
    let evidence = std::env::temp_dir().join(format!("farol-browser-{}.txt", std::process::id()));
    std::fs::write(&evidence, "Subject: urgent password reset\n").unwrap();
    b.fill("#files", &evidence.to_string_lossy()).await;
    b.screenshot("org-report-incident").await;
    b.click("form[action='/incidents'] button").await;
    std::fs::remove_file(&evidence).unwrap();
    let page = b.text().await;
    assert!(
        page.contains("Incident 1: Phishing page imitating our intranet") && page.contains("farol-browser-"),
        "{page}"
    );
    assert!(!page.contains("Handle"), "{page}");
    b.logout().await;

    // The analyst saves a search for the hospital's events, links them, ticks the playbook's
    // first task, opens the incident, and writes to the hospital.
    b.login(&s, "ana@cert.example").await;
    b.open(&format!("{}/events?type=infected-system", s.base)).await;
    b.fill("#save-search input[name=name]", "infected").await;
    b.click("#save-search button").await;
    b.open(&format!("{}/incidents/1", s.base)).await;
    b.screenshot("analyst-incident").await;
    assert!(b.text().await.contains("Take the site down"));
    b.click("#link button").await; // nothing chosen: a clear message
    assert!(b.text().await.contains("no events to link"));
    b.open(&format!("{}/incidents/1", s.base)).await;
    let select = "#search";
    let option = b.find(&format!("{select} option[value='infected']")).await;
    b.call(reqwest::Method::POST, &format!("/element/{option}/click"), json!({})).await;
    b.click("#link button").await;
    assert!(b.text().await.contains("1 event(s) linked."));
    b.click("ol.tasks li:first-child button").await;
    let status = b.find("#status-field option[value='open']").await;
    b.call(reqwest::Method::POST, &format!("/element/{status}/click"), json!({})).await;
    b.fill("#note", "confirmed").await;
    b.click("#change button").await;
    b.fill("#message", "Please block the URL at your proxy.").await;
    b.click("#write button").await;
    let page = b.text().await;
    assert!(page.contains("Message queued for Hospital A (abuse@hospital-a.example)."), "{page}");
    b.open(&format!("{}/incidents/1", s.base)).await;
    let page = b.text().await;
    for expected in
        ["status: new → open", "confirmed", "task 1 done: Take the site down", "1 event(s) linked", "to Hospital A"]
    {
        assert!(page.contains(expected), "{expected:?} missing from {page}");
    }
    b.screenshot("analyst-incident-handled").await;
    b.open(&format!("{}/incidents?show=open", s.base)).await;
    assert_eq!(b.find_all("table.incidents tbody tr").await, 1);
    let _ = b.call(reqwest::Method::DELETE, "", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_are_drawn_in_the_portal_for_each_viewer() {
    let Some(b) = Browser::start().await else { return };
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let a = org(s.store.as_ref(), "Hospital A", Sector::Health);
    let other = org(s.store.as_ref(), "Energy B", Sector::Energy);
    common::events_at(s.store.as_ref(), &[a, a, other], &farol_model::Timestamp::now().to_rfc3339());
    user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    user(s.store.as_ref(), "soc@hospital-a.example", a, Role::OrgAdmin);

    // The analyst: the charts, the organizations ranked, and the form that asks by month.
    b.login(&s, "ana@cert.example").await;
    b.click("a[href='/stats']").await;
    assert!(b.find_all("figure svg").await >= 3, "the rate, the families and the networks");
    let page = b.text().await;
    assert!(page.contains("Statistics: PT") && page.contains("Hospital A") && page.contains("Energy B"), "{page}");
    b.press("select[name=by] option:nth-child(3)").await;
    b.click("form.filters button[type=submit]").await;
    assert!(b.current().await.contains("by=month"), "{}", b.current().await);
    b.screenshot("analyst-stats").await;
    b.logout().await;

    // The organization's user: its own organization beside its sector and the nation, no other.
    b.login(&s, "soc@hospital-a.example").await;
    b.open(&format!("{}/stats", s.base)).await;
    let page = b.text().await;
    assert!(page.contains("Statistics: Hospital A") && !page.contains("Energy B"), "{page}");
    assert!(b.find_all("figure svg").await >= 2);
    b.screenshot("org-stats").await;
    let _ = b.call(reqwest::Method::DELETE, "", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn communities_are_managed_and_indicators_shared_in_the_portal() {
    use farol_model::org::Distribution;
    use farol_model::{Timestamp, Tlp};
    let Some(b) = Browser::start().await else { return };
    let s = start().await;
    let center = org(s.store.as_ref(), "CERT", Sector::NationalCenter);
    let a = org(s.store.as_ref(), "Hospital A", Sector::Health);
    org(s.store.as_ref(), "Energy B", Sector::Energy);
    user(s.store.as_ref(), "ana@cert.example", center, Role::Analyst);
    user(s.store.as_ref(), "soc@hospital-a.example", a, Role::OrgAdmin);
    let now = Timestamp::now();
    s.store
        .put_indicator(&common::indicator("192.0.2.10", Tlp::Green, Distribution::Constituents, None, &[]), now)
        .unwrap();
    s.store
        .put_indicator(&common::indicator("192.0.2.66", Tlp::Red, Distribution::Constituents, None, &[]), now)
        .unwrap();

    // The analyst makes a community and adds the hospital to it.
    b.login(&s, "ana@cert.example").await;
    b.click("a[href='/sharing']").await;
    assert_eq!(b.find_all("#indicators tbody tr").await, 2);
    b.fill("#community-name", "health-isac").await;
    b.fill("#community-description", "Hospitals").await;
    b.click("form[action='/communities'] button").await;
    assert!(b.text().await.contains("health-isac"));
    b.click("form[action$='/add'] button").await;
    let page = b.text().await;
    assert!(page.contains("Energy B") && page.contains("remove"), "{page}");
    b.screenshot("analyst-sharing").await;
    b.logout().await;
    let c = s.store.communities().unwrap();
    assert_eq!((c.len(), c[0].members.len()), (1, 1), "{c:?}");
    let mut c = c[0].clone();
    c.members = vec![a];
    s.store.update_community(&c).unwrap();

    // The hospital: its community, the GREEN indicator, not the RED one, its collections.
    b.login(&s, "soc@hospital-a.example").await;
    b.open(&format!("{}/sharing", s.base)).await;
    let page = b.text().await;
    assert!(page.contains("health-isac") && page.contains("192.0.2.10") && !page.contains("192.0.2.66"), "{page}");
    assert!(page.contains("Community health-isac") && page.contains("Constituency"), "{page}");
    assert_eq!(b.find_all("form[action='/communities']").await, 0, "organizations do not manage communities");
    let rules = b.fetch("/api/v1/indicators?format=suricata").await;
    assert!(rules.contains("192.0.2.10") && !rules.contains("192.0.2.66"), "{rules}");
    // It shares a phishing URL with its community (the one collection it may add to)...
    b.press("#share-kind option:nth-child(4)").await;
    b.fill("#share-value", "http://fake-hospital-login.example/").await;
    b.press("#share-category option:nth-child(2)").await;
    b.click("#share button[type=submit]").await;
    let page = b.text().await;
    assert!(page.contains("fake-hospital-login.example") && page.contains("user:soc@hospital-a.example"), "{page}");
    // ...but not above what a community receives.
    b.press("#share-kind option:nth-child(4)").await;
    b.fill("#share-value", "http://other.example/").await;
    b.press("#share-tlp option:nth-child(3)").await;
    b.click("#share button[type=submit]").await;
    let page = b.text().await;
    assert!(page.contains("shares up to TLP:GREEN") && !page.contains("other.example/ "), "{page}");
    b.screenshot("org-sharing").await;
    let _ = b.call(reqwest::Method::DELETE, "", json!({})).await;
}
