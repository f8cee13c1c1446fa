//! `prune`: remove the data no snapshot needs, as restic's `prune` (0.14).
//!
//! Every snapshot's trees are walked (each distinct tree once) to find the
//! blobs in use. Each pack is then classified from the index: fully used
//! packs are kept, packs without a used blob are deleted, and partly used
//! packs are repacked (their used blobs copied into new packs) when that
//! brings the unused space under the `max_unused` limit, restic's greedy
//! rule: packs with tree blobs, duplicates or (with `repack_uncompressed`)
//! uncompressed blobs first, then data packs by their unused share. A blob
//! stored in several packs keeps one copy. Packs in `data/` that no index
//! names (left by an interrupted backup or prune) are deleted, as restic
//! 0.14 does: under the exclusive lock no backup can be writing them.
//!
//! The order of the changes makes an interrupted prune safe: new packs are
//! written and synced, then the new index (kept packs plus new packs) is
//! written, then the old index files are removed, and only then are the
//! obsolete packs deleted. Stopped at any point, the vault holds every
//! blob a snapshot needs; at worst it has unused packs or blobs indexed
//! twice, which restic and `check` accept and the next prune removes.
//!
//! Nothing is deleted when a snapshot or one of its trees cannot be read,
//! when a needed blob is not in the index, or when a needed pack is missing
//! or does not match its index entries: what might be needed is never
//! deleted. Nothing here locks or prints: the caller holds the exclusive
//! lock and reports the returned [`PruneReport`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::backend::FileType;
use crate::check::CheckProgress;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{Id, PackId};
use crate::repo::pack::{self, BlobType, PackBuilder, PackedBlob};
use crate::repo::saver::PACK_SIZE;
use crate::repo::{Compression, Repository};
use crate::snapshot::{Snapshot, Tree};

/// The largest pack read into memory to repack (blob offsets are 32-bit,
/// so no real pack is larger).
const MAX_PACK: u64 = 1 << 32;

/// How much unused space may remain after a prune.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    /// This percentage of the vault's size after the prune (restic's
    /// default: 5%).
    Percent(f64),
    /// This many bytes.
    Bytes(u64),
    /// Any amount: partly used data packs are kept (packs with tree blobs
    /// or duplicates are still repacked, as restic does).
    Unlimited,
}

impl Default for MaxUnused {
    fn default() -> Self {
        MaxUnused::Percent(5.0)
    }
}

impl MaxUnused {
    /// Parses `P%` (0 <= P < 100), a size (`500M`, `2G`, bytes) or
    /// `unlimited`.
    pub fn parse(s: &str) -> Option<MaxUnused> {
        let s = s.trim();
        if s == "unlimited" {
            return Some(MaxUnused::Unlimited);
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().ok()?;
            return (0.0..100.0).contains(&p).then_some(MaxUnused::Percent(p));
        }
        parse_size(s).map(MaxUnused::Bytes)
    }

    /// The unused bytes allowed to remain when `used` bytes are in use
    /// (restic: a percentage is of the size after the prune).
    fn limit(self, used: u64) -> u64 {
        match self {
            MaxUnused::Percent(p) => (p / (100.0 - p) * used as f64) as u64,
            MaxUnused::Bytes(b) => b,
            MaxUnused::Unlimited => u64::MAX,
        }
    }
}

/// Parses a size: bytes, or a number with K, M, G or T (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return None,
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Where a prune stops early (tests of an interrupted prune).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopAfter {
    /// The new packs are written (no index names them yet).
    Packs,
    /// The new index is written (the old index files are still there).
    Index,
    /// The old index files are removed (no pack deleted yet).
    OldIndex,
}

/// How to prune.
#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    /// Unused space allowed to remain.
    pub max_unused: MaxUnused,
    /// Repack at most this many bytes of packs.
    pub max_repack_size: Option<u64>,
    /// Repack packs holding uncompressed blobs (repository version 2),
    /// compressing them.
    pub repack_uncompressed: bool,
    /// Also merge packs below 80% of the pack size (restic's
    /// `--repack-small`); without it only packs below 1/25 of it are
    /// merged, and only when there are at least 10 of them.
    pub repack_small: bool,
    /// Only compute and report the plan.
    pub dry_run: bool,
    /// Stop after this stage (tests).
    pub stop_after: Option<StopAfter>,
}

/// A count of blobs and their stored size.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Blobs {
    /// Blobs.
    pub count: u64,
    /// Their stored (encrypted, maybe compressed) bytes.
    pub bytes: u64,
}

impl Blobs {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// What [`prune`] found and did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Only planned.
    pub dry_run: bool,
    /// Snapshots read.
    pub snapshots: u64,
    /// Distinct trees read.
    pub trees: u64,
    /// Blobs in use (one copy each).
    pub used: Blobs,
    /// Further copies of used blobs.
    pub duplicate: Blobs,
    /// Blobs no snapshot needs.
    pub unused: Blobs,
    /// Bytes of the packs in `data/`.
    pub total_bytes: u64,
    /// Packs in `data/` that the index names.
    pub packs: u64,
    /// Packs whose blobs are all used (one copy each).
    pub packs_used: u64,
    /// Packs with used and unused blobs (or duplicates).
    pub packs_partly_used: u64,
    /// Packs without a used blob.
    pub packs_unused: u64,
    /// Packs in `data/` that no index names (deleted).
    pub packs_unreferenced: u64,
    /// Their bytes.
    pub unreferenced_bytes: u64,
    /// Packs the index names that `data/` lacks, without a used blob
    /// (dropped from the index).
    pub packs_missing: u64,
    /// Packs kept as they are.
    pub keep: u64,
    /// Packs repacked.
    pub repack: u64,
    /// Packs deleted whole (unused and unreferenced ones).
    pub delete: u64,
    /// Bytes of the packs repacked.
    pub repack_bytes: u64,
    /// Blobs copied into new packs.
    pub repack_blobs: Blobs,
    /// Blobs that go away with the repacked packs.
    pub repack_removed: Blobs,
    /// Blobs that go away with the deleted packs (not counting
    /// unreferenced packs, whose blobs the index does not list).
    pub delete_removed: Blobs,
    /// Bytes of the packs deleted whole.
    pub delete_bytes: u64,
    /// Unused bytes remaining in kept packs.
    pub unused_after: u64,
    /// Bytes of `data/` after the prune (estimated for a dry run: the
    /// repacked blobs counted at their current size).
    pub total_after: u64,
    /// New packs written.
    pub new_packs: u64,
    /// Their bytes.
    pub new_pack_bytes: u64,
    /// Bytes freed: packs deleted and repacked minus the new packs.
    pub freed_bytes: u64,
    /// New index files written.
    pub index_files_written: Vec<Id>,
    /// Old index files removed.
    pub index_files_removed: Vec<Id>,
    /// Pack files deleted.
    pub packs_deleted: u64,
}

/// What the index says one pack holds, and how much of it is used.
#[derive(Default)]
struct PackInfo {
    blobs: Vec<PackedBlob>,
    /// Blobs this pack keeps (the chosen copy of a used blob).
    owned: usize,
    owned_bytes: u64,
    /// Used blobs whose kept copy is elsewhere.
    duplicates: usize,
    /// Blobs nobody uses.
    unused: usize,
    has_tree: bool,
    has_data: bool,
    uncompressed: bool,
    /// An uncompressed tree blob (repository version 2 compresses trees).
    uncompressed_tree: bool,
}

/// The size of one blob in its pack, header entry included (restic counts
/// sizes this way).
fn entry_size(b: &PackedBlob) -> u64 {
    pack::expected_size(std::slice::from_ref(b)) - pack::expected_size(&[])
}

/// The bytes of a pack that are used: its kept blobs and, when it keeps
/// any, the header's fixed part (the encryption overhead and the length).
fn used_bytes(info: &PackInfo) -> u64 {
    if info.owned == 0 {
        0
    } else {
        info.owned_bytes + pack::expected_size(&[])
    }
}

/// Every blob the snapshots use; also counts snapshots and trees.
fn used_blobs(repo: &Repository, report: &mut PruneReport) -> Result<HashSet<(BlobType, Id)>> {
    let mut roots = Vec::new();
    for id in repo.list_ids(FileType::Snapshot)? {
        let s: Snapshot = repo.load_unpacked(FileType::Snapshot, &id).map_err(|e| {
            e.context(format!(
                "reading snapshot {} (nothing was deleted; `vaultfs repair snapshots` lists damage)",
                id.short()
            ))
        })?;
        roots.push(s.tree);
        report.snapshots += 1;
    }
    let mut used: HashSet<(BlobType, Id)> = HashSet::new();
    let mut frontier: Vec<Id> = Vec::new();
    for r in roots {
        if used.insert((BlobType::Tree, r)) {
            frontier.push(r);
        }
    }
    // Level by level, each level's trees read in parallel.
    while !frontier.is_empty() {
        report.trees += frontier.len() as u64;
        let trees = crate::parallel::map(std::mem::take(&mut frontier), |id| {
            repo.read_blob(BlobType::Tree, &id)
                .and_then(|d| Tree::decode(&id, &d))
                .map_err(|e| {
                    e.context(format!(
                        "reading tree {} (nothing was deleted; run `vaultfs check`)",
                        id.short()
                    ))
                })
        })?;
        for t in trees {
            for n in t.nodes {
                for b in n.content.iter().flatten() {
                    used.insert((BlobType::Data, *b));
                }
                if let Some(s) = n.subtree {
                    if used.insert((BlobType::Tree, s)) {
                        frontier.push(s);
                    }
                }
            }
        }
    }
    Ok(used)
}

/// The plan: what happens to each pack.
struct Plan {
    infos: BTreeMap<PackId, PackInfo>,
    /// The copy kept of each used blob.
    owner: HashMap<(BlobType, Id), PackId>,
    keep: BTreeSet<PackId>,
    repack: BTreeSet<PackId>,
    delete: BTreeSet<PackId>,
    sizes: HashMap<PackId, u64>,
}

fn plan(
    repo: &Repository,
    opts: &PruneOptions,
    used: &HashSet<(BlobType, Id)>,
    report: &mut PruneReport,
) -> Result<Plan> {
    let files = repo
        .backend()
        .list(FileType::Pack)
        .map_err(|e| Error::io("listing data", e))?;
    let sizes: HashMap<PackId, u64> = files
        .iter()
        .filter_map(|f| f.name.parse::<Id>().ok().map(|id| (id, f.size)))
        .collect();
    report.total_bytes = sizes.values().sum();

    let mut infos: BTreeMap<PackId, PackInfo> = BTreeMap::new();
    for loc in repo.index().all_copies() {
        let info = infos.entry(loc.pack).or_default();
        info.blobs.push(loc.blob);
    }
    // Packs the index names that data/ lacks: fine when nothing used is
    // only there (they are dropped from the index), else nothing can be
    // done safely.
    let missing: Vec<PackId> = infos
        .keys()
        .filter(|p| !sizes.contains_key(p))
        .copied()
        .collect();
    for p in &missing {
        infos.remove(p);
        report.packs_missing += 1;
    }
    // Which packs describe themselves as used how much: the copy of a
    // used blob kept is the one in the pack with the largest used share
    // (a fully used pack keeps its blobs), ties to the lowest pack id.
    let mut used_share: HashMap<PackId, f64> = HashMap::new();
    for (id, info) in &mut infos {
        info.blobs.sort_by_key(|b| b.offset);
        let n = info
            .blobs
            .iter()
            .filter(|b| used.contains(&(b.blob_type, b.id)))
            .count();
        used_share.insert(*id, n as f64 / info.blobs.len().max(1) as f64);
    }
    let mut owner: HashMap<(BlobType, Id), PackId> = HashMap::new();
    for (id, info) in &infos {
        let share = used_share.get(id).copied().unwrap_or(0.0);
        for b in &info.blobs {
            let key = (b.blob_type, b.id);
            if !used.contains(&key) {
                continue;
            }
            owner
                .entry(key)
                .and_modify(|o| {
                    let theirs = used_share.get(o).copied().unwrap_or(0.0);
                    // `infos` is walked in id order: on a tie the first stays.
                    if share > theirs {
                        *o = *id;
                    }
                })
                .or_insert(*id);
        }
    }
    let lost = used.iter().filter(|k| !owner.contains_key(k)).count();
    if lost > 0 {
        return Err(Error::new(
            ErrorKind::Missing,
            format!(
                "{lost} blobs the snapshots need are not in the index or only in packs \
                 missing from data/; nothing was deleted (run `vaultfs check`, then \
                 `vaultfs repair index`)"
            ),
        ));
    }

    let version2 = repo.config().version >= 2;
    for (id, info) in &mut infos {
        for b in &info.blobs {
            let key = (b.blob_type, b.id);
            let size = entry_size(b);
            match owner.get(&key) {
                Some(o) if o == id => {
                    info.owned += 1;
                    info.owned_bytes += size;
                    report.used.add(size);
                }
                Some(_) => {
                    info.duplicates += 1;
                    report.duplicate.add(size);
                }
                None => {
                    info.unused += 1;
                    report.unused.add(size);
                }
            }
            match b.blob_type {
                BlobType::Tree => info.has_tree = true,
                BlobType::Data => info.has_data = true,
            }
            if b.uncompressed_length.is_none() {
                info.uncompressed = true;
                if b.blob_type == BlobType::Tree {
                    info.uncompressed_tree = true;
                }
            }
        }
        let size = sizes.get(id).copied().unwrap_or(0);
        if pack::expected_size(&info.blobs) != size && info.owned > 0 {
            return Err(Error::damaged(format!(
                "pack {id}: the index describes {} bytes but the pack has {size}; nothing was \
                 deleted (run `vaultfs repair index`)",
                pack::expected_size(&info.blobs)
            )));
        }
    }

    let mut keep = BTreeSet::new();
    let mut repack = BTreeSet::new();
    let mut delete = BTreeSet::new();
    let mut candidates: Vec<PackId> = Vec::new();
    let mut small: Vec<PackId> = Vec::new();
    // restic 0.14: fully used packs below 1/25 of the pack size (80% with
    // `repack_small`) are worth merging, if there are at least 10 of them
    // (fewer would be repacked again and again).
    let target = if opts.repack_small {
        PACK_SIZE as u64 / 5 * 4
    } else {
        PACK_SIZE as u64 / 25
    };
    let mut repack_bytes = 0u64;
    let mut unused_bytes = 0u64;
    let mut removed_bytes = 0u64;
    for (id, info) in &infos {
        let size = sizes.get(id).copied().unwrap_or(0);
        let unused_here = size.saturating_sub(used_bytes(info));
        unused_bytes += unused_here;
        report.packs += 1;
        if info.owned == 0 {
            report.packs_unused += 1;
        } else if info.duplicates == 0 && info.unused == 0 {
            report.packs_used += 1;
        } else {
            report.packs_partly_used += 1;
        }
        let must_compress = version2
            && ((info.has_tree && info.uncompressed_tree)
                || (opts.repack_uncompressed && info.uncompressed));
        let mixed = info.has_tree && info.has_data;
        if info.owned == 0 {
            delete.insert(*id);
            removed_bytes += unused_here;
            for b in &info.blobs {
                if owner.get(&(b.blob_type, b.id)) != Some(id) {
                    report.delete_removed.add(entry_size(b));
                }
            }
        } else if info.duplicates == 0 && info.unused == 0 && !must_compress && !mixed {
            if size >= target {
                keep.insert(*id);
            } else {
                small.push(*id);
            }
        } else {
            candidates.push(*id);
        }
    }
    if small.len() < 10 {
        keep.extend(small);
    } else {
        candidates.extend(small);
    }
    // restic's order: tree (and mixed) packs first, then small packs, then
    // by the unused share, largest first.
    let unused_of = |id: &PackId| -> (u64, u64) {
        let size = sizes.get(id).copied().unwrap_or(0);
        let used = infos.get(id).map_or(0, used_bytes);
        (size.saturating_sub(used), used)
    };
    let is_small = |id: &PackId| sizes.get(id).copied().unwrap_or(0) < target;
    candidates.sort_by(|a, b| {
        let ta = infos.get(a).is_some_and(|i| i.has_tree);
        let tb = infos.get(b).is_some_and(|i| i.has_tree);
        let ((ua, sa), (ub, sb)) = (unused_of(a), unused_of(b));
        tb.cmp(&ta)
            .then_with(|| is_small(b).cmp(&is_small(a)))
            .then_with(|| (u128::from(ub) * u128::from(sa)).cmp(&(u128::from(ua) * u128::from(sb))))
            .then(a.cmp(b))
    });
    let limit = opts.max_unused.limit(report.used.bytes);
    let max_repack = opts.max_repack_size.unwrap_or(u64::MAX);
    let mut repack_removed_bytes = 0u64;
    for id in candidates {
        let Some(info) = infos.get(&id) else {
            continue;
        };
        let size = sizes.get(&id).copied().unwrap_or(0);
        let (unused_here, _) = unused_of(&id);
        let reached_limit =
            unused_bytes.saturating_sub(removed_bytes + repack_removed_bytes) < limit;
        let forced = info.duplicates > 0
            || info.has_tree
            || (version2 && opts.repack_uncompressed && info.uncompressed);
        let do_repack = if repack_bytes.saturating_add(size) >= max_repack {
            false
        } else {
            forced || !reached_limit || is_small(&id)
        };
        if do_repack {
            repack.insert(id);
            repack_bytes += size;
            repack_removed_bytes += unused_here;
        } else {
            keep.insert(id);
        }
    }
    // Packs no index names: deleted (restic 0.14 does the same).
    let mut unreferenced: Vec<(PackId, u64)> = sizes
        .iter()
        .filter(|(id, _)| !infos.contains_key(id))
        .map(|(id, s)| (*id, *s))
        .collect();
    unreferenced.sort();
    for (id, s) in unreferenced {
        report.packs_unreferenced += 1;
        report.unreferenced_bytes += s;
        delete.insert(id);
    }
    report.keep = keep.len() as u64;
    report.repack = repack.len() as u64;
    report.delete = delete.len() as u64;
    report.repack_bytes = repack_bytes;
    report.delete_bytes = delete
        .iter()
        .map(|p| sizes.get(p).copied().unwrap_or(0))
        .sum();
    for id in &repack {
        if let Some(info) = infos.get(id) {
            for b in &info.blobs {
                if owner.get(&(b.blob_type, b.id)) == Some(id) {
                    report.repack_blobs.add(entry_size(b));
                } else {
                    report.repack_removed.add(entry_size(b));
                }
            }
        }
    }
    report.unused_after = keep.iter().map(|id| unused_of(id).0).sum::<u64>();
    // Estimate: kept packs plus the repacked blobs at their current size.
    report.total_after = keep
        .iter()
        .map(|p| sizes.get(p).copied().unwrap_or(0))
        .sum::<u64>()
        + report.repack_blobs.bytes;
    report.freed_bytes = report.total_bytes.saturating_sub(report.total_after);
    Ok(Plan {
        infos,
        owner,
        keep,
        repack,
        delete,
        sizes,
    })
}

/// Writes repacked blobs into new packs (data and tree blobs apart).
struct Repacker<'a> {
    repo: &'a Repository,
    data: PackBuilder,
    tree: PackBuilder,
    written: BTreeMap<PackId, Vec<PackedBlob>>,
    bytes: u64,
}

impl Repacker<'_> {
    fn add(&mut self, b: &Blob) -> Result<()> {
        let pb = match b.blob_type {
            BlobType::Data => &mut self.data,
            BlobType::Tree => &mut self.tree,
        };
        match &b.stored {
            Stored::Encrypted(enc) => pb.add(b.blob_type, b.id, enc, b.uncompressed),
            Stored::Plain(p) => {
                pb.add_encrypting(self.repo.key(), b.blob_type, b.id, p, b.uncompressed);
            }
        }
        if pb.len() >= PACK_SIZE {
            let full = std::mem::take(pb);
            self.write(full)?;
        }
        Ok(())
    }

    fn write(&mut self, pb: PackBuilder) -> Result<()> {
        if pb.is_empty() {
            return Ok(());
        }
        let fin = pb.finish(self.repo.key());
        self.repo
            .backend()
            .write(FileType::Pack, &fin.id.to_hex(), fin.bytes())
            .map_err(|e| Error::io(format!("writing pack {}", fin.id.short()), e))?;
        self.bytes += fin.bytes().len() as u64;
        self.written.insert(fin.id, fin.blobs);
        Ok(())
    }

    fn finish(mut self) -> Result<(BTreeMap<PackId, Vec<PackedBlob>>, u64)> {
        let data = std::mem::take(&mut self.data);
        let tree = std::mem::take(&mut self.tree);
        self.write(data)?;
        self.write(tree)?;
        Ok((self.written, self.bytes))
    }
}

/// How a repacked blob is stored in its new pack.
enum Stored {
    /// Its old encrypted bytes, copied (already compressed, or the vault
    /// does not compress).
    Encrypted(Vec<u8>),
    /// New plaintext payload (compressed) to encrypt.
    Plain(Vec<u8>),
}

struct Blob {
    blob_type: BlobType,
    id: Id,
    uncompressed: Option<u32>,
    stored: Stored,
}

/// Reads one pack whole and returns the blobs it keeps, each verified
/// (MAC, decryption, decompression, SHA-256); a damaged one is taken from
/// another indexed copy if there is an intact one.
fn read_for_repack(
    repo: &Repository,
    id: &PackId,
    size: u64,
    keep: &[PackedBlob],
    always_compress: bool,
) -> Result<Vec<Blob>> {
    if size > MAX_PACK {
        return Err(Error::damaged(format!(
            "pack {id}: {size} bytes is larger than any pack can be"
        )));
    }
    let data = repo
        .backend()
        .read(FileType::Pack, &id.to_hex())
        .map_err(|e| Error::io(format!("reading pack {}", id.short()), e))?;
    let mut out = Vec::with_capacity(keep.len());
    for b in keep {
        let what = format!(
            "{} blob {} in pack {}",
            b.blob_type.as_str(),
            b.id,
            id.short()
        );
        let range = b.offset as usize..b.offset as usize + b.length as usize;
        let enc = data.get(range).map(<[u8]>::to_vec);
        let plain = match enc.clone().map(|mut e| repo.decode_blob(&what, b, &mut e)) {
            Some(Ok(p)) => p,
            bad => {
                // Another copy (the index keeps every one)?
                let other = repo
                    .index()
                    .copies(b.blob_type, &b.id)
                    .into_iter()
                    .filter(|l| l.pack != *id)
                    .find_map(|l| repo.read_blob_at(&l.pack, &l.blob).ok());
                match (other, bad) {
                    (Some(p), _) => {
                        out.push(encode(repo, b, p, None, always_compress)?);
                        continue;
                    }
                    (None, Some(Err(e))) => {
                        return Err(
                            e.context("nothing was deleted (run `vaultfs check --read-data`)")
                        );
                    }
                    (None, _) => {
                        return Err(Error::damaged(format!(
                            "{what}: outside the pack; nothing was deleted"
                        )));
                    }
                }
            }
        };
        out.push(encode(repo, b, plain, enc, always_compress)?);
    }
    Ok(out)
}

/// The bytes to store for a verified blob: its old encrypted bytes when
/// they can stay as they are, else freshly compressed plaintext.
fn encode(
    repo: &Repository,
    b: &PackedBlob,
    plain: Vec<u8>,
    enc: Option<Vec<u8>>,
    always_compress: bool,
) -> Result<Blob> {
    let level = match repo.compression() {
        Compression::Level(l) => Some(l),
        Compression::Off => None,
    };
    // Uncompressed data blobs stay as they are unless asked: vaultfs stores
    // a blob uncompressed when zstd could not shrink it, so trying again
    // would mostly cost CPU (2 GiB of it in prune-bench.sh). Trees are
    // small and compress well: always.
    let recompress = level.is_some()
        && b.uncompressed_length.is_none()
        && (always_compress || b.blob_type == BlobType::Tree);
    let enc = match (enc, recompress) {
        (Some(e), false) => {
            return Ok(Blob {
                blob_type: b.blob_type,
                id: b.id,
                uncompressed: b.uncompressed_length,
                stored: Stored::Encrypted(e),
            });
        }
        (e, _) => e,
    };
    let Some(level) = level else {
        return Ok(Blob {
            blob_type: b.blob_type,
            id: b.id,
            uncompressed: None,
            stored: Stored::Plain(plain),
        });
    };
    let z = zstd::bulk::compress(&plain, level).map_err(|e| Error::io("zstd", e))?;
    // Trees (and, when asked, data) are stored compressed even when zstd
    // cannot shrink them, as restic does: else the next prune would find
    // them uncompressed and repack them again.
    let force = always_compress || b.blob_type == BlobType::Tree;
    let plain_len = plain.len();
    let blob = if force || z.len() < plain_len {
        Blob {
            blob_type: b.blob_type,
            id: b.id,
            uncompressed: Some(plain_len as u32),
            stored: Stored::Plain(z),
        }
    } else {
        match enc {
            Some(e) => Blob {
                blob_type: b.blob_type,
                id: b.id,
                uncompressed: None,
                stored: Stored::Encrypted(e),
            },
            None => Blob {
                blob_type: b.blob_type,
                id: b.id,
                uncompressed: None,
                stored: Stored::Plain(plain),
            },
        }
    };
    Ok(blob)
}

/// Prunes the vault (see the module documentation). The caller holds the
/// exclusive lock. `progress` hears of the packs read to repack.
pub fn prune(
    repo: &Arc<Repository>,
    opts: &PruneOptions,
    progress: &dyn CheckProgress,
) -> Result<PruneReport> {
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..PruneReport::default()
    };
    // Listed before loading: the lock keeps anyone from adding files.
    let old_index = repo.list_ids(FileType::Index)?;
    repo.load_index().map_err(|e| {
        e.context("loading the index (nothing was deleted; run `vaultfs repair index`)")
    })?;
    let used = used_blobs(repo, &mut report)?;
    let plan = plan(repo, opts, &used, &mut report)?;
    if opts.dry_run {
        return Ok(report);
    }

    // 1. Repack: the kept copies of the repacked packs' used blobs.
    let mut repacker = Repacker {
        repo,
        data: PackBuilder::default(),
        tree: PackBuilder::default(),
        written: BTreeMap::new(),
        bytes: 0,
    };
    let todo: Vec<(PackId, u64, Vec<PackedBlob>)> = plan
        .repack
        .iter()
        .map(|id| {
            let size = plan.sizes.get(id).copied().unwrap_or(0);
            let keep: Vec<PackedBlob> = plan
                .infos
                .get(id)
                .map(|i| {
                    i.blobs
                        .iter()
                        .filter(|b| plan.owner.get(&(b.blob_type, b.id)) == Some(id))
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            (*id, size, keep)
        })
        .collect();
    progress.start(todo.len() as u64, report.repack_bytes);
    let always_compress = opts.repack_uncompressed;
    // A few packs at a time, read and verified in parallel, written in
    // order: memory stays at a few packs.
    let batch = crate::parallel::workers().max(2);
    let mut todo = todo.into_iter().peekable();
    while todo.peek().is_some() {
        let chunk: Vec<_> = todo.by_ref().take(batch).collect();
        let blobs = crate::parallel::map(chunk, |(id, size, keep)| {
            let r = read_for_repack(repo, &id, size, &keep, always_compress);
            progress.pack_done(size);
            r
        })?;
        for b in blobs.iter().flatten() {
            repacker.add(b)?;
        }
    }
    let (new_packs, new_bytes) = repacker.finish()?;
    repo.backend()
        .sync()
        .map_err(|e| Error::io("syncing the new packs (nothing was deleted)", e))?;
    report.new_packs = new_packs.len() as u64;
    report.new_pack_bytes = new_bytes;
    if opts.stop_after == Some(StopAfter::Packs) {
        return Ok(report);
    }

    // 2. The new index: kept packs as they are, plus the new packs; then
    // the old index files go.
    let mut index: BTreeMap<PackId, Vec<PackedBlob>> = new_packs;
    for id in &plan.keep {
        if let Some(info) = plan.infos.get(id) {
            index.insert(*id, info.blobs.clone());
        }
    }
    let max_blobs = crate::repair::index_file_blobs(repo);
    if opts.stop_after == Some(StopAfter::Index) {
        let (written, _) = crate::repair::replace_index(repo, &index, &[], max_blobs)?;
        report.index_files_written = written;
        return Ok(report);
    }
    let (written, removed) = crate::repair::replace_index(repo, &index, &old_index, max_blobs)?;
    report.index_files_written = written;
    report.index_files_removed = removed;
    if opts.stop_after == Some(StopAfter::OldIndex) {
        return Ok(report);
    }

    // 3. Only now the packs nothing names any more.
    for id in plan.delete.iter().chain(plan.repack.iter()) {
        repo.backend()
            .remove(FileType::Pack, &id.to_hex())
            .map_err(|e| {
                Error::io(
                    format!(
                        "deleting pack {} (the new index is in place; run prune again)",
                        id.short()
                    ),
                    e,
                )
            })?;
        report.packs_deleted += 1;
    }
    report.total_after = plan
        .keep
        .iter()
        .map(|p| plan.sizes.get(p).copied().unwrap_or(0))
        .sum::<u64>()
        + new_bytes;
    report.freed_bytes = report.total_bytes.saturating_sub(report.total_after);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_unused_parses_like_restic() {
        assert_eq!(MaxUnused::parse("5%"), Some(MaxUnused::Percent(5.0)));
        assert_eq!(MaxUnused::parse("0%"), Some(MaxUnused::Percent(0.0)));
        assert_eq!(MaxUnused::parse("unlimited"), Some(MaxUnused::Unlimited));
        assert_eq!(MaxUnused::parse("2G"), Some(MaxUnused::Bytes(2 << 30)));
        assert_eq!(MaxUnused::parse("100"), Some(MaxUnused::Bytes(100)));
        for bad in ["100%", "-1%", "x", "5X", ""] {
            assert_eq!(MaxUnused::parse(bad), None, "{bad}");
        }
        // A share of the size after the prune: 20% unused of the whole is
        // a quarter of the used bytes.
        assert_eq!(MaxUnused::Percent(20.0).limit(1000), 250);
        assert_eq!(MaxUnused::Percent(0.0).limit(1000), 0);
        assert_eq!(MaxUnused::Unlimited.limit(1000), u64::MAX);
    }

    #[test]
    fn entry_size_counts_the_header_entry() {
        let b = PackedBlob {
            blob_type: BlobType::Data,
            id: Id::hash(b"x"),
            offset: 0,
            length: 100,
            uncompressed_length: None,
        };
        assert_eq!(entry_size(&b), 137);
        let c = PackedBlob {
            uncompressed_length: Some(500),
            ..b
        };
        assert_eq!(entry_size(&c), 141);
    }
}
