//! Tutti's own short sounds (chat's `/play <sound>`, issue 12) through a show's sound: a
//! [`SoundName`] checked at the edge, the OSC message that tells the show's OSC targets
//! (`/tutti/sound s:NAME`), and the rendered clips the embedded engine plays ([`Clips`],
//! each rendered by `tutti_dsp::sounds` once, on first use, off the audio thread).
//!
//! This crate knows nothing of chat: the composition root decides when a sound plays
//! ([`crate::Outputs::play_sound`]).
//!
//! Must never: render or allocate on the audio thread (a clip reaches it through the engine's
//! lock-free command queue), or accept a name that is not one of Tutti's sounds.

use std::collections::HashMap;
use std::sync::Mutex;

use tutti_audio::tutti_dsp::sounds;
use tutti_audio::Clip;

/// The OSC address a sound is announced on.
pub const SOUND_ADDRESS: &str = "/tutti/sound";

/// One of Tutti's own sounds, by name (`tutti_dsp::sounds::NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SoundName(&'static str);

/// A name that is not one of Tutti's sounds (code `unknown_sound`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown_sound: {0:?} is not one of Tutti's sounds ({list})", list = sounds::NAMES.join(", "))]
pub struct UnknownSound(pub String);

impl UnknownSound {
    /// The stable code.
    pub const CODE: &'static str = "unknown_sound";
}

impl SoundName {
    /// The sound of that exact (lowercase) name.
    pub fn parse(name: &str) -> Result<SoundName, UnknownSound> {
        sounds::NAMES
            .iter()
            .find(|n| **n == name)
            .map(|n| SoundName(n))
            .ok_or_else(|| UnknownSound(name.chars().take(32).collect()))
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Its place in the list (0–9): the scsynth buffer slot it is loaded into.
    pub fn slot(self) -> u32 {
        sounds::NAMES.iter().position(|n| *n == self.0).unwrap_or(0) as u32
    }
}

impl std::fmt::Display for SoundName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Appends an OSC string (its bytes, a NUL, padded with NULs to a multiple of 4).
fn osc_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// The OSC message `/tutti/sound ,s NAME` (not a bundle: it is meant now).
pub fn osc_message(name: SoundName) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    osc_string(&mut out, SOUND_ADDRESS);
    osc_string(&mut out, ",s");
    osc_string(&mut out, name.as_str());
    out
}

/// A sound rendered mono at `rate` (empty for a rate out of 8–192 kHz).
pub fn render_mono(name: SoundName, rate: u32) -> Vec<f32> {
    sounds::render(name.as_str(), rate).unwrap_or_default()
}

/// The sounds rendered for one engine's sample rate, each once, on first use.
pub struct Clips {
    rate: u32,
    done: Mutex<HashMap<SoundName, Clip>>,
}

impl Clips {
    /// None rendered yet, for an engine at `rate` Hz.
    pub fn new(rate: u32) -> Clips {
        Clips {
            rate,
            done: Mutex::new(HashMap::new()),
        }
    }

    /// The clip of a sound (stereo, the engine's rate), rendered now if it was not before
    /// (a few milliseconds; never on the audio thread).
    pub fn get(&self, name: SoundName) -> Clip {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.entry(name)
            .or_insert_with(|| {
                let mono = render_mono(name, self.rate);
                Clip {
                    right: mono.clone(),
                    left: mono,
                    sample_rate: self.rate,
                    source_rate: self.rate,
                    source_channels: 1,
                }
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_announced_as_osc_strings() {
        assert_eq!(SoundName::parse("gong").unwrap().as_str(), "gong");
        let e = SoundName::parse("kazoo").unwrap_err();
        assert!(e.to_string().starts_with("unknown_sound: \"kazoo\""), "{e}");
        assert!(SoundName::parse("Gong").is_err());
        assert!(SoundName::parse("").is_err());

        let m = osc_message(SoundName::parse("gong").unwrap());
        assert_eq!(m, b"/tutti/sound\0\0\0\0,s\0\0gong\0\0\0\0".to_vec());
        let m = osc_message(SoundName::parse("tada").unwrap());
        assert_eq!(m.len() % 4, 0);
    }

    #[test]
    fn a_clip_is_rendered_once_at_the_engines_rate() {
        let clips = Clips::new(44_100);
        let gong = SoundName::parse("gong").unwrap();
        let a = clips.get(gong);
        assert_eq!(a.sample_rate, 44_100);
        assert_eq!(a.left, a.right);
        assert!(a.frames() > 44_100 && a.frames() < 3 * 44_100);
        assert_eq!(clips.get(gong).left, a.left);
        assert_eq!(clips.done.lock().unwrap().len(), 1);
    }
}
