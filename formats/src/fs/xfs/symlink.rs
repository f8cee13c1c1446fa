//! Symbolic links ("XFS Algorithms & Data Structures", "Symbolic Links";
//! kernel `xfs_format.h` `struct xfs_dsymlink_hdr`): a target short enough
//! lives in the inode's data fork (local format); a longer one (up to 1024
//! bytes) in up to a few remote blocks, each starting on v5 with a 56-byte
//! header: magic `XSLM`, offset and length of the piece, CRC, UUID, owner
//! inode, block address and LSN.

use super::XfsFs;
use super::crc::{be32, be64, verify};
use super::inode::{Format, Inode};
use crate::fs::FsError;

const XSLM: u32 = 0x5853_4c4d;
const HDR_V5: usize = 56;
/// `XFS_SYMLINK_MAXLEN`.
const MAX_LEN: u64 = 1024;

impl XfsFs {
    /// The target bytes of symlink `inode`.
    pub(crate) fn link_target(&self, inode: &Inode) -> Result<Vec<u8>, FsError> {
        let ino = inode.meta.ino.0;
        let structure = format!("XFS symlink {ino}");
        let size = inode.meta.size;
        if size == 0 || size > MAX_LEN {
            return Err(FsError::corrupt(
                structure,
                inode.offset,
                format!("target of {size} bytes"),
            ));
        }
        let size = size as usize;
        if inode.format == Format::Local {
            return inode.fork.get(..size).map(<[u8]>::to_vec).ok_or_else(|| {
                FsError::corrupt(
                    structure,
                    inode.offset,
                    format!("{size} bytes do not fit the fork"),
                )
            });
        }
        let bs = u64::from(self.sb.block_size);
        let mut out = Vec::with_capacity(size);
        for &e in self.extents(inode)?.iter() {
            for i in 0..e.count {
                if out.len() >= size {
                    break;
                }
                let (Some(linear), _) = self.map_block(std::slice::from_ref(&e), e.offset + i)
                else {
                    return Err(FsError::corrupt(
                        structure,
                        inode.offset,
                        "target block unwritten",
                    ));
                };
                let at = linear * bs;
                let block = self.read_meta(at, bs as usize)?;
                let piece = if self.sb.crc() {
                    let bad =
                        |d: String| FsError::corrupt(format!("XFS symlink {ino} block"), at, d);
                    if be32(&block, 0) != XSLM {
                        return Err(bad(format!(
                            "bad magic {:#010x}, expected XSLM",
                            be32(&block, 0)
                        )));
                    }
                    verify(
                        &self.checks,
                        &block,
                        12,
                        &format!("XFS symlink {ino} block"),
                        at,
                    )?;
                    let off = be32(&block, 4) as usize;
                    let len = be32(&block, 8) as usize;
                    if off != out.len() || len > block.len() - HDR_V5 || be64(&block, 32) != ino {
                        return Err(bad(format!(
                            "piece at {off} of {len} bytes, owner {}",
                            be64(&block, 32)
                        )));
                    }
                    &block[HDR_V5..HDR_V5 + len]
                } else {
                    &block[..]
                };
                let take = piece.len().min(size - out.len());
                out.extend_from_slice(&piece[..take]);
            }
        }
        if out.len() != size {
            return Err(FsError::corrupt(
                structure,
                inode.offset,
                format!("remote blocks hold {} of {size} bytes", out.len()),
            ));
        }
        Ok(out)
    }
}
