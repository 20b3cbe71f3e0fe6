//! One running show, without any transport: the consensus engine's runtime
//! ([`ShowRuntime`]), its ticker and publish schedule, state rendering ([`render`]), the
//! tick clock ([`ticktimes`]), the hub-wide counters ([`stats`], [`metrics`]), and the
//! [`Tick`] value that every consumer of a show's ticks implements [`TickSink`] for.
//!
//! Must never: know about sockets, WebSocket framing or HTTP (the live crate frames the
//! bytes; the sound crate plays the values); block the tick on storage or on a consumer.

pub mod error;
pub mod metrics;
pub mod render;
pub mod runtime;
pub mod stats;
pub mod tick;
pub mod ticktimes;

pub use error::ShowError;
pub use runtime::{
    new_token, status_str, unix_ms, Actor, Cue, OverrideRequest, ShowClock, ShowRuntime, SlotLease,
    TickScratch,
};
pub use stats::HubStats;
pub use tick::{Publish, Tick, TickSink};
pub use ticktimes::{now_ms, TickTimes};
