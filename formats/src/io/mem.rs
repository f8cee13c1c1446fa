//! A source over bytes in memory (tests, fuzzing, small decoded units).

use std::io;
use std::sync::Arc;

use super::{ReadAt, clamp};

/// Bytes in memory.
#[derive(Clone)]
pub struct MemSource(Arc<[u8]>);

impl MemSource {
    /// A source over `data`.
    pub fn new(data: impl Into<Arc<[u8]>>) -> MemSource {
        MemSource(data.into())
    }
}

impl ReadAt for MemSource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.len());
        if n > 0 {
            let start = offset as usize;
            buf[..n].copy_from_slice(&self.0[start..start + n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::model;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_model(data in prop::collection::vec(any::<u8>(), 0..5000), reads in model::reads(5000)) {
            model::check(&MemSource::new(data.clone()), &data, &reads)?;
        }
    }
}
