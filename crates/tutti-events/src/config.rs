//! Configuration of the bus, the relay and the webhook dispatcher, validated as a whole.
//!
//! Every bound is checked by [`EventsConfig::validate`] and a bad value is refused with
//! [`EventsError::Config`] naming the field (e.g. `dispatcher.max_attempts`). This module must
//! never start anything.

use std::time::Duration;

use crate::error::EventsError;
use crate::target::TargetPolicy;

/// The in-process bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// Events a subscriber may fall behind before it lags (1..=1,000,000; default 1024).
    pub capacity: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { capacity: 1024 }
    }
}

/// The outbox relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Name of its row in `outbox_cursor` (1..=64 bytes; default `relay`).
    pub cursor_name: String,
    /// Events per relay step (1..=1000; default 200).
    pub batch_size: u32,
    /// How often it looks for new events when nothing woke it (10 ms..=60 s; default 1 s).
    pub poll_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            cursor_name: "relay".into(),
            batch_size: 200,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The webhook dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// Time allowed for one HTTP attempt, connect to last body byte (1 ms..=5 min; default 10 s).
    pub request_timeout: Duration,
    /// Attempts per delivery before it gives up (1..=100; default 8).
    pub max_attempts: u32,
    /// Consecutive deliveries that gave up before the webhook is disabled (1..=10,000; default 5).
    pub failure_threshold: u32,
    /// Delay before the 2nd attempt; doubles per attempt, jittered (1 ms..=1 h; default 1 s).
    pub backoff_base: Duration,
    /// Largest delay between attempts (>= `backoff_base`, ..=24 h; default 1 h).
    pub backoff_cap: Duration,
    /// Attempts in flight at once (1..=1024; default 16).
    pub max_in_flight: usize,
    /// How often it looks for due deliveries when nothing woke it (1 ms..=60 s; default 1 s).
    pub poll_interval: Duration,
    /// Extra time, past `request_timeout`, for which a claimed delivery stays leased to this
    /// dispatcher (a crashed dispatcher's deliveries are retried after it; 0..=1 h; default 30 s).
    pub lease_margin: Duration,
    /// Where deliveries may go (default: public addresses only, see [`crate::target`]).
    pub targets: TargetPolicy,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_attempts: 8,
            failure_threshold: 5,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(3600),
            max_in_flight: 16,
            poll_interval: Duration::from_secs(1),
            lease_margin: Duration::from_secs(30),
            targets: TargetPolicy::default(),
        }
    }
}

/// Streams (SSE and WebSocket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Keep-alive comment / ping interval (100 ms..=10 min; default 15 s).
    pub keep_alive: Duration,
    /// Events read from the store per catch-up page (1..=1000; default 200).
    pub catch_up_batch: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(15),
            catch_up_batch: 200,
        }
    }
}

/// Everything [`crate::Events::start`] needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsConfig {
    /// The bus.
    pub bus: BusConfig,
    /// The relay.
    pub relay: RelayConfig,
    /// The webhook dispatcher.
    pub dispatcher: DispatcherConfig,
    /// The streams.
    pub stream: StreamConfig,
}

fn err(field: &'static str, value: impl std::fmt::Debug, reason: impl Into<String>) -> EventsError {
    EventsError::Config {
        field,
        value: format!("{value:?}"),
        reason: reason.into(),
    }
}

fn int_range<T: PartialOrd + std::fmt::Debug + Copy>(
    field: &'static str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), EventsError> {
    if v < lo || v > hi {
        return Err(err(field, v, format!("must be {lo:?}..={hi:?}")));
    }
    Ok(())
}

fn dur_range(
    field: &'static str,
    v: Duration,
    lo: Duration,
    hi: Duration,
) -> Result<(), EventsError> {
    if v < lo || v > hi {
        return Err(err(field, v, format!("must be between {lo:?} and {hi:?}")));
    }
    Ok(())
}

impl EventsConfig {
    /// Checks every field; the first bad one is returned as [`EventsError::Config`].
    pub fn validate(&self) -> Result<(), EventsError> {
        const MS: Duration = Duration::from_millis(1);
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        int_range("bus.capacity", self.bus.capacity, 1, 1_000_000)?;

        let r = &self.relay;
        if r.cursor_name.is_empty() || r.cursor_name.len() > 64 {
            return Err(err(
                "relay.cursor_name",
                &r.cursor_name,
                "must be 1..=64 bytes",
            ));
        }
        int_range("relay.batch_size", r.batch_size, 1, 1000)?;
        dur_range("relay.poll_interval", r.poll_interval, 10 * MS, MINUTE)?;

        let d = &self.dispatcher;
        dur_range(
            "dispatcher.request_timeout",
            d.request_timeout,
            MS,
            5 * MINUTE,
        )?;
        int_range("dispatcher.max_attempts", d.max_attempts, 1, 100)?;
        int_range(
            "dispatcher.failure_threshold",
            d.failure_threshold,
            1,
            10_000,
        )?;
        dur_range("dispatcher.backoff_base", d.backoff_base, MS, HOUR)?;
        dur_range(
            "dispatcher.backoff_cap",
            d.backoff_cap,
            d.backoff_base,
            24 * HOUR,
        )?;
        int_range("dispatcher.max_in_flight", d.max_in_flight, 1, 1024)?;
        dur_range("dispatcher.poll_interval", d.poll_interval, MS, MINUTE)?;
        dur_range(
            "dispatcher.lease_margin",
            d.lease_margin,
            Duration::ZERO,
            HOUR,
        )?;

        let s = &self.stream;
        dur_range("stream.keep_alive", s.keep_alive, 100 * MS, 10 * MINUTE)?;
        int_range("stream.catch_up_batch", s.catch_up_batch, 1, 1000)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        EventsConfig::default()
            .validate()
            .expect("defaults validate");
    }
}
