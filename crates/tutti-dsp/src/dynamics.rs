//! Dynamics: a feed-forward stereo-linked [`Compressor`] and a brick-wall look-ahead
//! [`Limiter`].
//!
//! Compressor: peak level `max(|l|, |r|)` in dB → soft-knee gain computer (Giannoulis, Massberg &
//! Reiss 2012) → branching one-pole smoothing of the gain reduction in dB, with time constants
//! such that a level step reaches 1 − 1/e (63 %) of its final gain change after `attack_ms` (or
//! `release_ms`).
//!
//! Limiter: required gain `min(1, ceiling / peak)` → sliding minimum over the look-ahead window →
//! release smoothing → moving average over the window, applied to the signal delayed by the
//! look-ahead. Every gain applied to a sample is at most the gain that sample requires, so the
//! output never exceeds the ceiling (a final clamp guards against rounding). Latency = look-ahead.
//!
//! `process()` never allocates, locks, logs or blocks; all buffers are sized at construction.

use crate::config::{CompressorConfig, LimiterConfig};
use crate::smooth::Ramp;
use crate::Processor;

fn coeff(ms: f64, fs: f64) -> f32 {
    let n = ms * 1e-3 * fs;
    if n <= 0.0 {
        0.0
    } else {
        (-1.0 / n).exp() as f32
    }
}

/// Feed-forward compressor (see module docs).
#[derive(Debug, Clone)]
pub struct Compressor {
    threshold: Ramp,
    ratio: f32,
    knee: f32,
    attack: f32,
    release: f32,
    makeup: Ramp,
    gr_db: f32,
}

impl Compressor {
    /// A compressor from a validated config; threshold and make-up changes ramp over `ramp_len`.
    pub fn new(cfg: &CompressorConfig, fs: f64, ramp_len: u32) -> Self {
        Self {
            threshold: Ramp::new(cfg.threshold_db as f32, ramp_len),
            ratio: cfg.ratio as f32,
            knee: cfg.knee_db as f32,
            attack: coeff(cfg.attack_ms, fs),
            release: coeff(cfg.release_ms, fs),
            makeup: Ramp::new(cfg.makeup_db as f32, ramp_len),
            gr_db: 0.0,
        }
    }

    /// Static curve: output level in dB for a steady input level `x_db` (without make-up).
    pub fn static_curve(x_db: f32, threshold_db: f32, ratio: f32, knee_db: f32) -> f32 {
        let over = x_db - threshold_db;
        if 2.0 * over < -knee_db {
            x_db
        } else if knee_db > 0.0 && 2.0 * over.abs() <= knee_db {
            let t = over + knee_db / 2.0;
            x_db + (1.0 / ratio - 1.0) * t * t / (2.0 * knee_db)
        } else {
            threshold_db + over / ratio
        }
    }

    /// Ramps the threshold (dB). Allocation-free.
    pub fn set_threshold_db(&mut self, db: f32) {
        self.threshold.set(db);
    }

    /// Sets the ratio (≥ 1). Allocation-free.
    pub fn set_ratio(&mut self, ratio: f32) {
        self.ratio = ratio.max(1.0);
    }

    /// Ramps the make-up gain (dB). Allocation-free.
    pub fn set_makeup_db(&mut self, db: f32) {
        self.makeup.set(db);
    }

    /// Current gain reduction in dB (≤ 0), for meters.
    pub fn gain_reduction_db(&self) -> f32 {
        self.gr_db
    }
}

impl Processor for Compressor {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let (ratio, knee, att, rel) = (self.ratio, self.knee, self.attack, self.release);
        let mut gr = self.gr_db;
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let thr = self.threshold.next_value();
            let mk = self.makeup.next_value();
            let peak = l.abs().max(r.abs()).max(1e-10);
            let x_db = 20.0 * peak.log10();
            let target = Self::static_curve(x_db, thr, ratio, knee) - x_db;
            let a = if target < gr { att } else { rel };
            gr = target + a * (gr - target);
            let g = 10f32.powf((gr + mk) * 0.05);
            *l *= g;
            *r *= g;
        }
        if gr.abs() < 1e-12 {
            gr = 0.0;
        }
        self.gr_db = gr;
    }

    fn reset(&mut self) {
        self.gr_db = 0.0;
        let (t, m) = (self.threshold.target(), self.makeup.target());
        self.threshold.snap(t);
        self.makeup.snap(m);
    }
}

/// Brick-wall look-ahead limiter (see module docs).
#[derive(Debug, Clone)]
pub struct Limiter {
    ceiling: Ramp,
    release: f32,
    look: usize,
    // delay line for the signal, length look + 1
    delay: [Vec<f32>; 2],
    dpos: usize,
    // monotonic deque for the sliding minimum (ring of capacity look + 1)
    dq_idx: Vec<u64>,
    dq_val: Vec<f32>,
    dq_head: usize,
    dq_len: usize,
    // moving average of the envelope (window look + 1)
    avg_buf: Vec<f32>,
    avg_pos: usize,
    avg_sum: f64,
    env: f32,
    n: u64,
}

impl Limiter {
    /// A limiter from a validated config; ceiling changes ramp over `ramp_len` samples.
    pub fn new(cfg: &LimiterConfig, fs: f64, ramp_len: u32) -> Self {
        let look = (cfg.lookahead_ms * 1e-3 * fs).round() as usize;
        let w = look + 1;
        Self {
            ceiling: Ramp::new(10f32.powf(cfg.ceiling_db as f32 / 20.0), ramp_len),
            release: coeff(cfg.release_ms, fs),
            look,
            delay: [vec![0.0; look.max(1)], vec![0.0; look.max(1)]],
            dpos: 0,
            dq_idx: vec![0; w],
            dq_val: vec![1.0; w],
            dq_head: 0,
            dq_len: 0,
            avg_buf: vec![1.0; w],
            avg_pos: 0,
            avg_sum: w as f64,
            env: 1.0,
            n: 0,
        }
    }

    /// Ramps the ceiling (dBFS). Allocation-free.
    pub fn set_ceiling_db(&mut self, db: f32) {
        self.ceiling.set(10f32.powf(db / 20.0));
    }

    /// Current gain (linear, ≤ 1), for meters.
    pub fn gain(&self) -> f32 {
        (self.avg_sum / (self.look + 1) as f64) as f32
    }
}

impl Processor for Limiter {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let w = self.look + 1;
        let rel = self.release;
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let ceil = self.ceiling.next_value();
            let peak = l.abs().max(r.abs());
            let req = if peak > ceil { ceil / peak } else { 1.0 };
            // sliding minimum over the last w required gains
            let n = self.n;
            while self.dq_len > 0 {
                let back = (self.dq_head + self.dq_len - 1) % w;
                if self.dq_val[back] >= req {
                    self.dq_len -= 1;
                } else {
                    break;
                }
            }
            let slot = (self.dq_head + self.dq_len) % w;
            self.dq_idx[slot] = n;
            self.dq_val[slot] = req;
            self.dq_len += 1;
            while n >= w as u64 && self.dq_idx[self.dq_head] <= n - w as u64 {
                self.dq_head = (self.dq_head + 1) % w;
                self.dq_len -= 1;
            }
            let m = self.dq_val[self.dq_head];
            // instant attack to the held minimum, smooth release
            self.env = if m < self.env {
                m
            } else {
                m + rel * (self.env - m)
            };
            // moving average over w samples
            self.avg_sum += self.env as f64 - self.avg_buf[self.avg_pos] as f64;
            self.avg_buf[self.avg_pos] = self.env;
            self.avg_pos += 1;
            if self.avg_pos == w {
                self.avg_pos = 0;
                // re-sum once per window to stop floating-point drift of the running sum
                self.avg_sum = self.avg_buf.iter().map(|&v| v as f64).sum();
            }
            let g = ((self.avg_sum / w as f64) as f32).min(1.0);
            // delay the signal by `look` samples
            let (ol, or) = if self.look == 0 {
                (*l, *r)
            } else {
                let out = (self.delay[0][self.dpos], self.delay[1][self.dpos]);
                self.delay[0][self.dpos] = *l;
                self.delay[1][self.dpos] = *r;
                self.dpos = if self.dpos + 1 == self.look {
                    0
                } else {
                    self.dpos + 1
                };
                out
            };
            *l = (ol * g).clamp(-ceil, ceil);
            *r = (or * g).clamp(-ceil, ceil);
            self.n += 1;
        }
    }

    fn latency(&self) -> usize {
        self.look
    }

    fn reset(&mut self) {
        self.delay.iter_mut().for_each(|d| d.fill(0.0));
        self.dpos = 0;
        self.dq_head = 0;
        self.dq_len = 0;
        self.avg_buf.fill(1.0);
        self.avg_pos = 0;
        self.avg_sum = (self.look + 1) as f64;
        self.env = 1.0;
        self.n = 0;
        let c = self.ceiling.target();
        self.ceiling.snap(c);
    }
}
