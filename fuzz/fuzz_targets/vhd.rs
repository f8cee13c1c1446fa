//! Arbitrary bytes opened as a VHD (`vaultfs_formats::container::open`
//! with a `.vhd` name, so fixed disks are probed too), then read whole.
//!
//! Opening and reading must never panic, hang or allocate without bound;
//! errors are fine. A differencing disk's parent, whatever its name, is a
//! small raw disk. Disks larger than 64 MiB are read at a few places only.
//!
//! VHD footers and headers carry byte-sum checksums that most mutations
//! break; when the input's last byte (reserved in the footer) is odd, the
//! harness first recomputes the checksums of both footers and of the
//! dynamic header the footer at 0 points to. Inputs with it even exercise
//! the checks themselves.
//!
//! Seeds (`seeds/vhd/`): qemu-img's empty 2 MiB dynamic and 64 KiB fixed
//! disks, and a dynamic and a differencing disk with 16 KiB blocks (one
//! block fully, one partly present) derived from them.

#![no_main]

mod disk_image;

use disk_image::read_disk;
use libfuzzer_sys::fuzz_target;

/// Stores the VHD checksum (one's complement of the byte sum, the field
/// counted as zero) of `s` at `field`.
fn fix(s: &mut [u8], field: usize) {
    s[field..field + 4].fill(0);
    let sum = !s.iter().fold(0u32, |a, &b| a.wrapping_add(u32::from(b)));
    s[field..field + 4].copy_from_slice(&sum.to_be_bytes());
}

fuzz_target!(|data: &[u8]| {
    if data.len() >= 1024 && data[data.len() - 1] & 1 == 1 {
        let mut d = data.to_vec();
        let n = d.len();
        fix(&mut d[n - 512..], 64);
        fix(&mut d[..512], 64);
        let mut off = [0u8; 8];
        off.copy_from_slice(&d[16..24]);
        let at = u64::from_be_bytes(off);
        if let Some(s) = usize::try_from(at)
            .ok()
            .and_then(|a| d.get_mut(a..a.checked_add(1024)?))
        {
            fix(s, 36);
        }
        read_disk(&d, "fuzz.vhd");
    } else {
        read_disk(data, "fuzz.vhd");
    }
});
