//! A generated source tree holding every kind of entry a backup must keep:
//! large random and compressible files (several chunks each), hundreds of
//! small files in nested directories, empty files and an empty directory,
//! symlinks (relative, absolute, dangling, to a directory), a hardlink
//! group, unicode names, unusual permission bits, a user xattr, another
//! owner (when running as root) and varied nanosecond mtimes.
//!
//! Everything is derived from a seed, so two builds with the same seed hold
//! the same bytes and names (the absolute symlink target follows the root).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// The user xattr set on `xattr/tagged.txt`.
pub const XATTR_NAME: &str = "user.vaultfs.test";
/// Its value (binary on purpose).
pub const XATTR_VALUE: &[u8] = b"value\0with\xffbinary";

/// What a fixture could and could not create on this filesystem.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The source tree's root directory.
    pub root: PathBuf,
    /// Whether the filesystem accepted a user xattr.
    pub xattrs: bool,
    /// Whether one file was given another owner (needs root).
    pub chowned: bool,
}

/// Sizes of a fixture; [`Sizes::FULL`] is the interop default.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Size of the random file (several chunks of 512 KiB..8 MiB).
    pub random: usize,
    /// Size of the compressible text file.
    pub text: usize,
    /// Number of small files (0..=4096 bytes each).
    pub small_files: usize,
}

impl Sizes {
    /// About 40 MiB in 450 files.
    pub const FULL: Sizes = Sizes {
        random: 24 << 20,
        text: 6 << 20,
        small_files: 400,
    };
    /// A few MiB, for tests that do not need several chunks per file.
    pub const SMALL: Sizes = Sizes {
        random: 3 << 20,
        text: 1 << 20,
        small_files: 60,
    };
}

/// Seeded random bytes.
pub fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// Seeded, compressible text made of words.
pub fn text_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "vault",
        "snapshot",
        "chunk",
        "pack",
        "index",
        "tree",
        "blob",
        "restore",
        "backup",
        "the",
        "of",
        "and",
        "a",
        "to",
        "in",
        "is",
        "deduplicated",
        "encrypted",
        "compressed",
        "polynomial",
        "filesystem",
        "partition",
        "sector",
        "cluster",
        "inode",
        "extent",
    ];
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let w = WORDS[rng.gen_range(0..WORDS.len())];
        out.extend_from_slice(w.as_bytes());
        out.push(if rng.gen_range(0..12) == 0 {
            b'\n'
        } else {
            b' '
        });
    }
    out.truncate(len);
    out
}

fn write(path: &Path, data: &[u8]) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    }
    let mut f = fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(data)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn mkdir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}

fn link(target: impl AsRef<Path>, at: &Path) {
    symlink(target.as_ref(), at).unwrap_or_else(|e| panic!("symlink {}: {e}", at.display()));
}

/// Builds the fixture below `root` (which must not exist yet).
pub fn build(root: &Path, seed: u64, sizes: Sizes) -> Fixture {
    let mut rng = StdRng::seed_from_u64(seed);
    mkdir(root);

    // Large files: several chunks each; two files share their content.
    write(
        &root.join("big/random.bin"),
        &random_bytes(&mut rng, sizes.random),
    );
    write(
        &root.join("big/text.txt"),
        &text_bytes(&mut rng, sizes.text),
    );
    let dup = random_bytes(&mut rng, 700 << 10);
    write(&root.join("big/dup-a.bin"), &dup);
    write(&root.join("big/dup-b.bin"), &dup);

    // Many small files in nested directories, sizes 0..=4096.
    for i in 0..sizes.small_files {
        let path = root.join(format!("small/d{}/e{}/f{i:04}.dat", i % 10, (i / 10) % 4));
        let len = match i % 50 {
            0 => 0,
            1 => 4096,
            _ => rng.gen_range(1..=4096),
        };
        let data = if i % 2 == 0 {
            random_bytes(&mut rng, len)
        } else {
            text_bytes(&mut rng, len)
        };
        write(&path, &data);
    }

    // Empty things.
    write(&root.join("empty-file"), b"");
    write(&root.join("small/d0/also-empty"), b"");
    mkdir(&root.join("empty-dir"));

    // Symlinks.
    mkdir(&root.join("links"));
    link("../small/d0/e0/f0000.dat", &root.join("links/relative"));
    link(root.join("big/text.txt"), &root.join("links/absolute"));
    link("does/not/exist", &root.join("links/dangling"));
    link("../small/d1", &root.join("links/to-dir"));

    // One inode, three names.
    let hard = random_bytes(&mut rng, 10_000);
    write(&root.join("hard/a"), &hard);
    mkdir(&root.join("hard/sub"));
    for name in ["hard/b", "hard/sub/c"] {
        fs::hard_link(root.join("hard/a"), root.join(name))
            .unwrap_or_else(|e| panic!("hard link {name}: {e}"));
    }

    // Unicode names.
    write(&root.join("unicode/café.txt"), "crème brûlée\n".as_bytes());
    write(
        &root.join("unicode/日本語/ファイル.txt"),
        "日本語のテキスト\n".as_bytes(),
    );
    write(&root.join("unicode/emoji 🎉.txt"), "party\n".as_bytes());
    write(&root.join("unicode/with space/a name.txt"), b"spaces\n");

    // Permission bits.
    write(&root.join("modes/run.sh"), b"#!/bin/sh\necho hello\n");
    chmod(&root.join("modes/run.sh"), 0o755);
    write(&root.join("modes/secret"), b"private\n");
    chmod(&root.join("modes/secret"), 0o600);
    write(&root.join("modes/private-dir/inside"), b"x\n");
    chmod(&root.join("modes/private-dir"), 0o750);

    // A user xattr, where the filesystem takes one.
    let tagged = root.join("xattr/tagged.txt");
    write(&tagged, b"has an extended attribute\n");
    let xattrs = match xattr::set(&tagged, XATTR_NAME, XATTR_VALUE) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "NOTE: {} does not take user xattrs ({e}); the fixture has none",
                root.display()
            );
            false
        }
    };

    // Another owner (only root may chown).
    let owned = root.join("owned/by-1234");
    write(&owned, b"owned by uid 1234\n");
    let chowned = nix::unistd::geteuid().is_root() && {
        nix::unistd::chown(
            &owned,
            Some(nix::unistd::Uid::from_raw(1234)),
            Some(nix::unistd::Gid::from_raw(5678)),
        )
        .unwrap_or_else(|e| panic!("chown {}: {e}", owned.display()));
        true
    };

    set_mtimes(root, &mut rng);
    Fixture {
        root: root.to_path_buf(),
        xattrs,
        chowned,
    }
}

/// Gives every entry below `root` (and `root`) a seeded mtime with a
/// nanosecond part; directories last, deepest first, so creating their
/// children does not overwrite it.
pub fn set_mtimes(root: &Path, rng: &mut StdRng) {
    let mut entries = Vec::new();
    collect(root, &mut entries);
    entries.sort_by_key(|(p, is_dir)| (*is_dir, std::cmp::Reverse(p.components().count())));
    for (path, _) in entries {
        let t = FileTime::from_unix_time(
            1_400_000_000 + rng.gen_range(0..300_000_000),
            rng.gen_range(0..1_000_000_000),
        );
        filetime::set_symlink_file_times(&path, t, t)
            .unwrap_or_else(|e| panic!("set times of {}: {e}", path.display()));
    }
}

/// Every path below and including `root`, with whether it is a directory
/// (symlinks are not followed).
fn collect(root: &Path, out: &mut Vec<(PathBuf, bool)>) {
    let md = fs::symlink_metadata(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    out.push((root.to_path_buf(), md.is_dir()));
    if md.is_dir() {
        let rd = fs::read_dir(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        for entry in rd {
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", root.display()));
            collect(&entry.path(), out);
        }
    }
}

/// Changes the tree the way a day of work would: one small file rewritten,
/// the text file appended to, one file removed, one added, one chmod.
/// Everything else keeps its metadata, so a backup with a parent can take
/// it from the parent without reading it.
pub fn mutate(fx: &Fixture, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let root = &fx.root;
    write(
        &root.join("small/d3/e0/f0003.dat"),
        &random_bytes(&mut rng, 3000),
    );
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(root.join("big/text.txt"))
        .expect("open big/text.txt for append");
    f.write_all(&text_bytes(&mut rng, 100_000))
        .expect("append to big/text.txt");
    drop(f);
    fs::remove_file(root.join("small/d5/e0/f0005.dat")).expect("remove small/d5/e0/f0005.dat");
    write(
        &root.join("new-dir/new-file.txt"),
        b"added after the first backup\n",
    );
    chmod(&root.join("modes/secret"), 0o640);
}
