//! The bus's checks: a crowd split over three edges, shipped as bytes and merged by the
//! conductor's inbox, gives the single node's state; forged, replayed and stale messages are
//! refused, counted and never applied.

use tutti_cluster::{
    EdgeId, MergeReport, PartialsInbox, PartialsMsg, Reject, StateInbox, StateMsg, Status, SCHEMA,
};
use tutti_consensus::{Engine, EngineConfig, InputValue, ParamId, ParamKind, Partials, ZoneId};

fn cfg() -> EngineConfig {
    tutti_spec::PieceSpec::demo().engine_config()
}

fn edge(name: &str) -> EdgeId {
    EdgeId::new(name).unwrap()
}

/// One participant's inputs on every parameter of the demo, from `i`.
fn inputs(cfg: &EngineConfig, i: u32) -> Vec<(ParamId, InputValue)> {
    cfg.params
        .iter()
        .enumerate()
        .map(|(p, pc)| {
            let v = match pc.kind {
                ParamKind::Continuous { min, max, .. } => InputValue::Continuous(
                    min + (max - min) * f64::from((i * 37 + p as u32 * 11) % 101) / 100.0,
                ),
                ParamKind::Discrete { choices, .. } => InputValue::Choice((i * 7) % choices),
            };
            (ParamId(p as u16), v)
        })
        .collect()
}

fn msg(show: &str, from: &str, seq: u64, partials: Partials) -> Vec<u8> {
    let partials = partials.to_sparse();
    PartialsMsg {
        schema: SCHEMA,
        show: show.into(),
        edge: edge(from),
        seq,
        partials,
    }
    .encode()
}

#[test]
fn a_crowd_through_three_edges_gives_the_single_nodes_state() {
    let cfg = cfg();
    let zones = cfg.zone_weights.len().max(1) as u32;
    let mut single = Engine::new(cfg.clone()).unwrap();
    let mut edges: Vec<Engine> = (0..3).map(|_| Engine::new(cfg.clone()).unwrap()).collect();
    let mut conductor = Engine::new(cfg.clone()).unwrap();
    let mut inbox = PartialsInbox::new("ABC123", cfg.clone());
    for name in ["edge-a", "edge-b", "edge-c"] {
        inbox.admit(edge(name));
    }
    let names = ["edge-a", "edge-b", "edge-c"];
    let mut seq = 0;
    let mut merged = Partials::empty(&cfg, 0.0);
    for round in 0..5u32 {
        // 60 new phones a round, with inputs at their own times; then one tick.
        for k in 0..60u32 {
            let i = round * 60 + k;
            let zone = Some(ZoneId((i % zones) as u16));
            let trust = 0.5 + f64::from(i % 3) * 0.25;
            let t = f64::from(i) * 0.02;
            let a = single.join(zone, trust).unwrap();
            let e = &mut edges[(i % 3) as usize];
            let b = e.join(zone, trust).unwrap();
            for (p, v) in inputs(&cfg, i) {
                single.submit(a, p, v, t).unwrap();
                e.submit(b, p, v, t).unwrap();
            }
        }
        let now = f64::from(round + 1) * 1.25;
        seq += 1;
        for (e, name) in edges.iter().zip(names) {
            inbox
                .accept(&msg("ABC123", name, seq, e.partials(now)), now)
                .unwrap();
        }
        let report = inbox.merge_into(now, 1.0, now, &mut merged);
        assert_eq!(
            report,
            MergeReport {
                edges: 3,
                stale: 0,
                participants: u64::from(round + 1) * 60
            }
        );
        let want = single.tick(now).clone();
        let got = conductor.tick_from(&merged, now).unwrap().clone();
        // The edges finish the tick too, so their agreement reference follows the show's.
        for e in &mut edges {
            e.tick_from(&merged, now).unwrap();
        }
        assert_eq!(got.participants, want.participants);
        for (p, (a, b)) in want.params.iter().zip(&got.params).enumerate() {
            assert!(
                (a.value - b.value).abs() <= 1e-9,
                "round {round}, param {p}: {} single, {} through three edges",
                a.value,
                b.value
            );
            assert!((a.dispersion - b.dispersion).abs() <= 1e-9);
            assert!((a.agreement - b.agreement).abs() <= 1e-9);
            assert_eq!(a.participants, b.participants);
        }
    }
    assert_eq!(inbox.rejects().total(), 0);
}

#[test]
fn forged_and_replayed_partials_are_refused_counted_and_never_merged() {
    let cfg = cfg();
    let mut inbox = PartialsInbox::new("ABC123", cfg.clone());
    inbox.admit(edge("edge-a"));
    let mut crowd = Engine::new(cfg.clone()).unwrap();
    let p = crowd.join(None, 1.0).unwrap();
    for (param, v) in inputs(&cfg, 3) {
        crowd.submit(p, param, v, 0.0).unwrap();
    }
    let good = crowd.partials(1.0);
    inbox
        .accept(&msg("ABC123", "edge-a", 5, good.clone()), 1.0)
        .unwrap();

    // Another piece's partials: the layout does not fit.
    let other_cfg = EngineConfig {
        params: cfg.params[..2].to_vec(),
        ..cfg.clone()
    };
    let other = Engine::new(other_cfg).unwrap().partials(1.0);
    let mut wrong_schema = PartialsMsg::decode(&msg("ABC123", "edge-a", 9, good.clone())).unwrap();
    wrong_schema.schema = SCHEMA + 1;
    let mut truncated = msg("ABC123", "edge-a", 9, good.clone());
    truncated.truncate(truncated.len() / 2);
    let mut trailing = msg("ABC123", "edge-a", 9, good.clone());
    trailing.push(0);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not postcard at all, just text".to_vec(), "malformed"),
        (truncated, "malformed"),
        (trailing, "malformed"),
        (vec![0u8; tutti_cluster::MAX_MESSAGE + 1], "malformed"),
        (wrong_schema.encode(), "wrong_schema"),
        (msg("ZZZ999", "edge-a", 9, good.clone()), "wrong_show"),
        (msg("ABC123", "edge-x", 9, good.clone()), "unknown_edge"),
        (msg("ABC123", "edge-a", 5, good.clone()), "replayed"),
        (msg("ABC123", "edge-a", 4, good.clone()), "replayed"),
        (msg("ABC123", "edge-a", 9, other), "invalid"),
    ];
    for (bytes, kind) in &cases {
        let e = inbox.accept(bytes, 1.0).unwrap_err();
        assert_eq!(e.kind(), *kind, "{e}");
        assert!(!e.to_string().is_empty());
    }
    for kind in ["malformed", "wrong_show", "unknown_edge", "replayed"] {
        assert!(inbox.rejects().get(kind) >= 1, "{kind}");
    }
    assert_eq!(inbox.rejects().total(), cases.len() as u64);
    // What is merged is still the one good message's crowd.
    let mut out = Partials::empty(&cfg, 1.0);
    let r = inbox.merge_into(1.0, 1.0, 1.0, &mut out);
    assert_eq!((r.edges, r.participants), (1, 1));
    assert_eq!(out, {
        let mut m = Partials::empty(&cfg, 1.0);
        m.merge_sparse(&good.to_sparse()).unwrap();
        m
    });
    // A non-finite time is invalid too: the same bytes with the partials' time made NaN.
    let mut nan = msg("ABC123", "edge-a", 9, good.clone());
    let t = good.time().to_le_bytes();
    let at = nan
        .windows(8)
        .position(|w| w == t)
        .expect("the time's bytes");
    nan[at..at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    assert_eq!(inbox.accept(&nan, 1.0).unwrap_err().kind(), "invalid");
}

#[test]
fn a_partitioned_edge_stops_counting_and_comes_back() {
    let cfg = cfg();
    let mut inbox = PartialsInbox::new("S1", cfg.clone());
    let mut crowds = Vec::new();
    for (k, name) in ["a", "b"].iter().enumerate() {
        inbox.admit(edge(name));
        let mut e = Engine::new(cfg.clone()).unwrap();
        for i in 0..(k as u32 + 1) * 10 {
            let p = e.join(None, 1.0).unwrap();
            for (param, v) in inputs(&cfg, i) {
                e.submit(p, param, v, 0.0).unwrap();
            }
        }
        crowds.push(e);
    }
    inbox
        .accept(&msg("S1", "a", 1, crowds[0].partials(1.0)), 1.0)
        .unwrap();
    inbox
        .accept(&msg("S1", "b", 1, crowds[1].partials(1.0)), 1.0)
        .unwrap();
    let mut out = Partials::empty(&cfg, 0.0);
    assert_eq!(inbox.merge_into(1.5, 1.0, 1.5, &mut out).participants, 30);
    // b goes quiet: after a second its crowd no longer counts.
    inbox
        .accept(&msg("S1", "a", 2, crowds[0].partials(2.5)), 2.5)
        .unwrap();
    let r = inbox.merge_into(2.6, 1.0, 2.6, &mut out);
    assert_eq!((r.edges, r.stale, r.participants), (1, 1, 10));
    // It comes back: counted again.
    inbox
        .accept(&msg("S1", "b", 2, crowds[1].partials(2.7)), 2.7)
        .unwrap();
    assert_eq!(inbox.merge_into(2.8, 1.0, 2.8, &mut out).participants, 30);
    // An edge that left is forgotten.
    assert!(inbox.forget(&edge("b")));
    assert_eq!(inbox.merge_into(2.8, 1.0, 2.8, &mut out).participants, 10);
    assert_eq!(
        inbox
            .accept(&msg("S1", "b", 3, crowds[1].partials(2.9)), 2.9)
            .unwrap_err()
            .kind(),
        "unknown_edge"
    );
}

fn state(conductor: &str, term: u64, tick: u64) -> Vec<u8> {
    StateMsg {
        schema: SCHEMA,
        show: "S1".into(),
        conductor: edge(conductor),
        term,
        seq: tick,
        tick,
        status: Status::Live,
        audience: format!(r#"{{"type":"state","tick":{tick}}}"#).into_bytes(),
    }
    .encode()
}

#[test]
fn an_edge_takes_states_of_the_current_term_in_order_only() {
    let mut inbox = StateInbox::new("S1");
    assert!(inbox.conductor().is_none());
    let m = inbox.accept(&state("n1", 1, 10)).unwrap();
    assert_eq!(m.audience, br#"{"type":"state","tick":10}"#);
    inbox.accept(&state("n1", 1, 11)).unwrap();
    let kind = |r: Result<StateMsg, Reject>| r.unwrap_err().kind();
    assert_eq!(kind(inbox.accept(&state("n1", 1, 11))), "replayed");
    assert_eq!(kind(inbox.accept(&state("n1", 1, 3))), "replayed");
    assert_eq!(kind(inbox.accept(&state("n2", 1, 12))), "two_conductors");
    assert_eq!(kind(inbox.accept(b"\xff\xff")), "malformed");
    let mut other = StateMsg::decode(&state("n1", 1, 12)).unwrap();
    other.show = "S2".into();
    assert_eq!(kind(inbox.accept(&other.encode())), "wrong_show");
    // A takeover: n2's term 2 is taken, after which n1's term 1 is stale.
    inbox.accept(&state("n2", 2, 12)).unwrap();
    assert_eq!(
        inbox.conductor().map(|(t, c)| (t, c.as_str())),
        Some((2, "n2"))
    );
    assert_eq!(kind(inbox.accept(&state("n1", 1, 13))), "stale_term");
    inbox.accept(&state("n2", 2, 13)).unwrap();
    assert_eq!(inbox.rejects().total(), 6);
    assert_eq!(inbox.rejects().get("replayed"), 2);
}

/// A paused show's conductor publishes its tick again: a new sequence with the same tick
/// is taken (its status with it); a replayed sequence, or a tick that goes back, is not.
#[test]
fn a_paused_conductor_republishes_its_tick_with_a_new_sequence() {
    let msg = |seq: u64, tick: u64, status: Status| {
        let mut m = StateMsg::decode(&state("n1", 1, tick)).unwrap();
        m.seq = seq;
        m.status = status;
        m.encode()
    };
    let mut inbox = StateInbox::new("S1");
    inbox.accept(&msg(1, 10, Status::Live)).unwrap();
    let m = inbox.accept(&msg(2, 10, Status::Paused)).unwrap();
    assert_eq!((m.tick, m.status), (10, Status::Paused));
    inbox.accept(&msg(3, 10, Status::Paused)).unwrap();
    let kind = |r: Result<StateMsg, Reject>| r.unwrap_err().kind();
    assert_eq!(kind(inbox.accept(&msg(3, 10, Status::Paused))), "replayed");
    assert_eq!(kind(inbox.accept(&msg(2, 10, Status::Live))), "replayed");
    assert_eq!(kind(inbox.accept(&msg(9, 9, Status::Live))), "replayed");
    inbox.accept(&msg(4, 11, Status::Live)).unwrap();
    inbox.accept(&msg(5, 11, Status::Ended)).unwrap();
    assert_eq!(inbox.rejects().get("replayed"), 3);
    // A status this schema does not know is not a message.
    let mut bytes = msg(6, 11, Status::Ended);
    let at = bytes.len() - 1 - br#"{"type":"state","tick":11}"#.len() - 1;
    assert_eq!(bytes[at], 3, "the status's variant index");
    bytes[at] = 9;
    assert_eq!(kind(inbox.accept(&bytes)), "malformed");
}

#[test]
fn edge_names_are_checked() {
    for ok in ["edge-1", "a", "node_2.local"] {
        assert!(EdgeId::new(ok).is_some(), "{ok}");
    }
    for bad in ["", "Edge", "a b", "é", &"x".repeat(65)] {
        assert!(EdgeId::new(bad).is_none(), "{bad}");
    }
}
