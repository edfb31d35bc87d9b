//! Incidents from the command line: their life from new to resolved, the timeline, deadlines,
//! links to events that survive reprocessing, and merging.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Dir, examples, farol, init_with, stderr, stdout};

fn run(d: &Dir, args: &[&str]) -> String {
    let o = farol(d, args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// The example organizations and report, and deadlines of one second for critical incidents.
fn center() -> Dir {
    let d = init_with(&["--center", "CERT CI", "--country", "PT"]);
    run(&d, &["org", "import", examples().join("orgs.csv").to_str().unwrap()]);
    let report = examples().join("2024-06-01-event4_sinkhole-example.csv");
    run(&d, &["ingest", "--feed", "example-sinkhole", report.to_str().unwrap()]);
    let toml = d.path.join("farol.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("[incidents]\n", "[incidents]\nfirst_response = { critical = \"1s\" }\n");
    std::fs::write(toml, text).unwrap();
    d
}

/// The ids of some events of an organization.
fn events_of(d: &Dir, asn: &str, n: usize) -> Vec<String> {
    let out = run(d, &["events", "--asn", asn, "--limit", &n.to_string()]);
    let ids = out.lines().skip(1).filter_map(|l| l.split_whitespace().next());
    ids.filter(|id| id.parse::<i64>().is_ok()).map(str::to_owned).collect()
}

#[test]
fn an_incident_goes_from_new_to_resolved_and_keeps_its_timeline() {
    let d = center();
    let nos = events_of(&d, "2860", 2);
    assert_eq!(nos.len(), 2);
    let out = run(
        &d,
        &[
            "incident",
            "new",
            "Qakbot at NOS",
            "--class",
            "infected-system",
            "--severity",
            "high",
            "--event",
            &nos[0],
            "--note",
            "from the sinkhole",
        ],
    );
    assert_eq!(out.trim(), "incident 1 opened");
    let list = run(&d, &["incident", "list", "--open"]);
    assert!(
        list.contains("high      new     infected-system  AMBER  NOS"),
        "the event's organization is added: {list}"
    );
    // Only forward, and closed ones only back to open.
    assert_eq!(farol(&d, &["incident", "set", "1", "--status", "new"]).status.code(), Some(2));
    run(&d, &["incident", "set", "1", "--status", "open", "--severity", "critical", "--note", "NOS contacted"]);
    run(&d, &["incident", "comment", "1", "NOS acknowledged"]);
    let meo = events_of(&d, "3243", 1);
    let out = run(&d, &["incident", "link", "1", &nos[1], &meo[0]]);
    assert!(out.contains("2 event(s) linked") && out.contains("1 more organization(s)"), "{out}");
    run(&d, &["incident", "set", "1", "--status", "resolved"]);
    assert_eq!(farol(&d, &["incident", "set", "1", "--status", "stalled"]).status.code(), Some(2));
    run(&d, &["incident", "set", "1", "--status", "open", "--note", "it came back"]);
    let show = run(&d, &["incident", "show", "1"]);
    for expected in [
        "severity   critical",
        "status     open",
        "orgs       MEO, NOS",
        "opened: Qakbot at NOS (infected-system, high)",
        "from the sinkhole",
        "status: new → open; severity: high → critical",
        "NOS acknowledged",
        "status: open → resolved",
        "status: resolved → open",
        "it came back",
    ] {
        assert!(show.contains(expected), "{expected:?} missing from\n{show}");
    }
    assert!(show.contains("closed     -"), "reopening clears the closing time: {show}");
    assert!(!show.contains("responded  -"), "the first response is recorded: {show}");
    assert_eq!(farol(&d, &["incident", "show", "9"]).status.code(), Some(3));
    assert_eq!(farol(&d, &["incident", "link", "1", "999999"]).status.code(), Some(3));
}

#[test]
fn deadlines_merges_and_reprocessing() {
    let d = center();
    let nos = events_of(&d, "2860", 3);
    run(&d, &["incident", "new", "A", "--class", "phishing", "--severity", "critical", "--org", "MEO"]);
    run(
        &d,
        &[
            "incident",
            "new",
            "B",
            "--class",
            "phishing",
            "--severity",
            "low",
            "--tlp",
            "AMBER+STRICT",
            "--event",
            &nos[0],
            "--event",
            &nos[1],
        ],
    );
    run(&d, &["incident", "new", "C", "--class", "ddos", "--severity", "critical"]);
    run(&d, &["incident", "set", "3", "--status", "open"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // A critical incident with no first response after its second is late; one answered is not.
    let late = run(&d, &["incident", "list", "--overdue"]);
    assert_eq!(late.lines().count(), 2, "{late}");
    assert!(late.contains("first response") && late.contains("  A"), "{late}");

    // Merging moves the events and organizations, keeps the stricter TLP and higher severity.
    run(&d, &["incident", "merge", "2", "1"]);
    let show = run(&d, &["incident", "show", "1"]);
    assert!(show.contains("orgs       MEO, NOS") && show.contains("TLP        TLP:AMBER+STRICT"), "{show}");
    assert!(show.contains("severity   critical") && show.contains("incident 2 merged in: B"), "{show}");
    let merged = run(&d, &["incident", "show", "2"]);
    assert!(merged.contains("status     rejected (merged into 1)"), "{merged}");
    assert_eq!(farol(&d, &["incident", "merge", "2", "1"]).status.code(), Some(2));
    assert_eq!(farol(&d, &["incident", "set", "2", "--status", "open"]).status.code(), Some(2));

    // Processing the report again gives its events new ids (above those of a later report); the
    // links follow them.
    let text = std::fs::read_to_string(examples().join("2024-06-01-event4_sinkhole-example.csv")).unwrap();
    let later: String =
        text.lines().take(11).map(|l| format!("{}\n", l.replace("2024-06-01 ", "2024-06-02 "))).collect();
    let file = d.path.join("2024-06-02-event4_sinkhole-example.csv");
    std::fs::write(&file, later).unwrap();
    run(&d, &["ingest", "--feed", "example-sinkhole", file.to_str().unwrap()]);
    let before = show.lines().find(|l| l.starts_with("  events")).unwrap().to_owned();
    run(&d, &["reprocess", "--feed", "example-sinkhole"]);
    let after = run(&d, &["incident", "show", "1"]);
    let after = after.lines().find(|l| l.starts_with("  events")).unwrap().to_owned();
    assert_ne!(before, after);
    let ids: Vec<String> = after.split_whitespace().skip(1).map(|s| s.trim_end_matches(',').to_owned()).collect();
    assert_eq!(ids.len(), 2);
    let stored = events_of(&d, "2860", 1000);
    assert!(ids.iter().all(|id| stored.contains(id)), "{ids:?} are stored events of NOS");
}

/// Writes a message into a Maildir's new/ as an MTA would.
fn deliver(maildir: &std::path::Path, name: &str, message: &str) {
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    std::fs::create_dir_all(maildir.join("tmp")).unwrap();
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::write(maildir.join("new").join(name), message.replace('\n', "\r\n")).unwrap();
}

#[test]
fn e_mail_opens_incidents_and_replies_join_them_once() {
    let d = center();
    let maildir = d.path.join("mail");
    let toml = d.path.join("farol.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace("# maildir = \"mail\"", "maildir = \"mail\"");
    std::fs::write(&toml, text).unwrap();
    // A report from a contact of NOS, with a PDF (kept) and an HTML page (refused).
    deliver(
        &maildir,
        "1.host",
        "From: NOS SOC <abuse@nos.example>\nTo: incidents@cert.example\nSubject: Phishing page on our customer's server\n\
         Message-ID: <r1@nos.example>\nDate: Sun, 29 Nov 2026 08:00:00 +0000\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain; charset=utf-8\n\n\
         A page imitating Bank X is on 192.0.2.7.\n--b\nContent-Type: application/pdf; name=\"evidence.pdf\"\n\
         Content-Disposition: attachment; filename=\"evidence.pdf\"\nContent-Transfer-Encoding: base64\n\n\
         JVBERi0xLjcKJSVFT0YK\n--b\nContent-Type: text/html; name=\"page.html\"\n\
         Content-Disposition: attachment; filename=\"page.html\"\n\n<html><script>x</script></html>\n--b--\n",
    );
    // The same message delivered twice (a retrying MTA), and something that is not e-mail.
    deliver(&maildir, "2.host", &std::fs::read_to_string(maildir.join("new/1.host")).unwrap().replace("\r\n", "\n"));
    deliver(&maildir, "3.host", "\u{0}\u{1}binary junk");
    let out = run(&d, &["intake"]);
    assert!(
        out.contains("incident 1 opened") && out.contains("1 opened, 0 replies, 1 taken before, 1 not e-mail"),
        "{out}"
    );
    assert!(maildir.join("failed/3.host").is_file() && maildir.join("cur/1.host:2,S").is_file());
    assert_eq!(std::fs::read_dir(maildir.join("new")).unwrap().count(), 0);
    let show = run(&d, &["incident", "show", "1"]);
    for expected in [
        "incident 1: Phishing page on our customer's server",
        "[the sender is a contact of NOS (unverified)]",
        "From: abuse@nos.example",
        "A page imitating Bank X is on 192.0.2.7.",
        "[files not kept: page.html: files of type text/html are not accepted",
        ": message.eml (message/rfc822,",
        ": evidence.pdf (application/pdf, 15 bytes)",
    ] {
        assert!(show.contains(expected), "{expected:?} missing from\n{show}");
    }
    // The analyst answers; NOS's reply carries the ticket in its subject, another only in
    // In-Reply-To; a reply to an incident that does not exist opens a new one.
    assert!(show.contains("orgs       \n"), "a forgeable From adds no organization: {show}");
    let nobody = farol(&d, &["incident", "write", "1", "Anyone?"]);
    assert_eq!(nobody.status.code(), Some(2), "no organization, nobody to write to: {}", stderr(&nobody));
    assert!(stderr(&nobody).contains("has a contact that takes e-mail"), "{}", stderr(&nobody));
    run(&d, &["incident", "set", "1", "--class", "phishing", "--status", "open", "--org", "NOS"]);
    let out = run(&d, &["incident", "write", "1", "Please take the page down."]);
    assert_eq!(out.trim(), "NOS: queued for abuse@nos.example");
    let outbox = run(&d, &["notify", "outbox"]);
    assert!(outbox.contains("[TLP:AMBER] [CERT CI #INC-1] Phishing page on our customer's server"), "{outbox}");
    deliver(
        &maildir,
        "4.host",
        "From: abuse@nos.example\nSubject: RE: [TLP:AMBER] [CERT CI #INC-1] Phishing page\nMessage-ID: <r2@nos.example>\n\n\
         Done, the page is gone.\n",
    );
    deliver(
        &maildir,
        "5.host",
        "From: abuse@nos.example\nSubject: one more thing\nMessage-ID: <r3@nos.example>\n\
         In-Reply-To: <INC-1.1@cert.example>\n\nThe customer was told.\n",
    );
    deliver(
        &maildir,
        "6.host",
        "From: x@y.example\nSubject: Re: [CERT CI #INC-99] old\nMessage-ID: <r4@y.example>\n\nHello\n",
    );
    let out = run(&d, &["intake"]);
    assert!(out.contains("1 opened, 2 replies, 0 taken before, 0 not e-mail"), "{out}");
    let show = run(&d, &["incident", "show", "1"]);
    for expected in [
        "Done, the page is gone.",
        "The customer was told.",
        "to NOS (abuse@nos.example):",
        "Please take the page down.",
        "1. [ ] Confirm the site imitates the brand",
    ] {
        assert!(show.contains(expected), "{expected:?} missing from\n{show}");
    }
    assert!(run(&d, &["incident", "show", "2"]).contains("Re: [CERT CI #INC-99] old"));
    run(&d, &["incident", "task", "1", "2"]);
    let show = run(&d, &["incident", "show", "1"]);
    assert!(show.contains("2. [x] Ask the hosting provider") && show.contains("task 2 done"), "{show}");
    assert_eq!(farol(&d, &["incident", "task", "1", "9"]).status.code(), Some(2));
}
