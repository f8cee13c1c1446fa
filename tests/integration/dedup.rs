//! Deduplication across backups: a 64 MiB random file backed up, then the
//! same file with one byte inserted in the middle. Content-defined chunking
//! must confine the new data to the chunks around the edit ("at most ~3
//! chunks of new data"), where fixed-size chunking would rewrite half the
//! file. A copy of the original under another name adds no data at all.

use std::collections::HashSet;
use std::fs;

use vaultfs::Id;
use vaultfs::chunker::{AVG_SIZE, MAX_SIZE, MIN_SIZE};
use vaultfs::repo::{BlobType, Repository};
use vaultfs::snapshot::find_snapshot;
use vaultfs::snapshot::select::SnapshotFilter;

use crate::fixture::random_bytes;
use crate::interop_write::vaultfs_backup;
use crate::vault;

const FILE_SIZE: usize = 64 << 20;
const EDIT_AT: usize = FILE_SIZE / 2 + 12_345;
/// Packs, encryption and headers for a handful of blobs, plus the new tree
/// blobs of a two-file directory (no index or snapshot: those are not in
/// `data/`).
const OVERHEAD: u64 = 64 << 10;

/// Content blob ids (with their plaintext lengths) of `name` in the latest snapshot.
fn content(repo: &Repository, dir: &std::path::Path, name: &str) -> Vec<(Id, u64)> {
    let (_, snap) =
        find_snapshot(repo, "latest", &SnapshotFilter::default()).expect("latest snapshot");
    let node = vault::find_source_node(repo, &snap.tree, &dir.join(name));
    node.content()
        .iter()
        .map(|id| {
            let loc = repo
                .index()
                .get(BlobType::Data, id)
                .unwrap_or_else(|| panic!("data blob {id} of {name} is not in the index"));
            (*id, u64::from(loc.blob.plain_len()))
        })
        .collect()
}

#[test]
fn one_byte_inserted_in_a_large_file_adds_at_most_three_chunks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("src");
    fs::create_dir(&dir).expect("mkdir src");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(64);
    let original = random_bytes(&mut rng, FILE_SIZE);
    fs::write(dir.join("big.bin"), &original).expect("write big.bin");
    let repo_dir = tmp.path().join("repo");

    vaultfs_backup(&vault::init(&repo_dir), &dir);
    let size1 = vault::pack_bytes(&repo_dir);
    let repo = vault::open(&repo_dir);
    let old = content(&repo, &dir, "big.bin");
    assert!(
        size1 >= FILE_SIZE as u64,
        "64 MiB of random data stored in {size1} bytes of packs"
    );
    // The chunker's contract, seen from the snapshot.
    assert!(old.len() >= FILE_SIZE / MAX_SIZE, "{} chunks", old.len());
    for (i, (id, len)) in old.iter().enumerate() {
        let last = i + 1 == old.len();
        assert!(
            *len <= MAX_SIZE as u64 && (last || *len >= MIN_SIZE as u64),
            "chunk {i} ({id:?}) is {len} bytes, outside {MIN_SIZE}..={MAX_SIZE}"
        );
    }

    let mut edited = original.clone();
    edited.insert(EDIT_AT, 0x5a);
    fs::write(dir.join("big.bin"), &edited).expect("rewrite big.bin");
    fs::write(dir.join("copy.bin"), &original).expect("write copy.bin");
    vaultfs_backup(&repo, &dir);
    let size2 = vault::pack_bytes(&repo_dir);
    let repo = vault::open(&repo_dir);

    // The copy is the old file: the very same blobs.
    let copy = content(&repo, &dir, "copy.bin");
    assert_eq!(
        copy, old,
        "copy.bin (identical to the first big.bin) was chunked differently"
    );

    let new = content(&repo, &dir, "big.bin");
    let old_ids: HashSet<Id> = old.iter().map(|(id, _)| *id).collect();
    let fresh: Vec<usize> = (0..new.len())
        .filter(|i| !old_ids.contains(&new[*i].0))
        .collect();
    assert!(
        (1..=3).contains(&fresh.len()),
        "inserting one byte produced {} new chunks out of {} (want 1..=3)",
        fresh.len(),
        new.len()
    );
    // The new chunks are adjacent and hold the edit.
    let start: u64 = new[..fresh[0]].iter().map(|c| c.1).sum();
    let end: u64 = start + fresh.iter().map(|i| new[*i].1).sum::<u64>();
    assert!(
        fresh.windows(2).all(|w| w[1] == w[0] + 1) && (start..end).contains(&(EDIT_AT as u64)),
        "new chunks {fresh:?} cover bytes {start}..{end}, not the edit at {EDIT_AT}"
    );

    let growth = size2 - size1;
    let new_bytes = end - start;
    eprintln!(
        "dedup: {} of {} chunks new ({new_bytes} bytes); data/ grew by {growth} bytes",
        fresh.len(),
        new.len()
    );
    assert!(
        growth <= new_bytes + OVERHEAD,
        "the repository grew by {growth} bytes for {new_bytes} bytes of new chunks"
    );
    // "At most ~3 chunks of new data": three average chunks, with room for
    // the size spread of content-defined chunks (normalised FastCDC rarely
    // cuts beyond twice the average), far below what fixed-size chunking
    // would add (half the file, 32 MiB).
    let bound = 3 * 2 * AVG_SIZE as u64 + OVERHEAD;
    assert!(
        growth <= bound,
        "the repository grew by {growth} bytes (bound {bound}) after inserting one byte into a 64 MiB file"
    );
}
