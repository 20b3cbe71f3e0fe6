//! `tutti shows list|show|create|transition`.
//!
//! `GET /shows` without `piece_id` is for admins only; for everyone else `tutti shows
//! list` without `--piece` gathers the shows of every piece the caller can see (one list
//! per piece) and prints them together, by id. It asks the API first, so it uses the
//! server's own list wherever the server offers one.
//!
//! Must never: print more than `--limit` shows, or drop a show silently (when there are
//! more, stderr says how many).

use serde_json::{json, Value};

use super::{all_items, page_query, piece_id, Page};
use crate::error::ClientError;
use crate::output::{self, SHOW_COLUMNS};
use crate::session::Api;

/// Whether the API refused a show list because it needs a piece (non-admins).
fn needs_piece(e: &ClientError) -> bool {
    match e {
        ClientError::Api { code, details, .. } if code == "validation_failed" => details
            .as_array()
            .is_some_and(|d| d.iter().any(|p| p.get("field") == Some(&json!("piece_id")))),
        _ => false,
    }
}

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
        let v = api.call("GET", &path, None, None).await?;
        return output::list(&v, SHOW_COLUMNS, json);
    }
    match api.call("GET", &path, None, None).await {
        Ok(v) => output::list(&v, SHOW_COLUMNS, json),
        Err(e) if needs_piece(&e) => {
            if page.cursor.is_some() {
                return Err(ClientError::Usage(
                    "--cursor continues the list of one piece's shows: give --piece too".into(),
                ));
            }
            let (shows, total) = shows_of_my_pieces(api, page.limit as usize).await?;
            output::list(&json!({ "items": shows }), SHOW_COLUMNS, json)?;
            if total > shows.len() {
                eprintln!(
                    "more: {total} shows in all; list one piece's with --piece (paged with --cursor)"
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The first `limit` shows (by id) of all the pieces the caller can see, and how many
/// there are in all.
async fn shows_of_my_pieces(
    api: &mut Api,
    limit: usize,
) -> Result<(Vec<Value>, usize), ClientError> {
    let pieces = all_items(api, "/api/v1/pieces").await?;
    let mut shows = Vec::new();
    for p in &pieces {
        let Some(id) = p.get("id").and_then(Value::as_i64) else {
            continue;
        };
        shows.extend(all_items(api, &format!("/api/v1/shows?piece_id={id}")).await?);
    }
    shows.sort_by_key(|s| s.get("id").and_then(Value::as_i64).unwrap_or(i64::MAX));
    let total = shows.len();
    shows.truncate(limit);
    Ok((shows, total))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_for_the_missing_piece_falls_back() {
        let api_err = |code: &str, details: Value| ClientError::Api {
            status: 422,
            code: code.into(),
            message: "invalid query".into(),
            details,
        };
        assert!(needs_piece(&api_err(
            "validation_failed",
            json!([{"field": "piece_id", "problem": "required unless you are an admin"}])
        )));
        assert!(!needs_piece(&api_err(
            "validation_failed",
            json!([{"field": "limit", "problem": "must be 1-100"}])
        )));
        assert!(!needs_piece(&api_err("forbidden", Value::Null)));
        assert!(!needs_piece(&ClientError::Connection("down".into())));
    }
}
