//! The hot path never allocates: submits and ticks are counted by a global allocator.
//!
//! This test binary installs a counting allocator (the only `unsafe` in the crate's tests:
//! `GlobalAlloc` is an unsafe trait) and checks that, once participants have joined,
//! submitting inputs, ticking (with and without the agreement term), setting and expiring
//! overrides' ticks, and exporting partials into a reused buffer allocate nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tutti_consensus::{
    Engine, EngineConfig, InputValue, Override, OverrideMode, ParamConfig, ParamId, Partials,
    Smoothing,
};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local `Cell`, which never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn exercise(agreement: f64) {
    let cfg = EngineConfig {
        params: vec![
            ParamConfig {
                smoothing: Smoothing {
                    time_constant: Some(0.5),
                    slew_per_second: Some(1.0),
                },
                ..ParamConfig::continuous(0.0, 1.0, 0.5)
            },
            ParamConfig::discrete(4, 0),
        ],
        recency_half_life: Some(0.05),
        agreement,
        ..EngineConfig::default()
    };
    let mut e = Engine::with_capacity(cfg.clone(), 1000).unwrap();
    let ids: Vec<_> = (0..1000).map(|_| e.join(None, 1.0).unwrap()).collect();
    // An override with room already made for it (overrides allocate when set, not per tick).
    e.set_override(Override {
        param: ParamId(0),
        mode: OverrideMode::Bias { amount: 0.1 },
        priority: 1,
        by: 1,
        set_at: 0.0,
        expires_at: Some(30.0),
    })
    .unwrap();
    let mut parts = Partials::empty(&cfg, 0.0);
    e.tick(0.0);

    let before = allocations();
    let mut now = 0.0;
    // Long enough (60 s with a 0.05 s half-life) to pass the rebase threshold several times.
    for tick in 0..1200u32 {
        now = f64::from(tick) * 0.05;
        for k in 0..50u32 {
            let i = ((tick * 50 + k) * 7919) as usize % ids.len();
            let x = f64::from((tick + k) % 100) / 100.0;
            e.submit(ids[i], ParamId(0), InputValue::Continuous(x), now)
                .unwrap();
            e.submit(ids[i], ParamId(1), InputValue::Choice(k % 4), now)
                .unwrap();
        }
        let s = e.tick(now);
        assert!(s.params[0].value >= 0.0);
        e.partials_into(now, &mut parts);
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "allocations on the hot path (agreement {agreement})"
    );
    assert_eq!(
        e.override_count(),
        0,
        "the override expired at 30 s (now {now})"
    );
}

#[test]
fn submit_and_tick_never_allocate() {
    exercise(0.0);
    exercise(2.0);
}
