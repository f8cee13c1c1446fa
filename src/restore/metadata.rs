//! Node metadata on local files: owner, mode, extended attributes, times;
//! and the creation of symlinks, fifos and device nodes.
//!
//! The order matters: the owner first (a `chown` clears setuid/setgid),
//! then the mode, then xattrs, and the times last. Nothing here follows a
//! symlink. Failures are warnings: the entry exists, only some of its
//! metadata could not be set.

use std::ffi::OsStr;
use std::fs::{File, Permissions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use filetime::FileTime;
use nix::sys::stat::{Mode, SFlag};
use xattr::FileExt as _;

use super::report::Report;
use crate::snapshot::node::zero_time;
use crate::snapshot::{Node, NodeType};

/// A restored time, or `None` for Go's zero time (unknown).
fn file_time(t: &DateTime<FixedOffset>) -> Option<FileTime> {
    (*t != zero_time()).then(|| FileTime::from_unix_time(t.timestamp(), t.timestamp_subsec_nanos()))
}

/// Like `cp -a` and `rsync -a` (and restic), a refused `chown` is only
/// worth a warning when running as root.
fn owner_result(r: io::Result<()>, path: &str, node: &Node, report: &Report<'_>) {
    if let Err(e) = r {
        let not_root = !nix::unistd::geteuid().is_root();
        if not_root && e.kind() == io::ErrorKind::PermissionDenied {
            return;
        }
        report.warning(format!(
            "{path}: setting owner {}:{}: {e}",
            node.uid, node.gid
        ));
    }
}

fn warn(r: io::Result<()>, path: &str, what: &str, report: &Report<'_>) {
    if let Err(e) = r {
        report.warning(format!("{path}: setting {what}: {e}"));
    }
}

/// Restores the metadata of the open regular file `f`.
pub(crate) fn apply_to_file(f: &File, node: &Node, path: &str, report: &Report<'_>) {
    owner_result(
        std::os::unix::fs::fchown(f, Some(node.uid), Some(node.gid)),
        path,
        node,
        report,
    );
    warn(
        f.set_permissions(Permissions::from_mode(node.unix_perm())),
        path,
        "mode",
        report,
    );
    for a in &node.extended_attributes {
        let what = format!("extended attribute {}", a.name);
        warn(f.set_xattr(&a.name, &a.value), path, &what, report);
    }
    let (atime, mtime) = (file_time(&node.atime), file_time(&node.mtime));
    if atime.is_some() || mtime.is_some() {
        warn(
            filetime::set_file_handle_times(f, atime, mtime),
            path,
            "times",
            report,
        );
    }
}

/// Restores the metadata of `target` (a directory, symlink, fifo or device)
/// without following it if it is a symlink.
pub(crate) fn apply_to_path(target: &Path, node: &Node, path: &str, report: &Report<'_>) {
    let (uid, gid) = (Some(node.uid), Some(node.gid));
    owner_result(
        std::os::unix::fs::lchown(target, uid, gid),
        path,
        node,
        report,
    );
    if node.node_type != NodeType::Symlink {
        let perm = Permissions::from_mode(node.unix_perm());
        warn(std::fs::set_permissions(target, perm), path, "mode", report);
    }
    for a in &node.extended_attributes {
        let what = format!("extended attribute {}", a.name);
        warn(xattr::set(target, &a.name, &a.value), path, &what, report);
    }
    let times = match (file_time(&node.atime), file_time(&node.mtime)) {
        (Some(a), Some(m)) => Some((a, m)),
        (Some(t), None) | (None, Some(t)) => Some((t, t)),
        (None, None) => None,
    };
    if let Some((a, m)) = times {
        warn(
            filetime::set_symlink_file_times(target, a, m),
            path,
            "times",
            report,
        );
    }
}

/// Creates symlink `target` pointing where `node` points.
pub(crate) fn create_symlink(target: &Path, node: &Node) -> io::Result<()> {
    let dest = node.link_target_bytes();
    std::os::unix::fs::symlink(OsStr::from_bytes(&dest), target)
}

/// Creates fifo or device node `target` for `node`.
pub(crate) fn create_special(target: &Path, node: &Node) -> io::Result<()> {
    let perm = Mode::from_bits_truncate(node.unix_perm() & 0o777);
    let kind = match node.node_type {
        NodeType::Fifo => return Ok(nix::unistd::mkfifo(target, perm)?),
        NodeType::Dev => SFlag::S_IFBLK,
        NodeType::Chardev => SFlag::S_IFCHR,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("cannot create a node of type {other:?}"),
            ));
        }
    };
    Ok(nix::sys::stat::mknod(target, kind, perm, node.device)?)
}
