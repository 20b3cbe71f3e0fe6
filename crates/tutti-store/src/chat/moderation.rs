//! Chat moderation (issue 12, item 8; schema migration 9): a room's settings (slow mode, word
//! filter), restrictions of one user in one room (mute, shadow-mute, ban), moderators'
//! removals, and the audit log — each change one savepoint with its audit row.
//!
//! # Who moderates
//! The store decides who is *exempt* (a moderator of the room: an admin, or a member of the
//! room's ensemble — owner, performer or crew), the same people the API and the live side let
//! moderate. Who may *change* settings or restrictions is the caller's check, as for the rest
//! of chat; the store records who did it.
//!
//! # Enforcement
//! [`check_post`] runs inside the post's savepoint, so the REST route and `/live/v1` are held to
//! the same rules in one place, in this order: a ban (`banned`), a mute (`muted`), the word
//! filter (`filtered`, naming the word), slow mode (`slow_mode`, with the seconds still to
//! wait; the time is the post's own `at_ms`, which the API takes from its injectable clock).
//! Moderators pass the filter and slow mode and cannot be restricted. A shadow-muted author's
//! post is accepted and stored `hidden`: it takes its `seq` like any other (the sequence stays
//! gap-free) and readers who are neither its author nor a moderator skip it.
//!
//! Must never: let a restricted user's post through, change a setting or restriction without
//! its audit row, or restrict a moderator.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{invalid, not_found, require_room, ChatRoomRow};
use crate::accounts::{require_user, rows};
use crate::error::{db, StoreError};
use crate::model::{self, preview};
use crate::Store;

/// The longest slow mode, seconds.
pub const MAX_CHAT_SLOW_MODE_S: u32 = 3600;
/// The longest audience delay, seconds.
pub const MAX_CHAT_AUDIENCE_DELAY_S: u32 = 60;
/// The most entries in a room's word filter.
pub const MAX_CHAT_FILTER_WORDS: usize = 200;
/// The most characters in one filter entry.
pub const MAX_CHAT_FILTER_WORD_CHARS: usize = 100;
/// The most characters in a moderation reason.
pub const MAX_CHAT_REASON_CHARS: usize = 500;
/// The most audit entries in one page.
pub const MAX_CHAT_MOD_LOG_PAGE: u32 = 500;

chat_enum!(
    /// What a restriction does to one user in one room.
    ChatRestrictionKind, "restriction kind", [
        /// Cannot post (told `muted`); still reads.
        Mute => "mute",
        /// Posts are accepted but seen only by the author and the room's moderators.
        ShadowMute => "shadow_mute",
        /// Cannot read or post; live sessions in the room are closed.
        Ban => "ban"
    ]
);

chat_enum!(
    /// A moderation action in the audit log.
    ChatModAction, "moderation action", [
        /// Slow mode or the word filter changed.
        SettingsChanged => "settings_changed",
        /// A user was muted, shadow-muted or banned (`detail.kind`).
        Restricted => "restricted",
        /// A user's restriction was lifted (`detail.kind`: the one lifted).
        Unrestricted => "unrestricted",
        /// A moderator removed someone else's message.
        MessageRemoved => "message_removed",
        /// A message was approved for the big screen's wall.
        WallApproved => "wall_approved",
        /// A message was rejected for the wall (or taken off it).
        WallRejected => "wall_rejected",
        /// A message was pinned in its room.
        Pinned => "pinned",
        /// A message was unpinned.
        Unpinned => "unpinned",
        /// A question was marked answered.
        Answered => "answered"
    ]
);

/// Why a post was refused (the store's [`StoreError::ChatRefused`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ChatRefusal {
    /// The author is muted in the room.
    Muted,
    /// The author is banned from the room.
    Banned,
    /// Slow mode: the author posted less than the room's wait ago.
    SlowMode {
        /// Whole seconds still to wait (at least 1).
        retry_after_s: u32,
        /// The room's slow mode, seconds.
        slow_mode_s: u32,
    },
    /// The text holds an entry of the room's word filter.
    Filtered {
        /// The entry it matched, as the room's filter spells it.
        word: String,
    },
}

impl ChatRefusal {
    /// The stable code: `muted`, `banned`, `slow_mode` or `filtered`.
    pub const fn code(&self) -> &'static str {
        match self {
            ChatRefusal::Muted => "muted",
            ChatRefusal::Banned => "banned",
            ChatRefusal::SlowMode { .. } => "slow_mode",
            ChatRefusal::Filtered { .. } => "filtered",
        }
    }
}

impl std::fmt::Display for ChatRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatRefusal::Muted => f.write_str("you are muted in this room"),
            ChatRefusal::Banned => f.write_str("you are banned from this room"),
            ChatRefusal::SlowMode {
                retry_after_s,
                slow_mode_s,
            } => write!(
                f,
                "slow mode: one message per {slow_mode_s} s; wait {retry_after_s} s"
            ),
            ChatRefusal::Filtered { word } => {
                write!(f, "the message contains a filtered word: {word:?}")
            }
        }
    }
}

/// A room's moderation settings (the defaults when none were set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatRoomSettings {
    /// The room.
    pub room_id: i64,
    /// Seconds between one user's messages (0: off); moderators are exempt.
    pub slow_mode_s: u32,
    /// Words and phrases refused in messages (matched case-insensitively on word boundaries).
    pub filter: Vec<String>,
    /// Seconds an audience member's message is held before others see it (0: off), so crew
    /// can remove it first; its author and the room's moderators see it at once.
    pub audience_delay_s: u32,
    /// Who changed them last.
    pub updated_by: Option<i64>,
    /// When, unix milliseconds.
    pub updated_at_ms: Option<i64>,
}

/// New moderation settings for a room (each replaces the room's current one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatSettingsChange {
    /// Seconds between one user's messages, 0–3600 (0: off).
    pub slow_mode_s: u32,
    /// The word filter.
    pub filter: Vec<String>,
    /// Seconds an audience member's message is held, 0–60 (0: off).
    pub audience_delay_s: u32,
}

/// One user's restriction in one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatRestrictionRow {
    /// The room.
    pub room_id: i64,
    /// The user.
    pub user_id: i64,
    /// Mute, shadow-mute or ban.
    pub kind: ChatRestrictionKind,
    /// Why (shown to moderators only).
    pub reason: Option<String>,
    /// The moderator who set it.
    pub created_by: i64,
    /// When, unix milliseconds.
    pub created_at_ms: i64,
}

/// One entry of a room's moderation audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatModLogRow {
    /// Its id (increasing).
    pub id: i64,
    /// The room.
    pub room_id: i64,
    /// Who did it.
    pub actor_id: i64,
    /// What.
    pub action: ChatModAction,
    /// To whom (restrictions, removals).
    pub target_user_id: Option<i64>,
    /// The message (removals).
    pub message_id: Option<i64>,
    /// The facts of the action (the new settings, the restriction's kind).
    pub detail: serde_json::Value,
    /// Why, as the moderator wrote it.
    pub reason: Option<String>,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

// ---------------------------------------------------------------- validation

pub(super) fn validate_reason(reason: Option<&str>) -> Result<(), StoreError> {
    match reason {
        Some(r) => model::validate_text("reason", r, MAX_CHAT_REASON_CHARS),
        None => Ok(()),
    }
}

/// A filter as stored: each entry trimmed, 1–100 characters, no control characters,
/// duplicates (ignoring case) dropped, at most 200.
fn normalise_filter(filter: &[String]) -> Result<Vec<String>, StoreError> {
    if filter.len() > MAX_CHAT_FILTER_WORDS {
        return Err(invalid(
            "filter",
            &filter.len().to_string(),
            format!("more than {MAX_CHAT_FILTER_WORDS} entries"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(filter.len());
    for w in filter {
        let t = w.trim();
        model::validate_text("filter", t, MAX_CHAT_FILTER_WORD_CHARS)?;
        if !t.chars().any(char::is_alphanumeric) {
            return Err(invalid("filter", t, "an entry needs a letter or digit"));
        }
        if !out.iter().any(|o| o.to_lowercase() == t.to_lowercase()) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// The first filter entry `text` contains, case-insensitively, as whole words: the characters
/// on either side of the match are not letters or digits ("ass" does not match "class").
pub fn filter_match<'a>(filter: &'a [String], text: &str) -> Option<&'a str> {
    let hay = text.to_lowercase();
    filter.iter().map(String::as_str).find(|word| {
        let needle = word.to_lowercase();
        if needle.is_empty() {
            return false;
        }
        let mut from = 0;
        while let Some(i) = hay[from..].find(&needle) {
            let start = from + i;
            let end = start + needle.len();
            let before = hay[..start].chars().next_back();
            let after = hay[end..].chars().next();
            if !before.is_some_and(char::is_alphanumeric)
                && !after.is_some_and(char::is_alphanumeric)
            {
                return true;
            }
            from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
        }
        false
    })
}

// ---------------------------------------------------------------- SQL

fn settings(conn: &Connection, room_id: i64) -> Result<ChatRoomSettings, StoreError> {
    const OP: &str = "reading a room's moderation settings";
    let found = conn
        .prepare_cached(
            "SELECT slow_mode_s, filter_json, updated_by, updated_at_ms, audience_delay_s \
             FROM chat_room_settings WHERE room_id = ?1",
        )
        .map_err(db(OP))?
        .query_row([room_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()
        .map_err(db(OP))?;
    Ok(match found {
        Some((slow, filter, by, at, delay)) => ChatRoomSettings {
            room_id,
            slow_mode_s: u32::try_from(slow).unwrap_or(0),
            filter: serde_json::from_str(&filter)
                .map_err(|e| StoreError::Internal(format!("room {room_id}'s filter: {e}")))?,
            audience_delay_s: u32::try_from(delay).unwrap_or(0),
            updated_by: by,
            updated_at_ms: Some(at),
        },
        None => ChatRoomSettings {
            room_id,
            slow_mode_s: 0,
            filter: Vec::new(),
            audience_delay_s: 0,
            updated_by: None,
            updated_at_ms: None,
        },
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn log(
    conn: &Connection,
    room_id: i64,
    actor_id: i64,
    action: ChatModAction,
    target: Option<i64>,
    message_id: Option<i64>,
    detail: &serde_json::Value,
    reason: Option<&str>,
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO chat_mod_log (room_id, actor_id, action, target_user_id, message_id, \
         detail_json, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            room_id,
            actor_id,
            action.as_str(),
            target,
            message_id,
            detail.to_string(),
            reason,
            at_ms
        ])
    })
    .map_err(db("writing the moderation log"))?;
    Ok(())
}

fn set_settings(
    conn: &Connection,
    room_id: i64,
    actor: i64,
    change: &ChatSettingsChange,
    at_ms: i64,
) -> Result<ChatRoomSettings, StoreError> {
    require_room(conn, room_id)?;
    require_user(conn, actor)?;
    let json =
        serde_json::to_string(&change.filter).map_err(|e| StoreError::Internal(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO chat_room_settings (room_id, slow_mode_s, filter_json, updated_by, \
         updated_at_ms, audience_delay_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (room_id) DO UPDATE SET \
         slow_mode_s = excluded.slow_mode_s, filter_json = excluded.filter_json, \
         updated_by = excluded.updated_by, updated_at_ms = excluded.updated_at_ms, \
         audience_delay_s = excluded.audience_delay_s",
    )
    .and_then(|mut s| {
        s.execute(params![
            room_id,
            change.slow_mode_s,
            json,
            actor,
            at_ms,
            change.audience_delay_s
        ])
    })
    .map_err(db("changing a room's moderation settings"))?;
    log(
        conn,
        room_id,
        actor,
        ChatModAction::SettingsChanged,
        None,
        None,
        &serde_json::json!({
            "slow_mode_s": change.slow_mode_s,
            "filter_entries": change.filter.len(),
            "audience_delay_s": change.audience_delay_s,
        }),
        None,
        at_ms,
    )?;
    settings(conn, room_id)
}

/// Whether `user` moderates `room`: an admin, or a member of the room's ensemble.
pub(super) fn moderates(
    conn: &Connection,
    room: &ChatRoomRow,
    user: i64,
) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT (SELECT role = 'admin' AND active = 1 FROM users WHERE id = ?1) \
         OR EXISTS (SELECT 1 FROM memberships WHERE ensemble_id = ?2 AND user_id = ?1)",
    )
    .map_err(db("checking a moderator"))?
    .query_row(params![user, room.ensemble_id], |r| {
        r.get::<_, Option<bool>>(0)
    })
    .map(|v| v.unwrap_or(false))
    .map_err(db("checking a moderator"))
}

const RESTRICTION_COLS: &str =
    "room_id, user_id, kind, reason, created_by, created_at_ms FROM chat_restrictions";

fn restriction_row(r: &Row<'_>) -> rusqlite::Result<ChatRestrictionRow> {
    Ok(ChatRestrictionRow {
        room_id: r.get(0)?,
        user_id: r.get(1)?,
        kind: crate::ops::parse_col(r, 2)?,
        reason: r.get(3)?,
        created_by: r.get(4)?,
        created_at_ms: r.get(5)?,
    })
}

pub(super) fn restriction(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
) -> Result<Option<ChatRestrictionRow>, StoreError> {
    const OP: &str = "reading a restriction";
    conn.prepare_cached(&format!(
        "SELECT {RESTRICTION_COLS} WHERE room_id = ?1 AND user_id = ?2"
    ))
    .map_err(db(OP))?
    .query_row(params![room_id, user_id], restriction_row)
    .optional()
    .map_err(db(OP))
}

#[allow(clippy::too_many_arguments)]
fn restrict(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
    kind: ChatRestrictionKind,
    actor: i64,
    reason: Option<&str>,
    at_ms: i64,
) -> Result<ChatRestrictionRow, StoreError> {
    let room = require_room(conn, room_id)?;
    require_user(conn, user_id)?;
    require_user(conn, actor)?;
    if moderates(conn, &room, user_id)? {
        return Err(StoreError::Conflict {
            what: "moderator",
            value: format!("user {user_id} moderates room {room_id}"),
        });
    }
    conn.prepare_cached(
        "INSERT INTO chat_restrictions (room_id, user_id, kind, reason, created_by, \
         created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (room_id, user_id) DO UPDATE \
         SET kind = excluded.kind, reason = excluded.reason, created_by = excluded.created_by, \
         created_at_ms = excluded.created_at_ms",
    )
    .and_then(|mut s| {
        s.execute(params![
            room_id,
            user_id,
            kind.as_str(),
            reason,
            actor,
            at_ms
        ])
    })
    .map_err(db("restricting a user"))?;
    log(
        conn,
        room_id,
        actor,
        ChatModAction::Restricted,
        Some(user_id),
        None,
        &serde_json::json!({"kind": kind.as_str()}),
        reason,
        at_ms,
    )?;
    restriction(conn, room_id, user_id)?
        .ok_or_else(|| StoreError::Internal("restriction vanished".into()))
}

fn unrestrict(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
    actor: i64,
    reason: Option<&str>,
    at_ms: i64,
) -> Result<ChatRestrictionRow, StoreError> {
    require_user(conn, actor)?;
    let found = restriction(conn, room_id, user_id)?
        .ok_or_else(|| not_found("restriction", format!("user {user_id} in room {room_id}")))?;
    conn.prepare_cached("DELETE FROM chat_restrictions WHERE room_id = ?1 AND user_id = ?2")
        .and_then(|mut s| s.execute(params![room_id, user_id]))
        .map_err(db("lifting a restriction"))?;
    log(
        conn,
        room_id,
        actor,
        ChatModAction::Unrestricted,
        Some(user_id),
        None,
        &serde_json::json!({"kind": found.kind.as_str()}),
        reason,
        at_ms,
    )?;
    Ok(found)
}

fn restrictions(conn: &Connection, room_id: i64) -> Result<Vec<ChatRestrictionRow>, StoreError> {
    rows(
        conn,
        "listing restrictions",
        &format!("SELECT {RESTRICTION_COLS} WHERE room_id = ?1 ORDER BY user_id"),
        [room_id],
        restriction_row,
    )
}

fn mod_log(
    conn: &Connection,
    room_id: i64,
    before_id: Option<i64>,
    limit: u32,
) -> Result<Vec<ChatModLogRow>, StoreError> {
    require_room(conn, room_id)?;
    rows(
        conn,
        "reading the moderation log",
        "SELECT id, room_id, actor_id, action, target_user_id, message_id, detail_json, reason, \
         at_ms FROM chat_mod_log WHERE room_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        params![room_id, before_id.unwrap_or(i64::MAX), i64::from(limit)],
        |r| {
            let detail: String = r.get(6)?;
            Ok(ChatModLogRow {
                id: r.get(0)?,
                room_id: r.get(1)?,
                actor_id: r.get(2)?,
                action: crate::ops::parse_col(r, 3)?,
                target_user_id: r.get(4)?,
                message_id: r.get(5)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                reason: r.get(7)?,
                at_ms: r.get(8)?,
            })
        },
    )
}

/// How an accepted post is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PostRule {
    /// Shadow-muted: shown only to its author and the room's moderators, for good.
    pub(super) hidden: bool,
    /// Held this many seconds (an audience member's post in a room with a delay) before
    /// everyone sees it; 0: at once.
    pub(super) delay_s: u32,
}

/// The moderation rules for a post by `author` in `room` at `at_ms` (inside the post's
/// savepoint): refused, or how it is to be stored.
pub(super) fn check_post(
    conn: &Connection,
    room: &ChatRoomRow,
    author: i64,
    text: &str,
    at_ms: i64,
) -> Result<PostRule, StoreError> {
    let hidden = match restriction(conn, room.id, author)?.map(|r| r.kind) {
        Some(ChatRestrictionKind::Ban) => return Err(StoreError::ChatRefused(ChatRefusal::Banned)),
        Some(ChatRestrictionKind::Mute) => return Err(StoreError::ChatRefused(ChatRefusal::Muted)),
        Some(ChatRestrictionKind::ShadowMute) => true,
        None => false,
    };
    let s = settings(conn, room.id)?;
    let mut rule = PostRule { hidden, delay_s: 0 };
    if s.slow_mode_s == 0 && s.filter.is_empty() && s.audience_delay_s == 0 {
        return Ok(rule);
    }
    if moderates(conn, room, author)? {
        return Ok(rule);
    }
    if s.audience_delay_s > 0 && !hidden && is_audience(conn, author)? {
        rule.delay_s = s.audience_delay_s;
    }
    if let Some(word) = filter_match(&s.filter, text) {
        return Err(StoreError::ChatRefused(ChatRefusal::Filtered {
            word: word.to_owned(),
        }));
    }
    if s.slow_mode_s > 0 {
        const OP: &str = "checking slow mode";
        let last: Option<i64> = conn
            .prepare_cached(
                "SELECT max(created_at_ms) FROM chat_messages WHERE room_id = ?1 AND author_id = ?2",
            )
            .map_err(db(OP))?
            .query_row(params![room.id, author], |r| r.get(0))
            .map_err(db(OP))?;
        if let Some(last) = last {
            let wait_ms = i64::from(s.slow_mode_s) * 1000 - (at_ms - last);
            if wait_ms > 0 {
                let retry_after_s = u32::try_from((wait_ms + 999) / 1000).unwrap_or(u32::MAX);
                return Err(StoreError::ChatRefused(ChatRefusal::SlowMode {
                    retry_after_s,
                    slow_mode_s: s.slow_mode_s,
                }));
            }
        }
    }
    Ok(rule)
}

/// Whether `user` is an audience account (a phone chatting in its show's room).
/// Whether `user` is an audience member (a phone): of role `audience` and no bot (a bot's
/// account has that role too, but it answers for its ensemble and is never held).
fn is_audience(conn: &Connection, user: i64) -> Result<bool, StoreError> {
    const OP: &str = "reading a user's role";
    conn.prepare_cached(
        "SELECT role = 'audience' AND NOT EXISTS (SELECT 1 FROM chat_bots b WHERE b.user_id = u.id) \
         FROM users u WHERE u.id = ?1",
    )
        .map_err(db(OP))?
        .query_row([user], |r| r.get(0))
        .optional()
        .map(|a| a.unwrap_or(false))
        .map_err(db(OP))
}

// ---------------------------------------------------------------- Store methods

impl Store {
    /// A room's moderation settings (slow mode 0 and an empty filter until set).
    pub async fn chat_room_settings(&self, room_id: i64) -> Result<ChatRoomSettings, StoreError> {
        self.read(move |c| {
            require_room(c, room_id)?;
            settings(c, room_id)
        })
        .await
    }

    /// Replaces a room's slow mode (0–3600 s), word filter (≤ 200 entries of 1–100
    /// characters, trimmed, duplicates ignoring case dropped) and audience delay (0–60 s),
    /// with its audit entry.
    pub async fn chat_set_room_settings(
        &self,
        room_id: i64,
        actor: i64,
        change: ChatSettingsChange,
        at_ms: i64,
    ) -> Result<ChatRoomSettings, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        if change.slow_mode_s > MAX_CHAT_SLOW_MODE_S {
            return Err(invalid(
                "slow_mode_s",
                &change.slow_mode_s.to_string(),
                format!("must be 0..={MAX_CHAT_SLOW_MODE_S}"),
            ));
        }
        if change.audience_delay_s > MAX_CHAT_AUDIENCE_DELAY_S {
            return Err(invalid(
                "audience_delay_s",
                &change.audience_delay_s.to_string(),
                format!("must be 0..={MAX_CHAT_AUDIENCE_DELAY_S}"),
            ));
        }
        let change = ChatSettingsChange {
            filter: normalise_filter(&change.filter)?,
            ..change
        };
        self.write(move |c| set_settings(c, room_id, actor, &change, at_ms))
            .await
    }

    /// Mutes, shadow-mutes or bans a user in a room (replacing any restriction they had), with
    /// its audit entry. A moderator of the room (an admin, a member of its ensemble) cannot be
    /// restricted: [`StoreError::Conflict`] `moderator`.
    #[allow(clippy::too_many_arguments)]
    pub async fn chat_restrict(
        &self,
        room_id: i64,
        user_id: i64,
        kind: ChatRestrictionKind,
        actor: i64,
        reason: Option<&str>,
        at_ms: i64,
    ) -> Result<ChatRestrictionRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        validate_reason(reason)?;
        let reason = reason.map(str::to_owned);
        self.write(move |c| restrict(c, room_id, user_id, kind, actor, reason.as_deref(), at_ms))
            .await
    }

    /// Lifts a user's restriction in a room (the one lifted), with its audit entry; none is
    /// [`StoreError::NotFound`].
    pub async fn chat_unrestrict(
        &self,
        room_id: i64,
        user_id: i64,
        actor: i64,
        reason: Option<&str>,
        at_ms: i64,
    ) -> Result<ChatRestrictionRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        validate_reason(reason)?;
        let reason = reason.map(str::to_owned);
        self.write(move |c| unrestrict(c, room_id, user_id, actor, reason.as_deref(), at_ms))
            .await
    }

    /// A user's restriction in a room, if any.
    pub async fn chat_restriction(
        &self,
        room_id: i64,
        user_id: i64,
    ) -> Result<Option<ChatRestrictionRow>, StoreError> {
        self.read(move |c| restriction(c, room_id, user_id)).await
    }

    /// Every restriction in a room, by user id.
    pub async fn chat_restrictions(
        &self,
        room_id: i64,
    ) -> Result<Vec<ChatRestrictionRow>, StoreError> {
        self.read(move |c| restrictions(c, room_id)).await
    }

    /// Whether `user_id` moderates the room (an admin, or a member of its ensemble).
    pub async fn chat_moderates(&self, room_id: i64, user_id: i64) -> Result<bool, StoreError> {
        self.read(move |c| {
            let room = require_room(c, room_id)?;
            moderates(c, &room, user_id)
        })
        .await
    }

    /// Up to `limit` (1..=500) entries of a room's moderation log, newest first, before
    /// `before_id` (the newest when `None`).
    pub async fn chat_mod_log(
        &self,
        room_id: i64,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ChatModLogRow>, StoreError> {
        if limit == 0 || limit > MAX_CHAT_MOD_LOG_PAGE {
            return Err(invalid(
                "limit",
                &preview(&limit.to_string()),
                format!("must be 1..={MAX_CHAT_MOD_LOG_PAGE}"),
            ));
        }
        self.read(move |c| mod_log(c, room_id, before_id, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_matches_whole_words_ignoring_case() {
        let f = vec!["ass".to_owned(), "bad phrase".to_owned()];
        assert_eq!(filter_match(&f, "a classic"), None);
        assert_eq!(filter_match(&f, "you ASS!"), Some("ass"));
        assert_eq!(filter_match(&f, "a Bad Phrase here"), Some("bad phrase"));
        assert_eq!(filter_match(&f, "badphrase"), None);
        assert_eq!(filter_match(&f, "ässass ass"), Some("ass"));
    }

    #[test]
    fn filters_are_trimmed_and_deduplicated() {
        let f = normalise_filter(&[" Foo ".into(), "foo".into(), "bar baz".into()]).unwrap();
        assert_eq!(f, ["Foo", "bar baz"]);
        assert!(normalise_filter(&["!!".into()]).is_err());
        assert!(normalise_filter(&["".into()]).is_err());
    }
}
