//! One tree on the NTFS and the FAT32 partition of a GPT disk inside a
//! streamOptimized VMDK (`images/fsdisk.sh`): every file read through
//! container, partition table and filesystem must match the manifest
//! written from the source tree, and the floppy image stored inside each
//! filesystem must open in turn.

mod test_disk;

use test_disk::{disk, images, resolve, volume};

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use vaultfs_formats::container::NoSiblings;
use vaultfs_formats::fs::{self, FileKind, Filesystem, FsKind, FsOptions, check_invariants};
use vaultfs_formats::image::Image;
use vaultfs_formats::io::ReadAt;

fn manifest() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(images().join("fsdisk.manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("json")
}

/// The content `fsdisk-tree.py` writes for `path`.
fn content(path: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut n = 0;
    while out.len() < size {
        out.extend_from_slice(format!("{path} #{n}\n").as_bytes());
        n += 1;
    }
    out.truncate(size);
    out
}

fn read_all(src: &dyn ReadAt) -> Vec<u8> {
    let mut buf = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut buf).expect("read");
    buf
}

/// Every manifest entry with its kind, size, content and mtime; the walk
/// holds nothing else.
fn check_tree(fs: &dyn Filesystem, what: &str, dir_times: bool) {
    let want = manifest();
    for e in &want {
        let path = e["path"].as_str().expect("path");
        let m = fs.metadata(resolve(fs, path)).expect("metadata");
        let mtime = e["mtime"].as_i64().expect("mtime");
        if e["type"] == "dir" {
            assert_eq!(m.kind, FileKind::Dir, "{what} {path}");
            if dir_times {
                assert_eq!(m.mtime.secs, mtime, "{what} {path} mtime");
            }
            continue;
        }
        assert_eq!(m.kind, FileKind::File, "{what} {path}");
        assert_eq!(m.size, e["size"].as_u64().expect("size"), "{what} {path}");
        assert_eq!(m.mtime.secs, mtime, "{what} {path} mtime");
        let data = read_all(&*fs.open(m.ino).expect("open"));
        assert_eq!(
            hex(&Sha256::digest(&data)),
            e["sha256"].as_str().expect("sha256"),
            "{what} {path}"
        );
    }
    let mut seen = BTreeSet::new();
    fs::walk(fs, &mut |p, _| {
        seen.insert(p.to_string());
        Ok(())
    })
    .expect("walk");
    let listed: BTreeSet<String> = want
        .iter()
        .map(|e| e["path"].as_str().expect("path").to_string())
        .collect();
    assert_eq!(seen, listed, "{what}: the walk against the manifest");
    assert_eq!(check_invariants(fs), Ok(listed.len()), "{what}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Random reads of the 3 MiB file against its regenerated content.
fn random_reads(fs: &dyn Filesystem, what: &str) {
    let path = "data/big.bin";
    let src = fs.open(resolve(fs, path)).expect("open");
    let want = content(path, src.len() as usize);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = x % (want.len() as u64 + 100);
        let mut buf = vec![0u8; (x >> 40) as usize % 300_000];
        let n = src.read_at(off, &mut buf).expect("read_at");
        let start = (off as usize).min(want.len());
        let end = (start + buf.len()).min(want.len());
        assert_eq!(&buf[..n], &want[start..end], "{what} {path} at {off}");
    }
}

/// The FAT12 floppy stored in the filesystem opens as an image in turn.
fn floppy(fs: &dyn Filesystem, what: &str) {
    let src = fs.open(resolve(fs, "floppy.img")).expect("open floppy.img");
    let inner = Image::open(src, "floppy.img", &NoSiblings).expect("floppy as an image");
    let v = inner.volumes.first().expect("one volume");
    assert_eq!(v.name, "fs", "{what}");
    let fat = fs::open(FsKind::Fat12, v.data.clone(), &FsOptions::default()).expect("FAT12");
    let hello = fat
        .lookup(fat.root(), "HELLO.TXT")
        .expect("lookup")
        .expect("HELLO.TXT");
    let text = read_all(&*fat.open(hello.ino).expect("open"));
    assert_eq!(text, b"inside the floppy inside the disk\n", "{what}");
}

#[test]
fn ntfs_partition_of_a_vmdk_matches_the_source_tree() {
    let image = disk("fsdisk.vmdk");
    let ntfs = volume(&image, "p1", FsKind::Ntfs);
    check_tree(&*ntfs, "NTFS", true);
    random_reads(&*ntfs, "NTFS");
    floppy(&*ntfs, "NTFS");
    assert_eq!(ntfs.info().label.as_deref(), Some("vaultfs-ntfs"));
}

#[test]
fn fat32_partition_of_a_vmdk_matches_the_source_tree() {
    let image = disk("fsdisk.vmdk");
    let fat = volume(&image, "p2", FsKind::Fat32);
    check_tree(&*fat, "FAT32", false);
    random_reads(&*fat, "FAT32");
    floppy(&*fat, "FAT32");
    assert_eq!(fat.info().label.as_deref(), Some("VAULTFS"));
}
