//! `stats`: sizes of snapshots, restored or as stored, in restic's modes
//! and words.

use anyhow::{Context, Result};
use vaultfs::stats::{self, Mode};

use crate::exit::Outcome;
use crate::output;
use crate::plan::{Global, StatsPlan};

/// Counts the selected snapshots and prints the totals.
pub fn run(global: &Global, plan: &StatsPlan) -> Result<Outcome> {
    let repo = crate::open::repository(global)?;
    repo.load_index().context("loading the index")?;
    let snaps = crate::open::snapshots(&repo, &plan.selectors, &plan.selection)?;
    let st = stats::stats(&repo, &snaps, plan.mode)?;
    if global.output.json {
        output::json(&st)?;
        return Ok(Outcome::Ok);
    }
    if !global.output.text() {
        return Ok(Outcome::Ok);
    }
    let mode = match plan.mode {
        Mode::RestoreSize => "restore-size",
        Mode::FilesByContents => "files-by-contents",
        Mode::RawData => "raw-data",
    };
    let mut rows: Vec<(&str, String)> =
        vec![("Snapshots processed", st.snapshots_count.to_string())];
    if plan.mode != Mode::RawData {
        rows.push(("Total File Count", st.total_file_count.to_string()));
    }
    if let Some(n) = st.total_blob_count {
        rows.push(("Total Blob Count", n.to_string()));
    }
    if let Some(n) = st.total_pack_count {
        rows.push(("Total Pack Count", n.to_string()));
    }
    if let Some(n) = st.total_uncompressed_size {
        rows.push(("Total Uncompressed Size", output::bytes(n)));
    }
    rows.push(("Total Size", output::bytes(st.total_size)));
    if let Some(p) = st.compression_progress {
        rows.push(("Compression Progress", format!("{p:.2}%")));
    }
    if let Some(r) = st.compression_ratio {
        rows.push(("Compression Ratio", format!("{r:.2}x")));
    }
    if let Some(p) = st.compression_space_saving {
        rows.push(("Compression Space Saving", format!("{p:.2}%")));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("Stats in {mode} mode:");
    for (k, v) in rows {
        out.push_str(&format!("\n{k:>width$}:  {v}"));
    }
    output::line(out)?;
    Ok(Outcome::Ok)
}
