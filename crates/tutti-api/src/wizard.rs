//! The guided setup over HTTP: list the domain packs, start a wizard session, answer one
//! question at a time (the next one is chosen by coverage and dependencies), see the
//! coverage, warnings, conflicts and the draft so far, and turn the session into a draft
//! spec version of a piece. Sessions are kept in the store (`wizard_sessions`), so they
//! survive restarts and can be resumed from another device.
//!
//! Must never: let anyone but the session's owner (or an admin) read or change it (others
//! get 404), write a spec version for someone who may not edit the piece, or keep a state
//! the pack cannot resume (a refused answer changes nothing).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tutti_store::{NewSpecDraft, NewWizardSession, WizardSessionRow};
use tutti_wizard::{Session, SessionState, Wizard, WizardError};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Need};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Create, Problems, Validate};
use crate::routes::{check_id, to_value, SpecVersionOut};
use crate::{idem, ApiState};

/// The wizard's routes (absolute paths under `/api/v1`), merged beside `routes::api` in
/// `openapi::build`.
pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_packs))
        .routes(routes!(create_session))
        .routes(routes!(get_session))
        .routes(routes!(answer))
        .routes(routes!(draft))
}

/// The packs of a state when none were configured: the built-in ones (checked by
/// tutti-wizard's tests; an empty set is the fallback should that ever fail).
pub(crate) fn default_wizard() -> Arc<Wizard> {
    Arc::new(
        Wizard::builtin()
            .or_else(|_| Wizard::new(Vec::new()))
            .expect("an empty set of packs is always valid"),
    )
}

/// A category of questions.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryOut {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Answered questions that cover it.
    pub target: u32,
}

/// A domain pack.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackOut {
    /// Id, e.g. `electronic`.
    pub id: String,
    /// Title.
    pub title: String,
    /// What kind of work it is for.
    pub description: String,
    /// The pack's version.
    pub version: String,
    /// Number of questions.
    pub questions: usize,
    /// The categories, in order.
    pub categories: Vec<CategoryOut>,
}

/// The packs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackList {
    /// All packs, built-in first.
    pub items: Vec<PackOut>,
}

/// A question as the client shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionOut {
    /// Id (what `answers` takes as `question`).
    pub id: String,
    /// The question.
    pub text: String,
    /// Help text.
    pub help: String,
    /// An example answer (of the question's type: a string, number, boolean or list).
    pub example: Value,
    /// Category id.
    pub category: String,
    /// Category title.
    pub category_title: String,
    /// Whether it may not be skipped.
    pub required: bool,
    /// The answer type: `{"type": "text"|"number"|"integer"|"boolean"|"choice"|"multi_choice", ...}`.
    #[schema(value_type = Object)]
    pub answer: Value,
    /// What the answer type accepts, in words.
    pub expected: String,
}

/// A finding of the pack's rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingOut {
    /// The rule's id.
    pub rule: String,
    /// What it says.
    pub message: String,
}

/// A wizard session: where it stands and what it drafts so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    /// Id.
    pub id: i64,
    /// The pack's id.
    pub pack: String,
    /// The piece the last draft went to.
    pub piece_id: Option<i64>,
    /// The next question (`null` when every applicable question is answered or skipped).
    pub question: Option<QuestionOut>,
    /// Answers by question id.
    #[schema(value_type = Object)]
    pub answers: Value,
    /// Skipped question ids.
    pub skipped: Vec<String>,
    /// Coverage per category and the 0–100 maturity score.
    #[schema(value_type = Object)]
    pub coverage: Value,
    /// Warnings of the rules.
    pub warnings: Vec<FindingOut>,
    /// Conflicts of the rules (the draft is not ready while there are any).
    pub conflicts: Vec<FindingOut>,
    /// Rules that fired.
    pub fired_rules: Vec<String>,
    /// No conflicts and no required question missing.
    pub ready: bool,
    /// The draft spec so far.
    #[schema(value_type = Object)]
    pub draft: Value,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
}

fn wizard_error(e: WizardError) -> ApiError {
    match e {
        WizardError::UnknownPack { .. } => ApiError::field("pack", e.to_string()),
        WizardError::UnknownQuestion { .. } => ApiError::field("question", e.to_string()),
        WizardError::NotApplicable { .. } => ApiError::field("question", e.to_string()),
        WizardError::InvalidAnswer { .. } | WizardError::Required { .. } => {
            ApiError::field("answer", e.to_string())
        }
        other => ApiError::internal(other),
    }
}

fn question_out(session: &Session) -> Option<QuestionOut> {
    let q = session.next_question()?;
    let category_title = session
        .pack()
        .categories()
        .iter()
        .find(|c| c.id == q.category)
        .map_or_else(|| q.category.clone(), |c| c.title.clone());
    Some(QuestionOut {
        id: q.id.clone(),
        text: q.text.clone(),
        help: q.help.clone(),
        example: q.example.clone(),
        category: q.category.clone(),
        category_title,
        required: q.required,
        answer: serde_json::to_value(&q.answer).unwrap_or(Value::Null),
        expected: q.answer.expected(),
    })
}

fn session_out(row: &WizardSessionRow, session: &Session) -> Result<SessionOut, ApiError> {
    let ev = session.evaluate().map_err(wizard_error)?;
    let findings = |v: &[tutti_wizard::Finding]| {
        v.iter()
            .map(|f| FindingOut {
                rule: f.rule.clone(),
                message: f.message.clone(),
            })
            .collect()
    };
    Ok(SessionOut {
        id: row.id,
        pack: session.pack().id().to_owned(),
        piece_id: row.piece_id,
        question: question_out(session),
        answers: to_value(session.answers())?,
        skipped: session.state().skipped.iter().cloned().collect(),
        coverage: to_value(&ev.coverage)?,
        warnings: findings(&ev.warnings),
        conflicts: findings(&ev.conflicts),
        fired_rules: ev.fired_rules.clone(),
        ready: ev.is_ready(),
        draft: to_value(&ev.spec)?,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    })
}

/// Loads the caller's session (404 for anyone else's) and resumes it with its pack.
async fn load(
    s: &ApiState,
    caller: &Caller,
    id: i64,
) -> Result<(WizardSessionRow, Session), ApiError> {
    caller.require_staff()?;
    let id = check_id("wizard session", id)?;
    let row = s
        .store
        .wizard_session(id)
        .await?
        .filter(|r| r.user_id == caller.id() || caller.is_admin())
        .ok_or_else(|| ApiError::not_found(format!("wizard session {id}")))?;
    let state: SessionState = serde_json::from_str(&row.state_json).map_err(|e| {
        ApiError::conflict(
            "conflict",
            format!("wizard session {id} cannot be resumed: {e}"),
        )
    })?;
    let session = s.wizard.resume(state).map_err(|e| {
        ApiError::conflict(
            "conflict",
            format!(
                "wizard session {id} cannot be resumed: {e} (the pack changed or is no longer \
                 installed; start a new session)"
            ),
        )
    })?;
    Ok((row, session))
}

fn state_json(session: &Session) -> Result<String, ApiError> {
    serde_json::to_string(session.state()).map_err(ApiError::internal)
}

/// `GET /api/v1/wizard/packs`
#[utoipa::path(get, path = "/api/v1/wizard/packs", tag = "wizard", security(("bearer" = [])),
    responses((status = 200, description = "The domain packs", body = PackList)))]
async fn list_packs(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<ApiJson<PackList>, ApiError> {
    caller.require_staff()?;
    let items = s
        .wizard
        .packs()
        .iter()
        .map(|p| PackOut {
            id: p.id().to_owned(),
            title: p.title().to_owned(),
            description: p.description().to_owned(),
            version: p.version().to_owned(),
            questions: p.questions().len(),
            categories: p
                .categories()
                .iter()
                .map(|c| CategoryOut {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    target: c.target,
                })
                .collect(),
        })
        .collect();
    Ok(ApiJson(PackList { items }))
}

/// A new wizard session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSessionIn {
    /// The pack's id.
    pub pack: String,
}

impl Validate for NewSessionIn {
    fn validate(&self, p: &mut Problems) {
        p.len("pack", &self.pack, 1, 64);
    }
}

/// `POST /api/v1/wizard/sessions`: start answering a pack.
#[utoipa::path(post, path = "/api/v1/wizard/sessions", tag = "wizard",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = NewSessionIn, security(("bearer" = [])),
    responses((status = 201, description = "The session and its first question", body = SessionOut)))]
async fn create_session(
    State(s): State<ApiState>,
    caller: Caller,
    req: Create<NewSessionIn>,
) -> Result<Response, ApiError> {
    caller.require_staff()?;
    let session = s.wizard.start(&req.body.pack).map_err(wizard_error)?;
    let state = state_json(&session)?;
    idem::run(&s, caller.id(), req.idem, async {
        let row = s
            .store
            .create_wizard_session(NewWizardSession {
                user_id: caller.id(),
                pack_id: session.pack().id().to_owned(),
                state_json: state,
                at_ms: s.now_ms(),
            })
            .await?;
        Ok((
            StatusCode::CREATED,
            to_value(&session_out(&row, &session)?)?,
        ))
    })
    .await
}

/// `GET /api/v1/wizard/sessions/{id}`
#[utoipa::path(get, path = "/api/v1/wizard/sessions/{id}", tag = "wizard",
    params(("id" = i64, Path, description = "Session id")), security(("bearer" = [])),
    responses((status = 200, description = "The session", body = SessionOut)))]
async fn get_session(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<SessionOut>, ApiError> {
    let (row, session) = load(&s, &caller, id).await?;
    Ok(ApiJson(session_out(&row, &session)?))
}

/// An answer (or, with `null`, skipping a question that is not required).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerIn {
    /// The question's id.
    pub question: String,
    /// The answer, of the question's type (`null` skips it). A string is also read like a
    /// line typed in the terminal (`"30 Hz"`, `"yes"`, a choice's label or number).
    pub answer: Value,
}

impl Validate for AnswerIn {
    fn validate(&self, p: &mut Problems) {
        p.len("question", &self.question, 1, 64);
    }
}

/// `POST /api/v1/wizard/sessions/{id}/answers`: answer, re-answer or skip a question.
#[utoipa::path(post, path = "/api/v1/wizard/sessions/{id}/answers", tag = "wizard",
    params(("id" = i64, Path, description = "Session id")),
    request_body = AnswerIn, security(("bearer" = [])),
    responses((status = 200, description = "The session with the next question", body = SessionOut)))]
async fn answer(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AnswerIn>,
) -> Result<ApiJson<SessionOut>, ApiError> {
    let (_, mut session) = load(&s, &caller, id).await?;
    let is_text = matches!(
        session.pack().question(&body.question).map(|q| &q.answer),
        Some(tutti_wizard::AnswerType::Text { .. })
    );
    match body.answer {
        Value::Null => {
            if !session.applies(&body.question) && session.pack().question(&body.question).is_some()
            {
                // Skipping a question that does not apply is harmless but says nothing.
                return Err(ApiError::field(
                    "question",
                    format!("question '{}' does not apply now", body.question),
                ));
            }
            session.skip(&body.question).map_err(wizard_error)?;
        }
        Value::String(t) if !is_text => {
            session
                .answer_text(&body.question, &t)
                .map_err(wizard_error)?;
        }
        v => {
            session.answer(&body.question, v).map_err(wizard_error)?;
        }
    }
    // An answer that makes the rules draft an invalid spec is refused, not stored (the
    // session would no longer evaluate).
    if let Err(e) = session.evaluate() {
        return Err(ApiError::field(
            "answer",
            format!("with this answer the draft is invalid: {e}"),
        ));
    }
    let row = s
        .store
        .update_wizard_session(id, &state_json(&session)?, None, s.now_ms())
        .await?;
    Ok(ApiJson(session_out(&row, &session)?))
}

/// Where the draft goes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftIn {
    /// The piece that receives the draft spec version.
    pub piece_id: i64,
    /// A note kept with the version (default: the pack and the maturity).
    pub note: Option<String>,
}

impl Validate for DraftIn {
    fn validate(&self, p: &mut Problems) {
        if self.piece_id < 1 {
            p.add("piece_id", "must be a piece id (≥ 1)");
        }
        if let Some(n) = &self.note {
            p.len("note", n, 0, 2000);
        }
    }
}

/// `POST /api/v1/wizard/sessions/{id}/draft`: the drafted spec as a new draft version of a
/// piece the caller may edit.
#[utoipa::path(post, path = "/api/v1/wizard/sessions/{id}/draft", tag = "wizard",
    params(("id" = i64, Path, description = "Session id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response")),
    request_body = DraftIn, security(("bearer" = [])),
    responses((status = 201, description = "The draft spec version", body = SpecVersionOut)))]
async fn draft(
    State(s): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    req: Create<DraftIn>,
) -> Result<Response, ApiError> {
    let (_, session) = load(&s, &caller, id).await?;
    let body = req.body;
    s.piece_access(&caller, body.piece_id, Need::Edit).await?;
    let ev = session.evaluate().map_err(wizard_error)?;
    let note = body.note.unwrap_or_else(|| {
        format!(
            "wizard session {id}: pack {}, maturity {}%{}",
            session.pack().id(),
            ev.coverage.maturity,
            if ev.conflicts.is_empty() {
                String::new()
            } else {
                format!(", {} conflict(s)", ev.conflicts.len())
            }
        )
    });
    let state = state_json(&session)?;
    idem::run(&s, caller.id(), req.idem, async {
        let v = s
            .store
            .create_spec_draft(NewSpecDraft {
                piece_id: body.piece_id,
                spec_json: ev.spec.to_json(),
                created_by: Some(caller.id()),
                note: Some(note),
                at_ms: s.now_ms(),
            })
            .await?;
        // Remember the piece for the session (best effort: the version is what counts, and
        // a failed request must not have written it).
        if let Err(e) = s
            .store
            .update_wizard_session(id, &state, Some(body.piece_id), s.now_ms())
            .await
        {
            tracing::warn!(session = id, error = %e, "wizard session: piece not recorded");
        }
        Ok((StatusCode::CREATED, to_value(&SpecVersionOut::from(v))?))
    })
    .await
}

/// The wizard's request body types by name, parsed and validated as their routes do; `None`
/// for a name not listed (see [`crate::check_body`]).
pub(crate) fn check_body(name: &str, bytes: &[u8]) -> Option<Result<(), ApiError>> {
    use crate::extract::parse_body;
    let h = &crate::extract::json_headers();
    Some(match name {
        "wizard_session" => parse_body::<NewSessionIn>(h, bytes).map(drop),
        "wizard_answer" => parse_body::<AnswerIn>(h, bytes).map(drop),
        "wizard_draft" => parse_body::<DraftIn>(h, bytes).map(drop),
        _ => return None,
    })
}
