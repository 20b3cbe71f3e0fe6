//! The memory's write path in the store: a write's units are each all or nothing, a unit that
//! fails leaves the others to commit (whether it fails first, in the middle or last), a whole
//! episode stored at once leaves the same rows as the same episode written operation by
//! operation, and the text index (FTS5) stays in step with the episodes through all of it.

use std::path::PathBuf;

use tempfile::TempDir;
use tutti_store::{
    MemChunkRow, MemContext, MemEpisodeFull, MemOp, MemStatus, MemStepRow, MemWrite, Store,
    StoreConfig, StoreError,
};

fn open(dir: &TempDir) -> Store {
    let path: PathBuf = dir.path().join("tutti.db");
    Store::open(StoreConfig::new(path)).expect("open store")
}

fn ctx(text: &str) -> MemContext {
    MemContext {
        kind: "task".into(),
        piece: Some("web".into()),
        spec_version: None,
        ensemble_id: Some(3),
        subject: Some("job:1".into()),
        venue: None,
        tags: vec!["rust".into(), "web".into()],
        text: text.into(),
    }
}

fn start(key: &str, text: &str) -> MemOp {
    MemOp::Start {
        key: key.into(),
        context: ctx(text),
        dims_json: Some(r#"["a","b"]"#.into()),
        started_at_ms: 1_000,
    }
}

fn steps(key: &str, first: i64, n: i64) -> MemOp {
    MemOp::Steps {
        key: key.into(),
        steps: (first..first + n)
            .map(|seq| MemStepRow {
                seq,
                at_ms: 1_000 + seq * 10,
                kind: "edit".into(),
                data_json: format!(r#"{{"label":"step {seq}"}}"#),
            })
            .collect(),
    }
}

fn moments(key: &str) -> MemOp {
    MemOp::Moments {
        key: key.into(),
        chunk: MemChunkRow {
            first_seq: 0,
            count: 2,
            dims: 2,
            data: vec![1, 2, 3, 4, 5, 6, 7, 8],
        },
    }
}

fn complete(key: &str, notes: &str) -> MemOp {
    MemOp::Complete {
        key: key.into(),
        status: MemStatus::Completed,
        ended_at_ms: 2_000,
        rating: Some(0.75),
        notes: notes.into(),
        engagement_json: Some(r#"{"participation":0.5}"#.into()),
        reward: 0.6,
    }
}

fn unit(ops: Vec<MemOp>) -> MemWrite {
    MemWrite { ops }
}

/// A whole episode as `Memory::record` sends it.
fn whole(key: &str, text: &str, notes: &str) -> MemWrite {
    unit(vec![
        start(key, text),
        steps(key, 0, 4),
        moments(key),
        complete(key, notes),
    ])
}

async fn by_key(store: &Store, key: &str) -> Option<MemEpisodeFull> {
    let row = store.memory_episode_by_key(key).await.expect("read")?;
    store.memory_episode(row.id).await.expect("read")
}

async fn text_hits(store: &Store, word: &str) -> Vec<String> {
    let mut keys: Vec<String> = store
        .memory_search_text(word, None, None, 100)
        .await
        .expect("search")
        .into_iter()
        .map(|h| h.episode.key)
        .collect();
    keys.sort();
    keys
}

async fn assert_consistent(store: &Store) {
    let counts = store.memory_counts().await.expect("counts");
    assert!(counts.fts_ok, "text index: {:?}", counts.fts_error);
    assert_eq!(counts.counter_mismatches, 0, "{counts:?}");
}

#[tokio::test]
async fn a_whole_episode_leaves_the_rows_its_operations_one_by_one_leave() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    // At once (one unit) …
    let done = store
        .memory_write(vec![whole("at-once", "alpha words", "bravo notes")])
        .await
        .expect("write");
    let at_once = done[0].as_ref().expect("stored").clone();
    assert!(!at_once.existed);
    assert_eq!((at_once.steps, at_once.moments), (4, 2));
    assert_eq!(at_once.done_seq, Some(1));
    // … and the same episode in four writes.
    let key = "one-by-one";
    for op in [
        start(key, "alpha words"),
        steps(key, 0, 4),
        moments(key),
        complete(key, "bravo notes"),
    ] {
        store
            .memory_write(vec![unit(vec![op])])
            .await
            .expect("write")
            .pop()
            .expect("one")
            .expect("stored");
    }
    let a = by_key(&store, "at-once").await.expect("stored");
    let b = by_key(&store, key).await.expect("stored");
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.chunks, b.chunks);
    let (mut ea, mut eb) = (a.episode, b.episode);
    assert_eq!((ea.id, ea.done_seq), (at_once.episode_id, Some(1)));
    assert_eq!(eb.done_seq, Some(2));
    assert_eq!((ea.steps, ea.moments), (4, 2));
    ea.id = 0;
    eb.id = 0;
    ea.done_seq = None;
    eb.done_seq = None;
    ea.key = String::new();
    eb.key = String::new();
    assert_eq!(ea, eb);
    assert_eq!(text_hits(&store, "bravo").await, ["at-once", "one-by-one"]);
    assert_eq!(text_hits(&store, "alpha").await, ["at-once", "one-by-one"]);
    assert_consistent(&store).await;

    // Sent again (a replay), it stores nothing twice.
    let again = store
        .memory_write(vec![whole("at-once", "alpha words", "bravo notes")])
        .await
        .expect("write");
    assert!(again[0].is_err(), "{again:?}");
    let a2 = by_key(&store, "at-once").await.expect("stored");
    assert_eq!((a2.steps.len(), a2.episode.steps), (4, 4));
    assert_eq!(text_hits(&store, "bravo").await, ["at-once", "one-by-one"]);
    assert_consistent(&store).await;
}

#[tokio::test]
async fn a_failing_unit_fails_alone_wherever_it_is_in_the_write() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    // A unit that fails after it wrote: its episode is started, then steps for an episode
    // that does not exist.
    let bad = || unit(vec![start("bad", "charlie"), steps("nowhere", 0, 2)]);
    for (round, at) in [0usize, 2, 4].into_iter().enumerate() {
        let mut units: Vec<MemWrite> = (0..4)
            .map(|i| whole(&format!("r{round}-{i}"), "delta text", "echo"))
            .collect();
        units.insert(at, bad());
        let done = store.memory_write(units).await.expect("write");
        assert_eq!(done.len(), 5);
        for (i, r) in done.iter().enumerate() {
            if i == at {
                assert!(
                    matches!(r, Err(StoreError::NotFound { .. })),
                    "unit {i}: {r:?}"
                );
            } else {
                let d = r.as_ref().expect("stored");
                assert_eq!((d.steps, d.moments), (4, 2));
            }
        }
        assert!(by_key(&store, "bad").await.is_none(), "round {round}");
    }
    let seqs: Vec<i64> = {
        let mut v = Vec::new();
        for round in 0..3 {
            for i in 0..4 {
                let e = by_key(&store, &format!("r{round}-{i}"))
                    .await
                    .expect("stored");
                assert_eq!(e.steps.len(), 4);
                assert_eq!(e.chunks.len(), 1);
                v.push(e.episode.done_seq.expect("done"));
            }
        }
        v
    };
    assert_eq!(seqs, (1..=12).collect::<Vec<i64>>());
    assert_eq!(text_hits(&store, "delta").await.len(), 12);
    assert!(text_hits(&store, "charlie").await.is_empty());
    assert_consistent(&store).await;

    // Several failing units in one write, good ones between them.
    let units = vec![
        whole("s-0", "foxtrot", ""),
        bad(),
        whole("s-1", "foxtrot", ""),
        // Already completed, and not the same way (no replay): a conflict.
        unit(vec![MemOp::Complete {
            key: "s-0".into(),
            status: MemStatus::Abandoned,
            ended_at_ms: 3_000,
            rating: None,
            notes: String::new(),
            engagement_json: None,
            reward: 0.0,
        }]),
        whole("s-2", "foxtrot", ""),
        bad(),
    ];
    let done = store.memory_write(units).await.expect("write");
    let ok: Vec<bool> = done.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, false, true, false, true, false]);
    assert_eq!(text_hits(&store, "foxtrot").await, ["s-0", "s-1", "s-2"]);
    assert_consistent(&store).await;
}

#[tokio::test]
async fn text_and_notes_are_searchable_however_the_episode_was_written() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    // Started and completed with notes in one write (the text row must exist before the
    // update trigger replaces it), then rated with new notes in another.
    let units = vec![
        unit(vec![start("open-1", "golf")]),
        whole("whole-1", "hotel", "india"),
        unit(vec![steps("open-1", 0, 3)]),
        unit(vec![complete("open-1", "juliet")]),
        unit(vec![start("open-2", "kilo")]),
    ];
    let done = store.memory_write(units).await.expect("write");
    assert!(done.iter().all(Result::is_ok), "{done:?}");
    assert_eq!(text_hits(&store, "golf").await, ["open-1"]);
    assert_eq!(text_hits(&store, "juliet").await, ["open-1"]);
    assert_eq!(text_hits(&store, "india").await, ["whole-1"]);
    assert_eq!(text_hits(&store, "kilo").await, ["open-2"]);
    assert_consistent(&store).await;

    // A failing unit after the early text write: both undone together.
    let units = vec![
        unit(vec![start("open-3", "lima")]),
        unit(vec![complete("open-3", "mike"), steps("nowhere", 0, 1)]),
        unit(vec![complete("open-2", "november")]),
    ];
    let done = store.memory_write(units).await.expect("write");
    let ok: Vec<bool> = done.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, false, true]);
    assert_eq!(text_hits(&store, "lima").await, ["open-3"]);
    assert!(text_hits(&store, "mike").await.is_empty());
    assert_eq!(text_hits(&store, "november").await, ["open-2"]);
    let open3 = by_key(&store, "open-3").await.expect("stored");
    assert_eq!(open3.episode.status, MemStatus::Open);
    assert_consistent(&store).await;

    store
        .memory_write(vec![unit(vec![MemOp::Rate {
            key: "whole-1".into(),
            rating: 0.1,
            notes: Some("oscar".into()),
            reward: 0.2,
        }])])
        .await
        .expect("write")
        .pop()
        .expect("one")
        .expect("rated");
    assert!(text_hits(&store, "india").await.is_empty());
    assert_eq!(text_hits(&store, "oscar").await, ["whole-1"]);
    assert_consistent(&store).await;

    // The same when the failing unit comes after another failure (one savepoint per unit).
    let units = vec![
        unit(vec![steps("nowhere", 0, 1)]),
        unit(vec![start("p", "papa")]),
        unit(vec![complete("p", "quebec"), steps("nowhere", 0, 1)]),
        whole("w-2", "romeo", "sierra"),
    ];
    let done = store.memory_write(units).await.expect("write");
    let ok: Vec<bool> = done.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [false, true, false, true]);
    assert_eq!(text_hits(&store, "papa").await, ["p"]);
    assert!(text_hits(&store, "quebec").await.is_empty());
    assert_eq!(text_hits(&store, "sierra").await, ["w-2"]);
    assert_consistent(&store).await;

    // Still true after a reopen.
    store.close().await.expect("close");
    let store = open(&dir);
    assert_eq!(text_hits(&store, "hotel").await, ["whole-1"]);
    assert_consistent(&store).await;
}
