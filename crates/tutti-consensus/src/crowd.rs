//! The crowd as it can be carried across a restart: every joined participant with its
//! handle, zone, trust and latest input per parameter, each input with its age.
//!
//! [`Engine::crowd`](crate::Engine::crowd) exports it; [`Engine::readmit`](crate::Engine::readmit)
//! brings one member back under the same handle, its inputs as old as they were (the time
//! the engine was down does not age them). Values travel in parameter units, not in the
//! engine's internal unit form, so readmission validates them like any submitted input.
//!
//! Must never: be used on the per-input path (an export walks every slot and allocates).

use serde::{Deserialize, Serialize};

use crate::{InputValue, ParticipantId, ZoneId};

/// The largest slot index [`Engine::readmit`](crate::Engine::readmit) takes (a stored crowd
/// naming a larger one is refused rather than growing every per-slot array that far).
pub const MAX_READMIT_SLOT: u32 = 1 << 22;

/// One participant's latest input on one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatestInput {
    /// The value, as it was submitted (after step rounding).
    pub value: InputValue,
    /// Seconds between the input and the export (0 when the engine has no recency).
    pub age: f64,
}

/// One joined participant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The handle it had (and gets back).
    pub id: ParticipantId,
    /// Its zone.
    pub zone: Option<ZoneId>,
    /// Its trust.
    pub trust: f64,
    /// Its latest input per parameter, indexed like the parameters (`None`: no input).
    pub inputs: Vec<Option<LatestInput>>,
}
