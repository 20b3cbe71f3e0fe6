//! The bus's messages, encoded with postcard (compact, schema-less: the [`SCHEMA`] number
//! in every message says which layout it has).

use serde::{Deserialize, Serialize};
use tutti_consensus::SparsePartials;

/// The layout of every message below; a receiver refuses any other.
///
/// 1: the first layout. 2: a [`StateMsg`] carries the show's [`Status`] and a `seq` (the
/// conductor's publish number in its term), so a paused or ended show reaches the edges
/// and a paused conductor can go on publishing the same tick.
pub const SCHEMA: u16 = 2;

/// The largest message a receiver decodes, bytes (a show's partials are a few KiB; states
/// a few KiB more).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    /// Longer than [`MAX_MESSAGE`].
    #[error("{len} bytes is over the {MAX_MESSAGE}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not a message of this schema's layout.
    #[error("not a message: {0}")]
    Decode(String),
}

/// A node's name on the bus: 1–64 of `a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeId(String);

impl EdgeId {
    /// `name` when it is 1–64 of `a-z 0-9 - _ .`.
    pub fn new(name: &str) -> Option<EdgeId> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        ok.then(|| EdgeId(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EdgeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An edge's crowd for one tick of one show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialsMsg {
    /// [`SCHEMA`].
    pub schema: u16,
    /// The show's code.
    pub show: String,
    /// The edge that sent it.
    pub edge: EdgeId,
    /// The edge's sequence for this show, from 1, one more each message.
    pub seq: u64,
    /// Its crowd's partial aggregates, the bins that hold weight only (their time is the
    /// show's engine time as the edge reads it).
    pub partials: SparsePartials,
}

/// A show's status, as the conductor's states carry it to the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Created, not started.
    Scheduled,
    /// Running: inputs are taken and ticks rise.
    Live,
    /// Stopped for now: inputs are refused, the tick stays.
    Paused,
    /// Over; final.
    Ended,
}

impl Status {
    /// The name a `state` frame's `status` field uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Live => "live",
            Status::Paused => "paused",
            Status::Ended => "ended",
        }
    }
}

/// A show's state for one tick, as the conductor serialized it for the phones. While the
/// show is live the conductor publishes each tick once; while it is not, the tick stays and
/// it publishes the same tick again (at once on a status change, then about once a second),
/// so the edges follow the status and know their conductor is alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMsg {
    /// [`SCHEMA`].
    pub schema: u16,
    /// The show's code.
    pub show: String,
    /// The conductor that finished the tick.
    pub conductor: EdgeId,
    /// The conductor's leadership term (one more at each takeover).
    pub term: u64,
    /// The conductor's publish number in this term, from 1, one more each message.
    pub seq: u64,
    /// The tick (never lower than the last one published in the term).
    pub tick: u64,
    /// The show's status; the `state` frame's `status` says the same.
    pub status: Status,
    /// The audience's `state` frame, the bytes every phone gets.
    pub audience: Vec<u8>,
}

fn encode<T: Serialize>(m: &T) -> Vec<u8> {
    // Plain data into a Vec: postcard cannot fail on it.
    postcard::to_stdvec(m).unwrap_or_default()
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge { len: bytes.len() });
    }
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((m, [])) => Ok(m),
        Ok((_, rest)) => Err(WireError::Decode(format!(
            "{} bytes after the message",
            rest.len()
        ))),
        Err(e) => Err(WireError::Decode(e.to_string())),
    }
}

impl PartialsMsg {
    /// The bytes to publish.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// A message from bytes (its fields are not checked here: see `PartialsInbox`).
    pub fn decode(bytes: &[u8]) -> Result<PartialsMsg, WireError> {
        decode(bytes)
    }
}

impl StateMsg {
    /// The bytes to publish.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// A message from bytes (its fields are not checked here: see `StateInbox`).
    pub fn decode(bytes: &[u8]) -> Result<StateMsg, WireError> {
        decode(bytes)
    }
}
