//! The attackers of issue 3, run alongside the honest clients: garbage senders (join,
//! then send malformed frames at a rate and read what comes back), silent clients (join
//! and never read, so their receive buffers fill) and churners (open a WebSocket, join and
//! close, in a loop at a bounded rate). Each kind counts what it did and what it got back
//! in [`Attack`], apart from the honest clients' figures.
//!
//! Every attacker closes with a WebSocket close handshake and waits for the server to end
//! the TCP connection, so the server has read everything it was sent and no client port
//! lingers in TIME_WAIT.
//!
//! Must never: write to the honest clients' counters, send faster than its rate, run past
//! the `Stop` phase, or leave a socket open when the run ends.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tutti_protocol::ErrorCode;

use crate::client::{connect_and_join, next_phase, ws_reason, Head, Phase, Rng, Shared, Ws};

/// Size of the oversized garbage frame: over the protocol's 4 KiB limit, well under the
/// 64 KiB at which the server's WebSocket layer closes the connection.
pub const OVERSIZED_BYTES: usize = 5 * 1024;
/// Longest close handshake (send close, read to the server's close and end of stream).
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// What a garbage client sends, in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarbageKind {
    /// Text that is not JSON, or JSON that is not an object.
    InvalidJson,
    /// A JSON object whose `type` no frame has.
    UnknownType,
    /// A 5 KiB frame, over the protocol's 4 KiB limit.
    Oversized,
    /// An input whose value overflows to infinity (`1e999`).
    InfiniteValue,
    /// An input whose value is the string `"NaN"`.
    NanString,
    /// A binary WebSocket frame.
    Binary,
    /// A well-formed input for a parameter the piece does not have.
    UnknownParam,
    /// A well-formed input far outside a slider's range (sent only when the piece has a
    /// continuous parameter).
    OutOfRange,
}

impl GarbageKind {
    /// Every kind, in the order a garbage client cycles through them.
    pub const ALL: [GarbageKind; 8] = [
        GarbageKind::InvalidJson,
        GarbageKind::UnknownType,
        GarbageKind::Oversized,
        GarbageKind::InfiniteValue,
        GarbageKind::NanString,
        GarbageKind::Binary,
        GarbageKind::UnknownParam,
        GarbageKind::OutOfRange,
    ];

    /// The kind's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            GarbageKind::InvalidJson => "invalid_json",
            GarbageKind::UnknownType => "unknown_type",
            GarbageKind::Oversized => "oversized",
            GarbageKind::InfiniteValue => "infinite_value",
            GarbageKind::NanString => "nan_string",
            GarbageKind::Binary => "binary",
            GarbageKind::UnknownParam => "unknown_param",
            GarbageKind::OutOfRange => "out_of_range",
        }
    }

    /// The error code the protocol answers it with.
    pub fn expected(self) -> ErrorCode {
        match self {
            GarbageKind::InvalidJson => ErrorCode::BadJson,
            GarbageKind::UnknownType => ErrorCode::UnknownType,
            GarbageKind::Oversized => ErrorCode::FrameTooLarge,
            GarbageKind::InfiniteValue => ErrorCode::NotFinite,
            GarbageKind::NanString => ErrorCode::WrongType,
            GarbageKind::Binary => ErrorCode::BinaryNotSupported,
            GarbageKind::UnknownParam => ErrorCode::UnknownParam,
            GarbageKind::OutOfRange => ErrorCode::OutOfRange,
        }
    }

    /// Whether an error code is a fair answer to garbage: one of the expected codes, or
    /// `rate_limited` (the inputs among the garbage count against the piece's input rate).
    pub fn fair_answer(code: &str) -> bool {
        code == ErrorCode::RateLimited.as_str()
            || GarbageKind::ALL
                .iter()
                .any(|k| k.expected().as_str() == code)
    }
}

/// What an attacker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttackKind {
    Garbage,
    Silent,
    Churn,
}

/// Connection counters of the garbage and silent clients.
#[derive(Default)]
pub(crate) struct Side {
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub closed_cleanly: AtomicU64,
    pub failures: Mutex<BTreeMap<String, u64>>,
    pub drops: Mutex<BTreeMap<String, u64>>,
}

impl Side {
    fn fail(&self, reason: String) {
        self.failed.fetch_add(1, Relaxed);
        Shared::count(&self.failures, reason);
    }

    fn drop_reason(&self, reason: String) {
        self.dropped.fetch_add(1, Relaxed);
        Shared::count(&self.drops, reason);
    }

    /// Joined or failed: the attempt is resolved.
    pub fn resolved(&self) -> u64 {
        self.connected.load(Relaxed) + self.failed.load(Relaxed)
    }
}

/// Counters all attackers write to, and the garbage they send.
pub(crate) struct Attack {
    pub garbage_rate: f64,
    pub churn_rate: f64,
    /// The kinds garbage clients cycle through (without `OutOfRange` when the piece has
    /// no slider).
    pub kinds: Vec<GarbageKind>,
    /// A slider's JSON-escaped name and a value far above its top.
    slider: Option<(String, f64)>,
    oversized: Utf8Bytes,
    pub garbage: Side,
    pub garbage_sent: [AtomicU64; GarbageKind::ALL.len()],
    pub garbage_sent_window: AtomicU64,
    /// Error frames received by garbage clients, by code (`ErrorCode::ALL` order, then
    /// one for codes this build does not know).
    pub garbage_errors: Vec<AtomicU64>,
    pub garbage_states: AtomicU64,
    /// Frames that are neither error nor state (acks, pongs).
    pub garbage_other: AtomicU64,
    pub garbage_unparseable: AtomicU64,
    pub silent: Side,
    /// Frames and bytes silent clients found waiting when they finally read, at the end.
    pub silent_frames: AtomicU64,
    pub silent_bytes: AtomicU64,
    pub churn_attempts: AtomicU64,
    pub churn_joined: AtomicU64,
    pub churn_joined_window: AtomicU64,
    pub churn_failed: AtomicU64,
    pub churn_closed_cleanly: AtomicU64,
    pub churn_failures: Mutex<BTreeMap<String, u64>>,
}

impl Attack {
    pub fn new(garbage_rate: f64, churn_rate: f64, slider: Option<(&str, f64)>) -> Attack {
        let kinds = GarbageKind::ALL
            .into_iter()
            .filter(|k| *k != GarbageKind::OutOfRange || slider.is_some())
            .collect();
        let head = r#"{"type":"input","param":"x","value":0.5,"pad":""#;
        let pad = OVERSIZED_BYTES - head.len() - 2;
        let oversized = format!("{head}{}\"}}", "x".repeat(pad));
        debug_assert_eq!(oversized.len(), OVERSIZED_BYTES);
        Attack {
            garbage_rate,
            churn_rate,
            kinds,
            slider: slider.map(|(name, max)| (name.to_string(), (max.abs() + 1.0) * 1e6)),
            oversized: oversized.into(),
            garbage: Side::default(),
            garbage_sent: std::array::from_fn(|_| AtomicU64::new(0)),
            garbage_sent_window: AtomicU64::new(0),
            garbage_errors: (0..=ErrorCode::ALL.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            garbage_states: AtomicU64::new(0),
            garbage_other: AtomicU64::new(0),
            garbage_unparseable: AtomicU64::new(0),
            silent: Side::default(),
            silent_frames: AtomicU64::new(0),
            silent_bytes: AtomicU64::new(0),
            churn_attempts: AtomicU64::new(0),
            churn_joined: AtomicU64::new(0),
            churn_joined_window: AtomicU64::new(0),
            churn_failed: AtomicU64::new(0),
            churn_closed_cleanly: AtomicU64::new(0),
            churn_failures: Mutex::new(BTreeMap::new()),
        }
    }

    /// One garbage frame of `kind`.
    fn frame(&self, kind: GarbageKind, seq: u64, rng: &mut Rng) -> Message {
        let slider = self.slider.as_ref().map_or(r#""x""#, |(n, _)| n.as_str());
        let text = match kind {
            GarbageKind::InvalidJson => match seq % 4 {
                0 => r#"{"type":"input","param":"#.to_string(),
                1 => "this is not JSON".to_string(),
                2 => "[1,2,3]".to_string(),
                _ => format!(r#"{{"type":"vote","seq":{seq},}}"#),
            },
            GarbageKind::UnknownType => format!(r#"{{"type":"dance{}","seq":{seq}}}"#, seq % 7),
            GarbageKind::Oversized => return Message::Text(self.oversized.clone()),
            GarbageKind::InfiniteValue => {
                let sign = if seq % 2 == 0 { "" } else { "-" };
                format!(r#"{{"type":"input","param":{slider},"value":{sign}1e999,"seq":{seq}}}"#)
            }
            GarbageKind::NanString => {
                format!(r#"{{"type":"input","param":{slider},"value":"NaN","seq":{seq}}}"#)
            }
            GarbageKind::Binary => {
                let bytes: Vec<u8> = (0..64).map(|_| rng.next_u64() as u8).collect();
                return Message::binary(bytes);
            }
            GarbageKind::UnknownParam => format!(
                r#"{{"type":"input","param":"no-such-param-{}","value":0.5,"seq":{seq}}}"#,
                seq % 13
            ),
            GarbageKind::OutOfRange => {
                let value = self.slider.as_ref().map_or(1e300, |(_, v)| *v);
                format!(r#"{{"type":"input","param":{slider},"value":{value},"seq":{seq}}}"#)
            }
        };
        Message::text(text)
    }

    /// A text frame received by a garbage client.
    fn garbage_text(&self, text: &str) {
        if text.starts_with(r#"{"type":"state""#) {
            self.garbage_states.fetch_add(1, Relaxed);
            return;
        }
        match serde_json::from_str::<Head<'_>>(text) {
            Ok(h) if h.kind == "error" => {
                let code = h.code.as_deref().unwrap_or("");
                let i = ErrorCode::ALL
                    .iter()
                    .position(|c| c.as_str() == code)
                    .unwrap_or(ErrorCode::ALL.len());
                self.garbage_errors[i].fetch_add(1, Relaxed);
            }
            Ok(h) if h.kind == "state" => {
                self.garbage_states.fetch_add(1, Relaxed);
            }
            Ok(_) => {
                self.garbage_other.fetch_add(1, Relaxed);
            }
            Err(_) => {
                self.garbage_unparseable.fetch_add(1, Relaxed);
            }
        }
    }

    fn garbage_message(&self, m: &Message) {
        match m {
            Message::Text(t) => self.garbage_text(t.as_str()),
            Message::Binary(_) => {
                self.garbage_unparseable.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }

    /// Error frames garbage clients received, by code.
    pub fn garbage_errors(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (i, c) in self.garbage_errors.iter().enumerate() {
            let n = c.load(Relaxed);
            if n > 0 {
                let name = ErrorCode::ALL.get(i).map_or("unknown_code", |c| c.as_str());
                out.insert(name.to_string(), n);
            }
        }
        out
    }

    /// Garbage frames sent, by kind.
    pub fn garbage_sent(&self) -> BTreeMap<String, u64> {
        GarbageKind::ALL
            .iter()
            .zip(&self.garbage_sent)
            .map(|(k, n)| (k.name().to_string(), n.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// Run one attacker until the `Stop` phase, then close cleanly.
pub(crate) async fn run_attacker(
    shared: Arc<Shared>,
    attack: Arc<Attack>,
    index: u32,
    kind: AttackKind,
) {
    if kind == AttackKind::Churn {
        return churn(&shared, &attack, index).await;
    }
    let side = match kind {
        AttackKind::Garbage => &attack.garbage,
        _ => &attack.silent,
    };
    let ws = match connect_and_join(&shared.endpoint, index).await {
        Ok((ws, _)) => ws,
        Err(reason) => return side.fail(reason),
    };
    side.connected.fetch_add(1, Relaxed);
    let ws = match kind {
        AttackKind::Garbage => garbage(&shared, &attack, index, ws).await,
        _ => silent(&shared, ws).await,
    };
    let Some(ws) = ws else { return };
    let clean = match kind {
        AttackKind::Garbage => close_and_drain(ws, |m| attack.garbage_message(m)).await,
        _ => {
            close_and_drain(ws, |m| {
                if let Message::Text(t) = m {
                    attack.silent_frames.fetch_add(1, Relaxed);
                    attack.silent_bytes.fetch_add(t.len() as u64, Relaxed);
                }
            })
            .await
        }
    };
    match clean {
        Ok(()) => {
            side.closed_cleanly.fetch_add(1, Relaxed);
        }
        Err(reason) => side.drop_reason(format!("at close: {reason}")),
    }
}

/// Read everything; send garbage at the rate until `Settle`. Returns the socket at `Stop`,
/// or `None` if the server closed it.
async fn garbage(shared: &Shared, attack: &Attack, index: u32, mut ws: Ws) -> Option<Ws> {
    let mut rng = Rng::new((u64::from(index) << 24) ^ 0xBAD0_BAD0);
    let mut phase = Box::pin(next_phase(shared.phase.clone()));
    let period = Duration::from_secs_f64(1.0 / attack.garbage_rate);
    let first = tokio::time::Instant::now() + period.mul_f64(rng.unit());
    let mut timer = tokio::time::interval_at(first, period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sending = *shared.phase.borrow() < Phase::Settle;
    let mut seq = 0u64;
    let mut turn = index as usize;
    loop {
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => attack.garbage_message(&m),
                Some(Ok(Message::Close(_))) | None => {
                    attack.garbage.drop_reason("closed by the server".into());
                    return None;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    attack.garbage.drop_reason(ws_reason(&e));
                    return None;
                }
            },
            (rx, p) = &mut phase => {
                phase = Box::pin(next_phase(rx));
                if p >= Phase::Settle {
                    sending = false;
                }
                if p == Phase::Stop {
                    return Some(ws);
                }
            },
            _ = timer.tick(), if sending => {
                let kind = attack.kinds[turn % attack.kinds.len()];
                turn += 1;
                seq += 1;
                let in_window = shared.in_window(Instant::now());
                if let Err(e) = ws.send(attack.frame(kind, seq, &mut rng)).await {
                    attack.garbage.drop_reason(ws_reason(&e));
                    return None;
                }
                let i = GarbageKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
                attack.garbage_sent[i].fetch_add(1, Relaxed);
                if in_window {
                    attack.garbage_sent_window.fetch_add(1, Relaxed);
                }
            },
        }
    }
}

/// Never read; wait for `Stop`.
async fn silent(shared: &Shared, ws: Ws) -> Option<Ws> {
    let mut rx = shared.phase.clone();
    while *rx.borrow_and_update() != Phase::Stop {
        if rx.changed().await.is_err() {
            break;
        }
    }
    Some(ws)
}

/// Open, join and close in a loop at the churn rate until `Settle`.
async fn churn(shared: &Shared, attack: &Attack, index: u32) {
    let mut rng = Rng::new((u64::from(index) << 24) ^ 0xC4A2_0000);
    let period = Duration::from_secs_f64(1.0 / attack.churn_rate);
    let first = tokio::time::Instant::now() + period.mul_f64(rng.unit());
    let mut timer = tokio::time::interval_at(first, period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut phase: watch::Receiver<Phase> = shared.phase.clone();
    let fail = |reason: String| {
        attack.churn_failed.fetch_add(1, Relaxed);
        Shared::count(&attack.churn_failures, reason);
    };
    loop {
        if *phase.borrow_and_update() >= Phase::Settle {
            return;
        }
        tokio::select! {
            _ = timer.tick() => {}
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        attack.churn_attempts.fetch_add(1, Relaxed);
        let joined = tokio::select! {
            r = connect_and_join(&shared.endpoint, index) => r,
            _ = wait_for(phase.clone(), Phase::Stop) => {
                // The run ended mid-attempt: not a failure of the server.
                attack.churn_attempts.fetch_sub(1, Relaxed);
                return;
            }
        };
        match joined {
            Ok((ws, _)) => {
                attack.churn_joined.fetch_add(1, Relaxed);
                if shared.in_window(Instant::now()) {
                    attack.churn_joined_window.fetch_add(1, Relaxed);
                }
                match close_and_drain(ws, |_| {}).await {
                    Ok(()) => {
                        attack.churn_closed_cleanly.fetch_add(1, Relaxed);
                    }
                    Err(reason) => fail(format!("at close: {reason}")),
                }
            }
            Err(reason) => fail(reason),
        }
    }
}

/// Resolves once the phase reaches `at`.
async fn wait_for(mut rx: watch::Receiver<Phase>, at: Phase) {
    while *rx.borrow_and_update() < at {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Send a close frame, read (and hand to `on`) everything until the server's close frame
/// and the end of the stream, so the server has read all we sent and closes first.
async fn close_and_drain(mut ws: Ws, mut on: impl FnMut(&Message)) -> Result<(), String> {
    let handshake = async {
        ws.close(None).await.map_err(|e| ws_reason(&e))?;
        let mut closed = false;
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) => closed = true,
                Some(Ok(m)) => on(&m),
                Some(Err(e)) => return Err(ws_reason(&e)),
                None if closed => return Ok(()),
                None => return Err("no close frame from the server".to_string()),
            }
        }
    };
    tokio::time::timeout(CLOSE_WAIT, handshake)
        .await
        .map_err(|_| "close handshake timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutti_protocol::ClientFrame;

    #[test]
    fn every_garbage_kind_gets_its_code_from_the_parser() {
        let attack = Attack::new(20.0, 5.0, Some((r#""intensity""#, 1.0)));
        assert_eq!(attack.kinds.len(), GarbageKind::ALL.len());
        let mut rng = Rng::new(3);
        for kind in GarbageKind::ALL {
            for seq in 1..=8 {
                let m = attack.frame(kind, seq, &mut rng);
                let text = match &m {
                    Message::Text(t) => t.as_str(),
                    Message::Binary(b) => {
                        assert_eq!(kind, GarbageKind::Binary);
                        assert_eq!(b.len(), 64);
                        continue;
                    }
                    other => panic!("{other:?}"),
                };
                if kind == GarbageKind::Oversized {
                    assert_eq!(text.len(), OVERSIZED_BYTES);
                    assert!(serde_json::from_str::<serde_json::Value>(text).is_ok());
                }
                match ClientFrame::parse(text) {
                    // These parse; the server refuses them when applying.
                    Ok(ClientFrame::Input { param, value, .. }) => match kind {
                        GarbageKind::UnknownParam => assert!(param.starts_with("no-such-param")),
                        GarbageKind::OutOfRange => {
                            assert_eq!(param, "intensity");
                            assert!(value.is_finite() && value > 1.0);
                        }
                        _ => panic!("{kind:?} parsed: {text}"),
                    },
                    Ok(other) => panic!("{kind:?} parsed as {other:?}"),
                    Err(e) => assert_eq!(e.code, kind.expected(), "{kind:?}: {text}"),
                }
            }
        }
        let no_slider = Attack::new(20.0, 5.0, None);
        assert!(!no_slider.kinds.contains(&GarbageKind::OutOfRange));
        assert!(GarbageKind::fair_answer("rate_limited"));
        assert!(GarbageKind::fair_answer("bad_json"));
        assert!(!GarbageKind::fair_answer("internal"));
    }
}
