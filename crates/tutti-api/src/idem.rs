//! `Idempotency-Key` on creating POSTs: the first response to a (user, key) is stored; the
//! same key with the same method, path and body replays it (status and body); with a
//! different request it is 422 `idempotency_key_reused`.
//!
//! Must never: store a failed attempt (a retry after an error runs again), or replay a
//! response to a different user.

use std::future::Future;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tutti_store::IdempotencyRow;

use crate::error::ApiError;
use crate::extract::IdemKey;
use crate::{now_ms, ApiState};

fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut res = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was already used with a different request",
    )
}

/// Runs a create once per key.
pub(crate) async fn run<F>(
    state: &ApiState,
    user_id: i64,
    key: Option<IdemKey>,
    create: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let Some(key) = key else {
        let (status, body) = create.await?;
        return Ok(json_response(status, body.to_string(), false));
    };
    if let Some(row) = state.store.idempotency_key(user_id, &key.key).await? {
        return if row.request_sha256 == key.request_sha256 {
            let status = StatusCode::from_u16(row.status).unwrap_or(StatusCode::OK);
            Ok(json_response(status, row.response_json, true))
        } else {
            Err(reused())
        };
    }
    let (status, body) = create.await?;
    let body = body.to_string();
    let stored = state
        .store
        .put_idempotency_key(IdempotencyRow {
            user_id,
            key: key.key,
            method: key.method,
            path: key.path,
            request_sha256: key.request_sha256,
            status: status.as_u16(),
            response_json: body.clone(),
            created_at_ms: now_ms(),
        })
        .await?;
    if stored.request_sha256 != key.request_sha256 {
        // A concurrent request with the same key and another body won the race.
        return Err(reused());
    }
    Ok(json_response(status, stored.response_json, false))
}
