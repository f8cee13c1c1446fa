//! Paths inside a snapshot: resolving `SNAPSHOT:PATH`, walking a tree depth
//! first in name order, and streaming one file's content in order.
//!
//! Trees are untrusted input. Before a tree's nodes are handed out they are
//! sorted by name and checked: a name must be one path component (not empty,
//! no `/`, not `.` or `..`, no NUL) and unique in its tree, so nobody who
//! joins names to a local path can be led outside it or be handed the same
//! path twice. Damage (a missing or corrupt tree or blob) stays damage: it is
//! never reported as "not found".
//!
//! This module knows nothing of local files; restore and the CLI's `ls` and
//! `cat` build on it.

use std::io::Write;

use crate::error::{Error, ErrorKind, Result};
use crate::id::TreeId;
use crate::repo::{BlobType, Repository};

use super::mode::MODE_DIR;
use super::{Node, NodeType, Tree};

/// Trees nested deeper than this are refused as damage: no local filesystem
/// can hold such a path, and the walk's memory grows with the depth.
pub const MAX_DEPTH: usize = 4096;

/// What a visitor wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkControl {
    /// Go on, and into this node if it is a directory.
    Continue,
    /// Go on, but not into this directory.
    SkipSubtree,
    /// End the walk now (successfully).
    Stop,
}

/// Receives the nodes of a walk.
///
/// Contract: after `visit` returned [`WalkControl::Continue`] for a
/// directory, its children are visited and then `leave_dir` is called for
/// it, also when its tree could not be loaded (then `tree_error` comes
/// first and there are no children).
pub trait Visitor {
    /// Called for every node, parents before children; `path` starts with `/`.
    fn visit(&mut self, path: &str, node: &Node) -> Result<WalkControl>;

    /// The tree of directory `path` is missing, damaged or invalid. Return
    /// `Ok` to go on without its children; the default stops the walk.
    fn tree_error(&mut self, path: &str, node: &Node, error: Error) -> Result<()> {
        let _ = (path, node);
        Err(error)
    }

    /// All children of directory `path` have been visited.
    fn leave_dir(&mut self, path: &str, node: &Node) -> Result<()> {
        let _ = (path, node);
        Ok(())
    }
}

impl<F: FnMut(&str, &Node) -> Result<WalkControl>> Visitor for F {
    fn visit(&mut self, path: &str, node: &Node) -> Result<WalkControl> {
        self(path, node)
    }
}

/// A directory node standing for a snapshot's root tree.
pub fn root_node(root: &TreeId) -> Node {
    let mut n = Node::new("/", NodeType::Dir);
    n.mode = MODE_DIR | 0o755;
    n.subtree = Some(*root);
    n
}

/// `parent` + `/` + `name`, with `/` (or an empty string) as the root.
pub fn join_path(parent: &str, name: &str) -> String {
    let parent = parent.trim_end_matches('/');
    format!("{parent}/{name}")
}

/// Is `name` usable as one component of a local path?
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Sorts a tree's nodes by name and refuses invalid or duplicate names.
pub fn check_tree(id: &TreeId, tree: &mut Tree) -> Result<()> {
    tree.nodes
        .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    if let Some(bad) = tree.nodes.iter().find(|n| !valid_name(&n.name)) {
        return Err(Error::damaged(format!(
            "tree {id}: invalid entry name {:?}",
            bad.name
        )));
    }
    if let Some(w) = tree.nodes.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::damaged(format!(
            "tree {id}: duplicate entry name {:?}",
            w[0].name
        )));
    }
    Ok(())
}

/// The checked, sorted children of directory node `dir` found at `path`.
pub fn load_dir(repo: &Repository, path: &str, dir: &Node) -> Result<Tree> {
    let Some(id) = dir.subtree else {
        return Err(Error::damaged(format!(
            "directory {path} has no subtree in the snapshot"
        )));
    };
    let mut tree = repo
        .load_tree(&id)
        .map_err(|e| e.context(format!("directory {path}")))?;
    check_tree(&id, &mut tree).map_err(|e| e.context(format!("directory {path}")))?;
    Ok(tree)
}

/// Resolves a slash-separated `path` inside the snapshot whose root tree is
/// `root`. `""` and `"/"` give [`root_node`]; empty and `.` components are
/// ignored; `..` is refused.
pub fn resolve_path(repo: &Repository, root: &TreeId, path: &str) -> Result<Node> {
    let mut node = root_node(root);
    let mut walked = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("path {path:?}: `..` is not allowed in a snapshot path"),
            ));
        }
        if !node.is_dir() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "path {path:?} not found: {} is not a directory",
                    display_path(&walked)
                ),
            ));
        }
        let tree = load_dir(repo, display_path(&walked), &node)?;
        walked = join_path(&walked, comp);
        node = tree.find(comp).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("path {path:?} not found: no {walked} in the snapshot"),
            )
        })?;
    }
    Ok(node)
}

fn display_path(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

struct Frame {
    path: String,
    dir: Node,
    children: std::vec::IntoIter<Node>,
}

/// Walks `root` (found at `path`) and everything below it, depth first in
/// name order: `root` itself is visited first.
pub fn walk(repo: &Repository, root: &Node, path: &str, visitor: &mut dyn Visitor) -> Result<()> {
    let path = display_path(path).to_owned();
    let mut stack: Vec<Frame> = Vec::new();
    if !enter(repo, root, path, visitor, &mut stack)? {
        return Ok(());
    }
    while let Some(top) = stack.last_mut() {
        let Some(child) = top.children.next() else {
            if let Some(done) = stack.pop() {
                visitor.leave_dir(&done.path, &done.dir)?;
            }
            continue;
        };
        let child_path = join_path(&top.path, &child.name);
        if stack.len() > MAX_DEPTH {
            return Err(Error::damaged(format!(
                "{child_path}: directories nested deeper than {MAX_DEPTH} levels"
            )));
        }
        if !enter(repo, &child, child_path, visitor, &mut stack)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Visits `node`; pushes its children if it is a directory to descend into.
/// Returns false when the visitor stopped the walk.
fn enter(
    repo: &Repository,
    node: &Node,
    path: String,
    visitor: &mut dyn Visitor,
    stack: &mut Vec<Frame>,
) -> Result<bool> {
    match visitor.visit(&path, node)? {
        WalkControl::Stop => return Ok(false),
        WalkControl::SkipSubtree => return Ok(true),
        WalkControl::Continue if !node.is_dir() => return Ok(true),
        WalkControl::Continue => {}
    }
    let children = match load_dir(repo, &path, node) {
        Ok(tree) => tree.nodes,
        Err(e) => {
            visitor.tree_error(&path, node, e)?;
            Vec::new()
        }
    };
    stack.push(Frame {
        path,
        dir: node.clone(),
        children: children.into_iter(),
    });
    Ok(true)
}

/// The plaintext size of each content blob of file `node` (found at
/// `path`), from the index, checked to add up to the node's size. Fails
/// before any content is read if a blob is not indexed or the sizes
/// disagree.
pub fn blob_sizes(repo: &Repository, path: &str, node: &Node) -> Result<Vec<u64>> {
    let index = repo.index();
    let mut sizes = Vec::with_capacity(node.content().len());
    for id in node.content() {
        let loc = index.get(BlobType::Data, id).ok_or_else(|| {
            Error::missing(format!("file {path}: data blob {id} is not in the index"))
        })?;
        sizes.push(u64::from(loc.blob.plain_len()));
    }
    let total: u64 = sizes.iter().sum();
    if total != node.size {
        return Err(Error::damaged(format!(
            "file {path}: its blobs hold {total} bytes, but the snapshot records size {}",
            node.size
        )));
    }
    Ok(sizes)
}

/// Streams the content of file `node` to `out`, blob by blob, each one
/// verified; returns the bytes written. Fails naming the file if the length
/// does not match the node's size (checked against the index before the
/// first byte is written, and again against what was read).
pub fn write_file_content(repo: &Repository, node: &Node, out: &mut dyn Write) -> Result<u64> {
    if !node.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not a regular file", node.name),
        ));
    }
    let name = &node.name;
    let sizes = blob_sizes(repo, name, node)?;
    let mut written = 0u64;
    for (id, want) in node.content().iter().zip(sizes) {
        let data = repo
            .load_blob(BlobType::Data, id)
            .map_err(|e| e.context(format!("file {name}")))?;
        if data.len() as u64 != want {
            return Err(Error::damaged(format!(
                "file {name}: data blob {id} holds {} bytes, the index says {want}",
                data.len()
            )));
        }
        out.write_all(&data)
            .map_err(|e| Error::with_source(ErrorKind::Io, format!("writing {name}: {e}"), e))?;
        written += want;
    }
    if written != node.size {
        return Err(Error::damaged(format!(
            "file {name}: read {written} bytes, the snapshot records size {}",
            node.size
        )));
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
