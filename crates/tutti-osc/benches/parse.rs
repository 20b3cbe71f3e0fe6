//! OSC decode cost: one performer command packet, and one 8-message state bundle encoded.
//! `cargo bench -p tutti-osc --bench parse`

use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let packet = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: "/tutti/blend/intensity".into(),
        args: vec![rosc::OscType::Float(0.8), rosc::OscType::Float(0.5)],
    }))
    .unwrap();
    c.bench_function("osc_decode_command", |b| {
        b.iter(|| tutti_osc::parse_packet(std::hint::black_box(&packet)).unwrap())
    });
    let names: Vec<String> = (0..8).map(|i| format!("/tutti/param{i}")).collect();
    let mut buf = Vec::with_capacity(512);
    c.bench_function("osc_encode_state_bundle_8", |b| {
        b.iter(|| {
            tutti_osc::encode_bundle(
                SystemTime::now(),
                names.iter().map(|n| (n.as_str(), 0.5f32)),
                &mut buf,
            )
            .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
