//! VHDX images ([MS-VHDX] v1.0; behaviour checked against qemu's
//! `block/vhdx*.c`): fixed, dynamic and differencing disks.
//!
//! Layout: the file type identifier `vhdxfile` at 0; two headers at 64 and
//! 128 KiB (`head`, CRC-32C, the valid one with the larger sequence number
//! is current); two copies of the region table at 192 and 256 KiB (`regi`,
//! CRC-32C) locating the BAT and the metadata region; the metadata table
//! (`metadata`) with the file parameters, sizes and, for differencing disks,
//! the parent locator. All little-endian, all GUIDs in Microsoft's
//! mixed-endian layout.
//!
//! The BAT has 64-bit entries (state in bits 0–2, file offset in MiB in bits
//! 20–63); after every chunk of `2^23 × logical sector size / block size`
//! payload entries comes one sector-bitmap entry. A payload block reads as
//! zeros (NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED; NOT_PRESENT reads the
//! parent in a differencing disk), from this file (FULLY_PRESENT), or in a
//! differencing disk sector by sector per the chunk's bitmap, least
//! significant bit first (PARTIALLY_PRESENT): set reads here, clear from the
//! parent.
//!
//! Log policy: a header whose LogGuid is not zero says the log holds
//! entries that were never applied (the writer stopped first). We replay
//! the log's active sequence in memory (`log.rs`): an overlay over the
//! file, through which everything else is read, and a warning; the image
//! is never written. A log that cannot be replayed (no valid sequence,
//! written to a longer file, larger than 64 MiB) is refused with
//! [`ContainerError::LogNeedsReplay`] rather than read stale.

use std::io;
use std::sync::Arc;

use super::vhd::blocks::{Block, BlockDisk, BlockMap, utf16};
use super::{Container, ContainerError, Context, Disk, ExtentInfo, Info, Probe, corrupt};
use crate::crc32c::crc32c;
use crate::io::{ReadAt, Source};

/// The VHDX format.
pub struct Vhdx;

const SIGNATURE: &[u8; 8] = b"vhdxfile";
const KIB: u64 = 1024;
const MIB: u64 = 1 << 20;
const HEADERS: [u64; 2] = [64 * KIB, 128 * KIB];
const HEADER_LEN: usize = 4096;
const REGION_TABLES: [u64; 2] = [192 * KIB, 256 * KIB];
const REGION_TABLE_LEN: usize = 64 * KIB as usize;
const METADATA_TABLE_LEN: usize = 64 * KIB as usize;
/// The largest virtual disk the specification allows (64 TiB).
const MAX_VIRTUAL: u64 = 64 << 40;
/// A parent locator larger than this is not a list of paths.
const MAX_LOCATOR: u32 = 64 * KIB as u32;

/// A GUID as its 16 bytes in the file (mixed-endian).
type Guid = [u8; 16];

/// Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into the on-disk layout,
/// at compile time.
const fn guid(s: &str) -> Guid {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("bad GUID literal"),
        }
    }
    let b = s.as_bytes();
    let mut v = [0u8; 16];
    let mut i = 0;
    let mut n = 0;
    while i < b.len() {
        if b[i] != b'-' {
            v[n / 2] |= nibble(b[i]) << if n % 2 == 0 { 4 } else { 0 };
            n += 1;
        }
        i += 1;
    }
    // Data1, Data2, Data3 are little-endian on disk.
    [
        v[3], v[2], v[1], v[0], v[5], v[4], v[7], v[6], v[8], v[9], v[10], v[11], v[12], v[13],
        v[14], v[15],
    ]
}

/// Formats an on-disk GUID as Windows writes it in parent_linkage.
fn guid_string(g: &Guid) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

const BAT_REGION: Guid = guid("2DC27766-F623-4200-9D64-115E9BFD4A08");
const METADATA_REGION: Guid = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E");
const FILE_PARAMETERS: Guid = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
const VIRTUAL_DISK_SIZE: Guid = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
const PAGE_83_DATA: Guid = guid("BECA12AB-B2E6-4523-93EF-C309E000C746");
const LOGICAL_SECTOR_SIZE: Guid = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
const PHYSICAL_SECTOR_SIZE: Guid = guid("CDA348C7-445D-4471-9CC9-E9885251C556");
const PARENT_LOCATOR: Guid = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");
const VHDX_PARENT_LOCATOR_TYPE: Guid = guid("B04AEFB7-D19E-4A81-B789-25B8E9445913");

/// True if the 4-byte checksum at `field` is the CRC-32C of `buf` with the
/// field zeroed.
fn crc_ok(buf: &mut [u8], field: usize) -> (bool, u32, u32) {
    let stored = le32(buf, field);
    buf[field..field + 4].fill(0);
    let sum = crc32c(buf);
    buf[field..field + 4].copy_from_slice(&stored.to_le_bytes());
    (stored == sum, stored, sum)
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn guid_at(b: &[u8], at: usize) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    g
}

/// The fields of a header this reader uses.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    sequence: u64,
    data_write_guid: Guid,
    log_guid: Guid,
    log_length: u32,
    log_offset: u64,
}

fn read_header(src: &dyn ReadAt, at: u64) -> Result<Result<Header, String>, ContainerError> {
    let mut h = vec![0u8; HEADER_LEN];
    src.read_exact_at(at, &mut h)?;
    if &h[..4] != b"head" {
        return Ok(Err("no \"head\" signature".into()));
    }
    let (ok, stored, sum) = crc_ok(&mut h, 4);
    if !ok {
        return Ok(Err(format!("CRC-32C {stored:#010x}, computed {sum:#010x}")));
    }
    let version = le16(&h, 66);
    if version != 1 {
        return Ok(Err(format!("version {version}, not 1")));
    }
    Ok(Ok(Header {
        sequence: le64(&h, 8),
        data_write_guid: guid_at(&h, 32),
        log_guid: guid_at(&h, 48),
        log_length: le32(&h, 68),
        log_offset: le64(&h, 72),
    }))
}

/// The current header: the valid one with the larger sequence number; one
/// damaged header is a warning, two an error naming both.
pub(crate) fn current_header(
    src: &dyn ReadAt,
    warnings: &mut Vec<String>,
) -> Result<Header, ContainerError> {
    if src.len() < REGION_TABLES[1] + REGION_TABLE_LEN as u64 {
        return Err(corrupt(
            "VHDX header",
            0,
            format!(
                "the file is {} bytes, too short for the header section",
                src.len()
            ),
        ));
    }
    let a = read_header(src, HEADERS[0])?;
    let b = read_header(src, HEADERS[1])?;
    match (a, b) {
        (Ok(a), Ok(b)) => Ok(if b.sequence > a.sequence { b } else { a }),
        (Ok(h), Err(e)) => {
            warnings.push(format!(
                "the VHDX header at 128 KiB is damaged ({e}); using the one at 64 KiB"
            ));
            Ok(h)
        }
        (Err(e), Ok(h)) => {
            warnings.push(format!(
                "the VHDX header at 64 KiB is damaged ({e}); using the one at 128 KiB"
            ));
            Ok(h)
        }
        (Err(a), Err(b)) => Err(corrupt(
            "VHDX header",
            HEADERS[0],
            format!("both headers are damaged: at 64 KiB {a}; at 128 KiB {b}"),
        )),
    }
}

/// A region table entry's place in the file.
#[derive(Clone, Copy)]
struct Region {
    offset: u64,
    len: u64,
}

/// The BAT and metadata regions from the first valid region table.
fn regions(
    src: &dyn ReadAt,
    warnings: &mut Vec<String>,
) -> Result<(Region, Region), ContainerError> {
    let mut errors = Vec::new();
    for (i, &at) in REGION_TABLES.iter().enumerate() {
        let mut t = vec![0u8; REGION_TABLE_LEN];
        src.read_exact_at(at, &mut t)?;
        if &t[..4] != b"regi" {
            errors.push(format!("at {at:#x}: no \"regi\" signature"));
            continue;
        }
        let (ok, stored, sum) = crc_ok(&mut t, 4);
        if !ok {
            errors.push(format!(
                "at {at:#x}: CRC-32C {stored:#010x}, computed {sum:#010x}"
            ));
            continue;
        }
        if i > 0 {
            warnings.push(format!(
                "the first region table is damaged ({}); using the copy",
                errors.join("; ")
            ));
        }
        return parse_regions(src, &t, at);
    }
    Err(corrupt(
        "VHDX region table",
        REGION_TABLES[0],
        format!("both copies are damaged: {}", errors.join("; ")),
    ))
}

fn parse_regions(src: &dyn ReadAt, t: &[u8], at: u64) -> Result<(Region, Region), ContainerError> {
    let count = le32(t, 8);
    if count > 2047 {
        return Err(corrupt(
            "VHDX region table",
            at,
            format!("{count} entries (at most 2047)"),
        ));
    }
    let (mut bat, mut meta) = (None, None);
    for i in 0..count as usize {
        let e = &t[16 + 32 * i..48 + 32 * i];
        let id = guid_at(e, 0);
        let region = Region {
            offset: le64(e, 16),
            len: u64::from(le32(e, 24)),
        };
        let required = le32(e, 28) & 1 != 0;
        let slot = match id {
            BAT_REGION => &mut bat,
            METADATA_REGION => &mut meta,
            _ if required => {
                return Err(ContainerError::Unsupported {
                    format: "VHDX",
                    detail: format!("required region {}", guid_string(&id)),
                });
            }
            _ => continue,
        };
        if region.offset % MIB != 0
            || region.offset < MIB
            || region
                .offset
                .checked_add(region.len)
                .is_none_or(|e| e > src.len())
        {
            return Err(corrupt(
                "VHDX region table",
                at + 16 + 32 * i as u64,
                format!(
                    "region {} at {:#x}, {} bytes, is not 1 MiB-aligned after the header section inside the file ({:#x} bytes)",
                    guid_string(&id),
                    region.offset,
                    region.len,
                    src.len()
                ),
            ));
        }
        *slot = Some(region);
    }
    match (bat, meta) {
        (Some(b), Some(m)) => Ok((b, m)),
        _ => Err(corrupt(
            "VHDX region table",
            at,
            "no BAT or no metadata region",
        )),
    }
}

/// What the metadata region says.
struct Metadata {
    block_size: u64,
    leave_allocated: bool,
    has_parent: bool,
    virtual_size: u64,
    logical_sector: u32,
    /// Parent locator key/value pairs.
    locator: Vec<(String, String)>,
}

fn metadata(src: &dyn ReadAt, region: Region) -> Result<Metadata, ContainerError> {
    let at = region.offset;
    if region.len < METADATA_TABLE_LEN as u64 {
        return Err(corrupt(
            "VHDX metadata table",
            at,
            format!("the region is {} bytes, less than its table", region.len),
        ));
    }
    let mut t = vec![0u8; METADATA_TABLE_LEN];
    src.read_exact_at(at, &mut t)?;
    if &t[..8] != b"metadata" {
        return Err(corrupt(
            "VHDX metadata table",
            at,
            "no \"metadata\" signature",
        ));
    }
    let count = usize::from(le16(&t, 10));
    if count > 2047 {
        return Err(corrupt(
            "VHDX metadata table",
            at,
            format!("{count} entries (at most 2047)"),
        ));
    }
    let mut found: Vec<(Guid, Vec<u8>)> = Vec::new();
    for i in 0..count {
        let e = &t[32 + 32 * i..64 + 32 * i];
        let id = guid_at(e, 0);
        let offset = le32(e, 16);
        let len = le32(e, 20);
        let flags = le32(e, 24);
        let is_user = flags & 1 != 0;
        let required = flags & 4 != 0;
        let known = !is_user
            && [
                FILE_PARAMETERS,
                VIRTUAL_DISK_SIZE,
                PAGE_83_DATA,
                LOGICAL_SECTOR_SIZE,
                PHYSICAL_SECTOR_SIZE,
                PARENT_LOCATOR,
            ]
            .contains(&id);
        if !known {
            if required {
                return Err(ContainerError::Unsupported {
                    format: "VHDX",
                    detail: format!("required metadata item {}", guid_string(&id)),
                });
            }
            continue;
        }
        let entry_at = at + 32 + 32 * i as u64;
        let max = if id == PARENT_LOCATOR {
            MAX_LOCATOR
        } else {
            64
        };
        if len > max
            || (len > 0 && u64::from(offset) < METADATA_TABLE_LEN as u64)
            || u64::from(offset) + u64::from(len) > region.len
        {
            return Err(corrupt(
                "VHDX metadata table",
                entry_at,
                format!(
                    "item {} at {offset:#x}, {len} bytes, lies outside the metadata region or is too long",
                    guid_string(&id)
                ),
            ));
        }
        let mut data = vec![0u8; len as usize];
        src.read_exact_at(at + u64::from(offset), &mut data)?;
        found.push((id, data));
    }
    let item = |id: Guid, name: &str, len: usize| -> Result<&[u8], ContainerError> {
        match found.iter().find(|(g, _)| *g == id) {
            Some((_, d)) if d.len() >= len => Ok(d),
            Some(_) => Err(corrupt(
                "VHDX metadata table",
                at,
                format!("the {name} item is shorter than {len} bytes"),
            )),
            None => Err(corrupt(
                "VHDX metadata table",
                at,
                format!("no {name} item"),
            )),
        }
    };
    let params = item(FILE_PARAMETERS, "file parameters", 8)?;
    let block_size = u64::from(le32(params, 0));
    let bits = le32(params, 4);
    let virtual_size = le64(item(VIRTUAL_DISK_SIZE, "virtual disk size", 8)?, 0);
    let logical_sector = le32(item(LOGICAL_SECTOR_SIZE, "logical sector size", 4)?, 0);
    if !block_size.is_power_of_two() || !(MIB..=256 * MIB).contains(&block_size) {
        return Err(corrupt(
            "VHDX file parameters",
            at,
            format!("block size {block_size} is not a power of two from 1 MiB to 256 MiB"),
        ));
    }
    if logical_sector != 512 && logical_sector != 4096 {
        return Err(corrupt(
            "VHDX logical sector size",
            at,
            format!("{logical_sector} (512 or 4096)"),
        ));
    }
    if virtual_size > MAX_VIRTUAL || virtual_size % u64::from(logical_sector) != 0 {
        return Err(corrupt(
            "VHDX virtual disk size",
            at,
            format!(
                "{virtual_size} bytes is more than 64 TiB or not a multiple of the {logical_sector}-byte sector"
            ),
        ));
    }
    let has_parent = bits & 2 != 0;
    let locator = match found.iter().find(|(g, _)| *g == PARENT_LOCATOR) {
        Some((_, d)) if has_parent => parent_locator(d, at)?,
        _ if has_parent => {
            return Err(corrupt(
                "VHDX metadata table",
                at,
                "a differencing disk without a parent locator",
            ));
        }
        _ => Vec::new(),
    };
    Ok(Metadata {
        block_size,
        leave_allocated: bits & 1 != 0,
        has_parent,
        virtual_size,
        logical_sector,
        locator,
    })
}

/// The key/value pairs of a VHDX parent locator item.
fn parent_locator(d: &[u8], at: u64) -> Result<Vec<(String, String)>, ContainerError> {
    let bad = |detail: String| corrupt("VHDX parent locator", at, detail);
    if d.len() < 20 {
        return Err(bad(format!("{} bytes, shorter than its header", d.len())));
    }
    if guid_at(d, 0) != VHDX_PARENT_LOCATOR_TYPE {
        return Err(ContainerError::Unsupported {
            format: "VHDX",
            detail: format!("parent locator type {}", guid_string(&guid_at(d, 0))),
        });
    }
    let count = usize::from(le16(d, 18));
    let mut pairs = Vec::new();
    for i in 0..count {
        let e = 20 + 12 * i;
        let Some(entry) = d.get(e..e + 12) else {
            return Err(bad(format!("entry {i} lies past the item's end")));
        };
        let text = |offset: u32, len: u16| {
            let (o, l) = (offset as usize, usize::from(len));
            d.get(o..o + l)
                .map(|b| utf16(b, false))
                .ok_or_else(|| bad(format!("entry {i} names bytes past the item's end")))
        };
        let key = text(le32(entry, 0), le16(entry, 8))?;
        let value = text(le32(entry, 4), le16(entry, 10))?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// The BAT, held in memory (bounded by the file, which must hold it).
struct Bat {
    entries: Vec<u64>,
    /// Where the BAT is in the file.
    table: u64,
    block_size: u64,
    virtual_size: u64,
    chunk_ratio: u64,
    /// Sectors per block.
    sectors: u64,
    differencing: bool,
    file_len: u64,
}

const NOT_PRESENT: u64 = 0;
const UNDEFINED: u64 = 1;
const ZERO: u64 = 2;
const UNMAPPED: u64 = 3;
const FULLY_PRESENT: u64 = 6;
const PARTIALLY_PRESENT: u64 = 7;

impl Bat {
    fn entry(&self, i: u64) -> Result<(u64, u64), ContainerError> {
        let e = usize::try_from(i)
            .ok()
            .and_then(|i| self.entries.get(i))
            .copied()
            .ok_or_else(|| corrupt("VHDX BAT", self.table, format!("no entry {i}")))?;
        Ok((e & 7, (e >> 20) << 20))
    }

    fn bad(&self, i: u64, detail: String) -> ContainerError {
        corrupt(
            "VHDX BAT",
            self.table + 8 * i,
            format!("entry {i}: {detail}"),
        )
    }

    /// Checks that `len` bytes at `offset` lie after the header section and
    /// inside the file.
    fn in_file(&self, i: u64, offset: u64, len: u64) -> Result<(), ContainerError> {
        if offset < MIB || offset.checked_add(len).is_none_or(|e| e > self.file_len) {
            return Err(self.bad(
                i,
                format!(
                    "{len} bytes at {offset:#x} lie outside the file's data ({:#x} bytes)",
                    self.file_len
                ),
            ));
        }
        Ok(())
    }
}

impl BlockMap for Bat {
    fn block(&self, index: u64) -> Result<Block, ContainerError> {
        let i = index + index / self.chunk_ratio;
        let (state, offset) = self.entry(i)?;
        match state {
            NOT_PRESENT if self.differencing => Ok(Block::Parent),
            NOT_PRESENT | UNDEFINED | ZERO | UNMAPPED => Ok(Block::Zero),
            FULLY_PRESENT => {
                // The last block may be cut short by the disk's end.
                let len = self
                    .block_size
                    .min(self.virtual_size - index * self.block_size);
                self.in_file(i, offset, len)?;
                Ok(Block::Data { offset })
            }
            PARTIALLY_PRESENT if self.differencing => {
                let len = self
                    .block_size
                    .min(self.virtual_size - index * self.block_size);
                self.in_file(i, offset, len)?;
                let chunk = index / self.chunk_ratio;
                let sb = chunk * (self.chunk_ratio + 1) + self.chunk_ratio;
                let (sb_state, sb_offset) = self.entry(sb)?;
                if sb_state != FULLY_PRESENT {
                    return Err(self.bad(
                        sb,
                        format!(
                            "block {index} is partially present, but its sector bitmap's state is {sb_state}"
                        ),
                    ));
                }
                self.in_file(sb, sb_offset, MIB)?;
                let bit = (index % self.chunk_ratio) * self.sectors;
                Ok(Block::Partial {
                    data: offset,
                    bitmap: sb_offset + bit / 8,
                })
            }
            PARTIALLY_PRESENT => Err(self.bad(
                i,
                "a partially present block in a disk without a parent".into(),
            )),
            s => Err(self.bad(i, format!("payload block state {s}"))),
        }
    }
}

impl Container for Vhdx {
    fn name(&self) -> &'static str {
        "VHDX"
    }

    fn probe(&self, probe: &Probe<'_>) -> io::Result<bool> {
        Ok(probe.head.starts_with(SIGNATURE))
    }

    fn open(&self, src: Source, _: &str, cx: &Context<'_>) -> Result<Disk, ContainerError> {
        let mut warnings = Vec::new();
        let header = current_header(&*src, &mut warnings)?;
        let src: Source = if header.log_guid != [0; 16] {
            let overlay = log::replay(src, &header)?;
            warnings.push(format!(
                "replayed the log {} in memory ({} writes); the file itself still needs replay",
                guid_string(&header.log_guid),
                overlay.writes()
            ));
            Arc::new(overlay)
        } else {
            src
        };
        let (bat_region, meta_region) = regions(&*src, &mut warnings)?;
        let meta = metadata(&*src, meta_region)?;
        let file_len = src.len();
        let block_size = meta.block_size;
        let lss = u64::from(meta.logical_sector);
        let chunk_ratio = (1u64 << 23) * lss / block_size;
        let payload = meta.virtual_size.div_ceil(block_size);
        let total = if meta.has_parent {
            payload.div_ceil(chunk_ratio) * (chunk_ratio + 1)
        } else {
            payload + payload.saturating_sub(1) / chunk_ratio
        };
        // The BAT must fit in its region (inside the file): this bounds the
        // allocation by the file's length.
        if total.saturating_mul(8) > bat_region.len {
            return Err(corrupt(
                "VHDX BAT",
                bat_region.offset,
                format!(
                    "{total} entries ({} bytes) do not fit in the BAT region of {} bytes",
                    total.saturating_mul(8),
                    bat_region.len
                ),
            ));
        }
        let mut raw = vec![0u8; (total * 8) as usize];
        src.read_exact_at(bat_region.offset, &mut raw)?;
        let entries: Vec<u64> = raw.chunks_exact(8).map(|c| le64(c, 0)).collect();

        let variant = if meta.has_parent {
            "differencing"
        } else if meta.leave_allocated {
            "fixed"
        } else {
            "dynamic"
        };
        let mut info = Info::new("VHDX", variant, meta.virtual_size);
        info.logical_sector_size = Some(meta.logical_sector);
        let (mut full, mut partial) = (0u64, 0u64);
        for b in 0..payload {
            let i = usize::try_from(b + b / chunk_ratio).unwrap_or(usize::MAX);
            match entries.get(i).map_or(0, |e| e & 7) {
                FULLY_PRESENT => full += 1,
                PARTIALLY_PRESENT => partial += 1,
                _ => {}
            }
        }
        info.extents.push(ExtentInfo {
            kind: format!(
                "{variant}: {full} of {payload} blocks of {block_size} bytes present, {partial} partially"
            ),
            file: None,
            start: 0,
            len: meta.virtual_size,
            file_offset: bat_region.offset,
        });
        let parent = if meta.has_parent {
            let (disk, name) = open_parent(&meta.locator, cx, &mut info.warnings)?;
            if disk.info.virtual_size != meta.virtual_size {
                info.warnings.push(format!(
                    "the parent {name:?} is {} bytes, this disk {}",
                    disk.info.virtual_size, meta.virtual_size
                ));
            }
            info.parent_name = Some(name);
            let data = disk.data.clone();
            info.parent = Some(Box::new(disk.info));
            Some(data)
        } else {
            None
        };
        warnings.append(&mut info.warnings);
        info.warnings = warnings;
        let data = BlockDisk {
            file: src,
            parent,
            map: Bat {
                entries,
                table: bat_region.offset,
                block_size,
                virtual_size: meta.virtual_size,
                chunk_ratio,
                sectors: block_size / lss,
                differencing: meta.has_parent,
                file_len,
            },
            size: meta.virtual_size,
            block_size,
            sector: lss,
            msb_first: false,
        };
        Ok(Disk {
            data: Arc::new(data),
            info,
        })
    }
}

/// Opens the parent named by the locator: `relative_path`, then
/// `absolute_win32_path`, then `volume_path`; checks `parent_linkage`
/// against the parent's DataWriteGuid.
fn open_parent(
    locator: &[(String, String)],
    cx: &Context<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Disk, String), ContainerError> {
    let get = |k: &str| {
        locator
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let names: Vec<&str> = ["relative_path", "absolute_win32_path", "volume_path"]
        .iter()
        .filter_map(|k| get(k))
        .filter(|n| !n.is_empty())
        .collect();
    let mut first_err = None;
    for name in names {
        let file = match cx.sibling("VHDX", name) {
            Ok(f) => f,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let parent = cx.open_parent("VHDX", name)?;
        if parent.info.format != "VHDX" {
            warnings.push(format!(
                "the parent {name:?} is a {} image, not a VHDX",
                parent.info.format
            ));
        } else if let Ok(h) = current_header(&*file, &mut Vec::new()) {
            let have = guid_string(&h.data_write_guid);
            let linked = |k: &str| {
                get(k).is_some_and(|v| v.trim_matches(['{', '}']).eq_ignore_ascii_case(&have))
            };
            if !linked("parent_linkage") && !linked("parent_linkage2") {
                warnings.push(format!(
                    "the parent {name:?} has DataWriteGuid {{{have}}}, but this disk's parent_linkage is {}",
                    get("parent_linkage").unwrap_or("missing")
                ));
            }
        }
        return Ok((parent, name.to_string()));
    }
    Err(first_err.unwrap_or_else(|| {
        corrupt(
            "VHDX parent locator",
            0,
            "names no relative_path, absolute_win32_path or volume_path",
        )
    }))
}

mod log;

#[cfg(test)]
mod tests;
