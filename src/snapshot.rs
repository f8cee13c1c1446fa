//! restic-compatible snapshot, tree and node types (the JSON stored in
//! `snapshots/` files and tree blobs), and the snapshot selectors of the CLI.

pub mod mode;
pub mod node;
pub mod select;
pub mod tree;
pub mod walk;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::id::{Id, TreeId};
pub use node::{ExtendedAttribute, Node, NodeType};
pub use select::{find_snapshot, load_snapshots};
pub use tree::Tree;

/// A snapshot file's JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// When the backup started.
    pub time: DateTime<FixedOffset>,
    /// The snapshot used for change detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    /// The root tree.
    pub tree: TreeId,
    /// The paths that were backed up.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// User name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// uid of the user.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    /// gid of the user.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u32,
    /// Exclude patterns used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The snapshot this one is a modified copy of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    /// Writer program and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_version: Option<String>,
    /// Backup statistics (restic >= 0.17 writes this too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SnapshotSummary>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Statistics of the backup that made a snapshot (restic's field names).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SnapshotSummary {
    /// Start of the backup.
    pub backup_start: DateTime<FixedOffset>,
    /// End of the backup.
    pub backup_end: DateTime<FixedOffset>,
    /// Files not in the parent.
    pub files_new: u64,
    /// Files changed since the parent.
    pub files_changed: u64,
    /// Files unchanged.
    pub files_unmodified: u64,
    /// Directories not in the parent.
    pub dirs_new: u64,
    /// Directories changed.
    pub dirs_changed: u64,
    /// Directories unchanged.
    pub dirs_unmodified: u64,
    /// Blobs added.
    pub data_blobs: u64,
    /// Tree blobs added.
    pub tree_blobs: u64,
    /// Plaintext bytes added.
    pub data_added: u64,
    /// Bytes added to the repository (after compression, with overhead).
    pub data_added_packed: u64,
    /// Files processed.
    pub total_files_processed: u64,
    /// Bytes of files processed.
    pub total_bytes_processed: u64,
}
