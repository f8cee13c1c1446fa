//! Indirect block maps (ext2/3, and ext4 inodes without the extents flag):
//! `i_block` holds 15 little-endian block numbers, 12 direct ones, then a
//! single, a double and a triple indirect block (blocks of block numbers,
//! `block_size / 4` each). A zero pointer is a hole, at whatever level.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/ifork.rst`
//! ("Direct/Indirect Block Addressing"). No code was taken from it. The
//! indirection depth is fixed (at most 3), so damaged maps cannot loop;
//! only pointers below the file's block count are followed.

use super::extent::Extent;
use super::sb::le32;
use crate::fs::FsError;

/// What walking a map needs from the reader.
pub(crate) struct Map<'a> {
    pub ino: u64,
    pub block_size: usize,
    pub blocks_count: u64,
    pub read_block: &'a dyn Fn(u64) -> Result<Vec<u8>, FsError>,
}

impl Map<'_> {
    /// Blocks the map can address at most.
    pub(crate) fn capacity(&self) -> u64 {
        let p = (self.block_size / 4) as u64;
        12 + p + p * p + p * p * p
    }

    /// The mapped blocks below logical block `want`, as runs in logical
    /// order (holes left out).
    pub(crate) fn runs(&self, i_block: &[u8], want: u64) -> Result<Vec<Extent>, FsError> {
        if want > self.capacity() {
            return Err(FsError::corrupt(
                format!("ext inode {} block map", self.ino),
                0,
                format!("{want} blocks are more than a block map addresses"),
            ));
        }
        let p = (self.block_size / 4) as u64;
        let mut out = Vec::new();
        let mut logical = 0u64;
        for i in 0..15usize {
            let level = i.saturating_sub(11);
            let span = p.pow(level as u32);
            if logical >= want {
                break;
            }
            self.walk(le32(i_block, i * 4), level as u32, logical, want, &mut out)?;
            logical += span;
        }
        Ok(out)
    }

    fn walk(
        &self,
        ptr: u32,
        level: u32,
        logical: u64,
        want: u64,
        out: &mut Vec<Extent>,
    ) -> Result<(), FsError> {
        if ptr == 0 || logical >= want {
            return Ok(());
        }
        let ptr = u64::from(ptr);
        if ptr >= self.blocks_count {
            return Err(FsError::corrupt(
                format!("ext inode {} block map", self.ino),
                0,
                format!(
                    "block {ptr} (level {level}, logical {logical}) lies outside the filesystem"
                ),
            ));
        }
        if level == 0 {
            match out.last_mut() {
                Some(l)
                    if u64::from(l.logical) + u64::from(l.len) == logical
                        && l.phys + u64::from(l.len) == ptr
                        && l.len < u32::MAX =>
                {
                    l.len += 1
                }
                _ => out.push(Extent {
                    logical: logical as u32,
                    len: 1,
                    phys: ptr,
                    uninit: false,
                }),
            }
            return Ok(());
        }
        let block = (self.read_block)(ptr)?;
        let p = (self.block_size / 4) as u64;
        let span = p.pow(level - 1);
        for k in 0..p {
            let at = logical + k * span;
            if at >= want {
                break;
            }
            self.walk(le32(&block, (k * 4) as usize), level - 1, at, want, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_single_and_double_indirect() {
        // 1 KiB blocks: 256 pointers each.
        let mut ib = [0u8; 60];
        for i in 0..12u32 {
            ib[i as usize * 4..i as usize * 4 + 4].copy_from_slice(&(100 + i).to_le_bytes());
        }
        ib[12 * 4..13 * 4].copy_from_slice(&50u32.to_le_bytes());
        ib[13 * 4..14 * 4].copy_from_slice(&51u32.to_le_bytes());
        let read = |b: u64| -> Result<Vec<u8>, FsError> {
            let mut v = vec![0u8; 1024];
            match b {
                50 => v[0..4].copy_from_slice(&112u32.to_le_bytes()), // continues 100..112
                51 => v[4..8].copy_from_slice(&52u32.to_le_bytes()),  // second child
                52 => v[8..12].copy_from_slice(&900u32.to_le_bytes()),
                _ => {}
            }
            Ok(v)
        };
        let m = Map {
            ino: 12,
            block_size: 1024,
            blocks_count: 1000,
            read_block: &read,
        };
        let runs = m.runs(&ib, 12 + 256 + 256 * 2).expect("map");
        let want_logical = 12 + 256 + 256 + 2;
        assert_eq!(
            runs,
            [
                Extent {
                    logical: 0,
                    len: 13,
                    phys: 100,
                    uninit: false
                },
                Extent {
                    logical: want_logical,
                    len: 1,
                    phys: 900,
                    uninit: false
                },
            ]
        );
        assert!(m.runs(&ib, m.capacity() + 1).is_err());
        ib[0..4].copy_from_slice(&5000u32.to_le_bytes());
        assert!(m.runs(&ib, 1).is_err(), "outside the filesystem");
    }
}
