//! `restore --to-original`: files go back where they were backed up from,
//! for the whole snapshot, a directory and a single file, under the
//! overwrite policy.

mod common;

use std::fs;

use common::Env;

#[test]
fn files_go_back_to_their_own_paths() {
    let env = Env::init();
    let src = env.dir.path().join("orig/src");
    fs::create_dir_all(src.join("sub")).expect("mkdir");
    fs::write(src.join("a"), common::pseudo_random(1, 5000)).expect("write");
    fs::write(src.join("sub/b"), common::pseudo_random(2, 7000)).expect("write");
    let mut c = env.cmd(&["backup", "--host", "h"]);
    c.arg(&src);
    common::run_cmd(&mut c).ok();
    let abs = src.to_str().expect("utf-8").to_string();

    // The whole snapshot: everything back in place, nothing elsewhere.
    fs::remove_file(src.join("sub/b")).expect("rm");
    fs::write(src.join("a"), b"changed").expect("write");
    env.run(&["restore", "latest", "--to-original"]).ok();
    assert!(fs::read(src.join("a")).expect("a") == common::pseudo_random(1, 5000));
    assert!(fs::read(src.join("sub/b")).expect("b") == common::pseudo_random(2, 7000));

    // A directory: its contents into its own path.
    fs::remove_dir_all(src.join("sub")).expect("rm sub");
    env.run(&["restore", &format!("latest:{abs}/sub"), "--to-original"])
        .ok();
    assert!(fs::read(src.join("sub/b")).expect("b") == common::pseudo_random(2, 7000));
    assert!(!src.join("sub/sub").exists());

    // A file: into its directory; --overwrite never keeps what is there.
    fs::write(src.join("a"), b"local edit").expect("write");
    env.run(&[
        "restore",
        &format!("latest:{abs}/a"),
        "--to-original",
        "--overwrite",
        "never",
    ])
    .ok();
    assert_eq!(fs::read(src.join("a")).expect("a"), b"local edit");
    env.run(&["restore", &format!("latest:{abs}/a"), "--to-original"])
        .ok();
    assert!(fs::read(src.join("a")).expect("a") == common::pseudo_random(1, 5000));
    assert!(!src.join("a/a").exists());

    // With a target too: a usage error.
    let r = env.run(&["restore", "latest", "--to-original", "--target", "x"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}
