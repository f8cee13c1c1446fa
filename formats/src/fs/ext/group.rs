//! Block group descriptors: where each group's inode table lies. 32 bytes
//! each, or `s_desc_size` (64 or more) with the 64bit feature, the high
//! halves in the second 32 bytes. They follow the superblock (block
//! `s_first_data_block + 1`), except under meta_bg: from meta group
//! `s_first_meta_bg` on, each meta group (the groups one descriptor block
//! describes) keeps its descriptor block in its own first group, after that
//! group's superblock copy if it has one.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/group_descr.rst`
//! and `blockgroup.rst` (meta_bg, flex_bg); checksums: metadata_csum's
//! CRC-32C (low 16 bits) or, before it, uninit_bg's CRC-16. No code was taken from them.
//! With flex_bg the inode tables of several groups lie together, which
//! changes nothing here: every descriptor names its own table's block.

use super::csum;
use super::sb::{INCOMPAT_META_BG, Superblock, le16, le32};
use crate::fs::FsError;
use crate::fs::checks::Checks;

/// Group flag: the inode table is not initialised (reads as unused).
pub(crate) const INODE_UNINIT: u16 = 0x1;

/// One group's descriptor, as far as the reader needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub inode_table: u64,
    pub flags: u16,
    pub itable_unused: u32,
}

/// The byte offset of group `g`'s descriptor.
pub(crate) fn desc_offset(sb: &Superblock, g: u64) -> Option<u64> {
    let bs = u64::from(sb.block_size);
    let ds = u64::from(sb.desc_size);
    let per_block = bs / ds;
    let mg = g / per_block;
    let block = if sb.has(INCOMPAT_META_BG) && mg >= u64::from(sb.first_meta_bg) {
        let first = mg.checked_mul(per_block)?;
        let start = u64::from(sb.first_data_block)
            .checked_add(first.checked_mul(u64::from(sb.blocks_per_group))?)?;
        start + u64::from(sb.has_super(first))
    } else {
        u64::from(sb.first_data_block) + 1 + mg
    };
    block.checked_mul(bs)?.checked_add((g % per_block) * ds)
}

/// Parses (and with metadata_csum checks) descriptor `g` read at `offset`.
pub(crate) fn parse(
    sb: &Superblock,
    g: u64,
    b: &[u8],
    offset: u64,
    checks: &Checks,
) -> Result<Group, FsError> {
    let structure = format!("ext4 group descriptor {g}");
    if b.len() < usize::from(sb.desc_size) {
        return Err(FsError::corrupt(structure, offset, "short read"));
    }
    if sb.metadata_csum() {
        let mut crc = csum::update(sb.csum_seed, &(g as u32).to_le_bytes());
        crc = csum::update(crc, &b[..0x1E]);
        crc = csum::update(crc, &[0, 0]);
        crc = csum::update(crc, &b[0x20..usize::from(sb.desc_size)]);
        csum::check(
            checks,
            u32::from(le16(b, 0x1E)),
            crc & 0xFFFF,
            &structure,
            offset,
        )?;
    } else if sb.gdt_csum() {
        let mut crc = csum::crc16(0xFFFF, &sb.uuid);
        crc = csum::crc16(crc, &(g as u32).to_le_bytes());
        crc = csum::crc16(crc, &b[..0x1E]);
        crc = csum::crc16(crc, &b[0x20..usize::from(sb.desc_size)]);
        csum::check(
            checks,
            u32::from(le16(b, 0x1E)),
            u32::from(crc),
            &structure,
            offset,
        )?;
    }
    let wide = sb.desc_size >= 64;
    let hi = |at: usize| {
        if wide {
            u64::from(le32(b, at)) << 32
        } else {
            0
        }
    };
    let inode_table = u64::from(le32(b, 0x8)) | hi(0x28);
    let itable_unused = u32::from(le16(b, 0x1C))
        | if wide {
            u32::from(le16(b, 0x32)) << 16
        } else {
            0
        };
    let flags = le16(b, 0x12);
    let ipg_blocks = (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size))
        .div_ceil(u64::from(sb.block_size));
    let table_end = inode_table.checked_add(ipg_blocks);
    let uninit = (sb.gdt_csum() || sb.metadata_csum()) && flags & INODE_UNINIT != 0;
    if !uninit && (inode_table == 0 || table_end.is_none_or(|e| e > sb.blocks_count)) {
        return Err(FsError::corrupt(
            structure,
            offset,
            format!("inode table at block {inode_table} lies outside the filesystem"),
        ));
    }
    Ok(Group {
        inode_table,
        flags: if uninit { flags } else { flags & !INODE_UNINIT },
        itable_unused: if sb.gdt_csum() || sb.metadata_csum() {
            itable_unused
        } else {
            0
        },
    })
}
