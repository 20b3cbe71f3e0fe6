//! `tutti members list|add|remove|role`: who is in an ensemble, with which role.
//!
//! The API has no route that changes a member's role, so `role` removes the member and adds
//! them back with the new role (two requests, two events: `ensemble.member_removed`, `ensemble.member_added`); if adding fails, it adds the old
//! role back and says so. It refuses to change your own role (you could lose the right to
//! add yourself back): another owner or an admin does that.
//!
//! Must never: leave a member out of the ensemble without saying so, or change the role of
//! the signed-in user.

use serde_json::{json, Value};

use super::{ensemble_id, numeric_id, user_id};
use crate::error::ClientError;
use crate::output::{self, print, MEMBER_COLUMNS};
use crate::session::Api;
use crate::table;

async fn members(api: &mut Api, ensemble: i64) -> Result<Vec<Value>, ClientError> {
    let v = api
        .call(
            "GET",
            &format!("/api/v1/ensembles/{ensemble}/members"),
            None,
            None,
        )
        .await?;
    Ok(v.get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// The member `user` (a user id or a member's user name) of a member list.
fn find<'a>(list: &'a [Value], user: &str, ensemble: i64) -> Result<&'a Value, ClientError> {
    let by_id = numeric_id("user", user)?;
    list.iter()
        .find(|m| match by_id {
            Some(id) => m.get("user_id").and_then(Value::as_i64) == Some(id),
            None => m.get("username").and_then(Value::as_str) == Some(user),
        })
        .ok_or_else(|| {
            ClientError::Usage(format!(
                "'{user}' is not a member of ensemble {ensemble} (`tutti members list {ensemble}`)"
            ))
        })
}

fn field_i64(v: &Value, key: &str) -> Result<i64, ClientError> {
    v.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| ClientError::Connection(format!("a member has no {key}")))
}

/// `tutti members list ENSEMBLE`.
pub async fn list(api: &mut Api, ensemble: &str, json: bool) -> Result<(), ClientError> {
    let id = ensemble_id(api, ensemble).await?;
    let v = api
        .call(
            "GET",
            &format!("/api/v1/ensembles/{id}/members"),
            None,
            None,
        )
        .await?;
    output::list(&v, MEMBER_COLUMNS, json)
}

async fn add_member(
    api: &mut Api,
    ensemble: i64,
    user: i64,
    role: &str,
    idempotency_key: Option<&str>,
) -> Result<Value, ClientError> {
    api.call(
        "POST",
        &format!("/api/v1/ensembles/{ensemble}/members"),
        Some(&json!({ "user_id": user, "role": role })),
        idempotency_key,
    )
    .await
}

/// `tutti members add ENSEMBLE USER --role ROLE` (USER: id or user name).
pub async fn add(
    api: &mut Api,
    ensemble: &str,
    user: &str,
    role: &str,
    idempotency_key: Option<&str>,
    json: bool,
) -> Result<(), ClientError> {
    let id = ensemble_id(api, ensemble).await?;
    let uid = user_id(api, user).await?;
    let v = add_member(api, id, uid, role, idempotency_key).await?;
    output::object(&v, json)
}

/// `tutti members remove ENSEMBLE USER` (USER: id or a member's user name).
pub async fn remove(api: &mut Api, ensemble: &str, user: &str) -> Result<(), ClientError> {
    let id = ensemble_id(api, ensemble).await?;
    let list = members(api, id).await?;
    let m = find(&list, user, id)?;
    let uid = field_i64(m, "user_id")?;
    api.call(
        "DELETE",
        &format!("/api/v1/ensembles/{id}/members/{uid}"),
        None,
        None,
    )
    .await?;
    print(&format!(
        "{} removed from ensemble {id}\n",
        table::text(m.get("username").unwrap_or(&Value::Null))
    ))
}

/// `tutti members role ENSEMBLE USER ROLE` (see the module docs).
pub async fn role(
    api: &mut Api,
    ensemble: &str,
    user: &str,
    role: &str,
    json: bool,
) -> Result<(), ClientError> {
    let id = ensemble_id(api, ensemble).await?;
    let list = members(api, id).await?;
    let m = find(&list, user, id)?.clone();
    let uid = field_i64(&m, "user_id")?;
    let name = table::text(m.get("username").unwrap_or(&Value::Null));
    let old = m
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if api.login().is_some_and(|l| l.username == name) {
        return Err(ClientError::Usage(format!(
            "you cannot change your own role in ensemble {id}: ask another owner or an admin"
        )));
    }
    if old == role {
        if json {
            return output::print_json(&m);
        }
        return print(&format!("{name} is already {role} in ensemble {id}\n"));
    }
    api.call(
        "DELETE",
        &format!("/api/v1/ensembles/{id}/members/{uid}"),
        None,
        None,
    )
    .await?;
    match add_member(api, id, uid, role, None).await {
        Ok(v) => output::object(&v, json),
        Err(e) => {
            let back = add_member(api, id, uid, &old, None).await;
            let state = match back {
                Ok(_) => format!("{name} is {old} again"),
                Err(b) => format!(
                    "{name} is NO LONGER A MEMBER of ensemble {id} (adding them back as {old} failed: {b})"
                ),
            };
            Err(match e {
                ClientError::Api {
                    status,
                    code,
                    message,
                    details,
                } => ClientError::Api {
                    status,
                    code,
                    message: format!("{message}; {name} did not become {role}: {state}"),
                    details,
                },
                other => ClientError::Connection(format!(
                    "{other}; {name} did not become {role}: {state}"
                )),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_by_id_or_name_and_never_guessed() {
        let list = [
            json!({"user_id": 2, "username": "bea", "role": "crew"}),
            json!({"user_id": 3, "username": "cy", "role": "owner"}),
        ];
        assert_eq!(find(&list, "3", 1).unwrap()["username"], "cy");
        assert_eq!(find(&list, "bea", 1).unwrap()["user_id"], 2);
        let e = find(&list, "dora", 7).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("'dora' is not a member of ensemble 7"),
            "{e}"
        );
        assert!(find(&list, "4", 1).is_err());
    }
}
