//! `vaultfs forget`: keep policies against hand-computed expectations and
//! against restic 0.14's `forget --dry-run` on the same vault (the
//! snapshots are made by restic with chosen times), removal by id, and the
//! vault staying readable by restic afterwards.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use common::{Env, Run};

/// restic with the vault's password, UTC, no cache.
fn restic(env: &Env, args: &[&str]) -> Run {
    let bin = std::env::var_os("VAULTFS_TEST_RESTIC").unwrap_or_else(|| "restic".into());
    let out = Command::new(&bin)
        .args(["--no-cache", "-r"])
        .arg(&env.repo)
        .args(args)
        .env("RESTIC_PASSWORD_FILE", &env.password_file)
        .env("TZ", "UTC")
        .current_dir(env.dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run restic ({e}): install it (apt-get install restic, as .ci/run does) or set VAULTFS_TEST_RESTIC")
        });
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Snapshots of `src` at these UTC times (`YYYY-MM-DD HH:MM:SS`), by host;
/// returns (time, id) in creation order (restic 0.14's summary gives the
/// short id: ids are matched by prefix).
fn vault(snaps: &[(&str, &str, &[&str])]) -> (Env, Vec<(String, String)>) {
    let env = Env::init();
    fs::create_dir_all(env.dir.path().join("src")).expect("mkdir");
    let mut out = Vec::new();
    for (i, (time, host, tags)) in snaps.iter().enumerate() {
        fs::write(env.dir.path().join("src/f"), format!("version {i}")).expect("write");
        let mut args = vec!["backup", "--json", "--time", time, "--host", host];
        for t in *tags {
            args.extend(["--tag", t]);
        }
        args.push("src");
        let r = restic(&env, &args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let id = r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message_type"] == "summary")
            .and_then(|v| v["snapshot_id"].as_str().map(str::to_owned))
            .expect("snapshot id");
        out.push((time.to_string(), id));
    }
    (env, out)
}

fn forget(env: &Env, args: &[&str]) -> Run {
    let mut v = vec!["forget"];
    v.extend_from_slice(args);
    let mut c = env.cmd(&v);
    c.env("TZ", "UTC");
    common::run_cmd(&mut c)
}

/// The times of the snapshots listed under `field` in forget's JSON.
fn times(j: &serde_json::Value, field: &str, by_id: &[(String, String)]) -> BTreeSet<String> {
    j.as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g[field].as_array().cloned().unwrap_or_default())
        .map(|s| {
            let id = s["id"].as_str().expect("id");
            by_id
                .iter()
                .find(|(_, i)| id.starts_with(i.as_str()))
                .map(|(t, _)| t.clone())
                .unwrap_or_else(|| panic!("unknown snapshot {id}"))
        })
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The snapshot times now in the vault, per `vaultfs snapshots`.
fn remaining(env: &Env, by_id: &[(String, String)]) -> BTreeSet<String> {
    env.run(&["snapshots", "--json"])
        .ok()
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|s| {
            let id = s["id"].as_str().expect("id");
            by_id
                .iter()
                .find(|(_, i)| id.starts_with(i.as_str()))
                .map(|(t, _)| t.clone())
                .expect("known")
        })
        .collect()
}

const DAYS: &[(&str, &str, &[&str])] = &[
    ("2026-01-05 09:00:00", "h", &[]),
    ("2026-01-20 09:00:00", "h", &["monthly"]),
    ("2026-02-02 09:00:00", "h", &[]),
    ("2026-02-27 09:00:00", "h", &[]),
    ("2026-03-02 09:00:00", "h", &[]),
    ("2026-03-03 09:00:00", "h", &[]),
    ("2026-03-03 18:00:00", "h", &[]),
    ("2026-03-04 09:00:00", "h", &[]),
    ("2026-03-04 18:00:00", "h", &[]),
    ("2026-03-05 09:00:00", "other", &[]),
];

#[test]
fn policies_match_hand_computed_sets_and_restic() {
    let (env, ids) = vault(DAYS);
    // --keep-daily 2 --keep-weekly 2, grouped by host and paths.
    // Host h, newest first: 03-04 18:00 (daily 03-04, ISO week 10),
    // 03-04 09:00 (same day, same week: no), 03-03 18:00 (daily 03-03),
    // 03-03 09:00 (no), 03-02 09:00 (week 10 again: no), 02-27 09:00
    // (week 9: weekly), the rest no (counts used up). Host other: its one
    // snapshot is daily and weekly.
    let r = forget(
        &env,
        &[
            "--keep-daily",
            "2",
            "--keep-weekly",
            "2",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let keep = set(&[
        "2026-03-04 18:00:00",
        "2026-03-03 18:00:00",
        "2026-02-27 09:00:00",
        "2026-03-05 09:00:00",
    ]);
    assert_eq!(times(&r.json(), "keep", &ids), keep);
    let all: BTreeSet<String> = ids.iter().map(|(t, _)| t.clone()).collect();
    let removed: BTreeSet<String> = all.difference(&keep).cloned().collect();
    assert_eq!(times(&r.json(), "remove", &ids), removed);
    // restic 0.14 decides the same (no count is left at the oldest, where
    // newer restic and vaultfs also keep the oldest).
    let rr = restic(
        &env,
        &[
            "forget",
            "--keep-daily",
            "2",
            "--keep-weekly",
            "2",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(rr.code, 0, "{}", rr.stderr);
    let rj: serde_json::Value = serde_json::from_str(rr.stdout.trim()).expect("restic json");
    assert_eq!(times(&rj, "keep", &ids), keep);
    assert_eq!(remaining(&env, &ids), all, "--dry-run removed something");

    // Monthly 2 and a tag, in one group: 03-05 (March, newest overall),
    // 02-27 (February); 01-20 by its tag.
    let r = forget(
        &env,
        &[
            "--keep-monthly",
            "2",
            "--keep-tag",
            "monthly",
            "--group-by",
            "",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(
        times(&r.json(), "keep", &ids),
        set(&[
            "2026-03-05 09:00:00",
            "2026-02-27 09:00:00",
            "2026-01-20 09:00:00"
        ])
    );
    let rr = restic(
        &env,
        &[
            "forget",
            "--keep-monthly",
            "2",
            "--keep-tag",
            "monthly",
            "--group-by",
            "",
            "--dry-run",
            "--json",
        ],
    );
    let rj: serde_json::Value = serde_json::from_str(rr.stdout.trim()).expect("restic json");
    assert_eq!(times(&rj, "keep", &ids), times(&r.json(), "keep", &ids));

    // Within 1d12h of host h's newest (03-04 18:00): after 03-03 06:00.
    let r = forget(
        &env,
        &[
            "--keep-within",
            "1d12h",
            "--host",
            "h",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(
        times(&r.json(), "keep", &ids),
        set(&[
            "2026-03-04 18:00:00",
            "2026-03-04 09:00:00",
            "2026-03-03 18:00:00",
            "2026-03-03 09:00:00",
        ])
    );
    // --host h: the other host's snapshot is not even considered.
    assert!(!times(&r.json(), "remove", &ids).contains("2026-03-05 09:00:00"));

    // For real: the kept set is what stays, and restic agrees the vault
    // is sound.
    let r = forget(&env, &["--keep-daily", "2", "--keep-weekly", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("Applying Policy: keep 2 daily, 2 weekly snapshots"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("remove 6 snapshots:"), "{}", r.stdout);
    assert_eq!(remaining(&env, &ids), keep);
    let listed = restic(&env, &["snapshots", "--json"]);
    let n = serde_json::from_str::<serde_json::Value>(listed.stdout.trim())
        .expect("json")
        .as_array()
        .map(Vec::len);
    assert_eq!(n, Some(keep.len()));
    assert_eq!(restic(&env, &["check"]).code, 0);
}

#[test]
fn counts_left_keep_the_oldest_snapshot() {
    let (env, ids) = vault(&DAYS[..4]);
    // Four months asked, two exist (Jan, Feb): Feb's newest (02-27),
    // Jan's newest (01-20), and the oldest (01-05) because counts remain.
    let r = forget(&env, &["--keep-monthly", "4", "--dry-run", "--json"]);
    assert_eq!(
        times(&r.json(), "keep", &ids),
        set(&[
            "2026-02-27 09:00:00",
            "2026-01-20 09:00:00",
            "2026-01-05 09:00:00"
        ])
    );
    let reasons: Vec<String> = r.json()[0]["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .flat_map(|x| x["matches"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    assert!(
        reasons.contains(&"oldest monthly snapshot".to_string()),
        "{reasons:?}"
    );
}

#[test]
fn by_id_and_refusals() {
    let (env, ids) = vault(&DAYS[..3]);
    let r = forget(&env, &[&ids[1].1[..8]]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("removed snapshot {}", &ids[1].1[..8]))
    );
    assert_eq!(
        remaining(&env, &ids),
        set(&["2026-01-05 09:00:00", "2026-02-02 09:00:00"])
    );
    // Ids and a policy together are refused; nothing is removed.
    let r = forget(&env, &[&ids[0].1[..8], "--keep-last", "1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not both"), "{}", r.stderr);
    // No policy: nothing happens.
    let r = forget(&env, &[]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("no policy was specified"), "{}", r.stdout);
    assert_eq!(remaining(&env, &ids).len(), 2);
    // A bad duration is a usage error.
    assert_eq!(forget(&env, &["--keep-within", "3 weeks"]).code, 2);
    assert_eq!(restic(&env, &["check"]).code, 0);
}

#[test]
fn forget_with_prune_frees_the_space_of_the_removed_snapshots() {
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(&src).expect("mkdir");
    for i in 0..3u64 {
        // Each snapshot holds only its own 300 kB of incompressible data.
        fs::write(src.join("f"), common::pseudo_random(i + 1, 300_000)).expect("write");
        let mut c = env.cmd(&["backup", "--host", "h"]);
        c.arg("src").current_dir(env.dir.path());
        common::run_cmd(&mut c).ok();
    }
    let size = |env: &Env| -> u64 {
        fn walk(p: &std::path::Path) -> u64 {
            fs::read_dir(p)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| {
                            let m = e.metadata().expect("stat");
                            if m.is_dir() { walk(&e.path()) } else { m.len() }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&env.repo.join("data"))
    };
    let before = size(&env);
    let r = forget(&env, &["--keep-last", "1", "--prune", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(size(&env), before, "--dry-run changed the vault");
    let r = forget(&env, &["--keep-last", "1", "--prune"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = size(&env);
    assert!(
        before - after >= 2 * 300_000,
        "prune freed {} of the 600 kB only the removed snapshots had",
        before - after
    );
    assert_eq!(env.restic(&["check", "--read-data"]).code, 0);
    // Nothing removed: no prune either.
    let r = forget(&env, &["--keep-last", "5", "--prune"]);
    assert!(r.stdout.contains("nothing to prune"), "{}", r.stdout);
}
