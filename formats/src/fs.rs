//! Filesystems inside partitions: signature detection now; the readers
//! (NTFS, FAT, ext2/3/4, XFS) behind one trait later.

pub mod detect;

pub use detect::{FsKind, detect};
