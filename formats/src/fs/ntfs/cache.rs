//! A small bounded LRU map shared between threads, for parsed MFT records,
//! index blocks and decompressed compression units. Its locks are held
//! only to look up or insert, never while the volume is read.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

const SHARDS: usize = 8;

/// At most `capacity` values, least recently used evicted first.
pub(crate) struct Lru<K, V> {
    shards: Vec<Mutex<HashMap<K, (V, u64)>>>,
    per_shard: usize,
    tick: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
}

impl<K: Hash + Eq + Copy, V: Clone> Lru<K, V> {
    pub fn new(capacity: usize) -> Self {
        Lru {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            tick: AtomicU64::new(0),
            hasher: Default::default(),
        }
    }

    fn shard(&self, k: K) -> &Mutex<HashMap<K, (V, u64)>> {
        let h = self.hasher.hash_one(k);
        &self.shards[(h % SHARDS as u64) as usize]
    }

    pub fn get(&self, k: K) -> Option<V> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.shard(k).lock();
        let (v, used) = shard.get_mut(&k)?;
        *used = tick;
        Some(v.clone())
    }

    pub fn insert(&self, k: K, v: V) {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.shard(k).lock();
        if shard.len() >= self.per_shard && !shard.contains_key(&k) {
            if let Some(victim) = shard.iter().min_by_key(|(_, (_, u))| *u).map(|(k, _)| *k) {
                shard.remove(&victim);
            }
        }
        shard.insert(k, (v, tick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_recent_first() {
        let c: Lru<u64, u64> = Lru::new(8);
        for i in 0..1000u64 {
            c.insert(i, i * 2);
            assert_eq!(c.get(i), Some(i * 2));
        }
        let kept = (0..1000u64).filter(|&i| c.get(i).is_some()).count();
        assert!(kept <= 8, "{kept}");
        assert_eq!(c.get(999), Some(1998));
    }
}
