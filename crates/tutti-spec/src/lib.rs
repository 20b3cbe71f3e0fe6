//! The piece specification: which parameters the audience controls, how they are
//! aggregated and smoothed, the seat zones, the tick rates, and how each parameter maps
//! to sound (OSC addresses, embedded-engine controls, SuperCollider controls).
//!
//! A spec arrives from outside (a TOML file, an API body, the built-in demo), so
//! [`PieceSpec::validate`] checks every field and names the offending one. Once
//! validated, [`PieceSpec::engine_config`] turns it into the consensus engine's plain
//! configuration and [`Mapping::apply`] maps a parameter value to a synth control.
//!
//! Must never: do I/O beyond parsing the text it is given, or know about the network,
//! the store or the audio thread.

pub mod export;
mod mapping;
pub mod text;
mod validate;

pub use export::ExportFormat;
pub use mapping::{Curve, Mapping, MappingTarget};

use serde::{Deserialize, Serialize};
use tutti_consensus as cons;

/// Errors in a piece specification. Each names the field that is wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    /// The text could not be parsed (syntax, unknown key, wrong type).
    #[error("cannot parse piece spec: {0}")]
    Parse(String),
    /// A field has an invalid value.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `params[2].max`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl SpecError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A whole piece: identity, rates, weighting, zones and parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PieceSpec {
    /// URL-safe identifier, `[a-z0-9-]{1,64}`.
    pub slug: String,
    /// Human title.
    pub title: String,
    /// Consensus tick rate (10–60 Hz). Feeds audio and OSC.
    #[serde(default = "default_tick_hz")]
    pub tick_hz: u32,
    /// Rate of state frames to phones (1–60 Hz); may adapt down under load.
    #[serde(default = "default_state_hz")]
    pub state_hz: u32,
    /// Inputs per second one client may send before being rate limited (1–100).
    #[serde(default = "default_input_rate")]
    pub input_rate: u32,
    /// Recency half-life in seconds (0 = no recency weighting: every latest input counts
    /// the same however old it is).
    #[serde(default = "default_half_life")]
    pub recency_half_life: f64,
    /// Strength of the "agreement with the current state" weight (0 = off, ≤ 10).
    #[serde(default)]
    pub agreement: f64,
    /// Bins of the display histogram (4–64).
    #[serde(default = "default_bins")]
    pub histogram_bins: usize,
    /// Seat zones and their weights.
    #[serde(default)]
    pub zones: Vec<ZoneSpec>,
    /// The parameters the audience controls (1–32).
    pub params: Vec<ParamSpec>,
    /// What the audience's phones play (issue 15): their voices and how far ahead cues are
    /// sent. Absent: the phones play nothing.
    #[serde(default, skip_serializing_if = "PhoneSpec::is_unset")]
    pub phone: PhoneSpec,
}

/// The phones as instruments: the voices a cue can play on every phone, and the lead time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneSpec {
    /// How far ahead of its time a cue is sent, milliseconds (20–2,000; default 150): the
    /// network's time to every phone must fit in it, or the phone drops the cue as late.
    #[serde(default = "default_lead_ms")]
    pub lead_ms: u32,
    /// The voices (at most 16), synthesised on each phone with Web Audio.
    #[serde(default)]
    pub voices: Vec<PhoneVoice>,
    /// The hall's floor, for positional cues: each phone checks in by tapping its place on
    /// a plan of it. Absent: cues cannot be positional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hall: Option<Hall>,
    /// Continuous voices (at most 4) that sound on every phone whose sound is on, their level
    /// (and optionally their pitch) following a continuous parameter's collective value,
    /// smoothed on the phone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drones: Vec<PhoneDrone>,
}

/// A continuous phone voice: a drone whose gain follows a parameter's collective value
/// (its range mapped to 0–`gain`), and whose pitch glides from `freq` to `freq_to` over the
/// same range when `freq_to` is set. Each phone smooths the changes (`smooth_ms`), so a state
/// at 5 per second becomes a continuous sound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneDrone {
    /// Name, `[a-z0-9_-]{1,32}`, distinct from the cue voices'.
    pub name: String,
    /// The continuous parameter it follows.
    pub follow: String,
    /// sine | triangle | square | sawtooth | noise (default sine).
    #[serde(default)]
    pub wave: Wave,
    /// Frequency at the bottom of the parameter's range, Hz (20–20,000; ignored by noise).
    #[serde(default = "default_voice_freq")]
    pub freq: f64,
    /// Frequency at its top, Hz (20–20,000): absent, the pitch stays at `freq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freq_to: Option<f64>,
    /// Gain at the top of the range (0–1); silent at the bottom.
    #[serde(default = "default_drone_gain")]
    pub gain: f64,
    /// How quickly a phone follows a change, milliseconds to about 95 % (10–10,000).
    #[serde(default = "default_smooth_ms")]
    pub smooth_ms: f64,
    /// A moving source: the drone sounds from a point of the hall that two continuous
    /// parameters move, so the audience (or a performer's override) carries it through the
    /// room; each phone's gain falls with its distance from the point. Needs the hall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DroneSource>,
}

/// Where a drone sounds from: `x`'s range mapped across the hall's width, `y`'s from the
/// stage (its minimum) to the back (its maximum); a phone at the point plays the drone at
/// full gain, one `radius` metres away or further not at all, linearly between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DroneSource {
    /// The continuous parameter that moves it across the hall.
    pub x: String,
    /// The continuous parameter that moves it from the stage to the back.
    pub y: String,
    /// Metres (0.5–2,000).
    pub radius: f64,
}

fn default_drone_gain() -> f64 {
    0.15
}
fn default_smooth_ms() -> f64 {
    300.0
}

/// The floor of the hall, metres: x across (0 = the left wall as the stage sees it), y from
/// the stage (0) to the back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hall {
    /// Metres across (1–1,000).
    pub width: f64,
    /// Metres from the stage to the back (1–1,000).
    pub depth: f64,
}

impl Default for PhoneSpec {
    fn default() -> Self {
        PhoneSpec {
            lead_ms: default_lead_ms(),
            voices: Vec::new(),
            hall: None,
            drones: Vec::new(),
        }
    }
}

impl PhoneSpec {
    /// Nothing set: no voices, the default lead (left out of the spec's JSON).
    pub fn is_unset(&self) -> bool {
        *self == PhoneSpec::default()
    }

    /// A voice by name.
    pub fn voice(&self, name: &str) -> Option<&PhoneVoice> {
        self.voices.iter().find(|v| v.name == name)
    }
}

fn default_lead_ms() -> u32 {
    150
}

/// One phone voice: an oscillator (or noise) with an attack–hold–release envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneVoice {
    /// Name used by cues, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// sine | triangle | square | sawtooth | noise (default sine).
    #[serde(default)]
    pub wave: Wave,
    /// Frequency, Hz (20–20,000; ignored by noise).
    #[serde(default = "default_voice_freq")]
    pub freq: f64,
    /// Peak gain (0–1).
    #[serde(default = "default_voice_gain")]
    pub gain: f64,
    /// Rise to the peak, milliseconds (0–5,000).
    #[serde(default = "default_attack_ms")]
    pub attack_ms: f64,
    /// Held at the peak, milliseconds (0–10,000).
    #[serde(default)]
    pub hold_ms: f64,
    /// Fall to silence, milliseconds (1–10,000).
    #[serde(default = "default_release_ms")]
    pub release_ms: f64,
}

/// A phone voice's waveform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wave {
    /// Sine.
    #[default]
    Sine,
    /// Triangle.
    Triangle,
    /// Square.
    Square,
    /// Sawtooth.
    Sawtooth,
    /// White noise.
    Noise,
}

fn default_voice_freq() -> f64 {
    440.0
}
fn default_voice_gain() -> f64 {
    0.3
}
fn default_attack_ms() -> f64 {
    5.0
}
fn default_release_ms() -> f64 {
    300.0
}

fn default_tick_hz() -> u32 {
    20
}
fn default_state_hz() -> u32 {
    20
}
fn default_input_rate() -> u32 {
    30
}
fn default_half_life() -> f64 {
    5.0
}
fn default_bins() -> usize {
    16
}

/// A seat zone of the venue's seat map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    /// Zone name, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// Weight of inputs from this zone (0–10).
    pub weight: f64,
}

/// Whether a parameter is a slider or a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKindName {
    /// A continuous value in `min..=max`.
    Continuous,
    /// A choice among named options.
    Discrete,
}

/// How a parameter's inputs are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregationName {
    /// Weighted mean.
    Mean,
    /// Weighted median.
    Median,
    /// Weighted mean after cutting `trim` of the weight from each tail (default).
    TrimmedMean,
    /// Most weighted choice, with hysteresis (discrete only).
    Plurality,
}

/// Smoothing in time units, independent of the tick rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoothingSpec {
    /// Exponential time constant in seconds.
    pub time_constant: Option<f64>,
    /// Maximum change per second, as a fraction of the range.
    pub slew: Option<f64>,
}

/// Where a parameter goes as OSC (default `/tutti/<name>`, value scaled to `min..max`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscSpec {
    /// OSC address.
    pub address: Option<String>,
    /// Output value for the bottom of the range (default: the parameter's min).
    pub min: Option<f64>,
    /// Output value for the top of the range (default: the parameter's max).
    pub max: Option<f64>,
}

/// One parameter the audience controls. Fields apply by `kind`; `validate` says which
/// are required and which are not allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// Name used in frames and OSC addresses, `[a-z][a-z0-9_]{0,31}`.
    pub name: String,
    /// Label shown to people (defaults to the name).
    #[serde(default)]
    pub label: Option<String>,
    /// Slider or vote.
    pub kind: ParamKindName,
    /// Continuous: bottom of the range.
    #[serde(default)]
    pub min: Option<f64>,
    /// Continuous: top of the range.
    #[serde(default)]
    pub max: Option<f64>,
    /// Continuous: default value. Discrete: not used (see `default_choice`).
    #[serde(default)]
    pub default: Option<f64>,
    /// Continuous: slider step.
    #[serde(default)]
    pub step: Option<f64>,
    /// Continuous: unit shown next to the value.
    #[serde(default)]
    pub unit: Option<String>,
    /// Discrete: the choices (2–16 names).
    #[serde(default)]
    pub choices: Option<Vec<String>>,
    /// Discrete: the default choice (defaults to the first).
    #[serde(default)]
    pub default_choice: Option<String>,
    /// Discrete: share a challenger must lead by to win (0–0.5, default 0.1).
    #[serde(default)]
    pub hysteresis: Option<f64>,
    /// Aggregation (default trimmed mean for continuous, plurality for discrete).
    #[serde(default)]
    pub aggregation: Option<AggregationName>,
    /// Trimmed mean: fraction of weight cut from each tail (0–0.45, default 0.2).
    #[serde(default)]
    pub trim: Option<f64>,
    /// Smoothing in time.
    #[serde(default)]
    pub smoothing: SmoothingSpec,
    /// OSC output for this parameter.
    #[serde(default)]
    pub osc: Option<OscSpec>,
    /// Mappings to synth controls (embedded engine and SuperCollider).
    #[serde(default)]
    pub map: Vec<Mapping>,
}

impl ParamSpec {
    /// The label to show.
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// `(min, max)` of the parameter's value: the range, or `0..choices-1` for votes.
    pub fn range(&self) -> (f64, f64) {
        match self.kind {
            ParamKindName::Continuous => (self.min.unwrap_or(0.0), self.max.unwrap_or(1.0)),
            ParamKindName::Discrete => (
                0.0,
                self.choices
                    .as_ref()
                    .map_or(0.0, |c| c.len().saturating_sub(1) as f64),
            ),
        }
    }

    /// Normalise a value of this parameter to `0..=1` (the choice index for votes is
    /// normalised over the choices).
    pub fn normalise(&self, value: f64) -> f64 {
        let (lo, hi) = self.range();
        if hi > lo {
            ((value - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Index of a choice by name (discrete parameters).
    pub fn choice_index(&self, name: &str) -> Option<u32> {
        self.choices
            .as_ref()?
            .iter()
            .position(|c| c == name)
            .map(|i| i as u32)
    }

    /// The OSC address and output range for this parameter.
    pub fn osc_target(&self) -> (String, f64, f64) {
        let (lo, hi) = self.range();
        match &self.osc {
            Some(o) => (
                o.address
                    .clone()
                    .unwrap_or_else(|| format!("/tutti/{}", self.name)),
                o.min.unwrap_or(lo),
                o.max.unwrap_or(hi),
            ),
            None => (format!("/tutti/{}", self.name), lo, hi),
        }
    }

    /// Scale a value to its OSC output range.
    pub fn osc_value(&self, value: f64) -> f64 {
        let (_, lo, hi) = self.osc_target();
        lo + self.normalise(value) * (hi - lo)
    }
}

impl PieceSpec {
    /// Parse a spec from TOML and validate it.
    pub fn from_toml(text: &str) -> Result<PieceSpec, SpecError> {
        let spec: PieceSpec = toml::from_str(text).map_err(|e| SpecError::Parse(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parse a spec from JSON and validate it.
    pub fn from_json(text: &str) -> Result<PieceSpec, SpecError> {
        let spec: PieceSpec =
            serde_json::from_str(text).map_err(|e| SpecError::Parse(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The built-in demo piece.
    pub fn demo() -> PieceSpec {
        PieceSpec::from_toml(DEMO_TOML).expect("the built-in demo piece is valid")
    }

    /// Canonical JSON text of the spec (what the store keeps).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a spec always serialises")
    }

    /// Index of a parameter by name.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// Index of a zone by name.
    pub fn zone_index(&self, name: &str) -> Option<usize> {
        self.zones.iter().position(|z| z.name == name)
    }

    /// The consensus engine's configuration for this (validated) spec.
    pub fn engine_config(&self) -> cons::EngineConfig {
        let params = self
            .params
            .iter()
            .map(|p| {
                let kind = match p.kind {
                    ParamKindName::Continuous => cons::ParamKind::Continuous {
                        min: p.min.unwrap_or(0.0),
                        max: p.max.unwrap_or(1.0),
                        default: p.default.unwrap_or(p.min.unwrap_or(0.0)),
                        step: p.step,
                    },
                    ParamKindName::Discrete => cons::ParamKind::Discrete {
                        choices: p.choices.as_ref().map_or(0, |c| c.len() as u32),
                        default: p
                            .default_choice
                            .as_deref()
                            .and_then(|d| p.choice_index(d))
                            .unwrap_or(0),
                        hysteresis: p.hysteresis.unwrap_or(0.1),
                    },
                };
                let aggregation = match (p.kind, p.aggregation) {
                    (ParamKindName::Discrete, _) => cons::Aggregation::Plurality,
                    (_, Some(AggregationName::Mean)) => cons::Aggregation::Mean,
                    (_, Some(AggregationName::Median)) => cons::Aggregation::Median,
                    _ => cons::Aggregation::TrimmedMean {
                        trim: p.trim.unwrap_or(0.2),
                    },
                };
                cons::ParamConfig {
                    kind,
                    aggregation,
                    smoothing: cons::Smoothing {
                        time_constant: p.smoothing.time_constant,
                        slew_per_second: p.smoothing.slew,
                    },
                }
            })
            .collect();
        cons::EngineConfig {
            params,
            zone_weights: self.zones.iter().map(|z| z.weight).collect(),
            recency_half_life: (self.recency_half_life > 0.0).then_some(self.recency_half_life),
            agreement: self.agreement,
            histogram_bins: self.histogram_bins,
        }
    }
}

/// The demo piece's TOML source (also shipped as `pieces/demo.toml`).
pub const DEMO_TOML: &str = include_str!("../../../pieces/demo.toml");

#[cfg(test)]
mod tests;
