//! Modes, owners, times, xattrs and special files of restored entries.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;
use crate::restore::fixture::{MTIME, time};

fn mtime_of(m: &std::fs::Metadata) -> (i64, i64) {
    (m.mtime(), m.mtime_nsec())
}

fn want(t: &str) -> (i64, i64) {
    let t = time(t);
    (t.timestamp(), i64::from(t.timestamp_subsec_nanos()))
}

#[test]
fn modes_owners_and_special_files() {
    let s = sample();
    let t = s.vault.scratch("out");
    let sum = run(&s, "/", &opts(&t)).expect("restore");
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);

    let perm = |p: &str| lstat(t.join(p)).mode() & 0o7777;
    assert_eq!(perm("docs/a.txt"), 0o640);
    assert_eq!(perm("docs"), 0o755);
    assert_eq!(perm("tmp"), 0o1777, "sticky bit");
    assert_eq!(perm("bin/tool"), 0o4755, "setuid survives the chown");
    let tool = lstat(t.join("bin/tool"));
    assert_eq!((tool.uid(), tool.gid()), (1234, 5678));
    assert_eq!(
        (
            lstat(t.join("docs/a.txt")).uid(),
            lstat(t.join("docs")).gid()
        ),
        (0, 0)
    );

    let fifo = lstat(t.join("fifo"));
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    // Creating a device needs CAP_MKNOD; without it there must be a warning.
    match std::fs::symlink_metadata(t.join("null")) {
        Ok(m) => {
            assert!(m.file_type().is_char_device());
            assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
            assert_eq!(sum.specials_restored, 2);
        }
        Err(_) => assert!(
            sum.warnings.iter().any(|w| w.starts_with("/null")),
            "{:?}",
            sum.warnings
        ),
    }
}

#[test]
fn times_are_restored_after_contents() {
    let s = sample();
    let t = s.vault.scratch("out");
    run(&s, "/", &opts(&t)).expect("restore");
    for p in ["docs/a.txt", "docs/empty", "bin/tool", "sparse", "hard1"] {
        assert_eq!(mtime_of(&lstat(t.join(p))), want(MTIME), "{p}");
    }
    let a = lstat(t.join("docs/a.txt"));
    assert_eq!((a.atime(), a.atime_nsec()), want("2022-01-01T00:00:00.5Z"));
    // Directories get their mtime after their files, links and subdirs.
    for p in ["docs", "bin", "tmp"] {
        assert_eq!(mtime_of(&lstat(t.join(p))), want(MTIME), "{p}");
    }
    // Symlinks get their own times, not their targets'.
    let l = lstat(t.join("link"));
    assert!(l.file_type().is_symlink());
    assert_eq!(mtime_of(&l), want(MTIME));
}

#[test]
fn extended_attributes() {
    let s = sample();
    let t = s.vault.scratch("out");
    // Whether this filesystem takes user xattrs at all decides what to expect.
    let probe = s.vault.scratch("probe");
    std::fs::write(&probe, b"").expect("probe");
    let supported = xattr::set(&probe, "user.probe", b"1").is_ok();

    let sum = run(&s, "/", &opts(&t)).expect("restore");
    let got = xattr::get(t.join("docs/a.txt"), "user.note").ok().flatten();
    if supported {
        assert_eq!(got.as_deref(), Some(&b"kept"[..]));
        assert!(
            !sum.warnings.iter().any(|w| w.contains("user.note")),
            "{:?}",
            sum.warnings
        );
    } else {
        assert!(
            sum.warnings.iter().any(|w| w.contains("user.note")),
            "{:?}",
            sum.warnings
        );
    }
}
