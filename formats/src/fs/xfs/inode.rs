//! On-disk inodes (`struct xfs_dinode`, kernel
//! `fs/xfs/libxfs/xfs_format.h`; "XFS Algorithms & Data Structures",
//! "On-disk Inode"): the core (v2: 100 bytes; v3: 176 bytes with CRC,
//! crtime, flags2 and the inode's own number), timestamps (seconds and
//! nanoseconds, or with bigtime one count of nanoseconds since
//! 1901-12-13T20:45:52Z) and the data fork's place and format.

use super::crc::{be16, be32, be64, verify};
use super::sb::Superblock;
use crate::fs::checks::Checks;
use crate::fs::{FileKind, FsError, Ino, Metadata, Timestamp};

const MAGIC: u16 = 0x494e; // "IN"
/// Offset of `di_crc` in a v3 inode.
const CRC_OFF: usize = 100;
const CORE_V2: usize = 100;
const CORE_V3: usize = 176;

/// `di_flags`: the data lives on the realtime device.
const DIFLAG_REALTIME: u16 = 0x1;
/// `di_flags2` bits.
const DIFLAG2_BIGTIME: u64 = 1 << 3;
const DIFLAG2_NREXT64: u64 = 1 << 4;

/// Seconds between 1901-12-13T20:45:52Z (bigtime's zero) and the epoch.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;

/// A data fork's format (`di_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// A device number (device nodes, fifos, sockets).
    Dev,
    /// Inline data in the inode.
    Local,
    /// An array of extent records in the inode.
    Extents,
    /// The root of a bmbt in the inode.
    Btree,
}

/// A parsed inode.
#[derive(Clone, Debug)]
pub(crate) struct Inode {
    pub meta: Metadata,
    pub format: Format,
    /// Data extents as counted by the inode.
    pub nextents: u64,
    pub realtime: bool,
    /// The data fork's bytes (the literal area up to the attribute fork).
    pub fork: Vec<u8>,
    /// Which fork `format`, `nextents` and `fork` describe (errors name
    /// it): "data fork", or "attribute fork" in [`Inode::attr_fork`]'s view.
    pub fork_name: &'static str,
    /// The attribute fork, if the inode has one (`di_forkoff` != 0).
    pub attr: Option<AttrFork>,
    /// Byte offset of the inode in the volume (for errors).
    pub offset: u64,
}

/// An inode's attribute fork: its format (`di_aformat`), extent count
/// and bytes (from `di_forkoff` to the end of the literal area).
#[derive(Clone, Debug)]
pub(crate) struct AttrFork {
    pub format: Format,
    pub nextents: u64,
    pub fork: Vec<u8>,
}

/// Decodes a timestamp field (8 bytes at `at`).
pub(crate) fn timestamp(b: &[u8], at: usize, bigtime: bool) -> Timestamp {
    if bigtime {
        let ns = be64(b, at);
        let secs = (ns / 1_000_000_000) as i64 - BIGTIME_EPOCH_OFFSET;
        Timestamp {
            secs,
            nanos: (ns % 1_000_000_000) as u32,
        }
    } else {
        Timestamp {
            secs: i64::from(be32(b, at) as i32),
            nanos: be32(b, at + 4).min(999_999_999),
        }
    }
}

fn kind_of(mode: u16) -> Option<FileKind> {
    Some(match mode & 0o170000 {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Dir,
        0o120000 => FileKind::Symlink,
        0o060000 => FileKind::BlockDevice,
        0o020000 => FileKind::CharDevice,
        0o010000 => FileKind::Fifo,
        0o140000 => FileKind::Socket,
        _ => return None,
    })
}

/// Linux's `dev_t` of an XFS device number (major in the top 14 bits,
/// minor in the low 18), as `stat` reports it.
fn rdev(xfs_dev: u32) -> u64 {
    let major = u64::from(xfs_dev >> 18);
    let minor = u64::from(xfs_dev & 0x3ffff);
    ((major & 0xfffff000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffffff00) << 12)
        | (minor & 0xff)
}

impl Inode {
    /// Parses inode `ino` from its `sb.inode_size` bytes at byte `offset`.
    pub fn parse(
        sb: &Superblock,
        ino: u64,
        raw: &[u8],
        offset: u64,
        checks: &Checks,
    ) -> Result<Inode, FsError> {
        let structure = || format!("XFS inode {ino}");
        let bad = |d: String| FsError::corrupt(structure(), offset, d);
        if raw.len() != sb.inode_size as usize {
            return Err(bad(format!(
                "{} bytes read, inode size {}",
                raw.len(),
                sb.inode_size
            )));
        }
        let magic = be16(raw, 0);
        if magic != MAGIC {
            // A never-used slot of an inode chunk, or garbage.
            return Err(if magic == 0 {
                FsError::NoInode(Ino(ino))
            } else {
                bad(format!("bad magic {magic:#06x}, expected IN"))
            });
        }
        let version = raw[4];
        let core = match (version, sb.crc()) {
            (3, true) => {
                verify(checks, raw, CRC_OFF, &structure(), offset)?;
                let own = be64(raw, 152);
                if own != ino {
                    return Err(bad(format!("records inode number {own}")));
                }
                if raw[160..176] != sb.meta_uuid {
                    return Err(bad("UUID is not the filesystem's".into()));
                }
                CORE_V3
            }
            (1 | 2, false) => CORE_V2,
            (v, _) => {
                return Err(bad(format!(
                    "inode version {v} on a v{} filesystem",
                    sb.version
                )));
            }
        };
        let mode = be16(raw, 2);
        if mode == 0 {
            return Err(FsError::NoInode(Ino(ino)));
        }
        let kind = kind_of(mode).ok_or_else(|| bad(format!("bad mode {mode:#o}")))?;
        let flags2 = if core == CORE_V3 { be64(raw, 120) } else { 0 };
        let bigtime = flags2 & DIFLAG2_BIGTIME != 0;
        let nlink = if version == 1 {
            u32::from(be16(raw, 6))
        } else {
            be32(raw, 16)
        };
        let size = be64(raw, 56);
        if size > i64::MAX as u64 {
            return Err(bad(format!("size {size:#x}")));
        }
        let nextents = if flags2 & DIFLAG2_NREXT64 != 0 && sb.nrext64 {
            be64(raw, 24)
        } else {
            u64::from(be32(raw, 76))
        };
        let format = match raw[5] {
            0 => Format::Dev,
            1 => Format::Local,
            2 => Format::Extents,
            3 => Format::Btree,
            f => return Err(bad(format!("data fork format {f}"))),
        };
        let lit = raw.len() - core;
        let forkoff = usize::from(raw[82]) * 8;
        let fork_len = if forkoff == 0 { lit } else { forkoff };
        if fork_len > lit {
            return Err(bad(format!(
                "attribute fork offset {forkoff} past the literal area ({lit})"
            )));
        }
        let fork = raw[core..core + fork_len].to_vec();
        let attr = if forkoff == 0 {
            None
        } else {
            let format = match raw[83] {
                1 => Format::Local,
                2 => Format::Extents,
                3 => Format::Btree,
                f => return Err(bad(format!("attribute fork format {f}"))),
            };
            let nextents = if flags2 & DIFLAG2_NREXT64 != 0 && sb.nrext64 {
                u64::from(be32(raw, 76))
            } else {
                u64::from(be16(raw, 80))
            };
            Some(AttrFork {
                format,
                nextents,
                fork: raw[core + forkoff..].to_vec(),
            })
        };
        let rdev = match (kind, format) {
            (FileKind::BlockDevice | FileKind::CharDevice, Format::Dev) => rdev(be32(&fork, 0)),
            _ => 0,
        };
        let meta = Metadata {
            ino: Ino(ino),
            kind,
            size,
            perm: u32::from(mode & 0o7777),
            uid: be32(raw, 8),
            gid: be32(raw, 12),
            nlink,
            rdev,
            atime: timestamp(raw, 32, bigtime),
            mtime: timestamp(raw, 40, bigtime),
            ctime: timestamp(raw, 48, bigtime),
            crtime: (core == CORE_V3).then(|| timestamp(raw, 144, bigtime)),
        };
        Ok(Inode {
            meta,
            format,
            nextents,
            realtime: be16(raw, 90) & DIFLAG_REALTIME != 0,
            fork,
            fork_name: "data fork",
            attr,
            offset,
        })
    }

    /// The inode seen through its attribute fork (format, extent count and
    /// bytes of that fork), for the block-mapping code; `None` without one.
    pub fn attr_fork(&self) -> Option<Inode> {
        let a = self.attr.as_ref()?;
        Some(Inode {
            format: a.format,
            nextents: a.nextents,
            fork: a.fork.clone(),
            fork_name: "attribute fork",
            attr: None,
            ..self.clone()
        })
    }

    /// Checks that the fork format suits the kind (a file in `Dev` format,
    /// a device with extents are damage).
    pub fn check_format(&self) -> Result<(), FsError> {
        let ok = match self.meta.kind {
            FileKind::File => matches!(self.format, Format::Extents | Format::Btree),
            FileKind::Dir | FileKind::Symlink => {
                matches!(self.format, Format::Local | Format::Extents | Format::Btree)
            }
            _ => self.format == Format::Dev,
        };
        if ok {
            Ok(())
        } else {
            Err(FsError::corrupt(
                format!("XFS inode {}", self.meta.ino),
                self.offset,
                format!(
                    "a {:?} with a data fork in {:?} format",
                    self.meta.kind, self.format
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_classic_and_bigtime() {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&(-1i32).to_be_bytes());
        b[4..8].copy_from_slice(&5u32.to_be_bytes());
        assert_eq!(timestamp(&b, 0, false), Timestamp { secs: -1, nanos: 5 });
        // bigtime: 2^31 s after 1901-12-13T20:45:52Z is the epoch.
        let ns: u64 = (1u64 << 31) * 1_000_000_000 + 123;
        assert_eq!(
            timestamp(&ns.to_be_bytes(), 0, true),
            Timestamp {
                secs: 0,
                nanos: 123
            }
        );
        // 2100-01-01T00:00:00Z, past 2038.
        let secs = 4_102_444_800u64;
        let ns = (secs + (1 << 31)) * 1_000_000_000 + 999_999_999;
        assert_eq!(
            timestamp(&ns.to_be_bytes(), 0, true),
            Timestamp {
                secs: secs as i64,
                nanos: 999_999_999
            }
        );
        // bigtime zero is the earliest classic time.
        assert_eq!(timestamp(&[0; 8], 0, true).secs, i64::from(i32::MIN));
    }

    /// A v3 inode 131 of a v5 filesystem: a file, bigtime, CRC made valid.
    fn v3_inode(sb: &Superblock) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        b[2..4].copy_from_slice(&0o100640u16.to_be_bytes());
        b[4] = 3;
        b[5] = 2; // extents
        b[8..12].copy_from_slice(&1000u32.to_be_bytes());
        b[12..16].copy_from_slice(&100u32.to_be_bytes());
        b[16..20].copy_from_slice(&2u32.to_be_bytes());
        let t = ((1u64 << 31) + 1_700_000_000) * 1_000_000_000 + 42;
        for at in [32, 40, 48, 144] {
            b[at..at + 8].copy_from_slice(&t.to_be_bytes());
        }
        b[56..64].copy_from_slice(&5000u64.to_be_bytes());
        b[76..80].copy_from_slice(&1u32.to_be_bytes());
        b[120..128].copy_from_slice(&DIFLAG2_BIGTIME.to_be_bytes());
        b[152..160].copy_from_slice(&131u64.to_be_bytes());
        b[160..176].copy_from_slice(&sb.meta_uuid);
        let sum = super::super::crc::block_crc(&b, CRC_OFF);
        b[CRC_OFF..CRC_OFF + 4].copy_from_slice(&sum.to_le_bytes());
        b
    }

    #[test]
    fn v3_inode_core() {
        let sb = Superblock::parse(
            &super::super::sb::tests::make_sb(25600, 4, 5),
            &Checks::default(),
        )
        .expect("sb");
        let raw = v3_inode(&sb);
        let i = Inode::parse(&sb, 131, &raw, 0x1000, &Checks::default()).expect("inode");
        let m = &i.meta;
        assert_eq!(
            (m.kind, m.perm, m.uid, m.gid, m.nlink, m.size),
            (FileKind::File, 0o640, 1000, 100, 2, 5000)
        );
        let t = Timestamp {
            secs: 1_700_000_000,
            nanos: 42,
        };
        assert_eq!((m.atime, m.mtime, m.ctime, m.crtime), (t, t, t, Some(t)));
        assert_eq!(
            (i.format, i.nextents, i.fork.len()),
            (Format::Extents, 1, 336)
        );
        // The same bytes read as another inode number: refused.
        let e = Inode::parse(&sb, 132, &raw, 0x1200, &Checks::default()).expect_err("wrong number");
        assert!(e.to_string().contains("records inode number 131"), "{e}");
        // A flipped bit: the CRC names it.
        let mut bad = raw.clone();
        bad[20] ^= 1;
        let e = Inode::parse(&sb, 131, &bad, 0x1000, &Checks::default()).expect_err("crc");
        assert!(
            e.to_string()
                .contains("XFS inode 131 at byte 0x1000: checksum mismatch"),
            "{e}"
        );
        // An attribute fork offset past the literal area.
        let mut fo = raw;
        fo[82] = 50;
        let sum = super::super::crc::block_crc(&fo, CRC_OFF);
        fo[CRC_OFF..CRC_OFF + 4].copy_from_slice(&sum.to_le_bytes());
        assert!(Inode::parse(&sb, 131, &fo, 0, &Checks::default()).is_err());
    }

    #[test]
    fn device_numbers() {
        assert_eq!(rdev((1 << 18) | 3), 0x103);
        assert_eq!(rdev((259 << 18) | 0x12345), 0x1230_0000 | (259 << 8) | 0x45);
    }
}
