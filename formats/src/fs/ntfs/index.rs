//! Directory indexes ($I30): $INDEX_ROOT in the record, $INDEX_ALLOCATION
//! blocks (`INDX`, protected by fixups) for larger directories, walked as
//! the B-tree they are.
//!
//! Sources: "NTFS Documentation" (Russon, Fledel), "Attributes:
//! $INDEX_ROOT", "Attributes: $INDEX_ALLOCATION", "Concepts: Index Record",
//! "Concepts: Directory Tree"; the Linux kernel's `fs/ntfs3/ntfs.h`
//! (`struct INDEX_ROOT`, `struct INDEX_HDR`, `struct NTFS_DE`). Index root:
//! indexed attribute type at 0, collation rule at 4, index block size at 8,
//! then the node header at 0x10. `INDX` block: the block's VCN at 0x10 and
//! the node header at 0x18. Node header: offset of the first entry and of
//! the end of the entries (both from the node header), allocated size,
//! flags (1: entries have sub-nodes). Entry: MFT reference at 0, entry
//! length at 8, key length at 0x0A, flags at 0x0C (1: sub-node, 2: last
//! entry, which has no key), the key ($FILE_NAME) at 0x10, the sub-node's
//! VCN in the last 8 bytes.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use super::attr::FileName;
use super::le::{u16_at, u32_at, u64_at};
use crate::fs::FsError;

/// Deeper trees than this are damage (a 4 KiB-block tree of depth 8 holds
/// billions of names).
pub(crate) const MAX_DEPTH: usize = 32;

const ENTRY_SUBNODE: u16 = 1;
const ENTRY_LAST: u16 = 2;

/// One index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub mref: u64,
    /// The key; `None` for the last entry of a node.
    pub name: Option<FileName>,
    pub subnode: Option<u64>,
}

/// One node of the B-tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Node {
    pub entries: Vec<Entry>,
}

/// Parses the entries of the node whose header is at `header` in `b`.
pub(crate) fn parse_node(b: &[u8], header: usize) -> Result<Node, String> {
    let first = u32_at(b, header).ok_or("node header is cut off")? as usize;
    let end = u32_at(b, header + 4).ok_or("node header is cut off")? as usize;
    let start = header.checked_add(first).ok_or("entry offset overflows")?;
    let end = header.checked_add(end).ok_or("entry end overflows")?;
    if end > b.len() || start > end {
        return Err(format!(
            "entries {start:#x}..{end:#x} lie outside the {} bytes",
            b.len()
        ));
    }
    let mut entries = Vec::new();
    let mut at = start;
    loop {
        let bad = |d: &str| format!("entry at {at:#x}: {d}");
        let mref = u64_at(b, at).ok_or_else(|| bad("cut off"))?;
        let len = usize::from(u16_at(b, at + 8).ok_or_else(|| bad("cut off"))?);
        let key_len = usize::from(u16_at(b, at + 10).ok_or_else(|| bad("cut off"))?);
        let flags = u16_at(b, at + 12).ok_or_else(|| bad("cut off"))?;
        let has_sub = flags & ENTRY_SUBNODE != 0;
        let min = if has_sub { 0x18 } else { 0x10 };
        if len < min || len % 8 != 0 || at + len > end {
            return Err(bad(&format!("length {len} (entries end at {end:#x})")));
        }
        let subnode = if has_sub {
            Some(u64_at(b, at + len - 8).ok_or_else(|| bad("cut off"))?)
        } else {
            None
        };
        if flags & ENTRY_LAST != 0 {
            entries.push(Entry {
                mref,
                name: None,
                subnode,
            });
            return Ok(Node { entries });
        }
        let key_end = (at + 0x10).checked_add(key_len);
        if key_end.is_none_or(|e| e > at + len - if has_sub { 8 } else { 0 }) {
            return Err(bad(&format!("key of {key_len} bytes overflows the entry")));
        }
        let name = FileName::parse(&b[at + 0x10..at + 0x10 + key_len])
            .ok_or_else(|| bad("the $FILE_NAME key is cut off"))?;
        entries.push(Entry {
            mref,
            name: Some(name),
            subnode,
        });
        at += len;
    }
}

/// What an $INDEX_ROOT says: the index block size and the root node.
pub(crate) fn parse_root(v: &[u8]) -> Result<(u32, Node), String> {
    let ty = u32_at(v, 0).ok_or("index root is cut off")?;
    if ty != super::attr::AT_FILE_NAME {
        return Err(format!("indexes attribute type {ty:#x}, not $FILE_NAME"));
    }
    let block = u32_at(v, 8).ok_or("index root is cut off")?;
    Ok((block, parse_node(v, 0x10)?))
}

/// Fetches the node of the index block at a VCN.
pub(crate) type Fetch<'a> = dyn Fn(u64) -> Result<Arc<Node>, FsError> + 'a;

/// The damage error for a tree, built by the caller.
pub(crate) type Damage<'a> = dyn Fn(String) -> FsError + 'a;

/// Visits every keyed entry in B-tree (collation) order. A block reached
/// twice or a tree deeper than [`MAX_DEPTH`] is an error.
pub(crate) fn walk(
    root: &Node,
    fetch: &Fetch<'_>,
    damage: &Damage<'_>,
    visit: &mut dyn FnMut(&Entry) -> Result<(), FsError>,
) -> Result<(), FsError> {
    let mut seen = HashSet::new();
    let root = Arc::new(root.clone());
    // (node, next entry, whether that entry's sub-node was walked)
    let mut stack = vec![(root, 0usize, false)];
    while let Some(top) = stack.last_mut() {
        let (node, i, descended) = (top.0.clone(), top.1, top.2);
        let Some(e) = node.entries.get(i) else {
            stack.pop();
            continue;
        };
        if let (Some(vcn), false) = (e.subnode, descended) {
            top.2 = true;
            if !seen.insert(vcn) {
                return Err(damage(format!("index block at VCN {vcn} is reached twice")));
            }
            if stack.len() >= MAX_DEPTH {
                return Err(damage(format!("the tree is deeper than {MAX_DEPTH}")));
            }
            let child = fetch(vcn)?;
            stack.push((child, 0, false));
            continue;
        }
        top.1 += 1;
        top.2 = false;
        if e.name.is_some() {
            visit(e)?;
        }
    }
    Ok(())
}

/// Finds an entry by descending the tree with `cmp` (the wanted name
/// against a key); `accept` may pass over an equal entry (a DOS-only
/// name), the search then going on to the right.
pub(crate) fn find(
    root: &Node,
    fetch: &Fetch<'_>,
    damage: &Damage<'_>,
    cmp: &dyn Fn(&FileName) -> Ordering,
    accept: &dyn Fn(&Entry) -> bool,
) -> Result<Option<Entry>, FsError> {
    let mut node = Arc::new(root.clone());
    let mut seen = HashSet::new();
    for _ in 0..MAX_DEPTH {
        let mut down = None;
        for e in &node.entries {
            let Some(name) = &e.name else {
                down = e.subnode;
                break;
            };
            match cmp(name) {
                Ordering::Equal if accept(e) => return Ok(Some(e.clone())),
                Ordering::Less => {
                    down = e.subnode;
                    break;
                }
                _ => {}
            }
        }
        let Some(vcn) = down else {
            return Ok(None);
        };
        if !seen.insert(vcn) {
            return Err(damage(format!("index block at VCN {vcn} is reached twice")));
        }
        node = fetch(vcn)?;
    }
    Err(damage(format!("the tree is deeper than {MAX_DEPTH}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An index entry for `name` pointing at `record`.
    pub(crate) fn entry(name: &str, record: u64, sub: Option<u64>) -> Vec<u8> {
        let units: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let key_len = 66 + units.len();
        let mut len = (0x10 + key_len).next_multiple_of(8);
        if sub.is_some() {
            len += 8;
        }
        let mut e = vec![0u8; len];
        e[0..8].copy_from_slice(&(record | 1 << 48).to_le_bytes());
        e[8..10].copy_from_slice(&(len as u16).to_le_bytes());
        e[10..12].copy_from_slice(&(key_len as u16).to_le_bytes());
        e[12] = u8::from(sub.is_some());
        e[0x10..0x18].copy_from_slice(&(5u64 | 1 << 48).to_le_bytes());
        e[0x10 + 64] = (units.len() / 2) as u8;
        e[0x10 + 65] = 1;
        e[0x10 + 66..0x10 + 66 + units.len()].copy_from_slice(&units);
        if let Some(v) = sub {
            e[len - 8..].copy_from_slice(&v.to_le_bytes());
        }
        e
    }

    pub(crate) fn last(sub: Option<u64>) -> Vec<u8> {
        let len = if sub.is_some() { 0x18 } else { 0x10 };
        let mut e = vec![0u8; len];
        e[8] = len as u8;
        e[12] = 2 | u8::from(sub.is_some());
        if let Some(v) = sub {
            e[0x10..0x18].copy_from_slice(&v.to_le_bytes());
        }
        e
    }

    /// A node header (at 0) followed by `entries`.
    pub(crate) fn node(entries: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = entries.concat();
        let mut b = vec![0u8; 0x10];
        b[0..4].copy_from_slice(&0x10u32.to_le_bytes());
        b[4..8].copy_from_slice(&((0x10 + body.len()) as u32).to_le_bytes());
        b[8..12].copy_from_slice(&((0x10 + body.len()) as u32).to_le_bytes());
        b.extend(body);
        b
    }

    fn names(n: &Node) -> Vec<String> {
        n.entries
            .iter()
            .filter_map(|e| e.name.as_ref())
            .map(|f| String::from_utf16_lossy(&f.name))
            .collect()
    }

    #[test]
    fn walks_and_finds_in_a_two_level_tree() {
        let root = parse_node(&node(&[entry("m", 30, Some(0)), last(Some(1))]), 0).expect("root");
        let left = Arc::new(parse_node(&node(&[entry("a", 31, None), last(None)]), 0).expect("l"));
        let right = Arc::new(parse_node(&node(&[entry("z", 32, None), last(None)]), 0).expect("r"));
        assert_eq!(names(&root), ["m"]);
        let fetch = |vcn: u64| match vcn {
            0 => Ok(left.clone()),
            1 => Ok(right.clone()),
            _ => Err(FsError::corrupt("test", 0, "no such block")),
        };
        let damage = |d: String| FsError::corrupt("test index", 0, d);
        let mut seen = Vec::new();
        walk(&root, &fetch, &damage, &mut |e| {
            seen.push(crate::fs::ntfs::le::mref_record(e.mref));
            Ok(())
        })
        .expect("walk");
        assert_eq!(seen, [31, 30, 32]);
        for (want, rec) in [
            ("a", Some(31)),
            ("m", Some(30)),
            ("z", Some(32)),
            ("q", None),
        ] {
            let w: Vec<u16> = want.encode_utf16().collect();
            let got = find(
                &root,
                &fetch,
                &damage,
                &|k| w.as_slice().cmp(&k.name),
                &|_| true,
            )
            .expect("find")
            .map(|e| crate::fs::ntfs::le::mref_record(e.mref));
            assert_eq!(got, rec, "{want}");
        }
    }

    #[test]
    fn loops_and_damage_are_errors() {
        let root = parse_node(&node(&[last(Some(0))]), 0).expect("root");
        let looping = Arc::new(root.clone());
        let fetch = |_| Ok(looping.clone());
        let damage = |d: String| FsError::corrupt("test index", 0, d);
        let err = walk(&root, &fetch, &damage, &mut |_| Ok(())).expect_err("loop");
        assert!(err.to_string().contains("reached twice"), "{err}");
        assert!(find(&root, &fetch, &damage, &|_| Ordering::Less, &|_| true).is_err());

        let mut b = node(&[entry("a", 31, None), last(None)]);
        b[0x10 + 8] = 0xF8; // entry length past the end
        assert!(parse_node(&b, 0).is_err());
        let mut b = node(&[entry("a", 31, None), last(None)]);
        b[0x10 + 10] = 0xFF; // key length past the entry
        assert!(parse_node(&b, 0).is_err());
        let mut b = node(&[entry("a", 31, None)]);
        b[4] = 0xFF; // entries end past the buffer
        assert!(parse_node(&b, 0).is_err());
        // No last entry: runs off the end.
        let b = node(&[entry("a", 31, None)]);
        assert!(parse_node(&b, 0).is_err());
    }
}
