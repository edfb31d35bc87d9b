//! Live event streams against the RabbitMQ of the machine (FAROL_TEST_AMQP_URL, set by
//! `.ci/run`): each organization's exchange carries its own events and only those the access
//! policy lets it see, under `taxonomy.type.feed`; a connection dropped in the middle of a round
//! loses nothing; `farol serve` publishes as reports arrive.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

#[path = "../../collect/tests/support/broker.rs"]
mod broker;
mod common;

use std::collections::{BTreeMap, BTreeSet};

use amqprs::channel::{
    BasicGetArguments, Channel, ExchangeDeleteArguments, QueueBindArguments, QueueDeclareArguments,
    QueueDeleteArguments,
};
use broker::{address, broker, channel, relay};
use common::{Dir, examples, farol, init_with, stderr, stdout};

/// Every message a queue holds, as (message id, routing key), taken off it.
async fn drain(channel: &Channel, queue: &str) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while let Some((deliver, properties, _)) =
        channel.basic_get(BasicGetArguments::new(queue).no_ack(true).finish()).await.unwrap()
    {
        let id = properties.message_id().unwrap().parse().unwrap();
        got.push((id, deliver.routing_key().clone()));
    }
    got
}

fn set_streams(d: &Dir, url: &str, prefix: &str) {
    let toml = d.path.join("farol.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let base = text.split("\n[streams]\n").next().unwrap();
    let streams = format!(
        "\n[streams]\nurl = \"{url}\"\nexchange_prefix = \"{prefix}\"\nqueues = true\nbatch = 20\nevery_secs = 1\n"
    );
    std::fs::write(toml, format!("{base}{streams}")).unwrap();
}

/// The ids of the events in an organization's networks, by feed.
fn events_of(d: &Dir, org: i64) -> BTreeMap<String, BTreeSet<i64>> {
    let o = farol(d, &["events", "--org", &org.to_string(), "--limit", "0", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let events: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).unwrap();
    let mut by_feed = BTreeMap::<String, BTreeSet<i64>>::new();
    for e in events {
        by_feed.entry(e["feed"].as_str().unwrap().to_owned()).or_default().insert(e["id"].as_i64().unwrap());
    }
    by_feed
}

#[test]
fn each_organization_gets_its_own_events_and_a_dropped_connection_loses_none() {
    let Some(broker) = broker() else { return };
    let direct = address(&broker);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The client's connection and channel spawn tasks when they drop, at the end or in a panic.
    let _inside = runtime.enter();
    let (_connection, ch) = runtime.block_on(channel(&broker));

    let d = init_with(&["--center", "CERT CI", "--country", "PT"]);
    let o = farol(&d, &["org", "import", examples().join("orgs.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same sinkhole at TLP:RED: the center's alone, never on an organization's stream.
    let feed = std::fs::read_to_string(examples().join("feeds/example-sinkhole.toml")).unwrap();
    std::fs::write(d.path.join("feeds.d/red-sinkhole.toml"), feed.replace("tlp = \"AMBER\"", "tlp = \"RED\"")).unwrap();
    let orgs: BTreeMap<String, i64> = ["MEO", "NOS", "Vodafone Portugal", "RCTS (FCCN)"]
        .into_iter()
        .map(|name| {
            let o = farol(&d, &["org", "show", name, "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            (name.to_owned(), v["id"].as_i64().unwrap())
        })
        .collect();
    // Names of their own on the shared broker.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let prefix = format!("farol-test-{}-{nanos}.", std::process::id());
    let o = farol(&d, &["stream", "--once"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("add a [streams] section"), "{}", stderr(&o));
    set_streams(&d, "http://broker", "farol org.");
    let o = farol(&d, &["stream", "--once"]);
    assert_eq!(o.status.code(), Some(2));
    for problem in ["streams.url: expected amqp://", "streams.exchange_prefix: expected at most 200 letters"] {
        assert!(stderr(&o).contains(problem), "{}", stderr(&o));
    }
    set_streams(&d, &broker, &prefix);

    // The first round starts the streams: exchanges and queues exist, nothing is published.
    let o = farol(&d, &["stream", "--once"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("stream(s) started"), "{}", stdout(&o));
    let o = farol(&d, &["org", "show", "MEO"]);
    assert!(stdout(&o).contains(&format!("AMQP exchange {prefix}{}, routing keys", orgs["MEO"])), "{}", stdout(&o));
    // A subscriber of its own to MEO's infected systems from this feed, as n6 clients bind.
    let mine = format!("{prefix}mine");
    runtime.block_on(async {
        ch.queue_declare(QueueDeclareArguments::new(&mine)).await.unwrap();
        let key = "malicious-code.infected-system.example-sinkhole";
        ch.queue_bind(QueueBindArguments::new(&mine, &format!("{prefix}{}", orgs["MEO"]), key)).await.unwrap();
    });

    let example = examples().join("2024-06-01-event4_sinkhole-example.csv");
    let red = d.path.join("red.csv");
    std::fs::write(&red, std::fs::read_to_string(&example).unwrap().replace("2024-06-01 ", "2024-06-02 ")).unwrap();
    for (feed, file) in [("example-sinkhole", &example), ("red-sinkhole", &red)] {
        let o = farol(&d, &["ingest", "--feed", feed, file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }

    // A round through a connection that drops after 30 kB: some events are out, the rest not.
    let (relayed, _) = runtime.block_on(relay(direct.clone(), 30_000));
    set_streams(&d, &broker.replacen(&direct, &relayed, 1), &prefix);
    let o = farol(&d, &["stream", "--once"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("the next round goes on from there"), "{}", stderr(&o));
    let mut received: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
    for id in orgs.values() {
        received.insert(*id, runtime.block_on(drain(&ch, &format!("{prefix}{id}"))));
    }
    let early: usize = received.values().map(Vec::len).sum();
    assert!(early > 0, "the round published nothing before the connection dropped");

    set_streams(&d, &broker, &prefix);
    let o = farol(&d, &["stream", "--once"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = farol(&d, &["stream", "--once"]);
    assert!(stdout(&o).contains("0 event(s) published"), "{}", stdout(&o));

    let mut total = 0;
    for (name, id) in &orgs {
        let got = received.get_mut(id).unwrap();
        got.extend(runtime.block_on(drain(&ch, &format!("{prefix}{id}"))));
        let ids: BTreeSet<i64> = got.iter().map(|(id, _)| *id).collect();
        let expected = events_of(&d, *id);
        assert!(!expected["red-sinkhole"].is_empty() && !expected["example-sinkhole"].is_empty());
        // All of its AMBER events, none at RED, none of another organization.
        assert_eq!(ids, expected["example-sinkhole"], "{name}");
        // At least once: only what was published but not confirmed when the connection dropped
        // comes again, at most one batch.
        assert!(got.len() - ids.len() <= 20, "{name}: {} duplicates", got.len() - ids.len());
        assert!(got.iter().all(|(_, key)| key == "malicious-code.infected-system.example-sinkhole"), "{name}");
        total += ids.len();
    }
    assert!(early < total, "the connection dropped after the round had published everything");
    let meo: BTreeSet<i64> = runtime.block_on(drain(&ch, &mine)).into_iter().map(|(id, _)| id).collect();
    assert_eq!(meo, events_of(&d, orgs["MEO"])["example-sinkhole"]);

    // `farol serve` publishes as reports arrive (a round a second here).
    let (mut server, _) = common::serve(&d, &[]);
    let later = d.path.join("later.csv");
    std::fs::write(&later, std::fs::read_to_string(&example).unwrap().replace("2024-06-01 ", "2024-06-03 ")).unwrap();
    let o = farol(&d, &["ingest", "--feed", "example-sinkhole", later.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let nos = orgs["NOS"];
    let before = &received[&nos].iter().map(|(id, _)| *id).collect::<BTreeSet<i64>>();
    let new: BTreeSet<i64> = events_of(&d, nos)["example-sinkhole"].difference(before).copied().collect();
    assert!(!new.is_empty());
    let mut live = BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while live != new && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        live.extend(runtime.block_on(drain(&ch, &format!("{prefix}{nos}"))).into_iter().map(|(id, _)| id));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(live, new, "farol serve published the new report's events");

    runtime.block_on(async {
        ch.queue_delete(QueueDeleteArguments::new(&mine)).await.unwrap();
        let o = farol(&d, &["org", "list", "--format", "json"]);
        let all: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        for org in all {
            let name = format!("{prefix}{}", org["id"]);
            ch.queue_delete(QueueDeleteArguments::new(&name)).await.unwrap();
            ch.exchange_delete(ExchangeDeleteArguments::new(&name)).await.unwrap();
        }
    });
}
