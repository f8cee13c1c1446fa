//! Partition tables made by util-linux sfdisk (`images/partitions.sh`),
//! compared with `sfdisk --json` of the same disks, plus damaged variants.

use std::sync::Arc;

use super::*;
use crate::io::MemSource;

fn image(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
    let packed = std::fs::read(dir.join(format!("{name}.img.zst")))
        .expect("test image (images/partitions.sh)");
    zstd::decode_all(packed.as_slice()).expect("zstd")
}

fn oracle(name: &str) -> serde_json::Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
    let text =
        std::fs::read_to_string(dir.join(format!("{name}.sfdisk.json"))).expect("sfdisk dump");
    serde_json::from_str(&text).expect("json")
}

/// Our table must list exactly what sfdisk lists: number, start, size,
/// type (and for GPT name and unique GUID).
fn matches_sfdisk(name: &str, scheme: Scheme) -> Table {
    let disk = image(name);
    let o = oracle(name);
    let sector = o["partitiontable"]["sectorsize"].as_u64().unwrap_or(512);
    let t = read_table_detect(&MemSource::new(disk.clone()), None).expect("table");
    assert_eq!(t.sector_size, sector);
    assert_eq!(t.scheme, scheme);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    let parts = o["partitiontable"]["partitions"]
        .as_array()
        .expect("partitions");
    assert_eq!(t.partitions.len(), parts.len(), "{:?}", t.partitions);
    for (p, q) in t.partitions.iter().zip(parts) {
        let node = q["node"].as_str().unwrap_or_default();
        assert_eq!(node, format!("{name}.img{}", p.index));
        assert_eq!(
            p.start / sector,
            q["start"].as_u64().unwrap_or(u64::MAX),
            "{node} start"
        );
        assert_eq!(
            p.len / sector,
            q["size"].as_u64().unwrap_or(u64::MAX),
            "{node} size"
        );
        assert_eq!(
            p.kind.to_string().to_lowercase(),
            q["type"].as_str().unwrap_or_default().to_lowercase(),
            "{node} type"
        );
        if scheme == Scheme::Gpt {
            assert_eq!(
                p.name,
                q["name"].as_str().unwrap_or_default(),
                "{node} name"
            );
            assert_eq!(
                p.guid.map(|g| g.to_string()).unwrap_or_default(),
                q["uuid"].as_str().unwrap_or_default()
            );
        }
        // Data partitions start with their own label ("p1", "p5", ...).
        if !matches!(p.kind, PartitionType::Mbr(0x05 | 0x0F | 0x85)) {
            let src: crate::io::Source = Arc::new(MemSource::new(disk.clone()));
            let slice = t.open(src, p).expect("open");
            let mut head = [0u8; 4];
            slice.read_exact_at(0, &mut head).expect("read");
            let label = format!("p{}", p.index);
            assert_eq!(&head[..label.len()], label.as_bytes(), "{node} content");
        }
    }
    t
}

#[test]
fn gpt_matches_sfdisk() {
    matches_sfdisk("gpt", Scheme::Gpt);
}

#[test]
fn mbr_with_logical_partitions_matches_sfdisk() {
    let t = matches_sfdisk("mbr", Scheme::Mbr);
    let logical: Vec<u32> = t
        .partitions
        .iter()
        .map(|p| p.index)
        .filter(|i| *i >= 5)
        .collect();
    assert_eq!(logical, vec![5, 6]);
}

#[test]
fn gpt_with_4096_byte_sectors_matches_sfdisk() {
    matches_sfdisk("gpt4k", Scheme::Gpt);
}

#[test]
fn mbr_with_4096_byte_sectors() {
    // An MBR does not say its sector size. Without a hint, 512-byte sectors
    // put the EBR chain in the wrong place, so 4096 is tried, with a warning.
    let disk = MemSource::new(image("mbr4k"));
    let t = read_table_detect(&disk, None).expect("table");
    assert_eq!(t.sector_size, 4096);
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(read_table(&disk, 512).is_err());
    let t = read_table_detect(&disk, Some(4096)).expect("table");
    assert_eq!(t.sector_size, 4096);
    assert!(t.warnings.is_empty());
    let starts: Vec<(u32, u64)> = t
        .partitions
        .iter()
        .map(|p| (p.index, p.start / 4096))
        .collect();
    assert_eq!(starts, [(1, 256), (2, 1280), (5, 1536), (6, 3072)]);
}

#[test]
fn gpt_4096_with_damaged_primary_is_still_found_by_its_backup() {
    let mut disk = image("gpt4k");
    disk[4096..4104].copy_from_slice(b"garbage!");
    let t = read_table_detect(&MemSource::new(disk), None).expect("table");
    assert_eq!(t.sector_size, 4096);
    assert_eq!(t.partitions.len(), 2);
    assert!(!t.warnings.is_empty());
}

#[test]
fn damaged_primary_gpt_header_falls_back_to_backup() {
    let mut disk = image("gpt");
    disk[512 + 40] ^= 0xFF; // inside the primary header: its CRC no longer matches
    let t = read_table(&MemSource::new(disk.clone()), 512).expect("backup header");
    assert_eq!(t.partitions.len(), 3);
    let last = disk.len() / 512 - 1;
    assert_eq!(t.warnings.len(), 1);
    assert!(
        t.warnings[0].contains("CRC mismatch") && t.warnings[0].contains(&format!("LBA {last}")),
        "{:?}",
        t.warnings
    );
    // Both headers damaged: a named error, not an empty table.
    disk[last * 512 + 40] ^= 0xFF;
    let e = read_table(&MemSource::new(disk), 512).expect_err("both headers bad");
    assert!(e.to_string().contains("backup at LBA"), "{e}");
}

#[test]
fn damaged_gpt_entry_array_is_named() {
    let mut disk = image("gpt");
    disk[2 * 512 + 200] ^= 1; // primary entries
    let t = read_table(&MemSource::new(disk.clone()), 512).expect("backup entries");
    assert!(
        t.warnings[0].contains("GPT entry array"),
        "{:?}",
        t.warnings
    );
}

#[test]
fn ebr_chain_that_loops_is_an_error() {
    let mut disk = image("mbr");
    // The extended partition starts at sector 6144; point the first EBR's
    // "next" link back at itself (relative offset 0 ends the chain, so use
    // the second EBR's link instead: find it and aim it at the first).
    let ext = 6144usize * 512;
    let next_rel = u32::from_le_bytes(
        disk[ext + 446 + 16 + 8..ext + 446 + 16 + 12]
            .try_into()
            .unwrap_or_default(),
    );
    assert!(next_rel > 0, "the image has a second EBR");
    let second = ext + next_rel as usize * 512;
    // Make the second EBR link to the second EBR again.
    disk[second + 446 + 16 + 4] = 0x05;
    disk[second + 446 + 16 + 8..second + 446 + 16 + 12].copy_from_slice(&next_rel.to_le_bytes());
    let e = read_table(&MemSource::new(disk), 512).expect_err("loop");
    assert!(e.to_string().contains("loops"), "{e}");
}

#[test]
fn truncated_and_empty_disks() {
    let disk = image("gpt");
    // Cut before the entry array and the backup: a named error.
    let e = read_table(&MemSource::new(disk[..1024].to_vec()), 512).expect_err("truncated");
    assert!(
        matches!(e, PartitionError::Io(_) | PartitionError::Corrupt { .. }),
        "{e}"
    );
    // No table at all: the whole disk is one volume.
    let t = read_table(&MemSource::new(vec![0u8; 1 << 20]), 512).expect("no table");
    assert_eq!((t.scheme, t.partitions.len()), (Scheme::None, 0));
    // A partition entry reaching past the end of the disk.
    let mut mbr = image("mbr");
    mbr[446 + 12..446 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = read_table(&MemSource::new(mbr), 512).expect_err("too long");
    assert!(e.to_string().contains("ends past the disk"), "{e}");
}
