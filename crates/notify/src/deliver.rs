//! Delivery: the outbox's due messages to the SMTP server, one transaction each, with retries
//! and their backoff.

use std::time::Duration;

use farol_model::Timestamp;
use farol_store::{Delivery, OutboxMessage, Store, StoreError};
use lettre::address::Envelope;
use lettre::{Address, SmtpTransport, Transport};

/// Waits before the next attempt, by the number of attempts made.
const BACKOFF: &[i64] = &[60, 5 * 60, 15 * 60, 3600, 4 * 3600, 12 * 3600];
/// A message not accepted after this many attempts is given up.
const MAX_ATTEMPTS: u32 = 8;

/// The SMTP server messages go to.
#[derive(Clone)]
pub struct Mailer {
    transport: SmtpTransport,
    /// The server's address without credentials, for messages.
    server: String,
}

impl std::fmt::Debug for Mailer {
    /// Without the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("server", &self.server).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailerError(String);

impl Mailer {
    /// A mailer for an SMTP URL: `smtp://host:port` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://user:password@host:465` (TLS). The server's certificate is checked
    /// against the Web PKI's roots, and `ca` (PEM) when given: a relay's private CA.
    pub fn from_url(url: &str, ca: Option<&[u8]>) -> Result<Mailer, MailerError> {
        // Host and port only: what comes before `@` holds the credentials.
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let server = rest
            .rsplit_once('@')
            .map_or(rest, |(_, host)| host)
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let scheme = url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("smtp" | "smtps")) {
            return Err(MailerError(format!(
                "the SMTP URL must start with smtp:// or smtps:// (for example smtp://127.0.0.1:25 or \
                 smtps://user:password@mail.example:465), not {:?}",
                url.split_once("://").map_or("", |(s, _)| s)
            )));
        }
        let mut builder = SmtpTransport::from_url(url)
            .map_err(|e| MailerError(format!("invalid SMTP URL for {server}: {e}")))?
            .timeout(Some(Duration::from_secs(30)));
        if let Some(ca) = ca {
            use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
            let host = server.rsplit_once(':').map_or(server.as_str(), |(h, _)| h).trim_matches(['[', ']']);
            let bad = |e: lettre::transport::smtp::Error| MailerError(format!("the SMTP CA certificate: {e}"));
            let parameters = TlsParameters::builder(host.to_owned())
                .add_root_certificate(Certificate::from_pem(ca).map_err(bad)?)
                .build_rustls()
                .map_err(bad)?;
            let tls = if scheme == Some("smtps") {
                Tls::Wrapper(parameters)
            } else if url.contains("tls=required") {
                Tls::Required(parameters)
            } else if url.contains("tls=opportunistic") {
                Tls::Opportunistic(parameters)
            } else {
                return Err(MailerError(
                    "an SMTP CA certificate needs TLS: smtps://, or smtp://...?tls=required".to_owned(),
                ));
            };
            builder = builder.tls(tls);
        }
        Ok(Mailer { transport: builder.build(), server })
    }

    /// Sends a message; an error says whether it is for good.
    fn send(&self, m: &OutboxMessage) -> Result<(), (String, bool)> {
        let sender: Option<Address> = m.sender.parse().ok();
        let recipients: Vec<Address> = m.recipients.iter().filter_map(|r| r.parse().ok()).collect();
        let envelope = Envelope::new(sender, recipients).map_err(|e| (format!("no valid recipient: {e}"), true))?;
        self.transport.send_raw(&envelope, &m.message).map(|_| ()).map_err(|e| (e.to_string(), e.is_permanent()))
    }
}

/// What one run of [`deliver`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: u64,
    /// Not accepted this time; tried again later.
    pub retrying: u64,
    /// Given up.
    pub failed: u64,
    /// The outbox id and the error of every message not sent.
    pub errors: Vec<(i64, String)>,
}

/// Sends every message due at `now`. Each is marked sent only after the SMTP server accepted
/// it: a crash in between sends that message again (once), never loses one.
pub fn deliver(store: &dyn Store, mailer: &Mailer, now: Timestamp) -> Result<DeliveryReport, StoreError> {
    let mut report = DeliveryReport::default();
    loop {
        let due = store.outbox_due(now, 64)?;
        if due.is_empty() {
            return Ok(report);
        }
        for m in due {
            let outcome = match mailer.send(&m) {
                Ok(()) => {
                    report.sent += 1;
                    tracing::info!(outbox = m.id, org = ?m.org, server = %mailer.server, "notification sent");
                    Delivery::Sent(Timestamp::now())
                }
                Err((error, permanent)) => {
                    let attempts = m.attempts + 1;
                    tracing::info!(outbox = m.id, org = ?m.org, server = %mailer.server, attempts, %error, "notification not sent");
                    report.errors.push((m.id, error.clone()));
                    let outcome = after_failure(attempts, permanent, error, now);
                    match outcome {
                        Delivery::Retry { .. } => report.retrying += 1,
                        _ => report.failed += 1,
                    }
                    outcome
                }
            };
            store.record_delivery(m.id, &outcome)?;
        }
    }
}

/// What follows a failed attempt (the `attempts`th): given up when the refusal is for good or
/// the attempts are spent, else tried again after the backoff.
fn after_failure(attempts: u32, permanent: bool, error: String, now: Timestamp) -> Delivery {
    if permanent || attempts >= MAX_ATTEMPTS {
        return Delivery::Failed(error);
    }
    let wait = BACKOFF[(attempts.max(1) as usize - 1).min(BACKOFF.len() - 1)];
    Delivery::Retry { at: now.add_secs(wait).unwrap_or(now), error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_retried_with_backoff_then_given_up() {
        let now = Timestamp::now();
        let waits: Vec<Option<i64>> = (1..=MAX_ATTEMPTS)
            .map(|n| match after_failure(n, false, "421 busy".into(), now) {
                Delivery::Retry { at, .. } => Some((at.micros() - now.micros()) / 1_000_000),
                _ => None,
            })
            .collect();
        let (m, h) = (60, 3600);
        assert_eq!(waits, [Some(m), Some(5 * m), Some(15 * m), Some(h), Some(4 * h), Some(12 * h), Some(12 * h), None]);
        assert_eq!(after_failure(1, true, "550 no such user".into(), now), Delivery::Failed("550 no such user".into()));
    }
}
