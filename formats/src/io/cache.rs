//! A bounded, sharded LRU cache of aligned blocks in front of a source, for
//! parsers that re-read the same metadata (tables, directories) many times.
//! The lock of a shard is never held while the inner source is read.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{ReadAt, Source, clamp};

const SHARDS: usize = 8;

struct Shard {
    blocks: HashMap<u64, (Arc<[u8]>, u64)>,
}

/// Caches `block_size` blocks of `inner`, at most `capacity` blocks.
pub struct BlockCache {
    inner: Source,
    block_size: u64,
    per_shard: usize,
    shards: Vec<Mutex<Shard>>,
    tick: AtomicU64,
}

impl BlockCache {
    /// A cache of at most `capacity` blocks of `block_size` bytes.
    pub fn new(inner: Source, block_size: usize, capacity: usize) -> BlockCache {
        BlockCache {
            inner,
            block_size: block_size.max(1) as u64,
            per_shard: capacity.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        blocks: HashMap::new(),
                    })
                })
                .collect(),
            tick: AtomicU64::new(0),
        }
    }

    fn shard(&self, block: u64) -> &Mutex<Shard> {
        &self.shards[(block % SHARDS as u64) as usize]
    }

    fn block(&self, index: u64) -> io::Result<Arc<[u8]>> {
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        if let Some((data, used)) = self.shard(index).lock().blocks.get_mut(&index) {
            *used = tick;
            return Ok(data.clone());
        }
        let start = index * self.block_size;
        let mut buf = vec![0u8; clamp(start, self.block_size as usize, self.inner.len())];
        self.inner.read_exact_at(start, &mut buf)?;
        let data: Arc<[u8]> = Arc::from(buf);
        let mut shard = self.shard(index).lock();
        if shard.blocks.len() >= self.per_shard {
            // Evict the least recently used block of the shard; shards are
            // small, so a scan is cheaper than keeping an order.
            if let Some(victim) = shard
                .blocks
                .iter()
                .min_by_key(|(_, (_, u))| *u)
                .map(|(k, _)| *k)
            {
                shard.blocks.remove(&victim);
            }
        }
        shard.blocks.insert(index, (data.clone(), tick));
        Ok(data)
    }
}

impl ReadAt for BlockCache {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.len());
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let block = self.block(at / self.block_size)?;
            let within = (at % self.block_size) as usize;
            let take = (n - done).min(block.len().saturating_sub(within));
            if take == 0 {
                break;
            }
            buf[done..done + take].copy_from_slice(&block[within..within + take]);
            done += take;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{MemSource, model};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_model(data in prop::collection::vec(any::<u8>(), 0..5000), bs in 1usize..700, cap in 1usize..20, reads in model::reads(5000)) {
            let src: Source = Arc::new(MemSource::new(data.clone()));
            let cache = BlockCache::new(src, bs, cap);
            model::check(&cache, &data, &reads)?;
            // Again, now partly from the cache.
            model::check(&cache, &data, &reads)?;
        }
    }

    /// A second read of a block does not reach the inner source.
    #[test]
    fn hits_do_not_read_inner() {
        struct Counting(MemSource, AtomicU64);
        impl ReadAt for Counting {
            fn len(&self) -> u64 {
                self.0.len()
            }
            fn read_at(&self, o: u64, b: &mut [u8]) -> io::Result<usize> {
                self.1.fetch_add(1, Ordering::SeqCst);
                self.0.read_at(o, b)
            }
        }
        let inner = Arc::new(Counting(
            MemSource::new(vec![7u8; 10_000]),
            AtomicU64::new(0),
        ));
        let cache = BlockCache::new(inner.clone(), 4096, 4);
        let mut b = [0u8; 100];
        for _ in 0..10 {
            cache.read_exact_at(5000, &mut b).expect("read");
        }
        assert_eq!(inner.1.load(Ordering::SeqCst), 1);
        assert_eq!(b, [7u8; 100]);
    }
}
