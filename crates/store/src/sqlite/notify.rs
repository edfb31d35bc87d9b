//! What contacts have been told, the outbox and the mute rules.

use farol_model::Timestamp;
use farol_model::org::{Asset, OrgId};
use rusqlite::{Connection, params};

use crate::{
    Delivery, Inhibition, Mark, NewMessage, OutboxMessage, OutboxState, Record, Result, StoreError, stored_time,
};

pub(super) fn marks(conn: &Connection) -> Result<Vec<Mark>> {
    let mut stmt =
        conn.prepare("SELECT org_id, email, last_report, last_sent FROM notify_marks ORDER BY org_id, email")?;
    let marks = stmt
        .query_map([], |r| {
            Ok(Mark {
                org: OrgId(r.get(0)?),
                email: r.get(1)?,
                last_report: r.get(2)?,
                last_sent: r.get::<_, Option<i64>>(3)?.map(stored_time),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(marks)
}

pub(super) fn finished_through(conn: &Connection, stale_before: i64) -> Result<i64> {
    // A report still arriving or being processed holds back the ones after it; one whose
    // archiving process died (no heartbeat) does not: it will be removed.
    Ok(conn.query_row(
        "SELECT coalesce(
             (SELECT min(id) - 1 FROM reports
              WHERE status IN ('stored', 'processing') OR (status = 'receiving' AND heartbeat >= ?1)),
             (SELECT max(id) FROM reports), 0)",
        [stale_before],
        |r| r.get(0),
    )?)
}

pub(super) fn report_before(conn: &Connection, time: Timestamp) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT coalesce((SELECT max(id) FROM reports WHERE received_at < ?1), 0)",
        [time.micros()],
        |r| r.get(0),
    )?)
}

pub(super) fn set_mark(conn: &Connection, m: &Mark) -> Result<()> {
    conn.execute(
        "INSERT INTO notify_marks (org_id, email, last_report, last_sent) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (org_id, email) DO UPDATE SET last_report = excluded.last_report, last_sent = excluded.last_sent",
        params![m.org.0, m.email, m.last_report, m.last_sent.map(Timestamp::micros)],
    )?;
    Ok(())
}

pub(super) fn queue_message(
    conn: &Connection,
    record: Record<'_>,
    make: &mut dyn FnMut(i64) -> Option<NewMessage>,
) -> Result<Option<i64>> {
    let tx = conn.unchecked_transaction()?;
    let now = match record {
        Record::Mark(mark) => mark.last_sent.unwrap_or_else(Timestamp::now),
        Record::Entry(_, entry) => entry.at,
    };
    tx.execute(
        "INSERT INTO outbox (created, sender, recipients, subject, events, message, state, next_attempt)
         VALUES (?1, '', '', '', 0, x'', 'pending', ?1)",
        [now.micros()],
    )?;
    let id = tx.last_insert_rowid();
    // Dropping the transaction rolls the row back.
    let Some(m) = make(id) else { return Ok(None) };
    tx.execute(
        "UPDATE outbox SET org_id = ?7, sender = ?2, recipients = ?3, subject = ?4, events = ?5, message = ?6
         WHERE id = ?1",
        params![
            id,
            m.sender,
            m.recipients.join(","),
            m.subject,
            i64::try_from(m.events).unwrap_or(i64::MAX),
            m.message,
            m.org.0
        ],
    )?;
    match record {
        Record::Mark(mark) => set_mark(&tx, mark)?,
        Record::Entry(incident, entry) => super::incidents::add_entry_checked(&tx, incident, entry, &[])?,
    }
    tx.commit()?;
    Ok(Some(id))
}

const OUTBOX_COLUMNS: &str =
    "id, org_id, created, sender, recipients, subject, events, state, attempts, next_attempt, last_error, sent_at";

fn outbox_message(r: &rusqlite::Row<'_>, message: Vec<u8>) -> rusqlite::Result<OutboxMessage> {
    let recipients: String = r.get(4)?;
    let state: String = r.get(7)?;
    Ok(OutboxMessage {
        id: r.get(0)?,
        org: r.get::<_, Option<i64>>(1)?.map(OrgId),
        created: stored_time(r.get(2)?),
        sender: r.get(3)?,
        recipients: recipients.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        subject: r.get(5)?,
        events: r.get::<_, i64>(6)?.unsigned_abs(),
        state: OutboxState::parse(&state).unwrap_or(OutboxState::Failed),
        attempts: r.get(8)?,
        next_attempt: stored_time(r.get(9)?),
        last_error: r.get(10)?,
        sent_at: r.get::<_, Option<i64>>(11)?.map(stored_time),
        message,
    })
}

pub(super) fn outbox_due(conn: &Connection, now: Timestamp, limit: usize) -> Result<Vec<OutboxMessage>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {OUTBOX_COLUMNS}, message FROM outbox WHERE state = 'pending' AND next_attempt <= ?1 ORDER BY id LIMIT ?2"
    ))?;
    let due = stmt
        .query_map(params![now.micros(), i64::try_from(limit).unwrap_or(i64::MAX)], |r| outbox_message(r, r.get(12)?))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(due)
}

pub(super) fn outbox(conn: &Connection, org: Option<OrgId>, limit: usize) -> Result<Vec<OutboxMessage>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ?1 IS NULL OR org_id = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let list = stmt
        .query_map(params![org.map(|o| o.0), i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            outbox_message(r, Vec::new())
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(list)
}

pub(super) fn record_delivery(conn: &Connection, id: i64, delivery: &Delivery) -> Result<()> {
    let changed = match delivery {
        Delivery::Sent(at) => conn.execute(
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?2, last_error = NULL WHERE id = ?1",
            params![id, at.micros()],
        )?,
        Delivery::Retry { at, error } => conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3 WHERE id = ?1",
            params![id, at.micros(), error],
        )?,
        Delivery::Failed(error) => conn.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?,
    };
    if changed == 0 {
        return Err(StoreError::NotFound(format!("outbox message {id}")));
    }
    Ok(())
}

pub(super) fn add_inhibition(conn: &Connection, rule: &Inhibition) -> Result<Inhibition> {
    conn.execute(
        "INSERT INTO inhibitions (org_id, asset_kind, asset, classification, reason, created, created_by, expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            rule.org.map(|o| o.0),
            rule.asset.as_ref().map(Asset::kind),
            rule.asset.as_ref().map(Asset::value),
            rule.classification,
            rule.reason,
            rule.created.micros(),
            rule.created_by,
            rule.expires.map(Timestamp::micros),
        ],
    )?;
    Ok(Inhibition { id: conn.last_insert_rowid(), ..rule.clone() })
}

pub(super) fn inhibitions(conn: &Connection) -> Result<Vec<Inhibition>> {
    let mut stmt = conn.prepare(
        "SELECT id, org_id, asset_kind, asset, classification, reason, created, created_by, expires
         FROM inhibitions ORDER BY id",
    )?;
    let rules = stmt
        .query_map([], |r| {
            let asset = match (r.get::<_, Option<String>>(2)?, r.get::<_, Option<String>>(3)?) {
                (Some(kind), Some(value)) => Asset::parse_kind(&kind, &value).ok(),
                _ => None,
            };
            Ok(Inhibition {
                id: r.get(0)?,
                org: r.get::<_, Option<i64>>(1)?.map(OrgId),
                asset,
                classification: r.get(4)?,
                reason: r.get(5)?,
                created: stored_time(r.get(6)?),
                created_by: r.get(7)?,
                expires: r.get::<_, Option<i64>>(8)?.map(stored_time),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rules)
}

pub(super) fn remove_inhibition(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn.execute("DELETE FROM inhibitions WHERE id = ?1", [id])? > 0)
}
