//! Two farol centers exchanging indicators over TAXII 2.1, as operators set it up: a partner
//! account on one, `[partners.NAME]` on the other, `farol partners pull`. What comes in keeps
//! its TLP and origin; a second pull brings nothing again; what a partner sent never goes back.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use common::{farol, init, stderr, stdout};

fn get(port: u16, path: &str, token: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn two_centers_exchange_indicators_over_taxii() {
    // Center A, with a partner account for center B and indicators of every reach.
    let a = init();
    ok(farol(&a, &["org", "add", "CERT-B", "--sector", "international-partner"]));
    let mut add = Command::new(env!("CARGO_BIN_EXE_farol"))
        .arg("-d")
        .arg(&a.path)
        .args(["user", "add", "taxii@cert-b.example", "--org", "CERT-B", "--role", "partner", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"a long partner passphrase\n").unwrap();
    assert!(add.wait().unwrap().success());
    let token = ok(farol(&a, &["user", "token", "taxii@cert-b.example", "--scope", "write"])).trim().to_owned();
    for (value, tlp, distribution) in [
        ("203.0.113.1", "GREEN", "partners"),
        ("203.0.113.2", "AMBER", "partners"),
        ("203.0.113.3", "GREEN", "constituents"),
    ] {
        ok(farol(
            &a,
            &[
                "indicators",
                "add",
                "ip",
                value,
                "--category",
                "c2-server",
                "--tlp",
                tlp,
                "--distribution",
                distribution,
            ],
        ));
    }
    let (mut server, port) = common::serve(&a, &[]);
    let collections: serde_json::Value = serde_json::from_str(&get(port, "/taxii2/api/collections/", &token)).unwrap();
    let partners = collections["collections"].as_array().unwrap().iter().find(|c| c["alias"] == "partners").unwrap();
    let url = format!("http://127.0.0.1:{port}/taxii2/api/collections/{}/", partners["id"].as_str().unwrap());

    // Center B pulls A's partner collection and pushes its own.
    let b = init();
    ok(farol(
        &b,
        &[
            "indicators",
            "add",
            "domain",
            "b-only.example",
            "--category",
            "phishing",
            "--tlp",
            "CLEAR",
            "--distribution",
            "partners",
        ],
    ));
    let mut toml = std::fs::read_to_string(b.path.join("farol.toml")).unwrap();
    toml.push_str(&format!(
        "\n[partners.cert-a]\nurl = \"{url}\"\ntoken = \"${{CERT_A_TOKEN}}\"\nallow_private = true\npush = \"partners\"\n\
         # What comes from A is shared with partners too: only the loop check keeps it from A.\n\
         distribution = \"partners\"\n"
    ));
    std::fs::write(b.path.join("farol.toml"), toml).unwrap();
    let pull = || common::command(&b, &["partners", "pull"]).env("CERT_A_TOKEN", &token).output().unwrap();
    let first = ok(pull());
    assert!(first.contains("1 indicators new or changed") && first.contains("1 pushed"), "{first}");
    let listed = ok(farol(&b, &["indicators", "list", "--all"]));
    let line = listed.lines().find(|l| l.contains("203.0.113.1")).unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("partner:cert-a") && line.contains("TLP:GREEN"), "{line}");
    assert!(
        !listed.contains("203.0.113.2") && !listed.contains("203.0.113.3"),
        "AMBER and constituents stay at A: {listed}"
    );

    // Again: nothing new either way, and what came from A does not go back to it.
    let second = ok(pull());
    assert!(second.contains("0 objects") && second.contains("0 pushed"), "{second}");
    let at_a = ok(farol(&a, &["indicators", "list", "--all"]));
    let pushed: Vec<&str> = at_a.lines().filter(|l| l.contains("partner:CERT-B")).collect();
    assert_eq!(pushed.len(), 1, "{at_a}");
    assert!(pushed[0].contains("b-only.example") && pushed[0].contains("TLP:CLEAR"), "{at_a}");
    assert!(ok(farol(&b, &["partners", "list"])).contains(" ok"));

    // A partner that does not answer is an error that names it.
    server.kill().unwrap();
    server.wait().unwrap();
    let failed = pull();
    assert_eq!(failed.status.code(), Some(4), "{}", stderr(&failed));
    assert!(stderr(&failed).contains("cert-a"), "{}", stderr(&failed));
}

#[test]
fn a_partner_s_bundle_is_taken_in_once_with_its_tlp() {
    let a = init();
    ok(farol(&a, &["indicators", "add", "url", "http://phish.example/x", "--category", "phishing", "--tlp", "GREEN"]));
    ok(farol(
        &a,
        &["indicators", "add", "sha256", &"ab".repeat(32), "--category", "malware-distribution", "--tlp", "RED"],
    ));
    let bundle = a.path.join("bundle.json");
    ok(farol(&a, &["indicators", "export", "stix", "--out", bundle.to_str().unwrap()]));
    let mut text: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    text["objects"].as_array_mut().unwrap().push(serde_json::json!({
        "type": "indicator", "id": "indicator--0f0b2c1e-8f3e-4b5e-9a7c-3d2e1f0a9b8c", "valid_from": "2026-01-01T00:00:00Z",
        "pattern": "[ipv4-addr:value = '192.0.2.1'] AND [domain-name:value = 'x.example']", "pattern_type": "stix"
    }));
    std::fs::write(&bundle, text.to_string()).unwrap();

    let b = init();
    let import = || ok(farol(&b, &["indicators", "import", bundle.to_str().unwrap(), "--partner", "cert-a"]));
    let first = import();
    assert!(first.contains("2 indicators new or changed, 0 unchanged, 1 not kept"), "{first}");
    assert!(first.contains("combines observables"), "{first}");
    assert!(import().contains("0 indicators new or changed, 2 unchanged"));
    let listed = ok(farol(&b, &["indicators", "list"]));
    let red = listed.lines().find(|l| l.contains(&"ab".repeat(32))).unwrap_or_else(|| panic!("{listed}"));
    assert!(red.contains("TLP:RED") && red.contains("partner:cert-a"), "{red}");
    let refused = farol(&b, &["indicators", "import", "Cargo.toml", "--partner", "cert-a"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
}
