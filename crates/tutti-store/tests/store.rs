//! Integration tests for `tutti-store` against real SQLite files in temporary directories.
//!
//! Each test opens its own fresh store. Where a test needs the writer to be stuck (to queue many
//! operations at once), a second, plain SQLite connection holds the write lock with
//! `BEGIN IMMEDIATE` until the test releases it; no test depends on timing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::task::JoinSet;
use tutti_store::{
    NewOverride, ShowKind, ShowRow, ShowStatus, SnapshotRow, SpecStatus, Store, StoreConfig,
    StoreError,
};

const DEMO_SPEC: &str = r#"{"params":[{"name":"tempo","min":60,"max":180}]}"#;

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("data").join("tutti.db")
}

fn config(dir: &TempDir) -> StoreConfig {
    let mut cfg = StoreConfig::new(db_path(dir));
    // Tests that hold the write lock from outside must never see the writer give up.
    cfg.busy_timeout = Duration::from_secs(600);
    cfg
}

fn open(dir: &TempDir) -> Store {
    Store::open(config(dir)).expect("open store")
}

async fn demo_show(store: &Store, code: &str) -> ShowRow {
    let (piece, spec) = store
        .ensure_piece("demo", "Demo piece", DEMO_SPEC)
        .await
        .expect("ensure piece");
    store
        .create_show(piece.id, spec.id, code, ShowKind::Performance)
        .await
        .expect("create show")
}

fn new_override(show_id: i64, n: i64) -> NewOverride {
    NewOverride {
        show_id,
        at_ms: 1_700_000_000_000 + n,
        actor: "performer-1".into(),
        param: "tempo".into(),
        action: "lock".into(),
        detail_json: format!(r#"{{"value":{n}}}"#),
    }
}

fn snapshot(show_id: i64, tick: u64) -> SnapshotRow {
    SnapshotRow {
        show_id,
        tick,
        at_ms: 1_700_000_000_000 + i64::try_from(tick).expect("small tick") * 50,
        state_json: format!(r#"{{"tick":{tick},"tempo":120.5}}"#),
        health_json: None,
    }
}

/// Holds SQLite's write lock on `path` from a separate connection until dropped or released, so
/// the store's writer blocks in `BEGIN IMMEDIATE` and operations pile up in its queue.
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn hold(path: &Path) -> Self {
        let conn = rusqlite::Connection::open(path).expect("open blocker connection");
        conn.execute_batch("BEGIN IMMEDIATE")
            .expect("take write lock");
        Self(conn)
    }

    fn release(self) {
        self.0.execute_batch("COMMIT").expect("release write lock");
    }
}

async fn wait_until_queued(store: &Store, n: u64) {
    while store.stats().queued < n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn pieces_shows_snapshots_and_overrides_round_trip() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);

    let (piece, spec) = store
        .ensure_piece("demo", "Demo piece", DEMO_SPEC)
        .await
        .expect("ensure piece");
    assert_eq!(piece.slug, "demo");
    assert_eq!(piece.title, "Demo piece");
    assert_eq!(spec.piece_id, piece.id);
    assert_eq!(spec.version, 1);
    assert_eq!(spec.status, SpecStatus::Current);
    assert_eq!(spec.spec_json, DEMO_SPEC);
    assert!(piece.created_at_ms > 0);

    assert_eq!(
        store.piece_by_slug("demo").await.expect("read"),
        Some(piece.clone())
    );
    assert_eq!(store.piece_by_slug("nope").await.expect("read"), None);
    assert_eq!(
        store.spec_version(spec.id).await.expect("read"),
        Some(spec.clone())
    );
    assert_eq!(store.spec_version(9_999).await.expect("read"), None);
    assert_eq!(
        store.current_spec(piece.id).await.expect("read"),
        Some(spec.clone())
    );

    // Same spec, different formatting and key order: no new version.
    let reformatted = r#"{ "params": [ { "max": 180, "min": 60, "name": "tempo" } ] }"#;
    let (_, again) = store
        .ensure_piece("demo", "Demo piece", reformatted)
        .await
        .expect("ensure again");
    assert_eq!(again, spec);
    // A new title is taken over without a new spec version.
    let (renamed, again) = store
        .ensure_piece("demo", "Demo (renamed)", DEMO_SPEC)
        .await
        .expect("rename");
    assert_eq!(renamed.title, "Demo (renamed)");
    assert_eq!(renamed.id, piece.id);
    assert_eq!(again.id, spec.id);

    let show = store
        .create_show(piece.id, spec.id, "ABC123", ShowKind::Rehearsal)
        .await
        .expect("create show");
    assert_eq!(show.status, ShowStatus::Scheduled);
    assert_eq!(show.kind, ShowKind::Rehearsal);
    assert_eq!(show.code, "ABC123");
    assert_eq!((show.started_at_ms, show.ended_at_ms), (None, None));
    assert_eq!(store.show(show.id).await.expect("read"), Some(show.clone()));
    assert_eq!(
        store.show_by_code("ABC123").await.expect("read"),
        Some(show.clone())
    );
    assert_eq!(store.show_by_code("abc123").await.expect("read"), None);
    assert_eq!(store.show(show.id + 100).await.expect("read"), None);
    assert_eq!(
        store.active_shows().await.expect("read"),
        vec![show.clone()]
    );

    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            store
                .record_override(new_override(show.id, n))
                .await
                .expect("override"),
        );
    }
    let logged = store.overrides(show.id).await.expect("read overrides");
    assert_eq!(logged.iter().map(|o| o.id).collect::<Vec<_>>(), ids);
    assert_eq!(logged[3].detail_json, r#"{"value":3}"#);
    assert_eq!(logged[3].at_ms, 1_700_000_000_003);
    assert_eq!(
        (logged[3].actor.as_str(), logged[3].param.as_str()),
        ("performer-1", "tempo")
    );
    assert_eq!(logged[3].action, "lock");
    assert!(store.overrides(show.id + 1).await.expect("read").is_empty());

    assert_eq!(store.latest_snapshot(show.id).await.expect("read"), None);
    for tick in [20, 0, 40, 60] {
        store
            .record_snapshot(snapshot(show.id, tick))
            .expect("queue snapshot");
    }
    store.flush().await.expect("flush");
    assert_eq!(
        store.latest_snapshot(show.id).await.expect("read"),
        Some(snapshot(show.id, 60))
    );
    let page = store.snapshots(show.id, None, 2).await.expect("read");
    assert_eq!(page, vec![snapshot(show.id, 0), snapshot(show.id, 20)]);
    let page = store.snapshots(show.id, Some(20), 10).await.expect("read");
    assert_eq!(page, vec![snapshot(show.id, 40), snapshot(show.id, 60)]);
    assert!(store
        .snapshots(show.id, Some(60), 10)
        .await
        .expect("read")
        .is_empty());
    assert!(store
        .snapshots(show.id, None, 0)
        .await
        .expect("read")
        .is_empty());

    // A repeated tick replaces the stored state.
    let mut replacement = snapshot(show.id, 60);
    replacement.state_json = r#"{"tick":60,"tempo":90}"#.into();
    store
        .record_snapshot(replacement.clone())
        .expect("queue snapshot");
    store.flush().await.expect("flush");
    assert_eq!(
        store.latest_snapshot(show.id).await.expect("read"),
        Some(replacement)
    );

    // Health travels with its snapshot; an import is awaited and committed together.
    let mut with_health = snapshot(show.id, 80);
    with_health.health_json = Some(r#"{"connected":3,"moving":1}"#.into());
    store
        .import_snapshots(vec![with_health.clone(), snapshot(show.id, 100)])
        .await
        .expect("import");
    let page = store.snapshots(show.id, Some(60), 10).await.expect("read");
    assert_eq!(page, vec![with_health, snapshot(show.id, 100)]);

    let stats = store.stats();
    assert_eq!(stats.snapshots_written, 5);
    assert_eq!((stats.snapshots_dropped, stats.snapshots_failed), (0, 0));
    assert_eq!(stats.queued, 0);
    store.close().await.expect("close");
}

#[tokio::test]
async fn references_are_checked_and_failures_are_named() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let (piece, spec) = store
        .ensure_piece("one", "One", "{}")
        .await
        .expect("piece one");
    let (other, other_spec) = store
        .ensure_piece("two", "Two", "{}")
        .await
        .expect("piece two");
    assert_ne!(piece.id, other.id);

    let err = store
        .create_show(piece.id, 4_242, "X1", ShowKind::Performance)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::NotFound {
            what: "spec version",
            id: "4242".into()
        }
    );
    let err = store
        .create_show(piece.id, other_spec.id, "X1", ShowKind::Performance)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                field: "spec_version_id",
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .create_show(9_999, spec.id, "X1", ShowKind::Performance)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "piece", .. }),
        "{err}"
    );

    let err = store
        .record_override(new_override(777, 1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::NotFound {
            what: "show",
            id: "777".into()
        }
    );
    let err = store
        .set_show_status(777, ShowStatus::Live, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "show", .. }),
        "{err}"
    );

    // A snapshot for an unknown show reaches the writer, fails alone and is counted.
    store.record_snapshot(snapshot(777, 1)).expect("queued");
    store.flush().await.expect("flush");
    assert_eq!(store.stats().snapshots_failed, 1);
    assert_eq!(store.stats().snapshots_written, 0);
    store.close().await.expect("close");
}

#[tokio::test]
async fn bad_arguments_are_refused_before_the_queue() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let show = demo_show(&store, "S1").await;

    let field_of = |e: StoreError| match e {
        StoreError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other}"),
    };
    assert_eq!(
        field_of(
            store
                .ensure_piece("Not A Slug", "t", "{}")
                .await
                .unwrap_err()
        ),
        "slug"
    );
    assert_eq!(
        field_of(store.ensure_piece("ok", " ", "{}").await.unwrap_err()),
        "title"
    );
    let err = store
        .ensure_piece("ok", "t", "{not json")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec_json"), "{err}");
    assert!(err.to_string().contains("{not json"), "{err}");
    assert_eq!(
        field_of(
            store
                .create_show(1, 1, "has space", ShowKind::Rehearsal)
                .await
                .unwrap_err()
        ),
        "code"
    );
    assert_eq!(
        field_of(
            store
                .set_show_status(show.id, ShowStatus::Live, -5)
                .await
                .unwrap_err()
        ),
        "at_ms"
    );
    let mut o = new_override(show.id, 1);
    o.detail_json = "nope".into();
    assert_eq!(
        field_of(store.record_override(o).await.unwrap_err()),
        "detail_json"
    );
    let mut o = new_override(show.id, 1);
    o.actor = String::new();
    assert_eq!(
        field_of(store.record_override(o).await.unwrap_err()),
        "actor"
    );
    let mut s = snapshot(show.id, 1);
    s.state_json = "{".into();
    assert_eq!(
        field_of(store.record_snapshot(s).unwrap_err()),
        "state_json"
    );
    let mut s = snapshot(show.id, 1);
    s.tick = u64::MAX;
    assert_eq!(field_of(store.record_snapshot(s).unwrap_err()), "tick");
    let mut s = snapshot(show.id, 1);
    s.health_json = Some("{\"connected\":".into());
    assert_eq!(
        field_of(store.record_snapshot(s.clone()).unwrap_err()),
        "health_json"
    );
    // An import with one bad row writes none of them.
    assert_eq!(
        field_of(
            store
                .import_snapshots(vec![snapshot(show.id, 2), s])
                .await
                .unwrap_err()
        ),
        "health_json"
    );
    assert!(store
        .snapshots(show.id, None, 10)
        .await
        .expect("read")
        .is_empty());

    assert_eq!(
        store.stats().ops_failed,
        0,
        "nothing invalid reached the writer"
    );
    assert!(store.piece_by_slug("ok").await.expect("read").is_none());
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ensure_piece_keeps_exactly_one_current_spec() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    const N: usize = 64;

    let mut tasks = JoinSet::new();
    for i in 0..N {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .ensure_piece("contested", "Contested", &format!(r#"{{"variant":{i}}}"#))
                .await
        });
    }
    let mut returned = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (_, version) = joined.expect("task").expect("ensure_piece");
        // Every caller got the version that was current when its operation committed.
        assert_eq!(version.status, SpecStatus::Current);
        returned.push(version.id);
    }

    let piece = store
        .piece_by_slug("contested")
        .await
        .expect("read")
        .expect("piece");
    let versions = store.spec_versions(piece.id).await.expect("read");
    assert_eq!(versions.len(), N, "every distinct spec became a version");
    let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
    assert_eq!(
        numbers,
        (1..=i64::try_from(N).expect("small")).collect::<Vec<_>>()
    );
    let current: Vec<_> = versions
        .iter()
        .filter(|v| v.status == SpecStatus::Current)
        .collect();
    assert_eq!(current.len(), 1, "exactly one current version");
    assert_eq!(
        current[0].version,
        i64::try_from(N).expect("small"),
        "the newest is current"
    );
    assert!(versions[..N - 1]
        .iter()
        .all(|v| v.status == SpecStatus::Superseded));
    let unique: HashSet<i64> = returned.into_iter().collect();
    assert_eq!(unique.len(), N);
    store.close().await.expect("close");

    // The database itself refuses a second current version.
    let raw = rusqlite::Connection::open(db_path(&dir)).expect("raw open");
    let current_count: i64 = raw
        .query_row(
            "SELECT count(*) FROM spec_versions WHERE piece_id = ?1 AND status = 'current'",
            [piece.id],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(current_count, 1);
    let second = raw.execute(
        "UPDATE spec_versions SET status = 'current' WHERE piece_id = ?1 AND version = 1",
        [piece.id],
    );
    let err = second.expect_err("a second current version must be refused");
    assert!(err.to_string().contains("UNIQUE"), "{err}");
}

#[tokio::test]
async fn show_status_follows_the_lifecycle() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let show = demo_show(&store, "LIFE").await;

    let refuse = |from: ShowStatus, to: ShowStatus| StoreError::InvalidTransition {
        what: "show",
        from: from.to_string(),
        to: to.to_string(),
        allowed: from
            .allowed_next()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    for to in [ShowStatus::Scheduled, ShowStatus::Paused, ShowStatus::Ended] {
        let err = store.set_show_status(show.id, to, 10).await.unwrap_err();
        assert_eq!(err, refuse(ShowStatus::Scheduled, to));
    }
    let err = store
        .set_show_status(show.id, ShowStatus::Ended, 10)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("allowed from scheduled: live"),
        "{err}"
    );

    let live = store
        .set_show_status(show.id, ShowStatus::Live, 1_000)
        .await
        .expect("go live");
    assert_eq!(
        (live.status, live.started_at_ms, live.ended_at_ms),
        (ShowStatus::Live, Some(1_000), None)
    );
    let err = store
        .set_show_status(show.id, ShowStatus::Live, 1_001)
        .await
        .unwrap_err();
    assert_eq!(err, refuse(ShowStatus::Live, ShowStatus::Live));
    let err = store
        .set_show_status(show.id, ShowStatus::Scheduled, 1_001)
        .await
        .unwrap_err();
    assert_eq!(err, refuse(ShowStatus::Live, ShowStatus::Scheduled));

    let paused = store
        .set_show_status(show.id, ShowStatus::Paused, 2_000)
        .await
        .expect("pause");
    assert_eq!(paused.status, ShowStatus::Paused);
    let err = store
        .set_show_status(show.id, ShowStatus::Paused, 2_001)
        .await
        .unwrap_err();
    assert_eq!(err, refuse(ShowStatus::Paused, ShowStatus::Paused));
    let resumed = store
        .set_show_status(show.id, ShowStatus::Live, 3_000)
        .await
        .expect("resume");
    assert_eq!(
        resumed.started_at_ms,
        Some(1_000),
        "resuming keeps the first start"
    );
    store
        .set_show_status(show.id, ShowStatus::Paused, 4_000)
        .await
        .expect("pause again");
    let ended = store
        .set_show_status(show.id, ShowStatus::Ended, 5_000)
        .await
        .expect("end");
    assert_eq!(
        (ended.status, ended.ended_at_ms),
        (ShowStatus::Ended, Some(5_000))
    );
    assert_eq!(
        store.show(show.id).await.expect("read"),
        Some(ended.clone())
    );

    for to in [
        ShowStatus::Scheduled,
        ShowStatus::Live,
        ShowStatus::Paused,
        ShowStatus::Ended,
    ] {
        let err = store.set_show_status(show.id, to, 6_000).await.unwrap_err();
        assert_eq!(err, refuse(ShowStatus::Ended, to), "ending is final");
    }
    assert_eq!(store.show(show.id).await.expect("read"), Some(ended));
    assert!(store.active_shows().await.expect("read").is_empty());

    // live -> ended directly is allowed too.
    let other = demo_show(&store, "LIFE2").await;
    store
        .set_show_status(other.id, ShowStatus::Live, 1)
        .await
        .expect("live");
    store
        .set_show_status(other.id, ShowStatus::Ended, 2)
        .await
        .expect("end");
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_show_code_conflicts_without_spoiling_its_batch() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let show = demo_show(&store, "DUP").await;

    let err = store
        .create_show(
            show.piece_id,
            show.spec_version_id,
            "DUP",
            ShowKind::Rehearsal,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            what: "show code",
            value: "DUP".into()
        }
    );
    assert!(err.to_string().contains("\"DUP\""), "{err}");

    // Queue a good write, a conflicting one and another good one into the same transaction.
    let lock = WriteLock::hold(&db_path(&dir));
    let before = store.stats();
    let a = tokio::spawn({
        let s = store.clone();
        async move { s.record_override(new_override(show.id, 1)).await }
    });
    wait_until_queued(&store, 1).await;
    let dup = tokio::spawn({
        let s = store.clone();
        let (p, v) = (show.piece_id, show.spec_version_id);
        async move { s.create_show(p, v, "DUP", ShowKind::Rehearsal).await }
    });
    wait_until_queued(&store, 2).await;
    let b = tokio::spawn({
        let s = store.clone();
        async move { s.record_override(new_override(show.id, 2)).await }
    });
    wait_until_queued(&store, 3).await;
    lock.release();

    let a = a.await.expect("task").expect("first override commits");
    assert!(matches!(
        dup.await.expect("task"),
        Err(StoreError::Conflict { .. })
    ));
    let b = b.await.expect("task").expect("second override commits");
    let ids: Vec<i64> = store
        .overrides(show.id)
        .await
        .expect("read")
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids, vec![a, b]);
    let after = store.stats();
    assert_eq!(after.ops_committed - before.ops_committed, 2);
    assert_eq!(after.ops_failed - before.ops_failed, 1);
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_batches_queued_writes_into_few_transactions() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let show = demo_show(&store, "BATCH").await;
    const N: u64 = 400; // below the default max batch of 512

    let lock = WriteLock::hold(&db_path(&dir));
    let before = store.stats();
    let mut tasks = JoinSet::new();
    for n in 0..N {
        let store = store.clone();
        let n = i64::try_from(n).expect("small");
        tasks.spawn(async move { store.record_override(new_override(show.id, n)).await });
    }
    wait_until_queued(&store, N).await;
    lock.release();

    let mut ids = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        ids.insert(joined.expect("task").expect("override committed"));
    }
    assert_eq!(ids.len() as u64, N);
    let after = store.stats();
    let transactions = after.transactions_committed - before.transactions_committed;
    let ops = after.ops_committed - before.ops_committed;
    assert_eq!(ops, N);
    // The writer had taken at most one batch before it blocked; everything else was drained
    // into one more transaction.
    assert!(
        transactions <= 2,
        "{transactions} transactions for {ops} ops"
    );
    assert!(
        after.largest_batch >= N / 2,
        "largest batch {}",
        after.largest_batch
    );
    assert_eq!(
        store.overrides(show.id).await.expect("read").len() as u64,
        N
    );
    store.close().await.expect("close");
}

#[tokio::test]
async fn full_queue_drops_and_counts_snapshots_without_blocking() {
    let dir = TempDir::new().expect("tempdir");
    let mut cfg = config(&dir);
    cfg.writer_queue = 2;
    let store = Store::open(cfg).expect("open");
    let show = demo_show(&store, "SNAP").await;

    let lock = WriteLock::hold(&db_path(&dir));
    let mut accepted = Vec::new();
    let mut dropped = 0;
    for tick in 0..100 {
        // This loop runs while the writer is stuck; `record_snapshot` must return every time.
        match store.record_snapshot(snapshot(show.id, tick)) {
            Ok(()) => accepted.push(tick),
            Err(StoreError::QueueFull {
                what: "snapshot",
                capacity: 2,
            }) => dropped += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(
        accepted,
        vec![0, 1],
        "exactly the queue's capacity was accepted"
    );
    assert_eq!(dropped, 98);
    let stats = store.stats();
    assert_eq!((stats.snapshots_dropped, stats.queued), (98, 2));
    lock.release();

    store.flush().await.expect("flush");
    let stored: Vec<u64> = store
        .snapshots(show.id, None, 1_000)
        .await
        .expect("read")
        .iter()
        .map(|s| s.tick)
        .collect();
    assert_eq!(stored, accepted);
    assert_eq!(store.stats().snapshots_written, 2);
    store.close().await.expect("close");
}

#[tokio::test]
async fn reopening_after_close_keeps_everything() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let show = demo_show(&store, "KEEP").await;
    let live = store
        .set_show_status(show.id, ShowStatus::Live, 100)
        .await
        .expect("live");
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            store
                .record_override(new_override(show.id, n))
                .await
                .expect("override"),
        );
    }
    for tick in 0..30 {
        store
            .record_snapshot(snapshot(show.id, tick))
            .expect("queue");
    }
    let clone = store.clone();
    // No flush: close itself commits everything queued before it.
    store.close().await.expect("close");
    assert_eq!(
        clone.record_override(new_override(show.id, 99)).await,
        Err(StoreError::Closed)
    );
    assert_eq!(
        clone.record_snapshot(snapshot(show.id, 99)),
        Err(StoreError::Closed)
    );
    clone.close().await.expect("closing twice is fine");

    let store = open(&dir);
    assert_eq!(
        store.active_shows().await.expect("read"),
        vec![live.clone()]
    );
    assert_eq!(store.show_by_code("KEEP").await.expect("read"), Some(live));
    let piece = store
        .piece_by_slug("demo")
        .await
        .expect("read")
        .expect("piece");
    let spec = store
        .current_spec(piece.id)
        .await
        .expect("read")
        .expect("spec");
    assert_eq!(spec.spec_json, DEMO_SPEC);
    let logged: Vec<i64> = store
        .overrides(show.id)
        .await
        .expect("read")
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(logged, ids);
    assert_eq!(
        store.latest_snapshot(show.id).await.expect("read"),
        Some(snapshot(show.id, 29))
    );
    assert_eq!(
        store
            .snapshots(show.id, None, 100)
            .await
            .expect("read")
            .len(),
        30
    );

    // The reopened store keeps working and continues the spec history.
    let (_, v2) = store
        .ensure_piece("demo", "Demo piece", r#"{"params":[]}"#)
        .await
        .expect("new spec");
    assert_eq!(v2.version, 2);
    store.close().await.expect("close");
}

#[test]
fn a_garbage_file_is_refused_naming_the_path() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, "this is not a database, just text ".repeat(200)).expect("write");
    let err = Store::open(StoreConfig::new(&path)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn an_unusable_path_is_refused_naming_the_path() {
    let dir = TempDir::new().expect("tempdir");

    // The parent "directory" is a regular file.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").expect("write");
    let err = Store::open(StoreConfig::new(blocker.join("tutti.db"))).unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
    assert!(
        err.to_string().contains(&blocker.display().to_string()),
        "{err}"
    );

    // A directory sits where the database file should be.
    let in_the_way = dir.path().join("tutti.db");
    std::fs::create_dir(&in_the_way).expect("mkdir");
    let err = Store::open(StoreConfig::new(&in_the_way)).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    assert!(
        err.to_string().contains(&in_the_way.display().to_string()),
        "{err}"
    );

    // Nonsense configuration names the field.
    let mut cfg = StoreConfig::new(dir.path().join("ok.db"));
    cfg.writer_queue = 0;
    let err = Store::open(cfg).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Config {
                field: "writer_queue",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn another_applications_database_or_a_newer_schema_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .expect("open")
        .execute_batch("CREATE TABLE pieces (x INTEGER);")
        .expect("create");
    let err = Store::open(StoreConfig::new(&foreign)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("another application"), "{err}");
    assert!(
        err.to_string().contains(&foreign.display().to_string()),
        "{err}"
    );

    let newer = dir.path().join("newer.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(
        Store::open(StoreConfig::new(&newer))
            .expect("create")
            .close(),
    )
    .expect("close");
    rusqlite::Connection::open(&newer)
        .expect("open")
        .execute_batch("PRAGMA user_version = 99;")
        .expect("bump version");
    let err = Store::open(StoreConfig::new(&newer)).unwrap_err();
    assert!(matches!(err, StoreError::Migrate { .. }), "{err}");
    assert!(err.to_string().contains("newer Tutti"), "{err}");
}

#[tokio::test]
async fn the_database_file_is_in_wal_mode_and_intact() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    demo_show(&store, "WAL").await;
    let raw = rusqlite::Connection::open(db_path(&dir)).expect("raw open");
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    store.close().await.expect("close");
    let check: String = raw
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
}

#[test]
fn the_handle_and_its_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync + Clone + 'static>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Store>();

    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    // Futures are only built and checked here, never polled.
    send(&store.ensure_piece("a", "A", "{}"));
    send(&store.create_show(1, 1, "C", ShowKind::Rehearsal));
    send(&store.set_show_status(1, ShowStatus::Live, 1));
    send(&store.show_by_code("C"));
    send(&store.show(1));
    send(&store.active_shows());
    send(&store.spec_version(1));
    send(&store.current_spec(1));
    send(&store.spec_versions(1));
    send(&store.piece_by_slug("a"));
    send(&store.record_override(new_override(1, 1)));
    send(&store.latest_snapshot(1));
    send(&store.snapshots(1, None, 1));
    send(&store.overrides(1));
    send(&store.flush());
    let closing = store.clone().close();
    send(&closing);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(closing).expect("close");
    assert_eq!(store.stats().ops_committed, 0, "nothing above was polled");
}
