//! The client's commands, one module per resource of `/api/v1`: each function makes the
//! requests of one `tutti <group> <command>` and prints the answer ([`crate::output`]).
//! The binary parses the arguments and calls these; they take plain values.
//!
//! Shared here: paging ([`Page`]), query encoding, and the lookups that turn a name into an
//! id (a piece or ensemble slug, a user name) among what the caller can see.
//!
//! Must never: guess when an argument is ambiguous (a slug or name matching nothing is an
//! error, never the first item), or follow more than a bounded number of pages.

pub mod account;
pub mod ensembles;
pub mod export;
pub mod members;
pub mod pieces;
pub mod shows;
pub mod specs;
pub mod users;
pub mod webhooks;

use serde_json::Value;

use crate::error::ClientError;
use crate::session::Api;

/// Most pages a lookup or a gathering list follows (100 items each).
const MAX_PAGES: usize = 1000;

/// Paging of list commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Items per page (1–100; the binary checks the range).
    pub limit: u32,
    /// Continue after this cursor (printed after a full page).
    pub cursor: Option<String>,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 50,
            cursor: None,
        }
    }
}

fn page_query(page: &Page) -> String {
    let mut q = format!("limit={}", page.limit);
    if let Some(c) = &page.cursor {
        q.push_str("&cursor=");
        q.push_str(&encode(c));
    }
    q
}

/// Percent-encode a query value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` with `param` added to its query.
fn with_param(path: &str, param: &str) -> String {
    if path.contains('?') {
        format!("{path}&{param}")
    } else {
        format!("{path}?{param}")
    }
}

/// Walks a paginated list (100 items a page) until `visit` returns `Some`.
async fn walk<T>(
    api: &mut Api,
    path: &str,
    mut visit: impl FnMut(&[Value]) -> Option<T>,
) -> Result<Option<T>, ClientError> {
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut p = with_param(path, "limit=100");
        if let Some(c) = &cursor {
            p = with_param(&p, &format!("cursor={}", encode(c)));
        }
        let v = api.call("GET", &p, None, None).await?;
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(found) = visit(items) {
            return Ok(Some(found));
        }
        match v.get("next_cursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(None),
        }
    }
    Err(ClientError::Connection(format!(
        "{path}: more than {MAX_PAGES} pages; the server keeps answering a next cursor"
    )))
}

/// Every item of a paginated list.
async fn all_items(api: &mut Api, path: &str) -> Result<Vec<Value>, ClientError> {
    let mut all = Vec::new();
    walk::<()>(api, path, |items| {
        all.extend_from_slice(items);
        None
    })
    .await?;
    Ok(all)
}

/// A positive id, or `None` when `arg` is not a number.
fn numeric_id(what: &str, arg: &str) -> Result<Option<i64>, ClientError> {
    match arg.parse::<i64>() {
        Ok(id) if id > 0 => Ok(Some(id)),
        Ok(_) => Err(ClientError::Usage(format!(
            "{what} '{arg}': ids are positive numbers"
        ))),
        Err(_) => Ok(None),
    }
}

/// The id of the item of `list_path` whose `key` is `name`.
async fn id_by(
    api: &mut Api,
    list_path: &str,
    key: &str,
    name: &str,
    not_found: impl FnOnce() -> String,
) -> Result<i64, ClientError> {
    let found = walk(api, list_path, |items| {
        items
            .iter()
            .find(|it| it.get(key).and_then(Value::as_str) == Some(name))
            .cloned()
    })
    .await?;
    match found {
        Some(it) => it
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| ClientError::Connection(format!("an item of {list_path} has no id"))),
        None => Err(ClientError::Usage(not_found())),
    }
}

/// A piece id from an id or a slug (looked up among the pieces you can see).
pub async fn piece_id(api: &mut Api, piece: &str) -> Result<i64, ClientError> {
    if let Some(id) = numeric_id("piece", piece)? {
        return Ok(id);
    }
    id_by(api, "/api/v1/pieces", "slug", piece, || {
        format!("no piece with slug '{piece}' among the pieces you can see (`tutti pieces list`)")
    })
    .await
}

/// An ensemble id from an id or a slug (looked up among the ensembles you can see).
pub async fn ensemble_id(api: &mut Api, ensemble: &str) -> Result<i64, ClientError> {
    if let Some(id) = numeric_id("ensemble", ensemble)? {
        return Ok(id);
    }
    id_by(api, "/api/v1/ensembles", "slug", ensemble, || {
        format!(
            "no ensemble with slug '{ensemble}' among the ensembles you can see (`tutti ensembles list`)"
        )
    })
    .await
}

/// A user id from an id or a user name (looked up in the user directory).
pub async fn user_id(api: &mut Api, user: &str) -> Result<i64, ClientError> {
    if let Some(id) = numeric_id("user", user)? {
        return Ok(id);
    }
    id_by(api, "/api/v1/users", "username", user, || {
        format!("no user named '{user}' (`tutti users list`)")
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("abc-_.~"), "abc-_.~");
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        let p = Page {
            limit: 10,
            cursor: Some("x y".into()),
        };
        assert_eq!(page_query(&p), "limit=10&cursor=x%20y");
        assert_eq!(with_param("/a", "limit=1"), "/a?limit=1");
        assert_eq!(with_param("/a?b=2", "limit=1"), "/a?b=2&limit=1");
    }

    #[test]
    fn ids_are_positive_numbers_or_names() {
        assert_eq!(numeric_id("piece", "12").unwrap(), Some(12));
        assert_eq!(numeric_id("piece", "demo").unwrap(), None);
        let e = numeric_id("piece", "-3").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("piece '-3'"), "{e}");
        assert_eq!(numeric_id("user", "0").unwrap_err().exit_code(), 2);
    }
}
