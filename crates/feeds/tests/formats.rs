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
    let out = render("shadowserver", &ParseConfig::default(), Some("report.csv"), b"timestamp,ip\n2024-06-01,192.0.2.1\n");
    assert!(out.starts_with("FATAL: cannot tell which Shadowserver report this is"), "{out}");
    let out = render("shadowserver", &ParseConfig::default(), Some("2024-06-01-scan_nothing-x.csv"), b"timestamp,ip\n");
    assert!(out.contains("\"scan_nothing\" is not a report type of the Shadowserver schema in use"), "{out}");
    let mut config = ParseConfig::default();
    config.shadowserver.report = Some("scan_http".into());
    let out = render("shadowserver", &config, None, b"timestamp,port\n2024-06-01,80\n");
    assert!(out.contains("has no column ip, which its schema requires"), "{out}");
}

#[test]
fn the_shipped_shadowserver_schema_loads_and_covers_the_common_reports() {
    let schema = farol_feeds::shadowserver::Schema::builtin();
    let types = schema.report_types();
    for t in [
        "event4_sinkhole", "event4_sinkhole_http", "event4_sinkhole_dns", "event4_honeypot_darknet",
        "event4_honeypot_brute_force", "event4_ddos_participant", "event4_ip_spoofer", "scan_http", "scan_ssl",
        "scan_rdp", "scan_smb", "scan_ntp", "scan_dns", "scan_snmp", "scan_ssdp", "scan_memcached",
        "scan_elasticsearch", "scan_mongodb", "scan_telnet", "scan_vnc", "compromised_website", "device_id",
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
    let mut config = ParseConfig::default();
    config.shadowserver_schema = Some(std::sync::Arc::new(schema));
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

#[test]
fn abusech() {
    check_dir("urlhaus", "fixtures/urlhaus", &ParseConfig::default());
    check_dir("feodo", "fixtures/feodo", &ParseConfig::default());
    check_dir("threatfox", "fixtures/threatfox", &ParseConfig::default());
}
