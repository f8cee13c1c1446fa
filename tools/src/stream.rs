//! Streaming a byte source (a file of the virtual tree, a disk image's disk
//! or partition) to stdout as fast as the machine allows: reads run ahead
//! on worker threads (each 1 MiB piece is inflated, decrypted or copied
//! independently, in parallel), the main thread writes in order. When
//! stdout is an empty regular file (`> disk.raw`), all-zero pieces are
//! skipped with a seek, so the output is sparse like `qemu-img convert`'s.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc;

use anyhow::{Context, Result};
use nix::sys::stat::{SFlag, fstat};
use nix::unistd::{Whence, ftruncate, lseek};
use vaultfs_formats::io::ReadAt;

/// Bytes per piece.
const PIECE: usize = 1 << 20;

/// Pieces each worker may hold ready ahead of the writer.
const AHEAD: usize = 2;

/// Is stdout an empty regular file at offset 0 (so holes may be left)?
fn stdout_sparse_ok() -> bool {
    let out = io::stdout();
    let fd = out.as_fd();
    let Ok(st) = fstat(fd.as_raw_fd()) else {
        return false;
    };
    let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    regular && st.st_size == 0 && lseek(fd.as_raw_fd(), 0, Whence::SeekCur).ok() == Some(0)
}

/// Copies `src` to stdout; returns the bytes copied. `what` names the
/// source in errors.
pub fn to_stdout(src: &dyn ReadAt, what: &str) -> Result<u64> {
    let sparse = stdout_sparse_ok();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    copy(src, what, &mut out, sparse)
}

/// Copies `src` to `out` from its current offset; with `sparse`, all-zero
/// blocks are skipped with a seek (`out` must then be an empty regular
/// file). Returns the bytes copied.
pub fn copy<W: Write + AsFd>(
    src: &dyn ReadAt,
    what: &str,
    out: &mut W,
    sparse: bool,
) -> Result<u64> {
    let len = src.len();
    let pieces = len.div_ceil(PIECE as u64);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4) as u64;
    std::thread::scope(|s| -> Result<u64> {
        let mut rxs = Vec::new();
        for w in 0..workers {
            let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(AHEAD);
            rxs.push(rx);
            s.spawn(move || {
                let mut i = w;
                while i < pieces {
                    let at = i * PIECE as u64;
                    let n = usize::try_from(len - at).map_or(PIECE, |l| l.min(PIECE));
                    let mut buf = vec![0u8; n];
                    let r = src.read_exact_at(at, &mut buf).map(|()| buf);
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        return;
                    }
                    i += workers;
                }
            });
        }
        let mut hole = false;
        let mut at = 0u64;
        for i in 0..pieces {
            let rx = &rxs[(i % workers) as usize];
            let buf = rx
                .recv()
                .context("a reader thread ended early")?
                .with_context(|| format!("{what}: reading at byte {}", i * PIECE as u64))?;
            if !sparse {
                out.write_all(&buf).context("writing the output")?;
                continue;
            }
            // Runs of data are written, runs of zero blocks skipped.
            for (data, run) in runs(&buf) {
                if data {
                    out.write_all(run).context("writing the output")?;
                } else {
                    // Stdout buffers up to a newline: flush before moving.
                    out.flush().context("writing the output")?;
                    lseek(out.as_fd().as_raw_fd(), run.len() as i64, Whence::SeekCur)
                        .context("seeking in the output")?;
                }
                hole = !data;
                at += run.len() as u64;
            }
        }
        debug_assert!(!sparse || at == len);
        out.flush().context("writing the output")?;
        if hole {
            // A file ending in a hole gets its length from the truncate.
            ftruncate(out.as_fd(), len as i64).context("setting the output's length")?;
        }
        out.flush().context("writing the output")?;
        Ok(len)
    })
}

/// Blocks at which holes are made, as `qemu-img convert -S 4k`.
const HOLE_BLOCK: usize = 4096;

/// Splits `buf` into alternating runs of data and of all-zero 4 KiB blocks.
fn runs(buf: &[u8]) -> Vec<(bool, &[u8])> {
    let mut out: Vec<(bool, &[u8])> = Vec::new();
    let mut start = 0;
    let mut kind = None;
    for (i, block) in buf.chunks(HOLE_BLOCK).enumerate() {
        let data = block.iter().any(|&b| b != 0);
        if kind != Some(data) {
            if let Some(k) = kind {
                out.push((k, &buf[start..i * HOLE_BLOCK]));
            }
            start = i * HOLE_BLOCK;
            kind = Some(data);
        }
    }
    if let Some(k) = kind {
        out.push((k, &buf[start..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_alternate_and_cover_the_buffer() {
        let mut buf = vec![0u8; 5 * HOLE_BLOCK + 10];
        buf[HOLE_BLOCK + 7] = 1;
        buf[3 * HOLE_BLOCK] = 2;
        buf[5 * HOLE_BLOCK + 9] = 3;
        let r = runs(&buf);
        let shape: Vec<(bool, usize)> = r.iter().map(|(d, s)| (*d, s.len())).collect();
        assert_eq!(
            shape,
            [
                (false, HOLE_BLOCK),
                (true, HOLE_BLOCK),
                (false, HOLE_BLOCK),
                (true, HOLE_BLOCK),
                (false, HOLE_BLOCK),
                (true, 10)
            ]
        );
        assert!(runs(&[]).is_empty());
    }
}
