//! Accounts: users, cookie sessions, access/refresh token families, guests, idempotency keys and
//! wizard sessions — the SQL (functions run on the writer thread or a read connection) and the
//! `Store` methods that validate arguments and queue them.
//!
//! Must never: see or store a token secret or a plain password (only SHA-256 hashes and argon2id
//! PHC strings), put a secret or a password hash in an outbox event or an error message, or
//! leave a credential usable after the revocation that should end it has committed.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::json;

use crate::error::{db, is_unique_violation, StoreError};
use crate::model::{
    self, AccessTokenRow, AuthSessionRow, EventKind, GuestRow, IdempotencyClaim, IdempotencyRow,
    KeepCredential, NewAuthSession, NewIdempotencyClaim, NewTokenPair, NewUser, NewWizardSession,
    Page, RotateRefresh, TokenHash, TokenPairRow, UserCredentials, UserRole, UserRow,
    WizardSessionRow, IDEMPOTENCY_IN_FLIGHT, MAX_DISPLAY_NAME_LEN, MAX_IDEMPOTENCY_KEY_LEN,
    MAX_RESPONSE_JSON, MAX_WIZARD_STATE_JSON,
};
use crate::ops::{event, parse_col};
use crate::Store;

macro_rules! user_cols {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "username, ",
            $p,
            "display_name, ",
            $p,
            "role, ",
            $p,
            "active, ",
            $p,
            "created_at_ms, ",
            $p,
            "password_changed_at_ms"
        )
    };
}

/// Reads a user from columns `at..at + 7` (in `user_cols!` order).
fn user_at(row: &Row<'_>, at: usize) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(at)?,
        username: row.get(at + 1)?,
        display_name: row.get(at + 2)?,
        role: parse_col::<UserRole>(row, at + 3)?,
        active: row.get::<_, i64>(at + 4)? != 0,
        created_at_ms: row.get(at + 5)?,
        password_changed_at_ms: row.get(at + 6)?,
    })
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<UserRow> {
    user_at(row, 0)
}

fn not_found(what: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

/// Splits a page read with `limit + 1` rows into the page and the next page's `after_id`.
pub(crate) fn paged<T>(
    mut rows: Vec<T>,
    page: Page,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<i64>) {
    let limit = page.limit as usize;
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(id);
        (rows, next)
    } else {
        (rows, None)
    }
}

/// Runs a cached query and collects every row through `row`, errors named by `op`.
pub(crate) fn rows<T, P: rusqlite::Params>(
    conn: &Connection,
    op: &'static str,
    sql: &str,
    params: P,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    conn.prepare_cached(sql)
        .map_err(db(op))?
        .query_map(params, row)
        .map_err(db(op))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db(op))
}

/// The `after` and `limit + 1` parameters of a page query.
pub(crate) fn page_params(page: Page) -> (i64, i64) {
    (page.after_id.unwrap_or(i64::MIN), i64::from(page.limit) + 1)
}

/// A short, non-secret label for a token hash in error messages (its first 4 bytes in hex).
fn hash_label(hash: &TokenHash) -> String {
    hash.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------- users

pub(crate) fn user(conn: &Connection, id: i64) -> Result<Option<UserRow>, StoreError> {
    const OP: &str = "reading a user";
    conn.prepare_cached(concat!(
        "SELECT ",
        user_cols!(""),
        " FROM users WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], user_row)
    .optional()
    .map_err(db(OP))
}

pub(crate) fn require_user(conn: &Connection, id: i64) -> Result<UserRow, StoreError> {
    user(conn, id)?.ok_or_else(|| not_found("user", id))
}

fn user_by_username(conn: &Connection, name: &str) -> Result<Option<UserRow>, StoreError> {
    const OP: &str = "reading a user by username";
    conn.prepare_cached(concat!(
        "SELECT ",
        user_cols!(""),
        " FROM users WHERE username = ?1"
    ))
    .map_err(db(OP))?
    .query_row([name], user_row)
    .optional()
    .map_err(db(OP))
}

fn user_credentials(conn: &Connection, name: &str) -> Result<Option<UserCredentials>, StoreError> {
    const OP: &str = "reading a user's credentials";
    conn.prepare_cached(concat!(
        "SELECT ",
        user_cols!(""),
        ", password_hash FROM users WHERE username = ?1"
    ))
    .map_err(db(OP))?
    .query_row([name], |r| {
        Ok(UserCredentials {
            user: user_at(r, 0)?,
            password_hash: r.get(7)?,
        })
    })
    .optional()
    .map_err(db(OP))
}

fn users(conn: &Connection, page: Page) -> Result<(Vec<UserRow>, Option<i64>), StoreError> {
    const OP: &str = "listing users";
    let (after, limit) = page_params(page);
    let rows = rows(
        conn,
        OP,
        concat!(
            "SELECT ",
            user_cols!(""),
            " FROM users WHERE id > ?1 ORDER BY id LIMIT ?2"
        ),
        params![after, limit],
        user_row,
    )?;
    Ok(paged(rows, page, |u| u.id))
}

fn user_count(conn: &Connection) -> Result<u64, StoreError> {
    conn.prepare_cached("SELECT count(*) FROM users")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(db("counting users"))
}

fn insert_user(conn: &Connection, u: &NewUser) -> Result<UserRow, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO users (username, display_name, password_hash, role, active, created_at_ms, \
             password_changed_at_ms) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    u.username,
                    u.display_name,
                    u.password_hash,
                    u.role.as_str(),
                    u.at_ms
                ],
                |r| r.get::<_, i64>(0),
            )
        });
    let id = match inserted {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: "username",
                value: u.username.clone(),
            })
        }
        Err(e) => return Err(db("creating a user")(e)),
    };
    event(
        conn,
        EventKind::AccountCreated,
        None,
        format!("user:{id}"),
        json!({"user_id": id, "username": u.username, "role": u.role}),
        u.at_ms,
    )?;
    Ok(UserRow {
        id,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        role: u.role,
        active: true,
        created_at_ms: u.at_ms,
        password_changed_at_ms: u.at_ms,
    })
}

fn create_first_admin(conn: &Connection, u: &NewUser) -> Result<UserRow, StoreError> {
    if user_count(conn)? > 0 {
        return Err(StoreError::Conflict {
            what: "setup",
            value: "an account already exists".into(),
        });
    }
    let admin = insert_user(conn, u)?;
    crate::chat::create_all_talk(conn, admin.id, u.at_ms)?;
    Ok(admin)
}

/// Revokes the user's sessions and token families (and their tokens), except `keep`. Returns how
/// many sessions and families were revoked.
fn revoke_all(
    conn: &Connection,
    user_id: i64,
    keep: KeepCredential,
    at_ms: i64,
) -> Result<u64, StoreError> {
    const OP: &str = "revoking a user's sessions and tokens";
    let keep_session: Option<Vec<u8>> = match keep {
        KeepCredential::Session(h) => Some(h.to_vec()),
        _ => None,
    };
    let keep_family = match keep {
        KeepCredential::Family(f) => Some(f),
        _ => None,
    };
    let sessions = conn
        .prepare_cached(
            "UPDATE auth_sessions SET revoked_at_ms = ?2 \
             WHERE user_id = ?1 AND revoked_at_ms IS NULL AND token_hash IS NOT ?3",
        )
        .and_then(|mut s| s.execute(params![user_id, at_ms, keep_session]))
        .map_err(db(OP))?;
    let families = conn
        .prepare_cached(
            "UPDATE token_families SET revoked_at_ms = ?2 \
             WHERE user_id = ?1 AND revoked_at_ms IS NULL AND id IS NOT ?3",
        )
        .and_then(|mut s| s.execute(params![user_id, at_ms, keep_family]))
        .map_err(db(OP))?;
    for sql in [
        "UPDATE access_tokens SET revoked_at_ms = ?2 WHERE revoked_at_ms IS NULL \
         AND family_id IN (SELECT id FROM token_families WHERE user_id = ?1 AND id IS NOT ?3)",
        "UPDATE refresh_tokens SET revoked_at_ms = ?2 WHERE revoked_at_ms IS NULL \
         AND family_id IN (SELECT id FROM token_families WHERE user_id = ?1 AND id IS NOT ?3)",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(params![user_id, at_ms, keep_family]))
            .map_err(db(OP))?;
    }
    Ok((sessions + families) as u64)
}

fn deactivate_user(conn: &Connection, user_id: i64, at_ms: i64) -> Result<UserRow, StoreError> {
    let mut u = require_user(conn, user_id)?;
    if !u.active {
        return Ok(u);
    }
    if u.role == UserRole::Admin {
        let admins: i64 = conn
            .prepare_cached("SELECT count(*) FROM users WHERE role = 'admin' AND active = 1")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(db("counting admins"))?;
        if admins <= 1 {
            return Err(StoreError::Conflict {
                what: "last admin",
                value: format!("user {user_id} is the only active admin"),
            });
        }
    }
    conn.prepare_cached("UPDATE users SET active = 0 WHERE id = ?1")
        .and_then(|mut s| s.execute([user_id]))
        .map_err(db("deactivating a user"))?;
    revoke_all(conn, user_id, KeepCredential::None, at_ms)?;
    event(
        conn,
        EventKind::AccountDeactivated,
        None,
        format!("user:{user_id}"),
        json!({"user_id": user_id, "username": u.username}),
        at_ms,
    )?;
    u.active = false;
    Ok(u)
}

fn set_password_hash(
    conn: &Connection,
    user_id: i64,
    hash: &str,
    keep: KeepCredential,
    at_ms: i64,
) -> Result<UserRow, StoreError> {
    let mut u = require_user(conn, user_id)?;
    conn.prepare_cached(
        "UPDATE users SET password_hash = ?2, password_changed_at_ms = ?3 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![user_id, hash, at_ms]))
    .map_err(db("changing a password"))?;
    revoke_all(conn, user_id, keep, at_ms)?;
    event(
        conn,
        EventKind::AccountPasswordChanged,
        None,
        format!("user:{user_id}"),
        json!({"user_id": user_id}),
        at_ms,
    )?;
    u.password_changed_at_ms = at_ms;
    Ok(u)
}

// ---------------------------------------------------------------- cookie sessions

fn create_auth_session(
    conn: &Connection,
    s: &NewAuthSession,
) -> Result<AuthSessionRow, StoreError> {
    require_user(conn, s.user_id)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO auth_sessions (token_hash, user_id, csrf_token, created_at_ms, expires_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )
        .and_then(|mut st| {
            st.query_row(
                params![
                    s.token_hash.as_slice(),
                    s.user_id,
                    s.csrf_token,
                    s.created_at_ms,
                    s.expires_at_ms
                ],
                |r| r.get::<_, i64>(0),
            )
        });
    let id = match inserted {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: "session token",
                value: hash_label(&s.token_hash),
            })
        }
        Err(e) => return Err(db("creating a session")(e)),
    };
    Ok(AuthSessionRow {
        id,
        user_id: s.user_id,
        csrf_token: s.csrf_token.clone(),
        created_at_ms: s.created_at_ms,
        expires_at_ms: s.expires_at_ms,
        revoked_at_ms: None,
    })
}

fn auth_session(
    conn: &Connection,
    hash: &TokenHash,
) -> Result<Option<(AuthSessionRow, UserRow)>, StoreError> {
    const OP: &str = "reading a session";
    conn.prepare_cached(concat!(
        "SELECT s.id, s.user_id, s.csrf_token, s.created_at_ms, s.expires_at_ms, s.revoked_at_ms, ",
        user_cols!("u."),
        " FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1"
    ))
    .map_err(db(OP))?
    .query_row([hash.as_slice()], |r| {
        Ok((
            AuthSessionRow {
                id: r.get(0)?,
                user_id: r.get(1)?,
                csrf_token: r.get(2)?,
                created_at_ms: r.get(3)?,
                expires_at_ms: r.get(4)?,
                revoked_at_ms: r.get(5)?,
            },
            user_at(r, 6)?,
        ))
    })
    .optional()
    .map_err(db(OP))
}

fn revoke_auth_session(
    conn: &Connection,
    hash: &TokenHash,
    at_ms: i64,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "UPDATE auth_sessions SET revoked_at_ms = ?2 WHERE token_hash = ?1 AND revoked_at_ms IS NULL",
    )
    .and_then(|mut s| s.execute(params![hash.as_slice(), at_ms]))
    .map(|n| n > 0)
    .map_err(db("revoking a session"))
}

// ---------------------------------------------------------------- bearer tokens

fn insert_tokens(
    conn: &Connection,
    family_id: i64,
    p: &NewTokenPair,
) -> Result<TokenPairRow, StoreError> {
    let NewTokenPair {
        user_id,
        access_hash: access,
        refresh_hash: refresh,
        at_ms,
        access_expires_at_ms,
        refresh_expires_at_ms,
    } = *p;
    let conflict = |e: rusqlite::Error| {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                what: "token",
                value: "a token with this hash already exists".into(),
            }
        } else {
            db("issuing tokens")(e)
        }
    };
    conn.prepare_cached(
        "INSERT INTO access_tokens (token_hash, user_id, family_id, created_at_ms, expires_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            access.as_slice(),
            user_id,
            family_id,
            at_ms,
            access_expires_at_ms
        ])
    })
    .map_err(conflict)?;
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, user_id, family_id, created_at_ms, expires_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            refresh.as_slice(),
            user_id,
            family_id,
            at_ms,
            refresh_expires_at_ms
        ])
    })
    .map_err(conflict)?;
    Ok(TokenPairRow {
        family_id,
        user_id,
        access_expires_at_ms,
        refresh_expires_at_ms,
    })
}

fn issue_token_pair(conn: &Connection, p: &NewTokenPair) -> Result<TokenPairRow, StoreError> {
    require_user(conn, p.user_id)?;
    let family_id: i64 = conn
        .prepare_cached(
            "INSERT INTO token_families (user_id, created_at_ms) VALUES (?1, ?2) RETURNING id",
        )
        .and_then(|mut s| s.query_row(params![p.user_id, p.at_ms], |r| r.get(0)))
        .map_err(db("starting a token family"))?;
    insert_tokens(conn, family_id, p)
}

fn access_token(conn: &Connection, hash: &TokenHash) -> Result<Option<AccessTokenRow>, StoreError> {
    const OP: &str = "reading an access token";
    conn.prepare_cached(concat!(
        "SELECT t.family_id, t.created_at_ms, t.expires_at_ms, t.revoked_at_ms, ",
        user_cols!("u."),
        " FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1"
    ))
    .map_err(db(OP))?
    .query_row([hash.as_slice()], |r| {
        Ok(AccessTokenRow {
            family_id: r.get(0)?,
            created_at_ms: r.get(1)?,
            expires_at_ms: r.get(2)?,
            revoked_at_ms: r.get(3)?,
            user: user_at(r, 4)?,
        })
    })
    .optional()
    .map_err(db(OP))
}

/// Revokes a token family and every token in it. Returns the number of tokens revoked now.
fn revoke_family(conn: &Connection, family_id: i64, at_ms: i64) -> Result<u64, StoreError> {
    const OP: &str = "revoking a token family";
    conn.prepare_cached(
        "UPDATE token_families SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
    )
    .and_then(|mut s| s.execute(params![family_id, at_ms]))
    .map_err(db(OP))?;
    let mut n = 0;
    for sql in [
        "UPDATE access_tokens SET revoked_at_ms = ?2 WHERE family_id = ?1 AND revoked_at_ms IS NULL",
        "UPDATE refresh_tokens SET revoked_at_ms = ?2 WHERE family_id = ?1 AND revoked_at_ms IS NULL",
    ] {
        n += conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params![family_id, at_ms]))
            .map_err(db(OP))?;
    }
    Ok(n as u64)
}

/// What presenting a refresh token led to. Every outcome commits (a reuse commits the family's
/// revocation); the `Store` method turns all but `Rotated` into errors afterwards.
enum Rotation {
    Rotated(TokenPairRow, UserRow),
    Reused(i64),
    Revoked,
    Expired,
    Unknown,
}

struct RefreshState {
    user_id: i64,
    family_id: i64,
    expires_at_ms: i64,
    used_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
}

fn rotate_refresh(conn: &Connection, r: &RotateRefresh) -> Result<Rotation, StoreError> {
    const OP: &str = "reading a refresh token";
    let found: Option<RefreshState> = conn
        .prepare_cached(
            "SELECT user_id, family_id, expires_at_ms, used_at_ms, revoked_at_ms \
             FROM refresh_tokens WHERE token_hash = ?1",
        )
        .map_err(db(OP))?
        .query_row([r.presented.as_slice()], |row| {
            Ok(RefreshState {
                user_id: row.get(0)?,
                family_id: row.get(1)?,
                expires_at_ms: row.get(2)?,
                used_at_ms: row.get(3)?,
                revoked_at_ms: row.get(4)?,
            })
        })
        .optional()
        .map_err(db(OP))?;
    let Some(RefreshState {
        user_id,
        family_id,
        expires_at_ms,
        used_at_ms,
        revoked_at_ms,
    }) = found
    else {
        return Ok(Rotation::Unknown);
    };
    if used_at_ms.is_some() {
        revoke_family(conn, family_id, r.at_ms)?;
        return Ok(Rotation::Reused(family_id));
    }
    if revoked_at_ms.is_some() {
        return Ok(Rotation::Revoked);
    }
    if expires_at_ms <= r.at_ms {
        return Ok(Rotation::Expired);
    }
    let u = require_user(conn, user_id)?;
    if !u.active {
        return Ok(Rotation::Revoked);
    }
    conn.prepare_cached("UPDATE refresh_tokens SET used_at_ms = ?2 WHERE token_hash = ?1")
        .and_then(|mut s| s.execute(params![r.presented.as_slice(), r.at_ms]))
        .map_err(db("using a refresh token"))?;
    let pair = insert_tokens(
        conn,
        family_id,
        &NewTokenPair {
            user_id,
            access_hash: r.access_hash,
            refresh_hash: r.refresh_hash,
            at_ms: r.at_ms,
            access_expires_at_ms: r.access_expires_at_ms,
            refresh_expires_at_ms: r.refresh_expires_at_ms,
        },
    )?;
    Ok(Rotation::Rotated(pair, u))
}

/// Deletes sessions and tokens that expired before `before_ms`, and token families left empty.
fn purge_expired_credentials(conn: &Connection, before_ms: i64) -> Result<u64, StoreError> {
    const OP: &str = "purging expired credentials";
    let mut n = 0;
    for sql in [
        "DELETE FROM access_tokens WHERE expires_at_ms < ?1",
        "DELETE FROM refresh_tokens WHERE expires_at_ms < ?1",
        "DELETE FROM auth_sessions WHERE expires_at_ms < ?1",
    ] {
        n += conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute([before_ms]))
            .map_err(db(OP))?;
    }
    conn.prepare_cached(
        "DELETE FROM token_families WHERE NOT EXISTS \
         (SELECT 1 FROM refresh_tokens r WHERE r.family_id = token_families.id) \
         AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = token_families.id)",
    )
    .and_then(|mut s| s.execute([]))
    .map_err(db(OP))?;
    Ok(n as u64)
}

// ---------------------------------------------------------------- guests

fn create_guest(
    conn: &Connection,
    show_id: i64,
    hash: &TokenHash,
    at_ms: i64,
) -> Result<GuestRow, StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM shows WHERE id = ?1")
        .and_then(|mut s| s.exists([show_id]))
        .map_err(db("checking a show"))?;
    if !exists {
        return Err(not_found("show", show_id));
    }
    let inserted = conn
        .prepare_cached(
            "INSERT INTO guests (show_id, token_hash, created_at_ms) VALUES (?1, ?2, ?3) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(params![show_id, hash.as_slice(), at_ms], |r| {
                r.get::<_, i64>(0)
            })
        });
    match inserted {
        Ok(id) => Ok(GuestRow {
            id,
            show_id,
            created_at_ms: at_ms,
        }),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
            what: "guest token",
            value: hash_label(hash),
        }),
        Err(e) => Err(db("creating a guest")(e)),
    }
}

fn guest(conn: &Connection, hash: &TokenHash) -> Result<Option<GuestRow>, StoreError> {
    const OP: &str = "reading a guest";
    conn.prepare_cached("SELECT id, show_id, created_at_ms FROM guests WHERE token_hash = ?1")
        .map_err(db(OP))?
        .query_row([hash.as_slice()], |r| {
            Ok(GuestRow {
                id: r.get(0)?,
                show_id: r.get(1)?,
                created_at_ms: r.get(2)?,
            })
        })
        .optional()
        .map_err(db(OP))
}

// ---------------------------------------------------------------- idempotency keys

fn idem_row(r: &Row<'_>) -> rusqlite::Result<IdempotencyRow> {
    let sha: Vec<u8> = r.get(4)?;
    let status: i64 = r.get(5)?;
    Ok(IdempotencyRow {
        user_id: r.get(0)?,
        key: r.get(1)?,
        method: r.get(2)?,
        path: r.get(3)?,
        request_sha256: sha.as_slice().try_into().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Blob,
                "request_sha256 is not 32 bytes".into(),
            )
        })?,
        status: u16::try_from(status).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Integer, e.into())
        })?,
        response_json: r.get(6)?,
        created_at_ms: r.get(7)?,
    })
}

fn idempotency_key(
    conn: &Connection,
    user_id: i64,
    key: &str,
) -> Result<Option<IdempotencyRow>, StoreError> {
    const OP: &str = "reading an idempotency key";
    conn.prepare_cached(
        "SELECT user_id, key, method, path, request_sha256, status, response_json, created_at_ms \
         FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
    )
    .map_err(db(OP))?
    .query_row(params![user_id, key], idem_row)
    .optional()
    .map_err(db(OP))
}

fn put_idempotency_key(
    conn: &Connection,
    row: &IdempotencyRow,
) -> Result<IdempotencyRow, StoreError> {
    if let Some(existing) = idempotency_key(conn, row.user_id, &row.key)? {
        return Ok(existing);
    }
    require_user(conn, row.user_id)?;
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (user_id, key, method, path, request_sha256, status, \
         response_json, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            row.user_id,
            row.key,
            row.method,
            row.path,
            row.request_sha256.as_slice(),
            row.status,
            row.response_json,
            row.created_at_ms
        ])
    })
    .map_err(db("storing an idempotency key"))?;
    Ok(row.clone())
}

fn claim_idempotency_key(
    conn: &Connection,
    c: &NewIdempotencyClaim,
) -> Result<IdempotencyClaim, StoreError> {
    if let Some(existing) = idempotency_key(conn, c.user_id, &c.key)? {
        return Ok(if existing.status == IDEMPOTENCY_IN_FLIGHT {
            IdempotencyClaim::InFlight {
                request_sha256: existing.request_sha256,
                claimed_at_ms: existing.created_at_ms,
            }
        } else {
            IdempotencyClaim::Done(existing)
        });
    }
    require_user(conn, c.user_id)?;
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (user_id, key, method, path, request_sha256, status, \
         response_json, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'null', ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            c.user_id,
            c.key,
            c.method,
            c.path,
            c.request_sha256.as_slice(),
            IDEMPOTENCY_IN_FLIGHT,
            c.at_ms
        ])
    })
    .map_err(db("claiming an idempotency key"))?;
    Ok(IdempotencyClaim::Claimed)
}

fn complete_idempotency_key(
    conn: &Connection,
    user_id: i64,
    key: &str,
    status: u16,
    response_json: &str,
) -> Result<IdempotencyRow, StoreError> {
    let mut row = idempotency_key(conn, user_id, key)?
        .filter(|r| r.status == IDEMPOTENCY_IN_FLIGHT)
        .ok_or_else(|| not_found("idempotency claim", key))?;
    conn.prepare_cached(
        "UPDATE idempotency_keys SET status = ?3, response_json = ?4 WHERE user_id = ?1 AND key = ?2",
    )
    .and_then(|mut s| s.execute(params![user_id, key, status, response_json]))
    .map_err(db("completing an idempotency key"))?;
    row.status = status;
    response_json.clone_into(&mut row.response_json);
    Ok(row)
}

fn release_idempotency_key(conn: &Connection, user_id: i64, key: &str) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND status = ?3",
    )
    .and_then(|mut s| s.execute(params![user_id, key, IDEMPOTENCY_IN_FLIGHT]))
    .map(|n| n > 0)
    .map_err(db("releasing an idempotency key"))
}

fn purge_idempotency_keys(conn: &Connection, before_ms: i64) -> Result<u64, StoreError> {
    conn.prepare_cached("DELETE FROM idempotency_keys WHERE created_at_ms < ?1")
        .and_then(|mut s| s.execute([before_ms]))
        .map(|n| n as u64)
        .map_err(db("purging idempotency keys"))
}

// ---------------------------------------------------------------- wizard sessions

macro_rules! wizard_cols {
    () => {
        "id, user_id, pack_id, piece_id, state_json, created_at_ms, updated_at_ms"
    };
}

fn wizard_row(r: &Row<'_>) -> rusqlite::Result<WizardSessionRow> {
    Ok(WizardSessionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        pack_id: r.get(2)?,
        piece_id: r.get(3)?,
        state_json: r.get(4)?,
        created_at_ms: r.get(5)?,
        updated_at_ms: r.get(6)?,
    })
}

fn wizard_session(conn: &Connection, id: i64) -> Result<Option<WizardSessionRow>, StoreError> {
    const OP: &str = "reading a wizard session";
    conn.prepare_cached(concat!(
        "SELECT ",
        wizard_cols!(),
        " FROM wizard_sessions WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], wizard_row)
    .optional()
    .map_err(db(OP))
}

fn create_wizard_session(
    conn: &Connection,
    w: &NewWizardSession,
) -> Result<WizardSessionRow, StoreError> {
    require_user(conn, w.user_id)?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO wizard_sessions (user_id, pack_id, state_json, created_at_ms, updated_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(params![w.user_id, w.pack_id, w.state_json, w.at_ms], |r| {
                r.get(0)
            })
        })
        .map_err(db("creating a wizard session"))?;
    Ok(WizardSessionRow {
        id,
        user_id: w.user_id,
        pack_id: w.pack_id.clone(),
        piece_id: None,
        state_json: w.state_json.clone(),
        created_at_ms: w.at_ms,
        updated_at_ms: w.at_ms,
    })
}

fn update_wizard_session(
    conn: &Connection,
    id: i64,
    state_json: &str,
    piece_id: Option<i64>,
    at_ms: i64,
) -> Result<WizardSessionRow, StoreError> {
    let mut row = wizard_session(conn, id)?.ok_or_else(|| not_found("wizard session", id))?;
    if let Some(piece) = piece_id {
        let exists = conn
            .prepare_cached("SELECT 1 FROM pieces WHERE id = ?1")
            .and_then(|mut s| s.exists([piece]))
            .map_err(db("checking a piece"))?;
        if !exists {
            return Err(not_found("piece", piece));
        }
        row.piece_id = Some(piece);
    }
    conn.prepare_cached(
        "UPDATE wizard_sessions SET state_json = ?2, piece_id = ?3, updated_at_ms = ?4 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, state_json, row.piece_id, at_ms]))
    .map_err(db("updating a wizard session"))?;
    state_json.clone_into(&mut row.state_json);
    row.updated_at_ms = at_ms;
    Ok(row)
}

fn wizard_sessions_for_user(
    conn: &Connection,
    user_id: i64,
    page: Page,
) -> Result<(Vec<WizardSessionRow>, Option<i64>), StoreError> {
    const OP: &str = "listing wizard sessions";
    let (after, limit) = page_params(page);
    let rows = rows(
        conn,
        OP,
        concat!(
            "SELECT ",
            wizard_cols!(),
            " FROM wizard_sessions WHERE user_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ),
        params![user_id, after, limit],
        wizard_row,
    )?;
    Ok(paged(rows, page, |w| w.id))
}

// ---------------------------------------------------------------- validation

fn validate_new_user(u: &NewUser) -> Result<(), StoreError> {
    model::validate_username(&u.username)?;
    model::validate_text("display_name", &u.display_name, MAX_DISPLAY_NAME_LEN)?;
    model::validate_password_hash(&u.password_hash)?;
    model::validate_time("at_ms", u.at_ms)
}

fn validate_expiry(field: &'static str, at_ms: i64, expires_at_ms: i64) -> Result<(), StoreError> {
    model::validate_time(field, expires_at_ms)?;
    if expires_at_ms <= at_ms {
        return Err(StoreError::Invalid {
            field,
            value: expires_at_ms.to_string(),
            reason: format!("must be later than the issue time {at_ms}"),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- Store methods

impl Store {
    /// How many accounts exist (0 means first-run setup is open).
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        self.read(user_count).await
    }

    /// First-run setup: creates `u` as an admin (its `role` is ignored) if and only if no
    /// account exists yet, atomically. Otherwise [`StoreError::Conflict`] with `what: "setup"`.
    /// Appends `account.created`. In the same savepoint it creates "All Talk", the chat room
    /// every signed-in account belongs to, with the admin as its first member.
    pub async fn create_first_admin(&self, mut u: NewUser) -> Result<UserRow, StoreError> {
        u.role = UserRole::Admin;
        validate_new_user(&u)?;
        self.write_ev(move |c| create_first_admin(c, &u)).await
    }

    /// Creates a user. A taken username (ignoring case) is [`StoreError::Conflict`] with
    /// `what: "username"`. Appends `account.created`.
    pub async fn create_user(&self, u: NewUser) -> Result<UserRow, StoreError> {
        validate_new_user(&u)?;
        self.write_ev(move |c| insert_user(c, &u)).await
    }

    /// The user with this id.
    pub async fn user(&self, id: i64) -> Result<Option<UserRow>, StoreError> {
        self.read(move |c| user(c, id)).await
    }

    /// The user with this username (ignoring case).
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let name = username.to_owned();
        self.read(move |c| user_by_username(c, &name)).await
    }

    /// The user with this username (ignoring case) and the password hash, for a login.
    pub async fn user_credentials(
        &self,
        username: &str,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let name = username.to_owned();
        self.read(move |c| user_credentials(c, &name)).await
    }

    /// A page of users in id order.
    pub async fn users(&self, page: Page) -> Result<(Vec<UserRow>, Option<i64>), StoreError> {
        model::validate_page(page)?;
        self.read(move |c| users(c, page)).await
    }

    /// Deactivates the user and revokes all their sessions and tokens, atomically. Deactivating an
    /// inactive user changes nothing (and appends no event); the only active admin cannot be
    /// deactivated ([`StoreError::Conflict`], `what: "last admin"`). Appends
    /// `account.deactivated`.
    pub async fn deactivate_user(&self, user_id: i64, at_ms: i64) -> Result<UserRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write_ev(move |c| deactivate_user(c, user_id, at_ms))
            .await
    }

    /// Replaces the user's password hash and revokes every session and token family except
    /// `keep`, atomically. Appends `account.password_changed`.
    pub async fn set_password_hash(
        &self,
        user_id: i64,
        password_hash: &str,
        keep: KeepCredential,
        at_ms: i64,
    ) -> Result<UserRow, StoreError> {
        model::validate_password_hash(password_hash)?;
        model::validate_time("at_ms", at_ms)?;
        let hash = password_hash.to_owned();
        self.write_ev(move |c| set_password_hash(c, user_id, &hash, keep, at_ms))
            .await
    }

    /// Creates a cookie session.
    pub async fn create_auth_session(
        &self,
        s: NewAuthSession,
    ) -> Result<AuthSessionRow, StoreError> {
        model::validate_visible_ascii("csrf_token", &s.csrf_token, 16, 128)?;
        model::validate_time("created_at_ms", s.created_at_ms)?;
        validate_expiry("expires_at_ms", s.created_at_ms, s.expires_at_ms)?;
        self.write(move |c| create_auth_session(c, &s)).await
    }

    /// The cookie session with this token hash and its user — also when revoked or expired: the
    /// caller checks `revoked_at_ms`, `expires_at_ms` and `user.active`.
    pub async fn auth_session(
        &self,
        token_hash: TokenHash,
    ) -> Result<Option<(AuthSessionRow, UserRow)>, StoreError> {
        self.read(move |c| auth_session(c, &token_hash)).await
    }

    /// Revokes a cookie session; `false` when it is unknown or already revoked.
    pub async fn revoke_auth_session(
        &self,
        token_hash: TokenHash,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| revoke_auth_session(c, &token_hash, at_ms))
            .await
    }

    /// Issues an access + refresh token pair in a new token family (a login).
    pub async fn issue_token_pair(&self, p: NewTokenPair) -> Result<TokenPairRow, StoreError> {
        model::validate_time("at_ms", p.at_ms)?;
        validate_expiry("access_expires_at_ms", p.at_ms, p.access_expires_at_ms)?;
        validate_expiry("refresh_expires_at_ms", p.at_ms, p.refresh_expires_at_ms)?;
        self.write(move |c| issue_token_pair(c, &p)).await
    }

    /// The access token with this hash and its user — also when revoked or expired: the caller
    /// checks `revoked_at_ms`, `expires_at_ms` and `user.active`.
    pub async fn access_token(
        &self,
        token_hash: TokenHash,
    ) -> Result<Option<AccessTokenRow>, StoreError> {
        self.read(move |c| access_token(c, &token_hash)).await
    }

    /// Refresh rotation: marks the presented refresh token used and issues a new pair in the same
    /// family, atomically. Presenting a token that was already used revokes the whole family
    /// (that revocation commits) and fails with [`StoreError::TokenReused`]; a revoked token (or
    /// an inactive user) is [`StoreError::TokenRevoked`], an expired one
    /// [`StoreError::TokenExpired`], an unknown one [`StoreError::NotFound`] (`refresh token`).
    pub async fn rotate_refresh(
        &self,
        r: RotateRefresh,
    ) -> Result<(TokenPairRow, UserRow), StoreError> {
        model::validate_time("at_ms", r.at_ms)?;
        validate_expiry("access_expires_at_ms", r.at_ms, r.access_expires_at_ms)?;
        validate_expiry("refresh_expires_at_ms", r.at_ms, r.refresh_expires_at_ms)?;
        let label = hash_label(&r.presented);
        match self.write(move |c| rotate_refresh(c, &r)).await? {
            Rotation::Rotated(pair, user) => Ok((pair, user)),
            Rotation::Reused(family_id) => Err(StoreError::TokenReused { family_id }),
            Rotation::Revoked => Err(StoreError::TokenRevoked),
            Rotation::Expired => Err(StoreError::TokenExpired),
            Rotation::Unknown => Err(not_found("refresh token", label)),
        }
    }

    /// Revokes a token family and its tokens (logout); returns how many tokens it revoked.
    pub async fn revoke_token_family(&self, family_id: i64, at_ms: i64) -> Result<u64, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| revoke_family(c, family_id, at_ms))
            .await
    }

    /// Deletes cookie sessions, access and refresh tokens that expired before `before_ms` (and
    /// token families left without tokens); returns how many sessions and tokens it deleted. A
    /// deleted refresh token presented later is simply unknown ([`StoreError::NotFound`]).
    pub async fn purge_expired_credentials(&self, before_ms: i64) -> Result<u64, StoreError> {
        model::validate_time("before_ms", before_ms)?;
        self.write(move |c| purge_expired_credentials(c, before_ms))
            .await
    }

    /// Registers an anonymous audience device for a show.
    pub async fn create_guest(
        &self,
        show_id: i64,
        token_hash: TokenHash,
        at_ms: i64,
    ) -> Result<GuestRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| create_guest(c, show_id, &token_hash, at_ms))
            .await
    }

    /// The guest with this device token hash.
    pub async fn guest(&self, token_hash: TokenHash) -> Result<Option<GuestRow>, StoreError> {
        self.read(move |c| guest(c, &token_hash)).await
    }

    /// The stored response for `(user_id, key)`.
    pub async fn idempotency_key(
        &self,
        user_id: i64,
        key: &str,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        let key = key.to_owned();
        self.read(move |c| idempotency_key(c, user_id, &key)).await
    }

    /// Stores a response for `(user_id, key)`. The first writer wins: if the key is already
    /// stored, the EXISTING row is returned unchanged (compare its `request_sha256`).
    pub async fn put_idempotency_key(
        &self,
        row: IdempotencyRow,
    ) -> Result<IdempotencyRow, StoreError> {
        model::validate_visible_ascii("idempotency key", &row.key, 1, MAX_IDEMPOTENCY_KEY_LEN)?;
        model::validate_visible_ascii("method", &row.method, 1, 16)?;
        model::validate_visible_ascii("path", &row.path, 1, 2048)?;
        if !(100..=599).contains(&row.status) {
            return Err(StoreError::Invalid {
                field: "status",
                value: row.status.to_string(),
                reason: "must be an HTTP status (100..=599)".into(),
            });
        }
        model::validate_json("response_json", &row.response_json, MAX_RESPONSE_JSON)?;
        model::validate_time("created_at_ms", row.created_at_ms)?;
        self.write(move |c| put_idempotency_key(c, &row)).await
    }

    /// Claims `(user_id, key)` before running the request it guards, atomically (so two
    /// concurrent requests with one key cannot both run): [`IdempotencyClaim::Claimed`] when
    /// the key was free, [`IdempotencyClaim::Done`] with the stored response when a request with
    /// the key finished, [`IdempotencyClaim::InFlight`] while one is running. A claim is stored
    /// with status [`IDEMPOTENCY_IN_FLIGHT`] until completed or released.
    pub async fn claim_idempotency_key(
        &self,
        c: NewIdempotencyClaim,
    ) -> Result<IdempotencyClaim, StoreError> {
        model::validate_visible_ascii("idempotency key", &c.key, 1, MAX_IDEMPOTENCY_KEY_LEN)?;
        model::validate_visible_ascii("method", &c.method, 1, 16)?;
        model::validate_visible_ascii("path", &c.path, 1, 2048)?;
        model::validate_time("at_ms", c.at_ms)?;
        self.write(move |conn| claim_idempotency_key(conn, &c))
            .await
    }

    /// Stores the response of a claimed request. No claim in flight for the key:
    /// [`StoreError::NotFound`] (`what: "idempotency claim"`).
    pub async fn complete_idempotency_key(
        &self,
        user_id: i64,
        key: &str,
        status: u16,
        response_json: &str,
    ) -> Result<IdempotencyRow, StoreError> {
        if !(100..=599).contains(&status) || status == IDEMPOTENCY_IN_FLIGHT {
            return Err(StoreError::Invalid {
                field: "status",
                value: status.to_string(),
                reason: "must be a final HTTP status (100..=599, not 102)".into(),
            });
        }
        model::validate_json("response_json", response_json, MAX_RESPONSE_JSON)?;
        let (key, response) = (key.to_owned(), response_json.to_owned());
        self.write(move |c| complete_idempotency_key(c, user_id, &key, status, &response))
            .await
    }

    /// Drops an in-flight claim (the request failed without effect, so a retry may run it);
    /// `false` when there was none. Finished keys are never released.
    pub async fn release_idempotency_key(
        &self,
        user_id: i64,
        key: &str,
    ) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.write(move |c| release_idempotency_key(c, user_id, &key))
            .await
    }

    /// Deletes idempotency keys stored before `before_ms`; returns how many.
    pub async fn purge_idempotency_keys(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |c| purge_idempotency_keys(c, before_ms))
            .await
    }

    /// Starts a wizard session.
    pub async fn create_wizard_session(
        &self,
        w: NewWizardSession,
    ) -> Result<WizardSessionRow, StoreError> {
        model::validate_visible_ascii("pack_id", &w.pack_id, 1, 64)?;
        model::validate_json("state_json", &w.state_json, MAX_WIZARD_STATE_JSON)?;
        model::validate_time("at_ms", w.at_ms)?;
        self.write(move |c| create_wizard_session(c, &w)).await
    }

    /// The wizard session with this id.
    pub async fn wizard_session(&self, id: i64) -> Result<Option<WizardSessionRow>, StoreError> {
        self.read(move |c| wizard_session(c, id)).await
    }

    /// Replaces a wizard session's state (and sets its piece when `piece_id` is `Some`; `None`
    /// leaves it unchanged).
    pub async fn update_wizard_session(
        &self,
        id: i64,
        state_json: &str,
        piece_id: Option<i64>,
        at_ms: i64,
    ) -> Result<WizardSessionRow, StoreError> {
        model::validate_json("state_json", state_json, MAX_WIZARD_STATE_JSON)?;
        model::validate_time("at_ms", at_ms)?;
        let state = state_json.to_owned();
        self.write(move |c| update_wizard_session(c, id, &state, piece_id, at_ms))
            .await
    }

    /// A page of the user's wizard sessions in id order.
    pub async fn wizard_sessions_for_user(
        &self,
        user_id: i64,
        page: Page,
    ) -> Result<(Vec<WizardSessionRow>, Option<i64>), StoreError> {
        model::validate_page(page)?;
        self.read(move |c| wizard_sessions_for_user(c, user_id, page))
            .await
    }
}
