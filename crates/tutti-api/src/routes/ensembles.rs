//! Ensembles (teams) and their members.
//!
//! Must never: let anyone but an owner or an admin change the members, or reveal an
//! ensemble to someone outside it (404).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tutti_store::{EnsembleRole, UserRole};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::accounts::ListQuery;
use super::{check_id, to_value, EnsembleOut, EnsemblePage, MemberList, MemberOut};
use crate::auth::{Caller, Need};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Create, Problems, Validate};
use crate::{idem, page, ApiState};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_ensembles, create_ensemble))
        .routes(routes!(get_ensemble))
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member))
}

/// A new ensemble; the creator becomes its owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnsembleIn {
    /// 1–64 of `a-z0-9_-`, unique.
    pub slug: String,
    /// 1–200 characters.
    pub name: String,
}

impl Validate for NewEnsembleIn {
    fn validate(&self, p: &mut Problems) {
        p.slug("slug", &self.slug);
        p.text("name", &self.name, 1, 200);
    }
}

/// `POST /api/v1/ensembles` (admin or performer)
#[utoipa::path(post, path = "/api/v1/ensembles", tag = "ensembles", request_body = NewEnsembleIn,
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    responses((status = 201, description = "Created", body = EnsembleOut)))]
async fn create_ensemble(
    State(s): State<ApiState>,
    caller: Caller,
    req: Create<NewEnsembleIn>,
) -> Result<Response, ApiError> {
    if !matches!(caller.user.role, UserRole::Admin | UserRole::Performer) {
        return Err(ApiError::forbidden(
            "only admins and performers create ensembles",
        ));
    }
    let body = req.body;
    idem::run(&s, caller.id(), req.idem, async {
        let e = s
            .store
            .create_ensemble(&body.slug, &body.name, caller.id(), s.now_ms())
            .await?;
        s.caches.members.forget(&(e.id, caller.id()));
        Ok((StatusCode::CREATED, to_value(&EnsembleOut::from(e))?))
    })
    .await
}

/// `GET /api/v1/ensembles`: the caller's ensembles (admins: all).
#[utoipa::path(get, path = "/api/v1/ensembles", tag = "ensembles", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Ensembles by id", body = EnsemblePage)))]
async fn list_ensembles(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<EnsemblePage>, ApiError> {
    caller.require_staff()?;
    let p = page::page(q.limit, q.cursor.as_deref())?;
    let (rows, next) = if caller.is_admin() {
        s.store.ensembles(p).await?
    } else {
        s.store.ensembles_for_user(caller.id(), p).await?
    };
    Ok(ApiJson(EnsemblePage::new(
        rows.into_iter().map(EnsembleOut::from).collect(),
        next,
    )))
}

/// `GET /api/v1/ensembles/{id}`
#[utoipa::path(get, path = "/api/v1/ensembles/{id}", tag = "ensembles",
    params(("id" = i64, Path, description = "Ensemble id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The ensemble", body = EnsembleOut)))]
async fn get_ensemble(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<EnsembleOut>, ApiError> {
    let id = check_id("ensemble", id)?;
    s.ensemble_access(&caller, id, Need::Read).await?;
    let e = s
        .store
        .ensemble(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ensemble {id}")))?;
    Ok(ApiJson(e.into()))
}

/// `GET /api/v1/ensembles/{id}/members`
#[utoipa::path(get, path = "/api/v1/ensembles/{id}/members", tag = "ensembles",
    params(("id" = i64, Path, description = "Ensemble id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Members by user id", body = MemberList)))]
async fn list_members(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<MemberList>, ApiError> {
    let id = check_id("ensemble", id)?;
    s.ensemble_access(&caller, id, Need::Read).await?;
    let rows = s.store.members(id).await?;
    Ok(ApiJson(MemberList {
        items: rows.into_iter().map(MemberOut::from).collect(),
    }))
}

/// A role inside an ensemble.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnsembleRoleIn {
    /// Manages members.
    Owner,
    /// Edits pieces, specs, shows.
    Performer,
    /// Reads and operates shows.
    Crew,
}

/// A member to add: by user id or by exact username (exactly one of them).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemberIn {
    /// The user's id.
    pub user_id: Option<i64>,
    /// Or the user's exact username (ignoring case).
    pub username: Option<String>,
    /// Their role here.
    pub role: EnsembleRoleIn,
}

impl Validate for NewMemberIn {
    fn validate(&self, p: &mut Problems) {
        match (self.user_id, &self.username) {
            (Some(id), None) if id < 1 => p.add("user_id", "must be a user id (≥ 1)"),
            (Some(_), None) => {}
            (None, Some(name)) => p.len("username", name, 1, 64),
            (Some(_), Some(_)) => p.add("username", "send user_id or username, not both"),
            (None, None) => p.add("user_id", "is required (or send username)"),
        }
    }
}

/// The id of the user to add: the given one, or the user with exactly this username.
async fn member_user_id(s: &ApiState, body: &NewMemberIn) -> Result<i64, ApiError> {
    match (&body.username, body.user_id) {
        (Some(name), _) => s
            .store
            .user_by_username(name)
            .await?
            .map(|u| u.id)
            .ok_or_else(|| ApiError::not_found(format!("user named {name:?}"))),
        (None, Some(id)) => Ok(id),
        (None, None) => Err(ApiError::field("user_id", "is required (or send username)")),
    }
}

/// `POST /api/v1/ensembles/{id}/members` (owner): by `user_id` or exact `username` (an unknown
/// name is 404; nobody but an admin can list users); adding twice is 409 `already_member`.
#[utoipa::path(post, path = "/api/v1/ensembles/{id}/members", tag = "ensembles",
    params(("id" = i64, Path, description = "Ensemble id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = NewMemberIn,
    security(("bearer" = [])),
    responses((status = 201, description = "Added", body = MemberOut)))]
async fn add_member(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<NewMemberIn>,
) -> Result<Response, ApiError> {
    let id = check_id("ensemble", id)?;
    s.ensemble_access(&caller, id, Need::Manage).await?;
    let body = req.body;
    let role = match body.role {
        EnsembleRoleIn::Owner => EnsembleRole::Owner,
        EnsembleRoleIn::Performer => EnsembleRole::Performer,
        EnsembleRoleIn::Crew => EnsembleRole::Crew,
    };
    idem::run(&s, caller.id(), req.idem, async {
        let user_id = member_user_id(&s, &body).await?;
        let m = s.store.add_member(id, user_id, role, s.now_ms()).await;
        s.caches.members.forget(&(id, user_id));
        let m = m?;
        Ok((StatusCode::CREATED, to_value(&MemberOut::from(m))?))
    })
    .await
}

/// `DELETE /api/v1/ensembles/{id}/members/{user_id}` (owner; members may leave).
#[utoipa::path(delete, path = "/api/v1/ensembles/{id}/members/{user_id}", tag = "ensembles",
    params(("id" = i64, Path, description = "Ensemble id"), ("user_id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Removed")))]
async fn remove_member(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    let id = check_id("ensemble", id)?;
    let need = if user_id == caller.id() {
        Need::Read
    } else {
        Need::Manage
    };
    s.ensemble_access(&caller, id, need).await?;
    let removed = s.store.remove_member(id, user_id, s.now_ms()).await;
    s.caches.members.forget(&(id, user_id));
    removed?;
    Ok(StatusCode::NO_CONTENT)
}
