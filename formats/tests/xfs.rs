//! The XFS reader on real images made by `images/xfs.sh` (mkfs.xfs from a
//! protofile, then a loop mount): the conformance check, the tree against
//! the manifest written from the source side, random reads against the
//! self-describing content, and damaged copies that must give named errors
//! (never a panic, a hang or wrong bytes).

mod linux_tree;

use linux_tree::{content, expected, read_all};
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use vaultfs_formats::fs::{
    FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, check_invariants, walk,
};
use vaultfs_formats::io::{MemSource, ReadAt, Source};

fn images() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/fs")
}

/// The decompressed image `name` (`v5`, `v4`, `1k`), once per process.
fn image(name: &str) -> Arc<MemSource> {
    static IMAGES: OnceLock<std::sync::Mutex<HashMap<String, Arc<MemSource>>>> = OnceLock::new();
    let map = IMAGES.get_or_init(Default::default);
    let mut map = map.lock().expect("lock");
    map.entry(name.to_string())
        .or_insert_with(|| {
            let z = std::fs::read(images().join(format!("xfs-{name}.img.zst"))).expect("image");
            Arc::new(MemSource::new(zstd::decode_all(&z[..]).expect("zstd")))
        })
        .clone()
}

fn manifest(name: &str) -> Value {
    let text = std::fs::read_to_string(images().join(format!("xfs-{name}.manifest.json")))
        .expect("manifest");
    serde_json::from_str(&text).expect("json")
}

fn open(src: Source) -> Result<Arc<dyn Filesystem>, FsError> {
    vaultfs_formats::fs::open(FsKind::Xfs, src, &FsOptions::default())
}

fn compare_with_manifest(name: &str) -> usize {
    let fs = open(image(name)).expect("open");
    linux_tree::compare_with_manifest(&*fs, name, &manifest(name))
}

#[test]
fn v5_keeps_the_invariants() {
    let fs = open(image("v5")).expect("open");
    let n = check_invariants(&*fs).expect("invariants");
    assert_eq!(
        n,
        manifest("v5")["entries"].as_array().expect("entries").len()
    );
    let info = fs.info();
    assert_eq!(info.label.as_deref(), Some("vaultfs-v5"));
    assert_eq!(
        info.serial.as_deref(),
        Some("5c0ffee5-0000-4000-8000-000000000005")
    );
    assert_eq!(info.block_size, 4096);
    assert_eq!(info.size, 400 << 20);
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
}

#[test]
fn v4_keeps_the_invariants() {
    let fs = open(image("v4")).expect("open");
    check_invariants(&*fs).expect("invariants");
    assert!(fs.info().warnings.is_empty(), "{:?}", fs.info().warnings);
}

#[test]
fn v5_tree_matches_the_manifest() {
    assert!(compare_with_manifest("v5") > 2500);
}

#[test]
fn v4_tree_matches_the_manifest() {
    assert!(compare_with_manifest("v4") > 2500);
}

#[test]
fn v4_without_ftype_matches_the_manifest() {
    let fs = open(image("v4nf")).expect("open");
    check_invariants(&*fs).expect("invariants");
    assert!(compare_with_manifest("v4nf") > 2500);
}

#[test]
fn bigtime_past_2038_and_before_1970() {
    let fs = open(image("v5")).expect("open");
    let m = fs.metadata(lookup(&*fs, "times/future")).expect("meta");
    assert_eq!((m.mtime.secs, m.mtime.nanos), (4_102_444_800, 500_000_000));
    let m = fs.metadata(lookup(&*fs, "times/past")).expect("meta");
    assert_eq!((m.mtime.secs, m.mtime.nanos), (-1_000_000_001, 750_000_000));
}

/// The fuzz seeds (sparse-chunk volumes) open and walk: the fuzzer starts
/// on the successful path.
#[test]
fn fuzz_seeds_open() {
    for name in ["v5", "v4"] {
        let vol = linux_tree::fuzz_seed_volume("xfs", name);
        let fs = open(Arc::new(MemSource::new(vol))).expect("open seed");
        let n = check_invariants(&*fs).expect("invariants");
        assert!(n > 340, "{name}: {n} entries");
    }
}

#[test]
fn one_k_blocks_two_level_bmbt_and_a_dirty_log() {
    let fs = open(image("1k")).expect("open");
    check_invariants(&*fs).expect("invariants");
    compare_with_manifest("1k");
    let w = fs.info().warnings;
    assert!(
        w.iter().any(|w| w.contains("the view may be stale")),
        "{w:?}"
    );
    let deep = lookup(&*fs, "frag/deep");
    let d: HashMap<String, String> = fs.details(deep).expect("details").into_iter().collect();
    assert_eq!(d["xfs.format"], "btree");
    assert_eq!(d["xfs.extents"], "2600");
    // Directories of 4 KiB blocks over 1 KiB filesystem blocks.
    for (dir, n) in [("dirs/block", 40), ("dirs/leaf", 300), ("dirs/node", 2200)] {
        assert_eq!(
            fs.read_dir(lookup(&*fs, dir)).expect("read_dir").len(),
            n,
            "{dir}"
        );
    }
}

fn lookup(fs: &dyn Filesystem, path: &str) -> Ino {
    let mut ino = fs.root();
    for part in path.split('/') {
        ino = fs.lookup(ino, part).expect("lookup").expect(path).ino;
    }
    ino
}

/// A tiny deterministic generator for the random reads.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn random_reads(name: &str) {
    let fs = open(image(name)).expect("open");
    let m = manifest(name);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut checked = 0;
    for e in m["entries"].as_array().expect("entries") {
        let size = e["size"].as_u64().unwrap_or(0);
        if e["type"] != "file" || size == 0 {
            continue;
        }
        let path = e["path"].as_str().expect("path");
        let src = fs.open(lookup(&*fs, path)).expect("open");
        for _ in 0..20 {
            let off = rng(&mut seed) % size;
            let len = (rng(&mut seed) % 20000) as usize;
            let mut buf = vec![0xA5u8; len];
            let n = src.read_at(off, &mut buf).expect("read");
            let n_want = len.min((size - off) as usize);
            assert_eq!(n, n_want, "{path}: read of {len} at {off}");
            assert!(
                buf[..n] == expected(e, off, n)[..],
                "{path}: {len} bytes at {off}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} reads");
}

#[test]
fn v5_random_reads() {
    random_reads("v5");
}

#[test]
fn v4_random_reads() {
    random_reads("v4");
}

#[test]
fn one_k_random_reads() {
    random_reads("1k");
}

/// Every directory form xfs.sh built (and checked with xfs_db: inode
/// format, block magic) is still what the images hold and lists whole:
/// shortform (in the inode), block (one extent), leaf (data blocks and a
/// leaf block: several extents), node with a btree data fork.
#[test]
fn every_directory_form_is_present_and_listed() {
    for name in ["v5", "v4", "v4nf"] {
        let fs = open(image(name)).expect("open");
        for (dir, n, format) in [
            ("dir_sf", 5, "local"),
            ("dir_block", 40, "extents"),
            ("dir_leaf", 300, "extents"),
            ("dir_node", 2200, "btree"),
        ] {
            let ino = lookup(&*fs, dir);
            let d: HashMap<String, String> =
                fs.details(ino).expect("details").into_iter().collect();
            assert_eq!(d["xfs.format"], format, "{name}: {dir}");
            let extents: u64 = d["xfs.extents"].parse().expect("extents");
            match dir {
                "dir_block" => assert_eq!(extents, 1, "{name}: {dir}"),
                "dir_leaf" => assert!(extents >= 2, "{name}: {dir}"),
                _ => {}
            }
            assert_eq!(
                fs.read_dir(ino).expect("read_dir").len(),
                n,
                "{name}: {dir}"
            );
        }
        // The root and the small directories are shortform too.
        for dir in ["sizes", "links", "dev"] {
            let d: HashMap<String, String> = fs
                .details(lookup(&*fs, dir))
                .expect("details")
                .into_iter()
                .collect();
            assert_eq!(d["xfs.format"], "local", "{name}: {dir}");
        }
    }
}

/// Reflinked extents (shared between files, some replaced by
/// copy-on-write), never-written preallocation (unwritten extents read as
/// zeros) and preallocation past EOF: xfs.sh checked the shared and
/// unwritten flags with fiemap.
#[test]
fn reflinked_and_unwritten_extents() {
    let fs = open(image("reflink")).expect("open");
    let m = manifest("reflink");
    let n = check_invariants(&*fs).expect("invariants");
    assert_eq!(n, m["entries"].as_array().expect("entries").len());
    assert_eq!(compare_with_manifest("reflink"), n);
    assert!(fs.info().warnings.is_empty(), "{:?}", fs.info().warnings);
    random_reads("reflink");
    // Whole files against the pieces, byte for byte (not only the hash).
    for e in m["entries"].as_array().expect("entries") {
        let path = e["path"].as_str().expect("path");
        let data = read_all(&*fs, lookup(&*fs, path));
        assert!(data == expected(e, 0, data.len()), "{path}");
    }
    let data = read_all(&*fs, lookup(&*fs, "unwritten"));
    assert!(data.len() == 1 << 20 && data.iter().all(|&b| b == 0));
}

#[test]
fn btree_file_and_a_file_in_a_later_ag() {
    let fs = open(image("v5")).expect("open");
    let m = manifest("v5");
    let frag = lookup(&*fs, m["btree_file"].as_str().expect("btree_file"));
    let d: HashMap<String, String> = fs.details(frag).expect("details").into_iter().collect();
    assert_eq!(d["xfs.format"], "btree");
    assert_eq!(d["xfs.extents"], "600");
    // The file whose data xfs.sh saw (xfs_bmap) in AG >= 1 reads right.
    let path = m["ag1_file"].as_str().expect("ag1_file");
    let ino = lookup(&*fs, path);
    let data = read_all(&*fs, ino);
    assert_eq!(data, content(path, 0, data.len()));
    // And some of the ag_* files have their inodes past AG 0 (25600 blocks).
    let later = ["ag_a/data", "ag_b/data", "ag_c/data", "ag_d/data"]
        .iter()
        .filter(|p| inode_offset(&*fs, p) >= 25600 * 4096)
        .count();
    assert!(later >= 2, "{later} inodes in later AGs");
}

#[test]
fn concurrent_readers_agree() {
    let fs = open(image("v5")).expect("open");
    let m = manifest("v5");
    let files: Vec<Value> = m["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["type"] == "file" && e["size"].as_u64().unwrap_or(0) > 4096)
        .cloned()
        .collect();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let fs = fs.clone();
            let files = &files;
            s.spawn(move || {
                let mut seed = 0x1234_5678 + t;
                for _ in 0..200 {
                    let e = &files[(rng(&mut seed) % files.len() as u64) as usize];
                    let path = e["path"].as_str().expect("path");
                    let size = e["size"].as_u64().expect("size");
                    let src = fs.open(lookup(&*fs, path)).expect("open");
                    let off = rng(&mut seed) % size;
                    let mut buf = vec![0u8; 4096.min((size - off) as usize)];
                    src.read_exact_at(off, &mut buf).expect("read");
                    assert!(buf == expected(e, off, buf.len()), "{path} at {off}");
                }
            });
        }
    });
}

// ---- damage ----

/// `base` with some bytes replaced.
struct Patched {
    base: Arc<MemSource>,
    patches: Vec<(u64, Vec<u8>)>,
}

impl ReadAt for Patched {
    fn len(&self) -> u64 {
        self.base.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.base.read_at(offset, buf)?;
        for (at, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= offset && p < offset + n as u64 {
                    buf[(p - offset) as usize] = *b;
                }
            }
        }
        Ok(n)
    }
}

fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn bytes(src: &dyn ReadAt, at: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    src.read_exact_at(at, &mut b).expect("read");
    b
}

/// A patch replacing the v5 block at `at` (`len` bytes, checksum at
/// `crc_off`) by `edit` applied to it, with its CRC made valid again.
fn rewrite(
    src: &dyn ReadAt,
    at: u64,
    len: usize,
    crc_off: usize,
    edit: impl FnOnce(&mut [u8]),
) -> (u64, Vec<u8>) {
    let mut b = bytes(src, at, len);
    edit(&mut b);
    b[crc_off..crc_off + 4].fill(0);
    let sum = crc32c(&b);
    b[crc_off..crc_off + 4].copy_from_slice(&sum.to_le_bytes());
    (at, b)
}

fn damaged(patches: Vec<(u64, Vec<u8>)>) -> Source {
    Arc::new(Patched {
        base: image("v5"),
        patches,
    })
}

fn inode_offset(fs: &dyn Filesystem, path: &str) -> u64 {
    let d: HashMap<String, String> = fs
        .details(lookup(fs, path))
        .expect("details")
        .into_iter()
        .collect();
    u64::from_str_radix(d["xfs.inode_offset"].trim_start_matches("0x"), 16).expect("offset")
}

fn err_text<T>(r: Result<T, FsError>) -> String {
    match r {
        Ok(_) => panic!("damage was not noticed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn damaged_superblock() {
    let e = err_text(open(damaged(vec![(0, b"XFSC".to_vec())])));
    assert!(e.contains("XFS superblock at byte 0x0: bad magic"), "{e}");
    let e = err_text(open(damaged(vec![(110, b"!".to_vec())])));
    assert!(
        e.contains("XFS superblock at byte 0x0: checksum mismatch"),
        "{e}"
    );
}

#[test]
fn damaged_ag_headers() {
    let ag1 = 25600u64 * 4096;
    let e = err_text(open(damaged(vec![(ag1 + 512 + 60, vec![0xEE])])));
    assert!(
        e.contains("XFS AGF of AG 1 at byte 0x6400200: checksum mismatch"),
        "{e}"
    );
    let e = err_text(open(damaged(vec![(ag1 * 2 + 1024, b"XAGX".to_vec())])));
    assert!(e.contains("XFS AGI of AG 2"), "{e}");
    // A valid CRC over a wrong AG number.
    let base = image("v5");
    let p = rewrite(&*base, ag1 + 1024, 512, 312, |b| b[11] = 3);
    let e = err_text(open(damaged(vec![p])));
    assert!(
        e.contains("XFS AGI of AG 1") && e.contains("AG number 3"),
        "{e}"
    );
}

#[test]
fn damaged_inode_crc() {
    let fs = open(image("v5")).expect("open");
    let at = inode_offset(&*fs, "sizes/s700");
    let ino = lookup(&*fs, "sizes/s700");
    let fs2 = open(damaged(vec![(at + 9, vec![0x42])])).expect("open");
    let e = err_text(fs2.metadata(ino));
    assert!(
        e.contains(&format!(
            "XFS inode {ino} at byte {at:#x}: checksum mismatch"
        )),
        "{e}"
    );
    let e = err_text(fs2.open(ino));
    assert!(e.contains("checksum mismatch"), "{e}");
}

/// The btree file's inode with its bmbt root edited, CRC fixed.
fn edited_bmbt_root(edit: impl FnOnce(&mut [u8], usize)) -> (Arc<dyn Filesystem>, Ino) {
    let fs = open(image("v5")).expect("open");
    let at = inode_offset(&*fs, "sparse/frag");
    let ino = lookup(&*fs, "sparse/frag");
    let base = image("v5");
    let p = rewrite(&*base, at, 512, 100, |b| {
        // The fork at 176, up to the attribute fork: keys from 180, then
        // pointers, each array as long as the fork has room for.
        let fork = if b[82] == 0 {
            336
        } else {
            usize::from(b[82]) * 8
        };
        assert_eq!(u16::from_be_bytes([b[176], b[177]]), 1, "a one-level root");
        edit(b, 176 + 4 + (fork - 4) / 16 * 8);
    });
    (open(damaged(vec![p])).expect("open"), ino)
}

#[test]
fn bmbt_pointer_out_of_range() {
    let (fs, ino) = edited_bmbt_root(|b, ptrs| {
        b[ptrs..ptrs + 8].copy_from_slice(&(7u64 << 15 | 3).to_be_bytes())
    });
    let e = err_text(fs.open(ino));
    assert!(
        e.contains("bmbt") && e.contains("outside the filesystem"),
        "{e}"
    );
    // Inside the encoding's gap: agbno 30000 >= agblocks 25600.
    let (fs, ino) = edited_bmbt_root(|b, ptrs| {
        b[ptrs..ptrs + 8].copy_from_slice(&(1u64 << 15 | 30000).to_be_bytes())
    });
    let e = err_text(fs.open(ino));
    assert!(e.contains("outside the filesystem"), "{e}");
}

#[test]
fn bmbt_loop() {
    let (fs, ino) = edited_bmbt_root(|b, ptrs| {
        let first: [u8; 8] = b[ptrs..ptrs + 8].try_into().expect("ptr");
        b[ptrs + 8..ptrs + 16].copy_from_slice(&first);
    });
    let e = err_text(fs.open(ino));
    assert!(e.contains("the bmbt loops"), "{e}");
}

#[test]
fn bmbt_leaf_pointing_elsewhere() {
    // A pointer to a valid block that is not this inode's bmbt block (the
    // superblock's AG 1 copy): named, not followed.
    let (fs, ino) =
        edited_bmbt_root(|b, ptrs| b[ptrs..ptrs + 8].copy_from_slice(&(1u64 << 15).to_be_bytes()));
    let e = err_text(fs.open(ino));
    assert!(e.contains("bmbt block") && e.contains("bad magic"), "{e}");
}

#[test]
fn directory_block_magic() {
    let fs = open(image("v5")).expect("open");
    let dir = lookup(&*fs, "dir_block");
    let at = inode_offset(&*fs, "dir_block");
    let inode = bytes(&*image("v5"), at, 512);
    // The single extent record at the fork's start.
    let l0 = u64::from_be_bytes(inode[176..184].try_into().expect("l0"));
    let l1 = u64::from_be_bytes(inode[184..192].try_into().expect("l1"));
    let fsb = ((l0 & 0x1ff) << 43) | (l1 >> 21);
    let block = ((fsb >> 15) * 25600 + (fsb & 0x7fff)) * 4096;
    let p = rewrite(&*image("v5"), block, 4096, 4, |b| {
        b[0..4].copy_from_slice(b"XDD3")
    });
    let fs2 = open(damaged(vec![p])).expect("open");
    let e = err_text(fs2.read_dir(dir));
    assert!(
        e.contains(&format!(
            "XFS directory {dir} block 0 at byte {block:#x}: bad magic"
        )),
        "{e}"
    );
    let fs3 = open(damaged(vec![(block + 100, vec![0xFF])])).expect("open");
    let e = err_text(fs3.read_dir(dir));
    assert!(e.contains("checksum mismatch"), "{e}");
}

#[test]
fn truncated_volumes_fail_cleanly() {
    let base = image("v5");
    for cut in [0usize, 100, 512, 4096, 1 << 20, 100 << 20] {
        let head = bytes(&*base, 0, cut.min(base.len() as usize));
        match open(Arc::new(MemSource::new(head))) {
            Err(_) => {}
            Ok(fs) => {
                let _ = walk(&*fs, &mut |_, e| {
                    if e.kind == FileKind::File {
                        if let Ok(src) = fs.open(e.ino) {
                            let mut b = vec![0u8; 4096.min(src.len() as usize)];
                            let _ = src.read_at(0, &mut b);
                        }
                    }
                    Ok(())
                });
            }
        }
    }
}

#[test]
fn a_volume_cut_after_ag_0_opens_with_a_warning() {
    let base = image("v5");
    let head = bytes(&*base, 0, 25600 * 4096);
    let fs = open(Arc::new(MemSource::new(head))).expect("open");
    let w = fs.info().warnings;
    assert!(
        w.iter()
            .any(|w| w.contains("AGs 1 and later lie past the volume's end")),
        "{w:?}"
    );
    // The root (in AG 0) still lists; what lies past the cut is an error.
    assert!(!fs.read_dir(fs.root()).expect("root").is_empty());
}

#[test]
fn wrong_kinds_and_missing_inodes() {
    let fs = open(image("v5")).expect("open");
    assert!(matches!(fs.open(fs.root()), Err(FsError::WrongKind { .. })));
    assert!(matches!(
        fs.read_link(fs.root()),
        Err(FsError::WrongKind { .. })
    ));
    assert!(matches!(
        fs.metadata(Ino(u64::MAX)),
        Err(FsError::NoInode(_))
    ));
    let null = lookup(&*fs, "dev/null");
    let m = fs.metadata(null).expect("meta");
    assert_eq!(
        (m.kind, m.rdev, m.perm),
        (FileKind::CharDevice, 0x103, 0o666)
    );
    let fifo = fs.metadata(lookup(&*fs, "dev/fifo")).expect("meta");
    assert_eq!((fifo.uid, fifo.gid, fifo.perm), (1000, 1000, 0o600));
    assert!(m.crtime.is_some());
}

#[test]
fn realtime_files_are_unsupported() {
    let fs = open(image("v5")).expect("open");
    let at = inode_offset(&*fs, "sizes/s700");
    let ino = lookup(&*fs, "sizes/s700");
    let p = rewrite(&*image("v5"), at, 512, 100, |b| b[91] |= 1);
    let fs2 = open(damaged(vec![p])).expect("open");
    match fs2.open(ino) {
        Err(FsError::Unsupported { fs, detail }) => {
            assert_eq!(fs, "XFS");
            assert!(detail.contains("realtime"), "{detail}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a realtime file opened"),
    }
}

#[test]
fn mkfs_in_progress_is_a_stale_view() {
    let p = rewrite(&*image("v5"), 0, 512, 224, |b| b[126] = 1);
    let fs = open(damaged(vec![p])).expect("open");
    let w = fs.info().warnings;
    assert!(
        w.iter()
            .any(|w| w.contains("sb_inprogress") && w.contains("the view may be stale")),
        "{w:?}"
    );
}

#[test]
fn a_log_without_an_unmount_record_is_a_stale_view() {
    let base = image("v5");
    let sb = bytes(&*base, 0, 512);
    let be = |b: &[u8], at: usize, n: usize| {
        b[at..at + n]
            .iter()
            .fold(0u64, |a, &x| a << 8 | u64::from(x))
    };
    let (logstart, agblocks, logblocks, agblklog) =
        (be(&sb, 48, 8), be(&sb, 84, 4), be(&sb, 96, 4), sb[124]);
    let start = ((logstart >> agblklog) * agblocks + (logstart & ((1 << agblklog) - 1))) * 4096;
    let log = bytes(&*base, start, (logblocks * 4096) as usize);
    // The newest record header: the highest cycle, then the last place.
    let last = log
        .chunks_exact(512)
        .enumerate()
        .filter(|(_, s)| s[..4] == [0xFE, 0xED, 0xBA, 0xBE])
        .max_by_key(|(i, s)| (be(s, 4, 4), *i))
        .map(|(i, _)| i as u64)
        .expect("a record header");
    let flags_at = start + (last + 1) * 512 + 9;
    assert_eq!(
        bytes(&*base, flags_at, 1)[0] & 0x20,
        0x20,
        "a clean log ends in an unmount record"
    );
    let fs = open(damaged(vec![(flags_at, vec![0])])).expect("open");
    let w = fs.info().warnings;
    assert!(
        w.iter()
            .any(|w| w.contains("not cleanly unmounted") && w.contains("the view may be stale")),
        "{w:?}"
    );
}

// ---- checksums ignored ----

fn open_ignoring(src: Source) -> Result<Arc<dyn Filesystem>, FsError> {
    let opts = FsOptions {
        ignore_checksums: true,
        ..Default::default()
    };
    vaultfs_formats::fs::open(FsKind::Xfs, src, &opts)
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
}

/// The v5 image with `patches` reads, with mismatches ignored, as the
/// manifest says, and warns of one mismatch naming `structure`.
fn reads_when_ignored(patches: Vec<(u64, Vec<u8>)>, structure: &str) {
    let fs = open_ignoring(damaged(patches)).expect("open ignoring checksums");
    linux_tree::compare_with_manifest(&*fs, "v5", &manifest("v5"));
    let w = fs.info().warnings;
    assert!(
        w.iter()
            .any(|w| w.starts_with("1 checksum mismatch ignored; ")
                && w.contains(&format!("{structure} at byte"))),
        "{w:?}"
    );
}

#[test]
fn an_inode_crc_mismatch_is_named_and_can_be_ignored() {
    let fs = open(image("v5")).expect("open");
    let at = inode_offset(&*fs, "sizes/s700");
    let ino = lookup(&*fs, "sizes/s700");
    let structure = format!("XFS inode {ino}");
    // The CRC itself, then a byte it covers (di_uid).
    for patch in [(at + 100, vec![0x5A]), (at + 9, vec![0x42])] {
        let strict = open(damaged(vec![patch.clone()])).expect("open");
        assert_checksum(strict.metadata(ino).expect_err("mismatch"), &structure, at);
        assert_checksum(strict.open(ino).err().expect("mismatch"), &structure, at);
        reads_when_ignored(vec![patch], &structure);
    }
}

#[test]
fn a_directory_block_crc_mismatch_is_named_and_can_be_ignored() {
    let fs = open(image("v5")).expect("open");
    let dir = lookup(&*fs, "dir_block");
    let at = inode_offset(&*fs, "dir_block");
    let inode = bytes(&*image("v5"), at, 512);
    let l0 = u64::from_be_bytes(inode[176..184].try_into().expect("l0"));
    let l1 = u64::from_be_bytes(inode[184..192].try_into().expect("l1"));
    let fsb = ((l0 & 0x1ff) << 43) | (l1 >> 21);
    let block = ((fsb >> 15) * 25600 + (fsb & 0x7fff)) * 4096;
    let patch = (block + 4, vec![bytes(&*image("v5"), block + 4, 1)[0] ^ 1]);
    let structure = format!("XFS directory {dir} block 0");
    let strict = open(damaged(vec![patch.clone()])).expect("open");
    assert_checksum(
        strict.read_dir(dir).expect_err("mismatch"),
        &structure,
        block,
    );
    reads_when_ignored(vec![patch], &structure);
}

/// Walks `fs` reading the head and tail of every file: an error is
/// returned, a file must read exactly its size.
fn walk_reading(fs: &dyn Filesystem) -> Result<(), FsError> {
    walk(fs, &mut |_, e| {
        if e.kind == FileKind::File {
            let size = fs.metadata(e.ino)?.size;
            let src = fs.open(e.ino)?;
            assert_eq!(src.len(), size, "{e:?}");
            let mut buf = vec![0u8; src.len().min(1 << 20) as usize];
            src.read_exact_at(0, &mut buf)?;
            src.read_exact_at(src.len() - buf.len() as u64, &mut buf)?;
        } else if e.kind == FileKind::Symlink {
            fs.read_link(e.ino)?;
        }
        Ok(())
    })
}

#[test]
fn damaged_data_with_checksums_ignored_is_an_error_never_a_panic() {
    // Random bytes of inodes changed, checksums ignored: whatever is read
    // is an error (never a checksum error) or of the right length.
    let fs = open(image("v5")).expect("open");
    let mut targets: Vec<u64> = Vec::new();
    walk(&*fs, &mut |_, e| {
        let d: HashMap<String, String> = fs.details(e.ino)?.into_iter().collect();
        targets.push(
            u64::from_str_radix(d["xfs.inode_offset"].trim_start_matches("0x"), 16).expect("hex"),
        );
        Ok(())
    })
    .expect("walk");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let (mut ok, mut errs) = (0, 0);
    for _ in 0..60 {
        let start = targets[(rng(&mut seed) % targets.len() as u64) as usize];
        let patches: Vec<(u64, Vec<u8>)> = (0..1 + rng(&mut seed) % 3)
            .map(|_| {
                let at = start + rng(&mut seed) % 512;
                let old = bytes(&*image("v5"), at, 1)[0];
                (at, vec![old ^ (1u8 << (rng(&mut seed) % 8))])
            })
            .collect();
        match open_ignoring(damaged(patches.clone())).and_then(|fs| walk_reading(&*fs)) {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(!matches!(e, FsError::Checksum { .. }), "{patches:?}: {e}");
                errs += 1;
            }
        }
    }
    assert!(ok > 0 && errs > 0, "{ok} read, {errs} errors");
    // Structural damage with a valid CRC is still an error.
    let p = rewrite(&*image("v5"), 25600 * 4096 + 1024, 512, 312, |b| b[11] = 3);
    assert!(open_ignoring(damaged(vec![p])).is_err());
}

/// The byte offsets of the v5 image's 4 KiB blocks owned by `ino` whose
/// magic (`magic_len` bytes at `magic_at`) is `magic` and whose owner
/// field (be64 at `owner_at`) is `ino`.
fn owned_blocks(ino: Ino, magic: &[u8], magic_at: usize, owner_at: usize) -> Vec<u64> {
    let img = image("v5");
    let mut out = Vec::new();
    let mut b = vec![0u8; 4096];
    for at in (0..img.len()).step_by(4096) {
        img.read_exact_at(at, &mut b).expect("read");
        let owner = u64::from_be_bytes(b[owner_at..owner_at + 8].try_into().expect("8"));
        if &b[magic_at..magic_at + magic.len()] == magic && owner == ino.0 {
            out.push(at);
        }
    }
    out
}

#[test]
fn damaged_attribute_blocks() {
    let fs = open(image("v5")).expect("open");
    let (s1, many) = (lookup(&*fs, "sizes/s1"), lookup(&*fs, "xattr/many"));
    // sizes/s1: one leaf, a remote value of two blocks.
    let remote = owned_blocks(s1, b"XARM", 0, 32);
    assert_eq!(remote.len(), 2, "remote value blocks");
    let leaf = owned_blocks(s1, &[0x3b, 0xee], 8, 48);
    assert_eq!(leaf.len(), 1, "leaf blocks");
    let mut flipped = bytes(&*image("v5"), remote[0] + 100, 1);
    flipped[0] ^= 1;
    let fs2 = open(damaged(vec![(remote[0] + 100, flipped)])).expect("open");
    let e = err_text(fs2.xattrs(s1));
    assert!(
        e.contains("remote attribute value block") && e.contains("checksum mismatch"),
        "{e}"
    );
    let p = rewrite(&*image("v5"), remote[1], 4096, 12, |b| b[7] ^= 1);
    let e = err_text(open(damaged(vec![p])).expect("open").xattrs(s1));
    assert!(e.contains("holds bytes"), "{e}");
    let p = rewrite(&*image("v5"), leaf[0], 4096, 12, |b| {
        b[56..58].copy_from_slice(&[0xff, 0xff])
    });
    let e = err_text(open(damaged(vec![p])).expect("open").xattrs(s1));
    assert!(
        e.contains("attribute block 0") && e.contains("do not fit"),
        "{e}"
    );
    // xattr/many: a node whose first pointer leads back to itself.
    let node = owned_blocks(many, &[0x3e, 0xbe], 8, 48);
    assert_eq!(node.len(), 1, "node blocks");
    let p = rewrite(&*image("v5"), node[0], 4096, 12, |b| b[68..72].fill(0));
    let e = err_text(open(damaged(vec![p])).expect("open").xattrs(many));
    assert!(e.contains("loops"), "{e}");
    // Undamaged, the node form lists every attribute.
    assert_eq!(fs.xattrs(many).expect("xattrs").len(), 200);
}
