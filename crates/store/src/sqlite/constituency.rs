//! Organizations with their assets and contacts, IP datasets, and the routing of events.

use farol_model::Timestamp;
use farol_model::org::{Asset, Contact, Org, OrgId};
use rusqlite::{Connection, OptionalExtension, params};

use super::events::{Bases, EVENT_COLUMNS, EVENT_JOINS, RawEvent, decode, stored_event};
use crate::row::encode_orgs;
use crate::{DatasetRecord, NewDataset, Rerouted, Result, StoreError, StoredEvent};

pub(super) fn conflict(e: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(what())
        }
        e => e.into(),
    }
}

fn write_details(tx: &Connection, id: i64, org: &Org) -> Result<()> {
    tx.execute("DELETE FROM org_assets WHERE org_id = ?1", [id])?;
    tx.execute("DELETE FROM org_contacts WHERE org_id = ?1", [id])?;
    let mut asset = tx.prepare_cached("INSERT OR IGNORE INTO org_assets (org_id, kind, value) VALUES (?1, ?2, ?3)")?;
    for a in &org.assets {
        asset.execute(params![id, a.kind(), a.value()])?;
    }
    let mut contact = tx.prepare_cached(
        "INSERT OR REPLACE INTO org_contacts (org_id, email, language, interval, format) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for c in &org.contacts {
        contact.execute(params![id, c.email, c.language, c.interval.as_str(), c.format.as_str()])?;
    }
    Ok(())
}

pub(super) fn add_org(conn: &Connection, org: &Org) -> Result<OrgId> {
    let tx = conn.unchecked_transaction()?;
    let now = Timestamp::now().micros();
    // Never an id given before (migration 15 says why).
    let id: i64 = tx.query_row("UPDATE org_ids SET last = last + 1 RETURNING last", [], |r| r.get(0))?;
    tx.execute(
        "INSERT INTO orgs (id, name, sector, handle, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id, org.name, org.sector.as_str(), org.handle, now],
    )
    .map_err(|e| {
        conflict(e, || format!("an organization named {:?} (or with handle {:?}) exists", org.name, org.handle))
    })?;
    write_details(&tx, id, org)?;
    tx.commit()?;
    Ok(OrgId(id))
}

pub(super) fn update_org(conn: &Connection, org: &Org) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    let changed = tx
        .execute(
            "UPDATE orgs SET name = ?2, sector = ?3, handle = ?4, updated_at = ?5 WHERE id = ?1",
            params![org.id.0, org.name, org.sector.as_str(), org.handle, Timestamp::now().micros()],
        )
        .map_err(|e| conflict(e, || format!("another organization is named {:?}", org.name)))?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("no organization {}", org.id)));
    }
    write_details(&tx, org.id.0, org)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn remove_org(conn: &Connection, id: OrgId) -> Result<bool> {
    let tx = conn.unchecked_transaction()?;
    let removed = tx.execute("DELETE FROM orgs WHERE id = ?1", [id.0])? > 0;
    // Its events stay; they lose it from their routing (the list on the row is rewritten by
    // `farol reroute`, the index by organization now).
    tx.execute("DELETE FROM org_runs WHERE org_id = ?1", [id.0])?;
    // Its rows of the statistics count in the whole as before, under no organization.
    let rows = super::stats::rows_of("r.org = ?1");
    tx.execute(&format!("UPDATE host_days SET org = NULL WHERE rowid IN ({rows})"), [id.0])?;
    tx.execute("UPDATE host_day_runs SET org = NULL WHERE org = ?1", [id.0])?;
    tx.commit()?;
    Ok(removed)
}

pub(super) fn orgs(conn: &Connection) -> Result<Vec<Org>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, sector, handle FROM orgs ORDER BY name COLLATE NOCASE")?;
    let mut orgs: Vec<Org> = stmt
        .query_map([], |r| {
            let sector: String = r.get(2)?;
            Ok(Org {
                id: OrgId(r.get(0)?),
                name: r.get(1)?,
                sector: sector.parse().unwrap_or(farol_model::org::Sector::Unclassified),
                handle: r.get(3)?,
                assets: Vec::new(),
                contacts: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let index: std::collections::HashMap<i64, usize> = orgs.iter().enumerate().map(|(i, o)| (o.id.0, i)).collect();
    let mut assets = conn.prepare_cached("SELECT org_id, kind, value FROM org_assets ORDER BY org_id, kind, value")?;
    let rows = assets.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    for row in rows {
        let (org, kind, value) = row?;
        let asset = Asset::parse_kind(&kind, &value).map_err(|e| StoreError::Corrupt(format!("org asset: {e}")))?;
        if let Some(&i) = index.get(&org) {
            orgs[i].assets.push(asset);
        }
    }
    let mut contacts = conn
        .prepare_cached("SELECT org_id, email, language, interval, format FROM org_contacts ORDER BY org_id, email")?;
    let rows = contacts.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    for row in rows {
        let (org, email, language, interval, format) = row?;
        let corrupt = |e: String| StoreError::Corrupt(format!("org contact: {e}"));
        let contact = Contact {
            email,
            language,
            interval: interval.parse().map_err(corrupt)?,
            format: format.parse().map_err(corrupt)?,
        };
        if let Some(&i) = index.get(&org) {
            orgs[i].contacts.push(contact);
        }
    }
    Ok(orgs)
}

const DATASET_COLUMNS: &str =
    "id, name, version, format, priority, description, source, sha256, loaded_at, ranges, rejected, active";

fn dataset(r: &rusqlite::Row<'_>) -> rusqlite::Result<DatasetRecord> {
    let sha: Vec<u8> = r.get(7)?;
    Ok(DatasetRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        version: r.get(2)?,
        format: r.get(3)?,
        priority: r.get(4)?,
        description: r.get(5)?,
        source: r.get(6)?,
        sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
        loaded_at: Timestamp::from_micros(r.get(8)?).unwrap_or_else(Timestamp::now),
        ranges: r.get::<_, i64>(9)?.unsigned_abs(),
        rejected: r.get::<_, i64>(10)?.unsigned_abs(),
        active: r.get(11)?,
    })
}

pub(super) fn add_dataset(conn: &Connection, new: &NewDataset<'_>) -> Result<DatasetRecord> {
    let tx = conn.unchecked_transaction()?;
    let version: i64 =
        tx.query_row("SELECT coalesce(max(version), 0) + 1 FROM ipdata WHERE name = ?1", [new.name], |r| r.get(0))?;
    tx.execute("UPDATE ipdata SET active = 0 WHERE name = ?1", [new.name])?;
    let data = zstd::bulk::compress(new.data, 3)?;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO ipdata (name, version, format, priority, description, source, sha256, loaded_at, ranges, rejected, active, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11)",
        params![new.name, version, new.format, new.priority, new.description, new.source, &new.sha256[..],
            Timestamp::now().micros(), n(new.ranges), n(new.rejected), data],
    )?;
    let id = tx.last_insert_rowid();
    let record = tx.query_row(&format!("SELECT {DATASET_COLUMNS} FROM ipdata WHERE id = ?1"), [id], dataset)?;
    tx.commit()?;
    Ok(record)
}

pub(super) fn datasets(conn: &Connection, all: bool) -> Result<Vec<DatasetRecord>> {
    let filter = if all { "" } else { "WHERE active = 1" };
    let mut stmt = conn.prepare(&format!("SELECT {DATASET_COLUMNS} FROM ipdata {filter} ORDER BY name, version"))?;
    Ok(stmt.query_map([], dataset)?.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn dataset_data(conn: &Connection, id: i64) -> Result<Vec<u8>> {
    let data: Vec<u8> = conn
        .query_row("SELECT data FROM ipdata WHERE id = ?1", [id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no IP dataset {id}")))?;
    // A dataset holds a few million ranges at most: a bound keeps a damaged frame from asking
    // for more memory than the machine has.
    Ok(zstd::bulk::decompress(&data, 1 << 30)?)
}

pub(super) fn remove_dataset(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("UPDATE ipdata SET active = 0 WHERE name = ?1 AND active = 1", [name])? > 0)
}

pub(super) fn events_after(conn: &Connection, after: i64, limit: usize, bases: &Bases) -> Result<Vec<StoredEvent>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS} WHERE e.id > ?1 ORDER BY e.id LIMIT ?2"
    ))?;
    let raws: Vec<RawEvent> = stmt
        .query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], stored_event)?
        .collect::<rusqlite::Result<_>>()?;
    raws.into_iter().map(|r| decode(conn, r, bases)).collect()
}

pub(super) fn set_routing(conn: &Connection, events: &[Rerouted]) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let new: Vec<(i64, Option<Vec<u8>>)> = events
            .iter()
            .map(|e| (e.id, encode_orgs(&e.routing.orgs.iter().map(|o| o.0).collect::<Vec<_>>())))
            .collect();
        super::stats::reroute(&tx, &new)?;
        let mut old = tx.prepare_cached("SELECT hour, orgs FROM events WHERE id = ?1")?;
        let mut update = tx.prepare_cached("UPDATE events SET orgs = ?2, scope = ?3 WHERE id = ?1")?;
        // Filed all together at the end, so that consecutive events rerouted alike make runs.
        let mut keys = Vec::new();
        for (e, (_, orgs)) in events.iter().zip(&new) {
            let Some((hour, before)) =
                old.query_row([e.id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))).optional()?
            else {
                continue;
            };
            for org in crate::row::decode_orgs(before.as_deref().unwrap_or_default()) {
                super::events::unindex(&tx, org, hour, e.id)?;
            }
            keys.extend(e.routing.orgs.iter().map(|&org| (org.0, hour, e.id)));
            update.execute(params![e.id, orgs, e.routing.scope.code()])?;
        }
        super::events::index_by_org(&tx, keys)?;
    }
    tx.commit()?;
    Ok(())
}
