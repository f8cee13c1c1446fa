//! Damaged and inconsistent vaults: an entry that cannot be restored is an
//! error naming it (and the blob or tree), is never left with wrong bytes,
//! and does not stop the rest of the restore.

use super::*;
use crate::id::Id;
use crate::repo::BlobType;

fn node_at(s: &Sample, path: &str) -> Node {
    resolve_path(&s.vault.reopen(), &s.root, path).expect("node")
}

#[test]
fn damaged_blob_fails_its_files_and_nothing_else() {
    let s = sample();
    let bad = node_at(&s, "/docs/a.txt").content()[2];
    let shared = node_at(&s, "/hard1").content()[0];
    s.vault.corrupt(BlobType::Data, &bad);
    s.vault.corrupt(BlobType::Data, &shared);

    let t = s.vault.scratch("out");
    let progress = Counting::default();
    let sum = run_with(&s, "/", &opts(&t), &progress).expect("restore goes on");
    assert_eq!(sum.error_count, 3, "{:?}", sum.errors);
    assert_eq!(progress.errors.load(Ordering::Relaxed), 3);
    let a_err = sum.errors.iter().find(|e| e.starts_with("/docs/a.txt:"));
    let a_err = a_err.unwrap_or_else(|| panic!("{:?}", sum.errors));
    assert!(a_err.contains(&bad.to_hex()), "{a_err}");
    // /docs/hard2 comes first in the walk: /hard1 is the link to it.
    let has = |prefix: &str, text: &str| {
        sum.errors
            .iter()
            .any(|e| e.starts_with(prefix) && e.contains(text))
    };
    assert!(has("/docs/hard2:", &shared.to_hex()), "{:?}", sum.errors);
    assert!(
        has("/hard1:", "hard link to /docs/hard2"),
        "{:?}",
        sum.errors
    );

    // No file with wrong bytes is left behind.
    for p in ["docs/a.txt", "hard1", "docs/hard2"] {
        assert!(std::fs::symlink_metadata(t.join(p)).is_err(), "{p} exists");
    }
    assert_eq!(read(t.join("sparse")), s.sparse);
    assert_eq!(read(t.join("bin/tool")), s.tool);
    assert_eq!(sum.files_restored, 3, "tool, sparse, empty");

    // A dry run finds the same damage and still writes nothing.
    let t = s.vault.scratch("dry");
    let mut o = opts(&t);
    o.dry_run = true;
    let sum = run(&s, "/", &o).expect("dry run");
    assert_eq!(sum.error_count, 3, "{:?}", sum.errors);
    assert!(sum.errors.iter().any(|e| e.contains(&bad.to_hex())));
    assert!(!t.exists());
}

#[test]
fn damaged_subtree_is_skipped_and_reported() {
    let s = sample();
    let bin_tree = node_at(&s, "/bin").subtree.expect("tree");
    s.vault.corrupt(BlobType::Tree, &bin_tree);
    let t = s.vault.scratch("out");
    let sum = run(&s, "/", &opts(&t)).expect("restore goes on");
    assert_eq!(sum.error_count, 1, "{:?}", sum.errors);
    assert!(sum.errors[0].contains("/bin") && sum.errors[0].contains(&bin_tree.to_hex()));
    assert_eq!(read(t.join("docs/a.txt")), s.a_txt);
    assert!(!t.join("bin/tool").exists());

    // Without its root tree nothing can be restored: that is an `Err`.
    let s = sample();
    s.vault.corrupt(BlobType::Tree, &s.root);
    let repo = s.vault.reopen();
    let e = restore(
        &repo,
        &root_node(&s.root),
        &opts(&s.vault.scratch("x")),
        &NoRestoreProgress,
    )
    .expect_err("root damaged");
    assert_eq!(e.kind(), ErrorKind::Damaged);
}

#[test]
fn inconsistent_nodes_are_refused_before_writing() {
    let v = Vault::new();
    let saver = v.saver();
    let mut missing = file(&saver, "missing", b"data", 10);
    missing.content = Some(vec![Id::hash(b"never stored")]);
    let mut short = file(&saver, "short", b"0123456789", 4);
    short.size = 11;
    let ok = file(&saver, "ok", b"fine", 10);
    let root = v.commit(saver, vec![missing, ok, short]);
    let repo = v.reopen();
    let t = v.scratch("out");
    let sum = restore(&repo, &root_node(&root), &opts(&t), &NoRestoreProgress).expect("restore");
    assert_eq!(listing(&t), ["ok"]);
    assert_eq!(sum.error_count, 2, "{:?}", sum.errors);
    let e = sum.errors.join("\n");
    assert!(
        e.contains("/missing") && e.contains(&Id::hash(b"never stored").to_hex()),
        "{e}"
    );
    assert!(e.contains("/short") && e.contains("size 11"), "{e}");
}

#[test]
fn hostile_names_are_never_joined_to_the_target() {
    let v = Vault::new();
    let saver = v.saver();
    let evil = file(&saver, "..", b"escaped", 10);
    let inner = dir(&saver, "d", vec![evil]);
    let x = file(&saver, "x", b"", 1);
    let root = v.commit(saver, vec![inner, x]);
    let repo = v.reopen();
    let t = v.scratch("out").join("deep");
    let sum = restore(&repo, &root_node(&root), &opts(&t), &NoRestoreProgress).expect("restore");
    assert_eq!(sum.error_count, 1, "{:?}", sum.errors);
    assert!(
        sum.errors[0].contains("invalid entry name"),
        "{:?}",
        sum.errors
    );
    assert_eq!(listing(&v.scratch("out")), ["deep", "deep/d", "deep/x"]);
}

#[test]
fn dry_run_verifies_files_it_would_leave_alone() {
    let s = sample();
    let t = s.vault.scratch("out");
    run(&s, "/", &opts(&t)).expect("restore");
    let bad = node_at(&s, "/bin/tool").content()[0];
    s.vault.corrupt(BlobType::Data, &bad);

    let mut o = opts(&t);
    (o.dry_run, o.overwrite) = (true, Overwrite::Never);
    let progress = Counting::default();
    let sum = run_with(&s, "/", &o, &progress).expect("dry run");
    assert_eq!(sum.files_restored, 0, "{sum:?}");
    assert!(sum.files_skipped >= 6, "{sum:?}");
    assert_eq!(sum.error_count, 1, "{:?}", sum.errors);
    assert!(sum.errors[0].starts_with("/bin/tool:") && sum.errors[0].contains(&bad.to_hex()));
    let total = progress.total_bytes.load(Ordering::Relaxed);
    assert_eq!(
        total,
        (s.a_txt.len() + s.tool.len() + s.sparse.len() + 24) as u64
    );
    assert_eq!(
        read(t.join("bin/tool")),
        s.tool,
        "a dry run changes nothing"
    );
}
