//! restic writes, vaultfs reads: repositories made by the real restic
//! (format v2 compressed and uncompressed, format v1) are opened with the
//! library, their snapshots found, every tree walked and every file
//! reassembled from its data blobs, and the result compared with the
//! source tree: content, symlink targets, permissions, mtimes, owners,
//! user xattrs and hardlink groups.

use std::path::Path;

use vaultfs::Id;
use vaultfs::repo::{BlobType, Repository};
use vaultfs::snapshot::find_snapshot;
use vaultfs::snapshot::select::SnapshotFilter;

use crate::compare::{self, Checks, Manifest};
use crate::fixture::{self, Sizes};
use crate::restic::Restic;
use crate::vault;

/// Counts compressed and uncompressed blobs of a type in the loaded index.
fn compressed_counts(repo: &Repository, t: BlobType) -> (usize, usize) {
    let idx = repo.index();
    let compressed = idx
        .blobs(t)
        .filter(|b| b.blob.uncompressed_length.is_some())
        .count();
    (compressed, idx.len(t) - compressed)
}

/// Loads the snapshot `selector` and checks it against `expected`.
fn check_snapshot(
    repo: &Repository,
    selector: &str,
    source: &Path,
    expected: &Manifest,
    what: &str,
) {
    let (id, snap) = find_snapshot(repo, selector, &SnapshotFilter::default())
        .unwrap_or_else(|e| panic!("{what}: find_snapshot({selector}): {e}"));
    assert!(
        id.has_prefix(selector) || selector == "latest",
        "{what}: find_snapshot({selector}) returned {id}"
    );
    let src = source.to_str().expect("UTF-8 temp path");
    assert_eq!(snap.paths, vec![src.to_string()], "{what}: snapshot paths");
    assert_eq!(snap.hostname, "interop", "{what}: snapshot host");
    let actual = vault::snapshot_manifest(repo, &snap.tree, source);
    compare::assert_same(expected, &actual, Checks::ALL, what);
}

#[test]
fn restic_v2_compressed_repository_reads_back_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx = fixture::build(&tmp.path().join("src"), 1, Sizes::FULL);
    let before = compare::scan(&fx.root);
    let repo_dir = tmp.path().join("repo");
    let restic = Restic::new(&repo_dir);
    restic.init(2);
    let first = restic.backup(&fx.root, &["--compression", "auto"]);

    let repo = vault::open(&repo_dir);
    assert_eq!(repo.config().version, 2);
    let (data_c, _) = compressed_counts(&repo, BlobType::Data);
    let (tree_c, tree_u) = compressed_counts(&repo, BlobType::Tree);
    assert!(
        data_c > 0,
        "restic --compression auto stored no compressed data blob"
    );
    assert!(
        tree_c > 0 && tree_u == 0,
        "tree blobs: {tree_c} compressed, {tree_u} not"
    );
    // Several chunks per large file, so blob order and boundaries matter.
    assert!(
        repo.index().len(BlobType::Data) > 20,
        "only {} data blobs",
        repo.index().len(BlobType::Data)
    );
    check_snapshot(&repo, "latest", &fx.root, &before, "restic v2 snapshot 1");

    // A second snapshot with a parent; the first one must still read back.
    fixture::mutate(&fx, 2);
    let after = compare::scan(&fx.root);
    let second = restic.backup(&fx.root, &["--compression", "auto"]);
    assert_ne!(first, second);
    let repo = vault::open(&repo_dir);
    check_snapshot(
        &repo,
        "latest",
        &fx.root,
        &after,
        "restic v2 snapshot 2 (latest)",
    );
    check_snapshot(
        &repo,
        &first[..8],
        &fx.root,
        &before,
        "restic v2 snapshot 1 by id",
    );
    let (id, _) = find_snapshot(&repo, &second[..12], &SnapshotFilter::default())
        .expect("find the second snapshot by prefix");
    assert_eq!(id, second.parse::<Id>().expect("restic prints full ids"));
}

#[test]
fn restic_v2_uncompressed_repository_reads_back_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx = fixture::build(&tmp.path().join("src"), 3, Sizes::SMALL);
    let expected = compare::scan(&fx.root);
    let repo_dir = tmp.path().join("repo");
    let restic = Restic::new(&repo_dir);
    restic.init(2);
    restic.backup(&fx.root, &["--compression", "off"]);
    let repo = vault::open(&repo_dir);
    let (data_c, data_u) = compressed_counts(&repo, BlobType::Data);
    assert!(
        data_c == 0 && data_u > 0,
        "data blobs: {data_c} compressed, {data_u} not"
    );
    check_snapshot(
        &repo,
        "latest",
        &fx.root,
        &expected,
        "restic v2 --compression off",
    );
}

#[test]
fn restic_v1_repository_reads_back_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx = fixture::build(&tmp.path().join("src"), 4, Sizes::SMALL);
    let expected = compare::scan(&fx.root);
    let repo_dir = tmp.path().join("repo");
    let restic = Restic::new(&repo_dir);
    restic.init(1);
    restic.backup(&fx.root, &[]);
    let repo = vault::open(&repo_dir);
    assert_eq!(repo.config().version, 1);
    let (data_c, _) = compressed_counts(&repo, BlobType::Data);
    assert_eq!(data_c, 0, "a v1 repository cannot hold compressed blobs");
    check_snapshot(&repo, "latest", &fx.root, &expected, "restic v1");
}

/// The full restore path, not just blob reassembly: a restic v2 compressed
/// repository restored with vaultfs's restore reproduces the source on disk
/// (content, symlinks, modes, mtimes, owners, xattrs, hard links).
#[test]
fn restic_v2_repository_restores_through_vaultfs_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx = fixture::build(&tmp.path().join("src"), 5, Sizes::FULL);
    let expected = compare::scan(&fx.root);
    let repo_dir = tmp.path().join("repo");
    let restic = Restic::new(&repo_dir);
    restic.init(2);
    restic.backup(&fx.root, &["--compression", "auto"]);

    let repo = vault::open(&repo_dir);
    let (_, snap) =
        find_snapshot(&repo, "latest", &SnapshotFilter::default()).expect("latest snapshot");
    let root = vaultfs::snapshot::walk::root_node(&snap.tree);
    let target = tmp.path().join("restored");
    let opts = vaultfs::restore::RestoreOptions::new(target.clone());
    let summary =
        vaultfs::restore::restore(&repo, &root, &opts, &vaultfs::restore::NoRestoreProgress)
            .expect("restore");
    assert!(
        !summary.has_errors() && !summary.has_warnings(),
        "restore reported problems: {:?} {:?}",
        summary.errors,
        summary.warnings
    );
    let inside = fx.root.strip_prefix("/").expect("absolute fixture path");
    let actual = compare::scan(&target.join(inside));
    compare::assert_same(
        &expected,
        &actual,
        Checks::ALL,
        "restic repo restored by vaultfs",
    );
}
