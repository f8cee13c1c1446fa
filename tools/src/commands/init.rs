//! `init`: create a repository with one key.

use anyhow::{Context, Result};
use serde::Serialize;
use vaultfs::repo::Repository;

use crate::exit::Outcome;
use crate::output;
use crate::plan::Global;

#[derive(Serialize)]
struct Initialized<'a> {
    message_type: &'static str,
    id: &'a str,
    repository: String,
}

/// Creates the repository at `-r PATH`.
pub fn run(global: &Global) -> Result<Outcome> {
    let backend = crate::open::backend(global)?;
    let location = backend.location();
    let password = global
        .password
        .read_new(&format!("enter password for new repository {location}: "))?;
    let repo = Repository::init(backend, &password, global.kdf)
        .with_context(|| format!("creating repository at {location}"))?;
    let id = &repo.config().id;
    if global.output.json {
        output::json(&Initialized {
            message_type: "initialized",
            id,
            repository: location,
        })?;
    } else if global.output.text() {
        output::line(format!(
            "created vaultfs repository {} at {location}\n\n\
             Please note that knowledge of your password is required to access\n\
             the repository. Losing your password means that your data is\n\
             irrecoverably lost.",
            id.get(..10).unwrap_or(id)
        ))?;
    }
    Ok(Outcome::Ok)
}
