//! End-to-end tests of `vaultfs mount` through the real kernel FUSE driver:
//! a backed-up tree (files of several sizes, a symlink, a subdirectory, a
//! GPT disk image) read back through `ids/<id>/...` and compared with the
//! source, content and metadata; disk images opened into `.contents/`;
//! writes refused; 16 threads reading at random offsets; a backup made
//! while mounted showing up; damage reported as EIO; SIGTERM, SIGINT and
//! `fusermount3 -u` ending the mount cleanly. `mount --image` on an MBR
//! disk needs no repository.
//!
//! These need `/dev/fuse` and `fusermount3` (CI installs fuse3) and fail
//! loudly without them. A guard unmounts and kills the server even when a
//! test fails. `VAULTFS_MOUNT_STRESS_SECS` sets the length of the
//! concurrent read run (default 5 s).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::Env;
use sha2::{Digest, Sha256};

const EROFS: i32 = 30;
const EIO: i32 = 5;
const ENOENT: i32 = 2;

/// Deterministic, poorly compressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Decompresses `images/NAME` to `out`.
fn unpack(name: &str, out: &Path) -> Vec<u8> {
    let packed = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../images")
            .join(name),
    )
    .expect("read image");
    let raw = zstd::decode_all(packed.as_slice()).expect("zstd");
    fs::write(out, &raw).expect("write image");
    raw
}

fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "the mount tests need /dev/fuse (and fusermount3 from fuse3); CI has both"
    );
}

/// Is something mounted exactly at `path`?
fn is_mounted(path: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    let want = path.to_str().expect("utf-8 path");
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1).is_some_and(|p| p == want))
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// A running `vaultfs mount`; unmounts and kills it when dropped, so a
/// failing test leaves no mount behind.
struct Mounted {
    child: Option<Child>,
    mountpoint: PathBuf,
    log: PathBuf,
}

impl Mounted {
    /// Starts `cmd` (a `vaultfs ... mount ...` command) and waits until
    /// `ready` (relative to the mount point) exists.
    fn start(mut cmd: Command, mountpoint: &Path, log: PathBuf, ready: &str) -> Mounted {
        require_fuse();
        let err = fs::File::create(&log).expect("log file");
        cmd.stdout(Stdio::null()).stderr(err);
        let child = cmd.spawn().expect("starting vaultfs mount");
        let mut m = Mounted {
            child: Some(child),
            mountpoint: mountpoint.to_path_buf(),
            log,
        };
        let probe = mountpoint.join(ready);
        let up = wait_for(Duration::from_secs(60), || {
            if let Some(Ok(Some(status))) = m.child.as_mut().map(Child::try_wait) {
                panic!("vaultfs mount exited early ({status}):\n{}", m.log());
            }
            is_mounted(mountpoint) && probe.exists()
        });
        assert!(up, "mount did not come up in 60 s:\n{}", m.log());
        m
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for the server to exit.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!("vaultfs mount did not exit in {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mountpoint)
                .status();
        }
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(&self.mountpoint)
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `signal` (`TERM`, `INT`) to the server.
fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Names in a directory, sorted.
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// Compares the mounted `got` with the source `want`, recursively: kinds,
/// names, sizes, modes, mtimes, file contents and link targets.
fn compare_tree(want: &Path, got: &Path) {
    let w = fs::symlink_metadata(want).expect("source metadata");
    let g = fs::symlink_metadata(got).unwrap_or_else(|e| panic!("{}: {e}", got.display()));
    let what = got.display();
    assert_eq!(
        w.file_type().is_dir(),
        g.file_type().is_dir(),
        "{what}: kind"
    );
    assert_eq!(
        w.file_type().is_symlink(),
        g.file_type().is_symlink(),
        "{what}: kind"
    );
    assert_eq!(w.mode() & 0o7777, g.mode() & 0o7777, "{what}: mode");
    assert_eq!(w.uid(), g.uid(), "{what}: uid");
    assert_eq!(w.gid(), g.gid(), "{what}: gid");
    if !w.is_dir() {
        assert_eq!(
            w.modified().expect("mtime"),
            g.modified().expect("mtime"),
            "{what}: mtime"
        );
    }
    if w.file_type().is_symlink() {
        assert_eq!(
            fs::read_link(want).expect("link"),
            fs::read_link(got).expect("link"),
            "{what}: target"
        );
        assert_eq!(w.len(), g.len(), "{what}: link size");
    } else if w.is_file() {
        assert_eq!(w.len(), g.len(), "{what}: size");
        let a = fs::read(want).expect("read source");
        let b = fs::read(got).unwrap_or_else(|e| panic!("reading {what}: {e}"));
        assert!(a == b, "{what}: content differs");
    } else if w.is_dir() {
        let src: BTreeSet<String> = names(want);
        let mut mounted = names(got);
        // Disk images get a sibling `.contents/` directory.
        mounted.retain(|n| src.contains(n) || !n.ends_with(".contents"));
        assert_eq!(src, mounted, "{what}: names");
        for n in &src {
            compare_tree(&want.join(n), &got.join(n));
        }
    }
}

/// The source tree: files of several sizes (one over 5 MiB), modes and
/// mtimes set, a symlink, a dangling symlink, nested directories and a GPT
/// disk image. Returns the raw disk bytes.
fn make_source(root: &Path) -> Vec<u8> {
    fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
    fs::create_dir_all(root.join("vm")).expect("mkdir");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("small.txt", b"hello through fuse\n".to_vec()),
        ("sub/mid.bin", noise(300_000, 3)),
        ("sub/deep/c.txt", b"deep\n".to_vec()),
        ("big.bin", noise(6 * 1024 * 1024 + 12345, 9)),
    ];
    for (name, data) in &files {
        fs::write(root.join(name), data).expect("write");
    }
    fs::set_permissions(root.join("small.txt"), fs::Permissions::from_mode(0o640)).expect("chmod");
    fs::set_permissions(root.join("sub/deep"), fs::Permissions::from_mode(0o700)).expect("chmod");
    let f = fs::File::options()
        .write(true)
        .open(root.join("sub/mid.bin"))
        .expect("open");
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::new(1_234_567_890, 123_456_789))
        .expect("set mtime");
    std::os::unix::fs::symlink("small.txt", root.join("link")).expect("symlink");
    std::os::unix::fs::symlink("../nowhere", root.join("sub/dangling")).expect("symlink");
    // The same disk as a streamOptimized VMDK made by qemu-img.
    unpack(
        "containers/vmdk/gpt-streamOptimized.vmdk.zst",
        &root.join("vm/disk.vmdk"),
    );
    // NTFS and FAT32 partitions holding the same tree (images/fsdisk.sh).
    unpack("fs/fsdisk.vmdk.zst", &root.join("vm/fsdisk.vmdk"));
    // ext4, XFS and ext2 partitions holding the same tree (images/linuxdisk.sh).
    unpack("fs/linuxdisk.vmdk.zst", &root.join("vm/linuxdisk.vmdk"));
    unpack("containers/stamped-gpt.raw.zst", &root.join("disk.img"))
}

/// The content of `data/big.bin` in fsdisk.vmdk, as `fsdisk-tree.py`
/// writes it.
fn fsdisk_big() -> Vec<u8> {
    let path = "data/big.bin";
    let size = 3 * 1024 * 1024 + 123;
    let mut out = Vec::with_capacity(size + 64);
    let mut n = 0;
    while out.len() < size {
        out.extend_from_slice(format!("{path} #{n}\n").as_bytes());
        n += 1;
    }
    out.truncate(size);
    out
}

/// The tree `images/fsdisk.sh` wrote into each partition of fsdisk.vmdk.
fn fsdisk_manifest() -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/fsdisk.manifest.json");
    serde_json::from_str(&fs::read_to_string(path).expect("manifest")).expect("json")
}

/// Compares a mounted filesystem directory (`.../fsdisk.vmdk.contents/p1`)
/// with the fsdisk manifest (see [`compare_entries`]), and reads the file
/// inside the floppy image stored in it.
fn compare_manifest(dir: &Path) {
    compare_entries(dir, &fsdisk_manifest());
    let hello = dir.join("floppy.img.contents/fs/HELLO.TXT");
    assert_eq!(
        fs::read(&hello).unwrap_or_else(|err| panic!("{}: {err}", hello.display())),
        b"inside the floppy inside the disk\n"
    );
}

/// Compares a mounted filesystem directory with manifest entries: every
/// entry's kind, size, mtime (whole seconds, or `[secs, nanos]`), content,
/// symlink target, device number and link count (hardlinks are not one
/// inode here: the mount numbers entries by path, docs/vfs.md), and nothing
/// else below it but image `.contents/` directories.
fn compare_entries(dir: &Path, want: &[serde_json::Value]) {
    for e in want {
        let rel = e["path"].as_str().expect("path");
        let p = dir.join(rel);
        let m = fs::symlink_metadata(&p).unwrap_or_else(|err| panic!("{}: {err}", p.display()));
        let ft = m.file_type();
        let kind_ok = match e["type"].as_str().expect("type") {
            "dir" => ft.is_dir(),
            "file" => ft.is_file(),
            "symlink" => ft.is_symlink(),
            "chardev" => ft.is_char_device(),
            "blockdev" => ft.is_block_device(),
            "fifo" => ft.is_fifo(),
            other => panic!("{rel}: type {other}"),
        };
        assert!(kind_ok, "{}: kind {:?}", p.display(), ft);
        match &e["mtime"] {
            serde_json::Value::Array(t) => assert_eq!(
                (m.mtime(), m.mtime_nsec()),
                (t[0].as_i64().expect("secs"), t[1].as_i64().expect("nanos")),
                "{}: mtime",
                p.display()
            ),
            // Whole seconds (fsdisk); FAT keeps no directory times.
            t if !ft.is_dir() => assert_eq!(
                m.mtime(),
                t.as_i64().expect("mtime"),
                "{}: mtime",
                p.display()
            ),
            _ => {}
        }
        if let Some(t) = e["target"].as_str() {
            let got = fs::read_link(&p).expect("readlink");
            assert_eq!(got.to_str(), Some(t), "{}", p.display());
        }
        if let Some(r) = e["rdev"].as_array() {
            let (maj, min) = (r[0].as_u64().expect("major"), r[1].as_u64().expect("minor"));
            assert_eq!(m.rdev(), (maj << 8) | min, "{}: rdev", p.display());
        }
        if let Some(n) = e["nlink"].as_u64() {
            assert_eq!(m.nlink(), n, "{}: nlink", p.display());
        }
        if !ft.is_file() {
            continue;
        }
        assert_eq!(
            m.len(),
            e["size"].as_u64().expect("size"),
            "{}",
            p.display()
        );
        let data = fs::read(&p).unwrap_or_else(|err| panic!("reading {}: {err}", p.display()));
        assert_eq!(
            sha(&data),
            e["sha256"].as_str().expect("sha"),
            "{}",
            p.display()
        );
    }
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for n in names(&d) {
            if n.ends_with(".contents") {
                continue;
            }
            count += 1;
            if fs::symlink_metadata(d.join(&n)).expect("stat").is_dir() {
                stack.push(d.join(&n));
            }
        }
    }
    assert_eq!(count, want.len(), "{}: entries", dir.display());
}

/// `vaultfs mount` of the repository in `env`, started and ready.
fn mount_repo(env: &Env, mnt: &Path) -> Mounted {
    fs::create_dir_all(mnt).expect("mkdir mnt");
    let cmd = env.cmd(&["mount", mnt.to_str().expect("utf-8")]);
    Mounted::start(cmd, mnt, env.dir.path().join("mount.log"), "ids")
}

fn the_only(dir: &Path) -> String {
    let n = names(dir);
    assert_eq!(n.len(), 1, "{}: {n:?}", dir.display());
    n.into_iter().next().expect("one")
}

fn stress_secs() -> u64 {
    std::env::var("VAULTFS_MOUNT_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// 16 threads reading random ranges of the given files (mounted path,
/// expected bytes) for `secs` seconds; every byte must match.
fn stress(files: Vec<(PathBuf, Arc<Vec<u8>>)>, secs: u64) {
    let files = Arc::new(files);
    let until = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1);
                let mut next = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let mut reads = 0u64;
                let mut k = t as usize;
                while Instant::now() < until || reads == 0 {
                    let (path, want) = &files[k % files.len()];
                    k += 1;
                    let f = fs::File::open(path)
                        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                    for _ in 0..8 {
                        let len = want.len() as u64;
                        let off = if len == 0 { 0 } else { next() % len };
                        let n = (next() % (256 * 1024)) as usize;
                        let n = n.min((len - off) as usize);
                        let mut buf = vec![0u8; n];
                        f.read_exact_at(&mut buf, off).unwrap_or_else(|e| {
                            panic!("thread {t}: {} at {off}+{n}: {e}", path.display())
                        });
                        assert!(
                            buf[..] == want[off as usize..off as usize + n],
                            "thread {t}: {} at {off}+{n}: wrong bytes",
                            path.display()
                        );
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    let total: u64 = threads
        .into_iter()
        .map(|h| h.join().expect("reader thread"))
        .sum();
    assert!(total >= 16);
}

#[test]
fn mount_serves_snapshots_read_only_and_follows_new_ones() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    let raw = make_source(&src);
    env.run(&["backup", "--tag", "first", src.to_str().expect("utf-8")])
        .ok();

    let mnt = env.dir.path().join("mnt");
    let mut m = mount_repo(&env, &mnt);
    assert!(
        m.log().contains("mounted at"),
        "the mount announces itself: {}",
        m.log()
    );
    assert_eq!(names(&mnt), set(&["hosts", "ids", "snapshots", "tags"]));
    let id = the_only(&mnt.join("ids"));
    let rel = src.strip_prefix("/").expect("absolute");
    let root = mnt.join("ids").join(&id).join(rel);

    // Content and metadata, everywhere.
    compare_tree(&src, &root);

    // The disk image, opened.
    let contents = root.join("disk.img.contents");
    assert_eq!(
        names(&contents),
        set(&["disk.raw", "p1.raw", "p2.raw", "p3.raw", "partitions.txt"])
    );
    let disk = fs::read(contents.join("disk.raw")).expect("disk.raw");
    assert_eq!(sha(&disk), sha(&raw));
    let p2 = fs::read(contents.join("p2.raw")).expect("p2.raw");
    assert!(p2 == raw[6144 * 512..10240 * 512], "p2.raw bytes");
    assert!(p2.starts_with(b"gpt p2 lba 6144\n"));
    let table = fs::read_to_string(contents.join("partitions.txt")).expect("partitions.txt");
    assert!(table.contains("p2"), "{table}");
    let vmdk = root.join("vm/disk.vmdk.contents");
    assert_eq!(
        sha(&fs::read(vmdk.join("disk.raw")).expect("vmdk disk.raw")),
        sha(&raw)
    );
    assert!(fs::read(vmdk.join("p3.raw")).expect("vmdk p3") == raw[10240 * 512..14336 * 512]);

    // The files inside the NTFS and FAT32 partitions of a VMDK.
    let fsdisk = root.join("vm/fsdisk.vmdk.contents");
    compare_manifest(&fsdisk.join("p1"));
    compare_manifest(&fsdisk.join("p2"));
    // And inside the ext4, XFS and ext2 partitions of another.
    let linuxdisk = root.join("vm/linuxdisk.vmdk.contents");
    for p in ["p1", "p2", "p3"] {
        compare_entries(&linuxdisk.join(p), &common::linuxdisk_manifest());
    }

    // Read-only: creating, writing, removing, chmod.
    let err = |r: std::io::Result<()>| r.expect_err("must fail").raw_os_error();
    assert_eq!(err(fs::write(root.join("new.txt"), b"x")), Some(EROFS));
    assert_eq!(
        err(fs::File::options()
            .write(true)
            .open(root.join("small.txt"))
            .map(drop)),
        Some(EROFS)
    );
    assert_eq!(err(fs::remove_file(root.join("small.txt"))), Some(EROFS));
    assert_eq!(err(fs::create_dir(root.join("d"))), Some(EROFS));
    assert_eq!(
        err(fs::set_permissions(
            root.join("small.txt"),
            fs::Permissions::from_mode(0o777)
        )),
        Some(EROFS)
    );
    // Absent names are ENOENT, a file is no directory.
    assert_eq!(
        fs::metadata(root.join("absent"))
            .expect_err("absent")
            .raw_os_error(),
        Some(ENOENT)
    );
    assert_eq!(
        fs::metadata(root.join("small.txt/x"))
            .expect_err("not a dir")
            .raw_os_error(),
        Some(20)
    );

    // Inode numbers stay put for the mount's life.
    let ino = fs::metadata(root.join("sub/mid.bin")).expect("stat").ino();
    let again = fs::metadata(mnt.join("ids").join(&id).join(rel).join("sub/mid.bin"))
        .expect("stat")
        .ino();
    assert_eq!(ino, again);

    // Concurrent readers at random offsets.
    let load = |p: &str| Arc::new(fs::read(src.join(p)).expect("source"));
    let files = vec![
        (root.join("big.bin"), load("big.bin")),
        (root.join("sub/mid.bin"), load("sub/mid.bin")),
        (root.join("disk.img"), Arc::new(raw.clone())),
        (contents.join("p2.raw"), Arc::new(p2.clone())),
        (contents.join("disk.raw"), Arc::new(raw.clone())),
        (fsdisk.join("p1/data/big.bin"), Arc::new(fsdisk_big())),
        (fsdisk.join("p2/data/big.bin"), Arc::new(fsdisk_big())),
    ];
    stress(files, stress_secs());

    // The time views.
    let latest = mnt.join("snapshots/latest");
    assert!(
        fs::symlink_metadata(&latest)
            .expect("latest")
            .file_type()
            .is_symlink()
    );
    let target = fs::read_link(&latest).expect("readlink");
    assert!(mnt.join("snapshots").join(&target).is_dir(), "{target:?}");
    assert!(latest.join(rel).join("small.txt").is_file());
    assert!(mnt.join("tags/first").join(&target).is_dir());
    assert_eq!(names(&mnt.join("hosts")).len(), 1);

    // A backup made while mounted shows up, readable.
    fs::write(src.join("later.txt"), b"after the mount\n").expect("write");
    env.run(&["backup", "--tag", "x/y", src.to_str().expect("utf-8")])
        .ok();
    let appeared = wait_for(Duration::from_secs(15), || {
        names(&mnt.join("ids")).len() == 2
    });
    assert!(appeared, "second snapshot not listed after 15 s");
    let new_id = names(&mnt.join("ids"))
        .into_iter()
        .find(|n| *n != id)
        .expect("new id");
    let later = mnt.join("ids").join(&new_id).join(rel).join("later.txt");
    assert_eq!(
        fs::read(&later).unwrap_or_else(|e| panic!("{}: {e}\n{}", later.display(), m.log())),
        b"after the mount\n"
    );
    assert!(mnt.join("tags/x_y").is_dir(), "`/` in a tag becomes `_`");
    let newest = fs::read_link(&latest).expect("readlink");
    let later = mnt
        .join("snapshots")
        .join(&newest)
        .join(rel)
        .join("later.txt");
    assert!(
        later.is_file(),
        "latest follows: {target:?} -> {newest:?} ({:?}), snapshots/: {:?}\n{}",
        fs::metadata(&later).err(),
        names(&mnt.join("snapshots")),
        m.log()
    );

    // SIGTERM: unmounted, exit status 0.
    signal(m.pid(), "TERM");
    let status = m.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status\n{}", m.log());
    assert!(!is_mounted(&mnt), "still mounted after SIGTERM");
}

#[test]
fn mount_image_serves_a_local_disk_without_a_repository() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("mbr.img");
    let raw = unpack("containers/stamped-mbr.raw.zst", &img);
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).expect("mkdir");
    let mut cmd = common::vaultfs();
    cmd.args(["mount", "--image"]).arg(&img).arg(&mnt);
    let mut m = Mounted::start(cmd, &mnt, dir.path().join("mount.log"), "disk.raw");
    assert_eq!(
        names(&mnt),
        set(&[
            "disk.raw",
            "p1.raw",
            "p2.raw",
            "p5.raw",
            "p6.raw",
            "partitions.txt"
        ])
    );
    assert_eq!(
        sha(&fs::read(mnt.join("disk.raw")).expect("disk")),
        sha(&raw)
    );
    let p5 = fs::read(mnt.join("p5.raw")).expect("p5");
    assert!(p5 == raw[8192 * 512..10240 * 512], "p5.raw bytes");
    let meta = fs::metadata(mnt.join("p5.raw")).expect("stat");
    assert_eq!(meta.mode() & 0o7777, 0o444);
    assert_eq!(
        fs::write(mnt.join("p5.raw"), b"x")
            .expect_err("read-only")
            .raw_os_error(),
        Some(EROFS)
    );

    // Unmounted from outside: the server notices and exits 0.
    let ok = Command::new("fusermount3")
        .arg("-u")
        .arg(&mnt)
        .status()
        .expect("fusermount3")
        .success();
    assert!(ok, "fusermount3 -u");
    let status = m.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit status\n{}", m.log());
    assert!(!is_mounted(&mnt));
}

#[test]
fn mount_image_serves_the_files_inside_partitions() {
    require_fuse();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fsdisk.vmdk");
    unpack("fs/fsdisk.vmdk.zst", &img);
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).expect("mkdir");
    let mut cmd = common::vaultfs();
    cmd.args(["mount", "--image"]).arg(&img).arg(&mnt);
    let _m = Mounted::start(cmd, &mnt, dir.path().join("mount.log"), "disk.raw");
    assert_eq!(
        names(&mnt),
        set(&["disk.raw", "p1", "p1.raw", "p2", "p2.raw", "partitions.txt"])
    );
    compare_manifest(&mnt.join("p1"));
    compare_manifest(&mnt.join("p2"));
    assert_eq!(
        fs::write(mnt.join("p1/readme.txt"), b"x")
            .expect_err("read-only")
            .raw_os_error(),
        Some(EROFS)
    );
}

/// Mounts the crashed ext4 image (`images/ext-journal.sh`) with `flags`
/// before the subcommand, lists its volume, and returns whether each file
/// the kernel sees only after journal recovery is there, and the mount's
/// stderr.
fn mount_dirty(flags: &[&str]) -> (Vec<bool>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("dirty.img");
    unpack("fs/ext4-dirty.img.zst", &img);
    let manifest: serde_json::Value = serde_json::from_slice(&unpack(
        "fs/ext4-dirty.manifest.json.zst",
        &dir.path().join("m.json"),
    ))
    .expect("json");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).expect("mkdir");
    let mut cmd = common::vaultfs();
    cmd.args(flags)
        .args(["mount", "--image"])
        .arg(&img)
        .arg(&mnt);
    let m = Mounted::start(cmd, &mnt, dir.path().join("mount.log"), "fs");
    assert!(!names(&mnt.join("fs")).is_empty());
    let absent = manifest["absent_on_disk"]
        .as_array()
        .expect("absent_on_disk");
    assert!(!absent.is_empty());
    let there = absent
        .iter()
        .map(|p| mnt.join("fs").join(p.as_str().expect("path")).exists())
        .collect();
    (there, m.log())
}

#[test]
fn mount_reports_a_replayed_journal_and_the_stale_view() {
    require_fuse();
    let (there, log) = mount_dirty(&[]);
    assert!(there.iter().all(|&t| t), "{there:?}");
    assert!(
        log.contains("/fs: warning: journal replayed in memory"),
        "{log}"
    );
    let (there, log) = mount_dirty(&["--no-journal-replay"]);
    assert!(there.iter().all(|&t| !t), "{there:?}");
    assert!(
        log.contains("/fs: warning: ") && log.contains("the view may be stale"),
        "{log}"
    );
}

#[test]
fn mount_image_serves_the_files_inside_ext4_xfs_and_ext2_partitions() {
    require_fuse();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("linuxdisk.vmdk");
    unpack("fs/linuxdisk.vmdk.zst", &img);
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).expect("mkdir");
    let mut cmd = common::vaultfs();
    cmd.args(["mount", "--image"]).arg(&img).arg(&mnt);
    let _m = Mounted::start(cmd, &mnt, dir.path().join("mount.log"), "disk.raw");
    assert_eq!(
        names(&mnt),
        set(&[
            "disk.raw",
            "p1",
            "p1.raw",
            "p2",
            "p2.raw",
            "p3",
            "p3.raw",
            "partitions.txt"
        ])
    );
    let want = common::linuxdisk_manifest();
    for p in ["p1", "p2", "p3"] {
        compare_entries(&mnt.join(p), &want);
    }
    // Reads at random offsets of the 3 MiB file, the same on each.
    let big = fs::read(mnt.join("p1/data/big.bin")).expect("big.bin");
    let files = ["p1", "p2", "p3"]
        .iter()
        .map(|p| (mnt.join(p).join("data/big.bin"), Arc::new(big.clone())))
        .collect();
    stress(files, 2);
    assert_eq!(
        fs::write(mnt.join("p2/sizes/s1"), b"x")
            .expect_err("read-only")
            .raw_os_error(),
        Some(EROFS)
    );
}

#[test]
fn damage_is_eio_never_enoent() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(&src).expect("mkdir");
    fs::write(src.join("victim.bin"), noise(400_000, 5)).expect("write");
    env.run(&["backup", src.to_str().expect("utf-8")]).ok();
    // Damage every pack in the middle: data blobs fail their MAC.
    let data = env.repo.join("data");
    let mut damaged = 0;
    for sub in fs::read_dir(&data).expect("data") {
        for pack in fs::read_dir(sub.expect("dir").path()).expect("dir") {
            let path = pack.expect("pack").path();
            let mut bytes = fs::read(&path).expect("pack");
            let mid = bytes.len() / 3;
            for b in &mut bytes[mid..mid + 64] {
                *b ^= 0x5a;
            }
            let mut perm = fs::metadata(&path).expect("stat").permissions();
            perm.set_mode(0o644);
            fs::set_permissions(&path, perm).expect("chmod");
            fs::write(&path, bytes).expect("damage");
            damaged += 1;
        }
    }
    assert!(damaged > 0);

    let mnt = env.dir.path().join("mnt");
    let mut m = mount_repo(&env, &mnt);
    let id = the_only(&mnt.join("ids"));
    let rel = src.strip_prefix("/").expect("absolute");
    // Whichever step meets the damage first (a tree or the data), it says
    // EIO, not "no such file".
    let victim = mnt.join("ids").join(&id).join(rel).join("victim.bin");
    let e = fs::read(&victim).expect_err("damaged data must not read");
    assert_eq!(e.raw_os_error(), Some(EIO), "{e}");
    assert_ne!(e.kind(), ErrorKind::NotFound);
    // The server says what broke.
    assert!(
        wait_for(Duration::from_secs(5), || m.log().contains("vaultfs: ")),
        "no damage report on stderr: {}",
        m.log()
    );
    // Ctrl-C: the same clean end.
    signal(m.pid(), "INT");
    assert_eq!(m.wait_exit(Duration::from_secs(20)).code(), Some(0));
    assert!(!is_mounted(&mnt), "still mounted after SIGINT");
}

/// `getxattr(2)` of `name` on `path` with a buffer of `size` bytes (0: a
/// size query): the result, the errno when it is -1, and the buffer.
#[allow(unsafe_code)]
fn raw_getxattr(
    path: &std::ffi::CStr,
    name: &std::ffi::CStr,
    size: usize,
) -> (isize, Option<i32>, Vec<u8>) {
    let mut buf = vec![0u8; size];
    let ptr = if size == 0 {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr().cast()
    };
    // SAFETY: NUL-terminated strings and a buffer of `size` bytes (or
    // null with size 0, the size query).
    let r = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), ptr, size) };
    let errno = (r < 0).then(|| std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    (r, errno, buf)
}

/// `listxattr(2)` of `path` asked for its size.
#[allow(unsafe_code)]
fn raw_listxattr_size(path: &std::ffi::CStr) -> isize {
    // SAFETY: a NUL-terminated path; null with size 0 is the size query.
    unsafe { libc::listxattr(path.as_ptr(), std::ptr::null_mut(), 0) }
}

/// `getfattr -d -m - -e hex` of `path`: name -> hex value (without `0x`).
fn getfattr(path: &Path) -> BTreeMap<String, String> {
    let out = Command::new("getfattr")
        .args(["-d", "-m", "-", "--absolute-names", "-e", "hex"])
        .arg(path)
        .output()
        .expect("getfattr (Debian package attr) must be installed");
    assert!(out.status.success(), "getfattr {path:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_start_matches("0x").to_string()))
        .collect()
}

#[test]
fn mount_serves_extended_attributes() {
    require_fuse();
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("ext4.img");
    unpack("fs/ext4.img.zst", &img);
    let packed =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/ext4.manifest.json.zst"))
            .expect("manifest");
    let m: serde_json::Value =
        serde_json::from_slice(&zstd::decode_all(packed.as_slice()).expect("zstd")).expect("json");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).expect("mkdir");
    let mut cmd = common::vaultfs();
    cmd.args(["mount", "--image"]).arg(&img).arg(&mnt);
    let _m = Mounted::start(cmd, &mnt, dir.path().join("mount.log"), "fs/sizes");
    let mut checked = 0;
    for e in m["entries"].as_array().expect("entries") {
        let Some(x) = e["xattrs"].as_object() else {
            continue;
        };
        let path = e["path"].as_str().expect("path");
        if e["type"] == "symlink" {
            continue; // getfattr follows symlinks; -h is not asked here
        }
        // What any caller may read: user.* and security.* (trusted.* needs
        // CAP_SYS_ADMIN, POSIX ACLs are the kernel's business).
        let want: BTreeMap<String, String> = x
            .iter()
            .filter(|(k, _)| k.starts_with("user.") || k.starts_with("security."))
            .map(|(k, v)| (k.clone(), v.as_str().expect("hex").to_string()))
            .collect();
        let got: BTreeMap<String, String> = getfattr(&mnt.join("fs").join(path))
            .into_iter()
            .filter(|(k, _)| k.starts_with("user.") || k.starts_with("security."))
            .collect();
        assert_eq!(got, want, "{path}");
        checked += want.len();
    }
    assert!(checked >= 7, "only {checked} attributes compared");
    // The raw calls: size 0 asks the size, a short buffer is ERANGE, an
    // absent name ENODATA.
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
    let s0 = c(&mnt.join("fs/sizes/s0"));
    let name = std::ffi::CString::new("user.small").expect("name");
    let absent = std::ffi::CString::new("user.absent").expect("name");
    let size = raw_getxattr(&s0, &name, 0).0;
    let short = raw_getxattr(&s0, &name, 2);
    let (full, _, buf) = raw_getxattr(&s0, &name, 64);
    let missing = raw_getxattr(&s0, &absent, 64);
    let short = (short.0, short.1);
    let missing = (missing.0, missing.1);
    let list_size = raw_listxattr_size(&s0);
    assert_eq!(size, 5);
    assert_eq!(short, (-1, Some(libc::ERANGE)));
    assert_eq!(full, 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(missing, (-1, Some(libc::ENODATA)));
    let names: usize = getfattr(&mnt.join("fs/sizes/s0"))
        .keys()
        .map(|k| k.len() + 1)
        .sum();
    assert_eq!(
        list_size, names as isize,
        "listxattr's size: every name and its NUL"
    );
    // An absent attribute is ENODATA ("No such attribute").
    let out = Command::new("getfattr")
        .args(["-n", "user.absent"])
        .arg(mnt.join("fs/sizes/s0"))
        .output()
        .expect("getfattr");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such attribute"),
        "{out:?}"
    );
}

/// fsdisk.vmdk (GPT: NTFS and FAT32) as a flat disk image in `dir`, read
/// out through `cat --image`.
fn fsdisk_raw(dir: &Path) -> PathBuf {
    let vmdk = dir.join("fsdisk.vmdk");
    unpack("fs/fsdisk.vmdk.zst", &vmdk);
    let raw = dir.join("disk.img");
    let out = common::vaultfs()
        .args(["cat", "--image"])
        .arg(format!("{}:disk.raw", vmdk.display()))
        .output()
        .expect("cat --image");
    assert!(out.status.success(), "{out:?}");
    fs::write(&raw, &out.stdout).expect("write disk");
    raw
}

#[test]
fn a_disk_backup_mounts_with_every_file_of_its_partitions() {
    require_fuse();
    let env = Env::init();
    let raw = fsdisk_raw(env.dir.path());
    env.run(&["backup", "-q", "--disk", raw.to_str().expect("utf-8")])
        .ok();
    let mnt = env.dir.path().join("mnt");
    let _m = mount_repo(&env, &mnt);
    let snap = mnt.join("ids").join(the_only(&mnt.join("ids")));
    // Unused clusters were stored as zeros: every file is still there.
    let contents = snap.join("disk.vmdk.contents");
    compare_manifest(&contents.join("p1"));
    compare_manifest(&contents.join("p2"));
    assert_eq!(
        fs::read(contents.join("disk.raw")).expect("disk.raw").len() as u64,
        fs::metadata(&raw).expect("raw").len()
    );
}

#[test]
fn an_unreadable_region_of_a_disk_is_a_warning_with_its_byte_range() {
    require_fuse();
    // A source that fails reads in one region: a disk image served by a
    // mount of a vault one of whose data packs is damaged.
    // The disk's middle is 56 MiB of noise, so that it fills data packs
    // of its own (packs close at 16 MiB, in the order the chunks come):
    // the second pack written holds neither the partition table at the
    // start nor the GPT backup at the end, only noise.
    let first = Env::init();
    let raw = fsdisk_raw(first.dir.path());
    let mut disk = fs::read(&raw).expect("disk");
    let noise = noise(56 << 20, 7);
    disk[8 << 20..64 << 20].copy_from_slice(&noise);
    let src = first.dir.path().join("src");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("disk.img"), &disk).expect("write disk");
    first
        .run(&["backup", "-q", src.to_str().expect("utf-8")])
        .ok();
    let mut packs: Vec<(SystemTime, PathBuf)> = walkdir(&first.repo.join("data"))
        .into_iter()
        .filter_map(|p| {
            let m = fs::metadata(&p).expect("pack");
            (m.len() >= 8 << 20).then(|| (m.modified().expect("mtime"), p))
        })
        .collect();
    packs.sort();
    assert!(packs.len() >= 3, "{packs:?}");
    let pack = &packs[1].1;
    let mut bytes = fs::read(pack).expect("pack");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    fs::write(pack, bytes).expect("damage");
    let mnt = first.dir.path().join("mnt");
    let _m = mount_repo(&first, &mnt);
    let served = mnt
        .join("ids")
        .join(the_only(&mnt.join("ids")))
        .join(src.strip_prefix("/").expect("absolute"))
        .join("disk.img");
    assert!(fs::read(&served).is_err(), "the damage shows");

    let second = Env::init();
    // --include-unused: the bytes are compared exactly below.
    let r = second.run(&[
        "backup",
        "--disk",
        served.to_str().expect("utf-8"),
        "--include-unused",
    ]);
    assert_eq!(r.code, 3, "status warning: {}", r.stderr);
    let ranges: Vec<(u64, u64)> = r
        .stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split("bytes ").nth(1)?;
            let (range, tail) = rest.split_once(' ')?;
            tail.starts_with("could not be read").then_some(())?;
            let (a, b) = range.split_once("..")?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    assert!(!ranges.is_empty(), "{}", r.stderr);
    // The ranges are recorded in the snapshot, and everything outside them
    // is the disk's own bytes; inside them zeros, never other data.
    let listed = second
        .run(&["cat", "latest:/disk.unreadable.txt"])
        .ok()
        .stdout;
    for (a, b) in &ranges {
        assert!(
            listed.contains(&format!("{a}")) && listed.contains(&format!("{b}")),
            "{listed}"
        );
    }
    let out = second
        .cmd(&["cat", "latest:/disk.vmdk.contents/disk.raw"])
        .output()
        .expect("cat");
    assert!(out.status.success());
    let got = out.stdout;
    assert_eq!(got.len(), disk.len());
    let mut at = 0usize;
    let mut sorted = ranges.clone();
    sorted.sort();
    for (a, b) in sorted {
        let (a, b) = (a as usize, b as usize);
        assert!(got[at..a] == disk[at..a], "bytes {at}..{a} differ");
        assert!(
            got[a..b].iter().all(|&x| x == 0),
            "bytes {a}..{b} not zeros"
        );
        at = b;
    }
    assert!(got[at..] == disk[at..], "bytes {at}.. differ");
}

/// Every file below `dir`.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}
