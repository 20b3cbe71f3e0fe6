//! The queries: "moments most like now" ([`moments`]) and "episodes like this one"
//! ([`episodes`]), both narrowed by the hierarchy first, both diversified by maximal marginal
//! relevance ([`mmr`]), and every result saying why it matched.
//!
//! # How the hierarchy narrows a moment query
//! The kind and piece pick one scope, the query's dimension names one space in it: nothing
//! outside is looked at. A section and an elapsed range pick posting lists of the space's
//! (section, time bucket) leaves; when those hold at most [`EXACT_LEAVES`] moments they are
//! compared exactly, otherwise the nearest-neighbour index is searched with the leaves'
//! condition as a filter (and a probe widened by how much the filter keeps). Episode-level
//! conditions (dates, ensembles the caller may read, an episode to leave out) filter
//! candidates by their episode.
//!
//! # Maximal marginal relevance
//! From the [`MMR_POOL`] nearest (at most [`PER_EPISODE`] of each episode), results are
//! picked one at a time by
//! `λ · relevance − (1 − λ) · redundancy`, where relevance is `1 / (1 + distance)` and
//! redundancy is the highest similarity to a result already picked (1 for a moment of the same
//! episode). `λ = 1 − diversity`; `diversity = 0` gives the plain nearest neighbours.
//!
//! Must never: look outside the scope a query names, or return a result the caller may not
//! read.

// Numeric kernels index several arrays in step; a range loop says that most plainly.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use crate::error::MemoryError;
use crate::index::{bucket_of, EpDoc, Index, BUCKETS, STRUCT_DIMS};
use crate::model::{check_k, check_kind, check_vector};
use crate::vector::{l2, Cand, Search, SearchPath};

/// Candidates a diversified query draws from.
pub const MMR_POOL: usize = 400;
/// Of which at most this many from one episode.
pub const PER_EPISODE: usize = 4;

/// Leaves holding at most this many moments are searched exactly.
pub const EXACT_LEAVES: usize = 200_000;

/// Who is asking: which episodes they may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Everything (admins, the node's operator, the CLI and MCP on a data directory).
    All,
    /// Episodes of these ensembles only.
    Ensembles(Vec<i64>),
}

impl Access {
    fn allows(&self, d: &EpDoc) -> bool {
        match self {
            Access::All => true,
            Access::Ensembles(e) => d.ensemble_id.is_some_and(|id| e.contains(&id)),
        }
    }
}

fn default_k() -> usize {
    10
}

/// "Moments most like now".
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MomentQuery {
    /// Kind of episode (`show`, …).
    pub kind: String,
    /// Piece (or grouping).
    #[serde(default)]
    pub piece: Option<String>,
    /// Dimension names of `vector` (default: those of the scope's only space).
    #[serde(default)]
    pub dims: Option<Vec<String>>,
    /// The moment to match.
    pub vector: Vec<f32>,
    /// Only moments of this section.
    #[serde(default)]
    pub section: Option<String>,
    /// Only moments at or after this elapsed fraction of their episode (0–1).
    #[serde(default)]
    pub elapsed_from: Option<f32>,
    /// Only moments before this elapsed fraction (0–1).
    #[serde(default)]
    pub elapsed_to: Option<f32>,
    /// Only episodes started at or after (unix ms).
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Only episodes started before (unix ms).
    #[serde(default)]
    pub until_ms: Option<i64>,
    /// Leave this episode out (e.g. the one being recorded).
    #[serde(default)]
    pub exclude_episode: Option<i64>,
    /// Results (1–100, default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// 0 (plain nearest, the default) to 1 (most diverse).
    #[serde(default)]
    pub diversity: Option<f32>,
    /// Compare every candidate exactly, even in a large space.
    #[serde(default)]
    pub exact: bool,
}

impl Default for MomentQuery {
    fn default() -> Self {
        MomentQuery {
            kind: String::new(),
            piece: None,
            dims: None,
            vector: Vec::new(),
            section: None,
            elapsed_from: None,
            elapsed_to: None,
            since_ms: None,
            until_ms: None,
            exclude_episode: None,
            k: default_k(),
            diversity: None,
            exact: false,
        }
    }
}

/// Why a result matched.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Why {
    /// The conditions it passed (`kind=show`, `piece=demo`, `section=storm`, …).
    pub filters: Vec<String>,
    /// How the candidates were found.
    pub path: String,
    /// Distance to the query (Euclidean; structure distance for episodes).
    pub distance: f32,
    /// `1 / (1 + distance)`, or the weighted parts for episodes.
    pub relevance: f32,
    /// Highest similarity to a result ranked before it.
    pub redundancy: f32,
    /// The MMR score it was picked with.
    pub score: f32,
    /// The dimensions that differ most (name, query − match), for moments; the shared words,
    /// tags and the score parts, for episodes.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

/// A moment found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MomentHit {
    /// Its episode.
    pub episode_id: i64,
    /// The episode's key.
    pub episode_key: String,
    /// Position among the episode's moments.
    pub seq: u32,
    /// Seconds from the episode's start.
    pub at_s: f32,
    /// Elapsed fraction of its episode.
    pub elapsed: f32,
    /// Section.
    pub section: Option<String>,
    /// Its vector.
    pub vector: Vec<f32>,
    /// Why it matched.
    pub why: Why,
}

/// The answer to a moment query.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MomentResults {
    /// Dimension names of the vectors.
    pub dims: Vec<String>,
    /// Moments in the space searched.
    pub space_moments: usize,
    /// The hits, best first.
    pub hits: Vec<MomentHit>,
}

/// Picks `k` of `cands` (sorted by distance) by maximal marginal relevance. `sim(a, b)` is the
/// similarity of two candidates (0–1). Returns (index into `cands`, relevance, redundancy,
/// score) in pick order.
pub fn mmr(
    dists: &[f32],
    k: usize,
    lambda: f32,
    sim: &dyn Fn(usize, usize) -> f32,
) -> Vec<(usize, f32, f32, f32)> {
    let mut picked: Vec<(usize, f32, f32, f32)> = Vec::with_capacity(k);
    let mut red = vec![0f32; dists.len()];
    let mut used = vec![false; dists.len()];
    while picked.len() < k.min(dists.len()) {
        let mut best: Option<(usize, f32)> = None;
        for i in 0..dists.len() {
            if used[i] {
                continue;
            }
            let rel = 1.0 / (1.0 + dists[i]);
            let s = lambda * rel - (1.0 - lambda) * red[i];
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        let Some((i, s)) = best else { break };
        used[i] = true;
        picked.push((i, 1.0 / (1.0 + dists[i]), red[i], s));
        if lambda < 1.0 {
            for j in 0..dists.len() {
                if !used[j] {
                    red[j] = red[j].max(sim(i, j));
                }
            }
        }
    }
    picked
}

fn lambda_of(diversity: Option<f32>) -> Result<f32, MemoryError> {
    let d = diversity.unwrap_or(0.0);
    if !d.is_finite() || !(0.0..=1.0).contains(&d) {
        return Err(MemoryError::invalid("diversity", "must be 0–1"));
    }
    Ok(1.0 - d)
}

/// Runs a moment query.
pub fn moments(ix: &Index, q: &MomentQuery, access: &Access) -> Result<MomentResults, MemoryError> {
    check_kind("kind", &q.kind)?;
    check_k("k", q.k)?;
    let lambda = lambda_of(q.diversity)?;
    for (f, v) in [
        ("elapsed_from", q.elapsed_from),
        ("elapsed_to", q.elapsed_to),
    ] {
        if v.is_some_and(|x| !x.is_finite() || !(0.0..=1.0).contains(&x)) {
            return Err(MemoryError::invalid(f, "must be 0–1"));
        }
    }
    let Some(si) = ix.scope(&q.kind, q.piece.as_deref()) else {
        return Err(MemoryError::coded(
            "unknown_piece",
            "piece",
            format!(
                "no {} episodes{} are in the memory",
                q.kind,
                q.piece
                    .as_deref()
                    .map(|p| format!(" of {p:?}"))
                    .unwrap_or_default()
            ),
        ));
    };
    let scope = &ix.scopes[si as usize];
    let space_ix = match &q.dims {
        Some(dims) => scope.spaces.iter().position(|s| &s.dims == dims),
        None if scope.spaces.len() == 1 => Some(0),
        None => None,
    };
    let Some(space_ix) = space_ix else {
        let known: Vec<String> = scope.spaces.iter().map(|s| s.dims.join(",")).collect();
        return Err(MemoryError::coded(
            "dimension_mismatch",
            "dims",
            if known.is_empty() {
                "these episodes have no moments".to_owned()
            } else {
                format!("name the dimensions of one of: [{}]", known.join("] ["))
            },
        ));
    };
    let space = &scope.spaces[space_ix];
    check_vector("vector", &q.vector, space.dims.len())?;

    let mut filters = vec![format!("kind={}", q.kind)];
    if let Some(p) = &q.piece {
        filters.push(format!("piece={p}"));
    }
    // Hierarchy leaves.
    let section = match &q.section {
        Some(s) => match space.sections.get(s) {
            Some(id) => Some(id as u16),
            None => {
                return Ok(MomentResults {
                    dims: space.dims.clone(),
                    space_moments: space.set.len(),
                    hits: Vec::new(),
                })
            }
        },
        None => None,
    };
    let (from, to) = (q.elapsed_from.unwrap_or(0.0), q.elapsed_to.unwrap_or(1.0));
    let bucket_ok = |b: u8| {
        let (lo, hi) = (b as f32 / BUCKETS as f32, (b + 1) as f32 / BUCKETS as f32);
        hi > from && lo < to
    };
    let narrowed = section.is_some() || q.elapsed_from.is_some() || q.elapsed_to.is_some();
    if let Some(s) = &q.section {
        filters.push(format!("section={s}"));
    }
    if narrowed && (q.elapsed_from.is_some() || q.elapsed_to.is_some()) {
        filters.push(format!("elapsed {from:.2}–{to:.2}"));
    }
    let leaves: Vec<&Vec<u32>> = if narrowed {
        space
            .hier
            .iter()
            .filter(|((s, b), _)| section.is_none_or(|x| x == *s) && bucket_ok(*b))
            .map(|(_, ids)| ids)
            .collect()
    } else {
        Vec::new()
    };
    let leaf_count: usize = leaves.iter().map(|l| l.len()).sum();
    // Episode-level conditions.
    let episode_filter = q.since_ms.is_some()
        || q.until_ms.is_some()
        || q.exclude_episode.is_some()
        || access != &Access::All;
    if let Some(s) = q.since_ms {
        filters.push(format!("started at or after {s}"));
    }
    if let Some(u) = q.until_ms {
        filters.push(format!("started before {u}"));
    }
    if access != &Access::All {
        filters.push("ensembles you may read".into());
    }
    let doc_ok = |d: &EpDoc| {
        access.allows(d)
            && q.since_ms.is_none_or(|s| d.started_at_ms >= s)
            && q.until_ms.is_none_or(|u| d.started_at_ms < u)
            && q.exclude_episode != Some(d.id)
    };
    let allowed: Vec<bool> = if episode_filter {
        ix.docs.iter().map(doc_ok).collect()
    } else {
        Vec::new()
    };
    let meta = &space.meta;
    let keep_fn = |id: u32| {
        let m = &meta[id as usize];
        (!episode_filter || allowed[m.doc as usize])
            && (!narrowed || (section.is_none_or(|s| s == m.section) && bucket_ok(m.bucket)))
    };
    let want = if lambda < 1.0 {
        MMR_POOL
    } else {
        (4 * q.k).max(40)
    };
    let (cands, path): (Vec<Cand>, SearchPath) = if narrowed && leaf_count <= EXACT_LEAVES {
        let only: Vec<u32> = leaves.iter().flat_map(|l| l.iter().copied()).collect();
        let keep: Option<&dyn Fn(u32) -> bool> = if episode_filter { Some(&keep_fn) } else { None };
        space.set.search(
            &q.vector,
            Search {
                k: want,
                only: Some(&only),
                keep,
                selectivity: 1.0,
                exact: true,
            },
            &ix.ann,
        )
    } else {
        let selectivity = if narrowed {
            leaf_count as f32 / space.set.len().max(1) as f32
        } else if episode_filter {
            allowed.iter().filter(|a| **a).count() as f32 / allowed.len().max(1) as f32
        } else {
            1.0
        };
        let keep: Option<&dyn Fn(u32) -> bool> = if narrowed || episode_filter {
            Some(&keep_fn)
        } else {
            None
        };
        space.set.search(
            &q.vector,
            Search {
                k: want,
                only: None,
                keep,
                selectivity,
                exact: q.exact,
            },
            &ix.ann,
        )
    };
    // For diversity, the pool keeps at most a few moments of each episode (an episode's
    // moments near each other in time are near each other in space too).
    let cands: Vec<Cand> = if lambda < 1.0 {
        let mut per: std::collections::HashMap<u32, usize> = Default::default();
        cands
            .into_iter()
            .filter(|c| {
                let n = per.entry(meta[c.id as usize].doc).or_default();
                *n += 1;
                *n <= PER_EPISODE
            })
            .collect()
    } else {
        cands
    };
    let dists: Vec<f32> = cands.iter().map(|c| c.d.max(0.0).sqrt()).collect();
    let picked = mmr(&dists, q.k, lambda, &|a, b| {
        let (ma, mb) = (&meta[cands[a].id as usize], &meta[cands[b].id as usize]);
        if ma.doc == mb.doc {
            1.0
        } else {
            let d = l2(space.set.get(cands[a].id), space.set.get(cands[b].id))
                .max(0.0)
                .sqrt();
            1.0 / (1.0 + d)
        }
    });
    let path = path.to_string();
    let hits = picked
        .into_iter()
        .map(|(i, rel, red, score)| {
            let c = cands[i];
            let m = meta[c.id as usize];
            let d = &ix.docs[m.doc as usize];
            let v = space.set.get(c.id);
            let mut diffs: Vec<(usize, f32)> = q
                .vector
                .iter()
                .zip(v)
                .map(|(a, b)| a - b)
                .enumerate()
                .collect();
            diffs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            let details = serde_json::json!({
                "differs_most": diffs.iter().take(3)
                    .map(|(j, x)| serde_json::json!({"dim": space.dims[*j], "query_minus_match": x}))
                    .collect::<Vec<_>>(),
            });
            MomentHit {
                episode_id: d.id,
                episode_key: d.key.to_string(),
                seq: m.seq,
                at_s: m.at_s,
                elapsed: m.at_s / d.duration_s(),
                section: (m.section != u16::MAX)
                    .then(|| space.sections.name(u32::from(m.section)).to_owned()),
                vector: v.to_vec(),
                why: Why {
                    filters: filters.clone(),
                    path: path.clone(),
                    distance: dists[i],
                    relevance: rel,
                    redundancy: red,
                    score,
                    details,
                },
            }
        })
        .collect();
    Ok(MomentResults {
        dims: space.dims.clone(),
        space_moments: space.set.len(),
        hits,
    })
}

/// "Episodes like this one": a stored episode, or a description of one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EpisodeQuery {
    /// A stored episode to match.
    #[serde(default)]
    pub episode_id: Option<i64>,
    /// Or a description: kind (required without `episode_id`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Piece.
    #[serde(default)]
    pub piece: Option<String>,
    /// Text.
    #[serde(default)]
    pub text: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Step kinds, in order.
    #[serde(default)]
    pub steps: Vec<String>,
    /// Results (1–100, default 10).
    #[serde(default = "default_k")]
    pub k: usize,
    /// 0 (plain ranking, the default) to 1 (most diverse).
    #[serde(default)]
    pub diversity: Option<f32>,
}

impl Default for EpisodeQuery {
    fn default() -> Self {
        EpisodeQuery {
            episode_id: None,
            kind: None,
            piece: None,
            text: None,
            tags: Vec::new(),
            steps: Vec::new(),
            k: default_k(),
            diversity: None,
        }
    }
}

/// An episode found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EpisodeHit {
    /// Id.
    pub episode_id: i64,
    /// Key.
    pub key: String,
    /// Kind.
    pub kind: String,
    /// Piece.
    pub piece: Option<String>,
    /// Unix ms.
    pub started_at_ms: i64,
    /// Reward.
    pub reward: f32,
    /// Why it matched.
    pub why: Why,
}

const W_STRUCT: f32 = 0.45;
const W_TEXT: f32 = 0.40;
const W_CONTEXT: f32 = 0.15;

/// Runs an episode query.
#[allow(clippy::type_complexity)]
pub fn episodes(
    ix: &Index,
    q: &EpisodeQuery,
    access: &Access,
) -> Result<Vec<EpisodeHit>, MemoryError> {
    check_k("k", q.k)?;
    let lambda = lambda_of(q.diversity)?;
    // The query's scope, structure vector and text.
    let (scope_ix, set_ix, svec, terms, tags, venue, own): (
        Option<u32>,
        Option<u32>,
        Vec<f32>,
        Vec<(u32, f32)>,
        Vec<u32>,
        Option<u32>,
        Option<u32>,
    ) = match q.episode_id {
        Some(id) => {
            let doc = *ix.by_id.get(&id).ok_or_else(|| MemoryError::NotFound {
                what: "episode",
                id: id.to_string(),
            })?;
            let d = &ix.docs[doc as usize];
            if !access.allows(d) {
                return Err(MemoryError::NotFound {
                    what: "episode",
                    id: id.to_string(),
                });
            }
            let set = &ix.scopes[d.scope as usize].structures[d.structure.0 as usize];
            (
                Some(d.scope),
                Some(d.structure.0),
                set.set.get(d.structure.1).to_vec(),
                ix.text.doc_query(doc),
                d.tags.clone(),
                d.venue,
                Some(doc),
            )
        }
        None => {
            let kind = q.kind.as_deref().ok_or_else(|| {
                MemoryError::invalid("kind", "name an episode_id, or a kind to describe one")
            })?;
            check_kind("kind", kind)?;
            let scope = ix.scope(kind, q.piece.as_deref());
            let kinds: Vec<&str> = q.steps.iter().map(String::as_str).collect();
            let generic = crate::index::structure_generic(&kinds, 0, 0.0, false);
            let set = scope.and_then(|s| {
                ix.scopes[s as usize]
                    .structures
                    .iter()
                    .position(|st| st.space.is_none())
                    .map(|p| p as u32)
            });
            let text = format!("{} {}", q.text.as_deref().unwrap_or(""), q.tags.join(" "));
            (
                scope,
                set,
                generic.to_vec(),
                ix.text.query_terms(&text),
                q.tags.iter().filter_map(|t| ix.syms.get(t)).collect(),
                None,
                None,
            )
        }
    };
    let kind_sym = match (q.episode_id, &q.kind) {
        (Some(_), _) => scope_ix.map(|s| ix.scopes[s as usize].kind),
        (None, Some(k)) => ix.syms.get(k),
        (None, None) => None,
    };
    let Some(kind_sym) = kind_sym else {
        return Ok(Vec::new());
    };
    // Reads only dense arrays unless the caller's ensembles must be checked.
    let all = access == &Access::All;
    let ok = |doc: u32| {
        Some(doc) != own
            && ix.scopes[ix.doc_scope[doc as usize] as usize].kind == kind_sym
            && (all || access.allows(&ix.docs[doc as usize]))
    };
    // Candidates: structurally nearest in the same structure set, and the best by text.
    let mut cand: std::collections::HashMap<u32, (Option<f32>, f32)> = Default::default();
    let mut path = Vec::new();
    if let (Some(si), Some(st)) = (scope_ix, set_ix) {
        let set = &ix.scopes[si as usize].structures[st as usize];
        // Same scope, so same kind: only the episode itself and (maybe) access to check.
        let keep = |id: u32| {
            let doc = set.docs[id as usize];
            Some(doc) != own && (all || access.allows(&ix.docs[doc as usize]))
        };
        let (near, p) = set.set.search(
            &svec[..set.set.d.min(svec.len())],
            Search {
                k: 50,
                only: None,
                keep: Some(&keep),
                selectivity: 1.0,
                exact: false,
            },
            &ix.ann,
        );
        if svec.len() == set.set.d {
            path.push(format!("structure: {p}"));
            for c in near {
                cand.insert(set.docs[c.id as usize], (Some(c.d.max(0.0).sqrt()), 0.0));
            }
        }
    }
    let text_hits = ix.text.top(&terms, 50, 8, &ok);
    path.push(format!("text: bm25 over {} terms", terms.len().min(8)));
    let self_score = match own {
        Some(doc) => ix.text.score(doc, &terms),
        None => text_hits.first().map_or(1.0, |h| h.score),
    }
    .max(1e-6);
    for h in &text_hits {
        cand.entry(h.doc).or_insert((None, 0.0)).1 = h.score;
    }
    // Too few so far: the scope's latest episodes compete on context.
    if cand.len() < q.k {
        if let Some(si) = scope_ix {
            for &doc in ix.scopes[si as usize]
                .docs
                .iter()
                .rev()
                .filter(|&&d| ok(d))
                .take(50)
            {
                cand.entry(doc).or_insert((None, 0.0));
            }
            path.push("context: the scope's latest episodes".into());
        }
    }
    // Structure distances for text-only candidates in the same set.
    let mut scored: Vec<(u32, f32, f32, f32, f32, f32)> = Vec::with_capacity(cand.len());
    for (&doc, &(sd, ts)) in &cand {
        let d = &ix.docs[doc as usize];
        let sd = sd.or_else(|| {
            (Some(d.scope) == scope_ix && Some(d.structure.0) == set_ix).then(|| {
                let set = &ix.scopes[d.scope as usize].structures[d.structure.0 as usize];
                l2(&svec, set.set.get(d.structure.1)).max(0.0).sqrt()
            })
        });
        let s_struct = sd.map_or(0.0, |x| 1.0 / (1.0 + x));
        let ts = if ts == 0.0 {
            ix.text.score(doc, &terms)
        } else {
            ts
        };
        let s_text = (ts / self_score).min(1.0);
        let same_piece = scope_ix == Some(d.scope);
        let shared = d.tags.iter().filter(|t| tags.contains(t)).count();
        let union = (d.tags.len() + tags.len() - shared).max(1);
        let jacc = shared as f32 / union as f32;
        let s_ctx = 0.5 * f32::from(u8::from(same_piece))
            + 0.3 * jacc
            + 0.2 * f32::from(u8::from(venue.is_some() && d.venue == venue));
        let total = W_STRUCT * s_struct + W_TEXT * s_text + W_CONTEXT * s_ctx;
        scored.push((doc, total, s_struct, s_text, s_ctx, sd.unwrap_or(f32::NAN)));
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(200);
    // MMR over "distance" = 1/total − 1 (so relevance = total).
    let dists: Vec<f32> = scored.iter().map(|s| 1.0 / s.1.max(1e-6) - 1.0).collect();
    let picked = mmr(&dists, q.k, lambda, &|a, b| {
        let (da, db) = (
            &ix.docs[scored[a].0 as usize],
            &ix.docs[scored[b].0 as usize],
        );
        if da.scope != db.scope || da.structure.0 != db.structure.0 {
            return 0.0;
        }
        let set = &ix.scopes[da.scope as usize].structures[da.structure.0 as usize];
        1.0 / (1.0
            + l2(set.set.get(da.structure.1), set.set.get(db.structure.1))
                .max(0.0)
                .sqrt())
    });
    let path = path.join("; ");
    Ok(picked
        .into_iter()
        .map(|(i, rel, red, score)| {
            let (doc, total, s_struct, s_text, s_ctx, sd) = scored[i];
            let d = &ix.docs[doc as usize];
            let scope = &ix.scopes[d.scope as usize];
            let shared_words: Vec<&str> = ix
                .text
                .shared(doc, &terms)
                .into_iter()
                .take(8)
                .filter_map(|t| ix.text.word(t))
                .collect();
            let shared_tags: Vec<&str> = d
                .tags
                .iter()
                .filter(|t| tags.contains(t))
                .map(|t| ix.syms.name(*t))
                .collect();
            let mut filters = vec![format!("kind={}", ix.syms.name(scope.kind))];
            if access != &Access::All {
                filters.push("ensembles you may read".into());
            }
            EpisodeHit {
                episode_id: d.id,
                key: d.key.to_string(),
                kind: ix.syms.name(scope.kind).to_owned(),
                piece: scope.piece.map(|p| ix.syms.name(p).to_owned()),
                started_at_ms: d.started_at_ms,
                reward: d.reward,
                why: Why {
                    filters,
                    path: path.clone(),
                    distance: if sd.is_finite() { sd } else { -1.0 },
                    relevance: rel.max(total.min(1.0)),
                    redundancy: red,
                    score,
                    details: serde_json::json!({
                        "structure": s_struct, "text": s_text, "context": s_ctx,
                        "weights": {"structure": W_STRUCT, "text": W_TEXT, "context": W_CONTEXT},
                        "shared_words": shared_words, "shared_tags": shared_tags,
                        "same_piece": scope_ix == Some(d.scope),
                    }),
                },
            }
        })
        .collect())
}

/// The moments of episode `doc` in `space` that come after `at_s` within `horizon_s`
/// (moment ids).
pub fn ahead(ix: &Index, doc: u32, at_s: f32, horizon_s: f32) -> Vec<u32> {
    let d = &ix.docs[doc as usize];
    let Some((si, first, count)) = d.moments else {
        return Vec::new();
    };
    let space = &ix.scopes[d.scope as usize].spaces[si as usize];
    (first..first + count)
        .filter(|&id| {
            let t = space.meta[id as usize].at_s;
            t > at_s && t <= at_s + horizon_s
        })
        .collect()
}

/// The bucket a fraction falls in (re-exported for suggestions).
pub fn bucket(frac: f32) -> u8 {
    bucket_of(frac)
}

/// Generic structure dimensions (for docs).
pub const STRUCTURE_DIMS: usize = STRUCT_DIMS;
