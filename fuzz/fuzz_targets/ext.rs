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

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::fs::FsKind;

/// Recomputes the superblock checksum (metadata_csum) if `chunk` (at
/// absolute offset `at`) holds the whole primary superblock.
fn fix_crcs(at: u64, chunk: &mut [u8]) {
    let Some(start) = 1024u64.checked_sub(at) else {
        return;
    };
    let start = start as usize;
    if let Some(sb) = chunk.get_mut(start..start + 1024) {
        if sb[0x64..0x66] != [0, 0] && sb[0x65] & 0x4 != 0 {
            let sum = vaultfs_fuzz::crc32c_raw(!0, &sb[..0x3FC]);
            sb[0x3FC..].copy_from_slice(&sum.to_le_bytes());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    vaultfs_fuzz::exercise_volume(FsKind::Ext4, data, fix_crcs);
});
