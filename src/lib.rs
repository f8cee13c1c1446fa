//! vaultfs: a backup vault in restic's repository format (version 2) that
//! can be mounted and browsed.
//!
//! Layers, bottom up: [`backend`] stores opaque files; [`crypto`] and
//! [`repo`] turn them into verified objects (config, keys, packs, index,
//! blobs); [`snapshot`] holds the restic JSON types; [`archiver`] writes
//! backups and [`restore`] reads them back.
//!
//! ```no_run
//! use std::sync::Arc;
//! use vaultfs::backend::LocalBackend;
//! use vaultfs::repo::Repository;
//!
//! let repo = Repository::open(Arc::new(LocalBackend::new("/srv/vault")), b"password")?;
//! repo.load_index()?;
//! for (id, snap) in vaultfs::snapshot::load_snapshots(&repo)? {
//!     println!("{} {} {:?}", id.short(), snap.time, snap.paths);
//! }
//! # Ok::<(), vaultfs::Error>(())
//! ```

pub mod archiver;
pub mod b64;
pub mod backend;
pub mod check;
pub mod chunker;
pub mod crypto;
pub mod error;
pub mod filter;
pub mod forget;
pub mod id;
pub mod parallel;
pub mod prune;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod snapshot;
pub mod stats;
pub mod sys;
pub mod vfs;

pub use error::{Error, ErrorKind, Result};
pub use id::Id;
