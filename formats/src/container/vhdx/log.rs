//! Replaying a VHDX log in memory ([MS-VHDX] 2.3): a writer that stopped
//! before applying its log leaves a non-zero LogGuid in the header, and the
//! metadata, BAT and data it meant to write only in the log. We never write
//! the image; the replay becomes an overlay over the file, through which
//! everything else is read.
//!
//! The log is a circular buffer of 4 KiB-aligned entries (`loge`, CRC-32C
//! over the entry), each with zero descriptors (`zero`: clear a range) and
//! data descriptors (`desc`) whose 4 KiB sectors (`data`) carry the bytes
//! minus the first 8 and last 4, which the descriptor holds. The active
//! sequence is the one whose head has the largest sequence number among
//! heads whose `Tail` starts an unbroken chain of consecutive sequence
//! numbers ending at that head; its entries are applied tail to head.

use std::collections::HashMap;
use std::io;

use super::{Header, MIB, crc32c, guid_string, le32, le64};
use crate::container::{ContainerError, corrupt};
use crate::io::{ReadAt, Source, clamp};

/// Logs larger than this are not replayed (Hyper-V and qemu make 1 MiB).
const MAX_LOG: u64 = 64 * MIB;
/// A replayed file may not claim to be larger than this (2^50 bytes).
const MAX_FILE: u64 = 1 << 50;
const SECTOR: usize = 4096;

/// One write of the log.
enum Op {
    Data { offset: u64, bytes: Box<[u8]> },
    Zero { offset: u64, len: u64 },
}

/// The file as it is once the log is applied.
pub(crate) struct Overlay {
    base: Source,
    len: u64,
    ops: Vec<Op>,
}

impl Overlay {
    /// How many writes (data sectors and zeroed ranges) were replayed.
    pub(crate) fn writes(&self) -> usize {
        self.ops.len()
    }
}

impl ReadAt for Overlay {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.len);
        let out = &mut buf[..n];
        let mut done = 0;
        while done < n {
            match self.base.read_at(offset + done as u64, &mut out[done..]) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        out[done..].fill(0); // the file grown by the log
        let end = offset + n as u64;
        // In log order: later writes win.
        for op in &self.ops {
            let (start, len) = match op {
                Op::Data { offset, bytes } => (*offset, bytes.len() as u64),
                Op::Zero { offset, len } => (*offset, *len),
            };
            let from = start.max(offset);
            let to = start.saturating_add(len).min(end);
            if from >= to {
                continue;
            }
            let dst = &mut out[(from - offset) as usize..(to - offset) as usize];
            match op {
                Op::Data { bytes, .. } => {
                    dst.copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize])
                }
                Op::Zero { .. } => dst.fill(0),
            }
        }
        Ok(n)
    }
}

/// A valid log entry.
struct Entry {
    len: u64,
    tail: u64,
    sequence: u64,
    last_file_offset: u64,
    flushed_file_offset: u64,
    ops: Vec<Op>,
}

/// Why the log cannot be replayed: the image is refused as needing replay.
fn refuse(header: &Header, why: String) -> ContainerError {
    ContainerError::LogNeedsReplay {
        format: "VHDX",
        detail: format!(
            "log {} at {:#x}, {} bytes: {why}",
            guid_string(&header.log_guid),
            header.log_offset,
            header.log_length
        ),
    }
}

/// `len` bytes of the circular log from `at`.
fn circular(log: &[u8], at: u64, len: u64) -> Vec<u8> {
    let n = log.len() as u64;
    (0..len).map(|i| log[((at + i) % n) as usize]).collect()
}

/// Parses the entry at `at`, if it is a valid entry of this log.
fn entry(log: &[u8], at: u64, guid: &[u8; 16]) -> Option<Entry> {
    let n = log.len() as u64;
    let head = circular(log, at, 64);
    if &head[..4] != b"loge" {
        return None;
    }
    let len = u64::from(le32(&head, 8));
    let tail = u64::from(le32(&head, 12));
    let sequence = le64(&head, 16);
    let count = u64::from(le32(&head, 24));
    if len == 0 || len % SECTOR as u64 != 0 || len > n || tail % SECTOR as u64 != 0 || tail >= n {
        return None;
    }
    if head[32..48] != guid[..] || sequence == 0 {
        return None;
    }
    let mut e = circular(log, at, len);
    let stored = le32(&e, 4);
    e[4..8].fill(0);
    if crc32c(&e) != stored {
        return None;
    }
    let desc_area = (64 + 32 * count).div_ceil(SECTOR as u64) * SECTOR as u64;
    if desc_area > len {
        return None;
    }
    let mut ops = Vec::new();
    let mut sector = desc_area as usize;
    for i in 0..count as usize {
        let d = &e[64 + 32 * i..96 + 32 * i];
        let offset = le64(d, 16);
        if le64(d, 24) != sequence || offset % SECTOR as u64 != 0 {
            return None;
        }
        match &d[..4] {
            b"zero" => {
                let zlen = le64(d, 8);
                if zlen % SECTOR as u64 != 0 || offset.checked_add(zlen)? > MAX_FILE {
                    return None;
                }
                ops.push(Op::Zero { offset, len: zlen });
            }
            b"desc" => {
                let s = e.get(sector..sector + SECTOR)?;
                if &s[..4] != b"data"
                    || u64::from(le32(s, 4)) != sequence >> 32
                    || u64::from(le32(s, 4092)) != sequence & 0xFFFF_FFFF
                    || offset + SECTOR as u64 > MAX_FILE
                {
                    return None;
                }
                let mut bytes = vec![0u8; SECTOR].into_boxed_slice();
                bytes[..8].copy_from_slice(&d[8..16]);
                bytes[8..4092].copy_from_slice(&s[8..4092]);
                bytes[4092..].copy_from_slice(&d[4..8]);
                ops.push(Op::Data { offset, bytes });
                sector += SECTOR;
            }
            _ => return None,
        }
    }
    Some(Entry {
        len,
        tail,
        sequence,
        flushed_file_offset: le64(&head, 48),
        last_file_offset: le64(&head, 56),
        ops,
    })
}

/// Replays the log the current header names into an overlay over `file`.
pub(crate) fn replay(file: Source, header: &Header) -> Result<Overlay, ContainerError> {
    let (at, len) = (header.log_offset, u64::from(header.log_length));
    if at < MIB || at % MIB != 0 || len == 0 || len % MIB != 0 {
        return Err(refuse(
            header,
            "not 1 MiB-aligned after the header section".into(),
        ));
    }
    if len > MAX_LOG {
        return Err(refuse(header, format!("longer than {MAX_LOG} bytes")));
    }
    if at.checked_add(len).is_none_or(|e| e > file.len()) {
        return Err(corrupt(
            "VHDX log",
            at,
            format!(
                "{len} bytes past the end of the file ({:#x} bytes)",
                file.len()
            ),
        ));
    }
    let mut log = vec![0u8; len as usize];
    file.read_exact_at(at, &mut log)?;
    let mut entries: HashMap<u64, Entry> = HashMap::new();
    for p in (0..len).step_by(SECTOR) {
        if let Some(e) = entry(&log, p, &header.log_guid) {
            entries.insert(p, e);
        }
    }
    // Heads by descending sequence number: the first whose chain from its
    // tail holds is the active sequence.
    let mut heads: Vec<(u64, u64)> = entries.iter().map(|(&p, e)| (e.sequence, p)).collect();
    heads.sort_unstable_by(|a, b| b.cmp(a));
    for (_, head) in heads {
        let Some(h) = entries.get(&head) else {
            continue;
        };
        let (tail, flushed, last) = (h.tail, h.flushed_file_offset, h.last_file_offset);
        let mut chain = vec![tail];
        let mut ok = false;
        let mut p = tail;
        while let Some(e) = entries.get(&p) {
            if p == head {
                ok = true;
                break;
            }
            let next = (p + e.len) % len;
            match entries.get(&next) {
                Some(n)
                    if n.sequence == e.sequence.wrapping_add(1)
                        && chain.len() as u64 <= len / SECTOR as u64 =>
                {
                    chain.push(next);
                    p = next;
                }
                _ => break,
            }
        }
        if !ok {
            continue;
        }
        if flushed > file.len() {
            return Err(refuse(
                header,
                format!(
                    "the log was written to a file of at least {:#x} bytes, this one has {:#x}",
                    flushed,
                    file.len()
                ),
            ));
        }
        let mut ops = Vec::new();
        let mut size = file.len().max(last.min(MAX_FILE));
        for p in chain {
            if let Some(e) = entries.remove(&p) {
                for op in e.ops {
                    let end = match &op {
                        Op::Data { offset, bytes } => offset + bytes.len() as u64,
                        Op::Zero { offset, len } => offset + len,
                    };
                    size = size.max(end);
                    ops.push(op);
                }
            }
        }
        return Ok(Overlay {
            base: file,
            len: size,
            ops,
        });
    }
    Err(refuse(header, "no valid log sequence".into()))
}
