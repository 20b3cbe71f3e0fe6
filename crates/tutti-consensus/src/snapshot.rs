//! The engine's output at one tick.
//!
//! A [`Snapshot`] is owned by the engine and rewritten in place by every tick (its vectors are
//! allocated once, at construction), so ticking never allocates. Callers read it through the
//! reference `tick` returns and serialize it once per tick.
//!
//! This module must never hold anything but plain output data.

use serde::Serialize;

use crate::overrides::ActiveOverride;

/// The state of every parameter at one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    /// Number of ticks so far (the first tick is 1).
    pub tick: u64,
    /// Engine time of this tick (seconds).
    pub time: f64,
    /// Whether the audience is bypassed (values held at their defaults, overrides still apply).
    pub bypass: bool,
    /// Participants joined (all shards, when finished from merged partials).
    pub participants: u64,
    /// One entry per parameter, indexed like `EngineConfig::params`.
    pub params: Vec<ParamOutput>,
}

/// The state of one parameter at one tick.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamOutput {
    /// The value to use: aggregate → smoothing → overrides, always within the range. A discrete
    /// value is its choice index.
    pub value: f64,
    /// The audience aggregate before smoothing and overrides (after hysteresis for a discrete
    /// parameter); `None` when nobody with a positive weight has input.
    pub raw: Option<f64>,
    /// Participants with an input on this parameter.
    pub participants: u32,
    /// `participants` / participants joined (0..=1; 0 when nobody joined).
    pub participation: f64,
    /// 0..=1. Continuous: `1 − std / (range / 2)` (1 = everyone agrees, 0 = the crowd split
    /// between both ends). Discrete: the weight share of the chosen option. 0 without inputs.
    pub agreement: f64,
    /// Weighted standard deviation in parameter units (choice indices for a discrete one).
    pub dispersion: f64,
    /// Weight per display bin over the range (continuous only; empty for a discrete
    /// parameter), normalised to sum to 1, or all 0 without inputs.
    pub histogram: Vec<f32>,
    /// Weight share per choice (discrete only; empty for a continuous parameter), normalised
    /// to sum to 1, or all 0 without inputs.
    pub choice_weights: Vec<f32>,
    /// The winning override of each active mode, in the order they apply.
    pub overrides: Vec<ActiveOverride>,
    /// Whether a freeze holds the value.
    pub frozen: bool,
    /// Whether a lock sets the value.
    pub locked: bool,
}
