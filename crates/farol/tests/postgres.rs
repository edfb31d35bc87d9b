//! farol on a PostgreSQL store, as a center that outgrew one machine runs it: the commands of
//! intake and processing, what is not there yet said plainly, and the backup and restore drill
//! with PostgreSQL's own tools.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use amqprs::channel::{BasicGetArguments, ExchangeDeleteArguments, QueueDeleteArguments};
use farol_store::testing::PostgresSchema;

// Only the broker's address and a channel are needed here.
#[allow(dead_code)]
#[path = "../../collect/tests/support/broker.rs"]
mod broker;
mod common;

use common::{Dir, examples, farol, init, init_on_postgres, stderr, stdout};

fn ok(d: &Dir, args: &[&str]) -> String {
    let o = farol(d, args);
    assert!(o.status.success(), "farol {args:?}: {}", stderr(&o));
    stdout(&o)
}

/// The events of the store, one IntelMQ line each.
fn events(d: &Dir) -> usize {
    ok(d, &["events", "--limit", "0", "--format", "intelmq"]).lines().count()
}

#[test]
fn intake_processing_and_queries_run_on_postgresql_and_a_dump_restores() {
    let Some(schema) = PostgresSchema::new() else { return };
    let d = init_on_postgres(&schema);
    assert!(ok(&d, &["migrate"]).contains("migrated from schema version 0 to 4"));
    ok(&d, &["org", "import", examples().join("orgs.csv").to_str().unwrap()]);
    let example = examples().join("2024-06-01-event4_sinkhole-example.csv");
    let out = ok(&d, &["ingest", "--feed", "example-sinkhole", example.to_str().unwrap()]);
    assert!(out.contains("300 new events, 0 duplicates, 0 dropped, 2 rejected"), "{out}");
    assert_eq!(events(&d), 300);
    // Routed at ingest: an organization's events are those in its networks.
    let meo = ok(&d, &["events", "--org", "MEO", "--limit", "0", "--format", "json"]);
    let meo: Vec<serde_json::Value> = serde_json::from_str(&meo).unwrap();
    assert!(!meo.is_empty(), "MEO has events in the example");
    assert!(meo.iter().all(|e| e["event"]["source.asn"] == 3243), "only MEO's network");
    assert!(ok(&d, &["reports"]).contains("done"));
    assert!(ok(&d, &["feeds"]).contains("example-sinkhole"));
    // IP data, lookups and rerouting read and write the same store.
    let ranges = d.path.join("asn.csv");
    std::fs::write(&ranges, "85.240.0.0,85.247.255.255,3243,MEO example\n").unwrap();
    ok(&d, &["ipdata", "load", ranges.to_str().unwrap(), "--format", "csv"]);
    assert!(ok(&d, &["ipdata", "list"]).contains("asn"));
    let lookup = ok(&d, &["lookup", "85.244.59.64"]);
    assert!(lookup.contains("MEO example") && lookup.contains("MEO (#"), "{lookup}");
    assert!(ok(&d, &["reroute"]).contains("of 300 event(s) rerouted"));

    // farol backup copies SQLite stores; it says what to use instead.
    let o = farol(&d, &["backup", d.path.join("copy.db").to_str().unwrap()]);
    assert!(stderr(&o).contains("pg_dump"), "{}", stderr(&o));

    // The drill: pg_dump of the schema, the schema lost, pg_restore, and farol goes on.
    let base = std::env::var("FAROL_TEST_POSTGRES_URL").unwrap();
    let dump = d.path.join("farol.dump");
    let pg = |tool: &str, args: &[&str]| {
        let o = Command::new(tool).args(args).output().unwrap();
        assert!(o.status.success(), "{tool}: {}", String::from_utf8_lossy(&o.stderr));
    };
    pg("pg_dump", &["--format=custom", "--schema", &schema.name, "--file", dump.to_str().unwrap(), &base]);
    pg("psql", &["--quiet", &base, "-c", &format!("DROP SCHEMA {} CASCADE", schema.name)]);
    assert!(!farol(&d, &["events"]).status.success(), "the store is gone");
    pg("pg_restore", &["--dbname", &base, dump.to_str().unwrap()]);
    assert_eq!(events(&d), 300);
    let again = ok(&d, &["ingest", "--feed", "example-sinkhole", example.to_str().unwrap()]);
    assert!(again.contains("already ingested"), "{again}");
    let next = d.path.join("2024-06-02-event4_sinkhole-next.csv");
    let day = farol_model::Timestamp::parse("2024-06-02").unwrap();
    farol_synth::sinkhole_csv(&mut std::fs::File::create(&next).unwrap(), 1_000, 3, day).unwrap();
    let out = ok(&d, &["ingest", "--feed", "example-sinkhole", next.to_str().unwrap()]);
    assert!(out.contains("1,000 new events"), "{out}");
    assert_eq!(events(&d), 1_300, "the restored sequences hand out new ids");

    // Reprocessing and a collector work there too.
    assert!(ok(&d, &["reprocess", "1"]).contains("300 new events"));
    let feed = d.path.join("feeds.d/example-sinkhole.toml");
    let spool = d.path.join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::write(
        &feed,
        std::fs::read_to_string(&feed).unwrap() + "\n[collector]\nkind = \"spool\"\ndir = \"spool\"\n",
    )
    .unwrap();
    let day = farol_model::Timestamp::parse("2024-06-03").unwrap();
    let file = spool.join("2024-06-03-event4_sinkhole-spooled.csv");
    farol_synth::sinkhole_csv(&mut std::fs::File::create(&file).unwrap(), 10, 4, day).unwrap();
    assert!(ok(&d, &["collect", "--once"]).contains("10 new events"));
    assert_eq!(events(&d), 1_310);
}

/// A farol directory whose `[store] url` asks for TLS: the commands reach the store over it.
#[test]
fn the_store_is_reached_over_tls_when_the_url_asks() {
    let Some(schema) = PostgresSchema::new() else { return };
    let Ok(tls) = std::env::var("FAROL_TEST_POSTGRES_TLS_URL") else { return };
    let d = init();
    let url = format!("{tls}&options=-c%20search_path%3D{}", schema.name);
    let path = d.path.join("farol.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, toml.replace("path = \"data/farol.db\"", &format!("url = \"{url}\""))).unwrap();
    assert!(ok(&d, &["migrate"]).contains("migrated from schema version 0"));
    ok(
        &d,
        &[
            "ingest",
            "--feed",
            "example-sinkhole",
            examples().join("2024-06-01-event4_sinkhole-example.csv").to_str().unwrap(),
        ],
    );
    assert_eq!(events(&d), 300);
    // A CA file that is not there is said before anything is tried.
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace("sslrootcert=", "sslrootcert=/nowhere"))
        .unwrap();
    let o = farol(&d, &["events"]);
    assert!(stderr(&o).contains("sslrootcert=/nowhere"), "{}", stderr(&o));
}

/// The live streams read a PostgreSQL store as they read SQLite: a round publishes each
/// organization's new events to its exchange, exactly those.
#[test]
fn live_streams_publish_from_a_postgresql_store() {
    let (Some(schema), Some(url)) = (PostgresSchema::new(), broker::broker()) else { return };
    let d = init_on_postgres(&schema);
    let prefix = format!("farol.pgtest{}.", std::process::id());
    let streams = format!("\n[streams]\nurl = \"{url}\"\nexchange_prefix = \"{prefix}\"\nqueues = true\n");
    let toml = d.path.join("farol.toml");
    std::fs::write(&toml, std::fs::read_to_string(&toml).unwrap() + &streams).unwrap();
    ok(&d, &["org", "import", examples().join("orgs.csv").to_str().unwrap()]);
    assert!(ok(&d, &["stream", "--once"]).contains("stream(s) started"));
    let example = examples().join("2024-06-01-event4_sinkhole-example.csv");
    ok(&d, &["ingest", "--feed", "example-sinkhole", example.to_str().unwrap()]);
    let out = ok(&d, &["stream", "--once"]);
    assert!(out.contains("event(s) published"), "{out}");

    let orgs: Vec<serde_json::Value> = serde_json::from_str(&ok(&d, &["org", "list", "--format", "json"])).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The channel and its connection close in the runtime's context.
    let _context = runtime.enter();
    let (_connection, ch) = runtime.block_on(broker::channel(&url));
    for org in &orgs {
        let name = format!("{prefix}{}", org["id"]);
        let mut got: Vec<i64> = runtime.block_on(async {
            let mut ids = Vec::new();
            while let Some((_, properties, _)) =
                ch.basic_get(BasicGetArguments::new(&name).no_ack(true).finish()).await.unwrap()
            {
                ids.push(properties.message_id().unwrap().parse().unwrap());
            }
            ch.queue_delete(QueueDeleteArguments::new(&name)).await.unwrap();
            ch.exchange_delete(ExchangeDeleteArguments::new(&name)).await.unwrap();
            ids
        });
        got.sort_unstable();
        let key = org["id"].to_string();
        let listed = ok(&d, &["events", "--org", &key, "--limit", "0", "--format", "json"]);
        let mut expected: Vec<i64> = serde_json::from_str::<Vec<serde_json::Value>>(&listed)
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        expected.sort_unstable();
        assert_eq!(got, expected, "organization {}", org["name"]);
    }
}

/// `farol copy-store`: a SQLite store into an empty PostgreSQL database, ids kept, everything
/// reading back alike; a database in use is refused.
#[test]
fn copy_store_moves_a_sqlite_store_into_postgresql() {
    let Some(schema) = PostgresSchema::new() else { return };
    let d = init();
    ok(&d, &["org", "import", examples().join("orgs.csv").to_str().unwrap()]);
    ok(
        &d,
        &[
            "ingest",
            "--feed",
            "example-sinkhole",
            examples().join("2024-06-01-event4_sinkhole-example.csv").to_str().unwrap(),
        ],
    );
    ok(&d, &["ingest", "--feed", "partner-intelmq", examples().join("partner-events.jsonl").to_str().unwrap()]);
    let listing = |d: &Dir, store: Option<&str>| {
        let mut c = common::command(d, &["events", "--limit", "0", "--format", "intelmq"]);
        if let Some(url) = store {
            c.env("FAROL_DATABASE_URL", url);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let before = listing(&d, None);
    assert_eq!(before.lines().count(), 303);
    ok(&d, &["user", "add", "ana@cert.example", "--role", "analyst"]);
    let users = ok(&d, &["user", "list"]);

    // The partner feed's events gave an indicator; the example's, statistics.
    let indicators = ok(&d, &["indicators", "list", "--all"]);
    assert!(indicators.contains("partner-intelmq"), "{indicators}");
    let stats =
        ["stats", "--asn", "3243", "--from", "2024-06-01", "--to", "2024-06-02", "--by", "day", "--format", "json"];
    let figures = ok(&d, &stats);
    assert!(figures.contains("\"hosts\""), "{figures}");
    let out = ok(&d, &["copy-store", "--to", &schema.url]);
    let copied = |table: &str| out.lines().find_map(|l| l.strip_prefix(table)?.trim().parse::<u64>().ok());
    assert_eq!((copied("events "), copied("indicators ")), (Some(303), Some(1)), "{out}");

    // Every event, with its id, from the copy; the reports and their rejects too.
    assert_eq!(listing(&d, Some(&schema.url)), before);
    let on_pg = |args: &[&str]| {
        let o = common::command(&d, args).env("FAROL_DATABASE_URL", &schema.url).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(on_pg(&["reports", "show", "1"]), ok(&d, &["reports", "show", "1"]));
    assert_eq!(on_pg(&["events", "--org", "MEO"]), ok(&d, &["events", "--org", "MEO"]));
    assert_eq!(on_pg(&["user", "list"]), users, "accounts move too");
    assert_eq!(on_pg(&["indicators", "list", "--all"]), indicators);
    assert_eq!(on_pg(&stats), figures);
    // New reports go on after the ids copied.
    let next = d.path.join("2024-06-02-event4_sinkhole-next.csv");
    let day = farol_model::Timestamp::parse("2024-06-02").unwrap();
    farol_synth::sinkhole_csv(&mut std::fs::File::create(&next).unwrap(), 100, 3, day).unwrap();
    let out = on_pg(&["ingest", "--feed", "example-sinkhole", next.to_str().unwrap()]);
    assert!(out.starts_with("report 3 "), "{out}");
    assert_eq!(listing(&d, Some(&schema.url)).lines().count(), 403);

    let again = farol(&d, &["copy-store", "--to", &schema.url]);
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
}
