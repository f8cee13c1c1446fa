//! End-to-end tests of the `vaultfs` binary for the commands that need no
//! backup: init, snapshots, key, unlock, generate, password sources, JSON
//! output, error messages and exit statuses.

mod common;

use std::fs;
use std::io::Read;
use std::sync::Arc;

use common::{Env, run_cmd, vaultfs};
use vaultfs::backend::{FileType, LocalBackend};
use vaultfs::repo::Repository;
use vaultfs::repo::lock::LockFile;

const WRONG_PASSWORD: &str = "vaultfs: wrong password or no key found\n";

#[test]
fn init_then_empty_snapshots() {
    let env = Env::new();
    let r = env.run(&["init"]).ok();
    assert!(
        r.stdout.starts_with("created vaultfs repository "),
        "{}",
        r.stdout
    );
    assert!(env.repo.join("config").is_file());
    assert_eq!(env.count("keys"), 1);

    let r = env.run(&["snapshots"]).ok();
    assert!(r.stdout.contains("ID"), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with("0 snapshots"), "{}", r.stdout);
    assert_eq!(
        env.run(&["snapshots", "--json"]).ok().json(),
        serde_json::json!([])
    );
    // --json is global: it works before the subcommand too.
    assert_eq!(
        env.run(&["--json", "snapshots"]).ok().json(),
        serde_json::json!([])
    );
}

#[test]
fn init_twice_fails_and_keeps_the_repository() {
    let env = Env::init();
    let before = env.fingerprint();
    let r = env.run(&["init"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(env.fingerprint(), before);
}

#[test]
fn init_quiet_and_json() {
    let env = Env::new();
    let r = env.run(&["init", "--json"]).ok();
    let v = r.json();
    assert_eq!(v["message_type"], "initialized");
    assert_eq!(v["id"].as_str().map(str::len), Some(64));
    let env = Env::new();
    let r = env.run(&["-q", "init"]).ok();
    assert_eq!(r.stdout, "");
}

#[test]
fn wrong_password_is_exit_1_and_changes_nothing() {
    let env = Env::init();
    let wrong = env.password("wrong", "not the password");
    let new = env.password("new", "another one");
    let before = env.fingerprint();
    let new_s = new.to_string_lossy().into_owned();
    let commands: [&[&str]; 7] = [
        &["snapshots"],
        &["key", "list"],
        &["key", "add", "--new-password-file", &new_s],
        &["key", "passwd", "--new-password-file", &new_s],
        &["unlock", "--remove-all"],
        &["backup", "/nonexistent"],
        &["snapshots", "--json"],
    ];
    for args in commands {
        let r = env.run_with_password(&wrong, args);
        assert_eq!(r.code, 1, "{args:?}");
        assert_eq!(r.stderr, WRONG_PASSWORD, "{args:?}");
        assert_eq!(r.stdout, "", "{args:?}");
    }
    assert_eq!(env.fingerprint(), before, "the repository was modified");
}

#[test]
fn not_a_repository() {
    let env = Env::new();
    fs::create_dir(&env.repo).expect("mkdir");
    for repo in [env.repo.clone(), env.dir.path().join("missing")] {
        // No password source at all: the error must still be about the path.
        let mut c = vaultfs();
        c.arg("-r").arg(&repo).arg("snapshots");
        let r = run_cmd(&mut c);
        assert_eq!(r.code, 1);
        assert!(r.stderr.starts_with("vaultfs: "), "{}", r.stderr);
        assert!(r.stderr.contains("is not a repository"), "{}", r.stderr);
    }
    assert_eq!(fs::read_dir(&env.repo).expect("read_dir").count(), 0);
}

#[test]
fn missing_repository_and_password_are_explained() {
    let r = run_cmd(vaultfs().arg("snapshots"));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("-r/--repo"), "{}", r.stderr);

    let env = Env::init();
    let r = run_cmd(vaultfs().arg("-r").arg(&env.repo).arg("snapshots"));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("stdin is not a terminal"), "{}", r.stderr);
    assert!(r.stderr.contains("--password-file"), "{}", r.stderr);
}

#[test]
fn repository_and_password_from_environment() {
    let env = Env::init();
    let r = run_cmd(
        vaultfs()
            .env("VAULTFS_REPOSITORY", &env.repo)
            .env("VAULTFS_PASSWORD_FILE", &env.password_file)
            .args(["snapshots", "--json"]),
    )
    .ok();
    assert_eq!(r.json(), serde_json::json!([]));
}

#[test]
fn password_command() {
    let env = Env::init();
    let cmd = format!("cat '{}'", env.password_file.display());
    let base = |c: &mut std::process::Command| {
        c.arg("-r").arg(&env.repo);
    };
    let mut c = vaultfs();
    base(&mut c);
    c.args(["--password-command", &cmd, "snapshots", "--json"]);
    assert_eq!(run_cmd(&mut c).ok().json(), serde_json::json!([]));

    // Without a trailing newline, via the environment.
    let mut c = vaultfs();
    base(&mut c);
    c.env("VAULTFS_PASSWORD_COMMAND", "printf 'correct horse'")
        .args(["snapshots", "--json"]);
    run_cmd(&mut c).ok();

    // A failing command is an error, not an empty password.
    let mut c = vaultfs();
    base(&mut c);
    c.args([
        "--password-command",
        "echo 'correct horse'; exit 7",
        "snapshots",
    ]);
    let r = run_cmd(&mut c);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("password command"), "{}", r.stderr);

    // A wrong password from a command is the usual wrong-password error.
    let mut c = vaultfs();
    base(&mut c);
    c.args(["--password-command", "echo nope", "snapshots"]);
    let r = run_cmd(&mut c);
    assert_eq!((r.code, r.stderr.as_str()), (1, WRONG_PASSWORD));

    // File and command together are ambiguous.
    let r = run_cmd(&mut env.cmd(&["--password-command", "echo x", "snapshots"]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("both given"), "{}", r.stderr);
}

fn key_ids(env: &Env) -> Vec<(String, bool)> {
    let v = env.run(&["key", "list", "--json"]).ok().json();
    v.as_array()
        .expect("array")
        .iter()
        .map(|k| {
            (
                k["id"].as_str().expect("id").to_owned(),
                k["current"].as_bool().expect("current"),
            )
        })
        .collect()
}

#[test]
fn key_add_list_remove_passwd() {
    let env = Env::init();
    let first = key_ids(&env);
    assert_eq!(first.len(), 1);
    assert!(first[0].1, "the only key is the current one");

    // add
    let second_pw = env.password("second", "second password");
    let second_s = second_pw.to_string_lossy().into_owned();
    let r = env
        .run(&["key", "add", "--new-password-file", &second_s])
        .ok();
    assert!(
        r.stdout.starts_with("saved new key with ID "),
        "{}",
        r.stdout
    );
    let keys = key_ids(&env);
    assert_eq!(keys.len(), 2);
    let added = keys
        .iter()
        .find(|k| k.0 != first[0].0)
        .expect("new key")
        .0
        .clone();
    assert!(keys.iter().any(|k| k.0 == first[0].0 && k.1));
    env.run_with_password(&second_pw, &["snapshots"]).ok();

    // The text listing marks the current key.
    let r = env.run(&["key", "list"]).ok();
    assert!(
        r.stdout.contains(&format!("*{}", &first[0].0[..8])),
        "{}",
        r.stdout
    );

    // remove: the current key is refused, another key goes.
    let r = env.run(&["key", "remove", &first[0].0[..10]]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("currently in use"), "{}", r.stderr);
    let r = env.run(&["key", "remove", &added[..10], "--json"]).ok();
    assert_eq!(r.json()["removed"], added.as_str());
    assert_eq!(key_ids(&env).len(), 1);
    let r = env.run_with_password(&second_pw, &["snapshots"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, WRONG_PASSWORD));
    let r = env.run(&["key", "remove", "ffffffffffff"]);
    assert_eq!(r.code, 1);

    // passwd: the old password stops working, the new one works.
    let new_pw = env.password("new", "brand new password");
    let new_s = new_pw.to_string_lossy().into_owned();
    let r = env
        .run(&["key", "passwd", "--new-password-file", &new_s, "--json"])
        .ok();
    let v = r.json();
    assert_eq!(v["removed"], first[0].0.as_str());
    let r = env.run(&["snapshots"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, WRONG_PASSWORD));
    let keys = env
        .run_with_password(&new_pw, &["key", "list", "--json"])
        .ok()
        .json();
    assert_eq!(keys.as_array().map(Vec::len), Some(1));
    assert_eq!(keys[0]["id"], v["added"]);
    assert_eq!(keys[0]["current"], true);
    // No lock is left behind by any of this.
    assert_eq!(env.count("locks"), 0);
}

#[test]
fn key_add_without_new_password_on_a_pipe_fails_cleanly() {
    let env = Env::init();
    let before = env.fingerprint();
    let r = env.run(&["key", "add"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("stdin is not a terminal"), "{}", r.stderr);
    assert_eq!(env.fingerprint(), before);
}

fn write_lock(env: &Env, pid: i64) {
    let backend = Arc::new(LocalBackend::new(&env.repo));
    let repo = Repository::open(backend, b"correct horse").expect("open");
    let (uid, gid) = vaultfs::sys::uid_gid();
    let lock = LockFile {
        time: chrono::Local::now().fixed_offset(),
        exclusive: false,
        hostname: vaultfs::sys::hostname(),
        username: vaultfs::sys::username(),
        pid,
        uid,
        gid,
    };
    repo.save_unpacked(FileType::Lock, &lock).expect("lock");
}

#[test]
fn unlock_removes_stale_locks_and_all_with_flag() {
    let env = Env::init();
    // A process id beyond pid_max is certainly not running.
    write_lock(&env, 1 << 30);
    write_lock(&env, i64::from(std::process::id()));
    assert_eq!(env.count("locks"), 2);
    let r = env.run(&["unlock"]).ok();
    assert_eq!(r.stdout.trim(), "successfully removed 1 lock");
    assert_eq!(env.count("locks"), 1);
    let r = env.run(&["unlock", "--remove-all", "--json"]).ok();
    assert_eq!(r.json()["removed"], 1);
    assert_eq!(env.count("locks"), 0);
}

#[test]
fn exit_status_table_and_usage_errors() {
    let r = run_cmd(vaultfs().arg("--help")).ok();
    for needle in [
        "Exit status:",
        "0   success",
        "1   error",
        "2   invalid command line",
        "3   backup completed with warnings",
        "VAULTFS_REPOSITORY",
        "VAULTFS_PASSWORD_FILE",
        "VAULTFS_PASSWORD_COMMAND",
        "VAULTFS_TEST_KDF_N",
    ] {
        assert!(r.stdout.contains(needle), "--help lacks {needle:?}");
    }
    for args in [
        &["no-such-command"][..],
        &["backup"],
        &["backup", "/x", "--no-such-flag"],
        &["generate", "--completion", "tcsh"],
        &["restore", "latest"],
        &["ls"],
    ] {
        let r = run_cmd(vaultfs().args(args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    // Arguments are checked before any repository is touched.
    let env = Env::init();
    let before = env.fingerprint();
    for args in [
        &["backup", "/x", "--compression", "fast"][..],
        &["backup", "/x", "--exclude", "[unclosed"],
        &["backup", "/x", "--include-regex", "(unclosed"],
        &["cat", "latest"],
        &["ls", "nothex:/a"],
        &["ls", "latest:/a/../b"],
        &[
            "restore",
            "latest",
            "--target",
            "x",
            "--exclude",
            "[unclosed",
        ],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 1, "{args:?}");
        assert!(r.stderr.starts_with("vaultfs: "), "{}", r.stderr);
    }
    assert_eq!(env.fingerprint(), before);
}

#[test]
fn generate_completions_and_man_pages() {
    for shell in ["bash", "zsh", "fish"] {
        let r = run_cmd(vaultfs().args(["generate", "--completion", shell])).ok();
        assert!(r.stdout.contains("vaultfs"), "{shell}");
        assert!(r.stdout.contains("snapshots"), "{shell}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let man = dir.path().join("man");
    run_cmd(vaultfs().arg("generate").arg("--man").arg(&man)).ok();
    for page in ["vaultfs.1", "vaultfs-backup.1", "vaultfs-key-passwd.1"] {
        let text = fs::read_to_string(man.join(page)).expect(page);
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn closed_stdout_is_success() {
    let mut child = vaultfs()
        .args(["generate", "--completion", "zsh"])
        .spawn()
        .expect("spawn");
    // Close the reading end at once; whatever the writer does then, it must
    // neither fail nor panic.
    drop(child.stdout.take());
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).expect("stderr");
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs `vaultfs ARGS` on a pseudo-terminal made by util-linux `script`,
/// typing `input`; `None` where `script` is not installed.
fn on_terminal(env: &Env, args: &str, input: &str) -> Option<common::Run> {
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("util-linux `script` not found; terminal prompt not tested");
        return None;
    }
    let line = format!(
        "'{}' -r '{}' {args}",
        env!("CARGO_BIN_EXE_vaultfs"),
        env.repo.display()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .env("VAULTFS_TEST_KDF_N", common::TEST_KDF_N)
        .env_remove("VAULTFS_PASSWORD_FILE")
        .env_remove("VAULTFS_PASSWORD_COMMAND")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn script");
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("type");
    }
    let out = child.wait_with_output().expect("wait");
    Some(common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[test]
fn terminal_prompt_asks_twice_for_a_new_password() {
    let env = Env::new();
    let Some(r) = on_terminal(&env, "init", "typed pw\ntyped pw\n") else {
        return;
    };
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("enter password again"), "{}", r.stdout);
    let typed = env.password("typed", "typed pw");
    env.run_with_password(&typed, &["snapshots"]).ok();
    let r = on_terminal(&env, "snapshots --json", "typed pw\n").expect("script");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("[]"), "{}", r.stdout);

    let env = Env::new();
    let r = on_terminal(&env, "init", "one\ntwo\n").expect("script");
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains("passwords do not match"), "{}", r.stdout);
    assert!(!env.repo.exists());
}
