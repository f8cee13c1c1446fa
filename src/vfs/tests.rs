//! The tree against a reference model: random snapshots of random trees are
//! stored in a real repository, and everything the tree lists and reads is
//! compared with what the model says it must be. Plus disk images, damage
//! and refresh.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::backend::FileType;
use crate::repo::saver::BlobSaver;
use crate::restore::fixture::{Vault, base, dir, file, noise, symlink, time};
use crate::snapshot::mode::MODE_NAMED_PIPE;
use crate::snapshot::{Node, NodeType, Snapshot};

/// What the model says a path holds.
#[derive(Clone, Debug, PartialEq)]
enum Model {
    Dir(BTreeMap<String, Model>),
    File(Vec<u8>),
    Link(String),
    Fifo,
}

fn random_tree(rng: &mut StdRng, depth: u32) -> BTreeMap<String, Model> {
    let mut out = BTreeMap::new();
    for i in 0..rng.gen_range(0..6) {
        let name = format!(
            "{}{i}",
            ["a", "Bé", "c d", "日本", "x.y"][rng.gen_range(0..5)]
        );
        let m = match rng.gen_range(0..10) {
            0..=1 if depth < 3 => Model::Dir(random_tree(rng, depth + 1)),
            2 => Model::Link(format!("../t{}", rng.r#gen::<u16>())),
            3 => Model::Fifo,
            _ => {
                let len = [0usize, 1, 100, 5000, 70_000][rng.gen_range(0..5)];
                Model::File(noise(len, rng.r#gen()))
            }
        };
        out.insert(name, m);
    }
    out
}

fn store(s: &BlobSaver, rng: &mut StdRng, entries: &BTreeMap<String, Model>) -> Vec<Node> {
    entries
        .iter()
        .map(|(name, m)| match m {
            Model::Dir(d) => {
                let children = store(s, rng, d);
                dir(s, name, children)
            }
            Model::File(data) => file(s, name, data, rng.gen_range(1..20_000)),
            Model::Link(t) => symlink(name, t),
            Model::Fifo => base(name, NodeType::Fifo, MODE_NAMED_PIPE | 0o600),
        })
        .collect()
}

fn snapshot(vault: &Vault, tree: crate::id::TreeId, t: &str, host: &str, tags: &[&str]) -> Id {
    let snap = Snapshot {
        time: time(t),
        parent: None,
        tree,
        paths: vec!["/data".into()],
        hostname: host.into(),
        username: String::new(),
        uid: 0,
        gid: 0,
        excludes: Vec::new(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        original: None,
        program_version: None,
        summary: None,
    };
    vault
        .repo
        .save_unpacked(FileType::Snapshot, &snap)
        .expect("snapshot")
}

/// The names listed in the directory at `path`.
fn names(vfs: &Vfs, path: &str) -> Vec<String> {
    vfs.resolve(path)
        .expect("resolve")
        .as_dir(path)
        .expect("dir")
        .list()
        .expect("list")
        .entries()
        .iter()
        .map(|e| e.0.clone())
        .collect()
}

fn read_all(src: &Source) -> Vec<u8> {
    let mut buf = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut buf).expect("read");
    buf
}

/// Compares the tree at `entry` with the model, reading every file whole
/// and at random offsets.
fn check(entry: &Entry, model: &BTreeMap<String, Model>, rng: &mut StdRng, path: &str) {
    let listing = entry.as_dir(path).expect("dir").list().expect("list");
    let names: Vec<&str> = listing.entries().iter().map(|e| e.0.as_str()).collect();
    let want: Vec<&str> = model.keys().map(String::as_str).collect();
    let mut want_sorted = want.clone();
    want_sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, want_sorted, "{path}");
    for (name, m) in model {
        let e = listing.get(name).expect("listed");
        let p = format!("{path}/{name}");
        let attr = e.attr();
        match m {
            Model::Dir(d) => {
                assert_eq!(attr.kind, Kind::Dir, "{p}");
                assert_eq!(attr.perm, 0o755, "{p}");
                check(e, d, rng, &p);
            }
            Model::File(data) => {
                assert_eq!(attr.kind, Kind::File, "{p}");
                assert_eq!(attr.size, data.len() as u64, "{p}");
                assert_eq!(attr.perm, 0o644);
                assert_eq!(
                    attr.mtime,
                    system_time(&time(crate::restore::fixture::MTIME))
                );
                let src = e.open(&p).expect("open");
                assert_eq!(&read_all(&src), data, "{p}");
                for _ in 0..10 {
                    let off = rng.gen_range(0..data.len() as u64 + 10);
                    let mut buf = vec![0u8; rng.gen_range(0..30_000)];
                    let n = src.read_at(off, &mut buf).expect("read_at");
                    let start = (off as usize).min(data.len());
                    let end = (start + buf.len()).min(data.len());
                    assert_eq!(&buf[..n], &data[start..end], "{p} at {off}");
                    // The shared read gives the same bytes, never more than
                    // asked, and ends no later than the blob holding `off`.
                    match src.read_shared(off, buf.len()).expect("read_shared") {
                        Some(b) => {
                            assert!(!b.is_empty() && b.len() <= buf.len(), "{p} at {off}");
                            assert_eq!(&b[..], &data[start..start + b.len()], "{p} at {off}");
                        }
                        None => assert!(start == data.len() || buf.is_empty(), "{p} at {off}"),
                    }
                }
            }
            Model::Link(t) => {
                let Entry::Symlink(s) = e else {
                    panic!("{p} is not a symlink");
                };
                assert_eq!(s.target, t.as_bytes());
                assert_eq!(attr.size, t.len() as u64);
            }
            Model::Fifo => assert_eq!(attr.kind, Kind::Fifo, "{p}"),
        }
    }
}

#[test]
fn random_snapshots_match_the_model() {
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let vault = Vault::new();
        let mut snaps = Vec::new();
        for i in 0..3 {
            let model = random_tree(&mut rng, 0);
            let s = vault.saver();
            let nodes = store(&s, &mut rng, &model);
            let tree = s.save_tree(crate::snapshot::Tree { nodes }).expect("tree");
            s.finish().expect("finish");
            let host = ["alpha", "beta"][i % 2];
            let tags: &[&str] = if i == 1 { &["daily", "db/main"] } else { &[] };
            // Two snapshots in the same second get numbered names.
            let t = [
                "2024-05-01T10:00:00Z",
                "2024-05-01T10:00:00Z",
                "2024-06-01T08:30:00+02:00",
            ][i];
            let id = snapshot(&vault, tree, t, host, tags);
            snaps.push((id, model, t));
        }
        let vfs = Vfs::new(vault.reopen(), Options::default());
        let top = names(&vfs, "/");
        assert_eq!(top, ["hosts", "ids", "snapshots", "tags"]);
        for (id, model, _) in &snaps {
            let e = vfs
                .resolve(&format!("/ids/{}", id.short()))
                .expect("ids entry");
            check(&e, model, &mut rng, &format!("/ids/{}", id.short()));
        }
        assert_eq!(
            names(&vfs, "/snapshots"),
            [
                "2024-05-01T10:00:00+00:00",
                "2024-05-01T10:00:00+00:00-1",
                "2024-06-01T08:30:00+02:00",
                "latest"
            ]
        );
        let Entry::Symlink(latest) = vfs.resolve("/snapshots/latest").expect("latest") else {
            panic!("latest is not a symlink");
        };
        assert_eq!(latest.target, b"2024-06-01T08:30:00+02:00");
        check(
            &vfs.resolve("/snapshots/2024-06-01T08:30:00+02:00")
                .expect("by time"),
            &snaps[2].1,
            &mut rng,
            "/snapshots/x",
        );
        check(
            &vfs.resolve("/hosts/beta/2024-05-01T10:00:00+00:00")
                .expect("by host"),
            &snaps[1].1,
            &mut rng,
            "/hosts/beta",
        );
        check(
            &vfs.resolve("/tags/db_main/2024-05-01T10:00:00+00:00")
                .expect("by tag"),
            &snaps[1].1,
            &mut rng,
            "/tags/db_main",
        );
        assert!(vfs.resolve("/tags/daily/latest").is_ok());
        assert_eq!(
            vfs.resolve("/ids/nothere").err().map(|e| e.kind()),
            Some(ErrorKind::NotFound)
        );
    }
}

fn image_bytes(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("images")
        .join(name);
    zstd::decode_all(std::fs::read(p).expect("image").as_slice()).expect("zstd")
}

#[test]
fn disk_images_get_a_contents_directory() {
    let vault = Vault::new();
    let s = vault.saver();
    let disk = image_bytes("containers/stamped-gpt.raw.zst");
    let nodes = vec![
        file(&s, "server.img", &disk, 600_000),
        file(&s, "notes.txt", &noise(2 << 20, 3), 1 << 20),
        // A real file called like the contents directory wins.
        file(&s, "other.img", &disk, 1 << 20),
        file(&s, "other.img.contents", b"mine", 10),
    ];
    let tree = s.save_tree(crate::snapshot::Tree { nodes }).expect("tree");
    s.finish().expect("finish");
    let id = snapshot(&vault, tree, "2024-01-01T00:00:00Z", "h", &[]);
    let vfs = Vfs::new(vault.reopen(), Options::default());
    let root = format!("/ids/{}", id.short());
    assert_eq!(
        names(&vfs, &root),
        [
            "notes.txt",
            "other.img",
            "other.img.contents",
            "server.img",
            "server.img.contents"
        ]
    );
    let c = format!("{root}/server.img.contents");
    assert_eq!(
        names(&vfs, &c),
        ["disk.raw", "p1.raw", "p2.raw", "p3.raw", "partitions.txt"]
    );
    let raw = vfs
        .resolve(&format!("{c}/disk.raw"))
        .expect("disk.raw")
        .open("disk.raw")
        .expect("open");
    assert_eq!(read_all(&raw), disk);
    let p2 = vfs
        .resolve(&format!("{c}/p2.raw"))
        .expect("p2")
        .open("p2")
        .expect("open");
    assert_eq!(read_all(&p2), &disk[6144 * 512..10240 * 512]);
    let txt = vfs
        .resolve(&format!("{c}/partitions.txt"))
        .expect("txt")
        .open("txt")
        .expect("open");
    assert!(String::from_utf8_lossy(&read_all(&txt)).contains("\"basic data\""));
    let own = vfs
        .resolve(&format!("{root}/other.img.contents"))
        .expect("file");
    assert_eq!(own.attr().kind, Kind::File);
}

#[test]
fn damage_stays_local() {
    let vault = Vault::new();
    let s = vault.saver();
    let good = file(&s, "good.txt", b"fine", 10);
    let sub = dir(&s, "sub", vec![file(&s, "inner", b"lost", 10)]);
    let sub_tree = sub.subtree.expect("subtree");
    let mut broken_disk = image_bytes("containers/stamped-gpt.raw.zst");
    // A GPT with both headers destroyed: the image still opens as raw bytes
    // with a protective MBR, and its table is reported unreadable.
    broken_disk[512..520].copy_from_slice(b"garbage!");
    let len = broken_disk.len();
    broken_disk[len - 512..len - 504].copy_from_slice(b"garbage!");
    let img = file(&s, "broken.img", &broken_disk, 1 << 20);
    let tree = s
        .save_tree(crate::snapshot::Tree {
            nodes: vec![good, img, sub],
        })
        .expect("tree");
    s.finish().expect("finish");
    let id = snapshot(&vault, tree, "2024-01-01T00:00:00Z", "h", &[]);
    vault.corrupt(crate::repo::BlobType::Tree, &sub_tree);
    let vfs = Vfs::new(vault.reopen(), Options::default());
    let root = format!("/ids/{}", id.short());
    let listing = vfs
        .resolve(&root)
        .expect("root")
        .as_dir(&root)
        .expect("dir")
        .list()
        .expect("list");
    assert!(listing.get("good.txt").is_some());
    let sub = listing.get("sub").expect("sub listed");
    assert_eq!(sub.attr().kind, Kind::Dir);
    let err = sub
        .as_dir("sub")
        .expect("dir")
        .list()
        .err()
        .expect("damaged tree");
    assert_eq!(err.kind(), ErrorKind::Damaged, "{err}");
    // Asking twice gives the same answer (the damage is remembered).
    assert!(sub.as_dir("sub").expect("dir").list().is_err());
    let c = format!("{root}/broken.img.contents");
    let contents = vfs
        .resolve(&c)
        .expect("contents")
        .as_dir(&c)
        .expect("dir")
        .list()
        .expect("list");
    let names: Vec<&str> = contents.entries().iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["disk.raw", "partitions.txt"]);
    let txt = contents
        .get("partitions.txt")
        .expect("txt")
        .open("t")
        .expect("open");
    assert!(String::from_utf8_lossy(&read_all(&txt)).contains("unreadable"));
}

#[test]
fn new_snapshots_appear_after_the_refresh_interval() {
    let vault = Vault::new();
    let s = vault.saver();
    let tree = s
        .save_tree(crate::snapshot::Tree { nodes: vec![] })
        .expect("tree");
    s.finish().expect("finish");
    let a = snapshot(&vault, tree, "2024-01-01T00:00:00Z", "h", &[]);
    let repo = vault.reopen();
    let refresh = Duration::from_secs(1);
    let options = Options {
        refresh,
        ..Options::default()
    };
    let vfs = Vfs::new(repo, options);
    let ids = || names(&vfs, "/ids");
    let listed = std::time::Instant::now();
    assert_eq!(ids(), [a.short()]);
    // A later backup with new data, written through another handle.
    let s = vault.saver();
    let data = noise(300_000, 9);
    let nodes = vec![file(&s, "new.bin", &data, 100_000)];
    let tree = s.save_tree(crate::snapshot::Tree { nodes }).expect("tree");
    s.finish().expect("finish");
    let b = snapshot(&vault, tree, "2024-01-02T00:00:00Z", "h", &[]);
    // Within the interval the listing is the remembered one (on a loaded
    // machine the backup above may outlast the interval: then there is
    // nothing to check here).
    let before = ids().len();
    if listed.elapsed() < refresh {
        assert_eq!(before, 1);
    }
    std::thread::sleep(refresh.saturating_sub(listed.elapsed()) + Duration::from_millis(50));
    let mut want = vec![a.short(), b.short()];
    want.sort();
    assert_eq!(ids(), want);
    // The snapshot kept its directory object: a handle taken before the
    // refresh is the same one listed after it.
    let Entry::Symlink(l) = vfs.resolve("/snapshots/latest").expect("latest") else {
        panic!("latest");
    };
    assert_eq!(l.target, b"2024-01-02T00:00:00+00:00");
    // Its trees and data were indexed after the tree was made: they read.
    let f = vfs
        .resolve(&format!("/ids/{}/new.bin", b.short()))
        .expect("new file");
    assert_eq!(read_all(&f.open("new.bin").expect("open")), data);
}
