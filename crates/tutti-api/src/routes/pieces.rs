//! Pieces (owned by an ensemble, with a lifecycle) and their spec versions (immutable;
//! publishing makes one current and supersedes the previous in one transaction).
//!
//! Must never: store a spec that `tutti_spec` rejects, or edit a piece for someone who is
//! not its ensemble's owner, performer or an admin.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tutti_spec::{ExportFormat, PieceSpec};
use tutti_store::{NewPiece, NewSpecDraft, PieceStatus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::accounts::ListQuery;
use super::{check_id, to_value, PieceOut, PiecePage, SpecVersionOut, SpecVersionPage};
use crate::auth::{Caller, Need};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Create, Problems, Validate};
use crate::{idem, page, ApiState};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_piece))
        .routes(routes!(list_pieces))
        .routes(routes!(get_piece, patch_piece))
        .routes(routes!(transition_piece))
        .routes(routes!(list_specs, create_spec))
        .routes(routes!(current_spec))
        .routes(routes!(get_spec))
        .routes(routes!(publish_spec))
        .routes(routes!(export_spec))
}

/// A new piece.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPieceIn {
    /// 1–64 of `a-z0-9_-`, unique across all pieces.
    pub slug: String,
    /// 1–200 characters.
    pub title: String,
}

impl Validate for NewPieceIn {
    fn validate(&self, p: &mut Problems) {
        p.slug("slug", &self.slug);
        p.text("title", &self.title, 1, 200);
    }
}

/// `POST /api/v1/ensembles/{id}/pieces` (owner, performer)
#[utoipa::path(post, path = "/api/v1/ensembles/{id}/pieces", tag = "pieces",
    params(("id" = i64, Path, description = "Ensemble id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = NewPieceIn, security(("bearer" = [])),
    responses((status = 201, description = "Created (draft)", body = PieceOut)))]
async fn create_piece(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<NewPieceIn>,
) -> Result<Response, ApiError> {
    let id = check_id("ensemble", id)?;
    s.ensemble_access(&caller, id, Need::Edit).await?;
    let body = req.body;
    idem::run(&s, caller.id(), req.idem, async {
        let p = s
            .store
            .create_piece(NewPiece {
                ensemble_id: id,
                slug: body.slug,
                title: body.title,
                at_ms: s.now_ms(),
            })
            .await?;
        Ok((StatusCode::CREATED, to_value(&PieceOut::from(p))?))
    })
    .await
}

/// Filter and paging of `GET /pieces`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PieceQuery {
    /// Only this ensemble's pieces.
    pub ensemble_id: Option<i64>,
    /// 1–100, default 50.
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl Validate for PieceQuery {
    fn validate(&self, p: &mut Problems) {
        page::check(p, self.limit, self.cursor.as_deref());
    }
}

/// `GET /api/v1/pieces`: the pieces the caller may see.
#[utoipa::path(get, path = "/api/v1/pieces", tag = "pieces", params(PieceQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Pieces by id", body = PiecePage)))]
async fn list_pieces(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PieceQuery>,
) -> Result<ApiJson<PiecePage>, ApiError> {
    caller.require_staff()?;
    let p = page::page(q.limit, q.cursor.as_deref())?;
    let (rows, next) = match q.ensemble_id {
        Some(eid) => {
            s.ensemble_access(&caller, eid, Need::Read).await?;
            s.store.pieces(Some(eid), p).await?
        }
        None if caller.is_admin() => s.store.pieces(None, p).await?,
        None => s.store.pieces_for_user(caller.id(), p).await?,
    };
    Ok(ApiJson(PiecePage::new(
        rows.into_iter().map(PieceOut::from).collect(),
        next,
    )))
}

/// `GET /api/v1/pieces/{id}`
#[utoipa::path(get, path = "/api/v1/pieces/{id}", tag = "pieces",
    params(("id" = i64, Path, description = "Piece id")), security(("bearer" = [])),
    responses((status = 200, description = "The piece", body = PieceOut)))]
async fn get_piece(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<PieceOut>, ApiError> {
    let piece = s.piece_access(&caller, id, Need::Read).await?;
    Ok(ApiJson(piece.into()))
}

/// A title change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPieceIn {
    /// 1–200 characters.
    pub title: String,
}

impl Validate for PatchPieceIn {
    fn validate(&self, p: &mut Problems) {
        p.text("title", &self.title, 1, 200);
    }
}

/// `PATCH /api/v1/pieces/{id}` (owner, performer)
#[utoipa::path(patch, path = "/api/v1/pieces/{id}", tag = "pieces",
    params(("id" = i64, Path, description = "Piece id")), request_body = PatchPieceIn,
    security(("bearer" = [])),
    responses((status = 200, description = "Updated", body = PieceOut)))]
async fn patch_piece(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<PatchPieceIn>,
) -> Result<ApiJson<PieceOut>, ApiError> {
    s.piece_access(&caller, id, Need::Edit).await?;
    let p = s
        .store
        .update_piece_title(id, &body.title, s.now_ms())
        .await;
    s.caches.pieces.forget(&id);
    let p = p?;
    Ok(ApiJson(p.into()))
}

/// A piece status.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PieceStatusIn {
    /// Being written.
    Draft,
    /// Being rehearsed.
    Rehearsal,
    /// Ready to perform.
    Ready,
    /// Retired (final).
    Archived,
}

/// A lifecycle step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PieceTransitionIn {
    /// The status to move to.
    pub to: PieceStatusIn,
}

impl Validate for PieceTransitionIn {}

/// `POST /api/v1/pieces/{id}/transition`: 409 `invalid_transition` with `details.allowed`.
#[utoipa::path(post, path = "/api/v1/pieces/{id}/transition", tag = "pieces",
    params(("id" = i64, Path, description = "Piece id")), request_body = PieceTransitionIn,
    security(("bearer" = [])),
    responses((status = 200, description = "Moved", body = PieceOut)))]
async fn transition_piece(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<PieceTransitionIn>,
) -> Result<ApiJson<PieceOut>, ApiError> {
    s.piece_access(&caller, id, Need::Edit).await?;
    let to = match body.to {
        PieceStatusIn::Draft => PieceStatus::Draft,
        PieceStatusIn::Rehearsal => PieceStatus::Rehearsal,
        PieceStatusIn::Ready => PieceStatus::Ready,
        PieceStatusIn::Archived => PieceStatus::Archived,
    };
    let p = s.store.transition_piece(id, to, s.now_ms()).await;
    s.caches.pieces.forget(&id);
    let p = p?;
    Ok(ApiJson(p.into()))
}

/// A new draft version of a piece's spec.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSpecIn {
    /// The piece spec (as in `pieces/*.toml`, in JSON): slug, title, rates, zones, params.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// A note (≤ 2000 characters).
    pub note: Option<String>,
}

impl Validate for NewSpecIn {
    fn validate(&self, p: &mut Problems) {
        if let Some(n) = &self.note {
            p.len("note", n, 0, 2000);
        }
        if !self.spec.is_object() {
            p.add("spec", "must be an object (a piece spec)");
            return;
        }
        match PieceSpec::from_json(&self.spec.to_string()) {
            Ok(_) => {}
            Err(tutti_spec::SpecError::Invalid { field, message }) => {
                p.add(&format!("spec.{field}"), message);
            }
            Err(e) => p.add("spec", e.to_string()),
        }
    }
}

/// `POST /api/v1/pieces/{id}/specs` (owner, performer): validated, stored as a draft.
#[utoipa::path(post, path = "/api/v1/pieces/{id}/specs", tag = "specs",
    params(("id" = i64, Path, description = "Piece id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = NewSpecIn, security(("bearer" = [])),
    responses((status = 201, description = "The draft version", body = SpecVersionOut)))]
async fn create_spec(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<NewSpecIn>,
) -> Result<Response, ApiError> {
    s.piece_access(&caller, id, Need::Edit).await?;
    let body = req.body;
    idem::run(&s, caller.id(), req.idem, async {
        let v = s
            .store
            .create_spec_draft(NewSpecDraft {
                piece_id: id,
                spec_json: body.spec.to_string(),
                created_by: Some(caller.id()),
                note: body.note,
                at_ms: s.now_ms(),
            })
            .await?;
        Ok((StatusCode::CREATED, to_value(&SpecVersionOut::from(v))?))
    })
    .await
}

/// `GET /api/v1/pieces/{id}/specs`
#[utoipa::path(get, path = "/api/v1/pieces/{id}/specs", tag = "specs",
    params(("id" = i64, Path, description = "Piece id"), ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "Versions, oldest first", body = SpecVersionPage)))]
async fn list_specs(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<SpecVersionPage>, ApiError> {
    s.piece_access(&caller, id, Need::Read).await?;
    let (rows, next) = s
        .store
        .spec_versions_page(id, page::page(q.limit, q.cursor.as_deref())?)
        .await?;
    Ok(ApiJson(SpecVersionPage::new(
        rows.into_iter().map(SpecVersionOut::from).collect(),
        next,
    )))
}

/// `GET /api/v1/pieces/{id}/specs/current`
#[utoipa::path(get, path = "/api/v1/pieces/{id}/specs/current", tag = "specs",
    params(("id" = i64, Path, description = "Piece id")), security(("bearer" = [])),
    responses((status = 200, description = "The current version", body = SpecVersionOut)))]
async fn current_spec(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<SpecVersionOut>, ApiError> {
    s.piece_access(&caller, id, Need::Read).await?;
    let v = s
        .store
        .current_spec(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("current spec of piece {id}")))?;
    Ok(ApiJson(v.into()))
}

async fn version_of(
    s: &ApiState,
    caller: &Caller,
    id: i64,
    version: i64,
    need: Need,
) -> Result<tutti_store::SpecVersionRow, ApiError> {
    s.piece_access(caller, id, need).await?;
    s.store
        .spec_version_by_number(id, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("version {version} of piece {id}")))
}

/// `GET /api/v1/pieces/{id}/specs/{version}`
#[utoipa::path(get, path = "/api/v1/pieces/{id}/specs/{version}", tag = "specs",
    params(("id" = i64, Path, description = "Piece id"), ("version" = i64, Path, description = "Version number")),
    security(("bearer" = [])),
    responses((status = 200, description = "The version", body = SpecVersionOut)))]
async fn get_spec(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath((id, version)): ApiPath<(i64, i64)>,
) -> Result<ApiJson<SpecVersionOut>, ApiError> {
    Ok(ApiJson(
        version_of(&s, &caller, id, version, Need::Read)
            .await?
            .into(),
    ))
}

/// `POST /api/v1/pieces/{id}/specs/{version}/publish` (owner, performer): the version becomes
/// the single current one; the previous current is superseded, atomically.
#[utoipa::path(post, path = "/api/v1/pieces/{id}/specs/{version}/publish", tag = "specs",
    params(("id" = i64, Path, description = "Piece id"), ("version" = i64, Path, description = "Version number")),
    security(("bearer" = [])),
    responses((status = 200, description = "Published", body = SpecVersionOut)))]
async fn publish_spec(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath((id, version)): ApiPath<(i64, i64)>,
) -> Result<ApiJson<SpecVersionOut>, ApiError> {
    s.piece_access(&caller, id, Need::Edit).await?;
    let v = s.store.publish_spec(id, version, s.now_ms()).await?;
    Ok(ApiJson(v.into()))
}

/// The export format.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatIn {
    /// Pretty JSON.
    Json,
    /// TOML (loads back with `tutti serve --piece`).
    Toml,
    /// A readable sheet.
    Markdown,
}

/// `?format=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default), `toml` or `markdown`.
    #[param(inline)]
    pub format: Option<FormatIn>,
}

impl Validate for ExportQuery {}

/// `GET /api/v1/pieces/{id}/specs/{version}/export?format=json|toml|markdown`
#[utoipa::path(get, path = "/api/v1/pieces/{id}/specs/{version}/export", tag = "specs",
    params(("id" = i64, Path, description = "Piece id"), ("version" = i64, Path, description = "Version number"), ExportQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The spec in the format", content(
        (Object = "application/json"),
        (String = "application/toml"),
        (String = "text/markdown")))))]
async fn export_spec(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath((id, version)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let v = version_of(&s, &caller, id, version, Need::Read).await?;
    let spec = PieceSpec::from_json(&v.spec_json).map_err(ApiError::internal)?;
    let format = match q.format.unwrap_or(FormatIn::Json) {
        FormatIn::Json => ExportFormat::Json,
        FormatIn::Toml => ExportFormat::Toml,
        FormatIn::Markdown => ExportFormat::Markdown,
    };
    let text = spec.export(format).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
}
