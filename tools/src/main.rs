//! `vaultfs`: the command-line tool. Parses the command line, checks it into
//! a plan, and runs the command; errors are printed as `vaultfs: <message>`
//! and mapped to the exit statuses documented in `--help`.

mod cli;
mod commands;
mod exit;
mod open;
mod output;
mod password;
mod plan;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = plan::Plan::from_cli(cli).and_then(|plan| commands::dispatch(&plan));
    exit::finish(result)
}
