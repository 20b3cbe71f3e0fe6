//! Tutti on several nodes (issue 14): a show's two roles over the bus, as a library the
//! server composes (`tutti serve --role edge|conductor` is not wired yet).
//!
//! An **[`Edge`]** holds phones (its `ShowRuntime` takes their joins and inputs with the
//! same validation, rate limits and latest-wins slots as a single node) and, every tick,
//! publishes its crowd's mergeable partial aggregates ([`tutti_cluster::PartialsMsg`]) on
//! the show's partials subject. It computes no state: it takes the conductor's
//! [`tutti_cluster::StateMsg`]s, checks each ([`tutti_cluster::StateInbox`]: show, term,
//! sequence, tick; the frame's status must be the message's), follows the show's status
//! they carry (`ShowRuntime::follow_status`: a paused or ended show refuses its phones'
//! inputs and they see it, as on one node) and hands the accepted bytes, unchanged, to its
//! sinks (the fan-out to its phones). Its engine never ticks, so [`Edge::run`] does the
//! runtime's once-a-second upkeep instead (`ShowRuntime::upkeep`: slots of phones gone past
//! the resume grace swept, the audience state rate adapted); storing its crowd with
//! snapshots, which a single node's tick also does, an edge does not do yet.
//! When it is not connected to NATS it publishes nothing and queues nothing: each tick's
//! partials replace the last, so a partitioned edge never sends stale ones later.
//!
//! A **[`Conductor`]** contends for the show's lease ([`tutti_bus::Leases`]); while it holds
//! it, and only until [`tutti_bus::Held::valid_until`], it merges the fresh partials of its
//! edges ([`tutti_cluster::PartialsInbox`]), finishes the tick through its `ShowRuntime`
//! (`tick_with`: overrides, smoothing, rendering, snapshots and sinks as on one node) and
//! publishes each live tick's audience state once, with its term (the lease's), a publish
//! sequence, the tick and the show's status. While the show is paused or ended the tick
//! stays; the conductor publishes it again at once on the change and then once a second
//! (show clock), so its edges follow the status and know it is alive. A standby
//! keeps trying to take the lease; when it does, it first resumes the show from the last
//! stored snapshot and override log (`ShowRuntime::restore`), then conducts. The store must
//! be shared by the nodes: in this crate's tests every in-process node gets the same
//! `tutti_store::Store`; across processes that is the PostgreSQL store, not built here.
//!
//! The nodes of one show share a time base (`tutti_show::ShowClock`): partials are weighted
//! at the edge's show time and merged at the conductor's, and a partial is fresh by its own
//! time, not by when it arrived.
//!
//! **Performer commands** reach the conductor through the bus: an edge forwards a
//! performer's override ([`forward`], a NATS request on the show's command subject); only
//! the leader subscribes, and it answers after `ShowRuntime::set_override` committed the
//! command to the store and applied it, with the same ack or error code as one node gives.
//! No answer in time is an [`UNAVAILABLE`] error; forged or malformed commands are refused,
//! counted and logged, never applied (see `command.rs`). Release, reset, session and
//! bypass commands do not travel yet, and no edge's connection forwards yet.
//!
//! Every refused message is counted by kind in [`NodeMetrics`] (for `/metrics`), with what
//! was sent, published, received, taken over, and whether this node leads.
//!
//! A **[`Heartbeat`]** writes the node into the registry (`tutti_bus::Nodes`) every third
//! of its TTL: its id, role, the shows it serves with whether it leads each, its term and
//! a few counters, its bus connection, the time. A node that dies stops writing and its
//! record expires; a clean stop removes it. `tutti cluster status` reads it.
//!
//! Must never: apply a message it refused; publish a state or answer a command without
//! holding an unexpired lease, or after a renewal was refused; acknowledge a command before
//! it is committed; queue partials for later; let its runtime's own
//! engine produce states on an edge; hold a lock across `.await`.

mod command;
mod conductor;
mod edge;
mod metrics;
mod registry;

pub use command::{forward, override_msg, CommandAck, CommandError, UNAVAILABLE};
pub use conductor::{Admission, Conductor, ConductorConfig};
pub use edge::Edge;
pub use metrics::NodeMetrics;
pub use registry::Heartbeat;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A subscription or flush on the bus failed.
    #[error("bus: {0}")]
    Bus(String),
}
