//! The `.contents/` view of the sfdisk-made test disks.

use std::sync::Arc;

use super::*;
use crate::container::NoSiblings;
use crate::io::{MemSource, ReadAt};

fn load(path: &str) -> Source {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../images")
        .join(path);
    let packed = std::fs::read(&p).expect("test image");
    Arc::new(MemSource::new(
        zstd::decode_all(packed.as_slice()).expect("zstd"),
    ))
}

#[test]
fn gpt_disk_lists_volumes_and_an_mmls_like_table() {
    let img = Image::open(load("gpt.img.zst"), "gpt.img", &NoSiblings).expect("open");
    assert_eq!(img.disk.info.format, "raw");
    assert_eq!(
        img.entries(),
        ["disk.raw", "partitions.txt", "p1.raw", "p2.raw", "p3.raw"]
    );
    let p2 = img.open_entry("p2.raw").expect("p2");
    assert_eq!(p2.len(), 4096 * 512);
    let mut head = [0u8; 2];
    p2.read_exact_at(0, &mut head).expect("read");
    assert_eq!(&head, b"p2");
    assert!(img.open_entry("p4.raw").is_err());
    let rows = img.layout();
    let slots: Vec<(&str, u64, u64)> = rows
        .iter()
        .map(|r| (r.slot.as_str(), r.start / 512, r.len / 512))
        .collect();
    // sfdisk's layout: entries up to LBA 33, partitions at 2048/6144/10240
    // of 4096 sectors each, backup entries in the last 33 sectors of 16384.
    assert_eq!(
        slots,
        [
            ("meta", 0, 1),
            ("meta", 1, 33),
            ("-", 34, 2014),
            ("p1", 2048, 4096),
            ("p2", 6144, 4096),
            ("p3", 10240, 4096),
            ("-", 14336, 2015),
            ("meta", 16351, 33),
        ]
    );
    let sum: u64 = rows.iter().map(|r| r.len).sum();
    assert_eq!(sum, img.disk.data.len(), "every byte accounted for");
    let text = img.partitions_txt();
    assert!(
        text.starts_with("GUID (GPT) partition table, 512-byte sectors"),
        "{text}"
    );
    assert!(
        text.contains("Linux filesystem (0FC63DAF-8483-4772-8E79-3D69D8477DE4) \"linux data\""),
        "{text}"
    );
    assert!(text.contains("unknown"), "{text}");
}

#[test]
fn mbr_disk_hides_the_extended_container() {
    let img = Image::open(load("mbr.img.zst"), "mbr.img", &NoSiblings).expect("open");
    assert_eq!(
        img.entries(),
        [
            "disk.raw",
            "partitions.txt",
            "p1.raw",
            "p2.raw",
            "p5.raw",
            "p6.raw"
        ]
    );
    let text = img.partitions_txt();
    assert!(
        text.contains("Extended partition (Extended (0x05))"),
        "{text}"
    );
    assert!(text.contains("W95 FAT32 (0x0c)"), "{text}");
}

#[test]
fn a_disk_without_table_is_one_volume_with_its_filesystem() {
    let img = Image::open(load("fs-heads/ext4.head.zst"), "", &NoSiblings).expect("open");
    assert_eq!(img.entries(), ["disk.raw", "partitions.txt", "fs.raw"]);
    assert_eq!(
        img.volumes[0].fs.as_ref().ok().copied().flatten(),
        Some(FsKind::Ext4)
    );
}

#[test]
fn gpt_4096_layout_uses_4096_byte_sectors() {
    let img = Image::open(load("gpt4k.img.zst"), "", &NoSiblings).expect("open");
    let t = img.table.as_ref().expect("table");
    assert_eq!(t.sector_size, 4096);
    let text = img.partitions_txt();
    assert!(text.contains("4096-byte sectors"), "{text}");
    let sum: u64 = img.layout().iter().map(|r| r.len).sum();
    assert_eq!(sum, img.disk.data.len());
}
