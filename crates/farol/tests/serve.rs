//! `farol user` and `farol serve`, as an operator uses them: users and tokens from the command
//! line, the API answering with that token and refusing it once the user is disabled, and IP
//! data loaded while the server runs taken into use without a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use common::{farol, init, stderr, stdout};

fn with_stdin(dir: &common::Dir, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_farol"))
        .arg("-d")
        .arg(&dir.path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A plain HTTP/1.1 GET on 127.0.0.1: the status line and the body.
fn get(port: u16, path: &str, token: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// A plain HTTP/1.1 POST of a report for a feed: the status line and the body.
fn upload(port: u16, feed: &str, token: &str, report: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /api/v1/reports?feed={feed} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{report}",
        report.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    (
        answer.lines().next().unwrap_or_default().to_owned(),
        answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned(),
    )
}

#[test]
fn ip_data_loaded_while_serving_enriches_the_next_reports() {
    let d = &init();
    let pw = with_stdin(
        d,
        &["user", "add", "ana@cert.example", "--role", "analyst", "--password-stdin"],
        "a long enough passphrase\n",
    );
    assert!(pw.status.success());
    let token = stdout(&farol(d, &["user", "token", "ana@cert.example", "--scope", "write"])).trim().to_owned();
    let (mut server, port) = common::serve(d, &["--reload-every", "1s"]);
    let line = |ip: &str| {
        format!(
            "{{\"source.ip\": \"{ip}\", \"time.source\": \"2024-06-01T00:00:00Z\", \"classification.type\": \"scanner\"}}\n"
        )
    };
    let (status, body) = upload(port, "partner-intelmq", &token, &line("193.136.0.1"));
    assert!(status.contains("202"), "{status} {body}");
    let sample = common::examples().join("../data/ipdata-sample/asn-ipv4-pt.csv");
    assert!(farol(d, &["ipdata", "load", &sample.to_string_lossy()]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (status, body) = upload(port, "partner-intelmq", &token, &line("193.136.0.2"));
    assert!(status.contains("202"), "{status} {body}");
    let (_, events) = get(port, "/api/v1/events?limit=10", &token);
    let events: serde_json::Value = serde_json::from_str(&events).unwrap();
    let asn = |ip: &str| {
        events["events"].as_array().unwrap().iter().find(|e| e["event"]["source.ip"] == ip).unwrap()["event"]
            ["source.asn"]
            .clone()
    };
    assert_eq!(asn("193.136.0.1"), serde_json::Value::Null, "before the load");
    assert_eq!(asn("193.136.0.2"), 1930, "after the load, without a restart");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn users_and_tokens_from_the_command_line_work_against_the_server() {
    users_and_tokens_against_the_server(&init(), |_| {});
}

/// The same on a PostgreSQL store.
#[test]
fn users_and_tokens_work_against_the_server_on_postgresql() {
    let Some(schema) = farol_store::testing::PostgresSchema::new() else { return };
    let d = common::init_on_postgres(&schema);
    // farol migrate makes the tables and the center's organization, which its analysts belong to.
    assert!(farol(&d, &["migrate"]).status.success());
    users_and_tokens_against_the_server(&d, |(port, token)| {
        let (status, body) = get(port, "/api/v1/incidents", token);
        assert!(status.contains("200") && body.contains("[]"), "{status} {body}");
        let (status, body) = get(port, "/api/v1/indicators", token);
        assert!(status.contains("200"), "{status} {body}");
    });
}

/// Users and tokens made on the command line, the API answering with the token, and refusing it
/// once the user is disabled; `serving` runs while the token is good.
fn users_and_tokens_against_the_server(d: &common::Dir, serving: impl FnOnce((u16, &str))) {
    let short = with_stdin(d, &["user", "add", "ana@cert.example", "--role", "analyst", "--password-stdin"], "short\n");
    assert_eq!(short.status.code(), Some(2), "{}", stderr(&short));
    assert!(stderr(&short).contains("12 characters"));
    let ok = with_stdin(
        d,
        &["user", "add", "ana@cert.example", "--role", "analyst", "--password-stdin"],
        "a long enough passphrase\n",
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let again = with_stdin(d, &["user", "add", "ANA@cert.example", "--role", "analyst"], "");
    assert_eq!(again.status.code(), Some(2), "the same address in other case is the same user");
    let wrong_org = farol(d, &["user", "add", "x@cert.example", "--role", "org-member"]);
    assert_eq!(wrong_org.status.code(), Some(2));
    assert!(stderr(&wrong_org).contains("national center"));
    assert!(stdout(&farol(d, &["user", "list"])).contains("ana@cert.example"));
    let token = farol(d, &["user", "token", "ana@cert.example", "--expires", "30"]);
    assert!(token.status.success());
    let token = stdout(&token).trim().to_owned();
    assert!(token.starts_with("farol_"));

    let (mut server, port) = common::serve(d, &["--reload-every", "1s"]);
    let (status, body) = get(port, "/api/v1/me", &token);
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains("ana@cert.example"));
    serving((port, &token));
    assert!(farol(d, &["user", "disable", "ana@cert.example"]).status.success());
    let (status, _) = get(port, "/api/v1/me", &token);
    assert!(status.contains("401"), "{status}");
    server.kill().unwrap();
    server.wait().unwrap();
}
