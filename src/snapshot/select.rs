//! Loading snapshots and resolving the selectors users type: `latest`, an id
//! prefix, optionally narrowed by host, tag and path.

use crate::backend::FileType;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::repo::Repository;

use super::Snapshot;

/// Every snapshot, oldest first. Unreadable snapshot files are errors.
pub fn load_snapshots(repo: &Repository) -> Result<Vec<(Id, Snapshot)>> {
    let ids = repo.list_ids(FileType::Snapshot)?;
    let mut snaps = crate::parallel::map(ids, |id| {
        repo.load_unpacked::<Snapshot>(FileType::Snapshot, &id)
            .map(|s| (id, s))
    })?;
    snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    Ok(snaps)
}

/// Narrows a snapshot list.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// Only snapshots of these hosts (any, if empty).
    pub hosts: Vec<String>,
    /// Only snapshots carrying all of these tags.
    pub tags: Vec<String>,
    /// Only snapshots with exactly these paths (any, if empty).
    pub paths: Vec<String>,
}

impl SnapshotFilter {
    /// Does `s` pass?
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && self.tags.iter().all(|t| s.tags.contains(t))
            && (self.paths.is_empty() || {
                let mut a = self.paths.clone();
                let mut b = s.paths.clone();
                a.sort();
                b.sort();
                a == b
            })
    }
}

/// Resolves `latest` or an id prefix among the snapshots passing `filter`.
pub fn find_snapshot(
    repo: &Repository,
    selector: &str,
    filter: &SnapshotFilter,
) -> Result<(Id, Snapshot)> {
    if selector == "latest" {
        return load_snapshots(repo)?
            .into_iter()
            .rev()
            .find(|(_, s)| filter.matches(s))
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no snapshot found (latest)"));
    }
    if selector.is_empty() || !selector.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid snapshot {selector:?}: use `latest` or a hex id prefix"),
        ));
    }
    let id = repo
        .find_id(FileType::Snapshot, selector)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::new(
                ErrorKind::NotFound,
                format!("no snapshot matches {selector:?}"),
            ),
            _ => e,
        })?;
    let snap = repo.load_unpacked::<Snapshot>(FileType::Snapshot, &id)?;
    Ok((id, snap))
}
