//! vaultfs-formats: disk-image containers, partition tables and filesystems
//! read through positional byte sources.
//!
//! This crate knows nothing of the vault: everything it reads arrives as a
//! byte source, so the same parsers serve files in a snapshot, local image
//! files and partitions inside either.

pub mod container;
pub(crate) mod crc32c;
pub mod fs;
pub mod image;
pub mod io;
pub mod partition;
