//! `key list|add|remove|passwd`: the key files that unlock the repository.
//!
//! Changing a password never re-encrypts data: `passwd` adds a key file for
//! the new password, reopens the repository with it, and only then removes
//! the old key file, so an interruption leaves both passwords working
//! rather than none.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use vaultfs::backend::FileType;
use vaultfs::repo::{Repository, lock};

use crate::exit::Outcome;
use crate::output::{self, Table};
use crate::password::PasswordSource;
use crate::plan::{Global, KeyPlan};

/// One key in `key list --json` (restic's field names).
#[derive(Serialize)]
struct KeyInfo {
    current: bool,
    id: String,
    #[serde(rename = "userName")]
    user_name: String,
    #[serde(rename = "hostName")]
    host_name: String,
    created: String,
}

#[derive(Serialize)]
struct KeyChange {
    message_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    added: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<String>,
}

/// Runs a `key` subcommand.
pub fn run(global: &Global, plan: &KeyPlan) -> Result<Outcome> {
    let repo = Arc::new(crate::open::repository(global)?);
    match plan {
        KeyPlan::List => list(global, &repo)?,
        KeyPlan::Add(src) => add(global, &repo, src)?,
        KeyPlan::Remove(prefix) => remove(global, &repo, prefix)?,
        KeyPlan::Passwd(src) => passwd(global, repo, src)?,
    }
    Ok(Outcome::Ok)
}

fn list(global: &Global, repo: &Repository) -> Result<()> {
    let mut keys = repo.list_keys().context("listing keys")?;
    keys.sort_by_key(|k| k.1.created);
    let infos: Vec<KeyInfo> = keys
        .iter()
        .map(|(id, kf)| KeyInfo {
            current: id.to_hex() == repo.key_name(),
            id: id.to_hex(),
            user_name: kf.username.clone(),
            host_name: kf.hostname.clone(),
            created: output::local_time(&kf.created),
        })
        .collect();
    if global.output.json {
        return output::json(&infos);
    }
    let mut t = Table::new(&[" ID", "User", "Host", "Created"]);
    for k in &infos {
        let mark = if k.current { "*" } else { " " };
        let short = k.id.get(..8).unwrap_or(&k.id);
        t.row(vec![
            vec![format!("{mark}{short}")],
            vec![k.user_name.clone()],
            vec![k.host_name.clone()],
            vec![k.created.clone()],
        ]);
    }
    output::line(t.render())
}

fn report(global: &Global, change: KeyChange, text: String) -> Result<()> {
    if global.output.json {
        output::json(&change)
    } else if global.output.text() {
        output::line(text)
    } else {
        Ok(())
    }
}

fn add(global: &Global, repo: &Arc<Repository>, src: &PasswordSource) -> Result<()> {
    let _lock = lock::acquire(repo, false)?;
    let password = src.read_new("enter new password: ")?;
    let id = repo.add_key(&password, global.kdf).context("adding key")?;
    report(
        global,
        KeyChange {
            message_type: "key_added",
            added: Some(id.to_hex()),
            removed: None,
        },
        format!("saved new key with ID {id}"),
    )
}

fn remove(global: &Global, repo: &Arc<Repository>, prefix: &str) -> Result<()> {
    let _lock = lock::acquire(repo, true)?;
    let id = repo.find_id(FileType::Key, prefix)?;
    repo.remove_key(&id)?;
    report(
        global,
        KeyChange {
            message_type: "key_removed",
            added: None,
            removed: Some(id.to_hex()),
        },
        format!("removed key {id}"),
    )
}

fn passwd(global: &Global, repo: Arc<Repository>, src: &PasswordSource) -> Result<()> {
    let lock = lock::acquire(&repo, true)?;
    let password = src.read_new("enter new password: ")?;
    let old = repo.key_name().to_owned();
    let new = repo.add_key(&password, global.kdf).context("adding key")?;
    // The key in use cannot be removed; reopen with the new password first.
    let reopened = Repository::open(repo.backend().clone(), &password)
        .context("reopening the repository with the new password")?;
    if reopened.key_name() == old {
        bail!(
            "the new password also opens the current key {}; added key {new}, \
             removed nothing",
            old.get(..8).unwrap_or(&old)
        );
    }
    let old_id = reopened.find_id(FileType::Key, &old)?;
    reopened
        .remove_key(&old_id)
        .context("removing the old key")?;
    drop(lock);
    report(
        global,
        KeyChange {
            message_type: "password_changed",
            added: Some(new.to_hex()),
            removed: Some(old),
        },
        format!("saved new key as {new}; removed old key {}", old_id.short()),
    )
}
