//! Writes the seed inputs below `seeds/<target>/` and checks that each one
//! takes its target's successful path. Run with
//! `cargo test --manifest-path fuzz/Cargo.toml` (stable is enough).
//!
//! A seed file that exists is kept as it is (some hold random IVs and
//! salts); delete `seeds/` to make them anew.

use std::fs;
use std::path::PathBuf;

use vaultfs::Id;
use vaultfs::crypto::OVERHEAD;
use vaultfs::repo::pack::{PackBuilder, header_range, parse_header};
use vaultfs::repo::{BlobType, IndexFile, KeyFile, PackedBlob};
use vaultfs::snapshot::walk::check_tree;
use vaultfs::snapshot::{ExtendedAttribute, Node, NodeType, Tree};
use vaultfs_fuzz::{CHEAP_KDF, PASSWORD, fixed_key, repo};

fn seed(target: &str, name: &str, make: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    fs::create_dir_all(&dir).expect("seed dir");
    let path = dir.join(name);
    if let Ok(bytes) = fs::read(&path) {
        return bytes;
    }
    let bytes = make();
    fs::write(&path, &bytes).expect("write seed");
    bytes
}

fn blob(t: BlobType, len: u32, uncompressed: Option<u32>, fill: u8) -> PackedBlob {
    PackedBlob {
        blob_type: t,
        id: Id([fill; 32]),
        offset: 0,
        length: len,
        uncompressed_length: uncompressed,
    }
}

fn header_plain(blobs: &[PackedBlob]) -> Vec<u8> {
    let mut h = Vec::new();
    for b in blobs {
        let t = match (b.blob_type, b.uncompressed_length) {
            (BlobType::Data, None) => 0u8,
            (BlobType::Tree, None) => 1,
            (BlobType::Data, Some(_)) => 2,
            (BlobType::Tree, Some(_)) => 3,
        };
        h.push(t);
        h.extend_from_slice(&b.length.to_le_bytes());
        if let Some(u) = b.uncompressed_length {
            h.extend_from_slice(&u.to_le_bytes());
        }
        h.extend_from_slice(&b.id.0);
    }
    h
}

#[test]
fn pack_header_seeds() {
    let key = fixed_key();
    let pack = seed("pack_header", "pack", || {
        let mut b = PackBuilder::default();
        b.add_encrypting(&key, BlobType::Data, Id::hash(b"one"), b"one", None);
        b.add_encrypting(&key, BlobType::Tree, Id::hash(b"two"), b"(zstd)", Some(3));
        let f = b.finish(&key);
        f.buf[f.start..].to_vec()
    });
    let n = pack.len();
    let trailer = [pack[n - 4], pack[n - 3], pack[n - 2], pack[n - 1]];
    let (start, hlen) = header_range(n as u64, trailer, &Id::default()).expect("range");
    let s = start as usize;
    let plain = key.decrypt(&pack[s..s + hlen as usize]).expect("fixed key");
    assert_eq!(
        parse_header(&plain, start, &Id::default())
            .expect("parse")
            .len(),
        2
    );

    // [blob area length][plaintext header]
    let blobs = [
        blob(BlobType::Data, 40, None, 1),
        blob(BlobType::Tree, 50, Some(700), 2),
        blob(BlobType::Data, 33, Some(1), 3),
        blob(BlobType::Tree, 32, None, 4),
    ];
    let area: u32 = blobs.iter().map(|b| b.length).sum();
    let input = seed("pack_header", "plain-header", || {
        let mut v = area.to_le_bytes().to_vec();
        v.extend(header_plain(&blobs));
        v
    });
    let got = parse_header(&input[4..], u64::from(area), &Id::default()).expect("parse");
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|b| b.length as usize >= OVERHEAD));
}

const SNAPSHOT: &str = r#"{"time":"2024-05-01T10:11:12.123456789+02:00","parent":"1111111111111111111111111111111111111111111111111111111111111111","tree":"2222222222222222222222222222222222222222222222222222222222222222","paths":["/home/u"],"hostname":"h","username":"u","uid":1000,"gid":100,"tags":["t"],"program_version":"restic 0.17.0","summary":{"backup_start":"2024-05-01T10:11:12+02:00","backup_end":"2024-05-01T10:11:13+02:00","files_new":1,"files_changed":0,"files_unmodified":0,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":1,"tree_blobs":1,"data_added":3,"data_added_packed":35,"total_files_processed":1,"total_bytes_processed":3}}"#;
const LOCK: &str = r#"{"time":"2024-05-01T10:11:12.5+02:00","exclusive":false,"hostname":"h","username":"u","pid":42,"uid":1000,"gid":100}"#;
const CONFIG: &str = r#"{"version":2,"id":"3333333333333333333333333333333333333333333333333333333333333333","chunker_polynomial":"3da3358b4dc173"}"#;

fn sample_tree() -> Tree {
    let mut file = Node::new("a.txt", NodeType::File);
    file.mode = 0o644;
    file.size = 3;
    file.content = Some(vec![Id::hash(b"abc")]);
    file.extended_attributes = vec![ExtendedAttribute {
        name: "user.k".into(),
        value: b"v".to_vec(),
    }];
    let mut dir = Node::new("d", NodeType::Dir);
    dir.mode = 0x8000_01ed;
    dir.subtree = Some(Id::hash(b"sub"));
    let mut link = Node::new("l", NodeType::Symlink);
    link.linktarget = "a.txt".into();
    link.linktarget_raw = Some(b"a.txt\xff".to_vec());
    Tree {
        nodes: vec![file, dir, link],
    }
}

#[test]
fn unpacked_file_seeds() {
    let repo = repo();
    let mut index = IndexFile::default();
    index.add_pack(
        Id::hash(b"pack"),
        &[
            blob(BlobType::Data, 40, None, 5),
            PackedBlob {
                offset: 40,
                ..blob(BlobType::Tree, 60, Some(90), 6)
            },
        ],
    );
    let index_json = serde_json::to_vec(&index).expect("json");
    let tree_json = sample_tree().encode();
    let mut zstd_index = vec![2u8];
    zstd_index.extend(zstd::bulk::compress(&index_json, 3).expect("zstd"));
    let seeds: [(&str, Vec<u8>); 6] = [
        ("index", index_json.clone()),
        ("index-zstd", zstd_index),
        ("snapshot", SNAPSHOT.as_bytes().to_vec()),
        ("tree", tree_json),
        ("lock", LOCK.as_bytes().to_vec()),
        ("config", CONFIG.as_bytes().to_vec()),
    ];
    for (name, bytes) in seeds {
        let input = seed("unpacked_file", name, || bytes);
        let file = repo.key().encrypt(&input);
        let id = Id::hash(&file);
        let t = vaultfs::backend::FileType::Index;
        repo.backend().write(t, &id.to_hex(), &file).expect("write");
        let plain = repo.load_unpacked_raw(t, &id).expect(name);
        repo.backend().remove(t, &id.to_hex()).expect("remove");
        assert!(plain.starts_with(b"{"), "{name}");
    }
}

#[test]
fn blob_seeds() {
    let repo = repo();
    let text = b"hello, blob\n".repeat(20);
    let compressed = zstd::bulk::compress(&text, 3).expect("zstd");
    let plain_seed = seed("blob", "plain", || {
        let mut v = 0u32.to_le_bytes().to_vec();
        v.push(0);
        v.extend_from_slice(b"hello");
        v
    });
    let zstd_seed = seed("blob", "zstd", || {
        let mut v = (text.len() as u32).to_le_bytes().to_vec();
        v.push(3);
        v.extend_from_slice(&compressed);
        v
    });
    for (input, want) in [(&plain_seed, &b"hello"[..]), (&zstd_seed, &text[..])] {
        let claimed = u32::from_le_bytes([input[0], input[1], input[2], input[3]]);
        let payload = &input[5..];
        let b = PackedBlob {
            blob_type: BlobType::Data,
            id: Id::hash(want),
            offset: 0,
            length: (payload.len() + OVERHEAD) as u32,
            uncompressed_length: (input[4] & 1 != 0).then_some(claimed),
        };
        let mut data = repo.key().encrypt(payload);
        assert_eq!(
            repo.decode_blob("seed", &b, &mut data).expect("decode"),
            want
        );
    }
}

#[test]
fn key_file_seeds() {
    let bytes = seed("key_file", "key", || {
        KeyFile::create(PASSWORD, &fixed_key(), CHEAP_KDF)
            .expect("create")
            .to_bytes()
    });
    let kf = KeyFile::parse("seed", &bytes).expect("parse");
    assert_eq!(kf.open(PASSWORD).expect("open"), Some(fixed_key()));
    // Parameters that asked for 32 GiB, and for minutes of work.
    for (name, r, p) in [("hostile-r", 1u32 << 16, 1u32), ("hostile-p", 8, 8192)] {
        let bytes = seed("key_file", name, || {
            let mut k = kf.clone();
            (k.n, k.r, k.p) = (1 << 12, r, p);
            k.to_bytes()
        });
        let started = std::time::Instant::now();
        let hostile = KeyFile::parse(name, &bytes).expect("parse");
        assert!(hostile.open(PASSWORD).is_err(), "{name}");
        assert!(started.elapsed().as_secs() < 1, "{name}");
    }
}

#[test]
fn tree_seeds() {
    let bytes = seed("tree", "tree", || sample_tree().encode());
    let mut tree = Tree::decode(&Id::default(), &bytes).expect("decode");
    check_tree(&Id::default(), &mut tree).expect("valid");
    assert_eq!(tree.nodes.len(), 3);
}

#[test]
fn chunker_seeds() {
    let input = seed("chunker", "random", || {
        let mut v = vec![7u8, 0xe8, 0x03, 0];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x as u8);
        }
        v
    });
    assert_eq!(input.len(), 3004);
    seed("chunker", "zeros-interrupted", || {
        let mut v = vec![1u8, 0x10, 0, 3];
        v.extend([0u8; 1500]);
        v
    });
}

/// The NTFS seed is made by `images/ntfs.sh seed` (mkfs.ntfs and ntfs-3g),
/// not here: check that it expands to a volume the reader walks, with its
/// compressed file, stream and symlink.
#[test]
fn ntfs_seeds() {
    use std::sync::Arc;
    use vaultfs_formats::fs::ntfs::NtfsFs;
    use vaultfs_formats::fs::{FileKind, Filesystem, FsOptions, check_invariants};
    use vaultfs_formats::io::{MemSource, ReadAt};

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/ntfs/compact-volume");
    let bytes = fs::read(path).expect("seeds/ntfs/compact-volume (images/ntfs.sh seed)");
    let vol = vaultfs_fuzz::ntfs_volume(&bytes).expect("volume");
    assert_eq!(vol.len(), 3 << 20);
    let ntfs = NtfsFs::open(
        Arc::new(MemSource::new(vol)),
        &FsOptions {
            streams: true,
            ..Default::default()
        },
    )
    .expect("open");
    assert!(check_invariants(&ntfs).expect("invariants") > 40);
    let c = ntfs.lookup(ntfs.root(), "c").expect("lookup").expect("c");
    let text = ntfs.lookup(c.ino, "text").expect("lookup").expect("text");
    let src = ntfs.open(text.ino).expect("open");
    let mut b = vec![0u8; src.len() as usize];
    src.read_exact_at(0, &mut b).expect("read");
    assert_eq!(b, "compress me ".repeat(2000).as_bytes());
    let link = ntfs
        .lookup(ntfs.root(), "link")
        .expect("lookup")
        .expect("link");
    assert_eq!(link.kind, FileKind::Symlink);
    assert!(ntfs.lookup(ntfs.root(), "ads:s").expect("lookup").is_some());
}
