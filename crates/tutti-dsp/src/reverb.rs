//! Algorithmic reverb: an 8-line feedback delay network (Jot).
//!
//! Eight delay lines with mutually prime lengths (scaled by `size`), an orthogonal Hadamard
//! feedback matrix (scaled by 1/√8), and in each line a one-pole low-pass (`damping`, DC gain 1)
//! followed by the decay gain `10^(−3 · len / (fs · decay_s))`, which gives the requested RT60 at
//! low frequencies. Because the matrix is orthogonal and every per-line loop gain is below one at
//! every frequency, the network is stable for every parameter in range (the tests check the
//! corners of the parameter space).
//!
//! `process()` never allocates, locks, logs or blocks; the delay lines are allocated at
//! construction. Decay, damping and mix can be changed while running; `size` is
//! fixed at construction (changing delay lengths would click).

use crate::config::ReverbConfig;
use crate::smooth::Ramp;
use crate::Processor;

const N: usize = 8;
/// Line lengths at 48 kHz for size = 1 (≈ 29 – 83 ms).
const BASE: [usize; N] = [1423, 1777, 2113, 2459, 2819, 3163, 3541, 3967];
const OUT_L: [f32; N] = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0];
const OUT_R: [f32; N] = [1.0, 1.0, -1.0, -1.0, -1.0, 1.0, 1.0, -1.0];

/// Feedback-delay-network reverb (see module docs).
#[derive(Debug, Clone)]
pub struct Reverb {
    lines: [Vec<f32>; N],
    len: [usize; N],
    pos: [usize; N],
    lp: [f32; N],
    gain: [f32; N],
    damp: f32,
    mix: Ramp,
    fs: f64,
}

/// Size-scaled line lengths for sample rate `fs`.
fn lengths(size: f64, fs: f64) -> [usize; N] {
    let scale = (0.25 + 0.75 * size.clamp(0.0, 1.0)) * fs / 48_000.0;
    BASE.map(|b| ((b as f64 * scale).round() as usize).max(8))
}

impl Reverb {
    /// A reverb from a validated config; mix changes ramp over `ramp_len` samples.
    pub fn new(cfg: &ReverbConfig, fs: f64, ramp_len: u32) -> Self {
        let len = lengths(cfg.size, fs);
        let mut r = Self {
            lines: len.map(|l| vec![0.0; l]),
            len,
            pos: [0; N],
            lp: [0.0; N],
            gain: [0.0; N],
            damp: 0.0,
            mix: Ramp::new(cfg.mix as f32, ramp_len),
            fs,
        };
        r.set_decay_s(cfg.decay_s as f32);
        r.set_damping(cfg.damping as f32);
        r
    }

    /// Sets the RT60 in seconds (0.05 – 60). Allocation-free.
    pub fn set_decay_s(&mut self, decay_s: f32) {
        let t = decay_s.clamp(0.05, 60.0) as f64;
        for i in 0..N {
            self.gain[i] = 10f64.powf(-3.0 * self.len[i] as f64 / (self.fs * t)) as f32;
        }
    }

    /// Sets high-frequency damping 0 – 1. Allocation-free.
    pub fn set_damping(&mut self, damping: f32) {
        // one-pole coefficient: 0 = no damping, 0.9 = strong
        self.damp = damping.clamp(0.0, 1.0) * 0.9;
    }

    /// Ramps the wet/dry mix 0 – 1. Allocation-free.
    pub fn set_mix(&mut self, mix: f32) {
        self.mix.set(mix.clamp(0.0, 1.0));
    }
}

#[inline(always)]
fn hadamard8(x: [f32; N]) -> [f32; N] {
    let mut a = x;
    let mut h = 1;
    while h < N {
        let mut i = 0;
        while i < N {
            for j in i..i + h {
                let (u, v) = (a[j], a[j + h]);
                a[j] = u + v;
                a[j + h] = u - v;
            }
            i += 2 * h;
        }
        h *= 2;
    }
    let s = 1.0 / (N as f32).sqrt();
    a.map(|v| v * s)
}

impl Processor for Reverb {
    #[allow(clippy::needless_range_loop)]
    fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        let d = self.damp;
        let out_scale = 1.0 / (N as f32).sqrt();
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let mut o = [0.0f32; N];
            for i in 0..N {
                let v = self.lines[i][self.pos[i]];
                // damping low-pass (DC gain 1) then decay gain
                self.lp[i] = v + d * (self.lp[i] - v);
                o[i] = self.lp[i] * self.gain[i];
            }
            let (mut wl, mut wr) = (0.0f32, 0.0f32);
            for i in 0..N {
                wl += OUT_L[i] * o[i];
                wr += OUT_R[i] * o[i];
            }
            let f = hadamard8(o);
            let (il, ir) = (*l * 0.5, *r * 0.5);
            for i in 0..N {
                let inj = if i % 2 == 0 { il } else { ir };
                self.lines[i][self.pos[i]] = f[i] + inj;
                self.pos[i] += 1;
                if self.pos[i] == self.len[i] {
                    self.pos[i] = 0;
                }
            }
            let m = self.mix.next_value();
            *l = *l * (1.0 - m) + wl * out_scale * m;
            *r = *r * (1.0 - m) + wr * out_scale * m;
        }
        crate::denormal::flush_slice(&mut self.lp);
    }

    fn reset(&mut self) {
        self.lines.iter_mut().for_each(|l| l.fill(0.0));
        self.pos = [0; N];
        self.lp = [0.0; N];
        let m = self.mix.target();
        self.mix.snap(m);
    }
}
