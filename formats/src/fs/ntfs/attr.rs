//! Attribute headers (resident and non-resident) and the two small
//! attributes every file has: $STANDARD_INFORMATION and $FILE_NAME.
//!
//! Sources: "NTFS Documentation" (Russon, Fledel), "Concepts: Attribute
//! Header", "Attributes: $STANDARD_INFORMATION", "Attributes: $FILE_NAME";
//! the Linux kernel's `fs/ntfs3/ntfs.h` (`struct ATTRIB`,
//! `struct ATTR_STD_INFO`, `struct ATTR_FILE_NAME`). Header: type at 0,
//! length at 4, non-resident flag at 8, name length (UTF-16 units) at 9,
//! name offset at 0x0A, flags at 0x0C (0x00FF compressed, 0x4000
//! encrypted, 0x8000 sparse), instance at 0x0E. Resident: value length at
//! 0x10, value offset at 0x14. Non-resident: first and last VCN at 0x10 and
//! 0x18, mapping pairs offset at 0x20, compression unit (log2 clusters) at
//! 0x22, allocated, data and initialized sizes at 0x28, 0x30, 0x38.

use super::le::{mref_record, slice, u8_at, u16_at, u32_at, u64_at, utf16_units};
use super::runlist::{self, DataRun};
use crate::fs::Timestamp;

pub(crate) const AT_STANDARD_INFORMATION: u32 = 0x10;
pub(crate) const AT_ATTRIBUTE_LIST: u32 = 0x20;
pub(crate) const AT_FILE_NAME: u32 = 0x30;
pub(crate) const AT_VOLUME_NAME: u32 = 0x60;
pub(crate) const AT_DATA: u32 = 0x80;
pub(crate) const AT_INDEX_ROOT: u32 = 0x90;
pub(crate) const AT_INDEX_ALLOCATION: u32 = 0xA0;
pub(crate) const AT_REPARSE_POINT: u32 = 0xC0;

pub(crate) const FLAG_COMPRESSED: u16 = 0x00FF;
pub(crate) const FLAG_ENCRYPTED: u16 = 0x4000;
pub(crate) const FLAG_SPARSE: u16 = 0x8000;

/// A non-resident attribute's header fields and decoded runs (of this
/// extent: VCNs `start_vcn..=last_vcn`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NonResident {
    pub start_vcn: u64,
    pub last_vcn: u64,
    pub compression_unit: u8,
    pub allocated_size: u64,
    pub data_size: u64,
    pub initialized_size: u64,
    /// The raw mapping pairs (decoded once the volume size is known).
    pub mapping_pairs: Vec<u8>,
}

impl NonResident {
    /// Clusters this extent maps (`last_vcn - start_vcn + 1`).
    pub fn extent_clusters(&self) -> u64 {
        self.last_vcn.wrapping_add(1).wrapping_sub(self.start_vcn)
    }

    /// The runs, each inside a volume of `clusters` clusters.
    pub fn runs(&self, clusters: u64) -> Result<Vec<DataRun>, String> {
        runlist::decode(&self.mapping_pairs, clusters)
    }
}

/// What an attribute holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    Resident(Vec<u8>),
    NonResident(NonResident),
}

/// One attribute (one extent of it, for a non-resident attribute split
/// over several records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attribute {
    pub type_code: u32,
    pub name: Vec<u16>,
    pub flags: u16,
    pub instance: u16,
    /// The MFT record it was found in.
    pub record: u64,
    pub body: Body,
}

impl Attribute {
    /// Parses the attribute occupying all of `b`; the error is a
    /// description for the caller to name.
    pub fn parse(b: &[u8], record: u64) -> Result<Attribute, String> {
        let type_code = u32_at(b, 0).ok_or("short attribute")?;
        let non_resident = u8_at(b, 8).ok_or("short attribute")?;
        let name_len = usize::from(u8_at(b, 9).ok_or("short attribute")?);
        let name_off = usize::from(u16_at(b, 0x0A).ok_or("short attribute")?);
        let flags = u16_at(b, 0x0C).ok_or("short attribute")?;
        let instance = u16_at(b, 0x0E).ok_or("short attribute")?;
        let name = match name_len {
            0 => Vec::new(),
            n => utf16_units(
                slice(b, name_off, 2 * n)
                    .ok_or_else(|| format!("name of {n} units at {name_off:#x} overflows"))?,
            ),
        };
        let body = match non_resident {
            0 => {
                let len = u32_at(b, 0x10).ok_or("short attribute")? as usize;
                let off = usize::from(u16_at(b, 0x14).ok_or("short attribute")?);
                let value = slice(b, off, len).ok_or_else(|| {
                    format!(
                        "resident value of {len} bytes at {off:#x} overflows the attribute of {} bytes",
                        b.len()
                    )
                })?;
                Body::Resident(value.to_vec())
            }
            1 => {
                let f = |at| u64_at(b, at).ok_or("short non-resident attribute");
                let start_vcn = f(0x10)?;
                let last_vcn = f(0x18)?;
                let pairs_off = usize::from(u16_at(b, 0x20).ok_or("short attribute")?);
                let nr = NonResident {
                    start_vcn,
                    last_vcn,
                    compression_unit: u8_at(b, 0x22).ok_or("short attribute")?,
                    allocated_size: f(0x28)?,
                    data_size: f(0x30)?,
                    initialized_size: f(0x38)?,
                    mapping_pairs: b
                        .get(pairs_off..)
                        .filter(|_| pairs_off >= 0x40)
                        .ok_or_else(|| format!("mapping pairs at {pairs_off:#x}"))?
                        .to_vec(),
                };
                // An empty attribute has VCNs 0..=-1.
                let empty = start_vcn == 0 && last_vcn == u64::MAX;
                if !empty && last_vcn.checked_add(1).is_none_or(|end| end < start_vcn) {
                    return Err(format!("VCNs {start_vcn}..={last_vcn}"));
                }
                Body::NonResident(nr)
            }
            v => return Err(format!("non-resident flag {v}")),
        };
        Ok(Attribute {
            type_code,
            name,
            flags,
            instance,
            record,
            body,
        })
    }
}

/// The file attribute bits ($STANDARD_INFORMATION, $FILE_NAME).
pub(crate) mod file_attr {
    pub const READONLY: u32 = 0x0001;
    pub const HIDDEN: u32 = 0x0002;
    pub const SYSTEM: u32 = 0x0004;
    pub const DIRECTORY: u32 = 0x0010;
    pub const ARCHIVE: u32 = 0x0020;
    pub const SPARSE: u32 = 0x0200;
    pub const REPARSE_POINT: u32 = 0x0400;
    pub const COMPRESSED: u32 = 0x0800;
    pub const ENCRYPTED: u32 = 0x4000;
    /// $FILE_NAME only: the entry is a directory (has an $I30 index).
    pub const DUP_DIRECTORY: u32 = 0x1000_0000;

    /// The names of the set bits, as `attrib` would print them.
    pub fn names(v: u32) -> String {
        let all = [
            (READONLY, "readonly"),
            (HIDDEN, "hidden"),
            (SYSTEM, "system"),
            (DIRECTORY, "directory"),
            (ARCHIVE, "archive"),
            (0x0080, "normal"),
            (0x0100, "temporary"),
            (SPARSE, "sparse"),
            (REPARSE_POINT, "reparse-point"),
            (COMPRESSED, "compressed"),
            (0x1000, "offline"),
            (0x2000, "not-content-indexed"),
            (ENCRYPTED, "encrypted"),
            (DUP_DIRECTORY, "has-index"),
        ];
        let set: Vec<&str> = all
            .iter()
            .filter(|(bit, _)| v & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        set.join(",")
    }
}

/// $STANDARD_INFORMATION: the four times and the file attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StdInfo {
    pub created: u64,
    pub modified: u64,
    pub mft_changed: u64,
    pub accessed: u64,
    pub attributes: u32,
}

impl StdInfo {
    pub fn parse(v: &[u8]) -> Option<StdInfo> {
        Some(StdInfo {
            created: u64_at(v, 0)?,
            modified: u64_at(v, 8)?,
            mft_changed: u64_at(v, 16)?,
            accessed: u64_at(v, 24)?,
            attributes: u32_at(v, 32)?,
        })
    }
}

/// The namespaces of a $FILE_NAME.
pub(crate) const NS_POSIX: u8 = 0;
pub(crate) const NS_WIN32: u8 = 1;
pub(crate) const NS_DOS: u8 = 2;
pub(crate) const NS_WIN32_AND_DOS: u8 = 3;

/// A $FILE_NAME (an attribute value or an index key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileName {
    pub parent: u64,
    pub created: u64,
    pub modified: u64,
    pub mft_changed: u64,
    pub accessed: u64,
    pub allocated_size: u64,
    pub data_size: u64,
    pub attributes: u32,
    pub namespace: u8,
    pub name: Vec<u16>,
}

impl FileName {
    pub fn parse(v: &[u8]) -> Option<FileName> {
        let len = usize::from(u8_at(v, 64)?);
        Some(FileName {
            parent: u64_at(v, 0)?,
            created: u64_at(v, 8)?,
            modified: u64_at(v, 16)?,
            mft_changed: u64_at(v, 24)?,
            accessed: u64_at(v, 32)?,
            allocated_size: u64_at(v, 40)?,
            data_size: u64_at(v, 48)?,
            attributes: u32_at(v, 56)?,
            namespace: u8_at(v, 65)?,
            name: utf16_units(slice(v, 66, 2 * len)?),
        })
    }

    pub fn parent_record(&self) -> u64 {
        mref_record(self.parent)
    }

    /// A DOS-only 8.3 name, which a long name in another $FILE_NAME
    /// duplicates.
    pub fn is_dos_only(&self) -> bool {
        self.namespace == NS_DOS
    }
}

/// A FILETIME as a timestamp.
pub(crate) fn time(ft: u64) -> Timestamp {
    Timestamp::from_filetime(ft)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A resident attribute laid out as in a record.
    pub(crate) fn resident(type_code: u32, name: &str, value: &[u8]) -> Vec<u8> {
        let name: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let value_off = (0x18 + name.len()).next_multiple_of(8);
        let len = (value_off + value.len()).next_multiple_of(8);
        let mut b = vec![0u8; len];
        b[0..4].copy_from_slice(&type_code.to_le_bytes());
        b[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        b[9] = (name.len() / 2) as u8;
        b[0x0A..0x0C].copy_from_slice(&0x18u16.to_le_bytes());
        b[0x10..0x14].copy_from_slice(&(value.len() as u32).to_le_bytes());
        b[0x14..0x16].copy_from_slice(&(value_off as u16).to_le_bytes());
        b[0x18..0x18 + name.len()].copy_from_slice(&name);
        b[value_off..value_off + value.len()].copy_from_slice(value);
        b
    }

    #[test]
    fn parses_resident_and_refuses_overflow() {
        let b = resident(AT_DATA, "s", b"hello");
        let a = Attribute::parse(&b, 4).expect("attr");
        assert_eq!(a.name, vec![u16::from(b's')]);
        assert_eq!(a.body, Body::Resident(b"hello".to_vec()));
        let mut over = b.clone();
        over[0x10] = 200;
        let e = Attribute::parse(&over, 4).expect_err("overflow");
        assert!(e.contains("overflows"), "{e}");
        let mut name = b.clone();
        name[9] = 100;
        assert!(Attribute::parse(&name, 4).is_err());
        let mut nr = b;
        nr[8] = 7;
        assert!(Attribute::parse(&nr, 4).is_err());
    }

    #[test]
    fn parses_a_file_name() {
        let mut v = vec![0u8; 66];
        v[0..8].copy_from_slice(&0x0001_0000_0000_0005u64.to_le_bytes());
        v[64] = 2;
        v[65] = NS_WIN32_AND_DOS;
        v.extend_from_slice(&[b'a', 0, b'b', 0]);
        let f = FileName::parse(&v).expect("name");
        assert_eq!(f.parent_record(), 5);
        assert_eq!(f.name, vec![0x61, 0x62]);
        assert!(!f.is_dos_only());
        assert!(FileName::parse(&v[..67]).is_none());
        assert_eq!(file_attr::names(0x421), "readonly,archive,reparse-point");
    }
}
