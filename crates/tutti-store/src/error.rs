//! The crate's one error type, [`StoreError`].
//!
//! Every variant names what went wrong in words a technician can act on: the offending path, field,
//! value or state. It must never carry SQL types: SQLite errors are turned into text here, so callers
//! never need (or get) `rusqlite` in their signatures.

use std::path::{Path, PathBuf};

use rusqlite::ffi;

/// Everything that can go wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A [`crate::StoreConfig`] field is out of range.
    #[error("invalid store configuration: {field} = {value}: {reason}")]
    Config {
        /// The configuration field, e.g. `writer_queue`.
        field: &'static str,
        /// The rejected value, as text.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The directory that should hold the database file could not be created.
    #[error("cannot create the store's directory {}: {detail}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        detail: String,
    },
    /// The database file could not be opened or configured (permissions, a directory in its place, …).
    #[error("cannot open the store at {}: {detail}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The file exists but is not a (healthy) Tutti database.
    #[error("the store at {} is corrupt or not a Tutti database: {detail}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// The schema could not be brought to the version this build needs.
    #[error("cannot migrate the store at {}: {detail}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// An argument was rejected before touching the database.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The argument, e.g. `slug` or `spec_json`.
        field: &'static str,
        /// The offending value (shortened when long).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A unique value is already taken, or the operation conflicts with the current state.
    /// `what` is stable: `username`, `ensemble slug`, `piece slug`, `show code`, `token`,
    /// `session token`, `guest token` (taken values); `membership` (already a member); `setup`
    /// (an account exists); `last owner`; `last admin`; `archived piece`; `no current spec`;
    /// `managed piece` (a configuration piece's slug belongs to an ensemble's piece).
    #[error("{}", conflict_message(what, value))]
    Conflict {
        /// What kind of value or state, e.g. `show code` or `setup`.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A referenced row does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What kind of row, e.g. `show`.
        what: &'static str,
        /// The key that was looked up.
        id: String,
    },
    /// A status change that the lifecycle does not allow (a piece's or a show's).
    #[error(
        "a {what} cannot go from {from} to {to} (allowed from {from}: {})",
        list_or_none(allowed)
    )]
    InvalidTransition {
        /// What changes status: `piece` or `show`.
        what: &'static str,
        /// The current status.
        from: String,
        /// The requested status.
        to: String,
        /// The statuses allowed from `from` (empty when `from` is final).
        allowed: Vec<String>,
    },
    /// A refresh token that was already used was presented again: its whole family (every access
    /// and refresh token issued from the same login) has been revoked, and that revocation is
    /// committed.
    #[error("refresh token reused: token family {family_id} revoked")]
    TokenReused {
        /// The revoked family.
        family_id: i64,
    },
    /// The token was revoked (logout, password change, deactivation) or its user is inactive.
    #[error("the token was revoked")]
    TokenRevoked,
    /// The token has expired.
    #[error("the token has expired")]
    TokenExpired,
    /// The writer queue is full; the operation (a snapshot) was dropped and counted.
    #[error("the store's writer queue is full ({capacity} operations); {what} dropped")]
    QueueFull {
        /// What was dropped, e.g. `snapshot`.
        what: &'static str,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The store was closed (or its writer thread is gone).
    #[error("the store is closed")]
    Closed,
    /// A batch transaction could not be begun or committed; nothing in it was written.
    #[error("cannot commit to the store at {}: {detail}", path.display())]
    Commit {
        /// The database file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// Any other database failure, with the operation that hit it.
    #[error("database error while {op}: {detail}")]
    Database {
        /// The operation, e.g. `reading a show`.
        op: &'static str,
        /// SQLite's message.
        detail: String,
    },
    /// A bug or a lost worker (e.g. a panicked thread); the detail says which.
    #[error("internal store error: {0}")]
    Internal(String),
}

fn conflict_message(what: &str, value: &str) -> String {
    match what {
        "setup" => format!("setup is closed: {value}"),
        "membership" => format!("already a member: {value}"),
        "last owner" | "last admin" | "archived piece" | "no current spec" | "managed piece" => {
            value.to_owned()
        }
        _ => format!("{what} {value:?} already exists"),
    }
}

fn list_or_none(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "none".to_owned()
    } else {
        allowed.join(", ")
    }
}

/// The transition error for `what` going `from → to`, with the allowed next statuses.
pub(crate) fn invalid_transition<S: std::fmt::Display>(
    what: &'static str,
    from: S,
    to: S,
    allowed: &[S],
) -> StoreError {
    StoreError::InvalidTransition {
        what,
        from: from.to_string(),
        to: to.to_string(),
        allowed: allowed.iter().map(ToString::to_string).collect(),
    }
}

/// Maps a SQLite error during `op` to [`StoreError::Database`].
pub(crate) fn db(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Database {
        op,
        detail: e.to_string(),
    }
}

/// Whether the error says the file is not a database or is damaged.
pub(crate) fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ffi::ErrorCode::NotADatabase | ffi::ErrorCode::DatabaseCorrupt)
    )
}

/// Whether the error is a UNIQUE or PRIMARY KEY constraint violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|err| {
        err.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
            || err.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    })
}

/// Maps an error met while opening/configuring the file at `path`.
pub(crate) fn open_error(path: &Path, what: &str, e: &rusqlite::Error) -> StoreError {
    if is_corruption(e) {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("{what}: {e}"),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            detail: format!("{what}: {e}"),
        }
    }
}
