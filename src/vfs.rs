//! The one tree: every snapshot of a repository, and every disk image inside
//! one opened down to its partitions, as a read-only directory tree.
//!
//! ```text
//! ids/<short id>/...            each snapshot's files
//! snapshots/<time>/...          by time; snapshots/latest -> the newest
//! hosts/<host>/<time>/...
//! tags/<tag>/<time>/...
//! .../disk.vmdk.contents/       disk.raw, partitions.txt, pN.raw, and
//!                               pN/ (fs/): the files of each volume whose
//!                               filesystem has a reader
//! ```
//!
//! FUSE, the WinFsp adapter and the CLI's `ls`, `cat`, `find` and `restore`
//! are all clients of this module. Everything is lazy: a directory's tree
//! blob is read when it is listed, a file is probed for a disk image when
//! its directory is listed (one read of its first blob, the verdict
//! remembered by first blob and size), and an image is opened when its
//! `.contents/` directory is entered. Damage stays local: a directory whose
//! tree cannot be read is listed by its parent and fails when entered; an
//! image that cannot be opened shows a `.contents` entry that fails the
//! same way.

mod contents;
mod fsdir;
mod root;
mod snapdir;
mod source;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
pub use vaultfs_formats::fs::Xattr;
pub use vaultfs_formats::io::{ReadAt, Source};

use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::repo::Repository;
pub(crate) use contents::worth_probing;
pub use contents::{CONTENTS_SUFFIX, image_dir};
pub use fsdir::meta_attr;
pub use root::REFRESH_INTERVAL;
pub use source::SnapshotSource;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// A fifo.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A socket.
    Socket,
}

/// An entry's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// What it is.
    pub kind: Kind,
    /// Size in bytes (a symlink: its target's length).
    pub size: u64,
    /// Permission bits with setuid/setgid/sticky (`0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Device number of a device node.
    pub rdev: u64,
    /// Modification time.
    pub mtime: SystemTime,
    /// Access time.
    pub atime: SystemTime,
    /// Status change time.
    pub ctime: SystemTime,
}

impl Attr {
    /// A synthesised directory (the tree's own structure), dated `time`.
    pub fn dir(time: SystemTime) -> Attr {
        Attr {
            kind: Kind::Dir,
            size: 0,
            perm: 0o555,
            uid: 0,
            gid: 0,
            nlink: 2,
            rdev: 0,
            mtime: time,
            atime: time,
            ctime: time,
        }
    }

    /// A synthesised read-only file of `size` bytes, dated `time`.
    pub fn file(size: u64, time: SystemTime) -> Attr {
        Attr {
            kind: Kind::File,
            size,
            perm: 0o444,
            nlink: 1,
            ..Attr::dir(time)
        }
    }
}

/// A node of the tree.
#[derive(Clone)]
pub enum Entry {
    /// A directory.
    Dir(Arc<dyn Dir>),
    /// A regular file.
    File(Arc<dyn File>),
    /// A symbolic link.
    Symlink(Arc<Symlink>),
    /// A fifo, device or socket: metadata only.
    Special(Attr),
    /// Something that exists but cannot be read: it lists with `attr` and
    /// fails with `error` when opened or entered.
    Broken(Arc<Broken>),
}

impl Entry {
    /// The entry's metadata.
    pub fn attr(&self) -> Attr {
        match self {
            Entry::Dir(d) => d.attr(),
            Entry::File(f) => f.attr(),
            Entry::Symlink(s) => s.attr.clone(),
            Entry::Special(a) => a.clone(),
            Entry::Broken(b) => b.attr.clone(),
        }
    }

    /// Forensic facts beyond [`Attr`] ([`File::details`]); none for
    /// symlinks, special files and broken entries.
    pub fn details(&self) -> Result<Vec<(String, String)>> {
        match self {
            Entry::Dir(d) => d.details(),
            Entry::File(f) => f.details(),
            _ => Ok(Vec::new()),
        }
    }

    /// The extended attributes (full Linux names, raw values): those the
    /// backup recorded for a snapshot's entries, those the filesystem
    /// holds for a disk image's entries; none for special files, broken
    /// entries and the tree's own structure.
    pub fn xattrs(&self) -> Result<Vec<Xattr>> {
        match self {
            Entry::Dir(d) => d.xattrs(),
            Entry::File(f) => f.xattrs(),
            Entry::Symlink(s) => s.xattrs.as_ref().map_or(Ok(Vec::new()), |f| f()),
            _ => Ok(Vec::new()),
        }
    }

    /// The directory, or an error saying what this is instead.
    pub fn as_dir(&self, path: &str) -> Result<Arc<dyn Dir>> {
        match self {
            Entry::Dir(d) => Ok(d.clone()),
            Entry::Broken(b) => Err(b.error(path)),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{path} is not a directory"),
            )),
        }
    }

    /// Opens a regular file's bytes, or says what this is instead.
    pub fn open(&self, path: &str) -> Result<Source> {
        match self {
            Entry::File(f) => f.open().map_err(|e| e.context(path)),
            Entry::Broken(b) => Err(b.error(path)),
            Entry::Dir(_) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{path} is a directory"),
            )),
            Entry::Symlink(s) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{path} is a symbolic link to {}",
                    String::from_utf8_lossy(&s.target)
                ),
            )),
            Entry::Special(_) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{path} is not a regular file"),
            )),
        }
    }
}

/// A directory's children, sorted by name (byte order), names unique.
pub struct Listing {
    entries: Vec<(String, Entry)>,
}

impl Listing {
    /// Sorts `entries` by name; of duplicates the first is kept.
    pub fn new(mut entries: Vec<(String, Entry)>) -> Listing {
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        entries.dedup_by(|b, a| a.0 == b.0);
        Listing { entries }
    }

    /// The entries in name order.
    pub fn entries(&self) -> &[(String, Entry)] {
        &self.entries
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.0.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A directory of the tree.
pub trait Dir: Send + Sync {
    /// Its metadata.
    fn attr(&self) -> Attr;

    /// Its children. Computed on first call and remembered, except for the
    /// root directories, which follow new snapshots (see
    /// [`REFRESH_INTERVAL`]).
    fn list(&self) -> Result<Arc<Listing>>;

    /// The child called `name`, if any.
    fn lookup(&self, name: &str) -> Result<Option<Entry>> {
        Ok(self.list()?.get(name).cloned())
    }

    /// For the root directory of a volume inside a disk image (`pN/`,
    /// `fs/`): its opened filesystem, for what the tree does not show
    /// (deleted files). `None` for every other directory.
    fn volume(&self) -> Result<Option<Arc<dyn vaultfs_formats::fs::Filesystem>>> {
        Ok(None)
    }

    /// Facts beyond [`Attr`] for forensic listing, as for
    /// [`File::details`].
    fn details(&self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// Its extended attributes ([`Entry::xattrs`]).
    fn xattrs(&self) -> Result<Vec<Xattr>> {
        Ok(Vec::new())
    }
}

/// A regular file of the tree.
pub trait File: Send + Sync {
    /// Its metadata.
    fn attr(&self) -> Attr;

    /// Its bytes.
    fn open(&self) -> Result<Source>;

    /// Facts beyond [`Attr`] for forensic listing, as `(name, value)`
    /// pairs: for a file inside a disk image's filesystem, its creation
    /// time and what the filesystem records (NTFS `$FILE_NAME` times, DOS
    /// attributes). Empty elsewhere.
    fn details(&self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// Its extended attributes ([`Entry::xattrs`]).
    fn xattrs(&self) -> Result<Vec<Xattr>> {
        Ok(Vec::new())
    }
}

/// Reads an entry's extended attributes when asked.
pub type XattrFn = Arc<dyn Fn() -> Result<Vec<Xattr>> + Send + Sync>;

/// A symbolic link.
pub struct Symlink {
    /// Its metadata.
    pub attr: Attr,
    /// Where it points, as stored.
    pub target: Vec<u8>,
    /// Its extended attributes, if it may have any.
    pub xattrs: Option<XattrFn>,
}

/// An entry that cannot be read.
pub struct Broken {
    /// What it lists as.
    pub attr: Attr,
    /// Why it cannot be read.
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
}

impl Broken {
    /// A broken entry listing as `attr` that fails with `e`.
    pub fn new(attr: Attr, e: &Error) -> Broken {
        Broken {
            attr,
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// The error, naming `path`.
    pub fn error(&self, path: &str) -> Error {
        Error::new(self.kind, format!("{path}: {}", self.message))
    }
}

/// Settings of the tree.
#[derive(Clone, Debug)]
pub struct Options {
    /// Open disk images into `<name>.contents/`.
    pub images: bool,
    /// How many blobs to read ahead of a sequential reader.
    pub readahead: usize,
    /// How long the root directories trust their snapshot list.
    pub refresh: Duration,
    /// How filesystems inside images are opened.
    pub fs: vaultfs_formats::fs::FsOptions,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            images: true,
            readahead: 4,
            refresh: REFRESH_INTERVAL,
            fs: Default::default(),
        }
    }
}

/// State shared by every node of one tree.
pub(crate) struct Shared {
    pub(crate) repo: Arc<Repository>,
    pub(crate) options: Options,
    /// Probe verdicts by (first blob, size): is this file a disk image?
    pub(crate) probes: Mutex<HashMap<(Id, u64), bool>>,
    pub(crate) prefetch: source::Prefetcher,
}

/// The tree of a repository.
pub struct Vfs {
    shared: Arc<Shared>,
    root: Arc<root::Root>,
}

impl Vfs {
    /// The tree of `repo`, whose index must be loaded.
    pub fn new(repo: Arc<Repository>, options: Options) -> Vfs {
        let prefetch = source::Prefetcher::new(repo.clone(), options.readahead.min(8));
        let shared = Arc::new(Shared {
            repo,
            options,
            probes: Mutex::new(HashMap::new()),
            prefetch,
        });
        let root = root::Root::new(shared.clone());
        Vfs { shared, root }
    }

    /// The root directory.
    pub fn root(&self) -> Entry {
        root::root_entry(&self.root)
    }

    /// The tree of one snapshot's root, as `ids/<id>` shows it.
    pub fn snapshot_root(&self, id: &Id) -> Result<Entry> {
        let snap: crate::snapshot::Snapshot = self
            .shared
            .repo
            .load_unpacked(crate::backend::FileType::Snapshot, id)?;
        Ok(snapdir::snapshot_root(&self.shared, &snap))
    }

    /// The entry at `path` below `from` ("/a/b", "a/b"; empty and `.`
    /// components are skipped; `..` is refused).
    pub fn resolve_from(from: &Entry, path: &str) -> Result<Entry> {
        let mut entry = from.clone();
        let mut walked = String::new();
        for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if comp == ".." {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("path {path:?}: `..` is not allowed"),
                ));
            }
            let shown = if walked.is_empty() {
                "/".to_string()
            } else {
                walked.clone()
            };
            let dir = entry.as_dir(&shown)?;
            walked.push('/');
            walked.push_str(comp);
            entry = dir
                .lookup(comp)
                .map_err(|e| e.context(&shown))?
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("{walked}: no such file or directory"),
                    )
                })?;
        }
        Ok(entry)
    }

    /// The entry at `path` from the root (`/ids/1a2b3c4d/etc/hosts`).
    pub fn resolve(&self, path: &str) -> Result<Entry> {
        Vfs::resolve_from(&self.root(), path)
    }
}

/// Converts a snapshot time to `SystemTime` (times before 1970 clamp to
/// the epoch, as FUSE cannot show them).
pub(crate) fn system_time(t: &chrono::DateTime<chrono::FixedOffset>) -> SystemTime {
    let nanos = t.timestamp_nanos_opt().unwrap_or(0);
    if nanos <= 0 {
        SystemTime::UNIX_EPOCH
    } else {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64)
    }
}
