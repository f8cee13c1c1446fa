//! Blobs stored in two packs (as an interrupted prune, racing backups or a
//! repair leave them): a damaged copy is damage in its pack, but the data
//! is not lost while another copy is intact; readers (restore, check's tree
//! walk) fall back to it, and only when every copy is damaged do files
//! become unreadable and the report name who needs them.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::{Env, Run};

fn dir_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for d in fs::read_dir(dir).expect("read_dir").flatten() {
        if d.path().is_dir() {
            out.extend(dir_files(&d.path()));
        } else {
            out.insert(d.path());
        }
    }
    out
}

struct Copies {
    env: Env,
    /// The packs of the first and of the second backup.
    first: BTreeSet<PathBuf>,
    second: BTreeSet<PathBuf>,
}

/// Two backups of the same files, the second made while the first's index
/// was away (so it stored every blob again), then both indexes together.
fn vault_with_copies() -> Copies {
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(src.join("d")).expect("mkdir");
    fs::write(src.join("a"), common::pseudo_random(1, 200_000)).expect("write");
    fs::write(src.join("d/b"), common::pseudo_random(2, 100_000)).expect("write");
    // Another host for the second backup: no parent snapshot is looked
    // for (its trees are not indexed while the first index is away).
    let backup = |env: &Env, host: &str| {
        let mut c = env.cmd(&["backup", "--host", host]);
        c.arg("src").current_dir(env.dir.path());
        common::run_cmd(&mut c).ok();
    };
    backup(&env, "h1");
    let first = dir_files(&env.repo.join("data"));
    let aside = env.dir.path().join("index-aside");
    fs::rename(env.repo.join("index"), &aside).expect("move index");
    fs::create_dir(env.repo.join("index")).expect("mkdir index");
    backup(&env, "h2");
    for f in fs::read_dir(&aside).expect("aside").flatten() {
        fs::rename(f.path(), env.repo.join("index").join(f.file_name())).expect("put back");
    }
    let second: BTreeSet<PathBuf> = dir_files(&env.repo.join("data"))
        .difference(&first)
        .cloned()
        .collect();
    assert_eq!(first.len(), second.len(), "every pack stored twice");
    Copies { env, first, second }
}

fn largest(packs: &BTreeSet<PathBuf>) -> PathBuf {
    packs
        .iter()
        .max_by_key(|p| fs::metadata(p).expect("stat").len())
        .cloned()
        .expect("a pack")
}

fn smallest(packs: &BTreeSet<PathBuf>) -> PathBuf {
    packs
        .iter()
        .min_by_key(|p| fs::metadata(p).expect("stat").len())
        .cloned()
        .expect("a pack")
}

fn flip(p: &Path, at: usize) {
    let mut data = fs::read(p).expect("read");
    data[at] ^= 0x20;
    fs::write(p, data).expect("write");
}

fn restore_ok(env: &Env) {
    let target = env.dir.path().join(format!("r{}", rand_suffix()));
    env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().expect("utf-8"),
    ])
    .ok();
    for (name, seed, len) in [("a", 1, 200_000), ("d/b", 2, 100_000)] {
        let got = fs::read(restored(&target, name)).expect("restored file");
        assert!(
            got == common::pseudo_random(seed, len),
            "{name} restored wrong"
        );
    }
}

/// `src/NAME` below a restore target (the snapshot holds the absolute
/// path of the scratch directory).
fn restored(target: &Path, name: &str) -> PathBuf {
    let want = format!("/src/{name}");
    dir_files(target)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(&want))
        .unwrap_or_else(|| panic!("{want} not restored below {}", target.display()))
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn name(p: &Path) -> String {
    p.file_name().expect("name").to_string_lossy().into_owned()
}

fn check(env: &Env, args: &[&str]) -> Run {
    let mut v = vec!["--json", "check"];
    v.extend_from_slice(args);
    env.run(&v)
}

#[test]
fn one_damaged_copy_is_damage_but_nothing_is_lost() {
    // Either copy may be the one the index gives first: damage each in turn.
    for which in 0..2 {
        let v = vault_with_copies();
        let env = &v.env;
        let data_pack = largest(if which == 0 { &v.first } else { &v.second });
        flip(&data_pack, 50);
        restore_ok(env);
        // The structural pass does not read data blobs: clean.
        check(env, &[]).ok();
        let r = check(env, &["--read-data"]);
        assert_eq!(r.code, 1, "{}", r.stdout);
        let j = r.json();
        let damaged = j["damaged_packs"].as_array().expect("damaged_packs");
        assert_eq!(damaged.len(), 1, "{}", r.stdout);
        assert_eq!(damaged[0]["pack"], name(&data_pack));
        assert_eq!(
            damaged[0]["users"].as_array().map(Vec::len),
            Some(0),
            "an intact copy exists: nobody loses data\n{}",
            r.stdout
        );
        assert_ne!(
            env.restic(&["check", "--read-data"]).code,
            0,
            "restic sees the damaged pack too"
        );
        // (restic 0.14's restorer does not fall back to the other copy:
        // it reports the file as damaged; vaultfs restores it whole.)
    }
}

#[test]
fn a_damaged_tree_copy_is_passed_over_by_the_tree_walk() {
    for which in 0..2 {
        let v = vault_with_copies();
        let env = &v.env;
        let tree_pack = smallest(if which == 0 { &v.first } else { &v.second });
        flip(&tree_pack, 40);
        restore_ok(env);
        let r = check(env, &[]);
        let j = r.json();
        let kinds: Vec<&str> = j["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["kind"].as_str())
            .collect();
        assert!(!kinds.contains(&"tree_damaged"), "{}", r.stdout);
        // The walk reads the copy the index gives first; if that was the
        // damaged one, the copy is reported as damaged blob, in its pack.
        for f in j["findings"].as_array().expect("findings") {
            assert_eq!(f["kind"], "blob_damaged", "{}", r.stdout);
            assert_eq!(f["location"]["pack"], name(&tree_pack));
        }
        let r = check(env, &["--read-data"]);
        assert_eq!(r.code, 1, "{}", r.stdout);
        let j = r.json();
        for d in j["damaged_packs"].as_array().expect("damaged") {
            assert_eq!(d["users"].as_array().map(Vec::len), Some(0), "{}", r.stdout);
        }
    }
}

#[test]
fn with_every_copy_damaged_the_files_are_lost() {
    let v = vault_with_copies();
    let env = &v.env;
    // Blobs lie in another order in each copy: damage every blob of both
    // data packs (every 4 KiB up to the header, which stays readable).
    for p in [largest(&v.first), largest(&v.second)] {
        let len = fs::metadata(&p).expect("stat").len() as usize;
        for at in (50..len - 2000).step_by(4096) {
            flip(&p, at);
        }
    }
    let r = check(env, &["--read-data"]);
    assert_eq!(r.code, 1);
    let j = r.json();
    let users: BTreeSet<String> = j["damaged_packs"]
        .as_array()
        .expect("damaged")
        .iter()
        .flat_map(|d| d["users"].as_array().cloned().unwrap_or_default())
        .filter_map(|u| u["path"].as_str().map(str::to_owned))
        .collect();
    assert!(
        users
            .iter()
            .any(|p| p.ends_with("/src/a") || p.ends_with("/src/d/b")),
        "{}",
        r.stdout
    );
    let target = env.dir.path().join("lost");
    let r = env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().expect("utf-8"),
    ]);
    assert_ne!(
        r.code, 0,
        "a restore of lost data must not succeed silently"
    );
}
