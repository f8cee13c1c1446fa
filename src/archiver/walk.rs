//! The walk of a backup: reads metadata of everything below the backup
//! paths, applies filters and system exclusions, compares files with the
//! parent snapshot and queues the ones that must be read. The result is an
//! in-memory directory structure whose trees are written once every file's
//! content is known.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::FixedOffset;
use crossbeam_channel::Sender;

use super::meta::{name_of, node_from};
use super::pipeline::{Collector, FileJob, Shared};
use super::{BackupOptions, BackupSummary};
use crate::id::TreeId;
use crate::repo::{BlobType, Repository};
use crate::snapshot::{Node, NodeType, Tree};

/// Directories skipped unless named as a backup path (or below one).
pub const SYSTEM_EXCLUDES: [&str; 5] = ["/proc", "/sys", "/dev", "/selinux", "/run"];

/// A directory being assembled.
pub(crate) struct DirBuild {
    pub node: Node,
    /// The same directory in the parent snapshot.
    pub parent: Option<Node>,
    pub children: Vec<Child>,
}

/// An entry of a directory being assembled.
pub(crate) enum Child {
    Dir(Box<DirBuild>),
    /// A file whose content comes from the parent (already in `node`) or
    /// from pipeline job `job`.
    File {
        node: Node,
        job: Option<usize>,
    },
    Other(Node),
}

impl Child {
    fn name(&self) -> &str {
        match self {
            Child::Dir(d) => &d.node.name,
            Child::File { node, .. } | Child::Other(node) => &node.name,
        }
    }
}

pub(crate) struct Walker<'a> {
    pub repo: &'a Repository,
    pub opts: &'a BackupOptions,
    pub shared: &'a Shared<'a>,
    /// Where files to read go; dropped when the walk ends.
    pub jobs: Option<Sender<FileJob>>,
    /// Contents of read files, as the pipeline delivers them.
    pub collector: Collector,
    /// Jobs that more than one name (hard links) refers to.
    pub shared_jobs: std::collections::HashSet<usize>,
    pub offset: FixedOffset,
    pub next_job: usize,
    pub hardlinks: HashMap<(u64, u64), usize>,
    pub warnings: Vec<String>,
    pub summary: BackupSummary,
    /// The backup paths, cleaned.
    pub roots: Vec<PathBuf>,
    root_dev: u64,
}

impl<'a> Walker<'a> {
    pub fn new(
        repo: &'a Repository,
        opts: &'a BackupOptions,
        shared: &'a Shared<'a>,
        jobs: Sender<FileJob>,
        collector: Collector,
        roots: Vec<PathBuf>,
    ) -> Self {
        Walker {
            repo,
            opts,
            shared,
            jobs: Some(jobs),
            collector,
            shared_jobs: std::collections::HashSet::new(),
            offset: *chrono::Local::now().offset(),
            next_job: 0,
            hardlinks: HashMap::new(),
            warnings: Vec::new(),
            summary: BackupSummary::default(),
            roots,
            root_dev: 0,
        }
    }

    pub(crate) fn warn(&mut self, path: &Path, msg: impl std::fmt::Display) {
        let text = format!("{}: {msg}", path.display());
        self.shared.progress.warning(path, &msg.to_string());
        self.warnings.push(text);
    }

    /// Loads a directory's tree in the parent snapshot, if any.
    fn parent_tree(&mut self, parent: Option<&Node>, path: &Path) -> Option<Arc<Tree>> {
        let id = parent.filter(|n| n.is_dir())?.subtree?;
        match self.repo.load_tree(&id) {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => {
                self.warn(
                    path,
                    format!("parent snapshot tree unreadable, reading all files: {e}"),
                );
                None
            }
        }
    }

    /// Walks every backup path into a synthetic root directory.
    pub fn walk_roots(&mut self, parent_root: Option<TreeId>) -> DirBuild {
        let mut root_node = Node::new("", NodeType::Dir);
        root_node.subtree = parent_root;
        let mut root = DirBuild {
            node: Node::new("", NodeType::Dir),
            parent: Some(root_node),
            children: Vec::new(),
        };
        for path in self.roots.clone() {
            if self.shared.aborted() {
                break;
            }
            let comps: Vec<OsString> = path
                .components()
                .filter_map(|c| match c {
                    std::path::Component::Normal(s) => Some(s.to_owned()),
                    _ => None,
                })
                .collect();
            self.root_dev = std::fs::symlink_metadata(&path)
                .map(|m| m.dev())
                .unwrap_or(0);
            self.insert(&mut root, Path::new("/"), &comps);
        }
        root
    }

    /// Inserts backup path `comps` (relative to `dir_path`) below `dir`,
    /// creating the intermediate directories with their own metadata.
    fn insert(&mut self, dir: &mut DirBuild, dir_path: &Path, comps: &[OsString]) {
        let ptree = self.parent_tree(dir.parent.as_ref(), dir_path);
        let Some((first, rest)) = comps.split_first() else {
            // The backup path is `/` itself.
            let children = self.walk_children(dir_path, ptree.as_deref());
            dir.children = children;
            return;
        };
        let name = name_of(first);
        let path = dir_path.join(first);
        let pnode = ptree.as_ref().and_then(|t| t.find(&name)).cloned();
        if rest.is_empty() {
            dir.children.retain(|c| c.name() != name);
            if let Some(child) = self.walk_path(&path, name, pnode.as_ref()) {
                dir.children.push(child);
            }
            return;
        }
        let pos = dir
            .children
            .iter()
            .position(|c| matches!(c, Child::Dir(d) if d.node.name == name));
        let pos = match pos {
            Some(p) => p,
            None => {
                let md = match std::fs::symlink_metadata(&path) {
                    Ok(md) => md,
                    Err(e) => {
                        self.warn(&path, e);
                        return;
                    }
                };
                let (node, _) = node_from(&path, name, &md, &self.offset);
                dir.children.push(Child::Dir(Box::new(DirBuild {
                    node,
                    parent: pnode,
                    children: Vec::new(),
                })));
                dir.children.len() - 1
            }
        };
        if let Some(Child::Dir(sub)) = dir.children.get_mut(pos) {
            self.insert(sub, &path, rest);
        }
    }

    fn system_excluded(&self, path: &Path) -> bool {
        self.opts.system_excludes
            && SYSTEM_EXCLUDES.iter().any(|s| Path::new(s) == path)
            && !self.roots.iter().any(|r| r.starts_with(path))
    }

    fn walk_children(&mut self, path: &Path, ptree: Option<&Tree>) -> Vec<Child> {
        let rd = match std::fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => {
                self.warn(path, e);
                return Vec::new();
            }
        };
        let mut names: Vec<OsString> = Vec::new();
        for entry in rd {
            match entry {
                Ok(e) => names.push(e.file_name()),
                Err(e) => self.warn(path, e),
            }
        }
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut children = Vec::with_capacity(names.len());
        // Subdirectories whose trees could not be written yet, oldest first.
        let mut pending: std::collections::VecDeque<usize> = Default::default();
        for n in names {
            if self.shared.aborted() {
                break;
            }
            let name = name_of(&n);
            let pnode = ptree.and_then(|t| t.find(&name));
            if let Some(c) = self.walk_path(&path.join(&n), name, pnode) {
                let is_dir = matches!(c, Child::Dir(_));
                children.push(c);
                if is_dir {
                    pending.push_back(children.len() - 1);
                    // Files are stored roughly in walk order, so the oldest
                    // pending sibling is the next one to become complete.
                    self.retry_pending(&mut children, &mut pending);
                }
            }
        }
        children
    }

    /// Writes the trees of pending sibling directories that have become
    /// complete, oldest first, stopping at the first that is not.
    fn retry_pending(
        &mut self,
        children: &mut [Child],
        pending: &mut std::collections::VecDeque<usize>,
    ) {
        while let Some(&i) = pending.front() {
            let Some(slot) = children.get_mut(i) else {
                pending.pop_front();
                continue;
            };
            let Child::Dir(dir) = std::mem::replace(slot, Child::Other(Node::default_dir())) else {
                pending.pop_front();
                continue;
            };
            match self.finalize(dir) {
                Ok(Ok(node)) => {
                    *slot = Child::Other(node);
                    pending.pop_front();
                }
                Ok(Err(dir)) => {
                    *slot = Child::Dir(dir);
                    break;
                }
                Err(e) => {
                    self.shared.fail(e);
                    break;
                }
            }
        }
    }

    /// Backs up one path: returns its tree entry, or `None` if filtered out
    /// or unreadable (then a warning is recorded).
    fn walk_path(&mut self, path: &Path, name: String, parent: Option<&Node>) -> Option<Child> {
        let lossy = path.to_string_lossy();
        if self.opts.filter.excluded(&lossy) || self.system_excluded(path) {
            return None;
        }
        let md = match std::fs::symlink_metadata(path) {
            Ok(md) => md,
            Err(e) => {
                self.warn(path, e);
                return None;
            }
        };
        let included = self.opts.filter.included(&lossy);
        let (mut node, warning) = node_from(path, name, &md, &self.offset);
        if let Some(w) = warning {
            self.warn(path, w);
        }
        match node.node_type {
            NodeType::Dir => {
                let ptree = self.parent_tree(parent, path);
                let descend = !self.opts.one_file_system || md.dev() == self.root_dev;
                let children = if descend {
                    self.walk_children(path, ptree.as_deref())
                } else {
                    Vec::new()
                };
                if !included && children.is_empty() {
                    return None;
                }
                let dir = Box::new(DirBuild {
                    node,
                    parent: parent.cloned(),
                    children,
                });
                // Writing the tree now, if its files are stored already,
                // keeps memory to the part of the walk still in flight.
                match self.finalize(dir) {
                    Ok(Ok(node)) => Some(Child::Other(node)),
                    Ok(Err(dir)) => Some(Child::Dir(dir)),
                    Err(e) => {
                        self.shared.fail(e);
                        None
                    }
                }
            }
            NodeType::File if included => {
                self.shared.progress.scanned(1, node.size);
                match parent.filter(|p| self.unchanged(p, &node)) {
                    Some(p) => {
                        node.content = p.content.clone();
                        self.summary.files_unmodified += 1;
                        self.shared.progress.processed(1, node.size);
                        Some(Child::File { node, job: None })
                    }
                    None => {
                        if parent.is_some() {
                            self.summary.files_changed += 1;
                        } else {
                            self.summary.files_new += 1;
                        }
                        let job = self.queue(path, &node, md.dev());
                        Some(Child::File { node, job })
                    }
                }
            }
            _ if included => Some(Child::Other(node)),
            _ => None,
        }
    }

    /// Can the parent's content be reused without reading the file?
    fn unchanged(&self, parent: &Node, node: &Node) -> bool {
        !self.opts.rescan_unchanged
            && parent.is_file()
            && parent.size == node.size
            && parent.mtime == node.mtime
            && parent.inode == node.inode
            && parent.content.is_some()
            && {
                let idx = self.repo.index();
                parent
                    .content()
                    .iter()
                    .all(|id| idx.contains(BlobType::Data, id))
            }
    }

    /// Queues a file for reading; a second name of a hard-linked file
    /// shares the first name's job.
    fn queue(&mut self, path: &Path, node: &Node, dev: u64) -> Option<usize> {
        if node.links > 1
            && let Some(&job) = self.hardlinks.get(&(dev, node.inode))
        {
            self.shared.progress.processed(1, node.size);
            self.shared_jobs.insert(job);
            return Some(job);
        }
        let idx = self.next_job;
        self.next_job += 1;
        if node.links > 1 {
            self.hardlinks.insert((dev, node.inode), idx);
        }
        let job = FileJob {
            idx,
            path: path.to_path_buf(),
            size: node.size,
        };
        if self.jobs.as_ref().is_none_or(|tx| tx.send(job).is_err()) {
            return None;
        }
        Some(idx)
    }
}
