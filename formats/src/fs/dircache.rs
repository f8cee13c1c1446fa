//! A bounded cache of directory listings, shared by the readers that list
//! a directory by parsing its blocks (ext, XFS): repeated lookups in one
//! directory then cost one parse, and the memory stays bounded however
//! many directories a walk visits.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{DirEntry, FsError, Ino};

/// At most this many directories are remembered...
const MAX_DIRS: usize = 512;
/// ...holding at most this many entries together; a larger listing is
/// returned but not kept.
const MAX_ENTRIES: usize = 200_000;

/// Listings by directory inode, dropped all at once when full (a walk
/// rarely comes back to a directory, a lookup storm stays in one).
#[derive(Default)]
pub(crate) struct DirCache {
    inner: Mutex<Listings>,
}

/// The listings, and their entries in total.
type Listings = (HashMap<u64, Arc<Vec<DirEntry>>>, usize);

impl DirCache {
    /// The listing of `dir`, remembered or made by `load` (which runs
    /// without the lock held).
    pub(crate) fn get_or_load(
        &self,
        dir: Ino,
        load: impl FnOnce() -> Result<Vec<DirEntry>, FsError>,
    ) -> Result<Arc<Vec<DirEntry>>, FsError> {
        if let Some(l) = self.inner.lock().0.get(&dir.0) {
            return Ok(l.clone());
        }
        let list = Arc::new(load()?);
        let mut cache = self.inner.lock();
        if cache.0.len() >= MAX_DIRS || cache.1 + list.len() > MAX_ENTRIES {
            cache.0.clear();
            cache.1 = 0;
        }
        if list.len() <= MAX_ENTRIES {
            cache.1 += list.len();
            if let Some(old) = cache.0.insert(dir.0, list.clone()) {
                cache.1 -= old.len();
            }
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FileKind;

    fn entries(n: usize) -> Vec<DirEntry> {
        (0..n)
            .map(|i| DirEntry {
                name: format!("e{i}"),
                ino: Ino(i as u64 + 10),
                kind: FileKind::File,
            })
            .collect()
    }

    #[test]
    fn loads_once_and_stays_bounded() {
        let c = DirCache::default();
        let mut loads = 0;
        for _ in 0..3 {
            let l = c
                .get_or_load(Ino(2), || {
                    loads += 1;
                    Ok(entries(5))
                })
                .expect("load");
            assert_eq!(l.len(), 5);
        }
        assert_eq!(loads, 1);
        // A listing over the bound is returned, not kept.
        let big = c
            .get_or_load(Ino(3), || Ok(entries(MAX_ENTRIES + 1)))
            .expect("load");
        assert_eq!(big.len(), MAX_ENTRIES + 1);
        assert!(!c.inner.lock().0.contains_key(&3));
        for d in 0..(MAX_DIRS as u64 + 5) {
            c.get_or_load(Ino(100 + d), || Ok(entries(1)))
                .expect("load");
        }
        assert!(c.inner.lock().0.len() <= MAX_DIRS);
        // An error is passed on and nothing is kept.
        assert!(
            c.get_or_load(Ino(9), || Err(FsError::NoInode(Ino(9))))
                .is_err()
        );
    }
}
