//! The ext2/3/4 reader on real images made by `images/ext.sh` (mke2fs -d
//! from a source tree): the conformance check, the tree against the
//! manifest written from the source side, random reads against the
//! self-describing content, and damaged copies that must give named errors
//! (never a panic, a hang or wrong bytes).

mod linux_tree;

use linux_tree::{content, expected, read_all};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use sha2::{Digest, Sha256};
use vaultfs_formats::fs::{
    FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, check_invariants, walk,
};
use vaultfs_formats::io::{MemSource, ReadAt, Source};

fn images() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/fs")
}

/// The decompressed image `name` (`ext2-1k`, `ext4`, ...), once per process.
fn image(name: &str) -> Arc<MemSource> {
    static IMAGES: OnceLock<std::sync::Mutex<HashMap<String, Arc<MemSource>>>> = OnceLock::new();
    let map = IMAGES.get_or_init(Default::default);
    let mut map = map.lock().expect("lock");
    map.entry(name.to_string())
        .or_insert_with(|| {
            let z = std::fs::read(images().join(format!("{name}.img.zst"))).expect("image");
            Arc::new(MemSource::new(zstd::decode_all(&z[..]).expect("zstd")))
        })
        .clone()
}

fn manifest(name: &str) -> Value {
    let z = std::fs::read(images().join(format!("{name}.manifest.json.zst"))).expect("manifest");
    serde_json::from_slice(&zstd::decode_all(&z[..]).expect("zstd")).expect("json")
}

fn open(src: Source) -> Result<Arc<dyn Filesystem>, FsError> {
    vaultfs_formats::fs::open(FsKind::Ext4, src, &FsOptions::default())
}

fn compare_with_manifest(name: &str) -> usize {
    let fs = open(image(name)).expect("open");
    linux_tree::compare_with_manifest(&*fs, name, &manifest(name))
}

const IMAGES: [&str; 9] = [
    "ext2-1k",
    "ext3",
    "ext4",
    "ext4-inline",
    "ext4-old",
    "ext4-deep",
    "ext4-64k",
    "ext2-triple",
    "ext4-cluster",
];

fn lookup(fs: &dyn Filesystem, path: &str) -> Ino {
    let mut ino = fs.root();
    for part in path.split('/') {
        ino = fs.lookup(ino, part).expect("lookup").expect(path).ino;
    }
    ino
}

#[test]
fn every_image_keeps_the_invariants_and_matches_its_manifest() {
    for name in IMAGES {
        let fs = open(image(name)).expect(name);
        let n = check_invariants(&*fs).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = manifest(name)["entries"].as_array().expect("entries").len();
        assert_eq!(n, want, "{name}");
        assert_eq!(compare_with_manifest(name), want, "{name}");
        let info = fs.info();
        assert_eq!(info.label.as_deref(), Some(format!("vfs-{name}").as_str()));
        assert_eq!(
            info.serial.as_deref(),
            Some("5c0ffee5-0000-4000-8000-0000000000e4")
        );
        let kind = match name {
            "ext2-1k" | "ext2-triple" => FsKind::Ext2,
            "ext3" => FsKind::Ext3,
            _ => FsKind::Ext4,
        };
        assert_eq!(info.kind, kind, "{name}");
        if name == "ext3" {
            // debugfs set needs_recovery over a clean journal (dumpe2fs:
            // "Journal start: 0"): nothing to replay, and said so.
            assert!(
                info.warnings
                    .iter()
                    .any(|w| w.contains("holds no transaction: nothing to replay")),
                "{:?}",
                info.warnings
            );
        } else {
            assert!(info.warnings.is_empty(), "{name}: {:?}", info.warnings);
        }
    }
}

#[test]
fn sizes_of_the_big_directories() {
    let fs = open(image("ext4")).expect("open");
    assert_eq!(fs.read_dir(lookup(&*fs, "htree")).expect("dir").len(), 3000);
    let fs = open(image("ext4-deep")).expect("open");
    assert_eq!(
        fs.read_dir(lookup(&*fs, "htree")).expect("dir").len(),
        10000
    );
}

#[test]
fn nanoseconds_epoch_bits_and_crtime() {
    for name in ["ext2-1k", "ext4", "ext4-deep"] {
        let fs = open(image(name)).expect("open");
        let m = fs.metadata(lookup(&*fs, "sizes/s1")).expect("meta");
        assert_eq!(m.mtime.nanos, 123_456_789, "{name}");
        let m = fs.metadata(lookup(&*fs, "sizes/s60")).expect("meta");
        assert_eq!(
            (m.mtime.secs, m.mtime.nanos),
            (0x1234_5678 + (1 << 32), 5),
            "{name}"
        );
        assert!(m.crtime.is_some(), "{name}: 256-byte inodes record crtime");
    }
    // 128-byte inodes: whole seconds, no creation time.
    let fs = open(image("ext4-old")).expect("open");
    let m = fs.metadata(lookup(&*fs, "sizes/s1")).expect("meta");
    assert_eq!((m.mtime.nanos, m.crtime), (0, None));
    assert_eq!(fs.info().block_size, 2048);
}

#[test]
fn random_reads_match_the_source_bytes() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for name in IMAGES {
        let fs = open(image(name)).expect("open");
        let m = manifest(name);
        for e in m["entries"].as_array().expect("entries") {
            let (Some(size), Some(path)) = (e["size"].as_u64(), e["path"].as_str()) else {
                continue;
            };
            if e["type"] != "file" || size == 0 || path.starts_with("htree/") {
                continue;
            }
            let src = fs.open(lookup(&*fs, path)).expect("open");
            for _ in 0..20 {
                let off = next() % size;
                let len = (next() % 9000) as usize;
                let mut buf = vec![0xA5u8; len];
                let n = src.read_at(off, &mut buf).expect("read");
                assert_eq!(
                    n as u64,
                    len.min((size - off) as usize) as u64,
                    "{name}:{path}"
                );
                assert_eq!(
                    &buf[..n],
                    &expected(e, off, n)[..],
                    "{name}:{path} at {off}"
                );
            }
        }
    }
}

#[test]
fn layouts_are_the_intended_ones() {
    let detail = |fs: &dyn Filesystem, path: &str| {
        let d = fs.details(lookup(fs, path)).expect("details");
        d.iter()
            .find(|(k, _)| k == "ext.layout")
            .expect("layout")
            .1
            .clone()
    };
    let fs = open(image("ext2-1k")).expect("open");
    assert_eq!(detail(&*fs, "sizes/s1m"), "blockmap");
    let fs = open(image("ext4-inline")).expect("open");
    assert_eq!(detail(&*fs, "inline/small1"), "inline");
    assert_eq!(detail(&*fs, "inline/tinydir"), "inline");
    assert_eq!(detail(&*fs, "links/mid"), "inline");
    assert_eq!(
        fs.read_link(lookup(&*fs, "links/mid")).expect("link").len(),
        80
    );
    let fs = open(image("ext4-deep")).expect("open");
    assert_eq!(detail(&*fs, "frag/deep"), "extents");
}

#[test]
fn block_sizes_clusters_and_the_triple_indirect_range() {
    let fs = open(image("ext4-64k")).expect("open");
    assert_eq!(fs.info().block_size, 65536);
    // bigalloc: 4 KiB blocks in 16 KiB clusters (ext.sh checks with
    // dumpe2fs); extents still count blocks.
    let fs = open(image("ext4-cluster")).expect("open");
    assert_eq!(fs.info().block_size, 4096);
    // Every written segment of the 70 MiB sparse file, with 3000 bytes of
    // each side: ext.sh checked with debugfs that the map uses the TIND.
    let fs = open(image("ext2-triple")).expect("open");
    let m = manifest("ext2-triple");
    let e = m["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["path"] == "triple/sparse")
        .expect("triple/sparse");
    let src = fs.open(lookup(&*fs, "triple/sparse")).expect("open");
    let size = e["size"].as_u64().expect("size");
    assert!(
        size > 65804 * 1024,
        "the file reaches the triple-indirect range"
    );
    let segs = e["segments"].as_array().expect("segments");
    assert_eq!(segs.len(), 6);
    for s in segs {
        let (off, len) = (s[0].as_u64().expect("off"), s[1].as_u64().expect("len"));
        let start = off.saturating_sub(3000);
        let end = (off + len + 3000).min(size);
        let mut buf = vec![0xA5u8; (end - start) as usize];
        src.read_exact_at(start, &mut buf).expect("read");
        assert_eq!(buf, expected(e, start, buf.len()), "at {off}");
        assert!(buf.iter().any(|&b| b != 0));
    }
    let d = fs.details(lookup(&*fs, "triple/sparse")).expect("details");
    assert!(d.iter().any(|(k, v)| k == "ext.layout" && v == "blockmap"));
}

#[test]
fn the_reader_is_shared_between_threads() {
    let fs = open(image("ext4-deep")).expect("open");
    std::thread::scope(|s| {
        for t in 0..4 {
            let fs = fs.clone();
            s.spawn(move || {
                let src = fs.open(lookup(&*fs, "frag/deep")).expect("open");
                let mut buf = vec![0u8; 1024];
                for k in 0..600u64 {
                    let off = ((k * 7 + t) % 600) * 2048;
                    src.read_exact_at(off, &mut buf).expect("read");
                    assert_eq!(buf, content("frag/deep", off, 1024));
                }
            });
        }
    });
}

/// A copy of `name` with `f` applied to its bytes, then opened and walked
/// with every file read: the first error, which must exist.
fn damaged(name: &str, f: impl FnOnce(&mut Vec<u8>, &dyn Filesystem)) -> FsError {
    let img = image(name);
    let mut bytes = vec![0u8; img.len() as usize];
    img.read_exact_at(0, &mut bytes).expect("read");
    {
        let fs = open(img.clone()).expect("open");
        f(&mut bytes, &*fs);
    }
    let fs = match open(Arc::new(MemSource::new(bytes))) {
        Ok(fs) => fs,
        Err(e) => return e,
    };
    let r = walk(&*fs, &mut |_, e| {
        if e.kind == FileKind::File {
            let src = fs.open(e.ino)?;
            let mut buf = vec![0u8; src.len() as usize];
            src.read_exact_at(0, &mut buf)?;
        }
        Ok(())
    });
    r.expect_err("the damage must be noticed")
}

/// The byte offset of `path`'s inode (from `details`).
fn inode_offset(fs: &dyn Filesystem, path: &str) -> usize {
    let d = fs.details(lookup(fs, path)).expect("details");
    let v = &d
        .iter()
        .find(|(k, _)| k == "ext.inode_offset")
        .expect("offset")
        .1;
    usize::from_str_radix(v.trim_start_matches("0x"), 16).expect("hex")
}

#[test]
fn damage_gives_named_errors() {
    // Superblock magic.
    let e = damaged("ext4", |b, _| b[1024 + 0x38] = 0);
    assert!(e.to_string().contains("bad magic"), "{e}");
    // Superblock checksum.
    let e = damaged("ext4", |b, _| b[1024 + 0x78] ^= 1);
    assert!(
        e.to_string().contains("ext superblock") && e.to_string().contains("checksum"),
        "{e}"
    );
    // Group descriptor 0 (4 KiB blocks: block 1).
    let e = damaged("ext4", |b, _| b[4096 + 0x10] ^= 1);
    assert!(
        e.to_string().contains("ext4 group descriptor 0")
            && e.to_string().contains("checksum mismatch"),
        "{e}"
    );
    // An inode's checksum.
    let e = damaged("ext4", |b, fs| {
        let at = inode_offset(fs, "sizes/s4096");
        b[at + 0x8] ^= 1; // atime
    });
    assert!(
        e.to_string().contains("ext4 inode") && e.to_string().contains("checksum mismatch"),
        "{e}"
    );
    // A directory leaf block's checksum (the htree dir's second block).
    let e = damaged("ext4", |b, fs| {
        let src = fs.open(lookup(fs, "sizes/s4096")).expect("open");
        let _ = src;
        let d = lookup(fs, "htree");
        let blocks = dir_blocks(fs, d);
        let at = blocks[1] as usize * 4096 + 20;
        b[at] ^= 1;
    });
    assert!(
        e.to_string().contains("ext4 directory") && e.to_string().contains("checksum mismatch"),
        "{e}"
    );
    // An extent block's header magic (frag/deep's depth-1 nodes).
    let e = damaged("ext4-deep", |b, fs| {
        let at = inode_offset(fs, "frag/deep") + 0x28 + 12 + 4; // first index: its child
        let child = u32::from_le_bytes(b[at..at + 4].try_into().expect("4")) as usize;
        b[child * 1024] = 0;
    });
    assert!(e.to_string().contains("extent header magic"), "{e}");
    // The same without metadata_csum to catch it: ext2's indirect pointer
    // pointing outside the filesystem.
    let e = damaged("ext2-1k", |b, fs| {
        let at = inode_offset(fs, "sizes/s1m") + 0x28 + 13 * 4;
        b[at..at + 4].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    });
    assert!(e.to_string().contains("outside the filesystem"), "{e}");
    // A group descriptor's CRC-16 (uninit_bg, 2 KiB blocks: block 1).
    let e = damaged("ext4-old", |b, _| b[2048 + 0x8] ^= 1);
    assert!(
        e.to_string().contains("ext4 group descriptor 0")
            && e.to_string().contains("checksum mismatch"),
        "{e}"
    );
    // An unknown INCOMPAT feature on a filesystem without checksums.
    let e = damaged("ext2-1k", |b, _| b[1024 + 0x62] |= 0x80);
    assert!(matches!(e, FsError::Unsupported { .. }), "{e}");
}

/// The volume blocks of directory `d` (by reading through its data).
fn dir_blocks(fs: &dyn Filesystem, d: Ino) -> Vec<u64> {
    let _ = fs;
    let _ = d;
    // Found by the test image layout: read the inode's extent root.
    let det = fs.details(d).expect("details");
    let off = det
        .iter()
        .find(|(k, _)| k == "ext.inode_offset")
        .expect("offset")
        .1
        .clone();
    let off = u64::from_str_radix(off.trim_start_matches("0x"), 16).expect("hex");
    let img = image("ext4");
    let mut ib = [0u8; 60];
    img.read_exact_at(off + 0x28, &mut ib).expect("read");
    assert_eq!(u16::from_le_bytes([ib[0], ib[1]]), 0xF30A);
    let mut ib = ib.to_vec();
    if u16::from_le_bytes([ib[6], ib[7]]) == 1 {
        // One index below the root: its leaf block holds the extents.
        let child = u64::from(u32::from_le_bytes(ib[16..20].try_into().expect("4")));
        ib = vec![0u8; 4096];
        img.read_exact_at(child * 4096, &mut ib).expect("read");
    }
    assert_eq!(u16::from_le_bytes([ib[6], ib[7]]), 0, "a leaf");
    let mut out = Vec::new();
    for i in 0..usize::from(u16::from_le_bytes([ib[2], ib[3]])) {
        let r = &ib[12 + 12 * i..24 + 12 * i];
        let len = u64::from(u16::from_le_bytes([r[4], r[5]]));
        let start = u64::from(u32::from_le_bytes(r[8..12].try_into().expect("4")))
            | u64::from(u16::from_le_bytes([r[6], r[7]])) << 32;
        out.extend(start..start + len);
    }
    out
}

/// The fuzz seeds (sparse-chunk volumes) open and walk.
#[test]
fn fuzz_seeds_open() {
    for name in ["ext2", "ext4"] {
        let vol = linux_tree::fuzz_seed_volume("ext", name);
        let fs = open(Arc::new(MemSource::new(vol))).expect("open seed");
        let n = check_invariants(&*fs).expect("invariants");
        assert!(n > 60, "{name}: {n} entries");
    }
}

#[test]
fn deleted_inodes_are_listed_where_their_map_survives() {
    // ext2 keeps a deleted file's block map: gone.txt (debugfs rm) comes
    // back with its bytes.
    let fs = open(image("ext2-1k")).expect("open");
    let m = manifest("ext2-1k");
    let gone = &m["deleted"][0];
    assert_eq!(gone["path"], "gone.txt");
    let del = fs.deleted().expect("deleted");
    assert_eq!(del.len(), 1, "{del:?}");
    let d = &del[0];
    assert!(d.path.starts_with("$OrphanFiles/OrphanFile-"), "{}", d.path);
    assert_eq!(d.meta.nlink, 0);
    assert_eq!(d.meta.size, gone["size"].as_u64().expect("size"));
    let data = read_all(&*fs, d.ino);
    let sum: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sum, gone["sha256"].as_str().expect("sha"));
    assert_eq!(fs.metadata(d.ino).expect("meta").ino, d.ino);
    // The number without the high bit is not in use.
    let plain = Ino(d.ino.0 & !(1 << 63));
    assert!(matches!(fs.metadata(plain), Err(FsError::NoInode(_))));
    // The others list without error; what they list opens or fails cleanly.
    for name in IMAGES {
        let fs = open(image(name)).expect("open");
        for d in fs.deleted().expect("deleted") {
            if d.meta.kind == FileKind::File {
                let _ = fs.open(d.ino);
            }
        }
    }
}

fn open_ignoring(src: Source) -> Result<Arc<dyn Filesystem>, FsError> {
    let opts = FsOptions {
        ignore_checksums: true,
        ..Default::default()
    };
    vaultfs_formats::fs::open(FsKind::Ext4, src, &opts)
}

/// A copy of image `name` with `f` applied to its bytes.
fn edited(name: &str, f: impl FnOnce(&mut Vec<u8>)) -> Source {
    let img = image(name);
    let mut bytes = vec![0u8; img.len() as usize];
    img.read_exact_at(0, &mut bytes).expect("read");
    f(&mut bytes);
    Arc::new(MemSource::new(bytes))
}

/// `e` is a checksum mismatch of `structure` at byte `offset`.
fn assert_checksum(e: FsError, structure: &str, offset: u64) {
    match &e {
        FsError::Checksum {
            structure: s,
            offset: o,
            ..
        } => assert_eq!((s.as_str(), *o), (structure, offset), "{e}"),
        other => panic!("not a checksum error: {other}"),
    }
    assert!(
        e.to_string().starts_with(&format!(
            "{structure} at byte {offset:#x}: checksum mismatch"
        )),
        "{e}"
    );
}

/// Image `name` with only a checksum damaged reads, with mismatches
/// ignored, as the manifest says, and warns of exactly one mismatch naming
/// `structure`.
fn reads_when_ignored(name: &str, src: Source, structure: &str) {
    let fs = open_ignoring(src).expect("open ignoring checksums");
    compare_with_manifest_of(&*fs, name);
    let w = fs.info().warnings;
    assert!(
        w.iter()
            .any(|w| w.starts_with("1 checksum mismatch ignored; ")
                && w.contains(&format!("{structure} at byte"))),
        "{w:?}"
    );
}

fn compare_with_manifest_of(fs: &dyn Filesystem, name: &str) {
    linux_tree::compare_with_manifest(fs, name, &manifest(name));
}

#[test]
fn a_directory_block_checksum_mismatch_is_named_and_can_be_ignored() {
    let fs = open(image("ext4")).expect("open");
    let d = lookup(&*fs, "sizes");
    let block = dir_blocks(&*fs, d)[0];
    // The last byte of the block: the checksum in its tail record.
    let src = edited("ext4", |b| b[block as usize * 4096 + 4095] ^= 0x40);
    let structure = format!("ext4 directory {d} block 0");
    let strict = open(src.clone()).expect("open");
    assert_checksum(
        strict.read_dir(d).expect_err("mismatch"),
        &structure,
        block * 4096,
    );
    // The other directories still read.
    assert!(strict.read_dir(lookup(&*strict, "dev")).is_ok());
    reads_when_ignored("ext4", src, &structure);
}

#[test]
fn an_inode_checksum_mismatch_is_named_and_can_be_ignored() {
    let fs = open(image("ext4")).expect("open");
    let ino = lookup(&*fs, "sizes/s4096");
    let at = inode_offset(&*fs, "sizes/s4096");
    // The low half of i_checksum.
    let src = edited("ext4", |b| b[at + 0x7C] ^= 1);
    let structure = format!("ext4 inode {ino}");
    let strict = open(src.clone()).expect("open");
    assert_checksum(
        strict.metadata(ino).expect_err("mismatch"),
        &structure,
        at as u64,
    );
    assert_checksum(
        strict.open(ino).err().expect("mismatch"),
        &structure,
        at as u64,
    );
    reads_when_ignored("ext4", src, &structure);
}

#[test]
fn an_extent_block_checksum_mismatch_is_named_and_can_be_ignored() {
    let fs = open(image("ext4-deep")).expect("open");
    let ino = lookup(&*fs, "frag/deep");
    let at = inode_offset(&*fs, "frag/deep") + 0x28 + 12 + 4; // first index: its child
    let img = image("ext4-deep");
    let mut child = [0u8; 4];
    img.read_exact_at(at as u64, &mut child).expect("read");
    let child = u64::from(u32::from_le_bytes(child));
    let mut head = [0u8; 12];
    img.read_exact_at(child * 1024, &mut head).expect("read");
    // The tail follows eh_max records.
    let tail = 12 + 12 * usize::from(u16::from_le_bytes([head[4], head[5]]));
    let src = edited("ext4-deep", |b| b[child as usize * 1024 + tail + 1] ^= 1);
    let structure = format!("ext4 inode {ino} extent block {child}");
    let strict = open(src.clone()).expect("open");
    assert_checksum(
        strict.open(ino).err().expect("mismatch"),
        &structure,
        child * 1024,
    );
    reads_when_ignored("ext4-deep", src, &structure);
}

#[test]
fn superblock_and_group_descriptor_mismatches_can_be_ignored() {
    // s_checksum itself, then group descriptor 0's bg_checksum.
    let src = edited("ext4", |b| b[1024 + 0x3FC] ^= 1);
    assert_checksum(
        open(src.clone()).err().expect("mismatch"),
        "ext superblock",
        1024,
    );
    reads_when_ignored("ext4", src, "ext superblock");
    let src = edited("ext4", |b| b[4096 + 0x1E] ^= 1);
    assert_checksum(
        open(src.clone()).err().expect("mismatch"),
        "ext4 group descriptor 0",
        4096,
    );
    reads_when_ignored("ext4", src, "ext4 group descriptor 0");
}

/// Walks `fs` reading every file: an error is returned, a file must read
/// exactly its size.
fn walk_reading(fs: &dyn Filesystem) -> Result<(), FsError> {
    walk(fs, &mut |_, e| {
        if e.kind == FileKind::File {
            let size = fs.metadata(e.ino)?.size;
            let src = fs.open(e.ino)?;
            assert_eq!(src.len(), size, "{e:?}");
            // A damaged size may be huge (and read as a hole): its head
            // and tail.
            let mut buf = vec![0u8; src.len().min(1 << 20) as usize];
            src.read_exact_at(0, &mut buf)?;
            src.read_exact_at(src.len() - buf.len() as u64, &mut buf)?;
        }
        Ok(())
    })
}

/// A change to an image's bytes, given the filesystem to find where.
type Damage = fn(&mut Vec<u8>, &dyn Filesystem);

#[test]
fn damaged_data_with_checksums_ignored_is_an_error_never_a_panic() {
    // The named-error damages, with checksums ignored: structural damage
    // is still an error; none of it a checksum error.
    let cases: [(&str, Damage); 4] = [
        ("ext4", |b, _| b[1024 + 0x38] = 0),
        ("ext4-deep", |b, fs| {
            let at = inode_offset(fs, "frag/deep") + 0x28 + 12 + 4;
            let child = u32::from_le_bytes(b[at..at + 4].try_into().expect("4")) as usize;
            b[child * 1024] = 0;
        }),
        ("ext2-1k", |b, fs| {
            let at = inode_offset(fs, "sizes/s1m") + 0x28 + 13 * 4;
            b[at..at + 4].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        }),
        ("ext2-1k", |b, _| b[1024 + 0x62] |= 0x80),
    ];
    for (name, f) in cases {
        let fs = open(image(name)).expect("open");
        let src = edited(name, |b| f(b, &*fs));
        let e = open_ignoring(src)
            .and_then(|fs| walk_reading(&*fs))
            .expect_err("the damage must be noticed");
        assert!(!matches!(e, FsError::Checksum { .. }), "{name}: {e}");
    }
    // Random bytes of inodes and directory blocks changed, checksums
    // ignored: whatever is read is an error or of the right length.
    let fs = open(image("ext4")).expect("open");
    let mut targets: Vec<(usize, usize)> = Vec::new();
    walk(&*fs, &mut |_, e| {
        let d: HashMap<String, String> = fs.details(e.ino)?.into_iter().collect();
        let at =
            usize::from_str_radix(d["ext.inode_offset"].trim_start_matches("0x"), 16).expect("hex");
        targets.push((at, 256));
        Ok(())
    })
    .expect("walk");
    for dir in ["sizes", "htree", "links", "unicode", "dev", "sparse"] {
        for b in dir_blocks(&*fs, lookup(&*fs, dir)).into_iter().take(4) {
            targets.push((b as usize * 4096, 4096));
        }
    }
    targets.push((0, 8 * 4096));
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut ok, mut errs) = (0, 0);
    for _ in 0..100 {
        let (start, len) = targets[next() as usize % targets.len()];
        let flips: Vec<(usize, u8)> = (0..1 + next() % 3)
            .map(|_| (start + next() as usize % len, 1u8 << (next() % 8)))
            .collect();
        let src = edited("ext4", |b| {
            for &(at, bit) in &flips {
                b[at] ^= bit;
            }
        });
        match open_ignoring(src).and_then(|fs| walk_reading(&*fs)) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!matches!(e, FsError::Checksum { .. }), "{flips:?}: {e}");
                errs += 1;
            }
        }
    }
    assert!(ok > 0 && errs > 0, "{ok} read, {errs} errors");
}

/// The SHA-256 of `data`, in hex.
fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn files_deleted_by_debugfs_come_back_on_ext3_and_ext4() {
    // debugfs rm (images/ext.sh) sets links 0 and dtime but keeps the
    // block map and size; the script's e2fsck -D then compacts the
    // directories (`debugfs ls -d /` shows no deleted record): the bytes
    // come back, the name does not.
    for name in ["ext2-1k", "ext3", "ext4-old"] {
        let fs = open(image(name)).expect("open");
        let m = manifest(name);
        let gone = &m["deleted"][0];
        assert_eq!(gone["path"], "gone.txt", "{name}");
        let del = fs.deleted().expect("deleted");
        assert_eq!(del.len(), 1, "{name}: {del:?}");
        let d = &del[0];
        assert_eq!(
            d.path,
            format!("$OrphanFiles/OrphanFile-{}", d.ino.0 & !(1 << 63)),
            "{name}"
        );
        assert_eq!(d.meta.kind, FileKind::File, "{name}");
        assert_eq!(d.meta.size, gone["size"].as_u64().expect("size"), "{name}");
        assert_eq!(
            d.meta.mtime.secs,
            gone["mtime"][0].as_i64().expect("mtime"),
            "{name}"
        );
        assert_eq!(
            sha256(&read_all(&*fs, d.ino)),
            gone["sha256"].as_str().expect("sha"),
            "{name}"
        );
    }
    // On ext4-inline debugfs rm left no inode with a deletion time
    // (`debugfs stat` of every inode: none), so there is nothing to list.
    let fs = open(image("ext4-inline")).expect("open");
    assert_eq!(fs.deleted().expect("deleted"), []);
}

#[test]
fn deleted_files_match_what_debugfs_saw() {
    // images/ext-deleted.sh: kernel deletes on a loop mount (the map is
    // cleared, the record wiped) and debugfs deletes without e2fsck -D
    // (map kept, record left in slack), with what debugfs said of each
    // deleted inode afterwards.
    let text = std::fs::read_to_string(images().join("ext-deleted.json")).expect("oracle");
    let oracle: Value = serde_json::from_str(&text).expect("json");
    for (name, files) in oracle.as_object().expect("object") {
        let fs = open(image(name)).expect(name);
        let del = fs.deleted().expect("deleted");
        let files = files.as_array().expect("files");
        assert_eq!(del.len(), files.len(), "{name}: {del:?}");
        for f in files {
            let ino = f["ino"].as_u64().expect("ino");
            let d = del
                .iter()
                .find(|d| d.ino.0 & !(1 << 63) == ino)
                .unwrap_or_else(|| panic!("{name}: inode {ino} not listed: {del:?}"));
            assert_eq!(d.meta.kind, FileKind::File, "{name} {ino}");
            assert_eq!(u64::from(d.meta.perm), f["mode"].as_u64().expect("mode"));
            assert_eq!(d.meta.size, f["size"].as_u64().expect("size"));
            assert_eq!(u64::from(d.meta.nlink), f["links"].as_u64().expect("links"));
            assert_eq!(d.meta.mtime.secs, f["mtime"].as_i64().expect("mtime"));
            let want_path = if f["named"].as_bool().expect("named") {
                f["path"].as_str().expect("path").to_string()
            } else {
                format!("$OrphanFiles/OrphanFile-{ino}")
            };
            assert_eq!(d.path, want_path, "{name}");
            let details: HashMap<String, String> =
                fs.details(d.ino).expect("details").into_iter().collect();
            assert_eq!(
                details["ext.dtime"],
                f["dtime"].as_u64().expect("dtime").to_string()
            );
            if f["has_blocks"].as_bool().expect("has_blocks") {
                let sha = sha256(&read_all(&*fs, d.ino));
                assert_eq!(sha, f["sha256"].as_str().expect("sha"), "{name} {ino}");
                continue;
            }
            // Its map is gone: a clear error, never zeros or nothing.
            match fs.open(d.ino) {
                Err(FsError::Unsupported { detail, .. }) => assert!(
                    detail.contains(&format!(
                        "deleted inode {ino}: its block map was cleared on delete"
                    )),
                    "{detail}"
                ),
                Err(e) => panic!("{name} {ino}: {e}"),
                Ok(_) => panic!("{name} {ino}: opened"),
            }
        }
        // The live files are untouched.
        let keep = fs
            .lookup(fs.root(), "keep.txt")
            .expect("lookup")
            .expect("keep.txt");
        assert_eq!(read_all(&*fs, keep.ino), b"keep\n");
    }
}
/// `xattrs` of `path` in a copy of `name` damaged by `f` (given the bytes
/// and the inode's offset).
fn xattr_damage(name: &str, path: &str, f: impl FnOnce(&mut Vec<u8>, usize)) -> FsError {
    let img = image(name);
    let mut bytes = vec![0u8; img.len() as usize];
    img.read_exact_at(0, &mut bytes).expect("read");
    let (ino, at) = {
        let fs = open(img.clone()).expect("open");
        (lookup(&*fs, path), inode_offset(&*fs, path))
    };
    f(&mut bytes, at);
    let fs = open(Arc::new(MemSource::new(bytes))).expect("open");
    fs.xattrs(ino).expect_err("the damage must be noticed")
}

#[test]
fn xattr_damage_gives_named_errors() {
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
    // The external block's checksum (metadata_csum).
    let mut block = 0;
    let e = xattr_damage("ext4", "sizes/s1", |b, at| {
        block = le32(b, at + 0x68) as usize;
        b[block * 4096 + 4096 - 1] ^= 1;
    });
    let s = e.to_string();
    assert!(
        s.contains(&format!("ext4 xattr block {block}")) && s.contains("checksum mismatch"),
        "{e}"
    );
    // The block's magic, without checksums.
    let e = xattr_damage("ext3", "sizes/s1", |b, at| {
        let block = le32(b, at + 0x68) as usize;
        b[block * 4096] ^= 1;
    });
    assert!(e.to_string().contains("attribute block magic"), "{e}");
    // An in-inode value running past the inode (ext3: no inode checksum).
    let e = xattr_damage("ext3", "sizes/s0", |b, at| {
        let extra = usize::from(u16::from_le_bytes([b[at + 0x80], b[at + 0x81]]));
        let first = at + 128 + extra + 4;
        b[first + 8..first + 12].copy_from_slice(&5000u32.to_le_bytes());
    });
    assert!(
        e.to_string().contains("in-inode xattrs") && e.to_string().contains("runs past"),
        "{e}"
    );
}
