//! `restore --archive` and `restore --pipe-to`: a snapshot of a tree with
//! long (> 100 and > 255 bytes) and non-ASCII names, modes, symlinks, a
//! hard link, sub-second mtimes, a several-MiB file and an empty directory,
//! written as tar, tar.gz and zip, then listed and extracted by the real
//! tools — GNU tar, bsdtar (libarchive) and Info-ZIP unzip — and compared
//! with `vaultfs ls --json` and with the source tree itself.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Env;
use sha2::{Digest, Sha256};

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

/// Is `tool` installed? In CI it must be (the panic names the Debian
/// package); a local run without it skips the test with a notice.
fn have(tool: &str, package: &str) -> bool {
    // Info-ZIP's unzip knows `-v`, not `--version`.
    let arg = if tool == "unzip" { "-v" } else { "--version" };
    let ok = Command::new(tool)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI (Debian package {package})"
        );
        eprintln!("notice: {tool} not found (Debian: {package}); skipping this test");
    }
    ok
}

/// Runs a tool in UTC with a UTF-8 locale (names printed as they are).
fn tool(cmd: &str, args: &[&str], dir: &Path) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const LONG_DIR: usize = 120;
const LONGER_DIR: usize = 150;

/// The source tree; returns its root.
fn make_source(base: &Path) -> PathBuf {
    let root = base.join("src");
    let long = "l".repeat(LONG_DIR);
    let deep = root.join("deep").join(&long).join("m".repeat(LONGER_DIR));
    fs::create_dir_all(&deep).expect("mkdir");
    fs::create_dir_all(root.join("empty")).expect("mkdir");
    fs::create_dir_all(root.join("d")).expect("mkdir");
    // A path of more than 255 bytes, a file of several MiB.
    fs::write(deep.join("big.bin"), noise(3 << 20, 9)).expect("write");
    fs::write(root.join("d/üñíçødé-日本.txt"), "héllo\n").expect("write");
    fs::write(root.join("d/empty.txt"), "").expect("write");
    fs::write(root.join("d/exec.sh"), "#!/bin/sh\n").expect("write");
    fs::set_permissions(root.join("d/exec.sh"), fs::Permissions::from_mode(0o750)).expect("chmod");
    fs::write(root.join("d/h1"), "linked\n").expect("write");
    fs::hard_link(root.join("d/h1"), root.join("d/h2")).expect("link");
    std::os::unix::fs::symlink("d/üñíçødé-日本.txt", root.join("link")).expect("symlink");
    std::os::unix::fs::symlink(format!("deep/{long}"), root.join("longlink")).expect("symlink");
    // Sub-second mtimes, one long ago; directories last, deepest first.
    let at = |s: u64, ns: u32| UNIX_EPOCH + Duration::new(s, ns);
    let times = [
        ("d/exec.sh", at(1_580_702_706, 123_456_789)),
        ("d/empty.txt", at(1_700_000_001, 5)),
        ("d/üñíçødé-日本.txt", at(1_700_000_002, 500_000_000)),
        ("d/h1", at(1_700_000_003, 999_999_999)),
    ];
    for (p, t) in times {
        set_mtime(&root.join(p), t);
    }
    set_mtime(&deep.join("big.bin"), at(1_700_000_004, 250_000_000));
    set_mtime(&deep, at(1_700_000_005, 1));
    set_mtime(deep.parent().expect("parent"), at(1_700_000_006, 2));
    for (p, s) in [("deep", 7), ("empty", 8), ("d", 9)] {
        set_mtime(&root.join(p), at(1_700_000_000 + s, 10_000_000 * s as u32));
    }
    root
}

fn set_mtime(p: &Path, t: SystemTime) {
    fs::File::open(p)
        .and_then(|f| f.set_modified(t))
        .unwrap_or_else(|e| panic!("mtime of {}: {e}", p.display()));
}

/// What the comparisons look at, per relative path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    kind: char,
    size: u64,
    mode: u32,
    mtime: (i64, u32),
    target: String,
    sha: String,
    inode: u64,
}

fn scan(root: &Path) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    scan_dir(root, root, &mut out);
    out
}

fn scan_dir(root: &Path, dir: &Path, out: &mut BTreeMap<String, Seen>) {
    for e in fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        let md = fs::symlink_metadata(&p).expect("lstat");
        let rel = p
            .strip_prefix(root)
            .expect("below")
            .to_string_lossy()
            .into_owned();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else {
            'f'
        };
        out.insert(
            rel,
            Seen {
                kind,
                size: if kind == 'f' { md.len() } else { 0 },
                mode: md.mode() & 0o7777,
                mtime: (md.mtime(), md.mtime_nsec() as u32),
                target: if kind == 'l' {
                    fs::read_link(&p)
                        .expect("readlink")
                        .to_string_lossy()
                        .into_owned()
                } else {
                    String::new()
                },
                sha: if kind == 'f' {
                    hex::encode(Sha256::digest(fs::read(&p).expect("read")))
                } else {
                    String::new()
                },
                inode: md.ino(),
            },
        );
        if kind == 'd' {
            scan_dir(root, &p, out);
        }
    }
}

/// How exactly an extractor restores what the archive holds.
struct Expect {
    /// mtimes to the nanosecond (tar), or to the second (zip).
    nanos: bool,
    /// Hard links come back as links (tar), or as copies (zip).
    hardlinks: bool,
}

/// The extracted tree matches the source: names, types, bytes, modes,
/// symlink targets, mtimes (not of symlinks), hard links.
#[track_caller]
fn assert_same_tree(src: &Path, got: &Path, how: &Expect) {
    let want = scan(src);
    let have = scan(got);
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        have.keys().collect::<Vec<_>>(),
        "names differ"
    );
    for (name, w) in &want {
        let h = &have[name];
        assert_eq!(
            (w.kind, w.size, &w.sha, w.mode, &w.target),
            (h.kind, h.size, &h.sha, h.mode, &h.target),
            "{name}"
        );
        if w.kind != 'l' {
            let wm = if how.nanos { w.mtime } else { (w.mtime.0, 0) };
            let hm = if how.nanos { h.mtime } else { (h.mtime.0, 0) };
            assert_eq!(wm, hm, "mtime of {name}");
        }
    }
    let (h1, h2) = (&have["d/h1"], &have["d/h2"]);
    assert_eq!(h1.inode == h2.inode, how.hardlinks, "d/h1 and d/h2");
}

/// `vaultfs ls --json SNAPSHOT:PATH`: relative path -> (type, size,
/// mtime as (secs, nanos)).
fn vaultfs_ls(env: &Env, src: &Path) -> BTreeMap<String, (String, u64, (i64, u32))> {
    let prefix = format!("{}/", src.display());
    let r = env
        .run(&["ls", "--json", &format!("latest:{}", src.display())])
        .ok();
    let mut out = BTreeMap::new();
    for line in r.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let Some(rel) = v["path"].as_str().and_then(|p| p.strip_prefix(&prefix)) else {
            continue;
        };
        let t = chrono::DateTime::parse_from_rfc3339(v["mtime"].as_str().expect("mtime"))
            .expect("rfc3339");
        out.insert(
            rel.to_string(),
            (
                v["type"].as_str().expect("type").to_string(),
                v["size"].as_u64().unwrap_or(0),
                (t.timestamp(), t.timestamp_subsec_nanos()),
            ),
        );
    }
    out
}

/// Backs up a fresh source tree; returns the env, the source root and the
/// `SNAPSHOT:PATH` of it.
fn setup() -> (Env, PathBuf, String) {
    let env = Env::init();
    let src = make_source(env.dir.path());
    env.run(&["backup", &src.display().to_string()]).ok();
    let target = format!("latest:{}", src.display());
    (env, src, target)
}

/// `restore TARGET --archive OUT` in UTC (zip's DOS times are local).
fn archive(env: &Env, target: &str, out: &Path, extra: &[&str]) {
    let mut c = env.cmd(
        &[
            &["restore", target, "--archive", &out.display().to_string()][..],
            extra,
        ]
        .concat(),
    );
    c.env("TZ", "UTC");
    common::run_cmd(&mut c).ok();
}

/// Parses GNU tar's `--full-time -tv` lines: name -> (size, mtime).
fn gnu_tar_list(listing: &str) -> BTreeMap<String, (u64, (i64, u32))> {
    let mut out = BTreeMap::new();
    for line in listing.lines() {
        // mode owner/group size date time name [-> target | link to name];
        // none of the test's names holds a space.
        let f: Vec<&str> = line.split_whitespace().collect();
        let (size, date, time) = (f[2], f[3], f[4]);
        let rest = f[5..].join(" ");
        let name = rest
            .split(" -> ")
            .next()
            .and_then(|n| n.split(" link to ").next())
            .expect("name")
            .trim_end_matches('/')
            .to_string();
        let t = chrono::NaiveDateTime::parse_from_str(
            &format!("{date} {time}"),
            "%Y-%m-%d %H:%M:%S%.f",
        )
        .unwrap_or_else(|e| panic!("time in {line:?}: {e}"))
        .and_utc();
        out.insert(
            name,
            (
                size.parse().expect("size"),
                (t.timestamp(), t.timestamp_subsec_nanos()),
            ),
        );
    }
    out
}

#[test]
fn tar_lists_and_extracts_like_the_source() {
    if !have("tar", "tar") {
        return;
    }
    let (env, src, target) = setup();
    let dir = env.dir.path();
    let ls = vaultfs_ls(&env, &src);
    for name in ["out.tar", "out.tar.gz"] {
        let out = dir.join(name);
        archive(&env, &target, &out, &[]);
        let listing = text(&tool(
            "tar",
            &["--full-time", "--quoting-style=literal", "-tvf", name],
            dir,
        ));
        let listed = gnu_tar_list(&listing);
        assert_eq!(
            listed.keys().collect::<Vec<_>>(),
            ls.keys().collect::<Vec<_>>(),
            "{name}: names\n{listing}"
        );
        for (n, (kind, size, mtime)) in &ls {
            let (lsize, lmtime) = listed[n];
            // A hard link's entry has no data of its own.
            if kind == "file" && n != "d/h2" {
                assert_eq!(lsize, *size, "{name}: size of {n}");
            }
            assert_eq!(lmtime, *mtime, "{name}: mtime of {n}");
        }
        assert!(
            listing.contains("d/h2 link to d/h1"),
            "{name}: hard link\n{listing}"
        );
        let x = dir.join(format!("x-{name}"));
        fs::create_dir(&x).expect("mkdir");
        tool(
            "tar",
            &[
                "-xf",
                &out.display().to_string(),
                "-C",
                &x.display().to_string(),
            ],
            dir,
        );
        assert_same_tree(
            &src,
            &x,
            &Expect {
                nanos: true,
                hardlinks: true,
            },
        );
    }
    // The archive is pax: long and non-ASCII names are in `x` headers.
    let raw = fs::read(dir.join("out.tar")).expect("read");
    assert!(raw.windows(5).any(|w| w == b"path="), "no pax path record");
    assert_eq!(&raw[257..262], b"ustar", "ustar magic");
}

#[test]
fn bsdtar_lists_and_extracts_like_the_source() {
    if !have("bsdtar", "libarchive-tools") {
        return;
    }
    let (env, src, target) = setup();
    let dir = env.dir.path();
    let ls = vaultfs_ls(&env, &src);
    for name in ["out.tar", "out.tgz"] {
        archive(&env, &target, &dir.join(name), &[]);
        let listing = text(&tool("bsdtar", &["-tvf", name], dir));
        let mut names = Vec::new();
        for line in listing.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let rest = f[8..].join(" ");
            let n = rest
                .split(" -> ")
                .next()
                .and_then(|n| n.split(" link to ").next())
                .expect("name")
                .trim_end_matches('/')
                .to_string();
            let (kind, size, _) = &ls[&n];
            if kind == "file" && n != "d/h2" {
                assert_eq!(f[4].parse::<u64>().expect("size"), *size, "{name}: {n}");
            }
            names.push(n);
        }
        names.sort();
        assert_eq!(names, ls.keys().cloned().collect::<Vec<_>>(), "{name}");
        let x = dir.join(format!("x-{name}"));
        fs::create_dir(&x).expect("mkdir");
        tool(
            "bsdtar",
            &["-xf", name, "-C", &x.display().to_string()],
            dir,
        );
        assert_same_tree(
            &src,
            &x,
            &Expect {
                nanos: true,
                hardlinks: true,
            },
        );
    }
}

#[test]
fn zip_lists_and_extracts_like_the_source() {
    if !have("unzip", "unzip") {
        return;
    }
    let (env, src, target) = setup();
    let dir = env.dir.path();
    let ls = vaultfs_ls(&env, &src);
    archive(&env, &target, &dir.join("out.zip"), &[]);
    // `unzip -Z -T`: mode, size, time.
    let listing = text(&tool("unzip", &["-Z", "-T", "out.zip"], dir));
    let mut names = Vec::new();
    for line in listing.lines().filter(|l| l.starts_with(['-', 'd', 'l'])) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // mode version os size flags method yyyymmdd.hhmmss name
        if f.len() < 8 {
            continue;
        }
        let n = f[7..].join(" ").trim_end_matches('/').to_string();
        let (kind, size, mtime) = &ls[&n];
        let want_size = if kind == "symlink" {
            fs::read_link(src.join(&n))
                .expect("readlink")
                .as_os_str()
                .len() as u64
        } else {
            *size
        };
        if kind != "dir" {
            assert_eq!(f[3].parse::<u64>().expect("size"), want_size, "size of {n}");
        }
        let t = chrono::NaiveDateTime::parse_from_str(f[6], "%Y%m%d.%H%M%S")
            .expect("time")
            .and_utc()
            .timestamp();
        // zipinfo shows the extended timestamp (UTC seconds) when there is one.
        assert_eq!(t, mtime.0, "mtime of {n}");
        names.push(n);
    }
    names.sort();
    assert_eq!(names, ls.keys().cloned().collect::<Vec<_>>(), "{listing}");
    // `unzip -l` agrees on the names.
    let short = text(&tool("unzip", &["-l", "out.zip"], dir));
    for n in ls.keys() {
        assert!(short.contains(n.as_str()), "unzip -l lacks {n}");
    }
    let z = dir.join("z");
    tool(
        "unzip",
        &["-q", "out.zip", "-d", &z.display().to_string()],
        dir,
    );
    assert_same_tree(
        &src,
        &z,
        &Expect {
            nanos: false,
            hardlinks: false,
        },
    );
}

#[test]
fn filters_and_standard_output() {
    if !have("tar", "tar") {
        return;
    }
    let (env, _, target) = setup();
    let dir = env.dir.path();
    archive(
        &env,
        &target,
        &dir.join("f.tar"),
        &["--exclude", "/deep", "--exclude", "*.sh"],
    );
    let mut names: Vec<String> = text(&tool(
        "tar",
        &["--quoting-style=literal", "-tf", "f.tar"],
        dir,
    ))
    .lines()
    .map(|l| l.trim_end_matches('/').to_string())
    .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "d",
            "d/empty.txt",
            "d/h1",
            "d/h2",
            "d/üñíçødé-日本.txt",
            "empty",
            "link",
            "longlink"
        ]
    );
    // An include selects files and the directories above them only.
    archive(&env, &target, &dir.join("i.tar"), &["--include", "/d/h*"]);
    let names = text(&tool("tar", &["-tf", "i.tar"], dir));
    assert_eq!(names, "d/\nd/h1\nd/h2\n");

    // To standard output: the same bytes as to a file.
    archive(&env, &target, &dir.join("a.tar.gz"), &[]);
    let out = env
        .cmd(&[
            "restore",
            &target,
            "--archive",
            "-",
            "--archive-format",
            "tar.gz",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_file = tool("tar", &["-tzvf", "a.tar.gz"], dir).stdout;
    fs::write(dir.join("b.tar.gz"), &out.stdout).expect("write");
    assert_eq!(tool("tar", &["-tzvf", "b.tar.gz"], dir).stdout, from_file);

    // Refused: no format for `-`, an unknown extension.
    for args in [
        &["restore", &target, "--archive", "-"][..],
        &["restore", &target, "--archive", "out.rar"],
        &["restore", &target, "--archive", "x.tar", "--target", "t"],
    ] {
        let r = env.run(args);
        assert_ne!(r.code, 0, "{args:?}");
    }
    assert!(!dir.join("out.rar").exists());
}

#[test]
fn pipe_to_a_command() {
    if !have("tar", "tar") || !have("sha256sum", "coreutils") {
        return;
    }
    let (env, src, target) = setup();
    // One file: its bytes.
    let file = src
        .join("deep")
        .join("l".repeat(LONG_DIR))
        .join("m".repeat(LONGER_DIR))
        .join("big.bin");
    let r = env
        .run(&[
            "restore",
            &format!("latest:{}", file.display()),
            "--pipe-to",
            "sha256sum",
        ])
        .ok();
    let want = hex::encode(Sha256::digest(fs::read(&file).expect("read")));
    assert_eq!(r.stdout.split_whitespace().next(), Some(want.as_str()));
    // A directory: a tar stream.
    let r = env.run(&["restore", &target, "--pipe-to", "tar -t"]).ok();
    let mut names: Vec<&str> = r.stdout.lines().map(|l| l.trim_end_matches('/')).collect();
    names.sort();
    let ls = vaultfs_ls(&env, &src);
    assert_eq!(names, ls.keys().map(String::as_str).collect::<Vec<_>>());
    // The command's failure is ours; stopping early and succeeding is not.
    let r = env.run(&["restore", &target, "--pipe-to", "cat >/dev/null; exit 4"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("exit status 4"), "{}", r.stderr);
    env.run(&["restore", &target, "--pipe-to", "head -c 100 >/dev/null"])
        .ok();
}

#[test]
fn a_damaged_blob_leaves_a_readable_archive_and_exit_status_1() {
    if !have("tar", "tar") {
        return;
    }
    let env = Env::init();
    let src = env.dir.path().join("s");
    fs::create_dir(&src).expect("mkdir");
    fs::write(src.join("big"), noise(3 << 20, 4)).expect("write");
    fs::write(src.join("small"), "hi\n").expect("write");
    env.run(&["backup", &src.display().to_string()]).ok();
    // Damage the largest pack (the big file's data) in its middle.
    let mut packs: Vec<(u64, PathBuf)> = Vec::new();
    let mut stack = vec![env.repo.join("data")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir").flatten() {
            let md = e.metadata().expect("stat");
            if md.is_dir() {
                stack.push(e.path());
            } else {
                packs.push((md.len(), e.path()));
            }
        }
    }
    packs.sort();
    let (len, pack) = packs.pop().expect("a pack");
    let mut bytes = fs::read(&pack).expect("read");
    let at = (len / 2) as usize;
    bytes[at] ^= 0xff;
    fs::set_permissions(&pack, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::write(&pack, &bytes).expect("write");

    let out = env.dir.path().join("o.tar");
    let r = env.run(&[
        "restore",
        &format!("latest:{}", src.display()),
        "--archive",
        &out.display().to_string(),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("/big"), "{}", r.stderr);
    assert!(r.stderr.contains("holds zeros from byte"), "{}", r.stderr);
    // Still a whole archive: both files, the damaged one at its full size.
    let x = env.dir.path().join("x");
    fs::create_dir(&x).expect("mkdir");
    tool(
        "tar",
        &[
            "-xf",
            &out.display().to_string(),
            "-C",
            &x.display().to_string(),
        ],
        env.dir.path(),
    );
    assert_eq!(fs::read(x.join("small")).expect("small"), b"hi\n");
    assert_eq!(fs::metadata(x.join("big")).expect("big").len(), 3 << 20);
}

/// A file past 4 GiB goes into the zip with zip64 sizes that unzip reads.
/// The file is 577 references to one 8 MiB blob of zeros, put together
/// through the library, so the test stores 8 MiB, not 4.5 GiB.
#[test]
fn a_file_past_4_gib_gets_zip64_sizes() {
    use std::sync::Arc;
    use vaultfs::backend::LocalBackend;
    use vaultfs::repo::{BlobType, Repository};
    use vaultfs::snapshot::{Node, NodeType, Tree};

    if !have("unzip", "unzip") {
        return;
    }
    let env = Env::init();
    let repo = Arc::new(
        Repository::open(Arc::new(LocalBackend::new(&env.repo)), b"correct horse").expect("open"),
    );
    repo.load_index().expect("index");
    let saver = vaultfs::repo::saver::BlobSaver::new(repo.clone());
    let zeros = vec![0u8; 8 << 20];
    let id = vaultfs::Id::hash(&zeros);
    saver.save(BlobType::Data, id, &zeros).expect("save");
    let mut file = Node::new("huge.bin", NodeType::File);
    file.mode = 0o644;
    file.content = Some(vec![id; 577]);
    file.size = 577 * (8 << 20);
    file.links = 1;
    let tree = saver.save_tree(Tree { nodes: vec![file] }).expect("tree");
    saver.finish().expect("finish");
    repo.load_index().expect("index");
    let mut root = Node::new("/", NodeType::Dir);
    root.subtree = Some(tree);

    let out = env.dir.path().join("big.zip");
    let f = std::io::BufWriter::new(fs::File::create(&out).expect("create"));
    let s = vaultfs::restore::archive::write_archive(
        &repo,
        &root,
        vaultfs::restore::archive::ArchiveFormat::Zip,
        &vaultfs::filter::Filter::all(),
        f,
        &vaultfs::restore::NoRestoreProgress,
    )
    .expect("archive");
    assert_eq!(s.bytes_written, 577 * (8 << 20));
    let listing = text(&tool("unzip", &["-Z", "-v", "big.zip"], env.dir.path()));
    assert!(
        listing.contains(&format!("{} bytes", 577u64 * (8 << 20))),
        "{listing}"
    );
    // Zip64 is what needs version 4.5 to extract.
    assert!(
        listing.contains("minimum software version required to extract:   4.5"),
        "{listing}"
    );
    // (`unzip -t` inflating all of it agrees too, but takes half a minute.)
}

/// A file of 8 GiB or more needs a pax `size` record: GNU tar, reading the
/// stream from a pipe (nothing lands on disk), lists its exact size. The
/// file is one 8 MiB blob of zeros referenced 1025 times.
#[test]
fn a_file_past_8_gib_gets_a_pax_size() {
    use std::process::Stdio;
    use std::sync::Arc;
    use vaultfs::backend::LocalBackend;
    use vaultfs::repo::{BlobType, Repository};
    use vaultfs::snapshot::{Node, NodeType, Tree};

    if !have("tar", "tar") {
        return;
    }
    let env = Env::init();
    let repo = Arc::new(
        Repository::open(Arc::new(LocalBackend::new(&env.repo)), b"correct horse").expect("open"),
    );
    repo.load_index().expect("index");
    let saver = vaultfs::repo::saver::BlobSaver::new(repo.clone());
    let zeros = vec![0u8; 8 << 20];
    let id = vaultfs::Id::hash(&zeros);
    saver.save(BlobType::Data, id, &zeros).expect("save");
    let size = 1025u64 * (8 << 20);
    let mut file = Node::new("huge.bin", NodeType::File);
    file.mode = 0o600;
    file.content = Some(vec![id; 1025]);
    file.size = size;
    file.links = 1;
    let tree = saver.save_tree(Tree { nodes: vec![file] }).expect("tree");
    saver.finish().expect("finish");
    repo.load_index().expect("index");
    let mut root = Node::new("/", NodeType::Dir);
    root.subtree = Some(tree);

    let mut tar = Command::new("tar")
        .args(["-tvf", "-"])
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar");
    let stdin = tar.stdin.take().expect("stdin");
    vaultfs::restore::archive::write_archive(
        &repo,
        &root,
        vaultfs::restore::archive::ArchiveFormat::Tar,
        &vaultfs::filter::Filter::all(),
        stdin,
        &vaultfs::restore::NoRestoreProgress,
    )
    .expect("archive");
    let out = tar.wait_with_output().expect("tar");
    assert!(out.status.success());
    let listing = text(&out);
    // The node has no mtime: Go's zero time, 0001-01-01, before ustar's
    // range, so a negative pax `mtime` carries it.
    let fields: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(
        fields,
        [
            "-rw-------",
            "0/0",
            &size.to_string(),
            "1-01-01",
            "00:00",
            "huge.bin"
        ],
        "{listing}"
    );
}
