//! `tutti shows list|show|create|transition`.
//!
//! Must never: move a show other than by its lifecycle route (the server checks the
//! transition).

use serde_json::json;

use super::{page_query, piece_id, Page};
use crate::error::ClientError;
use crate::output::{self, SHOW_COLUMNS};
use crate::session::Api;

/// `tutti shows list [--piece PIECE]`.
pub async fn list(
    api: &mut Api,
    piece: Option<&str>,
    page: &Page,
    json: bool,
) -> Result<(), ClientError> {
    let mut path = format!("/api/v1/shows?{}", page_query(page));
    if let Some(p) = piece {
        let id = piece_id(api, p).await?;
        path.push_str(&format!("&piece_id={id}"));
    }
    let v = api.call("GET", &path, None, None).await?;
    output::list(&v, SHOW_COLUMNS, json)
}

/// `tutti shows show ID`.
pub async fn show(api: &mut Api, show: i64, json: bool) -> Result<(), ClientError> {
    let v = api
        .call("GET", &format!("/api/v1/shows/{show}"), None, None)
        .await?;
    output::object(&v, json)
}

/// `tutti shows create PIECE [--kind K] [--spec-version N]`.
pub async fn create(
    api: &mut Api,
    piece: &str,
    kind: &str,
    spec_version: Option<i64>,
    idempotency_key: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let id = piece_id(api, piece).await?;
    let mut body = json!({ "kind": kind });
    if let Some(v) = spec_version {
        body["spec_version"] = json!(v);
    }
    let v = api
        .call(
            "POST",
            &format!("/api/v1/pieces/{id}/shows"),
            Some(&body),
            idempotency_key,
        )
        .await?;
    output::object(&v, json)
}

/// `tutti shows transition ID STATE`.
pub async fn transition(api: &mut Api, show: i64, to: &str, json: bool) -> Result<(), ClientError> {
    let body = json!({ "to": to });
    let v = api
        .call(
            "POST",
            &format!("/api/v1/shows/{show}/transition"),
            Some(&body),
            None,
        )
        .await?;
    output::object(&v, json)
}
