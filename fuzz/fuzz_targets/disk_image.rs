//! Shared by the container targets (`vhd`, `vhdx`): opens arbitrary bytes
//! as a disk image and reads the virtual disk.

use std::io;
use std::sync::Arc;

use vaultfs_formats::container::{Siblings, open};
use vaultfs_formats::io::{MemSource, ReadAt, Source};

/// Disks up to this size are read whole; larger ones at a few places.
const READ_WHOLE: u64 = 64 << 20;

/// Every name opens as the same small raw disk: differencing children
/// open, and their reads reach the parent.
struct AnyParent;

impl Siblings for AnyParent {
    fn open(&self, _: &str) -> io::Result<Source> {
        let bytes: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
        Ok(Arc::new(MemSource::new(bytes)))
    }
}

/// Opens `data` as the file `name` and reads its disk; errors are fine.
pub fn read_disk(data: &[u8], name: &str) {
    let src: Source = Arc::new(MemSource::new(data.to_vec()));
    let Ok(disk) = open(src, name, &AnyParent) else {
        return;
    };
    let len = disk.data.len();
    assert_eq!(len, disk.info.virtual_size);
    let mut buf = vec![0u8; 1 << 20];
    let spots: Vec<u64> = if len <= READ_WHOLE {
        (0..len).step_by(buf.len()).collect()
    } else {
        vec![0, len / 2, len - 1]
    };
    for at in spots {
        if let Ok(n) = disk.data.read_at(at, &mut buf) {
            assert!(n <= buf.len() && (n as u64) <= len - at);
        }
    }
    // An unaligned read across blocks and past the end.
    let mut odd = vec![0u8; 3 * 1024 + 7];
    let _ = disk.data.read_at(len.saturating_sub(1000), &mut odd);
    let _ = disk.data.read_at(1021, &mut odd);
}
