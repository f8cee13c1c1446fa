//! Restore tests against real vaults in temporary directories, grouped by
//! concern; the helpers here build the sample snapshot and run restores.

mod damage;
mod metadata;
mod selection;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fixture::{Vault, base, dir, file, noise, symlink};
use super::*;
use crate::id::TreeId;
use crate::snapshot::NodeType;
use crate::snapshot::mode::{
    MODE_CHAR_DEVICE, MODE_DEVICE, MODE_DIR, MODE_NAMED_PIPE, MODE_SETUID, MODE_STICKY,
};
use crate::snapshot::node::ExtendedAttribute;
use crate::snapshot::walk::{resolve_path, root_node};

/// Small segments, so that even test files are written by several workers.
const SEGMENT: u64 = 100_000;

/// The sample's file contents, by snapshot path.
struct Sample {
    vault: Vault,
    root: TreeId,
    a_txt: Vec<u8>,
    sparse: Vec<u8>,
    tool: Vec<u8>,
}

/// ```text
/// /bin/tool           setuid, owned by 1234:5678
/// /docs/a.txt         300 000 bytes in 64 KiB blobs, 0640, an xattr
/// /docs/empty         no blobs
/// /docs/hard2         one inode with /hard1 (42 on device 7)
/// /fifo  /null        a fifo and a character device (1, 3)
/// /hard1
/// /link -> docs/a.txt
/// /sparse             2 MiB of zeros around one byte, 256 KiB blobs
/// /tmp/               sticky, 1777
/// ```
fn sample() -> Sample {
    let vault = Vault::new();
    let s = vault.saver();
    let a_txt = noise(300_000, 1);
    let tool = noise(5000, 2);
    let mut sparse = vec![0u8; 2 << 20];
    sparse[1 << 20] = b'x';

    let mut a = file(&s, "a.txt", &a_txt, 64 << 10);
    a.mode = 0o640;
    a.extended_attributes = vec![ExtendedAttribute {
        name: "user.note".into(),
        value: b"kept".to_vec(),
    }];
    let hard = |name: &str| {
        let mut h = file(&s, name, b"shared inode", 100);
        (h.links, h.inode, h.device_id) = (2, 42, 7);
        h
    };
    let docs = dir(
        &s,
        "docs",
        vec![a, file(&s, "empty", b"", 10), hard("hard2")],
    );
    let mut t = file(&s, "tool", &tool, 4096);
    (t.mode, t.uid, t.gid) = (MODE_SETUID | 0o755, 1234, 5678);
    let bin = dir(&s, "bin", vec![t]);
    let mut tmp = dir(&s, "tmp", vec![]);
    tmp.mode = MODE_DIR | MODE_STICKY | 0o777;
    let fifo = base("fifo", NodeType::Fifo, MODE_NAMED_PIPE | 0o620);
    let mut null = base(
        "null",
        NodeType::Chardev,
        MODE_DEVICE | MODE_CHAR_DEVICE | 0o666,
    );
    null.device = nix::sys::stat::makedev(1, 3);

    let children = vec![
        bin,
        docs,
        fifo,
        null,
        hard("hard1"),
        symlink("link", "docs/a.txt"),
        file(&s, "sparse", &sparse, 256 << 10),
        tmp,
    ];
    let root = vault.commit(s, children);
    Sample {
        vault,
        root,
        a_txt,
        sparse,
        tool,
    }
}

/// Counts what the progress sink is told.
#[derive(Default)]
struct Counting {
    total_bytes: AtomicU64,
    total_files: AtomicU64,
    bytes: AtomicU64,
    files: AtomicU64,
    errors: AtomicU64,
}

impl RestoreProgress for Counting {
    fn totals(&self, files: u64, bytes: u64) {
        self.total_files.store(files, Ordering::Relaxed);
        self.total_bytes.store(bytes, Ordering::Relaxed);
    }
    fn bytes_done(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn file_done(&self, _path: &str) {
        self.files.fetch_add(1, Ordering::Relaxed);
    }
    fn error(&self, _message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Restores `path` of the sample's snapshot (from a freshly opened vault).
fn run(s: &Sample, path: &str, opts: &RestoreOptions) -> Result<RestoreSummary> {
    run_with(s, path, opts, &NoRestoreProgress)
}

fn run_with(
    s: &Sample,
    path: &str,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreSummary> {
    let repo = s.vault.reopen();
    let node = resolve_path(&repo, &s.root, path)?;
    restore_with(&repo, &node, opts, progress, SEGMENT)
}

fn opts(target: &Path) -> RestoreOptions {
    RestoreOptions::new(target)
}

fn read(p: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

fn lstat(p: impl AsRef<Path>) -> std::fs::Metadata {
    std::fs::symlink_metadata(p.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

/// Every entry below `dir`, as sorted relative paths.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if lstat(&p).is_dir() {
                stack.push(p.clone());
            }
            let rel = p.strip_prefix(dir).map(|r| r.display().to_string());
            out.push(rel.unwrap_or_default());
        }
    }
    out.sort();
    out
}

#[test]
fn restores_contents_of_the_whole_snapshot() {
    let s = sample();
    let t = s.vault.scratch("out");
    let progress = Counting::default();
    let sum = run_with(&s, "/", &opts(&t), &progress).expect("restore");
    assert!(sum.errors.is_empty(), "{:?}", sum.errors);

    assert_eq!(read(t.join("docs/a.txt")), s.a_txt);
    assert_eq!(read(t.join("bin/tool")), s.tool);
    assert_eq!(read(t.join("sparse")), s.sparse);
    assert!(read(t.join("docs/empty")).is_empty());
    assert_eq!(read(t.join("hard1")), b"shared inode");
    let link = std::fs::read_link(t.join("link")).expect("readlink");
    assert_eq!(link, Path::new("docs/a.txt"));

    // Holes: 2 MiB of zeros take (almost) no space.
    let allocated = lstat(t.join("sparse")).blocks() * 512;
    assert!(allocated <= 16 << 10, "{allocated} bytes allocated");
    assert_eq!(lstat(t.join("sparse")).len(), 2 << 20);

    // Hard links share the inode.
    let (h1, h2) = (lstat(t.join("hard1")), lstat(t.join("docs/hard2")));
    assert_eq!((h1.ino(), h1.nlink()), (h2.ino(), 2));

    assert_eq!(
        (
            sum.files_restored,
            sum.hardlinks_restored,
            sum.symlinks_restored
        ),
        (5, 1, 1),
        "{sum:?}"
    );
    assert_eq!((sum.dirs_restored, sum.files_skipped), (3, 0), "{sum:?}");
    let want_bytes = (s.a_txt.len() + s.tool.len() + s.sparse.len() + 12) as u64;
    assert_eq!(sum.bytes_written, want_bytes);
    assert_eq!(progress.total_bytes.load(Ordering::Relaxed), want_bytes);
    assert_eq!(progress.bytes.load(Ordering::Relaxed), want_bytes);
    assert_eq!(progress.total_files.load(Ordering::Relaxed), 5);
    assert_eq!(progress.files.load(Ordering::Relaxed), 5);
}

#[test]
fn dry_run_verifies_and_writes_nothing() {
    let s = sample();
    let t = s.vault.scratch("out");
    let mut o = opts(&t);
    o.dry_run = true;
    let progress = Counting::default();
    let sum = run_with(&s, "/", &o, &progress).expect("dry run");
    assert!(!t.exists(), "a dry run must not create the target");
    assert!(sum.dry_run && sum.errors.is_empty(), "{sum:?}");
    assert_eq!((sum.files_restored, sum.dirs_restored), (5, 3));
    assert_eq!(
        (
            sum.symlinks_restored,
            sum.hardlinks_restored,
            sum.specials_restored
        ),
        (1, 1, 2)
    );
    let total = progress.total_bytes.load(Ordering::Relaxed);
    assert_eq!(
        progress.bytes.load(Ordering::Relaxed),
        total,
        "every blob was read"
    );
    assert_eq!(sum.bytes_written, total);

    // Into an existing, non-empty target, a dry run changes nothing either.
    std::fs::create_dir_all(t.join("docs")).expect("mkdir");
    std::fs::write(t.join("docs/a.txt"), b"old").expect("write");
    let sum = run(&s, "/", &o).expect("dry run");
    assert_eq!(read(t.join("docs/a.txt")), b"old");
    assert_eq!(listing(&t), ["docs", "docs/a.txt"]);
    assert_eq!(sum.files_restored, 5);
}

#[test]
fn restores_a_single_file_or_a_subdirectory() {
    let s = sample();
    let t = s.vault.scratch("one");
    let sum = run(&s, "/docs/a.txt", &opts(&t)).expect("file");
    assert_eq!(listing(&t), ["a.txt"]);
    assert_eq!(read(t.join("a.txt")), s.a_txt);
    assert_eq!(sum.files_restored, 1);

    let t = s.vault.scratch("sub");
    let sum = run(&s, "/docs", &opts(&t)).expect("dir");
    assert_eq!(listing(&t), ["a.txt", "empty", "hard2"]);
    // Its hard-link partner is outside: it is restored as a plain file.
    assert_eq!(read(t.join("hard2")), b"shared inode");
    assert_eq!((sum.files_restored, sum.hardlinks_restored), (3, 0));

    let t = s.vault.scratch("link");
    run(&s, "/link", &opts(&t)).expect("symlink");
    assert_eq!(
        std::fs::read_link(t.join("link")).expect("readlink"),
        Path::new("docs/a.txt")
    );

    let target_file = s.vault.scratch("plain");
    std::fs::write(&target_file, b"x").expect("write");
    let e = run(&s, "/", &opts(&target_file)).expect_err("target is a file");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
