//! FAT12, FAT16 and FAT32 volumes, read-only, behind [`Filesystem`].
//!
//! Sources: Microsoft FAT specification ("FAT: General Overview of On-Disk
//! Format", version 1.03, 2005) for the on-disk format; the Linux vfat
//! driver (`fs/fat/inode.c`, behaviour only) for permissions; The Sleuth Kit
//! (`fls -d`, behaviour only) for deleted files. The pieces, one concept
//! each: [`boot`] (BPB, geometry, FSInfo), [`table`] (FAT entries, chains,
//! the choice of FAT copy), [`dirent`] (8.3 entries and names), [`lfn`]
//! (VFAT long names), [`dir`] (directory parsing and its cache), [`inode`]
//! (inode numbers and synthesised metadata), [`codepage`] (OEM code pages
//! 437 and 850), [`time`] (DOS times).
//!
//! What this reader decides:
//!
//! - **Type** by cluster count alone (§3.5), never by the label string.
//! - **Inodes** are synthesised: the root is 1; any other entry is the byte
//!   offset in the volume of its 8.3 directory entry (stable for as long as
//!   the volume is not written, unique, never 1 since entries lie past the
//!   boot sector). A deleted entry listed by [`Filesystem::deleted`] has
//!   bit 62 set as well.
//! - **Names**: the long (VFAT) name where a valid one precedes the 8.3
//!   entry, else the 8.3 name decoded with the OEM code page
//!   ([`FsOptions::oem_codepage`], default 850 as mtools; 437 is what the
//!   Linux driver defaults to) and lower-cased where the Windows NT flags
//!   say so. `lookup` compares exactly first, then case-insensitively, then
//!   against the 8.3 names.
//! - **Times** are local time as stored, returned as if UTC: mtime (2 s),
//!   crtime (10 ms, absent when the creation date is 0), atime (the access
//!   date at midnight; the mtime when 0), ctime = mtime. The root has none
//!   and reads as 1970-01-01.
//! - **Permissions** as the Linux vfat driver shows them with its default
//!   options and a 022 umask: 0755, files with the read-only attribute 0555
//!   (the attribute is ignored on directories, as Linux does without
//!   `rodir`); uid and gid 0. Directories count `2 + subdirectories` links.
//! - **Directory sizes** are their cluster count times the cluster size (as
//!   Linux shows); at most 65536 entries (2 MiB), as the specification caps.
//! - **Damage**: a first FAT copy that is damaged (entry 0 without the media
//!   byte, entries outside the volume, a looping chain) while the second is
//!   sound is replaced by the second, with a warning in
//!   [`VolumeInfo::warnings`]. A chain that loops, leaves the volume, hits a
//!   free or bad entry, or ends before the file's size is covered is a
//!   named error; a chain longer than the size is read only as far as the
//!   size. The volume must hold all of its clusters (a truncated volume is
//!   refused at open).
//! - **Deleted files** (0xE5 entries of live directories) are listed with
//!   `_` for the lost first character and their data guessed contiguous
//!   from the first cluster, as The Sleuth Kit does.
//!
//! Everything answers through `&self`; the FAT and directories are read
//! through a bounded block cache, parsed directories are kept in a bounded
//! cache, and no lock is held while the volume is read. File data is served
//! as [`Runs`] straight from the volume.

pub mod boot;
pub mod codepage;
pub mod dir;
pub mod dirent;
pub mod inode;
pub mod lfn;
pub mod table;
pub mod time;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use self::boot::{FIRST_CLUSTER, FatType, FsInfo, Geometry};
use self::codepage::{CodePage, DEFAULT_CODEPAGE};
use self::dir::Dir;
use self::dirent::ShortEntry;
use self::table::{ClusterRun, Fat};
use super::{
    DeletedEntry, DirEntry, FileKind, Filesystem, FsError, FsKind, FsOptions, Ino, Metadata,
    VolumeInfo,
};
use crate::io::{BlockCache, MemSource, ReadAt, Run, Runs, Slice, Source};

/// The root directory's inode.
pub const ROOT: Ino = Ino(1);
/// Set in the inode of a deleted entry.
const DELETED_BIT: u64 = 1 << 62;
/// Most entries a directory may have (§6: 65536 32-byte entries).
const MAX_DIR_ENTRIES: u64 = 65_536;
/// Metadata cache: 4 KiB blocks, at most 8 MiB.
const CACHE_BLOCK: usize = 4096;
const CACHE_BLOCKS: usize = 2048;
/// Parsed directories kept: at most this many entries in all.
const DIR_CACHE_ENTRIES: usize = 128 * 1024;
/// Names remembered for error messages.
const NAME_CACHE: usize = 256 * 1024;

#[derive(Default)]
struct Caches {
    dirs: HashMap<Ino, Arc<Dir>>,
    dir_entries: usize,
    names: HashMap<u64, String>,
}

/// A FAT12/16/32 volume.
pub struct FatFs {
    geo: Geometry,
    /// The volume through a block cache (FAT and directories).
    meta: Source,
    /// The data region: cluster 2 at offset 0.
    data: Source,
    fat: Fat,
    fat_copy: u8,
    cp: CodePage,
    label: Option<String>,
    warnings: Vec<String>,
    fsinfo: Option<FsInfo>,
    caches: Mutex<Caches>,
}

fn kind_of(e: &ShortEntry) -> FileKind {
    if e.is_dir() {
        FileKind::Dir
    } else {
        FileKind::File
    }
}

impl FatFs {
    /// Opens the FAT volume `vol`.
    pub fn open(vol: Source, opts: &FsOptions) -> Result<FatFs, FsError> {
        let number = opts.oem_codepage.unwrap_or(DEFAULT_CODEPAGE);
        let cp = CodePage::from_number(number).ok_or_else(|| FsError::Unsupported {
            fs: "FAT",
            detail: format!("OEM code page {number} (437 and 850 are supported)"),
        })?;
        if vol.len() < 512 {
            return Err(FsError::corrupt(
                "FAT boot sector",
                0,
                format!("the volume is only {} bytes", vol.len()),
            ));
        }
        let mut head = [0u8; 512];
        vol.read_exact_at(0, &mut head)?;
        let geo = boot::parse(&head)?;
        if vol.len() < geo.data_end() {
            return Err(FsError::corrupt(
                "FAT volume",
                vol.len(),
                format!(
                    "the volume is {:#x} bytes but its clusters reach {:#x}: it is truncated",
                    vol.len(),
                    geo.data_end()
                ),
            ));
        }
        let fsinfo = match geo.fsinfo_sector {
            Some(s) => {
                let mut b = vec![0u8; geo.sector_size as usize];
                let at = u64::from(s) * u64::from(geo.sector_size);
                match vol.read_exact_at(at, &mut b) {
                    Ok(()) => boot::parse_fsinfo(&b),
                    Err(_) => None,
                }
            }
            None => None,
        };
        let (fat_copy, warnings) = table::choose_copy(&*vol, &geo)?;
        let meta: Source = Arc::new(BlockCache::new(vol.clone(), CACHE_BLOCK, CACHE_BLOCKS));
        let data_len = geo.data_end() - geo.data_offset;
        let data: Source = Arc::new(Slice::new(vol.clone(), geo.data_offset, data_len)?);
        let fat = Fat::new(meta.clone(), &geo, fat_copy);
        let mut fs = FatFs {
            geo,
            meta,
            data,
            fat,
            fat_copy,
            cp,
            label: None,
            warnings,
            fsinfo,
            caches: Mutex::new(Caches::default()),
        };
        let root = fs.dir(ROOT)?;
        let label_bytes = root.label.or(fs.geo.label.filter(|l| l != b"NO NAME    "));
        fs.label = label_bytes
            .map(|l| dirent::label(&l, cp))
            .filter(|l| !l.is_empty());
        Ok(fs)
    }

    fn fat32(&self) -> bool {
        self.geo.fat_type == FatType::Fat32
    }

    fn runs_source(&self, runs: &[ClusterRun], size: u64) -> Result<Source, FsError> {
        let runs: Vec<Run> = runs
            .iter()
            .map(|r| Run {
                blocks: u64::from(r.len),
                at: Some(u64::from(r.start - FIRST_CLUSTER)),
            })
            .collect();
        Ok(Arc::new(Runs::new(
            self.data.clone(),
            u64::from(self.geo.cluster_size),
            &runs,
            size,
            size,
        )?))
    }
}

impl Filesystem for FatFs {
    fn info(&self) -> VolumeInfo {
        VolumeInfo {
            kind: match self.geo.fat_type {
                FatType::Fat12 => FsKind::Fat12,
                FatType::Fat16 => FsKind::Fat16,
                FatType::Fat32 => FsKind::Fat32,
            },
            label: self.label.clone(),
            block_size: self.geo.cluster_size,
            size: self.geo.total_bytes,
            serial: self
                .geo
                .serial
                .map(|s| format!("{:04X}-{:04X}", s >> 16, s & 0xFFFF)),
            warnings: self.warnings.clone(),
        }
    }

    fn root(&self) -> Ino {
        ROOT
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, FsError> {
        if ino == ROOT {
            return self.dir_meta(ROOT, None);
        }
        let (e, deleted) = self.entry(ino)?;
        if e.is_dir() && !deleted {
            self.dir_meta(ino, Some(&e))
        } else if e.is_dir() {
            Ok(self.meta_of(ino, &e, 0, 1))
        } else {
            Ok(self.meta_of(ino, &e, u64::from(e.size), 1))
        }
    }

    fn read_dir(&self, dir: Ino) -> Result<Vec<DirEntry>, FsError> {
        Ok(self
            .dir(dir)?
            .live
            .iter()
            .map(|l| DirEntry {
                name: l.name.clone(),
                ino: Ino(l.offset),
                kind: kind_of(&l.entry),
            })
            .collect())
    }

    fn lookup(&self, dir: Ino, name: &str) -> Result<Option<DirEntry>, FsError> {
        let d = self.dir(dir)?;
        let fold = name.to_lowercase();
        let found = d
            .by_name
            .get(name)
            .or_else(|| d.by_fold.get(&fold))
            .or_else(|| d.by_short.get(&fold));
        Ok(found.and_then(|&i| d.live.get(i)).map(|l| DirEntry {
            name: l.name.clone(),
            ino: Ino(l.offset),
            kind: kind_of(&l.entry),
        }))
    }

    fn read_link(&self, ino: Ino) -> Result<String, FsError> {
        let actual = self.metadata(ino)?.kind;
        Err(FsError::WrongKind {
            ino,
            actual,
            wanted: "symlink",
        })
    }

    fn open(&self, ino: Ino) -> Result<Source, FsError> {
        if ino == ROOT {
            return Err(FsError::WrongKind {
                ino,
                actual: FileKind::Dir,
                wanted: "file",
            });
        }
        let (e, deleted) = self.entry(ino)?;
        if e.is_dir() {
            return Err(FsError::WrongKind {
                ino,
                actual: FileKind::Dir,
                wanted: "file",
            });
        }
        let size = u64::from(e.size);
        if size == 0 {
            return Ok(Arc::new(MemSource::new(Vec::new())));
        }
        let cs = u64::from(self.geo.cluster_size);
        let need = size.div_ceil(cs);
        let first = e.first_cluster(self.fat32());
        if deleted {
            // The Sleuth Kit's guess: the clusters follow each other.
            let last = u64::from(first) + need - 1;
            if first < FIRST_CLUSTER || last > u64::from(self.geo.max_cluster()) {
                return Err(FsError::corrupt(
                    self.describe(ino, &e, true),
                    ino.0 & !DELETED_BIT,
                    format!(
                        "its data, guessed at clusters {first}..={last}, does not lie inside the volume's clusters 2..={}",
                        self.geo.max_cluster()
                    ),
                ));
            }
            let run = ClusterRun {
                start: first,
                len: need as u32,
            };
            return self.runs_source(&[run], size);
        }
        let runs = self
            .fat
            .chain(first, need, true, &self.describe(ino, &e, false))?;
        self.runs_source(&runs, size)
    }

    fn deleted(&self) -> Result<Vec<DeletedEntry>, FsError> {
        let mut out = Vec::new();
        let mut seen = HashSet::from([ROOT]);
        let mut stack = vec![(String::new(), ROOT)];
        while let Some((prefix, dir)) = stack.pop() {
            let d = self.dir(dir)?;
            let join = |name: &str| {
                if prefix.is_empty() {
                    name.to_string()
                } else {
                    format!("{prefix}/{name}")
                }
            };
            for l in &d.deleted {
                let ino = Ino(l.offset | DELETED_BIT);
                let size = if l.entry.is_dir() {
                    0
                } else {
                    u64::from(l.entry.size)
                };
                out.push(DeletedEntry {
                    path: join(&l.name),
                    ino,
                    meta: self.meta_of(ino, &l.entry, size, 1),
                });
            }
            for l in d.live.iter().filter(|l| l.entry.is_dir()) {
                if seen.insert(Ino(l.offset)) {
                    stack.push((join(&l.name), Ino(l.offset)));
                }
            }
        }
        Ok(out)
    }

    fn unused(&self, f: &mut dyn FnMut(std::ops::Range<u64>)) -> Result<(), FsError> {
        let g = &self.geo;
        let size = u64::from(g.cluster_size);
        self.fat.free_runs(&mut |start, len| {
            let at = g.cluster_offset(start);
            f(at..at + u64::from(len) * size);
        })
    }

    fn details(&self, ino: Ino) -> Result<Vec<(String, String)>, FsError> {
        let kv = |k: &str, v: String| (k.to_string(), v);
        if ino == ROOT {
            let g = &self.geo;
            let mut v = vec![
                kv("FAT type", format!("{:?}", g.fat_type)),
                kv("OEM name", self.cp_string(&g.oem_name)),
                kv("clusters", g.cluster_count.to_string()),
                kv("cluster size", g.cluster_size.to_string()),
                kv(
                    "FAT copy read",
                    format!("{} of {}", self.fat_copy + 1, g.num_fats),
                ),
                kv("code page", format!("{:?}", self.cp)),
            ];
            if let Some(i) = self.fsinfo {
                let show = |x: Option<u32>| x.map_or("unknown".to_string(), |n| n.to_string());
                v.push(kv("FSInfo free clusters", show(i.free)));
                v.push(kv("FSInfo next free cluster", show(i.next_free)));
            }
            return Ok(v);
        }
        let (e, deleted) = self.entry(ino)?;
        let mut v = vec![
            kv("attributes", e.attr_letters()),
            kv(
                "short name",
                dirent::short_name(&e.name, 0, self.cp, deleted),
            ),
            kv("first cluster", e.first_cluster(self.fat32()).to_string()),
            kv("entry offset", format!("{:#x}", ino.0 & !DELETED_BIT)),
        ];
        if deleted {
            v.push(kv(
                "deleted",
                "yes; data guessed contiguous from the first cluster".to_string(),
            ));
        } else if !e.is_dir() && e.size > 0 {
            let need = u64::from(e.size).div_ceil(u64::from(self.geo.cluster_size));
            let what = self.describe(ino, &e, false);
            // A damaged chain is a fact to list, not a reason to list nothing.
            let fragments = match self
                .fat
                .chain(e.first_cluster(self.fat32()), need, true, &what)
            {
                Ok(runs) => runs.len().to_string(),
                Err(err) => format!("unknown ({err})"),
            };
            v.push(kv("fragments", fragments));
        }
        Ok(v)
    }
}

impl FatFs {
    fn cp_string(&self, b: &[u8]) -> String {
        b.iter()
            .map(|&c| self.cp.decode(c))
            .collect::<String>()
            .trim_end()
            .to_string()
    }
}
