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
}

/// Success.
pub const OK: u8 = 0;
/// The command failed.
pub const ERROR: u8 = 1;
/// Completed with warnings.
pub const WARNINGS: u8 = 3;

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
fn message(e: &anyhow::Error) -> String {
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

/// Prints an error (with its context chain) and picks the exit status.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::from(OK),
        Ok(Outcome::Warnings) => ExitCode::from(WARNINGS),
        // The reader went away (`| head`): what it wanted, it got.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(OK),
        Err(e) => {
            eprintln!("vaultfs: {}", message(&e));
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
    fn broken_pipe_anywhere_in_the_chain() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
