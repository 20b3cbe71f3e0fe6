//! Where a show's ticks become sound: OSC bundles to the configured targets
//! ([`outputs::OscOut`]), SuperCollider ([`outputs::ScOut`]) and Tutti's embedded audio
//! engine ([`engine::AudioOut`]), each a [`tutti_show::TickSink`]; [`Outputs`] holds a
//! show's set and tells the dashboard how the sound is. Besides ticks, a show's outputs play
//! Tutti's own short sounds when told to ([`Outputs::play_sound`], [`sounds`]).
//!
//! Must never: know about HTTP or WebSockets (the listen stream is the live crate's; it
//! reads the engine's PCM through an adapter the composition root makes), block or await
//! on the tick, or stop a show because its sound cannot start.

pub mod engine;
pub mod outputs;
pub mod sounds;

pub use engine::{AudioOut, EngineSettings};
pub use outputs::{OscOut, Outputs, ScOut, ScSettings};
pub use sounds::{SoundName, UnknownSound};

/// The sound backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoundBackend {
    /// Tutti's own audio engine.
    Engine,
    /// A real scsynth over OSC.
    Supercollider,
    /// No sound from Tutti; OSC targets only.
    None,
}

/// Why the sound outputs could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SoundError {
    /// The OSC targets could not be opened.
    #[error("osc.targets: {0}")]
    OscTargets(String),
}
