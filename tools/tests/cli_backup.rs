//! End-to-end tests of `backup` and of the commands that read snapshots
//! back (`snapshots` with real snapshots, `ls`, `cat`, `restore`).
//!
//! The snapshot contents are checked through the library as well as through
//! the CLI, so a backup test does not depend on `ls` or `restore` working.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{Env, Run, run_cmd};
use vaultfs::backend::LocalBackend;
use vaultfs::repo::Repository;
use vaultfs::snapshot::find_snapshot;
use vaultfs::snapshot::select::SnapshotFilter;

/// Deterministic, poorly compressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A source tree: `src/a.txt`, `src/sub/b.bin`, `src/sub/c.txt`,
/// `src/skip.tmp`, `src/cache/x.txt`.
struct Source {
    root: PathBuf,
    files: BTreeMap<&'static str, Vec<u8>>,
}

impl Source {
    fn new(env: &Env) -> Source {
        let root = env.dir.path().join("src");
        let files: BTreeMap<&'static str, Vec<u8>> = [
            ("a.txt", b"hello vault\n".to_vec()),
            ("sub/b.bin", noise(300_000, 7)),
            ("sub/c.txt", b"see\n".to_vec()),
            ("skip.tmp", b"temporary\n".to_vec()),
            ("cache/x.txt", b"cached\n".to_vec()),
        ]
        .into_iter()
        .collect();
        for (name, data) in &files {
            let p = root.join(name);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, data).expect("write");
        }
        Source { root, files }
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    fn root_s(&self) -> String {
        self.root.display().to_string()
    }
}

/// Relative file paths (below the source root) in the latest snapshot,
/// read through the library.
fn snapshot_files(env: &Env, src: &Source) -> Vec<String> {
    let backend = Arc::new(LocalBackend::new(&env.repo));
    let repo = Repository::open(backend, b"correct horse").expect("open");
    repo.load_index().expect("index");
    let (_, snap) = find_snapshot(&repo, "latest", &SnapshotFilter::default()).expect("latest");
    let mut out = Vec::new();
    walk_tree(&repo, &snap.tree, String::new(), &mut out);
    let prefix = format!("{}/", src.root_s());
    out.into_iter()
        .filter_map(|p| p.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

fn walk_tree(repo: &Repository, id: &vaultfs::Id, prefix: String, out: &mut Vec<String>) {
    let tree = repo.load_tree(id).expect("tree");
    for n in &tree.nodes {
        let path = format!("{prefix}/{}", n.name);
        match &n.subtree {
            Some(sub) => walk_tree(repo, sub, path, out),
            None => out.push(path),
        }
    }
}

fn backup_json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["backup", "--json"];
    all.extend_from_slice(args);
    env.run(&all).ok().json()
}

#[test]
fn backup_prints_a_restic_like_summary() {
    let env = Env::init();
    let src = Source::new(&env);
    let r = env.run(&["backup", &src.root_s()]).ok();
    for needle in [
        "Files:",
        "new,",
        "Dirs:",
        "Added to the repository:",
        "stored)",
        "processed 5 files",
        " saved",
    ] {
        assert!(
            r.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.trim_end().ends_with("saved"), "{}", r.stdout);
    assert_eq!(env.count("locks"), 0, "the lock is released");
    let mut files = snapshot_files(&env, &src);
    files.sort();
    let mut want: Vec<String> = src.files.keys().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(files, want);
}

#[test]
fn backup_json_tags_host_and_snapshot_filters() {
    let env = Env::init();
    let src = Source::new(&env);
    let v = backup_json(
        &env,
        &[
            &src.root_s(),
            "--tag",
            "daily,home",
            "--tag",
            "x",
            "--host",
            "testhost",
        ],
    );
    let id = v["snapshot_id"].as_str().expect("snapshot_id").to_owned();
    assert_eq!(id.len(), 64);
    assert_eq!(v["files_new"], 5);
    assert_eq!(v["total_files_processed"], 5);
    assert_eq!(v["warnings"], serde_json::json!([]));

    let list = env.run(&["snapshots", "--json"]).ok().json();
    let s = &list[0];
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["short_id"], &id[..8]);
    assert_eq!(s["hostname"], "testhost");
    assert_eq!(s["tags"], serde_json::json!(["daily", "home", "x"]));
    assert_eq!(s["paths"], serde_json::json!([src.root_s()]));
    assert!(s["tree"].is_string() && s["time"].is_string());

    let count = |args: &[&str]| {
        let mut all = vec!["snapshots", "--json"];
        all.extend_from_slice(args);
        env.run(&all).ok().json().as_array().map(Vec::len)
    };
    assert_eq!(count(&["--tag", "daily,x"]), Some(1));
    assert_eq!(count(&["--tag", "daily,nope"]), Some(0));
    assert_eq!(count(&["--tag", "nope", "--tag", "home"]), Some(1));
    assert_eq!(count(&["--host", "testhost"]), Some(1));
    assert_eq!(count(&["--host", "other"]), Some(0));
    assert_eq!(count(&["--path", &src.root_s()]), Some(1));
    assert_eq!(count(&["--path", "/elsewhere"]), Some(0));
    assert_eq!(count(&[&id[..6]]), Some(1));
    assert_eq!(count(&["latest"]), Some(1));

    let table = env.run(&["snapshots"]).ok().stdout;
    assert!(table.contains(&id[..8]), "{table}");
    assert!(
        table.contains("testhost") && table.contains("daily,home,x"),
        "{table}"
    );
    assert!(table.contains(&src.root_s()), "{table}");
    assert!(table.trim_end().ends_with("1 snapshot"), "{table}");
}

#[test]
fn second_backup_uses_the_parent_and_reads_nothing_new() {
    let env = Env::init();
    let src = Source::new(&env);
    let first = backup_json(&env, &[&src.root_s()]);
    let second = backup_json(&env, &[&src.root_s()]);
    assert_eq!(second["parent"], first["snapshot_id"]);
    assert_eq!(second["files_new"], 0);
    assert_eq!(second["files_changed"], 0);
    assert_eq!(second["files_unmodified"], 5);
    assert_eq!(second["data_blobs"], 0);
    // --force reads every file again but still stores nothing new.
    let third = backup_json(&env, &[&src.root_s(), "--force"]);
    assert_eq!(third["total_files_processed"], 5);
    assert_eq!(third["data_blobs"], 0);
    // An explicit parent.
    let first_id = first["snapshot_id"].as_str().expect("id");
    let fourth = backup_json(&env, &[&src.root_s(), "--parent", &first_id[..8]]);
    assert_eq!(fourth["parent"], first["snapshot_id"]);
    let list = env.run(&["snapshots", "--json"]).ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(4));
}

#[test]
fn excludes_includes_and_exclude_file() {
    let env = Env::init();
    let src = Source::new(&env);
    let exclude_file = env.dir.path().join("excludes");
    fs::write(&exclude_file, "# comment\n\n  cache  \n").expect("write");
    let ef = exclude_file.display().to_string();
    backup_json(&env, &[&src.root_s(), "-e", "*.tmp", "--exclude-file", &ef]);
    let mut files = snapshot_files(&env, &src);
    files.sort();
    assert_eq!(files, ["a.txt", "sub/b.bin", "sub/c.txt"]);

    backup_json(&env, &[&src.root_s(), "--exclude-regex", r"\.bin$"]);
    let files = snapshot_files(&env, &src);
    assert!(!files.iter().any(|f| f.ends_with(".bin")), "{files:?}");
    assert!(files.iter().any(|f| f == "skip.tmp"), "{files:?}");

    backup_json(&env, &[&src.root_s(), "-i", "*.txt"]);
    let mut files = snapshot_files(&env, &src);
    files.sort();
    assert_eq!(files, ["a.txt", "cache/x.txt", "sub/c.txt"]);

    backup_json(&env, &[&src.root_s(), "--include-regex", "/sub/"]);
    let mut files = snapshot_files(&env, &src);
    files.sort();
    assert_eq!(files, ["sub/b.bin", "sub/c.txt"]);
}

#[test]
fn compression_modes_all_back_up() {
    for mode in ["off", "max", "5", "auto"] {
        let env = Env::init();
        let src = Source::new(&env);
        let v = backup_json(&env, &[&src.root_s(), "--compression", mode]);
        assert_eq!(v["files_new"], 5, "{mode}");
    }
}

#[test]
fn backup_of_a_missing_path_fails() {
    let env = Env::init();
    let missing = env.dir.path().join("missing").display().to_string();
    let r = env.run(&["backup", &missing]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.starts_with("vaultfs: ") || r.stderr.contains("warning"));
}

/// Makes a file and a directory that the backup cannot read. As root,
/// permissions do not stop reads, so the commands then run as `nobody`.
fn unreadable_setup(env: &Env, src: &Source) -> Option<(u32, u32)> {
    let secret = src.root.join("secret.txt");
    fs::write(&secret, b"no").expect("write");
    let locked = src.root.join("locked");
    fs::create_dir(&locked).expect("mkdir");
    fs::write(locked.join("inner"), b"x").expect("write");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("chmod");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    if !owned_by_root(&src.root) {
        return None;
    }
    // Everything else must be reachable by nobody.
    for p in [
        env.dir.path(),
        &src.root,
        &src.root.join("sub"),
        &src.root.join("cache"),
    ] {
        fs::set_permissions(p, fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    for f in src.files.keys() {
        fs::set_permissions(src.root.join(f), fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    fs::set_permissions(&env.password_file, fs::Permissions::from_mode(0o644)).expect("chmod");
    Some((65534, 65534))
}

/// A directory this process just created belongs to its effective user.
fn owned_by_root(fresh: &Path) -> bool {
    fs::metadata(fresh)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn run_as(env: &Env, who: Option<(u32, u32)>, args: &[&str]) -> Run {
    let mut c: Command = env.cmd(args);
    if let Some((uid, gid)) = who {
        c.uid(uid).gid(gid);
    }
    run_cmd(&mut c)
}

#[test]
fn unreadable_files_are_warnings_with_exit_3() {
    let env = Env::new();
    let src = Source::new(&env);
    let who = unreadable_setup(&env, &src);
    run_as(&env, who, &["init"]).ok();
    let r = run_as(&env, who, &["backup", &src.root_s()]);
    assert_eq!(r.code, 3, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("secret.txt"), "{}", r.stderr);
    assert!(r.stderr.contains("locked"), "{}", r.stderr);
    assert!(r.stdout.contains(" saved"), "{}", r.stdout);

    let r = run_as(&env, who, &["backup", "--json", &src.root_s()]);
    assert_eq!(r.code, 3);
    let v = r.json();
    assert!(
        v["warnings"].as_array().is_some_and(|w| w.len() >= 2),
        "{v}"
    );
    let list = run_as(&env, who, &["snapshots", "--json"]).ok().json();
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(2),
        "snapshots were written"
    );
    let mut files = snapshot_files(&env, &src);
    files.sort();
    assert!(files.contains(&"a.txt".to_string()), "{files:?}");
    assert!(files.contains(&"sub/b.bin".to_string()), "{files:?}");
}

// ---- ls, cat, restore -------------------------------------------------

fn backed_up() -> (Env, Source) {
    let env = Env::init();
    let src = Source::new(&env);
    env.run(&["backup", "-q", &src.root_s()]).ok();
    (env, src)
}

#[test]
fn ls_lists_paths_long_and_json() {
    let (env, src) = backed_up();
    let r = env.run(&["ls", "latest"]).ok();
    for f in src.files.keys() {
        assert!(
            r.stdout.lines().any(|l| l == src.path(f)),
            "{f}: {}",
            r.stdout
        );
    }
    assert!(
        r.stdout.lines().any(|l| l == src.path("sub")),
        "{}",
        r.stdout
    );

    let r = env
        .run(&["ls", &format!("latest:{}", src.path("sub"))])
        .ok();
    assert!(
        r.stdout.lines().any(|l| l == src.path("sub/b.bin")),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("a.txt"), "{}", r.stdout);

    let r = env.run(&["ls", "-l", "latest"]).ok();
    let line = r
        .stdout
        .lines()
        .find(|l| l.ends_with("/sub/b.bin"))
        .expect("b.bin in long listing");
    assert!(line.starts_with("-rw"), "{line}");
    assert!(line.contains("300000"), "{line}");
    let dir_line = r
        .stdout
        .lines()
        .find(|l| l.ends_with("/sub"))
        .expect("sub in long listing");
    assert!(dir_line.starts_with('d'), "{dir_line}");

    let r = env.run(&["ls", "--json", "latest"]).ok();
    let values: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON line"))
        .collect();
    assert_eq!(values[0]["struct_type"], "snapshot");
    let node = values
        .iter()
        .find(|v| v["path"] == src.path("a.txt"))
        .expect("a.txt node");
    assert_eq!(node["struct_type"], "node");
    assert_eq!(node["type"], "file");
    assert_eq!(node["size"], 12);

    let r = env.run(&["ls", "latest:/no/such/path"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("vaultfs: "), "{}", r.stderr);
}

#[test]
fn cat_prints_file_content() {
    let (env, src) = backed_up();
    for (name, data) in &src.files {
        let mut c = env.cmd(&["cat", &format!("latest:{}", src.path(name))]);
        let out = c.output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert!(out.stdout == *data, "{name}: content differs");
    }
    let id = env.run(&["snapshots", "--json"]).ok().json()[0]["short_id"]
        .as_str()
        .expect("short id")
        .to_owned();
    let r = env
        .run(&["cat", &format!("{id}:{}", src.path("a.txt"))])
        .ok();
    assert_eq!(r.stdout, "hello vault\n");

    for bad in [
        format!("latest:{}", src.path("missing")),
        format!("latest:{}", src.path("sub")),
        "latest".to_string(),
        format!("ffffffff:{}", src.path("a.txt")),
    ] {
        let r = env.run(&["cat", &bad]);
        assert_eq!(r.code, 1, "{bad}");
        assert!(r.stderr.starts_with("vaultfs: "), "{bad}: {}", r.stderr);
    }
}

#[test]
fn cat_into_a_closed_pipe_is_success() {
    let (env, src) = backed_up();
    let mut child = env
        .cmd(&["cat", &format!("latest:{}", src.path("sub/b.bin"))])
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 16];
    if let Some(mut out) = child.stdout.take() {
        out.read_exact(&mut first).expect("read");
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

fn tree_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("below").display().to_string();
                out.insert(rel, fs::read(&p).expect("read"));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

#[test]
fn restore_whole_snapshot_and_subtree() {
    let (env, src) = backed_up();
    let target = env.dir.path().join("restored");
    let t = target.display().to_string();
    env.run(&["restore", "latest", "--target", &t]).ok();
    let got = tree_files(&target.join(src.root.strip_prefix("/").expect("absolute")));
    let want: BTreeMap<String, Vec<u8>> = src
        .files
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    assert_eq!(got, want);

    let target2 = env.dir.path().join("sub-only");
    let t2 = target2.display().to_string();
    env.run(&[
        "restore",
        &format!("latest:{}", src.path("sub")),
        "--target",
        &t2,
    ])
    .ok();
    let got = tree_files(&target2);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["b.bin", "c.txt"]);
    assert!(got["b.bin"] == src.files["sub/b.bin"]);
}

#[test]
fn restore_filters_dry_run_and_overwrite() {
    let (env, src) = backed_up();
    let sel = format!("latest:{}", src.root_s());

    let t = env.dir.path().join("inc");
    let ts = t.display().to_string();
    env.run(&["restore", &sel, "--target", &ts, "--include", "*.txt"])
        .ok();
    let got: Vec<String> = tree_files(&t).into_keys().collect();
    assert_eq!(got, ["a.txt", "cache/x.txt", "sub/c.txt"]);

    let t = env.dir.path().join("exc");
    let ts = t.display().to_string();
    env.run(&[
        "restore",
        &sel,
        "--target",
        &ts,
        "--exclude",
        "sub",
        "--exclude-regex",
        r"\.tmp$",
    ])
    .ok();
    let got: Vec<String> = tree_files(&t).into_keys().collect();
    assert_eq!(got, ["a.txt", "cache/x.txt"]);

    let t = env.dir.path().join("dry");
    let ts = t.display().to_string();
    let r = env
        .run(&["restore", &sel, "--target", &ts, "--dry-run", "--json"])
        .ok();
    assert!(!r.stdout.trim().is_empty());
    for line in r.stdout.lines() {
        let _: serde_json::Value = serde_json::from_str(line).expect("JSON line");
    }
    assert!(tree_files(&t).is_empty(), "dry run wrote files");

    // Overwrite policies against a locally modified file.
    let t = env.dir.path().join("ow");
    let ts = t.display().to_string();
    env.run(&["restore", &sel, "--target", &ts]).ok();
    let a = t.join("a.txt");
    fs::write(&a, b"local change").expect("write");
    env.run(&["restore", &sel, "--target", &ts, "--overwrite", "never"])
        .ok();
    assert_eq!(fs::read(&a).expect("read"), b"local change");
    env.run(&["restore", &sel, "--target", &ts, "--overwrite", "always"])
        .ok();
    assert_eq!(fs::read(&a).expect("read"), b"hello vault\n");
    fs::write(&a, b"local change").expect("write");
    env.run(&[
        "restore",
        &sel,
        "--target",
        &ts,
        "--overwrite",
        "if-changed",
    ])
    .ok();
    assert_eq!(fs::read(&a).expect("read"), b"hello vault\n");

    let r = env.run(&["restore", &sel, "--target", &ts, "--overwrite", "sometimes"]);
    assert_eq!(r.code, 2, "invalid value is a usage error");
}

/// The largest pack file: the one holding the 300 kB of noise.
fn largest_pack(env: &Env) -> PathBuf {
    let mut packs = Vec::new();
    for sub in fs::read_dir(env.repo.join("data")).expect("data").flatten() {
        for f in fs::read_dir(sub.path()).into_iter().flatten().flatten() {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            packs.push((len, f.path()));
        }
    }
    packs.sort();
    packs.pop().expect("a pack").1
}

#[test]
fn damaged_data_fails_restore_cat_and_dry_run_with_exit_1() {
    let (env, src) = backed_up();
    let pack = largest_pack(&env);
    fs::set_permissions(&pack, fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut data = fs::read(&pack).expect("read pack");
    assert!(data.len() > 200_000);
    for b in &mut data[100_000..100_016] {
        *b ^= 0xff;
    }
    fs::write(&pack, &data).expect("write pack");
    let sel = format!("latest:{}", src.root_s());

    let t = env.dir.path().join("damaged");
    let ts = t.display().to_string();
    let r = env.run(&["restore", &sel, "--target", &ts]);
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("b.bin"), "{}", r.stderr);
    assert!(r.stderr.contains("vaultfs: "), "{}", r.stderr);
    assert!(r.stdout.contains("restored"), "{}", r.stdout);
    let got = tree_files(&t);
    assert_eq!(
        got.get("a.txt").map(Vec::as_slice),
        Some(&b"hello vault\n"[..])
    );
    assert!(!got.contains_key("sub/b.bin"), "no file with wrong bytes");

    let t = env.dir.path().join("damaged-dry");
    let ts = t.display().to_string();
    let r = env.run(&["restore", &sel, "--target", &ts, "--dry-run", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["message_type"], "summary");
    assert_eq!(v["error_count"], 1);
    assert_eq!(v["dry_run"], true);

    let r = env.run(&["cat", &format!("latest:{}", src.path("sub/b.bin"))]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("MAC"), "{}", r.stderr);
    // Files in other blobs still read fine.
    let r = env
        .run(&["cat", &format!("latest:{}", src.path("a.txt"))])
        .ok();
    assert_eq!(r.stdout, "hello vault\n");
}

#[test]
fn latest_honours_snapshot_filters() {
    let env = Env::init();
    let src = Source::new(&env);
    env.run(&["backup", "-q", "--host", "one", &src.root_s()])
        .ok();
    fs::write(src.root.join("a.txt"), b"changed\n").expect("write");
    env.run(&["backup", "-q", "--host", "two", &src.root_s()])
        .ok();
    let a = format!("latest:{}", src.path("a.txt"));
    assert_eq!(env.run(&["cat", &a]).ok().stdout, "changed\n");
    let r = env.run(&["cat", &a, "--host", "one"]).ok();
    assert_eq!(r.stdout, "hello vault\n");
    let r = env.run(&["ls", "latest", "--host", "nope"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("vaultfs: "), "{}", r.stderr);

    // Quiet listings are paths only; a named path is listed itself first.
    let r = env
        .run(&["ls", "-q", &format!("latest:{}", src.path("sub"))])
        .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            src.path("sub"),
            src.path("sub/b.bin"),
            src.path("sub/c.txt")
        ]
    );
}
