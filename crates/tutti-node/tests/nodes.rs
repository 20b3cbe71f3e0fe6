//! A show's edges and conductor over a real `nats-server -js` (started per test): the
//! same crowd through one edge or three gives the single node's state; every edge gets the
//! conductor's bytes; forged, old and foreign messages are refused and counted, never
//! applied; a conductor that stops is replaced by a standby that resumes from the store;
//! an edge cut off from the bus drops its partials instead of queueing them.

mod common;

use common::{runtime, store_with_show};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tutti_bus::{connect, partials_subject, state_subject, Leases};
use tutti_cluster::{EdgeId, PartialsMsg, StateMsg, Status, SCHEMA};
use tutti_consensus::{Engine, InputValue, ParamId};
use tutti_node::{Admission, Conductor, ConductorConfig, Edge};
use tutti_protocol::OverrideModeName;
use tutti_show::{Actor, OverrideRequest, ShowClock, ShowRuntime, Tick, TickSink};
use tutti_spec::{ParamKindName, PieceSpec};

const GUARD: Duration = Duration::from_secs(10);

/// What a sink was handed: tick number, audience text, values.
#[derive(Default)]
struct Recorder(Mutex<Vec<(u64, String, Vec<f64>)>>);

impl TickSink for Recorder {
    fn on_tick(&self, t: &Tick<'_>) {
        if let Some(a) = t.audience {
            let mut r = self.0.lock().unwrap();
            r.push((t.number, a.json.to_owned(), t.values.to_vec()));
        }
    }
}

impl Recorder {
    fn all(&self) -> Vec<(u64, String, Vec<f64>)> {
        self.0.lock().unwrap().clone()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn edge_id(name: &str) -> EdgeId {
    EdgeId::new(name).unwrap()
}

fn config(id: &str, admission: Admission) -> ConductorConfig {
    ConductorConfig {
        id: edge_id(id),
        admission,
        retry: Duration::from_millis(100),
        max_age: 0.5,
    }
}

/// Participant `i`'s input on every parameter, in round `round`.
fn inputs(rt: &ShowRuntime, who: tutti_consensus::ParticipantId, i: usize, round: usize) {
    for (p, spec) in rt.spec.params.iter().enumerate() {
        let k = (i * 29 + p * 13 + round * 41) % 97;
        match spec.kind {
            ParamKindName::Continuous => {
                let (lo, hi) = spec.range();
                rt.input(who, &spec.name, lo + (hi - lo) * k as f64 / 96.0)
                    .unwrap();
            }
            ParamKindName::Discrete => {
                let choices = spec.choices.as_deref().unwrap();
                rt.vote(who, &spec.name, &choices[k % choices.len()])
                    .unwrap();
            }
        }
    }
}

const CROWD: usize = 240;
const TICKS: usize = 12;

/// Show time of input `i` (round 0) and of tick `k`.
fn input_time(i: usize) -> f64 {
    0.1 + 0.01 * i as f64
}
fn tick_time(k: usize) -> f64 {
    3.0 + 0.05 * k as f64
}

/// The crowd on one node ticked by hand: the values of each tick.
async fn single_node() -> Vec<Vec<f64>> {
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = store_with_show(dir.path(), "SOLO").await;
    let clock = ShowClock::manual(0.0);
    let rt = runtime("SOLO", id, &store, &clock);
    let rec = Arc::new(Recorder::default());
    let sinks: Vec<Arc<dyn TickSink>> = vec![rec.clone()];
    let mut who = vec![];
    for i in 0..CROWD {
        clock.set(input_time(i));
        let lease = rt.join_audience(None, None).unwrap();
        inputs(&rt, lease.id, i, 0);
        who.push(lease.id);
    }
    let mut scratch = tutti_show::TickScratch::default();
    for k in 1..=TICKS {
        clock.set(tick_time(k));
        if k == 6 {
            for i in (0..CROWD).step_by(7) {
                inputs(&rt, who[i], i, 1);
            }
        }
        rt.tick(&mut scratch, &sinks);
    }
    rec.all().into_iter().map(|(_, _, v)| v).collect()
}

struct Cluster {
    /// The conductor's own sink: what it rendered (and published).
    conductor: Vec<(u64, String, Vec<f64>)>,
    /// Each edge's sink.
    edges: Vec<Vec<(u64, String, Vec<f64>)>>,
}

/// The same crowd spread over `n` edges, the ticks driven by hand at the same show times.
async fn cluster(n: usize) -> Cluster {
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let code = "SPLIT";
    let (store, id) = store_with_show(dir.path(), code).await;
    let clock = ShowClock::manual(0.0);
    let ids: Vec<EdgeId> = (0..n).map(|e| edge_id(&format!("edge-{e}"))).collect();
    let cbus = connect(&nats.url, GUARD).await.unwrap();
    let leases = Leases::open(&cbus, "leases", Duration::from_secs(30))
        .await
        .unwrap();
    let crec = Arc::new(Recorder::default());
    let mut conductor = Conductor::new(
        config("conductor-1", Admission::Listed(ids.clone())),
        runtime(code, id, &store, &clock),
        cbus,
        leases,
        vec![crec.clone()],
    )
    .await
    .unwrap();
    assert!(conductor.lead().await, "a free lease is taken");
    let mut edges = vec![];
    let mut recs = vec![];
    for e in &ids {
        let rec = Arc::new(Recorder::default());
        let bus = connect(&nats.url, GUARD).await.unwrap();
        let rt = runtime(code, id, &store, &clock);
        edges.push((
            Edge::new(e.clone(), rt.clone(), bus, vec![rec.clone()])
                .await
                .unwrap(),
            rt,
        ));
        recs.push(rec);
    }
    let mut who = vec![];
    for i in 0..CROWD {
        clock.set(input_time(i));
        let rt = &edges[i % n].1;
        let lease = rt.join_audience(None, None).unwrap();
        inputs(rt, lease.id, i, 0);
        who.push(lease.id);
    }
    for k in 1..=TICKS {
        clock.set(tick_time(k));
        if k == 6 {
            for i in (0..CROWD).step_by(7) {
                inputs(&edges[i % n].1, who[i], i, 1);
            }
        }
        for (edge, _) in &mut edges {
            assert!(edge.send_partials().await, "connected edges publish");
        }
        for _ in 0..n {
            let taken = conductor.next_partials(GUARD).await.expect("partials");
            taken.expect("an admitted edge's partials are taken");
        }
        let tick = conductor.tick().await.expect("the leader publishes");
        assert_eq!(
            conductor
                .metrics()
                .edges_merged
                .load(std::sync::atomic::Ordering::Relaxed),
            n as u64
        );
        for (edge, _) in &mut edges {
            let got = edge.next_state(GUARD).await.expect("a state");
            assert_eq!(got.unwrap(), tick);
        }
    }
    Cluster {
        conductor: crec.all(),
        edges: recs.iter().map(|r| r.all()).collect(),
    }
}

fn assert_close(what: &str, want: &[Vec<f64>], got: &[Vec<f64>]) {
    assert_eq!(want.len(), got.len(), "{what}: ticks");
    for (k, (w, g)) in want.iter().zip(got).enumerate() {
        for (p, (a, b)) in w.iter().zip(g).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9,
                "{what}, tick {k}, param {p}: {a} on one node, {b} here"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_edge_or_three_give_the_single_node_state_and_every_edge_the_same_bytes() {
    let solo = single_node().await;
    assert_eq!(solo.len(), TICKS);
    // Not a trivial state: the crowd moved the values, and the change at tick 6 moved them.
    assert_ne!(solo[0], solo[TICKS - 1]);
    let one = cluster(1).await;
    let three = cluster(3).await;
    for (name, c) in [("one edge", &one), ("three edges", &three)] {
        let values: Vec<Vec<f64>> = c.conductor.iter().map(|(_, _, v)| v.clone()).collect();
        assert_close(name, &solo, &values);
        assert!(
            c.conductor[0]
                .1
                .contains(&format!("\"participants\":{CROWD},")),
            "{name}: {}",
            c.conductor[0].1
        );
        // Every edge's sink got exactly the conductor's bytes, tick by tick.
        for (e, got) in c.edges.iter().enumerate() {
            assert_eq!(got.len(), TICKS, "{name}, edge {e}");
            for ((tw, jw, _), (tg, jg, vg)) in c.conductor.iter().zip(got) {
                assert_eq!((tw, jw), (tg, jg), "{name}, edge {e}");
                // The values the edge hands its sinks are the published ones.
                let frame: tutti_protocol::StateFrame = serde_json::from_str(jg).unwrap();
                let spec = PieceSpec::demo();
                for (p, v) in spec.params.iter().zip(vg) {
                    assert_eq!(frame.params[&p.name].value, *v);
                }
            }
        }
    }
}

/// One edge and its conductor, by hand, with a raw client to forge messages with.
struct Rig {
    _nats: common::Nats,
    _dir: tempfile::TempDir,
    clock: ShowClock,
    raw: async_nats::Client,
    conductor: Conductor,
    crec: Arc<Recorder>,
    edge: Edge,
    erec: Arc<Recorder>,
    edge_rt: Arc<ShowRuntime>,
}

const CODE: &str = "RIG";

async fn rig() -> Rig {
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = store_with_show(dir.path(), CODE).await;
    let clock = ShowClock::manual(1.0);
    let cbus = connect(&nats.url, GUARD).await.unwrap();
    let leases = Leases::open(&cbus, "leases", Duration::from_secs(30))
        .await
        .unwrap();
    let crec = Arc::new(Recorder::default());
    let mut conductor = Conductor::new(
        config("conductor-1", Admission::Listed(vec![edge_id("edge-a")])),
        runtime(CODE, id, &store, &clock),
        cbus,
        leases,
        vec![crec.clone()],
    )
    .await
    .unwrap();
    assert!(conductor.lead().await);
    let erec = Arc::new(Recorder::default());
    let edge_rt = runtime(CODE, id, &store, &clock);
    let edge = Edge::new(
        edge_id("edge-a"),
        edge_rt.clone(),
        connect(&nats.url, GUARD).await.unwrap(),
        vec![erec.clone()],
    )
    .await
    .unwrap();
    for i in 0..5 {
        let lease = edge_rt.join_audience(None, None).unwrap();
        inputs(&edge_rt, lease.id, i, 0);
    }
    let raw = connect(&nats.url, GUARD).await.unwrap();
    Rig {
        _nats: nats,
        _dir: dir,
        clock,
        raw,
        conductor,
        crec,
        edge,
        erec,
        edge_rt,
    }
}

impl Rig {
    /// One tick through the bus; the tick published.
    async fn tick(&mut self, t: f64) -> u64 {
        self.clock.set(t);
        assert!(self.edge.send_partials().await);
        self.conductor
            .next_partials(GUARD)
            .await
            .expect("partials")
            .expect("taken");
        let tick = self.conductor.tick().await.expect("published");
        let got = self.edge.next_state(GUARD).await.expect("a state");
        assert_eq!(got.unwrap(), tick);
        tick
    }

    async fn forge(&self, subject: String, bytes: Vec<u8>) {
        self.raw.publish(subject, bytes.into()).await.unwrap();
        self.raw.flush().await.unwrap();
    }
}

fn state(term: u64, tick: u64, conductor: &str, show: &str, audience: &str) -> Vec<u8> {
    StateMsg {
        schema: SCHEMA,
        show: show.into(),
        conductor: edge_id(conductor),
        term,
        // Each rig's conductor publishes one state per tick from tick 1: seq is the tick.
        seq: tick,
        tick,
        status: Status::Live,
        audience: audience.as_bytes().to_vec(),
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_old_or_foreign_messages_are_refused_counted_and_never_applied() {
    let mut r = rig().await;
    let tick = r.tick(1.05).await;
    let em = r.edge.metrics();
    let term = em.term.load(std::sync::atomic::Ordering::Relaxed);
    assert!(term >= 1);
    let (_, real, _) = r.crec.all().pop().unwrap();
    // A plausible frame for a later tick, the conductor's own bytes renumbered.
    let later = real.replacen(
        &format!("\"tick\":{tick},"),
        &format!("\"tick\":{},", tick + 50),
        1,
    );
    assert_ne!(later, real);
    let subject = state_subject(CODE);
    let forged: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"\x00\xffnot a state".to_vec()),
        (
            "wrong_show",
            state(term, tick + 50, "conductor-1", "OTHER", &later),
        ),
        (
            "stale_term",
            state(term - 1, tick + 50, "conductor-1", CODE, &later),
        ),
        (
            "two_conductors",
            state(term, tick + 50, "impostor", CODE, &later),
        ),
        ("replayed", state(term, tick, "conductor-1", CODE, &real)),
        // A far newer term whose bytes are no state: refused before it can move the edge.
        (
            "unreadable_state",
            state(
                term + 100,
                tick + 50,
                "conductor-1",
                CODE,
                "{\"type\":\"nope\"}",
            ),
        ),
    ];
    for (kind, bytes) in forged {
        r.forge(subject.clone(), bytes).await;
        let got = r
            .edge
            .next_state(GUARD)
            .await
            .expect("the forged state arrives");
        assert!(got.is_err(), "{kind} accepted");
        assert_eq!(em.rejects(kind), 1, "{kind}");
    }
    assert_eq!(em.rejects_total(), 6);
    assert_eq!(r.erec.len(), 1, "nothing refused reached the sinks");
    assert_eq!(em.term.load(std::sync::atomic::Ordering::Relaxed), term);

    // Partials: another show's, a stranger's, garbage, a replay.
    let cfg = PieceSpec::demo().engine_config();
    let mut crowd = Engine::new(cfg).unwrap();
    for _ in 0..50 {
        let p = crowd.join(None, 1.0).unwrap();
        crowd
            .submit(p, ParamId(0), InputValue::Continuous(0.5), 1.0)
            .unwrap();
    }
    let partial = |show: &str, edge: &str, seq: u64| {
        PartialsMsg {
            schema: SCHEMA,
            show: show.into(),
            edge: edge_id(edge),
            seq,
            partials: crowd.partials(1.05).to_sparse(),
        }
        .encode()
    };
    let cm = r.conductor.metrics();
    let forged: Vec<(&str, Vec<u8>)> = vec![
        ("wrong_show", partial("OTHER", "edge-a", 1000)),
        ("unknown_edge", partial(CODE, "stranger", 1)),
        ("malformed", vec![1, 2, 3]),
        ("replayed", partial(CODE, "edge-a", 1)),
    ];
    for (kind, bytes) in forged {
        r.forge(partials_subject(CODE), bytes).await;
        let got = r
            .conductor
            .next_partials(GUARD)
            .await
            .expect("the forged partials arrive");
        assert!(got.is_err(), "{kind} accepted");
        assert_eq!(cm.rejects(kind), 1, "{kind}");
    }
    assert_eq!(cm.rejects_total(), 4);
    // The next tick merges the one real edge: its 5 participants, not the stranger's 50;
    // and the edge, still in the real term, takes the real state.
    let next = r.tick(1.10).await;
    assert!(next > tick);
    assert_eq!(
        cm.edges_merged.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let (_, json, _) = r.crec.all().pop().unwrap();
    assert!(json.contains("\"participants\":5,"), "{json}");
    assert_eq!(r.erec.len(), 2);
    assert_eq!(r.edge_rt.participants(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_cut_off_from_the_bus_drops_its_partials_instead_of_queueing_them() {
    let mut r = rig().await;
    r.tick(1.05).await;
    let em = r.edge.metrics();
    let sent = em.partials_sent.load(std::sync::atomic::Ordering::Relaxed);
    drop(r._nats);
    // The client notices the lost connection by itself; until then a publish may still go
    // into its buffer, so wait (bounded) for the first tick it refuses to publish.
    let start = Instant::now();
    loop {
        if !r.edge.send_partials().await {
            break;
        }
        assert!(
            start.elapsed() < GUARD * 3,
            "the edge never noticed the bus was gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = em.partials_sent.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..5 {
        assert!(!r.edge.send_partials().await);
    }
    assert_eq!(
        em.partials_sent.load(std::sync::atomic::Ordering::Relaxed),
        before
    );
    assert!(
        em.partials_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 6
    );
    assert!(!em.connected.load(std::sync::atomic::Ordering::Relaxed));
    assert!(before >= sent);
    assert!(em
        .render(CODE)
        .contains("tutti_node_bus_connected{show=\"RIG\"} 0"));
}

/// Polls `f` every 10 ms until it holds; panics after `limit` (a guard against a hang,
/// not a measurement).
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn value_of(json: &str, param: &str) -> f64 {
    let frame: tutti_protocol::StateFrame = serde_json::from_str(json).unwrap();
    frame.params[param].value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_stopped_conductor_and_resumes_from_the_store() {
    use std::sync::atomic::Ordering::Relaxed;
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let code = "FAIL";
    let (store, id) = store_with_show(dir.path(), code).await;
    // One process: the nodes share a time base by sharing an origin.
    let clock = ShowClock::since(Instant::now());
    let ttl = Duration::from_secs(1);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let contender = |name: &'static str| {
        let (url, store, clock) = (nats.url.clone(), store.clone(), clock.clone());
        async move {
            let bus = connect(&url, GUARD).await.unwrap();
            let leases = Leases::open(&bus, "leases", ttl).await.unwrap();
            let rt = runtime(code, id, &store, &clock);
            let c = Conductor::new(
                config(name, Admission::FirstSight),
                rt.clone(),
                bus,
                leases,
                vec![],
            )
            .await
            .unwrap();
            (c, rt)
        }
    };
    let (a, a_rt) = contender("conductor-a").await;
    let am = a.metrics();
    let a_task = tokio::spawn(a.run(stop.clone()));
    until("conductor-a leads", GUARD, || am.leading.load(Relaxed)).await;
    let (b, _) = contender("conductor-b").await;
    let bm = b.metrics();
    let b_task = tokio::spawn(b.run(stop.clone()));

    let erec = Arc::new(Recorder::default());
    let edge_rt = runtime(code, id, &store, &clock);
    let edge = Edge::new(
        edge_id("edge-a"),
        edge_rt.clone(),
        connect(&nats.url, GUARD).await.unwrap(),
        vec![erec.clone()],
    )
    .await
    .unwrap();
    let em = edge.metrics();
    for i in 0..20 {
        let lease = edge_rt.join_audience(None, None).unwrap();
        inputs(&edge_rt, lease.id, i, 0);
    }
    let edge_task = tokio::spawn(edge.run(stop.clone()));
    until("the edge takes conductor-a's states", GUARD, || {
        erec.len() >= 5
    })
    .await;
    let old_term = em.term.load(Relaxed);
    assert_eq!(old_term, am.term.load(Relaxed));
    assert!(!bm.leading.load(Relaxed), "two leaders");

    // A performer's lock, committed (stored, then applied) on the leader.
    let spec = PieceSpec::demo();
    let slider = spec
        .params
        .iter()
        .find(|p| p.kind == ParamKindName::Continuous)
        .unwrap();
    let (lo, hi) = slider.range();
    let locked = lo + (hi - lo) * 0.123;
    let actor = Actor {
        by: 1,
        priority: 10,
        name: "performer".into(),
    };
    let req = OverrideRequest {
        mode: OverrideModeName::Lock,
        a: Some(locked),
        b: None,
        expires_in: None,
    };
    a_rt.set_override(&actor, &slider.name, req).await.unwrap();
    until("the lock reaches the edge", GUARD, || {
        erec.all()
            .last()
            .is_some_and(|(_, j, _)| (value_of(j, &slider.name) - locked).abs() < 1e-6)
    })
    .await;
    // A snapshot taken with the lock in force is committed (once a second).
    let locked_at = erec.all().last().unwrap().0;
    let start = Instant::now();
    let stored = loop {
        if let Some(s) = store.latest_snapshot(id).await.unwrap() {
            if s.tick >= locked_at {
                break s.tick;
            }
        }
        assert!(start.elapsed() < GUARD, "no snapshot stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // conductor-a stops: no renewal, no release.
    a_task.abort();
    let _ = a_task.await;
    let stopped = Instant::now();
    let before = erec.len();
    until("conductor-b leads", GUARD * 3, || bm.leading.load(Relaxed)).await;
    let took = stopped.elapsed();
    println!(
        "takeover: conductor-b leads {took:?} after conductor-a stopped (lease TTL {ttl:?}, retry 100 ms)"
    );
    until("the edge takes conductor-b's states", GUARD, || {
        em.term.load(Relaxed) > old_term && erec.len() > before
    })
    .await;
    let new_term = em.term.load(Relaxed);
    assert_eq!(new_term, bm.term.load(Relaxed));
    assert!(new_term > old_term);
    assert_eq!(bm.takeovers.load(Relaxed), 1);
    // The edge's term never goes back: every state it takes from here on is conductor-b's.
    let seen = erec.len();
    until("another state from conductor-b", GUARD, || {
        erec.len() > seen
    })
    .await;
    let (first_b, json, _) = erec.all()[seen].clone();
    // Resumed from the stored state: the tick numbers go on from the stored snapshot, and
    // the committed lock is still in force.
    assert!(first_b > stored, "tick {first_b} after the stored {stored}");
    assert!(
        (value_of(&json, &slider.name) - locked).abs() < 1e-6,
        "the lock was lost in the takeover: {json}"
    );
    // Everything that reached the edge was refused or taken, none twice.
    assert_eq!(em.rejects("two_conductors"), 0);

    stop_tx.send(true).unwrap();
    b_task.await.unwrap();
    edge_task.await.unwrap();
    assert!(!bm.leading.load(Relaxed));
}
