//! Incidents with their organizations, events and timelines.

use farol_model::incident::{Entry, EntryKind, FileInfo, Incident, NewFile, Severity, Status, Task};
use farol_model::org::OrgId;
use farol_model::{ClassificationType, Timestamp, Tlp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{IncidentFilter, Mail, Result, Search, StoreError, StoredFile, stored_time};

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
        tasks: Vec::new(),
    })
}

/// Reads the organizations, events and tasks of incidents: one pass over each link table for
/// the whole list (its range of ids), not three queries per incident.
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
    let mut tasks = conn.prepare_cached(
        "SELECT incident_id, text, done_at, done_by FROM incident_tasks WHERE incident_id BETWEEN ?1 AND ?2
         ORDER BY incident_id, n",
    )?;
    let mut rows = tasks.query([lo, hi])?;
    while let Some(r) = rows.next()? {
        if let Some(&n) = at.get(&r.get::<_, i64>(0)?) {
            let done = r.get::<_, Option<i64>>(2)?.map(stored_time);
            list[n].tasks.push(Task { text: r.get(1)?, done: done.map(|t| (t, r.get(3).ok().flatten())) });
        }
    }
    Ok(list)
}

/// Writes an incident's organizations, events and tasks (replacing what was there).
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
    tx.execute("DELETE FROM incident_tasks WHERE incident_id = ?1", [i.id])?;
    let mut task = tx.prepare_cached(
        "INSERT INTO incident_tasks (incident_id, n, text, done_at, done_by) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (n, t) in i.tasks.iter().enumerate() {
        task.execute(params![i.id, n, t.text, t.done.map(|d| d.0.micros()), t.done.and_then(|d| d.1)])?;
    }
    Ok(())
}

fn add_entry_in(tx: &Connection, incident: i64, e: &Entry, files: &[NewFile]) -> Result<()> {
    tx.execute(
        "INSERT INTO incident_timeline (incident_id, at, user_id, kind, text) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![incident, e.at.micros(), e.user, e.kind.as_str(), e.text],
    )?;
    let entry = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO incident_files (entry_id, name, content_type, size, sha256, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for f in files {
        let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&f.data));
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        insert.execute(params![entry, f.name, f.content_type, f.data.len(), hex, f.data])?;
    }
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

pub(super) fn add_incident(conn: &Connection, i: &Incident, entry: &Entry, files: &[NewFile]) -> Result<Incident> {
    let tx = conn.unchecked_transaction()?;
    let stored = add_incident_in(&tx, i, entry, files)?;
    tx.commit()?;
    Ok(stored)
}

fn add_incident_in(tx: &Connection, i: &Incident, entry: &Entry, files: &[NewFile]) -> Result<Incident> {
    tx.execute(
        "INSERT INTO incidents (title, class, severity, tlp, status, created) VALUES ('', '', '', 0, '', ?1)",
        [i.created.micros()],
    )?;
    let stored = Incident { id: tx.last_insert_rowid(), ..i.clone() };
    write_fields(tx, &stored)?;
    write_links(tx, &stored)?;
    add_entry_in(tx, stored.id, entry, files)?;
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
    add_entry_in(&tx, i.id, entry, &[])?;
    tx.commit()?;
    Ok(())
}

pub(super) fn add_entry(conn: &Connection, incident: i64, e: &Entry, files: &[NewFile]) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    add_entry_checked(&tx, incident, e, files)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn add_entry_checked(tx: &Connection, incident: i64, e: &Entry, files: &[NewFile]) -> Result<()> {
    let exists = tx.query_row("SELECT 1 FROM incidents WHERE id = ?1", [incident], |_| Ok(())).optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!("no incident {incident}")));
    }
    add_entry_in(tx, incident, e, files)
}

fn entry_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let kind: String = r.get(2)?;
    Ok(Entry {
        at: stored_time(r.get(0)?),
        user: r.get(1)?,
        kind: kind.parse::<EntryKind>().map_err(|_| corrupt("timeline entry", &kind))?,
        text: r.get(3)?,
        files: Vec::new(),
    })
}

pub(super) fn timeline(conn: &Connection, incident: i64) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, user_id, kind, text, id FROM incident_timeline WHERE incident_id = ?1 ORDER BY id",
    )?;
    let mut entries = Vec::new();
    let mut ids = std::collections::HashMap::new();
    let mut rows = stmt.query([incident])?;
    while let Some(r) = rows.next()? {
        ids.insert(r.get::<_, i64>(4)?, entries.len());
        entries.push(entry_from(r)?);
    }
    let mut files = conn.prepare_cached(
        "SELECT f.entry_id, f.id, f.name, f.content_type, f.size, f.sha256 FROM incident_files f
         JOIN incident_timeline t ON t.id = f.entry_id WHERE t.incident_id = ?1 ORDER BY f.id",
    )?;
    let mut rows = files.query([incident])?;
    while let Some(r) = rows.next()? {
        if let Some(&n) = ids.get(&r.get::<_, i64>(0)?) {
            entries[n].files.push(FileInfo {
                id: r.get(1)?,
                name: r.get(2)?,
                content_type: r.get(3)?,
                size: r.get(4)?,
                sha256: r.get(5)?,
            });
        }
    }
    Ok(entries)
}

pub(super) fn file(conn: &Connection, id: i64) -> Result<Option<StoredFile>> {
    Ok(conn
        .query_row(
            "SELECT t.at, t.user_id, t.kind, t.text, t.incident_id, f.name, f.content_type, f.data
             FROM incident_files f JOIN incident_timeline t ON t.id = f.entry_id WHERE f.id = ?1",
            [id],
            |r| {
                Ok(StoredFile {
                    entry: entry_from(r)?,
                    incident: r.get(4)?,
                    file: NewFile { name: r.get(5)?, content_type: r.get(6)?, data: r.get(7)? },
                })
            },
        )
        .optional()?)
}

/// Takes in an e-mail once: `None` when its id was taken in before.
pub(super) fn receive_mail(conn: &Connection, message_id: &str, mail: &Mail) -> Result<Option<i64>> {
    let tx = conn.unchecked_transaction()?;
    let seen = tx.query_row("SELECT incident_id FROM mail_received WHERE message_id = ?1", [message_id], |_| Ok(()));
    if seen.optional()?.is_some() {
        return Ok(None);
    }
    let (incident, entry) = match mail {
        Mail::New { incident, entry, files } => (add_incident_in(&tx, incident, entry, files)?.id, entry),
        Mail::Reply { incident, entry, files } => {
            add_entry_checked(&tx, *incident, entry, files)?;
            (*incident, entry)
        }
    };
    tx.execute(
        "INSERT INTO mail_received (message_id, incident_id, at) VALUES (?1, ?2, ?3)",
        params![message_id, incident, entry.at.micros()],
    )?;
    tx.commit()?;
    Ok(Some(incident))
}

pub(super) fn save_search(conn: &Connection, s: &Search) -> Result<()> {
    conn.execute(
        "INSERT INTO searches (name, query, created, created_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET query = excluded.query, created = excluded.created,
             created_by = excluded.created_by",
        params![s.name, s.query, s.created.micros(), s.created_by],
    )?;
    Ok(())
}

pub(super) fn searches(conn: &Connection) -> Result<Vec<Search>> {
    let mut stmt = conn.prepare_cached("SELECT name, query, created, created_by FROM searches ORDER BY name")?;
    let list = stmt
        .query_map([], |r| {
            Ok(Search { name: r.get(0)?, query: r.get(1)?, created: stored_time(r.get(2)?), created_by: r.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(list)
}

pub(super) fn remove_search(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM searches WHERE name = ?1", [name])? > 0)
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
