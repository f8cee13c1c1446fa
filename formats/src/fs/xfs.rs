//! XFS, read-only: superblock v4 and v5 (CRC-32C checked on every v5
//! metadata block read: superblock, AGF/AGI, inodes, bmbt, directory and
//! symlink blocks; a mismatch is a [`FsError::Checksum`], or with
//! [`FsOptions::ignore_checksums`] a warning), AG-relative block and inode numbers translated through
//! the AG geometry (never as linear numbers), inodes v1-v3, data forks in
//! local, extent-list and bmbt form, directories in shortform, block, leaf
//! and node form (listed from their data blocks), symlinks local and remote,
//! extended attributes in shortform, leaf and node form with remote values
//! (`attr`).
//!
//! Sources: "XFS Algorithms & Data Structures" (3rd edition, the kernel's
//! `Documentation/filesystems/xfs/`), kernel `fs/xfs/libxfs/xfs_format.h`,
//! `xfs_da_format.h`, `xfs_log_format.h`; each submodule names the
//! structures it reads. No code was taken from them.
//!
//! File bytes are served through [`Runs`] straight from the volume, with
//! holes and unwritten extents as zeros; metadata is read through a bounded
//! [`BlockCache`], and parsed inodes and directory listings are kept in
//! bounded caches whose locks are never held while the volume is read.
//! Realtime files are refused as unsupported; a log that needs recovery is
//! reported in [`VolumeInfo::warnings`] (the reader does not replay it).

mod ag;
mod attr;
mod bmap;
mod crc;
mod dir;
mod free;
mod inode;
mod log;
mod sb;
mod symlink;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::checks::Checks;
use super::dircache::DirCache;
use super::{
    DirEntry, FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, Metadata, VolumeInfo, Xattr,
};
use crate::io::{BlockCache, ReadAt, Run, Runs, Source};
use inode::{Format, Inode};
use sb::Superblock;

/// Parsed inodes kept at most.
const INODE_CACHE: usize = 8192;
/// Extent records of bmbt-form inodes kept at most, in total.
const EXTENT_CACHE: usize = 1 << 20;
/// Metadata cached, in bytes (whole filesystem blocks).
const META_CACHE_BYTES: usize = 16 << 20;

/// An XFS volume.
pub struct XfsFs {
    vol: Source,
    meta: BlockCache,
    sb: Superblock,
    warnings: Vec<String>,
    /// The checksum policy, and the mismatches it ignored.
    checks: Checks,
    inodes: Mutex<HashMap<u64, Arc<Inode>>>,
    dirs: DirCache,
    /// Extent lists of bmbt-form inodes, and their records in total.
    bmaps: Mutex<ExtentCache>,
}

/// Extent lists by inode, and their records in total.
type ExtentCache = (HashMap<u64, Arc<Vec<bmap::Extent>>>, usize);

impl XfsFs {
    /// Opens the XFS filesystem on `vol`: checks the superblock, every AG's
    /// headers, the root inode and the log.
    pub fn open(vol: Source, opts: &FsOptions) -> Result<XfsFs, FsError> {
        let mut head = vec![0u8; crate::io::clamp(0, 32768, vol.len())];
        vol.read_exact_at(0, &mut head)?;
        let checks = Checks::new(opts);
        let sb = Superblock::parse(&head, &checks)?;
        let meta = BlockCache::new(
            vol.clone(),
            sb.block_size as usize,
            META_CACHE_BYTES / sb.block_size as usize,
        );
        let mut fs = XfsFs {
            vol,
            meta,
            sb,
            warnings: Vec::new(),
            checks,
            inodes: Mutex::new(HashMap::new()),
            dirs: DirCache::default(),
            bmaps: Mutex::new((HashMap::new(), 0)),
        };
        if fs.vol.len() < fs.sb.size() {
            fs.warnings.push(format!(
                "the volume holds {:#x} of the filesystem's {:#x} bytes; reads past its end fail",
                fs.vol.len(),
                fs.sb.size()
            ));
        }
        for agno in 0..fs.sb.agcount {
            let start = fs.sb.ag_linear(agno, 0) * u64::from(fs.sb.block_size);
            if start + 3 * u64::from(fs.sb.sect_size) > fs.vol.len() {
                // A truncated volume: what lies inside stays readable.
                fs.warnings
                    .push(format!("AGs {agno} and later lie past the volume's end"));
                break;
            }
            fs.check_ag(agno)?;
        }
        let root = fs.inode(fs.sb.rootino)?;
        if root.meta.kind != FileKind::Dir {
            return Err(FsError::corrupt(
                format!("XFS root inode {}", fs.sb.rootino),
                root.offset,
                format!("is a {:?}", root.meta.kind),
            ));
        }
        if fs.sb.needs_repair {
            fs.warnings
                .push("the superblock says the filesystem needs xfs_repair".into());
        }
        match fs.log_warning() {
            Ok(None) => {}
            Ok(Some(w)) => fs.warnings.push(w),
            Err(e) => fs.warnings.push(format!(
                "the log could not be checked ({e}): the view may be stale"
            )),
        }
        Ok(fs)
    }

    /// Reads `len` bytes of metadata at byte `offset` through the cache.
    pub(crate) fn read_meta(&self, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > self.sb.size()) {
            return Err(FsError::corrupt(
                "XFS metadata",
                offset,
                format!("read of {len} bytes past the filesystem's end"),
            ));
        }
        let mut buf = vec![0u8; len];
        self.meta.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Inode `ino`, parsed and cached.
    pub(crate) fn inode(&self, ino: u64) -> Result<Arc<Inode>, FsError> {
        if let Some(i) = self.inodes.lock().get(&ino) {
            return Ok(i.clone());
        }
        let offset = self.sb.ino_to_byte(ino).ok_or(FsError::NoInode(Ino(ino)))?;
        let raw = self.read_meta(offset, self.sb.inode_size as usize)?;
        let inode = Arc::new(Inode::parse(&self.sb, ino, &raw, offset, &self.checks)?);
        inode.check_format()?;
        let mut cache = self.inodes.lock();
        if cache.len() >= INODE_CACHE {
            cache.clear();
        }
        cache.insert(ino, inode.clone());
        Ok(inode)
    }

    /// The entries of directory `dir`, from the bounded cache or read.
    fn listing(&self, dir: Ino) -> Result<Arc<Vec<DirEntry>>, FsError> {
        self.dirs.get_or_load(dir, || {
            let inode = self.want(dir, FileKind::Dir, "directory")?;
            self.list(&inode)
        })
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

    /// The block runs of file `inode` covering its size.
    fn runs(&self, inode: &Inode) -> Result<Vec<Run>, FsError> {
        let bs = u64::from(self.sb.block_size);
        let blocks = inode.meta.size.div_ceil(bs);
        let mut runs: Vec<Run> = Vec::new();
        let mut push = |r: Run| match runs.last_mut() {
            Some(l) if l.at.is_none() && r.at.is_none() => l.blocks += r.blocks,
            Some(l) if l.at.zip(r.at).is_some_and(|(a, b)| a + l.blocks == b) => {
                l.blocks += r.blocks
            }
            _ => runs.push(r),
        };
        let mut pos = 0u64;
        for &e in self.extents(inode)?.iter() {
            if pos >= blocks {
                break;
            }
            if e.offset > pos {
                push(Run {
                    blocks: e.offset - pos,
                    at: None,
                });
            }
            let at = if e.unwritten {
                None
            } else {
                let (linear, _) = self.map_block(std::slice::from_ref(&e), e.offset);
                linear
            };
            push(Run {
                blocks: e.count,
                at,
            });
            pos = e.offset + e.count;
        }
        if pos < blocks {
            push(Run {
                blocks: blocks - pos,
                at: None,
            });
        }
        Ok(runs)
    }
}

impl Filesystem for XfsFs {
    fn unused(&self, f: &mut dyn FnMut(std::ops::Range<u64>)) -> Result<(), FsError> {
        self.free_ranges(f)
    }

    fn info(&self) -> VolumeInfo {
        VolumeInfo {
            kind: FsKind::Xfs,
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
        Ino(self.sb.rootino)
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, FsError> {
        Ok(self.inode(ino.0)?.meta.clone())
    }

    fn read_dir(&self, dir: Ino) -> Result<Vec<DirEntry>, FsError> {
        Ok(self.listing(dir)?.as_ref().clone())
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Option<DirEntry>, FsError> {
        Ok(self.listing(dir)?.iter().find(|e| e.name == name).cloned())
    }

    fn read_link(&self, ino: Ino) -> Result<String, FsError> {
        let inode = self.want(ino, FileKind::Symlink, "symlink")?;
        let target = self.link_target(&inode)?;
        String::from_utf8(target).map_err(|_| {
            FsError::corrupt(
                format!("XFS symlink {ino}"),
                inode.offset,
                "target is not UTF-8",
            )
        })
    }

    fn open(&self, ino: Ino) -> Result<Source, FsError> {
        let inode = self.want(ino, FileKind::File, "file")?;
        if inode.realtime {
            return Err(FsError::Unsupported {
                fs: "XFS",
                detail: format!("inode {ino} keeps its data on the realtime device"),
            });
        }
        let runs = self.runs(&inode)?;
        let size = inode.meta.size;
        let r = Runs::new(
            self.vol.clone(),
            u64::from(self.sb.block_size),
            &runs,
            size,
            size,
        )
        .map_err(|e| {
            FsError::corrupt(format!("XFS inode {ino} data"), inode.offset, e.to_string())
        })?;
        Ok(Arc::new(r))
    }

    fn xattrs(&self, ino: Ino) -> Result<Vec<Xattr>, FsError> {
        let inode = self.inode(ino.0)?;
        self.attrs(&inode)
    }

    fn details(&self, ino: Ino) -> Result<Vec<(String, String)>, FsError> {
        let inode = self.inode(ino.0)?;
        let format = match inode.format {
            Format::Dev => "dev",
            Format::Local => "local",
            Format::Extents => "extents",
            Format::Btree => "btree",
        };
        Ok(vec![
            ("xfs.format".into(), format.into()),
            ("xfs.extents".into(), inode.nextents.to_string()),
            ("xfs.inode_offset".into(), format!("{:#x}", inode.offset)),
            (
                "xfs.ag".into(),
                (ino.0 >> (u32::from(self.sb.agblk_log) + u32::from(self.sb.inopb_log)))
                    .to_string(),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reader_is_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<super::XfsFs>();
    }
}
