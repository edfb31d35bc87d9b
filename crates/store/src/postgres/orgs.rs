//! Organizations with their assets and contacts, and IP datasets.

use std::collections::HashMap;

use farol_model::Timestamp;
use farol_model::org::{Asset, Contact, Org, OrgId, Sector};
use postgres::{Client, Transaction};

use super::{conflict, n};
use crate::{DatasetRecord, NewDataset, Result, StoreError};

fn write_details(tx: &mut Transaction<'_>, id: i64, org: &Org) -> Result<()> {
    tx.execute("DELETE FROM org_assets WHERE org_id = $1", &[&id])?;
    tx.execute("DELETE FROM org_contacts WHERE org_id = $1", &[&id])?;
    let asset =
        tx.prepare("INSERT INTO org_assets (org_id, kind, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")?;
    for a in &org.assets {
        tx.execute(&asset, &[&id, &a.kind(), &a.value()])?;
    }
    let contact = tx.prepare(
        "INSERT INTO org_contacts (org_id, email, language, interval, format) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (org_id, email) DO UPDATE
         SET language = excluded.language, interval = excluded.interval, format = excluded.format",
    )?;
    for c in &org.contacts {
        tx.execute(&contact, &[&id, &c.email, &c.language, &c.interval.as_str(), &c.format.as_str()])?;
    }
    Ok(())
}

pub(super) fn add_org(c: &mut Client, org: &Org) -> Result<OrgId> {
    let mut tx = c.transaction()?;
    let now = Timestamp::now().micros();
    let row = tx
        .query_one(
            "INSERT INTO orgs (name, sector, handle, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
            &[&org.name, &org.sector.as_str(), &org.handle, &now],
        )
        .map_err(|e| {
            conflict(e, || format!("an organization named {:?} (or with handle {:?}) exists", org.name, org.handle))
        })?;
    let id: i64 = row.get(0);
    write_details(&mut tx, id, org)?;
    tx.commit()?;
    Ok(OrgId(id))
}

pub(super) fn update_org(c: &mut Client, org: &Org) -> Result<()> {
    let mut tx = c.transaction()?;
    let changed = tx
        .execute(
            "UPDATE orgs SET name = $2, sector = $3, handle = $4, updated_at = $5 WHERE id = $1",
            &[&org.id.0, &org.name, &org.sector.as_str(), &org.handle, &Timestamp::now().micros()],
        )
        .map_err(|e| conflict(e, || format!("another organization is named {:?}", org.name)))?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("no organization {}", org.id)));
    }
    write_details(&mut tx, org.id.0, org)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn orgs(c: &mut Client) -> Result<Vec<Org>> {
    let mut orgs: Vec<Org> = c
        .query("SELECT id, name, sector, handle FROM orgs ORDER BY lower(name)", &[])?
        .iter()
        .map(|r| Org {
            id: OrgId(r.get(0)),
            name: r.get(1),
            sector: r.get::<_, String>(2).parse().unwrap_or(Sector::Unclassified),
            handle: r.get(3),
            assets: Vec::new(),
            contacts: Vec::new(),
        })
        .collect();
    let index: HashMap<i64, usize> = orgs.iter().enumerate().map(|(i, o)| (o.id.0, i)).collect();
    for r in c.query("SELECT org_id, kind, value FROM org_assets ORDER BY org_id, kind, value", &[])? {
        let asset =
            Asset::parse_kind(r.get(1), r.get(2)).map_err(|e| StoreError::Corrupt(format!("org asset: {e}")))?;
        if let Some(&i) = index.get(&r.get::<_, i64>(0)) {
            orgs[i].assets.push(asset);
        }
    }
    let contacts = "SELECT org_id, email, language, interval, format FROM org_contacts ORDER BY org_id, email";
    for r in c.query(contacts, &[])? {
        let corrupt = |e: String| StoreError::Corrupt(format!("org contact: {e}"));
        let contact = Contact {
            email: r.get(1),
            language: r.get(2),
            interval: r.get::<_, String>(3).parse().map_err(corrupt)?,
            format: r.get::<_, String>(4).parse().map_err(corrupt)?,
        };
        if let Some(&i) = index.get(&r.get::<_, i64>(0)) {
            orgs[i].contacts.push(contact);
        }
    }
    Ok(orgs)
}

const DATASET_COLUMNS: &str =
    "id, name, version, format, priority, description, source, sha256, loaded_at, ranges, rejected, active";

fn dataset(r: &postgres::Row) -> DatasetRecord {
    let sha: Vec<u8> = r.get(7);
    DatasetRecord {
        id: r.get(0),
        name: r.get(1),
        version: u32::try_from(r.get::<_, i64>(2)).unwrap_or(u32::MAX),
        format: r.get(3),
        priority: i32::try_from(r.get::<_, i64>(4)).unwrap_or(i32::MAX),
        description: r.get(5),
        source: r.get(6),
        sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
        loaded_at: Timestamp::from_micros(r.get(8)).unwrap_or_else(Timestamp::now),
        ranges: r.get::<_, i64>(9).unsigned_abs(),
        rejected: r.get::<_, i64>(10).unsigned_abs(),
        active: r.get(11),
    }
}

pub(super) fn add_dataset(c: &mut Client, new: &NewDataset<'_>) -> Result<DatasetRecord> {
    let mut tx = c.transaction()?;
    // Loads of one dataset name take their versions one after the other.
    tx.execute("SELECT pg_advisory_xact_lock(7248303, hashtext($1))", &[&new.name])?;
    let version: i64 =
        tx.query_one("SELECT coalesce(max(version), 0) + 1 FROM ipdata WHERE name = $1", &[&new.name])?.get(0);
    tx.execute("UPDATE ipdata SET active = false WHERE name = $1", &[&new.name])?;
    let data = zstd::bulk::compress(new.data, 3)?;
    let row = tx.query_one(
        &format!(
            "INSERT INTO ipdata (name, version, format, priority, description, source, sha256, loaded_at, ranges, rejected, active, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true, $11) RETURNING {DATASET_COLUMNS}"
        ),
        &[
            &new.name,
            &version,
            &new.format,
            &i64::from(new.priority),
            &new.description,
            &new.source,
            &&new.sha256[..],
            &Timestamp::now().micros(),
            &n(new.ranges),
            &n(new.rejected),
            &data,
        ],
    )?;
    tx.commit()?;
    Ok(dataset(&row))
}

pub(super) fn datasets(c: &mut Client, all: bool) -> Result<Vec<DatasetRecord>> {
    let filter = if all { "" } else { "WHERE active" };
    let rows = c.query(&format!("SELECT {DATASET_COLUMNS} FROM ipdata {filter} ORDER BY name, version"), &[])?;
    Ok(rows.iter().map(dataset).collect())
}

pub(super) fn dataset_data(c: &mut Client, id: i64) -> Result<Vec<u8>> {
    let row = c
        .query_opt("SELECT data FROM ipdata WHERE id = $1", &[&id])?
        .ok_or_else(|| StoreError::NotFound(format!("no IP dataset {id}")))?;
    // As in the SQLite store: a bound keeps a damaged frame from asking for too much memory.
    Ok(zstd::bulk::decompress(row.get(0), 1 << 30)?)
}
