//! `unlock`: remove stale locks, or every lock with `--remove-all`.

use anyhow::Result;
use serde::Serialize;
use vaultfs::repo::lock;

use crate::exit::Outcome;
use crate::output;
use crate::plan::Global;

#[derive(Serialize)]
struct Unlocked {
    removed: usize,
}

/// Removes locks.
pub fn run(global: &Global, remove_all: bool) -> Result<Outcome> {
    let repo = crate::open::repository(global)?;
    let removed = lock::remove_locks(&repo, remove_all)?;
    if global.output.json {
        output::json(&Unlocked { removed })?;
    } else if global.output.text() {
        let s = if removed == 1 { "" } else { "s" };
        output::line(format!("successfully removed {removed} lock{s}"))?;
    }
    Ok(Outcome::Ok)
}
