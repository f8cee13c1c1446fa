//! Positional byte sources: the one currency between the layers of this
//! crate (containers, partitions, filesystems) and between this crate and
//! its users.
//!
//! A [`ReadAt`] has a length and answers reads at any offset through `&self`:
//! no cursor, safe to call from many threads at once. Combinators build
//! views: [`Slice`] (a partition), [`Extents`] (ranges mapped to sources or
//! zeros: multi-extent disks, VHD/VHDX blocks), [`Runs`] (block runs with
//! holes: filesystem allocation maps), [`BlockCache`] (for metadata-heavy
//! parsers) and [`ReadAtCursor`] (a `Read + Seek` view for crates that want
//! one). Implementations never hold a lock while calling a lower layer.

mod cache;
mod cursor;
mod extents;
mod file;
mod mem;
mod runs;
mod slice;

use std::io;
use std::sync::Arc;

pub use cache::BlockCache;
pub use cursor::ReadAtCursor;
pub use extents::{Extent, Extents, Target};
pub use file::FileSource;
pub use mem::MemSource;
pub use runs::{Run, Runs};
pub use slice::Slice;

/// Bytes readable at any offset.
pub trait ReadAt: Send + Sync {
    /// The source's length in bytes.
    fn len(&self) -> u64;

    /// Reads up to `buf.len()` bytes at `offset`. Returns fewer only at the
    /// end of the source, and 0 at or past it.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// True if the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes at `offset`, at most `len` of them, as a buffer the source
    /// already holds in memory (a cached blob), shared instead of copied.
    /// `None` when the source holds no such buffer for this range: read
    /// with [`ReadAt::read_at`] instead. The result may be shorter than
    /// asked where a buffer ends; it is empty only at or past the end.
    fn read_shared(&self, offset: u64, len: usize) -> io::Result<Option<SharedBytes>> {
        let _ = (offset, len);
        Ok(None)
    }

    /// Reads exactly `buf.len()` bytes at `offset`; a source ending earlier
    /// is `UnexpectedEof` naming the range.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset
                .checked_add(done as u64)
                .ok_or_else(|| past_end(offset, buf.len(), self.len()))?;
            match self.read_at(at, &mut buf[done..]) {
                Ok(0) => return Err(past_end(offset, buf.len(), self.len())),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A shared byte source.
pub type Source = Arc<dyn ReadAt>;

/// A buffer that can be shared between threads.
pub type SharedBuf = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A range of a shared buffer: bytes handed out without a copy.
#[derive(Clone)]
pub struct SharedBytes {
    buf: SharedBuf,
    range: std::ops::Range<usize>,
}

impl SharedBytes {
    /// `range` of `buf`; `None` if it does not lie inside.
    pub fn new(buf: SharedBuf, range: std::ops::Range<usize>) -> Option<SharedBytes> {
        let inside = range.start <= range.end && range.end <= (*buf).as_ref().len();
        inside.then_some(SharedBytes { buf, range })
    }
}

impl std::ops::Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &(*self.buf).as_ref()[self.range.clone()]
    }
}

/// The error for a read of `len` bytes at `offset` beyond a source's end.
pub fn past_end(offset: u64, len: usize, source_len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "read of {len} bytes at offset {offset:#x} goes past the end of the source ({source_len:#x} bytes)"
        ),
    )
}

/// How many bytes of a read of `want` at `offset` lie inside `len`.
pub fn clamp(offset: u64, want: usize, len: u64) -> usize {
    if offset >= len {
        0
    } else {
        usize::try_from(len - offset).map_or(want, |left| want.min(left))
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }
    fn read_shared(&self, offset: u64, len: usize) -> io::Result<Option<SharedBytes>> {
        (**self).read_shared(offset, len)
    }
}

#[cfg(test)]
pub(crate) mod model {
    //! The model every combinator is tested against: random reads compared
    //! with a flat `Vec`, across boundaries and past the end.
    use super::ReadAt;
    use proptest::prelude::*;

    /// Reads `(offset, len)` pairs from `src` and compares with `flat`.
    pub(crate) fn check(
        src: &dyn ReadAt,
        flat: &[u8],
        reads: &[(u64, usize)],
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(src.len(), flat.len() as u64);
        for &(offset, len) in reads {
            let mut buf = vec![0xA5u8; len];
            let n = src
                .read_at(offset, &mut buf)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let start = (offset as usize).min(flat.len());
            let want = &flat[start..(start + len).min(flat.len())];
            prop_assert_eq!(n, want.len(), "read {} at {}", len, offset);
            prop_assert_eq!(&buf[..n], want);
            let exact = src.read_exact_at(offset, &mut buf);
            prop_assert_eq!(exact.is_ok(), want.len() == len);
        }
        Ok(())
    }

    /// Random reads over a source of `len` bytes, including past the end.
    pub(crate) fn reads(len: usize) -> impl Strategy<Value = Vec<(u64, usize)>> {
        prop::collection::vec((0..(len as u64 + 64), 0..(len.min(4096) + 64)), 1..40)
    }
}
