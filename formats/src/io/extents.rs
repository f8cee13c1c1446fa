//! Sorted, contiguous ranges of a virtual source, each mapped to a range of
//! another source or to zeros: multi-extent disk descriptors, VHD/VHDX
//! blocks, filesystem block runs.

use std::io;

use super::{ReadAt, Source, clamp};

/// What a range reads as.
#[derive(Clone)]
pub enum Target {
    /// Bytes of `src` from `offset`.
    Source {
        /// The source.
        src: Source,
        /// Where the range starts in it.
        offset: u64,
    },
    /// Zeros.
    Zero,
}

/// One range of the virtual source.
#[derive(Clone)]
pub struct Extent {
    /// Its start in the virtual source.
    pub start: u64,
    /// Its length.
    pub len: u64,
    /// What it reads as.
    pub target: Target,
}

/// A virtual source made of extents.
pub struct Extents {
    extents: Vec<Extent>,
    len: u64,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Extents {
    /// Builds the source from `(len, target)` pieces laid end to end. Each
    /// source range must lie inside its source.
    pub fn new(pieces: impl IntoIterator<Item = (u64, Target)>) -> io::Result<Extents> {
        let mut extents = Vec::new();
        let mut start = 0u64;
        for (len, target) in pieces {
            if len == 0 {
                continue;
            }
            if let Target::Source { src, offset } = &target {
                let end = offset.checked_add(len);
                if end.is_none_or(|e| e > src.len()) {
                    return Err(invalid(format!(
                        "extent at {start:#x} maps {len:#x} bytes from {offset:#x} of a source of {:#x} bytes",
                        src.len()
                    )));
                }
            }
            extents.push(Extent { start, len, target });
            start = start
                .checked_add(len)
                .ok_or_else(|| invalid("extents add up to more than 2^64 bytes".into()))?;
        }
        Ok(Extents {
            extents,
            len: start,
        })
    }

    /// The extents.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    fn find(&self, offset: u64) -> usize {
        self.extents.partition_point(|e| e.start + e.len <= offset)
    }
}

impl ReadAt for Extents {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.len);
        let mut done = 0;
        let mut i = self.find(offset);
        while done < n {
            let Some(e) = self.extents.get(i) else { break };
            let at = offset + done as u64;
            let within = at - e.start;
            let take = clamp(within, n - done, e.len);
            let out = &mut buf[done..done + take];
            match &e.target {
                Target::Zero => out.fill(0),
                Target::Source { src, offset: base } => src.read_exact_at(base + within, out)?,
            }
            done += take;
            i += 1;
        }
        Ok(done)
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
            data in prop::collection::vec(any::<u8>(), 1..3000),
            pieces in prop::collection::vec((1u64..700, any::<bool>(), 0usize..3000), 0..12),
            reads in model::reads(8000),
        ) {
            let src: Source = Arc::new(MemSource::new(data.clone()));
            let mut flat = Vec::new();
            let mut spec = Vec::new();
            for (len, zero, off) in pieces {
                let off = off % data.len();
                let len = len.min((data.len() - off) as u64);
                if zero {
                    flat.extend(std::iter::repeat_n(0u8, len as usize));
                    spec.push((len, Target::Zero));
                } else {
                    flat.extend_from_slice(&data[off..off + len as usize]);
                    spec.push((len, Target::Source { src: src.clone(), offset: off as u64 }));
                }
            }
            let ex = Extents::new(spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
            model::check(&ex, &flat, &reads)?;
        }
    }

    #[test]
    fn refuses_range_outside_source() {
        let src: Source = Arc::new(MemSource::new(vec![1u8; 100]));
        let r = Extents::new([(50, Target::Source { src, offset: 60 })]);
        assert!(r.is_err_and(|e| e.to_string().contains("maps 0x32 bytes from 0x3c")));
    }
}
