//! Inodes: `s_inode_size` bytes each in their group's inode table; the
//! first 128 bytes are the original ext2 inode, the rest (`i_extra_isize`
//! of it) holds the high checksum half, nanosecond/epoch time extensions
//! and the creation time, then in-inode extended attributes.
//!
//! Timestamps: a signed 32-bit second count, extended by the extra field
//! whose low 2 bits add multiples of 2^32 seconds (the epoch bits) and
//! whose upper 30 bits are nanoseconds.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/inodes.rst`
//! ("Index Nodes", "Inode Timestamps") and `checksums.rst`. No code was
//! taken from it.

use super::csum;
use super::sb::{INCOMPAT_64BIT, INCOMPAT_LARGEDIR, Superblock, le16, le32};
use crate::fs::checks::Checks;
use crate::fs::{FileKind, FsError, Ino, Metadata, Timestamp};

// i_flags this reader acts on.
pub(crate) const FL_ENCRYPT: u32 = 0x800;
pub(crate) const FL_INDEX: u32 = 0x1000;
pub(crate) const FL_EXTENTS: u32 = 0x8_0000;
pub(crate) const FL_INLINE_DATA: u32 = 0x1000_0000;
pub(crate) const FL_CASEFOLD: u32 = 0x4000_0000;

/// A parsed inode.
#[derive(Clone, Debug)]
pub(crate) struct Inode {
    pub meta: Metadata,
    pub flags: u32,
    /// The 60 bytes of `i_block`: block map, extent root, inline data or a
    /// fast symlink's target.
    pub i_block: [u8; 60],
    /// The in-inode extended attribute area (after `i_extra_isize`).
    pub xattr: Vec<u8>,
    /// The external extended attribute block (`i_file_acl`, with its high
    /// 16 bits under 64bit), 0 for none.
    pub file_acl: u64,
    /// Seed of this inode's metadata checksums (0 without metadata_csum).
    pub csum_seed: u32,
    pub dtime: u32,
    /// Byte offset of the inode in the volume.
    pub offset: u64,
}

/// A timestamp from its 32-bit seconds field and optional extra field.
pub(crate) fn timestamp(secs: u32, extra: Option<u32>) -> Timestamp {
    let base = i64::from(secs as i32);
    match extra {
        None => Timestamp {
            secs: base,
            nanos: 0,
        },
        Some(x) => Timestamp {
            secs: base + (i64::from(x & 3) << 32),
            nanos: (x >> 2).min(999_999_999),
        },
    }
}

fn kind_of(mode: u16) -> Option<FileKind> {
    Some(match mode & 0xF000 {
        0x8000 => FileKind::File,
        0x4000 => FileKind::Dir,
        0xA000 => FileKind::Symlink,
        0x2000 => FileKind::CharDevice,
        0x6000 => FileKind::BlockDevice,
        0x1000 => FileKind::Fifo,
        0xC000 => FileKind::Socket,
        _ => return None,
    })
}

/// A device number from ext's `i_block` encodings, in glibc's `makedev`
/// form.
fn rdev(i_block: &[u8]) -> u64 {
    let old = le32(i_block, 0);
    let (major, minor) = if old != 0 {
        ((old >> 8) & 0xFF, old & 0xFF)
    } else {
        let new = le32(i_block, 4);
        ((new >> 8) & 0xFFF, (new & 0xFF) | ((new >> 12) & 0xF_FF00))
    };
    let (major, minor) = (u64::from(major), u64::from(minor));
    (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & !0xFF) << 12) | ((major & !0xFFF) << 32)
}

impl Inode {
    /// Parses inode `ino` from its `sb.inode_size` bytes `b` read at
    /// `offset`; an inode not in use is [`FsError::NoInode`]. With
    /// `deleted`, only a deleted inode is wanted: no links, a deletion
    /// time and a mode still set.
    pub(crate) fn parse(
        sb: &Superblock,
        ino: u32,
        b: &[u8],
        offset: u64,
        deleted: bool,
        checks: &Checks,
    ) -> Result<Inode, FsError> {
        let structure = || format!("ext4 inode {ino}");
        let isz = usize::from(sb.inode_size);
        if b.len() < isz {
            return Err(FsError::corrupt(structure(), offset, "short read"));
        }
        let b = &b[..isz];
        if b.iter().all(|&x| x == 0) {
            return Err(FsError::NoInode(Ino(u64::from(ino))));
        }
        let extra_isize = if isz > 128 {
            usize::from(le16(b, 0x80))
        } else {
            0
        };
        if isz > 128 && (128 + extra_isize > isz || extra_isize % 4 != 0) {
            return Err(FsError::corrupt(
                structure(),
                offset,
                format!("i_extra_isize {extra_isize} does not fit a {isz}-byte inode"),
            ));
        }
        let has = |field: usize| isz > 128 && field + 4 <= 128 + extra_isize;
        let generation = le32(b, 0x64);
        let mut csum_seed = 0;
        if sb.metadata_csum() {
            csum_seed = csum::inode_seed(sb.csum_seed, ino, generation);
            let mut copy = b.to_vec();
            copy[0x7C..0x7E].fill(0);
            let hi = has(0x82) && 0x82 + 2 <= 128 + extra_isize;
            if hi {
                copy[0x82..0x84].fill(0);
            }
            let crc = csum::update(csum_seed, &copy);
            let stored = u32::from(le16(b, 0x7C))
                | if hi {
                    u32::from(le16(b, 0x82)) << 16
                } else {
                    0
                };
            let computed = if hi { crc } else { crc & 0xFFFF };
            csum::check(checks, stored, computed, &structure(), offset)?;
        }
        let mode = le16(b, 0x0);
        let links = le16(b, 0x1A);
        let dtime = le32(b, 0x14);
        let in_use = links != 0 && mode != 0;
        let gone = links == 0 && mode != 0 && dtime != 0;
        if (!deleted && !in_use) || (deleted && !gone) {
            return Err(FsError::NoInode(Ino(u64::from(ino))));
        }
        let kind = kind_of(mode).ok_or_else(|| {
            FsError::corrupt(
                structure(),
                offset,
                format!("mode {mode:#o} has no file type"),
            )
        })?;
        let size_hi =
            if kind == FileKind::File || (kind == FileKind::Dir && sb.has(INCOMPAT_LARGEDIR)) {
                u64::from(le32(b, 0x6C)) << 32
            } else {
                0
            };
        let size = u64::from(le32(b, 0x4)) | size_hi;
        let mut i_block = [0u8; 60];
        i_block.copy_from_slice(&b[0x28..0x64]);
        let time = |at: usize, extra_at: usize| {
            timestamp(le32(b, at), has(extra_at).then(|| le32(b, extra_at)))
        };
        let rdev = match kind {
            FileKind::CharDevice | FileKind::BlockDevice => rdev(&i_block),
            _ => 0,
        };
        let meta = Metadata {
            ino: Ino(u64::from(ino)),
            kind,
            size,
            perm: u32::from(mode & 0o7777),
            uid: u32::from(le16(b, 0x2)) | u32::from(le16(b, 0x78)) << 16,
            gid: u32::from(le16(b, 0x18)) | u32::from(le16(b, 0x7A)) << 16,
            nlink: u32::from(links),
            rdev,
            mtime: time(0x10, 0x88),
            atime: time(0x8, 0x8C),
            ctime: time(0xC, 0x84),
            crtime: has(0x90).then(|| time(0x90, 0x94)),
        };
        let xattr = if isz > 128 {
            b[128 + extra_isize..].to_vec()
        } else {
            Vec::new()
        };
        let file_acl_hi = if sb.has(INCOMPAT_64BIT) {
            u64::from(le16(b, 0x76)) << 32
        } else {
            0
        };
        Ok(Inode {
            meta,
            flags: le32(b, 0x20),
            i_block,
            xattr,
            file_acl: u64::from(le32(b, 0x68)) | file_acl_hi,
            csum_seed,
            dtime,
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_use_the_epoch_bits_and_nanoseconds() {
        assert_eq!(timestamp(5, None), Timestamp { secs: 5, nanos: 0 });
        assert_eq!(
            timestamp(0xFFFF_FFFF, Some(0)),
            Timestamp { secs: -1, nanos: 0 }
        );
        assert_eq!(
            timestamp(0x1234_5678, Some((5 << 2) | 1)),
            Timestamp {
                secs: 0x1234_5678 + (1 << 32),
                nanos: 5
            }
        );
        assert_eq!(
            timestamp(0x8000_0000, Some(1)),
            Timestamp {
                secs: (1 << 31),
                nanos: 0
            }
        );
        assert_eq!(timestamp(0, Some(123_456_789 << 2)).nanos, 123_456_789);
    }

    #[test]
    fn device_numbers_in_both_encodings() {
        let mut ib = [0u8; 60];
        ib[0] = 3;
        ib[1] = 1;
        assert_eq!(rdev(&ib), 0x103);
        let mut ib = [0u8; 60];
        let (maj, min) = (259u32, 0x12345u32);
        let new = (min & 0xFF) | (maj << 8) | ((min & !0xFF) << 12);
        ib[4..8].copy_from_slice(&new.to_le_bytes());
        assert_eq!(rdev(&ib), 0x1230_0000 | (259 << 8) | 0x45);
    }
}
