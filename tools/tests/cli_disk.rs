//! `backup --disk`: a raw disk (made by the `images/` scripts) stored as a
//! VMDK descriptor and extents, checked with qemu-img, the reference reader
//! of VMDK descriptors: the restored descriptor must be accepted by
//! `qemu-img info` and compare identical to the source with `qemu-img
//! compare`, and unselected partitions must read as zeros through qemu.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Env;
use sha2::{Digest, Sha256};

/// Decompresses `images/NAME` into `dir`, returning the path.
fn unpack(dir: &Path, name: &str, as_name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../images")
        .join(name);
    let packed = std::fs::read(&src).expect("test image");
    let out = dir.join(as_name);
    std::fs::write(&out, zstd::decode_all(packed.as_slice()).expect("zstd")).expect("write");
    out
}

/// Is qemu-img installed? CI installs it (qemu-utils); a local run without
/// it skips the qemu checks with a notice.
fn have_qemu() -> bool {
    let ok = Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "qemu-img is required in CI (Debian package qemu-utils)"
        );
        eprintln!("notice: qemu-img not found (Debian: qemu-utils); skipping this test");
    }
    ok
}

fn qemu_img(args: &[&str]) -> std::process::Output {
    Command::new("qemu-img")
        .args(args)
        .output()
        .expect("running qemu-img")
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The fsdisk image (GPT: NTFS p1, FAT32 p2) as a raw disk, converted from
/// its committed VMDK by qemu-img.
fn fsdisk_raw(dir: &Path) -> PathBuf {
    let vmdk = unpack(dir, "fs/fsdisk.vmdk.zst", "fsdisk.vmdk");
    let raw = dir.join("fsdisk.raw");
    let out = qemu_img(&[
        "convert",
        "-O",
        "raw",
        vmdk.to_str().expect("utf-8"),
        raw.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{out:?}");
    std::fs::remove_file(vmdk).expect("rm");
    raw
}

/// `qemu-img compare A B` says identical.
#[track_caller]
fn assert_identical(a: &Path, b: &Path) {
    let out = qemu_img(&[
        "compare",
        a.to_str().expect("utf-8"),
        b.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "qemu-img compare {} {}: {}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restores the latest snapshot into `dir/name` and returns that path.
fn restore_all(env: &Env, name: &str) -> PathBuf {
    let target = env.dir.path().join(name);
    env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().expect("utf-8"),
    ])
    .ok();
    target
}

/// The manifest's files (path, sha256) of the fsdisk tree.
fn manifest() -> Vec<(String, String)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/fsdisk.manifest.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).expect("manifest")).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .filter(|e| e["type"] == "file")
        .map(|e| {
            (
                e["path"].as_str().expect("path").to_string(),
                e["sha256"].as_str().expect("sha").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_gpt_disk_restores_identical_through_qemu() {
    if !have_qemu() {
        return;
    }
    let env = Env::init();
    let raw = fsdisk_raw(env.dir.path());
    let run = env
        .run(&[
            "backup",
            "--disk",
            raw.to_str().expect("utf-8"),
            "--include-unused",
        ])
        .ok();
    assert!(
        run.stdout.contains("partition 1 \"ntfs data\""),
        "{}",
        run.stdout
    );
    let out = restore_all(&env, "out");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "disk-gap1.raw",
            "disk-gpt-backup.raw",
            "disk-p1.raw",
            "disk-p2.raw",
            "disk-table.raw",
            "disk.vmdk"
        ]
    );
    let desc = out.join("disk.vmdk");
    let info = qemu_img(&["info", "--output=json", desc.to_str().expect("utf-8")]);
    assert!(info.status.success(), "{info:?}");
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
    assert_eq!(
        info["virtual-size"].as_u64(),
        Some(std::fs::metadata(&raw).expect("stat").len())
    );
    assert_identical(&desc, &raw);
    let text = std::fs::read_to_string(&desc).expect("descriptor");
    assert!(text.starts_with("# Disk DescriptorFile\n"), "{text}");
    assert!(text.contains("# partition 2 \"fat32 data\""), "{text}");

    // The snapshot's own view: the whole disk and a file of each partition.
    let disk = {
        let o = env
            .cmd(&["cat", "latest:/disk.vmdk.contents/disk.raw"])
            .output()
            .expect("cat");
        assert!(o.status.success(), "{o:?}");
        o.stdout
    };
    assert_eq!(sha(&disk), sha(&std::fs::read(&raw).expect("raw")));
    for (path, want) in manifest().iter().filter(|(p, _)| p == "data/big.bin") {
        for part in ["p1", "p2"] {
            let o = env
                .cmd(&["cat", &format!("latest:/disk.vmdk.contents/{part}/{path}")])
                .output()
                .expect("cat");
            assert!(o.status.success(), "{part}/{path}: {o:?}");
            assert_eq!(&sha(&o.stdout), want, "{part}/{path}");
        }
    }

    // A second backup of the unchanged disk adds no data.
    let again = env
        .run(&[
            "--json",
            "backup",
            "--disk",
            raw.to_str().expect("utf-8"),
            "--include-unused",
        ])
        .ok();
    let j = again.json();
    // Only the new root tree (its files' times differ) is added.
    assert_eq!(j["data_blobs"].as_u64(), Some(0), "{j}");
    assert!(j["data_added"].as_u64().is_some_and(|n| n < 8192), "{j}");
    assert_eq!(j["files_unmodified"].as_u64(), Some(6), "{j}");
}

#[test]
fn an_unselected_partition_reads_as_zeros() {
    if !have_qemu() {
        return;
    }
    let env = Env::init();
    let raw = fsdisk_raw(env.dir.path());
    env.run(&[
        "backup",
        "--disk",
        raw.to_str().expect("utf-8"),
        "--partitions",
        "2",
        "--include-unused",
        "--name",
        "fsdisk",
    ])
    .ok();
    let out = restore_all(&env, "out");
    assert!(out.join("fsdisk-p1-zero.vmdk").is_file());
    assert!(!out.join("fsdisk-p1.raw").exists());
    let desc = out.join("fsdisk.vmdk");
    // The expected disk: the source with partition 1 (sectors 2048..51200,
    // from images/fsdisk.sh) zeroed.
    let mut want = std::fs::read(&raw).expect("raw");
    want[2048 * 512..51200 * 512].fill(0);
    let want_path = env.dir.path().join("want.raw");
    std::fs::write(&want_path, &want).expect("write");
    assert_identical(&desc, &want_path);
    let converted = env.dir.path().join("converted.raw");
    let o = qemu_img(&[
        "convert",
        "-O",
        "raw",
        desc.to_str().expect("utf-8"),
        converted.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        sha(&std::fs::read(&converted).expect("converted")),
        sha(&want)
    );
}

#[test]
fn an_mbr_disk_with_logical_partitions_and_an_odd_sized_unselected_one() {
    if !have_qemu() {
        return;
    }
    let env = Env::init();
    let raw = unpack(env.dir.path(), "mbr.img.zst", "mbr.img");
    // Partition 1 one sector shorter (2047 sectors, from images/
    // mbr.sfdisk.json's 2048): not a whole number of 64 KiB grains.
    let mut bytes = std::fs::read(&raw).expect("raw");
    let size_at = 446 + 12;
    assert_eq!(&bytes[size_at..size_at + 4], &2048u32.to_le_bytes());
    bytes[size_at..size_at + 4].copy_from_slice(&2047u32.to_le_bytes());
    std::fs::write(&raw, &bytes).expect("write");

    env.run(&["backup", "--disk", raw.to_str().expect("utf-8")])
        .ok();
    let out = restore_all(&env, "all");
    assert_identical(&out.join("disk.vmdk"), &raw);
    let text = std::fs::read_to_string(out.join("disk.vmdk")).expect("descriptor");
    for p in [1, 2, 5, 6] {
        assert!(
            text.contains(&format!("FLAT \"disk-p{p}.raw\" 0")),
            "{text}"
        );
    }
    assert!(
        !text.contains("disk-p3"),
        "the extended container is not an extent"
    );

    env.run(&[
        "backup",
        "--disk",
        raw.to_str().expect("utf-8"),
        "--partitions",
        "2,5,6",
    ])
    .ok();
    let out = restore_all(&env, "some");
    let text = std::fs::read_to_string(out.join("disk.vmdk")).expect("descriptor");
    assert!(
        text.contains("RW 1920 SPARSE \"disk-p1-zero.vmdk\""),
        "{text}"
    );
    assert!(
        text.contains("RW 127 FLAT \"disk-p1-tail.raw\" 0"),
        "{text}"
    );
    let mut want = bytes.clone();
    want[2048 * 512..(2048 + 2047) * 512].fill(0);
    let want_path = env.dir.path().join("want.raw");
    std::fs::write(&want_path, &want).expect("write");
    assert_identical(&out.join("disk.vmdk"), &want_path);
    // Our reader agrees with qemu.
    let o = env
        .cmd(&["cat", "latest:/disk.vmdk.contents/disk.raw"])
        .output()
        .expect("cat");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(sha(&o.stdout), sha(&want));
}

#[test]
fn bad_disk_arguments_are_clear_errors() {
    let env = Env::init();
    let raw = unpack(env.dir.path(), "mbr.img.zst", "mbr.img");
    let r = env.run(&[
        "backup",
        "--disk",
        raw.to_str().expect("utf-8"),
        "--partitions",
        "4",
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("no partition 4 on this disk (it has: 1, 2, 5, 6)"),
        "{}",
        r.stderr
    );
    let r = env.run(&["backup", "--disk", "/nonexistent/disk.img"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("/nonexistent/disk.img"), "{}", r.stderr);
    let dir = env.dir.path().join("empty");
    std::fs::create_dir(&dir).expect("mkdir");
    let r = env.run(&["backup", "--partitions", "1", dir.to_str().expect("utf-8")]);
    assert_ne!(r.code, 0, "--partitions needs --disk");
    assert!(r.stderr.contains("go with --disk"), "{}", r.stderr);
}

#[test]
fn restore_of_the_descriptor_brings_its_extents_and_raw_gives_a_flat_image() {
    if !have_qemu() {
        return;
    }
    let env = Env::init();
    let raw = unpack(env.dir.path(), "mbr.img.zst", "mbr.img");
    let source = std::fs::read(&raw).expect("raw");
    env.run(&["backup", "--disk", raw.to_str().expect("utf-8")])
        .ok();

    // The descriptor alone brings the files it names.
    let out = env.dir.path().join("one");
    env.run(&[
        "restore",
        "latest:/disk.vmdk",
        "--target",
        out.to_str().expect("utf-8"),
    ])
    .ok();
    assert_identical(&out.join("disk.vmdk"), &raw);

    // --raw into a directory, into a file, and one partition.
    let dir = env.dir.path().join("rawdir");
    std::fs::create_dir(&dir).expect("mkdir");
    env.run(&[
        "restore",
        "latest:/disk.vmdk",
        "--raw",
        "--target",
        dir.to_str().expect("utf-8"),
    ])
    .ok();
    assert_eq!(
        sha(&std::fs::read(dir.join("disk.raw")).expect("raw")),
        sha(&source)
    );
    let file = env.dir.path().join("flat.img");
    env.run(&[
        "restore",
        "latest:/disk.vmdk",
        "--raw",
        "--target",
        file.to_str().expect("utf-8"),
    ])
    .ok();
    assert_eq!(sha(&std::fs::read(&file).expect("flat")), sha(&source));
    let part = env.dir.path().join("p5.img");
    env.run(&[
        "restore",
        "latest:/disk.vmdk.contents/p5.raw",
        "--raw",
        "--target",
        part.to_str().expect("utf-8"),
    ])
    .ok();
    // Partition 5 at sectors 8192..10240 (images/mbr.sfdisk.json).
    assert_eq!(
        sha(&std::fs::read(&part).expect("p5")),
        sha(&source[8192 * 512..10240 * 512])
    );

    // A block device smaller than the disk is refused (needs a loop
    // device: root).
    let small = env.dir.path().join("small.img");
    std::fs::write(&small, vec![0u8; 1 << 20]).expect("write");
    let lo = Command::new("losetup")
        .args(["--find", "--show", small.to_str().expect("utf-8")])
        .output();
    match lo {
        Ok(o) if o.status.success() => {
            let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let r = env.run(&["restore", "latest:/disk.vmdk", "--raw", "--target", &dev]);
            let _ = Command::new("losetup").args(["-d", &dev]).status();
            assert_ne!(r.code, 0);
            assert!(
                r.stderr.contains(&format!(
                    "{dev} holds 1048576 bytes, less than the image's {} bytes",
                    source.len()
                )),
                "{}",
                r.stderr
            );
            assert!(
                std::fs::read(&small)
                    .expect("small")
                    .iter()
                    .all(|&b| b == 0),
                "nothing was written"
            );
        }
        _ => eprintln!("notice: no loop device (needs root); skipping the device size check"),
    }
}

/// `len` bytes that do not compress or dedupe: a SHA-256 chain.
fn noise(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut h = Sha256::digest(b"noise").to_vec();
    while out.len() < len {
        h = Sha256::digest(&h).to_vec();
        out.extend_from_slice(&h);
    }
    out.truncate(len);
    out
}

fn mtools(tool: &str, args: &[&str]) {
    let o = Command::new(tool)
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(args)
        .output()
        .expect("mtools (Debian: mtools)");
    assert!(o.status.success(), "{tool} {args:?}: {o:?}");
}

#[test]
fn unused_space_is_stored_as_zeros_and_every_file_survives() {
    if !have_qemu() {
        return;
    }
    let env = Env::init();
    let raw = fsdisk_raw(env.dir.path());
    // Fill 16 MiB of the FAT32 partition's free clusters with noise: copy a
    // file there with mtools, then delete it. Partition 2 starts at sector
    // 51200 (images/fsdisk.sh).
    let junk = env.dir.path().join("junk.bin");
    let noise = noise(16 << 20);
    std::fs::write(&junk, &noise).expect("write");
    let vol = format!("{}@@{}", raw.display(), 51200 * 512);
    mtools(
        "mcopy",
        &["-i", &vol, junk.to_str().expect("utf-8"), "::/junk.bin"],
    );
    mtools("mdel", &["-i", &vol, "::/junk.bin"]);

    let before = dir_size(&env.repo);
    let run = env
        .run(&["--json", "backup", "--disk", raw.to_str().expect("utf-8")])
        .ok();
    let added = dir_size(&env.repo) - before;
    let disk_len = std::fs::metadata(&raw).expect("stat").len();
    // The disk is 72 MiB; its files take about 4 MiB per partition (the
    // same tree in both), the deleted noise 16 MiB.
    assert!(
        added < 12 << 20,
        "the vault grew by {added} bytes for a {disk_len}-byte disk: {}",
        run.stdout
    );
    let p2 = env
        .cmd(&["cat", "latest:/disk.vmdk.contents/p2.raw"])
        .output()
        .expect("cat");
    assert!(p2.status.success());
    assert!(
        !p2.stdout.windows(64).any(|w| w == &noise[..64]),
        "the deleted file's clusters were stored"
    );
    for (path, want) in manifest() {
        for part in ["p1", "p2"] {
            let o = env
                .cmd(&["cat", &format!("latest:/disk.vmdk.contents/{part}/{path}")])
                .output()
                .expect("cat");
            assert!(o.status.success(), "{part}/{path}: {o:?}");
            assert_eq!(sha(&o.stdout), want, "{part}/{path}");
        }
    }

    // --include-unused stores the noise too: the same disk costs 16 MiB more.
    let before = dir_size(&env.repo);
    env.run(&[
        "backup",
        "--disk",
        raw.to_str().expect("utf-8"),
        "--include-unused",
    ])
    .ok();
    let added = dir_size(&env.repo) - before;
    assert!(
        added > 16 << 20,
        "--include-unused added only {added} bytes"
    );
    let out = restore_all(&env, "forensic");
    assert_identical(&out.join("disk.vmdk"), &raw);
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let md = e.metadata().expect("stat");
        total += if md.is_dir() {
            dir_size(&e.path())
        } else {
            md.len()
        };
    }
    total
}

#[test]
fn a_second_backup_with_a_few_changed_blocks_adds_only_their_chunks() {
    if !have_qemu() {
        return;
    }
    let env = Env::init();
    let raw = fsdisk_raw(env.dir.path());
    // 30 MiB of noise in partition 2's free clusters makes many distinct
    // chunks (the disk is otherwise mostly zeros and a few files).
    let junk = env.dir.path().join("junk.bin");
    std::fs::write(&junk, noise(30 << 20)).expect("write");
    let vol = format!("{}@@{}", raw.display(), 51200 * 512);
    mtools(
        "mcopy",
        &["-i", &vol, junk.to_str().expect("utf-8"), "::/junk.bin"],
    );
    mtools("mdel", &["-i", &vol, "::/junk.bin"]);
    let args = [
        "--json",
        "backup",
        "--disk",
        raw.to_str().expect("utf-8"),
        "--include-unused",
    ];
    let first = env.run(&args).ok().json();
    let first_added = first["data_added_packed"].as_u64().expect("packed");
    // Three 4 KiB blocks change: in partition 1, partition 2 and the gap.
    let mut bytes = std::fs::read(&raw).expect("raw");
    for at in [5 << 20, 40 << 20, 66 << 20] {
        for (i, b) in bytes[at..at + 4096].iter_mut().enumerate() {
            *b ^= (i % 251) as u8 | 1;
        }
    }
    std::fs::write(&raw, &bytes).expect("write");
    let second = env.run(&args).ok().json();
    // Only the chunks around the changed blocks are new: one per change
    // (two when it moves a cut point), of the many the first backup stored.
    let added = second["data_added_packed"].as_u64().expect("packed");
    let blobs = second["data_blobs"].as_u64().expect("data_blobs");
    let first_blobs = first["data_blobs"].as_u64().expect("data_blobs");
    assert!((3..=6).contains(&blobs), "{second}");
    assert!(first_blobs > 5 * blobs, "first {first}");
    assert!(
        added * 4 < first_added,
        "first {first_added}, second {added}: {second}"
    );
    assert_eq!(
        second["files_changed"].as_u64(),
        Some(3),
        "the 3 extents changed, not the descriptor: {second}"
    );
    let out = restore_all(&env, "out");
    assert_identical(&out.join("disk.vmdk"), &raw);
}

/// The disk of images/fsdisk4.sh: the committed FAT32, NTFS, ext4 and XFS
/// images in the partitions its `sfdisk --json` dump lists, between the
/// committed table areas.
fn fsdisk4(dir: &Path) -> PathBuf {
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
    let table: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(images.join("fsdisk4.sfdisk.json")).expect("layout"),
    )
    .expect("json");
    let t = &table["partitiontable"];
    let last = t["lastlba"].as_u64().expect("lastlba");
    let len = (last + 34) * 512; // the backup entries and header follow
    let head = zstd::decode_all(
        std::fs::read(images.join("fs/fsdisk4-head.bin.zst"))
            .expect("head")
            .as_slice(),
    )
    .expect("zstd");
    let tail = zstd::decode_all(
        std::fs::read(images.join("fs/fsdisk4-tail.bin.zst"))
            .expect("tail")
            .as_slice(),
    )
    .expect("zstd");
    let path = dir.join("fsdisk4.img");
    let f = std::fs::File::create(&path).expect("create");
    let len = len.max(tail.len() as u64);
    f.set_len(len).expect("size");
    use std::os::unix::fs::FileExt;
    f.write_all_at(&head, 0).expect("head");
    f.write_all_at(&tail, len - tail.len() as u64)
        .expect("tail");
    let names = ["fat32", "ntfs", "ext4", "xfs-v5"];
    for (p, name) in t["partitions"].as_array().expect("parts").iter().zip(names) {
        let img = zstd::decode_all(
            std::fs::read(images.join(format!("fs/{name}.img.zst")))
                .expect("fs image")
                .as_slice(),
        )
        .expect("zstd");
        assert_eq!(img.len() as u64, p["size"].as_u64().expect("size") * 512);
        f.write_all_at(&img, p["start"].as_u64().expect("start") * 512)
            .expect("write");
    }
    path
}

/// Every file below `a` equals the one at the same path below `b`.
fn same_tree(a: &Path, b: &Path) -> usize {
    let mut n = 0;
    let mut names_a: Vec<_> = std::fs::read_dir(a)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let mut names_b: Vec<_> = std::fs::read_dir(b)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b, "{}", a.display());
    for name in names_a {
        let (pa, pb) = (a.join(&name), b.join(&name));
        let md = std::fs::symlink_metadata(&pa).expect("stat");
        if md.is_dir() {
            n += same_tree(&pa, &pb);
        } else if md.is_file() {
            assert_eq!(
                sha(&std::fs::read(&pa).expect("read")),
                sha(&std::fs::read(&pb).expect("read")),
                "{}",
                pa.display()
            );
            n += 1;
        }
    }
    n
}

#[test]
fn four_filesystems_keep_every_file_with_unused_space_zeroed() {
    if !have_qemu() {
        return;
    }
    let env = Env::init();
    let raw = fsdisk4(env.dir.path());
    let raw_s = raw.to_str().expect("utf-8");
    let forensic = env
        .run(&["--json", "backup", "--disk", raw_s, "--include-unused"])
        .ok()
        .json();
    let out = restore_all(&env, "forensic");
    assert_identical(&out.join("disk.vmdk"), &raw);
    let zeroed = env.run(&["--json", "backup", "--disk", raw_s]).ok().json();
    let text =
        std::fs::read_to_string(restore_all(&env, "zeroed").join("disk.vmdk")).expect("descriptor");
    for kind in ["Fat32", "Ntfs", "Ext4", "Xfs"] {
        assert!(text.contains(&format!(", {kind}: ")), "{kind}: {text}");
    }
    let (f, z) = (
        forensic["snapshot_id"].as_str().expect("id"),
        zeroed["snapshot_id"].as_str().expect("id"),
    );
    for part in ["p1", "p2", "p3", "p4"] {
        let a = env.dir.path().join(format!("a-{part}"));
        let b = env.dir.path().join(format!("b-{part}"));
        for (snap, dir) in [(f, &a), (z, &b)] {
            let r = env.run(&[
                "restore",
                &format!("{snap}:/disk.vmdk.contents/{part}"),
                "--target",
                dir.to_str().expect("utf-8"),
            ]);
            // 3: the device nodes of the ext4 and XFS trees are not made.
            assert!(r.code == 0 || r.code == 3, "{part}: {}", r.stderr);
        }
        assert!(same_tree(&a, &b) > 5, "{part}: files compared");
    }
}

#[test]
fn a_descriptor_restores_the_extents_there_are_and_warns_of_the_others() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("a.raw"), [7u8; 512]).expect("write");
    std::fs::write(src.join("other.txt"), "not named").expect("write");
    std::fs::write(
        src.join("x.vmdk"),
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
         createType=\"monolithicFlat\"\n\n# Extent description\n# one\n\
         RW 1 FLAT \"a.raw\" 0\n# two\nRW 1 FLAT \"b.raw\" 0\n",
    )
    .expect("write");
    env.run(&["backup", src.to_str().expect("utf-8")]).ok();
    let out = env.dir.path().join("out");
    let r = env.run(&[
        "restore",
        &format!("latest:{}/x.vmdk", src.display()),
        "--target",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("b.raw: named by") && r.stderr.contains("not in the snapshot"),
        "{}",
        r.stderr
    );
    assert!(out.join("x.vmdk").is_file() && out.join("a.raw").is_file());
    assert!(!out.join("other.txt").exists());
}

#[test]
fn a_filesystem_without_a_partition_table_keeps_its_files_and_drops_its_free_space() {
    // A bare FAT32 volume (a partition device, or a filesystem image), its
    // free clusters full of a deleted file's noise.
    let env = Env::init();
    let img = unpack(env.dir.path(), "fs/fat32.img.zst", "vol.img");
    let junk = env.dir.path().join("junk.bin");
    let noise = noise(16 << 20);
    std::fs::write(&junk, &noise).expect("write");
    let vol = img.to_str().expect("utf-8");
    mtools(
        "mcopy",
        &["-i", vol, junk.to_str().expect("utf-8"), "::/junk.bin"],
    );
    mtools("mdel", &["-i", vol, "::/junk.bin"]);

    let before = dir_size(&env.repo);
    env.run(&["backup", "-q", "--disk", vol]).ok();
    let added = dir_size(&env.repo) - before;
    assert!(added < 4 << 20, "the vault grew by {added} bytes");
    let desc = env.run(&["cat", "latest:/disk.vmdk"]).ok().stdout;
    assert!(
        desc.contains("RW 81920 FLAT \"disk-whole.raw\" 0") && desc.contains("Fat32"),
        "{desc}"
    );
    // Every file reads as in the image (read through `--image`, whose
    // FAT reader the formats tests check against mtools).
    let listed = common::run_cmd(common::vaultfs().args(["ls", "--image", vol]))
        .ok()
        .stdout;
    // A sample of 60 entries spread over the volume (each read is a
    // process and a repository opened).
    let paths: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("/fs/"))
        .collect();
    let step = (paths.len() / 60).max(1);
    let mut files = 0;
    for path in paths.iter().step_by(step) {
        let want = common::vaultfs()
            .args(["cat", "--image", &format!("{vol}:fs/{path}")])
            .output()
            .expect("cat --image");
        if !want.status.success() {
            continue; // a directory
        }
        let got = env
            .cmd(&["cat", &format!("latest:/disk.vmdk.contents/fs/{path}")])
            .output()
            .expect("cat");
        assert!(got.status.success(), "{path}: {got:?}");
        assert!(got.stdout == want.stdout, "{path}");
        files += 1;
    }
    assert!(files > 10, "{files} of {} entries compared", paths.len());
    let whole = env
        .cmd(&["cat", "latest:/disk-whole.raw"])
        .output()
        .expect("cat");
    assert!(
        !whole.stdout.windows(64).any(|w| w == &noise[..64]),
        "the deleted file's clusters were stored"
    );
}
