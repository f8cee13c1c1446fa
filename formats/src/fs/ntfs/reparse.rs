//! Reparse points and ntfs-3g's Interix symlinks: what makes an NTFS file
//! a symbolic link.
//!
//! Sources: [MS-FSCC] §2.1.2 (REPARSE_DATA_BUFFER: tag, data length,
//! reserved; §2.1.2.4 symbolic link: substitute-name offset and length,
//! print-name offset and length, flags (1: relative), path buffer;
//! §2.1.2.5 mount point: the same without flags) and §2.1.2.1 (tag
//! values); the WSL `IO_REPARSE_TAG_LX_SYMLINK` layout (a 4-byte version,
//! then the UTF-8 target); the ntfs-3g documentation "Junction points and
//! symbolic links" and its `INTX_FILE` layout (the magic `IntxLNK\1` then
//! the UTF-16LE target, in a regular file with the system attribute).

use super::le::{slice, u16_at, u32_at, utf16_string, utf16_units};

pub(crate) const TAG_MOUNT_POINT: u32 = 0xA000_0003;
pub(crate) const TAG_SYMLINK: u32 = 0xA000_000C;
pub(crate) const TAG_DEDUP: u32 = 0x8000_0013;
pub(crate) const TAG_WOF: u32 = 0x8000_0017;
pub(crate) const TAG_LX_SYMLINK: u32 = 0xA000_001D;

/// The magic of an Interix symlink file.
pub(crate) const INTX_SYMLINK: &[u8; 8] = b"IntxLNK\x01";
/// Interix symlinks are small; larger files are not read as such.
pub(crate) const INTX_MAX: u64 = 8 + 2 * 4096;

/// A parsed reparse point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reparse {
    /// A symlink or junction with its target in `/` form.
    Link { tag: u32, target: String },
    /// Any other tag (or a link whose data is damaged).
    Other { tag: u32 },
}

impl Reparse {
    pub fn tag(&self) -> u32 {
        match self {
            Reparse::Link { tag, .. } | Reparse::Other { tag } => *tag,
        }
    }
}

/// The name of a tag for `details`.
pub(crate) fn tag_name(tag: u32) -> &'static str {
    match tag {
        TAG_MOUNT_POINT => "IO_REPARSE_TAG_MOUNT_POINT",
        TAG_SYMLINK => "IO_REPARSE_TAG_SYMLINK",
        TAG_DEDUP => "IO_REPARSE_TAG_DEDUP",
        TAG_WOF => "IO_REPARSE_TAG_WOF",
        TAG_LX_SYMLINK => "IO_REPARSE_TAG_LX_SYMLINK",
        t if t & 0xFFFF_0FFF == 0x9000_001A => "IO_REPARSE_TAG_CLOUD",
        0x8000_0023 => "IO_REPARSE_TAG_AF_UNIX",
        0x8000_0024 => "IO_REPARSE_TAG_LX_FIFO",
        0x8000_0025 => "IO_REPARSE_TAG_LX_CHR",
        0x8000_0026 => "IO_REPARSE_TAG_LX_BLK",
        _ => "unknown",
    }
}

/// Whether the unnamed $DATA of a file with this tag is not its content
/// (the content lives elsewhere: WOF-compressed, deduplicated, or a cloud
/// placeholder), so reading it would give wrong bytes.
pub(crate) fn data_elsewhere(tag: u32) -> bool {
    matches!(tag, TAG_WOF | TAG_DEDUP) || tag & 0xFFFF_0FFF == 0x9000_001A
}

/// Parses a $REPARSE_POINT value. Never fails: unreadable link data gives
/// `Other` with the tag (0 if even that is missing).
pub(crate) fn parse(b: &[u8]) -> Reparse {
    let Some(tag) = u32_at(b, 0) else {
        return Reparse::Other { tag: 0 };
    };
    let data = u16_at(b, 4)
        .and_then(|len| slice(b, 8, usize::from(len)))
        .unwrap_or(&[]);
    let target = match tag {
        TAG_SYMLINK => windows_link(data, 12).map(|(t, flags)| {
            if flags & 1 != 0 {
                t.replace('\\', "/")
            } else {
                absolute(&t)
            }
        }),
        TAG_MOUNT_POINT => windows_link(data, 8).map(|(t, _)| absolute(&t)),
        TAG_LX_SYMLINK => data
            .get(4..)
            .and_then(|t| String::from_utf8(t.to_vec()).ok()),
        _ => None,
    };
    match target {
        Some(target) if !target.is_empty() => Reparse::Link { tag, target },
        _ => Reparse::Other { tag },
    }
}

/// The substitute name (and flags) of a symlink or mount point buffer
/// whose path buffer starts at `path_at` within `data`.
fn windows_link(data: &[u8], path_at: usize) -> Option<(String, u32)> {
    let off = usize::from(u16_at(data, 0)?);
    let len = usize::from(u16_at(data, 2)?);
    let flags = if path_at == 12 { u32_at(data, 8)? } else { 0 };
    let name = slice(data, path_at.checked_add(off)?, len)?;
    Some((utf16_string(&utf16_units(name)), flags))
}

/// An absolute Windows path in `/` form: the NT prefix `\??\` dropped,
/// `UNC\server\share` as `//server/share`.
fn absolute(nt: &str) -> String {
    let p = nt.strip_prefix("\\??\\").unwrap_or(nt);
    let p = match p.strip_prefix("UNC\\") {
        Some(rest) => format!("\\\\{rest}"),
        None => p.to_string(),
    };
    p.replace('\\', "/")
}

/// The target of an Interix symlink file, if `b` (its whole content) is one.
pub(crate) fn interix_target(b: &[u8]) -> Option<String> {
    let rest = b.strip_prefix(INTX_SYMLINK)?;
    let mut units = utf16_units(rest);
    while units.last() == Some(&0) {
        units.pop();
    }
    let t = utf16_string(&units);
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(tag: u32, subst: &str, print: &str, flags: Option<u32>) -> Vec<u8> {
        let s: Vec<u8> = subst.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let p: Vec<u8> = print.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut body = Vec::new();
        for v in [0, s.len(), s.len(), p.len()] {
            body.extend_from_slice(&(v as u16).to_le_bytes());
        }
        if let Some(f) = flags {
            body.extend_from_slice(&f.to_le_bytes());
        }
        body.extend(s);
        body.extend(p);
        let mut b = tag.to_le_bytes().to_vec();
        b.extend_from_slice(&(body.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend(body);
        b
    }

    #[test]
    fn links_in_slash_form() {
        let rel = buffer(TAG_SYMLINK, "..\\a\\b", "..\\a\\b", Some(1));
        assert_eq!(
            parse(&rel),
            Reparse::Link {
                tag: TAG_SYMLINK,
                target: "../a/b".into()
            }
        );
        let abs = buffer(TAG_SYMLINK, "\\??\\C:\\x y\\z", "C:\\x y\\z", Some(0));
        assert!(matches!(parse(&abs), Reparse::Link { target, .. } if target == "C:/x y/z"));
        let unc = buffer(TAG_SYMLINK, "\\??\\UNC\\srv\\share", "", Some(0));
        assert!(matches!(parse(&unc), Reparse::Link { target, .. } if target == "//srv/share"));
        let j = buffer(TAG_MOUNT_POINT, "\\??\\D:\\dir", "D:\\dir", None);
        assert!(
            matches!(parse(&j), Reparse::Link { tag: TAG_MOUNT_POINT, target } if target == "D:/dir")
        );
        let mut lx = TAG_LX_SYMLINK.to_le_bytes().to_vec();
        lx.extend_from_slice(&[10, 0, 0, 0, 2, 0, 0, 0]);
        lx.extend_from_slice(b"/etc/x");
        assert!(matches!(parse(&lx), Reparse::Link { target, .. } if target == "/etc/x"));
    }

    #[test]
    fn damaged_or_other_tags() {
        let mut rel = buffer(TAG_SYMLINK, "..\\a", "..\\a", Some(1));
        rel[10] = 0xF0; // substitute name far outside the buffer
        assert_eq!(parse(&rel), Reparse::Other { tag: TAG_SYMLINK });
        assert_eq!(parse(&[1, 2]), Reparse::Other { tag: 0 });
        let wof = buffer(TAG_WOF, "", "", None);
        assert_eq!(parse(&wof).tag(), TAG_WOF);
        assert!(data_elsewhere(TAG_WOF) && data_elsewhere(0x9000_101A));
        assert!(!data_elsewhere(TAG_SYMLINK));
        assert_eq!(tag_name(0x9000_601A), "IO_REPARSE_TAG_CLOUD");
    }

    #[test]
    fn interix() {
        let mut b = INTX_SYMLINK.to_vec();
        b.extend("../t".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(interix_target(&b).as_deref(), Some("../t"));
        assert_eq!(interix_target(b"IntxLNK\x02ab"), None);
        assert_eq!(interix_target(INTX_SYMLINK), None);
    }
}
