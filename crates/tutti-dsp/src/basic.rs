//! Simple stages: [`Gain`], [`Pan`] and [`Delay`].
//!
//! Gain and pan are smoothed with linear ramps of the linear gains (a jump from `g0` to `g1`
//! changes the gain by at most `|g1 - g0| / ramp_len` per sample). `process()` never allocates,
//! locks, logs or blocks.

use crate::smooth::Ramp;
use crate::Processor;

/// dB to linear amplitude.
#[inline]
pub fn db_to_lin(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Linear amplitude to dB.
#[inline]
pub fn lin_to_db(lin: f64) -> f64 {
    20.0 * lin.log10()
}

/// Smoothed gain on both channels.
#[derive(Debug, Clone)]
pub struct Gain {
    gain: Ramp,
}

impl Gain {
    /// `gain_db` with changes ramped over `ramp_len` samples.
    pub fn new(gain_db: f64, ramp_len: u32) -> Self {
        Self {
            gain: Ramp::new(db_to_lin(gain_db) as f32, ramp_len),
        }
    }

    /// Ramps to `gain_db`. Allocation-free.
    pub fn set_gain_db(&mut self, gain_db: f32) {
        self.gain.set(10f32.powf(gain_db / 20.0));
    }

    /// Current linear gain.
    pub fn linear(&self) -> f32 {
        self.gain.value()
    }
}

impl Processor for Gain {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        if self.gain.is_ramping() {
            for (l, r) in left.iter_mut().zip(right.iter_mut()) {
                let g = self.gain.next_value();
                *l *= g;
                *r *= g;
            }
        } else {
            let g = self.gain.value();
            if g != 1.0 {
                left.iter_mut().for_each(|s| *s *= g);
                right.iter_mut().for_each(|s| *s *= g);
            }
        }
    }

    fn reset(&mut self) {
        let t = self.gain.target();
        self.gain.snap(t);
    }
}

/// Constant-power pan / balance of a stereo signal: `pan` in −1 … 1; the left gain is
/// `√2 cos θ` and the right `√2 sin θ` with `θ = (pan + 1) π / 4`, so the centre is unity and a
/// hard pan is +3 dB on one side and silence on the other.
#[derive(Debug, Clone)]
pub struct Pan {
    gl: Ramp,
    gr: Ramp,
}

fn pan_gains(pan: f32) -> (f32, f32) {
    let theta = (pan.clamp(-1.0, 1.0) + 1.0) * std::f32::consts::FRAC_PI_4;
    let s = std::f32::consts::SQRT_2;
    (s * theta.cos(), s * theta.sin())
}

impl Pan {
    /// A pan at `pan` with changes ramped over `ramp_len` samples.
    pub fn new(pan: f64, ramp_len: u32) -> Self {
        let (l, r) = pan_gains(pan as f32);
        Self {
            gl: Ramp::new(l, ramp_len),
            gr: Ramp::new(r, ramp_len),
        }
    }

    /// Ramps to `pan`. Allocation-free.
    pub fn set_pan(&mut self, pan: f32) {
        let (l, r) = pan_gains(pan);
        self.gl.set(l);
        self.gr.set(r);
    }
}

impl Processor for Pan {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.gl.apply_gain(left);
        self.gr.apply_gain(right);
    }

    fn reset(&mut self) {
        let (l, r) = (self.gl.target(), self.gr.target());
        self.gl.snap(l);
        self.gr.snap(r);
    }
}

/// A fixed delay of whole samples on both channels. The delay is the effect itself, so
/// [`Processor::latency`] reports 0 for it.
#[derive(Debug, Clone)]
pub struct Delay {
    buf: [Vec<f32>; 2],
    pos: usize,
    delay: usize,
}

impl Delay {
    /// A delay of `samples` samples.
    pub fn new(samples: usize) -> Self {
        Self {
            buf: [vec![0.0; samples.max(1)], vec![0.0; samples.max(1)]],
            pos: 0,
            delay: samples,
        }
    }

    /// The delay in samples.
    pub fn samples(&self) -> usize {
        self.delay
    }
}

impl Processor for Delay {
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        if self.delay == 0 {
            return;
        }
        let len = self.delay;
        let mut pos = self.pos;
        for (c, ch) in [left, right].into_iter().enumerate() {
            pos = self.pos;
            let buf = &mut self.buf[c];
            for s in ch.iter_mut() {
                std::mem::swap(&mut buf[pos], s);
                pos += 1;
                if pos == len {
                    pos = 0;
                }
            }
        }
        self.pos = pos;
    }

    fn reset(&mut self) {
        self.buf.iter_mut().for_each(|b| b.fill(0.0));
        self.pos = 0;
    }
}
