//! Clock synchronisation between a phone and the show clock (issue 15): from repeated
//! request/reply exchanges (the `sync` frames of `/live/v1`), estimate where the show clock
//! stands relative to a local clock — offset and drift — with an honest error estimate.
//!
//! Cristian/NTP style. Each exchange gives four times: `t0` local send, `t1` server receive,
//! `t2` server send, `t3` local receive (milliseconds; local times on the local clock, server
//! times on the show clock). `t1 - t0` is the offset plus the uplink delay, `t3 - t2` the
//! downlink delay less the offset; one-way delays are never negative, so the smallest of each
//! over a window bound the offset from both sides, and the [`Estimator`] takes the midpoint.
//! Filtering the two directions apart uses the fastest uplink and the fastest downlink even
//! when no single exchange was fast both ways, which is what converges within seconds under
//! jitter; delayed or lost packets never become a minimum, so they fall out by themselves.
//! Drift is fitted (least squares over one such offset per ten seconds) once the exchanges
//! span half a minute, and taken out before the minima. The one assumption no method over
//! a network avoids: the fastest trips take as long both ways.
//!
//! Two error figures, because they answer different questions: [`Estimate::error_ms`] is
//! the statistical one (from how far the second-fastest trips each way lie above the fastest:
//! what a dashboard shows as "synced ±N ms"), [`Estimate::bound_ms`] the worst case no split
//! of the delays can exceed (half the fastest uplink plus the fastest downlink).
//!
//! Must never: read a clock or do I/O (every time is an argument, so tests control time),
//! allocate beyond its bounded window, or panic on any input — bad exchanges are refused
//! with an [`ExchangeError`] and change nothing.

use std::collections::VecDeque;

/// Exchanges held before a one-way trip much shorter than all of them counts as a clock
/// step (fewer could all have been slow).
pub const STEP_EVIDENCE: usize = 4;

/// Drift is fitted from at least this many bins (two degrees of freedom left over for the
/// scatter that decides whether the slope is believed).
pub const DRIFT_MIN_BINS: usize = 4;

/// A fitted drift is used only when it is this far from zero in standard errors, by the
/// number of bins less two (Student's t, two-sided 99 %; beyond the table, 2.9): with few
/// bins the scatter itself is poorly known, so the bar is higher.
pub const DRIFT_T_99: [f64; 10] = [
    63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169,
];

fn drift_t(df: usize) -> f64 {
    DRIFT_T_99.get(df.saturating_sub(1)).copied().unwrap_or(2.9)
}

/// Most exchanges an estimator keeps, whatever its configuration.
pub const MAX_EXCHANGES: usize = 512;

/// One request/reply exchange, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exchange {
    /// Local time the request was sent.
    pub t0: f64,
    /// Show-clock time the server received it.
    pub t1: f64,
    /// Show-clock time the server sent the reply.
    pub t2: f64,
    /// Local time the reply arrived.
    pub t3: f64,
}

impl Exchange {
    /// Time on the network: the whole exchange less the server's own time.
    pub fn round_trip(&self) -> f64 {
        (self.t3 - self.t0) - (self.t2 - self.t1)
    }

    /// Show clock minus local clock, as this exchange sees it (off by at most half the
    /// round trip).
    pub fn offset(&self) -> f64 {
        ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2.0
    }

    /// The local time the offset is measured at: the middle of the exchange.
    pub fn local_mid(&self) -> f64 {
        (self.t0 + self.t3) / 2.0
    }
}

/// Why an exchange was refused (nothing was added).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExchangeError {
    /// A time is NaN or infinite.
    #[error("{0} is not a finite number")]
    NotFinite(&'static str),
    /// `t3 < t0`.
    #[error("the reply arrived before the request was sent (t3 < t0)")]
    ReplyBeforeRequest,
    /// `t2 < t1`.
    #[error("the server replied before it received the request (t2 < t1)")]
    ServerOutOfOrder,
    /// The server's time exceeds the whole exchange.
    #[error("the server's time exceeds the whole exchange (round trip {0:.3} ms)")]
    NegativeRoundTrip(f64),
    /// Slower than the configured limit.
    #[error("round trip {0:.1} ms is over the limit of {1:.1} ms")]
    TooSlow(f64, f64),
    /// Sent a little before an exchange already added (replies reordered); a larger step
    /// back is a clock step and starts the window afresh instead.
    #[error("sent at {0:.3} ms, before an exchange already counted ({1:.3} ms)")]
    LocalTimeBackwards(f64, f64),
}

/// How an [`Estimator`] weighs its exchanges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Exchanges older than this (local time, before the newest) are forgotten.
    pub window_ms: f64,
    /// A jump of either clock larger than this starts the window afresh.
    pub step_ms: f64,
    /// Most exchanges kept (at most [`MAX_EXCHANGES`]).
    pub max_exchanges: usize,
    /// Exchanges slower than this are refused.
    pub max_round_trip_ms: f64,
    /// Drift is fitted from one offset per this much local time.
    pub bin_ms: f64,
    /// Drift is fitted only when the exchanges span this long.
    pub drift_span_ms: f64,
    /// A fitted drift beyond this (parts per million) is not believed; the offset alone is
    /// used.
    pub max_drift_ppm: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window_ms: 600_000.0,
            step_ms: 100.0,
            max_exchanges: MAX_EXCHANGES,
            max_round_trip_ms: 5_000.0,
            bin_ms: 10_000.0,
            drift_span_ms: 30_000.0,
            max_drift_ppm: 1_000.0,
        }
    }
}

/// Where the show clock stands relative to the local clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Show clock minus local clock at `at_local_ms`.
    pub offset_ms: f64,
    /// How much faster the show clock runs, in parts per million (0 until fitted).
    pub drift_ppm: f64,
    /// The local time the offset is given for (the newest exchange's middle).
    pub at_local_ms: f64,
    /// Standard error of the offset (statistical; assumes no constant asymmetry).
    pub error_ms: f64,
    /// Worst case: the truth is within this of the estimate whatever the network did.
    pub bound_ms: f64,
    /// The shortest round trip among the exchanges used.
    pub round_trip_ms: f64,
    /// Exchanges used.
    pub used: usize,
}

impl Estimate {
    /// The show-clock time at local time `local_ms`.
    pub fn show_time(&self, local_ms: f64) -> f64 {
        local_ms + self.offset_ms + (local_ms - self.at_local_ms) * self.drift_ppm * 1e-6
    }

    /// The local time at which the show clock reads `show_ms` (the inverse of
    /// [`Estimate::show_time`]).
    pub fn local_time(&self, show_ms: f64) -> f64 {
        let d = self.drift_ppm * 1e-6;
        (show_ms - self.offset_ms + self.at_local_ms * d) / (1.0 + d)
    }
}

/// Estimates the show clock from exchanges, newest last.
#[derive(Debug, Clone)]
pub struct Estimator {
    config: Config,
    exchanges: VecDeque<Exchange>,
    refused: u64,
    steps: u64,
}

impl Default for Estimator {
    fn default() -> Self {
        Estimator::new(Config::default())
    }
}

impl Estimator {
    /// An estimator with no exchanges yet.
    pub fn new(config: Config) -> Estimator {
        let config = Config {
            max_exchanges: config.max_exchanges.clamp(1, MAX_EXCHANGES),
            ..config
        };
        Estimator {
            exchanges: VecDeque::with_capacity(config.max_exchanges),
            config,
            refused: 0,
            steps: 0,
        }
    }

    /// Adds an exchange, or refuses it (and changes nothing but the refused count). An
    /// exchange that shows a clock step replaces every exchange held.
    pub fn add(&mut self, x: Exchange) -> Result<(), ExchangeError> {
        let checked = self.check(&x);
        if checked.is_err() {
            self.refused += 1;
            return checked;
        }
        if self.stepped(&x) {
            self.exchanges.clear();
            self.steps += 1;
        }
        if self.exchanges.len() == self.config.max_exchanges {
            self.exchanges.pop_front();
        }
        self.exchanges.push_back(x);
        let newest = x.local_mid();
        while self
            .exchanges
            .front()
            .is_some_and(|f| newest - f.local_mid() > self.config.window_ms)
        {
            self.exchanges.pop_front();
        }
        Ok(())
    }

    fn check(&self, x: &Exchange) -> Result<(), ExchangeError> {
        for (name, t) in [("t0", x.t0), ("t1", x.t1), ("t2", x.t2), ("t3", x.t3)] {
            if !t.is_finite() {
                return Err(ExchangeError::NotFinite(name));
            }
        }
        if x.t3 < x.t0 {
            return Err(ExchangeError::ReplyBeforeRequest);
        }
        if x.t2 < x.t1 {
            return Err(ExchangeError::ServerOutOfOrder);
        }
        let rtt = x.round_trip();
        if rtt < 0.0 {
            return Err(ExchangeError::NegativeRoundTrip(rtt));
        }
        if rtt > self.config.max_round_trip_ms {
            return Err(ExchangeError::TooSlow(rtt, self.config.max_round_trip_ms));
        }
        if let Some(last) = self.exchanges.back() {
            if x.t0 < last.t0 && x.t0 >= last.t0 - self.config.step_ms {
                return Err(ExchangeError::LocalTimeBackwards(x.t0, last.t0));
            }
        }
        Ok(())
    }

    /// Whether `x` shows that a clock stepped since the exchanges held (the phone slept, its
    /// clock was set): sent more than `step_ms` before the newest, or, with at least
    /// [`STEP_EVIDENCE`] held, a one-way trip more than `step_ms` shorter than any of them,
    /// which no network delay can explain.
    fn stepped(&self, x: &Exchange) -> bool {
        let Some(last) = self.exchanges.back() else {
            return false;
        };
        let step = self.config.step_ms;
        if x.t0 < last.t0 - step {
            return true;
        }
        // Judged on a few exchanges only: one slow first exchange is no reference.
        if self.exchanges.len() < STEP_EVIDENCE {
            return false;
        }
        let (up, down) = self
            .exchanges
            .iter()
            .fold((f64::INFINITY, f64::INFINITY), |(u, d), h| {
                (u.min(h.t1 - h.t0), d.min(h.t3 - h.t2))
            });
        x.t1 - x.t0 < up - step || x.t3 - x.t2 < down - step
    }

    /// Exchanges held.
    pub fn len(&self) -> usize {
        self.exchanges.len()
    }

    /// No exchange held.
    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty()
    }

    /// Exchanges refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Clock steps seen so far (each one started the window afresh).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Forgets every exchange (after the page slept, say, when the local clock may have
    /// jumped).
    pub fn clear(&mut self) {
        self.exchanges.clear();
    }

    /// The estimate from the exchanges held; none before the first.
    ///
    /// The uplink and the downlink are filtered apart: `t1 - t0` is the offset plus the
    /// uplink delay and `t3 - t2` the downlink delay less the offset, so the smallest of each
    /// over the window bound the offset from both sides, and their midpoint is the estimate.
    /// Two fast one-way trips from different exchanges are enough; no single exchange has to
    /// be fast both ways. Drift, fitted first, is taken out of both series before their minima.
    pub fn estimate(&self) -> Option<Estimate> {
        let newest = self.exchanges.back()?;
        let at = newest.local_mid();
        let drift = self.fit_drift();
        let (up, down, rtt) = self.exchanges.iter().fold(
            ([f64::INFINITY; 2], [f64::INFINITY; 2], f64::INFINITY),
            |(up, down, rtt), x| {
                let dt = x.local_mid() - at;
                (
                    lowest_two(up, (x.t1 - x.t0) - drift * dt),
                    lowest_two(down, (x.t3 - x.t2) + drift * dt),
                    rtt.min(x.round_trip()),
                )
            },
        );
        let bound = ((up[0] + down[0]) / 2.0).max(0.0);
        let error = if self.exchanges.len() > 1 {
            ((up[1] - up[0]).powi(2) + (down[1] - down[0]).powi(2)).sqrt() / 2.0
        } else {
            bound
        };
        Some(Estimate {
            offset_ms: (up[0] - down[0]) / 2.0,
            drift_ppm: drift * 1e6,
            at_local_ms: at,
            error_ms: error.min(bound),
            bound_ms: bound,
            round_trip_ms: rtt,
            used: self.exchanges.len(),
        })
    }

    /// The drift (a fraction, not ppm): the offset of each `bin_ms` of exchanges (from its
    /// fastest one-way trips) fitted against local time by least squares, once there are
    /// [`DRIFT_MIN_BINS`] bins spanning `drift_span_ms`; 0 before, or when the slope is not
    /// believable (beyond `max_drift_ppm`, or within [`DRIFT_T_99`]'s standard errors of
    /// zero).
    fn fit_drift(&self) -> f64 {
        let bin = self.config.bin_ms.max(1.0);
        let mut points: Vec<(f64, f64)> = Vec::new();
        let mut i = 0;
        let xs = &self.exchanges;
        while i < xs.len() {
            let start = xs[i].local_mid();
            let mut best_up = (f64::INFINITY, 0.0);
            let mut best_down = (f64::INFINITY, 0.0);
            while i < xs.len() && xs[i].local_mid() - start < bin {
                let x = &xs[i];
                if x.t1 - x.t0 < best_up.0 {
                    best_up = (x.t1 - x.t0, x.local_mid());
                }
                if x.t3 - x.t2 < best_down.0 {
                    best_down = (x.t3 - x.t2, x.local_mid());
                }
                i += 1;
            }
            points.push((
                (best_up.1 + best_down.1) / 2.0,
                (best_up.0 - best_down.0) / 2.0,
            ));
        }
        let span = points.last().map_or(0.0, |l| l.0) - points.first().map_or(0.0, |f| f.0);
        if points.len() < DRIFT_MIN_BINS || span < self.config.drift_span_ms {
            return 0.0;
        }
        let k = points.len() as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / k;
        let my = points.iter().map(|p| p.1).sum::<f64>() / k;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (x, y) in &points {
            sxy += (x - mx) * (y - my);
            sxx += (x - mx) * (x - mx);
        }
        let slope = sxy / sxx;
        if !slope.is_finite() || slope.abs() * 1e6 > self.config.max_drift_ppm {
            return 0.0;
        }
        // Believed only when it stands out of the bins' own scatter: with a few exchanges per
        // bin under jitter, the bins' offsets scatter by milliseconds, and a slope fitted to
        // noise would move the estimate further than no drift at all.
        let residual: f64 = points
            .iter()
            .map(|(x, y)| (y - my - slope * (x - mx)).powi(2))
            .sum();
        let standard_error = (residual / (k - 2.0) / sxx).sqrt();
        if slope.abs() < drift_t(points.len() - 2) * standard_error {
            return 0.0;
        }
        slope
    }

    /// When to start the next exchange, in milliseconds from now: quickly while few exchanges
    /// are held or the error is large (a phone that just joined converges within seconds),
    /// then once every two seconds to follow drift.
    pub fn next_exchange_in_ms(&self) -> f64 {
        match self.estimate() {
            Some(e) if self.exchanges.len() >= 16 && e.error_ms <= 0.5 => 2_000.0,
            Some(_) if self.exchanges.len() >= 16 => 500.0,
            _ => 100.0,
        }
    }
}

/// The two lowest of `lo` and `v`, lowest first.
fn lowest_two(lo: [f64; 2], v: f64) -> [f64; 2] {
    if v < lo[0] {
        [v, lo[0]]
    } else if v < lo[1] {
        [lo[0], v]
    } else {
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(t0: f64, up: f64, server: f64, down: f64, offset: f64) -> Exchange {
        let t1 = t0 + up + offset;
        let t2 = t1 + server;
        Exchange {
            t0,
            t1,
            t2,
            t3: t2 - offset + down,
        }
    }

    #[test]
    fn one_symmetric_exchange_gives_the_offset_exactly() {
        let e = x(1_000.0, 10.0, 0.5, 10.0, 12_345.0);
        assert_eq!(e.round_trip(), 20.0);
        assert_eq!(e.offset(), 12_345.0);
        let mut s = Estimator::default();
        s.add(e).unwrap();
        let est = s.estimate().unwrap();
        assert_eq!(est.offset_ms, 12_345.0);
        assert_eq!(est.bound_ms, 10.0);
        assert_eq!(est.drift_ppm, 0.0);
    }

    #[test]
    fn the_error_of_an_asymmetric_exchange_is_within_its_bound() {
        let e = x(0.0, 30.0, 0.0, 2.0, 500.0);
        let mut s = Estimator::default();
        s.add(e).unwrap();
        let est = s.estimate().unwrap();
        assert!((est.offset_ms - 500.0).abs() <= est.bound_ms, "{est:?}");
        assert!(
            (est.offset_ms - 500.0).abs() > 10.0,
            "this one is off: {est:?}"
        );
    }

    #[test]
    fn bad_exchanges_are_refused_and_change_nothing() {
        let mut s = Estimator::default();
        s.add(x(1_000.0, 5.0, 0.1, 5.0, 7.0)).unwrap();
        let before = s.estimate();
        let good = x(2_000.0, 5.0, 0.1, 5.0, 7.0);
        let cases = [
            (
                Exchange {
                    t1: f64::NAN,
                    ..good
                },
                ExchangeError::NotFinite("t1"),
            ),
            (
                Exchange {
                    t3: good.t0 - 1.0,
                    ..good
                },
                ExchangeError::ReplyBeforeRequest,
            ),
            (
                Exchange {
                    t2: good.t1 - 1.0,
                    ..good
                },
                ExchangeError::ServerOutOfOrder,
            ),
            (
                Exchange {
                    t2: good.t1 + 1e6,
                    ..good
                },
                ExchangeError::NegativeRoundTrip(10.0 - 1e6 + 0.1),
            ),
            (
                x(3_000.0, 4_000.0, 0.0, 4_000.0, 7.0),
                ExchangeError::TooSlow(8_000.0, 5_000.0),
            ),
            (
                x(950.0, 5.0, 0.1, 5.0, 7.0),
                ExchangeError::LocalTimeBackwards(950.0, 1_000.0),
            ),
        ];
        for (bad, want) in cases {
            let got = s.add(bad).unwrap_err();
            match (&got, &want) {
                (ExchangeError::NegativeRoundTrip(_), ExchangeError::NegativeRoundTrip(_)) => {}
                _ => assert_eq!(got, want),
            }
            assert!(!got.to_string().is_empty());
        }
        assert_eq!(s.len(), 1);
        assert_eq!(s.refused(), 6);
        assert_eq!(s.estimate(), before);
    }

    #[test]
    fn old_exchanges_leave_the_window() {
        let mut s = Estimator::new(Config {
            window_ms: 1_000.0,
            ..Config::default()
        });
        for i in 0..10 {
            s.add(x(i as f64 * 500.0, 5.0, 0.0, 5.0, 0.0)).unwrap();
        }
        assert_eq!(s.len(), 3, "the newest and those within 1 s of it");
        let mut s = Estimator::new(Config {
            max_exchanges: 4,
            ..Config::default()
        });
        for i in 0..10 {
            s.add(x(i as f64, 5.0, 0.0, 5.0, 0.0)).unwrap();
        }
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn a_clock_step_starts_afresh() {
        let mut s = Estimator::default();
        for i in 0..20 {
            s.add(x(i as f64 * 100.0, 5.0, 0.0, 5.0, 1_000.0)).unwrap();
        }
        // The phone slept: its clock now reads 30 s more than before against the show's.
        s.add(x(2_100.0, 5.0, 0.0, 5.0, -29_000.0)).unwrap();
        assert_eq!((s.steps(), s.len()), (1, 1));
        assert_eq!(s.estimate().unwrap().offset_ms, -29_000.0);
        // And back by 10 s: also a step, not a refused exchange.
        s.add(x(-7_000.0, 5.0, 0.0, 5.0, 1_000.0)).unwrap();
        assert_eq!((s.steps(), s.len()), (2, 1));
        // Jitter is not a step.
        s.add(x(-6_900.0, 60.0, 0.0, 1.0, 1_000.0)).unwrap();
        assert_eq!((s.steps(), s.len()), (2, 2));
        // Nor is a slow first exchange followed by fast ones.
        let mut s = Estimator::default();
        s.add(x(0.0, 400.0, 0.0, 5.0, 1_000.0)).unwrap();
        for i in 1..10 {
            s.add(x(i as f64 * 100.0, 5.0, 0.0, 5.0, 1_000.0)).unwrap();
        }
        assert_eq!((s.steps(), s.len()), (0, 10));
        assert_eq!(s.estimate().unwrap().offset_ms, 1_000.0);
    }

    #[test]
    fn show_and_local_time_are_inverse() {
        let e = Estimate {
            offset_ms: 1234.5,
            drift_ppm: 80.0,
            at_local_ms: 50_000.0,
            error_ms: 0.1,
            bound_ms: 1.0,
            round_trip_ms: 2.0,
            used: 4,
        };
        for local in [0.0, 50_000.0, 3_600_000.0] {
            let back = e.local_time(e.show_time(local));
            assert!((back - local).abs() < 1e-6, "{local} -> {back}");
        }
    }

    #[test]
    fn the_pace_slows_once_converged() {
        let mut s = Estimator::default();
        assert_eq!(s.next_exchange_in_ms(), 100.0);
        for i in 0..20 {
            s.add(x(i as f64 * 100.0, 5.0, 0.0, 5.0, 3.0)).unwrap();
        }
        assert_eq!(s.next_exchange_in_ms(), 2_000.0);
    }
}
