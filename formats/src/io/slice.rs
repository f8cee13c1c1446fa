//! A window of another source: a partition of a disk.

use std::io;

use super::{ReadAt, Source, clamp};

/// `len` bytes of `inner` from `start`.
pub struct Slice {
    inner: Source,
    start: u64,
    len: u64,
}

impl Slice {
    /// A window; it may not reach past the end of `inner`.
    pub fn new(inner: Source, start: u64, len: u64) -> io::Result<Slice> {
        match start.checked_add(len) {
            Some(end) if end <= inner.len() => Ok(Slice { inner, start, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "window {start:#x}+{len:#x} reaches past the end of its source ({:#x} bytes)",
                    inner.len()
                ),
            )),
        }
    }

    /// Where the window starts in its source.
    pub fn start(&self) -> u64 {
        self.start
    }
}

impl ReadAt for Slice {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.len);
        if n == 0 {
            return Ok(0);
        }
        self.inner.read_at(self.start + offset, &mut buf[..n])
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
        fn matches_model(data in prop::collection::vec(any::<u8>(), 1..5000), a in 0usize..5000, b in 0usize..5000, reads in model::reads(5000)) {
            let (s, e) = (a.min(b) % data.len(), a.max(b) % (data.len() + 1));
            let e = e.max(s);
            let src: Source = Arc::new(MemSource::new(data.clone()));
            let slice = Slice::new(src, s as u64, (e - s) as u64).map_err(|e| TestCaseError::fail(e.to_string()))?;
            model::check(&slice, &data[s..e], &reads)?;
        }
    }

    #[test]
    fn refuses_window_past_end() {
        let src: Source = Arc::new(MemSource::new(vec![0u8; 10]));
        assert!(Slice::new(src.clone(), 5, 6).is_err());
        assert!(Slice::new(src, u64::MAX, 2).is_err());
    }
}
