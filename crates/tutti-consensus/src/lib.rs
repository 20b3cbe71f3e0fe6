//! Tutti's consensus engine (the collective aggregation layer).
//!
//! The audience moves sliders and votes; the engine turns everyone's latest input into one
//! value per parameter, once per tick. It is a pure library: **no I/O, no clock (time is the
//! argument `now`, monotonic seconds), no threads, no randomness, no allocation per input or
//! per tick**. The same calls in the same order give the same snapshots, bit for bit.
//!
//! # Model
//!
//! **Slots.** [`Engine::join`] gives a participant a slot (reused after [`Engine::leave`];
//! the [`ParticipantId`] carries a generation so stale handles are rejected). Each slot holds
//! one *latest* input per parameter: [`Engine::submit`] overwrites it. A participant who sends
//! 10,000 inputs has exactly the influence of one who sends one.
//!
//! **Weights.** An input `x` submitted at time `t` weighs, at time `now`,
//!
//! ```text
//! w = 2^(−(now − t) / half_life) × zone_weight × trust [× exp(−agreement · |x − current| / range)]
//! ```
//!
//! - recency halves every `recency_half_life` seconds (`None`: inputs never fade);
//! - `zone_weight` comes from [`EngineConfig::zone_weights`] (1 without a zone);
//! - `trust` is set at join and by [`Engine::set_trust`] (1 is normal, 0 mutes);
//! - the agreement term (only when [`EngineConfig::agreement`] `> 0`) favours inputs close
//!   to the currently published value (crowd inertia). For a discrete parameter the distance
//!   is 0 for the current choice and 1 for any other.
//!
//! **The recency trick.** `2^(−(now − t)/h) = 2^(−(now − epoch)/h) · 2^((t − epoch)/h)`: the
//! first factor is common to every input, so it cancels in every aggregate. Each input
//! stores `r = 2^((t − epoch)/h)`, and per parameter the engine keeps running sums
//! `Σw, Σw·u, Σw·u²` and a fine histogram (256 bins of `Σw`, `Σw·u`) of `w = r · zone · trust`,
//! updated in O(1) per submit (subtract the old contribution, add the new). A tick then
//! costs O(bins), independent of the number of participants; with the agreement term, whose
//! factor changes with the published value, one O(participants) pass. The epoch is moved
//! forward by whole half-lives before exponents grow large (an exact power-of-two rescale),
//! and a parameter's sums are recomputed from the inputs when a bound on their accumulated
//! rounding error passes `1e-9` of the total weight (one parameter per tick, so the cost is
//! spread; see the `store` module).
//!
//! **Aggregation** ([`Aggregation`]), in O(bins) from the histogram: weighted mean, weighted
//! median and trimmed mean (cut `trim` of the *weight* from each tail, partial bins pro rata;
//! the robust default with `trim = 0.2`), both interpolated within a bin around the bin's
//! mean; and plurality for discrete votes with hysteresis (the current choice stays until a
//! challenger's weight share beats it by `hysteresis`).
//!
//! **Smoothing** ([`Smoothing`]) is defined in time, not ticks: an exponential time constant
//! and/or a slew limit, solved exactly per tick, so 10 Hz and 60 Hz reach the same value at
//! the same time. Discrete parameters are not smoothed. Without any input a parameter
//! holds its value (the crowd left it there; a show resumed after a restart keeps its
//! state); while [bypassed](Engine::set_bypass) the target is the parameter's default.
//!
//! **Overrides** ([`Override`]) apply to the smoothed value in a fixed order, clamping into
//! the range after every stage: clamp → bias → blend → lock → freeze. Per mode one
//! override wins: highest `priority`, then latest `set_at`. Expired overrides drop at the
//! next tick. [`Engine::reset`] clears inputs and overrides; [`Engine::set_bypass`] ignores
//! the audience.
//!
//! **Partials.** The sums above are exactly what a [`Partials`] holds, so shards (cores now,
//! nodes later) each export [`Engine::partials`] at a common `now`, the partials are added
//! with [`Partials::merge`] (associative and commutative up to rounding), and
//! [`Engine::tick_from`] finishes the tick from the merged result. Per-tick cost is always
//! O(participants + bins), never O(participants²).
//!
//! **Outputs** ([`Snapshot`], rewritten in place by every tick): per parameter the value,
//! the raw aggregate, participation, agreement and dispersion, a display histogram or choice
//! weights, and the active overrides. Values are always within range; a discrete value is
//! its choice index.
//!
//! ```
//! use tutti_consensus::{Engine, EngineConfig, InputValue, ParamConfig, ParamId};
//!
//! let cfg = EngineConfig {
//!     params: vec![ParamConfig::continuous(0.0, 1.0, 0.5)],
//!     recency_half_life: Some(10.0),
//!     ..EngineConfig::default()
//! };
//! let mut engine = Engine::new(cfg)?;
//! let alice = engine.join(None, 1.0)?;
//! engine.submit(alice, ParamId(0), InputValue::Continuous(0.8), 0.0)?;
//! let snapshot = engine.tick(0.05);
//! assert!((snapshot.params[0].value - 0.8).abs() < 1e-9);
//! # Ok::<(), tutti_consensus::Error>(())
//! ```
//!
//! # What this crate must never do
//!
//! Read a clock, do I/O, log, spawn threads, use randomness, allocate per input or per tick
//! (participant slots grow at join; everything else is preallocated), or cost more than
//! O(participants + bins) per tick.

mod aggregate;
mod config;
mod crowd;
mod engine;
mod error;
mod overrides;
mod partials;
mod smoothing;
mod snapshot;
mod store;

pub use config::{
    Aggregation, EngineConfig, ParamConfig, ParamId, ParamKind, ParticipantId, Smoothing, ZoneId,
    FINE_BINS, MAX_AGREEMENT, MAX_CHOICES, MAX_WEIGHT,
};
pub use crowd::{LatestInput, Member, MAX_READMIT_SLOT};
pub use engine::{Engine, InputValue};
pub use error::{ConfigError, Error, InputError, OverrideError, PartialsError};
pub use overrides::{ActiveOverride, Override, OverrideKind, OverrideMode};
pub use partials::{ParamPartial, Partials, SparseParam, SparsePartials};
pub use snapshot::{ParamOutput, Snapshot};
