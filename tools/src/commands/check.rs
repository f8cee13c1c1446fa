//! `check`: verify the repository's structure and, with `--read-data`, its
//! packs; print every finding, then who needs each damaged pack.
//!
//! Exit status: 0 clean (unused packs are not damage), 1 damage found, 2
//! the check could not run (no repository, no key matches, bad config).

use std::sync::Arc;

use anyhow::Result;
use vaultfs::check::{self, Finding, Location, Options, Report, Severity};
use vaultfs::repo::lock;
use vaultfs::vfs::CONTENTS_SUFFIX;

use crate::exit::{self, Outcome};
use crate::output;
use crate::plan::Global;
use crate::progress::CheckBar;

/// Runs the check and prints its report.
pub fn run(global: &Global, opts: &Options) -> Result<Outcome> {
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
    let bar = CheckBar::new(&global.output);
    let report = check::check(&repo, opts, &bar);
    bar.finish();
    if global.output.json {
        output::json(&report)?;
    } else if !global.output.quiet || report.damaged() {
        for l in text(&report) {
            output::line(l)?;
        }
    }
    Ok(if report.damaged() {
        Outcome::Damaged
    } else {
        Outcome::Ok
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
    out.push(if errors == 0 {
        format!("no errors were found ({infos} notices)")
    } else {
        format!("{errors} errors found ({infos} notices)")
    });
    out
}
