//! The sources of the demo piece — `drone`, `granular`, `rhythm` — and the `player` for
//! decoded files, mixed into one stereo bus.
//!
//! Each voice owns smoothed copies of its controls and *adds* its output into the bus.
//!
//! Must never: allocate, free, lock, log or block in `set` or `render` (audio thread).

mod drone;
mod granular;
mod player;
mod rhythm;

pub use drone::Drone;
pub use granular::{GrainSource, Granular, MAX_GRAINS};
pub use player::Player;
pub use rhythm::Rhythm;

use crate::controls::ControlId;

/// All voices of the engine.
#[derive(Debug)]
pub struct Voices {
    /// The drone.
    pub drone: Drone,
    /// The granular texture.
    pub granular: Granular,
    /// The rhythm section.
    pub rhythm: Rhythm,
    /// The file player.
    pub player: Player,
}

impl Voices {
    /// Every voice at its defaults; `seed` fixes every random choice.
    pub fn new(sample_rate: u32, seed: u32) -> Self {
        Self {
            drone: Drone::new(sample_rate),
            granular: Granular::new(sample_rate, seed),
            rhythm: Rhythm::new(sample_rate, seed),
            player: Player::new(sample_rate),
        }
    }

    /// Routes a control's new target to its voice (`master.*` is ignored here).
    #[inline]
    pub fn set(&mut self, id: ControlId, v: f32) {
        self.drone.set(id, v);
        self.granular.set(id, v);
        self.rhythm.set(id, v);
        self.player.set(id, v);
    }

    /// Jumps a control (before playback).
    pub fn snap(&mut self, id: ControlId, v: f32) {
        self.drone.snap(id, v);
        self.granular.snap(id, v);
        self.rhythm.snap(id, v);
        self.player.snap(id, v);
    }

    /// The smoothed value of a voice control.
    pub fn value(&self, id: ControlId) -> Option<f32> {
        self.drone
            .value(id)
            .or_else(|| self.granular.value(id))
            .or_else(|| self.rhythm.value(id))
            .or_else(|| self.player.value(id))
    }

    /// Adds every voice into the bus.
    #[inline]
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        self.drone.render(left, right);
        self.granular.render(left, right);
        self.rhythm.render(left, right);
        self.player.render(left, right);
    }
}
