//! The ext2/3/4 superblock: 1024 bytes at byte 1024 of the volume, all
//! fields little-endian; feature flags decide what the rest means.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/super.rst`
//! ("Super Block") and `checksums.rst`. No code was taken from it.

use super::csum;
use crate::fs::FsError;
use crate::fs::checks::Checks;

/// Where the superblock lies and how long it is.
pub(crate) const SB_OFFSET: u64 = 1024;
pub(crate) const SB_LEN: usize = 1024;

const MAGIC: u16 = 0xEF53;

// Feature flags this reader looks at.
pub(crate) const COMPAT_HAS_JOURNAL: u32 = 0x4;
const COMPAT_SPARSE_SUPER2: u32 = 0x200;
const INCOMPAT_COMPRESSION: u32 = 0x1;
pub(crate) const INCOMPAT_FILETYPE: u32 = 0x2;
pub(crate) const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
pub(crate) const INCOMPAT_META_BG: u32 = 0x10;
pub(crate) const INCOMPAT_EXTENTS: u32 = 0x40;
pub(crate) const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_MMP: u32 = 0x100;
const INCOMPAT_FLEX_BG: u32 = 0x200;
pub(crate) const INCOMPAT_EA_INODE: u32 = 0x400;
const INCOMPAT_DIRDATA: u32 = 0x1000;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub(crate) const INCOMPAT_LARGEDIR: u32 = 0x4000;
pub(crate) const INCOMPAT_INLINE_DATA: u32 = 0x8000;
const INCOMPAT_ENCRYPT: u32 = 0x1_0000;
const INCOMPAT_CASEFOLD: u32 = 0x2_0000;
/// Every INCOMPAT feature this reader understands.
const INCOMPAT_KNOWN: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_META_BG
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG
    | INCOMPAT_EA_INODE
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_ENCRYPT
    | INCOMPAT_CASEFOLD;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_BIGALLOC: u32 = 0x200;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// Little-endian u16 at `at`; 0 where `b` is too short (callers check sizes).
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

/// Little-endian u32 at `at`; 0 where `b` is too short.
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The superblock's facts the reader needs.
#[derive(Clone, Debug)]
pub(crate) struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub first_data_block: u32,
    pub block_size: u32,
    pub blocks_per_group: u32,
    /// Blocks per cluster, as a power of two (bigalloc; else 0): one bit
    /// of a block bitmap stands for a cluster.
    pub cluster_log: u32,
    pub inodes_per_group: u32,
    pub inode_size: u16,
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
    pub uuid: [u8; 16],
    pub label: String,
    pub desc_size: u16,
    pub first_meta_bg: u32,
    pub backup_bgs: [u32; 2],
    /// The seed of every metadata checksum (metadata_csum), else 0.
    pub csum_seed: u32,
    /// The journal's inode (0: none, or an external journal), the external
    /// journal's device number and UUID.
    pub journal_inum: u32,
    pub journal_dev: u32,
    pub journal_uuid: [u8; 16],
}

impl Superblock {
    /// Parses and checks the 1024 bytes read at [`SB_OFFSET`].
    pub(crate) fn parse(b: &[u8], checks: &Checks) -> Result<Superblock, FsError> {
        let bad = |d: String| FsError::corrupt("ext superblock", SB_OFFSET, d);
        if b.len() < SB_LEN {
            return Err(bad(format!("only {} bytes", b.len())));
        }
        let magic = le16(b, 0x38);
        if magic != MAGIC {
            return Err(bad(format!("bad magic {magic:#06x}, wanted 0xef53")));
        }
        let log = le32(b, 0x18);
        if log > 6 {
            return Err(bad(format!("block size 1024 << {log} is past 64 KiB")));
        }
        let block_size = 1024u32 << log;
        let rev = le32(b, 0x4C);
        let (compat, incompat, ro_compat) = if rev >= 1 {
            (le32(b, 0x5C), le32(b, 0x60), le32(b, 0x64))
        } else {
            (0, 0, 0)
        };
        let unsupported = |detail: String| FsError::Unsupported { fs: "ext4", detail };
        if incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err(unsupported(
                "an external journal device, not a filesystem".into(),
            ));
        }
        if incompat & INCOMPAT_COMPRESSION != 0 {
            return Err(unsupported("the compression feature".into()));
        }
        if incompat & INCOMPAT_DIRDATA != 0 {
            return Err(unsupported("the dirdata feature (Lustre)".into()));
        }
        let unknown = incompat & !INCOMPAT_KNOWN;
        if unknown != 0 {
            return Err(unsupported(format!(
                "unknown INCOMPAT feature flags {unknown:#x}"
            )));
        }
        let inode_size = if rev >= 1 { le16(b, 0x58) } else { 128 };
        if inode_size < 128 || !inode_size.is_power_of_two() || u32::from(inode_size) > block_size {
            return Err(bad(format!("inode size {inode_size}")));
        }
        let desc_size = if incompat & INCOMPAT_64BIT != 0 {
            let d = le16(b, 0xFE);
            if d < 64 || !d.is_power_of_two() || u32::from(d) > block_size {
                return Err(bad(format!("group descriptor size {d}")));
            }
            d
        } else {
            32
        };
        let blocks_count = u64::from(le32(b, 0x4))
            | if incompat & INCOMPAT_64BIT != 0 {
                u64::from(le32(b, 0x150)) << 32
            } else {
                0
            };
        let first_data_block = le32(b, 0x14);
        let blocks_per_group = le32(b, 0x20);
        let inodes_per_group = le32(b, 0x28);
        // Under bigalloc a group's bitmap counts clusters of 2^n blocks:
        // the group holds up to 8 * block_size clusters, so more blocks.
        // Everything else the reader follows (descriptors, inode tables,
        // extents) stays in block units.
        let cluster_log = if ro_compat & RO_COMPAT_BIGALLOC != 0 {
            let c = le32(b, 0x1C);
            if c < log || c > 30 {
                return Err(bad(format!(
                    "cluster size 1024 << {c} with blocks of 1024 << {log}"
                )));
            }
            let clusters_per_group = le32(b, 0x24);
            if u64::from(clusters_per_group) << (c - log) != u64::from(blocks_per_group) {
                return Err(bad(format!(
                    "{blocks_per_group} blocks per group in {clusters_per_group} clusters of {} blocks",
                    1u64 << (c - log)
                )));
            }
            c - log
        } else {
            0
        };
        if blocks_per_group == 0
            || u64::from(blocks_per_group) > (8 * u64::from(block_size)) << cluster_log
        {
            return Err(bad(format!("{blocks_per_group} blocks per group")));
        }
        if inodes_per_group == 0 || inodes_per_group > 8 * block_size {
            return Err(bad(format!("{inodes_per_group} inodes per group")));
        }
        if u64::from(first_data_block) >= blocks_count {
            return Err(bad(format!(
                "first data block {first_data_block} of {blocks_count}"
            )));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x68..0x78]);
        let label_raw = &b[0x78..0x88];
        let end = label_raw.iter().position(|&c| c == 0).unwrap_or(16);
        let label = String::from_utf8_lossy(&label_raw[..end]).into_owned();
        let mut sb = Superblock {
            inodes_count: le32(b, 0x0),
            blocks_count,
            first_data_block,
            block_size,
            blocks_per_group,
            cluster_log,
            inodes_per_group,
            inode_size,
            compat,
            incompat,
            ro_compat,
            uuid,
            label,
            desc_size,
            first_meta_bg: le32(b, 0x104),
            backup_bgs: [le32(b, 0x24C), le32(b, 0x250)],
            csum_seed: 0,
            journal_inum: if rev >= 1 { le32(b, 0xE0) } else { 0 },
            journal_dev: if rev >= 1 { le32(b, 0xE4) } else { 0 },
            journal_uuid: [0; 16],
        };
        if rev >= 1 {
            sb.journal_uuid.copy_from_slice(&b[0xD0..0xE0]);
        }
        if sb.metadata_csum() {
            if b[0x175] != 1 {
                return Err(bad(format!(
                    "checksum type {} (only 1, CRC-32C, exists)",
                    b[0x175]
                )));
            }
            let sum = csum::update(!0, &b[..0x3FC]);
            csum::check(checks, le32(b, 0x3FC), sum, "ext superblock", SB_OFFSET)?;
            sb.csum_seed = if incompat & INCOMPAT_CSUM_SEED != 0 {
                le32(b, 0x270)
            } else {
                csum::update(!0, &uuid)
            };
        }
        if sb.groups() == 0
            || u64::from(sb.inodes_count) > sb.groups().saturating_mul(u64::from(inodes_per_group))
        {
            return Err(bad(format!(
                "{} inodes in {} groups of {inodes_per_group}",
                sb.inodes_count,
                sb.groups()
            )));
        }
        Ok(sb)
    }

    pub(crate) fn metadata_csum(&self) -> bool {
        self.ro_compat & RO_COMPAT_METADATA_CSUM != 0
    }

    pub(crate) fn gdt_csum(&self) -> bool {
        self.ro_compat & RO_COMPAT_GDT_CSUM != 0
    }

    pub(crate) fn has(&self, incompat: u32) -> bool {
        self.incompat & incompat != 0
    }

    /// Block groups in the filesystem.
    pub(crate) fn groups(&self) -> u64 {
        (self.blocks_count - u64::from(self.first_data_block))
            .div_ceil(u64::from(self.blocks_per_group))
    }

    /// Bytes of the filesystem.
    pub(crate) fn size(&self) -> u64 {
        self.blocks_count.saturating_mul(u64::from(self.block_size))
    }

    /// Does group `g` hold a superblock copy (and so group descriptors)?
    pub(crate) fn has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.compat & COMPAT_SPARSE_SUPER2 != 0 {
            return self.backup_bgs.iter().any(|&b| u64::from(b) == g);
        }
        if self.ro_compat & RO_COMPAT_SPARSE_SUPER == 0 || g == 1 {
            return true;
        }
        [3u64, 5, 7].iter().any(|&p| {
            let mut x = g;
            while x % p == 0 {
                x /= p;
            }
            x == 1
        })
    }

    /// The UUID as `blkid` prints it.
    pub(crate) fn uuid_string(&self) -> String {
        let h: Vec<String> = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            h[0..4].concat(),
            h[4..6].concat(),
            h[6..8].concat(),
            h[8..10].concat(),
            h[10..16].concat()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_groups() {
        let mut b = vec![0u8; SB_LEN];
        b[0x38..0x3A].copy_from_slice(&MAGIC.to_le_bytes());
        b[0x4..0x8].copy_from_slice(&100_000u32.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        b[0x20..0x24].copy_from_slice(&8192u32.to_le_bytes());
        b[0x28..0x2C].copy_from_slice(&2048u32.to_le_bytes());
        b[0x4C] = 1;
        b[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        b[0x64] = RO_COMPAT_SPARSE_SUPER as u8;
        let sb = Superblock::parse(&b, &Checks::default()).expect("parse");
        assert_eq!(sb.groups(), 13);
        let with: Vec<u64> = (0..30).filter(|&g| sb.has_super(g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27]);
        // bigalloc: 16-block clusters, 8192 clusters a group (4 groups).
        b[0x65] |= (RO_COMPAT_BIGALLOC >> 8) as u8;
        b[0x1C] = 4;
        b[0x20..0x24].copy_from_slice(&(8192u32 * 16).to_le_bytes());
        b[0x24..0x28].copy_from_slice(&8192u32.to_le_bytes());
        assert_eq!(
            Superblock::parse(&b, &Checks::default())
                .expect("bigalloc")
                .groups(),
            1
        );
        b[0x24..0x28].copy_from_slice(&8191u32.to_le_bytes());
        let e = Superblock::parse(&b, &Checks::default()).expect_err("clusters per group");
        assert!(e.to_string().contains("clusters of 16 blocks"), "{e}");
        b[0x24..0x28].copy_from_slice(&8192u32.to_le_bytes());
        b[0x1C] = 31;
        assert!(Superblock::parse(&b, &Checks::default()).is_err());
        b[0x1C] = 0;
        b[0x65] = 0;
        b[0x20..0x24].copy_from_slice(&8192u32.to_le_bytes());
        b[0x60] = 0x20; // an unknown INCOMPAT flag
        assert!(matches!(
            Superblock::parse(&b, &Checks::default()),
            Err(FsError::Unsupported { .. })
        ));
        b[0x60] = 0;
        b[0x38] = 0;
        let e = Superblock::parse(&b, &Checks::default()).expect_err("magic");
        assert!(e.to_string().contains("bad magic"), "{e}");
    }

    #[test]
    fn a_huge_group_count_does_not_overflow() {
        let mut b = vec![0u8; SB_LEN];
        b[0x38..0x3A].copy_from_slice(&MAGIC.to_le_bytes());
        b[0x0..0x4].copy_from_slice(&1000u32.to_le_bytes());
        b[0x4..0x8].copy_from_slice(&u32::MAX.to_le_bytes());
        b[0x150..0x154].copy_from_slice(&u32::MAX.to_le_bytes());
        b[0x20..0x24].copy_from_slice(&8u32.to_le_bytes());
        b[0x28..0x2C].copy_from_slice(&8192u32.to_le_bytes());
        b[0x4C] = 1;
        b[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        b[0x60] = INCOMPAT_64BIT as u8;
        b[0xFE..0x100].copy_from_slice(&64u16.to_le_bytes());
        let sb = Superblock::parse(&b, &Checks::default()).expect("parse");
        assert_eq!(sb.groups(), u64::MAX.div_ceil(8));
        assert_eq!(sb.size(), u64::MAX);
    }
}
