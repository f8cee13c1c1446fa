//! JBD2 journal replay, in memory: the committed transactions of an
//! internal journal that needs recovery, applied as the kernel's recovery
//! does on mount, but as an overlay over the volume (which is never
//! written).
//!
//! Everything in the journal is big-endian. The log lies in journal blocks
//! `s_first..s_maxlen` (less the fast-commit area), circularly, from
//! `s_start` with sequence `s_sequence`. Each transaction is descriptor
//! blocks (each a list of tags, each tag naming the filesystem block the
//! next log block is a copy of), revoke blocks, and a commit block. The
//! three passes of the kernel's recovery are followed:
//!
//! - the scan for the end of the log: a block without the magic, of
//!   another sequence or of an unknown type ends it, and so does, under
//!   csum v2/v3, a descriptor, revoke or commit block failing its checksum,
//!   or, with the old compat checksum, a commit block whose CRC-32 of the
//!   transaction differs; a trailing transaction without its commit block
//!   is not applied;
//! - the revoke records of the committed transactions: a block keeps the
//!   highest sequence revoking it;
//! - the replay: a tagged block revoked by the same or a later transaction
//!   is skipped, a copy failing its tag checksum is skipped with a
//!   warning, the newest copy wins.
//!
//! The result is a map from filesystem block to the byte offset of its copy
//! in the journal, served by [`Overlay`].
//!
//! Sources: the kernel's `Documentation/filesystems/ext4/journal.rst`
//! ("Journal (jbd2)": the superblock, block header, descriptor, tag, revoke
//! and commit layouts, the feature flags and checksums) and the recovery
//! passes it describes. No code was taken from it.

use std::collections::HashMap;
use std::io;

use crate::crc32c::update;
use crate::io::{ReadAt, Source, clamp};

/// The journal block header's magic.
pub(crate) const MAGIC: u32 = 0xC03B_3998;

const DESCRIPTOR: u32 = 1;
const COMMIT: u32 = 2;
const SUPERBLOCK_V1: u32 = 3;
const SUPERBLOCK_V2: u32 = 4;
const REVOKE: u32 = 5;

/// The old whole-transaction checksum (CRC-32, big-endian) in the
/// commit block.
const COMPAT_CHECKSUM: u32 = 0x1;
/// Its checksum type and size in the commit block.
const CRC32_TYPE: u8 = 1;
const CRC32_SIZE: u8 = 4;

const INCOMPAT_REVOKE: u32 = 0x1;
const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
const INCOMPAT_CSUM_V2: u32 = 0x8;
const INCOMPAT_CSUM_V3: u32 = 0x10;
const INCOMPAT_FAST_COMMIT: u32 = 0x20;
const INCOMPAT_KNOWN: u32 = INCOMPAT_REVOKE
    | INCOMPAT_64BIT
    | INCOMPAT_ASYNC_COMMIT
    | INCOMPAT_CSUM_V2
    | INCOMPAT_CSUM_V3
    | INCOMPAT_FAST_COMMIT;
/// The checksum type of csum v2/v3: CRC-32C.
const CRC32C: u8 = 4;
/// Fast-commit blocks when the superblock gives none.
const DEFAULT_FC_BLOCKS: u32 = 256;

/// Tag flags.
pub(crate) const FLAG_ESCAPE: u32 = 0x1;
pub(crate) const FLAG_SAME_UUID: u32 = 0x2;
pub(crate) const FLAG_LAST_TAG: u32 = 0x8;

/// Revoke records kept at most (the map is bounded; past it the log is
/// cut there).
const MAX_REVOKES: usize = 1 << 22;
/// Warnings about single blocks kept at most; the rest are counted.
const MAX_BLOCK_WARNINGS: usize = 8;

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

/// The journal superblock's facts recovery needs.
#[derive(Clone, Debug)]
pub(crate) struct JournalSb {
    pub block_size: u32,
    /// First log block and one past the last (before wrapping).
    pub first: u32,
    pub last: u32,
    pub sequence: u32,
    /// First block of the log to replay; 0 when the journal is clean.
    pub start: u32,
    pub incompat: u32,
    pub compat: u32,
    /// The CRC-32C seed of csum v2/v3 (from the journal UUID).
    pub csum_seed: u32,
}

impl JournalSb {
    /// Parses the journal superblock (the journal's block 0); `len_blocks`
    /// is the journal's length in blocks. Errors say what is wrong.
    pub(crate) fn parse(b: &[u8], len_blocks: u64) -> Result<JournalSb, String> {
        if b.len() < 1024 {
            return Err(format!("a superblock of {} bytes", b.len()));
        }
        let magic = be32(b, 0);
        if magic != MAGIC {
            return Err(format!("bad superblock magic {magic:#010x}"));
        }
        let kind = be32(b, 4);
        let v2 = match kind {
            SUPERBLOCK_V1 => false,
            SUPERBLOCK_V2 => true,
            k => return Err(format!("superblock of block type {k}")),
        };
        let block_size = be32(b, 0xC);
        if !(1024..=65536).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(format!("block size {block_size}"));
        }
        let maxlen = be32(b, 0x10);
        let first = be32(b, 0x14);
        if first == 0 || first >= maxlen {
            return Err(format!("log blocks {first}..{maxlen}"));
        }
        if u64::from(maxlen) > len_blocks {
            return Err(format!(
                "{maxlen} blocks, but the journal inode holds {len_blocks}"
            ));
        }
        let (compat, incompat, seed_ok) = if v2 {
            (be32(b, 0x24), be32(b, 0x28), true)
        } else {
            (0, 0, false)
        };
        let unknown = incompat & !INCOMPAT_KNOWN;
        if unknown != 0 {
            return Err(format!("unknown incompatible features {unknown:#x}"));
        }
        if incompat & INCOMPAT_CSUM_V2 != 0 && incompat & INCOMPAT_CSUM_V3 != 0 {
            return Err("both checksum v2 and v3".into());
        }
        let mut csum_seed = 0;
        if incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0 && seed_ok {
            if b[0x50] != CRC32C {
                return Err(format!("checksum type {} (wanted 4, CRC-32C)", b[0x50]));
            }
            let stored = be32(b, 0xFC);
            let mut copy = b[..1024].to_vec();
            copy[0xFC..0x100].fill(0);
            let sum = update(!0, &copy);
            if stored != sum {
                return Err(format!(
                    "superblock checksum mismatch: stored {stored:#010x}, computed {sum:#010x}"
                ));
            }
            csum_seed = update(!0, &b[0x30..0x40]);
        }
        let mut last = maxlen;
        if incompat & INCOMPAT_FAST_COMMIT != 0 {
            // The fast-commit area is the journal's tail.
            let fc = match be32(b, 0x54) {
                0 => DEFAULT_FC_BLOCKS,
                n => n,
            };
            last = maxlen.saturating_sub(fc);
            if last <= first {
                return Err(format!("{fc} fast-commit blocks of {maxlen}"));
            }
        }
        let start = be32(b, 0x1C);
        if start != 0 && !(first..last).contains(&start) {
            return Err(format!("log start {start} outside {first}..{last}"));
        }
        Ok(JournalSb {
            block_size,
            first,
            last,
            sequence: be32(b, 0x18),
            start,
            incompat,
            compat,
            csum_seed,
        })
    }

    fn has(&self, f: u32) -> bool {
        self.incompat & f != 0
    }

    fn csum(&self) -> bool {
        self.has(INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3)
    }

    pub(crate) fn fast_commit(&self) -> bool {
        self.has(INCOMPAT_FAST_COMMIT)
    }

    /// Bytes of a tag (without the UUID that follows one lacking
    /// SAME_UUID): tag3 under csum v3, else 8, +4 with 64bit, +2 with csum
    /// v2 (the kernel's arithmetic).
    pub(crate) fn tag_bytes(&self) -> usize {
        if self.has(INCOMPAT_CSUM_V3) {
            return 16;
        }
        let mut n = 12;
        if self.has(INCOMPAT_CSUM_V2) {
            n += 2;
        }
        if !self.has(INCOMPAT_64BIT) {
            n -= 4;
        }
        n
    }

    /// Bytes at the end of descriptor and revoke blocks taken by the
    /// checksum tail.
    fn tail(&self) -> usize {
        if self.csum() { 4 } else { 0 }
    }

    /// The log block after `b`, wrapping.
    fn next(&self, b: u32) -> u32 {
        let n = b + 1;
        if n >= self.last {
            n - (self.last - self.first)
        } else {
            n
        }
    }
}

/// A descriptor block's tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tag {
    pub block: u64,
    pub flags: u32,
    /// The data block's checksum (16 bits under csum v2, 32 under v3).
    pub csum: u32,
}

/// The tags of descriptor block `b`, as the kernel walks them: from byte 12
/// while a whole tag fits before the checksum tail, a 16-byte UUID after
/// each tag without SAME_UUID, stopping after LAST_TAG.
pub(crate) fn tags(jsb: &JournalSb, b: &[u8]) -> Vec<Tag> {
    let size = jsb.tag_bytes();
    let end = b.len().saturating_sub(jsb.tail());
    let v3 = jsb.has(INCOMPAT_CSUM_V3);
    let mut out = Vec::new();
    let mut at = 12;
    while at + size <= end {
        let t = &b[at..at + size];
        let flags = if v3 {
            be32(t, 4)
        } else {
            u32::from(be16(t, 6))
        };
        let mut block = u64::from(be32(t, 0));
        if jsb.has(INCOMPAT_64BIT) {
            block |= u64::from(be32(t, 8)) << 32;
        }
        let csum = if v3 {
            be32(t, 12)
        } else {
            u32::from(be16(t, 4))
        };
        out.push(Tag { block, flags, csum });
        at += size;
        if flags & FLAG_SAME_UUID == 0 {
            at += 16;
        }
        if flags & FLAG_LAST_TAG != 0 {
            break;
        }
    }
    out
}

/// The blocks revoke block `b` names.
fn revokes(jsb: &JournalSb, b: &[u8]) -> Result<Vec<u64>, String> {
    let count = be32(b, 12) as usize;
    if count > b.len() - jsb.tail() {
        return Err(format!("a revoke block of {count} bytes"));
    }
    let wide = jsb.has(INCOMPAT_64BIT);
    let rec = if wide { 8 } else { 4 };
    let mut out = Vec::new();
    let mut at = 16;
    while at + rec <= count {
        out.push(if wide {
            u64::from(be32(b, at)) << 32 | u64::from(be32(b, at + 4))
        } else {
            u64::from(be32(b, at))
        });
        at += rec;
    }
    Ok(out)
}

/// Checks the CRC-32C of a block whose 4 bytes at `at` hold it (zeroed
/// for the computation).
fn block_csum_ok(jsb: &JournalSb, b: &[u8], at: usize) -> bool {
    let Some(stored) = b.get(at..at + 4) else {
        return false;
    };
    let stored = u32::from_be_bytes([stored[0], stored[1], stored[2], stored[3]]);
    let c = update(jsb.csum_seed, &b[..at]);
    let c = update(c, &[0; 4]);
    update(c, &b[at + 4..]) == stored
}

/// The checksum of a data block's copy, as its tag holds it.
fn data_csum_ok(jsb: &JournalSb, tag: &Tag, seq: u32, data: &[u8]) -> bool {
    let c = update(update(jsb.csum_seed, &seq.to_be_bytes()), data);
    if jsb.has(INCOMPAT_CSUM_V3) {
        c == tag.csum
    } else {
        c & 0xFFFF == tag.csum
    }
}

/// CRC-32 with the polynomial 0x04C11DB7, most significant bit first, no
/// inversions: the register the old compat checksum chains through a
/// transaction's descriptor and data blocks from `!0`.
fn crc32_be(mut crc: u32, data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut k = 0;
            while k < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    for &b in data {
        crc = (crc << 8) ^ TABLE[((crc >> 24) as u8 ^ b) as usize];
    }
    crc
}

/// `a` after `b`, in sequence numbers that wrap.
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// One filesystem block's replayed copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Copy {
    /// The filesystem block.
    pub block: u64,
    /// Byte offset of the copy in the journal.
    pub at: u64,
    /// The copy's first 4 bytes were the magic, stored as zeros.
    pub escaped: bool,
}

/// What replay found.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// Copies sorted by filesystem block, one per block.
    pub copies: Vec<Copy>,
    /// Committed transactions applied, and the first and last sequence.
    pub transactions: u32,
    pub seqs: Option<(u32, u32)>,
    /// Tagged blocks in those transactions (before revokes and
    /// duplicates).
    pub tagged: u64,
    /// The journal is clean (`s_start` 0): nothing to replay.
    pub empty: bool,
    pub warnings: Vec<String>,
}

struct Txn {
    seq: u32,
    /// (tag, log block holding the copy).
    blocks: Vec<(Tag, u32)>,
    revokes: Vec<u64>,
}

/// Replays the journal `j` (the journal inode's bytes) of a filesystem of
/// `fs_blocks` blocks of `block_size` bytes. An error is a journal that
/// cannot be used at all (nothing replayed); problems inside the log end
/// it early and are warnings.
pub(crate) fn replay(j: &dyn ReadAt, block_size: u32, fs_blocks: u64) -> Result<Replay, String> {
    let bs = u64::from(block_size);
    let mut head = vec![0u8; 1024];
    j.read_exact_at(0, &mut head)
        .map_err(|e| format!("reading its superblock: {e}"))?;
    let jsb = JournalSb::parse(&head, j.len() / bs)?;
    if jsb.block_size != block_size {
        return Err(format!(
            "block size {} differs from the filesystem's {block_size}",
            jsb.block_size
        ));
    }
    let mut out = Replay::default();
    if jsb.fast_commit() {
        out.warnings
            .push("the journal's fast-commit area is not replayed".into());
    }
    if jsb.start == 0 {
        out.empty = true;
        return Ok(out);
    }
    let read = |b: u32, buf: &mut [u8]| -> Result<(), String> {
        j.read_exact_at(u64::from(b) * bs, buf)
            .map_err(|e| format!("reading journal block {b}: {e}"))
    };
    let log_len = u64::from(jsb.last - jsb.first);
    let mut buf = vec![0u8; block_size as usize];
    let mut committed: Vec<Txn> = Vec::new();
    let mut cur = Txn {
        seq: jsb.sequence,
        blocks: Vec::new(),
        revokes: Vec::new(),
    };
    let mut revoke_count = 0usize;
    // The old compat checksum of the transaction so far.
    let v1 = jsb.compat & COMPAT_CHECKSUM != 0;
    let mut crc = !0u32;
    let mut data = if v1 {
        vec![0u8; block_size as usize]
    } else {
        Vec::new()
    };
    let mut pos = jsb.start;
    let mut walked = 0u64;
    'scan: loop {
        if walked >= log_len {
            out.warnings.push(format!(
                "the log wraps onto itself in transaction {}: it ends there",
                cur.seq
            ));
            break;
        }
        let here = pos;
        if let Err(e) = read(here, &mut buf) {
            out.warnings.push(format!("{e}: the log ends there"));
            break;
        }
        pos = jsb.next(pos);
        walked += 1;
        if be32(&buf, 0) != MAGIC || be32(&buf, 8) != cur.seq {
            break;
        }
        match be32(&buf, 4) {
            DESCRIPTOR => {
                if jsb.csum() && !block_csum_ok(&jsb, &buf, buf.len() - 4) {
                    out.warnings.push(format!(
                        "transaction {}: descriptor block {here} fails its checksum: the log ends there",
                        cur.seq
                    ));
                    break;
                }
                if v1 {
                    crc = crc32_be(crc, &buf);
                }
                for tag in tags(&jsb, &buf) {
                    if walked >= log_len {
                        out.warnings.push(format!(
                            "the log wraps onto itself in transaction {}: it ends there",
                            cur.seq
                        ));
                        break 'scan;
                    }
                    if v1 {
                        if let Err(e) = read(pos, &mut data) {
                            out.warnings.push(format!("{e}: the log ends there"));
                            break 'scan;
                        }
                        crc = crc32_be(crc, &data);
                    }
                    cur.blocks.push((tag, pos));
                    pos = jsb.next(pos);
                    walked += 1;
                }
            }
            COMMIT => {
                if jsb.csum() && !block_csum_ok(&jsb, &buf, 16) {
                    out.warnings.push(format!(
                        "transaction {}: commit block {here} fails its checksum: the log ends there",
                        cur.seq
                    ));
                    break;
                }
                if v1 {
                    let (kind, size, found) = (buf[12], buf[13], be32(&buf, 16));
                    let ok = (kind == CRC32_TYPE && size == CRC32_SIZE && found == crc)
                        || (kind == 0 && size == 0 && found == 0);
                    if !ok {
                        out.warnings.push(format!(
                            "transaction {}: commit block {here} fails the transaction's CRC-32: the log ends there",
                            cur.seq
                        ));
                        break;
                    }
                    crc = !0;
                }
                let seq = cur.seq.wrapping_add(1);
                committed.push(std::mem::replace(
                    &mut cur,
                    Txn {
                        seq,
                        blocks: Vec::new(),
                        revokes: Vec::new(),
                    },
                ));
            }
            REVOKE => {
                if jsb.csum() && !block_csum_ok(&jsb, &buf, buf.len() - 4) {
                    out.warnings.push(format!(
                        "transaction {}: revoke block {here} fails its checksum: the log ends there",
                        cur.seq
                    ));
                    break;
                }
                match revokes(&jsb, &buf) {
                    Ok(r) if revoke_count + r.len() <= MAX_REVOKES => {
                        revoke_count += r.len();
                        cur.revokes.extend(r);
                    }
                    Ok(_) => {
                        out.warnings.push(format!(
                            "transaction {}: more than {MAX_REVOKES} revoke records: the log ends there",
                            cur.seq
                        ));
                        break;
                    }
                    Err(e) => {
                        out.warnings.push(format!(
                            "transaction {}: block {here}: {e}: the log ends there",
                            cur.seq
                        ));
                        break;
                    }
                }
            }
            _ => break,
        }
    }
    // The trailing transaction without a commit block is not applied.
    drop(cur);

    // Revoke pass: each block's highest revoking sequence.
    let mut revoked: HashMap<u64, u32> = HashMap::new();
    for t in &committed {
        for &b in &t.revokes {
            let e = revoked.entry(b).or_insert(t.seq);
            if seq_after(t.seq, *e) {
                *e = t.seq;
            }
        }
    }

    // Replay pass: the newest copy of each block wins.
    let mut map: HashMap<u64, Copy> = HashMap::new();
    let mut bad = 0usize;
    for t in &committed {
        for &(tag, at) in &t.blocks {
            out.tagged += 1;
            if revoked
                .get(&tag.block)
                .is_some_and(|&r| !seq_after(t.seq, r))
            {
                continue;
            }
            if tag.block >= fs_blocks {
                bad += 1;
                if bad <= MAX_BLOCK_WARNINGS {
                    out.warnings.push(format!(
                        "transaction {}: journal block {at} is a copy of block {}, past the filesystem's end: not replayed",
                        t.seq, tag.block
                    ));
                }
                continue;
            }
            if jsb.csum() {
                let ok = read(at, &mut buf).is_ok() && data_csum_ok(&jsb, &tag, t.seq, &buf);
                if !ok {
                    bad += 1;
                    if bad <= MAX_BLOCK_WARNINGS {
                        out.warnings.push(format!(
                            "transaction {}: invalid checksum recovering block {} from journal block {at}: not replayed",
                            t.seq, tag.block
                        ));
                    }
                    continue;
                }
            }
            map.insert(
                tag.block,
                Copy {
                    block: tag.block,
                    at: u64::from(at) * bs,
                    escaped: tag.flags & FLAG_ESCAPE != 0,
                },
            );
        }
    }
    if bad > MAX_BLOCK_WARNINGS {
        out.warnings.push(format!(
            "{} more journal blocks not replayed",
            bad - MAX_BLOCK_WARNINGS
        ));
    }
    out.transactions = committed.len() as u32;
    out.seqs = committed
        .first()
        .zip(committed.last())
        .map(|(a, b)| (a.seq, b.seq));
    out.copies = map.into_values().collect();
    out.copies.sort_unstable_by_key(|c| c.block);
    Ok(out)
}

/// The volume as replay leaves it: the blocks the journal holds a copy of
/// are read from that copy (the magic restored in escaped ones), all else
/// from the volume.
pub(crate) struct Overlay {
    vol: Source,
    journal: Source,
    block_size: u64,
    /// Sorted by block.
    copies: Vec<Copy>,
}

impl Overlay {
    pub(crate) fn new(vol: Source, journal: Source, block_size: u32, copies: Vec<Copy>) -> Self {
        Overlay {
            vol,
            journal,
            block_size: u64::from(block_size),
            copies,
        }
    }
}

impl ReadAt for Overlay {
    fn len(&self) -> u64 {
        self.vol.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.len());
        let buf = &mut buf[..n];
        let bs = self.block_size;
        // The first copy at or after the read's first block.
        let mut i = self.copies.partition_point(|c| c.block < offset / bs);
        let end = offset + n as u64;
        let mut pos = offset;
        while pos < end {
            let next = self
                .copies
                .get(i)
                .filter(|c| c.block.saturating_mul(bs) < end);
            let Some(c) = next else {
                // No copy in the rest: straight from the volume.
                self.vol
                    .read_exact_at(pos, &mut buf[(pos - offset) as usize..])?;
                break;
            };
            let start = c.block * bs;
            if start > pos {
                let to = (start - offset) as usize;
                self.vol
                    .read_exact_at(pos, &mut buf[(pos - offset) as usize..to])?;
                pos = start;
            }
            let within = pos - start;
            let take = (bs - within).min(end - pos) as usize;
            let out = &mut buf[(pos - offset) as usize..(pos - offset) as usize + take];
            self.journal.read_exact_at(c.at + within, out)?;
            if c.escaped && within < 4 {
                let magic = MAGIC.to_be_bytes();
                for (k, b) in out.iter_mut().enumerate().take((4 - within) as usize) {
                    *b = magic[within as usize + k];
                }
            }
            pos += take as u64;
            i += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemSource;
    use std::sync::Arc;

    fn jsb(incompat: u32) -> JournalSb {
        JournalSb {
            block_size: 1024,
            first: 1,
            last: 64,
            sequence: 1,
            start: 1,
            incompat,
            compat: 0,
            csum_seed: 0x1234_5678,
        }
    }

    #[test]
    fn tag_sizes_follow_the_features() {
        assert_eq!(jsb(0).tag_bytes(), 8);
        assert_eq!(jsb(INCOMPAT_64BIT).tag_bytes(), 12);
        assert_eq!(jsb(INCOMPAT_CSUM_V2).tag_bytes(), 10);
        assert_eq!(jsb(INCOMPAT_CSUM_V2 | INCOMPAT_64BIT).tag_bytes(), 14);
        assert_eq!(jsb(INCOMPAT_CSUM_V3).tag_bytes(), 16);
        assert_eq!(jsb(INCOMPAT_CSUM_V3 | INCOMPAT_64BIT).tag_bytes(), 16);
    }

    #[test]
    fn old_tags_with_uuid_same_uuid_and_last_tag() {
        let j = jsb(0);
        let mut b = vec![0u8; 1024];
        // Tag 1: block 100, no SAME_UUID: a 16-byte UUID follows.
        b[12..16].copy_from_slice(&100u32.to_be_bytes());
        b[18..20].copy_from_slice(&0u16.to_be_bytes());
        b[20..36].fill(0xEE);
        // Tag 2: block 7, SAME_UUID | ESCAPE.
        b[36..40].copy_from_slice(&7u32.to_be_bytes());
        b[42..44].copy_from_slice(&((FLAG_SAME_UUID | FLAG_ESCAPE) as u16).to_be_bytes());
        // Tag 3: block 9, LAST_TAG; junk after it is not a tag.
        b[44..48].copy_from_slice(&9u32.to_be_bytes());
        b[50..52].copy_from_slice(&((FLAG_SAME_UUID | FLAG_LAST_TAG) as u16).to_be_bytes());
        b[52..56].copy_from_slice(&55u32.to_be_bytes());
        let t = tags(&j, &b);
        let blocks: Vec<u64> = t.iter().map(|t| t.block).collect();
        assert_eq!(blocks, [100, 7, 9]);
        assert_eq!(t[1].flags, FLAG_SAME_UUID | FLAG_ESCAPE);
    }

    #[test]
    fn tag3_with_64bit_blocks_and_checksums() {
        let j = jsb(INCOMPAT_CSUM_V3 | INCOMPAT_64BIT);
        let mut b = vec![0u8; 1024];
        b[12..16].copy_from_slice(&5u32.to_be_bytes());
        b[16..20].copy_from_slice(&(FLAG_SAME_UUID | FLAG_LAST_TAG).to_be_bytes());
        b[20..24].copy_from_slice(&2u32.to_be_bytes());
        b[24..28].copy_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
        let t = tags(&j, &b);
        assert_eq!(
            t,
            [Tag {
                block: (2 << 32) | 5,
                flags: FLAG_SAME_UUID | FLAG_LAST_TAG,
                csum: 0xDEAD_BEEF
            }]
        );
        // Without 64bit the high word is ignored.
        let t = tags(&jsb(INCOMPAT_CSUM_V3), &b);
        assert_eq!(t[0].block, 5);
    }

    #[test]
    fn tags_stop_before_the_checksum_tail() {
        let j = jsb(INCOMPAT_CSUM_V3);
        let mut b = vec![0u8; 1024];
        for k in 0..63 {
            let at = 12 + 16 * k;
            b[at + 4..at + 8].copy_from_slice(&FLAG_SAME_UUID.to_be_bytes());
        }
        // (1024 - 4 - 12) / 16 whole tags fit before the tail; the 64th
        // would overlap it.
        assert_eq!(tags(&j, &b).len(), 63);
    }

    #[test]
    fn revoke_records_of_both_widths() {
        let mut b = vec![0u8; 1024];
        b[12..16].copy_from_slice(&32u32.to_be_bytes());
        for (k, v) in [1u32, 2, 3, 4].iter().enumerate() {
            b[16 + 4 * k..20 + 4 * k].copy_from_slice(&v.to_be_bytes());
        }
        assert_eq!(revokes(&jsb(0), &b).expect("test data"), [1, 2, 3, 4]);
        assert_eq!(
            revokes(&jsb(INCOMPAT_64BIT), &b).expect("test data"),
            [(1 << 32) | 2, (3 << 32) | 4]
        );
        b[12..16].copy_from_slice(&2000u32.to_be_bytes());
        assert!(revokes(&jsb(0), &b).is_err());
    }

    #[test]
    fn sequence_numbers_wrap() {
        assert!(seq_after(1, 0));
        assert!(seq_after(0, u32::MAX));
        assert!(!seq_after(5, 5));
        assert!(!seq_after(u32::MAX, 0));
    }

    #[test]
    fn the_overlay_serves_copies_and_restores_escaped_magic() {
        let vol: Vec<u8> = (0..16 * 64).map(|i| (i % 251) as u8).collect();
        let mut journal = vec![0u8; 4 * 64];
        journal[64..128].fill(0xAA);
        journal[128..192].fill(0xBB);
        journal[128..132].fill(0); // escaped: the magic was there
        let copies = vec![
            Copy {
                block: 3,
                at: 64,
                escaped: false,
            },
            Copy {
                block: 4,
                at: 128,
                escaped: true,
            },
            Copy {
                block: 10,
                at: 64,
                escaped: false,
            },
        ];
        let mut flat = vol.clone();
        flat[3 * 64..4 * 64].fill(0xAA);
        flat[4 * 64..5 * 64].fill(0xBB);
        flat[4 * 64..4 * 64 + 4].copy_from_slice(&MAGIC.to_be_bytes());
        flat[10 * 64..11 * 64].fill(0xAA);
        let o = Overlay {
            vol: Arc::new(MemSource::new(vol)),
            journal: Arc::new(MemSource::new(journal)),
            block_size: 64,
            copies,
        };
        let mut reads = vec![(0u64, 1024usize), (190, 80), (258, 1), (256, 3), (640, 64)];
        for off in (0..1100).step_by(37) {
            reads.push((off, 100));
        }
        crate::io::model::check(&o, &flat, &reads).expect("test data");
    }

    /// A journal written by hand the way the format describes it.
    struct Log {
        jsb: JournalSb,
        uuid: [u8; 16],
        blocks: Vec<Vec<u8>>,
        pos: u32,
    }

    impl Log {
        fn new(incompat: u32, start: u32, sequence: u32) -> Log {
            Log::with_compat(0, incompat, start, sequence)
        }

        fn with_compat(compat: u32, incompat: u32, start: u32, sequence: u32) -> Log {
            let bs = 1024;
            let uuid = [7u8; 16];
            let mut sb = vec![0u8; bs];
            sb[..4].copy_from_slice(&MAGIC.to_be_bytes());
            sb[4..8].copy_from_slice(&SUPERBLOCK_V2.to_be_bytes());
            for (at, v) in [
                (0xC, 1024),
                (0x10, 24),
                (0x14, 1),
                (0x18, sequence),
                (0x1C, start),
            ] {
                sb[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            sb[0x24..0x28].copy_from_slice(&compat.to_be_bytes());
            sb[0x28..0x2C].copy_from_slice(&incompat.to_be_bytes());
            sb[0x30..0x40].copy_from_slice(&uuid);
            sb[0x50] = CRC32C;
            let sum = update(!0, &sb);
            sb[0xFC..0x100].copy_from_slice(&sum.to_be_bytes());
            let jsb = JournalSb::parse(&sb, 24).expect("superblock");
            let mut blocks = vec![vec![0u8; bs]; 24];
            blocks[0] = sb;
            Log {
                jsb,
                uuid,
                blocks,
                pos: start,
            }
        }

        fn put(&mut self, b: Vec<u8>) -> u32 {
            let at = self.pos;
            self.blocks[at as usize] = b;
            self.pos = self.jsb.next(at);
            at
        }

        fn header(&self, kind: u32, seq: u32) -> Vec<u8> {
            let mut b = vec![0u8; 1024];
            b[..4].copy_from_slice(&MAGIC.to_be_bytes());
            b[4..8].copy_from_slice(&kind.to_be_bytes());
            b[8..12].copy_from_slice(&seq.to_be_bytes());
            b
        }

        fn seal(&self, b: &mut [u8], at: usize) {
            if self.jsb.csum() {
                b[at..at + 4].fill(0);
                let sum = update(self.jsb.csum_seed, b);
                b[at..at + 4].copy_from_slice(&sum.to_be_bytes());
            }
        }

        /// A transaction: copies of blocks, revokes, and a commit block if
        /// `commit`; returns the log block of each copy.
        fn txn(
            &mut self,
            seq: u32,
            copies: &[(u64, Vec<u8>)],
            revoked: &[u64],
            commit: bool,
        ) -> Vec<u32> {
            let j = self.jsb.clone();
            let mut d = self.header(DESCRIPTOR, seq);
            let mut at = 12;
            let mut data = Vec::new();
            for (k, (block, bytes)) in copies.iter().enumerate() {
                let mut bytes = bytes.clone();
                let mut flags = if k == 0 { 0 } else { FLAG_SAME_UUID };
                if k + 1 == copies.len() {
                    flags |= FLAG_LAST_TAG;
                }
                if be32(&bytes, 0) == MAGIC {
                    bytes[..4].fill(0);
                    flags |= FLAG_ESCAPE;
                }
                let sum = update(update(j.csum_seed, &seq.to_be_bytes()), &bytes);
                let t = &mut d[at..at + j.tag_bytes()];
                t[..4].copy_from_slice(&(*block as u32).to_be_bytes());
                if j.has(INCOMPAT_CSUM_V3) {
                    t[4..8].copy_from_slice(&flags.to_be_bytes());
                    t[12..16].copy_from_slice(&sum.to_be_bytes());
                } else {
                    t[6..8].copy_from_slice(&(flags as u16).to_be_bytes());
                    t[4..6].copy_from_slice(&(sum as u16).to_be_bytes());
                }
                if j.has(INCOMPAT_64BIT) {
                    t[8..12].copy_from_slice(&((*block >> 32) as u32).to_be_bytes());
                }
                at += j.tag_bytes();
                if k == 0 {
                    d[at..at + 16].copy_from_slice(&self.uuid);
                    at += 16;
                }
                data.push(bytes);
            }
            self.seal(&mut d, 1020);
            let mut crc = crc32_be(!0, &d);
            self.put(d);
            for b in &data {
                crc = crc32_be(crc, b);
            }
            let placed = data.into_iter().map(|b| self.put(b)).collect();
            if !revoked.is_empty() {
                let mut r = self.header(REVOKE, seq);
                let mut at = 16;
                for &b in revoked {
                    if j.has(INCOMPAT_64BIT) {
                        r[at..at + 8].copy_from_slice(&b.to_be_bytes());
                        at += 8;
                    } else {
                        r[at..at + 4].copy_from_slice(&(b as u32).to_be_bytes());
                        at += 4;
                    }
                }
                r[12..16].copy_from_slice(&(at as u32).to_be_bytes());
                self.seal(&mut r, 1020);
                self.put(r);
            }
            if commit {
                let mut c = self.header(COMMIT, seq);
                c[12] = CRC32C;
                c[13] = 4;
                if j.compat & COMPAT_CHECKSUM != 0 {
                    c[12] = CRC32_TYPE;
                    c[16..20].copy_from_slice(&crc.to_be_bytes());
                }
                self.seal(&mut c, 16);
                self.put(c);
            }
            placed
        }

        fn bytes(&self) -> Vec<u8> {
            self.blocks.concat()
        }
    }

    fn fill(v: u8) -> Vec<u8> {
        vec![v; 1024]
    }

    /// The overlay's bytes of `block` after replaying `journal` over a
    /// zeroed volume of 64 blocks.
    fn replayed(journal: Vec<u8>) -> (Replay, impl Fn(u64) -> Vec<u8>) {
        let r = replay(&MemSource::new(journal.clone()), 1024, 64).expect("replay");
        let o = Overlay::new(
            Arc::new(MemSource::new(vec![0u8; 64 * 1024])),
            Arc::new(MemSource::new(journal)),
            1024,
            r.copies.clone(),
        );
        let read = move |b: u64| {
            let mut buf = vec![0u8; 1024];
            o.read_exact_at(b * 1024, &mut buf).expect("read");
            buf
        };
        (r, read)
    }

    #[test]
    fn revokes_newest_copies_escapes_and_an_uncommitted_tail() {
        for incompat in [
            0,
            INCOMPAT_REVOKE | INCOMPAT_64BIT,
            INCOMPAT_REVOKE | INCOMPAT_CSUM_V2,
            INCOMPAT_REVOKE | INCOMPAT_CSUM_V3 | INCOMPAT_64BIT,
        ] {
            // The log starts near its end and wraps.
            let mut log = Log::new(incompat, 18, 5);
            let mut escaped = fill(0xB0);
            escaped[..4].copy_from_slice(&MAGIC.to_be_bytes());
            log.txn(
                5,
                &[(10, fill(0xA0)), (11, escaped.clone()), (12, fill(0xC0))],
                &[],
                true,
            );
            log.txn(6, &[(12, fill(0xC1)), (13, fill(0xD0))], &[10], true);
            log.txn(7, &[(10, fill(0xA1))], &[13], true);
            log.txn(8, &[(14, fill(0xE0))], &[], false);
            let (r, read) = replayed(log.bytes());
            assert_eq!((r.transactions, r.seqs), (3, Some((5, 7))), "{incompat:#x}");
            assert!(r.warnings.is_empty(), "{:?}", r.warnings);
            let blocks: Vec<u64> = r.copies.iter().map(|c| c.block).collect();
            // 13: revoked by a later transaction; 14: never committed.
            assert_eq!(blocks, [10, 11, 12], "{incompat:#x}");
            assert_eq!(read(10), fill(0xA1), "revoked, then logged again");
            assert_eq!(read(11), escaped, "the magic restored");
            assert_eq!(read(12), fill(0xC1), "the newest copy");
            assert_eq!(read(13), fill(0), "revoked");
        }
    }

    #[test]
    fn checksum_failures_end_the_log_or_skip_a_block() {
        let incompat = INCOMPAT_REVOKE | INCOMPAT_CSUM_V3 | INCOMPAT_64BIT;
        let mut log = Log::new(incompat, 1, 1);
        log.txn(1, &[(10, fill(1)), (11, fill(2))], &[], true);
        let second = log.txn(2, &[(11, fill(3)), (12, fill(4))], &[], true);
        let good = log.bytes();
        // A damaged copy: skipped, the older copy stays.
        let mut bad = good.clone();
        bad[second[0] as usize * 1024 + 500] ^= 1;
        let (r, read) = replayed(bad);
        assert_eq!(r.transactions, 2);
        assert_eq!(read(11), fill(2));
        assert_eq!(read(12), fill(4));
        assert!(
            r.warnings[0].contains("invalid checksum recovering block 11"),
            "{:?}",
            r.warnings
        );
        // A damaged descriptor: the log ends before its transaction.
        let mut bad = good.clone();
        bad[(second[0] as usize - 1) * 1024 + 900] ^= 1;
        let (r, read) = replayed(bad);
        assert_eq!((r.transactions, read(11)), (1, fill(2)));
        assert!(
            r.warnings[0].contains("descriptor block"),
            "{:?}",
            r.warnings
        );
        // A damaged commit block: likewise.
        let mut bad = good.clone();
        bad[(second[1] as usize + 1) * 1024 + 100] ^= 1;
        let (r, _) = replayed(bad);
        assert_eq!(r.transactions, 1);
        assert!(r.warnings[0].contains("commit block"), "{:?}", r.warnings);
        // A damaged journal superblock: nothing.
        let mut bad = good;
        bad[0x20] ^= 1;
        let e = replay(&MemSource::new(bad), 1024, 64).expect_err("superblock");
        assert!(e.contains("checksum mismatch"), "{e}");
    }

    #[test]
    fn a_log_that_loops_onto_itself_ends() {
        // One uncommitted transaction filling the whole log (23 blocks):
        // the walk comes back to its own descriptor and must stop.
        let mut log = Log::new(0, 1, 1);
        let copies: Vec<(u64, Vec<u8>)> = (0..22).map(|k| (k, fill(k as u8))).collect();
        log.txn(1, &copies, &[], false);
        let (r, _) = replayed(log.bytes());
        assert_eq!(r.transactions, 0);
        assert!(
            r.warnings[0].contains("wraps onto itself"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn the_old_compat_checksum_covers_descriptors_and_data() {
        // CRC-32/MPEG-2's check value: this polynomial, MSB first, from !0.
        assert_eq!(crc32_be(!0, b"123456789"), 0x0376_E6E7);
        let mut log = Log::with_compat(COMPAT_CHECKSUM, INCOMPAT_REVOKE, 1, 1);
        log.txn(1, &[(10, fill(1))], &[], true);
        let second = log.txn(2, &[(11, fill(2)), (12, fill(3))], &[], true);
        let good = log.bytes();
        let (r, _) = replayed(good.clone());
        assert_eq!(r.transactions, 2, "{:?}", r.warnings);
        // A damaged data block fails the second transaction's CRC.
        let mut bad = good.clone();
        bad[second[1] as usize * 1024 + 7] ^= 1;
        let (r, read) = replayed(bad);
        assert_eq!((r.transactions, read(12)), (1, fill(0)));
        assert!(r.warnings[0].contains("CRC-32"), "{:?}", r.warnings);
        // A commit block claiming no checksum (type and size 0) passes.
        let mut none = good;
        let commit = (second[1] as usize + 1) * 1024;
        none[commit + 12..commit + 20].fill(0);
        assert_eq!(replayed(none).0.transactions, 2);
    }
}
