//! A lock-free "at most once per interval" gate for log lines, so a dead OSC target or a flood of
//! malformed packets cannot flood the log. It counts what it suppressed so the next line can say so.
//! It must never block, allocate or log by itself; the caller decides what to print.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a repeated warning (per target, per listener) may reach the log.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct RateLimiter {
    base: Instant,
    interval_ms: u64,
    /// Milliseconds since `base` before which nothing is logged.
    next_allowed_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            base: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            next_allowed_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Returns `Some(n)` if the caller may log now (`n` = events suppressed since the last line),
    /// `None` if this event should only be counted.
    pub(crate) fn check(&self, now: Instant) -> Option<u64> {
        let now_ms =
            u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX);
        let next = self.next_allowed_ms.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next_allowed_ms
                .compare_exchange(
                    next,
                    now_ms.saturating_add(self.interval_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_once_per_interval_and_reports_suppressed() {
        let rl = RateLimiter::new(Duration::from_secs(60));
        let t0 = rl.base;
        assert_eq!(rl.check(t0), Some(0));
        assert_eq!(rl.check(t0 + Duration::from_secs(1)), None);
        assert_eq!(rl.check(t0 + Duration::from_secs(59)), None);
        assert_eq!(rl.check(t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(rl.check(t0 + Duration::from_secs(61)), None);
        assert_eq!(rl.check(t0 + Duration::from_secs(500)), Some(1));
        assert_eq!(rl.check(t0 + Duration::from_secs(500)), None);
    }
}
