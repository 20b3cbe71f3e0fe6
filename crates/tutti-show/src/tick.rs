//! The one seam between a show and everything that consumes it: each tick the ticker hands
//! a [`Tick`] to every [`TickSink`] (the audience fan-out, the performers' detailed feed,
//! OSC, SuperCollider, the embedded engine), after the show's lock is released.
//!
//! Must never: hold references to the show's locked state (a `Tick` borrows buffers the
//! ticker owns), or let a sink block the tick (sinks hand data on and return).

use tutti_report::Health;
use tutti_spec::PieceSpec;

/// One rendered state text published this tick.
#[derive(Debug, Clone, Copy)]
pub struct Publish<'a> {
    /// The `state` frame's JSON (see `docs/protocol.md`), not yet framed for any transport.
    pub json: &'a str,
    /// Audience publish number (1, 2, …); 0 for the detailed form.
    pub seq: u64,
}

/// What one tick produced.
#[derive(Debug, Clone, Copy)]
pub struct Tick<'a> {
    /// The show's join code.
    pub show: &'a str,
    /// The tick's number (acks promise it); the last computed tick when the show is not live.
    pub number: u64,
    /// Seconds on the show's clock.
    pub time: f64,
    /// Wall-clock Unix milliseconds.
    pub unix_ms: i64,
    /// The piece the show runs.
    pub spec: &'a PieceSpec,
    /// The collective value of each parameter, in spec order.
    pub values: &'a [f64],
    /// Whether the show is live (the consensus ran this tick).
    pub live: bool,
    /// The audience's compact state, when one is due this tick.
    pub audience: Option<Publish<'a>>,
    /// The detailed state (performers, displays), when one is due this tick.
    pub detail: Option<Publish<'a>>,
}

/// A consumer of ticks. Called on the show's tick thread, in the order the sinks were
/// given, after the show's lock is released.
pub trait TickSink: Send + Sync {
    /// Take one tick. Must return quickly: hand data on, never wait.
    fn on_tick(&self, tick: &Tick<'_>);

    /// Add what this sink knows to the health record stored with a snapshot (once a
    /// second), e.g. the engine's output level. Lock-free.
    fn health(&self, _health: &mut Health) {}
}
