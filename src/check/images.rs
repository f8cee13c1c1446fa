//! `check --images`: the disk images in the snapshots, opened and walked
//! through the same tree the mount serves ([`crate::vfs`]), so that what
//! the check calls an image, a partition or a filesystem is exactly what
//! `mount`, `ls` and `find --images` show.
//!
//! A file is an image when the tree gives it a `<name>.contents/` sibling
//! (the tree's own probe). Each distinct image content (the same list of
//! data blobs) is walked once, however many snapshots or paths hold it; its
//! findings are then repeated for every snapshot and path that holds it.
//! An image whose container opens other files (VMDK extents, a parent
//! disk) is the same image only beside the same files: its key includes
//! its directory's tree.
//! The walk lists the `.contents/` directory (container and partition
//! table), every volume whose filesystem has a reader (`pN/`, `fs/`), every
//! directory in it, and opens every regular file (its extents or run list);
//! with `read_data` it also reads every file to its end through one fixed
//! buffer. Images inside an image's filesystem (`floppy.img.contents/`)
//! are walked the same way, nested. Nothing stops the walk: every error
//! is a finding, and the walk goes on with the next entry.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::ErrorKind;
use crate::id::{Id, PackId, SnapshotId};
use crate::repo::pack::{BlobType, PackedBlob};
use crate::repo::{Index, Repository};
use crate::snapshot::{NodeType, Snapshot};
use crate::vfs::{self, CONTENTS_SUFFIX, Entry, Vfs};

use vaultfs_formats::container::{self, Disk, Info, Siblings};
use vaultfs_formats::fs;
use vaultfs_formats::image::Image;

use super::{CheckProgress, Finding, Kind, Location, Severity, Stats, join};

/// Bytes read at a time from a file inside an image.
const BUF: usize = 1 << 20;

/// After a failed read, the piece size used to find where it failed.
const PIECE: usize = 4096;

/// How deep images inside images are followed.
const MAX_NESTING: usize = 8;

/// What the image walk found and counted.
pub(super) struct ImageReport {
    pub(super) findings: Vec<Finding>,
    pub(super) stats: ImageStats,
}

/// The image part of [`Stats`].
#[derive(Default)]
pub(super) struct ImageStats {
    images: u64,
    volumes: u64,
    dirs: u64,
    files: u64,
    others: u64,
    bytes: u64,
}

impl ImageStats {
    pub(super) fn add_to(&self, s: &mut Stats) {
        s.images += self.images;
        s.image_volumes += self.volumes;
        s.image_dirs += self.dirs;
        s.image_files += self.files;
        s.image_others += self.others;
        s.image_bytes += self.bytes;
    }
}

/// A problem inside one image, before it is attached to the snapshots and
/// paths that hold the image.
struct Inner {
    severity: Severity,
    kind: Kind,
    inner_path: Option<String>,
    offset: Option<u64>,
    detail: String,
    /// The image's data blob the tree could not read, and where it starts
    /// in the image file.
    blob: Option<(Id, u64)>,
}

/// One distinct image content: where it is, and what its walk found.
struct Walked {
    users: Vec<(SnapshotId, String)>,
    found: Vec<Inner>,
}

/// Walks the disk images of `snapshots`. The tree reads the repository
/// through its in-memory index, which is filled here from `index` (the
/// check's own: a damaged index file must not stop the check).
pub(super) fn check(
    repo: &Arc<Repository>,
    index: &Index,
    snapshots: &[(SnapshotId, Snapshot)],
    read_data: bool,
    progress: &dyn CheckProgress,
) -> ImageReport {
    fill_index(repo, index);
    let tree = Vfs::new(
        repo.clone(),
        vfs::Options {
            images: true,
            ..vfs::Options::default()
        },
    );
    let mut walker = Walker {
        read_data,
        stats: ImageStats::default(),
        buf: Vec::new(),
    };
    let mut images: Vec<Walked> = Vec::new();
    // Content key -> index in `images`; keys of files that are no image.
    let mut known: HashMap<Id, usize> = HashMap::new();
    let mut not_images: HashSet<Id> = HashSet::new();
    // Content keys of images that open other files beside them.
    let mut with_siblings: HashSet<Id> = HashSet::new();
    for (sid, snap) in snapshots {
        // Damage the structural pass reports (a snapshot or tree that
        // cannot be read) only hides the images below it here.
        let Ok(root) = tree.snapshot_root(sid) else {
            continue;
        };
        for c in candidates(repo, snap) {
            let (dir, name) = (&c.dir, &c.name);
            let path = join(dir, name);
            // An image that names other files (VMDK extents, a parent
            // disk) is the same image only beside the same files.
            let mut key = if with_siblings.contains(&c.key) {
                beside(&c.key, &c.dir_tree)
            } else {
                c.key
            };
            if let Some(&i) = known.get(&key) {
                images[i].users.push((*sid, path));
                continue;
            }
            if not_images.contains(&key) {
                continue;
            }
            let parent = Vfs::resolve_from(&root, dir)
                .ok()
                .and_then(|d| d.as_dir(dir).ok());
            if parent
                .as_ref()
                .and_then(|d| d.lookup(&format!("{name}{CONTENTS_SUFFIX}")).ok())
                .flatten()
                .is_none_or(|e| !matches!(e, Entry::Dir(_)))
            {
                // The tree's probe reads the first data blob and takes a
                // file it cannot read for no image. Named like an image,
                // the file is reported: that blob is lost either way.
                if let Some(f) = unprobed(repo, name, &c.content) {
                    known.insert(key, images.len());
                    images.push(Walked {
                        users: vec![(*sid, path)],
                        found: vec![f],
                    });
                } else {
                    not_images.insert(key);
                }
                continue;
            }
            if !with_siblings.contains(&c.key) && parent.is_some_and(|d| names_siblings(&*d, name))
            {
                with_siblings.insert(c.key);
                key = beside(&c.key, &c.dir_tree);
                if let Some(&i) = known.get(&key) {
                    images[i].users.push((*sid, path));
                    continue;
                }
            }
            // The image is walked from a fresh root: the tree remembers
            // what it listed, and this way the listings inside one image
            // are dropped before the next is walked.
            let contents = tree
                .snapshot_root(sid)
                .and_then(|r| Vfs::resolve_from(&r, &format!("{path}{CONTENTS_SUFFIX}")));
            let Ok(contents) = contents else {
                continue;
            };
            progress.image(&path);
            walker.stats.images += 1;
            let mut found = Vec::new();
            walker.walk(&contents, &mut found);
            for f in &mut found {
                f.blob = blob_in(repo, &f.detail, &c.content);
                f.detail = without_paths(&f.detail, &path, f.inner_path.as_deref());
            }
            known.insert(key, images.len());
            images.push(Walked {
                users: vec![(*sid, path)],
                found,
            });
        }
    }
    let mut findings = Vec::new();
    for img in images {
        for (sid, path) in &img.users {
            for f in &img.found {
                findings.push(Finding {
                    severity: f.severity,
                    kind: f.kind,
                    location: Location {
                        snapshot: Some(*sid),
                        path: Some(path.clone()),
                        inner_path: f.inner_path.clone(),
                        offset: f.offset,
                        blob: f.blob.map(|b| b.0),
                        image_offset: f.blob.map(|b| b.1),
                        ..Location::default()
                    },
                    detail: f.detail.clone(),
                });
            }
        }
    }
    ImageReport {
        findings,
        stats: walker.stats,
    }
}

/// Copies the check's index into the repository's in-memory one.
fn fill_index(repo: &Repository, index: &Index) {
    let mut by_pack: HashMap<PackId, Vec<PackedBlob>> = HashMap::new();
    for t in [BlobType::Tree, BlobType::Data] {
        for l in index.blobs(t) {
            by_pack.entry(l.pack).or_default().push(l.blob);
        }
    }
    for (pack, blobs) in by_pack {
        repo.index_pack(pack, &blobs);
    }
}

/// A file that may be a disk image.
struct Candidate {
    /// Its directory in the snapshot.
    dir: String,
    name: String,
    /// Its size and blob list, hashed.
    key: Id,
    content: Vec<Id>,
    /// The tree of its directory: what its siblings are (an image only
    /// names files in and below its directory).
    dir_tree: Id,
}

/// The files of a snapshot the tree may take for disk images (named like
/// one or large, as the tree decides before probing): directory, name, and
/// a key of their content (size and blob list). Each distinct tree of the
/// snapshot is read once; a tree that cannot be read is skipped (the
/// structural pass reports it).
fn candidates(repo: &Repository, snap: &Snapshot) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut seen: HashSet<Id> = HashSet::new();
    let mut stack = vec![(snap.tree, "/".to_string())];
    while let Some((tid, path)) = stack.pop() {
        if !seen.insert(tid) {
            continue;
        }
        let Ok(tree) = repo.load_tree(&tid) else {
            continue;
        };
        for node in &tree.nodes {
            if let Some(sub) = node.subtree {
                stack.push((sub, join(&path, &node.name)));
                continue;
            }
            let content = node.content();
            // A file named `X.contents` hides the tree's directory for X.
            if node.node_type != NodeType::File
                || content.is_empty()
                || !vfs::worth_probing(&node.name, node.size)
                || tree
                    .find(&format!("{}{CONTENTS_SUFFIX}", node.name))
                    .is_some()
            {
                continue;
            }
            let mut key = Vec::with_capacity(8 + 32 * content.len());
            key.extend_from_slice(&node.size.to_le_bytes());
            for b in content {
                key.extend_from_slice(&b.0);
            }
            out.push(Candidate {
                dir: path.clone(),
                name: node.name.clone(),
                key: Id::hash(&key),
                content: content.to_vec(),
                dir_tree: tid,
            });
        }
    }
    // Path order: which holder of an image is walked does not depend on
    // the order of the walk.
    out.sort_by(|a, b| (&a.dir, &a.name).cmp(&(&b.dir, &b.name)));
    out
}

/// What the walk of the `.contents/` directory of one image meets.
enum Step {
    /// A `.contents/` directory (the image, or one nested in it), at this
    /// inner path ("" for the walked image itself) and nesting depth.
    Contents(Entry, String, usize),
    /// A volume's root (`pN/`, `fs/`): opening it opens the filesystem.
    Volume(Entry, String, usize),
    /// A directory of a filesystem.
    Dir(Entry, String, usize),
}

struct Walker {
    read_data: bool,
    stats: ImageStats,
    /// The read buffer, allocated on the first read.
    buf: Vec<u8>,
}

fn inner(kind: Kind, e: &crate::error::Error, path: &str, offset: Option<u64>) -> Inner {
    // What this build cannot read is not damage.
    let severity = if e.kind() == ErrorKind::Unsupported {
        Severity::Info
    } else {
        Severity::Error
    };
    Inner {
        severity,
        kind: if severity == Severity::Info {
            Kind::ImageUnsupported
        } else {
            kind
        },
        inner_path: (!path.is_empty()).then(|| path.to_string()),
        offset,
        detail: e.to_string(),
        blob: None,
    }
}

fn sub(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl Walker {
    /// Walks the `.contents/` directory `contents`, collecting problems.
    /// An explicit stack: a filesystem's depth is the image's to choose.
    fn walk(&mut self, contents: &Entry, found: &mut Vec<Inner>) {
        let mut stack = vec![Step::Contents(contents.clone(), String::new(), 0)];
        while let Some(step) = stack.pop() {
            let (entry, path, depth, kind, volume) = match step {
                Step::Contents(e, p, d) => (e, p, d, Kind::ImageDamaged, false),
                Step::Volume(e, p, d) => (e, p, d, Kind::ImageFsDamaged, true),
                Step::Dir(e, p, d) => (e, p, d, Kind::ImageFsDamaged, false),
            };
            let listing = match entry.as_dir(&path).and_then(|d| d.list()) {
                Ok(l) => l,
                Err(e) => {
                    found.push(inner(kind, &e, &path, None));
                    continue;
                }
            };
            if kind == Kind::ImageDamaged {
                // disk.raw, pN.raw and partitions.txt are the image's own
                // bytes (the data pass reads its blobs); the volumes with a
                // filesystem reader are directories.
                for (name, child) in listing.entries() {
                    let p = sub(&path, name);
                    match child {
                        Entry::Dir(_) => stack.push(Step::Volume(child.clone(), p, depth)),
                        Entry::Broken(b) => found.push(Inner {
                            severity: Severity::Error,
                            kind: Kind::ImageDamaged,
                            inner_path: Some(p),
                            offset: None,
                            detail: b.message.clone(),
                            blob: None,
                        }),
                        _ => {}
                    }
                }
                table_and_volumes(&listing, &path, found);
                continue;
            }
            if volume {
                self.stats.volumes += 1;
            }
            self.stats.dirs += 1;
            for (name, child) in listing.entries() {
                let p = sub(&path, name);
                match child {
                    Entry::Dir(d) if is_contents(&listing, name, &**d) => {
                        if depth < MAX_NESTING {
                            stack.push(Step::Contents(child.clone(), p, depth + 1));
                        }
                    }
                    Entry::Dir(_) => stack.push(Step::Dir(child.clone(), p, depth)),
                    Entry::File(_) => {
                        self.stats.files += 1;
                        self.file(child, &p, found);
                    }
                    Entry::Symlink(_) | Entry::Special(_) => self.stats.others += 1,
                    Entry::Broken(b) => {
                        let dir = b.attr.kind == vfs::Kind::Dir;
                        if dir {
                            self.stats.dirs += 1;
                        } else {
                            self.stats.files += 1;
                        }
                        found.push(Inner {
                            severity: Severity::Error,
                            kind: if dir {
                                Kind::ImageFsDamaged
                            } else {
                                Kind::ImageFileUnreadable
                            },
                            inner_path: Some(p),
                            offset: None,
                            detail: b.message.clone(),
                            blob: None,
                        });
                    }
                }
            }
        }
    }

    /// Opens a file inside an image (which resolves its extents) and, with
    /// `read_data`, reads it to its end.
    fn file(&mut self, entry: &Entry, path: &str, found: &mut Vec<Inner>) {
        let src = match entry.open(path) {
            Ok(s) => s,
            Err(e) => {
                found.push(inner(Kind::ImageFileUnreadable, &e, path, None));
                return;
            }
        };
        if !self.read_data {
            return;
        }
        if self.buf.is_empty() {
            self.buf = vec![0; BUF];
        }
        let len = src.len();
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(BUF as u64) as usize;
            match src.read_at(at, &mut self.buf[..n]) {
                Ok(0) => {
                    found.push(Inner {
                        severity: Severity::Error,
                        kind: Kind::ImageFileUnreadable,
                        inner_path: Some(path.to_string()),
                        offset: Some(at),
                        detail: format!("file of {len} bytes ends at {at}"),
                        blob: None,
                    });
                    return;
                }
                Ok(got) => {
                    self.stats.bytes += got as u64;
                    at += got as u64;
                }
                Err(e) => {
                    // Find the piece that fails, so the offset is close to
                    // the damage, not the start of the buffer.
                    let (off, e) = self.first_failure(&*src, at, n).unwrap_or((at, e));
                    let kind = if e.kind() == std::io::ErrorKind::Unsupported {
                        ErrorKind::Unsupported
                    } else {
                        ErrorKind::Damaged
                    };
                    let e = crate::error::Error::new(kind, e.to_string());
                    found.push(inner(Kind::ImageFileUnreadable, &e, path, Some(off)));
                    return;
                }
            }
        }
    }

    /// The first `PIECE`-sized piece of `[at, at + n)` that fails to read,
    /// with its error.
    fn first_failure(
        &mut self,
        src: &dyn vfs::ReadAt,
        at: u64,
        n: usize,
    ) -> Option<(u64, std::io::Error)> {
        let mut off = at;
        let end = at + n as u64;
        while off < end {
            let k = (end - off).min(PIECE as u64) as usize;
            match src.read_at(off, &mut self.buf[..k]) {
                Ok(0) => return None,
                Ok(got) => {
                    self.stats.bytes += got as u64;
                    off += got as u64;
                }
                Err(e) => return Some((off, e)),
            }
        }
        None
    }
}

/// The key of an image's content beside the files of directory tree
/// `dir_tree`.
fn beside(key: &Id, dir_tree: &Id) -> Id {
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(&key.0);
    both[32..].copy_from_slice(&dir_tree.0);
    Id::hash(&both)
}

/// Does the image `name` in directory `dir` open other files to open its
/// container (VMDK extents, a parent disk)? Its container is opened once
/// more with siblings that only note that they were asked for.
fn names_siblings(dir: &dyn vfs::Dir, name: &str) -> bool {
    struct Asked(AtomicBool);
    impl Siblings for Asked {
        fn open(&self, name: &str) -> std::io::Result<vfs::Source> {
            self.0.store(true, Ordering::Relaxed);
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name:?}: only noted"),
            ))
        }
    }
    let Ok(Some(Entry::File(f))) = dir.lookup(name) else {
        return false;
    };
    let Ok(src) = f.open() else {
        return false;
    };
    let asked = Asked(AtomicBool::new(false));
    let _ = container::open(src, name, &asked);
    asked.0.load(Ordering::Relaxed)
}

/// A finding for a file named like a disk image whose first data blob (the
/// one the tree probes) cannot be read, if that is so.
fn unprobed(repo: &Repository, name: &str, content: &[Id]) -> Option<Inner> {
    // Small files are probed only when named like an image.
    if !vfs::worth_probing(name, 512) {
        return None;
    }
    let first = content.first()?;
    let e = repo.load_blob(BlobType::Data, first).err()?;
    Some(Inner {
        severity: Severity::Error,
        kind: Kind::ImageDamaged,
        inner_path: None,
        offset: None,
        detail: format!("cannot tell whether this is a disk image: {e}"),
        blob: Some((*first, 0)),
    })
}

/// Is directory `d`, called `name` in `listing`, the `.contents/` of a
/// file beside it? The tree adds one only where the filesystem has no
/// entry of that name, and a filesystem's own directory has details (its
/// inode) where the tree's has none.
fn is_contents(listing: &vfs::Listing, name: &str, d: &dyn vfs::Dir) -> bool {
    name.strip_suffix(CONTENTS_SUFFIX)
        .is_some_and(|file| matches!(listing.get(file), Some(Entry::File(_))))
        && d.details().is_ok_and(|v| v.is_empty())
}

/// What the tree shows of an image's partition table and volumes only as
/// `partitions.txt` (an unreadable table, a volume whose head cannot be
/// read, so it has no `pN/`; a filesystem without a reader), with the
/// reasons: the virtual disk (`disk.raw`) read again by the same code the
/// tree used ([`Image::from_disk`]).
fn table_and_volumes(listing: &vfs::Listing, path: &str, found: &mut Vec<Inner>) {
    let Some(Ok(src)) = listing.get("disk.raw").map(|e| e.open("disk.raw")) else {
        return;
    };
    let len = src.len();
    let image = Image::from_disk(Disk {
        data: src,
        info: Info::new("raw", "", len),
    });
    if let Err(e) = &image.table {
        found.push(Inner {
            severity: Severity::Error,
            kind: Kind::ImageDamaged,
            inner_path: Some(sub(path, "partitions.txt")),
            offset: None,
            detail: format!("partition table: {e}"),
            blob: None,
        });
    }
    for v in &image.volumes {
        let at = Some(sub(path, &v.name));
        match &v.fs {
            Err(e) => found.push(Inner {
                severity: Severity::Error,
                kind: Kind::ImageFsDamaged,
                inner_path: at,
                offset: None,
                detail: format!("detecting the filesystem: {e}"),
                blob: None,
            }),
            Ok(Some(kind)) if !fs::has_reader(*kind) => found.push(Inner {
                severity: Severity::Info,
                kind: Kind::ImageUnsupported,
                inner_path: at,
                offset: None,
                detail: format!(
                    "no reader for {kind} volumes: only its bytes ({}.raw) are shown",
                    v.name
                ),
                blob: None,
            }),
            Ok(_) => {}
        }
    }
}

/// The data blob of the image (`content`) a tree error names ("data blob
/// <id> in pack …", the repository's words), and where it first starts in
/// the image file; `None` if the error names no blob of this image.
fn blob_in(repo: &Repository, detail: &str, content: &[Id]) -> Option<(Id, u64)> {
    let (_, rest) = detail.split_once("data blob ")?;
    let id: Id = rest.get(..64)?.parse().ok()?;
    let i = content.iter().position(|b| *b == id)?;
    let index = repo.index();
    let mut start = 0u64;
    for b in &content[..i] {
        start += u64::from(index.get(BlobType::Data, b)?.blob.plain_len());
    }
    Some((id, start))
}

/// A detail without the paths the finding's location gives: the tree path
/// it starts with, and the image's path where the tree's messages name it
/// (an image found in several places is walked once, at the first).
fn without_paths(detail: &str, image: &str, inner: Option<&str>) -> String {
    let base = format!("{image}{CONTENTS_SUFFIX}");
    let shown = match inner {
        Some(i) => format!("{base}/{i}: "),
        None => format!("{base}: "),
    };
    let rest = detail.strip_prefix(shown.as_str()).unwrap_or(detail);
    rest.replace(&format!(" {base}:"), ":")
        .replace(&format!("{image}: "), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_lose_the_paths_the_location_gives() {
        let img = "/src/d.img";
        assert_eq!(
            without_paths(
                "/src/d.img.contents/p1/a: reading the volume: /src/d.img: data blob 1f: MAC mismatch",
                img,
                Some("p1/a")
            ),
            "reading the volume: data blob 1f: MAC mismatch"
        );
        assert_eq!(
            without_paths(
                "opening disk image /src/d.img.contents: bad header",
                img,
                None
            ),
            "opening disk image: bad header"
        );
        assert_eq!(sub("", "p1"), "p1");
        assert_eq!(sub("p1/x.img.contents", "fs"), "p1/x.img.contents/fs");
    }
}
