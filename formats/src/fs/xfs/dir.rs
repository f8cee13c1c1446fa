//! Directories (kernel `fs/xfs/libxfs/xfs_da_format.h`; "XFS Algorithms &
//! Data Structures", "Directories"): shortform in the inode (`xfs_dir2_sf`:
//! count, i8count, parent, then entries of namelen, offset, name, ftype and
//! a 4- or 8-byte inode number), or directory blocks of `blocksize <<
//! dirblklog` bytes in the data fork. A block directory is one block
//! (`XD2B`/`XDB3`) holding entries, a hash leaf and a tail; leaf and node
//! directories keep their entries in data blocks (`XD2D`/`XDD3`) below the
//! 32 GiB leaf offset and hash indexes above it, which listing never needs.
//! A data entry is an 8-byte inode number, namelen, name, ftype (when the
//! filesystem has it), padding to 8 bytes and a 2-byte tag holding the
//! entry's own offset; free space is `0xffff`, length, ..., tag.

use super::XfsFs;
use super::crc::{be16, be32, be64, verify};
use super::inode::{Format, Inode};
use crate::fs::{DirEntry, FileKind, FsError, Ino};

const XD2B: u32 = 0x5844_3242;
const XDB3: u32 = 0x5844_4233;
const XD2D: u32 = 0x5844_3244;
const XDD3: u32 = 0x5844_4433;
/// Byte offset in a directory's fork where the hash leaves start.
const LEAF_OFFSET: u64 = 32 << 30;

/// An entry before its kind is known.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    /// The entry's file type (`XFS_DIR3_FT_*`), when the filesystem records
    /// it.
    pub ftype: Option<u8>,
}

/// The kind an `XFS_DIR3_FT_*` value names (0, unknown, is `None`).
pub(crate) fn ftype_kind(ft: u8) -> Option<FileKind> {
    Some(match ft {
        1 => FileKind::File,
        2 => FileKind::Dir,
        3 => FileKind::CharDevice,
        4 => FileKind::BlockDevice,
        5 => FileKind::Fifo,
        6 => FileKind::Socket,
        7 => FileKind::Symlink,
        _ => return None,
    })
}

/// Parses a shortform directory (the inode's data fork, `size` bytes).
pub(crate) fn shortform(fork: &[u8], size: u64, ftype: bool) -> Result<Vec<RawEntry>, String> {
    let data = usize::try_from(size)
        .ok()
        .and_then(|s| fork.get(..s))
        .ok_or_else(|| format!("shortform size {size} exceeds the {}-byte fork", fork.len()))?;
    if data.len() < 6 {
        return Err(format!("shortform of {} bytes", data.len()));
    }
    let count = usize::from(data[0]);
    let wide = data[1] != 0;
    let ino_len = if wide { 8 } else { 4 };
    let read_ino = |at: usize| -> u64 {
        if wide {
            be64(data, at)
        } else {
            u64::from(be32(data, at))
        }
    };
    let mut pos = 2 + ino_len;
    let mut out = Vec::with_capacity(count.min(data.len() / 4));
    for i in 0..count {
        let namelen = usize::from(
            *data
                .get(pos)
                .ok_or_else(|| format!("entry {i} past the end"))?,
        );
        let name_at = pos + 3;
        let ft_len = usize::from(ftype);
        let end = name_at + namelen + ft_len + ino_len;
        if namelen == 0 || end > data.len() {
            return Err(format!(
                "entry {i} (name length {namelen}) at byte {pos} runs past the end"
            ));
        }
        let name = data[name_at..name_at + namelen].to_vec();
        let ft = ftype.then(|| data[name_at + namelen]);
        out.push(RawEntry {
            name,
            ino: read_ino(name_at + namelen + ft_len),
            ftype: ft,
        });
        pos = end;
    }
    Ok(out)
}

/// Parses the entries of one directory data block (`block`: the whole
/// directory block) into `out`; `v5` selects the 64-byte header, `single`
/// says the directory is in block form (one block, with leaf and tail).
pub(crate) fn data_block(
    block: &[u8],
    v5: bool,
    ftype: bool,
    single: bool,
    out: &mut Vec<RawEntry>,
) -> Result<(), String> {
    let magic = be32(block, 0);
    let (hdr, end) = match (magic, v5, single) {
        (XDB3, true, true) | (XD2B, false, true) => {
            // Block form: a leaf array and the tail (count, stale) at the end.
            let count = be32(block, block.len() - 8) as usize;
            let tail = count
                .checked_mul(8)
                .and_then(|l| l.checked_add(8))
                .filter(|&l| l <= block.len())
                .ok_or_else(|| format!("block tail counts {count} leaf entries"))?;
            (if v5 { 64 } else { 16 }, block.len() - tail)
        }
        (XDD3, true, false) | (XD2D, false, false) => (if v5 { 64 } else { 16 }, block.len()),
        _ => {
            let want = match (v5, single) {
                (true, true) => "XDB3 (block directory)",
                (false, true) => "XD2B (block directory)",
                (true, false) => "XDD3 (directory data block)",
                (false, false) => "XD2D (directory data block)",
            };
            return Err(format!("bad magic {magic:#010x}, expected {want}"));
        }
    };
    let mut pos = hdr;
    while pos < end {
        if end - pos < 8 {
            return Err(format!("entry at byte {pos} runs past the data"));
        }
        if be16(block, pos) == 0xffff {
            let len = usize::from(be16(block, pos + 2));
            if len < 8 || len % 8 != 0 || pos + len > end {
                return Err(format!("free space of {len} bytes at byte {pos}"));
            }
            pos += len;
            continue;
        }
        if end - pos < 16 {
            return Err(format!("entry at byte {pos} runs past the data"));
        }
        let namelen = usize::from(block[pos + 8]);
        let size = (8 + 1 + namelen + usize::from(ftype) + 2).div_ceil(8) * 8;
        if namelen == 0 || pos + size > end {
            return Err(format!(
                "entry at byte {pos} (name length {namelen}) runs past the data"
            ));
        }
        let tag = usize::from(be16(block, pos + size - 2));
        if tag != pos {
            return Err(format!("entry at byte {pos} has tag {tag}"));
        }
        let name = &block[pos + 9..pos + 9 + namelen];
        if name != b"." && name != b".." {
            out.push(RawEntry {
                name: name.to_vec(),
                ino: be64(block, pos),
                ftype: ftype.then(|| block[pos + 9 + namelen]),
            });
        }
        pos += size;
    }
    Ok(())
}

impl XfsFs {
    /// The raw entries of directory `inode`, in on-disk order.
    pub(crate) fn dir_entries(&self, inode: &Inode) -> Result<Vec<RawEntry>, FsError> {
        let ino = inode.meta.ino.0;
        let sb = &self.sb;
        if inode.format == Format::Local {
            return shortform(&inode.fork, inode.meta.size, sb.ftype).map_err(|d| {
                FsError::corrupt(format!("XFS shortform directory {ino}"), inode.offset, d)
            });
        }
        let extents = self.extents(inode)?;
        let per = 1u64 << sb.dirblk_log; // fs blocks per directory block
        let dbs = (sb.block_size as usize) << sb.dirblk_log;
        // Data blocks lie below the leaf offset and, as the kernel lists
        // them, below the directory's size (the end of its last data block).
        let leaf_fblock =
            (LEAF_OFFSET >> sb.block_log).min(inode.meta.size.div_ceil(u64::from(sb.block_size)));
        // Block form: the data fork maps exactly one directory block (the
        // kernel's test is the same: the fork ends at the first block).
        let single = extents.last().is_some_and(|e| e.offset + e.count == per);
        let mut out = Vec::new();
        let mut last_db = None;
        let mut total = 0u64;
        for e in extents.iter() {
            let mut fb = e.offset / per * per;
            while fb < e.offset + e.count && fb < leaf_fblock {
                let db = fb / per;
                fb += per;
                if last_db == Some(db) {
                    continue;
                }
                last_db = Some(db);
                total += dbs as u64;
                if total > self.vol.len() {
                    return Err(FsError::corrupt(
                        format!("XFS directory {ino}"),
                        inode.offset,
                        "maps more directory blocks than the volume holds",
                    ));
                }
                let (block, at) = self.read_dir_block(&extents, db * per, per, ino)?;
                let structure = format!("XFS directory {ino} block {db}");
                if sb.crc() {
                    verify(&self.checks, &block, 4, &structure, at)?;
                    let bad = |d: String| FsError::corrupt(structure.clone(), at, d);
                    if be64(&block, 8) != at / 512 {
                        return Err(bad(format!(
                            "records its address as sector {}",
                            be64(&block, 8)
                        )));
                    }
                    if block[24..40] != sb.meta_uuid {
                        return Err(bad("UUID is not the filesystem's".into()));
                    }
                    if be64(&block, 40) != ino {
                        return Err(bad(format!("owned by inode {}", be64(&block, 40))));
                    }
                }
                data_block(&block, sb.crc(), sb.ftype, single, &mut out)
                    .map_err(|d| FsError::corrupt(structure, at, d))?;
            }
        }
        Ok(out)
    }

    /// Reads the directory block starting at file block `fblock` (`per`
    /// fs blocks, possibly in several extents); returns it and the byte
    /// offset of its first fs block.
    fn read_dir_block(
        &self,
        extents: &[super::bmap::Extent],
        fblock: u64,
        per: u64,
        ino: u64,
    ) -> Result<(Vec<u8>, u64), FsError> {
        let bs = u64::from(self.sb.block_size);
        let mut block = Vec::with_capacity((bs * per) as usize);
        let mut first = None;
        let mut fb = fblock;
        while fb < fblock + per {
            let (at, run) = self.map_block(extents, fb);
            let Some(linear) = at else {
                return Err(FsError::corrupt(
                    format!("XFS directory {ino}"),
                    0,
                    format!("directory block at file block {fblock} has a hole"),
                ));
            };
            let n = run.min(fblock + per - fb);
            let offset = linear * bs;
            first.get_or_insert(offset);
            block.extend_from_slice(&self.read_meta(offset, (n * bs) as usize)?);
            fb += n;
        }
        Ok((block, first.unwrap_or(0)))
    }

    /// The entries of directory `inode` with their kinds.
    pub(crate) fn list(&self, inode: &Inode) -> Result<Vec<DirEntry>, FsError> {
        let raw = self.dir_entries(inode)?;
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            let kind = match r.ftype.and_then(ftype_kind) {
                Some(k) => k,
                None => self.inode(r.ino)?.meta.kind,
            };
            out.push(DirEntry {
                name: String::from_utf8_lossy(&r.name).into_owned(),
                ino: Ino(r.ino),
                kind,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortform_with_ftype_and_4_byte_inodes() {
        // count 2, i8count 0, parent 128; "a" -> 131 (file), "bc" -> 132 (dir)
        let mut f = vec![2, 0, 0, 0, 0, 128];
        f.extend_from_slice(&[1, 0, 0x60, b'a', 1, 0, 0, 0, 131]);
        f.extend_from_slice(&[2, 0, 0x70, b'b', b'c', 2, 0, 0, 0, 132]);
        let size = f.len() as u64;
        f.resize(336, 0);
        let e = shortform(&f, size, true).expect("parse");
        assert_eq!(
            e,
            [
                RawEntry {
                    name: b"a".to_vec(),
                    ino: 131,
                    ftype: Some(1)
                },
                RawEntry {
                    name: b"bc".to_vec(),
                    ino: 132,
                    ftype: Some(2)
                },
            ]
        );
        // One byte short: an error, not a panic.
        assert!(shortform(&f, size - 1, true).is_err());
        assert!(shortform(&f, 400, true).is_err());
    }

    #[test]
    fn shortform_without_ftype_and_8_byte_inodes() {
        let mut f = vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 128];
        f.extend_from_slice(&[3, 0, 0x60, b'x', b'y', b'z', 0, 0, 0, 1, 0, 0, 0, 5]);
        let e = shortform(&f, f.len() as u64, false).expect("parse");
        assert_eq!(
            e,
            [RawEntry {
                name: b"xyz".to_vec(),
                ino: (1 << 32) | 5,
                ftype: None
            }]
        );
    }

    #[test]
    fn data_block_entries_and_damage() {
        // v4 data block of 64 bytes: header 16, one entry "hi" (16 bytes),
        // free space to the end.
        let mut b = vec![0u8; 64];
        b[0..4].copy_from_slice(&XD2D.to_be_bytes());
        b[16..24].copy_from_slice(&99u64.to_be_bytes());
        b[24] = 2;
        b[25..27].copy_from_slice(b"hi");
        b[27] = 1; // ftype
        b[30..32].copy_from_slice(&16u16.to_be_bytes());
        b[32..34].copy_from_slice(&0xffffu16.to_be_bytes());
        b[34..36].copy_from_slice(&32u16.to_be_bytes());
        let mut out = Vec::new();
        data_block(&b, false, true, false, &mut out).expect("parse");
        assert_eq!(
            out,
            [RawEntry {
                name: b"hi".to_vec(),
                ino: 99,
                ftype: Some(1)
            }]
        );
        let mut bad_tag = b.clone();
        bad_tag[31] = 17;
        assert!(data_block(&bad_tag, false, true, false, &mut Vec::new()).is_err());
        let mut bad_free = b.clone();
        bad_free[35] = 40;
        assert!(data_block(&bad_free, false, true, false, &mut Vec::new()).is_err());
        let mut bad_magic = b;
        bad_magic[0] = 0;
        let e = data_block(&bad_magic, false, true, false, &mut Vec::new()).expect_err("magic");
        assert!(e.contains("bad magic"), "{e}");
    }
}
