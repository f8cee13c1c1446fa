//! `vaultfs stats` in each mode equals restic 0.14's `stats` on the same
//! vault, and the raw-data extras (size before compression, compression
//! ratio, pack count) equal what restic's own index dump implies.

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::Env;

fn restic_json(env: &Env, args: &[&str]) -> serde_json::Value {
    let r = env.restic(args);
    assert_eq!(r.code, 0, "restic {args:?}: {}", r.stderr);
    serde_json::from_str(r.stdout.trim()).expect("restic json")
}

/// Three snapshots of a changing tree (two hosts): random and text files,
/// a duplicate, an empty file, a symlink, a subdirectory.
fn vault() -> Env {
    let env = Env::init();
    let src = env.dir.path().join("src");
    fs::create_dir_all(src.join("sub/deeper")).expect("mkdir");
    fs::write(src.join("random.bin"), common::pseudo_random(1, 3_000_000)).expect("write");
    fs::write(
        src.join("sub/copy.bin"),
        common::pseudo_random(1, 3_000_000),
    )
    .expect("write");
    fs::write(src.join("empty"), b"").expect("write");
    let text: String = (0..40_000)
        .map(|i| format!("line {} of the log\n", i % 977))
        .collect();
    fs::write(src.join("sub/deeper/log.txt"), &text).expect("write");
    symlink("random.bin", src.join("link")).expect("symlink");
    for (i, host) in ["a", "a", "b"].iter().enumerate() {
        fs::write(src.join("changing"), format!("round {i}")).expect("write");
        let mut c = env.cmd(&["backup", "--host", host]);
        c.arg("src").current_dir(env.dir.path());
        common::run_cmd(&mut c).ok();
    }
    env
}

#[test]
fn every_mode_equals_restic() {
    let env = vault();
    for mode in ["restore-size", "files-by-contents", "raw-data"] {
        for sel in [vec![], vec!["latest"], vec!["--host", "a"]] {
            let mut args = vec!["--json", "stats", "--mode", mode];
            args.extend(&sel);
            let ours = env.run(&args).ok().json();
            let mut rargs = vec!["stats", "--json", "--mode", mode];
            rargs.extend(&sel);
            let theirs = restic_json(&env, &rargs);
            for field in [
                "total_size",
                "total_file_count",
                "total_blob_count",
                "snapshots_count",
            ] {
                assert_eq!(
                    ours[field], theirs[field],
                    "{mode} {sel:?} {field}: ours {ours} restic {theirs}"
                );
            }
        }
    }
}

#[test]
fn raw_data_extras_follow_the_index() {
    let env = vault();
    let ours = env
        .run(&["--json", "stats", "--mode", "raw-data"])
        .ok()
        .json();
    // Every indexed blob is used (nothing was forgotten): sum the index as
    // restic dumps it.
    let (mut uncompressed, mut comp_stored, mut comp_plain) = (0u64, 0u64, 0u64);
    let mut packs = 0u64;
    let mut blobs = 0u64;
    let ids: Vec<String> = fs::read_dir(env.repo.join("index"))
        .expect("index dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for id in ids {
        let idx = restic_json(&env, &["cat", "index", &id]);
        for p in idx["packs"].as_array().expect("packs") {
            packs += 1;
            for b in p["blobs"].as_array().expect("blobs") {
                blobs += 1;
                let len = b["length"].as_u64().expect("length");
                match b["uncompressed_length"].as_u64() {
                    Some(u) => {
                        uncompressed += u + 32;
                        comp_stored += len;
                        comp_plain += u + 32;
                    }
                    None => uncompressed += len,
                }
            }
        }
    }
    assert_eq!(ours["total_blob_count"], blobs);
    assert_eq!(ours["total_pack_count"], packs);
    assert_eq!(ours["total_uncompressed_size"], uncompressed);
    let ratio = ours["compression_ratio"].as_f64().expect("ratio");
    assert!(
        (ratio - comp_plain as f64 / comp_stored as f64).abs() < 1e-9,
        "{ratio}"
    );
    // The text log compresses well, the random data not at all: the
    // saving is real but far from total.
    let saving = ours["compression_space_saving"].as_f64().expect("saving");
    assert!(saving > 1.0 && saving < 50.0, "{saving}");
    let text = env.run(&["stats", "--mode", "raw-data"]).ok().stdout;
    assert!(text.contains("Compression Ratio:"), "{text}");
    assert!(text.contains("Total Pack Count:"), "{text}");
}
