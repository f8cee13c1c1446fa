//! ext2, ext3 and ext4, read-only: the superblock (block sizes 1-64 KiB,
//! unknown INCOMPAT features refused as unsupported), 32- and 64-bit group
//! descriptors placed classically or by meta_bg (flex_bg needs nothing
//! more), inodes of any size with 32-bit owners, 64-bit sizes, nanosecond
//! and epoch-extended timestamps and creation times, file data through
//! extent trees (any depth up to 5; uninitialised extents read as zeros)
//! or indirect block maps (single, double, triple), holes as zeros,
//! inline data (files and directories), linear and htree directories (read
//! linearly: the leaf blocks hold every entry; large_dir's third level
//! changes nothing), fast, slow and inline symlinks, device numbers in both
//! encodings. Under metadata_csum every superblock, group descriptor,
//! inode, extent block and directory leaf block read is checked (without
//! it, uninit_bg's CRC-16 of each group descriptor); a
//! mismatch is a [`FsError::Corrupt`] naming the structure. A journal that
//! needs recovery is reported in [`VolumeInfo::warnings`], not replayed.
//!
//! Not supported, refused with [`FsError::Unsupported`]: encrypted inodes
//! (fscrypt), inline data kept in an EA inode, the compression, dirdata and
//! journal-device features. Not checked: htree index block checksums (the
//! index is not used), bitmaps. `deleted()` lists unlinked inodes whose
//! data map survives (ext2), without names.
//!
//! Sources: the kernel's `Documentation/filesystems/ext4/` (super.rst,
//! group_descr.rst, blockgroup.rst, inodes.rst, ifork.rst, directory.rst,
//! inlinedata.rst, attributes.rst, checksums.rst); each submodule names the
//! structures it reads. No code was taken from them.
//!
//! File bytes are served through [`Runs`] straight from the volume;
//! metadata is read through a bounded [`BlockCache`], and parsed inodes and
//! directory listings are kept in bounded caches whose locks are never held
//! while the volume is read.

mod blockmap;
mod csum;
mod dir;
mod extent;
mod free;
mod group;
mod inline;
mod inode;
mod sb;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{
    DeletedEntry, DirEntry, FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, Metadata,
    VolumeInfo,
};
use crate::io::{BlockCache, MemSource, ReadAt, Run, Runs, Source};
use extent::Extent;
use inode::{FL_CASEFOLD, FL_ENCRYPT, FL_EXTENTS, FL_INDEX, FL_INLINE_DATA, Inode};
use sb::{COMPAT_HAS_JOURNAL, INCOMPAT_FILETYPE, INCOMPAT_RECOVER, Superblock};

/// Parsed inodes kept at most.
const INODE_CACHE: usize = 8192;
/// Directory listings kept at most, and their entries in total.
const DIR_CACHE: usize = 512;
const DIR_CACHE_ENTRIES: usize = 200_000;
/// Metadata cached, in bytes (whole filesystem blocks).
const META_CACHE_BYTES: usize = 16 << 20;
/// The largest directory read, in bytes.
const MAX_DIR_BYTES: u64 = 1 << 30;
/// The longest symlink target read, in bytes.
const MAX_LINK: u64 = 65536;

/// The bit of an [`Ino`] that names a deleted inode (`deleted()`).
const DELETED: u64 = 1 << 63;
/// Deleted inodes listed at most.
const MAX_DELETED: usize = 100_000;

/// Directory listings by inode, and their entries in total.
type DirCache = (HashMap<u64, Arc<Vec<DirEntry>>>, usize);

/// An ext2/3/4 volume.
pub struct ExtFs {
    vol: Source,
    meta: BlockCache,
    sb: Superblock,
    kind: FsKind,
    warnings: Vec<String>,
    inodes: Mutex<HashMap<u64, Arc<Inode>>>,
    dirs: Mutex<DirCache>,
}

/// The file's bytes: blocks of the volume, or inline in the inode.
enum Data {
    Blocks(Vec<Run>),
    Inline(Vec<u8>),
}

impl ExtFs {
    /// Opens the ext2/3/4 filesystem on `vol`: checks the superblock, the
    /// first group descriptor and the root inode.
    pub fn open(vol: Source, _opts: &FsOptions) -> Result<ExtFs, FsError> {
        let mut head = vec![0u8; sb::SB_LEN];
        vol.read_exact_at(sb::SB_OFFSET, &mut head)?;
        let sb = Superblock::parse(&head)?;
        let meta = BlockCache::new(
            vol.clone(),
            sb.block_size as usize,
            META_CACHE_BYTES / sb.block_size as usize,
        );
        let ext3_incompat = 0x2 | 0x4 | 0x8 | 0x10;
        let kind = if sb.incompat & !ext3_incompat != 0 || sb.ro_compat & !0x7 != 0 {
            FsKind::Ext4
        } else if sb.compat & COMPAT_HAS_JOURNAL != 0 {
            FsKind::Ext3
        } else {
            FsKind::Ext2
        };
        let mut fs = ExtFs {
            vol,
            meta,
            sb,
            kind,
            warnings: Vec::new(),
            inodes: Mutex::new(HashMap::new()),
            dirs: Mutex::new((HashMap::new(), 0)),
        };
        if fs.vol.len() < fs.sb.size() {
            fs.warnings.push(format!(
                "the volume holds {:#x} of the filesystem's {:#x} bytes; reads past its end fail",
                fs.vol.len(),
                fs.sb.size()
            ));
        }
        if fs.sb.has(INCOMPAT_RECOVER) {
            fs.warnings.push(
                "the journal needs recovery (it was not replayed): the view may be stale".into(),
            );
        }
        fs.group(0)?;
        let root = fs.inode(2)?;
        if root.meta.kind != FileKind::Dir {
            return Err(FsError::corrupt(
                "ext4 root inode 2",
                root.offset,
                format!("is a {:?}", root.meta.kind),
            ));
        }
        Ok(fs)
    }

    /// Reads `len` bytes of metadata at `offset` through the cache.
    fn read_meta(&self, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > self.sb.size()) {
            return Err(FsError::corrupt(
                "ext4 metadata",
                offset,
                format!("read of {len} bytes past the filesystem's end"),
            ));
        }
        let mut buf = vec![0u8; len];
        self.meta.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }

    fn read_block(&self, block: u64) -> Result<Vec<u8>, FsError> {
        let bs = u64::from(self.sb.block_size);
        let offset = block.checked_mul(bs).ok_or_else(|| {
            FsError::corrupt("ext4 block", 0, format!("block number {block} overflows"))
        })?;
        self.read_meta(offset, bs as usize)
    }

    fn group(&self, g: u64) -> Result<group::Group, FsError> {
        let offset = group::desc_offset(&self.sb, g).ok_or_else(|| {
            FsError::corrupt("ext4 group descriptors", 0, format!("group {g} overflows"))
        })?;
        let raw = self.read_meta(offset, usize::from(self.sb.desc_size))?;
        group::parse(&self.sb, g, &raw, offset)
    }

    /// Inode `ino`, parsed and cached; with [`DELETED`] set, the deleted
    /// inode of that number.
    fn inode(&self, key: u64) -> Result<Arc<Inode>, FsError> {
        if let Some(i) = self.inodes.lock().get(&key) {
            return Ok(i.clone());
        }
        let (ino, deleted) = (key & !DELETED, key & DELETED != 0);
        if ino == 0 || ino > u64::from(self.sb.inodes_count) {
            return Err(FsError::NoInode(Ino(key)));
        }
        let ipg = u64::from(self.sb.inodes_per_group);
        let (g, index) = ((ino - 1) / ipg, (ino - 1) % ipg);
        let grp = self.group(g)?;
        if grp.flags & group::INODE_UNINIT != 0
            || index >= ipg - u64::from(grp.itable_unused).min(ipg)
        {
            return Err(FsError::NoInode(Ino(key)));
        }
        let isz = u64::from(self.sb.inode_size);
        let offset = grp
            .inode_table
            .checked_mul(u64::from(self.sb.block_size))
            .and_then(|t| t.checked_add(index * isz))
            .ok_or(FsError::NoInode(Ino(key)))?;
        let raw = self.read_meta(offset, isz as usize)?;
        let mut inode =
            Inode::parse(&self.sb, ino as u32, &raw, offset, deleted).map_err(|e| match e {
                FsError::NoInode(_) => FsError::NoInode(Ino(key)),
                other => other,
            })?;
        inode.meta.ino = Ino(key);
        let inode = Arc::new(inode);
        let mut cache = self.inodes.lock();
        if cache.len() >= INODE_CACHE {
            cache.clear();
        }
        cache.insert(key, inode.clone());
        Ok(inode)
    }

    /// Does deleted `inode` still hold a map of its data (ext4 and ext3
    /// clear it on deletion; ext2 keeps it)?
    fn map_intact(&self, inode: &Inode) -> bool {
        if inode.flags & FL_INLINE_DATA != 0 {
            return true;
        }
        if inode.flags & FL_EXTENTS != 0 {
            return extent::header(&inode.i_block, 4, "", 0).is_ok_and(|(n, _)| n > 0);
        }
        inode.meta.kind == FileKind::Symlink && inode.meta.size < 60
            || inode.i_block.iter().any(|&b| b != 0)
    }

    fn want(&self, ino: Ino, kind: FileKind, wanted: &'static str) -> Result<Arc<Inode>, FsError> {
        let inode = self.inode(ino.0)?;
        if inode.meta.kind != kind {
            return Err(FsError::WrongKind {
                ino,
                actual: inode.meta.kind,
                wanted,
            });
        }
        Ok(inode)
    }

    fn structure(&self, inode: &Inode) -> String {
        format!("ext4 inode {}", inode.meta.ino)
    }

    /// Where the bytes of `inode` lie, covering its size.
    fn data(&self, inode: &Inode) -> Result<Data, FsError> {
        if inode.flags & FL_ENCRYPT != 0 {
            return Err(FsError::Unsupported {
                fs: "ext4",
                detail: format!("inode {} is encrypted (fscrypt)", inode.meta.ino),
            });
        }
        let size = inode.meta.size;
        if inode.flags & FL_INLINE_DATA != 0 {
            let d = inline::data(
                &inode.i_block,
                &inode.xattr,
                &self.structure(inode),
                inode.offset,
            )?;
            if size > d.len() as u64 {
                return Err(FsError::corrupt(
                    self.structure(inode),
                    inode.offset,
                    format!("size {size} but {} bytes of inline data", d.len()),
                ));
            }
            return Ok(Data::Inline(d));
        }
        let bs = u64::from(self.sb.block_size);
        let want = size.div_ceil(bs);
        let read = |b: u64| self.read_block(b);
        let extents = if inode.flags & FL_EXTENTS != 0 {
            if want > 1 << 32 {
                return Err(FsError::corrupt(
                    self.structure(inode),
                    inode.offset,
                    format!("size {size} is past what extents address"),
                ));
            }
            extent::Tree {
                ino: inode.meta.ino.0,
                block_size: bs as usize,
                blocks_count: self.sb.blocks_count,
                csum_seed: self.sb.metadata_csum().then_some(inode.csum_seed),
                read_block: &read,
                reads: Default::default(),
            }
            .extents(&inode.i_block, want)
            .map_err(|e| self.at_inode(e, inode))?
        } else {
            blockmap::Map {
                ino: inode.meta.ino.0,
                block_size: bs as usize,
                blocks_count: self.sb.blocks_count,
                read_block: &read,
            }
            .runs(&inode.i_block, want)
            .map_err(|e| self.at_inode(e, inode))?
        };
        Ok(Data::Blocks(runs(&extents, want)))
    }

    /// Puts the inode's offset into errors raised inside its `i_block`.
    fn at_inode(&self, e: FsError, inode: &Inode) -> FsError {
        match e {
            FsError::Corrupt {
                structure,
                offset: 0,
                detail,
            } => FsError::Corrupt {
                structure,
                offset: inode.offset + 0x28,
                detail,
            },
            other => other,
        }
    }

    /// The bytes of `inode` as a source of exactly its size.
    fn source(&self, inode: &Inode) -> Result<Source, FsError> {
        let size = inode.meta.size;
        match self.data(inode)? {
            Data::Inline(mut d) => {
                d.truncate(size as usize);
                Ok(Arc::new(MemSource::new(d)))
            }
            Data::Blocks(runs) => {
                let r = Runs::new(
                    self.vol.clone(),
                    u64::from(self.sb.block_size),
                    &runs,
                    size,
                    size,
                )
                .map_err(|e| {
                    FsError::corrupt(self.structure(inode), inode.offset, e.to_string())
                })?;
                Ok(Arc::new(r))
            }
        }
    }

    /// The entries of directory `dir`, from the bounded cache or read.
    fn listing(&self, dir: Ino) -> Result<Arc<Vec<DirEntry>>, FsError> {
        if let Some(l) = self.dirs.lock().0.get(&dir.0) {
            return Ok(l.clone());
        }
        let inode = self.want(dir, FileKind::Dir, "directory")?;
        let list = Arc::new(self.list(&inode)?);
        let mut cache = self.dirs.lock();
        if cache.0.len() >= DIR_CACHE || cache.1 + list.len() > DIR_CACHE_ENTRIES {
            cache.0.clear();
            cache.1 = 0;
        }
        if list.len() <= DIR_CACHE_ENTRIES {
            cache.1 += list.len();
            if let Some(old) = cache.0.insert(dir.0, list.clone()) {
                cache.1 -= old.len();
            }
        }
        Ok(list)
    }

    fn list(&self, inode: &Inode) -> Result<Vec<DirEntry>, FsError> {
        let filetype = self.sb.has(INCOMPAT_FILETYPE);
        let structure = format!("ext4 directory {}", inode.meta.ino);
        let mut raw = Vec::new();
        match self.data(inode)? {
            Data::Inline(d) => {
                // The parent's inode, records to the end of i_block, then
                // records in system.data's value.
                let (head, rest) = d.split_at(60.min(d.len()));
                if head.len() > 4 {
                    raw.extend(dir::parse(
                        &head[4..],
                        filetype,
                        &structure,
                        inode.offset + 0x2C,
                    )?);
                }
                if !rest.is_empty() {
                    raw.extend(dir::parse(rest, filetype, &structure, inode.offset)?);
                }
            }
            Data::Blocks(runs) => {
                let size = inode.meta.size;
                if size > MAX_DIR_BYTES {
                    return Err(FsError::Unsupported {
                        fs: "ext4",
                        detail: format!(
                            "directory {} of {size} bytes is too large",
                            inode.meta.ino
                        ),
                    });
                }
                let bs = u64::from(self.sb.block_size);
                let blocks = size / bs;
                let indexed = inode.flags & FL_INDEX != 0;
                // Mapped blocks only: holes and unwritten extents hold no
                // entries and are not read.
                let mut n = 0u64;
                for run in runs {
                    let Some(first) = run.at else {
                        n += run.blocks;
                        continue;
                    };
                    for i in 0..run.blocks {
                        if n + i >= blocks {
                            break;
                        }
                        let phys = first + i;
                        let block = self.read_block(phys)?;
                        let offset = phys * bs;
                        let logical = n + i;
                        let dx = indexed && (logical == 0 || dir::is_dx_node(&block));
                        let bstruct = format!("{structure} block {logical}");
                        if self.sb.metadata_csum() && !dx {
                            let stored = dir::tail_csum(&block).ok_or_else(|| {
                                FsError::corrupt(&bstruct, offset, "no checksum tail record")
                            })?;
                            let at = block.len() - 12;
                            csum::check(
                                stored,
                                csum::update(inode.csum_seed, &block[..at]),
                                &bstruct,
                                offset,
                            )?;
                        }
                        raw.extend(dir::parse(&block, filetype, &bstruct, offset)?);
                    }
                    n += run.blocks;
                }
            }
        }
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            if u64::from(r.ino) > u64::from(self.sb.inodes_count) {
                return Err(FsError::corrupt(
                    &structure,
                    inode.offset,
                    format!(
                        "entry {:?} names inode {}, past the last",
                        String::from_utf8_lossy(&r.name),
                        r.ino
                    ),
                ));
            }
            let kind = match dir::kind_of(r.file_type).filter(|_| filetype) {
                Some(k) => k,
                None => self.inode(u64::from(r.ino))?.meta.kind,
            };
            out.push(DirEntry {
                name: String::from_utf8_lossy(&r.name).into_owned(),
                ino: Ino(u64::from(r.ino)),
                kind,
            });
        }
        Ok(out)
    }
}

/// Block runs covering `want` blocks from sorted, non-overlapping extents.
fn runs(extents: &[Extent], want: u64) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut push = |r: Run| match runs.last_mut() {
        Some(l) if l.at.is_none() && r.at.is_none() => l.blocks += r.blocks,
        Some(l) if l.at.zip(r.at).is_some_and(|(a, b)| a + l.blocks == b) => l.blocks += r.blocks,
        _ => runs.push(r),
    };
    let mut pos = 0u64;
    for e in extents {
        let start = u64::from(e.logical);
        if start >= want {
            break;
        }
        if start > pos {
            push(Run {
                blocks: start - pos,
                at: None,
            });
        }
        let blocks = u64::from(e.len).min(want - start);
        push(Run {
            blocks,
            at: (!e.uninit).then_some(e.phys),
        });
        pos = start + blocks;
    }
    if pos < want {
        push(Run {
            blocks: want - pos,
            at: None,
        });
    }
    runs
}

impl Filesystem for ExtFs {
    fn unused(&self, f: &mut dyn FnMut(std::ops::Range<u64>)) -> Result<(), FsError> {
        free::free_ranges(&self.sb, &*self.vol, &|at, len| self.read_meta(at, len), f)
    }

    fn info(&self) -> VolumeInfo {
        VolumeInfo {
            kind: self.kind,
            label: (!self.sb.label.is_empty()).then(|| self.sb.label.clone()),
            block_size: self.sb.block_size,
            size: self.sb.size(),
            serial: Some(self.sb.uuid_string()),
            warnings: self.warnings.clone(),
        }
    }

    fn root(&self) -> Ino {
        Ino(2)
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, FsError> {
        Ok(self.inode(ino.0)?.meta.clone())
    }

    fn read_dir(&self, dir: Ino) -> Result<Vec<DirEntry>, FsError> {
        Ok(self.listing(dir)?.as_ref().clone())
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Option<DirEntry>, FsError> {
        let list = self.listing(dir)?;
        if let Some(e) = list.iter().find(|e| e.name == name) {
            return Ok(Some(e.clone()));
        }
        // Casefolded directories compare names case-insensitively.
        if self.inode(dir.0)?.flags & FL_CASEFOLD != 0 {
            let low = name.to_lowercase();
            return Ok(list.iter().find(|e| e.name.to_lowercase() == low).cloned());
        }
        Ok(None)
    }

    fn read_link(&self, ino: Ino) -> Result<String, FsError> {
        let inode = self.want(ino, FileKind::Symlink, "symlink")?;
        let size = inode.meta.size;
        if size > MAX_LINK {
            return Err(FsError::corrupt(
                format!("ext4 symlink {ino}"),
                inode.offset,
                format!("target of {size} bytes"),
            ));
        }
        let target = if inode.flags & (FL_EXTENTS | FL_INLINE_DATA | FL_ENCRYPT) == 0 && size < 60 {
            inode.i_block[..size as usize].to_vec()
        } else {
            let src = self.source(&inode)?;
            let mut buf = vec![0u8; size as usize];
            src.read_exact_at(0, &mut buf)?;
            buf
        };
        String::from_utf8(target).map_err(|_| {
            FsError::corrupt(
                format!("ext4 symlink {ino}"),
                inode.offset,
                "target is not UTF-8",
            )
        })
    }

    fn open(&self, ino: Ino) -> Result<Source, FsError> {
        let inode = self.want(ino, FileKind::File, "file")?;
        self.source(&inode)
    }

    /// Inodes with no links and a deletion time whose data map is still
    /// there (ext2 keeps block maps; ext3 and ext4 clear them, so little
    /// is found there), as `$OrphanFiles/OrphanFile-N` (The Sleuth Kit's
    /// naming: the name is lost), at most 100 000. Their inode numbers
    /// carry the high bit, and open, read_link and read_dir work on them.
    fn deleted(&self) -> Result<Vec<DeletedEntry>, FsError> {
        let mut out = Vec::new();
        let ipg = u64::from(self.sb.inodes_per_group);
        let isz = usize::from(self.sb.inode_size);
        let bs = self.sb.block_size as usize;
        for g in 0..self.sb.groups() {
            let grp = self.group(g)?;
            if grp.flags & group::INODE_UNINIT != 0 {
                continue;
            }
            let used = ipg - u64::from(grp.itable_unused).min(ipg);
            let per_block = (bs / isz) as u64;
            let mut buf = vec![0u8; bs];
            for blk in 0..used.div_ceil(per_block) {
                let at = grp
                    .inode_table
                    .checked_add(blk)
                    .and_then(|b| b.checked_mul(bs as u64));
                let Some(at) = at.filter(|&a| {
                    a.checked_add(bs as u64)
                        .is_some_and(|e| e <= self.sb.size())
                }) else {
                    break;
                };
                // Straight from the volume: a scan must not flush the cache.
                self.vol.read_exact_at(at, &mut buf)?;
                for k in 0..per_block {
                    let index = blk * per_block + k;
                    let ino = g.saturating_mul(ipg).saturating_add(index + 1);
                    if index >= used || ino > u64::from(self.sb.inodes_count) {
                        break;
                    }
                    let raw = &buf[k as usize * isz..(k as usize + 1) * isz];
                    // Cheap filter before parsing: links 0, dtime set.
                    if raw[0x1A..0x1C] != [0, 0] || raw[0x14..0x18] == [0; 4] {
                        continue;
                    }
                    let Ok(inode) = self.inode(ino | DELETED) else {
                        continue;
                    };
                    if !self.map_intact(&inode) {
                        continue;
                    }
                    out.push(DeletedEntry {
                        path: format!("$OrphanFiles/OrphanFile-{ino}"),
                        ino: inode.meta.ino,
                        meta: inode.meta.clone(),
                    });
                    if out.len() >= MAX_DELETED {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    fn details(&self, ino: Ino) -> Result<Vec<(String, String)>, FsError> {
        let inode = self.inode(ino.0)?;
        let layout = if inode.flags & FL_INLINE_DATA != 0 {
            "inline"
        } else if inode.flags & FL_EXTENTS != 0 {
            "extents"
        } else {
            "blockmap"
        };
        Ok(vec![
            ("ext.layout".into(), layout.into()),
            ("ext.flags".into(), format!("{:#x}", inode.flags)),
            ("ext.inode_offset".into(), format!("{:#x}", inode.offset)),
            ("ext.dtime".into(), inode.dtime.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_is_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<ExtFs>();
    }

    #[test]
    fn runs_fill_holes_and_zero_uninit_extents() {
        let e = |logical, len, phys, uninit| Extent {
            logical,
            len,
            phys,
            uninit,
        };
        let r = runs(
            &[
                e(0, 2, 10, false),
                e(2, 3, 12, false),
                e(8, 2, 50, true),
                e(12, 5, 70, false),
            ],
            14,
        );
        assert_eq!(
            r,
            [
                Run {
                    blocks: 5,
                    at: Some(10)
                },
                Run {
                    blocks: 7,
                    at: None
                },
                Run {
                    blocks: 2,
                    at: Some(70)
                },
            ]
        );
        assert_eq!(
            runs(&[], 3),
            [Run {
                blocks: 3,
                at: None
            }]
        );
    }
}
