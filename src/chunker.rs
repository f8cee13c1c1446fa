//! Content-defined chunking with FastCDC (2020), streaming over any reader.
//!
//! Sizes are 512 KiB / 1 MiB / 8 MiB (min / average / max) with level-1
//! normalisation. The gear table is XORed with a seed derived from the
//! repository's secret chunker polynomial, so chunk boundaries cannot be used
//! by someone without the key to guess content (as restic's random
//! polynomial does for its Rabin chunker).

use std::io::{self, Read};

use fastcdc::v2020::{MASKS, cut_gear, get_gear_with_seed, logarithm2};

/// Minimum chunk size.
pub const MIN_SIZE: usize = 512 * 1024;
/// Target average chunk size.
pub const AVG_SIZE: usize = 1024 * 1024;
/// Maximum chunk size.
pub const MAX_SIZE: usize = 8 * 1024 * 1024;

/// Chunking parameters: the seeded gear tables and masks.
pub struct ChunkerParams {
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    mask_s: u64,
    mask_l: u64,
    min: usize,
    avg: usize,
    max: usize,
}

impl ChunkerParams {
    /// Parameters for the repository's polynomial (any u64 works as seed).
    pub fn new(seed: u64) -> ChunkerParams {
        ChunkerParams::with_sizes(seed, MIN_SIZE, AVG_SIZE, MAX_SIZE)
    }

    /// Parameters with explicit sizes (tests use small ones).
    pub fn with_sizes(seed: u64, min: usize, avg: usize, max: usize) -> ChunkerParams {
        let (gear, gear_ls) = get_gear_with_seed(seed);
        let bits = logarithm2(u32::try_from(avg).unwrap_or(u32::MAX)) as usize;
        // Level-1 normalisation: a stricter mask before the average size, a
        // looser one after it.
        let mask_s = MASKS.get(bits + 1).copied().unwrap_or(u64::MAX);
        let mask_l = MASKS.get(bits.saturating_sub(1)).copied().unwrap_or(0);
        ChunkerParams {
            gear,
            gear_ls,
            mask_s,
            mask_l,
            min,
            avg,
            max,
        }
    }

    /// Length of the first chunk of `data` (all of it if `data` is short).
    pub fn cut(&self, data: &[u8]) -> usize {
        let (_, n) = cut_gear(
            data,
            self.min,
            self.avg,
            self.max,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        n
    }

    /// The maximum chunk size.
    pub fn max_size(&self) -> usize {
        self.max
    }
}

/// Splits a stream into chunks.
pub struct Chunker<'p, R> {
    params: &'p ChunkerParams,
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<'p, R: Read> Chunker<'p, R> {
    /// A chunker over `reader`.
    pub fn new(params: &'p ChunkerParams, reader: R) -> Self {
        Chunker {
            params,
            reader,
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let want = self.params.max;
        if self.buf.len() - self.pos >= want || self.eof {
            return Ok(());
        }
        // Move the unconsumed tail to the front, then read until a full
        // maximal chunk is buffered or the stream ends.
        self.buf.drain(..self.pos);
        self.pos = 0;
        let cap = 2 * want;
        if self.buf.capacity() < cap {
            self.buf.reserve_exact(cap - self.buf.len());
        }
        while self.buf.len() < want && !self.eof {
            let len = self.buf.len();
            self.buf.resize(cap, 0);
            match self.reader.read(&mut self.buf[len..]) {
                Ok(0) => {
                    self.buf.truncate(len);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(len + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.buf.truncate(len),
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.fill()?;
        let avail = &self.buf[self.pos..];
        if avail.is_empty() {
            return Ok(None);
        }
        let n = self.params.cut(avail).clamp(1, avail.len());
        let chunk = avail[..n].to_vec();
        self.pos += n;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    fn chunks(p: &ChunkerParams, data: &[u8], read_size: usize) -> Vec<Vec<u8>> {
        struct Dribble<'a>(&'a [u8], usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut c = Chunker::new(p, Dribble(data, read_size));
        let mut out = vec![];
        while let Ok(Some(ch)) = c.next_chunk() {
            out.push(ch);
        }
        out
    }

    #[test]
    fn boundaries_independent_of_reads_and_local_to_edits() {
        let p = ChunkerParams::with_sizes(0x3DA3358B4DC173, 4096, 16384, 65536);
        let mut data = vec![0u8; 2 << 20];
        rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut data);
        let a = chunks(&p, &data, 1 << 20);
        let b = chunks(&p, &data, 777);
        assert_eq!(a, b);
        assert_eq!(a.concat(), data);
        assert!(a.iter().all(|c| c.len() <= 65536));
        assert!(a.len() > 50, "{} chunks", a.len());
        // Insert one byte in the middle: only the chunks around it change.
        let mut edited = data.clone();
        edited.insert(1 << 20, 0xAA);
        let e = chunks(&p, &edited, 1 << 20);
        let old: std::collections::HashSet<_> = a.iter().collect();
        let new = e.iter().filter(|c| !old.contains(c)).count();
        assert!(new <= 3, "{new} new chunks");
        // Another seed gives other boundaries.
        let q = ChunkerParams::with_sizes(12345, 4096, 16384, 65536);
        assert_ne!(chunks(&q, &data, 1 << 20), a);
        assert!(chunks(&p, &[], 10).is_empty());
    }
}
