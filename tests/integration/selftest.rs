//! Tests of the harness itself: the fixture holds what it promises and is
//! reproducible, and the comparison notices each kind of difference (a
//! comparison that cannot fail would make every interop test worthless).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use filetime::FileTime;

use crate::compare::{self, Checks, Kind};
use crate::fixture::{self, Sizes, XATTR_NAME};

#[test]
fn fixture_has_every_kind_of_entry_and_is_reproducible() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx = fixture::build(&tmp.path().join("a"), 5, Sizes::SMALL);
    let m = compare::scan(&fx.root);
    let kinds = |k: Kind| m.entries.values().filter(|e| e.kind == k).count();
    assert!(kinds(Kind::File) > 60, "{} files", kinds(Kind::File));
    assert_eq!(kinds(Kind::Symlink), 4);
    assert!(
        m.entries
            .values()
            .any(|e| e.kind == Kind::File && e.size == 0)
    );
    assert_eq!(m.link_groups().len(), 1, "{:?}", m.link_groups());
    assert_eq!(m.link_groups().iter().next().map(Vec::len), Some(3));
    let get = |p: &str| {
        m.entries
            .get(Path::new(p))
            .unwrap_or_else(|| panic!("no {p}"))
    };
    assert_eq!(get("modes/run.sh").perm, 0o755);
    assert_eq!(get("modes/secret").perm, 0o600);
    assert_eq!(get("empty-dir").kind, Kind::Dir);
    assert_eq!(get("unicode/emoji 🎉.txt").kind, Kind::File);
    assert_eq!(
        get("links/dangling").target.as_deref(),
        Some(&b"does/not/exist"[..])
    );
    if fx.xattrs {
        assert!(get("xattr/tagged.txt").xattrs.contains_key(XATTR_NAME));
    }
    if fx.chowned {
        assert_eq!(
            (get("owned/by-1234").uid, get("owned/by-1234").gid),
            (1234, 5678)
        );
    }
    assert!(
        m.entries.values().all(|e| e.mtime.0 < 1_800_000_000),
        "an entry kept its creation time"
    );

    // Same seed, same tree (but for the absolute symlink, which follows the root).
    let fx2 = fixture::build(&tmp.path().join("b"), 5, Sizes::SMALL);
    let mut m2 = compare::scan(&fx2.root);
    let abs = Path::new("links/absolute");
    m2.entries.insert(abs.into(), m.entries[abs].clone());
    let d = compare::diff(&m, &m2, Checks::ALL);
    assert!(d.is_empty(), "two builds with one seed differ: {d:#?}");
}

#[test]
fn comparison_reports_every_difference() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fx = fixture::build(&tmp.path().join("src"), 6, Sizes::SMALL);
    let root = &fx.root;
    let before = compare::scan(root);
    assert!(compare::diff(&before, &compare::scan(root), Checks::ALL).is_empty());

    // Same size, other content.
    let p = root.join("small/d2/e0/f0002.dat");
    let mut data = fs::read(&p).expect("read");
    data[0] ^= 1;
    fs::write(&p, data).expect("write");
    // Permissions, mtime, symlink target, a removed and an added entry.
    fs::set_permissions(root.join("modes/run.sh"), fs::Permissions::from_mode(0o700))
        .expect("chmod");
    filetime::set_symlink_file_times(
        root.join("empty-file"),
        FileTime::zero(),
        FileTime::from_unix_time(1, 5),
    )
    .expect("utimes");
    fs::remove_file(root.join("links/relative")).expect("rm");
    std::os::unix::fs::symlink("elsewhere", root.join("links/relative")).expect("symlink");
    fs::remove_dir(root.join("empty-dir")).expect("rmdir");
    fs::write(root.join("extra"), b"x").expect("write extra");
    // A hardlink group broken into copies.
    fs::remove_file(root.join("hard/b")).expect("rm");
    fs::copy(root.join("hard/a"), root.join("hard/b")).expect("copy");
    if fx.xattrs {
        xattr::remove(root.join("xattr/tagged.txt"), XATTR_NAME).expect("removexattr");
    }

    let d = compare::diff(&before, &compare::scan(root), Checks::ALL);
    let expect = [
        "\"small/d2/e0/f0002.dat\": content differs",
        "\"modes/run.sh\": permissions 0755 became 0700",
        "\"empty-file\": mtime",
        "\"links/relative\": symlink target",
        "\"empty-dir\": missing",
        "\"extra\": unexpected",
        "hardlink group",
    ];
    for want in expect {
        assert!(
            d.iter().any(|l| l.contains(want)),
            "no difference mentions {want:?}: {d:#?}"
        );
    }
    if fx.xattrs {
        assert!(d.iter().any(|l| l.contains("user xattrs")), "{d:#?}");
    }
    // Checks switched off are not reported.
    let quiet = Checks {
        perm: false,
        mtime: false,
        owner: false,
        xattrs: false,
        hardlinks: false,
    };
    let d2 = compare::diff(&before, &compare::scan(root), quiet);
    assert!(
        d2.iter()
            .all(|l| !l.contains("permissions") && !l.contains("mtime")),
        "{d2:#?}"
    );
    assert!(d2.iter().any(|l| l.contains("content differs")), "{d2:#?}");
}
