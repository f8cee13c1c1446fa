//! Byte helpers and the CRC-32C every v5 metadata block carries.
//!
//! Source: "XFS Algorithms & Data Structures", chapter "Metadata Checksums":
//! CRC-32C (Castagnoli) over the whole block with the 4-byte checksum field
//! taken as zero, stored little-endian (all other XFS fields are
//! big-endian).

use crate::fs::FsError;
use crate::fs::checks::Checks;

#[cfg(test)]
use crate::crc32c::crc32c;
use crate::crc32c::crc32c_parts;

/// The CRC-32C of `block` with the 4 bytes at `field` taken as zero.
pub(crate) fn block_crc(block: &[u8], field: usize) -> u32 {
    match (block.get(..field), block.get(field + 4..)) {
        (Some(head), Some(tail)) => crc32c_parts(&[head, &[0u8; 4], tail]),
        _ => 0,
    }
}

/// Checks the v5 checksum of `block` (stored little-endian at `field`);
/// a mismatch is a [`FsError::Checksum`] naming `structure` and `offset`,
/// unless `checks` ignores it.
pub(crate) fn verify(
    checks: &Checks,
    block: &[u8],
    field: usize,
    structure: &str,
    offset: u64,
) -> Result<(), FsError> {
    checks.check(
        le32(block, field),
        block_crc(block, field),
        structure,
        offset,
    )
}

/// Big-endian u16 at `at`; 0 where `b` is too short (callers check sizes).
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

/// Big-endian u32 at `at`; 0 where `b` is too short.
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Big-endian u64 at `at`; 0 where `b` is too short.
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_be_bytes(a)
    })
}

/// Little-endian u32 at `at` (only checksums are little-endian).
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn field_is_taken_as_zero() {
        let mut b = *b"abcdXXXXefgh";
        let sum = block_crc(&b, 4);
        b[4..8].fill(0);
        assert_eq!(sum, crc32c(&b));
        b[4..8].copy_from_slice(&sum.to_le_bytes());
        let c = Checks::default();
        assert!(verify(&c, &b, 4, "test", 0).is_ok());
        b[0] ^= 1;
        let e = verify(&c, &b, 4, "test block", 0x200).expect_err("mismatch");
        assert!(
            e.to_string()
                .contains("test block at byte 0x200: checksum mismatch"),
            "{e}"
        );
    }

    #[test]
    fn short_buffers_read_as_zero() {
        assert_eq!(be32(&[1, 2], 0), 0);
        assert_eq!(be16(&[1, 2], 0), 0x0102);
        assert_eq!(be64(&[0; 7], 0), 0);
    }
}
