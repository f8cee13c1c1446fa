//! `check`: the repository's structure and referential integrity, and with
//! `read_data` the content of its packs.
//!
//! Every problem is a [`Finding`] (data, never an early return): one damaged
//! file must not hide the others. Only a repository that cannot be opened at
//! all stops a check, and that happens before it starts (in
//! [`crate::repo::Repository::open`]).
//!
//! The structural pass loads every index file (a damaged one is a finding),
//! compares the packs the index names with those the backend lists (missing
//! and wrongly sized packs are damage, packs no index names are unused), and
//! walks every snapshot's trees: a tree or data blob missing from the index
//! is damage at that snapshot and path. The data pass reads each selected
//! pack once, in parallel, and verifies its SHA-256, header, and every
//! blob's MAC, compression and id; trees are parsed. Afterwards the trees
//! are walked once more, collecting only the users of damaged blobs, so
//! memory grows with the damage, not the repository.

mod images;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::FileType;
use crate::id::{Id, PackId, SnapshotId};
use crate::repo::index::IndexFile;
use crate::repo::pack::{self, BlobType, PackedBlob};
use crate::repo::{Index, Repository};
use crate::snapshot::{Node, NodeType, Snapshot, Tree};

mod packs;
mod resume;

pub use resume::ProgressFile;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, not damage (an unused pack).
    Info,
    /// Data is missing or damaged.
    Error,
}

/// What is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An index file cannot be read, authenticated or parsed.
    IndexDamaged,
    /// The same blob is indexed twice in one pack at different places.
    IndexInconsistent,
    /// A pack the index names is not in the backend.
    PackMissing,
    /// A pack's size differs from what the index implies.
    PackSize,
    /// A pack no index names (left by an interrupted backup or prune).
    PackUnused,
    /// A pack's SHA-256 is not its name.
    PackHash,
    /// A pack's header cannot be read, decrypted or parsed, or disagrees
    /// with the index.
    PackHeader,
    /// A blob fails its MAC, decompression or id check, or a tree blob does
    /// not parse.
    BlobDamaged,
    /// A snapshot file cannot be read, authenticated or parsed.
    SnapshotDamaged,
    /// A tree a snapshot needs is not in the index.
    TreeMissing,
    /// A tree a snapshot needs cannot be read or parsed.
    TreeDamaged,
    /// A data blob a file needs is not in the index.
    BlobMissing,
    /// A disk image's container or partition table cannot be opened
    /// (`--images`).
    ImageDamaged,
    /// A filesystem inside a disk image cannot be opened, or one of its
    /// directories or entries' metadata cannot be read (`--images`).
    ImageFsDamaged,
    /// A file inside a disk image cannot be opened or read to its end
    /// (`--images`).
    ImageFileUnreadable,
    /// Something inside a disk image this build cannot read (a filesystem
    /// feature, an encrypted file): not damage (`--images`).
    ImageUnsupported,
}

/// Where a finding is; fields that do not apply are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Location {
    /// A repository file (`index/…`, `snapshots/…`, `data/…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The pack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<PackId>,
    /// The blob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<Id>,
    /// The snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotId>,
    /// The path inside the snapshot (for `--images`: the disk image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The path inside the disk image at `path`, as the tree shows it in
    /// the image's `.contents/` directory (`p1/dir/file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner_path: Option<String>,
    /// The offset in the file at `inner_path` where reading failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Where in the disk image file at `path` the data blob (`blob`) that
    /// could not be read starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_offset: Option<u64>,
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// What.
    pub kind: Kind,
    /// Where.
    pub location: Location,
    /// The details, for people.
    pub detail: String,
}

/// A snapshot path that needs a damaged pack.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct User {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// The file or directory in it.
    pub path: String,
}

/// A damaged or missing pack and who needs it.
#[derive(Clone, Debug, Serialize)]
pub struct DamagedPack {
    /// The pack.
    pub pack: PackId,
    /// Blobs lost with it (all its indexed blobs when the pack or its
    /// header is unreadable, else those that failed).
    pub lost_blobs: usize,
    /// The snapshot paths needing a lost blob.
    pub users: Vec<User>,
}

/// The largest pack file `read_data` reads (blob offsets are 32-bit).
const MAX_PACK: u64 = 1 << 32;

/// Which packs `read_data` reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subset {
    /// All of them.
    All,
    /// restic's `n/m`: packs whose first id byte modulo `m` is `n - 1`.
    Bucket {
        /// 1-based bucket.
        n: u32,
        /// Number of buckets, 1..=256.
        m: u32,
    },
    /// A random `p` percent of the packs (0 < p <= 100).
    Percent(f64),
    /// Random packs up to this many bytes in total.
    Bytes(u64),
}

impl std::fmt::Display for Subset {
    /// The form [`Subset::parse`] reads (`all` for every pack).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subset::All => write!(f, "all"),
            Subset::Bucket { n, m } => write!(f, "{n}/{m}"),
            Subset::Percent(p) => write!(f, "{p}%"),
            Subset::Bytes(b) => write!(f, "{b}"),
        }
    }
}

impl Subset {
    /// Parses `n/m`, `P%` or a size (`500M`, `2G`, plain bytes).
    pub fn parse(s: &str) -> Option<Subset> {
        let s = s.trim();
        if let Some((n, m)) = s.split_once('/') {
            let n: u32 = n.trim().parse().ok()?;
            let m: u32 = m.trim().parse().ok()?;
            return ((1..=256).contains(&m) && (1..=m).contains(&n))
                .then_some(Subset::Bucket { n, m });
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().ok()?;
            return (p > 0.0 && p <= 100.0).then_some(Subset::Percent(p));
        }
        crate::prune::parse_size(s)
            .filter(|&b| b > 0)
            .map(Subset::Bytes)
    }

    /// The packs (with sizes) this subset selects, sorted by id.
    pub fn select(&self, packs: &[(PackId, u64)]) -> Vec<(PackId, u64)> {
        use rand::seq::SliceRandom;
        let mut out: Vec<(PackId, u64)> = match *self {
            Subset::All => packs.to_vec(),
            Subset::Bucket { n, m } => packs
                .iter()
                .filter(|(id, _)| u32::from(id.0[0]) % m == n - 1)
                .copied()
                .collect(),
            Subset::Percent(p) => {
                let mut v = packs.to_vec();
                v.shuffle(&mut rand::thread_rng());
                let k = ((v.len() as f64) * p / 100.0).round() as usize;
                // A non-empty repository always gets at least one pack read.
                v.truncate(k.max(usize::from(!v.is_empty())));
                v
            }
            Subset::Bytes(max) => {
                let mut v = packs.to_vec();
                v.shuffle(&mut rand::thread_rng());
                let mut total = 0u64;
                v.retain(|(_, size)| {
                    if total >= max {
                        return false;
                    }
                    total = total.saturating_add(*size);
                    true
                });
                v
            }
        };
        out.sort();
        out
    }
}

/// What to check.
#[derive(Clone, Debug)]
pub struct Options {
    /// Read and verify pack content.
    pub read_data: bool,
    /// Which packs to read.
    pub subset: Subset,
    /// Where the data pass records each pack it has read, so a stopped pass
    /// can continue ([`ProgressFile::open`] with `resume`).
    pub progress_file: Option<Arc<ProgressFile>>,
    /// Open the disk images in the snapshots and walk their filesystems
    /// (with `read_data`, also read every file in them).
    pub images: bool,
}

/// Progress of the data pass.
pub trait CheckProgress: Sync {
    /// The data pass starts: this many packs and bytes will be read.
    fn start(&self, _packs: u64, _bytes: u64) {}
    /// One pack of this many bytes was read and checked.
    fn pack_done(&self, _bytes: u64) {}
    /// Should the data pass stop starting packs (a time limit, a signal)?
    /// The packs not read are counted in [`Stats::packs_left`].
    fn stop_requested(&self) -> bool {
        false
    }
    /// The disk image at `path` of a snapshot is being walked.
    fn image(&self, _path: &str) {}
}

/// No progress display.
pub struct NoProgress;
impl CheckProgress for NoProgress {}

/// Counts of what was checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Index files read.
    pub index_files: u64,
    /// Packs named by the index.
    pub packs: u64,
    /// Snapshots walked.
    pub snapshots: u64,
    /// Distinct trees walked.
    pub trees: u64,
    /// Packs read by the data pass.
    pub packs_read: u64,
    /// Bytes read by the data pass.
    pub bytes_read: u64,
    /// Blobs verified by the data pass.
    pub blobs_read: u64,
    /// Of the packs read, those read by an earlier, interrupted run whose
    /// results were taken from the progress file.
    pub packs_resumed: u64,
    /// Selected packs not read because the pass was stopped.
    pub packs_left: u64,
    /// Distinct disk images walked (`--images`; an image in several
    /// snapshots counts once).
    pub images: u64,
    /// Filesystems opened inside disk images.
    pub image_volumes: u64,
    /// Directories listed inside disk images (each volume's root too).
    pub image_dirs: u64,
    /// Regular files inside disk images.
    pub image_files: u64,
    /// Other entries inside disk images (symlinks, devices, fifos).
    pub image_others: u64,
    /// Bytes of files read inside disk images.
    pub image_bytes: u64,
}

/// The result of a check.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Every finding, sorted by kind and location.
    pub findings: Vec<Finding>,
    /// The damaged or missing packs and the snapshot paths that need them.
    pub damaged_packs: Vec<DamagedPack>,
    /// What was looked at.
    pub stats: Stats,
    /// Remarks about the run itself, not the repository (saved progress not
    /// usable, a progress file that could not be written).
    pub notes: Vec<String>,
}

impl Report {
    /// Is any finding damage (not just information)?
    pub fn damaged(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Did the data pass read every selected pack?
    pub fn complete(&self) -> bool {
        self.stats.packs_left == 0
    }
}

/// A tree read by the check: the tree or the first copy's error, and the
/// damaged copies passed over with their errors.
type TreeRead = (Result<Tree, String>, Vec<(PackId, String)>);

/// Index entries of one pack, as loaded (duplicates kept).
#[derive(Default)]
struct PackEntries {
    blobs: Vec<PackedBlob>,
}

impl PackEntries {
    /// The size the pack must have: blobs, encrypted header, its length.
    fn expected_size(&self) -> u64 {
        pack::expected_size(&self.blobs)
    }
}

struct Checker<'a> {
    repo: &'a Repository,
    index: Index,
    packs: BTreeMap<PackId, PackEntries>,
    findings: Vec<Finding>,
    stats: Stats,
    /// Per pack, the blobs lost (None: all of its indexed blobs).
    damaged: BTreeMap<PackId, Option<HashSet<(BlobType, Id)>>>,
    notes: Vec<String>,
}

fn finding(severity: Severity, kind: Kind, location: Location, detail: String) -> Finding {
    Finding {
        severity,
        kind,
        location,
        detail,
    }
}

/// Runs a check. The repository must be open; its own in-memory index is
/// not used (a damaged index file must not stop the check).
///
/// With `opts.images` the repository's in-memory index is filled from the
/// check's own (the tree reads through it).
pub fn check(repo: &Arc<Repository>, opts: &Options, progress: &dyn CheckProgress) -> Report {
    let mut c = Checker {
        repo,
        index: Index::new(),
        packs: BTreeMap::new(),
        findings: Vec::new(),
        stats: Stats::default(),
        damaged: BTreeMap::new(),
        notes: Vec::new(),
    };
    c.load_index();
    let listed = c.compare_packs();
    let snapshots = c.load_snapshots();
    c.walk_structure(&snapshots);
    if opts.read_data {
        c.read_data(&listed, opts, progress);
    }
    if opts.images {
        let found = images::check(repo, &c.index, &snapshots, opts.read_data, progress);
        c.findings.extend(found.findings);
        found.stats.add_to(&mut c.stats);
    }
    let damaged_packs = c.users_of_damage(&snapshots);
    let mut findings = c.findings;
    findings.sort();
    findings.dedup();
    Report {
        findings,
        damaged_packs,
        stats: c.stats,
        notes: c.notes,
    }
}

impl Checker<'_> {
    fn load_index(&mut self) {
        let ids = match self.repo.list_ids(FileType::Index) {
            Ok(ids) => ids,
            Err(e) => {
                self.findings.push(finding(
                    Severity::Error,
                    Kind::IndexDamaged,
                    Location {
                        file: Some("index".into()),
                        ..Location::default()
                    },
                    e.to_string(),
                ));
                return;
            }
        };
        let files = crate::parallel::map(ids, |id| {
            Ok::<_, ()>((
                id,
                self.repo.load_unpacked::<IndexFile>(FileType::Index, &id),
            ))
        })
        .unwrap_or_default();
        for (id, f) in files {
            match f {
                Ok(f) => {
                    self.stats.index_files += 1;
                    self.index.add_file(&f);
                    for p in &f.packs {
                        let e = self.packs.entry(p.id).or_default();
                        for b in &p.blobs {
                            let pb = PackedBlob {
                                blob_type: b.blob_type.into(),
                                id: b.id,
                                offset: b.offset,
                                length: b.length,
                                uncompressed_length: b.uncompressed_length,
                            };
                            // The same pack listed in two index files is
                            // fine; the same blob at two places in it is not.
                            match e
                                .blobs
                                .iter()
                                .find(|x| x.id == pb.id && x.blob_type == pb.blob_type)
                            {
                                Some(x) if *x == pb => {}
                                Some(x) => self.findings.push(finding(
                                    Severity::Error,
                                    Kind::IndexInconsistent,
                                    Location {
                                        file: Some(format!("index/{id}")),
                                        pack: Some(p.id),
                                        blob: Some(b.id),
                                        ..Location::default()
                                    },
                                    format!(
                                        "{} blob indexed at offset {} length {} and at offset {} length {}",
                                        pb.blob_type.as_str(),
                                        x.offset,
                                        x.length,
                                        pb.offset,
                                        pb.length
                                    ),
                                )),
                                None => e.blobs.push(pb),
                            }
                        }
                    }
                }
                Err(e) => self.findings.push(finding(
                    Severity::Error,
                    Kind::IndexDamaged,
                    Location {
                        file: Some(format!("index/{id}")),
                        ..Location::default()
                    },
                    without_prefix(e.to_string(), &format!("index/{id}: ")),
                )),
            }
        }
        self.stats.packs = self.packs.len() as u64;
    }

    /// Compares indexed packs with the backend's; returns the packs that
    /// exist and are indexed, with their sizes.
    fn compare_packs(&mut self) -> Vec<(PackId, u64)> {
        let files = match self.repo.backend().list(FileType::Pack) {
            Ok(f) => f,
            Err(e) => {
                self.findings.push(finding(
                    Severity::Error,
                    Kind::PackMissing,
                    Location {
                        file: Some("data".into()),
                        ..Location::default()
                    },
                    format!("listing packs: {e}"),
                ));
                Vec::new()
            }
        };
        let mut present: HashMap<PackId, u64> = HashMap::new();
        for f in files {
            if let Ok(id) = f.name.parse::<Id>() {
                present.insert(id, f.size);
            }
        }
        let mut listed = Vec::new();
        for (id, entries) in &self.packs {
            let loc = Location {
                pack: Some(*id),
                ..Location::default()
            };
            match present.get(id) {
                None => {
                    self.findings.push(finding(
                        Severity::Error,
                        Kind::PackMissing,
                        loc,
                        "pack named by the index is missing".into(),
                    ));
                    self.damaged.insert(*id, None);
                }
                Some(&size) => {
                    let want = entries.expected_size();
                    if size != want {
                        self.findings.push(finding(
                            Severity::Error,
                            Kind::PackSize,
                            loc,
                            format!("pack is {size} bytes, the index implies {want}"),
                        ));
                        self.damaged.insert(*id, None);
                    }
                    listed.push((*id, size));
                }
            }
        }
        let mut unused: Vec<_> = present
            .iter()
            .filter(|(id, _)| !self.packs.contains_key(id))
            .collect();
        unused.sort();
        for (id, size) in unused {
            self.findings.push(finding(
                Severity::Info,
                Kind::PackUnused,
                Location {
                    pack: Some(*id),
                    ..Location::default()
                },
                format!("pack of {size} bytes is not in any index"),
            ));
        }
        listed
    }

    fn load_snapshots(&mut self) -> Vec<(SnapshotId, Snapshot)> {
        let ids = match self.repo.list_ids(FileType::Snapshot) {
            Ok(ids) => ids,
            Err(e) => {
                self.findings.push(finding(
                    Severity::Error,
                    Kind::SnapshotDamaged,
                    Location {
                        file: Some("snapshots".into()),
                        ..Location::default()
                    },
                    e.to_string(),
                ));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for id in ids {
            match self.repo.load_unpacked::<Snapshot>(FileType::Snapshot, &id) {
                Ok(s) => out.push((id, s)),
                Err(e) => self.findings.push(finding(
                    Severity::Error,
                    Kind::SnapshotDamaged,
                    Location {
                        file: Some(format!("snapshots/{id}")),
                        snapshot: Some(id),
                        ..Location::default()
                    },
                    without_prefix(e.to_string(), &format!("snapshots/{id}: ")),
                )),
            }
        }
        self.stats.snapshots = out.len() as u64;
        out
    }

    /// Reads a tree through this check's own index.
    /// Reads a tree from the copy the index resolves to, and if that copy
    /// is damaged from the other copies the index files list (an
    /// interrupted prune or two backups racing leave copies). Returns the
    /// tree (or the first copy's error) and the damaged copies passed over.
    fn read_tree(&self, id: &Id) -> Option<TreeRead> {
        let loc = self.index.get(BlobType::Tree, id)?;
        let read = |pack: &PackId, blob: &PackedBlob| {
            self.repo
                .read_blob_at(pack, blob)
                .and_then(|data| Tree::decode(id, &data))
                .map_err(|e| e.to_string())
        };
        let first = match read(&loc.pack, &loc.blob) {
            Ok(t) => return Some((Ok(t), Vec::new())),
            Err(e) => e,
        };
        let mut bad = vec![(loc.pack, first.clone())];
        for other in self.index.copies(BlobType::Tree, id).iter().skip(1) {
            match read(&other.pack, &other.blob) {
                Ok(t) => return Some((Ok(t), bad)),
                Err(e) => bad.push((other.pack, e)),
            }
        }
        Some((Err(first), bad))
    }

    /// Walks every snapshot's trees, each distinct tree once.
    ///
    /// Level by level: the trees of one level are read and parsed on
    /// several threads (a vault of millions of directories is mostly tree
    /// reads), then their findings and children are taken in order.
    fn walk_structure(&mut self, snapshots: &[(SnapshotId, Snapshot)]) {
        let mut seen: HashSet<Id> = HashSet::new();
        let mut missing_data: HashSet<Id> = HashSet::new();
        let mut level: Vec<(Id, SnapshotId, String)> = snapshots
            .iter()
            .filter(|(_, snap)| seen.insert(snap.tree))
            .map(|(sid, snap)| (snap.tree, *sid, "/".to_string()))
            .collect();
        while !level.is_empty() {
            let this = &*self;
            let read = crate::parallel::map(level, |(tid, sid, path)| {
                let tree = this.read_tree(&tid);
                Ok::<_, ()>((tid, sid, path, tree))
            })
            .unwrap_or_default();
            let mut next = Vec::new();
            for (tid, sid, path, tree) in read {
                let loc = Location {
                    blob: Some(tid),
                    snapshot: Some(sid),
                    path: Some(path.clone()),
                    ..Location::default()
                };
                let tree = match tree {
                    None => {
                        self.findings.push(finding(
                            Severity::Error,
                            Kind::TreeMissing,
                            loc,
                            "tree is not in the index".into(),
                        ));
                        continue;
                    }
                    Some((Err(e), bad)) => {
                        // A damaged pack is reported by the pack checks;
                        // the tree is reported here with its path.
                        for (pack, _) in bad {
                            self.mark_blob(pack, BlobType::Tree, tid);
                        }
                        self.findings
                            .push(finding(Severity::Error, Kind::TreeDamaged, loc, e));
                        continue;
                    }
                    Some((Ok(t), bad)) => {
                        // The data is there, but a copy of it is damaged.
                        for (pack, e) in bad {
                            self.mark_blob(pack, BlobType::Tree, tid);
                            self.findings.push(finding(
                                Severity::Error,
                                Kind::BlobDamaged,
                                Location {
                                    file: Some(format!("data/{}/{}", &pack.to_hex()[..2], pack)),
                                    pack: Some(pack),
                                    blob: Some(tid),
                                    ..Location::default()
                                },
                                format!("{e} (another copy of the tree is intact)"),
                            ));
                        }
                        t
                    }
                };
                self.stats.trees += 1;
                for node in &tree.nodes {
                    let child = join(&path, &node.name);
                    if let Some(sub) = node.subtree {
                        if seen.insert(sub) {
                            next.push((sub, sid, child.clone()));
                        }
                    } else if node.node_type == NodeType::Dir {
                        self.findings.push(finding(
                            Severity::Error,
                            Kind::TreeDamaged,
                            Location {
                                blob: Some(tid),
                                snapshot: Some(sid),
                                path: Some(child.clone()),
                                ..Location::default()
                            },
                            "directory without subtree".into(),
                        ));
                    }
                    for b in content(node) {
                        if !self.index.contains(BlobType::Data, b) && missing_data.insert(*b) {
                            self.findings.push(finding(
                                Severity::Error,
                                Kind::BlobMissing,
                                Location {
                                    blob: Some(*b),
                                    snapshot: Some(sid),
                                    path: Some(child.clone()),
                                    ..Location::default()
                                },
                                "data blob is not in the index".into(),
                            ));
                        }
                    }
                }
            }
            level = next;
        }
    }

    fn mark_blob(&mut self, pack: PackId, t: BlobType, id: Id) {
        // `None` (the whole pack lost) already covers the blob.
        if let Some(set) = self
            .damaged
            .entry(pack)
            .or_insert_with(|| Some(HashSet::new()))
        {
            set.insert((t, id));
        }
    }

    fn read_data(
        &mut self,
        listed: &[(PackId, u64)],
        opts: &Options,
        progress: &dyn CheckProgress,
    ) {
        let selection = opts.subset.to_string();
        let repository = self.repo.config().id.clone();
        let file = opts.progress_file.as_deref();
        let saved = match file.map(|f| f.take_saved(&repository, &selection)) {
            Some(Ok(saved)) => saved,
            Some(Err(note)) => {
                self.notes.push(note);
                None
            }
            None => None,
        };
        let (chosen, mut done, continuing) = match saved {
            Some(saved) => {
                // Packs removed (or rewritten) since the earlier run are
                // neither read nor reported.
                let now: HashMap<PackId, u64> = listed.iter().copied().collect();
                let still = |id: &PackId, size: u64| now.get(id) == Some(&size);
                let chosen: Vec<(PackId, u64)> = saved
                    .packs
                    .into_iter()
                    .filter(|(id, size)| still(id, *size))
                    .collect();
                let done: HashMap<PackId, (u64, PackResult)> = saved
                    .done
                    .into_iter()
                    .filter(|(id, (size, _))| still(id, *size))
                    .collect();
                (chosen, done, Some(saved.valid))
            }
            None => (opts.subset.select(listed), HashMap::new(), None),
        };
        if let Some(f) = file {
            if let Err(e) = f.begin(&repository, &selection, &chosen, continuing) {
                self.notes.push(format!(
                    "progress file {}: {e}; this run cannot be resumed",
                    f.path().display()
                ));
            }
        }
        let total: u64 = chosen.iter().map(|(_, s)| s).sum();
        progress.start(chosen.len() as u64, total);
        let mut results = Vec::with_capacity(chosen.len());
        let mut to_read = Vec::new();
        for (id, size) in chosen {
            match done.remove(&id) {
                Some((_, r)) => {
                    progress.pack_done(size);
                    self.stats.packs_resumed += 1;
                    results.push((id, size, Some(r)));
                }
                None => to_read.push((id, size)),
            }
        }
        let write_failed = std::sync::atomic::AtomicBool::new(false);
        let read = crate::parallel::map(to_read, |(id, size)| {
            if progress.stop_requested() {
                return Ok::<_, ()>((id, size, None));
            }
            let r = packs::check_pack(self.repo, self.packs.get(&id), &id, size);
            if let Some(f) = file {
                if f.record(&id, size, &r).is_err() {
                    write_failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            progress.pack_done(size);
            Ok((id, size, Some(r)))
        })
        .unwrap_or_default();
        results.extend(read);
        if write_failed.into_inner() {
            if let Some(f) = file {
                self.notes.push(format!(
                    "progress file {}: could not record every pack read; a resumed run reads them again",
                    f.path().display()
                ));
            }
        }
        for (id, size, r) in results {
            let Some(r) = r else {
                self.stats.packs_left += 1;
                continue;
            };
            self.stats.packs_read += 1;
            self.stats.bytes_read += size;
            self.stats.blobs_read += r.blobs_ok;
            if r.findings.is_empty() {
                continue;
            }
            self.findings.extend(r.findings);
            match r.lost {
                None => {
                    self.damaged.insert(id, None);
                }
                Some(lost) => {
                    for (t, b) in lost {
                        self.mark_blob(id, t, b);
                    }
                    // A pack whose hash is wrong but whose blobs all verify
                    // is still listed as damaged, with no lost blob.
                    self.damaged
                        .entry(id)
                        .or_insert_with(|| Some(HashSet::new()));
                }
            }
        }
        if self.stats.packs_left == 0 {
            if let Some(f) = file {
                if let Err(e) = f.finish() {
                    self.notes
                        .push(format!("progress file {}: {e}", f.path().display()));
                }
            }
        }
    }

    /// Walks the snapshots again to find who needs the lost blobs.
    fn users_of_damage(&self, snapshots: &[(SnapshotId, Snapshot)]) -> Vec<DamagedPack> {
        if self.damaged.is_empty() {
            return Vec::new();
        }
        // blob -> pack, only for lost blobs.
        let mut lost: HashMap<(BlobType, Id), PackId> = HashMap::new();
        let mut out: BTreeMap<PackId, (usize, BTreeSet<User>)> = BTreeMap::new();
        for (pack, blobs) in &self.damaged {
            let list: Vec<(BlobType, Id)> = match blobs {
                Some(set) => set.iter().copied().collect(),
                None => self
                    .packs
                    .get(pack)
                    .map(|e| e.blobs.iter().map(|b| (b.blob_type, b.id)).collect())
                    .unwrap_or_default(),
            };
            out.insert(*pack, (list.len(), BTreeSet::new()));
            for k in list {
                lost.insert(k, *pack);
            }
        }
        // A blob with a copy in a pack not known to be damaged (for it) is
        // not lost: readers fall back to that copy.
        let damaged_here = |pack: &PackId, k: &(BlobType, Id)| match self.damaged.get(pack) {
            Some(None) => true,
            Some(Some(set)) => set.contains(k),
            None => false,
        };
        let intact: HashSet<(BlobType, Id)> = lost
            .keys()
            .filter(|k| {
                self.index
                    .copies(k.0, &k.1)
                    .iter()
                    .any(|l| !damaged_here(&l.pack, k))
            })
            .copied()
            .collect();
        lost.retain(|k, _| !intact.contains(k));
        for (sid, snap) in snapshots {
            let mut seen: HashSet<Id> = HashSet::new();
            let mut stack = vec![(snap.tree, "/".to_string())];
            while let Some((tid, path)) = stack.pop() {
                if !seen.insert(tid) {
                    continue;
                }
                if let Some(p) = lost.get(&(BlobType::Tree, tid)) {
                    if let Some(e) = out.get_mut(p) {
                        e.1.insert(User {
                            snapshot: *sid,
                            path: path.clone(),
                        });
                    }
                    continue;
                }
                let Some((Ok(tree), _)) = self.read_tree(&tid) else {
                    continue;
                };
                for node in &tree.nodes {
                    let child = join(&path, &node.name);
                    for b in content(node) {
                        if let Some(p) = lost.get(&(BlobType::Data, *b)) {
                            if let Some(e) = out.get_mut(p) {
                                e.1.insert(User {
                                    snapshot: *sid,
                                    path: child.clone(),
                                });
                            }
                        }
                    }
                    if let Some(sub) = node.subtree {
                        stack.push((sub, child));
                    }
                }
            }
        }
        out.into_iter()
            .map(|(pack, (lost_blobs, users))| DamagedPack {
                pack,
                lost_blobs,
                users: users.into_iter().collect(),
            })
            .collect()
    }
}

struct PackResult {
    findings: Vec<Finding>,
    /// Blobs lost; `None`: the whole pack.
    lost: Option<Vec<(BlobType, Id)>>,
    blobs_ok: u64,
}

/// A library error's message without the file name it starts with (the
/// finding's location names the file).
fn without_prefix(message: String, prefix: &str) -> String {
    match message.strip_prefix(prefix) {
        Some(rest) => rest.to_string(),
        None => message,
    }
}

fn content(node: &Node) -> &[Id] {
    node.content.as_deref().unwrap_or(&[])
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_parse_and_buckets() {
        assert_eq!(Subset::parse("2/5"), Some(Subset::Bucket { n: 2, m: 5 }));
        assert_eq!(Subset::parse("0/5"), None);
        assert_eq!(Subset::parse("6/5"), None);
        assert_eq!(Subset::parse("1/257"), None);
        assert_eq!(Subset::parse("10%"), Some(Subset::Percent(10.0)));
        assert_eq!(Subset::parse("0%"), None);
        assert_eq!(Subset::parse("2M"), Some(Subset::Bytes(2 << 20)));
        assert_eq!(Subset::parse("100"), Some(Subset::Bytes(100)));
        assert_eq!(Subset::parse("x"), None);
        let packs: Vec<(PackId, u64)> = (0u8..=255)
            .map(|b| {
                let mut id = [0u8; 32];
                id[0] = b;
                (Id(id), 10)
            })
            .collect();
        // Every pack is in exactly one bucket.
        let mut all = Vec::new();
        for n in 1..=3 {
            let s = Subset::Bucket { n, m: 3 }.select(&packs);
            assert!(s.iter().all(|(id, _)| u32::from(id.0[0]) % 3 == n - 1));
            all.extend(s);
        }
        all.sort();
        assert_eq!(all, packs);
        assert_eq!(Subset::Percent(50.0).select(&packs).len(), 128);
        assert_eq!(Subset::Bytes(25).select(&packs).len(), 3);
    }
}
