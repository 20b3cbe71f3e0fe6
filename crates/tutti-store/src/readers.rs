//! A small pool of read-only connections, used through `tokio::task::spawn_blocking`.
//!
//! A task first waits (asynchronously) for a permit, then runs its query on a blocking thread with
//! a connection it borrows from the pool. In WAL mode readers never block the writer and always see
//! the last committed state, so a read issued after an acknowledged write sees that write.
//!
//! Must never: run SQLite on an async task, write, or lose a connection when a query panics.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::{open_error, StoreError};

pub(crate) struct Readers {
    permits: Arc<Semaphore>,
    conns: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Opens `n` read-only connections to an existing, migrated database.
    pub(crate) fn open(path: &Path, n: usize, busy_timeout: Duration) -> Result<Self, StoreError> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| open_error(path, "opening a read connection", &e))?;
            conn.busy_timeout(busy_timeout)
                .map_err(|e| open_error(path, "setting busy_timeout on a read connection", &e))?;
            conns.push(conn);
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(n)),
            conns: Mutex::new(conns),
        })
    }

    /// Runs `f` on a pooled connection on tokio's blocking pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let lease = Lease {
                conn: pool.take(),
                pool: &pool,
            };
            match &lease.conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Internal(
                    "read pool had a permit but no connection".into(),
                )),
            }
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    fn take(&self) -> Option<Connection> {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }
}

/// Gives the connection back to the pool when dropped, even when the query panicked.
struct Lease<'a> {
    conn: Option<Connection>,
    pool: &'a Readers,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .conns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}
