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
    NtfsFs::open(
        src,
        &FsOptions {
            streams,
            ..Default::default()
        },
    )
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
    let extra: Vec<_> = got_plain
        .iter()
        .filter(|p| !want.contains_key(**p))
        .collect();
    let missing: Vec<_> = want.keys().filter(|p| !got.contains_key(*p)).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "extra {extra:?}, missing {missing:?}"
    );
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
        assert_eq!(
            meta.mtime.secs,
            w["mtime"].as_i64().expect("mtime"),
            "{path} mtime"
        );
        if let Some(ns) = w.get("mtime_ns") {
            assert_eq!(
                u64::from(meta.mtime.nanos),
                ns.as_u64().expect("ns"),
                "{path} mtime ns"
            );
        }
        if let Some(n) = w.get("nlink") {
            assert_eq!(
                u64::from(meta.nlink),
                n.as_u64().expect("nlink"),
                "{path} nlink"
            );
        }
        match kind {
            FileKind::File => {
                assert_eq!(meta.size, w["size"].as_u64().expect("size"), "{path} size");
                let data = read_all(&fs, e.ino);
                assert_eq!(
                    sha(&data),
                    w["sha256"].as_str().expect("sha"),
                    "{path} content"
                );
            }
            FileKind::Symlink => {
                assert_eq!(
                    fs.read_link(e.ino).expect("link"),
                    w["target"].as_str().expect("t"),
                    "{path}"
                );
            }
            _ => {}
        }
        let streams = w.get("streams").and_then(Value::as_object);
        let listed: Vec<&String> = got
            .keys()
            .filter(|p| {
                p.strip_prefix(path.as_str())
                    .is_some_and(|r| r.starts_with(':'))
            })
            .collect();
        assert_eq!(
            listed.len(),
            streams.map_or(0, |s| s.len()),
            "{path} streams"
        );
        for (name, s) in streams.into_iter().flatten() {
            let sp = format!("{path}:{name}");
            let se = got.get(&sp).unwrap_or_else(|| panic!("{sp} not listed"));
            assert_eq!(
                fs.metadata(se.ino).expect("meta").size,
                s["size"].as_u64().expect("size")
            );
            assert_eq!(
                sha(&read_all(&fs, se.ino)),
                s["sha256"].as_str().expect("sha"),
                "{sp}"
            );
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
    assert!(
        fs.lookup(big, "entry_3000_with_a_longer_name.txt")
            .expect("lookup")
            .is_none()
    );
    // The DOS alias is hidden from listings, and the long name shown once.
    let dos = resolve(&fs, "dos");
    let names: Vec<String> = fs
        .read_dir(dos)
        .expect("dir")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["LongFileName.text"]);
    let root: Vec<String> = fs
        .read_dir(fs.root())
        .expect("root")
        .into_iter()
        .map(|e| e.name)
        .collect();
    // System files (records 0-15) are not listed; other `$` names are.
    for system in ["$MFT", "$Bitmap", "$Extend", "$UpCase", "$Volume"] {
        assert!(!root.iter().any(|n| n == system), "{root:?}");
    }
    assert!(root.iter().any(|n| n == "$RECYCLE.BIN"), "{root:?}");
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
        assert_eq!(
            sha(&read_all(&fs, d.ino)),
            w["sha256"].as_str().expect("sha")
        );
        assert!(matches!(fs.metadata(d.ino), Err(FsError::NoInode(_))));
    }
}

#[test]
fn details_show_file_name_times() {
    let fs = open(image(), true).expect("open");
    let ino = resolve(&fs, "dos/LongFileName.text");
    let d: BTreeMap<String, String> = fs.details(ino).expect("details").into_iter().collect();
    for k in [
        "fn[0].created",
        "fn[0].modified",
        "fn[0].mft_changed",
        "fn[0].accessed",
        "si_modified",
    ] {
        assert!(d.get(k).is_some_and(|v| v.ends_with(" UTC")), "{k}: {d:?}");
    }
    let namespaces: Vec<&String> = d
        .iter()
        .filter(|(k, _)| k.ends_with(".namespace"))
        .map(|(_, v)| v)
        .collect();
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

// ---- damage made in memory -------------------------------------------

/// The byte offset of MFT record `n` in the image (found by the record
/// number XP and later store at 0x2C).
fn record_at(img: &[u8], n: u32) -> usize {
    (0..img.len() / 1024)
        .map(|i| i * 1024)
        .find(|&at| &img[at..at + 4] == b"FILE" && img[at + 0x2C..at + 0x30] == n.to_le_bytes())
        .unwrap_or_else(|| panic!("record {n} not found"))
}

/// The offset of the first attribute of `type_code` in the record at `rec`.
fn attr_at(img: &[u8], rec: usize, type_code: u32) -> usize {
    let mut at = rec + u16::from_le_bytes([img[rec + 0x14], img[rec + 0x15]]) as usize;
    loop {
        let ty = u32::from_le_bytes(img[at..at + 4].try_into().expect("4"));
        assert_ne!(ty, 0xFFFF_FFFF, "no attribute {type_code:#x}");
        if ty == type_code {
            return at;
        }
        at += u32::from_le_bytes(img[at + 4..at + 8].try_into().expect("4")) as usize;
    }
}

fn u64_at(img: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(img[at..at + 8].try_into().expect("8"))
}

/// The MFT record number of `path` on the pristine image.
fn record_of(path: &str) -> u32 {
    let fs = open(image(), false).expect("open");
    resolve(&fs, path).0 as u32
}

/// The first cluster of the first run of the non-resident attribute at `a`.
fn first_lcn(img: &[u8], a: usize) -> u64 {
    let pairs = a + u16::from_le_bytes([img[a + 0x20], img[a + 0x21]]) as usize;
    let h = img[pairs];
    let (ls, os) = ((h & 0xF) as usize, (h >> 4) as usize);
    let mut lcn = 0u64;
    for i in 0..os {
        lcn |= u64::from(img[pairs + 1 + ls + i]) << (8 * i);
    }
    lcn
}

fn corrupt_text(r: Result<impl Sized, FsError>) -> String {
    match r {
        Err(e @ FsError::Corrupt { .. }) => e.to_string(),
        Err(e) => panic!("not Corrupt: {e}"),
        Ok(_) => panic!("no error"),
    }
}

#[test]
fn an_encrypted_file_is_listed_but_not_opened() {
    let n = record_of("sizes/4k");
    let mut img = image();
    let si = attr_at(&img, record_at(&img, n), 0x10);
    let value = si + u16::from_le_bytes([img[si + 0x14], img[si + 0x15]]) as usize;
    img[value + 32 + 1] |= 0x40; // FILE_ATTRIBUTE_ENCRYPTED (0x4000)
    let fs = open(img, false).expect("open");
    let ino = resolve(&fs, "sizes/4k");
    assert_eq!(fs.metadata(ino).expect("metadata").size, 4096);
    assert!(matches!(fs.open(ino), Err(FsError::Encrypted { .. })));
    // Listed but unreadable by design: still a conforming filesystem.
    assert!(check_invariants(&fs).is_ok());
}

#[test]
fn bytes_past_the_valid_data_length_read_as_zeros() {
    let n = record_of("sizes/4k1");
    let pristine = image();
    let mut img = pristine.clone();
    let data = attr_at(&img, record_at(&img, n), 0x80);
    assert_eq!(img[data + 8], 1, "non-resident");
    img[data + 0x38..data + 0x40].copy_from_slice(&100u64.to_le_bytes());
    let want = {
        let fs = open(pristine, false).expect("open");
        read_all(&fs, resolve(&fs, "sizes/4k1"))
    };
    let fs = open(img, false).expect("open");
    let got = read_all(&fs, resolve(&fs, "sizes/4k1"));
    assert_eq!(got.len(), 4097);
    assert_eq!(&got[..100], &want[..100]);
    assert!(got[100..].iter().all(|&b| b == 0));
}

#[test]
fn a_damaged_boot_sector_is_a_named_error() {
    let mut img = image();
    img[0x0B] = 0;
    img[0x0C] = 0;
    // The backup in the last sector takes over, with a warning.
    let fs = open(img.clone(), false).expect("open from the backup");
    let w = fs.info().warnings.join("\n");
    assert!(
        w.contains("backup") && w.contains("NTFS boot sector"),
        "{w}"
    );
    check_invariants(&fs).expect("invariants");
    let last = img.len() - 512;
    img[last + 3] = b'X';
    let e = corrupt_text(open(img, false));
    assert!(e.contains("NTFS boot sector"), "{e}");
}

#[test]
fn a_torn_mft_record_is_a_named_error() {
    let n = record_of("sizes/4k1");
    let mut img = image();
    let at = record_at(&img, n);
    img[at + 1022] ^= 0xFF;
    let fs = open(img, false).expect("open");
    let sizes = resolve(&fs, "sizes");
    let e = corrupt_text(fs.read_dir(sizes));
    assert!(
        e.contains(&format!("NTFS MFT record {n}")) && e.contains("torn"),
        "{e}"
    );
    // $MFT's own record.
    let mut img = image();
    let at = record_at(&img, 0);
    img[at + 510] ^= 0xFF;
    let e = corrupt_text(open(img, false));
    assert!(e.contains("NTFS MFT record 0"), "{e}");
}

#[test]
fn damaged_index_blocks_are_named_errors() {
    let mut img = image();
    let mut hit = 0;
    for at in (0..img.len()).step_by(4096) {
        if &img[at..at + 4] == b"INDX" {
            img[at + 510] ^= 0xFF;
            hit += 1;
        }
    }
    assert!(hit > 3, "{hit} index blocks");
    let fs = open(img.clone(), false).expect("open");
    let err = walk(&fs, &mut |_, _| Ok(())).expect_err("torn blocks");
    let FsError::Corrupt { offset, .. } = &err else {
        panic!("not Corrupt: {err}");
    };
    // The offset is the block's place in the volume.
    assert_eq!(&img[*offset as usize..*offset as usize + 4], b"INDX");
    let e = err.to_string();
    assert!(e.contains("NTFS index block") && e.contains("torn"), "{e}");
}

#[test]
fn runs_outside_the_volume_and_overflowing_attributes_are_named_errors() {
    let n = record_of("sizes/4k1");
    let mut img = image();
    let data = attr_at(&img, record_at(&img, n), 0x80);
    let pairs = data + u16::from_le_bytes([img[data + 0x20], img[data + 0x21]]) as usize;
    img[pairs..pairs + 7].copy_from_slice(&[0x41, 0x02, 0xFF, 0xFF, 0xFF, 0x7F, 0x00]);
    let fs = open(img, false).expect("open");
    let e = corrupt_text(fs.open(resolve(&fs, "sizes/4k1")));
    assert!(e.contains("outside the volume"), "{e}");

    let mut img = image();
    let data = attr_at(&img, record_at(&img, n), 0x80);
    img[data + 4..data + 8].copy_from_slice(&0x1000u32.to_le_bytes());
    let fs = open(img, false).expect("open");
    let sizes = resolve(&fs, "sizes");
    let e = corrupt_text(fs.read_dir(sizes));
    assert!(
        e.contains(&format!("NTFS MFT record {n} attribute")) && e.contains("overflows"),
        "{e}"
    );
}

#[test]
fn a_damaged_attribute_list_is_a_named_error() {
    let n = record_of("fragmented.bin");
    let pristine = image();
    let list = attr_at(&pristine, record_at(&pristine, n), 0x20);
    assert_eq!(pristine[list + 8], 1, "the list is non-resident");
    let at = first_lcn(&pristine, list) as usize * 4096;
    let len = u64_at(&pristine, list + 0x30) as usize;
    // Every entry pointing back at the base record: a loop that drops the
    // extents held elsewhere.
    let mut img = pristine.clone();
    let mut e = at;
    while e < at + len {
        let elen = u16::from_le_bytes([img[e + 4], img[e + 5]]) as usize;
        img[e + 0x10..e + 0x16].copy_from_slice(&u64::from(n).to_le_bytes()[..6]);
        e += elen;
    }
    let fs = open(img, false).expect("open");
    let err = corrupt_text(fs.open(resolve(&fs, "fragmented.bin")));
    assert!(err.contains(&format!("NTFS MFT record {n}")), "{err}");
    // An entry pointing at another file's record.
    let mut img = pristine.clone();
    let last = {
        let mut e = at;
        let mut last = at;
        while e < at + len && img[e + 4] != 0 {
            last = e;
            e += u16::from_le_bytes([img[e + 4], img[e + 5]]) as usize;
        }
        last
    };
    img[last + 0x10..last + 0x16].copy_from_slice(&5u64.to_le_bytes()[..6]);
    let fs = open(img, false).expect("open");
    let root = fs.read_dir(fs.root());
    let err = corrupt_text(root);
    assert!(err.contains("belongs to record"), "{err}");
}

#[test]
fn lznt1_garbage_is_an_error_not_wrong_bytes() {
    let n = record_of("compressed/text.txt");
    let mut img = image();
    let data = attr_at(&img, record_at(&img, n), 0x80);
    let lcn = first_lcn(&img, data) as usize;
    img[lcn * 4096..lcn * 4096 + 4096].fill(0xFF);
    let fs = open(img, false).expect("open");
    let src = fs.open(resolve(&fs, "compressed/text.txt")).expect("open");
    let mut b = vec![0u8; 100];
    let e = src.read_exact_at(0, &mut b).expect_err("garbage");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("LZNT1"), "{e}");
}

#[test]
fn concurrent_readers_agree() {
    let fs = Arc::new(open(image(), true).expect("open"));
    let paths = [
        "compressed/text.txt",
        "compressed/odd.bin",
        "fragmented.bin",
        "streams/4k.bin:bigstream",
    ];
    let wholes: Vec<(Ino, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            let ino = resolve(&*fs, p);
            (ino, read_all(&*fs, ino))
        })
        .collect();
    let wholes = Arc::new(wholes);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (fs, wholes) = (fs.clone(), wholes.clone());
            std::thread::spawn(move || {
                let mut x = 0x2545_F491_4F6C_DD1Du64 ^ t;
                for i in 0..300 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (ino, whole) = &wholes[(x as usize + i) % wholes.len()];
                    // A fresh open half the time: caches filled from many threads.
                    let src = fs.open(*ino).expect("open");
                    let off = x % whole.len() as u64;
                    let len = ((x >> 20) % 50_000) as usize;
                    let mut buf = vec![0u8; len];
                    let n = src.read_at(off, &mut buf).expect("read");
                    let want = &whole[off as usize..(off as usize + len).min(whole.len())];
                    assert_eq!(&buf[..n], want);
                    let _ = fs.metadata(*ino).expect("metadata");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}

/// Removes a record's update sequence (test side, independent of the
/// reader): the saved values back into each 512-byte block's last bytes.
fn unfix(rec: &mut [u8]) {
    let usa = u16::from_le_bytes([rec[4], rec[5]]) as usize;
    let count = u16::from_le_bytes([rec[6], rec[7]]) as usize;
    for i in 1..count {
        let end = i * 512 - 2;
        rec[end] = rec[usa + 2 * i];
        rec[end + 1] = rec[usa + 2 * i + 1];
    }
}

/// Puts an update sequence (number 0x4242) back.
fn refix(rec: &mut [u8]) {
    let usa = u16::from_le_bytes([rec[4], rec[5]]) as usize;
    let count = u16::from_le_bytes([rec[6], rec[7]]) as usize;
    rec[usa..usa + 2].copy_from_slice(&[0x42, 0x42]);
    for i in 1..count {
        let end = i * 512 - 2;
        rec[usa + 2 * i] = rec[end];
        rec[usa + 2 * i + 1] = rec[end + 1];
        rec[end..end + 2].copy_from_slice(&[0x42, 0x42]);
    }
}

/// An attribute-list entry: `type_code` from `vcn` lives in `record`.
fn list_entry(type_code: u32, vcn: u64, record: u64, instance: u16) -> Vec<u8> {
    let mut e = vec![0u8; 0x20];
    e[0..4].copy_from_slice(&type_code.to_le_bytes());
    e[4..6].copy_from_slice(&0x20u16.to_le_bytes());
    e[7] = 0x1A;
    e[8..16].copy_from_slice(&vcn.to_le_bytes());
    e[16..24].copy_from_slice(&(record | 1 << 48).to_le_bytes());
    e[24..26].copy_from_slice(&instance.to_le_bytes());
    e
}

/// $MFT made fragmented by hand: its clusters from VCN 16 on moved to the
/// end of the volume (the old ones zeroed), that extent described by an
/// extension record (13) which record 0's new $ATTRIBUTE_LIST names. The
/// reader must find records past the first 16 clusters through it.
#[test]
fn a_fragmented_mft_with_an_attribute_list() {
    let pristine = image();
    let mut img = pristine.clone();
    let cluster = 4096usize;
    let mft = u64_at(&img, 0x30) as usize * cluster;
    let mut rec0 = img[mft..mft + 1024].to_vec();
    unfix(&mut rec0);
    let data = attr_at(&rec0, 0, 0x80);
    let pairs = data + u16::from_le_bytes([rec0[data + 0x20], rec0[data + 0x21]]) as usize;
    assert_eq!(u64_at(&rec0, data + 0x10), 0);
    let total = u64_at(&rec0, data + 0x18) as usize + 1;
    let lcn = first_lcn(&rec0, data) as usize;
    assert_eq!(lcn * cluster, mft, "one extent at the boot sector's LCN");
    let split = 16usize;
    // A free run of clusters, from $Bitmap (record 6).
    let bm = attr_at(&img, record_at(&img, 6), 0x80);
    let bm_at = first_lcn(&img, bm) as usize * cluster;
    let bm_len = u64_at(&img, bm + 0x30) as usize;
    let used = |c: usize| img[bm_at + c / 8] & (1 << (c % 8)) != 0;
    let need = total - split;
    let mut dest = bm_len * 8 - need - 2;
    while (dest..dest + need).any(used) {
        dest -= 1;
    }
    let moved = (lcn + split) * cluster..(lcn + total) * cluster;
    img.copy_within(moved.clone(), dest * cluster);
    img[moved].fill(0);

    // Record 0: the first extent only (VCN 0..=15).
    rec0[data + 0x18..data + 0x20].copy_from_slice(&(split as u64 - 1).to_le_bytes());
    let attr_end =
        data + u32::from_le_bytes(rec0[data + 4..data + 8].try_into().expect("4")) as usize;
    rec0[pairs..attr_end].fill(0);
    rec0[pairs..pairs + 4].copy_from_slice(&[0x11, split as u8, lcn as u8, 0]);
    // A resident $ATTRIBUTE_LIST inserted after $STANDARD_INFORMATION.
    let mut list = Vec::new();
    list.extend(list_entry(0x10, 0, 0, 0));
    list.extend(list_entry(0x30, 0, 0, 1));
    list.extend(list_entry(0x80, 0, 0, 2));
    list.extend(list_entry(0x80, split as u64, 13, 0));
    list.extend(list_entry(0xB0, 0, 0, 3));
    let mut al = vec![0u8; 0x18];
    al[0..4].copy_from_slice(&0x20u32.to_le_bytes());
    al[4..8].copy_from_slice(&((0x18 + list.len()) as u32).to_le_bytes());
    al[0x0E] = 9;
    al[0x10..0x14].copy_from_slice(&(list.len() as u32).to_le_bytes());
    al[0x14..0x16].copy_from_slice(&0x18u16.to_le_bytes());
    al.extend(list);
    let si = attr_at(&rec0, 0, 0x10);
    let after_si = si + u32::from_le_bytes(rec0[si + 4..si + 8].try_into().expect("4")) as usize;
    let used = u32::from_le_bytes(rec0[0x18..0x1C].try_into().expect("4")) as usize;
    let mut body = rec0[..after_si].to_vec();
    body.extend(&al);
    body.extend(&rec0[after_si..used]);
    assert!(body.len() <= 1024 - 8, "record 0 has no room");
    let new_used = (body.len() as u32).to_le_bytes();
    rec0[..body.len()].copy_from_slice(&body);
    rec0[0x18..0x1C].copy_from_slice(&new_used);
    // A variant whose list names the largest record number there is.
    let mut huge = rec0.clone();
    let entry4 = after_si + 0x18 + 3 * 0x20;
    assert_eq!(huge[entry4 + 0x10], 13);
    huge[entry4 + 0x10..entry4 + 0x16].fill(0xFF);
    refix(&mut huge);
    refix(&mut rec0);
    img[mft..mft + 1024].copy_from_slice(&rec0);

    // Record 13: an extension record of record 0 holding VCN 16 on.
    let mut ext = vec![0u8; 1024];
    ext[..4].copy_from_slice(b"FILE");
    ext[4..6].copy_from_slice(&0x30u16.to_le_bytes());
    ext[6..8].copy_from_slice(&3u16.to_le_bytes());
    ext[0x10..0x12].copy_from_slice(&1u16.to_le_bytes());
    ext[0x14..0x16].copy_from_slice(&0x38u16.to_le_bytes());
    ext[0x16..0x18].copy_from_slice(&1u16.to_le_bytes());
    ext[0x1C..0x20].copy_from_slice(&1024u32.to_le_bytes());
    ext[0x20..0x28].copy_from_slice(&(1u64 << 48).to_le_bytes());
    ext[0x2C..0x30].copy_from_slice(&13u32.to_le_bytes());
    let a = 0x38;
    let mut pairs = vec![0x32u8];
    pairs.extend_from_slice(&((total - split) as u16).to_le_bytes());
    pairs.extend_from_slice(&(dest as u32).to_le_bytes()[..3]);
    pairs.push(0);
    let alen = (0x40 + pairs.len()).next_multiple_of(8);
    ext[a..a + 4].copy_from_slice(&0x80u32.to_le_bytes());
    ext[a + 4..a + 8].copy_from_slice(&(alen as u32).to_le_bytes());
    ext[a + 8] = 1;
    ext[a + 0x10..a + 0x18].copy_from_slice(&(split as u64).to_le_bytes());
    ext[a + 0x18..a + 0x20].copy_from_slice(&(total as u64 - 1).to_le_bytes());
    ext[a + 0x20..a + 0x22].copy_from_slice(&0x40u16.to_le_bytes());
    ext[a + 0x40..a + 0x40 + pairs.len()].copy_from_slice(&pairs);
    ext[a + alen..a + alen + 4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    ext[0x18..0x1C].copy_from_slice(&((a + alen + 8) as u32).to_le_bytes());
    refix(&mut ext);
    img[mft + 13 * 1024..mft + 14 * 1024].copy_from_slice(&ext);

    let mut bad = img.clone();
    bad[mft..mft + 1024].copy_from_slice(&huge);
    let e = corrupt_text(open(bad, false));
    assert!(e.contains("lies outside"), "{e}");

    let want = tree(&open(pristine.clone(), true).expect("open"));
    let fs = open(img, true).expect("open the fragmented $MFT");
    check_invariants(&fs).expect("invariants");
    let got = tree(&fs);
    assert_eq!(got, want);
    let old = open(pristine, false).expect("open");
    for path in [
        "fragmented.bin",
        "compressed/text.txt",
        "bigdir/entry_2999_with_a_longer_name.txt",
    ] {
        assert_eq!(
            read_all(&fs, resolve(&fs, path)),
            read_all(&old, resolve(&old, path)),
            "{path}"
        );
    }
}

/// $MFT's run list moved by one cluster: every record is read from the
/// wrong place, which each record's own number reveals.
#[test]
fn a_misplaced_mft_is_an_error_not_other_files() {
    let mut img = image();
    let mft = u64_at(&img, 0x30) as usize * 4096;
    let mut rec0 = img[mft..mft + 1024].to_vec();
    unfix(&mut rec0);
    let data = attr_at(&rec0, 0, 0x80);
    let pairs = data + u16::from_le_bytes([rec0[data + 0x20], rec0[data + 0x21]]) as usize;
    let h = rec0[pairs];
    let (ls, os) = ((h & 0xF) as usize, (h >> 4) as usize);
    assert!(os >= 1);
    rec0[pairs + 1 + ls] += 1; // the first run's LCN, one cluster on
    refix(&mut rec0);
    img[mft..mft + 1024].copy_from_slice(&rec0);
    let e = corrupt_text(open(img, false));
    assert!(e.contains("says it is record"), "{e}");
}

#[test]
fn detected_and_opened_through_fs_open() {
    use vaultfs_formats::fs::{FsKind, detect, has_reader};
    let src: Source = Arc::new(MemSource::new(image()));
    assert_eq!(detect(&*src).expect("detect"), Some(FsKind::Ntfs));
    assert!(has_reader(FsKind::Ntfs));
    let fs = vaultfs_formats::fs::open(FsKind::Ntfs, src, &FsOptions::default()).expect("open");
    let info = fs.info();
    assert_eq!(
        (info.kind, info.block_size, info.size),
        (FsKind::Ntfs, 4096, (40 << 20) - 512)
    );
    // (The last sector, the backup boot sector, lies outside the volume.)
    assert_eq!(info.serial.map(|s| s.len()), Some(16));
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
}

/// The volume with 4096-byte sectors (`images/ntfs.sh 4k`): 4 KiB MFT
/// records protected by eight fixup blocks, 4 KiB index blocks.
#[test]
fn a_volume_with_4k_sectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs");
    let raw = zstd::decode_all(
        std::fs::read(dir.join("ntfs4k.img.zst"))
            .expect("image")
            .as_slice(),
    )
    .expect("zstd");
    let want: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(dir.join("ntfs4k.manifest.json")).expect("manifest"))
            .expect("json");
    let fs = open(raw, false).expect("open");
    assert_eq!(fs.info().block_size, 4096);
    check_invariants(&fs).expect("invariants");
    let mut got = BTreeMap::new();
    walk(&fs, &mut |path, e| {
        if e.kind == FileKind::File {
            got.insert(path.to_string(), sha(&read_all(&fs, e.ino)));
        }
        Ok(())
    })
    .expect("walk");
    assert_eq!(got, want);
    let c = resolve(&fs, "c/text.txt");
    let d: BTreeMap<String, String> = fs.details(c).expect("details").into_iter().collect();
    assert!(d["data.flags"].contains("compressed"), "{d:?}");
}

/// `unused()` against ntfs-3g's `ntfsinfo -m` "Free Clusters" (libntfs
/// counts the clear bits of $Bitmap): the same number of free bytes, in
/// ascending, merged, cluster-aligned ranges.
#[test]
fn unused_space_matches_ntfsinfo() {
    for name in ["ntfs", "ntfs4k"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../images/fs/{name}.img.zst"));
        let bytes = zstd::decode_all(std::fs::read(&p).expect("image").as_slice()).expect("zstd");
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("vol.img");
        std::fs::write(&img, &bytes).expect("write");
        let out = std::process::Command::new("ntfsinfo")
            .arg("-m")
            .arg(&img)
            .output()
            .expect("ntfsinfo (Debian: ntfs-3g)");
        assert!(out.status.success(), "ntfsinfo {name}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str| -> u64 {
            let line = text
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .unwrap_or_else(|| panic!("{key} in ntfsinfo's output: {text}"));
            line.split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .expect("number")
        };
        let free = field("Free Clusters:");
        let cluster = field("Cluster Size:");
        let fs = open(bytes, false).expect("open");
        let mut total = 0;
        let mut last_end = 0;
        fs.unused(&mut |r| {
            assert!(
                r.start > last_end || last_end == 0,
                "{name}: {r:?} after {last_end}"
            );
            assert!(r.start % cluster == 0 && r.end % cluster == 0);
            last_end = r.end;
            total += r.end - r.start;
        })
        .expect("unused");
        assert_eq!(total, free * cluster, "{name}: free bytes");
    }
}
