//! Patterns of a scope (a kind and piece), kept as running aggregates that each completed
//! episode updates once ([`Patterns::add`]); a report ([`Patterns::report`]) reads the
//! aggregates and never rescans episodes.
//!
//! * **Transitions**: for each dimension and time bucket, in how many episodes the value moved
//!   up or down by more than `0.75 σ` within [`HORIZON_S`] of a moment in that bucket ("what
//!   the crowd did next from here"); reported when the bucket's rate stands out from the
//!   dimension's rate over all buckets (one-sided binomial test, Bonferroni-corrected over
//!   every cell tested, and at least 3 episodes and half of those covering the bucket).
//!   Section changes (from → to, when) are counted too. A dimension named `elapsed` is time
//!   itself and is left out.
//! * **Events**: non-moment steps by label (for a show: overrides such as `intensity lock`):
//!   in how many episodes, and in which bucket most.
//! * **Step transitions**: which step kind follows which, reported when it is both frequent
//!   and more likely than the kind alone (lift ≥ 2).
//! * **Priors**: mean and spread of each dimension per time bucket (typical trajectories).
//! * **Outliers**: episodes whose structure vector is far from the others': the root mean
//!   square of the most deviating quarter of its leave-one-out z-scores is at least 3 (with
//!   at least 8 episodes).
//! * **Correlations**: Pearson's r between the reward and each episode feature (event counts,
//!   moves, dimension means), from running sums; reported when |r| ≥ 0.5 and Fisher's z test
//!   passes at 0.01 after Bonferroni correction, with at least 8 episodes.
//!
//! Must never: report a pattern from fewer than its minimum support, or rescan episodes.

// Numeric kernels index several arrays in step; a range loop says that most plainly.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

use serde::Serialize;

use crate::index::{bucket_of, Space, BUCKETS};
use crate::model::Moment;

/// How far ahead a transition looks, in seconds.
pub const HORIZON_S: f32 = 40.0;
/// A dimension with this name is time itself: it always grows, so it never "moves".
pub const TIME_DIM: &str = "elapsed";
/// A move counts when it exceeds this many standard deviations of the dimension.
pub const MOVE_SIGMAS: f64 = 0.75;

/// Running mean and variance (Welford).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Welford {
    /// Count.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    m2: f64,
}

impl Welford {
    /// Adds a value.
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Standard deviation (0 with fewer than two values).
    pub fn std(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }
}

/// What one episode contributes.
pub struct EpisodeFacts<'a> {
    /// Its index.
    pub doc: u32,
    /// Its non-moment steps: seconds from the start, label.
    pub events: &'a [(f32, String)],
    /// Length, seconds.
    pub duration_s: f32,
    /// Reward.
    pub reward: f32,
    /// Its structure vector.
    pub structure: &'a [f32],
    /// Its moments: space index, the space (names), the moments, the start (unix ms).
    pub space: Option<(u32, &'a Space, &'a Vec<Moment>, i64)>,
    /// Step kinds in order.
    pub kinds: &'a [&'a str],
}

#[derive(Debug, Default)]
struct SpacePatterns {
    dims: Vec<String>,
    overall: Vec<Welford>,
    priors: Vec<[Welford; BUCKETS]>,
    /// (dim, bucket, up?) → episodes with the move there.
    moves: HashMap<(u16, u8, bool), u32>,
    /// (dim, up?) → (episode, bucket) cells with the move.
    move_cells: HashMap<(u16, bool), u32>,
    /// Level before the move: (dim, bucket, up?) → values.
    move_level: HashMap<(u16, u8, bool), Welford>,
    /// Episodes with a moment in each bucket.
    covered: [u32; BUCKETS],
    /// Section changes: (from, to) → (episodes, elapsed fraction).
    sections: HashMap<(String, String), (u32, Welford)>,
}

/// Running sums of structure vectors of one length and each episode's vector.
type StructStats = (Vec<f64>, Vec<f64>, Vec<(u32, Vec<f32>)>);

#[derive(Debug, Default, Clone, Copy)]
struct Corr {
    sx: f64,
    sxx: f64,
    sxy: f64,
}

/// The running aggregates of one scope.
#[derive(Debug, Default)]
pub struct Patterns {
    episodes: u32,
    spaces: HashMap<u32, SpacePatterns>,
    /// label → (episodes with it, total count, episodes per bucket).
    events: HashMap<String, (u32, u32, [u32; BUCKETS])>,
    /// step kind → episodes / occurrences; (a, b) → occurrences.
    kinds: HashMap<String, u32>,
    kind_total: u32,
    bigrams: HashMap<(String, String), (u32, u32)>,
    bigram_total: u32,
    /// Structure vectors by length: running sums and each episode's vector.
    structs: HashMap<usize, StructStats>,
    /// Reward correlation: features, their sums, each episode's features and reward.
    features: Vec<String>,
    feature_ix: HashMap<String, u32>,
    corr: Vec<Corr>,
    ys: (f64, f64),
    per_doc: HashMap<u32, (f32, Vec<(u32, f32)>)>,
}

/// A transition: what a dimension did next from a bucket.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Transition {
    /// The dimension.
    pub dim: String,
    /// `up` or `down`.
    pub direction: String,
    /// Elapsed fraction where it starts (bucket start, end).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<f32>))]
    pub elapsed: (f32, f32),
    /// Episodes with the move there.
    pub episodes: u32,
    /// Episodes with a moment there.
    pub of: u32,
    /// The dimension's rate of such moves over all buckets.
    pub baseline: f64,
    /// One-sided binomial p-value (before correction).
    pub p_value: f64,
    /// Typical value before the move.
    pub level: f64,
    /// The horizon, seconds.
    pub within_s: f32,
}

/// A section change.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SectionChange {
    /// From.
    pub from: String,
    /// To.
    pub to: String,
    /// Episodes where it happened.
    pub episodes: u32,
    /// Mean elapsed fraction.
    pub at: f64,
}

/// Which step follows which.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepTransition {
    /// The step kind.
    pub from: String,
    /// The next step kind.
    pub to: String,
    /// Times.
    pub count: u32,
    /// P(to | from).
    pub share: f64,
    /// P(to | from) / P(to).
    pub lift: f64,
}

/// Steps with a label (for a show: overrides) and when they happen.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventPattern {
    /// The label, e.g. `intensity lock`.
    pub label: String,
    /// Episodes with it.
    pub episodes: u32,
    /// Of.
    pub of: u32,
    /// Total occurrences.
    pub count: u32,
    /// The bucket where most episodes had it (start, end of the elapsed fraction).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<f32>))]
    pub mostly: (f32, f32),
    /// Episodes with it in that bucket.
    pub mostly_episodes: u32,
}

/// A dimension's typical trajectory.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Prior {
    /// The dimension.
    pub dim: String,
    /// Per time bucket: mean, standard deviation, moments.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<f64>>))]
    pub buckets: Vec<(f64, f64, u64)>,
}

/// An episode unlike the others.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outlier {
    /// Index of the episode (resolved to an id by the caller).
    #[serde(skip)]
    pub doc: u32,
    /// Store id (filled by the caller).
    pub episode_id: i64,
    /// Root mean square of the most deviating quarter of its leave-one-out z-scores.
    pub score: f64,
}

/// A feature that goes with a higher (or lower) reward.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Correlation {
    /// `event:<label>`, `move:<dim>:<up|down>` or `mean:<dim>`.
    pub feature: String,
    /// Pearson's r.
    pub r: f64,
    /// Episodes.
    pub n: u32,
    /// Two-sided p-value (before correction).
    pub p_value: f64,
}

/// Everything reported for a scope.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct PatternReport {
    /// Episodes aggregated.
    pub episodes: u32,
    /// Significant transitions.
    pub transitions: Vec<Transition>,
    /// Section changes seen in at least two episodes.
    pub sections: Vec<SectionChange>,
    /// Step transitions.
    pub steps: Vec<StepTransition>,
    /// Labelled steps (overrides) seen in at least two episodes and a quarter of them.
    pub events: Vec<EventPattern>,
    /// Typical trajectories.
    pub priors: Vec<Prior>,
    /// Outliers.
    pub outliers: Vec<Outlier>,
    /// Correlations with reward.
    pub correlations: Vec<Correlation>,
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos (g = 7, n = 9).
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI.ln() - (std::f64::consts::PI * x).sin().ln() - ln_gamma(1.0 - x)
    } else {
        let x = x - 1.0;
        let mut a = C[0];
        let t = x + 7.5;
        for (i, c) in C.iter().enumerate().skip(1) {
            a += c / (x + i as f64);
        }
        0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p).
pub fn binomial_tail(k: u32, n: u32, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let ln_n = ln_gamma(f64::from(n) + 1.0);
    let mut s = 0.0;
    for i in k..=n {
        let i = f64::from(i);
        let n = f64::from(n);
        let l = ln_n - ln_gamma(i + 1.0) - ln_gamma(n - i + 1.0) + i * lp + (n - i) * lq;
        s += l.exp();
    }
    s.min(1.0)
}

/// The complementary error function (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let y = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))))
        * (-z * z).exp();
    if x >= 0.0 {
        y
    } else {
        2.0 - y
    }
}

fn bucket_range(b: usize) -> (f32, f32) {
    (b as f32 / BUCKETS as f32, (b + 1) as f32 / BUCKETS as f32)
}

impl Patterns {
    fn feature(&mut self, name: String) -> u32 {
        if let Some(&i) = self.feature_ix.get(&name) {
            return i;
        }
        let i = self.features.len() as u32;
        self.features.push(name.clone());
        self.feature_ix.insert(name, i);
        self.corr.push(Corr::default());
        i
    }

    /// Folds one completed episode into the aggregates.
    pub fn add(&mut self, f: &EpisodeFacts<'_>) {
        self.episodes += 1;
        let mut feats: HashMap<String, f32> = HashMap::new();
        // Events (labelled steps) and step kinds.
        let mut seen: HashMap<&str, ([bool; BUCKETS], u32)> = HashMap::new();
        for (at_s, label) in f.events {
            let b = bucket_of(at_s / f.duration_s) as usize;
            let e = seen.entry(label.as_str()).or_insert(([false; BUCKETS], 0));
            e.0[b] = true;
            e.1 += 1;
        }
        for (name, (buckets, count)) in seen {
            let entry = self
                .events
                .entry(name.to_owned())
                .or_insert((0, 0, [0; BUCKETS]));
            entry.0 += 1;
            entry.1 += count;
            for (b, hit) in buckets.iter().enumerate() {
                entry.2[b] += u32::from(*hit);
            }
            *feats.entry(format!("event:{name}")).or_default() += count as f32;
        }
        for k in f.kinds {
            *self.kinds.entry((*k).to_owned()).or_default() += 1;
            self.kind_total += 1;
        }
        let mut pairs_seen = std::collections::HashSet::new();
        for w in f.kinds.windows(2) {
            let e = self
                .bigrams
                .entry((w[0].to_owned(), w[1].to_owned()))
                .or_default();
            e.0 += 1;
            if pairs_seen.insert((w[0], w[1])) {
                e.1 += 1;
            }
            self.bigram_total += 1;
        }
        // Moments.
        if let Some((si, space, moments, started)) = f.space {
            let d = space.dims.len();
            let sp = self.spaces.entry(si).or_default();
            if sp.dims.is_empty() {
                sp.dims = space.dims.clone();
                sp.overall = vec![Welford::default(); d];
                sp.priors = vec![[Welford::default(); BUCKETS]; d];
            }
            let dur_ms = (f.duration_s * 1000.0).max(1.0);
            let at: Vec<f32> = moments
                .iter()
                .map(|m| (m.at_ms - started) as f32 / 1000.0)
                .collect();
            let buckets: Vec<u8> = moments
                .iter()
                .map(|m| bucket_of((m.at_ms - started) as f32 / dur_ms))
                .collect();
            let mut covered = [false; BUCKETS];
            for (m, &b) in moments.iter().zip(&buckets) {
                covered[b as usize] = true;
                for j in 0..d {
                    let x = f64::from(m.vector[j]);
                    sp.overall[j].add(x);
                    sp.priors[j][b as usize].add(x);
                }
            }
            for (b, c) in covered.iter().enumerate() {
                sp.covered[b] += u32::from(*c);
            }
            for j in 0..d {
                let mean = moments.iter().map(|m| f64::from(m.vector[j])).sum::<f64>()
                    / moments.len().max(1) as f64;
                feats.insert(format!("mean:{}", sp.dims[j]), mean as f32);
                let delta = MOVE_SIGMAS * sp.overall[j].std();
                if delta <= 1e-9 || sp.dims[j] == TIME_DIM {
                    continue;
                }
                let mut hit: HashMap<(u8, bool), f64> = HashMap::new();
                for i in 0..moments.len() {
                    let x = f64::from(moments[i].vector[j]);
                    let mut k = i + 1;
                    while k < moments.len() && at[k] - at[i] <= HORIZON_S {
                        let y = f64::from(moments[k].vector[j]);
                        if y - x > delta {
                            hit.entry((buckets[i], true)).or_insert(x);
                        } else if x - y > delta {
                            hit.entry((buckets[i], false)).or_insert(x);
                        }
                        k += 1;
                    }
                }
                for (&(b, up), &level) in &hit {
                    *sp.moves.entry((j as u16, b, up)).or_default() += 1;
                    *sp.move_cells.entry((j as u16, up)).or_default() += 1;
                    sp.move_level
                        .entry((j as u16, b, up))
                        .or_default()
                        .add(level);
                    *feats
                        .entry(format!(
                            "move:{}:{}",
                            sp.dims[j],
                            if up { "up" } else { "down" }
                        ))
                        .or_default() += 1.0;
                }
            }
            // Section changes.
            for w in moments.windows(2) {
                if let (Some(a), Some(b)) = (&w[0].section, &w[1].section) {
                    if a != b {
                        let e = sp.sections.entry((a.clone(), b.clone())).or_default();
                        e.0 += 1;
                        e.1.add(f64::from((w[1].at_ms - started) as f32 / dur_ms));
                    }
                }
            }
        }
        // Structure vectors (outliers).
        let st = self.structs.entry(f.structure.len()).or_insert_with(|| {
            (
                vec![0.0; f.structure.len()],
                vec![0.0; f.structure.len()],
                Vec::new(),
            )
        });
        for (j, &x) in f.structure.iter().enumerate() {
            st.0[j] += f64::from(x);
            st.1[j] += f64::from(x) * f64::from(x);
        }
        st.2.push((f.doc, f.structure.to_vec()));
        // Reward correlation.
        let y = f64::from(f.reward);
        self.ys.0 += y;
        self.ys.1 += y * y;
        let mut mine = Vec::with_capacity(feats.len());
        for (name, x) in feats {
            let i = self.feature(name);
            let c = &mut self.corr[i as usize];
            let x64 = f64::from(x);
            c.sx += x64;
            c.sxx += x64 * x64;
            c.sxy += x64 * y;
            mine.push((i, x));
        }
        self.per_doc.insert(f.doc, (f.reward, mine));
    }

    /// An episode's reward changed (a rating after the fact).
    pub fn reward_changed(&mut self, doc: u32, _old: f32, new: f32) {
        let Some((old, feats)) = self.per_doc.get(&doc).cloned() else {
            return;
        };
        let (yo, yn) = (f64::from(old), f64::from(new));
        self.ys.0 += yn - yo;
        self.ys.1 += yn * yn - yo * yo;
        for (i, x) in &feats {
            self.corr[*i as usize].sxy += f64::from(*x) * (yn - yo);
        }
        self.per_doc.insert(doc, (new, feats));
    }

    /// Significant transitions of the space `si`, and its priors.
    fn space_report(&self, si: u32, out: &mut PatternReport) {
        let Some(sp) = self.spaces.get(&si) else {
            return;
        };
        let d = sp.dims.len();
        let cells_total: u32 = sp.covered.iter().sum();
        let tests = (d * BUCKETS * 2).max(1) as f64;
        let alpha = 0.001 / tests;
        for (&(j, b, up), &k) in &sp.moves {
            let n = sp.covered[b as usize];
            let p0 = f64::from(sp.move_cells.get(&(j, up)).copied().unwrap_or(0))
                / f64::from(cells_total.max(1));
            let rate = f64::from(k) / f64::from(n.max(1));
            if k < 3 || rate < 0.5 || rate < 2.0 * p0 {
                continue;
            }
            let p = binomial_tail(k, n, p0);
            if p > alpha {
                continue;
            }
            out.transitions.push(Transition {
                dim: sp.dims[j as usize].clone(),
                direction: if up { "up" } else { "down" }.into(),
                elapsed: bucket_range(b as usize),
                episodes: k,
                of: n,
                baseline: p0,
                p_value: p,
                level: sp.move_level.get(&(j, b, up)).map_or(0.0, |w| w.mean),
                within_s: HORIZON_S,
            });
        }
        for ((from, to), (n, at)) in &sp.sections {
            if *n >= 2 {
                out.sections.push(SectionChange {
                    from: from.clone(),
                    to: to.clone(),
                    episodes: *n,
                    at: at.mean,
                });
            }
        }
        for j in 0..d {
            out.priors.push(Prior {
                dim: sp.dims[j].clone(),
                buckets: sp.priors[j]
                    .iter()
                    .map(|w| (w.mean, w.std(), w.n))
                    .collect(),
            });
        }
    }

    /// The typical value and spread of dimension `dim` of space `si` in bucket `b`.
    pub fn prior(&self, si: u32, dim: usize, b: u8) -> Option<(f64, f64, u64)> {
        let sp = self.spaces.get(&si)?;
        let w = sp.priors.get(dim)?.get(b as usize)?;
        Some((w.mean, w.std(), w.n))
    }

    /// The dimension's overall standard deviation in space `si`.
    pub fn overall_std(&self, si: u32, dim: usize) -> f64 {
        self.spaces
            .get(&si)
            .and_then(|sp| sp.overall.get(dim))
            .map_or(0.0, Welford::std)
    }

    /// Everything worth reporting.
    pub fn report(&self) -> PatternReport {
        let mut out = PatternReport {
            episodes: self.episodes,
            ..PatternReport::default()
        };
        let mut spaces: Vec<u32> = self.spaces.keys().copied().collect();
        spaces.sort_unstable();
        for si in spaces {
            self.space_report(si, &mut out);
        }
        let n = self.episodes;
        for (label, (eps, count, per)) in &self.events {
            if *eps < 2 || f64::from(*eps) < 0.25 * f64::from(n) {
                continue;
            }
            let (b, most) = per
                .iter()
                .enumerate()
                .max_by_key(|(_, c)| **c)
                .map_or((0, 0), |(b, c)| (b, *c));
            out.events.push(EventPattern {
                label: label.clone(),
                episodes: *eps,
                of: n,
                count: *count,
                mostly: bucket_range(b),
                mostly_episodes: most,
            });
        }
        for ((a, b), (count, eps)) in &self.bigrams {
            let from = f64::from(self.kinds.get(a).copied().unwrap_or(0));
            let p_to = f64::from(self.kinds.get(b).copied().unwrap_or(0))
                / f64::from(self.kind_total.max(1));
            let share = f64::from(*count) / from.max(1.0);
            let lift = share / p_to.max(1e-9);
            if *eps >= 3 && share >= 0.6 && lift >= 2.0 {
                out.steps.push(StepTransition {
                    from: a.clone(),
                    to: b.clone(),
                    count: *count,
                    share,
                    lift,
                });
            }
        }
        // Outliers: leave-one-out z-scores of each structure vector.
        for (sum, sq, docs) in self.structs.values() {
            let m = docs.len();
            if m < 8 {
                continue;
            }
            for (doc, v) in docs {
                let mut zs: Vec<f64> = Vec::with_capacity(v.len());
                for j in 0..v.len() {
                    let x = f64::from(v[j]);
                    let k = (m - 1) as f64;
                    let mean = (sum[j] - x) / k;
                    let var = ((sq[j] - x * x) / k - mean * mean).max(0.0) * k / (k - 1.0);
                    if var <= 1e-12 {
                        continue;
                    }
                    let z = (x - mean) / var.sqrt();
                    zs.push(z * z);
                }
                if zs.is_empty() {
                    continue;
                }
                // The most deviating quarter of the components (at least 3).
                zs.sort_by(|a, b| b.total_cmp(a));
                let top = (zs.len() / 4).max(3).min(zs.len());
                let score = (zs[..top].iter().sum::<f64>() / top as f64).sqrt();
                if score >= 3.0 {
                    out.outliers.push(Outlier {
                        doc: *doc,
                        episode_id: 0,
                        score,
                    });
                }
            }
        }
        // Correlations with reward.
        let nf = f64::from(n);
        if n >= 8 {
            let (sy, syy) = self.ys;
            let vy = syy - sy * sy / nf;
            let alpha = 0.01 / self.features.len().max(1) as f64;
            for (i, name) in self.features.iter().enumerate() {
                let c = self.corr[i];
                let vx = c.sxx - c.sx * c.sx / nf;
                let cov = c.sxy - c.sx * sy / nf;
                if vx <= 1e-12 || vy <= 1e-12 {
                    continue;
                }
                let r = (cov / (vx * vy).sqrt()).clamp(-0.999_999, 0.999_999);
                let z = r.atanh() * (nf - 3.0).max(1.0).sqrt();
                let p = erfc(z.abs() / std::f64::consts::SQRT_2);
                if r.abs() >= 0.5 && p <= alpha {
                    out.correlations.push(Correlation {
                        feature: name.clone(),
                        r,
                        n,
                        p_value: p,
                    });
                }
            }
        }
        out.transitions
            .sort_by(|a, b| a.p_value.total_cmp(&b.p_value));
        out.sections
            .sort_by(|a, b| b.episodes.cmp(&a.episodes).then(a.from.cmp(&b.from)));
        out.steps
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.from.cmp(&b.from)));
        out.events
            .sort_by(|a, b| b.episodes.cmp(&a.episodes).then(a.label.cmp(&b.label)));
        out.outliers.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.correlations
            .sort_by(|a, b| b.r.abs().total_cmp(&a.r.abs()));
        out
    }

    /// Significant transitions starting in bucket `b` of space `si`.
    pub fn transitions_at(&self, si: u32, b: u8) -> Vec<Transition> {
        let mut r = PatternReport::default();
        self.space_report(si, &mut r);
        r.transitions
            .retain(|t| bucket_of(t.elapsed.0 + 0.001) == b);
        r.transitions
    }

    /// Bytes held, roughly.
    pub fn bytes(&self) -> usize {
        let structs: usize = self
            .structs
            .values()
            .map(|(a, _, d)| 16 * a.len() + d.iter().map(|(_, v)| 4 * v.len() + 32).sum::<usize>())
            .sum();
        structs
            + self
                .per_doc
                .values()
                .map(|(_, f)| 8 * f.len() + 48)
                .sum::<usize>()
            + 64 * (self.events.len() + self.bigrams.len() + self.features.len())
            + self
                .spaces
                .values()
                .map(|s| 40 * s.priors.len() * BUCKETS + 48 * s.moves.len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_matches_small_cases() {
        assert!((binomial_tail(1, 1, 0.5) - 0.5).abs() < 1e-9);
        assert!((binomial_tail(2, 2, 0.5) - 0.25).abs() < 1e-9);
        assert!((binomial_tail(1, 2, 0.5) - 0.75).abs() < 1e-9);
        assert!(binomial_tail(18, 20, 0.1) < 1e-14);
        assert!((erfc(0.0) - 1.0).abs() < 1e-6);
    }
}
