//! `snapshots`: list snapshots as restic does, as a table or as restic's
//! JSON array (`id`, `short_id` and the snapshot's own fields).

use anyhow::Result;
use serde::Serialize;
use vaultfs::Id;
use vaultfs::snapshot::Snapshot;

use crate::exit::Outcome;
use crate::output::{self, Table};
use crate::plan::{Global, SnapshotsPlan};

/// A snapshot in `--json` output.
#[derive(Serialize)]
struct JsonSnapshot<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    id: String,
    short_id: String,
}

/// Lists the selected snapshots.
pub fn run(global: &Global, plan: &SnapshotsPlan) -> Result<Outcome> {
    let repo = crate::open::repository(global)?;
    let snaps = crate::open::snapshots(&repo, &plan.selectors, &plan.selection)?;
    if global.output.json {
        let list: Vec<JsonSnapshot> = snaps
            .iter()
            .map(|(id, s)| JsonSnapshot {
                snapshot: s,
                id: id.to_hex(),
                short_id: id.short(),
            })
            .collect();
        output::json(&list)?;
    } else if global.output.text() {
        output::line(table(&snaps))?;
    }
    Ok(Outcome::Ok)
}

fn table(snaps: &[(Id, Snapshot)]) -> String {
    // restic shows the size column only when snapshots carry a summary.
    let with_size = snaps.iter().any(|(_, s)| s.summary.is_some());
    let mut headers = vec!["ID", "Time", "Host", "Tags", "Paths"];
    if with_size {
        headers.push("Size");
    }
    let mut t = Table::new(&headers);
    for (id, s) in snaps {
        let mut row = vec![
            vec![id.short()],
            vec![output::local_time(&s.time)],
            vec![s.hostname.clone()],
            vec![s.tags.join(",")],
            if s.paths.is_empty() {
                vec![String::new()]
            } else {
                s.paths.clone()
            },
        ];
        if with_size {
            let size = s
                .summary
                .as_ref()
                .map(|m| output::bytes(m.total_bytes_processed))
                .unwrap_or_default();
            row.push(vec![size]);
        }
        t.row(row);
    }
    let n = snaps.len();
    let s = if n == 1 { "" } else { "s" };
    format!("{}\n{n} snapshot{s}", t.render())
}
