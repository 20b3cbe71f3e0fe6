//! The API's one error type, [`ApiError`], and the envelope every failure is sent in:
//! `{"error": {"code", "message", "details", "request_id"}}` with a stable `code`.
//!
//! Handlers return `ApiError`; the request-id middleware ([`crate::middleware`]) writes the
//! envelope with the request's id, and also wraps any error response that did not come from
//! here (axum's own 404/405/413 and rejections) so no other error shape ever leaves the API.
//!
//! Must never: put a secret, a password hash or an SQL message into `message` or `details`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use tutti_store::{StorageProblem, StoreError};
use utoipa::ToSchema;

/// An API failure: HTTP status, stable code, human message, structured details.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (see `docs/api.md`).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Structured details (`null`, a list of field problems, `{"allowed": [...]}`, ...).
    pub details: Value,
    /// Seconds the client should wait before retrying, sent as `Retry-After` (always set for
    /// `rate_limited` and `unavailable`).
    pub retry_after_s: Option<u64>,
}

/// The envelope's body (for the OpenAPI document).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// One error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code, e.g. `validation_failed`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Structured details or null: a list of `{field, problem}` for `validation_failed`,
    /// `{from, to, allowed}` for `invalid_transition`.
    pub details: Value,
    /// The request's id (also in the `x-request-id` header).
    pub request_id: String,
}

/// One problem with one field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field, dotted for nested ones (`spec.params[0].min`).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after_s: None,
        }
    }

    /// 429 `rate_limited` with `Retry-After: retry_after_s` (at least 1): this client sent too
    /// much (failed sign-ins, guest tokens) or the server's password hashing is saturated.
    pub fn rate_limited(retry_after_s: u64, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        e.retry_after_s = Some(retry_after_s.max(1));
        e
    }

    /// 503 `unavailable` with `Retry-After: retry_after_s` (at least 1): a part of the server
    /// is saturated or not running; nothing about this client.
    pub fn unavailable(retry_after_s: u64, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after_s = Some(retry_after_s.max(1));
        e
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422 `validation_failed` with one problem per field.
    pub fn validation(problems: Vec<(String, String)>) -> Self {
        let message = problems
            .iter()
            .map(|(f, p)| format!("{f}: {p}"))
            .collect::<Vec<_>>()
            .join("; ");
        let details: Vec<FieldProblem> = problems
            .into_iter()
            .map(|(field, problem)| FieldProblem { field, problem })
            .collect();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .with_details(json!(details))
    }

    /// 422 `validation_failed` for one field.
    pub fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::validation(vec![(field.into(), problem.into())])
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409 with a code (`conflict`, `already_exists`, ...).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500 `internal`; the cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error in the API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the cause",
        )
    }

    /// The envelope for this error and request id.
    pub fn envelope(&self, request_id: &str) -> Value {
        json!({"error": {
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "request_id": request_id,
        }})
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid {
                field,
                value: _,
                reason,
            } => ApiError::field(field, reason),
            StoreError::Conflict { what, value } => {
                let code = match what {
                    "setup" => "setup_closed",
                    "membership" => "already_member",
                    "username" | "ensemble slug" | "piece slug" | "show code" => "already_exists",
                    _ => "conflict",
                };
                let message = match what {
                    "setup" => "setup is closed: an account already exists".to_owned(),
                    "membership" => "the user is already a member of the ensemble".to_owned(),
                    "last owner" => "the ensemble must keep at least one owner".to_owned(),
                    "last admin" => "the only active admin cannot be deactivated".to_owned(),
                    "no current spec" => {
                        "the piece has no current spec version; publish one or name spec_version"
                            .to_owned()
                    }
                    "archived piece" => "the piece is archived".to_owned(),
                    _ if code == "already_exists" => format!("{what} {value:?} already exists"),
                    _ => StoreError::Conflict { what, value }.to_string(),
                };
                ApiError::conflict(code, message).with_details(json!({"what": what}))
            }
            StoreError::NotFound { what, id } => ApiError::not_found(format!("{what} {id}")),
            StoreError::InvalidTransition {
                what,
                from,
                to,
                allowed,
            } => ApiError::conflict(
                "invalid_transition",
                format!(
                    "a {what} cannot go from {from} to {to} (allowed: {})",
                    if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                ),
            )
            .with_details(json!({"from": from, "to": to, "allowed": allowed})),
            StoreError::TokenReused { .. } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_reused",
                "this refresh token was already used; every token of its family is revoked",
            ),
            StoreError::TokenRevoked => ApiError::unauthorized("the token was revoked"),
            StoreError::TokenExpired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the token expired",
            ),
            StoreError::Storage {
                ref path, problem, ..
            } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                match problem {
                    StorageProblem::Full => format!(
                        "the data directory is full ({}): nothing was stored; free some space \
                         and retry (the live show goes on)",
                        path.display()
                    ),
                    StorageProblem::ReadOnly => format!(
                        "the data directory is read-only ({}): nothing was stored; make it \
                         writable and retry (the live show goes on)",
                        path.display()
                    ),
                    _ => format!(
                        "the data directory's disk failed a write ({}): nothing was stored \
                         (the live show goes on)",
                        path.display()
                    ),
                },
            )
            .with_details(json!({"path": path.display().to_string(), "problem": problem.as_str()})),
            StoreError::QueueFull { .. } => {
                ApiError::unavailable(1, "the store is busy; retry shortly")
            }
            other => ApiError::internal(other),
        }
    }
}

/// Marker put into error responses' extensions; the middleware turns it into the envelope.
#[derive(Clone)]
pub(crate) struct PendingError(pub ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        if let Some(s) = self.retry_after_s {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res.extensions_mut().insert(PendingError(self));
        res
    }
}

/// The code for an error response that did not come from [`ApiError`].
pub(crate) fn code_for_status(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad_request", "the request is malformed"),
        401 => ("unauthorized", "authentication required"),
        403 => ("forbidden", "not allowed"),
        404 => ("not_found", "no such resource"),
        405 => ("method_not_allowed", "method not allowed on this resource"),
        413 => ("payload_too_large", "the request body is too large"),
        415 => ("unsupported_media_type", "send application/json"),
        422 => ("validation_failed", "the request is invalid"),
        429 => ("rate_limited", "too many requests"),
        503 => ("unavailable", "the server is busy; retry shortly"),
        _ => ("internal", "internal error"),
    }
}
