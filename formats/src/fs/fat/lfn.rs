//! VFAT long names: the entries that precede a short entry.
//!
//! Source: Microsoft FAT specification ("FAT: General Overview of On-Disk
//! Format", 1.03, 2005), §7: a long name is up to 20 entries (attribute
//! 0x0F) of 13 UTF-16 units each, stored in reverse order before its short
//! entry, the first one stored flagged 0x40, each carrying the checksum of
//! the short name (§7.2). A sequence that is broken, a checksum that does
//! not match the short entry that follows (an orphaned long name), UTF-16
//! that does not decode (an unpaired surrogate) or a name that cannot be a
//! name (`.`, `..`, `/`, NUL) is dropped, and the short name is used, as
//! Windows does.

/// The attribute value of a long-name entry (low 6 bits).
pub const ATTR_LONG_NAME: u8 = 0x0F;

/// Long names are at most 255 UTF-16 units in 20 entries.
const MAX_LFN_ENTRIES: usize = 20;

/// Bytes of an entry holding the 13 units: 1..11, 14..26, 28..32.
fn unit_offsets() -> impl Iterator<Item = usize> {
    (1..11)
        .step_by(2)
        .chain((14..26).step_by(2))
        .chain((28..32).step_by(2))
}

/// The checksum of a short name that its long-name entries carry (§7.2).
pub fn lfn_checksum(name: &[u8; 11]) -> u8 {
    name.iter().fold(0u8, |sum, &c| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(c)
    })
}

/// Long-name entries seen so far, waiting for their short entry.
#[derive(Default)]
pub struct LongName {
    units: Vec<u16>,
    /// The sequence number expected next (counting down to 1); 0: none.
    expect: u8,
    checksum: u8,
}

impl LongName {
    /// Forgets what was collected (a deleted or unrelated entry came).
    pub fn reset(&mut self) {
        *self = LongName::default();
    }

    /// Takes in the long-name entry `b`.
    pub fn part(&mut self, b: &[u8; 32]) {
        let seq = usize::from(b[0] & 0x1F);
        if b[0] & 0x40 != 0 {
            if seq == 0 || seq > MAX_LFN_ENTRIES || b[12] != 0 {
                return self.reset();
            }
            self.units = vec![0xFFFF; seq * 13];
            self.checksum = b[13];
        } else if self.expect < 2
            || seq != usize::from(self.expect) - 1
            || b[13] != self.checksum
            || b[12] != 0
        {
            return self.reset();
        }
        self.expect = seq as u8;
        let at = (seq - 1) * 13;
        for (i, o) in unit_offsets().enumerate() {
            self.units[at + i] = u16::from_le_bytes([b[o], b[o + 1]]);
        }
    }

    /// The long name of the short entry named `short`, if the entries
    /// collected form one for it; resets either way.
    pub fn finish(&mut self, short: &[u8; 11]) -> Option<String> {
        let done = std::mem::take(self);
        if done.expect != 1 || done.checksum != lfn_checksum(short) {
            return None;
        }
        let end = done
            .units
            .iter()
            .position(|&u| u == 0)
            .unwrap_or(done.units.len());
        let s: String = char::decode_utf16(done.units[..end].iter().copied())
            .collect::<Result<_, _>>()
            .ok()?;
        (!s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\0'])).then_some(s)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
                for (u, o) in part.iter().zip(unit_offsets()) {
                    b[o..o + 2].copy_from_slice(&u.to_le_bytes());
                }
                b
            })
            .collect()
    }

    #[test]
    fn checksum_of_known_names() {
        // Values mtools wrote for these short names (see images/fat.sh).
        assert_eq!(lfn_checksum(b"MIXED   TXT"), 70);
        assert_eq!(lfn_checksum(b"___     TXT"), 187);
        assert_eq!(lfn_checksum(b"________TXT"), 196);
    }

    #[test]
    fn a_name_needs_its_whole_sequence_and_checksum() {
        let sn = b"LONGNA~1TXT";
        let parts = long("twenty-six units of a name", sn);
        // Exactly two full entries: no terminator, no padding.
        assert_eq!(parts.len(), 2);
        let mut l = LongName::default();
        for p in &parts {
            l.part(p);
        }
        assert_eq!(l.finish(sn).as_deref(), Some("twenty-six units of a name"));
        // finish() resets: nothing is left for the next entry.
        assert_eq!(l.finish(sn), None);
        for p in &parts {
            l.part(p);
        }
        assert_eq!(l.finish(b"OTHER   TXT"), None);
        // Starting in the middle is no name.
        l.part(&parts[1]);
        assert_eq!(l.finish(sn), None);
    }
}
