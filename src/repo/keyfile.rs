//! Key files (`keys/<id>`): the master key encrypted under a key derived from
//! a password with scrypt. Several key files may unlock one repository.

use chrono::{DateTime, Local};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::crypto::{Key, KeyJson};
use crate::error::{Error, ErrorKind, Result};

/// scrypt cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// CPU/memory cost, a power of two.
    pub n: u64,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl Default for KdfParams {
    /// N=2^15, r=8, p=1: about 32 MiB and 0.1 s, above restic's minimum.
    fn default() -> KdfParams {
        KdfParams {
            n: 1 << 15,
            r: 8,
            p: 1,
        }
    }
}

/// A key file as stored (plain JSON, not encrypted as a whole).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// When the key was created.
    pub created: DateTime<chrono::FixedOffset>,
    /// Who created it.
    #[serde(default)]
    pub username: String,
    /// On which host.
    #[serde(default)]
    pub hostname: String,
    /// Always `scrypt`.
    pub kdf: String,
    /// scrypt N.
    #[serde(rename = "N")]
    pub n: u64,
    /// scrypt r.
    pub r: u32,
    /// scrypt p.
    pub p: u32,
    /// Random salt.
    #[serde(with = "crate::b64")]
    pub salt: Vec<u8>,
    /// The encrypted master key JSON.
    #[serde(with = "crate::b64")]
    pub data: Vec<u8>,
}

/// Upper bounds so a hostile key file cannot make us allocate gigabytes or
/// compute for minutes. restic calibrates its key files to about 0.5 s
/// within 60 MiB; ours use 32 MiB by default.
const MAX_N: u64 = 1 << 24;
const MAX_RP: u64 = 1 << 16;
/// scrypt's memory, `128 * r * N` bytes: at most 1 GiB.
const MAX_MEMORY: u64 = 1 << 30;
/// scrypt's work, `N * r * p`: 256 times that of the default parameters
/// (seconds, not minutes).
const MAX_WORK: u64 = 1 << 26;

impl KdfParams {
    /// Checks that the parameters are valid and within the bounds on memory
    /// and work that a key file may demand.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Error::new(ErrorKind::Unsupported, format!("key file: {what}"));
        let (n, r, p) = (self.n, u64::from(self.r), u64::from(self.p));
        if !n.is_power_of_two() || !(2..=MAX_N).contains(&n) {
            return Err(bad(format!(
                "scrypt N={n} is not a power of two up to 2^24"
            )));
        }
        if r * p > MAX_RP || r == 0 || p == 0 {
            return Err(bad(format!("scrypt r={r} p={p} out of range")));
        }
        // n <= 2^24 and r <= 2^16: no overflow below.
        let memory = 128 * r * n;
        if memory > MAX_MEMORY {
            return Err(bad(format!(
                "scrypt N={n} r={r} needs {} MiB of memory, more than the {} MiB limit",
                memory >> 20,
                MAX_MEMORY >> 20
            )));
        }
        if n * r * p > MAX_WORK {
            return Err(bad(format!(
                "scrypt N={n} r={r} p={p} is more work than the limit N*r*p <= 2^26"
            )));
        }
        Ok(())
    }
}

fn derive(password: &[u8], salt: &[u8], params: KdfParams) -> Result<Key> {
    let bad = |what: &str| Error::new(ErrorKind::Unsupported, format!("key file: {what}"));
    params.check()?;
    let log_n = u8::try_from(params.n.trailing_zeros()).map_err(|_| bad("scrypt N"))?;
    let sp = scrypt::Params::new(log_n, params.r, params.p, 64)
        .map_err(|e| bad(&format!("scrypt parameters: {e}")))?;
    let mut out = [0u8; 64];
    scrypt::scrypt(password, salt, &sp, &mut out).map_err(|e| bad(&format!("scrypt: {e}")))?;
    Ok(Key::from_kdf_output(&out))
}

impl KeyFile {
    /// Creates a key file that unlocks `master` with `password`.
    pub fn create(password: &[u8], master: &Key, params: KdfParams) -> Result<KeyFile> {
        let mut salt = vec![0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let user_key = derive(password, &salt, params)?;
        let json = serde_json::to_vec(&master.to_json())
            .map_err(|e| Error::new(ErrorKind::Io, format!("encoding master key: {e}")))?;
        Ok(KeyFile {
            created: Local::now().fixed_offset(),
            username: crate::sys::username(),
            hostname: crate::sys::hostname(),
            kdf: "scrypt".into(),
            n: params.n,
            r: params.r,
            p: params.p,
            salt,
            data: user_key.encrypt(&json),
        })
    }

    /// Parses a stored key file.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<KeyFile> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::damaged(format!("key file {name}: invalid JSON: {e}")))
    }

    /// Tries to open the master key with `password`; `Ok(None)` if the
    /// password does not fit this key file.
    pub fn open(&self, password: &[u8]) -> Result<Option<Key>> {
        if self.kdf != "scrypt" {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("key file uses kdf {:?}", self.kdf),
            ));
        }
        let user_key = derive(
            password,
            &self.salt,
            KdfParams {
                n: self.n,
                r: self.r,
                p: self.p,
            },
        )?;
        let Ok(plain) = user_key.decrypt(&self.data) else {
            return Ok(None);
        };
        let json: KeyJson = serde_json::from_slice(&plain)
            .map_err(|e| Error::damaged(format!("key file: master key JSON: {e}")))?;
        Key::from_json(&json)
            .map(Some)
            .ok_or_else(|| Error::damaged("key file: master key has wrong field lengths"))
    }

    /// The stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open() {
        let master = Key::random();
        let params = KdfParams {
            n: 1 << 10,
            r: 8,
            p: 1,
        };
        let kf = KeyFile::create(b"secret", &master, params).expect("create");
        let parsed = KeyFile::parse("k", &kf.to_bytes()).expect("parse");
        assert_eq!(parsed.open(b"secret").expect("open"), Some(master));
        assert_eq!(parsed.open(b"wrong").expect("open"), None);
        let mut hostile = parsed.clone();
        hostile.n = 1 << 40;
        assert!(hostile.open(b"secret").is_err());
    }

    /// Parameters within the old per-field bounds (N <= 2^24, r*p <= 2^16)
    /// still asked for 16 or 32 GiB (found with the `key_file` fuzz target:
    /// N=2^12, r=2^16 aborted on a 32 GiB allocation) or minutes of work
    /// (N=2^12, r=8, p=8192). They are refused before scrypt runs.
    #[test]
    fn hostile_scrypt_parameters_are_refused() {
        let kf = KeyFile::create(b"pw", &Key::random(), KdfParams::default()).expect("create");
        for (n, r, p) in [
            (1u64 << 12, 1u32 << 16, 1u32),
            (1 << 24, 8, 1),
            (1 << 21, 8, 1),
            (1 << 12, 8, 8192),
            (1 << 20, 8, 16),
        ] {
            let params = KdfParams { n, r, p };
            let e = params.check().expect_err("hostile parameters");
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            let mut hostile = kf.clone();
            (hostile.n, hostile.r, hostile.p) = (n, r, p);
            let started = std::time::Instant::now();
            assert!(hostile.open(b"pw").is_err());
            assert!(started.elapsed().as_secs() < 1);
        }
        // What restic and vaultfs write stays accepted: restic's defaults,
        // its 60 MiB calibration limit, ours, and 1 GiB.
        for (n, r, p) in [
            (1u64 << 15, 8u32, 1u32),
            (1 << 15, 8, 5),
            (1 << 16, 7, 1),
            (1 << 20, 8, 8),
            (1 << 17, 8, 64),
        ] {
            KdfParams { n, r, p }.check().expect("usual parameters");
        }
    }
}
