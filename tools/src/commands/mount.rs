//! `mount MOUNTPOINT`: the repository's tree (`ids/`, `snapshots/`,
//! `hosts/`, `tags/`, disk images opened into `.contents/`) as a read-only
//! FUSE filesystem; `mount --image FILE MOUNTPOINT`: a local disk image's
//! contents, no repository needed. Blocks until Ctrl-C, SIGTERM or
//! `fusermount3 -u`, then unmounts and exits 0.
//!
//! While mounted, new snapshots appear in the root directories (the tree
//! re-reads the snapshot list at most every few seconds); before each such
//! listing the index files written since are loaded, so a new snapshot's
//! trees and data can be read as soon as it is listed.

use std::path::Path;

use anyhow::Result;

use crate::exit::Outcome;
use crate::plan::{Global, MountPlan};

/// Mounts and serves until unmounted.
pub fn run(global: &Global, plan: &MountPlan) -> Result<Outcome> {
    imp::run(global, plan)
}

fn announce(mountpoint: &Path) {
    eprintln!(
        "mounted at {}; Ctrl-C or fusermount3 -u to unmount",
        mountpoint.display()
    );
}

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::SystemTime;

    use anyhow::{Context, Result};
    use parking_lot::Mutex;
    use vaultfs::Id;
    use vaultfs::backend::FileType;
    use vaultfs::repo::pack::PackedBlob;
    use vaultfs::repo::{IndexFile, Repository, lock};
    use vaultfs::vfs::{self, Dir, Entry, Listing, Options, Vfs};
    use vaultfs_mount::MountOptions;

    use super::announce;
    use crate::exit::Outcome;
    use crate::plan::{Global, MountPlan};

    pub fn run(global: &Global, plan: &MountPlan) -> Result<Outcome> {
        let options = MountOptions {
            allow_other: plan.allow_other,
            ..MountOptions::default()
        };
        let ready = || announce(&plan.mountpoint);
        if let Some(file) = &plan.image {
            let image = crate::commands::image::open(file)?;
            let time = std::fs::metadata(file)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now());
            let root = vfs::image_dir(&image, time);
            vaultfs_mount::serve(root, &plan.mountpoint, &options, ready)?;
            return Ok(Outcome::Ok);
        }
        let repo = Arc::new(crate::open::repository(global)?);
        // A shared lock, refreshed in the background for the mount's life:
        // prune must not remove what the mount may still read.
        let _lock = lock::acquire(&repo, false)?;
        let sync = Arc::new(IndexSync::new(repo.clone())?);
        let tree = Vfs::new(repo, Options::default());
        let root = synced(tree.root(), &sync, 0);
        vaultfs_mount::serve(root, &plan.mountpoint, &options, ready)?;
        Ok(Outcome::Ok)
    }

    /// Keeps the in-memory index up to date with index files written after
    /// the mount (by a backup running meanwhile).
    struct IndexSync {
        repo: Arc<Repository>,
        seen: Mutex<HashSet<Id>>,
    }

    impl IndexSync {
        /// Loads the whole index.
        fn new(repo: Arc<Repository>) -> Result<IndexSync> {
            let seen = repo.list_ids(FileType::Index)?;
            repo.load_index().context("loading the index")?;
            Ok(IndexSync {
                repo,
                seen: Mutex::new(seen.into_iter().collect()),
            })
        }

        /// Loads the index files not seen yet. One caller at a time, so a
        /// lister waits for a load under way instead of racing past it.
        fn sync(&self) {
            let mut seen = self.seen.lock();
            let ids = match self.repo.list_ids(FileType::Index) {
                Ok(ids) => ids,
                Err(e) => {
                    eprintln!("vaultfs: listing index files: {e}");
                    return;
                }
            };
            for id in ids {
                if seen.contains(&id) {
                    continue;
                }
                match self.repo.load_unpacked::<IndexFile>(FileType::Index, &id) {
                    Ok(file) => {
                        for p in &file.packs {
                            let blobs: Vec<PackedBlob> = p
                                .blobs
                                .iter()
                                .map(|b| PackedBlob {
                                    blob_type: b.blob_type.into(),
                                    id: b.id,
                                    offset: b.offset,
                                    length: b.length,
                                    uncompressed_length: b.uncompressed_length,
                                })
                                .collect();
                            self.repo.index_pack(p.id, &blobs);
                        }
                        seen.insert(id);
                    }
                    // Tried again at the next listing (it may be half
                    // written).
                    Err(e) => eprintln!("vaultfs: index {}: {e}", id.short()),
                }
            }
        }
    }

    /// A root directory (the top or `ids/`, `snapshots/`, `hosts/`,
    /// `tags/`: the ones whose listing can re-read the snapshot list) that
    /// brings the index up to date before it is listed.
    struct SyncedDir {
        inner: Arc<dyn Dir>,
        sync: Arc<IndexSync>,
        depth: u32,
        /// The last inner listing and its wrapped form.
        cache: Mutex<Option<(Arc<Listing>, Arc<Listing>)>>,
    }

    /// Wraps `entry` if it is a directory at depth 0 or 1.
    fn synced(entry: Entry, sync: &Arc<IndexSync>, depth: u32) -> Entry {
        match entry {
            Entry::Dir(inner) if depth <= 1 => Entry::Dir(Arc::new(SyncedDir {
                inner,
                sync: sync.clone(),
                depth,
                cache: Mutex::new(None),
            })),
            other => other,
        }
    }

    impl Dir for SyncedDir {
        fn attr(&self) -> vfs::Attr {
            self.inner.attr()
        }

        fn list(&self) -> vaultfs::Result<Arc<Listing>> {
            self.sync.sync();
            let listing = self.inner.list()?;
            let mut cache = self.cache.lock();
            if let Some((inner, wrapped)) = &*cache
                && Arc::ptr_eq(inner, &listing)
            {
                return Ok(wrapped.clone());
            }
            let wrapped = Arc::new(Listing::new(
                listing
                    .entries()
                    .iter()
                    .map(|(n, e)| (n.clone(), synced(e.clone(), &self.sync, self.depth + 1)))
                    .collect(),
            ));
            *cache = Some((listing, wrapped.clone()));
            Ok(wrapped)
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use anyhow::{Result, bail};

    use crate::exit::Outcome;
    use crate::plan::{Global, MountPlan};

    pub fn run(_global: &Global, _plan: &MountPlan) -> Result<Outcome> {
        let _ = super::announce;
        bail!("mount is only supported on Linux (FUSE)")
    }
}
