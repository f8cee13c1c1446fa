//! `prune`: take the exclusive lock, run the library's prune, print what
//! it found and did in restic's layout.
//!
//! Exit status: 0 done (or planned), 1 error.

use std::sync::Arc;

use anyhow::{Context, Result};
use vaultfs::prune::{self, Blobs, PruneOptions, PruneReport};
use vaultfs::repo::lock;

use crate::exit::Outcome;
use crate::output;
use crate::plan::Global;
use crate::progress::CheckBar;

/// `prune`.
pub fn run(global: &Global, opts: &PruneOptions) -> Result<Outcome> {
    let repo = Arc::new(crate::open::repository(global)?);
    // A dry run changes nothing, but it must not see a half-done change
    // either: it takes the exclusive lock too, as restic does.
    let _lock = lock::acquire(&repo, true).context("prune needs the exclusive lock")?;
    let bar = CheckBar::new(&global.output, None, None);
    let result = prune::prune(&repo, opts, &bar);
    bar.finish();
    let report = result.context("prune")?;
    if global.output.json {
        output::json(&report)?;
    } else if !global.output.quiet {
        for l in text(&report) {
            output::line(l)?;
        }
    }
    Ok(Outcome::Ok)
}

fn blobs(b: Blobs) -> String {
    format!("{} blobs / {}", b.count, output::bytes(b.bytes))
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0.00%".into()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

/// The human report, laid out like restic's.
pub fn text(r: &PruneReport) -> Vec<String> {
    let mut out = vec![
        format!("{} snapshots, {} trees walked", r.snapshots, r.trees),
        String::new(),
        format!("used:         {}", blobs(r.used)),
        format!("duplicates:   {}", blobs(r.duplicate)),
        format!("unused:       {}", blobs(r.unused)),
        format!(
            "unreferenced: {} packs / {}",
            r.packs_unreferenced,
            output::bytes(r.unreferenced_bytes)
        ),
        format!("total:        {}", output::bytes(r.total_bytes)),
        format!(
            "unused size:  {} of total size",
            percent(r.total_bytes.saturating_sub(r.used.bytes), r.total_bytes)
        ),
        String::new(),
        format!("to repack:    {}", blobs(r.repack_blobs)),
        format!("this removes: {}", blobs(r.repack_removed)),
        format!(
            "to delete:    {} (and {} unreferenced packs / {})",
            blobs(r.delete_removed),
            r.packs_unreferenced,
            output::bytes(r.unreferenced_bytes)
        ),
        format!("remaining:    {}", output::bytes(r.total_after)),
        format!(
            "unused size after prune: {} ({} of remaining size)",
            output::bytes(r.unused_after),
            percent(r.unused_after, r.total_after)
        ),
        String::new(),
        format!("totally used packs: {}", r.packs_used),
        format!("partly used packs:  {}", r.packs_partly_used),
        format!("unused packs:       {}", r.packs_unused),
        String::new(),
        format!("to keep:      {} packs", r.keep),
        format!(
            "to repack:    {} packs / {}",
            r.repack,
            output::bytes(r.repack_bytes)
        ),
        format!(
            "to delete:    {} packs / {}",
            r.delete,
            output::bytes(r.delete_bytes)
        ),
    ];
    if r.packs_missing > 0 {
        out.push(format!(
            "{} packs the index named are not in data/ (no snapshot needs them): dropped from the index",
            r.packs_missing
        ));
    }
    if r.dry_run {
        out.push(format!(
            "would free about {} (dry run: nothing changed)",
            output::bytes(r.freed_bytes)
        ));
    } else {
        out.push(format!(
            "repacked into {} new packs / {}; {} index files written, {} removed; {} packs deleted",
            r.new_packs,
            output::bytes(r.new_pack_bytes),
            r.index_files_written.len(),
            r.index_files_removed.len(),
            r.packs_deleted
        ));
        out.push(format!("freed {}", output::bytes(r.freed_bytes)));
    }
    out
}
