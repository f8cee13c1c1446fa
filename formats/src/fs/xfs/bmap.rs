//! Block maps: the 128-bit extent record (`xfs_bmbt_rec`) and the bmbt,
//! the B+tree of extent records used when they do not fit in the inode
//! (kernel `fs/xfs/libxfs/xfs_format.h`, `xfs_bmap_btree.h`; "XFS
//! Algorithms & Data Structures", "Data Extents" and "B+tree Extent
//! List").
//!
//! A record packs, from the top bit: the unwritten flag (1), the file
//! offset in blocks (54), the AG-encoded start block (52) and the length
//! (21). The bmbt root sits in the inode's fork (`xfs_bmdr_block`: level,
//! numrecs, then keys and pointers sized by the fork); its other blocks are
//! long-format btree blocks (`BMAP`, or `BMA3` with CRC, owner and UUID on
//! v5) whose pointers are 64-bit AG-encoded block numbers.

use std::collections::HashSet;
use std::sync::Arc;

use super::XfsFs;
use super::crc::{be16, be64, verify};
use super::inode::{Format, Inode};
use crate::fs::FsError;

/// One extent of a fork.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    /// First file block.
    pub offset: u64,
    /// AG-encoded first block.
    pub start: u64,
    /// Length in blocks.
    pub count: u64,
    /// Preallocated, never written: reads as zeros.
    pub unwritten: bool,
}

/// Unpacks a 16-byte extent record.
pub(crate) fn unpack(rec: &[u8]) -> Extent {
    let l0 = be64(rec, 0);
    let l1 = be64(rec, 8);
    Extent {
        unwritten: l0 >> 63 != 0,
        offset: (l0 >> 9) & ((1 << 54) - 1),
        start: ((l0 & 0x1ff) << 43) | (l1 >> 21),
        count: l1 & ((1 << 21) - 1),
    }
}

const BMAP_MAGIC: u32 = 0x424d_4150; // "BMAP"
const BMA3_MAGIC: u32 = 0x424d_4133; // "BMA3"
/// Long-format btree block header sizes (v4, v5) and the v5 CRC offset.
const LHDR_V4: usize = 24;
const LHDR_V5: usize = 72;
const LCRC_OFF: usize = 64;
/// The deepest bmbt the reader follows (the kernel's limit is 9 for 2^64
/// extents).
const MAX_LEVELS: u16 = 10;

impl XfsFs {
    /// The extents of `inode`'s data fork, in file order, checked to be
    /// sorted, non-overlapping and inside the filesystem; a bmbt's are
    /// cached (bounded).
    pub(crate) fn extents(&self, inode: &Inode) -> Result<Arc<Vec<Extent>>, FsError> {
        let ino = inode.meta.ino.0;
        if inode.format != Format::Btree {
            return self.read_extents(inode).map(Arc::new);
        }
        if let Some(e) = self.bmaps.lock().0.get(&ino) {
            return Ok(e.clone());
        }
        let list = Arc::new(self.read_extents(inode)?);
        let mut cache = self.bmaps.lock();
        if cache.1 + list.len() > super::EXTENT_CACHE {
            cache.0.clear();
            cache.1 = 0;
        }
        if list.len() <= super::EXTENT_CACHE {
            cache.1 += list.len();
            if let Some(old) = cache.0.insert(ino, list.clone()) {
                cache.1 -= old.len();
            }
        }
        Ok(list)
    }

    pub(crate) fn read_extents(&self, inode: &Inode) -> Result<Vec<Extent>, FsError> {
        let ino = inode.meta.ino.0;
        let structure = || format!("XFS inode {ino} {}", inode.fork_name);
        let mut out = Vec::new();
        match inode.format {
            Format::Extents => {
                let max = inode.fork.len() / 16;
                let n = usize::try_from(inode.nextents).unwrap_or(usize::MAX);
                if n > max {
                    return Err(FsError::corrupt(
                        structure(),
                        inode.offset,
                        format!("{n} extents do not fit a {}-byte fork", inode.fork.len()),
                    ));
                }
                out.extend(inode.fork.chunks_exact(16).take(n).map(unpack));
            }
            Format::Btree => self.bmbt_root(inode, &mut out)?,
            Format::Local | Format::Dev => return Ok(out),
        }
        let mut next = 0u64;
        for e in &out {
            if e.count == 0 || e.offset < next {
                return Err(FsError::corrupt(
                    structure(),
                    inode.offset,
                    format!(
                        "extent at file block {} ({} blocks) overlaps or is empty",
                        e.offset, e.count
                    ),
                ));
            }
            let end = e.start & ((1u64 << self.sb.agblk_log) - 1);
            let inside = self.sb.fsb_to_linear(e.start).is_some()
                && end + e.count <= u64::from(self.sb.agblocks);
            if !inside {
                return Err(FsError::corrupt(
                    structure(),
                    inode.offset,
                    format!(
                        "extent at file block {} points to block {:#x} ({} blocks), outside the filesystem",
                        e.offset, e.start, e.count
                    ),
                ));
            }
            next = e.offset + e.count;
        }
        Ok(out)
    }

    fn bmbt_root(&self, inode: &Inode, out: &mut Vec<Extent>) -> Result<(), FsError> {
        let ino = inode.meta.ino.0;
        let fork = &inode.fork;
        let bad = |d: String| {
            FsError::corrupt(
                format!("XFS inode {ino} {} bmbt root", inode.fork_name),
                inode.offset,
                d,
            )
        };
        let level = be16(fork, 0);
        let numrecs = usize::from(be16(fork, 2));
        let maxrecs = fork.len().saturating_sub(4) / 16;
        if level == 0 || level > MAX_LEVELS || numrecs == 0 || numrecs > maxrecs {
            return Err(bad(format!(
                "level {level}, {numrecs} records (at most {maxrecs})"
            )));
        }
        // Keys then pointers, each array sized by the fork's capacity.
        let ptrs_at = 4 + maxrecs * 8;
        let limit = inode.nextents;
        let mut seen = HashSet::new();
        for i in 0..numrecs {
            let ptr = be64(fork, ptrs_at + i * 8);
            self.bmbt_block(ino, ptr, level - 1, limit, &mut seen, out)?;
        }
        if out.len() as u64 != inode.nextents {
            return Err(bad(format!(
                "the bmbt holds {} extents, the inode counts {}",
                out.len(),
                inode.nextents
            )));
        }
        Ok(())
    }

    fn bmbt_block(
        &self,
        ino: u64,
        ptr: u64,
        level: u16,
        limit: u64,
        seen: &mut HashSet<u64>,
        out: &mut Vec<Extent>,
    ) -> Result<(), FsError> {
        let sb = &self.sb;
        let offset = sb.fsb_to_byte(ptr).ok_or_else(|| {
            FsError::corrupt(
                format!("XFS inode {ino} bmbt"),
                0,
                format!("pointer to block {ptr:#x} outside the filesystem"),
            )
        })?;
        let structure = format!("XFS inode {ino} bmbt block {ptr:#x}");
        if !seen.insert(ptr) {
            return Err(FsError::corrupt(
                structure,
                offset,
                "block reached twice: the bmbt loops",
            ));
        }
        let block = self.read_meta(offset, sb.block_size as usize)?;
        let bad = |d: String| FsError::corrupt(structure.clone(), offset, d);
        let magic = super::crc::be32(&block, 0);
        let hdr = if sb.crc() {
            if magic != BMA3_MAGIC {
                return Err(bad(format!("bad magic {magic:#010x}, expected BMA3")));
            }
            verify(&self.checks, &block, LCRC_OFF, &structure, offset)?;
            if be64(&block, 24) != offset / 512 {
                return Err(bad(format!(
                    "records its address as sector {}",
                    be64(&block, 24)
                )));
            }
            if block[40..56] != sb.meta_uuid {
                return Err(bad("UUID is not the filesystem's".into()));
            }
            if be64(&block, 56) != ino {
                return Err(bad(format!("owned by inode {}", be64(&block, 56))));
            }
            LHDR_V5
        } else {
            if magic != BMAP_MAGIC {
                return Err(bad(format!("bad magic {magic:#010x}, expected BMAP")));
            }
            LHDR_V4
        };
        let got_level = be16(&block, 4);
        let numrecs = usize::from(be16(&block, 6));
        // Leaf records and node key+pointer pairs are both 16 bytes.
        let room = (block.len() - hdr) / 16;
        if got_level != level || numrecs == 0 || numrecs > room {
            return Err(bad(format!(
                "level {got_level} (expected {level}), {numrecs} records (at most {room})"
            )));
        }
        if level == 0 {
            if out.len() as u64 + numrecs as u64 > limit {
                return Err(bad(format!("more extents than the inode's {limit}")));
            }
            out.extend(block[hdr..hdr + numrecs * 16].chunks_exact(16).map(unpack));
            return Ok(());
        }
        let ptrs_at = hdr + room * 8;
        for i in 0..numrecs {
            let child = be64(&block, ptrs_at + i * 8);
            self.bmbt_block(ino, child, level - 1, limit, seen, out)?;
        }
        Ok(())
    }

    /// Maps file block `fblock` through `extents` to a linear volume block
    /// and how many blocks from there are contiguous, or `None` for a hole
    /// or an unwritten extent (with how many blocks until the next extent).
    pub(crate) fn map_block(&self, extents: &[Extent], fblock: u64) -> (Option<u64>, u64) {
        let i = extents.partition_point(|e| e.offset + e.count <= fblock);
        match extents.get(i) {
            Some(e) if e.offset <= fblock => {
                let left = e.offset + e.count - fblock;
                if e.unwritten {
                    return (None, left);
                }
                let agbno = e.start & ((1u64 << self.sb.agblk_log) - 1);
                let agno = e.start >> self.sb.agblk_log;
                let linear = self.sb.ag_linear(agno as u32, agbno + (fblock - e.offset));
                (Some(linear), left)
            }
            Some(e) => (None, e.offset - fblock),
            None => (None, u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(e: Extent) -> [u8; 16] {
        let l0 = (u64::from(e.unwritten) << 63) | (e.offset << 9) | (e.start >> 43);
        let l1 = ((e.start & ((1 << 43) - 1)) << 21) | e.count;
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&l0.to_be_bytes());
        r[8..].copy_from_slice(&l1.to_be_bytes());
        r
    }

    #[test]
    fn extent_records_unpack() {
        for e in [
            Extent {
                offset: 0,
                start: 0,
                count: 1,
                unwritten: false,
            },
            Extent {
                offset: (1 << 54) - 1,
                start: (1 << 52) - 1,
                count: (1 << 21) - 1,
                unwritten: true,
            },
            Extent {
                offset: 12345,
                start: (3 << 15) | 25599,
                count: 77,
                unwritten: false,
            },
            Extent {
                offset: 7,
                start: 1 << 44,
                count: 2,
                unwritten: true,
            },
        ] {
            assert_eq!(unpack(&pack(e)), e);
        }
        // A record as mkfs writes it: file block 0, block 0x60, 1 block.
        let r = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0, 1];
        assert_eq!(
            unpack(&r),
            Extent {
                offset: 0,
                start: 0x60,
                count: 1,
                unwritten: false
            }
        );
        let mut r2 = r;
        r2[0] = 0x80;
        assert!(unpack(&r2).unwritten);
    }
}
