//! restic's authenticated encryption: AES-256-CTR, then Poly1305-AES over the
//! ciphertext, stored as `IV || CIPHERTEXT || MAC`.
//!
//! The 16-byte random IV is both the initial CTR block (a 128-bit big-endian
//! counter, as Go's `cipher.NewCTR`) and the Poly1305-AES nonce: the MAC key
//! is `r || AES-128_k(nonce)`. Knows nothing of files or JSON.

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use poly1305::Poly1305;
use poly1305::universal_hash::UniversalHash;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle_eq::ct_eq;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// Length of the IV prepended to every encrypted object.
pub const IV_LEN: usize = 16;
/// Length of the MAC appended to every encrypted object.
pub const MAC_LEN: usize = 16;
/// Bytes an encryption adds to its plaintext.
pub const OVERHEAD: usize = IV_LEN + MAC_LEN;

/// Decryption failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The object is shorter than IV + MAC.
    #[error("ciphertext too short ({0} bytes)")]
    TooShort(usize),
    /// The MAC does not match: wrong key, or damaged data.
    #[error("MAC mismatch (ciphertext damaged or wrong key)")]
    MacMismatch,
}

/// The two halves of a Poly1305-AES key.
#[derive(Clone, PartialEq, Eq)]
pub struct MacKey {
    /// AES-128 key used to encrypt the nonce.
    pub k: [u8; 16],
    /// Poly1305 `r` (clamped when used).
    pub r: [u8; 16],
}

/// A master key (or a key-file's derived user key): encryption plus MAC key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// AES-256 key.
    pub encrypt: [u8; 32],
    /// Poly1305-AES key.
    pub mac: MacKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// The restic JSON form of a master key: `{"mac":{"k":..,"r":..},"encrypt":..}`.
#[derive(Serialize, Deserialize)]
pub struct KeyJson {
    mac: MacJson,
    #[serde(with = "crate::b64")]
    encrypt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct MacJson {
    #[serde(with = "crate::b64")]
    k: Vec<u8>,
    #[serde(with = "crate::b64")]
    r: Vec<u8>,
}

/// Poly1305's clamping of `r`, applied to freshly generated keys as restic does.
fn mask_r(r: &mut [u8; 16]) {
    r[3] &= 15;
    r[7] &= 15;
    r[11] &= 15;
    r[15] &= 15;
    r[4] &= 252;
    r[8] &= 252;
    r[12] &= 252;
}

impl Key {
    /// A fresh random master key.
    pub fn random() -> Key {
        let mut rng = rand::rngs::OsRng;
        let mut key = Key {
            encrypt: [0; 32],
            mac: MacKey {
                k: [0; 16],
                r: [0; 16],
            },
        };
        rng.fill_bytes(&mut key.encrypt);
        rng.fill_bytes(&mut key.mac.k);
        rng.fill_bytes(&mut key.mac.r);
        mask_r(&mut key.mac.r);
        key
    }

    /// Splits 64 KDF output bytes: 32 encryption, 16 MAC `k`, 16 MAC `r`.
    pub fn from_kdf_output(bytes: &[u8; 64]) -> Key {
        let mut key = Key {
            encrypt: [0; 32],
            mac: MacKey {
                k: [0; 16],
                r: [0; 16],
            },
        };
        key.encrypt.copy_from_slice(&bytes[..32]);
        key.mac.k.copy_from_slice(&bytes[32..48]);
        key.mac.r.copy_from_slice(&bytes[48..]);
        key
    }

    /// The restic JSON form.
    pub fn to_json(&self) -> KeyJson {
        KeyJson {
            mac: MacJson {
                k: self.mac.k.to_vec(),
                r: self.mac.r.to_vec(),
            },
            encrypt: self.encrypt.to_vec(),
        }
    }

    /// Parses the restic JSON form; `None` if a field has the wrong length.
    pub fn from_json(j: &KeyJson) -> Option<Key> {
        Some(Key {
            encrypt: j.encrypt.as_slice().try_into().ok()?,
            mac: MacKey {
                k: j.mac.k.as_slice().try_into().ok()?,
                r: j.mac.r.as_slice().try_into().ok()?,
            },
        })
    }

    fn mac(&self, iv: &[u8; 16], ciphertext: &[u8]) -> [u8; 16] {
        let aes = aes::Aes128::new(&self.mac.k.into());
        let mut s = aes::Block::from(*iv);
        aes.encrypt_block(&mut s);
        let mut pkey = [0u8; 32];
        pkey[..16].copy_from_slice(&self.mac.r);
        pkey[16..].copy_from_slice(&s);
        poly1305_tag(&pkey, ciphertext)
    }

    /// Encrypts `plaintext`, appending `IV || CIPHERTEXT || MAC` to `out`.
    pub fn encrypt_into(&self, plaintext: &[u8], out: &mut Vec<u8>) {
        let mut iv = [0u8; IV_LEN];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        let start = out.len();
        out.reserve(plaintext.len() + OVERHEAD);
        out.extend_from_slice(&iv);
        out.extend_from_slice(plaintext);
        let ct = &mut out[start + IV_LEN..];
        Aes256Ctr::new(&self.encrypt.into(), &iv.into()).apply_keystream(ct);
        let tag = self.mac(&iv, ct);
        out.extend_from_slice(&tag);
    }

    /// Encrypts `plaintext` into a new buffer.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        self.encrypt_into(plaintext, &mut out);
        out
    }

    /// Verifies the MAC and decrypts `IV || CIPHERTEXT || MAC`.
    pub fn decrypt(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = data.to_vec();
        let n = self.decrypt_in_place(&mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Verifies and decrypts in place; the plaintext ends up at the start of
    /// `buf` and its length is returned.
    pub fn decrypt_in_place(&self, buf: &mut [u8]) -> Result<usize, CryptoError> {
        if buf.len() < OVERHEAD {
            return Err(CryptoError::TooShort(buf.len()));
        }
        let (iv_part, rest) = buf.split_at_mut(IV_LEN);
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(iv_part);
        let ct_len = rest.len() - MAC_LEN;
        let (ct, tag) = rest.split_at_mut(ct_len);
        if !ct_eq(&self.mac(&iv, ct), tag) {
            return Err(CryptoError::MacMismatch);
        }
        Aes256Ctr::new(&self.encrypt.into(), &iv.into()).apply_keystream(ct);
        buf.copy_within(IV_LEN..IV_LEN + ct_len, 0);
        Ok(ct_len)
    }
}

fn poly1305_tag(key: &[u8; 32], msg: &[u8]) -> [u8; 16] {
    let mut p = Poly1305::new(key.into());
    let full = msg.len() / 16 * 16;
    // Whole blocks go through the (SIMD) block path; the tail is padded the
    // way Poly1305 defines it (append 0x01, then zeros), which
    // `compute_unpadded` does for us.
    p.update_padded(&msg[..full]);
    let tag = p.compute_unpadded(&msg[full..]);
    tag.into()
}

mod subtle_eq {
    /// Constant-time comparison of two equal-length byte strings.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = Key::random();
        for len in [0usize, 1, 15, 16, 17, 1000] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ct = key.encrypt(&pt);
            assert_eq!(ct.len(), len + OVERHEAD);
            assert_eq!(key.decrypt(&ct).as_deref(), Ok(pt.as_slice()));
            let mut bad = ct.clone();
            bad[IV_LEN] ^= 1;
            if len > 0 {
                assert_eq!(key.decrypt(&bad), Err(CryptoError::MacMismatch));
            }
            assert_eq!(Key::random().decrypt(&ct), Err(CryptoError::MacMismatch));
        }
        assert_eq!(key.decrypt(&[0; 5]), Err(CryptoError::TooShort(5)));
    }

    /// Poly1305-AES test vector from the original paper (section B, 3rd
    /// example), to pin the key layout `r || AES_k(nonce)`.
    #[test]
    fn poly1305_aes_paper_vector() {
        let k = hex::decode("ec074c835580741701425b623235add6").unwrap_or_default();
        let r = hex::decode("851fc40c3467ac0be05cc20404f3f700").unwrap_or_default();
        let nonce = hex::decode("fb447350c4e868c52ac3275cf9d4327e").unwrap_or_default();
        let msg = hex::decode("f3f6").unwrap_or_default();
        let key = Key {
            encrypt: [0; 32],
            mac: MacKey {
                k: k.as_slice().try_into().unwrap_or_default(),
                r: r.as_slice().try_into().unwrap_or_default(),
            },
        };
        let iv: [u8; 16] = nonce.as_slice().try_into().unwrap_or_default();
        assert_eq!(
            hex::encode(key.mac(&iv, &msg)),
            "f4c633c3044fc145f84f335cb81953de"
        );
    }
}
