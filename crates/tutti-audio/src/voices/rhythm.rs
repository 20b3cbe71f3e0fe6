//! The `rhythm` voice: a 16-step sequencer driving a synthesised kick (pitch-swept sine and
//! a noise click), snare (band-passed noise and a tonal body) and hi-hat (high-passed noise,
//! closed and open), with one pattern per section of the piece.
//!
//! Controls: `rhythm.tempo` (bpm, four steps per beat), `rhythm.amp`, `rhythm.tone`
//! (0 = dark and round, 1 = bright and snappy), `rhythm.pattern` (0 calm, 1 pulse,
//! 2 storm; a new pattern starts at the next step, so a change never cuts a sound).
//!
//! Must never: allocate, lock, log or block in `render` (audio thread); use an unseeded
//! random source.

use crate::controls::{ids, ControlId};
use crate::synth::{pan_gains, Adsr, Noise, Oscillator, Svf, SvfMode, Wave};
use tutti_dsp::smooth::Ramp;

const STEPS: usize = 16;
const LEVEL: f32 = 0.9;

/// One section's pattern: velocities 0–9 per step (0 = rest) for each instrument.
#[derive(Debug, Clone, Copy)]
struct Pattern {
    kick: [u8; STEPS],
    snare: [u8; STEPS],
    hat: [u8; STEPS],
    open_hat: [u8; STEPS],
}

/// calm, pulse, storm.
const PATTERNS: [Pattern; 3] = [
    Pattern {
        kick: [8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0],
        snare: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0],
        hat: [0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0],
        open_hat: [0; STEPS],
    },
    Pattern {
        kick: [9, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0, 0, 7, 0, 0, 0],
        snare: [0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0],
        hat: [5, 0, 3, 0, 5, 0, 3, 0, 5, 0, 3, 0, 5, 0, 3, 0],
        open_hat: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0],
    },
    Pattern {
        kick: [9, 0, 0, 7, 0, 0, 8, 0, 9, 0, 7, 6, 0, 0, 8, 0],
        snare: [0, 0, 0, 0, 9, 0, 0, 3, 0, 0, 0, 0, 9, 0, 2, 3],
        hat: [6, 3, 5, 3, 6, 3, 5, 3, 6, 3, 5, 3, 6, 3, 0, 3],
        open_hat: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0],
    },
];

#[derive(Debug, Clone)]
struct Kick {
    osc: Oscillator,
    env: Adsr,
    sweep: f32,
    sweep_coef: f32,
    click: Adsr,
    vel: f32,
}

#[derive(Debug, Clone)]
struct Snare {
    body: Oscillator,
    body_env: Adsr,
    noise_env: Adsr,
    filter: Svf,
    vel: f32,
}

#[derive(Debug, Clone)]
struct Hat {
    env: Adsr,
    open_env: Adsr,
    filter: Svf,
    vel: f32,
    open_vel: f32,
}

/// The rhythm voice.
#[derive(Debug, Clone)]
pub struct Rhythm {
    fs: f32,
    tempo: Ramp,
    amp: Ramp,
    tone: Ramp,
    pattern: usize,
    next_pattern: usize,
    step: usize,
    step_phase: f32,
    kick: Kick,
    snare: Snare,
    hat: Hat,
    noise: Noise,
    snare_pan: (f32, f32),
    hat_pan: (f32, f32),
}

impl Rhythm {
    /// A rhythm voice at the controls' defaults, starting on the first step.
    pub fn new(sample_rate: u32, seed: u32) -> Self {
        let fs = sample_rate as f32;
        let sm = |id: ControlId| {
            let s = id.spec();
            Ramp::new(s.default, s.ramp_samples(sample_rate))
        };
        let pattern = ids::RHYTHM_PATTERN.spec().default as usize;
        Self {
            fs,
            tempo: sm(ids::RHYTHM_TEMPO),
            amp: sm(ids::RHYTHM_AMP),
            tone: sm(ids::RHYTHM_TONE),
            pattern,
            next_pattern: pattern,
            step: 0,
            // Start just before the first step so it sounds at once.
            step_phase: 1.0,
            kick: Kick {
                osc: Oscillator::new(Wave::Sine, 0.0),
                env: Adsr::new(0.001, 0.3, 0.0, 0.05, fs),
                sweep: 0.0,
                sweep_coef: (1e-3f32).powf(1.0 / (0.06 * fs)),
                click: Adsr::new(0.0005, 0.006, 0.0, 0.005, fs),
                vel: 0.0,
            },
            snare: Snare {
                body: Oscillator::new(Wave::Sine, 0.0),
                body_env: Adsr::new(0.001, 0.08, 0.0, 0.02, fs),
                noise_env: Adsr::new(0.001, 0.18, 0.0, 0.03, fs),
                filter: Svf::new(SvfMode::Bandpass, 3000.0, 1.2, fs),
                vel: 0.0,
            },
            hat: Hat {
                env: Adsr::new(0.0005, 0.045, 0.0, 0.01, fs),
                open_env: Adsr::new(0.001, 0.3, 0.0, 0.05, fs),
                filter: Svf::new(SvfMode::Highpass, 7500.0, 0.8, fs),
                vel: 0.0,
                open_vel: 0.0,
            },
            noise: Noise::new(seed ^ 0xD2D2_0003),
            snare_pan: pan_gains(-0.2),
            hat_pan: pan_gains(0.3),
        }
    }

    /// Sets a control's target (ids other than `rhythm.*` are ignored).
    pub fn set(&mut self, id: ControlId, v: f32) {
        match id {
            ids::RHYTHM_TEMPO => self.tempo.set(v),
            ids::RHYTHM_AMP => self.amp.set(v),
            ids::RHYTHM_TONE => self.tone.set(v),
            ids::RHYTHM_PATTERN => self.next_pattern = (v.round().max(0.0) as usize).min(2),
            _ => {}
        }
    }

    /// Jumps a control to `v` (before playback starts).
    pub fn snap(&mut self, id: ControlId, v: f32) {
        match id {
            ids::RHYTHM_TEMPO => self.tempo.snap(v),
            ids::RHYTHM_AMP => self.amp.snap(v),
            ids::RHYTHM_TONE => self.tone.snap(v),
            ids::RHYTHM_PATTERN => {
                self.next_pattern = (v.round().max(0.0) as usize).min(2);
                self.pattern = self.next_pattern;
            }
            _ => {}
        }
    }

    /// The smoothed value of one of this voice's controls (the pattern playing now).
    pub fn value(&self, id: ControlId) -> Option<f32> {
        Some(match id {
            ids::RHYTHM_TEMPO => self.tempo.value(),
            ids::RHYTHM_AMP => self.amp.value(),
            ids::RHYTHM_TONE => self.tone.value(),
            ids::RHYTHM_PATTERN => self.pattern as f32,
            _ => return None,
        })
    }

    fn trigger_step(&mut self) {
        self.pattern = self.next_pattern;
        let p = &PATTERNS[self.pattern];
        let s = self.step;
        if p.kick[s] > 0 {
            self.kick.vel = p.kick[s] as f32 / 9.0;
            self.kick.env.gate_on();
            self.kick.click.gate_on();
            self.kick.sweep = 1.0;
        }
        if p.snare[s] > 0 {
            self.snare.vel = p.snare[s] as f32 / 9.0;
            self.snare.body_env.gate_on();
            self.snare.noise_env.gate_on();
        }
        if p.hat[s] > 0 {
            self.hat.vel = p.hat[s] as f32 / 9.0;
            self.hat.env.gate_on();
            // A closed hat chokes the open one.
            self.hat.open_env.gate_off();
        }
        if p.open_hat[s] > 0 {
            self.hat.open_vel = p.open_hat[s] as f32 / 9.0;
            self.hat.open_env.gate_on();
        }
    }

    /// Adds the voice into `left`/`right`.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let n = left.len();
        let fs = self.fs;
        let tempo = self.tempo.advance(n as u32).max(1.0);
        let tone = self.tone.advance(n as u32);
        let step_inc = tempo * 4.0 / (60.0 * fs);
        self.kick.env.set_decay(0.4 - 0.2 * tone, fs);
        self.snare.filter.set(1200.0 + 3500.0 * tone, 1.2, fs);
        self.hat.filter.set(5000.0 + 5000.0 * tone, 0.8, fs);
        let click_level = 0.15 + 0.5 * tone;
        let inv_fs = 1.0 / fs;
        for i in 0..n {
            self.step_phase += step_inc;
            if self.step_phase >= 1.0 {
                self.step_phase -= 1.0;
                if self.step_phase >= 1.0 {
                    self.step_phase = 0.0;
                }
                self.trigger_step();
                self.step = (self.step + 1) % STEPS;
            }
            let amp = self.amp.next_value() * LEVEL;
            let white = self.noise.bipolar();

            // Kick: 48 Hz body swept down from ~210 Hz, plus a short noise click.
            let k = &mut self.kick;
            k.sweep *= k.sweep_coef;
            let kf = 48.0 + 160.0 * k.sweep;
            let kick = (k.osc.next(kf * inv_fs) * k.env.tick()
                + white * click_level * k.click.tick())
                * k.vel;

            // Snare: tonal body + band-passed noise.
            let sn = &mut self.snare;
            let snare_noise = sn.filter.process(white) * sn.noise_env.tick() * 1.6;
            let snare =
                (sn.body.next(190.0 * inv_fs) * sn.body_env.tick() * 0.5 + snare_noise) * sn.vel;

            // Hats: high-passed noise, closed and open.
            let h = &mut self.hat;
            let hp = h.filter.process(white);
            let hat = hp * (h.env.tick() * h.vel + h.open_env.tick() * h.open_vel) * 0.6;

            let (snl, snr) = self.snare_pan;
            let (hl, hr) = self.hat_pan;
            left[i] += (kick + snare * snl + hat * hl) * amp;
            right[i] += (kick + snare * snr + hat * hr) * amp;
        }
        self.snare.filter.flush();
        self.hat.filter.flush();
    }
}
