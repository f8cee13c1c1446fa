//! One tree on the ext4, XFS and ext2 partitions of a GPT disk inside a
//! monolithicSparse VMDK (`images/linuxdisk.sh`): each filesystem, found by
//! detection and read through container and partition table, must match
//! the manifest written from the source tree, and reads at random offsets
//! must give the self-describing content.

mod linux_tree;

mod test_disk;

use test_disk::{disk, images, resolve, volume};

use linux_tree::expected;
use serde_json::Value;
use vaultfs_formats::fs::{Filesystem, FsKind, check_invariants};
use vaultfs_formats::io::ReadAt;

fn manifest() -> Value {
    let z = std::fs::read(images().join("linuxdisk.manifest.json.zst")).expect("manifest");
    serde_json::from_slice(&zstd::decode_all(&z[..]).expect("zstd")).expect("json")
}

/// Reads at random offsets and lengths (some past the end) of every
/// non-empty file against the content the tree script wrote.
fn random_reads(fs: &dyn Filesystem, what: &str, m: &Value) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for e in m["entries"].as_array().expect("entries") {
        let (Some(size), Some(path)) = (e["size"].as_u64(), e["path"].as_str()) else {
            continue;
        };
        if e["type"] != "file" || size == 0 {
            continue;
        }
        let src = fs.open(resolve(fs, path)).expect("open");
        let rounds = if size > 1 << 20 { 300 } else { 5 };
        for _ in 0..rounds {
            let off = next() % (size + 100);
            let len = (next() % 200_000) as usize;
            let mut buf = vec![0xA5u8; len];
            let n = src.read_at(off, &mut buf).expect("read_at");
            assert_eq!(
                n as u64,
                (len as u64).min(size.saturating_sub(off)),
                "{what} {path} at {off}"
            );
            assert_eq!(
                &buf[..n],
                &expected(e, off, n)[..],
                "{what} {path} at {off}"
            );
        }
    }
}

fn check(name: &str, kind: FsKind, label: &str, serial: &str) {
    let image = disk("linuxdisk.vmdk");
    let fs = volume(&image, name, kind);
    let m = manifest();
    let want = m["entries"].as_array().expect("entries").len();
    assert_eq!(check_invariants(&*fs), Ok(want), "{name}");
    assert_eq!(linux_tree::compare_with_manifest(&*fs, name, &m), want);
    random_reads(&*fs, name, &m);
    let info = fs.info();
    assert_eq!(info.kind, kind);
    assert_eq!(info.label.as_deref(), Some(label));
    assert_eq!(info.serial.as_deref(), Some(serial));
    assert!(info.warnings.is_empty(), "{name}: {:?}", info.warnings);
    assert_eq!(fs.read_dir(resolve(&*fs, "many")).expect("dir").len(), 1200);
}

#[test]
fn ext4_partition_of_a_vmdk_matches_the_source_tree() {
    check(
        "p1",
        FsKind::Ext4,
        "linuxdisk-p1",
        "5c0ffee5-0000-4000-8000-0000000000d1",
    );
}

#[test]
fn xfs_partition_of_a_vmdk_matches_the_source_tree() {
    check(
        "p2",
        FsKind::Xfs,
        "linuxdisk-p2",
        "5c0ffee5-0000-4000-8000-0000000000d2",
    );
}

#[test]
fn ext2_partition_of_a_vmdk_matches_the_source_tree() {
    check(
        "p3",
        FsKind::Ext2,
        "linuxdisk-p3",
        "5c0ffee5-0000-4000-8000-0000000000d3",
    );
}
