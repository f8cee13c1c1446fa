//! MFT records (`FILE`) and the update sequence ("fixups") that protects
//! every multi-sector structure (MFT records and `INDX` index blocks).
//!
//! Sources: "NTFS Documentation" (Russon, Fledel), "Concepts: File Record"
//! and "Concepts: Fixup"; the Linux kernel's `fs/ntfs3/ntfs.h`
//! (`struct NTFS_RECORD_HEADER`, `struct MFT_REC`). The update sequence
//! array at `usa_offset` holds the update sequence number followed by one
//! saved value per 512-byte block; on disk the last two bytes of each block
//! hold the number, and a block whose last two bytes differ was not
//! written with the others (a torn write). The record header: sequence
//! number at 0x10, hard-link count at 0x12, offset of the first attribute
//! at 0x14, flags at 0x16 (1 in use, 2 directory), bytes used at 0x18,
//! bytes allocated at 0x1C, base record reference at 0x20.

use super::attr::Attribute;
use super::le::{u16_at, u32_at, u64_at};
use crate::fs::FsError;

/// The unit the update sequence protects, whatever the sector size.
pub(crate) const FIXUP_BLOCK: usize = 512;

/// Checks and removes the update sequence of a multi-sector structure in
/// place. `what` names the structure for the error, `offset` is its byte
/// offset in the volume.
pub(crate) fn apply_fixups(
    buf: &mut [u8],
    magic: &[u8; 4],
    what: &dyn Fn() -> String,
    offset: u64,
) -> Result<(), FsError> {
    let bad = |detail: String| FsError::corrupt(what(), offset, detail);
    if buf.get(..4) != Some(magic) {
        let got = buf.get(..4).unwrap_or_default();
        return Err(bad(format!(
            "signature {:?}, not {:?}",
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(magic)
        )));
    }
    let usa_off = usize::from(u16_at(buf, 4).unwrap_or(0));
    let usa_count = usize::from(u16_at(buf, 6).unwrap_or(0));
    let blocks = buf.len() / FIXUP_BLOCK;
    if usa_count != blocks + 1 {
        return Err(bad(format!(
            "update sequence of {usa_count} entries for {blocks} blocks of 512 bytes"
        )));
    }
    if usa_off % 2 != 0 || usa_off < 0x08 || usa_off + 2 * usa_count > FIXUP_BLOCK - 2 {
        return Err(bad(format!("update sequence array at {usa_off:#x}")));
    }
    let usn = [buf[usa_off], buf[usa_off + 1]];
    for i in 0..blocks {
        let end = (i + 1) * FIXUP_BLOCK - 2;
        if buf[end..end + 2] != usn {
            return Err(bad(format!(
                "torn write: block {i} ends in {:02x}{:02x}, not the update sequence number {:02x}{:02x}",
                buf[end + 1],
                buf[end],
                usn[1],
                usn[0]
            )));
        }
        let saved = usa_off + 2 * (i + 1);
        buf[end] = buf[saved];
        buf[end + 1] = buf[saved + 1];
    }
    Ok(())
}

/// An MFT record with its fixups applied and its header checked.
#[derive(Debug)]
pub(crate) struct Record {
    pub number: u64,
    /// Byte offset in the volume (for errors).
    pub offset: u64,
    pub data: Vec<u8>,
    pub seq: u16,
    pub link_count: u16,
    pub flags: u16,
    /// The base record this extension record belongs to (0: a base record).
    pub base_ref: u64,
    attrs_offset: usize,
    used: usize,
}

pub(crate) const RECORD_IN_USE: u16 = 0x0001;
pub(crate) const RECORD_IS_DIR: u16 = 0x0002;

impl Record {
    /// The structure name in errors.
    pub fn name(number: u64) -> String {
        format!("NTFS MFT record {number}")
    }

    /// Checks the update sequence and header of `data`, the raw bytes of
    /// record `number` read at volume offset `offset`.
    pub fn parse(number: u64, offset: u64, mut data: Vec<u8>) -> Result<Record, FsError> {
        apply_fixups(&mut data, b"FILE", &|| Record::name(number), offset)?;
        let bad = |detail: String| FsError::corrupt(Record::name(number), offset, detail);
        let field16 = |at| u16_at(&data, at).unwrap_or(0);
        let attrs_offset = usize::from(field16(0x14));
        let used = u32_at(&data, 0x18).unwrap_or(0) as usize;
        if used > data.len() || used < 0x30 {
            return Err(bad(format!(
                "{used} bytes used in a record of {} bytes",
                data.len()
            )));
        }
        if attrs_offset % 8 != 0 || attrs_offset < 0x2A || attrs_offset >= used {
            return Err(bad(format!("first attribute at {attrs_offset:#x}")));
        }
        // NTFS 3.1 records (update sequence at 0x30) name themselves at
        // 0x2C: a record read from the wrong place (a damaged $MFT run
        // list) is caught here rather than shown as another file.
        if field16(4) == 0x30 {
            let stored = u32_at(&data, 0x2C).unwrap_or(0);
            if u64::from(stored) != number & 0xFFFF_FFFF {
                return Err(bad(format!("the record says it is record {stored}")));
            }
        }
        Ok(Record {
            number,
            offset,
            seq: field16(0x10),
            link_count: field16(0x12),
            flags: field16(0x16),
            base_ref: u64_at(&data, 0x20).unwrap_or(0),
            attrs_offset,
            used,
            data,
        })
    }

    pub fn in_use(&self) -> bool {
        self.flags & RECORD_IN_USE != 0
    }

    pub fn is_dir(&self) -> bool {
        self.flags & RECORD_IS_DIR != 0
    }

    /// The record's attributes in on-disk order, up to the end marker.
    pub fn attributes(&self) -> Result<Vec<Attribute>, FsError> {
        let mut out = Vec::new();
        let mut at = self.attrs_offset;
        let used = &self.data[..self.used];
        loop {
            let bad = |detail: String| {
                FsError::corrupt(
                    format!("{} attribute at {at:#x}", Record::name(self.number)),
                    self.offset + at as u64,
                    detail,
                )
            };
            let Some(ty) = u32_at(used, at) else {
                return Err(bad("no end marker before the end of the used bytes".into()));
            };
            if ty == 0xFFFF_FFFF {
                return Ok(out);
            }
            let len = u32_at(used, at + 4).unwrap_or(0) as usize;
            if len < 0x18 || len % 8 != 0 || at.checked_add(len).is_none_or(|e| e > used.len()) {
                return Err(bad(format!(
                    "length {len:#x} overflows the {:#x} bytes used",
                    used.len()
                )));
            }
            out.push(Attribute::parse(&used[at..at + len], self.number).map_err(bad)?);
            at += len;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Protects `buf` with an update sequence at 0x30 numbered `usn`, as a
    /// writer does.
    pub(crate) fn protect(buf: &mut [u8], usn: u16) {
        let blocks = buf.len() / FIXUP_BLOCK;
        buf[4..6].copy_from_slice(&0x30u16.to_le_bytes());
        buf[6..8].copy_from_slice(&((blocks + 1) as u16).to_le_bytes());
        buf[0x30..0x32].copy_from_slice(&usn.to_le_bytes());
        for i in 0..blocks {
            let end = (i + 1) * FIXUP_BLOCK - 2;
            let saved = 0x30 + 2 * (i + 1);
            buf.copy_within(end..end + 2, saved);
            buf[end..end + 2].copy_from_slice(&usn.to_le_bytes());
        }
    }

    /// An in-use 1 KiB record holding `attrs` (each already laid out).
    pub(crate) fn record(number: u32, attrs: &[Vec<u8>], flags: u16) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[..4].copy_from_slice(b"FILE");
        b[0x2C..0x30].copy_from_slice(&number.to_le_bytes());
        b[0x10..0x12].copy_from_slice(&1u16.to_le_bytes());
        b[0x12..0x14].copy_from_slice(&1u16.to_le_bytes());
        b[0x14..0x16].copy_from_slice(&0x38u16.to_le_bytes());
        b[0x16..0x18].copy_from_slice(&flags.to_le_bytes());
        let mut at = 0x38;
        for a in attrs {
            b[at..at + a.len()].copy_from_slice(a);
            at += a.len();
        }
        b[at..at + 4].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        b[0x18..0x1C].copy_from_slice(&((at + 8) as u32).to_le_bytes());
        b[0x1C..0x20].copy_from_slice(&1024u32.to_le_bytes());
        b
    }

    #[test]
    fn fixups_restore_the_saved_bytes() {
        let mut b = record(3, &[], RECORD_IN_USE);
        b[510] = 0xAB;
        b[1022] = 0xCD;
        let orig = b.clone();
        protect(&mut b, 7);
        assert_eq!(&b[510..512], &7u16.to_le_bytes());
        let r = Record::parse(3, 0x4000, b).expect("record");
        assert_eq!(r.data[510], 0xAB);
        assert_eq!(r.data[1022], 0xCD);
        assert_eq!(&r.data[0x38..], &orig[0x38..]);
        assert!(r.in_use() && !r.is_dir());
        assert!(r.attributes().expect("attrs").is_empty());
    }

    #[test]
    fn a_torn_record_is_a_named_error() {
        let mut b = record(37, &[], RECORD_IN_USE);
        protect(&mut b, 7);
        b[1023] ^= 1;
        let err = Record::parse(37, 0x9000, b).expect_err("torn").to_string();
        assert!(
            err.contains("NTFS MFT record 37") && err.contains("torn write: block 1"),
            "{err}"
        );
        assert!(err.contains("0x9000"), "{err}");
    }

    #[test]
    fn bad_headers_are_errors() {
        let mut b = record(1, &[], RECORD_IN_USE);
        protect(&mut b, 1);
        assert!(Record::parse(1, 0, b.clone()).is_ok());
        let e = Record::parse(2, 0, b.clone())
            .expect_err("misplaced")
            .to_string();
        assert!(e.contains("says it is record 1"), "{e}");
        let mut wrong_magic = b.clone();
        wrong_magic[0] = b'B';
        assert!(Record::parse(1, 0, wrong_magic).is_err());
        let mut big_count = b.clone();
        big_count[6] = 200;
        assert!(Record::parse(1, 0, big_count).is_err());
        let mut first_attr = b.clone();
        first_attr[0x14] = 0xF8;
        first_attr[0x15] = 0x03;
        assert!(Record::parse(1, 0, first_attr).is_err());
        // An attribute whose length runs past the used bytes.
        let mut over = record(9, &[], RECORD_IN_USE);
        over[0x38..0x3C].copy_from_slice(&0x10u32.to_le_bytes());
        over[0x3C..0x40].copy_from_slice(&0x300u32.to_le_bytes());
        protect(&mut over, 1);
        let r = Record::parse(9, 0, over).expect("header is fine");
        let err = r.attributes().expect_err("overflow").to_string();
        assert!(err.contains("overflows"), "{err}");
    }
}
