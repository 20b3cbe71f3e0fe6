//! The event history (`GET /events`), the live streams (`/events/stream` SSE,
//! `/events/ws` WebSocket, from `tutti-events`), and the webhooks of an ensemble.
//!
//! Visibility: admins see every event; everyone else sees the events of the ensembles they
//! belong to (account events are admin-only), and no more of an event than they could read
//! directly: crew get `webhook.*` events reduced to their ids (`data.redacted: true`), as
//! they may not read webhooks. Webhooks are managed by an ensemble's owners
//! and performers; the signing secret is shown once, in the creation response.
//!
//! Must never: send an event to someone outside its ensemble, show a webhook's URL to someone
//! who may not read its webhooks, or show a webhook's secret after it was created.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tutti_events::{present, EnsembleVisibility, EventRecord, TargetForbidden, Visibility};
use tutti_store::{DeliveryRow, EnsembleRole, EventScope, NewWebhook, Page, WebhookRow};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::accounts::ListQuery;
use super::check_id;
use crate::auth::{Caller, Need};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Create, Problems, Validate};
use crate::page::page_type;
use crate::{idem, page, ApiState};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(event_stream))
        .routes(routes!(event_socket))
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(enable_webhook))
        .routes(routes!(list_deliveries))
}

/// One event from the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// Increasing id (resume after it).
    pub id: i64,
    /// Kind, e.g. `piece.created`.
    pub kind: String,
    /// The ensemble (null for account events).
    pub ensemble_id: Option<i64>,
    /// What it is about, e.g. `piece:12`.
    pub subject: String,
    /// When, unix ms.
    pub at_ms: i64,
    /// Ids and changed fields; only ids and `"redacted": true` when the caller may not read
    /// what the event is about (crew and webhooks).
    pub data: serde_json::Value,
}

impl From<EventRecord> for EventOut {
    fn from(e: EventRecord) -> Self {
        EventOut {
            id: e.id,
            kind: e.kind,
            ensemble_id: e.ensemble_id,
            subject: e.subject,
            at_ms: e.at_ms,
            data: e.data,
        }
    }
}

page_type!(EventPage, EventOut);

/// Paging of the event history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events after this id.
    pub after: Option<i64>,
    /// 1–100, default 50.
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor` (overrides `after`).
    pub cursor: Option<String>,
}

impl Validate for EventQuery {
    fn validate(&self, p: &mut Problems) {
        page::check(p, self.limit, self.cursor.as_deref());
        if self.after.is_some_and(|a| a < 0) {
            p.add("after", "must be an event id (≥ 0)");
        }
    }
}

/// The ensembles a caller belongs to (every page).
async fn my_ensembles(s: &ApiState, caller: &Caller) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::new();
    let mut after_id = None;
    loop {
        let (rows, next) = s
            .store
            .ensembles_for_user(
                caller.id(),
                Page {
                    after_id,
                    limit: 1000,
                },
            )
            .await?;
        ids.extend(rows.iter().map(|e| e.id));
        match next {
            Some(n) => after_id = Some(n),
            None => return Ok(ids),
        }
    }
}

/// What the caller may see: admins everything; members their ensembles' events, with
/// editors-only events (webhooks) redacted where they are crew.
async fn visibility(s: &ApiState, caller: &Caller) -> Result<EnsembleVisibility, ApiError> {
    caller.require_staff()?;
    if caller.is_admin() {
        return Ok(EnsembleVisibility::everything());
    }
    let (mut editing, mut reading) = (Vec::new(), Vec::new());
    for id in my_ensembles(s, caller).await? {
        match s.ensemble_role(caller, id).await? {
            Some(EnsembleRole::Owner | EnsembleRole::Performer) => editing.push(id),
            Some(EnsembleRole::Crew) => reading.push(id),
            None => {}
        }
    }
    Ok(EnsembleVisibility::of(editing).reading(reading))
}

/// `GET /api/v1/events`: the history the caller may see, oldest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Events by id", body = EventPage)))]
async fn list_events(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<ApiJson<EventPage>, ApiError> {
    let vis = visibility(&s, &caller).await?;
    let mut p = page::page(q.limit, q.cursor.as_deref())?;
    if q.cursor.is_none() {
        p.after_id = q.after;
    }
    let scope = if vis.all {
        EventScope::All
    } else {
        EventScope::Ensembles(vis.ensembles.iter().copied().collect())
    };
    let (rows, next) = s.store.events_after(p, scope).await?;
    let items = rows
        .into_iter()
        .map(EventRecord::from_row)
        .filter_map(|e| present(&vis, &e).map(|shown| EventOut::from(shown.into_owned())))
        .collect();
    Ok(ApiJson(EventPage::new(items, next)))
}

fn streams(s: &ApiState) -> Result<&tutti_events::EventStreams, ApiError> {
    s.events
        .as_ref()
        .ok_or_else(|| ApiError::unavailable(60, "the event system is not running on this server"))
}

/// Resume position of a stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Replay the events after this id first (`Last-Event-ID` wins when sent).
    pub after: Option<i64>,
}

impl Validate for StreamQuery {}

/// `GET /api/v1/events/stream`: Server-Sent Events (`id`, `event: <kind>`, `data: <event>`).
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", params(StreamQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "An endless event stream", content_type = "text/event-stream", body = String)))]
async fn event_stream(
    State(s): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let vis: Arc<dyn Visibility> = Arc::new(visibility(&s, &caller).await?);
    let after = tutti_events::resume_after(&headers, q.after);
    Ok(streams(&s)?.sse(vis, after).await)
}

/// `GET /api/v1/events/ws`: the same events over a WebSocket, one text frame each.
#[utoipa::path(get, path = "/api/v1/events/ws", tag = "events", params(StreamQuery),
    security(("bearer" = [])),
    responses((status = 101, description = "Switching to a WebSocket")))]
async fn event_socket(
    State(s): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StreamQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let vis: Arc<dyn Visibility> = Arc::new(visibility(&s, &caller).await?);
    let upgrade = upgrade.map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(streams(&s)?.websocket(upgrade, vis, q.after).await)
}

/// A webhook (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    /// Id.
    pub id: i64,
    /// The ensemble whose events it receives.
    pub ensemble_id: i64,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Kinds it receives (empty: all).
    pub kinds: Vec<String>,
    /// Whether deliveries are attempted.
    pub active: bool,
    /// Deliveries in a row that gave up.
    pub consecutive_failures: u32,
    /// Why it was disabled, while it is.
    pub disabled_reason: Option<String>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
}

impl From<WebhookRow> for WebhookOut {
    fn from(w: WebhookRow) -> Self {
        WebhookOut {
            id: w.id,
            ensemble_id: w.ensemble_id,
            url: w.url,
            kinds: w.kinds,
            active: w.active,
            consecutive_failures: w.consecutive_failures,
            disabled_reason: w.disabled_reason,
            created_at_ms: w.created_at_ms,
        }
    }
}

/// A new webhook: the response carries the signing secret, once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewWebhookOut {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// HMAC-SHA256 key of the `tutti-signature` header. Shown only now.
    pub secret: String,
}

/// Webhooks of an ensemble.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub items: Vec<WebhookOut>,
}

/// A webhook subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookIn {
    /// `http(s)://host[:port]/path` that receives the POSTs (1–2000 characters).
    pub url: String,
    /// Event kinds to receive (default: all).
    pub kinds: Option<Vec<String>>,
}

impl Validate for NewWebhookIn {
    fn validate(&self, p: &mut Problems) {
        p.len("url", &self.url, 1, 2000);
        match tutti_events::dispatch::check_webhook_url(&self.url) {
            Err(tutti_events::EventsError::WebhookUrl { reason, .. }) => p.add("url", reason),
            Err(e) => p.add("url", e.to_string()),
            Ok(()) => {}
        }
        if let Some(kinds) = &self.kinds {
            if kinds.len() > 32 {
                p.add("kinds", "at most 32 kinds");
            }
            for (i, k) in kinds.iter().enumerate() {
                if k.parse::<tutti_store::EventKind>().is_err() {
                    p.add(&format!("kinds[{i}]"), format!("unknown event kind {k:?}"));
                }
            }
        }
    }
}

/// 422 `webhook_target_forbidden`: the URL names an address webhooks may not reach.
fn target_forbidden(e: TargetForbidden) -> ApiError {
    let message = format!(
        "url: {}",
        e.to_string()
            .trim_start_matches("webhook_target_forbidden: ")
    );
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "webhook_target_forbidden",
        message,
    )
    .with_details(serde_json::json!({
        "field": "url",
        "address": e.addr,
        "reason": e.reason.as_str(),
    }))
}

/// `POST /api/v1/ensembles/{id}/webhooks` (owner, performer): a URL naming a forbidden address
/// (link-local, metadata, this server, and loopback or private ranges unless
/// `webhooks.allow_private`) is 422 `webhook_target_forbidden`; names are checked again on
/// the addresses they resolve to at each delivery.
#[utoipa::path(post, path = "/api/v1/ensembles/{id}/webhooks", tag = "events",
    params(("id" = i64, Path, description = "Ensemble id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = NewWebhookIn, security(("bearer" = [])),
    responses((status = 201, description = "Created; the secret is shown once", body = NewWebhookOut)))]
async fn create_webhook(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<NewWebhookIn>,
) -> Result<Response, ApiError> {
    let id = check_id("ensemble", id)?;
    s.ensemble_access(&caller, id, Need::Edit).await?;
    let body = req.body;
    s.webhook_targets
        .check_url(&body.url)
        .map_err(target_forbidden)?;
    idem::run(&s, caller.id(), req.idem, async {
        let w = s
            .store
            .create_webhook(NewWebhook {
                ensemble_id: id,
                url: body.url,
                kinds: body.kinds.unwrap_or_default(),
            })
            .await?;
        let secret = w.secret.clone();
        let out = NewWebhookOut {
            webhook: w.into(),
            secret,
        };
        Ok((StatusCode::CREATED, super::to_value(&out)?))
    })
    .await
}

/// `GET /api/v1/ensembles/{id}/webhooks` (owner, performer)
#[utoipa::path(get, path = "/api/v1/ensembles/{id}/webhooks", tag = "events",
    params(("id" = i64, Path, description = "Ensemble id")), security(("bearer" = [])),
    responses((status = 200, description = "Webhooks", body = WebhookList)))]
async fn list_webhooks(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<WebhookList>, ApiError> {
    let id = check_id("ensemble", id)?;
    s.ensemble_access(&caller, id, Need::Edit).await?;
    let rows = s.store.webhooks_for_ensemble(id).await?;
    Ok(ApiJson(WebhookList {
        items: rows.into_iter().map(WebhookOut::from).collect(),
    }))
}

async fn webhook_access(s: &ApiState, caller: &Caller, id: i64) -> Result<WebhookRow, ApiError> {
    caller.require_staff()?;
    let id = check_id("webhook", id)?;
    let w = s
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("webhook {id}")))?;
    s.ensemble_access(caller, w.ensemble_id, Need::Edit)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found(format!("webhook {id}"))
            } else {
                e
            }
        })?;
    Ok(w)
}

/// `DELETE /api/v1/webhooks/{id}`: the webhook and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "events",
    params(("id" = i64, Path, description = "Webhook id")), security(("bearer" = [])),
    responses((status = 204, description = "Deleted")))]
async fn delete_webhook(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    webhook_access(&s, &caller, id).await?;
    s.store.delete_webhook(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/enable`: re-activates a disabled webhook.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/enable", tag = "events",
    params(("id" = i64, Path, description = "Webhook id")), security(("bearer" = [])),
    responses((status = 200, description = "Active again", body = WebhookOut)))]
async fn enable_webhook(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<WebhookOut>, ApiError> {
    webhook_access(&s, &caller, id).await?;
    Ok(ApiJson(s.store.enable_webhook(id).await?.into()))
}

/// One delivery attempt record.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// Id (the `tutti-delivery` header).
    pub id: i64,
    /// The webhook.
    pub webhook_id: i64,
    /// The event.
    pub event_id: i64,
    /// Attempts so far.
    pub attempt: u32,
    /// `pending`, `delivered`, `retrying` or `gave_up`.
    pub status: String,
    /// HTTP status of the latest attempt.
    pub http_status: Option<u16>,
    /// Error of the latest attempt.
    pub error: Option<String>,
    /// When it is (next) due, unix ms.
    pub next_attempt_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
}

impl From<DeliveryRow> for DeliveryOut {
    fn from(d: DeliveryRow) -> Self {
        DeliveryOut {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            attempt: d.attempt,
            status: serde_json::to_value(d.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            http_status: d.http_status,
            error: d.error,
            next_attempt_at_ms: d.next_attempt_at_ms,
            updated_at_ms: d.updated_at_ms,
        }
    }
}

page_type!(DeliveryPage, DeliveryOut);

/// `GET /api/v1/webhooks/{id}/deliveries`: the delivery log, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "events",
    params(("id" = i64, Path, description = "Webhook id"), ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "Deliveries", body = DeliveryPage)))]
async fn list_deliveries(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<DeliveryPage>, ApiError> {
    webhook_access(&s, &caller, id).await?;
    let (rows, next) = s
        .store
        .webhook_deliveries(id, page::page(q.limit, q.cursor.as_deref())?)
        .await?;
    Ok(ApiJson(DeliveryPage::new(
        rows.into_iter().map(DeliveryOut::from).collect(),
        next,
    )))
}
