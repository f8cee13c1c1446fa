//! The FAT reader on volumes made by mkfs.vfat and mtools (`images/fat.sh`),
//! compared with the manifest of the source tree they were filled from,
//! with mtools itself, and on damaged copies of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vaultfs_formats::fs::{
    self, FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, check_invariants, walk,
};
use vaultfs_formats::io::{MemSource, ReadAt, Source};

const SIZES: [u32; 3] = [12, 16, 32];

fn images_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../images")
}

fn image(fat: u32) -> Vec<u8> {
    let p = images_dir().join(format!("fs/fat{fat}.img.zst"));
    zstd::decode_all(std::fs::read(p).expect("images/fat.sh output").as_slice()).expect("zstd")
}

fn manifest(fat: u32) -> serde_json::Value {
    let p = images_dir().join(format!("fs/fat{fat}.json.zst"));
    let bytes = zstd::decode_all(std::fs::read(p).expect("manifest").as_slice()).expect("zstd");
    serde_json::from_slice(&bytes).expect("json")
}

/// The bytes `images/fat.sh` wrote at `path`: block k of 32 bytes is
/// SHA-256("path:k").
fn content(path: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 32);
    let mut k = 0u64;
    while out.len() < size {
        out.extend_from_slice(&Sha256::digest(format!("{path}:{k}").as_bytes()));
        k += 1;
    }
    out.truncate(size);
    out
}

fn open_with(bytes: Vec<u8>, opts: &FsOptions) -> Result<Arc<dyn Filesystem>, FsError> {
    let src: Source = Arc::new(MemSource::new(bytes));
    let kind = fs::detect(&*src).expect("detect").unwrap_or(FsKind::Fat16);
    fs::open(kind, src, opts)
}

fn open(bytes: Vec<u8>) -> Arc<dyn Filesystem> {
    open_with(bytes, &FsOptions::default()).expect("open FAT volume")
}

fn read_all(src: &Source) -> Vec<u8> {
    let mut buf = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut buf).expect("read file");
    buf
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry of the tree: path -> (kind, ino).
fn tree(fs: &dyn Filesystem) -> BTreeMap<String, (FileKind, Ino)> {
    let mut out = BTreeMap::new();
    walk(fs, &mut |p, e| {
        out.insert(p.to_string(), (e.kind, e.ino));
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

/// A tiny deterministic generator for random reads.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn each_image_matches_the_manifest_of_its_source() {
    for fat in SIZES {
        let m = manifest(fat);
        let fs = open(image(fat));
        let info = fs.info();
        assert_eq!(info.kind.to_string(), format!("fat{fat}"));
        assert_eq!(info.label.as_deref(), m["label"].as_str(), "fat{fat} label");
        assert!(info.warnings.is_empty(), "fat{fat}: {:?}", info.warnings);
        assert_eq!(
            info.serial.as_deref(),
            Some(format!("1234-{fat}AB").as_str())
        );
        let entries = m["entries"].as_array().expect("entries");
        let checked = check_invariants(&*fs).unwrap_or_else(|e| panic!("fat{fat}: {e}"));
        assert_eq!(checked, entries.len(), "fat{fat}: entry count");
        let t = tree(&*fs);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(fat));
        for e in entries {
            let path = e["path"].as_str().expect("path");
            let &(kind, ino) = t
                .get(path)
                .unwrap_or_else(|| panic!("fat{fat}: {path} missing"));
            let meta = fs.metadata(ino).expect("metadata");
            if e["type"] == "dir" {
                assert_eq!(kind, FileKind::Dir, "{path}");
                continue;
            }
            assert_eq!(kind, FileKind::File, "{path}");
            let size = e["size"].as_u64().expect("size");
            assert_eq!(meta.size, size, "fat{fat} {path}: size");
            assert_eq!(
                meta.mtime.secs,
                e["mtime"].as_i64().expect("mtime"),
                "fat{fat} {path}: mtime"
            );
            let src = fs.open(ino).expect("open");
            let data = read_all(&src);
            assert_eq!(
                hex(&Sha256::digest(&data)),
                e["sha256"].as_str().expect("sha"),
                "fat{fat} {path}"
            );
            // Random reads of the larger files against the source bytes.
            if size > 2048 {
                let want = content(path, size as usize);
                for _ in 0..40 {
                    let off = rng.next() % (size + 100);
                    let len = (rng.next() % 70_000) as usize;
                    let mut buf = vec![0u8; len];
                    let n = src.read_at(off, &mut buf).expect("read_at");
                    let s = (off as usize).min(want.len());
                    let e = (s + len).min(want.len());
                    assert_eq!(&buf[..n], &want[s..e], "fat{fat} {path} at {off}+{len}");
                }
            }
        }
        // Extra paths the reader shows that the source did not have.
        for path in t.keys() {
            assert!(
                entries.iter().any(|e| e["path"] == path.as_str()),
                "fat{fat}: extra {path}"
            );
        }
    }
}

#[test]
fn names_dates_attributes_and_permissions() {
    let fs = open(image(16));
    let root = fs.root();
    let names: Vec<String> = fs
        .read_dir(root)
        .expect("root")
        .into_iter()
        .map(|e| e.name)
        .collect();
    for n in [
        "UPPER.TXT",
        "lower.txt",
        "UP.low",
        "Mixed.Txt",
        "brød.txt",
        "日本語のファイル.txt",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
    // Case-insensitive lookup, and lookup by the 8.3 alias.
    let upper = resolve(&*fs, "UPPER.TXT");
    assert_eq!(
        fs.lookup(root, "upper.txt").expect("lookup").map(|e| e.ino),
        Some(upper)
    );
    let long = resolve(
        &*fs,
        "this is a rather long file name of more than 45 characters.txt",
    );
    let details: BTreeMap<String, String> =
        fs.details(long).expect("details").into_iter().collect();
    let short = &details["short name"];
    assert!(short.contains('~'), "{short}");
    assert_eq!(
        fs.lookup(root, short).expect("lookup").map(|e| e.ino),
        Some(long)
    );
    // Attributes and the permissions Linux vfat shows.
    let ro = resolve(&*fs, "readonly.txt");
    let d: BTreeMap<String, String> = fs.details(ro).expect("details").into_iter().collect();
    assert_eq!(d["attributes"], "R--A-");
    assert_eq!(fs.metadata(ro).expect("meta").perm, 0o555);
    let hidden = resolve(&*fs, "hidden.txt");
    let d: BTreeMap<String, String> = fs.details(hidden).expect("details").into_iter().collect();
    assert_eq!(d["attributes"], "-H-A-");
    assert_eq!(fs.metadata(hidden).expect("meta").perm, 0o755);
    let root_meta = fs.metadata(root).expect("root");
    assert_eq!(root_meta.perm, 0o755);
    assert!(root_meta.nlink > 2);
    // The mtime is the source's (2020-06-15 12:00:02 UTC for hello.txt).
    let hello = fs.metadata(resolve(&*fs, "hello.txt")).expect("meta");
    assert_eq!(hello.mtime.secs, 1_592_222_402);
    assert!(fs.read_link(hello.ino).is_err());
    // The fragmented file really is in pieces.
    let big = resolve(&*fs, "frag/big.bin");
    let d: BTreeMap<String, String> = fs.details(big).expect("details").into_iter().collect();
    let pieces: u32 = d["fragments"].parse().expect("fragments");
    assert!(pieces > 4, "frag/big.bin in {pieces} fragments");
    let rd: BTreeMap<String, String> = fs.details(root).expect("details").into_iter().collect();
    assert_eq!(rd["FAT type"], "Fat16");
}

#[test]
fn oem_short_names_follow_the_code_page() {
    for fat in SIZES {
        // Default: 850, as mtools wrote them.
        let fs = open(image(fat));
        assert!(fs.lookup(fs.root(), "brød.txt").expect("lookup").is_some());
        let nested = resolve(&*fs, "dir/nested_ñ.txt");
        let d: BTreeMap<String, String> =
            fs.details(nested).expect("details").into_iter().collect();
        assert_eq!(d["short name"], "NESTED_Ñ.TXT");
        // 437: byte 0x9D is ¥ there (Ø in 850); Ñ (0xA5) is the same.
        let opts = FsOptions {
            oem_codepage: Some(437),
            ..Default::default()
        };
        let fs = open_with(image(fat), &opts).expect("open 437");
        let names: Vec<String> = fs
            .read_dir(fs.root())
            .expect("root")
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.iter().any(|n| n == "br¥d.txt"), "{names:?}");
        assert!(
            fs.lookup(resolve(&*fs, "dir"), "nested_ñ.txt")
                .expect("lookup")
                .is_some()
        );
        let opts = FsOptions {
            oem_codepage: Some(1252),
            ..Default::default()
        };
        assert!(matches!(
            open_with(image(fat), &opts),
            Err(FsError::Unsupported { .. })
        ));
    }
}

#[test]
fn deleted_files_are_listed_with_their_guessed_data() {
    for fat in SIZES {
        let m = manifest(fat);
        let fs = open(image(fat));
        let deleted = fs.deleted().expect("deleted");
        let gone = deleted
            .iter()
            .find(|d| d.path == "_one.txt")
            .unwrap_or_else(|| panic!("fat{fat}: {deleted:?}"));
        assert_eq!(gone.meta.size, m["deleted"]["size"].as_u64().expect("size"));
        let data = read_all(&fs.open(gone.ino).expect("open deleted"));
        assert_eq!(
            hex(&Sha256::digest(&data)),
            m["deleted"]["sha256"].as_str().expect("sha")
        );
        let d: BTreeMap<String, String> =
            fs.details(gone.ino).expect("details").into_iter().collect();
        assert!(d.contains_key("deleted"));
        // The small files deleted to fragment big.bin are there too.
        // (mtools reused the entry of small_01 for big.bin.)
        assert!(
            deleted.iter().any(|d| d.path == "frag/_mall_03.bin"),
            "{deleted:?}"
        );
        assert_eq!(deleted.len(), 8, "fat{fat}");
        // A deleted inode is not a live one.
        assert!(fs.lookup(fs.root(), "_one.txt").expect("lookup").is_none());
    }
}

/// The geometry a test needs to patch a volume.
struct Geo {
    fat_type: u32,
    fat_offset: usize,
    fat_bytes: usize,
}

fn geo(img: &[u8]) -> Geo {
    let u16_at = |at: usize| u16::from_le_bytes([img[at], img[at + 1]]) as usize;
    let u32_at =
        |at: usize| u32::from_le_bytes([img[at], img[at + 1], img[at + 2], img[at + 3]]) as usize;
    let ss = u16_at(11);
    let fat_sectors = if u16_at(22) != 0 {
        u16_at(22)
    } else {
        u32_at(36)
    };
    let fat_type = match fs::detect::detect_head(img) {
        Some(FsKind::Fat12) => 12,
        Some(FsKind::Fat16) => 16,
        _ => 32,
    };
    Geo {
        fat_type,
        fat_offset: u16_at(14) * ss,
        fat_bytes: fat_sectors * ss,
    }
}

/// Sets FAT entry `n` of copy `copy` to `v`.
fn set_entry(img: &mut [u8], g: &Geo, copy: usize, n: u32, v: u32) {
    let base = g.fat_offset + copy * g.fat_bytes;
    match g.fat_type {
        12 => {
            let at = base + (n + n / 2) as usize;
            let old = u16::from_le_bytes([img[at], img[at + 1]]);
            let new = if n % 2 == 1 {
                (old & 0x000F) | ((v as u16) << 4)
            } else {
                (old & 0xF000) | (v as u16 & 0xFFF)
            };
            img[at..at + 2].copy_from_slice(&new.to_le_bytes());
        }
        16 => img[base + 2 * n as usize..][..2].copy_from_slice(&(v as u16).to_le_bytes()),
        _ => img[base + 4 * n as usize..][..4].copy_from_slice(&v.to_le_bytes()),
    }
}

fn first_cluster(fs: &dyn Filesystem, ino: Ino) -> u32 {
    let d: BTreeMap<String, String> = fs.details(ino).expect("details").into_iter().collect();
    d["first cluster"].parse().expect("cluster")
}

#[test]
fn a_damaged_first_fat_falls_back_to_the_second() {
    for fat in SIZES {
        let mut img = image(fat);
        let g = geo(&img);
        let (big, first) = {
            let fs = open(img.clone());
            let big = resolve(&*fs, "big/random.bin");
            (big, first_cluster(&*fs, big))
        };
        // Copy 1: wrong media byte in entry 0 and big/random.bin looping.
        img[g.fat_offset] = 0x00;
        set_entry(&mut img, &g, 0, first + 1, first);
        let fs = open(img);
        let w = fs.info().warnings;
        assert!(
            w.len() == 1 && w[0].contains("copy 2") && w[0].contains("media"),
            "fat{fat}: {w:?}"
        );
        let m = manifest(fat);
        let e = m["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["path"] == "big/random.bin")
            .expect("entry");
        let data = read_all(&fs.open(big).expect("open"));
        assert_eq!(
            hex(&Sha256::digest(&data)),
            e["sha256"].as_str().expect("sha")
        );
        check_invariants(&*fs).expect("invariants");
    }
}

#[test]
fn broken_chains_are_named_errors() {
    for fat in SIZES {
        let img = image(fat);
        let g = geo(&img);
        let fs0 = open(img.clone());
        let big = resolve(&*fs0, "big/random.bin");
        let first = first_cluster(&*fs0, big);
        let max = if fat == 12 {
            0xFF0
        } else if fat == 16 {
            0xFFF0
        } else {
            0x0FFF_FFF0
        };
        let cases: [(u32, &str); 4] = [
            (first, "loops"),            // cluster 3 of the chain -> its first
            (max, "outside the volume"), // out of range
            (0x0FFF_FFFF, "ends after"), // too short for the size
            (0, "free entry"),           // a free entry inside the chain
        ];
        for (value, want) in cases {
            let mut img = img.clone();
            for copy in 0..2 {
                set_entry(&mut img, &g, copy, first + 2, value);
            }
            let fs = open(img);
            let err = fs
                .open(big)
                .err()
                .unwrap_or_else(|| panic!("fat{fat}: {want}"))
                .to_string();
            assert!(
                err.contains(want) && err.contains("random.bin"),
                "fat{fat}: {err}"
            );
            // details() still lists the entry, saying the chain is damaged.
            let d: BTreeMap<String, String> =
                fs.details(big).expect("details").into_iter().collect();
            assert!(d["fragments"].starts_with("unknown"), "{d:?}");
        }
        // A looping directory chain: the 3000-entry (300 on FAT12) directory.
        let many = resolve(&*fs0, "many");
        let first = first_cluster(&*fs0, many);
        let mut img = img.clone();
        for copy in 0..2 {
            set_entry(&mut img, &g, copy, first, first);
        }
        let fs = open(img);
        let err = fs.read_dir(many).expect_err("loop").to_string();
        assert!(
            err.contains("loops") && err.contains("many"),
            "fat{fat}: {err}"
        );
    }
}

#[test]
fn bad_boot_sectors_and_truncation_are_named_errors() {
    let img = image(16);
    let cases: [(usize, &[u8], &str); 4] = [
        (11, &[0, 0], "bytes per sector 0"),
        (13, &[6], "sectors per cluster 6"),
        (16, &[0], "no FATs"),
        (14, &[0, 0], "no reserved sectors"),
    ];
    for (at, bytes, want) in cases {
        let mut bad = img.clone();
        bad[at..at + bytes.len()].copy_from_slice(bytes);
        let src: Source = Arc::new(MemSource::new(bad));
        let err = fs::open(FsKind::Fat16, src, &FsOptions::default())
            .err()
            .expect(want)
            .to_string();
        assert!(
            err.contains(want) && err.contains("FAT boot sector at byte"),
            "{err}"
        );
    }
    for fat in SIZES {
        let mut img = image(fat);
        img.truncate(img.len() / 2);
        let err = open_with(img, &FsOptions::default())
            .err()
            .expect("truncated")
            .to_string();
        assert!(err.contains("truncated"), "{err}");
    }
    let src: Source = Arc::new(MemSource::new(vec![0u8; 100]));
    assert!(fs::open(FsKind::Fat12, src, &FsOptions::default()).is_err());
}

#[test]
fn exfat_is_refused_by_name() {
    let p = images_dir().join("fs-heads/exfat.head.zst");
    let head = zstd::decode_all(std::fs::read(p).expect("head").as_slice()).expect("zstd");
    let src: Source = Arc::new(MemSource::new(head));
    assert_eq!(fs::detect(&*src).expect("detect"), Some(FsKind::ExFat));
    assert!(!fs::has_reader(FsKind::ExFat));
    assert!(fs::has_reader(FsKind::Fat32));
    let err = fs::open(FsKind::ExFat, src, &FsOptions::default())
        .err()
        .expect("exfat")
        .to_string();
    assert!(err.contains("exFAT"), "{err}");
}

#[test]
fn concurrent_readers_see_the_same_bytes() {
    let fs = open(image(32));
    let paths = ["big/random.bin", "big/odd.bin", "frag/big.bin", "hello.txt"];
    std::thread::scope(|s| {
        for t in 0..4 {
            let fs = fs.clone();
            s.spawn(move || {
                for round in 0..5 {
                    let path = paths[(t + round) % paths.len()];
                    let ino = resolve(&*fs, path);
                    let data = read_all(&fs.open(ino).expect("open"));
                    assert_eq!(data, content(path, data.len()), "{path}");
                }
            });
        }
    });
}

/// mtools, an independent reader, extracts each image; names, sizes and
/// contents must agree with ours.
#[test]
fn mtools_reads_the_same_tree() {
    let found = std::process::Command::new("mcopy").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test needs mtools' mcopy on PATH (Debian/Ubuntu: apt-get install mtools)"
    );
    for fat in SIZES {
        let dir = tempfile::tempdir().expect("tempdir");
        let img_path = dir.path().join("vol.img");
        std::fs::write(&img_path, image(fat)).expect("write image");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        let run = std::process::Command::new("mcopy")
            .env("LC_ALL", "C.UTF-8")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-s", "-n", "-Q", "-i"])
            .arg(&img_path)
            .arg("::/*")
            .arg(&out)
            .output()
            .expect("run mcopy");
        assert!(
            run.status.success(),
            "mcopy: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let mut theirs = BTreeMap::new();
        let mut stack = vec![out.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir") {
                let e = e.expect("entry");
                let rel = e
                    .path()
                    .strip_prefix(&out)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                if e.file_type().expect("type").is_dir() {
                    stack.push(e.path());
                    theirs.insert(rel, None);
                } else {
                    let data = std::fs::read(e.path()).expect("read");
                    theirs.insert(rel, Some((data.len() as u64, hex(&Sha256::digest(&data)))));
                }
            }
        }
        let fs = open(image(fat));
        let mut ours = BTreeMap::new();
        for (path, (kind, ino)) in tree(&*fs) {
            let v = (kind == FileKind::File).then(|| {
                let data = read_all(&fs.open(ino).expect("open"));
                (data.len() as u64, hex(&Sha256::digest(&data)))
            });
            ours.insert(path, v);
        }
        assert_eq!(ours.len(), theirs.len(), "fat{fat}: entry count");
        // mtools applies the NT lower-case flags to ASCII letters only; we
        // lower-case the whole name, as Windows and Linux do.
        let mtools_case = |p: &str| match p {
            "brød.txt" => "brØd.txt".to_string(),
            "dir/nested_ñ.txt" => "dir/nested_Ñ.txt".to_string(),
            _ => p.to_string(),
        };
        for (path, v) in &ours {
            assert_eq!(theirs.get(&mtools_case(path)), Some(v), "fat{fat}: {path}");
        }
    }
}

#[test]
fn surrogate_pairs_and_orphaned_long_names_in_a_real_directory() {
    // mtools cannot write names outside the BMP: patch one in. The long
    // name of 日本語のファイル.txt (12 units) is the one entry before its
    // 8.3 entry; units 1 and 2 sit at bytes 1..5 of that entry.
    let img = image(16);
    let fs = open(img.clone());
    let ino = resolve(&*fs, "日本語のファイル.txt");
    let d: BTreeMap<String, String> = fs.details(ino).expect("details").into_iter().collect();
    let at =
        usize::from_str_radix(d["entry offset"].trim_start_matches("0x"), 16).expect("offset") - 32;
    let short = d["short name"].clone();
    let want = read_all(&fs.open(ino).expect("open"));
    let mut patched = img.clone();
    patched[at + 1..at + 5].copy_from_slice(&[0x3D, 0xD8, 0x00, 0xDE]);
    let fs = open(patched);
    let e = fs
        .lookup(fs.root(), "😀語のファイル.txt")
        .expect("lookup")
        .expect("surrogate pair name");
    assert_eq!(e.ino, ino);
    assert_eq!(read_all(&fs.open(ino).expect("open")), want);
    check_invariants(&*fs).expect("invariants");
    // A wrong checksum orphans the long name: the 8.3 name is shown.
    let mut orphan = img;
    orphan[at + 13] ^= 0xFF;
    let fs = open(orphan);
    let names: Vec<String> = fs
        .read_dir(fs.root())
        .expect("root")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(!names.iter().any(|n| n == "日本語のファイル.txt"));
    let e = fs
        .lookup(fs.root(), &short)
        .expect("lookup")
        .expect("8.3 name");
    assert_eq!((e.ino, e.name), (ino, short));
}

#[test]
fn the_fat_copy_read_is_the_sound_or_the_active_one() {
    let img = image(32);
    let g = geo(&img);
    let fs0 = open(img.clone());
    let big = resolve(&*fs0, "big/random.bin");
    let first = first_cluster(&*fs0, big);
    let want = read_all(&fs0.open(big).expect("open"));
    // Copies that differ, the first sound: a warning, the first is read.
    let mut differ = img.clone();
    set_entry(&mut differ, &g, 1, first + 1, first);
    let fs = open(differ);
    let w = fs.info().warnings;
    assert!(w.len() == 1 && w[0].contains("differ"), "{w:?}");
    assert_eq!(read_all(&fs.open(big).expect("open")), want);
    // FAT32 with mirroring off (ExtFlags bit 7): only the active FAT
    // counts, whatever the other holds.
    let mut mirror_off = img.clone();
    set_entry(&mut mirror_off, &g, 0, first + 1, first);
    mirror_off[40..42].copy_from_slice(&0x0081u16.to_le_bytes());
    let fs = open(mirror_off.clone());
    assert!(fs.info().warnings.is_empty());
    assert_eq!(read_all(&fs.open(big).expect("open")), want);
    mirror_off[40..42].copy_from_slice(&0x0080u16.to_le_bytes());
    let fs = open(mirror_off);
    let err = fs
        .open(big)
        .err()
        .expect("loop in the active FAT")
        .to_string();
    assert!(err.contains("loops"), "{err}");
    let d: BTreeMap<String, String> = fs
        .details(fs.root())
        .expect("details")
        .into_iter()
        .collect();
    assert_eq!(d["FAT copy read"], "1 of 2");
    assert!(d.contains_key("FSInfo free clusters"), "{d:?}");
}

#[test]
fn the_label_falls_back_to_the_boot_sector() {
    // FAT16: the root directory is the fixed region after the FATs; its
    // first entry is the label mkfs.vfat wrote.
    let mut img = image(16);
    let g = geo(&img);
    let root = g.fat_offset + 2 * g.fat_bytes;
    assert_eq!(&img[root..root + 11], b"FAT16TEST  ");
    img[43..54].copy_from_slice(b"BPB LABEL  ");
    assert_eq!(open(img.clone()).info().label.as_deref(), Some("FAT16TEST"));
    img[root] = 0xE5;
    assert_eq!(open(img.clone()).info().label.as_deref(), Some("BPB LABEL"));
    img[43..54].copy_from_slice(b"NO NAME    ");
    assert_eq!(open(img).info().label, None);
}

/// The fuzz target's seeds (`fuzz/seeds/fat/`, a flags byte then a volume)
/// must take the target's successful path.
#[test]
fn the_fuzz_seeds_are_valid_volumes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/fat");
    let mut seen = 0;
    for e in std::fs::read_dir(dir).expect("seeds") {
        let bytes = std::fs::read(e.expect("seed").path()).expect("read seed");
        let fs = open(bytes[1..].to_vec());
        assert_eq!(check_invariants(&*fs), Ok(4));
        let d = fs.deleted().expect("deleted");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "sub/_one.txt");
        seen += 1;
    }
    assert!(seen >= 2);
}

#[test]
fn a_chain_longer_than_the_size_is_read_to_the_size() {
    for fat in SIZES {
        let mut img = image(fat);
        let fs = open(img.clone());
        let ino = resolve(&*fs, "big/odd.bin");
        // The size field of the 8.3 entry (bytes 28..32) says 4000 bytes.
        let at = ino.0 as usize + 28;
        assert_eq!(
            u32::from_le_bytes(img[at..at + 4].try_into().expect("4 bytes")),
            65_537
        );
        img[at..at + 4].copy_from_slice(&4000u32.to_le_bytes());
        let fs = open(img);
        assert_eq!(fs.metadata(ino).expect("meta").size, 4000);
        assert_eq!(
            read_all(&fs.open(ino).expect("open")),
            content("big/odd.bin", 4000)
        );
    }
}

/// The free space `unused()` reports: the same total as mtools' `mdir`
/// ("N bytes free", counted from the FAT by an independent reader), in
/// ascending, disjoint, cluster-aligned ranges inside the data area that no
/// file uses.
#[test]
fn unused_ranges_add_up_to_mtools_free_bytes() {
    for fat in SIZES {
        let dir = tempfile::tempdir().expect("tempdir");
        let img_path = dir.path().join("vol.img");
        let bytes = image(fat);
        std::fs::write(&img_path, &bytes).expect("write image");
        let run = std::process::Command::new("mdir")
            .env("LC_ALL", "C")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&img_path)
            .arg("::/")
            .output()
            .expect("mdir (Debian: mtools)");
        assert!(run.status.success(), "mdir: {run:?}");
        let text = String::from_utf8_lossy(&run.stdout);
        let line = text
            .lines()
            .find(|l| l.ends_with("bytes free"))
            .expect("mdir's free line");
        let want: u64 = line
            .trim_end_matches("bytes free")
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("number");
        let len = bytes.len() as u64;
        let fs = open(bytes);
        let mut ranges = Vec::new();
        fs.unused(&mut |r| ranges.push(r)).expect("unused");
        let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        assert_eq!(total, want, "FAT{fat}: free bytes");
        for w in ranges.windows(2) {
            assert!(
                w[0].end < w[1].start,
                "FAT{fat}: {w:?} not ascending and merged"
            );
        }
        assert!(ranges.last().is_none_or(|r| r.end <= len));
    }
}
