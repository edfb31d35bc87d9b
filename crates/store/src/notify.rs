//! Notifications as the store keeps them: what each contact has been told, the outbox, and the
//! mute rules (inhibitions).

use farol_model::Timestamp;
use farol_model::org::{Asset, OrgId};

/// What one contact of an organization has been told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub org: OrgId,
    pub email: String,
    /// The events of every report up to this one have been told about (or left out).
    pub last_report: i64,
    /// When the last message to this contact was queued.
    pub last_sent: Option<Timestamp>,
}

/// A message ready to queue: complete, as it goes over SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub org: OrgId,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    /// How many events it tells about.
    pub events: u64,
    pub message: Vec<u8>,
}

/// Where a queued message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Not yet accepted by the SMTP server; tried again at `next_attempt`.
    Pending,
    /// The SMTP server accepted it.
    Sent,
    /// Given up: refused for good, or too many attempts.
    Failed,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxState> {
        [OutboxState::Pending, OutboxState::Sent, OutboxState::Failed].into_iter().find(|v| v.as_str() == s)
    }
}

/// A message of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: i64,
    pub org: Option<OrgId>,
    pub created: Timestamp,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub events: u64,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt: Timestamp,
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
    pub message: Vec<u8>,
}

/// How an attempt to deliver a message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent(Timestamp),
    /// A failure that may pass: try again then.
    Retry {
        at: Timestamp,
        error: String,
    },
    /// A failure for good.
    Failed(String),
}

/// A mute rule: the events it matches are left out of notifications, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inhibition {
    pub id: i64,
    /// Only this organization's notifications; `None`: everyone's.
    pub org: Option<OrgId>,
    /// Only events from this network, AS or domain.
    pub asset: Option<Asset>,
    /// Only events of this classification taxonomy, type or identifier.
    pub classification: Option<String>,
    pub reason: String,
    pub created: Timestamp,
    pub created_by: Option<String>,
    pub expires: Option<Timestamp>,
}
