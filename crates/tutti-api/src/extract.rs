//! Extractors that reject bad input in the envelope with stable codes: [`ApiJson`] (content
//! type, size, UTF-8, syntax, unknown and missing fields by name, then [`Validate`]),
//! [`Create`] (the same plus the `Idempotency-Key`), [`ApiPath`] and [`ApiQuery`].
//!
//! Must never: let a body through that was not checked, or name a field's value when it
//! could be a secret (problems name fields and say what is wrong, never echo passwords).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Field problems collected by [`Validate`].
#[derive(Debug, Default)]
pub struct Problems(pub Vec<(String, String)>);

impl Problems {
    /// Adds a problem.
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0.push((field.to_owned(), problem.into()));
    }

    /// Checks a string's length in characters.
    pub fn len(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let n = value.chars().count();
        if n < min || n > max {
            self.add(field, format!("must be {min}–{max} characters (got {n})"));
        }
    }

    /// Checks a slug: 1–64 of `a-z 0-9 _ -`.
    pub fn slug(&mut self, field: &str, value: &str) {
        if value.is_empty()
            || value.len() > 64
            || !value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            self.add(field, "must be 1–64 characters of a-z, 0-9, '-' and '_'");
        }
    }

    /// Checks a text has no control characters and a length.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        self.len(field, value, min, max);
        if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
    }
}

/// Domain checks after deserialization.
pub trait Validate {
    /// Adds a problem per invalid field.
    fn validate(&self, _p: &mut Problems) {}
}

/// A JSON request body (checked) or a JSON response.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The field a serde data error is about: the path, plus the name in the message for
/// unknown and missing fields.
fn field_of(path: &str, msg: &str) -> String {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| msg.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    let base = if path == "." { "" } else { path };
    match named {
        Some(name) if msg.starts_with("missing") || base.is_empty() => {
            if base.is_empty() {
                name.to_owned()
            } else {
                format!("{base}.{name}")
            }
        }
        _ if base.is_empty() => "(body)".to_owned(),
        _ => base.to_owned(),
    }
}

/// Parses and validates a JSON body.
pub(crate) fn parse_body<T: DeserializeOwned + Validate>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_utf8",
            "the body is not valid UTF-8",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = match serde_path_to_error::deserialize(de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let msg = inner.to_string();
                    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
                    ApiError::field(field_of(&path, &msg), msg)
                }
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("the body is not valid JSON: {inner}"),
                ),
            });
        }
    };
    let mut problems = Problems::default();
    value.validate(&mut problems);
    if problems.0.is_empty() {
        Ok(value)
    } else {
        Err(ApiError::validation(problems.0))
    }
}

async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<(HeaderMap, Bytes), ApiError> {
    let headers = req.headers().clone();
    let bytes = Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than the configured limit (api.body_limit)",
            )
        } else {
            ApiError::bad_request(r.body_text())
        }
    })?;
    Ok((headers, bytes))
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (headers, bytes) = body_bytes(req, state).await?;
        parse_body(&headers, &bytes).map(ApiJson)
    }
}

/// An `Idempotency-Key` and the hash of what it was sent with.
#[derive(Debug, Clone)]
pub struct IdemKey {
    /// The key (1–64 visible ASCII).
    pub key: String,
    /// sha256 of method, path and body.
    pub request_sha256: [u8; 32],
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
}

/// The body of a create request, with its idempotency key if any.
#[derive(Debug)]
pub struct Create<T> {
    /// The checked body.
    pub body: T,
    /// The key, if sent.
    pub idem: Option<IdemKey>,
}

pub(crate) fn idem_key(
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Option<IdemKey>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::field("Idempotency-Key", "must be 1–64 visible ASCII characters")
        })?;
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(body);
    Ok(Some(IdemKey {
        key: key.to_owned(),
        request_sha256: h.finalize().into(),
        method: method.to_owned(),
        path: path.to_owned(),
    }))
}

impl<T, S> FromRequest<S> for Create<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let (headers, bytes) = body_bytes(req, state).await?;
        let idem = idem_key(&headers, &method, &path, &bytes)?;
        let body = parse_body(&headers, &bytes)?;
        Ok(Create { body, idem })
    }
}

/// Path parameters; a bad one is 400 `bad_request` (or 404 for a non-numeric id).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| ApiError::new(StatusCode::NOT_FOUND, "not_found", r.body_text()))
    }
}

/// Query parameters; a bad one is 422 `validation_failed` naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Validate + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded_de(q);
        let value: T = match de {
            Ok(v) => v,
            Err((field, msg)) => return Err(ApiError::field(field, msg)),
        };
        let mut problems = Problems::default();
        value.validate(&mut problems);
        if problems.0.is_empty() {
            Ok(ApiQuery(value))
        } else {
            Err(ApiError::validation(problems.0))
        }
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(q: &str) -> Result<T, (String, String)> {
    let parsed: Result<axum::extract::Query<T>, _> =
        axum::extract::Query::try_from_uri(&format!("/?{q}").parse().map_err(|_| {
            (
                "(query)".to_owned(),
                "the query string is malformed".to_owned(),
            )
        })?);
    match parsed {
        Ok(v) => Ok(v.0),
        Err(e) => {
            let text = e.body_text();
            let msg = text
                .strip_prefix("Failed to deserialize query string: ")
                .unwrap_or(&text)
                .to_owned();
            let field = ["unknown field `", "missing field `"]
                .iter()
                .find_map(|p| msg.strip_prefix(p))
                .and_then(|r| r.split('`').next())
                .map(str::to_owned)
                .or_else(|| {
                    msg.split(':')
                        .next()
                        .filter(|f| !f.contains(' '))
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "(query)".to_owned());
            Err((field, msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named() {
        assert_eq!(
            field_of(".", "unknown field `colour`, expected `title`"),
            "colour"
        );
        assert_eq!(field_of(".", "missing field `title`"), "title");
        assert_eq!(field_of("spec", "missing field `slug`"), "spec.slug");
        assert_eq!(
            field_of("title", "invalid type: integer `3`, expected a string"),
            "title"
        );
    }
}
