//! Extended attributes: the inode's attribute fork (from `di_forkoff`) in
//! one of three forms (kernel `fs/xfs/libxfs/xfs_da_format.h`; "XFS
//! Algorithms & Data Structures", "Extended Attributes"):
//!
//! * shortform (`di_aformat` local): `xfs_attr_sf_hdr` (total size be16,
//!   count u8, pad) then entries of name length u8, value length u8,
//!   flags u8, the name and the value;
//! * leaf: the fork maps one block, `xfs_attr_leafblock` (magic 0xfbee, v5
//!   0x3bee with CRC, block address, UUID and owner) holding an array of
//!   8-byte entries (hash be32, name offset be16, flags u8, pad) sorted by
//!   hash, whose names lie at the block's end: local (value length be16,
//!   name length u8, name, value) or remote (value block be32, value
//!   length be32, name length u8, name);
//! * node: block 0 is a dabtree node (0xfebe, v5 0x3ebe); the leaves are
//!   reached down its first pointers and then along their `forw` links.
//!
//! A remote value lies in attribute-fork blocks from its value block on;
//! on v5 each block starts with a 56-byte `xfs_attr3_rmt_hdr` (magic
//! "XARM", offset and length of its part of the value, CRC, UUID, owner,
//! address), on v4 the value is raw.
//!
//! Entry flags: 0x02 ROOT (`trusted.`), 0x04 SECURE (`security.`), neither
//! `user.`; 0x80 INCOMPLETE entries (a set in progress) and 0x08 PARENT
//! (parent pointers) are skipped. POSIX ACLs are kept as ROOT attributes
//! `SGI_ACL_FILE` / `SGI_ACL_DEFAULT` in `xfs_acl` form; as Linux does for
//! a privileged caller, both `trusted.SGI_ACL_*` and the
//! `system.posix_acl_*` view (in `posix_acl_xattr` form) are listed.
//! No code was taken from these sources.

use std::collections::HashSet;

use super::XfsFs;
use super::bmap::Extent;
use super::crc::{be16, be32, be64, verify};
use super::inode::{Format, Inode};
use crate::fs::{FsError, MAX_XATTR_VALUE, MAX_XATTRS, Xattr};

const LEAF_MAGIC: u16 = 0xfbee;
const LEAF3_MAGIC: u16 = 0x3bee;
const NODE_MAGIC: u16 = 0xfebe;
const NODE3_MAGIC: u16 = 0x3ebe;
const RMT_MAGIC: u32 = 0x5841_524d; // "XARM"
const RMT_HDR: usize = 56;

const FLAG_LOCAL: u8 = 0x01;
const FLAG_ROOT: u8 = 0x02;
const FLAG_SECURE: u8 = 0x04;
const FLAG_PARENT: u8 = 0x08;
const FLAG_INCOMPLETE: u8 = 0x80;

/// The deepest dabtree followed (the kernel's `XFS_DA_NODE_MAXDEPTH`).
const MAX_DEPTH: usize = 5;

/// An attribute as stored: flags, name, and the value or where it lies.
enum Value {
    Local(Vec<u8>),
    Remote { block: u32, len: usize },
}

/// An entry as stored: its flags, name and value.
type RawAttr = (u8, Vec<u8>, Value);

/// The Linux names of an attribute with `flags` and `name`, with the value
/// converted for each (none for skipped entries).
fn linux_names(flags: u8, name: &[u8]) -> Vec<(String, bool)> {
    if flags & (FLAG_INCOMPLETE | FLAG_PARENT) != 0 {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(name);
    if flags & FLAG_ROOT != 0 {
        let mut out = Vec::new();
        match name {
            b"SGI_ACL_FILE" => out.push(("system.posix_acl_access".to_string(), true)),
            b"SGI_ACL_DEFAULT" => out.push(("system.posix_acl_default".to_string(), true)),
            _ => {}
        }
        out.push((format!("trusted.{text}"), false));
        out
    } else if flags & FLAG_SECURE != 0 {
        vec![(format!("security.{text}"), false)]
    } else {
        vec![(format!("user.{text}"), false)]
    }
}

// POSIX ACL tags with an id; the rest get ACL_UNDEFINED_ID.
const ACL_USER: u32 = 0x02;
const ACL_GROUP: u32 = 0x08;

/// An `xfs_acl` (count be32, then 12-byte entries: tag be32, id be32, perm
/// be16, pad) in Linux's `posix_acl_xattr` form.
fn acl_to_xattr(v: &[u8]) -> Result<Vec<u8>, String> {
    let count = be32(v, 0) as usize;
    if v.len() < 4 || count > (v.len() - 4) / 12 {
        return Err(format!("POSIX ACL of {count} entries in {} bytes", v.len()));
    }
    let mut out = 2u32.to_le_bytes().to_vec();
    for e in v[4..4 + count * 12].chunks_exact(12) {
        let tag = be32(e, 0);
        let id = if tag == ACL_USER || tag == ACL_GROUP {
            be32(e, 4)
        } else {
            u32::MAX
        };
        out.extend_from_slice(&(tag as u16).to_le_bytes());
        out.extend_from_slice(&be16(e, 8).to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    Ok(out)
}

/// The entries of a shortform attribute fork.
fn shortform(fork: &[u8]) -> Result<Vec<RawAttr>, String> {
    let total = usize::from(be16(fork, 0));
    if fork.len() < 4 || total < 4 || total > fork.len() {
        return Err(format!(
            "shortform size {total} in a {}-byte fork",
            fork.len()
        ));
    }
    let count = usize::from(fork[2]);
    let mut out = Vec::with_capacity(count);
    let mut pos = 4;
    for i in 0..count {
        if pos + 3 > total {
            return Err(format!("entry {i} runs past the shortform size {total}"));
        }
        let (nl, vl, flags) = (
            usize::from(fork[pos]),
            usize::from(fork[pos + 1]),
            fork[pos + 2],
        );
        let end = pos + 3 + nl + vl;
        if end > total {
            return Err(format!("entry {i} runs past the shortform size {total}"));
        }
        let name = fork[pos + 3..pos + 3 + nl].to_vec();
        let value = fork[pos + 3 + nl..end].to_vec();
        out.push((flags, name, Value::Local(value)));
        pos = end;
    }
    Ok(out)
}

/// The entries of leaf block `b` (v5: with its 80-byte header), and its
/// forward link.
fn leaf(b: &[u8], v5: bool) -> Result<(Vec<RawAttr>, u32), String> {
    let hdr = if v5 { 80 } else { 32 };
    let count_at = if v5 { 56 } else { 12 };
    let count = usize::from(be16(b, count_at));
    if hdr + count * 8 > b.len() {
        return Err(format!("{count} entries do not fit the block"));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let e = hdr + i * 8;
        let at = usize::from(be16(b, e + 4));
        let flags = b[e + 6];
        let bad = || format!("entry {i}'s name at {at} runs past the block");
        if at < hdr + count * 8 {
            return Err(format!("entry {i}'s name at {at} overlaps the entries"));
        }
        if flags & FLAG_LOCAL != 0 {
            let vl = usize::from(be16(b, at));
            let nl = usize::from(*b.get(at + 2).ok_or_else(bad)?);
            let name = b.get(at + 3..at + 3 + nl).ok_or_else(bad)?;
            let value = b.get(at + 3 + nl..at + 3 + nl + vl).ok_or_else(bad)?;
            out.push((flags, name.to_vec(), Value::Local(value.to_vec())));
        } else {
            let block = be32(b, at);
            let len = be32(b, at + 4) as usize;
            let nl = usize::from(*b.get(at + 8).ok_or_else(bad)?);
            let name = b.get(at + 9..at + 9 + nl).ok_or_else(bad)?;
            out.push((flags, name.to_vec(), Value::Remote { block, len }));
        }
    }
    Ok((out, be32(b, 0)))
}

impl XfsFs {
    /// Reads attribute-fork block `dablk` of `inode` and checks its v5
    /// header (CRC at 12, address at 16, UUID at 32, owner at 48) and
    /// magic (be16 at 8) against `magics`; returns it with its byte
    /// offset.
    fn attr_block(
        &self,
        inode: &Inode,
        extents: &[Extent],
        dablk: u64,
        what: &str,
    ) -> Result<(Vec<u8>, u64), FsError> {
        let ino = inode.meta.ino.0;
        let (at, _) = self.map_block(extents, dablk);
        let Some(linear) = at else {
            return Err(FsError::corrupt(
                format!("XFS inode {ino} attribute fork"),
                inode.offset,
                format!("{what} block {dablk} is not mapped"),
            ));
        };
        let offset = linear * u64::from(self.sb.block_size);
        let b = self.read_meta(offset, self.sb.block_size as usize)?;
        Ok((b, offset))
    }

    /// Checks the v5 self-describing header of a dabtree block.
    fn check_da3(&self, b: &[u8], ino: u64, structure: &str, offset: u64) -> Result<(), FsError> {
        verify(&self.checks, b, 12, structure, offset)?;
        let bad = |d: String| FsError::corrupt(structure, offset, d);
        if be64(b, 16) != offset / 512 {
            return Err(bad(format!(
                "records its address as sector {}",
                be64(b, 16)
            )));
        }
        if b[32..48] != self.sb.meta_uuid {
            return Err(bad("UUID is not the filesystem's".into()));
        }
        if be64(b, 48) != ino {
            return Err(bad(format!("owned by inode {}", be64(b, 48))));
        }
        Ok(())
    }

    /// The entries of a leaf- or node-form attribute fork.
    fn attr_leaves(&self, inode: &Inode, extents: &[Extent]) -> Result<Vec<RawAttr>, FsError> {
        let ino = inode.meta.ino.0;
        let v5 = self.sb.crc();
        let (leaf_magic, node_magic) = if v5 {
            (LEAF3_MAGIC, NODE3_MAGIC)
        } else {
            (LEAF_MAGIC, NODE_MAGIC)
        };
        // Every block is visited at most once: loops are damage.
        let blocks: u64 = extents.iter().map(|e| e.count).sum();
        let mut seen = HashSet::new();
        let mut dablk = 0u64;
        let mut depth = 0;
        let mut out = Vec::new();
        loop {
            let structure = format!("XFS inode {ino} attribute block {dablk}");
            if !seen.insert(dablk) || seen.len() as u64 > blocks {
                return Err(FsError::corrupt(
                    structure,
                    inode.offset,
                    "reached twice: the attribute tree loops",
                ));
            }
            let (b, offset) = self.attr_block(inode, extents, dablk, "attribute")?;
            let bad = |d: String| FsError::corrupt(structure.clone(), offset, d);
            let magic = be16(&b, 8);
            if magic != leaf_magic && magic != node_magic {
                return Err(bad(format!("bad magic {magic:#06x}")));
            }
            if v5 {
                self.check_da3(&b, ino, &structure, offset)?;
            }
            if magic == node_magic {
                // Down the first pointer to the leftmost leaf.
                if !out.is_empty() || depth >= MAX_DEPTH {
                    return Err(bad("a node where a leaf was expected".into()));
                }
                let hdr = if v5 { 64 } else { 16 };
                let count = be16(&b, hdr - if v5 { 8 } else { 4 });
                if count == 0 {
                    return Err(bad("node with no entries".into()));
                }
                dablk = u64::from(be32(&b, hdr + 4));
                depth += 1;
                continue;
            }
            let (entries, forw) = leaf(&b, v5).map_err(bad)?;
            out.extend(entries);
            if out.len() > MAX_XATTRS * 2 {
                return Err(bad(format!("more than {MAX_XATTRS} attributes")));
            }
            if forw == 0 {
                return Ok(out);
            }
            dablk = u64::from(forw);
        }
    }

    /// The remote value of `len` bytes starting at attribute-fork block
    /// `block`.
    fn remote_value(
        &self,
        inode: &Inode,
        extents: &[Extent],
        block: u32,
        len: usize,
    ) -> Result<Vec<u8>, FsError> {
        let ino = inode.meta.ino.0;
        let bs = self.sb.block_size as usize;
        let per = if self.sb.crc() { bs - RMT_HDR } else { bs };
        let mut out = Vec::with_capacity(len);
        let mut dablk = u64::from(block);
        while out.len() < len {
            let structure = format!("XFS inode {ino} remote attribute value block {dablk}");
            let (b, offset) = self.attr_block(inode, extents, dablk, "remote value")?;
            let want = per.min(len - out.len());
            if self.sb.crc() {
                let bad = |d: String| FsError::corrupt(structure.clone(), offset, d);
                if be32(&b, 0) != RMT_MAGIC {
                    return Err(bad(format!(
                        "bad magic {:#010x}, expected XARM",
                        be32(&b, 0)
                    )));
                }
                verify(&self.checks, &b, 12, &structure, offset)?;
                let (roff, rbytes) = (be32(&b, 4) as usize, be32(&b, 8) as usize);
                if roff != out.len() || rbytes != want {
                    return Err(bad(format!(
                        "holds bytes {roff}+{rbytes}, expected {}+{want}",
                        out.len()
                    )));
                }
                if b[16..32] != self.sb.meta_uuid {
                    return Err(bad("UUID is not the filesystem's".into()));
                }
                if be64(&b, 32) != ino {
                    return Err(bad(format!("owned by inode {}", be64(&b, 32))));
                }
                if be64(&b, 40) != offset / 512 {
                    return Err(bad(format!(
                        "records its address as sector {}",
                        be64(&b, 40)
                    )));
                }
                out.extend_from_slice(&b[RMT_HDR..RMT_HDR + want]);
            } else {
                out.extend_from_slice(&b[..want]);
            }
            dablk += 1;
        }
        Ok(out)
    }

    /// The extended attributes of `inode`.
    pub(crate) fn attrs(&self, inode: &Inode) -> Result<Vec<Xattr>, FsError> {
        let ino = inode.meta.ino.0;
        let Some(view) = inode.attr_fork() else {
            return Ok(Vec::new());
        };
        let structure = format!("XFS inode {ino} attribute fork");
        let (raw, extents) = match view.format {
            Format::Local => {
                let raw = shortform(&view.fork)
                    .map_err(|d| FsError::corrupt(&structure, inode.offset, d))?;
                (raw, Vec::new())
            }
            Format::Extents | Format::Btree => {
                let extents = self.read_extents(&view)?;
                if extents.is_empty() {
                    return Ok(Vec::new());
                }
                (self.attr_leaves(&view, &extents)?, extents)
            }
            Format::Dev => return Ok(Vec::new()),
        };
        let mut out = Vec::new();
        for (flags, name, value) in raw {
            let names = linux_names(flags, &name);
            if names.is_empty() {
                continue;
            }
            let value = match value {
                Value::Local(v) => v,
                Value::Remote { block, len } => {
                    if len > MAX_XATTR_VALUE {
                        return Err(FsError::corrupt(
                            &structure,
                            inode.offset,
                            format!("attribute value of {len} bytes"),
                        ));
                    }
                    self.remote_value(&view, &extents, block, len)?
                }
            };
            for (n, acl) in names {
                if out.len() >= MAX_XATTRS {
                    return Err(FsError::corrupt(
                        &structure,
                        inode.offset,
                        format!("more than {MAX_XATTRS} attributes"),
                    ));
                }
                let v = if acl {
                    acl_to_xattr(&value)
                        .map_err(|d| FsError::corrupt(&structure, inode.offset, d))?
                } else {
                    value.clone()
                };
                out.push(Xattr { name: n, value: v });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortform_entries_and_damage() {
        let mut f = vec![0, 0, 2, 0];
        f.extend([3, 2, 0]);
        f.extend(b"abcxy");
        f.extend([1, 0, FLAG_SECURE]);
        f.extend(b"s");
        let total = f.len() as u16;
        f[..2].copy_from_slice(&total.to_be_bytes());
        f.resize(40, 0);
        let e = shortform(&f).expect("entries");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].1, b"abc");
        assert!(matches!(&e[0].2, Value::Local(v) if v == b"xy"));
        assert_eq!(linux_names(e[1].0, &e[1].1)[0].0, "security.s");
        f[2] = 3;
        assert!(shortform(&f).is_err());
    }

    #[test]
    fn v4_leaf_local_and_remote_entries() {
        let mut b = vec![0u8; 512];
        b[8..10].copy_from_slice(&LEAF_MAGIC.to_be_bytes());
        b[12..14].copy_from_slice(&2u16.to_be_bytes());
        // Entry 0: local "ab" = "xyz" at 400; entry 1: remote "r" at 450.
        b[32 + 4..32 + 6].copy_from_slice(&400u16.to_be_bytes());
        b[32 + 6] = FLAG_LOCAL;
        b[40 + 4..40 + 6].copy_from_slice(&450u16.to_be_bytes());
        b[40 + 6] = FLAG_ROOT;
        b[400..402].copy_from_slice(&3u16.to_be_bytes());
        b[402] = 2;
        b[403..408].copy_from_slice(b"abxyz");
        b[450..454].copy_from_slice(&7u32.to_be_bytes());
        b[454..458].copy_from_slice(&5000u32.to_be_bytes());
        b[458] = 1;
        b[459] = b'r';
        let (e, forw) = leaf(&b, false).expect("leaf");
        assert_eq!(forw, 0);
        assert_eq!(e[0].1, b"ab");
        assert!(matches!(&e[0].2, Value::Local(v) if v == b"xyz"));
        assert!(matches!(
            e[1].2,
            Value::Remote {
                block: 7,
                len: 5000
            }
        ));
        assert_eq!(linux_names(e[1].0, &e[1].1)[0].0, "trusted.r");
        // A name offset past the block, and one inside the entry array.
        b[32 + 4..32 + 6].copy_from_slice(&510u16.to_be_bytes());
        assert!(leaf(&b, false).is_err());
        b[32 + 4..32 + 6].copy_from_slice(&40u16.to_be_bytes());
        assert!(leaf(&b, false).is_err());
    }

    #[test]
    fn names_by_namespace() {
        assert_eq!(linux_names(0, b"a")[0].0, "user.a");
        assert_eq!(linux_names(FLAG_ROOT, b"a")[0].0, "trusted.a");
        assert!(linux_names(FLAG_INCOMPLETE, b"a").is_empty());
        assert!(linux_names(FLAG_PARENT, b"a").is_empty());
        let acl = linux_names(FLAG_ROOT, b"SGI_ACL_FILE");
        assert_eq!(acl.len(), 2);
        assert_eq!(acl[0], ("system.posix_acl_access".to_string(), true));
    }

    #[test]
    fn acls_convert() {
        let mut v = 2u32.to_be_bytes().to_vec();
        for (tag, id, perm) in [(1u32, 0u32, 6u16), (2, 1000, 4)] {
            v.extend(tag.to_be_bytes());
            v.extend(id.to_be_bytes());
            v.extend(perm.to_be_bytes());
            v.extend([0, 0]);
        }
        let x = acl_to_xattr(&v).expect("acl");
        assert_eq!(
            x,
            [
                2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 4, 0, 0xe8, 3, 0, 0
            ]
        );
        assert!(acl_to_xattr(&v[..20]).is_err());
    }
}
