//! Test vaults: a repository in a temporary directory with trees and file
//! contents written through the real `BlobSaver`, reopened from disk (so
//! nothing comes from a cache) for the code under test.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use crate::backend::{FileType, LocalBackend};
use crate::id::{Id, TreeId};
use crate::repo::saver::BlobSaver;
use crate::repo::{BlobType, KdfParams, Repository};
use crate::snapshot::mode::{MODE_DIR, MODE_SYMLINK};
use crate::snapshot::{Node, NodeType, Snapshot, Tree};

const PASSWORD: &[u8] = b"pw";

/// A repository in a temporary directory.
pub(crate) struct Vault {
    pub dir: tempfile::TempDir,
    pub repo: Arc<Repository>,
}

impl Vault {
    pub(crate) fn new() -> Vault {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = Arc::new(LocalBackend::new(dir.path().join("repo")));
        let kdf = KdfParams {
            n: 1 << 10,
            r: 8,
            p: 1,
        };
        let repo = Arc::new(Repository::init(backend, PASSWORD, kdf).expect("init"));
        Vault { dir, repo }
    }

    pub(crate) fn saver(&self) -> BlobSaver {
        BlobSaver::new(self.repo.clone())
    }

    /// A fresh handle on the repository: index from disk, empty cache.
    pub(crate) fn reopen(&self) -> Arc<Repository> {
        let backend = Arc::new(LocalBackend::new(self.dir.path().join("repo")));
        let repo = Repository::open(backend, PASSWORD).expect("open");
        repo.load_index().expect("index");
        Arc::new(repo)
    }

    /// A scratch directory beside the repository.
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stores `children` as the root tree and a snapshot of it; returns the
    /// tree id, with every pack and the index written.
    pub(crate) fn commit(&self, saver: BlobSaver, children: Vec<Node>) -> TreeId {
        let tree = saver
            .save_tree(Tree { nodes: children })
            .expect("root tree");
        saver.finish().expect("finish");
        let snap = Snapshot {
            time: time("2024-01-02T03:04:05Z"),
            parent: None,
            tree,
            paths: vec!["/".into()],
            hostname: "test".into(),
            username: String::new(),
            uid: 0,
            gid: 0,
            excludes: Vec::new(),
            tags: Vec::new(),
            original: None,
            program_version: None,
            summary: None,
        };
        self.repo
            .save_unpacked(FileType::Snapshot, &snap)
            .expect("snapshot");
        tree
    }

    /// Flips one byte inside the stored ciphertext of a blob.
    pub(crate) fn corrupt(&self, t: BlobType, id: &Id) {
        let loc = self.repo.index().get(t, id).expect("indexed blob");
        let hex = loc.pack.to_hex();
        let path = self.dir.path().join("repo/data").join(&hex[..2]).join(&hex);
        let mut bytes = std::fs::read(&path).expect("read pack");
        let at = loc.blob.offset as usize + loc.blob.length as usize / 2;
        bytes[at] ^= 0x40;
        std::fs::write(&path, bytes).expect("write pack");
    }
}

pub(crate) fn time(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("time")
}

/// The mtime every fixture node gets unless a test sets another.
pub(crate) const MTIME: &str = "2021-03-04T05:06:07.123456789+02:00";

/// A node with the fixture's times and no content.
pub(crate) fn base(name: &str, t: NodeType, mode: u32) -> Node {
    let mut n = Node::new(name, t);
    n.mode = mode;
    n.mtime = time(MTIME);
    n.atime = time("2022-01-01T00:00:00.5Z");
    n.ctime = n.mtime;
    n
}

/// A file with `data` cut into blobs of `chunk` bytes.
pub(crate) fn file(saver: &BlobSaver, name: &str, data: &[u8], chunk: usize) -> Node {
    let mut n = base(name, NodeType::File, 0o644);
    let mut ids = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        let id = Id::hash(c);
        saver.save(BlobType::Data, id, c).expect("save blob");
        ids.push(id);
    }
    n.size = data.len() as u64;
    n.content = Some(ids);
    n
}

/// A directory holding `children`.
pub(crate) fn dir(saver: &BlobSaver, name: &str, children: Vec<Node>) -> Node {
    let mut n = base(name, NodeType::Dir, MODE_DIR | 0o755);
    n.subtree = Some(saver.save_tree(Tree { nodes: children }).expect("tree"));
    n
}

pub(crate) fn symlink(name: &str, target: &str) -> Node {
    let mut n = base(name, NodeType::Symlink, MODE_SYMLINK | 0o777);
    n.linktarget = target.into();
    n
}

/// Deterministic bytes that do not compress to nothing.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
