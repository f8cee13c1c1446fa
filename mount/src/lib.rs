//! vaultfs-mount: serves the vaultfs tree over FUSE (and WinFsp on Windows).
//!
//! A thin shim: inode numbers, errno mapping and the kernel protocol; no
//! parsing and no cryptography live here.
