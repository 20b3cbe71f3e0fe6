//! Performer commands over a real `nats-server -js` (started per test) and a real SQLite
//! store: an edge forwards an override to the show's conductor, which acknowledges it only
//! once it is committed; bad overrides get the single node's error codes; forged commands
//! are refused and counted, never stored; only the leader answers, and after a failover
//! the new leader does; with no conductor the performer gets `unavailable`, never a success.

mod common;

use common::{runtime, store_with_show};

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tutti_bus::{command_subject, connect, state_subject, Leases};
use tutti_cluster::{CommandMsg, CommandOutcome, CommandReply, EdgeId, StateMsg, SCHEMA};
use tutti_node::{
    forward, override_msg, Admission, CommandError, Conductor, ConductorConfig, UNAVAILABLE,
};
use tutti_protocol::OverrideModeName;
use tutti_show::{Actor, OverrideRequest, ShowClock, ShowRuntime};
use tutti_spec::{ParamKindName, PieceSpec};

const GUARD: Duration = Duration::from_secs(10);

fn edge_id(name: &str) -> EdgeId {
    EdgeId::new(name).unwrap()
}

fn config(id: &str) -> ConductorConfig {
    ConductorConfig {
        id: edge_id(id),
        admission: Admission::FirstSight,
        retry: Duration::from_millis(100),
        max_age: 0.5,
    }
}

fn performer() -> Actor {
    Actor {
        by: 1,
        priority: 10,
        name: "performer".into(),
    }
}

/// The demo piece's first continuous parameter and a lock value inside its range.
fn slider() -> (String, f64) {
    let spec = PieceSpec::demo();
    let p = spec
        .params
        .iter()
        .find(|p| p.kind == ParamKindName::Continuous)
        .unwrap();
    let (lo, hi) = p.range();
    (p.name.clone(), lo + (hi - lo) * 0.123)
}

fn lock(value: f64) -> OverrideRequest {
    OverrideRequest {
        mode: OverrideModeName::Lock,
        a: Some(value),
        b: None,
        expires_in: None,
    }
}

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn value_of(json: &[u8], param: &str) -> f64 {
    let frame: tutti_protocol::StateFrame = serde_json::from_slice(json).unwrap();
    frame.params[param].value
}

/// A conductor driven by hand that leads show `code`, on its own bus connection.
async fn leader(url: &str, rt: Arc<ShowRuntime>) -> Conductor {
    let bus = connect(url, GUARD).await.unwrap();
    let leases = Leases::open(&bus, "leases", Duration::from_secs(30))
        .await
        .unwrap();
    let mut c = Conductor::new(config("conductor-1"), rt, bus, leases, vec![])
        .await
        .unwrap();
    assert!(c.lead().await, "a free lease is taken");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_lock_is_acknowledged_once_committed_and_reaches_the_next_state() {
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let code = "CMD";
    let (store, id) = store_with_show(dir.path(), code).await;
    let clock = ShowClock::manual(1.0);
    let mut conductor = leader(&nats.url, runtime(code, id, &store, &clock)).await;
    let cm = conductor.metrics();
    let term = cm.term.load(Relaxed);

    let edge_bus = connect(&nats.url, GUARD).await.unwrap();
    let mut states = edge_bus.subscribe(state_subject(code)).await.unwrap();
    edge_bus.flush().await.unwrap();

    let (param, locked) = slider();
    let msg = override_msg(
        code,
        &edge_id("edge-1"),
        1,
        &performer(),
        &param,
        lock(locked),
    );
    let ack = forward(&edge_bus, &msg, GUARD)
        .await
        .expect("the lock is acknowledged");
    // Acknowledged means committed: the override log has it the moment the ack is here.
    let log = store.overrides(id).await.unwrap();
    assert_eq!(log.len(), 1, "one override stored: {log:?}");
    assert_eq!(
        (
            log[0].actor.as_str(),
            log[0].param.as_str(),
            log[0].action.as_str()
        ),
        ("performer", param.as_str(), "set")
    );
    let detail: serde_json::Value = serde_json::from_str(&log[0].detail_json).unwrap();
    assert_eq!(detail["mode"], "lock");
    assert_eq!(detail["a"].as_f64(), Some(locked));
    assert_eq!(ack.conductor, edge_id("conductor-1"));
    assert_eq!(ack.term, term);
    assert_eq!(cm.commands_applied.load(Relaxed), 1);
    assert_eq!(cm.commands_refused.load(Relaxed), 0);

    // The conductor's next published state reflects it.
    clock.set(2.0);
    let published = conductor.tick().await.expect("a state is published");
    assert!(
        published >= ack.tick,
        "tick {published} before the ack's {}",
        ack.tick
    );
    let m = tokio::time::timeout(GUARD, states.next())
        .await
        .expect("no state within the guard")
        .unwrap();
    let state = StateMsg::decode(&m.payload).unwrap();
    assert_eq!(state.tick, published);
    let v = value_of(&state.audience, &param);
    assert!(
        (v - locked).abs() < 1e-6,
        "state has {v}, not the lock {locked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_override_gets_the_single_node_code_and_nothing_is_stored() {
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let code = "BAD";
    let (store, id) = store_with_show(dir.path(), code).await;
    let clock = ShowClock::manual(1.0);
    let conductor = leader(&nats.url, runtime(code, id, &store, &clock)).await;
    let cm = conductor.metrics();
    // A single node running the same show, for the codes it gives.
    let solo = runtime(code, id, &store, &clock);
    let edge_bus = connect(&nats.url, GUARD).await.unwrap();
    let (param, locked) = slider();
    let bad: Vec<(&str, OverrideRequest)> = vec![
        ("no-such-param", lock(locked)),
        (param.as_str(), lock(f64::NAN)),
        (
            param.as_str(),
            OverrideRequest {
                mode: OverrideModeName::Lock,
                a: None,
                b: None,
                expires_in: None,
            },
        ),
    ];
    for (i, (p, req)) in bad.iter().enumerate() {
        let single = solo
            .set_override(&performer(), p, *req)
            .await
            .expect_err("a single node refuses it");
        let msg = override_msg(code, &edge_id("edge-1"), i as u64, &performer(), p, *req);
        let e: CommandError = forward(&edge_bus, &msg, GUARD)
            .await
            .expect_err("the conductor refuses it");
        assert_eq!(e.code, single.code.as_str(), "{p} {req:?}: {e}");
        assert_eq!(e.message, single.message);
    }
    assert!(
        store.overrides(id).await.unwrap().is_empty(),
        "nothing stored"
    );
    assert_eq!(cm.commands_refused.load(Relaxed), bad.len() as u64);
    assert_eq!(cm.commands_applied.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_commands_are_refused_counted_and_never_stored() {
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let code = "REAL";
    let (store, id) = store_with_show(dir.path(), code).await;
    let clock = ShowClock::manual(1.0);
    let conductor = leader(&nats.url, runtime(code, id, &store, &clock)).await;
    let cm = conductor.metrics();
    let bus = connect(&nats.url, GUARD).await.unwrap();
    let (param, locked) = slider();
    let good = override_msg(
        code,
        &edge_id("edge-1"),
        1,
        &performer(),
        &param,
        lock(locked),
    );
    let ask = |bytes: Vec<u8>, wait: Duration| {
        let bus = bus.clone();
        async move {
            let req = async_nats::Request::new()
                .payload(bytes.into())
                .timeout(Some(wait));
            bus.send_request(command_subject(code), req).await
        }
    };
    let refusal = |m: async_nats::Message| match CommandReply::decode(&m.payload).unwrap().outcome {
        CommandOutcome::Refused { code, .. } => code,
        other => panic!("a forged command was answered {other:?}"),
    };

    // Another show's command on this show's subject.
    let mut other = good.clone();
    other.show = "OTHER".into();
    let r = ask(other.encode(), GUARD).await.expect("an error reply");
    assert_eq!(refusal(r), "unknown_show");
    assert_eq!(cm.rejects("command_wrong_show"), 1);

    // Another schema.
    let mut old = good.clone();
    old.schema = SCHEMA + 7;
    let r = ask(old.encode(), GUARD).await.expect("an error reply");
    assert_eq!(refusal(r), "bad_frame");
    assert_eq!(cm.rejects("command_wrong_schema"), 1);

    // Garbage and a truncated command: no answer.
    for (n, bytes) in [
        b"\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        good.encode()[..good.encode().len() - 3].to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let e = ask(bytes, Duration::from_millis(500))
            .await
            .expect_err("no answer to bytes that are not a command");
        assert_eq!(e.kind(), async_nats::RequestErrorKind::TimedOut);
        until("the unreadable command counted", GUARD, || {
            cm.rejects("command_malformed") == n as u64 + 1
        })
        .await;
    }

    // A valid command without a reply subject: nothing to acknowledge to, not applied.
    bus.publish(command_subject(code), good.encode().into())
        .await
        .unwrap();
    bus.flush().await.unwrap();
    until("the command without a reply counted", GUARD, || {
        cm.rejects("command_no_reply") == 1
    })
    .await;

    assert!(
        store.overrides(id).await.unwrap().is_empty(),
        "a forged command was stored"
    );
    assert_eq!(cm.commands_applied.load(Relaxed), 0);
    assert_eq!(cm.rejects_total(), 5);

    // The responder is still there for a real one.
    forward(&bus, &good, GUARD).await.expect("acknowledged");
    assert_eq!(store.overrides(id).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_answers_and_after_a_failover_the_new_leader_does() {
    let nats = common::nats();
    let dir = tempfile::tempdir().unwrap();
    let code = "FAIL";
    let (store, id) = store_with_show(dir.path(), code).await;
    let clock = ShowClock::since(Instant::now());
    let ttl = Duration::from_secs(1);
    let contender = |name: &'static str| {
        let (url, store, clock) = (nats.url.clone(), store.clone(), clock.clone());
        async move {
            let bus = connect(&url, GUARD).await.unwrap();
            let leases = Leases::open(&bus, "leases", ttl).await.unwrap();
            let rt = runtime(code, id, &store, &clock);
            Conductor::new(config(name), rt, bus, leases, vec![])
                .await
                .unwrap()
        }
    };
    let (a_stop_tx, a_stop) = tokio::sync::watch::channel(false);
    let (b_stop_tx, b_stop) = tokio::sync::watch::channel(false);
    let a = contender("conductor-a").await;
    let am = a.metrics();
    let a_task = tokio::spawn(a.run(a_stop));
    until("conductor-a leads", GUARD, || am.leading.load(Relaxed)).await;
    let b = contender("conductor-b").await;
    let bm = b.metrics();
    let b_task = tokio::spawn(b.run(b_stop));

    let edge_bus = connect(&nats.url, GUARD).await.unwrap();
    let mut states = edge_bus.subscribe(state_subject(code)).await.unwrap();
    edge_bus.flush().await.unwrap();
    let (param, locked) = slider();
    let actor = performer();
    let edge = edge_id("edge-1");
    for i in 1..=3 {
        let msg = override_msg(code, &edge, i, &actor, &param, lock(locked));
        let ack = forward(&edge_bus, &msg, GUARD).await.expect("acknowledged");
        assert_eq!(ack.conductor, edge_id("conductor-a"));
        assert_eq!(ack.term, am.term.load(Relaxed));
    }
    assert!(!bm.leading.load(Relaxed), "two leaders");
    assert_eq!(am.commands_applied.load(Relaxed), 3);
    // The standby never saw them: it is not subscribed.
    assert_eq!(bm.commands_applied.load(Relaxed), 0);
    assert_eq!(bm.commands_refused.load(Relaxed), 0);
    assert_eq!(bm.rejects_total(), 0);
    let old_term = am.term.load(Relaxed);

    // conductor-a stops (resigns); conductor-b takes over and answers.
    a_stop_tx.send(true).unwrap();
    a_task.await.unwrap();
    let moved = lock(locked * 0.5);
    let msg = override_msg(code, &edge, 4, &actor, &param, moved);
    // Sent at once: while nobody leads, the request finds no responder and is sent again.
    let ack = forward(&edge_bus, &msg, GUARD * 3)
        .await
        .expect("acknowledged by the new leader");
    assert_eq!(ack.conductor, edge_id("conductor-b"));
    assert!(bm.leading.load(Relaxed));
    assert_eq!(ack.term, bm.term.load(Relaxed));
    assert!(ack.term > old_term, "term {} after {old_term}", ack.term);
    assert_eq!(bm.commands_applied.load(Relaxed), 1);
    assert_eq!(
        am.commands_applied.load(Relaxed),
        3,
        "the old leader answered"
    );
    let log = store.overrides(id).await.unwrap();
    assert_eq!(log.len(), 4, "{log:?}");
    let detail: serde_json::Value = serde_json::from_str(&log[3].detail_json).unwrap();
    assert_eq!(detail["a"].as_f64(), Some(locked * 0.5));
    // The new leader's states carry it.
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < GUARD,
            "no state of conductor-b with the new lock"
        );
        let m = tokio::time::timeout(GUARD, states.next())
            .await
            .expect("no state within the guard")
            .unwrap();
        let s = StateMsg::decode(&m.payload).unwrap();
        if s.conductor == edge_id("conductor-b")
            && (value_of(&s.audience, &param) - locked * 0.5).abs() < 1e-6
        {
            break;
        }
    }

    b_stop_tx.send(true).unwrap();
    b_task.await.unwrap();
    assert!(!bm.leading.load(Relaxed));
    // With nobody leading, a command is unavailable, not acknowledged.
    let e = forward(&edge_bus, &msg, Duration::from_millis(300))
        .await
        .expect_err("no conductor, no ack");
    assert_eq!(e.code, UNAVAILABLE);
    assert!(e.message.contains("no conductor answered"), "{}", e.message);
    assert_eq!(store.overrides(id).await.unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_without_a_conductor_is_unavailable() {
    let nats = common::nats();
    let bus = connect(&nats.url, GUARD).await.unwrap();
    let (param, locked) = slider();
    let msg: CommandMsg = override_msg(
        "NOBODY",
        &edge_id("edge-1"),
        1,
        &performer(),
        &param,
        lock(locked),
    );
    let e = forward(&bus, &msg, Duration::from_millis(300))
        .await
        .expect_err("nobody answered, so no ack");
    assert_eq!(e.code, UNAVAILABLE);
    assert!(e.message.contains("within 0.3 s"), "{}", e.message);
}
