//! When each recent consensus tick ran, by the server's wall clock, so that an `ack` can
//! tell its client when the input was applied (`tutti load` measures input→applied with
//! it). Written by the tick thread, read by the fan-out; lock-free.
//!
//! Must never: block or allocate after construction, or give a time earlier than the tick
//! really ran (an unknown tick answers with the time of asking, which is later).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::runtime::unix_ms;

/// Ticks remembered: about 17 s at 60 Hz, more than any ack waits for a state.
const SLOTS: usize = 1024;

/// The wall-clock times of the last [`SLOTS`] ticks.
///
/// Each slot packs the tick's low 32 bits with the milliseconds since `base_ms` (32 bits,
/// about 49 days), so one atomic holds a consistent pair.
pub struct TickTimes {
    base_ms: u64,
    slots: Box<[AtomicU64]>,
}

impl Default for TickTimes {
    fn default() -> Self {
        TickTimes::new(now_ms())
    }
}

impl TickTimes {
    /// Times counted from `base_ms` (Unix milliseconds); nothing recorded yet.
    pub fn new(base_ms: u64) -> TickTimes {
        TickTimes {
            base_ms,
            slots: (0..SLOTS).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    /// Tick `tick` ran at `at_ms` (Unix milliseconds). A time before the base or more than
    /// 49 days after it is not recorded.
    pub fn record(&self, tick: u64, at_ms: u64) {
        let Some(off) = at_ms
            .checked_sub(self.base_ms)
            .and_then(|o| u32::try_from(o).ok())
        else {
            return;
        };
        let packed = (tick & 0xFFFF_FFFF) << 32 | u64::from(off);
        self.slots[tick as usize % SLOTS].store(packed, Ordering::Release);
    }

    /// When tick `tick` ran (Unix milliseconds), if it is one of the last recorded.
    pub fn get(&self, tick: u64) -> Option<u64> {
        let packed = self.slots[tick as usize % SLOTS].load(Ordering::Acquire);
        (packed != u64::MAX && packed >> 32 == tick & 0xFFFF_FFFF)
            .then(|| self.base_ms + (packed & 0xFFFF_FFFF))
    }

    /// When tick `tick` ran, or now when it is no longer (or not yet) known: never earlier
    /// than the truth for a tick that has run.
    pub fn at_most(&self, tick: u64) -> u64 {
        self.get(tick).unwrap_or_else(now_ms)
    }
}

/// The server's clock now, Unix milliseconds.
pub fn now_ms() -> u64 {
    unix_ms().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ticks_are_remembered_and_old_ones_are_not() {
        let t = TickTimes::new(1_000);
        assert_eq!(t.get(5), None, "nothing recorded yet");
        t.record(5, 1_250);
        assert_eq!(t.get(5), Some(1_250));
        // The slot of tick 5 is taken over SLOTS ticks later: 5 is forgotten, not misdated.
        t.record(5 + SLOTS as u64, 9_000);
        assert_eq!(t.get(5), None);
        assert_eq!(t.get(5 + SLOTS as u64), Some(9_000));
    }

    #[test]
    fn times_outside_the_range_are_not_recorded() {
        let t = TickTimes::new(1_000);
        t.record(1, 999);
        assert_eq!(t.get(1), None, "before the base");
        t.record(2, 1_000 + u64::from(u32::MAX) + 1);
        assert_eq!(t.get(2), None, "more than 49 days after the base");
        t.record(3, 1_000 + u64::from(u32::MAX));
        assert_eq!(t.get(3), Some(1_000 + u64::from(u32::MAX)));
    }

    #[test]
    fn an_unknown_tick_is_dated_now_which_is_never_too_early() {
        let t = TickTimes::default();
        let before = now_ms();
        let at = t.at_most(77);
        assert!(at >= before, "{at} < {before}");
    }
}
