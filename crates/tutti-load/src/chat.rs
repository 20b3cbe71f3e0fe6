//! Chat under load (`--chat-senders`, `--chat-rate`, issue 12): every reading client also
//! chats in its show's room over the same socket, as a phone does (`chat_name`, then
//! `chat_sub` from the room's latest `room_seq` that `chat_hello` names); the senders among
//! them post `chat_post` frames through the measured window, and every follower checks each
//! `chat_event` against the room's gap-free sequence (the next one it expects: a lower one
//! is a duplicate, a higher one a gap) and times each message from its post to its
//! delivery.
//!
//! The clock: every client shares this process's monotonic clock, so a message carries the
//! time it was sent (`t=` microseconds since the run's origin, in its text) and a follower's
//! delivery latency is its own read time less that. The read time is when the client's task
//! handled the frame, so a generator short of CPU makes latencies larger, never smaller. The
//! arrival time is beside it: the kernel's receive stamp of the client's socket (see
//! `stamped`), when the message reached the phone, whatever the generator's threads were doing.
//!
//! Completeness: after the window the senders stop; the run waits (at most [`CHAT_SETTLE`])
//! until every post was answered and every follower has read up to its room's last
//! acknowledged `room_seq`; followers that have not are counted as incomplete.
//!
//! Many rooms (`--chat-rooms`, see `rooms`): the same checks, per room. Each client is then a
//! staff account's connection to one room (`chat_auth` with the account's access token, then
//! `chat_sub` of that room from the `last_seq` its `chat_hello` gives); clients are numbered
//! room by room, so a client's room is its index over the users per room, and each room's
//! last acknowledged `room_seq` is kept apart.
//!
//! What is kept is bounded whatever the run: per client its expected sequence and a few
//! counters, one slot per client for its progress, sharded latency histograms, and error
//! counts by code.
//!
//! Must never: allocate per delivered event beyond parsing it, count a chat error as an
//! input's, or treat a late delivery as a failed check (latency is the benchmark's figure;
//! a gap, a duplicate or a refused post is a failure).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::report::{ChatFigures, Spread};

/// Most messages a second one sender may post: the server takes 5 chat changes a second
/// per connection (10 at once), so a steady sender stays below it.
pub const MAX_RATE_PER_SENDER: f64 = 4.0;
/// Most messages a second in all.
pub const MAX_CHAT_RATE: f64 = 10_000.0;
/// Longest wait after the window for the last acks and deliveries.
pub const CHAT_SETTLE: Duration = Duration::from_secs(10);
/// Request `seq`s of chat posts start here, apart from the inputs' (an error frame that
/// echoes one is the chat's, not an input's).
pub const CHAT_SEQ_BASE: u64 = 1 << 40;
/// Largest latency a histogram holds, microseconds (larger ones are clamped).
const MAX_LATENCY_US: u64 = 60_000_000;
const SHARDS: usize = 16;

/// With `--chat-rooms`: the rooms and the staff accounts that follow them.
pub(crate) struct StaffRooms {
    /// The rooms' ids, in client order (clients `r * users .. (r + 1) * users` follow room `r`).
    pub rooms: Vec<i64>,
    /// One access token per user; user `u` holds one connection in every room.
    pub tokens: Vec<String>,
}

/// What all clients share for chat.
pub(crate) struct ChatShared {
    origin: Instant,
    senders: u32,
    /// With `--chat-rooms`: who follows which room (absent: every client follows its show's).
    staff: Option<StaffRooms>,
    /// Clients per room (all of them with one room).
    per_room: u32,
    /// Messages per second per sender.
    pub per_sender: f64,
    rate: f64,
    /// Senders claimed so far (the first readers to connect send).
    claimed: AtomicU64,
    posted: AtomicU64,
    acked: AtomicU64,
    duplicate_acks: AtomicU64,
    /// Per room: the highest `room_seq` any ack named.
    last_acked_seq: Box<[AtomicU64]>,
    refused: Mutex<BTreeMap<String, u64>>,
    /// Per client: the last `room_seq` it read in order (`u64::MAX`: not a follower).
    progress: Box<[AtomicU64]>,
    followers: AtomicU64,
    deliveries: AtomicU64,
    deliveries_in_window: AtomicU64,
    gaps: AtomicU64,
    duplicates: AtomicU64,
    malformed: AtomicU64,
    latency: Vec<Mutex<Histogram<u64>>>,
    /// Post → arrival at the follower's socket, microseconds, sharded.
    arrival: Vec<Mutex<Histogram<u64>>>,
}

impl ChatShared {
    /// For `clients` honest clients in one room, `senders` of them posting `rate` messages a
    /// second in all.
    pub fn new(origin: Instant, clients: u32, senders: u32, rate: f64) -> ChatShared {
        ChatShared::with_rooms(origin, clients, senders, rate, None)
    }

    /// For one connection per user and room of `staff`, `senders` of them (spread evenly over
    /// the rooms) posting `rate` messages a second in all.
    pub fn staff(origin: Instant, staff: StaffRooms, senders: u32, rate: f64) -> ChatShared {
        let clients = u32::try_from(staff.rooms.len() * staff.tokens.len()).unwrap_or(u32::MAX);
        ChatShared::with_rooms(origin, clients, senders, rate, Some(staff))
    }

    fn with_rooms(
        origin: Instant,
        clients: u32,
        senders: u32,
        rate: f64,
        staff: Option<StaffRooms>,
    ) -> ChatShared {
        let (rooms, per_room) = match &staff {
            Some(s) => (
                s.rooms.len().max(1),
                u32::try_from(s.tokens.len()).unwrap_or(u32::MAX).max(1),
            ),
            None => (1, clients.max(1)),
        };
        let hist = || {
            Mutex::new(
                Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds"),
            )
        };
        ChatShared {
            origin,
            senders,
            staff,
            per_room,
            per_sender: rate / f64::from(senders.max(1)),
            rate,
            claimed: AtomicU64::new(0),
            posted: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            duplicate_acks: AtomicU64::new(0),
            last_acked_seq: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            refused: Mutex::new(BTreeMap::new()),
            progress: (0..clients).map(|_| AtomicU64::new(u64::MAX)).collect(),
            followers: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            deliveries_in_window: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            latency: (0..SHARDS).map(|_| hist()).collect(),
            arrival: (0..SHARDS).map(|_| hist()).collect(),
        }
    }

    /// Whether clients are staff connections to many rooms (`--chat-rooms`).
    pub fn is_staff(&self) -> bool {
        self.staff.is_some()
    }

    /// The room (its place in [`StaffRooms::rooms`], 0 with one room) client `index` follows.
    fn slot(&self, index: usize) -> usize {
        (index / self.per_room as usize).min(self.last_acked_seq.len() - 1)
    }

    /// Clients that follow their room so far.
    pub fn followers(&self) -> u64 {
        self.followers.load(Relaxed)
    }

    /// The rooms' last acknowledged `room_seq`s, in room order.
    pub fn last_seqs(&self) -> Vec<u64> {
        self.last_acked_seq
            .iter()
            .map(|s| s.load(Relaxed))
            .collect()
    }

    fn us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// Whether the run still waits: a post unanswered, or a follower behind its room's last
    /// acknowledged `room_seq`.
    pub fn pending(&self) -> bool {
        let answered = self.acked.load(Relaxed) + self.refused_total();
        if answered < self.posted.load(Relaxed) {
            return true;
        }
        self.progress.iter().enumerate().any(|(i, p)| {
            let p = p.load(Relaxed);
            p != u64::MAX && p < self.last_acked_seq[self.slot(i)].load(Relaxed)
        })
    }

    fn refused_total(&self) -> u64 {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// A chat error frame (its `seq` at or above [`CHAT_SEQ_BASE`], or any `chat_*` refusal).
    pub fn refused(&self, code: &str) {
        let mut m = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(code.chars().take(40).collect()).or_insert(0) += 1;
    }

    /// The figures for the report.
    pub fn figures(&self, window_s: f64, dropped_followers: u64) -> ChatFigures {
        let spread = |shards: &[Mutex<Histogram<u64>>]| {
            let mut all = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("static histogram bounds");
            for h in shards {
                let _ = all.add(&*h.lock().unwrap_or_else(|p| p.into_inner()));
            }
            let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
            let spread = (!all.is_empty()).then(|| Spread {
                p50: ms(0.5),
                p95: ms(0.95),
                p99: ms(0.99),
                max: all.max() as f64 / 1000.0,
            });
            (spread, all.len())
        };
        let (latency_ms, samples) = spread(&self.latency);
        let (arrival_ms, _) = spread(&self.arrival);
        let lasts = self.last_seqs();
        let (mut complete, mut incomplete) = (0, 0);
        for (i, p) in self.progress.iter().enumerate() {
            match p.load(Relaxed) {
                u64::MAX => {}
                p if p >= lasts[self.slot(i)] => complete += 1,
                _ => incomplete += 1,
            }
        }
        let last = lasts.iter().copied().max().unwrap_or(0);
        let in_window = self.deliveries_in_window.load(Relaxed);
        ChatFigures {
            senders: self.senders,
            rate: self.rate,
            posted: self.posted.load(Relaxed),
            acked: self.acked.load(Relaxed),
            duplicate_acks: self.duplicate_acks.load(Relaxed),
            refused: self
                .refused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            last_seq: last,
            followers: self.followers.load(Relaxed),
            deliveries: self.deliveries.load(Relaxed),
            deliveries_in_window: in_window,
            deliveries_per_s: in_window as f64 / window_s.max(1e-9),
            latency_ms,
            arrival_ms,
            latency_samples: samples,
            gaps: self.gaps.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            followers_complete: complete,
            followers_incomplete: incomplete,
            followers_dropped: dropped_followers,
        }
    }
}

/// The fields of a chat frame the generator reads.
#[derive(Deserialize)]
struct ChatHead<'a> {
    #[serde(default)]
    room: Option<i64>,
    #[serde(default)]
    room_seq: Option<u64>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    duplicate: Option<bool>,
    #[serde(default)]
    rooms: Option<Vec<HelloRoom>>,
}

#[derive(Deserialize)]
struct HelloRoom {
    room: i64,
    last_seq: u64,
}

/// One client's chat.
pub(crate) struct ChatClient {
    index: u32,
    /// Its room's place among the rooms (0 with one room).
    slot: usize,
    /// With `--chat-rooms`: the room it follows (else the first `chat_hello` names).
    target: Option<i64>,
    /// Whether this client posts.
    pub sender: bool,
    /// The room it follows, once `chat_hello` named it.
    room: Option<i64>,
    /// The last `room_seq` read in order.
    last_seq: u64,
    posts: u64,
}

impl ChatClient {
    /// A reading client's chat. With one room the first `senders` to ask post; with many,
    /// each room's share of the senders, its users taking turns from room to room.
    pub fn new(shared: &ChatShared, index: u32) -> ChatClient {
        let slot = shared.slot(index as usize);
        let (target, sender) = match &shared.staff {
            Some(staff) => {
                let rooms = staff.rooms.len().max(1) as u64;
                let senders = u64::from(shared.senders);
                let here = senders / rooms + u64::from((slot as u64) < senders % rooms);
                let user = u64::from(index % shared.per_room);
                let turn = (user + slot as u64) % u64::from(shared.per_room);
                (staff.rooms.get(slot).copied(), turn < here)
            }
            None => (
                None,
                shared.claimed.fetch_add(1, Relaxed) < u64::from(shared.senders),
            ),
        };
        ChatClient {
            index,
            slot,
            target,
            sender,
            room: None,
            last_seq: 0,
            posts: 0,
        }
    }

    /// The first frame, which `chat_hello` answers with the rooms: a name in the show's room,
    /// or with many rooms the access token of the user this client is.
    pub fn hello(&self, shared: &ChatShared) -> String {
        match &shared.staff {
            Some(staff) => {
                let user = (self.index % shared.per_room) as usize;
                let token = staff.tokens.get(user).map_or("", String::as_str);
                serde_json::json!({"type": "chat_auth", "token": token}).to_string()
            }
            None => format!(r#"{{"type":"chat_name","name":"load {}"}}"#, self.index),
        }
    }

    /// Whether the client follows its room (posts wait for it).
    pub fn following(&self) -> bool {
        self.room.is_some()
    }

    /// The next post, stamped with the time it leaves.
    pub fn post(&mut self, shared: &ChatShared, now: Instant) -> Option<String> {
        let room = self.room?;
        self.posts += 1;
        shared.posted.fetch_add(1, Relaxed);
        Some(format!(
            r#"{{"type":"chat_post","room":{room},"client_id":"l{}-{}","text":"t={} from {}","seq":{}}}"#,
            self.index,
            self.posts,
            shared.us(now),
            self.index,
            CHAT_SEQ_BASE + self.posts
        ))
    }

    /// A `chat_*` frame: returns a frame to send (the `chat_sub` after `chat_hello`), or a
    /// parse failure to count.
    pub fn on_frame(
        &mut self,
        shared: &ChatShared,
        kind: &str,
        text: &str,
        now: Instant,
        arrived: Option<Instant>,
        in_window: bool,
    ) -> Result<Option<String>, String> {
        let head: ChatHead<'_> = match serde_json::from_str(text) {
            Ok(h) => h,
            Err(e) => {
                shared.malformed.fetch_add(1, Relaxed);
                return Err(format!("a {kind} frame the generator cannot read: {e}"));
            }
        };
        match kind {
            "chat_hello" => {
                let rooms = head.rooms.as_deref().unwrap_or_default();
                let found = match self.target {
                    Some(want) => rooms.iter().find(|r| r.room == want),
                    None => rooms.first(),
                };
                let Some(r) = found else {
                    shared.malformed.fetch_add(1, Relaxed);
                    return Err(match self.target {
                        Some(want) => format!("a chat_hello without room {want}"),
                        None => "a chat_hello without the show's room".into(),
                    });
                };
                if self.room.is_some() {
                    return Ok(None);
                }
                self.room = Some(r.room);
                self.last_seq = r.last_seq;
                if let Some(p) = shared.progress.get(self.index as usize) {
                    p.store(r.last_seq, Relaxed);
                }
                shared.followers.fetch_add(1, Relaxed);
                Ok(Some(format!(
                    r#"{{"type":"chat_sub","rooms":[{{"room":{},"after_seq":{}}}]}}"#,
                    r.room, r.last_seq
                )))
            }
            "chat_event" => {
                let (Some(room), Some(seq)) = (head.room, head.room_seq) else {
                    shared.malformed.fetch_add(1, Relaxed);
                    return Err("a chat_event without room or room_seq".into());
                };
                if Some(room) != self.room {
                    shared.malformed.fetch_add(1, Relaxed);
                    return Err(format!("a chat_event of room {room}, not followed"));
                }
                if seq <= self.last_seq {
                    shared.duplicates.fetch_add(1, Relaxed);
                    return Ok(None);
                }
                if seq > self.last_seq + 1 {
                    shared.gaps.fetch_add(seq - self.last_seq - 1, Relaxed);
                }
                self.last_seq = seq;
                if let Some(p) = shared.progress.get(self.index as usize) {
                    p.store(seq, Relaxed);
                }
                shared.deliveries.fetch_add(1, Relaxed);
                if head.kind.as_deref() == Some("message_posted") {
                    let sent = head
                        .text
                        .as_deref()
                        .and_then(|t| t.strip_prefix("t="))
                        .and_then(|t| t.split(' ').next())
                        .and_then(|t| t.parse::<u64>().ok());
                    if let (Some(sent), true) = (sent, in_window) {
                        shared.deliveries_in_window.fetch_add(1, Relaxed);
                        let us = shared.us(now).saturating_sub(sent).max(1);
                        shared.latency[self.index as usize % SHARDS]
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .saturating_record(us.min(MAX_LATENCY_US));
                        if let Some(at) = arrived {
                            let us = shared.us(at).saturating_sub(sent).max(1);
                            shared.arrival[self.index as usize % SHARDS]
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .saturating_record(us.min(MAX_LATENCY_US));
                        }
                    }
                }
                Ok(None)
            }
            "chat_ack" => {
                shared.acked.fetch_add(1, Relaxed);
                if head.duplicate == Some(true) {
                    shared.duplicate_acks.fetch_add(1, Relaxed);
                }
                if let Some(seq) = head.room_seq {
                    shared.last_acked_seq[self.slot].fetch_max(seq, Relaxed);
                }
                Ok(None)
            }
            // Presence, typing, unread counts and the end of the backlog: nothing to check.
            _ => Ok(None),
        }
    }

    /// The client left early: it no longer counts among the followers waited for.
    pub fn left(&self, shared: &ChatShared) -> bool {
        let was = self.room.is_some();
        if let Some(p) = shared.progress.get(self.index as usize) {
            p.store(u64::MAX, Relaxed);
        }
        was
    }
}
