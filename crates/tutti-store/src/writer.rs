//! The writer thread: the only connection that writes, fed by a bounded queue, committing many
//! operations per transaction (group commit).
//!
//! The loop blocks for the first queued operation, drains whatever else is already queued (up to
//! `max_batch`) into ONE `BEGIN IMMEDIATE` transaction, runs each operation inside its own
//! savepoint (so one failing operation rolls back alone and the rest of the batch still commits),
//! commits, and only then answers every operation's acknowledgement. With `synchronous=FULL` in WAL
//! mode, "acknowledged" therefore means "on disk".
//!
//! Must never: answer an acknowledgement before its transaction committed, run on an async task,
//! or stop serving because one operation failed or panicked.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::error::StoreError;
use crate::model::SnapshotRow;
use crate::ops;

/// One unit of work for the writer.
pub(crate) trait Job: Send {
    /// Runs inside the batch transaction, inside the job's own savepoint. Returns whether it
    /// succeeded; on `false` the savepoint is rolled back.
    fn apply(&mut self, conn: &Connection) -> bool;
    /// Called exactly once, after the batch's fate is known (`commit` is the batch's outcome).
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
    /// Whether this is a fire-and-forget snapshot (for the counters).
    fn is_snapshot(&self) -> bool {
        false
    }
}

/// A write whose caller awaits the committed result.
pub(crate) struct AckJob<T, F> {
    f: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> AckJob<T, F> {
    pub(crate) fn new(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        Self {
            f: Some(f),
            outcome: None,
            reply,
        }
    }
}

impl<T, F> Job for AckJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        let outcome = match self.f.take() {
            Some(f) => f(conn),
            None => Err(StoreError::Internal("write applied twice".into())),
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (self.outcome, commit) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(batch)) => Err(batch.clone()),
            (None, Ok(())) => Err(StoreError::Internal(
                "write panicked inside the writer thread".into(),
            )),
        };
        // The caller may have stopped waiting (a cancelled future); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// A fire-and-forget snapshot.
/// A snapshot, with the show's crowd when the show runtime sends one.
pub(crate) struct SnapshotJob(pub(crate) SnapshotRow, pub(crate) Option<Vec<u8>>);

impl Job for SnapshotJob {
    fn apply(&mut self, conn: &Connection) -> bool {
        ops::insert_snapshot(conn, &self.0).is_ok()
            && self.1.as_ref().is_none_or(|crowd| {
                ops::put_crowd(conn, self.0.show_id, self.0.tick, self.0.at_ms, crowd).is_ok()
            })
    }

    fn finish(self: Box<Self>, _commit: Result<(), &StoreError>) {}

    fn is_snapshot(&self) -> bool {
        true
    }
}

/// What travels on the queue.
pub(crate) enum Msg {
    Job(Box<dyn Job>),
    /// Commit everything queued before this, answer, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// A queued message with its slot in the queue; the slot is given back when the message's batch
/// is finished, so accepted-but-uncommitted work never exceeds the queue's capacity.
pub(crate) struct Envelope {
    pub(crate) msg: Msg,
    pub(crate) permit: OwnedSemaphorePermit,
}

/// The writer's counters (see [`crate::StoreStats`]).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) transactions_committed: AtomicU64,
    pub(crate) ops_committed: AtomicU64,
    pub(crate) ops_failed: AtomicU64,
    pub(crate) snapshots_written: AtomicU64,
    pub(crate) snapshots_dropped: AtomicU64,
    pub(crate) snapshots_failed: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
}

struct Pending {
    job: Box<dyn Job>,
    ok: bool,
    permit: OwnedSemaphorePermit,
}

/// The writer thread's body. Returns when a `Shutdown` arrives or every sender is gone.
pub(crate) fn run(
    mut conn: Connection,
    rx: Receiver<Envelope>,
    counters: &Counters,
    max_batch: usize,
    path: PathBuf,
) {
    crate::error::set_writer_path(&path);
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    let mut storage = StorageLog::default();
    loop {
        let Ok(first) = rx.recv() else {
            // Every `Store` was dropped without `close()`; everything sent was processed.
            checkpoint(&conn);
            return;
        };
        let mut shutdown = None;
        let mut next = Some(first);
        while let Some(env) = next.take() {
            match env.msg {
                Msg::Job(job) => batch.push(Pending {
                    job,
                    ok: false,
                    permit: env.permit,
                }),
                Msg::Shutdown(ack) => {
                    shutdown = Some(ack);
                    break;
                }
            }
            if batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        let outcome = commit_batch(&mut conn, &mut batch, counters, &path);
        storage.after(outcome);
        if let Some(ack) = shutdown {
            checkpoint(&conn);
            drop(conn);
            let _ = ack.send(());
            return;
        }
    }
}

/// Says once, in the log, that the data directory stopped taking writes (naming the file
/// and why), and once that it takes them again.
#[derive(Default)]
struct StorageLog {
    down: bool,
}

impl StorageLog {
    fn after(&mut self, outcome: Option<Result<(), StoreError>>) {
        match outcome {
            Some(Err(e @ StoreError::Storage { .. })) if !self.down => {
                self.down = true;
                tracing::error!(error = %e, "the store takes no writes; performer commands and API writes are refused until it does (the show goes on from memory)");
            }
            Some(Ok(())) if self.down => {
                self.down = false;
                tracing::warn!("the store takes writes again");
            }
            _ => {}
        }
    }
}

/// Copies the WAL back into the database file where no reader prevents it; best effort.
fn checkpoint(conn: &Connection) {
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}

/// Runs and commits one batch; returns the transaction's outcome (`None` for an empty one).
fn commit_batch(
    conn: &mut Connection,
    batch: &mut Vec<Pending>,
    counters: &Counters,
    path: &std::path::Path,
) -> Option<Result<(), StoreError>> {
    if batch.is_empty() {
        return None;
    }
    let commit_error = |what: &str, e: rusqlite::Error| match crate::error::storage_problem(&e) {
        Some(problem) => StoreError::Storage {
            path: path.to_path_buf(),
            problem: crate::error::refine(problem, path),
            detail: format!("{what}: {e}"),
        },
        None => StoreError::Commit {
            path: path.to_path_buf(),
            detail: format!("{what}: {e}"),
        },
    };
    let outcome = (|| {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| commit_error("begin", e))?;
        for pending in batch.iter_mut() {
            let sp = tx.savepoint().map_err(|e| commit_error("savepoint", e))?;
            let job = &mut pending.job;
            pending.ok = catch_unwind(AssertUnwindSafe(|| job.apply(&sp))).unwrap_or(false);
            if pending.ok {
                sp.commit()
                    .map_err(|e| commit_error("release savepoint", e))?;
            } else {
                // Rolls back to the savepoint and releases it: only this job is undone.
                sp.finish()
                    .map_err(|e| commit_error("roll back savepoint", e))?;
            }
        }
        tx.commit().map_err(|e| commit_error("commit", e))
    })();

    let total = batch.len() as u64;
    let (mut ok, mut snaps_ok, mut snaps_failed) = (0u64, 0u64, 0u64);
    for p in batch.iter() {
        let committed = outcome.is_ok() && p.ok;
        ok += u64::from(committed);
        if p.job.is_snapshot() {
            snaps_ok += u64::from(committed);
            snaps_failed += u64::from(!committed);
        }
    }
    if outcome.is_ok() {
        counters
            .transactions_committed
            .fetch_add(1, Ordering::Relaxed);
        counters.largest_batch.fetch_max(ok, Ordering::Relaxed);
    }
    counters.ops_committed.fetch_add(ok, Ordering::Relaxed);
    counters.ops_failed.fetch_add(total - ok, Ordering::Relaxed);
    counters
        .snapshots_written
        .fetch_add(snaps_ok, Ordering::Relaxed);
    counters
        .snapshots_failed
        .fetch_add(snaps_failed, Ordering::Relaxed);

    // Acknowledge only now, after COMMIT returned. Each queue slot is freed before its
    // acknowledgement, so a caller that saw its write acknowledged also sees the slot free.
    for Pending { job, permit, .. } in batch.drain(..) {
        drop(permit);
        job.finish(outcome.as_ref().map(|_| ()));
    }
    Some(outcome)
}
