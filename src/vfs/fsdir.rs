//! The files of a filesystem inside a disk image: `pN/` (or `fs/`) in a
//! `.contents/` directory. The volume is opened with its reader from
//! `formats::fs` when the directory is first entered; each directory reads
//! its entries once and remembers them. An image file inside the
//! filesystem gets a `.contents/` directory of its own, so images nest.
//!
//! Damage stays local as elsewhere in the tree: a volume that cannot be
//! opened is a directory that fails when entered, an entry whose metadata
//! cannot be read lists as broken, and a file whose data cannot be read
//! (EFS-encrypted, damaged run list) fails when opened.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use vaultfs_formats::container::{Siblings, name_components};
use vaultfs_formats::fs::{
    self, DirEntry, FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, Metadata, Timestamp,
};

use super::contents::{CONTENTS_SUFFIX, ContentsDir, worth_probing};
use super::{Attr, Broken, Dir, Entry, File, Kind, Listing, Source, Symlink, Xattr, XattrFn};
use crate::error::{Error, ErrorKind, Result};

/// A filesystem error as a tree error: damage is `Damaged` (EIO), a
/// feature we lack or an encrypted file is `Unsupported`.
pub(crate) fn fs_error(e: FsError, what: &str) -> Error {
    let kind = match &e {
        FsError::Io(_) => ErrorKind::Io,
        FsError::Unsupported { .. } | FsError::Encrypted { .. } => ErrorKind::Unsupported,
        FsError::NoInode(_) => ErrorKind::Damaged,
        FsError::WrongKind { .. } => ErrorKind::InvalidInput,
        // A checksum mismatch is damage like any other; the CLI
        // recognises its message to suggest --ignore-checksums.
        FsError::Corrupt { .. } | FsError::Checksum { .. } => ErrorKind::Damaged,
        _ => ErrorKind::Damaged,
    };
    Error::new(kind, format!("{what}: {e}"))
}

fn time(t: Timestamp) -> SystemTime {
    // FUSE cannot show times before 1970; clamp as snapshot times are.
    if t.secs < 0 {
        SystemTime::UNIX_EPOCH
    } else {
        t.to_system_time()
    }
}

/// A filesystem inode's metadata in the tree's terms.
pub fn meta_attr(m: &Metadata) -> Attr {
    let kind = match m.kind {
        FileKind::File => Kind::File,
        FileKind::Dir => Kind::Dir,
        FileKind::Symlink => Kind::Symlink,
        FileKind::BlockDevice => Kind::BlockDevice,
        FileKind::CharDevice => Kind::CharDevice,
        FileKind::Fifo => Kind::Fifo,
        FileKind::Socket => Kind::Socket,
    };
    Attr {
        kind,
        size: if kind == Kind::Dir { 0 } else { m.size },
        perm: m.perm & 0o7777,
        uid: m.uid,
        gid: m.gid,
        nlink: m.nlink.max(1),
        rdev: m.rdev,
        mtime: time(m.mtime),
        atime: time(m.atime),
        ctime: time(m.ctime),
    }
}

type Memo<T> = OnceLock<std::result::Result<T, Arc<Broken>>>;

fn memo<T: Clone>(cell: &Memo<T>, attr: &Attr, f: impl FnOnce() -> Result<T>) -> Result<T> {
    cell.get_or_init(|| f().map_err(|e| Arc::new(Broken::new(attr.clone(), &e))))
        .clone()
        .map_err(|b| Error::new(b.kind, b.message.clone()))
}

/// `pN/` or `fs/`: a volume whose filesystem has a reader, opened on first
/// use. It lists with the attributes of the `.contents/` directory that
/// holds it, so nothing is read to stat it.
pub(crate) struct VolumeDir {
    kind: FsKind,
    data: Source,
    options: FsOptions,
    attr: Attr,
    path: String,
    root: Memo<Arc<FsDir>>,
}

impl VolumeDir {
    /// The volume `data` holding a `kind` filesystem, shown at `path`.
    pub(crate) fn new(
        kind: FsKind,
        data: Source,
        options: FsOptions,
        attr: Attr,
        path: String,
    ) -> VolumeDir {
        VolumeDir {
            kind,
            data,
            options,
            attr,
            path,
            root: OnceLock::new(),
        }
    }

    fn open_root(&self) -> Result<Arc<FsDir>> {
        memo(&self.root, &self.attr, || {
            let what = format!("{} ({} volume)", self.path, self.kind);
            let fs = fs::open(self.kind, self.data.clone(), &self.options)
                .map_err(|e| fs_error(e, &what))?;
            let ino = fs.root();
            let meta = fs.metadata(ino).map_err(|e| fs_error(e, &what))?;
            Ok(fs_root(fs, &meta, self.options.clone(), self.path.clone()))
        })
    }
}

/// The root directory of opened filesystem `fs`, whose root inode has
/// metadata `meta`, shown at `path`.
pub(crate) fn fs_root(
    fs: Arc<dyn Filesystem>,
    meta: &Metadata,
    options: FsOptions,
    path: String,
) -> Arc<FsDir> {
    let at = Arc::new(Place { fs, options });
    Arc::new(FsDir::new(at, meta, path))
}

impl Dir for VolumeDir {
    fn attr(&self) -> Attr {
        self.attr.clone()
    }

    fn list(&self) -> Result<Arc<Listing>> {
        self.open_root()?.list()
    }

    fn volume(&self) -> Result<Option<Arc<dyn Filesystem>>> {
        Ok(Some(self.open_root()?.at.fs.clone()))
    }

    fn details(&self) -> Result<Vec<(String, String)>> {
        self.open_root()?.details()
    }

    fn xattrs(&self) -> Result<Vec<Xattr>> {
        self.open_root()?.xattrs()
    }
}

/// An opened filesystem and the options nested images are opened with.
struct Place {
    fs: Arc<dyn Filesystem>,
    options: FsOptions,
}

/// A directory of a filesystem.
pub(crate) struct FsDir {
    at: Arc<Place>,
    ino: Ino,
    attr: Attr,
    crtime: Option<Timestamp>,
    path: String,
    listing: Memo<Arc<Listing>>,
}

impl FsDir {
    fn new(at: Arc<Place>, meta: &Metadata, path: String) -> FsDir {
        FsDir {
            at,
            ino: meta.ino,
            attr: meta_attr(meta),
            crtime: meta.crtime,
            path,
            listing: OnceLock::new(),
        }
    }

    fn build(&self) -> Result<Listing> {
        let entries = self
            .at
            .fs
            .read_dir(self.ino)
            .map_err(|e| fs_error(e, &self.path))?;
        let mut out = Vec::with_capacity(entries.len());
        let mut images = Vec::new();
        for e in &entries {
            let path = format!("{}/{}", self.path, e.name);
            let entry = self.entry(e, &path);
            if let Entry::File(f) = &entry
                && worth_probing(&e.name, f.attr().size)
            {
                images.push((e.name.clone(), f.clone(), path));
            }
            out.push((e.name.clone(), entry));
        }
        for (name, file, path) in images {
            let contents = format!("{name}{CONTENTS_SUFFIX}");
            if entries.iter().any(|e| e.name == contents) || !is_image(&*file, &name) {
                continue;
            }
            let siblings = FsSiblings {
                fs: self.at.fs.clone(),
                dir: self.ino,
                path: self.path.clone(),
            };
            let options = self.at.options.clone();
            let dir = ContentsDir::new(file, name, path, Box::new(siblings), options);
            out.push((contents, Entry::Dir(Arc::new(dir))));
        }
        Ok(Listing::new(out))
    }

    fn entry(&self, e: &DirEntry, path: &str) -> Entry {
        let fs = &self.at.fs;
        let meta = match fs.metadata(e.ino) {
            Ok(m) => m,
            Err(err) => return broken(e.kind, &fs_error(err, path)),
        };
        let attr = meta_attr(&meta);
        match meta.kind {
            FileKind::Dir => Entry::Dir(Arc::new(FsDir::new(
                self.at.clone(),
                &meta,
                path.to_string(),
            ))),
            FileKind::File => Entry::File(Arc::new(FsFile {
                fs: fs.clone(),
                ino: e.ino,
                attr,
                crtime: meta.crtime,
                path: path.to_string(),
            })),
            FileKind::Symlink => match fs.read_link(e.ino) {
                Ok(target) => Entry::Symlink(Arc::new(Symlink {
                    attr: Attr {
                        size: target.len() as u64,
                        ..attr
                    },
                    target: target.into_bytes(),
                    xattrs: Some(xattr_fn(fs.clone(), e.ino, path.to_string())),
                })),
                Err(err) => Entry::Broken(Arc::new(Broken::new(attr, &fs_error(err, path)))),
            },
            _ => Entry::Special(attr),
        }
    }
}

/// A broken entry of kind `kind`, for an inode whose metadata cannot be read.
fn broken(kind: FileKind, e: &Error) -> Entry {
    let epoch = SystemTime::UNIX_EPOCH;
    let attr = if kind == FileKind::Dir {
        Attr::dir(epoch)
    } else {
        Attr::file(0, epoch)
    };
    Entry::Broken(Arc::new(Broken::new(attr, e)))
}

/// Does `file` hold a disk image? A file that cannot be read is not one
/// here: opening it reports the damage.
fn is_image(file: &dyn File, name: &str) -> bool {
    file.open()
        .ok()
        .and_then(|src| vaultfs_formats::image::is_disk_image(&*src, name).ok())
        .unwrap_or(false)
}

impl Dir for FsDir {
    fn attr(&self) -> Attr {
        self.attr.clone()
    }

    fn list(&self) -> Result<Arc<Listing>> {
        memo(&self.listing, &self.attr, || self.build().map(Arc::new))
    }

    fn details(&self) -> Result<Vec<(String, String)>> {
        details(&*self.at.fs, self.ino, self.crtime, &self.path)
    }

    fn xattrs(&self) -> Result<Vec<Xattr>> {
        self.at
            .fs
            .xattrs(self.ino)
            .map_err(|e| fs_error(e, &self.path))
    }
}

/// Reads the extended attributes of inode `ino` of `fs` when called.
fn xattr_fn(fs: Arc<dyn Filesystem>, ino: Ino, path: String) -> XattrFn {
    Arc::new(move || fs.xattrs(ino).map_err(|e| fs_error(e, &path)))
}

/// A regular file of a filesystem.
struct FsFile {
    fs: Arc<dyn Filesystem>,
    ino: Ino,
    attr: Attr,
    crtime: Option<Timestamp>,
    path: String,
}

/// The creation time (`crtime`, RFC 3339 in UTC) and the filesystem's own
/// facts about inode `ino`.
fn details(
    fs: &dyn Filesystem,
    ino: Ino,
    crtime: Option<Timestamp>,
    path: &str,
) -> Result<Vec<(String, String)>> {
    let mut out = vec![("inode".to_string(), ino.to_string())];
    if let Some(t) = crtime
        && let Some(dt) = chrono::DateTime::from_timestamp(t.secs, t.nanos)
    {
        out.push((
            "crtime".into(),
            dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ));
    }
    out.extend(fs.details(ino).map_err(|e| fs_error(e, path))?);
    Ok(out)
}

impl File for FsFile {
    fn attr(&self) -> Attr {
        self.attr.clone()
    }

    fn open(&self) -> Result<Source> {
        self.fs.open(self.ino).map_err(|e| fs_error(e, &self.path))
    }

    fn details(&self) -> Result<Vec<(String, String)>> {
        details(&*self.fs, self.ino, self.crtime, &self.path)
    }

    fn xattrs(&self) -> Result<Vec<Xattr>> {
        self.fs
            .xattrs(self.ino)
            .map_err(|e| fs_error(e, &self.path))
    }
}

/// The files beside an image inside a filesystem (VMDK extents, parent
/// disks), looked up by name from the image's directory; if a path does
/// not resolve there (an absolute path of the machine that made the
/// image), its last component is tried.
struct FsSiblings {
    fs: Arc<dyn Filesystem>,
    dir: Ino,
    path: String,
}

impl FsSiblings {
    fn find(&self, parts: &[&str]) -> std::result::Result<Option<Ino>, FsError> {
        let mut ino = self.dir;
        for (i, part) in parts.iter().enumerate() {
            let Some(e) = self.fs.lookup(ino, part)? else {
                return Ok(None);
            };
            let last = i + 1 == parts.len();
            if last != (e.kind == FileKind::File) {
                return Ok(None);
            }
            ino = e.ino;
        }
        Ok(Some(ino))
    }
}

impl Siblings for FsSiblings {
    fn open(&self, name: &str) -> std::io::Result<Source> {
        let parts = name_components(name);
        let not_found = || {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name:?} is not in {}", self.path),
            )
        };
        if parts.is_empty() || parts.contains(&"..") {
            return Err(not_found());
        }
        let mut found = self.find(&parts)?;
        if found.is_none() && parts.len() > 1 {
            found = self.find(&parts[parts.len() - 1..])?;
        }
        let ino = found.ok_or_else(not_found)?;
        Ok(self.fs.open(ino)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{ReadAt, Vfs};
    use vaultfs_formats::fs::MemFs;

    fn stamped_mbr() -> Vec<u8> {
        let packed = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("images/containers/stamped-mbr.raw.zst"),
        )
        .expect("image");
        zstd::decode_all(packed.as_slice()).expect("zstd")
    }

    /// A filesystem whose inode `bad` cannot be read.
    struct Damaged {
        inner: MemFs,
        bad: Ino,
    }

    impl Filesystem for Damaged {
        fn info(&self) -> fs::VolumeInfo {
            self.inner.info()
        }
        fn root(&self) -> Ino {
            self.inner.root()
        }
        fn metadata(&self, ino: Ino) -> std::result::Result<Metadata, FsError> {
            if ino == self.bad {
                return Err(FsError::corrupt("MFT record 9", 0x2400, "fixup mismatch"));
            }
            self.inner.metadata(ino)
        }
        fn read_dir(&self, dir: Ino) -> std::result::Result<Vec<DirEntry>, FsError> {
            self.inner.read_dir(dir)
        }
        fn read_link(&self, ino: Ino) -> std::result::Result<String, FsError> {
            self.inner.read_link(ino)
        }
        fn open(&self, ino: Ino) -> std::result::Result<Source, FsError> {
            self.inner.open(ino)
        }
    }

    fn tree() -> (Entry, Ino, Vec<u8>) {
        let mem = MemFs::new();
        let root = mem.root();
        let docs = mem.add_dir(root, "docs");
        let a = mem.add_file(docs, "a.txt", b"hello");
        mem.link(root, "hard", a);
        mem.add_symlink(root, "link", "docs/a.txt");
        let disk = stamped_mbr();
        mem.add_file(docs, "disk.img", &disk);
        let bad = mem.add_file(root, "bad", b"x");
        let when = Timestamp {
            secs: 1_700_000_000,
            nanos: 5,
        };
        mem.set_times(a, when);
        let fs: Arc<dyn Filesystem> = Arc::new(Damaged { inner: mem, bad });
        let meta = fs.metadata(fs.root()).expect("root");
        let dir = fs_root(fs, &meta, FsOptions::default(), "/x.contents/p1".into());
        (Entry::Dir(dir), bad, disk)
    }

    fn read(entry: &Entry) -> Vec<u8> {
        let src = entry.open("test").expect("open");
        let mut buf = vec![0; src.len() as usize];
        src.read_exact_at(0, &mut buf).expect("read");
        buf
    }

    #[test]
    fn files_dirs_and_links_of_a_filesystem() {
        let (root, _, _) = tree();
        let listing = root.as_dir("/").expect("dir").list().expect("list");
        let names: Vec<&str> = listing.entries().iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["bad", "docs", "hard", "link"]);
        let a = Vfs::resolve_from(&root, "docs/a.txt").expect("a.txt");
        assert_eq!(read(&a), b"hello");
        let attr = a.attr();
        assert_eq!(
            (attr.kind, attr.size, attr.nlink, attr.perm),
            (Kind::File, 5, 2, 0o644)
        );
        let when = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        assert_eq!((attr.mtime, attr.atime, attr.ctime), (when, when, when));
        assert_eq!(
            read(&Vfs::resolve_from(&root, "hard").expect("hard")),
            b"hello"
        );
        match Vfs::resolve_from(&root, "link").expect("link") {
            Entry::Symlink(s) => {
                assert_eq!(s.target, b"docs/a.txt");
                assert_eq!(s.attr.size, 10);
            }
            _ => panic!("link is not a symlink"),
        }
    }

    #[test]
    fn a_damaged_inode_lists_and_fails_on_access() {
        let (root, _, _) = tree();
        let bad = Vfs::resolve_from(&root, "bad").expect("listed");
        let Err(err) = bad.open("/bad") else {
            panic!("a damaged inode opened")
        };
        assert_eq!(err.kind(), ErrorKind::Damaged);
        assert!(err.to_string().contains("MFT record 9"), "{err}");
        assert!(Vfs::resolve_from(&root, "docs/a.txt").is_ok());
    }

    #[test]
    fn an_image_inside_a_filesystem_opens_too() {
        let (root, _, disk) = tree();
        let docs = Vfs::resolve_from(&root, "docs").expect("docs");
        let names: Vec<String> = docs
            .as_dir("docs")
            .expect("dir")
            .list()
            .expect("list")
            .entries()
            .iter()
            .map(|e| e.0.clone())
            .collect();
        assert_eq!(names, ["a.txt", "disk.img", "disk.img.contents"]);
        let raw = Vfs::resolve_from(&root, "docs/disk.img.contents/disk.raw").expect("raw");
        assert_eq!(read(&raw), disk);
        assert!(Vfs::resolve_from(&root, "docs/disk.img.contents/p5.raw").is_ok());
    }

    #[test]
    fn filesystem_errors_map_to_tree_kinds() {
        let e = fs_error(FsError::Encrypted { what: "x".into() }, "/p1/x");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.to_string().starts_with("/p1/x: x is encrypted"), "{e}");
        let e = fs_error(FsError::corrupt("FAT", 0x200, "loop"), "/p1/y");
        assert_eq!(e.kind(), ErrorKind::Damaged);
        let e = fs_error(std::io::Error::other("disk").into(), "/p1/z");
        assert_eq!(e.kind(), ErrorKind::Io);
    }

    #[test]
    fn times_before_1970_clamp_to_the_epoch() {
        let t = Timestamp { secs: -5, nanos: 7 };
        assert_eq!(time(t), SystemTime::UNIX_EPOCH);
        assert_eq!(
            Timestamp::from_filetime(116_444_736_000_000_000 + 15),
            Timestamp {
                secs: 0,
                nanos: 1500
            }
        );
    }
}
