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

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::fs::FsKind;

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
            b"BMA3" | b"XSLM" | b"XDB3" | b"XDD3" if abs % 4096 == 0 => (
                4096,
                if m == b"BMA3" {
                    64
                } else if m == b"XSLM" {
                    12
                } else {
                    4
                },
            ),
            _ => (0, 0),
        };
        if len > 0 && pos + len <= chunk.len() {
            let b = &mut chunk[pos..pos + len];
            b[off..off + 4].fill(0);
            let sum = !vaultfs_fuzz::crc32c_raw(!0, b);
            b[off..off + 4].copy_from_slice(&sum.to_le_bytes());
        }
        pos += 512;
    }
}

fuzz_target!(|data: &[u8]| {
    vaultfs_fuzz::exercise_volume(FsKind::Xfs, data, fix_crcs);
});
