//! The boot sector: BIOS parameter block (BPB), volume geometry, FAT type,
//! and the FAT32 FSInfo sector.
//!
//! Source: Microsoft FAT specification ("FAT: General Overview of On-Disk
//! Format", 1.03, 2005): §3.1–3.3 (BPB and extended BPB fields), §3.5 (the
//! FAT type is decided by the count of data clusters only: fewer than 4085
//! is FAT12, fewer than 65525 FAT16, else FAT32), §5 (FSInfo). Every field
//! the reader relies on is checked here, so later arithmetic works on a
//! consistent geometry; errors name the field and its byte offset.

use crate::fs::FsError;

/// The FAT variant, by cluster count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit FAT entries.
    Fat12,
    /// 16-bit FAT entries.
    Fat16,
    /// 28-bit FAT entries in 32-bit slots.
    Fat32,
}

impl FatType {
    /// Bits per FAT entry.
    pub fn bits(self) -> u64 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }
}

/// The first cluster number of the data region.
pub const FIRST_CLUSTER: u32 = 2;

/// Most clusters FAT32 can number (entries 0x0FFFFFF7 and up are markers).
const MAX_FAT32_CLUSTERS: u64 = 0x0FFF_FFF5;

/// The volume's layout, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// FAT12, FAT16 or FAT32.
    pub fat_type: FatType,
    /// Bytes per sector.
    pub sector_size: u32,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Byte offset of the first FAT.
    pub fat_offset: u64,
    /// Bytes of one FAT copy.
    pub fat_bytes: u64,
    /// Number of FAT copies.
    pub num_fats: u8,
    /// FAT32 with mirroring disabled: the only FAT in use (ExtFlags).
    pub active_fat: Option<u8>,
    /// FAT12/16: byte offset and length of the fixed root directory.
    pub root_region: Option<(u64, u64)>,
    /// FAT32: the first cluster of the root directory.
    pub root_cluster: u32,
    /// Byte offset of cluster 2.
    pub data_offset: u64,
    /// Number of data clusters (the highest valid cluster is this + 1).
    pub cluster_count: u32,
    /// Bytes the BPB says the volume holds.
    pub total_bytes: u64,
    /// The media descriptor byte (also the low byte of FAT entry 0).
    pub media: u8,
    /// The OEM name field, as stored.
    pub oem_name: [u8; 8],
    /// The extended BPB's serial number, if it has one.
    pub serial: Option<u32>,
    /// The extended BPB's volume label, if it has one.
    pub label: Option<[u8; 11]>,
    /// FAT32: the sector of FSInfo, if the BPB names one.
    pub fsinfo_sector: Option<u16>,
}

impl Geometry {
    /// The highest valid cluster number.
    pub fn max_cluster(&self) -> u32 {
        self.cluster_count + 1
    }

    /// Byte offset of the start of `cluster` (2..=max_cluster).
    pub fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset + u64::from(cluster - FIRST_CLUSTER) * u64::from(self.cluster_size)
    }

    /// Where the clusters end: the volume must be at least this long.
    pub fn data_end(&self) -> u64 {
        self.data_offset + u64::from(self.cluster_count) * u64::from(self.cluster_size)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn bad(offset: u64, detail: impl Into<String>) -> FsError {
    FsError::corrupt("FAT boot sector", offset, detail)
}

/// Parses and validates the boot sector `b` (at least 512 bytes).
pub fn parse(b: &[u8]) -> Result<Geometry, FsError> {
    if b.len() < 512 {
        return Err(bad(
            0,
            format!("only {} bytes, a boot sector has 512", b.len()),
        ));
    }
    let sector_size = u16_at(b, 11);
    if ![512, 1024, 2048, 4096].contains(&sector_size) {
        return Err(bad(
            11,
            format!("bytes per sector {sector_size} is not 512, 1024, 2048 or 4096"),
        ));
    }
    let spc = b[13];
    if spc == 0 || !spc.is_power_of_two() {
        return Err(bad(
            13,
            format!("sectors per cluster {spc} is not a power of two"),
        ));
    }
    let reserved = u16_at(b, 14);
    if reserved == 0 {
        return Err(bad(
            14,
            "no reserved sectors (the boot sector itself is one)",
        ));
    }
    let num_fats = b[16];
    if num_fats == 0 {
        return Err(bad(16, "no FATs"));
    }
    let root_entries = u16_at(b, 17);
    let total = match u16_at(b, 19) {
        0 => u32_at(b, 32),
        n => u32::from(n),
    };
    if total == 0 {
        return Err(bad(19, "total sector count is 0"));
    }
    let media = b[21];
    if media != 0xF0 && media < 0xF8 {
        return Err(bad(
            21,
            format!("media descriptor {media:#04x} is not F0 or F8–FF"),
        ));
    }
    let fat16_size = u16_at(b, 22);
    let fat_sectors = match fat16_size {
        0 => u32_at(b, 36),
        n => u32::from(n),
    };
    if fat_sectors == 0 {
        return Err(bad(22, "FAT size is 0 sectors"));
    }
    let ss = u64::from(sector_size);
    let root_bytes = u64::from(root_entries) * 32;
    let root_sectors = root_bytes.div_ceil(ss);
    let fat_offset = u64::from(reserved) * ss;
    let fat_bytes = u64::from(fat_sectors) * ss;
    let root_offset = fat_offset + u64::from(num_fats) * fat_bytes;
    let data_offset = root_offset + root_sectors * ss;
    let total_bytes = u64::from(total) * ss;
    let data_bytes = total_bytes.checked_sub(data_offset).ok_or_else(|| {
        bad(
            19,
            format!(
                "the volume ({total} sectors) is smaller than its reserved sectors, FATs and root directory ({} sectors)",
                data_offset / ss
            ),
        )
    })?;
    let cluster_size = u32::from(sector_size) * u32::from(spc);
    let clusters = data_bytes / u64::from(cluster_size);
    let fat_type = match clusters {
        0..4085 => FatType::Fat12,
        4085..65525 => FatType::Fat16,
        _ => FatType::Fat32,
    };
    if clusters > MAX_FAT32_CLUSTERS {
        return Err(bad(
            32,
            format!("{clusters} clusters, more than FAT32 can number"),
        ));
    }
    let cluster_count = clusters as u32;
    // The FAT must have an entry for every cluster (and the two reserved).
    let entries = fat_bytes * 8 / fat_type.bits();
    if entries < u64::from(cluster_count) + 2 {
        return Err(bad(
            22,
            format!(
                "a FAT of {fat_bytes} bytes holds {entries} entries, the volume has {cluster_count} clusters"
            ),
        ));
    }
    let mut g = Geometry {
        fat_type,
        sector_size: u32::from(sector_size),
        cluster_size,
        fat_offset,
        fat_bytes,
        num_fats,
        active_fat: None,
        root_region: None,
        root_cluster: 0,
        data_offset,
        cluster_count,
        total_bytes,
        media,
        oem_name: [0; 8],
        serial: None,
        label: None,
        fsinfo_sector: None,
    };
    g.oem_name.copy_from_slice(&b[3..11]);
    let ext = if fat_type == FatType::Fat32 {
        fat32_fields(b, &mut g, root_entries, fat16_size)?;
        64
    } else {
        if root_entries == 0 {
            return Err(bad(
                17,
                format!("a {fat_type:?} volume with no root directory entries"),
            ));
        }
        g.root_region = Some((root_offset, root_bytes));
        36
    };
    // Extended boot signature 0x29: serial and label follow (0x28: serial only).
    match b[ext + 2] {
        0x29 => {
            g.serial = Some(u32_at(b, ext + 3));
            let mut label = [0u8; 11];
            label.copy_from_slice(&b[ext + 7..ext + 18]);
            g.label = Some(label);
        }
        0x28 => g.serial = Some(u32_at(b, ext + 3)),
        _ => {}
    }
    Ok(g)
}

fn fat32_fields(
    b: &[u8],
    g: &mut Geometry,
    root_entries: u16,
    fat16_size: u16,
) -> Result<(), FsError> {
    if root_entries != 0 {
        return Err(bad(
            17,
            format!("{root_entries} root entries on a FAT32 volume (must be 0)"),
        ));
    }
    if fat16_size != 0 {
        return Err(bad(22, "a 16-bit FAT size on a FAT32 volume (must be 0)"));
    }
    let version = u16_at(b, 42);
    if version != 0 {
        return Err(FsError::Unsupported {
            fs: "FAT",
            detail: format!(
                "FAT32 version {}.{} (only 0.0 exists)",
                version >> 8,
                version & 0xFF
            ),
        });
    }
    let flags = u16_at(b, 40);
    if flags & 0x80 != 0 {
        let active = (flags & 0x0F) as u8;
        if active >= g.num_fats {
            return Err(bad(
                40,
                format!("active FAT {active} of {} FATs", g.num_fats),
            ));
        }
        g.active_fat = Some(active);
    }
    let root = u32_at(b, 44);
    if root < FIRST_CLUSTER || root > g.max_cluster() {
        return Err(bad(
            44,
            format!("root cluster {root} outside 2..={}", g.max_cluster()),
        ));
    }
    g.root_cluster = root;
    let fsinfo = u16_at(b, 48);
    if fsinfo != 0 && fsinfo != 0xFFFF {
        g.fsinfo_sector = Some(fsinfo);
    }
    Ok(())
}

/// What the FAT32 FSInfo sector says (hints only, never trusted for reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsInfo {
    /// Free cluster count, if known.
    pub free: Option<u32>,
    /// Where to look for a free cluster, if known.
    pub next_free: Option<u32>,
}

/// Parses an FSInfo sector; `None` if its three signatures are not there.
pub fn parse_fsinfo(s: &[u8]) -> Option<FsInfo> {
    if s.len() < 512
        || u32_at(s, 0) != 0x4161_5252
        || u32_at(s, 484) != 0x6141_7272
        || u32_at(s, 508) != 0xAA55_0000
    {
        return None;
    }
    let known = |v: u32| (v != 0xFFFF_FFFF).then_some(v);
    Some(FsInfo {
        free: known(u32_at(s, 488)),
        next_free: known(u32_at(s, 492)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT12 boot sector of a 1440 KiB floppy as mkfs.vfat writes it.
    fn floppy() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
        b[3..11].copy_from_slice(b"mkfs.fat");
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 1;
        b[14..16].copy_from_slice(&1u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&224u16.to_le_bytes());
        b[19..21].copy_from_slice(&2880u16.to_le_bytes());
        b[21] = 0xF0;
        b[22..24].copy_from_slice(&9u16.to_le_bytes());
        b[38] = 0x29;
        b[39..43].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        b[43..54].copy_from_slice(b"FLOPPY     ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn a_floppy_is_fat12_with_its_geometry() {
        let g = parse(&floppy()).expect("valid");
        assert_eq!(g.fat_type, FatType::Fat12);
        assert_eq!(g.fat_offset, 512);
        assert_eq!(g.fat_bytes, 9 * 512);
        assert_eq!(g.root_region, Some((19 * 512, 224 * 32)));
        assert_eq!(g.data_offset, 33 * 512);
        assert_eq!(g.cluster_count, 2880 - 33);
        assert_eq!(g.serial, Some(0x1234_5678));
        assert_eq!(g.label.as_ref().map(|l| &l[..]), Some(&b"FLOPPY     "[..]));
        assert_eq!(g.cluster_offset(2), 33 * 512);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: [(usize, &[u8], &str); 6] = [
            (11, &[0, 0], "bytes per sector 0"),
            (13, &[3], "sectors per cluster 3"),
            (14, &[0, 0], "no reserved sectors"),
            (16, &[0], "no FATs"),
            (21, &[0x12], "media descriptor"),
            (19, &[20, 0], "smaller than its reserved sectors"),
        ];
        for (at, bytes, want) in cases {
            let mut b = floppy();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            let err = parse(&b).expect_err(want).to_string();
            assert!(
                err.contains(want) && err.contains("FAT boot sector"),
                "{err}"
            );
        }
        let mut b = floppy();
        b[22..24].fill(0);
        b[36..40].fill(0);
        assert!(parse(&b).is_err_and(|e| e.to_string().contains("FAT size is 0")));
        let mut b = floppy();
        b[17..19].fill(0);
        assert!(parse(&b).is_err_and(|e| e.to_string().contains("no root directory")));
        // A FAT too small for the clusters.
        let mut b = floppy();
        b[22..24].copy_from_slice(&1u16.to_le_bytes());
        assert!(parse(&b).is_err_and(|e| e.to_string().contains("holds")));
        assert!(parse(&[0u8; 100]).is_err());
    }

    #[test]
    fn fsinfo_needs_its_signatures() {
        let mut s = vec![0u8; 512];
        assert_eq!(parse_fsinfo(&s), None);
        s[..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
        s[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
        s[488..492].copy_from_slice(&1234u32.to_le_bytes());
        s[492..496].copy_from_slice(&u32::MAX.to_le_bytes());
        s[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
        assert_eq!(
            parse_fsinfo(&s),
            Some(FsInfo {
                free: Some(1234),
                next_free: None
            })
        );
    }
}
