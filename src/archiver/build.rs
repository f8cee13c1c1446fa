//! Runs a backup end to end: choose the parent, run the walk and the content
//! pipeline, write the trees bottom-up, then the snapshot.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Local;

use super::pipeline::{self, Collector, Shared};
use super::walk::Walker;
use super::{BackupOptions, BackupSummary, ParentChoice, Progress};
use crate::backend::FileType;
use crate::chunker::ChunkerParams;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::repo::saver::BlobSaver;
use crate::snapshot::select::SnapshotFilter;
use crate::snapshot::{Snapshot, SnapshotSummary, find_snapshot};

/// Makes `p` absolute and removes `.` and `..` without following symlinks
/// (a backup of `dir/link` stores the link, as the user named it).
pub fn clean_path(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("current directory", e))?
            .join(p)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

pub(crate) fn choose_parent(
    repo: &Repository,
    opts: &BackupOptions,
    host: &str,
    paths: &[String],
) -> Result<Option<(Id, Snapshot)>> {
    match &opts.parent {
        ParentChoice::None => Ok(None),
        ParentChoice::Snapshot(sel) => {
            find_snapshot(repo, sel, &SnapshotFilter::default()).map(Some)
        }
        ParentChoice::Auto => {
            let filter = SnapshotFilter {
                hosts: vec![host.to_owned()],
                tags: Vec::new(),
                paths: paths.to_vec(),
            };
            match find_snapshot(repo, "latest", &filter) {
                Ok(p) => Ok(Some(p)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }
    }
}

/// Runs a backup and writes its snapshot. Unreadable files and directories
/// are skipped with a warning (listed in the summary); repository errors
/// abort the backup and no snapshot is written.
pub fn backup(
    repo: &Arc<Repository>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupSummary> {
    let started = Instant::now();
    let start_time = Local::now().fixed_offset();
    if opts.paths.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "nothing to back up: no paths given",
        ));
    }
    let mut roots = opts
        .paths
        .iter()
        .map(|p| clean_path(p))
        .collect::<Result<Vec<_>>>()?;
    roots.sort();
    roots.dedup();
    // A path below another one is already covered by it.
    let roots: Vec<PathBuf> = roots
        .iter()
        .filter(|r| !roots.iter().any(|o| o != *r && r.starts_with(o)))
        .cloned()
        .collect();
    for r in &roots {
        if let Err(e) = std::fs::symlink_metadata(r) {
            return Err(Error::io(r.display(), e).context("backup path"));
        }
    }
    let paths: Vec<String> = roots
        .iter()
        .map(|r| r.to_string_lossy().into_owned())
        .collect();
    let host = opts.host.clone().unwrap_or_else(crate::sys::hostname);

    let _lock = crate::repo::lock::acquire(repo, false)?;
    repo.ensure_index()?;
    let parent = choose_parent(repo, opts, &host, &paths)?;
    let saver = BlobSaver::new(repo.clone());
    let params = ChunkerParams::new(repo.config().polynomial().unwrap_or(0));
    let shared = Shared::new(&saver, &params, progress);

    let (job_tx, job_rx) = crossbeam_channel::bounded(1024);
    let workers = crate::parallel::workers();
    // Two readers hide the latency of opening small files; see
    // `pipeline::read_file` for why only one chunks a large file at a time.
    let readers = 2;
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded(workers);
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    let mut walker = std::thread::scope(|s| {
        for _ in 0..readers {
            let (jobs, chunks, out) = (job_rx.clone(), chunk_tx.clone(), out_tx.clone());
            let sh = &shared;
            s.spawn(move || pipeline::reader(sh, jobs, chunks, out));
        }
        for _ in 0..workers {
            let (chunks, out) = (chunk_rx.clone(), out_tx.clone());
            let sh = &shared;
            s.spawn(move || pipeline::worker(sh, chunks, out));
        }
        drop((chunk_tx, chunk_rx, out_tx, job_rx));
        let collector = Collector::new(out_rx);
        let mut walker = Walker::new(repo, opts, &shared, job_tx, collector, roots.clone());
        let root = walker.walk_roots(parent.as_ref().map(|(_, p)| p.tree));
        // No more files: the readers stop when the queue is empty.
        walker.jobs = None;
        (walker, root)
    });
    if let Some(e) = shared.fatal.lock().take() {
        return Err(e);
    }
    let (ref mut w, root) = walker;
    w.collector.drain();
    let tree = match w.finalize(Box::new(root))? {
        Ok(node) => node.subtree.unwrap_or_default(),
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Io,
                "backup incomplete: files still pending",
            ));
        }
    };
    if let Some(e) = shared.fatal.lock().take() {
        return Err(e);
    }
    let walker_summary = std::mem::take(&mut w.summary);
    let warnings = std::mem::take(&mut w.warnings);
    let mut s = walker_summary;
    s.total_files_processed = s.files_new + s.files_changed + s.files_unmodified;
    let spec = SnapshotSpec {
        tree,
        paths,
        host,
        excludes: opts.excludes.clone(),
        tags: opts.tags.clone(),
        start: start_time,
    };
    save_snapshot(
        repo,
        saver,
        &mut s,
        parent.as_ref().map(|(id, _)| *id),
        spec,
        started,
    )?;
    s.warnings = warnings;
    Ok(s)
}

/// What a new snapshot records besides the backup's counters.
pub(crate) struct SnapshotSpec {
    /// The root tree.
    pub tree: Id,
    /// The backed-up paths.
    pub paths: Vec<String>,
    /// The host name.
    pub host: String,
    /// The exclude patterns.
    pub excludes: Vec<String>,
    /// The tags.
    pub tags: Vec<String>,
    /// When the backup started.
    pub start: chrono::DateTime<chrono::FixedOffset>,
}

/// The last step of every kind of backup: flushes the saver, counts its
/// blobs into `s`, and writes the snapshot; `s` gets the snapshot's id and
/// the backup's duration.
pub(crate) fn save_snapshot(
    repo: &Repository,
    saver: BlobSaver,
    s: &mut BackupSummary,
    parent: Option<Id>,
    spec: SnapshotSpec,
    started: Instant,
) -> Result<()> {
    let stats = saver.finish()?;
    s.data_blobs = stats.data_blobs;
    s.tree_blobs = stats.tree_blobs;
    s.data_added = stats.data_added;
    s.data_added_packed = stats.data_added_packed;
    s.parent = parent;
    let snap = new_snapshot(
        s,
        spec.tree,
        spec.paths,
        spec.host,
        spec.excludes,
        spec.tags,
        spec.start,
    );
    s.snapshot_id = repo.save_unpacked(FileType::Snapshot, &snap)?;
    s.duration_secs = started.elapsed().as_secs_f64();
    Ok(())
}

/// The snapshot of a backup that started at `start` and made `tree`, with
/// the counters of `s`, by this user, ending now.
pub(crate) fn new_snapshot(
    s: &BackupSummary,
    tree: Id,
    paths: Vec<String>,
    host: String,
    excludes: Vec<String>,
    tags: Vec<String>,
    start: chrono::DateTime<chrono::FixedOffset>,
) -> Snapshot {
    let (uid, gid) = crate::sys::uid_gid();
    Snapshot {
        time: start,
        parent: s.parent,
        tree,
        paths,
        hostname: host,
        username: crate::sys::username(),
        uid,
        gid,
        excludes,
        tags,
        original: None,
        program_version: Some(format!("vaultfs {}", env!("CARGO_PKG_VERSION"))),
        summary: Some(SnapshotSummary {
            backup_start: start,
            backup_end: Local::now().fixed_offset(),
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unmodified: s.files_unmodified,
            dirs_new: s.dirs_new,
            dirs_changed: s.dirs_changed,
            dirs_unmodified: s.dirs_unmodified,
            data_blobs: s.data_blobs,
            tree_blobs: s.tree_blobs,
            data_added: s.data_added,
            data_added_packed: s.data_added_packed,
            total_files_processed: s.total_files_processed,
            total_bytes_processed: s.total_bytes_processed,
        }),
    }
}
