//! GPT parsing: arbitrary disks, half of them with their header and entry
//! CRCs made valid so the fuzzer gets past the checksums. The first input
//! byte holds flags: bit 0 fixes CRCs, bit 1 uses 4096-byte sectors.
//!
//! Whatever the table says, every partition must lie inside the disk, and
//! the `.contents/` view (volumes, mmls-like layout) must not panic.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::container::{Disk, Info};
use vaultfs_formats::image::Image;
use vaultfs_formats::io::{MemSource, ReadAt};
use vaultfs_formats::partition::{read_table, read_table_detect};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let sector = if flags & 2 != 0 { 4096 } else { 512 };
    let mut disk = rest.to_vec();
    if flags & 1 != 0 {
        vaultfs_fuzz::fix_gpt_crcs(&mut disk, sector);
    }
    let src = Arc::new(MemSource::new(disk));
    let len = src.len();
    if let Ok(t) = read_table(&*src, sector as u64) {
        for p in &t.partitions {
            assert!(p.start.checked_add(p.len).is_some_and(|end| end <= len));
        }
    }
    let _ = read_table_detect(&*src, None);
    let image = Image::from_disk(Disk {
        data: src,
        info: Info::new("raw", "", len),
    });
    let _ = image.partitions_txt();
    for name in image.entries() {
        let _ = image.open_entry(&name);
    }
});
