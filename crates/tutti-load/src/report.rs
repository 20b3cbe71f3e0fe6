//! The result of a run: plain data with public fields, a table for people, JSON for
//! machines, and the correctness checks a smoke test asserts.
//!
//! Must never: measure anything (the coordinator fills it in) or judge timing in
//! [`Report::problems`] (timing goals belong to benchmarks, not to pass/fail checks).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::calibrate::Floor;

/// What was asked for.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Asked {
    /// Clients.
    pub clients: u32,
    /// Connections per second while ramping.
    pub ramp: f64,
    /// Inputs per second per moving client.
    pub rate: f64,
    /// Fraction of moving clients.
    pub moving: f64,
    /// Fraction of inputs that are votes.
    pub votes: f64,
    /// Fraction of slow readers.
    pub slow: f64,
    /// Steady phase, seconds.
    pub duration_s: f64,
    /// Source addresses used (0: the system picked).
    pub source_addrs: usize,
    /// Threads running the clients.
    pub threads: usize,
    /// Garbage clients.
    pub garbage: u32,
    /// Garbage frames per second per garbage client.
    pub garbage_rate: f64,
    /// Silent clients.
    pub silent: u32,
    /// Churners.
    pub churn: u32,
    /// Connections per second per churner.
    pub churn_rate: f64,
}

/// How long each phase took.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Phases {
    /// From the first connection attempt to the last one resolved, seconds.
    pub ramp_s: f64,
    /// The measured window, seconds.
    pub window_s: f64,
    /// Waiting for the last acks after inputs stopped, seconds.
    pub settle_s: f64,
    /// The whole run, seconds.
    pub total_s: f64,
    /// The window was cut short by `--max-duration`.
    pub truncated: bool,
}

/// Connections.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Clients {
    /// Clients asked for.
    pub asked: u32,
    /// Joined (got `welcome`).
    pub connected: u64,
    /// Never joined.
    pub failed: u64,
    /// Joined, then lost before the end.
    pub dropped: u64,
    /// Moving clients (send inputs).
    pub moving: u64,
    /// Clients that only read.
    pub idle: u64,
    /// Slow readers.
    pub slow: u64,
    /// Failures to join, by reason.
    pub failures: BTreeMap<String, u64>,
    /// Drops after joining, by reason.
    pub drops: BTreeMap<String, u64>,
}

/// Inputs during the window (and in total).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Inputs {
    /// Sent in the window.
    pub sent: u64,
    /// Sent per second in the window.
    pub sent_per_s: f64,
    /// Of those, acknowledged (covered by an ack).
    pub acked: u64,
    /// Acknowledged per second.
    pub acked_per_s: f64,
    /// Answered with an error frame (whole run).
    pub rejected: u64,
    /// Sent over the whole run.
    pub sent_total: u64,
    /// Acknowledged over the whole run.
    pub acked_total: u64,
    /// Inputs dropped from latency tracking (too many in flight at once).
    pub untracked: u64,
}

/// State frames received in the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct States {
    /// The piece's state rate from `welcome`.
    pub state_hz: f64,
    /// Mean states per second per client (moving and idle clients).
    pub per_client_mean: f64,
    /// Lowest client.
    pub per_client_min: f64,
    /// Highest client.
    pub per_client_max: f64,
    /// Received / (clients × window × state_hz), in percent.
    pub delivered_pct: f64,
    /// Mean states per second per slow reader.
    pub slow_per_client_mean: f64,
    /// Lowest `rate` the server announced in a state during the window.
    pub server_rate_min: Option<f64>,
    /// Last `rate` the server announced.
    pub server_rate_last: Option<f64>,
    /// States received over the whole run.
    pub received_total: u64,
}

/// Input→state latency over inputs sent in the window, milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    /// Inputs measured.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// The summary of a histogram of microseconds.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            samples: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// Frames received.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Frames {
    /// Text frames received (whole run).
    pub received: u64,
    /// Frames that did not parse or were unexpected.
    pub parse_failures: u64,
    /// A few of them.
    pub examples: Vec<String>,
}

/// Ack consistency.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Acks {
    /// Moving clients checked (joined and not dropped).
    pub checked: u64,
    /// Of those, clients whose last ack seq differs from their last sent seq after settling.
    pub mismatched: u64,
    /// Acks beyond the last sent seq or going backwards, state ticks going backwards.
    pub anomalies: u64,
    /// Inputs in the window whose ack is dated before they were sent: the server's clock
    /// is behind this machine's, and `applied` leaves them out.
    pub clock_behind: u64,
}

/// Clients that join, then send garbage frames.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Garbage {
    /// Garbage clients asked for.
    pub asked: u32,
    /// Garbage frames per second asked of each.
    pub rate: f64,
    /// Joined.
    pub connected: u64,
    /// Never joined.
    pub failed: u64,
    /// Joined, then lost before the end (the server must not disconnect them).
    pub dropped: u64,
    /// Ended with a complete close handshake.
    pub closed_cleanly: u64,
    /// Garbage frames sent over the whole run.
    pub sent: u64,
    /// Garbage frames sent per second in the window (all garbage clients together).
    pub sent_per_s: f64,
    /// Garbage frames sent, by kind.
    pub sent_by_kind: BTreeMap<String, u64>,
    /// The error code each kind sent should be answered with.
    pub expected: BTreeMap<String, String>,
    /// Error frames received, by code.
    pub errors: BTreeMap<String, u64>,
    /// Garbage frames not answered by an error frame (the server's per-connection error
    /// budget, or rate-limited inputs dropped without notice).
    pub unanswered: u64,
    /// Error frames whose code no garbage kind should cause.
    pub unexpected: u64,
    /// State frames received meanwhile.
    pub states: u64,
    /// Frames that were neither state nor error (acks, pongs).
    pub other_frames: u64,
    /// Frames that did not parse.
    pub unparseable: u64,
    /// Failures to join, by reason.
    pub failures: BTreeMap<String, u64>,
    /// Drops after joining, by reason.
    pub drops: BTreeMap<String, u64>,
}

/// Clients that join and never read.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Silent {
    /// Silent clients asked for.
    pub asked: u32,
    /// Joined.
    pub connected: u64,
    /// Never joined.
    pub failed: u64,
    /// Lost before or while closing.
    pub dropped: u64,
    /// Ended with a complete close handshake.
    pub closed_cleanly: u64,
    /// Frames waiting unread when they finally read, at the end (all silent clients).
    pub unread_frames: u64,
    /// Bytes of those frames, MiB.
    pub unread_mib: f64,
    /// Failures to join, by reason.
    pub failures: BTreeMap<String, u64>,
    /// Drops, by reason.
    pub drops: BTreeMap<String, u64>,
}

/// Clients that open, join and close in a loop.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Churn {
    /// Churners asked for.
    pub asked: u32,
    /// Connections per second asked of each.
    pub rate: f64,
    /// Connections attempted over the whole run.
    pub attempts: u64,
    /// Of those, joined (got `welcome`).
    pub joined: u64,
    /// Joins per second in the window (all churners together).
    pub joined_per_s: f64,
    /// Attempts that failed to connect or join, or to close cleanly.
    pub failed: u64,
    /// Joined connections that ended with a complete close handshake.
    pub closed_cleanly: u64,
    /// Failures, by reason.
    pub failures: BTreeMap<String, u64>,
}

/// The attackers run alongside the honest clients; none of their figures is in the
/// honest clients' sections.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Attackers {
    /// Garbage senders.
    pub garbage: Garbage,
    /// Clients that never read.
    pub silent: Silent,
    /// Connection churners.
    pub churn: Churn,
}

impl Attackers {
    /// Whether the server handled the attackers as it should: every garbage client and
    /// silent client joined, no garbage client was disconnected, garbage got only the
    /// error codes it should (and some error frames at all), and every churn attempt
    /// joined and closed.
    pub fn handled(&self) -> bool {
        self.problems().is_empty()
    }

    /// What went wrong with the attackers, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let g = &self.garbage;
        if g.connected != u64::from(g.asked) || g.dropped > 0 {
            out.push(format!(
                "garbage clients: {} of {} joined ({}), {} dropped ({})",
                g.connected,
                g.asked,
                map_line(&g.failures),
                g.dropped,
                map_line(&g.drops)
            ));
        }
        if g.unexpected > 0 {
            out.push(format!(
                "garbage clients got {} error frames of unexpected codes: {}",
                g.unexpected,
                map_line(&g.errors)
            ));
        }
        if g.sent > 0 && g.errors.is_empty() {
            out.push(format!(
                "garbage clients sent {} frames and got no error frame back",
                g.sent
            ));
        }
        let s = &self.silent;
        if s.connected != u64::from(s.asked) {
            out.push(format!(
                "silent clients: {} of {} joined ({})",
                s.connected,
                s.asked,
                map_line(&s.failures)
            ));
        }
        let c = &self.churn;
        if c.failed > 0 || (c.asked > 0 && c.joined == 0) {
            out.push(format!(
                "churners: {} of {} attempts failed ({})",
                c.failed,
                c.attempts,
                map_line(&c.failures)
            ));
        }
        out
    }
}

/// A process's CPU and memory over the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcessFigures {
    /// Process id.
    pub pid: u32,
    /// CPU seconds used in the window (user + system, all threads).
    pub cpu_s: f64,
    /// CPU used as a percentage of one core (200 % = two cores busy).
    pub cpu_pct: f64,
    /// Resident memory at the start of the window, MiB.
    pub rss_start_mib: f64,
    /// Resident memory at the end of the window, MiB.
    pub rss_end_mib: f64,
    /// Highest resident memory seen (sampled once a second), MiB.
    pub rss_max_mib: f64,
}

/// The calibration result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Calibration {
    /// The raw floor.
    pub floor: Floor,
    /// Messages the server handled in the window: inputs received plus states sent.
    pub server_messages: u64,
    /// Server CPU microseconds per message.
    pub server_us_per_message: f64,
    /// `server_us_per_message / floor.us_per_message`.
    pub ratio: f64,
}

/// Four figures of a distribution of absolute values (nearest rank).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The reference connection that found the true show clock (`--sync`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncReference {
    /// Where it connected.
    pub url: String,
    /// `sync` frames it sent over the whole run.
    pub exchanges: u64,
    /// Of those, answered.
    pub answered: u64,
    /// Its fastest round trip, milliseconds.
    pub round_trip_min_ms: Option<f64>,
    /// How far the truth used for every client may be off, milliseconds: half what is left
    /// of the interval its first exchanges bound the show clock to.
    pub bound_ms: f64,
    /// The same from its exchanges during the run alone.
    pub later_bound_ms: Option<f64>,
    /// The truth from its exchanges during the run minus the one used, milliseconds.
    pub later_shift_ms: Option<f64>,
    /// Its exchanges all agree on one offset (their bounds overlap) and it ran to the end.
    pub consistent: bool,
    /// Why it stopped early, if it did.
    pub problem: Option<String>,
}

/// Sync exchanges of all clients over the whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncExchanges {
    /// `sync` frames sent.
    pub sent: u64,
    /// Of those, sent during the measured window.
    pub sent_in_window: u64,
    /// Per second in the window (what the server's CPU over the window paid for).
    pub sent_per_s_in_window: f64,
    /// Answered.
    pub answered: u64,
    /// Never answered (lost, refused, or still in flight at the end).
    pub unanswered: u64,
    /// Answers the estimators refused.
    pub refused: u64,
    /// Clock steps the estimators saw (each starts a window afresh; none expected).
    pub clock_steps: u64,
    /// Answers to no exchange the client was waiting for.
    pub unknown_answers: u64,
    /// `sync_report` frames sent.
    pub reports: u64,
}

/// The clients' estimates at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncAt {
    /// Seconds after each client joined; absent for the end of the run.
    pub after_s: Option<f64>,
    /// Clients that reached this moment.
    pub clients: u64,
    /// Of those, clients without an estimate yet.
    pub without_estimate: u64,
    /// |estimated show time − true show time|, milliseconds.
    pub true_error_ms: Option<Spread>,
    /// The estimators' own error figure (`Estimate::error_ms`).
    pub estimated_error_ms: Option<Spread>,
    /// The estimators' worst case (`Estimate::bound_ms`).
    pub bound_ms: Option<Spread>,
    /// |The drift the estimators fitted|, parts per million (compare with
    /// `drift_ppm_max`, the largest drift the clocks really have).
    pub drift_ppm: Option<Spread>,
    /// Clients whose estimator had fitted a drift.
    pub drift_fitted: u64,
    /// Clients whose true error was within their estimator's bound.
    pub within_bound: u64,
}

/// When the clients' true error came within the threshold for good.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncConvergence {
    /// Milliseconds.
    pub threshold_ms: f64,
    /// Clients whose true error stayed within the threshold from some moment to the end.
    pub converged: u64,
    /// Clients for whom it did not.
    pub not_converged: u64,
    /// Seconds after joining at which the converged clients did.
    pub after_s: Option<Spread>,
}

/// Clock sync under load (`--sync`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncFigures {
    /// The reference that gave the truth.
    pub reference: SyncReference,
    /// The largest drift given to a client's clock, parts per million.
    pub drift_ppm_max: f64,
    /// Clients that ran clock sync (every client that joined, slow readers excepted).
    pub clients: u64,
    /// Their exchanges.
    pub exchanges: SyncExchanges,
    /// At 1, 2, 3, 5 and 10 s after joining, and at the end.
    pub at: Vec<SyncAt>,
    /// Convergence.
    pub converged: SyncConvergence,
}

impl SyncFigures {
    /// Nothing went wrong that is not a matter of timing: the reference is consistent,
    /// every answer was accepted, and every client has an estimate at the end.
    pub fn consistent(&self) -> bool {
        self.reference.consistent
            && self.exchanges.refused == 0
            && self.exchanges.unknown_answers == 0
            && self.at.last().is_some_and(|end| end.without_estimate == 0)
    }
}

/// The performer connection that sent the cues (`--cues`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CuePerformer {
    /// Cues per second asked for.
    pub rate: f64,
    /// The voices it cued, in turn.
    pub voices: Vec<String>,
    /// The piece's lead (`welcome`'s `phone.lead_ms`): how far ahead of its time each cue
    /// is sent, milliseconds.
    pub lead_ms: f64,
    /// `cue` frames sent (in the measured window).
    pub sent: u64,
    /// Of those, acknowledged by the server (each then went to every audience socket).
    pub acked: u64,
    /// Refusals, by error code.
    pub refused: BTreeMap<String, u64>,
    /// Why it stopped early, if it did.
    pub problem: Option<String>,
}

/// A distribution of margins (`at` − arrival, show clock; negative is late), milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CueMargins {
    /// Median.
    pub p50: f64,
    /// 5th percentile (95 % of deliveries had more).
    pub p5: f64,
    /// 1st percentile.
    pub p1: f64,
    /// Smallest.
    pub min: f64,
    /// Largest (at most the lead, give or take the reference's bound).
    pub max: f64,
}

/// One cue's deliveries.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CueLine {
    /// The show's cue id (absent when no client got it).
    pub id: Option<u64>,
    /// Its time, show clock, milliseconds (absent when no client got it).
    pub at_ms: Option<f64>,
    /// Clients that received it.
    pub received: u64,
    /// Of those, before `at`.
    pub before: u64,
    /// Of those, at or after `at`.
    pub late: u64,
    /// Reading clients that never received it.
    pub missing: u64,
}

/// Cues to every phone (`--cues`): did each reach every client before its time?
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CueFigures {
    /// The performer connection.
    pub performer: CuePerformer,
    /// The reference that maps this machine's clock to the show clock for every client;
    /// every margin may be off by up to its `bound_ms`.
    pub reference: SyncReference,
    /// Reading clients that joined (slow readers, which read one frame a second, excepted).
    pub clients: u64,
    /// Acknowledged cues × those clients.
    pub expected: u64,
    /// Deliveries received.
    pub received: u64,
    /// Of those, before their time.
    pub before: u64,
    /// Of those, at or after their time.
    pub late: u64,
    /// Deliveries never received (`expected − received`; a client that dropped misses the
    /// cues after it left).
    pub missing: u64,
    /// `before / expected`, percent: the share of deliveries that came in time (reached the
    /// client's socket before their time: the kernel's receive stamp).
    pub before_pct: f64,
    /// Deliveries this generator's client tasks *read* before their time (a reading thread
    /// shared by thousands of clients reads them later than a phone would).
    pub before_read: u64,
    /// `before_read / expected`, percent.
    pub before_read_pct: f64,
    /// Margins of the deliveries received (absent when none was).
    pub margin_ms: Option<CueMargins>,
    /// Cues that every client received.
    pub cues_complete: u64,
    /// Clients that received every cue.
    pub clients_complete: u64,
    /// Deliveries whose `at` differed from another client's for the same cue.
    pub at_differs: u64,
    /// Cue frames that were not ours (read before the performer's first cue, or with an id
    /// past the cues it sent: another performer cued the show).
    pub unknown: u64,
    /// Cue frames whose id was not above the client's previous one.
    pub out_of_order: u64,
    /// Cue frames without an `id` or a finite `at`.
    pub malformed: u64,
    /// Cues in `per_cue`.
    pub listed: u64,
    /// The first cues (at most 1,000), one by one.
    pub per_cue: Vec<CueLine>,
}

impl CueFigures {
    /// Nothing went wrong that is not a matter of timing: the reference is consistent, the
    /// performer ran to the end and every cue it sent was acknowledged, and every client
    /// read each cue once, in order, with the same `at`. Late and missing deliveries are
    /// the benchmark's figures, not failed checks.
    pub fn consistent(&self) -> bool {
        let p = &self.performer;
        self.reference.consistent
            && p.problem.is_none()
            && p.refused.is_empty()
            && p.acked == p.sent
            && self.at_differs == 0
            && self.out_of_order == 0
            && self.malformed == 0
    }
}

/// Chat in the show's room (`--chat-senders`): every delivery checked against the room's
/// sequence and timed from post to delivery.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatFigures {
    /// Clients that posted.
    pub senders: u32,
    /// Messages per second asked for, in all.
    pub rate: f64,
    /// Posts sent.
    pub posted: u64,
    /// Posts acknowledged (`chat_ack`, after the commit).
    pub acked: u64,
    /// Acks that said `duplicate` (the generator never retries, so none should).
    pub duplicate_acks: u64,
    /// Chat error frames, by code.
    pub refused: BTreeMap<String, u64>,
    /// The room's last acknowledged `room_seq` (with `--chat-rooms`, the highest of any room).
    pub last_seq: u64,
    /// Clients that followed the room.
    pub followers: u64,
    /// Events read in order, in all.
    pub deliveries: u64,
    /// Messages posted in the window and delivered in it.
    pub deliveries_in_window: u64,
    /// `deliveries_in_window` per second of the window.
    pub deliveries_per_s: f64,
    /// Post → delivery (read by the follower's task), milliseconds (absent when nothing was
    /// delivered in the window).
    pub latency_ms: Option<Spread>,
    /// Post → arrival at the follower's socket (the kernel's receive stamp), milliseconds.
    pub arrival_ms: Option<Spread>,
    /// Deliveries timed.
    pub latency_samples: u64,
    /// `room_seq`s skipped (never read) by followers.
    pub gaps: u64,
    /// Events read twice, or out of order.
    pub duplicates: u64,
    /// Chat frames the generator could not read.
    pub malformed: u64,
    /// Followers that read up to `last_seq`.
    pub followers_complete: u64,
    /// Followers still connected that had not.
    pub followers_incomplete: u64,
    /// Followers that dropped before the end.
    pub followers_dropped: u64,
}

impl ChatFigures {
    /// Every post answered and acknowledged once, no gap, no duplicate, nothing unreadable,
    /// every follower still connected caught up to the end. Latency is the benchmark's figure.
    pub fn consistent(&self) -> bool {
        self.refused.is_empty()
            && self.acked == self.posted
            && self.duplicate_acks == 0
            && self.gaps == 0
            && self.duplicates == 0
            && self.malformed == 0
            && self.followers_incomplete == 0
    }

    fn table(&self, t: &mut String) {
        let refused = if self.refused.is_empty() {
            String::new()
        } else {
            format!(", refused {}", map_line(&self.refused))
        };
        let _ = writeln!(
            t,
            "  chat        {} senders at {}/s in all: {} posted, {} acknowledged{refused}; room at seq {}",
            thousands(u64::from(self.senders)),
            self.rate,
            thousands(self.posted),
            thousands(self.acked),
            thousands(self.last_seq)
        );
        let lat = self.latency_ms.map_or("-".to_string(), |l| {
            format!(
                "p50 {:.1} ms, p95 {:.1}, p99 {:.1}, max {:.1}",
                l.p50, l.p95, l.p99, l.max
            )
        });
        let arr = self.arrival_ms.map_or("-".to_string(), |l| {
            format!(
                "p50 {:.1} ms, p95 {:.1}, p99 {:.1}, max {:.1}",
                l.p50, l.p95, l.p99, l.max
            )
        });
        let _ = writeln!(
            t,
            "  chat        {} followers, {} deliveries in the window ({:.0}/s), post->delivery {lat}; post->arrival at the socket {arr}",
            thousands(self.followers),
            thousands(self.deliveries_in_window),
            self.deliveries_per_s
        );
        let _ = writeln!(
            t,
            "  chat        {} gaps, {} duplicates, {} malformed; {} followers complete, {} behind, {} dropped",
            thousands(self.gaps),
            thousands(self.duplicates),
            thousands(self.malformed),
            thousands(self.followers_complete),
            thousands(self.followers_incomplete),
            thousands(self.followers_dropped)
        );
    }
}

/// Correctness checks (never timing).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Checks {
    /// Every client joined and none dropped.
    pub all_connected: bool,
    /// Every frame parsed as the protocol says.
    pub frames_parsed: bool,
    /// No input was answered with an error, and no error frame arrived at all.
    pub no_inputs_rejected: bool,
    /// Each moving client's last ack equals its last sent seq; no ack or tick anomaly.
    pub acks_consistent: bool,
    /// Some input→state and input→applied latency was measured (when any client moved).
    pub latency_measured: bool,
    /// The server handled the attackers as it should ([`Attackers::handled`]; true
    /// when there were none).
    pub attackers_handled: bool,
    /// With `--sync`, [`SyncFigures::consistent`] (true without).
    pub sync_consistent: bool,
    /// With `--cues`, [`CueFigures::consistent`] (true without).
    pub cues_consistent: bool,
    /// With `--chat-senders`, [`ChatFigures::consistent`] (true without).
    pub chat_consistent: bool,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Target URL.
    pub url: String,
    /// The show joined (from `welcome`).
    pub show: String,
    /// When the run started, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// What was asked for.
    pub asked: Asked,
    /// Phase timing.
    pub phases: Phases,
    /// Connections.
    pub clients: Clients,
    /// Inputs.
    pub inputs: Inputs,
    /// States.
    pub states: States,
    /// Input→state latency.
    pub latency: Latency,
    /// From sending an input to when the server applied it (the tick's time in its ack),
    /// by the server's clock against this machine's: exact when both run on one machine.
    pub applied: Latency,
    /// `ping` → `pong` round trips (one a second from every tenth reading client), in the same units.
    pub rtt: Latency,
    /// Frames.
    pub frames: Frames,
    /// Acks.
    pub acks: Acks,
    /// Error frames received by the honest clients, by code.
    pub errors: BTreeMap<String, u64>,
    /// The attackers' figures (absent when none were asked for).
    pub attackers: Option<Attackers>,
    /// The server's CPU and memory (with `--server-pid`).
    pub server: Option<ProcessFigures>,
    /// This generator's own CPU and memory.
    pub generator: ProcessFigures,
    /// This process's file-descriptor limit (soft, after raising it to the hard limit).
    pub fd_limit: u64,
    /// With `--calibrate`.
    pub calibration: Option<Calibration>,
    /// With `--sync`: clock sync and its true error.
    pub sync: Option<SyncFigures>,
    /// With `--cues`: cues to every client, in time or not.
    pub cues: Option<CueFigures>,
    /// With `--chat-senders`: chat in the show's room, or with `--chat-rooms` in every room
    /// (the same checks per room).
    pub chat: Option<ChatFigures>,
    /// With `--chat-rooms`: the rooms and users made for the run (the connections then join
    /// no show: inputs, states and their latency are zero).
    pub rooms: Option<crate::rooms::RoomsFigures>,
    /// Things worth knowing that are not failures.
    pub warnings: Vec<String>,
    /// Correctness checks.
    pub checks: Checks,
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn map_line(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {}", thousands(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAILED"
    }
}

impl Report {
    /// The report as a table for a terminal.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let c = &self.clients;
        let i = &self.inputs;
        let s = &self.states;
        let l = &self.latency;
        match &self.rooms {
            Some(r) => {
                let _ = writeln!(
                    t,
                    "tutti load: {} ({} rooms × {} users, no show joined)",
                    self.url, r.rooms, r.users
                );
            }
            None => {
                let _ = writeln!(t, "tutti load: {} (show {})", self.url, self.show);
            }
        }
        // Staff connections to rooms send no inputs and read no states.
        let show = self.rooms.is_none();
        let _ = writeln!(
            t,
            "  clients     {} asked, {} connected, {} failed, {} dropped ({} moving, {} idle, {} slow)",
            thousands(u64::from(c.asked)),
            thousands(c.connected),
            thousands(c.failed),
            thousands(c.dropped),
            thousands(c.moving),
            thousands(c.idle),
            thousands(c.slow)
        );
        if !c.failures.is_empty() {
            let _ = writeln!(t, "  failures    {}", map_line(&c.failures));
        }
        if !c.drops.is_empty() {
            let _ = writeln!(t, "  drops       {}", map_line(&c.drops));
        }
        let p = &self.phases;
        let _ = writeln!(
            t,
            "  phases      ramp {:.1} s, window {:.1} s{}, settle {:.1} s, total {:.1} s",
            p.ramp_s,
            p.window_s,
            if p.truncated {
                " (cut short by --max-duration)"
            } else {
                ""
            },
            p.settle_s,
            p.total_s
        );
        if let Some(r) = &self.rooms {
            let _ = writeln!(
                t,
                "  rooms       {} rooms × {} users = {} connections; made in {:.1} s (the admin {}), all following {:.1} s after the ramp; tokens live {} s; rooms at seq {}–{}",
                thousands(u64::from(r.rooms)),
                thousands(u64::from(r.users)),
                thousands(r.connections),
                r.setup_s,
                if r.admin_made { "made by first-run setup" } else { "signed in" },
                r.follow_s,
                r.token_ttl_s,
                thousands(r.last_seq_min),
                thousands(r.last_seq_max)
            );
        }
        if show {
            let _ = writeln!(
            t,
            "  inputs      {:.0}/s sent, {:.0}/s acked, {} rejected ({} sent, {} acked in the whole run)",
            i.sent_per_s,
            i.acked_per_s,
            thousands(i.rejected),
            thousands(i.sent_total),
            thousands(i.acked_total)
        );
            let rate = match (s.server_rate_min, s.server_rate_last) {
                (Some(min), Some(last)) => format!(", server rate min {min:.1} last {last:.1}"),
                _ => String::new(),
            };
            let _ = writeln!(
            t,
            "  states      per client {:.2}/s mean, {:.2} min, {:.2} max (state_hz {:.0}, {:.2} % delivered{rate})",
            s.per_client_mean, s.per_client_min, s.per_client_max, s.state_hz, s.delivered_pct
        );
            if c.slow > 0 {
                let _ = writeln!(
                    t,
                    "  slow        {:.2} states/s per slow reader",
                    s.slow_per_client_mean
                );
            }
        }
        let r = &self.rtt;
        let _ = writeln!(
            t,
            "  network     ping->pong p50 {:.2} ms, p95 {:.2}, p99 {:.2}, max {:.2} ({} pings)",
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms,
            thousands(r.samples)
        );
        if show {
            let _ = writeln!(
                t,
                "  latency     input->state p50 {:.1} ms, p95 {:.1}, p99 {:.1}, max {:.1} ({} inputs)",
                l.p50_ms,
                l.p95_ms,
                l.p99_ms,
                l.max_ms,
                thousands(l.samples)
            );
        }
        let _ = writeln!(
            t,
            "  frames      {} received, {} unparseable",
            thousands(self.frames.received),
            thousands(self.frames.parse_failures)
        );
        let a = &self.applied;
        if show {
            let _ = writeln!(
            t,
            "  applied     input->applied p50 {:.1} ms, p95 {:.1}, p99 {:.1}, max {:.1} ({} inputs; the server's clock)",
            a.p50_ms,
            a.p95_ms,
            a.p99_ms,
            a.max_ms,
            thousands(a.samples)
        );
            let behind = if self.acks.clock_behind > 0 {
                format!(
                    ", {} dated before they were sent (the server's clock is behind)",
                    thousands(self.acks.clock_behind)
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                t,
                "  acks        {} moving clients checked, {} mismatched, {} anomalies{behind}",
                thousands(self.acks.checked),
                thousands(self.acks.mismatched),
                thousands(self.acks.anomalies)
            );
        }
        let _ = writeln!(t, "  errors      {}", map_line(&self.errors));
        if let Some(a) = &self.attackers {
            a.table(&mut t);
        }
        let proc_line = |f: &ProcessFigures| {
            format!(
                "CPU {:.1} % ({:.2} CPU-s), RSS {:.1} MiB -> {:.1} MiB (max {:.1})",
                f.cpu_pct, f.cpu_s, f.rss_start_mib, f.rss_end_mib, f.rss_max_mib
            )
        };
        match &self.server {
            Some(f) => {
                let _ = writeln!(t, "  server      pid {}: {}", f.pid, proc_line(f));
            }
            None => {
                let _ = writeln!(
                    t,
                    "  server      (give --server-pid for its CPU and memory)"
                );
            }
        }
        let _ = writeln!(
            t,
            "  generator   {} (fd limit {})",
            proc_line(&self.generator),
            self.fd_limit
        );
        if let Some(cal) = &self.calibration {
            let _ = writeln!(
                t,
                "  calibration floor {:.2} us/message ({}-byte messages, {} pairs), server {:.2} us/message over {} messages: ratio {:.2}x",
                cal.floor.us_per_message,
                cal.floor.message_bytes,
                cal.floor.pairs,
                cal.server_us_per_message,
                thousands(cal.server_messages),
                cal.ratio
            );
        }
        if let Some(y) = &self.sync {
            y.table(&mut t);
        }
        if let Some(c) = &self.cues {
            c.table(&mut t);
        }
        if let Some(c) = &self.chat {
            c.table(&mut t);
        }
        for w in &self.warnings {
            let _ = writeln!(t, "  warning     {w}");
        }
        for e in &self.frames.examples {
            let _ = writeln!(t, "  bad frame   {e}");
        }
        let k = &self.checks;
        let mut attackers = if self.attackers.is_some() {
            format!(", attackers {}", mark(k.attackers_handled))
        } else {
            String::new()
        };
        if self.sync.is_some() {
            let _ = write!(attackers, ", sync {}", mark(k.sync_consistent));
        }
        if self.cues.is_some() {
            let _ = write!(attackers, ", cues {}", mark(k.cues_consistent));
        }
        if self.chat.is_some() {
            let _ = write!(attackers, ", chat {}", mark(k.chat_consistent));
        }
        let _ = writeln!(
            t,
            "  checks      connected {}, frames {}, rejections {}, acks {}, latency {}{attackers}",
            mark(k.all_connected),
            mark(k.frames_parsed),
            mark(k.no_inputs_rejected),
            mark(k.acks_consistent),
            mark(k.latency_measured)
        );
        t
    }

    /// The report as JSON (the same fields as the struct).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("reports always serialise")
    }

    /// Correctness problems, one line each; empty when every check passed.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let k = &self.checks;
        if !k.all_connected {
            out.push(format!(
                "not all connected: {} of {} joined, {} failed ({}), {} dropped ({})",
                self.clients.connected,
                self.clients.asked,
                self.clients.failed,
                map_line(&self.clients.failures),
                self.clients.dropped,
                map_line(&self.clients.drops)
            ));
        }
        if !k.frames_parsed {
            out.push(format!(
                "{} frames did not parse: {}",
                self.frames.parse_failures,
                self.frames.examples.join("; ")
            ));
        }
        if !k.no_inputs_rejected {
            out.push(format!(
                "{} inputs rejected; errors: {}",
                self.inputs.rejected,
                map_line(&self.errors)
            ));
        }
        if !k.acks_consistent {
            out.push(format!(
                "acks inconsistent: {} of {} moving clients mismatched, {} anomalies, {} inputs acked",
                self.acks.mismatched, self.acks.checked, self.acks.anomalies, self.inputs.acked_total
            ));
        }
        if !k.latency_measured {
            out.push("no input->state or input->applied latency was measured".into());
        }
        if !k.sync_consistent {
            if let Some(y) = &self.sync {
                out.push(format!(
                    "clock sync inconsistent: reference consistent {} ({}), {} answers refused, \
                     {} unknown answers, {} clients without an estimate at the end",
                    y.reference.consistent,
                    y.reference.problem.as_deref().unwrap_or("no problem"),
                    y.exchanges.refused,
                    y.exchanges.unknown_answers,
                    y.at.last().map_or(0, |a| a.without_estimate)
                ));
            }
        }
        if !k.chat_consistent {
            if let Some(c) = &self.chat {
                out.push(format!(
                    "chat inconsistent: {} posted, {} acknowledged ({} duplicate), refused: {}, \
                     {} gaps, {} duplicates, {} malformed, {} followers behind the last seq {}",
                    c.posted,
                    c.acked,
                    c.duplicate_acks,
                    map_line(&c.refused),
                    c.gaps,
                    c.duplicates,
                    c.malformed,
                    c.followers_incomplete,
                    c.last_seq
                ));
            }
        }
        if !k.cues_consistent {
            if let Some(c) = &self.cues {
                let p = &c.performer;
                out.push(format!(
                    "cues inconsistent: reference consistent {} ({}), performer {} ({} sent, {} \
                     acknowledged, refused: {}), {} deliveries with another `at`, {} out of \
                     order, {} malformed",
                    c.reference.consistent,
                    c.reference.problem.as_deref().unwrap_or("no problem"),
                    p.problem.as_deref().unwrap_or("ran to the end"),
                    p.sent,
                    p.acked,
                    map_line(&p.refused),
                    c.at_differs,
                    c.out_of_order,
                    c.malformed
                ));
            }
        }
        if !k.attackers_handled {
            if let Some(a) = &self.attackers {
                out.extend(a.problems());
            }
        }
        out
    }
}

impl SyncFigures {
    /// The clock-sync lines of the table.
    fn table(&self, t: &mut String) {
        let r = &self.reference;
        let _ = writeln!(
            t,
            "  sync        {} clients; reference {} (fastest round trip {}, truth within ±{:.3} ms{})",
            thousands(self.clients),
            r.url,
            r.round_trip_min_ms
                .map_or("none".into(), |ms| format!("{ms:.3} ms")),
            r.bound_ms,
            if r.consistent { "" } else { ", INCONSISTENT" }
        );
        let x = &self.exchanges;
        let _ = writeln!(
            t,
            "  sync        {} exchanges ({:.0}/s in the window), {} answered, {} refused, {} reports, {} clock steps",
            thousands(x.sent),
            x.sent_per_s_in_window,
            thousands(x.answered),
            thousands(x.refused),
            thousands(x.reports),
            thousands(x.clock_steps)
        );
        let fmt = |s: &Option<Spread>| {
            s.map_or("-".to_string(), |s| {
                format!("{:.2} / {:.2} / {:.2} / {:.2}", s.p50, s.p95, s.p99, s.max)
            })
        };
        for a in &self.at {
            let when = a.after_s.map_or("end".to_string(), |s| format!("{s:.0} s"));
            let _ = writeln!(
                t,
                "  sync {when:>5}  true error p50/p95/p99/max {} ms; estimator's error {} ms, bound {} ms; drift fitted by {} ({} ppm); {} of {} within bound{}",
                fmt(&a.true_error_ms),
                fmt(&a.estimated_error_ms),
                fmt(&a.bound_ms),
                thousands(a.drift_fitted),
                fmt(&a.drift_ppm),
                thousands(a.within_bound),
                thousands(a.clients),
                if a.without_estimate > 0 {
                    format!(", {} without an estimate", thousands(a.without_estimate))
                } else {
                    String::new()
                }
            );
        }
        let c = &self.converged;
        let _ = writeln!(
            t,
            "  sync        converged (true error stays within {} ms): {} of {}, after p50/p95/p99/max {} s",
            c.threshold_ms,
            thousands(c.converged),
            thousands(c.converged + c.not_converged),
            fmt(&c.after_s)
        );
    }
}

impl CueFigures {
    /// The cue lines of the table.
    fn table(&self, t: &mut String) {
        let p = &self.performer;
        let r = &self.reference;
        let refused = if p.refused.is_empty() {
            String::new()
        } else {
            format!(", refused {}", map_line(&p.refused))
        };
        let _ = writeln!(
            t,
            "  cues        {} sent at {}/s, {} acknowledged{refused} (voices {}; lead {:.0} ms); reference {} (truth within ±{:.3} ms{})",
            thousands(p.sent),
            p.rate,
            thousands(p.acked),
            p.voices.join(", "),
            p.lead_ms,
            r.url,
            r.bound_ms,
            if r.consistent { "" } else { ", INCONSISTENT" }
        );
        let _ = writeln!(
            t,
            "  cues        {} of {} deliveries reached their socket before their time ({:.3} %; read before it {:.3} %), {} late, {} missing ({} clients; {} cues reached all, {} clients got all)",
            thousands(self.before),
            thousands(self.expected),
            self.before_pct,
            self.before_read_pct,
            thousands(self.late),
            thousands(self.missing),
            thousands(self.clients),
            thousands(self.cues_complete),
            thousands(self.clients_complete)
        );
        let margins = self.margin_ms.map_or("-".to_string(), |m| {
            format!(
                "p50 {:.2} ms, p5 {:.2}, p1 {:.2}, min {:.2}, max {:.2}",
                m.p50, m.p5, m.p1, m.min, m.max
            )
        });
        let _ = writeln!(
            t,
            "  cues        margin (at - arrival at the socket) {margins}"
        );
        if self.unknown + self.out_of_order + self.malformed + self.at_differs > 0 {
            let _ = writeln!(
                t,
                "  cues        {} not ours, {} out of order, {} malformed, {} with another at",
                thousands(self.unknown),
                thousands(self.out_of_order),
                thousands(self.malformed),
                thousands(self.at_differs)
            );
        }
    }
}

impl Attackers {
    /// The attackers' lines of the table.
    fn table(&self, t: &mut String) {
        let g = &self.garbage;
        let s = &self.silent;
        let c = &self.churn;
        let _ = writeln!(
            t,
            "  attackers   (run alongside; none of their figures is in the lines above)"
        );
        if g.asked > 0 {
            let _ = writeln!(
                t,
                "  garbage     {} asked at {}/s each: {} connected, {} failed, {} dropped, {} closed cleanly",
                thousands(u64::from(g.asked)),
                g.rate,
                thousands(g.connected),
                thousands(g.failed),
                thousands(g.dropped),
                thousands(g.closed_cleanly)
            );
            let _ = writeln!(
                t,
                "              sent {:.0}/s ({} in all: {})",
                g.sent_per_s,
                thousands(g.sent),
                map_line(&g.sent_by_kind)
            );
            let _ = writeln!(
                t,
                "              got errors {}; {} unanswered, {} unexpected; {} states, {} other, {} unparseable",
                map_line(&g.errors),
                thousands(g.unanswered),
                thousands(g.unexpected),
                thousands(g.states),
                thousands(g.other_frames),
                thousands(g.unparseable)
            );
            if !g.failures.is_empty() {
                let _ = writeln!(t, "              failures {}", map_line(&g.failures));
            }
            if !g.drops.is_empty() {
                let _ = writeln!(t, "              drops {}", map_line(&g.drops));
            }
        }
        if s.asked > 0 {
            let _ = writeln!(
                t,
                "  silent      {} asked: {} connected, {} failed, {} dropped, {} closed cleanly; {} frames ({:.1} MiB) lay unread at the end",
                thousands(u64::from(s.asked)),
                thousands(s.connected),
                thousands(s.failed),
                thousands(s.dropped),
                thousands(s.closed_cleanly),
                thousands(s.unread_frames),
                s.unread_mib
            );
            if !s.failures.is_empty() {
                let _ = writeln!(t, "              failures {}", map_line(&s.failures));
            }
            if !s.drops.is_empty() {
                let _ = writeln!(t, "              drops {}", map_line(&s.drops));
            }
        }
        if c.asked > 0 {
            let _ = writeln!(
                t,
                "  churn       {} asked at {}/s each: {} attempts, {} joined ({:.0}/s in the window), {} failed, {} closed cleanly",
                thousands(u64::from(c.asked)),
                c.rate,
                thousands(c.attempts),
                thousands(c.joined),
                c.joined_per_s,
                thousands(c.failed),
                thousands(c.closed_cleanly)
            );
            if !c.failures.is_empty() {
                let _ = writeln!(t, "              failures {}", map_line(&c.failures));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
