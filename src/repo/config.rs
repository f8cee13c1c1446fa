//! The repository `config` file: format version, repository id and the
//! chunker polynomial.
//!
//! restic uses the polynomial for its Rabin chunker; vaultfs chunks with
//! FastCDC and derives the gear-table seed from the same secret, so chunk
//! boundaries do not reveal content to someone without the key. The
//! polynomial must still be a valid one (irreducible, degree 53), because
//! restic refuses a repository whose polynomial is not.

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The decrypted `config` JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    /// Repository format version: 1 or 2.
    pub version: u32,
    /// Random id of the repository (64 hex digits).
    pub id: String,
    /// The chunker polynomial, hex without prefix.
    pub chunker_polynomial: String,
}

impl Config {
    /// A new version-2 config with a fresh id and random irreducible polynomial.
    pub fn new_v2() -> Config {
        let mut id = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut id);
        Config {
            version: 2,
            id: hex::encode(id),
            chunker_polynomial: format!("{:x}", random_polynomial()),
        }
    }

    /// The polynomial as a number, if it parses.
    pub fn polynomial(&self) -> Option<u64> {
        u64::from_str_radix(&self.chunker_polynomial, 16).ok()
    }
}

/// Degree of an GF(2) polynomial stored as bits (None for 0).
fn degree(p: u64) -> Option<u32> {
    if p == 0 {
        None
    } else {
        Some(63 - p.leading_zeros())
    }
}

/// `a mod m` over GF(2), for 128-bit `a`.
fn modp(mut a: u128, m: u64) -> u64 {
    let Some(dm) = degree(m) else { return 0 };
    let m = u128::from(m);
    while a != 0 {
        let da = 127 - a.leading_zeros();
        if da < dm {
            break;
        }
        a ^= m << (da - dm);
    }
    // a now has degree < dm <= 63.
    u64::try_from(a).unwrap_or(0)
}

/// `a * b mod m` over GF(2).
fn mulmod(a: u64, b: u64, m: u64) -> u64 {
    let mut prod: u128 = 0;
    for i in 0..64 {
        if b >> i & 1 == 1 {
            prod ^= u128::from(a) << i;
        }
    }
    modp(prod, m)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = modp(u128::from(a), b);
        a = b;
        b = r;
    }
    a
}

/// Ben-Or's irreducibility test: `p` is irreducible iff
/// gcd(x^(2^i) - x mod p, p) = 1 for all 1 <= i <= deg/2.
pub fn is_irreducible(p: u64) -> bool {
    let Some(d) = degree(p) else { return false };
    if d == 0 {
        return false;
    }
    let x = 2u64;
    let mut xp = x;
    for _ in 1..=d / 2 {
        xp = mulmod(xp, xp, p);
        if gcd(xp ^ x, p) != 1 {
            return false;
        }
    }
    true
}

/// A random irreducible polynomial of degree 53, as restic generates.
pub fn random_polynomial() -> u64 {
    let mut rng = rand::rngs::OsRng;
    loop {
        let mut p = rng.next_u64() & ((1u64 << 54) - 1);
        p |= 1 << 53; // degree 53
        p |= 1; // a polynomial without constant term is divisible by x
        if is_irreducible(p) {
            return p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irreducibility() {
        // restic's documented test polynomial.
        assert!(is_irreducible(0x3DA3358B4DC173));
        // x^2 + 1 = (x + 1)^2
        assert!(!is_irreducible(0b101));
        assert!(is_irreducible(0b111));
        // (x^2+x+1)(x^3+x+1) = x^5+x^4+1
        assert!(!is_irreducible(0b110001));
        let p = random_polynomial();
        assert_eq!(degree(p), Some(53));
        assert!(is_irreducible(p));
    }

    #[test]
    fn config_json() {
        let c = Config::new_v2();
        let j = serde_json::to_string(&c).unwrap_or_default();
        assert!(j.starts_with("{\"version\":2,\"id\":\""), "{j}");
        assert!(c.polynomial().is_some_and(is_irreducible));
    }
}
