//! Extractors that reject bad input in the envelope with stable codes: [`ApiJson`] (content
//! type, size, UTF-8, syntax, unknown and missing fields by name, then [`Validate`]),
//! [`Create`] (the same plus the `Idempotency-Key`), [`ApiPath`] and [`ApiQuery`].
//!
//! Must never: let a body through that was not checked, or name a field's value when it
//! could be a secret (problems name fields and say what is wrong, never echo passwords).

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
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

    /// Checks a display text (a title, a name): its length in characters, not blank, and no
    /// control, bidirectional-control or invisible characters (see `tutti_spec::text`).
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if let Some(problem) = tutti_spec::text::check_display(value, min, max) {
            self.add(field, problem);
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

/// What a serde message says about a field, in words that do not repeat the field's name
/// (the envelope puts the name in front): `unknown field `x`, expected one of …` becomes
/// `is not a known <what> (expected one of …)`, `missing field` becomes `is required`, and
/// the standard number and enum messages get plain words. `what` is `field` or
/// `query parameter`.
pub(crate) fn describe(msg: &str, what: &str) -> String {
    let after_name = |prefix: &str| {
        msg.strip_prefix(prefix)
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, rest)| (name, rest.trim_start_matches(", ")))
    };
    if let Some((_, rest)) = after_name("unknown field `") {
        let hint = match rest {
            "there are no fields" => "there are none".to_owned(),
            r => r.to_owned(),
        };
        return format!("is not a known {what} ({hint})");
    }
    if msg.starts_with("missing field `") {
        return "is required".to_owned();
    }
    if let Some((got, rest)) = after_name("unknown variant `") {
        let allowed = match rest.strip_prefix("expected one of ") {
            Some(list) => format!("one of {list}"),
            None => rest.strip_prefix("expected ").unwrap_or(rest).to_owned(),
        };
        return format!("must be {allowed} (got `{got}`)");
    }
    match msg {
        "invalid digit found in string" => "must be a whole number".to_owned(),
        "number too large to fit in target type" => "is too large".to_owned(),
        "number too small to fit in target type" => "is too small".to_owned(),
        "cannot parse integer from empty string" => "must not be empty".to_owned(),
        "invalid float literal" => "must be a number".to_owned(),
        "provided string was not `true` or `false`" => "must be true or false".to_owned(),
        other => other.to_owned(),
    }
}

/// Headers of a request whose body is JSON (for [`crate::check_body`]).
pub(crate) fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    h
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
                    ApiError::field(field_of(&path, &msg), describe(&msg, "field"))
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

/// Path parameters. One that does not parse (`/users/abc`, an id past `i64`) is 404
/// `not_found` with a message naming the parameter and `details.parameter`: no object has
/// such an id.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(ApiPath(p.0)),
            Err(rejection) => {
                let names: Vec<String> = RawPathParams::from_request_parts(parts, state)
                    .await
                    .map(|raw| raw.iter().map(|(k, _)| k.to_owned()).collect())
                    .unwrap_or_default();
                Err(path_error(&rejection, &names))
            }
        }
    }
}

/// The envelope for a path parameter that does not parse; `names` are the route's parameters
/// in order.
fn path_error(rejection: &PathRejection, names: &[String]) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(e) = rejection else {
        return ApiError::internal(rejection.body_text());
    };
    let name_at = |i: usize| names.get(i).cloned().unwrap_or_else(|| "id".to_owned());
    let (name, value, expected) = match e.kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => (key.clone(), value.as_str(), *expected_type),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => (name_at(*index), value.as_str(), *expected_type),
        ErrorKind::ParseError {
            value,
            expected_type,
        } => (name_at(0), value.as_str(), *expected_type),
        ErrorKind::InvalidUtf8InPathParam { key } => (key.clone(), "", "UTF-8 text"),
        _ => return ApiError::internal(e.body_text()),
    };
    let must = if expected.starts_with('i') || expected.starts_with('u') {
        format!("a whole number from 1 to {}", i64::MAX)
    } else {
        format!("a valid {expected}")
    };
    let shown: String = value.chars().take(40).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("path parameter `{name}` must be {must} (got {shown:?})"),
    )
    .with_details(serde_json::json!({"parameter": name}))
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

/// Deserializes a query string; a problem names the parameter and says what is wrong with it.
fn serde_urlencoded_de<T: DeserializeOwned>(q: &str) -> Result<T, (String, String)> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let field = match field_of(&path, &msg) {
            f if f == "(body)" => "(query)".to_owned(),
            f => f,
        };
        (field, describe(&msg, "query parameter"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_do_not_repeat_the_field_name() {
        assert_eq!(
            describe(
                "unknown field `colour`, expected one of `limit`, `cursor`",
                "query parameter"
            ),
            "is not a known query parameter (expected one of `limit`, `cursor`)"
        );
        assert_eq!(
            describe("unknown field `x`, there are no fields", "field"),
            "is not a known field (there are none)"
        );
        assert_eq!(describe("missing field `title`", "field"), "is required");
        assert_eq!(
            describe(
                "unknown variant `pdf`, expected one of `json`, `toml`",
                "field"
            ),
            "must be one of `json`, `toml` (got `pdf`)"
        );
        assert_eq!(
            describe("invalid digit found in string", "query parameter"),
            "must be a whole number"
        );
        assert_eq!(describe("something else", "field"), "something else");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        cursor: Option<String>,
    }

    #[test]
    fn query_problems_name_the_parameter() {
        let e = serde_urlencoded_de::<Q>("limit=5&colour=red").unwrap_err();
        assert_eq!(e.0, "colour");
        assert_eq!(
            e.1,
            "is not a known query parameter (expected `limit` or `cursor`)"
        );
        let e = serde_urlencoded_de::<Q>("limit=abc").unwrap_err();
        assert_eq!(e, ("limit".to_owned(), "must be a whole number".to_owned()));
        let e = serde_urlencoded_de::<Q>("limit=99999999999").unwrap_err();
        assert_eq!(e, ("limit".to_owned(), "is too large".to_owned()));
        assert!(serde_urlencoded_de::<Q>("limit=5&cursor=x").is_ok());
    }

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
