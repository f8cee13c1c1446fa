//! `find PATTERN...`: entries whose name (or, for a pattern with `/`, whose
//! path) matches, in every selected snapshot, newest last, as restic's
//! `find` prints them. With `--images` the search goes into disk images'
//! `.contents/` directories too. Directories that cannot be read are
//! reported and the search goes on; the command then fails.

use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use vaultfs::repo::lock;
use vaultfs::snapshot::load_snapshots;
use vaultfs::vfs::{Entry, Kind, Options, Vfs};

use crate::exit::Outcome;
use crate::output;
use crate::plan::{FindPlan, Global};

struct Hit {
    path: String,
    kind: Kind,
    size: u64,
    perm: u32,
    mtime: std::time::SystemTime,
}

/// Searches the snapshots.
pub fn run(global: &Global, plan: &FindPlan) -> Result<Outcome> {
    let out = &global.output;
    let repo = Arc::new(crate::open::repository(global)?);
    let _lock = lock::acquire(&repo, false)?;
    repo.load_index().context("loading the index")?;
    let snaps = if plan.snapshots.is_empty() {
        load_snapshots(&repo)?
            .into_iter()
            .filter(|(_, s)| plan.selection.matches(s))
            .collect()
    } else {
        plan.snapshots
            .iter()
            .map(|sel| crate::open::snapshot(&repo, sel, &plan.selection))
            .collect::<Result<Vec<_>>>()?
    };
    let vfs = Vfs::new(
        repo.clone(),
        Options {
            images: plan.images,
            fs: global.fs.clone(),
            ..Options::default()
        },
    );
    let mut stdout = BufWriter::new(io::stdout().lock());
    let mut damaged = 0u64;
    let mut json_out = Vec::new();
    for (id, snap) in &snaps {
        let root = vfs.snapshot_root(id)?;
        let mut hits = Vec::new();
        search(&root, "", plan, &mut hits, &mut damaged);
        if hits.is_empty() {
            continue;
        }
        if out.json {
            json_out.push(json!({
                "snapshot": id.to_hex(),
                "hits": hits.len(),
                "matches": hits.iter().map(|h| json!({
                    "path": h.path,
                    "type": kind_name(h.kind),
                    "size": (h.kind == Kind::File).then_some(h.size),
                    "permissions": format!("{:o}", h.perm),
                    "mtime": chrono::DateTime::<chrono::Utc>::from(h.mtime).to_rfc3339(),
                })).collect::<Vec<_>>(),
            }));
            continue;
        }
        if out.quiet {
            continue;
        }
        writeln!(
            stdout,
            "Found matching entries in snapshot {} from {}",
            id.short(),
            output::local_time(&snap.time)
        )?;
        for h in &hits {
            if plan.long {
                let t = chrono::DateTime::<chrono::Utc>::from(h.mtime).fixed_offset();
                writeln!(
                    stdout,
                    "{}{:>4o} {:>12} {} {}",
                    kind_letter(h.kind),
                    h.perm,
                    h.size,
                    output::local_time(&t),
                    h.path
                )?;
            } else {
                writeln!(stdout, "{}", h.path)?;
            }
        }
        writeln!(stdout)?;
    }
    if out.json {
        serde_json::to_writer(&mut stdout, &json_out)?;
        writeln!(stdout)?;
    }
    stdout.flush()?;
    if damaged > 0 {
        bail!("{damaged} directories could not be searched (see the errors above)");
    }
    Ok(Outcome::Ok)
}

fn search(entry: &Entry, path: &str, plan: &FindPlan, hits: &mut Vec<Hit>, damaged: &mut u64) {
    let Entry::Dir(dir) = entry else {
        return;
    };
    let listing = match dir.list() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {}: {e}", if path.is_empty() { "/" } else { path });
            *damaged += 1;
            return;
        }
    };
    for (name, child) in listing.entries() {
        let p = format!("{path}/{name}");
        if plan.patterns.is_match(&p) {
            let a = child.attr();
            hits.push(Hit {
                path: p.clone(),
                kind: a.kind,
                size: a.size,
                perm: a.perm,
                mtime: a.mtime,
            });
        }
        search(child, &p, plan, hits, damaged);
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Dir => "dir",
        Kind::File => "file",
        Kind::Symlink => "symlink",
        Kind::Fifo => "fifo",
        Kind::CharDevice => "chardev",
        Kind::BlockDevice => "dev",
        Kind::Socket => "socket",
    }
}

fn kind_letter(k: Kind) -> char {
    match k {
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
        Kind::Fifo => 'p',
        Kind::CharDevice => 'c',
        Kind::BlockDevice => 'b',
        Kind::Socket => 's',
        Kind::File => '-',
    }
}
