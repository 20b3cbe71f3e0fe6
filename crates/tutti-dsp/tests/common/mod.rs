//! Shared helpers for the integration tests (real signals, independent references).
#![allow(dead_code)]

use realfft::RealFftPlanner;

pub use tutti_dsp::bench::noise;

/// Direct (time-domain, f64) linear convolution, truncated to `x.len()`.
pub fn direct_convolution(x: &[f32], h: &[f32]) -> Vec<f64> {
    let mut y = vec![0.0f64; x.len()];
    for (n, yn) in y.iter_mut().enumerate() {
        let kmax = h.len().min(n + 1);
        let mut acc = 0.0f64;
        for k in 0..kmax {
            acc += h[k] as f64 * x[n - k] as f64;
        }
        *yn = acc;
    }
    y
}

/// Magnitude spectrum (linear) of a real signal, zero-padded to `n`.
pub fn magnitude(x: &[f32], n: usize) -> Vec<f64> {
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let mut input: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    input.resize(n, 0.0);
    let mut out = fft.make_output_vec();
    fft.process(&mut input, &mut out).expect("fft");
    out.iter().map(|c| c.norm()).collect()
}

/// RBJ-cookbook peaking biquad coefficients (b0, b1, b2, a1, a2), normalised, in f64.
/// Independent of the crate's design code.
pub fn rbj_peaking(fs: f64, f0: f64, gain_db: f64, q: f64) -> [f64; 5] {
    let a = 10f64.powf(gain_db / 40.0);
    let w0 = 2.0 * std::f64::consts::PI * f0 / fs;
    let alpha = w0.sin() / (2.0 * q);
    let cw = w0.cos();
    let a0 = 1.0 + alpha / a;
    [
        (1.0 + alpha * a) / a0,
        (-2.0 * cw) / a0,
        (1.0 - alpha * a) / a0,
        (-2.0 * cw) / a0,
        (1.0 - alpha / a) / a0,
    ]
}

/// f64 transposed-direct-form-II biquad.
pub struct Tdf2 {
    c: [f64; 5],
    s1: f64,
    s2: f64,
}

impl Tdf2 {
    pub fn new(c: [f64; 5]) -> Self {
        Self {
            c,
            s1: 0.0,
            s2: 0.0,
        }
    }
    pub fn tick(&mut self, x: f64) -> f64 {
        let [b0, b1, b2, a1, a2] = self.c;
        let y = b0 * x + self.s1;
        self.s1 = b1 * x - a1 * y + self.s2;
        self.s2 = b2 * x - a2 * y;
        y
    }
}

/// Max absolute value.
pub fn peak(x: &[f64]) -> f64 {
    x.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// dB of a ratio.
pub fn db(x: f64) -> f64 {
    20.0 * x.log10()
}
