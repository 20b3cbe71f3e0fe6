//! The `granular` voice: a grain scheduler playing Hann-windowed grains (30–120 ms) from a
//! source table — an internal wavetable synthesised at start, or a loaded sample — at a
//! given density, pitch ratio and stereo spread.
//!
//! Controls: `granular.density` (grains/s), `granular.pitch` (playback ratio),
//! `granular.amp`, `granular.spread` (0 = all grains centred, 1 = grains anywhere from hard
//! left to hard right).
//!
//! A new source arrives as a boxed [`GrainSource`] built off the audio thread; the voice
//! stops starting grains, lets the running ones finish (no click), then switches and hands
//! the old source back for dropping elsewhere.
//!
//! Must never: allocate, free, lock, log or block in `render` (audio thread); use an
//! unseeded random source.

use crate::controls::{ids, ControlId};
use crate::synth::{pan_gains, Noise, Svf, SvfMode};
use tutti_dsp::smooth::Ramp;

/// Most grains sounding at once (preallocated slots; a grain due when all are busy is skipped).
pub const MAX_GRAINS: usize = 64;
const WINDOW_POINTS: usize = 512;
const MIN_GRAIN_S: f32 = 0.03;
const MAX_GRAIN_S: f32 = 0.12;
const LEVEL: f32 = 0.5;

/// A mono table grains are read from, at the engine's sample rate.
#[derive(Debug, Clone)]
pub struct GrainSource {
    samples: Vec<f32>,
}

impl GrainSource {
    /// A source from mono samples (at the engine's rate). Off the audio thread.
    /// An empty input gives one second of silence so the voice always has a table.
    pub fn from_mono(samples: Vec<f32>, sample_rate: u32) -> Self {
        if samples.is_empty() {
            return Self {
                samples: vec![0.0; sample_rate as usize],
            };
        }
        Self { samples }
    }

    /// The internal wavetable: two seconds of a soft, slowly beating A-minor-ninth cluster
    /// with a breath of band-passed noise. Deterministic.
    pub fn internal(sample_rate: u32, seed: u32) -> Self {
        let fs = sample_rate as f32;
        let n = 2 * sample_rate as usize;
        let partials: [(f32, f32); 6] = [
            (220.0, 0.5),
            (261.63, 0.35),
            (329.63, 0.35),
            (392.0, 0.2),
            (493.88, 0.15),
            (880.0, 0.08),
        ];
        let mut noise = Noise::new(seed ^ 0xA11C_E5ED);
        let mut bp = Svf::new(SvfMode::Bandpass, 1800.0, 2.0, fs);
        let two_pi = std::f32::consts::TAU;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let t = i as f32 / fs;
            // Whole number of wobble cycles over the table so it loops seamlessly.
            let wobble = 0.5 + 0.5 * (two_pi * 1.5 * t).sin();
            let mut s = 0.0;
            for (k, (f, a)) in partials.iter().enumerate() {
                let detuned = f * (1.0 + 0.002 * k as f32);
                s += a * (two_pi * detuned * t + k as f32).sin();
            }
            s = s * (0.6 + 0.4 * wobble) + 0.25 * bp.process(noise.bipolar());
            out.push(s * 0.45);
        }
        Self { samples: out }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the table is empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    #[inline]
    fn read(&self, pos: f64) -> f32 {
        let len = self.samples.len();
        let i = pos.floor();
        let frac = (pos - i) as f32;
        let i = (i as usize) % len;
        let j = if i + 1 == len { 0 } else { i + 1 };
        self.samples[i] + (self.samples[j] - self.samples[i]) * frac
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Grain {
    active: bool,
    pos: f64,
    rate: f64,
    len: u32,
    age: u32,
    gain_l: f32,
    gain_r: f32,
}

/// The granular voice.
#[derive(Debug)]
pub struct Granular {
    fs: f32,
    density: Ramp,
    pitch: Ramp,
    amp: Ramp,
    spread: Ramp,
    source: Box<GrainSource>,
    pending: Option<Box<GrainSource>>,
    retired: Option<Box<GrainSource>>,
    grains: [Grain; MAX_GRAINS],
    window: [f32; WINDOW_POINTS + 1],
    countdown: f32,
    rng: Noise,
    skipped: u64,
}

impl Granular {
    /// A granular voice on the internal wavetable.
    pub fn new(sample_rate: u32, seed: u32) -> Self {
        let sm = |id: ControlId| {
            let s = id.spec();
            Ramp::new(s.default, s.ramp_samples(sample_rate))
        };
        let mut window = [0.0f32; WINDOW_POINTS + 1];
        for (i, w) in window.iter_mut().enumerate() {
            let x = i as f32 / WINDOW_POINTS as f32;
            *w = 0.5 - 0.5 * (std::f32::consts::TAU * x).cos();
        }
        Self {
            fs: sample_rate as f32,
            density: sm(ids::GRANULAR_DENSITY),
            pitch: sm(ids::GRANULAR_PITCH),
            amp: sm(ids::GRANULAR_AMP),
            spread: sm(ids::GRANULAR_SPREAD),
            source: Box::new(GrainSource::internal(sample_rate, seed)),
            pending: None,
            retired: None,
            grains: [Grain::default(); MAX_GRAINS],
            window,
            countdown: 0.0,
            rng: Noise::new(seed ^ 0x6EA1_0001),
            skipped: 0,
        }
    }

    /// Sets a control's target (ids other than `granular.*` are ignored).
    pub fn set(&mut self, id: ControlId, v: f32) {
        match id {
            ids::GRANULAR_DENSITY => self.density.set(v),
            ids::GRANULAR_PITCH => self.pitch.set(v),
            ids::GRANULAR_AMP => self.amp.set(v),
            ids::GRANULAR_SPREAD => self.spread.set(v),
            _ => {}
        }
    }

    /// Jumps a control to `v` (before playback starts).
    pub fn snap(&mut self, id: ControlId, v: f32) {
        match id {
            ids::GRANULAR_DENSITY => self.density.snap(v),
            ids::GRANULAR_PITCH => self.pitch.snap(v),
            ids::GRANULAR_AMP => self.amp.snap(v),
            ids::GRANULAR_SPREAD => self.spread.snap(v),
            _ => {}
        }
    }

    /// The smoothed value of one of this voice's controls.
    pub fn value(&self, id: ControlId) -> Option<f32> {
        Some(match id {
            ids::GRANULAR_DENSITY => self.density.value(),
            ids::GRANULAR_PITCH => self.pitch.value(),
            ids::GRANULAR_AMP => self.amp.value(),
            ids::GRANULAR_SPREAD => self.spread.value(),
            _ => return None,
        })
    }

    /// Whether a new source can be queued now (none pending, none waiting for disposal).
    pub fn accepts_source(&self) -> bool {
        self.pending.is_none() && self.retired.is_none()
    }

    /// Queues a new source (check [`Granular::accepts_source`] first); returns a source it
    /// displaced from the queue, if any, for disposal off the audio thread.
    pub fn replace_source(&mut self, src: Box<GrainSource>) -> Option<Box<GrainSource>> {
        self.pending.replace(src)
    }

    /// A source ready for disposal off the audio thread: one handed back earlier, or the
    /// old source once a pending one could be switched in (no grain running).
    pub fn take_retired_source(&mut self) -> Option<Box<GrainSource>> {
        if let Some(r) = self.retired.take() {
            return Some(r);
        }
        if self.pending.is_some() && self.grains.iter().all(|g| !g.active) {
            let new = self.pending.take()?;
            Some(std::mem::replace(&mut self.source, new))
        } else {
            None
        }
    }

    /// Keeps a retired source until it can be handed back (the disposal queue was full).
    pub fn stash_retired(&mut self, src: Box<GrainSource>) {
        self.retired = Some(src);
    }

    /// Grains that were due while every slot was busy.
    pub fn skipped_grains(&self) -> u64 {
        self.skipped
    }

    fn spawn(&mut self, pitch: f32, spread: f32) {
        let Some(slot) = self.grains.iter_mut().position(|g| !g.active) else {
            self.skipped += 1;
            return;
        };
        let len_s = MIN_GRAIN_S + (MAX_GRAIN_S - MIN_GRAIN_S) * self.rng.unit();
        let len = (len_s * self.fs).max(8.0) as u32;
        // ±10 cents of jitter keeps the texture alive without blurring the pitch.
        let cents = (self.rng.bipolar() * 10.0) / 1200.0;
        let rate = pitch as f64 * f64::from(cents).exp2();
        let pos = self.rng.unit() as f64 * self.source.len() as f64;
        let (gl, gr) = pan_gains(spread * self.rng.bipolar());
        self.grains[slot] = Grain {
            active: true,
            pos,
            rate,
            len,
            age: 0,
            gain_l: gl,
            gain_r: gr,
        };
    }

    /// Adds the voice into `left`/`right`.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len();
        // Scheduling at sample resolution; parameters other than amp move per block.
        let density = self.density.advance(n as u32).max(0.01);
        let pitch = self.pitch.advance(n as u32);
        let spread = self.spread.advance(n as u32);
        let overlap = density * 0.5 * (MIN_GRAIN_S + MAX_GRAIN_S);
        let norm = LEVEL / overlap.max(1.0).sqrt();
        let mean_gap = self.fs / density;
        // A density jump upwards takes effect now, not after the old (long) gap.
        self.countdown = self.countdown.min(mean_gap * 1.5);
        for i in 0..n {
            self.countdown -= 1.0;
            if self.countdown <= 0.0 {
                if self.pending.is_none() {
                    self.spawn(pitch, spread);
                }
                // Jittered inter-onset interval: 0.5–1.5 × the mean gap.
                self.countdown += mean_gap * (0.5 + self.rng.unit());
            }
            let amp = self.amp.next_value() * norm;
            let mut sl = 0.0;
            let mut sr = 0.0;
            for g in self.grains.iter_mut().filter(|g| g.active) {
                let x = g.age as f32 / g.len as f32 * WINDOW_POINTS as f32;
                let wi = x as usize;
                let wf = x - wi as f32;
                let w = self.window[wi]
                    + (self.window[(wi + 1).min(WINDOW_POINTS)] - self.window[wi]) * wf;
                let s = self.source.read(g.pos) * w;
                sl += s * g.gain_l;
                sr += s * g.gain_r;
                g.pos += g.rate;
                if g.pos >= self.source.len() as f64 {
                    g.pos -= self.source.len() as f64;
                }
                g.age += 1;
                if g.age >= g.len {
                    g.active = false;
                }
            }
            left[i] += sl * amp;
            right[i] += sr * amp;
        }
    }
}
