//! Engine configuration and the small identifier newtypes.
//!
//! A piece's parameters, zone weights and weighting options as plain data, plus
//! [`EngineConfig::validate`], which names the offending field in its error. Everything the
//! engine does later relies on a validated configuration, so validation is strict: non-finite
//! numbers, empty ranges, defaults outside the range and aggregations that do not fit the
//! parameter kind are all rejected here.
//!
//! This module must never hold runtime state; it is only the description of an engine.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Number of bins in the fine internal histogram of a continuous parameter.
///
/// Medians and trimmed means are read from it, so their resolution is `range / FINE_BINS`
/// at worst (and better in practice: values are interpolated around each bin's mean).
pub const FINE_BINS: usize = 256;

/// Largest number of choices a discrete parameter may have.
pub const MAX_CHOICES: u32 = 1024;

/// Largest zone weight or trust accepted (both must also be finite and non-negative).
pub const MAX_WEIGHT: f64 = 1e6;

/// Largest accepted `agreement` strength.
pub const MAX_AGREEMENT: f64 = 1e3;

/// Index of a parameter in [`EngineConfig::params`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParamId(pub u16);

/// Index of a zone in [`EngineConfig::zone_weights`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ZoneId(pub u16);

/// A participant's handle: a slot index plus the slot's generation.
///
/// Slots are reused after [`crate::Engine::leave`]; the generation changes on every leave, so a
/// stale handle is rejected with [`crate::InputError::UnknownParticipant`] instead of writing
/// into somebody else's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParticipantId {
    /// Slot index (dense, reused after leave).
    pub slot: u32,
    /// Generation of the slot when this handle was issued.
    pub generation: u32,
}

/// What kind of value a parameter takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ParamKind {
    /// A real value in `min..=max` (a slider).
    Continuous {
        /// Lower end of the range.
        min: f64,
        /// Upper end of the range (strictly greater than `min`).
        max: f64,
        /// Value before anyone has input, after a reset and while bypassed.
        default: f64,
        /// Inputs are snapped to `min + k * step` (outputs are not).
        #[serde(default)]
        step: Option<f64>,
    },
    /// One of `choices` options, identified by index `0..choices` (a vote).
    Discrete {
        /// Number of options (`1..=MAX_CHOICES`).
        choices: u32,
        /// Index of the default option.
        #[serde(default)]
        default: u32,
        /// Share of the total weight by which a challenger must beat the current choice to
        /// replace it (`0..1`; 0 = plain plurality).
        #[serde(default)]
        hysteresis: f64,
    },
}

impl ParamKind {
    /// The parameter's range as `(min, max)`; for a discrete parameter `(0, choices - 1)`.
    pub fn range(&self) -> (f64, f64) {
        match *self {
            ParamKind::Continuous { min, max, .. } => (min, max),
            ParamKind::Discrete { choices, .. } => (0.0, f64::from(choices.saturating_sub(1))),
        }
    }

    /// The default value (a discrete default is its choice index as `f64`).
    pub fn default_value(&self) -> f64 {
        match *self {
            ParamKind::Continuous { default, .. } => default,
            ParamKind::Discrete { default, .. } => f64::from(default),
        }
    }

    /// Whether this is a discrete parameter.
    pub fn is_discrete(&self) -> bool {
        matches!(self, ParamKind::Discrete { .. })
    }
}

/// How a parameter's inputs are combined into one raw value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregation {
    /// Weighted mean.
    Mean,
    /// Weighted median (interpolated within its histogram bin).
    Median,
    /// Weighted mean after cutting `trim` of the total weight from each tail.
    TrimmedMean {
        /// Fraction of the weight cut from EACH tail, `0..0.5` (0 = mean).
        #[serde(default = "default_trim")]
        trim: f64,
    },
    /// The choice with the most weight, with hysteresis (discrete parameters only).
    Plurality,
}

fn default_trim() -> f64 {
    0.2
}

impl Default for Aggregation {
    /// The robust default: a trimmed mean cutting 20 % of the weight from each tail.
    fn default() -> Self {
        Aggregation::TrimmedMean {
            trim: default_trim(),
        }
    }
}

/// Smoothing of the raw aggregate, defined in time so it does not depend on the tick rate.
///
/// With both set, the value follows `dy/dt = clamp((x - y) / time_constant, ±slew·range)`,
/// which is solved exactly per tick. Discrete parameters are never smoothed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smoothing {
    /// Exponential time constant τ in seconds (`y += (1 - e^(-dt/τ)) (x - y)`).
    #[serde(default)]
    pub time_constant: Option<f64>,
    /// Slew limit in units of the parameter's range per second (`|Δy| ≤ slew·range·dt`).
    #[serde(default)]
    pub slew_per_second: Option<f64>,
}

/// One parameter of a piece.
///
/// When deserialized without an `aggregation`, a discrete parameter gets
/// [`Aggregation::Plurality`] and a continuous one the default trimmed mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "ParamConfigRepr")]
pub struct ParamConfig {
    /// Continuous range or discrete choices.
    pub kind: ParamKind,
    /// How inputs are combined (discrete parameters require `Plurality`, continuous ones
    /// forbid it).
    pub aggregation: Aggregation,
    /// Time-based smoothing of the raw aggregate.
    pub smoothing: Smoothing,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamConfigRepr {
    kind: ParamKind,
    #[serde(default)]
    aggregation: Option<Aggregation>,
    #[serde(default)]
    smoothing: Smoothing,
}

impl From<ParamConfigRepr> for ParamConfig {
    fn from(r: ParamConfigRepr) -> Self {
        let aggregation = r.aggregation.unwrap_or(if r.kind.is_discrete() {
            Aggregation::Plurality
        } else {
            Aggregation::default()
        });
        ParamConfig {
            kind: r.kind,
            aggregation,
            smoothing: r.smoothing,
        }
    }
}

impl ParamConfig {
    /// A continuous parameter with the default trimmed mean and no smoothing.
    pub fn continuous(min: f64, max: f64, default: f64) -> Self {
        ParamConfig {
            kind: ParamKind::Continuous {
                min,
                max,
                default,
                step: None,
            },
            aggregation: Aggregation::default(),
            smoothing: Smoothing::default(),
        }
    }

    /// A discrete parameter (plurality, no hysteresis).
    pub fn discrete(choices: u32, default: u32) -> Self {
        ParamConfig {
            kind: ParamKind::Discrete {
                choices,
                default,
                hysteresis: 0.0,
            },
            aggregation: Aggregation::Plurality,
            smoothing: Smoothing::default(),
        }
    }
}

/// Everything the engine needs to know about a piece.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// The parameters; [`ParamId`] indexes this list.
    pub params: Vec<ParamConfig>,
    /// Weight per zone of the seat map; [`ZoneId`] indexes this list. A participant without a
    /// zone has zone weight 1.
    #[serde(default)]
    pub zone_weights: Vec<f64>,
    /// Half-life of an input's weight in seconds; `None` = inputs never fade.
    #[serde(default)]
    pub recency_half_life: Option<f64>,
    /// Strength `a` of the agreement term `w *= exp(-a·|x − current| / range)`; 0 = off.
    #[serde(default)]
    pub agreement: f64,
    /// Number of display bins in [`crate::ParamOutput::histogram`] (`1..=FINE_BINS`).
    #[serde(default = "default_histogram_bins")]
    pub histogram_bins: usize,
}

fn default_histogram_bins() -> usize {
    16
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            params: Vec::new(),
            zone_weights: Vec::new(),
            recency_half_life: None,
            agreement: 0.0,
            histogram_bins: default_histogram_bins(),
        }
    }
}

fn param_err(index: usize, field: &'static str, message: String) -> ConfigError {
    ConfigError::Param {
        index,
        field,
        message,
    }
}

fn positive_finite(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

impl ParamConfig {
    fn validate(&self, index: usize) -> Result<(), ConfigError> {
        match self.kind {
            ParamKind::Continuous {
                min,
                max,
                default,
                step,
            } => {
                if !min.is_finite() {
                    return Err(param_err(index, "min", format!("{min} is not finite")));
                }
                if !max.is_finite() || max <= min {
                    return Err(param_err(
                        index,
                        "max",
                        format!("{max} must be finite and greater than min {min}"),
                    ));
                }
                if !(max - min).is_finite() {
                    return Err(param_err(
                        index,
                        "max",
                        format!("range {min}..{max} is too wide"),
                    ));
                }
                if !default.is_finite() || default < min || default > max {
                    return Err(param_err(
                        index,
                        "default",
                        format!("{default} is outside {min}..={max}"),
                    ));
                }
                if let Some(step) = step {
                    if !positive_finite(step) || step > max - min {
                        return Err(param_err(
                            index,
                            "step",
                            format!(
                                "{step} must be positive and at most the range {}",
                                max - min
                            ),
                        ));
                    }
                }
                match self.aggregation {
                    Aggregation::Plurality => {
                        return Err(param_err(
                            index,
                            "aggregation",
                            "plurality is for discrete parameters".to_owned(),
                        ));
                    }
                    Aggregation::TrimmedMean { trim } if !(0.0..0.5).contains(&trim) => {
                        return Err(param_err(
                            index,
                            "aggregation.trim",
                            format!("{trim} must be in 0..0.5"),
                        ));
                    }
                    _ => {}
                }
            }
            ParamKind::Discrete {
                choices,
                default,
                hysteresis,
            } => {
                if choices == 0 || choices > MAX_CHOICES {
                    return Err(param_err(
                        index,
                        "choices",
                        format!("{choices} must be in 1..={MAX_CHOICES}"),
                    ));
                }
                if default >= choices {
                    return Err(param_err(
                        index,
                        "default",
                        format!("choice {default} does not exist (choices: {choices})"),
                    ));
                }
                if !(0.0..1.0).contains(&hysteresis) {
                    return Err(param_err(
                        index,
                        "hysteresis",
                        format!("{hysteresis} must be in 0..1"),
                    ));
                }
                if self.aggregation != Aggregation::Plurality {
                    return Err(param_err(
                        index,
                        "aggregation",
                        "discrete parameters aggregate by plurality".to_owned(),
                    ));
                }
            }
        }
        if let Some(tau) = self.smoothing.time_constant {
            if !positive_finite(tau) {
                return Err(param_err(
                    index,
                    "smoothing.time_constant",
                    format!("{tau} must be positive and finite"),
                ));
            }
        }
        if let Some(slew) = self.smoothing.slew_per_second {
            if !positive_finite(slew) {
                return Err(param_err(
                    index,
                    "smoothing.slew_per_second",
                    format!("{slew} must be positive and finite"),
                ));
            }
        }
        Ok(())
    }
}

impl EngineConfig {
    /// Checks the whole configuration; the error names the offending field (and index).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.params.len() > usize::from(u16::MAX) {
            return Err(ConfigError::Engine {
                field: "params",
                message: format!("{} parameters, at most {}", self.params.len(), u16::MAX),
            });
        }
        for (index, p) in self.params.iter().enumerate() {
            p.validate(index)?;
        }
        if self.zone_weights.len() > usize::from(u16::MAX) {
            return Err(ConfigError::Engine {
                field: "zone_weights",
                message: format!("{} zones, at most {}", self.zone_weights.len(), u16::MAX),
            });
        }
        for (index, &value) in self.zone_weights.iter().enumerate() {
            if !(0.0..=MAX_WEIGHT).contains(&value) {
                return Err(ConfigError::ZoneWeight {
                    index,
                    value,
                    max: MAX_WEIGHT,
                });
            }
        }
        if let Some(h) = self.recency_half_life {
            if !positive_finite(h) {
                return Err(ConfigError::Engine {
                    field: "recency_half_life",
                    message: format!("{h} must be positive and finite"),
                });
            }
        }
        if !(0.0..=MAX_AGREEMENT).contains(&self.agreement) {
            return Err(ConfigError::Engine {
                field: "agreement",
                message: format!("{} must be in 0..={MAX_AGREEMENT}", self.agreement),
            });
        }
        if self.histogram_bins == 0 || self.histogram_bins > FINE_BINS {
            return Err(ConfigError::Engine {
                field: "histogram_bins",
                message: format!("{} must be in 1..={FINE_BINS}", self.histogram_bins),
            });
        }
        Ok(())
    }
}
