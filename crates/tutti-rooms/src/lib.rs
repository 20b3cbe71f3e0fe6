//! Chat's live side (issue 12): a registry of rooms with their subscribers, the events of each
//! room fanned out to them in `seq` order, exact catch-up from the store before live events,
//! presence, typing indicators and unread counts. Transports use it through a [`Session`] per
//! connection: frames in (`tutti_protocol::ClientFrame`'s chat frames), serialized frames out.
//!
//! # Order, loss and duplicates
//! Every change is made through the store first and published only after its commit
//! ([`Rooms::publish`], also called by the management API through its notifier). A room keeps
//! the `seq` it published last and publishes only the next one: an event that arrives ahead of
//! one still in flight makes the room read the missing ones from the store and publish them in
//! order. A session subscribes to a room *before* it reads the room's backlog from the store,
//! then reads the backlog in pages, then hands out the live events it queued meanwhile,
//! skipping each one whose `seq` it has already handed out: nothing is missed, nothing is sent
//! twice. A session that meets a `seq` further ahead than the next one reads the gap from the
//! store.
//!
//! # A room's standing state
//! A page opening a room reads only its latest events, so a pin or an announcement made
//! before them would be missed. A `chat_sub` that asks for `extras` (a page's first follow of a
//! room, not a reconnect) ends that room's catch-up with `chat_extras`: the pinned messages and
//! the latest announcement everyone may see, read from the store after the last page and
//! stamped with the room's `seq` they are the state after (never a hidden or held message; a
//! display, handed the wall only, gets none).
//!
//! # Bounded queues
//! Each session has one bounded queue of frames serialized once per event (shared bytes). When
//! it is full, the room marks the session behind in that room and stops queueing its events;
//! the session, when its transport next asks for frames, reads what it missed from the store
//! (the same exact catch-up), so a slow reader costs store reads, never memory, and never loses
//! an event. Presence and typing frames are dropped when the queue is full (the room's next
//! presence frame says it all again).
//!
//! # Presence in big rooms
//! A room's presence changes with every arrival and departure, and it goes to every follower:
//! sent whole on every change, a room filling up with N people would cost N² frames of up to N
//! names. So a room sends at most one presence frame per `presence_every_ms` (its clock's
//! milliseconds): a change when none went out for that long is sent at once, later changes
//! wait and go out together when the interval has passed ([`Rooms::sweep_presence`], which the
//! composition root calls a few times a second, sends them). A frame carries the number of
//! people there and the first `presence_list` of them in user id order (kept sorted, so a
//! frame costs that many names, not the room's size). A session that subscribes gets the
//! room's current presence at once, whatever the interval.
//!
//! Must never: know about sockets, WebSocket framing or HTTP; hold a lock across `.await`;
//! publish a change that is not committed; hand a session an event of a room it may not read;
//! send one event twice or skip one to a session.

mod clock;
mod session;
mod subscriber;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use tutti_chat::{render_html, MessageText};
use tutti_protocol::{
    ChatAttachmentInfo, ChatEventInfo, ChatMessageInfo, ChatPerson, ErrorCode, FrameError,
    ServerFrame,
};
use tutti_store::{
    ChatAttachmentRow, ChatEvent, ChatEventKind, ChatRefusal, ChatShowMessage, Store, StoreError,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use session::{Origin, Session};
use subscriber::{Outgoing, Subscriber};
pub use subscriber::{Outlet, Wrote};

/// A boxed future, as [`StaffAuth`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A staff account signed in by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// The user id.
    pub user: i64,
    /// The display name.
    pub name: String,
    /// An admin (moderates every room).
    pub admin: bool,
}

/// Checks a staff access token (the composition root asks the management API). The service
/// knows nothing of how tokens are made.
pub trait StaffAuth: Send + Sync {
    /// The staff account of an access token, or `None` (unknown, expired, revoked, audience).
    fn staff<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<Staff>>;
}

/// Refuses every token (tests and tools without accounts).
pub struct NoStaff;

impl StaffAuth for NoStaff {
    fn staff<'a>(&'a self, _token: &'a str) -> BoxFuture<'a, Option<Staff>> {
        Box::pin(std::future::ready(None))
    }
}

/// Settings.
#[derive(Debug, Clone)]
pub struct RoomsConfig {
    /// Frames a session may have queued (events, presence, typing) before it is behind.
    pub queue: usize,
    /// How long a session stays in a room's presence after its last frame, milliseconds.
    pub presence_ttl_ms: i64,
    /// A session's typing indicators per room: at most one per this many milliseconds.
    pub typing_every_ms: i64,
    /// Events read from the store per catch-up page (1–1000).
    pub page: u32,
    /// A room sends at most one presence frame per this many milliseconds (0: every change
    /// at once); changes in between go out together at the end of the interval.
    pub presence_every_ms: i64,
    /// The most people a presence frame names (the first ones in user id order); its count
    /// is always the room's whole.
    pub presence_list: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            queue: 512,
            presence_ttl_ms: 30_000,
            typing_every_ms: 2_000,
            page: 200,
            presence_every_ms: 1_000,
            presence_list: 50,
        }
    }
}

/// One queued frame: an event of a room (`seq` ≥ 1) or an ephemeral frame (`seq` 0).
#[derive(Debug, Clone)]
pub(crate) struct Pushed {
    pub(crate) room: i64,
    pub(crate) seq: u64,
    pub(crate) frame: Arc<str>,
    /// The author of a hidden (shadow-muted) message this event concerns: only that author
    /// and the room's moderators are handed it; others skip its `seq`.
    pub(crate) hidden_author: Option<i64>,
    /// An event a display's wall shows (`wall_approved`, `wall_rejected`, `message_deleted`):
    /// a display session is handed only these.
    pub(crate) wall: bool,
}

/// Who an event is for: its hidden author (see [`Pushed::hidden_author`]) and whether a
/// display's wall takes it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Vis {
    pub(crate) hidden_author: Option<i64>,
    pub(crate) wall: bool,
}

/// Who is in a room: per user, their name and each session's last sign of life.
#[derive(Default)]
struct Here {
    name: String,
    sessions: HashMap<u64, i64>,
}

#[derive(Default)]
struct RoomState {
    /// The last `seq` published (unknown until the first).
    head: Option<u64>,
    subs: HashMap<u64, Arc<Subscriber>>,
    /// Who is here, in user id order (a presence frame names the first few).
    here: BTreeMap<i64, Here>,
    /// When the room last sent its presence to its followers (its clock's milliseconds).
    presence_sent: Option<i64>,
    /// The presence changed since it was last sent.
    presence_due: bool,
    /// Events published and not yet handed to the subscribers, in `seq` order.
    outgoing: Vec<Outgoing>,
    /// A writer is handing out `outgoing` (it takes what is published meanwhile too).
    writing: bool,
    /// `subs` as a list for the writer (made again after a change).
    list: Option<Arc<[Arc<Subscriber>]>>,
}

impl RoomState {
    fn add(&mut self, sub: &Arc<Subscriber>) {
        self.subs.insert(sub.id, sub.clone());
        self.list = None;
    }

    fn remove(&mut self, session: u64) -> Option<Arc<Subscriber>> {
        self.list = None;
        self.subs.remove(&session)
    }

    /// The subscribers now, as a list shared until they change.
    fn list(&mut self) -> Arc<[Arc<Subscriber>]> {
        self.list
            .get_or_insert_with(|| self.subs.values().cloned().collect())
            .clone()
    }

    /// Queues an ephemeral frame (presence, typing) for every subscriber but `except`.
    fn broadcast(&self, room: i64, frame: &Arc<str>, except: Option<u64>) {
        for (id, sub) in &self.subs {
            if Some(*id) != except {
                sub.push(Pushed {
                    room,
                    seq: 0,
                    frame: frame.clone(),
                    hidden_author: None,
                    wall: false,
                });
            }
        }
    }

    /// The room's presence now: how many people, and the first `list` of them.
    fn presence_frame(&self, room: i64, list: usize) -> Arc<str> {
        let here: Vec<ChatPerson> = self
            .here
            .iter()
            .take(list)
            .map(|(user, h)| ChatPerson {
                user: *user,
                name: h.name.clone(),
            })
            .collect();
        Arc::from(
            ServerFrame::ChatPresence {
                room,
                count: self.here.len() as u64,
                here,
            }
            .to_json(),
        )
    }

    /// The presence changed at `now`: sent at once when the room sent none for
    /// `config.presence_every_ms`, otherwise left for [`RoomState::flush_presence`].
    fn presence_changed(&mut self, room: i64, now: i64, config: &RoomsConfig) {
        self.presence_due = true;
        self.flush_presence(room, now, config);
    }

    /// Sends the presence to every follower if it changed and the interval since the last
    /// one has passed.
    fn flush_presence(&mut self, room: i64, now: i64, config: &RoomsConfig) {
        if !self.presence_due
            || self
                .presence_sent
                .is_some_and(|at| now.saturating_sub(at) < config.presence_every_ms)
        {
            return;
        }
        self.presence_due = false;
        self.presence_sent = Some(now);
        let frame = self.presence_frame(room, config.presence_list);
        self.broadcast(room, &frame, None);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most display names kept in memory (the cache is emptied when it grows past this).
const NAMES_CACHED: usize = 10_000;

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) auth: Arc<dyn StaffAuth>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: RoomsConfig,
    /// The rooms someone follows, each behind its own lock (taken after this map's, never
    /// the other way round), so rooms do not wait for each other's fan-out.
    rooms: Mutex<HashMap<i64, Arc<Mutex<RoomState>>>>,
    names: Mutex<HashMap<i64, String>>,
    next_session: AtomicU64,
    /// Recent events' rendered frames, so a crowd catching up at once renders each event once.
    frames: Mutex<FrameCache>,
}

/// Most rendered frames kept per room (its latest events).
const FRAMES_PER_ROOM: usize = 1024;
/// Most rooms whose frames are kept (past it, the cache starts over).
const FRAME_ROOMS: usize = 256;

/// Rendered `chat_event` frames by room and `seq`. An event never changes once written except
/// that deleting its message clears its text (and attachments), so each frame is kept with
/// whether it carried text, and a row without text never takes a frame that had some.
#[derive(Default)]
struct FrameCache {
    rooms: HashMap<i64, BTreeMap<u64, (bool, Arc<str>)>>,
}

impl FrameCache {
    fn get(&self, e: &ChatEvent) -> Option<Arc<str>> {
        let (had_text, frame) = self.rooms.get(&e.room_id)?.get(&e.seq)?;
        (*had_text == e.text.is_some()).then(|| frame.clone())
    }

    fn put(&mut self, e: &ChatEvent, frame: &Arc<str>) {
        if self.rooms.len() >= FRAME_ROOMS && !self.rooms.contains_key(&e.room_id) {
            self.rooms.clear();
        }
        let room = self.rooms.entry(e.room_id).or_default();
        room.insert(e.seq, (e.text.is_some(), frame.clone()));
        while room.len() > FRAMES_PER_ROOM {
            room.pop_first();
        }
    }
}

/// The chat service: rooms and their subscribers over the store. Cheap to clone.
#[derive(Clone)]
pub struct Rooms {
    pub(crate) inner: Arc<Inner>,
}

/// A store error in the live protocol's words (the codes of `docs/protocol.md`, the same as
/// the management API's chat routes).
pub fn store_error(e: StoreError) -> FrameError {
    match e {
        StoreError::NotFound { what, id } => {
            FrameError::new(ErrorCode::NotFound, format!("no {what} {id}"))
        }
        StoreError::ChatRefused(why) => {
            let code = match why {
                ChatRefusal::Muted => ErrorCode::Muted,
                ChatRefusal::Banned => ErrorCode::Banned,
                ChatRefusal::SlowMode { .. } => ErrorCode::SlowMode,
                ChatRefusal::Filtered { .. } => ErrorCode::Filtered,
            };
            FrameError::new(code, why.to_string())
        }
        StoreError::Conflict {
            what: "read-only room",
            ..
        } => FrameError::new(
            ErrorCode::RoomReadOnly,
            "the room is read-only: nothing can be posted, edited or boosted in it",
        ),
        StoreError::Conflict { what, value } => {
            FrameError::new(ErrorCode::Conflict, format!("{what}: {value}"))
        }
        StoreError::Invalid { field, reason, .. } if reason.contains("from the future") => {
            FrameError::new(ErrorCode::FutureSeq, format!("{field}: {reason}"))
        }
        StoreError::Invalid { field, reason, .. } => {
            FrameError::new(ErrorCode::BadFrame, format!("{field}: {reason}"))
        }
        e @ StoreError::Storage { .. } => {
            FrameError::new(ErrorCode::StorageUnavailable, e.to_string())
        }
        e => {
            tracing::warn!(error = %e, "chat: a store operation failed");
            FrameError::new(
                ErrorCode::Internal,
                "the change could not be made; nothing changed",
            )
        }
    }
}

impl Rooms {
    /// The service over a store.
    pub fn new(
        store: Store,
        auth: Arc<dyn StaffAuth>,
        clock: Arc<dyn Clock>,
        config: RoomsConfig,
    ) -> Rooms {
        Rooms {
            inner: Arc::new(Inner {
                store,
                auth,
                clock,
                config,
                rooms: Mutex::new(HashMap::new()),
                names: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(1),
                frames: Mutex::new(FrameCache::default()),
            }),
        }
    }

    /// A session for one connection: a show's audience or (`Origin::Staff`) a connection that
    /// signs in with `chat_auth`.
    pub fn session(&self, origin: Origin) -> Session {
        let id = self.inner.next_session.fetch_add(1, Relaxed);
        let sub = Arc::new(Subscriber::new(id, self.inner.config.queue));
        Session::new(self.clone(), origin, sub)
    }

    /// Publishes a committed event to the room's subscribers, in `seq` order (an event ahead of
    /// the next makes the room read the missing ones from the store first). Rooms nobody
    /// follows cost nothing.
    pub async fn publish(&self, event: ChatEvent) {
        let room = event.room_id;
        let Some(head) = self.head_before(room, event.seq) else {
            return;
        };
        if head + 1 == event.seq || head == 0 {
            let frame = self.event_frame(&event).await;
            if self.publish_next(room, event.seq, &frame, vis(&event)) {
                return;
            }
        }
        self.fill(room, event.seq).await;
    }

    /// A room advanced to at least `seq` (the management API's notifier: it names the change,
    /// the room reads what it has not published yet from the store).
    pub async fn advanced(&self, room: i64, seq: u64) {
        if self.head_before(room, seq).is_some() {
            self.fill(room, seq).await;
        }
    }

    /// Releases the audience messages whose room delay has ended (`message_released` events,
    /// committed by the store) and publishes each to the room's followers; each release as
    /// (room, `seq` of its `message_released` event, message). A store that cannot be written
    /// is logged and tried again on the next call.
    pub async fn release_held(&self) -> Vec<(i64, u64, i64)> {
        let now = self.inner.clock.now_ms();
        match self.inner.store.chat_release_due(now).await {
            Ok(released) => {
                for (room, seq, _) in &released {
                    self.advanced(*room, *seq).await;
                }
                released
            }
            Err(e) => {
                tracing::warn!(error = %e, "chat: releasing held messages failed");
                Vec::new()
            }
        }
    }

    /// A followed room's state (the map's lock is held only to find it).
    fn room(&self, room: i64) -> Option<Arc<Mutex<RoomState>>> {
        lock(&self.inner.rooms).get(&room).cloned()
    }

    /// The room's published head when `seq` is news to it (`Some(0)`: none yet); `None` when
    /// nobody follows the room or `seq` was published.
    fn head_before(&self, room: i64, seq: u64) -> Option<u64> {
        let state = self.room(room)?;
        let st = lock(&state);
        match st.head {
            Some(h) if seq <= h => None,
            Some(h) => Some(h),
            None => Some(0),
        }
    }

    /// Publishes `frame` as event `seq` if it is the room's next (or the room has published
    /// nothing yet); whether it did.
    fn publish_next(&self, room: i64, seq: u64, frame: &Arc<str>, vis: Vis) -> bool {
        let Some(state) = self.room(room) else {
            return true;
        };
        let mut st = lock(&state);
        match st.head {
            Some(h) if seq <= h => true,
            Some(h) if seq != h + 1 => false,
            _ => {
                st.head = Some(seq);
                st.outgoing.push(Outgoing {
                    seq,
                    frame: frame.clone(),
                    vis,
                });
                if !st.writing {
                    st.writing = true;
                    drop(st);
                    // Publishing is async (it reads the store on tokio's pool): a
                    // runtime is always there.
                    drop(tokio::spawn(write_room(state, room)));
                }
                true
            }
        }
    }

    /// Reads the room's events after its head from the store and publishes them in order,
    /// until `until` is published.
    async fn fill(&self, room: i64, until: u64) {
        loop {
            let Some(head) = self.head_before(room, until) else {
                return;
            };
            let page = match self
                .inner
                .store
                .chat_events_after(room, head, self.inner.config.page.clamp(1, 1000))
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, room, "chat: reading events to publish failed");
                    return;
                }
            };
            if page.events.is_empty() {
                return;
            }
            for e in &page.events {
                let frame = self.event_frame(e).await;
                // A page starts right after the head read: a refusal here means another
                // publisher got ahead; the next turn reads from the newer head.
                self.publish_next(room, e.seq, &frame, vis(e));
            }
        }
    }

    /// An event as its `chat_event` frame (the text rendered to safe HTML).
    pub(crate) async fn event_frame(&self, e: &ChatEvent) -> Arc<str> {
        if let Some(frame) = lock(&self.inner.frames).get(e) {
            return frame;
        }
        let author_name = self.name_of(e.author_id).await;
        let parsed = e.text.as_deref().and_then(|t| MessageText::parse(t).ok());
        let html = parsed.as_ref().map(render_html);
        let sound = parsed
            .as_ref()
            .and_then(MessageText::sound)
            .filter(|_| e.kind.shows_message())
            .map(str::to_owned);
        let frame: Arc<str> = Arc::from(
            ServerFrame::ChatEvent(ChatEventInfo {
                room: e.room_id,
                room_seq: e.seq,
                kind: e.kind.as_str().to_owned(),
                message: e.message_id,
                author: e.author_id,
                author_name,
                client_id: e.client_message_id.clone(),
                actor: e.actor_id,
                at: e.at_ms,
                text: e.text.clone(),
                html,
                boost: e.boost.clone(),
                reply_to: e.reply_to,
                moderated: e.moderated,
                held: e.held,
                sound,
                attachments: e.attachments.iter().map(attachment_info).collect(),
                flag: e.flag.map(|f| f.as_str().to_owned()),
                votes: e.votes,
            })
            .to_json(),
        );
        lock(&self.inner.frames).put(e, &frame);
        frame
    }

    /// A message as it stands now (`chat_extras`), its text rendered as for events.
    pub(crate) async fn message_info(&self, m: &ChatShowMessage) -> ChatMessageInfo {
        let row = &m.message;
        let html = MessageText::parse(&row.text)
            .map(|t| render_html(&t))
            .unwrap_or_default();
        ChatMessageInfo {
            message: row.id,
            posted_seq: row.posted_seq,
            author: row.author_id,
            author_name: self.name_of(row.author_id).await,
            client_id: row.client_message_id.clone(),
            at: row.created_at_ms,
            text: row.text.clone(),
            html,
            reply_to: row.reply_to,
            attachments: row.attachments.iter().map(attachment_info).collect(),
            flag: m.flag.map(|f| f.as_str().to_owned()),
            edited: row.edited_at_ms.is_some(),
            votes: m.votes,
            answered: m.answered_at_ms.is_some(),
        }
    }

    /// Hands an ephemeral frame (not of the room's sequence) to every session of `user`
    /// following `room` but `except`.
    pub(crate) fn to_user(&self, room: i64, user: i64, frame: &Arc<str>, except: u64) {
        let Some(state) = self.room(room) else {
            return;
        };
        let st = lock(&state);
        for (id, sub) in &st.subs {
            if *id != except && sub.user.load(Relaxed) == user {
                sub.push(Pushed {
                    room,
                    seq: 0,
                    frame: frame.clone(),
                    hidden_author: None,
                    wall: false,
                });
            }
        }
    }

    /// Closes the chat of every session of `user` in `room` (a ban committed): each stops
    /// following the room at once, is told `banned`, and leaves its presence. The management
    /// API calls it through its notifier after the ban's commit.
    pub fn kick(&self, room: i64, user: i64) {
        let Some(state) = self.room(room) else {
            return;
        };
        let st = lock(&state);
        for sub in st.subs.values() {
            if sub.user.load(Relaxed) == user {
                sub.kick(room);
            }
        }
    }

    /// A user's display name (cached).
    pub(crate) async fn name_of(&self, user: i64) -> String {
        if let Some(n) = lock(&self.inner.names).get(&user) {
            return n.clone();
        }
        let name = match self.inner.store.user(user).await {
            Ok(Some(u)) => u.display_name,
            _ => format!("user {user}"),
        };
        self.remember_name(user, &name);
        name
    }

    pub(crate) fn remember_name(&self, user: i64, name: &str) {
        let mut names = lock(&self.inner.names);
        if names.len() >= NAMES_CACHED {
            names.clear();
        }
        names.insert(user, name.to_owned());
    }

    /// Adds a subscriber to a room (before its backlog is read).
    pub(crate) fn subscribe(&self, room: i64, sub: &Arc<Subscriber>) {
        // Under the map's lock, so that an unsubscribe cannot drop the room in between.
        let mut rooms = lock(&self.inner.rooms);
        let state = rooms.entry(room).or_default();
        lock(state).add(sub);
    }

    /// Removes a subscriber from a room, and from its presence; the room is forgotten when
    /// nobody follows it.
    pub(crate) fn unsubscribe(&self, room: i64, session: u64) {
        let mut rooms = lock(&self.inner.rooms);
        let Some(state) = rooms.get(&room).cloned() else {
            return;
        };
        let mut st = lock(&state);
        let user = st.remove(session).map(|s| s.user.load(Relaxed));
        let left = leave(&mut st, session, user);
        if st.subs.is_empty() {
            rooms.remove(&room);
        } else if left {
            let now = self.inner.clock.now_ms();
            st.presence_changed(room, now, &self.inner.config);
        }
    }

    /// A sign of life of `session` (user `user`) in `room`: it is in the room's presence.
    pub(crate) fn touch(&self, room: i64, session: u64, user: i64, name: &str) {
        let now = self.inner.clock.now_ms();
        let Some(state) = self.room(room) else {
            return;
        };
        let mut st = lock(&state);
        let here = st.here.entry(user).or_default();
        let new = here.sessions.is_empty();
        name.clone_into(&mut here.name);
        here.sessions.insert(session, now);
        if new {
            st.presence_changed(room, now, &self.inner.config);
        }
    }

    /// The room's presence frame now (for a session that just subscribed).
    pub(crate) fn presence(&self, room: i64) -> Option<Arc<str>> {
        let list = self.inner.config.presence_list;
        self.room(room)
            .map(|st| lock(&st).presence_frame(room, list))
    }

    /// Sends a typing indicator to the room's other sessions.
    pub(crate) fn typing(&self, room: i64, session: u64, frame: &Arc<str>) {
        if let Some(st) = self.room(room) {
            lock(&st).broadcast(room, frame, Some(session));
        }
    }

    /// Drops from every room's presence the sessions silent for longer than the presence TTL,
    /// and sends each room's presence that changed since it was last sent once
    /// `presence_every_ms` has passed since then; how many people left. The composition root
    /// calls it a few times a second; tests call it after moving their clock.
    pub fn sweep_presence(&self) -> usize {
        let now = self.inner.clock.now_ms();
        let cutoff = now - self.inner.config.presence_ttl_ms;
        let mut gone = 0;
        let rooms: Vec<(i64, Arc<Mutex<RoomState>>)> = lock(&self.inner.rooms)
            .iter()
            .map(|(id, st)| (*id, st.clone()))
            .collect();
        for (room, state) in &rooms {
            let mut st = lock(state);
            let before = st.here.len();
            for here in st.here.values_mut() {
                here.sessions.retain(|_, seen| *seen >= cutoff);
            }
            st.here.retain(|_, h| !h.sessions.is_empty());
            if st.here.len() != before {
                gone += before - st.here.len();
                st.presence_due = true;
            }
            st.flush_presence(*room, now, &self.inner.config);
        }
        gone
    }

    /// A session read room `room`'s events from the store up to `seq` and found no more: a
    /// room that has published nothing since it was followed takes `seq` as its head, so
    /// its next events are published in order after it. Without a head the room takes
    /// whatever comes first, and two busy posters racing at its start would leave the
    /// earlier event unpublished: every follower would then read it from the store.
    pub(crate) fn caught_up(&self, room: i64, seq: u64) {
        if let Some(state) = self.room(room) {
            let mut st = lock(&state);
            if st.head.is_none() {
                st.head = Some(seq);
            }
        }
    }

    /// The last `seq` room `room` published to its followers (`None`: nobody follows it, or
    /// it has no head yet), for diagnostics and tests.
    pub fn published_head(&self, room: i64) -> Option<u64> {
        self.room(room).and_then(|state| lock(&state).head)
    }

    /// Rooms followed now, and sessions following them (for `/metrics` and tests).
    pub fn counts(&self) -> (usize, usize) {
        let rooms = lock(&self.inner.rooms);
        (
            rooms.len(),
            rooms.values().map(|r| lock(r).subs.len()).sum(),
        )
    }
}

/// Subscribers a writer hands a batch to itself; the others go to a second task at once
/// (the runtime's other thread), so a big room's round takes both cores.
const SHARD: usize = 1024;

/// Hands a room's published events to its subscribers until none are left, taking each
/// time everything published meanwhile (under load, a follower gets several events in one
/// write), with the subscribers of that moment: an event published after a session
/// subscribed reaches it here, one published before is in the store for its catch-up. The
/// room's lock is held only to take the events, never while writing. A batch is handed to
/// every subscriber before the next is taken, so each gets them in order.
async fn write_room(state: Arc<Mutex<RoomState>>, room: i64) {
    loop {
        let (batch, subs) = {
            let mut st = lock(&state);
            if st.outgoing.is_empty() {
                st.writing = false;
                return;
            }
            (Arc::new(std::mem::take(&mut st.outgoing)), st.list())
        };
        let half = subs.len() / 2;
        let other = (half >= SHARD).then(|| {
            let (batch, subs) = (batch.clone(), subs.clone());
            tokio::spawn(async move { deliver_all(room, &batch, &subs[half..]) })
        });
        match other {
            Some(task) => {
                deliver_all(room, &batch, &subs[..half]);
                let _ = task.await;
            }
            None => deliver_all(room, &batch, &subs),
        }
    }
}

fn deliver_all(room: i64, batch: &[Outgoing], subs: &[Arc<Subscriber>]) {
    let mut scratch = Vec::with_capacity(batch.len());
    for sub in subs {
        sub.deliver(room, batch, &mut scratch);
    }
}

/// The author whose moderators alone see this event (a hidden message's).
/// An attachment as the `chat_event` frame describes it.
fn attachment_info(a: &ChatAttachmentRow) -> ChatAttachmentInfo {
    ChatAttachmentInfo {
        id: a.id,
        name: a.name.clone(),
        media_type: a.media_type.clone(),
        size: a.size,
        width: a.width,
        height: a.height,
        thumbnail: a.thumbnail_sha256.is_some(),
    }
}

fn hidden_author(e: &ChatEvent) -> Option<i64> {
    e.hidden.then_some(e.author_id)
}

/// Whether a display's wall takes this event.
pub(crate) fn wall_event(e: &ChatEvent) -> bool {
    matches!(
        e.kind,
        ChatEventKind::WallApproved | ChatEventKind::WallRejected | ChatEventKind::MessageDeleted
    )
}

fn vis(e: &ChatEvent) -> Vis {
    Vis {
        hidden_author: hidden_author(e),
        wall: wall_event(e),
    }
}

/// Removes a session of `user` (0: it chatted as nobody, so it is in no presence) from a
/// room's presence; whether a person left.
fn leave(st: &mut RoomState, session: u64, user: Option<i64>) -> bool {
    let Some(user) = user.filter(|u| *u != 0) else {
        return false;
    };
    if let Some(here) = st.here.get_mut(&user) {
        if here.sessions.remove(&session).is_some() {
            let gone = here.sessions.is_empty();
            if gone {
                st.here.remove(&user);
            }
            return gone;
        }
    }
    // Not under its user (which a session does not change while it follows rooms): look
    // everywhere rather than leave it there until it expires.
    let before = st.here.len();
    for here in st.here.values_mut() {
        here.sessions.remove(&session);
    }
    st.here.retain(|_, h| !h.sessions.is_empty());
    st.here.len() != before
}
