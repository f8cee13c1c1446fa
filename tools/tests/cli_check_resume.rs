//! `check --read-data` resumed: a data pass stopped after some packs (as
//! `--max-duration` or a kill would stop it) continues with `--resume`,
//! reads each pack once over all runs, and ends with the same report as an
//! uninterrupted run, damage found by the earlier run included.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, Run};

/// A vault of `n` snapshots, each adding one file (so each backup writes a
/// data pack and a tree pack), with a byte of one data pack flipped.
fn vault(n: u64) -> (Env, PathBuf) {
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(&src).expect("mkdir");
    for i in 0..n {
        fs::write(
            src.join(format!("f{i}")),
            common::pseudo_random(i + 1, 30_000),
        )
        .expect("write");
        let mut c = env.cmd(&["backup", "--host", "h"]);
        c.arg("src").current_dir(env.dir.path());
        common::run_cmd(&mut c).ok();
    }
    let mut packs = pack_files(&env);
    packs.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).expect("stat").len()));
    let damaged = packs[0].clone();
    let mut data = fs::read(&damaged).expect("read");
    data[100] ^= 0x40;
    fs::write(&damaged, data).expect("write");
    (env, damaged)
}

fn pack_files(env: &Env) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in fs::read_dir(env.repo.join("data")).expect("data").flatten() {
        for f in fs::read_dir(d.path()).expect("subdir").flatten() {
            out.push(f.path());
        }
    }
    out
}

/// `check --json ARGS` with its own state directory and progress file.
fn check(env: &Env, progress: &Path, extra_env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = check_cmd(env, progress, args);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    common::run_cmd(&mut c)
}

fn check_cmd(env: &Env, progress: &Path, args: &[&str]) -> Command {
    let mut c = env.cmd(&["--json", "check", "--progress-file"]);
    c.arg(progress)
        .args(args)
        .env("XDG_STATE_HOME", env.dir.path().join("state"));
    c
}

fn stat(r: &Run, name: &str) -> u64 {
    r.json()["stats"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("stats.{name} in {}", r.stdout))
}

/// What must not depend on how the pass was split: the findings and the
/// damaged packs with their users.
fn outcome(r: &Run) -> (serde_json::Value, serde_json::Value) {
    let j = r.json();
    (j["findings"].clone(), j["damaged_packs"].clone())
}

/// Complete lines (a torn last line has no newline).
fn lines(p: &Path) -> usize {
    let data = fs::read(p).expect("progress file");
    data.iter().filter(|&&b| b == b'\n').count()
}

#[test]
fn a_stopped_pass_resumes_where_it_stopped_and_ends_with_the_same_report() {
    let (env, damaged) = vault(6);
    let total = pack_files(&env).len() as u64;
    assert!(total >= 12, "{total} packs");
    let progress = env.dir.path().join("progress.jsonl");

    let full = check(&env, &progress, &[], &["--read-data"]);
    assert_eq!(full.code, 1, "{}\n{}", full.stdout, full.stderr);
    assert_eq!(stat(&full, "packs_read"), total);
    assert!(
        !progress.exists(),
        "a completed pass removes its progress file"
    );
    let damaged_name = damaged.file_name().expect("name").to_string_lossy();
    assert!(full.stdout.contains(&*damaged_name), "{}", full.stdout);

    // Stopped after 5 packs: those are recorded, the rest are left.
    let stop5 = [("VAULTFS_TEST_CHECK_STOP_AFTER", "5")];
    let first = check(&env, &progress, &stop5, &["--read-data"]);
    assert!(first.code == 3 || first.code == 1, "{}", first.stderr);
    assert_eq!(stat(&first, "packs_read"), 5);
    assert_eq!(stat(&first, "packs_left"), total - 5);
    assert_eq!(lines(&progress), 1 + 5, "header and one line per pack");

    // A run killed while writing leaves a torn last line: it is ignored
    // and cut off before the file is continued.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&progress)
        .expect("open");
    f.write_all(br#"{"pack":"00ab"#).expect("torn line");
    drop(f);

    let stop3 = [("VAULTFS_TEST_CHECK_STOP_AFTER", "3")];
    let second = check(&env, &progress, &stop3, &["--resume"]);
    assert_eq!(stat(&second, "packs_read"), 8, "{}", second.stdout);
    assert_eq!(stat(&second, "packs_resumed"), 5);
    assert_eq!(stat(&second, "packs_left"), total - 8);
    assert_eq!(lines(&progress), 1 + 8);

    let last = check(&env, &progress, &[], &["--resume"]);
    assert_eq!(last.code, 1, "{}", last.stderr);
    assert_eq!(stat(&last, "packs_read"), total);
    assert_eq!(stat(&last, "packs_resumed"), 8);
    assert_eq!(stat(&last, "packs_left"), 0);
    assert_eq!(outcome(&last), outcome(&full));
    assert!(!progress.exists());

    // Nothing left to resume: the next --resume is a whole new pass.
    let again = check(&env, &progress, &[], &["--resume"]);
    assert_eq!(stat(&again, "packs_resumed"), 0);
    assert_eq!(stat(&again, "packs_read"), total);
    assert_eq!(outcome(&again), outcome(&full));
}

#[test]
fn saved_progress_of_another_selection_is_not_used() {
    let (env, _) = vault(3);
    let progress = env.dir.path().join("progress.jsonl");
    let stop = [("VAULTFS_TEST_CHECK_STOP_AFTER", "1")];
    // 1/1 and 100% select the same packs, but are other selections: the
    // saved progress of one is not taken for the other.
    let r = check(&env, &progress, &stop, &["--read-data-subset", "1/1"]);
    assert_eq!(stat(&r, "packs_read"), 1);
    let r = check(
        &env,
        &progress,
        &[],
        &["--resume", "--read-data-subset", "100%"],
    );
    assert_eq!(stat(&r, "packs_resumed"), 0);
    assert!(
        r.stderr
            .contains("the saved progress is of --read-data-subset 1/1, not 100%; starting over"),
        "{}",
        r.stderr
    );
}

#[test]
fn max_duration_stops_the_pass_and_the_exit_status_says_unfinished() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(&src).expect("mkdir");
    fs::write(src.join("a"), common::pseudo_random(9, 10_000)).expect("write");
    let mut c = env.cmd(&["backup", "--host", "h"]);
    c.arg("src").current_dir(env.dir.path());
    common::run_cmd(&mut c).ok();
    let progress = env.dir.path().join("p.jsonl");
    let mut c = env.cmd(&["check", "--max-duration", "0s", "--progress-file"]);
    c.arg(&progress);
    let r = common::run_cmd(&mut c);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("not read yet; run the same check with --resume"),
        "{}",
        r.stdout
    );
    let mut c = env.cmd(&["check", "--resume", "--progress-file"]);
    c.arg(&progress);
    let r = common::run_cmd(&mut c);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // Without --progress-file, the state goes under XDG_STATE_HOME.
    let state = env.dir.path().join("state");
    let mut c = env.cmd(&["check", "--max-duration", "0s"]);
    c.env("XDG_STATE_HOME", &state);
    assert_eq!(common::run_cmd(&mut c).code, 3);
    let saved: Vec<_> = fs::read_dir(state.join("vaultfs/check"))
        .expect("state dir")
        .flatten()
        .collect();
    assert_eq!(saved.len(), 1);
    let bad = env.run(&["check", "--max-duration", "5 parsecs"]);
    assert_eq!(bad.code, 2);
}

#[test]
fn a_killed_pass_resumes_with_the_same_report() {
    let (env, _) = vault(6);
    let total = pack_files(&env).len() as u64;
    let progress = env.dir.path().join("progress.jsonl");
    let full = check(&env, &progress, &[], &["--read-data"]);
    let mut child = check_cmd(&env, &progress, &["--read-data"])
        .spawn()
        .expect("spawn");
    // Killed once at least one pack is recorded (if the pass is faster than
    // this loop, it completes: the resumed run then reads everything again).
    let start = Instant::now();
    while lines_or_zero(&progress) < 2 && start.elapsed() < Duration::from_secs(60) {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().ok();
    child.wait().expect("wait");
    let recorded = lines_or_zero(&progress).saturating_sub(1) as u64;
    let r = check(&env, &progress, &[], &["--resume"]);
    assert_eq!(r.code, 1);
    assert_eq!(stat(&r, "packs_read"), total);
    assert_eq!(stat(&r, "packs_resumed"), recorded);
    assert_eq!(outcome(&r), outcome(&full));
}

fn lines_or_zero(p: &Path) -> usize {
    if p.exists() { lines(p) } else { 0 }
}
