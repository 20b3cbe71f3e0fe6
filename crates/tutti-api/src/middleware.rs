//! The request-id middleware: every response gets `x-request-id` (the client's, when it sent a
//! sane one, else a new one), and every error response leaves in the one envelope: errors
//! raised as [`ApiError`] are rendered here with the id, and any other 4xx/5xx (axum's 404,
//! 405, 413, extractor rejections) is rewrapped with the code for its status.
//!
//! It also announces deprecations: an operation listed in [`DEPRECATIONS`] answers with
//! `Deprecation: @<unix seconds>` (RFC 9745), `Sunset: <HTTP date>` (RFC 8594) once a removal
//! date is set, and a `Link` to the notice (see the versioning policy in `docs/api.md`).
//!
//! Must never: pass a non-envelope error body through, or drop the handler's headers.

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{code_for_status, ApiError, PendingError};

/// The request's id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn sane_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_owned())
}

fn new_id() -> String {
    format!("req_{:016x}", rand::random::<u64>())
}

/// A deprecated operation of `/api/v1`.
#[derive(Debug, Clone, Copy)]
pub struct Deprecation {
    /// The method, e.g. `GET`.
    pub method: &'static str,
    /// The route template, e.g. `/api/v1/pieces/{id}`.
    pub path: &'static str,
    /// When it was deprecated, unix seconds.
    pub since_unix_s: i64,
    /// When it will be removed, as an HTTP date (`Sat, 01 May 2027 00:00:00 GMT`), once decided.
    pub sunset: Option<&'static str>,
    /// Where the notice is: the operation on the reference page (`/api/v1/docs#<operationId>`),
    /// whose `docs/api.md` section says the same.
    pub link: &'static str,
}

/// The deprecated operations of v1. The OpenAPI document marks them `deprecated` too.
pub const DEPRECATIONS: &[Deprecation] = &[Deprecation {
    // Keyed by the sequential row id, so its answers (201, 409, 404) told which shows exist.
    method: "POST",
    path: "/api/v1/shows/{id}/guests",
    since_unix_s: 1_796_515_200, // 2026-12-06
    sunset: None,
    link: "/api/v1/docs#create_guest_by_code",
}];

/// The headers announcing the deprecation of `method path`, if it is deprecated.
pub fn deprecation_headers(
    list: &[Deprecation],
    method: &str,
    path: &str,
) -> Vec<(&'static str, String)> {
    let Some(d) = list.iter().find(|d| d.method == method && d.path == path) else {
        return Vec::new();
    };
    let mut h = vec![
        ("deprecation", format!("@{}", d.since_unix_s)),
        ("link", format!("<{}>; rel=\"deprecation\"", d.link)),
    ];
    if let Some(s) = d.sunset {
        h.push(("sunset", s.to_owned()));
    }
    h
}

/// Adds the request id and renders error envelopes.
pub(crate) async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(sane_id)
        .unwrap_or_else(new_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let deprecated = match req.extensions().get::<MatchedPath>() {
        Some(m) if !DEPRECATIONS.is_empty() => {
            deprecation_headers(DEPRECATIONS, req.method().as_str(), m.as_str())
        }
        _ => Vec::new(),
    };
    let mut res = next.run(req).await;
    for (name, value) in deprecated {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, v);
        }
    }
    if let Some(PendingError(e)) = res.extensions_mut().remove::<PendingError>() {
        res = render(res, &e, &id);
    } else if res.status().is_client_error() || res.status().is_server_error() {
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            let status = res.status();
            let (code, default_message) = code_for_status(status);
            let (mut parts, body) = res.into_parts();
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            let message = if text.is_empty() || status == StatusCode::INTERNAL_SERVER_ERROR {
                default_message.to_owned()
            } else {
                text
            };
            let mut e = ApiError::new(status, code, message);
            if matches!(code, "rate_limited" | "unavailable")
                && !parts.headers.contains_key(header::RETRY_AFTER)
            {
                e.retry_after_s = Some(1);
                parts
                    .headers
                    .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            res = render(Response::from_parts(parts, Body::empty()), &e, &id);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

fn render(old: Response, e: &ApiError, id: &str) -> Response {
    let (mut parts, _) = old.into_parts();
    let body = e.envelope(id).to_string();
    parts.status = e.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprecations_are_announced() {
        let list = [Deprecation {
            method: "GET",
            path: "/api/v1/old",
            since_unix_s: 1_800_000_000,
            sunset: Some("Sat, 01 May 2027 00:00:00 GMT"),
            link: "/api/v1/docs#old",
        }];
        let h = deprecation_headers(&list, "GET", "/api/v1/old");
        assert_eq!(h[0], ("deprecation", "@1800000000".to_owned()));
        assert_eq!(h[1].0, "link");
        assert_eq!(h[2], ("sunset", "Sat, 01 May 2027 00:00:00 GMT".to_owned()));
        assert!(deprecation_headers(&list, "POST", "/api/v1/old").is_empty());
        assert!(deprecation_headers(DEPRECATIONS, "GET", "/api/v1/health").is_empty());
        let guests = deprecation_headers(DEPRECATIONS, "POST", "/api/v1/shows/{id}/guests");
        assert_eq!(guests[0].0, "deprecation");
        assert!(
            guests.iter().all(|(name, _)| *name != "sunset"),
            "no date set"
        );
    }
}
