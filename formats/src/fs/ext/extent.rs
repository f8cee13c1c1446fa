//! Extent trees (the extents feature): a 12-byte header (magic 0xF30A,
//! entries, capacity, depth) then 12-byte records, in `i_block` for the
//! root (at most 4) and in whole blocks below it. Index records (depth > 0)
//! point to the block one level down; leaf records map a run of logical
//! blocks to physical ones, a length above 32768 marking an uninitialised
//! extent (allocated, read as zeros). Blocks below the root end in a
//! CRC-32C tail under metadata_csum.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/ifork.rst`
//! ("Extent Tree"). No code was taken from it. The depth is capped at 5 as
//! the kernel caps it; each child must be exactly one level below its
//! parent, so a loop cannot recur.

use super::csum;
use super::sb::{le16, le32};
use crate::fs::FsError;
use crate::fs::checks::Checks;

const MAGIC: u16 = 0xF30A;
const MAX_DEPTH: u16 = 5;
/// Leaf records gathered at most for one file.
const MAX_EXTENTS: usize = 1 << 22;

/// One leaf record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    pub logical: u32,
    pub len: u32,
    pub phys: u64,
    pub uninit: bool,
}

/// A node's header: (entries, depth), checked against `room` records.
pub(crate) fn header(
    b: &[u8],
    room: usize,
    structure: &str,
    offset: u64,
) -> Result<(usize, u16), FsError> {
    let bad = |d: String| FsError::corrupt(structure, offset, d);
    let magic = le16(b, 0);
    if magic != MAGIC {
        return Err(bad(format!(
            "extent header magic {magic:#06x}, wanted 0xf30a"
        )));
    }
    let (entries, max, depth) = (usize::from(le16(b, 2)), usize::from(le16(b, 4)), le16(b, 6));
    if max > room || entries > max {
        return Err(bad(format!("{entries} entries of {max}, room for {room}")));
    }
    if depth > MAX_DEPTH {
        return Err(bad(format!("depth {depth} is past {MAX_DEPTH}")));
    }
    Ok((entries, depth))
}

/// A leaf record at `at` of `b`.
pub(crate) fn leaf(b: &[u8], at: usize) -> Extent {
    let raw_len = u32::from(le16(b, at + 4));
    let (len, uninit) = if raw_len > 32768 {
        (raw_len - 32768, true)
    } else {
        (raw_len, false)
    };
    Extent {
        logical: le32(b, at),
        len,
        phys: u64::from(le32(b, at + 8)) | u64::from(le16(b, at + 6)) << 32,
        uninit,
    }
}

/// An index record at `at`: (first logical block, child block).
pub(crate) fn index(b: &[u8], at: usize) -> (u32, u64) {
    (
        le32(b, at),
        u64::from(le32(b, at + 4)) | u64::from(le16(b, at + 8)) << 32,
    )
}

/// What walking a tree needs from the reader.
pub(crate) struct Tree<'a> {
    pub ino: u64,
    pub block_size: usize,
    pub blocks_count: u64,
    /// The inode's checksum seed, `None` without metadata_csum.
    pub csum_seed: Option<u32>,
    pub read_block: &'a dyn Fn(u64) -> Result<Vec<u8>, FsError>,
    /// The filesystem's checksum policy.
    pub checks: &'a Checks,
    /// Tree blocks read so far (bounded by the file's block count).
    pub reads: std::cell::Cell<u64>,
}

impl Tree<'_> {
    /// The leaf records of the tree rooted in `root` (`i_block`), in logical
    /// order, stopping past logical block `want` (the file's block count).
    pub(crate) fn extents(&self, root: &[u8], want: u64) -> Result<Vec<Extent>, FsError> {
        let mut out = Vec::new();
        let structure = format!("ext4 inode {} extent root", self.ino);
        let (n, depth) = header(root, 4, &structure, 0)?;
        self.node(root, n, depth, want, &mut out, &structure, 0)?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &self,
        b: &[u8],
        n: usize,
        depth: u16,
        want: u64,
        out: &mut Vec<Extent>,
        structure: &str,
        offset: u64,
    ) -> Result<(), FsError> {
        for i in 0..n {
            let at = 12 + 12 * i;
            if depth == 0 {
                let e = leaf(b, at);
                if u64::from(e.logical) >= want {
                    return Ok(());
                }
                if e.len == 0 {
                    return Err(FsError::corrupt(
                        structure,
                        offset,
                        format!("extent at logical block {} has length 0", e.logical),
                    ));
                }
                let next = out
                    .last()
                    .map_or(0, |l: &Extent| u64::from(l.logical) + u64::from(l.len));
                if u64::from(e.logical) < next {
                    return Err(FsError::corrupt(
                        structure,
                        offset,
                        format!(
                            "extent at logical block {} overlaps the one before",
                            e.logical
                        ),
                    ));
                }
                if e.phys
                    .checked_add(u64::from(e.len))
                    .is_none_or(|end| end > self.blocks_count)
                {
                    return Err(FsError::corrupt(
                        structure,
                        offset,
                        format!(
                            "extent of {} blocks at block {} lies outside the filesystem",
                            e.len, e.phys
                        ),
                    ));
                }
                if out.len() >= MAX_EXTENTS {
                    return Err(FsError::Unsupported {
                        fs: "ext4",
                        detail: format!("inode {} has more than {MAX_EXTENTS} extents", self.ino),
                    });
                }
                out.push(e);
            } else {
                let (first, child) = index(b, at);
                if u64::from(first) >= want {
                    return Ok(());
                }
                if child == 0 || child >= self.blocks_count {
                    return Err(FsError::corrupt(
                        structure,
                        offset,
                        format!("index points to block {child}, outside the filesystem"),
                    ));
                }
                // A sound tree reads at most about one block per mapped
                // block; a damaged one (every index naming the same child)
                // must not make this exponential.
                let reads = self.reads.get() + 1;
                if reads > want.saturating_mul(2).saturating_add(64) {
                    return Err(FsError::corrupt(
                        structure,
                        offset,
                        format!("more extent blocks than the file has blocks ({want})"),
                    ));
                }
                self.reads.set(reads);
                let block = (self.read_block)(child)?;
                let child_off = child * self.block_size as u64;
                let cs = format!("ext4 inode {} extent block {child}", self.ino);
                let room = (self.block_size - 12) / 12;
                let (cn, cd) = header(&block, room, &cs, child_off)?;
                if cd + 1 != depth {
                    return Err(FsError::corrupt(
                        &cs,
                        child_off,
                        format!("depth {cd} below a node of depth {depth}"),
                    ));
                }
                if let Some(seed) = self.csum_seed {
                    let tail = 12 + 12 * usize::from(le16(&block, 4));
                    if tail + 4 <= block.len() {
                        csum::check(
                            self.checks,
                            le32(&block, tail),
                            csum::update(seed, &block[..tail]),
                            &cs,
                            child_off,
                        )?;
                    }
                }
                self.node(&block, cn, cd, want, out, &cs, child_off)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(depth: u16, records: &[[u8; 12]], max: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&(records.len() as u16).to_le_bytes());
        b.extend_from_slice(&max.to_le_bytes());
        b.extend_from_slice(&depth.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        for r in records {
            b.extend_from_slice(r);
        }
        b
    }

    fn leaf_rec(logical: u32, len: u16, phys: u64) -> [u8; 12] {
        let mut r = [0u8; 12];
        r[0..4].copy_from_slice(&logical.to_le_bytes());
        r[4..6].copy_from_slice(&len.to_le_bytes());
        r[6..8].copy_from_slice(&((phys >> 32) as u16).to_le_bytes());
        r[8..12].copy_from_slice(&(phys as u32).to_le_bytes());
        r
    }

    fn index_rec(logical: u32, child: u64) -> [u8; 12] {
        let mut r = [0u8; 12];
        r[0..4].copy_from_slice(&logical.to_le_bytes());
        r[4..8].copy_from_slice(&(child as u32).to_le_bytes());
        r[8..10].copy_from_slice(&((child >> 32) as u16).to_le_bytes());
        r
    }

    #[test]
    fn leaf_records_and_the_uninit_flag() {
        let b = node(
            0,
            &[leaf_rec(0, 5, 0x1_0000_0010), leaf_rec(9, 32768 + 3, 7)],
            4,
        );
        assert_eq!(header(&b, 4, "t", 0).expect("header"), (2, 0));
        assert_eq!(
            leaf(&b, 12),
            Extent {
                logical: 0,
                len: 5,
                phys: 0x1_0000_0010,
                uninit: false
            }
        );
        assert_eq!(
            leaf(&b, 24),
            Extent {
                logical: 9,
                len: 3,
                phys: 7,
                uninit: true
            }
        );
        // exactly 32768 is an initialised extent of 32768 blocks
        let b = node(0, &[leaf_rec(0, 32768, 1)], 4);
        assert_eq!(leaf(&b, 12).len, 32768);
        assert!(!leaf(&b, 12).uninit);
    }

    #[test]
    fn a_two_level_tree_is_walked_in_order() {
        let root = node(1, &[index_rec(0, 100), index_rec(10, 101)], 4);
        let read = |blk: u64| -> Result<Vec<u8>, FsError> {
            let mut b = match blk {
                100 => node(0, &[leaf_rec(0, 2, 500), leaf_rec(4, 1, 600)], 84),
                101 => node(0, &[leaf_rec(10, 3, 700), leaf_rec(50, 3, 800)], 84),
                _ => node(0, &[], 84),
            };
            b.resize(1024, 0);
            Ok(b)
        };
        let t = Tree {
            ino: 12,
            block_size: 1024,
            blocks_count: 10_000,
            csum_seed: None,
            read_block: &read,
            checks: &Checks::default(),
            reads: Default::default(),
        };
        let e = t.extents(&root, 20).expect("tree");
        assert_eq!(
            e.iter().map(|e| (e.logical, e.phys)).collect::<Vec<_>>(),
            [(0, 500), (4, 600), (10, 700)]
        );
    }

    #[test]
    fn bad_trees_are_named_errors() {
        let mut root = node(0, &[leaf_rec(0, 1, 5)], 4);
        root[0] = 0;
        let read = |_| -> Result<Vec<u8>, FsError> { Ok(vec![0; 1024]) };
        let t = Tree {
            ino: 12,
            block_size: 1024,
            blocks_count: 100,
            csum_seed: None,
            read_block: &read,
            checks: &Checks::default(),
            reads: Default::default(),
        };
        let e = t.extents(&root, 10).expect_err("magic");
        assert!(e.to_string().contains("extent header magic"), "{e}");
        let root = node(0, &[leaf_rec(0, 1, 5)], 9);
        assert!(t.extents(&root, 10).is_err(), "capacity past the room");
        let root = node(0, &[leaf_rec(0, 4, 5), leaf_rec(2, 1, 9)], 4);
        assert!(t.extents(&root, 10).is_err(), "overlap");
        let root = node(0, &[leaf_rec(0, 4, 99)], 4);
        assert!(t.extents(&root, 10).is_err(), "outside");
        // A child that claims the parent's depth: no recursion loop.
        let root = node(1, &[index_rec(0, 3)], 4);
        let read = |_| -> Result<Vec<u8>, FsError> {
            let mut b = node(1, &[index_rec(0, 3)], 84);
            b.resize(1024, 0);
            Ok(b)
        };
        let t = Tree {
            ino: 12,
            block_size: 1024,
            blocks_count: 100,
            csum_seed: None,
            read_block: &read,
            checks: &Checks::default(),
            reads: Default::default(),
        };
        let e = t.extents(&root, 10).expect_err("depth");
        assert!(
            e.to_string().contains("depth 1 below a node of depth 1"),
            "{e}"
        );
    }

    #[test]
    fn indexes_all_naming_one_child_hit_the_read_budget() {
        let root = node(2, &[index_rec(0, 3); 4], 4);
        let read = |blk: u64| -> Result<Vec<u8>, FsError> {
            let mut b = match blk {
                3 => node(1, &[index_rec(0, 4); 84], 84),
                _ => node(0, &[leaf_rec(100, 1, 9)], 84), // past the file
            };
            b.resize(1024, 0);
            Ok(b)
        };
        let t = Tree {
            ino: 12,
            block_size: 1024,
            blocks_count: 100,
            csum_seed: None,
            read_block: &read,
            checks: &Checks::default(),
            reads: Default::default(),
        };
        let e = t.extents(&root, 10).expect_err("budget");
        assert!(e.to_string().contains("more extent blocks than"), "{e}");
        assert!(t.reads.get() <= 84);
    }
}
