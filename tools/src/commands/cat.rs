//! `cat SNAPSHOT:PATH`: a file's content on stdout, every blob verified on
//! the way. Anything but a regular file is an error naming what it is.
//! A reader that goes away early (`| head -c 100`) is no error.

use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use vaultfs::repo::lock;
use vaultfs::snapshot::NodeType;
use vaultfs::snapshot::walk::write_file_content;

use crate::exit::Outcome;
use crate::plan::{CatPlan, Global};

/// Large enough to pass whole blobs (about 1 MiB on average) to the pipe
/// in few writes.
const BUFFER: usize = 1 << 20;

/// Prints the file.
pub fn run(global: &Global, plan: &CatPlan) -> Result<Outcome> {
    let repo = Arc::new(crate::open::repository(global)?);
    let _lock = lock::acquire(&repo, false)?;
    repo.load_index().context("loading the index")?;
    let (id, _, target) =
        crate::open::snapshot_target(&repo, &plan.target, &plan.selection, &global.fs)?;
    let path = &plan.target.path;
    let node = match target {
        crate::open::Target::Node(node) => node,
        crate::open::Target::Tree(entry) => {
            let src = entry
                .open(path)
                .with_context(|| format!("snapshot {}", id.short()))?;
            crate::stream::to_stdout(&*src, &format!("snapshot {}: {path}", id.short()))?;
            return Ok(Outcome::Ok);
        }
    };
    let what: Option<String> = match node.node_type {
        NodeType::File => None,
        NodeType::Dir => Some("a directory (use `ls` to list it or `restore` to copy it)".into()),
        NodeType::Symlink => Some(format!(
            "a symbolic link to {}",
            String::from_utf8_lossy(&node.link_target_bytes())
        )),
        NodeType::Dev | NodeType::Chardev => Some("a device".into()),
        NodeType::Fifo => Some("a fifo".into()),
        NodeType::Socket => Some("a socket".into()),
        NodeType::Irregular => Some("not a regular file".into()),
    };
    if let Some(what) = what {
        bail!("snapshot {}: {path} is {what}", id.short());
    }
    let mut out = BufWriter::with_capacity(BUFFER, io::stdout().lock());
    write_file_content(&repo, &node, &mut out)
        .with_context(|| format!("snapshot {}: {path}", id.short()))?;
    out.flush().context("writing to stdout")?;
    Ok(Outcome::Ok)
}
