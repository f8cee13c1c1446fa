//! What to do with an entry that already exists at a restore destination:
//! the `--overwrite` policy and the per-entry decision made while planning.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use crate::snapshot::Node;

/// When an existing local entry is replaced by the snapshot's version
/// (restic's `--overwrite`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    /// Always replace existing entries.
    #[default]
    Always,
    /// Replace unless it is a regular file whose size and mtime match the
    /// snapshot's (then only its metadata is restored).
    IfChanged,
    /// Replace only if the snapshot's mtime is newer than the existing one.
    IfNewer,
    /// Never replace existing entries.
    Never,
}

impl Overwrite {
    /// Parses `always`, `if-changed`, `if-newer` or `never`.
    pub fn parse(s: &str) -> Option<Overwrite> {
        match s {
            "always" => Some(Overwrite::Always),
            "if-changed" => Some(Overwrite::IfChanged),
            "if-newer" => Some(Overwrite::IfNewer),
            "never" => Some(Overwrite::Never),
            _ => None,
        }
    }

    /// The name [`Overwrite::parse`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Overwrite::Always => "always",
            Overwrite::IfChanged => "if-changed",
            Overwrite::IfNewer => "if-newer",
            Overwrite::Never => "never",
        }
    }
}

/// The plan for one destination path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing is there: create it.
    Create,
    /// Something is there: remove it, then create.
    Replace,
    /// A directory is there and a directory is wanted: restore into it.
    Merge,
    /// The existing file matches (`IfChanged`): restore metadata only.
    Unchanged,
    /// Leave the existing entry alone.
    Skip,
}

impl Action {
    /// Will a new entry be created at the path (so nothing exists below it)?
    pub(crate) fn creates(self) -> bool {
        matches!(self, Action::Create | Action::Replace)
    }
}

/// `(seconds, nanoseconds)` of the node's mtime.
fn node_mtime(node: &Node) -> (i64, i64) {
    (
        node.mtime.timestamp(),
        i64::from(node.mtime.timestamp_subsec_nanos()),
    )
}

/// Decides what to do for `node` given what `lstat` found at its path.
pub(crate) fn decide(policy: Overwrite, node: &Node, existing: Option<&Metadata>) -> Action {
    let Some(m) = existing else {
        return Action::Create;
    };
    if node.is_dir() && m.file_type().is_dir() {
        return Action::Merge;
    }
    let local_mtime = (m.mtime(), m.mtime_nsec());
    match policy {
        Overwrite::Always => Action::Replace,
        Overwrite::IfChanged
            if node.is_file()
                && m.file_type().is_file()
                && m.len() == node.size
                && local_mtime == node_mtime(node) =>
        {
            Action::Unchanged
        }
        Overwrite::IfChanged => Action::Replace,
        Overwrite::IfNewer if node_mtime(node) > local_mtime => Action::Replace,
        Overwrite::IfNewer | Overwrite::Never => Action::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::NodeType;
    use chrono::DateTime;
    use filetime::FileTime;

    fn file_node(size: u64, mtime: &str) -> Node {
        let mut n = Node::new("f", NodeType::File);
        n.size = size;
        n.mtime = DateTime::parse_from_rfc3339(mtime).expect("time");
        n
    }

    #[test]
    fn policies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").expect("write");
        let t = FileTime::from_unix_time(1_600_000_000, 500);
        filetime::set_file_mtime(&p, t).expect("mtime");
        let m = std::fs::symlink_metadata(&p).expect("lstat");
        let same = file_node(5, "2020-09-13T12:26:40.0000005Z");
        let newer = file_node(5, "2020-09-13T12:26:41Z");
        let older = file_node(5, "2020-09-13T12:26:39Z");
        let bigger = file_node(6, "2020-09-13T12:26:40.0000005Z");

        assert_eq!(decide(Overwrite::Never, &same, None), Action::Create);
        assert_eq!(decide(Overwrite::Always, &same, Some(&m)), Action::Replace);
        assert_eq!(decide(Overwrite::Never, &newer, Some(&m)), Action::Skip);
        assert_eq!(
            decide(Overwrite::IfChanged, &same, Some(&m)),
            Action::Unchanged
        );
        assert_eq!(
            decide(Overwrite::IfChanged, &bigger, Some(&m)),
            Action::Replace
        );
        assert_eq!(
            decide(Overwrite::IfChanged, &newer, Some(&m)),
            Action::Replace
        );
        assert_eq!(
            decide(Overwrite::IfNewer, &newer, Some(&m)),
            Action::Replace
        );
        assert_eq!(decide(Overwrite::IfNewer, &older, Some(&m)), Action::Skip);
        assert_eq!(decide(Overwrite::IfNewer, &same, Some(&m)), Action::Skip);

        let d = std::fs::symlink_metadata(dir.path()).expect("lstat dir");
        let dnode = Node::new("d", NodeType::Dir);
        assert_eq!(decide(Overwrite::Never, &dnode, Some(&d)), Action::Merge);
        assert_eq!(decide(Overwrite::Always, &dnode, Some(&m)), Action::Replace);
        assert_eq!(decide(Overwrite::Always, &same, Some(&d)), Action::Replace);

        for o in [
            Overwrite::Always,
            Overwrite::IfChanged,
            Overwrite::IfNewer,
            Overwrite::Never,
        ] {
            assert_eq!(Overwrite::parse(o.as_str()), Some(o));
        }
        assert_eq!(Overwrite::parse("sometimes"), None);
    }
}
