//! Biquad filters: coefficient design, a single modulation-friendly filter ([`Svf`]), and the
//! SIMD-friendly cascade behind every EQ ([`Cascade`]).
//!
//! # Design
//! Every shape is defined by its RBJ-cookbook analog prototype `H(s)` (s normalised to the corner
//! frequency) and discretised by the bilinear transform pre-warped at the corner frequency; see
//! [`analog_response`] for the exact magnitude the tests compare against.
//!
//! # Structure
//! The filters run as trapezoidal state-variable filters (Zavalishin / Simper "SVF"), which
//! realise exactly the same transfer function as the bilinear-transformed biquad but keep their
//! precision in `f32` at low frequencies (no `1 - ε` feedback coefficients) and tolerate
//! coefficient changes while running (smoothed EQ gain).
//!
//! # Speed: the skewed wavefront
//! A serial cascade is one long dependency chain. [`Cascade`] groups `LANES` consecutive filters;
//! within a group, filter `j` processes sample `t - j` while filter 0 processes sample `t`, so the
//! `LANES` filter updates of one step are independent and run as SIMD lanes; the hand-over from
//! filter `j - 1` to filter `j` is a one-lane shift between steps. Left and right channels are
//! interleaved in the same loop for more instruction-level parallelism. The pipeline is filled and
//! drained within each block (masked first/last `LANES - 1` steps), so the cascade adds no
//! latency. The kernel is compiled for AVX-512, AVX2+FMA and the portable baseline and picked at
//! run time.
//!
//! Nothing in `process` allocates, locks, logs or blocks.

use crate::config::{BandConfig, FilterType};
use crate::denormal::flush_slice;

/// Lanes per wavefront group.
pub const LANES: usize = 16;

/// Normalised analog prototype `(n2 s² + n1 s + n0) / (d2 s² + d1 s + d0)`.
fn prototype(ty: FilterType, gain_db: f64, q: f64) -> ([f64; 3], [f64; 3]) {
    let a = 10f64.powf(gain_db / 40.0);
    let sa = a.sqrt();
    match ty {
        FilterType::Peaking => ([1.0, a / q, 1.0], [1.0, 1.0 / (a * q), 1.0]),
        FilterType::Lowshelf => ([a, a * sa / q, a * a], [a, sa / q, 1.0]),
        FilterType::Highshelf => ([a * a, a * sa / q, a], [1.0, sa / q, a]),
        FilterType::Lowpass => ([0.0, 0.0, 1.0], [1.0, 1.0 / q, 1.0]),
        FilterType::Highpass => ([1.0, 0.0, 0.0], [1.0, 1.0 / q, 1.0]),
        FilterType::Bandpass => ([0.0, 1.0 / q, 0.0], [1.0, 1.0 / q, 1.0]),
        FilterType::Notch => ([1.0, 0.0, 1.0], [1.0, 1.0 / q, 1.0]),
        FilterType::Allpass => ([1.0, -1.0 / q, 1.0], [1.0, 1.0 / q, 1.0]),
    }
}

/// Exact complex response `(re, im)` of a band at frequency `f` (Hz) for sample rate `fs`,
/// computed from the analog prototype through the pre-warped bilinear mapping
/// `s = j tan(π f / fs) / tan(π f0 / fs)`.
pub fn analog_response(band: &BandConfig, f: f64, fs: f64) -> (f64, f64) {
    let (n, d) = prototype(band.filter, band.gain_db, band.q);
    let w = (std::f64::consts::PI * f / fs).tan() / (std::f64::consts::PI * band.freq / fs).tan();
    // s = j w: s² = -w²
    let (nr, ni) = (n[2] - n[0] * w * w, n[1] * w);
    let (dr, di) = (d[2] - d[0] * w * w, d[1] * w);
    let den = dr * dr + di * di;
    ((nr * dr + ni * di) / den, (ni * dr - nr * di) / den)
}

/// Exact magnitude in dB of a band (see [`analog_response`]).
pub fn magnitude_db(band: &BandConfig, f: f64, fs: f64) -> f64 {
    let (re, im) = analog_response(band, f, fs);
    10.0 * (re * re + im * im).log10()
}

/// State-variable-filter coefficients (double precision; converted to `f32` per lane).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvfCoeffs {
    /// `1 / (1 + g (g + k))`
    pub a1: f64,
    /// `g a1`
    pub a2: f64,
    /// `g a2`
    pub a3: f64,
    /// Input mix.
    pub m0: f64,
    /// Band-pass mix.
    pub m1: f64,
    /// Low-pass mix.
    pub m2: f64,
}

impl SvfCoeffs {
    /// Pass-through (used to pad unused lanes).
    pub const IDENTITY: Self = Self {
        a1: 1.0,
        a2: 0.0,
        a3: 0.0,
        m0: 1.0,
        m1: 0.0,
        m2: 0.0,
    };

    /// Designs a band; `band` must be valid (`0 < freq < fs/2`, `q > 0`).
    pub fn design(band: &BandConfig, fs: f64) -> Self {
        let (n, d) = prototype(band.filter, band.gain_db, band.q);
        let wn = (d[2] / d[0]).sqrt();
        let k = d[1] / (d[2] * d[0]).sqrt();
        let c2 = n[0] * wn * wn / d[2];
        let c1 = n[1] * wn / d[2];
        let c0 = n[2] / d[2];
        let g = (std::f64::consts::PI * band.freq / fs).tan() * wn;
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        Self {
            a1,
            a2,
            a3,
            m0: c2,
            m1: c1 - c2 * k,
            m2: c0 - c2,
        }
    }
}

/// A single SVF for per-sample use (synth voices, modulated filters). Cheap to retune with
/// [`Svf::set`] at any rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Svf {
    c: [f32; 6],
    s1: f32,
    s2: f32,
}

impl Svf {
    /// A filter for `band` at sample rate `fs`.
    pub fn new(band: &BandConfig, fs: f64) -> Self {
        let mut f = Self {
            c: [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            s1: 0.0,
            s2: 0.0,
        };
        f.set(band, fs);
        f
    }

    /// Retunes (keeps state; safe on the audio thread: no allocation).
    pub fn set(&mut self, band: &BandConfig, fs: f64) {
        let c = SvfCoeffs::design(band, fs);
        self.c = [c.a1, c.a2, c.a3, c.m0, c.m1, c.m2].map(|v| v as f32);
    }

    /// Processes one sample.
    #[inline]
    pub fn tick(&mut self, x: f32) -> f32 {
        let [a1, a2, a3, m0, m1, m2] = self.c;
        let v3 = x - self.s2;
        let v1 = a1 * self.s1 + a2 * v3;
        let v2 = self.s2 + a2 * self.s1 + a3 * v3;
        self.s1 = 2.0 * v1 - self.s1;
        self.s2 = 2.0 * v2 - self.s2;
        m0 * x + m1 * v1 + m2 * v2
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.s1 = 0.0;
        self.s2 = 0.0;
    }
}

/// Coefficients and state of one wavefront group of [`LANES`] filters (both channels).
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Group {
    a1: [f32; LANES],
    a2: [f32; LANES],
    a3: [f32; LANES],
    m0: [f32; LANES],
    m1: [f32; LANES],
    m2: [f32; LANES],
    s1: [[f32; LANES]; 2],
    s2: [[f32; LANES]; 2],
}

impl Group {
    fn new() -> Self {
        let mut g = Self {
            a1: [0.0; LANES],
            a2: [0.0; LANES],
            a3: [0.0; LANES],
            m0: [0.0; LANES],
            m1: [0.0; LANES],
            m2: [0.0; LANES],
            s1: [[0.0; LANES]; 2],
            s2: [[0.0; LANES]; 2],
        };
        for j in 0..LANES {
            g.set_lane(j, &SvfCoeffs::IDENTITY);
        }
        g
    }

    fn set_lane(&mut self, j: usize, c: &SvfCoeffs) {
        self.a1[j] = c.a1 as f32;
        self.a2[j] = c.a2 as f32;
        self.a3[j] = c.a3 as f32;
        self.m0[j] = c.m0 as f32;
        self.m1[j] = c.m1 as f32;
        self.m2[j] = c.m2 as f32;
    }
}

/// Which compiled variant of the kernels to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    Generic,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("TUTTI_DSP_NO_SIMD").is_some() {
                return Isa::Generic;
            }
            if std::env::var_os("TUTTI_DSP_NO_AVX512").is_none()
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2Fma;
            }
        }
        Isa::Generic
    }
}

#[inline(always)]
pub(crate) fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// One wavefront step for both channels. `x` are the lane inputs; returns lane outputs.
#[inline(always)]
fn step<const FMA: bool>(
    g: &Group,
    x: &[[f32; LANES]; 2],
    s1: &mut [[f32; LANES]; 2],
    s2: &mut [[f32; LANES]; 2],
) -> [[f32; LANES]; 2] {
    let mut y = [[0.0f32; LANES]; 2];
    for c in 0..2 {
        for j in 0..LANES {
            let xv = x[c][j];
            let v3 = xv - s2[c][j];
            let v1 = fmadd::<FMA>(g.a2[j], v3, g.a1[j] * s1[c][j]);
            let v2 = fmadd::<FMA>(g.a3[j], v3, fmadd::<FMA>(g.a2[j], s1[c][j], s2[c][j]));
            s1[c][j] = fmadd::<FMA>(2.0, v1, -s1[c][j]);
            s2[c][j] = fmadd::<FMA>(2.0, v2, -s2[c][j]);
            y[c][j] = fmadd::<FMA>(g.m2[j], v2, fmadd::<FMA>(g.m1[j], v1, g.m0[j] * xv));
        }
    }
    y
}

#[inline(always)]
fn shift_in(carry: &[f32; LANES], input: f32) -> [f32; LANES] {
    let mut x = [0.0f32; LANES];
    x[0] = input;
    x[1..].copy_from_slice(&carry[..LANES - 1]);
    x
}

/// A step during pipeline fill or drain: lanes outside their sample range keep their state.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn masked_step<const FMA: bool>(
    g: &Group,
    t: usize,
    n: usize,
    s1: &mut [[f32; LANES]; 2],
    s2: &mut [[f32; LANES]; 2],
    carry: &mut [[f32; LANES]; 2],
    left: &mut [f32],
    right: &mut [f32],
) {
    let skew = LANES - 1;
    let inl = if t < n { left[t] } else { 0.0 };
    let inr = if t < n { right[t] } else { 0.0 };
    let x = [shift_in(&carry[0], inl), shift_in(&carry[1], inr)];
    let (o1, o2) = (*s1, *s2);
    let y = step::<FMA>(g, &x, s1, s2);
    for j in 0..LANES {
        // Lane j handles sample t - j; outside 0..n it must not advance.
        let active = t >= j && t - j < n;
        if !active {
            for c in 0..2 {
                s1[c][j] = o1[c][j];
                s2[c][j] = o2[c][j];
            }
        }
    }
    *carry = y;
    if t >= skew {
        left[t - skew] = y[0][LANES - 1];
        right[t - skew] = y[1][LANES - 1];
    }
}

/// Runs one group over a block in place (both channels).
#[inline(always)]
fn run_group<const FMA: bool>(g: &mut Group, left: &mut [f32], right: &mut [f32]) {
    let n = left.len().min(right.len());
    if n == 0 {
        return;
    }
    let skew = LANES - 1;
    let mut s1 = g.s1;
    let mut s2 = g.s2;
    let mut carry = [[0.0f32; LANES]; 2];
    let total = n + skew;
    if n > skew {
        for t in 0..skew {
            masked_step::<FMA>(g, t, n, &mut s1, &mut s2, &mut carry, left, right);
        }
        for t in skew..n {
            let x = [shift_in(&carry[0], left[t]), shift_in(&carry[1], right[t])];
            let y = step::<FMA>(g, &x, &mut s1, &mut s2);
            carry = y;
            left[t - skew] = y[0][LANES - 1];
            right[t - skew] = y[1][LANES - 1];
        }
        for t in n..total {
            masked_step::<FMA>(g, t, n, &mut s1, &mut s2, &mut carry, left, right);
        }
    } else {
        for t in 0..total {
            masked_step::<FMA>(g, t, n, &mut s1, &mut s2, &mut carry, left, right);
        }
    }
    g.s1 = s1;
    g.s2 = s2;
    for c in 0..2 {
        flush_slice(&mut g.s1[c]);
        flush_slice(&mut g.s2[c]);
    }
}

#[inline(always)]
fn run_groups_impl<const FMA: bool>(groups: &mut [Group], left: &mut [f32], right: &mut [f32]) {
    for g in groups {
        run_group::<FMA>(g, left, right);
    }
}

fn run_groups_generic(groups: &mut [Group], left: &mut [f32], right: &mut [f32]) {
    run_groups_impl::<false>(groups, left, right)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_groups_avx2(groups: &mut [Group], left: &mut [f32], right: &mut [f32]) {
    run_groups_impl::<true>(groups, left, right)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn run_groups_avx512(groups: &mut [Group], left: &mut [f32], right: &mut [f32]) {
    run_groups_impl::<true>(groups, left, right)
}

fn run_groups(isa: Isa, groups: &mut [Group], left: &mut [f32], right: &mut [f32]) {
    match isa {
        Isa::Generic => run_groups_generic(groups, left, right),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only produced by `Isa::detect` after run-time detection of
        // AVX2 and FMA on this CPU.
        #[allow(unsafe_code)]
        Isa::Avx2Fma => unsafe { run_groups_avx2(groups, left, right) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only produced by `Isa::detect` after run-time detection of
        // AVX-512F and FMA (AVX-512F implies AVX2).
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe { run_groups_avx512(groups, left, right) },
    }
}

/// A serial cascade of any number of bands, processed as skewed SIMD wavefronts.
///
/// Bands can be retuned while running through [`Cascade::set_band`] (allocation-free).
#[derive(Debug, Clone)]
pub struct Cascade {
    groups: Vec<Group>,
    bands: usize,
    isa: Isa,
}

impl Cascade {
    /// A cascade of `coeffs.len()` filters.
    pub fn new(coeffs: &[SvfCoeffs]) -> Self {
        let n_groups = coeffs.len().div_ceil(LANES).max(1);
        let mut groups = vec![Group::new(); n_groups];
        for (i, c) in coeffs.iter().enumerate() {
            groups[i / LANES].set_lane(i % LANES, c);
        }
        Self {
            groups,
            bands: coeffs.len(),
            isa: Isa::detect(),
        }
    }

    /// Number of bands.
    pub fn bands(&self) -> usize {
        self.bands
    }

    /// Replaces band `i`'s coefficients, keeping its state. Panics if `i >= bands()`.
    #[inline]
    pub fn set_band(&mut self, i: usize, c: &SvfCoeffs) {
        assert!(i < self.bands, "band index out of range");
        self.groups[i / LANES].set_lane(i % LANES, c);
    }

    /// Processes a stereo block in place. Allocation-free.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32]) {
        if self.bands == 0 {
            return;
        }
        run_groups(self.isa, &mut self.groups, left, right);
    }

    /// Clears all filter state.
    pub fn reset(&mut self) {
        for g in &mut self.groups {
            g.s1 = [[0.0; LANES]; 2];
            g.s2 = [[0.0; LANES]; 2];
        }
    }

    /// Forces the portable (non-SIMD-specialised) kernel; for tests and comparisons.
    pub fn force_generic(&mut self) {
        self.isa = Isa::Generic;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(filter: FilterType, freq: f64, gain_db: f64, q: f64) -> BandConfig {
        BandConfig {
            filter,
            freq,
            gain_db,
            q,
        }
    }

    #[test]
    fn cascade_equals_serial_single_filters() {
        let bands: Vec<BandConfig> = (0..37)
            .map(|i| {
                let ty = [
                    FilterType::Peaking,
                    FilterType::Lowshelf,
                    FilterType::Highshelf,
                    FilterType::Allpass,
                ][i % 4];
                band(
                    ty,
                    40.0 * 1.15f64.powi(i as i32),
                    (i as f64 % 7.0) - 3.0,
                    0.5 + (i % 5) as f64,
                )
            })
            .collect();
        let coeffs: Vec<SvfCoeffs> = bands
            .iter()
            .map(|b| SvfCoeffs::design(b, 48_000.0))
            .collect();
        let mut cascade = Cascade::new(&coeffs);
        let mut singles: Vec<Svf> = bands.iter().map(|b| Svf::new(b, 48_000.0)).collect();
        let x = crate::bench::noise(3000, 4);
        let (mut l, mut r) = (x.clone(), x.clone());
        for (a, b) in l.chunks_mut(128).zip(r.chunks_mut(128)) {
            cascade.process(a, b);
        }
        for (i, &xv) in x.iter().enumerate() {
            let y = singles.iter_mut().fold(xv, |acc, f| f.tick(acc));
            assert!(
                (y - l[i]).abs() < 1e-4 && l[i] == r[i],
                "sample {i}: {y} vs {}",
                l[i]
            );
        }
    }

    fn available_isas() -> Vec<Isa> {
        let mut v = vec![Isa::Generic];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2Fma);
            }
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    #[test]
    fn every_available_kernel_variant_agrees() {
        let bands = crate::bench::benchmark_bands(100);
        let coeffs: Vec<SvfCoeffs> = bands
            .iter()
            .map(|b| SvfCoeffs::design(b, 48_000.0))
            .collect();
        let x = crate::bench::noise(4096, 7);
        let mut outputs = Vec::new();
        for isa in available_isas() {
            let mut c = Cascade::new(&coeffs);
            c.isa = isa;
            let (mut l, mut r) = (x.clone(), x.clone());
            for (a, b) in l.chunks_mut(1000).zip(r.chunks_mut(1000)) {
                c.process(a, b);
            }
            outputs.push((isa, l));
        }
        let (_, reference) = &outputs[0];
        for (isa, out) in &outputs[1..] {
            for (p, q) in reference.iter().zip(out) {
                assert!((p - q).abs() < 1e-4, "{isa:?}: {p} vs {q}");
            }
        }
    }

    #[test]
    fn identity_lanes_pass_signal_through() {
        let mut c = Cascade::new(&[SvfCoeffs::IDENTITY; 3]);
        let x = crate::bench::noise(100, 1);
        let (mut l, mut r) = (x.clone(), x.clone());
        c.process(&mut l, &mut r);
        assert_eq!(l, x);
    }

    #[test]
    fn design_gives_unity_dc_for_lowpass_and_boost_for_peaking() {
        let lp = band(FilterType::Lowpass, 1000.0, 0.0, 0.7);
        assert!(magnitude_db(&lp, 1.0, 48_000.0).abs() < 1e-6);
        let pk = band(FilterType::Peaking, 1000.0, 6.0, 2.0);
        assert!((magnitude_db(&pk, 1000.0, 48_000.0) - 6.0).abs() < 1e-9);
        let ls = band(FilterType::Lowshelf, 200.0, -8.0, 0.7);
        assert!((magnitude_db(&ls, 2.0, 48_000.0) + 8.0).abs() < 0.01);
        let hs = band(FilterType::Highshelf, 2000.0, 5.0, 0.7);
        assert!((magnitude_db(&hs, 23_000.0, 48_000.0) - 5.0).abs() < 0.05);
    }
}
