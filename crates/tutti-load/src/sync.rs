//! Clock sync under load (`--sync`, issue 15): each reading client keeps its own clock in
//! step with the server's show clock exactly as a phone page does, and the run measures how
//! wrong each estimate really is.
//!
//! A client ([`SyncClient`]) runs `tutti_sync::Estimator` over its own connection: a `sync`
//! frame as soon as it joined, the next one `next_exchange_in_ms()` after each, `t0` and
//! `t3` read from its clock when it sends and when it handles the answer, a `sync_report`
//! every 5 s once 8 exchanges are held (what `web/live.js` does). Its clock is this
//! machine's monotonic clock started at a random offset of up to an hour either way and, with
//! `--sync-drift-ppm`, running fast or slow by its own rate, so nothing it estimates is known
//! in advance.
//!
//! The truth: the server's show clock and this process's monotonic clock are the same kind of
//! clock on the same machine (`CLOCK_MONOTONIC`; network namespaces share it), so the show
//! clock minus ours is one constant. A [`Reference`] connection over a path with a tiny
//! round trip finds it before the clients start: every exchange bounds the constant from
//! both sides (`t2 - t3 ≤ show - ours ≤ t1 - t0`, since no trip takes negative time), and the
//! intersection of the bounds of [`REFERENCE_EXCHANGES`] exchanges pins it down to half the
//! width of what is left (the reference's bound, reported). The reference keeps exchanging
//! during the run; its later bounds must overlap the first ones (checked, reported). A
//! client's true error at any moment is then its estimate of the show clock at its local
//! time minus (our monotonic time + the constant).
//!
//! A client samples its true error after every exchange (before it adds the answer, with the
//! estimate in force until then, and after), at 1, 2, 3, 5 and 10 s after joining and at
//! the end. Converged: from the first sample after which every sample stayed within
//! [`CONVERGED_MS`].
//!
//! Must never: hold more than [`MAX_PENDING`] unanswered exchanges per client, grow with the
//! length of the run, or read a timing threshold into a correctness check.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tutti_sync::{Estimate, Estimator, Exchange};

use crate::client::{next_phase, ws_reason, Phase, Rng, Ws};
use crate::report::{Spread, SyncAt, SyncConvergence, SyncExchanges, SyncFigures, SyncReference};

/// Seconds after joining at which every client's error is taken (the report adds the end).
pub const CHECKPOINTS_S: [f64; 5] = [1.0, 2.0, 3.0, 5.0, 10.0];
/// A client has converged once its true error stays within this many milliseconds.
pub const CONVERGED_MS: f64 = 2.0;
/// Exchanges the reference makes before the clients start.
pub const REFERENCE_EXCHANGES: u32 = 20;
/// Between two of the reference's first exchanges (the server answers 20 a second).
const REFERENCE_SPACING: Duration = Duration::from_millis(60);
/// Between two of the reference's exchanges during the run.
const REFERENCE_PERIOD: Duration = Duration::from_millis(200);
/// Longest the reference's first exchanges may take, answers included.
pub const REFERENCE_TIME: Duration = Duration::from_secs(5);
/// Unanswered exchanges a client remembers (older ones count as unanswered).
pub const MAX_PENDING: usize = 64;
/// An exchange unanswered for this long is forgotten, as the page does.
const PENDING_FOR: Duration = Duration::from_secs(10);
/// Between two `sync_report` frames, and the exchanges held before the first.
const REPORT_EVERY_MS: f64 = 5_000.0;
const REPORT_AFTER: usize = 8;
/// How far either way a client's clock starts from ours.
const MAX_START_OFFSET_MS: f64 = 3_600_000.0;

/// The answer to a `sync` frame.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    id: Option<u64>,
    t1: f64,
    t2: f64,
}

/// Milliseconds on our monotonic clock since `origin`.
fn mono_ms(origin: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(origin).as_secs_f64() * 1000.0
}

/// Where the show clock stands relative to ours: `lo ≤ show - ours ≤ hi`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    const ANY: Interval = Interval {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
    };

    /// Narrow by one exchange (times on our clock and the show clock).
    fn narrow(&mut self, x: &Exchange) {
        self.lo = self.lo.max(x.t2 - x.t3);
        self.hi = self.hi.min(x.t1 - x.t0);
    }

    fn known(&self) -> bool {
        self.lo.is_finite() && self.hi.is_finite()
    }

    /// The middle: our best value of `show - ours`.
    pub fn mid(&self) -> f64 {
        (self.lo + self.hi) / 2.0
    }

    /// Half the width: the truth is within this of [`Interval::mid`].
    pub fn bound(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }
}

/// What the clients share: our clock's origin, the truth, and the drift to give clocks.
pub(crate) struct SyncShared {
    pub origin: Instant,
    /// `show - ours` in milliseconds, from the reference.
    pub truth_ms: f64,
    pub drift_ppm: f64,
}

/// The reference connection: finds the truth, then keeps checking it.
pub(crate) struct Reference {
    ws: Ws,
    origin: Instant,
    pub first: Interval,
    exchanges: u64,
    answered: u64,
    min_rtt: f64,
}

/// What the reference saw over the whole run.
pub(crate) struct ReferenceOutcome {
    pub first: Interval,
    pub last: Interval,
    pub exchanges: u64,
    pub answered: u64,
    pub min_rtt: f64,
    pub problem: Option<String>,
}

impl Reference {
    /// Make the first exchanges over `ws` (already joined) and find the truth.
    pub async fn start(ws: Ws, origin: Instant) -> Result<Reference, String> {
        let mut r = Reference {
            ws,
            origin,
            first: Interval::ANY,
            exchanges: 0,
            answered: 0,
            min_rtt: f64::INFINITY,
        };
        let mut first = Interval::ANY;
        let done = tokio::time::timeout(REFERENCE_TIME, async {
            for _ in 0..REFERENCE_EXCHANGES {
                let x = r.exchange().await?;
                first.narrow(&x);
                tokio::time::sleep(REFERENCE_SPACING).await;
            }
            Ok::<_, String>(())
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(format!(
                    "the reference did not finish {REFERENCE_EXCHANGES} sync exchanges within {} s",
                    REFERENCE_TIME.as_secs()
                ))
            }
        }
        if !first.known() || first.lo > first.hi {
            return Err(format!(
                "the reference's exchanges do not agree on one offset (from {:.3} to {:.3} ms): \
                 is the server on this machine?",
                first.lo, first.hi
            ));
        }
        r.first = first;
        Ok(r)
    }

    /// One exchange, waiting for its answer (other frames are read and ignored).
    async fn exchange(&mut self) -> Result<Exchange, String> {
        self.exchanges += 1;
        let id = self.exchanges;
        let t0 = mono_ms(self.origin, Instant::now());
        let frame = format!(r#"{{"type":"sync","id":{id},"t0":{t0}}}"#);
        self.ws
            .send(Message::text(frame))
            .await
            .map_err(|e| format!("reference: {}", ws_reason(&e)))?;
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let t3 = mono_ms(self.origin, Instant::now());
                    let text = t.as_str();
                    if !text.starts_with(r#"{"type":"sync""#) {
                        if text.starts_with(r#"{"type":"error""#) {
                            return Err(format!("reference: the server answered {text}"));
                        }
                        continue;
                    }
                    let a: Answer = serde_json::from_str(text).map_err(|e| {
                        format!("reference: a sync answer that does not parse: {e}")
                    })?;
                    if a.id != Some(id) {
                        continue;
                    }
                    self.answered += 1;
                    let x = Exchange {
                        t0,
                        t1: a.t1,
                        t2: a.t2,
                        t3,
                    };
                    self.min_rtt = self.min_rtt.min(x.round_trip());
                    return Ok(x);
                }
                Some(Ok(Message::Close(_))) | None => {
                    return Err("reference: closed by the server".into())
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("reference: {}", ws_reason(&e))),
            }
        }
    }

    /// Keep exchanging until the run stops; the later bounds must overlap the first.
    pub async fn watch(mut self, rx: watch::Receiver<Phase>) -> ReferenceOutcome {
        let mut last = Interval::ANY;
        let mut problem = None;
        let mut phase = Box::pin(next_phase(rx));
        let mut timer = tokio::time::interval(REFERENCE_PERIOD);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                (rx, p) = &mut phase => {
                    if p == Phase::Stop {
                        break;
                    }
                    phase = Box::pin(next_phase(rx));
                },
                _ = timer.tick() => match tokio::time::timeout(Duration::from_secs(2), self.exchange()).await {
                    Ok(Ok(x)) => last.narrow(&x),
                    Ok(Err(e)) => {
                        problem = Some(e);
                        break;
                    }
                    Err(_) => {}
                },
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
        ReferenceOutcome {
            first: self.first,
            last,
            exchanges: self.exchanges,
            answered: self.answered,
            min_rtt: self.min_rtt,
            problem,
        }
    }
}

/// One sample of a client's estimate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// The estimate's show time minus the true show time, milliseconds.
    pub true_error_ms: f64,
    /// What the estimator says its error is.
    pub error_ms: f64,
    /// The estimator's worst case.
    pub bound_ms: f64,
    /// The drift the estimator fitted (0 until it fits one), parts per million.
    pub drift_ppm: f64,
}

/// What one client's clock sync came to.
#[derive(Debug, Clone)]
pub(crate) struct SyncOutcome {
    /// At each of [`CHECKPOINTS_S`]: none if the run ended first; `Some(None)` if there was
    /// no estimate yet.
    pub at: [Option<Option<Sample>>; CHECKPOINTS_S.len()],
    pub end: Option<Sample>,
    /// Milliseconds after joining from which the true error stayed within
    /// [`CONVERGED_MS`].
    pub converged_ms: Option<f64>,
    pub sent: u64,
    /// Sent during the measured window.
    pub sent_in_window: u64,
    pub answered: u64,
    pub refused: u64,
    pub steps: u64,
    pub unknown_answers: u64,
    pub reports: u64,
}

/// One client's clock and estimator.
pub(crate) struct SyncClient {
    origin: Instant,
    truth_ms: f64,
    /// This client's clock: ours × (1 + drift) + offset.
    start_offset_ms: f64,
    drift: f64,
    joined: Instant,
    est: Estimator,
    next_id: u64,
    pending: VecDeque<(u64, f64, Instant)>,
    next_send: Instant,
    checkpoint: usize,
    last_report: f64,
    out: SyncOutcome,
}

impl SyncClient {
    pub fn new(shared: &SyncShared, rng: &mut Rng, joined: Instant) -> SyncClient {
        let drift = (rng.unit() * 2.0 - 1.0) * shared.drift_ppm * 1e-6;
        SyncClient {
            origin: shared.origin,
            truth_ms: shared.truth_ms,
            start_offset_ms: (rng.unit() * 2.0 - 1.0) * MAX_START_OFFSET_MS,
            drift,
            joined,
            est: Estimator::default(),
            next_id: 0,
            pending: VecDeque::new(),
            next_send: joined,
            checkpoint: 0,
            last_report: f64::NEG_INFINITY,
            out: SyncOutcome {
                at: [None; CHECKPOINTS_S.len()],
                end: None,
                converged_ms: None,
                sent: 0,
                sent_in_window: 0,
                answered: 0,
                refused: 0,
                steps: 0,
                unknown_answers: 0,
                reports: 0,
            },
        }
    }

    /// This client's clock at `at`, milliseconds.
    fn local(&self, at: Instant) -> f64 {
        mono_ms(self.origin, at) * (1.0 + self.drift) + self.start_offset_ms
    }

    /// The estimate's error at `at` against the truth.
    fn sample(&self, e: &Estimate, at: Instant) -> Sample {
        let truth = mono_ms(self.origin, at) + self.truth_ms;
        Sample {
            true_error_ms: e.show_time(self.local(at)) - truth,
            error_ms: e.error_ms,
            bound_ms: e.bound_ms,
            drift_ppm: e.drift_ppm,
        }
    }

    /// Sample the estimate in force and follow convergence.
    fn observe(&mut self, at: Instant) -> Option<Sample> {
        let e = self.est.estimate()?;
        let s = self.sample(&e, at);
        if s.true_error_ms.abs() <= CONVERGED_MS {
            let since = mono_ms(self.joined, at);
            self.out.converged_ms.get_or_insert(since);
        } else {
            self.out.converged_ms = None;
        }
        Some(s)
    }

    /// When the client next has something to do.
    pub fn next_wake(&self) -> Instant {
        match CHECKPOINTS_S.get(self.checkpoint) {
            Some(s) => self
                .next_send
                .min(self.joined + Duration::from_secs_f64(*s)),
            None => self.next_send,
        }
    }

    /// Take the checkpoints that are due; the `sync` frame to send, if one is due
    /// (`in_window`: whether `now` is in the measured window).
    pub fn on_wake(&mut self, now: Instant, in_window: bool) -> Option<String> {
        while let Some(s) = CHECKPOINTS_S.get(self.checkpoint) {
            if now < self.joined + Duration::from_secs_f64(*s) {
                break;
            }
            self.out.at[self.checkpoint] = Some(self.observe(now));
            self.checkpoint += 1;
        }
        if now < self.next_send {
            return None;
        }
        self.next_id += 1;
        let id = self.next_id;
        let t0 = self.local(now);
        while self
            .pending
            .front()
            .is_some_and(|p| now.saturating_duration_since(p.2) > PENDING_FOR)
            || self.pending.len() >= MAX_PENDING
        {
            self.pending.pop_front();
        }
        self.pending.push_back((id, t0, now));
        self.out.sent += 1;
        self.out.sent_in_window += u64::from(in_window);
        self.next_send = now + Duration::from_secs_f64(self.est.next_exchange_in_ms() / 1000.0);
        Some(format!(r#"{{"type":"sync","id":{id},"t0":{t0}}}"#))
    }

    /// An answer read at `now`; returns a `sync_report` frame when one is due, or an
    /// error text when the answer does not parse.
    pub fn on_answer(&mut self, text: &str, now: Instant) -> Result<Option<String>, String> {
        let t3 = self.local(now);
        let a: Answer = serde_json::from_str(text).map_err(|e| format!("a sync answer: {e}"))?;
        let Some(i) =
            a.id.and_then(|id| self.pending.iter().position(|p| p.0 == id))
        else {
            self.out.unknown_answers += 1;
            return Ok(None);
        };
        let (_, t0, _) = self.pending.remove(i).expect("position is in range");
        self.out.answered += 1;
        // The estimate in force until this answer, then the one it gives.
        self.observe(now);
        let added = self.est.add(Exchange {
            t0,
            t1: a.t1,
            t2: a.t2,
            t3,
        });
        self.out.refused = self.est.refused();
        self.out.steps = self.est.steps();
        if added.is_err() {
            return Ok(None);
        }
        self.observe(now);
        let e = self.est.estimate().expect("an exchange was just added");
        if t3 - self.last_report >= REPORT_EVERY_MS && self.est.len() >= REPORT_AFTER {
            self.last_report = t3;
            self.out.reports += 1;
            return Ok(Some(format!(
                r#"{{"type":"sync_report","error_ms":{},"offset_ms":{}}}"#,
                e.error_ms.clamp(0.0, 60_000.0),
                e.offset_ms
            )));
        }
        Ok(None)
    }

    /// The end of the run.
    pub fn finish(mut self, now: Instant) -> SyncOutcome {
        self.out.end = self.observe(now);
        self.out
    }
}

/// Nearest-rank percentiles of the absolute values.
fn spread(values: &mut [f64]) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    for v in values.iter_mut() {
        *v = v.abs();
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    Some(Spread {
        p50: at(50.0),
        p95: at(95.0),
        p99: at(99.0),
        max: values[values.len() - 1],
    })
}

fn at_figures(after_s: Option<f64>, samples: &[Option<Sample>]) -> SyncAt {
    let got: Vec<Sample> = samples.iter().flatten().copied().collect();
    let pick = |f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = got.iter().map(f).collect();
        spread(&mut v)
    };
    SyncAt {
        after_s,
        clients: samples.len() as u64,
        without_estimate: samples.iter().filter(|s| s.is_none()).count() as u64,
        true_error_ms: pick(|s| s.true_error_ms),
        estimated_error_ms: pick(|s| s.error_ms),
        bound_ms: pick(|s| s.bound_ms),
        drift_ppm: pick(|s| s.drift_ppm),
        drift_fitted: got.iter().filter(|s| s.drift_ppm != 0.0).count() as u64,
        within_bound: got
            .iter()
            .filter(|s| s.true_error_ms.abs() <= s.bound_ms)
            .count() as u64,
    }
}

/// The reference's figures (for `--sync` and `--cues` alike).
pub(crate) fn reference_figures(url: &str, reference: &ReferenceOutcome) -> SyncReference {
    let (first, last) = (reference.first, reference.last);
    let overlaps =
        !last.known() || (last.lo <= first.hi && first.lo <= last.hi && last.lo <= last.hi);
    SyncReference {
        url: url.to_string(),
        exchanges: reference.exchanges,
        answered: reference.answered,
        round_trip_min_ms: reference.min_rtt.is_finite().then_some(reference.min_rtt),
        bound_ms: first.bound(),
        later_bound_ms: last.known().then(|| last.bound()),
        later_shift_ms: last.known().then(|| last.mid() - first.mid()),
        consistent: overlaps && reference.problem.is_none(),
        problem: reference.problem.clone(),
    }
}

/// The report's sync figures from every syncing client's outcome and the reference's.
pub(crate) fn figures(
    window_s: f64,
    reference_url: &str,
    drift_ppm: f64,
    outcomes: &[&SyncOutcome],
    reference: &ReferenceOutcome,
) -> SyncFigures {
    let mut at: Vec<SyncAt> = CHECKPOINTS_S
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let samples: Vec<Option<Sample>> = outcomes.iter().filter_map(|o| o.at[i]).collect();
            at_figures(Some(*s), &samples)
        })
        .collect();
    let ends: Vec<Option<Sample>> = outcomes.iter().map(|o| o.end).collect();
    at.push(at_figures(None, &ends));
    let mut times: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.converged_ms.map(|ms| ms / 1000.0))
        .collect();
    let converged = times.len() as u64;
    let sum = |f: fn(&SyncOutcome) -> u64| outcomes.iter().map(|o| f(o)).sum::<u64>();
    let (sent, answered) = (sum(|o| o.sent), sum(|o| o.answered));
    let in_window = sum(|o| o.sent_in_window);
    SyncFigures {
        reference: reference_figures(reference_url, reference),
        drift_ppm_max: drift_ppm,
        clients: outcomes.len() as u64,
        exchanges: SyncExchanges {
            sent,
            sent_in_window: in_window,
            sent_per_s_in_window: in_window as f64 / window_s.max(1e-9),
            answered,
            unanswered: sent.saturating_sub(answered),
            refused: sum(|o| o.refused),
            clock_steps: sum(|o| o.steps),
            unknown_answers: sum(|o| o.unknown_answers),
            reports: sum(|o| o.reports),
        },
        at,
        converged: SyncConvergence {
            threshold_ms: CONVERGED_MS,
            converged,
            not_converged: outcomes.len() as u64 - converged,
            after_s: spread(&mut times),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_holds_the_truth() {
        // Show clock = ours + 1000; trips of 1–3 ms up and down.
        let mut i = Interval::ANY;
        for (t0, up, down) in [(0.0, 3.0, 1.0), (10.0, 1.0, 2.0), (20.0, 2.0, 3.0)] {
            let t1 = t0 + 1000.0 + up;
            let t2 = t1 + 0.1;
            i.narrow(&Exchange {
                t0,
                t1,
                t2,
                t3: t2 - 1000.0 + down,
            });
        }
        assert!(i.lo <= 1000.0 && 1000.0 <= i.hi, "{i:?}");
        assert_eq!((i.hi - 1000.0, 1000.0 - i.lo), (1.0, 1.0));
        assert_eq!(i.mid(), 1000.0);
        assert_eq!(i.bound(), 1.0);
    }

    #[test]
    fn percentiles_are_nearest_rank_of_absolute_values() {
        let mut v: Vec<f64> = (1..=100).map(|i| -(i as f64)).collect();
        let s = spread(&mut v).unwrap();
        assert_eq!((s.p50, s.p95, s.p99, s.max), (50.0, 95.0, 99.0, 100.0));
        assert!(spread(&mut []).is_none());
    }

    #[test]
    fn a_client_converges_on_a_perfect_link_and_reports() {
        let origin = Instant::now();
        let shared = SyncShared {
            origin,
            truth_ms: 5_000.0,
            drift_ppm: 0.0,
        };
        let mut rng = Rng::new(3);
        let mut c = SyncClient::new(&shared, &mut rng, origin);
        let mut now = origin;
        let mut reports = 0;
        let end = origin + Duration::from_secs(12);
        loop {
            now = c.next_wake().max(now);
            if now >= end {
                break;
            }
            if let Some(frame) = c.on_wake(now, true) {
                let f: serde_json::Value = serde_json::from_str(&frame).unwrap();
                // The server answers at once, 0.2 ms each way: show clock = ours + 5000.
                let show = mono_ms(origin, now) + 0.2 + 5_000.0;
                let answer = format!(
                    r#"{{"type":"sync","id":{},"t0":{},"t1":{show},"t2":{}}}"#,
                    f["id"],
                    f["t0"],
                    show + 0.01
                );
                let back = now + Duration::from_micros(410);
                if let Some(r) = c.on_answer(&answer, back).unwrap() {
                    assert!(r.starts_with(r#"{"type":"sync_report""#), "{r}");
                    reports += 1;
                }
            }
        }
        let out = c.finish(end);
        assert!(out.at.iter().all(|s| s.is_some_and(|s| s.is_some())));
        let e = out.end.unwrap();
        assert!(e.true_error_ms.abs() <= e.bound_ms, "{e:?}");
        // Exact from the first answer (0.41 ms after joining): the trips were symmetric.
        assert!(e.true_error_ms.abs() < 1e-6, "{e:?}");
        assert!((out.converged_ms.unwrap() - 0.41).abs() < 1e-9, "{out:?}");
        assert_eq!((out.refused, out.unknown_answers), (0, 0));
        assert_eq!(out.sent, out.answered);
        assert_eq!(reports, 2, "at the 8th exchange, then 5 s later");
        assert_eq!(out.reports, reports);
    }
}
