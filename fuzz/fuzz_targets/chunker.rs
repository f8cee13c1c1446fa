//! The streaming `Chunker` with small sizes (64 / 256 / 1024).
//!
//! Input: `[seed: u8][read size: u16 LE][flags: u8][data]`. The reader hands
//! out at most `read size % 2048 + 1` bytes per call, and with flag bit 0 it
//! fails every other call with `Interrupted`; bit 1 recycles each chunk's
//! buffer. The chunks must concatenate to the data, respect the sizes, and
//! match `ChunkerParams::cut` on the remaining bytes.

#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use vaultfs::chunker::{Chunker, ChunkerParams};
use vaultfs_fuzz::take;

const MIN: usize = 64;
const AVG: usize = 256;
const MAX: usize = 1024;

struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
    interrupt: bool,
    calls: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.interrupt && self.calls.is_multiple_of(2) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    let (head, data) = take::<4>(input);
    let seed = u64::from(head[0]).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let step = usize::from(u16::from_le_bytes([head[1], head[2]])) % 2048 + 1;
    let flags = head[3];
    let params = ChunkerParams::with_sizes(seed, MIN, AVG, MAX);
    let reader = Dribble {
        data,
        step,
        interrupt: flags & 1 != 0,
        calls: 0,
    };
    let mut chunker = Chunker::new(&params, reader);
    let mut rest = data;
    while let Some(chunk) = chunker.next_chunk().expect("reading a slice") {
        assert!(!chunk.is_empty(), "empty chunk");
        assert!(chunk.len() <= MAX, "chunk over the maximum");
        assert!(
            chunk.len() <= rest.len(),
            "chunk longer than the input left"
        );
        assert_eq!(chunk[..], rest[..chunk.len()], "chunk bytes differ");
        assert_eq!(
            params.cut(rest),
            chunk.len(),
            "cut point differs from cut()"
        );
        rest = &rest[chunk.len()..];
        if !rest.is_empty() {
            assert!(chunk.len() >= MIN, "chunk under the minimum before the end");
        }
        if flags & 2 != 0 {
            chunker.recycle(chunk);
        }
    }
    assert!(rest.is_empty(), "{} bytes never chunked", rest.len());
});
