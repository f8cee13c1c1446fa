//! Fixed setup shared by the fuzz targets: a constant key and a small
//! repository in memory, made once per process.

use std::sync::{Arc, OnceLock};

use vaultfs::backend::MemBackend;
use vaultfs::crypto::Key;
use vaultfs::repo::{KdfParams, Repository};

/// Password of [`repo`].
pub const PASSWORD: &[u8] = b"fuzz";

/// Cheap scrypt parameters for key files made by the targets and seeds.
pub const CHEAP_KDF: KdfParams = KdfParams {
    n: 1 << 10,
    r: 8,
    p: 1,
};

/// A constant key (the targets need no secrecy, only a MAC that passes).
pub fn fixed_key() -> Key {
    let mut bytes = [0u8; 64];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    Key::from_kdf_output(&bytes)
}

/// A version-2 repository on a [`MemBackend`], initialised and reopened
/// once per process.
pub fn repo() -> &'static Repository {
    static REPO: OnceLock<Repository> = OnceLock::new();
    REPO.get_or_init(|| {
        let backend = Arc::new(MemBackend::new());
        Repository::init(backend.clone(), PASSWORD, CHEAP_KDF).expect("init fuzz repository");
        Repository::open(backend, PASSWORD).expect("open fuzz repository")
    })
}

/// Splits off the first `N` bytes of `data` (zero-padded when short).
pub fn take<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut head = [0u8; N];
    let n = data.len().min(N);
    head[..n].copy_from_slice(&data[..n]);
    (head, &data[n..])
}

/// Recomputes the CRCs of the GPT headers at LBA 1 and at the last LBA of
/// `disk` (and of the entry arrays they name) so that fuzzed tables get past
/// the CRC checks to the parsing behind them. Out-of-range fields are left
/// as they are.
pub fn fix_gpt_crcs(disk: &mut [u8], sector: usize) {
    let lbas = [1, (disk.len() / sector.max(1)).saturating_sub(1)];
    for lba in lbas {
        let at = lba * sector;
        let Some(h) = disk.get(at..at + 92) else {
            continue;
        };
        if &h[..8] != b"EFI PART" {
            continue;
        }
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let size = (u32_at(h, 12) as usize).clamp(92, sector);
        let entries_lba = u64::from_le_bytes(h[72..80].try_into().unwrap_or_default()) as usize;
        let array = (u32_at(h, 80) as usize).saturating_mul(u32_at(h, 84) as usize);
        let start = entries_lba.saturating_mul(sector);
        if let Some(entries) = start
            .checked_add(array)
            .and_then(|end| disk.get(start..end))
        {
            let crc = crc32fast::hash(entries);
            disk[at + 88..at + 92].copy_from_slice(&crc.to_le_bytes());
        }
        let Some(header) = disk.get_mut(at..at + size) else {
            continue;
        };
        header[16..20].fill(0);
        let crc = crc32fast::hash(header);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The largest volume [`ntfs_volume`] makes.
pub const MAX_NTFS_VOLUME: usize = 8 << 20;

/// The NTFS volume an input of the `ntfs` target stands for: the input
/// itself when it carries the `NTFS    ` signature at byte 3, else the
/// compact form `[u32 LE volume sectors]` then runs of `[u32 LE first
/// sector][u16 LE count][count × 512 bytes]` laid out on zeros. Capped at
/// [`MAX_NTFS_VOLUME`].
pub fn ntfs_volume(data: &[u8]) -> Option<Vec<u8>> {
    let mut vol = Vec::new();
    ntfs_volume_into(data, &mut vol).then_some(vol)
}

/// [`ntfs_volume`] into `vol` (cleared first), so that a harness can reuse
/// one buffer; false when `data` is too short to describe a volume.
pub fn ntfs_volume_into(data: &[u8], vol: &mut Vec<u8>) -> bool {
    vol.clear();
    if data.get(3..11) == Some(b"NTFS    ") {
        vol.extend_from_slice(&data[..data.len().min(MAX_NTFS_VOLUME)]);
        return true;
    }
    let Some((size, mut rest)) = data.split_first_chunk::<4>() else {
        return false;
    };
    let len = (u32::from_le_bytes(*size) as usize)
        .saturating_mul(512)
        .min(MAX_NTFS_VOLUME);
    vol.resize(len, 0);
    while let Some((head, tail)) = rest.split_first_chunk::<6>() {
        let sector = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let count = u16::from_le_bytes([head[4], head[5]]) as usize;
        let bytes = &tail[..(count * 512).min(tail.len())];
        let at = sector.saturating_mul(512);
        if at < len {
            let n = bytes.len().min(len - at);
            vol[at..at + n].copy_from_slice(&bytes[..n]);
        }
        rest = &tail[bytes.len()..];
    }
    true
}

/// A volume of zeros except for some chunks: the input form of the
/// filesystem targets (ext, XFS), which keeps large volumes small.
pub struct Sparse {
    len: u64,
    /// (offset, bytes), sorted by offset, not overlapping.
    chunks: Vec<(u64, Vec<u8>)>,
}

impl vaultfs_formats::io::ReadAt for Sparse {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = vaultfs_formats::io::clamp(offset, buf.len(), self.len);
        let buf = &mut buf[..n];
        buf.fill(0);
        let end = offset + n as u64;
        let first = self
            .chunks
            .partition_point(|(at, b)| at + b.len() as u64 <= offset);
        for (at, bytes) in &self.chunks[first..] {
            if *at >= end {
                break;
            }
            let from = offset.max(*at);
            let to = end.min(at + bytes.len() as u64);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
        }
        Ok(n)
    }
}

/// Decodes a sparse volume: `[flags: u8][volume length in 512-byte
/// sectors: u32 LE]` then chunks `[first sector: u32 LE][sectors: u16
/// LE][sectors * 512 bytes]`; overlapping or out-of-order chunks are
/// dropped. When bit 0 of the flags is set, `fix` gets each chunk (with
/// its absolute offset) to recompute checksums after mutation. Returns the
/// flags and the volume.
pub fn sparse_volume(data: &[u8], mut fix: impl FnMut(u64, &mut [u8])) -> Option<(u8, Sparse)> {
    let (&flags, rest) = data.split_first()?;
    let len = u64::from(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?)) * 512;
    let mut rest = &rest[4..];
    let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
    while rest.len() >= 6 {
        let sector = u64::from(u32::from_le_bytes(rest[..4].try_into().ok()?));
        let count = usize::from(u16::from_le_bytes([rest[4], rest[5]]));
        rest = &rest[6..];
        let take = (count * 512).min(rest.len());
        let at = sector * 512;
        let mut bytes = rest[..take].to_vec();
        rest = &rest[take..];
        if chunks.last().is_some_and(|(a, b)| a + b.len() as u64 > at) || bytes.is_empty() {
            continue;
        }
        if flags & 1 != 0 {
            fix(at, &mut bytes);
        }
        chunks.push((at, bytes));
    }
    Some((flags, Sparse { len, chunks }))
}

/// The CRC-32C register step (no inversions), as ext4 chains it; XFS's
/// CRC is `!crc32c_raw(!0, data)`.
pub fn crc32c_raw(mut c: u32, data: &[u8]) -> u32 {
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    c
}

/// The body of the ext and XFS targets: decodes a [`sparse_volume`]
/// (`fix` recomputes checksums when flag bit 0 is set; flag bit 1 opens
/// with `ignore_checksums` so mutations reach the parsing behind every
/// check), opens it as `kind`, walks at most 4000 entries reading each
/// one's metadata, details, xattrs, a few pieces of every file and every
/// symlink's target, then lists and opens the deleted files.
pub fn exercise_volume(
    kind: vaultfs_formats::fs::FsKind,
    data: &[u8],
    fix: impl FnMut(u64, &mut [u8]),
) {
    use vaultfs_formats::fs::{FileKind, FsError, FsOptions, open, walk};
    use vaultfs_formats::io::ReadAt;

    let Some((flags, vol)) = sparse_volume(data, fix) else {
        return;
    };
    let opts = FsOptions {
        ignore_checksums: flags & 2 != 0,
        ..Default::default()
    };
    let Ok(fs) = open(kind, Arc::new(vol), &opts) else {
        return;
    };
    let _ = fs.info();
    let _ = fs.metadata(fs.root());
    let mut entries = 0;
    let _ = walk(&*fs, &mut |_, e| {
        entries += 1;
        if entries > 4000 {
            return Err(FsError::corrupt("fuzz", 0, "enough"));
        }
        let _ = fs.metadata(e.ino);
        let _ = fs.details(e.ino);
        let _ = fs.xattrs(e.ino);
        match e.kind {
            FileKind::File => {
                if let Ok(src) = fs.open(e.ino) {
                    let len = src.len();
                    let mut buf = vec![0u8; 4096];
                    for at in [0, len / 3, len.saturating_sub(100), len] {
                        let _ = src.read_at(at, &mut buf);
                    }
                }
            }
            FileKind::Symlink => {
                let _ = fs.read_link(e.ino);
            }
            _ => {}
        }
        Ok(())
    });
    if let Ok(deleted) = fs.deleted() {
        for d in deleted.iter().take(100) {
            if let Ok(src) = fs.open(d.ino) {
                let mut buf = vec![0u8; 4096];
                let _ = src.read_at(0, &mut buf);
            }
        }
    }
}
