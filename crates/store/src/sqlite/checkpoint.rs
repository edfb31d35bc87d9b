//! Checkpoints of the WAL on a thread of their own while a report is written.
//!
//! A checkpoint copies the pages that transactions appended to the WAL into the database file.
//! SQLite runs one in the committing thread whenever the WAL passes 1,000 pages: a seventh of
//! the event writer's time, the thread that limits ingest. Here a second connection does it
//! after each of the writer's commits, while the writer goes on with the next batch. The WAL
//! starts over from its beginning only when a transaction begins with every page copied, so
//! once it has grown past [`RESTART_PAGES`] the writer waits for the copy of its last commit;
//! it waits too when the copies fall more than [`BEHIND`] commits behind (a busy machine), so
//! that the WAL stays bounded either way.
//! (Measured in BENCHMARKS.md: 1,024 and 2,048 pages were slower, as was SQLite's own
//! checkpoint at 8,000.)

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::Result;

/// The WAL's size, in pages, past which the writer lets it start over: 64 MB.
pub(super) const RESTART_PAGES: i64 = 4_096;

/// Commits not yet copied past which the writer waits.
const BEHIND: u64 = 4;

/// Copy what the WAL holds, commit `.0` included; answer when done if asked to.
struct Job(u64, Option<SyncSender<()>>);

pub(super) struct Checkpointer {
    jobs: Option<SyncSender<Job>>,
    restart: i64,
    /// The writer's commits so far.
    commits: u64,
    last: Arc<LastCopy>,
    thread: Option<JoinHandle<()>>,
}

/// What the last copy left: pages in the WAL, and the commits it took in.
#[derive(Default)]
struct LastCopy {
    pages: AtomicI64,
    commits: AtomicU64,
}

impl Checkpointer {
    /// Starts the thread, with a connection of its own to the store at `path`; the WAL starts
    /// over once it holds `restart` pages.
    pub(super) fn start(path: &Path, restart: i64) -> Result<Checkpointer> {
        let conn = super::connect(path)?;
        let (jobs, queue) = sync_channel::<Job>(1);
        let last = Arc::new(LastCopy::default());
        let shared = Arc::clone(&last);
        let thread = std::thread::Builder::new().name("farol-checkpoint".into()).spawn(move || {
            for Job(commit, answer) in queue {
                // (busy, pages in the WAL, pages copied); an error leaves the copy to the next
                // job, or to whichever connection next checkpoints.
                if let Ok(n) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                    shared.pages.store(n, Ordering::Relaxed);
                }
                shared.commits.store(commit, Ordering::Relaxed);
                if let Some(answer) = answer {
                    let _ = answer.send(());
                }
            }
        })?;
        Ok(Checkpointer { jobs: Some(jobs), restart, commits: 0, last, thread: Some(thread) })
    }

    /// After a commit: its pages are copied on the checkpointer's thread (unless a copy is
    /// already waiting, which will take them too).
    pub(super) fn committed(&mut self) {
        self.commits += 1;
        if let Some(jobs) = &self.jobs {
            let _ = jobs.try_send(Job(self.commits, None));
        }
    }

    /// Before a transaction: when the WAL has grown past its size to restart, or the copies
    /// fall behind, waits until what it holds is copied (the transaction then starts it over).
    pub(super) fn before_write(&self) {
        let Some(jobs) = &self.jobs else { return };
        let behind = self.commits - self.last.commits.load(Ordering::Relaxed).min(self.commits);
        if self.last.pages.load(Ordering::Relaxed) < self.restart && behind <= BEHIND {
            return;
        }
        let (answer, wait) = sync_channel(1);
        if jobs.send(Job(self.commits, Some(answer))).is_ok() {
            let _ = wait.recv();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // The thread ends with the queue, after the copies asked for.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a checkpoint that lets it start over, the WAL would hold every transaction: 40
    /// of about 7 pages each.
    #[test]
    fn the_wal_starts_over_while_a_writer_keeps_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("farol.db");
        let conn = super::super::connect(&path).unwrap();
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB)").unwrap();
        let mut checkpoints = Checkpointer::start(&path, 16).unwrap();
        let wal = dir.path().join("farol.db-wal");
        let mut largest = 0;
        for _ in 0..40 {
            checkpoints.before_write();
            conn.execute("INSERT INTO t (x) VALUES (zeroblob(100000))", []).unwrap();
            checkpoints.committed();
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        drop(checkpoints);
        assert!(largest < 40 * 16_384 * 4, "the WAL grew to {largest} bytes");
        let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 40);
    }
}
