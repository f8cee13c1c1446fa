//! What the XFS and ext tests share: the self-describing content
//! `images/xfs-tree.py` and `images/ext-tree.py` write (each 64-byte line
//! names a hash of the file's path and the line number), and the walk of a
//! whole filesystem compared with a manifest written from the source side;
//! and the volumes of the fuzz targets' sparse-chunk seeds.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use sha2::{Digest, Sha256};
use vaultfs_formats::fs::{DirEntry, FileKind, Filesystem, Ino, walk};
use vaultfs_formats::io::ReadAt;

/// Bytes `off..off + len` of the file at `path` as the tree scripts write it.
pub fn content(path: &str, off: u64, len: usize) -> Vec<u8> {
    let digest = Sha256::digest(path.as_bytes());
    let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let mut out = Vec::with_capacity(len + 64);
    let first = off / 64;
    let mut n = first;
    while out.len() < (off - first * 64) as usize + len {
        let mut line = format!("{tag} {n:012}");
        while line.len() < 63 {
            line.push('.');
        }
        line.push('\n');
        out.extend_from_slice(line.as_bytes());
        n += 1;
    }
    let skip = (off - first * 64) as usize;
    out[skip..skip + len].to_vec()
}

/// The expected bytes of a manifest file entry at `off`: its own (or its
/// `content_of`/`same_as` file's) content, only in its `segments` if it has
/// some, or its `pieces` ([offset, length, path, source offset]: bytes of
/// another file's content, as reflinks and copy-on-write leave them),
/// zeros elsewhere.
pub fn expected(e: &Value, off: u64, len: usize) -> Vec<u8> {
    if let Some(pieces) = e["pieces"].as_array() {
        let mut out = vec![0u8; len];
        for p in pieces {
            let (po, pl) = (p[0].as_u64().expect("off"), p[1].as_u64().expect("len"));
            let (src, so) = (p[2].as_str().expect("path"), p[3].as_u64().expect("src"));
            let (a, b) = (po.max(off), (po + pl).min(off + len as u64));
            if a < b {
                let c = content(src, so + (a - po), (b - a) as usize);
                out[(a - off) as usize..(b - off) as usize].copy_from_slice(&c);
            }
        }
        return out;
    }
    let path = e["content_of"]
        .as_str()
        .unwrap_or_else(|| e["path"].as_str().expect("path"));
    let path = e["same_as"].as_str().unwrap_or(path);
    match e["segments"].as_array() {
        None => content(path, off, len),
        Some(segs) => {
            let mut out = vec![0u8; len];
            for s in segs {
                let (so, sl) = (s[0].as_u64().expect("off"), s[1].as_u64().expect("len"));
                let (a, b) = (so.max(off), (so + sl).min(off + len as u64));
                if a < b {
                    let c = content(path, a, (b - a) as usize);
                    out[(a - off) as usize..(b - off) as usize].copy_from_slice(&c);
                }
            }
            out
        }
    }
}

pub fn tree(fs: &dyn Filesystem) -> Vec<(String, DirEntry)> {
    let mut out = Vec::new();
    walk(fs, &mut |p, e| {
        out.push((p.to_string(), e.clone()));
        Ok(())
    })
    .expect("walk");
    out
}

pub fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::CharDevice => "chardev",
        FileKind::BlockDevice => "blockdev",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
    }
}

/// The extended attributes of `ino` as name -> hex value; a name listed
/// twice fails.
pub fn xattrs(fs: &dyn Filesystem, ino: Ino) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for x in fs.xattrs(ino).expect("xattrs") {
        let hex: String = x.value.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            out.insert(x.name.clone(), hex).is_none(),
            "{} twice",
            x.name
        );
    }
    out
}

pub fn read_all(fs: &dyn Filesystem, ino: Ino) -> Vec<u8> {
    let src = fs.open(ino).expect("open");
    let mut buf = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut buf).expect("read");
    buf
}

/// Compares the whole tree of `fs` (image `name`) with manifest `m`
/// (`entries`: path, type, size, sha256, target, nlink, rdev, mtime,
/// xattrs), returning how many entries it holds. The extended attributes
/// must be exactly the manifest's (none where it lists none).
pub fn compare_with_manifest(fs: &dyn Filesystem, name: &str, m: &Value) -> usize {
    let want: HashMap<&str, &Value> = m["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["path"].as_str().expect("path"), e))
        .collect();
    let got = tree(fs);
    let mut got_paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    got_paths.sort();
    let mut want_paths: Vec<&str> = want.keys().copied().collect();
    want_paths.sort();
    assert_eq!(got_paths, want_paths, "{name}: the paths differ");
    let mut inos: HashMap<&str, Ino> = HashMap::new();
    for (path, e) in &got {
        let w = want[path.as_str()];
        let meta = fs.metadata(e.ino).expect("metadata");
        inos.insert(path, e.ino);
        assert_eq!(
            kind_name(e.kind),
            w["type"].as_str().expect("type"),
            "{path}"
        );
        if let Some(size) = w["size"].as_u64() {
            assert_eq!(meta.size, size, "{path}: size");
        }
        if let Some(sha) = w["sha256"].as_str() {
            let data = read_all(fs, e.ino);
            let got: String = Sha256::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, sha, "{path}: content");
        }
        if let Some(t) = w["target"].as_str() {
            assert_eq!(fs.read_link(e.ino).expect("read_link"), t, "{path}");
        }
        if let Some(n) = w["nlink"].as_u64() {
            assert_eq!(u64::from(meta.nlink), n, "{path}: nlink");
        }
        if let Some(r) = w["rdev"].as_array() {
            let (maj, min) = (r[0].as_u64().expect("major"), r[1].as_u64().expect("minor"));
            assert_eq!(meta.rdev, (maj << 8) | min, "{path}: rdev");
        }
        if let Some(t) = w["mtime"].as_array() {
            let (s, ns) = (t[0].as_i64().expect("secs"), t[1].as_u64().expect("nanos"));
            assert_eq!(
                (meta.mtime.secs, u64::from(meta.mtime.nanos)),
                (s, ns),
                "{path}: mtime"
            );
        }
        let want_x: BTreeMap<String, String> = w["xattrs"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("hex").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(xattrs(fs, e.ino), want_x, "{path}: xattrs");
    }
    for (path, e) in &got {
        if let Some(other) = want[path.as_str()]["same_as"].as_str() {
            assert_eq!(e.ino, inos[other], "{path} is a hardlink of {other}");
        }
    }
    got.len()
}

/// The volume a fuzz seed `fuzz/seeds/DIR/NAME` describes (`[flags][volume
/// length in sectors: u32 LE]`, then chunks `[first sector: u32 LE]
/// [sectors: u16 LE][bytes]`), as bytes.
pub fn fuzz_seed_volume(dir: &str, name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(dir)
        .join(name);
    let data = std::fs::read(path).expect("seed");
    let sectors = u32::from_le_bytes(data[1..5].try_into().expect("len")) as usize;
    let mut vol = vec![0u8; sectors * 512];
    let mut rest = &data[5..];
    while rest.len() >= 6 {
        let at = u32::from_le_bytes(rest[..4].try_into().expect("at")) as usize * 512;
        let n = usize::from(u16::from_le_bytes([rest[4], rest[5]])) * 512;
        vol[at..at + n].copy_from_slice(&rest[6..6 + n]);
        rest = &rest[6 + n..];
    }
    vol
}
