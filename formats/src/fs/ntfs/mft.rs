//! The Master File Table: bootstrapping $MFT's own data runs from record 0
//! (following its $ATTRIBUTE_LIST when $MFT is fragmented enough to need
//! one), reading records by number through a bounded cache, and gathering
//! a file's attributes from its base record and the extension records its
//! $ATTRIBUTE_LIST names.
//!
//! Sources: "NTFS Documentation" (Russon, Fledel), "Files: $MFT" and
//! "Attributes: $ATTRIBUTE_LIST"; the Linux kernel's
//! `Documentation/filesystems/ntfs3.rst` and `fs/ntfs3/super.c` (how $MFT
//! is loaded: its first extent from record 0, the others from the
//! extension records it lists, each reachable through the extents before
//! it).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::attr::{
    AT_ATTRIBUTE_LIST, AT_DATA, AT_FILE_NAME, AT_STANDARD_INFORMATION, Attribute, Body, FileName,
    StdInfo,
};
use super::attrlist;
use super::boot::Boot;
use super::cache::Lru;
use super::data::{self, Value};
use super::le::mref_record;
use super::record::Record;
use super::runlist::DataRun;
use crate::fs::FsError;
use crate::io::{ReadAt, Run, Runs, Source};

/// Parsed MFT records kept.
const RECORD_CACHE: usize = 4096;
/// Parsed files kept.
const INODE_CACHE: usize = 2048;
/// More extension records than this for one file is damage.
const MAX_EXTENSIONS: usize = 4096;
/// An attribute list larger than this is damage (each entry is at least
/// 26 bytes and names one extent).
const MAX_ATTR_LIST: u64 = 4 << 20;

/// The MFT of a volume.
pub(crate) struct Mft {
    pub vol: Source,
    pub boot: Boot,
    /// Clusters in the volume (bounds every run).
    pub clusters: u64,
    pub cluster: u64,
    data: Source,
    runs: Vec<DataRun>,
    /// Records in $MFT.
    pub records: u64,
    record_size: u64,
    cache: Lru<u64, Arc<Record>>,
    inodes: Lru<u64, Arc<Inode>>,
}

/// A file: its base record's header and every attribute, wherever it lives.
#[derive(Debug)]
pub(crate) struct Inode {
    pub record: u64,
    pub offset: u64,
    pub seq: u16,
    pub in_use: bool,
    pub is_dir: bool,
    pub link_count: u16,
    pub attrs: Vec<Attribute>,
    pub si: Option<StdInfo>,
    pub names: Vec<FileName>,
}

fn runs_source(vol: &Source, cluster: u64, runs: &[DataRun], len: u64) -> std::io::Result<Runs> {
    let r: Vec<Run> = runs
        .iter()
        .map(|r| Run {
            blocks: r.clusters,
            at: r.lcn,
        })
        .collect();
    Runs::new(vol.clone(), cluster, &r, len, len)
}

impl Mft {
    /// Reads the boot sector and bootstraps $MFT.
    /// The warning says the backup boot sector was used.
    pub fn open(vol: Source) -> Result<(Mft, Option<String>), FsError> {
        let (boot, warning) = read_boot(&vol)?;
        let cluster = u64::from(boot.cluster_size);
        let record_size = u64::from(boot.mft_record_size);
        let clusters = boot.volume_size / cluster;
        let at0 = boot.mft_lcn * cluster;
        let mut raw = vec![0u8; record_size as usize];
        vol.read_exact_at(at0, &mut raw)
            .map_err(|e| FsError::corrupt(Record::name(0), at0, format!("cannot be read: {e}")))?;
        let rec0 = Record::parse(0, at0, raw)?;
        let damage = |d: String| FsError::corrupt("NTFS $MFT (record 0) $DATA", at0, d);
        let attrs0 = rec0.attributes()?;
        let mut parts: Vec<Attribute> = attrs0
            .iter()
            .filter(|a| a.type_code == AT_DATA && a.name.is_empty())
            .cloned()
            .collect();
        if let Some(list) = attrs0.iter().find(|a| a.type_code == AT_ATTRIBUTE_LIST) {
            let bytes = match &list.body {
                Body::Resident(v) => v.clone(),
                Body::NonResident(_) => {
                    let v = data::merge(&[list], clusters, &damage)?;
                    read_small(&vol, cluster, &v, "NTFS $MFT $ATTRIBUTE_LIST", &damage)?
                }
            };
            let mut entries: Vec<_> = attrlist::parse(&bytes)
                .map_err(|e| damage(format!("$ATTRIBUTE_LIST: {e}")))?
                .into_iter()
                .filter(|e| e.type_code == AT_DATA && e.record != 0)
                .collect();
            entries.sort_by_key(|e| e.start_vcn);
            entries.dedup_by_key(|e| e.record);
            if entries.len() > MAX_EXTENSIONS {
                return Err(damage(format!("{} extension records", entries.len())));
            }
            let mut done = BTreeSet::new();
            // The runs found so far, re-merged only when an extension
            // record lies past what they map.
            let mut so_far: Vec<DataRun> = Vec::new();
            let mut mapped = 0u64;
            for e in entries {
                if !done.insert(e.record) {
                    continue;
                }
                let pos = e.record.checked_mul(record_size);
                if pos.is_some_and(|p| p.saturating_add(record_size) > mapped) {
                    so_far =
                        match data::merge(&parts.iter().collect::<Vec<_>>(), clusters, &damage)? {
                            Value::NonResident(m) => m.runs,
                            Value::Resident { .. } => {
                                return Err(damage("$MFT's $DATA is resident".into()));
                            }
                        };
                    mapped = so_far
                        .iter()
                        .map(|r| r.clusters)
                        .sum::<u64>()
                        .saturating_mul(cluster);
                }
                let Some(pos) = pos.filter(|p| p.saturating_add(record_size) <= mapped) else {
                    return Err(damage(format!(
                        "extension record {} lies outside the {mapped} bytes mapped before it",
                        e.record
                    )));
                };
                let src = runs_source(&vol, cluster, &so_far, mapped)
                    .map_err(|err| damage(err.to_string()))?;
                let mut raw = vec![0u8; record_size as usize];
                src.read_exact_at(pos, &mut raw)?;
                let rec = Record::parse(e.record, volume_offset(&so_far, cluster, pos), raw)?;
                if mref_record(rec.base_ref) != 0 {
                    return Err(damage(format!(
                        "extension record {} belongs to record {}",
                        e.record,
                        mref_record(rec.base_ref)
                    )));
                }
                parts.extend(
                    rec.attributes()?
                        .into_iter()
                        .filter(|a| a.type_code == AT_DATA && a.name.is_empty()),
                );
            }
        }
        let merged = match data::merge(&parts.iter().collect::<Vec<_>>(), clusters, &damage)? {
            Value::NonResident(m) => m,
            Value::Resident { .. } => return Err(damage("$MFT's $DATA is resident".into())),
        };
        // Records lie in placed clusters only: a huge sparse $MFT does not
        // make a huge count.
        let placed: u64 = merged
            .runs
            .iter()
            .filter(|r| r.lcn.is_some())
            .map(|r| r.clusters)
            .sum::<u64>()
            .saturating_mul(cluster);
        let records = merged.data_size.min(placed) / record_size;
        if records < 16 {
            return Err(damage(format!("{records} records")));
        }
        let data = runs_source(&vol, cluster, &merged.runs, merged.data_size)
            .map_err(|e| damage(e.to_string()))?;
        let mft = Mft {
            vol,
            boot,
            clusters,
            cluster,
            data: Arc::new(data),
            runs: merged.runs,
            records,
            record_size,
            cache: Lru::new(RECORD_CACHE),
            inodes: Lru::new(INODE_CACHE),
        };
        Ok((mft, warning))
    }

    /// The volume offset of record `n` (for errors).
    pub fn record_offset(&self, n: u64) -> u64 {
        volume_offset(&self.runs, self.cluster, n.saturating_mul(self.record_size))
    }

    /// Reads and checks record `n`, not through the cache.
    pub fn read_uncached(&self, n: u64) -> Result<Record, FsError> {
        if n >= self.records {
            return Err(FsError::NoInode(crate::fs::Ino(n)));
        }
        let offset = self.record_offset(n);
        let mut raw = vec![0u8; self.record_size as usize];
        self.data
            .read_exact_at(n * self.record_size, &mut raw)
            .map_err(|e| {
                FsError::corrupt(Record::name(n), offset, format!("cannot be read: {e}"))
            })?;
        Record::parse(n, offset, raw)
    }

    /// Record `n`, through the cache.
    pub fn read(&self, n: u64) -> Result<Arc<Record>, FsError> {
        if let Some(r) = self.cache.get(n) {
            return Ok(r);
        }
        let r = Arc::new(self.read_uncached(n)?);
        self.cache.insert(n, r.clone());
        Ok(r)
    }

    /// The file whose base record is `n`, in use or not. An extension
    /// record is not a file ([`FsError::NoInode`]).
    pub fn inode(&self, n: u64) -> Result<Arc<Inode>, FsError> {
        if let Some(i) = self.inodes.get(n) {
            return Ok(i);
        }
        let base = self.read(n)?;
        let i = Arc::new(self.gather(&base)?);
        self.inodes.insert(n, i.clone());
        Ok(i)
    }

    /// Gathers a file from an already parsed base record (deleted records
    /// are read outside the cache).
    pub fn gather(&self, base: &Record) -> Result<Inode, FsError> {
        let n = base.number;
        if base.base_ref != 0 {
            return Err(FsError::NoInode(crate::fs::Ino(n)));
        }
        let mut attrs = base.attributes()?;
        let damage = |d: String| {
            FsError::corrupt(
                format!("{} $ATTRIBUTE_LIST", Record::name(n)),
                base.offset,
                d,
            )
        };
        if let Some(list) = attrs
            .iter()
            .find(|a| a.type_code == AT_ATTRIBUTE_LIST)
            .cloned()
        {
            let bytes = match &list.body {
                Body::Resident(v) => v.clone(),
                Body::NonResident(_) => {
                    let v = data::merge(&[&list], self.clusters, &damage)?;
                    read_small(&self.vol, self.cluster, &v, &Record::name(n), &damage)?
                }
            };
            let entries = attrlist::parse(&bytes).map_err(damage)?;
            let ext: BTreeSet<u64> = entries
                .iter()
                .map(|e| e.record)
                .filter(|&r| r != n)
                .collect();
            if ext.len() > MAX_EXTENSIONS {
                return Err(damage(format!("{} extension records", ext.len())));
            }
            for r in ext {
                let rec = self.read(r)?;
                if mref_record(rec.base_ref) != n {
                    return Err(damage(format!(
                        "extension record {r} belongs to record {}",
                        mref_record(rec.base_ref)
                    )));
                }
                attrs.extend(
                    rec.attributes()?
                        .into_iter()
                        .filter(|a| a.type_code != AT_ATTRIBUTE_LIST),
                );
            }
        }
        let si = attrs
            .iter()
            .find(|a| a.type_code == AT_STANDARD_INFORMATION)
            .and_then(|a| match &a.body {
                Body::Resident(v) => StdInfo::parse(v),
                Body::NonResident(_) => None,
            });
        let names = attrs
            .iter()
            .filter(|a| a.type_code == AT_FILE_NAME)
            .filter_map(|a| match &a.body {
                Body::Resident(v) => FileName::parse(v),
                Body::NonResident(_) => None,
            })
            .collect();
        Ok(Inode {
            record: n,
            offset: base.offset,
            seq: base.seq,
            in_use: base.in_use(),
            is_dir: base.is_dir(),
            link_count: base.link_count,
            attrs,
            si,
            names,
        })
    }
}

/// The boot sector, or when it is damaged the backup in the volume's last
/// sector (where mkfs.ntfs and Windows put it: just past the sectors the
/// boot sector counts), with a warning.
fn read_boot(vol: &Source) -> Result<(Boot, Option<String>), FsError> {
    let sector = |at: u64| -> Option<Vec<u8>> {
        let mut b = vec![0u8; 512];
        vol.read_exact_at(at, &mut b).ok().map(|_| b)
    };
    let primary = sector(0).ok_or_else(|| {
        FsError::corrupt("NTFS boot sector", 0, "the volume is shorter than a sector")
    })?;
    let err = match Boot::parse(&primary) {
        Ok(b) => return Ok((b, None)),
        Err(e) => e,
    };
    for size in [512u64, 4096] {
        let Some(at) = vol.len().checked_sub(size) else {
            continue;
        };
        if let Some(Ok(b)) = sector(at).map(|s| Boot::parse(&s)) {
            if b.sector_size as u64 == size {
                return Ok((
                    b,
                    Some(format!(
                        "the boot sector is damaged ({err}); the backup at byte {at:#x} was used"
                    )),
                ));
            }
        }
    }
    Err(err)
}

/// Reads all of a small attribute (an attribute list, $UpCase, a symlink
/// file) whose size is bounded by [`MAX_ATTR_LIST`].
pub(crate) fn read_small(
    vol: &Source,
    cluster: u64,
    v: &Value,
    what: &str,
    damage: &dyn Fn(String) -> FsError,
) -> Result<Vec<u8>, FsError> {
    if v.size() > MAX_ATTR_LIST || v.size() > vol.len() {
        return Err(damage(format!("{} bytes is too large", v.size())));
    }
    let src = data::source(vol, cluster, v, what, damage)?;
    let mut b = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut b)?;
    Ok(b)
}

/// The volume offset of byte `pos` of a run list (the run list position
/// itself when it falls in a hole or past the runs).
pub(crate) fn volume_offset(runs: &[DataRun], cluster: u64, pos: u64) -> u64 {
    let mut vcn = 0u64;
    let want = pos / cluster;
    for r in runs {
        if want < vcn + r.clusters {
            return match r.lcn {
                Some(lcn) => (lcn + (want - vcn)) * cluster + pos % cluster,
                None => pos,
            };
        }
        vcn += r.clusters;
    }
    pos
}

impl Inode {
    /// The merged value of attribute `type_code` named `name`, if present.
    pub fn value(&self, mft: &Mft, type_code: u32, name: &[u16]) -> Result<Option<Value>, FsError> {
        let parts: Vec<&Attribute> = self
            .attrs
            .iter()
            .filter(|a| a.type_code == type_code && a.name == name)
            .collect();
        if parts.is_empty() {
            return Ok(None);
        }
        let damage = |d: String| {
            FsError::corrupt(
                format!(
                    "{} attribute {type_code:#x} {:?}",
                    Record::name(self.record),
                    String::from_utf16_lossy(name)
                ),
                self.offset,
                d,
            )
        };
        data::merge(&parts, mft.clusters, &damage).map(Some)
    }

    /// The names of the named $DATA attributes (alternate data streams),
    /// each once, in attribute order.
    pub fn streams(&self) -> Vec<Vec<u16>> {
        let mut out: Vec<Vec<u16>> = Vec::new();
        for a in &self.attrs {
            if a.type_code == AT_DATA && !a.name.is_empty() && !out.contains(&a.name) {
                out.push(a.name.clone());
            }
        }
        out
    }
}
