//! `tutti ensembles list|show|create`.
//!
//! Must never: reveal more than the API does (an ensemble you are not in is "not found").

use serde_json::json;

use super::{ensemble_id, page_query, Page};
use crate::error::ClientError;
use crate::output::{self, ENSEMBLE_COLUMNS};
use crate::session::Api;

/// `tutti ensembles list`: yours (admins: all).
pub async fn list(api: &mut Api, page: &Page, json: bool) -> Result<(), ClientError> {
    let v = api
        .call(
            "GET",
            &format!("/api/v1/ensembles?{}", page_query(page)),
            None,
            None,
        )
        .await?;
    output::list(&v, ENSEMBLE_COLUMNS, json)
}

/// `tutti ensembles show ENSEMBLE` (id or slug).
pub async fn show(api: &mut Api, ensemble: &str, json: bool) -> Result<(), ClientError> {
    let id = ensemble_id(api, ensemble).await?;
    let v = api
        .call("GET", &format!("/api/v1/ensembles/{id}"), None, None)
        .await?;
    output::object(&v, json)
}

/// `tutti ensembles create --slug SLUG --name NAME`: you become its owner.
pub async fn create(
    api: &mut Api,
    slug: &str,
    name: &str,
    idempotency_key: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let body = json!({ "slug": slug, "name": name });
    let v = api
        .call("POST", "/api/v1/ensembles", Some(&body), idempotency_key)
        .await?;
    output::object(&v, json)
}
