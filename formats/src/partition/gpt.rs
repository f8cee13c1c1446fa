//! The GUID partition table: header at LBA 1 with a backup at the last LBA,
//! both protected by CRC32, and the partition entry array.

use super::{
    Guid, Partition, PartitionError, PartitionType, Scheme, Table, corrupt, read_sector, u32_at,
    u64_at,
};
use crate::io::ReadAt;

const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Entry arrays larger than this are refused (the usual one is 16 KiB).
const MAX_ENTRY_BYTES: u64 = 4 << 20;

struct Header {
    lba: u64,
    alternate_lba: u64,
    first_usable: u64,
    entries_lba: u64,
    num_entries: u32,
    entry_size: u32,
    entries_crc: u32,
}

/// Does LBA 1 hold a GPT header signature?
pub(crate) fn has_signature(disk: &dyn ReadAt, sector: u64) -> Result<bool, PartitionError> {
    Ok(read_sector(disk, 1, sector)?.get(..8) == Some(SIGNATURE.as_slice()))
}

impl Header {
    /// The bytes between the primary structures (header, entries) and the
    /// backup ones, as LBAs times `sector`; `None` if the header's numbers
    /// do not describe a sane layout.
    fn between(&self, sector: u64, last_lba: u64) -> Option<(u64, u64)> {
        let array = (u64::from(self.num_entries) * u64::from(self.entry_size)).div_ceil(sector);
        let (primary_entries, backup_header) = if self.lba == 1 {
            (self.entries_lba, self.alternate_lba)
        } else {
            (2, self.lba)
        };
        let start = primary_entries.checked_add(array)?;
        let end = backup_header.checked_sub(array)?;
        (start <= end && backup_header <= last_lba && start <= self.first_usable)
            .then(|| (start * sector, end * sector))
    }
}

fn parse_header(disk: &dyn ReadAt, sector: u64, lba: u64) -> Result<Header, PartitionError> {
    let at = lba.saturating_mul(sector);
    let s = read_sector(disk, lba, sector)?;
    if s.get(..8) != Some(SIGNATURE.as_slice()) {
        return Err(corrupt("GPT header", at, "no EFI PART signature"));
    }
    let size = u32_at(&s, 12) as usize;
    if size < 92 || size > s.len() {
        return Err(corrupt(
            "GPT header",
            at,
            format!("header size {size} out of range"),
        ));
    }
    let stored = u32_at(&s, 16);
    let mut copy = s[..size].to_vec();
    copy[16..20].fill(0);
    let crc = crc32fast::hash(&copy);
    if crc != stored {
        return Err(corrupt(
            "GPT header",
            at,
            format!("CRC mismatch (stored {stored:08x}, computed {crc:08x})"),
        ));
    }
    let h = Header {
        lba: u64_at(&s, 24),
        alternate_lba: u64_at(&s, 32),
        first_usable: u64_at(&s, 40),
        entries_lba: u64_at(&s, 72),
        num_entries: u32_at(&s, 80),
        entry_size: u32_at(&s, 84),
        entries_crc: u32_at(&s, 88),
    };
    if h.lba != lba {
        return Err(corrupt(
            "GPT header",
            at,
            format!("says it is at LBA {}, found at LBA {lba}", h.lba),
        ));
    }
    if h.entry_size < 128 || h.entry_size % 8 != 0 {
        return Err(corrupt(
            "GPT header",
            at,
            format!("entry size {} invalid", h.entry_size),
        ));
    }
    if u64::from(h.num_entries) * u64::from(h.entry_size) > MAX_ENTRY_BYTES {
        return Err(corrupt(
            "GPT header",
            at,
            format!(
                "{} entries of {} bytes is too many",
                h.num_entries, h.entry_size
            ),
        ));
    }
    Ok(h)
}

fn read_entries(
    disk: &dyn ReadAt,
    sector: u64,
    h: &Header,
) -> Result<Vec<Partition>, PartitionError> {
    let at = h.entries_lba.saturating_mul(sector);
    let len = h.num_entries as usize * h.entry_size as usize;
    let mut buf = vec![0u8; len];
    disk.read_exact_at(at, &mut buf)?;
    let crc = crc32fast::hash(&buf);
    if crc != h.entries_crc {
        return Err(corrupt(
            "GPT entry array",
            at,
            format!(
                "CRC mismatch (stored {:08x}, computed {crc:08x})",
                h.entries_crc
            ),
        ));
    }
    let disk_sectors = disk.len() / sector;
    let mut out = Vec::new();
    for (i, e) in buf.chunks_exact(h.entry_size as usize).enumerate() {
        let mut kind = [0u8; 16];
        kind.copy_from_slice(&e[..16]);
        if kind == [0; 16] {
            continue;
        }
        let mut uniq = [0u8; 16];
        uniq.copy_from_slice(&e[16..32]);
        let (first, last) = (u64_at(e, 32), u64_at(e, 40));
        if first > last || last >= disk_sectors {
            return Err(corrupt(
                "GPT entry",
                at + (i * h.entry_size as usize) as u64,
                format!(
                    "partition {} spans sectors {first}..={last}, disk has {disk_sectors}",
                    i + 1
                ),
            ));
        }
        let units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        out.push(Partition {
            index: i as u32 + 1,
            start: first * sector,
            len: (last - first + 1) * sector,
            kind: PartitionType::Gpt(Guid(kind)),
            name: String::from_utf16_lossy(&units[..end]),
            guid: Some(Guid(uniq)),
        });
    }
    Ok(out)
}

fn from_header(
    disk: &dyn ReadAt,
    sector: u64,
    lba: u64,
) -> Result<(Header, Vec<Partition>), PartitionError> {
    let h = parse_header(disk, sector, lba)?;
    let parts = read_entries(disk, sector, &h)?;
    Ok((h, parts))
}

/// Reads the GPT, falling back to the backup header (and its entry array)
/// when the primary is damaged; the fallback is reported as a warning.
pub(crate) fn read(disk: &dyn ReadAt, sector: u64) -> Result<Table, PartitionError> {
    let last = disk.len() / sector - 1;
    let (header, partitions, warnings) = match from_header(disk, sector, 1) {
        Ok((h, p)) => (h, p, Vec::new()),
        Err(primary) => {
            let backup_lba = parse_header(disk, sector, 1)
                .map(|h| h.alternate_lba)
                .unwrap_or(last);
            match from_header(disk, sector, backup_lba) {
                Ok((h, p)) => (
                    h,
                    p,
                    vec![format!(
                        "{primary}; using the backup header at LBA {backup_lba}"
                    )],
                ),
                Err(backup) => {
                    return Err(corrupt(
                        "GPT",
                        sector,
                        format!(
                            "primary header unusable ({primary}); backup at LBA {backup_lba} unusable too ({backup})"
                        ),
                    ));
                }
            }
        }
    };
    Ok(Table {
        scheme: Scheme::Gpt,
        sector_size: sector,
        partitions,
        warnings,
        usable: header.between(sector, last),
    })
}
