//! What the tests of whole test disks share (`fsdisk.rs`, `linuxdisk.rs`):
//! opening a committed VMDK, one of its partitions' filesystems, and a
//! path inside it.

#![allow(dead_code)]

use std::sync::Arc;

use vaultfs_formats::container::NoSiblings;
use vaultfs_formats::fs::{self, Filesystem, FsKind, FsOptions, Ino};
use vaultfs_formats::image::Image;
use vaultfs_formats::io::{MemSource, Source};

/// The committed images.
pub fn images() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs")
}

/// `images/fs/NAME.zst` (a VMDK) decompressed and opened.
pub fn disk(name: &str) -> Image {
    let packed = std::fs::read(images().join(format!("{name}.zst"))).expect("disk image");
    let vmdk = zstd::decode_all(packed.as_slice()).expect("zstd");
    let src: Source = Arc::new(MemSource::new(vmdk));
    Image::open(src, name, &NoSiblings).expect("open the VMDK")
}

/// Partition `name`, whose detected kind must be `kind`, opened.
pub fn volume(image: &Image, name: &str, kind: FsKind) -> Arc<dyn Filesystem> {
    let v = image
        .volumes
        .iter()
        .find(|v| v.name == name)
        .expect("volume");
    assert_eq!(v.fs.as_ref().ok().copied().flatten(), Some(kind), "{name}");
    fs::open(kind, v.data.clone(), &FsOptions::default()).expect("open the filesystem")
}

/// The inode at `/`-separated `path` below the root.
pub fn resolve(fs: &dyn Filesystem, path: &str) -> Ino {
    let mut ino = fs.root();
    for part in path.split('/') {
        ino = fs
            .lookup(ino, part)
            .expect("lookup")
            .unwrap_or_else(|| panic!("{path}: {part} not found"))
            .ino;
    }
    ino
}
