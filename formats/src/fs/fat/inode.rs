//! Inodes: which number names which entry, and the POSIX metadata a FAT
//! entry does not have, synthesised.
//!
//! Inode numbers are the byte offset of the 8.3 entry in the volume (the
//! root, which has no entry, is 1); a deleted entry has bit 62 set as
//! well. An inode is accepted only if it is an entry position of the fixed
//! root or of the data region holding a live (or, with bit 62, deleted)
//! short entry, so a number the reader did not hand out is `NoInode`.
//! Permissions follow the Linux vfat driver (`fs/fat/inode.c`,
//! `fat_make_mode`) with default mount options and umask 022; times are
//! DOS local times read as UTC ([`super::time`]).

use super::dirent::{self, ATTR_READ_ONLY, ATTR_VOLUME_ID, FREE, ShortEntry};
use super::lfn::ATTR_LONG_NAME;
use super::{DELETED_BIT, FatFs, kind_of, time};
use crate::fs::{FileKind, FsError, Ino, Metadata, Timestamp};
use crate::io::ReadAt;

impl FatFs {
    /// The 32-byte entry of inode `ino` and whether it is deleted; any
    /// inode this reader did not hand out is `NoInode`.
    pub(super) fn entry(&self, ino: Ino) -> Result<(ShortEntry, bool), FsError> {
        let deleted = ino.0 & DELETED_BIT != 0;
        let off = ino.0 & !DELETED_BIT;
        let in_region =
            |start: u64, len: u64| off >= start && off - start < len && (off - start) % 32 == 0;
        let root_ok = self.geo.root_region.is_some_and(|(s, l)| in_region(s, l));
        let data_ok = in_region(
            self.geo.data_offset,
            self.geo.data_end() - self.geo.data_offset,
        );
        if off >= 1 << 62 || !(root_ok || data_ok) {
            return Err(FsError::NoInode(ino));
        }
        let mut b = [0u8; 32];
        self.meta.read_exact_at(off, &mut b)?;
        let e = ShortEntry::parse(&b);
        let valid = (b[0] == FREE) == deleted
            && b[0] != 0
            && e.attr & 0x3F != ATTR_LONG_NAME
            && e.attr & ATTR_VOLUME_ID == 0
            && &e.name != b".          "
            && &e.name != b"..         ";
        if !valid {
            return Err(FsError::NoInode(ino));
        }
        Ok((e, deleted))
    }

    /// A name for `ino` in error messages.
    pub(super) fn describe(&self, ino: Ino, e: &ShortEntry, deleted: bool) -> String {
        let off = ino.0 & !DELETED_BIT;
        let name = self
            .caches
            .lock()
            .names
            .get(&ino.0)
            .cloned()
            .unwrap_or_else(|| dirent::short_name(&e.name, e.nt_case, self.cp, deleted));
        let what = if deleted {
            "deleted file"
        } else if e.is_dir() {
            "directory"
        } else {
            "file"
        };
        format!("{what} {name:?} (entry at byte {off:#x})")
    }

    pub(super) fn meta_of(&self, ino: Ino, e: &ShortEntry, size: u64, nlink: u32) -> Metadata {
        let mtime = time::dos_time(e.mdate, e.mtime, 0);
        let perm = if !e.is_dir() && e.attr & ATTR_READ_ONLY != 0 {
            0o555
        } else {
            0o755
        };
        Metadata {
            ino,
            kind: kind_of(e),
            size,
            perm,
            uid: 0,
            gid: 0,
            nlink,
            rdev: 0,
            mtime,
            atime: if e.adate == 0 {
                mtime
            } else {
                time::dos_date(e.adate)
            },
            ctime: mtime,
            crtime: (e.cdate != 0).then(|| time::dos_time(e.cdate, e.ctime, e.ctime_tenths)),
        }
    }

    pub(super) fn dir_meta(&self, ino: Ino, e: Option<&ShortEntry>) -> Result<Metadata, FsError> {
        let d = self.dir(ino)?;
        let subdirs = d.live.iter().filter(|l| l.entry.is_dir()).count();
        let nlink = u32::try_from(subdirs).unwrap_or(u32::MAX - 2) + 2;
        Ok(match e {
            Some(e) => self.meta_of(ino, e, d.size, nlink),
            None => Metadata {
                ino,
                kind: FileKind::Dir,
                size: d.size,
                perm: 0o755,
                uid: 0,
                gid: 0,
                nlink,
                rdev: 0,
                mtime: Timestamp::EPOCH,
                atime: Timestamp::EPOCH,
                ctime: Timestamp::EPOCH,
                crtime: None,
            },
        })
    }
}
