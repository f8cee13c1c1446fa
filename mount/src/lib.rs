//! vaultfs-mount: serves the vaultfs tree over FUSE (and WinFsp on Windows).
//!
//! A thin shim: inode numbers, errno mapping and the kernel protocol; no
//! parsing and no cryptography live here. Both adapters take a root
//! [`vaultfs::vfs::Entry`], so a repository's tree (`Vfs::root`) and a
//! local disk image's contents (`vfs::image_dir`) are served by the same
//! code.

use std::io;
use std::path::PathBuf;

#[cfg(target_os = "linux")]
mod fuse;
#[cfg(windows)]
mod winfsp;

#[cfg(target_os = "linux")]
pub use fuse::{Mount, MountOptions, serve};
#[cfg(windows)]
pub use winfsp::WinMount;

/// Why a mount could not be made, served or taken down.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The kernel or `fusermount3` refused the mount.
    #[error("mounting at {}: {source}", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The unmount failed (the mount point is busy, for one).
    #[error("unmounting {}: {source}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// SIGINT and SIGTERM could not be caught.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] io::Error),
}
