//! FAT12/16/32: an arbitrary volume opened as FAT, walked with a bound on
//! the entries, a few bytes read from each file, deleted entries listed and
//! opened.
//!
//! Whatever the volume says, nothing panics or hangs, and every file that
//! opens reads as exactly the size its metadata gives.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::fs::fat::FatFs;
use vaultfs_formats::fs::{FileKind, Filesystem, FsError, FsOptions, Ino, walk};
use vaultfs_formats::io::{MemSource, ReadAt};

const MAX_ENTRIES: usize = 2000;

fn poke(fs: &FatFs, ino: Ino) {
    let _ = fs.details(ino);
    let Ok(meta) = fs.metadata(ino) else {
        return;
    };
    if meta.kind != FileKind::File {
        return;
    }
    if let Ok(src) = fs.open(ino) {
        assert_eq!(src.len(), meta.size, "inode {ino}: opens to another size");
        let mut buf = [0u8; 600];
        let _ = src.read_at(0, &mut buf);
        let _ = src.read_at(meta.size.saturating_sub(300), &mut buf);
        let _ = src.read_at(meta.size / 2, &mut buf);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let opts = FsOptions {
        oem_codepage: Some(if flags & 1 != 0 { 437 } else { 850 }),
        ..Default::default()
    };
    let Ok(fs) = FatFs::open(Arc::new(MemSource::new(rest.to_vec())), &opts) else {
        return;
    };
    let _ = fs.info();
    poke(&fs, fs.root());
    let mut seen = 0;
    let _ = walk(&fs, &mut |_, e| {
        seen += 1;
        if seen > MAX_ENTRIES {
            return Err(FsError::NoInode(e.ino));
        }
        let _ = fs.lookup(fs.root(), &e.name);
        poke(&fs, e.ino);
        Ok(())
    });
    if let Ok(deleted) = fs.deleted() {
        for d in deleted.iter().take(MAX_ENTRIES) {
            poke(&fs, d.ino);
        }
    }
});
