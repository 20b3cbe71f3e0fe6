//! Tutti on several nodes (issue 14): what the nodes say to each other over the bus, and
//! what a receiver checks before it uses any of it.
//!
//! An **edge** holds phones' WebSockets and its share of the crowd; every tick it publishes
//! its crowd's mergeable partial aggregates ([`PartialsMsg`], in the sparse form
//! `tutti_consensus::SparsePartials`: a few phones fill a few of a parameter's bins).
//! A show's **conductor** merges the fresh partials of every admitted edge
//! ([`PartialsInbox`]), finishes the tick (`Engine::tick_from`: overrides, smoothing) and
//! publishes the serialized state once ([`StateMsg`]); every edge writes the same bytes to its
//! phones after checking them ([`StateInbox`]).
//!
//! A performer's command reaches the conductor from the edge that holds their connection
//! as a request ([`CommandMsg`]: the edge, a request id, the performer as the edge admitted
//! them, the override in plain data) and is answered ([`CommandReply`]: the conductor, its
//! term, and what a single node's ack or error would say) once it is committed.
//!
//! Every message carries the wire [`SCHEMA`] and the show's code; partials carry their edge
//! and a per-edge sequence, states the conductor's leadership term, its publish sequence in
//! that term, the tick and the show's [`Status`] (live, paused, ended: a paused show's
//! conductor goes on publishing its tick about once a second). A malformed
//! or forged message (bytes that do not decode, another schema, another show, an edge that
//! was not admitted, a sequence or tick already seen, a term older than the current one,
//! partials that do not fit the show's engine) is refused with its [`Reject`] reason and
//! counted ([`Rejects`]); nothing of it is applied.
//!
//! Must never: do I/O or read a clock (times are arguments), apply a message it refused, or
//! keep more than one partial per admitted edge.

mod inbox;
mod wire;

pub use inbox::{MergeReport, PartialsInbox, Reject, Rejects, StateInbox};
pub use wire::{
    Command, CommandActor, CommandMode, CommandMsg, CommandOutcome, CommandReply, EdgeId,
    PartialsMsg, StateMsg, Status, WireError, MAX_MESSAGE, SCHEMA,
};
