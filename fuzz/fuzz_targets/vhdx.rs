//! Arbitrary bytes opened as a VHDX (`vaultfs_formats::container::open`),
//! then read whole.
//!
//! Opening and reading must never panic, hang or allocate without bound;
//! errors are fine. A differencing disk's parent, whatever its name, is a
//! small raw disk. Disks larger than 64 MiB are read at a few places only.
//!
//! Every VHDX header and region table carries a CRC-32C, which nearly
//! every mutation breaks; so when bit 0 of byte 8 (the creator field,
//! which no reader looks at) is set, the harness first recomputes both
//! headers' and both region tables' checksums, letting mutations reach the
//! metadata, the BAT and the reads. Inputs with the bit clear exercise the
//! checksum checks themselves.
//!
//! Multi-MiB inputs are slow to fuzz (libFuzzer hashes and copies every
//! input), and the smallest VHDX is over 3 MiB, so an input that does not
//! start with `vhdxfile` is a compact one the harness builds a file from:
//! `[flags: u8][metadata length: u16 LE][metadata region][BAT region]`,
//! or with flag bit 2 `...[metadata region][log length: u16 LE][log][BAT]`.
//! The file gets valid headers (flag bit 0: the second one newer; bit 1: a
//! log GUID of 1s; bit 2: the log GUID of the log's first entry, the log
//! at 3 MiB over the block data, every `loge` entry's CRC-32C fixed),
//! valid region tables putting the metadata region at 1 MiB and
//! the BAT at 2 MiB (1 MiB each), and a patterned MiB of block data at
//! 3 MiB. `seeds/vhdx/compact` is `small.vhdx` in this form.
//!
//! Seed (`seeds/vhdx/small.vhdx`, 3.1 MiB, the smallest layout the format
//! allows with one data block: headers and region tables in the first MiB,
//! metadata at 1 MiB, BAT at 2 MiB, one block at 3 MiB): a qemu-img dynamic
//! image with 1 MiB blocks, compacted, of a 64 KiB disk. Run with
//! `-max_len=4194304` so that libFuzzer does not cut it to its 1 MiB default.

#![no_main]

mod disk_image;

use disk_image::read_disk;
use libfuzzer_sys::fuzz_target;

/// CRC-32C (Castagnoli), bitwise: the harness's own, independent of the
/// reader's table.
fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
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
    !c
}

const MIB: usize = 1 << 20;

/// Stores the CRC-32C of `s` (checksum field at 4..8 zeroed) there.
fn seal(s: &mut [u8]) {
    s[4..8].fill(0);
    let sum = crc32c(s);
    s[4..8].copy_from_slice(&sum.to_le_bytes());
}

/// The file a compact input describes (see the module doc).
fn build(data: &[u8]) -> Option<Vec<u8>> {
    let (&flags, rest) = data.split_first()?;
    let meta_len = usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]));
    let rest = &rest[2..];
    // The metadata table is 64 KiB: the length counts the bytes after it.
    let meta = rest.get(..(64 << 10) + meta_len)?;
    let mut bat = &rest[meta.len()..];
    let mut log: &[u8] = &[];
    if flags & 4 != 0 {
        let n = usize::from(u16::from_le_bytes([*bat.first()?, *bat.get(1)?]));
        log = bat.get(2..2 + n)?;
        bat = &bat[2 + n..];
    }
    let bat = &bat[..bat.len().min(MIB)];
    let mut f = vec![0u8; 4 * MIB];
    f[..8].copy_from_slice(b"vhdxfile");
    for (i, b) in f[3 * MIB..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let mut log_guid = [0u8; 16];
    if flags & 2 != 0 {
        log_guid = [1; 16];
    }
    if flags & 4 != 0 {
        f[3 * MIB..3 * MIB + log.len()].copy_from_slice(log);
        if let Some(g) = log.get(32..48) {
            log_guid.copy_from_slice(g);
        }
        for p in (0..log.len()).step_by(4096) {
            let at = 3 * MIB + p;
            if &f[at..at + 4] == b"loge" {
                let len = u32::from_le_bytes([f[at + 8], f[at + 9], f[at + 10], f[at + 11]]);
                let len = (len as usize).min(MIB - p);
                if len >= 8 {
                    seal(&mut f[at..at + len]);
                }
            }
        }
    }
    for (i, at) in [64usize << 10, 128 << 10].into_iter().enumerate() {
        let h = &mut f[at..at + 4096];
        h[..4].copy_from_slice(b"head");
        let newer = (flags & 1 == 1) == (i == 1);
        h[8..16].copy_from_slice(&(if newer { 2u64 } else { 1 }).to_le_bytes());
        h[48..64].copy_from_slice(&log_guid);
        h[66..68].copy_from_slice(&1u16.to_le_bytes());
        h[68..72].copy_from_slice(&(MIB as u32).to_le_bytes());
        h[72..80].copy_from_slice(&(3 * MIB as u64).to_le_bytes());
        seal(h);
    }
    const BAT: [u8; 16] = [
        0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A,
        0x08,
    ];
    const META: [u8; 16] = [
        0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88,
        0x6E,
    ];
    for at in [192usize << 10, 256 << 10] {
        let t = &mut f[at..at + (64 << 10)];
        t[..4].copy_from_slice(b"regi");
        t[8..12].copy_from_slice(&2u32.to_le_bytes());
        for (e, (id, offset)) in [(BAT, 2 * MIB), (META, MIB)].into_iter().enumerate() {
            let r = &mut t[16 + 32 * e..48 + 32 * e];
            r[..16].copy_from_slice(&id);
            r[16..24].copy_from_slice(&(offset as u64).to_le_bytes());
            r[24..28].copy_from_slice(&(MIB as u32).to_le_bytes());
            r[28] = 1;
        }
        seal(t);
    }
    f[MIB..MIB + meta.len()].copy_from_slice(meta);
    f[2 * MIB..2 * MIB + bat.len()].copy_from_slice(bat);
    Some(f)
}

fuzz_target!(|data: &[u8]| {
    if !data.starts_with(b"vhdxfile") {
        if let Some(file) = build(data) {
            read_disk(&file, "fuzz.vhdx");
        }
    } else if data.len() > 8 && data[8] & 1 == 1 {
        let mut fixed = data.to_vec();
        for (at, len) in [
            (64 << 10, 4096),
            (128 << 10, 4096),
            (192 << 10, 65536),
            (256 << 10, 65536),
        ] {
            if let Some(s) = fixed.get_mut(at..at + len) {
                s[4..8].fill(0);
                let sum = crc32c(s);
                s[4..8].copy_from_slice(&sum.to_le_bytes());
            }
        }
        read_disk(&fixed, "fuzz.vhdx");
    } else {
        read_disk(data, "fuzz.vhdx");
    }
});
