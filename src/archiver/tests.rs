//! Backup round trips through the library (no CLI): content, metadata,
//! change detection, dedup of hard links and warnings.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;

use super::{BackupOptions, NoProgress, ParentChoice, backup};
use crate::backend::LocalBackend;
use crate::repo::{BlobType, KdfParams, Repository};
use crate::snapshot::{Node, find_snapshot, select::SnapshotFilter};

fn repo(dir: &Path) -> Arc<Repository> {
    let b = Arc::new(LocalBackend::new(dir.join("repo")));
    Arc::new(
        Repository::init(
            b,
            b"pw",
            KdfParams {
                n: 1 << 10,
                r: 8,
                p: 1,
            },
        )
        .expect("init"),
    )
}

fn content(repo: &Repository, node: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    for id in node.content() {
        out.extend_from_slice(&repo.load_blob(BlobType::Data, id).expect("blob"));
    }
    out
}

fn lookup(repo: &Repository, tree: &crate::id::Id, path: &Path) -> Node {
    let mut tree = repo.load_tree(tree).expect("tree");
    let comps: Vec<_> = path.iter().filter(|c| *c != "/").collect();
    for (i, c) in comps.iter().enumerate() {
        let node = tree
            .find(&c.to_string_lossy())
            .cloned()
            .unwrap_or_else(|| panic!("{c:?} missing"));
        if i + 1 == comps.len() {
            return node;
        }
        tree = repo
            .load_tree(&node.subtree.expect("subtree"))
            .expect("tree");
    }
    panic!("empty path")
}

#[test]
fn backup_round_trip_and_incremental() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    let mut big = vec![0u8; 9_000_000];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1),
        &mut big,
    );
    std::fs::write(src.join("big.bin"), &big).expect("write");
    std::fs::write(src.join("sub/small.txt"), b"hello").expect("write");
    std::fs::write(src.join("empty"), b"").expect("write");
    std::fs::write(src.join("zeros"), vec![0u8; 1 << 20]).expect("write");
    std::fs::set_permissions(
        src.join("sub/small.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .expect("chmod");
    std::fs::hard_link(src.join("big.bin"), src.join("big.link")).expect("link");
    symlink("sub/small.txt", src.join("link")).expect("symlink");
    let repo = repo(tmp.path());
    let s1 = backup(&repo, &BackupOptions::new(vec![src.clone()]), &NoProgress).expect("backup");
    assert!(s1.warnings.is_empty(), "{:?}", s1.warnings);
    assert_eq!(s1.files_new, 5);
    let (_, snap) = find_snapshot(&repo, "latest", &SnapshotFilter::default()).expect("snap");
    assert_eq!(snap.paths, vec![src.to_string_lossy().to_string()]);
    let big_node = lookup(&repo, &snap.tree, &src.join("big.bin"));
    assert_eq!(content(&repo, &big_node), big);
    assert!(
        big_node.content().len() >= 2,
        "more than the 8 MiB maximum chunk makes several chunks, whatever the seed"
    );
    assert_eq!(
        lookup(&repo, &snap.tree, &src.join("big.link")).content(),
        big_node.content()
    );
    let small = lookup(&repo, &snap.tree, &src.join("sub/small.txt"));
    assert_eq!(content(&repo, &small), b"hello");
    assert_eq!(small.unix_perm(), 0o640);
    let md = std::fs::metadata(src.join("sub/small.txt")).expect("md");
    assert_eq!(small.mtime.timestamp(), md.mtime());
    assert_eq!(small.mtime.timestamp_subsec_nanos() as i64, md.mtime_nsec());
    assert_eq!(
        lookup(&repo, &snap.tree, &src.join("link")).linktarget,
        "sub/small.txt"
    );
    assert_eq!(
        lookup(&repo, &snap.tree, &src.join("empty")).content(),
        &[] as &[crate::id::Id]
    );
    assert_eq!(
        content(&repo, &lookup(&repo, &snap.tree, &src.join("zeros"))),
        vec![0u8; 1 << 20]
    );

    // Unchanged re-backup reads nothing and adds no data.
    let s2 = backup(&repo, &BackupOptions::new(vec![src.clone()]), &NoProgress).expect("backup 2");
    assert_eq!(
        (s2.files_new, s2.files_changed, s2.files_unmodified),
        (0, 0, 5)
    );
    assert_eq!(s2.data_blobs, 0);
    assert_eq!(s2.parent, Some(s1.snapshot_id));
    // A changed file is read again; --rescan-unchanged reads all.
    std::fs::write(src.join("sub/small.txt"), b"hello, again").expect("write");
    let s3 = backup(&repo, &BackupOptions::new(vec![src.clone()]), &NoProgress).expect("backup 3");
    assert_eq!((s3.files_changed, s3.files_unmodified), (1, 4));
    let mut o = BackupOptions::new(vec![src.clone()]);
    o.rescan_unchanged = true;
    let s4 = backup(&repo, &o, &NoProgress).expect("backup 4");
    assert_eq!(s4.files_changed, 5);
    o.parent = ParentChoice::None;
    assert_eq!(
        backup(&repo, &o, &NoProgress).expect("backup 5").files_new,
        5
    );
}

#[test]
fn unreadable_files_are_warnings() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("ok"), b"fine").expect("write");
    // A dangling path given explicitly is an error; one inside the tree that
    // vanishes or cannot be opened is a warning. A fifo is recorded, not read.
    nix::unistd::mkfifo(
        &src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("fifo");
    let repo = repo(tmp.path());
    let missing = backup(
        &repo,
        &BackupOptions::new(vec![src.join("nope")]),
        &NoProgress,
    );
    assert!(missing.is_err());
    let s = backup(&repo, &BackupOptions::new(vec![src.clone()]), &NoProgress).expect("backup");
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let (_, snap) = find_snapshot(&repo, "latest", &SnapshotFilter::default()).expect("snap");
    assert_eq!(
        lookup(&repo, &snap.tree, &src.join("fifo")).node_type,
        crate::snapshot::NodeType::Fifo
    );
}
