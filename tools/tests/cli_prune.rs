//! `vaultfs prune` on vaults made by vaultfs and by restic; restic (0.14,
//! on PATH) judges every pruned vault: its `check --read-data`,
//! `snapshots` and `restore` must accept it. Sizes are computed from the
//! test files (incompressible, each under 512 KiB: one blob stored as it
//! is), never taken from the prune's own report.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, Run, pseudo_random};

/// A test file: name, seed, length.
type File = (&'static str, u64, usize);

const A: File = ("a", 1, 300_000);
const B: File = ("dir/b", 2, 200_000);
const C: File = ("c", 3, 400_000);
const SHARED: File = ("shared", 9, 250_000);
const D: File = ("dir/d", 4, 150_000);
const E: File = ("e", 5, 100_000);
const F: File = ("f", 6, 120_000);

/// The four backups: each overlaps with the others in `SHARED`, backups
/// 1-2 share `A`, 3-4 share `D`.
const BACKUPS: [&[File]; 4] = [
    &[A, B, SHARED],
    &[A, C, SHARED],
    &[SHARED, D, E],
    &[SHARED, D, F],
];

fn src(env: &Env) -> PathBuf {
    env.dir.path().join("src")
}

/// Makes `src/` hold exactly `files`.
fn write_files(env: &Env, files: &[File]) {
    let src = src(env);
    let _ = fs::remove_dir_all(&src);
    for (name, seed, len) in files {
        let p = src.join(name);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, pseudo_random(*seed, *len)).expect("write");
    }
}

fn restic_ok(env: &Env, args: &[&str]) -> Run {
    let r = env.restic(args);
    assert_eq!(
        r.code, 0,
        "restic {args:?} exited {}:\n{}{}",
        r.code, r.stdout, r.stderr
    );
    r
}

/// Backs up `files` (as `src/`, absolute path) with vaultfs or restic.
fn backup(env: &Env, files: &[File], with_restic: bool) {
    write_files(env, files);
    let s = src(env).display().to_string();
    if with_restic {
        restic_ok(env, &["backup", "--host", "h", &s]);
    } else {
        env.run(&["backup", "--host", "h", &s]).ok();
    }
}

/// A vault with the four [`BACKUPS`].
fn vault(with_restic: bool) -> Env {
    let env = if with_restic {
        let env = Env::new();
        restic_ok(&env, &["init"]);
        env
    } else {
        Env::init()
    };
    for files in BACKUPS {
        backup(&env, files, with_restic);
    }
    env
}

/// Snapshot ids, oldest first, from `restic snapshots`.
fn restic_snapshots(env: &Env) -> Vec<String> {
    let r = restic_ok(env, &["snapshots", "--json"]);
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

/// Total bytes of the files below `data/`.
fn data_size(env: &Env) -> u64 {
    fn walk(p: &Path) -> u64 {
        fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() {
                            walk(&p)
                        } else {
                            fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&env.repo.join("data"))
}

/// Pack file names in `data/`.
fn packs(env: &Env) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in fs::read_dir(env.repo.join("data")).expect("data").flatten() {
        for f in fs::read_dir(d.path()).expect("subdir").flatten() {
            out.insert(f.file_name().to_string_lossy().into_owned());
        }
    }
    out
}

fn tree_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("below").display().to_string();
                out.insert(rel, fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn expected(files: &[File]) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|(n, s, l)| (n.to_string(), pseudo_random(*s, *l)))
        .collect()
}

/// vaultfs and restic both restore `snapshot` to exactly `files`.
fn restores(env: &Env, snapshot: &str, files: &[File]) {
    restores_from(env, env, snapshot, files);
}

/// [`restores`] for a vault copied from `made` (whose `src/` was backed up).
fn restores_from(env: &Env, made: &Env, snapshot: &str, files: &[File]) {
    let rel = src(made);
    let rel = rel.strip_prefix("/").expect("absolute").to_path_buf();
    for tool in ["vaultfs", "restic"] {
        let target = env
            .dir
            .path()
            .join(format!("restore-{tool}-{}", &snapshot[..8]));
        let t = target.display().to_string();
        if tool == "vaultfs" {
            env.run(&["restore", snapshot, "--target", &t]).ok();
        } else {
            restic_ok(env, &["restore", snapshot, "--target", &t]);
        }
        assert!(
            tree_files(&target.join(&rel)) == expected(files),
            "{tool} restore of {snapshot} differs"
        );
        fs::remove_dir_all(&target).expect("rm restore");
    }
}

/// Both checkers accept the vault, reading all data.
fn checks_clean(env: &Env) {
    restic_ok(env, &["check", "--read-data"]);
    let c = env.run(&["check", "--read-data"]);
    assert_eq!(c.code, 0, "vaultfs check: {}{}", c.stdout, c.stderr);
}

fn prune(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "prune"];
    all.extend_from_slice(args);
    env.run(&all).ok().json()
}

/// Forget backups 1 and 2 (their snapshot files, as `forget` would), prune,
/// and check what remains.
fn forget_and_prune(with_restic: bool) {
    let env = vault(with_restic);
    let snaps = restic_snapshots(&env);
    assert_eq!(snaps.len(), 4);
    if with_restic {
        // `forget` needs restic's lock (Env::restic runs without).
        let bin = std::env::var_os("VAULTFS_TEST_RESTIC").unwrap_or_else(|| "restic".into());
        let out = Command::new(bin)
            .args(["--no-cache", "-r"])
            .arg(&env.repo)
            .args(["forget", &snaps[0], &snaps[1]])
            .env("RESTIC_PASSWORD_FILE", &env.password_file)
            .output()
            .expect("restic forget");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        for s in &snaps[..2] {
            fs::remove_file(env.repo.join("snapshots").join(s)).expect("rm snapshot");
        }
    }
    let before = data_size(&env);
    let r = prune(&env, &[]);
    assert_eq!(r["snapshots"], 2, "{r}");
    // Data only the forgotten backups had: A, B and C.
    let only_removed: u64 = [A, B, C].iter().map(|f| f.2 as u64).sum();
    let after = data_size(&env);
    assert!(
        before - after >= only_removed,
        "data/ shrank by {} bytes, less than the {only_removed} only the removed snapshots used",
        before - after
    );
    // What remains is still all there: at least the remaining files.
    let needed: u64 = [SHARED, D, E, F].iter().map(|f| f.2 as u64).sum();
    assert!(after >= needed, "{after} < {needed}");
    checks_clean(&env);
    assert_eq!(restic_snapshots(&env), snaps[2..].to_vec());
    restores(&env, &snaps[2], BACKUPS[2]);
    restores(&env, &snaps[3], BACKUPS[3]);
    // A second prune finds nothing more to do.
    let again = prune(&env, &[]);
    assert_eq!(
        (again["repack"].as_u64(), again["delete"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    assert_eq!(data_size(&env), after);
}

#[test]
fn prune_frees_what_forgotten_snapshots_used() {
    forget_and_prune(false);
}

#[test]
fn prune_of_a_vault_made_by_restic() {
    forget_and_prune(true);
}

#[test]
fn dry_run_changes_nothing() {
    let env = vault(false);
    let snaps = restic_snapshots(&env);
    fs::remove_file(env.repo.join("snapshots").join(&snaps[0])).expect("rm");
    let before = env.fingerprint();
    let r = prune(&env, &["--dry-run"]);
    assert_eq!(r["dry_run"], true);
    assert!(
        r["delete"].as_u64().unwrap_or(0) + r["repack"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
    assert_eq!(env.fingerprint(), before);
    let text = env.run(&["prune", "-n"]).ok();
    assert!(text.stdout.contains("dry run"), "{}", text.stdout);
    assert_eq!(env.fingerprint(), before);
}

/// One data pack holding `X` (used) and `Y` (unused once backup 1 is
/// forgotten); backup 2 adds `Z`. The unused share of the vault is then
/// about Y / (X + Y + Z), 11%: the pack is repacked when the limit is below
/// that (5%, 0%) and kept above it (20%, unlimited), restic's rule (the
/// limit is a share of the vault after the prune). The pack is larger than
/// 1/25 of the pack size, so restic 0.14 would not merge it as small.
#[test]
fn partly_used_packs_follow_max_unused() {
    const X: File = ("x", 11, 800_000);
    const Y: File = ("y", 12, 150_000);
    const Z: File = ("z", 13, 450_000);
    let env = Env::init();
    backup(&env, &[X, Y], false);
    let first: BTreeSet<String> = packs(&env);
    backup(&env, &[X, Z], false);
    let snaps = restic_snapshots(&env);
    fs::remove_file(env.repo.join("snapshots").join(&snaps[0])).expect("rm");
    // The data pack of backup 1 is its largest pack.
    let data_pack = first
        .iter()
        .max_by_key(|p| {
            fs::metadata(env.repo.join("data").join(&p[..2]).join(p))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .expect("a pack")
        .clone();
    let share = Y.2 as f64 / (X.2 + Y.2 + Z.2) as f64;
    assert!(share > 0.05 && share < 0.2, "{share}");

    for (limit, repacked) in [
        ("unlimited", false),
        ("20%", false),
        ("5%", true),
        ("0%", true),
    ] {
        let r = prune(&env, &["--dry-run", "--max-unused", limit]);
        // Tree packs are always repacked when partly used (restic too):
        // count only whether the data pack is among the kept ones by
        // running the real prune on a copy of the vault.
        let copy = Env::new();
        copy_dir(&env.repo, &copy.repo);
        fs::copy(&env.password_file, &copy.password_file).expect("password");
        prune(&copy, &["--max-unused", limit]);
        let still = packs(&copy).contains(&data_pack);
        assert_eq!(still, !repacked, "--max-unused {limit}: {r}");
        checks_clean(&copy);
        restores_from(&copy, &env, &snaps[1], &[X, Z]);
        if repacked {
            assert!(
                data_size(&env) - data_size(&copy) >= Y.2 as u64,
                "--max-unused {limit}: Y's bytes not freed"
            );
        }
    }
    // A size limit: 1 KiB is less than Y, 1M more.
    for (limit, repacked) in [("1K", true), ("1M", false)] {
        let copy = Env::new();
        copy_dir(&env.repo, &copy.repo);
        fs::copy(&env.password_file, &copy.password_file).expect("password");
        prune(&copy, &["--max-unused", limit]);
        assert_eq!(packs(&copy).contains(&data_pack), !repacked, "{limit}");
    }
    // --max-repack-size below the pack's size keeps it at 0% too.
    let copy = Env::new();
    copy_dir(&env.repo, &copy.repo);
    fs::copy(&env.password_file, &copy.password_file).expect("password");
    prune(&copy, &["--max-unused", "0%", "--max-repack-size", "100K"]);
    assert!(packs(&copy).contains(&data_pack));
    checks_clean(&copy);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            fs::copy(&p, &t).expect("copy");
        }
    }
}

/// Blobs stored twice (the packs and index of a second backup of the same
/// files, with the same key, copied in) keep one copy: after the prune
/// restic lists every blob once.
#[test]
fn duplicates_keep_one_copy() {
    let env = Env::init();
    backup(&env, &[A, B], false);
    // The same data backed up into a second vault, whose packs and index
    // are then copied in: every blob is now in two packs.
    let other = Env::new();
    copy_dir(&env.repo, &other.repo);
    fs::copy(&env.password_file, &other.password_file).expect("password");
    // Emptied of data and backed up again, the copy (same key) has new
    // packs with the same blobs.
    for sub in ["index", "data", "snapshots"] {
        for f in files_below(&other.repo.join(sub)) {
            fs::remove_file(f).expect("rm");
        }
    }
    // Different pack ids: another order of the files.
    write_files(&other, &[B, A]);
    let s = src(&other).display().to_string();
    other.run(&["backup", "--host", "h", &s]).ok();
    let mut copied = 0;
    for sub in ["data", "index"] {
        for f in files_below(&other.repo.join(sub)) {
            let rel = f.strip_prefix(&other.repo).expect("below").to_path_buf();
            let to = env.repo.join(&rel);
            if !to.exists() {
                fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
                fs::copy(&f, &to).expect("copy");
                copied += 1;
            }
        }
    }
    assert!(copied > 0);
    let listed = restic_ok(&env, &["list", "blobs"]).stdout;
    let count = |s: &str| s.lines().filter(|l| l.starts_with("data ")).count();
    assert_eq!(count(&listed), 4, "each data blob listed twice: {listed}");
    prune(&env, &["--max-unused", "unlimited"]);
    let listed = restic_ok(&env, &["list", "blobs"]).stdout;
    assert_eq!(count(&listed), 2, "one copy each: {listed}");
    checks_clean(&env);
    let snaps = restic_snapshots(&env);
    restores(&env, &snaps[0], &[A, B]);
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A tree that cannot be read stops the prune before anything changes.
#[test]
fn unreadable_tree_stops_before_deleting() {
    let env = vault(false);
    let snaps = restic_snapshots(&env);
    fs::remove_file(env.repo.join("snapshots").join(&snaps[0])).expect("rm");
    // Damage the pack holding the newest snapshot's root tree (restic's
    // index says which it is).
    let snap = restic_ok(&env, &["cat", "snapshot", &snaps[3]]).json();
    let root = snap["tree"].as_str().expect("tree").to_string();
    let mut tree_pack = None;
    for id in restic_ok(&env, &["list", "index"])
        .stdout
        .split_whitespace()
    {
        let idx = restic_ok(&env, &["cat", "index", id]).json();
        for p in idx["packs"].as_array().expect("packs") {
            if p["blobs"]
                .as_array()
                .expect("blobs")
                .iter()
                .any(|b| b["id"] == root.as_str())
            {
                tree_pack = p["id"].as_str().map(str::to_owned);
            }
        }
    }
    let tree_pack = tree_pack.expect("root tree indexed");
    let path = env.repo.join("data").join(&tree_pack[..2]).join(&tree_pack);
    let mut data = fs::read(&path).expect("read");
    data[20] ^= 0x55;
    fs::write(&path, data).expect("write");
    let before = env.fingerprint();
    let r = env.run(&["prune", "--max-unused", "0%"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("nothing was deleted"), "{}", r.stderr);
    assert_eq!(env.fingerprint(), before);
}

/// Another process's lock makes prune fail with status 1, changing
/// nothing; a stale lock (its process gone) does not.
#[test]
fn prune_needs_the_exclusive_lock() {
    let env = vault(false);
    let mut holder = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep");
    let lock = |pid: u32| {
        format!(
            "{{\"time\":\"{}\",\"exclusive\":false,\"hostname\":\"{}\",\"username\":\"u\",\"pid\":{pid},\"uid\":0,\"gid\":0}}",
            chrono_now(),
            hostname()
        )
    };
    // A live shared lock of another process (restic's JSON), written
    // through the library.
    let repo = vaultfs_repo(&env);
    let live: serde_json::Value = serde_json::from_str(&lock(holder.id())).expect("json");
    repo.save_unpacked(vaultfs::backend::FileType::Lock, &live)
        .expect("lock");
    let before = env.fingerprint();
    let r = env.run(&["prune"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("locked"), "{}", r.stderr);
    assert_eq!(env.fingerprint(), before);
    let _ = holder.kill();
    let _ = holder.wait();
    // The holder is gone: its lock is stale and ignored.
    env.run(&["prune"]).ok();
    checks_clean(&env);
}

fn chrono_now() -> String {
    let out = Command::new("date")
        .arg("--iso-8601=seconds")
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn hostname() -> String {
    vaultfs::sys::hostname()
}

fn vaultfs_repo(env: &Env) -> vaultfs::repo::Repository {
    let backend = std::sync::Arc::new(vaultfs::backend::LocalBackend::new(&env.repo));
    vaultfs::repo::Repository::open(backend, b"correct horse").expect("open")
}

/// An interrupted prune — stopped after each stage, or killed at random
/// points — leaves a vault both checkers accept, whose snapshots restore;
/// a prune run again then finishes the job.
#[test]
fn interrupted_prune_loses_nothing() {
    let only_removed: u64 = [A, B, C].iter().map(|f| f.2 as u64).sum();
    for stage in ["packs", "index", "old-index"] {
        let env = vault(false);
        let snaps = restic_snapshots(&env);
        for s in &snaps[..2] {
            fs::remove_file(env.repo.join("snapshots").join(s)).expect("rm");
        }
        let before = data_size(&env);
        env.run(&["prune", "--test-stop-after", stage]).ok();
        checks_clean(&env);
        restores(&env, &snaps[2], BACKUPS[2]);
        restores(&env, &snaps[3], BACKUPS[3]);
        env.run(&["prune"]).ok();
        checks_clean(&env);
        assert!(before - data_size(&env) >= only_removed, "after {stage}");
        restores(&env, &snaps[3], BACKUPS[3]);
    }
    // kill -9 at a few points in time.
    let env = vault(false);
    let snaps = restic_snapshots(&env);
    for s in &snaps[..2] {
        fs::remove_file(env.repo.join("snapshots").join(s)).expect("rm");
    }
    for delay_ms in [5u64, 20, 40, 80, 150] {
        let mut child = env
            .cmd(&["prune", "--max-unused", "0%"])
            .spawn()
            .expect("prune");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        restic_ok(&env, &["check", "--read-data"]);
        restores(&env, &snaps[3], BACKUPS[3]);
    }
    env.run(&["prune"]).ok();
    checks_clean(&env);
    restores(&env, &snaps[2], BACKUPS[2]);
}

/// A backup and a prune started together, several times: the locks make
/// one of them fail (or both), never lose data.
#[test]
fn backup_racing_prune_loses_nothing() {
    let env = Env::init();
    // Many files, so the backup takes a while.
    let files: Vec<(String, u64, usize)> = (0..60)
        .map(|i| (format!("f{i:03}"), 100 + i, 120_000))
        .collect();
    let mut written: Vec<Vec<(String, u64, usize)>> = Vec::new();
    let mut prunes = 0u32;
    for round in 0..6u64 {
        let src = src(&env);
        let _ = fs::remove_dir_all(&src);
        fs::create_dir_all(&src).expect("mkdir");
        let these: Vec<(String, u64, usize)> = files
            .iter()
            .map(|(n, s, l)| (n.clone(), s + 1000 * (round % 2), *l))
            .collect();
        for (n, s, l) in &these {
            fs::write(src.join(n), pseudo_random(*s, *l)).expect("write");
        }
        // Forget the oldest snapshot so the prune has work.
        if round >= 2 {
            let snaps = restic_snapshots(&env);
            if let Some(s) = snaps.first() {
                fs::remove_file(env.repo.join("snapshots").join(s)).expect("rm");
            }
        }
        let s = src.display().to_string();
        let mut b = env.cmd(&["backup", "--host", "h", &s]);
        let mut p = env.cmd(&["prune", "--max-unused", "0%"]);
        // Either may start first, the other a moment later.
        let (bo, po) = if round % 2 == 0 {
            let backup = b.spawn().expect("backup");
            std::thread::sleep(Duration::from_millis(5 * round));
            let prune = p.spawn().expect("prune");
            (backup.wait_with_output(), prune.wait_with_output())
        } else {
            let prune = p.spawn().expect("prune");
            std::thread::sleep(Duration::from_millis(5 * round));
            let backup = b.spawn().expect("backup");
            (backup.wait_with_output(), prune.wait_with_output())
        };
        let (bo, po) = (bo.expect("backup"), po.expect("prune"));
        prunes += u32::from(po.status.success());
        eprintln!(
            "round {round}: backup {:?}, prune {:?}",
            bo.status.code(),
            po.status.code()
        );
        for (what, o) in [("backup", &bo), ("prune", &po)] {
            let code = o.status.code().unwrap_or(-1);
            assert!(
                code == 0 || String::from_utf8_lossy(&o.stderr).contains("locked"),
                "{what} exited {code}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        if bo.status.success() {
            written.push(these);
        }
        checks_clean(&env);
    }
    assert!(prunes > 0, "no prune ran");
    assert!(!written.is_empty(), "no backup ran");
    // Every snapshot restores to one of the file sets backed up.
    let rel = src(&env);
    let rel = rel.strip_prefix("/").expect("absolute").to_path_buf();
    for snap in restic_snapshots(&env) {
        let target = env.dir.path().join(format!("r-{}", &snap[..8]));
        let t = target.display().to_string();
        env.run(&["restore", &snap, "--target", &t]).ok();
        let got = tree_files(&target.join(&rel));
        let matches = written.iter().any(|set| {
            got.len() == set.len()
                && set
                    .iter()
                    .all(|(n, s, l)| got.get(n).is_some_and(|d| *d == pseudo_random(*s, *l)))
        });
        assert!(
            matches,
            "snapshot {snap} restores to none of the backed-up sets"
        );
    }
}

/// Many small, fully used packs (one per backup of a small file) are
/// merged when there are at least 10 of them, as restic 0.14 does; fewer
/// stay as they are.
#[test]
fn small_packs_are_merged_from_ten_on() {
    let env = Env::init();
    let files: Vec<File> = [
        ("s0", 20),
        ("s1", 21),
        ("s2", 22),
        ("s3", 23),
        ("s4", 24),
        ("s5", 25),
        ("s6", 26),
        ("s7", 27),
        ("s8", 28),
        ("s9", 29),
        ("s10", 30),
        ("s11", 31),
    ]
    .iter()
    .map(|(n, s)| (*n, *s as u64, 20_000))
    .collect();
    for i in 0..files.len() {
        backup(&env, &files[..=i], false);
    }
    let before = packs(&env).len();
    let r = prune(&env, &[]);
    assert_eq!(r["delete"], 0, "{r}");
    let after = packs(&env).len();
    assert!(after <= 2, "{before} packs became {after}");
    checks_clean(&env);
    let snaps = restic_snapshots(&env);
    restores(&env, &snaps[11], &files);
    restores(&env, &snaps[4], &files[..5]);
    // Two packs now: nothing left to merge.
    let again = prune(&env, &[]);
    assert_eq!(again["repack"], 0, "{again}");
}

/// Every blob's entry in restic's index: (type, uncompressed length).
fn restic_index_entries(env: &Env) -> Vec<(String, Option<u64>)> {
    let mut out = Vec::new();
    for id in restic_ok(env, &["list", "index"]).stdout.split_whitespace() {
        let idx = restic_ok(env, &["cat", "index", id]).json();
        for p in idx["packs"].as_array().expect("packs") {
            for b in p["blobs"].as_array().expect("blobs") {
                out.push((
                    b["type"].as_str().expect("type").to_string(),
                    b["uncompressed_length"].as_u64(),
                ));
            }
        }
    }
    out
}

/// `--repack-uncompressed` compresses what a backup with `--compression
/// off` stored as it was (restic's index then gives every blob an
/// uncompressed length); without it data blobs stay as they are.
#[test]
fn repack_uncompressed_compresses() {
    let env = Env::init();
    let src = src(&env);
    fs::create_dir_all(&src).expect("mkdir");
    let text: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {} of a compressible file\n", i % 1000).into_bytes())
        .collect();
    fs::write(src.join("t.txt"), &text).expect("write");
    let s = src.display().to_string();
    env.run(&["backup", "--compression", "off", &s]).ok();
    let data = |env: &Env| -> Vec<Option<u64>> {
        restic_index_entries(env)
            .into_iter()
            .filter(|(t, _)| t == "data")
            .map(|(_, u)| u)
            .collect()
    };
    assert!(data(&env).iter().all(Option::is_none));
    prune(&env, &[]);
    assert!(
        data(&env).iter().all(Option::is_none),
        "copied as they were"
    );
    let before = data_size(&env);
    let r = prune(&env, &["--repack-uncompressed"]);
    assert!(r["repack"].as_u64().unwrap_or(0) > 0, "{r}");
    let after = data(&env);
    assert!(
        !after.is_empty() && after.iter().all(Option::is_some),
        "{after:?}"
    );
    assert!(data_size(&env) < before / 2);
    checks_clean(&env);
    let target = env.dir.path().join("r");
    let t = target.display().to_string();
    restic_ok(&env, &["restore", "latest", "--target", &t]);
    let rel = src.strip_prefix("/").expect("absolute");
    assert!(fs::read(target.join(rel).join("t.txt")).expect("restored") == text);
    // Nothing left to compress.
    let again = prune(&env, &["--repack-uncompressed"]);
    assert_eq!(again["repack"], 0, "{again}");
}
