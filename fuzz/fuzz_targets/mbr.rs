//! MBR and EBR-chain parsing: arbitrary disks read with 512-byte sectors.
//! Chains that loop or point outside the disk must end in an error, every
//! partition listed must lie inside the disk, and the `.contents/` view
//! must not panic.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::container::{Disk, Info};
use vaultfs_formats::image::Image;
use vaultfs_formats::io::{MemSource, ReadAt};
use vaultfs_formats::partition::read_table;

fuzz_target!(|data: &[u8]| {
    let src = Arc::new(MemSource::new(data.to_vec()));
    let len = src.len();
    if let Ok(t) = read_table(&*src, 512) {
        for p in &t.partitions {
            assert!(p.start.checked_add(p.len).is_some_and(|end| end <= len));
        }
    }
    let image = Image::from_disk(Disk {
        data: src,
        info: Info::new("raw", "", len),
    });
    let _ = image.partitions_txt();
    let _ = image.layout();
});
