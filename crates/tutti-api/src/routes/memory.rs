//! The performance memory, `/api/v1/memory/...`: record and complete episodes of any kind,
//! search moments ("moments like now") and episodes ("episodes like this one", or by text),
//! read an episode and the patterns of a piece, rate a show, the live suggestions of a show
//! (and dismissing or rating one: a step of the show's episode), the memory's status and
//! `check`.
//!
//! Permissions: an episode belongs to an ensemble (or to none). Reading needs read access to
//! its ensemble, recording needs edit access (performer, owner); episodes of no ensemble are
//! the admins' (and the node operator's, who holds the performer token). Searches only ever
//! return what the caller may read. The suggestions of a show follow the show's permissions
//! (the dashboard reads them with the performer token).
//!
//! Must never: answer outside the envelope (every [`MemoryError`] has its stable code), or
//! reveal an episode the caller may not read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tutti_memory::{
    Access, Ack, CheckReport, Durable, Entry, EpisodeHit, EpisodeQuery, EpisodeView, Feedback,
    Memory, MemoryError, MomentQuery, MomentResults, Outcome, PatternReport, Record, Status, Step,
    TextHit,
};
use tutti_store::{Page, UserRole};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::reports::Reader;
use crate::auth::Need;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Problems, Validate};
use crate::ApiState;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(record_episode, search_text))
        .routes(routes!(get_episode))
        .routes(routes!(append))
        .routes(routes!(complete))
        .routes(routes!(search_moments))
        .routes(routes!(search_episodes))
        .routes(routes!(patterns))
        .routes(routes!(rate_show))
        .routes(routes!(suggestions))
        .routes(routes!(suggestion_feedback))
        .routes(routes!(status))
        .routes(routes!(check))
}

/// The error of a memory operation, with its stable code.
pub(crate) fn memory_error(e: MemoryError) -> ApiError {
    match e {
        MemoryError::Invalid {
            code,
            field,
            reason,
        } => {
            let status = if code == "unknown_piece" {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            ApiError::new(status, code, format!("{field}: {reason}"))
                .with_details(serde_json::json!([{"field": field, "problem": reason}]))
        }
        MemoryError::NotFound { what, id } => ApiError::not_found(format!("{what} {id}")),
        MemoryError::Conflict { code, message } => ApiError::conflict(code, message),
        MemoryError::Unavailable(m) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "memory_unavailable", m)
        }
        MemoryError::Store(s) => ApiError::from(s),
        other => ApiError::internal(other),
    }
}

fn mem(s: &ApiState) -> Result<&Memory, ApiError> {
    s.memory.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "memory_unavailable",
            "the performance memory is off on this server (memory.enabled = false)",
        )
    })
}

/// What the caller may read.
async fn access(s: &ApiState, reader: &Reader) -> Result<Access, ApiError> {
    match reader {
        Reader::Operator => Ok(Access::All),
        Reader::Caller(c) if c.is_admin() => Ok(Access::All),
        Reader::Caller(c) => {
            c.require_staff()?;
            let (rows, _) = s
                .store
                .ensembles_for_user(c.id(), Page::first(1000))
                .await?;
            Ok(Access::Ensembles(rows.into_iter().map(|e| e.id).collect()))
        }
    }
}

/// Checks the caller may act on episodes of `ensemble` at `need` (404 when they may not
/// even read them).
async fn may(
    s: &ApiState,
    reader: &Reader,
    ensemble: Option<i64>,
    need: Need,
) -> Result<(), ApiError> {
    match (reader, ensemble) {
        (Reader::Operator, _) => Ok(()),
        (Reader::Caller(c), _) if c.is_admin() => Ok(()),
        (Reader::Caller(c), Some(e)) => s.ensemble_access(c, e, need).await.map(|_| ()),
        (Reader::Caller(c), None) => {
            c.require_staff()?;
            Err(ApiError::not_found("that episode"))
        }
    }
}

fn ack_response(a: Ack, created: bool) -> Response {
    let status = match (a.durable, created) {
        (Durable::Spill, _) => StatusCode::ACCEPTED,
        (Durable::Store, true) => StatusCode::CREATED,
        (Durable::Store, false) => StatusCode::OK,
    };
    (status, axum::Json(AckOut::from(a))).into_response()
}

/// A write the memory has made durable.
#[derive(Debug, Serialize, ToSchema)]
pub struct AckOut {
    /// The episode's key.
    pub key: String,
    /// Its id (null while the write waits in the spill because the store is unavailable).
    pub id: Option<i64>,
    /// `store` (committed) or `spill` (fsync'd to the spill; it reaches the store when the
    /// store is back; answered with 202).
    pub durable: String,
}

impl From<Ack> for AckOut {
    fn from(a: Ack) -> Self {
        AckOut {
            key: a.key,
            id: a.id,
            durable: match a.durable {
                Durable::Store => "store".into(),
                Durable::Spill => "spill".into(),
            },
        }
    }
}

impl Validate for Record {}
impl Validate for MomentQuery {}
impl Validate for EpisodeQuery {}
impl Validate for Outcome {}

/// `POST /api/v1/memory/episodes`: records an episode of any kind, whole (steps, moments,
/// outcome) or opened to append to (`open: true`), as one atomic write. A show's piece must
/// exist. Recording an existing key finds that episode.
#[utoipa::path(post, path = "/api/v1/memory/episodes", tag = "memory",
    request_body = Record, security(("bearer" = [])),
    responses((status = 201, description = "Committed", body = AckOut),
              (status = 202, description = "Spilled: the store is unavailable; it will be committed", body = AckOut)))]
async fn record_episode(
    State(s): State<ApiState>,
    reader: Reader,
    ApiJson(r): ApiJson<Record>,
) -> Result<Response, ApiError> {
    let m = mem(&s)?;
    may(&s, &reader, r.context.ensemble_id, Need::Edit).await?;
    if matches!(r.context.kind.as_str(), "show" | "rehearsal") {
        if let Some(p) = &r.context.piece {
            if s.store.piece_by_slug(p).await?.is_none() {
                return Err(memory_error(MemoryError::coded(
                    "unknown_piece",
                    "context.piece",
                    format!("no piece {p:?} on this server"),
                )));
            }
        }
    }
    let a = m.record(r).await.map_err(memory_error)?;
    Ok(ack_response(a, true))
}

/// Text search of episodes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TextQuery {
    /// Words to find in the episodes' text and notes (FTS5, BM25).
    pub q: String,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this piece.
    pub piece: Option<String>,
    /// Results, 1–100 (default 20).
    pub limit: Option<usize>,
}

impl Validate for TextQuery {
    fn validate(&self, p: &mut Problems) {
        p.len("q", &self.q, 1, 1000);
        if let Some(l) = self.limit {
            if !(1..=100).contains(&l) {
                p.add("limit", format!("must be 1–100 (got {l})"));
            }
        }
    }
}

/// Text hits.
#[derive(Debug, Serialize, ToSchema)]
pub struct TextHits {
    /// Best first.
    pub items: Vec<TextHit>,
}

/// `GET /api/v1/memory/episodes?q=…`: episodes whose text or notes match the words (FTS5,
/// BM25), best first.
#[utoipa::path(get, path = "/api/v1/memory/episodes", tag = "memory",
    params(TextQuery), security(("bearer" = [])),
    responses((status = 200, description = "Matches", body = TextHits)))]
async fn search_text(
    State(s): State<ApiState>,
    reader: Reader,
    ApiQuery(q): ApiQuery<TextQuery>,
) -> Result<axum::Json<TextHits>, ApiError> {
    let m = mem(&s)?;
    let a = access(&s, &reader).await?;
    let items = m
        .search_text(&q.q, q.kind, q.piece, q.limit.unwrap_or(20), &a)
        .await
        .map_err(memory_error)?;
    Ok(axum::Json(TextHits { items }))
}

/// How much of an episode to show.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EpisodeLimit {
    /// Steps and moments to include, 0–10,000 (default 100).
    pub limit: Option<usize>,
}

impl Validate for EpisodeLimit {
    fn validate(&self, p: &mut Problems) {
        if self.limit.is_some_and(|l| l > 10_000) {
            p.add("limit", "must be 0–10000");
        }
    }
}

async fn episode_for(
    s: &ApiState,
    reader: &Reader,
    id: i64,
    need: Need,
) -> Result<tutti_store::MemEpisodeFull, ApiError> {
    let full = s
        .store
        .memory_episode(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("episode {id}")))?;
    may(s, reader, full.episode.context.ensemble_id, need)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found(format!("episode {id}"))
            } else {
                e
            }
        })?;
    Ok(full)
}

/// `GET /api/v1/memory/episodes/{id}`: an episode, its outcome and its first steps and
/// moments.
#[utoipa::path(get, path = "/api/v1/memory/episodes/{id}", tag = "memory",
    params(("id" = i64, Path, description = "Episode id"), EpisodeLimit), security(("bearer" = [])),
    responses((status = 200, description = "The episode", body = EpisodeView)))]
async fn get_episode(
    State(s): State<ApiState>,
    reader: Reader,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<EpisodeLimit>,
) -> Result<axum::Json<EpisodeView>, ApiError> {
    let m = mem(&s)?;
    let full = episode_for(&s, &reader, id, Need::Read).await?;
    Ok(axum::Json(
        m.view(&full, q.limit.unwrap_or(100))
            .map_err(memory_error)?,
    ))
}

/// Steps and moments to append.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendIn {
    /// Steps (up to 10,000).
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Moments (up to 10,000), in the episode's dimensions.
    #[serde(default)]
    pub moments: Vec<tutti_memory::Moment>,
}

impl Validate for AppendIn {}

/// `POST /api/v1/memory/episodes/{id}/steps`: appends steps and moments to an open episode,
/// as one atomic write.
#[utoipa::path(post, path = "/api/v1/memory/episodes/{id}/steps", tag = "memory",
    params(("id" = i64, Path, description = "Episode id")), request_body = AppendIn,
    security(("bearer" = [])),
    responses((status = 200, description = "Committed", body = AckOut),
              (status = 202, description = "Spilled", body = AckOut)))]
async fn append(
    State(s): State<ApiState>,
    reader: Reader,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AppendIn>,
) -> Result<Response, ApiError> {
    let m = mem(&s)?;
    let full = episode_for(&s, &reader, id, Need::Edit).await?;
    let a = m
        .append(&full.episode.key, &b.steps, &b.moments)
        .await
        .map_err(memory_error)?;
    Ok(ack_response(a, false))
}

/// `POST /api/v1/memory/episodes/{id}/complete`: ends an open episode with its outcome; the
/// reward comes from the rating, the engagement (given or measured from its moments) and
/// the completion.
#[utoipa::path(post, path = "/api/v1/memory/episodes/{id}/complete", tag = "memory",
    params(("id" = i64, Path, description = "Episode id")), request_body = Outcome,
    security(("bearer" = [])),
    responses((status = 200, description = "Committed", body = AckOut),
              (status = 202, description = "Spilled", body = AckOut)))]
async fn complete(
    State(s): State<ApiState>,
    reader: Reader,
    ApiPath(id): ApiPath<i64>,
    ApiJson(o): ApiJson<Outcome>,
) -> Result<Response, ApiError> {
    let m = mem(&s)?;
    let full = episode_for(&s, &reader, id, Need::Edit).await?;
    let a = m
        .complete(&full.episode.key, o, None)
        .await
        .map_err(memory_error)?;
    Ok(ack_response(a, false))
}

/// `POST /api/v1/memory/search/moments`: the moments most like the given one, within a kind
/// and piece, optionally a section, a part of the episodes (elapsed fraction) and a date
/// range; diversified by MMR when `diversity` > 0; each hit says why it matched.
#[utoipa::path(post, path = "/api/v1/memory/search/moments", tag = "memory",
    request_body = MomentQuery, security(("bearer" = [])),
    responses((status = 200, description = "Hits", body = MomentResults)))]
async fn search_moments(
    State(s): State<ApiState>,
    reader: Reader,
    ApiJson(q): ApiJson<MomentQuery>,
) -> Result<axum::Json<MomentResults>, ApiError> {
    let m = mem(&s)?.clone();
    let a = access(&s, &reader).await?;
    let r = tokio::task::spawn_blocking(move || m.search_moments(&q, &a))
        .await
        .map_err(ApiError::internal)?
        .map_err(memory_error)?;
    Ok(axum::Json(r))
}

/// Episodes found.
#[derive(Debug, Serialize, ToSchema)]
pub struct EpisodeHits {
    /// Best first.
    pub items: Vec<EpisodeHit>,
}

/// `POST /api/v1/memory/search/episodes`: "episodes like this one" (a stored episode, or a
/// description), by structure, text and context; each hit says why.
#[utoipa::path(post, path = "/api/v1/memory/search/episodes", tag = "memory",
    request_body = EpisodeQuery, security(("bearer" = [])),
    responses((status = 200, description = "Hits", body = EpisodeHits)))]
async fn search_episodes(
    State(s): State<ApiState>,
    reader: Reader,
    ApiJson(q): ApiJson<EpisodeQuery>,
) -> Result<axum::Json<EpisodeHits>, ApiError> {
    let m = mem(&s)?.clone();
    let a = access(&s, &reader).await?;
    let items = tokio::task::spawn_blocking(move || m.similar_episodes(&q, &a))
        .await
        .map_err(ApiError::internal)?
        .map_err(memory_error)?;
    Ok(axum::Json(EpisodeHits { items }))
}

/// Which patterns.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PatternsQuery {
    /// Kind (default `show`).
    pub kind: Option<String>,
    /// Piece.
    pub piece: Option<String>,
}

impl Validate for PatternsQuery {}

/// `GET /api/v1/memory/patterns?kind=&piece=`: the patterns of a piece's episodes:
/// transitions, section changes, overrides and when, step transitions, typical trajectories,
/// outliers, correlations with reward.
#[utoipa::path(get, path = "/api/v1/memory/patterns", tag = "memory",
    params(PatternsQuery), security(("bearer" = [])),
    responses((status = 200, description = "Patterns", body = PatternReport)))]
async fn patterns(
    State(s): State<ApiState>,
    reader: Reader,
    ApiQuery(q): ApiQuery<PatternsQuery>,
) -> Result<axum::Json<PatternReport>, ApiError> {
    let m = mem(&s)?;
    // Patterns aggregate a piece's episodes: callers who are not admins see those of the
    // pieces of their ensembles.
    if let Reader::Caller(c) = &reader {
        if !c.is_admin() {
            let piece = match &q.piece {
                Some(p) => s.store.piece_by_slug(p).await?,
                None => None,
            };
            match piece.and_then(|p| p.ensemble_id) {
                Some(e) => may(&s, &reader, Some(e), Need::Read).await?,
                None => {
                    c.require_staff()?;
                    return Err(memory_error(MemoryError::coded(
                        "unknown_piece",
                        "piece",
                        "no piece of your ensembles by that name",
                    )));
                }
            }
        }
    }
    let kind = q.kind.unwrap_or_else(|| "show".into());
    Ok(axum::Json(
        m.patterns(&kind, q.piece.as_deref())
            .map_err(memory_error)?,
    ))
}

/// A rating.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingIn {
    /// 0–1.
    pub rating: f64,
    /// Notes (replace the episode's).
    #[serde(default)]
    pub notes: Option<String>,
}

impl Validate for RatingIn {
    fn validate(&self, p: &mut Problems) {
        if !self.rating.is_finite() || !(0.0..=1.0).contains(&self.rating) {
            p.add("rating", "must be 0–1");
        }
    }
}

/// `POST /api/v1/memory/shows/{id}/rating`: rates a show that ended (its latest episode);
/// the reward is recomputed.
#[utoipa::path(post, path = "/api/v1/memory/shows/{id}/rating", tag = "memory",
    params(("id" = i64, Path, description = "Show id")), request_body = RatingIn,
    security(("bearer" = [])),
    responses((status = 200, description = "Committed", body = AckOut),
              (status = 202, description = "Spilled", body = AckOut)))]
async fn rate_show(
    State(s): State<ApiState>,
    reader: Reader,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<RatingIn>,
) -> Result<Response, ApiError> {
    let m = mem(&s)?;
    let show = reader.show(&s, id).await?;
    if let Reader::Caller(c) = &reader {
        super::shows::show_access(&s, c, show.id, Need::Operate).await?;
    }
    let ep = m
        .latest_of(&format!("show:{}", show.id))
        .await
        .map_err(memory_error)?
        .ok_or_else(|| ApiError::not_found(format!("an episode of show {}", show.id)))?;
    let a = m
        .rate(ep.id, b.rating, b.notes)
        .await
        .map_err(memory_error)?;
    Ok(ack_response(a, false))
}

/// Which show's suggestions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShowCode {
    /// The show's join code.
    pub show: String,
}

impl Validate for ShowCode {
    fn validate(&self, p: &mut Problems) {
        if self.show.is_empty()
            || self.show.len() > 64
            || !self
                .show
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            p.add(
                "show",
                "must be a show code (1–64 of A-Z, a-z, 0-9, '-', '_')",
            );
        }
    }
}

/// A show's live suggestions and the memory's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionsOut {
    /// The show.
    pub show: String,
    /// The suggestions (empty before the show has past episodes to learn from).
    pub entry: Option<Entry>,
    /// The memory's circuit breaker around the store: `closed`, `open`, `half_open`.
    pub breaker: String,
    /// Writes waiting (in memory and spilled).
    pub pending_writes: u64,
}

async fn show_reader_check(
    s: &ApiState,
    reader: &Reader,
    code: &str,
    need: Need,
) -> Result<(), ApiError> {
    let show = s
        .store
        .show_by_code(code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("show {code}")))?;
    reader.show(s, show.id).await?;
    if let Reader::Caller(c) = reader {
        super::shows::show_access(s, c, show.id, need).await?;
    }
    Ok(())
}

/// `GET /api/v1/memory/suggestions?show=CODE`: the live suggestions of a show (computed at
/// most once a second by the server), for the performer dashboard.
#[utoipa::path(get, path = "/api/v1/memory/suggestions", tag = "memory",
    params(ShowCode), security(("bearer" = [])),
    responses((status = 200, description = "Suggestions", body = SuggestionsOut)))]
async fn suggestions(
    State(s): State<ApiState>,
    reader: Reader,
    ApiQuery(q): ApiQuery<ShowCode>,
) -> Result<axum::Json<SuggestionsOut>, ApiError> {
    let m = mem(&s)?;
    show_reader_check(&s, &reader, &q.show, Need::Read).await?;
    let st = m.status();
    Ok(axum::Json(SuggestionsOut {
        entry: m.board().get(&q.show),
        show: q.show,
        breaker: st.breaker.as_str().into(),
        pending_writes: st.buffered as u64 + st.spilled,
    }))
}

/// Feedback on a suggestion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackIn {
    /// `dismiss` (hide it for this show) or `rate`.
    pub action: String,
    /// For `rate`: 0–1.
    #[serde(default)]
    pub rating: Option<f64>,
}

impl Validate for FeedbackIn {
    fn validate(&self, p: &mut Problems) {
        match (self.action.as_str(), self.rating) {
            ("dismiss", None) => {}
            ("rate", Some(r)) if r.is_finite() && (0.0..=1.0).contains(&r) => {}
            ("rate", _) => p.add("rating", "a rating of 0–1 is required"),
            ("dismiss", Some(_)) => p.add("rating", "only with action rate"),
            _ => p.add("action", "must be dismiss or rate"),
        }
    }
}

/// The feedback, recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackOut {
    /// The suggestion.
    pub suggestion: String,
    /// `dismiss` or `rate`.
    pub action: String,
    /// The episode it was recorded in (as a `feedback` step).
    pub episode_key: String,
}

/// `POST /api/v1/memory/suggestions/{id}?show=CODE`: dismisses or rates a suggestion; the
/// feedback is a step of the show's episode.
#[utoipa::path(post, path = "/api/v1/memory/suggestions/{id}", tag = "memory",
    params(("id" = String, Path, description = "Suggestion id"), ShowCode),
    request_body = FeedbackIn, security(("bearer" = [])),
    responses((status = 200, description = "Recorded", body = FeedbackOut)))]
async fn suggestion_feedback(
    State(s): State<ApiState>,
    reader: Reader,
    axum::extract::Path(id): axum::extract::Path<String>,
    ApiQuery(q): ApiQuery<ShowCode>,
    ApiJson(b): ApiJson<FeedbackIn>,
) -> Result<axum::Json<FeedbackOut>, ApiError> {
    let m = mem(&s)?;
    if id.is_empty() || id.len() > 200 {
        return Err(ApiError::not_found("that suggestion"));
    }
    show_reader_check(&s, &reader, &q.show, Need::Operate).await?;
    let f = match b.rating {
        Some(r) => Feedback::Rate(r),
        None => Feedback::Dismiss,
    };
    let (sugg, key) = m
        .board()
        .feedback(&q.show, &id, f)
        .ok_or_else(|| ApiError::not_found(format!("suggestion {id}")))?;
    let step = Step {
        at_ms: s.now_ms(),
        kind: "feedback".into(),
        data: serde_json::json!({
            "label": format!("feedback {}", b.action),
            "suggestion": sugg.id, "text": sugg.text, "action": b.action, "rating": b.rating,
        }),
    };
    m.append_steps(&key, &[step]).map_err(memory_error)?;
    Ok(axum::Json(FeedbackOut {
        suggestion: id,
        action: b.action,
        episode_key: key,
    }))
}

/// `GET /api/v1/memory/status`: the memory's breaker, queue, spill, counters and indexes.
#[utoipa::path(get, path = "/api/v1/memory/status", tag = "memory",
    security(("bearer" = [])),
    responses((status = 200, description = "Status", body = Status)))]
async fn status(State(s): State<ApiState>, reader: Reader) -> Result<axum::Json<Status>, ApiError> {
    if let Reader::Caller(c) = &reader {
        c.require_staff()?;
    }
    Ok(axum::Json(mem(&s)?.status()))
}

/// Whether to repair.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// Repair what is found (default false).
    pub repair: Option<bool>,
}

impl Validate for CheckQuery {}

/// `POST /api/v1/memory/check?repair=`: verifies the indexes against the store (every
/// completed episode indexed and readable, the text index, the counters, the journal) and,
/// with `repair=true`, repairs them. Admins and the node operator.
#[utoipa::path(post, path = "/api/v1/memory/check", tag = "memory",
    params(CheckQuery), security(("bearer" = [])),
    responses((status = 200, description = "What was found", body = CheckReport)))]
async fn check(
    State(s): State<ApiState>,
    reader: Reader,
    ApiQuery(q): ApiQuery<CheckQuery>,
) -> Result<axum::Json<CheckReport>, ApiError> {
    if let Reader::Caller(c) = &reader {
        if c.user.role != UserRole::Admin {
            return Err(ApiError::forbidden("only an admin may check the memory"));
        }
    }
    let r = mem(&s)?
        .check(q.repair.unwrap_or(false))
        .await
        .map_err(memory_error)?;
    Ok(axum::Json(r))
}
