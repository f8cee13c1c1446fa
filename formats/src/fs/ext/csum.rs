//! ext4 metadata checksums (metadata_csum): CRC-32C chained from the
//! filesystem's seed, per structure as the kernel's
//! `Documentation/filesystems/ext4/checksums.rst` lists them. No code was
//! taken from it. Superblock: raw CRC of its first 1020 bytes; group
//! descriptors: low 16 bits over the group number and the descriptor;
//! inodes, extent blocks and directory leaf blocks: seeded with the inode
//! number and generation.

pub(crate) use crate::crc32c::update;
use crate::fs::FsError;
use crate::fs::checks::Checks;

/// CRC-16 as the kernel's `crc16` (reflected polynomial 0xA001, no final
/// inversion), which the older `gdt_csum` (uninit_bg) descriptor checksum
/// uses with an initial value of 0xFFFF.
pub(crate) fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The per-inode seed: the filesystem seed fed the inode number and its
/// generation, both little-endian.
pub(crate) fn inode_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    update(
        update(fs_seed, &ino.to_le_bytes()),
        &generation.to_le_bytes(),
    )
}

/// Checks a 32-bit checksum `stored` against `computed`; a mismatch is a
/// [`FsError::Checksum`] naming `structure` and `offset`, unless `checks`
/// ignores it.
pub(crate) fn check(
    checks: &Checks,
    stored: u32,
    computed: u32,
    structure: &str,
    offset: u64,
) -> Result<(), FsError> {
    checks.check(stored, computed, structure, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        // CRC-16/MODBUS of "123456789".
        assert_eq!(crc16(0xFFFF, b"123456789"), 0x4B37);
    }

    #[test]
    fn a_mismatch_names_the_structure() {
        let c = Checks::default();
        assert!(check(&c, 1, 1, "x", 0).is_ok());
        let e = check(&c, 1, 2, "ext4 inode 12", 0x400).expect_err("mismatch");
        assert!(
            e.to_string()
                .contains("ext4 inode 12 at byte 0x400: checksum mismatch"),
            "{e}"
        );
        assert_ne!(inode_seed(0, 1, 0), inode_seed(0, 2, 0));
    }
}
