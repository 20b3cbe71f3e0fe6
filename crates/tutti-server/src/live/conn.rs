//! One WebSocket connection: join, then a single task that reads frames and writes the
//! newest state whenever it changes. Per-connection memory is bounded: a watch receiver,
//! one pending ack, a token bucket, and the socket's small buffers.
//!
//! Must never: queue state frames, let one client's flood change anyone else's influence,
//! or disconnect a client for a bad frame (only frames over 64 KiB, which no honest
//! client sends, close the socket inside the WebSocket layer).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tutti_consensus::ParticipantId;
use tutti_protocol::{ClientFrame, ErrorCode, FrameError, ParamInfo, Role, ServerFrame, ShowInfo};
use tutti_spec::ParamKindName;

use super::show::{status_str, Actor, OverrideRequest, ShowRuntime};
use super::Hub;

/// How long a connection may stay without joining.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Error frames one connection may receive per second; more are counted, not sent.
const ERROR_BUDGET_PER_S: f64 = 20.0;

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
    role: Role,
    participant: Option<(ParticipantId, String)>,
    actor: Option<Actor>,
}

struct Conn {
    hub: Arc<Hub>,
    joined: Option<Joined>,
    /// Newest (seq, tick) to acknowledge with the next state.
    pending_ack: Option<(u64, u64)>,
    inputs: Bucket,
    errors: Bucket,
    rate_limited_since_notice: u64,
    last_rate_notice: Option<Instant>,
    out: Vec<Message>,
}

/// Serve one upgraded socket until it closes.
pub async fn serve(socket: WebSocket, hub: Arc<Hub>) {
    hub.stats.pending.fetch_add(1, Relaxed);
    let (mut tx, mut rx) = socket.split();
    let mut conn = Conn {
        hub: hub.clone(),
        joined: None,
        pending_ack: None,
        inputs: Bucket::new(30.0, 60.0),
        errors: Bucket::new(ERROR_BUDGET_PER_S, ERROR_BUDGET_PER_S),
        rate_limited_since_notice: 0,
        last_rate_notice: None,
        out: Vec::with_capacity(4),
    };

    // Phase 1: until `join` succeeds.
    let deadline = tokio::time::sleep(JOIN_TIMEOUT);
    tokio::pin!(deadline);
    let mut shutdown = hub.shutdown.clone();
    loop {
        tokio::select! {
            msg = rx.next() => {
                let Some(Ok(msg)) = msg else { hub.stats.pending.fetch_sub(1, Relaxed); return; };
                if matches!(msg, Message::Close(_)) {
                    // Send the queued close reply before dropping the socket.
                    let _ = tx.close().await;
                    hub.stats.pending.fetch_sub(1, Relaxed);
                    return;
                }
                conn.on_message(msg).await;
                if flush(&mut tx, &mut conn.out).await.is_err() {
                    hub.stats.pending.fetch_sub(1, Relaxed);
                    conn.leave();
                    return;
                }
                if conn.joined.is_some() { break; }
            }
            _ = &mut deadline => {
                hub.stats.pending.fetch_sub(1, Relaxed);
                let _ = tx.send(Message::Close(None)).await;
                return;
            }
            _ = shutdown.changed() => { hub.stats.pending.fetch_sub(1, Relaxed); return; }
        }
    }
    hub.stats.pending.fetch_sub(1, Relaxed);
    let (show, role) = {
        let j = conn.joined.as_ref().expect("joined");
        (j.show.clone(), j.role)
    };
    hub.stats.role(role).fetch_add(1, Relaxed);
    let mut state_rx = show.subscribe(role != Role::Audience);
    state_rx.mark_changed();
    let mut last_seq = 0u64;
    let mut stats_rx: watch::Receiver<Utf8Bytes> = hub.stats_tx.subscribe();
    let mut monitor_rx: watch::Receiver<Utf8Bytes> = hub.monitor_tx.subscribe();
    let performer = role == Role::Performer;

    // Phase 2: read frames, write the newest state.
    loop {
        tokio::select! {
            msg = rx.next() => {
                let Some(Ok(msg)) = msg else { break };
                if matches!(msg, Message::Close(_)) {
                    // The WebSocket layer queued the close reply; send it now, before a
                    // state frame could fail on the closing socket and drop it unsent
                    // (the client would see a reset instead of a clean close).
                    let _ = tx.close().await;
                    break;
                }
                conn.on_message(msg).await;
                if flush(&mut tx, &mut conn.out).await.is_err() { break; }
            }
            changed = state_rx.changed() => {
                if changed.is_err() { break; }
                let state = state_rx.borrow_and_update().clone();
                if let Some((seq, tick)) = conn.pending_ack.take() {
                    conn.out.push(Message::Text(ServerFrame::Ack { seq, tick }.to_json().into()));
                }
                conn.out.push(Message::Text(state.bytes));
                if flush(&mut tx, &mut conn.out).await.is_err() { break; }
                if role == Role::Audience && state.seq > 0 {
                    let skipped = if last_seq == 0 { 0 } else { state.seq.saturating_sub(last_seq + 1) };
                    last_seq = state.seq;
                    show.note_delivery(state.seq, state.at.elapsed(), skipped);
                }
            }
            changed = stats_rx.changed(), if performer => {
                if changed.is_err() { break; }
                let stats = stats_rx.borrow_and_update().clone();
                if tx.send(Message::Text(stats)).await.is_err() { break; }
            }
            changed = monitor_rx.changed(), if performer => {
                if changed.is_err() { break; }
                let frame = monitor_rx.borrow_and_update().clone();
                if tx.send(Message::Text(frame)).await.is_err() { break; }
            }
            _ = shutdown.changed() => break,
        }
    }
    hub.stats.role(role).fetch_sub(1, Relaxed);
    conn.leave();
}

async fn flush(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    out: &mut Vec<Message>,
) -> Result<(), axum::Error> {
    if out.is_empty() {
        return Ok(());
    }
    for m in out.drain(..) {
        tx.feed(m).await?;
    }
    tx.flush().await
}

impl Conn {
    fn leave(&mut self) {
        if let Some(Joined {
            show,
            participant: Some((_, token)),
            ..
        }) = &self.joined
        {
            show.disconnect(token);
        }
    }

    fn send(&mut self, frame: ServerFrame) {
        self.out.push(Message::Text(frame.to_json().into()));
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
            Message::Text(text) => match ClientFrame::parse(text.as_str()) {
                Ok(frame) => self.on_frame(frame).await,
                Err(e) => {
                    if self
                        .joined
                        .as_ref()
                        .is_some_and(|j| j.role == Role::Audience)
                    {
                        self.hub.stats.inputs_rejected.fetch_add(1, Relaxed);
                    }
                    self.error(e, None);
                }
            },
            Message::Binary(_) => self.error(
                FrameError::new(
                    ErrorCode::BinaryNotSupported,
                    "binary frames are not part of the protocol; send JSON text",
                ),
                None,
            ),
            // Pings are answered by the WebSocket layer; close ends the read loop.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
        }
    }

    async fn on_frame(&mut self, frame: ClientFrame) {
        let seq = frame.seq();
        if let ClientFrame::Ping { id } = frame {
            self.send(ServerFrame::Pong { id });
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
                        self.send(ServerFrame::Ack { seq, tick });
                    }
                    None
                })
            }
        };
        match result {
            Ok(Some(tick)) => {
                if let Some(seq) = seq {
                    self.pending_ack = Some((seq, tick));
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
        let Some((who, _)) = self.joined.as_ref().and_then(|j| j.participant.clone()) else {
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
        let show = self.hub.show(code)?;
        if show.status() == tutti_store::ShowStatus::Ended {
            return Err(FrameError::new(ErrorCode::ShowEnded, "the show has ended"));
        }
        let mut participant = None;
        let mut actor = None;
        let mut number = 0;
        match role {
            Role::Performer => {
                if !self.hub.authorize_performer(token, &show).await {
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
                let (id, tok) = match token {
                    Some(device) => {
                        let guest = self.hub.guest_of(device, &show).await?;
                        show.join_guest(zone, guest, resume)?
                    }
                    None => show.join_audience(zone, resume)?,
                };
                number = id.slot;
                participant = Some((id, tok));
            }
        }
        let rate = f64::from(show.spec.input_rate);
        self.inputs = Bucket::new(rate, rate * 2.0);
        let welcome = ServerFrame::Welcome {
            participant: number,
            resume: participant
                .as_ref()
                .map(|(_, t)| t.clone())
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
        };
        self.joined = Some(Joined {
            show,
            role,
            participant,
            actor,
        });
        Ok(welcome)
    }
}
