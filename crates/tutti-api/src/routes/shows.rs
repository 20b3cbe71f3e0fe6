//! Shows: created from a piece's spec version (current by default), moved along
//! `scheduled → live ⇄ paused → ended` (crew may do this), exported with their timeline,
//! joined by anonymous guests with a device token (asked for by join code, limited per client
//! address), shown as a QR code.
//!
//! Must never: change a show's recorded spec version, or skip telling the live hub about a
//! committed status change.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tutti_store::{NewShow, ShowKind, ShowRow, ShowStatus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{check_id, to_value, ShowOut, ShowPage};
use crate::auth::{self, Caller, Need};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Create, Problems, Validate};
use crate::limits::{self, ClientAddr};
use crate::{idem, page, ApiState};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_show))
        .routes(routes!(list_shows))
        .routes(routes!(get_show))
        .routes(routes!(transition_show))
        .routes(routes!(export_show))
        .routes(routes!(create_guest))
        .routes(routes!(create_guest_by_code))
        .routes(routes!(show_qr))
}

/// `rehearsal` or `performance`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShowKindIn {
    /// A rehearsal.
    Rehearsal,
    /// A performance.
    Performance,
}

/// A new show.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShowIn {
    /// Rehearsal or performance.
    pub kind: ShowKindIn,
    /// The spec version number to run (default: the current one).
    pub spec_version: Option<i64>,
}

impl Validate for NewShowIn {
    fn validate(&self, p: &mut Problems) {
        if self.spec_version.is_some_and(|v| v < 1) {
            p.add("spec_version", "must be a version number (≥ 1)");
        }
    }
}

fn new_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..6)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `POST /api/v1/pieces/{id}/shows` (owner, performer)
#[utoipa::path(post, path = "/api/v1/pieces/{id}/shows", tag = "shows",
    params(("id" = i64, Path, description = "Piece id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = NewShowIn, security(("bearer" = [])),
    responses((status = 201, description = "Scheduled", body = ShowOut)))]
async fn create_show(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<NewShowIn>,
) -> Result<Response, ApiError> {
    s.piece_access(&caller, id, Need::Edit).await?;
    let body = req.body;
    let kind = match body.kind {
        ShowKindIn::Rehearsal => ShowKind::Rehearsal,
        ShowKindIn::Performance => ShowKind::Performance,
    };
    idem::run(&s, caller.id(), req.idem, async {
        let mut tries = 0;
        let row = loop {
            let r = s
                .store
                .create_show_for_piece(NewShow {
                    piece_id: id,
                    spec_version: body.spec_version,
                    code: new_code(),
                    kind,
                    at_ms: s.now_ms(),
                })
                .await;
            match r {
                Err(tutti_store::StoreError::Conflict {
                    what: "show code", ..
                }) if tries < 8 => {
                    tries += 1;
                }
                other => break other?,
            }
        };
        Ok((StatusCode::CREATED, to_value(&ShowOut::new(&s, row))?))
    })
    .await
}

/// Filter and paging of `GET /shows`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShowQuery {
    /// Only this piece's shows (required unless admin).
    pub piece_id: Option<i64>,
    /// 1–100, default 50.
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl Validate for ShowQuery {
    fn validate(&self, p: &mut Problems) {
        page::check(p, self.limit, self.cursor.as_deref());
    }
}

/// `GET /api/v1/shows`
#[utoipa::path(get, path = "/api/v1/shows", tag = "shows", params(ShowQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Shows by id", body = ShowPage)))]
async fn list_shows(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ShowQuery>,
) -> Result<ApiJson<ShowPage>, ApiError> {
    caller.require_staff()?;
    let p = page::page(q.limit, q.cursor.as_deref())?;
    let (rows, next) = match q.piece_id {
        Some(pid) => {
            s.piece_access(&caller, pid, Need::Read).await?;
            s.store.shows(Some(pid), p).await?
        }
        None if caller.is_admin() => s.store.shows(None, p).await?,
        None => {
            return Err(ApiError::field(
                "piece_id",
                "required unless you are an admin",
            ))
        }
    };
    Ok(ApiJson(ShowPage::new(
        rows.into_iter().map(|r| ShowOut::new(&s, r)).collect(),
        next,
    )))
}

pub(super) async fn show_access(
    s: &ApiState,
    caller: &Caller,
    id: i64,
    need: Need,
) -> Result<tutti_store::ShowRow, ApiError> {
    caller.require_staff()?;
    let id = check_id("show", id)?;
    let show = s
        .store
        .show(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("show {id}")))?;
    s.piece_access(caller, show.piece_id, need)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found(format!("show {id}"))
            } else {
                e
            }
        })?;
    Ok(show)
}

/// `GET /api/v1/shows/{id}`
#[utoipa::path(get, path = "/api/v1/shows/{id}", tag = "shows",
    params(("id" = i64, Path, description = "Show id")), security(("bearer" = [])),
    responses((status = 200, description = "The show", body = ShowOut)))]
async fn get_show(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<ShowOut>, ApiError> {
    let show = show_access(&s, &caller, id, Need::Read).await?;
    Ok(ApiJson(ShowOut::new(&s, show)))
}

/// A show status.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShowStatusIn {
    /// Not started.
    Scheduled,
    /// Running.
    Live,
    /// Stopped for now.
    Paused,
    /// Over (final).
    Ended,
}

/// A lifecycle step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowTransitionIn {
    /// The status to move to.
    pub to: ShowStatusIn,
}

impl Validate for ShowTransitionIn {}

/// `POST /api/v1/shows/{id}/transition` (crew and up): 409 `invalid_transition` with
/// `details.allowed`; ending twice is a 409. Going live opens the show on the live hub.
#[utoipa::path(post, path = "/api/v1/shows/{id}/transition", tag = "shows",
    params(("id" = i64, Path, description = "Show id")), request_body = ShowTransitionIn,
    security(("bearer" = [])),
    responses((status = 200, description = "Moved", body = ShowOut)))]
async fn transition_show(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ShowTransitionIn>,
) -> Result<ApiJson<ShowOut>, ApiError> {
    show_access(&s, &caller, id, Need::Operate).await?;
    let to = match body.to {
        ShowStatusIn::Scheduled => ShowStatus::Scheduled,
        ShowStatusIn::Live => ShowStatus::Live,
        ShowStatusIn::Paused => ShowStatus::Paused,
        ShowStatusIn::Ended => ShowStatus::Ended,
    };
    let row = s.store.set_show_status(id, to, s.now_ms()).await?;
    if let Some(hook) = &s.live {
        hook.show_changed(row.clone()).await;
    }
    Ok(ApiJson(ShowOut::new(&s, row)))
}

/// `GET /api/v1/shows/{id}/export`: metadata, the spec version, and the timeline.
#[utoipa::path(get, path = "/api/v1/shows/{id}/export", tag = "shows",
    params(("id" = i64, Path, description = "Show id")), security(("bearer" = [])),
    responses((status = 200, description = "Metadata and timeline", body = Object)))]
async fn export_show(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let show = show_access(&s, &caller, id, Need::Read).await?;
    let piece = s.store.piece(show.piece_id).await?;
    let version = s.store.spec_version(show.spec_version_id).await?;
    let overrides = s.store.overrides(show.id).await?;
    let mut timeline = vec![json!({"at_ms": show.created_at_ms, "event": "created"})];
    if let Some(t) = show.started_at_ms {
        timeline.push(json!({"at_ms": t, "event": "started"}));
    }
    for o in overrides {
        timeline.push(json!({
            "at_ms": o.at_ms,
            "event": "override",
            "actor": o.actor,
            "param": o.param,
            "action": o.action,
            "detail": serde_json::from_str::<serde_json::Value>(&o.detail_json).unwrap_or_default(),
        }));
    }
    if let Some(t) = show.ended_at_ms {
        timeline.push(json!({"at_ms": t, "event": "ended"}));
    }
    timeline.sort_by_key(|e| e["at_ms"].as_i64().unwrap_or(0));
    let body = json!({
        "format": "tutti.show-export/1",
        "show": ShowOut::new(&s, show),
        "piece": piece.map(super::PieceOut::from),
        "spec_version": version.map(super::SpecVersionOut::from),
        "timeline": timeline,
    });
    Ok(ApiJson(body).into_response())
}

/// An anonymous audience device.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuestOut {
    /// Guest id.
    pub id: i64,
    /// The show.
    pub show_id: i64,
    /// The device's secret (shown once).
    pub device_token: String,
}

/// Takes one guest-token request of this client, or 429 `rate_limited` with `Retry-After`.
fn guest_allowance(s: &ApiState, ip: std::net::IpAddr) -> Result<(), ApiError> {
    s.guests.take(ip, s.now_ms()).map_err(|wait| {
        let secs = limits::retry_after_s(wait);
        ApiError::rate_limited(
            secs,
            format!("too many guest tokens from your address; retry in {secs} s"),
        )
    })
}

/// A device token bound to `show` (unless it has ended: 409).
async fn new_guest(s: &ApiState, show: ShowRow) -> Result<Response, ApiError> {
    if show.status == ShowStatus::Ended {
        return Err(ApiError::conflict("conflict", "the show has ended"));
    }
    let token = auth::new_secret("ttg_");
    let g = s
        .store
        .create_guest(show.id, auth::token_hash(&token), s.now_ms())
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(GuestOut {
            id: g.id,
            show_id: g.show_id,
            device_token: token,
        }),
    )
        .into_response())
}

/// The show with this join code (as given, or in capitals: codes are shown in capitals).
async fn show_by_code(s: &ApiState, code: &str) -> Result<Option<ShowRow>, ApiError> {
    let well_formed = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Ok(None);
    }
    if let Some(show) = s.store.show_by_code(code).await? {
        return Ok(Some(show));
    }
    let upper = code.to_ascii_uppercase();
    if upper == code {
        return Ok(None);
    }
    Ok(s.store.show_by_code(&upper).await?)
}

/// `POST /api/v1/join/{code}/guests` (no sign-in; limited per client address): a device token
/// bound to the show with this join code, for an audience `join` on `/live/v1`.
#[utoipa::path(post, path = "/api/v1/join/{code}/guests", tag = "shows",
    params(("code" = String, Path, description = "The show's join code")),
    responses((status = 201, description = "A guest", body = GuestOut)))]
async fn create_guest_by_code(
    State(s): State<ApiState>,
    ClientAddr(ip): ClientAddr,
    ApiPath(code): ApiPath<String>,
) -> Result<Response, ApiError> {
    guest_allowance(&s, ip)?;
    let show = show_by_code(&s, &code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("show with code {code:?}")))?;
    new_guest(&s, show).await
}

/// `POST /api/v1/shows/{id}/guests` (no sign-in; limited per client address). Deprecated:
/// use `POST /join/{code}/guests`, which does not reveal which show ids exist.
#[utoipa::path(post, path = "/api/v1/shows/{id}/guests", tag = "shows",
    params(("id" = i64, Path, description = "Show id")),
    responses((status = 201, description = "A guest", body = GuestOut)))]
async fn create_guest(
    State(s): State<ApiState>,
    ClientAddr(ip): ClientAddr,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    guest_allowance(&s, ip)?;
    let id = check_id("show", id)?;
    let show = s
        .store
        .show(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("show {id}")))?;
    new_guest(&s, show).await
}

/// `GET /api/v1/shows/{id}/qr.svg`: the join link as a QR code.
#[utoipa::path(get, path = "/api/v1/shows/{id}/qr.svg", tag = "shows",
    params(("id" = i64, Path, description = "Show id")), security(("bearer" = [])),
    responses((status = 200, description = "SVG", content_type = "image/svg+xml", body = String)))]
async fn show_qr(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let show = show_access(&s, &caller, id, Need::Read).await?;
    let url = s.join_url(&show.code);
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(ApiError::internal)?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
