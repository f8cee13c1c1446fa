//! A bounded LRU of decrypted blobs with single-flight loading:
//! concurrent requests for one blob load it once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::id::Id;

// One LRU over the whole capacity, not shards by id: chunks are up to
// 8 MiB, and a sharded cache evicted a large blob whenever another blob
// landed in its shard (a FUSE reader of 8 MiB blobs then decrypted each one
// several times). The lock is held only for map updates, never while a
// blob loads.
struct Shard {
    map: HashMap<Id, (Arc<Vec<u8>>, u64)>,
    order: BTreeMap<u64, Id>,
    bytes: usize,
    tick: u64,
    loading: HashMap<Id, Arc<Mutex<()>>>,
}

/// Decrypted blobs by id, at most `capacity` bytes in all.
pub struct BlobCache {
    shard: Mutex<Shard>,
    capacity: usize,
}

impl BlobCache {
    /// A cache holding up to `capacity` bytes.
    pub fn new(capacity: usize) -> BlobCache {
        BlobCache {
            shard: Mutex::new(Shard {
                map: HashMap::new(),
                order: BTreeMap::new(),
                bytes: 0,
                tick: 0,
                loading: HashMap::new(),
            }),
            capacity,
        }
    }

    fn shard(&self, _id: &Id) -> &Mutex<Shard> {
        &self.shard
    }

    /// The cached blob, refreshing its recency.
    pub fn get(&self, id: &Id) -> Option<Arc<Vec<u8>>> {
        let mut s = self.shard(id).lock();
        s.tick += 1;
        let tick = s.tick;
        let (data, old) = {
            let e = s.map.get_mut(id)?;
            let old = std::mem::replace(&mut e.1, tick);
            (e.0.clone(), old)
        };
        s.order.remove(&old);
        s.order.insert(tick, *id);
        Some(data)
    }

    /// Inserts a blob, evicting the least recently used ones over capacity.
    /// Blobs over a quarter of the capacity are not cached.
    pub fn insert(&self, id: Id, data: Arc<Vec<u8>>) {
        if data.len() > self.capacity / 4 {
            return;
        }
        let mut s = self.shard(&id).lock();
        s.tick += 1;
        let tick = s.tick;
        let len = data.len();
        if let Some((old, old_tick)) = s.map.insert(id, (data, tick)) {
            s.bytes -= old.len();
            s.order.remove(&old_tick);
        }
        s.order.insert(tick, id);
        s.bytes += len;
        while s.bytes > self.capacity && s.map.len() > 1 {
            let Some((_, victim)) = s.order.pop_first() else {
                break;
            };
            if let Some((d, _)) = s.map.remove(&victim) {
                s.bytes -= d.len();
            }
        }
    }

    /// The cached blob, or `load`'s result (cached on success). While one
    /// thread loads a blob, others asking for it wait for that load.
    pub fn get_or_load<E>(
        &self,
        id: &Id,
        load: impl FnOnce() -> Result<Arc<Vec<u8>>, E>,
    ) -> Result<Arc<Vec<u8>>, E> {
        if let Some(d) = self.get(id) {
            return Ok(d);
        }
        let gate = self
            .shard(id)
            .lock()
            .loading
            .entry(*id)
            .or_default()
            .clone();
        let _guard = gate.lock();
        if let Some(d) = self.get(id) {
            return Ok(d);
        }
        let result = load();
        if let Ok(d) = &result {
            self.insert(*id, d.clone());
        }
        self.shard(id).lock().loading.remove(id);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn bounded_and_single_flight() {
        let c = BlobCache::new(400);
        for i in 0..50u8 {
            let mut id = [0u8; 32];
            id[1] = i;
            c.insert(Id(id), Arc::from(vec![i; 40]));
        }
        let kept: Vec<u8> = (0..50u8)
            .filter(|i| {
                let mut id = [0u8; 32];
                id[1] = *i;
                c.get(&Id(id)).is_some()
            })
            .collect();
        assert_eq!(
            kept,
            (40..50).collect::<Vec<u8>>(),
            "the 10 newest 40-byte blobs"
        );
        // A blob of a quarter of the capacity is kept; a larger one is not.
        let big = Id([1u8; 32]);
        c.insert(big, Arc::from(vec![7u8; 100]));
        assert!(c.get(&big).is_some());
        let huge = Id([2u8; 32]);
        c.insert(huge, Arc::from(vec![1u8; 101]));
        assert!(c.get(&huge).is_none());

        let c = Arc::new(BlobCache::new(1 << 20));
        let loads = Arc::new(AtomicUsize::new(0));
        let id = Id::hash(b"x");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, loads) = (c.clone(), loads.clone());
                std::thread::spawn(move || {
                    c.get_or_load::<()>(&id, || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        Ok(Arc::from(vec![1u8; 10]))
                    })
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok_and(|r| r.is_ok()));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }
}
