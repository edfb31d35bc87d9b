//! Every format on its fixtures (written from the formats' documentation), as snapshots of the
//! events and rejects it produces; and each format's malformed corpus.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use farol_feeds::{Output, ParseConfig, Parser};

/// Parses `bytes` whole and in 7-byte chunks (they must agree), validates each event as the
/// pipeline would, and renders the result: one IntelMQ JSON line per event, then the rejects.
fn render(format: &str, config: &ParseConfig, name: Option<&str>, bytes: &[u8]) -> String {
    let build = farol_feeds::format(format).unwrap().build;
    let whole = farol_feeds::parse_all(&mut *build(config, name).unwrap(), bytes);
    let mut parser: Box<dyn Parser> = build(config, name).unwrap();
    let mut chunked = Output::default();
    for c in bytes.chunks(7) {
        parser.push(c, &mut chunked);
    }
    parser.finish(&mut chunked);
    assert_eq!(whole.events, chunked.events, "chunking changed the events");
    assert_eq!(whole.rejects, chunked.rejects, "chunking changed the rejects");
    let mut out = String::new();
    for p in &whole.events {
        let mut e = p.event.clone();
        e.time_observation.get_or_insert(farol_model::Timestamp::parse("2024-06-02T00:00:00Z").unwrap());
        match e.validate() {
            Ok(()) => out.push_str(&e.to_intelmq_json()),
            Err(err) => out.push_str(&format!("INVALID {}: {err}", p.position)),
        }
        out.push('\n');
    }
    for r in &whole.rejects {
        out.push_str(&format!("REJECT {}: {}\n", r.position, r.reason));
    }
    if let Some(f) = &whole.fatal {
        out.push_str(&format!("FATAL: {f}\n"));
    }
    out
}

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every fixture of a directory through one format, one snapshot each, and detection agrees.
fn check_dir(format: &str, dir: &str, config: &ParseConfig) {
    for path in fixtures(dir) {
        let bytes = std::fs::read(&path).unwrap();
        let n = name(&path);
        insta::assert_snapshot!(format!("{format}__{n}"), render(format, config, Some(&n), &bytes));
        let probe = farol_feeds::Probe { name: Some(&n), head: &bytes[..bytes.len().min(64 * 1024)] };
        assert_eq!(farol_feeds::detect(&probe).map(|f| f.name).ok(), Some(format), "detecting {n}");
    }
}

#[test]
fn shadowserver() {
    check_dir("shadowserver", "fixtures/shadowserver", &ParseConfig::default());
}

#[test]
fn shadowserver_report_type_must_be_known() {
    let out =
        render("shadowserver", &ParseConfig::default(), Some("report.csv"), b"timestamp,ip\n2024-06-01,192.0.2.1\n");
    assert!(out.starts_with("FATAL: cannot tell which Shadowserver report this is"), "{out}");
    let out = render("shadowserver", &ParseConfig::default(), Some("2024-06-01-scan_nothing-x.csv"), b"timestamp,ip\n");
    assert!(out.contains("\"scan_nothing\" is not a report type of the Shadowserver schema in use"), "{out}");
    let config = ParseConfig {
        shadowserver: farol_feeds::ShadowserverOptions { report: Some("scan_http".into()) },
        ..ParseConfig::default()
    };
    let out = render("shadowserver", &config, None, b"timestamp,port\n2024-06-01,80\n");
    assert!(out.contains("has no column ip, which its schema requires"), "{out}");
}

#[test]
fn the_shipped_shadowserver_schema_loads_and_covers_the_common_reports() {
    let schema = farol_feeds::shadowserver::Schema::builtin();
    let types = schema.report_types();
    for t in [
        "event4_sinkhole",
        "event4_sinkhole_http",
        "event4_sinkhole_dns",
        "event4_honeypot_darknet",
        "event4_honeypot_brute_force",
        "event4_ddos_participant",
        "event4_ip_spoofer",
        "scan_http",
        "scan_ssl",
        "scan_rdp",
        "scan_smb",
        "scan_ntp",
        "scan_dns",
        "scan_snmp",
        "scan_ssdp",
        "scan_memcached",
        "scan_elasticsearch",
        "scan_mongodb",
        "scan_telnet",
        "scan_vnc",
        "compromised_website",
        "device_id",
        "blocklist",
    ] {
        assert!(types.contains(&t), "{t} missing from the shipped schema");
    }
    assert!(schema.unknown_converters.is_empty());
}

#[test]
fn a_schema_in_shadowserver_s_format_replaces_the_shipped_one() {
    // The shape of Shadowserver's intelmq.json, with a converter farol does not know.
    let json = r#"{"_meta": {"date_created": "2030-01-01T00:00:00Z", "change_log": []},
      "new_report": {"feed_name": "New-Report", "file_name": "new_report",
        "constant_fields": {"classification.taxonomy": "vulnerable", "classification.type": "vulnerable-system",
                            "classification.identifier": "new-thing"},
        "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"], ["source.ip", "ip", "validate_ip"]],
        "optional_fields": [["source.port", "port", "convert_int"], ["extra.", "thing", "future_converter"],
                            ["source.future_field", "future"]]}}"#;
    let schema = farol_feeds::shadowserver::Schema::from_json(json).unwrap();
    assert_eq!(schema.unknown_converters, ["future_converter"]);
    let config = ParseConfig { shadowserver_schema: Some(std::sync::Arc::new(schema)), ..ParseConfig::default() };
    let csv = b"timestamp,ip,port,thing,future,other\n2030-01-01 00:00:00,192.0.2.1,443,x,y,z\n";
    let out = render("shadowserver", &config, Some("2030-01-01-new_report-pt.csv"), csv);
    assert_eq!(
        out,
        r#"{"classification.identifier":"new-thing","classification.taxonomy":"vulnerable","classification.type":"vulnerable-system","extra.other":"z","extra.source.future_field":"y","extra.thing":"x","source.ip":"192.0.2.1","source.port":443,"time.observation":"2024-06-02T00:00:00+00:00","time.source":"2030-01-01T00:00:00+00:00"}
"#
    );
    let err = farol_feeds::shadowserver::Schema::from_json(r#"{"r": {"required_fields": [["tlp"]]}}"#).unwrap_err();
    assert!(err.0.contains("r: required_fields: expected [field, column, converter]"), "{}", err.0);
}

#[test]
fn ctip() {
    check_dir("ctip", "fixtures/ctip", &ParseConfig::default());
}

/// Found by the fuzzer (issue 3): leading whitespace that arrived alone was dropped.
#[test]
fn feodo_keeps_leading_whitespace_however_it_is_cut() {
    let out = render("feodo", &ParseConfig::default(), None, b"\t\x00");
    assert_eq!(out, "REJECT line 1: expected 6 columns (or 4 in the older layout), found 1\n");
}

#[test]
fn abusech() {
    check_dir("urlhaus", "fixtures/urlhaus", &ParseConfig::default());
    check_dir("feodo", "fixtures/feodo", &ParseConfig::default());
    check_dir("threatfox", "fixtures/threatfox", &ParseConfig::default());
}

#[test]
fn spamhaus_and_n6() {
    check_dir("spamhaus-drop", "fixtures/spamhaus-drop", &ParseConfig::default());
    check_dir("n6", "fixtures/n6", &ParseConfig::default());
}

#[test]
fn stix_and_misp() {
    check_dir("stix", "fixtures/stix", &ParseConfig::default());
    check_dir("misp", "fixtures/misp", &ParseConfig::default());
}

/// Each format on broken versions of one of its fixtures: cut short, in the wrong encoding, with
/// a field too large, with a wrong type. Nothing panics, good records are kept, and every
/// problem is reported (snapshots hold the exact rejects).
#[test]
fn malformed_corpus() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("shadowserver", "fixtures/shadowserver/2024-06-01-event4_sinkhole-pt-asn.csv", "\"49152\"", "\"port!\""),
        ("ctip", "fixtures/ctip/ctip-infected-2024-06-01.json", "\"SourcePort\": 49152", "\"SourcePort\": \"x\""),
        (
            "urlhaus",
            "fixtures/urlhaus/urlhaus-csv_recent.csv",
            "\"2024-06-01 10:12:44\",\"http",
            "\"yesterday\",\"http",
        ),
        ("feodo", "fixtures/feodo/feodo-ipblocklist.csv", "\"443\"", "\"https\""),
        ("threatfox", "fixtures/threatfox/threatfox-export-recent.json", "192.0.2.77:8443", "192.0.2.77:port"),
        ("spamhaus-drop", "fixtures/spamhaus-drop/drop.txt", "1.10.16.0/20", "1.10.16.0/99"),
        ("n6", "fixtures/n6/n6-events.json", "\"dport\": 23", "\"dport\": \"telnet\""),
        (
            "stix",
            "fixtures/stix/bundle-partner.json",
            "\"valid_from\": \"2024-06-01T08:00:00Z\", \"confidence\"",
            "\"valid_from\": 42, \"confidence\"",
        ),
        ("misp", "fixtures/misp/5e0e1c2a-0b6c-4c5e-9f4a-0a1b2c3d4e5f.json", "203.0.113.9|443", "203.0.113.9|port"),
    ];
    let config = ParseConfig { max_record: Some(64 * 1024), ..ParseConfig::default() };
    for (format, fixture, good, bad) in cases {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(fixture);
        let name = name(&path);
        let original = std::fs::read_to_string(&path).unwrap();
        assert!(original.contains(good), "{fixture} does not contain {good:?}");
        let mut report = String::new();
        let mut variant = |label: &str, bytes: Vec<u8>| {
            report.push_str(&format!("--- {label}\n{}", render(format, &config, Some(&name), &bytes)));
        };
        variant("truncated in the middle", original.as_bytes()[..original.len() / 2].to_vec());
        // "é" in Latin-1: a byte that is not UTF-8.
        let at = original.find(good).unwrap() + 1;
        let mut latin1 = original.as_bytes().to_vec();
        latin1.insert(at, 0xE9);
        variant("a Latin-1 byte", latin1);
        let huge = "x".repeat(100 * 1024);
        variant(
            "a field of 100 KiB",
            original.replacen(good, &good.replacen('4', &format!("4{huge}"), 1), 1).into_bytes(),
        );
        variant("a wrong type", original.replacen(good, bad, 1).into_bytes());
        insta::assert_snapshot!(format!("malformed__{format}"), report);
    }
}
