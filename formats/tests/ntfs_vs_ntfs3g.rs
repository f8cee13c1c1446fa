//! The NTFS reader against an independent one: the same image mounted
//! read-only with ntfs-3g, both trees walked, and every entry's type, size,
//! SHA-256, mtime, atime and ctime (to the 100 ns), link count, symlink target and
//! alternate data streams (ntfs-3g's `user.*` xattrs, read with getfattr)
//! compared.
//!
//! Two differences are by design and allowed for:
//! - An absolute symlink or junction target: we show `C:/dir`; ntfs-3g
//!   shows `<mountpoint>/dir` when the path exists on this volume and
//!   `<mountpoint>/.NTFS-3G/C:/dir` when not. Both are compared without
//!   the drive or mount point (`/dir`).
//! - `nlink`: ntfs-3g reports the record's link count, which counts a
//!   DOS 8.3 alias as a second link; we count the names a listing shows.
//!
//! This needs root, `/dev/fuse`, ntfs-3g and getfattr (CI installs the
//! Debian packages ntfs-3g and attr) and fails loudly without them, as the
//! mount tests do.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vaultfs_formats::fs::ntfs::NtfsFs;
use vaultfs_formats::fs::{FileKind, Filesystem, FsOptions, walk};
use vaultfs_formats::io::{MemSource, ReadAt, Source};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    kind: &'static str,
    size: Option<u64>,
    sha256: Option<String>,
    mtime: (i64, u32),
    atime: (i64, u32),
    ctime: (i64, u32),
    nlink: Option<u64>,
    target: Option<String>,
    streams: BTreeMap<String, String>,
    /// DOS-only names (ours; 0 for ntfs-3g's).
    dos_names: u64,
}

/// An absolute target without its drive or mount point.
fn drive_less(t: &str, mnt: &str) -> String {
    let dot = format!("{mnt}/.NTFS-3G/");
    let t = t.strip_prefix(&dot).unwrap_or(t);
    if let Some(rest) = t.strip_prefix(mnt) {
        return rest.to_string();
    }
    match t.as_bytes() {
        [d, b':', b'/', ..] if d.is_ascii_alphabetic() => t[2..].to_string(),
        _ => t.to_string(),
    }
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn require(what: bool, missing: &str) {
    assert!(
        what,
        "the ntfs-3g comparison needs {missing} (CI runs as root with /dev/fuse and installs ntfs-3g and attr)"
    );
}

fn has_command(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Unmounts when dropped, even when an assertion failed.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        for cmd in [
            &["umount"][..],
            &["fusermount3", "-u"],
            &["fusermount", "-u"],
        ] {
            let ok = Command::new(cmd[0])
                .args(&cmd[1..])
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
        }
    }
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x");
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Streams per path from `getfattr -R -d -m '^user\.' -e hex`.
fn xattr_streams(mnt: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = Command::new("getfattr")
        .args([
            "-R",
            "-h",
            "-d",
            "-m",
            "^user\\.",
            "-e",
            "hex",
            "--absolute-names",
        ])
        .arg(mnt)
        .output()
        .expect("getfattr");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let prefix = format!("{}/", mnt.display());
    let mut all: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut cur = String::new();
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("# file: ") {
            cur = p.strip_prefix(&prefix).unwrap_or(p).to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            let name = k.strip_prefix("user.").expect("user.").to_string();
            all.entry(cur.clone())
                .or_default()
                .insert(name, sha(&unhex(v)));
        }
    }
    all
}

fn walk_mount(mnt: &Path) -> BTreeMap<String, Seen> {
    let streams = xattr_streams(mnt);
    let mut out = BTreeMap::new();
    let mut stack = vec![mnt.to_path_buf()];
    let mnt_s = mnt.display().to_string();
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            let rel = p
                .strip_prefix(mnt)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
            let ft = m.file_type();
            let mut s = Seen {
                kind: "other",
                size: None,
                sha256: None,
                mtime: (m.mtime(), m.mtime_nsec() as u32),
                atime: (m.atime(), m.atime_nsec() as u32),
                ctime: (m.ctime(), m.ctime_nsec() as u32),
                nlink: None,
                target: None,
                streams: streams.get(&rel).cloned().unwrap_or_default(),
                dos_names: 0,
            };
            if ft.is_dir() {
                s.kind = "dir";
                stack.push(p.clone());
            } else if ft.is_symlink() {
                s.kind = "symlink";
                let t = std::fs::read_link(&p)
                    .expect("readlink")
                    .to_string_lossy()
                    .into_owned();
                s.target = Some(drive_less(&t, &mnt_s));
            } else if ft.is_file() {
                s.kind = "file";
                s.size = Some(m.len());
                s.nlink = Some(m.nlink());
                s.sha256 = Some(sha(&std::fs::read(&p).expect("read")));
            }
            out.insert(rel, s);
        }
    }
    out
}

fn walk_ours(fs: &NtfsFs) -> BTreeMap<String, Seen> {
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    let mut streams: Vec<(String, String)> = Vec::new();
    walk(fs, &mut |path, e| {
        let m = fs.metadata(e.ino)?;
        let read = |ino| -> Result<String, vaultfs_formats::fs::FsError> {
            let src = fs.open(ino)?;
            let mut b = vec![0u8; src.len() as usize];
            src.read_exact_at(0, &mut b)?;
            Ok(sha(&b))
        };
        if let Some((file, stream)) = path.rsplit_once(':').filter(|(f, _)| out.contains_key(*f)) {
            streams.push((file.to_string(), format!("{stream}={}", read(e.ino)?)));
            return Ok(());
        }
        let mut s = Seen {
            kind: "other",
            size: None,
            sha256: None,
            mtime: (m.mtime.secs, m.mtime.nanos),
            atime: (m.atime.secs, m.atime.nanos),
            ctime: (m.ctime.secs, m.ctime.nanos),
            nlink: None,
            target: None,
            streams: BTreeMap::new(),
            dos_names: 0,
        };
        match e.kind {
            FileKind::Dir => s.kind = "dir",
            FileKind::Symlink => {
                s.kind = "symlink";
                s.target = Some(drive_less(&fs.read_link(e.ino)?, "\0"));
            }
            FileKind::File => {
                s.kind = "file";
                s.size = Some(m.size);
                s.nlink = Some(u64::from(m.nlink));
                s.sha256 = Some(read(e.ino)?);
                s.dos_names = fs
                    .details(e.ino)?
                    .iter()
                    .filter(|(k, v)| k.ends_with(".namespace") && v == "DOS")
                    .count() as u64;
            }
            _ => {}
        }
        out.insert(path.to_string(), s);
        Ok(())
    })
    .expect("walk");
    for (file, kv) in streams {
        let (k, v) = kv.split_once('=').expect("=");
        if let Some(s) = out.get_mut(&file) {
            s.streams.insert(k.to_string(), v.to_string());
        }
    }
    out
}

#[test]
fn the_same_tree_as_ntfs3g() {
    require(is_root(), "root");
    require(Path::new("/dev/fuse").exists(), "/dev/fuse");
    require(has_command("ntfs-3g"), "ntfs-3g (Debian package ntfs-3g)");
    require(has_command("getfattr"), "getfattr (Debian package attr)");
    compare("ntfs.img.zst", 3000);
    compare("ntfs4k.img.zst", 300);
}

/// Mounts `images/fs/<name>` with ntfs-3g and compares both trees; the
/// volume must hold more than `min_entries` entries.
fn compare(name: &str, min_entries: usize) {
    let packed = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../images/fs")
            .join(name),
    )
    .expect("image");
    let raw = zstd::decode_all(packed.as_slice()).expect("zstd");
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("ntfs.img");
    std::fs::write(&img, &raw).expect("write");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    let status = Command::new("ntfs-3g")
        .args(["-o", "ro,streams_interface=xattr"])
        .arg(&img)
        .arg(&mnt)
        .status()
        .expect("ntfs-3g");
    assert!(status.success(), "ntfs-3g mount failed: {status}");
    let guard = Mounted(mnt.clone());
    let theirs = walk_mount(&mnt);
    drop(guard);

    let src: Source = Arc::new(MemSource::new(raw));
    let fs = NtfsFs::open(
        src,
        &FsOptions {
            streams: true,
            ..Default::default()
        },
    )
    .expect("open");
    let ours = walk_ours(&fs);

    let only_theirs: Vec<&String> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let only_ours: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    assert!(
        only_theirs.is_empty() && only_ours.is_empty(),
        "only ntfs-3g lists {only_theirs:?}; only we list {only_ours:?}"
    );
    let mut differ = Vec::new();
    for (path, t) in &theirs {
        let o = &ours[path];
        // ntfs-3g's link count includes DOS aliases.
        let as_ntfs3g = Seen {
            nlink: o.nlink.map(|n| n + o.dos_names),
            dos_names: 0,
            ..o.clone()
        };
        if as_ntfs3g != *t {
            differ.push(format!("{path}:\n  ntfs-3g {t:?}\n  ours    {o:?}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{name}: {} entries differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    assert!(
        theirs.len() > min_entries,
        "{name}: {} entries",
        theirs.len()
    );
}
