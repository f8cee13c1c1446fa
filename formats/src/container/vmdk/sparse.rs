//! Hosted sparse extents (`KDMV`): monolithicSparse, twoGbMaxExtentSparse
//! and streamOptimized files, after the VMware "Virtual Disk Format 1.1"
//! specification, sections "Hosted Sparse Extents" and "Stream-Optimized
//! Compressed Sparse Extents".
//!
//! A 512-byte little-endian header gives the capacity, the grain size and
//! where the grain directory (GD) lies. The GD holds one 32-bit sector
//! offset per grain table (GT); each GT holds `numGTEsPerGT` sector offsets
//! of grains. A GT entry of 0 is an unallocated grain (zeros, or the
//! parent's bytes in a delta disk), 1 a zeroed grain. In a streamOptimized
//! file each grain is deflate-compressed behind a marker `{lba: u64, size:
//! u32}`, and the GD may be written only at the end, found through the
//! footer (a copy of the header in the second-to-last sector).
//!
//! The GD is read whole at open (it is small: 4 bytes per GT) and checked
//! against the file; GTs are read lazily through a small bounded block
//! cache; inflated grains through a bounded LRU ([`BlockCache`] of grains),
//! whose locks are never held while inflating.

use std::io;
use std::sync::Arc;

use flate2::{Decompress, FlushDecompress, Status};

use super::super::{ContainerError, corrupt};
use crate::io::{BlockCache, ReadAt, Source, clamp};

/// `KDMV`, little-endian.
pub(crate) const MAGIC: &[u8; 4] = b"KDMV";
/// The header field `gdOffset` of a stream whose GD is in the footer.
const GD_AT_END: u64 = u64::MAX;
/// Header flag: a GT entry of 1 is a zeroed grain.
const FLAG_ZERO_GRAIN: u32 = 1 << 2;
/// Header flag: grains are compressed.
const FLAG_COMPRESSED: u32 = 1 << 16;
/// Header flag: grains and metadata are preceded by markers.
const FLAG_MARKERS: u32 = 1 << 17;
/// `compressAlgorithm` DEFLATE.
const COMPRESS_DEFLATE: u16 = 1;
/// Marker type of the footer.
const MARKER_FOOTER: u32 = 3;
/// The largest grain accepted, in sectors (1 MiB; VMware writes 128).
const MAX_GRAIN_SECTORS: u64 = 2048;
/// The only number of entries per grain table the specification allows.
const GTES_PER_GT: u32 = 512;
/// The most GD entries accepted (a 512 TiB disk of 64 KiB grains).
const MAX_GD_ENTRIES: u64 = 1 << 24;
/// Grain tables are read through a cache of this many 4 KiB blocks per
/// extent (512 KiB): a 2 GiB extent's tables fit whole.
const GT_CACHE_BLOCKS: usize = 128;
/// Bytes of inflated grains cached per compressed extent.
const GRAIN_CACHE_BYTES: usize = 4 << 20;

/// A sparse extent header, fields as the specification names them; sector
/// counts and offsets in 512-byte sectors.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain_size: u64,
    pub descriptor_offset: u64,
    pub descriptor_size: u64,
    pub gtes_per_gt: u32,
    pub rgd_offset: u64,
    pub gd_offset: u64,
    pub unclean_shutdown: bool,
    pub compress_algorithm: u16,
}

fn u32_at(b: &[u8; 512], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8; 512], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(v)
}

impl Header {
    /// Parses the header sector (the magic already checked by the caller
    /// or here).
    pub(crate) fn parse(b: &[u8; 512], at: u64) -> Result<Header, ContainerError> {
        if b.get(..4) != Some(MAGIC.as_slice()) {
            return Err(corrupt("VMDK sparse header", at, "no KDMV magic"));
        }
        Ok(Header {
            version: u32_at(b, 4),
            flags: u32_at(b, 8),
            capacity: u64_at(b, 12),
            grain_size: u64_at(b, 20),
            descriptor_offset: u64_at(b, 28),
            descriptor_size: u64_at(b, 36),
            gtes_per_gt: u32_at(b, 44),
            rgd_offset: u64_at(b, 48),
            gd_offset: u64_at(b, 56),
            unclean_shutdown: b.get(72).is_some_and(|&u| u != 0),
            compress_algorithm: u16::from_le_bytes([
                b.get(77).copied().unwrap_or(0),
                b.get(78).copied().unwrap_or(0),
            ]),
        })
    }

    /// Reads the header sector at `at` of `file`.
    pub(crate) fn read(file: &dyn ReadAt, at: u64, name: &str) -> Result<Header, ContainerError> {
        let mut b = [0u8; 512];
        file.read_exact_at(at, &mut b).map_err(|e| {
            corrupt(
                "VMDK sparse header",
                at,
                format!("{name}: cannot be read: {e}"),
            )
        })?;
        Header::parse(&b, at)
    }

    /// True if grains are deflate-compressed.
    pub(crate) fn compressed(&self) -> bool {
        self.compress_algorithm == COMPRESS_DEFLATE
    }
}

/// What a grain reads as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grain {
    /// Not allocated: zeros, or the parent.
    Unallocated,
    /// Zeroed.
    Zero,
    /// Stored at this byte offset (a marker's, if compressed).
    At(u64),
}

/// An opened sparse extent, before it is given its place in a disk.
pub(crate) struct Sparse {
    pub header: Header,
    file: Source,
    name: String,
    gd: Vec<u32>,
    /// GT bytes as read through a cache.
    gt: BlockCache,
    grain_bytes: u64,
    capacity_bytes: u64,
    /// Recoveries met while opening.
    pub warnings: Vec<String>,
}

fn sectors(n: u64, what: &'static str, at: u64) -> Result<u64, ContainerError> {
    n.checked_mul(512)
        .ok_or_else(|| corrupt("VMDK sparse header", at, format!("{what} {n:#x} overflows")))
}

impl Sparse {
    /// Opens the sparse file `file` (named `name` in errors): header (and
    /// footer), validated, and its grain directory.
    pub(crate) fn open(file: Source, name: &str) -> Result<Sparse, ContainerError> {
        let file_len = file.len();
        let mut header = Header::read(&*file, 0, name)?;
        let bad = |detail: String| corrupt("VMDK sparse header", 0, format!("{name}: {detail}"));
        let unsupported = |detail: String| ContainerError::Unsupported {
            format: "VMDK",
            detail: format!("{name}: {detail}"),
        };
        if !(1..=3).contains(&header.version) {
            return Err(unsupported(format!(
                "sparse extent version {}",
                header.version
            )));
        }
        if header.compress_algorithm > COMPRESS_DEFLATE {
            return Err(unsupported(format!(
                "compression algorithm {}",
                header.compress_algorithm
            )));
        }
        let mut warnings = Vec::new();
        if header.compressed() && header.gd_offset == GD_AT_END {
            // The footer: footer marker, header copy, end-of-stream marker,
            // one sector each, at the end of the file.
            let at = file_len
                .checked_sub(1024)
                .filter(|&a| a >= 512)
                .ok_or_else(|| {
                    bad("the grain directory is at the end but there is no footer".into())
                })?;
            let footer = Header::read(&*file, at, name)?;
            if footer.gd_offset == GD_AT_END {
                return Err(corrupt(
                    "VMDK footer",
                    at,
                    format!("{name}: the footer does not give the grain directory"),
                ));
            }
            let mut marker = [0u8; 16];
            file.read_exact_at(at - 512, &mut marker)?;
            let kind = u32::from_le_bytes([marker[12], marker[13], marker[14], marker[15]]);
            if kind != MARKER_FOOTER {
                warnings.push(format!(
                    "{name}: no footer marker before the footer at {at:#x}"
                ));
            }
            header.gd_offset = footer.gd_offset;
            header.rgd_offset = footer.rgd_offset;
            header.flags = footer.flags;
        }
        if header.compressed() && header.flags & FLAG_MARKERS == 0 {
            return Err(unsupported("compressed grains without markers".into()));
        }
        if header.flags & FLAG_COMPRESSED != 0 && !header.compressed() {
            return Err(unsupported(
                "the compressed-grain flag is set but no compression algorithm is named".into(),
            ));
        }
        if header.grain_size == 0
            || header.grain_size > MAX_GRAIN_SECTORS
            || !header.grain_size.is_power_of_two()
        {
            return Err(bad(format!(
                "grain size {} sectors is not a power of two in 1..={MAX_GRAIN_SECTORS}",
                header.grain_size
            )));
        }
        if header.gtes_per_gt != GTES_PER_GT {
            return Err(bad(format!(
                "{} entries per grain table (must be {GTES_PER_GT})",
                header.gtes_per_gt
            )));
        }
        if header.unclean_shutdown {
            warnings.push(format!(
                "{name}: the image was not closed cleanly (uncleanShutdown is set)"
            ));
        }
        let grain_bytes = header.grain_size * 512;
        let capacity_bytes = sectors(header.capacity, "capacity", 0)?;
        let per_gt = u64::from(header.gtes_per_gt) * header.grain_size;
        let entries = header.capacity.div_ceil(per_gt);
        if entries > MAX_GD_ENTRIES {
            return Err(bad(format!(
                "capacity {} sectors needs {entries} grain tables (at most {MAX_GD_ENTRIES})",
                header.capacity
            )));
        }
        let gt_bytes = u64::from(header.gtes_per_gt) * 4;
        let load = |offset: u64, which: &str| -> Result<Vec<u32>, String> {
            let start = offset
                .checked_mul(512)
                .ok_or_else(|| format!("{which} grain directory offset {offset:#x} overflows"))?;
            let len = entries * 4;
            if offset == 0 || start.checked_add(len).is_none_or(|e| e > file_len) {
                return Err(format!(
                    "{which} grain directory at sector {offset:#x} ({len} bytes) lies outside the file ({file_len} bytes)"
                ));
            }
            let mut raw = vec![0u8; len as usize];
            file.read_exact_at(start, &mut raw)
                .map_err(|e| format!("{which} grain directory cannot be read: {e}"))?;
            let gd: Vec<u32> = raw
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            for (i, &gde) in gd.iter().enumerate() {
                let end = (u64::from(gde) * 512).checked_add(gt_bytes);
                if gde != 0 && end.is_none_or(|e| e > file_len) {
                    return Err(format!(
                        "{which} grain directory entry {i} points to a grain table at sector {gde:#x}, past the end of the file"
                    ));
                }
            }
            Ok(gd)
        };
        let gd = match load(header.gd_offset, "primary") {
            Ok(gd) => gd,
            // The redundant GD points to its own copies of the GTs, so it
            // can stand in for a damaged primary whole.
            Err(primary) if header.rgd_offset != 0 => match load(header.rgd_offset, "redundant") {
                Ok(gd) => {
                    warnings.push(format!(
                        "{name}: {primary}; using the redundant grain directory"
                    ));
                    gd
                }
                Err(redundant) => {
                    return Err(corrupt(
                        "VMDK grain directory",
                        header.gd_offset.saturating_mul(512),
                        format!("{name}: {primary}; {redundant}"),
                    ));
                }
            },
            Err(primary) => {
                return Err(corrupt(
                    "VMDK grain directory",
                    header.gd_offset.saturating_mul(512),
                    format!("{name}: {primary}"),
                ));
            }
        };
        Ok(Sparse {
            gt: BlockCache::new(file.clone(), 4096, GT_CACHE_BLOCKS),
            header,
            file,
            name: name.to_string(),
            gd,
            grain_bytes,
            capacity_bytes,
            warnings,
        })
    }

    /// The capacity in bytes.
    pub(crate) fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// The embedded descriptor's bytes, if the header names one.
    pub(crate) fn descriptor_bytes(&self) -> Result<Option<Vec<u8>>, ContainerError> {
        let (off, size) = (self.header.descriptor_offset, self.header.descriptor_size);
        if off == 0 || size == 0 {
            return Ok(None);
        }
        let start = off.checked_mul(512);
        let len = size.checked_mul(512);
        let (Some(start), Some(len)) = (start, len) else {
            return Err(corrupt(
                "VMDK sparse header",
                0,
                format!("{}: descriptor offset or size overflows", self.name),
            ));
        };
        let len = len.min(super::descriptor::MAX_DESCRIPTOR);
        if start.checked_add(len).is_none_or(|e| e > self.file.len()) {
            return Err(corrupt(
                "VMDK sparse header",
                0,
                format!(
                    "{}: the embedded descriptor (sector {off:#x}, {size} sectors) lies past the end of the file",
                    self.name
                ),
            ));
        }
        let mut b = vec![0u8; len as usize];
        self.file.read_exact_at(start, &mut b)?;
        Ok(Some(b))
    }

    /// The extent as a source of `len` bytes (at most the capacity) whose
    /// unallocated grains read from `parent` at `parent_base` + offset.
    pub(crate) fn into_source(self, len: u64, parent: Option<(Source, u64)>) -> Source {
        let compressed = self.header.compressed();
        let grain_bytes = self.grain_bytes;
        let reader = Arc::new(Reader {
            len: len.min(self.capacity_bytes),
            zero_grain: self.header.flags & FLAG_ZERO_GRAIN != 0,
            compressed,
            sparse: self,
            parent,
        });
        if compressed {
            let grains = (GRAIN_CACHE_BYTES as u64 / grain_bytes).max(4) as usize;
            Arc::new(BlockCache::new(reader, grain_bytes as usize, grains))
        } else {
            reader
        }
    }
}

/// Reads a sparse extent, grain by grain.
struct Reader {
    sparse: Sparse,
    len: u64,
    zero_grain: bool,
    compressed: bool,
    parent: Option<(Source, u64)>,
}

impl Reader {
    fn lookup(&self, grain: u64) -> Result<Grain, ContainerError> {
        let s = &self.sparse;
        let per_gt = u64::from(s.header.gtes_per_gt);
        let gdi = grain / per_gt;
        let gde = usize::try_from(gdi)
            .ok()
            .and_then(|i| s.gd.get(i))
            .copied()
            .ok_or_else(|| {
                corrupt(
                    "VMDK grain directory",
                    s.header.gd_offset.saturating_mul(512),
                    format!("{}: no entry for grain {grain}", s.name),
                )
            })?;
        if gde == 0 {
            return Ok(Grain::Unallocated);
        }
        // In bounds: every GD entry was checked against the file at open.
        let at = u64::from(gde) * 512 + (grain % per_gt) * 4;
        let mut b = [0u8; 4];
        s.gt.read_exact_at(at, &mut b).map_err(|e| {
            corrupt(
                "VMDK grain table",
                at,
                format!("{}: entry of grain {grain} cannot be read: {e}", s.name),
            )
        })?;
        let gte = u32::from_le_bytes(b);
        match gte {
            0 => Ok(Grain::Unallocated),
            // A GT entry of 1 points into the header: only ever a zeroed
            // grain (the flag may be missing in files of other tools).
            1 if self.zero_grain || !self.compressed => Ok(Grain::Zero),
            _ => {
                let start = u64::from(gte) * 512;
                let grain_start = grain * s.grain_bytes;
                let need = if self.compressed {
                    12
                } else {
                    s.grain_bytes.min(s.capacity_bytes - grain_start)
                };
                if start.checked_add(need).is_none_or(|e| e > s.file.len()) {
                    return Err(corrupt(
                        "VMDK grain table",
                        at,
                        format!(
                            "{}: grain {grain} (disk byte {grain_start:#x}) is at sector {gte:#x} (byte {start:#x}), past the end of the file ({} bytes)",
                            s.name,
                            s.file.len()
                        ),
                    ));
                }
                Ok(Grain::At(start))
            }
        }
    }

    /// Inflates compressed grain `grain`, whose marker is at `at`, into
    /// `out` (the whole grain, or what of it lies inside the capacity).
    fn inflate(&self, grain: u64, at: u64, out: &mut [u8]) -> Result<(), ContainerError> {
        let s = &self.sparse;
        let name = &s.name;
        let mut marker = [0u8; 12];
        s.file.read_exact_at(at, &mut marker)?;
        let mut lba = [0u8; 8];
        lba.copy_from_slice(&marker[..8]);
        let lba = u64::from_le_bytes(lba);
        let size = u32::from_le_bytes([marker[8], marker[9], marker[10], marker[11]]);
        let want_lba = grain * s.header.grain_size;
        if lba != want_lba {
            return Err(corrupt(
                "VMDK grain marker",
                at,
                format!("{name}: marker of grain {grain} says sector {lba:#x}, not {want_lba:#x}"),
            ));
        }
        // Deflate expands incompressible data by a few bytes per block.
        let limit = s.grain_bytes * 2 + 4096;
        let data_at = at + 12;
        if size == 0
            || u64::from(size) > limit
            || data_at
                .checked_add(u64::from(size))
                .is_none_or(|e| e > s.file.len())
        {
            return Err(corrupt(
                "VMDK grain marker",
                at,
                format!(
                    "{name}: compressed grain {grain} of {size} bytes is empty, too large or past the end of the file"
                ),
            ));
        }
        let mut input = vec![0u8; size as usize];
        s.file.read_exact_at(data_at, &mut input)?;
        let grain_start = grain * s.grain_bytes;
        let full = s.grain_bytes as usize;
        let short = clamp(grain_start, full, s.capacity_bytes);
        // zlib (RFC 1950) as VMware and qemu write it; raw deflate too.
        let zlib = input.len() >= 2
            && input[0] & 0x0f == 8
            && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
        let mut d = Decompress::new(zlib);
        let mut buf = vec![0u8; full];
        let bad = |detail: String| {
            corrupt(
                "VMDK compressed grain",
                data_at,
                format!("{name}: grain {grain}: {detail}"),
            )
        };
        let status = d
            .decompress(&input, &mut buf, FlushDecompress::Finish)
            .map_err(|e| bad(format!("invalid deflate data: {e}")))?;
        let produced = usize::try_from(d.total_out()).unwrap_or(usize::MAX);
        if status != Status::StreamEnd {
            return Err(bad(format!(
                "the deflate stream does not end within {size} bytes or inflates to more than {full} bytes"
            )));
        }
        if produced != full && produced != short {
            return Err(bad(format!(
                "inflates to {produced} bytes, not the grain size {full}"
            )));
        }
        let n = out.len().min(produced);
        out[..n].copy_from_slice(&buf[..n]);
        out[n..].fill(0);
        Ok(())
    }

    fn read_parent(&self, at: u64, out: &mut [u8]) -> io::Result<()> {
        let Some((parent, base)) = &self.parent else {
            out.fill(0);
            return Ok(());
        };
        let Some(pos) = base.checked_add(at) else {
            out.fill(0);
            return Ok(());
        };
        // A parent shorter than its child reads as zeros past its end.
        let n = clamp(pos, out.len(), parent.len());
        parent.read_exact_at(pos, &mut out[..n])?;
        out[n..].fill(0);
        Ok(())
    }
}

impl ReadAt for Reader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.len);
        let gb = self.sparse.grain_bytes;
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let grain = at / gb;
            let within = at % gb;
            let take = usize::try_from(gb - within).map_or(n - done, |left| left.min(n - done));
            let out = &mut buf[done..done + take];
            match self.lookup(grain)? {
                Grain::Unallocated => self.read_parent(at, out)?,
                Grain::Zero => out.fill(0),
                Grain::At(pos) if !self.compressed => {
                    self.sparse.file.read_exact_at(pos + within, out)?;
                }
                Grain::At(pos) => {
                    if within == 0 && take as u64 >= gb.min(self.sparse.capacity_bytes - at) {
                        self.inflate(grain, pos, out)?;
                    } else {
                        let mut whole = vec![0u8; gb as usize];
                        self.inflate(grain, pos, &mut whole)?;
                        let w = within as usize;
                        out.copy_from_slice(&whole[w..w + take]);
                    }
                }
            }
            done += take;
        }
        Ok(done)
    }
}
