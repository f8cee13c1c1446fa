//! `vaultfs check`: a good vault is clean; each kind of damage, made in its
//! own fresh vault, gives its report and exit status, and `restic check
//! --read-data` on the same damaged vault agrees on damaged versus clean.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, Run};

/// A vault with one snapshot of `src/` = {a, dir/b, dir/c}.
fn good_vault() -> Env {
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(src.join("dir")).expect("mkdir");
    fs::write(src.join("a"), common::pseudo_random(1, 40_000)).expect("write");
    fs::write(src.join("dir/b"), common::pseudo_random(2, 50_000)).expect("write");
    fs::write(src.join("dir/c"), common::pseudo_random(3, 60_000)).expect("write");
    let mut c = env.cmd(&["backup", "--host", "h"]);
    c.arg("src").current_dir(env.dir.path());
    common::run_cmd(&mut c).ok();
    env
}

/// The pack files, largest (the data pack) first.
fn packs(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in fs::read_dir(env.repo.join("data")).expect("data").flatten() {
        for f in fs::read_dir(d.path()).expect("subdir").flatten() {
            out.push(f.path());
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).expect("stat").len()));
    out
}

fn files(env: &Env, sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(env.repo.join(sub))
        .expect("read_dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().expect("name").to_string_lossy().into_owned()
}

fn flip(p: &Path, at: u64) {
    let mut data = fs::read(p).expect("read");
    let i = usize::try_from(at).expect("offset");
    data[i] ^= 0x55;
    fs::write(p, data).expect("write");
}

/// The text report with what varies between runs replaced by names: pack
/// ids (random IVs), the snapshot id and root tree (time, scratch path),
/// the scratch directory, and hashes of damaged files.
fn normalised(env: &Env, root: &str, packs: &[PathBuf], snapshots: &[PathBuf], r: &Run) -> String {
    let mut text = r.stdout.clone();
    let mut names: Vec<(String, &str)> = Vec::new();
    for (i, p) in packs.iter().enumerate() {
        let what = ["DATAPACK", "TREEPACK", "NEWPACK"];
        names.push((name(p), what[i.min(2)]));
    }
    for (i, s) in snapshots.iter().enumerate() {
        names.push((name(s), if i == 0 { "SNAP" } else { "NEWSNAP" }));
    }
    names.push((root.to_string(), "ROOTTREE"));
    for (full, what) in &names {
        text = text.replace(full.as_str(), what);
        text = text.replace(&full[..8], what);
    }
    text = text.replace(&env.dir.path().display().to_string(), "TMP");
    // A damaged file's hash is as random as its IV.
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect();
    for w in words {
        text = text.replace(&w, "HASH");
    }
    if let Some(i) = text.find("content hash ") {
        let at = i + "content hash ".len();
        text.replace_range(at..at + 8, "HASH");
    }
    // Sizes that depend on the tree pack (mtimes) or on random bytes.
    for prefix in ["pack of ", "header length ", "packs ("] {
        text = mask_after(&text, prefix);
    }
    text
}

/// Replaces what follows each `prefix` up to a space or `)` with `N`.
fn mask_after(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i + prefix.len()]);
        rest = &rest[i + prefix.len()..];
        let end = rest.find([' ', ')']).unwrap_or(rest.len());
        out.push('N');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Lines sorted: the order of findings about different packs follows
/// their random ids.
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.trim().lines().collect();
    v.sort();
    v
}

/// The snapshot's root tree id, from the good vault.
fn root_tree(env: &Env) -> String {
    let j = env.run(&["snapshots", "--json"]).ok().json();
    j[0]["tree"].as_str().expect("tree").to_string()
}

/// `restic check --read-data`'s exit status and output.
fn restic_check(env: &Env) -> (i32, String) {
    restic(env, &["check", "--read-data"])
}

/// restic's exit status and output for `args` on the vault (no lock, no
/// cache: the vault is left as it was).
fn restic(env: &Env, args: &[&str]) -> (i32, String) {
    let bin = std::env::var_os("VAULTFS_TEST_RESTIC").unwrap_or_else(|| "restic".into());
    let out = Command::new(&bin)
        .args(["--no-lock", "--no-cache", "-r"])
        .arg(&env.repo)
        .args(args)
        .env("RESTIC_PASSWORD_FILE", &env.password_file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run restic ({e}): install it (apt-get install restic, as .ci/run does) or set VAULTFS_TEST_RESTIC")
        });
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Damages a fresh good vault with `damage`, runs `check --read-data`
/// (text and JSON) and restic, and checks the exit status, the normalised
/// report against `golden`, and that restic agrees.
fn fixture(
    damage: impl FnOnce(&Env, &[PathBuf]),
    want_code: i32,
    golden: &str,
) -> serde_json::Value {
    let env = good_vault();
    let packs = packs(&env);
    assert_eq!(packs.len(), 2, "one data and one tree pack");
    let snapshots = files(&env, "snapshots");
    let root = root_tree(&env);
    damage(&env, &packs);
    // Files the damage added (a fixture's own pack and snapshot).
    let mut packs = packs;
    let new: Vec<PathBuf> = self::packs(&env)
        .into_iter()
        .filter(|p| !packs.contains(p))
        .collect();
    packs.extend(new);
    let mut snapshots = snapshots;
    if want_code != 2 {
        let new: Vec<PathBuf> = files(&env, "snapshots")
            .into_iter()
            .filter(|p| !snapshots.contains(p))
            .collect();
        snapshots.extend(new);
    }
    let r = env.run(&["check", "--read-data"]);
    assert_eq!(
        r.code, want_code,
        "stdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    let text = normalised(&env, &root, &packs, &snapshots, &r);
    assert_eq!(
        sorted_lines(&text),
        sorted_lines(golden),
        "report:\n{text}\nstderr: {}",
        r.stderr
    );
    let j = env.run(&["check", "--read-data", "--json"]);
    assert_eq!(j.code, want_code, "{}", j.stderr);
    let report = if want_code == 2 {
        assert_eq!(j.stdout, "");
        serde_json::Value::Null
    } else {
        j.json()
    };
    let (rc, rout) = restic_check(&env);
    assert_eq!(
        rc != 0,
        want_code != 0,
        "restic check --read-data exited {rc}, we {want_code}:\n{rout}"
    );
    report
}

#[test]
fn a_good_vault_is_clean() {
    fixture(
        |_, _| {},
        0,
        "\
1 index files, 2 packs, 1 snapshots, 5 trees checked; 2 packs (N KiB) and 8 blobs read
no errors were found (0 notices)
",
    );
}

#[test]
fn a_flipped_byte_in_a_pack_header() {
    // The encrypted header ends 4 bytes before the end of the pack.
    fixture(
        |_, packs| {
            let len = fs::metadata(&packs[0]).expect("stat").len();
            flip(&packs[0], len - 10);
        },
        1,
        "\
error: pack_hash: pack DATAPACK: SHA-256 of the content does not match the name
error: pack_header: pack DATAPACK: header: MAC mismatch (ciphertext damaged or wrong key)
damaged pack DATAPACK (3 blobs lost) is needed by:
  snapshot SNAP TMP/src/a
  snapshot SNAP TMP/src/dir/b
  snapshot SNAP TMP/src/dir/c
1 index files, 2 packs, 1 snapshots, 5 trees checked; 2 packs (N KiB) and 5 blobs read
2 errors found (0 notices)
",
    );
}

/// Where the data blob of `src/a` (one chunk) starts in its pack, read
/// through the library's index.
fn offset_of_a(env: &Env) -> u64 {
    use vaultfs::backend::LocalBackend;
    use vaultfs::repo::{BlobType, Repository};
    let backend = std::sync::Arc::new(LocalBackend::new(env.repo.clone()));
    let repo = Repository::open(backend, b"correct horse").expect("open");
    repo.load_index().expect("index");
    let id = vaultfs::Id::hash(&common::pseudo_random(1, 40_000));
    let loc = repo.index().get(BlobType::Data, &id).expect("blob of a");
    u64::from(loc.blob.offset)
}

#[test]
fn a_flipped_byte_in_a_blob_ciphertext() {
    let blob_a = sha256_short(&common::pseudo_random(1, 40_000));
    let report = fixture(
        |env, packs| flip(&packs[0], offset_of_a(env) + 100),
        1,
        &format!(
            "\
error: pack_hash: pack DATAPACK: SHA-256 of the content does not match the name
error: blob_damaged: pack DATAPACK blob {blob_a}: data blob HASH: MAC mismatch (ciphertext damaged or wrong key)
damaged pack DATAPACK (1 blob lost) is needed by:
  snapshot SNAP TMP/src/a
1 index files, 2 packs, 1 snapshots, 5 trees checked; 2 packs (N KiB) and 7 blobs read
2 errors found (0 notices)
"
        ),
    );
    let users = &report["damaged_packs"][0]["users"];
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{report}");
    assert!(
        users[0]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/src/a")),
        "{report}"
    );
}

fn sha256_short(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(data)[..4])
}

#[test]
fn a_truncated_pack() {
    fixture(
        |_, packs| {
            let data = fs::read(&packs[0]).expect("read");
            fs::write(&packs[0], &data[..data.len() / 2]).expect("write");
        },
        1,
        "\
error: pack_size: pack DATAPACK: pack is 75121 bytes, the index implies 150243
error: pack_hash: pack DATAPACK: SHA-256 of the content does not match the name
error: pack_header: pack DATAPACK: header length N exceeds the 16777216 limit
damaged pack DATAPACK (3 blobs lost) is needed by:
  snapshot SNAP TMP/src/a
  snapshot SNAP TMP/src/dir/b
  snapshot SNAP TMP/src/dir/c
1 index files, 2 packs, 1 snapshots, 5 trees checked; 2 packs (N KiB) and 5 blobs read
3 errors found (0 notices)
",
    );
}

#[test]
fn a_missing_pack() {
    fixture(
        |_, packs| fs::remove_file(&packs[0]).expect("rm"),
        1,
        "\
error: pack_missing: pack DATAPACK: pack named by the index is missing
damaged pack DATAPACK (3 blobs lost) is needed by:
  snapshot SNAP TMP/src/a
  snapshot SNAP TMP/src/dir/b
  snapshot SNAP TMP/src/dir/c
1 index files, 2 packs, 1 snapshots, 5 trees checked; 1 packs (N KiB) and 5 blobs read
1 errors found (0 notices)
",
    );
}

#[test]
fn a_missing_index_file() {
    fixture(
        |env, _| {
            for f in files(env, "index") {
                fs::remove_file(f).expect("rm");
            }
        },
        1,
        "\
info: pack_unused: pack DATAPACK: pack of N bytes is not in any index
info: pack_unused: pack TREEPACK: pack of N bytes is not in any index
error: tree_missing: blob ROOTTREE snapshot SNAP /: tree is not in the index
0 index files, 0 packs, 1 snapshots, 0 trees checked
1 errors found (2 notices)
",
    );
}

#[test]
fn a_missing_key_file() {
    fixture(
        |env, _| {
            for f in files(env, "keys") {
                fs::remove_file(f).expect("rm");
            }
        },
        2,
        "",
    );
}

#[test]
fn a_corrupted_snapshot_file() {
    fixture(
        |env, _| {
            for f in files(env, "snapshots") {
                flip(&f, 40);
            }
        },
        1,
        "\
error: snapshot_damaged: snapshot SNAP: content hash HASH does not match id SNAP
1 index files, 2 packs, 0 snapshots, 0 trees checked; 2 packs (N KiB) and 8 blobs read
1 errors found (0 notices)
",
    );
}

/// A new snapshot whose root tree is a blob that decrypts and matches its
/// id but is no tree, in a pack and index file of its own (written through
/// the library, as a buggy or hostile writer would).
#[test]
fn a_tree_blob_that_does_not_parse() {
    use vaultfs::backend::{Backend, FileType, LocalBackend};
    use vaultfs::repo::pack::PackBuilder;
    use vaultfs::repo::{BlobType, IndexFile, Repository};
    use vaultfs::snapshot::Snapshot;
    let garbage = b"this is no tree\n";
    let bad_tree = sha256_short(garbage);
    fixture(
        |env, _| {
            let backend: std::sync::Arc<dyn Backend> =
                std::sync::Arc::new(LocalBackend::new(env.repo.clone()));
            let repo = Repository::open(backend.clone(), b"correct horse").expect("open");
            let id = vaultfs::Id::hash(garbage);
            let mut b = PackBuilder::default();
            b.add(BlobType::Tree, id, &repo.key().encrypt(garbage), None);
            let fin = b.finish(repo.key());
            backend
                .write(FileType::Pack, &fin.id.to_hex(), fin.bytes())
                .expect("pack");
            let mut idx = IndexFile::default();
            idx.add_pack(fin.id, &fin.blobs);
            repo.save_unpacked(FileType::Index, &idx).expect("index");
            let sid = repo.list_ids(FileType::Snapshot).expect("list")[0];
            let mut snap: Snapshot = repo
                .load_unpacked(FileType::Snapshot, &sid)
                .expect("snapshot");
            snap.tree = id;
            snap.time += chrono::Duration::seconds(1);
            repo.save_unpacked(FileType::Snapshot, &snap).expect("save");
        },
        1,
        &format!(
            "\
error: blob_damaged: pack NEWPACK blob {bad_tree}: tree HASH: invalid JSON: expected ident at line 1 column 2
error: tree_damaged: blob {bad_tree} snapshot NEWSNAP /: tree HASH: invalid JSON: expected ident at line 1 column 2
damaged pack NEWPACK (1 blob lost) is needed by:
  snapshot NEWSNAP /
2 index files, 3 packs, 2 snapshots, 5 trees checked; 3 packs (N KiB) and 8 blobs read
2 errors found (0 notices)
"
        ),
    );
}

/// Without --read-data only the structure is checked: a flipped blob byte
/// goes unnoticed, as with `restic check`; a subset reads only its packs,
/// and the n/m buckets together read every pack once.
#[test]
fn structure_only_and_subsets() {
    let env = good_vault();
    let packs = packs(&env);
    flip(&packs[0], offset_of_a(&env) + 100);
    let r = env.run(&["check"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("no errors were found"), "{}", r.stdout);
    let mut read = 0;
    let mut damaged = 0;
    for n in 1..=3 {
        let subset = format!("{n}/3");
        let j = env.run(&["check", "--read-data-subset", &subset, "--json"]);
        let report = j.json();
        let packs_read = report["stats"]["packs_read"].as_u64().expect("packs_read");
        read += packs_read;
        // The data pack is in bucket n when its first id byte says so.
        let first = u8::from_str_radix(&name(&packs[0])[..2], 16).expect("hex");
        let in_bucket = u32::from(first) % 3 == n - 1;
        assert_eq!(
            j.code,
            if in_bucket { 1 } else { 0 },
            "{subset}: {}",
            j.stdout
        );
        damaged += u32::from(j.code == 1);
        // restic reads the same bucket.
        let (rc, rout) = restic(&env, &["check", "--read-data-subset", &subset]);
        assert_eq!(rc != 0, j.code != 0, "restic {subset}: {rout}");
    }
    assert_eq!(read, 2);
    assert_eq!(damaged, 1);
    let r = env.run(&["check", "--read-data-subset", "50%", "--json"]);
    assert_eq!(r.json()["stats"]["packs_read"], 1);
    let r = env.run(&["check", "--read-data-subset", "0/3"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// A damaged index file is a finding; the check goes on without it.
#[test]
fn a_corrupted_index_file() {
    fixture(
        |env, _| {
            for f in files(env, "index") {
                flip(&f, 40);
            }
        },
        1,
        "\
error: index_damaged: index/HASH: content hash HASH does not match id HASH
error: tree_missing: blob ROOTTREE snapshot SNAP /: tree is not in the index
info: pack_unused: pack DATAPACK: pack of N bytes is not in any index
info: pack_unused: pack TREEPACK: pack of N bytes is not in any index
0 index files, 0 packs, 1 snapshots, 0 trees checked
2 errors found (2 notices)
",
    );
}
