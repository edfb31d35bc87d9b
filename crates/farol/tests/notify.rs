//! Notifications as the center runs them: `farol notify` against the example data, mute rules,
//! and delivery to a real SMTP server (aiosmtpd from PyPI, which writes what it receives to a
//! Maildir), including a sender killed again and again.
//!
//! The SMTP tests need `FAROL_TEST_AIOSMTPD`, the Python that has aiosmtpd installed (`.ci/run`
//! sets it); without it they say so and pass, unless `FAROL_REQUIRE_SMTP` is set.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Dir, command, examples, farol, init, init_with, stderr, stdout};

/// A farol directory with the example organizations, one report of the example feed, and a
/// sender; the SMTP server is `smtp`.
fn center(smtp: &str) -> Dir {
    let d = init_with(&["--center", "CERT CI", "--country", "PT"]);
    let o = farol(&d, &["org", "import", examples().join("orgs.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    ingest(&d, &examples().join("2024-06-01-event4_sinkhole-example.csv"));
    let toml = d.path.join("farol.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("[notify]\n", &format!("[notify]\nfrom = \"CERT CI <cert@cert.example>\"\nsmtp_url = \"{smtp}\"\n"));
    std::fs::write(toml, text).unwrap();
    d
}

fn ingest(d: &Dir, file: &Path) {
    let o = farol(d, &["ingest", "--feed", "example-sinkhole", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// An SMTP URL where nothing listens.
fn nowhere() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("smtp://127.0.0.1:{port}")
}

/// The rows of a `farol notify --dry-run` table, as (organization, events, muted).
fn planned(d: &Dir, args: &[&str]) -> BTreeMap<String, (String, String)> {
    let o = farol(d, &[&["notify", "--dry-run"], args].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    out.lines()
        .skip_while(|l| !l.starts_with("organization"))
        .skip(1)
        .take_while(|l| !l.contains("message(s)"))
        .map(|l| {
            // Names hold single spaces; columns are two or more apart.
            let cells: Vec<&str> = l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
            (cells[0].to_owned(), (cells[4].to_owned(), cells[5].to_owned()))
        })
        .collect()
}

#[test]
fn nothing_is_sent_without_a_sender_and_a_server() {
    let d = init();
    let o = farol(&d, &["notify"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("set [notify] from in farol.toml"), "{}", stderr(&o));
    let toml = d.path.join("farol.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("[notify]\n", "[notify]\nfrom = \"CERT <cert@cert.example>\"\n");
    std::fs::write(&toml, text).unwrap();
    let o = command(&d, &["notify"]).env_remove("FAROL_SMTP_URL").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no SMTP server: set [notify] smtp_url"), "{}", stderr(&o));
    let o = command(&d, &["notify"]).env("FAROL_SMTP_URL", "http://x").output().unwrap();
    assert!(stderr(&o).contains("must start with smtp:// or smtps://"), "{}", stderr(&o));
    // A bad sender is a configuration error, reported with the others.
    let text = std::fs::read_to_string(&toml).unwrap().replace("<cert@cert.example>", "<cert>");
    std::fs::write(&toml, text).unwrap();
    let o = farol(&d, &["notify", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("notify.from: "), "{}", stderr(&o));
}

#[test]
fn each_contact_is_told_once_about_each_report() {
    let d = center(&nowhere());
    let plan = planned(&d, &[]);
    let events: Vec<(&str, &str)> = plan.iter().map(|(k, v)| (k.as_str(), v.0.as_str())).collect();
    assert_eq!(
        events,
        [
            ("MEO", "105"),
            ("NOS", "63"),
            ("RCTS (FCCN)", "5"),
            ("Universidade Exemplo", "6"),
            ("Vodafone Portugal", "50")
        ]
    );
    let text = stdout(&farol(&d, &["notify", "--dry-run", "--show", "--org", "NOS"]));
    for expected in ["63 infected-system (18 endereços)", "Mais frequentes: gamut (12), avalanche-andromeda (11)"] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    // The server is down: every message is queued and waits for a retry.
    let o = farol(&d, &["notify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("5 message(s) queued (229 event(s), 0 muted); 0 sent, 5 to retry, 0 failed"),
        "{}",
        stdout(&o)
    );
    let outbox = stdout(&farol(&d, &["notify", "outbox"]));
    assert_eq!(outbox.lines().filter(|l| l.contains(" pending ")).count(), 5, "{outbox}");
    assert!(outbox.contains("onnection refused"), "the error is kept per message: {outbox}");
    // Told once: processing the report again gives its events new ids, not new news.
    assert!(planned(&d, &["--now"]).is_empty());
    let o = farol(&d, &["reprocess", "--feed", "example-sinkhole"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(planned(&d, &["--now"]).is_empty());
    // A new report is news, for the organizations it concerns only.
    let text = std::fs::read_to_string(examples().join("2024-06-01-event4_sinkhole-example.csv")).unwrap();
    let later: String =
        text.lines().take(11).map(|l| format!("{}\n", l.replace("2024-06-01 ", "2024-06-02 "))).collect();
    let file = d.path.join("2024-06-02-event4_sinkhole-example.csv");
    std::fs::write(&file, later).unwrap();
    ingest(&d, &file);
    let plan = planned(&d, &["--now"]);
    let total: u32 = plan.values().map(|(n, _)| n.parse::<u32>().unwrap()).sum();
    assert_eq!(total, 10, "{plan:?}");
    assert!(plan.len() < 5, "{plan:?}");
}

#[test]
fn mute_rules_leave_events_out_until_they_expire() {
    let d = center(&nowhere());
    let add = |args: &[&str]| farol(&d, &[&["inhibition", "add"], args].concat());
    let o = add(&["--reason", "nothing"]);
    assert_eq!(o.status.code(), Some(2), "a rule that matches everything is refused: {}", stderr(&o));
    let o = add(&[
        "--org",
        "NOS",
        "--classification",
        "infected-system",
        "--reason",
        "their own sinkhole",
        "--expires",
        "30d",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = add(&["--asn", "3243", "--reason", "expired", "--expires", "2020-01-01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = add(&["--org", "RCTS (FCCN)", "--classification", "qakbot", "--reason", "an identifier"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&farol(&d, &["inhibition", "list"]));
    assert!(list.contains("their own sinkhole") && list.contains("(expired)"), "{list}");
    let plan = planned(&d, &[]);
    assert!(!plan.contains_key("NOS"), "every NOS event is muted: {plan:?}");
    assert_eq!(plan["MEO"], ("105".into(), "0".into()), "an expired rule mutes nothing");
    assert_eq!(plan["RCTS (FCCN)"], ("3".into(), "2".into()), "two qakbot events muted");
    let o = farol(&d, &["inhibition", "remove", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(planned(&d, &[])["NOS"], ("63".into(), "0".into()));
    assert_eq!(farol(&d, &["inhibition", "remove", "1"]).status.code(), Some(3));
}

/// aiosmtpd on a free port of 127.0.0.1, writing what it receives to a Maildir.
struct Smtpd {
    child: Child,
    url: String,
    maildir: PathBuf,
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python with aiosmtpd, or `None` (the test then passes, unless SMTP is required).
fn aiosmtpd() -> Option<std::ffi::OsString> {
    let Some(python) = std::env::var_os("FAROL_TEST_AIOSMTPD") else {
        assert!(
            std::env::var_os("FAROL_REQUIRE_SMTP").is_none(),
            "FAROL_TEST_AIOSMTPD is not set: point it at a Python with aiosmtpd (pip install aiosmtpd)"
        );
        eprintln!("skipped: FAROL_TEST_AIOSMTPD is not set (a Python with aiosmtpd; .ci/run sets it)");
        return None;
    };
    Some(python)
}

fn smtpd(dir: &Dir) -> Option<Smtpd> {
    let python = aiosmtpd()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let maildir = dir.path.join("received");
    let child = Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    listening(port);
    Some(Smtpd { child, url: format!("smtp://127.0.0.1:{port}"), maildir })
}

fn listening(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// aiosmtpd over TLS (`starttls` or `tls`), which takes mail only after authentication as
/// farol / s3cret: a certificate for 127.0.0.1 from a CA of the test's own, made by openssl.
const TLS_SMTPD: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
mode, port, maildir, cert, key = sys.argv[1:6]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
def check(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == b"farol" and auth_data.password == b"s3cret")
# aiosmtpd counts only STARTTLS as TLS when it offers AUTH; on implicit TLS it must be told.
options = dict(hostname="127.0.0.1", port=int(port), authenticator=check, auth_required=True,
               auth_require_tls=mode == "starttls")
if mode == "starttls":
    controller = Controller(Mailbox(maildir), tls_context=context, require_starttls=True, **options)
else:
    controller = Controller(Mailbox(maildir), ssl_context=context, **options)
controller.start()
while True:
    time.sleep(3600)
"#;

fn tls_smtpd(python: &std::ffi::OsStr, dir: &Path, mode: &str) -> Smtpd {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let maildir = dir.join(format!("received-{mode}"));
    let child = Command::new(python)
        .args(["-c", TLS_SMTPD, mode, &port.to_string()])
        .args([&maildir, &dir.join("cert.pem"), &dir.join("key.pem")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    listening(port);
    Smtpd { child, url: format!("127.0.0.1:{port}"), maildir }
}

/// A CA and a certificate it signed for 127.0.0.1, as PEM files in `dir`.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let o =
            Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (Debian's openssl package)");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=farol test CA"],
        ]
        .concat(),
    );
    openssl(&[&["req"], &ec[..], &["-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// A received message: its headers (folded lines joined) and its body.
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    }

    /// The attachment's name and decoded bytes.
    fn attachment(&self) -> (String, Vec<u8>) {
        let at = self.body.find("Content-Disposition: attachment; filename=\"").unwrap();
        let rest = &self.body[at + 43..];
        let name = rest[..rest.find('"').unwrap()].to_owned();
        let start = rest.find("\r\n\r\n").or_else(|| rest.find("\n\n")).unwrap();
        let b64: String = rest[start..]
            .lines()
            .map(str::trim)
            .skip_while(|l| l.is_empty())
            .take_while(|l| !l.starts_with("--"))
            .collect();
        (name, base64::engine::general_purpose::STANDARD.decode(b64).unwrap())
    }
}

fn received(maildir: &Path) -> Vec<Received> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else { return Vec::new() };
    entries
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap().replace("\r\n", "\n");
            let (head, body) = text.split_once("\n\n").unwrap();
            let mut headers: Vec<(String, String)> = Vec::new();
            for line in head.lines() {
                if line.starts_with([' ', '\t']) {
                    headers.last_mut().unwrap().1.push_str(line.trim_start());
                } else if let Some((n, v)) = line.split_once(':') {
                    headers.push((n.to_owned(), v.trim().to_owned()));
                }
            }
            Received { headers, body: body.to_owned() }
        })
        .collect()
}

#[test]
fn digests_reach_a_real_smtp_server() {
    let tmp = init();
    let Some(smtp) = smtpd(&tmp) else { return };
    let d = center(&smtp.url);
    let o = farol(&d, &["notify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("5 message(s) queued (229 event(s), 0 muted); 5 sent, 0 to retry, 0 failed"),
        "{}",
        stdout(&o)
    );
    let mail = received(&smtp.maildir);
    assert_eq!(mail.len(), 5);
    let expected = [
        ("abuse@meo.example", 105, "csv"),
        ("abuse@nos.example", 63, "csv"),
        ("cert@rcts.example", 5, "json"),
        ("csirt@universidade-exemplo.example", 6, "csv"),
        ("abuse@vodafone-pt.example", 50, "csv"),
    ];
    for (to, events, format) in expected {
        let m = mail.iter().find(|m| m.header("X-RcptTo") == to).unwrap_or_else(|| panic!("nothing for {to}"));
        assert_eq!(m.header("To"), to);
        assert_eq!(m.header("X-MailFrom"), "cert@cert.example");
        assert!(m.header("From").contains("cert@cert.example"));
        let subject = m.header("Subject");
        assert!(subject.starts_with("[TLP:AMBER] [CERT CI #2"), "{subject}");
        assert!(subject.contains(&format!("] {events} ")), "{subject}");
        let ticket = subject.split('#').nth(1).unwrap().split(']').next().unwrap();
        assert!(m.header("Message-ID").starts_with(&format!("<{ticket}.")), "{}", m.header("Message-ID"));
        let (name, bytes) = m.attachment();
        assert_eq!(name, format!("cert-ci-{ticket}.{format}"));
        let text = String::from_utf8(bytes).unwrap();
        if format == "csv" {
            assert!(text.starts_with("time.source,feed.name,classification.taxonomy"), "{text}");
            assert_eq!(text.lines().count(), events + 1);
        } else {
            let json: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
            assert_eq!(json.len(), events);
            assert!(json.iter().all(|e| e["classification.type"] == "infected-system"));
        }
        // The language is the contact's: Universidade Exemplo's is English, the others' Portuguese.
        let english = to.starts_with("csirt@");
        let body = m.body.replace("=\n", "");
        assert_eq!(body.contains("Dear Universidade Exemplo security team"), english);
        assert_eq!(body.contains("=C3=80 equipa de seguran=C3=A7a de"), !english, "{body}");
    }
    // Nothing is sent twice.
    let o = farol(&d, &["notify", "--now"]);
    assert!(stdout(&o).contains("0 message(s) queued"), "{}", stdout(&o));
    assert_eq!(received(&smtp.maildir).len(), 5);
}

#[test]
fn digests_go_over_starttls_and_tls_with_authentication_to_a_private_ca_s_server() {
    let Some(python) = aiosmtpd() else { return };
    let keys = tempfile::tempdir().unwrap();
    certificates(keys.path());
    for (mode, pattern) in [("starttls", "smtp://farol:s3cret@{}?tls=required"), ("tls", "smtps://farol:s3cret@{}")] {
        let server = tls_smtpd(&python, keys.path(), mode);
        let url = pattern.replace("{}", &server.url);
        // Without the CA, the certificate is refused and nothing is sent; messages wait.
        let d = center(&url);
        let o = farol(&d, &["notify", "--now"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("0 sent, 5 to retry"), "{mode}: {}", stdout(&o));
        assert!(received(&server.maildir).is_empty());
        let outbox = stdout(&farol(&d, &["notify", "outbox"]));
        assert!(outbox.to_lowercase().contains("certificate"), "{mode}: {outbox}");
        // With the CA (and a server of its own: aiosmtpd may hang on a connection after a
        // refused handshake), every message arrives, over TLS, after authentication.
        let server = tls_smtpd(&python, keys.path(), mode);
        let d = center(&pattern.replace("{}", &server.url));
        let toml = d.path.join("farol.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        let ca = keys.path().join("ca.pem");
        std::fs::write(&toml, text.replace("[notify]\n", &format!("[notify]\nsmtp_ca = \"{}\"\n", ca.display())))
            .unwrap();
        let o = farol(&d, &["notify", "--now"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("5 sent, 0 to retry, 0 failed"), "{mode}: {}", stdout(&o));
        assert_eq!(received(&server.maildir).len(), 5, "{mode}");
    }
}

#[test]
fn a_sender_killed_again_and_again_sends_each_message_at_most_once_more_per_kill() {
    let tmp = init();
    let Some(smtp) = smtpd(&tmp) else { return };
    let d = center(&smtp.url);
    // One organization with 40 contacts: 40 messages of 105 events each.
    let contacts: Vec<String> = (0..40).map(|i| format!("soc{i}@meo.example")).collect();
    let mut args = vec!["org", "edit", "MEO"];
    for c in &contacts {
        args.extend(["--abuse-email", c.as_str()]);
    }
    let o = farol(&d, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut kills = 0;
    let mut seed: u64 = 0x5eed;
    loop {
        let mut child =
            command(&d, &["notify", "--org", "MEO"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 180));
        if child.try_wait().unwrap().is_some_and(|s| s.success()) {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        assert!(kills < 200, "the sender never finished");
    }
    let mut per_ticket: BTreeMap<String, u32> = BTreeMap::new();
    for m in received(&smtp.maildir) {
        *per_ticket.entry(m.header("Message-ID").to_owned()).or_default() += 1;
    }
    let again: u32 = per_ticket.values().map(|n| n - 1).sum();
    eprintln!("{kills} kills, {} messages, {again} sent again", per_ticket.len());
    assert!(kills > 0, "the sender was never interrupted");
    assert_eq!(per_ticket.len(), contacts.len() + 1, "every contact got its digest");
    assert!(again <= kills, "{again} messages sent again after {kills} kills");
    let outbox = stdout(&farol(&d, &["notify", "outbox", "--limit", "100"]));
    assert_eq!(outbox.lines().skip(1).filter(|l| l.contains(" sent ")).count(), contacts.len() + 1, "{outbox}");
}

#[test]
fn farol_serve_sends_what_is_due() {
    let tmp = init();
    let Some(smtp) = smtpd(&tmp) else { return };
    let d = center(&smtp.url);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut serve = command(&d, &["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while received(&smtp.maildir).len() < 5 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert_eq!(received(&smtp.maildir).len(), 5, "the first round runs at start-up");
}

#[test]
fn what_the_access_policy_hides_from_an_organization_is_never_in_its_digest() {
    let d = init_with(&["--center", "CERT CI", "--country", "PT"]);
    let o = farol(&d, &["org", "import", examples().join("orgs.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let feed = std::fs::read_to_string(examples().join("feeds/example-sinkhole.toml")).unwrap();
    let variants = [
        ("red", feed.replace("tlp = \"AMBER\"", "tlp = \"RED\"")),
        ("producer", format!("distribution = \"producer\"\n{feed}")),
        ("strict", feed.replace("tlp = \"AMBER\"", "tlp = \"AMBER+STRICT\"")),
    ];
    let report = examples().join("2024-06-01-event4_sinkhole-example.csv");
    for (name, text) in &variants {
        std::fs::write(d.path.join(format!("feeds.d/{name}.toml")), text).unwrap();
        let o = farol(&d, &["ingest", "--feed", name, report.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // TLP:RED and what the producer keeps to itself never go out; TLP:AMBER+STRICT goes to the
    // organization itself, labelled so.
    let plan = planned(&d, &["--now"]);
    assert_eq!(plan["NOS"].0, "63", "{plan:?}");
    let o = farol(&d, &["notify", "--dry-run", "--now"]);
    assert!(stdout(&o).contains("[TLP:AMBER+STRICT] [CERT CI #preview] 63 eventos"), "{}", stdout(&o));
}

/// `gpg` with a keyring of its own in `home`.
fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home).args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""]);
    c
}

#[test]
fn signed_messages_verify_with_gpg() {
    let tmp = init();
    let Some(smtp) = smtpd(&tmp) else { return };
    let home = tmp.path.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let o = gpg(&home).args(["--quick-gen-key", "CERT CI <cert@cert.example>", "ed25519", "sign", "never"]).output();
    let Ok(o) = o else {
        assert!(std::env::var_os("FAROL_REQUIRE_SMTP").is_none(), "gpg is missing: install gnupg");
        eprintln!("skipped: gpg is missing");
        return;
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = center(&smtp.url);
    let key = gpg(&home).args(["--armor", "--export-secret-keys", "cert@cert.example"]).output().unwrap();
    std::fs::write(d.path.join("key.asc"), &key.stdout).unwrap();
    let toml = d.path.join("farol.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace("[notify]\n", "[notify]\nsigning_key = \"key.asc\"\n");
    std::fs::write(&toml, text).unwrap();
    let o = farol(&d, &["notify", "--org", "NOS"]);
    assert!(stdout(&o).contains("1 sent"), "{}{}", stdout(&o), stderr(&o));
    let mail = received(&smtp.maildir);
    let m = &mail[0];
    let content_type = m.header("Content-Type");
    assert!(content_type.starts_with("multipart/signed;"), "{content_type}");
    assert!(
        content_type.contains("protocol=\"application/pgp-signature\"")
            && content_type.contains("micalg=\"pgp-sha256\"")
    );
    // RFC 3156: the first part, as sent (CRLF), is what is signed; the second is the signature.
    let boundary = content_type.split("boundary=\"").nth(1).unwrap().split('"').next().unwrap();
    let parts: Vec<&str> = m.body.split(&format!("--{boundary}")).collect();
    let signed = parts[1].strip_prefix('\n').unwrap().strip_suffix('\n').unwrap().replace('\n', "\r\n");
    let (start, end) = (parts[2].find("-----BEGIN PGP SIGNATURE-----").unwrap(), parts[2].find("-----END").unwrap());
    let signature = format!("{}-----END PGP SIGNATURE-----\n", &parts[2][start..end]);
    std::fs::write(tmp.path.join("part"), &signed).unwrap();
    std::fs::write(tmp.path.join("part.asc"), signature).unwrap();
    let verify = |part: &str| {
        gpg(&home).arg("--verify").arg(tmp.path.join("part.asc")).arg(tmp.path.join(part)).output().unwrap()
    };
    let o = verify("part");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Good signature from \"CERT CI <cert@cert.example>\""));
    std::fs::write(tmp.path.join("changed"), signed.replacen("63 ", "64 ", 1)).unwrap();
    assert!(!verify("changed").status.success(), "a changed message fails verification");
    // A file that is no key stops the command with a clear message.
    std::fs::write(d.path.join("key.asc"), "not a key").unwrap();
    let o = farol(&d, &["notify"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not an ASCII-armored OpenPGP secret key"), "{}", stderr(&o));
}
