//! What storing the crowd with a snapshot costs the tick thread, and how big it is.
//!
//! `cargo run --release -p tutti-show --example crowd_cost [PHONES]` (default 5000): every
//! phone has an input on every parameter of the demo piece; prints the mean tick time
//! without a snapshot and with a snapshot and its crowd (both measured on the tick's own
//! thread; the store writes on its own), and the crowd's stored size.

use std::sync::Arc;
use std::time::Instant;

use tutti_show::{HubStats, ShowRuntime, TickScratch};
use tutti_spec::{ParamKindName, PieceSpec};
use tutti_store::{ShowKind, ShowStatus, Store, StoreConfig};

fn main() {
    let phones: usize = std::env::args()
        .nth(1)
        .map_or(5000, |a| a.parse().expect("PHONES is a number"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crowd.db");
    let spec = PieceSpec::demo();
    rt.block_on(async {
        let store = Store::open(StoreConfig::new(&path)).unwrap();
        let (piece, version) = store
            .ensure_piece("demo", "Demo", &spec.to_json())
            .await
            .unwrap();
        let row = store
            .create_show(piece.id, version.id, "COST", ShowKind::Performance)
            .await
            .unwrap();
        let show = ShowRuntime::new(
            "COST".into(),
            row.id,
            Arc::new(spec.clone()),
            ShowStatus::Live,
            String::new(),
            Arc::new(HubStats::default()),
            store.clone(),
            120.0,
        )
        .unwrap();
        for i in 0..phones {
            let lease = show.join_audience(None, None).unwrap();
            for p in &spec.params {
                match p.kind {
                    ParamKindName::Continuous => {
                        let (lo, hi) = p.range();
                        let x = lo + (hi - lo) * ((i * 7919) % 1000) as f64 / 1000.0;
                        show.input(lease.id, &p.name, x).unwrap();
                    }
                    ParamKindName::Discrete => {
                        let choices = p.choices.as_deref().unwrap();
                        show.vote(lease.id, &p.name, &choices[i % choices.len()])
                            .unwrap();
                    }
                }
            }
        }
        let mut scratch = TickScratch::default();
        let rounds = 200;
        let time = |snapshot: bool, scratch: &mut TickScratch| {
            let mut total = 0.0;
            for _ in 0..rounds {
                if snapshot {
                    show.snapshot_at_next_tick();
                }
                let t = Instant::now();
                show.tick(scratch, &[]);
                total += t.elapsed().as_secs_f64();
            }
            total / f64::from(rounds) * 1e6
        };
        let plain = time(false, &mut scratch);
        let with_crowd = time(true, &mut scratch);
        store.flush().await.unwrap();
        let (_, blob) = store.latest_crowd(row.id).await.unwrap().unwrap();
        println!(
            "{phones} phones, {} parameters each: tick {plain:.0} us without a snapshot, \
             {with_crowd:.0} us with a snapshot and the crowd; crowd {} bytes ({:.0} per phone)",
            spec.params.len(),
            blob.len(),
            blob.len() as f64 / phones as f64
        );
    });
}
