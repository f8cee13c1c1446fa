//! `vaultfs repair index` and `repair snapshots` on damaged vaults made by
//! vaultfs and by restic; restic (0.14, on PATH) judges the result: its
//! `check --read-data`, `snapshots` and `restore` must accept the repaired
//! vault, and what restic's own index and `find` say decides which blobs
//! and snapshots the damage touches.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use common::{Env, Run, pseudo_random};
use sha2::{Digest, Sha256};

/// The files of each backup: backup 1 has a and dir/b, backup 2 adds c,
/// backup 3 adds d (each under 512 KiB: one blob, id = SHA-256).
const FILES: [(&str, u64, usize); 4] = [
    ("a", 1, 300_000),
    ("dir/b", 2, 200_000),
    ("c", 3, 150_000),
    ("d", 4, 100_000),
];

fn file_content(name: &str) -> Vec<u8> {
    let (_, seed, len) = FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .expect("known file");
    pseudo_random(seed, len)
}

fn blob_id(name: &str) -> String {
    hex::encode(Sha256::digest(file_content(name)))
}

/// Files present in backup `n` (1-based).
fn files_of_backup(n: usize) -> &'static [(&'static str, u64, usize)] {
    &FILES[..n + 1]
}

/// Writes the files of backup `n` below `src/` and backs them up, with
/// vaultfs or with restic.
fn backup(env: &Env, n: usize, with_restic: bool) {
    let src = env.dir.path().join("src");
    for (name, seed, len) in files_of_backup(n) {
        let p = src.join(name);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, pseudo_random(*seed, *len)).expect("write");
    }
    if with_restic {
        // An absolute path, so restic's tree starts at / as ours does.
        let src = src.display().to_string();
        let r = env.restic(&["backup", "--host", "h", &src]);
        assert_eq!(r.code, 0, "restic backup: {}{}", r.stdout, r.stderr);
    } else {
        let mut c = env.cmd(&["backup", "--host", "h"]);
        c.arg("src").current_dir(env.dir.path());
        common::run_cmd(&mut c).ok();
    }
}

/// A vault with three snapshots (see [`FILES`]), made by vaultfs or restic.
fn vault(with_restic: bool) -> Env {
    let env = if with_restic {
        let env = Env::new();
        let r = env.restic(&["init"]);
        assert_eq!(r.code, 0, "restic init: {}{}", r.stdout, r.stderr);
        env
    } else {
        Env::init()
    };
    for n in 1..=3 {
        backup(&env, n, with_restic);
    }
    env
}

/// Snapshot ids (full) by backup number, from `restic snapshots`.
fn restic_snapshots(env: &Env) -> Vec<String> {
    let r = env.restic(&["snapshots", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut v: Vec<(String, String)> = r
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|s| {
            (
                s["time"].as_str().expect("time").to_string(),
                s["id"].as_str().expect("id").to_string(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, id)| id).collect()
}

/// One blob in restic's view of the index: type, id, offset, length,
/// uncompressed length.
type IndexEntry = (String, String, u64, u64, Option<u64>);

/// restic's view of the index: pack -> its blobs, sorted by offset.
fn restic_index(env: &Env) -> BTreeMap<String, Vec<IndexEntry>> {
    let list = env.restic(&["list", "index"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let mut out: BTreeMap<String, Vec<IndexEntry>> = BTreeMap::new();
    for id in list.stdout.split_whitespace() {
        let r = env.restic(&["cat", "index", id]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        for p in r.json()["packs"].as_array().expect("packs") {
            let e = out
                .entry(p["id"].as_str().expect("id").to_string())
                .or_default();
            for b in p["blobs"].as_array().expect("blobs") {
                let item = (
                    b["type"].as_str().expect("type").to_string(),
                    b["id"].as_str().expect("id").to_string(),
                    b["offset"].as_u64().expect("offset"),
                    b["length"].as_u64().expect("length"),
                    b["uncompressed_length"].as_u64(),
                );
                if !e.contains(&item) {
                    e.push(item);
                }
            }
        }
    }
    for blobs in out.values_mut() {
        blobs.sort_by_key(|b| b.2);
    }
    out
}

/// Blob ids restic's `list blobs` shows.
fn restic_blobs(env: &Env) -> BTreeSet<String> {
    let r = env.restic(&["list", "blobs"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

/// The pack holding data blob `blob`, per restic's index.
fn pack_of(env: &Env, blob: &str) -> String {
    restic_index(env)
        .into_iter()
        .find(|(_, blobs)| blobs.iter().any(|b| b.1 == blob))
        .map(|(p, _)| p)
        .expect("blob is indexed")
}

fn pack_path(env: &Env, pack: &str) -> PathBuf {
    env.repo.join("data").join(&pack[..2]).join(pack)
}

fn flip(p: &Path, at: u64) {
    let mut data = fs::read(p).expect("read");
    let i = usize::try_from(at).expect("offset");
    data[i] ^= 0x55;
    fs::write(p, data).expect("write");
}

fn index_files(env: &Env) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(env.repo.join("index"))
        .expect("index dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn remove_index(env: &Env) {
    for f in index_files(env) {
        fs::remove_file(f).expect("rm index");
    }
}

#[track_caller]
fn restic_ok(env: &Env, args: &[&str]) -> Run {
    let r = env.restic(args);
    assert_eq!(
        r.code, 0,
        "restic {args:?} exited {}:\n{}{}",
        r.code, r.stdout, r.stderr
    );
    r
}

/// `restic restore` of backup `n`'s snapshot gives exactly its files.
fn restic_restores(env: &Env, snapshot: &str, n: usize) {
    let target = env.dir.path().join(format!("restore-{}", &snapshot[..8]));
    restic_ok(
        env,
        &[
            "restore",
            snapshot,
            "--target",
            &target.display().to_string(),
        ],
    );
    // restic restores below the target with the full source path.
    let src = env.dir.path().join("src");
    let rel = src.strip_prefix("/").expect("absolute");
    let root = target.join(rel);
    let mut want: Vec<&str> = files_of_backup(n).iter().map(|f| f.0).collect();
    want.sort();
    let mut got = Vec::new();
    walk_files(&root, &root, &mut got);
    got.sort();
    assert_eq!(got, want, "restored files of snapshot {snapshot}");
    for name in want {
        let data = fs::read(root.join(name)).expect("restored file");
        assert!(data == file_content(name), "{name} differs after restore");
    }
}

fn walk_files(root: &Path, dir: &Path, out: &mut Vec<&'static str>) {
    for e in fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk_files(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).expect("below").display().to_string();
            let known = FILES
                .iter()
                .find(|f| f.0 == rel)
                .map(|f| f.0)
                .unwrap_or_else(|| panic!("unexpected file {rel}"));
            out.push(known);
        }
    }
}

/// The whole round: delete the index, repair it, and let restic and
/// vaultfs check, list and restore.
fn rebuild_deleted_index(with_restic: bool) {
    let env = vault(with_restic);
    let snapshots = restic_snapshots(&env);
    assert_eq!(snapshots.len(), 3);
    let before = restic_index(&env);
    let old = index_files(&env);
    remove_index(&env);
    assert_ne!(env.run(&["check"]).code, 0, "no index is damage");

    let r = env.run(&["repair", "index", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["old_index_files"], 0);
    assert_eq!(j["packs_read"], j["packs"], "{j}");
    assert!(
        !j["index_files_written"]
            .as_array()
            .expect("written")
            .is_empty()
    );
    // The rebuilt index describes the packs as the original one did.
    assert_eq!(restic_index(&env), before);
    assert!(index_files(&env).iter().all(|f| !old.contains(f)));

    restic_ok(&env, &["check", "--read-data"]);
    assert_eq!(restic_snapshots(&env), snapshots);
    restic_restores(&env, &snapshots[1], 2);
    let c = env.run(&["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    assert!(c.stdout.contains("no errors were found"), "{}", c.stdout);

    // A second repair takes every pack from the index and reads none.
    let j = env.run(&["repair", "index", "--json"]).ok().json();
    assert_eq!(j["packs_read"], 0, "{j}");
    assert_eq!(j["packs_from_index"], j["packs"], "{j}");
    assert_eq!(restic_index(&env), before);
    restic_ok(&env, &["check", "--read-data"]);

    // Reading and verifying every blob (restic's are compressed) finds
    // them all intact.
    let j = env
        .run(&["repair", "index", "--read-all-packs", "--json"])
        .ok()
        .json();
    assert_eq!(j["packs_read"], j["packs"], "{j}");
    assert_eq!(j["dropped_blobs"].as_array().map(Vec::len), Some(0), "{j}");
    assert_eq!(restic_index(&env), before);
}

#[test]
fn rebuilds_a_deleted_index_of_a_vaultfs_vault() {
    rebuild_deleted_index(false);
}

#[test]
fn rebuilds_a_deleted_index_of_a_restic_vault() {
    rebuild_deleted_index(true);
}

#[test]
fn replaces_a_damaged_index_file() {
    let env = vault(false);
    let before = restic_index(&env);
    let files = index_files(&env);
    flip(&files[0], 40);
    let damaged = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_ne!(env.run(&["check"]).code, 0);
    // With a damaged index intact data would look lost: repair snapshots
    // refuses to run and says what to do first.
    let fp = env.fingerprint();
    let s = env.run(&["repair", "snapshots", "--forget-damaged"]);
    assert_eq!(s.code, 2, "{}{}", s.stdout, s.stderr);
    assert!(s.stderr.contains("repair index"), "{}", s.stderr);
    assert_eq!(env.fingerprint(), fp);

    let r = env.run(&["repair", "index", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["damaged_index_files"][0]["id"], damaged.as_str(), "{j}");
    assert!(
        j["index_files_removed"]
            .as_array()
            .expect("removed")
            .iter()
            .any(|id| id == damaged.as_str()),
        "{j}"
    );
    assert!(!env.repo.join("index").join(&damaged).exists());
    assert_eq!(restic_index(&env), before);
    restic_ok(&env, &["check", "--read-data"]);
    let c = env.run(&["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    let t = env.run(&["repair", "index"]);
    assert!(
        t.stdout.contains("the index describes every pack"),
        "{}",
        t.stdout
    );
}

/// The snapshots whose trees need a blob of `pack`, by restic's `find`
/// run on each snapshot alone (restic stops at a blob's first match).
fn restic_users_of(env: &Env, pack: &str, snapshots: &[String]) -> BTreeSet<String> {
    let blobs: Vec<String> = restic_index(env)[pack]
        .iter()
        .filter(|b| b.0 == "data")
        .map(|b| b.1.clone())
        .collect();
    assert!(!blobs.is_empty());
    let mut users = BTreeSet::new();
    for s in snapshots {
        let mut args = vec!["find", "--json", "--blob"];
        args.extend(blobs.iter().map(String::as_str));
        args.extend(["-s", s.as_str()]);
        let r = restic_ok(env, &args);
        if r.json().as_array().is_some_and(|a| !a.is_empty()) {
            users.insert(s.clone());
        }
    }
    users
}

fn ids(v: &serde_json::Value, key: &str) -> BTreeSet<String> {
    v[key]
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn a_pack_with_a_damaged_header() {
    let env = vault(false);
    let snapshots = restic_snapshots(&env);
    // The pack holding c, which backups 2 and 3 contain.
    let pack = pack_of(&env, &blob_id("c"));
    let users = restic_users_of(&env, &pack, &snapshots);
    let by_construction: BTreeSet<String> = snapshots[1..].iter().cloned().collect();
    assert_eq!(users, by_construction);
    let path = pack_path(&env, &pack);
    let len = fs::metadata(&path).expect("stat").len();
    flip(&path, len - 10);
    remove_index(&env);

    let r = env.run(&["repair", "index", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let left: Vec<&str> = j["left_out"]
        .as_array()
        .expect("left_out")
        .iter()
        .map(|l| l["pack"].as_str().expect("pack"))
        .collect();
    assert_eq!(left, [pack.as_str()], "{j}");
    assert!(path.exists(), "a left-out pack is never deleted");
    let t = env.run(&["repair", "index"]);
    assert_eq!(t.code, 1);
    assert!(
        t.stdout.contains(&format!("pack {} (", &pack[..8]))
            && t.stdout.contains("left out of the index"),
        "{}",
        t.stdout
    );

    let c = env.run(&["check"]);
    assert_eq!(c.code, 1, "{}", c.stdout);
    assert!(c.stdout.contains("blob_missing"), "{}", c.stdout);

    // Listing: exactly the users, nothing changes.
    let fp = env.fingerprint();
    let r = env.run(&["repair", "snapshots", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(ids(&j, "damaged"), users, "{j}");
    let lost = &j["damaged"][0]["lost"][0];
    assert_eq!(lost["lost"], "blob_missing", "{j}");
    assert!(
        lost["path"].as_str().is_some_and(|p| p.ends_with("/src/c")),
        "{j}"
    );
    let t = env.run(&["repair", "snapshots"]);
    assert!(t.stdout.contains("--forget-damaged"), "{}", t.stdout);
    assert_eq!(env.fingerprint(), fp);

    // Dry run: says what would go, changes nothing.
    let r = env.run(&[
        "repair",
        "snapshots",
        "--forget-damaged",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(ids(&r.json(), "damaged"), users);
    let t = env.run(&["repair", "snapshots", "--forget-damaged", "--dry-run"]);
    assert!(t.stdout.contains("would remove snapshot"), "{}", t.stdout);
    assert_eq!(env.fingerprint(), fp, "--dry-run changed the vault");

    let r = env.run(&["repair", "snapshots", "--forget-damaged", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(ids(&j, "damaged"), users);
    assert!(
        j["damaged"]
            .as_array()
            .expect("damaged")
            .iter()
            .all(|s| s["removed"] == true)
    );
    let left: BTreeSet<String> = restic_snapshots(&env).into_iter().collect();
    let want: BTreeSet<String> = snapshots
        .iter()
        .filter(|s| !users.contains(*s))
        .cloned()
        .collect();
    assert_eq!(left, want);

    // restic accepts the vault; the left-out pack is only unreferenced.
    let rc = restic_ok(&env, &["check", "--read-data"]);
    let out = format!("{}{}", rc.stdout, rc.stderr);
    assert!(
        out.contains(&format!("pack {pack}: not referenced in any index")),
        "{out}"
    );
    restic_restores(&env, &snapshots[0], 1);
    let c = env.run(&["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    let again = env.run(&["repair", "snapshots"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn read_all_packs_drops_a_damaged_blob() {
    let env = vault(false);
    let a = blob_id("a");
    let pack = pack_of(&env, &a);
    let entry = restic_index(&env)[&pack]
        .iter()
        .find(|b| b.1 == a)
        .cloned()
        .expect("a");
    flip(&pack_path(&env, &pack), entry.2 + 100);
    let others: BTreeSet<String> = restic_index(&env)[&pack]
        .iter()
        .map(|b| b.1.clone())
        .filter(|b| *b != a)
        .collect();
    assert!(!others.is_empty(), "b shares the pack");

    // The header is intact: without the flag the blob stays indexed.
    remove_index(&env);
    let r = env.run(&["repair", "index", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(restic_blobs(&env).contains(&a));

    let r = env.run(&["repair", "index", "--read-all-packs", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let dropped: Vec<&str> = j["dropped_blobs"]
        .as_array()
        .expect("dropped")
        .iter()
        .map(|b| b["id"].as_str().expect("id"))
        .collect();
    assert_eq!(dropped, [a.as_str()], "{j}");
    assert_eq!(j["dropped_blobs"][0]["pack"], pack.as_str());
    let blobs = restic_blobs(&env);
    assert!(!blobs.contains(&a));
    assert!(others.is_subset(&blobs), "the pack's other blobs stay");
    // Every snapshot has a, so all three need lost data.
    let s = env.run(&["repair", "snapshots", "--json"]);
    assert_eq!(s.code, 1);
    assert_eq!(s.json()["damaged"].as_array().map(Vec::len), Some(3));
}

/// An interrupted repair leaves old and new index files side by side:
/// restic and vaultfs accept the duplicates.
#[test]
fn old_and_new_index_files_together_are_consistent() {
    let env = vault(false);
    let saved: Vec<(PathBuf, Vec<u8>)> = index_files(&env)
        .into_iter()
        .map(|p| {
            let d = fs::read(&p).expect("read");
            (p, d)
        })
        .collect();
    env.run(&["repair", "index"]).ok();
    for (p, d) in &saved {
        assert!(!p.exists());
        fs::write(p, d).expect("restore old index file");
    }
    restic_ok(&env, &["check", "--read-data"]);
    let c = env.run(&["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    let snapshots = restic_snapshots(&env);
    restic_restores(&env, &snapshots[2], 3);
    // A repair then folds them into one index again.
    let j = env.run(&["repair", "index", "--json"]).ok().json();
    assert_eq!(j["packs_read"], 0, "{j}");
    restic_ok(&env, &["check", "--read-data"]);
}

/// A live lock held elsewhere stops both repairs that write (exit 2, the
/// vault unchanged); listing damaged snapshots shares the lock. A wrong
/// password is exit 2 too.
#[test]
fn locks_and_wrong_password() {
    use std::sync::Arc;
    use vaultfs::backend::LocalBackend;
    use vaultfs::repo::{Repository, lock};
    let env = vault(false);
    let backend = Arc::new(LocalBackend::new(env.repo.clone()));
    let repo = Arc::new(Repository::open(backend, b"correct horse").expect("open"));
    let guard = lock::acquire(&repo, false).expect("shared lock");
    let fp = env.fingerprint();
    for args in [
        &["repair", "index"][..],
        &["repair", "snapshots", "--forget-damaged"][..],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("locked"), "{}", r.stderr);
        assert_eq!(env.fingerprint(), fp, "{args:?}");
    }
    let r = env.run(&["repair", "snapshots"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("no snapshot needs lost data"),
        "{}",
        r.stdout
    );
    drop(guard);
    let fp = env.fingerprint();
    let wrong = env.password("wrong", "not the password");
    for args in [&["repair", "index"][..], &["repair", "snapshots"][..]] {
        let r = env.run_with_password(&wrong, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("wrong password"), "{}", r.stderr);
    }
    assert_eq!(env.fingerprint(), fp);
}

/// The snapshots needing a tree of `pack`: those whose root tree is in it
/// (restic's `snapshots`), and those where restic's `find --tree`, run on
/// each snapshot alone, finds one of its trees below the root.
fn restic_tree_users_of(env: &Env, pack: &str) -> BTreeSet<String> {
    let trees: Vec<String> = restic_index(env)[pack]
        .iter()
        .filter(|b| b.0 == "tree")
        .map(|b| b.1.clone())
        .collect();
    assert!(!trees.is_empty());
    let r = restic_ok(env, &["snapshots", "--json"]);
    let mut users = BTreeSet::new();
    for s in r.json().as_array().expect("snapshots") {
        let id = s["id"].as_str().expect("id").to_string();
        let root = s["tree"].as_str().expect("tree");
        let mut args = vec!["find", "--json", "--tree"];
        args.extend(trees.iter().map(String::as_str));
        args.extend(["-s", id.as_str()]);
        let found = restic_ok(env, &args)
            .json()
            .as_array()
            .is_some_and(|a| !a.is_empty());
        if found || trees.iter().any(|t| t == root) {
            users.insert(id);
        }
    }
    users
}

/// The tree pack of the second backup loses its header: exactly the
/// snapshots needing one of its trees are damaged (the second one only,
/// as its root path's trees are new in it and replaced in the third).
#[test]
fn a_tree_pack_with_a_damaged_header() {
    let env = vault(false);
    let snapshots = restic_snapshots(&env);
    let r = restic_ok(&env, &["cat", "snapshot", &snapshots[1]]);
    let root = r.json()["tree"].as_str().expect("tree").to_string();
    let pack = pack_of(&env, &root);
    let users = restic_tree_users_of(&env, &pack);
    assert_eq!(users, BTreeSet::from([snapshots[1].clone()]));
    let path = pack_path(&env, &pack);
    let len = fs::metadata(&path).expect("stat").len();
    flip(&path, len - 10);
    remove_index(&env);
    let r = env.run(&["repair", "index"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);

    let r = env.run(&["repair", "snapshots", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(ids(&j, "damaged"), users, "{j}");
    assert_eq!(j["damaged"][0]["lost"][0]["path"], "/", "{j}");
    assert_eq!(j["damaged"][0]["lost"][0]["lost"], "tree_missing", "{j}");

    env.run(&["repair", "snapshots", "--forget-damaged"]).ok();
    assert_eq!(
        restic_snapshots(&env),
        [snapshots[0].clone(), snapshots[2].clone()]
    );
    restic_ok(&env, &["check", "--read-data"]);
    restic_restores(&env, &snapshots[0], 1);
    restic_restores(&env, &snapshots[2], 3);
}

/// A pack gone from data/: while the index still names it, `repair
/// snapshots` lists its users but refuses to remove them; `repair index`
/// (with or without --read-all-packs) reports it and drops it from the
/// index, after which the users can go.
#[test]
fn a_missing_pack() {
    let env = vault(false);
    let snapshots = restic_snapshots(&env);
    let pack = pack_of(&env, &blob_id("d"));
    let users = restic_users_of(&env, &pack, &snapshots);
    assert_eq!(users, BTreeSet::from([snapshots[2].clone()]));
    fs::remove_file(pack_path(&env, &pack)).expect("rm pack");

    let r = env.run(&["repair", "snapshots", "--json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(ids(&j, "damaged"), users, "{j}");
    assert_eq!(j["missing_packs"][0], pack.as_str(), "{j}");
    let fp = env.fingerprint();
    let r = env.run(&["repair", "snapshots", "--forget-damaged"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("repair index"), "{}", r.stderr);
    assert_eq!(env.fingerprint(), fp);

    for args in [
        &["repair", "index", "--read-all-packs", "--json"][..],
        &["repair", "index", "--json"][..],
    ] {
        let r = env.run(args);
        let j = r.json();
        if args.len() == 4 {
            assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
            assert_eq!(j["missing_packs"][0]["pack"], pack.as_str(), "{j}");
            assert_eq!(j["missing_packs"][0]["blobs"], 1, "{j}");
        } else {
            // Already out of the index: nothing more is lost.
            assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        }
    }
    let r = env.run(&["repair", "snapshots", "--forget-damaged", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ids(&r.json(), "damaged"), users);
    restic_ok(&env, &["check", "--read-data"]);
    assert_eq!(restic_snapshots(&env), snapshots[..2]);
}
