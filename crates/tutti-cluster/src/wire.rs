//! The bus's messages, encoded with postcard (compact, schema-less: the [`SCHEMA`] number
//! in every message says which layout it has).

use serde::{Deserialize, Serialize};
use tutti_consensus::SparsePartials;

/// The layout of every message below; a receiver refuses any other.
///
/// 1: the first layout. 2: a [`StateMsg`] carries the show's [`Status`] and a `seq` (the
/// conductor's publish number in its term), so a paused or ended show reaches the edges
/// and a paused conductor can go on publishing the same tick. Still 2 with the performer
/// commands ([`CommandMsg`], [`CommandReply`]): they are new messages on their own subject,
/// and the existing layouts did not change.
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

/// The performer who asked, as the edge that holds their connection admitted them (their
/// token checked there): the conductor logs and ranks the command by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandActor {
    /// Performer id for the engine's override priority (0 = OSC input).
    pub by: u32,
    /// Role rank: higher wins over lower.
    pub priority: u8,
    /// Name for the log and the dashboard.
    pub name: String,
}

/// An override's mode, as the protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandMode {
    /// Limit the value to `a..=b`.
    Clamp,
    /// Add `a`.
    Bias,
    /// Mix towards `a` by `b`.
    Blend,
    /// Hold at `a`.
    Lock,
    /// Hold the current value.
    Freeze,
}

/// What a performer asks the conductor to do, in plain data, before any validation (the
/// conductor validates it exactly as a single node does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Set an override on a parameter.
    Override {
        /// The parameter's name.
        param: String,
        /// The mode.
        mode: CommandMode,
        /// Lock value, bias amount, blend target or clamp low.
        a: Option<f64>,
        /// Blend factor or clamp high.
        b: Option<f64>,
        /// Seconds until it expires.
        expires_in: Option<f64>,
    },
}

/// A performer's command, forwarded by the edge that holds their connection to the show's
/// conductor as a NATS request; the conductor answers with a [`CommandReply`] only after
/// the command is committed to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandMsg {
    /// [`SCHEMA`].
    pub schema: u16,
    /// The show's code.
    pub show: String,
    /// The edge that forwards it.
    pub edge: EdgeId,
    /// The edge's id for this request; the reply carries it back.
    pub request: u64,
    /// Who asked.
    pub actor: CommandActor,
    /// What they asked.
    pub command: Command,
}

/// How a command ended on the conductor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// Committed to the store, then applied: what a single node's `ack` says (the tick
    /// that will reflect it).
    Applied {
        /// The tick.
        tick: u64,
    },
    /// Refused; nothing changed.
    Refused {
        /// The protocol's stable error code (`unknown_param`, `invalid_override`, …).
        code: String,
        /// The human message.
        message: String,
    },
}

/// The conductor's answer to one [`CommandMsg`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandReply {
    /// [`SCHEMA`].
    pub schema: u16,
    /// The show's code.
    pub show: String,
    /// The request it answers.
    pub request: u64,
    /// The conductor that answered.
    pub conductor: EdgeId,
    /// Its leadership term.
    pub term: u64,
    /// What happened.
    pub outcome: CommandOutcome,
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

impl CommandMsg {
    /// The bytes to send.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// A message from bytes (its schema and show are not checked here: the conductor does).
    pub fn decode(bytes: &[u8]) -> Result<CommandMsg, WireError> {
        decode(bytes)
    }
}

impl CommandReply {
    /// The bytes to send.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// A reply from bytes (its fields are not checked here: the forwarding edge does).
    pub fn decode(bytes: &[u8]) -> Result<CommandReply, WireError> {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> CommandMsg {
        CommandMsg {
            schema: SCHEMA,
            show: "SHOW".into(),
            edge: EdgeId::new("edge-1").unwrap(),
            request: 7,
            actor: CommandActor {
                by: 1,
                priority: 10,
                name: "performer".into(),
            },
            command: Command::Override {
                param: "tempo".into(),
                mode: CommandMode::Lock,
                a: Some(0.5),
                b: None,
                expires_in: Some(3.0),
            },
        }
    }

    #[test]
    fn commands_and_replies_round_trip() {
        let m = msg();
        assert_eq!(CommandMsg::decode(&m.encode()), Ok(m));
        for outcome in [
            CommandOutcome::Applied { tick: 12 },
            CommandOutcome::Refused {
                code: "unknown_param".into(),
                message: "no such parameter".into(),
            },
        ] {
            let r = CommandReply {
                schema: SCHEMA,
                show: "SHOW".into(),
                request: 7,
                conductor: EdgeId::new("conductor-1").unwrap(),
                term: 3,
                outcome,
            };
            assert_eq!(CommandReply::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn garbage_truncated_and_oversized_commands_are_wire_errors() {
        let bytes = msg().encode();
        assert!(matches!(
            CommandMsg::decode(&bytes[..bytes.len() - 1]),
            Err(WireError::Decode(_))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            CommandMsg::decode(&longer),
            Err(WireError::Decode(_))
        ));
        assert!(matches!(
            CommandMsg::decode(b"\xff\xff\xff\xff\xff\xff"),
            Err(WireError::Decode(_))
        ));
        let big = vec![0u8; MAX_MESSAGE + 1];
        assert_eq!(
            CommandMsg::decode(&big),
            Err(WireError::TooLarge {
                len: MAX_MESSAGE + 1
            })
        );
    }
}
