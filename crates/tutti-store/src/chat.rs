//! Chat (issue 12, schema migration 7): rooms, memberships, each room's event log, the
//! messages and boosts derived from it, full-text search and recent searches — the SQL (run on
//! the writer thread or a read connection) and the `Store` methods that validate arguments and
//! queue them.
//!
//! # The room's sequence
//! Every change to a room's messages is one event with the next `seq` of that room (1, 2, 3,
//! …): a message posted, edited or deleted, a boost added or removed. The counter lives on the
//! room (`chat_rooms.last_seq`) and is bumped in the same savepoint that appends the event and
//! updates the derived state (`chat_messages`, `chat_boosts`, the FTS5 index), on the one
//! writer thread: a failing operation rolls its bump back with the rest, so a committed
//! sequence has no gaps, and a client that remembers the last `seq` it saw gets exactly what it
//! missed from [`Store::chat_events_after`], edits and deletions included.
//!
//! # Idempotent sends
//! A message is unique per (room, author, client message id). [`Store::chat_post`] looks for
//! that triple first, in the writer's savepoint: a retried send (even one queued at the same
//! moment as the first) returns the original message and its `seq` with `duplicate: true` and
//! writes nothing. The text of a retry is not compared: the first send wins.
//!
//! # Deletion
//! Deleting a message clears its text from the message row, the search index and every earlier
//! event of that message in the same savepoint (the events themselves stay, so the sequence
//! keeps no holes): a deleted text is gone for catch-up and search alike.
//!
//! # Search
//! The user's words are each quoted as an FTS5 string (inner `"` doubled) and joined with
//! spaces (all must match), so no input can reach FTS5's query syntax: `AND`, `NEAR`, `*`,
//! `^`, quotes and parentheses are searched for as text (or dropped when they hold no letter or
//! digit). Hits come only from rooms the user is a member of, best first (bm25), with a snippet
//! whose highlighted parts are returned as structured parts, never as markup.
//!
//! Must never: hand out a `seq` that is not committed, leave a gap in a room's sequence, create
//! a second message for a retried send, show a search hit from a room the searcher is not a
//! member of, or pass user input to FTS5 unquoted. Who may post, edit, delete or moderate is the
//! caller's decision; the store records who did it.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::accounts::{require_user, rows};
use crate::error::{db, is_unique_violation, StoreError};
use crate::model::{self, preview};
use crate::ops::parse_col;
use crate::Store;

/// The most characters (not bytes) in a message's text.
pub const MAX_CHAT_TEXT_CHARS: usize = 4000;
/// The most characters in a boost.
pub const MAX_CHAT_BOOST_CHARS: usize = 16;
/// The most characters in a room's name.
pub const MAX_CHAT_ROOM_NAME_CHARS: usize = 100;
/// The most bytes in a client message id (`[A-Za-z0-9._:-]`).
pub const MAX_CHAT_CLIENT_ID_LEN: usize = 64;
/// The most people in a direct room.
pub const MAX_CHAT_DIRECT_MEMBERS: usize = 32;
/// The most members a room can be created with in one call.
pub const MAX_CHAT_INITIAL_MEMBERS: usize = 1000;
/// The password hash of every audience identity: it has the shape the schema asks of a hash
/// (`$argon2id$…`) but is no PHC string, so no password verifies against it and sign-in
/// refuses it like a wrong password.
pub const AUDIENCE_PASSWORD_HASH: &str = "$argon2id$audience-cannot-sign-in";
/// The most characters in an audience member's display name (as `tutti_chat::DisplayName`).
pub const MAX_CHAT_AUDIENCE_NAME_CHARS: usize = 64;
/// The name of the room every signed-in account belongs to.
pub const ALL_TALK: &str = "All Talk";
/// The most characters in a search query.
pub const MAX_CHAT_SEARCH_CHARS: usize = 500;
/// The most hits one search returns.
pub const MAX_CHAT_SEARCH_HITS: u32 = 100;
/// The most events or messages in one page.
pub const MAX_CHAT_PAGE: u32 = 1000;
/// How many recent searches are kept per user.
pub const CHAT_RECENT_SEARCHES: usize = 10;

/// Marks the start and end of a highlighted part in FTS5 snippets. Control characters, which
/// no stored message contains (the text check refuses them), so they cannot be spoofed.
const MARK_START: char = '\u{2}';
const MARK_END: char = '\u{3}';

// ---------------------------------------------------------------- types

macro_rules! chat_enum {
    ($(#[$doc:meta])* $ty:ident, $field:literal, [$($(#[$vdoc:meta])* $variant:ident => $name:literal),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $ty {
            $($(#[$vdoc])* #[serde(rename = $name)] $variant),+
        }

        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stored (and serialized) name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, StoreError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    StoreError::Invalid {
                        field: $field,
                        value: preview(s),
                        reason: format!(
                            "expected one of: {}",
                            Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    }
                })
            }
        }
    };
}

mod attachments;
mod extras;
mod moderation;

pub use attachments::{
    sha256_hex, ChatAttachmentRow, NewChatAttachment, UploadSweep, MAX_CHAT_ATTACHMENT_NAME_CHARS,
    MAX_CHAT_MESSAGE_ATTACHMENTS,
};

pub use extras::{
    ChatFlag, ChatShowMessage, ChatShowState, MAX_CHAT_ANNOUNCEMENT_CHARS, MAX_CHAT_PINS,
};

pub use moderation::{
    filter_match, ChatModAction, ChatModLogRow, ChatRefusal, ChatRestrictionKind,
    ChatRestrictionRow, ChatRoomSettings, ChatSettingsChange, MAX_CHAT_AUDIENCE_DELAY_S,
    MAX_CHAT_FILTER_WORDS, MAX_CHAT_FILTER_WORD_CHARS, MAX_CHAT_MOD_LOG_PAGE,
    MAX_CHAT_REASON_CHARS, MAX_CHAT_SLOW_MODE_S,
};

mod bots;
pub(crate) use bots::bots_exist;
mod published;

pub use bots::{
    ChatBotRow, NewChatBot, BOT_PASSWORD_HASH, MAX_CHAT_BOT_NAME_CHARS, MAX_CHAT_BOT_URL_LEN,
};

chat_enum!(
    /// What kind of room.
    ChatRoomKind, "room kind", [
        /// Every member of its ensemble may join.
        Open => "open",
        /// Only the listed members.
        Closed => "closed",
        /// One per exact set of people (see [`Store::chat_direct_room`]).
        Direct => "direct",
        /// The room of one show (its audience and crew).
        Show => "show"
    ]
);

chat_enum!(
    /// How much of a room a member wants to hear about.
    Involvement, "involvement", [
        /// Every message.
        Everything => "everything",
        /// Only messages that mention them.
        Mentions => "mentions",
        /// Nothing (the room stays in their list).
        Nothing => "nothing",
        /// Nothing, and the room is hidden from their list.
        Invisible => "invisible"
    ]
);

chat_enum!(
    /// What one event in a room's sequence did.
    ChatEventKind, "chat event kind", [
        /// A message was posted (`text` is its text, unless it was deleted since).
        MessagePosted => "message_posted",
        /// A message's text was replaced (`text` is the new text, unless deleted since).
        MessageEdited => "message_edited",
        /// A message was deleted.
        MessageDeleted => "message_deleted",
        /// A boost was added (`boost` is its content).
        BoostAdded => "boost_added",
        /// A boost was removed (`boost` is its content).
        BoostRemoved => "boost_removed",
        /// A held audience message reached everyone after the room's delay (`text` is its
        /// text; the message keeps the `seq` it was posted at).
        MessageReleased => "message_released",
        /// A vote for a question was added (`votes`: its count after the vote).
        VoteAdded => "vote_added",
        /// A vote for a question was taken back (`votes`: its count after).
        VoteRemoved => "vote_removed",
        /// Crew marked a question answered.
        QuestionAnswered => "question_answered",
        /// Crew pinned a message in its room.
        MessagePinned => "message_pinned",
        /// Crew unpinned a message.
        MessageUnpinned => "message_unpinned",
        /// Crew approved a message for the big screen's wall (`text`: the text approved).
        WallApproved => "wall_approved",
        /// Crew rejected a message for the wall (or took it off the wall).
        WallRejected => "wall_rejected"
    ]
);

impl ChatEventKind {
    /// The event shows the whole message to whoever gets it (posted, or released from the
    /// room's audience delay): it carries the text, the attachments and a `/play` sound.
    pub fn shows_message(self) -> bool {
        matches!(self, Self::MessagePosted | Self::MessageReleased)
    }
}

/// A room to create (not a direct room: see [`Store::chat_direct_room`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatRoom {
    /// `Open`, `Closed` or `Show`.
    pub kind: ChatRoomKind,
    /// The ensemble it belongs to (required for `Open`).
    pub ensemble_id: Option<i64>,
    /// The show it belongs to (required for `Show`, refused otherwise; one room per show).
    pub show_id: Option<i64>,
    /// 1–100 characters, no control characters.
    pub name: Option<String>,
    /// Who created it (none for rooms the system makes).
    pub created_by: Option<i64>,
    /// Its first members, each with involvement `everything` (duplicates are refused).
    pub members: Vec<i64>,
    /// Creation time, unix milliseconds.
    pub at_ms: i64,
}

/// A user's standing in a room, read at once ([`Store::chat_access`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatAccess {
    /// The room.
    pub room: ChatRoomRow,
    /// The user's membership of it, if a member.
    pub member: Option<ChatMemberRow>,
    /// The user's role in the room's ensemble, if it has one and they are in it.
    pub ensemble_role: Option<model::EnsembleRole>,
    /// The user's restriction in the room, if any.
    pub restriction: Option<ChatRestrictionRow>,
}

/// A room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatRoomRow {
    /// Its id.
    pub id: i64,
    /// What kind.
    pub kind: ChatRoomKind,
    /// The ensemble it belongs to.
    pub ensemble_id: Option<i64>,
    /// The show it belongs to (`Show` rooms).
    pub show_id: Option<i64>,
    /// Its name (direct rooms usually have none).
    pub name: Option<String>,
    /// Posting, editing and boosting are refused (deleting still works).
    pub read_only: bool,
    /// The `seq` of its latest event (0 before the first).
    pub last_seq: u64,
    /// Who created it.
    pub created_by: Option<i64>,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// "All Talk": the one room every signed-in (non-audience) account belongs to, joined on
    /// their first look (see [`Store::chat_open_rooms_to_join`]).
    pub everyone: bool,
}

/// An audience member who chats: a user of role `audience` that can never sign in, tied to
/// one show (and, for a phone with a device token, to its guest row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatAudienceRow {
    /// The user (role `audience`).
    pub user_id: i64,
    /// The show whose room they may use.
    pub show_id: i64,
    /// The guest (device token) it belongs to; `None` for an anonymous joiner.
    pub guest_id: Option<i64>,
    /// The name they chose.
    pub display_name: String,
    /// When it was made, unix milliseconds.
    pub created_at_ms: i64,
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMemberRow {
    /// The room.
    pub room_id: i64,
    /// The user.
    pub user_id: i64,
    /// How much they want to hear.
    pub involvement: Involvement,
    /// The highest `seq` they have read.
    pub last_read_seq: u64,
    /// When they joined, unix milliseconds.
    pub created_at_ms: i64,
}

/// One of a user's rooms, with their membership and how many messages they have not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatRoomListing {
    /// The room.
    pub room: ChatRoomRow,
    /// Their membership.
    pub member: ChatMemberRow,
    /// Messages of others, not deleted, posted after `member.last_read_seq`.
    pub unread: u64,
}

/// A message to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatMessage {
    /// The room; the author must be a member and the room not read-only.
    pub room_id: i64,
    /// The author.
    pub author_id: i64,
    /// The sender's own id for this message, 1–64 bytes of `[A-Za-z0-9._:-]`: a retry with the
    /// same id returns the original.
    pub client_message_id: String,
    /// 1–4,000 characters, not blank, no control characters but newline and tab.
    pub text: String,
    /// The message it replies to (in the same room).
    pub reply_to: Option<i64>,
    /// When it was sent, unix milliseconds.
    pub at_ms: i64,
}

/// A message as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessageRow {
    /// Its id.
    pub id: i64,
    /// Its room.
    pub room_id: i64,
    /// Its author.
    pub author_id: i64,
    /// The author's id for it.
    pub client_message_id: String,
    /// Its current text (empty once deleted).
    pub text: String,
    /// The message it replies to.
    pub reply_to: Option<i64>,
    /// The `seq` of the event that posted it.
    pub posted_seq: u64,
    /// The `seq` of the latest event that changed it.
    pub last_seq: u64,
    /// When it was posted.
    pub created_at_ms: i64,
    /// When it was last edited, and by whom.
    pub edited_at_ms: Option<i64>,
    /// Who last edited it.
    pub edited_by: Option<i64>,
    /// When it was deleted.
    pub deleted_at_ms: Option<i64>,
    /// Who deleted it.
    pub deleted_by: Option<i64>,
    /// Posted while its author was shadow-muted: shown only to its author and the room's
    /// moderators.
    pub hidden: bool,
    /// An audience message held by the room's delay: until this time (unix milliseconds)
    /// only its author and the room's moderators see it; `None` once released.
    pub held_until_ms: Option<i64>,
    /// The files it carries, in order (none once deleted).
    pub attachments: Vec<ChatAttachmentRow>,
}

/// The answer to [`Store::chat_post`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatPosted {
    /// The message (the original one for a retry).
    pub message: ChatMessageRow,
    /// The `seq` of the event that posted it.
    pub seq: u64,
    /// This was a retry: nothing was written.
    pub duplicate: bool,
}

/// One event of a room's sequence, with the facts of its message a client needs to apply it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatEvent {
    /// The room.
    pub room_id: i64,
    /// Its place in the room's sequence.
    pub seq: u64,
    /// What it did.
    pub kind: ChatEventKind,
    /// The message it concerns.
    pub message_id: i64,
    /// Who did it (the author for a post; the editor, deleter or booster otherwise).
    pub actor_id: i64,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// The text of a post or edit (`None` for other kinds, and once the message is deleted).
    pub text: Option<String>,
    /// The content of a boost added or removed.
    pub boost: Option<String>,
    /// The message's author.
    pub author_id: i64,
    /// The author's id for the message (so a sender recognises its own post).
    pub client_message_id: String,
    /// The message it replies to.
    pub reply_to: Option<i64>,
    /// Hand this event only to the message's author and the room's moderators: the message
    /// is hidden (its author was shadow-muted), or the event was written while the message
    /// was held by the room's audience delay (`held`).
    pub hidden: bool,
    /// Written while the message was held by the room's audience delay (a later
    /// `message_released` event shows it to everyone).
    pub held: bool,
    /// A deletion by a moderator of someone else's message (a removal everyone sees as such).
    pub moderated: bool,
    /// The files a post carries, in order (empty for other kinds, and once deleted).
    pub attachments: Vec<ChatAttachmentRow>,
    /// The message is a question or an announcement (on every event of that message).
    pub flag: Option<ChatFlag>,
    /// A vote's event: the question's vote count after it.
    pub votes: Option<u64>,
}

/// A page of a room's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatEventPage {
    /// The events after the requested `seq`, in order, without gaps.
    pub events: Vec<ChatEvent>,
    /// The room's latest `seq` when the page was read (at least the last event's).
    pub head_seq: u64,
    /// More events follow the last one in `events`: ask again after it.
    pub more: bool,
}

/// A boost on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatBoostRow {
    /// The message.
    pub message_id: i64,
    /// Who boosted.
    pub user_id: i64,
    /// The boost's content (1–16 characters).
    pub content: String,
    /// The `seq` of the event that added it.
    pub seq: u64,
    /// When, unix milliseconds.
    pub at_ms: i64,
}

/// A part of a search hit's snippet: plain text, highlighted when it matched. Never markup:
/// whoever shows it escapes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatSnippetPart {
    /// The text.
    pub text: String,
    /// Whether it matched the query.
    pub highlighted: bool,
}

/// A message found by [`Store::chat_search`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatSearchHit {
    /// The message.
    pub message_id: i64,
    /// Its room.
    pub room_id: i64,
    /// The `seq` that posted it.
    pub posted_seq: u64,
    /// Its author.
    pub author_id: i64,
    /// When it was posted.
    pub created_at_ms: i64,
    /// A snippet of its text around the matches.
    pub snippet: Vec<ChatSnippetPart>,
    /// FTS5's bm25 rank (lower is better); hits come best first.
    pub rank: f64,
}

/// One of a user's recent searches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatRecentSearch {
    /// The query as typed (trimmed).
    pub query: String,
    /// When it was last searched, unix milliseconds.
    pub at_ms: i64,
}

// ---------------------------------------------------------------- validation

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        value: preview(value),
        reason: reason.into(),
    }
}

/// A message's text: 1..=4,000 characters, not blank, no control characters but `\n` and `\t`.
fn validate_message_text(text: &str) -> Result<(), StoreError> {
    if text.trim().is_empty() {
        return Err(invalid("text", text, "must not be empty or blank"));
    }
    let n = text.chars().count();
    if n > MAX_CHAT_TEXT_CHARS {
        return Err(invalid(
            "text",
            text,
            format!("longer than {MAX_CHAT_TEXT_CHARS} characters ({n})"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(
            "text",
            text,
            "must not contain control characters other than newline and tab",
        ));
    }
    Ok(())
}

fn validate_client_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.len() > MAX_CHAT_CLIENT_ID_LEN {
        return Err(invalid(
            "client_message_id",
            id,
            format!("must be 1..={MAX_CHAT_CLIENT_ID_LEN} bytes"),
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(invalid(
            "client_message_id",
            id,
            "only ASCII letters, digits, '.', '_', ':' and '-' are allowed",
        ));
    }
    Ok(())
}

fn validate_boost(content: &str) -> Result<(), StoreError> {
    model::validate_text("boost", content, MAX_CHAT_BOOST_CHARS)
}

fn validate_limit(limit: u32, max: u32) -> Result<(), StoreError> {
    if limit == 0 || limit > max {
        return Err(invalid(
            "limit",
            &limit.to_string(),
            format!("must be 1..={max}"),
        ));
    }
    Ok(())
}

fn seq_param(field: &'static str, seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| invalid(field, &seq.to_string(), "too large"))
}

/// The FTS5 query for a user's search string: each whitespace-separated word that holds a
/// letter or digit, quoted as an FTS5 string with inner quotes doubled, joined by spaces (all
/// must match). `None` when no word is left. Control characters count as spaces.
pub(crate) fn fts_query(input: &str) -> Option<String> {
    let cleaned: String = input
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let terms: Vec<String> = cleaned
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// A search string checked and normalised: trimmed, control characters as spaces, at most
/// [`MAX_CHAT_SEARCH_CHARS`], with at least one word.
fn search_input(query: &str) -> Result<(String, String), StoreError> {
    let n = query.chars().count();
    if n > MAX_CHAT_SEARCH_CHARS {
        return Err(invalid(
            "query",
            query,
            format!("longer than {MAX_CHAT_SEARCH_CHARS} characters ({n})"),
        ));
    }
    let shown: String = query
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned();
    let fts = fts_query(&shown).ok_or_else(|| {
        invalid(
            "query",
            query,
            "contains no word to search for (letters or digits)",
        )
    })?;
    Ok((shown, fts))
}

/// Splits an FTS5 snippet marked with [`MARK_START`]/[`MARK_END`] into parts.
fn snippet_parts(marked: &str) -> Vec<ChatSnippetPart> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut highlighted = false;
    for c in marked.chars() {
        let switch = match c {
            MARK_START => Some(true),
            MARK_END => Some(false),
            _ => None,
        };
        match switch {
            Some(next) if next != highlighted => {
                if !current.is_empty() {
                    parts.push(ChatSnippetPart {
                        text: std::mem::take(&mut current),
                        highlighted,
                    });
                }
                highlighted = next;
            }
            Some(_) => {}
            None => current.push(c),
        }
    }
    if !current.is_empty() {
        parts.push(ChatSnippetPart {
            text: current,
            highlighted,
        });
    }
    parts
}

// ---------------------------------------------------------------- rows

fn not_found(what: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

fn seq_col(r: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(idx)?;
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, e.into())
    })
}

const ROOM_COLS: &str =
    "r.id, r.kind, r.ensemble_id, r.show_id, r.name, r.read_only, r.last_seq, r.created_by, \
     r.created_at_ms, r.everyone";

fn room_row(r: &Row<'_>) -> rusqlite::Result<ChatRoomRow> {
    Ok(ChatRoomRow {
        id: r.get(0)?,
        kind: parse_col(r, 1)?,
        ensemble_id: r.get(2)?,
        show_id: r.get(3)?,
        name: r.get(4)?,
        read_only: r.get::<_, i64>(5)? != 0,
        last_seq: seq_col(r, 6)?,
        created_by: r.get(7)?,
        created_at_ms: r.get(8)?,
        everyone: r.get::<_, i64>(9)? != 0,
    })
}

const MEMBER_COLS: &str = "m.room_id, m.user_id, m.involvement, m.last_read_seq, m.created_at_ms";

fn member_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<ChatMemberRow> {
    Ok(ChatMemberRow {
        room_id: r.get(at)?,
        user_id: r.get(at + 1)?,
        involvement: parse_col(r, at + 2)?,
        last_read_seq: seq_col(r, at + 3)?,
        created_at_ms: r.get(at + 4)?,
    })
}

const MESSAGE_COLS: &str =
    "id, room_id, author_id, client_message_id, body, reply_to, posted_seq, last_seq, \
     created_at_ms, edited_at_ms, edited_by, deleted_at_ms, deleted_by, hidden, held_until_ms";

fn message_row(r: &Row<'_>) -> rusqlite::Result<ChatMessageRow> {
    Ok(ChatMessageRow {
        id: r.get(0)?,
        room_id: r.get(1)?,
        author_id: r.get(2)?,
        client_message_id: r.get(3)?,
        text: r.get(4)?,
        reply_to: r.get(5)?,
        posted_seq: seq_col(r, 6)?,
        last_seq: seq_col(r, 7)?,
        created_at_ms: r.get(8)?,
        edited_at_ms: r.get(9)?,
        edited_by: r.get(10)?,
        deleted_at_ms: r.get(11)?,
        deleted_by: r.get(12)?,
        hidden: r.get::<_, i64>(13)? != 0,
        held_until_ms: r.get(14)?,
        attachments: Vec::new(),
    })
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<ChatEvent> {
    Ok(ChatEvent {
        room_id: r.get(0)?,
        seq: seq_col(r, 1)?,
        kind: parse_col(r, 2)?,
        message_id: r.get(3)?,
        actor_id: r.get(4)?,
        at_ms: r.get(5)?,
        text: r.get(6)?,
        boost: r.get(7)?,
        author_id: r.get(8)?,
        client_message_id: r.get(9)?,
        reply_to: r.get(10)?,
        hidden: r.get::<_, i64>(11)? != 0,
        moderated: r.get::<_, i64>(12)? != 0,
        held: r.get::<_, i64>(13)? != 0,
        attachments: Vec::new(),
        flag: extras::flag_col(r, 14)?,
        votes: r
            .get::<_, Option<i64>>(15)?
            .map(|v| u64::try_from(v).unwrap_or(0)),
    })
}

/// Fills a message's attachments (rows are read without them).
fn with_attachments(
    conn: &Connection,
    mut m: ChatMessageRow,
) -> Result<ChatMessageRow, StoreError> {
    m.attachments = attachments::of_message(conn, m.id)?;
    Ok(m)
}

/// Fills a post event's attachments.
fn event_with_attachments(conn: &Connection, mut e: ChatEvent) -> Result<ChatEvent, StoreError> {
    if e.kind.shows_message() {
        e.attachments = attachments::of_message(conn, e.message_id)?;
    }
    Ok(e)
}

const EVENT_SELECT: &str =
    "SELECT e.room_id, e.seq, e.kind, e.message_id, e.actor_id, e.at_ms, e.text, e.boost, \
     m.author_id, m.client_message_id, m.reply_to, m.hidden OR e.private, e.moderated, \
     e.private, m.flag, e.votes \
     FROM chat_events e JOIN chat_messages m ON m.id = e.message_id";

// ---------------------------------------------------------------- rooms

fn room(conn: &Connection, id: i64) -> Result<Option<ChatRoomRow>, StoreError> {
    const OP: &str = "reading a chat room";
    conn.prepare_cached(&format!(
        "SELECT {ROOM_COLS} FROM chat_rooms r WHERE r.id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], room_row)
    .optional()
    .map_err(db(OP))
}

fn require_room(conn: &Connection, id: i64) -> Result<ChatRoomRow, StoreError> {
    room(conn, id)?.ok_or_else(|| not_found("chat room", id))
}

fn room_by_show(conn: &Connection, show_id: i64) -> Result<Option<ChatRoomRow>, StoreError> {
    const OP: &str = "reading a show's chat room";
    conn.prepare_cached(&format!(
        "SELECT {ROOM_COLS} FROM chat_rooms r WHERE r.show_id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([show_id], room_row)
    .optional()
    .map_err(db(OP))
}

fn exists(conn: &Connection, op: &'static str, sql: &str, id: i64) -> Result<bool, StoreError> {
    conn.prepare_cached(sql)
        .map_err(db(op))?
        .query_row([id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(db(op))
}

fn insert_room(
    conn: &Connection,
    r: &NewChatRoom,
    direct_key: Option<&str>,
) -> Result<ChatRoomRow, StoreError> {
    const OP: &str = "creating a chat room";
    if let Some(ensemble) = r.ensemble_id {
        if !exists(conn, OP, "SELECT 1 FROM ensembles WHERE id = ?1", ensemble)? {
            return Err(not_found("ensemble", ensemble));
        }
    }
    if let Some(show) = r.show_id {
        if !exists(conn, OP, "SELECT 1 FROM shows WHERE id = ?1", show)? {
            return Err(not_found("show", show));
        }
    }
    if let Some(user) = r.created_by {
        require_user(conn, user)?;
    }
    let inserted = conn
        .prepare_cached(
            "INSERT INTO chat_rooms (kind, ensemble_id, show_id, name, direct_key, created_by, \
             created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    r.kind.as_str(),
                    r.ensemble_id,
                    r.show_id,
                    r.name,
                    direct_key,
                    r.created_by,
                    r.at_ms
                ],
                |row| row.get::<_, i64>(0),
            )
        });
    let id = match inserted {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: "show room",
                value: r.show_id.map_or_else(String::new, |s| s.to_string()),
            })
        }
        Err(e) => return Err(db(OP)(e)),
    };
    for &user in &r.members {
        insert_member(conn, id, user, Involvement::Everything, r.at_ms)?;
    }
    require_room(conn, id)
}

fn create_room(conn: &Connection, r: &NewChatRoom) -> Result<ChatRoomRow, StoreError> {
    insert_room(conn, r, None)
}

/// The key of a direct room: its members' ids, sorted, joined by commas.
fn direct_key(members: &[i64]) -> String {
    members
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn direct_room(
    conn: &Connection,
    members: &[i64],
    created_by: Option<i64>,
    at_ms: i64,
) -> Result<(ChatRoomRow, bool), StoreError> {
    const OP: &str = "finding a direct room";
    let key = direct_key(members);
    let found = conn
        .prepare_cached(&format!(
            "SELECT {ROOM_COLS} FROM chat_rooms r WHERE r.direct_key = ?1"
        ))
        .map_err(db(OP))?
        .query_row([&key], room_row)
        .optional()
        .map_err(db(OP))?;
    if let Some(room) = found {
        return Ok((room, false));
    }
    let new = NewChatRoom {
        kind: ChatRoomKind::Direct,
        ensemble_id: None,
        show_id: None,
        name: None,
        created_by,
        members: members.to_vec(),
        at_ms,
    };
    insert_room(conn, &new, Some(&key)).map(|room| (room, true))
}

fn set_read_only(
    conn: &Connection,
    room_id: i64,
    read_only: bool,
) -> Result<ChatRoomRow, StoreError> {
    const OP: &str = "changing a room's read-only flag";
    let changed = conn
        .prepare_cached("UPDATE chat_rooms SET read_only = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![room_id, i64::from(read_only)]))
        .map_err(db(OP))?;
    if changed == 0 {
        return Err(not_found("chat room", room_id));
    }
    require_room(conn, room_id)
}

/// Takes the room's next `seq` (the caller appends the event in the same savepoint).
fn next_seq(conn: &Connection, room_id: i64) -> Result<i64, StoreError> {
    const OP: &str = "taking a room's next sequence number";
    conn.prepare_cached(
        "UPDATE chat_rooms SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
    )
    .map_err(db(OP))?
    .query_row([room_id], |r| r.get(0))
    .optional()
    .map_err(db(OP))?
    .ok_or_else(|| not_found("chat room", room_id))
}

// ---------------------------------------------------------------- members

fn member(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
) -> Result<Option<ChatMemberRow>, StoreError> {
    const OP: &str = "reading a room membership";
    conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLS} FROM chat_members m WHERE m.room_id = ?1 AND m.user_id = ?2"
    ))
    .map_err(db(OP))?
    .query_row(params![room_id, user_id], |r| member_row_at(r, 0))
    .optional()
    .map_err(db(OP))
}

fn require_member(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
) -> Result<ChatMemberRow, StoreError> {
    member(conn, room_id, user_id)?.ok_or_else(|| {
        not_found(
            "room membership",
            format!("user {user_id} in room {room_id}"),
        )
    })
}

fn insert_member(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
    involvement: Involvement,
    at_ms: i64,
) -> Result<ChatMemberRow, StoreError> {
    require_user(conn, user_id)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO chat_members (room_id, user_id, involvement, created_at_ms) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![room_id, user_id, involvement.as_str(), at_ms]));
    match inserted {
        Ok(_) => Ok(ChatMemberRow {
            room_id,
            user_id,
            involvement,
            last_read_seq: 0,
            created_at_ms: at_ms,
        }),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
            what: "membership",
            value: format!("user {user_id} in room {room_id}"),
        }),
        Err(e) => Err(db("adding a room member")(e)),
    }
}

fn add_member(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
    involvement: Involvement,
    at_ms: i64,
) -> Result<ChatMemberRow, StoreError> {
    let room = require_room(conn, room_id)?;
    if room.kind == ChatRoomKind::Direct {
        return Err(StoreError::Conflict {
            what: "direct room",
            value: format!("room {room_id} is a direct room: its members are fixed"),
        });
    }
    insert_member(conn, room_id, user_id, involvement, at_ms)
}

fn remove_member(conn: &Connection, room_id: i64, user_id: i64) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached("DELETE FROM chat_members WHERE room_id = ?1 AND user_id = ?2")
        .and_then(|mut s| s.execute(params![room_id, user_id]))
        .map_err(db("removing a room member"))?;
    if changed == 0 {
        return Err(not_found(
            "room membership",
            format!("user {user_id} in room {room_id}"),
        ));
    }
    Ok(())
}

fn set_involvement(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
    involvement: Involvement,
) -> Result<ChatMemberRow, StoreError> {
    conn.prepare_cached(
        "UPDATE chat_members SET involvement = ?3 WHERE room_id = ?1 AND user_id = ?2",
    )
    .and_then(|mut s| s.execute(params![room_id, user_id, involvement.as_str()]))
    .map_err(db("changing a member's involvement"))?;
    require_member(conn, room_id, user_id)
}

fn mark_read(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
    seq: u64,
) -> Result<ChatMemberRow, StoreError> {
    let room = require_room(conn, room_id)?;
    if seq > room.last_seq {
        return Err(future_seq("seq", room_id, seq, room.last_seq));
    }
    require_member(conn, room_id, user_id)?;
    let seq = seq_param("seq", seq)?;
    conn.prepare_cached(
        "UPDATE chat_members SET last_read_seq = max(last_read_seq, ?3) \
         WHERE room_id = ?1 AND user_id = ?2",
    )
    .and_then(|mut s| s.execute(params![room_id, user_id, seq]))
    .map_err(db("marking a room read"))?;
    require_member(conn, room_id, user_id)
}

fn members(conn: &Connection, room_id: i64) -> Result<Vec<ChatMemberRow>, StoreError> {
    rows(
        conn,
        "listing room members",
        &format!(
            "SELECT {MEMBER_COLS} FROM chat_members m WHERE m.room_id = ?1 ORDER BY m.user_id"
        ),
        [room_id],
        |r| member_row_at(r, 0),
    )
}

fn rooms_of(conn: &Connection, user_id: i64) -> Result<Vec<ChatRoomListing>, StoreError> {
    rows(
        conn,
        "listing a user's rooms",
        &format!(
            "SELECT {ROOM_COLS}, {MEMBER_COLS}, \
             (SELECT count(*) FROM chat_messages x WHERE x.room_id = r.id \
                AND x.posted_seq > m.last_read_seq AND x.deleted_at_ms IS NULL \
                AND x.author_id <> m.user_id AND x.hidden = 0 AND x.held_until_ms IS NULL) \
             FROM chat_members m JOIN chat_rooms r ON r.id = m.room_id \
             WHERE m.user_id = ?1 ORDER BY r.id"
        ),
        [user_id],
        |r| {
            Ok(ChatRoomListing {
                room: room_row(r)?,
                member: member_row_at(r, 10)?,
                unread: seq_col(r, 15)?,
            })
        },
    )
}

/// The rooms the user belongs in but is not a member of yet: the open rooms and show rooms of
/// the user's ensembles (for every member of the ensemble: whoever joined the ensemble after
/// the room was made joins it on their next look) and, for an active non-audience account,
/// "All Talk".
fn open_rooms_to_join(conn: &Connection, user_id: i64) -> Result<Vec<i64>, StoreError> {
    rows(
        conn,
        "finding open rooms to join",
        "SELECT r.id FROM chat_rooms r \
         JOIN memberships e ON e.ensemble_id = r.ensemble_id AND e.user_id = ?1 \
         WHERE r.kind IN ('open', 'show') AND NOT EXISTS \
           (SELECT 1 FROM chat_members m WHERE m.room_id = r.id AND m.user_id = ?1) \
         UNION \
         SELECT r.id FROM chat_rooms r JOIN users u ON u.id = ?1 \
         WHERE r.everyone = 1 AND u.role <> 'audience' AND u.active = 1 AND NOT EXISTS \
           (SELECT 1 FROM chat_members m WHERE m.room_id = r.id AND m.user_id = ?1) \
         ORDER BY 1",
        [user_id],
        |r| r.get(0),
    )
}

// ---------------------------------------------------------------- messages and events

fn message(conn: &Connection, id: i64) -> Result<Option<ChatMessageRow>, StoreError> {
    const OP: &str = "reading a chat message";
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLS} FROM chat_messages WHERE id = ?1"
    ))
    .map_err(db(OP))?
    .query_row([id], message_row)
    .optional()
    .map_err(db(OP))?
    .map(|m| with_attachments(conn, m))
    .transpose()
}

fn require_message(conn: &Connection, id: i64) -> Result<ChatMessageRow, StoreError> {
    message(conn, id)?.ok_or_else(|| not_found("chat message", id))
}

/// The room of a message that may still change: not deleted, room not read-only.
fn changeable(conn: &Connection, id: i64) -> Result<ChatMessageRow, StoreError> {
    let m = require_message(conn, id)?;
    if m.deleted_at_ms.is_some() {
        return Err(StoreError::Conflict {
            what: "deleted message",
            value: format!("message {id} was deleted"),
        });
    }
    let room = require_room(conn, m.room_id)?;
    if room.read_only {
        return Err(read_only(room.id));
    }
    Ok(m)
}

fn read_only(room_id: i64) -> StoreError {
    StoreError::Conflict {
        what: "read-only room",
        value: format!("room {room_id} is read-only"),
    }
}

fn future_seq(field: &'static str, room_id: i64, seq: u64, head: u64) -> StoreError {
    StoreError::Invalid {
        field,
        value: seq.to_string(),
        reason: format!("room {room_id} is at seq {head}: a seq from the future"),
    }
}

#[allow(clippy::too_many_arguments)]
fn append_event(
    conn: &Connection,
    room_id: i64,
    seq: i64,
    kind: ChatEventKind,
    message_id: i64,
    actor_id: i64,
    at_ms: i64,
    text: Option<&str>,
    boost: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO chat_events (room_id, seq, kind, message_id, actor_id, at_ms, text, boost, \
         private) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, \
         (SELECT held_until_ms IS NOT NULL FROM chat_messages WHERE id = ?4))",
    )
    .and_then(|mut s| {
        s.execute(params![
            room_id,
            seq,
            kind.as_str(),
            message_id,
            actor_id,
            at_ms,
            text,
            boost
        ])
    })
    .map_err(db("appending a chat event"))?;
    Ok(())
}

fn event_at(conn: &Connection, room_id: i64, seq: i64) -> Result<ChatEvent, StoreError> {
    const OP: &str = "reading a chat event";
    conn.prepare_cached(&format!(
        "{EVENT_SELECT} WHERE e.room_id = ?1 AND e.seq = ?2"
    ))
    .map_err(db(OP))?
    .query_row(params![room_id, seq], event_row)
    .optional()
    .map_err(db(OP))?
    .ok_or_else(|| StoreError::Internal(format!("event {seq} of room {room_id} vanished")))
    .and_then(|e| event_with_attachments(conn, e))
}

fn post(conn: &Connection, m: &NewChatMessage, attached: &[i64]) -> Result<ChatPosted, StoreError> {
    const OP: &str = "posting a chat message";
    let original = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLS} FROM chat_messages \
             WHERE room_id = ?1 AND author_id = ?2 AND client_message_id = ?3"
        ))
        .map_err(db(OP))?
        .query_row(
            params![m.room_id, m.author_id, m.client_message_id],
            message_row,
        )
        .optional()
        .map_err(db(OP))?;
    if let Some(message) = original {
        let message = with_attachments(conn, message)?;
        return Ok(ChatPosted {
            seq: message.posted_seq,
            message,
            duplicate: true,
        });
    }
    let room = require_room(conn, m.room_id)?;
    if room.read_only {
        return Err(read_only(room.id));
    }
    require_member(conn, m.room_id, m.author_id)?;
    let rule = moderation::check_post(conn, &room, m.author_id, &m.text, m.at_ms)?;
    let held_until = (rule.delay_s > 0).then(|| m.at_ms + i64::from(rule.delay_s) * 1000);
    if let Some(target) = m.reply_to {
        let replied = require_message(conn, target)?;
        if replied.room_id != m.room_id {
            return Err(not_found(
                "chat message",
                format!("{target} in room {}", m.room_id),
            ));
        }
    }
    let seq = next_seq(conn, m.room_id)?;
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO chat_messages (room_id, author_id, client_message_id, body, reply_to, \
             posted_seq, last_seq, created_at_ms, hidden, held_until_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9) RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    m.room_id,
                    m.author_id,
                    m.client_message_id,
                    m.text,
                    m.reply_to,
                    seq,
                    m.at_ms,
                    i64::from(rule.hidden),
                    held_until
                ],
                |r| r.get(0),
            )
        })
        .map_err(db(OP))?;
    attachments::link(conn, id, m.room_id, m.author_id, attached)?;
    append_event(
        conn,
        m.room_id,
        seq,
        ChatEventKind::MessagePosted,
        id,
        m.author_id,
        m.at_ms,
        Some(&m.text),
        None,
    )?;
    Ok(ChatPosted {
        message: require_message(conn, id)?,
        seq: seq_col_value(seq),
        duplicate: false,
    })
}

/// Most held messages one [`Store::chat_release_due`] releases (the rest on the next call).
const RELEASE_BATCH: i64 = 200;

/// Releases the held messages whose delay ended by `now_ms`, oldest first: each gets a public
/// `message_released` event carrying its current text. Returns each release's room, `seq` and
/// message.
fn release_due(conn: &Connection, now_ms: i64) -> Result<Vec<(i64, u64, i64)>, StoreError> {
    const OP: &str = "releasing held chat messages";
    let due = rows(
        conn,
        OP,
        "SELECT id, room_id, author_id, body FROM chat_messages \
         WHERE held_until_ms IS NOT NULL AND held_until_ms <= ?1 AND deleted_at_ms IS NULL \
         ORDER BY held_until_ms, id LIMIT ?2",
        params![now_ms, RELEASE_BATCH],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    )?;
    let mut released = Vec::with_capacity(due.len());
    for (id, room_id, author_id, body) in due {
        let seq = next_seq(conn, room_id)?;
        conn.prepare_cached(
            "UPDATE chat_messages SET held_until_ms = NULL, last_seq = ?2 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, seq]))
        .map_err(db(OP))?;
        append_event(
            conn,
            room_id,
            seq,
            ChatEventKind::MessageReleased,
            id,
            author_id,
            now_ms,
            Some(&body),
            None,
        )?;
        published::changed(conn, event_at(conn, room_id, seq)?)?;
        released.push((room_id, seq_col_value(seq), id));
    }
    Ok(released)
}

/// When the next held message is due (unix milliseconds), if any is held.
fn next_release(conn: &Connection) -> Result<Option<i64>, StoreError> {
    const OP: &str = "reading the next held message";
    conn.prepare_cached(
        "SELECT min(held_until_ms) FROM chat_messages \
         WHERE held_until_ms IS NOT NULL AND deleted_at_ms IS NULL",
    )
    .map_err(db(OP))?
    .query_row([], |r| r.get(0))
    .map_err(db(OP))
}

fn seq_col_value(seq: i64) -> u64 {
    // Sequences are checked `>= 1` by the schema.
    u64::try_from(seq).unwrap_or(0)
}

fn edit(
    conn: &Connection,
    message_id: i64,
    editor_id: i64,
    text: &str,
    at_ms: i64,
) -> Result<ChatEvent, StoreError> {
    let m = changeable(conn, message_id)?;
    require_user(conn, editor_id)?;
    let seq = next_seq(conn, m.room_id)?;
    conn.prepare_cached(
        "UPDATE chat_messages SET body = ?2, edited_at_ms = ?3, edited_by = ?4, last_seq = ?5 \
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![message_id, text, at_ms, editor_id, seq]))
    .map_err(db("editing a chat message"))?;
    append_event(
        conn,
        m.room_id,
        seq,
        ChatEventKind::MessageEdited,
        message_id,
        editor_id,
        at_ms,
        Some(text),
        None,
    )?;
    event_at(conn, m.room_id, seq)
}

/// Deletes a message; `removal` (a moderator removing someone else's message, with the reason)
/// marks the event `moderated` and writes the audit entry in the same savepoint.
fn delete(
    conn: &Connection,
    message_id: i64,
    deleter_id: i64,
    at_ms: i64,
    removal: Option<Option<&str>>,
) -> Result<ChatEvent, StoreError> {
    const OP: &str = "deleting a chat message";
    let m = require_message(conn, message_id)?;
    if m.deleted_at_ms.is_some() {
        return Err(StoreError::Conflict {
            what: "deleted message",
            value: format!("message {message_id} was deleted"),
        });
    }
    require_user(conn, deleter_id)?;
    let seq = next_seq(conn, m.room_id)?;
    conn.prepare_cached(
        "UPDATE chat_messages SET body = '', deleted_at_ms = ?2, deleted_by = ?3, last_seq = ?4 \
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![message_id, at_ms, deleter_id, seq]))
    .map_err(db(OP))?;
    conn.prepare_cached("UPDATE chat_events SET text = NULL WHERE message_id = ?1")
        .and_then(|mut s| s.execute([message_id]))
        .map_err(db(OP))?;
    conn.prepare_cached("DELETE FROM chat_boosts WHERE message_id = ?1")
        .and_then(|mut s| s.execute([message_id]))
        .map_err(db(OP))?;
    attachments::unlink(conn, message_id)?;
    append_event(
        conn,
        m.room_id,
        seq,
        ChatEventKind::MessageDeleted,
        message_id,
        deleter_id,
        at_ms,
        None,
        None,
    )?;
    if m.held_until_ms.is_some() {
        // Deleted while held: it is never released (its deletion stays private, like the
        // rest of its events).
        conn.prepare_cached("UPDATE chat_messages SET held_until_ms = NULL WHERE id = ?1")
            .and_then(|mut s| s.execute([message_id]))
            .map_err(db(OP))?;
    }
    if let Some(reason) = removal {
        conn.prepare_cached("UPDATE chat_events SET moderated = 1 WHERE room_id = ?1 AND seq = ?2")
            .and_then(|mut s| s.execute(params![m.room_id, seq]))
            .map_err(db(OP))?;
        moderation::log(
            conn,
            m.room_id,
            deleter_id,
            ChatModAction::MessageRemoved,
            Some(m.author_id),
            Some(message_id),
            &serde_json::json!({"seq": seq}),
            reason,
            at_ms,
        )?;
    }
    event_at(conn, m.room_id, seq)
}

fn boost(
    conn: &Connection,
    message_id: i64,
    user_id: i64,
    content: &str,
    at_ms: i64,
) -> Result<ChatEvent, StoreError> {
    const OP: &str = "boosting a chat message";
    let m = changeable(conn, message_id)?;
    require_member(conn, m.room_id, user_id)?;
    let taken = conn
        .prepare_cached(
            "SELECT 1 FROM chat_boosts WHERE message_id = ?1 AND user_id = ?2 AND content = ?3",
        )
        .map_err(db(OP))?
        .query_row(params![message_id, user_id, content], |_| Ok(()))
        .optional()
        .map_err(db(OP))?;
    if taken.is_some() {
        return Err(StoreError::Conflict {
            what: "boost",
            value: content.to_owned(),
        });
    }
    let seq = next_seq(conn, m.room_id)?;
    conn.prepare_cached(
        "INSERT INTO chat_boosts (message_id, user_id, content, seq, at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![message_id, user_id, content, seq, at_ms]))
    .map_err(db(OP))?;
    conn.prepare_cached("UPDATE chat_messages SET last_seq = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![message_id, seq]))
        .map_err(db(OP))?;
    append_event(
        conn,
        m.room_id,
        seq,
        ChatEventKind::BoostAdded,
        message_id,
        user_id,
        at_ms,
        None,
        Some(content),
    )?;
    event_at(conn, m.room_id, seq)
}

fn unboost(
    conn: &Connection,
    message_id: i64,
    user_id: i64,
    content: &str,
    at_ms: i64,
) -> Result<ChatEvent, StoreError> {
    const OP: &str = "removing a boost";
    let m = changeable(conn, message_id)?;
    let removed = conn
        .prepare_cached(
            "DELETE FROM chat_boosts WHERE message_id = ?1 AND user_id = ?2 AND content = ?3",
        )
        .and_then(|mut s| s.execute(params![message_id, user_id, content]))
        .map_err(db(OP))?;
    if removed == 0 {
        return Err(not_found(
            "boost",
            format!("{content:?} by user {user_id} on message {message_id}"),
        ));
    }
    let seq = next_seq(conn, m.room_id)?;
    conn.prepare_cached("UPDATE chat_messages SET last_seq = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![message_id, seq]))
        .map_err(db(OP))?;
    append_event(
        conn,
        m.room_id,
        seq,
        ChatEventKind::BoostRemoved,
        message_id,
        user_id,
        at_ms,
        None,
        Some(content),
    )?;
    event_at(conn, m.room_id, seq)
}

fn boosts(conn: &Connection, message_id: i64) -> Result<Vec<ChatBoostRow>, StoreError> {
    rows(
        conn,
        "listing a message's boosts",
        "SELECT message_id, user_id, content, seq, at_ms FROM chat_boosts \
         WHERE message_id = ?1 ORDER BY seq",
        [message_id],
        |r| {
            Ok(ChatBoostRow {
                message_id: r.get(0)?,
                user_id: r.get(1)?,
                content: r.get(2)?,
                seq: seq_col(r, 3)?,
                at_ms: r.get(4)?,
            })
        },
    )
}

fn events_after(
    conn: &Connection,
    room_id: i64,
    after_seq: u64,
    limit: u32,
) -> Result<ChatEventPage, StoreError> {
    let head = require_room(conn, room_id)?.last_seq;
    if after_seq > head {
        return Err(future_seq("after_seq", room_id, after_seq, head));
    }
    let mut events = rows(
        conn,
        "reading a room's events",
        &format!("{EVENT_SELECT} WHERE e.room_id = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3"),
        params![
            room_id,
            seq_param("after_seq", after_seq)?,
            i64::from(limit) + 1
        ],
        event_row,
    )?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let events = events
        .into_iter()
        .map(|e| event_with_attachments(conn, e))
        .collect::<Result<Vec<_>, _>>()?;
    let head_seq = events.last().map_or(head, |e| e.seq.max(head));
    Ok(ChatEventPage {
        events,
        head_seq,
        more,
    })
}

fn messages_before(
    conn: &Connection,
    room_id: i64,
    before_seq: Option<u64>,
    limit: u32,
) -> Result<Vec<ChatMessageRow>, StoreError> {
    require_room(conn, room_id)?;
    let before = match before_seq {
        Some(seq) => seq_param("before_seq", seq)?,
        None => i64::MAX,
    };
    rows(
        conn,
        "reading a room's messages",
        &format!(
            "SELECT {MESSAGE_COLS} FROM chat_messages WHERE room_id = ?1 AND posted_seq < ?2 \
             AND deleted_at_ms IS NULL ORDER BY posted_seq DESC LIMIT ?3"
        ),
        params![room_id, before, i64::from(limit)],
        message_row,
    )?
    .into_iter()
    .map(|m| with_attachments(conn, m))
    .collect()
}

// ---------------------------------------------------------------- search

fn search(
    conn: &Connection,
    user_id: i64,
    fts: &str,
    limit: u32,
) -> Result<Vec<ChatSearchHit>, StoreError> {
    rows(
        conn,
        "searching chat messages",
        "SELECT m.id, m.room_id, m.posted_seq, m.author_id, m.created_at_ms, \
         snippet(chat_fts, 0, char(2), char(3), '…', 24), chat_fts.rank \
         FROM chat_fts JOIN chat_messages m ON m.id = chat_fts.rowid \
         WHERE chat_fts MATCH ?1 AND m.deleted_at_ms IS NULL \
         AND ((m.hidden = 0 AND m.held_until_ms IS NULL) OR m.author_id = ?2) \
         AND m.room_id IN (SELECT room_id FROM chat_members WHERE user_id = ?2) \
         ORDER BY chat_fts.rank, m.id LIMIT ?3",
        params![fts, user_id, i64::from(limit)],
        |r| {
            let marked: String = r.get(5)?;
            Ok(ChatSearchHit {
                message_id: r.get(0)?,
                room_id: r.get(1)?,
                posted_seq: seq_col(r, 2)?,
                author_id: r.get(3)?,
                created_at_ms: r.get(4)?,
                snippet: snippet_parts(&marked),
                rank: r.get(6)?,
            })
        },
    )
}

fn record_search(
    conn: &Connection,
    user_id: i64,
    query: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    const OP: &str = "recording a search";
    require_user(conn, user_id)?;
    conn.prepare_cached(
        "INSERT INTO chat_searches (user_id, query, at_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (user_id, query) DO UPDATE SET at_ms = max(at_ms, excluded.at_ms)",
    )
    .and_then(|mut s| s.execute(params![user_id, query, at_ms]))
    .map_err(db(OP))?;
    conn.prepare_cached(
        "DELETE FROM chat_searches WHERE user_id = ?1 AND query NOT IN \
         (SELECT query FROM chat_searches WHERE user_id = ?1 \
          ORDER BY at_ms DESC, query LIMIT ?2)",
    )
    .and_then(|mut s| s.execute(params![user_id, CHAT_RECENT_SEARCHES as i64]))
    .map_err(db(OP))?;
    Ok(())
}

fn recent_searches(conn: &Connection, user_id: i64) -> Result<Vec<ChatRecentSearch>, StoreError> {
    rows(
        conn,
        "reading recent searches",
        "SELECT query, at_ms FROM chat_searches WHERE user_id = ?1 \
         ORDER BY at_ms DESC, query LIMIT ?2",
        params![user_id, CHAT_RECENT_SEARCHES as i64],
        |r| {
            Ok(ChatRecentSearch {
                query: r.get(0)?,
                at_ms: r.get(1)?,
            })
        },
    )
}

// ---------------------------------------------------------------- show rooms, All Talk, audience

/// Creates the room of a new show (in the savepoint that creates the show): named after its
/// code, in its piece's ensemble, with the ensemble's members (the show's staff) as members.
pub(crate) fn create_show_room(
    conn: &Connection,
    show_id: i64,
    ensemble_id: Option<i64>,
    code: &str,
    at_ms: i64,
) -> Result<ChatRoomRow, StoreError> {
    let members = match ensemble_id {
        Some(e) => rows(
            conn,
            "listing a show's staff",
            "SELECT user_id FROM memberships WHERE ensemble_id = ?1 ORDER BY user_id",
            [e],
            |r| r.get::<_, i64>(0),
        )?,
        None => Vec::new(),
    };
    let name: String = format!("Show {code}")
        .chars()
        .take(MAX_CHAT_ROOM_NAME_CHARS)
        .collect();
    insert_room(
        conn,
        &NewChatRoom {
            kind: ChatRoomKind::Show,
            ensemble_id,
            show_id: Some(show_id),
            name: Some(name),
            created_by: None,
            members,
            at_ms,
        },
        None,
    )
}

/// Makes a show's room read-only (in the savepoint that ends the show). A show without a
/// room (none can exist after migration 8) is left alone.
pub(crate) fn end_show_room(conn: &Connection, show_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE chat_rooms SET read_only = 1 WHERE show_id = ?1")
        .and_then(|mut s| s.execute([show_id]))
        .map_err(db("making a show's room read-only"))?;
    Ok(())
}

/// Creates "All Talk" with `admin` as its creator and first member (first-run setup, in the
/// savepoint that creates the first admin), unless it exists.
pub(crate) fn create_all_talk(conn: &Connection, admin: i64, at_ms: i64) -> Result<(), StoreError> {
    const OP: &str = "creating All Talk";
    if exists(conn, OP, "SELECT 1 FROM chat_rooms WHERE everyone = ?1", 1)? {
        return Ok(());
    }
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO chat_rooms (kind, name, everyone, created_by, created_at_ms) \
             VALUES ('closed', ?1, 1, ?2, ?3) RETURNING id",
        )
        .and_then(|mut s| s.query_row(params![ALL_TALK, admin, at_ms], |r| r.get(0)))
        .map_err(db(OP))?;
    insert_member(conn, id, admin, Involvement::Everything, at_ms)?;
    Ok(())
}

fn all_talk(conn: &Connection) -> Result<Option<ChatRoomRow>, StoreError> {
    const OP: &str = "reading All Talk";
    conn.prepare_cached(&format!(
        "SELECT {ROOM_COLS} FROM chat_rooms r WHERE r.everyone = 1"
    ))
    .map_err(db(OP))?
    .query_row([], room_row)
    .optional()
    .map_err(db(OP))
}

const AUDIENCE_SELECT: &str = "SELECT a.user_id, a.show_id, a.guest_id, u.display_name, \
     a.created_at_ms FROM chat_audience a JOIN users u ON u.id = a.user_id";

fn audience_row(r: &Row<'_>) -> rusqlite::Result<ChatAudienceRow> {
    Ok(ChatAudienceRow {
        user_id: r.get(0)?,
        show_id: r.get(1)?,
        guest_id: r.get(2)?,
        display_name: r.get(3)?,
        created_at_ms: r.get(4)?,
    })
}

fn audience(conn: &Connection, user_id: i64) -> Result<Option<ChatAudienceRow>, StoreError> {
    const OP: &str = "reading an audience identity";
    conn.prepare_cached(&format!("{AUDIENCE_SELECT} WHERE a.user_id = ?1"))
        .map_err(db(OP))?
        .query_row([user_id], audience_row)
        .optional()
        .map_err(db(OP))
}

/// The audience identity of a guest, or of an anonymous joiner of `show_id` (`guest_id`
/// `None`: always a new one). A guest's existing identity is returned, its name changed to
/// `name` when given.
fn audience_identity(
    conn: &Connection,
    show_id: i64,
    guest_id: Option<i64>,
    name: Option<&str>,
    at_ms: i64,
) -> Result<ChatAudienceRow, StoreError> {
    const OP: &str = "making an audience identity";
    if !exists(conn, OP, "SELECT 1 FROM shows WHERE id = ?1", show_id)? {
        return Err(not_found("show", show_id));
    }
    if let Some(guest) = guest_id {
        let guest_show: Option<i64> = conn
            .prepare_cached("SELECT show_id FROM guests WHERE id = ?1")
            .map_err(db(OP))?
            .query_row([guest], |r| r.get(0))
            .optional()
            .map_err(db(OP))?;
        match guest_show {
            None => return Err(not_found("guest", guest)),
            Some(s) if s != show_id => {
                return Err(invalid(
                    "guest_id",
                    &guest.to_string(),
                    format!("the guest belongs to show {s}, not to show {show_id}"),
                ))
            }
            Some(_) => {}
        }
        let found = conn
            .prepare_cached(&format!("{AUDIENCE_SELECT} WHERE a.guest_id = ?1"))
            .map_err(db(OP))?
            .query_row([guest], audience_row)
            .optional()
            .map_err(db(OP))?;
        if let Some(mut row) = found {
            if let Some(name) = name.filter(|n| *n != row.display_name) {
                conn.prepare_cached("UPDATE users SET display_name = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![row.user_id, name]))
                    .map_err(db(OP))?;
                name.clone_into(&mut row.display_name);
            }
            return Ok(row);
        }
    }
    let name = name.unwrap_or("Guest");
    // A username no account can take (usernames refuse `~`), made unique by the row's id.
    let user_id: i64 = conn
        .prepare_cached(
            "INSERT INTO users (username, display_name, password_hash, role, active, \
             created_at_ms, password_changed_at_ms) \
             VALUES ('~audience-pending', ?1, ?2, 'audience', 1, ?3, ?3) RETURNING id",
        )
        .and_then(|mut s| s.query_row(params![name, AUDIENCE_PASSWORD_HASH, at_ms], |r| r.get(0)))
        .map_err(db(OP))?;
    conn.prepare_cached("UPDATE users SET username = '~audience-' || id WHERE id = ?1")
        .and_then(|mut s| s.execute([user_id]))
        .map_err(db(OP))?;
    conn.prepare_cached(
        "INSERT INTO chat_audience (user_id, show_id, guest_id, created_at_ms) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![user_id, show_id, guest_id, at_ms]))
    .map_err(db(OP))?;
    audience(conn, user_id)?.ok_or_else(|| StoreError::Internal("audience row vanished".into()))
}

/// Makes an audience identity a member of its show's room (on its first message); the room
/// and the membership (the existing one when it is already a member).
fn join_show_room_as_audience(
    conn: &Connection,
    user_id: i64,
    at_ms: i64,
) -> Result<(ChatRoomRow, ChatMemberRow), StoreError> {
    let who = audience(conn, user_id)?.ok_or_else(|| not_found("audience identity", user_id))?;
    let room =
        room_by_show(conn, who.show_id)?.ok_or_else(|| not_found("show room", who.show_id))?;
    if let Some(m) = member(conn, room.id, user_id)? {
        return Ok((room, m));
    }
    let m = insert_member(conn, room.id, user_id, Involvement::Everything, at_ms)?;
    Ok((room, m))
}

// ---------------------------------------------------------------- Store methods

impl Store {
    /// Creates an open, closed or show room with its first members (involvement `everything`).
    /// An open room needs its ensemble, a show room its show (one room per show: a second is
    /// [`StoreError::Conflict`] `show room`); direct rooms are made by
    /// [`Store::chat_direct_room`].
    pub async fn chat_create_room(&self, r: NewChatRoom) -> Result<ChatRoomRow, StoreError> {
        model::validate_time("at_ms", r.at_ms)?;
        match r.kind {
            ChatRoomKind::Direct => {
                return Err(invalid(
                    "kind",
                    "direct",
                    "direct rooms are made by chat_direct_room",
                ))
            }
            ChatRoomKind::Open if r.ensemble_id.is_none() => {
                return Err(invalid(
                    "ensemble_id",
                    "",
                    "an open room needs its ensemble",
                ))
            }
            ChatRoomKind::Show if r.show_id.is_none() => {
                return Err(invalid("show_id", "", "a show room needs its show"))
            }
            _ => {}
        }
        if r.kind != ChatRoomKind::Show && r.show_id.is_some() {
            return Err(invalid(
                "show_id",
                &r.show_id.unwrap_or_default().to_string(),
                "only a show room belongs to a show",
            ));
        }
        if let Some(name) = &r.name {
            model::validate_text("name", name, MAX_CHAT_ROOM_NAME_CHARS)?;
        }
        if r.members.len() > MAX_CHAT_INITIAL_MEMBERS {
            return Err(invalid(
                "members",
                &r.members.len().to_string(),
                format!("more than {MAX_CHAT_INITIAL_MEMBERS} members"),
            ));
        }
        self.write(move |c| create_room(c, &r)).await
    }

    /// The direct room of exactly these people (2–32 users, order and repeats ignored),
    /// created with all of them as members if it does not exist yet; `true` when created.
    pub async fn chat_direct_room(
        &self,
        members: &[i64],
        created_by: Option<i64>,
        at_ms: i64,
    ) -> Result<(ChatRoomRow, bool), StoreError> {
        model::validate_time("at_ms", at_ms)?;
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        if members.len() < 2 || members.len() > MAX_CHAT_DIRECT_MEMBERS {
            return Err(invalid(
                "members",
                &members.len().to_string(),
                format!("a direct room has 2..={MAX_CHAT_DIRECT_MEMBERS} people"),
            ));
        }
        self.write(move |c| direct_room(c, &members, created_by, at_ms))
            .await
    }

    /// The room with this id.
    pub async fn chat_room(&self, id: i64) -> Result<Option<ChatRoomRow>, StoreError> {
        self.read(move |c| room(c, id)).await
    }

    /// What deciding whether `user_id` may read and post in room `room_id` needs, in one
    /// read: the room, the user's membership of it, their role in its ensemble (if it has
    /// one) and their restriction in it. `None`: no such room.
    pub async fn chat_access(
        &self,
        room_id: i64,
        user_id: i64,
    ) -> Result<Option<ChatAccess>, StoreError> {
        self.read(move |c| {
            let Some(room) = room(c, room_id)? else {
                return Ok(None);
            };
            let ensemble_role = match room.ensemble_id {
                Some(e) => crate::manage::membership(c, e, user_id)?,
                None => None,
            };
            Ok(Some(ChatAccess {
                member: member(c, room_id, user_id)?,
                restriction: moderation::restriction(c, room_id, user_id)?,
                ensemble_role,
                room,
            }))
        })
        .await
    }

    /// The room of this show.
    pub async fn chat_show_room(&self, show_id: i64) -> Result<Option<ChatRoomRow>, StoreError> {
        self.read(move |c| room_by_show(c, show_id)).await
    }

    /// Makes a room read-only (a show ended) or writable again.
    pub async fn chat_set_read_only(
        &self,
        room_id: i64,
        read_only: bool,
    ) -> Result<ChatRoomRow, StoreError> {
        self.write(move |c| set_read_only(c, room_id, read_only))
            .await
    }

    /// Adds a member (not to a direct room, whose members are fixed). Already a member is
    /// [`StoreError::Conflict`] `membership`.
    pub async fn chat_add_member(
        &self,
        room_id: i64,
        user_id: i64,
        involvement: Involvement,
        at_ms: i64,
    ) -> Result<ChatMemberRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| add_member(c, room_id, user_id, involvement, at_ms))
            .await
    }

    /// Removes a member.
    pub async fn chat_remove_member(&self, room_id: i64, user_id: i64) -> Result<(), StoreError> {
        self.write(move |c| remove_member(c, room_id, user_id))
            .await
    }

    /// Changes a member's involvement.
    pub async fn chat_set_involvement(
        &self,
        room_id: i64,
        user_id: i64,
        involvement: Involvement,
    ) -> Result<ChatMemberRow, StoreError> {
        self.write(move |c| set_involvement(c, room_id, user_id, involvement))
            .await
    }

    /// Records that the member has read up to `seq` (never moves back; a `seq` beyond the
    /// room's latest is refused).
    pub async fn chat_mark_read(
        &self,
        room_id: i64,
        user_id: i64,
        seq: u64,
    ) -> Result<ChatMemberRow, StoreError> {
        seq_param("seq", seq)?;
        self.write(move |c| mark_read(c, room_id, user_id, seq))
            .await
    }

    /// The user's membership of the room, if any.
    pub async fn chat_member(
        &self,
        room_id: i64,
        user_id: i64,
    ) -> Result<Option<ChatMemberRow>, StoreError> {
        self.read(move |c| member(c, room_id, user_id)).await
    }

    /// Every member of the room, by user id.
    pub async fn chat_members(&self, room_id: i64) -> Result<Vec<ChatMemberRow>, StoreError> {
        self.read(move |c| members(c, room_id)).await
    }

    /// "All Talk", the room every signed-in account belongs to (none before first-run setup).
    pub async fn chat_all_talk(&self) -> Result<Option<ChatRoomRow>, StoreError> {
        self.read(all_talk).await
    }

    /// The audience identity of a guest (its device token's row) of `show_id`: made on the
    /// first call (a user of role `audience` that can never sign in), the same one after,
    /// renamed to `name` when given. `name` is a display name the caller checked with
    /// `tutti_chat::DisplayName` (here: 1–64 characters, no control characters).
    pub async fn chat_guest_identity(
        &self,
        show_id: i64,
        guest_id: i64,
        name: Option<&str>,
        at_ms: i64,
    ) -> Result<ChatAudienceRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        if let Some(n) = name {
            model::validate_text("display_name", n, MAX_CHAT_AUDIENCE_NAME_CHARS)?;
        }
        let name = name.map(str::to_owned);
        self.write(move |c| audience_identity(c, show_id, Some(guest_id), name.as_deref(), at_ms))
            .await
    }

    /// A new audience identity for an anonymous joiner of `show_id` (from the QR code) with
    /// the display name they chose (checked as for [`Store::chat_guest_identity`]).
    pub async fn chat_anonymous_identity(
        &self,
        show_id: i64,
        name: &str,
        at_ms: i64,
    ) -> Result<ChatAudienceRow, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        model::validate_text("display_name", name, MAX_CHAT_AUDIENCE_NAME_CHARS)?;
        let name = name.to_owned();
        self.write(move |c| audience_identity(c, show_id, None, Some(&name), at_ms))
            .await
    }

    /// The audience identity of this user, if it is one.
    pub async fn chat_audience(&self, user_id: i64) -> Result<Option<ChatAudienceRow>, StoreError> {
        self.read(move |c| audience(c, user_id)).await
    }

    /// Makes an audience identity a member of its show's room (when it first chats); returns
    /// the room and the membership. Whether the show is live is the caller's check (the room
    /// turns read-only when it ends, which the store enforces on posts).
    pub async fn chat_join_show_room(
        &self,
        user_id: i64,
        at_ms: i64,
    ) -> Result<(ChatRoomRow, ChatMemberRow), StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| join_show_room_as_audience(c, user_id, at_ms))
            .await
    }

    /// The ids of the rooms the user belongs in and has not joined yet: open and show rooms of
    /// their ensembles, and "All Talk" for staff.
    pub async fn chat_open_rooms_to_join(&self, user_id: i64) -> Result<Vec<i64>, StoreError> {
        self.read(move |c| open_rooms_to_join(c, user_id)).await
    }

    /// Every room the user is a member of (invisible ones included), with unread counts.
    pub async fn chat_rooms_of(&self, user_id: i64) -> Result<Vec<ChatRoomListing>, StoreError> {
        self.read(move |c| rooms_of(c, user_id)).await
    }

    /// Posts a message and returns it with its `seq` once committed; a retry with the same
    /// (room, author, client message id) returns the original and writes nothing. The author
    /// must be a member and the room writable; a reply must be to a message of the same room.
    pub async fn chat_post(&self, m: NewChatMessage) -> Result<ChatPosted, StoreError> {
        self.chat_post_attached(m, Vec::new()).await
    }

    /// [`Store::chat_post`] with attachments: uploads ([`Store::chat_attach`]) of the author in
    /// the same room that no message carries yet, at most
    /// [`MAX_CHAT_MESSAGE_ATTACHMENTS`], each once; linked in the post's savepoint (one that is
    /// not the author's, of another room or already posted refuses the whole post). A retry
    /// answers the original message, with its own attachments.
    pub async fn chat_post_attached(
        &self,
        m: NewChatMessage,
        attachments: Vec<i64>,
    ) -> Result<ChatPosted, StoreError> {
        model::validate_time("at_ms", m.at_ms)?;
        validate_client_id(&m.client_message_id)?;
        validate_message_text(&m.text)?;
        attachments::validate_ids(&attachments)?;
        self.write(move |c| post(c, &m, &attachments).and_then(|p| published::posted(c, p)))
            .await
    }

    /// Replaces a message's text (not of a deleted message, not in a read-only room) and
    /// returns the edit's event. Whether `editor_id` may do it is the caller's decision.
    pub async fn chat_edit(
        &self,
        message_id: i64,
        editor_id: i64,
        text: &str,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        validate_message_text(text)?;
        let text = text.to_owned();
        self.write(move |c| {
            edit(c, message_id, editor_id, &text, at_ms).and_then(|e| published::changed(c, e))
        })
        .await
    }

    /// Deletes a message (also in a read-only room): its text leaves the message, the index
    /// and its earlier events; its boosts go. Returns the deletion's event.
    pub async fn chat_delete(
        &self,
        message_id: i64,
        deleter_id: i64,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        self.write(move |c| {
            delete(c, message_id, deleter_id, at_ms, None).and_then(|e| published::changed(c, e))
        })
        .await
    }

    /// A moderator removes someone else's message: a deletion (as [`Store::chat_delete`])
    /// whose event says it was a moderator's (`moderated`), with its audit entry (and the
    /// reason, shown to moderators) in the same savepoint. Whether `moderator_id` moderates
    /// the room is the caller's check.
    pub async fn chat_remove(
        &self,
        message_id: i64,
        moderator_id: i64,
        reason: Option<&str>,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        moderation::validate_reason(reason)?;
        let reason = reason.map(str::to_owned);
        self.write(move |c| {
            delete(c, message_id, moderator_id, at_ms, Some(reason.as_deref()))
                .and_then(|e| published::changed(c, e))
        })
        .await
    }

    /// Adds a boost (1–16 characters) by a member; the same content twice by one user on one
    /// message is [`StoreError::Conflict`] `boost`.
    pub async fn chat_boost(
        &self,
        message_id: i64,
        user_id: i64,
        content: &str,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        validate_boost(content)?;
        let content = content.to_owned();
        self.write(move |c| {
            boost(c, message_id, user_id, &content, at_ms).and_then(|e| published::changed(c, e))
        })
        .await
    }

    /// Removes the user's boost with this content.
    pub async fn chat_unboost(
        &self,
        message_id: i64,
        user_id: i64,
        content: &str,
        at_ms: i64,
    ) -> Result<ChatEvent, StoreError> {
        model::validate_time("at_ms", at_ms)?;
        validate_boost(content)?;
        let content = content.to_owned();
        self.write(move |c| {
            unboost(c, message_id, user_id, &content, at_ms).and_then(|e| published::changed(c, e))
        })
        .await
    }

    /// The message with this id (deleted ones too, with empty text).
    /// Releases the audience messages whose room delay ended by `now_ms` (a batch at a time,
    /// oldest first), each with a public `message_released` event; returns each release's
    /// room, `seq` and message, for the live side to publish. Writes nothing when none is due.
    pub async fn chat_release_due(&self, now_ms: i64) -> Result<Vec<(i64, u64, i64)>, StoreError> {
        model::validate_time("now_ms", now_ms)?;
        match self.read(next_release).await? {
            Some(due) if due <= now_ms => self.write(move |c| release_due(c, now_ms)).await,
            _ => Ok(Vec::new()),
        }
    }

    pub async fn chat_message(&self, id: i64) -> Result<Option<ChatMessageRow>, StoreError> {
        self.read(move |c| message(c, id)).await
    }

    /// A message's boosts, oldest first.
    pub async fn chat_boosts(&self, message_id: i64) -> Result<Vec<ChatBoostRow>, StoreError> {
        self.read(move |c| boosts(c, message_id)).await
    }

    /// Up to `limit` (1..=1000) of the room's events after `after_seq`, in order (0 for all):
    /// exact catch-up. An `after_seq` beyond the room's latest is [`StoreError::Invalid`].
    pub async fn chat_events_after(
        &self,
        room_id: i64,
        after_seq: u64,
        limit: u32,
    ) -> Result<ChatEventPage, StoreError> {
        validate_limit(limit, MAX_CHAT_PAGE)?;
        seq_param("after_seq", after_seq)?;
        self.read(move |c| events_after(c, room_id, after_seq, limit))
            .await
    }

    /// Up to `limit` (1..=1000) messages of the room not deleted, newest first, posted before
    /// `before_seq` (the newest when `None`): scrolling back.
    pub async fn chat_messages(
        &self,
        room_id: i64,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<ChatMessageRow>, StoreError> {
        validate_limit(limit, MAX_CHAT_PAGE)?;
        self.read(move |c| messages_before(c, room_id, before_seq, limit))
            .await
    }

    /// Up to `limit` (1..=100) messages matching every word of `query` in the rooms
    /// `user_id` is a member of, best first, with snippets. A query without a letter or digit
    /// is [`StoreError::Invalid`]; no query can fail as FTS5 syntax.
    pub async fn chat_search(
        &self,
        user_id: i64,
        query: &str,
        limit: u32,
    ) -> Result<Vec<ChatSearchHit>, StoreError> {
        validate_limit(limit, MAX_CHAT_SEARCH_HITS)?;
        let (_, fts) = search_input(query)?;
        self.read(move |c| search(c, user_id, &fts, limit)).await
    }

    /// Remembers a search among the user's recent ones (the last 10 distinct queries).
    pub async fn chat_record_search(
        &self,
        user_id: i64,
        query: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        model::validate_time("at_ms", at_ms)?;
        let (shown, _) = search_input(query)?;
        self.write(move |c| record_search(c, user_id, &shown, at_ms))
            .await
    }

    /// The user's recent searches, newest first.
    pub async fn chat_recent_searches(
        &self,
        user_id: i64,
    ) -> Result<Vec<ChatRecentSearch>, StoreError> {
        self.read(move |c| recent_searches(c, user_id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_quoted() {
        assert_eq!(
            fts_query("hello world").as_deref(),
            Some(r#""hello" "world""#)
        );
        assert_eq!(fts_query(r#"say "hi"#).as_deref(), Some(r#""say" """hi""#));
        assert_eq!(fts_query("a AND b").as_deref(), Some(r#""a" "AND" "b""#));
        assert_eq!(fts_query("* ^ ( ) \"").as_deref(), None);
        assert_eq!(fts_query("x\u{0}y").as_deref(), Some(r#""x" "y""#));
    }

    #[test]
    fn snippets_split_on_the_marks() {
        let parts = snippet_parts("a \u{2}b\u{3} c");
        assert_eq!(
            parts,
            vec![
                ChatSnippetPart {
                    text: "a ".into(),
                    highlighted: false
                },
                ChatSnippetPart {
                    text: "b".into(),
                    highlighted: true
                },
                ChatSnippetPart {
                    text: " c".into(),
                    highlighted: false
                },
            ]
        );
    }

    #[test]
    fn enums_round_trip() {
        for k in ChatEventKind::ALL {
            assert_eq!(k.as_str().parse::<ChatEventKind>().ok(), Some(*k));
        }
        assert!("loud".parse::<Involvement>().is_err());
    }
}
