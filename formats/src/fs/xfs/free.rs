//! Free space, from each AG's free-space B+tree by block number (the
//! bnobt: kernel `xfs_format.h` `struct xfs_agf` `agf_roots[XFS_BTNUM_BNO]`,
//! `struct xfs_btree_block` short form, `struct xfs_alloc_rec`), for a disk
//! backup that stores free blocks as zeros. Blocks on the AG free list
//! (AGFL) are not in the bnobt and are reported as used, which is safe.

use std::ops::Range;

use super::XfsFs;
use super::crc::{be32, verify};
use crate::fs::FsError;

/// bnobt block magics: v5 (`AB3B`) and v4 (`ABTB`).
const AB3B: u32 = 0x4142_3342;
const ABTB: u32 = 0x4142_5442;
/// Offset of the CRC in a v5 short-form btree block.
const SBLOCK_CRC: usize = 52;

impl XfsFs {
    /// Calls `f` with the byte ranges of free extents, AG by AG, ascending.
    pub(crate) fn free_ranges(&self, f: &mut dyn FnMut(Range<u64>)) -> Result<(), FsError> {
        let sb = &self.sb;
        let bs = u64::from(sb.block_size);
        let (magic, header) = if sb.crc() { (AB3B, 56) } else { (ABTB, 16) };
        for agno in 0..sb.agcount {
            self.check_ag(agno)?;
            let agf_at = sb.ag_linear(agno, 0) * bs + u64::from(sb.sect_size);
            let agf = self.read_meta(agf_at, sb.sect_size as usize)?;
            let (mut block, levels) = (be32(&agf, 16), be32(&agf, 28));
            let ag_len = if agno + 1 == sb.agcount {
                sb.dblocks - u64::from(agno) * u64::from(sb.agblocks)
            } else {
                u64::from(sb.agblocks)
            };
            let structure = format!("XFS free-space btree of AG {agno}");
            if levels == 0 || levels > 16 {
                return Err(FsError::corrupt(
                    structure,
                    agf_at,
                    format!("{levels} levels"),
                ));
            }
            // Down the leftmost path to a leaf, then along the leaves.
            let mut level = levels;
            let mut visited = 0u64;
            let mut last_end = 0u64;
            loop {
                let at_block = u64::from(block);
                if at_block == 0 || at_block >= ag_len || visited > ag_len {
                    return Err(FsError::corrupt(
                        structure,
                        agf_at,
                        format!("block {block} out of the AG (or a loop)"),
                    ));
                }
                visited += 1;
                let at = sb.ag_linear(agno, at_block) * bs;
                let b = self.read_meta(at, bs as usize)?;
                if be32(&b, 0) != magic {
                    return Err(FsError::corrupt(structure, at, "bad btree block magic"));
                }
                if sb.crc() {
                    verify(&self.checks, &b, SBLOCK_CRC, &structure, at)?;
                }
                let blevel = u32::from(u16::from_be_bytes([b[4], b[5]]));
                let numrecs = usize::from(u16::from_be_bytes([b[6], b[7]]));
                let right = be32(&b, 12);
                if blevel + 1 != level {
                    return Err(FsError::corrupt(
                        structure,
                        at,
                        format!("level {blevel} where {} was expected", level - 1),
                    ));
                }
                let maxrecs = (b.len() - header) / if blevel == 0 { 8 } else { 12 };
                if numrecs > maxrecs || (numrecs == 0 && blevel > 0) {
                    return Err(FsError::corrupt(
                        structure,
                        at,
                        format!("{numrecs} records"),
                    ));
                }
                if blevel > 0 {
                    // The first pointer, after the node's keys.
                    block = be32(&b, header + maxrecs * 8);
                    level -= 1;
                    continue;
                }
                for i in 0..numrecs {
                    let r = header + i * 8;
                    let (start, len) = (u64::from(be32(&b, r)), u64::from(be32(&b, r + 4)));
                    if len == 0 || start < last_end || start + len > ag_len {
                        return Err(FsError::corrupt(
                            structure,
                            at,
                            format!("free extent {start}+{len} out of order or out of the AG"),
                        ));
                    }
                    last_end = start + len;
                    let first = sb.ag_linear(agno, start) * bs;
                    f(first..first + len * bs);
                }
                if right == u32::MAX {
                    break;
                }
                block = right;
            }
        }
        Ok(())
    }
}
