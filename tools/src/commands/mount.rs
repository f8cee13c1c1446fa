//! `mount MOUNTPOINT`: the repository's tree (`ids/`, `snapshots/`,
//! `hosts/`, `tags/`, disk images opened into `.contents/`) as a read-only
//! FUSE filesystem; `mount --image FILE MOUNTPOINT`: a local disk image's
//! contents, no repository needed. Blocks until Ctrl-C, SIGTERM or
//! `fusermount3 -u`, then unmounts and exits 0.
//!
//! While mounted, new snapshots appear in the root directories (the tree
//! re-reads the snapshot list at most every few seconds, and with new
//! snapshots the index files written since, so they read at once).

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
    use std::sync::Arc;
    use std::time::SystemTime;

    use anyhow::{Context, Result};
    use vaultfs::repo::lock;
    use vaultfs::vfs::{self, Options, Vfs};
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
            let root = vfs::image_dir(&image, time, &global.fs);
            vaultfs_mount::serve(root, &plan.mountpoint, &options, ready)?;
            return Ok(Outcome::Ok);
        }
        let repo = Arc::new(crate::open::repository(global)?);
        // A shared lock, refreshed in the background for the mount's life:
        // prune must not remove what the mount may still read.
        let _lock = lock::acquire(&repo, false)?;
        repo.load_index().context("loading the index")?;
        let tree_options = Options {
            fs: global.fs.clone(),
            ..Options::default()
        };
        let tree = Vfs::new(repo, tree_options);
        let root = tree.root();
        vaultfs_mount::serve(root, &plan.mountpoint, &options, ready)?;
        Ok(Outcome::Ok)
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
