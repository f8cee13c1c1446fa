//! `generate`: shell completions and man pages, both from the clap
//! definition so they never disagree with `--help`.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell};
use crate::exit::Outcome;
use crate::plan::GeneratePlan;

fn shell(s: CompletionShell) -> Shell {
    match s {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Elvish => Shell::Elvish,
        CompletionShell::Powershell => Shell::PowerShell,
    }
}

/// Prints completions and/or writes man pages.
pub fn run(plan: &GeneratePlan) -> Result<Outcome> {
    if let Some(s) = plan.completion {
        // Rendered into memory first: the generator cannot report a write
        // error, and a closed stdout must end quietly.
        let mut buf = Vec::new();
        clap_complete::generate(shell(s), &mut Cli::command(), "vaultfs", &mut buf);
        let mut out = std::io::stdout().lock();
        out.write_all(&buf)?;
        out.flush()?;
    }
    if let Some(dir) = &plan.man {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        clap_mangen::generate_to(Cli::command(), dir)
            .with_context(|| format!("writing man pages into {}", dir.display()))?;
    }
    Ok(Outcome::Ok)
}
