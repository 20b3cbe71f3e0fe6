//! Chat for signed-in staff, `/api/v1/chat/...` (issue 12, item 9): rooms and memberships,
//! messages with exact catch-up by `seq`, edits, deletions, boosts, search and recent searches.
//! Audience guests do not use these routes (they will chat over `/live/v1`).
//!
//! # Who may do what
//! - **Reading a room** (its messages, events, search hits) and **posting** need membership of
//!   the room. A room that belongs to an ensemble also needs a place in that ensemble (admins
//!   have one everywhere, as in the rest of the API): whoever leaves the ensemble stops reading
//!   its rooms at once, and the search drops their hits. An **open** room is every member of
//!   its ensemble: a member who is not in it yet joins it on their first look (listing their
//!   rooms, reading or posting), so open rooms need no member list kept by hand. The same
//!   holds for a show's room (made with the show; its audience chats over `/live/v1`) and for
//!   "All Talk" (made by first-run setup; every staff account belongs to it).
//! - **Moderating** (editing or deleting someone else's message): admins anywhere; in a room of
//!   an ensemble, its crew, performers and owners who may read the room. Authors edit and delete
//!   their own messages.
//! - **Managing members**: admins (of any room, member or not), the room's creator and, in a
//!   room of an ensemble, its owners. Members may leave a closed room. An open room's members
//!   follow its ensemble and a direct room's are fixed (both `409 conflict`).
//! - Outside a room (and not an admin) everything about it is `404`, as for ensembles.
//!
//! # Writes
//! Every change is one store operation (the store keeps each room's sequence gap-free). A post
//! is idempotent on (room, author, `client_message_id`): a retry answers the original message
//! with `200` and writes nothing; `Idempotency-Key` is honoured as on every create.
//!
//! Must never: show a message, an event or a search hit from a room the caller may not read,
//! put user text into HTML other than through `tutti_chat::render_html`, or store an input that
//! `tutti_chat`'s newtypes refuse.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tutti_chat::{Boost, ChatInputError, ClientMessageId, MessageText};
use tutti_store::{
    ChatBoostRow, ChatEvent, ChatMemberRow, ChatMessageRow, ChatRefusal, ChatRestrictionKind,
    ChatRoomKind, ChatRoomRow, ChatSearchHit, EnsembleRole, Involvement, NewChatMessage,
    NewChatRoom, StoreError, UserRole, MAX_CHAT_DIRECT_MEMBERS, MAX_CHAT_INITIAL_MEMBERS,
    MAX_CHAT_MESSAGE_ATTACHMENTS, MAX_CHAT_PAGE, MAX_CHAT_ROOM_NAME_CHARS, MAX_CHAT_SEARCH_CHARS,
    MAX_CHAT_SEARCH_HITS,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use super::chat_attachments::AttachmentOut;
use super::{check_id, to_value};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Create, Problems, Validate};
use crate::{idem, ApiState};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_rooms, create_room))
        .routes(routes!(get_room))
        .routes(routes!(list_room_members, add_room_member))
        .routes(routes!(remove_room_member))
        .routes(routes!(set_involvement))
        .routes(routes!(mark_read))
        .routes(routes!(list_messages, post_message))
        .routes(routes!(room_events))
        .routes(routes!(edit_message, delete_message))
        .routes(routes!(boost_message, unboost_message))
        .routes(routes!(search))
        .routes(routes!(recent_searches))
        .merge(super::chat_moderation::routes())
        .merge(super::chat_attachments::routes())
        .merge(super::chat_bots::routes())
        .merge(super::chat_extras::routes())
}

/// Default page of events.
const DEFAULT_EVENTS: u32 = 100;
/// Default and largest page of messages scrolling back.
const DEFAULT_MESSAGES: u32 = 50;
const MAX_MESSAGES: u32 = 100;
/// Default number of search hits.
const DEFAULT_HITS: u32 = 20;

// ---------------------------------------------------------------- errors

/// A store error in chat's words: the generic mapping names ensembles where chat means rooms.
pub(super) fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::ChatRefused(why) => refused(&why),
        StoreError::Conflict {
            what: "moderator", ..
        } => ApiError::conflict(
            "conflict",
            "a moderator of the room (an admin or a member of its ensemble) cannot be restricted",
        )
        .with_details(json!({"what": "moderator"})),
        StoreError::Conflict {
            what: "read-only room",
            ..
        } => read_only(),
        StoreError::Conflict {
            what: "membership", ..
        } => ApiError::conflict("already_member", "the user is already a member of the room")
            .with_details(json!({"what": "room membership"})),
        StoreError::Conflict {
            what: "direct room",
            ..
        } => direct_fixed(),
        StoreError::Conflict {
            what: "deleted message",
            ..
        } => ApiError::conflict("conflict", "the message was deleted")
            .with_details(json!({"what": "deleted message"})),
        StoreError::Conflict {
            what: "attachment",
            value,
        } => ApiError::conflict("conflict", value).with_details(json!({"what": "attachment"})),
        StoreError::Conflict {
            what: "not a show room",
            value,
        } => ApiError::conflict("not_a_show_room", value)
            .with_details(json!({"field": "sounds_through_show"})),
        StoreError::Conflict { what: "boost", .. } => ApiError::conflict(
            "already_exists",
            "you already boosted this message with this content",
        )
        .with_details(json!({"what": "boost"})),
        other => other.into(),
    }
}

/// A post refused by moderation: `403 muted`, `403 banned`, `429 slow_mode` (with
/// `Retry-After` and `details.retry_after_s`), `422 filtered` (with `details.word`).
pub(super) fn refused(why: &ChatRefusal) -> ApiError {
    match why {
        ChatRefusal::Muted => ApiError::new(StatusCode::FORBIDDEN, "muted", why.to_string()),
        ChatRefusal::Banned => ApiError::new(StatusCode::FORBIDDEN, "banned", why.to_string()),
        ChatRefusal::SlowMode {
            retry_after_s,
            slow_mode_s,
        } => {
            let mut e = ApiError::rate_limited(u64::from(*retry_after_s), why.to_string());
            e.code = "slow_mode";
            e.with_details(json!({"retry_after_s": retry_after_s, "slow_mode_s": slow_mode_s}))
        }
        ChatRefusal::Filtered { word } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "filtered",
            why.to_string(),
        )
        .with_details(json!({"word": word})),
    }
}

/// 409 `room_read_only`.
pub(super) fn read_only() -> ApiError {
    ApiError::conflict(
        "room_read_only",
        "the room is read-only: nothing can be posted, edited or boosted in it",
    )
}

fn direct_fixed() -> ApiError {
    ApiError::conflict(
        "conflict",
        "a direct room's members are fixed: start a direct room with the other set of people",
    )
    .with_details(json!({"what": "direct room"}))
}

/// 422 `future_seq`: a `seq` the room has not reached.
pub(super) fn future_seq(field: &str, seq: u64, head: u64) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "future_seq",
        format!("{field}: {seq} is beyond the room's latest seq {head}"),
    )
    .with_details(json!({"field": field, "head_seq": head}))
}

pub(super) fn room_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("chat room {id}"))
}

pub(super) fn message_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("chat message {id}"))
}

/// Adds a chat input problem under `field` (the newtypes name their own field, which may
/// differ from the request's: a boost's is `content`).
pub(super) fn input_problem(p: &mut Problems, field: &str, e: &ChatInputError) {
    let message = e.to_string();
    let own = e.field();
    let problem = message
        .strip_prefix(own)
        .map_or(message.as_str(), str::trim_start);
    p.add(field, problem);
}

// ---------------------------------------------------------------- access

/// The caller's standing in a room.
pub(super) struct RoomAccess {
    pub(super) room: ChatRoomRow,
    /// They may read it (messages, events) and post.
    reads: bool,
    /// They may edit and delete others' messages, and moderate the room (settings,
    /// restrictions, the audit log).
    pub(super) moderates: bool,
    /// They may add and remove members.
    manages: bool,
}

/// What a route needs of the caller in a room.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RoomNeed {
    /// Read it: join an open room of one's ensemble, otherwise be a member.
    Read,
    /// See it to manage it: readers, and managers (admins of any room, owners of its
    /// ensemble) who are not members.
    See,
}

impl ApiState {
    /// The caller's access to a room; 404 for anyone who may not see it.
    pub(super) async fn room_access(
        &self,
        caller: &Caller,
        room_id: i64,
        need: RoomNeed,
    ) -> Result<RoomAccess, ApiError> {
        caller.require_staff()?;
        let room = self
            .store
            .chat_room(room_id)
            .await?
            .ok_or_else(|| room_not_found(room_id))?;
        let ensemble_role = match room.ensemble_id {
            Some(eid) => self.ensemble_role(caller, eid).await?,
            None => None,
        };
        let in_ensemble = room.ensemble_id.is_none() || ensemble_role.is_some();
        let mut member = self.store.chat_member(room_id, caller.id()).await?;
        // Open and show rooms are every member of their ensemble's, "All Talk" every staff
        // account's (the caller is staff): they join on their first look.
        let belongs = (matches!(room.kind, ChatRoomKind::Open | ChatRoomKind::Show)
            && ensemble_role.is_some())
            || room.everyone;
        if member.is_none() && need == RoomNeed::Read && belongs {
            member = Some(self.join_open_room(room_id, caller.id()).await?);
        }
        let mut reads = in_ensemble && member.is_some();
        let moderates = caller.is_admin() || (reads && ensemble_role.is_some());
        if reads && !moderates {
            let banned = self
                .store
                .chat_restriction(room_id, caller.id())
                .await?
                .is_some_and(|r| r.kind == ChatRestrictionKind::Ban);
            if banned {
                if need == RoomNeed::Read {
                    return Err(refused(&ChatRefusal::Banned));
                }
                reads = false;
            }
        }
        let manages = caller.is_admin()
            || (reads && room.created_by == Some(caller.id()))
            || ensemble_role == Some(EnsembleRole::Owner);
        let sees = match need {
            RoomNeed::Read => reads,
            RoomNeed::See => reads || manages,
        };
        if !sees {
            return Err(room_not_found(room_id));
        }
        Ok(RoomAccess {
            room,
            reads,
            moderates,
            manages,
        })
    }

    /// Joins an open room (another request may have joined it a moment before).
    async fn join_open_room(&self, room_id: i64, user_id: i64) -> Result<ChatMemberRow, ApiError> {
        match self
            .store
            .chat_add_member(room_id, user_id, Involvement::Everything, self.now_ms())
            .await
        {
            Ok(m) => Ok(m),
            Err(StoreError::Conflict {
                what: "membership", ..
            }) => self
                .store
                .chat_member(room_id, user_id)
                .await?
                .ok_or_else(|| room_not_found(room_id)),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Whether the caller may still read a room of this ensemble (`None`: a room of no
    /// ensemble, where membership alone decides).
    async fn in_room_ensemble(
        &self,
        caller: &Caller,
        ensemble_id: Option<i64>,
    ) -> Result<bool, ApiError> {
        match ensemble_id {
            Some(eid) => Ok(self.ensemble_role(caller, eid).await?.is_some()),
            None => Ok(true),
        }
    }

    /// A message and the caller's access to its room (404 when they may not see it).
    async fn message_access(
        &self,
        caller: &Caller,
        message_id: i64,
        need: RoomNeed,
    ) -> Result<(ChatMessageRow, RoomAccess), ApiError> {
        let message_id = check_id("chat message", message_id)?;
        caller.require_staff()?;
        let message = self
            .store
            .chat_message(message_id)
            .await?
            .ok_or_else(|| message_not_found(message_id))?;
        let access = self
            .room_access(caller, message.room_id, need)
            .await
            .map_err(|e| {
                if e.status == StatusCode::NOT_FOUND {
                    message_not_found(message_id)
                } else {
                    e
                }
            })?;
        Ok((message, access))
    }
}

// ---------------------------------------------------------------- DTOs

/// A room, with the caller's membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomOut {
    /// Id.
    pub id: i64,
    /// `open`, `closed`, `direct` or `show`.
    pub kind: String,
    /// The ensemble it belongs to.
    pub ensemble_id: Option<i64>,
    /// The show it belongs to (`show` rooms).
    pub show_id: Option<i64>,
    /// Its name (direct rooms have none).
    pub name: Option<String>,
    /// Nothing can be posted, edited or boosted (a show that ended).
    pub read_only: bool,
    /// "All Talk": every staff account belongs to it (made by first-run setup).
    pub everyone: bool,
    /// The `seq` of its latest event (0 before the first).
    pub last_seq: u64,
    /// Who created it.
    pub created_by: Option<i64>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// The caller's membership (null for an admin who is not a member).
    pub membership: Option<RoomMemberOut>,
    /// Messages of others, not deleted, after the caller's `last_read_seq`.
    pub unread: u64,
}

impl RoomOut {
    fn new(room: ChatRoomRow, membership: Option<ChatMemberRow>, unread: u64) -> Self {
        RoomOut {
            id: room.id,
            kind: room.kind.as_str().to_owned(),
            ensemble_id: room.ensemble_id,
            show_id: room.show_id,
            name: room.name,
            read_only: room.read_only,
            everyone: room.everyone,
            last_seq: room.last_seq,
            created_by: room.created_by,
            created_at_ms: room.created_at_ms,
            membership: membership.map(RoomMemberOut::from),
            unread,
        }
    }
}

/// A member of a room.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomMemberOut {
    /// The room.
    pub room_id: i64,
    /// The user.
    pub user_id: i64,
    /// `everything`, `mentions`, `nothing` or `invisible`.
    pub involvement: String,
    /// The highest `seq` they have read.
    pub last_read_seq: u64,
    /// When they joined, unix ms.
    pub created_at_ms: i64,
}

impl From<ChatMemberRow> for RoomMemberOut {
    fn from(m: ChatMemberRow) -> Self {
        RoomMemberOut {
            room_id: m.room_id,
            user_id: m.user_id,
            involvement: m.involvement.as_str().to_owned(),
            last_read_seq: m.last_read_seq,
            created_at_ms: m.created_at_ms,
        }
    }
}

/// The caller's rooms (not paginated).
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList {
    /// The rooms, by id.
    pub items: Vec<RoomOut>,
}

/// A room's members (not paginated).
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomMemberList {
    /// The members, by user id.
    pub items: Vec<RoomMemberOut>,
}

/// A boost on a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoostOut {
    /// Who boosted.
    pub user_id: i64,
    /// The boost (1–16 characters).
    pub content: String,
    /// The `seq` of the event that added it.
    pub seq: u64,
    /// When, unix ms.
    pub at_ms: i64,
}

impl From<ChatBoostRow> for BoostOut {
    fn from(b: ChatBoostRow) -> Self {
        BoostOut {
            user_id: b.user_id,
            content: b.content,
            seq: b.seq,
            at_ms: b.at_ms,
        }
    }
}

/// A message as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    /// Id.
    pub id: i64,
    /// Its room.
    pub room_id: i64,
    /// Its author.
    pub author_id: i64,
    /// The author's own id for it.
    pub client_message_id: String,
    /// Its text as written (empty once deleted).
    pub text: String,
    /// Its text rendered as safe HTML (every character of the text escaped; only `http(s)`
    /// links); empty once deleted.
    pub html: String,
    /// The message it replies to.
    pub reply_to: Option<i64>,
    /// The `seq` of the event that posted it.
    pub posted_seq: u64,
    /// The `seq` of the latest event that changed it.
    pub last_seq: u64,
    /// When it was posted, unix ms.
    pub created_at_ms: i64,
    /// When it was last edited.
    pub edited_at_ms: Option<i64>,
    /// Who last edited it.
    pub edited_by: Option<i64>,
    /// Whether it was deleted.
    pub deleted: bool,
    /// When it was deleted.
    pub deleted_at_ms: Option<i64>,
    /// Who deleted it.
    pub deleted_by: Option<i64>,
    /// Posted while its author was shadow-muted: only its author and the room's moderators
    /// see it.
    pub hidden: bool,
    /// An audience message held by the room's delay until this time (unix ms): only its
    /// author and the room's moderators see it until then.
    pub held_until_ms: Option<i64>,
    /// The sound of a `/play <sound>` message.
    pub sound: Option<String>,
    /// Its boosts, oldest first.
    pub boosts: Vec<BoostOut>,
    /// The files it carries, in order (none once deleted).
    pub attachments: Vec<AttachmentOut>,
}

/// The sound of a `/play <sound>` text.
fn sound_of(text: &str) -> Option<String> {
    tutti_chat::play_command(text)
        .and_then(Result::ok)
        .map(str::to_owned)
}

/// Safe HTML for a stored text ("" for a deleted message's empty text).
pub(super) fn html_of(text: &str) -> String {
    MessageText::parse(text)
        .map(|t| tutti_chat::render_html(&t))
        .unwrap_or_default()
}

impl MessageOut {
    pub(super) fn new(m: ChatMessageRow, boosts: Vec<ChatBoostRow>) -> Self {
        MessageOut {
            html: html_of(&m.text),
            sound: sound_of(&m.text),
            id: m.id,
            room_id: m.room_id,
            author_id: m.author_id,
            client_message_id: m.client_message_id,
            text: m.text,
            reply_to: m.reply_to,
            posted_seq: m.posted_seq,
            last_seq: m.last_seq,
            created_at_ms: m.created_at_ms,
            edited_at_ms: m.edited_at_ms,
            edited_by: m.edited_by,
            deleted: m.deleted_at_ms.is_some(),
            deleted_at_ms: m.deleted_at_ms,
            deleted_by: m.deleted_by,
            hidden: m.hidden,
            held_until_ms: m.held_until_ms,
            boosts: boosts.into_iter().map(BoostOut::from).collect(),
            attachments: m.attachments.into_iter().map(AttachmentOut::from).collect(),
        }
    }
}

/// One event of a room's sequence.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// The room.
    pub room_id: i64,
    /// Its place in the room's sequence (1, 2, 3, … without gaps).
    pub seq: u64,
    /// `message_posted`, `message_edited`, `message_deleted`, `boost_added` or
    /// `boost_removed` (clients must skip kinds they do not know).
    pub kind: String,
    /// The message it concerns.
    pub message_id: i64,
    /// Who did it.
    pub actor_id: i64,
    /// When, unix ms.
    pub at_ms: i64,
    /// The text of a post or an edit (null for other kinds and once the message is deleted).
    pub text: Option<String>,
    /// `text` rendered as safe HTML.
    pub html: Option<String>,
    /// The boost added or removed.
    pub boost: Option<String>,
    /// The message's author.
    pub author_id: i64,
    /// The author's own id for the message.
    pub client_message_id: String,
    /// The message it replies to.
    pub reply_to: Option<i64>,
    /// A `message_deleted` by a moderator, not by the author: a removal.
    pub moderated: bool,
    /// Written while the message was held by the room's audience delay (seen only by its
    /// author and moderators; a later `message_released` shows it to everyone).
    pub held: bool,
    /// The sound of a `/play <sound>` message (`message_posted` and `message_released`).
    pub sound: Option<String>,
    /// The files a `message_posted` carries, in order (empty for other kinds and once the
    /// message is deleted).
    pub attachments: Vec<AttachmentOut>,
    /// The message is a `question` or an `announcement` (live-show extras).
    pub flag: Option<String>,
    /// `vote_added`, `vote_removed`: the question's vote count after it.
    pub votes: Option<u64>,
}

impl From<ChatEvent> for EventOut {
    fn from(e: ChatEvent) -> Self {
        EventOut {
            html: e.text.as_deref().map(html_of),
            sound: e
                .text
                .as_deref()
                .filter(|_| e.kind.shows_message())
                .and_then(sound_of),
            room_id: e.room_id,
            seq: e.seq,
            kind: e.kind.as_str().to_owned(),
            message_id: e.message_id,
            actor_id: e.actor_id,
            at_ms: e.at_ms,
            text: e.text,
            boost: e.boost,
            author_id: e.author_id,
            client_message_id: e.client_message_id,
            reply_to: e.reply_to,
            moderated: e.moderated,
            held: e.held,
            attachments: e.attachments.into_iter().map(AttachmentOut::from).collect(),
            flag: e.flag.map(|f| f.as_str().to_owned()),
            votes: e.votes,
        }
    }
}

/// A page of a room's events, after `after_seq`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events, in `seq` order, without gaps.
    pub items: Vec<EventOut>,
    /// The room's latest `seq` when the page was read.
    pub head_seq: u64,
    /// More events follow: ask again with `after_seq` = `next_after_seq`.
    pub more: bool,
    /// The `seq` to ask after next (the last event's, or `after_seq` when there was none).
    pub next_after_seq: u64,
}

/// A page of messages scrolling back, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// The messages not deleted, newest first.
    pub items: Vec<MessageOut>,
    /// Pass as `before_seq` for older messages; null when there are none.
    pub next_before_seq: Option<u64>,
}

/// A part of a search hit's snippet.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnippetPartOut {
    /// Plain text (escape it to show it).
    pub text: String,
    /// Whether it matched the query.
    pub highlighted: bool,
}

/// A message found by a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitOut {
    /// The message.
    pub message_id: i64,
    /// Its room.
    pub room_id: i64,
    /// The `seq` that posted it.
    pub posted_seq: u64,
    /// Its author.
    pub author_id: i64,
    /// When it was posted, unix ms.
    pub created_at_ms: i64,
    /// A snippet of its text around the matches, in parts.
    pub snippet: Vec<SnippetPartOut>,
    /// Relevance (FTS5's bm25: lower is better); hits come best first.
    pub rank: f64,
}

impl From<ChatSearchHit> for SearchHitOut {
    fn from(h: ChatSearchHit) -> Self {
        SearchHitOut {
            message_id: h.message_id,
            room_id: h.room_id,
            posted_seq: h.posted_seq,
            author_id: h.author_id,
            created_at_ms: h.created_at_ms,
            snippet: h
                .snippet
                .into_iter()
                .map(|p| SnippetPartOut {
                    text: p.text,
                    highlighted: p.highlighted,
                })
                .collect(),
            rank: h.rank,
        }
    }
}

/// Search hits, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// The hits.
    pub items: Vec<SearchHitOut>,
}

/// One of the caller's recent searches.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecentSearchOut {
    /// The query as searched (trimmed).
    pub query: String,
    /// When it was last searched, unix ms.
    pub at_ms: i64,
}

/// The caller's recent searches, newest first (at most 10).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecentSearches {
    /// The searches.
    pub items: Vec<RecentSearchOut>,
}

// ---------------------------------------------------------------- rooms

/// The kind of a new room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomKindIn {
    /// Every member of an ensemble.
    Open,
    /// The listed members.
    Closed,
    /// One room per exact set of people.
    Direct,
}

/// A new room. The caller is always a member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoomIn {
    /// `open` (needs `ensemble_id`; its members are the ensemble's), `closed` or `direct`.
    pub kind: RoomKindIn,
    /// The ensemble (required for `open`, optional for `closed`, refused for `direct`).
    pub ensemble_id: Option<i64>,
    /// 1–100 characters (`open` and `closed`; refused for `direct`).
    pub name: Option<String>,
    /// The other members' user ids: for `closed` up to 1,000 (of the ensemble, if it has one),
    /// for `direct` 1–31 (required); refused for `open`.
    pub members: Option<Vec<i64>>,
}

impl Validate for NewRoomIn {
    fn validate(&self, p: &mut Problems) {
        if let Some(name) = &self.name {
            p.text("name", name, 1, MAX_CHAT_ROOM_NAME_CHARS);
        }
        if let Some(id) = self.ensemble_id {
            if id < 1 {
                p.add("ensemble_id", "must be an ensemble id (≥ 1)");
            }
        }
        match self.kind {
            RoomKindIn::Open => {
                if self.ensemble_id.is_none() {
                    p.add("ensemble_id", "is required for an open room");
                }
                if self.members.is_some() {
                    p.add(
                        "members",
                        "an open room's members are its ensemble's: leave it out",
                    );
                }
            }
            RoomKindIn::Closed => {}
            RoomKindIn::Direct => {
                if self.ensemble_id.is_some() {
                    p.add("ensemble_id", "a direct room belongs to no ensemble");
                }
                if self.name.is_some() {
                    p.add("name", "a direct room has no name");
                }
                match &self.members {
                    None => p.add("members", "is required for a direct room"),
                    Some(m) if m.is_empty() || m.len() >= MAX_CHAT_DIRECT_MEMBERS => p.add(
                        "members",
                        format!(
                            "a direct room has 1–{} other people (got {})",
                            MAX_CHAT_DIRECT_MEMBERS - 1,
                            m.len()
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        if let Some(members) = &self.members {
            if members.len() > MAX_CHAT_INITIAL_MEMBERS {
                p.add(
                    "members",
                    format!(
                        "at most {MAX_CHAT_INITIAL_MEMBERS} members (got {})",
                        members.len()
                    ),
                );
            } else if let Some(i) = members.iter().position(|id| *id < 1) {
                p.add(&format!("members[{i}]"), "must be a user id (≥ 1)");
            }
        }
    }
}

/// Checks that each user exists and, for a room of an ensemble, is in it (admins count as in
/// every ensemble); the problem names `field[i]`.
async fn check_people(
    s: &ApiState,
    field: &str,
    users: &[i64],
    ensemble_id: Option<i64>,
) -> Result<(), ApiError> {
    for (i, &user_id) in users.iter().enumerate() {
        let name = format!("{field}[{i}]");
        let Some(user) = s.store.user(user_id).await? else {
            return Err(ApiError::field(name, format!("no user {user_id}")));
        };
        if let Some(eid) = ensemble_id {
            let in_it = user.role == UserRole::Admin
                || s.store.membership(eid, user_id).await?.is_some()
                || super::chat_bots::may_join(s, user_id, eid).await?;
            if !in_it {
                return Err(ApiError::field(
                    name,
                    format!("user {user_id} is not a member of the room's ensemble"),
                ));
            }
        }
    }
    Ok(())
}

/// `POST /api/v1/chat/rooms`: an open room (owners and performers of the ensemble, admins), a
/// closed room (any member of its ensemble, or anyone without one) or a direct room (anyone;
/// creating it again answers the existing one with 200).
#[utoipa::path(post, path = "/api/v1/chat/rooms", tag = "chat", request_body = NewRoomIn,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    responses((status = 201, description = "Created", body = RoomOut),
        (status = 200, description = "The direct room of these people already existed", body = RoomOut)))]
async fn create_room(
    State(s): State<ApiState>,
    caller: Caller,
    req: Create<NewRoomIn>,
) -> Result<Response, ApiError> {
    caller.require_staff()?;
    let body = req.body;
    let others: Vec<i64> = body
        .members
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|id| *id != caller.id())
        .collect();
    match (body.kind, body.ensemble_id) {
        (RoomKindIn::Open, Some(eid)) => {
            s.ensemble_access(&caller, eid, crate::Need::Edit).await?;
        }
        (RoomKindIn::Closed, Some(eid)) => {
            s.ensemble_access(&caller, eid, crate::Need::Read).await?;
        }
        _ => {}
    }
    if body.kind == RoomKindIn::Direct && others.is_empty() {
        return Err(ApiError::field(
            "members",
            "a direct room needs someone besides you",
        ));
    }
    check_people(&s, "members", &others, body.ensemble_id).await?;
    idem::run(&s, caller.id(), req.idem, async {
        let now = s.now_ms();
        if body.kind == RoomKindIn::Direct {
            let mut people = others.clone();
            people.push(caller.id());
            let (room, created) = s
                .store
                .chat_direct_room(&people, Some(caller.id()), now)
                .await
                .map_err(store_err)?;
            let out = room_out(&s, &caller, room).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            return Ok((status, to_value(&out)?));
        }
        let mut members = vec![caller.id()];
        match body.kind {
            RoomKindIn::Open => {
                let eid = body.ensemble_id.unwrap_or_default();
                for m in s.store.members(eid).await? {
                    if !members.contains(&m.user_id) {
                        members.push(m.user_id);
                    }
                }
            }
            _ => {
                for id in &others {
                    if !members.contains(id) {
                        members.push(*id);
                    }
                }
            }
        }
        let room = s
            .store
            .chat_create_room(NewChatRoom {
                kind: if body.kind == RoomKindIn::Open {
                    ChatRoomKind::Open
                } else {
                    ChatRoomKind::Closed
                },
                ensemble_id: body.ensemble_id,
                show_id: None,
                name: body.name.clone(),
                created_by: Some(caller.id()),
                members,
                at_ms: now,
            })
            .await
            .map_err(store_err)?;
        let out = room_out(&s, &caller, room).await?;
        Ok((StatusCode::CREATED, to_value(&out)?))
    })
    .await
}

/// A room with the caller's membership and unread count.
async fn room_out(s: &ApiState, caller: &Caller, room: ChatRoomRow) -> Result<RoomOut, ApiError> {
    let listing = s
        .store
        .chat_rooms_of(caller.id())
        .await?
        .into_iter()
        .find(|l| l.room.id == room.id);
    Ok(match listing {
        Some(l) => RoomOut::new(l.room, Some(l.member), l.unread),
        None => RoomOut::new(room, None, 0),
    })
}

/// Options of `GET /chat/rooms`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoomListQuery {
    /// Also list rooms whose involvement is `invisible` (default false).
    pub include_invisible: Option<bool>,
}

impl Validate for RoomListQuery {}

/// `GET /api/v1/chat/rooms`: the caller's rooms with unread counts (open rooms of their
/// ensembles joined on the way; `invisible` ones only when asked).
#[utoipa::path(get, path = "/api/v1/chat/rooms", tag = "chat", params(RoomListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's rooms, by id", body = RoomList)))]
async fn list_rooms(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RoomListQuery>,
) -> Result<ApiJson<RoomList>, ApiError> {
    caller.require_staff()?;
    for room_id in s.store.chat_open_rooms_to_join(caller.id()).await? {
        s.join_open_room(room_id, caller.id()).await?;
    }
    let include_invisible = q.include_invisible.unwrap_or(false);
    let mut items = Vec::new();
    for l in s.store.chat_rooms_of(caller.id()).await? {
        if !include_invisible && l.member.involvement == Involvement::Invisible {
            continue;
        }
        if !s.in_room_ensemble(&caller, l.room.ensemble_id).await? {
            continue;
        }
        items.push(RoomOut::new(l.room, Some(l.member), l.unread));
    }
    Ok(ApiJson(RoomList { items }))
}

/// `GET /api/v1/chat/rooms/{id}` (members; admins any room).
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), security(("bearer" = [])),
    responses((status = 200, description = "The room", body = RoomOut)))]
async fn get_room(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<RoomOut>, ApiError> {
    let id = check_id("chat room", id)?;
    let access = s.room_access(&caller, id, RoomNeed::See).await?;
    Ok(ApiJson(room_out(&s, &caller, access.room).await?))
}

/// `GET /api/v1/chat/rooms/{id}/members` (members; admins any room).
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/members", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), security(("bearer" = [])),
    responses((status = 200, description = "Members by user id", body = RoomMemberList)))]
async fn list_room_members(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<RoomMemberList>, ApiError> {
    let id = check_id("chat room", id)?;
    s.room_access(&caller, id, RoomNeed::See).await?;
    let items = s
        .store
        .chat_members(id)
        .await?
        .into_iter()
        .map(RoomMemberOut::from)
        .collect();
    Ok(ApiJson(RoomMemberList { items }))
}

/// How much of a room a member wants to hear about.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvolvementIn {
    /// Every message.
    Everything,
    /// Messages that mention them.
    Mentions,
    /// Nothing (the room stays in their list).
    Nothing,
    /// Nothing, and the room is hidden from their list.
    Invisible,
}

impl From<InvolvementIn> for Involvement {
    fn from(i: InvolvementIn) -> Self {
        match i {
            InvolvementIn::Everything => Involvement::Everything,
            InvolvementIn::Mentions => Involvement::Mentions,
            InvolvementIn::Nothing => Involvement::Nothing,
            InvolvementIn::Invisible => Involvement::Invisible,
        }
    }
}

/// A member to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoomMemberIn {
    /// The user's id (in a room of an ensemble: a member of the ensemble).
    pub user_id: i64,
    /// Their involvement (default `everything`).
    pub involvement: Option<InvolvementIn>,
}

impl Validate for NewRoomMemberIn {
    fn validate(&self, p: &mut Problems) {
        if self.user_id < 1 {
            p.add("user_id", "must be a user id (≥ 1)");
        }
    }
}

/// `POST /api/v1/chat/rooms/{id}/members` (admins, the room's creator, owners of its
/// ensemble): not to a direct room (`409 conflict`); twice is `409 already_member`.
#[utoipa::path(post, path = "/api/v1/chat/rooms/{id}/members", tag = "chat",
    params(("id" = i64, Path, description = "Room id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = NewRoomMemberIn, security(("bearer" = [])),
    responses((status = 201, description = "Added", body = RoomMemberOut)))]
async fn add_room_member(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<NewRoomMemberIn>,
) -> Result<Response, ApiError> {
    let id = check_id("chat room", id)?;
    let access = s.room_access(&caller, id, RoomNeed::See).await?;
    if !access.manages {
        return Err(ApiError::forbidden(
            "only admins, the room's creator and owners of its ensemble add members",
        ));
    }
    if access.room.kind == ChatRoomKind::Direct {
        return Err(direct_fixed());
    }
    let body = req.body;
    check_people(&s, "user_id", &[body.user_id], access.room.ensemble_id)
        .await
        .map_err(|mut e| {
            // One user: name the field itself, not `user_id[0]`.
            e.message = e.message.replacen("user_id[0]", "user_id", 1);
            if let Some(first) = e.details.get_mut(0) {
                first["field"] = json!("user_id");
            }
            e
        })?;
    let involvement = body
        .involvement
        .map_or(Involvement::Everything, Involvement::from);
    idem::run(&s, caller.id(), req.idem, async {
        let m = s
            .store
            .chat_add_member(id, body.user_id, involvement, s.now_ms())
            .await
            .map_err(store_err)?;
        Ok((StatusCode::CREATED, to_value(&RoomMemberOut::from(m))?))
    })
    .await
}

/// `DELETE /api/v1/chat/rooms/{id}/members/{user_id}` (managers; members may leave): not
/// from an open room (its members follow its ensemble) or a direct room (`409 conflict`).
#[utoipa::path(delete, path = "/api/v1/chat/rooms/{id}/members/{user_id}", tag = "chat",
    params(("id" = i64, Path, description = "Room id"),
        ("user_id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Removed")))]
async fn remove_room_member(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    let id = check_id("chat room", id)?;
    let access = s.room_access(&caller, id, RoomNeed::See).await?;
    let leaving = user_id == caller.id() && access.reads;
    if !leaving && !access.manages {
        return Err(ApiError::forbidden(
            "only admins, the room's creator and owners of its ensemble remove members",
        ));
    }
    match access.room.kind {
        ChatRoomKind::Direct => return Err(direct_fixed()),
        ChatRoomKind::Open => {
            return Err(ApiError::conflict(
                "conflict",
                "an open room's members follow its ensemble: set the involvement to \
                 `invisible` to hide it",
            )
            .with_details(json!({"what": "open room"})))
        }
        _ => {}
    }
    s.store
        .chat_remove_member(id, user_id)
        .await
        .map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new involvement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvolvementBody {
    /// `everything`, `mentions`, `nothing` or `invisible`.
    pub involvement: InvolvementIn,
}

impl Validate for InvolvementBody {}

/// `PUT /api/v1/chat/rooms/{id}/involvement`: the caller's own involvement in a room.
#[utoipa::path(put, path = "/api/v1/chat/rooms/{id}/involvement", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), request_body = InvolvementBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's membership", body = RoomMemberOut)))]
async fn set_involvement(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<InvolvementBody>,
) -> Result<ApiJson<RoomMemberOut>, ApiError> {
    let id = check_id("chat room", id)?;
    s.room_access(&caller, id, RoomNeed::Read).await?;
    let m = s
        .store
        .chat_set_involvement(id, caller.id(), body.involvement.into())
        .await
        .map_err(store_err)?;
    Ok(ApiJson(m.into()))
}

/// How far the caller has read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkReadIn {
    /// The highest `seq` read (at most the room's `last_seq`; never moves back).
    pub seq: u64,
}

impl Validate for MarkReadIn {}

/// `POST /api/v1/chat/rooms/{id}/read`: a `seq` beyond the room's latest is
/// `422 future_seq`.
#[utoipa::path(post, path = "/api/v1/chat/rooms/{id}/read", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), request_body = MarkReadIn,
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's membership", body = RoomMemberOut)))]
async fn mark_read(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<MarkReadIn>,
) -> Result<ApiJson<RoomMemberOut>, ApiError> {
    let id = check_id("chat room", id)?;
    let access = s.room_access(&caller, id, RoomNeed::Read).await?;
    if body.seq > access.room.last_seq {
        return Err(future_seq("seq", body.seq, access.room.last_seq));
    }
    let m = s
        .store
        .chat_mark_read(id, caller.id(), body.seq)
        .await
        .map_err(store_err)?;
    Ok(ApiJson(m.into()))
}

// ---------------------------------------------------------------- messages

/// A message to post.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageIn {
    /// The sender's own id for this message, 1–64 of `A-Z a-z 0-9 . _ : -` (a UUID fits): a
    /// retry with the same id answers the original message and writes nothing.
    pub client_message_id: String,
    /// 1–4,000 characters of light formatting (bold, italics, code, links); no control
    /// characters but newline and tab, no bidirectional overrides or invisible characters.
    pub text: String,
    /// The message it replies to (in the same room).
    pub reply_to: Option<i64>,
    /// Uploads of the caller in this room that no message carries yet
    /// (`POST /chat/rooms/{id}/attachments`), at most 4, each once.
    #[serde(default)]
    pub attachments: Vec<i64>,
}

impl Validate for NewMessageIn {
    fn validate(&self, p: &mut Problems) {
        if let Err(e) = ClientMessageId::parse(&self.client_message_id) {
            input_problem(p, "client_message_id", &e);
        }
        if let Err(e) = MessageText::parse(&self.text) {
            input_problem(p, "text", &e);
        }
        if self.reply_to.is_some_and(|id| id < 1) {
            p.add("reply_to", "must be a message id (≥ 1)");
        }
        if self.attachments.len() > MAX_CHAT_MESSAGE_ATTACHMENTS {
            p.add(
                "attachments",
                format!("at most {MAX_CHAT_MESSAGE_ATTACHMENTS} attachments per message"),
            );
        } else if self.attachments.iter().any(|&id| id < 1) {
            p.add("attachments", "each must be an attachment id (≥ 1)");
        } else if (1..self.attachments.len())
            .any(|i| self.attachments[..i].contains(&self.attachments[i]))
        {
            p.add("attachments", "an attachment is listed twice");
        }
    }
}

/// `POST /api/v1/chat/rooms/{id}/messages`: 201 with the message once committed; a retry with
/// the same `client_message_id` answers the original with 200 and writes nothing.
#[utoipa::path(post, path = "/api/v1/chat/rooms/{id}/messages", tag = "chat",
    params(("id" = i64, Path, description = "Room id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = NewMessageIn, security(("bearer" = [])),
    responses((status = 201, description = "Posted", body = MessageOut),
        (status = 200, description = "A retry: the original message", body = MessageOut)))]
async fn post_message(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<NewMessageIn>,
) -> Result<Response, ApiError> {
    let id = check_id("chat room", id)?;
    let access = s.room_access(&caller, id, RoomNeed::Read).await?;
    let body = req.body;
    let text = MessageText::parse(&body.text).map_err(|e| {
        let mut p = Problems::default();
        input_problem(&mut p, "text", &e);
        ApiError::validation(p.0)
    })?;
    if let Some(reply_to) = body.reply_to {
        let in_room = s
            .store
            .chat_message(reply_to)
            .await?
            .is_some_and(|m| m.room_id == id);
        if !in_room {
            return Err(ApiError::field(
                "reply_to",
                format!("no message {reply_to} in this room"),
            ));
        }
    }
    if access.room.read_only {
        return Err(read_only());
    }
    idem::run(&s, caller.id(), req.idem, async {
        let posted = s
            .store
            .chat_post_attached(
                NewChatMessage {
                    room_id: id,
                    author_id: caller.id(),
                    client_message_id: body.client_message_id.clone(),
                    text: text.into_string(),
                    reply_to: body.reply_to,
                    at_ms: s.now_ms(),
                },
                body.attachments.clone(),
            )
            .await
            .map_err(store_err)?;
        if !posted.duplicate {
            s.chat_changed(id, posted.seq);
            s.call_bots(&posted.message);
        }
        let boosts = if posted.duplicate {
            s.store.chat_boosts(posted.message.id).await?
        } else {
            Vec::new()
        };
        let status = if posted.duplicate {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((status, to_value(&MessageOut::new(posted.message, boosts))?))
    })
    .await
}

/// Catch-up paging of `GET /chat/rooms/{id}/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The last `seq` the client has (0, the default, for everything).
    pub after_seq: Option<u64>,
    /// 1–1000, default 100.
    pub limit: Option<u32>,
}

impl Validate for EventsQuery {
    fn validate(&self, p: &mut Problems) {
        if let Some(l) = self.limit {
            if !(1..=MAX_CHAT_PAGE).contains(&l) {
                p.add("limit", format!("must be 1–{MAX_CHAT_PAGE}"));
            }
        }
    }
}

/// `GET /api/v1/chat/rooms/{id}/events?after_seq=`: exactly the events after `after_seq`, in
/// order (edits, deletions and boosts included), paged; an `after_seq` beyond the room's
/// latest is `422 future_seq`.
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/events", tag = "chat",
    params(("id" = i64, Path, description = "Room id"), EventsQuery), security(("bearer" = [])),
    responses((status = 200, description = "Events in seq order", body = EventPage)))]
async fn room_events(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<ApiJson<EventPage>, ApiError> {
    let id = check_id("chat room", id)?;
    let access = s.room_access(&caller, id, RoomNeed::Read).await?;
    let after = q.after_seq.unwrap_or(0);
    // The room's head only grows: what is not beyond it now is not beyond it in the store.
    if after > access.room.last_seq {
        return Err(future_seq("after_seq", after, access.room.last_seq));
    }
    let page = s
        .store
        .chat_events_after(id, after, q.limit.unwrap_or(DEFAULT_EVENTS))
        .await
        .map_err(store_err)?;
    let next_after_seq = page.events.last().map_or(after, |e| e.seq);
    // A shadow-muted author's events, and those of a message held by the room's audience
    // delay, reach only the author and moderators: others skip them (their `seq`s stay taken, so `next_after_seq` still moves past them).
    let me = caller.id();
    Ok(ApiJson(EventPage {
        items: page
            .events
            .into_iter()
            .filter(|e| !e.hidden || access.moderates || e.author_id == me)
            .map(EventOut::from)
            .collect(),
        head_seq: page.head_seq,
        more: page.more,
        next_after_seq,
    }))
}

/// Scrolling back in `GET /chat/rooms/{id}/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only messages posted before this `seq` (default: the newest).
    pub before_seq: Option<u64>,
    /// 1–100, default 50.
    pub limit: Option<u32>,
}

impl Validate for MessagesQuery {
    fn validate(&self, p: &mut Problems) {
        if let Some(l) = self.limit {
            if !(1..=MAX_MESSAGES).contains(&l) {
                p.add("limit", format!("must be 1–{MAX_MESSAGES}"));
            }
        }
        if self.before_seq.is_some_and(|b| i64::try_from(b).is_err()) {
            p.add("before_seq", "is too large");
        }
    }
}

/// `GET /api/v1/chat/rooms/{id}/messages?before_seq=`: the room's messages as they are now
/// (not deleted), newest first, for scrolling back.
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/messages", tag = "chat",
    params(("id" = i64, Path, description = "Room id"), MessagesQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Messages, newest first", body = MessagePage)))]
async fn list_messages(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<ApiJson<MessagePage>, ApiError> {
    let id = check_id("chat room", id)?;
    let access = s.room_access(&caller, id, RoomNeed::Read).await?;
    let limit = q.limit.unwrap_or(DEFAULT_MESSAGES);
    let rows = s
        .store
        .chat_messages(id, q.before_seq, limit)
        .await
        .map_err(store_err)?;
    let next_before_seq = if rows.len() == limit as usize {
        rows.last().map(|m| m.posted_seq)
    } else {
        None
    };
    let mut items = Vec::with_capacity(rows.len());
    for m in rows {
        let private = m.hidden || m.held_until_ms.is_some();
        if private && !access.moderates && m.author_id != caller.id() {
            continue;
        }
        let boosts = s.store.chat_boosts(m.id).await?;
        items.push(MessageOut::new(m, boosts));
    }
    Ok(ApiJson(MessagePage {
        items,
        next_before_seq,
    }))
}

/// A new text for a message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessageIn {
    /// 1–4,000 characters, as for a new message.
    pub text: String,
}

impl Validate for EditMessageIn {
    fn validate(&self, p: &mut Problems) {
        if let Err(e) = MessageText::parse(&self.text) {
            input_problem(p, "text", &e);
        }
    }
}

/// Refuses a change to someone else's message by a non-moderator.
fn may_change(
    caller: &Caller,
    message: &ChatMessageRow,
    access: &RoomAccess,
) -> Result<(), ApiError> {
    let author = message.author_id == caller.id() && access.reads;
    if author || access.moderates {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the author, the crew of the room's ensemble or an admin may change this message",
        ))
    }
}

/// `PATCH /api/v1/chat/messages/{id}` (the author; crew of the room's ensemble; admins).
#[utoipa::path(patch, path = "/api/v1/chat/messages/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Message id")), request_body = EditMessageIn,
    security(("bearer" = [])),
    responses((status = 200, description = "The message as edited", body = MessageOut)))]
async fn edit_message(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<EditMessageIn>,
) -> Result<ApiJson<MessageOut>, ApiError> {
    let (message, access) = s.message_access(&caller, id, RoomNeed::See).await?;
    may_change(&caller, &message, &access)?;
    let text = MessageText::parse(&body.text).map_err(|e| {
        let mut p = Problems::default();
        input_problem(&mut p, "text", &e);
        ApiError::validation(p.0)
    })?;
    let ev = s
        .store
        .chat_edit(message.id, caller.id(), text.as_str(), s.now_ms())
        .await
        .map_err(store_err)?;
    s.chat_changed(ev.room_id, ev.seq);
    Ok(ApiJson(current_message(&s, message.id).await?))
}

/// The message as it is now, with its boosts.
async fn current_message(s: &ApiState, id: i64) -> Result<MessageOut, ApiError> {
    let m = s
        .store
        .chat_message(id)
        .await?
        .ok_or_else(|| message_not_found(id))?;
    let boosts = s.store.chat_boosts(id).await?;
    Ok(MessageOut::new(m, boosts))
}

/// `DELETE /api/v1/chat/messages/{id}` (the author; crew of the room's ensemble; admins): its
/// text leaves the message, the search and the earlier events; twice is `409 conflict`.
#[utoipa::path(delete, path = "/api/v1/chat/messages/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Message id")), security(("bearer" = [])),
    responses((status = 200, description = "The message as deleted", body = MessageOut)))]
async fn delete_message(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<MessageOut>, ApiError> {
    let (message, access) = s.message_access(&caller, id, RoomNeed::See).await?;
    may_change(&caller, &message, &access)?;
    // Someone else's message: a moderator's removal, marked as such and audited.
    let ev = if message.author_id == caller.id() {
        s.store
            .chat_delete(message.id, caller.id(), s.now_ms())
            .await
    } else {
        s.store
            .chat_remove(message.id, caller.id(), None, s.now_ms())
            .await
    }
    .map_err(store_err)?;
    s.chat_changed(ev.room_id, ev.seq);
    Ok(ApiJson(current_message(&s, message.id).await?))
}

/// A boost.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoostIn {
    /// 1–16 characters on one line (an emoji, "bravo!").
    pub content: String,
}

impl Validate for BoostIn {
    fn validate(&self, p: &mut Problems) {
        if let Err(e) = Boost::parse(&self.content) {
            input_problem(p, "content", &e);
        }
    }
}

/// `POST /api/v1/chat/messages/{id}/boosts` (members of the room): the event that added it;
/// the same boost twice is `409 already_exists`.
#[utoipa::path(post, path = "/api/v1/chat/messages/{id}/boosts", tag = "chat",
    params(("id" = i64, Path, description = "Message id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = BoostIn, security(("bearer" = [])),
    responses((status = 201, description = "Boosted: the boost_added event", body = EventOut)))]
async fn boost_message(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<BoostIn>,
) -> Result<Response, ApiError> {
    let (message, _) = s.message_access(&caller, id, RoomNeed::Read).await?;
    let boost = Boost::parse(&req.body.content).map_err(|e| {
        let mut p = Problems::default();
        input_problem(&mut p, "content", &e);
        ApiError::validation(p.0)
    })?;
    idem::run(&s, caller.id(), req.idem, async {
        let event = s
            .store
            .chat_boost(message.id, caller.id(), boost.as_str(), s.now_ms())
            .await
            .map_err(store_err)?;
        s.chat_changed(event.room_id, event.seq);
        Ok((StatusCode::CREATED, to_value(&EventOut::from(event))?))
    })
    .await
}

/// Which boost to remove.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnboostQuery {
    /// The boost's content, as added.
    pub content: String,
}

impl Validate for UnboostQuery {
    fn validate(&self, p: &mut Problems) {
        if let Err(e) = Boost::parse(&self.content) {
            input_problem(p, "content", &e);
        }
    }
}

/// `DELETE /api/v1/chat/messages/{id}/boosts?content=`: removes the caller's own boost; the
/// event that removed it.
#[utoipa::path(delete, path = "/api/v1/chat/messages/{id}/boosts", tag = "chat",
    params(("id" = i64, Path, description = "Message id"), UnboostQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Removed: the boost_removed event", body = EventOut)))]
async fn unboost_message(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<UnboostQuery>,
) -> Result<ApiJson<EventOut>, ApiError> {
    let (message, _) = s.message_access(&caller, id, RoomNeed::Read).await?;
    let boost = Boost::parse(&q.content).map_err(|e| {
        let mut p = Problems::default();
        input_problem(&mut p, "content", &e);
        ApiError::validation(p.0)
    })?;
    let event = s
        .store
        .chat_unboost(message.id, caller.id(), boost.as_str(), s.now_ms())
        .await
        .map_err(store_err)?;
    s.chat_changed(event.room_id, event.seq);
    Ok(ApiJson(event.into()))
}

// ---------------------------------------------------------------- search

/// A search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find, all of them (1–500 characters; quotes and operators are searched for as
    /// text).
    pub q: String,
    /// 1–100, default 20.
    pub limit: Option<u32>,
}

impl Validate for SearchQuery {
    fn validate(&self, p: &mut Problems) {
        let n = self.q.chars().count();
        if self.q.trim().is_empty() || n > MAX_CHAT_SEARCH_CHARS {
            p.add(
                "q",
                format!("must be 1–{MAX_CHAT_SEARCH_CHARS} characters, not blank (got {n})"),
            );
        }
        if let Some(l) = self.limit {
            if !(1..=MAX_CHAT_SEARCH_HITS).contains(&l) {
                p.add("limit", format!("must be 1–{MAX_CHAT_SEARCH_HITS}"));
            }
        }
    }
}

/// A search problem from the store, under the query parameter's name.
fn search_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid {
            field: "query",
            reason,
            ..
        } => ApiError::field("q", reason),
        other => store_err(other),
    }
}

/// `GET /api/v1/chat/search?q=`: messages of the caller's rooms (no others) matching every
/// word, best first, with highlighted snippet parts; remembered among the caller's recent
/// searches. A query with no letter or digit is `422 validation_failed` naming `q`.
#[utoipa::path(get, path = "/api/v1/chat/search", tag = "chat", params(SearchQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Hits, best first", body = SearchResults)))]
async fn search(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<ApiJson<SearchResults>, ApiError> {
    caller.require_staff()?;
    let limit = q.limit.unwrap_or(DEFAULT_HITS);
    let hits = s
        .store
        .chat_search(caller.id(), &q.q, limit)
        .await
        .map_err(search_err)?;
    // The store reads the caller's memberships; a room of an ensemble they left is not theirs.
    let mut readable: HashMap<i64, bool> = HashMap::new();
    let mut items = Vec::with_capacity(hits.len());
    for hit in hits {
        let ok = match readable.get(&hit.room_id) {
            Some(ok) => *ok,
            None => {
                let ensemble_id = s
                    .store
                    .chat_room(hit.room_id)
                    .await?
                    .and_then(|r| r.ensemble_id);
                let ok = s.in_room_ensemble(&caller, ensemble_id).await?;
                readable.insert(hit.room_id, ok);
                ok
            }
        };
        if ok {
            items.push(SearchHitOut::from(hit));
        }
    }
    s.store
        .chat_record_search(caller.id(), &q.q, s.now_ms())
        .await
        .map_err(search_err)?;
    Ok(ApiJson(SearchResults { items }))
}

/// `GET /api/v1/chat/searches/recent`: the caller's last 10 distinct searches, newest first.
#[utoipa::path(get, path = "/api/v1/chat/searches/recent", tag = "chat",
    security(("bearer" = [])),
    responses((status = 200, description = "Recent searches", body = RecentSearches)))]
async fn recent_searches(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<ApiJson<RecentSearches>, ApiError> {
    caller.require_staff()?;
    let items = s
        .store
        .chat_recent_searches(caller.id())
        .await?
        .into_iter()
        .map(|r| RecentSearchOut {
            query: r.query,
            at_ms: r.at_ms,
        })
        .collect();
    Ok(ApiJson(RecentSearches { items }))
}
