//! Bounds-checked little-endian field reads and UTF-16 decoding shared by
//! the NTFS structures. Every read of an on-disk field goes through these:
//! a field past the end of its buffer reads as `None`, never a panic.

/// `N` bytes at `at`, if they lie inside `b`.
pub(crate) fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub(crate) fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    bytes(b, at).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at).map(u32::from_le_bytes)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    bytes(b, at).map(u64::from_le_bytes)
}

/// `len` bytes at `at`, if inside `b`.
pub(crate) fn slice(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

/// UTF-16LE code units of `b` (an odd trailing byte is dropped).
pub(crate) fn utf16_units(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// A name as stored (UTF-16, possibly with unpaired surrogates) as a
/// `String`; an unpaired surrogate becomes U+FFFD, as ntfs-3g shows it.
pub(crate) fn utf16_string(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// The low 48 bits of an MFT reference: the record number.
pub(crate) fn mref_record(r: u64) -> u64 {
    r & 0x0000_FFFF_FFFF_FFFF
}

/// The high 16 bits of an MFT reference: the sequence number.
pub(crate) fn mref_seq(r: u64) -> u16 {
    (r >> 48) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let b = [1u8, 2, 3];
        assert_eq!(u16_at(&b, 1), Some(0x0302));
        assert_eq!(u16_at(&b, 2), None);
        assert_eq!(u64_at(&b, usize::MAX), None);
        assert_eq!(slice(&b, usize::MAX, 2), None);
        assert_eq!(utf16_string(&[0x61, 0xD800, 0x62]), "a\u{FFFD}b");
        assert_eq!(mref_record(0x0005_0000_0000_0024), 0x24);
        assert_eq!(mref_seq(0x0005_0000_0000_0024), 5);
    }
}
