//! Tutti's own short sounds for chat's `/play <sound>` (issue 12), rendered offline in Rust so
//! a show's own sound (the embedded engine, SuperCollider) can play them: the same ten recipes
//! as the phones' Web Audio ones (`web/sounds.js`) — a few oscillators, filtered noise from a
//! fixed seed and attack/exponential-decay envelopes — written again here sample by sample.
//!
//! [`render`] is deterministic (the same name and rate give the same samples), bounded (every
//! sound is shorter than [`MAX_SECONDS`], its peak normalised to [`PEAK`]) and ends in silence
//! (a 5 ms fade at the end). It allocates and takes a few milliseconds: call it off the audio
//! thread (the engine renders each sound once into a clip and plays that).
//!
//! Must never: run on the audio thread, return a sample that is not finite or beyond
//! [`PEAK`], or a sound of [`MAX_SECONDS`] or more.

use crate::config::{BandConfig, FilterType};
use crate::filter::Svf;

/// The sounds there are, in the order chat lists them (`tutti-chat`'s `SOUNDS`).
pub const NAMES: &[&str] = &[
    "applause", "bell", "crickets", "drumroll", "gong", "horn", "rimshot", "tada", "trombone",
    "whoosh",
];

/// Every sound is shorter than this, seconds.
pub const MAX_SECONDS: f32 = 3.0;

/// The peak every sound is normalised to (about −4.4 dBFS): loud enough to hear, with room
/// for the engine's other voices.
pub const PEAK: f32 = 0.6;

/// How a noise burst is filtered.
#[derive(Clone, Copy)]
enum Shape {
    Lowpass,
    Highpass,
    Bandpass,
}

/// An oscillator's wave.
#[derive(Clone, Copy, PartialEq)]
enum Wave {
    Sine,
    Saw,
}

/// A mono mix being rendered.
struct Mix {
    sr: f32,
    out: Vec<f32>,
    noise: u32,
}

impl Mix {
    fn new(seconds: f32, sr: u32) -> Mix {
        Mix {
            sr: sr as f32,
            out: vec![0.0; (seconds * sr as f32).ceil() as usize],
            noise: 0x2545_f491,
        }
    }

    /// The envelope at `t` seconds after its start: linear up to `g` over `a`, then
    /// exponentially down to 0.0001 at `d`, silent after (Web Audio's ramps, as the page's).
    fn env(t: f32, g: f32, a: f32, d: f32) -> f32 {
        if t < 0.0 || t > d {
            0.0
        } else if t < a {
            g * t / a
        } else {
            g * (0.0001 / g).powf((t - a) / (d - a).max(1e-6))
        }
    }

    /// The sample range `[t, t + d]` covers, clipped to the mix.
    fn span(&self, t: f32, d: f32) -> std::ops::Range<usize> {
        let from = (t * self.sr).max(0.0) as usize;
        let to = (((t + d) * self.sr).ceil() as usize).min(self.out.len());
        from.min(to)..to
    }

    /// An oscillator whose frequency at time `s` (seconds from its start) is `freq(s)`,
    /// through a low-pass at `filter(s)` if given, under the envelope `(t, g, a, d)`.
    #[allow(clippy::too_many_arguments)]
    fn osc(
        &mut self,
        wave: Wave,
        t: f32,
        g: f32,
        a: f32,
        d: f32,
        freq: impl Fn(f32) -> f32,
        filter: Option<&dyn Fn(f32) -> f32>,
    ) {
        let sr = self.sr;
        let mut phase = 0.0f32;
        let mut lp =
            filter.map(|f| Svf::new(&band(FilterType::Lowpass, f(0.0), 0.707, sr), sr.into()));
        for i in self.span(t, d) {
            let s = i as f32 / sr - t;
            let f = freq(s);
            let dt = f / sr;
            let x = match wave {
                Wave::Sine => (phase * std::f32::consts::TAU).sin(),
                Wave::Saw => 2.0 * phase - 1.0 - poly_blep(phase, dt),
            };
            phase = (phase + dt).fract();
            let x = match (&mut lp, filter) {
                (Some(svf), Some(cut)) => {
                    if i % 32 == 0 {
                        svf.set(&band(FilterType::Lowpass, cut(s), 0.707, sr), sr.into());
                    }
                    svf.tick(x)
                }
                _ => x,
            };
            self.out[i] += x * Self::env(s, g, a, d);
        }
    }

    fn tone(&mut self, wave: Wave, freq: f32, t: f32, g: f32, a: f32, d: f32) {
        self.osc(wave, t, g, a, d, |_| freq, None);
    }

    /// A brass-like note: a sawtooth through a low-pass that opens from 2× to 6× its pitch
    /// over 80 ms, with an optional 5.5 Hz vibrato of `vibrato` × its pitch.
    fn brass(&mut self, freq: f32, t: f32, d: f32, g: f32, vibrato: f32) {
        let cut = move |s: f32| freq * (2.0 + 4.0 * (s / 0.08).min(1.0));
        self.osc(
            Wave::Saw,
            t,
            g,
            0.04,
            d,
            move |s| freq * (1.0 + vibrato * (s * 5.5 * std::f32::consts::TAU).sin()),
            Some(&cut),
        );
    }

    /// White noise through a filter whose frequency at `s` seconds is `freq(s)`.
    fn hiss(&mut self, t: f32, g: f32, d: f32, shape: Shape, q: f32, freq: impl Fn(f32) -> f32) {
        let sr = self.sr;
        let ty = match shape {
            Shape::Lowpass => FilterType::Lowpass,
            Shape::Highpass => FilterType::Highpass,
            Shape::Bandpass => FilterType::Bandpass,
        };
        let mut svf = Svf::new(&band(ty, freq(0.0), q, sr), sr.into());
        for i in self.span(t, d) {
            let s = i as f32 / sr - t;
            if i % 32 == 0 {
                svf.set(&band(ty, freq(s), q, sr), sr.into());
            }
            let x = svf.tick(self.next_noise());
            self.out[i] += x * Self::env(s, g, 0.003, d);
        }
    }

    /// Xorshift32 white noise in [-1, 1) (a fixed seed, so renders repeat).
    fn next_noise(&mut self) -> f32 {
        let mut s = self.noise;
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        self.noise = s;
        (s as f32 / 4_294_967_296.0) * 2.0 - 1.0
    }

    /// Normalised to [`PEAK`], faded over its last 5 ms, trailing silence past 10 ms cut.
    fn finish(mut self) -> Vec<f32> {
        let peak = self.out.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if peak > 0.0 && peak.is_finite() {
            let k = PEAK / peak;
            self.out.iter_mut().for_each(|x| *x *= k);
        }
        let quiet = 0.0001 * PEAK;
        let keep = self
            .out
            .iter()
            .rposition(|x| x.abs() > quiet)
            .map_or(0, |i| i + 1 + (0.01 * self.sr) as usize)
            .min(self.out.len());
        self.out.truncate(keep);
        let fade = ((0.005 * self.sr) as usize).min(self.out.len());
        let n = self.out.len();
        for (j, x) in self.out[n - fade..].iter_mut().enumerate() {
            *x *= (fade - j - 1) as f32 / fade as f32;
        }
        self.out
    }
}

/// A filter band at a frequency kept inside (20 Hz, 0.45 × the rate).
fn band(filter: FilterType, freq: f32, q: f32, sr: f32) -> BandConfig {
    BandConfig {
        filter,
        freq: f64::from(freq.clamp(20.0, 0.45 * sr)),
        gain_db: 0.0,
        q: f64::from(q),
    }
}

/// The PolyBLEP correction of a naive sawtooth at `phase` (0–1) advancing `dt` per sample.
fn poly_blep(phase: f32, dt: f32) -> f32 {
    if phase < dt {
        let t = phase / dt;
        t + t - t * t - 1.0
    } else if phase > 1.0 - dt {
        let t = (phase - 1.0) / dt;
        t * t + t + t + 1.0
    } else {
        0.0
    }
}

/// Renders sound `name` (one of [`NAMES`]) at `sample_rate` Hz, mono; `None` for any other
/// name or a rate outside 8–192 kHz.
pub fn render(name: &str, sample_rate: u32) -> Option<Vec<f32>> {
    if !(8_000..=192_000).contains(&sample_rate) {
        return None;
    }
    let sr = sample_rate;
    let mix = match name {
        "applause" => {
            let mut m = Mix::new(2.1, sr);
            let mut seed: u32 = 12_345;
            for i in 0..90 {
                // A fixed scatter of claps over 2 s.
                seed = (seed * 9_301 + 49_297) % 233_280;
                let x = seed as f32 / 233_280.0;
                let g = 0.25 * (1.0 - i as f32 / 120.0);
                m.hiss(x * 1.9, g, 0.05, Shape::Bandpass, 1.5, |_| {
                    1_200.0 + 1_500.0 * x
                });
            }
            m
        }
        "bell" => {
            let mut m = Mix::new(1.65, sr);
            for (k, g) in [(1.0, 0.3), (2.76, 0.12), (5.4, 0.06), (8.93, 0.03)] {
                m.tone(Wave::Sine, 880.0 * k, 0.0, g, 0.005, 1.6 / f32::sqrt(k));
            }
            m
        }
        "crickets" => {
            let mut m = Mix::new(1.65, sr);
            for c in 0..6 {
                for p in 0..3 {
                    let t = c as f32 * 0.25 + p as f32 * 0.04;
                    m.tone(Wave::Sine, 4_500.0, t, 0.08, 0.005, 0.03);
                }
            }
            m
        }
        "drumroll" => {
            let mut m = Mix::new(2.3, sr);
            for i in 0..36 {
                let g = 0.06 + 0.2 * (i as f32 / 36.0);
                m.hiss(i as f32 * 0.04, g, 0.05, Shape::Lowpass, 0.7, |_| 900.0);
            }
            m.tone(Wave::Sine, 60.0, 1.45, 0.5, 0.002, 0.5);
            m.hiss(1.45, 0.3, 0.8, Shape::Highpass, 0.5, |_| 5_000.0);
            m
        }
        "gong" => {
            let mut m = Mix::new(2.65, sr);
            for (k, g) in [
                (1.0, 0.3),
                (1.48, 0.2),
                (2.03, 0.12),
                (2.9, 0.08),
                (4.2, 0.05),
            ] {
                m.tone(Wave::Sine, 98.0 * k, 0.0, g, 0.02, 2.6);
            }
            m
        }
        "horn" => {
            let mut m = Mix::new(1.05, sr);
            m.brass(233.0, 0.0, 1.0, 0.2, 0.01);
            m.brass(349.0, 0.0, 1.0, 0.12, 0.01);
            m
        }
        "rimshot" => {
            let mut m = Mix::new(1.45, sr);
            for (f, at) in [(180.0f32, 0.0f32), (130.0, 0.22)] {
                // A drum: a sine falling from 1.6× its pitch over 80 ms.
                let fall = move |s: f32| f * 1.6f32.powf(1.0 - (s / 0.08).min(1.0));
                m.osc(Wave::Sine, at, 0.5, 0.002, 0.25, fall, None);
            }
            m.hiss(0.5, 0.35, 0.9, Shape::Highpass, 0.5, |_| 6_000.0);
            m
        }
        "tada" => {
            let mut m = Mix::new(1.45, sr);
            for f in [523.0, 659.0, 784.0] {
                m.brass(f, 0.0, 0.16, 0.12, 0.0);
            }
            for f in [523.0, 659.0, 784.0, 1_047.0] {
                m.brass(f, 0.2, 1.2, 0.1, 0.006);
            }
            m
        }
        "trombone" => {
            let mut m = Mix::new(2.5, sr);
            for (f, at) in [(311.0, 0.0), (294.0, 0.45), (277.0, 0.9)] {
                m.brass(f, at, 0.4, 0.2, 0.0);
            }
            m.brass(262.0, 1.35, 1.1, 0.2, 0.025);
            m
        }
        "whoosh" => {
            let mut m = Mix::new(0.95, sr);
            // Up from 300 Hz to 4 kHz over 0.45 s, then down to 500 Hz, exponentially.
            let sweep = |s: f32| {
                if s < 0.45 {
                    300.0 * (4_000.0f32 / 300.0).powf(s / 0.45)
                } else {
                    4_000.0 * (500.0f32 / 4_000.0).powf(((s - 0.45) / 0.45).min(1.0))
                }
            };
            m.hiss(0.0, 0.5, 0.9, Shape::Bandpass, 2.0, sweep);
            m
        }
        _ => return None,
    };
    Some(mix.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn every_sound_is_audible_bounded_and_ends_in_silence() {
        for rate in [44_100, 48_000] {
            for name in NAMES {
                let s = render(name, rate).expect(name);
                let secs = s.len() as f32 / rate as f32;
                assert!(secs > 0.3 && secs < MAX_SECONDS, "{name}: {secs} s");
                assert!(s.iter().all(|x| x.is_finite()), "{name}: not finite");
                let peak = s.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                assert!((peak - PEAK).abs() < 1e-3, "{name} at {rate}: peak {peak}");
                // Audible: its loudest 50 ms is above −30 dBFS.
                let loudest = s.chunks(rate as usize / 20).map(rms).fold(0.0f32, f32::max);
                assert!(loudest > 0.03, "{name}: loudest 50 ms at {loudest} RMS");
                // It ends: the last sample is silent and its last 5 ms fade out.
                assert_eq!(s[s.len() - 1], 0.0, "{name}: last sample");
                let tail = &s[s.len() - rate as usize / 200..];
                assert!(rms(tail) < 0.01, "{name}: tail RMS {}", rms(tail));
            }
        }
    }

    #[test]
    fn renders_repeat_and_differ_between_sounds() {
        let a = render("applause", 48_000).unwrap();
        assert_eq!(a, render("applause", 48_000).unwrap());
        let mut seen: Vec<Vec<f32>> = Vec::new();
        for name in NAMES {
            let s = render(name, 48_000).unwrap();
            assert!(!seen.contains(&s), "{name} repeats another sound");
            seen.push(s);
        }
    }

    #[test]
    fn the_pitched_sounds_are_at_their_pitch() {
        // The gong's fundamental is 98 Hz: its zero crossings over the first second say so
        // within a few per cent (the partials above it cross more often, so count the
        // low-passed signal's).
        let s = render("gong", 48_000).unwrap();
        let mut lp = Svf::new(&band(FilterType::Lowpass, 120.0, 0.707, 48_000.0), 48_000.0);
        let low: Vec<f32> = s[..48_000].iter().map(|x| lp.tick(*x)).collect();
        let crossings = low.windows(2).filter(|w| w[0] <= 0.0 && w[1] > 0.0).count();
        assert!((94..=102).contains(&crossings), "{crossings} Hz");
    }

    #[test]
    fn unknown_names_and_rates_render_nothing() {
        assert!(render("kazoo", 48_000).is_none());
        assert!(render("", 48_000).is_none());
        assert!(render("Gong", 48_000).is_none());
        assert!(render("gong", 1_000).is_none());
        assert!(render("gong", 1_000_000).is_none());
    }
}
