//! Directory entries: linear directories are blocks of variable-length
//! records (inode u32, rec_len u16, name_len u8 + file_type u8 with the
//! filetype feature, else name_len u16, then the name), an inode of 0
//! marking an empty slot. Hashed (htree) directories keep the same leaf
//! blocks and add index blocks disguised as empty records: the root (block
//! 0) holds only `.` and a `..` spanning the rest of the block, interior
//! nodes one empty record spanning the whole block, so a linear read of
//! every block lists each entry once; large_dir only adds a level. Under
//! metadata_csum leaf blocks end in a 12-byte fake record (inode 0,
//! rec_len 12, file_type 0xDE) holding a CRC-32C of the block.
//!
//! Source: the kernel's `Documentation/filesystems/ext4/directory.rst`
//! ("Linear (Classic) Directories", "Hash Tree Directories", "Checksums").
//! No code was taken from it.

use super::sb::{le16, le32};
use crate::fs::{FileKind, FsError};

/// One raw record: inode, the dirent file type byte (0 if none), name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Raw {
    pub ino: u32,
    pub file_type: u8,
    pub name: Vec<u8>,
}

/// The kind from a dirent's file type byte, if it gives one.
pub(crate) fn kind_of(file_type: u8) -> Option<FileKind> {
    Some(match file_type {
        1 => FileKind::File,
        2 => FileKind::Dir,
        3 => FileKind::CharDevice,
        4 => FileKind::BlockDevice,
        5 => FileKind::Fifo,
        6 => FileKind::Socket,
        7 => FileKind::Symlink,
        _ => return None,
    })
}

/// A record length from disk: 65535 or 0 means the whole 64 KiB block.
fn rec_len(raw: u16, block_len: usize) -> usize {
    if raw == 0xFFFF || (raw == 0 && block_len == 65536) {
        block_len
    } else {
        usize::from(raw & 0xFFFC) | (usize::from(raw & 3) << 16)
    }
}

/// Is `block` an htree interior node (one empty record spanning it all)?
pub(crate) fn is_dx_node(block: &[u8]) -> bool {
    le32(block, 0) == 0 && rec_len(le16(block, 4), block.len()) == block.len()
}

/// Does `block` end in a checksum tail record? Returns its checksum.
pub(crate) fn tail_csum(block: &[u8]) -> Option<u32> {
    let t = block.len().checked_sub(12)?;
    let tail = &block[t..];
    (le32(tail, 0) == 0 && le16(tail, 4) == 12 && tail[6] == 0 && tail[7] == 0xDE)
        .then(|| le32(tail, 8))
}

/// The records of one directory block (or inline region) `b`, without
/// empty slots, `.` and `..`. `filetype` is the superblock's filetype
/// feature.
pub(crate) fn parse(
    b: &[u8],
    filetype: bool,
    structure: &str,
    offset: u64,
) -> Result<Vec<Raw>, FsError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < b.len() {
        let bad = |d: String| FsError::corrupt(structure, offset + pos as u64, d);
        if b.len() - pos < 8 {
            return Err(bad(format!(
                "{} bytes left, too few for a record",
                b.len() - pos
            )));
        }
        let ino = le32(b, pos);
        let len = rec_len(le16(b, pos + 4), b.len());
        let (name_len, file_type) = if filetype {
            (usize::from(b[pos + 6]), b[pos + 7])
        } else {
            (usize::from(le16(b, pos + 6)), 0)
        };
        if len < 8 || len % 4 != 0 || len > b.len() - pos {
            return Err(bad(format!("record length {len}")));
        }
        if ino != 0 {
            if name_len == 0 || 8 + name_len > len {
                return Err(bad(format!("name length {name_len} in a record of {len}")));
            }
            let name = &b[pos + 8..pos + 8 + name_len];
            if name != b"." && name != b".." {
                out.push(Raw {
                    ino,
                    file_type,
                    name: name.to_vec(),
                });
            }
        }
        pos += len;
    }
    Ok(out)
}

/// Deleted records left in the slack of directory block `b`, as The Sleuth
/// Kit's `fls -d` finds them: a kernel deleting an entry adds its length
/// to the record before it, so its bytes (inode, name) may remain after
/// that record's own name. Each live record's slack, from the end of its
/// name (4-byte aligned) to its `rec_len`, is scanned at every 4-byte
/// step for a record with an inode, a plausible length and a name without
/// NUL or `/` inside the slack. debugfs `rm` leaves the record so; a
/// current Linux kernel (6.18 here) wipes it, and `e2fsck -D` compacts
/// directories, so names come back only from some volumes. Damaged blocks
/// end the scan, never fail it.
pub(crate) fn slack(b: &[u8], filetype: bool, inodes_count: u32) -> Vec<Raw> {
    let mut out = Vec::new();
    let name_len = |at: usize| {
        if filetype {
            usize::from(b[at + 6])
        } else {
            usize::from(le16(b, at + 6))
        }
    };
    let used = |nl: usize| (8 + nl + 3) & !3;
    let mut pos = 0usize;
    while pos + 8 <= b.len() {
        let len = rec_len(le16(b, pos + 4), b.len());
        if len < 8 || len % 4 != 0 || len > b.len() - pos {
            break;
        }
        let end = pos + len;
        let mut q = pos + used(name_len(pos)).min(len);
        while q + 8 <= end {
            let ino = le32(b, q);
            let nl = name_len(q);
            let rl = rec_len(le16(b, q + 4), b.len());
            let name = b.get(q + 8..q + 8 + nl).filter(|_| q + 8 + nl <= end);
            match name {
                Some(name)
                    if ino != 0
                        && ino <= inodes_count
                        && nl > 0
                        && rl >= used(nl)
                        && rl % 4 == 0
                        && !name.iter().any(|&c| c == 0 || c == b'/')
                        && name != b"."
                        && name != b".." =>
                {
                    out.push(Raw {
                        ino,
                        file_type: if filetype { b[q + 7] } else { 0 },
                        name: name.to_vec(),
                    });
                    q += used(nl);
                }
                _ => q += 4,
            }
        }
        pos = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ino: u32, len: u16, name: &[u8], ft: u8) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&ino.to_le_bytes());
        r.extend_from_slice(&len.to_le_bytes());
        r.push(name.len() as u8);
        r.push(ft);
        r.extend_from_slice(name);
        r.resize(usize::from(len), 0);
        r
    }

    #[test]
    fn entries_empty_slots_and_dots() {
        let mut b = rec(2, 12, b".", 2);
        b.extend(rec(2, 12, b"..", 2));
        b.extend(rec(0, 16, b"gone", 1)); // deleted
        b.extend(rec(13, 16, b"file", 1));
        b.extend(rec(14, 64 - 56, b"", 0)); // bad: a live record without a name
        assert!(parse(&b, true, "t", 0).is_err());
        let mut b = rec(2, 12, b".", 2);
        b.extend(rec(2, 12, b"..", 2));
        b.extend(rec(0, 16, b"gone", 1));
        b.extend(rec(13, 24, b"file", 1));
        let got = parse(&b, true, "t", 0).expect("parse");
        assert_eq!(
            got,
            [Raw {
                ino: 13,
                file_type: 1,
                name: b"file".to_vec()
            }]
        );
        assert_eq!(kind_of(got[0].file_type), Some(FileKind::File));
    }

    #[test]
    fn htree_root_and_nodes_list_nothing() {
        // The dx root: "." then ".." spanning the block, index data inside.
        let mut root = rec(2, 12, b".", 2);
        let mut dotdot = rec(2, 1024 - 12, b"..", 2);
        dotdot[12..20].copy_from_slice(&[0, 0, 0, 0, 8, 0, 1, 0]); // dx_root_info
        root.extend(dotdot);
        assert_eq!(parse(&root, true, "t", 0).expect("root"), []);
        let mut node = rec(0, 1024, b"", 0);
        node[8..16].copy_from_slice(&[0x7E, 0, 3, 0, 1, 0, 0, 0]); // dx count/limit
        assert!(is_dx_node(&node));
        assert!(!is_dx_node(&root));
        assert_eq!(parse(&node, true, "t", 0).expect("node"), []);
    }

    #[test]
    fn deleted_records_in_slack() {
        // As an older kernel leaves a block after unlinking gone.txt: the
        // record before it grew over it (directory.rst: "the previous
        // entry's rec_len is extended").
        let mut b = rec(2, 12, b".", 2);
        b.extend(rec(2, 12, b"..", 2));
        let mut keep = rec(13, 16, b"keep", 1);
        keep.extend(rec(14, 16, b"gone.txt", 1));
        keep[4..6].copy_from_slice(&32u16.to_le_bytes());
        b.extend(keep);
        b.extend(rec(15, 1024 - 56 - 12, b"last", 1));
        b.extend(rec(0, 12, b"", 0xDE));
        assert_eq!(parse(&b, true, "t", 0).expect("parse").len(), 2);
        assert_eq!(
            slack(&b, true, 100),
            [Raw {
                ino: 14,
                file_type: 1,
                name: b"gone.txt".to_vec()
            }]
        );
        // An inode number past the last, or a wiped record: nothing.
        assert_eq!(slack(&b, true, 13), []);
        let mut wiped = b.clone();
        wiped[40..56].fill(0);
        assert_eq!(slack(&wiped, true, 100), []);
        // A name with a NUL inside is not a name.
        let mut odd = b.clone();
        odd[50] = 0;
        assert_eq!(slack(&odd, true, 100), []);
        // Garbage never panics.
        let junk: Vec<u8> = (0..1024u32).map(|i| (i * 37 % 251) as u8).collect();
        let _ = slack(&junk, true, u32::MAX);
        let _ = slack(&junk, false, u32::MAX);
    }

    #[test]
    fn checksum_tail_and_bad_lengths() {
        let mut b = rec(13, 1024 - 12, b"x", 1);
        let mut tail = rec(0, 12, b"", 0xDE);
        tail[8..12].copy_from_slice(&0xAABB_CCDDu32.to_le_bytes());
        b.extend(tail);
        assert_eq!(tail_csum(&b), Some(0xAABB_CCDD));
        assert_eq!(parse(&b, true, "t", 0).expect("parse").len(), 1);
        let mut bad = b.clone();
        bad[4..6].copy_from_slice(&2000u16.to_le_bytes());
        let e = parse(&bad, true, "ext4 dir", 0x4000).expect_err("rec_len");
        assert!(e.to_string().contains("record length 2000"), "{e}");
        bad[4..6].copy_from_slice(&6u16.to_le_bytes());
        assert!(parse(&bad, true, "t", 0).is_err());
        assert_eq!(rec_len(0xFFFF, 65536), 65536);
        assert_eq!(rec_len(0x0001, 65536), 0x10000);
    }
}
