//! Live event streams: each organization's new events, published to an AMQP topic exchange of
//! its own (RabbitMQ) with the routing key `taxonomy.type.feed`, as n6's stream API has it. An
//! organization's stream carries exactly what its e-mail notifications would: the events in its
//! networks that the access policy lets it see there.
//!
//! A stream starts at the reports finished when it is first seen (no backlog) and goes on from
//! where it stands, saved in the store after every batch the broker has confirmed. A round cut
//! off at any point (the broker or the connection gone, farol killed) loses nothing: the next
//! round publishes again what was not confirmed. Delivery is at least once; a message's id is
//! its event's id, for consumers that must see each event once.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::callbacks::ChannelCallback;
use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments, QueueBindArguments,
    QueueDeclareArguments,
};
use amqprs::connection::Connection;
use amqprs::{Ack, BasicProperties, Cancel, CloseChannel, Nack, Return};
use farol_model::org::{Org, OrgId};
use farol_store::{Store, StoredEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::Error;
use crate::amqp::fetch;
use crate::connection_arguments;

/// The `[streams]` section of farol.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// `amqp://USER:PASSWORD@HOST:PORT/VHOST`; `${VAR}` is read from the environment.
    pub url: String,
    /// An organization's exchange is this followed by its id: `farol.org.12`.
    #[serde(default = "default_prefix")]
    pub exchange_prefix: String,
    /// Also declare a durable queue per organization (named as its exchange) that takes all its
    /// events, so that they wait while the organization is away.
    #[serde(default)]
    pub queues: bool,
    /// Events published before waiting for the broker's confirmation.
    #[serde(default = "default_batch")]
    pub batch: u16,
    /// Seconds between rounds in `farol serve` and `farol stream`.
    #[serde(default = "default_every")]
    pub every_secs: u64,
}

fn default_prefix() -> String {
    "farol.org.".to_owned()
}

fn default_batch() -> u16 {
    1000
}

fn default_every() -> u64 {
    10
}

/// How long the broker may take to confirm a batch.
const CONFIRM_WAIT: Duration = Duration::from_secs(30);

impl StreamConfig {
    pub fn exchange(&self, org: OrgId) -> String {
        format!("{}{}", self.exchange_prefix, org.0)
    }

    /// What is wrong with these settings, one line each, named by key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.url.starts_with("amqp://") && !self.url.starts_with("${") {
            problems.push("url: expected amqp://USER:PASSWORD@HOST:PORT/VHOST".to_owned());
        }
        // AMQP names are at most 255 bytes; RabbitMQ's are letters, digits, '-', '_', '.' and ':'.
        let prefix = &self.exchange_prefix;
        if prefix.len() > 200 || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
            problems.push(format!(
                "exchange_prefix: expected at most 200 letters, digits, '-', '_', '.' or ':', found {prefix:?}"
            ));
        }
        if self.batch == 0 {
            problems.push("batch: expected at least 1".to_owned());
        }
        if self.every_secs == 0 {
            problems.push("every_secs: expected at least 1".to_owned());
        }
        problems
    }
}

/// Where an organization's stream stands, as kept in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    /// Every event of the reports up to this one is published (or was before the stream began).
    through: i64,
    /// The reports up to this one are being published...
    target: i64,
    /// ... in event id order, up to this event.
    after: i64,
}

fn state_key(org: OrgId) -> String {
    format!("stream:org:{}", org.0)
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Published {
    /// Organizations whose stream began in this round.
    pub started: usize,
    /// Events published (and confirmed), and to how many organizations.
    pub events: u64,
    pub orgs: usize,
}

/// The routing key of an event: `taxonomy.type.feed`, each part without dots (they separate
/// the parts) and in lower case.
pub fn routing_key(e: &StoredEvent) -> String {
    let part = |s: &str| s.to_ascii_lowercase().replace(['.', '#', '*'], "-");
    let (taxonomy, kind) = match e.event.classification_type {
        Some(t) => (t.taxonomy().as_str(), t.as_str()),
        None => ("other", "undetermined"),
    };
    format!("{}.{}.{}", part(taxonomy), part(kind), part(&e.feed))
}

/// What a round that went through saw: after it, every stream stands at `horizon`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    horizon: i64,
    orgs: Vec<OrgId>,
}

/// Publishes every organization's new events; a stream's position is saved once the broker has
/// confirmed what it counts. With what the last round of this process `seen`, a round with
/// nothing new (no report finished, no organization added) does nothing, not even connect.
pub async fn round(store: Arc<dyn Store>, config: &StreamConfig, seen: &mut Option<Seen>) -> Result<Published, Error> {
    let (horizon, orgs) = stored(&store, |s| Ok((s.finished_through()?, s.orgs()?))).await?;
    let now = Seen { horizon, orgs: orgs.iter().map(|o| o.id).collect() };
    if seen.as_ref() == Some(&now) {
        return Ok(Published::default());
    }
    let connection =
        Connection::open(&connection_arguments(&config.url)?).await.map_err(fetch("cannot connect to the broker"))?;
    let channel = connection.open_channel(None).await.map_err(fetch("cannot open a channel"))?;
    let confirms = Confirms::default();
    channel.register_callback(confirms.clone()).await.map_err(fetch("cannot watch confirmations"))?;
    channel.confirm_select(ConfirmSelectArguments::default()).await.map_err(fetch("confirm.select"))?;
    let result = publish_all(&store, config, &channel, &confirms, horizon, orgs).await;
    let _ = channel.close().await;
    let _ = connection.close().await;
    if result.is_ok() {
        *seen = Some(now);
    }
    result
}

async fn publish_all(
    store: &Arc<dyn Store>,
    config: &StreamConfig,
    channel: &Channel,
    confirms: &Confirms,
    horizon: i64,
    orgs: Vec<Org>,
) -> Result<Published, Error> {
    let limit = usize::from(config.batch.max(1));
    let mut published = Published::default();
    // Positions to save once the broker has confirmed what they count: organizations with a
    // few events each share a wait for the broker.
    let mut unconfirmed: Vec<(String, Position)> = Vec::new();
    for org in orgs {
        let exchange = config.exchange(org.id);
        declare(channel, config, &exchange).await?;
        let key = state_key(org.id);
        let saved = stored(store, {
            let key = key.clone();
            move |s| s.collector_state(&key)
        })
        .await?;
        let mut at = match saved.and_then(|s| serde_json::from_str::<Position>(&s).ok()) {
            Some(at) => at,
            None => {
                save(store, vec![(key, Position { through: horizon, target: horizon, after: 0 })]).await?;
                published.started += 1;
                continue;
            }
        };
        if at.target <= at.through {
            at = Position { through: at.through, target: horizon, after: 0 };
        }
        let mut sent = 0u64;
        while at.target > at.through {
            let org_id = org.id;
            let events = stored(store, move |s| {
                s.new_events(org_id, &farol_policy::notification(org_id), (at.through, at.target), at.after, limit)
            })
            .await?;
            for e in &events {
                confirms.update(|s| s.published += 1);
                publish(channel, &exchange, e).await?;
            }
            sent += events.len() as u64;
            at = match events.last() {
                Some(last) if events.len() == limit => Position { after: last.id, ..at },
                _ => Position { through: at.target, target: at.target, after: 0 },
            };
            unconfirmed.push((key.clone(), at));
            if confirms.outstanding() >= limit as u64 {
                confirms.wait(CONFIRM_WAIT, channel).await?;
                save(store, std::mem::take(&mut unconfirmed)).await?;
            }
        }
        if sent > 0 {
            published.events += sent;
            published.orgs += 1;
        }
    }
    confirms.wait(CONFIRM_WAIT, channel).await?;
    save(store, unconfirmed).await?;
    Ok(published)
}

/// The organization's topic exchange, and its queue when configured; both durable.
async fn declare(channel: &Channel, config: &StreamConfig, exchange: &str) -> Result<(), Error> {
    let mut args = ExchangeDeclareArguments::new(exchange, "topic");
    args.durable = true;
    channel.exchange_declare(args).await.map_err(fetch(&format!("cannot declare exchange {exchange}")))?;
    if config.queues {
        channel
            .queue_declare(QueueDeclareArguments::durable_client_named(exchange))
            .await
            .map_err(fetch(&format!("cannot declare queue {exchange}")))?;
        channel
            .queue_bind(QueueBindArguments::new(exchange, exchange, "#"))
            .await
            .map_err(fetch(&format!("cannot bind queue {exchange}")))?;
    }
    Ok(())
}

async fn publish(channel: &Channel, exchange: &str, e: &StoredEvent) -> Result<(), Error> {
    let properties = BasicProperties::default()
        .with_content_type("application/json")
        .with_persistence(true)
        .with_message_id(&e.id.to_string())
        .with_timestamp(u64::try_from(e.filed.micros() / 1_000_000).unwrap_or(0))
        .with_app_id("farol")
        .finish();
    let body = e.event.to_intelmq_json().into_bytes();
    channel
        .basic_publish(properties, body, BasicPublishArguments::new(exchange, &routing_key(e)))
        .await
        .map_err(fetch("basic.publish"))
}

/// Saves positions, in order (an organization's last one last).
async fn save(store: &Arc<dyn Store>, positions: Vec<(String, Position)>) -> Result<(), Error> {
    if positions.is_empty() {
        return Ok(());
    }
    stored(store, move |s| {
        positions
            .iter()
            .try_for_each(|(key, at)| s.set_collector_state(key, &serde_json::to_string(at).unwrap_or_default()))
    })
    .await
}

/// Store work, off the async threads.
async fn stored<T: Send + 'static>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> farol_store::Result<T> + Send + 'static,
) -> Result<T, Error> {
    let store = Arc::clone(store);
    crate::blocking(move || Ok(f(store.as_ref())?)).await
}

/// The broker's confirmations of what this channel published (numbered from 1).
#[derive(Debug, Clone, Default)]
struct Confirms {
    state: Arc<Mutex<ConfirmState>>,
    changed: Arc<Notify>,
}

#[derive(Debug, Default)]
struct ConfirmState {
    /// Messages published so far.
    published: u64,
    /// Every message up to this one is confirmed...
    through: u64,
    /// ... and these beyond it.
    beyond: BTreeSet<u64>,
    refused: bool,
}

impl Confirms {
    fn update(&self, f: impl FnOnce(&mut ConfirmState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
            while s.beyond.first() == Some(&(s.through + 1)) {
                s.beyond.pop_first();
                s.through += 1;
            }
        }
        self.changed.notify_waiters();
    }

    /// Messages published and not yet confirmed.
    fn outstanding(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.published - s.through)
    }

    /// The broker confirmed message `tag`, or with `multiple` every one up to it.
    fn acked(&self, tag: u64, multiple: bool) {
        self.update(|s| {
            if multiple {
                s.through = s.through.max(tag);
                s.beyond.retain(|t| *t > tag);
            } else if tag > s.through {
                s.beyond.insert(tag);
            }
        });
    }

    /// Waits until the broker has confirmed every message published on `channel` so far.
    async fn wait(&self, limit: Duration, channel: &Channel) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            {
                let s = self.state.lock().map_err(|_| Error::Fetch("confirmations lost".into()))?;
                if s.refused {
                    return Err(Error::Fetch("the broker refused a message (basic.nack)".into()));
                }
                if s.through >= s.published {
                    return Ok(());
                }
            }
            if !channel.is_open() {
                return Err(Error::Fetch("the connection to the broker dropped before it confirmed".into()));
            }
            let tick = tokio::time::Instant::now() + Duration::from_millis(200);
            if tick > deadline {
                return Err(Error::Fetch(format!("the broker did not confirm within {}s", limit.as_secs())));
            }
            let _ = tokio::time::timeout_at(tick, notified).await;
        }
    }
}

#[async_trait::async_trait]
impl ChannelCallback for Confirms {
    async fn close(&mut self, _: &Channel, _: CloseChannel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }

    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }

    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }

    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        self.acked(ack.delivery_tag(), ack.mutiple());
    }

    async fn publish_nack(&mut self, _: &Channel, _: Nack) {
        self.update(|s| s.refused = true);
    }

    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn routing_keys_have_three_parts() {
        let mut e = StoredEvent {
            id: 1,
            report: farol_model::ReportId(1),
            feed: "Shadowserver.Sinkhole-HTTP".into(),
            hash: farol_model::EventHash(1),
            position: farol_model::Position::default(),
            event: farol_model::Event::default(),
            filed: farol_model::Timestamp::from_secs(0).unwrap(),
            routing: Default::default(),
            aggregate: None,
        };
        assert_eq!(routing_key(&e), "other.undetermined.shadowserver-sinkhole-http");
        e.event.set("classification.type", "infected-system").unwrap();
        assert_eq!(routing_key(&e), "malicious-code.infected-system.shadowserver-sinkhole-http");
    }

    #[tokio::test]
    async fn a_round_with_nothing_new_does_not_connect() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(farol_store::SqliteStore::open(&dir.path().join("farol.db")).unwrap());
        // Nothing listens on port 1: a round that connects fails.
        let config: StreamConfig = toml::from_str(r#"url = "amqp://guest:guest@127.0.0.1:1/%2f""#).unwrap();
        let mut seen = None;
        let e = round(Arc::clone(&store), &config, &mut seen).await.unwrap_err().to_string();
        assert!(e.starts_with("cannot connect to the broker"), "{e}");
        assert_eq!(seen, None);
        let mut seen = Some(Seen { horizon: 0, orgs: Vec::new() });
        assert_eq!(round(Arc::clone(&store), &config, &mut seen).await.unwrap(), Published::default());
        // An organization added is news: its exchange is to be declared.
        let org = Org {
            id: OrgId(0),
            name: "Hospital X".into(),
            sector: farol_model::org::Sector::Health,
            handle: None,
            assets: Vec::new(),
            contacts: Vec::new(),
        };
        store.add_org(&org).unwrap();
        assert!(round(store, &config, &mut seen).await.is_err());
    }

    #[test]
    fn confirmations_count_in_any_order() {
        let c = Confirms::default();
        c.update(|s| s.published = 5);
        let ack = |tag, multiple| c.acked(tag, multiple);
        ack(2, false);
        ack(3, false);
        assert_eq!(c.state.lock().unwrap().through, 0);
        ack(1, false);
        assert_eq!(c.state.lock().unwrap().through, 3);
        ack(5, true);
        let s = c.state.lock().unwrap();
        assert_eq!((s.through, s.beyond.len()), (5, 0));
    }
}
