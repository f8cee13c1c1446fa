//! The write path for blobs: deduplicate, compress, encrypt, collect into
//! packs (data and tree blobs in separate packs, as format v2 demands), write
//! full packs on a background thread, and index them.
//!
//! `save` is called from many worker threads at once; the only shared lock
//! is held for the copy of an already encrypted blob into its pack.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::index::IndexFile;
use super::pack::{BlobType, PackBuilder};
use super::{Compression, Repository};
use crate::backend::FileType;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::snapshot::Tree;

/// Packs are written once they reach this size (restic's default).
pub const PACK_SIZE: usize = 16 << 20;
/// A pack's buffer: the target size plus one maximal compressed chunk.
const PACK_CAPACITY: usize = PACK_SIZE + crate::chunker::MAX_SIZE + (64 << 10);
/// At most this many pack buffers exist: one filling, one queued, one being
/// written.
const PACK_BUFFERS: usize = 3;
/// Threads writing packs.
const WRITERS: usize = 1;
/// An index file is written once it describes this many blobs.
const INDEX_BLOBS: usize = 50_000;
const SHARDS: usize = 64;

/// What a saver added to the repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaverStats {
    /// New data blobs.
    pub data_blobs: u64,
    /// New tree blobs.
    pub tree_blobs: u64,
    /// Plaintext bytes of new blobs.
    pub data_added: u64,
    /// Bytes of new blobs as stored (compressed, encrypted).
    pub data_added_packed: u64,
    /// Pack files written.
    pub packs: u64,
}

/// Saves blobs into new packs.
pub struct BlobSaver {
    repo: Arc<Repository>,
    claimed: Vec<Mutex<HashSet<(BlobType, Id)>>>,
    data: Mutex<PackBuilder>,
    tree: Mutex<PackBuilder>,
    tx: Option<Sender<PackBuilder>>,
    writers: Vec<JoinHandle<Result<IndexFile>>>,
    data_blobs: AtomicU64,
    tree_blobs: AtomicU64,
    data_added: AtomicU64,
    data_added_packed: AtomicU64,
    packs: Arc<AtomicU64>,
    /// Pack buffers the writer is done with, for reuse.
    free_packs: Receiver<Vec<u8>>,
    /// Pack buffers in existence (filling, queued, being written, free).
    pack_buffers: std::sync::atomic::AtomicUsize,
}

/// A worker thread's zstd context and output buffer, kept across blobs so
/// the hot path allocates nothing.
struct Encoder {
    level: i32,
    comp: zstd::bulk::Compressor<'static>,
    buf: Vec<u8>,
}

thread_local! {
    static ENCODER: RefCell<Option<Encoder>> = const { RefCell::new(None) };
}

/// Calls `f` with the bytes to store for `plain` and, if compressed, the
/// plaintext length. Compression is kept only if it makes the blob smaller.
fn with_payload<R>(
    compression: Compression,
    plain: &[u8],
    f: impl FnOnce(&[u8], Option<u32>) -> R,
) -> Result<R> {
    let Compression::Level(level) = compression else {
        return Ok(f(plain, None));
    };
    ENCODER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|e| e.level != level) {
            let comp = zstd::bulk::Compressor::new(level).map_err(|e| Error::io("zstd", e))?;
            *cell = Some(Encoder {
                level,
                comp,
                buf: Vec::new(),
            });
        }
        let Some(enc) = cell.as_mut() else {
            return Ok(f(plain, None));
        };
        // Compressed output is only kept if smaller than the input, so the
        // buffer never needs more than that: zstd reports "destination too
        // small" for incompressible data, which is stored as it is.
        enc.buf.clear();
        enc.buf.reserve_exact(plain.len());
        match enc.comp.compress_to_buffer(plain, &mut enc.buf) {
            Ok(n) if n < plain.len() => Ok(f(&enc.buf[..n], Some(plain.len() as u32))),
            _ => Ok(f(plain, None)),
        }
    })
}

impl BlobSaver {
    /// A saver writing into `repo`.
    pub fn new(repo: Arc<Repository>) -> BlobSaver {
        let (tx, rx) = crossbeam_channel::bounded::<PackBuilder>(1);
        let packs = Arc::new(AtomicU64::new(0));
        // Only the writer holds the sender, so a writer that stopped
        // disconnects the channel instead of leaving savers waiting.
        let (free, free_packs) = crossbeam_channel::bounded::<Vec<u8>>(PACK_BUFFERS);
        // One writer kept up with two cores of compression in the
        // benchmark (the directory syncs are batched, see Backend::sync);
        // each more writer costs a pack buffer of memory.
        let writers = (0..WRITERS)
            .filter_map(|_| {
                let (repo, packs, rx, free) =
                    (repo.clone(), packs.clone(), rx.clone(), free.clone());
                std::thread::Builder::new()
                    .name("pack-writer".into())
                    .spawn(move || write_packs(&repo, &rx, &packs, &free))
                    .ok()
            })
            .collect();
        BlobSaver {
            repo,
            claimed: (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect(),
            data: Mutex::new(PackBuilder::with_capacity(PACK_CAPACITY)),
            tree: Mutex::new(PackBuilder::default()),
            tx: Some(tx),
            writers,
            data_blobs: AtomicU64::new(0),
            tree_blobs: AtomicU64::new(0),
            data_added: AtomicU64::new(0),
            data_added_packed: AtomicU64::new(0),
            packs,
            free_packs,
            pack_buffers: std::sync::atomic::AtomicUsize::new(1),
        }
    }

    /// The repository written to.
    pub fn repo(&self) -> &Arc<Repository> {
        &self.repo
    }

    /// Is the blob stored already, or being stored by this saver?
    pub fn known(&self, t: BlobType, id: &Id) -> bool {
        self.repo.has_blob(t, id)
            || self.claimed[id.0[0] as usize % SHARDS]
                .lock()
                .contains(&(t, *id))
    }

    /// Stores a blob unless the repository has it; returns whether it was new.
    pub fn save(&self, t: BlobType, id: Id, plain: &[u8]) -> Result<bool> {
        if self.repo.has_blob(t, &id)
            || !self.claimed[id.0[0] as usize % SHARDS]
                .lock()
                .insert((t, id))
        {
            return Ok(false);
        }
        let key = self.repo.key();
        let (stored, full) = with_payload(self.repo.compression(), plain, |payload, ulen| {
            // Encrypting under the pack lock costs ~0.1 ms per MiB (AES-NI)
            // and saves a copy of every blob.
            let mut pb = match t {
                BlobType::Data => self.data.lock(),
                BlobType::Tree => self.tree.lock(),
            };
            let stored = pb.add_encrypting(key, t, id, payload, ulen);
            let full = match pb.len() >= PACK_SIZE {
                true => {
                    let buf = self.pack_buffer()?;
                    Some(std::mem::replace(&mut *pb, PackBuilder::from_buffer(buf)))
                }
                false => None,
            };
            Ok::<_, Error>((stored, full))
        })??;
        match t {
            BlobType::Data => &self.data_blobs,
            BlobType::Tree => &self.tree_blobs,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.data_added
            .fetch_add(plain.len() as u64, Ordering::Relaxed);
        self.data_added_packed
            .fetch_add(u64::from(stored), Ordering::Relaxed);
        if let Some(pb) = full {
            self.send(pb)?;
        }
        Ok(true)
    }

    /// A buffer for the next pack: a free one, a new one while fewer than
    /// [`PACK_BUFFERS`] exist, or else the next one the writer frees (so a
    /// slow disk holds the backup back instead of growing memory).
    fn pack_buffer(&self) -> Result<Vec<u8>> {
        if let Ok(buf) = self.free_packs.try_recv() {
            return Ok(buf);
        }
        if self.pack_buffers.fetch_add(1, Ordering::SeqCst) < PACK_BUFFERS {
            return Ok(Vec::with_capacity(PACK_CAPACITY + super::pack::PACK_ALIGN));
        }
        self.pack_buffers.fetch_sub(1, Ordering::SeqCst);
        self.free_packs
            .recv()
            .map_err(|_| Error::new(crate::ErrorKind::Io, "pack writer stopped"))
    }

    /// Encodes and stores a tree; returns its id.
    pub fn save_tree(&self, tree: Tree) -> Result<Id> {
        let bytes = tree.encode();
        let id = Id::hash(&bytes);
        self.save(BlobType::Tree, id, &bytes)?;
        Ok(id)
    }

    fn send(&self, pb: PackBuilder) -> Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| Error::new(crate::ErrorKind::Io, "pack writer closed"))?;
        if tx.send(pb).is_err() {
            return Err(Error::new(
                crate::ErrorKind::Io,
                "pack writer stopped (see the error it reported)",
            ));
        }
        Ok(())
    }

    /// Writes the remaining packs and the index; returns what was added.
    pub fn finish(mut self) -> Result<SaverStats> {
        for pb in [
            std::mem::take(&mut *self.data.lock()),
            std::mem::take(&mut *self.tree.lock()),
        ] {
            if !pb.is_empty() {
                self.send(pb)?;
            }
        }
        drop(self.tx.take());
        if self.writers.is_empty() {
            return Err(Error::new(crate::ErrorKind::Io, "no pack writer"));
        }
        let mut pending = IndexFile::default();
        let mut failed = None;
        for w in std::mem::take(&mut self.writers) {
            match w.join() {
                Ok(Ok(f)) => pending.packs.extend(f.packs),
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => {
                    failed = failed.or(Some(Error::new(
                        crate::ErrorKind::Io,
                        "pack writer panicked",
                    )))
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.repo
            .backend()
            .sync()
            .map_err(|e| Error::io("syncing packs", e))?;
        if !pending.packs.is_empty() {
            self.repo.save_unpacked(FileType::Index, &pending)?;
        }
        Ok(SaverStats {
            data_blobs: self.data_blobs.load(Ordering::Relaxed),
            tree_blobs: self.tree_blobs.load(Ordering::Relaxed),
            data_added: self.data_added.load(Ordering::Relaxed),
            data_added_packed: self.data_added_packed.load(Ordering::Relaxed),
            packs: self.packs.load(Ordering::Relaxed),
        })
    }
}

fn write_packs(
    repo: &Repository,
    rx: &Receiver<PackBuilder>,
    packs: &AtomicU64,
    free: &Sender<Vec<u8>>,
) -> Result<IndexFile> {
    let mut pending = IndexFile::default();
    for pb in rx.iter() {
        let fin = pb.finish(repo.key());
        let (id, blobs) = (fin.id, &fin.blobs);
        repo.backend()
            .write(FileType::Pack, &id.to_hex(), fin.bytes())
            .map_err(|e| Error::io(format!("writing pack {}", id.short()), e))?;
        repo.index_pack(id, blobs);
        pending.add_pack(id, blobs);
        let _ = free.try_send(fin.buf);
        packs.fetch_add(1, Ordering::Relaxed);
        if pending.blob_count() >= INDEX_BLOBS {
            // The index may only name packs that are durably in place.
            repo.backend()
                .sync()
                .map_err(|e| Error::io("syncing packs", e))?;
            repo.save_unpacked(FileType::Index, &std::mem::take(&mut pending))?;
        }
    }
    Ok(pending)
}
