//! VHD images (Microsoft "Virtual Hard Disk Image Format Specification",
//! 2006; behaviour checked against qemu's `block/vpc.c`): fixed, dynamic
//! and differencing disks.
//!
//! Every VHD ends with a 512-byte footer (big-endian, cookie `conectix`,
//! one's-complement byte-sum checksum); very old Virtual PC versions wrote
//! it as 511 bytes, which is accepted. A fixed disk is the file before the
//! footer. Dynamic and differencing disks keep a copy of the footer at
//! offset 0, a `cxsparse` header at the footer's data offset, and a block
//! allocation table (BAT) of big-endian sector numbers; each allocated block
//! is a sector bitmap (one bit per sector, most significant bit first,
//! rounded up to 512 bytes) followed by the block's data.
//!
//! Size: the footer's current size is the disk's size. qemu instead derives
//! the size from the CHS geometry for images whose creator is Virtual PC
//! (`vpc `) or old qemu (`qemu`), which can be smaller than current size;
//! Hyper-V, Windows and qemu itself with `force_size` (creator `qem2`) use
//! current size, and qemu writes current size = CHS size for its `qemu`
//! images, so both agree on every image qemu makes. We never truncate to the
//! geometry: a disk read with us is never shorter than the data it holds.
//!
//! Dynamic disks read allocated blocks whole, ignoring the bitmap, as qemu
//! does (a dynamic disk's unset bits cover sectors that read as zeros in the
//! block anyway). Differencing disks honour the bitmap: a clear bit, or an
//! unallocated block, reads from the parent, found through the parent
//! locators (`W2ru` relative, `W2ku` absolute, UTF-16LE; `MacX` file URLs)
//! and then the header's parent name.

pub(crate) mod blocks;

use std::io;
use std::sync::Arc;

use super::{Container, ContainerError, Context, Disk, ExtentInfo, Info, Probe, corrupt};
use crate::io::{ReadAt, Slice, Source};
use blocks::{Block, BlockDisk, BlockMap, utf16};

/// The VHD format.
pub struct Vhd;

const COOKIE: &[u8; 8] = b"conectix";
const HEADER_COOKIE: &[u8; 8] = b"cxsparse";
const FOOTER_LEN: u64 = 512;
const HEADER_LEN: usize = 1024;
const SECTOR: u64 = 512;
/// Blocks larger than this are taken for corruption (the specification's
/// default is 2 MiB; qemu and Hyper-V never exceed 256 MiB).
const MAX_BLOCK: u64 = 256 << 20;
/// A parent locator longer than this is not a path.
const MAX_LOCATOR: u64 = 64 << 10;

const FIXED: u32 = 2;
const DYNAMIC: u32 = 3;
const DIFFERENCING: u32 = 4;

fn be32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// One's complement of the byte sum, the checksum field counted as zero.
fn checksum(b: &[u8], field: usize) -> u32 {
    let sum = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
    !sum
}

/// A footer as read: its bytes (512, the 511-byte form padded) and where.
#[derive(Clone)]
pub(crate) struct Footer {
    bytes: [u8; 512],
    /// Its offset in the file.
    at: u64,
    /// 512, or 511 for the old form.
    len: u64,
}

impl Footer {
    fn data_offset(&self) -> u64 {
        be64(&self.bytes, 16)
    }
    fn current_size(&self) -> u64 {
        be64(&self.bytes, 48)
    }
    fn disk_type(&self) -> u32 {
        be32(&self.bytes, 60)
    }
    /// The disk's unique id, which a child records as its parent's.
    pub(crate) fn unique_id(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id.copy_from_slice(&self.bytes[68..84]);
        id
    }
}

/// Reads the footer candidate at `at`: the footer, or why it is refused.
fn read_footer(src: &dyn ReadAt, at: u64, len: u64) -> io::Result<Result<Footer, String>> {
    let mut bytes = [0u8; 512];
    src.read_exact_at(at, &mut bytes[..len as usize])?;
    if &bytes[..8] != COOKIE {
        return Ok(Err("no \"conectix\" cookie".into()));
    }
    let stored = be32(&bytes, 64);
    let sum = checksum(&bytes, 64);
    if stored != sum {
        return Ok(Err(format!(
            "checksum {stored:#010x}, computed {sum:#010x}"
        )));
    }
    Ok(Ok(Footer { bytes, at, len }))
}

/// The trailing footer (512 or 511 bytes), as read, or why not.
fn trailing_footer(src: &dyn ReadAt) -> io::Result<Result<Footer, String>> {
    let len = src.len();
    if len < FOOTER_LEN {
        return Ok(Err(format!(
            "the file is {len} bytes, too short for a footer"
        )));
    }
    let full = read_footer(src, len - FOOTER_LEN, FOOTER_LEN)?;
    if full.is_ok() {
        return Ok(full);
    }
    // The 511-byte footer of early Virtual PC versions.
    match read_footer(src, len - (FOOTER_LEN - 1), FOOTER_LEN - 1)? {
        Ok(f) => Ok(Ok(f)),
        Err(_) => Ok(full),
    }
}

/// The footer to use: the trailing one, else the copy at offset 0 (with a
/// warning), else an error naming both.
pub(crate) fn footer(
    src: &dyn ReadAt,
    warnings: &mut Vec<String>,
) -> Result<Footer, ContainerError> {
    let tail = trailing_footer(src)?;
    let tail_err = match tail {
        Ok(f) => return Ok(f),
        Err(e) => e,
    };
    let head = if src.len() >= 2 * FOOTER_LEN {
        read_footer(src, 0, FOOTER_LEN)?
    } else {
        Err("the file is too short for a copy".into())
    };
    match head {
        Ok(f) if f.disk_type() != FIXED => {
            warnings.push(format!(
                "the footer at the end of the file is damaged ({tail_err}); using its copy at offset 0"
            ));
            Ok(f)
        }
        Ok(_) => Err(corrupt(
            "VHD footer",
            src.len().saturating_sub(FOOTER_LEN),
            format!("{tail_err}, and the copy at offset 0 is of a fixed disk, which has none"),
        )),
        Err(head_err) => Err(corrupt(
            "VHD footer",
            src.len().saturating_sub(FOOTER_LEN),
            format!("{tail_err}; the copy at offset 0: {head_err}"),
        )),
    }
}

impl Container for Vhd {
    fn name(&self) -> &'static str {
        "VHD"
    }

    fn probe(&self, probe: &Probe<'_>) -> io::Result<bool> {
        if probe.head.starts_with(COOKIE) {
            return Ok(true);
        }
        // A fixed disk has only the trailing footer: look there only for a
        // name that says VHD, so probing other files stays one read.
        let name = probe.name_hint.to_ascii_lowercase();
        if !(name.ends_with(".vhd") || name.ends_with(".vpc")) {
            return Ok(false);
        }
        let len = probe.src.len();
        for tail in [FOOTER_LEN, FOOTER_LEN - 1] {
            if len >= tail {
                let mut cookie = [0u8; 8];
                probe.src.read_exact_at(len - tail, &mut cookie)?;
                if &cookie == COOKIE {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn open(&self, src: Source, _: &str, cx: &Context<'_>) -> Result<Disk, ContainerError> {
        let mut warnings = Vec::new();
        let footer = footer(&*src, &mut warnings)?;
        let size = footer.current_size();
        let mut disk = match footer.disk_type() {
            FIXED => open_fixed(src, &footer)?,
            DYNAMIC | DIFFERENCING => open_dynamic(src, &footer, cx)?,
            t => {
                return Err(ContainerError::Unsupported {
                    format: "VHD",
                    detail: format!("disk type {t} (2 fixed, 3 dynamic, 4 differencing)"),
                });
            }
        };
        debug_assert_eq!(disk.data.len(), size);
        warnings.append(&mut disk.info.warnings);
        disk.info.warnings = warnings;
        Ok(disk)
    }
}

fn open_fixed(src: Source, footer: &Footer) -> Result<Disk, ContainerError> {
    let size = footer.current_size();
    // The data ends where the trailing footer starts.
    let data_len = if footer.at == 0 {
        src.len().saturating_sub(FOOTER_LEN)
    } else {
        footer.at
    };
    if size > data_len {
        return Err(corrupt(
            "VHD footer",
            footer.at,
            format!("fixed disk of {size} bytes, but only {data_len} bytes precede the footer"),
        ));
    }
    let mut info = Info::new("VHD", "fixed", size);
    info.extents.push(ExtentInfo {
        kind: "fixed".into(),
        file: None,
        start: 0,
        len: size,
        file_offset: 0,
    });
    if footer.len == FOOTER_LEN - 1 {
        info.warnings.push("old 511-byte footer".into());
    }
    let data: Source = Arc::new(Slice::new(src, 0, size)?);
    Ok(Disk { data, info })
}

/// The BAT of a dynamic or differencing disk.
struct Bat {
    /// Sector numbers, one per block covering the disk.
    entries: Vec<u32>,
    /// Where the table is in the file.
    table: u64,
    block_size: u64,
    /// The bitmap's length before each block's data.
    bitmap_len: u64,
    differencing: bool,
    file_len: u64,
}

impl BlockMap for Bat {
    fn block(&self, index: u64) -> Result<Block, ContainerError> {
        let Some(&sector) = usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
        else {
            return Ok(Block::Zero);
        };
        if sector == u32::MAX {
            return Ok(if self.differencing {
                Block::Parent
            } else {
                Block::Zero
            });
        }
        let bitmap = u64::from(sector) * SECTOR;
        let data = bitmap + self.bitmap_len;
        let end = data + self.block_size;
        if end > self.file_len {
            return Err(corrupt(
                "VHD BAT",
                self.table + 4 * index,
                format!(
                    "entry {index} puts block {index} at sector {sector} (bytes {bitmap:#x}..{end:#x}), past the end of the file ({:#x} bytes)",
                    self.file_len
                ),
            ));
        }
        Ok(if self.differencing {
            Block::Partial { data, bitmap }
        } else {
            Block::Data { offset: data }
        })
    }
}

fn open_dynamic(src: Source, footer: &Footer, cx: &Context<'_>) -> Result<Disk, ContainerError> {
    let file_len = src.len();
    let size = footer.current_size();
    let differencing = footer.disk_type() == DIFFERENCING;
    let at = footer.data_offset();
    if at
        .checked_add(HEADER_LEN as u64)
        .is_none_or(|e| e > file_len)
    {
        return Err(corrupt(
            "VHD footer",
            footer.at,
            format!(
                "dynamic disk header at {at:#x} lies past the end of the file ({file_len:#x} bytes)"
            ),
        ));
    }
    let mut hdr = [0u8; HEADER_LEN];
    src.read_exact_at(at, &mut hdr)?;
    if &hdr[..8] != HEADER_COOKIE {
        return Err(corrupt(
            "VHD dynamic disk header",
            at,
            "no \"cxsparse\" cookie",
        ));
    }
    let (stored, sum) = (be32(&hdr, 36), checksum(&hdr, 36));
    if stored != sum {
        return Err(corrupt(
            "VHD dynamic disk header",
            at,
            format!("checksum {stored:#010x}, computed {sum:#010x}"),
        ));
    }
    let table = be64(&hdr, 16);
    let max_entries = u64::from(be32(&hdr, 28));
    let block_size = u64::from(be32(&hdr, 32));
    if !block_size.is_power_of_two() || !(SECTOR..=MAX_BLOCK).contains(&block_size) {
        return Err(corrupt(
            "VHD dynamic disk header",
            at,
            format!("block size {block_size} is not a power of two from 512 bytes to 256 MiB"),
        ));
    }
    let needed = size.div_ceil(block_size);
    if max_entries < needed {
        return Err(corrupt(
            "VHD dynamic disk header",
            at,
            format!(
                "{max_entries} BAT entries of {block_size} bytes cannot hold a disk of {size} bytes"
            ),
        ));
    }
    // Only the entries covering the disk are read; they must be in the
    // file, which bounds the allocation by the file's length.
    let bat_len = needed * 4;
    if table.checked_add(bat_len).is_none_or(|e| e > file_len) {
        return Err(corrupt(
            "VHD BAT",
            table,
            format!(
                "{needed} entries ({bat_len} bytes) at {table:#x} do not fit in the file ({file_len:#x} bytes)"
            ),
        ));
    }
    let mut raw = vec![0u8; bat_len as usize];
    src.read_exact_at(table, &mut raw)?;
    let entries: Vec<u32> = raw.chunks_exact(4).map(|c| be32(c, 0)).collect();
    let bitmap_len = (block_size / SECTOR).div_ceil(8).next_multiple_of(SECTOR);
    let allocated = entries.iter().filter(|&&e| e != u32::MAX).count();

    let variant = if differencing {
        "differencing"
    } else {
        "dynamic"
    };
    let mut info = Info::new("VHD", variant, size);
    info.extents.push(ExtentInfo {
        kind: format!("{variant}: {allocated} of {needed} blocks of {block_size} bytes allocated"),
        file: None,
        start: 0,
        len: size,
        file_offset: table,
    });
    let parent = if differencing {
        let (parent, name) = open_parent(&*src, &hdr, at, cx, &mut info.warnings)?;
        if parent.info.virtual_size != size {
            // Windows refuses this; reading on, a smaller parent reads as
            // zeros past its end.
            info.warnings.push(format!(
                "the parent {name:?} is {} bytes, this disk {size}",
                parent.info.virtual_size
            ));
        }
        info.parent_name = Some(name);
        let data = parent.data.clone();
        info.parent = Some(Box::new(parent.info));
        Some(data)
    } else {
        None
    };
    let data = BlockDisk {
        file: src,
        parent,
        map: Bat {
            entries,
            table,
            block_size,
            bitmap_len,
            differencing,
            file_len,
        },
        size,
        block_size,
        sector: SECTOR,
        msb_first: true,
    };
    Ok(Disk {
        data: Arc::new(data),
        info,
    })
}

/// Decodes a `MacX` locator: a UTF-8 file URL (`file://host/path`, percent
/// escapes) to its path.
fn file_url(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?.trim_end_matches('\0');
    let rest = text.strip_prefix("file://").unwrap_or(text);
    // Drop the host ("localhost" or empty).
    let path = if rest.starts_with('/') {
        rest
    } else {
        &rest[rest.find('/')?..]
    };
    let mut out = Vec::new();
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let escaped = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if b[i] == b'%' {
            if let Some(v) = escaped.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The parent's names in the order tried: relative locators, absolute
/// ones, then the header's unicode name.
fn parent_names(
    src: &dyn ReadAt,
    hdr: &[u8; HEADER_LEN],
    at: u64,
) -> Result<Vec<String>, ContainerError> {
    let mut relative = Vec::new();
    let mut absolute = Vec::new();
    for i in 0..8 {
        let e = 576 + 24 * i;
        let code = &hdr[e..e + 4];
        let len = u64::from(be32(hdr, e + 8));
        let offset = be64(hdr, e + 16);
        if code == [0; 4] || len == 0 {
            continue;
        }
        let slot = match code {
            b"W2ru" => &mut relative,
            b"W2ku" | b"MacX" => &mut absolute,
            _ => continue, // "Wi2r"/"Wi2k" (deprecated), "Mac " (an alias record)
        };
        if len > MAX_LOCATOR || offset.checked_add(len).is_none_or(|end| end > src.len()) {
            return Err(corrupt(
                "VHD parent locator",
                at + e as u64,
                format!(
                    "locator {i} names {len} bytes at {offset:#x}, outside the file ({:#x} bytes) or too long",
                    src.len()
                ),
            ));
        }
        let mut bytes = vec![0u8; len as usize];
        src.read_exact_at(offset, &mut bytes)?;
        let name = if code == b"MacX" {
            file_url(&bytes)
        } else {
            Some(utf16(&bytes, false))
        };
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            slot.push(n);
        }
    }
    let mut names = relative;
    names.append(&mut absolute);
    let unicode = utf16(&hdr[64..576], true);
    if !unicode.is_empty() {
        names.push(unicode);
    }
    names.dedup();
    if names.is_empty() {
        return Err(corrupt(
            "VHD dynamic disk header",
            at,
            "a differencing disk that names no parent",
        ));
    }
    Ok(names)
}

/// Opens the parent of a differencing disk: the first name that opens.
fn open_parent(
    src: &dyn ReadAt,
    hdr: &[u8; HEADER_LEN],
    at: u64,
    cx: &Context<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Disk, String), ContainerError> {
    let names = parent_names(src, hdr, at)?;
    let mut first_err = None;
    for name in names {
        let file = match cx.sibling("VHD", &name) {
            Ok(f) => f,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let parent = cx.open_parent("VHD", &name)?;
        if parent.info.format != "VHD" {
            warnings.push(format!(
                "the parent {name:?} is a {} image, not a VHD",
                parent.info.format
            ));
        } else {
            let want = &hdr[40..56];
            let mut ignore = Vec::new();
            match footer(&*file, &mut ignore) {
                Ok(f) if f.unique_id() != want => warnings.push(format!(
                    "the parent {name:?} has unique id {}, but this disk's parent is {}",
                    hex(&f.unique_id()),
                    hex(want)
                )),
                _ => {}
            }
        }
        return Ok((parent, name));
    }
    Err(first_err.unwrap_or_else(|| corrupt("VHD dynamic disk header", at, "no parent name")))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests;
