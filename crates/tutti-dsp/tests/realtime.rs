//! `process()` and the allocation-free setters never allocate: a counting global allocator
//! records every allocation made by this thread while the check is armed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tutti_dsp::{Chain, ChainConfig, Limits, Param, Processor};

struct Counting;

// Both per thread: tests run in parallel, and another test's allocations while armed must
// not count here.
thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if ARMED.try_with(|a| a.get()).unwrap_or(false) {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn armed<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCS.with(Cell::get);
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, ALLOCS.with(Cell::get) - before)
}

#[test]
fn the_counter_detects_allocations() {
    let (v, n) = armed(|| vec![1u8; 100]);
    assert_eq!(v.len(), 100);
    assert!(n >= 1);
}

#[test]
fn every_stage_processes_and_takes_control_without_allocating() {
    let dir = std::env::temp_dir().join(format!("tutti-dsp-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let ir = vec![
        tutti_dsp::bench::synthetic_ir(20_000, 1),
        tutti_dsp::bench::synthetic_ir(20_000, 2),
    ];
    tutti_dsp::write_wav(&dir.join("ir.wav"), &ir, 48_000).expect("ir");
    let toml = r#"
sample_rate = 48000
max_block = 128
[[stages]]
kind = "eq"
graphic = { count = 40, from = 20.0, to = 20000.0, gains_db = [2.0, -2.0] }
[[stages]]
kind = "compressor"
threshold_db = -20.0
[[stages]]
kind = "reverb"
[[stages]]
kind = "convolution"
ir = "ir.wav"
mode = "low_latency"
partition = 128
max_partition = 2048
[[stages]]
kind = "gain"
gain_db = -3.0
[[stages]]
kind = "pan"
pan = 0.1
[[stages]]
kind = "delay"
ms = 3.0
[[stages]]
kind = "limiter"
"#;
    let cfg = ChainConfig::from_toml_str(toml, "<rt>").expect("parse");
    let mut chain = Chain::build(&cfg, &dir, &Limits::default()).expect("build");
    let x = tutti_dsp::bench::noise(128 * 400, 3);
    let (mut l, mut r) = (x.clone(), x.clone());
    // warm up once (first-use lazies, e.g. CPU feature detection)
    chain.process(&mut l[..128], &mut r[..128]);
    let (_, n) = armed(|| {
        for (i, (a, b)) in l.chunks_mut(128).zip(r.chunks_mut(128)).enumerate() {
            if i % 50 == 7 {
                let g = if i % 100 == 7 { 6.0 } else { -6.0 };
                chain.set_param(0, Param::BandGainDb(3), g).expect("band");
                chain
                    .set_param(0, Param::BandFreq(5), 100.0 + i as f32)
                    .expect("freq");
                chain.set_param(1, Param::ThresholdDb, -30.0).expect("thr");
                chain.set_param(2, Param::Mix, 0.4).expect("mix");
                chain.set_param(2, Param::DecayS, 3.0).expect("decay");
                chain.set_param(4, Param::GainDb, g).expect("gain");
                chain.set_param(5, Param::Pan, -0.3).expect("pan");
                chain.set_param(7, Param::CeilingDb, -2.0).expect("ceiling");
                // rejected changes must not allocate either
                assert!(chain.set_param(4, Param::GainDb, 99.0).is_err());
            }
            // odd sizes exercise the partial-chunk convolution path
            let (a1, a2) = a.split_at_mut(37);
            let (b1, b2) = b.split_at_mut(37);
            chain.process(a1, b1);
            chain.process(a2, b2);
        }
    });
    assert_eq!(n, 0, "{n} allocations on the real-time path");
    assert!(l.iter().all(|v| v.is_finite()));
}
