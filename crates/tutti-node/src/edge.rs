//! A show's edge: its crowd's partials out every tick, the conductor's states in.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use futures_util::StreamExt;
use tokio::sync::watch;
use tutti_cluster::{EdgeId, PartialsMsg, Reject, StateInbox, StateMsg, Status, SCHEMA};
use tutti_consensus::Partials;
use tutti_show::{ShowRuntime, TickScratch, TickSink};

use crate::{NodeError, NodeMetrics};

/// One show on one edge. Drive it by hand ([`Edge::send_partials`], [`Edge::next_state`])
/// or let [`Edge::run`] do both at the piece's tick rate.
pub struct Edge {
    id: EdgeId,
    show: Arc<ShowRuntime>,
    bus: async_nats::Client,
    states: async_nats::Subscriber,
    subject: String,
    seq: u64,
    partials: Partials,
    inbox: StateInbox,
    sinks: Vec<Arc<dyn TickSink>>,
    scratch: TickScratch,
    metrics: Arc<NodeMetrics>,
}

impl Edge {
    /// Edge `id` of `show`, on `bus`, handing the conductor's states to `sinks` (the
    /// fan-out to this edge's phones). Subscribes to the show's states before it returns.
    pub async fn new(
        id: EdgeId,
        show: Arc<ShowRuntime>,
        bus: async_nats::Client,
        sinks: Vec<Arc<dyn TickSink>>,
    ) -> Result<Edge, NodeError> {
        let states = bus
            .subscribe(tutti_bus::state_subject(&show.code))
            .await
            .map_err(|e| NodeError::Bus(e.to_string()))?;
        bus.flush()
            .await
            .map_err(|e| NodeError::Bus(e.to_string()))?;
        let metrics = Arc::new(NodeMetrics::default());
        metrics
            .connected
            .store(bus.connection_state() == State::Connected, Relaxed);
        Ok(Edge {
            id,
            partials: Partials::empty(&show.spec.engine_config(), 0.0),
            inbox: StateInbox::new(&show.code),
            subject: tutti_bus::partials_subject(&show.code),
            show,
            bus,
            states,
            seq: 0,
            sinks,
            scratch: TickScratch::default(),
            metrics,
        })
    }

    /// This edge's counters.
    pub fn metrics(&self) -> Arc<NodeMetrics> {
        self.metrics.clone()
    }

    /// One tick: publishes the crowd's partials at the show clock's now, if the bus is
    /// connected; otherwise they are dropped (counted), never queued. Whether they went out.
    pub async fn send_partials(&mut self) -> bool {
        let connected = self.bus.connection_state() == State::Connected;
        self.metrics.connected.store(connected, Relaxed);
        if !connected {
            self.metrics.partials_dropped.fetch_add(1, Relaxed);
            return false;
        }
        self.show.partials_into(&mut self.partials);
        self.seq += 1;
        let msg = PartialsMsg {
            schema: SCHEMA,
            show: self.show.code.clone(),
            edge: self.id.clone(),
            seq: self.seq,
            partials: self.partials.to_sparse(),
        };
        match self
            .bus
            .publish(self.subject.clone(), msg.encode().into())
            .await
        {
            Ok(()) => {
                self.metrics.partials_sent.fetch_add(1, Relaxed);
                true
            }
            Err(e) => {
                tracing::debug!(show = %self.show.code, error = %e, "partials dropped");
                self.metrics.partials_dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Takes a state message from the bus: checked (its bytes must be a state frame of
    /// this piece whose status is the message's, then show, term, sequence and tick by the
    /// inbox); its status is followed (a paused or ended show refuses inputs and its
    /// phones see it, as on one node) and its bytes handed to the sinks. A refusal is
    /// counted and nothing of it is applied. The accepted tick.
    pub fn take_state(&mut self, bytes: &[u8]) -> Result<u64, Reject> {
        // The audience bytes are checked before the inbox takes the term and tick, so a
        // message that could not be shown cannot move the edge to its term.
        if let Ok(m) = StateMsg::decode(bytes) {
            if !readable(&m) {
                self.metrics.reject("unreadable_state");
                return Err(Reject::Invalid {
                    edge: m.conductor,
                    reason: "the audience bytes are not a state frame of this status".into(),
                });
            }
        }
        let m = match self.inbox.accept(bytes) {
            Ok(m) => m,
            Err(r) => {
                self.metrics.reject(r.kind());
                return Err(r);
            }
        };
        self.metrics.term.store(m.term, Relaxed);
        self.show.follow_status(show_status(m.status));
        let text = std::str::from_utf8(&m.audience).unwrap_or_default();
        if self
            .show
            .follow_state(&mut self.scratch, &self.sinks, m.tick, text)
        {
            self.metrics.states_received.fetch_add(1, Relaxed);
        } else {
            self.metrics.reject("unreadable_state");
        }
        Ok(m.tick)
    }

    /// Waits up to `wait` for the next state message and takes it (`None`: none came).
    pub async fn next_state(&mut self, wait: Duration) -> Option<Result<u64, Reject>> {
        let m = tokio::time::timeout(wait, self.states.next())
            .await
            .ok()??;
        Some(self.take_state(&m.payload))
    }

    /// Publishes partials at the piece's tick rate and takes states as they come, until
    /// `shutdown` turns true (or its sender goes). Each tick also does the runtime's
    /// upkeep (`ShowRuntime::upkeep`: slots of phones gone past the resume grace swept,
    /// the state rate adapted), which a single node's tick does and an edge's never runs.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.show.spec.tick_hz.max(1)));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break },
                _ = ticker.tick() => {
                    self.show.upkeep();
                    self.send_partials().await;
                }
                m = self.states.next() => match m {
                    Some(m) => { let _ = self.take_state(&m.payload); }
                    None => break,
                },
            }
        }
    }
}

/// Whether a state's audience bytes are a `state` frame for its tick and status.
fn readable(m: &StateMsg) -> bool {
    std::str::from_utf8(&m.audience)
        .ok()
        .and_then(|t| serde_json::from_str::<tutti_protocol::StateFrame>(t).ok())
        .is_some_and(|f| f.kind == "state" && f.tick == m.tick && f.status == m.status.as_str())
}

/// The runtime's status for a wire status.
pub(crate) fn show_status(s: Status) -> tutti_store::ShowStatus {
    match s {
        Status::Scheduled => tutti_store::ShowStatus::Scheduled,
        Status::Live => tutti_store::ShowStatus::Live,
        Status::Paused => tutti_store::ShowStatus::Paused,
        Status::Ended => tutti_store::ShowStatus::Ended,
    }
}
