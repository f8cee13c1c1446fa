//! An unpacked file's plaintext (index, snapshot, lock, config), encrypted
//! with the repository key so the MAC passes, stored in a `MemBackend` and
//! read back through `Repository::load_unpacked_raw` (version byte, bounded
//! zstd), then parsed as every JSON type that is stored that way.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vaultfs::Id;
use vaultfs::backend::FileType;
use vaultfs::repo::lock::LockFile;
use vaultfs::repo::{Config, Index, IndexFile, MAX_PLAINTEXT};
use vaultfs::snapshot::walk::check_tree;
use vaultfs::snapshot::{Snapshot, Tree};
use vaultfs_fuzz::repo;

fuzz_target!(|data: &[u8]| {
    let repo = repo();
    let file = repo.key().encrypt(data);
    let id = Id::hash(&file);
    let name = id.to_hex();
    let t = FileType::Index;
    repo.backend().write(t, &name, &file).expect("memory write");
    let loaded = repo.load_unpacked_raw(t, &id);
    repo.backend().remove(t, &name).expect("memory remove");
    let Ok(plain) = loaded else { return };

    assert!(plain.len() <= MAX_PLAINTEXT);
    match data.first() {
        Some(b'{' | b'[') => assert_eq!(plain, data, "plain JSON changed"),
        Some(2) => {
            let reference = zstd::stream::decode_all(&data[1..]).expect("zstd accepted it");
            assert_eq!(plain, reference, "zstd output differs");
        }
        _ => panic!("accepted a file with an unknown version byte"),
    }

    if let Ok(f) = serde_json::from_slice::<IndexFile>(&plain) {
        let mut index = Index::new();
        index.add_file(&f);
        for p in &f.packs {
            for b in &p.blobs {
                let loc = index.get(b.blob_type.into(), &b.id).expect("indexed blob");
                assert!(index.packs().contains(&loc.pack));
            }
        }
        assert!(index.packs().len() <= f.packs.len());
    }
    if let Ok(s) = serde_json::from_slice::<Snapshot>(&plain) {
        let again = serde_json::to_vec(&s).expect("snapshot encodes");
        let back: Snapshot = serde_json::from_slice(&again).expect("snapshot re-decodes");
        assert_eq!(serde_json::to_vec(&back).expect("encodes"), again);
    }
    if let Ok(mut tree) = serde_json::from_slice::<Tree>(&plain) {
        let _ = check_tree(&id, &mut tree);
    }
    let _ = serde_json::from_slice::<LockFile>(&plain);
    if let Ok(c) = serde_json::from_slice::<Config>(&plain) {
        let _ = c.polynomial();
    }
});
