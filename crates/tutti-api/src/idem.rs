//! `Idempotency-Key` on creating POSTs: the first response to a (user, key) is stored; the
//! same key with the same method, path and body replays it (status and body); with a
//! different request it is 422 `idempotency_key_reused`; while the first is still running, a
//! second with the same key gets 409 `conflict`.
//!
//! Must never: store a failed attempt (a retry after an error runs again), or replay a
//! response to a different user.

use std::future::Future;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tutti_store::{IdempotencyClaim, NewIdempotencyClaim};

use crate::error::ApiError;
use crate::extract::IdemKey;
use crate::ApiState;

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

/// A claim older than this is taken to be from a crashed request and is released.
const STALE_CLAIM_MS: i64 = 60_000;

/// Runs a create once per key: the key is claimed atomically before the create runs, so two
/// concurrent requests with one key cannot both create.
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
    let claim = || NewIdempotencyClaim {
        user_id,
        key: key.key.clone(),
        method: key.method.clone(),
        path: key.path.clone(),
        request_sha256: key.request_sha256,
        at_ms: state.now_ms(),
    };
    let mut outcome = state.store.claim_idempotency_key(claim()).await?;
    if let IdempotencyClaim::InFlight { claimed_at_ms, .. } = outcome {
        if state.now_ms() - claimed_at_ms > STALE_CLAIM_MS {
            state
                .store
                .release_idempotency_key(user_id, &key.key)
                .await?;
            outcome = state.store.claim_idempotency_key(claim()).await?;
        }
    }
    match outcome {
        IdempotencyClaim::Claimed => {}
        IdempotencyClaim::Done(row) => {
            return if row.request_sha256 == key.request_sha256 {
                let status = StatusCode::from_u16(row.status).unwrap_or(StatusCode::OK);
                Ok(json_response(status, row.response_json, true))
            } else {
                Err(reused())
            };
        }
        IdempotencyClaim::InFlight { request_sha256, .. } => {
            return if request_sha256 == key.request_sha256 {
                Err(ApiError::conflict(
                    "conflict",
                    "a request with this Idempotency-Key is still running; retry shortly",
                ))
            } else {
                Err(reused())
            };
        }
    }
    match create.await {
        Ok((status, body)) => {
            let body = body.to_string();
            state
                .store
                .complete_idempotency_key(user_id, &key.key, status.as_u16(), &body)
                .await?;
            Ok(json_response(status, body, false))
        }
        Err(e) => {
            // The create failed without effect (one store operation): a retry may run it.
            state
                .store
                .release_idempotency_key(user_id, &key.key)
                .await?;
            Err(e)
        }
    }
}
