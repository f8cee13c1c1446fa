//! `backup`: write a snapshot of files and directories, then print restic's
//! summary (or the summary as JSON). Unreadable files are warnings: they
//! are reported as they happen, the snapshot is written without them, and
//! the exit status is 3.

use std::sync::Arc;

use anyhow::{Context, Result};
use vaultfs::archiver::stream::{StreamOptions, StreamSource};
use vaultfs::archiver::{self, BackupSummary};
use vaultfs::repo::lock;

use crate::exit::Outcome;
use crate::output;
use crate::plan::{BackupPlan, Global};
use crate::progress::BackupProgress;

/// Runs the backup.
pub fn run(global: &Global, plan: &BackupPlan) -> Result<Outcome> {
    let out = &global.output;
    out.info("open repository");
    let mut repo = crate::open::repository(global)?;
    repo.set_compression(plan.compression);
    let repo = Arc::new(repo);
    out.info("lock repository");
    let _lock = lock::acquire(&repo, false)?;
    out.info("load index files");
    // Deduplication against existing data needs the index in memory.
    repo.load_index().context("loading the index")?;
    if let Some(disk) = &plan.disk {
        return run_disk(global, &repo, disk);
    }
    if let Some(stream) = &plan.stream {
        return run_stream(global, &repo, stream);
    }
    out.info(format_args!(
        "start backup on {}",
        plan.options
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let progress = BackupProgress::new(&global.output);
    let summary = archiver::backup(&repo, &plan.options, &progress)?;
    progress.finish();
    if global.output.json {
        output::json(&summary)?;
    } else if global.output.text() {
        output::line(summary_text(&summary))?;
    }
    if summary.warnings.is_empty() {
        Ok(Outcome::Ok)
    } else {
        eprintln!(
            "Warning: {} file(s) or directories could not be read; \
             the snapshot was saved without them",
            summary.warnings.len()
        );
        Ok(Outcome::Warnings)
    }
}

/// `backup --disk`: the disk as a VMDK descriptor and its extents.
fn run_disk(
    global: &Global,
    repo: &Arc<vaultfs::repo::Repository>,
    opts: &vaultfs::archiver::disk::DiskOptions,
) -> Result<Outcome> {
    let out = &global.output;
    out.info(format_args!(
        "start disk backup of {}",
        opts.source.display()
    ));
    let progress = BackupProgress::new(&global.output);
    let result = vaultfs::archiver::disk::backup_disk(repo, opts, &progress)?;
    progress.finish();
    let summary = &result.summary;
    if global.output.json {
        output::json(summary)?;
    } else if global.output.text() {
        let mut layout = String::new();
        for p in &result.pieces {
            layout.push_str(&format!(
                "  {:>14} {:>14}  {}{}\n",
                p.start,
                p.len,
                p.what,
                if p.selected {
                    ""
                } else {
                    " (not selected: zeros)"
                }
            ));
        }
        output::line(format!(
            "disk {} ({}), stored as {}.vmdk:\n{layout}",
            opts.source.display(),
            output::bytes(result.pieces.iter().map(|p| p.len).sum()),
            opts.name
        ))?;
        output::line(summary_text(summary))?;
    }
    if summary.warnings.is_empty() {
        Ok(Outcome::Ok)
    } else {
        eprintln!(
            "Warning: {} problem(s) while reading the disk (see above); the snapshot records them",
            summary.warnings.len()
        );
        Ok(Outcome::Warnings)
    }
}

/// `backup --stdin` / `--stdin-from-command`: a program's output as one
/// file. A failed command is an error (no snapshot); stderr output is a
/// warning (the snapshot is written).
fn run_stream(
    global: &Global,
    repo: &Arc<vaultfs::repo::Repository>,
    opts: &StreamOptions,
) -> Result<Outcome> {
    let out = &global.output;
    match &opts.source {
        StreamSource::Stdin => out.info(format_args!(
            "start backup of standard input as /{}",
            opts.filename
        )),
        StreamSource::Command(cmd) => out.info(format_args!(
            "start backup of the output of `{cmd}` as /{}",
            opts.filename
        )),
    }
    let progress = BackupProgress::new(&global.output);
    let summary = vaultfs::archiver::stream::backup_stream(repo, opts, &progress)?;
    progress.finish();
    if global.output.json {
        output::json(&summary)?;
    } else if global.output.text() {
        output::line(summary_text(&summary))?;
    }
    match &summary.command {
        Some(c) if c.stderr_bytes > 0 => {
            eprintln!(
                "Warning: the command `{}` wrote {} byte(s) on standard error (shown above); \
                 it exited with status 0 and the snapshot was saved",
                c.command, c.stderr_bytes
            );
            Ok(Outcome::Warnings)
        }
        _ if !summary.warnings.is_empty() => Ok(Outcome::Warnings),
        _ => Ok(Outcome::Ok),
    }
}

/// The summary in restic's words.
fn summary_text(s: &BackupSummary) -> String {
    let parent = match &s.parent {
        Some(p) => format!("using parent snapshot {}\n\n", p.short()),
        None => String::new(),
    };
    format!(
        "{parent}Files:       {:5} new, {:5} changed, {:5} unmodified\n\
         Dirs:        {:5} new, {:5} changed, {:5} unmodified\n\
         Added to the repository: {} ({} stored)\n\n\
         processed {} files, {} in {}\n\
         snapshot {} saved",
        s.files_new,
        s.files_changed,
        s.files_unmodified,
        s.dirs_new,
        s.dirs_changed,
        s.dirs_unmodified,
        output::bytes(s.data_added),
        output::bytes(s.data_added_packed),
        s.total_files_processed,
        output::bytes(s.total_bytes_processed),
        output::duration(s.duration_secs),
        s.snapshot_id.short(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_like_restic() {
        let s = BackupSummary {
            files_new: 5,
            dirs_new: 2,
            data_added: 2048,
            data_added_packed: 1100,
            total_files_processed: 5,
            total_bytes_processed: 2048,
            duration_secs: 61.0,
            ..BackupSummary::default()
        };
        let text = summary_text(&s);
        assert!(text.contains("Files:           5 new,     0 changed,     0 unmodified"));
        assert!(text.contains("Added to the repository: 2.000 KiB (1.074 KiB stored)"));
        assert!(text.contains("processed 5 files, 2.000 KiB in 1:01"));
        assert!(text.ends_with("snapshot 00000000 saved"));
    }
}
