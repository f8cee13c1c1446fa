//! The restore plan: one walk of the snapshot that applies the filter, maps
//! each node to its destination, looks at what exists there and decides
//! what to do, and pairs hard-linked files. Nothing is written here, so a
//! dry run makes the same plan.

use std::collections::HashMap;
use std::path::PathBuf;

use super::RestoreOptions;
use super::overwrite::{Action, decide};
use super::report::{Count, Report};
use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::snapshot::walk::{self, Visitor, WalkControl};
use crate::snapshot::{Node, NodeType};

/// A directory to create (or restore into).
pub(crate) struct DirEntry {
    /// The path below the restored node, with a leading `/`.
    pub path: String,
    pub target: PathBuf,
    pub node: Node,
    /// The enclosing directory's index; `None` for the target itself.
    pub parent: Option<usize>,
    pub action: Action,
    /// Included by the filter, or holding something that is.
    pub selected: bool,
}

/// How a non-directory entry is restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    /// A hard link to the item with this index (a `File` restored before).
    HardLink(usize),
    Symlink,
    /// A fifo or device node.
    Special,
}

/// A non-directory entry.
pub(crate) struct Item {
    pub path: String,
    pub target: PathBuf,
    pub node: Node,
    pub parent: Option<usize>,
    pub kind: Kind,
    pub action: Action,
}

/// Everything a restore will do, in walk order (parents before children).
#[derive(Default)]
pub(crate) struct Plan {
    pub dry_run: bool,
    pub dirs: Vec<DirEntry>,
    pub items: Vec<Item>,
}

impl Plan {
    /// Regular files whose content will be read.
    pub(crate) fn file_count(&self) -> u64 {
        self.content_items().count() as u64
    }

    /// Content bytes that will be read.
    pub(crate) fn file_bytes(&self) -> u64 {
        self.content_items().map(|i| i.node.size).sum()
    }

    /// Files whose blobs will be read: those to write, and in a dry run
    /// every selected file.
    fn content_items(&self) -> impl Iterator<Item = &Item> {
        self.items
            .iter()
            .filter(|i| i.kind == Kind::File && (self.dry_run || i.action.creates()))
    }
}

/// A directory being walked.
struct Open {
    /// Index in `Plan::dirs`; `None` for the target itself.
    dir: Option<usize>,
    target: PathBuf,
    /// Everything below is included (the directory matched an include).
    included: bool,
    /// The directory will be created new, so nothing exists below it.
    fresh: bool,
}

struct Planner<'a> {
    opts: &'a RestoreOptions,
    report: &'a Report<'a>,
    plan: Plan,
    open: Vec<Open>,
    /// First file restored for each (device, inode) of multiply linked files.
    inodes: HashMap<(u64, u64), usize>,
    started: bool,
}

/// Walks `root` and plans its restore into `opts.target`. Damaged subtrees
/// are reported and skipped; only an unreadable root tree is an `Err`.
pub(crate) fn make(
    repo: &Repository,
    root: &Node,
    opts: &RestoreOptions,
    report: &Report<'_>,
) -> Result<Plan> {
    let mut p = Planner {
        opts,
        report,
        plan: Plan {
            dry_run: opts.dry_run,
            ..Plan::default()
        },
        open: Vec::new(),
        inodes: HashMap::new(),
        started: false,
    };
    walk::walk(repo, root, "/", &mut p)?;
    Ok(p.plan)
}

impl Visitor for Planner<'_> {
    fn visit(&mut self, path: &str, node: &Node) -> Result<WalkControl> {
        if self.started {
            return Ok(self.entry(path, node));
        }
        self.started = true;
        self.open.push(Open {
            dir: None,
            target: self.opts.target.clone(),
            included: false,
            fresh: false,
        });
        if node.is_dir() {
            return Ok(WalkControl::Continue);
        }
        if !walk::valid_name(&node.name) {
            return Err(Error::damaged(format!(
                "cannot restore a node named {:?}",
                node.name
            )));
        }
        // A single file goes into the target under its own name.
        Ok(self.entry(&walk::join_path("/", &node.name), node))
    }

    fn tree_error(&mut self, _path: &str, _node: &Node, error: Error) -> Result<()> {
        if self.open.len() <= 1 {
            return Err(error);
        }
        self.report.error(format!(
            "{error}; the directory's contents were not restored"
        ));
        Ok(())
    }

    fn leave_dir(&mut self, _path: &str, _node: &Node) -> Result<()> {
        self.open.pop();
        Ok(())
    }
}

impl Planner<'_> {
    fn entry(&mut self, path: &str, node: &Node) -> WalkControl {
        let filter = &self.opts.filter;
        if filter.excluded(path) {
            return WalkControl::SkipSubtree;
        }
        let Some(parent) = self.open.last() else {
            return WalkControl::Stop;
        };
        let target = parent.target.join(&node.name);
        let included = parent.included || filter.included(path);
        let existing = if parent.fresh {
            None
        } else {
            std::fs::symlink_metadata(&target).ok()
        };
        let action = decide(self.opts.overwrite, node, existing.as_ref());
        let parent_dir = parent.dir;
        if node.is_dir() {
            return self.dir(path, node, target, parent_dir, included, action);
        }
        if !included {
            return WalkControl::Continue;
        }
        self.select_open();
        if action == Action::Skip {
            self.report.count(Count::Skipped);
            // A dry run still verifies the content of the files it keeps.
            if !(self.opts.dry_run && node.is_file()) {
                return WalkControl::Continue;
            }
        }
        let kind = match node.node_type {
            NodeType::File if action == Action::Skip => Kind::File,
            NodeType::File => self.file_kind(node),
            NodeType::Symlink => Kind::Symlink,
            NodeType::Fifo | NodeType::Dev | NodeType::Chardev => Kind::Special,
            // Sockets belong to a running program; restic skips them too.
            NodeType::Socket => return WalkControl::Continue,
            NodeType::Irregular | NodeType::Dir => {
                self.report
                    .warning(format!("{path}: irregular file not restored"));
                return WalkControl::Continue;
            }
        };
        self.plan.items.push(Item {
            path: path.to_owned(),
            target,
            node: node.clone(),
            parent: parent_dir,
            kind,
            action,
        });
        WalkControl::Continue
    }

    fn dir(
        &mut self,
        path: &str,
        node: &Node,
        target: PathBuf,
        parent: Option<usize>,
        included: bool,
        action: Action,
    ) -> WalkControl {
        if action == Action::Skip {
            self.report.warning(format!(
                "{path}: not restored: {} exists and is not a directory (overwrite {})",
                target.display(),
                self.opts.overwrite.as_str()
            ));
            return WalkControl::SkipSubtree;
        }
        let index = self.plan.dirs.len();
        self.plan.dirs.push(DirEntry {
            path: path.to_owned(),
            target: target.clone(),
            node: node.clone(),
            parent,
            action,
            selected: false,
        });
        self.open.push(Open {
            dir: Some(index),
            target,
            included,
            fresh: action.creates(),
        });
        if included {
            self.select_open();
        }
        WalkControl::Continue
    }

    /// A file, or a hard link to a file of the same inode planned before.
    fn file_kind(&mut self, node: &Node) -> Kind {
        if node.links <= 1 || node.inode == 0 {
            return Kind::File;
        }
        let key = (node.device_id, node.inode);
        match self.inodes.get(&key) {
            Some(&first) => Kind::HardLink(first),
            None => {
                self.inodes.insert(key, self.plan.items.len());
                Kind::File
            }
        }
    }

    /// Marks every open directory as selected (something below is restored).
    fn select_open(&mut self) {
        for o in self.open.iter().rev() {
            let Some(i) = o.dir else { break };
            let Some(d) = self.plan.dirs.get_mut(i) else {
                break;
            };
            if d.selected {
                break;
            }
            d.selected = true;
        }
    }
}
