//! `repair index` and `repair snapshots`: take the lock, run the library's
//! repair, print what it did.
//!
//! Exit status: 0 nothing is lost, 1 data is lost (packs left out of the
//! index, blobs dropped, snapshots needing lost data listed but not
//! removed, unreadable snapshot files), 2 the repair could not run.

use std::sync::Arc;

use anyhow::Result;
use vaultfs::repair::{self, IndexOptions, IndexReport, SnapshotOptions, SnapshotsReport};
use vaultfs::repo::{Repository, lock};

use crate::exit::{self, Outcome};
use crate::output;
use crate::plan::Global;
use crate::progress::CheckBar;

/// Opens the repository and takes the lock; an error is printed and is
/// exit status 2.
fn open(global: &Global, exclusive: bool) -> Option<(lock::LockGuard, Arc<Repository>)> {
    let opened = crate::open::repository(global)
        .map(Arc::new)
        .and_then(|repo| Ok((lock::acquire(&repo, exclusive)?, repo)));
    match opened {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("vaultfs: {}", exit::message(&e));
            None
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `repair index`.
pub fn index(global: &Global, opts: &IndexOptions) -> Result<Outcome> {
    let Some((_lock, repo)) = open(global, true) else {
        return Ok(Outcome::CouldNotRun);
    };
    let bar = CheckBar::new(&global.output, None, None);
    let result = repair::rebuild_index(&repo, opts, &bar);
    bar.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vaultfs: repair index: {e}");
            return Ok(Outcome::CouldNotRun);
        }
    };
    if global.output.json {
        output::json(&report)?;
    } else if !global.output.quiet || report.lost_data() {
        for l in index_text(&report) {
            output::line(l)?;
        }
    }
    Ok(if report.lost_data() {
        Outcome::Damaged
    } else {
        Outcome::Ok
    })
}

/// The human report of `repair index`.
pub fn index_text(r: &IndexReport) -> Vec<String> {
    let mut out = Vec::new();
    for d in &r.damaged_index_files {
        out.push(format!(
            "damaged index file {} replaced: {}",
            d.id.short(),
            d.error
        ));
    }
    for m in &r.missing_packs {
        out.push(format!(
            "pack {} named by the old index is not in data/: {} dropped",
            m.pack.short(),
            plural(m.blobs, "blob")
        ));
    }
    for l in &r.left_out {
        out.push(format!(
            "pack {} ({}) left out of the index (kept in data/): {}",
            l.pack.short(),
            output::bytes(l.size),
            l.reason
        ));
    }
    for b in &r.dropped_blobs {
        out.push(format!(
            "{} blob {} in pack {} dropped: {}",
            b.blob_type,
            b.id.short(),
            b.pack.short(),
            b.reason
        ));
    }
    out.push(format!(
        "{} in data/: {} taken from the old index, {} read ({})",
        plural(r.packs as usize, "pack"),
        r.packs_from_index,
        r.packs_read,
        output::bytes(r.bytes_read)
    ));
    out.push(format!(
        "new index: {} of {} in {}; {} removed",
        plural(r.blobs_indexed as usize, "blob"),
        plural(r.packs_indexed as usize, "pack"),
        plural(r.index_files_written.len(), "index file"),
        plural(r.index_files_removed.len(), "old index file")
    ));
    if r.lost_data() {
        out.push(
            "data is lost: run `vaultfs repair snapshots` to list the snapshots that need it"
                .into(),
        );
    } else {
        out.push("the index describes every pack".into());
    }
    out
}

/// `repair snapshots`.
pub fn snapshots(global: &Global, opts: &SnapshotOptions) -> Result<Outcome> {
    let removing = opts.forget_damaged && !opts.dry_run;
    let Some((_lock, repo)) = open(global, removing) else {
        return Ok(Outcome::CouldNotRun);
    };
    let report = match repair::snapshots(&repo, opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vaultfs: repair snapshots: {}", exit::message(&e.into()));
            return Ok(Outcome::CouldNotRun);
        }
    };
    // Listed but still there, or unreadable: the vault is not whole.
    let damaged = report.damaged.iter().any(|s| !s.removed) || !report.unreadable.is_empty();
    if global.output.json {
        output::json(&report)?;
    } else if !global.output.quiet || damaged {
        for l in snapshots_text(&report, opts) {
            output::line(l)?;
        }
    }
    Ok(if damaged {
        Outcome::Damaged
    } else {
        Outcome::Ok
    })
}

/// The human report of `repair snapshots`.
pub fn snapshots_text(r: &SnapshotsReport, opts: &SnapshotOptions) -> Vec<String> {
    let mut out = Vec::new();
    if !r.missing_packs.is_empty() {
        out.push(format!(
            "the index names {} not in data/ (their blobs count as lost); run `vaultfs repair index`",
            plural(r.missing_packs.len(), "pack")
        ));
    }
    for u in &r.unreadable {
        out.push(format!(
            "snapshot file {} cannot be read (kept): {}",
            u.id.short(),
            u.error
        ));
    }
    for s in &r.damaged {
        let verb = if s.removed {
            "removed"
        } else if opts.forget_damaged {
            "would remove"
        } else {
            "damaged"
        };
        out.push(format!(
            "{verb} snapshot {} {} host {} {}",
            s.id.short(),
            output::local_time(&s.time),
            s.hostname,
            s.paths.join(" ")
        ));
        for p in &s.lost {
            let what = serde_json::to_value(p.lost)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match &p.blob {
                Some(b) => out.push(format!("  {}: {what} {}", p.path, b.short())),
                None => out.push(format!("  {}: {what}", p.path)),
            }
        }
        let more = s.lost_count.saturating_sub(s.lost.len() as u64);
        if more > 0 {
            out.push(format!("  ... and {more} more"));
        }
    }
    out.push(format!(
        "{} and {} checked",
        plural(r.snapshots as usize, "snapshot"),
        plural(r.trees as usize, "tree")
    ));
    let n = r.damaged.len();
    out.push(if n == 0 {
        "no snapshot needs lost data".into()
    } else if r.damaged.iter().all(|s| s.removed) {
        format!("removed {}", plural(n, "damaged snapshot"))
    } else if opts.forget_damaged {
        format!(
            "{} would be removed (dry run)",
            plural(n, "damaged snapshot")
        )
    } else {
        format!(
            "{} lost data; `vaultfs repair snapshots --forget-damaged` removes {}",
            if n == 1 {
                "1 snapshot needs".to_string()
            } else {
                format!("{n} snapshots need")
            },
            if n == 1 { "it" } else { "them" }
        )
    });
    out
}
