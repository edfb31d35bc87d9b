//! `farol copy-store`: a SQLite store into an empty PostgreSQL one, table by table with COPY,
//! ids kept, in one PostgreSQL transaction (all of it or nothing).

use std::path::Path;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::types::Value;

use crate::row::{IpKey, decode_orgs};
use crate::{PostgresStore, Result, SqliteStore, StoreError};

/// How a SQLite value becomes a PostgreSQL one.
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Bytes,
    /// An integer 0/1 (or NULL for false).
    Bool,
    /// `source_ip`: an integer (IPv4), 16 bytes (IPv6), or no bytes (none).
    Inet,
    /// Organization ids as varints.
    Orgs,
    Float,
}

/// A table as it is copied: its name, and its columns with how each converts.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Which rows: what SQLite keeps that PostgreSQL is to have.
    filter: &'static str,
}

use Kind::{Bool, Bytes, Float, Inet, Int, Orgs, Text};

/// In an order that satisfies the foreign keys.
const TABLES: &[Table] = &[
    Table {
        name: "feeds",
        columns: &[("id", Int), ("name", Text), ("last_success_at", Int), ("last_error_at", Int), ("last_error", Text)],
        filter: "",
    },
    Table {
        name: "reports",
        columns: &[
            ("id", Int),
            ("feed_id", Int),
            ("format", Text),
            ("name", Text),
            ("sha256", Bytes),
            ("size", Int),
            ("received_at", Int),
            ("status", Text),
            ("heartbeat", Int),
            ("records", Int),
            ("events", Int),
            ("duplicates", Int),
            ("dropped", Int),
            ("rejects", Int),
            ("error", Text),
            ("processed_at", Int),
            ("first_event", Int),
            ("last_event", Int),
            ("common", Bytes),
            ("distribution", Int),
        ],
        // A report still arriving is left behind with its process; leases end with the copy.
        filter: "WHERE status <> 'receiving'",
    },
    Table {
        name: "report_chunks",
        columns: &[("report_id", Int), ("seq", Int), ("data", Bytes)],
        filter: "WHERE report_id IN (SELECT id FROM reports WHERE status <> 'receiving')",
    },
    Table {
        name: "events",
        columns: &[
            ("id", Int),
            ("hour", Int),
            ("time", Int),
            ("hash", Int),
            ("feed_id", Int),
            ("type", Int),
            ("source_ip", Inet),
            ("source_asn", Int),
            ("source_cc", Text),
            ("report_id", Int),
            ("raw_offset", Int),
            ("raw_len", Int),
            ("data", Bytes),
            ("orgs", Orgs),
            ("scope", Int),
            ("aggregated", Bool),
            ("tlp", Int),
            ("family", Text),
        ],
        filter: "",
    },
    Table {
        name: "event_parts",
        columns: &[("report_id", Int), ("hash", Int), ("count", Int), ("first_seen", Int), ("last_seen", Int)],
        filter: "",
    },
    Table {
        name: "rejects",
        columns: &[
            ("id", Int),
            ("report_id", Int),
            ("line", Int),
            ("\"offset\"", Int),
            ("len", Int),
            ("reason", Text),
            ("raw", Bytes),
        ],
        filter: "WHERE report_id IN (SELECT id FROM reports WHERE status <> 'receiving')",
    },
    Table { name: "states", columns: &[("key", Text), ("value", Text)], filter: "" },
    Table {
        name: "ipdata",
        columns: &[
            ("id", Int),
            ("name", Text),
            ("version", Int),
            ("format", Text),
            ("priority", Int),
            ("description", Text),
            ("source", Text),
            ("sha256", Bytes),
            ("loaded_at", Int),
            ("ranges", Int),
            ("rejected", Int),
            ("active", Bool),
            ("data", Bytes),
        ],
        filter: "",
    },
    Table {
        name: "orgs",
        columns: &[
            ("id", Int),
            ("name", Text),
            ("sector", Text),
            ("handle", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        filter: "",
    },
    Table { name: "org_assets", columns: &[("org_id", Int), ("kind", Text), ("value", Text)], filter: "" },
    Table {
        name: "org_contacts",
        columns: &[("org_id", Int), ("email", Text), ("language", Text), ("interval", Text), ("format", Text)],
        filter: "",
    },
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("email", Text),
            ("org_id", Int),
            ("role", Text),
            ("password", Text),
            ("totp", Text),
            ("disabled", Bool),
            ("failures", Int),
            ("locked_until", Int),
            ("created_at", Int),
        ],
        filter: "",
    },
    Table {
        name: "sessions",
        columns: &[("hash", Bytes), ("user_id", Int), ("csrf", Text), ("created_at", Int), ("seen_at", Int)],
        filter: "",
    },
    Table {
        name: "tokens",
        columns: &[
            ("id", Int),
            ("hash", Bytes),
            ("user_id", Int),
            ("name", Text),
            ("scope", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
            ("used_at", Int),
        ],
        filter: "",
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Int),
            ("at", Int),
            ("user_id", Int),
            ("org_id", Int),
            ("action", Text),
            ("target", Text),
            ("ip", Text),
            ("detail", Text),
        ],
        filter: "",
    },
    Table {
        name: "notify_marks",
        columns: &[("org_id", Int), ("email", Text), ("last_report", Int), ("last_sent", Int)],
        filter: "",
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("org_id", Int),
            ("created", Int),
            ("sender", Text),
            ("recipients", Text),
            ("subject", Text),
            ("events", Int),
            ("message", Bytes),
            ("state", Text),
            ("attempts", Int),
            ("next_attempt", Int),
            ("last_error", Text),
            ("sent_at", Int),
        ],
        filter: "",
    },
    Table {
        name: "inhibitions",
        columns: &[
            ("id", Int),
            ("org_id", Int),
            ("asset_kind", Text),
            ("asset", Text),
            ("classification", Text),
            ("reason", Text),
            ("created", Int),
            ("created_by", Text),
            ("expires", Int),
        ],
        filter: "",
    },
    Table {
        name: "incidents",
        columns: &[
            ("id", Int),
            ("title", Text),
            ("class", Text),
            ("severity", Text),
            ("tlp", Int),
            ("status", Text),
            ("assignee", Int),
            ("created", Int),
            ("first_response", Int),
            ("closed", Int),
            ("merged_into", Int),
        ],
        filter: "",
    },
    Table { name: "incident_orgs", columns: &[("incident_id", Int), ("org_id", Int)], filter: "" },
    Table {
        name: "incident_events",
        columns: &[("incident_id", Int), ("event_id", Int), ("hash", Int), ("report_id", Int)],
        filter: "",
    },
    Table {
        name: "incident_timeline",
        columns: &[("id", Int), ("incident_id", Int), ("at", Int), ("user_id", Int), ("kind", Text), ("text", Text)],
        filter: "",
    },
    Table {
        name: "incident_tasks",
        columns: &[("incident_id", Int), ("n", Int), ("text", Text), ("done_at", Int), ("done_by", Int)],
        filter: "",
    },
    Table {
        name: "incident_files",
        columns: &[
            ("id", Int),
            ("entry_id", Int),
            ("name", Text),
            ("content_type", Text),
            ("size", Int),
            ("sha256", Text),
            ("data", Bytes),
        ],
        filter: "",
    },
    Table {
        name: "searches",
        columns: &[("name", Text), ("query", Text), ("created", Int), ("created_by", Int)],
        filter: "",
    },
    Table { name: "mail_received", columns: &[("message_id", Text), ("incident_id", Int), ("at", Int)], filter: "" },
    Table { name: "communities", columns: &[("id", Int), ("name", Text), ("description", Text)], filter: "" },
    Table { name: "community_members", columns: &[("community_id", Int), ("org_id", Int)], filter: "" },
    Table {
        name: "indicators",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("value", Text),
            ("origin", Text),
            ("category", Text),
            ("family", Text),
            ("tlp", Int),
            ("distribution", Int),
            ("community_id", Int),
            ("confidence", Int),
            ("valid_from", Int),
            ("valid_until", Int),
            ("first_seen", Int),
            ("last_seen", Int),
            ("sightings", Int),
            ("description", Text),
            ("created", Int),
            ("modified", Int),
            ("revoked", Bool),
        ],
        filter: "",
    },
    Table { name: "indicator_orgs", columns: &[("indicator_id", Int), ("org_id", Int)], filter: "" },
    Table {
        name: "indicator_sightings",
        columns: &[("indicator_id", Int), ("report_id", Int), ("count", Int)],
        filter: "",
    },
    Table {
        name: "host_days",
        columns: &[
            ("report_id", Int),
            ("org", Int),
            ("day", Int),
            ("ip", Inet),
            ("type", Int),
            ("family", Text),
            ("tlp", Int),
            ("asn", Int),
            ("cc", Text),
            ("events", Int),
            ("org_events", Int),
        ],
        filter: "",
    },
    Table {
        name: "population",
        columns: &[("scope", Text), ("key", Text), ("metric", Text), ("valid_from", Int), ("value", Float)],
        filter: "",
    },
];

/// Copies the SQLite store at `from` into the empty PostgreSQL store at `to`; returns the rows
/// copied by table. `progress` hears of each table and of the rows as they go (table, rows so
/// far).
pub fn sqlite_to_postgres(
    from: &Path,
    to: &str,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<Vec<(&'static str, u64)>> {
    // Opening migrates both to this farol's schema.
    drop(SqliteStore::open(from)?);
    drop(PostgresStore::open(to)?);
    let mut sqlite = rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // One read transaction: the copy is the store as of its start, while farol goes on.
    let snapshot = sqlite.transaction()?;
    let mut copied = Vec::new();
    let mut pg = super::postgres::connect(to)?;
    let mut tx = pg.transaction()?;
    let used: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM reports) OR EXISTS (SELECT 1 FROM orgs) OR EXISTS (SELECT 1 FROM ipdata)",
            &[],
        )?
        .get(0);
    if used {
        return Err(StoreError::Conflict(
            "the PostgreSQL store is not empty: copy into a new database (or schema)".to_owned(),
        ));
    }
    let hours: Vec<i64> = snapshot
        .prepare("SELECT hour FROM event_hours")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    tx.execute("SELECT farol_events_partition(h) FROM unnest($1::bigint[]) h", &[&hours])?;
    for table in TABLES {
        progress(table.name, 0);
        let rows = copy_table(&snapshot, &mut tx, table, progress)?;
        copied.push((table.name, rows));
    }
    let mark: i64 = snapshot.query_row("SELECT report_id FROM indicator_mark", [], |r| r.get(0))?;
    tx.execute("UPDATE indicator_mark SET report_id = $1", &[&mark])?;
    // Identities and the event sequence go on after the ids copied, and organizations' after
    // the largest SQLite ever gave, that of one since removed included (SQLite migration 15).
    // (Every table with an id column has an identity there, but events, which share a sequence.)
    let last_org: i64 = snapshot.query_row("SELECT last FROM org_ids", [], |r| r.get(0))?;
    for table in TABLES.iter().filter(|t| t.columns[0].0 == "id" && t.name != "events").map(|t| t.name) {
        let floor = if table == "orgs" { last_org } else { 0 };
        tx.execute(
            &format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), greatest((SELECT max(id) FROM {table}), $1::bigint) + 1, false)"),
            &[&floor],
        )?;
    }
    tx.batch_execute("SELECT setval('event_ids', coalesce((SELECT max(id) FROM events), 0) + 1, false)")?;
    tx.commit()?;
    Ok(copied)
}

fn copy_table(
    from: &rusqlite::Transaction<'_>,
    to: &mut postgres::Transaction<'_>,
    table: &Table,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<u64> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let types: Vec<Type> = table
        .columns
        .iter()
        .map(|(_, kind)| match kind {
            Int => Type::INT8,
            Text => Type::TEXT,
            Bytes => Type::BYTEA,
            Bool => Type::BOOL,
            Inet => Type::INET,
            Orgs => Type::INT8_ARRAY,
            Float => Type::FLOAT8,
        })
        .collect();
    let sink = to.copy_in(&format!("COPY {} ({}) FROM STDIN (FORMAT binary)", table.name, names.join(", ")))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut select = from.prepare(&format!("SELECT {} FROM {} {}", names.join(", "), table.name, table.filter))?;
    let mut rows = select.query([])?;
    let mut n = 0u64;
    while let Some(row) = rows.next()? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(table.columns.len());
        for (i, &(name, kind)) in table.columns.iter().enumerate() {
            values.push(
                convert(row.get::<_, Value>(i)?, kind)
                    .map_err(|e| StoreError::Corrupt(format!("{}.{name} of row {}: {e}", table.name, n + 1)))?,
            );
        }
        writer.write(&values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect::<Vec<_>>())?;
        n += 1;
        if n.is_multiple_of(65_536) {
            progress(table.name, n);
        }
    }
    writer.finish()?;
    progress(table.name, n);
    Ok(n)
}

fn convert(value: Value, kind: Kind) -> Result<Box<dyn ToSql + Sync>, String> {
    Ok(match (kind, value) {
        (Int, Value::Null) => Box::new(None::<i64>),
        (Int, Value::Integer(i)) => Box::new(i),
        (Text, Value::Null) => Box::new(None::<String>),
        (Text, Value::Text(t)) => Box::new(t),
        (Bytes, Value::Null) => Box::new(None::<Vec<u8>>),
        (Bytes, Value::Blob(b)) => Box::new(b),
        (Bool, Value::Null) => Box::new(false),
        (Bool, Value::Integer(i)) => Box::new(i != 0),
        (Inet, Value::Integer(v)) => {
            Box::new(IpKey::V4(u32::try_from(v).map_err(|_| format!("{v} is not an IPv4 address"))?).addr())
        }
        (Inet, Value::Blob(b)) if b.is_empty() => Box::new(IpKey::None.addr()),
        (Inet, Value::Blob(b)) => {
            Box::new(IpKey::V6(b.try_into().map_err(|_| "an IPv6 address is 16 bytes".to_owned())?).addr())
        }
        (Orgs, Value::Null) => Box::new(None::<Vec<i64>>),
        (Orgs, Value::Blob(b)) => Box::new(Some(decode_orgs(&b))),
        (Float, Value::Real(v)) => Box::new(v),
        (Float, Value::Integer(v)) => Box::new(v as f64),
        (_, other) => return Err(format!("unexpected {:?}", other.data_type())),
    })
}
