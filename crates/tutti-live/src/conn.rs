//! One WebSocket connection: join, then a task that reads frames and writes replies.
//! Audience state frames do not go through this task: after the join the socket is handed
//! to the show's fan-out ([`crate::Fanout`]), which writes every publish to it directly; the pending
//! ack waits in the peer for the first state that reflects it. Performer and display
//! connections get their detailed state, stats and monitor frames from this task.
//!
//! Per-connection memory is bounded: the peer's pending bytes (at most one partly
//! written frame plus `peer::MAX_PENDING` of replies), the WebSocket reader's buffer, a
//! token bucket, the one chat frame of a read turn.
//!
//! Chat frames (`chat_*`) go to the hub's [`crate::Chat`] through a session made on the first
//! one (an audience connection's is its show's; any other connection signs in with
//! `chat_auth`). A read turn ends at a chat frame, which is handled before the next frame is
//! read (replies stay in the order of the frames they answer), and the
//! session's outgoing frames are written only while nothing waits for the socket (no pending
//! bytes, no state waiting in the peer's slot), as many as are ready at once (up to
//! [`CHAT_BATCH`] bytes) in one write: a chat reader that does not keep up leaves its frames in
//! the session, which catches up from the store, instead of having replies dropped at
//! `peer::MAX_PENDING`, and a phone's state frames, which go out as soon as the pending bytes
//! have, are never held behind more than one batch of chat.
//!
//! Must never: queue state frames, let one client's flood change anyone else's influence,
//! or disconnect a client for a bad frame (only frames over 64 KiB, which no honest
//! client sends, and broken WebSocket framing close the socket, with a close frame saying
//! why).

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tungstenite::protocol::{Role as WsRole, WebSocketConfig, WebSocketContext};
use tungstenite::Message;
use tutti_consensus::ParticipantId;
use tutti_protocol::{
    ClientFrame, DroneInfo, DroneSourceInfo, ErrorCode, FrameError, ParamInfo, PhoneInfo, Role,
    ServerFrame, ShowInfo, VoiceInfo,
};
use tutti_spec::ParamKindName;

use tutti_show::{now_ms, status_str, Actor, OverrideRequest, ShowRuntime, SlotLease};

use crate::fanout::Published;
use crate::peer::{Header, Peer, SockIo};
use crate::{ChatOrigin, ChatSession, Hub, LiveShow};

/// How long a connection may stay without joining.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Error frames one connection may receive per second; more are counted, not sent.
const ERROR_BUDGET_PER_S: f64 = 20.0;
/// Frames read in one go before other connections get a turn.
const READS_PER_TURN: usize = 64;
/// How long a closing connection waits for its last bytes (the close reply) to go out.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Largest frame and message a client may send.
const MAX_MESSAGE: usize = 64 * 1024;
/// WebSocket pings a client may send per second (twice as many in a burst); past that the
/// connection is closed (1008): every ping costs a pong, and no honest client needs more.
const PINGS_PER_S: f64 = 5.0;
/// `sync` frames a connection may send per second (a phone converging sends 10).
const SYNCS_PER_S: f64 = 20.0;
/// Cues a performer connection may send per second (and at once).
const CUES_PER_S: f64 = 10.0;
/// A phone may ask for a calibration chirp once every this many seconds.
const CHIRP_EVERY_S: f64 = 2.0;
/// Chat changes (posts, edits, deletions, boosts) a connection may send per second (twice as
/// many at once).
const CHAT_WRITES_PER_S: f64 = 5.0;
/// Other chat frames (sign-in, follow, read marks, typing, heartbeats) per second (twice as
/// many at once).
const CHAT_FRAMES_PER_S: f64 = 20.0;
/// Most bytes of chat frames written in one go (frames ready at once are written together,
/// one write for many; a frame larger than this goes alone).
pub const CHAT_BATCH: usize = 16 * 1024;

/// A token bucket: `rate` per second, `burst` deep.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            tokens: burst,
            rate,
            burst,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Joined {
    show: Arc<ShowRuntime>,
    live: LiveShow,
    role: Role,
    /// The guest id of a phone that joined with a device token.
    guest: Option<i64>,
    participant: Option<SlotLease>,
    actor: Option<Actor>,
}

struct Conn {
    hub: Arc<Hub>,
    /// The Autobahn echo endpoint (feature `autobahn-echo`, never in a server): data
    /// messages are echoed through the hub's own writer instead of read as the protocol;
    /// everything else (reading, limits, pings, closing) is the live connection's.
    echo: bool,
    peer: Arc<Peer>,
    joined: Option<Joined>,
    inputs: Bucket,
    errors: Bucket,
    pings: Bucket,
    syncs: Bucket,
    cues: Bucket,
    chirps: Bucket,
    chat_writes: Bucket,
    chat_frames: Bucket,
    /// The chat frame read in this turn, handled after it (a turn ends at a chat frame).
    chat_inbox: VecDeque<tutti_protocol::ClientFrame>,
    /// Late cues this connection has reported so far.
    cues_late: u64,
    /// Whether its last report said its sound is on (counted in `phones_ready`).
    sound_on: bool,
    /// The sync-quality class this connection last reported (`HubStats::sync`).
    sync_class: Option<usize>,
    /// Closed by the server for misbehaving: stop reading.
    over: bool,
    rate_limited_since_notice: u64,
    last_rate_notice: Option<Instant>,
}

/// What a turn of reading left.
enum Flow {
    /// Nothing more to read now.
    Wait,
    /// More may be waiting: read again after others had a turn.
    More,
    /// The connection is over (closed by the client, or broken).
    Closed,
}

/// The WebSocket layer's limits for client frames (public for the fuzz target `ws_read`).
pub fn ws_config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    // A phone's frames are small (an input is about 100 bytes): a 1 KiB buffer per
    // connection reads them in one go, and grows for the rare large frame (a chat post)
    // while it is read. Ten thousand idle phones each holding 4 KiB cost 30 MiB more.
    c.read_buffer_size = 1024;
    c.max_message_size = Some(MAX_MESSAGE);
    c.max_frame_size = Some(MAX_MESSAGE);
    c
}

/// Serve one upgraded socket until it closes. `leftover` is what the HTTP layer read
/// past the handshake. `echo`: the Autobahn echo endpoint (see [`Conn::echo`]).
pub async fn serve(peer: Arc<Peer>, leftover: Vec<u8>, hub: Arc<Hub>, echo: bool) {
    hub.stats.pending.fetch_add(1, Relaxed);
    let more = !leftover.is_empty();
    let mut ws = WebSocketContext::from_partially_read(leftover, WsRole::Server, Some(ws_config()));
    let mut conn = Conn {
        hub: hub.clone(),
        echo,
        peer: peer.clone(),
        joined: None,
        inputs: Bucket::new(30.0, 60.0),
        errors: Bucket::new(ERROR_BUDGET_PER_S, ERROR_BUDGET_PER_S),
        pings: Bucket::new(PINGS_PER_S, PINGS_PER_S * 2.0),
        syncs: Bucket::new(SYNCS_PER_S, SYNCS_PER_S),
        cues: Bucket::new(CUES_PER_S, CUES_PER_S),
        chirps: Bucket::new(1.0 / CHIRP_EVERY_S, 1.0),
        chat_writes: Bucket::new(CHAT_WRITES_PER_S, CHAT_WRITES_PER_S * 2.0),
        chat_frames: Bucket::new(CHAT_FRAMES_PER_S, CHAT_FRAMES_PER_S * 2.0),
        chat_inbox: VecDeque::new(),
        cues_late: 0,
        sound_on: false,
        sync_class: None,
        over: false,
        rate_limited_since_notice: 0,
        last_rate_notice: None,
    };
    let role = conn.run(&mut ws, more).await;
    match role {
        Some(role) => hub.stats.role(role).fetch_sub(1, Relaxed),
        None => hub.stats.pending.fetch_sub(1, Relaxed),
    };
    linger(&peer).await;
    peer.close();
    conn.leave();
}

/// The next value of a watch channel the connection listens to: never, when it does not
/// listen to it (`None`); `None` when the channel has closed.
async fn next_change<T: Clone>(rx: &mut Option<watch::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => {
            rx.changed().await.ok()?;
            Some(rx.borrow_and_update().clone())
        }
        None => std::future::pending().await,
    }
}

/// Write a stats or monitor frame; a closed channel ends the connection.
fn send_text_or_close(peer: &Peer, text: Option<Arc<str>>) -> Flow {
    match text {
        Some(t) => {
            let _ = peer.send_text(&t);
            Flow::Wait
        }
        None => Flow::Closed,
    }
}

/// The chat session's next frame; never, without a session.
async fn chat_next(chat: &mut Option<Box<dyn ChatSession>>) -> Arc<str> {
    match chat {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// Writes `first` and the chat frames that are ready now behind it (up to [`CHAT_BATCH`]
/// bytes) to the peer in one write. The buffer lives only for the write: an idle connection
/// keeps none (thousands of phones each holding their largest batch cost more than an
/// allocation per write).
fn send_chat(peer: &Peer, chat: &mut Option<Box<dyn ChatSession>>, first: &str) {
    let mut batch = Vec::with_capacity(first.len() + 16);
    let batch = &mut batch;
    let push = |batch: &mut Vec<u8>, f: &str| {
        batch.extend_from_slice(Header::text(f.len()).as_bytes());
        batch.extend_from_slice(f.as_bytes());
    };
    push(batch, first);
    if let Some(c) = chat.as_mut() {
        while batch.len() < CHAT_BATCH {
            match c.try_next() {
                Some(f) => push(batch, &f),
                None => break,
            }
        }
    }
    let _ = peer.send([batch, &[]]);
}

/// Give the last bytes (a close reply) a moment to go out.
async fn linger(peer: &Peer) {
    let until = tokio::time::Instant::now() + CLOSE_LINGER;
    while matches!(peer.flush(), Ok(true)) {
        tokio::select! {
            r = peer.stream().writable() => if r.is_err() { return },
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

impl Conn {
    /// The connection's life; returns the role it joined as, if it did.
    async fn run(&mut self, ws: &mut WebSocketContext, mut more: bool) -> Option<Role> {
        let deadline = tokio::time::sleep(JOIN_TIMEOUT);
        tokio::pin!(deadline);
        let mut shutdown = self.hub.shutdown.clone();
        let mut role = None;
        // A performer's or display's detailed state, and a performer's stats and monitor.
        let mut state_rx: Option<watch::Receiver<Published>> = None;
        let mut stats_rx: Option<watch::Receiver<Arc<str>>> = None;
        let mut monitor_rx: Option<watch::Receiver<Arc<str>>> = None;
        // An audience connection's slot: it changes when another connection takes it over.
        let mut holder: Option<watch::Receiver<u64>> = None;
        let peer = self.peer.clone();
        // The echo endpoint never joins: no join deadline.
        let joining = !self.echo;
        // This connection's chat, once it sent a chat frame.
        let mut chat: Option<Box<dyn ChatSession>> = None;
        loop {
            let pending = peer.has_pending();
            let chat_room = chat.is_some() && !pending;
            let chatting = chat.as_ref().is_some_and(|c| c.signed_in());
            let flow = tokio::select! {
                r = peer.stream().readable(), if !more => match r {
                    Ok(()) => self.read_turn(ws).await,
                    Err(_) => Flow::Closed,
                },
                () = std::future::ready(()), if more => self.read_turn(ws).await,
                () = peer.wake.notified() => Flow::Wait,
                r = peer.stream().writable(), if pending => match r.and_then(|()| peer.flush()) {
                    Ok(_) => Flow::Wait,
                    Err(_) => Flow::Closed,
                },
                f = chat_next(&mut chat), if chat_room => {
                    send_chat(&peer, &mut chat, &f);
                    Flow::Wait
                }
                () = &mut deadline, if joining && role.is_none() && !chatting => {
                    let _ = peer.send_close(&[]);
                    Flow::Closed
                }
                r = next_change(&mut state_rx) => match r {
                    Some(state) => {
                        let _ = peer.send([&state.frame, &[]]);
                        Flow::Wait
                    }
                    None => Flow::Closed,
                },
                r = next_change(&mut stats_rx) => send_text_or_close(&peer, r),
                r = next_change(&mut monitor_rx) => send_text_or_close(&peer, r),
                r = next_change(&mut holder) => match r {
                    Some(epoch) if self.holds(epoch) => Flow::Wait,
                    _ => {
                        self.taken_over();
                        Flow::Closed
                    }
                },
                _ = shutdown.changed() => Flow::Closed,
            };
            more = matches!(flow, Flow::More);
            if !self.chat_inbox.is_empty() {
                self.chat_turn(&mut chat).await;
            }
            if role.is_none() {
                if let Some(j) = &self.joined {
                    // (`join` moved the connection from pending to its role's count before
                    // the welcome went out.)
                    role = Some(j.role);
                    if peer.is_closed() {
                        // Closed in the same turn as it joined: nothing more to send.
                    } else if j.role == Role::Audience {
                        holder = j.participant.as_ref().map(|l| l.holder.clone());
                        if j.live.fanout.attach(peer.clone()).is_err() {
                            return role;
                        }
                    } else {
                        let mut state = j.live.detail.subscribe();
                        state.mark_changed();
                        state_rx = Some(state);
                        if j.role == Role::Performer {
                            stats_rx = Some(self.hub.stats_tx.subscribe());
                            monitor_rx = Some(self.hub.monitor_tx.subscribe());
                        }
                    }
                }
            }
            if matches!(flow, Flow::Closed) {
                return role;
            }
        }
    }

    /// Handles the chat frames read in the last turn (a session is made on the first).
    async fn chat_turn(&mut self, chat: &mut Option<Box<dyn ChatSession>>) {
        while let Some(frame) = self.chat_inbox.pop_front() {
            let seq = frame.seq();
            let Some(service) = self.hub.chat.clone() else {
                self.error(
                    FrameError::new(ErrorCode::Forbidden, "chat is not enabled on this server"),
                    seq,
                );
                continue;
            };
            let write = matches!(
                frame,
                ClientFrame::ChatPost { .. }
                    | ClientFrame::ChatEdit { .. }
                    | ClientFrame::ChatDelete { .. }
                    | ClientFrame::ChatBoost { .. }
                    | ClientFrame::ChatVote { .. }
                    | ClientFrame::ChatAnswered { .. }
                    | ClientFrame::ChatPin { .. }
                    | ClientFrame::ChatApprove { .. }
            );
            let allowed = if write {
                self.chat_writes.take()
            } else {
                self.chat_frames.take()
            };
            if !allowed {
                let what = if write {
                    format!("chat changes: at most {CHAT_WRITES_PER_S} per second")
                } else {
                    format!("chat frames: at most {CHAT_FRAMES_PER_S} per second")
                };
                self.error(FrameError::new(ErrorCode::RateLimited, what), seq);
                continue;
            }
            let session = chat.get_or_insert_with(|| {
                let origin = match &self.joined {
                    Some(j) if j.role == Role::Audience => ChatOrigin::Audience {
                        show: j.show.code.clone(),
                        guest: j.guest,
                    },
                    Some(j) if j.role == Role::Display => ChatOrigin::Display {
                        show: j.show.code.clone(),
                    },
                    _ => ChatOrigin::Staff,
                };
                service.session(origin, &self.peer)
            });
            match session.handle(frame).await {
                Ok(replies) => {
                    for r in replies {
                        let _ = self.peer.send_text(&r);
                    }
                }
                Err(e) => self.error(e, seq),
            }
        }
    }

    /// Read and handle the frames that are there, up to [`READS_PER_TURN`].
    async fn read_turn(&mut self, ws: &mut WebSocketContext) -> Flow {
        let peer = self.peer.clone();
        let mut io = SockIo::new(&peer);
        for _ in 0..READS_PER_TURN {
            let read = ws.read(&mut io);
            match read {
                Ok(msg) => {
                    self.on_message(msg).await;
                    if self.over {
                        return Flow::Closed;
                    }
                    if !self.chat_inbox.is_empty() {
                        // The chat frame is handled before the next frame is read, so
                        // replies keep the order of the frames they answer.
                        return Flow::More;
                    }
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Flow::Wait
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Flow::Closed
                }
                Err(tungstenite::Error::Capacity(e)) => {
                    self.close_with(1009, &format!("{e} (the limit is {MAX_MESSAGE} bytes)"));
                    return Flow::Closed;
                }
                Err(tungstenite::Error::Utf8(_)) => {
                    self.close_with(1007, "a text frame is not valid UTF-8");
                    return Flow::Closed;
                }
                Err(tungstenite::Error::Protocol(e)) => {
                    self.close_with(1002, &e.to_string());
                    return Flow::Closed;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "live connection ended");
                    return Flow::Closed;
                }
            }
        }
        Flow::More
    }

    /// Send a close frame with a status code and a reason (cut to fit a control frame).
    fn close_with(&self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        let _ = self.peer.send_close(&payload);
    }

    fn leave(&mut self) {
        if let Some(c) = self.sync_class.take() {
            self.hub.stats.sync.leave(c);
        }
        if std::mem::take(&mut self.sound_on) {
            self.hub.stats.phones_ready.fetch_sub(1, Relaxed);
        }
        if let Some(Joined {
            show,
            participant: Some(lease),
            ..
        }) = &self.joined
        {
            // A slot taken over is keyed by the newer token by now: this is a no-op then.
            show.disconnect(&lease.token);
        }
    }

    /// Whether this connection still holds its slot at `epoch`.
    fn holds(&self, epoch: u64) -> bool {
        self.joined
            .as_ref()
            .and_then(|j| j.participant.as_ref())
            .is_some_and(|l| l.epoch == epoch)
    }

    /// Another connection resumed this one's slot: say so, then close.
    fn taken_over(&mut self) {
        self.hub.stats.error(ErrorCode::TakenOver);
        self.send(ServerFrame::error(
            FrameError::new(
                ErrorCode::TakenOver,
                "another connection resumed this participant slot; this one is closed",
            ),
            None,
        ));
        self.close_with(4001, "taken over by a newer connection");
    }

    fn send(&mut self, frame: ServerFrame) {
        // A failed write shows up as a failed read on the next turn.
        let _ = self.peer.send_text(&frame.to_json());
    }

    fn error(&mut self, e: FrameError, seq: Option<u64>) {
        self.hub.stats.error(e.code);
        if self.errors.take() {
            self.send(ServerFrame::error(e, seq));
        } else {
            self.hub.stats.errors_suppressed.fetch_add(1, Relaxed);
        }
    }

    async fn on_message(&mut self, msg: Message) {
        match msg {
            // The echo endpoint: data back, written like every reply (the hub's headers,
            // the peer's writer), never by the WebSocket layer.
            Message::Text(text) if self.echo => {
                let _ = self
                    .peer
                    .send([Header::text(text.len()).as_bytes(), text.as_bytes()]);
            }
            Message::Binary(data) if self.echo => {
                let _ = self
                    .peer
                    .send([Header::binary(data.len()).as_bytes(), &data]);
            }
            Message::Text(text) => match ClientFrame::read(text.as_str()) {
                Ok(frame) => self.on_frame(frame).await,
                Err(refused) => {
                    if self
                        .joined
                        .as_ref()
                        .is_some_and(|j| j.role == Role::Audience)
                    {
                        self.hub.stats.inputs_rejected.fetch_add(1, Relaxed);
                    }
                    self.error(refused.error, refused.seq);
                }
            },
            Message::Binary(_) => self.error(
                FrameError::new(
                    ErrorCode::BinaryNotSupported,
                    "binary frames are not part of the protocol; send JSON text",
                ),
                None,
            ),
            // The WebSocket layer writes the close reply on the next read: no state frame
            // may come after it.
            Message::Close(_) => self.peer.retire(),
            // Pings are answered by the WebSocket layer (its pongs are capped like other
            // replies); a client pinging past its budget is closed.
            Message::Ping(_) => {
                if !self.pings.take() {
                    self.close_with(
                        1008,
                        &format!("too many pings: at most {PINGS_PER_S} per second"),
                    );
                    self.over = true;
                }
            }
            Message::Pong(_) | Message::Frame(_) => {}
        }
    }

    async fn on_frame(&mut self, frame: ClientFrame) {
        let seq = frame.seq();
        if let ClientFrame::Ping { id } = frame {
            self.send(ServerFrame::Pong { id });
            return;
        }
        if frame.is_chat() {
            // Handled after this turn (the session's frames are written by the loop).
            self.chat_inbox.push_back(frame);
            return;
        }
        if let ClientFrame::Join {
            show,
            role,
            token,
            zone,
            resume,
            ..
        } = frame
        {
            if self.joined.is_some() {
                return self.error(
                    FrameError::new(
                        ErrorCode::AlreadyJoined,
                        "this connection has already joined",
                    ),
                    None,
                );
            }
            match self
                .join(
                    show.as_deref(),
                    role,
                    token.as_deref(),
                    zone.as_deref(),
                    resume.as_deref(),
                )
                .await
            {
                Ok(welcome) => self.send(welcome),
                Err(e) => self.error(e, None),
            }
            return;
        }
        let Some(joined) = &self.joined else {
            return self.error(
                FrameError::new(ErrorCode::NotJoined, "send a join frame first"),
                seq,
            );
        };
        match frame {
            ClientFrame::Sync { id, t0 } => {
                let t1 = joined.show.clock_ms();
                if !self.syncs.take() {
                    return self.error(
                        FrameError::new(
                            ErrorCode::RateLimited,
                            format!("sync frames: at most {SYNCS_PER_S} per second"),
                        ),
                        None,
                    );
                }
                let t2 = joined.show.clock_ms();
                return self.send(ServerFrame::Sync { id, t0, t1, t2 });
            }
            ClientFrame::SyncReport {
                error_ms,
                cues_late,
                sound_on,
                ..
            } => {
                self.sync_class = Some(self.hub.stats.sync.report(self.sync_class, error_ms));
                if let Some(on) = sound_on {
                    if on != self.sound_on {
                        self.sound_on = on;
                        let ready = &self.hub.stats.phones_ready;
                        if on {
                            ready.fetch_add(1, Relaxed);
                        } else {
                            ready.fetch_sub(1, Relaxed);
                        }
                    }
                }
                if let Some(n) = cues_late {
                    // A count since the connection joined: only what is new is added.
                    let new = n.saturating_sub(self.cues_late);
                    self.cues_late = self.cues_late.max(n);
                    self.hub.stats.cues_late.fetch_add(new, Relaxed);
                }
                return;
            }
            ClientFrame::Cue {
                ref voice,
                lead_ms,
                ref zones,
                sweep,
                source,
                ..
            } => {
                let result = if joined.actor.is_none() {
                    Err(FrameError::new(
                        ErrorCode::Forbidden,
                        "cues need a performer connection",
                    ))
                } else if !self.cues.take() {
                    Err(FrameError::new(
                        ErrorCode::RateLimited,
                        format!("cues: at most {CUES_PER_S} per second"),
                    ))
                } else {
                    joined
                        .live
                        .cue(voice, lead_ms, zones.clone(), sweep, source)
                };
                match result {
                    Ok(cue) => {
                        if let Some(seq) = seq {
                            self.send(ServerFrame::Ack {
                                seq,
                                tick: cue.tick,
                                at: now_ms(),
                            });
                        }
                    }
                    Err(e) => self.error(e, seq),
                }
                return;
            }
            ClientFrame::Chirp {} => {
                let result = match &joined.participant {
                    None => Err(FrameError::new(
                        ErrorCode::Forbidden,
                        "chirps are for audience connections",
                    )),
                    Some(_) if !self.chirps.take() => Err(FrameError::new(
                        ErrorCode::RateLimited,
                        format!("chirps: at most one every {CHIRP_EVERY_S} seconds"),
                    )),
                    Some(lease) => Ok(joined.live.calibration.chirp(
                        lease.id.slot,
                        &self.peer,
                        joined.show.clock_ms(),
                    )),
                };
                match result {
                    Ok(frame) => self.send(frame),
                    Err(e) => self.error(e, None),
                }
                return;
            }
            ClientFrame::Calibrated { id, offset_ms, .. } => {
                let result = if joined.actor.is_none() {
                    Err(FrameError::new(
                        ErrorCode::Forbidden,
                        "calibrations need a performer connection",
                    ))
                } else {
                    joined.live.calibration.answer(id, offset_ms)
                };
                match result {
                    Ok(()) => {
                        if let Some(seq) = seq {
                            self.send(ServerFrame::Ack {
                                seq,
                                tick: 0,
                                at: now_ms(),
                            });
                        }
                    }
                    Err(e) => self.error(e, seq),
                }
                return;
            }
            _ => {}
        }
        let show = joined.show.clone();
        let role = joined.role;
        let result = match frame {
            ClientFrame::Input { .. } | ClientFrame::Vote { .. } if role != Role::Audience => {
                Err(FrameError::new(
                    ErrorCode::Forbidden,
                    "only audience connections send inputs and votes",
                ))
            }
            ClientFrame::Input { param, value, .. } => {
                self.input(&show, |who| show.input(who, &param, value))
            }
            ClientFrame::Vote { param, choice, .. } => {
                self.input(&show, |who| show.vote(who, &param, &choice))
            }
            other => {
                let Some(actor) = joined.actor.clone() else {
                    return self.error(
                        FrameError::new(
                            ErrorCode::Forbidden,
                            "performer commands need a performer connection",
                        ),
                        seq,
                    );
                };
                match other {
                    ClientFrame::Override {
                        param,
                        mode,
                        value,
                        amount,
                        target,
                        factor,
                        lo,
                        hi,
                        expires_in,
                        ..
                    } => {
                        let (a, b) = match mode {
                            tutti_protocol::OverrideModeName::Lock => (value, None),
                            tutti_protocol::OverrideModeName::Bias => (amount, None),
                            tutti_protocol::OverrideModeName::Blend => (target, factor),
                            tutti_protocol::OverrideModeName::Clamp => (lo, hi),
                            tutti_protocol::OverrideModeName::Freeze => (None, None),
                        };
                        show.set_override(
                            &actor,
                            &param,
                            OverrideRequest {
                                mode,
                                a,
                                b,
                                expires_in,
                            },
                        )
                        .await
                    }
                    ClientFrame::Release { param, mode, .. } => {
                        show.release(&actor, &param, mode).await
                    }
                    ClientFrame::Session { action, .. } => show.session(&actor, action).await,
                    ClientFrame::Reset { .. } => show.reset(&actor).await,
                    ClientFrame::Bypass { on, .. } => show.bypass(&actor, on).await,
                    _ => Ok(0),
                }
                .map(|tick| {
                    // Performer commands are acknowledged at once: they are stored already.
                    if let Some(seq) = seq {
                        self.send(ServerFrame::Ack {
                            seq,
                            tick,
                            at: now_ms(),
                        });
                    }
                    None
                })
            }
        };
        match result {
            Ok(Some(tick)) => {
                if let Some(seq) = seq {
                    // The fan-out writes it in front of the first state that reflects it.
                    self.peer.out().set_ack(seq, tick);
                }
            }
            Ok(None) => {}
            Err(e) => self.error(e, seq),
        }
    }

    /// An input or vote: rate limit, then apply. Returns the applying tick.
    fn input(
        &mut self,
        _show: &Arc<ShowRuntime>,
        apply: impl FnOnce(ParticipantId) -> Result<u64, FrameError>,
    ) -> Result<Option<u64>, FrameError> {
        let stats = &self.hub.stats;
        let Some(who) = self
            .joined
            .as_ref()
            .and_then(|j| j.participant.as_ref())
            .map(|l| l.id)
        else {
            return Err(FrameError::new(
                ErrorCode::Forbidden,
                "not an audience connection",
            ));
        };
        if !self.inputs.take() {
            stats.inputs_rejected.fetch_add(1, Relaxed);
            self.rate_limited_since_notice += 1;
            let due = self
                .last_rate_notice
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if due {
                self.last_rate_notice = Some(Instant::now());
                let n = std::mem::take(&mut self.rate_limited_since_notice);
                let rate = self.inputs.rate;
                return Err(FrameError::new(
                    ErrorCode::RateLimited,
                    format!("{n} input(s) dropped: more than {rate} inputs per second"),
                ));
            }
            stats.error(ErrorCode::RateLimited);
            return Ok(None);
        }
        match apply(who) {
            Ok(tick) => {
                stats.inputs_accepted.fetch_add(1, Relaxed);
                Ok(Some(tick))
            }
            Err(e) => {
                stats.inputs_rejected.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    async fn join(
        &mut self,
        code: Option<&str>,
        role: Role,
        token: Option<&str>,
        zone: Option<&str>,
        resume: Option<&str>,
    ) -> Result<ServerFrame, FrameError> {
        let live = self.hub.live(code)?;
        let show = live.runtime.clone();
        if show.ended() {
            return Err(FrameError::new(ErrorCode::ShowEnded, "the show has ended"));
        }
        let mut participant = None;
        let mut actor = None;
        let mut guest_id = None;
        let mut number = 0;
        match role {
            Role::Performer => {
                if !self.hub.admission.performer(token, &show).await {
                    return Err(FrameError::new(
                        ErrorCode::Unauthorized,
                        "wrong or missing performer token",
                    ));
                }
                let by = self.hub.next_performer.fetch_add(1, Relaxed);
                actor = Some(Actor {
                    by,
                    priority: 1,
                    name: format!("performer-{by}"),
                });
            }
            Role::Display => {}
            Role::Audience => {
                // A device token (a guest of this show) keeps its slot across rejoins;
                // without one the phone joins anonymously, as from the QR code.
                let lease = match token {
                    Some(device) => {
                        let guest = self.hub.admission.guest(device, &show).await?;
                        guest_id = Some(guest);
                        show.join_guest(zone, guest, resume)?
                    }
                    None => show.join_audience(zone, resume)?,
                };
                number = lease.id.slot;
                participant = Some(lease);
            }
        }
        let rate = f64::from(show.spec.input_rate);
        self.inputs = Bucket::new(rate, rate * 2.0);
        let welcome = ServerFrame::Welcome {
            participant: number,
            resume: participant
                .as_ref()
                .map(|l| l.token.clone())
                .unwrap_or_default(),
            role,
            show: ShowInfo {
                code: show.code.clone(),
                title: show.spec.title.clone(),
                status: status_str(show.status()).to_string(),
                join_url: show.join_url.clone(),
            },
            params: show
                .spec
                .params
                .iter()
                .map(|p| ParamInfo {
                    name: p.name.clone(),
                    label: p.label().to_string(),
                    kind: match p.kind {
                        ParamKindName::Continuous => "continuous".into(),
                        ParamKindName::Discrete => "discrete".into(),
                    },
                    min: p.min,
                    max: p.max,
                    step: p.step,
                    unit: p.unit.clone(),
                    default: match p.kind {
                        ParamKindName::Continuous => p.default.unwrap_or(p.range().0),
                        ParamKindName::Discrete => p
                            .default_choice
                            .as_deref()
                            .and_then(|c| p.choice_index(c))
                            .unwrap_or(0) as f64,
                    },
                    choices: p.choices.clone(),
                })
                .collect(),
            zones: show.spec.zones.iter().map(|z| z.name.clone()).collect(),
            tick_hz: show.spec.tick_hz,
            state_hz: show.spec.state_hz,
            input_rate: show.spec.input_rate,
            phone: (!show.spec.phone.voices.is_empty() || !show.spec.phone.drones.is_empty()).then(
                || PhoneInfo {
                    lead_ms: show.spec.phone.lead_ms,
                    voices: show
                        .spec
                        .phone
                        .voices
                        .iter()
                        .map(|v| VoiceInfo {
                            name: v.name.clone(),
                            wave: wave_name(v.wave),
                            freq: v.freq,
                            gain: v.gain,
                            attack_ms: v.attack_ms,
                            hold_ms: v.hold_ms,
                            release_ms: v.release_ms,
                        })
                        .collect(),
                    hall: show.spec.phone.hall.map(|h| [h.width, h.depth]),
                    drones: show
                        .spec
                        .phone
                        .drones
                        .iter()
                        .map(|d| DroneInfo {
                            name: d.name.clone(),
                            follow: d.follow.clone(),
                            wave: wave_name(d.wave),
                            freq: d.freq,
                            freq_to: d.freq_to,
                            gain: d.gain,
                            smooth_ms: d.smooth_ms,
                            source: d.source.as_ref().map(|s| DroneSourceInfo {
                                x: s.x.clone(),
                                y: s.y.clone(),
                                radius: s.radius,
                            }),
                        })
                        .collect(),
                },
            ),
        };
        // Counted under its role before the welcome goes out, so a client that got its
        // welcome is never missing from the counts.
        self.hub.stats.pending.fetch_sub(1, Relaxed);
        self.hub.stats.role(role).fetch_add(1, Relaxed);
        if role == Role::Performer {
            live.calibration.add_performer(&self.peer);
        }
        self.joined = Some(Joined {
            show,
            live,
            role,
            guest: guest_id,
            participant,
            actor,
        });
        Ok(welcome)
    }
}

/// A phone voice's waveform as the protocol names it (`sine`, …, the spec's own names).
fn wave_name(w: tutti_spec::Wave) -> String {
    serde_json::to_value(w)
        .ok()
        .and_then(|w| w.as_str().map(str::to_owned))
        .unwrap_or_default()
}
