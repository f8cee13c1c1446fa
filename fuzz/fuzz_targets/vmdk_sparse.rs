//! A hosted sparse or streamOptimized VMDK file (`KDMV`), or anything the
//! VMDK container accepts, opened and read: the virtual disk's first
//! 8 MiB and its last 64 KiB, in reads that cross grain boundaries. Its
//! siblings hold `plain.vmdk` (a seed) so delta disks find their parent.
//! Every read either fills the buffer or fails; the disk's length is
//! what `Info` says.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::container::vmdk::Vmdk;
use vaultfs_formats::container::{Container, Context, MemSiblings};
use vaultfs_formats::io::{MemSource, Source};

/// The most bytes of the virtual disk read per input.
const READ_CAP: u64 = 8 << 20;

fn siblings() -> &'static MemSiblings {
    static S: OnceLock<MemSiblings> = OnceLock::new();
    S.get_or_init(|| {
        let mut s = MemSiblings::default();
        let plain: &[u8] = include_bytes!("../seeds/vmdk_sparse/plain.vmdk");
        s.0.insert(
            "plain.vmdk".into(),
            Arc::new(MemSource::new(plain.to_vec())),
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
    let mut buf = vec![0u8; 100_000];
    let mut at = 0;
    while at < len.min(READ_CAP) {
        match disk.data.read_at(at, &mut buf) {
            Ok(n) => assert!(n == buf.len() || at + n as u64 == len, "short read"),
            Err(_) => {}
        }
        at += buf.len() as u64;
    }
    let mut tail = vec![0u8; 65536];
    let _ = disk.data.read_at(len.saturating_sub(65536), &mut tail);
});
