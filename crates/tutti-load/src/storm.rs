//! The chat reconnect storm (`tutti load --chat-storm BEHIND`, issue 12): `--clients` phones
//! join the show, chat in its room and follow it; they all drop at once; while they are away
//! the room moves `BEHIND` events on (posts by a few extra connections); then every phone
//! reconnects at the same moment and follows the room again from the last `room_seq` it had.
//! Each must get exactly the events it missed — every `room_seq` after its own up to the
//! room's head, once, in order — and then `chat_caught_up`; the report gives how long each
//! took from the storm's start and how long until the last one was caught up.
//!
//! A reconnecting phone here is an anonymous joiner (`chat_name` on each connection, so the
//! store makes an audience identity per connection, as it does for a phone without a device
//! token): the storm's cost includes those writes.
//!
//! Must never: count a phone as caught up that missed or repeated an event, or time anything
//! but the storm itself (connecting and following before it are not in its figures).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tutti_protocol::ServerFrame;

use crate::client::{connect_and_join, Endpoint, Ws};
use crate::error::LoadError;
use crate::options::LoadOptions;
use crate::report::Spread;

/// Most events behind a storm may ask for.
pub const MAX_STORM_BEHIND: u64 = 10_000;
/// Posts one extra connection makes while the phones are away (under the server's burst of
/// 10 chat changes per connection).
const POSTS_PER_SENDER: u64 = 8;
/// Phones connecting at once before the storm (the storm itself has no such limit).
const SETUP_CONCURRENCY: usize = 200;
/// Longest wait for one phone's step (a guard against a hang, not a figure).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// What a storm measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StormReport {
    /// Phones asked for.
    pub clients: u32,
    /// Events each was behind when it reconnected (the room's head less its last seq).
    pub behind: u64,
    /// Phones that followed the room before the storm.
    pub followed: u64,
    /// The room's last `room_seq` when the phones reconnected.
    pub head_seq: u64,
    /// Phones that reconnected and got exactly what they missed, then `chat_caught_up`.
    pub exact: u64,
    /// Phones that reconnected but got a gap, a repeat or an event out of order.
    pub wrong: u64,
    /// Phones that could not reconnect or follow, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Events handed out in the storm (all phones).
    pub events: u64,
    /// From the storm's start to each exact phone's `chat_caught_up`, milliseconds.
    pub caught_up_ms: Option<Spread>,
    /// From the storm's start until the last phone was caught up, milliseconds.
    pub all_caught_up_ms: Option<f64>,
}

impl StormReport {
    /// Every phone reconnected and caught up exactly.
    pub fn passed(&self) -> bool {
        self.exact == u64::from(self.clients) && self.wrong == 0 && self.failed.is_empty()
    }

    /// The report as text for a terminal.
    pub fn table(&self) -> String {
        let spread = self.caught_up_ms.as_ref().map_or("-".to_owned(), |s| {
            format!(
                "p50 {:.0} / p95 {:.0} / p99 {:.0} / max {:.0} ms",
                s.p50, s.p95, s.p99, s.max
            )
        });
        let failed = if self.failed.is_empty() {
            "none".to_owned()
        } else {
            self.failed
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "chat reconnect storm: {} phones, each {} events behind (room head {})\n  \
             followed before {}; exact after {}; wrong {}; failed {}\n  \
             events handed out {}\n  caught up after the storm's start: {}\n  \
             all caught up after {} ms\n  result: {}\n",
            self.clients,
            self.behind,
            self.head_seq,
            self.followed,
            self.exact,
            self.wrong,
            failed,
            self.events,
            spread,
            self.all_caught_up_ms
                .map_or("-".to_owned(), |v| format!("{v:.0}")),
            if self.passed() { "ok" } else { "FAILED" }
        )
    }
}

fn text_of(m: Message) -> Option<String> {
    match m {
        Message::Text(t) => Some(t.as_str().to_owned()),
        _ => None,
    }
}

/// Reads frames until `want` returns `Some`, skipping states; an error frame fails.
async fn until<T>(
    ws: &mut Ws,
    what: &str,
    mut want: impl FnMut(ServerFrame) -> Option<T>,
) -> Result<T, String> {
    let read = async {
        loop {
            let m = ws
                .next()
                .await
                .ok_or_else(|| format!("{what}: closed"))?
                .map_err(|e| format!("{what}: {e}"))?;
            let Some(t) = text_of(m) else { continue };
            if t.starts_with(r#"{"type":"state""#) {
                continue;
            }
            match serde_json::from_str::<ServerFrame>(&t) {
                Ok(ServerFrame::Error { code, .. }) => {
                    return Err(format!("{what}: {}", code.as_str()))
                }
                Ok(f) => {
                    if let Some(v) = want(f) {
                        return Ok(v);
                    }
                }
                Err(_) => {}
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, read)
        .await
        .map_err(|_| format!("{what}: timed out"))?
}

async fn send(ws: &mut Ws, v: serde_json::Value) -> Result<(), String> {
    ws.send(Message::text(v.to_string()))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// Joins, names itself and reads `chat_hello`: the socket, the room and its head.
async fn chat_join(ep: &Endpoint, index: u32) -> Result<(Ws, i64, u64), String> {
    let (mut ws, _) = connect_and_join(ep, index).await?;
    send(
        &mut ws,
        json!({"type": "chat_name", "name": format!("storm {index}")}),
    )
    .await?;
    let (room, head) = until(&mut ws, "chat_hello", |f| match f {
        ServerFrame::ChatHello { rooms, .. } => rooms.first().map(|r| (r.room, r.last_seq)),
        _ => None,
    })
    .await?;
    Ok((ws, room, head))
}

/// Follows `room` after `after`: the `room_seq`s handed out until `chat_caught_up`.
async fn follow(ws: &mut Ws, room: i64, after: u64) -> Result<Vec<u64>, String> {
    send(
        ws,
        json!({"type": "chat_sub", "rooms": [{"room": room, "after_seq": after}]}),
    )
    .await?;
    let mut seqs = Vec::new();
    until(ws, "chat_caught_up", |f| match f {
        ServerFrame::ChatEvent(e) => {
            seqs.push(e.room_seq);
            None
        }
        ServerFrame::ChatCaughtUp { .. } => Some(()),
        _ => None,
    })
    .await?;
    Ok(seqs)
}

/// The storm: see the module's documentation.
pub async fn run_storm(opts: &LoadOptions, behind: u64) -> Result<StormReport, LoadError> {
    if behind == 0 || behind > MAX_STORM_BEHIND {
        return Err(LoadError::option(
            "--chat-storm",
            format!("events behind must be 1..={MAX_STORM_BEHIND} (got {behind})"),
        ));
    }
    let plan = opts.plan()?;
    crate::sys::raise_fd_limit()?;
    let addr = tokio::net::lookup_host((plan.target.host.as_str(), plan.target.port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| LoadError::Unreachable {
            url: plan.target.url.clone(),
            message: format!("cannot resolve '{}'", plan.target.host),
        })?;
    let ep = Arc::new(Endpoint {
        addr,
        url: plan.target.url.clone(),
        sources: plan.source_addrs.clone(),
        show: plan.show.clone(),
        rx_stamps: false,
    });
    let clients = opts.clients;

    // Before: every phone follows the room from its head, then all drop at once.
    let gate = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut setup = tokio::task::JoinSet::new();
    for i in 0..clients {
        let (ep, gate) = (ep.clone(), gate.clone());
        setup.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let (mut ws, room, head) = chat_join(&ep, i + 1).await?;
            let got = follow(&mut ws, room, head).await?;
            let last = got.last().copied().unwrap_or(head);
            Ok::<_, String>((i, ws, room, last))
        });
    }
    let mut before = vec![None; clients as usize];
    let mut sockets = Vec::with_capacity(clients as usize);
    let mut room = None;
    let mut setup_failed: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(r) = setup.join_next().await {
        match r.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((i, ws, r, last)) => {
                before[i as usize] = Some(last);
                room = Some(r);
                sockets.push(ws);
            }
            Err(e) => *setup_failed.entry(e).or_default() += 1,
        }
    }
    let Some(room) = room else {
        return Err(LoadError::Unreachable {
            url: plan.target.url.clone(),
            message: format!("no phone could follow the show's room: {setup_failed:?}"),
        });
    };
    let followed = sockets.len() as u64;
    drop(sockets);

    // Away: a few extra connections post `behind` messages.
    let senders = behind.div_ceil(POSTS_PER_SENDER);
    let mut posts = tokio::task::JoinSet::new();
    for s in 0..senders {
        let ep = ep.clone();
        let n = POSTS_PER_SENDER.min(behind - s * POSTS_PER_SENDER);
        posts.spawn(async move {
            let (mut ws, _, _) = chat_join(&ep, clients + 1 + s as u32).await?;
            let mut head = 0;
            for k in 0..n {
                send(
                    &mut ws,
                    json!({"type": "chat_post", "room": room, "client_id": format!("storm-{s}-{k}"),
                           "text": format!("while you were away {s}.{k}"), "seq": k + 1}),
                )
                .await?;
            }
            for _ in 0..n {
                let seq = until(&mut ws, "chat_ack", |f| match f {
                    ServerFrame::ChatAck { room_seq, .. } => Some(room_seq),
                    _ => None,
                })
                .await?;
                head = head.max(seq);
            }
            Ok::<_, String>(head)
        });
    }
    let mut head_seq = 0;
    while let Some(r) = posts.join_next().await {
        let h =
            r.map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|e| LoadError::Unreachable {
                    url: plan.target.url.clone(),
                    message: format!("posting while the phones were away: {e}"),
                })?;
        head_seq = head_seq.max(h);
    }

    // The storm: every phone that followed reconnects at once.
    let start = Instant::now();
    let mut storm = tokio::task::JoinSet::new();
    for (i, last) in before.iter().enumerate() {
        let Some(last) = *last else { continue };
        let ep = ep.clone();
        storm.spawn(async move {
            let (mut ws, room, _) = chat_join(&ep, i as u32 + 1).await?;
            let got = follow(&mut ws, room, last).await?;
            let took = start.elapsed();
            let exact = got.iter().copied().eq(last + 1..=head_seq);
            drop(ws);
            Ok::<_, String>((exact, got.len() as u64, took))
        });
    }
    let mut report = StormReport {
        clients,
        behind,
        followed,
        head_seq,
        exact: 0,
        wrong: 0,
        failed: setup_failed,
        events: 0,
        caught_up_ms: None,
        all_caught_up_ms: None,
    };
    let mut times = Vec::with_capacity(clients as usize);
    while let Some(r) = storm.join_next().await {
        match r.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((exact, n, took)) => {
                report.events += n;
                if exact {
                    report.exact += 1;
                    times.push(took.as_secs_f64() * 1e3);
                } else {
                    report.wrong += 1;
                }
            }
            Err(e) => *report.failed.entry(e).or_default() += 1,
        }
    }
    times.sort_by(f64::total_cmp);
    if !times.is_empty() {
        let at = |p: f64| {
            let rank = ((p / 100.0) * times.len() as f64).ceil() as usize;
            times[rank.clamp(1, times.len()) - 1]
        };
        report.caught_up_ms = Some(Spread {
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
            max: at(100.0),
        });
        if report.wrong == 0 && report.failed.is_empty() {
            report.all_caught_up_ms = times.last().copied();
        }
    }
    Ok(report)
}
