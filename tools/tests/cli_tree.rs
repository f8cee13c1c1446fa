//! `ls`, `cat`, `find` and `restore` on paths that go into a disk image's
//! `.contents/` directory in a snapshot (the virtual tree without FUSE).

mod common;

use std::path::Path;

use common::Env;
use sha2::{Digest, Sha256};

fn image(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../images")
        .join(name);
    zstd::decode_all(std::fs::read(p).expect("image").as_slice()).expect("zstd")
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A repository with one snapshot of `src/` holding `disk.img` (the
/// stamped GPT disk) and `note.txt`.
fn setup() -> (Env, Vec<u8>, String) {
    let env = Env::init();
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(src.join("vm")).expect("mkdir");
    let disk = image("containers/stamped-gpt.raw.zst");
    std::fs::write(src.join("vm/disk.img"), &disk).expect("write");
    std::fs::write(src.join("note.txt"), b"hello").expect("write");
    let src_s = src.to_str().expect("utf-8").to_string();
    env.run(&["backup", "-q", &src_s]).ok();
    (env, disk, src_s)
}

#[test]
fn cat_ls_find_and_restore_go_into_disk_images() {
    let (env, disk, src) = setup();
    let c = format!("latest:{src}/vm/disk.img.contents");

    let out = env
        .cmd(&["cat", &format!("{c}/disk.raw")])
        .output()
        .expect("cat");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha(&out.stdout), sha(&disk));
    let out = env
        .cmd(&["cat", &format!("{c}/p3.raw")])
        .output()
        .expect("cat");
    assert_eq!(out.stdout, &disk[10240 * 512..14336 * 512]);

    let ls = env.run(&["ls", &c]).ok().stdout;
    let want = [
        "",
        "/disk.raw",
        "/p1.raw",
        "/p2.raw",
        "/p3.raw",
        "/partitions.txt",
    ]
    .map(|s| format!("{src}/vm/disk.img.contents{s}"));
    let got: Vec<&str> = ls.lines().skip(1).collect();
    assert_eq!(got, want, "{ls}");
    let long = env.run(&["ls", "-l", &c]).ok().stdout;
    assert!(
        long.contains(&format!("-r--r--r--     0     0 {} ", disk.len())),
        "{long}"
    );

    // find sees image contents only when asked to.
    let plain = env.run(&["find", "p2.raw"]).ok().stdout;
    assert!(!plain.contains("p2.raw"), "{plain}");
    let found = env.run(&["find", "--images", "p?.raw"]).ok().stdout;
    assert_eq!(
        found.lines().filter(|l| l.ends_with(".raw")).count(),
        3,
        "{found}"
    );
    assert!(
        found.contains(&format!("{src}/vm/disk.img.contents/p2.raw")),
        "{found}"
    );
    let j = env.run(&["--json", "find", "-i", "NOTE.TXT"]).ok().json();
    assert_eq!(j[0]["hits"], 1);
    assert_eq!(j[0]["matches"][0]["path"], format!("{src}/note.txt"));

    let target = env.dir.path().join("out");
    let t = target.to_str().expect("utf-8");
    env.run(&["restore", "-q", &format!("{c}/p2.raw"), "--target", t])
        .ok();
    let p2 = std::fs::read(target.join("p2.raw")).expect("restored p2");
    assert_eq!(p2, &disk[6144 * 512..10240 * 512]);
    // The zero half of the partition was left as a hole.
    let blocks = std::os::unix::fs::MetadataExt::blocks(
        &std::fs::metadata(target.join("p2.raw")).expect("meta"),
    );
    assert!(blocks * 512 < p2.len() as u64, "{blocks} blocks");

    let all = env.dir.path().join("all");
    let a = all.to_str().expect("utf-8");
    env.run(&["restore", "-q", &c, "--target", a]).ok();
    let names: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&all)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names,
        ["disk.raw", "p1.raw", "p2.raw", "p3.raw", "partitions.txt"]
    );
    assert_eq!(
        sha(&std::fs::read(all.join("disk.raw")).expect("disk")),
        sha(&disk)
    );
}

#[test]
fn a_path_that_is_not_in_the_image_is_not_found() {
    let (env, _, src) = setup();
    let r = env.run(&["cat", &format!("latest:{src}/vm/disk.img.contents/p9.raw")]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("p9.raw"), "{}", r.stderr);
    let r = env.run(&["cat", &format!("latest:{src}/note.txt.contents/disk.raw")]);
    assert_eq!(r.code, 1);
}

/// The content `images/fsdisk-tree.py` writes for `path`.
fn fsdisk_content(path: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut n = 0;
    while out.len() < size {
        out.extend_from_slice(format!("{path} #{n}\n").as_bytes());
        n += 1;
    }
    out.truncate(size);
    out
}

#[test]
fn cat_ls_find_and_restore_reach_files_inside_ntfs_and_fat_partitions() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("fsdisk.vmdk"), image("fs/fsdisk.vmdk.zst")).expect("write");
    let src = src.to_str().expect("utf-8").to_string();
    env.run(&["backup", "-q", &src]).ok();
    let c = format!("latest:{src}/fsdisk.vmdk.contents");

    let greek = "docs/Ελληνικά.txt";
    for p in ["p1", "p2"] {
        let out = env
            .cmd(&["cat", &format!("{c}/{p}/{greek}")])
            .output()
            .expect("cat");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, fsdisk_content(greek, 1500), "{p}");
    }

    let ls = env
        .run(&["ls", "-l", &format!("{c}/p1/deep/a/b/c/d/e")])
        .ok()
        .stdout;
    assert!(
        ls.lines()
            .any(|l| l.ends_with("/p1/deep/a/b/c/d/e/leaf.txt")),
        "{ls}"
    );

    let found = env.run(&["find", "--images", "leaf.txt"]).ok().stdout;
    for p in ["p1", "p2"] {
        assert!(
            found.contains(&format!("fsdisk.vmdk.contents/{p}/deep/a/b/c/d/e/leaf.txt")),
            "{found}"
        );
    }

    let target = env.dir.path().join("out");
    let t = target.to_str().expect("utf-8");
    env.run(&["restore", "-q", &format!("{c}/p2/docs"), "--target", t])
        .ok();
    let manifest: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/fsdisk.manifest.json"),
        )
        .expect("manifest"),
    )
    .expect("json");
    let docs: Vec<&serde_json::Value> = manifest
        .iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with("docs/")))
        .collect();
    assert_eq!(docs.len(), 5);
    for e in docs {
        let rel = e["path"].as_str().expect("path");
        // As with restic, `snapshot:dir` restores what is inside dir.
        let got = target.join(rel.strip_prefix("docs/").expect("docs/"));
        let data = std::fs::read(&got).unwrap_or_else(|err| panic!("{}: {err}", got.display()));
        assert_eq!(sha(&data), e["sha256"].as_str().expect("sha"), "{rel}");
        let mtime = std::os::unix::fs::MetadataExt::mtime(&std::fs::metadata(&got).expect("stat"));
        assert_eq!(mtime, e["mtime"].as_i64().expect("mtime"), "{rel}");
    }
}

#[test]
fn cat_ls_find_and_restore_reach_files_inside_ext4_xfs_and_ext2_partitions() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("linuxdisk.vmdk"), image("fs/linuxdisk.vmdk.zst")).expect("write");
    let src = src.to_str().expect("utf-8").to_string();
    env.run(&["backup", "-q", &src]).ok();
    let c = format!("latest:{src}/linuxdisk.vmdk.contents");
    let manifest = common::linuxdisk_manifest();
    let entry = |p: &str| {
        manifest
            .iter()
            .find(|e| e["path"] == p)
            .unwrap_or_else(|| panic!("{p} not in the manifest"))
    };

    for p in ["p1", "p2", "p3"] {
        for f in [
            "data/big.bin",
            "sparse/holes",
            "links/hard",
            "unicode/日本語のファイル",
        ] {
            let out = env
                .cmd(&["cat", &format!("{c}/{p}/{f}")])
                .output()
                .expect("cat");
            assert!(
                out.status.success(),
                "{p}/{f}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                sha(&out.stdout),
                entry(f)["sha256"].as_str().expect("sha"),
                "{p}/{f}"
            );
        }
    }

    let ls = env.run(&["ls", "-l", &format!("{c}/p2/links")]).ok().stdout;
    for name in ["hard", "long", "short"] {
        assert!(
            ls.lines().any(|l| l.contains(&format!("/p2/links/{name}"))),
            "{ls}"
        );
    }
    let ls = env.run(&["ls", &format!("{c}/p1/many")]).ok().stdout;
    assert_eq!(
        ls.lines().filter(|l| l.contains("/many/entry-")).count(),
        1200,
        "{ls}"
    );

    let found = env.run(&["find", "--images", "entry-01199"]).ok().stdout;
    for p in ["p1", "p2", "p3"] {
        assert!(
            found.contains(&format!("linuxdisk.vmdk.contents/{p}/many/entry-01199")),
            "{found}"
        );
    }

    // Restoring a whole partition gives back the tree: contents, mtimes,
    // symlink targets, the sparse file's zeros.
    for p in ["p1", "p2"] {
        let target = env.dir.path().join(format!("out-{p}"));
        let t = target.to_str().expect("utf-8");
        // Device nodes and fifos inside an image are not made (exit 3, a
        // warning naming each).
        let r = env.run(&["restore", "-q", &format!("{c}/{p}"), "--target", t]);
        assert_eq!(r.code, 3, "{p}: {}", r.stderr);
        for special in ["dev/fifo", "dev/loop0", "dev/null"] {
            assert!(
                r.stderr.contains(&format!("/{p}/{special}: not restored")),
                "{p}: {}",
                r.stderr
            );
        }
        let mut checked = 0;
        for e in &manifest {
            let rel = e["path"].as_str().expect("path");
            let got = target.join(rel);
            if matches!(e["type"].as_str(), Some("chardev" | "blockdev" | "fifo")) {
                assert!(std::fs::symlink_metadata(&got).is_err(), "{p}: {rel}");
                continue;
            }
            let meta = std::fs::symlink_metadata(&got)
                .unwrap_or_else(|err| panic!("{p}: {}: {err}", got.display()));
            let mtime = || {
                (
                    std::os::unix::fs::MetadataExt::mtime(&meta),
                    std::os::unix::fs::MetadataExt::mtime_nsec(&meta),
                )
            };
            let want_mtime = || {
                let t = &e["mtime"];
                (t[0].as_i64().expect("secs"), t[1].as_i64().expect("nanos"))
            };
            match e["type"].as_str().expect("type") {
                "file" => {
                    let data = std::fs::read(&got).expect("read");
                    assert_eq!(sha(&data), e["sha256"].as_str().expect("sha"), "{p}: {rel}");
                    assert_eq!(mtime(), want_mtime(), "{p}: {rel}");
                    checked += 1;
                }
                "symlink" => {
                    let t = std::fs::read_link(&got).expect("readlink");
                    assert_eq!(t.to_str(), e["target"].as_str(), "{p}: {rel}");
                    checked += 1;
                }
                "dir" => assert!(meta.is_dir(), "{p}: {rel}"),
                other => panic!("{p}: {rel}: unexpected type {other}"),
            }
        }
        assert!(checked > 1200, "{p}: {checked}");
    }
}

#[test]
fn ls_details_prints_the_xattrs_a_backup_recorded() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let file = src.join("tagged.txt");
    std::fs::write(&file, b"x").expect("write");
    // Set through the kernel with setfattr (Debian package attr); a
    // filesystem without user xattrs leaves nothing to test.
    let set = std::process::Command::new("setfattr")
        .args(["-n", "user.note", "-v", "hello note"])
        .arg(&file)
        .status()
        .expect("setfattr (Debian package attr) must be installed");
    if !set.success() {
        eprintln!("this filesystem takes no user xattrs: nothing to test");
        return;
    }
    let got = std::process::Command::new("getfattr")
        .args(["--only-values", "-n", "user.note"])
        .arg(&file)
        .output()
        .expect("getfattr");
    let src_s = src.to_str().expect("utf-8").to_string();
    env.run(&["backup", "-q", &src_s]).ok();
    let text = env
        .run(&["ls", "--details", &format!("latest:{src_s}/tagged.txt")])
        .ok()
        .stdout;
    let want = format!(
        "    xattr.user.note={}",
        String::from_utf8(got.stdout).expect("utf-8")
    );
    assert!(text.lines().any(|l| l == want), "{text}");
}
