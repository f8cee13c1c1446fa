//! `backup --stdin` and `backup --stdin-from-command`: a program's output
//! stored as one file, run with real processes (`sh -c`), read back with
//! `vaultfs cat` and with restic (`restic dump`, `restic snapshots`), which
//! must agree on the bytes and on which snapshots exist.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Env, Run, run_cmd};
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

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// restic's exit status, stdout and stderr for `args` on the vault (no
/// lock, no cache: the vault is left as it was).
fn restic(env: &Env, args: &[&str]) -> (i32, Vec<u8>, String) {
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
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The snapshot ids restic sees.
fn restic_snapshot_ids(env: &Env) -> Vec<String> {
    let (rc, out, err) = restic(env, &["snapshots", "--json"]);
    assert_eq!(rc, 0, "restic snapshots: {err}");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("restic JSON");
    let mut ids: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

/// The snapshot ids vaultfs sees.
fn snapshot_ids(env: &Env) -> Vec<String> {
    let v = env.run(&["snapshots", "--json"]).ok().json();
    let mut ids: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

/// `vaultfs cat` of a file, as bytes.
fn cat(env: &Env, target: &str) -> Vec<u8> {
    let out = env.cmd(&["cat", target]).output().expect("cat");
    assert!(
        out.status.success(),
        "cat {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `vaultfs backup ARGS` with `input` on stdin.
fn backup_with_stdin(env: &Env, args: &[&str], input: &[u8]) -> Run {
    let mut c = env.cmd(&[&["backup"], args].concat());
    c.stdin(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn command_output_is_stored_and_reads_back_through_vaultfs_and_restic() {
    let env = Env::init();
    // A pg_dump-like command: a header, several MiB of data, a footer.
    let data = noise(6 << 20, 11);
    let blob = env.dir.path().join("table.bin");
    std::fs::write(&blob, &data).expect("write");
    let cmd = format!(
        "printf 'BEGIN;\\n'; cat '{}'; printf 'COMMIT;\\n'",
        blob.display()
    );
    let mut want = b"BEGIN;\n".to_vec();
    want.extend_from_slice(&data);
    want.extend_from_slice(b"COMMIT;\n");

    let r = env.run(&[
        "backup",
        "--json",
        "--stdin-from-command",
        &cmd,
        "--stdin-filename",
        "db.sql",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["command"]["command"], cmd.as_str());
    assert_eq!(j["command"]["exit_code"], 0);
    assert_eq!(j["command"]["stderr_bytes"], 0);
    assert_eq!(j["total_bytes_processed"], want.len() as u64);
    assert_eq!(j["files_new"], 1);

    assert_eq!(sha(&cat(&env, "latest:/db.sql")), sha(&want));
    let (rc, out, err) = restic(&env, &["dump", "latest", "/db.sql"]);
    assert_eq!(rc, 0, "restic dump: {err}");
    assert_eq!(sha(&out), sha(&want), "restic dump gives other bytes");

    // The file's metadata: 0644, owned by us, mtime now; the snapshot's
    // path is /NAME.
    let snaps = env.run(&["snapshots", "--json"]).ok().json();
    assert_eq!(snaps[0]["paths"], serde_json::json!(["/db.sql"]));
    let ls = env.run(&["ls", "--json", "latest"]).ok();
    let node = ls
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["path"] == "/db.sql")
        .unwrap_or_else(|| panic!("no /db.sql in ls: {}", ls.stdout));
    assert_eq!(node["size"], want.len() as u64);
    // Our uid: the owner of a file we just made.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&blob).expect("stat"));
    assert_eq!(node["uid"], u64::from(uid));
    assert_eq!(node["permissions"], "-rw-r--r--", "{node}");

    // The same output again: unmodified against the parent, nothing new.
    let j = env
        .run(&[
            "backup",
            "--json",
            "--stdin-from-command",
            &cmd,
            "--stdin-filename",
            "db.sql",
        ])
        .ok()
        .json();
    assert_eq!(j["files_unmodified"], 1, "{j}");
    assert_eq!(j["data_blobs"], 0, "{j}");
    let (rc, _, err) = restic(&env, &["check", "--read-data"]);
    assert_eq!(rc, 0, "restic check: {err}");
}

#[test]
fn stderr_output_is_passed_through_and_is_a_warning() {
    let env = Env::init();
    let cmd = "echo data; echo 'pg_dump: warning: something odd' >&2";
    let r = env.run(&["backup", "--stdin-from-command", cmd]);
    assert_eq!(r.code, 3, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("pg_dump: warning: something odd"),
        "the command's stderr is passed through: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("the command `{cmd}` wrote")),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("snapshot "), "{}", r.stdout);
    assert_eq!(snapshot_ids(&env).len(), 1);
    assert_eq!(cat(&env, "latest:/stdin"), b"data\n");
    let (rc, out, err) = restic(&env, &["dump", "latest", "/stdin"]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out, b"data\n");
}

#[test]
fn a_failed_command_leaves_no_snapshot() {
    let env = Env::init();
    // One good snapshot first: it must stay the only one.
    env.run(&["backup", "--stdin-from-command", "echo first"])
        .ok();
    let before = snapshot_ids(&env);
    assert_eq!(before.len(), 1);
    assert_eq!(restic_snapshot_ids(&env), before);

    let blob = env.dir.path().join("part.bin");
    std::fs::write(&blob, noise(1 << 20, 5)).expect("write");
    let cmd = format!("cat '{}'; exit 3", blob.display());
    let r = env.run(&["backup", "--stdin-from-command", &cmd]);
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("exit status 3"), "{}", r.stderr);
    assert!(r.stderr.contains("no snapshot was written"), "{}", r.stderr);
    assert!(!r.stdout.contains("saved"), "{}", r.stdout);
    assert_eq!(snapshot_ids(&env), before);
    assert_eq!(restic_snapshot_ids(&env), before);
    // The data saved meanwhile is indexed, unreferenced: the vault is
    // sound for restic.
    let (rc, _, err) = restic(&env, &["check"]);
    assert_eq!(rc, 0, "restic check: {err}");

    // Killed by a signal: the same.
    let r = env.run(&["backup", "--stdin-from-command", "echo part; kill -9 $$"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("killed by signal 9"), "{}", r.stderr);
    assert_eq!(snapshot_ids(&env), before);

    // A command that cannot run: sh reports 127.
    let r = env.run(&["backup", "--stdin-from-command", "no-such-command-here"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("exit status 127"), "{}", r.stderr);
    assert_eq!(snapshot_ids(&env), before);
}

#[test]
fn stdin_is_stored_under_its_name() {
    let env = Env::init();
    let data = noise(3 << 20, 3);
    let r = backup_with_stdin(&env, &["--stdin", "--stdin-filename", "piped.bin"], &data);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sha(&cat(&env, "latest:/piped.bin")), sha(&data));
    let (rc, out, err) = restic(&env, &["dump", "latest", "/piped.bin"]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(sha(&out), sha(&data));

    // The default name is `stdin`; an empty input is an empty file.
    backup_with_stdin(&env, &["--stdin"], b"");
    assert_eq!(cat(&env, "latest:/stdin"), b"");
    let snaps = env.run(&["snapshots", "--json"]).ok().json();
    let paths: Vec<_> = snaps
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["paths"][0].as_str().expect("path").to_string())
        .collect();
    assert!(paths.contains(&"/stdin".to_string()), "{paths:?}");
}

#[test]
fn bad_arguments_are_refused() {
    let env = Env::init();
    for args in [
        &["backup", "--stdin", "--stdin-filename", "a/b"][..],
        &["backup", "--stdin", "--stdin-filename", ".."],
        &["backup", "--stdin", "--stdin-filename", ""],
        &["backup", "--stdin-filename", "x", "/tmp"],
        &["backup", "--stdin", "/tmp"],
        &["backup", "--stdin", "--stdin-from-command", "true"],
    ] {
        let r = run_cmd(&mut env.cmd(args));
        assert_ne!(r.code, 0, "{args:?} was accepted");
        assert_ne!(r.code, 3, "{args:?}");
    }
    assert!(snapshot_ids(&env).is_empty());
}

#[test]
fn a_read_error_on_stdin_leaves_no_snapshot() {
    let env = Env::init();
    // Reading a directory fails (EISDIR): a pipe that breaks.
    let mut c = env.cmd(&["backup", "--stdin"]);
    c.stdin(std::fs::File::open(env.dir.path()).expect("open dir"));
    let r = run_cmd(&mut c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("reading standard input failed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("no snapshot was written"), "{}", r.stderr);
    assert!(snapshot_ids(&env).is_empty());
    assert!(restic_snapshot_ids(&env).is_empty());
}
