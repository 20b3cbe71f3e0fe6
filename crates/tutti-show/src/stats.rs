//! Counters of the live hub, shared by every connection and the ticker: plain atomics,
//! never a lock. Rendered once a second into the performers' `stats` frame.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use tutti_protocol::{ErrorCode, Role};

use crate::metrics::Histogram;

/// Error frames by code, one counter per entry of `ErrorCode::ALL` (an array longer than
/// the standard library's `Default` covers).
#[derive(Debug)]
pub struct ErrorCounts(pub [AtomicU64; ErrorCode::ALL.len()]);

impl Default for ErrorCounts {
    fn default() -> Self {
        ErrorCounts(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl std::ops::Deref for ErrorCounts {
    type Target = [AtomicU64; ErrorCode::ALL.len()];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

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
    pub errors: ErrorCounts,
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
    /// How well the connections that report it have their clocks synced.
    pub sync: SyncQuality,
    /// Cues performers sent.
    pub cues_sent: AtomicU64,
    /// Cue frames handed to phones' sockets.
    pub cue_deliveries: AtomicU64,
    /// Cue frames that could not be handed over (a broken connection, or a fan-out shard
    /// that fell behind the cue queue).
    pub cues_undelivered: AtomicU64,
    /// Cues phones reported receiving too late to play.
    pub cues_late: AtomicU64,
    /// Connections whose last report says their sound is on (ready for cues).
    pub phones_ready: AtomicUsize,
}

/// Upper ends of the sync-quality classes, milliseconds (the last class is everything above).
pub const SYNC_CLASSES_MS: [f64; 5] = [1.0, 2.0, 5.0, 10.0, 20.0];

/// Connections by their latest reported sync error (`sync_report`), in classes: how many
/// are within 1, 2, 5, 10, 20 ms and how many are worse. A connection counts in one class
/// at a time and leaves it when it closes.
#[derive(Debug, Default)]
pub struct SyncQuality {
    classes: [AtomicUsize; SYNC_CLASSES_MS.len() + 1],
}

impl SyncQuality {
    /// The class of an error.
    pub fn class(error_ms: f64) -> usize {
        SYNC_CLASSES_MS
            .iter()
            .position(|&hi| error_ms <= hi)
            .unwrap_or(SYNC_CLASSES_MS.len())
    }

    /// A connection reports `error_ms`, having been in class `was`; its class now.
    pub fn report(&self, was: Option<usize>, error_ms: f64) -> usize {
        let now = Self::class(error_ms);
        if was != Some(now) {
            if let Some(w) = was {
                self.classes[w].fetch_sub(1, Relaxed);
            }
            self.classes[now].fetch_add(1, Relaxed);
        }
        now
    }

    /// A connection in class `was` has closed.
    pub fn leave(&self, was: usize) {
        self.classes[was].fetch_sub(1, Relaxed);
    }

    /// `{"reporting": n, "within_ms": {"1": a, "2": b, …, "more": f}}`: the number in each
    /// class (not cumulative).
    pub fn json(&self) -> serde_json::Value {
        let counts: Vec<usize> = self.classes.iter().map(|c| c.load(Relaxed)).collect();
        let mut within = serde_json::Map::new();
        for (hi, n) in SYNC_CLASSES_MS.iter().zip(&counts) {
            within.insert(format!("{hi}"), (*n).into());
        }
        within.insert("more".into(), counts[SYNC_CLASSES_MS.len()].into());
        serde_json::json!({
            "reporting": counts.iter().sum::<usize>(),
            "within_ms": within,
        })
    }
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

    /// `{"sent", "delivered", "undelivered", "late", "phones_ready"}`: the cue counters and
    /// the phones with sound on.
    pub fn cues_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.cues_sent.load(Relaxed),
            "delivered": self.cue_deliveries.load(Relaxed),
            "undelivered": self.cues_undelivered.load(Relaxed),
            "late": self.cues_late.load(Relaxed),
            "phones_ready": self.phones_ready.load(Relaxed),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_counted_in_one_sync_class_at_a_time() {
        let q = SyncQuality::default();
        let c = q.report(None, 0.4);
        assert_eq!(c, 0);
        let c = q.report(Some(c), 7.0);
        assert_eq!(c, 3);
        let other = q.report(None, 500.0);
        assert_eq!(other, 5);
        assert_eq!(
            q.json(),
            serde_json::json!({"reporting": 2, "within_ms":
                {"1": 0, "2": 0, "5": 0, "10": 1, "20": 0, "more": 1}})
        );
        q.leave(c);
        q.leave(other);
        assert_eq!(q.json()["reporting"], 0);
    }
}
