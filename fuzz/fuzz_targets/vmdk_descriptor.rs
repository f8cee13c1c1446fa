//! A VMDK text descriptor (or anything the VMDK container accepts) opened
//! over siblings that hold a 4 KiB flat file `flat.bin`, the sparse seeds
//! `sparse.vmdk`/`parent.vmdk` (monolithicSparse) and `stream.vmdk`
//! (streamOptimized), then read: the first 1 MiB and the last 64 KiB of
//! the virtual disk. The disk's length is what `Info` says and its
//! extents tile it.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::container::vmdk::Vmdk;
use vaultfs_formats::container::{Container, Context, MemSiblings};
use vaultfs_formats::io::{MemSource, Source};

fn siblings() -> &'static MemSiblings {
    static S: OnceLock<MemSiblings> = OnceLock::new();
    S.get_or_init(|| {
        let mut s = MemSiblings::default();
        let flat: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 512) as u8).collect();
        let plain: &[u8] = include_bytes!("../seeds/vmdk_sparse/plain.vmdk");
        let stream: &[u8] = include_bytes!("../seeds/vmdk_sparse/stream.vmdk");
        s.0.insert("flat.bin".into(), Arc::new(MemSource::new(flat)));
        for name in ["sparse.vmdk", "parent.vmdk"] {
            s.0.insert(name.into(), Arc::new(MemSource::new(plain.to_vec())));
        }
        s.0.insert(
            "stream.vmdk".into(),
            Arc::new(MemSource::new(stream.to_vec())),
        );
        s
    })
}

fuzz_target!(|data: &[u8]| {
    let src: Source = Arc::new(MemSource::new(data.to_vec()));
    let Ok(disk) = Vmdk.open(src, "fuzz.vmdk", &Context::new(siblings())) else {
        return;
    };
    let len = disk.data.len();
    assert_eq!(len, disk.info.virtual_size);
    let mut end = 0;
    for e in &disk.info.extents {
        assert_eq!(e.start, end, "extents do not tile the disk");
        end = e.start + e.len;
    }
    if disk.info.extents.len() > 1 {
        assert_eq!(end, len);
    }
    let mut buf = vec![0u8; 1 << 20];
    if let Ok(n) = disk.data.read_at(0, &mut buf) {
        assert_eq!(n as u64, len.min(1 << 20));
    }
    let mut tail = vec![0u8; 65536];
    let _ = disk.data.read_at(len.saturating_sub(65536), &mut tail);
});
