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

/// Prints an error (with its context chain) and picks the exit status.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::from(OK),
        Ok(Outcome::Warnings) => ExitCode::from(WARNINGS),
        // The reader went away (`| head`): what it wanted, it got.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(OK),
        Err(e) => {
            eprintln!("vaultfs: {e:#}");
            ExitCode::from(ERROR)
        }
    }
}
