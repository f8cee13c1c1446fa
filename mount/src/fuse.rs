//! The FUSE server (Linux, `fuser` with its pure-Rust mount: no libfuse
//! needed, only `fusermount3` when not root): a thin shim that serves any
//! root [`Entry`] of the vaultfs tree read-only.
//!
//! - Inode 1 is the root. Every other inode number is allocated the first
//!   time `(parent inode, name)` is looked up or listed and is never reused
//!   during the mount, so a path keeps its number for the mount's life. The
//!   table keeps the [`Entry`] of every inode handed out (browsing is what
//!   grows it; `forget` is ignored).
//! - A file is opened once per `open`; its byte source sits in a handle
//!   table and `read` is a positional `read_at`, so worker threads never
//!   serialise on a file. A directory's listing is taken at `opendir`, so
//!   one directory stream sees one consistent listing.
//! - Errors become errno values by kind: damage (`Damaged`, `Missing`,
//!   `Io`) is `EIO`, never `ENOENT`; `NotFound` is `ENOENT`; entering a
//!   non-directory is `ENOTDIR`; `Unsupported` is `EOPNOTSUPP`. Every write
//!   operation is `EROFS` (the kernel refuses most of them already, as the
//!   mount is `ro`).
//! - Extended attributes are served read-only (`getxattr`, `listxattr`):
//!   those the backup recorded, or those of a disk image's filesystem
//!   (the kernel shows `trusted.*` to privileged callers only). An absent
//!   name is `ENODATA`, a buffer too small `ERANGE`.
//! - Ownership and permissions are the snapshot's; the kernel checks them
//!   (`default_permissions`). Device files do not work and set-id bits are
//!   ignored (`nodev`, `nosuid`).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    BackgroundSession, BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenAccMode, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL, TimeOrNow, WriteFlags,
};
use parking_lot::{Mutex, RwLock};
use vaultfs::error::{Error, ErrorKind};
use vaultfs::vfs::{Attr, Entry, Kind, Listing, Source, Xattr};

use crate::MountError;

/// The root's inode number.
const ROOT: u64 = 1;

/// How a tree is mounted.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Let other users than the mounting one in (`allow_other`; needs
    /// `user_allow_other` in `/etc/fuse.conf` when not root).
    pub allow_other: bool,
    /// Worker threads answering the kernel.
    pub threads: usize,
    /// How long the kernel may trust an entry's attributes.
    pub ttl: Duration,
    /// The same for the root and the directories right below it (two
    /// levels), which follow new snapshots.
    pub root_ttl: Duration,
}

impl Default for MountOptions {
    fn default() -> MountOptions {
        MountOptions {
            allow_other: false,
            threads: 8,
            ttl: Duration::from_secs(5),
            root_ttl: Duration::from_secs(1),
        }
    }
}

/// One inode: what it is, and where it hangs (for `..` and messages).
struct Node {
    entry: Entry,
    parent: u64,
    name: String,
    depth: u32,
}

struct Inodes {
    nodes: HashMap<u64, Node>,
    names: HashMap<(u64, String), u64>,
    next: u64,
}

/// The filesystem the kernel talks to.
struct VaultFs {
    inodes: RwLock<Inodes>,
    files: Mutex<HashMap<u64, Source>>,
    dirs: Mutex<HashMap<u64, Arc<Listing>>>,
    /// The volumes (by inode) whose warnings were already reported.
    warned: Mutex<HashSet<u64>>,
    next_fh: AtomicU64,
    options: MountOptions,
}

fn kind_of(e: &Entry) -> Kind {
    match e {
        Entry::Dir(_) => Kind::Dir,
        Entry::File(_) => Kind::File,
        Entry::Symlink(_) => Kind::Symlink,
        Entry::Special(a) => a.kind,
        Entry::Broken(b) => b.attr.kind,
    }
}

/// The same node object (a refreshed root listing hands out new objects
/// only for what changed).
fn same(a: &Entry, b: &Entry) -> bool {
    match (a, b) {
        (Entry::Dir(x), Entry::Dir(y)) => Arc::ptr_eq(x, y),
        (Entry::File(x), Entry::File(y)) => Arc::ptr_eq(x, y),
        (Entry::Symlink(x), Entry::Symlink(y)) => Arc::ptr_eq(x, y),
        (Entry::Special(x), Entry::Special(y)) => x == y,
        (Entry::Broken(x), Entry::Broken(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
        Kind::Socket => FileType::Socket,
    }
}

/// A device number as stored (glibc's 64-bit `dev_t`) in the kernel's
/// 32-bit encoding, which FUSE passes.
fn fuse_rdev(dev: u64) -> u32 {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let enc = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12);
    u32::try_from(enc).unwrap_or(0)
}

fn file_attr(ino: u64, a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: (a.perm & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: fuse_rdev(a.rdev),
        blksize: 4096,
        flags: 0,
    }
}

/// Answers an xattr request for `data`: its size when asked with size 0,
/// `ERANGE` when the caller's buffer is smaller, else the bytes.
fn xattr_reply(data: &[u8], size: u32, reply: ReplyXattr) {
    if size == 0 {
        reply.size(u32::try_from(data.len()).unwrap_or(u32::MAX));
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

/// The errno for a tree error; `invalid` is what `InvalidInput` (the wrong
/// kind of entry) means where it happened.
fn errno(e: &Error, invalid: Errno) -> Errno {
    match e.kind() {
        ErrorKind::NotFound => Errno::ENOENT,
        ErrorKind::InvalidInput => invalid,
        ErrorKind::Unsupported => Errno::EOPNOTSUPP,
        _ => Errno::EIO,
    }
}

impl VaultFs {
    fn new(root: Entry, options: MountOptions) -> VaultFs {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                entry: root,
                parent: ROOT,
                name: String::new(),
                depth: 0,
            },
        );
        VaultFs {
            inodes: RwLock::new(Inodes {
                nodes,
                names: HashMap::new(),
                next: ROOT + 1,
            }),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
            next_fh: AtomicU64::new(1),
            options,
        }
    }

    /// The entry of `ino` and its depth below the root.
    fn node(&self, ino: INodeNo) -> Option<(Entry, u32)> {
        let inodes = self.inodes.read();
        inodes.nodes.get(&ino.0).map(|n| (n.entry.clone(), n.depth))
    }

    /// The path of `ino` from the mount's root, for messages.
    fn path(&self, ino: u64) -> String {
        let inodes = self.inodes.read();
        let mut parts = Vec::new();
        let mut at = ino;
        while at != ROOT {
            let Some(n) = inodes.nodes.get(&at) else {
                break;
            };
            parts.push(n.name.as_str());
            at = n.parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// The inode of `name` in `parent`, allocated on first sight; a node
    /// that changed (a refreshed `latest` link) keeps its number as long as
    /// its kind stays.
    fn child(&self, parent: u64, depth: u32, name: &str, entry: &Entry) -> u64 {
        let key = (parent, name.to_owned());
        {
            let inodes = self.inodes.read();
            if let Some(&ino) = inodes.names.get(&key)
                && inodes
                    .nodes
                    .get(&ino)
                    .is_some_and(|n| same(&n.entry, entry))
            {
                return ino;
            }
        }
        let mut inodes = self.inodes.write();
        if let Some(&ino) = inodes.names.get(&key)
            && let Some(n) = inodes.nodes.get_mut(&ino)
            && kind_of(&n.entry) == kind_of(entry)
        {
            n.entry = entry.clone();
            return ino;
        }
        let ino = inodes.next;
        inodes.next += 1;
        inodes.nodes.insert(
            ino,
            Node {
                entry: entry.clone(),
                parent,
                name: name.to_owned(),
                depth: depth + 1,
            },
        );
        inodes.names.insert(key, ino);
        ino
    }

    /// The entry of `ino` as its parent lists it now (falling back to the
    /// remembered one): a root directory's `latest` link moves when a new
    /// snapshot arrives, and the kernel may keep using a name it looked up
    /// earlier (observed on Linux 6.18 under load) without asking again.
    fn current(&self, ino: u64) -> Option<Entry> {
        let (entry, parent, name, depth) = {
            let inodes = self.inodes.read();
            let n = inodes.nodes.get(&ino)?;
            (n.entry.clone(), n.parent, n.name.clone(), n.depth)
        };
        if ino == ROOT {
            return Some(entry);
        }
        let Some((dir, _)) = self.node(INodeNo(parent)) else {
            return Some(entry);
        };
        match dir.as_dir("").and_then(|d| d.lookup(&name)) {
            Ok(Some(now)) if kind_of(&now) == kind_of(&entry) => {
                self.child(parent, depth.saturating_sub(1), &name, &now);
                Some(now)
            }
            _ => Some(entry),
        }
    }

    fn ttl(&self, depth: u32) -> Duration {
        if depth <= 2 {
            self.options.root_ttl
        } else {
            self.options.ttl
        }
    }

    /// Reports on stderr, once per volume, what its filesystem reader
    /// worked around (a replayed or stale journal, checksum mismatches
    /// ignored, a damaged first FAT): a mounted tree has no other way to
    /// say the view is not the plain one.
    fn report_volume_warnings(&self, ino: u64, entry: &Entry) {
        let Ok(dir) = entry.as_dir("") else {
            return;
        };
        let Ok(Some(fs)) = dir.volume() else {
            return;
        };
        if !self.warned.lock().insert(ino) {
            return;
        }
        for w in fs.info().warnings {
            eprintln!("vaultfs: {}: warning: {w}", self.path(ino));
        }
    }

    /// Reports damage on stderr (the errno alone does not say what broke)
    /// and returns the errno.
    fn fail(&self, ino: u64, e: &Error, invalid: Errno) -> Errno {
        let n = errno(e, invalid);
        if n == Errno::EIO {
            eprintln!("vaultfs: {}: {e}", self.path(ino));
        }
        n
    }

    /// The extended attributes of `ino`, or the errno to answer with.
    fn xattrs(&self, ino: INodeNo) -> Result<Vec<Xattr>, Errno> {
        let Some((entry, _)) = self.node(ino) else {
            return Err(Errno::ENOENT);
        };
        entry.xattrs().map_err(|e| self.fail(ino.0, &e, Errno::EIO))
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// Reads up to `size` bytes at `offset`: all of them unless the file
    /// ends first (FUSE takes a short read for the end of the file).
    fn read_range(src: &Source, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let len = src.len();
        if offset >= len {
            return Ok(Vec::new());
        }
        let want = usize::try_from((len - offset).min(u64::from(size))).unwrap_or(0);
        let mut buf = vec![0u8; want];
        let mut done = 0;
        while done < want {
            match src.read_at(offset + done as u64, &mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }
}

impl Filesystem for VaultFs {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // Larger kernel requests (up to 1 MiB where the kernel allows)
        // mean fewer round trips per blob; refusals keep the defaults.
        let _ = config
            .set_max_readahead(1 << 20)
            .or_else(|max| config.set_max_readahead(max));
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        let Some((entry, depth)) = self.node(parent) else {
            return reply.error(Errno::ENOENT);
        };
        let found = entry
            .as_dir("")
            .and_then(|d| d.lookup(name))
            .map_err(|e| self.fail(parent.0, &e, Errno::ENOTDIR));
        match found {
            Ok(Some(child)) => {
                let ino = self.child(parent.0, depth, name, &child);
                let attr = file_attr(ino, &child.attr());
                reply.entry(&self.ttl(depth + 1), &attr, Generation(0));
            }
            Ok(None) => reply.error(Errno::ENOENT),
            Err(n) => reply.error(n),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino) {
            Some((entry, depth)) => reply.attr(&self.ttl(depth), &file_attr(ino.0, &entry.attr())),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.current(ino.0) {
            Some(Entry::Symlink(s)) => reply.data(&s.target),
            Some(_) => reply.error(Errno::EINVAL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return reply.error(Errno::EROFS);
        }
        let Some((entry, _)) = self.node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let invalid = match entry {
            Entry::Dir(_) => Errno::EISDIR,
            _ => Errno::EINVAL,
        };
        match entry.open("") {
            Ok(src) => {
                let fh = self.new_fh();
                self.files.lock().insert(fh, src);
                // Snapshot content never changes: the page cache may keep
                // it across opens.
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(e) => reply.error(self.fail(ino.0, &e, invalid)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(src) = self.files.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        // A request inside one cached blob is answered from the blob
        // itself: no buffer to allocate, zero and copy into.
        let want = src.len().saturating_sub(offset).min(u64::from(size)) as usize;
        match src.read_shared(offset, want) {
            Ok(Some(b)) if b.len() == want => return reply.data(&b),
            Ok(_) => {}
            Err(e) => {
                eprintln!(
                    "vaultfs: {}: reading {size} bytes at {offset}: {e}",
                    self.path(ino.0)
                );
                return reply.error(Errno::EIO);
            }
        }
        match VaultFs::read_range(&src, offset, size) {
            Ok(buf) => reply.data(&buf),
            Err(e) => {
                eprintln!(
                    "vaultfs: {}: reading {size} bytes at {offset}: {e}",
                    self.path(ino.0)
                );
                reply.error(Errno::EIO);
            }
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.lock().remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some((entry, _)) = self.node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        match entry.as_dir("").and_then(|d| d.list()) {
            Ok(listing) => {
                self.report_volume_warnings(ino.0, &entry);
                let fh = self.new_fh();
                self.dirs.lock().insert(fh, listing);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(self.fail(ino.0, &e, Errno::ENOTDIR)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(listing) = self.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let (parent, depth) = {
            let inodes = self.inodes.read();
            match inodes.nodes.get(&ino.0) {
                Some(n) => (n.parent, n.depth),
                None => return reply.error(Errno::ENOENT),
            }
        };
        // Offsets: 0 is the start, entry i (`.`, `..`, then the listing)
        // carries i + 1, the offset of the one after it.
        let entries = listing.entries();
        let total = entries.len() as u64 + 2;
        let mut i = offset;
        while i < total {
            let full = match i {
                0 => reply.add(ino, 1, FileType::Directory, "."),
                1 => reply.add(INodeNo(parent), 2, FileType::Directory, ".."),
                _ => {
                    let Some((name, entry)) =
                        usize::try_from(i - 2).ok().and_then(|k| entries.get(k))
                    else {
                        break;
                    };
                    let child = self.child(ino.0, depth, name, entry);
                    reply.add(INodeNo(child), i + 1, file_type(kind_of(entry)), name)
                }
            };
            if full {
                break;
            }
            i += 1;
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.dirs.lock().remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let files = self.inodes.read().nodes.len() as u64;
        reply.statfs(0, 0, 0, files, 0, 4096, 255, 4096);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let attrs = match self.xattrs(ino) {
            Ok(a) => a,
            Err(n) => return reply.error(n),
        };
        let Some(x) = attrs.iter().find(|x| OsStr::new(&x.name) == name) else {
            return reply.error(Errno::NO_XATTR);
        };
        xattr_reply(&x.value, size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.xattrs(ino) {
            Ok(attrs) => {
                let mut names = Vec::new();
                for x in &attrs {
                    names.extend_from_slice(x.name.as_bytes());
                    names.push(0);
                }
                xattr_reply(&names, size, reply);
            }
            Err(n) => reply.error(n),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
}

/// A mounted tree, served by background threads until unmounted.
pub struct Mount {
    session: BackgroundSession,
    mountpoint: PathBuf,
}

impl Mount {
    /// Mounts `root` at `mountpoint` (an existing directory) and serves it
    /// in the background.
    pub fn spawn(
        root: Entry,
        mountpoint: &Path,
        options: &MountOptions,
    ) -> Result<Mount, MountError> {
        let mount_err = |source: io::Error| MountError::Mount {
            path: mountpoint.to_path_buf(),
            source,
        };
        if !mountpoint.is_dir() {
            return Err(mount_err(io::Error::new(
                io::ErrorKind::NotFound,
                "the mount point is not an existing directory",
            )));
        }
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("vaultfs".into()),
            MountOption::Subtype("vaultfs".into()),
            MountOption::RO,
            MountOption::DefaultPermissions,
            MountOption::NoDev,
            MountOption::NoSuid,
        ];
        config.acl = if options.allow_other {
            SessionACL::All
        } else {
            SessionACL::Owner
        };
        config.n_threads = Some(options.threads.max(1));
        let fs = VaultFs::new(root, options.clone());
        let session = fuser::spawn_mount(fs, mountpoint, &config).map_err(mount_err)?;
        Ok(Mount {
            session,
            mountpoint: mountpoint.to_path_buf(),
        })
    }

    /// Has the session ended (unmounted from outside, `fusermount3 -u`)?
    pub fn is_finished(&self) -> bool {
        self.session.guard.is_finished()
    }

    /// Unmounts (if still mounted) and waits for the worker threads.
    pub fn unmount(self) -> Result<(), MountError> {
        let path = self.mountpoint;
        let err = |source| MountError::Unmount { path, source };
        if self.session.guard.is_finished() {
            // Unmounted from outside: nothing left to take down.
            return self.session.join().map_err(err);
        }
        match self.session.umount_and_join() {
            // Unmounted from outside in the meantime.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            r => r.map_err(err),
        }
    }
}

/// Mounts `root` at `mountpoint`, calls `ready` once the mount is up, and
/// serves it until SIGINT or SIGTERM arrives (then unmounts) or it is
/// unmounted from outside. A clean end either way is `Ok`.
pub fn serve(
    root: Entry,
    mountpoint: &Path,
    options: &MountOptions,
    ready: impl FnOnce(),
) -> Result<(), MountError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    // Registered before mounting, so a signal arriving at any point after
    // the mount is seen and leads to an unmount.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(MountError::Signals)?;
    }
    let mount = Mount::spawn(root, mountpoint, options)?;
    ready();
    let started = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) || mount.is_finished() {
            break;
        }
        // Polling keeps this free of any cross-thread wake-up machinery;
        // a tenth of a second is not noticeable on Ctrl-C.
        let pause = if started.elapsed() < Duration::from_secs(1) {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(100)
        };
        std::thread::sleep(pause);
    }
    mount.unmount()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_use_the_kernel_encoding() {
        // glibc makedev(8, 1) and makedev(259, 70000)
        let sda1 = (8u64 << 8) | 1;
        assert_eq!(fuse_rdev(sda1), (8 << 8) | 1);
        let major = 259u64;
        let minor = 70000u64;
        let dev = ((major & 0xfff) << 8)
            | ((major & !0xfff) << 32)
            | (minor & 0xff)
            | ((minor & !0xff) << 12);
        let enc = u64::from(fuse_rdev(dev));
        assert_eq!((enc & 0xfff00) >> 8, major);
        assert_eq!((enc & 0xff) | ((enc >> 12) & !0xff), minor);
    }

    #[test]
    fn errno_by_kind() {
        let e = |k| Error::new(k, "x");
        assert_eq!(
            errno(&e(ErrorKind::NotFound), Errno::ENOTDIR),
            Errno::ENOENT
        );
        assert_eq!(errno(&e(ErrorKind::Damaged), Errno::ENOTDIR), Errno::EIO);
        assert_eq!(errno(&e(ErrorKind::Missing), Errno::ENOTDIR), Errno::EIO);
        assert_eq!(errno(&e(ErrorKind::Io), Errno::ENOTDIR), Errno::EIO);
        assert_eq!(
            errno(&e(ErrorKind::InvalidInput), Errno::ENOTDIR),
            Errno::ENOTDIR
        );
        assert_eq!(
            errno(&e(ErrorKind::Unsupported), Errno::ENOTDIR),
            Errno::EOPNOTSUPP
        );
    }
}
