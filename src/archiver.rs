//! Backup of files and folders into a snapshot.
//!
//! The walk (on the calling thread) reads metadata, applies filters and the
//! system exclusions, and compares each file with the parent snapshot;
//! files that must be read go to reader threads that chunk them; workers
//! hash, compress and encrypt the chunks in parallel; the [`BlobSaver`]
//! packs them. Trees are assembled bottom-up once every file's content ids
//! are known.
//!
//! [`BlobSaver`]: crate::repo::saver::BlobSaver

mod build;
pub mod disk;
mod finalize;
mod meta;
mod pipeline;
pub mod stream;
#[cfg(test)]
mod tests;
mod walk;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::filter::Filter;
use crate::id::Id;

pub use build::backup;
pub use walk::SYSTEM_EXCLUDES;

/// Which snapshot to compare with for change detection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The latest snapshot of the same host and paths.
    #[default]
    Auto,
    /// No parent: read every file.
    None,
    /// This snapshot (`latest` or an id prefix).
    Snapshot(String),
}

/// What to back up and how.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// Host name recorded in the snapshot (default: this machine's).
    pub host: Option<String>,
    /// Tags recorded in the snapshot.
    pub tags: Vec<String>,
    /// Include/exclude rules, matched against absolute paths.
    pub filter: Filter,
    /// The exclude patterns as typed, recorded in the snapshot.
    pub excludes: Vec<String>,
    /// Parent snapshot for change detection.
    pub parent: ParentChoice,
    /// Read every file even if size, mtime and inode match the parent.
    pub rescan_unchanged: bool,
    /// Skip `/proc`, `/sys`, `/dev`, `/selinux`, `/run` unless named explicitly.
    pub system_excludes: bool,
    /// Do not cross filesystem boundaries below the given paths.
    pub one_file_system: bool,
}

impl BackupOptions {
    /// Options for `paths` with every default.
    pub fn new(paths: Vec<PathBuf>) -> BackupOptions {
        BackupOptions {
            paths,
            host: None,
            tags: Vec::new(),
            filter: Filter::all(),
            excludes: Vec::new(),
            parent: ParentChoice::Auto,
            rescan_unchanged: false,
            system_excludes: true,
            one_file_system: false,
        }
    }
}

/// Receives progress while a backup runs. All methods have empty defaults.
pub trait Progress: Sync {
    /// More files/bytes were found by the walk (totals grow as it goes).
    fn scanned(&self, _files: u64, _bytes: u64) {}
    /// Files/bytes finished (read, or found unchanged).
    fn processed(&self, _files: u64, _bytes: u64) {}
    /// A file or directory could not be read; the backup goes on.
    fn warning(&self, _path: &Path, _message: &str) {}
    /// A command whose output is backed up wrote this on its stderr; by
    /// default it is passed on to ours.
    fn stderr(&self, data: &[u8]) {
        use std::io::Write;
        let _ = std::io::stderr().write_all(data);
    }
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// The outcome of a backup.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BackupSummary {
    /// The new snapshot.
    pub snapshot_id: Id,
    /// The parent used for change detection.
    pub parent: Option<Id>,
    /// Files not in the parent.
    pub files_new: u64,
    /// Files whose metadata differed from the parent.
    pub files_changed: u64,
    /// Files taken from the parent without reading.
    pub files_unmodified: u64,
    /// Directories not in the parent.
    pub dirs_new: u64,
    /// Directories whose tree changed.
    pub dirs_changed: u64,
    /// Directories whose tree is unchanged.
    pub dirs_unmodified: u64,
    /// New data blobs.
    pub data_blobs: u64,
    /// New tree blobs.
    pub tree_blobs: u64,
    /// Plaintext bytes added.
    pub data_added: u64,
    /// Bytes added to the repository (compressed and encrypted).
    pub data_added_packed: u64,
    /// Files processed.
    pub total_files_processed: u64,
    /// Bytes of files processed.
    pub total_bytes_processed: u64,
    /// Wall-clock seconds.
    pub duration_secs: f64,
    /// Warnings (unreadable files and directories, a command's stderr).
    pub warnings: Vec<String>,
    /// `--stdin-from-command`: the command, its exit status and how much it
    /// wrote on stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<stream::CommandReport>,
}
