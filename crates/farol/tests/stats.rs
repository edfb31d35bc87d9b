//! `farol demo`, `farol stats`, `farol population`, `farol report` and `farol exercise` as a
//! user runs them.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Dir, farol, init, stderr, stdout, write};
use serde_json::Value;

/// A 30-day demo workspace, built without serving.
fn demo(parent: &Path, seed: &str) -> Dir {
    let tmp = tempfile::tempdir_in(parent).unwrap();
    let path = tmp.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_farol"))
        .args(["demo", "--no-serve", "--days", "30", "--until", "2024-06-30", "--seed", seed, "--dir"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("analyst@cert.demo") && text.contains("password: "), "{text}");
    Dir::new(tmp, path)
}

const WINDOW: [&str; 4] = ["--from", "2024-06-01", "--to", "2024-06-30"];

#[test]
fn the_demo_is_a_country_with_rates_reports_and_the_same_data_for_the_same_seed() {
    let parent = tempfile::tempdir().unwrap();
    let d = demo(parent.path(), "3");
    assert!(stdout(&farol(&d, &["org", "list"])).lines().count() > 200);

    // The national rate per week, with its denominator and the world beside it.
    let o = farol(&d, &[&["stats", "--format", "json"][..], &WINDOW].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let first = stdout(&o);
    let stats: Value = serde_json::from_str(&first).unwrap();
    let periods = stats["periods"].as_array().unwrap();
    assert_eq!(periods[0]["period"], "2024-W22");
    assert_eq!(periods.len(), 5);
    for p in periods {
        assert!(p["hosts"].as_u64().unwrap() > 100, "{p}");
        assert!(p["hosts"].as_u64().unwrap() * 7 >= p["host_days"].as_u64().unwrap());
        assert_eq!(p["denominator"], 8_900_000.0);
        let rate = p["rate_per_1000"].as_f64().unwrap();
        let world = p["world_rate_per_1000"].as_f64().unwrap();
        assert!(rate > 2.0 * world, "the demo's country is worse than the world: {rate} against {world}");
    }
    // The clean-up campaign on day 16 lowers the rate: the rate ratio says so.
    let o = farol(&d, &[&["stats", "--intervention", "2024-06-17", "--by", "month"][..], &WINDOW].concat());
    let text = stdout(&o);
    let words: Vec<&str> = text.split("rate ratio ").nth(1).unwrap().split([' ', ')']).collect();
    let (ratio, high): (f64, f64) = (words[0].parse().unwrap(), words[5].parse().unwrap());
    assert!(ratio < 0.97 && high < 1.0, "significantly lower: {text}");

    // Rankings, and an AS, an organization and a sector on their own.
    let top = stdout(&farol(&d, &[&["stats", "--top", "sector", "--format", "csv"][..], &WINDOW].concat()));
    assert!(top.starts_with("name,infected,a day,denominator,\"per 1,000\"\n"), "{top}");
    assert!(top.contains("\nisp,"), "{top}");
    for subject in [&["--asn", "AS3243"][..], &["--org", "MEO"], &["--sector", "health"], &["--country", "es"]] {
        let o = farol(&d, &[&["stats"][..], subject, &WINDOW].concat());
        assert!(o.status.success(), "{subject:?}: {}", stderr(&o));
    }

    // The report: a self-contained page; the public one names no organization.
    let out = d.path.join("report.html");
    let o = farol(&d, &[&["report", "--out", out.to_str().unwrap()][..], &WINDOW].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains(">TLP:AMBER</span>") && html.matches("<svg").count() >= 3, "{html}");
    assert!(html.contains("national clean-up campaign") && html.contains("rate ratio"));
    assert!(!html.contains("src=") && !html.contains("href="), "nothing is fetched");
    let o = farol(&d, &[&["report", "--public", "--out", out.to_str().unwrap()][..], &WINDOW].concat());
    assert!(o.status.success());
    let public = std::fs::read_to_string(&out).unwrap();
    assert!(public.contains(">TLP:CLEAR</span>") && !public.contains(">TLP:AMBER</span>"), "marked for anyone");
    assert!(!public.contains("Câmara Municipal") && !public.contains("MEO<") && !public.contains("Hospital"));

    // The same seed builds the same country.
    let again = demo(parent.path(), "3");
    let twice = farol(&again, &[&["stats", "--format", "json"][..], &WINDOW].concat());
    assert_eq!(stdout(&twice), first);
}

#[test]
fn population_keeps_good_lines_and_names_bad_ones() {
    let d = init();
    let f = write(
        &d,
        "pop.csv",
        b"scope,key,metric,value,valid_from\ncountry,pt,internet-users,8900000,2024-01-01\n\
          asn,AS3243,subscribers,-5,2024-01-01\ncity,Porto,users,1,2024-01-01\nsector,health,active-hosts,1200,2024-13-01\n\
          sector,health,active-hosts,1200,2024-01-01\ncountry,\xff\xfe,internet-users,1,2024-01-01\n",
    );
    let o = farol(&d, &["population", "load", &f]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("loaded 2 denominator(s)") && stdout(&o).contains("4 line(s) rejected"),
        "{}",
        stdout(&o)
    );
    let e = stderr(&o);
    assert!(e.contains("pop.csv:3: value \"-5\"") && e.contains("pop.csv:4: unknown scope \"city\""), "{e}");
    assert!(e.contains("pop.csv:5: valid_from") && e.contains("pop.csv:7: country"), "{e}");
    let list = stdout(&farol(&d, &["population", "list"]));
    assert!(list.contains("PT") && list.contains("8900000") && list.contains("health"), "{list}");
    // Statistics need a country: none is configured here.
    let o = farol(&d, &["stats"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--country"), "{}", stderr(&o));
    let o = farol(&d, &["stats", "--country", "PT", "--from", "2024-02-01", "--to", "2024-01-01"]);
    assert_eq!(o.status.code(), Some(2));
    let o = farol(&d, &["stats", "--country", "PT", "--from", "2024-01-01", "--to", "2024-01-03", "--by", "day"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("2024-01-03  0"), "{}", stdout(&o));
}

fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_farol")).arg("-d").arg(dir).args(args).output().unwrap()
}

#[test]
fn exercises_replay_their_steps_and_measure_the_response() {
    let tmp = tempfile::tempdir().unwrap();
    let list = Command::new(env!("CARGO_BIN_EXE_farol")).args(["exercise", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    for name in ["ransomware-hospital", "botnet-university", "phishing-ministry"] {
        assert!(list.contains(name), "{list}");
        // Every shipped scenario plays through (a million times faster than written).
        let dir = tmp.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_farol"))
            .args(["exercise", "run", name, "--speed", "1000000", "--no-serve", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("Every step is delivered"));
        let reports = String::from_utf8_lossy(&run_in(&dir, &["reports"]).stdout).into_owned();
        assert!(reports.contains("done") && !reports.contains("failed"), "{reports}");
    }
    // The hospital: its e-mail becomes an incident; the analyst opens one from the feeds,
    // writes to the hospital, and resolves both.
    let dir = tmp.path().join("ransomware-hospital");
    assert_eq!(std::fs::read_dir(dir.join("mail/new")).unwrap().count(), 1);
    let before = run_in(&dir, &["exercise", "summary"]);
    assert!(
        String::from_utf8_lossy(&before.stdout).contains("time to detect (first incident the center opened)   not yet")
    );
    assert!(run_in(&dir, &["intake"]).status.success());
    let events =
        String::from_utf8_lossy(&run_in(&dir, &["events", "--org", "Hospital de Santa Clara", "--limit", "0"]).stdout)
            .into_owned();
    assert_eq!(events.matches("qakbot").count(), 12, "{events}");
    for args in [
        &["incident", "new", "QakBot at Santa Clara", "--class", "infected-system", "--org", "Hospital de Santa Clara"]
            [..],
        &["incident", "write", "2", "Isolate the workstations that call the C2 server."],
        &["incident", "set", "1", "--status", "resolved"],
        &["incident", "set", "2", "--status", "resolved"],
    ] {
        let o = run_in(&dir, args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o = run_in(&dir, &["exercise", "summary", "--format", "json"]);
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["incidents"], 2);
    let secs = |k: &str| summary[k].as_i64().unwrap_or_else(|| panic!("{k}: {summary}"));
    assert!(secs("seconds_to_first_report") <= secs("seconds_to_detect"));
    assert!(
        secs("seconds_to_detect") <= secs("seconds_to_notify")
            && secs("seconds_to_notify") <= secs("seconds_to_resolve")
    );

    // A scenario with mistakes names each; a workspace is never reused.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "title = \"x\"\nsummary = \"y\"\n[[org]]\nname = \"A\"\nsector = \"health\"\nemail = \"a@a.example\"\n\
        [[step]]\nat = \"soon\"\ninject = \"z\"\n[[step]]\nat = \"5m\"\nevents = { count = 1, network = \"A\", type = \"nonsense\" }\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_farol"))
        .args(["exercise", "run", bad.to_str().unwrap(), "--no-serve"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("step 1 (at soon)")
            && e.contains("unknown classification type \"nonsense\"")
            && e.contains("not an organization with a prefix"),
        "{e}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_farol"))
        .args(["exercise", "run", "phishing-ministry", "--no-serve", "--dir"])
        .arg(tmp.path().join("phishing-ministry"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds a farol directory"));
}
