//! `tutti users list|show`: the user directory (the server decides who may read it).
//!
//! Must never: show a password hash or a token (the API never sends them).

use super::{page_query, user_id, Page};
use crate::error::ClientError;
use crate::output::{self, USER_COLUMNS};
use crate::session::Api;

/// `tutti users list`.
pub async fn list(api: &mut Api, page: &Page, json: bool) -> Result<(), ClientError> {
    let v = api
        .call(
            "GET",
            &format!("/api/v1/users?{}", page_query(page)),
            None,
            None,
        )
        .await?;
    output::list(&v, USER_COLUMNS, json)
}

/// `tutti users show USER` (id or user name).
pub async fn show(api: &mut Api, user: &str, json: bool) -> Result<(), ClientError> {
    let id = user_id(api, user).await?;
    let v = api
        .call("GET", &format!("/api/v1/users/{id}"), None, None)
        .await?;
    output::object(&v, json)
}
