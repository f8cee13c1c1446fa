//! Backup of a whole disk (a block device or a raw image file) as a VMDK:
//! the snapshot holds a text descriptor `NAME.vmdk` and one extent file per
//! piece of the disk: the partition-table area, each partition, the gaps
//! between them and the GPT backup area, laid end to end by `FLAT` extent
//! lines, so the restored set opens in qemu-img, VirtualBox and VMware, and
//! in the snapshot's own `NAME.vmdk.contents/`.
//!
//! A partition that is not selected reads as zeros and keeps the disk its
//! size: it becomes an empty hosted sparse extent (see
//! `vaultfs_formats::container::vmdk::write` for why not a `ZERO` line).
//!
//! The bytes go from the source straight into the chunker, one extent after
//! the other: no spool file, and memory bounded by the content pipeline's
//! channels. A sector that cannot be read is stored as zeros, reported as a
//! warning with its byte range, and listed in the descriptor and in
//! `NAME.unreadable.txt` so that nobody mistakes it for real zeros.

use std::io::{self, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Local;
use vaultfs_formats::container::vmdk::write::{
    DescriptorExtent, EmptySparse, ExtentKind, GRAIN_SECTORS, descriptor,
};
use vaultfs_formats::image::is_extended;
use vaultfs_formats::io::{FileSource, MemSource, ReadAt};
use vaultfs_formats::partition::{Scheme, Table, read_table_detect};

use super::pipeline::{self, Collector, FileContent, Outcome, Shared};
use super::{BackupOptions, BackupSummary, Progress};
use crate::chunker::ChunkerParams;
use crate::error::{Error, ErrorKind, Result};
use crate::repo::Repository;
use crate::repo::saver::BlobSaver;
use crate::snapshot::{Node, NodeType, Tree};

/// Bytes per VMDK sector.
const SECTOR: u64 = 512;

/// What to back up and how.
#[derive(Clone, Debug)]
pub struct DiskOptions {
    /// The block device or raw image file.
    pub source: PathBuf,
    /// The descriptor is `NAME.vmdk`, the extents `NAME-….raw`.
    pub name: String,
    /// Partition numbers to store (`None`: all); the others read as zeros.
    pub partitions: Option<Vec<u32>>,
    /// Store unallocated filesystem space as it is (not as zeros).
    pub include_unused: bool,
    /// Host name recorded in the snapshot (default: this machine's).
    pub host: Option<String>,
    /// Tags recorded in the snapshot.
    pub tags: Vec<String>,
}

impl DiskOptions {
    /// Options for `source` with every default (`disk.vmdk`, all partitions).
    pub fn new(source: PathBuf) -> DiskOptions {
        DiskOptions {
            source,
            name: "disk".into(),
            partitions: None,
            include_unused: false,
            host: None,
            tags: Vec::new(),
        }
    }
}

/// What a piece of the disk is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PieceKind {
    /// Before the first partition: the partition table (and boot code).
    Table,
    /// A partition, by its number.
    Partition(u32),
    /// Space between partitions (MBR: holds the EBRs of logical ones).
    Gap,
    /// The GPT backup entries and header at the end of the disk.
    GptBackup,
}

/// A byte range of the disk and the file that stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes (a multiple of 512).
    pub len: u64,
    /// What it is.
    pub kind: PieceKind,
    /// Stored (false: an unselected partition, read as zeros).
    pub selected: bool,
    /// Human description for the descriptor's comment.
    pub what: String,
}

/// Cuts a disk of `disk_len` bytes into pieces: the partitions of `table`
/// (MBR extended containers excepted: their logical partitions and EBR gaps
/// are pieces of their own) and the raw ranges around them. `selected`
/// lists the partitions to store (`None`: all).
pub fn layout(table: &Table, disk_len: u64, selected: Option<&[u32]>) -> Result<Vec<Piece>> {
    let bad = |m: String| Error::new(ErrorKind::InvalidInput, m);
    if disk_len % SECTOR != 0 {
        return Err(bad(format!(
            "the disk is {disk_len} bytes, not a whole number of 512-byte sectors"
        )));
    }
    let mut parts: Vec<_> = table
        .partitions
        .iter()
        .filter(|p| !is_extended(&p.kind) && p.len > 0)
        .collect();
    if let Some(sel) = selected {
        for n in sel {
            if !parts.iter().any(|p| p.index == *n) {
                let have: Vec<String> = parts.iter().map(|p| p.index.to_string()).collect();
                return Err(bad(format!(
                    "no partition {n} on this disk (it has: {})",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                )));
            }
        }
    }
    parts.sort_by_key(|p| p.start);
    let mut pieces = Vec::new();
    let mut at = 0u64;
    let raw = |pieces: &mut Vec<Piece>, start: u64, end: u64, first: bool| {
        if end > start {
            let (kind, what) = if first && table.scheme == Scheme::None {
                (
                    PieceKind::Table,
                    "the whole disk (no partition table)".to_string(),
                )
            } else if first {
                (PieceKind::Table, "partition table area".to_string())
            } else {
                (PieceKind::Gap, "unpartitioned space".to_string())
            };
            pieces.push(Piece {
                start,
                len: end - start,
                kind,
                selected: true,
                what,
            });
        }
    };
    for p in parts {
        let end = p.start.checked_add(p.len).filter(|&e| e <= disk_len);
        let Some(end) = end else {
            return Err(bad(format!(
                "partition {} (bytes {}..{}) reaches past the end of the disk ({disk_len} bytes)",
                p.index,
                p.start,
                p.start.saturating_add(p.len)
            )));
        };
        if p.start < at {
            return Err(bad(format!(
                "partition {} starts at byte {} inside the previous piece (ending at {at})",
                p.index, p.start
            )));
        }
        if p.start % SECTOR != 0 || p.len % SECTOR != 0 {
            return Err(bad(format!(
                "partition {} is not aligned to 512-byte sectors",
                p.index
            )));
        }
        raw(&mut pieces, at, p.start, at == 0);
        let name = if p.name.is_empty() {
            String::new()
        } else {
            format!(" {:?}", p.name)
        };
        pieces.push(Piece {
            start: p.start,
            len: p.len,
            kind: PieceKind::Partition(p.index),
            selected: selected.is_none_or(|s| s.contains(&p.index)),
            what: format!(
                "partition {}{name}, type {}",
                p.index,
                vaultfs_formats::image::type_name(&p.kind)
            ),
        });
        at = end;
    }
    // GPT: the backup entries and header follow the usable space.
    let backup = match (table.scheme, table.usable) {
        (Scheme::Gpt, Some((_, end))) if end >= at && end < disk_len => end,
        _ => disk_len,
    };
    raw(&mut pieces, at, backup, at == 0);
    if backup < disk_len {
        pieces.push(Piece {
            start: backup,
            len: disk_len - backup,
            kind: PieceKind::GptBackup,
            selected: true,
            what: "GPT backup entries and header".into(),
        });
    }
    Ok(pieces)
}

/// A stored file of the snapshot: `len` bytes of `src` from `start`.
struct Item {
    name: String,
    src: Arc<dyn ReadAt>,
    start: u64,
    len: u64,
    /// Ranges of `src` (ascending, disjoint) stored as zeros: space the
    /// partition's filesystem does not use.
    zero: Vec<Range<u64>>,
}

/// A source of zeros.
struct Zeros(u64);

impl ReadAt for Zeros {
    fn len(&self) -> u64 {
        self.0
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = vaultfs_formats::io::clamp(offset, buf.len(), self.0);
        buf[..n].fill(0);
        Ok(n)
    }
}

/// Reads `start..end` of a source in order, as the chunker wants it. A read
/// error is retried sector by sector; sectors that still fail read as zeros
/// and are recorded in `unreadable` (disk byte ranges, merged).
struct RangeReader<'a> {
    src: &'a dyn ReadAt,
    pos: u64,
    end: u64,
    /// Ranges read as zeros without reading them (ascending, disjoint).
    zero: &'a [Range<u64>],
    /// Where `src` lies on the disk (for the unreadable ranges).
    disk_offset: u64,
    unreadable: &'a mut Vec<Range<u64>>,
}

impl RangeReader<'_> {
    fn record(&mut self, at: u64, len: u64) {
        let r = self.disk_offset + at..self.disk_offset + at + len;
        match self.unreadable.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => self.unreadable.push(r),
        }
    }
}

/// The most bytes read at once.
const READ_BLOCK: usize = 1 << 20;

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut want = (self.end - self.pos).min(buf.len().min(READ_BLOCK) as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        // Skip the zero ranges that end before `pos`; inside one, zeros;
        // before one, read up to it.
        while self.zero.first().is_some_and(|z| z.end <= self.pos) {
            self.zero = &self.zero[1..];
        }
        if let Some(z) = self.zero.first() {
            if z.start <= self.pos {
                let n = (z.end - self.pos).min(want as u64) as usize;
                buf[..n].fill(0);
                self.pos += n as u64;
                return Ok(n);
            }
            want = (z.start - self.pos).min(want as u64) as usize;
        }
        let buf = &mut buf[..want];
        match self.src.read_at(self.pos, buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the source ended at byte {}", self.disk_offset + self.pos),
            )),
            Ok(n) => {
                self.pos += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(_) => {
                // Find the bad sectors; the rest of the block is good data.
                for (i, sector) in buf.chunks_mut(SECTOR as usize).enumerate() {
                    let at = self.pos + (i as u64) * SECTOR;
                    if self.src.read_exact_at(at, sector).is_err() {
                        sector.fill(0);
                        self.record(at, sector.len() as u64);
                    }
                }
                self.pos += want as u64;
                Ok(want)
            }
        }
    }
}

/// The read-write mounts of block device `path` or of its partitions, as
/// (device, mount point); nothing for an image file or off Linux.
fn mounted_rw(path: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::FileTypeExt;
    let is_dev = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
    if !is_dev {
        return Vec::new();
    }
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    rw_mounts_of(&info, &real.to_string_lossy())
}

/// The read-write mounts in a `/proc/self/mountinfo` text whose source is
/// `dev` or a partition of it (`/dev/sda1`, `/dev/nvme0n1p1` for
/// `/dev/sda`, `/dev/nvme0n1`).
fn rw_mounts_of(mountinfo: &str, dev: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let (Some(at), Some(opts), Some(source)) = (l.get(4), l.get(5), r.get(1)) else {
            continue;
        };
        let rest = source.strip_prefix(dev);
        let ours = rest.is_some_and(|rest| {
            let rest = rest.strip_prefix('p').unwrap_or(rest);
            rest.is_empty() || rest.chars().all(|c| c.is_ascii_digit())
        });
        if ours && opts.split(',').any(|o| o == "rw") {
            // mountinfo escapes spaces and such as octal \040.
            out.push((source.to_string(), at.replace("\\040", " ")));
        }
    }
    out
}

/// The most free runs kept per partition (16 bytes each: 64 MiB).
const MAX_ZERO_RANGES: usize = 1 << 22;

/// A filesystem's name and the disk ranges it does not use.
type Unused = (String, Vec<Range<u64>>);

/// The space the filesystem of partition `p` does not use, as disk byte
/// ranges, and the filesystem's name; `None` when no reader knows it (the
/// partition is then stored whole).
fn unused_space(src: &Arc<dyn ReadAt>, p: &Piece) -> std::result::Result<Option<Unused>, String> {
    use vaultfs_formats::fs;
    let vol: Arc<dyn ReadAt> = Arc::new(
        vaultfs_formats::io::Slice::new(src.clone(), p.start, p.len).map_err(|e| e.to_string())?,
    );
    let Some(kind) = fs::detect(&*vol).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    if !fs::has_reader(kind) {
        return Ok(None);
    }
    let f = fs::open(kind, vol, &fs::FsOptions::default()).map_err(|e| e.to_string())?;
    let mut ranges: Vec<Range<u64>> = Vec::new();
    let mut bad = false;
    f.unused(&mut |r| {
        if ranges.len() >= MAX_ZERO_RANGES {
            // Memory stays bounded on a hugely fragmented volume: past
            // this many free runs, the rest is stored as it is (safe).
            return;
        }
        // Ranges must ascend inside the partition; anything else means the
        // reader is confused, and nothing is zeroed.
        let ok = r.start < r.end && r.end <= p.len;
        let r = r.start + p.start..r.end + p.start;
        if !ok || ranges.last().is_some_and(|l| l.end > r.start) {
            bad = true;
        } else if let Some(l) = ranges.last_mut().filter(|l| l.end == r.start) {
            l.end = r.end;
        } else {
            ranges.push(r);
        }
    })
    .map_err(|e| e.to_string())?;
    if bad {
        return Err("its free-space map is inconsistent".into());
    }
    Ok(Some((format!("{kind:?}"), ranges)))
}

/// The outcome of a disk backup: the usual summary plus the layout.
#[derive(Clone, Debug)]
pub struct DiskSummary {
    /// Counters, snapshot id, warnings.
    pub summary: BackupSummary,
    /// The pieces of the disk, in order.
    pub pieces: Vec<Piece>,
    /// Byte ranges of the disk that could not be read (stored as zeros).
    pub unreadable: Vec<Range<u64>>,
}

/// Opens the block device or file (its length found either way).
fn open_source(path: &Path) -> Result<FileSource> {
    FileSource::open(path).map_err(|e| Error::io(path.display(), e).context("disk source"))
}

/// Backs up the disk `opts.source` into a new snapshot.
pub fn backup_disk(
    repo: &Arc<Repository>,
    opts: &DiskOptions,
    progress: &dyn Progress,
) -> Result<DiskSummary> {
    let started = Instant::now();
    let start_time = Local::now().fixed_offset();
    if opts.name.is_empty() || opts.name.contains('/') || opts.name.starts_with('.') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid disk name {:?}: use a plain file name", opts.name),
        ));
    }
    let path = super::build::clean_path(&opts.source)?;
    let src = open_source(&path)?;
    let disk_len = src.len();
    let table = read_table_detect(&src, None).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{}: reading the partition table: {e}", path.display()),
        )
    })?;
    let mut warnings: Vec<String> = Vec::new();
    for w in &table.warnings {
        progress.warning(&path, w);
        warnings.push(format!("{}: {w}", path.display()));
    }
    for (dev, at) in mounted_rw(&path) {
        let w = format!(
            "{dev} is mounted read-write at {at}: the backup may be inconsistent \
             (back up an LVM snapshot, or the device unmounted or mounted read-only)"
        );
        progress.warning(&path, &w);
        warnings.push(format!("{}: {w}", path.display()));
    }
    let pieces = layout(&table, disk_len, opts.partitions.as_deref())?;
    let src: Arc<dyn ReadAt> = Arc::new(src);

    // The files, in disk order; the descriptor is written last, once the
    // unreadable ranges are known.
    let name = &opts.name;
    let mut items = Vec::new();
    let mut extents = Vec::new();
    let mut gaps = 0;
    for p in &pieces {
        let base = match &p.kind {
            PieceKind::Table if table.scheme == Scheme::None => format!("{name}-whole"),
            PieceKind::Table => format!("{name}-table"),
            PieceKind::Partition(n) => format!("{name}-p{n}"),
            PieceKind::Gap => {
                gaps += 1;
                format!("{name}-gap{gaps}")
            }
            PieceKind::GptBackup => format!("{name}-gpt-backup"),
        };
        let sectors = p.len / SECTOR;
        if p.selected {
            let mut comment = p.what.clone();
            // A partition's filesystem, or one filling a disk without a
            // partition table (a partition device, a filesystem image).
            let volume = match &p.kind {
                PieceKind::Partition(n) => Some(format!("partition {n}")),
                PieceKind::Table if table.scheme == Scheme::None => Some("the volume".into()),
                _ => None,
            };
            let zero = match (volume, opts.include_unused) {
                (Some(v), false) => match unused_space(&src, p) {
                    Ok(Some((kind, z))) => {
                        let bytes: u64 = z.iter().map(|r| r.end - r.start).sum();
                        comment
                            .push_str(&format!(", {kind}: {bytes} unused bytes stored as zeros"));
                        z
                    }
                    Ok(None) => Vec::new(),
                    Err(e) => {
                        let w =
                            format!("{v}: the filesystem could not be read ({e}); stored whole");
                        progress.warning(&path, &w);
                        warnings.push(format!("{}: {w}", path.display()));
                        Vec::new()
                    }
                },
                _ => Vec::new(),
            };
            items.push(Item {
                name: format!("{base}.raw"),
                src: src.clone(),
                start: p.start,
                len: p.len,
                zero,
            });
            extents.push(DescriptorExtent {
                sectors,
                kind: ExtentKind::Flat,
                file: format!("{base}.raw"),
                comment,
            });
            continue;
        }
        // Not selected: an empty sparse extent of whole grains, and the
        // odd sectors after them as a small file of zeros.
        let whole = sectors / GRAIN_SECTORS * GRAIN_SECTORS;
        if whole > 0 {
            let sparse = EmptySparse::new(whole);
            items.push(Item {
                name: format!("{base}-zero.vmdk"),
                start: 0,
                len: sparse.len(),
                src: Arc::new(sparse),
                zero: Vec::new(),
            });
            extents.push(DescriptorExtent {
                sectors: whole,
                kind: ExtentKind::Sparse,
                file: format!("{base}-zero.vmdk"),
                comment: format!("{} (not selected: zeros)", p.what),
            });
        }
        if sectors > whole {
            let len = (sectors - whole) * SECTOR;
            items.push(Item {
                name: format!("{base}-tail.raw"),
                src: Arc::new(Zeros(len)),
                start: 0,
                len,
                zero: Vec::new(),
            });
            extents.push(DescriptorExtent {
                sectors: sectors - whole,
                kind: ExtentKind::Flat,
                file: format!("{base}-tail.raw"),
                comment: format!("{} (not selected: zeros), last sectors", p.what),
            });
        }
    }
    let total: u64 = items.iter().map(|i| i.len).sum();
    progress.scanned(items.len() as u64 + 1, total);

    let host = opts.host.clone().unwrap_or_else(crate::sys::hostname);
    let paths = vec![path.to_string_lossy().into_owned()];
    let _lock = crate::repo::lock::acquire(repo, false)?;
    repo.ensure_index()?;
    let mut parent_opts = BackupOptions::new(vec![path.clone()]);
    parent_opts.host = Some(host.clone());
    let parent = super::build::choose_parent(repo, &parent_opts, &host, &paths)?;
    let saver = BlobSaver::new(repo.clone());
    let params = ChunkerParams::new(repo.config().polynomial().unwrap_or(0));
    let shared = Shared::new(&saver, &params, progress);

    let workers = crate::parallel::workers();
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded(workers);
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    let mut unreadable: Vec<Range<u64>> = Vec::new();
    let mut collector = Collector::new(out_rx);
    let mut descriptor_text = String::new();
    let read_result: io::Result<()> = std::thread::scope(|s| {
        for _ in 0..workers {
            let (chunks, out) = (chunk_rx.clone(), out_tx.clone());
            let sh = &shared;
            s.spawn(move || pipeline::worker(sh, chunks, out));
        }
        drop(chunk_rx);
        let send_file = |idx: usize,
                         src: &dyn ReadAt,
                         start: u64,
                         len: u64,
                         zero: &[Range<u64>],
                         unreadable: &mut Vec<Range<u64>>|
         -> io::Result<()> {
            let mut reader = RangeReader {
                src,
                pos: start,
                end: start + len,
                zero,
                disk_offset: 0,
                unreadable,
            };
            let (chunks, bytes) = pipeline::chunk_stream(&shared, idx, &mut reader, &chunk_tx)?;
            shared.progress.processed(1, 0);
            out_tx
                .send(Outcome::Done {
                    file: idx,
                    chunks,
                    bytes,
                    path: PathBuf::from(idx.to_string()),
                })
                .map_err(|_| io::Error::other("backup aborted"))
        };
        let result = (|| {
            for (idx, item) in items.iter().enumerate() {
                // Only the disk's own pieces have disk offsets; the
                // generated files cannot fail to read.
                send_file(
                    idx,
                    &*item.src,
                    item.start,
                    item.len,
                    &item.zero,
                    &mut unreadable,
                )?;
            }
            descriptor_text = descriptor(&extents, cid(&extents, disk_len));
            if !unreadable.is_empty() {
                descriptor_text
                    .push_str("\n# Unreadable byte ranges of the source, stored as zeros:\n");
                for r in &unreadable {
                    descriptor_text.push_str(&format!("#   {}..{}\n", r.start, r.end));
                }
            }
            let d = MemSource::new(descriptor_text.clone().into_bytes());
            let mut none = Vec::new();
            send_file(items.len(), &d, 0, d.len(), &[], &mut none)?;
            Ok(())
        })();
        drop(chunk_tx);
        drop(out_tx);
        result
    });
    if let Some(e) = shared.fatal.lock().take() {
        return Err(e);
    }
    read_result.map_err(|e| Error::io(path.display(), e).context("reading the disk"))?;
    collector.drain();
    for r in &unreadable {
        let w = format!(
            "bytes {}..{} could not be read; stored as zeros and listed in {name}.unreadable.txt",
            r.start, r.end
        );
        progress.warning(&path, &w);
        warnings.push(format!("{}: {w}", path.display()));
    }

    // The tree: the extents, the descriptor, the list of unreadable ranges.
    let (uid, gid) = crate::sys::uid_gid();
    let now = Local::now().fixed_offset();
    let file_node = |name: &str, content: FileContent| -> Result<Node> {
        let FileContent::Stored { ids, bytes } = content else {
            return Err(Error::new(
                ErrorKind::Io,
                format!("{name}: not stored completely"),
            ));
        };
        let mut node = Node::new(name, NodeType::File);
        node.mode = 0o644;
        node.mtime = now;
        node.atime = now;
        node.ctime = now;
        node.uid = uid;
        node.gid = gid;
        node.size = bytes;
        node.links = 1;
        node.content = Some(ids);
        Ok(node)
    };
    let mut nodes = Vec::with_capacity(items.len() + 2);
    let mut summary = BackupSummary::default();
    for (idx, item) in items.iter().enumerate() {
        let content = collector
            .take(idx, false)
            .unwrap_or(FileContent::Failed(String::new()));
        nodes.push(file_node(&item.name, content)?);
    }
    let content = collector
        .take(items.len(), false)
        .unwrap_or(FileContent::Failed(String::new()));
    nodes.push(file_node(&format!("{name}.vmdk"), content)?);
    if !unreadable.is_empty() {
        let text: String = unreadable
            .iter()
            .map(|r| format!("{} {}\n", r.start, r.end))
            .collect();
        let ids = store_small(&saver, text.as_bytes())?;
        nodes.push(file_node(
            &format!("{name}.unreadable.txt"),
            FileContent::Stored {
                ids,
                bytes: text.len() as u64,
            },
        )?);
    }
    // Compare with the parent's files to count new, changed, unchanged.
    let parent_tree = match &parent {
        Some((_, p)) => Some(repo.load_tree(&p.tree)?),
        None => None,
    };
    for n in &nodes {
        summary.total_bytes_processed += n.size;
        match parent_tree.as_ref().and_then(|t| t.find(&n.name)) {
            None => summary.files_new += 1,
            Some(old) if old.content == n.content => summary.files_unmodified += 1,
            Some(_) => summary.files_changed += 1,
        }
    }
    let tree = saver.save_tree(Tree { nodes })?;
    summary.dirs_new = 1;
    summary.total_files_processed =
        summary.files_new + summary.files_changed + summary.files_unmodified;
    let spec = super::build::SnapshotSpec {
        tree,
        paths,
        host,
        excludes: Vec::new(),
        tags: opts.tags.clone(),
        start: start_time,
    };
    let parent_id = parent.as_ref().map(|(id, _)| *id);
    super::build::save_snapshot(repo, saver, &mut summary, parent_id, spec, started)?;
    summary.warnings = warnings;
    Ok(DiskSummary {
        summary,
        pieces,
        unreadable,
    })
}

/// Stores a small file as one blob.
fn store_small(saver: &BlobSaver, data: &[u8]) -> Result<Vec<crate::id::Id>> {
    let id = crate::id::Id::hash(data);
    saver.save(crate::repo::BlobType::Data, id, data)?;
    Ok(vec![id])
}

/// A content id for the descriptor: the same layout gives the same CID.
fn cid(extents: &[DescriptorExtent], disk_len: u64) -> u32 {
    let mut text = format!("{disk_len}");
    for e in extents {
        text.push_str(&format!(" {} {}", e.sectors, e.file));
    }
    let h = crate::id::Id::hash(text.as_bytes()).to_hex();
    u32::from_str_radix(&h[..8], 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source whose sectors in `bad` fail to read.
    struct Flaky {
        data: Vec<u8>,
        bad: Range<u64>,
    }

    impl ReadAt for Flaky {
        fn len(&self) -> u64 {
            self.data.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            let n = vaultfs_formats::io::clamp(offset, buf.len(), self.len());
            if offset < self.bad.end && offset + n as u64 > self.bad.start {
                return Err(io::Error::other("I/O error"));
            }
            buf[..n].copy_from_slice(&self.data[offset as usize..offset as usize + n]);
            Ok(n)
        }
    }

    #[test]
    fn read_write_mounts_of_a_device_and_its_partitions() {
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 8:2 / /mnt/my\\040data ro,relatime shared:2 - vfat /dev/sda2 ro
24 22 8:17 / /other rw - xfs /dev/sdb1 rw
25 22 259:1 / /boot rw - vfat /dev/nvme0n1p1 rw
26 22 8:0 / /whole rw - ext4 /dev/sda rw
27 22 8:16 / /x rw - ext4 /dev/sda10 rw";
        assert_eq!(
            rw_mounts_of(info, "/dev/sda"),
            [
                ("/dev/sda1".to_string(), "/".to_string()),
                ("/dev/sda".to_string(), "/whole".to_string()),
                ("/dev/sda10".to_string(), "/x".to_string()),
            ]
        );
        assert_eq!(
            rw_mounts_of(info, "/dev/nvme0n1"),
            [("/dev/nvme0n1p1".to_string(), "/boot".to_string())]
        );
        assert!(rw_mounts_of(info, "/dev/sdb1").len() == 1);
        assert!(rw_mounts_of(info, "/dev/sdc").is_empty());
    }

    #[test]
    fn unreadable_sectors_become_zeros_and_are_recorded() {
        let src = Flaky {
            data: vec![7u8; 8192],
            bad: 1024..2048,
        };
        let mut bad = Vec::new();
        let zero = vec![Range {
            start: 4096,
            end: 5120,
        }];
        let mut r = RangeReader {
            src: &src,
            pos: 512,
            end: 8192,
            zero: &zero,
            disk_offset: 1 << 20,
            unreadable: &mut bad,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        assert_eq!(out.len(), 8192 - 512);
        assert!(out[..512].iter().all(|&b| b == 7));
        assert!(out[512..1536].iter().all(|&b| b == 0));
        assert!(out[1536..3584].iter().all(|&b| b == 7));
        assert!(out[3584..4608].iter().all(|&b| b == 0), "a zero range");
        assert!(out[4608..].iter().all(|&b| b == 7));
        assert_eq!(bad, vec![(1 << 20) + 1024..(1 << 20) + 2048]);
    }
}
