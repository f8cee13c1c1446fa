//! Arbitrary volumes opened as ext2/3/4 (`vaultfs_formats::fs::open`),
//! walked (at most 4000 entries) with every file's metadata, details, xattrs
//! read, a few pieces of each file's bytes and every symlink's target.
//!
//! Opening, walking and reading must never panic, hang or allocate without
//! bound; errors are fine.
//!
//! An input is a sparse volume, as for the XFS target: `[flags: u8][volume
//! length in 512-byte sectors: u32 LE]` then chunks `[first sector: u32
//! LE][sectors: u16 LE][sectors * 512 bytes]`; all else reads as zeros. The
//! seeds (`seeds/ext/*`, made by `images/ext.sh`) are a 1 MiB ext2 volume
//! with 1 KiB blocks and a 1 MiB ext4 with inline_data and metadata_csum;
//! `seeds/ext/dirty` (made by `images/ext-journal.sh`) is a 4 MiB ext4
//! whose journal needs recovery (committed transactions, csum v3), so the
//! journal replay and the overlay it builds are reached.
//!
//! When bit 0 of the flags is set the harness recomputes the superblock's
//! metadata_csum checksum after mutation, so mutations of the superblock
//! reach the parsing behind the check; when bit 1 is set the volume is
//! opened with `ignore_checksums`, so every other structure's mutations
//! reach their parsing too. Deleted files are listed and opened as well.

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

/// The raw CRC-32C register step ext4 chains (no inversions).
fn crc32c_raw(mut c: u32, data: &[u8]) -> u32 {
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
        }
    }
    c
}

/// Recomputes the superblock checksum (metadata_csum) if `chunk` (at
/// absolute offset `at`) holds the whole primary superblock.
fn fix_crcs(at: u64, chunk: &mut [u8]) {
    let Some(start) = 1024u64.checked_sub(at) else {
        return;
    };
    let start = start as usize;
    if let Some(sb) = chunk.get_mut(start..start + 1024) {
        if sb[0x64..0x66] != [0, 0] && sb[0x65] & 0x4 != 0 {
            let sum = crc32c_raw(!0, &sb[..0x3FC]);
            sb[0x3FC..].copy_from_slice(&sum.to_le_bytes());
        }
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
    let Ok(fs) = open(FsKind::Ext4, Arc::new(vol), &opts) else {
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
    if let Ok(deleted) = fs.deleted() {
        for d in deleted.iter().take(100) {
            if let Ok(src) = fs.open(d.ino) {
                let mut buf = vec![0u8; 4096];
                let _ = src.read_at(0, &mut buf);
            }
        }
    }
});
