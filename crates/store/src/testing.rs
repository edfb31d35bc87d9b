//! For tests and benchmarks, here and in the crates above: a PostgreSQL store in a schema of its
//! own, and a test run on every backend.

use crate::{PostgresStore, Result, SqliteStore, Store};

/// Runs `test` on a new SQLite store, then on a new PostgreSQL store where a server is configured
/// (see [`PostgresSchema::new`]): what the crates above test of the store holds on both.
pub fn on_every_backend(test: impl Fn(&dyn Store)) {
    static DIRS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = DIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("farol-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let sqlite = SqliteStore::open(&dir.join("farol.db")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    test(&sqlite);
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(schema) = PostgresSchema::new() {
        test(&schema.open());
    }
}

/// A new schema in the database that `FAROL_TEST_POSTGRES_URL` names, dropped with this value.
pub struct PostgresSchema {
    admin: postgres::Client,
    /// The schema's name.
    pub name: String,
    /// The URL of a store in the schema.
    pub url: String,
}

impl std::fmt::Debug for PostgresSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSchema").field("name", &self.name).finish_non_exhaustive()
    }
}

impl PostgresSchema {
    /// `None` when no server is configured, which `FAROL_REQUIRE_POSTGRES=1` makes a panic: CI
    /// must not pass by skipping.
    pub fn new() -> Option<PostgresSchema> {
        static SCHEMAS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let Ok(url) = std::env::var("FAROL_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("FAROL_REQUIRE_POSTGRES").is_none(),
                "FAROL_REQUIRE_POSTGRES is set but FAROL_TEST_POSTGRES_URL names no server"
            );
            eprintln!("no PostgreSQL server (FAROL_TEST_POSTGRES_URL): skipped");
            return None;
        };
        let n = SCHEMAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("farol_test_{}_{n}", std::process::id());
        Some(PostgresSchema::create(&url, &name).unwrap_or_else(|e| panic!("FAROL_TEST_POSTGRES_URL: {e}")))
    }

    /// Schema `name` (a plain identifier) made anew in the database at `url`.
    pub fn create(url: &str, name: &str) -> Result<PostgresSchema> {
        let mut admin = super::postgres::connect(url)?;
        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))?;
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}options=-c%20search_path%3D{name}");
        Ok(PostgresSchema { admin, name: name.to_owned(), url })
    }

    /// Bytes on disk of the schema's tables, with their indexes and TOAST.
    pub fn size(&mut self) -> Result<u64> {
        let row = self.admin.query_one(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
            &[&self.name],
        )?;
        Ok(row.get::<_, i64>(0).unsigned_abs())
    }

    /// Opens the store in the schema.
    pub fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.url).unwrap_or_else(|e| panic!("cannot open the store in {}: {e}", self.name))
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        // Best effort: a schema left behind only takes space in the test database.
        let _ = self.admin.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
    }
}
