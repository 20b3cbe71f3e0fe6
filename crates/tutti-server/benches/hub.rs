//! The hub's per-input work before the tick: validating a client frame and mutating the
//! show's state (engine submit under the show lock), with 2,500 participants joined.
//! `cargo bench -p tutti-server --bench hub`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tutti_protocol::ClientFrame;
use tutti_server::show::{HubStats, ShowRuntime};
use tutti_spec::PieceSpec;
use tutti_store::{ShowStatus, Store, StoreConfig};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path().join("bench.db"))).unwrap();
    let show = ShowRuntime::new(
        "BENCH".into(),
        1,
        Arc::new(PieceSpec::demo()),
        ShowStatus::Live,
        String::new(),
        Arc::new(HubStats::default()),
        store,
        120.0,
    )
    .unwrap();
    let who: Vec<_> = (0..2500)
        .map(|_| show.join_audience(None, None).unwrap().id)
        .collect();
    let text = r#"{"type":"input","param":"intensity","value":0.42,"seq":17}"#;
    c.bench_function("frame_validate", |b| {
        b.iter(|| ClientFrame::parse(std::hint::black_box(text)).unwrap())
    });
    let mut i = 0usize;
    c.bench_function("frame_validate_and_apply", |b| {
        b.iter(|| {
            let f = ClientFrame::parse(std::hint::black_box(text)).unwrap();
            if let ClientFrame::Input { param, value, .. } = f {
                i = (i + 1) % who.len();
                show.input(who[i], &param, value).unwrap();
            }
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
