//! Short (8.3) directory entries and their names.
//!
//! Source: Microsoft FAT specification ("FAT: General Overview of On-Disk
//! Format", 1.03, 2005), §6: the 32-byte entry (name, attributes, the
//! reserved byte 12 that Windows NT uses for lower-case flags, 0x08 for the
//! name and 0x10 for the extension, times, first cluster, size); 0xE5 marks
//! a free entry, 0x00 the end of the directory, 0x05 a name starting with
//! byte 0xE5. Names are decoded with an OEM code page ([`super::codepage`]).

use super::codepage::CodePage;

/// Read-only attribute.
pub const ATTR_READ_ONLY: u8 = 0x01;
/// Hidden attribute.
pub const ATTR_HIDDEN: u8 = 0x02;
/// System attribute.
pub const ATTR_SYSTEM: u8 = 0x04;
/// Volume label attribute.
pub const ATTR_VOLUME_ID: u8 = 0x08;
/// Directory attribute.
pub const ATTR_DIRECTORY: u8 = 0x10;
/// Archive attribute.
pub const ATTR_ARCHIVE: u8 = 0x20;
/// The first name byte of a free (deleted) entry.
pub const FREE: u8 = 0xE5;

/// A short (8.3) directory entry, decoded field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortEntry {
    /// Name and extension, space-padded, as stored.
    pub name: [u8; 11],
    /// Attribute bits.
    pub attr: u8,
    /// Windows NT case flags (byte 12).
    pub nt_case: u8,
    /// Creation time, 10 ms units.
    pub ctime_tenths: u8,
    /// Creation time.
    pub ctime: u16,
    /// Creation date.
    pub cdate: u16,
    /// Last access date.
    pub adate: u16,
    /// High 16 bits of the first cluster (FAT32 only).
    pub cluster_hi: u16,
    /// Modification time.
    pub mtime: u16,
    /// Modification date.
    pub mdate: u16,
    /// Low 16 bits of the first cluster.
    pub cluster_lo: u16,
    /// File size in bytes.
    pub size: u32,
}

fn u16_at(b: &[u8; 32], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl ShortEntry {
    /// Decodes the 32 bytes of an entry.
    pub fn parse(b: &[u8; 32]) -> ShortEntry {
        let mut name = [0u8; 11];
        name.copy_from_slice(&b[..11]);
        ShortEntry {
            name,
            attr: b[11],
            nt_case: b[12],
            ctime_tenths: b[13],
            ctime: u16_at(b, 14),
            cdate: u16_at(b, 16),
            adate: u16_at(b, 18),
            cluster_hi: u16_at(b, 20),
            mtime: u16_at(b, 22),
            mdate: u16_at(b, 24),
            cluster_lo: u16_at(b, 26),
            size: u32::from_le_bytes([b[28], b[29], b[30], b[31]]),
        }
    }

    /// The first cluster; the high half counts on FAT32 only (FAT12/16 use
    /// those bytes for other things).
    pub fn first_cluster(&self, fat32: bool) -> u32 {
        let hi = if fat32 { u32::from(self.cluster_hi) } else { 0 };
        (hi << 16) | u32::from(self.cluster_lo)
    }

    /// Is it a directory?
    pub fn is_dir(&self) -> bool {
        self.attr & ATTR_DIRECTORY != 0
    }

    /// The `R`, `H`, `S`, `A` (and `D` for directories) letters of its
    /// attributes, `-` for those not set.
    pub fn attr_letters(&self) -> String {
        [
            (ATTR_READ_ONLY, 'R'),
            (ATTR_HIDDEN, 'H'),
            (ATTR_SYSTEM, 'S'),
            (ATTR_ARCHIVE, 'A'),
            (ATTR_DIRECTORY, 'D'),
        ]
        .iter()
        .map(|&(bit, c)| if self.attr & bit != 0 { c } else { '-' })
        .collect()
    }
}

/// Decodes one half (base or extension) of a short name.
fn decode_part(bytes: &[u8], lower: bool, cp: CodePage, out: &mut String) {
    let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    for &b in &bytes[..end] {
        let c = match cp.decode(b) {
            '/' | '\0' => '_',
            c => c,
        };
        if lower {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
}

/// The short name as displayed: `BASE.EXT` without padding, lower-cased
/// where the NT flags say so (`nt_case` 0 for the stored form); a deleted
/// entry's lost first character is `_`.
pub fn short_name(name: &[u8; 11], nt_case: u8, cp: CodePage, deleted: bool) -> String {
    let mut base = *name;
    if deleted {
        base[0] = b'_';
    } else if base[0] == 0x05 {
        base[0] = FREE;
    }
    let mut s = String::new();
    decode_part(&base[..8], nt_case & 0x08 != 0, cp, &mut s);
    if base[8..].iter().any(|&b| b != b' ') {
        s.push('.');
        decode_part(&base[8..], nt_case & 0x10 != 0, cp, &mut s);
    }
    s
}

/// A volume label (11 bytes, no dot between name and extension), without
/// its padding.
pub fn label(bytes: &[u8; 11], cp: CodePage) -> String {
    let mut s = String::new();
    decode_part(bytes, false, cp, &mut s);
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A short entry named `name` with `attr`, case flags and cluster.
    pub(crate) fn short(
        name: &[u8; 11],
        attr: u8,
        nt_case: u8,
        cluster: u32,
        size: u32,
    ) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..11].copy_from_slice(name);
        b[11] = attr;
        b[12] = nt_case;
        b[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
        b[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
        b[28..32].copy_from_slice(&size.to_le_bytes());
        b
    }

    #[test]
    fn short_names_with_case_flags_and_code_pages() {
        assert_eq!(
            short_name(b"UPPER   TXT", 0, CodePage::Cp850, false),
            "UPPER.TXT"
        );
        assert_eq!(
            short_name(b"LOWER   TXT", 0x18, CodePage::Cp850, false),
            "lower.txt"
        );
        assert_eq!(
            short_name(b"UP      LOW", 0x10, CodePage::Cp850, false),
            "UP.low"
        );
        assert_eq!(
            short_name(b"MAKEFILE   ", 0x08, CodePage::Cp850, false),
            "makefile"
        );
        assert_eq!(
            short_name(b"BR\x9dD    TXT", 0x18, CodePage::Cp850, false),
            "brød.txt"
        );
        assert_eq!(
            short_name(b"BR\x9dD    TXT", 0x18, CodePage::Cp437, false),
            "br¥d.txt"
        );
        assert_eq!(
            short_name(b"NESTED_\xa5TXT", 0x18, CodePage::Cp850, false),
            "nested_ñ.txt"
        );
        // 0x05 stands for a leading 0xE5 (σ in 437, Õ in 850).
        assert_eq!(
            short_name(b"\x05ABC    TXT", 0, CodePage::Cp437, false),
            "σABC.TXT"
        );
        assert_eq!(
            short_name(b"\xe5ABC    TXT", 0, CodePage::Cp437, true),
            "_ABC.TXT"
        );
        assert_eq!(
            short_name(b"A/B\0    TXT", 0, CodePage::Cp437, false),
            "A_B_.TXT"
        );
    }

    #[test]
    fn fields_and_attributes() {
        let e = ShortEntry::parse(&short(b"X          ", 0x21, 0, 0x12_3456, 7));
        assert_eq!(e.first_cluster(true), 0x12_3456);
        assert_eq!(e.first_cluster(false), 0x3456);
        assert_eq!(e.size, 7);
        assert_eq!(e.attr_letters(), "R--A-");
        assert_eq!(label(b"FAT12TEST  ", CodePage::Cp850), "FAT12TEST");
    }
}
