//! Partition tables: GPT (with its backup header), MBR with the EBR chain of
//! an extended partition, and "no table" (the whole disk is one volume).
//!
//! Sources: UEFI Specification 2.10 §5.3 (GPT); the MBR/EBR layout as
//! documented by util-linux `libfdisk/src/dos.c` and the Linux kernel
//! (`block/partitions/msdos.c`: logical partitions are numbered from 5).

pub mod gpt;
pub mod mbr;

use std::fmt;
use std::io;

use crate::io::{ReadAt, Slice, Source};

/// A partition table that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// The disk could not be read.
    #[error("reading the partition table: {0}")]
    Io(#[from] io::Error),
    /// A structure is damaged or impossible.
    #[error("{structure} at byte {offset:#x}: {detail}")]
    Corrupt {
        /// The structure, e.g. "GPT header".
        structure: &'static str,
        /// Its byte offset on the disk.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
}

pub(crate) fn corrupt(
    structure: &'static str,
    offset: u64,
    detail: impl Into<String>,
) -> PartitionError {
    PartitionError::Corrupt {
        structure,
        offset,
        detail: detail.into(),
    }
}

/// The kind of table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// GUID partition table.
    Gpt,
    /// DOS/MBR table (with EBR logical partitions).
    Mbr,
    /// No table: the disk is one volume.
    None,
}

/// A GUID in its on-disk byte order (first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            b[3],
            b[2],
            b[1],
            b[0],
            b[5],
            b[4],
            b[7],
            b[6],
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// A partition's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionType {
    /// An MBR type byte.
    Mbr(u8),
    /// A GPT type GUID.
    Gpt(Guid),
}

impl fmt::Display for PartitionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionType::Mbr(t) => write!(f, "{t:x}"),
            PartitionType::Gpt(g) => write!(f, "{g}"),
        }
    }
}

/// One partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Number as Linux gives it: GPT slot + 1; MBR 1–4 primary, 5… logical.
    pub index: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Type.
    pub kind: PartitionType,
    /// GPT name (empty for MBR).
    pub name: String,
    /// GPT unique partition GUID.
    pub guid: Option<Guid>,
}

/// A disk's partition table.
#[derive(Clone, Debug)]
pub struct Table {
    /// What kind of table.
    pub scheme: Scheme,
    /// Sector size used.
    pub sector_size: u64,
    /// The partitions, by index. The MBR extended container is included
    /// (its type says so), as `sfdisk` lists it.
    pub partitions: Vec<Partition>,
    /// Recoveries made while reading (e.g. the GPT backup header was used).
    pub warnings: Vec<String>,
    /// GPT: the bytes between the primary header and entry array and the
    /// backup ones (where partitions and free space lie).
    pub usable: Option<(u64, u64)>,
}

impl Table {
    /// Opens a partition's bytes.
    pub fn open(&self, disk: Source, p: &Partition) -> io::Result<Slice> {
        Slice::new(disk, p.start, p.len)
    }
}

pub(crate) fn read_sector(
    disk: &dyn ReadAt,
    lba: u64,
    sector: u64,
) -> Result<Vec<u8>, PartitionError> {
    let offset = lba
        .checked_mul(sector)
        .ok_or_else(|| corrupt("sector", lba, "LBA overflows"))?;
    let mut buf = vec![0u8; sector as usize];
    disk.read_exact_at(offset, &mut buf)?;
    Ok(buf)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// Reads the partition table of `disk` with `sector_size`-byte sectors
/// (512 or 4096). A disk without a table is one volume.
pub fn read_table(disk: &dyn ReadAt, sector_size: u64) -> Result<Table, PartitionError> {
    if sector_size != 512 && sector_size != 4096 {
        return Err(corrupt(
            "disk",
            0,
            format!("unsupported sector size {sector_size}"),
        ));
    }
    if disk.len() < 2 * sector_size {
        return Ok(Table {
            scheme: Scheme::None,
            sector_size,
            partitions: Vec::new(),
            warnings: Vec::new(),
            usable: None,
        });
    }
    let mbr0 = read_sector(disk, 0, sector_size)?;
    let has_mbr = mbr0.get(510..512) == Some(&[0x55, 0xAA]);
    let protective = has_mbr && mbr::entries(&mbr0).iter().any(|e| e.kind == 0xEE);
    if protective || gpt::has_signature(disk, sector_size)? {
        return gpt::read(disk, sector_size);
    }
    if has_mbr && mbr::looks_like_table(&mbr0) {
        return mbr::read(disk, sector_size, &mbr0);
    }
    Ok(Table {
        scheme: Scheme::None,
        sector_size,
        partitions: Vec::new(),
        warnings: Vec::new(),
        usable: None,
    })
}

/// Does this first sector hold an MBR partition table (55 AA, boot flags 0
/// or 0x80 only, at least one entry with a type)? A FAT or NTFS boot sector
/// also ends in 55 AA; its bytes at 446.. are code, so the status bytes
/// usually rule it out.
pub fn looks_like_mbr(sector0: &[u8]) -> bool {
    sector0.get(510..512) == Some(&[0x55, 0xAA]) && mbr::looks_like_table(sector0)
}

/// The sector size of `disk`: where a GPT header (primary at LBA 1, or the
/// backup at the last LBA) is found with 512 or 4096-byte sectors; else
/// `hint` (the logical sector size a container declares), else 512.
pub fn detect_sector_size(disk: &dyn ReadAt, hint: Option<u32>) -> io::Result<u64> {
    let signature_at = |offset: u64| -> io::Result<bool> {
        let mut buf = [0u8; 8];
        if offset.checked_add(8).is_none_or(|end| end > disk.len()) {
            return Ok(false);
        }
        disk.read_exact_at(offset, &mut buf)?;
        Ok(&buf == b"EFI PART")
    };
    let len = disk.len();
    for sector in [512u64, 4096] {
        if signature_at(sector)? {
            return Ok(sector);
        }
    }
    for sector in [512u64, 4096] {
        if len >= 2 * sector && len % sector == 0 && signature_at(len - sector)? {
            return Ok(sector);
        }
    }
    Ok(match hint {
        Some(4096) => 4096,
        _ => 512,
    })
}

/// Reads the partition table of `disk`, finding its sector size with
/// [`detect_sector_size`]. An MBR does not record its sector size: if it
/// cannot be read with the size guessed (an EBR chain that is not where
/// 512-byte sectors put it) but can with the other, that one is used, with
/// a warning.
pub fn read_table_detect(disk: &dyn ReadAt, hint: Option<u32>) -> Result<Table, PartitionError> {
    let sector = detect_sector_size(disk, hint)?;
    match read_table(disk, sector) {
        Err(first) => {
            let other = if sector == 512 { 4096 } else { 512 };
            match read_table(disk, other) {
                Ok(mut t) if t.scheme == Scheme::Mbr => {
                    t.warnings.push(format!(
                        "the MBR does not read with {sector}-byte sectors ({first}); read with {other}-byte sectors"
                    ));
                    Ok(t)
                }
                _ => Err(first),
            }
        }
        ok => ok,
    }
}

#[cfg(test)]
mod tests;
