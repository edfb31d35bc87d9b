//! Leases: while a report is processed it belongs to one process, which renews its lease as it
//! goes. A process that dies (SIGKILL, a lost machine) stops renewing; when the lease runs out a
//! worker takes the report and processes it again from the start, which replaces whatever the
//! dead process wrote. Events are unique in the store, so nothing is ever stored twice.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use farol_model::{Report, ReportId, Timestamp};
use farol_store::{Claimed, Store};

use crate::Error;

/// How long a lease lasts unless renewed; renewed after a third of it.
pub const LEASE: Duration = Duration::from_secs(60);

/// A report held for processing. Dropping it gives the report up.
pub struct Lease<'a> {
    store: &'a dyn Store,
    report: Report,
    holder: String,
    length: Duration,
    renewed: Cell<Instant>,
}

impl std::fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("report", &self.report.id).field("holder", &self.holder).finish()
    }
}

impl<'a> Lease<'a> {
    /// Takes report `id`; [`Error::Held`] when another process is processing it. A holder on
    /// this machine whose process is gone (killed) holds nothing: its lease is ended at once.
    pub fn take(store: &'a dyn Store, id: ReportId, length: Duration) -> Result<Lease<'a>, Error> {
        let holder = holder();
        let mut claimed = claim(store, Some(id), &holder, length)?;
        if let Claimed::Held(report) = &claimed
            && let Some(other) = report.holder.as_deref().filter(|h| gone(h))
        {
            store.release_claim(id, other)?;
            claimed = claim(store, Some(id), &holder, length)?;
        }
        match claimed {
            Claimed::Taken(report) => Ok(Lease::new(store, report, holder, length)),
            Claimed::Held(report) => Err(Error::Held { report: id, holder: report.holder.unwrap_or_default() }),
            Claimed::Nothing => Err(farol_store::StoreError::NoReport(id).into()),
        }
    }

    /// Takes the oldest report that waits to be processed, if any.
    pub fn next(store: &'a dyn Store, length: Duration) -> Result<Option<Lease<'a>>, Error> {
        let holder = holder();
        Ok(match claim(store, None, &holder, length)? {
            Claimed::Taken(report) => Some(Lease::new(store, report, holder, length)),
            Claimed::Held(_) | Claimed::Nothing => None,
        })
    }

    fn new(store: &'a dyn Store, report: Report, holder: String, length: Duration) -> Lease<'a> {
        Lease { store, report, holder, length, renewed: Cell::new(Instant::now()) }
    }

    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Who holds it: `host:pid:n`.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub(crate) fn store(&self) -> &'a dyn Store {
        self.store
    }

    /// Renews the lease when a third of it has passed; [`Error::LeaseLost`] when another process
    /// has taken the report meanwhile (this one was stalled longer than the lease).
    pub(crate) fn keep(&self) -> Result<(), Error> {
        if self.renewed.get().elapsed() < self.length / 3 {
            return Ok(());
        }
        if !self.store.renew_claim(self.report.id, &self.holder, until(Timestamp::now(), self.length))? {
            return Err(Error::LeaseLost(self.report.id));
        }
        self.renewed.set(Instant::now());
        Ok(())
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.store.release_claim(self.report.id, &self.holder) {
            // The lease runs out by itself.
            tracing::warn!(report = %self.report.id, "cannot give the report up: {e}");
        }
    }
}

/// Claims report `id` (or the oldest that waits) for `holder` from now for `length`.
fn claim(store: &dyn Store, id: Option<ReportId>, holder: &str, length: Duration) -> Result<Claimed, Error> {
    let now = Timestamp::now();
    Ok(store.claim_report(id, holder, now, until(now, length))?)
}

fn until(now: Timestamp, length: Duration) -> Timestamp {
    now.add_secs(length.as_secs().max(1) as i64).unwrap_or(now)
}

/// Whether `holder` names a process of this machine that no longer runs.
fn gone(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else { return false };
    let ours = holder_host();
    let proc = std::path::Path::new("/proc");
    host == ours && pid.parse::<u32>().is_ok() && proc.join("self").exists() && !proc.join(pid).exists()
}

fn holder_host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

/// This process's name for a new lease: host, process id and a counter, so that two threads of
/// one process never share a lease.
fn holder() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{}:{}:{}", holder_host(), std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
