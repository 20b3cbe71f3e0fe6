//! The request-id middleware: every response gets `x-request-id` (the client's, when it sent a
//! sane one, else a new one), and every error response leaves in the one envelope: errors
//! raised as [`ApiError`] are rendered here with the id, and any other 4xx/5xx (axum's 404,
//! 405, 413, extractor rejections) is rewrapped with the code for its status.
//!
//! Must never: pass a non-envelope error body through, or drop the handler's headers.

use axum::body::Body;
use axum::extract::Request;
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

/// Adds the request id and renders error envelopes.
pub(crate) async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(sane_id)
        .unwrap_or_else(new_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).await;
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
            let (parts, body) = res.into_parts();
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            let message = if text.is_empty() || status == StatusCode::INTERNAL_SERVER_ERROR {
                default_message.to_owned()
            } else {
                text
            };
            let e = ApiError::new(status, code, message);
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
