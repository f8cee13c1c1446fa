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
use vaultfs::vfs::{CONTENTS_SUFFIX, Entry, Options, Vfs};

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

/// The snapshots `selectors` name (`latest` or id prefixes; every snapshot
/// if there are none), each once, passing `selection`, oldest first.
pub fn snapshots(
    repo: &Repository,
    selectors: &[String],
    selection: &Selection,
) -> Result<Vec<(Id, Snapshot)>> {
    let mut snaps: Vec<(Id, Snapshot)> = if selectors.is_empty() {
        load_snapshots(repo)?
    } else {
        let mut seen = std::collections::BTreeSet::new();
        let mut v = Vec::new();
        for sel in selectors {
            let (id, s) = find_snapshot(repo, sel, &SnapshotFilter::default())?;
            if seen.insert(id) {
                v.push((id, s));
            }
        }
        v.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        v
    };
    snaps.retain(|(_, s)| selection.matches(s));
    Ok(snaps)
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

/// What a snapshot path resolves to: a node of the snapshot's trees, or,
/// for a path that enters a disk image's `<name>.contents/` directory, an
/// entry of the virtual tree.
pub enum Target {
    /// A node of the snapshot.
    Node(Box<Node>),
    /// An entry of the virtual tree.
    Tree(Entry),
}

/// True if a component of `path` names a `.contents` directory.
pub fn enters_contents(path: &str) -> bool {
    path.split('/')
        .any(|c| c.len() > CONTENTS_SUFFIX.len() && c.ends_with(CONTENTS_SUFFIX))
}

/// The snapshot and what the path `target` names in it: a snapshot node,
/// or (when the path goes into a disk image's `.contents/` and no real
/// entry has that name) an entry of the virtual tree.
pub fn snapshot_target(
    repo: &Arc<Repository>,
    target: &SnapshotPath,
    selection: &Selection,
    fs: &vaultfs_formats::fs::FsOptions,
) -> Result<(Id, Snapshot, Target)> {
    let (id, snap) = snapshot(repo, &target.snapshot, selection)?;
    match resolve_path(repo, &snap.tree, &target.path) {
        Ok(node) => Ok((id, snap, Target::Node(Box::new(node)))),
        Err(e)
            if e.kind() == vaultfs::error::ErrorKind::NotFound && enters_contents(&target.path) =>
        {
            let options = Options {
                fs: fs.clone(),
                ..Options::default()
            };
            let vfs = Vfs::new(repo.clone(), options);
            let root = vfs.snapshot_root(&id)?;
            let entry = Vfs::resolve_from(&root, &target.path)
                .with_context(|| format!("snapshot {}", id.short()))?;
            Ok((id, snap, Target::Tree(entry)))
        }
        Err(e) => Err(e).with_context(|| format!("snapshot {}", id.short())),
    }
}
