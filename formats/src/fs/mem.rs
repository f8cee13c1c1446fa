//! An in-memory [`Filesystem`]: the reference the trait's conformance check
//! is tested on, and a stand-in for real volumes in the tree's tests.

use std::sync::Arc;

use parking_lot::RwLock;

use super::{
    DirEntry, FileKind, Filesystem, FsError, FsKind, Ino, Metadata, Timestamp, VolumeInfo,
};
use crate::io::{MemSource, Source};

enum Body {
    Dir(Vec<DirEntry>),
    File(Arc<[u8]>),
    Symlink(String),
}

struct Node {
    meta: Metadata,
    body: Body,
}

/// A filesystem built in memory, inode 1 its root. Inodes are numbered in
/// the order they are added.
pub struct MemFs {
    nodes: RwLock<Vec<Node>>,
}

impl Default for MemFs {
    fn default() -> Self {
        MemFs::new()
    }
}

fn meta(ino: Ino, kind: FileKind, size: u64, time: Timestamp) -> Metadata {
    Metadata {
        ino,
        kind,
        size,
        perm: if kind == FileKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        nlink: 1,
        rdev: 0,
        mtime: time,
        atime: time,
        ctime: time,
        crtime: Some(time),
    }
}

impl MemFs {
    /// An empty filesystem: just its root directory.
    pub fn new() -> MemFs {
        let root = Node {
            meta: meta(Ino(1), FileKind::Dir, 0, Timestamp::EPOCH),
            body: Body::Dir(Vec::new()),
        };
        MemFs {
            nodes: RwLock::new(vec![root]),
        }
    }

    fn add(&self, parent: Ino, name: &str, kind: FileKind, size: u64, body: Body) -> Ino {
        let mut nodes = self.nodes.write();
        let ino = Ino(nodes.len() as u64 + 1);
        nodes.push(Node {
            meta: meta(ino, kind, size, Timestamp::EPOCH),
            body,
        });
        Self::insert(&mut nodes, parent, name, ino, kind);
        ino
    }

    fn insert(nodes: &mut [Node], parent: Ino, name: &str, ino: Ino, kind: FileKind) {
        let at = (parent.0 as usize).wrapping_sub(1);
        match nodes.get_mut(at).map(|n| &mut n.body) {
            Some(Body::Dir(entries)) => entries.push(DirEntry {
                name: name.to_string(),
                ino,
                kind,
            }),
            _ => panic!("MemFs: inode {parent} is not a directory"),
        }
    }

    /// Adds a directory `name` in `parent`.
    pub fn add_dir(&self, parent: Ino, name: &str) -> Ino {
        self.add(parent, name, FileKind::Dir, 0, Body::Dir(Vec::new()))
    }

    /// Adds a regular file `name` holding `data` in `parent`.
    pub fn add_file(&self, parent: Ino, name: &str, data: &[u8]) -> Ino {
        let size = data.len() as u64;
        self.add(parent, name, FileKind::File, size, Body::File(data.into()))
    }

    /// Adds a symlink `name` pointing at `target` in `parent`.
    pub fn add_symlink(&self, parent: Ino, name: &str, target: &str) -> Ino {
        let size = target.len() as u64;
        let body = Body::Symlink(target.to_string());
        self.add(parent, name, FileKind::Symlink, size, body)
    }

    /// Gives `ino` one more name, `name` in `parent` (a hard link).
    pub fn link(&self, parent: Ino, name: &str, ino: Ino) {
        let mut nodes = self.nodes.write();
        let at = (ino.0 as usize).wrapping_sub(1);
        let kind = nodes[at].meta.kind;
        nodes[at].meta.nlink += 1;
        Self::insert(&mut nodes, parent, name, ino, kind);
    }

    /// Sets the modification, access and change times of `ino`.
    pub fn set_times(&self, ino: Ino, time: Timestamp) {
        let mut nodes = self.nodes.write();
        let m = &mut nodes[(ino.0 as usize).wrapping_sub(1)].meta;
        (m.mtime, m.atime, m.ctime, m.crtime) = (time, time, time, Some(time));
    }

    fn with<T>(&self, ino: Ino, f: impl FnOnce(&Node) -> Result<T, FsError>) -> Result<T, FsError> {
        let nodes = self.nodes.read();
        let at = usize::try_from(ino.0.wrapping_sub(1)).unwrap_or(usize::MAX);
        nodes.get(at).map_or(Err(FsError::NoInode(ino)), f)
    }
}

fn wrong(node: &Node, wanted: &'static str) -> FsError {
    FsError::WrongKind {
        ino: node.meta.ino,
        actual: node.meta.kind,
        wanted,
    }
}

impl Filesystem for MemFs {
    fn info(&self) -> VolumeInfo {
        VolumeInfo {
            kind: FsKind::Ext4,
            label: Some("memfs".into()),
            block_size: 4096,
            size: 0,
            serial: None,
            warnings: Vec::new(),
        }
    }

    fn root(&self) -> Ino {
        Ino(1)
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, FsError> {
        self.with(ino, |n| Ok(n.meta.clone()))
    }

    fn read_dir(&self, dir: Ino) -> Result<Vec<DirEntry>, FsError> {
        self.with(dir, |n| match &n.body {
            Body::Dir(entries) => Ok(entries.clone()),
            _ => Err(wrong(n, "directory")),
        })
    }

    fn read_link(&self, ino: Ino) -> Result<String, FsError> {
        self.with(ino, |n| match &n.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(wrong(n, "symlink")),
        })
    }

    fn open(&self, ino: Ino) -> Result<Source, FsError> {
        self.with(ino, |n| match &n.body {
            Body::File(data) => Ok(Arc::new(MemSource::new(data.clone())) as Source),
            _ => Err(wrong(n, "file")),
        })
    }
}
