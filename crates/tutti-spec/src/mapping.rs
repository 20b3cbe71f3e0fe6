//! Mappings from a parameter's value to a synth control: the same definitions drive the
//! embedded engine's voices and SuperCollider's synth nodes.
//!
//! Must never: allocate in [`Mapping::apply`] (it runs every tick for every mapping).

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// The shape of a mapping from the normalised parameter value `n ∈ 0..=1` to the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Curve {
    /// `min + n·(max − min)`.
    #[default]
    Linear,
    /// `min·(max/min)^n`; `min` and `max` non-zero with the same sign.
    Exp,
    /// `min`/`max` in dB; the output is the linear amplitude `10^(dB/20)`.
    Db,
    /// The step nearest to `n·(len − 1)`: one output per choice for votes.
    Steps,
}

/// One parameter → control mapping, e.g. intensity → `drone.amp` 0.01–0.8 exponential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// `voice.control`, e.g. `drone.cutoff`; `master.<control>` addresses the master chain.
    pub target: String,
    /// Output at the bottom of the range (not used by `steps`).
    #[serde(default)]
    pub min: Option<f64>,
    /// Output at the top of the range (not used by `steps`).
    #[serde(default)]
    pub max: Option<f64>,
    /// Curve (default linear).
    #[serde(default)]
    pub curve: Curve,
    /// Outputs for `steps`.
    #[serde(default)]
    pub steps: Option<Vec<f64>>,
}

/// A parsed `voice.control` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingTarget<'a> {
    /// The voice (synth) name, or `master`.
    pub voice: &'a str,
    /// The control name on that voice.
    pub control: &'a str,
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 32
}

impl Mapping {
    /// The target split into voice and control.
    pub fn target(&self) -> MappingTarget<'_> {
        let (voice, control) = self.target.split_once('.').unwrap_or(("", &self.target));
        MappingTarget { voice, control }
    }

    /// Check the mapping; `field` is the path used in error messages.
    pub fn validate(&self, field: &str) -> Result<(), SpecError> {
        let t = self.target();
        if !is_ident(t.voice) || !is_ident(t.control) {
            return Err(SpecError::invalid(
                format!("{field}.target"),
                format!(
                    "'{}' is not of the form voice.control (lower-case names)",
                    self.target
                ),
            ));
        }
        match self.curve {
            Curve::Steps => {
                let steps = self.steps.as_ref().ok_or_else(|| {
                    SpecError::invalid(format!("{field}.steps"), "curve 'steps' needs a list")
                })?;
                if steps.is_empty() || steps.len() > 64 {
                    return Err(SpecError::invalid(
                        format!("{field}.steps"),
                        "needs 1 to 64 values",
                    ));
                }
                if let Some(i) = steps.iter().position(|v| !v.is_finite()) {
                    return Err(SpecError::invalid(
                        format!("{field}.steps[{i}]"),
                        "must be a finite number",
                    ));
                }
            }
            curve => {
                let (min, max) = match (self.min, self.max) {
                    (Some(a), Some(b)) => (a, b),
                    _ => {
                        return Err(SpecError::invalid(
                            format!("{field}.min"),
                            "min and max are required for this curve",
                        ))
                    }
                };
                if !min.is_finite() || !max.is_finite() {
                    return Err(SpecError::invalid(
                        format!("{field}.min"),
                        "min and max must be finite",
                    ));
                }
                if curve == Curve::Exp && (min == 0.0 || max == 0.0 || (min < 0.0) != (max < 0.0)) {
                    return Err(SpecError::invalid(
                        format!("{field}.curve"),
                        format!("exp needs min and max non-zero with the same sign (got {min} and {max})"),
                    ));
                }
                if curve == Curve::Db && (min.abs() > 120.0 || max.abs() > 120.0) {
                    return Err(SpecError::invalid(
                        format!("{field}.min"),
                        "db range must lie within ±120 dB",
                    ));
                }
                if self.steps.is_some() {
                    return Err(SpecError::invalid(
                        format!("{field}.steps"),
                        "only allowed with curve = \"steps\"",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Map a normalised value `n ∈ 0..=1` (clamped). For votes, `n` is the choice index
    /// divided by `choices − 1`, so `steps` picks the step of that choice.
    pub fn apply(&self, n: f64) -> f64 {
        let n = if n.is_finite() {
            n.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let min = self.min.unwrap_or(0.0);
        let max = self.max.unwrap_or(1.0);
        match self.curve {
            Curve::Linear => min + n * (max - min),
            Curve::Exp => min * (max / min).powf(n),
            Curve::Db => 10f64.powf((min + n * (max - min)) / 20.0),
            Curve::Steps => match self.steps.as_deref() {
                Some(steps) if !steps.is_empty() => {
                    let last = steps.len() - 1;
                    let i = ((n * last as f64).round() as usize).min(last);
                    steps[i]
                }
                _ => 0.0,
            },
        }
    }
}
