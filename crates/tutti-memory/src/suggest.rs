//! Live suggestions: from the moment an episode is at now, what past episodes of its scope
//! did next (its nearest past moments, one per episode, and what followed each within the
//! horizon), what the patterns say about this point, and whether a dimension is unusual
//! here. For a show: "in 3 of the last 4 shows of this piece the crowd pushed intensity down
//! within 40 s of here; you locked it twice".
//!
//! The [`Board`] holds the latest suggestions of each live episode (the server's memory task
//! computes them at most once a second, off the tick) and the feedback on them (dismissed
//! ones stay hidden for that episode).
//!
//! Must never: block (the board's lock is held for a copy), or suggest from fewer than two
//! past episodes.

// Numeric kernels index several arrays in step; a range loop says that most plainly.
#![allow(clippy::needless_range_loop)]

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde::Serialize;

use crate::index::{bucket_of, Index};
use crate::patterns::{HORIZON_S, MOVE_SIGMAS, TIME_DIM};
use crate::retrieve::{self, Access, MomentQuery};

/// One suggestion.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suggestion {
    /// Stable within an episode (`trend:intensity:down`, `pattern:…`, `prior:…`).
    pub id: String,
    /// `trend` (from the nearest past moments), `pattern` (from the patterns at this point)
    /// or `prior` (unusual for this point).
    pub kind: String,
    /// For people.
    pub text: String,
    /// The dimension it is about.
    pub dim: Option<String>,
    /// `up`, `down`, `high` or `low`.
    pub direction: Option<String>,
    /// Episodes that support it, of how many considered.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<u32>))]
    pub support: (u32, u32),
    /// The past episodes it comes from, with the distance of their nearest moment.
    pub evidence: Vec<Evidence>,
    /// Why it is suggested.
    pub why: String,
}

/// A past moment a suggestion rests on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    /// The episode.
    pub episode_id: i64,
    /// Seconds from its start.
    pub at_s: f32,
    /// Distance to now.
    pub distance: f32,
}

/// Where an episode is now.
pub struct Now<'a> {
    /// Kind.
    pub kind: &'a str,
    /// Piece.
    pub piece: Option<&'a str>,
    /// Dimension names.
    pub dims: &'a [String],
    /// The current vector.
    pub vector: &'a [f32],
    /// Seconds since the episode started.
    pub elapsed_s: f32,
    /// The episode itself (left out).
    pub episode_id: Option<i64>,
    /// What its episodes are called in text (`shows`).
    pub noun: &'a str,
}

fn verb(action: &str) -> String {
    match action {
        "lock" => "locked".into(),
        "bias" => "biased".into(),
        "blend" => "blended".into(),
        "clamp" => "clamped".into(),
        "freeze" => "froze".into(),
        "release" => "released".into(),
        other => format!("used {other} on"),
    }
}

fn times(n: u32) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

/// The typical length of the scope's episodes (median, seconds).
pub fn typical_duration(ix: &Index, kind: &str, piece: Option<&str>) -> Option<f32> {
    let s = ix.scope(kind, piece)?;
    let mut d: Vec<f32> = ix.scopes[s as usize]
        .docs
        .iter()
        .map(|&doc| ix.docs[doc as usize].duration_s())
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(f32::total_cmp);
    Some(d[d.len() / 2])
}

/// Suggestions for an episode at `now` (empty when its scope has fewer than two past
/// episodes with moments).
pub fn suggest(ix: &Index, now: &Now<'_>) -> Vec<Suggestion> {
    let Some(si) = ix.scope(now.kind, now.piece) else {
        return Vec::new();
    };
    let scope = &ix.scopes[si as usize];
    let Some(space_ix) = scope.spaces.iter().position(|s| s.dims == now.dims) else {
        return Vec::new();
    };
    let space = &scope.spaces[space_ix];
    let typical = typical_duration(ix, now.kind, now.piece).unwrap_or(5400.0);
    let frac = now.elapsed_s / typical.max(1.0);
    let b = bucket_of(frac);
    let mut out = Vec::new();
    // 1. The nearest past moments, one per episode.
    let q = MomentQuery {
        kind: now.kind.to_owned(),
        piece: now.piece.map(str::to_owned),
        dims: Some(now.dims.to_vec()),
        vector: now.vector.to_vec(),
        exclude_episode: now.episode_id,
        k: 24,
        diversity: Some(0.5),
        ..MomentQuery::default()
    };
    let hits = retrieve::moments(ix, &q, &Access::All).map_or_else(|_| Vec::new(), |r| r.hits);
    let mut per_episode: Vec<&retrieve::MomentHit> = Vec::new();
    for h in &hits {
        if per_episode.len() < 4 && !per_episode.iter().any(|p| p.episode_id == h.episode_id) {
            per_episode.push(h);
        }
    }
    let n = per_episode.len() as u32;
    if n >= 2 {
        let d = now.dims.len();
        let mut moves: HashMap<(usize, bool), Vec<&retrieve::MomentHit>> = HashMap::new();
        let mut events: HashMap<String, u32> = HashMap::new();
        for h in &per_episode {
            let Some(&doc) = ix.by_id.get(&h.episode_id) else {
                continue;
            };
            let ahead = retrieve::ahead(ix, doc, h.at_s, HORIZON_S);
            let mut moved = HashSet::new();
            for j in 0..d {
                let delta = MOVE_SIGMAS * scope.patterns.overall_std(space_ix as u32, j);
                if delta <= 1e-9 || now.dims[j] == TIME_DIM {
                    continue;
                }
                let x = f64::from(h.vector[j]);
                for &id in &ahead {
                    let y = f64::from(space.set.get(id)[j]);
                    if y - x > delta {
                        moved.insert((j, true));
                    } else if x - y > delta {
                        moved.insert((j, false));
                    }
                }
            }
            for m in moved {
                moves.entry(m).or_default().push(h);
            }
            for e in &ix.docs[doc as usize].events {
                if e.at_s >= h.at_s - 5.0 && e.at_s <= h.at_s + HORIZON_S {
                    *events.entry(ix.syms.name(e.label).to_owned()).or_default() += 1;
                }
            }
        }
        let mut moves: Vec<_> = moves.into_iter().collect();
        moves.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        for ((j, up), eps) in moves {
            let c = eps.len() as u32;
            if c < 2 || 2 * c < n {
                continue;
            }
            let dim = &now.dims[j];
            let dir = if up { "up" } else { "down" };
            let mut text = format!(
                "in {c} of the last {n} {} of this piece the crowd pushed {dim} {dir} within {} s of here",
                now.noun, HORIZON_S as u32
            );
            let mut used: Vec<(&String, &u32)> = events
                .iter()
                .filter(|(label, _)| label.split_whitespace().next() == Some(dim.as_str()))
                .collect();
            used.sort();
            for (label, k) in used {
                let action = label.split_whitespace().nth(1).unwrap_or("override");
                text.push_str(&format!("; you {} it {}", verb(action), times(*k)));
            }
            out.push(Suggestion {
                id: format!("trend:{dim}:{dir}"),
                kind: "trend".into(),
                text,
                dim: Some(dim.clone()),
                direction: Some(dir.into()),
                support: (c, n),
                evidence: eps
                    .iter()
                    .map(|h| Evidence {
                        episode_id: h.episode_id,
                        at_s: h.at_s,
                        distance: h.why.distance,
                    })
                    .collect(),
                why: format!(
                    "the nearest past moments of {n} {} (distances {}) were followed by a move of more than {MOVE_SIGMAS} σ of {dim} within {} s",
                    now.noun,
                    per_episode
                        .iter()
                        .map(|h| format!("{:.2}", h.why.distance))
                        .collect::<Vec<_>>()
                        .join(", "),
                    HORIZON_S as u32
                ),
            });
        }
    }
    // 2. Patterns at this point.
    for t in scope.patterns.transitions_at(space_ix as u32, b) {
        if out.iter().any(|s| {
            s.dim.as_deref() == Some(&t.dim) && s.direction.as_deref() == Some(&t.direction)
        }) {
            continue;
        }
        out.push(Suggestion {
            id: format!("pattern:{}:{}:{b}", t.dim, t.direction),
            kind: "pattern".into(),
            text: format!(
                "around this point ({:.0}–{:.0} % in) {} went {} within {} s in {} of {} {}",
                t.elapsed.0 * 100.0,
                t.elapsed.1 * 100.0,
                t.dim,
                t.direction,
                t.within_s as u32,
                t.episodes,
                t.of,
                now.noun
            ),
            dim: Some(t.dim.clone()),
            direction: Some(t.direction.clone()),
            support: (t.episodes, t.of),
            evidence: Vec::new(),
            why: format!(
                "a significant transition (p = {:.1e} against the dimension's rate of {:.0} % elsewhere)",
                t.p_value,
                t.baseline * 100.0
            ),
        });
    }
    // 3. Unusual for this point.
    for (j, dim) in now.dims.iter().enumerate() {
        if dim == TIME_DIM {
            continue;
        }
        let Some((mean, std, count)) = scope.patterns.prior(space_ix as u32, j, b) else {
            continue;
        };
        if count < 30 || std <= 1e-9 {
            continue;
        }
        let x = f64::from(now.vector[j]);
        let z = (x - mean) / std;
        if z.abs() < 2.5 {
            continue;
        }
        let dir = if z > 0.0 { "high" } else { "low" };
        out.push(Suggestion {
            id: format!("prior:{dim}:{dir}"),
            kind: "prior".into(),
            text: format!(
                "{dim} is unusually {dir} for this point ({x:.2}; typically {mean:.2} ± {std:.2})"
            ),
            dim: Some(dim.clone()),
            direction: Some(dir.into()),
            support: (0, scope.docs.len() as u32),
            evidence: Vec::new(),
            why: format!(
                "{z:.1} standard deviations from the typical value at {:.0} % in",
                frac * 100.0
            ),
        });
    }
    out
}

/// Feedback on a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Feedback {
    /// Hide it for this episode.
    Dismiss,
    /// A rating, 0–1.
    Rate(f64),
}

/// The latest suggestions of one live episode.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize)]
pub struct Entry {
    /// The episode.
    pub episode_id: Option<i64>,
    /// Its key.
    pub episode_key: String,
    /// When they were computed (unix ms).
    pub updated_ms: i64,
    /// Seconds since the episode started.
    pub elapsed_s: f32,
    /// Past episodes of the scope.
    pub past_episodes: u32,
    /// The suggestions, dismissed ones left out.
    pub suggestions: Vec<Suggestion>,
    /// Dismissed ids.
    #[serde(skip)]
    pub dismissed: HashSet<String>,
}

/// The latest suggestions of every live episode, by subject (for a show: its join code).
#[derive(Debug, Default)]
pub struct Board {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Board {
    /// Replaces a subject's suggestions (keeping its dismissals).
    pub fn publish(&self, subject: &str, mut e: Entry) {
        let mut m = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = m.get(subject) {
            if old.episode_key == e.episode_key {
                e.dismissed = old.dismissed.clone();
            }
        }
        e.suggestions.retain(|s| !e.dismissed.contains(&s.id));
        m.insert(subject.to_owned(), e);
    }

    /// A subject's latest suggestions.
    pub fn get(&self, subject: &str) -> Option<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(subject)
            .cloned()
    }

    /// Forgets a subject (its episode ended).
    pub fn remove(&self, subject: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(subject);
    }

    /// Records feedback; returns the suggestion and its episode key (`None` when the subject
    /// has no such suggestion).
    pub fn feedback(&self, subject: &str, id: &str, f: Feedback) -> Option<(Suggestion, String)> {
        let mut m = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.get_mut(subject)?;
        let s = e.suggestions.iter().find(|s| s.id == id)?.clone();
        if f == Feedback::Dismiss {
            e.dismissed.insert(id.to_owned());
            e.suggestions.retain(|s| s.id != id);
        }
        Some((s, e.episode_key.clone()))
    }
}
