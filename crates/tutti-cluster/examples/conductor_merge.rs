//! Issue 14's conductor benchmark: one show's conductor taking the partials of many edges
//! each tick (decode and check every message, merge the fresh ones, finish the tick with
//! `Engine::tick_from`), timed tick by tick.
//!
//!     cargo run --release -p tutti-cluster --example conductor_merge [EDGES] [TICKS] [PHONES_PER_EDGE]
//!
//! Defaults: 1,000 edges, 400 ticks, 10 phones per edge (each with an input on every
//! parameter of the demo piece). The messages of a tick are encoded before its clock starts
//! (that is the edges' work); the figures are the conductor's.

use std::time::Instant;

use tutti_cluster::{EdgeId, PartialsInbox, PartialsMsg, SCHEMA};
use tutti_consensus::{Engine, InputValue, ParamId, ParamKind, Partials};

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (edges, ticks, phones) = (arg(1, 1000), arg(2, 400), arg(3, 10));
    let cfg = tutti_spec::PieceSpec::demo().engine_config();
    let names: Vec<EdgeId> = (0..edges)
        .map(|i| EdgeId::new(&format!("edge-{i}")).unwrap())
        .collect();
    // Each edge's crowd (built once; its partials re-exported each tick at the tick's time).
    let mut crowds: Vec<Engine> = Vec::with_capacity(edges);
    for e in 0..edges {
        let mut engine = Engine::new(cfg.clone()).unwrap();
        for k in 0..phones {
            let p = engine.join(None, 1.0).unwrap();
            for (i, pc) in cfg.params.iter().enumerate() {
                let x = ((e * 31 + k * 17 + i * 7) % 101) as f64 / 100.0;
                let v = match pc.kind {
                    ParamKind::Continuous { min, max, .. } => {
                        InputValue::Continuous(min + (max - min) * x)
                    }
                    ParamKind::Discrete { choices, .. } => {
                        InputValue::Choice(((e + k) % choices as usize) as u32)
                    }
                };
                engine.submit(p, ParamId(i as u16), v, 0.0).unwrap();
            }
        }
        crowds.push(engine);
    }
    let mut inbox = PartialsInbox::new("BENCH1", cfg.clone());
    for n in &names {
        inbox.admit(n.clone());
    }
    let mut conductor = Engine::new(cfg.clone()).unwrap();
    let mut merged = Partials::empty(&cfg, 0.0);
    let mut times_us = Vec::with_capacity(ticks);
    let mut bytes_per_tick = 0usize;
    let mut msgs: Vec<Vec<u8>> = Vec::with_capacity(edges);
    for t in 0..ticks {
        let now = t as f64 / 20.0;
        msgs.clear();
        for (e, crowd) in crowds.iter().enumerate() {
            msgs.push(
                PartialsMsg {
                    schema: SCHEMA,
                    show: "BENCH1".into(),
                    edge: names[e].clone(),
                    seq: t as u64 + 1,
                    partials: crowd.partials(now).to_sparse(),
                }
                .encode(),
            );
        }
        bytes_per_tick = msgs.iter().map(Vec::len).sum();
        let start = Instant::now();
        for m in &msgs {
            inbox.accept(m, now).expect("a good message");
        }
        let report = inbox.merge_into(now, 1.0, now, &mut merged);
        let snap = conductor
            .tick_from(&merged, now)
            .expect("merged partials fit");
        times_us.push(start.elapsed().as_secs_f64() * 1e6);
        assert_eq!(report.edges, edges);
        assert_eq!(snap.participants, (edges * phones) as u64);
    }
    // The first ticks warm the allocator and caches: the figures are over the rest.
    let warm = (ticks / 10).min(20);
    let mut sorted = times_us[warm..].to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |f: f64| sorted[((sorted.len() - 1) as f64 * f).round() as usize];
    println!(
        "conductor: {edges} edges x {phones} phones, {} ticks timed (of {ticks}): per tick p50 {:.0} us, p99 {:.0} us, max {:.0} us (budget at 20 Hz: 50,000 us)",
        sorted.len(),
        q(0.50),
        q(0.99),
        sorted[sorted.len() - 1]
    );
    println!(
        "bus: {:.1} KiB per edge message, {:.1} MiB a tick, {:.1} MiB/s into the conductor at 20 Hz",
        bytes_per_tick as f64 / edges as f64 / 1024.0,
        bytes_per_tick as f64 / 1048576.0,
        bytes_per_tick as f64 * 20.0 / 1048576.0
    );
}
