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
