//! What the tests of several nodes share: the test's own `nats-server -js` (see
//! `tutti-testkit`), a store holding the demo piece and one show, and that show's runtime on
//! a given clock.
#![allow(unused_imports, dead_code)]

use std::sync::Arc;

use tutti_show::{HubStats, ShowClock, ShowRuntime};
use tutti_spec::PieceSpec;
use tutti_store::{ShowStatus, Store, StoreConfig};
pub use tutti_testkit::{free_port, nats, Nats};

/// A store with the demo piece and one show of code `code`; its id.
pub async fn store_with_show(dir: &std::path::Path, code: &str) -> (Store, i64) {
    let store = Store::open(StoreConfig::new(dir.join("t.db"))).unwrap();
    let spec = PieceSpec::demo();
    let (piece, version) = store
        .ensure_piece("demo", "Demo", &spec.to_json())
        .await
        .unwrap();
    let row = store
        .create_show(
            piece.id,
            version.id,
            code,
            tutti_store::ShowKind::Performance,
        )
        .await
        .unwrap();
    (store, row.id)
}

/// Show `code` (id `id`, live, the demo piece) on `clock`, storing into `store`.
pub fn runtime(code: &str, id: i64, store: &Store, clock: &ShowClock) -> Arc<ShowRuntime> {
    ShowRuntime::new_on_clock(
        code.into(),
        id,
        Arc::new(PieceSpec::demo()),
        ShowStatus::Live,
        String::new(),
        Arc::new(HubStats::default()),
        store.clone(),
        120.0,
        clock.clone(),
    )
    .unwrap()
}
