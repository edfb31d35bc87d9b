//! Collectors against a real HTTP server on 127.0.0.1 and a real spool directory.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use farol_collect::{Collector, CollectorConfig, Context, HttpConfig, run_once};
use farol_pipeline::{Feed, Ingested};
use farol_store::{EventQuery, SqliteStore, Store};

const EVENTS: &str = "{\"source.ip\": \"192.0.2.1\", \"time.source\": \"2024-06-01\"}\n{\"source.ip\": \"192.0.2.2\", \"time.source\": \"2024-06-01\"}\n";

fn ctx(store: &Arc<dyn Store>, workdir: &std::path::Path) -> Context {
    Context {
        store: store.clone(),
        experts: Arc::new(|_: &Feed| Vec::new()),
        workdir: workdir.to_owned(),
        queue: false,
    }
}

/// A tiny HTTP/1.1 server: `handler` gets the request line and headers, returns the raw response.
fn server(handler: impl Fn(&str, &[String]) -> Vec<u8> + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let handler = handler.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    headers.push(line.trim_end().to_ascii_lowercase());
                }
                let _ = stream.write_all(&handler(request.trim_end(), &headers));
            });
        }
    });
    format!("http://{addr}")
}

fn ok(body: &str, extra: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}", body.len()).into_bytes()
}

fn setup() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("farol.db")).unwrap());
    (dir, store)
}

fn http(url: String, allow_private: bool) -> HttpConfig {
    toml::from_str(&format!("url = {url:?}\nallow_private = {allow_private}\nretry_delay_ms = 10")).unwrap()
}

fn collector(config: HttpConfig) -> Collector {
    Collector { feed: Feed::adhoc("partner", Some("intelmq")), config: CollectorConfig::Http(config), schedule: None }
}

fn events(store: &dyn Store) -> usize {
    store
        .events(&EventQuery { visible: farol_store::Visibility::All, limit: 1000, ..Default::default() })
        .unwrap()
        .len()
}

#[tokio::test]
async fn conditional_get_with_credentials_from_the_environment() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let base = server(move |request, headers| {
        counted.fetch_add(1, Ordering::SeqCst);
        assert!(request.starts_with("GET /events.jsonl "), "{request}");
        if !headers.iter().any(|h| h == "auth-key: s3cret")
            || !headers.iter().any(|h| h == "authorization: basic dxnlcjpwyxnz")
        {
            return b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
        }
        if headers.iter().any(|h| h == "if-none-match: \"v1\"") {
            return b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_vec();
        }
        ok(EVENTS, "ETag: \"v1\"\r\n")
    });
    auth_key_is_set();
    let (dir, store) = setup();
    let mut config = http(format!("{base}/events.jsonl"), true);
    config.headers.insert("Auth-Key".into(), "${FAROL_TEST_AUTH_KEY}".into());
    config.username = Some("user".into());
    config.password = Some("pass".into());
    let c = collector(config);
    let run = run_once(&ctx(&store, &dir.path().join("tmp")), &c).await.unwrap();
    assert_eq!(run.ingested.len(), 1);
    let Ingested::Processed(s) = &run.ingested[0] else { panic!() };
    assert_eq!(s.report.name.as_deref(), Some("events.jsonl"));
    assert_eq!(events(&*store), 2);
    let again = run_once(&ctx(&store, &dir.path().join("tmp")), &c).await.unwrap();
    assert!(again.unchanged && again.ingested.is_empty(), "the ETag makes the second run a 304");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(std::fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none(), "no download is left behind");
    let health = store.feed_health(farol_model::Timestamp::now()).unwrap();
    assert!(health[0].last_success.is_some() && health[0].last_error.is_none());
}

/// Setting an environment variable is `unsafe` in edition 2024, which farol forbids: the
/// variable comes from `.cargo/config.toml` instead.
fn auth_key_is_set() {
    assert_eq!(std::env::var("FAROL_TEST_AUTH_KEY").as_deref(), Ok("s3cret"), "set by .cargo/config.toml");
}

#[tokio::test]
async fn a_partial_or_oversized_download_is_never_ingested() {
    let base = server(|request, _| {
        if request.contains("/cut") {
            // Promises 1000 bytes, sends a few lines and closes.
            format!("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{EVENTS}").into_bytes()
        } else {
            ok(&EVENTS.repeat(100), "")
        }
    });
    let (dir, store) = setup();
    let err =
        run_once(&ctx(&store, dir.path()), &collector(http(format!("{base}/cut.jsonl"), true))).await.unwrap_err();
    assert!(err.to_string().contains("was cut"), "{err}");
    let mut config = http(format!("{base}/big.jsonl"), true);
    config.max_bytes = 1000;
    let err = run_once(&ctx(&store, dir.path()), &collector(config)).await.unwrap_err();
    assert!(err.to_string().contains("more than max_bytes (1000)"), "{err}");
    assert_eq!(events(&*store), 0);
    assert!(store.reports(None, 10).unwrap().is_empty());
    let health = store.feed_health(farol_model::Timestamp::now()).unwrap();
    assert!(health[0].last_error.as_ref().unwrap().1.contains("max_bytes"));
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let base = server(move |_, _| {
        if counted.fetch_add(1, Ordering::SeqCst) < 2 {
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        } else {
            ok(EVENTS, "")
        }
    });
    let (dir, store) = setup();
    let run = run_once(&ctx(&store, dir.path()), &collector(http(format!("{base}/e.jsonl"), true))).await.unwrap();
    assert_eq!(run.ingested.len(), 1);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let base = server(|_, _| ok(EVENTS, ""));
    let (dir, store) = setup();
    let err = run_once(&ctx(&store, dir.path()), &collector(http(format!("{base}/e.jsonl"), false))).await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1 is a loopback, private or link-local address"), "{err}");
    let by_name = base.replace("127.0.0.1", "localhost");
    let err =
        run_once(&ctx(&store, dir.path()), &collector(http(format!("{by_name}/e.jsonl"), false))).await.unwrap_err();
    assert!(err.to_string().contains("resolves only to loopback, private or link-local addresses"), "{err}");
    assert_eq!(events(&*store), 0);
}

#[tokio::test]
async fn a_spool_directory_ingests_each_file_once() {
    let (dir, store) = setup();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::write(spool.join("a.jsonl"), EVENTS).unwrap();
    std::fs::write(spool.join("b.jsonl"), "not json at all\n").unwrap();
    std::fs::write(spool.join(".being-written.jsonl"), EVENTS).unwrap();
    let c = Collector {
        feed: Feed::adhoc("spool", Some("intelmq")),
        config: CollectorConfig::Spool { dir: spool.clone() },
        schedule: None,
    };
    let run = run_once(&ctx(&store, dir.path()), &c).await.unwrap();
    assert_eq!(run.ingested.len(), 2, "a report with rejects is still a processed report");
    assert!(spool.join("done/a.jsonl").exists() && spool.join("done/b.jsonl").exists());
    assert!(spool.join(".being-written.jsonl").exists(), "hidden files are left alone");
    let again = run_once(&ctx(&store, dir.path()), &c).await.unwrap();
    assert!(again.unchanged);

    // A file that cannot be ingested at all goes to failed/, with the reason.
    std::fs::write(spool.join("c.csv"), "a,b\n1,2\n").unwrap();
    let err = run_once(&ctx(&store, dir.path()), &Collector { feed: Feed::adhoc("spool", None), ..c.clone() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1 spool file(s) failed"), "{err}");
    let reason = std::fs::read_to_string(spool.join("failed/c.csv.error")).unwrap();
    assert!(reason.contains("cannot tell the format"), "{reason}");
}

#[tokio::test]
async fn a_misp_feed_is_taken_event_by_event_once_each() {
    let event = |uuid: &str, value: &str, timestamp: u32| {
        format!(
            "{{\"Event\": {{\"uuid\": \"{uuid}\", \"info\": \"partner event\", \"date\": \"2026-11-01\", \"timestamp\": \"{timestamp}\",
              \"Attribute\": [{{\"uuid\": \"57f4f6d9-0000-4000-8000-{timestamp:012}\", \"type\": \"ip-dst\", \"category\": \"Network activity\",
              \"value\": \"{value}\", \"to_ids\": true, \"timestamp\": \"{timestamp}\", \"Tag\": [{{\"name\": \"tlp:green\"}}]}}]}}}}"
        )
    };
    let (a, b) = ("5e0e1c2a-0b6c-4c5e-9f4a-0a1b2c3d4e5f", "6f1f2d3b-1c7d-4d6f-8a5b-1b2c3d4e5f60");
    let second = Arc::new(AtomicUsize::new(1_700_000_000));
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s2, r2) = (second.clone(), requests.clone());
    let url = server(move |line, _| {
        let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
        r2.lock().unwrap().push(path.clone());
        let b_stamp = s2.load(Ordering::SeqCst);
        match path.as_str() {
            "/feed/manifest.json" => ok(
                &format!(
                    "{{\"{a}\": {{\"timestamp\": 1600000000}}, \"{b}\": {{\"timestamp\": \"{b_stamp}\"}}, \"../../etc/passwd\": {{\"timestamp\": 1}}}}"
                ),
                "",
            ),
            p if p == format!("/feed/{a}.json") => ok(&event(a, "198.51.100.1", 1_600_000_000), ""),
            p if p == format!("/feed/{b}.json") => {
                ok(&event(b, &format!("198.51.100.{}", b_stamp % 200), b_stamp as u32), "")
            }
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        }
    });
    let (dir, store) = setup();
    let config: HttpConfig = toml::from_str(&format!("url = \"{url}/feed\"\nallow_private = true")).unwrap();
    let collector = Collector {
        feed: Feed::adhoc("misp-partner", Some("misp")),
        config: CollectorConfig::MispFeed(config),
        schedule: None,
    };
    let first = run_once(&ctx(&store, dir.path()), &collector).await.unwrap();
    assert_eq!(first.ingested.len(), 2);
    assert_eq!(events(store.as_ref()), 2);
    assert!(
        !requests.lock().unwrap().iter().any(|p| p.contains("passwd")),
        "names that are not UUIDs are never fetched"
    );
    // Nothing changed: the manifest only.
    requests.lock().unwrap().clear();
    assert!(run_once(&ctx(&store, dir.path()), &collector).await.unwrap().unchanged);
    assert_eq!(*requests.lock().unwrap(), ["/feed/manifest.json"]);
    // One event changed: that one again.
    second.store(1_700_000_100, Ordering::SeqCst);
    let again = run_once(&ctx(&store, dir.path()), &collector).await.unwrap();
    assert_eq!(again.ingested.len(), 1);
    assert_eq!(events(store.as_ref()), 3);
}
