//! Counters of the live hub, shared by every connection and the ticker: plain atomics,
//! never a lock. Rendered once a second into the performers' `stats` frame.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use tutti_protocol::{ErrorCode, Role};

use crate::metrics::Histogram;

/// Hub-wide counters.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Open connections by role (audience, performer, display) plus not yet joined.
    pub audience: AtomicUsize,
    /// Performer connections.
    pub performer: AtomicUsize,
    /// Display connections.
    pub display: AtomicUsize,
    /// Connections that have not joined yet.
    pub pending: AtomicUsize,
    /// Performers listening to the audio stream.
    pub listeners: AtomicUsize,
    /// Connections refused with 503 because of `limits.max_connections`.
    pub refused: AtomicU64,
    /// Inputs and votes applied.
    pub inputs_accepted: AtomicU64,
    /// Inputs and votes refused (any error).
    pub inputs_rejected: AtomicU64,
    /// Error frames by code (index = position in `ErrorCode::ALL`).
    pub errors: [AtomicU64; ErrorCode::ALL.len()],
    /// Error frames not sent because a connection exceeded the error-frame budget.
    pub errors_suppressed: AtomicU64,
    /// Duration of the last tick's computation, in microseconds.
    pub tick_last_us: AtomicU64,
    /// Longest tick computation since start, in microseconds.
    pub tick_max_us: AtomicU64,
    /// Ticks computed.
    pub ticks: AtomicU64,
    /// Engine tick computation.
    pub tick: Histogram,
    /// Rendering the audience state frame.
    pub serialize: Histogram,
    /// Per publish: from publishing a state to its latest delivery.
    pub fanout: Histogram,
    /// Per delivery: from publishing a state to writing it to one connection.
    pub lag: Histogram,
    /// Per tick: how long the oldest input since the previous tick waited for it.
    pub input_wait: Histogram,
    /// Audience state frames written.
    pub states_delivered: AtomicU64,
    /// Audience state frames skipped by latest-wins (a slow reader or a busy server).
    pub states_skipped: AtomicU64,
    /// Deliveries later than one state period (or 200 ms, whichever is shorter).
    pub states_late: AtomicU64,
    /// Deliveries in the current one-second window (for the rate controller).
    pub states_window: AtomicU64,
    /// Late deliveries in the current window.
    pub states_late_window: AtomicU64,
    /// The audience state rate in force, in mHz.
    pub state_rate_millihz: AtomicU64,
}

impl HubStats {
    /// Count one error of this code.
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Relaxed);
        }
    }

    /// Errors counted for a code.
    pub fn errors_of(&self, code: ErrorCode) -> u64 {
        ErrorCode::ALL
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.errors[i].load(Relaxed))
    }

    /// The counter for connections of a role.
    pub fn role(&self, role: Role) -> &AtomicUsize {
        match role {
            Role::Audience => &self.audience,
            Role::Performer => &self.performer,
            Role::Display => &self.display,
        }
    }

    /// Record a tick's computation time.
    pub fn record_tick(&self, us: u64) {
        self.ticks.fetch_add(1, Relaxed);
        self.tick_last_us.store(us, Relaxed);
        self.tick_max_us.fetch_max(us, Relaxed);
    }

    /// JSON object of the error counters that are not zero.
    pub fn errors_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            let n = self.errors[i].load(Relaxed);
            if n > 0 {
                map.insert(code.as_str().to_string(), n.into());
            }
        }
        serde_json::Value::Object(map)
    }
}
