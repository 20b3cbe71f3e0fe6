//! Chat changes as outbox events (issue 12, item 7): `chat.message`, `chat.message_edited`,
//! `chat.message_deleted`, `chat.boost_added` and `chat.boost_removed`, and the live-show
//! extras' `chat.vote_changed`, `chat.question_answered`, `chat.message_pinned`,
//! `chat.message_unpinned`, `chat.wall_approved` and `chat.wall_rejected`, appended in the same
//! savepoint as the change itself (the store's `chat_post`, `chat_post_flagged`, `chat_edit`,
//! `chat_delete`, `chat_remove`, `chat_boost`, `chat_unboost`, `chat_release_due`, `chat_vote`,
//! `chat_answer`, `chat_pin` and `chat_wall` call [`changed`] on the writer thread), so issue
//! 6's event stream and signed webhooks see exactly the committed chat changes.
//!
//! # What each carries
//! Every event: `room_id`, `show_id` (a show's room), `message_id`, `seq`, `author_id` and
//! `flag` (`question` or `announcement`) when the message is one. Posts and edits add
//! `author_name`, `text` and `reply_to`; deletions `moderated`; boosts `boost`; a vote only the
//! question's count after it (`votes`): who voted is not published (an audience member's vote
//! is theirs, and the count is what a screen shows). Crew's actions (answered, pins, the wall)
//! and every other change name who made it (`actor_id`); a wall approval carries the text
//! approved and its author's name, as the room's own event does.
//!
//! # Which rooms
//! Only **open and show rooms** emit events, scoped to the room's ensemble (a show room's is its
//! piece's ensemble): every member of that ensemble may read those rooms anyway, and the event
//! stream and webhooks are per ensemble. Closed rooms (even of an ensemble: they are for their
//! listed members only), direct rooms and rooms of no ensemble ("All Talk") emit nothing, so a
//! direct or closed conversation never reaches an ensemble-wide webhook. Events hidden from
//! the room (a shadow-muted author's, or any the room hands only to author and moderators)
//! emit nothing either.
//!
//! # Deletion
//! Deleting a message removes `text` from the earlier `chat.message`, `chat.message_edited`
//! and `chat.wall_approved` events of that message still in the outbox (found by their subject, `chat_message:<id>`), as
//! it does from the room's own events: a stream that replays the outbox later does not get the
//! deleted text. A webhook delivery already made cannot be taken back.
//!
//! Must never: append an event for a room other than an open or show room, for a change that
//! did not commit, or carry an attachment's bytes or anything but the message's own fields.

use rusqlite::{params, Connection};
use serde_json::{json, Map, Value};

use super::{event_at, require_room, ChatEvent, ChatPosted, ChatRoomKind};
use crate::error::{db, StoreError};
use crate::model::{EventKind, NewEvent};
use crate::ops;

/// The outbox subject of a message's events.
fn subject(message_id: i64) -> String {
    format!("chat_message:{message_id}")
}

/// Appends the outbox event of a new post (nothing for a retry, which wrote nothing).
pub(crate) fn posted(conn: &Connection, p: ChatPosted) -> Result<ChatPosted, StoreError> {
    if !p.duplicate {
        let e = event_at(
            conn,
            p.message.room_id,
            i64::try_from(p.seq).unwrap_or(i64::MAX),
        )?;
        changed(conn, e)?;
    }
    Ok(p)
}

/// Appends the outbox event of a room event just written (see the module's rules), and on a
/// deletion scrubs the message's text from its earlier outbox events. Returns the event.
pub(crate) fn changed(conn: &Connection, e: ChatEvent) -> Result<ChatEvent, StoreError> {
    const OP: &str = "publishing a chat event";
    let kind = match e.kind.as_str() {
        // A held message reaches the outbox when everyone may see it: at its release.
        "message_posted" | "message_released" => EventKind::ChatMessage,
        "message_edited" => EventKind::ChatMessageEdited,
        "message_deleted" => EventKind::ChatMessageDeleted,
        "boost_added" => EventKind::ChatBoostAdded,
        "boost_removed" => EventKind::ChatBoostRemoved,
        "vote_added" | "vote_removed" => EventKind::ChatVoteChanged,
        "question_answered" => EventKind::ChatQuestionAnswered,
        "message_pinned" => EventKind::ChatMessagePinned,
        "message_unpinned" => EventKind::ChatMessageUnpinned,
        "wall_approved" => EventKind::ChatWallApproved,
        "wall_rejected" => EventKind::ChatWallRejected,
        _ => return Ok(e),
    };
    if kind == EventKind::ChatMessageDeleted {
        conn.prepare_cached(
            "UPDATE outbox SET data_json = json_remove(data_json, '$.text') \
             WHERE subject = ?1 \
             AND kind IN ('chat.message', 'chat.message_edited', 'chat.wall_approved')",
        )
        .and_then(|mut s| s.execute([subject(e.message_id)]))
        .map_err(db(OP))?;
    }
    let room = require_room(conn, e.room_id)?;
    let Some(ensemble_id) = room.ensemble_id else {
        return Ok(e);
    };
    if !matches!(room.kind, ChatRoomKind::Open | ChatRoomKind::Show) || e.hidden {
        return Ok(e);
    }
    let author_name: String = conn
        .prepare_cached("SELECT display_name FROM users WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![e.author_id], |r| r.get(0)))
        .map_err(db(OP))?;
    let mut data = Map::new();
    data.insert("room_id".into(), json!(e.room_id));
    if let Some(show) = room.show_id {
        data.insert("show_id".into(), json!(show));
    }
    data.insert("message_id".into(), json!(e.message_id));
    data.insert("seq".into(), json!(e.seq));
    data.insert("author_id".into(), json!(e.author_id));
    if kind != EventKind::ChatVoteChanged {
        data.insert("actor_id".into(), json!(e.actor_id));
    }
    if let Some(flag) = e.flag {
        data.insert("flag".into(), json!(flag.as_str()));
    }
    match kind {
        EventKind::ChatMessage | EventKind::ChatMessageEdited | EventKind::ChatWallApproved => {
            data.insert("author_name".into(), json!(author_name));
            data.insert("text".into(), json!(e.text));
            if let Some(r) = e.reply_to {
                data.insert("reply_to".into(), json!(r));
            }
        }
        EventKind::ChatMessageDeleted => {
            data.insert("moderated".into(), json!(e.moderated));
        }
        EventKind::ChatBoostAdded | EventKind::ChatBoostRemoved => {
            data.insert("boost".into(), json!(e.boost));
        }
        EventKind::ChatVoteChanged => {
            data.insert("votes".into(), json!(e.votes.unwrap_or(0)));
        }
        _ => {}
    }
    ops::append_event(
        conn,
        &NewEvent {
            kind,
            ensemble_id: Some(ensemble_id),
            subject: subject(e.message_id),
            data: Value::Object(data),
            at_ms: e.at_ms,
        },
    )?;
    Ok(e)
}
