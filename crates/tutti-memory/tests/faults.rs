//! Faults and concurrency: the store fails or stalls (a writer around it that does so on
//! purpose) while an episode records and others are acknowledged: appends never wait, the
//! breaker opens, acknowledged writes go to the spill, and once the store is back the breaker
//! closes, the spill is replayed and nothing acknowledged is missing or doubled; a spill left
//! by a crash is replayed at the next start; many episodes complete at once while queries run,
//! without a deadlock.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use common::{open, open_with, WAIT};
use tutti_memory::synth::{self, ShowShape};
use tutti_memory::{
    Access, BreakerState, Context, Durable, EpisodeQuery, Moment, MomentQuery, Writer,
};
use tutti_store::{MemWrite, MemWriteDone, Store, StoreError};

const OK: u8 = 0;
const FAIL: u8 = 1;
const STALL: u8 = 2;

struct Faulty {
    store: Store,
    mode: Arc<AtomicU8>,
}

impl Writer for Faulty {
    fn write(
        &self,
        units: Vec<MemWrite>,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Vec<Result<MemWriteDone, StoreError>>, StoreError>>
                + Send
                + '_,
        >,
    > {
        Box::pin(async move {
            loop {
                match self.mode.load(Relaxed) {
                    FAIL => {
                        return Err(StoreError::Commit {
                            path: "test".into(),
                            detail: "disk I/O error (injected)".into(),
                        })
                    }
                    STALL => tokio::time::sleep(Duration::from_millis(20)).await,
                    _ => return self.store.memory_write(units).await,
                }
            }
        })
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ctx() -> Context {
    Context {
        kind: "show".into(),
        piece: Some("demo".into()),
        ..Context::default()
    }
}

async fn through_a_fault(mode_during: u8) {
    let dir = tempfile::tempdir().unwrap();
    let store = common::store(dir.path());
    let mode = Arc::new(AtomicU8::new(OK));
    let (_, mem) = open_with(
        dir.path(),
        Arc::new(Faulty {
            store: store.clone(),
            mode: mode.clone(),
        }),
    )
    .await;
    let dims = vec!["x".to_string(), "y".to_string()];
    mem.start(Some("live".into()), ctx(), Some(dims.clone()), 0)
        .await
        .unwrap();
    let mut appended = 0;
    let mut append = |mem: &tutti_memory::Memory, n: usize| {
        for _ in 0..n {
            mem.append_moments(
                "live",
                &[Moment {
                    at_ms: appended as i64 * 1000,
                    section: None,
                    vector: vec![appended as f32, 1.0],
                }],
            )
            .expect("appends never fail or wait");
            appended += 1;
        }
    };
    append(&mem, 10);
    assert!(mem.flush(WAIT).await);

    mode.store(mode_during, Relaxed);
    append(&mem, 50);
    let mut acked = Vec::new();
    for i in 0..5 {
        let ack = mem.record(synth::small(i, 9)).await.unwrap();
        assert_eq!(
            ack.durable,
            Durable::Spill,
            "acknowledged from the spill while the store is down"
        );
        acked.push(ack.key);
    }
    wait_for("the breaker to open", || {
        mem.status().breaker == BreakerState::Open
    })
    .await;
    append(&mem, 50);
    assert!(mem.status().breaker_opens >= 1);

    mode.store(OK, Relaxed);
    wait_for("the breaker to close", || {
        mem.status().breaker == BreakerState::Closed
    })
    .await;
    let done = mem
        .complete("live", Default::default(), None)
        .await
        .unwrap();
    assert_eq!(done.durable, Durable::Store);
    assert!(mem.flush(WAIT).await);
    let st = mem.status();
    assert_eq!(st.spilled, 0, "{st:?}");
    assert!(st.replayed_total > 0);
    for key in &acked {
        let e = store
            .memory_episode_by_key(key)
            .await
            .unwrap()
            .expect("acknowledged, so stored");
        assert_eq!(e.status.as_str(), "completed");
    }
    let live = store.memory_episode_by_key("live").await.unwrap().unwrap();
    assert_eq!(live.moments, appended as i64, "every moment once");
    assert_eq!(store.memory_counts().await.unwrap().counter_mismatches, 0);
    let full = store.memory_episode(live.id).await.unwrap().unwrap();
    let v = mem.view(&full, usize::MAX).unwrap();
    let xs: Vec<f32> = v.moments.iter().map(|m| m.vector[0]).collect();
    assert_eq!(
        xs,
        (0..appended).map(|i| i as f32).collect::<Vec<_>>(),
        "in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_opens_the_breaker_and_loses_nothing() {
    through_a_fault(FAIL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_opens_the_breaker_and_loses_nothing() {
    through_a_fault(STALL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spill_left_by_a_crash_is_replayed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let keys = {
        let store = common::store(dir.path());
        let mode = Arc::new(AtomicU8::new(FAIL));
        let (_, mem) = open_with(
            dir.path(),
            Arc::new(Faulty {
                store: store.clone(),
                mode,
            }),
        )
        .await;
        let mut keys = Vec::new();
        for i in 0..20 {
            keys.push(mem.record(synth::small(i, 7)).await.unwrap().key);
        }
        assert!(mem.status().spilled >= 20);
        // Crash: nothing more.
        drop(mem);
        store.close().await.unwrap();
        keys
    };
    let (store, mem) = open(dir.path()).await;
    assert_eq!(mem.status().index.episodes, 20);
    assert_eq!(mem.status().spilled, 0);
    for k in keys {
        assert!(store.memory_episode_by_key(&k).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_episodes_complete_at_once_while_queries_run() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mem) = open(dir.path()).await;
    let shape = ShowShape {
        moments: 40,
        ..ShowShape::default()
    };
    mem.record(synth::show(0, 1, &shape)).await.unwrap();
    assert!(mem.flush(WAIT).await);
    let work = async {
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let mem = mem.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25u64 {
                    mem.record(synth::show(
                        1 + t * 100 + i,
                        1,
                        &ShowShape {
                            moments: 40,
                            ..ShowShape::default()
                        },
                    ))
                    .await
                    .unwrap();
                }
            }));
        }
        for _ in 0..3 {
            let mem = mem.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..200 {
                    let q = MomentQuery {
                        kind: "show".into(),
                        piece: Some("synthetic".into()),
                        vector: vec![0.5; 16],
                        k: 5,
                        diversity: Some(if i % 2 == 0 { 0.0 } else { 0.5 }),
                        ..MomentQuery::default()
                    };
                    let r = mem.search_moments(&q, &Access::All).unwrap();
                    assert!(!r.hits.is_empty());
                    let _ = mem.similar_episodes(
                        &EpisodeQuery {
                            episode_id: Some(r.hits[0].episode_id),
                            k: 3,
                            ..EpisodeQuery::default()
                        },
                        &Access::All,
                    );
                    let _ = mem.patterns("show", Some("synthetic")).unwrap();
                    tokio::task::yield_now().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(mem.flush(WAIT).await);
    };
    tokio::time::timeout(Duration::from_secs(120), work)
        .await
        .expect("no deadlock");
    assert_eq!(mem.status().index.episodes, 201);
    assert_eq!(store.memory_counts().await.unwrap().done, 201);
}
