//! Chat's `/play <sound>` through a show's own sound (issue 12): the one place that knows both
//! chat and sound. Chat tells it of every committed change that may show a message (a post
//! over `/live/v1`, a change through REST, a held post's release), by room and `seq`; it reads
//! that event from the store and, when it shows a `/play` message to everyone (a
//! `message_posted` that is neither shadow-muted nor held, or a `message_released`) in a show
//! room whose moderators turned `sounds_through_show` on, and that show is live on this
//! server, plays the sound through the show's [`Outputs`] (OSC targets told
//! `/tutti/sound s:NAME`, the embedded engine or scsynth playing it when it is the show's
//! sound).
//!
//! # Rate
//! At most one sound per room every [`MIN_GAP_MS`] (2 s) reaches the show, by the API's clock
//! (so tests move it by hand); the ones in between are dropped and counted — the phones in the
//! room still play them. The audience cannot flood the PA.
//!
//! Must never: play a message others may not see (hidden, held, deleted), play in a room whose
//! setting is off or whose show is not live here, hold a lock across `.await`, or render a
//! sound on an async thread (the first play of a sound renders it, on a blocking thread).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tutti_show::ShowRuntime;
use tutti_sound::{Outputs, SoundName};
use tutti_store::{ChatRoomKind, ShowStatus, Store};

/// The least time between two sounds of one room through its show, milliseconds.
pub const MIN_GAP_MS: i64 = 2_000;

/// What became of the `/play` messages considered so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SoundCounts {
    /// Played through the show's outputs.
    pub played: u64,
    /// Not played: the room's `sounds_through_show` is off (or it is no show's room).
    pub off: u64,
    /// Not played: the room's show is not live on this server.
    pub not_live: u64,
    /// Not played: another sound of the room played less than [`MIN_GAP_MS`] before.
    pub limited: u64,
}

#[derive(Default)]
struct Counters {
    played: AtomicU64,
    off: AtomicU64,
    not_live: AtomicU64,
    limited: AtomicU64,
}

/// A show running here: its runtime (for its status) and its outputs.
type Running = (Arc<ShowRuntime>, Arc<Outputs>);

struct Inner {
    store: Store,
    clock: tutti_api::Clock,
    /// The shows running here, by show id: their runtime (for its status) and outputs.
    shows: Mutex<HashMap<i64, Running>>,
    /// When each room last played a sound through its show, the clock's milliseconds.
    last: Mutex<HashMap<i64, i64>>,
    counts: Counters,
}

/// Chat's sounds through the shows' outputs. Cheap to clone.
#[derive(Clone)]
pub struct ChatSounds(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ChatSounds {
    /// No shows yet; `clock` is the API's (rate limits read it).
    pub fn new(store: Store, clock: tutti_api::Clock) -> ChatSounds {
        ChatSounds(Arc::new(Inner {
            store,
            clock,
            shows: Mutex::new(HashMap::new()),
            last: Mutex::new(HashMap::new()),
            counts: Counters::default(),
        }))
    }

    /// A show now running here with these outputs.
    pub fn add_show(&self, show: Arc<ShowRuntime>, outputs: Arc<Outputs>) {
        lock(&self.0.shows).insert(show.show_id, (show, outputs));
    }

    /// A show that stopped running here.
    pub fn remove_show(&self, show_id: i64) {
        lock(&self.0.shows).remove(&show_id);
    }

    /// What became of the `/play` messages so far.
    pub fn counts(&self) -> SoundCounts {
        let c = &self.0.counts;
        SoundCounts {
            played: c.played.load(Relaxed),
            off: c.off.load(Relaxed),
            not_live: c.not_live.load(Relaxed),
            limited: c.limited.load(Relaxed),
        }
    }

    /// Event `seq` of `room` was committed (and published): play its sound if it has one
    /// that may reach the show (in a task; the caller does not wait).
    pub fn changed(&self, room: i64, seq: u64) {
        let me = self.clone();
        tokio::spawn(async move { me.consider(room, seq).await });
    }

    async fn consider(&self, room: i64, seq: u64) {
        let Some(sound) = self.sound_of(room, seq).await else {
            return;
        };
        let c = &self.0.counts;
        let store = &self.0.store;
        let room_row = match store.chat_room(room).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, room, "chat sounds: reading the room failed");
                return;
            }
        };
        let show_id = match (room_row.kind, room_row.show_id) {
            (ChatRoomKind::Show, Some(show)) => show,
            _ => {
                c.off.fetch_add(1, Relaxed);
                return;
            }
        };
        match store.chat_room_settings(room).await {
            Ok(s) if s.sounds_through_show => {}
            Ok(_) => {
                c.off.fetch_add(1, Relaxed);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, room, "chat sounds: reading the settings failed");
                return;
            }
        }
        let outputs = lock(&self.0.shows)
            .get(&show_id)
            .filter(|(show, _)| show.status() == ShowStatus::Live)
            .map(|(_, o)| o.clone());
        let Some(outputs) = outputs else {
            c.not_live.fetch_add(1, Relaxed);
            return;
        };
        if !self.take_turn(room) {
            c.limited.fetch_add(1, Relaxed);
            return;
        }
        // The first play of a sound renders it (milliseconds of DSP): not on an async thread.
        let went = tokio::task::spawn_blocking(move || outputs.play_sound(sound))
            .await
            .unwrap_or_default();
        c.played.fetch_add(1, Relaxed);
        tracing::info!(room, show = show_id, sound = %sound, to = ?went, "a chat sound played through the show");
    }

    /// The sound of event `seq` of `room` when it shows a `/play` message to everyone.
    async fn sound_of(&self, room: i64, seq: u64) -> Option<SoundName> {
        let page = self
            .0
            .store
            .chat_events_after(room, seq.checked_sub(1)?, 1)
            .await
            .map_err(
                |e| tracing::warn!(error = %e, room, seq, "chat sounds: reading the event failed"),
            )
            .ok()?;
        let e = page.events.into_iter().next().filter(|e| e.seq == seq)?;
        if !e.kind.shows_message() || e.hidden {
            return None;
        }
        let name = tutti_chat::play_command(e.text.as_deref()?)?.ok()?;
        SoundName::parse(name).ok()
    }

    /// Whether `room` may play a sound now (none in the last [`MIN_GAP_MS`]); takes the turn.
    fn take_turn(&self, room: i64) -> bool {
        let now = self.0.clock.now_ms();
        let mut last = lock(&self.0.last);
        match last.get(&room) {
            Some(t) if now - t < MIN_GAP_MS => false,
            _ => {
                last.insert(room, now);
                true
            }
        }
    }
}
