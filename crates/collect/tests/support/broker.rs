//! What the tests against the machine's RabbitMQ share (FAROL_TEST_AMQP_URL, set by `.ci/run`):
//! its address, a channel to it, and a relay that drops the connection midway. Included by the
//! tests of the AMQP collector and of the live streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use amqprs::channel::Channel;
use amqprs::connection::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The broker's URL, or None when the test is to be skipped.
pub(crate) fn broker() -> Option<String> {
    match std::env::var("FAROL_TEST_AMQP_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("FAROL_REQUIRE_AMQP").is_some() => {
            panic!("FAROL_REQUIRE_AMQP is set but FAROL_TEST_AMQP_URL is not: amqp://guest:guest@127.0.0.1:5672/%2f")
        }
        Err(_) => {
            eprintln!("skipped: set FAROL_TEST_AMQP_URL to a RabbitMQ (amqp://guest:guest@127.0.0.1:5672/%2f)");
            None
        }
    }
}

/// The broker's `host:port`.
pub(crate) fn address(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port().unwrap_or(5672))
}

pub(crate) async fn channel(url: &str) -> (Connection, Channel) {
    let connection = Connection::open(&farol_collect::connection_arguments(url).unwrap()).await.unwrap();
    let channel = connection.open_channel(None).await.unwrap();
    (connection, channel)
}

/// A TCP relay to the broker at `address` that drops both connections once `limit` bytes went
/// through it, either way; its own `host:port`, and the bytes that went through.
pub(crate) async fn relay(address: String, limit: u64) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let moved = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&moved);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = TcpStream::connect(address).await.unwrap();
        let (client_read, client_write) = client.into_split();
        let (up_read, up_write) = upstream.into_split();
        // Whichever way reaches the limit, both connections drop there, in the middle of a stream.
        tokio::select! {
            () = pipe(client_read, up_write, &counted, limit) => {}
            () = pipe(up_read, client_write, &counted, limit) => {}
        }
    });
    (format!("127.0.0.1:{port}"), moved)
}

async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, counted: &AtomicU64, limit: u64) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if counted.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > limit {
            return;
        }
    }
}
