//! A circuit breaker around the store's writes: after `failures` consecutive failed or
//! stalled writes it opens (the memory stops writing and spills instead), after `open_for`
//! it lets one write through (half-open), and that write's outcome closes or re-opens it.
//!
//! Must never: block (it is a few atomics and a short mutex), or forget a transition (every
//! one is counted for `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The breaker's state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Writes go to the store.
    Closed,
    /// Writes are spilled; the store is left alone.
    Open,
    /// One write is trying the store.
    HalfOpen,
}

impl BreakerState {
    /// The name (`closed`, `open`, `half_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive: u32,
    opened_at: Option<Instant>,
}

/// The breaker.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    open_for: Duration,
    inner: Mutex<Inner>,
    /// Times it opened.
    pub opens: AtomicU64,
    /// Failed or stalled writes.
    pub write_failures: AtomicU64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(failures: u32, open_for: Duration) -> Self {
        Breaker {
            failures: failures.max(1),
            open_for,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive: 0,
                opened_at: None,
            }),
            opens: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state (an open breaker whose time is up reads as half-open).
    pub fn state(&self) -> BreakerState {
        let g = self.lock();
        match (g.state, g.opened_at) {
            (BreakerState::Open, Some(t)) if t.elapsed() >= self.open_for => BreakerState::HalfOpen,
            (s, _) => s,
        }
    }

    /// Whether a write may go to the store now (moves an expired open breaker to half-open).
    pub fn allow(&self) -> bool {
        let mut g = self.lock();
        match g.state {
            BreakerState::Closed | BreakerState::HalfOpen => true,
            BreakerState::Open => {
                if g.opened_at.is_some_and(|t| t.elapsed() >= self.open_for) {
                    g.state = BreakerState::HalfOpen;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// A write succeeded.
    pub fn success(&self) {
        let mut g = self.lock();
        g.consecutive = 0;
        g.state = BreakerState::Closed;
        g.opened_at = None;
    }

    /// A write failed or stalled.
    pub fn failure(&self) {
        self.write_failures.fetch_add(1, Relaxed);
        let mut g = self.lock();
        g.consecutive += 1;
        let trip = g.state == BreakerState::HalfOpen || g.consecutive >= self.failures;
        if trip {
            if g.state != BreakerState::Open {
                self.opens.fetch_add(1, Relaxed);
            }
            g.state = BreakerState::Open;
            g.opened_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_and_closes_after_a_good_probe() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.allow());
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.opens.load(Relaxed), 2);
    }
}
