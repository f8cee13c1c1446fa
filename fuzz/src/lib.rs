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
