//! Library-side helpers: opening and creating repositories with the vaultfs
//! API, describing a snapshot's tree as a [`Manifest`] by reading its trees
//! and blobs, and fingerprints of the repository files on disk.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vaultfs::Id;
use vaultfs::backend::LocalBackend;
use vaultfs::repo::{BlobType, KdfParams, Repository};
use vaultfs::snapshot::{Node, NodeType};

use crate::compare::{Entry, Kind, Manifest};
use crate::restic::PASSWORD;

/// Cheap scrypt parameters for repositories made by tests.
pub const TEST_KDF: KdfParams = KdfParams {
    n: 1 << 10,
    r: 8,
    p: 1,
};

/// Creates a vaultfs repository at `path` with the test password.
pub fn init(path: &Path) -> Arc<Repository> {
    let repo = Repository::init(
        Arc::new(LocalBackend::new(path)),
        PASSWORD.as_bytes(),
        TEST_KDF,
    )
    .unwrap_or_else(|e| panic!("vaultfs init of {}: {e}", path.display()));
    Arc::new(repo)
}

/// Opens the repository at `path` with the test password and loads its index.
pub fn open(path: &Path) -> Arc<Repository> {
    let repo = Repository::open(Arc::new(LocalBackend::new(path)), PASSWORD.as_bytes())
        .unwrap_or_else(|e| panic!("vaultfs open of {}: {e}", path.display()));
    repo.load_index()
        .unwrap_or_else(|e| panic!("loading the index of {}: {e}", path.display()));
    Arc::new(repo)
}

/// Walks from the snapshot's root tree down the components of the absolute
/// path `source` (as restic stores it) and returns that directory's node.
pub fn find_source_node(repo: &Repository, root_tree: &Id, source: &Path) -> Node {
    let mut tree_id = *root_tree;
    let mut node = None;
    let mut walked = PathBuf::from("/");
    for comp in source.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        let name = name.to_str().expect("source paths of the tests are UTF-8");
        walked.push(name);
        let tree = repo
            .load_tree(&tree_id)
            .unwrap_or_else(|e| panic!("loading tree {tree_id} for {}: {e}", walked.display()));
        let n = tree.find(name).cloned().unwrap_or_else(|| {
            let names: Vec<_> = tree.nodes.iter().map(|n| n.name.as_str()).collect();
            panic!(
                "snapshot has no {} (tree {tree_id} holds {names:?})",
                walked.display()
            )
        });
        if let Some(sub) = n.subtree {
            tree_id = sub;
        }
        node = Some(n);
    }
    node.unwrap_or_else(|| panic!("{} has no components", source.display()))
}

/// Describes the snapshot subtree for the absolute path `source` by loading
/// every tree and reassembling every file from its data blobs.
pub fn snapshot_manifest(repo: &Repository, root_tree: &Id, source: &Path) -> Manifest {
    let root = find_source_node(repo, root_tree, source);
    let mut m = Manifest::default();
    add_node(repo, &root, Path::new(""), &mut m);
    m
}

fn add_node(repo: &Repository, node: &Node, rel: &Path, m: &mut Manifest) {
    let kind = match node.node_type {
        NodeType::File => Kind::File,
        NodeType::Dir => Kind::Dir,
        NodeType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    };
    let (size, sha256) = if kind == Kind::File {
        let mut h = Sha256::new();
        let mut n = 0u64;
        for id in node.content() {
            let blob = repo
                .load_blob(BlobType::Data, id)
                .unwrap_or_else(|e| panic!("{}: loading data blob {id}: {e}", rel.display()));
            n += blob.len() as u64;
            h.update(&blob[..]);
        }
        if n != node.size {
            m.problems.push(format!(
                "{}: node size {} but its blobs hold {n} bytes",
                rel.display(),
                node.size
            ));
        }
        (n, Some(hex::encode(h.finalize())))
    } else {
        (0, None)
    };
    let entry = Entry {
        kind,
        size,
        sha256,
        target: (kind == Kind::Symlink).then(|| node.link_target_bytes()),
        perm: node.unix_perm(),
        mtime: (node.mtime.timestamp(), node.mtime.timestamp_subsec_nanos()),
        uid: node.uid,
        gid: node.gid,
        xattrs: node
            .extended_attributes
            .iter()
            .filter(|x| x.name.starts_with("user."))
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect(),
        link_key: (kind == Kind::File && node.links > 1).then_some((node.device_id, node.inode)),
    };
    m.entries.insert(rel.to_path_buf(), entry);
    if kind == Kind::Dir {
        let sub = node
            .subtree
            .unwrap_or_else(|| panic!("{}: directory node without subtree", rel.display()));
        let tree = repo
            .load_tree(&sub)
            .unwrap_or_else(|e| panic!("{}: loading tree {sub}: {e}", rel.display()));
        for child in &tree.nodes {
            add_node(repo, child, &rel.join(&child.name), m);
        }
    }
}

/// Total bytes of the pack files below `data/`.
pub fn pack_bytes(repo_dir: &Path) -> u64 {
    crate::compare::scan(&repo_dir.join("data")).file_bytes()
}

/// The path of the pack file `id` in a local repository.
pub fn pack_path(repo_dir: &Path, id: &Id) -> PathBuf {
    let hex = id.to_hex();
    repo_dir.join("data").join(&hex[..2]).join(hex)
}

/// Flips one bit of the byte at `offset` of `path` (stored files are
/// read-only, so the mode is lifted for the write).
pub fn flip_byte(path: &Path, offset: u64) {
    use std::os::unix::fs::{FileExt, PermissionsExt};
    let mode = fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod for flip");
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} for writing: {e}", path.display()));
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset)
        .unwrap_or_else(|e| panic!("read {} at {offset}: {e}", path.display()));
    b[0] ^= 0x01;
    f.write_all_at(&b, offset)
        .unwrap_or_else(|e| panic!("write {} at {offset}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("restore mode after flip");
}
