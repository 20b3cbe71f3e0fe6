//! Building blocks of the voices: band-limited oscillators (polyBLEP), a seeded noise
//! generator, a state-variable filter (topology-preserving transform, stable under fast
//! cutoff modulation) and ADSR envelopes.
//!
//! All state is plain numbers; every method is per-sample and allocation-free.
//!
//! Must never: allocate, lock, log or block (everything here runs on the audio thread);
//! use an unseeded random source (offline renders must be bit-identical).

use std::f32::consts::PI;

/// Seeded xorshift32 noise: deterministic for a seed, different streams for different seeds.
#[derive(Debug, Clone, Copy)]
pub struct Noise {
    state: u32,
}

impl Noise {
    /// A generator for `seed` (any value; 0 is remapped).
    pub fn new(seed: u32) -> Self {
        // SplitMix-style scramble so nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9);
        z = (z ^ (z >> 16)).wrapping_mul(0x85EB_CA6B);
        z = (z ^ (z >> 13)).wrapping_mul(0xC2B2_AE35);
        z ^= z >> 16;
        Self {
            state: if z == 0 { 0x1234_5678 } else { z },
        }
    }

    /// Next raw 32-bit value.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        x
    }

    /// Uniform in `0..1`.
    #[inline]
    pub fn unit(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in `-1..1` (white noise).
    #[inline]
    pub fn bipolar(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }
}

#[inline]
fn poly_blep(t: f32, dt: f32) -> f32 {
    if t < dt {
        let t = t / dt;
        t + t - t * t - 1.0
    } else if t > 1.0 - dt {
        let t = (t - 1.0) / dt;
        t * t + t + t + 1.0
    } else {
        0.0
    }
}

/// Waveform of an [`Oscillator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wave {
    /// Pure sine.
    Sine,
    /// Band-limited sawtooth.
    Saw,
    /// Band-limited square.
    Square,
}

/// A phase-accumulator oscillator with polyBLEP anti-aliasing.
#[derive(Debug, Clone, Copy)]
pub struct Oscillator {
    phase: f32,
    wave: Wave,
}

impl Oscillator {
    /// An oscillator starting at `phase` (0..1).
    pub fn new(wave: Wave, phase: f32) -> Self {
        Self {
            phase: phase.rem_euclid(1.0),
            wave,
        }
    }

    /// Next sample for a frequency given as a fraction of the sample rate (`freq / fs`).
    #[inline]
    pub fn next(&mut self, dt: f32) -> f32 {
        let dt = dt.clamp(0.0, 0.49);
        let t = self.phase;
        let out = match self.wave {
            Wave::Sine => (2.0 * PI * t).sin(),
            Wave::Saw => 2.0 * t - 1.0 - poly_blep(t, dt),
            Wave::Square => {
                let naive = if t < 0.5 { 1.0 } else { -1.0 };
                let t2 = (t + 0.5) - (t + 0.5).floor();
                naive + poly_blep(t, dt) - poly_blep(t2, dt)
            }
        };
        self.phase += dt;
        if self.phase >= 1.0 {
            self.phase -= 1.0;
        }
        out
    }
}

/// Filter response taken from the [`Svf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvfMode {
    /// 12 dB/oct low pass.
    Lowpass,
    /// Band pass.
    Bandpass,
    /// 12 dB/oct high pass.
    Highpass,
}

/// Trapezoidal-integrated state-variable filter (Simper). Coefficients are cheap to set
/// every few samples; the structure stays stable while they move.
#[derive(Debug, Clone, Copy)]
pub struct Svf {
    ic1: f32,
    ic2: f32,
    a1: f32,
    a2: f32,
    a3: f32,
    k: f32,
    mode: SvfMode,
}

impl Svf {
    /// A filter of the given response, cutoff `freq` Hz and quality `q` at `sample_rate`.
    pub fn new(mode: SvfMode, freq: f32, q: f32, sample_rate: f32) -> Self {
        let mut f = Self {
            ic1: 0.0,
            ic2: 0.0,
            a1: 0.0,
            a2: 0.0,
            a3: 0.0,
            k: 1.0,
            mode,
        };
        f.set(freq, q, sample_rate);
        f
    }

    /// Sets cutoff (clamped to 10 Hz … 0.45·fs) and Q (0.5 … 20).
    #[inline]
    pub fn set(&mut self, freq: f32, q: f32, sample_rate: f32) {
        let f = freq.clamp(10.0, 0.45 * sample_rate);
        let g = (PI * f / sample_rate).tan();
        self.k = 1.0 / q.clamp(0.5, 20.0);
        self.a1 = 1.0 / (1.0 + g * (g + self.k));
        self.a2 = g * self.a1;
        self.a3 = g * self.a2;
    }

    /// Filters one sample.
    #[inline]
    pub fn process(&mut self, v0: f32) -> f32 {
        let v3 = v0 - self.ic2;
        let v1 = self.a1 * self.ic1 + self.a2 * v3;
        let v2 = self.ic2 + self.a2 * self.ic1 + self.a3 * v3;
        self.ic1 = 2.0 * v1 - self.ic1;
        self.ic2 = 2.0 * v2 - self.ic2;
        match self.mode {
            SvfMode::Lowpass => v2,
            SvfMode::Bandpass => v1,
            SvfMode::Highpass => v0 - self.k * v1 - v2,
        }
    }

    /// Zeroes tiny state (portable subnormal flush) — call once per block.
    #[inline]
    pub fn flush(&mut self) {
        if self.ic1.abs() < 1e-20 {
            self.ic1 = 0.0;
        }
        if self.ic2.abs() < 1e-20 {
            self.ic2 = 0.0;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Attack,
    Decay,
    Sustain,
    Release,
}

/// ADSR envelope: linear attack, exponential decay and release (reaching −80 dB in the
/// given times). A zero sustain level makes it a percussive AD envelope.
#[derive(Debug, Clone, Copy)]
pub struct Adsr {
    stage: Stage,
    value: f32,
    attack_inc: f32,
    decay_coef: f32,
    sustain: f32,
    release_coef: f32,
}

/// −80 dB: where the exponential segments count as finished.
const ENV_FLOOR: f32 = 1e-4;

fn exp_coef(seconds: f32, sample_rate: f32) -> f32 {
    let n = (seconds * sample_rate).max(1.0);
    // value *= coef each sample; after n samples it has fallen by 80 dB.
    ENV_FLOOR.powf(1.0 / n)
}

impl Adsr {
    /// An idle envelope with times in seconds and sustain level 0..1.
    pub fn new(attack: f32, decay: f32, sustain: f32, release: f32, sample_rate: f32) -> Self {
        Self {
            stage: Stage::Idle,
            value: 0.0,
            attack_inc: 1.0 / (attack * sample_rate).max(1.0),
            decay_coef: exp_coef(decay, sample_rate),
            sustain: sustain.clamp(0.0, 1.0),
            release_coef: exp_coef(release, sample_rate),
        }
    }

    /// Changes the decay time (e.g. from a tone control) without restarting.
    #[inline]
    pub fn set_decay(&mut self, decay: f32, sample_rate: f32) {
        self.decay_coef = exp_coef(decay, sample_rate);
    }

    /// Starts (or restarts, from the current level, without a click) the attack.
    #[inline]
    pub fn gate_on(&mut self) {
        self.stage = Stage::Attack;
    }

    /// Starts the release.
    #[inline]
    pub fn gate_off(&mut self) {
        if self.stage != Stage::Idle {
            self.stage = Stage::Release;
        }
    }

    /// Whether the envelope is silent and finished.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.stage == Stage::Idle
    }

    /// Current level.
    #[inline]
    pub fn value(&self) -> f32 {
        self.value
    }

    /// Next level.
    #[inline]
    pub fn tick(&mut self) -> f32 {
        match self.stage {
            Stage::Idle => {}
            Stage::Attack => {
                self.value += self.attack_inc;
                if self.value >= 1.0 {
                    self.value = 1.0;
                    self.stage = Stage::Decay;
                }
            }
            Stage::Decay => {
                self.value = self.sustain + (self.value - self.sustain) * self.decay_coef;
                if self.value - self.sustain <= ENV_FLOOR {
                    self.value = self.sustain;
                    self.stage = if self.sustain > 0.0 {
                        Stage::Sustain
                    } else {
                        Stage::Idle
                    };
                }
            }
            Stage::Sustain => self.value = self.sustain,
            Stage::Release => {
                self.value *= self.release_coef;
                if self.value <= ENV_FLOOR {
                    self.value = 0.0;
                    self.stage = Stage::Idle;
                }
            }
        }
        self.value
    }
}

/// Constant-power pan gains for `pan` in −1 (left) … 1 (right).
#[inline]
pub fn pan_gains(pan: f32) -> (f32, f32) {
    let a = (pan.clamp(-1.0, 1.0) + 1.0) * (PI / 4.0);
    (a.cos(), a.sin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_seeded_and_bounded() {
        let mut a = Noise::new(7);
        let mut b = Noise::new(7);
        let mut c = Noise::new(8);
        let va: Vec<f32> = (0..1000).map(|_| a.bipolar()).collect();
        let vb: Vec<f32> = (0..1000).map(|_| b.bipolar()).collect();
        let vc: Vec<f32> = (0..1000).map(|_| c.bipolar()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        assert!(va.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean: f32 = va.iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.1, "{mean}");
    }

    #[test]
    fn saw_is_bounded_and_has_the_right_period() {
        let fs = 48_000.0;
        let f = 1000.0;
        let mut o = Oscillator::new(Wave::Saw, 0.0);
        let v: Vec<f32> = (0..4800).map(|_| o.next(f / fs)).collect();
        assert!(v.iter().all(|x| x.abs() <= 1.01));
        // 100 periods → 100 upward zero crossings (the ramp), 100 downward (the reset).
        let ups = v.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!((99..=101).contains(&ups), "{ups}");
    }

    #[test]
    fn svf_lowpass_passes_lows_and_cuts_highs() {
        let fs = 48_000.0;
        let rms = |freq: f32| {
            let mut f = Svf::new(SvfMode::Lowpass, 500.0, 0.707, fs);
            let mut o = Oscillator::new(Wave::Sine, 0.0);
            let v: Vec<f32> = (0..9600).map(|_| f.process(o.next(freq / fs))).collect();
            (v[4800..].iter().map(|x| x * x).sum::<f32>() / 4800.0).sqrt()
        };
        assert!((rms(50.0) - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.02);
        assert!(rms(8000.0) < 0.01);
    }

    #[test]
    fn adsr_runs_its_stages() {
        let fs = 1000.0;
        let mut e = Adsr::new(0.01, 0.1, 0.5, 0.1, fs);
        e.gate_on();
        let peak = (0..10).map(|_| e.tick()).fold(0.0f32, f32::max);
        assert!((peak - 1.0).abs() < 1e-6);
        for _ in 0..200 {
            e.tick();
        }
        assert!((e.value() - 0.5).abs() < 1e-3);
        e.gate_off();
        for _ in 0..200 {
            e.tick();
        }
        assert!(e.is_idle());
        assert_eq!(e.value(), 0.0);
    }
}
