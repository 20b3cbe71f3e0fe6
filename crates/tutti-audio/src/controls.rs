//! The engine's controls: the fixed table of `voice.control` names (the same names the
//! SuperCollider SynthDefs use), their ranges, defaults and smoothing times, and the
//! lock-free [`ControlBank`] through which other threads set them.
//!
//! # How a value reaches the audio thread
//! Each control has one `AtomicU32` holding the bits of its latest `f32` value, and the bank
//! has one `AtomicU64` "dirty" mask (one bit per control). [`ControlBank::store`] writes the
//! value, then sets the bit (release). At the start of every block the audio thread swaps
//! the mask to zero (acquire) and reads the value of every set bit. So a setter never
//! blocks and never fails for lack of room, and when many values arrive between two blocks
//! the newest value per control wins (the intermediate ones are simply overwritten).
//!
//! Must never: allocate, lock or block in [`ControlBank::drain`] (audio thread).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::AudioError;

/// Index of a control in [`CONTROLS`], resolved once off the audio thread with
/// [`control_id`] (or `EngineHandle::control_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControlId(u8);

impl ControlId {
    /// Position in [`CONTROLS`].
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The control's description.
    pub fn spec(self) -> &'static ControlSpec {
        &CONTROLS[self.index()]
    }

    /// The control's `voice.control` name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

/// Static description of one control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControlSpec {
    /// `voice.control`, e.g. `drone.cutoff`.
    pub name: &'static str,
    /// Smallest accepted value (values are clamped into `min..=max`).
    pub min: f32,
    /// Largest accepted value.
    pub max: f32,
    /// Value when the engine starts.
    pub default: f32,
    /// Length of the linear ramp that smooths a change, in ms; 0 = discrete (applied at
    /// the voice's next musical boundary, e.g. the rhythm voice's next step).
    pub ramp_ms: f32,
    /// Unit shown to people.
    pub unit: &'static str,
}

impl ControlSpec {
    /// Whether the control takes whole numbers only (e.g. `rhythm.pattern`).
    pub fn is_discrete(&self) -> bool {
        self.ramp_ms == 0.0
    }

    /// Clamps (and for discrete controls rounds) a finite value into range.
    pub fn clamp(&self, v: f32) -> f32 {
        let v = v.clamp(self.min, self.max);
        if self.is_discrete() {
            v.round()
        } else {
            v
        }
    }

    /// Ramp length in samples at `sample_rate` (at least 1).
    pub fn ramp_samples(&self, sample_rate: u32) -> u32 {
        ((self.ramp_ms as f64 * 1e-3 * sample_rate as f64).round() as u32).max(1)
    }
}

const fn c(
    name: &'static str,
    min: f32,
    max: f32,
    default: f32,
    ramp_ms: f32,
    unit: &'static str,
) -> ControlSpec {
    ControlSpec {
        name,
        min,
        max,
        default,
        ramp_ms,
        unit,
    }
}

/// Every control of the embedded engine. Indices are stable within a build.
pub const CONTROLS: &[ControlSpec] = &[
    c("drone.freq", 20.0, 2000.0, 110.0, 50.0, "Hz"),
    c("drone.amp", 0.0, 1.0, 0.2, 30.0, ""),
    c("drone.cutoff", 20.0, 20000.0, 1200.0, 40.0, "Hz"),
    c("drone.detune", 0.0, 0.02, 0.005, 50.0, ""),
    c("granular.density", 0.1, 200.0, 12.0, 50.0, "grains/s"),
    c("granular.pitch", 0.125, 8.0, 1.0, 50.0, "ratio"),
    c("granular.amp", 0.0, 1.0, 0.1, 30.0, ""),
    c("granular.spread", 0.0, 1.0, 0.5, 50.0, ""),
    c("rhythm.tempo", 20.0, 300.0, 100.0, 100.0, "bpm"),
    c("rhythm.amp", 0.0, 1.0, 0.2, 30.0, ""),
    c("rhythm.tone", 0.0, 1.0, 0.5, 30.0, ""),
    c("rhythm.pattern", 0.0, 2.0, 0.0, 0.0, "calm|pulse|storm"),
    c("player.amp", 0.0, 1.0, 0.8, 30.0, ""),
    // Ramped by the reverb stage itself over the master chain's `smoothing_ms` (20 ms default).
    c("master.reverb_mix", 0.0, 1.0, 0.2, 20.0, ""),
    c("master.gain", 0.0, 2.0, 1.0, 30.0, ""),
];

/// Number of controls.
pub const NUM_CONTROLS: usize = CONTROLS.len();

const _: () = assert!(NUM_CONTROLS <= 64, "the dirty mask is one u64");

/// Fixed ids of the controls, for code inside the crate (and anyone who prefers constants).
#[allow(missing_docs)]
pub mod ids {
    use super::ControlId;
    pub const DRONE_FREQ: ControlId = ControlId(0);
    pub const DRONE_AMP: ControlId = ControlId(1);
    pub const DRONE_CUTOFF: ControlId = ControlId(2);
    pub const DRONE_DETUNE: ControlId = ControlId(3);
    pub const GRANULAR_DENSITY: ControlId = ControlId(4);
    pub const GRANULAR_PITCH: ControlId = ControlId(5);
    pub const GRANULAR_AMP: ControlId = ControlId(6);
    pub const GRANULAR_SPREAD: ControlId = ControlId(7);
    pub const RHYTHM_TEMPO: ControlId = ControlId(8);
    pub const RHYTHM_AMP: ControlId = ControlId(9);
    pub const RHYTHM_TONE: ControlId = ControlId(10);
    pub const RHYTHM_PATTERN: ControlId = ControlId(11);
    pub const PLAYER_AMP: ControlId = ControlId(12);
    pub const MASTER_REVERB_MIX: ControlId = ControlId(13);
    pub const MASTER_GAIN: ControlId = ControlId(14);
}

/// Comma-separated list of every control name (for error messages).
pub fn valid_control_names() -> String {
    CONTROLS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves a `voice.control` name. Unknown names give an error listing the valid ones.
pub fn control_id(name: &str) -> Result<ControlId, AudioError> {
    CONTROLS
        .iter()
        .position(|c| c.name == name)
        .map(|i| ControlId(i as u8))
        .ok_or_else(|| AudioError::UnknownControl {
            name: name.to_string(),
            valid: valid_control_names(),
        })
}

/// Iterator over every control id.
pub fn all_controls() -> impl Iterator<Item = ControlId> {
    (0..NUM_CONTROLS).map(|i| ControlId(i as u8))
}

/// Latest-value-wins mailbox of every control (see the module docs).
#[derive(Debug)]
pub struct ControlBank {
    values: [AtomicU32; NUM_CONTROLS],
    dirty: AtomicU64,
}

impl Default for ControlBank {
    fn default() -> Self {
        Self::new()
    }
}

impl ControlBank {
    /// A bank holding every control's default (nothing dirty).
    pub fn new() -> Self {
        Self {
            values: std::array::from_fn(|i| AtomicU32::new(CONTROLS[i].default.to_bits())),
            dirty: AtomicU64::new(0),
        }
    }

    /// Stores a value (clamped into range; non-finite values are refused). Never blocks.
    pub fn store(&self, id: ControlId, value: f32) -> Result<f32, AudioError> {
        let spec = id.spec();
        if !value.is_finite() {
            return Err(AudioError::NonFiniteValue {
                control: spec.name,
                value,
            });
        }
        let v = spec.clamp(value);
        self.values[id.index()].store(v.to_bits(), Ordering::Relaxed);
        self.dirty.fetch_or(1u64 << id.index(), Ordering::Release);
        Ok(v)
    }

    /// The latest stored value (not the smoothed value the audio thread is playing).
    pub fn load(&self, id: ControlId) -> f32 {
        f32::from_bits(self.values[id.index()].load(Ordering::Relaxed))
    }

    /// Audio thread: calls `f(id, value)` for every control set since the last drain.
    /// Wait-free; no allocation.
    #[inline]
    pub fn drain(&self, mut f: impl FnMut(ControlId, f32)) {
        let mut mask = self.dirty.swap(0, Ordering::Acquire);
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            f(
                ControlId(i as u8),
                f32::from_bits(self.values[i].load(Ordering::Relaxed)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_table() {
        for id in all_controls() {
            assert_eq!(control_id(id.name()).unwrap(), id);
        }
        assert_eq!(ids::MASTER_GAIN.name(), "master.gain");
        assert_eq!(ids::RHYTHM_PATTERN.name(), "rhythm.pattern");
        assert_eq!(ids::GRANULAR_SPREAD.name(), "granular.spread");
        for spec in CONTROLS {
            assert!(
                spec.min <= spec.default && spec.default <= spec.max,
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = control_id("drone.volume").unwrap_err().to_string();
        assert!(err.contains("drone.volume"), "{err}");
        assert!(
            err.contains("drone.amp") && err.contains("master.reverb_mix"),
            "{err}"
        );
    }

    #[test]
    fn newest_value_wins_and_values_are_clamped() {
        let bank = ControlBank::new();
        bank.store(ids::DRONE_AMP, 0.1).unwrap();
        bank.store(ids::DRONE_AMP, 0.7).unwrap();
        assert_eq!(bank.store(ids::DRONE_FREQ, 1e9).unwrap(), 2000.0);
        assert_eq!(bank.store(ids::RHYTHM_PATTERN, 1.4).unwrap(), 1.0);
        assert!(bank.store(ids::DRONE_AMP, f32::NAN).is_err());
        let mut seen = Vec::new();
        bank.drain(|id, v| seen.push((id, v)));
        assert_eq!(
            seen,
            vec![
                (ids::DRONE_FREQ, 2000.0),
                (ids::DRONE_AMP, 0.7),
                (ids::RHYTHM_PATTERN, 1.0)
            ]
        );
        let mut again = 0;
        bank.drain(|_, _| again += 1);
        assert_eq!(again, 0);
    }
}
