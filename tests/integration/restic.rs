//! Running the real `restic` binary against a repository directory.
//!
//! The binary is `restic` from `PATH`, or the path in `VAULTFS_TEST_RESTIC`.
//! A missing binary fails the test with instructions: `.ci/run` installs
//! restic, so interop is never silently skipped.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The password of every repository the interop tests create.
pub const PASSWORD: &str = "interop test password";

/// The restic binary to run.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::env::var_os("VAULTFS_TEST_RESTIC")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("restic"));
        match Command::new(&bin).arg("version").output() {
            Ok(out) if out.status.success() => {
                eprintln!(
                    "interop: using {}",
                    String::from_utf8_lossy(&out.stdout).trim()
                );
            }
            Ok(out) => panic!(
                "`{} version` failed ({}): {}",
                bin.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "cannot run restic ({}: {e}). The interop tests need the real restic \
                 binary: install it (`apt-get install restic`, as .ci/run does) or set \
                 VAULTFS_TEST_RESTIC to its path.",
                bin.display()
            ),
        }
        bin
    })
}

/// restic bound to one repository.
pub struct Restic {
    repo: PathBuf,
    password: String,
}

impl Restic {
    /// restic for the repository directory `repo`.
    pub fn new(repo: &Path) -> Restic {
        Restic {
            repo: repo.to_path_buf(),
            password: PASSWORD.to_string(),
        }
    }

    /// The same repository opened with another password.
    pub fn with_password(&self, password: &str) -> Restic {
        Restic {
            repo: self.repo.clone(),
            password: password.to_string(),
        }
    }

    /// A command with the repository, password and no cache set, and every
    /// other restic setting from the environment removed.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(binary());
        for var in [
            "RESTIC_REPOSITORY",
            "RESTIC_REPOSITORY_FILE",
            "RESTIC_PASSWORD_FILE",
            "RESTIC_PASSWORD_COMMAND",
            "RESTIC_CACHE_DIR",
            "RESTIC_COMPRESSION",
            "RESTIC_PACK_SIZE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("RESTIC_PASSWORD", &self.password)
            .arg("--no-cache")
            .arg("-r")
            .arg(&self.repo)
            .args(args);
        cmd
    }

    /// Runs restic and returns its output, whatever the exit status.
    pub fn output<I, S>(&self, args: I) -> (String, Output)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let cmd = self.command(args);
        let line = format!(
            "restic {}",
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut cmd = cmd;
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot start `{line}`: {e}"));
        (line, out)
    }

    /// Runs restic, fails the test unless it exits 0, returns stdout.
    pub fn run<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (line, out) = self.output(args);
        assert!(
            out.status.success(),
            "`{line}` failed ({})\n--- stderr ---\n{}\n--- stdout ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail(&String::from_utf8_lossy(&out.stdout), 4000)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `restic init --repository-version V`.
    pub fn init(&self, version: u32) {
        self.run(["init", "--repository-version", &version.to_string()]);
    }

    /// `restic backup` of `path` with extra flags; returns the snapshot id.
    pub fn backup(&self, path: &Path, extra: &[&str]) -> String {
        let mut args: Vec<&OsStr> = vec![
            "backup".as_ref(),
            "--json".as_ref(),
            "--host".as_ref(),
            "interop".as_ref(),
        ];
        args.extend(extra.iter().map(|s| OsStr::new(*s)));
        args.push(path.as_os_str());
        let stdout = self.run(args);
        for line in stdout.lines().rev() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["message_type"] == "summary" {
                if let Some(id) = v["snapshot_id"].as_str() {
                    return self.full_snapshot_id(id);
                }
            }
        }
        panic!(
            "restic backup printed no summary with a snapshot id:\n{}",
            tail(&stdout, 4000)
        );
    }

    /// The full id of the snapshot whose id starts with `prefix` (restic
    /// 0.14 prints short ids after a backup).
    pub fn full_snapshot_id(&self, prefix: &str) -> String {
        let out = self.run(["snapshots", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("restic snapshots --json: {e}: {out}"));
        let ids: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["id"].as_str())
            .filter(|id| id.starts_with(prefix))
            .collect();
        match ids.as_slice() {
            [one] => one.to_string(),
            _ => panic!(
                "restic snapshots: {} ids start with {prefix:?}: {out}",
                ids.len()
            ),
        }
    }

    /// `restic check --read-data`; fails the test on any finding.
    pub fn check_read_data(&self) {
        let out = self.run(["check", "--read-data"]);
        assert!(
            out.contains("no errors were found"),
            "restic check --read-data did not report a clean repository:\n{out}"
        );
    }

    /// `restic restore SNAPSHOT --target DIR`.
    pub fn restore(&self, snapshot: &str, target: &Path) {
        self.run([
            OsStr::new("restore"),
            OsStr::new(snapshot),
            OsStr::new("--target"),
            target.as_os_str(),
        ]);
    }
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
