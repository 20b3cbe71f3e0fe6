//! Chat moderation, `/api/v1/chat/rooms/{id}/...` (issue 12, item 8): a room's settings (slow
//! mode, word filter), restrictions of users in it (mute, shadow-mute, ban), and its audit log.
//!
//! # Who may do what
//! Moderators of a room: admins (any room) and, in a room of an ensemble, its owners,
//! performers and crew who may read it — the same people who may edit and delete others'
//! messages (`routes/chat.rs`). Everyone who reads a room sees its slow mode (so a composer can
//! say how long to wait); only moderators see its filter, its restrictions and its log. Anyone
//! else who can see the room is `403 forbidden`; outside it, `404`; audience accounts are
//! refused by the whole management API.
//!
//! # Writes
//! Each change is one store operation with its audit entry. `PUT` replaces (settings, a user's
//! restriction) and is idempotent by nature; a ban also asks chat's live side to close the
//! user's sessions in the room. The rules themselves (who is refused, who is exempt) are
//! enforced by the store's post, so REST and `/live/v1` share them.
//!
//! Must never: show the filter, a restriction or the log to someone who does not moderate the
//! room, or restrict a moderator.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tutti_store::{
    ChatModLogRow, ChatRestrictionKind, ChatRestrictionRow, ChatRoomSettings, ChatSettingsChange,
    MAX_CHAT_AUDIENCE_DELAY_S, MAX_CHAT_FILTER_WORDS, MAX_CHAT_FILTER_WORD_CHARS,
    MAX_CHAT_MOD_LOG_PAGE, MAX_CHAT_REASON_CHARS, MAX_CHAT_SLOW_MODE_S,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::chat::{store_err, RoomAccess, RoomNeed};
use super::check_id;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Problems, Validate};
use crate::ApiState;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(list_restrictions))
        .routes(routes!(put_restriction, delete_restriction))
        .routes(routes!(moderation_log))
}

/// The caller's access to a room, as a reader (joining an open or show room of their ensemble
/// on first look) or, for admins, as someone who sees every room.
async fn access(s: &ApiState, caller: &Caller, id: i64) -> Result<RoomAccess, ApiError> {
    let id = check_id("chat room", id)?;
    let need = if caller.is_admin() {
        RoomNeed::See
    } else {
        RoomNeed::Read
    };
    s.room_access(caller, id, need).await
}

fn require_moderator(a: &RoomAccess) -> Result<(), ApiError> {
    if a.moderates {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only admins and the owners, performers and crew of the room's ensemble moderate it",
        ))
    }
}

// ---------------------------------------------------------------- DTOs

/// A room's moderation settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomSettingsOut {
    /// The room.
    pub room_id: i64,
    /// Seconds between one user's messages (0: off). Moderators are exempt.
    pub slow_mode_s: u32,
    /// Words and phrases refused in messages, matched ignoring case on word boundaries
    /// (moderators only: null for everyone else). Moderators are exempt.
    pub filter: Option<Vec<String>>,
    /// Seconds an audience member's message is held before others see it (0: off), so crew
    /// can remove it first. Its author and the room's moderators see it at once.
    pub audience_delay_s: u32,
    /// Whether a `/play <sound>` post of this show room also plays through the show's sound
    /// (its OSC targets, SuperCollider or the embedded engine) while the show is live on the
    /// server, at most one sound every 2 s per room. Always false in other rooms.
    pub sounds_through_show: bool,
    /// Who changed them last.
    pub updated_by: Option<i64>,
    /// When, unix ms.
    pub updated_at_ms: Option<i64>,
}

impl RoomSettingsOut {
    fn new(s: ChatRoomSettings, moderator: bool) -> Self {
        RoomSettingsOut {
            room_id: s.room_id,
            slow_mode_s: s.slow_mode_s,
            filter: moderator.then_some(s.filter),
            audience_delay_s: s.audience_delay_s,
            sounds_through_show: s.sounds_through_show,
            updated_by: s.updated_by,
            updated_at_ms: s.updated_at_ms,
        }
    }
}

/// New moderation settings (each replaced; an absent `audience_delay_s` is 0, an absent
/// `sounds_through_show` false).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomSettingsIn {
    /// 0–3600 seconds between one user's messages (0: off).
    pub slow_mode_s: u32,
    /// Up to 200 words or phrases of 1–100 characters (trimmed; repeats ignoring case
    /// dropped); a message that contains one as whole words is refused with `422 filtered`.
    pub filter: Vec<String>,
    /// 0–60 seconds an audience member's message is held before others see it (0: off).
    #[serde(default)]
    pub audience_delay_s: u32,
    /// `/play <sound>` posts also play through the show's sound (show rooms only: true in any
    /// other room is `409 not_a_show_room`).
    #[serde(default)]
    pub sounds_through_show: bool,
}

impl Validate for RoomSettingsIn {
    fn validate(&self, p: &mut Problems) {
        if self.slow_mode_s > MAX_CHAT_SLOW_MODE_S {
            p.add("slow_mode_s", format!("must be 0–{MAX_CHAT_SLOW_MODE_S}"));
        }
        if self.audience_delay_s > MAX_CHAT_AUDIENCE_DELAY_S {
            p.add(
                "audience_delay_s",
                format!("must be 0–{MAX_CHAT_AUDIENCE_DELAY_S}"),
            );
        }
        if self.filter.len() > MAX_CHAT_FILTER_WORDS {
            p.add("filter", format!("at most {MAX_CHAT_FILTER_WORDS} entries"));
            return;
        }
        for (i, w) in self.filter.iter().enumerate() {
            let t = w.trim();
            let n = t.chars().count();
            if n == 0 || n > MAX_CHAT_FILTER_WORD_CHARS {
                p.add(
                    &format!("filter[{i}]"),
                    format!("must be 1–{MAX_CHAT_FILTER_WORD_CHARS} characters"),
                );
            } else if t.chars().any(char::is_control) {
                p.add(
                    &format!("filter[{i}]"),
                    "must not contain control characters",
                );
            } else if !t.chars().any(char::is_alphanumeric) {
                p.add(&format!("filter[{i}]"), "needs a letter or digit");
            }
        }
    }
}

/// What a restriction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestrictionKindIn {
    /// Cannot post (`403 muted`); still reads.
    Mute,
    /// Posts are accepted but seen only by their author and the room's moderators.
    ShadowMute,
    /// Cannot read or post (`403 banned`); their live sessions in the room are closed.
    Ban,
}

impl From<RestrictionKindIn> for ChatRestrictionKind {
    fn from(k: RestrictionKindIn) -> Self {
        match k {
            RestrictionKindIn::Mute => ChatRestrictionKind::Mute,
            RestrictionKindIn::ShadowMute => ChatRestrictionKind::ShadowMute,
            RestrictionKindIn::Ban => ChatRestrictionKind::Ban,
        }
    }
}

/// A restriction to set (replacing the user's current one in the room).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictionIn {
    /// `mute`, `shadow_mute` or `ban`.
    pub kind: RestrictionKindIn,
    /// Why, for the audit log (up to 500 characters).
    pub reason: Option<String>,
}

fn check_reason(p: &mut Problems, reason: Option<&str>) {
    if let Some(r) = reason {
        p.text("reason", r, 1, MAX_CHAT_REASON_CHARS);
    }
}

impl Validate for RestrictionIn {
    fn validate(&self, p: &mut Problems) {
        check_reason(p, self.reason.as_deref());
    }
}

/// A user's restriction in a room.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestrictionOut {
    /// The room.
    pub room_id: i64,
    /// The user.
    pub user_id: i64,
    /// `mute`, `shadow_mute` or `ban`.
    pub kind: String,
    /// Why.
    pub reason: Option<String>,
    /// The moderator who set it.
    pub created_by: i64,
    /// When, unix ms.
    pub created_at_ms: i64,
}

impl From<ChatRestrictionRow> for RestrictionOut {
    fn from(r: ChatRestrictionRow) -> Self {
        RestrictionOut {
            room_id: r.room_id,
            user_id: r.user_id,
            kind: r.kind.as_str().to_owned(),
            reason: r.reason,
            created_by: r.created_by,
            created_at_ms: r.created_at_ms,
        }
    }
}

/// A room's restrictions, by user id.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestrictionList {
    /// The restrictions.
    pub items: Vec<RestrictionOut>,
}

/// Why a restriction is lifted.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LiftQuery {
    /// Why, for the audit log (up to 500 characters).
    pub reason: Option<String>,
}

impl Validate for LiftQuery {
    fn validate(&self, p: &mut Problems) {
        check_reason(p, self.reason.as_deref());
    }
}

/// One moderation action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModLogEntryOut {
    /// Its id (newer entries have larger ids).
    pub id: i64,
    /// The room.
    pub room_id: i64,
    /// Who did it.
    pub actor_id: i64,
    /// `settings_changed`, `restricted`, `unrestricted` or `message_removed`.
    pub action: String,
    /// To whom (restrictions and removals).
    pub target_user_id: Option<i64>,
    /// The message removed.
    pub message_id: Option<i64>,
    /// The facts: `{kind}` of a restriction, `{slow_mode_s, filter_entries, audience_delay_s,
    /// sounds_through_show}` of settings,
    /// `{seq}` of a removal's event.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Why, as the moderator wrote it.
    pub reason: Option<String>,
    /// When, unix ms.
    pub at_ms: i64,
}

impl From<ChatModLogRow> for ModLogEntryOut {
    fn from(l: ChatModLogRow) -> Self {
        ModLogEntryOut {
            id: l.id,
            room_id: l.room_id,
            actor_id: l.actor_id,
            action: l.action.as_str().to_owned(),
            target_user_id: l.target_user_id,
            message_id: l.message_id,
            detail: l.detail,
            reason: l.reason,
            at_ms: l.at_ms,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModLogPage {
    /// The entries, newest first.
    pub items: Vec<ModLogEntryOut>,
    /// Pass as `before_id` for older entries; null when there are none.
    pub next_before_id: Option<i64>,
}

/// Paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModLogQuery {
    /// Only entries older than this id (default: the newest).
    pub before_id: Option<i64>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
}

impl Validate for ModLogQuery {
    fn validate(&self, p: &mut Problems) {
        if let Some(l) = self.limit {
            if !(1..=MAX_CHAT_MOD_LOG_PAGE).contains(&l) {
                p.add("limit", format!("must be 1–{MAX_CHAT_MOD_LOG_PAGE}"));
            }
        }
    }
}

// ---------------------------------------------------------------- routes

/// `GET /api/v1/chat/rooms/{id}/settings` (readers; the filter for moderators only).
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/settings", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), security(("bearer" = [])),
    responses((status = 200, description = "The room's moderation settings",
        body = RoomSettingsOut)))]
async fn get_settings(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<RoomSettingsOut>, ApiError> {
    let a = access(&s, &caller, id).await?;
    let settings = s
        .store
        .chat_room_settings(a.room.id)
        .await
        .map_err(store_err)?;
    Ok(ApiJson(RoomSettingsOut::new(settings, a.moderates)))
}

/// `PUT /api/v1/chat/rooms/{id}/settings` (moderators): replaces slow mode, the filter, the
/// audience delay and whether `/play` sounds play through the show (show rooms only:
/// `409 not_a_show_room` elsewhere, nothing changed).
#[utoipa::path(put, path = "/api/v1/chat/rooms/{id}/settings", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), request_body = RoomSettingsIn,
    security(("bearer" = [])),
    responses((status = 200, description = "The settings as stored", body = RoomSettingsOut)))]
async fn put_settings(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RoomSettingsIn>,
) -> Result<ApiJson<RoomSettingsOut>, ApiError> {
    let a = access(&s, &caller, id).await?;
    require_moderator(&a)?;
    let settings = s
        .store
        .chat_set_room_settings(
            a.room.id,
            caller.id(),
            ChatSettingsChange {
                slow_mode_s: body.slow_mode_s,
                filter: body.filter,
                audience_delay_s: body.audience_delay_s,
                sounds_through_show: body.sounds_through_show,
            },
            s.now_ms(),
        )
        .await
        .map_err(store_err)?;
    Ok(ApiJson(RoomSettingsOut::new(settings, true)))
}

/// `GET /api/v1/chat/rooms/{id}/restrictions` (moderators): every mute, shadow-mute and ban.
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/restrictions", tag = "chat",
    params(("id" = i64, Path, description = "Room id")), security(("bearer" = [])),
    responses((status = 200, description = "Restrictions by user id", body = RestrictionList)))]
async fn list_restrictions(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<RestrictionList>, ApiError> {
    let a = access(&s, &caller, id).await?;
    require_moderator(&a)?;
    let items = s
        .store
        .chat_restrictions(a.room.id)
        .await
        .map_err(store_err)?;
    Ok(ApiJson(RestrictionList {
        items: items.into_iter().map(RestrictionOut::from).collect(),
    }))
}

/// `PUT /api/v1/chat/rooms/{id}/restrictions/{user_id}` (moderators): mutes, shadow-mutes or
/// bans the user in the room, replacing what they had; a ban closes their live sessions in
/// it. A moderator cannot be restricted (`409 conflict`).
#[utoipa::path(put, path = "/api/v1/chat/rooms/{id}/restrictions/{user_id}", tag = "chat",
    params(("id" = i64, Path, description = "Room id"),
        ("user_id" = i64, Path, description = "User id")),
    request_body = RestrictionIn, security(("bearer" = [])),
    responses((status = 200, description = "The restriction", body = RestrictionOut)))]
async fn put_restriction(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<RestrictionIn>,
) -> Result<ApiJson<RestrictionOut>, ApiError> {
    let a = access(&s, &caller, id).await?;
    require_moderator(&a)?;
    let user_id = check_id("user", user_id)?;
    let kind = ChatRestrictionKind::from(body.kind);
    let row = s
        .store
        .chat_restrict(
            a.room.id,
            user_id,
            kind,
            caller.id(),
            body.reason.as_deref(),
            s.now_ms(),
        )
        .await
        .map_err(store_err)?;
    if kind == ChatRestrictionKind::Ban {
        s.chat_banned(a.room.id, user_id);
    }
    Ok(ApiJson(row.into()))
}

/// `DELETE /api/v1/chat/rooms/{id}/restrictions/{user_id}?reason=` (moderators): lifts the
/// user's restriction; the one lifted, or `404` when there was none.
#[utoipa::path(delete, path = "/api/v1/chat/rooms/{id}/restrictions/{user_id}", tag = "chat",
    params(("id" = i64, Path, description = "Room id"),
        ("user_id" = i64, Path, description = "User id"), LiftQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The restriction lifted", body = RestrictionOut)))]
async fn delete_restriction(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<LiftQuery>,
) -> Result<ApiJson<RestrictionOut>, ApiError> {
    let a = access(&s, &caller, id).await?;
    require_moderator(&a)?;
    let user_id = check_id("user", user_id)?;
    let row = s
        .store
        .chat_unrestrict(
            a.room.id,
            user_id,
            caller.id(),
            q.reason.as_deref(),
            s.now_ms(),
        )
        .await
        .map_err(store_err)?;
    Ok(ApiJson(row.into()))
}

/// `GET /api/v1/chat/rooms/{id}/moderation-log?before_id=&limit=` (moderators): who did what
/// to whom, when and why, newest first.
#[utoipa::path(get, path = "/api/v1/chat/rooms/{id}/moderation-log", tag = "chat",
    params(("id" = i64, Path, description = "Room id"), ModLogQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Audit entries, newest first", body = ModLogPage)))]
async fn moderation_log(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ModLogQuery>,
) -> Result<ApiJson<ModLogPage>, ApiError> {
    let a = access(&s, &caller, id).await?;
    require_moderator(&a)?;
    let limit = q.limit.unwrap_or(100);
    let rows = s
        .store
        .chat_mod_log(a.room.id, q.before_id, limit)
        .await
        .map_err(store_err)?;
    let next_before_id = if rows.len() == limit as usize {
        rows.last().map(|l| l.id)
    } else {
        None
    };
    Ok(ApiJson(ModLogPage {
        items: rows.into_iter().map(ModLogEntryOut::from).collect(),
        next_before_id,
    }))
}
