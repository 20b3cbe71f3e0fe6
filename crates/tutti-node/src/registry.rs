//! A node's heartbeat into the registry (`tutti_bus::Nodes`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use tokio::sync::watch;
use tutti_bus::{NodeRecord, Nodes, RegistryError, Role, ServedShow};
use tutti_cluster::EdgeId;
use tutti_show::unix_ms;

use crate::NodeMetrics;

/// One node's registration: its id and role, and each show it serves with that show's
/// counters. [`Heartbeat::beat`] writes it once; [`Heartbeat::run`] every third of the
/// registry's TTL, so the record lives while the node does.
pub struct Heartbeat {
    nodes: Nodes,
    bus: async_nats::Client,
    id: EdgeId,
    role: Role,
    shows: Vec<(String, Arc<NodeMetrics>)>,
}

impl Heartbeat {
    /// Node `id`'s heartbeat as a `role`, into `nodes`, describing its connection `bus`.
    pub fn new(nodes: Nodes, bus: async_nats::Client, id: EdgeId, role: Role) -> Heartbeat {
        Heartbeat {
            nodes,
            bus,
            id,
            role,
            shows: vec![],
        }
    }

    /// Adds show `code`, served with the counters `metrics` (an [`crate::Edge`]'s or a
    /// [`crate::Conductor`]'s).
    pub fn serve(&mut self, code: &str, metrics: Arc<NodeMetrics>) {
        self.shows.push((code.to_owned(), metrics));
    }

    /// The record as of now.
    pub fn record(&self) -> NodeRecord {
        let info = self.bus.server_info();
        NodeRecord {
            id: self.id.as_str().to_owned(),
            role: self.role,
            shows: self
                .shows
                .iter()
                .map(|(code, m)| ServedShow {
                    code: code.clone(),
                    leading: m.leading.load(Relaxed),
                    term: m.term.load(Relaxed),
                    counters: m.counters(),
                })
                .collect(),
            bus: format!("{}:{}", info.host, info.port),
            connected: self.bus.connection_state() == State::Connected,
            at_ms: unix_ms(),
        }
    }

    /// Writes the record now. Its revision.
    pub async fn beat(&self) -> Result<u64, RegistryError> {
        self.nodes.put(&self.record()).await
    }

    /// Writes the record every third of the registry's TTL until `shutdown` turns true
    /// (then removes it, a clean stop) or its sender goes. Dropping the future (an aborted
    /// task, a dead process) stops the writes: the record expires a TTL after the last.
    /// A write that fails is logged and tried again at the next beat.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let period = (self.nodes.ttl() / 3).max(Duration::from_millis(100));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break },
                _ = ticker.tick() => {
                    match tokio::time::timeout(period, self.beat()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::debug!(node = %self.id, error = %e, "heartbeat not written"),
                        Err(_) => tracing::debug!(node = %self.id, "heartbeat unanswered"),
                    }
                }
            }
        }
        if let Err(e) = self.nodes.remove(self.id.as_str()).await {
            tracing::debug!(node = %self.id, error = %e, "registry entry left to expire");
        }
    }
}
