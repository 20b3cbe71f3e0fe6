//! The `/api/v1` handlers, grouped by resource, and the response types they share.
//!
//! Must never: change a stored object in more than one store operation per request (so a
//! failing request writes nothing), or answer with a store row type directly (the DTOs here
//! are the contract).

pub(crate) mod accounts;
mod chat;
mod chat_attachments;
mod chat_bots;
mod chat_extras;
mod chat_moderation;
mod ensembles;
mod events;
mod memory;
mod pieces;
pub(crate) mod reports;
mod shows;

use axum::http::StatusCode;
use serde::Serialize;
use tutti_store::{EnsembleRow, MemberRow, PieceRow, ShowRow, SpecVersionRow, UserRow};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::page::page_type;
use crate::ApiState;

/// The request body types of these routes by name, each parsed and validated exactly as its
/// route does ([`crate::extract::parse_body`]); `None` for a name not listed. For the fuzz
/// target `api_body` (see `docs/fuzzing.md`), through [`crate::check_body`].
pub(crate) fn check_body(name: &str, bytes: &[u8]) -> Option<Result<(), ApiError>> {
    use crate::extract::parse_body;
    let h = crate::extract::json_headers();
    let h = &h;
    Some(match name {
        "setup" => parse_body::<accounts::SetupIn>(h, bytes).map(drop),
        "login" => parse_body::<accounts::LoginIn>(h, bytes).map(drop),
        "refresh" => parse_body::<accounts::RefreshIn>(h, bytes).map(drop),
        "password" => parse_body::<accounts::PasswordIn>(h, bytes).map(drop),
        "new_user" => parse_body::<accounts::NewUserIn>(h, bytes).map(drop),
        "new_ensemble" => parse_body::<ensembles::NewEnsembleIn>(h, bytes).map(drop),
        "new_member" => parse_body::<ensembles::NewMemberIn>(h, bytes).map(drop),
        "new_webhook" => parse_body::<events::NewWebhookIn>(h, bytes).map(drop),
        "memory_record" => parse_body::<tutti_memory::Record>(h, bytes).map(drop),
        "memory_append" => parse_body::<memory::AppendIn>(h, bytes).map(drop),
        "memory_outcome" => parse_body::<tutti_memory::Outcome>(h, bytes).map(drop),
        "memory_moments" => parse_body::<tutti_memory::MomentQuery>(h, bytes).map(drop),
        "memory_episodes" => parse_body::<tutti_memory::EpisodeQuery>(h, bytes).map(drop),
        "memory_rating" => parse_body::<memory::RatingIn>(h, bytes).map(drop),
        "memory_feedback" => parse_body::<memory::FeedbackIn>(h, bytes).map(drop),
        "new_piece" => parse_body::<pieces::NewPieceIn>(h, bytes).map(drop),
        "patch_piece" => parse_body::<pieces::PatchPieceIn>(h, bytes).map(drop),
        "piece_transition" => parse_body::<pieces::PieceTransitionIn>(h, bytes).map(drop),
        "new_spec" => parse_body::<pieces::NewSpecIn>(h, bytes).map(drop),
        "new_show" => parse_body::<shows::NewShowIn>(h, bytes).map(drop),
        "show_transition" => parse_body::<shows::ShowTransitionIn>(h, bytes).map(drop),
        "chat_room" => parse_body::<chat::NewRoomIn>(h, bytes).map(drop),
        "chat_member" => parse_body::<chat::NewRoomMemberIn>(h, bytes).map(drop),
        "chat_involvement" => parse_body::<chat::InvolvementBody>(h, bytes).map(drop),
        "chat_read" => parse_body::<chat::MarkReadIn>(h, bytes).map(drop),
        "chat_message" => parse_body::<chat::NewMessageIn>(h, bytes).map(drop),
        "chat_edit" => parse_body::<chat::EditMessageIn>(h, bytes).map(drop),
        "chat_boost" => parse_body::<chat::BoostIn>(h, bytes).map(drop),
        "chat_settings" => parse_body::<chat_moderation::RoomSettingsIn>(h, bytes).map(drop),
        "chat_restriction" => parse_body::<chat_moderation::RestrictionIn>(h, bytes).map(drop),
        "chat_flagged" => parse_body::<chat_extras::FlaggedIn>(h, bytes).map(drop),
        "chat_wall" => parse_body::<chat_extras::WallIn>(h, bytes).map(drop),
        _ => return None,
    })
}

/// Every documented resource route (the wizard's routes are merged beside these in
/// `openapi::build`, so that this module never depends on `wizard`, which uses its DTOs).
pub(crate) fn api() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(ensembles::routes())
        .merge(pieces::routes())
        .merge(shows::routes())
        .merge(reports::routes())
        .merge(events::routes())
        .merge(memory::routes())
        .merge(chat::routes())
}

/// Any unknown path under `/api/v1`.
pub(crate) async fn unknown_path(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}", uri.path()),
    )
}

/// A user (never with the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Human name.
    pub display_name: String,
    /// `admin`, `performer`, `crew` or `audience`.
    pub role: String,
    /// Whether the account may sign in.
    pub active: bool,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
}

impl From<&UserRow> for UserOut {
    fn from(u: &UserRow) -> Self {
        UserOut {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role.as_str().to_owned(),
            active: u.active,
            created_at_ms: u.created_at_ms,
        }
    }
}

/// An ensemble.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnsembleOut {
    /// Id.
    pub id: i64,
    /// URL-safe name.
    pub slug: String,
    /// Human name.
    pub name: String,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
}

impl From<EnsembleRow> for EnsembleOut {
    fn from(e: EnsembleRow) -> Self {
        EnsembleOut {
            id: e.id,
            slug: e.slug,
            name: e.name,
            created_at_ms: e.created_at_ms,
        }
    }
}

/// A member of an ensemble.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    /// The ensemble.
    pub ensemble_id: i64,
    /// The user.
    pub user_id: i64,
    /// Their login name.
    pub username: String,
    /// Their human name.
    pub display_name: String,
    /// `owner`, `performer` or `crew`.
    pub role: String,
    /// When they joined, unix ms.
    pub created_at_ms: i64,
}

impl From<MemberRow> for MemberOut {
    fn from(m: MemberRow) -> Self {
        MemberOut {
            ensemble_id: m.ensemble_id,
            user_id: m.user_id,
            username: m.username,
            display_name: m.display_name,
            role: m.role.as_str().to_owned(),
            created_at_ms: m.created_at_ms,
        }
    }
}

/// A piece.
#[derive(Debug, Serialize, ToSchema)]
pub struct PieceOut {
    /// Id.
    pub id: i64,
    /// The owning ensemble (null for pieces from the configuration).
    pub ensemble_id: Option<i64>,
    /// URL-safe name, unique.
    pub slug: String,
    /// Title.
    pub title: String,
    /// `draft`, `rehearsal`, `ready` or `archived`.
    pub status: String,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
}

impl From<PieceRow> for PieceOut {
    fn from(p: PieceRow) -> Self {
        PieceOut {
            id: p.id,
            ensemble_id: p.ensemble_id,
            slug: p.slug,
            title: p.title,
            status: p.status.as_str().to_owned(),
            created_at_ms: p.created_at_ms,
        }
    }
}

/// One immutable version of a piece's spec.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpecVersionOut {
    /// Id.
    pub id: i64,
    /// The piece.
    pub piece_id: i64,
    /// 1, 2, 3, … per piece.
    pub version: i64,
    /// `draft`, `current` or `superseded`.
    pub status: String,
    /// The spec document.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// A note from its author.
    pub note: Option<String>,
    /// Who wrote it (null for configuration pieces).
    pub created_by: Option<i64>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
}

impl From<SpecVersionRow> for SpecVersionOut {
    fn from(v: SpecVersionRow) -> Self {
        SpecVersionOut {
            id: v.id,
            piece_id: v.piece_id,
            version: v.version,
            status: v.status.as_str().to_owned(),
            spec: serde_json::from_str(&v.spec_json).unwrap_or(serde_json::Value::Null),
            note: v.note,
            created_by: v.created_by,
            created_at_ms: v.created_at_ms,
        }
    }
}

/// A show (a rehearsal or performance session).
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowOut {
    /// Id.
    pub id: i64,
    /// The piece.
    pub piece_id: i64,
    /// The spec version it runs: its number within the piece (as in
    /// `/pieces/{id}/specs/{version}`).
    pub spec_version: i64,
    /// The same spec version's global store id. Kept for compatibility; prefer `spec_version`.
    pub spec_version_id: i64,
    /// The join code.
    pub code: String,
    /// The audience's join link.
    pub join_url: String,
    /// `rehearsal` or `performance`.
    pub kind: String,
    /// `scheduled`, `live`, `paused` or `ended`.
    pub status: String,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// When it first went live.
    pub started_at_ms: Option<i64>,
    /// When it ended.
    pub ended_at_ms: Option<i64>,
}

impl ShowOut {
    pub(crate) fn new(state: &ApiState, s: ShowRow) -> Self {
        ShowOut {
            id: s.id,
            piece_id: s.piece_id,
            spec_version: s.spec_version,
            spec_version_id: s.spec_version_id,
            join_url: state.join_url(&s.code),
            code: s.code,
            kind: s.kind.as_str().to_owned(),
            status: s.status.as_str().to_owned(),
            created_at_ms: s.created_at_ms,
            started_at_ms: s.started_at_ms,
            ended_at_ms: s.ended_at_ms,
        }
    }
}

page_type!(UserPage, UserOut);
page_type!(EnsemblePage, EnsembleOut);
page_type!(PiecePage, PieceOut);
page_type!(SpecVersionPage, SpecVersionOut);
page_type!(ShowPage, ShowOut);

/// A list that is not paginated.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    /// The members, by user id.
    pub items: Vec<MemberOut>,
}

/// `{"status": "ok"}`-like answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The server's version.
    pub version: String,
}

/// Serializes a DTO for a JSON response.
pub(crate) fn to_value<T: Serialize>(v: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

/// 422 for a path id that cannot be an id.
pub(crate) fn check_id(field: &str, id: i64) -> Result<i64, ApiError> {
    if id < 1 {
        Err(ApiError::not_found(format!("{field} {id}")))
    } else {
        Ok(id)
    }
}
