//! Extended attributes: the in-inode area (after `i_extra_isize`: the
//! magic 0xEA020000, then entries whose value offsets count from the first
//! entry) and the external block named by `i_file_acl` (a 32-byte header:
//! magic 0xEA020000, refcount, `h_blocks` = 1, hash, checksum; entries from
//! byte 32, value offsets from the block's start). An entry: name length
//! u8, name index u8, value offset u16, value inode u32 (ea_inode: the
//! value is that inode's data), value size u32, hash u32, the name padded
//! to 4 bytes; a zero u32 ends the list.
//!
//! Name indexes: 1 `user.`, 2 `system.posix_acl_access`, 3
//! `system.posix_acl_default`, 4 `trusted.`, 6 `security.`, 7 `system.`,
//! 8 `system.richacl`, 10 `gnu.`; others (Lustre's 5) are not listed, as
//! Linux lists none of them, and neither is `system.data` (inline_data's
//! bytes, hidden by Linux). POSIX ACLs are stored in ext4's compact form
//! (version 1, 4-byte entries for the owner/group/mask/other entries)
//! and returned in Linux's `posix_acl_xattr` form (version 2, 8-byte
//! entries) as `getxattr` returns them.
//!
//! The block's checksum (metadata_csum): CRC-32C seeded with the
//! filesystem seed over the block number (le64) and the block with
//! `h_checksum` zeroed.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/attributes.rst`
//! and `checksums.rst`. No code was taken from them.

use super::csum;
use super::sb::{le16, le32};
use crate::fs::checks::Checks;
use crate::fs::{FsError, MAX_XATTR_VALUE, Xattr};

pub(crate) const MAGIC: u32 = 0xEA02_0000;
/// The block header's size: entries start after it.
const BLOCK_HEADER: usize = 32;
/// `h_checksum`'s offset in the block header.
const CSUM_AT: usize = 0x10;
/// Entry header size before the name.
const ENTRY: usize = 16;

/// An entry as stored.
#[derive(Debug)]
pub(crate) struct Entry {
    pub index: u8,
    pub name: Vec<u8>,
    pub value_offs: usize,
    pub value_inum: u32,
    pub value_size: usize,
}

/// The entries of a list starting at `first` in `area`, stopping at the
/// zero terminator or the end of `area`; each must lie inside it.
pub(crate) fn entries(
    area: &[u8],
    first: usize,
    structure: &str,
    offset: u64,
) -> Result<Vec<Entry>, FsError> {
    let bad = |d: String| FsError::corrupt(structure, offset, d);
    let mut out = Vec::new();
    let mut pos = first;
    while pos + 4 <= area.len() && le32(area, pos) != 0 {
        if pos + ENTRY > area.len() {
            return Err(bad(format!("attribute entry at {pos} runs past the end")));
        }
        let name_len = usize::from(area[pos]);
        let name = area
            .get(pos + ENTRY..pos + ENTRY + name_len)
            .ok_or_else(|| bad(format!("attribute name at {pos} runs past the end")))?;
        out.push(Entry {
            index: area[pos + 1],
            name: name.to_vec(),
            value_offs: usize::from(le16(area, pos + 2)),
            value_inum: le32(area, pos + 4),
            value_size: le32(area, pos + 8) as usize,
        });
        pos += (ENTRY + name_len).next_multiple_of(4);
    }
    Ok(out)
}

/// The Linux name of entry `e`, or `None` for one Linux does not list.
pub(crate) fn full_name(e: &Entry) -> Option<String> {
    let prefix = match e.index {
        1 => "user.",
        2 => "system.posix_acl_access",
        3 => "system.posix_acl_default",
        4 => "trusted.",
        6 => "security.",
        7 if e.name == b"data" => return None,
        7 => "system.",
        8 => "system.richacl",
        10 => "gnu.",
        _ => return None,
    };
    Some(format!("{prefix}{}", String::from_utf8_lossy(&e.name)))
}

/// The value of an entry kept in `area` (not in an EA inode).
pub(crate) fn local_value<'a>(
    e: &Entry,
    area: &'a [u8],
    structure: &str,
    offset: u64,
) -> Result<&'a [u8], FsError> {
    if e.value_size > MAX_XATTR_VALUE {
        return Err(FsError::corrupt(
            structure,
            offset,
            format!("attribute value of {} bytes", e.value_size),
        ));
    }
    e.value_offs
        .checked_add(e.value_size)
        .and_then(|end| area.get(e.value_offs..end))
        .ok_or_else(|| {
            FsError::corrupt(
                structure,
                offset,
                format!(
                    "attribute value of {} bytes at {} runs past the end",
                    e.value_size, e.value_offs
                ),
            )
        })
}

/// Checks the external block `b` (block number `block`): magic, one
/// block, and under metadata_csum its checksum seeded with `fs_seed`.
pub(crate) fn check_block(
    b: &[u8],
    block: u64,
    fs_seed: Option<u32>,
    checks: &Checks,
    structure: &str,
    offset: u64,
) -> Result<(), FsError> {
    if b.len() < BLOCK_HEADER + 4 || le32(b, 0) != MAGIC {
        return Err(FsError::corrupt(
            structure,
            offset,
            "no attribute block magic",
        ));
    }
    let blocks = le32(b, 8);
    if blocks != 1 {
        return Err(FsError::corrupt(
            structure,
            offset,
            format!("h_blocks {blocks}, not 1"),
        ));
    }
    if let Some(seed) = fs_seed {
        let mut crc = csum::update(seed, &block.to_le_bytes());
        crc = csum::update(crc, &b[..CSUM_AT]);
        crc = csum::update(crc, &[0; 4]);
        crc = csum::update(crc, &b[CSUM_AT + 4..]);
        csum::check(checks, le32(b, CSUM_AT), crc, structure, offset)?;
    }
    Ok(())
}

/// The entries of the external block (after [`check_block`]).
pub(crate) fn block_entries(b: &[u8], structure: &str, offset: u64) -> Result<Vec<Entry>, FsError> {
    entries(b, BLOCK_HEADER, structure, offset)
}

/// The in-inode area's list: the area after the magic, or `None` without
/// one.
pub(crate) fn in_inode_area(x: &[u8]) -> Option<&[u8]> {
    (x.len() >= 4 && le32(x, 0) == MAGIC).then(|| &x[4..])
}

// POSIX ACL entry tags; the ones with an id carry 4 more bytes on disk.
const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;
const ACL_UNDEFINED_ID: u32 = u32::MAX;

/// An ext4 on-disk ACL (version 1, short entries) in the
/// `posix_acl_xattr` form Linux returns (version 2, 8-byte entries).
pub(crate) fn acl_to_xattr(v: &[u8], structure: &str, offset: u64) -> Result<Vec<u8>, FsError> {
    let bad = |d: &str| FsError::corrupt(structure, offset, format!("POSIX ACL: {d}"));
    if v.len() < 4 || le32(v, 0) != 1 {
        return Err(bad("not version 1"));
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    let mut pos = 4;
    while pos < v.len() {
        if pos + 4 > v.len() {
            return Err(bad("entry runs past the end"));
        }
        let (tag, perm) = (le16(v, pos), le16(v, pos + 2));
        let id = if tag == ACL_USER || tag == ACL_GROUP {
            if pos + 8 > v.len() {
                return Err(bad("entry runs past the end"));
            }
            pos += 8;
            le32(v, pos - 4)
        } else {
            pos += 4;
            ACL_UNDEFINED_ID
        };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Ok(out)
}

/// The attribute named by entry `e` with its value `raw`, ACLs converted.
pub(crate) fn attr(
    name: String,
    raw: Vec<u8>,
    structure: &str,
    offset: u64,
) -> Result<Xattr, FsError> {
    let value = if name.starts_with("system.posix_acl_") {
        acl_to_xattr(&raw, structure, offset)?
    } else {
        raw
    };
    Ok(Xattr { name, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u8, name: &[u8], offs: u16, size: u32) -> Vec<u8> {
        let mut e = vec![name.len() as u8, index];
        e.extend_from_slice(&offs.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(name);
        e.resize(e.len().next_multiple_of(4), 0);
        e
    }

    #[test]
    fn entries_names_and_values() {
        let mut a = entry(1, b"foo", 64, 3);
        a.extend(entry(7, b"data", 67, 0));
        a.extend(entry(2, b"", 67, 0));
        a.extend([0; 4]);
        a.resize(64, 0);
        a.extend_from_slice(b"bar");
        let es = entries(&a, 0, "t", 0).expect("entries");
        assert_eq!(es.len(), 3);
        assert_eq!(full_name(&es[0]).as_deref(), Some("user.foo"));
        assert_eq!(full_name(&es[1]), None);
        assert_eq!(
            full_name(&es[2]).as_deref(),
            Some("system.posix_acl_access")
        );
        assert_eq!(local_value(&es[0], &a, "t", 0).expect("value"), b"bar");
        a.truncate(66);
        let e = local_value(&es[0], &a, "ext4 inode 12 in-inode xattrs", 0).expect_err("short");
        assert!(
            e.to_string().contains("ext4 inode 12 in-inode xattrs"),
            "{e}"
        );
        // A name running past the end.
        let mut b = entry(1, b"foo", 0, 0);
        b.truncate(17);
        assert!(entries(&b, 0, "t", 0).is_err());
    }

    #[test]
    fn acls_convert_to_the_xattr_form() {
        // user::rw- user:1000:r-- group::r-- mask::r-- other::---
        let mut d = 1u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, None),
            (2, 4, Some(1000u32)),
            (4, 4, None),
            (0x10, 4, None),
            (0x20, 0, None),
        ] {
            d.extend_from_slice(&tag.to_le_bytes());
            d.extend_from_slice(&perm.to_le_bytes());
            if let Some(id) = id {
                d.extend_from_slice(&id.to_le_bytes());
            }
        }
        let x = acl_to_xattr(&d, "t", 0).expect("acl");
        assert_eq!(x.len(), 4 + 5 * 8);
        assert_eq!(&x[..4], &2u32.to_le_bytes());
        assert_eq!(&x[12..20], &[2, 0, 4, 0, 0xE8, 3, 0, 0]);
        assert_eq!(&x[4..12], &[1, 0, 6, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(acl_to_xattr(&d[..d.len() - 2], "t", 0).is_err());
    }

    #[test]
    fn block_checks() {
        let mut b = vec![0u8; 1024];
        b[..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[8] = 1;
        assert!(check_block(&b, 7, None, &Checks::default(), "t", 0).is_ok());
        assert!(check_block(&b, 7, Some(1), &Checks::default(), "ext4 xattr block 7", 0).is_err());
        let mut crc = csum::update(1, &7u64.to_le_bytes());
        crc = csum::update(crc, &b);
        b[CSUM_AT..CSUM_AT + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(check_block(&b, 7, Some(1), &Checks::default(), "t", 0).is_ok());
        b[8] = 2;
        assert!(check_block(&b, 7, None, &Checks::default(), "t", 0).is_err());
    }
}
