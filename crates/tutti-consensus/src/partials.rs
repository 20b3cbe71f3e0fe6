//! Partial aggregates: the mergeable summary of a set of inputs.
//!
//! A [`ParamPartial`] holds, for one parameter, the input count, `Σw`, `Σw·u`, `Σw·u²` and a
//! fixed-bin histogram of `Σw` and `Σw·u` per bin, where `u` is the input in *unit* form: a
//! continuous value mapped to `0..=1` over its range, a discrete value as its choice index.
//! Every aggregate the engine reports (mean, median, trimmed mean, plurality, dispersion,
//! histogram) is a function of these numbers, so partials from several shards (cores now,
//! nodes later) combine by element-wise addition: [`Partials::merge`] is associative and
//! commutative up to float rounding.
//!
//! Weights are kept as `stored × 2^log2_scale`, so partials exported at the same time with
//! very different magnitudes never overflow or underflow when merged.
//!
//! [`SparsePartials`] is the same summary with only the histogram bins that hold weight (a
//! node's crowd of a few phones fills a few of a parameter's 256 bins): what nodes ship, and
//! what [`Partials::merge_sparse`] adds in O(bins used), with the same result as the dense
//! merge to the bit.
//!
//! This module must never see individual inputs or participants: a partial is a summary only.

use serde::{Deserialize, Serialize};

use crate::config::{EngineConfig, ParamKind, FINE_BINS};
use crate::error::PartialsError;

/// Summary of one parameter's inputs (see the module documentation for the units).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamPartial {
    /// Weights below are `stored × 2^log2_scale`.
    pub(crate) log2_scale: f64,
    /// Number of inputs (participants with an input on this parameter).
    pub(crate) inputs: u64,
    pub(crate) sum_w: f64,
    pub(crate) sum_wu: f64,
    pub(crate) sum_wu2: f64,
    /// Σw per bin (FINE_BINS bins for a continuous parameter, one per choice for a discrete).
    pub(crate) bin_w: Vec<f64>,
    /// Σw·u per bin.
    pub(crate) bin_wu: Vec<f64>,
}

impl ParamPartial {
    /// An empty partial with `bins` histogram bins.
    pub(crate) fn new(bins: usize) -> Self {
        ParamPartial {
            log2_scale: 0.0,
            inputs: 0,
            sum_w: 0.0,
            sum_wu: 0.0,
            sum_wu2: 0.0,
            bin_w: vec![0.0; bins],
            bin_wu: vec![0.0; bins],
        }
    }

    /// Number of histogram bins a parameter of this kind uses.
    pub(crate) fn bins_for(kind: &ParamKind) -> usize {
        match *kind {
            ParamKind::Continuous { .. } => FINE_BINS,
            ParamKind::Discrete { choices, .. } => choices as usize,
        }
    }

    /// Zeroes everything without releasing memory.
    pub(crate) fn clear(&mut self) {
        self.log2_scale = 0.0;
        self.inputs = 0;
        self.sum_w = 0.0;
        self.sum_wu = 0.0;
        self.sum_wu2 = 0.0;
        self.bin_w.fill(0.0);
        self.bin_wu.fill(0.0);
    }

    /// Adds one input `u` with (stored-scale) weight `w` into bin `bin`.
    #[inline]
    pub(crate) fn add(&mut self, u: f64, w: f64, bin: usize) {
        let wu = w * u;
        self.inputs += 1;
        self.sum_w += w;
        self.sum_wu += wu;
        self.sum_wu2 += wu * u;
        self.bin_w[bin] += w;
        self.bin_wu[bin] += wu;
    }

    /// Copies `src` scaled by `2^shift` (used to export engine sums with a time reference).
    pub(crate) fn assign_scaled(&mut self, src: &ParamPartial, shift: f64) {
        self.log2_scale = src.log2_scale + shift;
        self.inputs = src.inputs;
        self.sum_w = src.sum_w.max(0.0);
        self.sum_wu = src.sum_wu.max(0.0);
        self.sum_wu2 = src.sum_wu2.max(0.0);
        for (d, s) in self.bin_w.iter_mut().zip(&src.bin_w) {
            *d = s.max(0.0);
        }
        for (d, s) in self.bin_wu.iter_mut().zip(&src.bin_wu) {
            *d = s.max(0.0);
        }
    }

    /// Adds `other` (whose weights are additionally scaled by `2^shift`) into `self`.
    fn merge_from(&mut self, other: &ParamPartial, shift: f64) {
        self.inputs += other.inputs;
        let other_scale = other.log2_scale + shift;
        if other.sum_w <= 0.0 {
            // Nothing weighs anything there (only counts, or nothing at all).
        } else if self.sum_w <= 0.0 {
            self.log2_scale = other_scale;
            self.sum_w = other.sum_w;
            self.sum_wu = other.sum_wu;
            self.sum_wu2 = other.sum_wu2;
            self.bin_w.copy_from_slice(&other.bin_w);
            self.bin_wu.copy_from_slice(&other.bin_wu);
        } else {
            let l = self.log2_scale.max(other_scale);
            let sa = (self.log2_scale - l).exp2();
            let sb = (other_scale - l).exp2();
            self.log2_scale = l;
            self.sum_w = self.sum_w * sa + other.sum_w * sb;
            self.sum_wu = self.sum_wu * sa + other.sum_wu * sb;
            self.sum_wu2 = self.sum_wu2 * sa + other.sum_wu2 * sb;
            for (a, b) in self.bin_w.iter_mut().zip(&other.bin_w) {
                *a = *a * sa + b * sb;
            }
            for (a, b) in self.bin_wu.iter_mut().zip(&other.bin_wu) {
                *a = *a * sa + b * sb;
            }
        }
    }

    /// Adds `other` (sparse; weights additionally scaled by `2^shift`): the same arithmetic
    /// as [`ParamPartial::merge_from`] on the dense form, touching only `other`'s bins unless
    /// `other` is on a larger scale than `self` (then `self` is rescaled once).
    fn merge_sparse_from(&mut self, other: &SparseParam, shift: f64) {
        self.inputs += other.inputs;
        let other_scale = other.log2_scale + shift;
        if other.sum_w <= 0.0 {
            // Nothing weighs anything there.
        } else if self.sum_w <= 0.0 {
            self.log2_scale = other_scale;
            self.sum_w = other.sum_w;
            self.sum_wu = other.sum_wu;
            self.sum_wu2 = other.sum_wu2;
            self.bin_w.fill(0.0);
            self.bin_wu.fill(0.0);
            for &(i, w, wu) in &other.bins {
                self.bin_w[i as usize] = w;
                self.bin_wu[i as usize] = wu;
            }
        } else {
            let l = self.log2_scale.max(other_scale);
            let sa = (self.log2_scale - l).exp2();
            let sb = (other_scale - l).exp2();
            self.log2_scale = l;
            self.sum_w = self.sum_w * sa + other.sum_w * sb;
            self.sum_wu = self.sum_wu * sa + other.sum_wu * sb;
            self.sum_wu2 = self.sum_wu2 * sa + other.sum_wu2 * sb;
            if sa != 1.0 {
                for a in self.bin_w.iter_mut().chain(self.bin_wu.iter_mut()) {
                    *a *= sa;
                }
            }
            for &(i, w, wu) in &other.bins {
                let i = i as usize;
                self.bin_w[i] += w * sb;
                self.bin_wu[i] += wu * sb;
            }
        }
    }

    fn to_sparse(&self) -> SparseParam {
        SparseParam {
            log2_scale: self.log2_scale,
            inputs: self.inputs,
            sum_w: self.sum_w,
            sum_wu: self.sum_wu,
            sum_wu2: self.sum_wu2,
            len: self.bin_w.len() as u32,
            bins: self
                .bin_w
                .iter()
                .zip(&self.bin_wu)
                .enumerate()
                .filter(|(_, (w, wu))| **w != 0.0 || **wu != 0.0)
                .map(|(i, (w, wu))| (i as u32, *w, *wu))
                .collect(),
        }
    }

    fn scale(&self) -> f64 {
        self.log2_scale.exp2()
    }

    /// Number of inputs summarised.
    pub fn inputs(&self) -> u64 {
        self.inputs
    }

    /// Total weight `Σw` at the partial's time.
    pub fn total_weight(&self) -> f64 {
        self.sum_w * self.scale()
    }

    /// `Σw·u` at the partial's time (`u` in unit form, see the module documentation).
    pub fn weighted_sum(&self) -> f64 {
        self.sum_wu * self.scale()
    }

    /// `Σw·u²` at the partial's time.
    pub fn weighted_sum_sq(&self) -> f64 {
        self.sum_wu2 * self.scale()
    }

    /// Number of histogram bins.
    pub fn bins(&self) -> usize {
        self.bin_w.len()
    }

    /// `Σw` of bin `i` at the partial's time (0 for a bin that does not exist).
    pub fn bin_weight(&self, i: usize) -> f64 {
        self.bin_w.get(i).map_or(0.0, |w| w * self.scale())
    }

    /// `Σw·u` of bin `i` at the partial's time (0 for a bin that does not exist).
    pub fn bin_weighted_sum(&self, i: usize) -> f64 {
        self.bin_wu.get(i).map_or(0.0, |w| w * self.scale())
    }

    fn check(&self, index: usize) -> Result<(), PartialsError> {
        let bad = |what: &str, value: f64| PartialsError::Invalid {
            what: format!("params[{index}].{what}"),
            value,
        };
        if !self.log2_scale.is_finite() {
            return Err(bad("log2_scale", self.log2_scale));
        }
        for (what, v) in [
            ("sum_w", self.sum_w),
            ("sum_wu", self.sum_wu),
            ("sum_wu2", self.sum_wu2),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(what, v));
            }
        }
        for (&w, &wu) in self.bin_w.iter().zip(&self.bin_wu) {
            if !(w.is_finite() && w >= 0.0) {
                return Err(bad("bin_w", w));
            }
            if !(wu.is_finite() && wu >= 0.0) {
                return Err(bad("bin_wu", wu));
            }
        }
        Ok(())
    }
}

/// Per-parameter partial aggregates of a set of participants at one time.
///
/// Produced by [`crate::Engine::partials`], combined with [`Partials::merge`] and finished
/// by [`crate::Engine::tick_from`]. Serializable, so shards on other nodes can ship them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Partials {
    /// Time the weights refer to (recency is evaluated at this time).
    pub(crate) time: f64,
    /// Recency half-life of the engine that produced them (must match to merge).
    pub(crate) half_life: Option<f64>,
    /// Participants joined (the denominator of participation).
    pub(crate) participants: u64,
    pub(crate) params: Vec<ParamPartial>,
}

impl Partials {
    /// Empty partials for `cfg` at time `time` (a neutral element for [`Partials::merge`]).
    pub fn empty(cfg: &EngineConfig, time: f64) -> Self {
        Partials {
            time,
            half_life: cfg.recency_half_life,
            participants: 0,
            params: cfg
                .params
                .iter()
                .map(|p| ParamPartial::new(ParamPartial::bins_for(&p.kind)))
                .collect(),
        }
    }

    /// The time the weights refer to.
    pub fn time(&self) -> f64 {
        self.time
    }

    /// Participants joined, summed over all merged shards.
    pub fn participants(&self) -> u64 {
        self.participants
    }

    /// The per-parameter partials, indexed like `EngineConfig::params`.
    pub fn params(&self) -> &[ParamPartial] {
        &self.params
    }

    /// Checks that `self` has `bins` (one entry per parameter) and `half_life`.
    fn check_layout(
        &self,
        bins: impl ExactSizeIterator<Item = usize>,
        half_life: Option<f64>,
    ) -> Result<(), PartialsError> {
        check_count_and_half_life(self.params.len(), self.half_life, bins.len(), half_life)?;
        for (i, (p, n)) in self.params.iter().zip(bins).enumerate() {
            if p.bin_w.len() != n || p.bin_wu.len() != n {
                return Err(shape_error(
                    format!("params[{i}].bins"),
                    n,
                    format!("{}/{}", p.bin_w.len(), p.bin_wu.len()),
                ));
            }
        }
        Ok(())
    }

    /// Whether these partials have the layout of an engine configured with `cfg`.
    pub(crate) fn fits(&self, cfg: &EngineConfig) -> bool {
        self.check_layout(
            cfg.params.iter().map(|p| ParamPartial::bins_for(&p.kind)),
            cfg.recency_half_life,
        )
        .is_ok()
    }

    fn check_values(&self) -> Result<(), PartialsError> {
        if !self.time.is_finite() {
            return Err(PartialsError::Invalid {
                what: "time".to_owned(),
                value: self.time,
            });
        }
        self.params
            .iter()
            .enumerate()
            .try_for_each(|(i, p)| p.check(i))
    }

    /// Checks that these partials fit an engine configured with `cfg` and hold only finite,
    /// non-negative sums (use it on partials received from elsewhere).
    pub fn check(&self, cfg: &EngineConfig) -> Result<(), PartialsError> {
        self.check_layout(
            cfg.params.iter().map(|p| ParamPartial::bins_for(&p.kind)),
            cfg.recency_half_life,
        )?;
        self.check_values()
    }

    /// The same summary with only the bins that hold weight (for the wire).
    pub fn to_sparse(&self) -> SparsePartials {
        SparsePartials {
            time: self.time,
            half_life: self.half_life,
            participants: self.participants,
            params: self.params.iter().map(ParamPartial::to_sparse).collect(),
        }
    }

    /// Adds sparse `other` into `self`: the same result as merging its dense form, in time
    /// proportional to the bins it uses. `other` is checked first (layout, finite
    /// non-negative sums, bins in range and in order); on error `self` is unchanged.
    pub fn merge_sparse(&mut self, other: &SparsePartials) -> Result<(), PartialsError> {
        other.check_against(self.params.iter().map(|p| p.bin_w.len()), self.half_life)?;
        let shift = match self.half_life {
            Some(h) if other.time != self.time => (other.time - self.time) / h,
            _ => 0.0,
        };
        self.participants += other.participants;
        for (a, b) in self.params.iter_mut().zip(&other.params) {
            a.merge_sparse_from(b, shift);
        }
        Ok(())
    }

    /// Adds `other` into `self`. Associative and commutative up to float rounding.
    ///
    /// Partials taken at different times are combined at `self`'s time: `other`'s weights are
    /// decayed (or grown) by the recency half-life over the difference. On error `self` is
    /// unchanged.
    pub fn merge(&mut self, other: &Partials) -> Result<(), PartialsError> {
        other.check_layout(self.params.iter().map(|p| p.bin_w.len()), self.half_life)?;
        other.check_values()?;
        let shift = match self.half_life {
            Some(h) if other.time != self.time => (other.time - self.time) / h,
            _ => 0.0,
        };
        self.participants += other.participants;
        for (a, b) in self.params.iter_mut().zip(&other.params) {
            a.merge_from(b, shift);
        }
        Ok(())
    }
}

/// One parameter's partial with only the bins that hold weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparseParam {
    log2_scale: f64,
    inputs: u64,
    sum_w: f64,
    sum_wu: f64,
    sum_wu2: f64,
    /// Bins of the dense form.
    len: u32,
    /// (bin, Σw, Σw·u) of the bins that hold weight, bins increasing.
    bins: Vec<(u32, f64, f64)>,
}

/// [`Partials`] with only the histogram bins that hold weight: what nodes ship
/// ([`Partials::to_sparse`], [`Partials::merge_sparse`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparsePartials {
    time: f64,
    half_life: Option<f64>,
    participants: u64,
    params: Vec<SparseParam>,
}

impl SparsePartials {
    /// The time the weights refer to.
    pub fn time(&self) -> f64 {
        self.time
    }

    /// Participants joined.
    pub fn participants(&self) -> u64 {
        self.participants
    }

    /// Bins that hold weight, over every parameter.
    pub fn bins_used(&self) -> usize {
        self.params.iter().map(|p| p.bins.len()).sum()
    }

    /// Checks that these fit an engine configured with `cfg`: its parameters and bins, its
    /// half-life, finite non-negative sums, bins in range and increasing (use it on partials
    /// received from elsewhere).
    pub fn check(&self, cfg: &EngineConfig) -> Result<(), PartialsError> {
        self.check_against(
            cfg.params.iter().map(|p| ParamPartial::bins_for(&p.kind)),
            cfg.recency_half_life,
        )
    }

    fn check_against(
        &self,
        bins: impl ExactSizeIterator<Item = usize>,
        half_life: Option<f64>,
    ) -> Result<(), PartialsError> {
        check_count_and_half_life(self.params.len(), self.half_life, bins.len(), half_life)?;
        if !self.time.is_finite() {
            return Err(PartialsError::Invalid {
                what: "time".to_owned(),
                value: self.time,
            });
        }
        for (i, (p, n)) in self.params.iter().zip(bins).enumerate() {
            if p.len as usize != n {
                return Err(shape_error(format!("params[{i}].bins"), n, p.len));
            }
            let bad = |what: &str, value: f64| PartialsError::Invalid {
                what: format!("params[{i}].{what}"),
                value,
            };
            if !p.log2_scale.is_finite() {
                return Err(bad("log2_scale", p.log2_scale));
            }
            for (what, v) in [
                ("sum_w", p.sum_w),
                ("sum_wu", p.sum_wu),
                ("sum_wu2", p.sum_wu2),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(bad(what, v));
                }
            }
            let mut next = 0u64;
            for &(b, w, wu) in &p.bins {
                if u64::from(b) < next || b as usize >= n {
                    return Err(shape_error(
                        format!("params[{i}].bin"),
                        format!("increasing, below {n}"),
                        b,
                    ));
                }
                next = u64::from(b) + 1;
                if !(w.is_finite() && w >= 0.0) {
                    return Err(bad("bin_w", w));
                }
                if !(wu.is_finite() && wu >= 0.0) {
                    return Err(bad("bin_wu", wu));
                }
            }
        }
        Ok(())
    }
}

/// A layout difference between two partials: `what` expected `expected`, found `found`.
fn shape_error(
    what: impl Into<String>,
    expected: impl ToString,
    found: impl ToString,
) -> PartialsError {
    PartialsError::Shape {
        what: what.into(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

/// The parts of a layout check that dense and sparse partials share: the number of
/// parameters and the recency half-life.
fn check_count_and_half_life(
    found_params: usize,
    found_half_life: Option<f64>,
    params: usize,
    half_life: Option<f64>,
) -> Result<(), PartialsError> {
    if found_params != params {
        return Err(shape_error("params", params, found_params));
    }
    if found_half_life.map(f64::to_bits) != half_life.map(f64::to_bits) {
        return Err(shape_error(
            "half_life",
            format!("{half_life:?}"),
            format!("{found_half_life:?}"),
        ));
    }
    Ok(())
}
