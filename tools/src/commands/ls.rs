//! `ls`: list the paths in a snapshot, recursively, as restic does: one
//! absolute path per line; with `-l` restic's long format (Go-style
//! permissions, owner, group, size, local mtime, path, `-> target`); with
//! `--json` one object per line, the snapshot first, then every node.
//!
//! A directory whose tree is missing or damaged is reported on stderr and
//! listed without its contents; the listing goes on and the command fails
//! at the end, so the damage is never mistaken for an empty directory.

use std::io::{self, BufWriter, StdoutLock, Write};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use vaultfs::repo::lock;
use vaultfs::snapshot::mode::{
    MODE_CHAR_DEVICE, MODE_DEVICE, MODE_DIR, MODE_NAMED_PIPE, MODE_SOCKET, MODE_SYMLINK,
};
use vaultfs::snapshot::walk::{Visitor, WalkControl, walk};
use vaultfs::snapshot::{Node, NodeType, Snapshot};
use vaultfs::vfs::{Entry, Kind};
use vaultfs_formats::fs::Filesystem;

use crate::exit::Outcome;
use crate::output;
use crate::plan::{Global, LsImagePlan, LsPlan};

/// Volumes whose warnings a listing keeps for its end, at most.
const MAX_VOLUMES: usize = 1000;

/// The snapshot line of `--json` (restic's `lsSnapshot`).
#[derive(Serialize)]
struct JsonSnapshot<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    id: String,
    short_id: String,
    message_type: &'static str,
    struct_type: &'static str,
}

/// A node line of `--json` (restic's `lsNode`).
#[derive(Serialize)]
struct JsonNode<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    node_type: NodeType,
    path: &'a str,
    uid: u32,
    gid: u32,
    /// Only files have a size, as in restic.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    mode: u32,
    permissions: String,
    mtime: &'a DateTime<FixedOffset>,
    atime: &'a DateTime<FixedOffset>,
    ctime: &'a DateTime<FixedOffset>,
    #[serde(skip_serializing_if = "is_zero_u64")]
    inode: u64,
    message_type: &'static str,
    struct_type: &'static str,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// How each node is printed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Paths,
    Long { human: bool },
    Json,
}

/// Lists the snapshot's paths.
pub fn run(global: &Global, plan: &LsPlan) -> Result<Outcome> {
    let out = &global.output;
    let repo = Arc::new(crate::open::repository(global)?);
    let _lock = lock::acquire(&repo, false)?;
    repo.load_index().context("loading the index")?;
    let (id, snap, target) =
        crate::open::snapshot_target(&repo, &plan.target, &plan.selection, &global.fs)?;
    let format = if out.json {
        Format::Json
    } else if plan.long {
        Format::Long {
            human: plan.human_readable,
        }
    } else {
        Format::Paths
    };
    let mut lister = Lister {
        out: BufWriter::new(io::stdout().lock()),
        format,
        // The snapshot's root has no path of its own to print; a path the
        // user named is listed itself, then what is below it.
        skip_root: plan.target.path == "/",
        details: plan.details,
        write_error: None,
        damaged: 0,
        hint: None,
        volumes: Vec::new(),
    };
    if format == Format::Json {
        let line = JsonSnapshot {
            snapshot: &snap,
            id: id.to_hex(),
            short_id: id.short(),
            message_type: "snapshot",
            struct_type: "snapshot",
        };
        serde_json::to_writer(&mut lister.out, &line)?;
        lister.out.write_all(b"\n")?;
    } else if out.text() {
        let filtered = if plan.target.explicit_path {
            format!(" filtered by [{}]", plan.target.path)
        } else {
            String::new()
        };
        writeln!(
            lister.out,
            "snapshot {} of [{}] at {}{filtered}:",
            id.short(),
            snap.paths.join(" "),
            output::local_time(&snap.time)
        )?;
    }
    if plan.deleted && matches!(target, crate::open::Target::Node(_)) {
        bail!(
            "{}: --deleted needs the directory of a volume inside a disk image \
             (like .../disk.vmdk.contents/p2)",
            plan.target.path
        );
    }
    match &target {
        crate::open::Target::Node(node) => walk(&repo, node, &plan.target.path, &mut lister)
            .with_context(|| format!("snapshot {}", id.short()))?,
        crate::open::Target::Tree(entry) if plan.deleted => {
            lister.deleted(plan.target.path.trim_end_matches('/'), entry)?;
        }
        crate::open::Target::Tree(entry) => {
            let path = plan.target.path.trim_end_matches('/');
            let name = path.rsplit('/').next().unwrap_or_default();
            lister.walk_tree(path, name, entry);
        }
    }
    lister.finish()
}

/// `ls --image FILE[:PATH]`: lists a local disk image's contents, or the
/// part below PATH, as `mount --image` shows them.
pub fn run_image(global: &Global, plan: &LsImagePlan) -> Result<Outcome> {
    let entry = crate::commands::image::entry(&plan.entry, &global.fs)?;
    let format = if global.output.json {
        Format::Json
    } else if plan.long {
        Format::Long {
            human: plan.human_readable,
        }
    } else {
        Format::Paths
    };
    let mut lister = Lister {
        out: BufWriter::new(io::stdout().lock()),
        format,
        skip_root: false,
        details: plan.details,
        write_error: None,
        damaged: 0,
        hint: None,
        volumes: Vec::new(),
    };
    let path = format!("/{}", plan.entry.entry);
    if plan.deleted {
        lister.deleted(&path, &entry)?;
    } else if plan.entry.entry.is_empty() {
        if let Entry::Dir(d) = &entry {
            let listing = d
                .list()
                .with_context(|| format!("{}", plan.entry.file.display()))?;
            for (name, e) in listing.entries() {
                lister.walk_tree(&format!("/{name}"), name, e);
            }
        }
    } else {
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        lister.walk_tree(&path, &name, &entry);
    }
    lister.finish()
}

/// An extended attribute's value for the listing: as text when it is
/// UTF-8 without control characters, else `0x` and hex (as `getfattr -e
/// hex` writes it).
fn xattr_text(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

/// The walk's visitor: prints each node as it comes.
struct Lister<'a> {
    out: BufWriter<StdoutLock<'a>>,
    format: Format,
    skip_root: bool,
    /// Print the forensic details of tree entries.
    details: bool,
    /// A failed write to stdout (often a closed pipe) ends the walk; the
    /// error is returned once the walk is over.
    write_error: Option<io::Error>,
    /// Directories whose trees could not be loaded.
    damaged: u64,
    /// Advice already given for one of their errors.
    hint: Option<&'static str>,
    /// The volumes listed (their root's path), whose warnings (damage
    /// worked around, checksum mismatches ignored) are printed at the end.
    volumes: Vec<(String, Arc<dyn Filesystem>)>,
}

impl Lister<'_> {
    /// Ends the listing: a failed write, or directories that could not be
    /// read, make it an error.
    fn finish(mut self) -> Result<Outcome> {
        if let Some(e) = self.write_error.take() {
            return Err(e).context("writing the listing");
        }
        self.out.flush().context("writing the listing")?;
        for (path, fs) in &self.volumes {
            for w in fs.info().warnings {
                eprintln!("warning: {path}: {w}");
            }
        }
        if self.damaged > 0 {
            let n = self.damaged;
            let what = if n == 1 {
                "directory could not be read; its contents are"
            } else {
                "directories could not be read; their contents are"
            };
            bail!("{n} {what} missing from the listing");
        }
        Ok(Outcome::Ok)
    }

    /// Prints a tree entry, with its details when asked for.
    fn print_entry(&mut self, path: &str, node: &Node, entry: &Entry) -> io::Result<()> {
        if !self.details {
            return self.print(path, node);
        }
        let mut details = entry
            .details()
            .unwrap_or_else(|e| vec![("error".to_string(), e.to_string())]);
        let xattrs: Vec<(String, String)> = match entry.xattrs() {
            Ok(x) => x
                .into_iter()
                .map(|x| (x.name, xattr_text(&x.value)))
                .collect(),
            Err(e) => {
                details.push(("xattr.error".to_string(), e.to_string()));
                Vec::new()
            }
        };
        self.print_detailed(path, node, Some(details), xattrs)
    }

    /// Prints a node with its details (a JSON "details" object when
    /// given, even empty) and extended attributes (`NAME`,
    /// value as [`xattr_text`] gives it) under it, or in its JSON line.
    fn print_detailed(
        &mut self,
        path: &str,
        node: &Node,
        details: Option<Vec<(String, String)>>,
        xattrs: Vec<(String, String)>,
    ) -> io::Result<()> {
        let object = |pairs: Vec<(String, String)>| {
            serde_json::Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect(),
            )
        };
        if self.format == Format::Json {
            let mut v = serde_json::to_value(json_node(path, node))?;
            if let Some(d) = details {
                v["details"] = object(d);
            }
            if !xattrs.is_empty() {
                v["xattrs"] = object(xattrs);
            }
            serde_json::to_writer(&mut self.out, &v)?;
            return self.out.write_all(b"\n");
        }
        self.print(path, node)?;
        for (k, v) in details.unwrap_or_default() {
            writeln!(self.out, "    {k}: {v}")?;
        }
        for (k, v) in xattrs {
            writeln!(self.out, "    xattr.{k}={v}")?;
        }
        Ok(())
    }

    fn print(&mut self, path: &str, node: &Node) -> io::Result<()> {
        match self.format {
            Format::Paths => writeln!(self.out, "{path}"),
            Format::Long { human } => writeln!(self.out, "{}", long_line(path, node, human)),
            Format::Json => {
                serde_json::to_writer(&mut self.out, &json_node(path, node))?;
                self.out.write_all(b"\n")
            }
        }
    }
}

impl Lister<'_> {
    /// Prints the advice for an error's `text` the first time it applies.
    fn hint_once(&mut self, text: &str) {
        if self.hint.is_none() {
            self.hint = crate::exit::hint(text);
            if let Some(h) = self.hint {
                eprintln!("hint: {h}");
            }
        }
    }

    /// Lists the deleted files of the volume whose directory `entry` (at
    /// `path`) is, their recorded paths below `path`.
    fn deleted(&mut self, path: &str, entry: &Entry) -> Result<()> {
        let fs = match entry {
            Entry::Dir(d) => d.volume().with_context(|| path.to_string())?,
            _ => None,
        };
        let Some(fs) = fs else {
            bail!(
                "{path}: --deleted needs the directory of a volume inside a disk image \
                 (like .../disk.vmdk.contents/p2)"
            );
        };
        let found = fs
            .deleted()
            .map_err(|e| anyhow::anyhow!("{path}: listing deleted files: {e}"))?;
        self.volumes.push((path.to_string(), fs.clone()));
        for d in found {
            let full = format!("{}/{}", path.trim_end_matches('/'), d.path);
            let name = d.path.rsplit('/').next().unwrap_or_default();
            let node = attr_node(name, &vaultfs::vfs::meta_attr(&d.meta));
            if let Err(e) = self.print(&full, &node) {
                self.write_error = Some(e);
                break;
            }
        }
        Ok(())
    }

    /// Lists an entry of the virtual tree (inside a disk image's
    /// `.contents/`) and everything below it, depth first in name order.
    fn walk_tree(&mut self, path: &str, name: &str, entry: &Entry) {
        if self.write_error.is_some() {
            return;
        }
        if let Err(e) = self.print_entry(path, &entry_node(name, entry), entry) {
            self.write_error = Some(e);
            return;
        }
        if let Entry::Dir(d) = entry {
            match d.list() {
                Ok(listing) => {
                    if let Ok(Some(fs)) = d.volume() {
                        if self.volumes.len() < MAX_VOLUMES {
                            self.volumes.push((path.to_string(), fs));
                        }
                    }
                    for (child, e) in listing.entries() {
                        self.walk_tree(&format!("{path}/{child}"), child, e);
                    }
                }
                Err(e) => {
                    let _ = self.out.flush();
                    let text = e.to_string();
                    eprintln!("error: {path}: {text}");
                    self.hint_once(&text);
                    self.damaged += 1;
                }
            }
        }
    }
}

/// An entry of the virtual tree as a node, to print it like one.
fn entry_node(name: &str, entry: &Entry) -> Node {
    let mut n = attr_node(name, &entry.attr());
    if let Entry::Symlink(l) = entry {
        n.linktarget = String::from_utf8_lossy(&l.target).into_owned();
    }
    n
}

/// Metadata of the virtual tree as a node.
fn attr_node(name: &str, attr: &vaultfs::vfs::Attr) -> Node {
    let node_type = match attr.kind {
        Kind::Dir => NodeType::Dir,
        Kind::File => NodeType::File,
        Kind::Symlink => NodeType::Symlink,
        Kind::Fifo => NodeType::Fifo,
        Kind::CharDevice => NodeType::Chardev,
        Kind::BlockDevice => NodeType::Dev,
        Kind::Socket => NodeType::Socket,
    };
    let time = |t: std::time::SystemTime| DateTime::<chrono::Utc>::from(t).fixed_offset();
    let mut n = Node::new(name, node_type);
    n.mode = attr.perm & 0o777;
    n.size = attr.size;
    n.uid = attr.uid;
    n.gid = attr.gid;
    n.mtime = time(attr.mtime);
    n.atime = time(attr.atime);
    n.ctime = time(attr.ctime);
    n
}

impl Visitor for Lister<'_> {
    fn visit(&mut self, path: &str, node: &Node) -> vaultfs::Result<WalkControl> {
        if self.skip_root && path == "/" {
            return Ok(WalkControl::Continue);
        }
        let printed = if self.details {
            let xattrs = node
                .extended_attributes
                .iter()
                .map(|x| (x.name.clone(), xattr_text(&x.value)))
                .collect();
            self.print_detailed(path, node, None, xattrs)
        } else {
            self.print(path, node)
        };
        match printed {
            Ok(()) => Ok(WalkControl::Continue),
            Err(e) => {
                self.write_error = Some(e);
                Ok(WalkControl::Stop)
            }
        }
    }

    fn tree_error(
        &mut self,
        _path: &str,
        _node: &Node,
        error: vaultfs::Error,
    ) -> vaultfs::Result<()> {
        // Printed now, so it shows up next to where the listing has a gap.
        let _ = self.out.flush();
        let text = error.to_string();
        eprintln!("error: {text}");
        self.hint_once(&text);
        self.damaged += 1;
        Ok(())
    }
}

/// The Go `os.FileMode` type bits restic adds for each node type.
fn type_bits(t: NodeType) -> u32 {
    match t {
        NodeType::Dir => MODE_DIR,
        NodeType::Symlink => MODE_SYMLINK,
        NodeType::Dev => MODE_DEVICE,
        NodeType::Chardev => MODE_DEVICE | MODE_CHAR_DEVICE,
        NodeType::Fifo => MODE_NAMED_PIPE,
        NodeType::Socket => MODE_SOCKET,
        NodeType::File | NodeType::Irregular => 0,
    }
}

/// Go's `FileMode.String()`, which restic prints: one letter per type
/// bit (`d`, `L` for symlinks, `D` devices, `c` char devices, `p` pipes,
/// `S` sockets, `u`/`g` setuid/setgid, `t` sticky, ...) or `-`, then `rwx`.
fn permissions(mode: u32) -> String {
    const TYPES: &str = "dalTLDpSugct?";
    let mut s = String::with_capacity(16);
    for (i, c) in TYPES.chars().enumerate() {
        if mode & (1 << (31 - i)) != 0 {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

/// The owner as a name when the snapshot recorded one, else the number.
fn owner(name: &str, id: u32) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        name.to_owned()
    }
}

/// One line of `ls -l`, in restic's column layout.
fn long_line(path: &str, node: &Node, human: bool) -> String {
    let size = if human {
        output::bytes(node.size)
    } else {
        node.size.to_string()
    };
    let target = if node.node_type == NodeType::Symlink {
        let t = String::from_utf8_lossy(&node.link_target_bytes()).into_owned();
        format!(" -> {t}")
    } else {
        String::new()
    };
    format!(
        "{} {:>5} {:>5} {size:>6} {} {path}{target}",
        permissions(node.mode | type_bits(node.node_type)),
        owner(&node.user, node.uid),
        owner(&node.group, node.gid),
        output::local_time(&node.mtime),
    )
}

fn json_node<'a>(path: &'a str, node: &'a Node) -> JsonNode<'a> {
    JsonNode {
        name: &node.name,
        node_type: node.node_type,
        path,
        uid: node.uid,
        gid: node.gid,
        size: node.is_file().then_some(node.size),
        mode: node.mode,
        permissions: permissions(node.mode | type_bits(node.node_type)),
        mtime: &node.mtime,
        atime: &node.atime,
        ctime: &node.ctime,
        inode: node.inode,
        message_type: "node",
        struct_type: "node",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaultfs::snapshot::mode::{MODE_SETUID, MODE_STICKY};

    #[test]
    fn permissions_like_go() {
        assert_eq!(permissions(0o644), "-rw-r--r--");
        assert_eq!(permissions(MODE_DIR | 0o755), "drwxr-xr-x");
        assert_eq!(permissions(MODE_SYMLINK | 0o777), "Lrwxrwxrwx");
        assert_eq!(
            permissions(MODE_DEVICE | MODE_CHAR_DEVICE | 0o666),
            "Dcrw-rw-rw-"
        );
        assert_eq!(permissions(MODE_SETUID | 0o755), "urwxr-xr-x");
        assert_eq!(permissions(MODE_DIR | MODE_STICKY | 0o777), "dtrwxrwxrwx");
    }

    #[test]
    fn long_line_layout() {
        let mut n = Node::new("l", NodeType::Symlink);
        n.mode = 0o777;
        n.uid = 1000;
        n.group = "staff".into();
        n.linktarget = "../t".into();
        let line = long_line("/d/l", &n, false);
        assert!(line.starts_with("Lrwxrwxrwx  1000 staff      0 "), "{line}");
        assert!(line.ends_with(" /d/l -> ../t"), "{line}");
        let mut f = Node::new("f", NodeType::File);
        f.size = 1536;
        assert!(long_line("/f", &f, true).contains(" 1.500 KiB "));
        let j = serde_json::to_value(json_node("/f", &f)).unwrap_or_default();
        assert_eq!(j["size"], 1536);
        assert_eq!(j["permissions"], "----------");
        assert!(j.get("mode").is_none());
        let d = Node::new("d", NodeType::Dir);
        let j = serde_json::to_value(json_node("/d", &d)).unwrap_or_default();
        assert!(j.get("size").is_none());
        assert_eq!(j["struct_type"], "node");
    }
}
