//! The performance memory's tables (schema migrations 4 and 5): episodes of any kind, their
//! steps, their moments packed in chunks, FTS5 over context text and notes, and the journal of
//! derived updates that failed.
//!
//! The memory crate (`tutti-memory`) owns the meaning of everything here (it builds the rows,
//! encodes the moment chunks, computes rewards); this module owns the SQL. A [`MemWrite`] is
//! one atomic unit inside the writer's batch transaction: a unit that fails writes nothing,
//! and the units around it in the same [`Store::memory_write`] call still commit (they run
//! together in one savepoint, and one savepoint each only once one of them failed: see
//! `apply_writes`). A unit that is a whole episode (start, steps, moments, completion) whose
//! key is new is stored in one go, its row inserted already completed. Episodes are addressed
//! by their unique `key`, so a unit replayed after a lost acknowledgement (a retry, a spill
//! file) finds what is already there: starting an existing episode answers its id, steps and
//! chunks already stored are skipped (`INSERT OR IGNORE` on their keys), completing a
//! completed episode is a conflict. The text rows (`mem_fts`) of the episodes a call created
//! are written by one statement at its end (see `PendingText`).
//!
//! Must never: decode a moment blob (it is opaque here), compute anything but storage
//! bookkeeping, or leave a unit half-written.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::error::{db, StoreError};
use crate::{model, Store};

/// Longest episode key, in bytes.
pub const MAX_MEM_KEY_LEN: usize = 128;
/// Longest episode kind, in bytes.
pub const MAX_MEM_KIND_LEN: usize = 64;
/// Longest context text or notes, in bytes.
pub const MAX_MEM_TEXT_LEN: usize = 16 << 10;
/// Largest step `data_json`, in bytes.
pub const MAX_MEM_STEP_JSON: usize = 16 << 10;
/// Largest moment chunk, in bytes.
pub const MAX_MEM_CHUNK: usize = 4 << 20;

/// The context of an episode as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemContext {
    /// What kind of episode (`show`, `rehearsal`, `task`, …).
    pub kind: String,
    /// The piece (or any grouping within the kind).
    pub piece: Option<String>,
    /// The spec version the episode ran.
    pub spec_version: Option<i64>,
    /// The ensemble it belongs to (for permissions).
    pub ensemble_id: Option<i64>,
    /// What it is about, e.g. `show:42`.
    pub subject: Option<String>,
    /// Where it happened.
    pub venue: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Free text.
    pub text: String,
}

/// One step as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemStepRow {
    /// Position in the episode's steps, from 0.
    pub seq: i64,
    /// Unix ms.
    pub at_ms: i64,
    /// What kind of step (`override`, `section`, `feedback`, …).
    pub kind: String,
    /// Its data (a JSON document).
    pub data_json: String,
}

/// A chunk of consecutive moments, encoded by the memory crate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemChunkRow {
    /// Position of the first moment in the episode's moments, from 0.
    pub first_seq: i64,
    /// Moments in the chunk.
    pub count: i64,
    /// Dimension of their vectors.
    pub dims: i64,
    /// The encoded moments.
    pub data: Vec<u8>,
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemStatus {
    /// Still recording.
    Open,
    /// Ended normally.
    Completed,
    /// Cut short by a crash; completed on the next start.
    Interrupted,
    /// Given up by whoever recorded it.
    Abandoned,
}

impl MemStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Interrupted => "interrupted",
            Self::Abandoned => "abandoned",
        }
    }
}

impl std::str::FromStr for MemStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "open" => Self::Open,
            "completed" => Self::Completed,
            "interrupted" => Self::Interrupted,
            "abandoned" => Self::Abandoned,
            other => {
                return Err(StoreError::Invalid {
                    field: "status",
                    value: other.to_owned(),
                    reason: "not an episode status".into(),
                })
            }
        })
    }
}

/// One operation on an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum MemOp {
    /// Creates the episode (or finds it, when the key exists).
    Start {
        /// Unique key.
        key: String,
        /// Its context.
        context: MemContext,
        /// Names of its moments' dimensions (JSON array), when it has moments.
        dims_json: Option<String>,
        /// Unix ms.
        started_at_ms: i64,
    },
    /// Appends steps (already stored ones are skipped).
    Steps {
        /// The episode.
        key: String,
        /// The steps.
        steps: Vec<MemStepRow>,
    },
    /// Appends a chunk of moments (an already stored chunk is skipped).
    Moments {
        /// The episode.
        key: String,
        /// The chunk.
        chunk: MemChunkRow,
    },
    /// Ends the episode with its outcome.
    Complete {
        /// The episode.
        key: String,
        /// `completed`, `interrupted` or `abandoned`.
        status: MemStatus,
        /// Unix ms.
        ended_at_ms: i64,
        /// The rating, 0–1.
        rating: Option<f64>,
        /// Notes.
        notes: String,
        /// Measured engagement (JSON object).
        engagement_json: Option<String>,
        /// The reward computed from outcome and engagement.
        reward: f64,
    },
    /// Changes a completed episode's rating (and notes, when given) and reward.
    Rate {
        /// The episode.
        key: String,
        /// The rating, 0–1.
        rating: f64,
        /// New notes (replace the old ones).
        notes: Option<String>,
        /// The reward recomputed with this rating.
        reward: f64,
    },
}

impl MemOp {
    /// The episode the operation is about.
    pub fn key(&self) -> &str {
        match self {
            Self::Start { key, .. }
            | Self::Steps { key, .. }
            | Self::Moments { key, .. }
            | Self::Complete { key, .. }
            | Self::Rate { key, .. } => key,
        }
    }
}

/// What one [`MemWrite`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemWriteDone {
    /// The episode of the last operation.
    pub episode_id: i64,
    /// Whether a `Start` found the episode already there (or a `Complete` found it already
    /// completed the same way: a replay).
    pub existed: bool,
    /// Steps newly stored.
    pub steps: u64,
    /// Moments newly stored.
    pub moments: u64,
    /// When a `Complete` or `Rate` ran: the episode's new place in the completion sequence.
    pub done_seq: Option<i64>,
}

/// Operations applied atomically (all or nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemWrite {
    /// In order.
    pub ops: Vec<MemOp>,
}

/// An episode row.
#[derive(Debug, Clone, PartialEq)]
pub struct MemEpisodeRow {
    /// Id.
    pub id: i64,
    /// Unique key.
    pub key: String,
    /// Context.
    pub context: MemContext,
    /// Dimension names (JSON array).
    pub dims_json: Option<String>,
    /// Status.
    pub status: MemStatus,
    /// Unix ms.
    pub started_at_ms: i64,
    /// Unix ms.
    pub ended_at_ms: Option<i64>,
    /// 0–1.
    pub rating: Option<f64>,
    /// Notes.
    pub notes: String,
    /// JSON object.
    pub engagement_json: Option<String>,
    /// Reward.
    pub reward: Option<f64>,
    /// Steps stored.
    pub steps: i64,
    /// Moments stored.
    pub moments: i64,
    /// Place in the completion sequence (`None` while open).
    pub done_seq: Option<i64>,
}

/// An episode with its steps and moment chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct MemEpisodeFull {
    /// The row.
    pub episode: MemEpisodeRow,
    /// Steps, in order.
    pub steps: Vec<MemStepRow>,
    /// Moment chunks, in order.
    pub chunks: Vec<MemChunkRow>,
}

/// A full-text match.
#[derive(Debug, Clone, PartialEq)]
pub struct MemTextHit {
    /// The episode.
    pub episode: MemEpisodeRow,
    /// BM25 (lower is better, as SQLite reports it).
    pub bm25: f64,
    /// A snippet of the matching text with `[` `]` around matches.
    pub snippet: String,
}

/// A failed derived update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemJournalRow {
    /// Id.
    pub id: i64,
    /// The episode.
    pub episode_id: i64,
    /// What failed (`index`, `patterns`, …).
    pub what: String,
    /// The last error.
    pub error: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Unix ms of the last attempt.
    pub at_ms: i64,
}

/// Counts for `tutti memory check`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemCounts {
    /// Episodes by status.
    pub open: i64,
    /// Completed episodes (any final status).
    pub done: i64,
    /// Steps stored.
    pub steps: i64,
    /// Moments stored (sum over chunks).
    pub moments: i64,
    /// Episodes whose `steps` / `moments` counters disagree with their rows.
    pub counter_mismatches: i64,
    /// Pending journal entries.
    pub journal_pending: i64,
    /// Whether FTS5's integrity check passed.
    pub fts_ok: bool,
    /// FTS5's message when it did not.
    pub fts_error: Option<String>,
}

fn validate_key(key: &str) -> Result<(), StoreError> {
    model::validate_text("key", key, MAX_MEM_KEY_LEN)
}

fn validate_op(op: &MemOp) -> Result<(), StoreError> {
    validate_key(op.key())?;
    match op {
        MemOp::Start {
            context,
            dims_json,
            started_at_ms,
            ..
        } => {
            model::validate_text("kind", &context.kind, MAX_MEM_KIND_LEN)?;
            model::validate_time("started_at_ms", *started_at_ms)?;
            if context.text.len() > MAX_MEM_TEXT_LEN {
                return Err(too_long("text", MAX_MEM_TEXT_LEN));
            }
            if let Some(d) = dims_json {
                model::validate_json("dims_json", d, MAX_MEM_STEP_JSON)?;
            }
        }
        MemOp::Steps { steps, .. } => {
            for s in steps {
                model::validate_time("at_ms", s.at_ms)?;
                model::validate_text("step kind", &s.kind, MAX_MEM_KIND_LEN)?;
                model::validate_json("data_json", &s.data_json, MAX_MEM_STEP_JSON)?;
            }
        }
        MemOp::Moments { chunk, .. } => {
            if chunk.data.len() > MAX_MEM_CHUNK || chunk.count < 1 || chunk.dims < 1 {
                return Err(StoreError::Invalid {
                    field: "chunk",
                    value: format!("{} moments, {} bytes", chunk.count, chunk.data.len()),
                    reason: format!(
                        "must hold at least one moment in at most {MAX_MEM_CHUNK} bytes"
                    ),
                });
            }
        }
        MemOp::Complete {
            ended_at_ms,
            notes,
            engagement_json,
            ..
        } => {
            model::validate_time("ended_at_ms", *ended_at_ms)?;
            if notes.len() > MAX_MEM_TEXT_LEN {
                return Err(too_long("notes", MAX_MEM_TEXT_LEN));
            }
            if let Some(e) = engagement_json {
                model::validate_json("engagement_json", e, MAX_MEM_STEP_JSON)?;
            }
        }
        MemOp::Rate { notes, .. } => {
            if notes.as_ref().is_some_and(|n| n.len() > MAX_MEM_TEXT_LEN) {
                return Err(too_long("notes", MAX_MEM_TEXT_LEN));
            }
        }
    }
    Ok(())
}

fn too_long(field: &'static str, max: usize) -> StoreError {
    StoreError::Invalid {
        field,
        value: String::new(),
        reason: format!("longer than {max} bytes"),
    }
}

macro_rules! episode_cols {
    () => {
        "id, key, kind, piece, spec_version, ensemble_id, subject, venue, tags_json, text, \
         dims_json, status, started_at_ms, ended_at_ms, rating, notes, engagement_json, reward, \
         steps, moments, done_seq"
    };
}

fn episode_row(r: &Row<'_>) -> rusqlite::Result<MemEpisodeRow> {
    let tags_json: String = r.get(8)?;
    Ok(MemEpisodeRow {
        id: r.get(0)?,
        key: r.get(1)?,
        context: MemContext {
            kind: r.get(2)?,
            piece: r.get(3)?,
            spec_version: r.get(4)?,
            ensemble_id: r.get(5)?,
            subject: r.get(6)?,
            venue: r.get(7)?,
            tags: serde_json::from_str(&tags_json).unwrap_or_default(),
            text: r.get(9)?,
        },
        dims_json: r.get(10)?,
        status: crate::ops::parse_col(r, 11)?,
        started_at_ms: r.get(12)?,
        ended_at_ms: r.get(13)?,
        rating: r.get(14)?,
        notes: r.get(15)?,
        engagement_json: r.get(16)?,
        reward: r.get(17)?,
        steps: r.get(18)?,
        moments: r.get(19)?,
        done_seq: r.get(20)?,
    })
}

fn episode_id_by_key(c: &Connection, key: &str) -> Result<Option<(i64, MemStatus)>, StoreError> {
    const OP: &str = "finding an episode";
    c.prepare_cached("SELECT id, status FROM mem_episodes WHERE key = ?1")
        .map_err(db(OP))?
        .query_row([key], |r| Ok((r.get(0)?, crate::ops::parse_col(r, 1)?)))
        .optional()
        .map_err(db(OP))
}

fn open_episode(c: &Connection, key: &str) -> Result<i64, StoreError> {
    match episode_id_by_key(c, key)? {
        None => Err(StoreError::NotFound {
            what: "episode",
            id: key.to_owned(),
        }),
        Some((id, MemStatus::Open)) => Ok(id),
        Some((_, status)) => Err(StoreError::Conflict {
            what: "episode ended",
            value: format!("episode {key:?} is {}", status.as_str()),
        }),
    }
}

fn next_done_seq(c: &Connection) -> Result<i64, StoreError> {
    c.prepare_cached("SELECT coalesce(max(done_seq), 0) + 1 FROM mem_episodes")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db("numbering a completion"))
}

/// An episode this unit just created (saves looking its key up again).
type Fresh = Option<(String, i64)>;

/// The open episode with this key: the one the unit just created, or looked up.
fn open_in_unit(c: &Connection, key: &str, fresh: &Fresh) -> Result<i64, StoreError> {
    match fresh {
        Some((k, id)) if k == key => Ok(*id),
        _ => open_episode(c, key),
    }
}

/// Applies one operation on the writer's connection (inside the unit's savepoint).
fn apply_op(
    c: &Connection,
    op: &MemOp,
    done: &mut MemWriteDone,
    fresh: &mut Fresh,
    text: &mut PendingText,
) -> Result<(), StoreError> {
    match op {
        MemOp::Start {
            key,
            context,
            dims_json,
            started_at_ms,
        } => {
            if let Some((id, _)) = episode_id_by_key(c, key)? {
                done.episode_id = id;
                done.existed = true;
                return Ok(());
            }
            let tags = serde_json::to_string(&context.tags).map_err(|e| StoreError::Invalid {
                field: "tags",
                value: String::new(),
                reason: e.to_string(),
            })?;
            // No RETURNING: it is a trigger to SQLite, and would give the statement a
            // statement journal of its own.
            c.prepare_cached(
                "INSERT INTO mem_episodes (key, kind, piece, spec_version, ensemble_id, \
                 subject, venue, tags_json, text, dims_json, status, started_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open', ?11)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key,
                    context.kind,
                    context.piece,
                    context.spec_version,
                    context.ensemble_id,
                    context.subject,
                    context.venue,
                    tags,
                    context.text,
                    dims_json,
                    started_at_ms
                ])
            })
            .map_err(db("starting an episode"))?;
            done.episode_id = c.last_insert_rowid();
            text.ids.push(done.episode_id);
            *fresh = Some((key.clone(), done.episode_id));
        }
        MemOp::Steps { key, steps } => {
            let id = open_in_unit(c, key, fresh)?;
            done.episode_id = id;
            let mut ins = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO mem_steps (episode_id, seq, at_ms, kind, data_json) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(db("appending steps"))?;
            let mut n = 0u64;
            for s in steps {
                n += ins
                    .execute(params![id, s.seq, s.at_ms, s.kind, s.data_json])
                    .map_err(db("appending steps"))? as u64;
            }
            if n > 0 {
                c.prepare_cached("UPDATE mem_episodes SET steps = steps + ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id, n as i64]))
                    .map_err(db("counting steps"))?;
            }
            done.steps += n;
        }
        MemOp::Moments { key, chunk } => {
            let id = open_in_unit(c, key, fresh)?;
            done.episode_id = id;
            let n = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO mem_moments (episode_id, first_seq, count, dims, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        chunk.first_seq,
                        chunk.count,
                        chunk.dims,
                        chunk.data
                    ])
                })
                .map_err(db("appending moments"))?;
            if n > 0 {
                c.prepare_cached("UPDATE mem_episodes SET moments = moments + ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id, chunk.count]))
                    .map_err(db("counting moments"))?;
                done.moments += chunk.count as u64;
            }
        }
        MemOp::Complete {
            key,
            status,
            ended_at_ms,
            rating,
            notes,
            engagement_json,
            reward,
        } => {
            if *status == MemStatus::Open {
                return Err(StoreError::Invalid {
                    field: "status",
                    value: "open".into(),
                    reason: "an episode completes as completed, interrupted or abandoned".into(),
                });
            }
            // A replayed completion (its acknowledgement was lost) finds its own result.
            let just_started = fresh.as_ref().is_some_and(|(k, _)| k == key);
            let replay: Option<(i64, String, Option<i64>, Option<i64>)> = if just_started {
                None
            } else {
                c.prepare_cached(
                    "SELECT id, status, ended_at_ms, done_seq FROM mem_episodes WHERE key = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .optional()
                })
                .map_err(db("finding an episode"))?
            };
            if let Some((id, st, end, seq)) = replay {
                if st == status.as_str() && end == Some(*ended_at_ms) {
                    done.episode_id = id;
                    done.done_seq = seq;
                    done.existed = true;
                    return Ok(());
                }
            }
            let id = open_in_unit(c, key, fresh)?;
            *fresh = None;
            // The update trigger replaces the text row: it must be there first.
            text.write_if_pending(c, id)?;
            let seq = next_done_seq(c)?;
            c.prepare_cached(
                "UPDATE mem_episodes SET status = ?2, ended_at_ms = ?3, rating = ?4, notes = ?5, \
                 engagement_json = ?6, reward = ?7, done_seq = ?8 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    status.as_str(),
                    ended_at_ms,
                    rating,
                    notes,
                    engagement_json,
                    reward,
                    seq
                ])
            })
            .map_err(db("completing an episode"))?;
            done.episode_id = id;
            done.done_seq = Some(seq);
        }
        MemOp::Rate {
            key,
            rating,
            notes,
            reward,
        } => {
            let id = match episode_id_by_key(c, key)? {
                None => {
                    return Err(StoreError::NotFound {
                        what: "episode",
                        id: key.clone(),
                    })
                }
                Some((_, MemStatus::Open)) => {
                    return Err(StoreError::Conflict {
                        what: "episode open",
                        value: format!("episode {key:?} is still open; rate it once it ends"),
                    })
                }
                Some((id, _)) => id,
            };
            text.write_if_pending(c, id)?;
            let seq = next_done_seq(c)?;
            match notes {
                Some(n) => c
                    .prepare_cached(
                        "UPDATE mem_episodes SET rating = ?2, reward = ?3, done_seq = ?4, \
                         notes = ?5 WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![id, rating, reward, seq, n])),
                None => c
                    .prepare_cached(
                        "UPDATE mem_episodes SET rating = ?2, reward = ?3, done_seq = ?4 \
                         WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![id, rating, reward, seq])),
            }
            .map_err(db("rating an episode"))?;
            done.episode_id = id;
            done.done_seq = Some(seq);
        }
    }
    Ok(())
}

/// Runs one statement that controls a savepoint (cached: it is parsed once).
fn savepoint_sql(c: &Connection, sql: &str) -> Result<(), StoreError> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(db("controlling a savepoint"))
}

/// Episodes inserted by the current write whose text row (`mem_fts`) is not written yet.
///
/// FTS5 writes its pending terms out as a new segment at every savepoint, and every statement
/// that needs a statement journal opens one: a text row inserted per episode (as the trigger
/// of migration 4 did) made a segment, and its merges, per episode. The rows are instead
/// inserted by one statement at the end of the write (the same transaction), or earlier for
/// an episode whose text or notes are about to change (the update trigger replaces its row,
/// which must be there).
#[derive(Debug, Default, Clone)]
struct PendingText {
    ids: Vec<i64>,
}

impl PendingText {
    /// Writes every pending text row (one statement).
    fn write(&mut self, c: &Connection) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let mut list = String::with_capacity(self.ids.len() * 8 + 2);
        list.push('[');
        for (i, id) in self.ids.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(&id.to_string());
        }
        list.push(']');
        c.prepare_cached(
            "INSERT INTO mem_fts(rowid, text, notes) SELECT id, text, notes FROM mem_episodes \
             WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .and_then(|mut s| s.execute([list]))
        .map_err(db("indexing episode text"))?;
        self.ids.clear();
        Ok(())
    }

    /// Writes the pending rows when episode `id` is among them.
    fn write_if_pending(&mut self, c: &Connection, id: i64) -> Result<(), StoreError> {
        if self.ids.contains(&id) {
            self.write(c)?;
        }
        Ok(())
    }
}

/// Applies one unit's operations, without a savepoint of its own: on an error the caller
/// undoes what it wrote (and forgets what it added to `text`).
fn apply_unit(
    c: &Connection,
    w: &MemWrite,
    text: &mut PendingText,
) -> Result<MemWriteDone, StoreError> {
    let mut done = MemWriteDone {
        episode_id: 0,
        existed: false,
        steps: 0,
        moments: 0,
        done_seq: None,
    };
    if let Some(whole) = Whole::of(w) {
        if insert_whole(c, &whole, &mut done, text)? {
            return Ok(done);
        }
    }
    let mut fresh = None;
    w.ops
        .iter()
        .try_for_each(|op| apply_op(c, op, &mut done, &mut fresh, text))?;
    Ok(done)
}

/// A unit that is a whole episode: `Start`, its steps and moments, `Complete` (what
/// `Memory::record` sends for a completed episode).
struct Whole<'a> {
    key: &'a str,
    context: &'a MemContext,
    dims_json: &'a Option<String>,
    started_at_ms: i64,
    steps: &'a [MemStepRow],
    chunk: Option<&'a MemChunkRow>,
    status: MemStatus,
    ended_at_ms: i64,
    rating: Option<f64>,
    notes: &'a str,
    engagement_json: &'a Option<String>,
    reward: f64,
}

impl<'a> Whole<'a> {
    fn of(w: &'a MemWrite) -> Option<Whole<'a>> {
        let (first, rest) = w.ops.split_first()?;
        let (last, middle) = rest.split_last()?;
        let MemOp::Start {
            key,
            context,
            dims_json,
            started_at_ms,
        } = first
        else {
            return None;
        };
        let MemOp::Complete {
            key: done_key,
            status,
            ended_at_ms,
            rating,
            notes,
            engagement_json,
            reward,
        } = last
        else {
            return None;
        };
        if done_key != key || *status == MemStatus::Open {
            return None;
        }
        let (mut steps, mut chunk): (&[MemStepRow], _) = (&[], None);
        match middle {
            [] => {}
            [MemOp::Steps { key: k, steps: s }] if k == key => steps = s,
            [MemOp::Moments { key: k, chunk: c }] if k == key => chunk = Some(c),
            [MemOp::Steps { key: k1, steps: s }, MemOp::Moments { key: k2, chunk: c }]
                if k1 == key && k2 == key =>
            {
                steps = s;
                chunk = Some(c);
            }
            _ => return None,
        }
        Some(Whole {
            key,
            context,
            dims_json,
            started_at_ms: *started_at_ms,
            steps,
            chunk,
            status: *status,
            ended_at_ms: *ended_at_ms,
            rating: *rating,
            notes,
            engagement_json,
            reward: *reward,
        })
    }
}

/// Stores a whole episode whose key is new with one row written once: already completed,
/// its counters and place in the completion sequence set (the same rows the operations one
/// by one would leave, without updating the episode three times). Returns `false`, having
/// written nothing, when the key exists: the operations one by one then say what a replay
/// finds.
fn insert_whole(
    c: &Connection,
    w: &Whole<'_>,
    done: &mut MemWriteDone,
    text: &mut PendingText,
) -> Result<bool, StoreError> {
    if episode_id_by_key(c, w.key)?.is_some() {
        return Ok(false);
    }
    let tags = serde_json::to_string(&w.context.tags).map_err(|e| StoreError::Invalid {
        field: "tags",
        value: String::new(),
        reason: e.to_string(),
    })?;
    let seq = next_done_seq(c)?;
    let moments = w.chunk.map_or(0, |ch| ch.count);
    c.prepare_cached(
        "INSERT INTO mem_episodes (key, kind, piece, spec_version, ensemble_id, subject, \
         venue, tags_json, text, dims_json, status, started_at_ms, ended_at_ms, rating, \
         notes, engagement_json, reward, steps, moments, done_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
         ?17, ?18, ?19, ?20)",
    )
    .and_then(|mut s| {
        s.execute(params![
            w.key,
            w.context.kind,
            w.context.piece,
            w.context.spec_version,
            w.context.ensemble_id,
            w.context.subject,
            w.context.venue,
            tags,
            w.context.text,
            w.dims_json,
            w.status.as_str(),
            w.started_at_ms,
            w.ended_at_ms,
            w.rating,
            w.notes,
            w.engagement_json,
            w.reward,
            w.steps.len() as i64,
            moments,
            seq
        ])
    })
    .map_err(db("recording an episode"))?;
    let id = c.last_insert_rowid();
    text.ids.push(id);
    let mut n = 0u64;
    if !w.steps.is_empty() {
        let mut ins = c
            .prepare_cached(
                "INSERT OR IGNORE INTO mem_steps (episode_id, seq, at_ms, kind, data_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db("appending steps"))?;
        for s in w.steps {
            n += ins
                .execute(params![id, s.seq, s.at_ms, s.kind, s.data_json])
                .map_err(db("appending steps"))? as u64;
        }
        if n != w.steps.len() as u64 {
            // Two steps of the unit had the same position: count what was kept.
            c.prepare_cached("UPDATE mem_episodes SET steps = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, n as i64]))
                .map_err(db("counting steps"))?;
        }
    }
    if let Some(ch) = w.chunk {
        c.prepare_cached(
            "INSERT INTO mem_moments (episode_id, first_seq, count, dims, data) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| s.execute(params![id, ch.first_seq, ch.count, ch.dims, ch.data]))
        .map_err(db("appending moments"))?;
    }
    done.episode_id = id;
    done.steps = n;
    done.moments = u64::try_from(moments).unwrap_or(0);
    done.done_seq = Some(seq);
    Ok(true)
}

/// Applies the units of one [`Store::memory_write`]: each unit all or nothing, and a unit
/// that fails leaves the others to commit.
///
/// Units usually succeed (they were validated before they were queued), so they first run
/// together inside one savepoint. A savepoint per unit is not free: it makes FTS5 write its
/// pending terms out (see [`PendingText`]) and the sub-journal is truncated, walking it, at
/// each release. Should a unit fail, everything since that savepoint is rolled back, the
/// units before it are applied again (they succeeded on this same state, so they do again),
/// and the rest run one savepoint each, as they always could.
///
/// An error here (a savepoint that cannot be rolled back, the text rows that cannot be
/// written) fails the whole job: the writer then rolls back everything this call wrote.
fn apply_writes(
    c: &Connection,
    writes: &[MemWrite],
) -> Result<Vec<Result<MemWriteDone, StoreError>>, StoreError> {
    let mut out = Vec::with_capacity(writes.len());
    let mut text = PendingText::default();
    savepoint_sql(c, "SAVEPOINT mem_batch")?;
    let mut failed = None;
    for (i, w) in writes.iter().enumerate() {
        match apply_unit(c, w, &mut text) {
            Ok(done) => out.push(Ok(done)),
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    let Some((bad, err)) = failed else {
        text.write(c)?;
        savepoint_sql(c, "RELEASE mem_batch")?;
        return Ok(out);
    };
    savepoint_sql(c, "ROLLBACK TO mem_batch")?;
    out.clear();
    text = PendingText::default();
    for w in &writes[..bad] {
        match apply_unit(c, w, &mut text) {
            Ok(done) => out.push(Ok(done)),
            Err(_) => {
                // Not the same the second time: undo, and give every unit its own savepoint.
                savepoint_sql(c, "ROLLBACK TO mem_batch")?;
                savepoint_sql(c, "RELEASE mem_batch")?;
                let mut text = PendingText::default();
                let out = apply_one_by_one(c, writes, &mut text)?;
                text.write(c)?;
                return Ok(out);
            }
        }
    }
    savepoint_sql(c, "RELEASE mem_batch")?;
    out.push(Err(err));
    out.extend(apply_one_by_one(c, &writes[bad + 1..], &mut text)?);
    text.write(c)?;
    Ok(out)
}

/// Runs each unit in its own savepoint (nested inside the job's).
fn apply_one_by_one(
    c: &Connection,
    writes: &[MemWrite],
    text: &mut PendingText,
) -> Result<Vec<Result<MemWriteDone, StoreError>>, StoreError> {
    let mut out = Vec::with_capacity(writes.len());
    for w in writes {
        let before = text.clone();
        savepoint_sql(c, "SAVEPOINT mem_unit")?;
        match apply_unit(c, w, text) {
            Ok(done) => {
                savepoint_sql(c, "RELEASE mem_unit")?;
                out.push(Ok(done));
            }
            Err(e) => {
                // Undo this unit only (text rows it wrote for earlier units included).
                savepoint_sql(c, "ROLLBACK TO mem_unit")?;
                savepoint_sql(c, "RELEASE mem_unit")?;
                *text = before;
                out.push(Err(e));
            }
        }
    }
    Ok(out)
}

fn steps_of(c: &Connection, id: i64) -> Result<Vec<MemStepRow>, StoreError> {
    const OP: &str = "reading steps";
    let mut stmt = c
        .prepare_cached(
            "SELECT seq, at_ms, kind, data_json FROM mem_steps WHERE episode_id = ?1 ORDER BY seq",
        )
        .map_err(db(OP))?;
    let rows = stmt
        .query_map([id], |r| {
            Ok(MemStepRow {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                kind: r.get(2)?,
                data_json: r.get(3)?,
            })
        })
        .map_err(db(OP))?;
    rows.collect::<Result<_, _>>().map_err(db(OP))
}

fn chunks_of(c: &Connection, id: i64) -> Result<Vec<MemChunkRow>, StoreError> {
    const OP: &str = "reading moments";
    let mut stmt = c
        .prepare_cached(
            "SELECT first_seq, count, dims, data FROM mem_moments WHERE episode_id = ?1 \
             ORDER BY first_seq",
        )
        .map_err(db(OP))?;
    let rows = stmt
        .query_map([id], |r| {
            Ok(MemChunkRow {
                first_seq: r.get(0)?,
                count: r.get(1)?,
                dims: r.get(2)?,
                data: r.get(3)?,
            })
        })
        .map_err(db(OP))?;
    rows.collect::<Result<_, _>>().map_err(db(OP))
}

fn full(c: &Connection, episode: MemEpisodeRow) -> Result<MemEpisodeFull, StoreError> {
    let steps = steps_of(c, episode.id)?;
    let chunks = chunks_of(c, episode.id)?;
    Ok(MemEpisodeFull {
        episode,
        steps,
        chunks,
    })
}

fn episode_by_id(c: &Connection, id: i64) -> Result<Option<MemEpisodeRow>, StoreError> {
    const OP: &str = "reading an episode";
    c.prepare_cached(concat!(
        "SELECT ",
        episode_cols!(),
        " FROM mem_episodes WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], episode_row)
    .optional()
    .map_err(db(OP))
}

fn episode_by_key(c: &Connection, key: &str) -> Result<Option<MemEpisodeRow>, StoreError> {
    const OP: &str = "reading an episode";
    c.prepare_cached(concat!(
        "SELECT ",
        episode_cols!(),
        " FROM mem_episodes WHERE key = ?1"
    ))
    .map_err(db(OP))?
    .query_row([key], episode_row)
    .optional()
    .map_err(db(OP))
}

fn query_episodes(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<MemEpisodeRow>, StoreError> {
    const OP: &str = "listing episodes";
    let mut stmt = c.prepare_cached(sql).map_err(db(OP))?;
    let rows = stmt.query_map(p, episode_row).map_err(db(OP))?;
    rows.collect::<Result<_, _>>().map_err(db(OP))
}

/// Turns a free-text query into an FTS5 expression: each word quoted (so no FTS syntax can
/// be injected), words OR-ed.
fn fts_expression(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(32)
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" OR "))
}

impl Store {
    /// Applies memory writes in one batch transaction, each unit in its own savepoint;
    /// returns each unit's outcome once the transaction has committed. A unit that fails
    /// validation here fails alone, before anything is queued.
    pub async fn memory_write(
        &self,
        writes: Vec<MemWrite>,
    ) -> Result<Vec<Result<MemWriteDone, StoreError>>, StoreError> {
        let mut valid = Vec::with_capacity(writes.len());
        let mut early: Vec<Option<StoreError>> = Vec::with_capacity(writes.len());
        for w in writes {
            match w.ops.iter().try_for_each(validate_op) {
                Ok(()) => {
                    valid.push(w);
                    early.push(None);
                }
                Err(e) => early.push(Some(e)),
            }
        }
        let applied = if valid.is_empty() {
            Vec::new()
        } else {
            self.write(move |c| apply_writes(c, &valid)).await?
        };
        let mut applied = applied.into_iter();
        Ok(early
            .into_iter()
            .map(|e| match e {
                Some(e) => Err(e),
                None => applied
                    .next()
                    .unwrap_or_else(|| Err(StoreError::Internal("lost a memory write".into()))),
            })
            .collect())
    }

    /// An episode by id, with its steps and moment chunks.
    pub async fn memory_episode(&self, id: i64) -> Result<Option<MemEpisodeFull>, StoreError> {
        self.read(move |c| episode_by_id(c, id)?.map(|e| full(c, e)).transpose())
            .await
    }

    /// An episode by key (the row only).
    pub async fn memory_episode_by_key(
        &self,
        key: &str,
    ) -> Result<Option<MemEpisodeRow>, StoreError> {
        let key = key.to_owned();
        self.read(move |c| episode_by_key(c, &key)).await
    }

    /// The latest episode about `subject` (e.g. `show:42`), if any.
    pub async fn memory_latest_of(
        &self,
        subject: &str,
    ) -> Result<Option<MemEpisodeRow>, StoreError> {
        let subject = subject.to_owned();
        self.read(move |c| {
            Ok(query_episodes(
                c,
                concat!(
                    "SELECT ",
                    episode_cols!(),
                    " FROM mem_episodes WHERE subject = ?1 ORDER BY id DESC LIMIT 1"
                ),
                [subject],
            )?
            .pop())
        })
        .await
    }

    /// Episodes about `subject`, oldest first.
    pub async fn memory_episodes_of(
        &self,
        subject: &str,
    ) -> Result<Vec<MemEpisodeRow>, StoreError> {
        let subject = subject.to_owned();
        self.read(move |c| {
            query_episodes(
                c,
                concat!(
                    "SELECT ",
                    episode_cols!(),
                    " FROM mem_episodes WHERE subject = ?1 ORDER BY id"
                ),
                [subject],
            )
        })
        .await
    }

    /// Every open episode, oldest first, with its steps and moments (to complete them as
    /// interrupted at start).
    pub async fn memory_open_episodes(&self) -> Result<Vec<MemEpisodeFull>, StoreError> {
        self.read(|c| {
            let rows = query_episodes(
                c,
                concat!(
                    "SELECT ",
                    episode_cols!(),
                    " FROM mem_episodes WHERE status = 'open' ORDER BY id"
                ),
                [],
            )?;
            rows.into_iter().map(|e| full(c, e)).collect()
        })
        .await
    }

    /// Up to `limit` completed episodes with `done_seq > after`, in `done_seq` order, each
    /// with its steps and moments: the feed the in-memory indexes are built from.
    pub async fn memory_done_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<MemEpisodeFull>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let rows = query_episodes(
                c,
                concat!(
                    "SELECT ",
                    episode_cols!(),
                    " FROM mem_episodes WHERE done_seq > ?1 ORDER BY done_seq LIMIT ?2"
                ),
                params![after, limit],
            )?;
            rows.into_iter().map(|e| full(c, e)).collect()
        })
        .await
    }

    /// Up to `limit` episodes with `id > after_id` (any status), in id order, with steps and
    /// moments: for exports.
    pub async fn memory_episodes_after(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<MemEpisodeFull>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let rows = query_episodes(
                c,
                concat!(
                    "SELECT ",
                    episode_cols!(),
                    " FROM mem_episodes WHERE id > ?1 ORDER BY id LIMIT ?2"
                ),
                params![after_id, limit],
            )?;
            rows.into_iter().map(|e| full(c, e)).collect()
        })
        .await
    }

    /// Full-text search (FTS5, BM25) over context text and notes; optionally within a kind
    /// and piece. Words are matched as words (no query syntax).
    pub async fn memory_search_text(
        &self,
        query: &str,
        kind: Option<String>,
        piece: Option<String>,
        limit: usize,
    ) -> Result<Vec<MemTextHit>, StoreError> {
        let Some(expr) = fts_expression(query) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            const OP: &str = "searching episode text";
            let sql = "SELECT bm25(mem_fts), snippet(mem_fts, -1, '[', ']', '…', 12), e.id \
                 FROM mem_fts JOIN mem_episodes e ON e.id = mem_fts.rowid \
                 WHERE mem_fts MATCH ?1 AND (?2 IS NULL OR e.kind = ?2) \
                 AND (?3 IS NULL OR e.piece = ?3) ORDER BY bm25(mem_fts) LIMIT ?4";
            let mut stmt = c.prepare_cached(sql).map_err(db(OP))?;
            let hits: Vec<(f64, String, i64)> = stmt
                .query_map(params![expr, kind, piece, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(db(OP))?
                .collect::<Result<_, _>>()
                .map_err(db(OP))?;
            let mut out = Vec::with_capacity(hits.len());
            for (bm25, snippet, id) in hits {
                if let Some(episode) = episode_by_id(c, id)? {
                    out.push(MemTextHit {
                        episode,
                        bm25,
                        snippet,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Records that a derived update of an episode failed (or failed again).
    pub async fn memory_journal_failure(
        &self,
        episode_id: i64,
        what: &str,
        error: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let (what, error) = (
            what.to_owned(),
            error.chars().take(2000).collect::<String>(),
        );
        self.write(move |c| {
            let updated = c
                .prepare_cached(
                    "UPDATE mem_journal SET attempts = attempts + 1, error = ?3, at_ms = ?4 \
                     WHERE episode_id = ?1 AND what = ?2 AND resolved_at_ms IS NULL",
                )
                .and_then(|mut s| s.execute(params![episode_id, what, error, at_ms]))
                .map_err(db("journalling a failure"))?;
            if updated == 0 {
                c.prepare_cached(
                    "INSERT INTO mem_journal (episode_id, what, error, at_ms) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![episode_id, what, error, at_ms]))
                .map_err(db("journalling a failure"))?;
            }
            Ok(())
        })
        .await
    }

    /// Marks an episode's pending journal entries resolved.
    pub async fn memory_journal_resolve(
        &self,
        episode_ids: Vec<i64>,
        at_ms: i64,
    ) -> Result<u64, StoreError> {
        self.write(move |c| {
            let mut n = 0;
            let mut stmt = c
                .prepare_cached(
                    "UPDATE mem_journal SET resolved_at_ms = ?2 \
                     WHERE episode_id = ?1 AND resolved_at_ms IS NULL",
                )
                .map_err(db("resolving journal entries"))?;
            for id in episode_ids {
                n += stmt
                    .execute(params![id, at_ms])
                    .map_err(db("resolving journal entries"))? as u64;
            }
            Ok(n)
        })
        .await
    }

    /// Pending journal entries, oldest first.
    pub async fn memory_journal_pending(&self) -> Result<Vec<MemJournalRow>, StoreError> {
        self.read(|c| {
            const OP: &str = "reading the journal";
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, episode_id, what, error, attempts, at_ms FROM mem_journal \
                     WHERE resolved_at_ms IS NULL ORDER BY id LIMIT 10000",
                )
                .map_err(db(OP))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(MemJournalRow {
                        id: r.get(0)?,
                        episode_id: r.get(1)?,
                        what: r.get(2)?,
                        error: r.get(3)?,
                        attempts: r.get(4)?,
                        at_ms: r.get(5)?,
                    })
                })
                .map_err(db(OP))?;
            rows.collect::<Result<_, _>>().map_err(db(OP))
        })
        .await
    }

    /// Counts and consistency checks of the memory's tables (FTS5's own integrity check
    /// against the episodes, step and moment counters against their rows).
    /// Runs on the writer: FTS5's check is a statement read-only connections refuse.
    pub async fn memory_counts(&self) -> Result<MemCounts, StoreError> {
        self.write(|c| {
            const OP: &str = "counting the memory";
            let one = |sql: &str| -> Result<i64, StoreError> {
                c.query_row(sql, [], |r| r.get(0)).map_err(db(OP))
            };
            let mut counts = MemCounts {
                open: one("SELECT count(*) FROM mem_episodes WHERE status = 'open'")?,
                done: one("SELECT count(*) FROM mem_episodes WHERE status <> 'open'")?,
                steps: one("SELECT count(*) FROM mem_steps")?,
                moments: one("SELECT coalesce(sum(count), 0) FROM mem_moments")?,
                counter_mismatches: one("SELECT count(*) FROM mem_episodes e WHERE e.steps <> \
                     (SELECT count(*) FROM mem_steps s WHERE s.episode_id = e.id) \
                     OR e.moments <> (SELECT coalesce(sum(count), 0) FROM mem_moments m \
                     WHERE m.episode_id = e.id)")?,
                journal_pending: one(
                    "SELECT count(*) FROM mem_journal WHERE resolved_at_ms IS NULL",
                )?,
                fts_ok: true,
                fts_error: None,
            };
            if let Err(e) = c.execute(
                "INSERT INTO mem_fts(mem_fts, rank) VALUES ('integrity-check', 1)",
                [],
            ) {
                counts.fts_ok = false;
                counts.fts_error = Some(e.to_string());
            }
            Ok(counts)
        })
        .await
    }

    /// Repairs what [`Store::memory_counts`] found: rebuilds the FTS5 index from the
    /// episodes and recounts every episode's steps and moments. Returns the episodes whose
    /// counters changed.
    pub async fn memory_repair(&self) -> Result<u64, StoreError> {
        self.write(|c| {
            c.execute("INSERT INTO mem_fts(mem_fts) VALUES ('rebuild')", [])
                .map_err(db("rebuilding the text index"))?;
            let n = c
                .execute(
                    "UPDATE mem_episodes SET \
                     steps = (SELECT count(*) FROM mem_steps s WHERE s.episode_id = mem_episodes.id), \
                     moments = (SELECT coalesce(sum(count), 0) FROM mem_moments m \
                                WHERE m.episode_id = mem_episodes.id) \
                     WHERE steps <> (SELECT count(*) FROM mem_steps s WHERE s.episode_id = mem_episodes.id) \
                     OR moments <> (SELECT coalesce(sum(count), 0) FROM mem_moments m \
                                    WHERE m.episode_id = mem_episodes.id)",
                    [],
                )
                .map_err(db("recounting episodes"))?;
            Ok(n as u64)
        })
        .await
    }

    /// The highest `done_seq` stored (0 when none).
    pub async fn memory_done_seq(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT coalesce(max(done_seq), 0) FROM mem_episodes",
                [],
                |r| r.get(0),
            )
            .map_err(db("reading the completion sequence"))
        })
        .await
    }

    /// Test support: runs arbitrary SQL on the writer (to damage the memory's tables on
    /// purpose in tests of `check`). Not for production use.
    #[doc(hidden)]
    pub async fn memory_test_sql(&self, sql: &str) -> Result<(), StoreError> {
        let sql = sql.to_owned();
        self.write(move |c| c.execute_batch(&sql).map_err(db("running test SQL")))
            .await
    }
}
