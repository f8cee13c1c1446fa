//! Opening the repository a command works on: the local backend at
//! `-r PATH`, unlocked with the password from the configured source.

use std::sync::Arc;

use anyhow::Result;
use vaultfs::backend::{Backend, FileType, LocalBackend};
use vaultfs::repo::Repository;

use crate::plan::Global;

/// The backend for the repository directory.
pub fn backend(global: &Global) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(LocalBackend::new(global.repo_path()?)))
}

/// Opens the repository with the configured password.
pub fn repository(global: &Global) -> Result<Repository> {
    let backend = backend(global)?;
    // A path that is no repository should say so without asking for a
    // password first; the library's open reports that case by itself and
    // never reads a key for it.
    if backend.list(FileType::Config)?.is_empty() {
        return Ok(Repository::open(backend, b"")?);
    }
    let question = format!("enter password for repository {}: ", backend.location());
    let password = global.password.read(&question)?;
    Ok(Repository::open(backend, &password)?)
}
