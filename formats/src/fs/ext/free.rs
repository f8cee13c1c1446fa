//! Free blocks, from each group's block bitmap (bit clear: free), for a
//! disk backup that stores them as zeros.
//!
//! A group flagged BLOCK_UNINIT (with uninit_bg or metadata_csum) has no
//! bitmap on disk: its blocks are free except the group's own metadata,
//! whose places depend on flex_bg and meta_bg. Such groups are reported as
//! wholly used, which costs space but never zeroes a block in use.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/group_descr.rst`
//! (bg_block_bitmap, the BLOCK_UNINIT flag).

use crate::fs::checks::Checks;
use std::ops::Range;

use super::group;
use super::sb::{Superblock, le32};
use crate::fs::FsError;
use crate::io::ReadAt;

/// Group flag: the block bitmap is not initialised.
const BLOCK_UNINIT: u16 = 0x2;

/// Calls `f` with the byte ranges of free blocks, ascending and merged.
/// `desc` reads a group's descriptor bytes at an offset.
pub(crate) fn free_ranges(
    sb: &Superblock,
    vol: &dyn ReadAt,
    desc: &dyn Fn(u64, usize) -> Result<Vec<u8>, FsError>,
    checks: &Checks,
    f: &mut dyn FnMut(Range<u64>),
) -> Result<(), FsError> {
    let bs = u64::from(sb.block_size);
    let per_group = u64::from(sb.blocks_per_group);
    let csum = sb.gdt_csum() || sb.metadata_csum();
    let mut run: Option<Range<u64>> = None;
    let mut bitmap = vec![0u8; bs as usize];
    for g in 0..sb.groups() {
        let offset = group::desc_offset(sb, g).ok_or_else(|| {
            FsError::corrupt("ext4 group descriptors", 0, format!("group {g} overflows"))
        })?;
        let raw = desc(offset, usize::from(sb.desc_size))?;
        let grp = group::parse(sb, g, &raw, offset, checks)?;
        if csum && grp.flags & BLOCK_UNINIT != 0 {
            continue;
        }
        let first = u64::from(sb.first_data_block) + g * per_group;
        let count = per_group.min(sb.blocks_count.saturating_sub(first));
        let hi = if sb.desc_size >= 64 {
            u64::from(le32(&raw, 0x20)) << 32
        } else {
            0
        };
        let block = u64::from(le32(&raw, 0)) | hi;
        // One bit a cluster (a block without bigalloc).
        let cl = sb.cluster_log;
        let clusters = count.div_ceil(1 << cl);
        if block == 0 || block >= sb.blocks_count || clusters > 8 * bs {
            return Err(FsError::corrupt(
                format!("ext4 group descriptor {g}"),
                offset,
                format!("block bitmap at block {block} for {count} blocks"),
            ));
        }
        let bytes = clusters.div_ceil(8) as usize;
        vol.read_exact_at(block * bs, &mut bitmap[..bytes])?;
        for i in 0..clusters {
            let free = bitmap[(i / 8) as usize] & (1 << (i % 8)) == 0;
            let at = (first + (i << cl)) * bs;
            let end = (first + ((i + 1) << cl).min(count)) * bs;
            run = match (run.take(), free) {
                (Some(r), true) if r.end == at => Some(r.start..end),
                (Some(r), true) => {
                    f(r);
                    Some(at..end)
                }
                (None, true) => Some(at..end),
                (Some(r), false) => {
                    f(r);
                    None
                }
                (None, false) => None,
            };
        }
    }
    if let Some(r) = run {
        f(r);
    }
    Ok(())
}
