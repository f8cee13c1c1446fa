//! Block runs with holes, as filesystems describe file data (NTFS data
//! runs, ext4 extents, XFS extent records): a list of runs of blocks, each
//! either placed at a block of the volume or sparse, plus a valid-data
//! length past which the file reads as zeros.

use std::io;

use super::{Extents, ReadAt, Source, Target};

/// A run of `blocks` blocks at volume block `at`, or a hole (`at: None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Number of blocks.
    pub blocks: u64,
    /// First volume block, or `None` for a hole.
    pub at: Option<u64>,
}

/// A file's bytes from its block runs.
pub struct Runs(Extents);

impl Runs {
    /// The file of length `len` whose data lies in `runs` of `block_size`
    /// blocks of `volume`; bytes from `valid_len` on read as zeros. The runs
    /// must cover `len`; placed runs must lie inside the volume.
    pub fn new(
        volume: Source,
        block_size: u64,
        runs: &[Run],
        len: u64,
        valid_len: u64,
    ) -> io::Result<Runs> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let valid = valid_len.min(len);
        let mut pieces = Vec::new();
        let mut pos = 0u64;
        for r in runs {
            if pos >= len {
                break;
            }
            let bytes = r
                .blocks
                .checked_mul(block_size)
                .ok_or_else(|| bad(format!("run of {} blocks overflows", r.blocks)))?;
            let take = bytes.min(len - pos);
            // Split at the valid-data length: what lies past it is zeros.
            let data = take.min(valid.saturating_sub(pos));
            if data > 0 {
                let target = match r.at {
                    Some(b) => Target::Source {
                        src: volume.clone(),
                        offset: b
                            .checked_mul(block_size)
                            .ok_or_else(|| bad(format!("run at block {b} overflows")))?,
                    },
                    None => Target::Zero,
                };
                pieces.push((data, target));
            }
            if take > data {
                pieces.push((take - data, Target::Zero));
            }
            pos += take;
        }
        if pos < len {
            return Err(bad(format!("runs cover {pos:#x} of {len:#x} bytes")));
        }
        Ok(Runs(Extents::new(pieces)?))
    }
}

impl ReadAt for Runs {
    fn len(&self) -> u64 {
        self.0.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_at(offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{MemSource, model};
    use proptest::prelude::*;
    use std::sync::Arc;

    proptest! {
        #[test]
        fn matches_model(
            vol in prop::collection::vec(any::<u8>(), 64..2048),
            runs in prop::collection::vec((1u64..5, prop::option::of(0u64..128)), 1..10),
            cut in 0u64..4096, valid_cut in 0u64..4096,
            reads in model::reads(4096),
        ) {
            let bs = 16u64;
            let blocks_in_vol = vol.len() as u64 / bs;
            let runs: Vec<Run> = runs.into_iter()
                .map(|(n, at)| Run { blocks: n, at: at.map(|a| a % blocks_in_vol.saturating_sub(n).max(1)).filter(|a| a + n <= blocks_in_vol) })
                .collect();
            let mut flat = Vec::new();
            for r in &runs {
                match r.at {
                    Some(a) => flat.extend_from_slice(&vol[(a * bs) as usize..((a + r.blocks) * bs) as usize]),
                    None => flat.extend(std::iter::repeat_n(0u8, (r.blocks * bs) as usize)),
                }
            }
            let len = cut % (flat.len() as u64 + 1);
            let valid = valid_cut % (len + 1);
            flat.truncate(len as usize);
            flat[valid as usize..].fill(0);
            let src: Source = Arc::new(MemSource::new(vol.clone()));
            let r = Runs::new(src, bs, &runs, len, valid).map_err(|e| TestCaseError::fail(e.to_string()))?;
            model::check(&r, &flat, &reads)?;
        }
    }

    #[test]
    fn runs_must_cover_the_file() {
        let src: Source = Arc::new(MemSource::new(vec![0u8; 64]));
        let r = Runs::new(
            src,
            16,
            &[Run {
                blocks: 1,
                at: Some(0),
            }],
            40,
            40,
        );
        assert!(r.is_err_and(|e| e.to_string().contains("cover 0x10 of 0x28")));
    }
}
