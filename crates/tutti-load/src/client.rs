//! One simulated phone: connect (from a chosen source address), join, then read every
//! frame and, if it is a moving client, send inputs at its rate; a slow reader reads one
//! frame a second and sends nothing. Each client checks what it receives: every frame
//! parses, acks never go backwards nor beyond what was sent, and latency is measured from
//! sending an input to the first `state` whose `tick` reaches the tick its ack promised.
//!
//! What clients share ([`Shared`]) is counters, sharded latency histograms and the phase
//! of the run; everything per client stays in its own task.
//!
//! Must never: queue without bound (the in-flight input lists are capped), block the
//! runtime, or keep running after the `Stop` phase.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tutti_protocol::{ErrorCode, ParamInfo, ServerFrame, StateFrame};

use crate::chat::{ChatClient, ChatShared, CHAT_SEQ_BASE};
use crate::cues::CueShared;
use crate::stamped::Stamped;
use crate::sync::{SyncClient, SyncOutcome, SyncShared};

/// How long a TCP connect plus WebSocket handshake may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to answer `join`.
pub(crate) const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Most inputs one client tracks while waiting for their ack or state.
const MAX_TRACKED: usize = 1024;
/// Every this many states, one is parsed in full as a [`StateFrame`] (and each client's
/// first); the others are checked for valid JSON, `type` and `tick` only, to keep the
/// generator's CPU low.
const FULL_PARSE_EVERY: u64 = 32;
/// Latency histogram shards (clients pick one by index).
const SHARDS: usize = 16;
/// Largest latency recorded, in microseconds (larger values are clamped).
const MAX_LATENCY_US: u64 = 600_000_000;
/// Read buffer of each client's WebSocket (tungstenite zero-fills it on every read: a big
/// room's phones read a frame or two of a few hundred bytes at a time).
const READ_BUFFER: usize = 1024;
/// Examples of unparseable frames kept for the report.
const MAX_EXAMPLES: usize = 5;
/// How often a pinging client pings the server to measure the round trip.
const PING_PERIOD: Duration = Duration::from_secs(1);
/// One reading client in this many pings.
const PING_EVERY: u32 = 10;

/// Phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Connecting; moving clients already send.
    Ramp,
    /// The measured window.
    Steady,
    /// Inputs stopped; waiting for the last acks.
    Settle,
    /// Close and report.
    Stop,
}

/// What a client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Sends inputs at the rate.
    Moving,
    /// Reads only.
    Idle,
    /// Reads one frame a second.
    Slow,
}

/// Where a client connects.
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    pub url: String,
    pub sources: Vec<IpAddr>,
    pub show: Option<String>,
    /// Stamp every read with the kernel's arrival time (`--cues`).
    pub rx_stamps: bool,
}

/// Counters and histograms all clients write to.
pub(crate) struct Shared {
    pub start: Instant,
    pub endpoint: Endpoint,
    pub inputs: InputGen,
    pub rate: f64,
    pub phase: watch::Receiver<Phase>,
    /// Nanoseconds since `start` at which the window opens / closes (`u64::MAX`: not yet).
    pub window_start_ns: AtomicU64,
    pub window_end_ns: AtomicU64,
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub frames: AtomicU64,
    pub states: AtomicU64,
    pub inputs_sent: AtomicU64,
    pub inputs_acked: AtomicU64,
    pub parse_failures: AtomicU64,
    /// Moving clients whose last ack does not yet match their last input (settle phase).
    pub unsettled: AtomicI64,
    /// Lowest `rate` announced in a state during the window, in milli-states per second.
    pub min_rate_milli: AtomicU64,
    pub last_rate_milli: AtomicU64,
    /// Error frames by code (`ErrorCode::ALL` order, then one for unknown codes).
    pub errors: Vec<AtomicU64>,
    pub latency: Vec<Mutex<Histogram<u64>>>,
    /// From sending an input to the time its ack says the server applied it, by the two
    /// machines' clocks (the same clock when the generator runs on the server's machine).
    pub applied: Vec<Mutex<Histogram<u64>>>,
    /// Inputs whose ack is dated before they were sent: the server's clock is behind.
    pub clock_behind: AtomicU64,
    /// `ping` → `pong` round trips of clients that read everything (the network and the
    /// server's read-and-answer path, without the wait for a tick).
    pub rtt: Vec<Mutex<Histogram<u64>>>,
    pub failures: Mutex<BTreeMap<String, u64>>,
    pub drops: Mutex<BTreeMap<String, u64>>,
    pub examples: Mutex<Vec<String>>,
    /// With `--sync`: the truth and the clocks' drift.
    pub sync: Option<SyncShared>,
    /// With `--cues`: where reading clients record the cues they receive.
    pub cues: Option<Arc<CueShared>>,
    /// With `--chat-senders`: where reading clients record the chat they read and post.
    pub chat: Option<Arc<ChatShared>>,
}

impl Shared {
    pub fn new(
        endpoint: Endpoint,
        inputs: InputGen,
        rate: f64,
        phase: watch::Receiver<Phase>,
        sync: Option<SyncShared>,
        cues: Option<Arc<CueShared>>,
        chat: Option<Arc<ChatShared>>,
    ) -> Shared {
        let hist = || {
            Mutex::new(
                Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds"),
            )
        };
        Shared {
            start: Instant::now(),
            endpoint,
            inputs,
            rate,
            phase,
            window_start_ns: AtomicU64::new(u64::MAX),
            window_end_ns: AtomicU64::new(u64::MAX),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            states: AtomicU64::new(0),
            inputs_sent: AtomicU64::new(0),
            inputs_acked: AtomicU64::new(0),
            parse_failures: AtomicU64::new(0),
            unsettled: AtomicI64::new(0),
            min_rate_milli: AtomicU64::new(u64::MAX),
            last_rate_milli: AtomicU64::new(0),
            errors: (0..=ErrorCode::ALL.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency: (0..SHARDS).map(|_| hist()).collect(),
            applied: (0..SHARDS).map(|_| hist()).collect(),
            clock_behind: AtomicU64::new(0),
            rtt: (0..SHARDS).map(|_| hist()).collect(),
            failures: Mutex::new(BTreeMap::new()),
            drops: Mutex::new(BTreeMap::new()),
            examples: Mutex::new(Vec::new()),
            sync,
            cues,
            chat,
        }
    }

    pub fn in_window(&self, at: Instant) -> bool {
        let ns = at.duration_since(self.start).as_nanos() as u64;
        ns >= self.window_start_ns.load(Relaxed) && ns < self.window_end_ns.load(Relaxed)
    }

    pub fn count(map: &Mutex<BTreeMap<String, u64>>, reason: String) {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(reason).or_insert(0) += 1;
    }

    fn fail(&self, reason: String) {
        self.failed.fetch_add(1, Relaxed);
        Self::count(&self.failures, reason);
    }

    fn example(&self, text: String) {
        let mut e = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() < MAX_EXAMPLES {
            e.push(text);
        }
    }

    /// All latency shards merged.
    pub fn latency(&self) -> Histogram<u64> {
        merged(&self.latency)
    }

    /// All input→applied shards merged.
    pub fn applied(&self) -> Histogram<u64> {
        merged(&self.applied)
    }

    /// All round-trip shards merged.
    pub fn rtt(&self) -> Histogram<u64> {
        merged(&self.rtt)
    }
}

/// This machine's clock, Unix microseconds (0 for a clock set before 1970).
fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Shards of one histogram, merged.
fn merged(shards: &[Mutex<Histogram<u64>>]) -> Histogram<u64> {
    let mut all =
        Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds");
    for shard in shards {
        let h = shard.lock().unwrap_or_else(|p| p.into_inner());
        // Same bounds on both sides: adding cannot fail.
        let _ = all.add(&*h);
    }
    all
}

impl Shared {
    /// Error counts by code.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (i, c) in self.errors.iter().enumerate() {
            let n = c.load(Relaxed);
            if n > 0 {
                let name = ErrorCode::ALL.get(i).map_or("unknown_code", |c| c.as_str());
                out.insert(name.to_string(), n);
            }
        }
        out
    }
}

/// A small, fast PRNG (SplitMix64); quality is ample for picking values and phases.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 32) as usize * n) >> 32
    }
}

struct Slider {
    name: String,
    min: f64,
    max: f64,
    step: Option<f64>,
}

struct Vote {
    name: String,
    choices: Vec<String>,
}

/// Builds input and vote frames for the piece's parameters (names pre-escaped as JSON).
pub(crate) struct InputGen {
    sliders: Vec<Slider>,
    votes: Vec<Vote>,
    vote_share: f64,
}

impl InputGen {
    pub fn new(params: &[ParamInfo], vote_share: f64) -> InputGen {
        let json = |s: &str| serde_json::to_string(s).expect("strings serialise");
        let mut sliders = Vec::new();
        let mut votes = Vec::new();
        for p in params {
            match (&p.choices, p.kind.as_str()) {
                (Some(choices), "discrete") if !choices.is_empty() => votes.push(Vote {
                    name: json(&p.name),
                    choices: choices.iter().map(|c| json(c)).collect(),
                }),
                (_, "continuous") => {
                    let (min, max) = (p.min.unwrap_or(0.0), p.max.unwrap_or(1.0));
                    if min.is_finite() && max.is_finite() && min <= max {
                        sliders.push(Slider {
                            name: json(&p.name),
                            min,
                            max,
                            step: p.step.filter(|s| s.is_finite() && *s > 0.0),
                        });
                    }
                }
                _ => {}
            }
        }
        InputGen {
            sliders,
            votes,
            vote_share,
        }
    }

    pub fn has_sliders(&self) -> bool {
        !self.sliders.is_empty()
    }

    pub fn has_votes(&self) -> bool {
        !self.votes.is_empty()
    }

    /// The first continuous parameter's name (JSON-escaped, quotes included) and its top.
    pub fn first_slider(&self) -> Option<(&str, f64)> {
        self.sliders.first().map(|s| (s.name.as_str(), s.max))
    }

    /// One frame with `seq`, or `None` when the piece has no parameter to move.
    pub fn frame(&self, seq: u64, rng: &mut Rng) -> Option<String> {
        let vote =
            !self.votes.is_empty() && (self.sliders.is_empty() || rng.unit() < self.vote_share);
        if vote {
            let v = &self.votes[rng.below(self.votes.len())];
            let c = &v.choices[rng.below(v.choices.len())];
            Some(format!(
                r#"{{"type":"vote","param":{},"choice":{},"seq":{seq}}}"#,
                v.name, c
            ))
        } else if !self.sliders.is_empty() {
            let s = &self.sliders[rng.below(self.sliders.len())];
            let mut value = s.min + rng.unit() * (s.max - s.min);
            if let Some(step) = s.step {
                value = (s.min + ((value - s.min) / step).round() * step).clamp(s.min, s.max);
            }
            // Three decimals keep frames short and the value in range.
            let value = ((value * 1000.0).round() / 1000.0).clamp(s.min, s.max);
            Some(format!(
                r#"{{"type":"input","param":{},"value":{value},"seq":{seq}}}"#,
                s.name
            ))
        } else {
            None
        }
    }
}

/// The fields of any server frame that the load generator needs. Parsing into this
/// still checks that the whole frame is valid JSON (ignored fields are parsed too).
#[derive(Deserialize)]
pub(crate) struct Head<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub tick: Option<u64>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub id: Option<u64>,
    /// An ack's time (Unix milliseconds, whole) or a cue's (show clock, fractional).
    #[serde(default)]
    pub at: Option<f64>,
}

/// The type of a chat frame as the server writes it (`{"type":"chat_…"` first), without
/// parsing it; `None` for anything else (parsed in full as usual).
fn chat_kind(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let kind = &rest[..rest.find('"')?];
    kind.starts_with("chat_").then_some(kind)
}

/// What one client reports at the end.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub kind: Kind,
    pub connected: bool,
    /// Disconnected before the end of the run.
    pub dropped: bool,
    pub states_in_window: u64,
    pub inputs_in_window: u64,
    pub acked_in_window: u64,
    pub last_sent: u64,
    pub last_acked: u64,
    pub rejected: u64,
    /// Acks beyond the last sent seq or going backwards; state ticks going backwards.
    pub anomalies: u64,
    /// Inputs no longer tracked for latency because too many were in flight.
    pub untracked: u64,
    /// With `--sync`, for clients that read everything.
    pub sync: Option<SyncOutcome>,
    /// With `--cues`, for clients that read everything: our cues it received.
    pub cues: u64,
    /// With `--chat-senders`: it followed the show's room.
    pub chat_followed: bool,
}

pub(crate) type Ws = WebSocketStream<Stamped>;

struct Client {
    shared: Arc<Shared>,
    index: u32,
    out: Outcome,
    rng: Rng,
    /// Sent, not yet acknowledged: (seq, sent at, sent in window, sent at by the clock in
    /// Unix microseconds).
    sent: VecDeque<(u64, Instant, bool, u64)>,
    /// Acknowledged, waiting for a state with tick ≥ the ack's: (tick, sent at, in window).
    awaiting: VecDeque<(u64, Instant, bool)>,
    last_state_tick: u64,
    last_ack_tick: u64,
    /// Last ping id sent, and the one awaiting its pong: (id, sent at, sent in window).
    ping_id: u64,
    ping_out: Option<(u64, Instant, bool)>,
    states_seen: u64,
    settle_reported: bool,
    /// This client has seen the `Settle` phase.
    settling: bool,
    /// With `--sync`: its clock and estimator, and a `sync_report` waiting to be sent.
    sync: Option<SyncClient>,
    sync_report: Option<String>,
    /// With `--cues`: the last cue id this client read (0: none), and whether it counts
    /// among the readers the cues are expected at.
    last_cue_id: u64,
    cue_reader: bool,
    /// When the kernel received the frame being handled (with `--cues` or chat).
    rx_at: Option<Instant>,
    /// With `--chat-senders`: its chat, and a frame waiting to be sent (`chat_sub`).
    chat: Option<ChatClient>,
    chat_out: Option<String>,
}

/// Run one client to the end of the run.
pub(crate) async fn run_client(shared: Arc<Shared>, index: u32, kind: Kind) -> Outcome {
    let seed = (u64::from(index) << 20) ^ shared.start.elapsed().as_nanos() as u64;
    let mut c = Client {
        shared,
        index,
        out: Outcome {
            kind,
            connected: false,
            dropped: false,
            states_in_window: 0,
            inputs_in_window: 0,
            acked_in_window: 0,
            last_sent: 0,
            last_acked: 0,
            rejected: 0,
            anomalies: 0,
            untracked: 0,
            sync: None,
            cues: 0,
            chat_followed: false,
        },
        rng: Rng::new(seed),
        sent: VecDeque::new(),
        awaiting: VecDeque::new(),
        last_state_tick: 0,
        last_ack_tick: 0,
        ping_id: 0,
        ping_out: None,
        states_seen: 0,
        settle_reported: true,
        settling: false,
        sync: None,
        sync_report: None,
        last_cue_id: 0,
        cue_reader: false,
        rx_at: None,
        chat: None,
        chat_out: None,
    };
    // Staff connections to many rooms (`--chat-rooms`) chat without joining a show.
    let joining = !c.shared.chat.as_ref().is_some_and(|ch| ch.is_staff());
    let ws = if joining {
        connect_and_join(&c.shared.endpoint, index)
            .await
            .map(|(ws, _)| ws)
    } else {
        connect(&c.shared.endpoint, index).await
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(reason) => {
            c.shared.fail(reason);
            return c.out;
        }
    };
    c.out.connected = true;
    c.shared.connected.fetch_add(1, Relaxed);
    if kind != Kind::Slow {
        if let Some(sync) = &c.shared.sync {
            c.sync = Some(SyncClient::new(sync, &mut c.rng, Instant::now()));
        }
        if let Some(cues) = &c.shared.cues {
            cues.readers.fetch_add(1, Relaxed);
            c.cue_reader = true;
        }
        if let Some(chat) = &c.shared.chat {
            let client = ChatClient::new(chat, index);
            c.chat_out = Some(client.hello(chat));
            c.chat = Some(client);
        }
    }
    if kind == Kind::Moving {
        c.shared.unsettled.fetch_add(1, Relaxed);
        c.settle_reported = false;
    }
    let ws = match kind {
        Kind::Slow => c.slow_loop(ws).await,
        Kind::Moving | Kind::Idle => c.main_loop(ws).await,
    };
    if let Some(sync) = c.sync.take() {
        c.out.sync = Some(sync.finish(Instant::now()));
    }
    c.out.chat_followed = c.chat.as_ref().is_some_and(ChatClient::following);
    if let Some(mut ws) = ws {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    c.settle_done();
    c.out
}

/// Connect (from the client's source address) and join; returns the socket and welcome.
pub(crate) async fn connect_and_join(
    ep: &Endpoint,
    index: u32,
) -> Result<(Ws, ServerFrame), String> {
    connect_and_join_as(ep, index, None).await
}

/// [`connect_and_join`], as a performer with `performer_token` when one is given.
pub(crate) async fn connect_and_join_as(
    ep: &Endpoint,
    index: u32,
    performer_token: Option<&str>,
) -> Result<(Ws, ServerFrame), String> {
    let mut ws = connect(ep, index).await?;
    let mut join = serde_json::json!({"type": "join"});
    if let Some(code) = &ep.show {
        join["show"] = code.as_str().into();
    }
    if let Some(token) = performer_token {
        join["role"] = "performer".into();
        join["token"] = token.into();
    }
    ws.send(Message::text(join.to_string()))
        .await
        .map_err(|e| format!("join: {}", ws_reason(&e)))?;
    let welcome = tokio::time::timeout(JOIN_TIMEOUT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return match serde_json::from_str::<ServerFrame>(t.as_str()) {
                        Ok(w @ ServerFrame::Welcome { .. }) => Ok(w),
                        Ok(ServerFrame::Error { code, .. }) => {
                            Err(format!("join refused: {}", code.as_str()))
                        }
                        Ok(_) => Err("join: the first frame was not welcome".to_string()),
                        Err(_) => Err("join: unparseable welcome".to_string()),
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    return Err("join: closed by the server".to_string())
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("join: {}", ws_reason(&e))),
            }
        }
    })
    .await
    .map_err(|_| "join: no welcome within the timeout".to_string())??;
    Ok((ws, welcome))
}

/// Connect (from the client's source address) and open the WebSocket, without joining.
pub(crate) async fn connect(ep: &Endpoint, index: u32) -> Result<Ws, String> {
    let sock = match ep.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {}", io_reason(&e)))?;
    if !ep.sources.is_empty() {
        let src = ep.sources[index as usize % ep.sources.len()];
        sock.bind(SocketAddr::new(src, 0))
            .map_err(|e| format!("bind {src}: {}", io_reason(&e)))?;
    }
    let connect = async {
        let stream = sock
            .connect(ep.addr)
            .await
            .map_err(|e| format!("connect: {}", io_reason(&e)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("connect: {}", io_reason(&e)))?;
        let stream = Stamped::new(stream, ep.rx_stamps)
            .map_err(|e| format!("SO_TIMESTAMPNS: {}", io_reason(&e)))?;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20));
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(ep.url.as_str(), stream, Some(config))
                .await
                .map_err(|e| format!("handshake: {}", ws_reason(&e)))?;
        Ok::<_, String>(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| "connect: timed out".to_string())?
}

/// Wait for the next phase change. The receiver is moved in and handed back so that one
/// future serves many loop iterations (re-creating `changed()` on every frame is costly).
pub(crate) async fn next_phase(mut rx: watch::Receiver<Phase>) -> (watch::Receiver<Phase>, Phase) {
    let p = match rx.changed().await {
        Ok(()) => *rx.borrow_and_update(),
        Err(_) => Phase::Stop,
    };
    (rx, p)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => {
            "address not available (ephemeral ports exhausted? use --source-addrs)".into()
        }
        Some(libc::EMFILE) | Some(libc::ENFILE) => "too many open files".into(),
        _ => e.kind().to_string(),
    }
}

pub(crate) fn ws_reason(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) => format!("HTTP {}", resp.status().as_u16()),
        tungstenite::Error::Io(io) => io_reason(io),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "connection closed".into()
        }
        tungstenite::Error::Protocol(p) => format!("protocol error: {p}"),
        other => other.to_string(),
    }
}

impl Client {
    /// Read everything; send inputs if moving. Returns the socket if it is still open.
    async fn main_loop(&mut self, mut ws: Ws) -> Option<Ws> {
        let mut phase = Box::pin(next_phase(self.shared.phase.clone()));
        let moving = self.out.kind == Kind::Moving;
        let period = Duration::from_secs_f64(1.0 / self.shared.rate);
        let first = tokio::time::Instant::now() + period.mul_f64(self.rng.unit());
        let mut timer = tokio::time::interval_at(first, period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sending = moving;
        // One ping a second, at a random phase: the round trip is the network's share of
        // the latency budget (on venue Wi-Fi, run `tutti load` from another machine).
        // One client in PING_EVERY pings, so the measurement costs the server little.
        let pinging = self.index % PING_EVERY == 0;
        let ping_first = tokio::time::Instant::now() + PING_PERIOD.mul_f64(self.rng.unit());
        let mut ping_timer = tokio::time::interval_at(ping_first, PING_PERIOD);
        ping_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // Clock sync: one timer, reset each time it fires (only then does the next thing
        // to do move).
        let syncing = self.sync.is_some();
        let first = self
            .sync
            .as_ref()
            .map_or_else(Instant::now, SyncClient::next_wake);
        let mut sync_timer = Box::pin(tokio::time::sleep_until(first.into()));
        // Chat: senders post at their share of --chat-rate through the window only.
        let chat_sender = self.chat.as_ref().is_some_and(|c| c.sender);
        let chat_period = self
            .shared
            .chat
            .as_ref()
            .map_or(Duration::from_secs(1), |c| {
                Duration::from_secs_f64(1.0 / c.per_sender)
            });
        let chat_first = tokio::time::Instant::now() + chat_period.mul_f64(self.rng.unit());
        let mut chat_timer = tokio::time::interval_at(chat_first, chat_period);
        chat_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut steady = *self.shared.phase.borrow() == Phase::Steady;
        loop {
            for frame in [self.sync_report.take(), self.chat_out.take()]
                .into_iter()
                .flatten()
            {
                if let Err(e) = ws.send(Message::text(frame)).await {
                    self.drop_reason(ws_reason(&e));
                    return None;
                }
            }
            tokio::select! {
                biased;
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        self.rx_at = ws.get_ref().last_rx();
                        self.on_text(t.as_str());
                    }
                    Some(Ok(Message::Binary(_))) => self.parse_failure("a binary frame".into()),
                    Some(Ok(Message::Close(_))) | None => {
                        self.drop_reason("closed by the server".into());
                        return None;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        self.drop_reason(ws_reason(&e));
                        return None;
                    }
                },
                (rx, p) = &mut phase => {
                    phase = Box::pin(next_phase(rx));
                    steady = p == Phase::Steady;
                    if p >= Phase::Settle {
                        sending = false;
                        self.settling = true;
                        self.check_settled();
                    }
                    if p == Phase::Stop {
                        return Some(ws);
                    }
                },
                _ = &mut sync_timer, if syncing => {
                    let Some(sync) = self.sync.as_mut() else { continue };
                    let now = Instant::now();
                    let frame = sync.on_wake(now, self.shared.in_window(now));
                    sync_timer.as_mut().reset(sync.next_wake().into());
                    if let Some(frame) = frame {
                        if let Err(e) = ws.send(Message::text(frame)).await {
                            self.drop_reason(ws_reason(&e));
                            return None;
                        }
                    }
                },
                _ = chat_timer.tick(), if chat_sender && steady => {
                    let (Some(chat), Some(shared)) = (self.chat.as_mut(), self.shared.chat.as_ref()) else { continue };
                    let Some(frame) = chat.post(shared, Instant::now()) else { continue };
                    if let Err(e) = ws.send(Message::text(frame)).await {
                        self.drop_reason(ws_reason(&e));
                        return None;
                    }
                },
                _ = ping_timer.tick(), if pinging => {
                    self.ping_id += 1;
                    let now = Instant::now();
                    self.ping_out = Some((self.ping_id, now, self.shared.in_window(now)));
                    let frame = format!(r#"{{"type":"ping","id":{}}}"#, self.ping_id);
                    if let Err(e) = ws.send(Message::text(frame)).await {
                        self.drop_reason(ws_reason(&e));
                        return None;
                    }
                },
                _ = timer.tick(), if sending => {
                    let Some(frame) = self.shared.inputs.frame(self.out.last_sent + 1, &mut self.rng) else {
                        sending = false;
                        continue;
                    };
                    let seq = self.out.last_sent + 1;
                    let now = Instant::now();
                    let unix_us = unix_us();
                    let in_window = self.shared.in_window(now);
                    if let Err(e) = ws.send(Message::text(frame)).await {
                        self.drop_reason(ws_reason(&e));
                        return None;
                    }
                    self.out.last_sent = seq;
                    self.shared.inputs_sent.fetch_add(1, Relaxed);
                    if in_window {
                        self.out.inputs_in_window += 1;
                    }
                    self.sent.push_back((seq, now, in_window, unix_us));
                    if self.sent.len() > MAX_TRACKED {
                        self.sent.pop_front();
                        self.out.untracked += 1;
                    }
                },
            }
        }
    }

    /// Read one frame a second, send nothing.
    async fn slow_loop(&mut self, mut ws: Ws) -> Option<Ws> {
        let mut phase = Box::pin(next_phase(self.shared.phase.clone()));
        let start = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut timer = tokio::time::interval_at(start, Duration::from_secs(1));
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut want = false;
        loop {
            tokio::select! {
                (rx, p) = &mut phase => {
                    if p == Phase::Stop {
                        return Some(ws);
                    }
                    phase = Box::pin(next_phase(rx));
                },
                _ = timer.tick(), if !want => want = true,
                msg = ws.next(), if want => {
                    want = false;
                    match msg {
                        Some(Ok(Message::Text(t))) => self.on_text(t.as_str()),
                        Some(Ok(Message::Binary(_))) => self.parse_failure("a binary frame".into()),
                        Some(Ok(Message::Close(_))) | None => {
                            self.drop_reason("closed by the server".into());
                            return None;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            self.drop_reason(ws_reason(&e));
                            return None;
                        }
                    }
                },
            }
        }
    }

    fn drop_reason(&mut self, reason: String) {
        if *self.shared.phase.borrow() == Phase::Stop {
            return;
        }
        self.out.dropped = true;
        self.shared.dropped.fetch_add(1, Relaxed);
        if let (true, Some(cues)) = (self.cue_reader, &self.shared.cues) {
            self.cue_reader = false;
            cues.readers.fetch_sub(1, Relaxed);
        }
        if let (Some(chat), Some(shared)) = (&self.chat, &self.shared.chat) {
            chat.left(shared);
        }
        Shared::count(&self.shared.drops, reason);
    }

    fn parse_failure(&mut self, what: String) {
        self.shared.parse_failures.fetch_add(1, Relaxed);
        self.shared
            .example(format!("client {}: {what}", self.index));
    }

    /// In the settle phase, tell the coordinator once when the last ack matches.
    fn check_settled(&mut self) {
        if !self.settle_reported && self.settling && self.out.last_acked == self.out.last_sent {
            self.settle_done();
        }
    }

    fn settle_done(&mut self) {
        if !self.settle_reported {
            self.settle_reported = true;
            self.shared.unsettled.fetch_sub(1, Relaxed);
        }
    }

    /// A chat frame, to the client's chat.
    fn on_chat(&mut self, kind: &str, text: &str) {
        let (Some(chat), Some(shared)) = (self.chat.as_mut(), self.shared.chat.as_ref()) else {
            return;
        };
        let now = Instant::now();
        match chat.on_frame(
            shared,
            kind,
            text,
            now,
            self.rx_at,
            self.shared.in_window(now),
        ) {
            Ok(Some(frame)) => self.chat_out = Some(frame),
            Ok(None) => {}
            Err(e) => self.parse_failure(e),
        }
    }

    fn on_text(&mut self, text: &str) {
        self.shared.frames.fetch_add(1, Relaxed);
        if let (Some(kind), true) = (chat_kind(text), self.chat.is_some()) {
            // Read once, by the chat client (its parse checks the whole frame): a big room
            // hands each phone hundreds of these a second.
            return self.on_chat(kind, text);
        }
        let head: Head<'_> = match serde_json::from_str(text) {
            Ok(h) => h,
            Err(e) => {
                let shown: String = text.chars().take(120).collect();
                return self.parse_failure(format!("not a server frame ({e}): {shown}"));
            }
        };
        match head.kind.as_ref() {
            "state" => {
                let Some(tick) = head.tick else {
                    return self.parse_failure("a state without a tick".into());
                };
                self.on_state(tick, head.rate, text);
            }
            "ack" => match (head.seq, head.tick, head.at) {
                (Some(seq), Some(tick), Some(at)) if at.is_finite() && at >= 0.0 => {
                    self.on_ack(seq, tick, at as u64)
                }
                _ => self.parse_failure("an ack without seq, tick or at".into()),
            },
            "error" if head.seq.is_some_and(|s| s >= CHAT_SEQ_BASE) => {
                if let Some(chat) = &self.shared.chat {
                    chat.refused(head.code.as_deref().unwrap_or(""));
                }
            }
            "error" => {
                let code = head.code.as_deref().unwrap_or("");
                let i = ErrorCode::ALL
                    .iter()
                    .position(|c| c.as_str() == code)
                    .unwrap_or(ErrorCode::ALL.len());
                self.shared.errors[i].fetch_add(1, Relaxed);
                if let Some(seq) = head.seq {
                    self.out.rejected += 1;
                    self.sent.retain(|(s, ..)| *s != seq);
                }
            }
            "pong" => {
                if let (Some(id), Some((want, sent_at, in_window))) = (head.id, self.ping_out) {
                    if id == want {
                        self.ping_out = None;
                        if in_window {
                            let us = sent_at.elapsed().as_micros().max(1) as u64;
                            let shard = self.index as usize % self.shared.rtt.len();
                            self.shared.rtt[shard]
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .saturating_record(us);
                        }
                    }
                }
            }
            "stats" => {}
            "cue" => {
                // Slow readers read cues a second late by design: only readers count.
                if let (true, Some(cues)) = (self.cue_reader, &self.shared.cues) {
                    let now = Instant::now();
                    let reached = self.rx_at.unwrap_or(now);
                    if cues.record(&head, reached, now, &mut self.last_cue_id) {
                        self.out.cues += 1;
                    }
                }
            }
            "sync" if self.sync.is_some() => {
                let now = Instant::now();
                let answer = self.sync.as_mut().map(|s| s.on_answer(text, now));
                match answer {
                    Some(Ok(report)) => self.sync_report = report,
                    Some(Err(e)) => self.parse_failure(e),
                    None => {}
                }
            }
            kind if kind.starts_with("chat_") && self.chat.is_some() => self.on_chat(kind, text),
            other => {
                let shown: String = other.chars().take(40).collect();
                self.parse_failure(format!("an unexpected frame type '{shown}'"));
            }
        }
    }

    fn on_state(&mut self, tick: u64, rate: Option<f64>, text: &str) {
        let now = Instant::now();
        if self.states_seen % FULL_PARSE_EVERY == 0 {
            if let Err(e) = serde_json::from_str::<StateFrame>(text) {
                self.parse_failure(format!("a state that is not a StateFrame: {e}"));
            }
        }
        self.states_seen += 1;
        if tick < self.last_state_tick {
            self.out.anomalies += 1;
        }
        self.last_state_tick = self.last_state_tick.max(tick);
        self.shared.states.fetch_add(1, Relaxed);
        if self.shared.in_window(now) {
            self.out.states_in_window += 1;
            if let Some(r) = rate.filter(|r| r.is_finite() && *r >= 0.0) {
                let milli = (r * 1000.0).round() as u64;
                self.shared.min_rate_milli.fetch_min(milli, Relaxed);
                self.shared.last_rate_milli.store(milli, Relaxed);
            }
        }
        let shard = self.index as usize % self.shared.latency.len();
        let mut hist = None;
        while let Some(&(t, sent_at, in_window)) = self.awaiting.front() {
            if t > tick {
                break;
            }
            self.awaiting.pop_front();
            if in_window {
                let us = now.duration_since(sent_at).as_micros().max(1) as u64;
                hist.get_or_insert_with(|| {
                    self.shared.latency[shard]
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                })
                .saturating_record(us);
            }
        }
    }

    /// An ack: inputs up to `seq` are applied by `tick`, which ran at `at` (the server's
    /// clock, Unix milliseconds).
    fn on_ack(&mut self, seq: u64, tick: u64, at: u64) {
        if seq > self.out.last_sent || seq <= self.out.last_acked {
            self.out.anomalies += 1;
        }
        if tick < self.last_ack_tick {
            self.out.anomalies += 1;
        }
        self.last_ack_tick = self.last_ack_tick.max(tick);
        if seq <= self.out.last_acked {
            return;
        }
        self.out.last_acked = seq.min(self.out.last_sent);
        let mut n = 0;
        // `at` is whole milliseconds: the tick ran before its end.
        let applied_us = at.saturating_mul(1000).saturating_add(999);
        let shard = self.index as usize % self.shared.applied.len();
        let mut hist = None;
        while let Some(&(s, sent_at, in_window, sent_us)) = self.sent.front() {
            if s > seq {
                break;
            }
            self.sent.pop_front();
            n += 1;
            if in_window {
                self.out.acked_in_window += 1;
                match applied_us.checked_sub(sent_us) {
                    Some(us) => hist
                        .get_or_insert_with(|| {
                            self.shared.applied[shard]
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                        })
                        .saturating_record(us.max(1)),
                    None => {
                        self.shared.clock_behind.fetch_add(1, Relaxed);
                    }
                }
            }
            self.awaiting.push_back((tick, sent_at, in_window));
            if self.awaiting.len() > MAX_TRACKED {
                self.awaiting.pop_front();
                self.out.untracked += 1;
            }
        }
        drop(hist);
        self.shared.inputs_acked.fetch_add(n, Relaxed);
        self.check_settled();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_frame_is_told_by_its_first_field_and_nothing_else_is() {
        let event = ServerFrame::ChatCaughtUp {
            room: 3,
            room_seq: 9,
        }
        .to_json();
        assert_eq!(chat_kind(&event), Some("chat_caught_up"));
        assert_eq!(chat_kind(r#"{"type":"state","tick":1}"#), None);
        assert_eq!(chat_kind(r#"{"tick":1,"type":"chat_event"}"#), None);
        assert_eq!(chat_kind(r#"{"type":"chat_event"#), None);
        assert_eq!(chat_kind(""), None);
    }

    fn params() -> Vec<ParamInfo> {
        let demo = r#"[
          {"name": "intensity", "label": "I", "kind": "continuous", "min": 0.0, "max": 1.0, "step": 0.01, "default": 0.3},
          {"name": "pitch", "label": "P", "kind": "continuous", "min": -12.0, "max": 12.0, "step": 1.0, "default": 0.0},
          {"name": "section", "label": "S", "kind": "discrete", "default": 0, "choices": ["calm", "pulse", "storm"]}
        ]"#;
        serde_json::from_str(demo).unwrap()
    }

    #[test]
    fn generated_frames_are_valid_client_frames() {
        let gen = InputGen::new(&params(), 0.3);
        let mut rng = Rng::new(7);
        let mut votes = 0;
        for seq in 1..=2000u64 {
            let text = gen.frame(seq, &mut rng).unwrap();
            let f = tutti_protocol::ClientFrame::parse(&text).unwrap();
            assert_eq!(f.seq(), Some(seq));
            match f {
                tutti_protocol::ClientFrame::Input { param, value, .. } => match param.as_str() {
                    "intensity" => assert!((0.0..=1.0).contains(&value)),
                    "pitch" => assert!((-12.0..=12.0).contains(&value) && value.fract() == 0.0),
                    p => panic!("unexpected param {p}"),
                },
                tutti_protocol::ClientFrame::Vote { param, choice, .. } => {
                    assert_eq!(param, "section");
                    assert!(["calm", "pulse", "storm"].contains(&choice.as_str()));
                    votes += 1;
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
        // 30 % of 2000, give or take.
        assert!((450..750).contains(&votes), "{votes} votes");
        let none = InputGen::new(&[], 0.5);
        assert!(none.frame(1, &mut rng).is_none());
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut r = Rng::new(1);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            buckets[(u * 10.0) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|b| (9_000..11_000).contains(b)),
            "{buckets:?}"
        );
    }
}
