//! Incidents with their organizations, events and timelines.

use farol_model::incident::{Entry, EntryKind, Incident, Severity, Status};
use farol_model::org::OrgId;
use farol_model::{ClassificationType, Timestamp, Tlp};
use rusqlite::{Connection, OptionalExtension, params};

use super::accounts::stored_time;
use crate::{IncidentFilter, Result, StoreError};

const COLUMNS: &str = "id, title, class, severity, tlp, status, assignee, created, first_response, closed, merged_into";

fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::new(StoreError::Corrupt(format!("unknown {what} {value:?} in an incident"))),
    )
}

/// An incident's fields; its organizations and events come from [`with_links`].
fn incident_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let (class, severity, status): (String, String, String) = (r.get(2)?, r.get(3)?, r.get(5)?);
    let tlp: u8 = r.get(4)?;
    Ok(Incident {
        id: r.get(0)?,
        title: r.get(1)?,
        class: ClassificationType::parse(&class).map(|c| c.value()).ok_or_else(|| corrupt("class", &class))?,
        severity: severity.parse::<Severity>().map_err(|_| corrupt("severity", &severity))?,
        tlp: Tlp::ALL.get(usize::from(tlp)).copied().ok_or_else(|| corrupt("tlp", &tlp.to_string()))?,
        status: status.parse::<Status>().map_err(|_| corrupt("status", &status))?,
        assignee: r.get(6)?,
        orgs: Vec::new(),
        events: Vec::new(),
        created: stored_time(r.get(7)?),
        first_response: r.get::<_, Option<i64>>(8)?.map(stored_time),
        closed: r.get::<_, Option<i64>>(9)?.map(stored_time),
        merged_into: r.get(10)?,
    })
}

/// Reads the organizations and events of incidents: one pass over each link table for the
/// whole list (its range of ids), not two queries per incident.
fn with_links(conn: &Connection, mut list: Vec<Incident>) -> Result<Vec<Incident>> {
    let (Some(lo), Some(hi)) = (list.iter().map(|i| i.id).min(), list.iter().map(|i| i.id).max()) else {
        return Ok(list);
    };
    let at: std::collections::HashMap<i64, usize> = list.iter().enumerate().map(|(n, i)| (i.id, n)).collect();
    let mut orgs = conn.prepare_cached(
        "SELECT incident_id, org_id FROM incident_orgs WHERE incident_id BETWEEN ?1 AND ?2 ORDER BY incident_id, org_id",
    )?;
    let mut rows = orgs.query([lo, hi])?;
    while let Some(r) = rows.next()? {
        if let Some(&n) = at.get(&r.get::<_, i64>(0)?) {
            list[n].orgs.push(OrgId(r.get(1)?));
        }
    }
    let mut events = conn.prepare_cached(
        "SELECT incident_id, event_id FROM incident_events WHERE incident_id BETWEEN ?1 AND ?2
         ORDER BY incident_id, event_id",
    )?;
    let mut rows = events.query([lo, hi])?;
    while let Some(r) = rows.next()? {
        if let Some(&n) = at.get(&r.get::<_, i64>(0)?) {
            list[n].events.push(r.get(1)?);
        }
    }
    Ok(list)
}

/// Writes an incident's organizations and events (replacing what was there).
fn write_links(tx: &Connection, i: &Incident) -> Result<()> {
    tx.execute("DELETE FROM incident_orgs WHERE incident_id = ?1", [i.id])?;
    let mut org = tx.prepare_cached("INSERT OR IGNORE INTO incident_orgs (incident_id, org_id) VALUES (?1, ?2)")?;
    for o in &i.orgs {
        org.execute([i.id, o.0])?;
    }
    tx.execute("DELETE FROM incident_events WHERE incident_id = ?1", [i.id])?;
    let mut event = tx.prepare_cached(
        "INSERT OR IGNORE INTO incident_events (incident_id, event_id, hash, report_id)
         SELECT ?1, id, hash, report_id FROM events WHERE id = ?2",
    )?;
    for e in &i.events {
        if event.execute([i.id, *e])? == 0 {
            return Err(StoreError::NotFound(format!("no event {e}")));
        }
    }
    Ok(())
}

fn add_entry_in(tx: &Connection, incident: i64, e: &Entry) -> Result<()> {
    tx.execute(
        "INSERT INTO incident_timeline (incident_id, at, user_id, kind, text) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![incident, e.at.micros(), e.user, e.kind.as_str(), e.text],
    )?;
    Ok(())
}

fn write_fields(tx: &Connection, i: &Incident) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE incidents SET title = ?2, class = ?3, severity = ?4, tlp = ?5, status = ?6, assignee = ?7,
             first_response = ?8, closed = ?9, merged_into = ?10 WHERE id = ?1",
        params![
            i.id,
            i.title,
            i.class.as_str(),
            i.severity.as_str(),
            i.tlp.code(),
            i.status.as_str(),
            i.assignee,
            i.first_response.map(Timestamp::micros),
            i.closed.map(Timestamp::micros),
            i.merged_into,
        ],
    )?)
}

pub(super) fn add_incident(conn: &Connection, i: &Incident, entry: &Entry) -> Result<Incident> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO incidents (title, class, severity, tlp, status, created) VALUES ('', '', '', 0, '', ?1)",
        [i.created.micros()],
    )?;
    let stored = Incident { id: tx.last_insert_rowid(), ..i.clone() };
    write_fields(&tx, &stored)?;
    write_links(&tx, &stored)?;
    add_entry_in(&tx, stored.id, entry)?;
    tx.commit()?;
    Ok(stored)
}

pub(super) fn incident(conn: &Connection, id: i64) -> Result<Option<Incident>> {
    let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1");
    let found = conn.query_row(&sql, [id], incident_from).optional()?;
    Ok(with_links(conn, found.into_iter().collect())?.pop())
}

pub(super) fn incidents(conn: &Connection, f: &IncidentFilter) -> Result<Vec<Incident>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM incidents
         WHERE (?1 IS NULL OR id IN (SELECT incident_id FROM incident_orgs WHERE org_id = ?1))
           AND (?2 IS NULL OR status = ?2)
           AND (?3 = 0 OR status IN ('new', 'open', 'stalled'))
         ORDER BY id DESC LIMIT ?4"
    );
    let mut stmt = conn.prepare(&sql)?;
    let list = stmt
        .query_map(
            params![
                f.org.map(|o| o.0),
                f.status.map(Status::as_str),
                f.open,
                i64::try_from(f.limit).unwrap_or(i64::MAX)
            ],
            incident_from,
        )?
        .collect::<rusqlite::Result<_>>()?;
    with_links(conn, list)
}

pub(super) fn update_incident(conn: &Connection, i: &Incident, entry: &Entry) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    if write_fields(&tx, i)? == 0 {
        return Err(StoreError::NotFound(format!("no incident {}", i.id)));
    }
    write_links(&tx, i)?;
    add_entry_in(&tx, i.id, entry)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn add_entry(conn: &Connection, incident: i64, e: &Entry) -> Result<()> {
    let exists = conn.query_row("SELECT 1 FROM incidents WHERE id = ?1", [incident], |_| Ok(())).optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!("no incident {incident}")));
    }
    add_entry_in(conn, incident, e)
}

pub(super) fn timeline(conn: &Connection, incident: i64) -> Result<Vec<Entry>> {
    let mut stmt =
        conn.prepare("SELECT at, user_id, kind, text FROM incident_timeline WHERE incident_id = ?1 ORDER BY id")?;
    let entries = stmt
        .query_map([incident], |r| {
            let kind: String = r.get(2)?;
            Ok(Entry {
                at: stored_time(r.get(0)?),
                user: r.get(1)?,
                kind: kind.parse::<EntryKind>().map_err(|_| corrupt("timeline entry", &kind))?,
                text: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(entries)
}

/// After a report is processed again, its events' links follow them to their new ids.
pub(super) fn relink(tx: &Connection, report: i64) -> Result<()> {
    tx.execute(
        "UPDATE OR IGNORE incident_events SET event_id = coalesce(
             (SELECT e.id FROM events e, reports r
              WHERE r.id = ?1 AND e.id BETWEEN r.first_event AND r.last_event AND e.hash = incident_events.hash),
             event_id)
         WHERE report_id = ?1",
        [report],
    )?;
    Ok(())
}
