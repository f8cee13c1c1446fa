//! `repair`: rebuild the index from the packs, and find (and forget) the
//! snapshots that need data which is lost.
//!
//! [`rebuild_index`] is restic's `rebuild-index` (0.14; `repair index` in
//! later versions): every pack in `data/` is described in new index files,
//! taken from a readable old index when that describes the pack exactly
//! (same size), else from the pack's own header. A pack whose header cannot
//! be read is left out and reported, never deleted. New index files are
//! written before the old ones are removed, so an interrupted repair leaves
//! the vault with both (duplicate entries are allowed), never with none.
//!
//! [`snapshots`] is restic's `repair snapshots --forget`: it walks every
//! snapshot's trees against the index and lists the snapshots that need a
//! tree or data blob which is not there (or a tree that cannot be read);
//! with `forget_damaged` it removes those snapshot files. A snapshot whose
//! data is all there is never removed; a read error that may be passing
//! (I/O rather than damage) stops the run instead of condemning a snapshot.
//!
//! Nothing here prints or locks: the caller takes the lock (exclusive for
//! anything that writes) and reports the returned data.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use crate::backend::FileType;
use crate::check::CheckProgress;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{Id, PackId, SnapshotId};
use crate::repo::Repository;
use crate::repo::index::IndexFile;
use crate::repo::pack::{self, BlobType, PackedBlob};
use crate::snapshot::{Node, NodeType, Snapshot, Tree};

/// A new index file is closed once it holds this many blobs (whole packs
/// only), as restic does (`indexMaxBlobs`; three times that,
/// `indexMaxBlobsCompressed`, when the repository is version 2 and its
/// index files are compressed).
pub fn index_file_blobs(repo: &Repository) -> usize {
    if repo.config().version >= 2 {
        150_000
    } else {
        50_000
    }
}

/// The largest pack `read_all_packs` reads into memory (blob offsets are
/// 32-bit, so no real pack is larger).
const MAX_PACK: u64 = 1 << 32;

/// How to rebuild the index.
#[derive(Clone, Copy, Debug, Default)]
pub struct IndexOptions {
    /// Take nothing from the old index (it is still read, to report
    /// damaged index files and packs gone from `data/`): read every pack
    /// whole and index only the blobs that verify (MAC, decryption,
    /// decompression, SHA-256).
    pub read_all_packs: bool,
}

/// An old index file that could not be used.
#[derive(Clone, Debug, Serialize)]
pub struct DamagedIndexFile {
    /// Its id (file name).
    pub id: Id,
    /// Why.
    pub error: String,
}

/// A pack in `data/` that is not in the new index.
#[derive(Clone, Debug, Serialize)]
pub struct LeftOutPack {
    /// The pack.
    pub pack: PackId,
    /// Its size.
    pub size: u64,
    /// Why its blobs could not be indexed.
    pub reason: String,
}

/// A blob of a readable pack that failed verification and was not indexed.
#[derive(Clone, Debug, Serialize)]
pub struct DroppedBlob {
    /// The pack.
    pub pack: PackId,
    /// `data` or `tree`.
    #[serde(rename = "type")]
    pub blob_type: &'static str,
    /// The blob.
    pub id: Id,
    /// Why.
    pub reason: String,
}

/// A pack the old index named that `data/` does not have.
#[derive(Clone, Debug, Serialize)]
pub struct MissingPack {
    /// The pack.
    pub pack: PackId,
    /// Blobs the old index listed in it.
    pub blobs: usize,
}

/// What [`rebuild_index`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IndexReport {
    /// Old index files found.
    pub old_index_files: usize,
    /// Old index files that could not be read (they are replaced too).
    pub damaged_index_files: Vec<DamagedIndexFile>,
    /// Packs in `data/`.
    pub packs: u64,
    /// Packs taken from the old index without reading them.
    pub packs_from_index: u64,
    /// Packs whose header (or, with `read_all_packs`, whole content) was read.
    pub packs_read: u64,
    /// Bytes read from packs.
    pub bytes_read: u64,
    /// Packs in the new index.
    pub packs_indexed: u64,
    /// Blobs in the new index.
    pub blobs_indexed: u64,
    /// New index files written.
    pub index_files_written: Vec<Id>,
    /// Old index files removed.
    pub index_files_removed: Vec<Id>,
    /// Packs left out of the new index (they stay in `data/`).
    pub left_out: Vec<LeftOutPack>,
    /// Blobs that failed verification (`read_all_packs` only).
    pub dropped_blobs: Vec<DroppedBlob>,
    /// Packs the old index named that are not in `data/`.
    pub missing_packs: Vec<MissingPack>,
}

impl IndexReport {
    /// Did the new index lose anything the packs or the old index had?
    pub fn lost_data(&self) -> bool {
        !self.left_out.is_empty()
            || !self.dropped_blobs.is_empty()
            || !self.missing_packs.is_empty()
    }
}

/// What reading one pack gave.
enum PackRead {
    /// These blobs are indexed; those failed verification.
    Blobs {
        good: Vec<PackedBlob>,
        dropped: Vec<(PackedBlob, String)>,
    },
    /// Left out, with the reason.
    LeftOut(String),
}

/// Reads one pack's header (or, with `whole`, the pack, verifying every
/// blob). A missing pack or an I/O error is a left-out pack too: the repair
/// goes on and says so.
fn read_pack(repo: &Repository, id: &PackId, size: u64, whole: bool) -> PackRead {
    let strip = |e: Error| {
        let m = e.to_string();
        let prefix = format!("pack {id}: ");
        m.strip_prefix(&prefix).map(str::to_owned).unwrap_or(m)
    };
    if !whole {
        return match repo.read_pack_header(id, size) {
            Ok(good) => PackRead::Blobs {
                good,
                dropped: Vec::new(),
            },
            Err(e) => PackRead::LeftOut(strip(e)),
        };
    }
    if size > MAX_PACK {
        return PackRead::LeftOut(format!(
            "pack of {size} bytes is larger than any pack can be"
        ));
    }
    let data = match repo.backend().read(FileType::Pack, &id.to_hex()) {
        Ok(d) => d,
        Err(e) => return PackRead::LeftOut(format!("reading pack: {e}")),
    };
    let blobs = match pack::header_of_pack(repo.key(), id, &data) {
        Ok(b) => b,
        Err(e) => return PackRead::LeftOut(strip(e)),
    };
    let mut good = Vec::with_capacity(blobs.len());
    let mut dropped = Vec::new();
    for b in blobs {
        let what = format!("{} blob {}", b.blob_type.as_str(), b.id);
        let range = b.offset as usize..b.offset as usize + b.length as usize;
        // parse_header bounded every blob by the header's start.
        let Some(enc) = data.get(range) else {
            dropped.push((b, "blob outside the pack".into()));
            continue;
        };
        let mut buf = enc.to_vec();
        match repo.decode_blob(&what, &b, &mut buf) {
            Ok(_) => good.push(b),
            Err(e) => {
                let m = e.to_string();
                let m = m
                    .strip_prefix(&format!("{what}: "))
                    .map(str::to_owned)
                    .unwrap_or(m);
                dropped.push((b, m));
            }
        }
    }
    PackRead::Blobs { good, dropped }
}

/// The old index, pack by pack; `None` for a pack whose entries disagree
/// with each other (one blob at two places), which is then read.
type OldIndex = BTreeMap<PackId, Option<Vec<PackedBlob>>>;

fn load_old_index(repo: &Repository, ids: &[Id], report: &mut IndexReport) -> OldIndex {
    let files = crate::parallel::map(ids.to_vec(), |id| {
        Ok::<_, ()>((id, repo.load_unpacked::<IndexFile>(FileType::Index, &id)))
    })
    .unwrap_or_default();
    let mut old: OldIndex = BTreeMap::new();
    for (id, f) in files {
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                let m = e.to_string();
                let prefix = format!("index/{id}: ");
                report.damaged_index_files.push(DamagedIndexFile {
                    id,
                    error: m.strip_prefix(&prefix).map(str::to_owned).unwrap_or(m),
                });
                continue;
            }
        };
        for p in f.packs {
            if let Some(list) = old.entry(p.id).or_insert_with(|| Some(Vec::new())) {
                list.extend(p.blobs.iter().map(|b| PackedBlob {
                    blob_type: b.blob_type.into(),
                    id: b.id,
                    offset: b.offset,
                    length: b.length,
                    uncompressed_length: b.uncompressed_length,
                }));
            }
        }
    }
    // The same pack in two index files is fine (exact duplicates go); one
    // blob at two places in a pack means its entries cannot be trusted.
    // Sorting keeps this O(n log n) for packs of many small blobs.
    for entry in old.values_mut() {
        let Some(list) = entry.as_mut() else {
            continue;
        };
        list.sort_by_key(|b| (b.blob_type, b.id, b.offset, b.length, b.uncompressed_length));
        list.dedup();
        if list
            .windows(2)
            .any(|w| w[0].blob_type == w[1].blob_type && w[0].id == w[1].id)
        {
            *entry = None;
        } else {
            list.sort_by_key(|b| b.offset);
        }
    }
    old
}

/// Rebuilds the index from the packs in `data/` (see the module docs).
/// The caller must hold the exclusive lock. Errors are only those that stop
/// the repair (listing fails, a new index file cannot be written, an old
/// one cannot be removed); damage is reported in the result.
pub fn rebuild_index(
    repo: &Repository,
    opts: &IndexOptions,
    progress: &dyn CheckProgress,
) -> Result<IndexReport> {
    rebuild_index_split(repo, opts, progress, index_file_blobs(repo))
}

/// [`rebuild_index`] closing each index file at `max_blobs` blobs.
fn rebuild_index_split(
    repo: &Repository,
    opts: &IndexOptions,
    progress: &dyn CheckProgress,
    max_blobs: usize,
) -> Result<IndexReport> {
    let mut report = IndexReport::default();
    let old_ids = repo.list_ids(FileType::Index)?;
    report.old_index_files = old_ids.len();
    // Also read with `read_all_packs`, which takes nothing from it: damaged
    // index files and packs gone from data/ are still worth reporting.
    let old = load_old_index(repo, &old_ids, &mut report);
    let files = repo
        .backend()
        .list(FileType::Pack)
        .map_err(|e| Error::io("listing data", e))?;
    let mut listed: Vec<(PackId, u64)> = files
        .iter()
        .filter_map(|f| f.name.parse::<Id>().ok().map(|id| (id, f.size)))
        .collect();
    listed.sort();
    listed.dedup_by_key(|(id, _)| *id);
    report.packs = listed.len() as u64;

    let mut new: BTreeMap<PackId, Vec<PackedBlob>> = BTreeMap::new();
    let mut to_read: Vec<(PackId, u64)> = Vec::new();
    for &(id, size) in &listed {
        match old.get(&id) {
            Some(Some(blobs)) if !opts.read_all_packs && pack::expected_size(blobs) == size => {
                report.packs_from_index += 1;
                new.insert(id, blobs.clone());
            }
            _ => to_read.push((id, size)),
        }
    }
    let present: HashSet<PackId> = listed.iter().map(|(id, _)| *id).collect();
    for (id, entries) in &old {
        if !present.contains(id) {
            report.missing_packs.push(MissingPack {
                pack: *id,
                blobs: entries.as_ref().map_or(0, Vec::len),
            });
        }
    }

    let whole = opts.read_all_packs;
    let bytes: u64 = if whole {
        to_read.iter().map(|(_, s)| s).sum()
    } else {
        0
    };
    progress.start(to_read.len() as u64, bytes);
    let results = crate::parallel::map(to_read, |(id, size)| {
        let r = read_pack(repo, &id, size, whole);
        progress.pack_done(if whole { size } else { 0 });
        Ok::<_, ()>((id, size, r))
    })
    .unwrap_or_default();
    for (id, size, r) in results {
        report.packs_read += 1;
        match r {
            PackRead::Blobs { good, dropped } => {
                report.bytes_read += if whole {
                    size
                } else {
                    // The trailer and the header: all but the blobs.
                    size.saturating_sub(good.iter().map(|b| u64::from(b.length)).sum::<u64>())
                };
                for (b, reason) in dropped {
                    report.dropped_blobs.push(DroppedBlob {
                        pack: id,
                        blob_type: b.blob_type.as_str(),
                        id: b.id,
                        reason,
                    });
                }
                // A pack without a single good blob adds nothing.
                if !good.is_empty() {
                    new.insert(id, good);
                }
            }
            PackRead::LeftOut(reason) => report.left_out.push(LeftOutPack {
                pack: id,
                size,
                reason,
            }),
        }
    }

    report.packs_indexed = new.len() as u64;
    report.blobs_indexed = new.values().map(|b| b.len() as u64).sum();
    let (written, removed) = replace_index(repo, &new, &old_ids, max_blobs)?;
    report.index_files_written = written;
    report.index_files_removed = removed;
    Ok(report)
}

/// Writes an index describing exactly `packs` (whole packs per file, a file
/// closed once it holds `max_blobs` blobs, restic's rule; the last file
/// lists `old_ids` in `supersedes`, as restic does), then removes the old
/// index files `old_ids`. Returns the files written and removed. An error
/// while writing leaves the old index untouched; one while removing leaves
/// old and new files side by side (duplicate entries, which are allowed).
pub(crate) fn replace_index(
    repo: &Repository,
    packs: &BTreeMap<PackId, Vec<PackedBlob>>,
    old_ids: &[Id],
    max_blobs: usize,
) -> Result<(Vec<Id>, Vec<Id>)> {
    let mut chunks: Vec<IndexFile> = Vec::new();
    let mut current = IndexFile::default();
    for (id, blobs) in packs {
        current.add_pack(*id, blobs);
        if current.blob_count() >= max_blobs {
            chunks.push(std::mem::take(&mut current));
        }
    }
    if !current.packs.is_empty() {
        chunks.push(current);
    }
    if let Some(last) = chunks.last_mut() {
        last.supersedes = old_ids.to_vec();
    }
    let mut written = Vec::new();
    for f in &chunks {
        let id = repo
            .save_unpacked(FileType::Index, f)
            .map_err(|e| e.context("writing the new index (the old one is still in place)"))?;
        written.push(id);
    }
    let new_ids: HashSet<Id> = written.iter().copied().collect();
    let mut removed = Vec::new();
    for id in old_ids {
        if new_ids.contains(id) {
            continue;
        }
        repo.backend()
            .remove(FileType::Index, &id.to_hex())
            .map_err(|e| {
                Error::io(
                    format!(
                        "removing old index file {id} (the new index is complete; \
                         remove the remaining old index files or run the command again)"
                    ),
                    e,
                )
            })?;
        removed.push(*id);
    }
    Ok((written, removed))
}

/// How to repair snapshots.
#[derive(Clone, Copy, Debug, Default)]
pub struct SnapshotOptions {
    /// Remove the snapshots that need lost data.
    pub forget_damaged: bool,
    /// Only say what would be removed.
    pub dry_run: bool,
}

/// What is wrong at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lost {
    /// A tree is not in the index.
    TreeMissing,
    /// A tree cannot be read or parsed.
    TreeDamaged,
    /// A directory has no subtree.
    NoSubtree,
    /// A data blob is not in the index (or its pack is gone).
    BlobMissing,
}

/// A path inside a snapshot whose data is lost.
#[derive(Clone, Debug, Serialize)]
pub struct LostPath {
    /// The path (`/` is the snapshot's root).
    pub path: String,
    /// What is lost.
    pub lost: Lost,
    /// The tree or data blob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<Id>,
}

/// At most this many paths are kept per tree and snapshot (the count goes
/// on).
pub const MAX_PATHS: usize = 5;

/// A snapshot that needs lost data.
#[derive(Clone, Debug, Serialize)]
pub struct DamagedSnapshot {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its time.
    pub time: DateTime<FixedOffset>,
    /// Its host.
    pub hostname: String,
    /// Its paths.
    pub paths: Vec<String>,
    /// The first paths whose data is lost (at most [`MAX_PATHS`]).
    pub lost: Vec<LostPath>,
    /// How many entries are lost in all (an entry in a subtree shared by
    /// several directories counts once per directory).
    pub lost_count: u64,
    /// The snapshot file was removed.
    pub removed: bool,
}

/// A snapshot file that cannot be read (never removed: there is nothing to
/// tell what it was).
#[derive(Clone, Debug, Serialize)]
pub struct UnreadableSnapshot {
    /// The file's id.
    pub id: SnapshotId,
    /// Why.
    pub error: String,
}

/// What [`snapshots`] found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SnapshotsReport {
    /// Snapshots read.
    pub snapshots: u64,
    /// Distinct trees read.
    pub trees: u64,
    /// Snapshots needing lost data, oldest first.
    pub damaged: Vec<DamagedSnapshot>,
    /// Snapshot files that cannot be read.
    pub unreadable: Vec<UnreadableSnapshot>,
    /// Packs the index names that `data/` does not have (their blobs count
    /// as lost; `repair index` removes them from the index).
    pub missing_packs: Vec<PackId>,
}

/// The damage below one tree, relative to it.
#[derive(Clone, Default)]
struct Damage {
    /// Relative paths (`""` is the tree itself).
    paths: Vec<(String, Lost, Option<Id>)>,
    count: u64,
}

impl Damage {
    fn add(&mut self, path: String, lost: Lost, blob: Option<Id>) {
        self.count += 1;
        if self.paths.len() < MAX_PATHS {
            self.paths.push((path, lost, blob));
        }
    }

    fn merge(&mut self, name: &str, child: &Damage) {
        self.count += child.count;
        for (p, l, b) in &child.paths {
            if self.paths.len() >= MAX_PATHS {
                break;
            }
            self.paths.push((join_rel(name, p), *l, *b));
        }
    }
}

fn join_rel(name: &str, rest: &str) -> String {
    if rest.is_empty() {
        name.to_string()
    } else {
        format!("{name}/{rest}")
    }
}

/// Walks trees against the index, each distinct tree once.
struct Walker<'a> {
    repo: &'a Repository,
    missing_packs: HashSet<PackId>,
    /// Per tree: `None` complete, else what is lost below it.
    done: HashMap<Id, Option<Damage>>,
    trees: u64,
}

/// One directory being walked.
struct Frame {
    id: Id,
    /// The name it has in its parent.
    name: String,
    tree: Tree,
    next: usize,
    damage: Damage,
}

impl Walker<'_> {
    fn blob_lost(&self, t: BlobType, id: &Id) -> bool {
        match self.repo.index().get(t, id) {
            None => true,
            Some(l) => self.missing_packs.contains(&l.pack),
        }
    }

    /// Reads a tree. `Ok(Err(lost))` is damage; `Err` an error that may
    /// pass (I/O), which stops the run.
    fn load(&mut self, id: &Id) -> Result<std::result::Result<Tree, Lost>> {
        if self.blob_lost(BlobType::Tree, id) {
            return Ok(Err(Lost::TreeMissing));
        }
        match self
            .repo
            .read_blob(BlobType::Tree, id)
            .and_then(|d| Tree::decode(id, &d))
        {
            Ok(t) => {
                self.trees += 1;
                Ok(Ok(t))
            }
            Err(e) if matches!(e.kind(), ErrorKind::Damaged | ErrorKind::Missing) => {
                Ok(Err(Lost::TreeDamaged))
            }
            Err(e) => Err(e.context("reading a tree (nothing was removed)")),
        }
    }

    /// What is lost below tree `root` (`None`: nothing).
    fn walk(&mut self, root: Id) -> Result<Option<Damage>> {
        if let Some(d) = self.done.get(&root) {
            return Ok(d.clone());
        }
        let tree = match self.load(&root)? {
            Ok(t) => t,
            Err(lost) => {
                let mut d = Damage::default();
                d.add(String::new(), lost, Some(root));
                self.done.insert(root, Some(d.clone()));
                return Ok(Some(d));
            }
        };
        let mut in_progress: HashSet<Id> = HashSet::from([root]);
        let mut stack = vec![Frame {
            id: root,
            name: String::new(),
            tree,
            next: 0,
            damage: Damage::default(),
        }];
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(None);
            };
            let Some(node) = top.tree.nodes.get(top.next) else {
                // The directory is done: remember it, hand it to its parent.
                let Some(f) = stack.pop() else {
                    return Ok(None);
                };
                in_progress.remove(&f.id);
                let result = (f.damage.count > 0).then_some(f.damage);
                self.done.insert(f.id, result.clone());
                match (stack.last_mut(), result) {
                    (None, r) => return Ok(r),
                    (Some(parent), Some(d)) => parent.damage.merge(&f.name, &d),
                    (Some(_), None) => {}
                }
                continue;
            };
            top.next += 1;
            let node: Node = node.clone();
            let content = node.content.as_deref().unwrap_or(&[]);
            if let Some(b) = content
                .iter()
                .find(|b| self.blob_lost(BlobType::Data, b))
                .copied()
            {
                if let Some(top) = stack.last_mut() {
                    top.damage
                        .add(node.name.clone(), Lost::BlobMissing, Some(b));
                }
            }
            let sub = match node.subtree {
                Some(s) => s,
                None => {
                    if node.node_type == NodeType::Dir {
                        if let Some(top) = stack.last_mut() {
                            top.damage.add(node.name.clone(), Lost::NoSubtree, None);
                        }
                    }
                    continue;
                }
            };
            if let Some(d) = self.done.get(&sub) {
                if let (Some(d), Some(top)) = (d.clone(), stack.last_mut()) {
                    top.damage.merge(&node.name, &d);
                }
                continue;
            }
            if in_progress.contains(&sub) {
                // A tree containing itself cannot be hashed into being;
                // treat it as damage rather than loop.
                if let Some(top) = stack.last_mut() {
                    top.damage
                        .add(node.name.clone(), Lost::TreeDamaged, Some(sub));
                }
                continue;
            }
            match self.load(&sub)? {
                Ok(tree) => {
                    in_progress.insert(sub);
                    stack.push(Frame {
                        id: sub,
                        name: node.name.clone(),
                        tree,
                        next: 0,
                        damage: Damage::default(),
                    });
                }
                Err(lost) => {
                    let mut d = Damage::default();
                    d.add(String::new(), lost, Some(sub));
                    self.done.insert(sub, Some(d.clone()));
                    if let Some(top) = stack.last_mut() {
                        top.damage.merge(&node.name, &d);
                    }
                }
            }
        }
    }
}

/// Finds the snapshots that need lost data and, with `forget_damaged` (and
/// not `dry_run`), removes their files. The caller holds a lock: exclusive
/// when snapshots are to be removed. The index must load completely (a
/// damaged index file would make intact data look lost: repair the index
/// first); removing is refused while the index names packs that are gone.
pub fn snapshots(repo: &Repository, opts: &SnapshotOptions) -> Result<SnapshotsReport> {
    repo.load_index()
        .map_err(|e| e.context("loading the index (run `vaultfs repair index` first)"))?;
    let mut report = SnapshotsReport::default();
    let present: HashSet<PackId> = repo.list_ids(FileType::Pack)?.into_iter().collect();
    let mut missing: Vec<PackId> = repo
        .index()
        .packs()
        .iter()
        .filter(|p| !present.contains(p))
        .copied()
        .collect();
    missing.sort();
    report.missing_packs = missing.clone();
    let mut walker = Walker {
        repo,
        missing_packs: missing.into_iter().collect(),
        done: HashMap::new(),
        trees: 0,
    };
    let mut snaps: Vec<(SnapshotId, Snapshot)> = Vec::new();
    for id in repo.list_ids(FileType::Snapshot)? {
        match repo.load_unpacked::<Snapshot>(FileType::Snapshot, &id) {
            Ok(s) => snaps.push((id, s)),
            Err(e) if matches!(e.kind(), ErrorKind::Damaged | ErrorKind::Missing) => {
                let m = e.to_string();
                let prefix = format!("snapshots/{id}: ");
                report.unreadable.push(UnreadableSnapshot {
                    id,
                    error: m.strip_prefix(&prefix).map(str::to_owned).unwrap_or(m),
                });
            }
            Err(e) => return Err(e),
        }
    }
    snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    report.snapshots = snaps.len() as u64;
    for (id, snap) in snaps {
        let Some(d) = walker.walk(snap.tree)? else {
            continue;
        };
        report.damaged.push(DamagedSnapshot {
            id,
            time: snap.time,
            hostname: snap.hostname,
            paths: snap.paths,
            lost: d
                .paths
                .into_iter()
                .map(|(p, lost, blob)| LostPath {
                    path: format!("/{p}"),
                    lost,
                    blob,
                })
                .collect(),
            lost_count: d.count,
            removed: false,
        });
    }
    report.trees = walker.trees;
    if opts.forget_damaged && !opts.dry_run && !report.damaged.is_empty() {
        if !report.missing_packs.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the index names {} packs that are not in data/; run `vaultfs repair index` \
                     first (nothing was removed)",
                    report.missing_packs.len()
                ),
            ));
        }
        for s in &mut report.damaged {
            repo.backend()
                .remove(FileType::Snapshot, &s.id.to_hex())
                .map_err(|e| Error::io(format!("removing snapshot {}", s.id), e))?;
            s.removed = true;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_size_matches_a_built_pack() {
        let key = crate::crypto::Key::random();
        let mut b = pack::PackBuilder::default();
        b.add(BlobType::Data, Id::hash(b"a"), &key.encrypt(b"a"), None);
        b.add(BlobType::Tree, Id::hash(b"b"), &key.encrypt(b"bb"), Some(9));
        let fin = b.finish(&key);
        assert_eq!(pack::expected_size(&fin.blobs), fin.bytes().len() as u64);
        let blobs = pack::header_of_pack(&key, &fin.id, fin.bytes()).expect("header");
        assert_eq!(blobs, fin.blobs);
    }

    /// Packs of `sizes[i]` tiny data blobs each, written to a fresh
    /// repository; returns it with every blob id.
    fn repo_with_packs(sizes: &[usize]) -> (Repository, Vec<Id>) {
        let kdf = crate::repo::KdfParams {
            n: 1 << 10,
            r: 8,
            p: 1,
        };
        let backend = std::sync::Arc::new(crate::backend::MemBackend::new());
        let repo = Repository::init(backend, b"pw", kdf).expect("init");
        let mut all = Vec::new();
        let mut n = 0u32;
        for &size in sizes {
            let mut b = pack::PackBuilder::default();
            for _ in 0..size {
                let plain = n.to_le_bytes();
                n += 1;
                let id = Id::hash(&plain);
                b.add(BlobType::Data, id, &repo.key().encrypt(&plain), None);
                all.push(id);
            }
            let fin = b.finish(repo.key());
            repo.backend()
                .write(FileType::Pack, &fin.id.to_hex(), fin.bytes())
                .expect("pack");
        }
        (repo, all)
    }

    #[test]
    fn index_files_are_split_after_whole_packs() {
        // Packs of one size, so the split does not depend on their (random)
        // ids: a file is closed once it reaches 10 blobs.
        let (repo, blobs) = repo_with_packs(&[4, 4, 4, 4, 4]);
        assert_eq!(index_file_blobs(&repo), 150_000);
        let opts = IndexOptions::default();
        let r = rebuild_index_split(&repo, &opts, &crate::check::NoProgress, 10).expect("repair");
        assert_eq!(r.packs_read, 5);
        assert_eq!(r.blobs_indexed, 20);
        let mut sizes = Vec::new();
        let mut idx = crate::repo::Index::new();
        for id in repo.list_ids(FileType::Index).expect("list") {
            let f: IndexFile = repo.load_unpacked(FileType::Index, &id).expect("load");
            sizes.push(f.blob_count());
            idx.add_file(&f);
        }
        sizes.sort();
        assert_eq!(sizes, [8, 12]);
        assert_eq!(r.index_files_written.len(), sizes.len());
        for b in &blobs {
            assert!(idx.contains(BlobType::Data, b));
        }
        // Rebuilt again: everything from the index, the files replaced.
        let again =
            rebuild_index_split(&repo, &opts, &crate::check::NoProgress, 10).expect("again");
        assert_eq!(again.packs_read, 0);
        assert_eq!(again.packs_from_index, 5);
        assert_eq!(again.index_files_removed.len(), sizes.len());
        assert_eq!(
            repo.list_ids(FileType::Index).expect("list").len(),
            again.index_files_written.len()
        );
    }

    /// An old index listing a blob at two places in one pack is not
    /// trusted for that pack: its header is read; exact duplicates (the
    /// same pack in two index files) are fine.
    #[test]
    fn inconsistent_old_entries_make_the_pack_read() {
        let (repo, _) = repo_with_packs(&[3, 2]);
        let opts = IndexOptions::default();
        rebuild_index(&repo, &opts, &crate::check::NoProgress).expect("first");
        let files = repo.list_ids(FileType::Index).expect("list");
        let f: IndexFile = repo
            .load_unpacked(FileType::Index, &files[0])
            .expect("load");
        // The same file again: exact duplicates only.
        repo.save_unpacked(FileType::Index, &f).expect("dup");
        let r = rebuild_index(&repo, &opts, &crate::check::NoProgress).expect("dups");
        assert_eq!((r.packs_read, r.packs_from_index), (0, 2));
        // One blob at a second place.
        let mut bad = f.clone();
        bad.packs.truncate(1);
        let good = bad.packs[0].blobs[0].clone();
        bad.packs[0].blobs[0].offset += 1;
        let pack_id = bad.packs[0].id;
        repo.save_unpacked(FileType::Index, &bad).expect("bad");
        let r = rebuild_index(&repo, &opts, &crate::check::NoProgress).expect("repair");
        assert_eq!((r.packs_read, r.packs_from_index), (1, 1));
        assert!(!r.lost_data());
        repo.load_index().expect("index");
        let loc = repo.index().get(BlobType::Data, &good.id).expect("indexed");
        assert_eq!((loc.pack, loc.blob.offset), (pack_id, good.offset));
    }

    /// Packs too short for a header, or whose trailer claims more than the
    /// pack holds, are left out with a reason; the rest is indexed.
    #[test]
    fn hostile_packs_are_left_out() {
        let (repo, blobs) = repo_with_packs(&[2]);
        let short = Id::hash(b"xy");
        let huge = Id::hash(b"huge");
        let mut claim = vec![0u8; 40];
        claim.extend_from_slice(&(1u32 << 20).to_le_bytes());
        for (id, data) in [(short, b"xy".to_vec()), (huge, claim)] {
            repo.backend()
                .write(FileType::Pack, &id.to_hex(), &data)
                .expect("write");
        }
        for read_all_packs in [false, true] {
            let opts = IndexOptions { read_all_packs };
            let r = rebuild_index(&repo, &opts, &crate::check::NoProgress).expect("repair");
            let mut left: Vec<Id> = r.left_out.iter().map(|l| l.pack).collect();
            left.sort();
            let mut want = vec![short, huge];
            want.sort();
            assert_eq!(left, want, "{:?}", r.left_out);
            assert!(r.left_out.iter().all(|l| !l.reason.is_empty()));
            assert_eq!(r.blobs_indexed, blobs.len() as u64);
            assert!(r.lost_data());
        }
    }

    #[test]
    fn damage_keeps_the_first_paths_and_counts_all() {
        let mut child = Damage::default();
        for i in 0..7 {
            child.add(format!("f{i}"), Lost::BlobMissing, None);
        }
        let mut d = Damage::default();
        d.add("x".into(), Lost::TreeMissing, None);
        d.merge("dir", &child);
        assert_eq!(d.count, 8);
        assert_eq!(d.paths.len(), MAX_PATHS);
        assert_eq!(d.paths[1].0, "dir/f0");
        let mut e = Damage::default();
        e.merge(
            "sub",
            &Damage {
                paths: vec![(String::new(), Lost::TreeDamaged, None)],
                count: 1,
            },
        );
        assert_eq!(e.paths[0].0, "sub");
    }
}
