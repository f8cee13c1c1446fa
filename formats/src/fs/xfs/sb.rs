//! The superblock (`struct xfs_dsb`, kernel `fs/xfs/libxfs/xfs_format.h`)
//! and the geometry derived from it: the translation of AG-encoded block
//! and inode numbers to byte offsets.
//!
//! An XFS filesystem block number (FSB) is `agno << agblklog | agbno` and
//! an inode number is `agno << (agblklog + inopblog) | agbno << inopblog |
//! index`, where `agblklog` is `ceil(log2(agblocks))`. Because `agblocks`
//! need not be a power of two, these numbers are *not* linear: the byte
//! offset is `(agno * agblocks + agbno) * blocksize` ("XFS Algorithms &
//! Data Structures", "Allocation Groups" and "Sharing Data Blocks").

use super::crc::{be16, be32, be64, verify};
use crate::fs::FsError;
use crate::fs::checks::Checks;

const MAGIC: u32 = 0x5846_5342; // "XFSB"

/// v4 `sb_versionnum` bits.
const VERSION_DIRV2: u16 = 0x2000;
const VERSION_MOREBITS: u16 = 0x8000;
/// `sb_features2`: ftype in directory entries (v4).
const FEATURES2_FTYPE: u32 = 0x200;

/// v5 incompatible features this reader understands: ftype, sparse inode
/// chunks, meta_uuid, bigtime, needsrepair (a warning), 64-bit extent
/// counters, exchange-range, parent pointers. Others (metadir, realtime
/// groups, zoned) are refused.
pub(crate) const INCOMPAT_FTYPE: u32 = 0x1;
const INCOMPAT_SPINODES: u32 = 0x2;
const INCOMPAT_META_UUID: u32 = 0x4;
const INCOMPAT_BIGTIME: u32 = 0x8;
const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
pub(crate) const INCOMPAT_NREXT64: u32 = 0x20;
/// File range exchange and parent pointers change the log and the
/// attribute fork only, neither of which this reader uses.
const INCOMPAT_EXCHRANGE: u32 = 0x40;
const INCOMPAT_PARENT: u32 = 0x80;
const INCOMPAT_KNOWN: u32 = INCOMPAT_EXCHRANGE
    | INCOMPAT_PARENT
    | INCOMPAT_FTYPE
    | INCOMPAT_SPINODES
    | INCOMPAT_META_UUID
    | INCOMPAT_BIGTIME
    | INCOMPAT_NEEDSREPAIR
    | INCOMPAT_NREXT64;

/// Offset of `sb_crc`.
const SB_CRC: usize = 224;

/// What the superblock says, checked for consistency.
#[derive(Clone, Debug)]
pub(crate) struct Superblock {
    /// 4 or 5.
    pub version: u8,
    pub block_size: u32,
    pub block_log: u8,
    pub dblocks: u64,
    pub uuid: [u8; 16],
    /// The UUID stamped into v5 metadata blocks (`sb_meta_uuid` when the
    /// meta_uuid feature is on, else `sb_uuid`).
    pub meta_uuid: [u8; 16],
    pub logstart: u64,
    pub rootino: u64,
    pub agblocks: u32,
    pub agcount: u32,
    pub logblocks: u32,
    pub sect_size: u32,
    pub inode_size: u32,
    pub inopb_log: u8,
    pub agblk_log: u8,
    pub inprogress: bool,
    pub dirblk_log: u8,
    pub ftype: bool,
    pub nrext64: bool,
    pub needs_repair: bool,
    pub label: String,
}

fn bad(detail: impl Into<String>) -> FsError {
    FsError::corrupt("XFS superblock", 0, detail)
}

impl Superblock {
    /// Parses and checks the primary superblock from the first sector(s).
    /// `head` must hold at least 512 bytes (the whole sector on v5, for
    /// its checksum).
    pub fn parse(head: &[u8], checks: &Checks) -> Result<Superblock, FsError> {
        if head.len() < 512 {
            return Err(bad(format!("volume too small ({} bytes)", head.len())));
        }
        let magic = be32(head, 0);
        if magic != MAGIC {
            return Err(bad(format!("bad magic {magic:#010x}, expected XFSB")));
        }
        let versionnum = be16(head, 100);
        let version = (versionnum & 0xF) as u8;
        let sect_size = u32::from(be16(head, 102));
        let sect_log = head[121];
        if !(512..=32768).contains(&sect_size)
            || 1u32.checked_shl(u32::from(sect_log)) != Some(sect_size)
        {
            return Err(bad(format!("bad sector size {sect_size} (log {sect_log})")));
        }
        let features2 = if versionnum & VERSION_MOREBITS != 0 {
            be32(head, 200)
        } else {
            0
        };
        let incompat = if version == 5 { be32(head, 216) } else { 0 };
        match version {
            4 => {
                if versionnum & VERSION_DIRV2 == 0 {
                    return Err(FsError::Unsupported {
                        fs: "XFS",
                        detail: "version 1 directories (a v4 filesystem without dirv2)".into(),
                    });
                }
            }
            5 => {
                let sect = head
                    .get(..sect_size as usize)
                    .ok_or_else(|| bad("volume shorter than one sector"))?;
                verify(checks, sect, SB_CRC, "XFS superblock", 0)?;
                if incompat & !INCOMPAT_KNOWN != 0 {
                    return Err(FsError::Unsupported {
                        fs: "XFS",
                        detail: format!(
                            "incompatible feature bits {:#x}",
                            incompat & !INCOMPAT_KNOWN
                        ),
                    });
                }
            }
            v => {
                return Err(bad(format!(
                    "unknown version {v} (versionnum {versionnum:#06x})"
                )));
            }
        }
        let block_size = be32(head, 4);
        let block_log = head[120];
        if !(512..=65536).contains(&block_size)
            || 1u32.checked_shl(u32::from(block_log)) != Some(block_size)
        {
            return Err(bad(format!(
                "bad block size {block_size} (log {block_log})"
            )));
        }
        let inode_size = u32::from(be16(head, 104));
        let inode_log = head[122];
        let inopb_log = head[123];
        if !(256..=2048).contains(&inode_size)
            || 1u32.checked_shl(u32::from(inode_log)) != Some(inode_size)
            || inode_size > block_size
            || u32::from(inopb_log) != u32::from(block_log) - u32::from(inode_log)
            || u32::from(be16(head, 106)) != block_size / inode_size
        {
            return Err(bad(format!(
                "bad inode geometry: size {inode_size} (log {inode_log}), {} per block (log {inopb_log})",
                be16(head, 106)
            )));
        }
        if version == 5 && inode_size < 512 {
            return Err(bad(format!(
                "v5 inodes of {inode_size} bytes (at least 512)"
            )));
        }
        let agblocks = be32(head, 84);
        let agcount = be32(head, 88);
        let agblk_log = head[124];
        let dblocks = be64(head, 8);
        // agblklog is log2 of agblocks rounded up.
        let want_log = if agblocks <= 1 {
            0
        } else {
            32 - (agblocks - 1).leading_zeros()
        };
        if agblocks < 5 || agcount == 0 || u32::from(agblk_log) != want_log {
            return Err(bad(format!(
                "bad AG geometry: {agcount} AGs of {agblocks} blocks, agblklog {agblk_log}"
            )));
        }
        let full = u64::from(agblocks) * u64::from(agcount);
        if dblocks > full || dblocks <= full - u64::from(agblocks) {
            return Err(bad(format!(
                "{dblocks} data blocks do not fit {agcount} AGs of {agblocks} blocks"
            )));
        }
        if dblocks
            .checked_mul(u64::from(block_size))
            .is_none_or(|b| b > 1 << 60)
        {
            return Err(bad(format!(
                "{dblocks} blocks of {block_size} bytes: over 1 EiB"
            )));
        }
        if u32::from(agblk_log) + u32::from(inopb_log) > 32 + 31 {
            return Err(bad("inode numbers wider than 64 bits"));
        }
        let dirblk_log = head[192];
        if u32::from(block_log) + u32::from(dirblk_log) > 16 {
            return Err(bad(format!(
                "directory blocks of 2^{} bytes",
                u32::from(block_log) + u32::from(dirblk_log)
            )));
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&head[32..48]);
        let mut meta_uuid = uuid;
        if incompat & INCOMPAT_META_UUID != 0 {
            meta_uuid.copy_from_slice(&head[248..264]);
        }
        let fname = &head[108..120];
        let end = fname.iter().position(|&b| b == 0).unwrap_or(fname.len());
        let label = String::from_utf8_lossy(&fname[..end]).into_owned();
        Ok(Superblock {
            version,
            block_size,
            block_log,
            dblocks,
            uuid,
            meta_uuid,
            logstart: be64(head, 48),
            rootino: be64(head, 56),
            agblocks,
            agcount,
            logblocks: be32(head, 96),
            sect_size,
            inode_size,
            inopb_log,
            agblk_log,
            inprogress: head[126] != 0,
            dirblk_log,
            ftype: incompat & INCOMPAT_FTYPE != 0 || features2 & FEATURES2_FTYPE != 0,
            nrext64: incompat & INCOMPAT_NREXT64 != 0,
            needs_repair: incompat & INCOMPAT_NEEDSREPAIR != 0,
            label,
        })
    }

    /// v5: metadata blocks carry CRCs, owners and UUIDs.
    pub fn crc(&self) -> bool {
        self.version == 5
    }

    /// The filesystem size in bytes.
    pub fn size(&self) -> u64 {
        self.dblocks.saturating_mul(u64::from(self.block_size))
    }

    /// The linear block index (from the volume start) of AG-encoded block
    /// `fsb`, or `None` if its AG or AG block lies outside the filesystem.
    pub fn fsb_to_linear(&self, fsb: u64) -> Option<u64> {
        let agno = fsb.checked_shr(u32::from(self.agblk_log)).unwrap_or(0);
        let agbno = fsb & ((1u64 << self.agblk_log) - 1);
        if agno >= u64::from(self.agcount) || agbno >= u64::from(self.agblocks) {
            return None;
        }
        let linear = agno * u64::from(self.agblocks) + agbno;
        (linear < self.dblocks).then_some(linear)
    }

    /// The byte offset of AG-encoded block `fsb`.
    pub fn fsb_to_byte(&self, fsb: u64) -> Option<u64> {
        self.fsb_to_linear(fsb)?
            .checked_mul(u64::from(self.block_size))
    }

    /// The linear block of `(agno, agbno)`.
    pub fn ag_linear(&self, agno: u32, agbno: u64) -> u64 {
        u64::from(agno) * u64::from(self.agblocks) + agbno
    }

    /// The byte offset of inode `ino`, or `None` if it cannot exist.
    pub fn ino_to_byte(&self, ino: u64) -> Option<u64> {
        let index_bits = u32::from(self.inopb_log);
        let index = ino & ((1u64 << index_bits) - 1);
        let fsb = ino >> index_bits;
        let block = self.fsb_to_byte(fsb)?;
        block.checked_add(index * u64::from(self.inode_size))
    }

    /// The UUID as `xfs_admin -u` prints it.
    pub fn uuid_string(&self) -> String {
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
pub(crate) mod tests {
    use super::*;

    /// A consistent v5 superblock: 4 KiB blocks, `agcount` AGs of
    /// `agblocks` (25600: not a power of two), 512-byte inodes.
    pub(crate) fn make_sb(agblocks: u32, agcount: u32, version: u8) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..4].copy_from_slice(b"XFSB");
        b[4..8].copy_from_slice(&4096u32.to_be_bytes());
        let dblocks = u64::from(agblocks) * u64::from(agcount);
        b[8..16].copy_from_slice(&dblocks.to_be_bytes());
        b[56..64].copy_from_slice(&128u64.to_be_bytes());
        b[84..88].copy_from_slice(&agblocks.to_be_bytes());
        b[88..92].copy_from_slice(&agcount.to_be_bytes());
        let vn: u16 = if version == 5 { 0xb4a5 } else { 0xb4a4 };
        b[100..102].copy_from_slice(&vn.to_be_bytes());
        b[102..104].copy_from_slice(&512u16.to_be_bytes());
        let isize: u16 = if version == 5 { 512 } else { 256 };
        b[104..106].copy_from_slice(&isize.to_be_bytes());
        b[106..108].copy_from_slice(&(4096 / isize).to_be_bytes());
        b[108..112].copy_from_slice(b"test");
        b[120] = 12;
        b[121] = 9;
        b[122] = isize.trailing_zeros() as u8;
        b[123] = 12 - b[122];
        b[124] = (32 - (agblocks - 1).leading_zeros()) as u8;
        if version == 5 {
            b[216..220].copy_from_slice(&INCOMPAT_FTYPE.to_be_bytes());
            let sum = super::super::crc::block_crc(&b, SB_CRC);
            b[SB_CRC..SB_CRC + 4].copy_from_slice(&sum.to_le_bytes());
        }
        b
    }

    #[test]
    fn fsb_translation_on_a_non_power_of_two_geometry() {
        let sb = Superblock::parse(&make_sb(25600, 4, 5), &Checks::default()).expect("sb");
        assert_eq!(sb.agblk_log, 15);
        // AG 1, block 10: FSB 1 << 15 | 10 lies at linear block 25610, not 32778.
        assert_eq!(sb.fsb_to_linear((1 << 15) | 10), Some(25610));
        assert_eq!(
            sb.fsb_to_byte((3 << 15) | 25599),
            Some((3 * 25600 + 25599) * 4096)
        );
        // agbno past agblocks (in the gap of the encoding) and AG past agcount.
        assert_eq!(sb.fsb_to_linear((1 << 15) | 25600), None);
        assert_eq!(sb.fsb_to_linear(4 << 15), None);
        // Inode 2 << (15 + 3) | 7 << 3 | 5: AG 2, block 7, fifth inode.
        let ino = (2u64 << 18) | (7 << 3) | 5;
        assert_eq!(sb.ino_to_byte(ino), Some((2 * 25600 + 7) * 4096 + 5 * 512));
    }

    #[test]
    fn damaged_superblocks_are_named_errors() {
        let mut b = make_sb(25600, 4, 5);
        b[200] ^= 1; // inside the checksummed sector
        let e = Superblock::parse(&b, &Checks::default()).expect_err("crc");
        assert!(
            e.to_string()
                .contains("XFS superblock at byte 0x0: checksum mismatch"),
            "{e}"
        );
        let mut b = make_sb(25600, 4, 5);
        b[0] = b'Y';
        assert!(
            Superblock::parse(&b, &Checks::default())
                .expect_err("magic")
                .to_string()
                .contains("bad magic")
        );
        let mut b = make_sb(25600, 4, 4);
        b[124] = 14; // agblklog too small for 25600
        assert!(
            Superblock::parse(&b, &Checks::default())
                .expect_err("agblklog")
                .to_string()
                .contains("bad AG geometry")
        );
        assert!(Superblock::parse(&make_sb(25600, 4, 4), &Checks::default()).is_ok());
    }
}
