//! Proof of the real-time rule: the audio thread never allocates, frees or logs.
//!
//! This test binary installs a checking global allocator: while a thread-local "real-time"
//! flag is set, every allocation, reallocation and deallocation on that thread is counted.
//! It also installs a thread-local `tracing` subscriber that counts every event and span
//! created while the flag is set. [`rt_region`] runs a closure with the flag set and panics
//! if anything was counted. The `#[should_panic]` siblings show the checks do fire.
//!
//! (Locks and blocking are excluded structurally: the core holds no `Mutex`, only atomics
//! and `rtrb` queues; there is no way to observe a lock from an allocator.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use tutti_audio::{Engine, EngineConfig, MasterConfig};

struct CheckingAlloc;

thread_local! {
    static RT: Cell<bool> = const { Cell::new(false) };
    static VIOLATIONS: Cell<usize> = const { Cell::new(0) };
    static LOG_EVENTS: Cell<usize> = const { Cell::new(0) };
}

static TOTAL_VIOLATIONS: AtomicUsize = AtomicUsize::new(0);

fn note() {
    // `try_with`: thread-locals may already be gone while a thread shuts down.
    let rt = RT.try_with(|f| f.get()).unwrap_or(false);
    if rt {
        let _ = VIOLATIONS.try_with(|v| v.set(v.get() + 1));
        TOTAL_VIOLATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

#[allow(unsafe_code)]
// SAFETY: every method forwards to the system allocator unchanged; the only extra work is
// reading/writing `const`-initialised thread-locals and an atomic, which never allocate.
unsafe impl GlobalAlloc for CheckingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CheckingAlloc = CheckingAlloc;

/// A subscriber that counts every event/span on a thread while the RT flag is set.
struct CountingSubscriber;

impl tracing::Subscriber for CountingSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if RT.with(|f| f.get()) {
            LOG_EVENTS.with(|c| c.set(c.get() + 1));
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {
        if RT.with(|f| f.get()) {
            LOG_EVENTS.with(|c| c.set(c.get() + 1));
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Runs `f` as "audio thread" code; panics if it allocated, freed or logged.
fn rt_region<R>(f: impl FnOnce() -> R) -> R {
    VIOLATIONS.with(|v| v.set(0));
    LOG_EVENTS.with(|v| v.set(0));
    RT.with(|r| r.set(true));
    let out = f();
    RT.with(|r| r.set(false));
    let allocs = VIOLATIONS.with(|v| v.get());
    let logs = LOG_EVENTS.with(|v| v.get());
    assert_eq!(
        allocs, 0,
        "allocated or freed on the audio thread {allocs} times"
    );
    assert_eq!(logs, 0, "logged on the audio thread {logs} times");
    out
}

fn with_subscriber<R>(f: impl FnOnce() -> R) -> R {
    let dispatch = tracing::Dispatch::new(CountingSubscriber);
    tracing::dispatcher::with_default(&dispatch, f)
}

#[test]
fn the_audio_thread_never_allocates_frees_or_logs() {
    with_subscriber(|| {
        let dir = tempfile::tempdir().unwrap();
        let (handle, mut core) = Engine::new(EngineConfig::default()).unwrap();
        let block = handle.block_frames();
        let mut l = vec![0.0f32; block];
        let mut r = vec![0.0f32; block];
        // Everything that taps the output is on: recording, the live stream, monitoring.
        let recording = handle
            .start_recording(&dir.path().join("show.wav"))
            .unwrap();
        let mut reader = handle.stream_tap().unwrap();
        let mut pcm = Vec::with_capacity(1 << 20);

        let drone_amp = handle.control_id("drone.amp").unwrap();
        let cutoff = handle.control_id("drone.cutoff").unwrap();
        let pattern = handle.control_id("rhythm.pattern").unwrap();
        let density = handle.control_id("granular.density").unwrap();
        let gain = handle.control_id("master.gain").unwrap();
        let mix = handle.control_id("master.reverb_mix").unwrap();
        let clip = handle
            .decode(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/sine440.wav"
            )))
            .unwrap();
        let mut ir = vec![0.0f32; 4800];
        ir[0] = 0.7;
        ir[1200] = 0.2;
        ir[4799] = 0.05;

        for i in 0..2000 {
            // Control side (another thread in a show): sets, swaps, loads.
            handle.set(drone_amp, (i % 7) as f32 / 7.0).unwrap();
            handle.set(cutoff, 200.0 + (i % 13) as f32 * 500.0).unwrap();
            handle.set(density, 1.0 + (i % 60) as f32).unwrap();
            handle.set(mix, (i % 5) as f32 / 5.0).unwrap();
            handle.set(gain, 0.5 + (i % 3) as f32 * 0.25).unwrap();
            if i % 100 == 0 {
                handle.set(pattern, ((i / 100) % 3) as f32).unwrap();
            }
            match i {
                100 => handle.set_impulse_response_samples(&[ir.clone()]).unwrap(),
                300 => handle
                    .set_chain(&MasterConfig::default().chain, dir.path())
                    .unwrap(),
                500 => handle.play_clip(clip.clone(), true).unwrap(),
                700 => handle.set_grain_source_internal(42).unwrap(),
                900 => handle
                    .set_impulse_response_samples(&[vec![0.5; 64], vec![0.25; 64]])
                    .unwrap(),
                1100 => handle.play_clip(clip.clone(), false).unwrap(),
                1300 => handle.stop_player().unwrap(),
                1500 => handle.set_impulse_response(None, 0.0).unwrap(),
                _ => {}
            }
            // Audio side: the guarded region.
            rt_region(|| core.process(&mut l, &mut r));
            // Odd-sized calls too (a sound card may ask for any size).
            rt_region(|| {
                let n = 1 + i % 97;
                core.process(&mut l[..n], &mut r[..n]);
            });
            reader.read_pcm(&mut pcm, 4096);
            if pcm.len() > (1 << 19) {
                pcm.clear();
            }
            handle.collect_garbage();
        }
        let stats = handle.stats();
        assert!(stats.swaps >= 4, "swaps ran: {stats:?}");
        assert!(handle.latest_monitor().is_some());
        let summary = recording.stop().unwrap();
        assert!(summary.frames > 0);
    });
}

#[test]
#[should_panic(expected = "allocated or freed on the audio thread")]
fn the_check_fails_when_the_audio_thread_allocates() {
    with_subscriber(|| {
        let (_handle, mut core) = Engine::new(EngineConfig::default()).unwrap();
        let mut l = vec![0.0f32; 256];
        let mut r = vec![0.0f32; 256];
        rt_region(|| {
            core.process(&mut l, &mut r);
            // A deliberate allocation inside the guarded region.
            let v = std::hint::black_box(vec![1u8; 64]);
            std::hint::black_box(&v);
        });
    });
}

#[test]
#[should_panic(expected = "logged on the audio thread")]
fn the_check_fails_when_the_audio_thread_logs() {
    with_subscriber(|| {
        rt_region(|| {
            tracing::info!("this would block on a slow log writer");
        });
    });
}
