//! Chat on JetStream (issue 14, item 3): every room's events in one stream, readable by the
//! room's own sequence from any node, so a phone that reconnects to another edge catches up
//! exactly.
//!
//! Layout:
//! - the stream is [`CHAT_STREAM`], on the subjects `tutti.chat.>`;
//! - event `seq` of room `room` is the one message on the subject `tutti.chat.ROOM.SEQ`
//!   ([`chat_subject`]);
//! - the stream keeps at most one message per subject and refuses a second one
//!   (`max_messages_per_subject = 1`, discard new per subject).
//!
//! So a room's sequence is stored once, whatever retries its publisher makes. A retry within
//! the duplicate window is answered as a duplicate (`Nats-Msg-Id` `ROOM-SEQ`). A later one is
//! refused by the per-subject limit, and [`ChatStreams::append`] then compares the bytes
//! already stored. A live follower on another node subscribes to `tutti.chat.ROOM.*`
//! ([`room_subjects`]). A plain subscription is at most once (it may miss a message) and
//! sees every publish, retries included: the deduplication keeps the stream's copy single,
//! not the subject's traffic. So a follower keeps the last `seq` it took, drops anything not
//! newer and reads a gap with [`ChatStreams::after`], as `tutti-rooms` sessions do with the
//! store.
//!
//! A catch-up ([`ChatStreams::after`]) reads `seq + 1`, `seq + 2`, … in the room's order:
//! - it follows the stream's order while that agrees with the room's;
//! - where the stream holds a room's events out of order (two publishers raced), it looks
//!   the wanted one up by its subject;
//! - it stops at the first missing one, so it never skips a gap.
//!
//! What is not built here: publishing from the store's outbox (the PostgreSQL part of issue
//! 14), and the phones' live delivery from the stream on an edge.
//!
//! Must never: store a room's event twice, hand out a room's events out of order or across a
//! gap, or report an event stored that JetStream did not acknowledge.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    stream::{self, DirectGetErrorKind, DiscardPolicy, StorageType},
};
use bytes::Bytes;

/// The stream holding every room's events.
pub const CHAT_STREAM: &str = "TUTTI_CHAT";

/// The subject of event `seq` of room `room`.
pub fn chat_subject(room: i64, seq: u64) -> String {
    format!("tutti.chat.{room}.{seq}")
}

/// The subjects of every event of room `room` (for a live follower or a scan).
pub fn room_subjects(room: i64) -> String {
    format!("tutti.chat.{room}.*")
}

/// The event sequence a chat subject names, if it is one of `room`'s.
fn seq_of(subject: &str, room: i64) -> Option<u64> {
    let rest = subject.strip_prefix("tutti.chat.")?;
    let (r, s) = rest.split_once('.')?;
    (r.parse::<i64>().ok()? == room).then_some(())?;
    s.parse().ok()
}

/// Why a chat stream operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatStreamError {
    /// The stream could not be made or opened.
    #[error("chat stream {CHAT_STREAM}: {0}")]
    Stream(String),
    /// JetStream did not acknowledge the event (it may or may not be stored; append it
    /// again: a stored one is answered as [`Appended::AlreadyThere`]).
    #[error("chat event {room}/{seq}: {reason}")]
    Publish {
        /// The room.
        room: i64,
        /// Its sequence.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The stream already holds this event with other bytes: two writers disagree about a
    /// room's history. Nothing was changed.
    #[error("chat event {room}/{seq} is already in the stream with other bytes")]
    Conflict {
        /// The room.
        room: i64,
        /// Its sequence.
        seq: u64,
    },
    /// Reading the room's events failed.
    #[error("reading room {room}'s chat events: {reason}")]
    Read {
        /// The room.
        room: i64,
        /// Why.
        reason: String,
    },
}

/// What [`ChatStreams::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, at this stream sequence.
    New(u64),
    /// It was already there with the same bytes: nothing changed.
    AlreadyThere,
}

/// Every room's events in [`CHAT_STREAM`]. Cheap to clone.
#[derive(Clone)]
pub struct ChatStreams {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
}

impl ChatStreams {
    /// Opens the stream, making it if it is not there; its events expire `max_age` after
    /// they were stored (the rooms' retention; zero keeps them).
    pub async fn open(
        client: async_nats::Client,
        max_age: Duration,
    ) -> Result<ChatStreams, ChatStreamError> {
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: CHAT_STREAM.to_owned(),
                subjects: vec!["tutti.chat.>".to_owned()],
                max_messages_per_subject: 1,
                discard: DiscardPolicy::New,
                discard_new_per_subject: true,
                allow_direct: true,
                storage: StorageType::File,
                max_age,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| ChatStreamError::Stream(e.to_string()))?;
        Ok(ChatStreams { js, stream })
    }

    /// Stores event `seq` of `room` (its frame's bytes) once: a retry of a stored event is
    /// [`Appended::AlreadyThere`], the same sequence with other bytes
    /// [`ChatStreamError::Conflict`].
    pub async fn append(
        &self,
        room: i64,
        seq: u64,
        frame: Bytes,
    ) -> Result<Appended, ChatStreamError> {
        let failed = |reason: String| ChatStreamError::Publish { room, seq, reason };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("{room}-{seq}").as_str());
        let ack = self
            .js
            .publish_with_headers(chat_subject(room, seq), headers, frame.clone())
            .await
            .map_err(|e| failed(e.to_string()))?
            .await;
        let refused = match ack {
            Ok(a) if a.duplicate => return self.same_as_stored(room, seq, &frame).await,
            Ok(a) => return Ok(Appended::New(a.sequence)),
            Err(e) => e.to_string(),
        };
        // Refused: past the duplicate window, a stored event's subject takes no second
        // message. Anything else is a failure to retry.
        match self.stored(room, seq).await {
            Ok(Some(bytes)) if bytes == frame => Ok(Appended::AlreadyThere),
            Ok(Some(_)) => Err(ChatStreamError::Conflict { room, seq }),
            Ok(None) | Err(_) => Err(failed(refused)),
        }
    }

    async fn same_as_stored(
        &self,
        room: i64,
        seq: u64,
        frame: &Bytes,
    ) -> Result<Appended, ChatStreamError> {
        match self.stored(room, seq).await? {
            Some(bytes) if bytes == *frame => Ok(Appended::AlreadyThere),
            Some(_) => Err(ChatStreamError::Conflict { room, seq }),
            None => Err(ChatStreamError::Publish {
                room,
                seq,
                reason: "answered as a duplicate but not in the stream".to_owned(),
            }),
        }
    }

    /// The stored bytes of event `seq` of `room`, if it is there.
    pub async fn stored(&self, room: i64, seq: u64) -> Result<Option<Bytes>, ChatStreamError> {
        Ok(self.exact(room, seq).await?.map(|(_, b)| b))
    }

    /// Event `seq` of `room` with its stream sequence, if it is there.
    async fn exact(&self, room: i64, seq: u64) -> Result<Option<(u64, Bytes)>, ChatStreamError> {
        match self
            .stream
            .direct_get_first_for_subject(chat_subject(room, seq))
            .await
        {
            Ok(m) => Ok(Some((m.sequence, m.payload))),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(ChatStreamError::Read {
                room,
                reason: e.to_string(),
            }),
        }
    }

    /// Up to `limit` events of `room` after `seq`, in the room's order and without a gap:
    /// `(seq, frame)` for `seq + 1`, `seq + 2`, … up to the first one the stream does not
    /// hold (the end, or a gap a publisher has not filled yet).
    pub async fn after(
        &self,
        room: i64,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Bytes)>, ChatStreamError> {
        let read = |e: stream::DirectGetError| ChatStreamError::Read {
            room,
            reason: e.to_string(),
        };
        let mut out = Vec::new();
        let mut want = seq + 1;
        // Where the room's next event is likely to be in the stream: right after the last
        // one handed out. `None`: look the wanted one up by its subject.
        let mut from: Option<u64> = None;
        while out.len() < limit {
            let Some(start) = from else {
                match self.exact(room, want).await? {
                    Some((at, bytes)) => {
                        out.push((want, bytes));
                        want += 1;
                        from = Some(at + 1);
                        continue;
                    }
                    None => break,
                }
            };
            match self
                .stream
                .direct_get_next_for_subject(room_subjects(room), Some(start))
                .await
            {
                Ok(m) if seq_of(&m.subject, room) == Some(want) => {
                    out.push((want, m.payload));
                    want += 1;
                    from = Some(m.sequence + 1);
                }
                // Out of the room's order here, or nothing further in stream order (the
                // wanted one may sit earlier): ask for it by its subject.
                Ok(_) => from = None,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => from = None,
                Err(e) => return Err(read(e)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_a_rooms_event_and_parse_back() {
        assert_eq!(chat_subject(7, 42), "tutti.chat.7.42");
        assert_eq!(room_subjects(7), "tutti.chat.7.*");
        assert_eq!(seq_of("tutti.chat.7.42", 7), Some(42));
        assert_eq!(seq_of("tutti.chat.8.42", 7), None);
        assert_eq!(seq_of("tutti.chat.7.x", 7), None);
        assert_eq!(seq_of("tutti.show.7.42", 7), None);
    }
}
