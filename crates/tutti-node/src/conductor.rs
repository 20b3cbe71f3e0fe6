//! A show's conductor: the lease, the merge, the tick, the one publish, and (while it
//! leads) the answers to performer commands (`command.rs`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;
use tutti_bus::{Held, LeaseError, Leases};
use tutti_cluster::{EdgeId, PartialsInbox, PartialsMsg, Reject, StateMsg, Status, SCHEMA};
use tutti_consensus::Partials;
use tutti_show::{ShowRuntime, Tick, TickScratch, TickSink};

use crate::command::{start_responder, LeaseView, Responder};
use crate::{NodeError, NodeMetrics};

/// Which edges' partials a conductor merges.
#[derive(Debug, Clone)]
pub enum Admission {
    /// Only these (the cluster's configuration names them): anything else on the subject
    /// is refused as `unknown_edge`. The safe choice when the edges are known.
    Listed(Vec<EdgeId>),
    /// Any edge, admitted when its first well-formed partials for this show arrive: for a
    /// fleet that grows and shrinks, where NATS's own permissions keep strangers off the
    /// subject. An edge that stops sending drops out of the merge by age.
    FirstSight,
}

/// How a conductor behaves.
#[derive(Debug, Clone)]
pub struct ConductorConfig {
    /// This node's name: the lease's holder and the states' conductor.
    pub id: EdgeId,
    /// Which edges are merged.
    pub admission: Admission,
    /// How often a standby tries to take the lease.
    pub retry: Duration,
    /// How old (show seconds, by the partials' own time) an edge's latest partials may be
    /// and still be merged.
    pub max_age: f64,
}

/// The last audience text a tick rendered (its number, whether it was live, the text),
/// kept for publishing.
#[derive(Default)]
struct Capture(Mutex<Option<(u64, bool, Vec<u8>)>>);

impl TickSink for Capture {
    fn on_tick(&self, tick: &Tick<'_>) {
        if let Some(a) = tick.audience {
            let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
            *c = Some((tick.number, tick.live, a.json.as_bytes().to_vec()));
        }
    }
}

/// The status a rendered `state` frame says (`None`: not a state frame).
fn frame_status(audience: &[u8]) -> Option<Status> {
    let text = std::str::from_utf8(audience).ok()?;
    let frame = serde_json::from_str::<tutti_protocol::StateFrame>(text).ok()?;
    [
        Status::Scheduled,
        Status::Live,
        Status::Paused,
        Status::Ended,
    ]
    .into_iter()
    .find(|s| s.as_str() == frame.status)
}

/// A contender for one show's conduction. Drive it by hand ([`Conductor::lead`],
/// [`Conductor::next_partials`], [`Conductor::tick`]) or let [`Conductor::run`] do it at
/// the piece's tick rate.
pub struct Conductor {
    cfg: ConductorConfig,
    show: Arc<ShowRuntime>,
    bus: async_nats::Client,
    leases: Leases,
    partials_in: async_nats::Subscriber,
    inbox: PartialsInbox,
    held: Option<Held>,
    last_try: Option<Instant>,
    /// The last live tick published in the current term.
    published: u64,
    /// The states published in the current term (the last one's `seq`).
    seq: u64,
    merged: Partials,
    scratch: TickScratch,
    capture: Arc<Capture>,
    sinks: Vec<Arc<dyn TickSink>>,
    metrics: Arc<NodeMetrics>,
    /// The lease as the command responder sees it (`None`: not leading).
    lease_view: watch::Sender<LeaseView>,
    /// The command responder while it leads (dropping it stops it).
    commands: Option<Responder>,
}

impl Conductor {
    /// A contender for `show` on `bus`, leasing through `leases` (the show's code is the
    /// key), whose ticks also go to `sinks` (OSC, sound, performers' feeds) while it leads.
    /// Subscribes to the show's partials before it returns; takes no lease yet.
    pub async fn new(
        cfg: ConductorConfig,
        show: Arc<ShowRuntime>,
        bus: async_nats::Client,
        leases: Leases,
        sinks: Vec<Arc<dyn TickSink>>,
    ) -> Result<Conductor, NodeError> {
        let partials_in = bus
            .subscribe(tutti_bus::partials_subject(&show.code))
            .await
            .map_err(|e| NodeError::Bus(e.to_string()))?;
        bus.flush()
            .await
            .map_err(|e| NodeError::Bus(e.to_string()))?;
        let engine = show.spec.engine_config();
        let mut inbox = PartialsInbox::new(&show.code, engine.clone());
        if let Admission::Listed(edges) = &cfg.admission {
            for e in edges {
                inbox.admit(e.clone());
            }
        }
        let capture = Arc::new(Capture::default());
        let mut all: Vec<Arc<dyn TickSink>> = vec![capture.clone()];
        all.extend(sinks);
        Ok(Conductor {
            cfg,
            merged: Partials::empty(&engine, 0.0),
            inbox,
            show,
            bus,
            leases,
            partials_in,
            held: None,
            last_try: None,
            published: 0,
            seq: 0,
            scratch: TickScratch::default(),
            capture,
            sinks: all,
            metrics: Arc::new(NodeMetrics::default()),
            lease_view: watch::channel(None).0,
            commands: None,
        })
    }

    /// This contender's counters.
    pub fn metrics(&self) -> Arc<NodeMetrics> {
        self.metrics.clone()
    }

    /// The runtime it conducts.
    pub fn show(&self) -> &Arc<ShowRuntime> {
        &self.show
    }

    /// Whether it holds the lease and the lease has not run out since its last renewal.
    pub fn leads(&self) -> bool {
        self.held
            .as_ref()
            .is_some_and(|h| Instant::now() < h.valid_until(self.leases.ttl()))
    }

    /// Stops answering commands: the responder ends (after the command in hand) and
    /// unsubscribes.
    fn stop_commands(&mut self) {
        self.lease_view.send_replace(None);
        self.commands = None;
    }

    fn step_down(&mut self, why: &str) {
        self.stop_commands();
        if self.held.take().is_some() {
            tracing::warn!(show = %self.show.code, node = %self.cfg.id, why, "no longer conducting");
            self.metrics.stepped_down.fetch_add(1, Relaxed);
        }
        self.metrics.leading.store(false, Relaxed);
    }

    /// The lease's part of a tick: renews it (every third of its TTL) while held, steps
    /// down when a renewal is refused or it ran out; otherwise tries to take it (every
    /// `retry`), and on taking it resumes the show from the store before anything is
    /// published. While it leads, it answers the show's performer commands (the responder
    /// starts here and stops when it steps down). Whether it leads now.
    pub async fn lead(&mut self) -> bool {
        let ttl = self.leases.ttl();
        if let Some(held) = &mut self.held {
            if held.renewed.elapsed() >= ttl / 3 {
                match tokio::time::timeout(ttl / 2, self.leases.renew(held)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(LeaseError::Lost { .. })) => {
                        self.step_down("lease taken by another node")
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(show = %self.show.code, error = %e, "lease not renewed")
                    }
                    Err(_) => tracing::warn!(show = %self.show.code, "lease renewal unanswered"),
                }
            }
            if !self.leads() {
                self.step_down("lease ran out unrenewed");
            }
        } else if self.last_try.is_none_or(|t| t.elapsed() >= self.cfg.retry) {
            self.last_try = Some(Instant::now());
            let code = self.show.code.clone();
            let taken = tokio::time::timeout(
                ttl / 2,
                self.leases.try_acquire(&code, self.cfg.id.as_str()),
            )
            .await;
            match taken {
                Ok(Ok(Some(held))) => {
                    // The last committed state and override log first: nothing is published
                    // from a show that did not resume.
                    if let Err(e) = self.show.restore().await {
                        tracing::error!(show = %code, error = %e, "cannot resume the show; lease given back");
                        let _ = self.leases.release(held).await;
                        return false;
                    }
                    tracing::info!(show = %code, node = %self.cfg.id, term = held.term, "conducting");
                    self.metrics.term.store(held.term, Relaxed);
                    self.metrics.takeovers.fetch_add(1, Relaxed);
                    self.published = 0;
                    self.seq = 0;
                    self.held = Some(held);
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::debug!(show = %code, error = %e, "lease not taken"),
                Err(_) => tracing::debug!(show = %code, "lease request unanswered"),
            }
        }
        let leads = self.leads();
        self.metrics.leading.store(leads, Relaxed);
        match self.held.as_ref().filter(|_| leads) {
            Some(h) => {
                self.lease_view
                    .send_replace(Some((h.term, h.valid_until(self.leases.ttl()))));
                if self.commands.as_ref().is_none_or(|t| t.is_finished()) {
                    match start_responder(
                        self.bus.clone(),
                        self.show.clone(),
                        self.cfg.id.clone(),
                        self.metrics.clone(),
                        self.lease_view.subscribe(),
                    )
                    .await
                    {
                        Ok(task) => self.commands = Some(task),
                        Err(e) => {
                            tracing::warn!(show = %self.show.code, error = %e, "cannot answer commands yet")
                        }
                    }
                }
            }
            None => self.stop_commands(),
        }
        leads
    }

    /// Takes a partials message from the bus (refused and counted, or kept as its edge's
    /// latest). A partial is dated by its own show time (never later than now), so one
    /// that arrives late counts only while it is fresh.
    pub fn take_partials(&mut self, bytes: &[u8]) -> Result<(), Reject> {
        let now = self.show.now();
        let mut at = now;
        if let Ok(m) = PartialsMsg::decode(bytes) {
            let t = m.partials.time();
            at = if t.is_finite() {
                t.min(now)
            } else {
                f64::NEG_INFINITY
            };
            if matches!(self.cfg.admission, Admission::FirstSight)
                && m.schema == SCHEMA
                && m.show == self.show.code
            {
                self.inbox.admit(m.edge);
            }
        }
        match self.inbox.accept(bytes, at) {
            Ok(()) => {
                self.metrics.partials_taken.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(r) => {
                self.metrics.reject(r.kind());
                Err(r)
            }
        }
    }

    /// Waits up to `wait` for the next partials message and takes it (`None`: none came).
    pub async fn next_partials(&mut self, wait: Duration) -> Option<Result<(), Reject>> {
        let m = tokio::time::timeout(wait, self.partials_in.next())
            .await
            .ok()??;
        Some(self.take_partials(&m.payload))
    }

    /// The show's part of a tick, while it leads: merges the fresh partials, ticks the
    /// show from them, and publishes the audience state rendered this tick, with the show's
    /// status. Live: when a state is due, and only for a tick newer than the last it
    /// published. Paused, ended or scheduled: the tick stays, and the runtime renders it
    /// again at once on a status change and then once a second (show clock), each
    /// published (a new `seq`), so the edges follow the status and know their conductor
    /// is alive. The tick published.
    pub async fn tick(&mut self) -> Option<u64> {
        if !self.leads() {
            self.metrics.leading.store(false, Relaxed);
            return None;
        }
        let now = self.show.now();
        let report = self
            .inbox
            .merge_into(now, self.cfg.max_age, now, &mut self.merged);
        self.metrics
            .edges_merged
            .store(report.edges as u64, Relaxed);
        self.show
            .tick_with(&mut self.scratch, &self.sinks, Some(&self.merged));
        let (tick, live, audience) = {
            let mut c = self.capture.0.lock().unwrap_or_else(|p| p.into_inner());
            c.take()?
        };
        if live && tick <= self.published {
            return None;
        }
        // The status the frame was rendered with (the runtime's may have changed since).
        let Some(status) = frame_status(&audience) else {
            tracing::error!(show = %self.show.code, "a rendered state is not a state frame; not published");
            return None;
        };
        // The tick took time: the lease must still be ours when the state goes out.
        let term = match &self.held {
            Some(h) if self.leads() => h.term,
            _ => {
                self.step_down("lease ran out during the tick");
                return None;
            }
        };
        let msg = StateMsg {
            schema: SCHEMA,
            show: self.show.code.clone(),
            conductor: self.cfg.id.clone(),
            term,
            seq: self.seq + 1,
            tick,
            status,
            audience,
        };
        match self
            .bus
            .publish(
                tutti_bus::state_subject(&self.show.code),
                msg.encode().into(),
            )
            .await
        {
            Ok(()) => {
                self.seq += 1;
                if live {
                    self.published = tick;
                }
                self.metrics.states_published.fetch_add(1, Relaxed);
                Some(tick)
            }
            Err(e) => {
                tracing::debug!(show = %self.show.code, error = %e, "state not published");
                None
            }
        }
    }

    /// Gives the lease back (a clean stop), so a standby need not wait for it to expire.
    pub async fn resign(&mut self) {
        self.stop_commands();
        if let Some(h) = self.held.take() {
            let _ = self.leases.release(h).await;
        }
        self.metrics.leading.store(false, Relaxed);
    }

    /// Contends, merges, ticks and publishes at the piece's tick rate until `shutdown`
    /// turns true (then resigns) or its sender goes. Dropping the future (an aborted task)
    /// stops renewing: the lease then runs out and a standby takes over.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.show.spec.tick_hz.max(1)));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break },
                _ = ticker.tick() => {
                    if self.lead().await {
                        self.tick().await;
                    }
                }
                m = self.partials_in.next() => match m {
                    Some(m) => { let _ = self.take_partials(&m.payload); }
                    None => break,
                },
            }
        }
        self.resign().await;
    }
}
