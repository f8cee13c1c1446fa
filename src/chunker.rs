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
    /// The hash value a long run of zero bytes settles at.
    zero_fixed: u64,
}

/// Number of whole zero byte pairs at the start of `d`.
fn leading_zero_pairs(d: &[u8]) -> usize {
    let mut n = 0;
    for c in d.chunks(256) {
        // An OR over a block vectorises; the byte search runs once.
        if c.iter().fold(0u8, |acc, b| acc | b) == 0 {
            n += c.len();
        } else {
            n += c.iter().position(|&b| b != 0).unwrap_or(c.len());
            break;
        }
    }
    n / 2
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
        // Each pair shifts the hash by two bits, so after 32 zero pairs
        // nothing of the earlier state is left.
        let mut zero_fixed = 0u64;
        for _ in 0..40 {
            zero_fixed = (zero_fixed << 2)
                .wrapping_add(gear_ls[0])
                .wrapping_add(gear[0]);
        }
        ChunkerParams {
            gear,
            gear_ls,
            mask_s,
            mask_l,
            min,
            avg,
            max,
            zero_fixed,
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

/// Bytes read from the source per `read` call.
const READ_BLOCK: usize = 1 << 20;

/// Splits a stream into chunks, reading straight into the chunk being
/// built: no look-ahead buffer, so memory per stream is one chunk, and
/// each byte is copied once (into its chunk) except the tail of the read
/// block that follows a cut.
///
/// The cut points are exactly those of `fastcdc::v2020::cut_gear` over the
/// same bytes (a test holds it to that); the scan is merely resumable.
pub struct Chunker<'p, R> {
    params: &'p ChunkerParams,
    reader: R,
    chunk: Vec<u8>,
    /// Next byte-pair index to hash (pairs `2i, 2i+1`).
    pair: usize,
    hash: u64,
    eof: bool,
    spare: Vec<Vec<u8>>,
}

impl<'p, R: Read> Chunker<'p, R> {
    /// Offers a used chunk buffer for reuse, sparing an allocation (and the
    /// page faults of fresh memory) per chunk.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.is_empty() {
            self.spare.push(buf);
        }
    }

    /// A chunker over `reader`.
    pub fn new(params: &'p ChunkerParams, reader: R) -> Self {
        Chunker {
            params,
            reader,
            chunk: Vec::new(),
            pair: params.min / 2,
            hash: 0,
            eof: false,
            spare: Vec::new(),
        }
    }

    fn read_more(&mut self) -> io::Result<()> {
        let len = self.chunk.len();
        let want = READ_BLOCK.min(self.params.max.saturating_sub(len)).max(1);
        self.chunk.resize(len + want, 0);
        loop {
            match self.reader.read(&mut self.chunk[len..]) {
                Ok(n) => {
                    self.chunk.truncate(len + n);
                    self.eof = n == 0;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.chunk.truncate(len);
                    return Err(e);
                }
            }
        }
    }

    /// Scans the pairs that are available; returns a cut length if found.
    fn scan(&mut self) -> Option<usize> {
        let p = self.params;
        let data = &self.chunk;
        // Pairs may be hashed while they lie inside the data and below the
        // maximum size; at the end of the stream `cut_gear` stops at
        // floor(len / 2) pairs, which is the same bound.
        let limit = data.len().min(p.max) / 2;
        let center = p.avg / 2;
        let (mask_s, mask_l) = (p.mask_s, p.mask_l);
        let (mask_s_ls, mask_l_ls) = (mask_s << 1, mask_l << 1);
        let mut hash = self.hash;
        let mut i = self.pair;
        while i < limit {
            let a = i * 2;
            let small = i < center;
            let (m, m_ls) = if small {
                (mask_s, mask_s_ls)
            } else {
                (mask_l, mask_l_ls)
            };
            let start = hash;
            hash = (hash << 2).wrapping_add(p.gear_ls[data[a] as usize]);
            if hash & m_ls == 0 {
                return Some(a);
            }
            hash = hash.wrapping_add(p.gear[data[a + 1] as usize]);
            if hash & m == 0 {
                return Some(a + 1);
            }
            i += 1;
            if start == p.zero_fixed && data[a] == 0 && data[a + 1] == 0 {
                // Over zeros the hash reaches a fixed point. A zero pair
                // hashed from that point just failed both checks with this
                // region's mask; each further zero pair would repeat them,
                // so no cut can come before the zeros, this mask region or
                // the scan limit end. (The pair must start at the fixed
                // point, or its first check was made on another value; and
                // the region is the pair's own, or the other mask's checks
                // would be skipped.) Sparse disk images are mostly such runs.
                let region_end = if small { center.min(limit) } else { limit };
                if region_end > i {
                    i += leading_zero_pairs(&data[2 * i..2 * region_end]);
                }
            }
        }
        self.pair = i;
        self.hash = hash;
        None
    }

    fn emit(&mut self, n: usize) -> Vec<u8> {
        let mut rest = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(2 * READ_BLOCK));
        rest.clear();
        rest.extend_from_slice(&self.chunk[n..]);
        self.chunk.truncate(n);
        self.pair = self.params.min / 2;
        self.hash = 0;
        std::mem::replace(&mut self.chunk, rest)
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let len = self.chunk.len();
            if len > self.params.min || (self.eof && len > 0) {
                if let Some(cut) = self.scan() {
                    return Ok(Some(self.emit(cut)));
                }
                if len >= self.params.max {
                    return Ok(Some(self.emit(self.params.max)));
                }
            }
            if self.eof {
                return Ok((!self.chunk.is_empty()).then(|| std::mem::take(&mut self.chunk)));
            }
            self.read_more()?;
        }
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
        // Same cut points as the crate's one-shot function.
        let mut rest: &[u8] = &data;
        for c in &a {
            assert_eq!(p.cut(rest), c.len());
            rest = &rest[c.len()..];
        }
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
        // Runs of zeros (the fast path) of many lengths and positions.
        let mut sparse = data.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for _ in 0..40 {
            let start = (rng.next_u32() as usize) % sparse.len();
            let len = [1, 2, 63, 64, 65, 130, 5000, 70_000, 300_000][rng.next_u32() as usize % 9];
            let end = (start + len).min(sparse.len());
            sparse[start..end].fill(0);
        }
        sparse.extend(std::iter::repeat_n(0u8, 500_000));
        sparse.extend_from_slice(&data[..100_000]);
        for read in [4096, 1 << 20] {
            let c = chunks(&p, &sparse, read);
            assert_eq!(c.concat(), sparse);
            let mut rest: &[u8] = &sparse;
            for ch in &c {
                assert_eq!(p.cut(rest), ch.len());
                rest = &rest[ch.len()..];
            }
        }
        // Zero runs that start before the average size and go past it: the
        // fast path must stop where the mask changes, and must not skip a
        // zero pair whose first check it never made (a fuzzer found both).
        for seed in 0..3000u64 {
            let q = ChunkerParams::with_sizes(seed, 64, 256, 1024);
            let mut d = data[..64 + (seed as usize % 64)].to_vec();
            d.extend(std::iter::repeat_n(0u8, 900));
            d.extend_from_slice(&data[1000..1300]);
            let mut rest: &[u8] = &d;
            for ch in chunks(&q, &d, 1 << 20) {
                assert_eq!(q.cut(rest), ch.len(), "seed {seed}");
                rest = &rest[ch.len()..];
            }
        }
        // The input the fuzzer found: a zero run at a fixed-point hash
        // across the average size (`fuzz/fuzz_targets/chunker.rs` layout: seed
        // byte, read step, flags, data).
        let found = include_bytes!("../fuzz/seeds/chunker/regression-zero-run-at-center");
        let (head, d) = found.split_at(4);
        let q = ChunkerParams::with_sizes(
            u64::from(head[0]).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            64,
            256,
            1024,
        );
        for read in [1, 7, 1001, 1 << 20] {
            let mut rest: &[u8] = d;
            for ch in chunks(&q, d, read) {
                assert_eq!(q.cut(rest), ch.len(), "read size {read}");
                rest = &rest[ch.len()..];
            }
        }
        // Short streams, streams with no cut point, sizes around min and max.
        for len in [1, 4095, 4096, 4097, 65535, 65536, 65537, 200_000] {
            for d in [vec![0u8; len], data[..len].to_vec()] {
                let c = chunks(&p, &d, 3000);
                assert_eq!(c.concat(), d, "len {len}");
                let mut rest: &[u8] = &d;
                for ch in &c {
                    assert_eq!(p.cut(rest), ch.len(), "len {len}");
                    rest = &rest[ch.len()..];
                }
            }
        }
    }
}
