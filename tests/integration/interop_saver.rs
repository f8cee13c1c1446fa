//! The write path below the archiver, checked by restic: blobs chunked with
//! the repository's chunker and stored by the `BlobSaver` (packs, index),
//! trees and a snapshot encoded by the library from a small source tree,
//! must pass `restic check --read-data` and restore exactly with restic.
//! This isolates the on-disk formats from the archiver's walk.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use vaultfs::Id;
use vaultfs::backend::FileType;
use vaultfs::chunker::{Chunker, ChunkerParams};
use vaultfs::repo::BlobType;
use vaultfs::repo::saver::BlobSaver;
use vaultfs::snapshot::{Node, NodeType, Snapshot, Tree, mode};

use crate::compare::{self, Checks};
use crate::fixture::{random_bytes, text_bytes};
use crate::restic::Restic;
use crate::vault;

fn time(secs: i64, nsec: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp(secs, u32::try_from(nsec).expect("nanoseconds"))
        .expect("a valid time")
        .fixed_offset()
}

/// A node with the metadata of `path`, storing file content and subtrees.
fn node_of(saver: &BlobSaver, params: &ChunkerParams, path: &Path) -> Node {
    let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path
        .file_name()
        .expect("a file name")
        .to_str()
        .expect("UTF-8 name");
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        NodeType::Dir
    } else if ft.is_symlink() {
        NodeType::Symlink
    } else {
        NodeType::File
    };
    let mut node = Node::new(name, kind);
    node.mode = mode::from_unix(md.mode());
    node.mtime = time(md.mtime(), md.mtime_nsec());
    node.atime = time(md.atime(), md.atime_nsec());
    node.ctime = time(md.ctime(), md.ctime_nsec());
    node.uid = md.uid();
    node.gid = md.gid();
    node.inode = md.ino();
    node.links = md.nlink();
    match kind {
        NodeType::File => {
            node.size = md.len();
            let file = fs::File::open(path).expect("open source file");
            let mut chunker = Chunker::new(params, file);
            let mut ids = Vec::new();
            while let Some(chunk) = chunker.next_chunk().expect("read source file") {
                let id = Id::hash(&chunk);
                saver
                    .save(BlobType::Data, id, &chunk)
                    .expect("save data blob");
                ids.push(id);
            }
            node.content = Some(ids);
        }
        NodeType::Symlink => {
            let target = fs::read_link(path).expect("readlink");
            node.linktarget = std::str::from_utf8(target.as_os_str().as_bytes())
                .expect("UTF-8 target")
                .to_string();
        }
        _ => {
            let mut entries: Vec<_> = fs::read_dir(path)
                .expect("read_dir")
                .map(|e| e.expect("dir entry").path())
                .collect();
            entries.sort();
            let tree = Tree {
                nodes: entries.iter().map(|p| node_of(saver, params, p)).collect(),
            };
            node.subtree = Some(saver.save_tree(tree).expect("save tree"));
        }
    }
    node
}

#[test]
fn restic_checks_and_restores_what_the_blob_saver_wrote() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(30);
    fs::create_dir_all(src.join("sub/empty")).expect("mkdir");
    fs::write(src.join("random.bin"), random_bytes(&mut rng, 5 << 20)).expect("write");
    fs::write(src.join("sub/text.txt"), text_bytes(&mut rng, 3 << 20)).expect("write");
    fs::write(
        src.join("sub/same-as-text.txt"),
        fs::read(src.join("sub/text.txt")).expect("read"),
    )
    .expect("write");
    fs::write(src.join("empty"), b"").expect("write");
    std::os::unix::fs::symlink("sub/text.txt", src.join("link")).expect("symlink");
    crate::fixture::set_mtimes(&src, &mut rng);
    let expected = compare::scan(&src);

    let repo_dir = tmp.path().join("repo");
    let repo = vault::init(&repo_dir);
    let params = ChunkerParams::new(repo.config().polynomial().expect("a polynomial"));
    let saver = BlobSaver::new(repo.clone());
    let mut top = node_of(&saver, &params, &src);
    top.name = "src".into();
    let root = saver
        .save_tree(Tree { nodes: vec![top] })
        .expect("save root tree");
    let stats = saver.finish().expect("finish the saver");
    assert!(stats.data_blobs > 4 && stats.tree_blobs >= 3, "{stats:?}");
    let snapshot = Snapshot {
        time: chrono::Local::now().fixed_offset(),
        parent: None,
        tree: root,
        paths: vec!["/src".into()],
        hostname: "interop".into(),
        username: "test".into(),
        uid: 0,
        gid: 0,
        excludes: vec![],
        tags: vec!["saver".into()],
        original: None,
        program_version: None,
        summary: None,
    };
    repo.save_unpacked(FileType::Snapshot, &snapshot)
        .expect("save snapshot");

    let restic = Restic::new(&repo_dir);
    restic.check_read_data();
    let target = tmp.path().join("restore");
    restic.restore("latest", &target);
    let checks = Checks {
        xattrs: false,
        hardlinks: false,
        ..Checks::ALL
    };
    compare::assert_same(
        &expected,
        &compare::scan(&target.join("src")),
        checks,
        "restic restore of blobs, trees and snapshot written by the library",
    );
}
