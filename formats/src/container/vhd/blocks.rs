//! The block-mapped virtual disk shared by dynamic and differencing VHD and
//! VHDX images: the disk is cut into equal blocks, and a block allocation
//! table (the format's own) says where each block's bytes are: nowhere
//! (zeros), in the parent, in this file, or sector by sector per a bitmap.
//!
//! Reads go block by block: one lower read per block (or per run of equal
//! bitmap bits in a partially present block), never sector by sector.

use std::io;

use super::super::ContainerError;
use crate::io::{ReadAt, Source, clamp};

/// Where one block's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Block {
    /// Zeros.
    Zero,
    /// The parent disk's bytes at the same virtual offset.
    Parent,
    /// This file, from `offset`, the whole block.
    Data {
        /// Where the block's first byte is in the file.
        offset: u64,
    },
    /// Per sector: a set bitmap bit reads from this file at `data`, a clear
    /// one from the parent.
    Partial {
        /// Where the block's first byte is in the file.
        data: u64,
        /// Where the bitmap byte of the block's first sector is.
        bitmap: u64,
    },
}

/// A format's block allocation table. `block` validates the entry (state,
/// offsets inside the file) and names the entry in its errors.
pub(crate) trait BlockMap: Send + Sync {
    fn block(&self, index: u64) -> Result<Block, ContainerError>;
}

/// A virtual disk read through a [`BlockMap`].
pub(crate) struct BlockDisk<M> {
    /// The image file.
    pub file: Source,
    /// The parent disk, for differencing images.
    pub parent: Option<Source>,
    pub map: M,
    /// The virtual disk's size.
    pub size: u64,
    /// Bytes per block (a power of two).
    pub block_size: u64,
    /// Bytes per bitmap bit (a power of two dividing `block_size`).
    pub sector: u64,
    /// Bitmap bit order: VHD numbers bits from the most significant, VHDX
    /// from the least.
    pub msb_first: bool,
}

impl<M: BlockMap> BlockDisk<M> {
    /// Reads the parent at `offset`; past the parent's end (a smaller
    /// parent) or with no parent, zeros.
    fn read_parent(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        if let Some(p) = &self.parent {
            while done < out.len() {
                match p.read_at(offset + done as u64, &mut out[done..]) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        out[done..].fill(0);
        Ok(())
    }

    /// Reads `out.len()` bytes at `within` of a partially present block
    /// whose first virtual byte is `start`, one lower read per run of
    /// equal bitmap bits.
    fn read_partial(
        &self,
        start: u64,
        within: u64,
        data: u64,
        bitmap: u64,
        out: &mut [u8],
    ) -> io::Result<()> {
        let end = within + out.len() as u64;
        let first = within / self.sector;
        let last = (end - 1) / self.sector;
        let byte0 = first / 8;
        // At most block_size / sector / 8 bytes: a few KiB.
        let mut bits = vec![0u8; (last / 8 - byte0 + 1) as usize];
        self.file.read_exact_at(bitmap + byte0, &mut bits)?;
        let bit = |s: u64| {
            let b = bits[(s / 8 - byte0) as usize];
            let mask = if self.msb_first {
                0x80 >> (s % 8)
            } else {
                1 << (s % 8)
            };
            b & mask != 0
        };
        let mut s = first;
        while s <= last {
            let present = bit(s);
            let mut t = s + 1;
            while t <= last && bit(t) == present {
                t += 1;
            }
            let from = (s * self.sector).max(within);
            let to = (t * self.sector).min(end);
            let piece = &mut out[(from - within) as usize..(to - within) as usize];
            if present {
                self.file.read_exact_at(data + from, piece)?;
            } else {
                self.read_parent(start + from, piece)?;
            }
            s = t;
        }
        Ok(())
    }
}

impl<M: BlockMap> ReadAt for BlockDisk<M> {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.size);
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let index = at / self.block_size;
            let within = at % self.block_size;
            let take = clamp(within, n - done, self.block_size);
            let out = &mut buf[done..done + take];
            match self.map.block(index)? {
                Block::Zero => out.fill(0),
                Block::Parent => self.read_parent(at, out)?,
                Block::Data { offset } => self.file.read_exact_at(offset + within, out)?,
                Block::Partial { data, bitmap } => {
                    self.read_partial(at - within, within, data, bitmap, out)?
                }
            }
            done += take;
        }
        Ok(done)
    }
}

/// Decodes UTF-16 code units (little- or big-endian bytes), stopping at
/// the first NUL; unpaired surrogates become U+FFFD.
pub(crate) fn utf16(bytes: &[u8], big_endian: bool) -> String {
    let units = bytes.chunks_exact(2).map(|c| {
        if big_endian {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_le_bytes([c[0], c[1]])
        }
    });
    char::decode_utf16(units.take_while(|&u| u != 0))
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{MemSource, model};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// Blocks of 4 sectors of 8 bytes; the table is given per block.
    struct Table(Vec<Block>);

    impl BlockMap for Table {
        fn block(&self, index: u64) -> Result<Block, ContainerError> {
            Ok(self.0[index as usize])
        }
    }

    proptest! {
        #[test]
        fn matches_model(
            kinds in prop::collection::vec((0u8..4, any::<u8>()), 1..8),
            msb in any::<bool>(),
            reads in model::reads(64),
        ) {
            let bs = 32u64;
            let file: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
            let parent: Vec<u8> = (0..=255u8).rev().cycle().take(40).collect();
            let mut flat = Vec::new();
            let mut table = Vec::new();
            let mut file_bytes = file.clone();
            for (i, (k, bits)) in kinds.iter().enumerate() {
                let data = 64 + 64 * i as u64;
                let bitmap = 8 * i as u64;
                let start = i as u64 * bs;
                let pbyte = |o: u64| parent.get(o as usize).copied().unwrap_or(0);
                match k {
                    0 => { table.push(Block::Zero); flat.extend([0u8; 32]); }
                    1 => {
                        table.push(Block::Parent);
                        flat.extend((0..bs).map(|o| pbyte(start + o)));
                    }
                    2 => {
                        table.push(Block::Data { offset: data });
                        flat.extend_from_slice(&file[data as usize..(data + bs) as usize]);
                    }
                    _ => {
                        table.push(Block::Partial { data, bitmap });
                        file_bytes[bitmap as usize] = *bits;
                        for o in 0..bs {
                            let s = o / 8;
                            let set = if msb { bits & (0x80 >> s) != 0 } else { bits & (1 << s) != 0 };
                            flat.push(if set { file[(data + o) as usize] } else { pbyte(start + o) });
                        }
                    }
                }
            }
            let disk = BlockDisk {
                file: Arc::new(MemSource::new(file_bytes)),
                parent: Some(Arc::new(MemSource::new(parent))),
                map: Table(table),
                size: flat.len() as u64,
                block_size: bs,
                sector: 8,
                msb_first: msb,
            };
            model::check(&disk, &flat, &reads)?;
        }
    }

    #[test]
    fn utf16_stops_at_nul() {
        assert_eq!(utf16(b"a\0b\0\0\0c\0", false), "ab");
        assert_eq!(utf16(b"\0a\0b", true), "ab");
        assert_eq!(utf16(&[0x00, 0xD8], false), "\u{FFFD}");
    }
}
