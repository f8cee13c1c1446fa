//! VHDX images made by qemu-img (`images/containers/vhd.sh`), compared with
//! qemu-img's (and for the differencing disk libvhdi's) raw conversion,
//! plus damaged variants.

use super::*;
use crate::container::vhd::tests::{check_disk, image, siblings, src, stamped};
use crate::container::{MemSiblings, NoSiblings, open};

fn open_image(name: &str, sib: &MemSiblings) -> Disk {
    open(src(image(name)), name, sib).expect("open")
}

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(
        guid_string(&BAT_REGION),
        "2dc27766-f623-4200-9d64-115e9bfd4a08"
    );
}

#[test]
fn fixed_and_dynamic_equal_their_raw_disks() {
    for (name, table, variant) in [
        ("gpt-fixed.vhdx", "gpt", "fixed"),
        ("gpt-dynamic.vhdx", "gpt", "dynamic"),
        ("gpt-bs1m.vhdx", "gpt", "dynamic"),
        ("mbr-fixed.vhdx", "mbr", "fixed"),
        ("mbr-dynamic.vhdx", "mbr", "dynamic"),
    ] {
        let disk = open(src(image(name)), "", &NoSiblings).expect("open");
        assert_eq!(disk.info.format, "VHDX");
        assert_eq!(disk.info.variant, variant, "{name}");
        assert_eq!(disk.info.virtual_size, 8 << 20);
        assert_eq!(disk.info.logical_sector_size, Some(512));
        assert!(disk.info.warnings.is_empty(), "{:?}", disk.info.warnings);
        check_disk(&disk, name, &stamped(table), Some(table));
    }
    let disk = open_image("gpt-bs1m.vhdx", &MemSiblings::default());
    assert!(
        disk.info.extents[0]
            .kind
            .contains("of 8 blocks of 1048576 bytes"),
        "{:?}",
        disk.info.extents
    );
}

#[test]
fn differencing_equals_libvhdi_flattening() {
    let sib = siblings(&[("base.vhdx", image("gpt-dynamic.vhdx"))]);
    let disk = open_image("diff.vhdx", &sib);
    assert_eq!(disk.info.variant, "differencing");
    assert_eq!(disk.info.parent_name.as_deref(), Some(r".\base.vhdx"));
    assert_eq!(
        disk.info.parent.as_ref().map(|p| p.variant.as_str()),
        Some("dynamic")
    );
    assert!(disk.info.warnings.is_empty(), "{:?}", disk.info.warnings);
    assert!(disk.info.extents[0].kind.contains("1 of 8 blocks"));
    check_disk(&disk, "diff.vhdx", &image("diff.vhdx.raw"), Some("gpt"));
}

#[test]
fn parent_with_other_data_write_guid_is_a_warning() {
    // A parent with the same content but another DataWriteGuid.
    let sib = siblings(&[("base.vhdx", image("gpt-fixed.vhdx"))]);
    let disk = open_image("diff.vhdx", &sib);
    assert!(
        disk.info
            .warnings
            .iter()
            .any(|w| w.contains("parent_linkage")),
        "{:?}",
        disk.info.warnings
    );
    check_disk(&disk, "diff.vhdx", &image("diff.vhdx.raw"), None);
}

#[test]
fn missing_parent_and_loops_are_errors() {
    let r = open(src(image("diff.vhdx")), "diff.vhdx", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Sibling { format: "VHDX", name, .. }) if name == r".\base.vhdx"),
        "{:?}",
        r.err()
    );
    let sib = siblings(&[("base.vhdx", image("diff.vhdx"))]);
    let r = open(src(image("diff.vhdx")), "diff.vhdx", &sib);
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

/// Rewrites the header at `at` with `edit` applied and its CRC fixed.
fn patch_header(bytes: &mut [u8], at: usize, edit: impl FnOnce(&mut [u8])) {
    let h = &mut bytes[at..at + HEADER_LEN];
    edit(h);
    h[4..8].fill(0);
    let sum = crc32c(h);
    h[4..8].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn one_damaged_header_falls_back_with_a_warning_both_is_an_error() {
    let mut bytes = image("gpt-dynamic.vhdx");
    bytes[64 * 1024 + 200] ^= 1;
    let disk = open(src(bytes.clone()), "", &NoSiblings).expect("open");
    assert!(
        disk.info
            .warnings
            .iter()
            .any(|w| w.contains("64 KiB is damaged")),
        "{:?}",
        disk.info.warnings
    );
    check_disk(&disk, "gpt-dynamic.vhdx", &stamped("gpt"), None);
    bytes[128 * 1024 + 200] ^= 1;
    let r = open(src(bytes), "", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Corrupt { structure: "VHDX header", detail, .. }) if detail.contains("both")),
        "{:?}",
        r.err()
    );
}

#[test]
fn the_newer_header_wins() {
    // Give the header at 64 KiB a newer sequence number and a log GUID:
    // the log is found only if that header is chosen.
    let mut bytes = image("gpt-dynamic.vhdx");
    let other = le64(&bytes, 128 * 1024 + 8);
    patch_header(&mut bytes, 64 * 1024, |h| {
        h[8..16].copy_from_slice(&(other + 1).to_le_bytes());
        h[48] = 1;
    });
    let r = open(src(bytes.clone()), "", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::LogNeedsReplay { format: "VHDX", detail }) if detail.contains("log 00000001-")),
        "{:?}",
        r.err()
    );
    patch_header(&mut bytes, 64 * 1024, |h| {
        h[8..16].copy_from_slice(&(other - 1).to_le_bytes());
    });
    open(src(bytes), "", &NoSiblings).expect("the older header's log is not looked at");
}

#[test]
fn region_table_damage() {
    let mut bytes = image("gpt-dynamic.vhdx");
    bytes[192 * 1024 + 100] ^= 1;
    let disk = open(src(bytes.clone()), "", &NoSiblings).expect("the copy serves");
    assert!(
        disk.info
            .warnings
            .iter()
            .any(|w| w.contains("region table"))
    );
    bytes[256 * 1024 + 100] ^= 1;
    let r = open(src(bytes), "", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Corrupt { structure: "VHDX region table", detail, .. }) if detail.contains("CRC-32C")),
        "{:?}",
        r.err()
    );
}

/// Applies `edit` to both region tables and fixes their CRCs.
fn patch_regions(bytes: &mut [u8], edit: impl Fn(&mut [u8])) {
    for at in REGION_TABLES {
        let t = &mut bytes[at as usize..at as usize + REGION_TABLE_LEN];
        edit(t);
        t[4..8].fill(0);
        let sum = crc32c(t);
        t[4..8].copy_from_slice(&sum.to_le_bytes());
    }
}

fn metadata_offset(bytes: &[u8]) -> usize {
    let t = &bytes[192 * 1024..];
    (0..le32(t, 8) as usize)
        .find(|&i| guid_at(t, 16 + 32 * i) == METADATA_REGION)
        .map(|i| le64(t, 16 + 32 * i + 16) as usize)
        .expect("metadata region")
}

/// The offset in the file of metadata item `id`'s data.
fn item_offset(bytes: &[u8], id: Guid) -> usize {
    let m = metadata_offset(bytes);
    (0..usize::from(le16(bytes, m + 10)))
        .find(|&i| guid_at(bytes, m + 32 + 32 * i) == id)
        .map(|i| m + le32(bytes, m + 32 + 32 * i + 16) as usize)
        .expect("item")
}

#[test]
fn unknown_required_region_and_item_are_unsupported() {
    let mut bytes = image("gpt-dynamic.vhdx");
    patch_regions(&mut bytes, |t| {
        let n = le32(t, 8) as usize;
        t[16 + 32 * n..16 + 32 * n + 16].fill(0x42);
        t[16 + 32 * n + 28] = 1;
        t[8..12].copy_from_slice(&(n as u32 + 1).to_le_bytes());
    });
    let r = open(src(bytes), "", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Unsupported { format: "VHDX", detail }) if detail.contains("region")),
        "{:?}",
        r.err()
    );
    let mut bytes = image("gpt-dynamic.vhdx");
    let m = metadata_offset(&bytes);
    bytes[m + 32..m + 48].fill(0x42); // the first item, now unknown and required
    bytes[m + 32 + 24] |= 4;
    let r = open(src(bytes), "", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Unsupported { format: "VHDX", detail }) if detail.contains("metadata item")),
        "{:?}",
        r.err()
    );
}

#[test]
fn absurd_sizes_are_errors_without_huge_allocations() {
    let base = image("gpt-dynamic.vhdx");
    // Block size 1 GiB.
    let mut bytes = base.clone();
    let at = item_offset(&bytes, FILE_PARAMETERS);
    bytes[at..at + 4].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let r = open(src(bytes), "", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::Corrupt { detail, .. }) if detail.contains("block size"))
    );
    // 64 TiB: the BAT does not fit its region.
    let mut bytes = base.clone();
    let at = item_offset(&bytes, VIRTUAL_DISK_SIZE);
    bytes[at..at + 8].copy_from_slice(&(64u64 << 40).to_le_bytes());
    let r = open(src(bytes.clone()), "", &NoSiblings);
    assert!(
        matches!(
            &r,
            Err(ContainerError::Corrupt {
                structure: "VHDX BAT",
                ..
            })
        ),
        "{:?}",
        r.err()
    );
    // 2^63 bytes.
    bytes[at..at + 8].copy_from_slice(&(1u64 << 63).to_le_bytes());
    let r = open(src(bytes), "", &NoSiblings);
    assert!(
        matches!(
            &r,
            Err(ContainerError::Corrupt {
                structure: "VHDX virtual disk size",
                ..
            })
        ),
        "{:?}",
        r.err()
    );
}

#[test]
fn bat_entry_past_the_end_fails_the_read_naming_it() {
    let mut bytes = image("gpt-bs1m.vhdx");
    let t = &bytes[192 * 1024..];
    let bat = (0..le32(t, 8) as usize)
        .find(|&i| guid_at(t, 16 + 32 * i) == BAT_REGION)
        .map(|i| le64(t, 16 + 32 * i + 16) as usize)
        .expect("BAT");
    // Block 1: FULLY_PRESENT at 1 TiB.
    bytes[bat + 8..bat + 16].copy_from_slice(&((1u64 << 40) | 6).to_le_bytes());
    // Block 2: an invalid state.
    bytes[bat + 16..bat + 24].copy_from_slice(&4u64.to_le_bytes());
    // Block 3: partially present in a disk with no parent.
    bytes[bat + 24] = (bytes[bat + 24] & !7) | 7;
    let disk = open(src(bytes), "", &NoSiblings).expect("open");
    let mut buf = [0u8; 512];
    for (block, what) in [(1u64, "entry 1"), (2, "entry 2"), (3, "entry 3")] {
        let e = disk
            .data
            .read_exact_at(block << 20, &mut buf)
            .expect_err("bad entry");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string().contains("VHDX BAT") && e.to_string().contains(what),
            "{e}"
        );
    }
    disk.data.read_exact_at(0, &mut buf).expect("block 0 reads");
}

#[test]
fn truncated_files_are_errors() {
    let bytes = image("gpt-dynamic.vhdx");
    for cut in [
        8,
        4096,
        65536 + 4096,
        200 * 1024,
        320 * 1024,
        1 << 20,
        3 << 20,
    ] {
        let r = open(src(bytes[..cut].to_vec()), "", &NoSiblings);
        assert!(
            matches!(&r, Err(ContainerError::Corrupt { .. })),
            "cut {cut}: {:?}",
            r.err()
        );
    }
}

#[test]
fn logical_sectors_of_4096_bytes() {
    // qemu-img cannot make these: patch the 1 MiB-block image's logical
    // sector size. The chunk ratio grows to 32768, which moves no payload
    // entry of an 8-block disk, so the content stays the same.
    let mut bytes = image("gpt-bs1m.vhdx");
    let at = item_offset(&bytes, LOGICAL_SECTOR_SIZE);
    bytes[at..at + 4].copy_from_slice(&4096u32.to_le_bytes());
    let disk = open(src(bytes.clone()), "", &NoSiblings).expect("open");
    assert_eq!(disk.info.logical_sector_size, Some(4096));
    check_disk(&disk, "gpt-bs1m.vhdx", &stamped("gpt"), None);
    bytes[at..at + 4].copy_from_slice(&1024u32.to_le_bytes());
    let r = open(src(bytes), "", &NoSiblings);
    assert!(
        matches!(
            &r,
            Err(ContainerError::Corrupt {
                structure: "VHDX logical sector size",
                ..
            })
        ),
        "{:?}",
        r.err()
    );
}

/// The stamped GPT disk as `gpt-log.vhdx`'s log changes it (see
/// `vhd-diff.py pending-log`).
fn replayed_raw() -> Vec<u8> {
    let mut raw = stamped("gpt");
    raw[1 << 20..(1 << 20) + 4096].fill(0xC3);
    raw[(1 << 20) + 4096..(1 << 20) + 12288].fill(0);
    raw[5 << 20..6 << 20].fill(0);
    raw
}

#[test]
fn pending_log_is_replayed_in_memory_as_qemu_replays_it() {
    let disk = open_image("gpt-log.vhdx", &MemSiblings::default());
    assert!(
        disk.info
            .warnings
            .iter()
            .any(|w| w.contains("replayed the log 0d15ea5e-")),
        "{:?}",
        disk.info.warnings
    );
    check_disk(&disk, "gpt-log.vhdx", &replayed_raw(), Some("gpt"));
}

#[test]
fn log_that_cannot_be_replayed_is_refused() {
    let bytes = image("gpt-log.vhdx");
    let log = 1 << 20; // qemu's log region
    // A broken entry CRC: no valid sequence.
    let mut broken = bytes.clone();
    broken[log + 100] ^= 1;
    let r = open(src(broken), "", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::LogNeedsReplay { detail, .. }) if detail.contains("no valid log sequence")),
        "{:?}",
        r.err()
    );
    // A log written to a longer file than this one.
    let mut longer = bytes.clone();
    longer[log + 48..log + 56].copy_from_slice(&(1u64 << 40).to_le_bytes());
    longer[log + 4..log + 8].fill(0);
    let len = le32(&longer, log + 8) as usize;
    let sum = crc32c(&longer[log..log + len]);
    longer[log + 4..log + 8].copy_from_slice(&sum.to_le_bytes());
    let r = open(src(longer), "", &NoSiblings);
    assert!(
        matches!(&r, Err(ContainerError::LogNeedsReplay { detail, .. }) if detail.contains("at least")),
        "{:?}",
        r.err()
    );
    // The log region past the end of the file.
    let mut moved = bytes;
    patch_header(&mut moved, 64 * 1024, |h| {
        h[72..80].copy_from_slice(&(1u64 << 40).to_le_bytes())
    });
    patch_header(&mut moved, 128 * 1024, |h| {
        h[72..80].copy_from_slice(&(1u64 << 40).to_le_bytes())
    });
    let r = open(src(moved), "", &NoSiblings);
    assert!(
        matches!(
            &r,
            Err(ContainerError::Corrupt {
                structure: "VHDX log",
                ..
            })
        ),
        "{:?}",
        r.err()
    );
}

/// A log entry with one data descriptor writing `fill` over 4 KiB at
/// `offset`, as [MS-VHDX] 2.3.1 lays it out.
fn log_entry(seq: u64, tail: u32, guid: &Guid, offset: u64, fill: u8, file_len: u64) -> Vec<u8> {
    let mut e = vec![0u8; 8192];
    e[..4].copy_from_slice(b"loge");
    e[8..12].copy_from_slice(&8192u32.to_le_bytes());
    e[12..16].copy_from_slice(&tail.to_le_bytes());
    e[16..24].copy_from_slice(&seq.to_le_bytes());
    e[24..28].copy_from_slice(&1u32.to_le_bytes());
    e[32..48].copy_from_slice(guid);
    e[48..56].copy_from_slice(&file_len.to_le_bytes());
    e[56..64].copy_from_slice(&file_len.to_le_bytes());
    e[64..68].copy_from_slice(b"desc");
    e[68..72].fill(fill); // trailing bytes
    e[72..80].fill(fill); // leading bytes
    e[80..88].copy_from_slice(&offset.to_le_bytes());
    e[88..96].copy_from_slice(&seq.to_le_bytes());
    e[4096..4100].copy_from_slice(b"data");
    e[4100..4104].copy_from_slice(&((seq >> 32) as u32).to_le_bytes());
    e[4104..8188].fill(fill);
    e[8188..8192].copy_from_slice(&(seq as u32).to_le_bytes());
    let sum = crc32c(&e);
    e[4..8].copy_from_slice(&sum.to_le_bytes());
    e
}

#[test]
fn the_active_log_sequence_is_the_newest_unbroken_one() {
    let mut bytes = image("gpt-bs1m.vhdx");
    let len = bytes.len() as u64;
    let guid: Guid = [7; 16];
    let t = &bytes[192 * 1024..];
    let bat = (0..le32(t, 8) as usize)
        .find(|&i| guid_at(t, 16 + 32 * i) == BAT_REGION)
        .map(|i| le64(t, 16 + 32 * i + 16) as usize)
        .expect("BAT");
    let block1 = (le64(&bytes, bat + 8) >> 20) << 20;
    let log = 1 << 20;
    // A (seq 5) then B (seq 6), both with their tail at A: B wins over A.
    let a = log_entry(5, 0, &guid, block1, 0x11, len);
    let b = log_entry(6, 0, &guid, block1, 0x22, len);
    // C (seq 9) belongs to another log; D (seq 20) names a tail with no
    // entry: neither can be the head.
    let c = log_entry(9, 16384, &[8; 16], block1, 0x33, len);
    let d = log_entry(20, 65536, &guid, block1, 0x44, len);
    for (at, e) in [(0, a), (8192, b), (16384, c), (32768, d)] {
        bytes[log + at..log + at + e.len()].copy_from_slice(&e);
    }
    for h in [64 * 1024, 128 * 1024] {
        patch_header(&mut bytes, h, |h| h[48..64].copy_from_slice(&guid));
    }
    let disk = open(src(bytes), "", &NoSiblings).expect("open");
    let mut buf = [0u8; 4096];
    disk.data.read_exact_at(1 << 20, &mut buf).expect("read");
    assert!(buf.iter().all(|&b| b == 0x22), "{:x?}", &buf[..16]);
    let mut rest = [0u8; 512];
    disk.data
        .read_exact_at((1 << 20) + 4096, &mut rest)
        .expect("read");
    assert_eq!(
        &rest[..],
        &stamped("gpt")[(1 << 20) + 4096..(1 << 20) + 4608]
    );
}
