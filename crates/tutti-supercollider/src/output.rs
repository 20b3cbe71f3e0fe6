//! [`ScOutput`]: the show-level SuperCollider driver. It checks a piece's mappings against
//! the SynthDefs, loads them, creates one group per show and one node per voice, turns each
//! tick's parameter values into one timestamped bundle of `/n_set`s, watches the server with
//! `/status` and rebuilds everything when scsynth comes back after a loss.
//!
//! The caller's side is synchronous and never waits: [`ScOutput::update`] drops the values
//! into a latest-wins slot (`tokio::sync::watch`) and returns; a supervisor task does all
//! the network work. A dead or restarted server shows up in [`ScOutput::health`] and never
//! as an error or a stall in `update`.
//!
//! Must never: block or fail the caller of `update`, queue more than the latest values, or
//! need a user action to recover after scsynth comes back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rosc::{OscBundle, OscPacket, OscType};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tutti_spec::PieceSpec;

use crate::client::{
    g_new, message, next_event, s_new, AddAction, Pending, ScClient, Transport, IMMEDIATELY,
};
use crate::clip::{
    clip_synthdef, CLIP_BUFFER_BASE, CLIP_SLOTS, CLIP_SYNTHDEF, MAX_CLIP_FRAMES, SETN_CHUNK,
};
use crate::error::ScError;
use crate::plan::{default_values, Plan, VoiceNode};
use crate::reply::{ScEvent, StatusReply, TreeNode};
use crate::synthdef::SynthDefLibrary;

/// Default scsynth address (scsynth's and sclang's usual port).
pub const DEFAULT_SERVER: &str = "127.0.0.1:57110";

/// How Tutti drives one scsynth server.
#[derive(Debug, Clone)]
pub struct ScConfig {
    /// `host:port` of scsynth (default [`DEFAULT_SERVER`]).
    pub server: String,
    /// UDP (default) or TCP.
    pub transport: Transport,
    /// How far ahead control bundles are time-stamped (default 50 ms; at most 10 s).
    pub latency: Duration,
    /// Longest wait for any reply (default 2 s).
    pub timeout: Duration,
    /// How often the server is asked for `/status` (default 500 ms, at least 10 ms).
    pub status_interval: Duration,
    /// Consecutive unanswered `/status` probes after which the server counts as lost
    /// (default 2).
    pub lost_after: u32,
    /// Id of the show's group; the nodes get the ids just above it (default 1000).
    pub group_id: i32,
    /// Run the `master` SynthDef at the tail of the group for the `master.*` controls
    /// (reverb, limiter; default on).
    pub master: bool,
    /// The SynthDefs available to the piece (default: the shipped ones).
    pub synthdefs: SynthDefLibrary,
    /// On [`ScOutput::stop`], time between releasing the voices (`gate 0`) and freeing the
    /// group (default 0: free at once).
    pub release: Duration,
}

impl Default for ScConfig {
    fn default() -> Self {
        ScConfig {
            server: DEFAULT_SERVER.to_string(),
            transport: Transport::Udp,
            latency: Duration::from_millis(50),
            timeout: crate::client::DEFAULT_TIMEOUT,
            status_interval: Duration::from_millis(500),
            lost_after: 2,
            group_id: 1000,
            master: true,
            synthdefs: SynthDefLibrary::builtin(),
            release: Duration::ZERO,
        }
    }
}

impl ScConfig {
    /// Checks the settings; each error names the field.
    pub fn validate(&self) -> Result<(), ScError> {
        let bad = |what: &str, reason: String| {
            Err(ScError::Input {
                what: format!("supercollider.{what}"),
                reason,
            })
        };
        if self.latency > Duration::from_secs(10) {
            return bad("latency", format!("{:?} is more than 10 s", self.latency));
        }
        if self.timeout < Duration::from_millis(1) || self.timeout > Duration::from_secs(60) {
            return bad(
                "timeout",
                format!("{:?} is not within 1 ms..60 s", self.timeout),
            );
        }
        if self.status_interval < Duration::from_millis(10)
            || self.status_interval > Duration::from_secs(60)
        {
            return bad(
                "status_interval",
                format!("{:?} is not within 10 ms..60 s", self.status_interval),
            );
        }
        if self.lost_after == 0 || self.lost_after > 100 {
            return bad(
                "lost_after",
                format!("{} is not within 1..100", self.lost_after),
            );
        }
        if self.release > Duration::from_secs(60) {
            return bad("release", format!("{:?} is more than 60 s", self.release));
        }
        Ok(())
    }
}

/// Whether the server is playing the show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// scsynth answers and the show's nodes are running.
    Connected,
    /// scsynth stopped answering `/status`; the show goes on and Tutti keeps trying.
    Lost,
    /// [`ScOutput::stop`] was called (or the output was dropped).
    Stopped,
}

/// What the performer dashboard shows about the SuperCollider output.
#[derive(Debug, Clone, PartialEq)]
pub struct ScHealth {
    /// The server address.
    pub server: String,
    /// Current state.
    pub state: LinkState,
    /// When the current state began (for Lost: lost since).
    pub since: SystemTime,
    /// The most recent problem, if any (kept after recovery, for the record).
    pub last_error: Option<String>,
    /// How many times the show was rebuilt on the server after a loss or a reset.
    pub recoveries: u32,
    /// The last `/status` answer.
    pub status: Option<StatusReply>,
    /// `master.*` mappings that the SuperCollider path skips (see the crate docs).
    pub skipped: Vec<String>,
}

/// A clip to play: its slot and its mono samples at the server's rate.
struct ClipPlay {
    slot: u32,
    samples: Arc<[f32]>,
}

/// The SuperCollider output of one show.
pub struct ScOutput {
    plan: Arc<Plan>,
    values: watch::Sender<Arc<[f64]>>,
    clips: mpsc::Sender<ClipPlay>,
    health: Arc<watch::Sender<ScHealth>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ScError>>>,
    stop_wait: Duration,
}

impl std::fmt::Debug for ScOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScOutput")
            .field("group", &self.plan.group)
            .field("voices", &self.plan.voices)
            .finish()
    }
}

impl ScOutput {
    /// Checks the piece's mappings against the SynthDefs, connects to scsynth, loads the
    /// SynthDefs, creates the show's group and one node per voice (with the controls at the
    /// piece's default values), and starts the supervisor. Must run inside a tokio runtime.
    pub async fn start(cfg: ScConfig, spec: &PieceSpec) -> Result<ScOutput, ScError> {
        cfg.validate()?;
        let plan = Arc::new(Plan::new(spec, &cfg.synthdefs, cfg.group_id, cfg.master)?);
        let client = ScClient::connect(&cfg.server, cfg.transport, cfg.timeout).await?;
        let initial: Arc<[f64]> = Arc::from(default_values(spec));
        if let Err(e) = setup(&client, &plan, &initial).await {
            client.unregister().await;
            return Err(e);
        }
        let status = client.status().await.ok();
        tracing::info!(
            server = %client.server_addr(),
            group = plan.group,
            voices = plan.voices.len(),
            "SuperCollider output started"
        );
        let health = Arc::new(watch::Sender::new(ScHealth {
            server: client.server_addr().to_string(),
            state: LinkState::Connected,
            since: SystemTime::now(),
            last_error: None,
            recoveries: 0,
            status,
            skipped: plan.skipped.clone(),
        }));
        let (values_tx, values_rx) = watch::channel(initial);
        let (clips_tx, clips_rx) = mpsc::channel(4);
        let (stop_tx, stop_rx) = oneshot::channel();
        let stop_wait = cfg.timeout * 3 + cfg.release + cfg.latency;
        let supervisor = Supervisor {
            plan: Arc::clone(&plan),
            server: cfg.server,
            transport: cfg.transport,
            timeout: cfg.timeout,
            latency: cfg.latency,
            status_interval: cfg.status_interval,
            lost_after: cfg.lost_after,
            release: cfg.release,
            client,
            values: values_rx,
            clips: clips_rx,
            clips_loaded: None,
            health: Arc::clone(&health),
            probe: None,
            misses: 0,
            connected: true,
            lost_reason: None,
        };
        let task = tokio::spawn(supervisor.run(stop_rx));
        Ok(ScOutput {
            plan,
            values: values_tx,
            clips: clips_tx,
            health,
            stop: Some(stop_tx),
            task: Some(task),
            stop_wait,
        })
    }

    /// Hands one tick's parameter values (in spec order; a vote's value is its choice
    /// index) to the supervisor, which sends them as one `/n_set` bundle. Never blocks;
    /// only the latest values are kept. Values that do not fit the piece are dropped and
    /// reported in [`ScOutput::health`].
    pub fn update(&self, values: &[f64]) {
        if let Err(e) = self.plan.check_values(values) {
            tracing::warn!(error = %e, "SuperCollider update dropped");
            self.health
                .send_modify(|h| h.last_error = Some(e.to_string()));
            return;
        }
        self.values.send_replace(Arc::from(values));
    }

    /// Plays a one-shot mono clip (at most 10 s) at the head of the show's group (see
    /// [`crate::clip`]): its samples are loaded into the buffer of `slot` (0–63) the first
    /// time, or when they differ in length, and after every rebuild of the show on the
    /// server. Never blocks: whether it was queued (false for a bad slot or clip, a full
    /// queue of four, or a stopped output). Samples are at the server's rate
    /// ([`ScOutput::sample_rate`]); the synth scales a buffer of another rate.
    pub fn play_clip(&self, slot: u32, samples: Arc<[f32]>) -> bool {
        if slot >= CLIP_SLOTS || samples.is_empty() || samples.len() > MAX_CLIP_FRAMES {
            return false;
        }
        self.clips.try_send(ClipPlay { slot, samples }).is_ok()
    }

    /// The server's nominal sample rate, from its latest `/status` answer.
    pub fn sample_rate(&self) -> Option<f64> {
        self.health
            .borrow()
            .status
            .as_ref()
            .map(|s| s.nominal_sample_rate)
            .filter(|r| *r > 0.0)
    }

    /// The current health, for the dashboard.
    pub fn health(&self) -> ScHealth {
        self.health.borrow().clone()
    }

    /// A receiver that sees every health change.
    pub fn health_watch(&self) -> watch::Receiver<ScHealth> {
        self.health.subscribe()
    }

    /// The show's group id.
    pub fn group_id(&self) -> i32 {
        self.plan.group
    }

    /// The voices and their node ids (the master node last, when used).
    pub fn voices(&self) -> &[VoiceNode] {
        &self.plan.voices
    }

    /// The `(node, control, value)` triples that `values` maps to (what `update` sends).
    pub fn control_values(&self, values: &[f64]) -> Result<Vec<(i32, String, f32)>, ScError> {
        self.plan.check_values(values)?;
        Ok(self
            .plan
            .node_controls(values)
            .into_iter()
            .flat_map(|(node, cs)| cs.into_iter().map(move |(c, v)| (node, c.to_string(), v)))
            .collect())
    }

    /// Stops the show on the server: releases the voices (`gate 0`), frees the group and
    /// its nodes after [`ScConfig::release`], and ends the supervisor. When the server is
    /// lost there is nothing to free and this succeeds.
    pub async fn stop(mut self) -> Result<(), ScError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        let result = tokio::time::timeout(self.stop_wait, &mut task).await;
        if result.is_err() {
            task.abort();
        }
        match result {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(ScError::Input {
                what: String::from("SuperCollider supervisor"),
                reason: format!("ended abnormally: {join}"),
            }),
            Err(_) => Err(ScError::Input {
                what: String::from("SuperCollider stop"),
                reason: format!("did not finish within {} ms", self.stop_wait.as_millis()),
            }),
        }
    }
}

/// Loads the SynthDefs and (re)creates the show's group and nodes with `values`.
async fn setup(client: &ScClient, plan: &Plan, values: &[f64]) -> Result<(), ScError> {
    client.notify(true).await?;
    // Free a stale group of ours (a previous run, or a half-built show) without scsynth
    // reporting a failure when there is none: `/error -1` mutes errors in this bundle.
    let clear = OscBundle {
        timetag: IMMEDIATELY,
        content: vec![
            OscPacket::Message(message("/error", vec![OscType::Int(-1)])),
            OscPacket::Message(message("/n_free", vec![OscType::Int(plan.group)])),
        ],
    };
    client.send(&OscPacket::Bundle(clear)).await?;
    client.sync().await?;
    for file in &plan.files {
        client.load_synthdefs(file).await?;
    }
    let mut events = client.events();
    let controls = plan.controls(values);
    let mut content = vec![OscPacket::Message(g_new(plan.group, AddAction::Head, 0))];
    for (voice, cs) in plan.voices.iter().zip(&controls) {
        content.push(OscPacket::Message(s_new(
            &voice.voice,
            voice.node,
            AddAction::Tail,
            plan.group,
            cs,
        )));
    }
    client
        .send(&OscPacket::Bundle(OscBundle {
            timetag: IMMEDIATELY,
            content,
        }))
        .await?;
    client.sync().await?;
    let tree = client.query_tree(plan.group, false).await?;
    if let Some(missing) = plan.voices.iter().find(|v| tree.find(v.node).is_none()) {
        let mut reason = String::from("scsynth sent no reason");
        while let Some(ev) = next_event(&mut events) {
            if let ScEvent::Failed { command, message } = ev {
                if command == "/s_new" {
                    reason = message;
                }
            }
        }
        return Err(ScError::NodeMissing {
            addr: client.server_addr().to_string(),
            voice: missing.voice.clone(),
            node: missing.node,
            reason,
        });
    }
    Ok(())
}

struct Probe {
    status: Pending,
    tree: Pending,
}

struct Supervisor {
    plan: Arc<Plan>,
    server: String,
    transport: Transport,
    timeout: Duration,
    latency: Duration,
    status_interval: Duration,
    lost_after: u32,
    release: Duration,
    client: ScClient,
    values: watch::Receiver<Arc<[f64]>>,
    clips: mpsc::Receiver<ClipPlay>,
    /// Since the show was last set up on the server: the clip SynthDef is loaded (`Some`)
    /// and the frames loaded into each slot's buffer.
    clips_loaded: Option<std::collections::HashMap<u32, usize>>,
    health: Arc<watch::Sender<ScHealth>>,
    probe: Option<Probe>,
    misses: u32,
    connected: bool,
    /// Why the server counts as lost (while it does).
    lost_reason: Option<String>,
}

impl Supervisor {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), ScError> {
        let mut tick = tokio::time::interval(self.status_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => return self.shutdown().await,
                _ = tick.tick() => self.on_tick().await,
                changed = self.values.changed() => {
                    if changed.is_err() {
                        // The ScOutput was dropped without stop(): free the nodes, best effort.
                        let _ = self.client.free_node(self.plan.group).await;
                        self.set_state(LinkState::Stopped, None);
                        return Ok(());
                    }
                    if self.connected {
                        self.send_values().await;
                    }
                }
                Some(clip) = self.clips.recv() => {
                    if self.connected {
                        if let Err(e) = self.play_clip(clip).await {
                            tracing::warn!(error = %e, "a clip did not play on scsynth");
                            self.health.send_modify(|h| h.last_error = Some(e.to_string()));
                        }
                    }
                }
            }
        }
    }

    /// Loads what a clip needs (once per setup of the show) and starts its synth.
    async fn play_clip(&mut self, clip: ClipPlay) -> Result<(), ScError> {
        if self.clips_loaded.is_none() {
            let def = crate::SynthDefFile::parse(CLIP_SYNTHDEF, &clip_synthdef())?;
            self.client.load_synthdefs(&def).await?;
            self.clips_loaded = Some(std::collections::HashMap::new());
        }
        let buf = CLIP_BUFFER_BASE + clip.slot as i32;
        let frames = clip.samples.len();
        let loaded = self.clips_loaded.as_ref().and_then(|l| l.get(&clip.slot)) == Some(&frames);
        if !loaded {
            let alloc = message(
                "/b_alloc",
                vec![
                    OscType::Int(buf),
                    OscType::Int(frames as i32),
                    OscType::Int(1),
                ],
            );
            self.client.send(&OscPacket::Message(alloc)).await?;
            self.client.sync().await?;
            for (i, chunk) in clip.samples.chunks(SETN_CHUNK).enumerate() {
                let mut args = Vec::with_capacity(3 + chunk.len());
                args.push(OscType::Int(buf));
                args.push(OscType::Int((i * SETN_CHUNK) as i32));
                args.push(OscType::Int(chunk.len() as i32));
                args.extend(chunk.iter().map(|v| OscType::Float(*v)));
                self.client
                    .send(&OscPacket::Message(message("/b_setn", args)))
                    .await?;
            }
            self.client.sync().await?;
            if let Some(l) = self.clips_loaded.as_mut() {
                l.insert(clip.slot, frames);
            }
        }
        let start = s_new(
            CLIP_SYNTHDEF,
            -1,
            AddAction::Head,
            self.plan.group,
            &[("buf", buf as f32)],
        );
        self.client.send(&OscPacket::Message(start)).await
    }

    fn set_state(&self, state: LinkState, error: Option<String>) {
        self.health.send_modify(|h| {
            if h.state != state {
                h.state = state;
                h.since = SystemTime::now();
            }
            if error.is_some() {
                h.last_error = error;
            }
        });
    }

    async fn send_values(&mut self) {
        let values = Arc::clone(&self.values.borrow_and_update());
        let nodes = self.plan.node_controls(&values);
        let at = SystemTime::now() + self.latency;
        if let Err(e) = self.client.set_controls_at(at, &nodes).await {
            // The status probe decides whether the server is lost; note the error only.
            tracing::debug!(error = %e, "sending control bundle");
            self.health
                .send_modify(|h| h.last_error = Some(e.to_string()));
        }
    }

    async fn on_tick(&mut self) {
        if !self.connected {
            self.try_recover().await;
            return;
        }
        let mut rebuild: Option<String> = None;
        if let Some(mut probe) = self.probe.take() {
            match probe.status.try_take() {
                Some(Ok(args)) => {
                    self.misses = 0;
                    if let Ok(status) = StatusReply::from_args(&args) {
                        self.health.send_modify(|h| h.status = Some(status));
                    }
                    rebuild = self.check_tree(&mut probe.tree);
                }
                Some(Err(e)) => {
                    self.misses += 1;
                    self.note_miss(e);
                }
                None => {
                    self.misses += 1;
                    let e = probe.status.no_reply();
                    self.note_miss(e);
                }
            }
        }
        if self.misses >= self.lost_after {
            let reason = format!(
                "scsynth at {} stopped answering /status ({} probes missed)",
                self.client.server_addr(),
                self.misses
            );
            tracing::warn!("{reason}; the show goes on, retrying");
            self.connected = false;
            self.lost_reason = Some(reason.clone());
            self.set_state(LinkState::Lost, Some(reason));
            return;
        }
        if let Some(reason) = rebuild {
            tracing::warn!("{reason}; rebuilding the show on scsynth");
            let values = Arc::clone(&self.values.borrow_and_update());
            self.clips_loaded = None;
            match setup(&self.client, &self.plan, &values).await {
                Ok(()) => self.health.send_modify(|h| {
                    h.recoveries += 1;
                    h.last_error = Some(reason);
                }),
                Err(e) => {
                    let reason = format!("{reason}, and rebuilding failed: {e}");
                    self.connected = false;
                    self.lost_reason = Some(reason.clone());
                    self.set_state(LinkState::Lost, Some(reason));
                    return;
                }
            }
        }
        self.send_probe().await;
    }

    fn note_miss(&self, e: ScError) {
        tracing::debug!(error = %e, misses = self.misses, "status probe unanswered");
        self.health
            .send_modify(|h| h.last_error = Some(e.to_string()));
    }

    /// Reads the node-tree probe: a reason to rebuild when the group or a node is gone
    /// (scsynth restarted between probes, or someone freed our nodes).
    fn check_tree(&self, tree: &mut Pending) -> Option<String> {
        match tree.try_take()? {
            Ok(args) => match TreeNode::from_reply(&args) {
                Ok(tree) => self
                    .plan
                    .voices
                    .iter()
                    .find(|v| tree.find(v.node).is_none())
                    .map(|v| format!("node {} of voice '{}' is gone", v.node, v.voice)),
                Err(_) => None,
            },
            Err(ScError::Failed { message, .. }) => Some(format!(
                "the show's group {} is gone ({message})",
                self.plan.group
            )),
            Err(_) => None,
        }
    }

    async fn send_probe(&mut self) {
        let status = self.client.request_status().await;
        let tree = self.client.request_tree(self.plan.group, false).await;
        match (status, tree) {
            (Ok(status), Ok(tree)) => self.probe = Some(Probe { status, tree }),
            (Err(e), _) | (_, Err(e)) => {
                // Could not even send: count it as a miss now.
                self.misses += 1;
                self.note_miss(e);
            }
        }
    }

    async fn try_recover(&mut self) {
        // UDP keeps its socket (and so its /notify registration on the server); a TCP
        // connection does not survive a restart, so TCP connects again.
        let attempt = match self.transport {
            Transport::Udp => self.client.status().await.map(|_| self.client.clone()),
            Transport::Tcp => ScClient::connect(&self.server, self.transport, self.timeout).await,
        };
        let client = match attempt {
            Ok(c) => c,
            Err(e) => {
                self.note_retry(&e);
                return;
            }
        };
        let values = Arc::clone(&self.values.borrow_and_update());
        self.clips_loaded = None;
        match setup(&client, &self.plan, &values).await {
            Ok(()) => {
                tracing::info!(server = %client.server_addr(), "scsynth is back; show restored");
                self.client = client;
                self.connected = true;
                self.misses = 0;
                self.probe = None;
                self.lost_reason = None;
                self.health.send_modify(|h| h.recoveries += 1);
                self.set_state(LinkState::Connected, None);
                // Values that arrived during the rebuild were already used by setup.
                self.send_probe().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "scsynth answers but the show could not be rebuilt");
                self.note_retry(&e);
            }
        }
    }

    /// Records a failed recovery attempt after the reason the server was lost.
    fn note_retry(&self, e: &ScError) {
        let text = match &self.lost_reason {
            Some(reason) => format!("{reason}; last retry: {e}"),
            None => e.to_string(),
        };
        self.health.send_modify(|h| h.last_error = Some(text));
    }

    async fn shutdown(&mut self) -> Result<(), ScError> {
        let was_connected = self.connected;
        self.connected = false;
        self.set_state(LinkState::Stopped, None);
        if !was_connected {
            return Ok(());
        }
        let group = self.plan.group;
        if self.release.is_zero() {
            self.client.free_node(group).await?;
        } else {
            let now = SystemTime::now() + self.latency;
            let gate_off = OscPacket::Bundle(OscBundle {
                timetag: to_osc_time(now)?,
                content: vec![OscPacket::Message(message(
                    "/n_set",
                    vec![
                        OscType::Int(group),
                        OscType::String(String::from("gate")),
                        OscType::Float(0.0),
                    ],
                ))],
            });
            let free = OscPacket::Bundle(OscBundle {
                timetag: to_osc_time(now + self.release)?,
                content: vec![OscPacket::Message(message(
                    "/n_free",
                    vec![OscType::Int(group)],
                ))],
            });
            self.client.send(&gate_off).await?;
            self.client.send(&free).await?;
        }
        let synced = self.client.sync().await;
        self.client.unregister().await;
        synced
    }
}

fn to_osc_time(t: SystemTime) -> Result<rosc::OscTime, ScError> {
    rosc::OscTime::try_from(t).map_err(|e| ScError::Input {
        what: String::from("bundle time"),
        reason: e.to_string(),
    })
}
