#![allow(clippy::unwrap_used)]

use farol_model::Event;
use farol_model::org::{Asset, Interval, OrgId};

use super::*;

fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

#[test]
fn contacts_fall_due_once_per_period() {
    // 2026-11-30 is a Monday; daily and weekly digests fall due at 06:00 UTC.
    let check = |interval, last: Option<&str>, now: &str, expected: bool| {
        assert_eq!(due(interval, last.map(at), at(now), 6), expected, "{interval} last {last:?} now {now}");
    };
    check(Interval::Immediately, Some("2026-11-30T10:00:00Z"), "2026-11-30T10:00:01Z", true);
    check(Interval::Never, None, "2026-11-30T10:00:00Z", false);
    check(Interval::Hourly, None, "2026-11-30T10:00:00Z", true);
    check(Interval::Hourly, Some("2026-11-30T10:00:00Z"), "2026-11-30T10:59:59Z", false);
    check(Interval::Hourly, Some("2026-11-30T10:59:59Z"), "2026-11-30T11:00:00Z", true);
    check(Interval::Daily, Some("2026-11-30T06:00:00Z"), "2026-12-01T05:59:59Z", false);
    check(Interval::Daily, Some("2026-11-30T06:00:00Z"), "2026-12-01T06:00:00Z", true);
    check(Interval::Daily, Some("2026-11-30T05:59:00Z"), "2026-11-30T06:00:00Z", true);
    check(Interval::Daily, Some("2026-11-30T07:00:00Z"), "2026-11-30T23:00:00Z", false);
    check(Interval::Weekly, Some("2026-11-30T06:00:00Z"), "2026-12-06T23:59:59Z", false);
    check(Interval::Weekly, Some("2026-11-30T06:00:00Z"), "2026-12-07T06:00:00Z", true);
    check(Interval::Weekly, Some("2026-11-30T05:00:00Z"), "2026-11-30T06:00:00Z", true);
    check(Interval::Weekly, Some("2026-12-02T12:00:00Z"), "2026-12-07T05:00:00Z", false);
}

fn event(pairs: &[(&str, &str)]) -> Event {
    let mut e = Event::default();
    for (k, v) in pairs {
        e.set(k, v).unwrap();
    }
    e
}

fn rule(org: Option<i64>, asset: Option<(&str, &str)>, class: Option<&str>) -> Inhibition {
    Inhibition {
        id: 1,
        org: org.map(OrgId),
        asset: asset.map(|(k, v)| Asset::parse_kind(k, v).unwrap()),
        classification: class.map(str::to_owned),
        reason: "test".into(),
        created: at("2026-01-01"),
        created_by: None,
        expires: None,
    }
}

#[test]
fn mute_rules_match_every_condition_they_give() {
    let e = event(&[
        ("source.ip", "192.0.2.10"),
        ("source.asn", "64500"),
        ("source.url", "http://www.shop.example.pt/login"),
        ("classification.type", "phishing"),
        ("classification.identifier", "bank-x"),
    ]);
    let cases = [
        (rule(None, None, None), true),
        (rule(Some(7), None, None), true),
        (rule(Some(8), None, None), false),
        (rule(None, Some(("prefix", "192.0.2.0/28")), None), true),
        (rule(None, Some(("prefix", "192.0.2.16/28")), None), false),
        (rule(None, Some(("asn", "64500")), None), true),
        (rule(None, Some(("asn", "64501")), None), false),
        (rule(None, Some(("domain", "example.pt")), None), true),
        (rule(None, Some(("domain", "le.pt")), None), false),
        (rule(None, None, Some("phishing")), true),
        (rule(None, None, Some("fraud")), true),
        (rule(None, None, Some("bank-x")), true),
        (rule(None, None, Some("scanner")), false),
        (rule(Some(7), Some(("asn", "64500")), Some("scanner")), false),
        (rule(Some(7), Some(("asn", "64500")), Some("phishing")), true),
    ];
    for (r, expected) in cases {
        assert_eq!(mutes(&r, OrgId(7), &e), expected, "{r:?}");
    }
}

#[test]
fn settings_are_checked_key_by_key() {
    let bad = Settings { from: "not an address".into(), daily_hour: 24, max_events: 0, ..Settings::default() };
    let problems = bad.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].starts_with("from: "), "{problems:?}");
    assert!(Settings { from: "CERT.PT <cert@cert.pt>".into(), ..Settings::default() }.problems().is_empty());
}

#[test]
fn tickets_name_the_day_and_the_message() {
    assert_eq!(ticket(42, at("2026-11-29T23:59:59Z")), "20261129-000042");
}

#[test]
fn operators_replace_templates_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("en")).unwrap();
    std::fs::write(dir.path().join("en/subject.txt"), "{{ org }}: {{ total }} new ({{ tlp }})\n").unwrap();
    let templates = Templates::load(Some(dir.path())).unwrap();
    let digest = Digest {
        org: OrgId(1),
        org_name: "Hospital X".into(),
        contact: farol_model::org::Contact::new("soc@hospital-x.pt").unwrap(),
        reports: (0, 1),
        last_sent: None,
        events: Vec::new(),
        truncated: false,
        muted: 0,
    };
    let r = templates.render(&Settings::default(), &digest, "t").unwrap();
    assert_eq!(r.subject, "Hospital X: 0 new (TLP:CLEAR)");
    std::fs::write(dir.path().join("en/digest.txt"), "{% if %}").unwrap();
    let e = Templates::load(Some(dir.path())).unwrap_err().to_string();
    assert!(e.starts_with("notification template en/digest.txt: "), "{e}");
}
