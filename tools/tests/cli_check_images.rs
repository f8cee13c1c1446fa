//! `vaultfs check --images`: the disk images in a vault's snapshots walked
//! through the tree, against oracles made by real tools: the manifests the
//! image recipes wrote (`images/`), mtools for the floppy inside fsdisk, and
//! debugfs for where a file's blocks, its inode and the superblock of an
//! ext partition are in the image. Damage is a flipped byte in the
//! ciphertext of the data blob (chunk) of the image file that holds the
//! bytes chosen; the chunk's byte range in the image comes from the
//! snapshot's content list and the index.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, Run};
use vaultfs::Id;
use vaultfs::backend::{FileType, LocalBackend};
use vaultfs::repo::{BlobType, Repository};
use vaultfs::snapshot::{Snapshot, Tree};

/// linuxdisk's partitions (start, length) in bytes: the sfdisk table in
/// `images/linuxdisk.sh`. p1 ext4 (4 KiB blocks), p2 XFS, p3 ext2 (1 KiB
/// blocks).
const P1: (u64, u64) = (2048 * 512, 32768 * 512);
const P2: (u64, u64) = (34816 * 512, 98304 * 512);
const P3: (u64, u64) = (133120 * 512, 24576 * 512);

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs")
}

/// Decompresses `images/fs/NAME.zst` to `to`.
fn unpack(name: &str, to: &Path) {
    let packed = fs::read(images().join(format!("{name}.zst"))).expect("test image");
    fs::write(to, zstd::decode_all(packed.as_slice()).expect("zstd")).expect("write");
}

/// Backs up `dir` (relative to the scratch directory, so snapshot paths
/// start with it) into the vault.
fn backup(env: &Env, dir: &str) {
    let mut c = env.cmd(&["backup", "--host", "h"]);
    c.arg(dir).current_dir(env.dir.path());
    common::run_cmd(&mut c).ok();
}

/// The type counts of a manifest: (files, dirs, other entries, bytes of
/// the files).
fn counts(entries: &[serde_json::Value]) -> (u64, u64, u64, u64) {
    let mut c = (0, 0, 0, 0);
    for e in entries {
        match e["type"].as_str().expect("type") {
            "file" => {
                c.0 += 1;
                c.3 += e["size"].as_u64().expect("size");
            }
            "dir" => c.1 += 1,
            _ => c.2 += 1,
        }
    }
    c
}

/// The files of the floppy image inside fsdisk (mtools' listing) and their
/// total size.
fn floppy(env: &Env, vmdk: &Path) -> (u64, u64) {
    let out = common::vaultfs()
        .args([
            "cat",
            "--image",
            &format!("{}:p2/floppy.img", vmdk.display()),
        ])
        .output()
        .expect("cat --image");
    assert!(out.status.success(), "{out:?}");
    let img = env.dir.path().join("floppy.img");
    fs::write(&img, &out.stdout).expect("write");
    let mdir = Command::new("mdir")
        .args(["-/", "-b", "-i"])
        .arg(&img)
        .arg("::")
        .output()
        .expect("mdir (mtools) is needed");
    assert!(mdir.status.success(), "{mdir:?}");
    let listing = String::from_utf8(mdir.stdout).expect("utf-8");
    let (mut files, mut bytes) = (0, 0);
    for path in listing.lines().filter(|l| !l.ends_with('/')) {
        let data = Command::new("mtype")
            .arg("-i")
            .arg(&img)
            .arg(path)
            .output()
            .expect("mtype");
        files += 1;
        bytes += data.stdout.len() as u64;
    }
    assert!(files > 0, "{listing}");
    (files, bytes)
}

#[test]
fn clean_images_are_walked_once_and_fully() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(src.join("again")).expect("mkdir");
    unpack("fsdisk.vmdk", &src.join("fsdisk.vmdk"));
    unpack("linuxdisk.vmdk", &src.join("linuxdisk.vmdk"));
    backup(&env, "src");
    // The same images at another path and in another snapshot: walked
    // once each.
    fs::copy(src.join("fsdisk.vmdk"), src.join("again/copy.vmdk")).expect("copy");
    backup(&env, "src");

    // The oracle: the manifests (each partition holds its disk's tree,
    // plus its root directory), fsdisk's floppy (in both partitions, a FAT
    // volume with its root), linuxdisk's special files.
    let fsdisk: Vec<serde_json::Value> = serde_json::from_str(
        &fs::read_to_string(images().join("fsdisk.manifest.json")).expect("manifest"),
    )
    .expect("json");
    let linux = common::linuxdisk_manifest();
    let (ff, fd, fo, fb) = counts(&fsdisk);
    let (lf, ld, lo, lb) = counts(&linux);
    let (floppy_files, floppy_bytes) = floppy(&env, &src.join("fsdisk.vmdk"));
    let want = serde_json::json!({
        "images": 2,
        "image_volumes": 2 + 2 + 3,
        "image_dirs": 2 * (fd + 1) + 2 + 3 * (ld + 1),
        "image_files": 2 * (ff + floppy_files) + 3 * lf,
        "image_others": 2 * fo + 3 * lo,
        "image_bytes": 2 * (fb + floppy_bytes) + 3 * lb,
    });

    let r = env.run(&["check", "--images", "--read-data", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["findings"], serde_json::json!([]), "{j}");
    for (k, v) in want.as_object().expect("object") {
        assert_eq!(&j["stats"][k], v, "{k}: {}", j["stats"]);
    }

    // Without --read-data the same is walked, and no file is read.
    let r = env.run(&["check", "--images", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["stats"]["image_files"], want["image_files"]);
    assert_eq!(j["stats"]["image_dirs"], want["image_dirs"]);
    assert_eq!(j["stats"]["image_bytes"], 0);

    // Without --images, nothing inside images is looked at.
    let j = env.run(&["check", "--json"]).ok().json();
    assert_eq!(j["stats"]["images"], 0);
    let text = env.run(&["check", "--images"]).ok().stdout;
    assert!(
        text.contains(&format!(
            "; 2 disk images: 7 filesystems, {} directories, {} files, {} other entries walked\n",
            want["image_dirs"], want["image_files"], want["image_others"]
        )),
        "{text}"
    );
}

/// A vault holding linuxdisk as a raw disk (`src/linuxdisk.img`), so that
/// a byte's offset in the image file is its offset on the disk.
struct RawVault {
    env: Env,
    /// The image file's chunks: id, start in the file, length.
    chunks: Vec<(Id, u64, u64)>,
    repo: Repository,
    snapshot: String,
}

impl RawVault {
    fn new() -> RawVault {
        let env = Env::init();
        let src = env.dir.path().join("src");
        fs::create_dir_all(&src).expect("mkdir");
        let vmdk = env.dir.path().join("linuxdisk.vmdk");
        unpack("linuxdisk.vmdk", &vmdk);
        let mut c = common::vaultfs();
        c.args(["cat", "--image", &format!("{}:disk.raw", vmdk.display())]);
        let out = c.output().expect("cat --image");
        assert!(out.status.success());
        assert_eq!(out.stdout.len() as u64, P3.0 + P3.1 + (3 << 20));
        fs::write(src.join("linuxdisk.img"), &out.stdout).expect("write");
        fs::remove_file(vmdk).expect("rm");
        backup(&env, "src");

        let backend = std::sync::Arc::new(LocalBackend::new(env.repo.clone()));
        let repo = Repository::open(backend, b"correct horse").expect("open");
        repo.load_index().expect("index");
        let sid = repo.list_ids(FileType::Snapshot).expect("list")[0];
        let snap: Snapshot = repo
            .load_unpacked(FileType::Snapshot, &sid)
            .expect("snapshot");
        let mut tree: Tree = repo.load_tree(&snap.tree).expect("root");
        let path = format!("{}/src", env.dir.path().display());
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let sub = tree.find(part).and_then(|n| n.subtree).expect("dir");
            tree = repo.load_tree(&sub).expect("tree");
        }
        let node = tree.find("linuxdisk.img").expect("image node").clone();
        let mut chunks = Vec::new();
        let mut at = 0;
        for id in node.content() {
            let len = u64::from(
                repo.index()
                    .get(BlobType::Data, id)
                    .expect("indexed")
                    .blob
                    .plain_len(),
            );
            chunks.push((*id, at, len));
            at += len;
        }
        assert_eq!(at, out.stdout.len() as u64);
        let p1 = env.dir.path().join("p1.img");
        fs::write(&p1, &out.stdout[P1.0 as usize..(P1.0 + P1.1) as usize]).expect("p1");
        let p3 = env.dir.path().join("p3.img");
        fs::write(&p3, &out.stdout[P3.0 as usize..(P3.0 + P3.1) as usize]).expect("p3");
        RawVault {
            env,
            chunks,
            repo,
            snapshot: sid.to_hex(),
        }
    }

    /// The chunk holding byte `at` of the image.
    fn chunk_at(&self, at: u64) -> (Id, u64, u64) {
        *self
            .chunks
            .iter()
            .find(|(_, s, l)| (*s..s + l).contains(&at))
            .expect("chunk")
    }

    /// Every byte range of the image that chunk `id` holds (a chunk can
    /// repeat: all-zero stretches).
    fn ranges(&self, id: &Id) -> Vec<(u64, u64)> {
        self.chunks
            .iter()
            .filter(|(c, _, _)| c == id)
            .map(|(_, s, l)| (*s, s + l))
            .collect()
    }

    /// Flips a byte in the middle of the ciphertext of data blob `id`;
    /// returns its pack's id.
    fn damage(&self, id: &Id) -> String {
        let loc = self.repo.index().get(BlobType::Data, id).expect("indexed");
        let hex = loc.pack.to_hex();
        let path = self.env.repo.join("data").join(&hex[..2]).join(&hex);
        let mut data = fs::read(&path).expect("pack");
        let i = loc.blob.offset as usize + loc.blob.length as usize / 2;
        data[i] ^= 0x55;
        fs::write(&path, data).expect("write");
        hex
    }

    fn image(&self) -> String {
        format!("{}/src/linuxdisk.img", self.env.dir.path().display())
    }
}

/// Runs debugfs `commands` on an ext image, returns its output per command.
fn debugfs(img: &Path, commands: &[String]) -> Vec<String> {
    let cmds = img.with_extension("cmds");
    fs::write(&cmds, commands.join("\n") + "\n").expect("cmds");
    let out = Command::new("debugfs")
        .arg("-f")
        .arg(&cmds)
        .arg(img)
        .output()
        .expect("debugfs (e2fsprogs) is needed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts: Vec<String> = text
        .split("debugfs: ")
        .skip(1)
        .map(|s| s.split_once('\n').map(|x| x.1).unwrap_or("").to_string())
        .collect();
    parts.resize(commands.len(), String::new());
    parts
}

/// What debugfs says about a file of an ext4 partition: its extents as
/// (logical block, physical block, count), its extent tree's index blocks,
/// and its inode's block.
struct Layout {
    extents: Vec<(u64, u64, u64)>,
    index_blocks: Vec<u64>,
    inode_block: u64,
}

fn layouts(img: &Path, paths: &[String]) -> Vec<Layout> {
    let mut cmds = Vec::new();
    for p in paths {
        cmds.push(format!("ex \"/{p}\""));
        cmds.push(format!("imap \"/{p}\""));
    }
    let out = debugfs(img, &cmds);
    out.chunks(2)
        .map(|pair| {
            let mut l = Layout {
                extents: Vec::new(),
                index_blocks: Vec::new(),
                inode_block: 0,
            };
            for line in pair[0].lines().skip(1) {
                let t: Vec<&str> = line.split_whitespace().collect();
                if t.len() < 9 || t.last() == Some(&"Uninit") {
                    continue;
                }
                let n = |i: usize| t[i].parse::<u64>().expect("number");
                if t[8] == "-" {
                    l.extents.push((n(4), n(7), n(10)));
                } else {
                    l.index_blocks.push(n(7));
                }
            }
            let imap = &pair[1];
            let at = imap.find("located at block ").expect("imap") + 17;
            l.inode_block = imap[at..]
                .split(',')
                .next()
                .and_then(|s| s.trim().parse().ok())
                .expect("inode block");
            l
        })
        .collect()
}

fn overlaps(ranges: &[(u64, u64)], start: u64, len: u64) -> bool {
    ranges.iter().any(|&(s, e)| start < e && s < start + len)
}

/// Findings of `kind` as (inner path, offset).
fn of_kind(report: &serde_json::Value, kind: &str) -> Vec<(String, Option<u64>)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == kind)
        .map(|f| {
            (
                f["location"]["inner_path"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                f["location"]["offset"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn a_damaged_chunk_of_file_data_names_the_files_on_it() {
    let v = RawVault::new();
    // A second snapshot holding the same image: it is walked once, and
    // each finding inside it is given for both snapshots.
    backup(&v.env, "src");
    let snapshots: BTreeSet<String> = v
        .repo
        .list_ids(FileType::Snapshot)
        .expect("list")
        .iter()
        .map(|s| s.to_hex())
        .collect();
    assert_eq!(snapshots.len(), 2);
    let p1 = v.env.dir.path().join("p1.img");
    const BLOCK: u64 = 4096;
    // Files of p1, big.bin first, with their layout from debugfs.
    let manifest = common::linuxdisk_manifest();
    let of_type = |t: &str| -> Vec<String> {
        manifest
            .iter()
            .filter(|e| e["type"] == t && (t != "file" || e["size"].as_u64() > Some(0)))
            .map(|e| e["path"].as_str().expect("path").to_string())
            .collect()
    };
    let mut files = of_type("file");
    files.sort_by_key(|p| p != "data/big.bin");
    let all = layouts(&p1, &files);
    let mut dirs = of_type("dir");
    dirs.push(String::new());
    let dir_layouts = layouts(&p1, &dirs);
    // The chunk damaged holds data of a file of p1. It must not hold what
    // every read of p1 needs (the partition table, the superblock and
    // group descriptors: blocks 0-2, from dumpe2fs), nor the directory
    // blocks or inodes of the file's directories, or the file would not
    // be reached; chunks are up to 8 MiB (these images' content rarely
    // gives the chunker a boundary), so it may hold inodes of other files.
    // The same bytes can be a chunk of p2 or p3 too (the partitions hold
    // one tree, and equal content chunks alike): every place of the chunk
    // must start in p1, so debugfs can say what it holds; it may reach
    // into p2's first bytes (its superblock).
    let dump = Command::new("dumpe2fs")
        .arg(&p1)
        .output()
        .expect("dumpe2fs");
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("Primary superblock at 0, Group descriptors at 1-1")
            && dump.contains("Reserved GDT blocks at 2-2"),
        "{dump}"
    );
    let meta_end = P1.0 + 3 * BLOCK;
    let hits = |ranges: &[(u64, u64)], l: &Layout| {
        overlaps(ranges, P1.0 + l.inode_block * BLOCK, BLOCK)
            || l.index_blocks
                .iter()
                .any(|&b| overlaps(ranges, P1.0 + b * BLOCK, BLOCK))
            || l.extents
                .iter()
                .any(|&(_, p, n)| overlaps(ranges, P1.0 + p * BLOCK, n * BLOCK))
    };
    let (target, chunk) = files
        .iter()
        .zip(&all)
        .flat_map(|(f, l)| {
            l.extents
                .iter()
                .flat_map(|&(_, p, n)| (p..p + n).map(|b| P1.0 + b * BLOCK))
                .map(move |at| (f, at))
        })
        .map(|(f, at)| (f.clone(), v.chunk_at(at).0))
        .find(|(f, c)| {
            let ranges = v.ranges(c);
            ranges
                .iter()
                .all(|&(s, _)| s >= meta_end && s < P1.0 + P1.1)
                && dirs.iter().zip(&dir_layouts).all(|(d, l)| {
                    !(d.is_empty() || f.starts_with(&format!("{d}/"))) || !hits(&ranges, l)
                })
        })
        .unwrap_or_else(|| {
            let chunks: Vec<(u64, u64, usize)> = v
                .chunks
                .iter()
                .map(|(c, s, l)| (*s, *l, v.ranges(c).len()))
                .collect();
            panic!("no chunk fit: {chunks:?}")
        });
    let target = target.as_str();
    let ranges = v.ranges(&chunk);
    // A chunk reaching past p1's end holds p2's superblock: p2 cannot be
    // opened then, so nothing in it is reported beyond that.
    let into_p2 = ranges.iter().any(|&(_, e)| e > P2.0);
    v.damage(&chunk);

    let r = v.env.run(&["check", "--images", "--read-data", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = r.json();
    let kinds: BTreeSet<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["kind"].as_str().expect("kind"))
        .collect();
    assert!(kinds.contains("blob_damaged"), "{report}");
    let unreadable = of_kind(&report, "image_file_unreadable");
    // One finding per snapshot: the walk's findings once.
    let mut unreadable = unreadable;
    unreadable.sort();
    unreadable.dedup();
    let paths: Vec<String> = unreadable
        .iter()
        .map(|(p, _)| p.strip_prefix("p1/").expect("in p1").to_string())
        .collect();
    assert!(paths.iter().any(|p| p == target), "{report}");
    // Every file reported has a block (or its inode, or an extent tree
    // block) in the damaged chunk, and an offset reported is that of its
    // first block there.
    let lay = layouts(&p1, &paths);
    for ((path, offset), l) in paths
        .iter()
        .zip(&unreadable)
        .map(|(p, u)| (p, u.1))
        .zip(&lay)
    {
        let data_hit = l
            .extents
            .iter()
            .flat_map(|&(lg, p, n)| (0..n).map(move |i| (lg + i, p + i)))
            .find(|&(_, p)| overlaps(&ranges, P1.0 + p * BLOCK, BLOCK));
        let meta_hit = overlaps(&ranges, P1.0 + l.inode_block * BLOCK, BLOCK)
            || l.index_blocks
                .iter()
                .any(|&b| overlaps(&ranges, P1.0 + b * BLOCK, BLOCK));
        match offset {
            Some(o) => {
                let (logical, _) = data_hit.unwrap_or_else(|| panic!("{path}: no block hit"));
                assert_eq!(o, logical * BLOCK, "{path}");
            }
            None => assert!(meta_hit, "{path} reported without its metadata hit"),
        }
    }
    let on_target = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["location"]["inner_path"].as_str() == Some(&format!("p1/{target}")))
        .expect("target reported");
    assert_eq!(on_target["kind"], "image_file_unreadable");
    assert!(on_target["location"]["blob"].is_string(), "{on_target}");
    // Every finding inside the image that names a blob names the damaged
    // chunk and where it first starts in the image.
    for f in report["findings"].as_array().expect("findings") {
        if f["location"]["inner_path"].is_string() && f["location"]["blob"].is_string() {
            assert_eq!(
                f["location"]["blob"].as_str(),
                Some(chunk.to_hex().as_str()),
                "{f}"
            );
            assert_eq!(
                f["location"]["image_offset"].as_u64(),
                Some(ranges[0].0),
                "{f}"
            );
        }
    }
    // Every directory reported has its blocks or inode in the chunk.
    let fs_damaged = of_kind(&report, "image_fs_damaged");
    assert_eq!(
        fs_damaged.contains(&("p2".to_string(), None)),
        into_p2,
        "{report}"
    );
    let bad_dirs: BTreeSet<String> = fs_damaged
        .into_iter()
        .filter(|(p, _)| p != "p2")
        .map(|(p, _)| p.strip_prefix("p1/").expect("in p1").to_string())
        .collect();
    let bad_dirs: Vec<String> = bad_dirs.into_iter().collect();
    for (d, l) in bad_dirs.iter().zip(layouts(&p1, &bad_dirs)) {
        assert!(hits(&ranges, &l), "{d} reported, not in the chunk");
    }
    // Every finding inside the image is in p1 (or is p2 itself), once for
    // each snapshot.
    let mut holders: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for f in report["findings"].as_array().expect("findings") {
        if let Some(i) = f["location"]["inner_path"].as_str() {
            assert!(i.starts_with("p1/") || (into_p2 && i == "p2"), "{f}");
            assert_eq!(f["location"]["path"].as_str(), Some(v.image().as_str()));
            let s = f["location"]["snapshot"].as_str().expect("snapshot");
            assert!(
                holders
                    .entry(i.to_string())
                    .or_default()
                    .insert(s.to_string()),
                "{f} twice"
            );
        }
    }
    assert!(holders.values().all(|s| *s == snapshots), "{holders:?}");
    assert_eq!(report["stats"]["images"], 1);

    // Structure only: no file content is read, so a file is reported only
    // where its metadata was hit.
    let r = v.env.run(&["check", "--images", "--json"]);
    let structure = r.json();
    assert_eq!(structure["stats"]["image_bytes"], 0);
    let mut unreadable = of_kind(&structure, "image_file_unreadable");
    unreadable.sort();
    unreadable.dedup();
    assert!(unreadable.iter().all(|(_, o)| o.is_none()), "{structure}");
    let paths: Vec<String> = unreadable
        .iter()
        .map(|(p, _)| p.strip_prefix("p1/").expect("in p1").to_string())
        .collect();
    for (p, l) in paths.iter().zip(layouts(&p1, &paths)) {
        assert!(
            overlaps(&ranges, P1.0 + l.inode_block * BLOCK, BLOCK)
                || l.index_blocks
                    .iter()
                    .any(|&b| overlaps(&ranges, P1.0 + b * BLOCK, BLOCK)),
            "{p}"
        );
    }
    assert_eq!(
        r.code,
        i32::from(
            structure["findings"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        ),
        "{structure}"
    );
}

/// The text report with what varies between runs named: the damaged pack
/// and blob, the snapshot, the scratch directory, and in the summary the
/// counts of the vault's own structure and sizes (they follow the
/// chunker's random parameters); what was walked inside the image stays.
fn normalised(v: &RawVault, pack: &str, chunk: &Id, r: &Run) -> String {
    let mut text = r.stdout.clone();
    for (full, name) in [
        (pack.to_string(), "DAMAGEDPACK"),
        (chunk.to_hex(), "DAMAGEDBLOB"),
        (v.snapshot.clone(), "SNAP"),
    ] {
        text = text.replace(&full, name).replace(&full[..8], name);
    }
    text = text.replace(&v.env.dir.path().display().to_string(), "TMP");
    let mut out = Vec::new();
    for line in text.lines() {
        let line = match line.split_once("; ") {
            Some((_, rest)) if line.contains("index files") => {
                let images = rest.split_once("; ").map(|x| x.1).unwrap_or(rest);
                let images = match images.rsplit_once(", ") {
                    Some((walked, read)) if read.ends_with(" read in them") => {
                        format!("{walked}, N read in them")
                    }
                    _ => images.to_string(),
                };
                format!("N index files, N packs, N snapshots, N trees checked; ...; {images}")
            }
            _ => line.to_string(),
        };
        out.push(line);
    }
    out.join("\n") + "\n"
}

#[test]
fn a_damaged_superblock_fails_its_filesystem_only() {
    let v = RawVault::new();
    // ext2 with 1 KiB blocks: the superblock is block 1 (debugfs agrees:
    // `stats` reads it from there).
    let p3 = v.env.dir.path().join("p3.img");
    let stats = &debugfs(&p3, &["stats".to_string()])[0];
    assert!(stats.contains("Block size:               1024"), "{stats}");
    let (chunk, _, _) = v.chunk_at(P3.0 + 1024);
    let ranges = v.ranges(&chunk);
    assert!(
        ranges.iter().all(|&(s, _)| s >= P2.0),
        "the chunk holds nothing of p1: {ranges:?}"
    );
    let pack = v.damage(&chunk);

    let r = v.env.run(&["check", "--images", "--read-data"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let text = normalised(&v, &pack, &chunk, &r);
    let j = v.env.run(&["check", "--images", "--read-data", "--json"]);
    assert_eq!(j.code, 1);
    let report = j.json();
    // p3 does not open; p1 is walked whole and clean (its tree from the
    // manifest plus its root); p2 may have findings only if the chunk
    // reaches into it (then its counts are not known here).
    let in_p2 = ranges.iter().any(|&(s, _)| s < P2.0 + P2.1);
    let mut p2_lines = 0;
    for f in report["findings"].as_array().expect("findings") {
        if let Some(i) = f["location"]["inner_path"].as_str() {
            assert!(i == "p3" || (in_p2 && i.starts_with("p2")), "{f}");
            p2_lines += usize::from(i.starts_with("p2"));
        }
    }
    let fs_damaged = &report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "image_fs_damaged" && f["location"]["inner_path"] == "p3")
        .unwrap_or_else(|| panic!("no finding for p3: {report}"))["location"];
    assert_eq!(fs_damaged["path"].as_str(), Some(v.image().as_str()));
    assert_eq!(fs_damaged["snapshot"].as_str(), Some(v.snapshot.as_str()));
    let (files, dirs, others, bytes) = counts(&common::linuxdisk_manifest());
    let st = &report["stats"];
    assert_eq!(st["image_volumes"], 2, "{st}");
    let (files, dirs, others) = if p2_lines == 0 {
        assert_eq!(st["image_bytes"], 2 * bytes, "{st}");
        (2 * files, 2 * (dirs + 1), 2 * others)
    } else {
        let n = |k: &str| st[k].as_u64().expect("count");
        assert!(n("image_files") >= files && n("image_dirs") > dirs, "{st}");
        (n("image_files"), n("image_dirs"), n("image_others"))
    };
    let text: String = text
        .lines()
        .filter(|l| !l.contains("linuxdisk.img.contents/p2"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        text,
        format!(
            "\
error: pack_hash: pack DAMAGEDPACK: SHA-256 of the content does not match the name
error: blob_damaged: pack DAMAGEDPACK blob DAMAGEDBLOB: data blob DAMAGEDBLOB: MAC mismatch (ciphertext damaged or wrong key)
error: image_fs_damaged: blob DAMAGEDBLOB snapshot SNAP TMP/src/linuxdisk.img.contents/p3 (blob at image offset {start}): detecting the filesystem: data blob DAMAGEDBLOB in pack DAMAGEDPACK: MAC mismatch (ciphertext damaged or wrong key)
damaged pack DAMAGEDPACK (1 blob lost) is needed by:
  snapshot SNAP TMP/src/linuxdisk.img
N index files, N packs, N snapshots, N trees checked; ...; 1 disk images: 2 filesystems, {dirs} directories, {files} files, {others} other entries walked, N read in them
{} errors found (0 notices)
",
            3 + p2_lines,
            start = ranges[0].0,
        ),
        "{}",
        r.stdout
    );
    // The same finding in JSON, with the location's fields.
    let want = serde_json::json!({
        "severity": "error",
        "kind": "image_fs_damaged",
        "location": {
            "blob": chunk.to_hex(),
            "snapshot": v.snapshot,
            "path": v.image(),
            "inner_path": "p3",
            "image_offset": ranges[0].0,
        },
    });
    let got = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["location"]["inner_path"] == "p3")
        .expect("p3");
    for k in ["severity", "kind", "location"] {
        assert_eq!(got[k], want[k], "{got}");
    }
    assert_eq!(
        got["detail"].as_str().map(|d| d.replace(&pack[..8], "DAMAGEDPACK").replace(&chunk.to_hex(), "DAMAGEDBLOB")),
        Some("detecting the filesystem: data blob DAMAGEDBLOB in pack DAMAGEDPACK: MAC mismatch (ciphertext damaged or wrong key)".to_string())
    );
}

#[test]
fn an_image_whose_head_is_lost_is_reported_without_read_data() {
    let v = RawVault::new();
    // The first chunk holds the partition table: the tree's probe cannot
    // read it, so the file shows as no image; named like one, the check
    // reports it, even without --read-data (the probe read it anyway).
    let (chunk, start, _) = v.chunk_at(0);
    assert_eq!(start, 0);
    v.damage(&chunk);
    for args in [
        &["check", "--images", "--json"][..],
        &["check", "--images", "--read-data", "--json"],
    ] {
        let r = v.env.run(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        let report = r.json();
        let f = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["kind"] == "image_damaged")
            .unwrap_or_else(|| panic!("{args:?}: {report}"));
        assert_eq!(
            f["location"],
            serde_json::json!({
                "blob": chunk.to_hex(),
                "snapshot": v.snapshot,
                "path": v.image(),
                "image_offset": 0,
            }),
            "{f}"
        );
        assert!(
            f["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("cannot tell whether this is a disk image: ")),
            "{f}"
        );
        assert_eq!(report["stats"]["images"], 0);
    }
}

/// `images/containers/NAME.zst` decompressed to `to`.
fn unpack_container(name: &str, to: &Path) {
    let packed = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../images/containers")
            .join(format!("{name}.zst")),
    )
    .expect("test image");
    fs::write(to, zstd::decode_all(packed.as_slice()).expect("zstd")).expect("write");
}

#[test]
fn a_vmdk_without_its_extent_is_damaged_where_the_extent_is_missing() {
    // Images made by qemu-img (images/containers/vhd.sh, vmdk.sh): a VMDK
    // descriptor and its flat extent (itself a raw GPT disk), a dynamic
    // VHDX, a fixed VHD: four disk images.
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(&src).expect("mkdir");
    for name in [
        "vmdk/gpt-monolithicFlat.vmdk",
        "vmdk/gpt-monolithicFlat-flat.vmdk",
        "vhd/gpt-dynamic.vhdx",
        "vhd/mbr-fixed.vhd",
    ] {
        let file = Path::new(name).file_name().expect("name");
        unpack_container(name, &src.join(file));
    }
    backup(&env, "src");
    let j = env
        .run(&["check", "--images", "--read-data", "--json"])
        .ok()
        .json();
    assert_eq!(j["findings"], serde_json::json!([]), "{j}");
    assert_eq!(j["stats"]["images"], 4);
    let first: BTreeSet<String> = env
        .run(&["snapshots", "--json"])
        .ok()
        .json()
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();

    // The same descriptor, its extent gone: damaged in that snapshot only
    // (the descriptor's content is the same, the files beside it are not).
    fs::remove_file(src.join("gpt-monolithicFlat-flat.vmdk")).expect("rm");
    backup(&env, "src");
    let r = env.run(&["check", "--images", "--read-data", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let findings = j["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{j}");
    let f = &findings[0];
    assert_eq!(f["kind"], "image_damaged");
    let snap = f["location"]["snapshot"].as_str().expect("snapshot");
    assert!(!first.contains(snap), "{f}");
    assert_eq!(
        f["location"]["path"].as_str(),
        Some(format!("{}/src/gpt-monolithicFlat.vmdk", env.dir.path().display()).as_str())
    );
    assert!(
        f["detail"]
            .as_str()
            .is_some_and(|d| d.contains("gpt-monolithicFlat-flat.vmdk")),
        "{f}"
    );
    // Walked again beside other files: five walks of four contents.
    assert_eq!(j["stats"]["images"], 5);
}
