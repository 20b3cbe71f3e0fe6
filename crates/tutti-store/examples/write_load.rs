//! A brief load run for the store's write path (not a test): many tasks logging overrides
//! concurrently (group commit), then spec publishes through `ensure_piece`.
//!
//! Run: `cargo run --release -p tutti-store --example write_load [TASKS] [OPS_PER_TASK]`
//! (defaults 64 and 500). It writes into a temporary directory (`$TMPDIR`, so put that on the disk
//! you want to measure) and prints throughput and batching figures. It must never be used as a
//! pass/fail check.

use std::time::Instant;

use tutti_store::{NewOverride, ShowKind, Store, StoreConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: i64 = args.next().map_or(64, |a| a.parse().expect("TASKS"));
    let per_task: i64 = args
        .next()
        .map_or(500, |a| a.parse().expect("OPS_PER_TASK"));
    let dir = tempfile::TempDir::new().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(StoreConfig::new(dir.path().join("load.db"))).expect("open");
        let (piece, spec) = store
            .ensure_piece("load", "Load", r#"{"v":0}"#)
            .await
            .expect("piece");
        let show = store
            .create_show(piece.id, spec.id, "LOAD", ShowKind::Performance)
            .await
            .expect("show");

        let before = store.stats();
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for t in 0..tasks {
            let store = store.clone();
            set.spawn(async move {
                for n in 0..per_task {
                    store
                        .record_override(NewOverride {
                            show_id: show.id,
                            at_ms: n,
                            actor: format!("performer-{t}"),
                            param: "tempo".into(),
                            action: "bias".into(),
                            detail_json: format!(r#"{{"amount":{n}}}"#),
                        })
                        .await
                        .expect("override");
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("task");
        }
        let secs = start.elapsed().as_secs_f64();
        let after = store.stats();
        let ops = after.ops_committed - before.ops_committed;
        let txs = after.transactions_committed - before.transactions_committed;
        println!(
            "overrides: {tasks} tasks x {per_task}: {ops} committed in {secs:.2} s = {:.0}/s, \
             {txs} transactions (mean batch {:.1}, largest {})",
            ops as f64 / secs,
            ops as f64 / txs as f64,
            after.largest_batch
        );

        for concurrency in [1_i64, 32] {
            let count = 2_000 / concurrency;
            let start = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for c in 0..concurrency {
                let store = store.clone();
                set.spawn(async move {
                    for n in 0..count {
                        store
                            .ensure_piece("load", "Load", &format!(r#"{{"v":{},"c":{c}}}"#, n + 1))
                            .await
                            .expect("publish");
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                r.expect("task");
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "spec publishes (ensure_piece with a new spec), {concurrency} concurrent: {} in {secs:.2} s = {:.0}/s",
                count * concurrency,
                (count * concurrency) as f64 / secs
            );
        }
        store.close().await.expect("close");
    });
}
