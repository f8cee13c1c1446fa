//! Node metadata from the local filesystem: `lstat`, owner names,
//! extended attributes and symlink targets, in restic's node layout.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::{DateTime, FixedOffset, TimeZone};

use crate::snapshot::{ExtendedAttribute, Node, NodeType, mode};

/// The node type of an `lstat` result.
pub fn node_type(md: &Metadata) -> NodeType {
    let ft = md.file_type();
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        NodeType::File
    } else if ft.is_dir() {
        NodeType::Dir
    } else if ft.is_symlink() {
        NodeType::Symlink
    } else if ft.is_block_device() {
        NodeType::Dev
    } else if ft.is_char_device() {
        NodeType::Chardev
    } else if ft.is_fifo() {
        NodeType::Fifo
    } else if ft.is_socket() {
        NodeType::Socket
    } else {
        NodeType::Irregular
    }
}

/// Converts Unix seconds + nanoseconds into a time with the given offset.
pub fn to_time(offset: &FixedOffset, secs: i64, nsecs: i64) -> DateTime<FixedOffset> {
    let ns = u32::try_from(nsecs.clamp(0, 999_999_999)).unwrap_or(0);
    offset
        .timestamp_opt(secs, ns)
        .single()
        .unwrap_or_else(crate::snapshot::node::zero_time)
}

/// A file name as stored: UTF-8, with invalid bytes replaced as Go's JSON
/// encoder would.
pub fn name_of(name: &OsStr) -> String {
    String::from_utf8_lossy(name.as_bytes()).into_owned()
}

/// Builds a node from `lstat` data; `path` is read for the symlink target
/// and extended attributes. Problems reading those are returned as a
/// warning text alongside the node.
pub fn node_from(
    path: &Path,
    name: String,
    md: &Metadata,
    offset: &FixedOffset,
) -> (Node, Option<String>) {
    let t = node_type(md);
    let mut node = Node::new(name, t);
    node.mode = mode::from_unix(md.mode());
    node.mtime = to_time(offset, md.mtime(), md.mtime_nsec());
    node.atime = to_time(offset, md.atime(), md.atime_nsec());
    node.ctime = to_time(offset, md.ctime(), md.ctime_nsec());
    node.uid = md.uid();
    node.gid = md.gid();
    node.user = crate::sys::user_name(md.uid()).unwrap_or_default();
    node.group = crate::sys::group_name(md.gid()).unwrap_or_default();
    node.inode = md.ino();
    node.links = md.nlink();
    let mut warning = None;
    match t {
        NodeType::File => {
            node.size = md.size();
            if md.nlink() > 1 {
                node.device_id = md.dev();
            }
        }
        NodeType::Symlink => match std::fs::read_link(path) {
            Ok(target) => {
                let bytes = target.as_os_str().as_bytes();
                match std::str::from_utf8(bytes) {
                    Ok(s) => node.linktarget = s.to_owned(),
                    Err(_) => {
                        node.linktarget = String::from_utf8_lossy(bytes).into_owned();
                        node.linktarget_raw = Some(bytes.to_vec());
                    }
                }
            }
            Err(e) => warning = Some(format!("reading symlink: {e}")),
        },
        NodeType::Dev | NodeType::Chardev => node.device = md.rdev(),
        _ => {}
    }
    match read_xattrs(path) {
        Ok(x) => node.extended_attributes = x,
        Err(e) => warning = Some(format!("reading extended attributes: {e}")),
    }
    (node, warning)
}

fn read_xattrs(path: &Path) -> std::io::Result<Vec<ExtendedAttribute>> {
    let mut out = Vec::new();
    let names = match xattr::list(path) {
        Ok(n) => n,
        // Filesystems without xattr support simply have none.
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(e),
    };
    for name in names {
        if let Some(value) = xattr::get(path, &name)? {
            out.push(ExtendedAttribute {
                name: name_of(&name),
                value,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
