//! A show's partials and states across a real NATS: three edges publish their crowds'
//! partials, the conductor merges them into the state one node holding everyone computes
//! (within 1e-9), and publishes it once; every edge receives the same bytes and takes them.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use tutti_bus::{connect, partials_subject, state_subject};
use tutti_cluster::{EdgeId, PartialsInbox, PartialsMsg, StateInbox, StateMsg, SCHEMA};
use tutti_consensus::{Engine, InputValue, ParamId, ParamKind, Partials};

const SHOW: &str = "BUS123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_split_over_three_edges_meets_at_the_conductor_through_nats() {
    let n = common::nats();
    let cfg = tutti_spec::PieceSpec::demo().engine_config();
    let conductor_bus = connect(&n.url, Duration::from_secs(5)).await.unwrap();
    let mut partials_in = conductor_bus
        .subscribe(partials_subject(SHOW))
        .await
        .unwrap();
    let mut edges = Vec::new();
    for name in ["edge-a", "edge-b", "edge-c"] {
        let bus = connect(&n.url, Duration::from_secs(5)).await.unwrap();
        let states = bus.subscribe(state_subject(SHOW)).await.unwrap();
        bus.flush().await.unwrap();
        edges.push((
            EdgeId::new(name).unwrap(),
            bus,
            states,
            Engine::new(cfg.clone()).unwrap(),
        ));
    }
    conductor_bus.flush().await.unwrap();

    // The same 240 phones: all on one node, and spread over the three edges.
    let mut single = Engine::new(cfg.clone()).unwrap();
    for i in 0..240u32 {
        let a = single.join(None, 1.0).unwrap();
        let e = &mut edges[(i % 3) as usize].3;
        let b = e.join(None, 1.0).unwrap();
        for (p, pc) in cfg.params.iter().enumerate() {
            let v = match pc.kind {
                ParamKind::Continuous { min, max, .. } => InputValue::Continuous(
                    min + (max - min) * f64::from((i * 29 + p as u32 * 13) % 97) / 96.0,
                ),
                ParamKind::Discrete { choices, .. } => InputValue::Choice((i * 5) % choices),
            };
            let t = f64::from(i) * 0.01;
            single.submit(a, ParamId(p as u16), v, t).unwrap();
            e.submit(b, ParamId(p as u16), v, t).unwrap();
        }
    }
    let now = 3.0;
    for (id, bus, _, engine) in &edges {
        let msg = PartialsMsg {
            schema: SCHEMA,
            show: SHOW.into(),
            edge: id.clone(),
            seq: 1,
            partials: engine.partials(now).to_sparse(),
        };
        bus.publish(partials_subject(SHOW), msg.encode().into())
            .await
            .unwrap();
        bus.flush().await.unwrap();
    }

    // The conductor: every edge's message, checked, merged, finished.
    let mut inbox = PartialsInbox::new(SHOW, cfg.clone());
    for (id, ..) in &edges {
        inbox.admit(id.clone());
    }
    for _ in 0..3 {
        let m = tokio::time::timeout(Duration::from_secs(10), partials_in.next())
            .await
            .expect("a partials message")
            .unwrap();
        inbox.accept(&m.payload, now).unwrap();
    }
    let mut merged = Partials::empty(&cfg, now);
    let report = inbox.merge_into(now, 1.0, now, &mut merged);
    assert_eq!((report.edges, report.participants), (3, 240));
    let mut conductor = Engine::new(cfg.clone()).unwrap();
    let got = conductor.tick_from(&merged, now).unwrap().clone();
    let want = single.tick(now).clone();
    for (p, (a, b)) in want.params.iter().zip(&got.params).enumerate() {
        assert!(
            (a.value - b.value).abs() <= 1e-9,
            "param {p}: {} on one node, {} through the bus",
            a.value,
            b.value
        );
    }

    // Published once; every edge gets the same bytes and takes them.
    let audience = format!(r#"{{"type":"state","tick":{}}}"#, got.tick).into_bytes();
    let state = StateMsg {
        schema: SCHEMA,
        show: SHOW.into(),
        conductor: EdgeId::new("conductor-1").unwrap(),
        term: 7,
        seq: 1,
        tick: got.tick,
        status: tutti_cluster::Status::Live,
        audience: audience.clone(),
    };
    conductor_bus
        .publish(state_subject(SHOW), state.encode().into())
        .await
        .unwrap();
    conductor_bus.flush().await.unwrap();
    for (id, _, states, _) in &mut edges {
        let m = tokio::time::timeout(Duration::from_secs(10), states.next())
            .await
            .expect("a state")
            .unwrap();
        let mut inbox = StateInbox::new(SHOW);
        let taken = inbox.accept(&m.payload).unwrap();
        assert_eq!(taken.audience, audience, "edge {id}");
        assert_eq!(inbox.conductor().map(|(t, _)| t), Some(7));
    }
}
