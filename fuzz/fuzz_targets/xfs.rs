//! Arbitrary volumes opened as XFS (`vaultfs_formats::fs::open`), walked
//! (at most 4000 entries) with every file's metadata and extended
//! attributes read, a few pieces of each file's bytes and every symlink's
//! target.
//!
//! Opening, walking and reading must never panic, hang or allocate without
//! bound; errors are fine.
//!
//! The smallest XFS volume is 300 MiB, nearly all zeros, so an input is a
//! sparse volume: `[flags: u8][volume length in 512-byte sectors: u32 LE]`
//! then chunks `[first sector: u32 LE][sectors: u16 LE][sectors * 512
//! bytes]`; all else reads as zeros. The seeds (`seeds/xfs/*`, made by
//! `images/xfs.sh` with `images/xfs-fuzz-seed.py`) are small mkfs.xfs
//! volumes (v5 and v4) in this form.
//!
//! Every v5 metadata block carries a CRC-32C, which nearly every mutation
//! breaks; so when bit 0 of the flags is set, the harness first makes valid
//! the checksum of every superblock, AGF, AGI, v3 inode, bmbt, directory
//! and remote symlink block it finds (by magic, at 512-byte boundaries,
//! assuming 4 KiB blocks and 512-byte inodes as the seeds have), letting
//! mutations reach the parsing behind the checks. Inputs with the bit clear
//! exercise the checks themselves. When bit 1 is set the volume is opened
//! with `ignore_checksums`: mismatches are counted, not errors, so the
//! parsing is reached whatever the block size.

#![no_main]

use std::io;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::fs::{FileKind, FsError, FsKind, FsOptions, open, walk};
use vaultfs_formats::io::ReadAt;

/// Zeros except for some chunks.
struct Sparse {
    len: u64,
    /// (offset, bytes), sorted by offset, not overlapping.
    chunks: Vec<(u64, Vec<u8>)>,
}

impl ReadAt for Sparse {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = vaultfs_formats::io::clamp(offset, buf.len(), self.len);
        let buf = &mut buf[..n];
        buf.fill(0);
        let end = offset + n as u64;
        let first = self.chunks.partition_point(|(at, b)| at + b.len() as u64 <= offset);
        for (at, bytes) in &self.chunks[first..] {
            if *at >= end {
                break;
            }
            let from = offset.max(*at);
            let to = end.min(at + bytes.len() as u64);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
        }
        Ok(n)
    }
}

fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
        }
    }
    !c
}

/// Recomputes the CRC of each v5 structure found in `chunk` (at absolute
/// offset `at`), by magic at 512-byte boundaries.
fn fix_crcs(at: u64, chunk: &mut [u8]) {
    let mut pos = 0usize;
    while pos + 512 <= chunk.len() {
        let abs = at + pos as u64;
        let m = &chunk[pos..pos + 4];
        let (len, off) = match m {
            b"XFSB" => (512, 224),
            b"XAGF" => (512, 216),
            b"XAGI" => (512, 312),
            [b'I', b'N', _, 3] => (512, 100),
            b"BMA3" | b"XSLM" | b"XDB3" | b"XDD3" if abs % 4096 == 0 => {
                (4096, if m == b"BMA3" { 64 } else if m == b"XSLM" { 12 } else { 4 })
            }
            _ => (0, 0),
        };
        if len > 0 && pos + len <= chunk.len() {
            let b = &mut chunk[pos..pos + len];
            b[off..off + 4].fill(0);
            let sum = crc32c(b);
            b[off..off + 4].copy_from_slice(&sum.to_le_bytes());
        }
        pos += 512;
    }
}

fn parse(data: &[u8]) -> Option<Sparse> {
    let (&flags, rest) = data.split_first()?;
    let len = u64::from(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?)) * 512;
    let mut rest = &rest[4..];
    let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
    while rest.len() >= 6 {
        let sector = u64::from(u32::from_le_bytes(rest[..4].try_into().ok()?));
        let count = usize::from(u16::from_le_bytes([rest[4], rest[5]]));
        rest = &rest[6..];
        let take = (count * 512).min(rest.len());
        let at = sector * 512;
        let mut bytes = rest[..take].to_vec();
        rest = &rest[take..];
        if chunks.last().is_some_and(|(a, b)| a + b.len() as u64 > at) || bytes.is_empty() {
            continue; // overlapping or out of order: dropped
        }
        if flags & 1 != 0 {
            fix_crcs(at, &mut bytes);
        }
        chunks.push((at, bytes));
    }
    Some(Sparse { len, chunks })
}

fuzz_target!(|data: &[u8]| {
    let Some(vol) = parse(data) else {
        return;
    };
    // Flag bit 1: checksum mismatches ignored, so mutations reach the
    // parsing behind every check.
    let opts = FsOptions {
        ignore_checksums: data.first().is_some_and(|f| f & 2 != 0),
        ..Default::default()
    };
    let Ok(fs) = open(FsKind::Xfs, Arc::new(vol), &opts) else {
        return;
    };
    let _ = fs.info();
    let _ = fs.metadata(fs.root());
    let mut entries = 0;
    let _ = walk(&*fs, &mut |_, e| {
        entries += 1;
        if entries > 4000 {
            return Err(FsError::corrupt("fuzz", 0, "enough"));
        }
        let _ = fs.metadata(e.ino);
        let _ = fs.details(e.ino);
        let _ = fs.xattrs(e.ino);
        match e.kind {
            FileKind::File => {
                if let Ok(src) = fs.open(e.ino) {
                    let len = src.len();
                    let mut buf = vec![0u8; 4096];
                    for at in [0, len / 3, len.saturating_sub(100), len] {
                        let _ = src.read_at(at, &mut buf);
                    }
                }
            }
            FileKind::Symlink => {
                let _ = fs.read_link(e.ino);
            }
            _ => {}
        }
        Ok(())
    });
});
