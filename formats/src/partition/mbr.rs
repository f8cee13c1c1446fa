//! The DOS master boot record and the chain of extended boot records that
//! holds logical partitions.

use std::collections::HashSet;

use super::{
    Partition, PartitionError, PartitionType, Scheme, Table, corrupt, read_sector, u32_at,
};
use crate::io::ReadAt;

/// Partition types that hold an EBR chain.
const EXTENDED: [u8; 3] = [0x05, 0x0F, 0x85];
/// More logical partitions than any tool creates: a chain this long loops.
const MAX_LOGICAL: usize = 256;

/// A primary entry as stored.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub status: u8,
    pub kind: u8,
    pub lba: u32,
    pub sectors: u32,
}

/// The four entries of an MBR or EBR sector.
pub(crate) fn entries(sector: &[u8]) -> [Entry; 4] {
    std::array::from_fn(|i| {
        let at = 446 + 16 * i;
        Entry {
            status: sector.get(at).copied().unwrap_or(0),
            kind: sector.get(at + 4).copied().unwrap_or(0),
            lba: u32_at(sector, at + 8),
            sectors: u32_at(sector, at + 12),
        }
    })
}

/// A boot sector of a FAT or NTFS volume also ends in 55 AA; a partition
/// table has status bytes 0x00/0x80 only.
pub(crate) fn looks_like_table(sector: &[u8]) -> bool {
    let e = entries(sector);
    e.iter().all(|e| e.status == 0 || e.status == 0x80) && e.iter().any(|e| e.kind != 0)
}

fn partition(index: u32, kind: u8, start_lba: u64, sectors: u64, sector: u64) -> Partition {
    Partition {
        index,
        start: start_lba * sector,
        len: sectors * sector,
        kind: PartitionType::Mbr(kind),
        name: String::new(),
        guid: None,
    }
}

/// Reads the MBR in `mbr0` and the EBR chain of its extended partition.
pub(crate) fn read(disk: &dyn ReadAt, sector: u64, mbr0: &[u8]) -> Result<Table, PartitionError> {
    let disk_sectors = disk.len() / sector;
    let mut partitions = Vec::new();
    let mut extended = None;
    for (i, e) in entries(mbr0).iter().enumerate() {
        if e.kind == 0 || e.sectors == 0 {
            continue;
        }
        let (start, n) = (u64::from(e.lba), u64::from(e.sectors));
        if start + n > disk_sectors {
            return Err(corrupt(
                "MBR partition entry",
                446 + 16 * i as u64,
                format!(
                    "partition {} ({start}+{n} sectors) ends past the disk ({disk_sectors} sectors)",
                    i + 1
                ),
            ));
        }
        partitions.push(partition(i as u32 + 1, e.kind, start, n, sector));
        if EXTENDED.contains(&e.kind) {
            extended = Some((start, n));
        }
    }
    if let Some((ext_start, ext_len)) = extended {
        read_logical(disk, sector, ext_start, ext_len, &mut partitions)?;
    }
    Ok(Table {
        scheme: Scheme::Mbr,
        sector_size: sector,
        partitions,
        warnings: Vec::new(),
        usable: None,
    })
}

/// Follows the EBR chain inside the extended partition.
fn read_logical(
    disk: &dyn ReadAt,
    sector: u64,
    ext_start: u64,
    ext_len: u64,
    out: &mut Vec<Partition>,
) -> Result<(), PartitionError> {
    let mut ebr = ext_start;
    let mut seen = HashSet::new();
    let mut index = 5u32;
    loop {
        let at = ebr * sector;
        if !seen.insert(ebr) || seen.len() > MAX_LOGICAL {
            return Err(corrupt(
                "EBR",
                at,
                "the chain of extended boot records loops",
            ));
        }
        let s = read_sector(disk, ebr, sector)?;
        if s.get(510..512) != Some(&[0x55, 0xAA]) {
            return Err(corrupt("EBR", at, "missing 55 AA signature"));
        }
        let [first, next, ..] = entries(&s);
        if first.kind != 0 && first.sectors != 0 {
            let start = ebr + u64::from(first.lba);
            let n = u64::from(first.sectors);
            if start + n > ext_start + ext_len {
                return Err(corrupt(
                    "EBR",
                    at,
                    format!(
                        "logical partition {index} ({start}+{n} sectors) ends past its extended partition"
                    ),
                ));
            }
            out.push(partition(index, first.kind, start, n, sector));
            index += 1;
        }
        if !EXTENDED.contains(&next.kind) || next.lba == 0 {
            return Ok(());
        }
        ebr = ext_start + u64::from(next.lba);
        if ebr >= ext_start + ext_len {
            return Err(corrupt(
                "EBR",
                at,
                format!("next EBR at sector {ebr} lies outside the extended partition"),
            ));
        }
    }
}
