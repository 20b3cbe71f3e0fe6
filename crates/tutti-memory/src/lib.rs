//! Tutti's performance memory: a general episodic memory whose first kind of episode is a
//! show.
//!
//! Read in this order: [`model`] (episodes, steps, moments, outcomes, limits, reward),
//! [`Memory`] (here: the lifecycle, the write pipeline, the queries), [`index`] (the derived
//! in-memory indexes and their hierarchy), [`vector`] (exact and IVF-SQ8 nearest neighbours),
//! [`retrieve`] (the queries, MMR, "why"), [`patterns`], [`suggest`], then the write path's
//! parts: [`breaker`], [`spill`], [`codec`].
//!
//! # Lifecycle of an episode
//! [`Memory::start`] → [`Memory::append_steps`] / [`Memory::append_moments`] (buffered, never
//! waiting) → [`Memory::complete`]; or all at once with [`Memory::record`]. An episode still
//! open when the process stops (a crash, `kill -9`) is completed as `interrupted` the next
//! time the memory opens: it never vanishes.
//!
//! # The write path: durable first, then derived
//! Every write is a unit ([`tutti_store::MemWrite`]) queued in a bounded buffer. One flusher
//! task sends the buffer to the store's writer thread in batches (each unit all or nothing,
//! the batch one group commit), at most one batch in flight, so the memory never crowds the
//! live show's own writes out of the store's queue. Only after a batch has committed does the
//! indexer task (the indexes' single writer) update the in-memory indexes, in the order of the
//! completion sequence `done_seq`: a whole episode recorded at once is handed over by the
//! flusher as it was committed, anything else (appended episodes, ratings, another process's
//! writes, what did not fit) is read back from the store; it runs beside the flusher, so
//! deriving never holds up the next write. A derived update that fails is
//! journalled in the store (`mem_journal`) and retried until it succeeds; `check` reports and
//! repairs what is left.
//!
//! # When the store is slow or failing
//! Appends never wait: the show goes on. A write that fails or takes longer than
//! `write_timeout` counts against the [`breaker::Breaker`]; when it opens, the buffer goes to
//! the [`spill`] (files in the data directory, fsync'd), new writes follow it there, and
//! whoever waits for an acknowledgement gets one once their write is on disk. When the breaker
//! lets a write through again and it commits, the spill is replayed, oldest first, before
//! anything newer.
//!
//! # Reading
//! Queries hold the index's read lock for their own duration only; the flusher takes the
//! write lock one episode at a time. The indexes are rebuilt completely from every completed
//! episode when the memory opens ([`Status::rebuild_ms`]).
//!
//! Must never: make a caller of an append wait for the store, acknowledge a write that is
//! neither committed nor fsync'd in the spill, update a derived index before its data
//! committed, or hold the index lock across an `.await`.

pub mod breaker;
pub mod codec;
pub mod error;
pub mod index;
pub mod model;
pub mod patterns;
pub mod retrieve;
pub mod spill;
pub mod suggest;
pub mod synth;
pub mod text;
pub mod vector;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{oneshot, Notify};
use tutti_store::{
    MemChunkRow, MemContext, MemEpisodeFull, MemEpisodeRow, MemOp, MemStatus, MemStepRow, MemWrite,
    MemWriteDone, Store, StoreError,
};

pub use breaker::BreakerState;
pub use error::MemoryError;
pub use index::IndexStats;
pub use model::{Completion, Context, Engagement, Moment, Outcome, Step};
pub use patterns::PatternReport;
pub use retrieve::{Access, EpisodeHit, EpisodeQuery, MomentHit, MomentQuery, MomentResults, Why};
pub use suggest::{Board, Entry, Feedback, Now, Suggestion};
pub use vector::AnnConfig;

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where the memory's writes go: the store, or (in tests) something around it that fails or
/// stalls on purpose.
pub trait Writer: Send + Sync + 'static {
    /// Applies units in one group commit; each unit's outcome, once committed.
    #[allow(clippy::type_complexity)]
    fn write(
        &self,
        units: Vec<MemWrite>,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Vec<Result<MemWriteDone, StoreError>>, StoreError>>
                + Send
                + '_,
        >,
    >;
}

impl Writer for Store {
    fn write(
        &self,
        units: Vec<MemWrite>,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Vec<Result<MemWriteDone, StoreError>>, StoreError>>
                + Send
                + '_,
        >,
    > {
        Box::pin(self.memory_write(units))
    }
}

/// Settings.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Nearest-neighbour settings.
    pub ann: AnnConfig,
    /// Where spill files go (`<data dir>/memory-spill`).
    pub spill_dir: PathBuf,
    /// How often the buffer is flushed.
    pub flush_every: Duration,
    /// Most units per batch.
    pub max_batch: usize,
    /// Units buffered in memory; past this the buffer is spilled even with the breaker
    /// closed (checked before each write, so while one write is in flight — at most
    /// `write_timeout` — what arrives meanwhile may exceed it).
    pub buffer_units: usize,
    /// A write that has not committed after this long counts as failed (the store stalls).
    pub write_timeout: Duration,
    /// Consecutive failed writes that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before a write may try again.
    pub breaker_open_for: Duration,
    /// How long an acknowledged write may wait for its commit or spill.
    pub ack_timeout: Duration,
    /// How often completed episodes the indexes lack (written by another process) and the
    /// journal are looked at.
    pub catch_up_every: Duration,
    /// Complete the episodes left open as `interrupted` when opening. The process that
    /// records (the server) does; a tool opening the same data directory beside a running
    /// server (`tutti memory …`) must not, or it would end the server's live episodes.
    pub complete_interrupted: bool,
}

impl MemoryConfig {
    /// The defaults, spilling to `<data_dir>/memory-spill`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        MemoryConfig {
            ann: AnnConfig::default(),
            spill_dir: data_dir.into().join("memory-spill"),
            flush_every: Duration::from_millis(200),
            max_batch: 512,
            buffer_units: 20_000,
            write_timeout: Duration::from_secs(2),
            breaker_failures: 3,
            breaker_open_for: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(10),
            catch_up_every: Duration::from_secs(10),
            complete_interrupted: true,
        }
    }
}

/// How a write was made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durable {
    /// Committed to the store.
    Store,
    /// Written (fsync'd) to the spill; it reaches the store when the store is back.
    Spill,
}

/// An acknowledged write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    /// The episode's key.
    pub key: String,
    /// Its id, once committed (`None` while it is only in the spill).
    pub id: Option<i64>,
    /// Where it is.
    pub durable: Durable,
}

/// A whole episode at once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Unique key (default: a new random one). Recording the same key again finds the episode.
    #[serde(default)]
    pub key: Option<String>,
    /// Context.
    pub context: Context,
    /// Dimension names of the moments.
    #[serde(default)]
    pub dims: Option<Vec<String>>,
    /// Unix ms (default: the first step or moment, or now).
    #[serde(default)]
    pub started_at_ms: Option<i64>,
    /// Unix ms (default: the last step or moment, or the start).
    #[serde(default)]
    pub ended_at_ms: Option<i64>,
    /// Steps.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Moments.
    #[serde(default)]
    pub moments: Vec<Moment>,
    /// Outcome (default: completed, no rating). Leave out with `open: true`.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Keep the episode open (append and complete later).
    #[serde(default)]
    pub open: bool,
}

/// An episode as read back.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpisodeView {
    /// Id.
    pub id: i64,
    /// Key.
    pub key: String,
    /// Context.
    pub context: Context,
    /// Dimension names.
    pub dims: Option<Vec<String>>,
    /// `open`, `completed`, `interrupted`, `abandoned`.
    pub status: String,
    /// Unix ms.
    pub started_at_ms: i64,
    /// Unix ms.
    pub ended_at_ms: Option<i64>,
    /// Rating.
    pub rating: Option<f64>,
    /// Notes.
    pub notes: String,
    /// Engagement.
    pub engagement: Option<Engagement>,
    /// Reward.
    pub reward: Option<f64>,
    /// Steps stored.
    pub step_count: i64,
    /// Moments stored.
    pub moment_count: i64,
    /// Steps (up to the limit asked for).
    pub steps: Vec<Step>,
    /// Moments (up to the limit asked for).
    pub moments: Vec<Moment>,
    /// Whether the in-memory indexes hold it.
    pub indexed: bool,
}

/// A text match.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextHit {
    /// Episode id.
    pub episode_id: i64,
    /// Key.
    pub key: String,
    /// Kind.
    pub kind: String,
    /// Piece.
    pub piece: Option<String>,
    /// BM25 as SQLite reports it (lower is better).
    pub bm25: f64,
    /// The matching text, matches in `[ ]`.
    pub snippet: String,
    /// Why: `fts5 bm25 over context text and notes`.
    pub why: String,
}

/// What `check` found (and repaired).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct CheckReport {
    /// Completed episodes in the store.
    pub stored_episodes: i64,
    /// Open episodes in the store.
    pub open_episodes: i64,
    /// Moments stored.
    pub stored_moments: i64,
    /// Episodes the indexes hold.
    pub indexed_episodes: u64,
    /// Moments the indexes hold.
    pub indexed_moments: u64,
    /// Completed episodes the indexes lacked.
    pub missing: Vec<i64>,
    /// Episodes whose stored moments cannot be decoded.
    pub damaged: Vec<i64>,
    /// Whether FTS5 agreed with the episodes.
    pub fts_ok: bool,
    /// Episodes whose step/moment counters disagreed with their rows.
    pub counter_mismatches: i64,
    /// Journal entries pending.
    pub journal_pending: i64,
    /// Whether repairs were made.
    pub repaired: bool,
    /// Whether everything agrees (after repair, when repairing).
    pub ok: bool,
}

/// Counters and state, for `/metrics`, the API and the dashboard.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The breaker.
    pub breaker: BreakerState,
    /// Times it opened.
    pub breaker_opens: u64,
    /// Writes that failed or stalled.
    pub write_failures: u64,
    /// Units waiting in memory.
    pub buffered: usize,
    /// Units waiting in the spill.
    pub spilled: u64,
    /// Units ever spilled.
    pub spilled_total: u64,
    /// Units replayed from the spill.
    pub replayed_total: u64,
    /// Units committed.
    pub committed_total: u64,
    /// Derived updates that failed (each journalled).
    pub derive_failures: u64,
    /// Journalled failures repaired.
    pub repaired_total: u64,
    /// Open episodes recorded by this process.
    pub open_episodes: usize,
    /// The indexes.
    pub index: IndexStats,
    /// How long the start-up rebuild took, ms.
    pub rebuild_ms: u64,
}

/// A live episode's running state.
#[derive(Debug, Clone)]
struct OpenEp {
    next_step: i64,
    next_moment: i64,
    dims: usize,
    started_at_ms: i64,
    last_at_ms: i64,
    /// Indices of the `participation`, `agreement`, `activity` dimensions.
    eng_dims: [Option<usize>; 3],
    eng_sum: [f64; 3],
    eng_n: u64,
}

impl OpenEp {
    fn engagement(&self) -> Engagement {
        let get = |i: usize| {
            self.eng_dims[i]
                .filter(|_| self.eng_n > 0)
                .map(|_| (self.eng_sum[i] / self.eng_n as f64).clamp(0.0, 1.0))
        };
        Engagement {
            participation: get(0),
            agreement: get(1),
            activity: get(2),
        }
    }

    fn observe(&mut self, m: &Moment) {
        self.eng_n += 1;
        for i in 0..3 {
            if let Some(d) = self.eng_dims[i] {
                self.eng_sum[i] += f64::from(m.vector[d]);
            }
        }
        self.last_at_ms = self.last_at_ms.max(m.at_ms);
    }
}

fn eng_dims(dims: &[String]) -> [Option<usize>; 3] {
    let f = |n: &str| dims.iter().position(|d| d == n);
    [f("participation"), f("agreement"), f("activity")]
}

type Waiter = oneshot::Sender<Result<Ack, MemoryError>>;

struct Pending {
    unit: MemWrite,
    waiter: Option<Waiter>,
}

#[derive(Default)]
struct Queue {
    units: VecDeque<Pending>,
    open: HashMap<String, OpenEp>,
}

/// Whole episodes the flusher saw committed, by completion number, for the indexer: what it
/// finds here it need not read back from the store. Bounded ([`HANDED_BYTES`]): past that,
/// the indexer reads them back as it always can.
#[derive(Default)]
struct Handed {
    /// Each with its size (by [`approx_bytes`]).
    by_seq: BTreeMap<i64, (usize, MemEpisodeFull)>,
    bytes: usize,
}

/// At most this many bytes (roughly: text, step data, moment chunks) wait in [`Handed`].
const HANDED_BYTES: usize = 32 << 20;

impl Handed {
    /// Keeps episodes (those with a completion number) while they fit in `cap` bytes.
    fn put(&mut self, episodes: Vec<MemEpisodeFull>, cap: usize) {
        for full in episodes {
            let Some(seq) = full.episode.done_seq else {
                continue;
            };
            let bytes = approx_bytes(&full);
            if self.bytes + bytes > cap {
                break;
            }
            self.bytes += bytes;
            if let Some((old, _)) = self.by_seq.insert(seq, (bytes, full)) {
                self.bytes -= old;
            }
        }
    }

    /// Up to `limit` episodes that follow completion number `after` without a gap (a gap,
    /// such as an episode another process completed or a rating, is read from the store);
    /// forgets those at or before `after` (the indexes passed them).
    fn take(&mut self, after: i64, limit: usize) -> Vec<MemEpisodeFull> {
        while let Some(e) = self.by_seq.first_entry() {
            if *e.key() > after {
                break;
            }
            let (bytes, _) = e.remove();
            self.bytes -= bytes;
        }
        let mut out = Vec::new();
        let mut next = after + 1;
        while out.len() < limit {
            let Some(e) = self.by_seq.first_entry() else {
                break;
            };
            if *e.key() != next {
                break;
            }
            let (bytes, full) = e.remove();
            self.bytes -= bytes;
            out.push(full);
            next += 1;
        }
        out
    }
}

fn approx_bytes(full: &MemEpisodeFull) -> usize {
    let e = &full.episode;
    256 + e.key.len()
        + e.context.text.len()
        + e.notes.len()
        + full
            .steps
            .iter()
            .map(|s| 64 + s.kind.len() + s.data_json.len())
            .sum::<usize>()
        + full.chunks.iter().map(|c| 64 + c.data.len()).sum::<usize>()
}

/// The stored episode a committed unit created, when the unit was a whole episode (start,
/// steps, moments, completion) that was new: built from the unit itself, as the store wrote
/// it (`Store::memory_write` inserts exactly this).
fn whole_episode(unit: MemWrite, done: &MemWriteDone) -> Option<MemEpisodeFull> {
    let seq = done.done_seq?;
    if done.existed {
        return None;
    }
    let mut ops = unit.ops.into_iter();
    let Some(MemOp::Start {
        key,
        context,
        dims_json,
        started_at_ms,
    }) = ops.next()
    else {
        return None;
    };
    let (mut steps, mut chunks) = (Vec::new(), Vec::new());
    for op in ops {
        match op {
            MemOp::Steps { key: k, steps: s }
                if k == key && steps.is_empty() && chunks.is_empty() =>
            {
                steps = s;
            }
            MemOp::Moments { key: k, chunk } if k == key && chunks.is_empty() => chunks.push(chunk),
            MemOp::Complete {
                key: k,
                status,
                ended_at_ms,
                rating,
                notes,
                engagement_json,
                reward,
            } if k == key && status != MemStatus::Open => {
                if u64::try_from(steps.len()).ok() != Some(done.steps) {
                    return None;
                }
                let moments = chunks.iter().map(|c: &MemChunkRow| c.count).sum::<i64>();
                if u64::try_from(moments).ok() != Some(done.moments) {
                    return None;
                }
                return Some(MemEpisodeFull {
                    episode: MemEpisodeRow {
                        id: done.episode_id,
                        key,
                        context,
                        dims_json,
                        status,
                        started_at_ms,
                        ended_at_ms: Some(ended_at_ms),
                        rating,
                        notes,
                        engagement_json,
                        reward: Some(reward),
                        steps: steps.len() as i64,
                        moments,
                        done_seq: Some(seq),
                    },
                    steps,
                    chunks,
                });
            }
            _ => return None,
        }
    }
    None
}

#[derive(Default)]
struct Counters {
    spilled_total: AtomicU64,
    replayed_total: AtomicU64,
    committed_total: AtomicU64,
    derive_failures: AtomicU64,
    repaired_total: AtomicU64,
    rebuild_ms: AtomicU64,
    inject_derive_failures: AtomicU32,
}

struct Inner {
    store: Store,
    writer: Arc<dyn Writer>,
    cfg: MemoryConfig,
    index: RwLock<index::Index>,
    queue: Mutex<Queue>,
    spill: Mutex<spill::Spill>,
    breaker: breaker::Breaker,
    counters: Counters,
    wake: Notify,
    board: Board,
    stop: tokio::sync::watch::Sender<bool>,
    /// Woken after every flush round.
    flushed: Notify,
    /// Wakes the indexer: completed episodes were committed.
    derive_wake: Notify,
    /// Committed whole episodes, for the indexer.
    handed: Mutex<Handed>,
}

/// The memory. Cheap to clone.
#[derive(Clone)]
pub struct Memory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory").finish_non_exhaustive()
    }
}

fn new_key() -> String {
    format!("ep_{:016x}", rand::random::<u64>())
}

fn check_key(key: &str) -> Result<(), MemoryError> {
    if key.is_empty()
        || key.len() > tutti_store::MAX_MEM_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(MemoryError::invalid(
            "key",
            "must be 1–128 visible ASCII characters",
        ));
    }
    Ok(())
}

fn to_ctx(c: &Context) -> MemContext {
    MemContext {
        kind: c.kind.clone(),
        piece: c.piece.clone(),
        spec_version: c.spec_version,
        ensemble_id: c.ensemble_id,
        subject: c.subject.clone(),
        venue: c.venue.clone(),
        tags: c.tags.clone(),
        text: c.text.clone(),
    }
}

fn into_ctx(c: Context) -> MemContext {
    MemContext {
        kind: c.kind,
        piece: c.piece,
        spec_version: c.spec_version,
        ensemble_id: c.ensemble_id,
        subject: c.subject,
        venue: c.venue,
        tags: c.tags,
        text: c.text,
    }
}

fn from_ctx(c: &MemContext) -> Context {
    Context {
        kind: c.kind.clone(),
        piece: c.piece.clone(),
        spec_version: c.spec_version,
        ensemble_id: c.ensemble_id,
        subject: c.subject.clone(),
        venue: c.venue.clone(),
        tags: c.tags.clone(),
        text: c.text.clone(),
    }
}

/// Checks steps and serializes their data (once: what is checked is what is stored).
fn checked_data(steps: &[Step]) -> Result<Vec<String>, MemoryError> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| s.checked_data(|| format!("steps[{i}]")))
        .collect()
}

fn step_rows(
    steps: impl IntoIterator<Item = (i64, String)>,
    data_json: Vec<String>,
    first: i64,
) -> Vec<MemStepRow> {
    steps
        .into_iter()
        .zip(data_json)
        .enumerate()
        .map(|(i, ((at_ms, kind), data_json))| MemStepRow {
            seq: first + i as i64,
            at_ms,
            kind,
            data_json,
        })
        .collect()
}

fn chunk(moments: &[Moment], first: i64, dims: usize) -> MemChunkRow {
    MemChunkRow {
        first_seq: first,
        count: moments.len() as i64,
        dims: dims as i64,
        data: codec::encode(moments, dims),
    }
}

fn status_of(c: Completion) -> MemStatus {
    match c {
        Completion::Completed => MemStatus::Completed,
        Completion::Abandoned => MemStatus::Abandoned,
        Completion::Interrupted => MemStatus::Interrupted,
    }
}

fn is_done(u: &MemWrite) -> bool {
    u.ops
        .iter()
        .any(|o| matches!(o, MemOp::Complete { .. } | MemOp::Rate { .. }))
}

/// Measured engagement of stored moments.
fn measured(dims: &[String], moments: &[Moment]) -> Engagement {
    let mut o = OpenEp {
        next_step: 0,
        next_moment: 0,
        dims: dims.len(),
        started_at_ms: 0,
        last_at_ms: 0,
        eng_dims: eng_dims(dims),
        eng_sum: [0.0; 3],
        eng_n: 0,
    };
    for m in moments {
        o.observe(m);
    }
    o.engagement()
}

impl Memory {
    /// Opens the memory over `store`: replays what an earlier run spilled, completes every
    /// episode left open as `interrupted` (unless told not to), rebuilds the indexes from every completed episode,
    /// and starts the flusher on the current tokio runtime.
    pub async fn open(store: Store, cfg: MemoryConfig) -> Result<Memory, MemoryError> {
        let writer: Arc<dyn Writer> = Arc::new(store.clone());
        Self::open_with(store, writer, cfg).await
    }

    /// [`Memory::open`] with writes going through `writer` (fault injection in tests).
    pub async fn open_with(
        store: Store,
        writer: Arc<dyn Writer>,
        cfg: MemoryConfig,
    ) -> Result<Memory, MemoryError> {
        let (stop, _) = tokio::sync::watch::channel(false);
        let inner = Arc::new(Inner {
            store,
            writer,
            index: RwLock::new(index::Index::new(cfg.ann)),
            queue: Mutex::new(Queue::default()),
            spill: Mutex::new(spill::Spill::open(cfg.spill_dir.clone())),
            breaker: breaker::Breaker::new(cfg.breaker_failures, cfg.breaker_open_for),
            counters: Counters::default(),
            wake: Notify::new(),
            board: Board::default(),
            stop,
            flushed: Notify::new(),
            derive_wake: Notify::new(),
            handed: Mutex::new(Handed::default()),
            cfg,
        });
        let mem = Memory { inner };
        // 1. What an earlier run spilled goes first.
        mem.replay_spill().await?;
        // 2. Episodes left open were interrupted.
        let now = now_ms();
        let open = if mem.inner.cfg.complete_interrupted {
            mem.inner.store.memory_open_episodes().await?
        } else {
            Vec::new()
        };
        if !open.is_empty() {
            let mut units = Vec::new();
            for full in &open {
                let e = &full.episode;
                let decoded = index::decode(full).ok();
                let eng = decoded
                    .as_ref()
                    .map(|d| measured(&d.dims, &d.moments))
                    .unwrap_or_default();
                let last = full
                    .steps
                    .iter()
                    .map(|s| s.at_ms)
                    .chain(
                        decoded
                            .iter()
                            .flat_map(|d| d.moments.iter().map(|m| m.at_ms)),
                    )
                    .max()
                    .unwrap_or(e.started_at_ms)
                    .clamp(e.started_at_ms, now.max(e.started_at_ms));
                units.push(MemWrite {
                    ops: vec![MemOp::Complete {
                        key: e.key.clone(),
                        status: MemStatus::Interrupted,
                        ended_at_ms: last,
                        rating: None,
                        notes: e.notes.clone(),
                        engagement_json: serde_json::to_string(&eng).ok(),
                        reward: model::reward(None, &eng, 0.5),
                    }],
                });
            }
            for r in mem.inner.store.memory_write(units).await? {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "could not complete an interrupted episode");
                }
            }
            tracing::info!(episodes = open.len(), "completed interrupted episodes");
        }
        // 3. Rebuild every index from every completed episode.
        let t = Instant::now();
        let mut after = 0i64;
        let mut n = 0usize;
        loop {
            let page = mem.inner.store.memory_done_after(after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.episode.done_seq.unwrap_or(after);
            let len = page.len();
            let m2 = mem.clone();
            tokio::task::spawn_blocking(move || {
                let mut ix = m2.index_write();
                for full in &page {
                    if let Err(e) = ix.insert(full, true) {
                        tracing::warn!(episode = full.episode.id, error = %e, "cannot index an episode");
                        m2.inner.counters.derive_failures.fetch_add(1, Relaxed);
                    }
                }
            })
            .await
            .map_err(|e| MemoryError::Internal(e.to_string()))?;
            n += len;
            if len < 500 {
                break;
            }
        }
        let m2 = mem.clone();
        tokio::task::spawn_blocking(move || m2.index_write().finish_bulk())
            .await
            .map_err(|e| MemoryError::Internal(e.to_string()))?;
        let ms = t.elapsed().as_millis() as u64;
        mem.inner.counters.rebuild_ms.store(ms, Relaxed);
        tracing::info!(episodes = n, ms, "memory indexes rebuilt");
        // 4. The flusher (writes) and the indexer (derived updates): the indexes never hold up
        // the next write.
        tokio::spawn(flusher(mem.clone(), mem.inner.stop.subscribe()));
        tokio::spawn(indexer(mem.clone(), mem.inner.stop.subscribe()));
        Ok(mem)
    }

    fn index_write(&self) -> std::sync::RwLockWriteGuard<'_, index::Index> {
        self.inner.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The index, read-locked (hold it briefly; never across an `.await`).
    pub fn index(&self) -> std::sync::RwLockReadGuard<'_, index::Index> {
        self.inner.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The live suggestions board.
    pub fn board(&self) -> &Board {
        &self.inner.board
    }

    /// Queues a unit; with `ack`, waits until it is committed or spilled.
    async fn submit(&self, unit: MemWrite, ack: bool) -> Result<Option<Ack>, MemoryError> {
        let key = unit
            .ops
            .first()
            .map(|o| o.key().to_owned())
            .unwrap_or_default();
        let rx = {
            let mut q = self.queue();
            let (waiter, rx) = if ack {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            q.units.push_back(Pending { unit, waiter });
            rx
        };
        self.inner.wake.notify_one();
        let Some(rx) = rx else { return Ok(None) };
        match tokio::time::timeout(self.inner.cfg.ack_timeout, rx).await {
            Ok(Ok(r)) => r.map(Some),
            Ok(Err(_)) => Err(MemoryError::Unavailable("the memory stopped".into())),
            Err(_) => Err(MemoryError::Unavailable(format!(
                "episode {key:?}: not committed or spilled within {} s (it stays queued)",
                self.inner.cfg.ack_timeout.as_secs()
            ))),
        }
    }

    /// Starts an episode; waits until it is committed (or spilled).
    pub async fn start(
        &self,
        key: Option<String>,
        context: Context,
        dims: Option<Vec<String>>,
        started_at_ms: i64,
    ) -> Result<Ack, MemoryError> {
        let key = key.unwrap_or_else(new_key);
        check_key(&key)?;
        context.validate()?;
        if let Some(d) = &dims {
            model::check_dims(d)?;
        }
        if started_at_ms < 0 {
            return Err(MemoryError::invalid("started_at_ms", "must be >= 0"));
        }
        let unit = MemWrite {
            ops: vec![MemOp::Start {
                key: key.clone(),
                context: to_ctx(&context),
                dims_json: dims.as_ref().and_then(|d| serde_json::to_string(d).ok()),
                started_at_ms,
            }],
        };
        {
            let mut q = self.queue();
            q.open.entry(key.clone()).or_insert(OpenEp {
                next_step: 0,
                next_moment: 0,
                dims: dims.as_ref().map_or(0, Vec::len),
                started_at_ms,
                last_at_ms: started_at_ms,
                eng_dims: dims.as_deref().map(eng_dims).unwrap_or([None; 3]),
                eng_sum: [0.0; 3],
                eng_n: 0,
            });
        }
        let ack = self.submit(unit, true).await?;
        ack.ok_or_else(|| MemoryError::Internal("no acknowledgement".into()))
    }

    /// Resumes recording an episode this process did not start (after checking the store):
    /// its counters continue from what is stored.
    async fn ensure_open(&self, key: &str) -> Result<(), MemoryError> {
        if self.queue().open.contains_key(key) {
            return Ok(());
        }
        let row = self
            .inner
            .store
            .memory_episode_by_key(key)
            .await?
            .ok_or_else(|| MemoryError::NotFound {
                what: "episode",
                id: key.to_owned(),
            })?;
        if row.status != MemStatus::Open {
            return Err(MemoryError::Conflict {
                code: "episode_ended",
                message: format!("episode {key:?} is {}", row.status.as_str()),
            });
        }
        let dims: Vec<String> = row
            .dims_json
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        self.queue().open.entry(key.to_owned()).or_insert(OpenEp {
            next_step: row.steps,
            next_moment: row.moments,
            dims: dims.len(),
            started_at_ms: row.started_at_ms,
            last_at_ms: row.started_at_ms,
            eng_dims: eng_dims(&dims),
            eng_sum: [0.0; 3],
            eng_n: 0,
        });
        Ok(())
    }

    fn steps_unit(&self, key: &str, steps: &[Step]) -> Result<MemWrite, MemoryError> {
        model::check_batch("steps", steps.len())?;
        let data_json = checked_data(steps)?;
        let mut q = self.queue();
        let o = q.open.get_mut(key).ok_or_else(|| MemoryError::NotFound {
            what: "open episode",
            id: key.to_owned(),
        })?;
        if o.next_step + steps.len() as i64 > model::MAX_STEPS as i64 {
            return Err(MemoryError::coded(
                "too_many_steps",
                "steps",
                format!("an episode holds at most {} steps", model::MAX_STEPS),
            ));
        }
        let rows = step_rows(
            steps.iter().map(|s| (s.at_ms, s.kind.clone())),
            data_json,
            o.next_step,
        );
        o.next_step += steps.len() as i64;
        o.last_at_ms = steps.iter().map(|s| s.at_ms).fold(o.last_at_ms, i64::max);
        Ok(MemWrite {
            ops: vec![MemOp::Steps {
                key: key.to_owned(),
                steps: rows,
            }],
        })
    }

    fn moments_unit(&self, key: &str, moments: &[Moment]) -> Result<MemWrite, MemoryError> {
        model::check_batch("moments", moments.len())?;
        let mut q = self.queue();
        let o = q.open.get_mut(key).ok_or_else(|| MemoryError::NotFound {
            what: "open episode",
            id: key.to_owned(),
        })?;
        if o.dims == 0 {
            return Err(MemoryError::coded(
                "dimension_mismatch",
                "moments",
                "the episode was started without dimension names (dims)",
            ));
        }
        for (i, m) in moments.iter().enumerate() {
            m.check(|| format!("moments[{i}]"), o.dims)?;
        }
        if o.next_moment + moments.len() as i64 > model::MAX_MOMENTS as i64 {
            return Err(MemoryError::coded(
                "too_many_steps",
                "moments",
                format!("an episode holds at most {} moments", model::MAX_MOMENTS),
            ));
        }
        let c = chunk(moments, o.next_moment, o.dims);
        o.next_moment += moments.len() as i64;
        for m in moments {
            o.observe(m);
        }
        Ok(MemWrite {
            ops: vec![MemOp::Moments {
                key: key.to_owned(),
                chunk: c,
            }],
        })
    }

    /// Appends steps to an episode this process is recording, without waiting.
    pub fn append_steps(&self, key: &str, steps: &[Step]) -> Result<(), MemoryError> {
        if steps.is_empty() {
            return Ok(());
        }
        let unit = self.steps_unit(key, steps)?;
        self.queue().units.push_back(Pending { unit, waiter: None });
        Ok(())
    }

    /// Appends moments to an episode this process is recording, without waiting.
    pub fn append_moments(&self, key: &str, moments: &[Moment]) -> Result<(), MemoryError> {
        if moments.is_empty() {
            return Ok(());
        }
        let unit = self.moments_unit(key, moments)?;
        self.queue().units.push_back(Pending { unit, waiter: None });
        Ok(())
    }

    /// Appends steps and moments as one unit and waits until it is committed (or spilled).
    pub async fn append(
        &self,
        key: &str,
        steps: &[Step],
        moments: &[Moment],
    ) -> Result<Ack, MemoryError> {
        self.ensure_open(key).await?;
        let mut ops = Vec::new();
        if !steps.is_empty() {
            ops.extend(self.steps_unit(key, steps)?.ops);
        }
        if !moments.is_empty() {
            ops.extend(self.moments_unit(key, moments)?.ops);
        }
        if ops.is_empty() {
            return Err(MemoryError::invalid(
                "steps",
                "send at least one step or moment",
            ));
        }
        self.submit(MemWrite { ops }, true)
            .await?
            .ok_or_else(|| MemoryError::Internal("no acknowledgement".into()))
    }

    /// Completes an episode; waits until it is committed (or spilled). The reward comes from
    /// the outcome and the engagement (given, or measured from its moments).
    pub async fn complete(
        &self,
        key: &str,
        outcome: Outcome,
        ended_at_ms: Option<i64>,
    ) -> Result<Ack, MemoryError> {
        outcome.validate()?;
        self.ensure_open(key).await?;
        let unit = {
            let mut q = self.queue();
            let o = q.open.remove(key).ok_or_else(|| MemoryError::NotFound {
                what: "open episode",
                id: key.to_owned(),
            })?;
            let eng = outcome.engagement.unwrap_or_else(|| o.engagement());
            let completion = outcome.completion.factor();
            let ended = ended_at_ms.unwrap_or(o.last_at_ms).max(o.started_at_ms);
            MemWrite {
                ops: vec![MemOp::Complete {
                    key: key.to_owned(),
                    status: status_of(outcome.completion),
                    ended_at_ms: ended,
                    rating: outcome.rating,
                    notes: outcome.notes.clone(),
                    engagement_json: serde_json::to_string(&eng).ok(),
                    reward: model::reward(outcome.rating, &eng, completion),
                }],
            }
        };
        self.submit(unit, true)
            .await?
            .ok_or_else(|| MemoryError::Internal("no acknowledgement".into()))
    }

    /// Records a whole episode as one atomic unit (nothing is stored if any part is bad);
    /// waits until it is committed (or spilled).
    pub async fn record(&self, r: Record) -> Result<Ack, MemoryError> {
        let unit = self.record_unit(r)?;
        self.submit(unit, true)
            .await?
            .ok_or_else(|| MemoryError::Internal("no acknowledgement".into()))
    }

    /// Checks a record and builds its unit (an open one is recorded from here on).
    fn record_unit(&self, r: Record) -> Result<MemWrite, MemoryError> {
        let Record {
            key,
            context,
            dims,
            started_at_ms,
            ended_at_ms,
            steps,
            moments,
            outcome,
            open,
        } = r;
        let key = key.unwrap_or_else(new_key);
        check_key(&key)?;
        context.validate()?;
        model::check_batch("steps", steps.len())?;
        model::check_batch("moments", moments.len())?;
        let data_json = checked_data(&steps)?;
        let d = match &dims {
            Some(d) => {
                model::check_dims(d)?;
                d.len()
            }
            None if moments.is_empty() => 0,
            None => {
                return Err(MemoryError::coded(
                    "dimension_mismatch",
                    "dims",
                    "moments need dimension names (dims)",
                ))
            }
        };
        for (i, m) in moments.iter().enumerate() {
            m.check(|| format!("moments[{i}]"), d)?;
        }
        if open && outcome.is_some() {
            return Err(MemoryError::invalid(
                "outcome",
                "an open episode has no outcome yet",
            ));
        }
        let outcome = outcome.unwrap_or_default();
        outcome.validate()?;
        let times = steps
            .iter()
            .map(|s| s.at_ms)
            .chain(moments.iter().map(|m| m.at_ms));
        let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let started = started_at_ms.unwrap_or(if lo == i64::MAX { now_ms() } else { lo });
        let ended = ended_at_ms.unwrap_or(if hi == i64::MIN { started } else { hi });
        if started < 0 || ended < started {
            return Err(MemoryError::invalid(
                "ended_at_ms",
                "must not be before started_at_ms",
            ));
        }
        let dims_json = dims.as_ref().and_then(|d| serde_json::to_string(d).ok());
        let dims = dims.unwrap_or_default();
        let n_steps = steps.len();
        let mut ops = vec![MemOp::Start {
            key: key.clone(),
            context: into_ctx(context),
            dims_json,
            started_at_ms: started,
        }];
        if !steps.is_empty() {
            ops.push(MemOp::Steps {
                key: key.clone(),
                steps: step_rows(steps.into_iter().map(|s| (s.at_ms, s.kind)), data_json, 0),
            });
        }
        if !moments.is_empty() {
            ops.push(MemOp::Moments {
                key: key.clone(),
                chunk: chunk(&moments, 0, d),
            });
        }
        if open {
            let mut o = OpenEp {
                next_step: n_steps as i64,
                next_moment: moments.len() as i64,
                dims: d,
                started_at_ms: started,
                last_at_ms: ended,
                eng_dims: eng_dims(&dims),
                eng_sum: [0.0; 3],
                eng_n: 0,
            };
            for m in &moments {
                o.observe(m);
            }
            self.queue().open.insert(key.clone(), o);
        } else {
            let eng = outcome
                .engagement
                .unwrap_or_else(|| measured(&dims, &moments));
            let completion = outcome.completion.factor();
            ops.push(MemOp::Complete {
                key: key.clone(),
                status: status_of(outcome.completion),
                ended_at_ms: ended,
                rating: outcome.rating,
                notes: outcome.notes,
                engagement_json: serde_json::to_string(&eng).ok(),
                reward: model::reward(outcome.rating, &eng, completion),
            });
        }
        Ok(MemWrite { ops })
    }

    /// Rates a completed episode (and replaces its notes, when given); the reward is
    /// recomputed with its stored engagement.
    pub async fn rate(
        &self,
        episode_id: i64,
        rating: f64,
        notes: Option<String>,
    ) -> Result<Ack, MemoryError> {
        Outcome {
            rating: Some(rating),
            notes: notes.clone().unwrap_or_default(),
            ..Outcome::default()
        }
        .validate()?;
        let e = self
            .inner
            .store
            .memory_episode(episode_id)
            .await?
            .ok_or_else(|| MemoryError::NotFound {
                what: "episode",
                id: episode_id.to_string(),
            })?
            .episode;
        if e.status == MemStatus::Open {
            return Err(MemoryError::Conflict {
                code: "episode_open",
                message: format!("episode {episode_id} is still open; rate it once it ends"),
            });
        }
        let eng: Engagement = e
            .engagement_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        let completion = match e.status {
            MemStatus::Completed => 1.0,
            MemStatus::Interrupted => 0.5,
            _ => 0.0,
        };
        let unit = MemWrite {
            ops: vec![MemOp::Rate {
                key: e.key.clone(),
                rating,
                notes,
                reward: model::reward(Some(rating), &eng, completion),
            }],
        };
        self.submit(unit, true)
            .await?
            .ok_or_else(|| MemoryError::Internal("no acknowledgement".into()))
    }

    /// The latest episode about `subject` (e.g. `show:42`).
    pub async fn latest_of(&self, subject: &str) -> Result<Option<MemEpisodeRow>, MemoryError> {
        Ok(self.inner.store.memory_latest_of(subject).await?)
    }

    /// Whether this process is recording the episode.
    pub fn is_recording(&self, key: &str) -> bool {
        self.queue().open.contains_key(key)
    }

    /// An episode with up to `limit` steps and moments.
    pub async fn episode(&self, id: i64, limit: usize) -> Result<Option<EpisodeView>, MemoryError> {
        let Some(full) = self.inner.store.memory_episode(id).await? else {
            return Ok(None);
        };
        Ok(Some(self.view(&full, limit)?))
    }

    /// The view of a stored episode.
    pub fn view(&self, full: &MemEpisodeFull, limit: usize) -> Result<EpisodeView, MemoryError> {
        let e = &full.episode;
        let decoded = index::decode(full)?;
        Ok(EpisodeView {
            id: e.id,
            key: e.key.clone(),
            context: from_ctx(&e.context),
            dims: (!decoded.dims.is_empty()).then(|| decoded.dims.clone()),
            status: e.status.as_str().into(),
            started_at_ms: e.started_at_ms,
            ended_at_ms: e.ended_at_ms,
            rating: e.rating,
            notes: e.notes.clone(),
            engagement: e
                .engagement_json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            reward: e.reward,
            step_count: e.steps,
            moment_count: e.moments,
            steps: full
                .steps
                .iter()
                .take(limit)
                .map(|s| Step {
                    at_ms: s.at_ms,
                    kind: s.kind.clone(),
                    data: serde_json::from_str(&s.data_json).unwrap_or_default(),
                })
                .collect(),
            moments: decoded.moments.into_iter().take(limit).collect(),
            indexed: self.index().by_id.contains_key(&e.id),
        })
    }

    /// A stored episode as a [`Record`] (what `export` writes and `import` reads back).
    pub fn to_record(&self, full: &MemEpisodeFull) -> Result<Record, MemoryError> {
        let v = self.view(full, usize::MAX)?;
        let open = v.status == "open";
        Ok(Record {
            key: Some(v.key),
            context: v.context,
            dims: v.dims,
            started_at_ms: Some(v.started_at_ms),
            ended_at_ms: v.ended_at_ms,
            steps: v.steps,
            moments: v.moments,
            outcome: (!open).then_some(Outcome {
                completion: match v.status.as_str() {
                    "abandoned" => Completion::Abandoned,
                    "interrupted" => Completion::Interrupted,
                    _ => Completion::Completed,
                },
                rating: v.rating,
                notes: v.notes,
                engagement: v.engagement,
            }),
            open,
        })
    }

    /// "Moments most like now".
    pub fn search_moments(
        &self,
        q: &MomentQuery,
        access: &Access,
    ) -> Result<MomentResults, MemoryError> {
        retrieve::moments(&self.index(), q, access)
    }

    /// "Episodes like this one".
    pub fn similar_episodes(
        &self,
        q: &EpisodeQuery,
        access: &Access,
    ) -> Result<Vec<EpisodeHit>, MemoryError> {
        retrieve::episodes(&self.index(), q, access)
    }

    /// Full-text search over context text and notes (FTS5, BM25).
    pub async fn search_text(
        &self,
        query: &str,
        kind: Option<String>,
        piece: Option<String>,
        limit: usize,
        access: &Access,
    ) -> Result<Vec<TextHit>, MemoryError> {
        model::check_k("limit", limit)?;
        if query.len() > 1000 {
            return Err(MemoryError::coded("too_large", "q", "at most 1000 bytes"));
        }
        let hits = self
            .inner
            .store
            .memory_search_text(query, kind, piece, limit * 4)
            .await?;
        Ok(hits
            .into_iter()
            .filter(|h| match access {
                Access::All => true,
                Access::Ensembles(e) => h
                    .episode
                    .context
                    .ensemble_id
                    .is_some_and(|i| e.contains(&i)),
            })
            .take(limit)
            .map(|h| TextHit {
                episode_id: h.episode.id,
                key: h.episode.key,
                kind: h.episode.context.kind,
                piece: h.episode.context.piece,
                bm25: h.bm25,
                snippet: h.snippet,
                why: "fts5 bm25 over context text and notes".into(),
            })
            .collect())
    }

    /// The patterns of a kind and piece.
    pub fn patterns(&self, kind: &str, piece: Option<&str>) -> Result<PatternReport, MemoryError> {
        model::check_kind("kind", kind)?;
        let ix = self.index();
        let Some(s) = ix.scope(kind, piece) else {
            return Err(MemoryError::coded(
                "unknown_piece",
                "piece",
                format!("no {kind} episodes of {piece:?} are in the memory"),
            ));
        };
        let mut r = ix.scopes[s as usize].patterns.report();
        for o in &mut r.outliers {
            o.episode_id = ix.docs.get(o.doc as usize).map_or(0, |d| d.id);
        }
        Ok(r)
    }

    /// The (kind, piece) scopes the memory holds, with their episode counts.
    pub fn scopes(&self) -> Vec<(String, Option<String>, usize)> {
        let ix = self.index();
        let mut v: Vec<_> = ix
            .scopes
            .iter()
            .map(|s| {
                (
                    ix.syms.name(s.kind).to_owned(),
                    s.piece.map(|p| ix.syms.name(p).to_owned()),
                    s.docs.len(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Live suggestions for an episode at `now`.
    pub fn suggest(&self, now: &Now<'_>) -> Vec<Suggestion> {
        suggest::suggest(&self.index(), now)
    }

    /// The typical length of a scope's episodes, seconds.
    pub fn typical_duration(&self, kind: &str, piece: Option<&str>) -> Option<f32> {
        suggest::typical_duration(&self.index(), kind, piece)
    }

    /// Counters and state.
    pub fn status(&self) -> Status {
        let (buffered, open) = {
            let q = self.queue();
            (q.units.len(), q.open.len())
        };
        let c = &self.inner.counters;
        Status {
            breaker: self.inner.breaker.state(),
            breaker_opens: self.inner.breaker.opens.load(Relaxed),
            write_failures: self.inner.breaker.write_failures.load(Relaxed),
            buffered,
            spilled: self
                .inner
                .spill
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pending,
            spilled_total: c.spilled_total.load(Relaxed),
            replayed_total: c.replayed_total.load(Relaxed),
            committed_total: c.committed_total.load(Relaxed),
            derive_failures: c.derive_failures.load(Relaxed),
            repaired_total: c.repaired_total.load(Relaxed),
            open_episodes: open,
            index: self.index().stats(),
            rebuild_ms: c.rebuild_ms.load(Relaxed),
        }
    }

    /// Test support: the next `n` derived updates fail (and are journalled).
    #[doc(hidden)]
    pub fn inject_derive_failures(&self, n: u32) {
        self.inner.counters.inject_derive_failures.store(n, Relaxed);
    }

    /// Waits until everything queued before this call has been committed (or spilled, when
    /// the store is unavailable) and derived, or `timeout` passes; returns whether it did.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.inner.flushed.notified();
            let idle = {
                let q = self.queue();
                q.units.is_empty()
            };
            let spill_empty = self
                .inner
                .spill
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty();
            let derived = match self.inner.store.memory_done_seq().await {
                Ok(seq) => self.index().done_seq >= seq,
                Err(_) => false,
            };
            if idle && spill_empty && derived {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.inner.wake.notify_one();
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// Verifies the indexes against the store; with `repair`, rebuilds the text index,
    /// recounts, indexes what is missing and resolves the journal.
    pub async fn check(&self, repair: bool) -> Result<CheckReport, MemoryError> {
        let store = &self.inner.store;
        let counts = store.memory_counts().await?;
        let mut report = CheckReport {
            stored_episodes: counts.done,
            open_episodes: counts.open,
            stored_moments: counts.moments,
            fts_ok: counts.fts_ok,
            counter_mismatches: counts.counter_mismatches,
            journal_pending: counts.journal_pending,
            ..CheckReport::default()
        };
        // Every completed episode: indexed, and decodable.
        let mut after = 0i64;
        let mut missing_full = Vec::new();
        loop {
            let page = store.memory_done_after(after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.episode.done_seq.unwrap_or(after);
            let len = page.len();
            {
                let ix = self.index();
                for full in page {
                    if index::decode(&full).is_err() {
                        report.damaged.push(full.episode.id);
                    } else if !ix.by_id.contains_key(&full.episode.id) {
                        report.missing.push(full.episode.id);
                        missing_full.push(full);
                    }
                }
            }
            if len < 500 {
                break;
            }
        }
        let st = self.index().stats();
        report.indexed_episodes = st.episodes;
        report.indexed_moments = st.moments;
        if repair {
            let fixed = store.memory_repair().await?;
            let mut resolved = Vec::new();
            {
                let mut ix = self.index_write();
                for full in &missing_full {
                    if ix.insert(full, false).is_ok() {
                        resolved.push(full.episode.id);
                    }
                }
            }
            for j in store.memory_journal_pending().await? {
                if self.index().by_id.contains_key(&j.episode_id) {
                    resolved.push(j.episode_id);
                }
            }
            resolved.sort_unstable();
            resolved.dedup();
            let n = store.memory_journal_resolve(resolved, now_ms()).await?;
            self.inner.counters.repaired_total.fetch_add(n, Relaxed);
            report.repaired = fixed > 0 || !missing_full.is_empty() || !counts.fts_ok || n > 0;
            let after = store.memory_counts().await?;
            report.fts_ok = after.fts_ok;
            report.counter_mismatches = after.counter_mismatches;
            report.journal_pending = after.journal_pending;
            let st = self.index().stats();
            report.indexed_episodes = st.episodes;
            report.indexed_moments = st.moments;
            report
                .missing
                .retain(|id| !self.index().by_id.contains_key(id));
        }
        report.ok = report.fts_ok
            && report.counter_mismatches == 0
            && report.missing.is_empty()
            && report.damaged.is_empty()
            && report.journal_pending == 0;
        Ok(report)
    }

    /// Stops the flusher after a last flush (bounded by `timeout`).
    pub async fn close(&self, timeout: Duration) {
        self.flush(timeout).await;
        let _ = self.inner.stop.send(true);
        self.inner.wake.notify_one();
    }

    // ------------------------------------------------------------------ the write path

    async fn replay_spill(&self) -> Result<(), MemoryError> {
        loop {
            let oldest = self
                .inner
                .spill
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .oldest();
            let Some((path, units)) = oldest else {
                return Ok(());
            };
            let n = units.len();
            for batch in units.chunks(self.inner.cfg.max_batch.max(1)) {
                let results = tokio::time::timeout(
                    self.inner.cfg.write_timeout,
                    self.inner.writer.write(batch.to_vec()),
                )
                .await
                .map_err(|_| MemoryError::Unavailable("the store stalled".into()))?
                .map_err(MemoryError::from)?;
                for r in results {
                    if let Err(e) = r {
                        // A unit the store refuses for what it is (not for being down) would
                        // be refused forever: it is logged and dropped.
                        tracing::warn!(error = %e, "a spilled memory write was refused");
                    }
                }
            }
            self.inner
                .spill
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .done(&path, n);
            self.inner
                .counters
                .replayed_total
                .fetch_add(n as u64, Relaxed);
        }
    }

    /// Moves the whole buffer to the spill; acknowledges the waiters.
    fn spill_buffer(&self) {
        let taken: Vec<Pending> = self.queue().units.drain(..).collect();
        if taken.is_empty() {
            return;
        }
        let units: Vec<MemWrite> = taken.iter().map(|p| p.unit.clone()).collect();
        let result = self
            .inner
            .spill
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&units);
        match result {
            Ok(()) => {
                self.inner
                    .counters
                    .spilled_total
                    .fetch_add(units.len() as u64, Relaxed);
                for p in taken {
                    if let Some(w) = p.waiter {
                        let key = p
                            .unit
                            .ops
                            .first()
                            .map(|o| o.key().to_owned())
                            .unwrap_or_default();
                        let _ = w.send(Ok(Ack {
                            key,
                            id: None,
                            durable: Durable::Spill,
                        }));
                    }
                }
            }
            Err(e) => {
                // Cannot spill either: keep everything buffered (in order) and say so to
                // whoever waits.
                tracing::error!(error = %e, "cannot spill memory writes");
                let mut q = self.queue();
                for p in taken.into_iter().rev() {
                    q.units.push_front(p);
                }
            }
        }
    }

    /// One round of the flusher. Returns whether there is more to do at once.
    async fn flush_round(&self) -> bool {
        let cfg = &self.inner.cfg;
        // The store keeps up too slowly (without failing): past its bound the buffer goes to
        // the spill, and the writes continue from there, in order.
        if self.queue().units.len() > cfg.buffer_units {
            self.spill_buffer();
        }
        if !self.inner.breaker.allow() {
            // The store is being left alone: keep the show going, keep the writes durable.
            self.spill_buffer();
            return false;
        }
        // The spill is older than the buffer: it goes first.
        let spilled = !self
            .inner
            .spill
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if spilled {
            match self.replay_spill().await {
                Ok(()) => {
                    self.inner.breaker.success();
                    self.inner.derive_wake.notify_one();
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replaying the memory spill failed");
                    self.inner.breaker.failure();
                    self.spill_buffer();
                    return false;
                }
            }
        }
        let batch: Vec<MemWrite> = {
            let q = self.queue();
            q.units
                .iter()
                .take(cfg.max_batch)
                .map(|p| p.unit.clone())
                .collect()
        };
        if batch.is_empty() {
            return false;
        }
        let n = batch.len();
        let derive = batch.iter().any(is_done);
        let outcome = tokio::time::timeout(cfg.write_timeout, self.inner.writer.write(batch)).await;
        match outcome {
            Ok(Ok(results)) => {
                self.inner.breaker.success();
                let taken: Vec<Pending> = {
                    let mut q = self.queue();
                    let m = n.min(q.units.len());
                    q.units.drain(..m).collect()
                };
                self.inner
                    .counters
                    .committed_total
                    .fetch_add(n as u64, Relaxed);
                let mut handed = Vec::new();
                for (p, r) in taken.into_iter().zip(results) {
                    let key = p
                        .unit
                        .ops
                        .first()
                        .map(|o| o.key().to_owned())
                        .unwrap_or_default();
                    if let Ok(done) = &r {
                        if let Some(full) = whole_episode(p.unit, done) {
                            handed.push(full);
                        }
                    }
                    let r = r.map_err(MemoryError::from).map(|done| Ack {
                        key,
                        id: Some(done.episode_id),
                        durable: Durable::Store,
                    });
                    if let Err(e) = &r {
                        if p.waiter.is_none() {
                            tracing::warn!(error = %e, "a memory write was refused");
                        }
                    }
                    if let Some(w) = p.waiter {
                        let _ = w.send(r);
                    }
                }
                self.hand(handed);
                if derive {
                    self.inner.derive_wake.notify_one();
                }
                n >= cfg.max_batch
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "a memory batch failed; it stays queued");
                self.inner.breaker.failure();
                self.overflow();
                false
            }
            Err(_) => {
                tracing::warn!(
                    "a memory batch did not commit within {:?}; the store is slow",
                    cfg.write_timeout
                );
                self.inner.breaker.failure();
                self.overflow();
                false
            }
        }
    }

    /// Spills when the buffer grew past its bound (the store is slow but not yet failing).
    fn overflow(&self) {
        let over = self.queue().units.len() > self.inner.cfg.buffer_units;
        if over || self.inner.breaker.state() == BreakerState::Open {
            self.spill_buffer();
        }
    }

    /// Indexes every completed episode the indexes lack (`done_seq` beyond theirs), then
    /// rebuilds any nearest-neighbour index that grew enough.
    async fn catch_up(&self) {
        loop {
            let after = self.index().done_seq;
            let handed = self.take_handed(after, 256);
            let read_back = handed.is_empty();
            let page = if read_back {
                match self.inner.store.memory_done_after(after, 256).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading completed episodes failed");
                        return;
                    }
                }
            } else {
                handed
            };
            let len = page.len();
            if len == 0 {
                break;
            }
            let me = self.clone();
            let failed = tokio::task::spawn_blocking(move || {
                let mut failed = Vec::new();
                for full in &page {
                    let inject = me
                        .inner
                        .counters
                        .inject_derive_failures
                        .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                        .is_ok();
                    let mut ix = me.index_write();
                    let r = if inject {
                        Err(MemoryError::Internal("injected derive failure".into()))
                    } else {
                        ix.insert(full, false)
                    };
                    if let Err(e) = r {
                        // Skip it in the sequence; the journal brings it back.
                        let seq = full.episode.done_seq.unwrap_or(0);
                        ix.done_seq = ix.done_seq.max(seq);
                        failed.push((full.episode.id, e.to_string()));
                    }
                }
                failed
            })
            .await
            .unwrap_or_default();
            for (id, err) in failed {
                self.inner.counters.derive_failures.fetch_add(1, Relaxed);
                tracing::warn!(episode = id, error = %err, "a derived index update failed; journalled");
                if let Err(e) = self
                    .inner
                    .store
                    .memory_journal_failure(id, "index", &err, now_ms())
                    .await
                {
                    tracing::error!(episode = id, error = %e, "cannot journal a failed index update");
                }
            }
            if read_back && len < 256 {
                break;
            }
        }
        self.reindex().await;
    }

    /// Keeps committed whole episodes for the indexer (while they fit).
    fn hand(&self, episodes: Vec<MemEpisodeFull>) {
        if episodes.is_empty() {
            return;
        }
        self.inner
            .handed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(episodes, HANDED_BYTES);
    }

    /// Up to `limit` handed episodes that follow the indexes' completion number `after`.
    fn take_handed(&self, after: i64, limit: usize) -> Vec<MemEpisodeFull> {
        self.inner
            .handed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(after, limit)
    }

    /// Rebuilds indexes that crossed their threshold or doubled: built under the read lock
    /// (queries go on), installed under the write lock.
    async fn reindex(&self) {
        let stale = self.index().stale_sets();
        for which in stale {
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let built = {
                    let ix = me.index();
                    let ann = ix.ann;
                    ix.set_ref(which).and_then(|s| s.build_index(&ann))
                };
                if let Some(set) = me.index_write().set_mut(which) {
                    set.install(built);
                }
            })
            .await;
        }
    }

    /// Retries journalled failures.
    async fn repair_journal(&self) {
        let pending = match self.inner.store.memory_journal_pending().await {
            Ok(p) => p,
            Err(_) => return,
        };
        let mut resolved = Vec::new();
        for j in pending {
            if self.index().by_id.contains_key(&j.episode_id) {
                resolved.push(j.episode_id);
                continue;
            }
            let Ok(Some(full)) = self.inner.store.memory_episode(j.episode_id).await else {
                continue;
            };
            if full.episode.status == MemStatus::Open {
                continue;
            }
            let me = self.clone();
            let ok = tokio::task::spawn_blocking(move || me.index_write().insert(&full, false))
                .await
                .map(|r| r.is_ok())
                .unwrap_or(false);
            if ok {
                resolved.push(j.episode_id);
            } else {
                let _ = self
                    .inner
                    .store
                    .memory_journal_failure(j.episode_id, &j.what, "retry failed", now_ms())
                    .await;
            }
        }
        if !resolved.is_empty() {
            if let Ok(n) = self
                .inner
                .store
                .memory_journal_resolve(resolved, now_ms())
                .await
            {
                self.inner.counters.repaired_total.fetch_add(n, Relaxed);
            }
        }
    }
}

async fn flusher(mem: Memory, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = mem.inner.cfg.flush_every;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = mem.inner.wake.notified() => {}
            _ = stop.changed() => {
                // A last round, then stop.
                mem.flush_round().await;
                mem.inner.flushed.notify_waiters();
                return;
            }
        }
        while mem.flush_round().await {}
        mem.inner.flushed.notify_waiters();
    }
}

/// The single writer of the indexes: derives what was committed, retries the journal, and
/// picks up episodes other processes completed.
async fn indexer(mem: Memory, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut last_repair = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(mem.inner.cfg.catch_up_every) => {}
            _ = mem.inner.derive_wake.notified() => {}
            _ = stop.changed() => return,
        }
        mem.catch_up().await;
        if last_repair.elapsed() >= mem.inner.cfg.catch_up_every
            && mem.inner.breaker.state() == BreakerState::Closed
        {
            last_repair = Instant::now();
            mem.repair_journal().await;
        }
        mem.inner.flushed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_store::StoreConfig;

    fn handed_episode(seq: i64) -> MemEpisodeFull {
        let context = into_ctx(synth::small(seq as u64, 1).context);
        let key = format!("k{seq}");
        MemEpisodeFull {
            episode: MemEpisodeRow {
                id: seq,
                key,
                context,
                dims_json: None,
                status: MemStatus::Completed,
                started_at_ms: 0,
                ended_at_ms: Some(0),
                rating: None,
                notes: String::new(),
                engagement_json: None,
                reward: Some(0.5),
                steps: 0,
                moments: 0,
                done_seq: Some(seq),
            },
            steps: Vec::new(),
            chunks: Vec::new(),
        }
    }

    #[test]
    fn handed_episodes_are_taken_in_sequence_and_stop_at_a_gap() {
        let mut h = Handed::default();
        let seqs = |v: &[MemEpisodeFull]| -> Vec<i64> {
            v.iter().map(|f| f.episode.done_seq.unwrap_or(0)).collect()
        };
        h.put([2, 3, 4, 6, 7].map(handed_episode).into(), usize::MAX);
        // 1 is missing: nothing follows 0 without a gap.
        assert!(h.take(0, 10).is_empty());
        // The indexes read 1 from the store.
        assert_eq!(seqs(&h.take(1, 2)), [2, 3]);
        assert_eq!(seqs(&h.take(3, 10)), [4]);
        // 5 (say, a rating) was read from the store, and 6 with it: 6 is forgotten.
        assert_eq!(seqs(&h.take(6, 10)), [7]);
        assert!(h.by_seq.is_empty());
        assert_eq!(h.bytes, 0);
        // Bounded: what does not fit is not kept (the indexer reads it back).
        let one = approx_bytes(&handed_episode(1));
        h.put([1, 2, 3].map(handed_episode).into(), 2 * one + one / 2);
        assert_eq!(seqs(&h.take(0, 10)), [1, 2]);
        assert_eq!(h.bytes, 0);
    }

    /// What the flusher hands the indexer is what the indexer would read back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handed_episode_is_the_stored_episode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(StoreConfig::new(dir.path().join("tutti.db"))).expect("store");
        let mem = Memory::open(store.clone(), MemoryConfig::new(dir.path()))
            .await
            .expect("memory");
        let shape = synth::ShowShape::default();
        let mut records = vec![
            synth::small(1, 7),
            synth::small(2, 7),
            synth::show(3, 7, &shape),
        ];
        let mut bare = synth::small(4, 7);
        bare.steps.clear();
        bare.context.tags.clear();
        bare.outcome = Some(Outcome {
            completion: Completion::Abandoned,
            rating: None,
            notes: "given up, with notes".into(),
            engagement: Some(Engagement {
                participation: Some(0.25),
                agreement: None,
                activity: Some(1.0),
            }),
        });
        records.push(bare);
        let mut moments_only = synth::show(5, 7, &shape);
        moments_only.steps.clear();
        moments_only.outcome = None;
        records.push(moments_only);
        for r in records {
            let unit = mem.record_unit(r).expect("a valid record");
            let done = store
                .memory_write(vec![unit.clone()])
                .await
                .expect("write")
                .pop()
                .expect("one")
                .expect("stored");
            let handed = whole_episode(unit.clone(), &done).expect("a whole episode");
            let stored = store
                .memory_episode(done.episode_id)
                .await
                .expect("read")
                .expect("there");
            assert_eq!(handed, stored);
            // Sent again, it is a replay: nothing to hand.
            let again = store.memory_write(vec![unit.clone()]).await.expect("write");
            if let Some(Ok(done)) = again.first() {
                assert!(whole_episode(unit, done).is_none());
            }
        }
        // An open episode is no whole episode.
        let mut open = synth::small(6, 7);
        open.outcome = None;
        open.open = true;
        let unit = mem.record_unit(open).expect("a valid record");
        let done = store
            .memory_write(vec![unit.clone()])
            .await
            .expect("write")
            .pop()
            .expect("one")
            .expect("stored");
        assert!(whole_episode(unit, &done).is_none());
    }
}
