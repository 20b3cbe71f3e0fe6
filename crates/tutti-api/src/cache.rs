//! Small read-through caches that keep the hot authenticated reads (`GET /pieces/{id}`) off
//! SQLite: pieces by id and ensemble memberships. Entries expire after a short TTL and are
//! dropped on every change made through this API on this node, so a change is visible at once
//! here (another node sees it within the TTL).
//!
//! Must never: grow without bound, or serve an entry older than its TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

use tutti_store::{EnsembleRole, PieceRow};

use crate::now_ms;

/// A bounded map with a time-to-live.
pub struct TtlCache<K, V> {
    map: RwLock<HashMap<K, (V, i64)>>,
    ttl_ms: i64,
    max: usize,
}

impl<K: Eq + Hash + Copy, V: Clone> TtlCache<K, V> {
    /// An empty cache.
    pub fn new(ttl_ms: i64, max: usize) -> Self {
        TtlCache {
            map: RwLock::new(HashMap::new()),
            ttl_ms,
            max,
        }
    }

    /// The fresh value for `k`, if any.
    pub fn get(&self, k: &K) -> Option<V> {
        let now = now_ms();
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(k)
            .filter(|(_, at)| now - at < self.ttl_ms)
            .map(|(v, _)| v.clone())
    }

    /// Remembers `v` for `k`.
    pub fn put(&self, k: K, v: V) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max {
            map.clear();
        }
        map.insert(k, (v, now_ms()));
    }

    /// Forgets `k`.
    pub fn forget(&self, k: &K) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(k);
    }
}

/// The API's caches.
pub struct Caches {
    /// Pieces by id.
    pub pieces: TtlCache<i64, PieceRow>,
    /// Roles by (ensemble, user); `None` = not a member.
    pub members: TtlCache<(i64, i64), Option<EnsembleRole>>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            pieces: TtlCache::new(5_000, 50_000),
            members: TtlCache::new(5_000, 100_000),
        }
    }
}
