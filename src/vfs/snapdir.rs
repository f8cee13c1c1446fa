//! A snapshot's directories and files. A directory reads its tree blob when
//! first listed and remembers the result (or the damage); a file opens as a
//! [`SnapshotSource`]; a file that holds a disk image gets a sibling
//! `<name>.contents/` directory.

use std::sync::{Arc, OnceLock};

use super::contents::{CONTENTS_SUFFIX, ContentsDir, worth_probing};
use super::{
    Attr, Broken, Dir, Entry, File, Kind, Listing, Shared, SnapshotSource, Symlink, Xattr, XattrFn,
    system_time,
};
use crate::error::{Error, Result};
use crate::snapshot::walk::{join_path, load_dir, root_node};
use crate::snapshot::{Node, NodeType, Snapshot};

/// The root directory of a snapshot.
pub(crate) fn snapshot_root(shared: &Arc<Shared>, snap: &Snapshot) -> Entry {
    let mut node = root_node(&snap.tree);
    node.mtime = snap.time;
    node.atime = snap.time;
    node.ctime = snap.time;
    Entry::Dir(Arc::new(SnapDir::new(shared.clone(), node, "/".into())))
}

/// A node's metadata.
pub(crate) fn node_attr(node: &Node) -> Attr {
    let kind = match node.node_type {
        NodeType::Dir => Kind::Dir,
        NodeType::File => Kind::File,
        NodeType::Symlink => Kind::Symlink,
        NodeType::Fifo => Kind::Fifo,
        NodeType::Chardev => Kind::CharDevice,
        NodeType::Dev => Kind::BlockDevice,
        NodeType::Socket => Kind::Socket,
        NodeType::Irregular => Kind::File,
    };
    let size = match node.node_type {
        NodeType::File => node.size,
        NodeType::Symlink => node.link_target_bytes().len() as u64,
        _ => 0,
    };
    Attr {
        kind,
        size,
        perm: node.unix_perm() & 0o7777,
        uid: node.uid,
        gid: node.gid,
        nlink: u32::try_from(node.links).unwrap_or(u32::MAX).max(1),
        rdev: node.device,
        mtime: system_time(&node.mtime),
        atime: system_time(&node.atime),
        ctime: system_time(&node.ctime),
    }
}

/// A directory of a snapshot.
pub(crate) struct SnapDir {
    shared: Arc<Shared>,
    node: Node,
    path: String,
    listing: OnceLock<std::result::Result<Arc<Listing>, Arc<Broken>>>,
}

impl SnapDir {
    pub(crate) fn new(shared: Arc<Shared>, node: Node, path: String) -> SnapDir {
        SnapDir {
            shared,
            node,
            path,
            listing: OnceLock::new(),
        }
    }

    fn build(&self) -> Result<Listing> {
        let repo = &self.shared.repo;
        let tree = load_dir(repo, &self.path, &self.node)?;
        let mut out = Vec::with_capacity(tree.nodes.len());
        for n in &tree.nodes {
            let path = join_path(&self.path, &n.name);
            let entry = match n.node_type {
                NodeType::Dir => Entry::Dir(Arc::new(SnapDir::new(
                    self.shared.clone(),
                    n.clone(),
                    path.clone(),
                ))),
                NodeType::File => Entry::File(Arc::new(SnapFile {
                    shared: self.shared.clone(),
                    node: n.clone(),
                    path: path.clone(),
                })),
                NodeType::Symlink => Entry::Symlink(Arc::new(Symlink {
                    attr: node_attr(n),
                    target: n.link_target_bytes(),
                    xattrs: (!n.extended_attributes.is_empty()).then(|| {
                        let x = node_xattrs(n);
                        Arc::new(move || Ok(x.clone())) as XattrFn
                    }),
                })),
                _ => Entry::Special(node_attr(n)),
            };
            out.push((n.name.clone(), entry));
        }
        if self.shared.options.images {
            for n in &tree.nodes {
                let name = format!("{}{CONTENTS_SUFFIX}", n.name);
                if !n.is_file() || tree.find(&name).is_some() || !self.is_image(n) {
                    continue;
                }
                let path = join_path(&self.path, &n.name);
                let file = Arc::new(SnapFile {
                    shared: self.shared.clone(),
                    node: n.clone(),
                    path: path.clone(),
                });
                let siblings = SnapSiblings {
                    dir: SnapDir::new(self.shared.clone(), self.node.clone(), self.path.clone()),
                };
                let dir = ContentsDir::new(
                    file,
                    n.name.clone(),
                    path,
                    Box::new(siblings),
                    self.shared.options.fs.clone(),
                );
                out.push((name, Entry::Dir(Arc::new(dir))));
            }
        }
        Ok(Listing::new(out))
    }

    /// Probes file `n` for a disk image, memoised by (first blob, size). A
    /// file whose first blob cannot be read is not an image here: reading
    /// the file itself reports the damage.
    fn is_image(&self, n: &Node) -> bool {
        let Some(first) = n.content().first() else {
            return false;
        };
        if !worth_probing(&n.name, n.size) {
            return false;
        }
        let key = (*first, n.size);
        if let Some(v) = self.shared.probes.lock().get(&key) {
            return *v;
        }
        let path = join_path(&self.path, &n.name);
        let verdict = SnapshotSource::new(
            self.shared.repo.clone(),
            self.shared.prefetch.clone(),
            &path,
            n,
        )
        .ok()
        .and_then(|src| vaultfs_formats::image::is_disk_image(&src, &n.name).ok())
        .unwrap_or(false);
        self.shared.probes.lock().insert(key, verdict);
        verdict
    }

    /// The child `name` as a node, for sibling lookups.
    fn child_node(&self, name: &str) -> Result<Option<Node>> {
        let tree = load_dir(&self.shared.repo, &self.path, &self.node)?;
        Ok(tree.find(name).cloned())
    }
}

impl Dir for SnapDir {
    fn attr(&self) -> Attr {
        node_attr(&self.node)
    }

    fn list(&self) -> Result<Arc<Listing>> {
        self.listing
            .get_or_init(|| {
                self.build()
                    .map(Arc::new)
                    .map_err(|e| Arc::new(Broken::new(self.attr(), &e)))
            })
            .clone()
            .map_err(|b| Error::new(b.kind, b.message.clone()))
    }

    fn xattrs(&self) -> Result<Vec<Xattr>> {
        Ok(node_xattrs(&self.node))
    }
}

/// The extended attributes the backup recorded for node `n`.
fn node_xattrs(n: &Node) -> Vec<Xattr> {
    n.extended_attributes
        .iter()
        .map(|a| Xattr {
            name: a.name.clone(),
            value: a.value.clone(),
        })
        .collect()
}

/// A regular file of a snapshot.
pub(crate) struct SnapFile {
    shared: Arc<Shared>,
    node: Node,
    path: String,
}

impl File for SnapFile {
    fn attr(&self) -> Attr {
        node_attr(&self.node)
    }

    fn open(&self) -> Result<super::Source> {
        Ok(Arc::new(SnapshotSource::new(
            self.shared.repo.clone(),
            self.shared.prefetch.clone(),
            &self.path,
            &self.node,
        )?))
    }

    fn xattrs(&self) -> Result<Vec<Xattr>> {
        Ok(node_xattrs(&self.node))
    }
}

/// The files next to a disk image in its snapshot directory, for VMDK
/// extents and parent disks. A name with directories is followed down from
/// the image's directory; if it does not resolve there (an absolute path of
/// the machine that made the image), its last component is tried.
struct SnapSiblings {
    dir: SnapDir,
}

impl SnapSiblings {
    fn find(&self, parts: &[&str]) -> Result<Option<(Node, String)>> {
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(None);
        };
        let mut node = self.dir.node.clone();
        let mut path = self.dir.path.clone();
        for d in dirs {
            let here = SnapDir::new(self.dir.shared.clone(), node.clone(), path.clone());
            match here.child_node(d)? {
                Some(n) if n.is_dir() => {
                    path = join_path(&path, d);
                    node = n;
                }
                _ => return Ok(None),
            }
        }
        let here = SnapDir::new(self.dir.shared.clone(), node, path.clone());
        Ok(here
            .child_node(last)?
            .filter(Node::is_file)
            .map(|n| (n, join_path(&path, last))))
    }
}

impl vaultfs_formats::container::Siblings for SnapSiblings {
    fn open(&self, name: &str) -> std::io::Result<super::Source> {
        let parts = vaultfs_formats::container::name_components(name);
        if parts.contains(&"..") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name:?}: `..` is not followed inside a snapshot"),
            ));
        }
        let mut found = self.find(&parts)?;
        if found.is_none() && parts.len() > 1 {
            found = self.find(&parts[parts.len() - 1..])?;
        }
        let Some((node, path)) = found else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name:?} is not in {}", self.dir.path),
            ));
        };
        Ok(Arc::new(SnapshotSource::new(
            self.dir.shared.repo.clone(),
            self.dir.shared.prefetch.clone(),
            &path,
            &node,
        )?))
    }
}
