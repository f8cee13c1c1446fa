//! Tree comparison: a [`Manifest`] describes a tree (a directory on disk, or
//! a snapshot read through the library) entry by entry — type, content
//! hash, symlink target, permission bits, mtime, owner, user xattrs and
//! hardlink grouping — and [`diff`] lists every difference between two of
//! them, not just the first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The type of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Device, fifo, socket.
    Other,
}

/// One entry's comparable facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Type.
    pub kind: Kind,
    /// Content length (files).
    pub size: u64,
    /// SHA-256 of the content, hex (files).
    pub sha256: Option<String>,
    /// Symlink target.
    pub target: Option<Vec<u8>>,
    /// Permission bits including setuid/setgid/sticky.
    pub perm: u32,
    /// Modification time: seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Extended attributes in the `user.` namespace.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// (device, inode) of a file with more than one link; only the grouping
    /// it induces is compared.
    pub link_key: Option<(u64, u64)>,
}

/// A tree: entries by path relative to its root (the root itself is "").
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// Entries by relative path.
    pub entries: BTreeMap<PathBuf, Entry>,
    /// Inconsistencies found while building the manifest (e.g. a node whose
    /// recorded size disagrees with its content); reported by [`diff`].
    pub problems: Vec<String>,
}

impl Manifest {
    /// Paths grouped by inode, for groups of two or more names.
    pub fn link_groups(&self) -> BTreeSet<Vec<PathBuf>> {
        let mut by_key: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
        for (path, e) in &self.entries {
            if let Some(key) = e.link_key {
                by_key.entry(key).or_default().push(path.clone());
            }
        }
        by_key.into_values().filter(|g| g.len() > 1).collect()
    }

    /// Total bytes of file content.
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .values()
            .filter(|e| e.kind == Kind::File)
            .map(|e| e.size)
            .sum()
    }
}

/// Which facts to compare (type, content and symlink targets always are).
#[derive(Clone, Copy, Debug)]
pub struct Checks {
    /// Permission bits (not of symlinks).
    pub perm: bool,
    /// mtimes to the nanosecond, of every entry type.
    pub mtime: bool,
    /// uid and gid.
    pub owner: bool,
    /// `user.` xattrs.
    pub xattrs: bool,
    /// Hardlink grouping.
    pub hardlinks: bool,
}

impl Checks {
    /// Everything.
    pub const ALL: Checks = Checks {
        perm: true,
        mtime: true,
        owner: true,
        xattrs: true,
        hardlinks: true,
    };
}

/// SHA-256 of a file's content, hex.
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let n = io::copy(&mut f, &mut h)?;
    Ok((n, hex::encode(h.finalize())))
}

fn user_xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    // Filesystems without xattr support simply have none.
    let Ok(names) = xattr::list(path) else {
        return out;
    };
    for name in names {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("user.") {
            let value = xattr::get(path, &name)
                .unwrap_or_else(|e| panic!("getxattr {name} of {}: {e}", path.display()))
                .unwrap_or_default();
            out.insert(name, value);
        }
    }
    out
}

/// Describes the directory tree at `root` (symlinks are not followed).
pub fn scan(root: &Path) -> Manifest {
    let mut m = Manifest::default();
    scan_into(root, Path::new(""), &mut m);
    m
}

fn scan_into(path: &Path, rel: &Path, m: &mut Manifest) {
    let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let ft = md.file_type();
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    let (size, sha256) = if kind == Kind::File {
        let (n, h) = sha256_file(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        (n, Some(h))
    } else {
        (0, None)
    };
    let target = (kind == Kind::Symlink).then(|| {
        fs::read_link(path)
            .unwrap_or_else(|e| panic!("readlink {}: {e}", path.display()))
            .as_os_str()
            .as_bytes()
            .to_vec()
    });
    let xattrs = if kind == Kind::Symlink {
        BTreeMap::new()
    } else {
        user_xattrs(path)
    };
    let entry = Entry {
        kind,
        size,
        sha256,
        target,
        perm: md.mode() & 0o7777,
        mtime: (
            md.mtime(),
            u32::try_from(md.mtime_nsec()).unwrap_or(u32::MAX),
        ),
        uid: md.uid(),
        gid: md.gid(),
        xattrs,
        link_key: (kind == Kind::File && md.nlink() > 1).then(|| (md.dev(), md.ino())),
    };
    m.entries.insert(rel.to_path_buf(), entry);
    if kind == Kind::Dir {
        let rd = fs::read_dir(path).unwrap_or_else(|e| panic!("readdir {}: {e}", path.display()));
        for child in rd {
            let child = child.unwrap_or_else(|e| panic!("readdir {}: {e}", path.display()));
            scan_into(&child.path(), &rel.join(child.file_name()), m);
        }
    }
}

fn show(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        "(root)".into()
    } else {
        format!("{p:?}")
    }
}

fn show_bytes(b: &Option<Vec<u8>>) -> String {
    match b {
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
        None => "none".into(),
    }
}

/// Every difference between `expected` and `actual`, one line each.
pub fn diff(expected: &Manifest, actual: &Manifest, checks: Checks) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &expected.problems {
        out.push(format!("expected tree: {p}"));
    }
    for p in &actual.problems {
        out.push(format!("actual tree: {p}"));
    }
    for (path, e) in &expected.entries {
        let Some(a) = actual.entries.get(path) else {
            out.push(format!("{}: missing ({:?})", show(path), e.kind));
            continue;
        };
        diff_entry(&show(path), e, a, checks, &mut out);
    }
    for (path, a) in &actual.entries {
        if !expected.entries.contains_key(path) {
            out.push(format!("{}: unexpected extra {:?}", show(path), a.kind));
        }
    }
    if checks.hardlinks {
        let want = expected.link_groups();
        let got = actual.link_groups();
        for g in want.difference(&got) {
            out.push(format!(
                "hardlink group {g:?} is not one inode in the actual tree"
            ));
        }
        for g in got.difference(&want) {
            out.push(format!(
                "actual tree has hardlink group {g:?} that the expected tree has not"
            ));
        }
    }
    out
}

fn diff_entry(name: &str, e: &Entry, a: &Entry, checks: Checks, out: &mut Vec<String>) {
    if e.kind != a.kind {
        out.push(format!("{name}: type {:?} became {:?}", e.kind, a.kind));
        return;
    }
    if e.kind == Kind::File && (e.size != a.size || e.sha256 != a.sha256) {
        out.push(format!(
            "{name}: content differs: {} bytes sha256 {} vs {} bytes sha256 {}",
            e.size,
            e.sha256.as_deref().unwrap_or("-"),
            a.size,
            a.sha256.as_deref().unwrap_or("-")
        ));
    }
    if e.target != a.target {
        out.push(format!(
            "{name}: symlink target {} became {}",
            show_bytes(&e.target),
            show_bytes(&a.target)
        ));
    }
    if checks.perm && e.kind != Kind::Symlink && e.perm != a.perm {
        out.push(format!(
            "{name}: permissions {:04o} became {:04o}",
            e.perm, a.perm
        ));
    }
    if checks.mtime && e.mtime != a.mtime {
        out.push(format!(
            "{name}: mtime {}.{:09} became {}.{:09}",
            e.mtime.0, e.mtime.1, a.mtime.0, a.mtime.1
        ));
    }
    if checks.owner && (e.uid, e.gid) != (a.uid, a.gid) {
        out.push(format!(
            "{name}: owner {}:{} became {}:{}",
            e.uid, e.gid, a.uid, a.gid
        ));
    }
    if checks.xattrs && e.xattrs != a.xattrs {
        out.push(format!(
            "{name}: user xattrs {:?} became {:?}",
            e.xattrs, a.xattrs
        ));
    }
}

/// Panics, listing every difference, unless the trees agree.
pub fn assert_same(expected: &Manifest, actual: &Manifest, checks: Checks, what: &str) {
    let d = diff(expected, actual, checks);
    if d.is_empty() {
        return;
    }
    let mut msg = format!("{what}: {} difference(s):\n", d.len());
    for line in d.iter().take(300) {
        let _ = writeln!(msg, "  - {line}");
    }
    if d.len() > 300 {
        let _ = writeln!(msg, "  ... and {} more", d.len() - 300);
    }
    panic!("{msg}");
}
