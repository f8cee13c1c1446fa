//! Arbitrary bytes opened as an NTFS volume
//! (`vaultfs_formats::fs::ntfs::NtfsFs`), walked with a bound on entries,
//! every entry's metadata, details, lookup and symlink target asked for,
//! some bytes of every file and stream read, and the deleted records
//! listed.
//!
//! Nothing may panic, hang or allocate without bound; errors are fine. A
//! read that succeeds must return what it was asked for (the length of a
//! read inside the file, zero past it).
//!
//! An NTFS volume is mostly zeros, so an input that does not carry the
//! `NTFS    ` signature at byte 3 is a compact one the harness lays out on
//! a zeroed volume: `[u32 LE volume size in 512-byte sectors]` then runs of
//! `[u32 LE first sector][u16 LE sector count][count × 512 bytes]` (a
//! short last run is cut; `vaultfs_fuzz::ntfs_volume`). Volumes are capped
//! at 8 MiB. The seed
//! `seeds/ntfs/compact-volume` (made by `images/ntfs.sh seed`) is a 3 MiB
//! mkfs.ntfs volume with 1 KiB clusters holding a compressed file, a
//! sparse file, a 40-entry directory, an ADS, a hard link and an ntfs-3g
//! symlink, with $LogFile and $UpCase zeroed (the reader falls back to
//! its own upper-case table).

#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use vaultfs_formats::fs::ntfs::NtfsFs;
use vaultfs_formats::fs::{FileKind, Filesystem, FsError, FsOptions, Ino, walk};
use vaultfs_formats::io::ReadAt;

const MAX_ENTRIES: usize = 3000;

/// The volume in a buffer reused from run to run (fresh multi-MiB
/// allocations, each page faulted in, were most of a run's time).
struct Volume(Vec<u8>);

impl ReadAt for Volume {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = vaultfs_formats::io::clamp(offset, buf.len(), self.len());
        if n > 0 {
            buf[..n].copy_from_slice(&self.0[offset as usize..offset as usize + n]);
        }
        Ok(n)
    }
}

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn read_some(fs: &NtfsFs, ino: Ino) {
    let Ok(src) = fs.open(ino) else { return };
    let len = src.len();
    let reads = [
        (0, 70_000),
        (len / 2, 4096),
        (len.saturating_sub(100), 4096),
        (len, 16),
        (len.saturating_add(10), 16),
    ];
    for (at, size) in reads {
        let mut buf = vec![0xA5u8; size];
        if let Ok(n) = src.read_at(at, &mut buf) {
            let want = len.saturating_sub(at).min(buf.len() as u64) as usize;
            assert_eq!(n, want, "read at {at} of a {len}-byte file");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut buf = BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if vaultfs_fuzz::ntfs_volume_into(data, &mut buf) {
        let vol = Arc::new(Volume(buf));
        run(vol.clone());
        buf = Arc::try_unwrap(vol).map(|v| v.0).unwrap_or_default();
    }
    BUFFER.with(|b| *b.borrow_mut() = buf);
});

fn run(vol: Arc<Volume>) {
    let Ok(fs) = NtfsFs::open(
        vol,
        &FsOptions {
            streams: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    let _ = fs.info();
    let mut dirs: HashMap<String, Ino> = HashMap::new();
    let mut count = 0;
    let _ = walk(&fs, &mut |path, e| {
        count += 1;
        if count > MAX_ENTRIES {
            return Err(FsError::NoInode(e.ino));
        }
        let parent = path
            .rsplit_once('/')
            .and_then(|(d, _)| dirs.get(d).copied())
            .unwrap_or(fs.root());
        let _ = fs.lookup(parent, &e.name);
        let _ = fs.metadata(e.ino);
        let _ = fs.details(e.ino);
        match e.kind {
            FileKind::File => read_some(&fs, e.ino),
            FileKind::Symlink => {
                let _ = fs.read_link(e.ino);
            }
            FileKind::Dir => {
                dirs.insert(path.to_string(), e.ino);
            }
            _ => {}
        }
        Ok(())
    });
    if let Ok(deleted) = fs.deleted() {
        for d in deleted.iter().take(100) {
            read_some(&fs, d.ino);
        }
    }
}
