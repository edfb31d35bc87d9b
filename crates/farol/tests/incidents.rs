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
