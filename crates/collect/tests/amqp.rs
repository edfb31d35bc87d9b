//! The AMQP collector against the RabbitMQ of the machine (FAROL_TEST_AMQP_URL, set by
//! `.ci/run`): the connection dropped in the middle of a stream loses nothing, and nothing is
//! stored twice.

// Helpers of a test file may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

#[path = "support/broker.rs"]
mod broker;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use amqprs::BasicProperties;
use amqprs::channel::{BasicPublishArguments, Channel, QueueDeclareArguments, QueueDeleteArguments};
use broker::{address, broker, channel, relay};
use farol_collect::{AmqpConfig, Collector, CollectorConfig, Context, run_once};
use farol_pipeline::{Feed, Ingested};
use farol_store::{EventQuery, SqliteStore, Store, Visibility};

const MESSAGES: u64 = 20_000;

async fn waiting(channel: &Channel, queue: &str) -> u32 {
    let mut passive = QueueDeclareArguments::new(queue);
    passive.passive(true);
    channel.queue_declare(passive).await.unwrap().unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_stream_loses_nothing_and_duplicates_nothing() {
    let Some(url) = broker() else { return };
    let direct = address(&url);
    let queue = format!("farol-test-{}", std::process::id());
    let (connection, ch) = channel(&url).await;
    ch.queue_declare(QueueDeclareArguments::new(&queue)).await.unwrap();
    for i in 0..MESSAGES {
        let event = format!(
            r#"{{"source.ip": "10.{}.{}.{}", "time.source": "2024-06-01T10:00:00+00:00", "classification.type": "infected-system", "malware.name": "mirai", "feed.name": "n6-stream"}}"#,
            i >> 16,
            (i >> 8) & 255,
            i & 255
        );
        ch.basic_publish(BasicProperties::default(), event.into_bytes(), BasicPublishArguments::new("", &queue))
            .await
            .unwrap();
    }
    while u64::from(waiting(&ch, &queue).await) < MESSAGES {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("farol.db")).unwrap());
    let ctx = Context {
        store: store.clone(),
        experts: Arc::new(|_: &Feed| Vec::new()),
        workdir: dir.path().join("tmp"),
        queue: false,
    };
    let config =
        |host: &str| AmqpConfig { url: url.replace(&direct, host), queue: queue.clone(), batch: 1_000, wait_secs: 1 };
    let collector = |host: &str| Collector {
        feed: Feed::adhoc("n6-stream", Some("intelmq")),
        config: CollectorConfig::Amqp(config(host)),
        schedule: None,
    };
    let stored = || {
        store.events(&EventQuery { visible: Visibility::All, limit: usize::MAX, ..Default::default() }).unwrap().len()
            as u64
    };

    // Through a relay that drops the connection after about a third of the stream.
    let (relayed, moved) = relay(direct.clone(), 1_500_000).await;
    let cut = run_once(&ctx, &collector(&relayed)).await;
    assert!(cut.is_err(), "the run must see the connection drop");
    assert!(moved.load(Ordering::Relaxed) > 1_500_000);
    let before = stored();
    assert!(before > 0 && before < MESSAGES, "part of the stream was taken before the drop: {before}");

    // Again, directly: the rest, and what was delivered but not acknowledged, once more.
    let run = run_once(&ctx, &collector(&direct)).await.unwrap();
    assert!(!run.ingested.is_empty());
    assert_eq!(stored(), MESSAGES, "every message is an event, once");
    assert_eq!(waiting(&ch, &queue).await, 0, "everything was acknowledged");
    let counted: u64 =
        store.reports(Some("n6-stream"), 1_000).unwrap().iter().map(|r| r.counts.events + r.counts.duplicates).sum();
    assert!(counted >= MESSAGES, "redelivered messages count as duplicates: {counted}");
    assert!(run.ingested.iter().all(|i| matches!(i, Ingested::Processed(_))));

    // A drained queue: nothing new.
    let again = run_once(&ctx, &collector(&direct)).await.unwrap();
    assert!(again.unchanged);
    ch.queue_delete(QueueDeleteArguments::new(&queue)).await.unwrap();
    let _ = ch.close().await;
    let _ = connection.close().await;
}
