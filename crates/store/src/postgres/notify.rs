//! What contacts have been told, the outbox and the mute rules.

use farol_model::Timestamp;
use farol_model::org::{Asset, OrgId};
use postgres::{Client, GenericClient, Row};

use super::n;
use crate::{
    Delivery, Inhibition, Mark, NewMessage, OutboxMessage, OutboxState, Record, Result, StoreError, stored_time,
};

pub(super) fn marks(c: &mut Client) -> Result<Vec<Mark>> {
    let rows = c.query("SELECT org_id, email, last_report, last_sent FROM notify_marks ORDER BY org_id, email", &[])?;
    Ok(rows
        .iter()
        .map(|r| Mark {
            org: OrgId(r.get(0)),
            email: r.get(1),
            last_report: r.get(2),
            last_sent: r.get::<_, Option<i64>>(3).map(stored_time),
        })
        .collect())
}

pub(super) fn set_mark(c: &mut impl GenericClient, m: &Mark) -> Result<()> {
    c.execute(
        "INSERT INTO notify_marks (org_id, email, last_report, last_sent) VALUES ($1, $2, $3, $4)
         ON CONFLICT (org_id, email) DO UPDATE SET last_report = excluded.last_report, last_sent = excluded.last_sent",
        &[&m.org.0, &m.email, &m.last_report, &m.last_sent.map(Timestamp::micros)],
    )?;
    Ok(())
}

pub(super) fn queue_message(
    c: &mut Client,
    record: Record<'_>,
    make: &mut dyn FnMut(i64) -> Option<NewMessage>,
) -> Result<Option<i64>> {
    let mut tx = c.transaction()?;
    let now = match record {
        Record::Mark(mark) => mark.last_sent.unwrap_or_else(Timestamp::now),
        Record::Entry(_, entry) => entry.at,
    };
    let id: i64 = tx
        .query_one(
            "INSERT INTO outbox (created, sender, recipients, subject, events, message, state, next_attempt)
             VALUES ($1, '', '', '', 0, '', 'pending', $1) RETURNING id",
            &[&now.micros()],
        )?
        .get(0);
    // Dropping the transaction rolls the row back.
    let Some(m) = make(id) else { return Ok(None) };
    tx.execute(
        "UPDATE outbox SET org_id = $7, sender = $2, recipients = $3, subject = $4, events = $5, message = $6
         WHERE id = $1",
        &[&id, &m.sender, &m.recipients.join(","), &m.subject, &n(m.events), &m.message, &m.org.0],
    )?;
    match record {
        Record::Mark(mark) => set_mark(&mut tx, mark)?,
        Record::Entry(incident, entry) => super::incidents::add_entry_checked(&mut tx, incident, entry, &[])?,
    }
    tx.commit()?;
    Ok(Some(id))
}

const OUTBOX_COLUMNS: &str =
    "id, org_id, created, sender, recipients, subject, events, state, attempts, next_attempt, last_error, sent_at";

fn outbox_message(r: &Row, message: Vec<u8>) -> OutboxMessage {
    let recipients: String = r.get(4);
    let state: String = r.get(7);
    OutboxMessage {
        id: r.get(0),
        org: r.get::<_, Option<i64>>(1).map(OrgId),
        created: stored_time(r.get(2)),
        sender: r.get(3),
        recipients: recipients.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        subject: r.get(5),
        events: r.get::<_, i64>(6).unsigned_abs(),
        state: OutboxState::parse(&state).unwrap_or(OutboxState::Failed),
        attempts: u32::try_from(r.get::<_, i64>(8)).unwrap_or(u32::MAX),
        next_attempt: stored_time(r.get(9)),
        last_error: r.get(10),
        sent_at: r.get::<_, Option<i64>>(11).map(stored_time),
        message,
    }
}

pub(super) fn outbox_due(c: &mut Client, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS}, message FROM outbox WHERE state = 'pending' AND next_attempt <= $1 ORDER BY id LIMIT $2"
    );
    Ok(c.query(&sql, &[&now.micros(), &n(limit as u64)])?.iter().map(|r| outbox_message(r, r.get(12))).collect())
}

pub(super) fn outbox(c: &mut Client, org: Option<OrgId>, limit: usize) -> Result<Vec<OutboxMessage>> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE $1::bigint IS NULL OR org_id = $1 ORDER BY id DESC LIMIT $2"
    );
    let rows = c.query(&sql, &[&org.map(|o| o.0), &n(limit as u64)])?;
    Ok(rows.iter().map(|r| outbox_message(r, Vec::new())).collect())
}

pub(super) fn record_delivery(c: &mut Client, id: i64, delivery: &Delivery) -> Result<()> {
    let changed = match delivery {
        Delivery::Sent(at) => c.execute(
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = $2, last_error = NULL WHERE id = $1",
            &[&id, &at.micros()],
        )?,
        Delivery::Retry { at, error } => c.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt = $2, last_error = $3 WHERE id = $1",
            &[&id, &at.micros(), error],
        )?,
        Delivery::Failed(error) => c.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $2 WHERE id = $1",
            &[&id, error],
        )?,
    };
    if changed == 0 {
        return Err(StoreError::NotFound(format!("outbox message {id}")));
    }
    Ok(())
}

pub(super) fn add_inhibition(c: &mut Client, rule: &Inhibition) -> Result<Inhibition> {
    let row = c.query_one(
        "INSERT INTO inhibitions (org_id, asset_kind, asset, classification, reason, created, created_by, expires)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[
            &rule.org.map(|o| o.0),
            &rule.asset.as_ref().map(Asset::kind),
            &rule.asset.as_ref().map(Asset::value),
            &rule.classification,
            &rule.reason,
            &rule.created.micros(),
            &rule.created_by,
            &rule.expires.map(Timestamp::micros),
        ],
    )?;
    Ok(Inhibition { id: row.get(0), ..rule.clone() })
}

pub(super) fn inhibitions(c: &mut Client) -> Result<Vec<Inhibition>> {
    let rows = c.query(
        "SELECT id, org_id, asset_kind, asset, classification, reason, created, created_by, expires
         FROM inhibitions ORDER BY id",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let asset = match (r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3)) {
                (Some(kind), Some(value)) => Asset::parse_kind(&kind, &value).ok(),
                _ => None,
            };
            Inhibition {
                id: r.get(0),
                org: r.get::<_, Option<i64>>(1).map(OrgId),
                asset,
                classification: r.get(4),
                reason: r.get(5),
                created: stored_time(r.get(6)),
                created_by: r.get(7),
                expires: r.get::<_, Option<i64>>(8).map(stored_time),
            }
        })
        .collect())
}
