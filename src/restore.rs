//! Restore: writes a snapshot's directory (or one file) to a local target
//! directory — contents, symlinks, hard links, fifos and devices, modes,
//! owners, times and extended attributes.
//!
//! The work runs in stages, so that each one sees the state it needs:
//!
//! 1. plan: walk the snapshot, apply the filter, look at what
//!    already exists at each destination and decide per entry (see
//!    [`Overwrite`]); nothing is written yet;
//! 2. create the directories, parents first;
//! 3. create symlinks, fifos and devices;
//! 4. write file contents on [`crate::parallel::workers`] threads, blob by
//!    blob, with runs of zeros left as holes;
//! 5. create hard links to the files they share an inode with;
//! 6. set directory metadata, children before parents, so that writing
//!    into a directory does not change its restored mtime afterwards.
//!
//! Every blob is verified by [`Repository::load_blob`]. An entry that
//! cannot be restored (a damaged or missing blob, a failed write) is an
//! error in the summary naming its path and the cause (the blob id for
//! damage); a file that fails is removed rather than left with wrong bytes,
//! and the restore goes on with the other entries. The caller decides the
//! exit status from [`RestoreSummary::has_errors`]. What cannot be set up
//! fully gives warnings: xattrs the filesystem refuses, devices without the
//! privilege to make them, owners when running as root (as a user, a
//! refused `chown` is expected and ignored). Sockets are not restored.
//! Only failures that make the whole restore impossible (an unusable
//! target, an unreadable root tree) are returned as `Err`.
//!
//! [`archive`] writes the same selection as a tar, tar.gz or zip stream
//! instead of into a directory.
//!
//! Filter paths are the paths below the restored node with a leading `/`:
//! the snapshot's paths when the whole snapshot is restored, e.g.
//! `/home/u/file`. A directory's own metadata is restored with its
//! contents; the target directory itself is left as it is.

pub mod archive;
mod content;
mod metadata;
mod nodes;
mod overwrite;
mod plan;
mod report;
mod tree;
pub use tree::restore_entry;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::repo::Repository;
use crate::snapshot::Node;
pub use overwrite::Overwrite;

/// At most this many error and this many warning messages are kept in a
/// [`RestoreSummary`], so a restore of a badly damaged vault stays bounded in
/// memory; the counts stay exact and the progress sink sees every message.
pub const MAX_MESSAGES: usize = 1000;

/// What to restore where, and how.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The directory to restore into (created if missing).
    pub target: PathBuf,
    /// Include/exclude rules, matched against paths below the restored node.
    pub filter: Filter,
    /// What to do with entries that exist already.
    pub overwrite: Overwrite,
    /// Read, decrypt, decompress and verify every blob of every selected
    /// file (also of files the overwrite policy would leave alone), and
    /// write nothing; the summary tells what would have been restored.
    pub dry_run: bool,
}

impl RestoreOptions {
    /// Restore everything into `target`, replacing existing entries.
    pub fn new(target: impl Into<PathBuf>) -> RestoreOptions {
        RestoreOptions {
            target: target.into(),
            filter: Filter::all(),
            overwrite: Overwrite::Always,
            dry_run: false,
        }
    }
}

/// The outcome of a restore (in a dry run: what would have been restored).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreSummary {
    /// Nothing was written.
    pub dry_run: bool,
    /// Regular files whose content was written (or verified, in a dry run).
    pub files_restored: u64,
    /// Directories created or restored into.
    pub dirs_restored: u64,
    /// Symbolic links created.
    pub symlinks_restored: u64,
    /// Hard links created to files restored before.
    pub hardlinks_restored: u64,
    /// Fifos and device nodes created.
    pub specials_restored: u64,
    /// Existing non-directory entries left alone because of the overwrite
    /// policy.
    pub files_skipped: u64,
    /// Existing files whose size and mtime matched (`if-changed`): only
    /// their metadata was restored.
    pub files_unchanged: u64,
    /// Bytes of file content restored (holes included).
    pub bytes_written: u64,
    /// Number of errors (entries not restored).
    pub error_count: u64,
    /// Number of warnings (entries restored without some metadata).
    pub warning_count: u64,
    /// Error messages (the first [`MAX_MESSAGES`]).
    pub errors: Vec<String>,
    /// Warning messages (the first [`MAX_MESSAGES`]).
    pub warnings: Vec<String>,
    /// Wall-clock seconds.
    pub duration_secs: f64,
}

impl RestoreSummary {
    /// Did any entry fail?
    pub fn has_errors(&self) -> bool {
        self.error_count > 0
    }

    /// Was anything restored incompletely?
    pub fn has_warnings(&self) -> bool {
        self.warning_count > 0
    }
}

/// Receives progress while a restore runs; called from several threads.
/// All methods have empty defaults.
pub trait RestoreProgress: Sync {
    /// The plan is made: this many files and content bytes will be restored.
    fn totals(&self, _files: u64, _bytes: u64) {}
    /// More content bytes were written (or verified).
    fn bytes_done(&self, _bytes: u64) {}
    /// A file is complete (`path` inside the snapshot).
    fn file_done(&self, _path: &str) {}
    /// An entry could not be restored.
    fn error(&self, _message: &str) {}
    /// An entry was restored without some of its metadata.
    fn warning(&self, _message: &str) {}
}

/// A progress sink that ignores everything.
pub struct NoRestoreProgress;
impl RestoreProgress for NoRestoreProgress {}

/// Restores `root` (a node from [`crate::snapshot::walk::resolve_path`]):
/// a directory's contents go into `opts.target`; any other node goes into
/// `opts.target` under its own name.
pub fn restore(
    repo: &Arc<Repository>,
    root: &Node,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreSummary> {
    restore_with(repo, root, opts, progress, content::SEGMENT_BYTES)
}

/// [`restore`] with a given size of the units of parallel content work.
fn restore_with(
    repo: &Arc<Repository>,
    root: &Node,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
    segment_bytes: u64,
) -> Result<RestoreSummary> {
    let start = Instant::now();
    prepare_target(opts)?;
    let report = report::Report::new(progress, opts.dry_run);
    let plan = plan::make(repo, root, opts, &report)?;
    progress.totals(plan.file_count(), plan.file_bytes());
    let dirs_ok = nodes::create_dirs(&plan, opts, &report);
    nodes::create_others(&plan, &dirs_ok, opts, &report);
    let present = content::restore_files(repo, &plan, &dirs_ok, opts, &report, segment_bytes);
    nodes::create_links(&plan, &dirs_ok, &present, opts, &report);
    nodes::finish_dirs(&plan, &dirs_ok, opts, &report);
    Ok(report.into_summary(start.elapsed().as_secs_f64()))
}

fn prepare_target(opts: &RestoreOptions) -> Result<()> {
    let t = &opts.target;
    let what = || format!("restore target {}", t.display());
    match std::fs::metadata(t) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} exists and is not a directory", what()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.dry_run => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(t)
            .map_err(|e| Error::with_source(ErrorKind::Io, format!("creating {}: {e}", what()), e)),
        Err(e) => Err(Error::with_source(
            ErrorKind::Io,
            format!("{}: {e}", what()),
            e,
        )),
    }
}
