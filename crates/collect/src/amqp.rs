//! An AMQP 0-9-1 queue (RabbitMQ) as a feed: IntelMQ's AMQP output and n6 pipelines publish
//! events there, one JSON object a message. A run takes what the queue holds: messages become
//! reports of up to `batch` messages, and a report's messages are acknowledged only after it is
//! archived. A run cut off at any point (the broker or the connection gone, farol killed) loses
//! nothing: the broker delivers again whatever was not acknowledged, and events already stored
//! count as duplicates, never twice.

use std::time::Duration;

use amqprs::channel::{BasicAckArguments, BasicConsumeArguments, BasicQosArguments};
use amqprs::connection::{Connection, OpenConnectionArguments};
use farol_pipeline::Feed;
use serde::Deserialize;

use crate::http::expand;
use crate::{Context, Error, Run, ingest_temporary};

/// A queue to take events from, as written under `[feeds.NAME.collector]` with `kind = "amqp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// `amqp://USER:PASSWORD@HOST:PORT/VHOST`; `${VAR}` is read from the environment.
    pub url: String,
    /// The queue to consume; it must exist (bound to the publisher's exchange).
    pub queue: String,
    /// Messages per report.
    #[serde(default = "default_batch")]
    pub batch: u16,
    /// Seconds without a message after which the queue counts as drained and the run ends.
    #[serde(default = "default_wait")]
    pub wait_secs: u64,
}

fn default_batch() -> u16 {
    10_000
}

fn default_wait() -> u64 {
    2
}

pub(crate) fn fetch(what: &str) -> impl Fn(amqprs::error::Error) -> Error + '_ {
    move |e| Error::Fetch(format!("{what}: {e}"))
}

/// Host, port, credentials and virtual host of an `amqp://` URL (`${VAR}` read from the
/// environment).
pub fn connection_arguments(url: &str) -> Result<OpenConnectionArguments, Error> {
    let url = url::Url::parse(&expand(url)?).map_err(|e| Error::Fetch(format!("url: {e}")))?;
    if url.scheme() != "amqp" {
        return Err(Error::Fetch(format!("url: expected amqp://HOST:PORT/VHOST, found {}://", url.scheme())));
    }
    let host = url.host_str().ok_or_else(|| Error::Fetch("url: no host".into()))?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let user = if url.username().is_empty() { "guest".to_owned() } else { decode(url.username()) };
    let password = url.password().map_or_else(|| "guest".to_owned(), decode);
    let vhost = match url.path().trim_start_matches('/') {
        "" => "/".to_owned(),
        v => decode(v),
    };
    let mut args = OpenConnectionArguments::new(host, url.port().unwrap_or(5672), &user, &password);
    args.virtual_host(&vhost).connection_name("farol");
    Ok(args)
}

pub(crate) async fn run(ctx: &Context, feed: &Feed, config: &AmqpConfig) -> Result<Run, Error> {
    let args = connection_arguments(&config.url)?;
    let connection = Connection::open(&args).await.map_err(fetch("cannot connect to the broker"))?;
    let channel = connection.open_channel(None).await.map_err(fetch("cannot open a channel"))?;
    // The broker sends at most one report's worth before it is acknowledged.
    channel.basic_qos(BasicQosArguments::new(0, config.batch.max(1), false)).await.map_err(fetch("basic.qos"))?;
    let consume = BasicConsumeArguments::new(&config.queue, &format!("farol-{}", feed.name));
    let (_, mut messages) =
        channel.basic_consume_rx(consume).await.map_err(fetch(&format!(
        "cannot consume queue {:?} (farol does not declare it: does it exist in that virtual host, may the user read it?)",
        config.queue
    )))?;
    std::fs::create_dir_all(&ctx.workdir)?;
    let wait = Duration::from_secs(config.wait_secs.max(1));
    let mut run = Run::default();
    loop {
        let (mut body, mut last, mut count) = (Vec::new(), None, 0u16);
        while count < config.batch.max(1) {
            match tokio::time::timeout(wait, messages.recv()).await {
                Ok(Some(message)) => {
                    let (Some(deliver), Some(content)) = (message.deliver, message.content) else { continue };
                    body.extend_from_slice(&content);
                    if !body.ends_with(b"\n") {
                        body.push(b'\n');
                    }
                    last = Some(deliver.delivery_tag());
                    count += 1;
                }
                // Nothing is acknowledged: the broker delivers it all again next time.
                Ok(None) => return Err(Error::Fetch("the broker closed the channel".into())),
                Err(_) => break,
            }
        }
        let Some(tag) = last else { break };
        let tmp = ctx.workdir.join(format!("amqp-{}-{}.part", feed.name, std::process::id()));
        tokio::fs::write(&tmp, &body).await?;
        let name = format!("{}-{}.jsonl", config.queue, farol_model::Timestamp::now().micros());
        run.ingested.extend(ingest_temporary(ctx, feed, &tmp, Some(name)).await?);
        channel.basic_ack(BasicAckArguments::new(tag, true)).await.map_err(fetch("basic.ack"))?;
        if count < config.batch.max(1) {
            break; // the queue ran dry
        }
    }
    run.unchanged = run.ingested.is_empty();
    let _ = channel.close().await;
    let _ = connection.close().await;
    Ok(run)
}
