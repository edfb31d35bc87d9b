//! Incidents with their organizations, events, tasks and timelines; saved searches; the
//! e-mails taken in.

use std::collections::HashMap;

use farol_model::incident::{Entry, EntryKind, FileInfo, Incident, NewFile, Severity, Status, Task};
use farol_model::org::OrgId;
use farol_model::{ClassificationType, Timestamp, Tlp};
use postgres::{Client, GenericClient, Row, Transaction};

use super::n;
use crate::{IncidentFilter, Mail, Result, Search, StoreError, StoredFile, stored_time};

const COLUMNS: &str = "id, title, class, severity, tlp, status, assignee, created, first_response, closed, merged_into";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?} in an incident"))
}

/// An incident's fields; its organizations, events and tasks come from [`with_links`].
fn incident_from(r: &Row) -> Result<Incident> {
    let (class, severity, status): (String, String, String) = (r.get(2), r.get(3), r.get(5));
    let tlp: i64 = r.get(4);
    Ok(Incident {
        id: r.get(0),
        title: r.get(1),
        class: ClassificationType::parse(&class).map(|c| c.value()).ok_or_else(|| corrupt("class", &class))?,
        severity: severity.parse::<Severity>().map_err(|_| corrupt("severity", &severity))?,
        tlp: usize::try_from(tlp)
            .ok()
            .and_then(|t| Tlp::ALL.get(t))
            .copied()
            .ok_or_else(|| corrupt("tlp", &tlp.to_string()))?,
        status: status.parse::<Status>().map_err(|_| corrupt("status", &status))?,
        assignee: r.get(6),
        orgs: Vec::new(),
        events: Vec::new(),
        created: stored_time(r.get(7)),
        first_response: r.get::<_, Option<i64>>(8).map(stored_time),
        closed: r.get::<_, Option<i64>>(9).map(stored_time),
        merged_into: r.get(10),
        tasks: Vec::new(),
    })
}

/// Reads the organizations, events and tasks of the incidents in `rows`: one query per link
/// table for the whole list.
fn with_links(c: &mut impl GenericClient, rows: &[Row]) -> Result<Vec<Incident>> {
    let mut list = rows.iter().map(incident_from).collect::<Result<Vec<_>>>()?;
    let ids: Vec<i64> = list.iter().map(|i| i.id).collect();
    let at: HashMap<i64, usize> = ids.iter().enumerate().map(|(n, &id)| (id, n)).collect();
    let ids = &[&ids as &(dyn postgres::types::ToSql + Sync)];
    let sql = "SELECT incident_id, org_id FROM incident_orgs WHERE incident_id = ANY($1) ORDER BY incident_id, org_id";
    for r in c.query(sql, ids)? {
        list[at[&r.get::<_, i64>(0)]].orgs.push(OrgId(r.get(1)));
    }
    let sql =
        "SELECT incident_id, event_id FROM incident_events WHERE incident_id = ANY($1) ORDER BY incident_id, event_id";
    for r in c.query(sql, ids)? {
        list[at[&r.get::<_, i64>(0)]].events.push(r.get(1));
    }
    let sql = "SELECT incident_id, text, done_at, done_by FROM incident_tasks WHERE incident_id = ANY($1)
               ORDER BY incident_id, n";
    for r in c.query(sql, ids)? {
        let done = r.get::<_, Option<i64>>(2).map(|t| (stored_time(t), r.get(3)));
        list[at[&r.get::<_, i64>(0)]].tasks.push(Task { text: r.get(1), done });
    }
    Ok(list)
}

/// Writes an incident's organizations, events and tasks (replacing what was there).
fn write_links(tx: &mut Transaction<'_>, i: &Incident) -> Result<()> {
    tx.execute("DELETE FROM incident_orgs WHERE incident_id = $1", &[&i.id])?;
    let org = tx.prepare("INSERT INTO incident_orgs (incident_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")?;
    for o in &i.orgs {
        tx.execute(&org, &[&i.id, &o.0])?;
    }
    tx.execute("DELETE FROM incident_events WHERE incident_id = $1", &[&i.id])?;
    let event = tx.prepare(
        "INSERT INTO incident_events (incident_id, event_id, hash, report_id)
         SELECT $1, id, hash, report_id FROM events WHERE id = $2 ON CONFLICT DO NOTHING",
    )?;
    for e in &i.events {
        if tx.execute(&event, &[&i.id, e])? == 0 {
            return Err(StoreError::NotFound(format!("no event {e}")));
        }
    }
    tx.execute("DELETE FROM incident_tasks WHERE incident_id = $1", &[&i.id])?;
    let task =
        tx.prepare("INSERT INTO incident_tasks (incident_id, n, text, done_at, done_by) VALUES ($1, $2, $3, $4, $5)")?;
    for (k, t) in i.tasks.iter().enumerate() {
        tx.execute(&task, &[&i.id, &n(k as u64), &t.text, &t.done.map(|d| d.0.micros()), &t.done.and_then(|d| d.1)])?;
    }
    Ok(())
}

fn add_entry_in(tx: &mut impl GenericClient, incident: i64, e: &Entry, files: &[NewFile]) -> Result<()> {
    let entry: i64 = tx
        .query_one(
            "INSERT INTO incident_timeline (incident_id, at, user_id, kind, text) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
            &[&incident, &e.at.micros(), &e.user, &e.kind.as_str(), &e.text],
        )?
        .get(0);
    for f in files {
        let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&f.data));
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        tx.execute(
            "INSERT INTO incident_files (entry_id, name, content_type, size, sha256, data) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&entry, &f.name, &f.content_type, &n(f.data.len() as u64), &hex, &f.data],
        )?;
    }
    Ok(())
}

fn write_fields(tx: &mut Transaction<'_>, i: &Incident) -> Result<u64> {
    Ok(tx.execute(
        "UPDATE incidents SET title = $2, class = $3, severity = $4, tlp = $5, status = $6, assignee = $7,
             first_response = $8, closed = $9, merged_into = $10 WHERE id = $1",
        &[
            &i.id,
            &i.title,
            &i.class.as_str(),
            &i.severity.as_str(),
            &i64::from(i.tlp.code()),
            &i.status.as_str(),
            &i.assignee,
            &i.first_response.map(Timestamp::micros),
            &i.closed.map(Timestamp::micros),
            &i.merged_into,
        ],
    )?)
}

pub(super) fn add_incident(c: &mut Client, i: &Incident, entry: &Entry, files: &[NewFile]) -> Result<Incident> {
    let mut tx = c.transaction()?;
    let stored = add_incident_in(&mut tx, i, entry, files)?;
    tx.commit()?;
    Ok(stored)
}

fn add_incident_in(tx: &mut Transaction<'_>, i: &Incident, entry: &Entry, files: &[NewFile]) -> Result<Incident> {
    let id: i64 = tx
        .query_one(
            "INSERT INTO incidents (title, class, severity, tlp, status, created) VALUES ('', '', '', 0, '', $1)
             RETURNING id",
            &[&i.created.micros()],
        )?
        .get(0);
    let stored = Incident { id, ..i.clone() };
    write_fields(tx, &stored)?;
    write_links(tx, &stored)?;
    add_entry_in(tx, stored.id, entry, files)?;
    Ok(stored)
}

pub(super) fn incident(c: &mut Client, id: i64) -> Result<Option<Incident>> {
    let rows = c.query(&format!("SELECT {COLUMNS} FROM incidents WHERE id = $1"), &[&id])?;
    Ok(with_links(c, &rows)?.pop())
}

pub(super) fn incidents(c: &mut Client, f: &IncidentFilter) -> Result<Vec<Incident>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM incidents
         WHERE ($1::bigint IS NULL OR id IN (SELECT incident_id FROM incident_orgs WHERE org_id = $1))
           AND ($2::text IS NULL OR status = $2)
           AND (NOT $3 OR status IN ('new', 'open', 'stalled'))
         ORDER BY id DESC LIMIT $4"
    );
    let rows = c.query(&sql, &[&f.org.map(|o| o.0), &f.status.map(Status::as_str), &f.open, &n(f.limit as u64)])?;
    with_links(c, &rows)
}

pub(super) fn update_incident(c: &mut Client, i: &Incident, entry: &Entry) -> Result<()> {
    let mut tx = c.transaction()?;
    if write_fields(&mut tx, i)? == 0 {
        return Err(StoreError::NotFound(format!("no incident {}", i.id)));
    }
    write_links(&mut tx, i)?;
    add_entry_in(&mut tx, i.id, entry, &[])?;
    tx.commit()?;
    Ok(())
}

pub(super) fn add_entry(c: &mut Client, incident: i64, e: &Entry, files: &[NewFile]) -> Result<()> {
    let mut tx = c.transaction()?;
    add_entry_checked(&mut tx, incident, e, files)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn add_entry_checked(tx: &mut Transaction<'_>, incident: i64, e: &Entry, files: &[NewFile]) -> Result<()> {
    // Locks the incident: its entries go in one after the other.
    if tx.query_opt("SELECT 1 FROM incidents WHERE id = $1 FOR NO KEY UPDATE", &[&incident])?.is_none() {
        return Err(StoreError::NotFound(format!("no incident {incident}")));
    }
    add_entry_in(tx, incident, e, files)
}

fn entry_from(r: &Row) -> Result<Entry> {
    let kind: String = r.get(2);
    Ok(Entry {
        at: stored_time(r.get(0)),
        user: r.get(1),
        kind: kind.parse::<EntryKind>().map_err(|_| corrupt("timeline entry", &kind))?,
        text: r.get(3),
        files: Vec::new(),
    })
}

pub(super) fn timeline(c: &mut Client, incident: i64) -> Result<Vec<Entry>> {
    let rows = c.query(
        "SELECT at, user_id, kind, text, id FROM incident_timeline WHERE incident_id = $1 ORDER BY id",
        &[&incident],
    )?;
    let mut entries = rows.iter().map(entry_from).collect::<Result<Vec<_>>>()?;
    let at: HashMap<i64, usize> = rows.iter().enumerate().map(|(k, r)| (r.get(4), k)).collect();
    let files = c.query(
        "SELECT f.entry_id, f.id, f.name, f.content_type, f.size, f.sha256 FROM incident_files f
         JOIN incident_timeline t ON t.id = f.entry_id WHERE t.incident_id = $1 ORDER BY f.id",
        &[&incident],
    )?;
    for r in files {
        if let Some(&k) = at.get(&r.get::<_, i64>(0)) {
            entries[k].files.push(FileInfo {
                id: r.get(1),
                name: r.get(2),
                content_type: r.get(3),
                size: r.get::<_, i64>(4).unsigned_abs(),
                sha256: r.get(5),
            });
        }
    }
    Ok(entries)
}

pub(super) fn file(c: &mut Client, id: i64) -> Result<Option<StoredFile>> {
    let Some(r) = c.query_opt(
        "SELECT t.at, t.user_id, t.kind, t.text, t.incident_id, f.name, f.content_type, f.data
         FROM incident_files f JOIN incident_timeline t ON t.id = f.entry_id WHERE f.id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(StoredFile {
        entry: entry_from(&r)?,
        incident: r.get(4),
        file: NewFile { name: r.get(5), content_type: r.get(6), data: r.get(7) },
    }))
}

/// Takes in an e-mail once: `None` when its id was taken in before (or is being taken in by
/// another process).
pub(super) fn receive_mail(c: &mut Client, message_id: &str, mail: &Mail) -> Result<Option<i64>> {
    let mut tx = c.transaction()?;
    let at = match mail {
        Mail::New { entry, .. } | Mail::Reply { entry, .. } => entry.at.micros(),
    };
    // The message's row first: a second process taking in the same message waits here, then
    // finds it taken.
    let claimed = tx.execute(
        "INSERT INTO mail_received (message_id, incident_id, at) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING",
        &[&message_id, &at],
    )?;
    if claimed == 0 {
        return Ok(None);
    }
    let incident = match mail {
        Mail::New { incident, entry, files } => add_incident_in(&mut tx, incident, entry, files)?.id,
        Mail::Reply { incident, entry, files } => {
            add_entry_checked(&mut tx, *incident, entry, files)?;
            *incident
        }
    };
    tx.execute("UPDATE mail_received SET incident_id = $2 WHERE message_id = $1", &[&message_id, &incident])?;
    tx.commit()?;
    Ok(Some(incident))
}

pub(super) fn save_search(c: &mut Client, s: &Search) -> Result<()> {
    c.execute(
        "INSERT INTO searches (name, query, created, created_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET query = excluded.query, created = excluded.created,
             created_by = excluded.created_by",
        &[&s.name, &s.query, &s.created.micros(), &s.created_by],
    )?;
    Ok(())
}

pub(super) fn searches(c: &mut Client) -> Result<Vec<Search>> {
    let rows = c.query("SELECT name, query, created, created_by FROM searches ORDER BY name", &[])?;
    Ok(rows
        .iter()
        .map(|r| Search { name: r.get(0), query: r.get(1), created: stored_time(r.get(2)), created_by: r.get(3) })
        .collect())
}

/// After a report is processed again, its events' links follow them to their new ids (a link
/// whose event is already linked under its new id stays as it was).
pub(super) fn relink(tx: &mut Transaction<'_>, report: i64) -> Result<()> {
    tx.execute(
        "UPDATE incident_events l SET event_id = m.id
         FROM (SELECT e.hash, min(e.id) AS id FROM events e JOIN reports r ON r.id = e.report_id
               WHERE e.report_id = $1 AND e.id BETWEEN r.first_event AND r.last_event GROUP BY e.hash) m
         WHERE l.report_id = $1 AND l.hash = m.hash AND l.event_id <> m.id
           AND NOT EXISTS (SELECT 1 FROM incident_events x WHERE x.incident_id = l.incident_id AND x.event_id = m.id)",
        &[&report],
    )?;
    Ok(())
}
