//! `stats`: how big snapshots are, restored and stored, with restic's modes
//! and field names.
//!
//! - `restore-size`: what a restore writes: every node of every selected
//!   snapshot counts (directories and links too, with their recorded size,
//!   as restic counts them), duplicates included. A tree's totals are
//!   computed once and reused wherever it appears, so the cost grows with
//!   distinct trees, not with snapshots.
//! - `files-by-contents`: each distinct file content once (nodes without
//!   content — directories, links, empty files — share one empty content,
//!   as in restic).
//! - `raw-data`: the distinct blobs the snapshots need, as stored: their
//!   stored size (encrypted, after compression), their size before
//!   compression (plus the same encryption overhead, so the two compare),
//!   the compression ratio over compressed blobs, and the packs holding
//!   them.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::crypto::OVERHEAD;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::repo::pack::BlobType;
use crate::snapshot::Snapshot;

/// Which sizes to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// What a restore would write.
    RestoreSize,
    /// Distinct file contents.
    FilesByContents,
    /// Distinct blobs as stored.
    RawData,
}

/// The counts, with restic's JSON names (fields a mode does not fill are
/// left out).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Bytes: restored, distinct file contents, or stored blobs.
    pub total_size: u64,
    /// Nodes restored, or distinct contents (0 in raw-data, as restic
    /// has it).
    pub total_file_count: u64,
    /// raw-data: the blobs' size before compression (with encryption
    /// overhead, as `total_size` has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_uncompressed_size: Option<u64>,
    /// raw-data: uncompressed over stored size of the compressed blobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_ratio: Option<f64>,
    /// raw-data: percent of the data (by uncompressed size) that is
    /// stored compressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_progress: Option<f64>,
    /// raw-data: percent saved by compression over all blobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_space_saving: Option<f64>,
    /// raw-data: distinct blobs (trees and data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_blob_count: Option<u64>,
    /// raw-data: packs holding at least one of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_pack_count: Option<u64>,
    /// Snapshots counted.
    pub snapshots_count: u64,
}

/// Counts `snapshots` in `mode`.
pub fn stats(repo: &Repository, snapshots: &[(Id, Snapshot)], mode: Mode) -> Result<Stats> {
    let mut st = Stats {
        snapshots_count: snapshots.len() as u64,
        ..Stats::default()
    };
    match mode {
        Mode::RestoreSize => {
            let mut memo: HashMap<Id, (u64, u64)> = HashMap::new();
            let (mut size, mut count) = (0u64, 0u64);
            for (_, s) in snapshots {
                let (sz, n) = tree_totals(repo, &s.tree, &mut memo)?;
                size += sz;
                count += n;
            }
            st.total_size = size;
            st.total_file_count = count;
        }
        Mode::FilesByContents => {
            let mut contents: HashSet<[u8; 32]> = HashSet::new();
            let (mut size, mut count) = (0u64, 0u64);
            walk_distinct(
                repo,
                snapshots,
                |_| {},
                |node_content, node_size| {
                    let mut h = Sha256::new();
                    for id in node_content {
                        h.update(id.0);
                    }
                    if contents.insert(h.finalize().into()) {
                        size += node_size;
                        count += 1;
                    }
                },
            )?;
            st.total_size = size;
            st.total_file_count = count;
        }
        Mode::RawData => raw_data(repo, snapshots, &mut st)?,
    }
    Ok(st)
}

/// A tree's (size, node count), its subtrees included, each distinct tree
/// computed once; iterative, so deep trees need no deep stack.
fn tree_totals(
    repo: &Repository,
    root: &Id,
    memo: &mut HashMap<Id, (u64, u64)>,
) -> Result<(u64, u64)> {
    // (tree, children pushed?)
    let mut stack = vec![(*root, false)];
    let mut on_stack: HashSet<Id> = HashSet::new();
    while let Some((id, expanded)) = stack.pop() {
        if memo.contains_key(&id) {
            continue;
        }
        let tree = repo.load_tree(&id)?;
        if !expanded {
            if !on_stack.insert(id) {
                return Err(Error::damaged(format!("tree {id} contains itself")));
            }
            stack.push((id, true));
            for n in &tree.nodes {
                if let Some(sub) = n.subtree {
                    if !memo.contains_key(&sub) {
                        stack.push((sub, false));
                    }
                }
            }
            continue;
        }
        let (mut size, mut count) = (0u64, 0u64);
        for n in &tree.nodes {
            size += n.size;
            count += 1;
            if let Some(sub) = n.subtree {
                let (s, c) = memo
                    .get(&sub)
                    .copied()
                    .ok_or_else(|| Error::damaged(format!("tree {sub} contains itself")))?;
                size += s;
                count += c;
            }
        }
        on_stack.remove(&id);
        memo.insert(id, (size, count));
    }
    memo.get(root)
        .copied()
        .ok_or_else(|| Error::damaged(format!("tree {root} contains itself")))
}

/// Calls `tree(id)` for every distinct tree and `node(content, size)` for
/// each of its nodes.
fn walk_distinct(
    repo: &Repository,
    snapshots: &[(Id, Snapshot)],
    mut tree: impl FnMut(&Id),
    mut node: impl FnMut(&[Id], u64),
) -> Result<()> {
    let mut seen: HashSet<Id> = HashSet::new();
    for (_, s) in snapshots {
        let mut stack = vec![s.tree];
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            tree(&id);
            for n in &repo.load_tree(&id)?.nodes {
                node(n.content(), n.size);
                if let Some(sub) = n.subtree {
                    stack.push(sub);
                }
            }
        }
    }
    Ok(())
}

fn raw_data(repo: &Repository, snapshots: &[(Id, Snapshot)], st: &mut Stats) -> Result<()> {
    let mut trees: HashSet<Id> = HashSet::new();
    let mut data: HashSet<Id> = HashSet::new();
    walk_distinct(
        repo,
        snapshots,
        |id| {
            trees.insert(*id);
        },
        |content, _| data.extend(content.iter().copied()),
    )?;
    let blobs: Vec<(BlobType, &Id)> = trees
        .iter()
        .map(|id| (BlobType::Tree, id))
        .chain(data.iter().map(|id| (BlobType::Data, id)))
        .collect();
    let index = repo.index();
    let (mut stored, mut uncompressed) = (0u64, 0u64);
    let (mut comp_stored, mut comp_uncompressed) = (0u64, 0u64);
    let mut packs: HashSet<Id> = HashSet::new();
    for (t, id) in &blobs {
        let loc = index.get(*t, id).ok_or_else(|| {
            Error::missing(format!("{} blob {id} is not in the index", t.as_str()))
        })?;
        let len = u64::from(loc.blob.length);
        let plain = u64::from(loc.blob.plain_len()) + OVERHEAD as u64;
        stored += len;
        uncompressed += plain;
        if loc.blob.uncompressed_length.is_some() {
            comp_stored += len;
            comp_uncompressed += plain;
        }
        packs.insert(loc.pack);
    }
    st.total_size = stored;
    st.total_uncompressed_size = Some(uncompressed);
    st.total_blob_count = Some(blobs.len() as u64);
    st.total_pack_count = Some(packs.len() as u64);
    st.compression_ratio = (comp_stored > 0).then(|| comp_uncompressed as f64 / comp_stored as f64);
    if uncompressed > 0 {
        st.compression_progress = Some(comp_uncompressed as f64 / uncompressed as f64 * 100.0);
        st.compression_space_saving = Some((1.0 - stored as f64 / uncompressed as f64) * 100.0);
    }
    Ok(())
}
