//! VMDK images made by qemu-img and qemu-io (`images/containers/vmdk.sh`),
//! compared byte for byte with the raw disks they were made from, plus a
//! streamOptimized file written here with its grain directory in the
//! footer, and damaged variants of each.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use super::super::{ContainerError, Context, MemSiblings, NoSiblings, Siblings, open};
use super::*;
use crate::io::MemSource;
use crate::partition::read_table;

const SUBFORMATS: [&str; 5] = [
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
];

fn images() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/containers")
}

fn unzstd(path: PathBuf) -> Vec<u8> {
    let packed = std::fs::read(&path).expect("test image (images/containers/vmdk.sh)");
    zstd::decode_all(packed.as_slice()).expect("zstd")
}

/// Every file of `images/containers/vmdk/`, decompressed, by name; plus
/// the delta disk's base, which is the MBR disk's monolithicSparse file.
fn files() -> &'static HashMap<String, Arc<[u8]>> {
    static FILES: OnceLock<HashMap<String, Arc<[u8]>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut m: HashMap<String, Arc<[u8]>> = HashMap::new();
        for e in std::fs::read_dir(images().join("vmdk")).expect("vmdk dir") {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string();
            match name.strip_suffix(".zst") {
                Some(stem) => m.insert(stem.to_string(), Arc::from(unzstd(path))),
                None => m.insert(name, Arc::from(std::fs::read(path).expect("read"))),
            };
        }
        let base = m["mbr-monolithicSparse.vmdk"].clone();
        m.insert("delta-base.vmdk".into(), base);
        m
    })
}

fn file(name: &str) -> Vec<u8> {
    files()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_vec()
}

fn raw(disk: &str) -> &'static [u8] {
    static RAW: OnceLock<HashMap<&'static str, Vec<u8>>> = OnceLock::new();
    &RAW.get_or_init(|| {
        ["gpt", "mbr"]
            .into_iter()
            .map(|d| (d, unzstd(images().join(format!("stamped-{d}.raw.zst")))))
            .collect()
    })[disk]
}

fn siblings() -> MemSiblings {
    let mut s = MemSiblings::default();
    for (name, data) in files() {
        s.0.insert(name.clone(), Arc::new(MemSource::new(data.clone())));
    }
    s
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn expected_sha(name: &str) -> String {
    let sums = String::from_utf8(file("SHA256SUMS")).expect("utf-8");
    sums.lines()
        .find_map(|l| l.strip_suffix(&format!("  {name}")))
        .unwrap_or_else(|| panic!("{name} not in SHA256SUMS"))
        .to_string()
}

fn open_in(name: &str, sib: &dyn Siblings) -> Result<Disk, ContainerError> {
    let data: Source = Arc::new(MemSource::new(file(name)));
    open(data, name, sib)
}

fn read_all(src: &dyn ReadAt) -> Vec<u8> {
    let mut b = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut b).expect("read whole disk");
    b
}

/// A seeded xorshift generator: reproducible random reads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random reads across grain and extent boundaries and past the end.
fn random_reads(src: &dyn ReadAt, flat: &[u8], seed: u64) {
    let mut rng = Rng(seed | 1);
    let len = flat.len() as u64;
    for i in 0..400 {
        let offset = match i % 4 {
            // Near a 64 KiB grain boundary.
            0 => {
                ((rng.next() % (len / 65536 + 1)) * 65536 + (rng.next() % 1024)).saturating_sub(512)
            }
            // Near the end.
            1 => len.saturating_sub(rng.next() % 70_000),
            _ => rng.next() % (len + 4096),
        };
        let want = (rng.next() % 200_000) as usize;
        let mut buf = vec![0x5Au8; want];
        let n = src.read_at(offset, &mut buf).expect("read");
        let start = (offset.min(len)) as usize;
        let end = (start + want).min(flat.len());
        assert_eq!(n, end - start, "length of read {want} at {offset}");
        assert!(
            buf[..n] == flat[start..end],
            "bytes of read {want} at {offset}"
        );
    }
}

/// The table read from the disk lists what sfdisk listed.
fn table_matches_sfdisk(disk: &dyn ReadAt, which: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images");
    let text = std::fs::read_to_string(dir.join(format!("{which}.sfdisk.json"))).expect("dump");
    let o: serde_json::Value = serde_json::from_str(&text).expect("json");
    let parts = o["partitiontable"]["partitions"]
        .as_array()
        .expect("partitions");
    let t = read_table(disk, 512).expect("table");
    assert_eq!(t.partitions.len(), parts.len());
    for (p, q) in t.partitions.iter().zip(parts) {
        assert_eq!(Some(p.start / 512), q["start"].as_u64());
        assert_eq!(Some(p.len / 512), q["size"].as_u64());
    }
}

#[test]
fn every_form_reads_like_the_raw_disk() {
    let sib = siblings();
    for which in ["gpt", "mbr"] {
        let flat = raw(which);
        for (i, sub) in SUBFORMATS.iter().enumerate() {
            let name = format!("{which}-{sub}.vmdk");
            let disk = open_in(&name, &sib).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(disk.info.format, "VMDK", "{name}");
            assert_eq!(disk.info.variant, *sub, "{name}");
            assert_eq!(disk.info.virtual_size, 8 << 20, "{name}");
            assert_eq!(disk.data.len(), 8 << 20, "{name}");
            assert!(
                disk.info.warnings.is_empty(),
                "{name}: {:?}",
                disk.info.warnings
            );
            assert!(disk.info.parent.is_none());
            let all = read_all(&*disk.data);
            assert!(all == flat, "{name}: content differs from the raw disk");
            assert_eq!(sha256(&all), expected_sha(&name), "{name}");
            random_reads(&*disk.data, flat, 0x9e37_79b9 + i as u64);
            table_matches_sfdisk(&*disk.data, which);
        }
    }
}

#[test]
fn descriptor_extents_are_listed() {
    let disk = open_in("mbr-twoGbMaxExtentFlat.vmdk", &siblings()).expect("open");
    assert_eq!(
        disk.info.extents,
        [ExtentInfo {
            kind: "FLAT".into(),
            file: Some("mbr-twoGbMaxExtentFlat-f001.vmdk".into()),
            start: 0,
            len: 8 << 20,
            file_offset: 0,
        }]
    );
}

#[test]
fn delta_disk_reads_through_its_parent() {
    let disk = open_in("delta-child.vmdk", &siblings()).expect("open");
    assert_eq!(disk.info.variant, "monolithicSparse");
    assert_eq!(disk.info.parent_name.as_deref(), Some("delta-base.vmdk"));
    let parent = disk.info.parent.as_ref().expect("parent info");
    assert_eq!(parent.variant, "monolithicSparse");
    assert!(disk.info.warnings.is_empty(), "{:?}", disk.info.warnings);
    let want = file("delta-child.raw");
    let all = read_all(&*disk.data);
    assert!(all == want, "differs from qemu-img's flattened raw");
    assert_eq!(sha256(&all), expected_sha("delta-child.vmdk"));
    // The writes are there, the parent's stamps around them.
    assert_eq!(all[1 << 20], 0x5a);
    assert_ne!(all, raw("mbr"));
    random_reads(&*disk.data, &want, 7);
    table_matches_sfdisk(&*disk.data, "mbr");
}

#[test]
fn parent_with_another_cid_is_a_warning() {
    let mut child = file("delta-child.vmdk");
    let at = child
        .windows(10)
        .position(|w| w == b"parentCID=")
        .expect("parentCID")
        + 10;
    child[at..at + 8].copy_from_slice(b"00000000");
    let mut sib = siblings();
    sib.0.insert(
        "delta-child.vmdk".into(),
        Arc::new(MemSource::new(child.clone())),
    );
    let disk = open(Arc::new(MemSource::new(child)), "delta-child.vmdk", &sib).expect("open");
    assert!(
        disk.info.warnings.iter().any(|w| w.contains("parentCID")),
        "{:?}",
        disk.info.warnings
    );
    assert!(read_all(&*disk.data) == file("delta-child.raw"));
}

#[test]
fn multi_extent_descriptor() {
    let disk = open_in("multi.vmdk", &siblings()).expect("open");
    assert_eq!(disk.info.variant, "custom");
    let kinds: Vec<_> = disk.info.extents.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["FLAT", "FLAT", "ZERO", "SPARSE"]);
    assert_eq!(disk.info.extents[1].file_offset, 8 * 512);
    assert_eq!(disk.info.extents[3].start, 10240 * 512);
    let mut want = raw("mbr").to_vec();
    want[9216 * 512..10240 * 512].fill(0);
    let all = read_all(&*disk.data);
    assert!(all == want);
    assert_eq!(sha256(&all), expected_sha("multi.vmdk"));
    random_reads(&*disk.data, &want, 11);
    table_matches_sfdisk(&*disk.data, "mbr");
}

#[test]
fn probe_finds_descriptors_and_sparse_files() {
    let probe = |head: &[u8]| {
        Vmdk.probe(&Probe {
            head,
            src: &MemSource::new(head.to_vec()),
            name_hint: "",
        })
        .expect("probe")
    };
    assert!(probe(b"KDMV\x01\0\0\0"));
    assert!(probe(b"COWD\x01\0\0\0"));
    assert!(probe(
        b"\xef\xbb\xbf\r\n  # Disk DescriptorFile\nversion=1\n"
    ));
    assert!(probe(b"version=1\ncreateType=\"custom\"\nRW 8 ZERO\n"));
    assert!(!probe(b"createType=\"custom\"\n"));
    assert!(!probe(b"\0\0\0\0"));
    let cowd: Source = Arc::new(MemSource::new(b"COWD\x01\0\0\0".repeat(64)));
    assert!(matches!(
        open(cowd, "esx.vmdk", &NoSiblings),
        Err(ContainerError::Unsupported { .. })
    ));
}

fn descriptor_disk(text: &str, sib: &MemSiblings) -> Result<Disk, ContainerError> {
    open(
        Arc::new(MemSource::new(text.as_bytes().to_vec())),
        "d.vmdk",
        sib,
    )
}

#[test]
fn zero_and_noaccess_extents() {
    let mut sib = MemSiblings::default();
    sib.0
        .insert("f.bin".into(), Arc::new(MemSource::new(vec![0xABu8; 4096])));
    let disk = descriptor_disk(
        "# Disk DescriptorFile\ncreateType=\"custom\"\nRW 2 FLAT \"f.bin\" 1\nRW 3 ZERO\nNOACCESS 1 FLAT \"f.bin\" 0\nRDONLY 1 FLAT \"f.bin\"\n",
        &sib,
    )
    .expect("open");
    let all = read_all(&*disk.data);
    assert_eq!(all.len(), 7 * 512);
    assert!(all[..1024].iter().all(|&b| b == 0xAB));
    assert!(all[1024..3072].iter().all(|&b| b == 0));
    assert!(all[3072..].iter().all(|&b| b == 0xAB));
    assert_eq!(disk.info.warnings.len(), 1, "{:?}", disk.info.warnings);
    assert!(disk.info.warnings[0].contains("NOACCESS"));
}

// ---- A streamOptimized file written here, grain directory in the footer.

fn le32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn le64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn pad(v: &mut Vec<u8>) {
    v.resize(v.len().div_ceil(512) * 512, 0);
}

fn header(capacity: u64, grain: u64, gd: u64) -> Vec<u8> {
    let mut h = b"KDMV".to_vec();
    le32(&mut h, 3);
    le32(&mut h, 1 | 1 << 16 | 1 << 17);
    le64(&mut h, capacity);
    le64(&mut h, grain);
    le64(&mut h, 0);
    le64(&mut h, 0);
    le32(&mut h, 512);
    le64(&mut h, 0);
    le64(&mut h, gd);
    le64(&mut h, 1);
    h.extend_from_slice(b"\0\n \r\n");
    h.extend_from_slice(&1u16.to_le_bytes());
    pad(&mut h);
    h
}

fn metadata_marker(v: &mut Vec<u8>, sectors: u64, kind: u32) {
    le64(v, sectors);
    le32(v, 0);
    le32(v, kind);
    pad(v);
}

/// A streamOptimized file of `raw` (a whole number of sectors, not
/// necessarily of grains) as VMware writes it: grains, then the GTs, the
/// GD, the footer and the end-of-stream marker.
fn stream_image(raw: &[u8], grain_sectors: u64) -> Vec<u8> {
    use flate2::{Compression, write::ZlibEncoder};
    use std::io::Write;
    let gb = grain_sectors as usize * 512;
    let capacity = raw.len() as u64 / 512;
    let mut f = header(capacity, grain_sectors, u64::MAX);
    let grains = raw.len().div_ceil(gb);
    let mut gt = vec![0u32; grains.div_ceil(512) * 512];
    for (g, chunk) in raw.chunks(gb).enumerate() {
        if chunk.iter().all(|&b| b == 0) {
            continue;
        }
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(chunk).expect("deflate");
        let z = z.finish().expect("deflate");
        gt[g] = (f.len() / 512) as u32;
        le64(&mut f, g as u64 * grain_sectors);
        le32(&mut f, z.len() as u32);
        f.extend_from_slice(&z);
        pad(&mut f);
    }
    let mut gd = Vec::new();
    for table in gt.chunks(512) {
        metadata_marker(&mut f, 4, 1);
        gd.push((f.len() / 512) as u32);
        for &e in table {
            le32(&mut f, e);
        }
    }
    metadata_marker(&mut f, 1, 2);
    let gd_at = f.len() as u64 / 512;
    for e in gd {
        le32(&mut f, e);
    }
    pad(&mut f);
    metadata_marker(&mut f, 1, 3);
    f.extend_from_slice(&header(capacity, grain_sectors, gd_at));
    metadata_marker(&mut f, 0, 0);
    f
}

/// Sectors stamped with their number, some zero grains, a short tail.
fn patterned(sectors: usize) -> Vec<u8> {
    let mut raw = vec![0u8; sectors * 512];
    for (i, s) in raw.chunks_mut(512).enumerate() {
        if (i / 128) % 3 != 1 {
            let line = format!("sector {i} ");
            for (j, b) in s.iter_mut().enumerate() {
                *b = line.as_bytes()[j % line.len()];
            }
        }
    }
    raw
}

#[test]
fn stream_with_footer_and_short_last_grain() {
    let raw = patterned(128 * 20 + 37);
    let image = stream_image(&raw, 128);
    let disk = open(Arc::new(MemSource::new(image)), "s.vmdk", &NoSiblings).expect("open");
    assert_eq!(disk.info.variant, "streamOptimized");
    assert_eq!(disk.info.virtual_size, raw.len() as u64);
    assert!(disk.info.warnings.is_empty(), "{:?}", disk.info.warnings);
    assert!(read_all(&*disk.data) == raw);
    random_reads(&*disk.data, &raw, 3);
}

/// Counts the reads that reach a source.
struct Counting(MemSource, AtomicU64);

impl ReadAt for Counting {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&self, o: u64, b: &mut [u8]) -> io::Result<usize> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.read_at(o, b)
    }
}

#[test]
fn small_reads_inflate_a_grain_once() {
    let inner = Arc::new(Counting(
        MemSource::new(file("mbr-streamOptimized.vmdk")),
        AtomicU64::new(0),
    ));
    let disk = Vmdk
        .open(inner.clone(), "s.vmdk", &Context::new(&NoSiblings))
        .expect("open");
    let flat = raw("mbr");
    // Grain 16 (disk bytes 1 MiB .. +64 KiB) is stamped data of p1.
    let grain = 1u64 << 20;
    let mut b = vec![0u8; 4096];
    disk.data.read_exact_at(grain, &mut b).expect("read");
    let after_first = inner.1.load(Ordering::SeqCst);
    let mut rng = Rng(42);
    for _ in 0..999 {
        let at = grain + rng.next() % (65536 - 4096);
        disk.data.read_exact_at(at, &mut b).expect("read");
        assert!(b[..] == flat[at as usize..at as usize + 4096]);
    }
    assert_eq!(inner.1.load(Ordering::SeqCst), after_first);
    // A 1 MiB read over 16 new grains reads each grain's marker and data
    // once (plus at most a few grain-table blocks).
    let before = inner.1.load(Ordering::SeqCst);
    let mut big = vec![0u8; 1 << 20];
    disk.data.read_exact_at(4 << 20, &mut big).expect("read");
    assert!(big[..] == flat[4 << 20..5 << 20]);
    let reads = inner.1.load(Ordering::SeqCst) - before;
    assert!(reads <= 16 * 2 + 2, "{reads} reads");
}

// ---- Damaged images: each a named error, never a panic.

fn sparse_disk(image: Vec<u8>) -> Result<Disk, ContainerError> {
    open(Arc::new(MemSource::new(image)), "bad.vmdk", &NoSiblings)
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The byte offset of the first allocated GT entry (the first table), its
/// grain, and the GD's offset.
fn first_gte(image: &[u8]) -> (usize, usize, usize) {
    let gd = u64::from_le_bytes(image[56..64].try_into().expect("8")) as usize * 512;
    let gt = u32_le(image, gd) as usize * 512;
    let i = (0..512)
        .find(|i| u32_le(image, gt + i * 4) > 1)
        .expect("an allocated grain");
    (gt + i * 4, i, gd)
}

#[test]
fn truncated_sparse_file() {
    let mut image = file("mbr-monolithicSparse.vmdk");
    image.truncate(4096);
    let e = sparse_disk(image).err().expect("error");
    assert!(
        matches!(
            e,
            ContainerError::Corrupt {
                structure: "VMDK grain directory",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn missing_extent_file() {
    let mut sib = siblings();
    sib.0.remove("multi-b.bin");
    let e = open_in("multi.vmdk", &sib).err().expect("error");
    assert!(
        matches!(&e, ContainerError::Sibling { name, .. } if name == "multi-b.bin"),
        "{e}"
    );
}

#[test]
fn grain_past_end_of_file() {
    let mut image = file("mbr-monolithicSparse.vmdk");
    let (gte, grain, _) = first_gte(&image);
    image[gte..gte + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let disk = sparse_disk(image).expect("opens: the GT is read lazily");
    let mut b = [0u8; 512];
    let e = disk
        .data
        .read_exact_at(grain as u64 * 65536, &mut b)
        .expect_err("error");
    let text = e.to_string();
    assert!(text.contains("VMDK grain table"), "{text}");
    assert!(text.contains(&format!("grain {grain} ")), "{text}");
    assert!(text.contains("past the end"), "{text}");
}

#[test]
fn damaged_primary_directory_falls_back_to_redundant() {
    let mut image = file("mbr-monolithicSparse.vmdk");
    let (_, _, gd) = first_gte(&image);
    image[gd..gd + 4].fill(0xff);
    let disk = sparse_disk(image).expect("open");
    assert!(
        disk.info.warnings.iter().any(|w| w.contains("redundant")),
        "{:?}",
        disk.info.warnings
    );
    assert!(read_all(&*disk.data) == raw("mbr"));
}

#[test]
fn malformed_extent_line() {
    let e = descriptor_disk(
        "# Disk DescriptorFile\nversion=1\ncreateType=\"custom\"\n\nRW 16 FLAT \"a.bin\" 0\nRW sixteen FLAT \"b.bin\" 0\n",
        &MemSiblings::default(),
    )
    .err()
    .expect("error");
    let text = e.to_string();
    assert!(text.contains("line 6"), "{text}");
    for bad in [
        "RW 16 FLOOP \"a\"",
        "RW 16 FLAT",
        "RW 16 FLAT \"a",
        "RW 16 FLAT \"a\" x",
        "RW 16 FLAT \"a\" 0 0",
    ] {
        let d = format!("# Disk DescriptorFile\ncreateType=\"custom\"\n{bad}\n");
        let e = descriptor_disk(&d, &MemSiblings::default())
            .err()
            .expect("error");
        assert!(e.to_string().contains("line 3"), "{bad}: {e}");
    }
}

#[test]
fn flat_extent_larger_than_its_file() {
    let mut sib = MemSiblings::default();
    sib.0
        .insert("f.bin".into(), Arc::new(MemSource::new(vec![1u8; 4096])));
    let e = descriptor_disk(
        "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"f.bin\" 1\n",
        &sib,
    )
    .err()
    .expect("error");
    let text = e.to_string();
    assert!(text.contains("line 3") && text.contains("f.bin"), "{text}");
    let e = descriptor_disk(
        "# Disk DescriptorFile\ncreateType=\"custom\"\nRW 18014398509481984 ZERO\nRW 18014398509481984 ZERO\n",
        &sib,
    )
    .err()
    .expect("error");
    assert!(e.to_string().contains("line 4"), "{e}");
}

#[test]
fn parent_loop_is_a_depth_error() {
    let mut sib = siblings();
    // The base the child names is the child itself.
    sib.0.insert(
        "delta-base.vmdk".into(),
        Arc::new(MemSource::new(file("delta-child.vmdk"))),
    );
    let e = open_in("delta-child.vmdk", &sib).err().expect("error");
    assert!(
        matches!(
            e,
            ContainerError::Corrupt {
                structure: "parent chain",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn corrupted_deflate_stream() {
    let mut image = file("mbr-streamOptimized.vmdk");
    let (gte, grain, _) = first_gte(&image);
    let marker = u32_le(&image, gte) as usize * 512;
    for b in &mut image[marker + 20..marker + 60] {
        *b ^= 0x55;
    }
    let disk = sparse_disk(image).expect("open");
    let mut b = vec![0u8; 65536];
    let e = disk
        .data
        .read_exact_at(grain as u64 * 65536, &mut b)
        .expect_err("error");
    assert!(e.to_string().contains("compressed grain"), "{e}");
    // The marker's LBA is checked too.
    let mut image = file("mbr-streamOptimized.vmdk");
    image[marker] ^= 1;
    let disk = sparse_disk(image).expect("open");
    let e = disk
        .data
        .read_exact_at(grain as u64 * 65536, &mut b)
        .expect_err("error");
    assert!(e.to_string().contains("grain marker"), "{e}");
}

#[test]
fn huge_grain_size_or_capacity() {
    let base = file("mbr-monolithicSparse.vmdk");
    for (at, value) in [
        (20, 1u64 << 40),   // grain size
        (20, 3),            // not a power of two
        (12, u64::MAX / 2), // capacity overflows bytes
        (12, 1 << 50),      // capacity needing a huge grain directory
    ] {
        let mut image = base.clone();
        image[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let e = sparse_disk(image).err().expect("error");
        assert!(matches!(e, ContainerError::Corrupt { .. }), "{e}");
    }
    let mut image = base.clone();
    image[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(sparse_disk(image).is_err());
    let mut image = base;
    image[4..8].copy_from_slice(&9u32.to_le_bytes());
    assert!(matches!(
        sparse_disk(image),
        Err(ContainerError::Unsupported { .. })
    ));
}

#[test]
fn descriptor_fields() {
    let d = descriptor::parse(
        "# Disk DescriptorFile\r\nversion=1\r\nCID=fffffffe\r\nparentCID=12345678\r\ncreateType=\"vmfs\"\r\nparentFileNameHint=\"C:\\vms\\base.vmdk\"\r\nRW 100 VMFS \"my disk-flat.vmdk\"\r\nddb.geometry.cylinders = \"16\"\r\nddb.geometry.heads = \"16\"\r\nddb.geometry.sectors = \"63\"\r\n",
        0,
    )
    .expect("parse");
    assert_eq!(d.version, Some(1));
    assert_eq!(d.cid, Some(0xffff_fffe));
    assert_eq!(d.parent(), Some(r"C:\vms\base.vmdk"));
    assert_eq!(d.create_type.as_deref(), Some("vmfs"));
    assert_eq!(d.extents.len(), 1);
    assert_eq!(d.extents[0].file.as_deref(), Some("my disk-flat.vmdk"));
    assert_eq!(d.extents[0].line, 7);
    assert_eq!(d.geometry.sectors, Some(63));
}

/// Reads from several threads at once see the same bytes (the reader is
/// positional; its caches lock only around lookups).
#[test]
fn concurrent_reads() {
    let disk = open_in("gpt-streamOptimized.vmdk", &siblings()).expect("open");
    let flat = raw("gpt");
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let data = disk.data.clone();
            s.spawn(move || random_reads(&*data, flat, 100 + t));
        }
    });
}
