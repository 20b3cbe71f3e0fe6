//! The audience fan-out: a few tasks (one per runtime thread) that each own a share of a show's
//! audience sockets and write every published state frame to them, already framed, with
//! one `writev` per client (in front of it, the acks of the ticks that state reflects).
//!
//! No task is woken per client and per state: a state costs the kernel's send and a
//! short lock. A client whose socket is full is skipped (latest wins) at the cost of one
//! failed write, so slow readers and clients that never read cost the others almost
//! nothing, and they do not count as late for the adaptive rate.
//!
//! Must never: await while holding a peer's lock, queue state frames, or run a whole
//! fan-out without yielding (inputs must keep flowing while thousands of writes go out).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, watch};
use tutti_show::metrics::LocalHistogram;
use tutti_show::{HubStats, ShowRuntime, Tick, TickSink, TickTimes};

use crate::peer::{text_frame, Delivery, Peer};

/// One published state frame: the bytes every connection of a class shares (a whole
/// WebSocket text frame, header included), with its publish number, tick and time.
#[derive(Clone)]
pub struct Published {
    /// The framed JSON text.
    pub frame: Bytes,
    /// Audience publish number (0 for detailed frames, and before the first publish).
    pub seq: u64,
    /// The tick whose state it is: inputs promised this tick or an earlier one are in it.
    pub tick: u64,
    /// When it was published.
    pub at: Instant,
}

impl Published {
    fn empty() -> Published {
        Published {
            frame: Bytes::from(text_frame(b"{}")),
            seq: 0,
            tick: 0,
            at: Instant::now(),
        }
    }

    fn of(json: &str, seq: u64, tick: u64) -> Published {
        Published {
            frame: Bytes::from(text_frame(json.as_bytes())),
            seq,
            tick,
            at: Instant::now(),
        }
    }
}

/// The detailed state (performers, displays): a latest-wins mailbox each such connection
/// reads, framed once per publish.
pub struct DetailFeed {
    tx: watch::Sender<Published>,
}

impl Default for DetailFeed {
    fn default() -> Self {
        DetailFeed {
            tx: watch::channel(Published::empty()).0,
        }
    }
}

impl DetailFeed {
    /// A mailbox of detailed state frames.
    pub fn subscribe(&self) -> watch::Receiver<Published> {
        self.tx.subscribe()
    }
}

impl TickSink for DetailFeed {
    fn on_tick(&self, tick: &Tick<'_>) {
        if let Some(p) = tick.detail {
            self.tx.send_replace(Published::of(p.json, 0, tick.number));
        }
    }
}

/// Writes between two yields to the scheduler (about 3 ms of writes): often enough for
/// inputs to keep flowing, rarely enough that a flood of inputs cannot stretch a fan-out
/// round past the next publish.
const YIELD_EVERY: usize = 1024;

/// Writes of a state round between two looks for a cue (a few hundred microseconds).
const CUE_CHECK_EVERY: usize = 128;

/// Cues a shard may fall behind before it drops them (and counts them undelivered).
pub const CUE_QUEUE: usize = 64;
/// A delivery later than this after its publish counts as late, whatever the rate: at a
/// low rate a whole period (up to half a second) would let the server fall that far
/// behind — and inputs wait behind the same backlog — before the rate reacts.
const LATE_AFTER_MAX_S: f64 = 0.2;

/// A show's fan-out shards, started with the first audience connection.
///
/// A shard's inbox of new sockets is an unbounded channel because `attach` runs inside a
/// connection's join and must not wait; it never holds more than the connections the
/// hub admitted (`limits.max_connections`), and each publish empties it.
pub struct Fanout {
    states: watch::Sender<Published>,
    /// Cue frames (framed), written to every audience socket as they come: never skipped
    /// like states, only dropped for a shard that falls [`CUE_QUEUE`] cues behind.
    cues: broadcast::Sender<Bytes>,
    stats: Arc<HubStats>,
    rate: Arc<AtomicU64>,
    times: Arc<TickTimes>,
    shards: OnceLock<Vec<mpsc::UnboundedSender<Arc<Peer>>>>,
    next: AtomicUsize,
}

impl TickSink for Fanout {
    /// Frame the audience's state text once and publish it to the shards.
    fn on_tick(&self, tick: &Tick<'_>) {
        if let Some(p) = tick.audience {
            self.states
                .send_replace(Published::of(p.json, p.seq, tick.number));
        }
    }
}

impl Fanout {
    /// The fan-out of a show: it reads the show's adaptive rate (to judge lateness), its
    /// tick times (for acks) and adds to its counters.
    pub fn new(show: &ShowRuntime) -> Fanout {
        Fanout {
            states: watch::channel(Published::empty()).0,
            cues: broadcast::channel(CUE_QUEUE).0,
            stats: show.stats().clone(),
            rate: show.state_rate_handle(),
            times: show.tick_times(),
            shards: OnceLock::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// Hand an audience socket over, after writing it the newest state so it has one at
    /// once. From then on a shard writes it every publish.
    pub(crate) fn attach(&self, peer: Arc<Peer>) -> std::io::Result<()> {
        let current = self.states.borrow().clone();
        if current.seq > 0 {
            peer.send([&current.frame, &[]])?;
        }
        self.assign(peer);
        Ok(())
    }

    /// Send a cue frame (JSON text) to every audience socket of the show, now.
    pub fn cue(&self, json: &str) {
        self.stats.cues_sent.fetch_add(1, Relaxed);
        // No shard yet: no audience to tell.
        let _ = self.cues.send(Bytes::from(text_frame(json.as_bytes())));
    }

    /// Hand an audience socket to a shard (round robin). The shards start on first use
    /// and end when the fan-out is dropped with its show.
    fn assign(&self, peer: Arc<Peer>) {
        let (states, cues, stats, rate, times) = (
            &self.states,
            &self.cues,
            &self.stats,
            &self.rate,
            &self.times,
        );
        let shards = self.shards.get_or_init(|| {
            // One shard per runtime thread: the shards write in parallel, and more would
            // only take turns.
            let n = tokio::runtime::Handle::current()
                .metrics()
                .num_workers()
                .clamp(1, 16);
            (0..n)
                .map(|_| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(run_shard(
                        states.subscribe(),
                        cues.subscribe(),
                        rx,
                        stats.clone(),
                        rate.clone(),
                        times.clone(),
                    ));
                    tx
                })
                .collect()
        });
        let i = self.next.fetch_add(1, Relaxed) % shards.len();
        if shards[i].send(peer.clone()).is_err() {
            // The shard ended (the show is going away): nothing will be sent.
            peer.close();
        }
    }
}

/// One shard: wait for a publish or a cue, write it to every socket of the shard.
async fn run_shard(
    mut states: watch::Receiver<Published>,
    mut cues: broadcast::Receiver<Bytes>,
    mut joins: mpsc::UnboundedReceiver<Arc<Peer>>,
    stats: Arc<HubStats>,
    rate: Arc<AtomicU64>,
    times: Arc<TickTimes>,
) {
    let mut peers: Vec<Arc<Peer>> = Vec::new();
    let mut scratch = Vec::with_capacity(96);
    let mut lag = LocalHistogram::default();
    let mut round = 0usize;
    loop {
        // Cues first: each has a time to be played by.
        let cue = tokio::select! {
            biased;
            c = cues.recv() => Some(c),
            r = states.changed() => match r {
                Ok(()) => None,
                Err(_) => break,
            },
        };
        while let Ok(p) = joins.try_recv() {
            peers.push(p);
        }
        match cue {
            Some(Ok(frame)) => {
                send_cue(&peers, &frame, &stats).await;
                continue;
            }
            Some(Err(RecvError::Lagged(n))) => {
                lagged(n, &peers, &stats);
                continue;
            }
            Some(Err(RecvError::Closed)) => break,
            None => {}
        }
        peers.retain(|p| !p.is_closed());
        let state = states.borrow_and_update().clone();
        if peers.is_empty() || state.seq == 0 {
            continue;
        }
        let hz = f64::from_bits(rate.load(Relaxed));
        let late_after = (1.0 / hz.max(0.1)).min(LATE_AFTER_MAX_S);
        let (mut written, mut skipped, mut late) = (0u64, 0u64, 0u64);
        // Start somewhere else each time, so no client is always the last one written.
        round = round.wrapping_add(1);
        let n = peers.len();
        let start = round.wrapping_mul(7919) % n;
        for k in 0..n {
            let peer = &peers[(start + k) % n];
            match peer.deliver(&state.frame, state.tick, &times, &mut scratch) {
                Delivery::Written => {
                    let s = state.at.elapsed().as_secs_f64();
                    lag.observe(s);
                    written += 1;
                    if s > late_after {
                        late += 1;
                    }
                }
                Delivery::Skipped => skipped += 1,
                // The connection task sees the failure on its next read and cleans up.
                Delivery::Failed => peer.close(),
            }
            if (k + 1) % CUE_CHECK_EVERY == 0 {
                // A cue does not wait for the rest of a state round: it has a time.
                cue_now(&mut cues, &peers, &stats).await;
            }
            if (k + 1) % YIELD_EVERY == 0 {
                tokio::task::yield_now().await;
            }
        }
        stats.fanout.observe(state.at.elapsed().as_secs_f64());
        lag.drain_into(&stats.lag);
        stats.states_delivered.fetch_add(written, Relaxed);
        stats.states_skipped.fetch_add(skipped, Relaxed);
        stats.states_late.fetch_add(late, Relaxed);
        stats.states_window.fetch_add(written, Relaxed);
        stats.states_late_window.fetch_add(late, Relaxed);
    }
    for p in peers {
        p.close();
    }
}

/// Cues that came while a shard is in a state round: written at once, to every socket.
async fn cue_now(cues: &mut broadcast::Receiver<Bytes>, peers: &[Arc<Peer>], stats: &HubStats) {
    loop {
        match cues.try_recv() {
            Ok(frame) => send_cue(peers, &frame, stats).await,
            Err(broadcast::error::TryRecvError::Lagged(n)) => lagged(n, peers, stats),
            // Empty, or closed: the shard's loop sees a close next time round.
            Err(_) => return,
        }
    }
}

/// A shard fell `n` cues behind: they are not delivered to its sockets.
fn lagged(n: u64, peers: &[Arc<Peer>], stats: &HubStats) {
    stats
        .cues_undelivered
        .fetch_add(n * peers.len() as u64, Relaxed);
}

/// Write a cue frame to every open socket of a shard, behind whatever each has pending.
async fn send_cue(peers: &[Arc<Peer>], frame: &[u8], stats: &HubStats) {
    let (mut sent, mut failed) = (0u64, 0u64);
    for (k, peer) in peers.iter().enumerate() {
        if peer.is_closed() {
            continue;
        }
        match peer.send([frame, &[]]) {
            Ok(left) => {
                sent += 1;
                if left {
                    peer.wake.notify_one();
                }
            }
            Err(_) => {
                failed += 1;
                peer.close();
            }
        }
        if (k + 1) % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
    }
    stats.cue_deliveries.fetch_add(sent, Relaxed);
    stats.cues_undelivered.fetch_add(failed, Relaxed);
}
