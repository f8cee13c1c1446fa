//! What a reader does with a metadata checksum that does not match: fail
//! with [`FsError::Checksum`], or, with [`FsOptions::ignore_checksums`]
//! (forensic reading of a damaged volume), count it, remember the first
//! few messages for [`VolumeInfo::warnings`](super::VolumeInfo) and parse
//! the structure as it is. Shared by the readers that verify checksums
//! (ext4, XFS); safe to use from many threads at once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{FsError, FsOptions};

/// Messages of ignored mismatches kept for the warning.
const KEEP: usize = 8;
/// Structures remembered so that one read again (after its cache entry
/// was evicted) is not counted twice; past this, every read counts.
const SEEN: usize = 65536;

/// The checksum policy of one open filesystem, and what it ignored.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    ignore: bool,
    ignored: AtomicU64,
    state: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    offsets: HashSet<u64>,
    first: Vec<String>,
}

impl Checks {
    /// The policy `opts` asks for.
    pub(crate) fn new(opts: &FsOptions) -> Checks {
        Checks {
            ignore: opts.ignore_checksums,
            ..Default::default()
        }
    }

    /// Checks `stored` against `computed` for `structure` at byte
    /// `offset`: a mismatch is [`FsError::Checksum`], or is counted and
    /// `Ok` when checksums are ignored.
    pub(crate) fn check(
        &self,
        stored: u32,
        computed: u32,
        structure: &str,
        offset: u64,
    ) -> Result<(), FsError> {
        if stored == computed {
            return Ok(());
        }
        let e = FsError::Checksum {
            structure: structure.to_string(),
            offset,
            stored,
            computed,
        };
        if !self.ignore {
            return Err(e);
        }
        let mut st = self.state.lock();
        if st.offsets.len() < SEEN && !st.offsets.insert(offset) {
            return Ok(());
        }
        self.ignored.fetch_add(1, Ordering::Relaxed);
        if st.first.len() < KEEP {
            st.first.push(e.to_string());
        }
        Ok(())
    }

    /// The warning for [`VolumeInfo::warnings`](super::VolumeInfo), when
    /// mismatches were ignored.
    pub(crate) fn warning(&self) -> Option<String> {
        let n = self.ignored.load(Ordering::Relaxed);
        if n == 0 {
            return None;
        }
        let st = self.state.lock();
        let plural = if n == 1 { "" } else { "es" };
        let first = if n == 1 { "" } else { "first: " };
        Some(format!(
            "{n} checksum mismatch{plural} ignored; {first}{}",
            st.first.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_fails_unless_ignored() {
        let strict = Checks::default();
        assert!(strict.check(1, 1, "x", 0).is_ok());
        let e = strict
            .check(1, 2, "ext4 inode 12", 0x400)
            .expect_err("mismatch");
        assert_eq!(
            e.to_string(),
            "ext4 inode 12 at byte 0x400: checksum mismatch (stored 0x1, computed 0x2)"
        );
        assert!(matches!(e, FsError::Checksum { offset: 0x400, .. }));
        assert_eq!(strict.warning(), None);

        let lax = Checks::new(&FsOptions {
            ignore_checksums: true,
            ..Default::default()
        });
        for i in 0..20u64 {
            lax.check(1, 2, &format!("block {i}"), i * 512)
                .expect("ignored");
        }
        // The same structure again is not counted twice.
        lax.check(1, 2, "block 0", 0).expect("ignored");
        let w = lax.warning().expect("warning");
        assert!(w.starts_with("20 checksum mismatches ignored"), "{w}");
        assert!(
            w.contains("first: block 0 at byte 0x0: checksum mismatch"),
            "{w}"
        );
        assert!(w.contains("block 7 ") && !w.contains("block 8 "), "{w}");
    }
}
