//! Chat bots (issue 12, item 7, migration 12): accounts that act in chat through the REST API
//! with a key, and may have an outgoing webhook.
//!
//! A bot is a `users` row of role `audience` (no management rights, never "All Talk") with the
//! password hash [`BOT_PASSWORD_HASH`], which no password verifies, and its `chat_bots` row.
//! Its username is its name, so `@name` mentions it and no account can take the name while
//! the bot exists; its display name is the same. Rooms hold it as a member like anyone else
//! (`chat_members`). The store keeps only the SHA-256 of its key; the webhook secret is kept
//! as a webhook's is, because signing a delivery needs it. Deleting a bot deactivates its
//! account, drops its memberships and renames the account `~bot-<id>` (usernames refuse `~`),
//! so its messages stay and its name is free again.
//!
//! Must never: store or return a bot's key, let a deleted bot's key find it, or put the
//! webhook secret in an outbox event or an error.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::not_found;
use crate::accounts::rows;
use crate::error::{db, is_unique_violation, StoreError};
use crate::model::{self, TokenHash};
use crate::Store;

/// The password hash of every bot: the shape the schema asks of a hash, no PHC string, so no
/// password verifies against it and sign-in refuses it like a wrong password.
pub const BOT_PASSWORD_HASH: &str = "$argon2id$bot-cannot-sign-in";
/// The most characters in a bot's name (`[A-Za-z0-9._-]`, its username).
pub const MAX_CHAT_BOT_NAME_CHARS: usize = 32;
/// The most bytes in a bot's webhook URL.
pub const MAX_CHAT_BOT_URL_LEN: usize = 2000;

/// A bot to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatBot {
    /// 1–32 of `[A-Za-z0-9._-]`, unique among usernames (case-insensitively).
    pub name: String,
    /// The ensemble whose owners and performers manage it (`None`: admins only).
    pub ensemble_id: Option<i64>,
    /// Where mentions and direct messages are POSTed (checked by the caller: http/https).
    pub webhook_url: Option<String>,
    /// The secret deliveries are signed with (16–200 bytes).
    pub webhook_secret: String,
    /// SHA-256 of its key.
    pub key_hash: TokenHash,
    /// Who made it.
    pub created_by: Option<i64>,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// A bot (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatBotRow {
    /// Its account's id (what rooms, messages and events name).
    pub user_id: i64,
    /// Its name (its username, what `@name` mentions).
    pub name: String,
    /// The ensemble whose owners and performers manage it.
    pub ensemble_id: Option<i64>,
    /// Its outgoing webhook.
    pub webhook_url: Option<String>,
    /// The secret its deliveries are signed with.
    #[serde(skip)]
    pub webhook_secret: String,
    /// Who made it.
    pub created_by: Option<i64>,
    /// When, unix milliseconds.
    pub created_at_ms: i64,
    /// When its key was last set (creation or rotation).
    pub key_rotated_at_ms: i64,
    /// When it was deleted (a deleted bot's key finds nothing).
    pub deleted_at_ms: Option<i64>,
}

const BOT_SELECT: &str = "SELECT b.user_id, u.username, b.ensemble_id, b.webhook_url, \
     b.webhook_secret, b.created_by, b.created_at_ms, b.key_rotated_at_ms, b.deleted_at_ms \
     FROM chat_bots b JOIN users u ON u.id = b.user_id";

fn bot_row(r: &Row<'_>) -> rusqlite::Result<ChatBotRow> {
    Ok(ChatBotRow {
        user_id: r.get(0)?,
        name: r.get(1)?,
        ensemble_id: r.get(2)?,
        webhook_url: r.get(3)?,
        webhook_secret: r.get(4)?,
        created_by: r.get(5)?,
        created_at_ms: r.get(6)?,
        key_rotated_at_ms: r.get(7)?,
        deleted_at_ms: r.get(8)?,
    })
}

fn validate_name(name: &str) -> Result<(), StoreError> {
    if name.chars().count() > MAX_CHAT_BOT_NAME_CHARS {
        return Err(StoreError::Invalid {
            field: "name",
            value: model::preview(name),
            reason: format!("longer than {MAX_CHAT_BOT_NAME_CHARS} characters"),
        });
    }
    model::validate_username(name)
}

fn validate_new(b: &NewChatBot) -> Result<(), StoreError> {
    validate_name(&b.name)?;
    validate_url(b.webhook_url.as_deref())?;
    validate_secret(&b.webhook_secret)?;
    model::validate_time("at_ms", b.at_ms)
}

fn validate_url(url: Option<&str>) -> Result<(), StoreError> {
    match url {
        Some(u) if u.is_empty() || u.len() > MAX_CHAT_BOT_URL_LEN => Err(StoreError::Invalid {
            field: "webhook_url",
            value: model::preview(u),
            reason: format!("must be 1–{MAX_CHAT_BOT_URL_LEN} bytes"),
        }),
        _ => Ok(()),
    }
}

fn validate_secret(secret: &str) -> Result<(), StoreError> {
    if !(16..=200).contains(&secret.len()) {
        return Err(StoreError::Invalid {
            field: "webhook_secret",
            value: "<redacted>".into(),
            reason: "must be 16–200 bytes".into(),
        });
    }
    Ok(())
}

fn bot(conn: &Connection, user_id: i64) -> Result<Option<ChatBotRow>, StoreError> {
    const OP: &str = "reading a bot";
    conn.prepare_cached(&format!("{BOT_SELECT} WHERE b.user_id = ?1"))
        .map_err(db(OP))?
        .query_row([user_id], bot_row)
        .optional()
        .map_err(db(OP))
}

fn live_bot(conn: &Connection, user_id: i64) -> Result<ChatBotRow, StoreError> {
    bot(conn, user_id)?
        .filter(|b| b.deleted_at_ms.is_none())
        .ok_or_else(|| not_found("bot", user_id))
}

fn create(conn: &Connection, b: &NewChatBot) -> Result<ChatBotRow, StoreError> {
    const OP: &str = "creating a bot";
    if let Some(e) = b.ensemble_id {
        if !super::exists(conn, OP, "SELECT 1 FROM ensembles WHERE id = ?1", e)? {
            return Err(not_found("ensemble", e));
        }
    }
    let inserted = conn
        .prepare_cached(
            "INSERT INTO users (username, display_name, password_hash, role, active, \
             created_at_ms, password_changed_at_ms) VALUES (?1, ?1, ?2, 'audience', 1, ?3, ?3) \
             RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(params![b.name, BOT_PASSWORD_HASH, b.at_ms], |r| {
                r.get::<_, i64>(0)
            })
        });
    let user_id = match inserted {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: "username",
                value: b.name.clone(),
            })
        }
        Err(e) => return Err(db(OP)(e)),
    };
    conn.prepare_cached(
        "INSERT INTO chat_bots (user_id, ensemble_id, key_hash, webhook_url, webhook_secret, \
         created_by, created_at_ms, key_rotated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            user_id,
            b.ensemble_id,
            b.key_hash.as_slice(),
            b.webhook_url,
            b.webhook_secret,
            b.created_by,
            b.at_ms
        ])
    })
    .map_err(db(OP))?;
    live_bot(conn, user_id)
}

fn by_key(conn: &Connection, key_hash: &TokenHash) -> Result<Option<ChatBotRow>, StoreError> {
    const OP: &str = "finding a bot by its key";
    conn.prepare_cached(&format!(
        "{BOT_SELECT} WHERE b.key_hash = ?1 AND b.deleted_at_ms IS NULL AND u.active = 1"
    ))
    .map_err(db(OP))?
    .query_row([key_hash.as_slice()], bot_row)
    .optional()
    .map_err(db(OP))
}

fn rotate(
    conn: &Connection,
    user_id: i64,
    key_hash: &TokenHash,
    secret: &str,
    at_ms: i64,
) -> Result<ChatBotRow, StoreError> {
    live_bot(conn, user_id)?;
    conn.prepare_cached(
        "UPDATE chat_bots SET key_hash = ?2, webhook_secret = ?3, key_rotated_at_ms = ?4 \
         WHERE user_id = ?1",
    )
    .and_then(|mut s| s.execute(params![user_id, key_hash.as_slice(), secret, at_ms]))
    .map_err(db("rotating a bot's key"))?;
    live_bot(conn, user_id)
}

fn set_url(conn: &Connection, user_id: i64, url: Option<&str>) -> Result<ChatBotRow, StoreError> {
    live_bot(conn, user_id)?;
    conn.prepare_cached("UPDATE chat_bots SET webhook_url = ?2 WHERE user_id = ?1")
        .and_then(|mut s| s.execute(params![user_id, url]))
        .map_err(db("changing a bot's webhook"))?;
    live_bot(conn, user_id)
}

fn delete(conn: &Connection, user_id: i64, at_ms: i64) -> Result<ChatBotRow, StoreError> {
    const OP: &str = "deleting a bot";
    live_bot(conn, user_id)?;
    conn.prepare_cached("UPDATE chat_bots SET deleted_at_ms = ?2 WHERE user_id = ?1")
        .and_then(|mut s| s.execute(params![user_id, at_ms]))
        .map_err(db(OP))?;
    conn.prepare_cached("UPDATE users SET active = 0, username = '~bot-' || id WHERE id = ?1")
        .and_then(|mut s| s.execute([user_id]))
        .map_err(db(OP))?;
    conn.prepare_cached("DELETE FROM chat_members WHERE user_id = ?1")
        .and_then(|mut s| s.execute([user_id]))
        .map_err(db(OP))?;
    bot(conn, user_id)?.ok_or_else(|| not_found("bot", user_id))
}

fn list(conn: &Connection, ensembles: Option<&[i64]>) -> Result<Vec<ChatBotRow>, StoreError> {
    let all = rows(
        conn,
        "listing bots",
        &format!("{BOT_SELECT} WHERE b.deleted_at_ms IS NULL ORDER BY b.user_id"),
        [],
        bot_row,
    )?;
    Ok(match ensembles {
        None => all,
        Some(ids) => all
            .into_iter()
            .filter(|b| b.ensemble_id.is_some_and(|e| ids.contains(&e)))
            .collect(),
    })
}

/// The bots of a room that a post by `author_id` calls: those it `@mentions` by name and, in a
/// direct room, every other bot in it. Only live bots with a webhook; never the author itself.
fn called(
    conn: &Connection,
    room_id: i64,
    author_id: i64,
    mentions: &[String],
) -> Result<Vec<ChatBotRow>, StoreError> {
    let room = super::require_room(conn, room_id)?;
    let in_room = rows(
        conn,
        "finding the bots of a room",
        &format!(
            "{BOT_SELECT} JOIN chat_members m ON m.user_id = b.user_id AND m.room_id = ?1 \
             WHERE b.deleted_at_ms IS NULL AND u.active = 1 AND b.webhook_url IS NOT NULL \
             AND b.user_id <> ?2 ORDER BY b.user_id"
        ),
        params![room_id, author_id],
        bot_row,
    )?;
    let direct = room.kind == super::ChatRoomKind::Direct;
    Ok(in_room
        .into_iter()
        .filter(|b| direct || mentions.iter().any(|m| m.eq_ignore_ascii_case(&b.name)))
        .collect())
}

impl Store {
    /// Creates a bot: its account and its row, in one savepoint. A name any account already
    /// has (case-insensitively) is [`StoreError::Conflict`] `username`.
    pub async fn chat_create_bot(&self, b: NewChatBot) -> Result<ChatBotRow, StoreError> {
        validate_new(&b)?;
        let made = self.write(move |c| create(c, &b)).await?;
        self.inner
            .bots
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(made)
    }

    /// Whether a bot may exist: `false` only while no bot was ever made in this store, so a
    /// post needs no bot lookups (an answer read from memory, never the database).
    pub fn chat_bots_may_exist(&self) -> bool {
        self.inner.bots.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A bot, deleted or not (`None`: no bot has this account id).
    pub async fn chat_bot(&self, user_id: i64) -> Result<Option<ChatBotRow>, StoreError> {
        self.read(move |c| bot(c, user_id)).await
    }

    /// The live bot whose key has this SHA-256, if any.
    pub async fn chat_bot_by_key(
        &self,
        key_hash: TokenHash,
    ) -> Result<Option<ChatBotRow>, StoreError> {
        self.read(move |c| by_key(c, &key_hash)).await
    }

    /// Live bots, by id: all (`None`), or those of these ensembles.
    pub async fn chat_bots(
        &self,
        ensembles: Option<Vec<i64>>,
    ) -> Result<Vec<ChatBotRow>, StoreError> {
        self.read(move |c| list(c, ensembles.as_deref())).await
    }

    /// Replaces a live bot's key (by its hash) and webhook secret: the old key stops working
    /// when this commits.
    pub async fn chat_rotate_bot_key(
        &self,
        user_id: i64,
        key_hash: TokenHash,
        webhook_secret: String,
        at_ms: i64,
    ) -> Result<ChatBotRow, StoreError> {
        validate_secret(&webhook_secret)?;
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| rotate(c, user_id, &key_hash, &webhook_secret, at_ms))
            .await
    }

    /// Sets or clears a live bot's webhook URL.
    pub async fn chat_set_bot_webhook(
        &self,
        user_id: i64,
        url: Option<String>,
    ) -> Result<ChatBotRow, StoreError> {
        validate_url(url.as_deref())?;
        self.write(move |c| set_url(c, user_id, url.as_deref()))
            .await
    }

    /// Deletes a live bot (see the module's documentation); its messages stay.
    pub async fn chat_delete_bot(
        &self,
        user_id: i64,
        at_ms: i64,
    ) -> Result<ChatBotRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| delete(c, user_id, at_ms)).await
    }

    /// The bots with a webhook that a post by `author_id` in `room_id` calls (`mentions`: the
    /// usernames the post mentions): mentioned members and, in a direct room, every other bot.
    pub async fn chat_called_bots(
        &self,
        room_id: i64,
        author_id: i64,
        mentions: Vec<String>,
    ) -> Result<Vec<ChatBotRow>, StoreError> {
        self.read(move |c| called(c, room_id, author_id, &mentions))
            .await
    }
}

/// Whether the store holds any bot (deleted ones too), read once when it opens; `true` when
/// it cannot tell (posts then look bots up, as they always may).
pub(crate) fn bots_exist(conn: &Connection) -> bool {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM chat_bots)", [], |r| r.get(0))
        .unwrap_or(true)
}
