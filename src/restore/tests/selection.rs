//! Which entries are restored: include/exclude filters and the overwrite
//! policies, and that existing symlinks and hard links at a destination
//! are replaced, never written through.

use std::os::unix::fs::MetadataExt;

use filetime::FileTime;

use super::*;
use crate::filter::{Filter, Matcher};

fn filter(include: &[&str], include_re: &[&str], exclude: &[&str]) -> Filter {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let inc = Matcher::new(&v(include), &v(include_re)).expect("include");
    let exc = Matcher::new(&v(exclude), &[]).expect("exclude");
    Filter::new(inc, exc)
}

fn restore_filtered(s: &Sample, name: &str, path: &str, f: Filter) -> (PathBuf, RestoreSummary) {
    let t = s.vault.scratch(name);
    let mut o = opts(&t);
    o.filter = f;
    let sum = run(s, path, &o).expect("restore");
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);
    (t, sum)
}

#[test]
fn include_and_exclude() {
    let s = sample();
    let (t, sum) = restore_filtered(&s, "one", "/", filter(&["/docs/a.txt"], &[], &[]));
    assert_eq!(listing(&t), ["docs", "docs/a.txt"]);
    assert_eq!(read(t.join("docs/a.txt")), s.a_txt);
    assert_eq!(
        lstat(t.join("docs")).mode() & 0o7777,
        0o755,
        "parent dir metadata"
    );
    assert_eq!((sum.files_restored, sum.dirs_restored), (1, 1));

    let (t, _) = restore_filtered(&s, "glob", "/", filter(&["*.txt", "tool"], &[], &[]));
    assert_eq!(listing(&t), ["bin", "bin/tool", "docs", "docs/a.txt"]);

    // A directory matched by an include brings everything below it.
    let (t, _) = restore_filtered(&s, "re", "/", filter(&[], &["^/docs$"], &[]));
    assert_eq!(
        listing(&t),
        ["docs", "docs/a.txt", "docs/empty", "docs/hard2"]
    );

    let (t, _) = restore_filtered(&s, "mixed", "/", filter(&["/docs"], &[], &["*.txt"]));
    assert_eq!(listing(&t), ["docs", "docs/empty", "docs/hard2"]);

    let (t, _) = restore_filtered(
        &s,
        "ex",
        "/",
        filter(&[], &[], &["/docs", "sparse", "null", "fifo"]),
    );
    assert_eq!(listing(&t), ["bin", "bin/tool", "hard1", "link", "tmp"]);

    // Below a subdirectory, filter paths start at that directory.
    let (t, _) = restore_filtered(&s, "sub", "/docs", filter(&["/empty"], &[], &[]));
    assert_eq!(listing(&t), ["empty"]);

    // Nothing included: nothing restored, not even empty directories.
    let (t, sum) = restore_filtered(&s, "none", "/", filter(&["/nope"], &[], &[]));
    assert!(listing(&t).is_empty());
    assert_eq!((sum.files_restored, sum.dirs_restored), (0, 0));
}

fn set_mtime(p: &Path, secs: i64) {
    filetime::set_symlink_file_times(
        p,
        FileTime::from_unix_time(secs, 0),
        FileTime::from_unix_time(secs, 0),
    )
    .expect("set mtime");
}

fn with_policy(t: &Path, p: Overwrite) -> RestoreOptions {
    let mut o = opts(t);
    o.overwrite = p;
    o
}

#[test]
fn overwrite_policies() {
    let s = sample();
    let t = s.vault.scratch("out");
    run(&s, "/", &opts(&t)).expect("first restore");
    let a = t.join("docs/a.txt");
    let tool = t.join("bin/tool");

    std::fs::write(&a, b"local").expect("write");
    let sum = run(&s, "/", &with_policy(&t, Overwrite::Never)).expect("never");
    assert_eq!(read(&a), b"local");
    assert_eq!(sum.files_restored, 0, "{sum:?}");
    assert!(sum.files_skipped >= 6, "{sum:?}");

    set_mtime(&a, 946_684_800); // 2000: older than the snapshot's
    std::fs::write(&tool, b"newer local tool").expect("write");
    set_mtime(&tool, 1_900_000_000); // 2030: newer
    let sum = run(&s, "/", &with_policy(&t, Overwrite::IfNewer)).expect("if-newer");
    assert_eq!(read(&a), s.a_txt);
    assert_eq!(read(&tool), b"newer local tool");
    assert!(sum.files_restored >= 1 && sum.files_skipped >= 1, "{sum:?}");

    // Same size and mtime: the content is trusted, the metadata restored.
    let mut same_size = s.a_txt.clone();
    same_size[0] ^= 1;
    std::fs::write(&a, &same_size).expect("write");
    std::fs::set_permissions(&a, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let m = crate::restore::fixture::time(crate::restore::fixture::MTIME);
    filetime::set_file_mtime(
        &a,
        FileTime::from_unix_time(m.timestamp(), m.timestamp_subsec_nanos()),
    )
    .expect("mtime");
    let sum = run(&s, "/", &with_policy(&t, Overwrite::IfChanged)).expect("if-changed");
    assert_eq!(read(&a), same_size, "size and mtime match: not rewritten");
    assert_eq!(lstat(&a).mode() & 0o7777, 0o640, "metadata restored");
    assert_eq!(read(&tool), s.tool, "tool differs in size and mtime");
    assert!(sum.files_unchanged >= 1, "{sum:?}");

    let sum = run(&s, "/", &with_policy(&t, Overwrite::Always)).expect("always");
    assert_eq!(read(&a), s.a_txt);
    assert_eq!(sum.files_restored, 5);
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);
}

#[test]
fn existing_links_are_replaced_not_followed() {
    let s = sample();
    let t = s.vault.scratch("out");
    let outside = s.vault.scratch("outside");
    std::fs::create_dir_all(outside.join("d")).expect("mkdir");
    std::fs::write(outside.join("d/a.txt"), b"precious").expect("write");
    std::fs::write(outside.join("f"), b"precious f").expect("write");
    std::fs::write(outside.join("h"), b"precious h").expect("write");
    std::fs::create_dir_all(t.join("bin")).expect("mkdir");
    std::os::unix::fs::symlink(outside.join("d"), t.join("docs")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("f"), t.join("sparse")).expect("symlink");
    std::fs::hard_link(outside.join("h"), t.join("bin/tool")).expect("hard link");

    // `never` leaves them all alone, and goes nowhere through them.
    let sum = run(&s, "/", &with_policy(&t, Overwrite::Never)).expect("never");
    assert!(lstat(t.join("docs")).file_type().is_symlink());
    assert!(
        sum.warnings.iter().any(|w| w.starts_with("/docs")),
        "{:?}",
        sum.warnings
    );

    let sum = run(&s, "/", &opts(&t)).expect("always");
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);
    assert!(lstat(t.join("docs")).is_dir());
    assert_eq!(read(t.join("docs/a.txt")), s.a_txt);
    assert_eq!(read(t.join("sparse")), s.sparse);
    assert_eq!(read(t.join("bin/tool")), s.tool);
    assert_eq!(read(outside.join("d/a.txt")), b"precious");
    assert_eq!(read(outside.join("f")), b"precious f");
    assert_eq!(read(outside.join("h")), b"precious h");
    assert_eq!(lstat(outside.join("h")).nlink(), 1);
}
