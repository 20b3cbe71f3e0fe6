//! The in-memory indexes, derived from the store: every completed episode, organised as a
//! hierarchy **kind → piece → (vector space) → section → time bucket**, with a
//! nearest-neighbour set over each space's moments, a structure vector per episode, BM25
//! postings over its text, and the patterns of each scope.
//!
//! * A **scope** is a (kind, piece) pair: the first two levels. Queries name it, so they only
//!   ever touch its episodes.
//! * A **space** is the set of moments of a scope that share dimension names (a piece whose
//!   spec changed its parameters gets a second space): the moments' vectors, their metadata,
//!   and the last two levels of the hierarchy, a posting list of moment ids per
//!   (section, time bucket), where the time bucket is the moment's elapsed fraction of its
//!   episode in tenths.
//! * A **structure set** holds one vector per episode of a scope (the shape of its steps, its
//!   length, and the mean and spread of its moments): "episodes like this one".
//!
//! Rebuilt completely from every completed episode at start ([`Index::insert`] for each, then
//! [`Index::finish_bulk`]); afterwards updated one episode at a time by the memory's single
//! writer (the flusher task), while queries hold the read lock.
//!
//! Must never: be the only copy of anything (the store is), or be written by two threads.

// Numeric kernels index several arrays in step; a range loop says that most plainly.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

use tutti_store::{MemEpisodeFull, MemStatus};

use crate::codec;
use crate::error::MemoryError;
use crate::model::Moment;
use crate::patterns::{EpisodeFacts, Patterns};
use crate::text::TextIndex;
use crate::vector::{AnnConfig, VecSet};

/// Time buckets per episode (tenths of its length).
pub const BUCKETS: usize = 10;
/// Dimensions of the generic part of a structure vector.
pub const STRUCT_DIMS: usize = 16;

/// The time bucket of an elapsed fraction.
pub fn bucket_of(frac: f32) -> u8 {
    ((frac.clamp(0.0, 0.9999) * BUCKETS as f32) as usize).min(BUCKETS - 1) as u8
}

/// Strings to small ids.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    map: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `s`, adding it.
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.map.insert(s.into(), i);
        self.names.push(s.into());
        i
    }

    /// The id of `s`, if known.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }

    /// The string of an id.
    pub fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", |s| s)
    }
}

/// A non-moment step of an episode, kept for patterns and suggestions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// Seconds from the episode's start.
    pub at_s: f32,
    /// Step kind (interned).
    pub kind: u32,
    /// Its label, or its kind when it has none (interned).
    pub label: u32,
}

/// An indexed episode.
#[derive(Debug, Clone)]
pub struct EpDoc {
    /// Store id.
    pub id: i64,
    /// Key.
    pub key: Box<str>,
    /// Scope.
    pub scope: u32,
    /// Ensemble (permissions).
    pub ensemble_id: Option<i64>,
    /// Venue (interned).
    pub venue: Option<u32>,
    /// Tags (interned).
    pub tags: Vec<u32>,
    /// Final status.
    pub status: MemStatus,
    /// Unix ms.
    pub started_at_ms: i64,
    /// Unix ms.
    pub ended_at_ms: i64,
    /// Rating.
    pub rating: Option<f32>,
    /// Reward.
    pub reward: f32,
    /// Steps.
    pub steps: u32,
    /// Non-moment steps.
    pub events: Vec<Event>,
    /// Its moments: space, first moment id, count.
    pub moments: Option<(u32, u32, u32)>,
    /// Its structure vector: structure set, id.
    pub structure: (u32, u32),
}

impl EpDoc {
    /// Length in seconds (at least one).
    pub fn duration_s(&self) -> f32 {
        ((self.ended_at_ms - self.started_at_ms) as f32 / 1000.0).max(1.0)
    }
}

/// Where a moment is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MomentMeta {
    /// Its episode (index into [`Index::docs`]).
    pub doc: u32,
    /// Its position among the episode's moments.
    pub seq: u32,
    /// Seconds from the episode's start.
    pub at_s: f32,
    /// Section (interned in the space; `u16::MAX` for none).
    pub section: u16,
    /// Time bucket.
    pub bucket: u8,
}

/// The moments of a scope with one set of dimension names.
#[derive(Debug)]
pub struct Space {
    /// Dimension names.
    pub dims: Vec<String>,
    /// The vectors.
    pub set: VecSet,
    /// Metadata by moment id.
    pub meta: Vec<MomentMeta>,
    /// Section names.
    pub sections: Interner,
    /// The last two levels of the hierarchy: moment ids per (section, bucket).
    pub hier: HashMap<(u16, u8), Vec<u32>>,
}

/// Structure vectors of a scope's episodes with the same shape.
#[derive(Debug)]
pub struct StructSet {
    /// The space whose moments' mean and spread are part of the vector (`None`: no moments).
    pub space: Option<u32>,
    /// Vectors.
    pub set: VecSet,
    /// Episode of each vector.
    pub docs: Vec<u32>,
}

/// A (kind, piece) scope.
#[derive(Debug)]
pub struct Scope {
    /// Kind (interned).
    pub kind: u32,
    /// Piece (interned).
    pub piece: Option<u32>,
    /// Its episodes, in the order they were indexed.
    pub docs: Vec<u32>,
    /// Its vector spaces.
    pub spaces: Vec<Space>,
    /// Its structure sets.
    pub structures: Vec<StructSet>,
    /// Its patterns.
    pub patterns: Patterns,
}

/// Counts of what is indexed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IndexStats {
    /// Episodes.
    pub episodes: u64,
    /// Moments.
    pub moments: u64,
    /// Scopes (kind, piece).
    pub scopes: u64,
    /// Vector spaces.
    pub spaces: u64,
    /// Spaces searched through the approximate index.
    pub approximate_spaces: u64,
    /// Bytes held by the moment indexes (vectors, metadata, hierarchy, inverted files).
    pub moment_bytes: u64,
    /// Bytes held by everything else (episodes, structure, text, patterns).
    pub other_bytes: u64,
    /// The highest completion number indexed.
    pub done_seq: i64,
}

/// Everything derived.
#[derive(Debug)]
pub struct Index {
    /// Indexed episodes.
    pub docs: Vec<EpDoc>,
    /// Store id → index into `docs`.
    pub by_id: HashMap<i64, u32>,
    /// The scope of each doc, densely (filters read it without touching `docs`).
    pub doc_scope: Vec<u32>,
    /// Kinds, pieces, venues, tags, step kinds and labels.
    pub syms: Interner,
    /// (kind, piece) → scope.
    pub scope_of: HashMap<(u32, Option<u32>), u32>,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Text of every episode.
    pub text: TextIndex,
    /// Nearest-neighbour settings.
    pub ann: AnnConfig,
    /// The highest completion number indexed.
    pub done_seq: i64,
    /// Completion numbers indexed (to skip what was already applied).
    applied: std::collections::HashSet<i64>,
}

fn hash_bucket(s: &str, n: usize) -> usize {
    // FNV-1a: stable across runs and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % n as u64) as usize
}

/// The generic part of an episode's structure vector: the mix of its step kinds (hashed into
/// 8 bins), of consecutive kind pairs (4 bins), its step and moment counts and its length
/// (log-scaled), and whether it was interrupted.
pub fn structure_generic(
    step_kinds: &[&str],
    moments: usize,
    duration_s: f32,
    interrupted: bool,
) -> [f32; STRUCT_DIMS] {
    let mut v = [0f32; STRUCT_DIMS];
    let n = step_kinds.len().max(1) as f32;
    for k in step_kinds {
        v[hash_bucket(k, 8)] += 1.0 / n;
    }
    for w in step_kinds.windows(2) {
        v[8 + hash_bucket(&format!("{}>{}", w[0], w[1]), 4)] += 1.0 / n;
    }
    v[12] = (1.0 + step_kinds.len() as f32).ln() / 8.0;
    v[13] = (1.0 + moments as f32).ln() / 8.0;
    v[14] = (1.0 + duration_s.max(0.0)).ln() / 10.0;
    v[15] = if interrupted { 1.0 } else { 0.0 };
    v
}

/// Mean and standard deviation of each dimension over `moments`.
pub fn moment_stats(moments: &[Moment], d: usize) -> Vec<f32> {
    let mut out = vec![0f32; 2 * d];
    if moments.is_empty() {
        return out;
    }
    let n = moments.len() as f32;
    for m in moments {
        for j in 0..d {
            out[j] += m.vector[j] / n;
        }
    }
    for m in moments {
        for j in 0..d {
            let x = m.vector[j] - out[j];
            out[d + j] += x * x / n;
        }
    }
    for j in 0..d {
        out[d + j] = out[d + j].sqrt();
    }
    out
}

/// An episode decoded from the store, ready to index.
pub struct Decoded {
    /// Dimension names of its moments.
    pub dims: Vec<String>,
    /// Its moments.
    pub moments: Vec<Moment>,
}

/// Decodes an episode's moments (checking every chunk).
pub fn decode(full: &MemEpisodeFull) -> Result<Decoded, MemoryError> {
    let dims: Vec<String> = match &full.episode.dims_json {
        Some(j) => serde_json::from_str(j)
            .map_err(|e| MemoryError::Internal(format!("stored dims are not a list: {e}")))?,
        None => Vec::new(),
    };
    let mut moments = Vec::with_capacity(full.episode.moments.max(0) as usize);
    for c in &full.chunks {
        if c.dims as usize != dims.len() {
            return Err(MemoryError::Internal(format!(
                "a chunk of {} dimensions in an episode of {}",
                c.dims,
                dims.len()
            )));
        }
        if c.first_seq as usize != moments.len() {
            return Err(MemoryError::Internal(format!(
                "moments {}.. stored after {} moments",
                c.first_seq,
                moments.len()
            )));
        }
        moments.extend(codec::decode(&c.data, c.count as usize, dims.len())?);
    }
    Ok(Decoded { dims, moments })
}

impl Index {
    /// An empty index.
    pub fn new(ann: AnnConfig) -> Self {
        Index {
            docs: Vec::new(),
            by_id: HashMap::new(),
            doc_scope: Vec::new(),
            syms: Interner::default(),
            scope_of: HashMap::new(),
            scopes: Vec::new(),
            text: TextIndex::default(),
            ann,
            done_seq: 0,
            applied: Default::default(),
        }
    }

    /// The scope of a kind and piece, if any episode of it is indexed.
    pub fn scope(&self, kind: &str, piece: Option<&str>) -> Option<u32> {
        let k = self.syms.get(kind)?;
        let p = match piece {
            Some(p) => Some(self.syms.get(p)?),
            None => None,
        };
        self.scope_of.get(&(k, p)).copied()
    }

    /// Whether the episode with this completion number was already applied.
    pub fn has_applied(&self, done_seq: i64) -> bool {
        self.applied.contains(&done_seq)
    }

    /// Indexes a completed episode read from the store (or, when it is already indexed,
    /// takes its new outcome). `bulk` defers the nearest-neighbour indexes to
    /// [`Index::finish_bulk`].
    pub fn insert(&mut self, full: &MemEpisodeFull, bulk: bool) -> Result<(), MemoryError> {
        let e = &full.episode;
        let seq = e.done_seq.unwrap_or(0);
        if e.status == MemStatus::Open {
            return Err(MemoryError::Internal(format!("episode {} is open", e.id)));
        }
        if let Some(&doc) = self.by_id.get(&e.id) {
            self.update_outcome(doc, full);
            self.mark(seq);
            return Ok(());
        }
        let decoded = decode(full)?;
        let doc_ix = self.docs.len() as u32;
        let kind = self.syms.id(&e.context.kind);
        let piece = e.context.piece.as_deref().map(|p| self.syms.id(p));
        let scope_ix = match self.scope_of.get(&(kind, piece)) {
            Some(&s) => s,
            None => {
                let s = self.scopes.len() as u32;
                self.scopes.push(Scope {
                    kind,
                    piece,
                    docs: Vec::new(),
                    spaces: Vec::new(),
                    structures: Vec::new(),
                    patterns: Patterns::default(),
                });
                self.scope_of.insert((kind, piece), s);
                s
            }
        };
        let started = e.started_at_ms;
        let ended = e.ended_at_ms.unwrap_or(started).max(started);
        let duration_s = ((ended - started) as f32 / 1000.0).max(0.0);
        let mut events = Vec::new();
        let mut named: Vec<(f32, String)> = Vec::with_capacity(full.steps.len());
        let mut kinds: Vec<&str> = Vec::with_capacity(full.steps.len());
        for s in &full.steps {
            kinds.push(&s.kind);
            let label = serde_json::from_str::<serde_json::Value>(&s.data_json)
                .ok()
                .and_then(|v| v.get("label").and_then(|l| l.as_str()).map(str::to_owned))
                .unwrap_or_else(|| s.kind.clone());
            let at_s = (s.at_ms - started) as f32 / 1000.0;
            events.push(Event {
                at_s,
                kind: self.syms.id(&s.kind),
                label: self.syms.id(&label),
            });
            named.push((at_s, label));
        }
        let tags = e.context.tags.iter().map(|t| self.syms.id(t)).collect();
        let venue = e.context.venue.as_deref().map(|v| self.syms.id(v));
        let generic = structure_generic(
            &kinds,
            decoded.moments.len(),
            duration_s,
            e.status == MemStatus::Interrupted,
        );
        let ann = self.ann;
        let scope = &mut self.scopes[scope_ix as usize];
        // Moments: the space with these dimension names.
        let mut moments_at = None;
        let mut space_ix = None;
        if !decoded.moments.is_empty() {
            let d = decoded.dims.len();
            let si = match scope.spaces.iter().position(|s| s.dims == decoded.dims) {
                Some(i) => i,
                None => {
                    scope.spaces.push(Space {
                        dims: decoded.dims.clone(),
                        set: VecSet::new(d),
                        meta: Vec::new(),
                        sections: Interner::default(),
                        hier: HashMap::new(),
                    });
                    scope.spaces.len() - 1
                }
            };
            let space = &mut scope.spaces[si];
            let first = space.set.len() as u32;
            let len_ms = (ended - started).max(1) as f32;
            for (i, m) in decoded.moments.iter().enumerate() {
                let id = if bulk {
                    space.set.push_unindexed(&m.vector)
                } else {
                    space.set.push(&m.vector)
                };
                let section = match &m.section {
                    Some(s) => space.sections.id(s).min(u32::from(u16::MAX - 1)) as u16,
                    None => u16::MAX,
                };
                let frac = (m.at_ms - started) as f32 / len_ms;
                let bucket = bucket_of(frac);
                space.meta.push(MomentMeta {
                    doc: doc_ix,
                    seq: i as u32,
                    at_s: (m.at_ms - started) as f32 / 1000.0,
                    section,
                    bucket,
                });
                space.hier.entry((section, bucket)).or_default().push(id);
            }
            if !bulk && space.set.needs_index(&ann) {
                space.set.reindex(&ann);
            }
            moments_at = Some((si as u32, first, decoded.moments.len() as u32));
            space_ix = Some(si as u32);
        }
        // Structure: generic part, plus the moments' mean and spread in their space.
        let mut sv: Vec<f32> = generic.to_vec();
        if let Some(si) = space_ix {
            sv.extend(moment_stats(
                &decoded.moments,
                scope.spaces[si as usize].dims.len(),
            ));
        }
        let sti = match scope.structures.iter().position(|s| s.space == space_ix) {
            Some(i) => i,
            None => {
                scope.structures.push(StructSet {
                    space: space_ix,
                    set: VecSet::new(sv.len()),
                    docs: Vec::new(),
                });
                scope.structures.len() - 1
            }
        };
        let st = &mut scope.structures[sti];
        let sid = if bulk {
            st.set.push_unindexed(&sv)
        } else {
            st.set.push(&sv)
        };
        st.docs.push(doc_ix);
        if !bulk && st.set.needs_index(&ann) {
            st.set.reindex(&ann);
        }
        scope.docs.push(doc_ix);
        let doc = EpDoc {
            id: e.id,
            key: e.key.as_str().into(),
            scope: scope_ix,
            ensemble_id: e.context.ensemble_id,
            venue,
            tags,
            status: e.status,
            started_at_ms: started,
            ended_at_ms: ended,
            rating: e.rating.map(|r| r as f32),
            reward: e.reward.unwrap_or(0.0) as f32,
            steps: full.steps.len() as u32,
            events,
            moments: moments_at,
            structure: (sti as u32, sid),
        };
        let facts = EpisodeFacts {
            doc: doc_ix,
            events: &named,
            duration_s: doc.duration_s(),
            reward: doc.reward,
            structure: &sv,
            space: space_ix.map(|si| {
                let sp = &scope.spaces[si as usize];
                (si, sp, &decoded.moments, started)
            }),
            kinds: &kinds,
        };
        scope.patterns.add(&facts);
        let text = format!(
            "{} {} {}",
            e.context.text,
            e.notes,
            e.context.tags.join(" ")
        );
        self.text.set(doc_ix, &text);
        self.by_id.insert(e.id, doc_ix);
        self.doc_scope.push(scope_ix);
        self.docs.push(doc);
        self.mark(seq);
        Ok(())
    }

    fn mark(&mut self, seq: i64) {
        if seq > 0 {
            self.applied.insert(seq);
            self.done_seq = self.done_seq.max(seq);
        }
    }

    fn update_outcome(&mut self, doc: u32, full: &MemEpisodeFull) {
        let e = &full.episode;
        let d = &mut self.docs[doc as usize];
        let old = d.reward;
        d.rating = e.rating.map(|r| r as f32);
        d.reward = e.reward.unwrap_or(0.0) as f32;
        let new = d.reward;
        let scope = d.scope as usize;
        self.scopes[scope].patterns.reward_changed(doc, old, new);
        let text = format!(
            "{} {} {}",
            e.context.text,
            e.notes,
            e.context.tags.join(" ")
        );
        self.text.set(doc, &text);
    }

    /// Builds the nearest-neighbour indexes of every set loaded in bulk.
    pub fn finish_bulk(&mut self) {
        let ann = self.ann;
        for scope in &mut self.scopes {
            for s in &mut scope.spaces {
                s.set.reindex(&ann);
            }
            for s in &mut scope.structures {
                s.set.reindex(&ann);
            }
        }
    }

    /// Sets whose index should be rebuilt (crossed the threshold or doubled):
    /// (scope, is_space, index).
    pub fn stale_sets(&self) -> Vec<(u32, bool, u32)> {
        let mut out = Vec::new();
        for (si, scope) in self.scopes.iter().enumerate() {
            for (i, s) in scope.spaces.iter().enumerate() {
                if s.set.needs_index(&self.ann) {
                    out.push((si as u32, true, i as u32));
                }
            }
            for (i, s) in scope.structures.iter().enumerate() {
                if s.set.needs_index(&self.ann) {
                    out.push((si as u32, false, i as u32));
                }
            }
        }
        out
    }

    /// The set named by [`Index::stale_sets`].
    pub fn set_mut(&mut self, which: (u32, bool, u32)) -> Option<&mut VecSet> {
        let scope = self.scopes.get_mut(which.0 as usize)?;
        if which.1 {
            scope.spaces.get_mut(which.2 as usize).map(|s| &mut s.set)
        } else {
            scope
                .structures
                .get_mut(which.2 as usize)
                .map(|s| &mut s.set)
        }
    }

    /// The set named by [`Index::stale_sets`].
    pub fn set_ref(&self, which: (u32, bool, u32)) -> Option<&VecSet> {
        let scope = self.scopes.get(which.0 as usize)?;
        if which.1 {
            scope.spaces.get(which.2 as usize).map(|s| &s.set)
        } else {
            scope.structures.get(which.2 as usize).map(|s| &s.set)
        }
    }

    /// Counts and sizes.
    pub fn stats(&self) -> IndexStats {
        let mut st = IndexStats {
            episodes: self.docs.len() as u64,
            scopes: self.scopes.len() as u64,
            done_seq: self.done_seq,
            ..IndexStats::default()
        };
        let mut other = self.text.bytes();
        for scope in &self.scopes {
            for s in &scope.spaces {
                st.spaces += 1;
                st.moments += s.set.len() as u64;
                st.approximate_spaces += u64::from(s.set.is_approximate());
                st.moment_bytes += (s.set.bytes()
                    + std::mem::size_of::<MomentMeta>() * s.meta.capacity()
                    + s.hier
                        .values()
                        .map(|v| 4 * v.capacity() + 48)
                        .sum::<usize>()) as u64;
            }
            for s in &scope.structures {
                other += s.set.bytes() + 4 * s.docs.capacity();
            }
            other += scope.patterns.bytes() + 4 * scope.docs.capacity();
        }
        for d in &self.docs {
            other += std::mem::size_of::<EpDoc>()
                + d.key.len()
                + 4 * d.tags.capacity()
                + std::mem::size_of::<Event>() * d.events.capacity();
        }
        st.other_bytes = other as u64;
        st
    }
}
