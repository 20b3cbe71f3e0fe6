//! Live-show extras of chat, `/api/v1/chat/...` (issue 12, item 3): questions ordered by votes
//! and one vote per person, answered by crew; pins; the big screen's wall; announcements.
//! Each change is one store operation (an event of the room's sequence, and for crew's actions
//! an audit entry), told to chat's live side after its commit, exactly like the `/live/v1`
//! frames `chat_vote`, `chat_answered`, `chat_pin`, `chat_approve` and a flagged `chat_post`.
//!
//! # Who may do what
//! Readers of a show's room ask questions and vote; its moderators (admins, the crew of the
//! room's ensemble) announce, mark answered, pin and decide the wall — anyone else is `403
//! forbidden`. Lists leave out messages the caller may not see (hidden ones, unless they are
//! the author or a moderator; deleted ones).
//!
//! Must never: let a non-moderator announce, answer, pin or approve; count a second vote; show
//! a hidden message to someone who may not see it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tutti_chat::{ClientMessageId, MessageText};
use tutti_store::{ChatFlag, ChatShowMessage, NewChatMessage, MAX_CHAT_ANNOUNCEMENT_CHARS};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::chat::{html_of, input_problem, store_err, EventOut, RoomAccess, RoomNeed};
use super::check_id;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Problems, Validate};
use crate::ApiState;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_questions, ask))
        .routes(routes!(list_pins))
        .routes(routes!(list_wall))
        .routes(routes!(list_announcements, announce))
        .routes(routes!(vote, unvote))
        .routes(routes!(answered))
        .routes(routes!(pin, unpin))
        .routes(routes!(set_wall))
}

/// A message of a show's room with its live-show state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowMessageOut {
    /// Message id.
    pub id: i64,
    /// Its room.
    pub room_id: i64,
    /// Its author.
    pub author_id: i64,
    /// Its text as written.
    pub text: String,
    /// Its text rendered as safe HTML.
    pub html: String,
    /// The `seq` that posted it.
    pub posted_seq: u64,
    /// When it was posted, unix ms.
    pub created_at_ms: i64,
    /// `question`, `announcement`, or null.
    pub flag: Option<String>,
    /// A question's votes.
    pub votes: u64,
    /// The caller voted for it.
    pub voted: bool,
    /// When crew marked the question answered, unix ms.
    pub answered_at: Option<i64>,
    /// When it was pinned, unix ms (null: not pinned).
    pub pinned_at: Option<i64>,
    /// `approved` or `rejected` for the wall, or null.
    pub wall: Option<String>,
}

/// A list of a room's messages with their live-show state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowMessageList {
    /// The messages, in the list's order.
    pub items: Vec<ShowMessageOut>,
}

fn out(m: ChatShowMessage, voted: &[i64]) -> ShowMessageOut {
    ShowMessageOut {
        html: html_of(&m.message.text),
        id: m.message.id,
        room_id: m.message.room_id,
        author_id: m.message.author_id,
        text: m.message.text,
        posted_seq: m.message.posted_seq,
        created_at_ms: m.message.created_at_ms,
        flag: m.flag.map(|f| f.as_str().to_owned()),
        votes: m.votes,
        voted: voted.contains(&m.message.id),
        answered_at: m.answered_at_ms,
        pinned_at: m.pinned_at_ms,
        wall: m.wall,
    }
}

async fn reader(s: &ApiState, caller: &Caller, id: i64) -> Result<RoomAccess, ApiError> {
    let id = check_id("chat room", id)?;
    s.room_access(caller, id, RoomNeed::Read).await
}

fn forbidden(what: &str) -> ApiError {
    ApiError::forbidden(format!(
        "only the crew of the room's ensemble or an admin may {what}"
    ))
}

async fn list(
    s: &ApiState,
    caller: &Caller,
    access: &RoomAccess,
    rows: Vec<ChatShowMessage>,
) -> Result<ApiJson<ShowMessageList>, ApiError> {
    let voted = s.store.chat_voted(access.room.id, caller.id()).await?;
    let me = caller.id();
    let items = rows
        .into_iter()
        .filter(|m| {
            let own = m.message.author_id == me;
            let private = m.message.hidden || m.message.held_until_ms.is_some();
            own || access.moderates || !private
        })
        .map(|m| out(m, &voted))
        .collect();
    Ok(ApiJson(ShowMessageList { items }))
}

/// `GET /api/v1/chat/rooms/{id}/questions`: the room's questions, most votes first.
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/questions", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), security(("bearer" = [])),
    responses((status = 200, description = "Questions, most votes first", body = ShowMessageList)))]
async fn list_questions(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<ShowMessageList>, ApiError> {
    let a = reader(&s, &caller, id).await?;
    let rows = s.store.chat_questions(a.room.id).await?;
    list(&s, &caller, &a, rows).await
}

/// `GET /api/v1/chat/rooms/{id}/pins`: the room's pinned messages.
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/pins", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), security(("bearer" = [])),
    responses((status = 200, description = "Pinned messages, oldest pin first", body = ShowMessageList)))]
async fn list_pins(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<ShowMessageList>, ApiError> {
    let a = reader(&s, &caller, id).await?;
    let rows = s.store.chat_pinned(a.room.id).await?;
    list(&s, &caller, &a, rows).await
}

/// `GET /api/v1/chat/rooms/{id}/wall`: the messages approved for the big screen.
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/wall", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), security(("bearer" = [])),
    responses((status = 200, description = "Approved messages, in approval order", body = ShowMessageList)))]
async fn list_wall(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<ShowMessageList>, ApiError> {
    let a = reader(&s, &caller, id).await?;
    let rows = s.store.chat_wall_messages(a.room.id).await?;
    list(&s, &caller, &a, rows).await
}

/// `GET /api/v1/chat/rooms/{id}/announcements`: the latest 20, newest first.
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/announcements", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), security(("bearer" = [])),
    responses((status = 200, description = "Announcements, newest first", body = ShowMessageList)))]
async fn list_announcements(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<ShowMessageList>, ApiError> {
    let a = reader(&s, &caller, id).await?;
    let rows = s.store.chat_announcements(a.room.id, 20).await?;
    list(&s, &caller, &a, rows).await
}

/// A question or an announcement to post.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlaggedIn {
    /// The sender's own id for it (1–64 of `A-Z a-z 0-9 . _ : -`): a retry answers the
    /// original.
    pub client_message_id: String,
    /// The text (a question: up to 4,000 characters; an announcement: up to 500).
    pub text: String,
}

impl Validate for FlaggedIn {
    fn validate(&self, p: &mut Problems) {
        if let Err(e) = ClientMessageId::parse(&self.client_message_id) {
            input_problem(p, "client_message_id", &e);
        }
        if let Err(e) = MessageText::parse(&self.text) {
            input_problem(p, "text", &e);
        }
    }
}

async fn post_flagged(
    s: &ApiState,
    caller: &Caller,
    a: &RoomAccess,
    body: FlaggedIn,
    flag: ChatFlag,
) -> Result<(StatusCode, ApiJson<ShowMessageOut>), ApiError> {
    if flag == ChatFlag::Announcement && body.text.chars().count() > MAX_CHAT_ANNOUNCEMENT_CHARS {
        return Err(ApiError::field(
            "text",
            format!("an announcement holds at most {MAX_CHAT_ANNOUNCEMENT_CHARS} characters"),
        ));
    }
    let posted = s
        .store
        .chat_post_flagged(
            NewChatMessage {
                room_id: a.room.id,
                author_id: caller.id(),
                client_message_id: body.client_message_id,
                text: body.text,
                reply_to: None,
                at_ms: s.now_ms(),
            },
            flag,
        )
        .await
        .map_err(store_err)?;
    if !posted.duplicate {
        s.chat_changed(a.room.id, posted.seq);
    }
    let status = if posted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let row = ChatShowMessage {
        message: posted.message,
        flag: Some(flag),
        votes: 0,
        answered_at_ms: None,
        answered_by: None,
        pinned_at_ms: None,
        wall: None,
    };
    Ok((status, ApiJson(out(row, &[]))))
}

/// `POST /api/v1/chat/rooms/{id}/questions`: asks a question in a show's room (readers).
#[utoipa::path(post, path = "/api/v1/chat/rooms/{id}/questions", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), request_body = FlaggedIn,
    security(("bearer" = [])),
    responses((status = 201, description = "Asked", body = ShowMessageOut),
        (status = 200, description = "A retry: the original", body = ShowMessageOut)))]
async fn ask(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<FlaggedIn>,
) -> Result<(StatusCode, ApiJson<ShowMessageOut>), ApiError> {
    let a = reader(&s, &caller, id).await?;
    post_flagged(&s, &caller, &a, body, ChatFlag::Question).await
}

/// `POST /api/v1/chat/rooms/{id}/announcements`: crew's word to every phone of the show
/// (moderators; at most 500 characters).
#[utoipa::path(post, path = "/api/v1/chat/rooms/{id}/announcements", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), request_body = FlaggedIn,
    security(("bearer" = [])),
    responses((status = 201, description = "Announced", body = ShowMessageOut),
        (status = 200, description = "A retry: the original", body = ShowMessageOut)))]
async fn announce(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<FlaggedIn>,
) -> Result<(StatusCode, ApiJson<ShowMessageOut>), ApiError> {
    let a = reader(&s, &caller, id).await?;
    if !a.moderates {
        return Err(forbidden("announce"));
    }
    post_flagged(&s, &caller, &a, body, ChatFlag::Announcement).await
}

/// The message and the caller's access to its room, for a change (`crew`: moderators only).
async fn target(
    s: &ApiState,
    caller: &Caller,
    id: i64,
    crew: Option<&str>,
) -> Result<i64, ApiError> {
    let id = check_id("chat message", id)?;
    let m = s
        .store
        .chat_message(id)
        .await?
        .ok_or_else(|| super::chat::message_not_found(id))?;
    let a = s
        .room_access(caller, m.room_id, RoomNeed::Read)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                super::chat::message_not_found(id)
            } else {
                e
            }
        })?;
    if let Some(what) = crew {
        if !a.moderates {
            return Err(forbidden(what));
        }
    }
    Ok(m.id)
}

async fn changed(
    s: &ApiState,
    ev: Result<tutti_store::ChatEvent, tutti_store::StoreError>,
) -> Result<ApiJson<EventOut>, ApiError> {
    let ev = ev.map_err(store_err)?;
    s.chat_changed(ev.room_id, ev.seq);
    Ok(ApiJson(EventOut::from(ev)))
}

/// `PUT /api/v1/chat/messages/{id}/vote`: the caller votes for a question (once: a second
/// vote is `409`).
#[utoipa::path(put, path = "/api/v1/chat/messages/{id}/vote", tag = "chat",
    params(("id" = i64, Path, description = "Question id")), security(("bearer" = [])),
    responses((status = 200, description = "The vote_added event (votes: the count)", body = EventOut)))]
async fn vote(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<EventOut>, ApiError> {
    let id = target(&s, &caller, id, None).await?;
    changed(
        &s,
        s.store.chat_vote(id, caller.id(), true, s.now_ms()).await,
    )
    .await
}

/// `DELETE /api/v1/chat/messages/{id}/vote`: takes the caller's vote back.
#[utoipa::path(delete, path = "/api/v1/chat/messages/{id}/vote", tag = "chat",
    params(("id" = i64, Path, description = "Question id")), security(("bearer" = [])),
    responses((status = 200, description = "The vote_removed event", body = EventOut)))]
async fn unvote(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<EventOut>, ApiError> {
    let id = target(&s, &caller, id, None).await?;
    changed(
        &s,
        s.store.chat_vote(id, caller.id(), false, s.now_ms()).await,
    )
    .await
}

/// `PUT /api/v1/chat/messages/{id}/answered`: crew mark a question answered.
#[utoipa::path(put, path = "/api/v1/chat/messages/{id}/answered", tag = "chat",
    params(("id" = i64, Path, description = "Question id")), security(("bearer" = [])),
    responses((status = 200, description = "The question_answered event", body = EventOut)))]
async fn answered(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<EventOut>, ApiError> {
    let id = target(&s, &caller, id, Some("mark questions answered")).await?;
    changed(&s, s.store.chat_answer(id, caller.id(), s.now_ms()).await).await
}

/// `PUT /api/v1/chat/messages/{id}/pin`: crew pin a message (at most 3 per room).
#[utoipa::path(put, path = "/api/v1/chat/messages/{id}/pin", tag = "chat",
    params(("id" = i64, Path, description = "Message id")), security(("bearer" = [])),
    responses((status = 200, description = "The message_pinned event", body = EventOut)))]
async fn pin(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<EventOut>, ApiError> {
    let id = target(&s, &caller, id, Some("pin messages")).await?;
    changed(
        &s,
        s.store.chat_pin(id, caller.id(), true, s.now_ms()).await,
    )
    .await
}

/// `DELETE /api/v1/chat/messages/{id}/pin`: crew unpin a message.
#[utoipa::path(delete, path = "/api/v1/chat/messages/{id}/pin", tag = "chat",
    params(("id" = i64, Path, description = "Message id")), security(("bearer" = [])),
    responses((status = 200, description = "The message_unpinned event", body = EventOut)))]
async fn unpin(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<EventOut>, ApiError> {
    let id = target(&s, &caller, id, Some("pin messages")).await?;
    changed(
        &s,
        s.store.chat_pin(id, caller.id(), false, s.now_ms()).await,
    )
    .await
}

/// A wall decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WallIn {
    /// `true`: show it on the big screen; `false`: keep it off (or take it down).
    pub approve: bool,
}

impl Validate for WallIn {}

/// `PUT /api/v1/chat/messages/{id}/wall`: crew approve (or reject) a message for the big
/// screen; audited.
#[utoipa::path(put, path = "/api/v1/chat/messages/{id}/wall", tag = "chat",
    params(("id" = i64, Path, description = "Message id")), request_body = WallIn,
    security(("bearer" = [])),
    responses((status = 200, description = "The wall_approved or wall_rejected event", body = EventOut)))]
async fn set_wall(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<WallIn>,
) -> Result<ApiJson<EventOut>, ApiError> {
    let id = target(&s, &caller, id, Some("approve messages for the wall")).await?;
    changed(
        &s,
        s.store
            .chat_wall(id, caller.id(), body.approve, s.now_ms())
            .await,
    )
    .await
}
