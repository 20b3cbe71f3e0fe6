//! Live-show extras (issue 12, item 3; schema migration 13): questions with votes, answered by
//! crew; announcements; pins; the big screen's wall. Every change is one event of the room's
//! sequence, appended in the same savepoint as the state it derives (a question's vote count,
//! the pinned flag, the wall decision), so a client catching up from its last `seq` learns each
//! vote, answer, pin and wall decision in order, exactly like posts and edits.
//!
//! - A **question** or an **announcement** is a message posted with a flag
//!   ([`Store::chat_post_flagged`]), only in a show's room; an announcement holds at most
//!   [`MAX_CHAT_ANNOUNCEMENT_CHARS`] characters.
//! - A **vote** ([`Store::chat_vote`]): one per member and question, taken back with `add:
//!   false`; its event carries the count after it. Twice is [`StoreError::Conflict`] `vote`.
//! - **Answered** ([`Store::chat_answer`]), **pins** ([`Store::chat_pin`], at most
//!   [`MAX_CHAT_PINS`] per room) and the **wall** ([`Store::chat_wall`]) are moderators'
//!   actions: whether the actor moderates the room is the caller's check (as for removals);
//!   each writes its row in the moderation audit log in the same savepoint. A hidden
//!   (shadow-muted) message can be neither pinned nor put on the wall.
//!
//! Each of these changes in an open or show room also appends its outbox event in the same
//! savepoint (`published.rs`: `chat.vote_changed`, `chat.question_answered`,
//! `chat.message_pinned`/`_unpinned`, `chat.wall_approved`/`_rejected`; a question or an
//! announcement is a `chat.message` with its `flag`).
//!
//! Must never: count two votes of one person on one question, let a count drift from its
//! votes, put a hidden or deleted message on the wall, or change any of this without its event
//! (and, for moderators' actions, its audit row).

use rusqlite::{params, Connection, Row};
use serde::Serialize;

use super::moderation::{self, ChatModAction};
use super::{
    append_event, changeable, event_at, invalid, next_seq, post, require_member, require_room,
    with_attachments, ChatEvent, ChatEventKind, ChatMessageRow, ChatPosted, ChatRoomKind,
    NewChatMessage, MESSAGE_COLS,
};
use crate::accounts::{require_user, rows};
use crate::error::{db, StoreError};
use crate::model::{self, preview};
use crate::Store;

/// The most characters in an announcement.
pub const MAX_CHAT_ANNOUNCEMENT_CHARS: usize = 500;
/// The most messages pinned in one room at once.
pub const MAX_CHAT_PINS: usize = 3;

chat_enum!(
    /// What a flagged message is.
    ChatFlag, "flag", [
        /// An audience question: others vote for it; crew mark it answered.
        Question => "question",
        /// Crew's word to every phone of the show.
        Announcement => "announcement"
    ]
);

/// A message of a show room with its live-show state (questions, pins, the wall).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatShowMessage {
    /// The message.
    pub message: ChatMessageRow,
    /// `question` or `announcement`, if flagged.
    pub flag: Option<ChatFlag>,
    /// Votes for a question.
    pub votes: u64,
    /// When crew marked the question answered.
    pub answered_at_ms: Option<i64>,
    /// Who marked it answered.
    pub answered_by: Option<i64>,
    /// When it was pinned (`None`: not pinned).
    pub pinned_at_ms: Option<i64>,
    /// `approved` or `rejected` for the wall (`None`: not decided).
    pub wall: Option<String>,
}

pub(super) fn flag_col(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<ChatFlag>> {
    Ok(r.get::<_, Option<String>>(idx)?
        .and_then(|s| s.parse::<ChatFlag>().ok()))
}

const EXTRA_COLS: &str = "flag, votes, answered_at_ms, answered_by, pinned_at_ms, wall";

fn show_message(r: &Row<'_>) -> rusqlite::Result<ChatShowMessage> {
    // MESSAGE_COLS first, then EXTRA_COLS.
    let message = super::message_row(r)?;
    let n = MESSAGE_COLS.split(',').count();
    Ok(ChatShowMessage {
        message,
        flag: flag_col(r, n)?,
        votes: u64::try_from(r.get::<_, i64>(n + 1)?).unwrap_or(0),
        answered_at_ms: r.get(n + 2)?,
        answered_by: r.get(n + 3)?,
        pinned_at_ms: r.get(n + 4)?,
        wall: r.get(n + 5)?,
    })
}

fn show_messages(
    conn: &Connection,
    op: &'static str,
    filter: &str,
    room_id: i64,
) -> Result<Vec<ChatShowMessage>, StoreError> {
    let sql = format!("SELECT {MESSAGE_COLS}, {EXTRA_COLS} FROM chat_messages WHERE {filter}");
    rows(conn, op, &sql, params![room_id], show_message)?
        .into_iter()
        .map(|mut m| {
            m.message = with_attachments(conn, m.message)?;
            Ok(m)
        })
        .collect()
}

/// What a page opening a room must know of its live-show state however old it is: the pinned
/// messages and the latest announcement, as of `head_seq` ([`Store::chat_show_state`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatShowState {
    /// The room's latest `seq` when this was read: the state is the one after that event.
    pub head_seq: u64,
    /// The pinned messages, oldest pin first.
    pub pins: Vec<ChatShowMessage>,
    /// The latest announcement, if any.
    pub announcement: Option<ChatShowMessage>,
}

/// Messages everyone in the room may see: not deleted, not hidden, not held.
const SEEN_BY_ALL: &str = "deleted_at_ms IS NULL AND hidden = 0 AND held_until_ms IS NULL";

fn show_state(conn: &Connection, room_id: i64) -> Result<ChatShowState, StoreError> {
    const OP: &str = "reading a room's pins and announcement";
    // One read transaction: the head and the state it describes are one snapshot.
    let tx = conn.unchecked_transaction().map_err(db(OP))?;
    let room = require_room(&tx, room_id)?;
    let pins = show_messages(
        &tx,
        OP,
        &format!(
            "room_id = ?1 AND pinned_at_ms IS NOT NULL AND {SEEN_BY_ALL} ORDER BY pinned_at_ms, id"
        ),
        room_id,
    )?;
    let announcement = show_messages(
        &tx,
        OP,
        &format!(
            "room_id = ?1 AND flag = 'announcement' AND {SEEN_BY_ALL} \
             ORDER BY posted_seq DESC LIMIT 1"
        ),
        room_id,
    )?
    .pop();
    tx.finish().map_err(db(OP))?;
    Ok(ChatShowState {
        head_seq: room.last_seq,
        pins,
        announcement,
    })
}

fn show_message_by_id(conn: &Connection, id: i64) -> Result<ChatShowMessage, StoreError> {
    let sql = format!("SELECT {MESSAGE_COLS}, {EXTRA_COLS} FROM chat_messages WHERE id = ?1");
    rows(
        conn,
        "reading a chat message",
        &sql,
        params![id],
        show_message,
    )?
    .pop()
    .ok_or_else(|| super::not_found("chat message", id))
}

fn conflict(what: &'static str, value: String) -> StoreError {
    StoreError::Conflict { what, value }
}

fn post_flagged(
    conn: &Connection,
    m: &NewChatMessage,
    flag: ChatFlag,
) -> Result<ChatPosted, StoreError> {
    let room = require_room(conn, m.room_id)?;
    if room.kind != ChatRoomKind::Show {
        return Err(invalid(
            "flag",
            flag.as_str(),
            "questions and announcements are posted in a show's room",
        ));
    }
    let mut posted = post(conn, m, &[])?;
    if !posted.duplicate {
        conn.prepare_cached("UPDATE chat_messages SET flag = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![posted.message.id, flag.as_str()]))
            .map_err(db("flagging a chat message"))?;
        posted.message = super::require_message(conn, posted.message.id)?;
        // As any post: its outbox event (issue 6's stream and webhooks).
        return super::published::posted(conn, posted);
    }
    Ok(posted)
}

fn vote(
    conn: &Connection,
    message_id: i64,
    user: i64,
    add: bool,
    at_ms: i64,
) -> Result<ChatEvent, StoreError> {
    const OP: &str = "voting for a question";
    let m = changeable(conn, message_id)?;
    let cur = show_message_by_id(conn, message_id)?;
    if cur.flag != Some(ChatFlag::Question) {
        return Err(invalid(
            "message",
            &message_id.to_string(),
            "only a question takes votes",
        ));
    }
    require_member(conn, m.room_id, user)?;
    let changed = if add {
        conn.prepare_cached(
            "INSERT INTO chat_votes (message_id, user_id, at_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![message_id, user, at_ms]))
    } else {
        conn.prepare_cached("DELETE FROM chat_votes WHERE message_id = ?1 AND user_id = ?2")
            .and_then(|mut s| s.execute(params![message_id, user]))
    }
    .map_err(db(OP))?;
    if changed == 0 {
        return Err(conflict(
            "vote",
            if add {
                format!("you already voted for question {message_id}")
            } else {
                format!("you have no vote for question {message_id} to take back")
            },
        ));
    }
    let seq = next_seq(conn, m.room_id)?;
    let votes: i64 = conn
        .prepare_cached(
            "UPDATE chat_messages SET votes = (SELECT count(*) FROM chat_votes WHERE message_id = ?1), \
             last_seq = ?2 WHERE id = ?1 RETURNING votes",
        )
        .and_then(|mut s| s.query_row(params![message_id, seq], |r| r.get(0)))
        .map_err(db(OP))?;
    let kind = if add {
        ChatEventKind::VoteAdded
    } else {
        ChatEventKind::VoteRemoved
    };
    append_event(
        conn, m.room_id, seq, kind, message_id, user, at_ms, None, None,
    )?;
    conn.prepare_cached("UPDATE chat_events SET votes = ?3 WHERE room_id = ?1 AND seq = ?2")
        .and_then(|mut s| s.execute(params![m.room_id, seq, votes]))
        .map_err(db(OP))?;
    event_at(conn, m.room_id, seq)
}

/// Appends a moderator's event about a message, with its audit row.
#[allow(clippy::too_many_arguments)]
fn moderator_event(
    conn: &Connection,
    m: &ChatMessageRow,
    actor: i64,
    kind: ChatEventKind,
    action: ChatModAction,
    text: Option<&str>,
    set: &str,
    at_ms: i64,
) -> Result<ChatEvent, StoreError> {
    require_user(conn, actor)?;
    let seq = next_seq(conn, m.room_id)?;
    // `set` names the parameters it uses: ?2 the seq, ?3 the time, ?4 the actor.
    let all: [&dyn rusqlite::ToSql; 4] = [&m.id, &seq, &at_ms, &actor];
    let used = if set.contains("?4") {
        4
    } else if set.contains("?3") {
        3
    } else {
        2
    };
    conn.prepare_cached(&format!(
        "UPDATE chat_messages SET {set}, last_seq = ?2 WHERE id = ?1"
    ))
    .and_then(|mut s| s.execute(&all[..used]))
    .map_err(db("changing a chat message's show state"))?;
    append_event(conn, m.room_id, seq, kind, m.id, actor, at_ms, text, None)?;
    moderation::log(
        conn,
        m.room_id,
        actor,
        action,
        Some(m.author_id),
        Some(m.id),
        &serde_json::json!({ "seq": seq }),
        None,
        at_ms,
    )?;
    event_at(conn, m.room_id, seq)
}

fn answer(
    conn: &Connection,
    message_id: i64,
    actor: i64,
    at_ms: i64,
) -> Result<ChatEvent, StoreError> {
    let m = changeable(conn, message_id)?;
    let cur = show_message_by_id(conn, message_id)?;
    if cur.flag != Some(ChatFlag::Question) {
        return Err(invalid(
            "message",
            &message_id.to_string(),
            "only a question can be answered",
        ));
    }
    if cur.answered_at_ms.is_some() {
        return Err(conflict(
            "answered",
            format!("question {message_id} was answered already"),
        ));
    }
    moderator_event(
        conn,
        &m,
        actor,
        ChatEventKind::QuestionAnswered,
        ChatModAction::Answered,
        None,
        "answered_at_ms = ?3, answered_by = ?4",
        at_ms,
    )
}

fn pin(
    conn: &Connection,
    message_id: i64,
    actor: i64,
    on: bool,
    at_ms: i64,
) -> Result<ChatEvent, StoreError> {
    let m = changeable(conn, message_id)?;
    let cur = show_message_by_id(conn, message_id)?;
    if on {
        if m.hidden {
            return Err(conflict(
                "hidden message",
                format!("message {message_id} is seen only by its author and moderators"),
            ));
        }
        if cur.pinned_at_ms.is_some() {
            return Err(conflict(
                "pin",
                format!("message {message_id} is pinned already"),
            ));
        }
        let pinned: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM chat_messages WHERE room_id = ?1 \
                 AND pinned_at_ms IS NOT NULL AND deleted_at_ms IS NULL",
            )
            .and_then(|mut s| s.query_row([m.room_id], |r| r.get(0)))
            .map_err(db("counting pins"))?;
        if usize::try_from(pinned).unwrap_or(usize::MAX) >= MAX_CHAT_PINS {
            return Err(conflict(
                "pins",
                format!("at most {MAX_CHAT_PINS} messages are pinned in a room: unpin one first"),
            ));
        }
        moderator_event(
            conn,
            &m,
            actor,
            ChatEventKind::MessagePinned,
            ChatModAction::Pinned,
            None,
            "pinned_at_ms = ?3, pinned_by = ?4",
            at_ms,
        )
    } else {
        if cur.pinned_at_ms.is_none() {
            return Err(conflict(
                "pin",
                format!("message {message_id} is not pinned"),
            ));
        }
        moderator_event(
            conn,
            &m,
            actor,
            ChatEventKind::MessageUnpinned,
            ChatModAction::Unpinned,
            None,
            "pinned_at_ms = NULL, pinned_by = NULL",
            at_ms,
        )
    }
}

fn wall(
    conn: &Connection,
    message_id: i64,
    actor: i64,
    approve: bool,
    at_ms: i64,
) -> Result<ChatEvent, StoreError> {
    let m = changeable(conn, message_id)?;
    let cur = show_message_by_id(conn, message_id)?;
    let want = if approve { "approved" } else { "rejected" };
    if cur.wall.as_deref() == Some(want) {
        return Err(conflict(
            "wall",
            format!("message {message_id} is {want} already"),
        ));
    }
    if approve && (m.hidden || m.held_until_ms.is_some()) {
        return Err(conflict(
            "hidden message",
            format!("message {message_id} is not seen by everyone yet"),
        ));
    }
    if approve {
        moderator_event(
            conn,
            &m,
            actor,
            ChatEventKind::WallApproved,
            ChatModAction::WallApproved,
            Some(&m.text),
            "wall = 'approved', wall_seq = ?2",
            at_ms,
        )
    } else {
        moderator_event(
            conn,
            &m,
            actor,
            ChatEventKind::WallRejected,
            ChatModAction::WallRejected,
            None,
            "wall = 'rejected', wall_seq = ?2",
            at_ms,
        )
    }
}

fn validate_flagged_text(flag: ChatFlag, text: &str) -> Result<(), StoreError> {
    if flag == ChatFlag::Announcement && text.chars().count() > MAX_CHAT_ANNOUNCEMENT_CHARS {
        return Err(invalid(
            "text",
            &preview(text),
            format!("an announcement holds at most {MAX_CHAT_ANNOUNCEMENT_CHARS} characters"),
        ));
    }
    Ok(())
}

impl Store {
    /// Posts a question or an announcement (as [`Store::chat_post`], in a show's room only; an
    /// announcement of at most [`MAX_CHAT_ANNOUNCEMENT_CHARS`] characters). Whether the author
    /// may announce is the caller's check. A retry answers the original, flag unchanged.
    pub async fn chat_post_flagged(
        &self,
        m: NewChatMessage,
        flag: ChatFlag,
    ) -> Result<ChatPosted, StoreError> {
        model::validate_time("at_ms", m.at_ms)?;
        super::validate_message_text(&m.text)?;
        super::validate_client_id(&m.client_message_id)?;
        validate_flagged_text(flag, &m.text)?;
        self.write(move |c| post_flagged(c, &m, flag)).await
    }

    /// Adds (or with `add: false` takes back) `user_id`'s vote for a question; the event
    /// carries the count after it. A second vote, or taking back none, is
    /// [`StoreError::Conflict`] `vote`.
    pub async fn chat_vote(
        &self,
        message_id: i64,
        user_id: i64,
        add: bool,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| {
            vote(c, message_id, user_id, add, at_ms).and_then(|e| super::published::changed(c, e))
        })
        .await
    }

    /// Marks a question answered (once), with its audit entry.
    pub async fn chat_answer(
        &self,
        message_id: i64,
        actor: i64,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| {
            answer(c, message_id, actor, at_ms).and_then(|e| super::published::changed(c, e))
        })
        .await
    }

    /// Pins (`on`) or unpins a message, with its audit entry; at most [`MAX_CHAT_PINS`] per
    /// room ([`StoreError::Conflict`] `pins`).
    pub async fn chat_pin(
        &self,
        message_id: i64,
        actor: i64,
        on: bool,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| {
            pin(c, message_id, actor, on, at_ms).and_then(|e| super::published::changed(c, e))
        })
        .await
    }

    /// Approves a message for the wall (or rejects it, taking it off), with its audit entry.
    /// The approval's event carries the text approved.
    pub async fn chat_wall(
        &self,
        message_id: i64,
        actor: i64,
        approve: bool,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| {
            wall(c, message_id, actor, approve, at_ms).and_then(|e| super::published::changed(c, e))
        })
        .await
    }

    /// A room's questions, most votes first (then oldest first); deleted ones left out.
    pub async fn chat_questions(&self, room_id: i64) -> Result<Vec<ChatShowMessage>, StoreError> {
        self.read(move |c| {
            require_room(c, room_id)?;
            show_messages(
                c,
                "reading a room's questions",
                "room_id = ?1 AND flag = 'question' AND deleted_at_ms IS NULL \
                 ORDER BY votes DESC, posted_seq",
                room_id,
            )
        })
        .await
    }

    /// The questions of a room `user_id` voted for.
    pub async fn chat_voted(&self, room_id: i64, user_id: i64) -> Result<Vec<i64>, StoreError> {
        self.read(move |c| {
            rows(
                c,
                "reading votes",
                "SELECT v.message_id FROM chat_votes v JOIN chat_messages m ON m.id = v.message_id \
                 WHERE m.room_id = ?1 AND v.user_id = ?2 ORDER BY v.message_id",
                params![room_id, user_id],
                |r| r.get(0),
            )
        })
        .await
    }

    /// A room's pinned messages, oldest pin first.
    pub async fn chat_pinned(&self, room_id: i64) -> Result<Vec<ChatShowMessage>, StoreError> {
        self.read(move |c| {
            require_room(c, room_id)?;
            show_messages(
                c,
                "reading a room's pins",
                "room_id = ?1 AND pinned_at_ms IS NOT NULL AND deleted_at_ms IS NULL \
                 ORDER BY pinned_at_ms, id",
                room_id,
            )
        })
        .await
    }

    /// A room's pinned messages and its latest announcement as everyone in it may see them
    /// (deleted, hidden and held messages left out), with the `seq` they are the state after,
    /// read in one snapshot: what a page that opens the room is told however long ago they
    /// were made (`tutti-rooms` sends it as `chat_extras`).
    pub async fn chat_show_state(&self, room_id: i64) -> Result<ChatShowState, StoreError> {
        self.read(move |c| show_state(c, room_id)).await
    }

    /// The messages approved for a room's wall, in the order they were approved.
    pub async fn chat_wall_messages(
        &self,
        room_id: i64,
    ) -> Result<Vec<ChatShowMessage>, StoreError> {
        self.read(move |c| {
            require_room(c, room_id)?;
            show_messages(
                c,
                "reading a room's wall",
                "room_id = ?1 AND wall = 'approved' AND deleted_at_ms IS NULL ORDER BY wall_seq",
                room_id,
            )
        })
        .await
    }

    /// A room's announcements, newest first (at most `limit`, 1–100).
    pub async fn chat_announcements(
        &self,
        room_id: i64,
        limit: u32,
    ) -> Result<Vec<ChatShowMessage>, StoreError> {
        let limit = limit.clamp(1, 100);
        self.read(move |c| {
            require_room(c, room_id)?;
            show_messages(
                c,
                "reading a room's announcements",
                &format!(
                    "room_id = ?1 AND flag = 'announcement' AND deleted_at_ms IS NULL \
                     AND hidden = 0 ORDER BY posted_seq DESC LIMIT {limit}"
                ),
                room_id,
            )
        })
        .await
    }
}
