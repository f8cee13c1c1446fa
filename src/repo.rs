//! The repository: opens a backend with a password and turns its files into
//! typed, verified objects — config, key files, index, snapshots, blobs.
//!
//! Every object read is authenticated (MAC) and, where it has an id, checked
//! against it (SHA-256 of the file or of the blob's plaintext), so damage is
//! reported with the object's id and never returned as data.

pub mod blob_cache;
pub mod config;
pub mod index;
pub mod keyfile;
pub mod lock;
pub mod pack;
pub mod saver;

use std::io::Read;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Backend, FileType};
use crate::crypto::Key;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
pub use blob_cache::BlobCache;
pub use config::Config;
pub use index::{Index, IndexFile};
pub use keyfile::{KdfParams, KeyFile};
pub use pack::{BlobType, PackedBlob};

/// How blobs and unpacked files are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Store uncompressed.
    Off,
    /// zstd at this level.
    Level(i32),
}

impl Compression {
    /// `auto`: zstd level 2. restic's `auto` (the Go zstd encoder's default
    /// speed) compresses about like C zstd level 2; on the benchmark data
    /// level 2 gave the same repository size as restic with 15% less CPU
    /// than level 3 (docs/performance.md).
    pub const AUTO: Compression = Compression::Level(2);
    /// restic's `max`.
    pub const MAX: Compression = Compression::Level(19);

    /// Parses `auto`, `off`, `max` or a zstd level 1..=22.
    pub fn parse(s: &str) -> Option<Compression> {
        match s {
            "auto" => Some(Compression::AUTO),
            "off" => Some(Compression::Off),
            "max" => Some(Compression::MAX),
            n => n
                .parse()
                .ok()
                .filter(|l| (1..=22).contains(l))
                .map(Compression::Level),
        }
    }
}

/// Largest plaintext of an unpacked file (index, snapshot, lock) or blob we
/// are willing to decompress: a bound against hostile zstd frames.
pub const MAX_PLAINTEXT: usize = 1 << 30;

/// An open repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    key: Key,
    key_name: String,
    config: Config,
    index: RwLock<Index>,
    index_loaded: std::sync::atomic::AtomicBool,
    /// The index files merged into `index` so far.
    index_files: parking_lot::Mutex<std::collections::HashSet<Id>>,
    cache: BlobCache,
    compression: Compression,
}

/// Decompresses a zstd frame, refusing output beyond `max` bytes.
pub fn decompress_bounded(data: &[u8], max: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let dec = zstd::stream::read::Decoder::new(data)?;
    dec.take(max as u64 + 1).read_to_end(&mut out)?;
    if out.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "decompressed size over limit",
        ));
    }
    Ok(out)
}

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses a blob whose plaintext length the index gives, with a
/// per-thread zstd context (creating one per blob cost ~3% of a restore).
/// Output beyond `len` is an error, so a hostile frame cannot grow memory.
///
/// `len` is untrusted too (an index or pack header claims it): it is
/// refused above [`MAX_PLAINTEXT`], and `len` bytes are set aside up front
/// only when the frame itself states that size. Other frames (no size in
/// the header, or several frames) are decompressed as a stream, so memory
/// grows with the real output, never with the claim alone.
pub fn decompress_exact(data: &[u8], len: usize) -> std::io::Result<Vec<u8>> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    if len > MAX_PLAINTEXT {
        return Err(invalid(format!(
            "claimed size {len} exceeds the {MAX_PLAINTEXT} byte limit"
        )));
    }
    match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(n)) if n == len as u64 => {}
        Ok(Some(n)) if n > len as u64 => {
            return Err(invalid(format!(
                "frame holds {n} bytes, more than the {len} expected"
            )));
        }
        Ok(_) => return decompress_bounded(data, len),
        Err(_) => return Err(invalid("not a zstd frame".into())),
    }
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(zstd::bulk::Decompressor::new()?);
        }
        match cell.as_mut() {
            Some(d) => d.decompress(data, len),
            None => decompress_bounded(data, len),
        }
    })
}

fn not_a_repo(backend: &dyn Backend) -> Error {
    Error::new(
        ErrorKind::NotARepository,
        format!(
            "{} is not a repository: no config file found (create one with `vaultfs init`)",
            backend.location()
        ),
    )
}

impl Repository {
    /// Creates a new version-2 repository with one key for `password`.
    pub fn init(backend: Arc<dyn Backend>, password: &[u8], kdf: KdfParams) -> Result<Repository> {
        backend
            .create()
            .map_err(|e| Error::io("creating repository", e))?;
        let key = Key::random();
        let config = Config::new_v2();
        let kf = KeyFile::create(password, &key, kdf)?;
        let kbytes = kf.to_bytes();
        let key_name = Id::hash(&kbytes).to_hex();
        backend
            .write(FileType::Key, &key_name, &kbytes)
            .map_err(|e| Error::io("writing key", e))?;
        let json =
            serde_json::to_vec(&config).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        // The config is never compressed (restic reads it before it knows the version).
        backend
            .write(FileType::Config, "config", &key.encrypt(&json))
            .map_err(|e| Error::io("writing config", e))?;
        Ok(Repository::assemble(backend, key, key_name, config))
    }

    fn assemble(
        backend: Arc<dyn Backend>,
        key: Key,
        key_name: String,
        config: Config,
    ) -> Repository {
        Repository {
            backend,
            key,
            key_name,
            config,
            index: RwLock::new(Index::new()),
            index_loaded: std::sync::atomic::AtomicBool::new(false),
            index_files: parking_lot::Mutex::new(std::collections::HashSet::new()),
            cache: BlobCache::new(64 << 20),
            compression: Compression::AUTO,
        }
    }

    /// Opens a repository: finds a key file that `password` unlocks and reads
    /// the config. The index is not loaded yet (see [`Repository::load_index`]).
    pub fn open(backend: Arc<dyn Backend>, password: &[u8]) -> Result<Repository> {
        let configs = backend
            .list(FileType::Config)
            .map_err(|e| Error::io("listing config", e))?;
        if configs.is_empty() {
            return Err(not_a_repo(&*backend));
        }
        let keys = backend
            .list(FileType::Key)
            .map_err(|e| Error::io("listing keys", e))?;
        let mut found = None;
        for k in keys.iter().take(64) {
            let bytes = backend
                .read(FileType::Key, &k.name)
                .map_err(|e| Error::io(format!("key {}", k.name), e))?;
            let Ok(kf) = KeyFile::parse(&k.name, &bytes) else {
                continue;
            };
            if let Ok(Some(master)) = kf.open(password) {
                found = Some((master, k.name.clone()));
                break;
            }
        }
        let Some((key, key_name)) = found else {
            return Err(Error::new(
                ErrorKind::WrongPassword,
                "wrong password or no key found",
            ));
        };
        let raw = backend
            .read(FileType::Config, "config")
            .map_err(|e| Error::io("reading config", e))?;
        let plain = key.decrypt(&raw).map_err(|e| Error::crypto("config", e))?;
        let config: Config = serde_json::from_slice(&plain)
            .map_err(|e| Error::damaged(format!("config: invalid JSON: {e}")))?;
        if config.version != 1 && config.version != 2 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "repository format version {} is not supported",
                    config.version
                ),
            ));
        }
        Ok(Repository::assemble(backend, key, key_name, config))
    }

    /// Sets the compression for data written from now on (ignored for v1).
    pub fn set_compression(&mut self, c: Compression) {
        self.compression = c;
    }

    /// The compression in effect for new data.
    pub fn compression(&self) -> Compression {
        if self.config.version < 2 {
            Compression::Off
        } else {
            self.compression
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The master key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The name of the key file that was used to open the repository.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Encodes and stores an unpacked file (index, snapshot, lock); returns its id.
    pub fn save_unpacked<T: Serialize>(&self, t: FileType, value: &T) -> Result<Id> {
        let json =
            serde_json::to_vec(value).map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        let plain = match self.compression() {
            Compression::Off => json,
            Compression::Level(l) => {
                let mut p = vec![2u8];
                p.extend(zstd::bulk::compress(&json, l).map_err(|e| Error::io("compressing", e))?);
                p
            }
        };
        let data = self.key.encrypt(&plain);
        let id = Id::hash(&data);
        self.backend
            .write(t, &id.to_hex(), &data)
            .map_err(|e| Error::io(format!("writing {}/{}", t.dir(), id.short()), e))?;
        Ok(id)
    }

    /// Reads, verifies and decodes an unpacked file to its plaintext JSON.
    pub fn load_unpacked_raw(&self, t: FileType, id: &Id) -> Result<Vec<u8>> {
        let what = format!("{}/{}", t.dir(), id);
        let data = self
            .backend
            .read(t, &id.to_hex())
            .map_err(|e| Error::io(&what, e))?;
        let got = Id::hash(&data);
        if got != *id {
            return Err(Error::hash_mismatch(&what, id, &got));
        }
        let plain = self
            .key
            .decrypt(&data)
            .map_err(|e| Error::crypto(&what, e))?;
        match plain.first() {
            Some(b'{') | Some(b'[') => Ok(plain),
            Some(2) => decompress_bounded(&plain[1..], MAX_PLAINTEXT)
                .map_err(|e| Error::damaged(format!("{what}: zstd: {e}"))),
            Some(v) => Err(Error::damaged(format!(
                "{what}: unknown encoding version {v}"
            ))),
            None => Err(Error::damaged(format!("{what}: empty"))),
        }
    }

    /// Reads and parses an unpacked JSON file.
    pub fn load_unpacked<T: DeserializeOwned>(&self, t: FileType, id: &Id) -> Result<T> {
        let plain = self.load_unpacked_raw(t, id)?;
        serde_json::from_slice(&plain)
            .map_err(|e| Error::damaged(format!("{}/{}: invalid JSON: {e}", t.dir(), id)))
    }

    /// Ids of all files of a type (names that are not ids are skipped).
    pub fn list_ids(&self, t: FileType) -> Result<Vec<Id>> {
        let files = self
            .backend
            .list(t)
            .map_err(|e| Error::io(format!("listing {}", t.dir()), e))?;
        Ok(files.iter().filter_map(|f| f.name.parse().ok()).collect())
    }

    /// Resolves an id prefix of a file of type `t`.
    pub fn find_id(&self, t: FileType, prefix: &str) -> Result<Id> {
        let matches: Vec<Id> = self
            .list_ids(t)?
            .into_iter()
            .filter(|id| id.has_prefix(prefix))
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::new(
                ErrorKind::NotFound,
                format!("no {} matches {prefix:?}", t.dir()),
            )),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{prefix:?} is ambiguous: {} {} match",
                    matches.len(),
                    t.dir()
                ),
            )),
        }
    }

    /// Loads every index file into memory (in parallel).
    pub fn load_index(&self) -> Result<()> {
        self.merge_index_files()?;
        self.index_loaded
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Reads the index files not merged yet (in parallel) and merges them;
    /// returns how many.
    fn merge_index_files(&self) -> Result<usize> {
        let mut seen = self.index_files.lock();
        let new: Vec<Id> = self
            .list_ids(FileType::Index)?
            .into_iter()
            .filter(|id| !seen.contains(id))
            .collect();
        let files = crate::parallel::map(new.clone(), |id| {
            self.load_unpacked::<IndexFile>(FileType::Index, &id)
        })?;
        let mut idx = self.index.write();
        for f in &files {
            idx.add_file(f);
        }
        seen.extend(new.iter().copied());
        Ok(new.len())
    }

    /// Merges index files written since the index was loaded (by a backup
    /// running meanwhile); returns how many were new. Long-lived readers
    /// (the mounted tree) call this before showing new snapshots, whose
    /// index files a backup always writes first.
    pub fn refresh_index(&self) -> Result<usize> {
        self.merge_index_files()
    }

    /// Loads the index unless that was done already.
    pub fn ensure_index(&self) -> Result<()> {
        if self.index_loaded.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        self.load_index()
    }

    /// The in-memory index.
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read()
    }

    /// Adds a freshly written pack to the in-memory index.
    pub fn index_pack(&self, pack: Id, blobs: &[PackedBlob]) {
        self.index.write().add_pack(pack, blobs.iter().copied());
    }

    /// Reads, verifies and decodes one blob from its pack (no cache).
    pub fn read_blob_at(&self, pack: &Id, b: &PackedBlob) -> Result<Vec<u8>> {
        let what = format!(
            "{} blob {} in pack {}",
            b.blob_type.as_str(),
            b.id,
            pack.short()
        );
        let mut data = self
            .backend
            .read_at(
                FileType::Pack,
                &pack.to_hex(),
                u64::from(b.offset),
                b.length as usize,
            )
            .map_err(|e| Error::io(&what, e))?;
        self.decode_blob(&what, b, &mut data)
    }

    /// Reads a pack's header from its tail, without the blobs: the last 4
    /// bytes give the header length, then only the header is read,
    /// decrypted and parsed. `size` is the pack file's size.
    pub fn read_pack_header(&self, pack: &Id, size: u64) -> Result<Vec<PackedBlob>> {
        let name = pack.to_hex();
        let what = || format!("pack {pack}");
        let trailer = self
            .backend
            .read_at(FileType::Pack, &name, size.saturating_sub(4), 4)
            .map_err(|e| Error::io(what(), e))?;
        let trailer: [u8; 4] = trailer
            .as_slice()
            .try_into()
            .map_err(|_| Error::damaged(format!("{}: pack shorter than 4 bytes", what())))?;
        let (start, hlen) = pack::header_range(size, trailer, pack)?;
        let enc = self
            .backend
            .read_at(FileType::Pack, &name, start, hlen as usize)
            .map_err(|e| Error::io(what(), e))?;
        let plain = self
            .key
            .decrypt(&enc)
            .map_err(|e| Error::crypto(format!("{}: header", what()), e))?;
        pack::parse_header(&plain, start, pack)
    }

    /// Verifies and decodes an encrypted blob's bytes.
    pub fn decode_blob(&self, what: &str, b: &PackedBlob, data: &mut Vec<u8>) -> Result<Vec<u8>> {
        let n = self
            .key
            .decrypt_in_place(data)
            .map_err(|e| Error::crypto(what, e))?;
        data.truncate(n);
        let plain = match b.uncompressed_length {
            None => std::mem::take(data),
            Some(len) => {
                let out = decompress_exact(data, len as usize)
                    .map_err(|e| Error::damaged(format!("{what}: zstd: {e}")))?;
                if out.len() != len as usize {
                    return Err(Error::damaged(format!(
                        "{what}: decompressed to {} bytes, index says {len}",
                        out.len()
                    )));
                }
                out
            }
        };
        let got = Id::hash(&plain);
        if got != b.id {
            return Err(Error::hash_mismatch(what, &b.id, &got));
        }
        Ok(plain)
    }

    /// A blob's plaintext, read and verified without the cache (for data
    /// read once, like a restore's).
    pub fn read_blob(&self, t: BlobType, id: &Id) -> Result<Vec<u8>> {
        let loc = self.index().get(t, id).ok_or_else(|| {
            Error::missing(format!("{} blob {id} is not in the index", t.as_str()))
        })?;
        match self.read_blob_at(&loc.pack, &loc.blob) {
            Ok(data) => Ok(data),
            Err(e) => self.read_other_copy(t, id, &loc.pack).ok_or(e),
        }
    }

    /// The first intact copy of a blob outside `failed` (the index keeps
    /// every copy; the first error is the one reported if none is good).
    fn read_other_copy(&self, t: BlobType, id: &Id, failed: &Id) -> Option<Vec<u8>> {
        let copies = self.index().copies(t, id);
        copies
            .iter()
            .filter(|l| l.pack != *failed)
            .find_map(|l| self.read_blob_at(&l.pack, &l.blob).ok())
    }

    /// A blob's plaintext, through the cache.
    pub fn load_blob(&self, t: BlobType, id: &Id) -> Result<Arc<Vec<u8>>> {
        self.cache
            .get_or_load(id, || self.read_blob(t, id).map(Arc::new))
    }

    /// Does the repository (index) hold this blob?
    pub fn has_blob(&self, t: BlobType, id: &Id) -> bool {
        self.index().contains(t, id)
    }

    /// Writes a new key file for `password`; returns its id.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams) -> Result<Id> {
        let kf = KeyFile::create(password, &self.key, kdf)?;
        let bytes = kf.to_bytes();
        let id = Id::hash(&bytes);
        self.backend
            .write(FileType::Key, &id.to_hex(), &bytes)
            .map_err(|e| Error::io("writing key", e))?;
        Ok(id)
    }

    /// All key files with their metadata.
    pub fn list_keys(&self) -> Result<Vec<(Id, KeyFile)>> {
        let mut out = Vec::new();
        for id in self.list_ids(FileType::Key)? {
            let bytes = self
                .backend
                .read(FileType::Key, &id.to_hex())
                .map_err(|e| Error::io("reading key", e))?;
            out.push((id, KeyFile::parse(&id.to_hex(), &bytes)?));
        }
        Ok(out)
    }

    /// Removes a key file; refuses to remove the one in use.
    pub fn remove_key(&self, id: &Id) -> Result<()> {
        if id.to_hex() == self.key_name {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "refusing to remove the key currently in use; open the repository with another key",
            ));
        }
        self.backend
            .remove(FileType::Key, &id.to_hex())
            .map_err(|e| Error::io(format!("removing key {id}"), e))
    }
}

impl Repository {
    /// Loads and parses a tree blob.
    pub fn load_tree(&self, id: &Id) -> Result<crate::snapshot::Tree> {
        let data = self.load_blob(BlobType::Tree, id)?;
        crate::snapshot::Tree::decode(id, &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemBackend;

    fn frame_without_size(data: &[u8]) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(3).expect("compressor");
        c.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(false))
            .expect("parameter");
        let frame = c.compress(data).expect("compress");
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&frame),
            Ok(None)
        ));
        frame
    }

    #[test]
    fn decompress_exact_bounds_the_claimed_length() {
        let text = b"restic blob ".repeat(100);
        let sized = zstd::bulk::compress(&text, 3).expect("compress");
        let no_size = frame_without_size(&text);
        for frame in [&sized, &no_size] {
            assert_eq!(decompress_exact(frame, text.len()).expect("exact"), text);
            // More output than claimed is refused, with or without a size in the frame.
            assert!(decompress_exact(frame, text.len() - 1).is_err());
        }
        // Less output than claimed comes back short (the caller compares).
        for frame in [&sized, &no_size] {
            let short = decompress_exact(frame, text.len() + 1).expect("short");
            assert_eq!(short.len(), text.len());
        }
        // Two frames: the first one's size is not the total.
        let mut two = sized.clone();
        two.extend_from_slice(&sized);
        assert_eq!(
            decompress_exact(&two, 2 * text.len()).expect("two frames"),
            text.repeat(2)
        );
        // Claims beyond the limit are refused before anything is read.
        let e = decompress_exact(&sized, MAX_PLAINTEXT + 1).expect_err("over limit");
        assert!(e.to_string().contains("exceeds"), "{e}");
        assert!(decompress_exact(b"no zstd here", 12).is_err());
    }

    /// Found by the `blob` fuzz target: a blob claiming an uncompressed
    /// length near 4 GiB made `decode_blob` allocate all of it before the
    /// (invalid) frame was looked at.
    #[test]
    fn decode_blob_refuses_hostile_uncompressed_length() {
        let kdf = KdfParams {
            n: 1 << 10,
            r: 8,
            p: 1,
        };
        let repo = Repository::init(Arc::new(MemBackend::new()), b"pw", kdf).expect("init");
        let payload = [255u8, 255, 255, 255, 31, 37, 44, 32, 98, 108, 111, 98, 10];
        let text = b"hello".repeat(50);
        let frame = zstd::bulk::compress(&text, 3).expect("compress");
        let no_size = frame_without_size(&text);
        let cases: [(&[u8], u32); 4] = [
            (&payload, 0xFFFF_0DF0),
            (&frame, u32::MAX),
            (&no_size, u32::MAX),
            (&no_size, (MAX_PLAINTEXT / 2) as u32),
        ];
        for (data, claimed) in cases {
            let b = PackedBlob {
                blob_type: BlobType::Data,
                id: Id::hash(&text),
                offset: 0,
                length: (data.len() + crate::crypto::OVERHEAD) as u32,
                uncompressed_length: Some(claimed),
            };
            let mut enc = repo.key().encrypt(data);
            let e = repo
                .decode_blob("blob", &b, &mut enc)
                .expect_err("hostile length");
            assert_eq!(e.kind(), ErrorKind::Damaged, "{e}");
        }
        let b = PackedBlob {
            blob_type: BlobType::Data,
            id: Id::hash(&text),
            offset: 0,
            length: (no_size.len() + crate::crypto::OVERHEAD) as u32,
            uncompressed_length: Some(text.len() as u32),
        };
        let mut enc = repo.key().encrypt(&no_size);
        assert_eq!(repo.decode_blob("blob", &b, &mut enc).expect("ok"), text);
    }
}
