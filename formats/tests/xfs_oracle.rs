//! Independent readers as the oracle for the XFS reader: `xfs_db -r` (from
//! xfsprogs) on the test images — directory listings, inode fields and
//! block maps, whose AG/block pairs locate file data without our
//! translation — and the kernel itself through a read-only loop mount
//! (file contents, metadata, and extended attributes through `getfattr`).
//!
//! These need xfsprogs (`xfs_db`) and, for the mount, root; CI (.ci/run)
//! installs xfsprogs and runs as root. Without them the tests FAIL with a
//! message saying what is missing, rather than pass without checking.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vaultfs_formats::fs::{DirEntry, FileKind, Filesystem, FsKind, FsOptions, Ino, walk};
use vaultfs_formats::io::{FileSource, ReadAt, Source};

/// The image decompressed to a temporary file.
fn image_file(name: &str) -> tempfile::TempPath {
    let z = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../images/fs/xfs-{name}.img.zst")),
    )
    .expect("image");
    let raw = zstd::decode_all(&z[..]).expect("zstd");
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), raw).expect("write image");
    f.into_temp_path()
}

fn open(path: &Path) -> Arc<dyn Filesystem> {
    let src: Source = Arc::new(FileSource::open(path).expect("open image"));
    vaultfs_formats::fs::open(FsKind::Xfs, src, &FsOptions::default()).expect("open XFS")
}

/// Runs `xfs_db -r` with `cmds` on `img`; fails the test clearly when
/// xfsprogs is missing.
fn xfs_db(img: &Path, cmds: &[String]) -> String {
    let mut c = Command::new("xfs_db");
    c.arg("-r").env("TZ", "UTC");
    for cmd in cmds {
        c.arg("-c").arg(cmd);
    }
    let out = c.arg(img).output().unwrap_or_else(|e| {
        panic!("xfs_db (Debian package xfsprogs) is needed for the XFS oracle tests: {e}")
    });
    assert!(
        out.status.success(),
        "xfs_db {cmds:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn tree(fs: &dyn Filesystem) -> Vec<(String, DirEntry)> {
    let mut out = Vec::new();
    walk(fs, &mut |p, e| {
        out.push((p.to_string(), e.clone()));
        Ok(())
    })
    .expect("walk");
    out
}

fn db_type(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "regular",
        FileKind::Dir => "directory",
        FileKind::Symlink => "symlink",
        FileKind::CharDevice => "chardev",
        FileKind::BlockDevice => "blkdev",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
    }
}

/// Every directory listed by `xfs_db ls` equals ours (names, inodes, types).
fn listings_agree(name: &str) {
    let img = image_file(name);
    let fs = open(&img);
    let mut dirs = vec![(String::new(), fs.root())];
    dirs.extend(
        tree(&*fs)
            .into_iter()
            .filter(|(_, e)| e.kind == FileKind::Dir)
            .map(|(p, e)| (p, e.ino)),
    );
    for (path, ino) in dirs {
        let out = xfs_db(&img, &[format!("ls /{path}")]);
        let mut theirs: Vec<(String, u64, String)> = out
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // offset inode type hash namelen name... (good)
                let name_at = l.find(&format!(" {} ", f.get(4)?))? + f[4].len() + 2;
                let name = l[name_at..].trim_end().strip_suffix(" (good)")?.to_string();
                Some((name, f[1].parse().ok()?, f[2].to_string()))
            })
            .filter(|(n, _, _)| n != "." && n != "..")
            .collect();
        // Without ftype xfs_db says "unknown"; the kinds are then checked
        // against the inodes' modes by `inodes_agree`.
        let no_ftype = theirs.iter().all(|t| t.2 == "unknown");
        let mut ours: Vec<(String, u64, String)> = fs
            .read_dir(ino)
            .expect("read_dir")
            .into_iter()
            .map(|e| {
                let t = if no_ftype { "unknown" } else { db_type(e.kind) };
                (e.name, e.ino.0, t.to_string())
            })
            .collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs, "{name}: directory /{path}");
    }
}

#[test]
fn v5_listings_agree_with_xfs_db() {
    listings_agree("v5");
}

#[test]
fn v4_listings_agree_with_xfs_db() {
    listings_agree("v4");
}

#[test]
fn one_k_listings_agree_with_xfs_db() {
    // 4 KiB directory blocks over 1 KiB filesystem blocks.
    listings_agree("1k");
}

#[test]
fn v4_without_ftype_listings_agree_with_xfs_db() {
    listings_agree("v4nf");
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds of xfs_db's `Thu Apr 16 09:54:35 2026` (printed in UTC).
fn db_time(s: &str) -> i64 {
    let f: Vec<&str> = s.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == f[1])
    .expect("month") as i64
        + 1;
    let hms: Vec<i64> = f[3].split(':').map(|x| x.parse().expect("time")).collect();
    days(
        f[4].parse().expect("year"),
        month,
        f[2].parse().expect("day"),
    ) * 86400
        + hms[0] * 3600
        + hms[1] * 60
        + hms[2]
}

/// Inode fields printed by `xfs_db inode N; print` equal our metadata.
fn inodes_agree(name: &str) {
    let img = image_file(name);
    let fs = open(&img);
    let v5 = !name.starts_with("v4");
    let entries: Vec<(String, DirEntry)> = tree(&*fs)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("dir_"))
        .collect();
    let mut fields = vec![
        "core.mode",
        "core.uid",
        "core.gid",
        "core.nlinkv2",
        "core.size",
        "core.format",
        "core.nextents",
        "core.mtime.sec",
        "core.mtime.nsec",
        "core.atime.sec",
        "core.atime.nsec",
        "core.ctime.sec",
        "core.ctime.nsec",
    ];
    if v5 {
        fields.extend(["v3.crtime.sec", "v3.crtime.nsec"]);
    }
    for chunk in entries.chunks(50) {
        let mut cmds = Vec::new();
        for (_, e) in chunk {
            cmds.push(format!("inode {}", e.ino));
            cmds.push(format!("print {}", fields.join(" ")));
        }
        let out = xfs_db(&img, &cmds);
        let values: Vec<&str> = out
            .lines()
            .map(|l| {
                l.split_once(" = ")
                    .unwrap_or_else(|| panic!("not field = value: {l:?}"))
                    .1
            })
            .collect();
        assert_eq!(values.len(), chunk.len() * fields.len(), "{out}");
        for ((path, e), v) in chunk.iter().zip(values.chunks(fields.len())) {
            let m = fs.metadata(e.ino).expect("metadata");
            let d: HashMap<String, String> =
                fs.details(e.ino).expect("details").into_iter().collect();
            let mode = u32::from_str_radix(v[0], 8).expect("mode");
            let ctx = format!("{name}: {path} (inode {})", e.ino);
            assert_eq!(m.perm, mode & 0o7777, "{ctx}: mode");
            let kind = match mode & 0o170000 {
                0o100000 => FileKind::File,
                0o040000 => FileKind::Dir,
                0o120000 => FileKind::Symlink,
                0o020000 => FileKind::CharDevice,
                0o060000 => FileKind::BlockDevice,
                0o010000 => FileKind::Fifo,
                _ => FileKind::Socket,
            };
            assert_eq!((e.kind, m.kind), (kind, kind), "{ctx}: kind");
            assert_eq!(m.uid.to_string(), v[1], "{ctx}: uid");
            assert_eq!(m.gid.to_string(), v[2], "{ctx}: gid");
            assert_eq!(m.nlink.to_string(), v[3], "{ctx}: nlink");
            assert_eq!(m.size.to_string(), v[4], "{ctx}: size");
            assert!(
                v[5].contains(&format!("({})", d["xfs.format"])),
                "{ctx}: format {}",
                v[5]
            );
            assert_eq!(d["xfs.extents"], v[6], "{ctx}: extents");
            for (i, t) in [(7, m.mtime), (9, m.atime), (11, m.ctime)] {
                assert_eq!(
                    (t.secs, t.nanos.to_string()),
                    (db_time(v[i]), v[i + 1].to_string()),
                    "{ctx}: time {i}"
                );
            }
            if v5 {
                let c = m.crtime.expect("crtime on v5");
                assert_eq!(
                    (c.secs, c.nanos.to_string()),
                    (db_time(v[13]), v[14].to_string()),
                    "{ctx}: crtime"
                );
            }
        }
    }
}

#[test]
fn v5_inodes_agree_with_xfs_db() {
    inodes_agree("v5");
}

#[test]
fn v4_inodes_agree_with_xfs_db() {
    inodes_agree("v4");
}

#[test]
fn v4_without_ftype_inodes_agree_with_xfs_db() {
    inodes_agree("v4nf");
}

/// File bytes agree with the places `xfs_db bmap` gives as (AG, AG block):
/// unwritten extents read as zeros, written ones as the image there.
fn bmaps_agree(name: &str, paths: &[&str]) {
    let img = image_file(name);
    let fs = open(&img);
    let sb = xfs_db(&img, &["sb 0".into(), "print agblocks blocksize".into()]);
    let sbv: Vec<u64> = sb
        .lines()
        .map(|l| l.split_once(" = ").expect("=").1.parse().expect("n"))
        .collect();
    let (agblocks, bs) = (sbv[0], sbv[1]);
    let raw = FileSource::open(&img).expect("image");
    for path in paths {
        let mut ino = fs.root();
        for part in path.split('/') {
            ino = fs.lookup(ino, part).expect("lookup").expect("exists").ino;
        }
        let file = fs.open(ino).expect("open");
        let out = xfs_db(&img, &[format!("inode {ino}"), "bmap".into()]);
        let mut extents = 0;
        for l in out.lines() {
            // data offset O startblock S (A/B) count C flag F
            let f: Vec<&str> = l.split_whitespace().collect();
            let off: u64 = f[2].parse().expect("offset");
            let (ag, agbno) = f[5]
                .trim_matches(['(', ')'])
                .split_once('/')
                .expect("ag/bno");
            let (ag, agbno): (u64, u64) = (ag.parse().expect("ag"), agbno.parse().expect("agbno"));
            let count: u64 = f[7].parse().expect("count");
            let unwritten = f[9] == "1";
            let start = off * bs;
            if start >= file.len() {
                continue;
            }
            let len = (count * bs).min(file.len() - start) as usize;
            let mut ours = vec![0xA5u8; len];
            file.read_exact_at(start, &mut ours).expect("read");
            let mut theirs = vec![0u8; len];
            if !unwritten {
                raw.read_exact_at((ag * agblocks + agbno) * bs, &mut theirs)
                    .expect("read image");
            }
            assert!(
                ours == theirs,
                "{name}: {path} at file block {off} (AG {ag} block {agbno})"
            );
            extents += 1;
        }
        assert!(extents > 0, "{path}: no extents from xfs_db");
    }
}

#[test]
fn v5_block_maps_agree_with_xfs_db() {
    bmaps_agree(
        "v5",
        &[
            "sparse/frag",
            "sparse/holes",
            "sizes/s1m",
            "reflink/copy",
            "ag_a/data",
            "ag_b/data",
            "ag_c/data",
            "ag_d/data",
        ],
    );
}

#[test]
fn reflink_block_maps_agree_with_xfs_db() {
    bmaps_agree(
        "reflink",
        &[
            "orig",
            "copy",
            "range",
            "unwritten",
            "prealloc",
            "hole_unwritten",
        ],
    );
}

#[test]
fn one_k_block_maps_agree_with_xfs_db() {
    bmaps_agree("1k", &["frag/deep"]);
}

// ---- the kernel ----

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn sha_file(p: &Path) -> String {
    let data = std::fs::read(p).expect("read mounted file");
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mount_agrees(name: &str, opts: &str) {
    assert!(
        is_root(),
        "the XFS loop-mount comparison must run as root (it mounts the test images read-only); \
         CI runs it as root"
    );
    let img = image_file(name);
    let fs = open(&img);
    let dir = tempfile::tempdir().expect("temp dir");
    let st = Command::new("mount")
        .args(["-t", "xfs", "-o", opts])
        .arg(&*img)
        .arg(dir.path())
        .status()
        .expect("mount");
    assert!(
        st.success(),
        "mount -t xfs -o {opts} of the {name} image failed (loop devices and XFS support needed)"
    );
    let _m = Mount(dir.path().to_path_buf());
    let mut n = 0;
    for (path, e) in tree(&*fs) {
        let p = dir.path().join(&path);
        let k = std::fs::symlink_metadata(&p).unwrap_or_else(|err| panic!("{name}: {path}: {err}"));
        let m = fs.metadata(e.ino).expect("metadata");
        let ctx = format!("{name}: {path}");
        let ft = k.file_type();
        let kind = if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_char_device() {
            FileKind::CharDevice
        } else if ft.is_block_device() {
            FileKind::BlockDevice
        } else if ft.is_fifo() {
            FileKind::Fifo
        } else if ft.is_socket() {
            FileKind::Socket
        } else {
            FileKind::File
        };
        assert_eq!(e.kind, kind, "{ctx}: kind");
        assert_eq!(m.ino, Ino(k.ino()), "{ctx}: inode");
        assert_eq!(m.size, k.size(), "{ctx}: size");
        assert_eq!(m.perm, k.mode() & 0o7777, "{ctx}: mode");
        assert_eq!((m.uid, m.gid), (k.uid(), k.gid()), "{ctx}: owner");
        assert_eq!(u64::from(m.nlink), k.nlink(), "{ctx}: nlink");
        assert_eq!(m.rdev, k.rdev(), "{ctx}: rdev");
        assert_eq!(
            (m.mtime.secs, i64::from(m.mtime.nanos)),
            (k.mtime(), k.mtime_nsec()),
            "{ctx}: mtime"
        );
        assert_eq!(
            (m.ctime.secs, i64::from(m.ctime.nanos)),
            (k.ctime(), k.ctime_nsec()),
            "{ctx}: ctime"
        );
        match kind {
            FileKind::File => {
                let src = fs.open(e.ino).expect("open");
                let mut ours = vec![0u8; src.len() as usize];
                src.read_exact_at(0, &mut ours).expect("read");
                let ours: String = Sha256::digest(&ours)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(ours, sha_file(&p), "{ctx}: content");
            }
            FileKind::Symlink => {
                let t = std::fs::read_link(&p).expect("readlink");
                assert_eq!(
                    fs.read_link(e.ino).expect("read_link"),
                    t.to_string_lossy(),
                    "{ctx}"
                );
            }
            FileKind::Dir => {
                let mut theirs: Vec<String> = std::fs::read_dir(&p)
                    .expect("read_dir")
                    .map(|d| d.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect();
                let mut ours: Vec<String> = fs
                    .read_dir(e.ino)
                    .expect("read_dir")
                    .into_iter()
                    .map(|d| d.name)
                    .collect();
                theirs.sort();
                ours.sort();
                assert_eq!(ours, theirs, "{ctx}: entries");
            }
            _ => {}
        }
        n += 1;
    }
    assert!(n > 0);
    xattrs_agree(name, &*fs, dir.path());
}

/// Every entry's extended attributes against the kernel's, listed by
/// `getfattr -R -h -d -m - -e hex` (Debian package attr) on the mount:
/// names and values, `trusted.*` and ACLs included (this runs as root).
fn xattrs_agree(name: &str, fs: &dyn Filesystem, mnt: &Path) {
    let out = Command::new("getfattr")
        .args(["-R", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names"])
        .arg(mnt)
        .output()
        .expect("getfattr (Debian package attr) must be installed");
    assert!(out.status.success(), "getfattr: {out:?}");
    let prefix = format!("{}/", mnt.display());
    let mut theirs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(f) = line.strip_prefix("# file: ") {
            current = f.strip_prefix(&prefix).unwrap_or(f).to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            theirs
                .entry(current.clone())
                .or_default()
                .insert(k.to_string(), v.trim_start_matches("0x").to_string());
        }
    }
    let mut ours: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (path, e) in tree(fs) {
        for x in fs.xattrs(e.ino).expect("xattrs") {
            let hex: String = x.value.iter().map(|b| format!("{b:02x}")).collect();
            ours.entry(path.clone()).or_default().insert(x.name, hex);
        }
    }
    assert_eq!(ours, theirs, "{name}: extended attributes");
    if name == "v5" {
        assert!(
            ours.len() >= 6,
            "v5: only {} entries with attributes",
            ours.len()
        );
    }
}

#[test]
fn v5_agrees_with_a_kernel_mount() {
    mount_agrees("v5", "ro,loop");
}

#[test]
fn reflink_agrees_with_a_kernel_mount() {
    mount_agrees("reflink", "ro,loop");
}

#[test]
fn one_k_agrees_with_a_kernel_mount_without_log_recovery() {
    // norecovery: the kernel shows the same stale on-disk view we do.
    mount_agrees("1k", "ro,loop,norecovery");
}

/// `unused()` against `xfs_db -c 'freesp -d'` (every free extent, listed
/// by xfsprogs): the same extents, as byte ranges, except the blocks on
/// the AG free lists, which xfs_db counts as free and the reader keeps
/// (their number must be the AGFs' `flcount`s).
#[test]
fn unused_space_matches_xfs_db_freesp() {
    for name in ["v5", "v4", "v4nf", "1k"] {
        let img = image_file(name);
        let geo = xfs_db(
            &img,
            &["sb 0".into(), "p agblocks blocksize agcount".into()],
        );
        let field = |key: &str| -> u64 {
            geo.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim_start_matches(" = ").trim().parse().ok())
                .unwrap_or_else(|| panic!("{key} in {geo}"))
        };
        let (agblocks, bs) = (field("agblocks"), field("blocksize"));
        let mut free_list = 0;
        for agno in 0..field("agcount") {
            let agf = xfs_db(&img, &[format!("agf {agno}"), "p flcount".into()]);
            free_list += agf
                .trim()
                .strip_prefix("flcount = ")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("flcount in {agf}"));
        }
        let text = xfs_db(&img, &["freesp -d".into()]);
        let mut want = Vec::new();
        for line in text.lines() {
            let n: Vec<u64> = line
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if let [agno, agbno, len] = n[..] {
                let at = (agno * agblocks + agbno) * bs;
                want.push(at..at + len * bs);
            }
        }
        assert!(
            !want.is_empty(),
            "{name}: xfs_db listed no free extent: {text}"
        );
        let fs = open(&img);
        let mut got = Vec::new();
        fs.unused(&mut |r| got.push(r)).expect("unused");
        let kept: Vec<_> = want.iter().filter(|r| !got.contains(r)).collect();
        assert!(
            got.iter().all(|r| want.contains(r)),
            "{name}: {got:?} not all in {want:?}"
        );
        let kept_blocks: u64 = kept.iter().map(|r| (r.end - r.start) / bs).sum();
        assert_eq!(
            kept_blocks, free_list,
            "{name}: {kept:?} beside the free lists"
        );
    }
}
