//! After the show: its report (`GET /shows/{id}/report`, HTML or `?format=json`), its time
//! series (`GET /shows/{id}/series`, CSV or JSON), and the same report as a page for people
//! signed in with a cookie session (`/shows/{id}/report`, outside `/api/v1`). Readable by
//! whoever may read the show, and by the node's performer token (the dashboard's "Report").
//!
//! Must never: build a report on an async worker thread (it parses every snapshot of the
//! show: that runs on the blocking pool, a few at a time), or reveal that a show the caller
//! may not read exists.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tutti_report::{ReportError, SeriesFormat};
use tutti_store::ShowRow;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::check_id;
use super::shows::show_access;
use crate::auth::{self, Caller, Need};
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, Problems, Validate};
use crate::ApiState;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(show_report))
        .routes(routes!(show_series))
        .routes(routes!(report_link))
}

/// Short-lived keys that open one show's report page without a session: the dashboard,
/// signed in with a bearer or performer token, asks for one and opens the page in a new tab.
/// Kept in memory (hashed), for [`ReportLinks::TTL_MS`].
#[derive(Default)]
pub(crate) struct ReportLinks {
    keys: std::sync::Mutex<std::collections::HashMap<tutti_store::TokenHash, (i64, i64)>>,
}

impl ReportLinks {
    /// How long a link opens its report.
    pub const TTL_MS: i64 = 10 * 60 * 1000;
    const MAX: usize = 1024;

    fn issue(&self, show_id: i64, now: i64) -> String {
        let key = auth::new_secret("trk_");
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.retain(|_, (_, exp)| *exp > now);
        if keys.len() >= Self::MAX {
            // Full of live keys: the oldest go first.
            let mut by_expiry: Vec<_> = keys.iter().map(|(k, (_, e))| (*e, *k)).collect();
            by_expiry.sort_unstable();
            for (_, k) in by_expiry.into_iter().take(Self::MAX / 4) {
                keys.remove(&k);
            }
        }
        keys.insert(auth::token_hash(&key), (show_id, now + Self::TTL_MS));
        key
    }

    fn check(&self, key: &str, show_id: i64, now: i64) -> bool {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(&auth::token_hash(key))
            .is_some_and(|&(id, exp)| id == show_id && exp > now)
    }
}

/// Who reads a report: an API caller with read access to the show's ensemble, or the holder
/// of this node's performer token (who runs the shows on it).
pub(crate) enum Reader {
    /// A signed-in caller.
    Caller(Caller),
    /// The node's performer token.
    Operator,
}

impl FromRequestParts<ApiState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        if let (Some(token), Some(live)) = (auth::bearer(parts), &state.live) {
            if live.performer_token_ok(token) {
                return Ok(Reader::Operator);
            }
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(Reader::Caller)
    }
}

impl Reader {
    /// The show, when this reader may read it (404 otherwise).
    pub(crate) async fn show(&self, s: &ApiState, id: i64) -> Result<ShowRow, ApiError> {
        match self {
            Reader::Caller(c) => show_access(s, c, id, Need::Read).await,
            Reader::Operator => {
                let id = check_id("show", id)?;
                s.store
                    .show(id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("show {id}")))
            }
        }
    }
}

/// The report page loads nothing and runs nothing: its policy says so.
pub const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/// An HTML page with the report's policy.
fn page_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, REPORT_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(html),
    )
        .into_response()
}

fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::NotFound(what) => ApiError::not_found(what),
        ReportError::Invalid { field, reason } => ApiError::field(field, reason),
        ReportError::Spec(m) => ApiError::new(
            StatusCode::CONFLICT,
            "corrupt_show",
            format!("the show's spec version {m}"),
        ),
        other => ApiError::internal(other),
    }
}

fn range_problems(p: &mut Problems, from: Option<f64>, to: Option<f64>) {
    if let Err(ReportError::Invalid { field, reason }) = tutti_report::load::check_range(from, to) {
        p.add(field, reason);
    }
}

/// Format and range of a report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `html` (default) or `json` (the data behind the page).
    pub format: Option<String>,
    /// Start, seconds from the show's first recorded state (default 0).
    pub from: Option<f64>,
    /// End, seconds from the show's first recorded state (default: the end).
    pub to: Option<f64>,
    /// A key from `POST /reports/{code}/link` (the page only).
    pub key: Option<String>,
}

impl Validate for ReportQuery {
    fn validate(&self, p: &mut Problems) {
        if let Some(f) = &self.format {
            if f != "html" && f != "json" {
                p.add("format", "must be html or json");
            }
        }
        range_problems(p, self.from, self.to);
    }
}

/// Runs `work` on the blocking pool, at most two at a time on this node: a report parses
/// every snapshot of a show, which must not hold an async worker.
async fn on_blocking_pool<T, F, Fut>(s: &ApiState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(tutti_store::Store) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, ReportError>>,
{
    let _permit = s
        .reports
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the report limiter is closed"))?;
    let store = s.store.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work(store)))
        .await
        .map_err(ApiError::internal)?
        .map_err(report_error)
}

/// Builds a report.
async fn build(
    s: &ApiState,
    show: ShowRow,
    from: Option<f64>,
    to: Option<f64>,
) -> Result<tutti_report::Report, ApiError> {
    let range = tutti_report::load::check_range(from, to).map_err(report_error)?;
    on_blocking_pool(s, move |store| async move {
        let loaded = tutti_report::load::show(&store, show).await?;
        tutti_report::load::report(&store, loaded, range).await
    })
    .await
}

async fn html_of(report: tutti_report::Report) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || tutti_report::html::render(&report))
        .await
        .map_err(ApiError::internal)?
        .map_err(report_error)
}

/// `GET /api/v1/shows/{id}/report`: the show's report as one self-contained HTML page
/// (charts as inline SVG, nothing loaded from elsewhere), or with `format=json` the data
/// behind it. A show that has not ended gets its report so far (`running: true`).
#[utoipa::path(get, path = "/api/v1/shows/{id}/report", tag = "shows",
    params(("id" = i64, Path, description = "Show id"), ReportQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The report (HTML, or JSON with format=json)", content(
        (String = "text/html"),
        (Object = "application/json")))))]
async fn show_report(
    State(s): State<ApiState>,
    reader: Reader,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let show = reader.show(&s, id).await?;
    let report = build(&s, show, q.from, q.to).await?;
    if q.format.as_deref() == Some("json") {
        return Ok(axum::Json(report).into_response());
    }
    Ok(page_response(StatusCode::OK, html_of(report).await?))
}

/// Format and range of a time series.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// `csv` (default) or `json`.
    pub format: Option<String>,
    /// Start, seconds from the show's first recorded state (default 0).
    pub from: Option<f64>,
    /// End, seconds from the show's first recorded state (default: the end).
    pub to: Option<f64>,
}

impl Validate for SeriesQuery {
    fn validate(&self, p: &mut Problems) {
        if let Some(f) = &self.format {
            if f.parse::<SeriesFormat>().is_err() {
                p.add("format", "must be csv or json");
            }
        }
        range_problems(p, self.from, self.to);
    }
}

/// `GET /api/v1/shows/{id}/series`: one row per recorded state (about one a second), as CSV
/// (default) or JSON; the columns are documented in `docs/report.md`.
#[utoipa::path(get, path = "/api/v1/shows/{id}/series", tag = "shows",
    params(("id" = i64, Path, description = "Show id"), SeriesQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The time series (CSV, or JSON with format=json)", content(
        (String = "text/csv"),
        (Object = "application/json")))))]
async fn show_series(
    State(s): State<ApiState>,
    reader: Reader,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<SeriesQuery>,
) -> Result<Response, ApiError> {
    let show = reader.show(&s, id).await?;
    let format = q
        .format
        .as_deref()
        .unwrap_or("csv")
        .parse::<SeriesFormat>()
        .map_err(report_error)?;
    let range = tutti_report::load::check_range(q.from, q.to).map_err(report_error)?;
    let body = on_blocking_pool(&s, move |store| async move {
        let loaded = tutti_report::load::show(&store, show).await?;
        tutti_report::load::series(&store, &loaded, range, format, Vec::new()).await
    })
    .await?;
    let mime = match format {
        SeriesFormat::Csv => "text/csv; charset=utf-8",
        SeriesFormat::Json => "application/json",
    };
    Ok(([(header::CONTENT_TYPE, mime)], body).into_response())
}

/// A small page for a failure, in the report's place.
fn error_page(e: &ApiError) -> Response {
    let hint = if e.status == StatusCode::UNAUTHORIZED {
        "<p><a href=\"/web/setup.html\">Sign in</a>, then open this page again.</p>"
    } else {
        ""
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Report: {}</title>\
         </head><body style=\"font-family:system-ui,sans-serif;margin:3em\"><h1>No report</h1>\
         <p>{} (<code>{}</code>)</p>{hint}</body></html>",
        e.status.as_u16(),
        tutti_report::html::esc(&e.message),
        e.code
    );
    page_response(e.status, body)
}

/// A link that opens a show's report page in a browser without a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportLinkOut {
    /// The page, relative to the server (`/shows/{id}/report?key=…`).
    pub url: String,
    /// Seconds the link works.
    pub expires_in: i64,
}

/// `POST /api/v1/reports/{code}/link`: a short-lived link to the report page of the show
/// with this join code (what the dashboard's "Report" button opens).
#[utoipa::path(post, path = "/api/v1/reports/{code}/link", tag = "shows",
    params(("code" = String, Path, description = "Show join code")),
    security(("bearer" = [])),
    responses((status = 201, description = "A link", body = ReportLinkOut)))]
async fn report_link(
    State(s): State<ApiState>,
    reader: Reader,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let bad = code.is_empty()
        || code.len() > 32
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bad {
        return Err(ApiError::not_found("that show"));
    }
    let show = s
        .store
        .show_by_code(&code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("show {code}")))?;
    let show = reader.show(&s, show.id).await?;
    let key = s.report_links.issue(show.id, s.now_ms());
    Ok((
        StatusCode::CREATED,
        axum::Json(ReportLinkOut {
            url: format!("/shows/{}/report?key={key}", show.id),
            expires_in: ReportLinks::TTL_MS / 1000,
        }),
    )
        .into_response())
}

/// `/shows/{id}/report` (a page, not part of `/api/v1`): the report for someone signed in
/// with a cookie session or a bearer token, or holding a key from `/reports/{code}/link`;
/// failures are pages too.
pub(crate) async fn page(
    State(s): State<ApiState>,
    reader: Result<Reader, ApiError>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Response {
    let result = async {
        let keyed = q
            .key
            .as_deref()
            .is_some_and(|k| s.report_links.check(k, id, s.now_ms()));
        let reader = if keyed { Reader::Operator } else { reader? };
        let show = reader.show(&s, id).await?;
        let report = build(&s, show, q.from, q.to).await?;
        html_of(report).await
    }
    .await;
    match result {
        Ok(html) => page_response(StatusCode::OK, html),
        Err(e) => error_page(&e),
    }
}
