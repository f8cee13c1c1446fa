//! Storage of repository files: the narrow `Backend` trait and its
//! implementations (`local` directory, `mem` for tests).
//!
//! A backend stores opaque, already encrypted files by type and name; it knows
//! nothing of keys, packs or JSON. Writes are atomic: a reader never sees a
//! half-written file under its final name.

pub mod local;
pub mod mem;

use std::io::{self, Read};

pub use local::LocalBackend;
pub use mem::MemBackend;

/// The kinds of file a repository holds, one directory each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    /// The single `config` file.
    Config,
    /// `keys/`: password-protected copies of the master key.
    Key,
    /// `snapshots/`.
    Snapshot,
    /// `index/`.
    Index,
    /// `data/xx/`: pack files.
    Pack,
    /// `locks/`.
    Lock,
}

impl FileType {
    /// Every type that lives in a directory (all but `Config`).
    pub const DIRS: [FileType; 5] = [
        FileType::Key,
        FileType::Snapshot,
        FileType::Index,
        FileType::Pack,
        FileType::Lock,
    ];

    /// The directory name inside the repository.
    pub fn dir(self) -> &'static str {
        match self {
            FileType::Config => "",
            FileType::Key => "keys",
            FileType::Snapshot => "snapshots",
            FileType::Index => "index",
            FileType::Pack => "data",
            FileType::Lock => "locks",
        }
    }
}

/// A stored file listed by `Backend::list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The file's name (the hex id for all types but `Config`).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Where repository files live.
///
/// Contract: `write` is atomic and durable when it returns; `read_at` of a
/// range past the end of the file is an error (`UnexpectedEof`), never a
/// silently short result; a missing file is `io::ErrorKind::NotFound`.
pub trait Backend: Send + Sync {
    /// A human-readable location (the directory path, `mem:`, a URL).
    fn location(&self) -> String;
    /// Creates the empty layout; fails if a `config` already exists.
    fn create(&self) -> io::Result<()>;
    /// Lists the files of one type (`Config` lists `config` if present).
    fn list(&self, t: FileType) -> io::Result<Vec<FileInfo>>;
    /// Reads a whole file.
    fn read(&self, t: FileType, name: &str) -> io::Result<Vec<u8>>;
    /// Reads exactly `len` bytes at `offset`.
    fn read_at(&self, t: FileType, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// The size of a file.
    fn size(&self, t: FileType, name: &str) -> io::Result<u64>;
    /// Reads a file from its start, in order, without holding it in memory
    /// (a check streams whole packs through this). The default reads
    /// fixed-size ranges; a backend with real streams overrides it.
    fn open(&self, t: FileType, name: &str) -> io::Result<Box<dyn Read + Send + '_>> {
        let size = self.size(t, name)?;
        Ok(Box::new(RangeReader {
            backend: self,
            t,
            name: name.to_owned(),
            size,
            pos: 0,
            buf: Vec::new(),
            at: 0,
        }))
    }
    /// Stores a file atomically (temporary name, fsync, rename).
    fn write(&self, t: FileType, name: &str, data: &[u8]) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, t: FileType, name: &str) -> io::Result<()>;
    /// Makes every earlier `write` of a pack durable as a directory entry.
    /// Pack writes may defer the directory sync to this call (a backup
    /// writes hundreds of packs, and syncing the directory after each one
    /// stalls the pipeline on a busy disk); callers sync before they write
    /// an index that refers to the packs. Other file types are durable
    /// when `write` returns.
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// [`Backend::open`] for backends that only read ranges.
struct RangeReader<'a, B: ?Sized> {
    backend: &'a B,
    t: FileType,
    name: String,
    size: u64,
    /// File offset of the end of `buf`.
    pos: u64,
    buf: Vec<u8>,
    /// Read position inside `buf`.
    at: usize,
}

impl<B: Backend + ?Sized> Read for RangeReader<'_, B> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        const PIECE: u64 = 1 << 20;
        if self.at == self.buf.len() {
            let len = (self.size - self.pos).min(PIECE);
            if len == 0 {
                return Ok(0);
            }
            // `len` is at most PIECE, so it fits a usize.
            self.buf = self
                .backend
                .read_at(self.t, &self.name, self.pos, len as usize)?;
            self.pos += len;
            self.at = 0;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    //! The behaviour every backend must show; each implementation's tests
    //! call `run`.
    use super::*;

    pub(crate) fn run(b: &dyn Backend) {
        b.create().expect("create");
        let name = "ab".repeat(32);
        b.write(FileType::Pack, &name, b"hello world")
            .expect("write");
        assert_eq!(b.read(FileType::Pack, &name).expect("read"), b"hello world");
        assert_eq!(
            b.read_at(FileType::Pack, &name, 6, 5).expect("read_at"),
            b"world"
        );
        assert_eq!(
            b.read_at(FileType::Pack, &name, 6, 6)
                .map_err(|e| e.kind())
                .err(),
            Some(io::ErrorKind::UnexpectedEof)
        );
        // Lengths and offsets from a hostile index: refused, not allocated.
        for (offset, len) in [(6, u32::MAX as usize), (u64::MAX, 2), (12, 0)] {
            assert_eq!(
                b.read_at(FileType::Pack, &name, offset, len)
                    .map_err(|e| e.kind())
                    .err(),
                Some(io::ErrorKind::UnexpectedEof),
                "{offset}+{len}"
            );
        }
        assert_eq!(b.size(FileType::Pack, &name).expect("size"), 11);
        let stream = |name: &str| {
            let mut v = Vec::new();
            b.open(FileType::Pack, name)
                .expect("open")
                .read_to_end(&mut v)
                .expect("stream");
            v
        };
        assert_eq!(stream(&name), b"hello world");
        // Longer than one piece of the range reader, not a multiple of it.
        let big: Vec<u8> = (0..(3usize << 20) + 17).map(|i| (i % 251) as u8).collect();
        let big_name = "cd".repeat(32);
        b.write(FileType::Pack, &big_name, &big).expect("write big");
        assert!(stream(&big_name) == big, "streamed copy differs");
        b.remove(FileType::Pack, &big_name).expect("remove big");
        assert_eq!(
            b.open(FileType::Pack, &big_name)
                .map(|_| ())
                .map_err(|e| e.kind()),
            Err(io::ErrorKind::NotFound)
        );
        let list = b.list(FileType::Pack).expect("list");
        assert_eq!(
            list,
            vec![FileInfo {
                name: name.clone(),
                size: 11
            }]
        );
        assert!(b.list(FileType::Index).expect("list").is_empty());
        b.write(FileType::Pack, &name, b"replaced")
            .expect("overwrite");
        assert_eq!(b.read(FileType::Pack, &name).expect("read"), b"replaced");
        b.remove(FileType::Pack, &name).expect("remove");
        assert_eq!(
            b.read(FileType::Pack, &name).map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::NotFound)
        );
        b.write(FileType::Config, "config", b"cfg").expect("config");
        assert_eq!(
            b.read(FileType::Config, "config").expect("read cfg"),
            b"cfg"
        );
        assert_eq!(b.list(FileType::Config).expect("list cfg").len(), 1);
        assert!(
            b.create().is_err(),
            "create over an existing config must fail"
        );
    }
}
