//! CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), shared by the
//! VHDX, XFS and ext4 readers.
//!
//! [`update`] is the raw register step without the initial and final
//! inversions, as ext4 chains it (`crc32c_le(seed, data)` in the kernel's
//! `Documentation/filesystems/ext4/`, "Checksums"); [`crc32c`] is the
//! standard CRC-32C (initial `!0`, final inversion) VHDX and XFS store.

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Feeds `data` into the CRC register `crc`, without inversions.
pub(crate) fn update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

/// The standard CRC-32C of the concatenation of `parts`.
pub(crate) fn crc32c_parts(parts: &[&[u8]]) -> u32 {
    !parts.iter().fold(!0u32, |c, p| update(c, p))
}

/// The standard CRC-32C of `data`.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc32c_parts(&[data])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(!update(!0, b"123456789"), 0xE306_9283);
        assert_eq!(
            update(update(!0, b"1234"), b"56789"),
            update(!0, b"123456789")
        );
    }
}
