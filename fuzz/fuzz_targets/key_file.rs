//! A key file: `KeyFile::parse`, then `open` with the fuzz password.
//!
//! scrypt with the file's own parameters is the expensive part: `open` runs
//! only when they are cheap (N <= 2^12 and N*r*p <= 2^16) or refused by
//! `KdfParams::check` (then `open` must fail before scrypt). Parsing always
//! runs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vaultfs::repo::{KdfParams, KeyFile};
use vaultfs_fuzz::PASSWORD;

const MAX_FUZZ_N: u64 = 1 << 12;
const MAX_FUZZ_WORK: u64 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Ok(kf) = KeyFile::parse("fuzz", data) else {
        return;
    };
    // What was parsed writes back and reads again the same.
    let bytes = kf.to_bytes();
    let back = KeyFile::parse("fuzz", &bytes).expect("written key file parses");
    assert_eq!(back.to_bytes(), bytes, "key file does not round-trip");

    let params = KdfParams {
        n: kf.n,
        r: kf.r,
        p: kf.p,
    };
    let work = u128::from(kf.n) * u128::from(kf.r) * u128::from(kf.p);
    let cheap = kf.n <= MAX_FUZZ_N && work <= u128::from(MAX_FUZZ_WORK);
    if params.check().is_err() {
        assert!(kf.open(PASSWORD).is_err(), "refused parameters opened");
    } else if cheap {
        let _ = kf.open(PASSWORD);
    }
});
