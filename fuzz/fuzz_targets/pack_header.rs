//! A pack file's tail: trailer -> `header_range` -> decrypt -> `parse_header`.
//!
//! Each input is used twice: as a whole pack file (whose header almost never
//! passes the MAC), and as `[blob area length: u32 LE][plaintext header]`,
//! encrypted here with the fixed key so that `parse_header` sees every
//! input. Every blob returned must lie inside the pack, before the header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vaultfs::Id;
use vaultfs::crypto::{Key, OVERHEAD};
use vaultfs::repo::PackedBlob;
use vaultfs::repo::pack::{MAX_HEADER_LEN, header_range, parse_header};
use vaultfs_fuzz::{fixed_key, take};

/// Blob areas up to this size are built as real pack bytes.
const MATERIALIZE: u64 = 1 << 16;

/// The blobs tile `0..header_start` exactly, in order, each one holding at
/// least the crypto overhead.
fn check_blobs(blobs: &[PackedBlob], header_start: u64, pack_size: u64) {
    let mut end = 0u64;
    for b in blobs {
        assert_eq!(
            u64::from(b.offset),
            end,
            "blob not where the last one ended"
        );
        assert!(b.length as usize >= OVERHEAD, "blob shorter than IV + MAC");
        end = u64::from(b.offset) + u64::from(b.length);
        assert!(end <= header_start, "blob runs into the header");
    }
    assert_eq!(end, header_start, "blobs do not reach the header");
    assert!(header_start + 4 <= pack_size, "header start past the pack");
}

/// The whole read path over a pack file's bytes; returns whether the header
/// decrypted.
fn whole_pack(pack: &[u8], key: &Key, id: &Id) -> bool {
    let n = pack.len();
    if n < 4 {
        return false;
    }
    let trailer = [pack[n - 4], pack[n - 3], pack[n - 2], pack[n - 1]];
    let Ok((start, hlen)) = header_range(n as u64, trailer, id) else {
        return false;
    };
    assert!(hlen <= MAX_HEADER_LEN);
    assert!(hlen as usize >= OVERHEAD);
    assert_eq!(
        start + u64::from(hlen) + 4,
        n as u64,
        "header range off the tail"
    );
    let s = usize::try_from(start).expect("start inside a slice");
    let Ok(plain) = key.decrypt(&pack[s..s + hlen as usize]) else {
        return false;
    };
    if let Ok(blobs) = parse_header(&plain, start, id) {
        check_blobs(&blobs, start, n as u64);
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let key = fixed_key();
    let id = Id::default();

    whole_pack(data, &key, &id);

    let (area, plain) = take::<4>(data);
    let area = u64::from(u32::from_le_bytes(area));
    let enc = key.encrypt(plain);
    let hlen = u32::try_from(enc.len()).expect("small input");
    if area <= MATERIALIZE {
        let mut pack = vec![0u8; area as usize];
        pack.extend_from_slice(&enc);
        pack.extend_from_slice(&hlen.to_le_bytes());
        assert!(whole_pack(&pack, &key, &id), "own header did not decrypt");
    } else {
        // Too large to build: the same steps on the sizes alone.
        let pack_size = area + u64::from(hlen) + 4;
        let (start, got) = header_range(pack_size, hlen.to_le_bytes(), &id).expect("own header");
        assert_eq!((start, got), (area, hlen));
        let dec = key.decrypt(&enc).expect("own encryption");
        if let Ok(blobs) = parse_header(&dec, start, &id) {
            check_blobs(&blobs, start, pack_size);
        }
    }
});
