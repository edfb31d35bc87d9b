//! IP data, organizations, routing and warninglists, through the command line: data files the
//! test writes itself, loaded, used by ingestion, shown by lookup, changed and rerouted.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Dir, farol, init_with, stderr, stdout, write};
use farol_enrich::ipdata::mmdb;
use serde_json::Value;

fn ok(dir: &Dir, args: &[&str]) -> String {
    let o = farol(dir, args);
    assert!(o.status.success(), "farol {args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn events(dir: &Dir, filters: &[&str]) -> Vec<Value> {
    let mut args = vec!["events", "--limit", "0", "--format", "intelmq"];
    args.extend_from_slice(filters);
    ok(dir, &args).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ips(events: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = events.iter().map(|e| e["source.ip"].as_str().unwrap_or("-").to_owned()).collect();
    v.sort();
    v
}

const EVENTS: &str = r#"{"source.ip": "198.51.100.200", "time.source": "2024-06-01T10:00:00Z", "classification.type": "infected-system", "malware.name": "mirai"}
{"source.ip": "193.136.5.5", "time.source": "2024-06-01T10:01:00Z", "classification.type": "infected-system", "malware.name": "necurs"}
{"source.ip": "198.51.100.7", "time.source": "2024-06-01T10:02:00Z", "classification.type": "infected-system", "source.asn": 3243}
{"source.ip": "203.0.113.9", "time.source": "2024-06-01T10:03:00Z", "classification.type": "scanner"}
{"source.fqdn": "www.hospital-x.pt", "time.source": "2024-06-01T10:04:00Z", "classification.type": "phishing"}
{"source.ip": "2001:db8:1::5", "time.source": "2024-06-01T10:05:00Z", "classification.type": "scanner"}
"#;

#[test]
fn ip_data_organizations_routing_and_lookup() {
    let d = init_with(&["--center", "CERT-PT", "--country", "PT"]);

    // IP data in three formats, written here.
    let mut w = mmdb::Writer::new("Test-ASN", 28);
    w.insert("198.51.100.0/24".parse().unwrap(), &mmdb::asn_value(64501, "Example Telecom"));
    w.insert("2001:db8:1::/48".parse().unwrap(), &mmdb::asn_value(64502, "Example Six"));
    let asn = write(&d, "asn.mmdb", &w.finish());
    let tsv = write(&d, "ip2asn-v4.tsv", b"193.136.0.0\t193.137.255.255\t1930\tPT\tFCCN\nnot a line\n");
    let delegated = write(
        &d,
        "delegated-ripencc-extended-latest",
        b"2|ripencc|1|3|19930101|20240101|+0100\nripencc|PT|ipv4|198.51.100.0|256|20100101|allocated|a\nripencc|ES|ipv4|203.0.113.0|256|20100101|allocated|b\nripencc|PT|ipv6|2001:db8::/32|32|20100101|allocated|a\n",
    );
    assert!(ok(&d, &["ipdata", "load", &asn]).contains("loaded asn version 1 (mmdb"));
    let loaded = ok(&d, &["ipdata", "load", &tsv]);
    assert!(
        loaded.contains("1 line(s) rejected") && loaded.contains("line 2: expected 5 tab-separated columns"),
        "{loaded}"
    );
    let loaded = ok(&d, &["ipdata", "load", "--name", "ripe", &delegated]);
    assert!(loaded.contains("2 ranges with countries"), "one line is not a valid IPv6 block: {loaded}");
    let list = ok(&d, &["ipdata", "list"]);
    assert!(list.contains("asn") && list.contains("ip2asn-v4") && list.contains("ripe"), "{list}");
    let bad = farol(&d, &["ipdata", "load", &write(&d, "x.bin", b"\x00\x01garbage")]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));

    // Organizations: by hand, from CSV, from TOML, from RIPE objects.
    ok(
        &d,
        &[
            "org",
            "add",
            "Hospital X",
            "--sector",
            "health",
            "--prefix",
            "198.51.100.128/25",
            "--domain",
            "hospital-x.pt",
            "--abuse-email",
            "soc@hospital-x.pt",
            "--language",
            "pt",
        ],
    );
    let csv = write(&d, "orgs.csv", b"name,sector,asns,prefixes,domains,abuse_email,language,interval,format\nFCCN,academic,AS1930,,,abuse@fccn.pt,pt,hourly,json\n");
    assert!(ok(&d, &["org", "import", &csv]).contains("1 organization(s) added"));
    let toml = write(&d, "orgs.toml", b"[[org]]\nname = \"Ministry\"\nsector = \"government\"\nprefixes = [\"2001:db8:1::/48\"]\ncontacts = [{ email = \"csirt@gov.pt\" }]\n");
    assert!(ok(&d, &["org", "import", &toml]).contains("1 organization(s) added"));
    let broken =
        write(&d, "broken.csv", b"name,sector,prefixes\nA,health,192.0.2.0/24\nB,hospitals,\nC,health,not-a-net\n");
    let o = farol(&d, &["org", "import", &broken]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("line 3: unknown sector") && err.contains("not-a-net") && err.contains("nothing was imported"),
        "{err}"
    );
    assert!(!ok(&d, &["org", "list"]).contains("\nA "), "an import with errors writes nothing");
    let ripe = write(&d, "ripe.db", b"inetnum: 203.0.113.0 - 203.0.113.255\nnetname: SPAIN\ncountry: ES\nabuse-c: AR1\n\ninetnum: 192.0.2.0 - 192.0.2.255\nnetname: SHOP-NET\ncountry: PT\nabuse-c: AR1\n\nrole: Abuse\nnic-hdl: AR1\nabuse-mailbox: abuse@shop.pt\n");
    assert!(ok(&d, &["org", "import", "--ripe", &ripe]).contains("1 organization(s) added"));
    let shop: Value = serde_json::from_str(&ok(&d, &["org", "show", "SHOP-NET", "--json"])).unwrap();
    assert_eq!(shop["prefixes"], serde_json::json!(["192.0.2.0/24"]));
    assert_eq!(shop["contacts"][0]["email"], "abuse@shop.pt");

    // Ingestion enriches and routes.
    let f = write(&d, "events.jsonl", EVENTS.as_bytes());
    ok(&d, &["ingest", "--feed", "partner-intelmq", &f]);
    let hospital = events(&d, &["--org", "Hospital X"]);
    assert_eq!(ips(&hospital), ["-", "198.51.100.200"], "by prefix and by domain");
    let e = hospital.iter().find(|e| e["source.ip"] == "198.51.100.200").unwrap();
    assert_eq!((e["source.asn"].as_u64(), e["source.as_name"].as_str()), (Some(64501), Some("Example Telecom")));
    assert_eq!(
        (e["source.network"].as_str(), e["source.geolocation.cc"].as_str()),
        (Some("198.51.100.0/24"), Some("PT"))
    );
    assert_eq!(e["extra.enrichment"]["source.asn"], "asn#1");
    assert_eq!(
        e["extra.enrichment"]["source.geolocation.cc"], "ripe#1",
        "the delegated file is the only one with a country here"
    );
    // The feed said AS3243; the data says 64501: the feed's stays, the data's is kept beside it.
    let told = events(&d, &["--ip", "198.51.100.7"]);
    assert_eq!(
        (told[0]["source.asn"].as_u64(), told[0]["extra.enrichment_differs"]["source.asn"].as_u64()),
        (Some(3243), Some(64501))
    );
    assert_eq!(ips(&events(&d, &["--org", "FCCN"])), ["193.136.5.5"]);
    assert_eq!(ips(&events(&d, &["--org", "Ministry"])), ["2001:db8:1::5"]);
    assert_eq!(ips(&events(&d, &["--scope", "outside"])), ["203.0.113.9"]);
    assert_eq!(ips(&events(&d, &["--scope", "national"])), ["198.51.100.7"], "PT, in no organization's networks");

    let lookup: Value = serde_json::from_str(&ok(&d, &["lookup", "198.51.100.200", "--format", "json"])).unwrap();
    assert_eq!(lookup["source.asn"], 64501);
    assert_eq!(lookup["source.network"], "198.51.100.0/24");
    assert_eq!(lookup["organizations"][0]["name"], "Hospital X");
    assert_eq!(lookup["datasets"]["source.asn"], "asn#1");
    assert!(ok(&d, &["lookup", "193.136.5.5"]).contains("FCCN"));
    assert_eq!(farol(&d, &["lookup", "not a thing!"]).status.code(), Some(2));

    // Organizations change; reroute applies it to stored events.
    ok(&d, &["org", "edit", "Hospital X", "--prefix", "198.51.100.0/25"]);
    assert!(ok(&d, &["reroute"]).contains("1 of 6 event(s) rerouted"));
    assert_eq!(ips(&events(&d, &["--org", "Hospital X"])), ["-", "198.51.100.200", "198.51.100.7"]);
    ok(&d, &["org", "edit", "Hospital X", "--remove", "198.51.100.0/25"]);
    ok(&d, &["reroute"]);
    assert_eq!(ips(&events(&d, &["--org", "Hospital X"])), ["-", "198.51.100.200"]);
    ok(&d, &["org", "remove", "FCCN"]);
    assert_eq!(farol(&d, &["events", "--org", "FCCN"]).status.code(), Some(3));

    // Warninglists: an operator list marks; a feed that asks drops.
    std::fs::create_dir_all(d.path.join("warninglists")).unwrap();
    write(&d, "warninglists/lab.json", br#"{"name": "Lab networks", "type": "cidr", "list": ["193.136.5.0/24"]}"#);
    assert!(ok(&d, &["warninglists"]).contains("Lab networks"));
    assert!(ok(&d, &["lookup", "193.136.5.5"]).contains("Lab networks"));
    write(&d, "feeds.d/dropper.toml", b"format = \"intelmq\"\nwarninglisted = \"drop\"\n");
    let out = ok(&d, &["ingest", "--feed", "dropper", &f]);
    // The lab address, and the documentation ranges that the other addresses are in.
    assert!(out.contains("1 new events, 0 duplicates, 5 dropped"), "{out}");
    write(&d, "warninglists/bad.json", b"{}");
    assert_eq!(farol(&d, &["events"]).status.code(), Some(2), "a broken list is a configuration error");
}
