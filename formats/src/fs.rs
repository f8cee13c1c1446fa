//! Filesystems inside volumes: signature detection ([`detect`]) and the
//! one trait every reader (NTFS, FAT, ext2/3/4, XFS) sits behind.
//!
//! A [`Filesystem`] is inode-keyed and read-only, answers through `&self`
//! from many threads at once, and hands out a file's bytes as a [`Source`],
//! so a disk image stored inside a filesystem inside a disk image opens by
//! the same path as any other. Readers know nothing of the vault or of
//! FUSE; names are Unicode (`String`), converted by each reader from its
//! on-disk encoding.

mod checks;
pub mod detect;
mod dircache;
pub mod ext;
pub mod fat;
pub mod mem;
pub mod ntfs;
pub mod walk;
pub mod xfs;

use std::fmt;
use std::io;
use std::sync::Arc;

pub use detect::{FsKind, detect};
pub use mem::MemFs;
pub use walk::{check_invariants, walk};

use crate::io::Source;

/// An inode number as the filesystem defines it: the MFT record number
/// (NTFS), the inode (ext, XFS), a synthesised id (FAT). Readers may use
/// the high bits for views of their own (an NTFS alternate data stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ino(pub u64);

impl fmt::Display for Ino {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file (or an NTFS alternate data stream).
    File,
    /// A directory.
    Dir,
    /// A symbolic link (NTFS symlinks and junctions too).
    Symlink,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharDevice,
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
}

/// A point in time, seconds and nanoseconds since 1970-01-01 UTC; negative
/// seconds lie before it (NTFS counts from 1601).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub nanos: u32,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };

    /// From an NTFS/Windows FILETIME: 100 ns intervals since 1601-01-01.
    pub fn from_filetime(ft: u64) -> Timestamp {
        const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
        let secs = (ft / 10_000_000) as i64 - EPOCH_DIFF_SECS;
        let nanos = (ft % 10_000_000) as u32 * 100;
        Timestamp { secs, nanos }
    }

    /// As a [`std::time::SystemTime`].
    pub fn to_system_time(self) -> std::time::SystemTime {
        use std::time::{Duration, UNIX_EPOCH};
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::new(self.secs as u64, self.nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs())
                + Duration::from_nanos(u64::from(self.nanos))
        }
    }
}

/// An inode's metadata, in POSIX terms; what a filesystem lacks is
/// synthesised as Linux shows it by default (FAT: 0o755, 0o555 when
/// read-only, as vfat's default umask; NTFS: 0o755 directories, 0o644
/// files, no write bits when read-only; uid and gid 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The inode.
    pub ino: Ino,
    /// What it is.
    pub kind: FileKind,
    /// Length in bytes: the data a read returns (a symlink: its target).
    pub size: u64,
    /// Permission bits with setuid/setgid/sticky (`0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Hard links to it (directories: as the filesystem counts them).
    pub nlink: u32,
    /// Device number of a device node.
    pub rdev: u64,
    /// Last modification of the data.
    pub mtime: Timestamp,
    /// Last access (FAT: a date, at midnight).
    pub atime: Timestamp,
    /// Last change of the metadata (FAT: the modification time).
    pub ctime: Timestamp,
    /// Creation (birth) time, where the filesystem records one.
    pub crtime: Option<Timestamp>,
}

/// One name in a directory (never `.` or `..`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The name, decoded from the on-disk encoding.
    pub name: String,
    /// The inode it names.
    pub ino: Ino,
    /// What the inode is.
    pub kind: FileKind,
}

/// A file that was deleted but whose entry is still intact enough to list,
/// for forensic use (as The Sleuth Kit's `fls -d` lists them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedEntry {
    /// The best known path, `/`-separated from the root; a name the
    /// filesystem lost (FAT's first character) is shown as `_`.
    pub path: String,
    /// The inode, readable through [`Filesystem::open`] where its data may
    /// still be there (the bytes are a recovery guess, not a promise).
    pub ino: Ino,
    /// Its metadata as recorded.
    pub meta: Metadata,
}

/// One extended attribute of an inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xattr {
    /// The full Linux name with its namespace prefix: `user.foo`,
    /// `trusted.x`, `security.selinux`, `system.posix_acl_access`.
    pub name: String,
    /// The value as Linux's `getxattr` returns it (POSIX ACLs in the
    /// `posix_acl_xattr` form, whatever the on-disk encoding).
    pub value: Vec<u8>,
}

/// The largest attribute value a reader returns: Linux's `XATTR_SIZE_MAX`
/// (no Linux filesystem can hold a larger one, so a larger one on disk is
/// damage, reported as [`FsError::Corrupt`]).
pub const MAX_XATTR_VALUE: usize = 65536;

/// The most attributes a reader lists for one inode. Linux's `listxattr`
/// returns at most 64 KiB of names, so an inode holding more than this
/// many is reported as [`FsError::Corrupt`] rather than listed in part.
pub const MAX_XATTRS: usize = 1000;

/// What the volume says of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The filesystem.
    pub kind: FsKind,
    /// The volume label, if set.
    pub label: Option<String>,
    /// Cluster or block size in bytes.
    pub block_size: u32,
    /// Size of the filesystem in bytes.
    pub size: u64,
    /// The volume serial number or UUID, as the filesystem's tools print it.
    pub serial: Option<String>,
    /// Damage that was worked around (a bad first FAT, an unreplayed
    /// journal), for the user to see.
    pub warnings: Vec<String>,
}

/// How a filesystem is opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsOptions {
    /// List NTFS alternate data streams beside their file as `name:stream`.
    pub streams: bool,
    /// FAT: the OEM code page 8.3 short names are decoded with (437 or
    /// 850); `None` is the reader's default, 850 as mtools uses.
    pub oem_codepage: Option<u16>,
    /// Forensic reading of damaged volumes: a metadata checksum mismatch
    /// (ext4 metadata_csum, XFS v5 CRCs) is counted and reported in
    /// [`VolumeInfo::warnings`] instead of failing with
    /// [`FsError::Checksum`]; the structure is then parsed as it is, and
    /// every other validity check still applies, so bad data gives
    /// [`FsError::Corrupt`] errors, never panics or reads of the wrong
    /// length.
    pub ignore_checksums: bool,
    /// ext3/ext4: show the volume as it lies on disk, without replaying a
    /// journal that needs recovery (the default replays it in memory).
    pub no_journal_replay: bool,
}

/// A filesystem reader's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// The volume could not be read.
    #[error("reading the volume: {0}")]
    Io(#[from] io::Error),
    /// A structure is damaged or impossible.
    #[error("{structure} at byte {offset:#x}: {detail}")]
    Corrupt {
        /// The structure, e.g. "NTFS MFT record 37".
        structure: String,
        /// Its byte offset in the volume.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A structure's checksum does not match its bytes (see
    /// [`FsOptions::ignore_checksums`] to read it anyway).
    #[error(
        "{structure} at byte {offset:#x}: checksum mismatch (stored {stored:#x}, computed {computed:#x})"
    )]
    Checksum {
        /// The structure, e.g. "ext4 directory 12 block 0".
        structure: String,
        /// Its byte offset in the volume.
        offset: u64,
        /// The checksum it records.
        stored: u32,
        /// The checksum of its bytes.
        computed: u32,
    },
    /// A valid filesystem using a feature this reader does not support.
    #[error("unsupported {fs} feature: {detail}")]
    Unsupported {
        /// "NTFS", "FAT", "ext4", "XFS".
        fs: &'static str,
        /// What is not supported.
        detail: String,
    },
    /// The file's data is encrypted (NTFS EFS) and cannot be read without
    /// the owner's key.
    #[error("{what} is encrypted (EFS); its data cannot be read without the owner's key")]
    Encrypted {
        /// The file, e.g. "MFT record 41".
        what: String,
    },
    /// The inode asked for does not exist or is not in use.
    #[error("no inode {0}")]
    NoInode(Ino),
    /// The operation needs another kind of inode (`read_dir` of a file,
    /// `read_link` of a directory).
    #[error("inode {ino} is a {actual:?}, not a {wanted}")]
    WrongKind {
        /// The inode.
        ino: Ino,
        /// What it is.
        actual: FileKind,
        /// What the call needed: "directory", "symlink", "file".
        wanted: &'static str,
    },
}

impl FsError {
    /// Shorthand for [`FsError::Corrupt`].
    pub fn corrupt(
        structure: impl Into<String>,
        offset: u64,
        detail: impl Into<String>,
    ) -> FsError {
        FsError::Corrupt {
            structure: structure.into(),
            offset,
            detail: detail.into(),
        }
    }
}

impl From<FsError> for io::Error {
    fn from(e: FsError) -> io::Error {
        let kind = match &e {
            FsError::Io(inner) => inner.kind(),
            FsError::Corrupt { .. } | FsError::Checksum { .. } => io::ErrorKind::InvalidData,
            FsError::Unsupported { .. } => io::ErrorKind::Unsupported,
            FsError::Encrypted { .. } => io::ErrorKind::PermissionDenied,
            FsError::NoInode(_) => io::ErrorKind::NotFound,
            FsError::WrongKind { .. } => io::ErrorKind::InvalidInput,
        };
        match e {
            FsError::Io(inner) => inner,
            other => io::Error::new(kind, other),
        }
    }
}

/// A read-only filesystem, keyed by inode, safe to share between threads.
pub trait Filesystem: Send + Sync {
    /// What the volume says of itself.
    fn info(&self) -> VolumeInfo;

    /// The root directory's inode.
    fn root(&self) -> Ino;

    /// The metadata of `ino`.
    fn metadata(&self, ino: Ino) -> Result<Metadata, FsError>;

    /// The entries of directory `dir`, in on-disk order, without `.` and
    /// `..`. A directory too damaged to read completely is an error, not a
    /// shorter listing.
    fn read_dir(&self, dir: Ino) -> Result<Vec<DirEntry>, FsError>;

    /// The entry named `name` in `dir`, compared as the filesystem
    /// compares names (FAT and NTFS: case-insensitively).
    fn lookup(&self, dir: Ino, name: &str) -> Result<Option<DirEntry>, FsError> {
        Ok(self.read_dir(dir)?.into_iter().find(|e| e.name == name))
    }

    /// The target of symlink `ino`, as stored (an NTFS junction: the path
    /// of its target on the Windows volume, with `/` separators).
    fn read_link(&self, ino: Ino) -> Result<String, FsError>;

    /// The bytes of regular file `ino`: holes and bytes past the valid
    /// data length read as zeros, compressed data decompressed.
    fn open(&self, ino: Ino) -> Result<Source, FsError>;

    /// Deleted entries still intact enough to list (FAT 0xE5 entries, NTFS
    /// MFT records not in use). Readers without such a notion list none.
    fn deleted(&self) -> Result<Vec<DeletedEntry>, FsError> {
        Ok(Vec::new())
    }

    /// Filesystem-specific facts about `ino` for forensic listing (NTFS
    /// $FILE_NAME times, DOS attributes, a reparse tag), as
    /// `(name, value)` pairs.
    fn details(&self, _ino: Ino) -> Result<Vec<(String, String)>, FsError> {
        Ok(Vec::new())
    }

    /// The extended attributes of `ino`, in on-disk order, with their
    /// Linux names (attributes Linux does not show, such as ext4's
    /// `system.data`, are left out). At most [`MAX_XATTRS`] of at most
    /// [`MAX_XATTR_VALUE`] bytes each; more is [`FsError::Corrupt`].
    /// Readers without attributes list none.
    fn xattrs(&self, _ino: Ino) -> Result<Vec<Xattr>, FsError> {
        Ok(Vec::new())
    }

    /// The byte ranges of the volume that the filesystem does not use
    /// (free clusters or blocks), in ascending order, each passed to `f`
    /// as it is found, so a large volume needs no list in memory. A disk
    /// backup stores them as zeros. Readers that cannot tell report none:
    /// the volume is then stored whole.
    fn unused(&self, _f: &mut dyn FnMut(std::ops::Range<u64>)) -> Result<(), FsError> {
        Ok(())
    }
}

/// Opens the filesystem of kind `kind` on `vol` with its reader (exFAT
/// has none: a clear `Unsupported`).
pub fn open(kind: FsKind, vol: Source, opts: &FsOptions) -> Result<Arc<dyn Filesystem>, FsError> {
    match kind {
        FsKind::Ntfs => Ok(Arc::new(ntfs::NtfsFs::open(vol, opts)?)),
        FsKind::Fat12 | FsKind::Fat16 | FsKind::Fat32 => Ok(Arc::new(fat::FatFs::open(vol, opts)?)),
        FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => Ok(Arc::new(ext::ExtFs::open(vol, opts)?)),
        FsKind::Xfs => Ok(Arc::new(xfs::XfsFs::open(vol, opts)?)),
        FsKind::ExFat => Err(FsError::Unsupported {
            fs: "exFAT",
            detail: "exFAT volumes are not FAT12/16/32 and have no reader yet".to_string(),
        }),
    }
}

/// Does a reader exist for `kind`? (The tree shows a `pN/` directory only
/// for these.)
pub fn has_reader(kind: FsKind) -> bool {
    kind != FsKind::ExFat
}
