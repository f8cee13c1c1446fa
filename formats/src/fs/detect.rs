//! Which filesystem a volume holds, from its first 64 KiB, as `blkid` would
//! say it.
//!
//! Sources: Microsoft FAT specification (2005) §3 (BPB) and §3.5 (FAT type
//! by cluster count); exFAT specification §3.1; NTFS boot sector (`NTFS    `
//! OEM id); Linux `Documentation/filesystems/ext4/super.rst` (magic 0xEF53
//! at 1024 + 0x38, feature flags); XFS superblock magic `XFSB`.

use std::fmt;
use std::io;

use crate::io::ReadAt;

/// A detected filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// NTFS.
    Ntfs,
    /// FAT12.
    Fat12,
    /// FAT16.
    Fat16,
    /// FAT32.
    Fat32,
    /// exFAT.
    ExFat,
    /// ext2 (no journal).
    Ext2,
    /// ext3 (journal, no ext4 features).
    Ext3,
    /// ext4.
    Ext4,
    /// XFS.
    Xfs,
}

impl FsKind {
    /// The name a reader's errors use: "NTFS", "FAT", "exFAT", "ext4",
    /// "XFS".
    pub fn reader_name(self) -> &'static str {
        match self {
            FsKind::Ntfs => "NTFS",
            FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32 => "FAT",
            FsKind::ExFat => "exFAT",
            FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => "ext4",
            FsKind::Xfs => "XFS",
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsKind::Ntfs => "ntfs",
            FsKind::Fat12 => "fat12",
            FsKind::Fat16 => "fat16",
            FsKind::Fat32 => "fat32",
            FsKind::ExFat => "exfat",
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
        })
    }
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2)
        .map_or(0, |s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |s| {
        u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    })
}

/// Reads the head of `vol` and names its filesystem, or `None`.
pub fn detect(vol: &dyn ReadAt) -> io::Result<Option<FsKind>> {
    let mut head = vec![0u8; crate::io::clamp(0, 4096, vol.len())];
    vol.read_exact_at(0, &mut head)?;
    Ok(detect_head(&head))
}

/// Names the filesystem whose first bytes are `head` (at least 2 KiB for
/// ext; 512 bytes for the others).
pub fn detect_head(head: &[u8]) -> Option<FsKind> {
    if head.get(..4) == Some(b"XFSB") {
        return Some(FsKind::Xfs);
    }
    match head.get(3..11) {
        Some(b"NTFS    ") => return Some(FsKind::Ntfs),
        Some(b"EXFAT   ") => return Some(FsKind::ExFat),
        _ => {}
    }
    if let Some(kind) = ext_kind(head) {
        return Some(kind);
    }
    fat_kind(head)
}

fn ext_kind(head: &[u8]) -> Option<FsKind> {
    let sb = head.get(1024..2048)?;
    if u16_at(sb, 0x38) != 0xEF53 {
        return None;
    }
    let (compat, incompat, ro_compat) = (u32_at(sb, 0x5C), u32_at(sb, 0x60), u32_at(sb, 0x64));
    // Features ext3 does not know (as blkid decides): incompat beyond
    // FILETYPE|RECOVER|META_BG|JOURNAL_DEV, ro_compat beyond
    // SPARSE_SUPER|LARGE_FILE|BTREE_DIR.
    let ext3_incompat = 0x0002 | 0x0004 | 0x0008 | 0x0010;
    let ext3_ro_compat = 0x0001 | 0x0002 | 0x0004;
    if incompat & !ext3_incompat != 0 || ro_compat & !ext3_ro_compat != 0 {
        Some(FsKind::Ext4)
    } else if compat & 0x0004 != 0 {
        Some(FsKind::Ext3)
    } else {
        Some(FsKind::Ext2)
    }
}

fn fat_kind(b: &[u8]) -> Option<FsKind> {
    if b.get(510..512) != Some(&[0x55, 0xAA]) || !matches!(b.first(), Some(0xEB | 0xE9)) {
        return None;
    }
    let bytes_per_sec = u16_at(b, 11);
    let sec_per_clus = u64::from(*b.get(13)?);
    let rsvd = u16_at(b, 14);
    let num_fats = u64::from(*b.get(16)?);
    let root_ent = u16_at(b, 17);
    let tot = match u16_at(b, 19) {
        0 => u32_at(b, 32),
        n => n,
    };
    let fat_sz = match u16_at(b, 22) {
        0 => u32_at(b, 36),
        n => n,
    };
    if ![512, 1024, 2048, 4096].contains(&bytes_per_sec)
        || !sec_per_clus.is_power_of_two()
        || num_fats == 0
        || rsvd == 0
        || fat_sz == 0
    {
        return None;
    }
    let root_dir_secs = (root_ent * 32).div_ceil(bytes_per_sec);
    let meta = rsvd + num_fats * fat_sz + root_dir_secs;
    let clusters = tot.checked_sub(meta)? / sec_per_clus;
    Some(match clusters {
        0..4085 => FsKind::Fat12,
        4085..65525 => FsKind::Fat16,
        _ => FsKind::Fat32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../images/fs-heads/{name}.head.zst"));
        zstd::decode_all(
            std::fs::read(p)
                .expect("images/fs-heads.sh output")
                .as_slice(),
        )
        .expect("zstd")
    }

    /// Volume heads written by the real mkfs tools (`images/fs-heads.sh`).
    #[test]
    fn detects_what_mkfs_made() {
        let cases = [
            ("ext2", FsKind::Ext2),
            ("ext3", FsKind::Ext3),
            ("ext4", FsKind::Ext4),
            ("fat12", FsKind::Fat12),
            ("fat16", FsKind::Fat16),
            ("fat32", FsKind::Fat32),
            ("exfat", FsKind::ExFat),
            ("ntfs", FsKind::Ntfs),
            ("xfs", FsKind::Xfs),
        ];
        for (name, want) in cases {
            let h = head(name);
            assert_eq!(
                detect(&crate::io::MemSource::new(h)).ok().flatten(),
                Some(want),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_and_short_inputs() {
        assert_eq!(detect_head(&[0u8; 4096]), None);
        assert_eq!(detect_head(&[]), None);
        // A boot signature alone is not a FAT volume.
        let mut b = vec![0u8; 512];
        b[510] = 0x55;
        b[511] = 0xAA;
        assert_eq!(detect_head(&b), None);
        // A FAT BPB whose metadata is larger than the volume.
        let mut fat = head("fat16");
        fat[19..21].copy_from_slice(&10u16.to_le_bytes());
        assert_eq!(detect_head(&fat), None);
        assert_eq!(
            detect(&crate::io::MemSource::new(vec![1u8; 3]))
                .ok()
                .flatten(),
            None
        );
    }
}
