//! Cues to every phone under load (`--cues`, issue 15): one performer connection sends `cue`
//! frames at a steady rate through the measured window, the server stamps each with a show
//! clock time `at` its lead ahead (the piece's `phone.lead_ms`) and hands it to every
//! audience socket, and every reading client records when it got it.
//!
//! The clock: the server's show clock and this process's monotonic clock are the same kind
//! of clock on one machine, so their difference is one constant, found before the clients
//! start by the reference connection of [`crate::sync`] (its bound is reported). Every client
//! shares this process's clock, so that one estimate serves them all: a cue read at our
//! time `t` arrived at show time `t + truth`, and its margin is `at − (t + truth)`; positive
//! is before its time. The receive time is when the client's task handled the frame, so a
//! generator short of CPU makes margins smaller, never larger.
//!
//! What is kept is bounded whatever the run: one slot of counters per cue the performer
//! can send in the window ([`CueShared::new`] sizes it from the rate and the duration, at
//! most 36,000), two margin histograms (in time, late; 4 significant digits: 0.015 ms at
//! 150 ms) with the exact smallest and largest margins beside them, and per client its last
//! cue id and a count.
//! Cue ids number a show's accepted cues consecutively from 1; ours are the ones from the
//! first cue a client reads after the performer sent its first (`base`), so cues from
//! another performer of the same show during the run are counted apart (`unknown`) only
//! when they fall outside that range: run the benchmark on a show nobody else cues.
//!
//! Must never: allocate per cue frame in a client, keep more than its slots, or treat a
//! late or missing delivery as a failed check (those are the benchmark's figures).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{next_phase, ws_reason, Head, Phase, Ws};
use crate::report::{CueFigures, CueLine, CueMargins, CuePerformer, SyncReference};

/// Most cues one run can send (the fastest rate over the longest window).
pub const MAX_CUES: usize = 36_000;
/// Cues listed one by one in the report (the first ones; the totals count every cue).
pub const MAX_LISTED: usize = 1_000;
/// Largest margin or lateness a histogram holds, microseconds (larger ones are clamped; a
/// lead is at most 10 s).
const MAX_MARGIN_US: u64 = 20_000_000;
/// Significant digits of the margin histograms.
const MARGIN_DIGITS: u8 = 4;
/// Longest wait, after the last cue's lead, for its last deliveries once the window closed.
pub const CUE_SETTLE: Duration = Duration::from_secs(5);

/// Milliseconds on our monotonic clock since `origin`.
fn mono_ms(origin: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(origin).as_secs_f64() * 1000.0
}

/// One cue's deliveries.
struct Slot {
    received: AtomicU64,
    /// Of those, before `at` (margin > 0) when they reached the client's socket.
    before: AtomicU64,
    /// Of those, before `at` when the client's task read them.
    before_read: AtomicU64,
    /// `at` as the first client read it (`f64` bits; `u64::MAX`: none yet).
    at_bits: AtomicU64,
    /// Deliveries whose `at` differed from the first one's.
    at_differs: AtomicU64,
}

/// What the clients and the performer share.
pub(crate) struct CueShared {
    origin: Instant,
    /// `show − ours`, milliseconds, from the reference.
    truth_ms: f64,
    /// Set by the performer just before its first cue.
    started: AtomicBool,
    /// The id of our first cue (`u64::MAX` until a client reads one).
    base: AtomicU64,
    slots: Box<[Slot]>,
    /// Margins of deliveries before their time, microseconds (+1, so that 0 fits).
    early: Mutex<Histogram<u64>>,
    /// How late the others were, microseconds (+1).
    late: Mutex<Histogram<u64>>,
    /// The exact smallest and largest margins, nanoseconds.
    margin_min_ns: AtomicI64,
    margin_max_ns: AtomicI64,
    /// Cue frames read before the performer started, or outside our ids.
    unknown: AtomicU64,
    /// Cue frames whose id was not above the client's last (repeated or out of order).
    out_of_order: AtomicU64,
    /// Cue frames without an id or `at`.
    malformed: AtomicU64,
    /// Reading clients connected now (join adds one, a drop takes it back).
    pub readers: AtomicI64,
    /// When the performer sent its last cue, milliseconds on our clock (0: none yet).
    last_sent_us: AtomicU64,
    /// Cues the server acknowledged.
    acked: AtomicU64,
}

impl CueShared {
    /// Room for `rate` cues a second over `window` (plus a few), at most [`MAX_CUES`].
    pub fn new(origin: Instant, truth_ms: f64, rate: f64, window: Duration) -> CueShared {
        let n = ((rate * window.as_secs_f64()).ceil() as usize + 2).min(MAX_CUES);
        let hist = || Mutex::new(margin_histogram());
        CueShared {
            origin,
            truth_ms,
            started: AtomicBool::new(false),
            base: AtomicU64::new(u64::MAX),
            slots: (0..n)
                .map(|_| Slot {
                    received: AtomicU64::new(0),
                    before: AtomicU64::new(0),
                    before_read: AtomicU64::new(0),
                    at_bits: AtomicU64::new(u64::MAX),
                    at_differs: AtomicU64::new(0),
                })
                .collect(),
            early: hist(),
            late: hist(),
            margin_min_ns: AtomicI64::new(i64::MAX),
            margin_max_ns: AtomicI64::new(i64::MIN),
            unknown: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            readers: AtomicI64::new(0),
            last_sent_us: AtomicU64::new(0),
            acked: AtomicU64::new(0),
        }
    }

    /// Cues the server acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Relaxed)
    }

    /// Cues the performer may send (the slots).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Deliveries counted so far, over every slot.
    pub fn received(&self) -> u64 {
        self.slots.iter().map(|s| s.received.load(Relaxed)).sum()
    }

    /// Whether the last cue's deliveries may still come: every reading client has not yet
    /// got every acknowledged cue, and the last cue's time plus [`CUE_SETTLE`] is ahead.
    pub fn pending(&self, lead_ms: f64, now: Instant) -> bool {
        let last_us = self.last_sent_us.load(Relaxed);
        if last_us == 0 {
            return false;
        }
        let readers = self.readers.load(Relaxed).max(0) as u64;
        let want = self.acked.load(Relaxed).saturating_mul(readers);
        let until = self.origin
            + Duration::from_micros(last_us)
            + Duration::from_secs_f64(lead_ms.max(0.0) / 1000.0)
            + CUE_SETTLE;
        self.received() < want && now < until
    }

    /// A `cue` frame that reached a client's socket at `reached` (the kernel's stamp) and
    /// that the client read at `read`; `last_id` is that client's last cue id (0: none),
    /// updated. Returns whether it was one of ours. The margins are the arrival's.
    pub fn record(
        &self,
        head: &Head<'_>,
        reached: Instant,
        read: Instant,
        last_id: &mut u64,
    ) -> bool {
        let (Some(id), Some(at)) = (head.id, head.at.filter(|a| a.is_finite())) else {
            self.malformed.fetch_add(1, Relaxed);
            return false;
        };
        if id <= *last_id {
            self.out_of_order.fetch_add(1, Relaxed);
            return false;
        }
        *last_id = id;
        if !self.started.load(Relaxed) {
            self.unknown.fetch_add(1, Relaxed);
            return false;
        }
        let base = match self.base.compare_exchange(u64::MAX, id, Relaxed, Relaxed) {
            Ok(_) => id,
            Err(b) => b,
        };
        let Some(slot) = id
            .checked_sub(base)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.slots.get(i))
        else {
            self.unknown.fetch_add(1, Relaxed);
            return false;
        };
        let arrival = mono_ms(self.origin, reached) + self.truth_ms;
        let margin_ms = at - arrival;
        slot.received.fetch_add(1, Relaxed);
        if margin_ms > 0.0 {
            slot.before.fetch_add(1, Relaxed);
        }
        if at > mono_ms(self.origin, read) + self.truth_ms {
            slot.before_read.fetch_add(1, Relaxed);
        }
        match slot
            .at_bits
            .compare_exchange(u64::MAX, at.to_bits(), Relaxed, Relaxed)
        {
            Ok(_) => {}
            Err(first) if first == at.to_bits() => {}
            Err(_) => {
                slot.at_differs.fetch_add(1, Relaxed);
            }
        }
        let ns = (margin_ms * 1e6).clamp(-1e15, 1e15) as i64;
        self.margin_min_ns.fetch_min(ns, Relaxed);
        self.margin_max_ns.fetch_max(ns, Relaxed);
        let hist = if margin_ms > 0.0 {
            &self.early
        } else {
            &self.late
        };
        let us = (margin_ms.abs() * 1000.0).min(MAX_MARGIN_US as f64) as u64 + 1;
        hist.lock()
            .unwrap_or_else(|p| p.into_inner())
            .saturating_record(us);
        true
    }
}

/// What the performer connection did.
pub(crate) struct PerformerOutcome {
    /// Cues per second asked for.
    pub rate: f64,
    pub voices: Vec<String>,
    pub lead_ms: f64,
    pub sent: u64,
    pub acked: u64,
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Why it stopped early, if it did.
    pub problem: Option<String>,
}

/// The performer: joined, with the voices to cycle through and the piece's lead.
pub(crate) struct Performer {
    ws: Ws,
    voices: Vec<String>,
    lead_ms: f64,
    rate: f64,
    /// Per seq (from 1): 0 unanswered, 1 acknowledged, 2 refused.
    answers: Vec<u8>,
    /// The lowest seq not yet answered.
    low: usize,
    out: PerformerOutcome,
}

impl PerformerOutcome {
    /// The outcome of a performer that did not stop in time: what the shared counters say.
    pub fn stuck(rate: f64, voices: Vec<String>, lead_ms: f64, shared: &CueShared) -> Self {
        PerformerOutcome {
            rate,
            voices,
            lead_ms,
            sent: shared.acked(),
            acked: shared.acked(),
            refused: Default::default(),
            problem: Some("the performer did not stop in time".into()),
        }
    }
}

impl Performer {
    /// A performer over `ws` (joined as a performer) sending `voices` in turn.
    pub fn new(ws: Ws, voices: Vec<String>, lead_ms: f64, rate: f64) -> Performer {
        Performer {
            ws,
            voices: voices.clone(),
            lead_ms,
            rate,
            answers: Vec::new(),
            low: 1,
            out: PerformerOutcome {
                rate,
                voices,
                lead_ms,
                sent: 0,
                acked: 0,
                refused: Default::default(),
                problem: None,
            },
        }
    }

    /// The piece's lead, milliseconds.
    pub fn lead_ms(&self) -> f64 {
        self.lead_ms
    }

    /// The voices it cues in turn.
    pub fn voices(&self) -> &[String] {
        &self.voices
    }

    /// Cues per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Read a frame from the server: acks and refusals of our cues; everything else
    /// (states, stats) is read and dropped.
    fn on_text(&mut self, text: &str, shared: &CueShared) {
        let Ok(head) = serde_json::from_str::<Head<'_>>(text) else {
            return;
        };
        match head.kind.as_ref() {
            "ack" => {
                let Some(seq) = head.seq.and_then(|s| usize::try_from(s).ok()) else {
                    return;
                };
                let upto = seq.min(self.answers.len());
                while self.low <= upto {
                    if self.answers[self.low - 1] == 0 {
                        self.answers[self.low - 1] = 1;
                        self.out.acked += 1;
                        shared.acked.fetch_add(1, Relaxed);
                    }
                    self.low += 1;
                }
            }
            "error" => {
                let code = head.code.as_deref().unwrap_or("unknown").to_string();
                if let Some(a) = head
                    .seq
                    .and_then(|s| usize::try_from(s).ok())
                    .and_then(|s| s.checked_sub(1))
                    .and_then(|i| self.answers.get_mut(i))
                {
                    if *a == 0 {
                        *a = 2;
                    }
                }
                *self.out.refused.entry(code).or_insert(0) += 1;
            }
            _ => {}
        }
    }

    /// Send cues through the measured window (from `Steady` until `Settle`), then keep
    /// reading the answers until `Stop`.
    pub async fn run(
        mut self,
        shared: Arc<CueShared>,
        rx: watch::Receiver<Phase>,
    ) -> PerformerOutcome {
        let mut phase = Box::pin(next_phase(rx));
        let period = Duration::from_secs_f64(1.0 / self.rate);
        let mut timer = tokio::time::interval(period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sending = false;
        let capacity = shared.capacity() as u64;
        loop {
            tokio::select! {
                biased;
                (rx, p) = &mut phase => {
                    match p {
                        Phase::Steady => {
                            sending = true;
                            timer.reset_immediately();
                        }
                        Phase::Settle => sending = false,
                        Phase::Stop => break,
                        Phase::Ramp => {}
                    }
                    phase = Box::pin(next_phase(rx));
                },
                msg = self.ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => self.on_text(t.as_str(), &shared),
                    Some(Ok(Message::Close(_))) | None => {
                        self.out.problem = Some("performer: closed by the server".into());
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        self.out.problem = Some(format!("performer: {}", ws_reason(&e)));
                        break;
                    }
                },
                _ = timer.tick(), if sending && self.out.sent < capacity => {
                    let seq = self.out.sent + 1;
                    let voice = &self.voices[(self.out.sent % self.voices.len() as u64) as usize];
                    let voice = serde_json::to_string(voice).expect("strings serialise");
                    let frame = format!(r#"{{"type":"cue","voice":{voice},"seq":{seq}}}"#);
                    shared.started.store(true, Relaxed);
                    let now = Instant::now();
                    if let Err(e) = self.ws.send(Message::text(frame)).await {
                        self.out.problem = Some(format!("performer: {}", ws_reason(&e)));
                        break;
                    }
                    self.out.sent = seq;
                    self.answers.push(0);
                    let us = now.saturating_duration_since(shared.origin).as_micros().max(1);
                    shared.last_sent_us.store(us as u64, Relaxed);
                },
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
        self.out
    }
}

/// What one reading client got.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientCues {
    /// Our cues it received.
    pub received: u64,
}

fn margin_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MARGIN_US + 1, MARGIN_DIGITS)
        .expect("static histogram bounds")
}

/// The margin, milliseconds, below which a share `q` of the deliveries fall (nearest rank,
/// from the smallest): the late ones first (the latest first), then those in time.
fn margin_quantile(early: &Histogram<u64>, late: &Histogram<u64>, q: f64) -> f64 {
    let (e, l) = (early.len(), late.len());
    let n = e + l;
    if n == 0 {
        return 0.0;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let ms = |us: u64| us.saturating_sub(1) as f64 / 1000.0;
    if rank <= l {
        // The rank-th latest of the late ones.
        let from_top = (l - rank + 1) as f64 / l as f64;
        -ms(late.value_at_quantile(from_top))
    } else {
        ms(early.value_at_quantile((rank - l) as f64 / e as f64))
    }
}

/// `part / whole`, percent (0 when `whole` is).
fn pct(part: u64, whole: u64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64 * 100.0
    } else {
        0.0
    }
}

/// The report's cue figures.
pub(crate) fn figures(
    shared: &CueShared,
    performer: &PerformerOutcome,
    reference: SyncReference,
    clients: &[ClientCues],
) -> CueFigures {
    let cues = performer.acked.min(shared.slots.len() as u64) as usize;
    let readers = clients.len() as u64;
    let base = shared.base.load(Relaxed);
    let ours = &shared.slots[..cues];
    // Deliveries of ids past the acknowledged cues are not ours.
    let beyond: u64 = shared.slots[cues..]
        .iter()
        .map(|s| s.received.load(Relaxed))
        .sum();
    let received: u64 = ours.iter().map(|s| s.received.load(Relaxed)).sum();
    let before: u64 = ours.iter().map(|s| s.before.load(Relaxed)).sum();
    let before_read: u64 = ours.iter().map(|s| s.before_read.load(Relaxed)).sum();
    let expected = cues as u64 * readers;
    let early = shared.early.lock().unwrap_or_else(|p| p.into_inner());
    let late = shared.late.lock().unwrap_or_else(|p| p.into_inner());
    let (min_ns, max_ns) = (
        shared.margin_min_ns.load(Relaxed),
        shared.margin_max_ns.load(Relaxed),
    );
    let margin_ms = (min_ns <= max_ns).then(|| {
        let (min, max) = (min_ns as f64 / 1e6, max_ns as f64 / 1e6);
        // Within the exact extremes, so that a bucket's width never shows as a margin
        // beyond them.
        let at = |q: f64| margin_quantile(&early, &late, q).clamp(min, max);
        CueMargins {
            p50: at(0.50),
            p5: at(0.05),
            p1: at(0.01),
            min,
            max,
        }
    });
    let lines: Vec<CueLine> = ours
        .iter()
        .enumerate()
        .take(MAX_LISTED)
        .map(|(i, s)| {
            let received = s.received.load(Relaxed);
            let before = s.before.load(Relaxed);
            let at = s.at_bits.load(Relaxed);
            CueLine {
                id: (base != u64::MAX).then(|| base + i as u64),
                at_ms: (at != u64::MAX).then(|| f64::from_bits(at)),
                received,
                before,
                late: received.saturating_sub(before),
                missing: readers.saturating_sub(received),
            }
        })
        .collect();
    CueFigures {
        performer: CuePerformer {
            rate: performer.rate,
            voices: performer.voices.clone(),
            lead_ms: performer.lead_ms,
            sent: performer.sent,
            acked: performer.acked,
            refused: performer.refused.clone(),
            problem: performer.problem.clone(),
        },
        reference,
        clients: readers,
        expected,
        received,
        before,
        late: received.saturating_sub(before),
        missing: expected.saturating_sub(received),
        before_pct: pct(before, expected),
        before_read,
        before_read_pct: pct(before_read, expected),
        margin_ms,
        cues_complete: ours
            .iter()
            .filter(|s| s.received.load(Relaxed) >= readers)
            .count() as u64,
        clients_complete: clients.iter().filter(|c| c.received >= cues as u64).count() as u64,
        at_differs: ours.iter().map(|s| s.at_differs.load(Relaxed)).sum(),
        unknown: shared.unknown.load(Relaxed) + beyond,
        out_of_order: shared.out_of_order.load(Relaxed),
        malformed: shared.malformed.load(Relaxed),
        listed: lines.len() as u64,
        per_cue: lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(id: u64, at: f64) -> Head<'static> {
        Head {
            kind: "cue".into(),
            tick: None,
            seq: None,
            code: None,
            rate: None,
            id: Some(id),
            at: Some(at),
        }
    }

    #[test]
    fn deliveries_are_counted_per_cue_with_their_margins() {
        let origin = Instant::now();
        // Show clock = ours + 1000 ms.
        let s = CueShared::new(origin, 1000.0, 2.0, Duration::from_secs(1));
        assert_eq!(s.capacity(), 4);
        let mut last = 0;
        // Before the performer starts: not ours.
        assert!(!s.record(&head(7, 1500.0), origin, origin, &mut last));
        s.started.store(true, Relaxed);
        // Cue 8 due at show 1150 (ours 150): read at ours 100 → 50 ms early.
        let at = |ms: u64| origin + Duration::from_millis(ms);
        // Reached its socket at ours 100 (50 ms early), read at 140 (still early).
        assert!(s.record(&head(8, 1150.0), at(100), at(140), &mut last));
        let mut other = 0;
        assert!(
            s.record(&head(8, 1150.0), at(160), at(160), &mut other),
            "late by 10 ms"
        );
        assert!(
            !s.record(&head(8, 1150.0), at(170), at(170), &mut other),
            "a repeat"
        );
        // In time at the socket, read 10 ms after its time.
        assert!(s.record(&head(9, 1650.0), at(600), at(660), &mut other));
        assert!(
            !s.record(&head(40, 9000.0), at(700), at(700), &mut other),
            "beyond the slots"
        );
        let performer = PerformerOutcome {
            rate: 2.0,
            voices: vec!["chime".into()],
            lead_ms: 150.0,
            sent: 2,
            acked: 2,
            refused: Default::default(),
            problem: None,
        };
        let clients = [ClientCues { received: 1 }, ClientCues { received: 2 }];
        let reference = SyncReference {
            url: "ws://x/".into(),
            exchanges: 20,
            answered: 20,
            round_trip_min_ms: Some(0.02),
            bound_ms: 0.01,
            later_bound_ms: None,
            later_shift_ms: None,
            consistent: true,
            problem: None,
        };
        let f = figures(&s, &performer, reference, &clients);
        assert!(!f.consistent(), "a cue read twice by one client is");
        assert_eq!(
            (f.expected, f.received, f.before, f.late, f.missing),
            (4, 3, 2, 1, 1)
        );
        assert_eq!((f.unknown, f.out_of_order, f.malformed), (2, 1, 0));
        assert_eq!((f.cues_complete, f.clients_complete), (1, 1));
        assert_eq!(f.before_pct, 50.0);
        assert_eq!((f.before_read, f.before_read_pct), (1, 25.0));
        let m = f.margin_ms.unwrap();
        assert!((m.max - 50.0).abs() < 0.05, "{m:?}");
        assert!((m.min + 10.0).abs() < 0.05, "{m:?}");
        assert!(m.min <= m.p1 && m.p1 <= m.p5 && m.p5 <= m.p50 && m.p50 <= m.max);
        // Three deliveries: −10, 50, 50 ms; the 1st percentile is the late one.
        assert!(
            (m.p1 + 10.0).abs() < 0.01 && (m.p50 - 50.0).abs() < 0.01,
            "{m:?}"
        );
        assert_eq!(f.per_cue.len(), 2);
        assert_eq!(f.per_cue[0].id, Some(8));
        assert_eq!(f.per_cue[0].at_ms, Some(1150.0));
        assert_eq!((f.per_cue[0].received, f.per_cue[0].late), (2, 1));
        assert_eq!((f.per_cue[1].received, f.per_cue[1].missing), (1, 1));
    }
}
