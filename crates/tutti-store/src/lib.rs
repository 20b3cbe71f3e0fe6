//! Tutti's embedded SQLite persistence.
//!
//! # What it stores
//! * **pieces** (slug, title) and their **spec versions**: immutable JSON documents numbered 1, 2, …
//!   per piece, of which at most one is `current` (a partial unique index makes the database
//!   itself refuse a second one);
//! * **shows** of a piece (rehearsal or performance) with the spec version they run and a checked
//!   lifecycle `scheduled → live ⇄ paused → ended`;
//! * **snapshots** of a show's consensus state (about 1 Hz), so an interrupted show resumes from its
//!   latest state;
//! * every **override** (who, what, which parameter, when);
//! * since migration 2: **users** (argon2id PHC strings, never passwords), cookie **sessions**,
//!   access/refresh **token families** (SHA-256 hashes, never secrets), audience **guests**,
//!   **ensembles** and memberships, the piece lifecycle, spec authorship, **idempotency keys**,
//!   **wizard sessions**, the **outbox** of events and the webhook tables (see below).
//!
//! # Threading model
//! * ONE writer thread owns the only read-write connection. Every write is queued on a bounded
//!   `std::sync::mpsc::sync_channel` (capacity [`StoreConfig::writer_queue`]). The writer blocks for
//!   the first queued operation, drains whatever else is queued (up to [`StoreConfig::max_batch`])
//!   into ONE transaction (group commit), each operation in its own savepoint so a failing one is
//!   undone alone, commits, and then answers each operation's `tokio::sync::oneshot`.
//! * Awaited writes wait *asynchronously* for a queue slot when the queue is full (backpressure that
//!   parks the task, never the thread). Snapshots never wait: [`Store::record_snapshot`] takes a
//!   slot only if one is free, otherwise it drops the snapshot, counts it in
//!   [`StoreStats::snapshots_dropped`] and returns [`StoreError::QueueFull`].
//! * Reads use a small pool of read-only connections ([`StoreConfig::readers`]) on tokio's blocking
//!   pool (`spawn_blocking`). [`Store::open`] and [`Store::stats`] are synchronous; `open` does file
//!   I/O, so call it at start-up (or inside `spawn_blocking`).
//! * [`Store::close`] commits everything queued before it, stops and joins the writer.
//! * Dropping a write's future after it was queued does not cancel it: it still commits (the
//!   acknowledgement just has nobody to go to).
//!
//! # Durability promise
//! The database runs in WAL mode with `synchronous=FULL` and foreign keys on. An async write
//! returns `Ok` only after the transaction holding it has committed, so anything acknowledged
//! survives `kill -9` of the process (and, with `FULL`, a power cut on honest hardware). Snapshots
//! are best-effort: under overload the newest ones may be dropped (and counted), never the tick.
//!
//! # Clock
//! Times are unix milliseconds passed in by the caller, except the `created_at_ms` of rows made by
//! [`Store::ensure_piece`] and [`Store::create_show`], which those two read from the system clock
//! when called.
//!
//! # Must never
//! Leak SQL types upward (the API is plain structs and [`StoreError`]), block an async task (SQLite
//! runs only on the writer thread and the blocking pool), block the tick (snapshots are
//! `try`-only), or acknowledge a write before it is committed.
//!
//! # Management data (issue 6, schema migration 2)
//! Accounts (users, cookie sessions, access/refresh token families, guests), ensembles and
//! memberships, the piece lifecycle, authored spec drafts and publishing, idempotency keys,
//! wizard sessions and the outbox. Every operation is one closure on the internal `Store::write`
//! (one savepoint in the batch transaction) and appends its outbox event(s) in that same closure,
//! so an event commits exactly when its change does. `accounts` and `manage` hold these
//! operations (SQL and `Store` methods); `ops` holds the original ones and `append_event`.
//!
//! # The performance memory (issue 13, schema migrations 4 and 5)
//! Episodes of any kind, their steps, their moments packed in chunks, FTS5 over their text and
//! the journal of failed derived updates: `memory` holds the SQL and the `Store::memory_*`
//! methods; the `tutti-memory` crate gives them meaning. A memory write is a list of units, each
//! all or nothing, all in one batch transaction (group commit): they run together in one
//! savepoint, and one savepoint each only after one of them failed.
//!
//! # Chat (issue 12, schema migration 7)
//! Rooms (open, closed, direct, show), memberships with involvement and the last `seq` read,
//! and one event log per room whose `seq` has no gaps: posts, edits, deletions and boosts are
//! each one event, appended with the derived messages, boosts and FTS5 rows in one savepoint,
//! so [`Store::chat_events_after`] gives a reconnecting client exactly what it missed. A send is
//! idempotent on (room, author, client message id) and acknowledged only after commit. Search
//! quotes every word of the user's input and reads only the searcher's rooms. `chat` holds the
//! SQL and the `Store::chat_*` methods; the `tutti-chat` crate validates and renders text.
//!
//! # PostgreSQL (issue 14, feature `postgres`): the schema only, so far
//! `pg_schema` holds every migration translated to PostgreSQL's dialect, same numbering, tables,
//! columns and constraints (FTS5 becomes generated `tsvector` columns), and applies them; every
//! store operation still runs on SQLite.

mod accounts;
mod chat;
mod error;
mod manage;
mod memory;
mod model;
mod ops;
mod outbox;
#[cfg(feature = "postgres")]
pub mod pg_schema;
mod readers;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};

pub use error::{StorageProblem, StoreError};
pub use model::{
    AccessTokenRow, AuthSessionRow, EnsembleRole, EnsembleRow, EventKind, GuestRow,
    IdempotencyClaim, IdempotencyRow, KeepCredential, MemberRow, NewAuthSession, NewEvent,
    NewIdempotencyClaim, NewOverride, NewPiece, NewShow, NewSpecDraft, NewTokenPair, NewUser,
    NewWizardSession, OverrideRow, Page, PieceRow, PieceStatus, RotateRefresh, ShowAccess,
    ShowKind, ShowRow, ShowStatus, SnapshotRow, SpecStatus, SpecVersionRow, StoreStats, TokenHash,
    TokenPairRow, UserCredentials, UserRole, UserRow, WizardSessionRow, IDEMPOTENCY_IN_FLIGHT,
    MAX_CODE_LEN, MAX_CROWD_BYTES, MAX_DETAIL_JSON, MAX_DISPLAY_NAME_LEN, MAX_EVENT_JSON,
    MAX_IDEMPOTENCY_KEY_LEN, MAX_NAME_LEN, MAX_NOTE_LEN, MAX_PAGE_LIMIT, MAX_PASSWORD_HASH_LEN,
    MAX_RESPONSE_JSON, MAX_SLUG_LEN, MAX_SPEC_JSON, MAX_STATE_JSON, MAX_TITLE_LEN,
    MAX_USERNAME_LEN, MAX_WIZARD_STATE_JSON,
};

pub use chat::{
    filter_match, sha256_hex, ChatAccess, ChatAttachmentRow, ChatAudienceRow, ChatBoostRow,
    ChatEvent, ChatEventKind, ChatEventPage, ChatMemberRow, ChatMessageRow, ChatModAction,
    ChatModLogRow, ChatPosted, ChatRecentSearch, ChatRefusal, ChatRestrictionKind,
    ChatRestrictionRow, ChatRoomKind, ChatRoomListing, ChatRoomRow, ChatRoomSettings,
    ChatSearchHit, ChatSettingsChange, ChatSnippetPart, Involvement, NewChatAttachment,
    NewChatMessage, NewChatRoom, UploadSweep, ALL_TALK, AUDIENCE_PASSWORD_HASH,
    CHAT_RECENT_SEARCHES, MAX_CHAT_ATTACHMENT_NAME_CHARS, MAX_CHAT_AUDIENCE_DELAY_S,
    MAX_CHAT_AUDIENCE_NAME_CHARS, MAX_CHAT_BOOST_CHARS, MAX_CHAT_CLIENT_ID_LEN,
    MAX_CHAT_DIRECT_MEMBERS, MAX_CHAT_FILTER_WORDS, MAX_CHAT_FILTER_WORD_CHARS,
    MAX_CHAT_INITIAL_MEMBERS, MAX_CHAT_MESSAGE_ATTACHMENTS, MAX_CHAT_MOD_LOG_PAGE, MAX_CHAT_PAGE,
    MAX_CHAT_REASON_CHARS, MAX_CHAT_ROOM_NAME_CHARS, MAX_CHAT_SEARCH_CHARS, MAX_CHAT_SEARCH_HITS,
    MAX_CHAT_SLOW_MODE_S, MAX_CHAT_TEXT_CHARS,
};
pub use chat::{
    ChatBotRow, NewChatBot, BOT_PASSWORD_HASH, MAX_CHAT_BOT_NAME_CHARS, MAX_CHAT_BOT_URL_LEN,
};
pub use chat::{
    ChatFlag, ChatShowMessage, ChatShowState, MAX_CHAT_ANNOUNCEMENT_CHARS, MAX_CHAT_PINS,
};
pub use memory::{
    MemChunkRow, MemContext, MemCounts, MemEpisodeFull, MemEpisodeRow, MemJournalRow, MemOp,
    MemStatus, MemStepRow, MemTextHit, MemWrite, MemWriteDone, MAX_MEM_CHUNK, MAX_MEM_KEY_LEN,
    MAX_MEM_KIND_LEN, MAX_MEM_STEP_JSON, MAX_MEM_TEXT_LEN,
};
pub use outbox::{
    validate_event_kind, AttemptOutcome, DeliveryRow, DeliveryStatus, DueDelivery, EventScope,
    NewWebhook, OutboxEvent, RecordedAttempt, RelayBatch, WebhookRow, MAX_DELIVERY_ERROR_LEN,
    MAX_EVENT_KIND_LEN, MAX_WEBHOOK_KINDS, MAX_WEBHOOK_URL_LEN,
};

use crate::error::open_error;
use crate::readers::Readers;
use crate::writer::{AckJob, Counters, Envelope, Msg, SnapshotJob};

/// Where the store lives and how its threads are sized. Build it with [`StoreConfig::new`] and
/// adjust fields as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The database file (e.g. `data/tutti.db`); its parent directory is created if missing.
    pub path: PathBuf,
    /// Capacity of the writer queue, in operations (1..=1,000,000; default 4096).
    pub writer_queue: usize,
    /// Read-only connections in the pool (1..=64; default 4).
    pub readers: usize,
    /// Most operations per transaction (1..=100,000; default 512).
    pub max_batch: usize,
    /// How long a connection waits for a lock held by another process before failing (default 5 s).
    pub busy_timeout: Duration,
}

impl StoreConfig {
    /// Default writer queue capacity.
    pub const DEFAULT_WRITER_QUEUE: usize = 4096;
    /// Default number of read connections.
    pub const DEFAULT_READERS: usize = 4;
    /// Default largest batch.
    pub const DEFAULT_MAX_BATCH: usize = 512;
    /// Default busy timeout.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// The defaults for a database file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            writer_queue: Self::DEFAULT_WRITER_QUEUE,
            readers: Self::DEFAULT_READERS,
            max_batch: Self::DEFAULT_MAX_BATCH,
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        let range = |field: &'static str, value: usize, max: usize| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(StoreError::Config {
                    field,
                    value: value.to_string(),
                    reason: "out of range",
                })
            }
        };
        range("writer_queue", self.writer_queue, 1_000_000)?;
        range("readers", self.readers, 64)?;
        range("max_batch", self.max_batch, 100_000)?;
        if self.path.as_os_str().is_empty() {
            return Err(StoreError::Config {
                field: "path",
                value: String::new(),
                reason: "must name a file",
            });
        }
        Ok(())
    }
}

/// A handle to the store. Cheap to clone; all clones share one writer and one read pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    queue: SyncSender<Envelope>,
    slots: Arc<Semaphore>,
    capacity: usize,
    counters: Arc<Counters>,
    readers: Arc<Readers>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Bumped after every committed write that appended outbox events.
    events: watch::Sender<u64>,
    /// The file was opened read-only (the file system or its permissions refuse writes).
    read_only: bool,
    /// Attachment files: uploads share it, the sweep of unneeded files holds it alone, so a
    /// file is never removed between an upload finding it there and its row committing.
    blobs: tokio::sync::RwLock<()>,
    /// A chat bot was ever made (read at open, set by [`Store::chat_create_bot`]; never
    /// cleared, so it may say yes after the last bot went): posts skip the bot lookups without.
    bots: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("stats", &self.stats())
            .finish()
    }
}

fn validate_snapshot(s: &SnapshotRow) -> Result<(), StoreError> {
    model::validate_time("at_ms", s.at_ms)?;
    model::validate_json("state_json", &s.state_json, MAX_STATE_JSON)?;
    if let Some(h) = &s.health_json {
        model::validate_json("health_json", h, MAX_STATE_JSON)?;
    }
    if i64::try_from(s.tick).is_err() {
        return Err(StoreError::Invalid {
            field: "tick",
            value: s.tick.to_string(),
            reason: format!("larger than {}", i64::MAX),
        });
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Opens (creating if needed) the read-write connection, configures it and migrates the schema.
fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    if path.is_dir() {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            detail: "a directory is in the way of the database file".into(),
        });
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(path, "opening the database file", &e))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| open_error(path, "setting busy_timeout", &e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| open_error(path, "switching to WAL mode", &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            detail: format!("SQLite refused WAL mode (journal_mode is {mode:?})"),
        });
    }
    // temp_store = MEMORY: the sub-journals of the per-operation savepoints stay in memory
    // instead of a temporary file (they only matter until the batch commits).
    for (pragma, value) in [
        ("synchronous", "FULL"),
        ("foreign_keys", "ON"),
        ("temp_store", "MEMORY"),
    ] {
        conn.pragma_update(None, pragma, value)
            .map_err(|e| open_error(path, "configuring the connection", &e))?;
    }
    check_identity(&conn, path)?;
    schema::MIGRATIONS
        .to_latest(&mut conn)
        .map_err(|e| StoreError::Migrate {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    Ok(conn)
}

/// Refuses a file that is some other application's SQLite database or from a newer Tutti.
fn check_identity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let read = |sql: &str| -> Result<i64, StoreError> {
        conn.query_row(sql, [], |r| r.get(0))
            .map_err(|e| open_error(path, "reading the file header", &e))
    };
    let app_id = read("PRAGMA application_id")?;
    let user_version = read("PRAGMA user_version")?;
    let tables = read("SELECT count(*) FROM sqlite_schema WHERE type = 'table'")?;
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    if app_id == 0 && user_version == 0 && tables == 0 {
        return Ok(()); // a new, empty file
    }
    if app_id != i64::from(schema::APPLICATION_ID) {
        return Err(corrupt(format!(
            "a SQLite database of another application (application_id {app_id}, {tables} tables)"
        )));
    }
    let known = i64::try_from(schema::SCHEMA_VERSION).unwrap_or(i64::MAX);
    if user_version > known {
        return Err(StoreError::Migrate {
            path: path.to_path_buf(),
            detail: format!(
                "schema version {user_version} was written by a newer Tutti (this build knows up to {known})"
            ),
        });
    }
    Ok(())
}

impl Store {
    /// Opens the store at `cfg.path`, creating the directory and file and migrating the schema as
    /// needed, then starts the writer thread. Blocking (file I/O); call at start-up.
    pub fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        cfg.validate()?;
        let path = cfg.path.clone();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::CreateDir {
                path: parent.to_path_buf(),
                detail: e.to_string(),
            })?;
        }
        let conn = open_writer(&path, cfg.busy_timeout)?;
        // SQLite opens a file it may not write read-only rather than failing: the store then
        // serves reads and refuses every write with `StoreError::Storage`.
        let read_only = conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false);
        let readers = Arc::new(Readers::open(&path, cfg.readers, cfg.busy_timeout)?);
        let bots = chat::bots_exist(&conn);

        let (queue, rx) = sync_channel(cfg.writer_queue);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread_path = path.clone();
        let max_batch = cfg.max_batch;
        let handle = std::thread::Builder::new()
            .name("tutti-store-writer".into())
            .spawn(move || writer::run(conn, rx, &thread_counters, max_batch, thread_path))
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;

        Ok(Store {
            inner: Arc::new(Inner {
                path,
                queue,
                slots: Arc::new(Semaphore::new(cfg.writer_queue)),
                capacity: cfg.writer_queue,
                counters,
                readers,
                writer: Mutex::new(Some(handle)),
                events: watch::Sender::new(0),
                read_only,
                blobs: tokio::sync::RwLock::new(()),
                bots: std::sync::atomic::AtomicBool::new(bots),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the database file could only be opened read-only (a read-only file system or
    /// file): reads work, every write is refused with [`StoreError::Storage`].
    pub fn read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Queues `msg` in a slot the caller already holds. The slot guarantees room in the channel.
    fn enqueue(&self, msg: Msg, permit: OwnedSemaphorePermit) -> Result<(), StoreError> {
        match self.inner.queue.try_send(Envelope { msg, permit }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
            Err(TrySendError::Full(_)) => Err(StoreError::Internal(
                "writer queue full although a slot was held".into(),
            )),
        }
    }

    /// Runs `f` on the writer thread inside the next batch transaction and returns its result
    /// once that transaction has committed. Waits asynchronously for a queue slot if needed.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.slots)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let (reply, ack) = oneshot::channel();
        self.enqueue(Msg::Job(Box::new(AckJob::new(f, reply))), permit)?;
        ack.await
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| e.at_path(&self.inner.path))
    }

    /// [`Store::write`] for an operation that appends outbox events: wakes
    /// [`Store::events_watch`] receivers once it has committed.
    async fn write_ev<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let out = self.write(f).await;
        if out.is_ok() {
            self.notify_events();
        }
        out
    }

    /// Tells [`Store::events_watch`] receivers that outbox events were committed. Call after a
    /// committed write that appended events (`write_ev` does it itself).
    pub(crate) fn notify_events(&self) {
        self.inner.events.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose value changes after every committed write that appended outbox events
    /// (the value is a counter, not an event id): the relay and event streams wait on
    /// `changed()` and then read the outbox.
    pub fn events_watch(&self) -> watch::Receiver<u64> {
        self.inner.events.subscribe()
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.readers.run(f).await
    }

    /// Makes sure the piece `slug` exists with `spec_json` as its current spec, atomically:
    /// creates the piece and version 1 (`current`) if absent; updates the title if it differs; if
    /// the current spec differs as JSON (formatting and key order ignored), inserts the next
    /// version as `current` and marks the previous one `superseded`. Returns the piece and its
    /// current version. `created_at_ms` of new rows is read from the system clock. A slug that
    /// belongs to an ensemble's piece is [`StoreError::Conflict`] (`what: "managed piece"`).
    pub async fn ensure_piece(
        &self,
        slug: &str,
        title: &str,
        spec_json: &str,
    ) -> Result<(PieceRow, SpecVersionRow), StoreError> {
        model::validate_slug(slug)?;
        model::validate_text("title", title, MAX_TITLE_LEN)?;
        model::validate_json("spec_json", spec_json, MAX_SPEC_JSON)?;
        let (slug, title, spec_json) = (slug.to_owned(), title.to_owned(), spec_json.to_owned());
        let now = now_ms();
        self.write_ev(move |c| ops::ensure_piece(c, &slug, &title, &spec_json, now))
            .await
    }

    /// Creates a show in status `scheduled`. The spec version must belong to the piece. A taken
    /// `code` is [`StoreError::Conflict`]. `created_at_ms` is read from the system clock.
    pub async fn create_show(
        &self,
        piece_id: i64,
        spec_version_id: i64,
        code: &str,
        kind: ShowKind,
    ) -> Result<ShowRow, StoreError> {
        model::validate_code(code)?;
        let code = code.to_owned();
        let now = now_ms();
        self.write_ev(move |c| ops::create_show(c, piece_id, spec_version_id, &code, kind, now))
            .await
    }

    /// Moves a show along its lifecycle (`scheduled → live`, `live ⇄ paused`,
    /// `live | paused → ended`); anything else is [`StoreError::InvalidTransition`]. Going live
    /// the first time sets `started_at_ms`, ending sets `ended_at_ms`, both to `at_ms`.
    pub async fn set_show_status(
        &self,
        show_id: i64,
        status: ShowStatus,
        at_ms: i64,
    ) -> Result<ShowRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write_ev(move |c| ops::set_show_status(c, show_id, status, at_ms))
            .await
    }

    /// The show with this join code.
    pub async fn show_by_code(&self, code: &str) -> Result<Option<ShowRow>, StoreError> {
        let code = code.to_owned();
        self.read(move |c| ops::show_by_code(c, &code)).await
    }

    /// The show with this id.
    pub async fn show(&self, id: i64) -> Result<Option<ShowRow>, StoreError> {
        self.read(move |c| ops::show(c, id)).await
    }

    /// Every show that has not ended (scheduled, live or paused), oldest first: the shows to
    /// resume after a restart.
    pub async fn active_shows(&self) -> Result<Vec<ShowRow>, StoreError> {
        self.read(ops::active_shows).await
    }

    /// The spec version with this id.
    pub async fn spec_version(&self, id: i64) -> Result<Option<SpecVersionRow>, StoreError> {
        self.read(move |c| ops::spec_version(c, id)).await
    }

    /// The piece's current spec version, if it has one.
    pub async fn current_spec(&self, piece_id: i64) -> Result<Option<SpecVersionRow>, StoreError> {
        self.read(move |c| ops::current_spec(c, piece_id)).await
    }

    /// Every version of the piece's spec, oldest first.
    pub async fn spec_versions(&self, piece_id: i64) -> Result<Vec<SpecVersionRow>, StoreError> {
        self.read(move |c| ops::spec_versions(c, piece_id)).await
    }

    /// The piece with this slug.
    pub async fn piece_by_slug(&self, slug: &str) -> Result<Option<PieceRow>, StoreError> {
        let slug = slug.to_owned();
        self.read(move |c| ops::piece_by_slug(c, &slug)).await
    }

    /// Queues a snapshot without ever waiting. When the queue is full the snapshot is dropped,
    /// counted in [`StoreStats::snapshots_dropped`], and [`StoreError::QueueFull`] is returned
    /// (callers on the tick usually ignore it). A snapshot for a tick already stored replaces it.
    /// A snapshot that fails in the writer (e.g. unknown show) is counted in
    /// [`StoreStats::snapshots_failed`].
    pub fn record_snapshot(&self, s: SnapshotRow) -> Result<(), StoreError> {
        validate_snapshot(&s)?;
        let permit = self.snapshot_slot()?;
        self.enqueue(Msg::Job(Box::new(SnapshotJob(s, None))), permit)
    }

    /// Like [`Store::record_snapshot`], and replaces the show's crowd (its participants as of
    /// this snapshot, in a format the show runtime owns) in the same transaction. Never waits.
    pub fn record_snapshot_with_crowd(
        &self,
        s: SnapshotRow,
        crowd: Vec<u8>,
    ) -> Result<(), StoreError> {
        validate_snapshot(&s)?;
        if crowd.len() > MAX_CROWD_BYTES {
            return Err(StoreError::Invalid {
                field: "crowd",
                value: format!("{} bytes", crowd.len()),
                reason: format!("larger than {MAX_CROWD_BYTES} bytes"),
            });
        }
        let permit = self.snapshot_slot()?;
        self.enqueue(Msg::Job(Box::new(SnapshotJob(s, Some(crowd)))), permit)
    }

    /// The show's crowd as of its latest snapshot (the tick, and the blob written by
    /// [`Store::record_snapshot_with_crowd`]).
    pub async fn latest_crowd(&self, show_id: i64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.read(move |c| ops::crowd(c, show_id)).await
    }

    /// A queue slot for a snapshot, if one is free (else the snapshot is counted as dropped).
    fn snapshot_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        match Arc::clone(&self.inner.slots).try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(TryAcquireError::NoPermits) => {
                self.inner
                    .counters
                    .snapshots_dropped
                    .fetch_add(1, Ordering::Relaxed);
                Err(StoreError::QueueFull {
                    what: "snapshot",
                    capacity: self.inner.capacity,
                })
            }
            Err(TryAcquireError::Closed) => Err(StoreError::Closed),
        }
    }

    /// Writes a batch of snapshots in one transaction, awaiting the commit (importing a
    /// recorded show, generating a synthetic one). A bad row fails the whole batch.
    pub async fn import_snapshots(&self, rows: Vec<SnapshotRow>) -> Result<(), StoreError> {
        for s in &rows {
            validate_snapshot(s)?;
        }
        self.write(move |c| {
            for s in &rows {
                ops::insert_snapshot(c, s)?;
            }
            Ok(())
        })
        .await
    }

    /// Logs an override; returns its id once committed.
    pub async fn record_override(&self, o: NewOverride) -> Result<i64, StoreError> {
        model::validate_time("at_ms", o.at_ms)?;
        model::validate_text("actor", &o.actor, MAX_NAME_LEN)?;
        model::validate_text("param", &o.param, MAX_NAME_LEN)?;
        model::validate_text("action", &o.action, MAX_NAME_LEN)?;
        model::validate_json("detail_json", &o.detail_json, MAX_DETAIL_JSON)?;
        self.write_ev(move |c| ops::insert_override(c, &o)).await
    }

    /// The show's snapshot with the highest tick.
    pub async fn latest_snapshot(&self, show_id: i64) -> Result<Option<SnapshotRow>, StoreError> {
        self.read(move |c| ops::latest_snapshot(c, show_id)).await
    }

    /// Up to `limit` of the show's snapshots with `tick > after_tick` (all when `None`), in tick
    /// order; page by passing the last tick seen.
    pub async fn snapshots(
        &self,
        show_id: i64,
        after_tick: Option<u64>,
        limit: usize,
    ) -> Result<Vec<SnapshotRow>, StoreError> {
        self.read(move |c| ops::snapshots(c, show_id, after_tick, limit))
            .await
    }

    /// Every override logged for the show, in commit order.
    pub async fn overrides(&self, show_id: i64) -> Result<Vec<OverrideRow>, StoreError> {
        self.read(move |c| ops::overrides(c, show_id)).await
    }

    /// Returns once everything queued before this call (snapshots included) has been committed
    /// or has failed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await
    }

    /// The writer's counters (atomics; never blocks).
    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.counters;
        let free = self.inner.slots.available_permits();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        StoreStats {
            queued: self.inner.capacity.saturating_sub(free) as u64,
            queue_capacity: self.inner.capacity as u64,
            transactions_committed: load(&c.transactions_committed),
            ops_committed: load(&c.ops_committed),
            ops_failed: load(&c.ops_failed),
            snapshots_written: load(&c.snapshots_written),
            snapshots_dropped: load(&c.snapshots_dropped),
            snapshots_failed: load(&c.snapshots_failed),
            largest_batch: load(&c.largest_batch),
        }
    }

    /// Commits everything queued before this call, stops the writer and waits for its thread.
    /// Writes through other clones afterwards fail with [`StoreError::Closed`]; reads keep working
    /// until the last clone is dropped. Closing twice is fine.
    pub async fn close(self) -> Result<(), StoreError> {
        if let Ok(permit) = Arc::clone(&self.inner.slots).acquire_owned().await {
            let (done, finished) = oneshot::channel();
            let sent = self.enqueue(Msg::Shutdown(done), permit);
            // Nothing queued from now on would be served.
            self.inner.slots.close();
            if sent.is_ok() {
                // An error only means the writer is already gone.
                let _ = finished.await;
            }
        }
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let joined = tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| StoreError::Internal(format!("joining the writer failed: {e}")))?;
            if joined.is_err() {
                return Err(StoreError::Internal("the writer thread panicked".into()));
            }
        }
        Ok(())
    }
}
