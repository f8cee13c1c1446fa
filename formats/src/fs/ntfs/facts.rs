//! What a file is, worked out once per MFT record and cached: its kind
//! (directory, file, or symlink from a reparse point or an ntfs-3g
//! Interix file), its symlink target, reparse point and DOS attributes;
//! and from these its POSIX metadata and, for deleted files, the best
//! known path.
//!
//! Sources: the $STANDARD_INFORMATION and $FILE_NAME layouts in
//! [`super::attr`], reparse points in [`super::reparse`]; the mode, link
//! count and kind rules follow what ntfs-3g shows (see the module doc of
//! [`super`]).

use std::sync::Arc;

use super::attr::{self, AT_DATA, AT_INDEX_ALLOCATION, AT_REPARSE_POINT, file_attr};
use super::data::Value;
use super::le::{mref_seq, utf16_string};
use super::mft::{self, Inode};
use super::record::Record;
use super::reparse::{self, Reparse};
use super::{I30, MAX_PATH_DEPTH, NtfsFs, ROOT, split};
use crate::fs::{FileKind, FsError, Ino, Metadata, Timestamp};

/// What a file is, worked out once.
pub(super) struct Facts {
    pub(super) inode: Arc<Inode>,
    pub(super) kind: FileKind,
    pub(super) target: Option<String>,
    pub(super) reparse: Option<Reparse>,
    pub(super) attributes: u32,
}

impl NtfsFs {
    /// The facts of record `n` (in use or not).
    pub(super) fn facts(&self, n: u64) -> Result<Arc<Facts>, FsError> {
        if let Some(f) = self.facts.get(n) {
            return Ok(f);
        }
        let inode = self.mft.inode(n)?;
        let f = Arc::new(self.work_out(inode)?);
        self.facts.insert(n, f.clone());
        Ok(f)
    }

    pub(super) fn work_out(&self, inode: Arc<Inode>) -> Result<Facts, FsError> {
        let attributes = inode.si.map_or(0, |s| s.attributes);
        let reparse = match inode.value(&self.mft, AT_REPARSE_POINT, &[])? {
            Some(v) => Some(reparse::parse(&self.small(&inode, &v, "$REPARSE_POINT")?)),
            None => None,
        };
        let mut target = None;
        let kind = match &reparse {
            Some(Reparse::Link { target: t, .. }) => {
                target = Some(t.clone());
                FileKind::Symlink
            }
            _ if inode.is_dir => FileKind::Dir,
            _ if attributes & file_attr::SYSTEM != 0 => {
                // ntfs-3g's Interix symlink: a small plain system file.
                match inode.value(&self.mft, AT_DATA, &[])? {
                    Some(v)
                        if (9..=reparse::INTX_MAX).contains(&v.size())
                            && v.flags() & attr::FLAG_ENCRYPTED == 0 =>
                    {
                        target = reparse::interix_target(&self.small(&inode, &v, "$DATA")?);
                        if target.is_some() {
                            FileKind::Symlink
                        } else {
                            FileKind::File
                        }
                    }
                    _ => FileKind::File,
                }
            }
            _ => FileKind::File,
        };
        Ok(Facts {
            inode,
            kind,
            target,
            reparse,
            attributes,
        })
    }

    pub(super) fn small(&self, inode: &Inode, v: &Value, what: &str) -> Result<Vec<u8>, FsError> {
        let name = format!("{} {what}", Record::name(inode.record));
        let damage = |d: String| FsError::corrupt(name.clone(), inode.offset, d);
        mft::read_small(&self.mft.vol, self.mft.cluster, v, &name, &damage)
    }

    pub(super) fn meta(
        &self,
        ino: Ino,
        f: &Facts,
        size: u64,
        kind: FileKind,
        nlink: u32,
    ) -> Metadata {
        let (crt, mt, ct, at) = match (f.inode.si, f.inode.names.first()) {
            (Some(s), _) => (s.created, s.modified, s.mft_changed, s.accessed),
            (None, Some(n)) => (n.created, n.modified, n.mft_changed, n.accessed),
            (None, None) => (0, 0, 0, 0),
        };
        let ro = f.attributes & file_attr::READONLY != 0;
        let perm = match kind {
            FileKind::Dir if ro => 0o555,
            FileKind::Dir => 0o755,
            FileKind::Symlink => 0o777,
            _ if ro => 0o444,
            _ => 0o644,
        };
        let t = |ft: u64| {
            if ft == 0 {
                Timestamp::EPOCH
            } else {
                attr::time(ft)
            }
        };
        Metadata {
            ino,
            kind,
            size,
            perm,
            uid: 0,
            gid: 0,
            nlink,
            rdev: 0,
            mtime: t(mt),
            atime: t(at),
            ctime: t(ct),
            crtime: Some(t(crt)),
        }
    }

    pub(super) fn metadata_of(&self, ino: Ino, f: &Facts) -> Result<Metadata, FsError> {
        let (_, k) = split(ino);
        if k > 0 {
            let streams = f.inode.streams();
            let Some(name) = streams.get(k - 1).filter(|_| f.kind != FileKind::Symlink) else {
                return Err(FsError::NoInode(ino));
            };
            let size = f
                .inode
                .value(&self.mft, AT_DATA, name)?
                .map_or(0, |v| v.size());
            return Ok(self.meta(ino, f, size, FileKind::File, 1));
        }
        let size = match f.kind {
            FileKind::Symlink => f.target.as_ref().map_or(0, |t| t.len() as u64),
            FileKind::Dir => f
                .inode
                .value(&self.mft, AT_INDEX_ALLOCATION, &I30)?
                .map_or(0, |v| v.size()),
            _ => f
                .inode
                .value(&self.mft, AT_DATA, &[])?
                .map_or(0, |v| v.size()),
        };
        let names = f.inode.names.iter().filter(|n| !n.is_dos_only()).count();
        let nlink = u32::try_from(names).unwrap_or(u32::MAX).max(1);
        Ok(self.meta(ino, f, size, f.kind, nlink))
    }

    /// The best known path of record `n` from its first shown name.
    pub(super) fn path_of(&self, f: &Facts) -> String {
        let mut parts = Vec::new();
        let mut cur = f.inode.clone();
        for _ in 0..MAX_PATH_DEPTH {
            let Some(name) = cur
                .names
                .iter()
                .find(|n| !n.is_dos_only())
                .or(cur.names.first())
            else {
                parts.push("$OrphanFiles".to_string());
                break;
            };
            parts.push(utf16_string(&name.name));
            let parent = name.parent_record();
            if parent == ROOT {
                break;
            }
            match self.mft.inode(parent) {
                Ok(p)
                    if p.is_dir
                        && (mref_seq(name.parent) == 0 || mref_seq(name.parent) == p.seq)
                        && p.record != cur.record =>
                {
                    cur = p
                }
                _ => {
                    parts.push("$OrphanFiles".to_string());
                    break;
                }
            }
        }
        parts.reverse();
        parts.join("/")
    }
}
