//! Directories: the $I30 index of a directory (its $INDEX_ROOT and, for
//! larger ones, its $INDEX_ALLOCATION blocks through a bounded cache), the
//! entries a listing shows, and name lookup down the B-tree.
//!
//! Sources: [`super::index`] for the on-disk layout; which entries are
//! shown (no DOS-only names, no system files) follows ntfs-3g.

use std::sync::Arc;

use super::attr::{AT_INDEX_ALLOCATION, AT_INDEX_ROOT};
use super::data::{self, Value};
use super::facts::Facts;
use super::index::{self, Node};
use super::le::{self, mref_record, mref_seq, utf16_string};
use super::mft;
use super::record::{Record, apply_fixups};
use super::runlist;
use super::{FIRST_USER, I30, NtfsFs, STREAM_SHIFT, split, wrong};
use crate::fs::{DirEntry, FileKind, Filesystem, FsError, Ino};
use crate::io::{ReadAt, Source};

/// A directory's B-tree.
pub(super) struct DirIndex {
    pub(super) record: u64,
    pub(super) root: Node,
    /// The $INDEX_ALLOCATION's bytes and runs.
    pub(super) alloc: Option<(Source, Vec<runlist::DataRun>)>,
    pub(super) block_size: u32,
    pub(super) unit: u64,
}

impl NtfsFs {
    /// The facts of an in-use directory `dir`.
    pub(super) fn dir_facts(&self, dir: Ino) -> Result<Arc<Facts>, FsError> {
        let (rec, k) = split(dir);
        if k != 0 {
            self.metadata(dir)?;
            return Err(wrong(dir, FileKind::File, "directory"));
        }
        let f = self.facts(rec)?;
        if !f.inode.in_use {
            return Err(FsError::NoInode(dir));
        }
        if f.kind != FileKind::Dir {
            return Err(wrong(dir, f.kind, "directory"));
        }
        Ok(f)
    }

    /// A directory's index: the root node and a reader of its blocks.
    pub(super) fn index(&self, f: &Facts) -> Result<DirIndex, FsError> {
        let inode = &f.inode;
        let structure = format!("{} $INDEX_ROOT", Record::name(inode.record));
        let root_v = inode
            .value(&self.mft, AT_INDEX_ROOT, &I30)?
            .ok_or_else(|| FsError::corrupt(&structure, inode.offset, "no $I30 index root"))?;
        let Value::Resident { bytes, .. } = root_v else {
            return Err(FsError::corrupt(&structure, inode.offset, "non-resident"));
        };
        let (block_size, root) =
            index::parse_root(&bytes).map_err(|d| FsError::corrupt(&structure, inode.offset, d))?;
        let alloc = match inode.value(&self.mft, AT_INDEX_ALLOCATION, &I30)? {
            Some(v) => {
                if !(512..=65536).contains(&block_size) || !block_size.is_power_of_two() {
                    return Err(FsError::corrupt(
                        &structure,
                        inode.offset,
                        format!("index blocks of {block_size} bytes"),
                    ));
                }
                let name = format!("{} $INDEX_ALLOCATION", Record::name(inode.record));
                let damage = |d: String| FsError::corrupt(name.clone(), inode.offset, d);
                let runs = match &v {
                    Value::NonResident(m) => m.runs.clone(),
                    Value::Resident { .. } => Vec::new(),
                };
                Some((
                    data::source(&self.mft.vol, self.mft.cluster, &v, &name, &damage)?,
                    runs,
                ))
            }
            None => None,
        };
        let unit = if u64::from(block_size) >= self.mft.cluster {
            self.mft.cluster
        } else {
            512
        };
        Ok(DirIndex {
            record: inode.record,
            root,
            alloc,
            block_size,
            unit,
        })
    }

    pub(super) fn block(&self, ix: &DirIndex, vcn: u64) -> Result<Arc<Node>, FsError> {
        if let Some(n) = self.blocks.get((ix.record, vcn)) {
            return Ok(n);
        }
        let what = || format!("NTFS index block VCN {vcn} of directory {}", ix.record);
        let Some((alloc, runs)) = &ix.alloc else {
            return Err(FsError::corrupt(
                what(),
                0,
                "a sub-node without $INDEX_ALLOCATION",
            ));
        };
        let at = vcn
            .checked_mul(ix.unit)
            .filter(|at| at.saturating_add(u64::from(ix.block_size)) <= alloc.len())
            .ok_or_else(|| {
                FsError::corrupt(
                    what(),
                    0,
                    format!("lies outside the {} bytes of the index", alloc.len()),
                )
            })?;
        // Errors name the block's place in the volume.
        let at_vol = mft::volume_offset(runs, self.mft.cluster, at);
        let mut buf = vec![0u8; ix.block_size as usize];
        alloc.read_exact_at(at, &mut buf)?;
        apply_fixups(&mut buf, b"INDX", &what, at_vol)?;
        let stored = le::u64_at(&buf, 0x10).unwrap_or(u64::MAX);
        if stored != vcn {
            return Err(FsError::corrupt(
                what(),
                at_vol,
                format!("the block says it is VCN {stored}"),
            ));
        }
        let node = Arc::new(
            index::parse_node(&buf, 0x18).map_err(|d| FsError::corrupt(what(), at_vol, d))?,
        );
        self.blocks.insert((ix.record, vcn), node.clone());
        Ok(node)
    }

    /// A directory entry for index entry `e` of directory `dir`, or `None`
    /// for entries not shown (DOS-only names, system files, the root's `.`).
    pub(super) fn entry(
        &self,
        dir: u64,
        e: &index::Entry,
    ) -> Result<Option<(DirEntry, Arc<Facts>)>, FsError> {
        let Some(name) = &e.name else { return Ok(None) };
        let rec = mref_record(e.mref);
        if name.is_dos_only() || rec < FIRST_USER || rec == dir {
            return Ok(None);
        }
        let f = self.facts(rec)?;
        let seq = mref_seq(e.mref);
        if !f.inode.in_use || (seq != 0 && seq != f.inode.seq) {
            return Err(FsError::corrupt(
                format!("NTFS directory {dir}"),
                f.inode.offset,
                format!(
                    "the entry {:?} points at record {rec} sequence {seq}, which is {} with sequence {}",
                    utf16_string(&name.name),
                    if f.inode.in_use {
                        "in use"
                    } else {
                        "not in use"
                    },
                    f.inode.seq
                ),
            ));
        }
        let name_s = utf16_string(&name.name);
        if name_s.is_empty() || name_s == "." || name_s == ".." || name_s.contains(['/', '\0']) {
            return Err(FsError::corrupt(
                format!("NTFS directory {dir}"),
                f.inode.offset,
                format!("the entry for record {rec} has the name {name_s:?}"),
            ));
        }
        Ok(Some((
            DirEntry {
                name: name_s,
                ino: Ino(rec),
                kind: f.kind,
            },
            f,
        )))
    }

    pub(super) fn stream_entries(&self, base: &DirEntry, f: &Facts, out: &mut Vec<DirEntry>) {
        if !self.opts.streams || f.kind == FileKind::Symlink {
            return;
        }
        for (k, s) in f.inode.streams().iter().enumerate().take(0xFFFF) {
            out.push(DirEntry {
                name: format!("{}:{}", base.name, utf16_string(s)),
                ino: Ino(base.ino.0 | ((k as u64 + 1) << STREAM_SHIFT)),
                kind: FileKind::File,
            });
        }
    }

    pub(super) fn find(
        &self,
        dir: &Facts,
        name: &[u16],
    ) -> Result<Option<(DirEntry, Arc<Facts>)>, FsError> {
        let ix = self.index(dir)?;
        let fetch = |vcn| self.block(&ix, vcn);
        let damage = |d: String| {
            FsError::corrupt(
                format!("NTFS directory {} index", ix.record),
                dir.inode.offset,
                d,
            )
        };
        let shown = |e: &index::Entry| e.name.as_ref().is_some_and(|n| !n.is_dos_only());
        let exact = index::find(
            &ix.root,
            &fetch,
            &damage,
            &|k| self.upcase.collate(name, &k.name),
            &shown,
        )?;
        let found = match exact {
            Some(e) => Some(e),
            None => index::find(
                &ix.root,
                &fetch,
                &damage,
                &|k| self.upcase.cmp_ci(name, &k.name),
                &shown,
            )?,
        };
        match found {
            Some(e) => self.entry(ix.record, &e),
            None => Ok(None),
        }
    }
}
