//! Shared helpers: a fresh store in a temporary directory and a memory over it with short
//! timings (and a small threshold for the approximate index, so tests exercise it).
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tutti_memory::{AnnConfig, Memory, MemoryConfig, Writer};
use tutti_store::{Store, StoreConfig};

pub fn store(dir: &Path) -> Store {
    Store::open(StoreConfig::new(dir.join("tutti.db"))).expect("store opens")
}

pub fn config(dir: &Path) -> MemoryConfig {
    let mut cfg = MemoryConfig::new(dir);
    cfg.flush_every = Duration::from_millis(20);
    cfg.write_timeout = Duration::from_millis(500);
    cfg.breaker_open_for = Duration::from_millis(300);
    cfg.catch_up_every = Duration::from_millis(200);
    cfg.ann = AnnConfig {
        ann_min: 2_000,
        ..AnnConfig::default()
    };
    cfg
}

pub async fn open(dir: &Path) -> (Store, Memory) {
    let s = store(dir);
    let m = Memory::open(s.clone(), config(dir))
        .await
        .expect("memory opens");
    (s, m)
}

pub async fn open_with(dir: &Path, w: Arc<dyn Writer>) -> (Store, Memory) {
    let s = store(dir);
    let m = Memory::open_with(s.clone(), w, config(dir))
        .await
        .expect("memory opens");
    (s, m)
}

pub const WAIT: Duration = Duration::from_secs(20);
