//! `forget`: remove snapshots by id or by a keep policy, as restic does:
//! per group, a table of the snapshots kept (with the rules keeping them)
//! and of those removed. Only snapshot files are removed; the data they
//! alone used stays until `prune`.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;
use vaultfs::Id;
use vaultfs::backend::FileType;
use vaultfs::forget::{self, Decision, GroupKey};
use vaultfs::prune;
use vaultfs::repo::{Repository, lock};
use vaultfs::snapshot::select::SnapshotFilter;
use vaultfs::snapshot::{Snapshot, find_snapshot, load_snapshots};

use crate::exit::Outcome;
use crate::output::{self, Table};
use crate::plan::{ForgetPlan, Global};
use crate::progress::CheckBar;

/// A snapshot in `--json` output (restic's fields plus ids).
#[derive(Serialize)]
struct JsonSnapshot<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    id: String,
    short_id: String,
}

#[derive(Serialize)]
struct JsonReason {
    id: String,
    matches: Vec<String>,
}

/// One group's outcome in `--json`.
#[derive(Serialize)]
struct JsonGroup<'a> {
    #[serde(flatten)]
    key: &'a GroupKey,
    keep: Vec<JsonSnapshot<'a>>,
    remove: Vec<JsonSnapshot<'a>>,
    reasons: Vec<JsonReason>,
}

/// Removes the snapshots the plan selects.
pub fn run(global: &Global, plan: &ForgetPlan) -> Result<Outcome> {
    let repo = Arc::new(crate::open::repository(global)?);
    // Removing snapshots excludes prune and other removers; a dry run only
    // reads.
    let _lock = lock::acquire(&repo, !plan.dry_run)?;
    let text = global.output.text();
    let mut remove: Vec<Id> = Vec::new();
    if !plan.ids.is_empty() {
        let mut seen = BTreeSet::new();
        for sel in &plan.ids {
            let (id, _) = find_snapshot(&repo, sel, &SnapshotFilter::default())?;
            if seen.insert(id) {
                remove.push(id);
            }
        }
    } else if plan.policy.is_empty() {
        if text {
            output::line("no policy was specified, no snapshots will be removed")?;
        }
        if global.output.json {
            output::json(&Vec::<JsonGroup>::new())?;
        }
        return Ok(Outcome::Ok);
    } else {
        let snaps: Vec<(Id, Snapshot)> = load_snapshots(&repo)?
            .into_iter()
            .filter(|(_, s)| plan.selection.matches(s))
            .collect();
        let groups = forget::group(snaps, plan.group_by);
        if text {
            output::line(format!("Applying Policy: {}", plan.policy))?;
        }
        let mut json = Vec::new();
        for (key, list) in &groups {
            let decisions = forget::apply(list, &plan.policy);
            if text {
                output::line(group_text(key, list, &decisions))?;
            }
            let find = |id: &Id| list.iter().find(|(i, _)| i == id).map(|(_, s)| s);
            let mut g = JsonGroup {
                key,
                keep: Vec::new(),
                remove: Vec::new(),
                reasons: Vec::new(),
            };
            for d in &decisions {
                let Some(s) = find(&d.id) else { continue };
                let js = JsonSnapshot {
                    snapshot: s,
                    id: d.id.to_hex(),
                    short_id: d.id.short(),
                };
                if d.keep {
                    g.keep.push(js);
                    g.reasons.push(JsonReason {
                        id: d.id.to_hex(),
                        matches: d.reasons.clone(),
                    });
                } else {
                    g.remove.push(js);
                    remove.push(d.id);
                }
            }
            json.push(g);
        }
        if global.output.json {
            output::json(&json)?;
        }
    }
    if plan.dry_run {
        if text && !remove.is_empty() {
            let s = if remove.len() == 1 { "" } else { "s" };
            output::line(format!(
                "would have removed {} snapshot{s} (--dry-run)",
                remove.len()
            ))?;
        }
        // The prune would see the removed snapshots still there: what it
        // shows is what a prune now would do, as restic's dry run.
        return prune_after(global, &repo, plan, &remove);
    }
    for id in &remove {
        repo.backend()
            .remove(FileType::Snapshot, &id.to_hex())
            .with_context(|| format!("removing snapshot {}", id.short()))?;
        if text && !plan.ids.is_empty() {
            output::line(format!("removed snapshot {}", id.short()))?;
        }
    }
    if text && plan.ids.is_empty() && !remove.is_empty() {
        let s = if remove.len() == 1 { "" } else { "s" };
        output::line(format!("removed {} snapshot{s}", remove.len()))?;
    }
    prune_after(global, &repo, plan, &remove)
}

/// `--prune`: prunes under the lock already held, if snapshots were (or
/// would be) removed. With `--json` the prune report follows the groups
/// as a second JSON document on its own line.
fn prune_after(
    global: &Global,
    repo: &Arc<Repository>,
    plan: &ForgetPlan,
    removed: &[Id],
) -> Result<Outcome> {
    let Some(opts) = &plan.prune else {
        return Ok(Outcome::Ok);
    };
    if removed.is_empty() {
        if global.output.text() {
            output::line("no snapshot removed: nothing to prune")?;
        }
        return Ok(Outcome::Ok);
    }
    let bar = CheckBar::new(&global.output, None, None);
    let result = prune::prune(repo, opts, &bar);
    bar.finish();
    let report = result.context("prune")?;
    if global.output.json {
        output::json(&report)?;
    } else if global.output.text() {
        for l in crate::commands::prune::text(&report) {
            output::line(l)?;
        }
    }
    Ok(Outcome::Ok)
}

/// restic's per-group text: the group, then the kept and removed tables.
fn group_text(key: &GroupKey, list: &[(Id, Snapshot)], decisions: &[Decision]) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &key.host {
        parts.push(format!("host [{h}]"));
    }
    if let Some(p) = &key.paths {
        parts.push(format!("paths [{}]", p.join(", ")));
    }
    if let Some(t) = &key.tags {
        parts.push(format!("tags [{}]", t.join(", ")));
    }
    let mut out = String::new();
    if !parts.is_empty() {
        out.push_str(&format!("\nsnapshots for ({}):\n", parts.join(", ")));
    }
    let find = |id: &Id| list.iter().find(|(i, _)| i == id).map(|(_, s)| s);
    for keep in [true, false] {
        let chosen: Vec<&Decision> = decisions.iter().filter(|d| d.keep == keep).collect();
        if chosen.is_empty() {
            continue;
        }
        let n = chosen.len();
        let s = if n == 1 { "" } else { "s" };
        let verb = if keep { "keep" } else { "remove" };
        out.push_str(&format!("{verb} {n} snapshot{s}:\n"));
        let mut headers = vec!["ID", "Time", "Host", "Tags"];
        if keep {
            headers.push("Reasons");
        }
        headers.push("Paths");
        let mut t = Table::new(&headers);
        for d in chosen {
            let Some(snap) = find(&d.id) else { continue };
            let mut row = vec![
                vec![d.id.short()],
                vec![output::local_time(&snap.time)],
                vec![snap.hostname.clone()],
                vec![snap.tags.join(",")],
            ];
            if keep {
                row.push(d.reasons.clone());
            }
            row.push(snap.paths.clone());
            t.row(row);
        }
        out.push_str(&t.render());
        out.push('\n');
    }
    out.trim_end().to_string()
}
