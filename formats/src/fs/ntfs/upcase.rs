//! Name comparison as NTFS collates file names: UTF-16 code units mapped
//! through the volume's $UpCase table (record 10, 65536 little-endian
//! units), then compared as numbers; names equal that way are ordered by
//! their exact units (so POSIX-namespace names differing only in case
//! have a fixed place in the index B-tree).
//!
//! Sources: "NTFS Documentation" (Russon, Fledel), "Files: $UpCase" and
//! "Concepts: Collation" (COLLATION_FILENAME); the Linux kernel's
//! `fs/ntfs3/upcase.c` (`ntfs_cmp_names`), where case-insensitive equality
//! is broken by the case-sensitive order.

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

/// The volume's upper-case table.
pub(crate) struct UpCase(Arc<[u16]>);

impl UpCase {
    /// From the bytes of $UpCase; a short or missing table is completed
    /// with the identity above what it covers and Rust's simple upper-case
    /// mapping below it.
    pub fn from_bytes(b: &[u8]) -> UpCase {
        let mut table: Vec<u16> = b
            .chunks_exact(2)
            .take(0x10000)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let have = table.len();
        let fallback = UpCase::fallback();
        table.extend_from_slice(&fallback.0[have..]);
        UpCase(table.into())
    }

    /// A table without the volume's: Rust's simple mapping of the BMP,
    /// computed once per process.
    pub fn fallback() -> UpCase {
        static TABLE: OnceLock<Arc<[u16]>> = OnceLock::new();
        UpCase(
            TABLE
                .get_or_init(|| (0..=0xFFFFu16).map(simple_upper).collect())
                .clone(),
        )
    }

    /// Whether the table maps ASCII as every NTFS version does (`a`..`z`
    /// to upper case, digits and upper case to themselves); a damaged
    /// table could make every name compare equal.
    pub fn plausible(&self) -> bool {
        (0x20u16..0x7F).all(|u| {
            let want = if (0x61..=0x7A).contains(&u) {
                u - 0x20
            } else {
                u
            };
            self.up(u) == want
        })
    }

    pub fn up(&self, u: u16) -> u16 {
        self.0.get(usize::from(u)).copied().unwrap_or(u)
    }

    /// Compares ignoring case.
    pub fn cmp_ci(&self, a: &[u16], b: &[u16]) -> Ordering {
        a.iter()
            .map(|&u| self.up(u))
            .cmp(b.iter().map(|&u| self.up(u)))
    }

    /// The B-tree order: ignoring case first, then exactly.
    pub fn collate(&self, a: &[u16], b: &[u16]) -> Ordering {
        self.cmp_ci(a, b).then_with(|| a.cmp(b))
    }
}

fn simple_upper(u: u16) -> u16 {
    let Some(c) = char::from_u32(u32::from(u)) else {
        return u;
    };
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(x), None) if (x as u32) <= 0xFFFF => x as u32 as u16,
        _ => u,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn collates_ignoring_case_then_exactly() {
        let up = UpCase::fallback();
        assert_eq!(up.cmp_ci(&w("readme"), &w("README")), Ordering::Equal);
        assert_eq!(up.collate(&w("README"), &w("Readme")), Ordering::Less);
        assert_eq!(up.collate(&w("a"), &w("B")), Ordering::Less);
        assert_eq!(up.cmp_ci(&w("café"), &w("CAFÉ")), Ordering::Equal);
        assert_eq!(up.cmp_ci(&w("ß"), &w("SS")), Ordering::Greater);
        // The volume's table wins over the fallback.
        let mut bytes = Vec::new();
        for u in 0..0x10000u32 {
            bytes.extend_from_slice(&(u as u16).to_le_bytes());
        }
        let identity = UpCase::from_bytes(&bytes);
        assert_ne!(identity.cmp_ci(&w("a"), &w("A")), Ordering::Equal);
        assert!(!identity.plausible());
        assert!(!UpCase::from_bytes(&[0u8; 0x20000]).plausible());
        assert!(UpCase::fallback().plausible());
    }
}
