//! NTFS, read-only, written for this crate (the `ntfs` crate returns
//! compressed files as their raw clusters and a file whose $DATA spans
//! several records as 0 bytes, both silently; see `shared/research`).
//!
//! What is read: the boot sector ([`boot`]); $MFT, bootstrapped from record
//! 0 and its own $ATTRIBUTE_LIST ([`mft`]); records with their update
//! sequence checked ([`record`]); resident and non-resident attributes
//! ([`attr`]) with their data runs ([`runlist`]), spread over extension
//! records by $ATTRIBUTE_LIST ([`attrlist`]); directory B-trees
//! ($INDEX_ROOT, $INDEX_ALLOCATION, [`index`]) compared through the
//! volume's $UpCase ([`upcase`]); sparse, compressed (LZNT1, [`lznt1`])
//! and partly initialized data ([`data`]); reparse points and Interix
//! symlinks ([`reparse`]); forensic details ([`details`]).
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
mod index;
mod le;
mod lznt1;
mod mft;
mod record;
mod reparse;
mod runlist;
mod upcase;

use std::sync::Arc;

use self::attr::{
    AT_DATA, AT_INDEX_ALLOCATION, AT_INDEX_ROOT, AT_REPARSE_POINT, AT_VOLUME_NAME, file_attr,
};
use self::cache::Lru;
use self::data::Value;
use self::index::Node;
use self::le::{mref_record, mref_seq, utf16_string};
use self::mft::{Inode, Mft};
use self::record::{Record, apply_fixups};
use self::reparse::Reparse;
use self::upcase::UpCase;
use super::{
    DeletedEntry, DirEntry, FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, Metadata,
    Timestamp, VolumeInfo,
};
use crate::io::{ReadAt, Source};

/// The root directory's record.
const ROOT: u64 = 5;
/// The first record that is not a system file.
const FIRST_USER: u64 = 16;
/// Record of $Volume and $UpCase.
const VOLUME: u64 = 3;
const UPCASE: u64 = 10;
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

/// What a file is, worked out once.
struct Facts {
    inode: Arc<Inode>,
    kind: FileKind,
    target: Option<String>,
    reparse: Option<Reparse>,
    attributes: u32,
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

    /// The facts of record `n` (in use or not).
    fn facts(&self, n: u64) -> Result<Arc<Facts>, FsError> {
        if let Some(f) = self.facts.get(n) {
            return Ok(f);
        }
        let inode = self.mft.inode(n)?;
        let f = Arc::new(self.work_out(inode)?);
        self.facts.insert(n, f.clone());
        Ok(f)
    }

    fn work_out(&self, inode: Arc<Inode>) -> Result<Facts, FsError> {
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

    fn small(&self, inode: &Inode, v: &Value, what: &str) -> Result<Vec<u8>, FsError> {
        let name = format!("{} {what}", Record::name(inode.record));
        let damage = |d: String| FsError::corrupt(name.clone(), inode.offset, d);
        mft::read_small(&self.mft.vol, self.mft.cluster, v, &name, &damage)
    }

    /// The facts of an in-use directory `dir`.
    fn dir_facts(&self, dir: Ino) -> Result<Arc<Facts>, FsError> {
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
    fn index(&self, f: &Facts) -> Result<DirIndex, FsError> {
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

    fn block(&self, ix: &DirIndex, vcn: u64) -> Result<Arc<Node>, FsError> {
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
    fn entry(&self, dir: u64, e: &index::Entry) -> Result<Option<(DirEntry, Arc<Facts>)>, FsError> {
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

    fn stream_entries(&self, base: &DirEntry, f: &Facts, out: &mut Vec<DirEntry>) {
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

    fn find(&self, dir: &Facts, name: &[u16]) -> Result<Option<(DirEntry, Arc<Facts>)>, FsError> {
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

    fn meta(&self, ino: Ino, f: &Facts, size: u64, kind: FileKind, nlink: u32) -> Metadata {
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

    fn metadata_of(&self, ino: Ino, f: &Facts) -> Result<Metadata, FsError> {
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
    fn path_of(&self, f: &Facts) -> String {
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

/// A directory's B-tree.
struct DirIndex {
    record: u64,
    root: Node,
    /// The $INDEX_ALLOCATION's bytes and runs.
    alloc: Option<(Source, Vec<runlist::DataRun>)>,
    block_size: u32,
    unit: u64,
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
