//! Durability: a `kill -9` loses nothing that was acknowledged.
//!
//! The test re-runs its own test binary as a child process (selected by an environment variable).
//! The child opens the store, records overrides from several tasks as fast as it can and prints
//! each acknowledged id. The parent SIGKILLs it mid-stream, reopens the store and checks that every
//! printed id is there and the database is intact.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;
use tutti_store::{NewOverride, ShowKind, Store, StoreConfig};

const CHILD_ENV: &str = "TUTTI_STORE_KILL9_CHILD";
const TEST_NAME: &str = "kill9_loses_nothing_acknowledged";
/// Acknowledgements the parent waits for before killing the child.
const KILL_AFTER: usize = 400;
/// The child stops on its own after this many per task if nobody kills it.
const CHILD_LIMIT: i64 = 200_000;
const CHILD_TASKS: i64 = 4;

fn override_for(show_id: i64, task: i64, n: i64) -> NewOverride {
    NewOverride {
        show_id,
        at_ms: n,
        actor: format!("task-{task}"),
        param: "tempo".into(),
        action: "bias".into(),
        detail_json: format!(r#"{{"n":{n}}}"#),
    }
}

/// The child: write overrides until killed, printing `ACK <id>` after each commit.
fn child(arg: &str) {
    let (path, show_id) = arg.split_once('|').expect("child argument is PATH|SHOW_ID");
    let show_id: i64 = show_id.parse().expect("show id");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(StoreConfig::new(path)).expect("child opens store");
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..CHILD_TASKS {
            let store = store.clone();
            tasks.spawn(async move {
                for n in 0..CHILD_LIMIT {
                    let id = store
                        .record_override(override_for(show_id, task, n))
                        .await
                        .expect("override acknowledged");
                    // `println!` flushes at the newline: once it returns, the parent can read it.
                    println!("ACK {id}");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("writer task");
        }
    });
}

fn setup(path: &Path) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(StoreConfig::new(path)).expect("open");
        let (piece, spec) = store
            .ensure_piece("crash", "Crash test", r#"{"params":[]}"#)
            .await
            .expect("piece");
        let show = store
            .create_show(piece.id, spec.id, "CRASH", ShowKind::Performance)
            .await
            .expect("show");
        store.close().await.expect("close");
        show.id
    })
}

#[test]
fn kill9_loses_nothing_acknowledged() {
    if let Ok(arg) = std::env::var(CHILD_ENV) {
        child(&arg);
        return;
    }

    let dir = TempDir::new().expect("tempdir");
    let path: PathBuf = dir.path().join("tutti.db");
    let show_id = setup(&path);

    let mut proc = Command::new(std::env::current_exe().expect("test binary"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}|{show_id}", path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = proc.stdout.take().expect("child stdout");
    let mut lines = BufReader::new(stdout).lines();

    let mut acked = BTreeSet::new();
    let parse = |line: &str| {
        line.strip_prefix("ACK ")
            .map(|id| id.parse::<i64>().expect("id"))
    };
    for line in lines.by_ref() {
        let line = line.expect("read child stdout");
        if let Some(id) = parse(&line) {
            acked.insert(id);
            if acked.len() >= KILL_AFTER {
                break;
            }
        }
    }
    assert!(
        acked.len() >= KILL_AFTER,
        "child stopped early after {} acks",
        acked.len()
    );
    proc.kill().expect("SIGKILL the child"); // `Child::kill` sends SIGKILL on Unix.
                                             // Everything the child printed before it died is still in the pipe: acknowledged too.
    for line in lines {
        let line = line.expect("read child stdout");
        if let Some(id) = parse(&line) {
            acked.insert(id);
        }
    }
    let status = proc.wait().expect("wait child");
    assert_eq!(
        status.signal(),
        Some(9),
        "child must die by SIGKILL, got {status}"
    );

    let raw = rusqlite::Connection::open(&path).expect("raw open");
    let check: String = raw
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    drop(raw);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stored: BTreeSet<i64> = rt.block_on(async {
        let store = Store::open(StoreConfig::new(&path)).expect("reopen after kill -9");
        let ids = store
            .overrides(show_id)
            .await
            .expect("read overrides")
            .into_iter()
            .map(|o| o.id)
            .collect();
        store.close().await.expect("close");
        ids
    });
    let missing: Vec<i64> = acked.difference(&stored).copied().collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(stored.len() >= acked.len());
}
