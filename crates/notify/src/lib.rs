//! Notifications to network owners: for each contact of each organization, a digest of the
//! events in its networks that arrived since the last one, written from templates in the
//! contact's language, with the events attached as CSV or JSON; queued in the store's outbox
//! and delivered over SMTP.
//!
//! What a digest holds goes through the access policy ([`farol_policy::notification`]): it is
//! what the organization's own users may see of their networks, never more.
//!
//! A contact's mark says up to which report it has been told. Reports are told about whole and
//! in id order, once every earlier report is finished, so that processing a report again (which
//! gives its events new ids) never tells them twice. Queueing a message and moving the mark are
//! one transaction; sending and recording that it was sent are two steps, so that a crash
//! between them sends that one message again and nothing else.
//!
//! The center's other e-mail goes through here too: messages about an incident to the
//! organizations it concerns ([`write_about`]), and the e-mail that comes back ([`intake`]).

mod deliver;
pub mod intake;
mod message;
mod sign;

use std::collections::HashMap;

use farol_model::org::{Asset, Contact, Interval, OrgId};
use farol_model::{Event, Timestamp};
use farol_store::{Inhibition, Mark, Store, StoreError, StoredEvent};

pub use deliver::{DeliveryReport, Mailer, MailerError, deliver};
pub use message::{IncidentMessage, Rendered, TemplateError, Templates, Writer, incident_ticket, shipped_templates};
pub use sign::Signer;

/// How notifications are written and when they go out (`[notify]` in `farol.toml`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The national center's name, as messages are signed.
    pub center: String,
    /// The sender: `CERT.PT <cert@cert.pt>`.
    pub from: String,
    pub reply_to: Option<String>,
    /// The hour (UTC) at which daily and weekly digests fall due; weekly ones on Mondays.
    pub daily_hour: u32,
    /// At most this many events in one message's attachment; the message says when there were
    /// more (the portal lists them all).
    pub max_events: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            center: "CERT".into(),
            from: "cert@localhost".into(),
            reply_to: None,
            daily_hour: 6,
            max_events: 50_000,
        }
    }
}

impl Settings {
    /// What is wrong with these settings, one line each, named by key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, address) in [("from", Some(&self.from)), ("reply_to", self.reply_to.as_ref())] {
            if let Some(Err(e)) = address.map(|a| message::mailbox(a)) {
                problems.push(format!("{key}: {e} (for example \"CERT.PT <cert@cert.pt>\")"));
            }
        }
        if self.daily_hour > 23 {
            problems.push(format!("daily_hour: expected an hour from 0 to 23 (UTC), found {}", self.daily_hour));
        }
        if self.max_events == 0 {
            problems.push("max_events: expected at least 1".to_owned());
        }
        problems
    }
}

/// The new events for one contact of one organization.
#[derive(Debug, Clone)]
pub struct Digest {
    pub org: OrgId,
    pub org_name: String,
    pub contact: Contact,
    /// The reports it covers: after the first, up to the second.
    pub reports: (i64, i64),
    /// When the contact was last sent a message.
    pub last_sent: Option<Timestamp>,
    /// The events to tell about (without the muted ones), in arrival order.
    pub events: Vec<StoredEvent>,
    /// More events were new than `max_events`: only the first are here.
    pub truncated: bool,
    /// Events left out by mute rules.
    pub muted: usize,
}

impl Digest {
    /// The mark to record once this digest is queued (or found empty).
    pub fn mark(&self, now: Timestamp) -> Mark {
        Mark {
            org: self.org,
            email: self.contact.email.clone(),
            last_report: self.reports.1,
            last_sent: if self.events.is_empty() { self.last_sent } else { Some(now) },
        }
    }
}

/// Whether a contact with this interval, last sent a message at `last_sent`, is due at `now`:
/// once per calendar period (hour; day and ISO week starting at `daily_hour` UTC), at the first
/// run after the period starts.
pub fn due(interval: Interval, last_sent: Option<Timestamp>, now: Timestamp, daily_hour: u32) -> bool {
    let Some(start) = period_start(interval, now, daily_hour) else { return false };
    last_sent.is_none_or(|t| t < start)
}

/// The start of the period `now` lies in; `None` for contacts never notified.
fn period_start(interval: Interval, now: Timestamp, daily_hour: u32) -> Option<Timestamp> {
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;
    let secs = now.micros().div_euclid(1_000_000);
    let offset = i64::from(daily_hour.min(23)) * HOUR;
    let start = match interval {
        Interval::Immediately => return Some(now),
        Interval::Never => return None,
        Interval::Hourly => secs - secs.rem_euclid(HOUR),
        Interval::Daily => (secs - offset).div_euclid(DAY) * DAY + offset,
        // Day 0 (1970-01-01) was a Thursday: day 4 was a Monday.
        Interval::Weekly => ((secs - offset).div_euclid(DAY) - 4).div_euclid(7) * 7 * DAY + 4 * DAY + offset,
    };
    Timestamp::from_secs(start)
}

/// How far back the first digest of a new contact reaches.
fn first_reach(interval: Interval) -> i64 {
    match interval {
        Interval::Weekly => 7 * 86_400,
        Interval::Daily => 86_400,
        _ => 3600,
    }
}

/// Which digests to build.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    /// Every contact with something new, whatever its interval (contacts set to `never` aside).
    pub now: bool,
    /// Only this organization.
    pub org: Option<OrgId>,
}

/// The digests due at `now`: one per contact that is due and has reports to be told about
/// (events or none: an empty digest only moves the mark).
pub fn digests(
    store: &dyn Store,
    settings: &Settings,
    now: Timestamp,
    select: Selection,
) -> Result<Vec<Digest>, StoreError> {
    let horizon = store.finished_through()?;
    let marks: HashMap<(OrgId, String), Mark> =
        store.notify_marks()?.into_iter().map(|m| ((m.org, m.email.clone()), m)).collect();
    let rules: Vec<Inhibition> =
        store.inhibitions()?.into_iter().filter(|r| r.expires.is_none_or(|t| t > now)).collect();
    let mut digests = Vec::new();
    for org in store.orgs()? {
        if select.org.is_some_and(|o| o != org.id) {
            continue;
        }
        // The events last read for this organization, with the report they were read after.
        let mut read: Option<(i64, Vec<StoredEvent>)> = None;
        for contact in &org.contacts {
            let mark = marks.get(&(org.id, contact.email.clone()));
            let last_sent = mark.and_then(|m| m.last_sent);
            let wanted = if select.now {
                contact.interval != Interval::Never
            } else {
                due(contact.interval, last_sent, now, settings.daily_hour)
            };
            if !wanted {
                continue;
            }
            let from = match mark {
                Some(m) => m.last_report,
                None => store.report_before(now.add_secs(-first_reach(contact.interval)).unwrap_or(now))?,
            };
            if horizon <= from {
                continue;
            }
            // An organization's contacts usually share a mark: its events are read once.
            if read.as_ref().is_none_or(|(f, _)| *f != from) {
                let visible = farol_policy::notification(org.id);
                read = Some((from, store.new_events(org.id, &visible, (from, horizon), 0, settings.max_events + 1)?));
            }
            let mut events = read.as_ref().map(|(_, e)| e.clone()).unwrap_or_default();
            let truncated = events.len() > settings.max_events;
            events.truncate(settings.max_events);
            let before = events.len();
            events.retain(|e| !rules.iter().any(|r| mutes(r, org.id, &e.event)));
            digests.push(Digest {
                org: org.id,
                org_name: org.name.clone(),
                contact: contact.clone(),
                reports: (from, horizon),
                last_sent,
                muted: before - events.len(),
                events,
                truncated,
            });
        }
    }
    Ok(digests)
}

/// Whether a mute rule leaves this event out of this organization's notifications.
pub fn mutes(rule: &Inhibition, org: OrgId, e: &Event) -> bool {
    let org_matches = rule.org.is_none_or(|o| o == org);
    let asset_matches = match &rule.asset {
        None => true,
        Some(Asset::Prefix(net)) => e.source_ip.is_some_and(|ip| net.contains(&ip)),
        Some(Asset::Asn(asn)) => e.source_asn == Some(*asn),
        Some(Asset::Domain(domain)) => {
            let host = e.source_url.as_deref().and_then(farol_enrich::constituency::url_host);
            e.source_fqdn.as_deref().into_iter().chain(host).any(|name| {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == *domain || name.strip_suffix(domain.as_str()).is_some_and(|rest| rest.ends_with('.'))
            })
        }
    };
    let class_matches = rule.classification.as_deref().is_none_or(|c| {
        e.classification_type.is_some_and(|t| t.as_str() == c || t.taxonomy().as_str() == c)
            || e.classification_identifier.as_deref() == Some(c)
    });
    org_matches && asset_matches && class_matches
}

/// What one run of [`queue`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queued {
    /// Outbox ids of the messages queued.
    pub messages: Vec<i64>,
    pub events: u64,
    pub muted: u64,
}

/// Writes each digest that has events as a message into the outbox, and moves every digest's
/// mark: each in one transaction, so that a digest is queued once or not at all.
pub fn queue(
    store: &dyn Store,
    writer: &Writer,
    settings: &Settings,
    digests: &[Digest],
    now: Timestamp,
) -> Result<Queued, QueueError> {
    let mut queued = Queued::default();
    for digest in digests {
        let mark = digest.mark(now);
        queued.muted += digest.muted as u64;
        if digest.events.is_empty() {
            store.set_mark(&mark)?;
            continue;
        }
        let mut failed = None;
        let made = store.queue_message(farol_store::Record::Mark(&mark), &mut |id| {
            message::build(writer, settings, digest, &ticket(id, now)).map_err(|e| failed = Some(e)).ok()
        })?;
        let Some(id) = made else { return Err(failed.map_or(QueueError::Unbuilt, QueueError::Template)) };
        queued.messages.push(id);
        queued.events += digest.events.len() as u64;
    }
    Ok(queued)
}

/// What [`write_about`] did for one organization of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub org: String,
    /// The contacts written to; none when the organization has no contact that takes e-mail.
    pub recipients: Vec<String>,
}

/// Queues a message about an incident to each organization it concerns (to its contacts that
/// take e-mail, one message per organization so that none sees another's addresses), each
/// recorded in the incident's timeline as sent by `user` in the same transaction. Nothing is
/// queued, and [`QueueError::Nobody`] says why, when no organization has such a contact.
pub fn write_about(
    store: &dyn Store,
    writer: &Writer,
    settings: &Settings,
    incident: &farol_model::incident::Incident,
    text: &str,
    user: Option<i64>,
    now: Timestamp,
) -> Result<Vec<Written>, QueueError> {
    use farol_model::incident::{Entry, EntryKind};
    let orgs = store.orgs()?;
    let to: Vec<(&farol_model::org::Org, Vec<Contact>)> = orgs
        .iter()
        .filter(|o| incident.orgs.contains(&o.id))
        .map(|o| (o, o.contacts.iter().filter(|c| c.interval != Interval::Never).cloned().collect()))
        .collect();
    if to.iter().all(|(_, contacts)| contacts.is_empty()) {
        return Err(QueueError::Nobody(format!(
            "no organization of incident {} has a contact that takes e-mail: add the organization, or a contact to it",
            incident.id
        )));
    }
    let mut written = Vec::new();
    for (org, contacts) in to {
        let recipients: Vec<String> = contacts.iter().map(|c| c.email.clone()).collect();
        if !contacts.is_empty() {
            let m = message::IncidentMessage { incident, org: org.id, org_name: &org.name, contacts: &contacts, text };
            let entry = Entry::new(
                EntryKind::Notification,
                user,
                format!("to {} ({}):\n{}", org.name, recipients.join(", "), text.trim()),
                now,
            );
            let mut failed = None;
            let made = store.queue_message(farol_store::Record::Entry(incident.id, &entry), &mut |id| {
                writer.incident_message(settings, &m, id).map_err(|e| failed = Some(e)).ok()
            })?;
            if made.is_none() {
                return Err(failed.map_or(QueueError::Unbuilt, QueueError::Template));
            }
        }
        written.push(Written { org: org.name.clone(), recipients });
    }
    Ok(written)
}

/// What one round of [`run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub queued: Queued,
    pub delivered: DeliveryReport,
}

/// One round: queues the digests due at `now` (all pending ones with `select.now`), then sends
/// what the outbox holds that is due. Rounds must not overlap: hold a [`Lock`].
pub fn run(
    store: &dyn Store,
    writer: &Writer,
    settings: &Settings,
    mailer: &Mailer,
    select: Selection,
    now: Timestamp,
) -> Result<Round, QueueError> {
    let due = digests(store, settings, now, select)?;
    let queued = queue(store, writer, settings, &due, now)?;
    let delivered = deliver(store, mailer, now)?;
    Ok(Round { queued, delivered })
}

/// The ticket number of an outbox message: the day it was queued and its id.
pub fn ticket(id: i64, now: Timestamp) -> String {
    let day = now.to_string();
    format!("{}-{id:06}", day.get(..10).unwrap_or_default().replace('-', ""))
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("the message was not built")]
    Unbuilt,
    /// Nobody to write to: what to do about it.
    #[error("{0}")]
    Nobody(String),
}

#[cfg(test)]
mod tests;
