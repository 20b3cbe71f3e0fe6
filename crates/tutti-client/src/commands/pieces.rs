//! `tutti pieces list|show|create|transition`.
//!
//! Must never: move a piece other than by its lifecycle route (the server checks the
//! transition).

use serde_json::json;

use super::{page_query, piece_id, Page};
use crate::error::ClientError;
use crate::output::{self, PIECE_COLUMNS};
use crate::session::Api;

/// `tutti pieces list [--ensemble ID]`.
pub async fn list(
    api: &mut Api,
    ensemble: Option<i64>,
    page: &Page,
    json: bool,
) -> Result<(), ClientError> {
    let mut path = format!("/api/v1/pieces?{}", page_query(page));
    if let Some(e) = ensemble {
        path.push_str(&format!("&ensemble_id={e}"));
    }
    let v = api.call("GET", &path, None, None).await?;
    output::list(&v, PIECE_COLUMNS, json)
}

/// `tutti pieces show PIECE` (id or slug).
pub async fn show(api: &mut Api, piece: &str, json: bool) -> Result<(), ClientError> {
    let id = piece_id(api, piece).await?;
    let v = api
        .call("GET", &format!("/api/v1/pieces/{id}"), None, None)
        .await?;
    output::object(&v, json)
}

/// `tutti pieces create --ensemble ID --slug SLUG --title TITLE`.
pub async fn create(
    api: &mut Api,
    ensemble: i64,
    slug: &str,
    title: &str,
    idempotency_key: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let body = json!({ "slug": slug, "title": title });
    let v = api
        .call(
            "POST",
            &format!("/api/v1/ensembles/{ensemble}/pieces"),
            Some(&body),
            idempotency_key,
        )
        .await?;
    output::object(&v, json)
}

/// `tutti pieces transition PIECE STATE`.
pub async fn transition(
    api: &mut Api,
    piece: &str,
    to: &str,
    json: bool,
) -> Result<(), ClientError> {
    let id = piece_id(api, piece).await?;
    let body = json!({ "to": to });
    let v = api
        .call(
            "POST",
            &format!("/api/v1/pieces/{id}/transition"),
            Some(&body),
            None,
        )
        .await?;
    output::object(&v, json)
}
