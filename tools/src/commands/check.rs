//! `check`: verify the repository's structure and, with `--read-data`, its
//! packs; print every finding, then who needs each damaged pack.
//!
//! Exit status: 0 clean (unused packs are not damage), 1 damage found, 2
//! the check could not run (no repository, no key matches, bad config), 3
//! the data pass was stopped before the end with no damage found so far.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use vaultfs::check::{self, Finding, Location, ProgressFile, Report, Severity};
use vaultfs::repo::lock;
use vaultfs::vfs::CONTENTS_SUFFIX;

use crate::exit::{self, Outcome};
use crate::output;
use crate::plan::{CheckPlan, Global};
use crate::progress::CheckBar;

/// Runs the check and prints its report.
pub fn run(global: &Global, plan: &CheckPlan) -> Result<Outcome> {
    // A shared lock, as for every reader: a prune (exclusive) running
    // meanwhile would make packs vanish under the check.
    let opened = crate::open::repository(global)
        .map(Arc::new)
        .and_then(|repo| Ok((lock::acquire(&repo, false)?, repo)));
    let (_lock, repo) = match opened {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vaultfs: {}", exit::message(&e));
            return Ok(Outcome::CouldNotRun);
        }
    };
    let mut opts = plan.options.clone();
    if opts.read_data {
        let path = match (
            &plan.progress_file,
            default_progress_file(&repo.config().id),
        ) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(p)) => Some(p),
            (None, None)
                if plan.resume || plan.max_duration.is_some() || plan.test_stop_after.is_some() =>
            {
                eprintln!(
                    "vaultfs: no place for the progress file (neither XDG_STATE_HOME nor HOME \
                     is set): give --progress-file FILE"
                );
                return Ok(Outcome::CouldNotRun);
            }
            (None, None) => None,
        };
        if let Some(path) = path {
            match ProgressFile::open(&path, plan.resume) {
                Ok(f) => opts.progress_file = Some(Arc::new(f)),
                Err(e) => {
                    eprintln!("vaultfs: progress file {}: {e}", path.display());
                    return Ok(Outcome::CouldNotRun);
                }
            }
        }
    }
    let deadline = plan.max_duration.map(|d| Instant::now() + d);
    let bar = CheckBar::new(&global.output, deadline, plan.test_stop_after);
    let report = check::check(&repo, &opts, &bar);
    bar.finish();
    for n in &report.notes {
        eprintln!("vaultfs: {n}");
    }
    if global.output.json {
        output::json(&report)?;
    } else if !global.output.quiet || report.damaged() {
        for l in text(&report) {
            output::line(l)?;
        }
    }
    Ok(if report.damaged() {
        Outcome::Damaged
    } else if !report.complete() {
        Outcome::Warnings
    } else {
        Outcome::Ok
    })
}

/// `$XDG_STATE_HOME/vaultfs/check/ID.jsonl`, else under `~/.local/state`.
fn default_progress_file(repository: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    // The id is hex from the config; anything else is not used as a name.
    let safe = !repository.is_empty() && repository.chars().all(|c| c.is_ascii_alphanumeric());
    safe.then(|| {
        base.join("vaultfs/check")
            .join(format!("{repository}.jsonl"))
    })
}

fn location(l: &Location) -> String {
    let mut parts = Vec::new();
    if let Some(f) = &l.file {
        if l.pack.is_none() && l.snapshot.is_none() {
            parts.push(f.clone());
        }
    }
    if let Some(p) = &l.pack {
        parts.push(format!("pack {}", p.short()));
    }
    if let Some(b) = &l.blob {
        parts.push(format!("blob {}", b.short()));
    }
    if let Some(s) = &l.snapshot {
        parts.push(format!("snapshot {}", s.short()));
    }
    if let Some(p) = &l.path {
        // Inside a disk image: the path the tree shows it at.
        match &l.inner_path {
            Some(i) => parts.push(format!("{p}{CONTENTS_SUFFIX}/{i}")),
            None => parts.push(p.clone()),
        }
    }
    if let Some(o) = l.offset {
        parts.push(format!("offset {o}"));
    }
    if let Some(o) = l.image_offset {
        parts.push(format!("(blob at image offset {o})"));
    }
    parts.join(" ")
}

fn finding_line(f: &Finding) -> String {
    let sev = match f.severity {
        Severity::Info => "info",
        Severity::Error => "error",
    };
    let kind = serde_json::to_value(f.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{sev}: {kind}: {}: {}", location(&f.location), f.detail)
}

/// The human report: one line per finding, the users of each damaged
/// pack, a summary.
pub fn text(r: &Report) -> Vec<String> {
    let mut out: Vec<String> = r.findings.iter().map(finding_line).collect();
    for d in &r.damaged_packs {
        let s = if d.lost_blobs == 1 { "" } else { "s" };
        if d.users.is_empty() {
            out.push(format!(
                "damaged pack {} ({} blob{s} lost): no snapshot needs it",
                d.pack.short(),
                d.lost_blobs
            ));
            continue;
        }
        out.push(format!(
            "damaged pack {} ({} blob{s} lost) is needed by:",
            d.pack.short(),
            d.lost_blobs
        ));
        for u in &d.users {
            out.push(format!("  snapshot {} {}", u.snapshot.short(), u.path));
        }
    }
    let errors = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let infos = r.findings.len() - errors;
    let st = &r.stats;
    let mut summary = format!(
        "{} index files, {} packs, {} snapshots, {} trees checked",
        st.index_files, st.packs, st.snapshots, st.trees
    );
    if st.packs_read > 0 {
        summary.push_str(&format!(
            "; {} packs ({}) and {} blobs read",
            st.packs_read,
            output::bytes(st.bytes_read),
            st.blobs_read
        ));
        if st.packs_resumed > 0 {
            summary.push_str(&format!(
                " ({} of the packs by an earlier run)",
                st.packs_resumed
            ));
        }
    }
    if st.images > 0 {
        summary.push_str(&format!(
            "; {} disk images: {} filesystems, {} directories, {} files, {} other entries walked",
            st.images, st.image_volumes, st.image_dirs, st.image_files, st.image_others
        ));
        if st.image_bytes > 0 {
            summary.push_str(&format!(", {} read in them", output::bytes(st.image_bytes)));
        }
    }
    out.push(summary);
    if st.packs_left > 0 {
        out.push(format!(
            "stopped before the end: {} packs not read yet; run the same check with --resume to continue",
            st.packs_left
        ));
    }
    out.push(if errors == 0 {
        format!("no errors were found ({infos} notices)")
    } else {
        format!("{errors} errors found ({infos} notices)")
    });
    out
}
