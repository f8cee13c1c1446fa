//! Exit statuses and error reporting (the table is in `vaultfs --help`).

use std::io;
use std::process::ExitCode;

/// How a command that did not fail ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done.
    Ok,
    /// Done, but something was skipped (a backup with unreadable files).
    Warnings,
    /// `check` found damage (the report is printed).
    Damaged,
    /// `check` could not run (the error is printed).
    CouldNotRun,
}

/// Success.
pub const OK: u8 = 0;
/// The command failed.
pub const ERROR: u8 = 1;
/// Completed with warnings.
pub const WARNINGS: u8 = 3;
/// `check`: damage found.
pub const DAMAGED: u8 = 1;
/// `check`: the check could not run.
pub const COULD_NOT_RUN: u8 = 2;

/// Is the error, or anything in its chain, a closed stdout pipe?
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes joined by `: `, skipping a cause whose text
/// the message before it already ends with (library errors often embed
/// their source in their own message).
pub fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

/// What `FsError::Checksum` says (the tree keeps a damaged entry's error
/// as text, so this is how the CLI recognises one).
const CHECKSUM_MISMATCH: &str = ": checksum mismatch (stored ";

/// The advice to print after an error message `text`, if it has one: a
/// checksum mismatch can be read through with `--ignore-checksums`.
pub fn hint(text: &str) -> Option<&'static str> {
    text.contains(CHECKSUM_MISMATCH).then_some(
        "a metadata checksum does not match: the volume is damaged; \
         --ignore-checksums reads it anyway (forensics), with a warning for each mismatch",
    )
}

/// Prints an error (with its context chain) and picks the exit status.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::from(OK),
        Ok(Outcome::Warnings) => ExitCode::from(WARNINGS),
        Ok(Outcome::Damaged) => ExitCode::from(DAMAGED),
        Ok(Outcome::CouldNotRun) => ExitCode::from(COULD_NOT_RUN),
        // The reader went away (`| head`): what it wanted, it got.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(OK),
        Err(e) => {
            let text = message(&e);
            eprintln!("vaultfs: {text}");
            if let Some(h) = hint(&text) {
                eprintln!("hint: {h}");
            }
            ExitCode::from(ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn message_joins_context_without_repeats() {
        let io = io::Error::other("MAC mismatch");
        let inner = anyhow::Error::new(io).context("config: MAC mismatch");
        let e = Err::<(), _>(inner).context("opening").expect_err("error");
        assert_eq!(message(&e), "opening: config: MAC mismatch");
    }

    #[test]
    fn a_checksum_error_gets_the_hint() {
        let e = vaultfs_formats::fs::FsError::Checksum {
            structure: "ext4 directory 12 block 0".into(),
            offset: 0x4000,
            stored: 1,
            computed: 2,
        };
        let e = anyhow::Error::new(e).context("/p1/dir");
        assert!(hint(&message(&e)).is_some_and(|h| h.contains("--ignore-checksums")));
        let e = vaultfs_formats::fs::FsError::corrupt("ext4 inode 12", 0, "bad magic");
        assert_eq!(hint(&message(&anyhow::Error::new(e))), None);
    }

    #[test]
    fn broken_pipe_anywhere_in_the_chain() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
