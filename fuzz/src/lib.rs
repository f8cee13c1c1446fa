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
