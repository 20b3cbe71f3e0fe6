//! Parametric / graphic EQ stage: any number of bands in one [`Cascade`], with smoothed band
//! gain and frequency changes.
//!
//! While a band is ramping, the block is processed in sub-blocks of [`SMOOTH_SUBBLOCK`] samples
//! and that band's coefficients are recomputed between sub-blocks. `process()` never allocates,
//! locks, logs or blocks; the list of ramping bands has its capacity reserved at construction.

use crate::config::BandConfig;
use crate::filter::{Cascade, SvfCoeffs};
use crate::smooth::Ramp;
use crate::Processor;

/// Coefficient update interval while smoothing, in samples.
pub const SMOOTH_SUBBLOCK: usize = 32;

#[derive(Debug, Clone)]
struct BandState {
    cfg: BandConfig,
    gain: Ramp,
    log2_freq: Ramp,
}

/// An EQ of any number of bands (see the module docs).
#[derive(Debug, Clone)]
pub struct Eq {
    cascade: Cascade,
    bands: Vec<BandState>,
    ramping: Vec<usize>,
    fs: f64,
}

impl Eq {
    /// An EQ for validated `bands` at sample rate `fs`; parameter changes ramp over
    /// `smoothing_samples`.
    pub fn new(bands: &[BandConfig], fs: f64, smoothing_samples: u32) -> Self {
        let coeffs: Vec<SvfCoeffs> = bands.iter().map(|b| SvfCoeffs::design(b, fs)).collect();
        let n_sub = (smoothing_samples as usize)
            .div_ceil(SMOOTH_SUBBLOCK)
            .max(1) as u32;
        Self {
            cascade: Cascade::new(&coeffs),
            bands: bands
                .iter()
                .map(|b| BandState {
                    cfg: *b,
                    gain: Ramp::new(b.gain_db as f32, n_sub),
                    log2_freq: Ramp::new(b.freq.log2() as f32, n_sub),
                })
                .collect(),
            ramping: Vec::with_capacity(bands.len()),
            fs,
        }
    }

    /// Forces the portable kernel (tests / comparisons).
    pub fn force_generic(&mut self) {
        self.cascade.force_generic();
    }

    /// Number of bands.
    pub fn bands(&self) -> usize {
        self.bands.len()
    }

    /// Current (possibly mid-ramp) settings of band `i`.
    pub fn band(&self, i: usize) -> Option<BandConfig> {
        self.bands.get(i).map(|b| b.cfg)
    }

    fn mark_ramping(&mut self, i: usize) {
        if !self.ramping.contains(&i) && self.ramping.len() < self.ramping.capacity() {
            self.ramping.push(i);
        }
    }

    /// Ramps band `i`'s gain to `gain_db`. Caller validates the range. Allocation-free.
    pub fn set_band_gain_db(&mut self, i: usize, gain_db: f32) {
        self.bands[i].gain.set(gain_db);
        self.mark_ramping(i);
    }

    /// Ramps band `i`'s frequency (log-linearly) to `freq`. Caller validates. Allocation-free.
    pub fn set_band_freq(&mut self, i: usize, freq: f32) {
        self.bands[i].log2_freq.set(freq.log2());
        self.mark_ramping(i);
    }

    fn advance_ramps(&mut self) {
        let mut k = 0;
        while k < self.ramping.len() {
            let i = self.ramping[k];
            let b = &mut self.bands[i];
            let g = b.gain.next_value();
            let lf = b.log2_freq.next_value();
            b.cfg.gain_db = g as f64;
            b.cfg.freq = (lf as f64).exp2().min(self.fs * 0.499);
            let c = SvfCoeffs::design(&b.cfg, self.fs);
            let done = !b.gain.is_ramping() && !b.log2_freq.is_ramping();
            self.cascade.set_band(i, &c);
            if done {
                self.ramping.swap_remove(k);
            } else {
                k += 1;
            }
        }
    }
}

impl Processor for Eq {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        if self.ramping.is_empty() {
            self.cascade.process(left, right);
            return;
        }
        for (l, r) in left
            .chunks_mut(SMOOTH_SUBBLOCK)
            .zip(right.chunks_mut(SMOOTH_SUBBLOCK))
        {
            if !self.ramping.is_empty() {
                self.advance_ramps();
            }
            self.cascade.process(l, r);
        }
    }

    fn reset(&mut self) {
        self.cascade.reset();
        while let Some(i) = self.ramping.pop() {
            let b = &mut self.bands[i];
            let g = b.gain.target();
            let lf = b.log2_freq.target();
            b.gain.snap(g);
            b.log2_freq.snap(lf);
            b.cfg.gain_db = g as f64;
            b.cfg.freq = (lf as f64).exp2();
            let c = SvfCoeffs::design(&b.cfg, self.fs);
            self.cascade.set_band(i, &c);
        }
    }
}
