//! A `Read + Seek` view of a source, made per operation for crates that
//! want a stream; the position lives in the view, never in the source.

use std::io::{self, Read, Seek, SeekFrom};

use super::ReadAt;

/// A cursor over a source.
pub struct ReadAtCursor<'a> {
    src: &'a dyn ReadAt,
    pos: u64,
}

impl<'a> ReadAtCursor<'a> {
    /// A cursor at offset 0.
    pub fn new(src: &'a dyn ReadAt) -> Self {
        ReadAtCursor { src, pos: 0 }
    }
}

impl Read for ReadAtCursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ReadAtCursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.src.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = base
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemSource;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_std_cursor(data in prop::collection::vec(any::<u8>(), 0..3000), ops in prop::collection::vec((0u8..4, 0i64..3500, 0usize..600), 1..30)) {
            let src = MemSource::new(data.clone());
            let mut ours = ReadAtCursor::new(&src);
            let mut model = std::io::Cursor::new(data.clone());
            for (op, x, n) in ops {
                let to = match op {
                    0 => SeekFrom::Start(x as u64),
                    1 => SeekFrom::End(-(x % 100)),
                    2 => SeekFrom::Current(x - 1500),
                    _ => {
                        let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
                        let ra = ours.read(&mut a).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let rb = model.read(&mut b).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(&a[..ra], &b[..rb]);
                        continue;
                    }
                };
                prop_assert_eq!(ours.seek(to).ok(), model.seek(to).ok());
            }
        }
    }
}
