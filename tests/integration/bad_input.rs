//! Damaged and wrong input: a wrong password changes nothing and says so;
//! a directory that is not a repository is named as such; a flipped byte
//! in a pack, snapshot or index file is an error naming the object, never
//! wrong bytes.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use vaultfs::backend::{FileType, LocalBackend};
use vaultfs::repo::{BlobType, Repository};
use vaultfs::snapshot::select::SnapshotFilter;
use vaultfs::snapshot::{find_snapshot, load_snapshots};
use vaultfs::{Error, ErrorKind, Id};

use crate::compare::{self, Checks};
use crate::fixture::{self, Sizes};
use crate::restic::{PASSWORD, Restic};
use crate::vault;

/// A restic-made v2 repository holding one snapshot of a small fixture.
fn restic_repo(tmp: &Path, seed: u64) -> std::path::PathBuf {
    let fx = fixture::build(&tmp.join("src"), seed, Sizes::SMALL);
    let repo_dir = tmp.join("repo");
    let restic = Restic::new(&repo_dir);
    restic.init(2);
    restic.backup(&fx.root, &["--compression", "auto"]);
    repo_dir
}

fn open_err(dir: &Path, password: &str) -> Error {
    match Repository::open(Arc::new(LocalBackend::new(dir)), password.as_bytes()) {
        Ok(_) => panic!("{} opened with password {password:?}", dir.display()),
        Err(e) => e,
    }
}

fn assert_names(e: &Error, kind: ErrorKind, id: &Id, what: &str) {
    let msg = e.to_string();
    assert_eq!(e.kind(), kind, "{what}: wrong error kind for: {msg}");
    assert!(
        msg.contains(&id.short()),
        "{what}: the error does not name {id}: {msg}"
    );
}

#[test]
fn wrong_password_is_reported_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let restic_made = restic_repo(tmp.path(), 20);
    let ours = tmp.path().join("ours");
    drop(vault::init(&ours));
    for dir in [&restic_made, &ours] {
        let before = compare::scan(dir);
        let e = open_err(dir, "not the password");
        assert_eq!(e.kind(), ErrorKind::WrongPassword, "{}: {e}", dir.display());
        assert!(
            e.to_string().contains("wrong password or no key found"),
            "{}: message {e:?}",
            dir.display()
        );
        compare::assert_same(
            &before,
            &compare::scan(dir),
            Checks::ALL,
            "repository after a wrong password",
        );
        // The right password still works.
        vault::open(dir);
    }
}

#[test]
fn a_directory_that_is_not_a_repository_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    let files = tmp.path().join("files");
    fixture::build(
        &files,
        21,
        Sizes {
            random: 1000,
            text: 1000,
            small_files: 5,
        },
    );
    let missing = tmp.path().join("does-not-exist");
    for dir in [&empty, &files, &missing] {
        let e = open_err(dir, PASSWORD);
        assert_eq!(
            e.kind(),
            ErrorKind::NotARepository,
            "{}: {e}",
            dir.display()
        );
        assert!(
            e.to_string().contains(&dir.display().to_string()),
            "the error does not name {}: {e}",
            dir.display()
        );
    }
    assert!(!missing.exists(), "opening created {}", missing.display());
}

#[test]
fn a_flipped_byte_in_a_pack_is_an_error_naming_the_blob() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo_dir = restic_repo(tmp.path(), 22);
    let repo = vault::open(&repo_dir);
    // A data blob and a tree blob, each damaged in the middle of its bytes.
    let mut victims = Vec::new();
    for t in [BlobType::Data, BlobType::Tree] {
        let loc = repo
            .index()
            .blobs(t)
            .max_by_key(|b| (b.blob.length, b.blob.id))
            .unwrap_or_else(|| panic!("no {} blob", t.as_str()));
        let at = u64::from(loc.blob.offset) + u64::from(loc.blob.length) / 2;
        vault::flip_byte(&vault::pack_path(&repo_dir, &loc.pack), at);
        victims.push((t, loc.blob.id));
    }
    drop(repo);

    let repo = vault::open(&repo_dir);
    for (t, id) in &victims {
        match repo.load_blob(*t, id) {
            Ok(_) => panic!("damaged {} blob {id} loaded without error", t.as_str()),
            Err(e) => assert_names(&e, ErrorKind::Damaged, id, "damaged blob"),
        }
    }
    let tree = victims[1].1;
    match repo.load_tree(&tree) {
        Ok(_) => panic!("damaged tree {tree} parsed"),
        Err(e) => assert_names(&e, ErrorKind::Damaged, &tree, "damaged tree"),
    }
    // Every other blob still loads, and nothing loads as wrong bytes.
    let all: Vec<_> = [BlobType::Data, BlobType::Tree]
        .into_iter()
        .flat_map(|t| {
            repo.index()
                .blobs(t)
                .map(move |b| (t, b.blob.id))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(all.len() > 10, "only {} blobs", all.len());
    for (t, id) in all {
        let damaged = victims.contains(&(t, id));
        match repo.load_blob(t, &id) {
            Ok(bytes) => {
                assert!(!damaged, "damaged blob {id} loaded");
                assert_eq!(Id::hash(&bytes), id, "blob {id} loaded as other bytes");
            }
            Err(e) => assert!(damaged, "undamaged {} blob {id} failed: {e}", t.as_str()),
        }
    }
}

fn only_file(repo_dir: &Path, t: FileType) -> Id {
    let ids = vault::open(repo_dir).list_ids(t).expect("list");
    assert_eq!(ids.len(), 1, "{}: {ids:?}", t.dir());
    ids[0]
}

#[test]
fn a_flipped_byte_in_a_snapshot_or_index_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo_dir = restic_repo(tmp.path(), 23);
    let snap = only_file(&repo_dir, FileType::Snapshot);
    let index = only_file(&repo_dir, FileType::Index);
    let snap_path = repo_dir.join("snapshots").join(snap.to_hex());
    let len = fs::metadata(&snap_path).expect("snapshot file").len();
    vault::flip_byte(&snap_path, len / 2);
    vault::flip_byte(&repo_dir.join("index").join(index.to_hex()), 40);

    let repo = Repository::open(Arc::new(LocalBackend::new(&repo_dir)), PASSWORD.as_bytes())
        .expect("config and keys are intact");
    match repo.load_index() {
        Ok(()) => panic!("a damaged index file {index} loaded"),
        Err(e) => assert_names(&e, ErrorKind::Damaged, &index, "damaged index"),
    }
    for sel in ["latest", &snap.to_hex()[..8]] {
        match find_snapshot(&repo, sel, &SnapshotFilter::default()) {
            Ok(_) => panic!("damaged snapshot {snap} loaded as {sel}"),
            Err(e) => assert_names(&e, ErrorKind::Damaged, &snap, "damaged snapshot"),
        }
    }

    // Damage whose file was renamed to its new hash: now the MAC must fail.
    let bytes = fs::read(&snap_path).expect("read snapshot");
    let renamed = Id::hash(&bytes);
    fs::rename(
        &snap_path,
        repo_dir.join("snapshots").join(renamed.to_hex()),
    )
    .expect("rename");
    match load_snapshots(&repo) {
        Ok(s) => panic!("a snapshot with a bad MAC loaded: {s:?}"),
        Err(e) => assert_names(&e, ErrorKind::Damaged, &renamed, "snapshot with a bad MAC"),
    }
}
