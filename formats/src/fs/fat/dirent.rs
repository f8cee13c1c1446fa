//! Directory entries: 8.3 short entries, VFAT long-name entries, and the
//! parser that turns a directory's bytes into named entries.
//!
//! Sources: Microsoft FAT specification ("FAT: General Overview of On-Disk
//! Format", 1.03, 2005), §6 (the 32-byte entry: name, attributes, the
//! reserved byte 12 that Windows NT uses for lower-case flags 0x08 name and
//! 0x10 extension, times, first cluster, size; 0xE5 marks a free entry, 0x00
//! the end of the directory, 0x05 a name starting with byte 0xE5) and §7
//! (long names: up to 20 entries of 13 UTF-16 units before their short
//! entry, in reverse order, the last flagged 0x40, each carrying the
//! checksum of the short name).
//!
//! A long name whose sequence is broken, whose checksum does not match the
//! short entry that follows, or whose UTF-16 does not decode (an unpaired
//! surrogate) is ignored and the short name is used, as Windows does.

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
/// The attribute value of a long-name entry.
const ATTR_LONG_NAME: u8 = 0x0F;
/// The first name byte of a free (deleted) entry.
pub const FREE: u8 = 0xE5;

/// Long names are at most 255 UTF-16 units in 20 entries.
const MAX_LFN_ENTRIES: usize = 20;

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

/// The checksum of a short name that its long-name entries carry (§7.2).
pub fn lfn_checksum(name: &[u8; 11]) -> u8 {
    name.iter().fold(0u8, |sum, &c| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(c)
    })
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

/// One entry of a directory, with its name resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The long name if a valid one precedes it, else the short name.
    pub name: String,
    /// Byte offset of the short entry in the volume.
    pub offset: u64,
    /// The short entry.
    pub entry: ShortEntry,
    /// A deleted (0xE5) entry.
    pub deleted: bool,
}

/// Long-name entries seen so far, waiting for their short entry.
#[derive(Default)]
struct Pending {
    units: Vec<u16>,
    /// The sequence number expected next (counting down to 1); 0: none.
    expect: u8,
    checksum: u8,
}

/// Turns a directory's entries, fed in order, into [`Listed`] entries.
pub struct DirParser {
    cp: CodePage,
    pending: Pending,
    /// Entries so far (`.` and `..` left out).
    pub entries: Vec<Listed>,
    /// The volume label entry's name, if one was seen.
    pub label: Option<[u8; 11]>,
    /// The end-of-directory marker was met: the rest is unused.
    pub ended: bool,
}

impl DirParser {
    /// A parser decoding short names with `cp`.
    pub fn new(cp: CodePage) -> DirParser {
        DirParser {
            cp,
            pending: Pending::default(),
            entries: Vec::new(),
            label: None,
            ended: false,
        }
    }

    /// Feeds the entry `b` found at volume offset `offset`.
    pub fn feed(&mut self, offset: u64, b: &[u8; 32]) {
        if self.ended {
            return;
        }
        let first = b[0];
        if first == 0 {
            self.ended = true;
            return;
        }
        let attr = b[11];
        if attr & 0x3F == ATTR_LONG_NAME {
            if first == FREE {
                self.pending = Pending::default();
            } else {
                self.long_part(b);
            }
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let entry = ShortEntry::parse(b);
        if attr & ATTR_VOLUME_ID != 0 {
            if first != FREE && self.label.is_none() {
                self.label = Some(entry.name);
            }
            return;
        }
        if &entry.name == b".          " || &entry.name == b"..         " {
            return;
        }
        let deleted = first == FREE;
        let long =
            if deleted || pending.expect != 1 || pending.checksum != lfn_checksum(&entry.name) {
                None
            } else {
                long_name(&pending.units)
            };
        let name = long.unwrap_or_else(|| {
            let s = short_name(&entry.name, entry.nt_case, self.cp, deleted);
            if s.is_empty() { "_".to_string() } else { s }
        });
        self.entries.push(Listed {
            name,
            offset,
            entry,
            deleted,
        });
    }

    fn long_part(&mut self, b: &[u8; 32]) {
        let seq = usize::from(b[0] & 0x1F);
        let p = &mut self.pending;
        if b[0] & 0x40 != 0 {
            if seq == 0 || seq > MAX_LFN_ENTRIES || b[12] != 0 {
                *p = Pending::default();
                return;
            }
            p.units = vec![0xFFFF; seq * 13];
            p.checksum = b[13];
        } else if p.expect < 2
            || seq != usize::from(p.expect) - 1
            || b[13] != p.checksum
            || b[12] != 0
        {
            *p = Pending::default();
            return;
        }
        p.expect = seq as u8;
        // Units 1–5 at bytes 1..11, 6–11 at 14..26, 12–13 at 28..32.
        let at = (seq - 1) * 13;
        let offsets = (1..11)
            .step_by(2)
            .chain((14..26).step_by(2))
            .chain((28..32).step_by(2));
        for (i, o) in offsets.enumerate() {
            p.units[at + i] = u16::from_le_bytes([b[o], b[o + 1]]);
        }
    }
}

/// The long name in `units` (up to a 0 terminator), or `None` if it does
/// not decode or is not a usable name.
fn long_name(units: &[u16]) -> Option<String> {
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let s: String = char::decode_utf16(units[..end].iter().copied())
        .collect::<Result<_, _>>()
        .ok()?;
    (!s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0'])).then_some(s)
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

    /// The long-name entries for `name` in on-disk order (last part first).
    pub(crate) fn long(name: &str, short_name: &[u8; 11]) -> Vec<[u8; 32]> {
        let mut units: Vec<u16> = name.encode_utf16().collect();
        if units.len() % 13 != 0 {
            units.push(0);
        }
        while units.len() % 13 != 0 {
            units.push(0xFFFF);
        }
        let n = units.len() / 13;
        let sum = lfn_checksum(short_name);
        (1..=n)
            .rev()
            .map(|seq| {
                let mut b = [0u8; 32];
                b[0] = seq as u8 | if seq == n { 0x40 } else { 0 };
                b[11] = ATTR_LONG_NAME;
                b[13] = sum;
                let part = &units[(seq - 1) * 13..seq * 13];
                let offsets = (1..11)
                    .step_by(2)
                    .chain((14..26).step_by(2))
                    .chain((28..32).step_by(2));
                for (u, o) in part.iter().zip(offsets) {
                    b[o..o + 2].copy_from_slice(&u.to_le_bytes());
                }
                b
            })
            .collect()
    }

    fn parse(entries: &[[u8; 32]]) -> DirParser {
        let mut p = DirParser::new(CodePage::Cp850);
        for (i, e) in entries.iter().enumerate() {
            p.feed(i as u64 * 32, e);
        }
        p
    }

    #[test]
    fn checksum_of_known_names() {
        // Values mtools wrote for these short names (see images/fat.sh).
        assert_eq!(lfn_checksum(b"MIXED   TXT"), 70);
        assert_eq!(lfn_checksum(b"___     TXT"), 187);
        assert_eq!(lfn_checksum(b"________TXT"), 196);
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
    fn long_names_assemble_and_verify() {
        let sn = b"LONGNA~1TXT";
        let name = "a long name with Ελληνικά and 日本語 characters.txt";
        let mut es = long(name, sn);
        es.push(short(sn, ATTR_ARCHIVE, 0, 5, 10));
        let p = parse(&es);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].name, name);
        assert_eq!(p.entries[0].offset, (es.len() as u64 - 1) * 32);
        // A surrogate pair (U+1F600) survives.
        let mut es = long("smile 😀.txt", sn);
        es.push(short(sn, ATTR_ARCHIVE, 0, 5, 10));
        assert_eq!(parse(&es).entries[0].name, "smile 😀.txt");
    }

    #[test]
    fn broken_long_names_fall_back_to_the_short_name() {
        let sn = b"LONGNA~1TXT";
        let name = "a name of more than thirteen units.txt";
        // Wrong checksum.
        let mut es = long(name, b"OTHER   TXT");
        es.push(short(sn, 0, 0, 5, 1));
        assert_eq!(parse(&es).entries[0].name, "LONGNA~1.TXT");
        // A missing middle part.
        let mut es = long(name, sn);
        es.remove(1);
        es.push(short(sn, 0, 0, 5, 1));
        assert_eq!(parse(&es).entries[0].name, "LONGNA~1.TXT");
        // An orphan: long entries, then a deleted entry, then the short one.
        let mut es = long(name, sn);
        es.push(short(b"\xe5ELETED TXT", 0, 0, 9, 1));
        es.push(short(sn, 0, 0, 5, 1));
        let p = parse(&es);
        assert_eq!(p.entries[0].name, "_ELETED.TXT");
        assert!(p.entries[0].deleted);
        assert_eq!(p.entries[1].name, "LONGNA~1.TXT");
        // An unpaired surrogate.
        let mut es = long("ab", sn);
        es[0][1..3].copy_from_slice(&0xD800u16.to_le_bytes());
        es.push(short(sn, 0, 0, 5, 1));
        assert_eq!(parse(&es).entries[0].name, "LONGNA~1.TXT");
        // A long name containing '/'.
        let mut es = long("a/b", sn);
        es.push(short(sn, 0, 0, 5, 1));
        assert_eq!(parse(&es).entries[0].name, "LONGNA~1.TXT");
    }

    #[test]
    fn dots_labels_and_the_end_marker() {
        let es = [
            short(b"MYLABEL    ", ATTR_VOLUME_ID, 0, 0, 0),
            short(b".          ", ATTR_DIRECTORY, 0, 3, 0),
            short(b"..         ", ATTR_DIRECTORY, 0, 0, 0),
            short(b"SUB        ", ATTR_DIRECTORY, 0, 4, 0),
            [0u8; 32],
            short(b"GHOST   TXT", 0, 0, 4, 0),
        ];
        let p = parse(&es);
        assert_eq!(p.label, Some(*b"MYLABEL    "));
        assert_eq!(label(b"FAT12TEST  ", CodePage::Cp850), "FAT12TEST");
        assert!(p.ended);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].name, "SUB");
        assert!(p.entries[0].entry.is_dir());
        assert_eq!(p.entries[0].entry.attr_letters(), "----D");
        assert_eq!(
            ShortEntry::parse(&short(b"X          ", 0, 0, 0x12_3456, 0)).first_cluster(true),
            0x12_3456
        );
        assert_eq!(
            ShortEntry::parse(&short(b"X          ", 0, 0, 0x12_3456, 0)).first_cluster(false),
            0x3456
        );
    }
}
