//! One module per subcommand; each exposes `run` taking the shared settings
//! and its checked arguments from the plan.

pub mod backup;
pub mod cat;
pub mod check;
pub mod find;
pub mod forget;
pub mod generate;
pub mod image;
pub mod init;
pub mod key;
pub mod ls;
pub mod mount;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod snapshots;
pub mod stats;
pub mod unlock;

use anyhow::Result;

use crate::exit::Outcome;
use crate::plan::{Command, Plan};

/// Runs the planned command.
pub fn dispatch(plan: &Plan) -> Result<Outcome> {
    let g = &plan.global;
    match &plan.command {
        Command::Init => init::run(g),
        Command::Key(k) => key::run(g, k),
        Command::Snapshots(s) => snapshots::run(g, s),
        Command::Backup(b) => backup::run(g, b),
        Command::Ls(l) => ls::run(g, l),
        Command::Cat(c) => cat::run(g, c),
        Command::CatImage(e) => image::cat(g, e),
        Command::LsImage(l) => ls::run_image(g, l),
        Command::Find(f) => find::run(g, f),
        Command::Inspect(file) => image::inspect(g, file),
        Command::Restore(r) => restore::run(g, r),
        Command::Mount(m) => mount::run(g, m),
        Command::Unlock { remove_all } => unlock::run(g, *remove_all),
        Command::Forget(f) => forget::run(g, f),
        Command::Stats(s) => stats::run(g, s),
        Command::Check(o) => check::run(g, o),
        Command::RepairIndex(o) => repair::index(g, o),
        Command::RepairSnapshots(o) => repair::snapshots(g, o),
        Command::Prune(o) => prune::run(g, o),
        Command::Generate(p) => generate::run(p),
    }
}
