//! A file in a snapshot as a positional byte source: a binary search over
//! the cumulative offsets of its blobs, each blob read through the
//! repository's shared, bounded, single-flight cache, with blobs read ahead
//! of a sequential reader by a small pool of threads.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Sender, TrySendError};
use parking_lot::Mutex;

use crate::error::Result;
use crate::id::Id;
use crate::repo::{BlobType, Repository};
use crate::snapshot::Node;
use crate::snapshot::walk::blob_sizes;

use super::ReadAt;
use vaultfs_formats::io::SharedBytes;

/// Reads blobs into the cache ahead of sequential readers. Requests beyond
/// what the queue holds are dropped: read-ahead is a hint, never a backlog.
#[derive(Clone)]
pub(crate) struct Prefetcher {
    queue: Option<Sender<Id>>,
    queued: Arc<Mutex<HashSet<Id>>>,
    depth: usize,
}

impl Prefetcher {
    /// A pool of `depth.min(available cores)` threads reading blobs of `repo`
    /// (none for depth 0). The threads end when the last handle is dropped.
    pub(crate) fn new(repo: Arc<Repository>, depth: usize) -> Prefetcher {
        let queued = Arc::new(Mutex::new(HashSet::new()));
        if depth == 0 {
            return Prefetcher {
                queue: None,
                queued,
                depth,
            };
        }
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(depth);
        let (tx, rx) = crossbeam_channel::bounded::<Id>(depth * 4);
        for _ in 0..threads {
            let rx = rx.clone();
            let repo = repo.clone();
            let queued = queued.clone();
            let spawned = std::thread::Builder::new()
                .name("vfs-readahead".into())
                .spawn(move || {
                    for id in rx {
                        // Errors surface when the reader gets there.
                        let _ = repo.load_blob(BlobType::Data, &id);
                        queued.lock().remove(&id);
                    }
                });
            if spawned.is_err() {
                break;
            }
        }
        Prefetcher {
            queue: Some(tx),
            queued,
            depth,
        }
    }

    fn request(&self, id: &Id) {
        let Some(tx) = &self.queue else {
            return;
        };
        if !self.queued.lock().insert(*id) {
            return;
        }
        if let Err(TrySendError::Full(id) | TrySendError::Disconnected(id)) = tx.try_send(*id) {
            self.queued.lock().remove(&id);
        }
    }
}

/// How far from where the last read ended a read still counts as
/// sequential.
const NEAR: u64 = 4 << 20;

/// A regular file of a snapshot, readable at any offset.
pub struct SnapshotSource {
    repo: Arc<Repository>,
    prefetch: Prefetcher,
    path: String,
    blobs: Vec<Id>,
    /// Where each blob starts in the file.
    starts: Vec<u64>,
    size: u64,
    /// The offset a sequential reader would ask for next.
    next: AtomicU64,
}

impl SnapshotSource {
    /// The content of file `node` found at `path`; its blob sizes come from
    /// the index and must add up to the node's size.
    pub(crate) fn new(
        repo: Arc<Repository>,
        prefetch: Prefetcher,
        path: &str,
        node: &Node,
    ) -> Result<SnapshotSource> {
        let sizes = blob_sizes(&repo, path, node)?;
        let mut starts = Vec::with_capacity(sizes.len());
        let mut at = 0u64;
        for s in &sizes {
            starts.push(at);
            at += s;
        }
        Ok(SnapshotSource {
            repo,
            prefetch,
            path: path.to_string(),
            blobs: node.content().to_vec(),
            starts,
            size: at,
            next: AtomicU64::new(0),
        })
    }

    fn blob_len(&self, i: usize) -> u64 {
        self.starts.get(i + 1).copied().unwrap_or(self.size) - self.starts[i]
    }

    /// The first blob's id, if the file has content.
    pub fn first_blob(&self) -> Option<Id> {
        self.blobs.first().copied()
    }
}

impl SnapshotSource {
    /// Notes a read of `len` bytes at `offset` (inside the file) and asks
    /// for the blobs after it if the reader is sequential; returns the
    /// index of the blob holding `offset`.
    fn start_read(&self, offset: u64, len: usize) -> usize {
        // Near the end of the previous read counts as sequential: the
        // kernel's read-ahead sends pieces of one stream out of order to
        // several server threads.
        let prev = self.next.swap(
            offset.saturating_add(len as u64).min(self.size),
            Ordering::Relaxed,
        );
        let sequential = offset.abs_diff(prev) <= NEAR;
        let i = self.starts.partition_point(|&s| s <= offset) - 1;
        if sequential || offset == 0 {
            for id in self.blobs.iter().skip(i + 1).take(self.prefetch.depth) {
                self.prefetch.request(id);
            }
        }
        i
    }

    /// Blob `i`, checked against the length the index gives it.
    fn blob(&self, i: usize) -> io::Result<Arc<Vec<u8>>> {
        let id = &self.blobs[i];
        let data = self
            .repo
            .load_blob(BlobType::Data, id)
            .map_err(|e| io::Error::from(e.context(&self.path)))?;
        let want = self.blob_len(i);
        if data.len() as u64 != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: data blob {id} holds {} bytes, the index says {want}",
                    self.path,
                    data.len()
                ),
            ));
        }
        Ok(data)
    }
}

impl ReadAt for SnapshotSource {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let mut i = self.start_read(offset, buf.len());
        let mut done = 0usize;
        while done < buf.len() && i < self.blobs.len() {
            let data = self.blob(i)?;
            let at = (offset + done as u64 - self.starts[i]) as usize;
            let n = (data.len() - at).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[at..at + n]);
            done += n;
            i += 1;
        }
        Ok(done)
    }

    fn read_shared(&self, offset: u64, len: usize) -> io::Result<Option<SharedBytes>> {
        if offset >= self.size || len == 0 {
            return Ok(None);
        }
        let i = self.start_read(offset, len);
        let data = self.blob(i)?;
        let at = (offset - self.starts[i]) as usize;
        let end = at + (data.len() - at).min(len);
        Ok(SharedBytes::new(data, at..end))
    }
}
