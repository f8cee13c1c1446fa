//! ext2, ext3 and ext4, read-only: the superblock (block sizes 1-64 KiB,
//! unknown INCOMPAT features refused as unsupported), 32- and 64-bit group
//! descriptors placed classically or by meta_bg (flex_bg needs nothing
//! more; bigalloc only makes groups longer, as bitmaps count clusters while
//! everything read stays in blocks), inodes of any size with 32-bit owners, 64-bit sizes, nanosecond
//! and epoch-extended timestamps and creation times, file data through
//! extent trees (any depth up to 5; uninitialised extents read as zeros)
//! or indirect block maps (single, double, triple), holes as zeros,
//! inline data (files and directories), linear and htree directories (read
//! linearly: the leaf blocks hold every entry; large_dir's third level
//! changes nothing), fast, slow and inline symlinks, device numbers in both
//! encodings, extended attributes (in the inode, in the external block,
//! in EA inodes; POSIX ACLs as Linux returns them). Under metadata_csum
//! every superblock, group descriptor, inode, extent block, directory leaf
//! block and attribute block read is checked (without it, uninit_bg's
//! CRC-16 of each group descriptor); a mismatch is a [`FsError::Checksum`]
//! naming the structure, or, with [`FsOptions::ignore_checksums`], counted
//! in [`VolumeInfo::warnings`] and the structure parsed as it is. An
//! internal journal that needs recovery is replayed in memory as the
//! kernel does on mount (`journal`: an overlay, the volume is never
//! written) unless [`FsOptions::no_journal_replay`]; what happened is said
//! in [`VolumeInfo::warnings`].
//!
//! Not supported, refused with [`FsError::Unsupported`]: encrypted inodes
//! (fscrypt), inline data kept in an EA inode, the compression, dirdata and
//! journal-device features. Not checked: htree index block checksums (the
//! index is not used), bitmaps. `deleted()` lists inodes with no links
//! and a deletion time (on ext3/ext4 the kernel cleared their map, so
//! only their metadata is listed and opening them is an error), named from
//! deleted records left in directory slack where there are any.
//!
//! Sources: the kernel's `Documentation/filesystems/ext4/` (super.rst,
//! group_descr.rst, blockgroup.rst, inodes.rst, ifork.rst, directory.rst,
//! inlinedata.rst, attributes.rst, checksums.rst, journal.rst); each
//! submodule names the structures it reads. No code was taken from them.
//!
//! File bytes are served through [`Runs`] straight from the volume (the
//! journal overlay, when one was replayed);
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
mod journal;
mod sb;
mod xattr;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::checks::Checks;
use super::dircache::DirCache;
use super::{
    DeletedEntry, DirEntry, FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, MAX_XATTR_VALUE,
    MAX_XATTRS, Metadata, VolumeInfo, Xattr,
};
use crate::io::{BlockCache, MemSource, ReadAt, Run, Runs, Source};
use extent::Extent;
use inode::{FL_CASEFOLD, FL_ENCRYPT, FL_EXTENTS, FL_INDEX, FL_INLINE_DATA, Inode};
use sb::{COMPAT_HAS_JOURNAL, INCOMPAT_EA_INODE, INCOMPAT_FILETYPE, INCOMPAT_RECOVER, Superblock};

/// Parsed inodes kept at most.
const INODE_CACHE: usize = 8192;
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
/// Directories, and directory bytes, scanned at most for the names of
/// deleted inodes.
const MAX_NAME_SCAN_DIRS: usize = 100_000;
const MAX_NAME_SCAN_BYTES: u64 = 256 << 20;

/// An ext2/3/4 volume.
pub struct ExtFs {
    vol: Source,
    meta: BlockCache,
    sb: Superblock,
    kind: FsKind,
    warnings: Vec<String>,
    /// The checksum policy, and the mismatches it ignored.
    checks: Checks,
    inodes: Mutex<HashMap<u64, Arc<Inode>>>,
    dirs: DirCache,
}

/// The file's bytes: blocks of the volume, or inline in the inode.
enum Data {
    Blocks(Vec<Run>),
    Inline(Vec<u8>),
}

impl ExtFs {
    /// Opens the ext2/3/4 filesystem on `vol`: checks the superblock, the
    /// first group descriptor and the root inode. A journal that needs
    /// recovery is replayed in memory unless `opts.no_journal_replay`.
    pub fn open(vol: Source, opts: &FsOptions) -> Result<ExtFs, FsError> {
        let mut fs = ExtFs::at(vol, opts)?;
        if fs.sb.has(INCOMPAT_RECOVER) {
            if opts.no_journal_replay {
                fs.warnings.push(
                    "the journal needs recovery and was not replayed (no_journal_replay): the view may be stale"
                        .into(),
                );
            } else {
                fs = fs.with_journal(opts);
            }
        }
        fs.check_root()?;
        Ok(fs)
    }

    /// The filesystem on `vol` from its superblock, nothing else checked.
    fn at(vol: Source, opts: &FsOptions) -> Result<ExtFs, FsError> {
        let mut head = vec![0u8; sb::SB_LEN];
        vol.read_exact_at(sb::SB_OFFSET, &mut head)?;
        let checks = Checks::new(opts);
        let sb = Superblock::parse(&head, &checks)?;
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
            checks,
            inodes: Mutex::new(HashMap::new()),
            dirs: DirCache::default(),
        };
        if fs.vol.len() < fs.sb.size() {
            fs.warnings.push(format!(
                "the volume holds {:#x} of the filesystem's {:#x} bytes; reads past its end fail",
                fs.vol.len(),
                fs.sb.size()
            ));
        }
        Ok(fs)
    }

    /// The first group descriptor and the root inode, which every use needs.
    fn check_root(&self) -> Result<(), FsError> {
        self.group(0)?;
        let root = self.inode(2)?;
        if root.meta.kind != FileKind::Dir {
            return Err(FsError::corrupt(
                "ext4 root inode 2",
                root.offset,
                format!("is a {:?}", root.meta.kind),
            ));
        }
        Ok(())
    }

    /// This filesystem with its journal replayed in memory (the superblock
    /// re-read and everything re-derived through the overlay), or as it
    /// is, with a warning saying why not.
    fn with_journal(mut self, opts: &FsOptions) -> ExtFs {
        match self.journal_overlay() {
            Err(why) => {
                self.warnings.push(format!(
                    "the journal needs recovery but was not replayed ({why}): the view may be stale"
                ));
                self
            }
            Ok((None, notes)) => {
                self.warnings.extend(notes);
                self
            }
            Ok((Some(overlay), notes)) => {
                let bs = self.sb.block_size;
                let replayed = ExtFs::at(overlay, opts).and_then(|f| {
                    if f.sb.block_size != bs {
                        return Err(FsError::corrupt(
                            "ext superblock",
                            sb::SB_OFFSET,
                            format!("block size {} after replay, {bs} before", f.sb.block_size),
                        ));
                    }
                    f.check_root().map(|()| f)
                });
                match replayed {
                    Ok(mut f) => {
                        f.warnings.extend(notes);
                        f
                    }
                    Err(e) => {
                        self.warnings.push(format!(
                            "the journal needs recovery but was not replayed (the volume after replay is unreadable: {e}): the view may be stale"
                        ));
                        self
                    }
                }
            }
        }
    }

    /// The volume with the journal's committed transactions laid over it
    /// (`None` when there is nothing to lay), and what replay has to say;
    /// an error is why the journal cannot be replayed.
    fn journal_overlay(&self) -> Result<(Option<Source>, Vec<String>), String> {
        let sb = &self.sb;
        if sb.journal_inum == 0 {
            if sb.journal_dev != 0 || sb.journal_uuid != [0; 16] {
                return Err(format!(
                    "external journal not available: device {:#x}",
                    sb.journal_dev
                ));
            }
            return Err("the superblock names no journal inode".into());
        }
        let ino = sb.journal_inum;
        let inode = self
            .inode(u64::from(ino))
            .map_err(|e| format!("journal inode {ino}: {e}"))?;
        if inode.meta.kind != FileKind::File {
            return Err(format!(
                "journal inode {ino} is a {:?}, not a file",
                inode.meta.kind
            ));
        }
        let journal = self
            .source(&inode)
            .map_err(|e| format!("journal inode {ino}: {e}"))?;
        let r = journal::replay(&*journal, sb.block_size, sb.blocks_count)
            .map_err(|e| format!("journal inode {ino}: {e}"))?;
        let mut notes = r.warnings;
        if r.empty {
            notes.push(
                "the journal is marked as needing recovery but holds no transaction: nothing to replay"
                    .into(),
            );
            return Ok((None, notes));
        }
        let seqs = r
            .seqs
            .map(|(a, b)| format!(" (seq {a}..{b})"))
            .unwrap_or_default();
        notes.push(format!(
            "journal replayed in memory: {} transactions{seqs}, {} blocks",
            r.transactions,
            r.copies.len()
        ));
        if r.copies.is_empty() {
            return Ok((None, notes));
        }
        let overlay = journal::Overlay::new(self.vol.clone(), journal, sb.block_size, r.copies);
        Ok((Some(Arc::new(overlay)), notes))
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
        group::parse(&self.sb, g, &raw, offset, &self.checks)
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
        let mut inode = Inode::parse(&self.sb, ino as u32, &raw, offset, deleted, &self.checks)
            .map_err(|e| match e {
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
        if inode.meta.ino.0 & DELETED != 0 && !self.map_intact(inode) {
            // Reading it would give zeros (or nothing): never wrong bytes.
            return Err(FsError::Unsupported {
                fs: "ext4",
                detail: format!(
                    "deleted inode {}: its block map was cleared on delete, so its data cannot be found",
                    inode.meta.ino.0 & !DELETED
                ),
            });
        }
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
                checks: &self.checks,
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
        self.dirs.get_or_load(dir, || {
            let inode = self.want(dir, FileKind::Dir, "directory")?;
            self.list(&inode)
        })
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
                                &self.checks,
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

impl ExtFs {
    /// Names the entries of `found` whose inode a deleted record in the
    /// slack of a live directory block still names (`dir/name`), walking
    /// the live tree from the root; damaged directories are skipped (the
    /// names are a best effort). Bounded by [`MAX_NAME_SCAN_DIRS`] and
    /// [`MAX_NAME_SCAN_BYTES`].
    fn name_deleted(&self, found: &mut [DeletedEntry]) {
        let mut by_ino: HashMap<u32, usize> = found
            .iter()
            .enumerate()
            .map(|(i, d)| ((d.ino.0 & !DELETED) as u32, i))
            .collect();
        let filetype = self.sb.has(INCOMPAT_FILETYPE);
        let bs = u64::from(self.sb.block_size);
        let mut buf = vec![0u8; bs as usize];
        let mut seen = std::collections::HashSet::from([2u64]);
        let mut queue = std::collections::VecDeque::from([(Ino(2), String::new())]);
        let mut read = 0u64;
        while let Some((dir, path)) = queue.pop_front() {
            if by_ino.is_empty() || read > MAX_NAME_SCAN_BYTES {
                return;
            }
            let Ok(inode) = self.inode(dir.0) else {
                continue;
            };
            if let Ok(Data::Blocks(runs)) = self.data(&inode) {
                let blocks = inode.meta.size / bs;
                let indexed = inode.flags & FL_INDEX != 0;
                let mut n = 0u64;
                for run in runs {
                    for i in 0..run.blocks {
                        let logical = n + i;
                        let Some(phys) = run.at.map(|a| a + i) else {
                            break;
                        };
                        let at = phys.checked_mul(bs);
                        if logical >= blocks
                            || read > MAX_NAME_SCAN_BYTES
                            || at.is_none_or(|a| a.saturating_add(bs) > self.sb.size())
                        {
                            break;
                        }
                        read += bs;
                        // Straight from the volume, as the inode scan.
                        if at.is_none_or(|a| self.vol.read_exact_at(a, &mut buf).is_err()) {
                            continue;
                        }
                        if indexed && (logical == 0 || dir::is_dx_node(&buf)) {
                            continue;
                        }
                        for r in dir::slack(&buf, filetype, self.sb.inodes_count) {
                            let Some(&k) = by_ino.get(&r.ino) else {
                                continue;
                            };
                            let kind = found[k].meta.kind;
                            if filetype && dir::kind_of(r.file_type).is_some_and(|t| t != kind) {
                                continue;
                            }
                            let name = String::from_utf8_lossy(&r.name);
                            found[k].path = if path.is_empty() {
                                name.into_owned()
                            } else {
                                format!("{path}/{name}")
                            };
                            by_ino.remove(&r.ino);
                        }
                    }
                    n += run.blocks;
                }
            }
            let Ok(list) = self.listing(dir) else {
                continue;
            };
            for e in list.iter() {
                if e.kind == FileKind::Dir
                    && seen.len() < MAX_NAME_SCAN_DIRS
                    && seen.insert(e.ino.0)
                {
                    let child = if path.is_empty() {
                        e.name.clone()
                    } else {
                        format!("{path}/{}", e.name)
                    };
                    queue.push_back((e.ino, child));
                }
            }
        }
    }
}

/// The inode flag of an inode holding an attribute value (ea_inode).
const FL_EA_INODE: u32 = 0x20_0000;

impl ExtFs {
    /// Appends the attribute of entry `e` (its value in `area` or in an EA
    /// inode) to `out`, unless Linux does not list it.
    fn push_xattr(
        &self,
        out: &mut Vec<Xattr>,
        e: &xattr::Entry,
        area: &[u8],
        structure: &str,
        offset: u64,
    ) -> Result<(), FsError> {
        let Some(name) = xattr::full_name(e) else {
            return Ok(());
        };
        if out.len() >= MAX_XATTRS {
            return Err(FsError::corrupt(
                structure,
                offset,
                format!("more than {MAX_XATTRS} attributes"),
            ));
        }
        let raw = if e.value_inum == 0 {
            xattr::local_value(e, area, structure, offset)?.to_vec()
        } else {
            self.ea_inode_value(e, structure, offset)?
        };
        out.push(xattr::attr(name, raw, structure, offset)?);
        Ok(())
    }

    /// The value kept in the data of EA inode `e.value_inum`.
    fn ea_inode_value(
        &self,
        e: &xattr::Entry,
        structure: &str,
        offset: u64,
    ) -> Result<Vec<u8>, FsError> {
        let inum = e.value_inum;
        let bad = |d: String| FsError::corrupt(structure, offset, d);
        if !self.sb.has(INCOMPAT_EA_INODE) {
            return Err(bad(format!("a value in inode {inum} without ea_inode")));
        }
        if e.value_size > MAX_XATTR_VALUE {
            return Err(bad(format!("attribute value of {} bytes", e.value_size)));
        }
        let inode = self.inode(u64::from(inum)).map_err(|err| match err {
            FsError::NoInode(_) => bad(format!("value inode {inum} is not in use")),
            other => other,
        })?;
        if inode.meta.kind != FileKind::File
            || inode.flags & FL_EA_INODE == 0
            || inode.meta.size != e.value_size as u64
        {
            return Err(bad(format!(
                "value inode {inum} is not an EA inode of {} bytes",
                e.value_size
            )));
        }
        let src = self.source(&inode)?;
        let mut buf = vec![0u8; e.value_size];
        src.read_exact_at(0, &mut buf)?;
        Ok(buf)
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
        free::free_ranges(
            &self.sb,
            &*self.vol,
            &|at, len| self.read_meta(at, len),
            &self.checks,
            f,
        )
    }

    fn info(&self) -> VolumeInfo {
        VolumeInfo {
            kind: self.kind,
            label: (!self.sb.label.is_empty()).then(|| self.sb.label.clone()),
            block_size: self.sb.block_size,
            size: self.sb.size(),
            serial: Some(self.sb.uuid_string()),
            warnings: self
                .warnings
                .iter()
                .cloned()
                .chain(self.checks.warning())
                .collect(),
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

    /// Inodes with no links, a mode and a deletion time, at most 100 000.
    /// ext2 keeps their block maps; ext3 and ext4 clear them (and the
    /// kernel their size), so only the metadata is left there and opening
    /// one is an error naming that. Named `dir/name` where a deleted
    /// record for the inode survives in the slack of a live directory's
    /// block (as The Sleuth Kit's `fls -d` finds them), else
    /// `$OrphanFiles/OrphanFile-N` (its naming). Their inode numbers carry
    /// the high bit, and open, read_link and read_dir work on them where
    /// the map survives.
    fn deleted(&self) -> Result<Vec<DeletedEntry>, FsError> {
        let mut out = Vec::new();
        let ipg = u64::from(self.sb.inodes_per_group);
        let isz = usize::from(self.sb.inode_size);
        let bs = self.sb.block_size as usize;
        'groups: for g in 0..self.sb.groups() {
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
                    out.push(DeletedEntry {
                        path: format!("$OrphanFiles/OrphanFile-{ino}"),
                        ino: inode.meta.ino,
                        meta: inode.meta.clone(),
                    });
                    if out.len() >= MAX_DELETED {
                        break 'groups;
                    }
                }
            }
        }
        if !out.is_empty() {
            self.name_deleted(&mut out);
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

    /// In-inode attributes first, then those of the external block.
    fn xattrs(&self, ino: Ino) -> Result<Vec<Xattr>, FsError> {
        let inode = self.inode(ino.0)?;
        let num = ino.0 & !DELETED;
        let mut out = Vec::new();
        if let Some(area) = xattr::in_inode_area(&inode.xattr) {
            let structure = format!("ext4 inode {num} in-inode xattrs");
            let offset =
                inode.offset + u64::from(self.sb.inode_size) - inode.xattr.len() as u64 + 4;
            for e in xattr::entries(area, 0, &structure, offset)? {
                self.push_xattr(&mut out, &e, area, &structure, offset)?;
            }
        }
        let block = inode.file_acl;
        if block != 0 {
            let structure = format!("ext4 xattr block {block}");
            if block >= self.sb.blocks_count {
                return Err(FsError::corrupt(
                    format!("ext4 inode {num}"),
                    inode.offset,
                    format!("attribute block {block} is past the filesystem's end"),
                ));
            }
            let b = self.read_block(block)?;
            let offset = block * u64::from(self.sb.block_size);
            let seed = self.sb.metadata_csum().then_some(self.sb.csum_seed);
            xattr::check_block(&b, block, seed, &self.checks, &structure, offset)?;
            for e in xattr::block_entries(&b, &structure, offset)? {
                self.push_xattr(&mut out, &e, &b, &structure, offset)?;
            }
        }
        Ok(out)
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
