//! Inline data (the inline_data feature) and the in-inode extended
//! attributes it relies on. A small file's bytes lie in the 60 bytes of
//! `i_block` and continue in the value of the `system.data` attribute
//! (name index 7, name `data`); an inline directory starts with its
//! parent's inode number (4 bytes) followed by records, and continues with
//! records in the attribute's value. The in-inode attribute area begins
//! with the magic 0xEA020000, then entries (name length u8, name index u8,
//! value offset u16 from the first entry, value inode u32, value size u32,
//! hash u32, the name padded to 4 bytes) ending at 4 zero bytes.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/inlinedata.rst` and
//! `attributes.rst`. No code was taken from them. Only the in-inode area
//! is read: `system.data` is always kept there.

use super::sb::{le16, le32};
use crate::fs::FsError;

const XATTR_MAGIC: u32 = 0xEA02_0000;
const INDEX_SYSTEM: u8 = 7;

/// The value of in-inode attribute `index`/`name` in the area `x` (what
/// follows `i_extra_isize`), if present.
pub(crate) fn in_inode_xattr(
    x: &[u8],
    index: u8,
    name: &[u8],
    structure: &str,
    offset: u64,
) -> Result<Option<Vec<u8>>, FsError> {
    if x.len() < 4 || le32(x, 0) != XATTR_MAGIC {
        return Ok(None);
    }
    let area = &x[4..];
    let bad = |d: String| FsError::corrupt(structure, offset, d);
    let mut pos = 0usize;
    while pos + 4 <= area.len() && le32(area, pos) != 0 {
        if pos + 16 > area.len() {
            return Err(bad("extended attribute entry runs past the inode".into()));
        }
        let name_len = usize::from(area[pos]);
        let e_index = area[pos + 1];
        let value_offs = usize::from(le16(area, pos + 2));
        let value_inum = le32(area, pos + 4);
        let value_size = le32(area, pos + 8) as usize;
        let e_name = area
            .get(pos + 16..pos + 16 + name_len)
            .ok_or_else(|| bad("extended attribute name runs past the inode".into()))?;
        if e_index == index && e_name == name {
            if value_inum != 0 {
                return Err(FsError::Unsupported {
                    fs: "ext4",
                    detail: "an inline-data attribute kept in an EA inode".into(),
                });
            }
            let v = value_offs
                .checked_add(value_size)
                .and_then(|end| area.get(value_offs..end))
                .ok_or_else(|| {
                    bad(format!(
                        "attribute value of {value_size} bytes at {value_offs} runs past the inode"
                    ))
                })?;
            return Ok(Some(v.to_vec()));
        }
        pos += (16 + name_len).next_multiple_of(4);
    }
    Ok(None)
}

/// The inline bytes of an inode: `i_block` then `system.data`'s value.
pub(crate) fn data(
    i_block: &[u8],
    xattr: &[u8],
    structure: &str,
    offset: u64,
) -> Result<Vec<u8>, FsError> {
    let mut out = i_block.to_vec();
    if let Some(v) = in_inode_xattr(xattr, INDEX_SYSTEM, b"data", structure, offset)? {
        out.extend_from_slice(&v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_system_data() {
        let mut x = XATTR_MAGIC.to_le_bytes().to_vec();
        // entry: "data" in index 7, value of 5 bytes at offset 40
        let mut e = vec![4u8, 7];
        e.extend_from_slice(&40u16.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&5u32.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(b"data");
        x.extend(e);
        x.extend([0u8; 4]);
        x.resize(4 + 40, 0);
        x.extend_from_slice(b"hello");
        let v = in_inode_xattr(&x, 7, b"data", "t", 0).expect("ok");
        assert_eq!(v.as_deref(), Some(&b"hello"[..]));
        assert_eq!(in_inode_xattr(&x, 1, b"data", "t", 0).expect("ok"), None);
        let d = data(&[1u8; 60], &x, "t", 0).expect("data");
        assert_eq!(d.len(), 65);
        x.truncate(4 + 42);
        assert!(in_inode_xattr(&x, 7, b"data", "t", 0).is_err());
    }
}
