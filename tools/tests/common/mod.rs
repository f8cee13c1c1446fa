//! Helpers shared by the CLI test binaries: a scratch directory with a
//! password file, a way to run `vaultfs` against it with cheap scrypt
//! parameters and no inherited `VAULTFS_*` settings, and a fingerprint of a
//! repository's files to prove a command changed nothing.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

/// The scrypt N used for every key the tests create.
pub const TEST_KDF_N: &str = "1024";

/// A scratch directory holding a repository path and a password file.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub password_file: PathBuf,
}

/// What a command did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit status 0 and returns self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Parses stdout as one JSON value.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// A `vaultfs` command with a clean environment: no inherited repository or
/// password settings, cheap scrypt, stdin not a terminal.
pub fn vaultfs() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vaultfs"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("VAULTFS_") {
            c.env_remove(k);
        }
    }
    c.env("VAULTFS_TEST_KDF_N", TEST_KDF_N)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs a prepared command to completion.
pub fn run_cmd(c: &mut Command) -> Run {
    Run::from(c.output().expect("running vaultfs"))
}

impl Env {
    /// A fresh directory; the repository is not created yet.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        let password_file = dir.path().join("password");
        fs::write(&password_file, "correct horse\n").expect("password file");
        Env {
            dir,
            repo,
            password_file,
        }
    }

    /// A fresh directory with an initialised repository.
    pub fn init() -> Env {
        let env = Env::new();
        env.run(&["init"]).ok();
        env
    }

    /// Writes a password file in the scratch directory.
    pub fn password(&self, name: &str, password: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, format!("{password}\n")).expect("password file");
        p
    }

    /// `vaultfs -r REPO --password-file PASSWORD ARGS...`, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = vaultfs();
        c.arg("-r")
            .arg(&self.repo)
            .arg("--password-file")
            .arg(&self.password_file)
            .args(args);
        c
    }

    /// Runs `vaultfs` on the repository with the password file.
    pub fn run(&self, args: &[&str]) -> Run {
        run_cmd(&mut self.cmd(args))
    }

    /// Runs `vaultfs` on the repository with another password file.
    pub fn run_with_password(&self, password_file: &Path, args: &[&str]) -> Run {
        let mut c = vaultfs();
        c.arg("-r")
            .arg(&self.repo)
            .arg("--password-file")
            .arg(password_file)
            .args(args);
        run_cmd(&mut c)
    }

    /// Every file below the repository with the SHA-256 of its content, and
    /// every directory, so any change shows up.
    pub fn fingerprint(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(&self.repo, &self.repo, &mut out);
        out
    }

    /// Number of files in a repository subdirectory.
    pub fn count(&self, sub: &str) -> usize {
        fs::read_dir(self.repo.join(sub))
            .map(|rd| rd.flatten().filter(|e| e.path().is_file()).count())
            .unwrap_or(0)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p
            .strip_prefix(root)
            .expect("below root")
            .display()
            .to_string();
        if p.is_dir() {
            out.insert(rel, "dir".into());
            walk(root, &p, out);
        } else {
            let data = fs::read(&p).expect("read");
            out.insert(rel, hex::encode(Sha256::digest(&data)));
        }
    }
}

/// The entries of `images/fs/linuxdisk.manifest.json.zst`: the tree
/// `images/linuxdisk.sh` wrote into each partition of linuxdisk.vmdk (path,
/// type, size, sha256, mtime [secs, nanos], target, rdev, same_as).
pub fn linuxdisk_manifest() -> Vec<serde_json::Value> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/fs/linuxdisk.manifest.json.zst");
    let z = fs::read(p).expect("linuxdisk manifest");
    let m: serde_json::Value =
        serde_json::from_slice(&zstd::decode_all(z.as_slice()).expect("zstd")).expect("json");
    m["entries"].as_array().expect("entries").clone()
}

/// Deterministic, incompressible content (so every blob is stored as it is
/// and a file under 512 KiB is one blob whose id is its SHA-256).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

impl Env {
    /// Runs restic (`VAULTFS_TEST_RESTIC` or `restic` on PATH) on the
    /// repository with the password file, without lock or cache, so the
    /// vault is left as it was (unless `args` change it), from the scratch
    /// directory.
    pub fn restic(&self, args: &[&str]) -> Run {
        let bin = std::env::var_os("VAULTFS_TEST_RESTIC").unwrap_or_else(|| "restic".into());
        let out = Command::new(&bin)
            .args(["--no-lock", "--no-cache", "-r"])
            .arg(&self.repo)
            .args(args)
            .env("RESTIC_PASSWORD_FILE", &self.password_file)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run restic ({e}): install it (apt-get install restic, as .ci/run does) or set VAULTFS_TEST_RESTIC")
            });
        Run::from(out)
    }
}
