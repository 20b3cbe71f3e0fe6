//! A session's end of its rooms' fan-out: one bounded queue of frames, the rooms it fell
//! behind in or was banned from, and its *lane*.
//!
//! # The lane
//! A session that waits for frames with nothing queued, nothing left to catch up and nothing
//! of its own to hand out opens its lane: a copy of the last `seq` it handed out per room,
//! of the rooms it moderates, its user and whether it is a display. While the lane is open,
//! a room's writer hands each event that is the room's next for the session straight to the
//! transport's [`Outlet`] (the same check [`crate::Session`] makes when it takes a queued
//! event: not already handed out, not hidden from it, the wall only for a display), so an
//! event reaches thousands of idle followers without waking thousands of tasks, and the
//! events published while the writer was busy go out together, one write each. Anything
//! the lane cannot take goes to the queue as before and wakes the session: a `seq` further
//! ahead than the next (that room stops using the lane until the session reads the gap), a
//! transport with bytes still waiting to go out ([`Wrote::Not`], [`Wrote::Behind`]: the
//! lane closes), a ban (the lane closes first, so a banned user is written nothing more).
//! The session closes its lane before it does anything else, taking back how far the lane
//! got in each room, so the queue's events are deduplicated against it.
//!
//! Must never: write to the outlet while frames are queued ahead, an event that is not the
//! room's next for the session, one it may not see, or anything after a ban; hold its lock
//! across `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

use crate::{lock, Pushed, Vis};

/// Where a session's frames can be written at once, by whichever thread publishes them
/// (the transport implements it: a WebSocket connection's non-blocking socket).
pub trait Outlet: Send + Sync {
    /// Writes `frames` in this order, each as one message, if nothing else is waiting to go
    /// out ahead of them; never blocks.
    fn write(&self, frames: &[&str]) -> Wrote;
}

/// What an [`Outlet`] did with frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    /// Written, nothing waits.
    All,
    /// Taken, but some of their bytes wait for the socket to drain (the transport wakes its
    /// connection to write them): nothing more until the session has drained.
    Behind,
    /// Nothing taken: something else waits for the socket. The frames go to the queue.
    Not,
}

/// One event on its way to the followers of a room.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) seq: u64,
    pub(crate) frame: Arc<str>,
    pub(crate) vis: Vis,
}

/// Most slots an emptied session queue keeps.
const QUEUE_KEPT: usize = 8;

#[derive(Default)]
struct Lane {
    open: bool,
    /// Per room, the last `seq` handed out (the session's, then the lane's own).
    delivered: HashMap<i64, u64>,
    /// Rooms whose events go to the queue until the session closes the lane (a gap).
    stopped: HashSet<i64>,
    moderated: HashSet<i64>,
    user: i64,
    display: bool,
}

impl Lane {
    fn sees(&self, room: i64, vis: Vis) -> bool {
        vis.hidden_author
            .is_none_or(|a| a == self.user || self.moderated.contains(&room))
            && (!self.display || vis.wall)
    }
}

#[derive(Default)]
struct State {
    /// Frames waiting for the session, at most `cap` (an empty queue holds no allocation:
    /// thousands of idle phones each keeping a channel's block cost megabytes).
    queue: VecDeque<Pushed>,
    /// Rooms whose events no longer fit: the session catches up from the store.
    lagged: HashSet<i64>,
    /// Rooms the session's user was banned from: it stops following them at once.
    kicked: HashSet<i64>,
    lane: Lane,
}

/// A session's end of the queue, as rooms see it.
pub(crate) struct Subscriber {
    pub(crate) id: u64,
    state: Mutex<State>,
    cap: usize,
    /// Wakes the session when a frame is queued (a permit is kept if it is not waiting).
    queued: Notify,
    /// The user the session chats as (0 until known), so a ban finds its sessions.
    pub(crate) user: AtomicI64,
    outlet: OnceLock<Arc<dyn Outlet>>,
}

impl Subscriber {
    pub(crate) fn new(id: u64, cap: usize) -> Subscriber {
        Subscriber {
            id,
            state: Mutex::new(State::default()),
            cap: cap.max(1),
            queued: Notify::new(),
            user: AtomicI64::new(0),
            outlet: OnceLock::new(),
        }
    }

    /// Gives the subscriber its transport's outlet (once; later calls change nothing).
    pub(crate) fn set_outlet(&self, outlet: Arc<dyn Outlet>) {
        let _ = self.outlet.set(outlet);
    }

    /// Queues a frame (dropped when the queue is full: an event marks its room behind).
    pub(crate) fn push(&self, p: Pushed) {
        let mut st = lock(&self.state);
        if st.enqueue(p, self.cap) {
            drop(st);
            self.queued.notify_one();
        }
    }

    /// Hands a room's events to the session: through the lane as far as it takes them, the
    /// rest to the queue. `scratch` is the writer's, reused between subscribers.
    pub(crate) fn deliver<'a>(&self, room: i64, batch: &'a [Outgoing], scratch: &mut Vec<&'a str>) {
        let mut st = lock(&self.state);
        if st.lagged.contains(&room) {
            return;
        }
        let mut rest = batch;
        if let Some(outlet) = self.outlet.get() {
            let lane = &st.lane;
            if lane.open && st.queue.is_empty() && !lane.stopped.contains(&room) {
                if let Some(&from) = lane.delivered.get(&room) {
                    scratch.clear();
                    let mut last = from;
                    let mut taken = 0;
                    for e in batch {
                        if e.seq > last + 1 {
                            break;
                        }
                        if e.seq == last + 1 {
                            last = e.seq;
                            if lane.sees(room, e.vis) {
                                scratch.push(&e.frame);
                            }
                        }
                        taken += 1;
                    }
                    let wrote = if scratch.is_empty() {
                        Wrote::All
                    } else {
                        outlet.write(scratch)
                    };
                    let lane = &mut st.lane;
                    if wrote == Wrote::Not {
                        lane.open = false;
                    } else {
                        lane.delivered.insert(room, last);
                        if wrote == Wrote::Behind {
                            lane.open = false;
                        }
                        if taken < batch.len() {
                            lane.stopped.insert(room);
                        }
                        rest = &batch[taken..];
                    }
                }
            }
        }
        let mut queued = false;
        for e in rest {
            queued |= st.enqueue(
                Pushed {
                    room,
                    seq: e.seq,
                    frame: e.frame.clone(),
                    hidden_author: e.vis.hidden_author,
                    wall: e.vis.wall,
                },
                self.cap,
            );
        }
        drop(st);
        if queued {
            self.queued.notify_one();
        }
    }

    /// The session's user was banned from `room`: the lane closes and the session is woken
    /// to leave the room.
    pub(crate) fn kick(&self, room: i64) {
        let mut st = lock(&self.state);
        st.kicked.insert(room);
        st.lane.open = false;
        // Wakes a session waiting for frames (dropped once the room is left).
        let woken = st.enqueue(
            Pushed {
                room,
                seq: 0,
                frame: Arc::from(""),
                hidden_author: None,
                wall: false,
            },
            self.cap,
        );
        drop(st);
        if woken {
            self.queued.notify_one();
        }
    }

    /// Opens the lane with the session's view (see the module documentation) if nothing is
    /// queued, lagged or kicked and there is an outlet.
    pub(crate) fn open_lane(
        &self,
        delivered: &HashMap<i64, u64>,
        moderated: &HashSet<i64>,
        user: i64,
        display: bool,
    ) {
        if self.outlet.get().is_none() {
            return;
        }
        let mut st = lock(&self.state);
        if !st.queue.is_empty() || !st.lagged.is_empty() || !st.kicked.is_empty() {
            return;
        }
        let lane = &mut st.lane;
        lane.delivered.clear();
        lane.delivered
            .extend(delivered.iter().map(|(r, s)| (*r, *s)));
        lane.moderated.clear();
        lane.moderated.extend(moderated.iter().copied());
        lane.stopped.clear();
        lane.user = user;
        lane.display = display;
        lane.open = true;
    }

    /// Closes the lane and takes back how far it got in each room the session still follows.
    pub(crate) fn close_lane(&self, delivered: &mut HashMap<i64, u64>) {
        let mut st = lock(&self.state);
        let lane = &mut st.lane;
        lane.open = false;
        for (room, seq) in lane.delivered.drain() {
            if let Some(d) = delivered.get_mut(&room) {
                *d = (*d).max(seq);
            }
        }
    }

    /// The next queued frame, if one is there.
    pub(crate) fn try_pop(&self) -> Option<Pushed> {
        let mut st = lock(&self.state);
        let p = st.queue.pop_front();
        if st.queue.is_empty() && st.queue.capacity() > QUEUE_KEPT {
            // A burst went out: an idle session gives its room back.
            st.queue = VecDeque::new();
        }
        p
    }

    /// The next queued frame, waiting for one.
    pub(crate) async fn pop(&self) -> Pushed {
        loop {
            if let Some(p) = self.try_pop() {
                return p;
            }
            self.queued.notified().await;
        }
    }

    /// The rooms this subscriber fell behind in (queueing resumes for them at once).
    pub(crate) fn take_lagged(&self) -> Vec<i64> {
        lock(&self.state).lagged.drain().collect()
    }

    /// The rooms this subscriber's user was banned from since the last call.
    pub(crate) fn take_kicked(&self) -> Vec<i64> {
        lock(&self.state).kicked.drain().collect()
    }
}

impl State {
    /// Queues `p` unless its room is behind or the queue is full (an event then marks its
    /// room behind); whether it was queued.
    fn enqueue(&mut self, p: Pushed, cap: usize) -> bool {
        if p.seq > 0 && self.lagged.contains(&p.room) {
            return false;
        }
        if self.queue.len() >= cap {
            if p.seq > 0 {
                self.lagged.insert(p.room);
            }
            return false;
        }
        self.queue.push_back(p);
        true
    }
}
