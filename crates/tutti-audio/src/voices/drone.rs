//! The `drone` voice: three detuned band-limited saws and a square sub-oscillator through a
//! resonant low-pass state-variable filter per channel, with a slow filter LFO.
//!
//! Controls: `drone.freq` (Hz), `drone.amp`, `drone.cutoff` (Hz), `drone.detune` (0..0.02,
//! fraction of the frequency each outer saw is moved up/down).
//!
//! Must never: allocate, lock, log or block in `render` (audio thread).

use crate::controls::{ids, ControlId, ControlSpec};
use crate::synth::{Adsr, Oscillator, Svf, SvfMode, Wave};
use tutti_dsp::smooth::Ramp;

/// Filter coefficients are recomputed every this many samples (from the smoothed cutoff).
const COEF_EVERY: usize = 16;
/// Output scale so that all oscillators at full amp stay well below full scale.
const LEVEL: f32 = 0.22;

/// The drone voice.
#[derive(Debug, Clone)]
pub struct Drone {
    fs: f32,
    freq: Ramp,
    amp: Ramp,
    cutoff: Ramp,
    detune: Ramp,
    saws: [Oscillator; 3],
    sub: Oscillator,
    lfo: Oscillator,
    filters: [Svf; 2],
    env: Adsr,
    counter: usize,
}

fn sm(id: ControlId, sample_rate: u32) -> Ramp {
    let spec: &ControlSpec = id.spec();
    Ramp::new(spec.default, spec.ramp_samples(sample_rate))
}

impl Drone {
    /// A drone at the controls' defaults; it fades in over 0.3 s.
    pub fn new(sample_rate: u32) -> Self {
        let fs = sample_rate as f32;
        let mut env = Adsr::new(0.3, 0.5, 1.0, 0.5, fs);
        env.gate_on();
        Self {
            fs,
            freq: sm(ids::DRONE_FREQ, sample_rate),
            amp: sm(ids::DRONE_AMP, sample_rate),
            cutoff: sm(ids::DRONE_CUTOFF, sample_rate),
            detune: sm(ids::DRONE_DETUNE, sample_rate),
            saws: [
                Oscillator::new(Wave::Saw, 0.0),
                Oscillator::new(Wave::Saw, 0.33),
                Oscillator::new(Wave::Saw, 0.66),
            ],
            sub: Oscillator::new(Wave::Square, 0.25),
            lfo: Oscillator::new(Wave::Sine, 0.0),
            filters: [
                Svf::new(SvfMode::Lowpass, 1200.0, 0.9, fs),
                Svf::new(SvfMode::Lowpass, 1200.0, 0.9, fs),
            ],
            env,
            counter: 0,
        }
    }

    /// Sets a control's target (ids other than `drone.*` are ignored).
    pub fn set(&mut self, id: ControlId, v: f32) {
        match id {
            ids::DRONE_FREQ => self.freq.set(v),
            ids::DRONE_AMP => self.amp.set(v),
            ids::DRONE_CUTOFF => self.cutoff.set(v),
            ids::DRONE_DETUNE => self.detune.set(v),
            _ => {}
        }
    }

    /// Jumps a control to `v` (before playback starts).
    pub fn snap(&mut self, id: ControlId, v: f32) {
        match id {
            ids::DRONE_FREQ => self.freq.snap(v),
            ids::DRONE_AMP => self.amp.snap(v),
            ids::DRONE_CUTOFF => self.cutoff.snap(v),
            ids::DRONE_DETUNE => self.detune.snap(v),
            _ => {}
        }
    }

    /// The smoothed value of one of this voice's controls.
    pub fn value(&self, id: ControlId) -> Option<f32> {
        Some(match id {
            ids::DRONE_FREQ => self.freq.value(),
            ids::DRONE_AMP => self.amp.value(),
            ids::DRONE_CUTOFF => self.cutoff.value(),
            ids::DRONE_DETUNE => self.detune.value(),
            _ => return None,
        })
    }

    /// Adds the voice into `left`/`right`.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let inv_fs = 1.0 / self.fs;
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            if self.counter == 0 {
                let lfo = self.lfo.next(0.07 * inv_fs * COEF_EVERY as f32);
                let cutoff = self.cutoff.advance(COEF_EVERY as u32) * (0.25 * lfo).exp2();
                for f in &mut self.filters {
                    f.set(cutoff, 0.9, self.fs);
                }
            }
            self.counter = (self.counter + 1) % COEF_EVERY;
            let f = self.freq.next_value();
            let d = self.detune.next_value();
            let amp = self.amp.next_value() * self.env.tick() * LEVEL;
            let dt = f * inv_fs;
            let lo = self.saws[0].next(dt * (1.0 - d));
            let mid = self.saws[1].next(dt);
            let hi = self.saws[2].next(dt * (1.0 + d));
            let sub = self.sub.next(0.5 * dt) * 0.35;
            let common = 0.7 * mid + sub;
            *l += self.filters[0].process(lo + common) * amp;
            *r += self.filters[1].process(hi + common) * amp;
        }
        for f in &mut self.filters {
            f.flush();
        }
    }
}
