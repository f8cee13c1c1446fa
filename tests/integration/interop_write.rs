//! vaultfs writes, restic reads: a vault made by the library must pass
//! `restic check --read-data` and `restic restore` must reproduce the
//! source tree exactly; and restic must accept a repository initialised by
//! vaultfs (config, key file, chunker polynomial) as its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vaultfs::archiver::{self, BackupOptions, BackupSummary, NoProgress};
use vaultfs::repo::Repository;

use crate::compare::{self, Checks, Manifest};
use crate::fixture::{self, Sizes};
use crate::restic::Restic;
use crate::vault;

/// Backs up `source` with the library, host `interop`.
pub fn vaultfs_backup(repo: &Arc<Repository>, source: &Path) -> BackupSummary {
    let mut opts = BackupOptions::new(vec![source.to_path_buf()]);
    opts.host = Some("interop".into());
    archiver::backup(repo, &opts, &NoProgress)
        .unwrap_or_else(|e| panic!("vaultfs backup of {}: {e}", source.display()))
}

/// Where `restic restore --target target` puts the absolute path `source`.
fn restored(target: &Path, source: &Path) -> PathBuf {
    target.join(source.strip_prefix("/").expect("absolute source path"))
}

/// Restores `snapshot` with restic and compares it with `expected`.
fn restic_restore_matches(
    restic: &Restic,
    snapshot: &str,
    target: &Path,
    source: &Path,
    expected: &Manifest,
    what: &str,
) {
    restic.restore(snapshot, target);
    let got = compare::scan(&restored(target, source));
    compare::assert_same(expected, &got, Checks::ALL, what);
}

#[test]
fn vaultfs_backup_passes_restic_check_and_restores_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx = fixture::build(&tmp.path().join("src"), 10, Sizes::FULL);
    let before = compare::scan(&fx.root);
    let repo_dir = tmp.path().join("repo");
    let restic = Restic::new(&repo_dir);

    let first = vaultfs_backup(&vault::init(&repo_dir), &fx.root);
    assert_eq!(first.parent, None, "the first backup has no parent");
    restic.check_read_data();
    restic_restore_matches(
        &restic,
        "latest",
        &tmp.path().join("restore1"),
        &fx.root,
        &before,
        "restic restore of a vaultfs snapshot",
    );
    // The library reads its own snapshot back the same way.
    let repo = vault::open(&repo_dir);
    let snap = vault::snapshot_manifest(
        &repo,
        &vaultfs::snapshot::find_snapshot(&repo, "latest", &Default::default())
            .expect("latest snapshot")
            .1
            .tree,
        &fx.root,
    );
    compare::assert_same(
        &before,
        &snap,
        Checks::ALL,
        "vaultfs reading its own snapshot",
    );

    // An incremental backup: unchanged files come from the parent.
    fixture::mutate(&fx, 11);
    let after = compare::scan(&fx.root);
    let second = vaultfs_backup(&repo, &fx.root);
    assert_eq!(
        second.parent,
        Some(first.snapshot_id),
        "the second backup's parent"
    );
    assert!(
        second.files_unmodified > 0 && second.files_new + second.files_changed > 0,
        "second backup: {} new, {} changed, {} unmodified files",
        second.files_new,
        second.files_changed,
        second.files_unmodified
    );
    restic.check_read_data();
    restic_restore_matches(
        &restic,
        "latest",
        &tmp.path().join("restore2"),
        &fx.root,
        &after,
        "restic restore of the incremental vaultfs snapshot",
    );
    let first_hex = first.snapshot_id.to_hex();
    restic_restore_matches(
        &restic,
        &first_hex[..8],
        &tmp.path().join("restore3"),
        &fx.root,
        &before,
        "restic restore of the first vaultfs snapshot after the second",
    );

    let listed: serde_json::Value = serde_json::from_str(&restic.run(["snapshots", "--json"]))
        .expect("restic snapshots --json");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("a JSON array")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "restic snapshots: {listed}");
    assert!(
        ids.contains(&first_hex.as_str()),
        "restic snapshots: {listed}"
    );
}

#[test]
fn restic_backs_up_into_a_vaultfs_initialised_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx = fixture::build(&tmp.path().join("src"), 12, Sizes::SMALL);
    let expected = compare::scan(&fx.root);
    let repo_dir = tmp.path().join("repo");
    let ours = vault::init(&repo_dir);
    ours.add_key(b"second password", vault::TEST_KDF)
        .expect("add a second key");
    let restic = Restic::new(&repo_dir);

    // restic decrypts our config and sees the same values.
    let cfg: serde_json::Value = serde_json::from_str(&restic.run(["cat", "config"]))
        .expect("restic cat config prints JSON");
    assert_eq!(cfg["version"], 2, "{cfg}");
    assert_eq!(cfg["id"].as_str(), Some(ours.config().id.as_str()), "{cfg}");
    assert_eq!(
        cfg["chunker_polynomial"].as_str(),
        Some(ours.config().chunker_polynomial.as_str()),
        "{cfg}"
    );
    // Both key files unlock it for restic.
    restic
        .with_password("second password")
        .run(["cat", "config"]);
    let (_, wrong) = restic
        .with_password("not the password")
        .output(["cat", "config"]);
    assert!(
        !wrong.status.success(),
        "restic opened the repository with a wrong password"
    );

    restic.backup(&fx.root, &["--compression", "auto"]);
    restic.check_read_data();
    restic_restore_matches(
        &restic,
        "latest",
        &tmp.path().join("restore"),
        &fx.root,
        &expected,
        "restic restore from a vaultfs-initialised repository",
    );
    // And the library reads what restic wrote there.
    let repo = vault::open(&repo_dir);
    let (_, snap) = vaultfs::snapshot::find_snapshot(&repo, "latest", &Default::default())
        .expect("latest snapshot");
    let got = vault::snapshot_manifest(&repo, &snap.tree, &fx.root);
    compare::assert_same(
        &expected,
        &got,
        Checks::ALL,
        "vaultfs reading restic's snapshot in its own repository",
    );
}
