//! `inspect --image` and `cat --image` on disk images made by the real tools
//! (`images/`), with no repository.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, run_cmd, vaultfs};
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

fn run(args: &[&str]) -> Run {
    run_cmd(vaultfs().args(args))
}

fn stdout_bytes(args: &[&str]) -> Vec<u8> {
    let out = vaultfs().args(args).output().expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn oracle(name: &str) -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../images")
        .join(format!("{name}.sfdisk.json"));
    serde_json::from_str(&std::fs::read_to_string(p).expect("oracle")).expect("json")
}

#[test]
fn inspect_lists_partitions_like_sfdisk() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["gpt", "mbr", "gpt4k"] {
        let img = unpack(
            dir.path(),
            &format!("{name}.img.zst"),
            &format!("{name}.img"),
        );
        let img = img.to_str().expect("utf-8 path");
        let text = run(&["inspect", "--image", img]).ok().stdout;
        assert!(text.contains("container: raw"), "{text}");
        let j = run(&["--json", "inspect", "--image", img]).ok().json();
        let table = &j["partition_table"];
        let want = &oracle(name)["partitiontable"];
        assert_eq!(
            table["sector_size"],
            want["sectorsize"].as_u64().unwrap_or(512)
        );
        let got = table["partitions"].as_array().expect("partitions");
        let want = want["partitions"].as_array().expect("partitions");
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["start_sector"], w["start"], "{name}");
            assert_eq!(g["length_sectors"], w["size"], "{name}");
            assert_eq!(
                g["type"].as_str().map(str::to_lowercase),
                w["type"].as_str().map(str::to_lowercase),
                "{name}"
            );
            if let Some(n) = w["name"].as_str() {
                assert_eq!(g["name"], n);
            }
            assert!(
                text.contains(&format!("p{} ", g["index"])) || g["entry"].is_null(),
                "{text}"
            );
        }
    }
}

#[test]
fn cat_streams_the_disk_and_each_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = unpack(
        dir.path(),
        "containers/stamped-mbr.raw.zst",
        "disk:with:colons.img",
    );
    let raw = std::fs::read(&img).expect("read");
    let img = img.to_str().expect("utf-8 path");
    let disk = stdout_bytes(&["cat", "--image", &format!("{img}:disk.raw")]);
    assert_eq!(sha(&disk), sha(&raw));
    let p5 = stdout_bytes(&["cat", "--image", &format!("{img}:p5.raw")]);
    assert_eq!(p5, &raw[8192 * 512..10240 * 512]);
    let txt = stdout_bytes(&["cat", "--image", &format!("{img}:/partitions.txt")]);
    assert!(String::from_utf8_lossy(&txt).contains("DOS (MBR)"));
    let missing = run(&["cat", "--image", &format!("{img}:p3.raw")]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("p1.raw, p2.raw, p5.raw, p6.raw"),
        "{}",
        missing.stderr
    );
    let no_entry = run(&["cat", "--image", img]);
    assert_ne!(no_entry.code, 0);
}

#[test]
fn ls_lists_an_image_and_a_path_inside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = unpack(dir.path(), "containers/stamped-gpt.raw.zst", "gpt.img");
    let img = img.to_str().expect("utf-8 path");
    let all = String::from_utf8(stdout_bytes(&["ls", "--image", img])).expect("utf-8");
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.first(), Some(&"/disk.raw"), "{all}");
    assert!(lines.contains(&"/partitions.txt"), "{all}");
    assert!(lines.contains(&"/p1.raw"), "{all}");
    let one = String::from_utf8(stdout_bytes(&[
        "ls",
        "-l",
        "--image",
        &format!("{img}:p1.raw"),
    ]))
    .expect("utf-8");
    assert_eq!(one.lines().count(), 1, "{one}");
    assert!(
        one.starts_with("-r--r--r--") && one.trim_end().ends_with(" /p1.raw"),
        "{one}"
    );
    let missing = run(&["ls", "--image", &format!("{img}:p9")]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("/p9: no such file"),
        "{}",
        missing.stderr
    );
}

#[test]
fn ls_and_cat_show_streams_and_deleted_files_of_a_volume() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ntfs = unpack(dir.path(), "fs/ntfs.img.zst", "ntfs.img");
    let ntfs = ntfs.to_str().expect("utf-8 path");
    let plain = String::from_utf8(stdout_bytes(&[
        "ls",
        "--image",
        &format!("{ntfs}:fs/streams"),
    ]))
    .expect("utf-8");
    assert!(!plain.contains(':'), "streams only when asked: {plain}");
    let streams = String::from_utf8(stdout_bytes(&[
        "--streams",
        "ls",
        "--image",
        &format!("{ntfs}:fs/streams"),
    ]))
    .expect("utf-8");
    assert!(
        streams
            .lines()
            .any(|l| l == "/fs/streams/one.bin:streamname"),
        "{streams}"
    );
    let ads = stdout_bytes(&[
        "--streams",
        "cat",
        "--image",
        &format!("{ntfs}:fs/streams/one.bin:streamname"),
    ]);
    assert_eq!(ads, b"small ADS 17 byte");
    let deleted = String::from_utf8(stdout_bytes(&[
        "ls",
        "-l",
        "--deleted",
        "--image",
        &format!("{ntfs}:fs"),
    ]))
    .expect("utf-8");
    assert!(
        deleted.trim_end().ends_with(" /fs/deleted_me.txt"),
        "{deleted}"
    );

    let fat = unpack(dir.path(), "fs/fat16.img.zst", "fat16.img");
    let fat = fat.to_str().expect("utf-8 path");
    let gone = String::from_utf8(stdout_bytes(&[
        "ls",
        "--deleted",
        "--image",
        &format!("{fat}:fs"),
    ]))
    .expect("utf-8");
    assert!(gone.lines().any(|l| l == "/fs/_one.txt"), "{gone}");
    let wrong = run(&["ls", "--deleted", "--image", &format!("{fat}:fs.raw")]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong
            .stderr
            .contains("--deleted needs the directory of a volume"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn a_missing_image_is_a_clear_error() {
    let r = run(&["inspect", "--image", "/nonexistent/disk.vmdk"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("/nonexistent/disk.vmdk"), "{}", r.stderr);
}

#[test]
fn cat_into_a_file_leaves_holes_and_exact_bytes() {
    // The GPT disk ends in its backup header, the MBR disk in a hole (the
    // output's length then comes from a truncate).
    for name in ["gpt", "mbr"] {
        cat_into_file(name);
    }
}

fn cat_into_file(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = unpack(
        dir.path(),
        &format!("containers/stamped-{name}.raw.zst"),
        "disk.img",
    );
    let raw = std::fs::read(&img).expect("read");
    let out_path = dir.path().join("out.raw");
    let out = std::fs::File::create(&out_path).expect("create");
    let status = vaultfs()
        .arg("cat")
        .arg("--image")
        .arg(format!("{}:disk.raw", img.display()))
        .stdout(out)
        .status()
        .expect("run");
    assert!(status.success());
    let got = std::fs::read(&out_path).expect("read out");
    assert_eq!(sha(&got), sha(&raw));
    let blocks =
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&out_path).expect("meta"));
    assert!(
        blocks * 512 < raw.len() as u64 * 5 / 8, // half or more of each disk is zeros
        "{blocks} blocks: not sparse"
    );
    assert_eq!(got.len(), raw.len());
}

/// Unpacks every `.zst` file of `images/containers/<set>/` into `dir`.
fn unpack_set(dir: &Path, set: &str) -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../images/containers")
        .join(set);
    for e in std::fs::read_dir(&src).expect("image set") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if let Some(plain) = name.strip_suffix(".zst") {
            unpack(dir, &format!("containers/{set}/{name}"), plain);
        }
    }
    let sums = std::fs::read_to_string(src.join("SHA256SUMS")).expect("SHA256SUMS");
    sums.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(h, n)| (h.to_string(), n.to_string()))
        .collect()
}

/// Every VMDK form qemu-img makes (and the delta and multi-extent ones)
/// reads back through `cat --image` with the SHA-256 of its disk, and
/// `inspect` names the format and its extents.
#[test]
fn every_vmdk_form_reads_back_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sums = unpack_set(dir.path(), "vmdk");
    // The delta disk's parent is the MBR monolithicSparse file (stored once).
    std::fs::copy(
        dir.path().join("mbr-monolithicSparse.vmdk"),
        dir.path().join("delta-base.vmdk"),
    )
    .expect("parent");
    let mut checked = 0;
    for (hash, name) in &sums {
        let img = dir.path().join(name);
        let img = img.to_str().expect("utf-8");
        let disk = stdout_bytes(&["cat", "--image", &format!("{img}:disk.raw")]);
        assert_eq!(&sha(&disk), hash, "{name}");
        let j = run(&["--json", "inspect", "--image", img]).ok().json();
        assert_eq!(j["container"]["format"], "VMDK", "{name}");
        assert!(
            !j["container"]["extents"]
                .as_array()
                .expect("extents")
                .is_empty()
        );
        if name == "delta-child.vmdk" {
            assert_eq!(j["container"]["parent"]["format"], "VMDK");
        }
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} images");
}

/// Every VHD and VHDX form (fixed, dynamic, differencing, a VHDX with a log
/// to replay) reads back through `cat --image` with the SHA-256 of its
/// disk; `inspect` names the format, the parent and the replay.
#[test]
fn every_vhd_and_vhdx_form_reads_back_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sums = unpack_set(dir.path(), "vhd");
    // The differencing children name their parents base.vhd / base.vhdx:
    // the dynamic GPT images, stored once.
    for ext in ["vhd", "vhdx"] {
        std::fs::copy(
            dir.path().join(format!("gpt-dynamic.{ext}")),
            dir.path().join(format!("base.{ext}")),
        )
        .expect("parent");
    }
    for (hash, name) in &sums {
        let img = dir.path().join(name);
        let img = img.to_str().expect("utf-8");
        let disk = stdout_bytes(&["cat", "--image", &format!("{img}:disk.raw")]);
        assert_eq!(&sha(&disk), hash, "{name}");
        let j = run(&["--json", "inspect", "--image", img]).ok().json();
        let want = if name.ends_with(".vhdx") {
            "VHDX"
        } else {
            "VHD"
        };
        assert_eq!(j["container"]["format"], want, "{name}");
        if name.starts_with("diff.") {
            assert_eq!(j["container"]["variant"], "differencing", "{name}");
            assert_eq!(j["container"]["parent"]["format"], want, "{name}");
        }
        if name == "gpt-log.vhdx" {
            let text = run(&["inspect", "--image", img]).ok().stdout;
            assert!(text.contains("warning:"), "{text}");
        }
    }
    assert_eq!(sums.len(), 13);
}

#[test]
fn a_checksum_mismatch_names_the_structure_and_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = unpack(dir.path(), "fs/ext4.img.zst", "ext4.img");
    let mut bytes = std::fs::read(&img).expect("read");
    // The directory block holding `sizes/s4096`: a 4 KiB block ending in
    // metadata_csum's tail record (inode 0, rec_len 12, name_len 0, 0xDE)
    // with the entry (name_len 5, regular file, name); the block's last
    // byte is the checksum's.
    let block = bytes
        .chunks(4096)
        .position(|b| {
            b[4084..4092] == [0, 0, 0, 0, 12, 0, 0, 0xDE]
                && b.windows(7).any(|w| w == b"\x05\x01s4096")
        })
        .expect("the sizes directory block");
    bytes[block * 4096 + 4095] ^= 0x40;
    std::fs::write(&img, &bytes).expect("write");
    let img = img.to_str().expect("utf-8 path");

    let r = run(&["ls", "--image", img]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "block 0 at byte {:#x}: checksum mismatch",
            block * 4096
        )) && r.stderr.contains("ext4 directory ")
            && r.stderr.contains("--ignore-checksums"),
        "{}",
        r.stderr
    );
    let r = run(&["cat", "--image", &format!("{img}:fs/sizes/s1")]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("ext4 directory ")
            && r.stderr.contains("checksum mismatch")
            && r.stderr.contains("--ignore-checksums"),
        "{}",
        r.stderr
    );

    let r = run(&["--ignore-checksums", "ls", "--image", img]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.lines().any(|l| l == "/fs/sizes/s4096"),
        "{}",
        r.stdout
    );
    // The volume's warning says what was ignored.
    assert!(
        r.stderr
            .contains("warning: /fs: 1 checksum mismatch ignored; ext4 directory ")
            && r.stderr.contains(&format!("at byte {:#x}", block * 4096)),
        "{}",
        r.stderr
    );
    let one = stdout_bytes(&[
        "--ignore-checksums",
        "cat",
        "--image",
        &format!("{img}:fs/sizes/s1"),
    ]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &zstd::decode_all(
            &std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/ext4.manifest.json.zst"),
            )
            .expect("manifest")[..],
        )
        .expect("zstd"),
    )
    .expect("json");
    let want = manifest["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["path"] == "sizes/s1")
        .expect("sizes/s1");
    assert_eq!(sha(&one), want["sha256"].as_str().expect("sha"));
}

#[test]
fn a_crashed_ext4_shows_its_replayed_journal_unless_asked_not_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = unpack(dir.path(), "fs/ext4-dirty.img.zst", "dirty.img");
    let img = img.to_str().expect("utf-8 path");
    let manifest: serde_json::Value = serde_json::from_slice(
        &zstd::decode_all(
            &std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../images/fs/ext4-dirty.manifest.json.zst"),
            )
            .expect("manifest")[..],
        )
        .expect("zstd"),
    )
    .expect("json");
    // Files the kernel sees after its recovery but debugfs (no replay)
    // does not find on disk.
    let absent: Vec<String> = manifest["absent_on_disk"]
        .as_array()
        .expect("absent_on_disk")
        .iter()
        .map(|p| format!("/fs/{}", p.as_str().expect("path")))
        .collect();
    assert!(!absent.is_empty());

    let r = run(&["ls", "--image", img]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for p in &absent {
        assert!(
            r.stdout.lines().any(|l| l == p),
            "{p} missing:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stderr.contains("journal replayed in memory"),
        "{}",
        r.stderr
    );

    let r = run(&["--no-journal-replay", "ls", "--image", img]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for p in &absent {
        assert!(
            !r.stdout.lines().any(|l| l == p),
            "{p} listed:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stderr.contains("not replayed") && r.stderr.contains("the view may be stale"),
        "{}",
        r.stderr
    );
}

/// The text `ls --details` prints for an xattr value given as hex: the
/// UTF-8 text when it has no control characters, else `0x` and the hex.
fn shown(hex_value: &str) -> String {
    let bytes = hex::decode(hex_value).expect("hex");
    match String::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s,
        _ => format!("0x{hex_value}"),
    }
}

#[test]
fn ls_details_prints_extended_attributes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = unpack(dir.path(), "fs/ext4.img.zst", "ext4.img");
    let packed = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/ext4.manifest.json.zst"),
    )
    .expect("manifest");
    let m: serde_json::Value =
        serde_json::from_slice(&zstd::decode_all(packed.as_slice()).expect("zstd")).expect("json");
    let spec = format!("{}:fs", img.to_str().expect("utf-8 path"));
    let text = run(&["ls", "--details", "--image", &spec]).ok().stdout;
    // xattr lines by path, as printed.
    let mut got: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(x) = line.strip_prefix("    xattr.") {
            got.entry(current.clone()).or_default().push(x.to_string());
        } else if !line.starts_with(' ') {
            current = line.trim_start_matches("/fs/").to_string();
        }
    }
    let mut want: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for e in m["entries"].as_array().expect("entries") {
        if let Some(x) = e["xattrs"].as_object() {
            let mut lines: Vec<String> = x
                .iter()
                .map(|(k, v)| format!("{k}={}", shown(v.as_str().expect("hex"))))
                .collect();
            lines.sort();
            want.insert(e["path"].as_str().expect("path").to_string(), lines);
        }
    }
    for v in got.values_mut() {
        v.sort();
    }
    assert!(want.len() >= 5, "the manifest records xattrs");
    assert_eq!(got, want);
    // JSON: an "xattrs" object on the entries that have some.
    let j = run(&[
        "--json",
        "ls",
        "--details",
        "--image",
        &format!("{spec}/sizes/s0"),
    ])
    .ok();
    let first: serde_json::Value =
        serde_json::from_str(j.stdout.lines().next().expect("a line")).expect("json");
    assert_eq!(first["xattrs"]["user.small"], "hello", "{first}");
}
