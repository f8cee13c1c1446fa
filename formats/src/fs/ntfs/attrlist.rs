//! $ATTRIBUTE_LIST: where the attributes of a file live when they do not
//! fit in its base MFT record (many data runs, many names, many streams).
//!
//! Sources: "NTFS Documentation" (Russon, Fledel), "Attributes:
//! $ATTRIBUTE_LIST"; the Linux kernel's `fs/ntfs3/ntfs.h`
//! (`struct ATTR_LIST_ENTRY`). Each entry: type at 0, entry length at 4,
//! name length at 6, name offset at 7, first VCN at 8, the MFT reference
//! of the record holding the attribute at 0x10, attribute id at 0x18.

use super::le::{mref_record, u8_at, u16_at, u32_at, u64_at};

/// One entry: attribute `type_code` (from `start_vcn`) is in `record`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub type_code: u32,
    pub start_vcn: u64,
    pub record: u64,
    pub instance: u16,
}

/// Parses the list; the error describes the damaged entry.
pub(crate) fn parse(b: &[u8]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < b.len() {
        let (Some(type_code), Some(len)) = (u32_at(b, at), u16_at(b, at + 4)) else {
            // Trailing bytes too short for an entry header.
            if b[at..].iter().all(|&x| x == 0) {
                break;
            }
            return Err(format!("entry at byte {at} is cut off"));
        };
        if type_code == 0 && len == 0 {
            break;
        }
        let len = usize::from(len);
        if len < 0x1A || at + len > b.len() {
            return Err(format!("entry at byte {at} has length {len}"));
        }
        let name_len = usize::from(u8_at(b, at + 6).unwrap_or(0));
        let name_off = usize::from(u8_at(b, at + 7).unwrap_or(0));
        if name_len > 0 && name_off + 2 * name_len > len {
            return Err(format!("entry at byte {at}: name overflows the entry"));
        }
        out.push(Entry {
            type_code,
            start_vcn: u64_at(b, at + 8).unwrap_or(0),
            record: mref_record(u64_at(b, at + 0x10).unwrap_or(0)),
            instance: u16_at(b, at + 0x18).unwrap_or(0),
        });
        at += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn entry(type_code: u32, vcn: u64, record: u64) -> Vec<u8> {
        let mut e = vec![0u8; 0x20];
        e[0..4].copy_from_slice(&type_code.to_le_bytes());
        e[4..6].copy_from_slice(&0x20u16.to_le_bytes());
        e[7] = 0x1A;
        e[8..16].copy_from_slice(&vcn.to_le_bytes());
        e[16..24].copy_from_slice(&(record | 1 << 48).to_le_bytes());
        e
    }

    #[test]
    fn parses_and_bounds() {
        let mut b = entry(0x10, 0, 40);
        b.extend(entry(0x80, 100, 41));
        let l = parse(&b).expect("list");
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].record, 41);
        assert_eq!(l[1].start_vcn, 100);
        let mut bad = b.clone();
        bad[4] = 0xFF;
        assert!(parse(&bad).is_err());
        bad[4] = 0x04;
        assert!(parse(&bad).is_err());
        let mut name = b;
        name[6] = 20;
        assert!(parse(&name).is_err());
    }
}
