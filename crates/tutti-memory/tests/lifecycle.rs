//! The lifecycle against a real store: start, append (buffered), complete; a whole episode at
//! once; everything retrievable after a restart (the indexes rebuilt from every episode);
//! an episode left open completes as "interrupted"; ratings; text search; `check` finds and
//! repairs damage; a failed derived update is journalled and repaired; bad input stores
//! nothing.

mod common;

use common::{open, WAIT};
use tutti_memory::synth::{self, ShowShape};
use tutti_memory::{
    Access, Context, Durable, EpisodeQuery, Moment, MomentQuery, Outcome, Record, Step,
};

fn ctx(kind: &str, piece: &str, text: &str) -> Context {
    Context {
        kind: kind.into(),
        piece: Some(piece.into()),
        text: text.into(),
        tags: vec!["t1".into()],
        ..Context::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_episode_lives_through_start_append_complete_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let dims = vec![
        "a".to_string(),
        "b".to_string(),
        "participation".to_string(),
    ];
    {
        let (store, mem) = open(dir.path()).await;
        let ack = mem
            .start(
                Some("ep-1".into()),
                ctx("rehearsal", "demo", "first run of the storm section"),
                Some(dims.clone()),
                1_000,
            )
            .await
            .unwrap();
        assert_eq!(ack.durable, Durable::Store);
        for i in 0..30 {
            mem.append_moments(
                "ep-1",
                &[Moment {
                    at_ms: 1_000 + i * 1_000,
                    section: Some(if i < 15 { "calm" } else { "storm" }.into()),
                    vector: vec![i as f32 / 30.0, 0.5, 0.8],
                }],
            )
            .unwrap();
        }
        mem.append_steps(
            "ep-1",
            &[Step {
                at_ms: 5_000,
                kind: "override".into(),
                data: serde_json::json!({"label": "a lock"}),
            }],
        )
        .unwrap();
        let done = mem
            .complete(
                "ep-1",
                Outcome {
                    rating: Some(0.9),
                    notes: "great ending".into(),
                    ..Outcome::default()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(done.durable, Durable::Store);
        assert!(mem.flush(WAIT).await);
        let v = mem.episode(done.id.unwrap(), 100).await.unwrap().unwrap();
        assert_eq!(v.status, "completed");
        assert_eq!(v.moment_count, 30);
        assert_eq!(v.step_count, 1);
        assert!(v.indexed);
        // Engagement measured from the participation dimension (0.8), in the reward.
        assert!((v.engagement.unwrap().participation.unwrap() - 0.8).abs() < 1e-6);
        assert!(v.reward.unwrap() > 0.8);
        // A second episode left open: a crash.
        mem.start(
            Some("ep-2".into()),
            ctx("rehearsal", "demo", "cut short"),
            Some(dims.clone()),
            50_000,
        )
        .await
        .unwrap();
        mem.append_moments(
            "ep-2",
            &[Moment {
                at_ms: 51_000,
                section: None,
                vector: vec![0.1, 0.2, 0.3],
            }],
        )
        .unwrap();
        assert!(mem.flush(WAIT).await);
        // No complete, no close: as after `kill -9`.
        drop(mem);
        store.close().await.unwrap();
    }
    let (_store, mem) = open(dir.path()).await;
    let st = mem.status();
    assert_eq!(st.index.episodes, 2, "{st:?}");
    assert_eq!(st.index.moments, 31);
    let ep2 = mem.latest_of("nothing").await.unwrap();
    assert!(ep2.is_none());
    let hits = mem
        .search_moments(
            &MomentQuery {
                kind: "rehearsal".into(),
                piece: Some("demo".into()),
                vector: vec![0.1, 0.2, 0.3],
                k: 1,
                ..MomentQuery::default()
            },
            &Access::All,
        )
        .unwrap();
    assert_eq!(hits.hits[0].episode_key, "ep-2");
    let v = mem
        .episode(hits.hits[0].episode_id, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.status, "interrupted");
    assert_eq!(v.ended_at_ms, Some(51_000));
    // Text search finds the notes of the first.
    let t = mem
        .search_text("ending", None, None, 5, &Access::All)
        .await
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].key, "ep-1");
    // Rating afterwards changes the reward.
    let before = mem
        .episode(t[0].episode_id, 0)
        .await
        .unwrap()
        .unwrap()
        .reward
        .unwrap();
    mem.rate(t[0].episode_id, 0.0, Some("on reflection, weak".into()))
        .await
        .unwrap();
    assert!(mem.flush(WAIT).await);
    let after = mem.episode(t[0].episode_id, 0).await.unwrap().unwrap();
    assert!(after.reward.unwrap() < before);
    assert_eq!(
        mem.search_text("weak", None, None, 5, &Access::All)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(mem
        .search_text("ending", None, None, 5, &Access::All)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_episode_is_retrievable_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let shape = ShowShape {
        moments: 60,
        ..ShowShape::default()
    };
    let n = 60u64;
    {
        let (store, mem) = open(dir.path()).await;
        for i in 0..n {
            mem.record(synth::show(i, 1, &shape)).await.unwrap();
        }
        for i in 0..200 {
            mem.record(synth::small(i, 2)).await.unwrap();
        }
        assert!(mem.flush(WAIT).await);
        mem.close(WAIT).await;
        store.close().await.unwrap();
    }
    let (_s, mem) = open(dir.path()).await;
    let st = mem.status();
    assert_eq!(st.index.episodes, n + 200);
    assert_eq!(st.index.moments, n * 60);
    // 3,600 moments: above the test threshold, so the approximate index was rebuilt too.
    assert_eq!(st.index.approximate_spaces, 1);
    // Each show's own moment finds it, exactly and approximately.
    for i in [0u64, 17, 59] {
        let r = synth::show(i, 1, &shape);
        let v = r.moments[30].vector.clone();
        for exact in [true, false] {
            let hits = mem
                .search_moments(
                    &MomentQuery {
                        kind: "show".into(),
                        piece: Some("synthetic".into()),
                        vector: v.clone(),
                        k: 1,
                        exact,
                        ..MomentQuery::default()
                    },
                    &Access::All,
                )
                .unwrap();
            assert_eq!(hits.hits[0].episode_key, r.key.clone().unwrap());
            assert!(hits.hits[0].why.distance < 1e-4);
        }
    }
    // Each small episode finds itself first among similar ones (by its text).
    let id = mem.latest_of("x").await.unwrap();
    assert!(id.is_none());
    let some = mem
        .search_text("synthetic", Some("show".into()), None, 3, &Access::All)
        .await
        .unwrap();
    assert_eq!(some.len(), 3);
    let like = mem
        .similar_episodes(
            &EpisodeQuery {
                episode_id: Some(some[0].episode_id),
                k: 5,
                ..EpisodeQuery::default()
            },
            &Access::All,
        )
        .unwrap();
    assert_eq!(like.len(), 5);
    assert!(like
        .iter()
        .all(|h| h.kind == "show" && h.episode_id != some[0].episode_id));
    assert!(like[0].why.details["structure"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_stores_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mem) = open(dir.path()).await;
    let good = || Record {
        key: Some("r1".into()),
        context: ctx("task", "cli", "x"),
        dims: Some(vec!["a".into(), "b".into()]),
        moments: vec![Moment {
            at_ms: 1,
            section: None,
            vector: vec![0.0, 1.0],
        }],
        ..Record::default()
    };
    let cases: Vec<(Record, &str)> = vec![
        (
            Record {
                moments: vec![Moment {
                    at_ms: 1,
                    section: None,
                    vector: vec![0.0],
                }],
                ..good()
            },
            "dimension_mismatch",
        ),
        (
            Record {
                moments: vec![Moment {
                    at_ms: 1,
                    section: None,
                    vector: vec![0.0, f32::NAN],
                }],
                ..good()
            },
            "non_finite_vector",
        ),
        (
            Record {
                context: ctx("Bad Kind", "cli", ""),
                ..good()
            },
            "validation_failed",
        ),
        (
            Record {
                context: ctx("task", "cli", &"x".repeat(9000)),
                ..good()
            },
            "too_large",
        ),
        (
            Record {
                steps: (0..10_001)
                    .map(|i| Step {
                        at_ms: i,
                        kind: "s".into(),
                        data: serde_json::Value::Null,
                    })
                    .collect(),
                ..good()
            },
            "too_large",
        ),
        (
            Record {
                dims: None,
                ..good()
            },
            "dimension_mismatch",
        ),
        (
            Record {
                outcome: Some(Outcome {
                    rating: Some(1.5),
                    ..Outcome::default()
                }),
                ..good()
            },
            "validation_failed",
        ),
        (
            Record {
                outcome: Some(Outcome {
                    rating: Some(f64::NAN),
                    ..Outcome::default()
                }),
                ..good()
            },
            "non_finite_vector",
        ),
    ];
    for (r, code) in cases {
        let e = mem.record(r).await.unwrap_err();
        assert_eq!(e.code(), code, "{e}");
    }
    for k in [0usize, 1_000_000] {
        let e = mem
            .search_moments(
                &MomentQuery {
                    kind: "task".into(),
                    vector: vec![0.0],
                    k,
                    ..MomentQuery::default()
                },
                &Access::All,
            )
            .unwrap_err();
        assert_eq!(e.code(), "invalid_limit");
    }
    let e = mem
        .search_moments(
            &MomentQuery {
                kind: "show".into(),
                piece: Some("nope".into()),
                vector: vec![0.0],
                ..MomentQuery::default()
            },
            &Access::All,
        )
        .unwrap_err();
    assert_eq!(e.code(), "unknown_piece");
    assert!(mem.flush(WAIT).await);
    let counts = store.memory_counts().await.unwrap();
    assert_eq!(
        (counts.open, counts.done, counts.steps, counts.moments),
        (0, 0, 0, 0)
    );
    // The good one goes in whole; a vector of the wrong length for its space is refused.
    mem.record(good()).await.unwrap();
    assert!(mem.flush(WAIT).await);
    let e = mem
        .search_moments(
            &MomentQuery {
                kind: "task".into(),
                piece: Some("cli".into()),
                vector: vec![0.0, 1.0, 2.0],
                ..MomentQuery::default()
            },
            &Access::All,
        )
        .unwrap_err();
    assert_eq!(e.code(), "dimension_mismatch");
    // Appending to a completed episode is refused with its own code.
    let e = mem
        .append(
            "r1",
            &[Step {
                at_ms: 5,
                kind: "s".into(),
                data: serde_json::Value::Null,
            }],
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "episode_ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_damage_and_a_failed_derive_is_journalled_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mem) = open(dir.path()).await;
    for i in 0..20 {
        mem.record(synth::small(i, 5)).await.unwrap();
    }
    assert!(mem.flush(WAIT).await);
    let ok = mem.check(false).await.unwrap();
    assert!(ok.ok, "{ok:?}");
    // A derived update that fails is journalled, then repaired by the flusher.
    mem.inject_derive_failures(1);
    mem.record(synth::small(100, 5)).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let st = mem.status();
        if st.derive_failures == 1 && st.repaired_total >= 1 && st.index.episodes == 21 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never repaired: {st:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(store.memory_journal_pending().await.unwrap().is_empty());
    // Damage: counters and the text index disagree with the rows.
    store
        .memory_test_sql(
            "UPDATE mem_episodes SET steps = steps + 3 WHERE id = 1; \
             INSERT INTO mem_fts(mem_fts, rowid, text, notes) VALUES ('delete', 2, \
             (SELECT text FROM mem_episodes WHERE id = 2), (SELECT notes FROM mem_episodes WHERE id = 2));",
        )
        .await
        .unwrap();
    let bad = mem.check(false).await.unwrap();
    assert!(!bad.ok);
    assert_eq!(bad.counter_mismatches, 1);
    assert!(!bad.fts_ok);
    let fixed = mem.check(true).await.unwrap();
    assert!(fixed.ok && fixed.repaired, "{fixed:?}");
}
