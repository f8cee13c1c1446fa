//! Opening the repository a command works on: the local backend at
//! `-r PATH`, unlocked with the password from the configured source; and
//! finding the snapshot (and the path inside it) a command names.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use vaultfs::Id;
use vaultfs::backend::{Backend, FileType, LocalBackend};
use vaultfs::repo::Repository;
use vaultfs::snapshot::select::SnapshotFilter;
use vaultfs::snapshot::walk::resolve_path;
use vaultfs::snapshot::{Node, Snapshot, find_snapshot, load_snapshots};

use crate::plan::{Global, Selection, SnapshotPath};

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

/// The snapshot `selector` names: `latest` is the newest one passing the
/// host/tag/path filters; an id prefix names one snapshot whatever the
/// filters say, as in restic.
pub fn snapshot(
    repo: &Repository,
    selector: &str,
    selection: &Selection,
) -> Result<(Id, Snapshot)> {
    if selector != "latest" {
        return Ok(find_snapshot(repo, selector, &SnapshotFilter::default())?);
    }
    let filtered = !selection.filter.hosts.is_empty()
        || !selection.filter.paths.is_empty()
        || !selection.tag_groups.is_empty();
    load_snapshots(repo)?
        .into_iter()
        .rev()
        .find(|(_, s)| selection.matches(s))
        .ok_or_else(|| {
            if filtered {
                anyhow!("no snapshot matches the --host/--tag/--path filters (latest)")
            } else {
                anyhow!("no snapshot found (latest): the repository has no snapshots")
            }
        })
}

/// The snapshot and the node at the path `target` names in it.
pub fn snapshot_node(
    repo: &Repository,
    target: &SnapshotPath,
    selection: &Selection,
) -> Result<(Id, Snapshot, Node)> {
    let (id, snap) = snapshot(repo, &target.snapshot, selection)?;
    let node = resolve_path(repo, &snap.tree, &target.path)
        .with_context(|| format!("snapshot {}", id.short()))?;
    Ok((id, snap, node))
}
