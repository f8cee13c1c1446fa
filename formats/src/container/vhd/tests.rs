//! VHD images made by qemu-img (`images/containers/vhd.sh`), compared with
//! qemu-img's (and for differencing disks libvhdi's) raw conversion, plus
//! damaged variants. The helpers serve the VHDX tests too.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::*;
use crate::container::{MemSiblings, NoSiblings, open};
use crate::io::MemSource;

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/containers")
}

/// An image of `images/containers/vhd/`, decompressed.
pub(crate) fn image(name: &str) -> Vec<u8> {
    let packed = std::fs::read(dir().join(format!("vhd/{name}.zst")))
        .expect("test image (images/containers/vhd.sh)");
    zstd::decode_all(packed.as_slice()).expect("zstd")
}

/// A stamped disk (`gpt` or `mbr`), the raw content of every image made
/// from it.
pub(crate) fn stamped(name: &str) -> Vec<u8> {
    let packed = std::fs::read(dir().join(format!("stamped-{name}.raw.zst"))).expect("stamped");
    zstd::decode_all(packed.as_slice()).expect("zstd")
}

/// The SHA-256 of each image's disk as qemu-img (or libvhdi) reads it.
pub(crate) fn expected_sha(name: &str) -> String {
    let text = std::fs::read_to_string(dir().join("vhd/SHA256SUMS")).expect("SHA256SUMS");
    text.lines()
        .find_map(|l| {
            let (sum, file) = l.split_once("  ")?;
            (file == name).then(|| sum.to_string())
        })
        .expect("image listed in SHA256SUMS")
}

pub(crate) fn src(bytes: Vec<u8>) -> Source {
    Arc::new(MemSource::new(bytes))
}

pub(crate) fn siblings(files: &[(&str, Vec<u8>)]) -> MemSiblings {
    let mut m = MemSiblings::default();
    for (name, bytes) in files {
        m.0.insert((*name).to_string(), src(bytes.clone()));
    }
    m
}

fn sha(disk: &dyn ReadAt) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < disk.len() {
        let n = disk.read_at(at, &mut buf).expect("read");
        assert!(n > 0);
        h.update(&buf[..n]);
        at += n as u64;
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The whole disk hashes as expected; reads at pseudo-random offsets and
/// lengths (across block boundaries, past the end) equal `raw`; the
/// partition table equals sfdisk's dump of the stamped disk.
pub(crate) fn check_disk(disk: &Disk, image_name: &str, raw: &[u8], table: Option<&str>) {
    let data = &*disk.data;
    assert_eq!(data.len(), disk.info.virtual_size);
    assert_eq!(data.len(), raw.len() as u64, "{image_name} size");
    assert_eq!(sha(data), expected_sha(image_name), "{image_name} SHA-256");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = raw.len() as u64;
    let mut probes: Vec<(u64, usize)> = (0..200)
        .map(|_| (next() % (len + 4096), (next() % 300_000) as usize))
        .collect();
    // Around every 1 MiB boundary (the smallest block size used).
    for b in (0..=len).step_by(1 << 20) {
        probes.push((b.saturating_sub(700), 1500));
    }
    probes.push((len - 100, 1000));
    for (offset, n) in probes {
        let mut buf = vec![0xEEu8; n];
        let got = data.read_at(offset, &mut buf).expect("read");
        let start = (offset as usize).min(raw.len());
        let want = &raw[start..(start + n).min(raw.len())];
        assert_eq!(got, want.len(), "{image_name}: read {n} at {offset}");
        assert!(buf[..got] == *want, "{image_name}: read {n} at {offset}");
    }
    if let Some(name) = table {
        let t = crate::partition::read_table(data, 512).expect("partition table");
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let path = dir().join(format!("../{name}.sfdisk.json"));
        let o: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("dump")).expect("json");
        let parts = o["partitiontable"]["partitions"].as_array().expect("parts");
        assert_eq!(t.partitions.len(), parts.len());
        for (p, q) in t.partitions.iter().zip(parts) {
            assert_eq!(Some(p.start / 512), q["start"].as_u64());
            assert_eq!(Some(p.len / 512), q["size"].as_u64());
        }
    }
}

fn open_image(name: &str, sib: &MemSiblings) -> Disk {
    open(src(image(name)), name, sib).expect("open")
}

#[test]
fn fixed_and_dynamic_equal_their_raw_disks() {
    for table in ["gpt", "mbr"] {
        let raw = stamped(table);
        for (variant, name) in [
            ("fixed", format!("{table}-fixed.vhd")),
            ("dynamic", format!("{table}-dynamic.vhd")),
        ] {
            let disk = open_image(&name, &MemSiblings::default());
            assert_eq!(disk.info.format, "VHD");
            assert_eq!(disk.info.variant, variant);
            assert_eq!(disk.info.virtual_size, 8 << 20);
            assert!(disk.info.warnings.is_empty(), "{:?}", disk.info.warnings);
            assert_eq!(disk.info.extents.len(), 1);
            check_disk(&disk, &name, &raw, Some(table));
        }
    }
}

#[test]
fn fixed_vhd_is_detected_only_through_its_name() {
    let bytes = image("gpt-fixed.vhd");
    let disk = open(src(bytes.clone()), "DISK.VHD", &NoSiblings).expect("open");
    assert_eq!(disk.info.format, "VHD");
    let disk = open(src(bytes.clone()), "disk.vpc", &NoSiblings).expect("open");
    assert_eq!(disk.info.format, "VHD");
    let disk = open(src(bytes), "disk.img", &NoSiblings).expect("open");
    assert_eq!(disk.info.format, "raw");
}

#[test]
fn old_511_byte_footer_is_accepted() {
    let mut bytes = image("gpt-fixed.vhd");
    bytes.pop();
    let disk = open(src(bytes), "old.vhd", &NoSiblings).expect("open");
    assert_eq!(disk.info.variant, "fixed");
    assert_eq!(disk.info.virtual_size, 8 << 20);
    assert!(disk.info.warnings.iter().any(|w| w.contains("511")));
    check_disk(&disk, "gpt-fixed.vhd", &stamped("gpt"), None);
}

#[test]
fn chs_sized_image_reads_as_qemu_converts_it() {
    // No force_size: qemu rounds 8 MiB up to a CHS geometry and records it
    // as current size; the tail beyond the stamped disk reads as zeros.
    let disk = open_image("gpt-chs.vhd", &MemSiblings::default());
    assert_eq!(disk.info.virtual_size, 8_390_656);
    let mut raw = stamped("gpt");
    raw.resize(8_390_656, 0);
    check_disk(&disk, "gpt-chs.vhd", &raw, None);
}

fn diff_raw(ext: &str) -> Vec<u8> {
    image(&format!("diff.{ext}.raw"))
}

#[test]
fn differencing_equals_libvhdi_flattening() {
    let sib = siblings(&[("base.vhd", image("gpt-dynamic.vhd"))]);
    let disk = open_image("diff.vhd", &sib);
    assert_eq!(disk.info.variant, "differencing");
    assert_eq!(disk.info.parent_name.as_deref(), Some(r".\base.vhd"));
    let parent = disk.info.parent.as_ref().expect("parent");
    assert_eq!((parent.format, parent.variant.as_str()), ("VHD", "dynamic"));
    assert!(disk.info.warnings.is_empty(), "{:?}", disk.info.warnings);
    check_disk(&disk, "diff.vhd", &diff_raw("vhd"), Some("gpt"));
}

#[test]
fn differencing_falls_back_to_the_absolute_locator_and_header_name() {
    let mut bytes = image("diff.vhd");
    // Rename the relative locator's target: the absolute one names
    // C:\vms\base.vhd, found by its last component.
    let hdr = 512;
    let loc_at = be64(&bytes, hdr + 576 + 16) as usize;
    bytes[loc_at + 4] = b'X';
    let sib = siblings(&[("base.vhd", image("gpt-dynamic.vhd"))]);
    let disk = open(src(bytes.clone()), "diff.vhd", &sib).expect("open");
    assert_eq!(disk.info.parent_name.as_deref(), Some(r"C:\vms\base.vhd"));
    // Drop both locators: the header's unicode name remains.
    for i in 0..2 {
        bytes[hdr + 576 + 24 * i..hdr + 576 + 24 * i + 4].fill(0);
    }
    fix_header(&mut bytes, hdr);
    let disk = open(src(bytes), "diff.vhd", &sib).expect("open");
    assert_eq!(disk.info.parent_name.as_deref(), Some("base.vhd"));
    check_disk(&disk, "diff.vhd", &diff_raw("vhd"), None);
}

fn fix_header(bytes: &mut [u8], at: usize) {
    let sum = checksum(&bytes[at..at + HEADER_LEN], 36);
    bytes[at + 36..at + 40].copy_from_slice(&sum.to_be_bytes());
}

fn fix_footers(bytes: &mut [u8]) {
    let n = bytes.len();
    for at in [0, n - 512] {
        let sum = checksum(&bytes[at..at + 512], 64);
        bytes[at + 64..at + 68].copy_from_slice(&sum.to_be_bytes());
    }
}

#[test]
fn parent_with_another_unique_id_is_a_warning() {
    let mut bytes = image("diff.vhd");
    bytes[512 + 40] ^= 0xFF;
    fix_header(&mut bytes, 512);
    let sib = siblings(&[("base.vhd", image("gpt-dynamic.vhd"))]);
    let disk = open(src(bytes), "diff.vhd", &sib).expect("open");
    assert!(
        disk.info.warnings.iter().any(|w| w.contains("unique id")),
        "{:?}",
        disk.info.warnings
    );
}

#[test]
fn missing_parent_is_a_sibling_error() {
    let r = open(src(image("diff.vhd")), "diff.vhd", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Sibling { format: "VHD", name, .. }) if name == r".\base.vhd"),
        "{:?}",
        r.err()
    );
}

#[test]
fn parent_chain_that_loops_is_an_error() {
    // The child is its own parent "base.vhd".
    let sib = siblings(&[("base.vhd", image("diff.vhd"))]);
    let r = open(src(image("diff.vhd")), "diff.vhd", &sib);
    assert!(
        matches!(
            &r,
            Err(ContainerError::Corrupt {
                structure: "parent chain",
                ..
            })
        ),
        "{:?}",
        r.err()
    );
}

#[test]
fn damaged_trailing_footer_falls_back_to_the_copy() {
    let mut bytes = image("gpt-dynamic.vhd");
    let n = bytes.len();
    bytes[n - 100] ^= 1;
    let disk = open(src(bytes.clone()), "d.vhd", &NoSiblings).expect("open");
    assert!(
        disk.info
            .warnings
            .iter()
            .any(|w| w.contains("copy at offset 0"))
    );
    check_disk(&disk, "gpt-dynamic.vhd", &stamped("gpt"), None);
    bytes[100] ^= 1;
    let r = open(src(bytes), "d.vhd", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Corrupt { structure: "VHD footer", detail, .. }) if detail.contains("checksum")),
        "{:?}",
        r.err()
    );
    // A fixed disk has no copy.
    let mut fixed = image("gpt-fixed.vhd");
    let n = fixed.len();
    fixed[n - 100] ^= 1;
    let r = open(src(fixed), "f.vhd", &NoSiblings);
    // The name still says VHD, but the footer is bad: the probe finds the
    // cookie and open reports the checksum.
    assert!(
        matches!(
            &r,
            Err(ContainerError::Corrupt {
                structure: "VHD footer",
                ..
            })
        ),
        "{:?}",
        r.err()
    );
}

#[test]
fn truncated_bat_is_an_error() {
    let bytes = image("gpt-dynamic.vhd");
    let r = open(src(bytes[..1536 + 8].to_vec()), "t.vhd", &NoSiblings);
    assert!(
        matches!(
            &r,
            Err(ContainerError::Corrupt {
                structure: "VHD BAT",
                ..
            })
        ),
        "{:?}",
        r.err()
    );
}

#[test]
fn bat_entry_past_the_end_fails_the_read_naming_it() {
    let mut bytes = image("gpt-dynamic.vhd");
    // Entry 2 (4..6 MiB) points far past the end.
    bytes[1536 + 8..1536 + 12].copy_from_slice(&0x00FF_FFFFu32.to_be_bytes());
    let disk = open(src(bytes), "d.vhd", &NoSiblings).expect("open");
    let mut buf = [0u8; 512];
    disk.data
        .read_exact_at(0, &mut buf)
        .expect("block 0 is fine");
    let e = disk
        .data
        .read_exact_at(4 << 20, &mut buf)
        .expect_err("past EOF");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(
        e.to_string().contains("VHD BAT") && e.to_string().contains("entry 2"),
        "{e}"
    );
}

#[test]
fn absurd_sizes_are_errors_without_huge_allocations() {
    // Block size 2 GiB.
    let mut bytes = image("gpt-dynamic.vhd");
    bytes[512 + 32..512 + 36].copy_from_slice(&0x8000_0000u32.to_be_bytes());
    fix_header(&mut bytes, 512);
    let r = open(src(bytes), "d.vhd", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Corrupt { detail, .. }) if detail.contains("block size"))
    );
    // A disk of 2^62 bytes: the BAT cannot hold it.
    let mut bytes = image("gpt-dynamic.vhd");
    let n = bytes.len();
    for at in [0, n - 512] {
        bytes[at + 48..at + 56].copy_from_slice(&(1u64 << 62).to_be_bytes());
    }
    fix_footers(&mut bytes);
    let r = open(src(bytes.clone()), "d.vhd", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Corrupt { .. })),
        "{:?}",
        r.err()
    );
    // ... and with a BAT that claims to: it does not fit in the file.
    bytes[512 + 28..512 + 32].copy_from_slice(&u32::MAX.to_be_bytes());
    bytes[512 + 32..512 + 36].copy_from_slice(&(256u32 << 20).to_be_bytes());
    fix_header(&mut bytes, 512);
    let r = open(src(bytes), "d.vhd", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Corrupt { .. })),
        "{:?}",
        r.err()
    );
    // A fixed disk larger than its file.
    let mut fixed = image("gpt-fixed.vhd");
    let n = fixed.len();
    fixed[n - 512 + 48..n - 512 + 56].copy_from_slice(&(1u64 << 40).to_be_bytes());
    let sum = checksum(&fixed[n - 512..], 64);
    fixed[n - 512 + 64..n - 512 + 68].copy_from_slice(&sum.to_be_bytes());
    let r = open(src(fixed), "f.vhd", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Corrupt { .. })),
        "{:?}",
        r.err()
    );
}

#[test]
fn mac_file_urls_decode() {
    assert_eq!(
        file_url(b"file://localhost/Users/a/My%20Disk.vhd\0").as_deref(),
        Some("/Users/a/My Disk.vhd")
    );
    assert_eq!(file_url(b"file:///x.vhd").as_deref(), Some("/x.vhd"));
    assert_eq!(file_url(b"nohost").as_deref(), None);
    assert_eq!(file_url(b"/a%2").as_deref(), Some("/a%2"));
}

#[test]
fn garbage_never_panics() {
    // Every prefix of a differencing disk's first sectors behind a valid
    // footer copy, and random bytes with the cookie.
    let base = image("diff.vhd");
    let sib = siblings(&[("base.vhd", image("gpt-dynamic.vhd"))]);
    for cut in [0, 1, 8, 511, 512, 600, 1024, 1536, 1540, 3000] {
        let _ = open(src(base[..cut.min(base.len())].to_vec()), "x.vhd", &sib);
    }
    let mut x = 7u32;
    let mut junk: Vec<u8> = (0..8192)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    junk[..8].copy_from_slice(COOKIE);
    let _ = open(src(junk), "x.vhd", &MemSiblings::default());
}
