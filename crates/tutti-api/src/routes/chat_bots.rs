//! Chat bots over REST (issue 12, item 7): staff manage bots under `/api/v1/chat/bots`, and a
//! bot acts with its key under `/api/v1/chat/bot/...`.
//!
//! # Managing bots (`/chat/bots`, bearer or session)
//! Admins create, list, change, rotate the key of and delete any bot; owners and performers of
//! an ensemble do so for the bots of that ensemble (`ensemble_id` at creation). A bot without
//! an ensemble is an admin's. Others get `404` for a bot, as for ensembles. The key (and the
//! webhook's signing secret) are in the answer of creation and of rotation only; the store
//! keeps the key's SHA-256. A bot joins rooms as a member through
//! `POST /chat/rooms/{id}/members` (a bot of an ensemble may join that ensemble's rooms and
//! rooms of no ensemble; an admin's bot any room) or `POST /chat/rooms` (a direct room with it).
//!
//! # A bot acting (`/chat/bot/...`, `Authorization: Bot <key>`)
//! A bot reads the events of its rooms (`after_seq` paging as users do), posts, edits and
//! deletes its own messages, and boosts, only in rooms it is a member of (others are `404`);
//! another author's message is `403`. A key in the URL's query (`?key=`, `?token=`, …) is
//! refused with `400 key_in_url` before anything else, even next to a good header; a wrong
//! key is `401 unauthorized`. Moderation applies to bots as to anyone (mutes, bans, slow mode,
//! the word filter, read-only rooms).
//!
//! Must never: accept a key from the URL, show a key or secret twice, let a bot read or write
//! outside its rooms or change another author's message, or let a bot's key reach a staff
//! route (staff routes take bearer tokens and sessions only).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tutti_chat::{Boost, ClientMessageId, MessageText};
use tutti_store::{
    ChatBotRow, ChatRestrictionKind, ChatRoomRow, NewChatBot, NewChatMessage,
    MAX_CHAT_BOT_NAME_CHARS, MAX_CHAT_BOT_URL_LEN, MAX_CHAT_PAGE,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::chat::{
    future_seq, input_problem, message_not_found, read_only, room_not_found, store_err, BoostIn,
    EditMessageIn, EventOut, EventPage, EventsQuery, MessageOut,
};
use super::{check_id, to_value};
use crate::auth::{new_secret, token_hash, Caller};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Create, Problems, Validate};
use crate::{idem, ApiState, Need};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_bots, create_bot))
        .routes(routes!(get_bot, update_bot, delete_bot))
        .routes(routes!(rotate_key))
        .routes(routes!(bot_me))
        .routes(routes!(bot_rooms))
        .routes(routes!(bot_events))
        .routes(routes!(bot_post))
        .routes(routes!(bot_edit, bot_delete))
        .routes(routes!(bot_boost))
}

/// Query parameters that look like a credential: never read, always refused.
const KEY_PARAMS: [&str; 8] = [
    "key",
    "bot_key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "auth",
    "authorization",
];

/// Default page of events for a bot.
const DEFAULT_EVENTS: u32 = 100;

// ---------------------------------------------------------------- DTOs

/// A bot (never its key or secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct BotOut {
    /// Its account's id: what rooms, messages and events name as author or member.
    pub id: i64,
    /// Its name, also its username: `@name` mentions it.
    pub name: String,
    /// The ensemble whose owners and performers manage it (null: admins only).
    pub ensemble_id: Option<i64>,
    /// Where mentions and direct messages are POSTed (null: none).
    pub webhook_url: Option<String>,
    /// Who created it.
    pub created_by: Option<i64>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// When its key was last set, unix ms.
    pub key_rotated_at_ms: i64,
    /// Whether it was deleted (only in the answer of the deletion).
    pub deleted: bool,
}

impl From<ChatBotRow> for BotOut {
    fn from(b: ChatBotRow) -> Self {
        BotOut {
            id: b.user_id,
            name: b.name,
            ensemble_id: b.ensemble_id,
            webhook_url: b.webhook_url,
            created_by: b.created_by,
            created_at_ms: b.created_at_ms,
            key_rotated_at_ms: b.key_rotated_at_ms,
            deleted: b.deleted_at_ms.is_some(),
        }
    }
}

/// A bot with its key and webhook secret: the answer of creation and rotation, the only time
/// they are shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct BotKeyOut {
    /// The bot.
    pub bot: BotOut,
    /// Send it as `Authorization: Bot <key>`. Shown only now.
    pub key: String,
    /// HMAC-SHA256 key of the `tutti-signature` header on the bot's webhook calls. Shown only
    /// now.
    pub webhook_secret: String,
}

/// Bots, by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct BotList {
    /// The bots the caller manages.
    pub items: Vec<BotOut>,
}

/// A new bot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBotIn {
    /// 1–32 of `A-Z a-z 0-9 . _ -`, unique among usernames (case-insensitively).
    pub name: String,
    /// The ensemble whose owners and performers manage it (you must be one); leave it out for
    /// an admin's bot.
    pub ensemble_id: Option<i64>,
    /// An `http://` or `https://` URL, at most 2,000 bytes, called when the bot is mentioned or
    /// messaged directly.
    pub webhook_url: Option<String>,
}

fn check_name(p: &mut Problems, name: &str) {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_CHAT_BOT_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        p.add(
            "name",
            format!(
                "must be 1–{MAX_CHAT_BOT_NAME_CHARS} characters of A-Z, a-z, 0-9, '.', '_' and '-'"
            ),
        );
    }
}

fn check_url(p: &mut Problems, url: Option<&str>) {
    let Some(url) = url else { return };
    if url.is_empty() || url.len() > MAX_CHAT_BOT_URL_LEN {
        p.add(
            "webhook_url",
            format!("must be 1–{MAX_CHAT_BOT_URL_LEN} bytes (got {})", url.len()),
        );
        return;
    }
    match tutti_events::check_webhook_url(url) {
        Err(tutti_events::EventsError::WebhookUrl { reason, .. }) => p.add("webhook_url", reason),
        Err(e) => p.add("webhook_url", e.to_string()),
        Ok(()) => {}
    }
}

impl Validate for NewBotIn {
    fn validate(&self, p: &mut Problems) {
        check_name(p, &self.name);
        check_url(p, self.webhook_url.as_deref());
        if self.ensemble_id.is_some_and(|e| e < 1) {
            p.add("ensemble_id", "must be an ensemble id (≥ 1)");
        }
    }
}

/// A bot's new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotUpdateIn {
    /// The new URL (as at creation); null or left out removes the webhook.
    pub webhook_url: Option<String>,
}

impl Validate for BotUpdateIn {
    fn validate(&self, p: &mut Problems) {
        check_url(p, self.webhook_url.as_deref());
    }
}

/// A room a bot is in.
#[derive(Debug, Serialize, ToSchema)]
pub struct BotRoomOut {
    /// Id.
    pub id: i64,
    /// `open`, `closed`, `direct` or `show`.
    pub kind: String,
    /// Its name.
    pub name: Option<String>,
    /// The ensemble it belongs to.
    pub ensemble_id: Option<i64>,
    /// The show it belongs to.
    pub show_id: Option<i64>,
    /// Nothing can be posted, edited or boosted.
    pub read_only: bool,
    /// The `seq` of its latest event.
    pub last_seq: u64,
}

impl From<ChatRoomRow> for BotRoomOut {
    fn from(r: ChatRoomRow) -> Self {
        BotRoomOut {
            id: r.id,
            kind: r.kind.as_str().to_owned(),
            name: r.name,
            ensemble_id: r.ensemble_id,
            show_id: r.show_id,
            read_only: r.read_only,
            last_seq: r.last_seq,
        }
    }
}

/// The rooms a bot is in, by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct BotRoomList {
    /// The rooms.
    pub items: Vec<BotRoomOut>,
}

/// A message a bot posts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotMessageIn {
    /// The bot's own id for this message, 1–64 of `A-Z a-z 0-9 . _ : -`: a retry with the same
    /// id answers the original message and writes nothing.
    pub client_message_id: String,
    /// 1–4,000 characters, as for anyone's message.
    pub text: String,
    /// The message it replies to (in the same room).
    pub reply_to: Option<i64>,
}

impl Validate for BotMessageIn {
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
    }
}

// ---------------------------------------------------------------- managing

/// 422 `webhook_target_forbidden`: the URL names an address webhooks may not reach.
fn target_forbidden(e: tutti_events::target::TargetForbidden) -> ApiError {
    let message = format!(
        "webhook_url: {}",
        e.to_string()
            .trim_start_matches("webhook_target_forbidden: ")
    );
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "webhook_target_forbidden",
        message,
    )
    .with_details(json!({"field": "webhook_url", "address": e.addr, "reason": e.reason.as_str()}))
}

fn bot_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("bot {id}"))
}

/// Whether the caller manages this bot: admins any; owners and performers of its ensemble.
async fn manages(s: &ApiState, caller: &Caller, bot: &ChatBotRow) -> Result<bool, ApiError> {
    if caller.is_admin() {
        return Ok(true);
    }
    let Some(eid) = bot.ensemble_id else {
        return Ok(false);
    };
    Ok(matches!(
        s.ensemble_role(caller, eid).await?,
        Some(tutti_store::EnsembleRole::Owner | tutti_store::EnsembleRole::Performer)
    ))
}

/// A live bot the caller manages (404 otherwise).
async fn managed_bot(s: &ApiState, caller: &Caller, id: i64) -> Result<ChatBotRow, ApiError> {
    let id = check_id("bot", id)?;
    caller.require_staff()?;
    let bot = s
        .store
        .chat_bot(id)
        .await?
        .filter(|b| b.deleted_at_ms.is_none())
        .ok_or_else(|| bot_not_found(id))?;
    if !manages(s, caller, &bot).await? {
        return Err(bot_not_found(id));
    }
    Ok(bot)
}

/// Whether user `user_id`, if a bot, may be a member of a room of ensemble `ensemble_id`: a
/// live bot of that ensemble or of none (for `POST /chat/rooms/{id}/members`).
pub(super) async fn may_join(
    s: &ApiState,
    user_id: i64,
    ensemble_id: i64,
) -> Result<bool, ApiError> {
    Ok(s.store.chat_bot(user_id).await?.is_some_and(|b| {
        b.deleted_at_ms.is_none() && b.ensemble_id.is_none_or(|e| e == ensemble_id)
    }))
}

/// `POST /api/v1/chat/bots`: a bot of an ensemble (its owners and performers) or of none
/// (admins). The answer carries the key and the webhook secret, once; a name taken by any
/// account is `409 already_exists`.
#[utoipa::path(post, path = "/api/v1/chat/bots", tag = "chat", request_body = NewBotIn,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    responses((status = 201, description = "Created; the key and secret are shown once", body = BotKeyOut)))]
async fn create_bot(
    State(s): State<ApiState>,
    caller: Caller,
    req: Create<NewBotIn>,
) -> Result<Response, ApiError> {
    caller.require_staff()?;
    let body = req.body;
    match body.ensemble_id {
        Some(eid) => {
            s.ensemble_access(&caller, eid, Need::Edit).await?;
        }
        None => caller.require_admin()?,
    }
    if let Some(url) = &body.webhook_url {
        s.webhook_targets.check_url(url).map_err(target_forbidden)?;
    }
    idem::run(&s, caller.id(), req.idem, async {
        let key = new_secret("tbot_");
        let secret = new_secret("whsec_");
        let bot = s
            .store
            .chat_create_bot(NewChatBot {
                name: body.name.clone(),
                ensemble_id: body.ensemble_id,
                webhook_url: body.webhook_url.clone(),
                webhook_secret: secret.clone(),
                key_hash: token_hash(&key),
                created_by: Some(caller.id()),
                at_ms: s.now_ms(),
            })
            .await?;
        let out = BotKeyOut {
            bot: bot.into(),
            key,
            webhook_secret: secret,
        };
        Ok((StatusCode::CREATED, to_value(&out)?))
    })
    .await
}

/// `GET /api/v1/chat/bots`: the bots the caller manages (admins: all).
#[utoipa::path(get, path = "/api/v1/chat/bots", tag = "chat", security(("bearer" = [])),
    responses((status = 200, description = "Bots by id", body = BotList)))]
async fn list_bots(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<ApiJson<BotList>, ApiError> {
    caller.require_staff()?;
    let mut items = Vec::new();
    for b in s.store.chat_bots(None).await? {
        if manages(&s, &caller, &b).await? {
            items.push(b.into());
        }
    }
    Ok(ApiJson(BotList { items }))
}

/// `GET /api/v1/chat/bots/{id}` (those who manage it).
#[utoipa::path(get, path = "/api/v1/chat/bots/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Bot id (its account's)")), security(("bearer" = [])),
    responses((status = 200, description = "The bot", body = BotOut)))]
async fn get_bot(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<BotOut>, ApiError> {
    Ok(ApiJson(managed_bot(&s, &caller, id).await?.into()))
}

/// `PATCH /api/v1/chat/bots/{id}` (those who manage it): sets or removes the webhook URL.
#[utoipa::path(patch, path = "/api/v1/chat/bots/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Bot id")), request_body = BotUpdateIn,
    security(("bearer" = [])),
    responses((status = 200, description = "The bot as changed", body = BotOut)))]
async fn update_bot(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<BotUpdateIn>,
) -> Result<ApiJson<BotOut>, ApiError> {
    let bot = managed_bot(&s, &caller, id).await?;
    if let Some(url) = &body.webhook_url {
        s.webhook_targets.check_url(url).map_err(target_forbidden)?;
    }
    let bot = s
        .store
        .chat_set_bot_webhook(bot.user_id, body.webhook_url)
        .await?;
    Ok(ApiJson(bot.into()))
}

/// `POST /api/v1/chat/bots/{id}/key` (those who manage it): a new key and webhook secret,
/// shown once; the old key stops working at once.
#[utoipa::path(post, path = "/api/v1/chat/bots/{id}/key", tag = "chat",
    params(("id" = i64, Path, description = "Bot id")), security(("bearer" = [])),
    responses((status = 200, description = "The new key and secret, shown once", body = BotKeyOut)))]
async fn rotate_key(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<BotKeyOut>, ApiError> {
    let bot = managed_bot(&s, &caller, id).await?;
    let key = new_secret("tbot_");
    let secret = new_secret("whsec_");
    let bot = s
        .store
        .chat_rotate_bot_key(bot.user_id, token_hash(&key), secret.clone(), s.now_ms())
        .await?;
    Ok(ApiJson(BotKeyOut {
        bot: bot.into(),
        key,
        webhook_secret: secret,
    }))
}

/// `DELETE /api/v1/chat/bots/{id}` (those who manage it): its key stops working, it leaves
/// every room and its name is free again; its messages stay.
#[utoipa::path(delete, path = "/api/v1/chat/bots/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Bot id")), security(("bearer" = [])),
    responses((status = 200, description = "The bot as deleted", body = BotOut)))]
async fn delete_bot(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<BotOut>, ApiError> {
    let bot = managed_bot(&s, &caller, id).await?;
    let bot = s.store.chat_delete_bot(bot.user_id, s.now_ms()).await?;
    Ok(ApiJson(bot.into()))
}

// ---------------------------------------------------------------- a bot acting

/// A bot authenticated by `Authorization: Bot <key>`.
pub struct BotCaller {
    /// The bot.
    pub bot: ChatBotRow,
}

impl FromRequestParts<ApiState> for BotCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, ApiError> {
        let in_url = parts.uri.query().is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes())
                .any(|(k, _)| KEY_PARAMS.contains(&k.to_ascii_lowercase().as_str()))
        });
        if in_url {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "key_in_url",
                "a bot's key is never read from the URL (URLs end up in logs): send it as \
                 'Authorization: Bot <key>', and make a new key, since this one may be exposed",
            ));
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bot"))
            .map(|(_, key)| key.trim());
        let Some(key) = header.filter(|k| !k.is_empty()) else {
            return Err(ApiError::unauthorized(
                "a bot sends its key as 'Authorization: Bot <key>'",
            ));
        };
        let bot = s
            .store
            .chat_bot_by_key(token_hash(key))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown bot key"))?;
        Ok(BotCaller { bot })
    }
}

/// A room the bot is a member of (404 otherwise); a ban is `403 banned`.
async fn bot_room(s: &ApiState, bot: &ChatBotRow, room_id: i64) -> Result<ChatRoomRow, ApiError> {
    let room_id = check_id("chat room", room_id)?;
    if s.store.chat_member(room_id, bot.user_id).await?.is_none() {
        return Err(room_not_found(room_id));
    }
    let room = s
        .store
        .chat_room(room_id)
        .await?
        .ok_or_else(|| room_not_found(room_id))?;
    let banned = s
        .store
        .chat_restriction(room_id, bot.user_id)
        .await?
        .is_some_and(|r| r.kind == ChatRestrictionKind::Ban);
    if banned {
        return Err(super::chat::refused(&tutti_store::ChatRefusal::Banned));
    }
    Ok(room)
}

/// A message in one of the bot's rooms (404 otherwise).
async fn bot_message(
    s: &ApiState,
    bot: &ChatBotRow,
    message_id: i64,
) -> Result<tutti_store::ChatMessageRow, ApiError> {
    let message_id = check_id("chat message", message_id)?;
    let m = s
        .store
        .chat_message(message_id)
        .await?
        .ok_or_else(|| message_not_found(message_id))?;
    bot_room(s, bot, m.room_id).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            message_not_found(message_id)
        } else {
            e
        }
    })?;
    if m.hidden && m.author_id != bot.user_id {
        return Err(message_not_found(message_id));
    }
    Ok(m)
}

/// A message of the bot's own (403 for another author's).
async fn own_message(
    s: &ApiState,
    bot: &ChatBotRow,
    message_id: i64,
) -> Result<tutti_store::ChatMessageRow, ApiError> {
    let m = bot_message(s, bot, message_id).await?;
    if m.author_id != bot.user_id {
        return Err(ApiError::forbidden(
            "a bot may edit and delete only its own messages",
        ));
    }
    Ok(m)
}

/// The message as it is now, with its boosts.
async fn message_now(s: &ApiState, id: i64) -> Result<MessageOut, ApiError> {
    let m = s
        .store
        .chat_message(id)
        .await?
        .ok_or_else(|| message_not_found(id))?;
    let boosts = s.store.chat_boosts(id).await?;
    Ok(MessageOut::new(m, boosts))
}

/// `GET /api/v1/chat/bot/me` (a bot): the bot itself, to check a key.
#[utoipa::path(get, path = "/api/v1/chat/bot/me", tag = "chat", security(("bot" = [])),
    responses((status = 200, description = "The calling bot", body = BotOut)))]
async fn bot_me(b: BotCaller) -> ApiJson<BotOut> {
    ApiJson(b.bot.into())
}

/// `GET /api/v1/chat/bot/rooms` (a bot): the rooms it is a member of.
#[utoipa::path(get, path = "/api/v1/chat/bot/rooms", tag = "chat", security(("bot" = [])),
    responses((status = 200, description = "The bot's rooms, by id", body = BotRoomList)))]
async fn bot_rooms(
    State(s): State<ApiState>,
    b: BotCaller,
) -> Result<ApiJson<BotRoomList>, ApiError> {
    let items = s
        .store
        .chat_rooms_of(b.bot.user_id)
        .await?
        .into_iter()
        .map(|l| BotRoomOut::from(l.room))
        .collect();
    Ok(ApiJson(BotRoomList { items }))
}

/// `GET /api/v1/chat/bot/rooms/{id}/events?after_seq=` (a bot in the room): exactly the
/// events after `after_seq`, in order, paged, as for users.
#[utoipa::path(get, path = "/api/v1/chat/bot/rooms/{id}/events", tag = "chat",
    params(("id" = i64, Path, description = "Room id"), EventsQuery), security(("bot" = [])),
    responses((status = 200, description = "Events in seq order", body = EventPage)))]
async fn bot_events(
    State(s): State<ApiState>,
    b: BotCaller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<ApiJson<EventPage>, ApiError> {
    let room = bot_room(&s, &b.bot, id).await?;
    let after = q.after_seq.unwrap_or(0);
    if after > room.last_seq {
        return Err(future_seq("after_seq", after, room.last_seq));
    }
    let limit = q.limit.unwrap_or(DEFAULT_EVENTS).clamp(1, MAX_CHAT_PAGE);
    let page = s
        .store
        .chat_events_after(room.id, after, limit)
        .await
        .map_err(store_err)?;
    let next_after_seq = page.events.last().map_or(after, |e| e.seq);
    let me = b.bot.user_id;
    Ok(ApiJson(EventPage {
        items: page
            .events
            .into_iter()
            .filter(|e| !e.hidden || e.author_id == me)
            .map(EventOut::from)
            .collect(),
        head_seq: page.head_seq,
        more: page.more,
        next_after_seq,
    }))
}

/// `POST /api/v1/chat/bot/rooms/{id}/messages` (a bot in the room): 201 with the message once
/// committed; a retry with the same `client_message_id` answers the original with 200.
#[utoipa::path(post, path = "/api/v1/chat/bot/rooms/{id}/messages", tag = "chat",
    params(("id" = i64, Path, description = "Room id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = BotMessageIn, security(("bot" = [])),
    responses((status = 201, description = "Posted", body = MessageOut),
        (status = 200, description = "A retry: the original message", body = MessageOut)))]
async fn bot_post(
    State(s): State<ApiState>,
    b: BotCaller,
    ApiPath(id): ApiPath<i64>,
    req: Create<BotMessageIn>,
) -> Result<Response, ApiError> {
    let room = bot_room(&s, &b.bot, id).await?;
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
            .is_some_and(|m| m.room_id == room.id);
        if !in_room {
            return Err(ApiError::field(
                "reply_to",
                format!("no message {reply_to} in this room"),
            ));
        }
    }
    if room.read_only {
        return Err(read_only());
    }
    idem::run(&s, b.bot.user_id, req.idem, async {
        let posted = s
            .store
            .chat_post(NewChatMessage {
                room_id: room.id,
                author_id: b.bot.user_id,
                client_message_id: body.client_message_id.clone(),
                text: text.into_string(),
                reply_to: body.reply_to,
                at_ms: s.now_ms(),
            })
            .await
            .map_err(store_err)?;
        if !posted.duplicate {
            s.chat_changed(room.id, posted.seq);
        }
        let status = if posted.duplicate {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        let boosts = s.store.chat_boosts(posted.message.id).await?;
        Ok((status, to_value(&MessageOut::new(posted.message, boosts))?))
    })
    .await
}

/// `PATCH /api/v1/chat/bot/messages/{id}` (a bot, its own message).
#[utoipa::path(patch, path = "/api/v1/chat/bot/messages/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Message id")), request_body = EditMessageIn,
    security(("bot" = [])),
    responses((status = 200, description = "The message as edited", body = MessageOut)))]
async fn bot_edit(
    State(s): State<ApiState>,
    b: BotCaller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<EditMessageIn>,
) -> Result<ApiJson<MessageOut>, ApiError> {
    let m = own_message(&s, &b.bot, id).await?;
    let text = MessageText::parse(&body.text).map_err(|e| {
        let mut p = Problems::default();
        input_problem(&mut p, "text", &e);
        ApiError::validation(p.0)
    })?;
    let ev = s
        .store
        .chat_edit(m.id, b.bot.user_id, text.as_str(), s.now_ms())
        .await
        .map_err(store_err)?;
    s.chat_changed(ev.room_id, ev.seq);
    Ok(ApiJson(message_now(&s, m.id).await?))
}

/// `DELETE /api/v1/chat/bot/messages/{id}` (a bot, its own message).
#[utoipa::path(delete, path = "/api/v1/chat/bot/messages/{id}", tag = "chat",
    params(("id" = i64, Path, description = "Message id")), security(("bot" = [])),
    responses((status = 200, description = "The message as deleted", body = MessageOut)))]
async fn bot_delete(
    State(s): State<ApiState>,
    b: BotCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<MessageOut>, ApiError> {
    let m = own_message(&s, &b.bot, id).await?;
    let ev = s
        .store
        .chat_delete(m.id, b.bot.user_id, s.now_ms())
        .await
        .map_err(store_err)?;
    s.chat_changed(ev.room_id, ev.seq);
    Ok(ApiJson(message_now(&s, m.id).await?))
}

/// `POST /api/v1/chat/bot/messages/{id}/boosts` (a bot in the message's room).
#[utoipa::path(post, path = "/api/v1/chat/bot/messages/{id}/boosts", tag = "chat",
    params(("id" = i64, Path, description = "Message id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = BoostIn, security(("bot" = [])),
    responses((status = 201, description = "Boosted: the boost_added event", body = EventOut)))]
async fn bot_boost(
    State(s): State<ApiState>,
    b: BotCaller,
    ApiPath(id): ApiPath<i64>,
    req: Create<BoostIn>,
) -> Result<Response, ApiError> {
    let m = bot_message(&s, &b.bot, id).await?;
    let boost = Boost::parse(&req.body.content).map_err(|e| {
        let mut p = Problems::default();
        input_problem(&mut p, "content", &e);
        ApiError::validation(p.0)
    })?;
    idem::run(&s, b.bot.user_id, req.idem, async {
        let event = s
            .store
            .chat_boost(m.id, b.bot.user_id, boost.as_str(), s.now_ms())
            .await
            .map_err(store_err)?;
        s.chat_changed(event.room_id, event.seq);
        Ok((StatusCode::CREATED, to_value(&EventOut::from(event))?))
    })
    .await
}
