//! One connection's chat: who it is (a staff account signed in by token, or an audience member
//! of one show), the rooms it follows with the last `seq` it was handed of each, its catch-up
//! and its queue. A transport feeds it the chat frames it reads ([`Session::handle`]) and writes
//! what [`Session::next`] hands out, asking only when it can write (that is the backpressure).
//!
//! # Who may do what (the same as the management API's chat routes)
//! - Staff read and post in the rooms they are members of (a room of an ensemble also needs a
//!   place in that ensemble; admins have one everywhere); open and show rooms of their
//!   ensembles and "All Talk" they join on first use. Authors edit and delete their messages;
//!   admins and members of the room's ensemble moderate (edit and delete any).
//! - An audience member reads only its show's room, and posts, edits, deletes its own messages
//!   and boosts there only while the show is live. It chats as an audience identity (the
//!   store's `chat_guest_identity` / `chat_anonymous_identity`): a guest with a device token
//!   gets one on its first write (named "Guest" until `chat_name`), an anonymous joiner must
//!   send `chat_name` first. It becomes a member of the room when it first writes.
//! - Live-show extras (show rooms): anyone who writes there may post a question
//!   (`chat_post` with `flag: "question"`) and vote for one (`chat_vote`, once); moderators
//!   alone announce (`flag: "announcement"`), mark questions answered (`chat_answered`), pin
//!   (`chat_pin`) and approve for the wall (`chat_approve`); others are told `forbidden`.
//! - A display of a show (`Origin::Display`) is anonymous and read-only: after `chat_show` it
//!   follows its show's room, and is handed only the wall's events (approvals, rejections,
//!   deletions); it advances past the others' `seq` as it does past hidden ones.
//! - Anything else about a room or message is `not_found`, as if it did not exist.
//!
//! A staff session's token is checked again with every frame (the API caches the check): once
//! it has expired or was revoked, the session forgets who it was and every room it followed,
//! and answers `unauthorized` until a fresh `chat_auth`.
//!
//! Must never: hand out an event of a room the session may not read, the same event twice, or
//! a later event before an earlier one of the same room; hold a lock across `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tutti_chat::{Boost, ChatInputError, ClientMessageId, DisplayName, MessageText};
use tutti_protocol::{ChatRoomInfo, ChatSubRoom, ClientFrame, ErrorCode, FrameError, ServerFrame};
use tutti_store::{
    ChatEvent, ChatEventKind, ChatFlag, ChatRoomRow, Involvement, NewChatMessage, ShowStatus,
    StoreError, MAX_CHAT_ANNOUNCEMENT_CHARS,
};

use crate::{store_error, Pushed, Rooms, Subscriber};

/// Where a session comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A connection that is not a show's audience: it signs in with `chat_auth`.
    Staff,
    /// A phone that joined show `show` (its code) as audience, with its guest id when it came
    /// with a device token.
    Audience {
        /// The show's code.
        show: String,
        /// The guest (device token), if any.
        guest: Option<i64>,
    },
    /// A display of show `show` (its code): anonymous, read-only, the wall only.
    Display {
        /// The show's code.
        show: String,
    },
}

#[derive(Debug, Clone)]
struct Who {
    user: i64,
    name: String,
    admin: bool,
}

/// The show an audience session belongs to.
#[derive(Debug, Clone, Copy)]
struct ShowCtx {
    show_id: i64,
    room_id: i64,
    guest: Option<i64>,
}

/// One connection's chat (see the module documentation).
pub struct Session {
    rooms: Rooms,
    origin: Origin,
    sub: Arc<Subscriber>,
    who: Option<Who>,
    /// The access token a staff session signed in with: checked again on every frame, so a
    /// token that expires or is revoked (sign-out, deactivation) ends the session's chat.
    token: Option<String>,
    show: Option<ShowCtx>,
    /// The audience identity is a member of its show's room (known in this session).
    show_member: bool,
    /// Rooms followed, with the last `seq` handed out of each.
    delivered: HashMap<i64, u64>,
    /// Rooms whose missed events are still to be read from the store, in order, each with
    /// whether `chat_caught_up` ends it (after `chat_sub`; not after falling behind).
    catching: VecDeque<(i64, bool)>,
    /// Frames to hand out before anything else.
    ready: VecDeque<Arc<str>>,
    /// When this session last sent a typing indicator, per room.
    typed: HashMap<i64, i64>,
    /// Followed rooms this session moderates: it is handed hidden (shadow-muted) messages.
    moderated: HashSet<i64>,
    /// Rooms whose `chat_sub` asked for `extras`: their catch-up ends with `chat_extras`.
    extras: HashSet<i64>,
}

fn input(e: &ChatInputError) -> FrameError {
    let code = match e.code() {
        "empty" => ErrorCode::Empty,
        "too_long" => ErrorCode::TooLong,
        "forbidden_character" => ErrorCode::ForbiddenCharacter,
        "control_character" => ErrorCode::ControlCharacter,
        "invalid_format" => ErrorCode::InvalidFormat,
        "unknown_sound" => ErrorCode::UnknownSound,
        _ => ErrorCode::BadFrame,
    };
    FrameError::new(code, e.to_string())
}

fn not_found(what: &str, id: i64) -> FrameError {
    FrameError::new(ErrorCode::NotFound, format!("no {what} {id}"))
}

fn forbidden(why: &str) -> FrameError {
    FrameError::new(ErrorCode::Forbidden, why)
}

/// Most frames of room a waiting session keeps in its ready queue (a catch-up's page needs
/// more, and gives it back once written).
const READY_KEPT: usize = 16;

impl Session {
    pub(crate) fn new(rooms: Rooms, origin: Origin, sub: Arc<Subscriber>) -> Session {
        Session {
            rooms,
            origin,
            sub,
            who: None,
            token: None,
            show: None,
            show_member: false,
            delivered: HashMap::new(),
            catching: VecDeque::new(),
            ready: VecDeque::new(),
            typed: HashMap::new(),
            moderated: HashSet::new(),
            extras: HashSet::new(),
        }
    }

    /// The user this session chats as, once known.
    pub fn user(&self) -> Option<i64> {
        self.who.as_ref().map(|w| w.user)
    }

    /// The rooms followed, with the last `seq` handed out of each.
    pub fn following(&mut self) -> &HashMap<i64, u64> {
        self.close_lane();
        &self.delivered
    }

    /// Writes this session's live events straight to `outlet` while it waits with nothing
    /// else to hand out (see [`crate::Outlet`]); without one, every frame goes through
    /// [`Session::next`].
    pub fn write_to(&mut self, outlet: Arc<dyn crate::Outlet>) {
        self.sub.set_outlet(outlet);
    }

    /// Takes back how far the lane got (see `subscriber.rs`) before anything else.
    fn close_lane(&mut self) {
        self.sub.close_lane(&mut self.delivered);
    }

    /// Lets the room's writer hand events straight to the outlet while this session waits.
    fn open_lane(&self) {
        self.sub.open_lane(
            &self.delivered,
            &self.moderated,
            self.user().unwrap_or(0),
            self.display(),
        );
    }

    /// Handles one chat frame; the replies to write at once, in order (`Err`: one error frame,
    /// nothing changed). Events, catch-up and presence come from [`Session::next`].
    pub async fn handle(&mut self, frame: ClientFrame) -> Result<Vec<String>, FrameError> {
        self.close_lane();
        let seq = frame.seq();
        if let Some(token) = self.token.clone() {
            if self.rooms.inner.auth.staff(&token).await.is_none() {
                self.sign_out();
                return Err(FrameError::new(
                    ErrorCode::Unauthorized,
                    "the access token expired or was revoked: send chat_auth with a fresh one",
                ));
            }
        }
        let out = match frame {
            ClientFrame::ChatAuth { token } => self.auth(&token).await?,
            ClientFrame::ChatName { name } => self.name(&name).await?,
            ClientFrame::ChatSub { rooms } => {
                self.subscribe(&rooms).await?;
                // In the presence first (below), then told who is there.
                self.heartbeat();
                for r in &rooms {
                    if let Some(p) = self.rooms.presence(r.room) {
                        self.ready.push_back(p);
                    }
                }
                Vec::new()
            }
            ClientFrame::ChatUnsub { rooms } => {
                for room in rooms {
                    if self.delivered.remove(&room).is_some() {
                        self.catching.retain(|(r, _)| *r != room);
                        self.extras.remove(&room);
                        self.rooms.unsubscribe(room, self.sub.id);
                    }
                }
                Vec::new()
            }
            ClientFrame::ChatPost {
                room,
                client_id,
                text,
                reply_to,
                flag: None,
                ..
            } => vec![self.post(seq, room, &client_id, &text, reply_to).await?],
            ClientFrame::ChatPost {
                room,
                client_id,
                text,
                flag: Some(flag),
                ..
            } => vec![
                self.post_flagged(seq, room, &client_id, &text, &flag)
                    .await?,
            ],
            ClientFrame::ChatVote {
                message, remove, ..
            } => {
                let (who, _, _) = self.changeable(message, false).await?;
                let at = self.rooms.inner.clock.now_ms();
                let ev = self
                    .rooms
                    .inner
                    .store
                    .chat_vote(message, who, !remove, at)
                    .await
                    .map_err(store_error)?;
                vec![self.acked(seq, ev).await]
            }
            ClientFrame::ChatAnswered { message, .. } => {
                let who = self.crew_change(message, "mark questions answered").await?;
                let at = self.rooms.inner.clock.now_ms();
                let store = &self.rooms.inner.store;
                let ev = store
                    .chat_answer(message, who, at)
                    .await
                    .map_err(store_error)?;
                vec![self.acked(seq, ev).await]
            }
            ClientFrame::ChatPin {
                message, remove, ..
            } => {
                let who = self.crew_change(message, "pin messages").await?;
                let at = self.rooms.inner.clock.now_ms();
                let store = &self.rooms.inner.store;
                let ev = store
                    .chat_pin(message, who, !remove, at)
                    .await
                    .map_err(store_error)?;
                vec![self.acked(seq, ev).await]
            }
            ClientFrame::ChatApprove {
                message, reject, ..
            } => {
                let who = self
                    .crew_change(message, "approve messages for the wall")
                    .await?;
                let at = self.rooms.inner.clock.now_ms();
                let store = &self.rooms.inner.store;
                let ev = store
                    .chat_wall(message, who, !reject, at)
                    .await
                    .map_err(store_error)?;
                vec![self.acked(seq, ev).await]
            }
            ClientFrame::ChatShow {} => vec![self.show_hello().await?],
            ClientFrame::ChatEdit { message, text, .. } => {
                let text = MessageText::parse(&text).map_err(|e| input(&e))?;
                let (who, _, _) = self.changeable(message, true).await?;
                let at = self.rooms.inner.clock.now_ms();
                let ev = self
                    .rooms
                    .inner
                    .store
                    .chat_edit(message, who, text.as_str(), at)
                    .await
                    .map_err(store_error)?;
                vec![self.acked(seq, ev).await]
            }
            ClientFrame::ChatDelete { message, .. } => {
                let (who, _, author) = self.changeable(message, true).await?;
                let at = self.rooms.inner.clock.now_ms();
                let store = &self.rooms.inner.store;
                // Someone else's message: a moderator's removal, marked and audited.
                let ev = if author == who {
                    store.chat_delete(message, who, at).await
                } else {
                    store.chat_remove(message, who, None, at).await
                }
                .map_err(store_error)?;
                vec![self.acked(seq, ev).await]
            }
            ClientFrame::ChatBoost {
                message,
                content,
                remove,
                ..
            } => {
                let boost = Boost::parse(&content).map_err(|e| input(&e))?;
                let (who, _, _) = self.changeable(message, false).await?;
                let at = self.rooms.inner.clock.now_ms();
                let store = &self.rooms.inner.store;
                let ev = if remove {
                    store.chat_unboost(message, who, boost.as_str(), at).await
                } else {
                    store.chat_boost(message, who, boost.as_str(), at).await
                }
                .map_err(store_error)?;
                vec![self.acked(seq, ev).await]
            }
            ClientFrame::ChatRead { room, read_seq } => vec![self.read(room, read_seq).await?],
            ClientFrame::ChatTyping { room } => {
                self.typing(room).await?;
                Vec::new()
            }
            ClientFrame::ChatHere {} => Vec::new(),
            _ => return Err(FrameError::new(ErrorCode::BadFrame, "not a chat frame")),
        };
        self.heartbeat();
        Ok(out)
    }

    /// The next frame to write: what [`Session::handle`] queued for later, missed events being
    /// caught up (read from the store a page at a time), then live frames. Waits while there is
    /// nothing; cancelling it loses nothing.
    pub async fn next(&mut self) -> Arc<str> {
        self.close_lane();
        loop {
            if let Some(f) = self.ready.pop_front() {
                return f;
            }
            if self.kicked() {
                continue;
            }
            for room in self.sub.take_lagged() {
                self.behind(room);
            }
            if let Some(&(room, announce)) = self.catching.front() {
                self.catch_up_page(room, announce).await;
                continue;
            }
            if self.ready.capacity() > READY_KEPT {
                // A catch-up's page went out: an idle session does not keep its room.
                self.ready = VecDeque::new();
            }
            // Waiting with nothing else to hand out: live events may go straight out.
            self.open_lane();
            let p = self.sub.pop().await;
            self.close_lane();
            if let Some(f) = self.take(p) {
                return f;
            }
        }
    }

    /// The next frame if one is there now, without waiting or reading the store (`None`:
    /// [`Session::next`] would have to; the frame stays for it). For a transport that writes
    /// the frames ready at once together.
    pub fn try_next(&mut self) -> Option<Arc<str>> {
        self.close_lane();
        loop {
            if let Some(f) = self.ready.pop_front() {
                return Some(f);
            }
            if self.kicked() {
                continue;
            }
            for room in self.sub.take_lagged() {
                self.behind(room);
            }
            if !self.catching.is_empty() {
                return None;
            }
            let p = self.sub.try_pop()?;
            if let Some(f) = self.take(p) {
                return Some(f);
            }
        }
    }

    /// A frame from the queue: the frame to hand out, or `None` when it is not this
    /// session's to see (a room no longer followed, an event already handed out, a hidden
    /// one) or it opened a gap to read from the store.
    fn take(&mut self, p: Pushed) -> Option<Arc<str>> {
        if self.kicked() {
            // Handed out first; this frame is looked at again only if its room is kept.
            if !self.delivered.contains_key(&p.room) {
                return None;
            }
        }
        if p.seq == 0 {
            if p.frame.is_empty() || !self.delivered.contains_key(&p.room) || self.display() {
                return None;
            }
            return Some(p.frame);
        }
        let last = self.delivered.get_mut(&p.room)?;
        if p.seq <= *last {
            return None;
        }
        if p.seq == *last + 1 {
            *last = p.seq;
            if p.hidden_author
                .is_some_and(|a| !self.sees_hidden(p.room, a))
                || (self.display() && !p.wall)
            {
                return None;
            }
            return Some(p.frame);
        }
        // Further ahead than the next: read the gap (and this one) from the store.
        self.behind(p.room);
        None
    }

    /// The session missed events of a followed room: read them from the store next.
    fn behind(&mut self, room: i64) {
        if self.delivered.contains_key(&room) && !self.catching.iter().any(|(r, _)| *r == room) {
            self.catching.push_back((room, false));
        }
    }

    /// Reads one page of a room's missed events into `ready`; at the end, `chat_caught_up`
    /// when `announce`.
    async fn catch_up_page(&mut self, room: i64, announce: bool) {
        let Some(&after) = self.delivered.get(&room) else {
            self.catching.retain(|(r, _)| *r != room);
            return;
        };
        let page = self
            .rooms
            .inner
            .store
            .chat_events_after(room, after, self.rooms.inner.config.page.clamp(1, 1000))
            .await;
        // The room's pins and announcement after its last page, read before anything changes
        // (so a cancelled read is read again) and after the page (so they are as new as the
        // last event handed out, or newer: the events between come later and change nothing
        // the client keeps newer).
        let extras = match &page {
            Ok(p) if !p.more && announce && self.extras.contains(&room) => {
                match self.extras_frame(room).await {
                    Ok(f) => Some(f),
                    Err(e) => Some(Arc::from(ServerFrame::error(e, None).to_json())),
                }
            }
            _ => None,
        };
        // Nothing above changed state: a cancelled read is read again.
        match page {
            Ok(page) => {
                let mut last = after;
                for e in &page.events {
                    if e.seq == last + 1 {
                        let shown = !e.hidden || self.sees_hidden(room, e.author_id);
                        if shown && (!self.display() || crate::wall_event(e)) {
                            let frame = self.rooms.event_frame(e).await;
                            self.ready.push_back(frame);
                        }
                        last = e.seq;
                    }
                }
                if let Some(d) = self.delivered.get_mut(&room) {
                    *d = (*d).max(last);
                }
                if !page.more {
                    self.rooms.caught_up(room, last);
                    self.catching.retain(|(r, _)| *r != room);
                    if let Some(frame) = extras {
                        self.extras.remove(&room);
                        self.ready.push_back(frame);
                    }
                    if announce {
                        self.ready.push_back(Arc::from(
                            ServerFrame::ChatCaughtUp {
                                room,
                                room_seq: last,
                            }
                            .to_json(),
                        ));
                    }
                }
            }
            Err(e) => {
                self.catching.retain(|(r, _)| *r != room);
                self.delivered.remove(&room);
                self.rooms.unsubscribe(room, self.sub.id);
                self.ready.push_back(Arc::from(
                    ServerFrame::error(store_error(e), None).to_json(),
                ));
            }
        }
    }

    /// The room's `chat_extras` frame: its pins and latest announcement as everyone may see
    /// them (never a hidden or held message), the texts rendered as for events.
    async fn extras_frame(&self, room: i64) -> Result<Arc<str>, FrameError> {
        let state = self
            .rooms
            .inner
            .store
            .chat_show_state(room)
            .await
            .map_err(store_error)?;
        let mut pins = Vec::with_capacity(state.pins.len());
        for m in &state.pins {
            pins.push(self.rooms.message_info(m).await);
        }
        let announcement = match &state.announcement {
            Some(m) => Some(self.rooms.message_info(m).await),
            None => None,
        };
        Ok(Arc::from(
            ServerFrame::ChatExtras {
                room,
                room_seq: state.head_seq,
                pins,
                announcement,
            }
            .to_json(),
        ))
    }

    /// Whether this session is handed the hidden messages of `author` in `room`: it is the
    /// author, or it moderates the room.
    fn sees_hidden(&self, room: i64, author: i64) -> bool {
        self.user() == Some(author) || self.moderated.contains(&room)
    }

    /// Leaves the rooms the user was banned from (each answered with a `banned` error frame);
    /// whether there were any.
    fn kicked(&mut self) -> bool {
        let rooms = self.sub.take_kicked();
        let any = !rooms.is_empty();
        for room in rooms {
            if self.delivered.remove(&room).is_some() {
                self.catching.retain(|(r, _)| *r != room);
                self.moderated.remove(&room);
                self.rooms.unsubscribe(room, self.sub.id);
                let why = tutti_store::ChatRefusal::Banned;
                self.ready.push_back(Arc::from(
                    ServerFrame::error(
                        FrameError::new(
                            ErrorCode::Banned,
                            format!("room {room}: {why}; this connection no longer follows it"),
                        ),
                        None,
                    )
                    .to_json(),
                ));
            }
        }
        any
    }

    fn heartbeat(&self) {
        if let Some(w) = &self.who {
            for room in self.delivered.keys() {
                self.rooms.touch(*room, self.sub.id, w.user, &w.name);
            }
        }
    }

    /// Forgets who the session is and every room it followed (nothing more is handed out).
    fn sign_out(&mut self) {
        for room in self.delivered.keys() {
            self.rooms.unsubscribe(*room, self.sub.id);
        }
        self.delivered.clear();
        self.catching.clear();
        self.ready.clear();
        self.typed.clear();
        self.moderated.clear();
        self.who = None;
        self.sub.user.store(0, Relaxed);
        self.token = None;
    }

    fn set_who(&mut self, who: Who) {
        self.rooms.remember_name(who.user, &who.name);
        self.sub.user.store(who.user, Relaxed);
        self.who = Some(who);
    }

    async fn auth(&mut self, token: &str) -> Result<Vec<String>, FrameError> {
        if self.origin != Origin::Staff {
            return Err(forbidden(
                "an audience connection chats in its show's room: send chat_name, not chat_auth",
            ));
        }
        if self.who.is_some() {
            return Err(FrameError::new(
                ErrorCode::AlreadyJoined,
                "this connection is signed in to chat already",
            ));
        }
        let staff = self.rooms.inner.auth.staff(token).await.ok_or_else(|| {
            FrameError::new(
                ErrorCode::Unauthorized,
                "chat_auth needs a valid access token of a staff account",
            )
        })?;
        self.set_who(Who {
            user: staff.user,
            name: staff.name,
            admin: staff.admin,
        });
        self.token = Some(token.to_owned());
        Ok(vec![self.hello().await?])
    }

    /// The audience session's show and room, looked up once.
    async fn show(&mut self) -> Result<ShowCtx, FrameError> {
        if let Some(s) = self.show {
            return Ok(s);
        }
        let (show, guest) = match &self.origin {
            Origin::Audience { show, guest } => (show, guest),
            Origin::Display { show } => (show, &None),
            Origin::Staff => return Err(forbidden("not an audience connection")),
        };
        let store = &self.rooms.inner.store;
        let row = store
            .show_by_code(show)
            .await
            .map_err(store_error)?
            .ok_or_else(|| FrameError::new(ErrorCode::UnknownShow, "the show has no record"))?;
        let room = store
            .chat_show_room(row.id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found("room of show", row.id))?;
        let ctx = ShowCtx {
            show_id: row.id,
            room_id: room.id,
            guest: *guest,
        };
        self.show = Some(ctx);
        Ok(ctx)
    }

    async fn name(&mut self, name: &str) -> Result<Vec<String>, FrameError> {
        let name = DisplayName::parse(name).map_err(|e| input(&e))?;
        if self.display() {
            return Err(forbidden(
                "a display does not chat: send chat_show to follow the wall",
            ));
        }
        if self.origin == Origin::Staff {
            return Err(forbidden(
                "chat_name is for a show's audience; staff sign in with chat_auth",
            ));
        }
        let ctx = self.show().await?;
        let at = self.rooms.inner.clock.now_ms();
        let store = &self.rooms.inner.store;
        let row = match (ctx.guest, &self.who) {
            (Some(guest), _) => store
                .chat_guest_identity(ctx.show_id, guest, Some(name.as_str()), at)
                .await
                .map_err(store_error)?,
            (None, Some(_)) => {
                return Err(FrameError::new(
                    ErrorCode::Conflict,
                    "this connection has chosen its name already",
                ))
            }
            (None, None) => store
                .chat_anonymous_identity(ctx.show_id, name.as_str(), at)
                .await
                .map_err(store_error)?,
        };
        self.set_who(Who {
            user: row.user_id,
            name: row.display_name,
            admin: false,
        });
        Ok(vec![self.hello().await?])
    }

    /// The audience identity, made on first need for a guest ("Guest" until `chat_name`).
    async fn audience_who(&mut self) -> Result<i64, FrameError> {
        if let Some(w) = &self.who {
            return Ok(w.user);
        }
        let ctx = self.show().await?;
        let Some(guest) = ctx.guest else {
            return Err(forbidden(
                "send chat_name with the name to chat under first",
            ));
        };
        let at = self.rooms.inner.clock.now_ms();
        let row = self
            .rooms
            .inner
            .store
            .chat_guest_identity(ctx.show_id, guest, None, at)
            .await
            .map_err(store_error)?;
        let user = row.user_id;
        self.set_who(Who {
            user,
            name: row.display_name,
            admin: false,
        });
        Ok(user)
    }

    /// `chat_hello`: who, and the rooms this session may follow.
    async fn hello(&mut self) -> Result<String, FrameError> {
        let who = self.who.clone().ok_or_else(|| forbidden("not signed in"))?;
        let store = self.rooms.inner.store.clone();
        let mut rooms = Vec::new();
        if self.origin == Origin::Staff {
            for room in store
                .chat_open_rooms_to_join(who.user)
                .await
                .map_err(store_error)?
            {
                self.join(room, who.user).await?;
            }
            for l in store.chat_rooms_of(who.user).await.map_err(store_error)? {
                if self.staff_reads(&l.room, &who).await? {
                    rooms.push(ChatRoomInfo {
                        room: l.room.id,
                        kind: l.room.kind.as_str().to_owned(),
                        name: l.room.name,
                        read_only: l.room.read_only,
                        last_seq: l.room.last_seq,
                        unread: l.unread,
                    });
                }
            }
        } else {
            let ctx = self.show().await?;
            let room = store
                .chat_room(ctx.room_id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| not_found("room", ctx.room_id))?;
            let live = self.show_live(ctx.show_id).await?;
            let unread = store
                .chat_rooms_of(who.user)
                .await
                .map_err(store_error)?
                .into_iter()
                .find(|l| l.room.id == room.id)
                .map_or(0, |l| l.unread);
            rooms.push(ChatRoomInfo {
                room: room.id,
                kind: room.kind.as_str().to_owned(),
                name: room.name,
                read_only: room.read_only || !live,
                last_seq: room.last_seq,
                unread,
            });
        }
        Ok(ServerFrame::ChatHello {
            user: who.user,
            name: who.name,
            rooms,
        }
        .to_json())
    }

    /// Joins a room the user belongs in (another session may have joined it a moment before).
    async fn join(&self, room: i64, user: i64) -> Result<(), FrameError> {
        let at = self.rooms.inner.clock.now_ms();
        match self
            .rooms
            .inner
            .store
            .chat_add_member(room, user, Involvement::Everything, at)
            .await
        {
            Ok(_)
            | Err(StoreError::Conflict {
                what: "membership", ..
            }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Whether staff `who` reads `room` as a member (a room of an ensemble also needs a place
    /// in it; admins have one everywhere).
    async fn staff_reads(&self, room: &ChatRoomRow, who: &Who) -> Result<bool, FrameError> {
        match room.ensemble_id {
            Some(e) if !who.admin => Ok(self
                .rooms
                .inner
                .store
                .membership(e, who.user)
                .await
                .map_err(store_error)?
                .is_some()),
            _ => Ok(true),
        }
    }

    async fn show_live(&self, show_id: i64) -> Result<bool, FrameError> {
        Ok(self
            .rooms
            .inner
            .store
            .show(show_id)
            .await
            .map_err(store_error)?
            .is_some_and(|s| s.status == ShowStatus::Live))
    }

    /// The room if this session may read it (staff: joining one it belongs in); `not_found`
    /// otherwise.
    async fn readable(&mut self, room_id: i64) -> Result<ChatRoomRow, FrameError> {
        let (room, banned) = self.readable_room(room_id).await?;
        // A guest's identity outlives its connections: know it before reading, so a ban holds.
        if self.who.is_none() && matches!(self.origin, Origin::Audience { guest: Some(_), .. }) {
            self.audience_who().await?;
        }
        let banned = match (banned, self.user()) {
            (Some(b), _) => b,
            (None, Some(user)) => self
                .rooms
                .inner
                .store
                .chat_restriction(room.id, user)
                .await
                .map_err(store_error)?
                .is_some_and(|r| r.kind == tutti_store::ChatRestrictionKind::Ban),
            (None, None) => false,
        };
        if banned {
            return Err(store_error(StoreError::ChatRefused(
                tutti_store::ChatRefusal::Banned,
            )));
        }
        Ok(room)
    }

    /// The room if this session may read it (staff: joining one it belongs in, and whether
    /// the user is banned from it, read at once with the room); `not_found` otherwise.
    async fn readable_room(
        &mut self,
        room_id: i64,
    ) -> Result<(ChatRoomRow, Option<bool>), FrameError> {
        let store = self.rooms.inner.store.clone();
        match &self.origin {
            Origin::Audience { .. } | Origin::Display { .. } => {
                let ctx = self.show().await?;
                if room_id != ctx.room_id {
                    return Err(not_found("room", room_id));
                }
            }
            Origin::Staff => {
                let who = self
                    .who
                    .clone()
                    .ok_or_else(|| forbidden("send chat_auth first"))?;
                // One read for the room, the membership, the ensemble role and a ban: a
                // busy room's every post asks.
                let access = store
                    .chat_access(room_id, who.user)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| not_found("room", room_id))?;
                let reads = access.room.ensemble_id.is_none()
                    || who.admin
                    || access.ensemble_role.is_some();
                if !reads {
                    return Err(not_found("room", room_id));
                }
                if access.member.is_none() {
                    let joinable = store
                        .chat_open_rooms_to_join(who.user)
                        .await
                        .map_err(store_error)?;
                    if !joinable.contains(&room_id) {
                        return Err(not_found("room", room_id));
                    }
                    self.join(room_id, who.user).await?;
                }
                let banned = access
                    .restriction
                    .is_some_and(|r| r.kind == tutti_store::ChatRestrictionKind::Ban);
                return Ok((access.room, Some(banned)));
            }
        }
        let room = store
            .chat_room(room_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found("room", room_id))?;
        Ok((room, None))
    }

    /// The user who writes in `room` now: staff (a member), or the audience identity while
    /// the show is live (a member from its first write).
    async fn writer(&mut self, room: &ChatRoomRow) -> Result<i64, FrameError> {
        if self.origin == Origin::Staff {
            return self
                .who
                .as_ref()
                .map(|w| w.user)
                .ok_or_else(|| forbidden("send chat_auth first"));
        }
        if self.display() {
            return Err(forbidden("a display is read-only"));
        }
        let ctx = self.show().await?;
        if room.read_only {
            return Err(FrameError::new(
                ErrorCode::RoomReadOnly,
                "the show has ended: its room is read-only",
            ));
        }
        if !self.show_live(ctx.show_id).await? {
            return Err(FrameError::new(
                ErrorCode::ShowNotLive,
                "the audience chats while the show is live",
            ));
        }
        let user = self.audience_who().await?;
        if !self.show_member {
            // A member of the show's room from its first write (once: the store keeps it).
            let at = self.rooms.inner.clock.now_ms();
            self.rooms
                .inner
                .store
                .chat_join_show_room(user, at)
                .await
                .map_err(store_error)?;
            self.show_member = true;
        }
        Ok(user)
    }

    async fn subscribe(&mut self, rooms: &[ChatSubRoom]) -> Result<(), FrameError> {
        // Every room is checked before any is followed: a refused frame changes nothing.
        let mut checked = Vec::with_capacity(rooms.len());
        for r in rooms {
            let room = self.readable(r.room).await?;
            let moderates = self.moderates(&room).await?;
            if r.after_seq > room.last_seq {
                return Err(FrameError::new(
                    ErrorCode::FutureSeq,
                    format!(
                        "room {}: after_seq {} is beyond its latest seq {}",
                        room.id, r.after_seq, room.last_seq
                    ),
                ));
            }
            checked.push((*r, moderates));
        }
        for (r, moderates) in checked {
            if moderates {
                self.moderated.insert(r.room);
            } else {
                self.moderated.remove(&r.room);
            }
            // Subscribed first, then the backlog is read (in `next`): nothing falls between.
            self.rooms.subscribe(r.room, &self.sub);
            self.delivered.insert(r.room, r.after_seq);
            self.catching.retain(|(x, _)| *x != r.room);
            self.catching.push_back((r.room, true));
            // A display is handed the wall only: no pins or announcement.
            if r.extras && !self.display() {
                self.extras.insert(r.room);
            } else {
                self.extras.remove(&r.room);
            }
        }
        Ok(())
    }

    async fn post(
        &mut self,
        seq: Option<u64>,
        room_id: i64,
        client_id: &str,
        text: &str,
        reply_to: Option<i64>,
    ) -> Result<String, FrameError> {
        let client_id = ClientMessageId::parse(client_id).map_err(|e| input(&e))?;
        let text = MessageText::parse(text).map_err(|e| input(&e))?;
        let room = self.readable(room_id).await?;
        let author = self.writer(&room).await?;
        let at = self.rooms.inner.clock.now_ms();
        let posted = self
            .rooms
            .inner
            .store
            .chat_post(NewChatMessage {
                room_id,
                author_id: author,
                client_message_id: client_id.as_str().to_owned(),
                text: text.into_string(),
                reply_to,
                at_ms: at,
            })
            .await
            .map_err(store_error)?;
        let m = &posted.message;
        if !posted.duplicate {
            self.rooms
                .publish(ChatEvent {
                    room_id,
                    seq: posted.seq,
                    kind: ChatEventKind::MessagePosted,
                    message_id: m.id,
                    actor_id: m.author_id,
                    at_ms: m.created_at_ms,
                    text: Some(m.text.clone()),
                    boost: None,
                    author_id: m.author_id,
                    client_message_id: m.client_message_id.clone(),
                    reply_to: m.reply_to,
                    hidden: m.hidden || m.held_until_ms.is_some(),
                    held: m.held_until_ms.is_some(),
                    moderated: false,
                    attachments: m.attachments.clone(),
                    flag: None,
                    votes: None,
                })
                .await;
        }
        Ok(ServerFrame::ChatAck {
            seq,
            room: room_id,
            room_seq: posted.seq,
            message: m.id,
            client_id: m.client_message_id.clone(),
            duplicate: posted.duplicate,
        }
        .to_json())
    }

    /// Publishes a change's event and answers it.
    async fn acked(&self, seq: Option<u64>, ev: ChatEvent) -> String {
        let ack = ServerFrame::ChatAck {
            seq,
            room: ev.room_id,
            room_seq: ev.seq,
            message: ev.message_id,
            client_id: ev.client_message_id.clone(),
            duplicate: false,
        }
        .to_json();
        self.rooms.publish(ev).await;
        ack
    }

    /// The user who may change (`own`: edit or delete; otherwise boost) message `id`: its
    /// author or a moderator for edits and deletions, any writer for boosts.
    async fn changeable(
        &mut self,
        id: i64,
        own: bool,
    ) -> Result<(i64, ChatRoomRow, i64), FrameError> {
        let m = self
            .rooms
            .inner
            .store
            .chat_message(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found("message", id))?;
        let room = self
            .readable(m.room_id)
            .await
            .map_err(|_| not_found("message", id))?;
        let user = self.writer(&room).await?;
        if own && m.author_id != user && !self.moderates(&room).await? {
            return Err(forbidden(
                "only the author, the crew of the room's ensemble or an admin may change this message",
            ));
        }
        Ok((user, room, m.author_id))
    }

    /// A display session (the wall only).
    fn display(&self) -> bool {
        matches!(self.origin, Origin::Display { .. })
    }

    /// The moderator who may make a crew-only change (`what`) to message `id`; `forbidden`
    /// for anyone else who may read it.
    async fn crew_change(&mut self, id: i64, what: &str) -> Result<i64, FrameError> {
        let (user, room, _) = self.changeable(id, false).await?;
        if !self.moderates(&room).await? {
            return Err(forbidden(&format!(
                "only the crew of the room's ensemble or an admin may {what}"
            )));
        }
        Ok(user)
    }

    /// `chat_show`: the show's room for a show connection that need not chat (a phone before
    /// it chose a name, a display): `chat_hello` with user 0 until it has an identity.
    async fn show_hello(&mut self) -> Result<String, FrameError> {
        if self.origin == Origin::Staff {
            return Err(forbidden("chat_show is for a show's phones and displays"));
        }
        if self.who.is_some() {
            return self.hello().await;
        }
        let ctx = self.show().await?;
        let store = self.rooms.inner.store.clone();
        let room = store
            .chat_room(ctx.room_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found("room", ctx.room_id))?;
        let live = self.show_live(ctx.show_id).await?;
        Ok(ServerFrame::ChatHello {
            user: 0,
            name: String::new(),
            rooms: vec![ChatRoomInfo {
                room: room.id,
                kind: room.kind.as_str().to_owned(),
                name: room.name,
                read_only: room.read_only || !live || self.display(),
                last_seq: room.last_seq,
                unread: 0,
            }],
        }
        .to_json())
    }

    /// A question or an announcement (moderators only), published from the store.
    async fn post_flagged(
        &mut self,
        seq: Option<u64>,
        room_id: i64,
        client_id: &str,
        text: &str,
        flag: &str,
    ) -> Result<String, FrameError> {
        let flag: ChatFlag = flag.parse().map_err(|_| {
            FrameError::new(
                ErrorCode::InvalidChoice,
                "flag must be \"question\" or \"announcement\"",
            )
        })?;
        let client_id = ClientMessageId::parse(client_id).map_err(|e| input(&e))?;
        let text = MessageText::parse(text).map_err(|e| input(&e))?;
        if flag == ChatFlag::Announcement
            && text.as_str().chars().count() > MAX_CHAT_ANNOUNCEMENT_CHARS
        {
            return Err(FrameError::new(
                ErrorCode::TooLong,
                format!("an announcement holds at most {MAX_CHAT_ANNOUNCEMENT_CHARS} characters"),
            ));
        }
        let room = self.readable(room_id).await?;
        let author = self.writer(&room).await?;
        if flag == ChatFlag::Announcement && !self.moderates(&room).await? {
            return Err(forbidden(
                "only the crew of the room's ensemble or an admin may announce",
            ));
        }
        let at = self.rooms.inner.clock.now_ms();
        let posted = self
            .rooms
            .inner
            .store
            .chat_post_flagged(
                NewChatMessage {
                    room_id,
                    author_id: author,
                    client_message_id: client_id.as_str().to_owned(),
                    text: text.into_string(),
                    reply_to: None,
                    at_ms: at,
                },
                flag,
            )
            .await
            .map_err(store_error)?;
        if !posted.duplicate {
            self.rooms.advanced(room_id, posted.seq).await;
        }
        let m = &posted.message;
        Ok(ServerFrame::ChatAck {
            seq,
            room: room_id,
            room_seq: posted.seq,
            message: m.id,
            client_id: m.client_message_id.clone(),
            duplicate: posted.duplicate,
        }
        .to_json())
    }

    async fn moderates(&self, room: &ChatRoomRow) -> Result<bool, FrameError> {
        let Some(who) = &self.who else {
            return Ok(false);
        };
        if self.origin != Origin::Staff {
            return Ok(false);
        }
        if who.admin {
            return Ok(true);
        }
        match room.ensemble_id {
            Some(e) => Ok(self
                .rooms
                .inner
                .store
                .membership(e, who.user)
                .await
                .map_err(store_error)?
                .is_some()),
            None => Ok(false),
        }
    }

    async fn read(&mut self, room_id: i64, read_seq: u64) -> Result<String, FrameError> {
        self.readable(room_id).await?;
        let user = self
            .user()
            .ok_or_else(|| forbidden("chat as someone first (chat_auth or chat_name)"))?;
        let store = &self.rooms.inner.store;
        if self.origin != Origin::Staff
            && store
                .chat_member(room_id, user)
                .await
                .map_err(store_error)?
                .is_none()
        {
            let at = self.rooms.inner.clock.now_ms();
            store
                .chat_join_show_room(user, at)
                .await
                .map_err(store_error)?;
        }
        let m = store
            .chat_mark_read(room_id, user, read_seq)
            .await
            .map_err(store_error)?;
        let unread = store
            .chat_rooms_of(user)
            .await
            .map_err(store_error)?
            .into_iter()
            .find(|l| l.room.id == room_id)
            .map_or(0, |l| l.unread);
        let frame = ServerFrame::ChatUnread {
            room: room_id,
            read_seq: m.last_read_seq,
            unread,
        }
        .to_json();
        // The user's other connections following the room (another tab, another device)
        // learn the new count too.
        self.rooms
            .to_user(room_id, user, &Arc::from(frame.as_str()), self.sub.id);
        Ok(frame)
    }

    async fn typing(&mut self, room_id: i64) -> Result<(), FrameError> {
        if !self.delivered.contains_key(&room_id) {
            return Err(not_found("followed room", room_id));
        }
        let Some(who) = self.who.clone() else {
            return Err(forbidden("chat as someone first (chat_auth or chat_name)"));
        };
        let now = self.rooms.inner.clock.now_ms();
        let every = self.rooms.inner.config.typing_every_ms;
        if self.typed.get(&room_id).is_some_and(|at| now - *at < every) {
            // Rate-limited quietly: a typing indicator is a hint, never an error.
            return Ok(());
        }
        self.typed.insert(room_id, now);
        let frame: Arc<str> = Arc::from(
            ServerFrame::ChatTyping {
                room: room_id,
                user: who.user,
                name: who.name,
            }
            .to_json(),
        );
        self.rooms.typing(room_id, self.sub.id, &frame);
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for room in self.delivered.keys() {
            self.rooms.unsubscribe(*room, self.sub.id);
        }
    }
}
