//! Errors of the consensus engine.
//!
//! One enum per kind of call ([`ConfigError`] for configurations, [`InputError`] for
//! participants and their inputs, [`OverrideError`] for performer overrides,
//! [`PartialsError`] for partial aggregates from elsewhere), gathered in the crate's single
//! [`Error`] for callers that want one type. Messages name the offending field or value.
//!
//! Nothing here may allocate on the input path: [`InputError`] is `Copy`.

/// An invalid [`crate::EngineConfig`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A field of one parameter, e.g. `params[2].max`.
    #[error("params[{index}].{field}: {message}")]
    Param {
        /// Index of the parameter in `EngineConfig::params`.
        index: usize,
        /// Field path inside the parameter (`min`, `max`, `default`, `step`, `choices`,
        /// `hysteresis`, `aggregation`, `aggregation.trim`, `smoothing.time_constant`,
        /// `smoothing.slew_per_second`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A zone weight outside `0..=max` (or not finite).
    #[error("zone_weights[{index}]: {value} must be finite and in 0..={max}")]
    ZoneWeight {
        /// Index of the zone.
        index: usize,
        /// The offending weight.
        value: f64,
        /// The largest allowed weight.
        max: f64,
    },
    /// A top-level field (`params`, `zone_weights`, `recency_half_life`, `agreement`,
    /// `histogram_bins`).
    #[error("{field}: {message}")]
    Engine {
        /// Name of the field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    /// The full path of the offending field, e.g. `params[2].smoothing.time_constant`.
    pub fn field_path(&self) -> String {
        match self {
            ConfigError::Param { index, field, .. } => format!("params[{index}].{field}"),
            ConfigError::ZoneWeight { index, .. } => format!("zone_weights[{index}]"),
            ConfigError::Engine { field, .. } => (*field).to_owned(),
        }
    }
}

/// A rejected participant operation or input. A rejected call changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum InputError {
    /// The participant never joined, has left, or its handle is stale.
    #[error("unknown participant")]
    UnknownParticipant,
    /// No parameter with this id.
    #[error("unknown parameter")]
    UnknownParam,
    /// A choice for a continuous parameter or a number for a discrete one.
    #[error("wrong value type for this parameter")]
    WrongType,
    /// NaN or ±infinity (as the value or as the time).
    #[error("value is not finite")]
    NotFinite,
    /// A continuous value outside the parameter's range.
    #[error("value out of range {min}..={max}")]
    OutOfRange {
        /// Lower end of the range.
        min: f64,
        /// Upper end of the range.
        max: f64,
    },
    /// A choice index that does not exist.
    #[error("invalid choice (the parameter has {choices} choices)")]
    InvalidChoice {
        /// Number of choices of the parameter.
        choices: u32,
    },
    /// A zone that is not in the configuration's `zone_weights`.
    #[error("unknown zone {zone} (the piece has {zones} zones)")]
    UnknownZone {
        /// The zone asked for.
        zone: u16,
        /// Number of configured zones.
        zones: usize,
    },
    /// A trust that is not finite or outside `0..=MAX_WEIGHT`.
    #[error("trust {trust} must be finite and in 0..={max}", max = crate::MAX_WEIGHT)]
    InvalidTrust {
        /// The offending trust.
        trust: f64,
    },
    /// Every slot index is in use.
    #[error("too many participants")]
    TooManyParticipants,
    /// A participant brought back by [`crate::Engine::readmit`] names a slot that is already
    /// held, or one beyond [`crate::MAX_READMIT_SLOT`].
    #[error("slot {slot} cannot be taken again (held, or beyond the largest slot readmitted)")]
    SlotUnavailable {
        /// The slot asked for.
        slot: u32,
    },
}

/// A rejected performer override. A rejected call changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum OverrideError {
    /// No parameter with this id.
    #[error("unknown parameter")]
    UnknownParam,
    /// A number in the override is NaN or infinite.
    #[error("{field} is not finite")]
    NotFinite {
        /// Which number (`lo`, `hi`, `amount`, `target`, `factor`, `value`, `set_at`,
        /// `expires_at`).
        field: &'static str,
    },
    /// A clamp whose lower bound exceeds its upper bound.
    #[error("clamp lo {lo} is greater than hi {hi}")]
    InvalidClamp {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// A blend factor outside `0..=1`.
    #[error("blend factor {factor} must be in 0..=1")]
    InvalidBlendFactor {
        /// The offending factor.
        factor: f64,
    },
    /// An expiry at or before the time the override was set.
    #[error("expires_at {expires_at} is not after set_at {set_at}")]
    ExpiresBeforeSet {
        /// When it was set.
        set_at: f64,
        /// When it would expire.
        expires_at: f64,
    },
}

/// Partial aggregates that do not fit this engine (or each other).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PartialsError {
    /// Different number of parameters, bins or a different half-life.
    #[error("partials shape mismatch: {what}: expected {expected}, found {found}")]
    Shape {
        /// What differs (`params`, `params[i].bins`, `half_life`).
        what: String,
        /// This side's value.
        expected: String,
        /// The other side's value.
        found: String,
    },
    /// A weight or sum that is negative, NaN or infinite (e.g. from a corrupt message).
    #[error("partials: {what} is {value}, expected a finite non-negative number")]
    Invalid {
        /// Which number.
        what: String,
        /// Its value.
        value: f64,
    },
}

/// Any error of this crate.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// See [`ConfigError`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// See [`InputError`].
    #[error(transparent)]
    Input(#[from] InputError),
    /// See [`OverrideError`].
    #[error(transparent)]
    Override(#[from] OverrideError),
    /// See [`PartialsError`].
    #[error(transparent)]
    Partials(#[from] PartialsError),
}
