//! `restore SNAPSHOT[:PATH] --target DIR`: write a snapshot, or a path in
//! it, into a directory, then print a summary (or the summary as JSON).
//!
//! Entries that cannot be restored (damaged or missing blobs, failed
//! writes) are reported as they happen and the restore goes on; the command
//! then fails with status 1. Entries restored without some metadata
//! (owners, extended attributes, devices) are warnings: status 3.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use vaultfs::repo::lock;
use vaultfs::restore::{self, Overwrite, RestoreSummary};

use crate::exit::Outcome;
use crate::output;
use crate::plan::{Global, RestorePlan};
use crate::progress::RestoreBar;

/// The `--json` summary line (restic's `message_type` plus our counters).
#[derive(Serialize)]
struct JsonSummary<'a> {
    message_type: &'static str,
    snapshot_id: String,
    path: &'a str,
    target: String,
    #[serde(flatten)]
    summary: &'a RestoreSummary,
}

/// Runs the restore.
pub fn run(global: &Global, plan: &RestorePlan) -> Result<Outcome> {
    let out = &global.output;
    let repo = Arc::new(crate::open::repository(global)?);
    let _lock = lock::acquire(&repo, false)?;
    repo.load_index().context("loading the index")?;
    let (id, snap, source) =
        crate::open::snapshot_target(&repo, &plan.source, &plan.selection, &global.fs)?;
    let opts = &plan.options;
    let target = opts.target.display().to_string();
    if out.text() {
        let path = if plan.source.explicit_path {
            format!(", path {}", plan.source.path)
        } else {
            String::new()
        };
        let verb = if opts.dry_run {
            "dry run: checking"
        } else {
            "restoring"
        };
        output::line(format!(
            "{verb} snapshot {} of [{}] at {}{path} to {target}",
            id.short(),
            snap.paths.join(" "),
            output::local_time(&snap.time),
        ))?;
    }
    let progress = RestoreBar::new(out);
    let summary = match &source {
        crate::open::Target::Node(node) => restore::restore(&repo, node, opts, &progress),
        crate::open::Target::Tree(entry) => {
            let path = &plan.source.path;
            let name = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("disk");
            restore::restore_entry(entry, name, path, opts, &progress)
        }
    }
    .with_context(|| {
        format!(
            "restoring snapshot {} to {}",
            id.short(),
            opts.target.display()
        )
    })?;
    progress.finish();
    if out.json {
        output::json(&JsonSummary {
            message_type: "summary",
            snapshot_id: id.to_hex(),
            path: &plan.source.path,
            target,
            summary: &summary,
        })?;
    } else if out.text() {
        output::line(summary_text(&summary, opts.overwrite))?;
    }
    if summary.has_errors() {
        let n = summary.error_count;
        let what = if summary.dry_run {
            "failed verification"
        } else {
            "could not be restored"
        };
        bail!(
            "{n} {} {what} (see the errors above)",
            plural(n, "entry", "entries")
        );
    }
    if summary.has_warnings() {
        let n = summary.warning_count;
        eprintln!(
            "Warning: {n} {} restored without some of their metadata (see above)",
            plural(n, "entry was", "entries were")
        );
        return Ok(Outcome::Warnings);
    }
    Ok(Outcome::Ok)
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `N things`, leaving out zero counts except for files and dirs.
fn counts(s: &RestoreSummary) -> String {
    let mut parts = vec![
        format!(
            "{} {}",
            s.files_restored,
            plural(s.files_restored, "file", "files")
        ),
        format!(
            "{} {}",
            s.dirs_restored,
            plural(s.dirs_restored, "dir", "dirs")
        ),
    ];
    for (n, one, many) in [
        (s.symlinks_restored, "symlink", "symlinks"),
        (s.hardlinks_restored, "hard link", "hard links"),
        (s.specials_restored, "special file", "special files"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {}", plural(n, one, many)));
        }
    }
    parts.join(", ")
}

/// The final text: what was (or in a dry run, would be) restored, what was
/// left alone, and how long it took.
fn summary_text(s: &RestoreSummary, policy: Overwrite) -> String {
    let bytes = output::bytes(s.bytes_written);
    let time = output::duration(s.duration_secs);
    let mut lines = vec![if s.dry_run {
        format!(
            "dry run: would restore {}, {bytes}; read and verified in {time}, nothing written",
            counts(s)
        )
    } else {
        format!("restored {}, {bytes} in {time}", counts(s))
    }];
    let would = if s.dry_run { "would skip" } else { "skipped" };
    if s.files_skipped > 0 {
        lines.push(format!(
            "{would} {} existing {} (--overwrite {})",
            s.files_skipped,
            plural(s.files_skipped, "entry", "entries"),
            policy.as_str()
        ));
    }
    if s.files_unchanged > 0 {
        let n = s.files_unchanged;
        let files = plural(n, "file", "files");
        lines.push(if s.dry_run {
            format!(
                "would keep {n} unchanged {files} (same size and mtime), restoring only metadata"
            )
        } else {
            format!("kept {n} unchanged {files} (same size and mtime), restored only metadata")
        });
    }
    if s.error_count > 0 {
        lines.push(format!(
            "{} {}",
            s.error_count,
            plural(s.error_count, "error", "errors")
        ));
    }
    if s.warning_count > 0 {
        lines.push(format!(
            "{} {}",
            s.warning_count,
            plural(s.warning_count, "warning", "warnings")
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_texts() {
        let s = RestoreSummary {
            files_restored: 1,
            dirs_restored: 3,
            symlinks_restored: 2,
            bytes_written: 2048,
            duration_secs: 61.0,
            ..RestoreSummary::default()
        };
        assert_eq!(
            summary_text(&s, Overwrite::Always),
            "restored 1 file, 3 dirs, 2 symlinks, 2.000 KiB in 1:01"
        );
        let s = RestoreSummary {
            dry_run: true,
            files_restored: 4,
            files_skipped: 1,
            error_count: 2,
            ..RestoreSummary::default()
        };
        let text = summary_text(&s, Overwrite::Never);
        assert!(
            text.starts_with("dry run: would restore 4 files, 0 dirs, 0 B;"),
            "{text}"
        );
        assert!(
            text.contains("would skip 1 existing entry (--overwrite never)"),
            "{text}"
        );
        assert!(text.ends_with("2 errors"), "{text}");
    }
}
