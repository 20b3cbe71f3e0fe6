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
    /// `managed piece` (a configuration piece's slug belongs to an ensemble's piece); chat:
    /// `show room` (the show has a room), `read-only room`, `deleted message`, `direct room`
    /// (its members are fixed), `boost` (the same boost twice).
    #[error("{}", conflict_message(what, value))]
    Conflict {
        /// What kind of value or state, e.g. `show code` or `setup`.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// Chat moderation refused a post (the author is muted or banned in the room, slow mode
    /// asks them to wait, or the text holds a filtered word): nothing was stored.
    #[error("{0}")]
    ChatRefused(crate::chat::ChatRefusal),
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
    /// The data directory takes no writes: its disk is full, or its file system is read-only
    /// or failing. Nothing of the refused write was stored; reads still work, and writes
    /// succeed again by themselves once space or write access is back.
    #[error("cannot write to the store at {}: {} ({detail})", path.display(), problem.describe())]
    Storage {
        /// The database file.
        path: PathBuf,
        /// What is wrong with the storage.
        problem: StorageProblem,
        /// SQLite's message.
        detail: String,
    },
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

/// Why the data directory takes no writes (see [`StoreError::Storage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageProblem {
    /// No space left on the device.
    Full,
    /// The file system (or the file) is read-only.
    ReadOnly,
    /// The operating system failed a read or write (a failing or vanished disk).
    Io,
}

impl StorageProblem {
    /// A stable name: `full`, `read_only` or `io`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageProblem::Full => "full",
            StorageProblem::ReadOnly => "read_only",
            StorageProblem::Io => "io",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            StorageProblem::Full => "the disk is full",
            StorageProblem::ReadOnly => "the file system is read-only",
            StorageProblem::Io => "the disk failed a read or write",
        }
    }
}

/// The storage problem behind a SQLite error, if it is one.
pub(crate) fn storage_problem(e: &rusqlite::Error) -> Option<StorageProblem> {
    match e.sqlite_error_code()? {
        ffi::ErrorCode::DiskFull => Some(StorageProblem::Full),
        ffi::ErrorCode::ReadOnly => Some(StorageProblem::ReadOnly),
        // A write refused by a read-only mount surfaces as an I/O error; `refine` tells.
        ffi::ErrorCode::SystemIoFailure | ffi::ErrorCode::CannotOpen => Some(StorageProblem::Io),
        _ => None,
    }
}

/// An I/O failure on a file system mounted read-only is a read-only problem: asks the OS
/// whether the database file can be opened for writing (only on this error path).
pub(crate) fn refine(problem: StorageProblem, path: &Path) -> StorageProblem {
    const EROFS: i32 = 30;
    if problem != StorageProblem::Io {
        return problem;
    }
    match std::fs::OpenOptions::new().append(true).open(path) {
        Err(e) if e.raw_os_error() == Some(EROFS) => StorageProblem::ReadOnly,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => StorageProblem::ReadOnly,
        _ => problem,
    }
}

impl StoreError {
    /// Names the database file in a storage error raised where the path was not at hand.
    pub(crate) fn at_path(self, at: &Path) -> StoreError {
        match self {
            StoreError::Storage {
                path,
                problem,
                detail,
            } if path.as_os_str().is_empty() => StoreError::Storage {
                path: at.to_path_buf(),
                problem: refine(problem, at),
                detail,
            },
            other => other,
        }
    }
}

fn conflict_message(what: &str, value: &str) -> String {
    match what {
        "setup" => format!("setup is closed: {value}"),
        "membership" => format!("already a member: {value}"),
        "last owner" | "last admin" | "archived piece" | "no current spec" | "managed piece"
        | "read-only room" | "deleted message" | "direct room" => value.to_owned(),
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

std::thread_local! {
    /// The database file of the connection this thread writes through (the writer thread
    /// sets it), so a storage error raised deep in an operation names the file.
    static WRITER_PATH: std::cell::RefCell<PathBuf> = std::cell::RefCell::new(PathBuf::new());
}

/// Called once by the writer thread: the file its storage errors name.
pub(crate) fn set_writer_path(path: &Path) {
    WRITER_PATH.with(|p| *p.borrow_mut() = path.to_path_buf());
}

/// Maps a SQLite error during `op` to [`StoreError::Database`]; a storage problem (disk
/// full, read-only, I/O) becomes [`StoreError::Storage`], naming
/// the writer thread's database file (or filled in by the store before the error leaves it).
pub(crate) fn db(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match storage_problem(&e) {
        Some(problem) => {
            let path = WRITER_PATH.with(|p| p.borrow().clone());
            let problem = if path.as_os_str().is_empty() {
                problem
            } else {
                refine(problem, &path)
            };
            StoreError::Storage {
                path,
                problem,
                detail: format!("{op}: {e}"),
            }
        }
        None => StoreError::Database {
            op,
            detail: e.to_string(),
        },
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
