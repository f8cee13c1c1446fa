//! NTFS, read-only, written for this crate (the `ntfs` crate returns
//! compressed files as their raw clusters and a file whose $DATA spans
//! several records as 0 bytes, both silently; see `shared/research`).
//!
//! What is read: the boot sector (`boot.rs`); $MFT, bootstrapped from record
//! 0 and its own $ATTRIBUTE_LIST (`mft.rs`); records with their update
//! sequence checked (`record.rs`); resident and non-resident attributes
//! (`attr.rs`) with their data runs (`runlist.rs`), spread over extension
//! records by $ATTRIBUTE_LIST (`attrlist.rs`); directory B-trees
//! ($INDEX_ROOT, $INDEX_ALLOCATION, `index.rs`) compared through the
//! volume's $UpCase (`upcase.rs`); sparse, compressed (LZNT1, `lznt1.rs`)
//! and partly initialized data (`data.rs`); reparse points and Interix
//! symlinks (`reparse.rs`); forensic details (`details.rs`). What a file
//! is and its metadata are worked out once per record (`facts.rs`);
//! listings and lookups go through `dir.rs`.
//!
//! How the tree is shown (as `ls` shows an ntfs-3g `-o ro` mount, except
//! where noted):
//! - Inodes are MFT record numbers; the root is record 5. Records 0–15
//!   (the system files: $MFT, $Bitmap, $Extend, …) are neither listed
//!   nor found by `lookup` (ntfs-3g lets a path name them); other names
//!   starting with `$` (e.g. `$RECYCLE.BIN`) are listed.
//! - A file under several names (hard links) has one inode; `nlink`
//!   counts its names, a Win32 name and its DOS 8.3 alias once. DOS-only
//!   names are hidden, as ntfs-3g hides them.
//! - Lookups compare through $UpCase, an exact match first (POSIX names
//!   may differ only in case); names are UTF-16 decoded, an unpaired
//!   surrogate shown as U+FFFD.
//! - With [`FsOptions::streams`], each alternate data stream is listed
//!   after its file as `file:stream`, inode `record | k << 48` (k counts
//!   the file's named streams from 1), a regular file of the stream's
//!   bytes. ntfs-3g shows them only as `user.*` xattrs.
//! - Symlinks: IO_REPARSE_TAG_SYMLINK and MOUNT_POINT (junctions) and WSL
//!   LX_SYMLINK reparse points, with the target in `/` form: a relative
//!   symlink as stored (`..\a` → `../a`), an absolute one or a junction
//!   without its NT prefix (`\??\C:\dir` → `C:/dir`; ntfs-3g shows
//!   `<mountpoint>/.NTFS-3G/C:/dir`); ntfs-3g's Interix symlinks (a
//!   system file starting `IntxLNK\1`). Other reparse tags leave the entry
//!   a file or directory, the tag shown by `details`; a file whose data
//!   lives elsewhere (WOF-compressed, deduplicated, cloud placeholder)
//!   refuses `open` as unsupported rather than return the stub's bytes.
//! - Metadata: mtime, atime, ctime (MFT change) and crtime from
//!   $STANDARD_INFORMATION; the $FILE_NAME times through `details`. Mode
//!   0o755 for directories and 0o644 for files, without the write bits when
//!   the read-only attribute is set, 0o777 for symlinks (ntfs-3g without
//!   `permissions` or uid mapping shows 0o777 for everything); uid and gid
//!   0. A directory's size is its $INDEX_ALLOCATION's (0 when it has none).
//! - Data: holes and bytes past the initialized size (valid data length)
//!   read as zeros; compressed files decompressed; an EFS-encrypted file is
//!   listed but `open` gives [`FsError::Encrypted`].
//! - `deleted()` lists base records not in use that still parse, with the
//!   path from their $FILE_NAME's parent chain (`$OrphanFiles/name` when a
//!   parent is gone or reused).
//!
//! Damage is [`FsError::Corrupt`] naming the record or index block and its
//! byte offset; everything read from the volume is bounds-checked, loops in
//! attribute lists, index trees and parent chains are cut, and nothing is
//! allocated by a size field beyond what the volume can hold.

mod attr;
mod attrlist;
mod boot;
mod cache;
mod data;
mod details;
mod dir;
mod facts;
mod index;
mod le;
mod lznt1;
mod mft;
mod record;
mod reparse;
mod runlist;
mod upcase;

use std::sync::Arc;

use self::attr::{AT_DATA, AT_VOLUME_NAME, file_attr};
use self::cache::Lru;
use self::data::Value;
use self::facts::Facts;
use self::index::Node;
use self::le::utf16_string;
use self::mft::Mft;
use self::record::Record;
use self::reparse::Reparse;
use self::upcase::UpCase;
use super::{
    DeletedEntry, DirEntry, FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, Metadata,
    VolumeInfo,
};
use crate::io::{ReadAt, Source};

/// The root directory's record.
const ROOT: u64 = 5;
/// The first record that is not a system file.
const FIRST_USER: u64 = 16;
/// Record of $Volume and $UpCase.
const VOLUME: u64 = 3;
const UPCASE: u64 = 10;
/// MFT record of $Bitmap, the cluster allocation bitmap.
const BITMAP: u64 = 6;
/// Where the stream index sits in an inode number.
const STREAM_SHIFT: u32 = 48;
/// Index blocks kept.
const BLOCK_CACHE: usize = 1024;
/// File facts kept.
const FACTS_CACHE: usize = 4096;
/// Parent chains longer than this are cut (deleted-file paths).
const MAX_PATH_DEPTH: usize = 256;

/// The index `$I30` name.
const I30: [u16; 4] = [b'$' as u16, b'I' as u16, b'3' as u16, b'0' as u16];

/// An NTFS volume.
pub struct NtfsFs {
    mft: Mft,
    upcase: UpCase,
    label: Option<String>,
    opts: FsOptions,
    warnings: Vec<String>,
    blocks: Lru<(u64, u64), Arc<Node>>,
    facts: Lru<u64, Arc<Facts>>,
}

fn split(ino: Ino) -> (u64, usize) {
    (
        ino.0 & ((1 << STREAM_SHIFT) - 1),
        (ino.0 >> STREAM_SHIFT) as usize,
    )
}

fn wrong(ino: Ino, actual: FileKind, wanted: &'static str) -> FsError {
    FsError::WrongKind {
        ino,
        actual,
        wanted,
    }
}

impl NtfsFs {
    /// Opens the NTFS volume `vol`.
    pub fn open(vol: Source, opts: &FsOptions) -> Result<NtfsFs, FsError> {
        let (mft, warning) = Mft::open(vol.clone())?;
        let mut warnings: Vec<String> = warning.into_iter().collect();
        if vol.len() < mft.boot.volume_size {
            warnings.push(format!(
                "the volume is {} bytes, its boot sector says {}: data past the end cannot be read",
                vol.len(),
                mft.boot.volume_size
            ));
        }
        let mut fs = NtfsFs {
            mft,
            upcase: UpCase::fallback(),
            label: None,
            opts: opts.clone(),
            warnings,
            blocks: Lru::new(BLOCK_CACHE),
            facts: Lru::new(FACTS_CACHE),
        };
        match fs.read_upcase() {
            Ok(u) => fs.upcase = u,
            Err(e) => fs.warnings.push(format!(
                "$UpCase cannot be read ({e}); names are compared with Unicode's simple upper case"
            )),
        }
        fs.label = fs
            .mft
            .inode(VOLUME)
            .ok()
            .and_then(|i| i.value(&fs.mft, AT_VOLUME_NAME, &[]).ok().flatten())
            .and_then(|v| match v {
                Value::Resident { bytes, .. } if !bytes.is_empty() => {
                    Some(utf16_string(&le::utf16_units(&bytes)))
                }
                _ => None,
            });
        let root = fs.facts(ROOT)?;
        if root.kind != FileKind::Dir || !root.inode.in_use {
            return Err(FsError::corrupt(
                Record::name(ROOT),
                root.inode.offset,
                "the root directory is not an in-use directory",
            ));
        }
        Ok(fs)
    }

    fn read_upcase(&self) -> Result<UpCase, FsError> {
        let inode = self.mft.inode(UPCASE)?;
        let v = inode
            .value(&self.mft, AT_DATA, &[])?
            .ok_or_else(|| FsError::corrupt(Record::name(UPCASE), inode.offset, "no $DATA"))?;
        let damage = |d: String| FsError::corrupt("NTFS $UpCase", inode.offset, d);
        let b = mft::read_small(&self.mft.vol, self.mft.cluster, &v, "NTFS $UpCase", &damage)?;
        let table = UpCase::from_bytes(&b);
        if !table.plausible() {
            return Err(damage(
                "the table does not map ASCII letters to upper case".into(),
            ));
        }
        Ok(table)
    }
}
impl Filesystem for NtfsFs {
    fn info(&self) -> VolumeInfo {
        VolumeInfo {
            kind: FsKind::Ntfs,
            label: self.label.clone(),
            block_size: self.mft.boot.cluster_size,
            size: self.mft.boot.volume_size,
            serial: Some(format!("{:016X}", self.mft.boot.serial)),
            warnings: self.warnings.clone(),
        }
    }

    fn root(&self) -> Ino {
        Ino(ROOT)
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, FsError> {
        let (rec, _) = split(ino);
        let f = self.facts(rec)?;
        if !f.inode.in_use {
            return Err(FsError::NoInode(ino));
        }
        self.metadata_of(ino, &f)
    }

    fn read_dir(&self, dir: Ino) -> Result<Vec<DirEntry>, FsError> {
        let f = self.dir_facts(dir)?;
        let ix = self.index(&f)?;
        let fetch = |vcn| self.block(&ix, vcn);
        let damage = |d: String| {
            FsError::corrupt(
                format!("NTFS directory {} index", ix.record),
                f.inode.offset,
                d,
            )
        };
        let mut out = Vec::new();
        index::walk(&ix.root, &fetch, &damage, &mut |e| {
            if let Some((d, cf)) = self.entry(ix.record, e)? {
                let mut streams = Vec::new();
                self.stream_entries(&d, &cf, &mut streams);
                out.push(d);
                out.extend(streams);
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Option<DirEntry>, FsError> {
        let f = self.dir_facts(dir)?;
        let units: Vec<u16> = name.encode_utf16().collect();
        if units.is_empty() || units.len() > 255 {
            return Ok(None);
        }
        if let Some((d, _)) = self.find(&f, &units)? {
            return Ok(Some(d));
        }
        let Some((file, stream)) = name.rsplit_once(':').filter(|_| self.opts.streams) else {
            return Ok(None);
        };
        let file_units: Vec<u16> = file.encode_utf16().collect();
        if file_units.is_empty() {
            return Ok(None);
        }
        let Some((d, cf)) = self.find(&f, &file_units)? else {
            return Ok(None);
        };
        let mut streams = Vec::new();
        self.stream_entries(&d, &cf, &mut streams);
        let want = format!("{}:{stream}", d.name);
        let exact = streams.iter().position(|s| s.name == want);
        let found = exact.or_else(|| {
            let w: Vec<u16> = want.encode_utf16().collect();
            streams.iter().position(|s| {
                let u: Vec<u16> = s.name.encode_utf16().collect();
                self.upcase.cmp_ci(&w, &u).is_eq()
            })
        });
        Ok(found.map(|i| streams.swap_remove(i)))
    }

    fn read_link(&self, ino: Ino) -> Result<String, FsError> {
        let (rec, k) = split(ino);
        let f = self.facts(rec)?;
        if !f.inode.in_use {
            return Err(FsError::NoInode(ino));
        }
        match (&f.target, k) {
            (Some(t), 0) => Ok(t.clone()),
            _ => Err(wrong(ino, self.metadata_of(ino, &f)?.kind, "symlink")),
        }
    }

    fn unused(&self, f: &mut dyn FnMut(std::ops::Range<u64>)) -> Result<(), FsError> {
        // $Bitmap: bit n set = cluster n in use. Only the clusters the
        // volume holds count (the bitmap is padded with set bits).
        let bitmap = self.open(Ino(BITMAP))?;
        let cs = u64::from(self.mft.boot.cluster_size);
        let clusters = self.mft.boot.volume_size / cs;
        let mut run: Option<std::ops::Range<u64>> = None;
        let mut buf = vec![0u8; 1 << 16];
        let mut lcn = 0u64;
        while lcn < clusters {
            let want = ((clusters - lcn).div_ceil(8) as usize).min(buf.len());
            bitmap.read_exact_at(lcn / 8, &mut buf[..want])?;
            for (i, &byte) in buf[..want].iter().enumerate() {
                for bit in 0..8 {
                    let c = lcn + i as u64 * 8 + bit;
                    if c >= clusters {
                        break;
                    }
                    let at = c * cs;
                    run = match (run.take(), byte & (1 << bit) == 0) {
                        (Some(r), true) => Some(r.start..at + cs),
                        (None, true) => Some(at..at + cs),
                        (Some(r), false) => {
                            f(r);
                            None
                        }
                        (None, false) => None,
                    };
                }
            }
            lcn += want as u64 * 8;
        }
        if let Some(r) = run {
            f(r);
        }
        Ok(())
    }

    fn open(&self, ino: Ino) -> Result<Source, FsError> {
        let (rec, k) = split(ino);
        let f = self.facts(rec)?;
        let name = if k == 0 {
            if f.kind != FileKind::File {
                return Err(wrong(ino, f.kind, "file"));
            }
            Vec::new()
        } else {
            let streams = f.inode.streams();
            match streams.get(k - 1) {
                Some(s) if f.kind != FileKind::Symlink => s.clone(),
                _ => return Err(FsError::NoInode(ino)),
            }
        };
        let what = format!("MFT record {rec}");
        let value = f.inode.value(&self.mft, AT_DATA, &name)?.ok_or_else(|| {
            FsError::corrupt(Record::name(rec), f.inode.offset, "a file without $DATA")
        })?;
        if f.attributes & file_attr::ENCRYPTED != 0 || value.flags() & attr::FLAG_ENCRYPTED != 0 {
            return Err(FsError::Encrypted { what });
        }
        if let Some(r) = &f.reparse {
            if k == 0 && reparse::data_elsewhere(r.tag()) {
                return Err(FsError::Unsupported {
                    fs: "NTFS",
                    detail: format!(
                        "{what}: its data is held by reparse point {:#010x} ({})",
                        r.tag(),
                        reparse::tag_name(r.tag())
                    ),
                });
            }
        }
        let structure = format!("{} $DATA {:?}", Record::name(rec), utf16_string(&name));
        let damage = |d: String| FsError::corrupt(structure.clone(), f.inode.offset, d);
        data::source(&self.mft.vol, self.mft.cluster, &value, &structure, &damage)
    }

    fn deleted(&self) -> Result<Vec<DeletedEntry>, FsError> {
        let mut out = Vec::new();
        for n in FIRST_USER..self.mft.records {
            // Unused records are often blank or half-written: skip what
            // does not parse.
            let Ok(rec) = self.mft.read_uncached(n) else {
                continue;
            };
            if rec.in_use() || rec.base_ref != 0 {
                continue;
            }
            let Ok(inode) = self.mft.gather(&rec) else {
                continue;
            };
            if inode.names.is_empty() {
                continue;
            }
            let Ok(f) = self.work_out(Arc::new(inode)) else {
                continue;
            };
            let Ok(meta) = self.metadata_of(Ino(n), &f) else {
                continue;
            };
            out.push(DeletedEntry {
                path: self.path_of(&f),
                ino: Ino(n),
                meta,
            });
        }
        Ok(out)
    }

    fn details(&self, ino: Ino) -> Result<Vec<(String, String)>, FsError> {
        let (rec, k) = split(ino);
        let f = self.facts(rec)?;
        let stream = if k == 0 {
            Vec::new()
        } else {
            f.inode
                .streams()
                .get(k - 1)
                .cloned()
                .ok_or(FsError::NoInode(ino))?
        };
        let data = f
            .inode
            .value(&self.mft, AT_DATA, &stream)
            .ok()
            .flatten()
            .map(|v| {
                let n = if stream.is_empty() {
                    "data".to_string()
                } else {
                    format!("stream:{}", utf16_string(&stream))
                };
                (n, v)
            });
        Ok(details::pairs(&details::Facts {
            record: rec,
            seq: f.inode.seq,
            in_use: f.inode.in_use,
            link_count: f.inode.link_count,
            si: f.inode.si,
            names: &f.inode.names,
            reparse_tag: f.reparse.as_ref().map(Reparse::tag),
            data,
            streams: f.inode.streams().iter().map(|s| utf16_string(s)).collect(),
        }))
    }
}
