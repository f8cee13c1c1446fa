//! The blob index: which pack holds each blob, at which offset.
//!
//! Loaded from the JSON files below `index/` (restic's format), kept in
//! memory as one map per blob type. New packs are collected in an
//! [`IndexFile`] and written when it grows large or a backup ends.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::pack::{BlobType, PackedBlob};
use crate::id::{Id, PackId};

/// The JSON of one index file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexFile {
    /// Index files this one replaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supersedes: Vec<Id>,
    /// Packs and their blobs.
    #[serde(default)]
    pub packs: Vec<IndexPack>,
}

/// One pack in an index file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexPack {
    /// The pack's id.
    pub id: PackId,
    /// Its blobs.
    #[serde(default)]
    pub blobs: Vec<IndexBlob>,
}

/// One blob in an index file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexBlob {
    /// Plaintext SHA-256.
    pub id: Id,
    /// `data` or `tree`.
    #[serde(rename = "type")]
    pub blob_type: IndexBlobType,
    /// Offset in the pack.
    pub offset: u32,
    /// Encrypted length.
    pub length: u32,
    /// Plaintext length of compressed blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_length: Option<u32>,
}

/// Blob type as spelled in index JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexBlobType {
    /// Data blob.
    Data,
    /// Tree blob.
    Tree,
}

impl From<BlobType> for IndexBlobType {
    fn from(t: BlobType) -> Self {
        match t {
            BlobType::Data => IndexBlobType::Data,
            BlobType::Tree => IndexBlobType::Tree,
        }
    }
}

impl From<IndexBlobType> for BlobType {
    fn from(t: IndexBlobType) -> Self {
        match t {
            IndexBlobType::Data => BlobType::Data,
            IndexBlobType::Tree => BlobType::Tree,
        }
    }
}

impl IndexFile {
    /// Adds a pack and its blobs.
    pub fn add_pack(&mut self, id: PackId, blobs: &[PackedBlob]) {
        self.packs.push(IndexPack {
            id,
            blobs: blobs
                .iter()
                .map(|b| IndexBlob {
                    id: b.id,
                    blob_type: b.blob_type.into(),
                    offset: b.offset,
                    length: b.length,
                    uncompressed_length: b.uncompressed_length,
                })
                .collect(),
        });
    }

    /// Number of blobs described.
    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|p| p.blobs.len()).sum()
    }
}

/// Where a blob lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack.
    pub pack: PackId,
    /// The blob's entry in it.
    pub blob: PackedBlob,
}

#[derive(Clone, Copy)]
struct Entry {
    pack: u32,
    offset: u32,
    length: u32,
    uncompressed: u32, // 0 = not compressed
}

/// The in-memory index of every blob in the repository.
#[derive(Default)]
pub struct Index {
    packs: Vec<PackId>,
    pack_pos: HashMap<PackId, u32>,
    data: HashMap<Id, Entry>,
    tree: HashMap<Id, Entry>,
    /// Further copies of blobs stored in more than one pack (left by an
    /// interrupted prune, racing backups, or a repair): readers fall back
    /// to them when the first copy is damaged. Empty in most repositories.
    extra: HashMap<(BlobType, Id), Vec<Entry>>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    fn map(&self, t: BlobType) -> &HashMap<Id, Entry> {
        match t {
            BlobType::Data => &self.data,
            BlobType::Tree => &self.tree,
        }
    }

    /// Records the blobs of a pack. A blob already known keeps its first
    /// location; copies in other packs are kept as fallbacks ([`copies`]).
    ///
    /// [`copies`]: Index::copies
    pub fn add_pack(&mut self, pack: PackId, blobs: impl IntoIterator<Item = PackedBlob>) {
        let next = self.packs.len() as u32;
        let pos = *self.pack_pos.entry(pack).or_insert(next);
        if pos == next {
            self.packs.push(pack);
        }
        for b in blobs {
            let e = Entry {
                pack: pos,
                offset: b.offset,
                length: b.length,
                uncompressed: b.uncompressed_length.unwrap_or(0),
            };
            let map = match b.blob_type {
                BlobType::Data => &mut self.data,
                BlobType::Tree => &mut self.tree,
            };
            match map.entry(b.id) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(e);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    let more = self.extra.entry((b.blob_type, b.id)).or_default();
                    if o.get().pack != pos && more.iter().all(|m| m.pack != pos) {
                        more.push(e);
                    }
                }
            }
        }
    }

    /// Merges an index file.
    pub fn add_file(&mut self, f: &IndexFile) {
        for p in &f.packs {
            self.add_pack(
                p.id,
                p.blobs.iter().map(|b| PackedBlob {
                    blob_type: b.blob_type.into(),
                    id: b.id,
                    offset: b.offset,
                    length: b.length,
                    uncompressed_length: b.uncompressed_length,
                }),
            );
        }
    }

    /// Is the blob known?
    pub fn contains(&self, t: BlobType, id: &Id) -> bool {
        self.map(t).contains_key(id)
    }

    /// Where the blob is.
    pub fn get(&self, t: BlobType, id: &Id) -> Option<BlobLocation> {
        let e = self.map(t).get(id)?;
        Some(BlobLocation {
            pack: *self.packs.get(e.pack as usize)?,
            blob: PackedBlob {
                blob_type: t,
                id: *id,
                offset: e.offset,
                length: e.length,
                uncompressed_length: (e.uncompressed != 0).then_some(e.uncompressed),
            },
        })
    }

    /// Every indexed copy of a blob, the one [`Index::get`] gives first,
    /// at most one per pack.
    pub fn copies(&self, t: BlobType, id: &Id) -> Vec<BlobLocation> {
        let mut out: Vec<BlobLocation> = self.get(t, id).into_iter().collect();
        for e in self.extra.get(&(t, *id)).into_iter().flatten() {
            if let Some(pack) = self.packs.get(e.pack as usize) {
                out.push(BlobLocation {
                    pack: *pack,
                    blob: PackedBlob {
                        blob_type: t,
                        id: *id,
                        offset: e.offset,
                        length: e.length,
                        uncompressed_length: (e.uncompressed != 0).then_some(e.uncompressed),
                    },
                });
            }
        }
        out
    }

    /// Every indexed copy of every blob (first locations and the copies
    /// in other packs), unordered: what each pack holds, as the index
    /// describes it.
    pub fn all_copies(&self) -> impl Iterator<Item = BlobLocation> + '_ {
        let firsts = [BlobType::Data, BlobType::Tree]
            .into_iter()
            .flat_map(move |t| self.map(t).iter().map(move |(id, e)| (t, *id, *e)));
        let extras = self
            .extra
            .iter()
            .flat_map(|((t, id), es)| es.iter().map(move |e| (*t, *id, *e)));
        firsts.chain(extras).filter_map(move |(t, id, e)| {
            Some(BlobLocation {
                pack: *self.packs.get(e.pack as usize)?,
                blob: PackedBlob {
                    blob_type: t,
                    id,
                    offset: e.offset,
                    length: e.length,
                    uncompressed_length: (e.uncompressed != 0).then_some(e.uncompressed),
                },
            })
        })
    }

    /// Number of known blobs of a type.
    pub fn len(&self, t: BlobType) -> usize {
        self.map(t).len()
    }

    /// All packs referenced.
    pub fn packs(&self) -> &[PackId] {
        &self.packs
    }

    /// Every blob of a type with its location (unordered).
    pub fn blobs(&self, t: BlobType) -> impl Iterator<Item = BlobLocation> + '_ {
        self.map(t).keys().filter_map(move |id| self.get(t, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_in_other_packs_are_kept_once_each() {
        let blob = |offset| PackedBlob {
            blob_type: BlobType::Tree,
            id: Id::hash(b"t"),
            offset,
            length: 50,
            uncompressed_length: None,
        };
        let (p1, p2) = (Id::hash(b"p1"), Id::hash(b"p2"));
        let mut ix = Index::new();
        ix.add_pack(p1, [blob(0)]);
        ix.add_pack(p2, [blob(100)]);
        // The same pack listed again (two index files) adds no copy.
        ix.add_pack(p2, [blob(100)]);
        ix.add_pack(p1, [blob(0)]);
        let copies = ix.copies(BlobType::Tree, &Id::hash(b"t"));
        let places: Vec<(Id, u32)> = copies.iter().map(|l| (l.pack, l.blob.offset)).collect();
        assert_eq!(places, vec![(p1, 0), (p2, 100)]);
        assert_eq!(
            ix.get(BlobType::Tree, &Id::hash(b"t")).map(|l| l.pack),
            Some(p1)
        );
        assert!(ix.copies(BlobType::Data, &Id::hash(b"t")).is_empty());
        assert_eq!(ix.len(BlobType::Tree), 1);
    }

    #[test]
    fn json_shape_and_lookup() {
        let pack = Id::hash(b"pack");
        let blobs = [
            PackedBlob {
                blob_type: BlobType::Data,
                id: Id::hash(b"a"),
                offset: 0,
                length: 40,
                uncompressed_length: None,
            },
            PackedBlob {
                blob_type: BlobType::Tree,
                id: Id::hash(b"b"),
                offset: 40,
                length: 50,
                uncompressed_length: Some(511),
            },
        ];
        let mut f = IndexFile::default();
        f.add_pack(pack, &blobs);
        let j = serde_json::to_string(&f).unwrap_or_default();
        assert!(j.starts_with("{\"packs\":[{\"id\":\""), "{j}");
        assert!(
            j.contains("\"type\":\"data\",\"offset\":0,\"length\":40}"),
            "{j}"
        );
        assert!(j.contains("\"uncompressed_length\":511"), "{j}");
        let back: IndexFile = serde_json::from_str(&j).expect("parse");
        let mut idx = Index::new();
        idx.add_file(&back);
        assert_eq!(
            idx.get(BlobType::Tree, &blobs[1].id),
            Some(BlobLocation {
                pack,
                blob: blobs[1]
            })
        );
        assert!(idx.contains(BlobType::Data, &blobs[0].id));
        assert!(!idx.contains(BlobType::Tree, &blobs[0].id));
        assert_eq!(idx.blobs(BlobType::Data).count(), 1);
    }
}
