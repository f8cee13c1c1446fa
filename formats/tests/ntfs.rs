//! The NTFS reader on the volume `images/ntfs.sh` made with mkfs.ntfs and
//! ntfs-3g, compared with the manifest written from the source side (the
//! files as the script wrote them): every path's type, size, SHA-256,
//! mtime, symlink target, link count and alternate data streams; random
//! reads against the whole-file bytes; the deleted file; `details`; and
//! damage made in memory (encryption flag, valid data length, corrupted
//! structures), which must give named errors, never panics or wrong bytes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};
use vaultfs_formats::fs::ntfs::NtfsFs;
use vaultfs_formats::fs::{
    DirEntry, FileKind, Filesystem, FsError, FsOptions, Ino, check_invariants, walk,
};
use vaultfs_formats::io::{MemSource, ReadAt, Source};

fn image() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/ntfs.img.zst");
    zstd::decode_all(std::fs::read(p).expect("images/fs/ntfs.img.zst").as_slice()).expect("zstd")
}

fn manifest() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/ntfs.manifest.json");
    serde_json::from_slice(&std::fs::read(p).expect("manifest")).expect("json")
}

fn open(img: Vec<u8>, streams: bool) -> Result<NtfsFs, FsError> {
    let src: Source = Arc::new(MemSource::new(img));
    NtfsFs::open(src, &FsOptions { streams })
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_all(fs: &dyn Filesystem, ino: Ino) -> Vec<u8> {
    let src = fs.open(ino).expect("open");
    let mut b = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut b).expect("read");
    b
}

fn tree(fs: &dyn Filesystem) -> BTreeMap<String, DirEntry> {
    let mut out = BTreeMap::new();
    walk(fs, &mut |p, e| {
        out.insert(p.to_string(), e.clone());
        Ok(())
    })
    .expect("walk");
    out
}

fn resolve(fs: &dyn Filesystem, path: &str) -> Ino {
    let mut ino = fs.root();
    for part in path.split('/') {
        ino = fs
            .lookup(ino, part)
            .expect("lookup")
            .unwrap_or_else(|| panic!("{path}: no {part}"))
            .ino;
    }
    ino
}

#[test]
fn keeps_the_invariants_with_and_without_streams() {
    for streams in [false, true] {
        let fs = open(image(), streams).expect("open");
        let n = check_invariants(&fs).expect("invariants");
        assert!(n > 3000, "{n} entries");
    }
}

#[test]
fn matches_the_manifest() {
    let fs = open(image(), true).expect("open");
    let m = manifest();
    let want = m["entries"].as_object().expect("entries");
    let got = tree(&fs);
    let got_plain: Vec<&String> = got.keys().filter(|p| !p.contains(':')).collect();
    let extra: Vec<_> = got_plain.iter().filter(|p| !want.contains_key(**p)).collect();
    let missing: Vec<_> = want.keys().filter(|p| !got.contains_key(*p)).collect();
    assert!(extra.is_empty() && missing.is_empty(), "extra {extra:?}, missing {missing:?}");
    assert_eq!(fs.info().label.as_deref(), m["label"].as_str());
    for (path, w) in want {
        let e = &got[path];
        let meta = fs.metadata(e.ino).expect("metadata");
        let ty = w["type"].as_str().expect("type");
        let kind = match ty {
            "file" => FileKind::File,
            "dir" => FileKind::Dir,
            "symlink" => FileKind::Symlink,
            other => panic!("{other}"),
        };
        assert_eq!(e.kind, kind, "{path}");
        assert_eq!(meta.mtime.secs, w["mtime"].as_i64().expect("mtime"), "{path} mtime");
        if let Some(ns) = w.get("mtime_ns") {
            assert_eq!(u64::from(meta.mtime.nanos), ns.as_u64().expect("ns"), "{path} mtime ns");
        }
        if let Some(n) = w.get("nlink") {
            assert_eq!(u64::from(meta.nlink), n.as_u64().expect("nlink"), "{path} nlink");
        }
        match kind {
            FileKind::File => {
                assert_eq!(meta.size, w["size"].as_u64().expect("size"), "{path} size");
                let data = read_all(&fs, e.ino);
                assert_eq!(sha(&data), w["sha256"].as_str().expect("sha"), "{path} content");
            }
            FileKind::Symlink => {
                assert_eq!(fs.read_link(e.ino).expect("link"), w["target"].as_str().expect("t"), "{path}");
            }
            _ => {}
        }
        let streams = w.get("streams").and_then(Value::as_object);
        let listed: Vec<&String> = got
            .keys()
            .filter(|p| p.strip_prefix(path.as_str()).is_some_and(|r| r.starts_with(':')))
            .collect();
        assert_eq!(listed.len(), streams.map_or(0, |s| s.len()), "{path} streams");
        for (name, s) in streams.into_iter().flatten() {
            let sp = format!("{path}:{name}");
            let se = got.get(&sp).unwrap_or_else(|| panic!("{sp} not listed"));
            assert_eq!(fs.metadata(se.ino).expect("meta").size, s["size"].as_u64().expect("size"));
            assert_eq!(sha(&read_all(&fs, se.ino)), s["sha256"].as_str().expect("sha"), "{sp}");
        }
    }
    // Hard links share one inode.
    let a = &got["hard/a.txt"];
    assert_eq!(got["hard/b.txt"].ino, a.ino);
    assert_eq!(got["hard/sub/c.txt"].ino, a.ino);
}

#[test]
fn random_reads_match_whole_reads() {
    let fs = open(image(), true).expect("open");
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for path in [
        "compressed/text.txt",
        "compressed/text_zeros_text.bin",
        "compressed/random.bin",
        "compressed/odd.bin",
        "sparse.bin",
        "fragmented.bin",
        "sizes/4k1",
        "streams/4k.bin:bigstream",
    ] {
        let ino = resolve(&fs, path);
        let whole = read_all(&fs, ino);
        let src = fs.open(ino).expect("open");
        for _ in 0..200 {
            let off = rnd() % (whole.len() as u64 + 100);
            let len = (rnd() % 70_000) as usize;
            let mut buf = vec![0xA5u8; len];
            let n = src.read_at(off, &mut buf).expect("read");
            let start = (off as usize).min(whole.len());
            let want = &whole[start..(start + len).min(whole.len())];
            assert_eq!(&buf[..n], want, "{path} at {off}+{len}");
        }
    }
}

#[test]
fn lookups_are_case_insensitive_but_exact_first() {
    let fs = open(image(), false).expect("open");
    let case = resolve(&fs, "case");
    let readme = fs.lookup(case, "Readme").expect("lookup").expect("Readme");
    let upper = fs.lookup(case, "README").expect("lookup").expect("README");
    assert_ne!(readme.ino, upper.ino);
    assert_eq!(readme.name, "Readme");
    assert!(fs.lookup(case, "readme").expect("lookup").is_some());
    let sizes = resolve(&fs, "sizes");
    let one = fs.lookup(sizes, "ONE").expect("lookup").expect("ONE");
    assert_eq!(one.name, "one");
    let big = resolve(&fs, "bigdir");
    for i in [0, 1, 1499, 2999] {
        let name = format!("ENTRY_{i:04}_WITH_A_LONGER_NAME.TXT");
        assert!(fs.lookup(big, &name).expect("lookup").is_some(), "{name}");
    }
    assert!(fs.lookup(big, "entry_3000_with_a_longer_name.txt").expect("lookup").is_none());
    // The DOS alias is hidden from listings, and the long name shown once.
    let dos = resolve(&fs, "dos");
    let names: Vec<String> = fs.read_dir(dos).expect("dir").into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["LongFileName.text"]);
    // System files are not listed, as ntfs-3g hides them.
    let root: Vec<String> = fs.read_dir(fs.root()).expect("root").into_iter().map(|e| e.name).collect();
    assert!(!root.iter().any(|n| n.starts_with('$')), "{root:?}");
    assert!(fs.lookup(fs.root(), "$MFT").expect("lookup").is_none());
}

#[test]
fn the_deleted_file_is_found() {
    let fs = open(image(), false).expect("open");
    let m = manifest();
    let del = fs.deleted().expect("deleted");
    for w in m["deleted"].as_array().expect("deleted") {
        let path = w["path"].as_str().expect("path");
        let d = del
            .iter()
            .find(|d| d.path == path)
            .unwrap_or_else(|| panic!("{path} not in {del:?}"));
        assert_eq!(d.meta.size, w["size"].as_u64().expect("size"));
        assert_eq!(d.meta.kind, FileKind::File);
        // Nothing has reused its clusters on this volume.
        assert_eq!(sha(&read_all(&fs, d.ino)), w["sha256"].as_str().expect("sha"));
        assert!(matches!(fs.metadata(d.ino), Err(FsError::NoInode(_))));
    }
}

#[test]
fn details_show_file_name_times() {
    let fs = open(image(), true).expect("open");
    let ino = resolve(&fs, "dos/LongFileName.text");
    let d: BTreeMap<String, String> = fs.details(ino).expect("details").into_iter().collect();
    for k in ["fn[0].created", "fn[0].modified", "fn[0].mft_changed", "fn[0].accessed", "si_modified"] {
        assert!(d.get(k).is_some_and(|v| v.ends_with(" UTC")), "{k}: {d:?}");
    }
    let namespaces: Vec<&String> = d.iter().filter(|(k, _)| k.ends_with(".namespace")).map(|(_, v)| v).collect();
    assert!(namespaces.iter().any(|n| *n == "DOS"), "{namespaces:?}");
    let jn = resolve(&fs, "links/junction");
    let d: BTreeMap<String, String> = fs.details(jn).expect("details").into_iter().collect();
    assert!(d["reparse_tag"].contains("MOUNT_POINT"), "{d:?}");
    let c = resolve(&fs, "compressed/text.txt");
    let d: BTreeMap<String, String> = fs.details(c).expect("details").into_iter().collect();
    assert!(d["data.flags"].contains("compressed"), "{d:?}");
    let f = resolve(&fs, "fragmented.bin");
    let d: BTreeMap<String, String> = fs.details(f).expect("details").into_iter().collect();
    assert!(d["data.runs"].parse::<u64>().expect("runs") > 600, "{d:?}");
}
