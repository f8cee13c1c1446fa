//! Backup of a program's output: standard input, or the standard output of
//! a command run with `sh -c`, stored as one file `/NAME` of a new snapshot
//! (as restic's `backup --stdin` and `--stdin-from-command` do).
//!
//! The bytes go from the pipe straight into the chunker, as a disk's do in
//! [`super::disk`]: no spool file, memory bounded by the content pipeline's
//! channels. A command that fails (non-zero exit status, killed by a
//! signal) or a pipe that cannot be read leaves no snapshot: a dump cut
//! short must not pass for a good one. The data blobs saved until then are
//! indexed but unreferenced; they cost space until a prune and make a
//! retry's upload cheaper.

use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::Local;

use super::pipeline::{self, Collector, FileContent, Outcome, Shared};
use super::{BackupOptions, BackupSummary, ParentChoice, Progress};
use crate::chunker::ChunkerParams;
use crate::error::{Error, ErrorKind, Result};
use crate::repo::Repository;
use crate::repo::saver::BlobSaver;
use crate::snapshot::{Node, NodeType, Tree};

/// Where the bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamSource {
    /// This process's standard input.
    Stdin,
    /// The standard output of this shell command (`sh -c CMD`).
    Command(String),
}

/// What to back up and how.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Where the bytes come from.
    pub source: StreamSource,
    /// The file's name in the snapshot: `/NAME`.
    pub filename: String,
    /// Host name recorded in the snapshot (default: this machine's).
    pub host: Option<String>,
    /// Tags recorded in the snapshot.
    pub tags: Vec<String>,
    /// Parent snapshot, to count the file as new, changed or unmodified.
    pub parent: ParentChoice,
}

impl StreamOptions {
    /// Options for `source` with every default (`/stdin`).
    pub fn new(source: StreamSource) -> StreamOptions {
        StreamOptions {
            source,
            filename: "stdin".into(),
            host: None,
            tags: Vec::new(),
            parent: ParentChoice::Auto,
        }
    }
}

/// What the command did, for the summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CommandReport {
    /// The command as given.
    pub command: String,
    /// Its exit status (`None`: killed by a signal).
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Bytes it wrote on standard error (passed through).
    pub stderr_bytes: u64,
}

/// Is `name` usable as the file's name: one plain path component?
pub fn valid_filename(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// Starts `sh -c cmd` with stdout and stderr piped to us, stdin inherited.
fn spawn(cmd: &str) -> Result<(Child, ChildStdout, ChildStderr)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("starting `sh -c {cmd}`"), e))?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::new(
            ErrorKind::Io,
            "the command's pipes were not set up",
        ));
    };
    Ok((child, out, err))
}

/// The status in words: `exit status 3`, `killed by signal 9`.
fn status_text(s: &ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "an unknown status".into(),
    }
}

/// Copies the command's stderr to `progress` as it comes, counting bytes.
fn copy_stderr(mut err: ChildStderr, counter: &AtomicU64, progress: &dyn Progress) {
    let mut buf = [0u8; 8192];
    loop {
        match err.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                counter.fetch_add(n as u64, Ordering::Relaxed);
                progress.stderr(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Backs up standard input or a command's output as `/NAME` in a new
/// snapshot. A command's stderr goes to [`Progress::stderr`] as it comes;
/// any byte there is a warning in the summary. A non-zero exit status,
/// death by a signal or a read error on the pipe is an error and no
/// snapshot is written (the data saved so far is indexed, unreferenced).
pub fn backup_stream(
    repo: &Arc<Repository>,
    opts: &StreamOptions,
    progress: &dyn Progress,
) -> Result<BackupSummary> {
    let started = Instant::now();
    let start_time = Local::now().fixed_offset();
    if !valid_filename(&opts.filename) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "invalid file name {:?}: use a plain file name such as `dump.sql`",
                opts.filename
            ),
        ));
    }
    let host = opts.host.clone().unwrap_or_else(crate::sys::hostname);
    let path = format!("/{}", opts.filename);
    let paths = vec![path.clone()];
    let _lock = crate::repo::lock::acquire(repo, false)?;
    repo.ensure_index()?;
    let mut parent_opts = BackupOptions::new(vec![PathBuf::from(&path)]);
    parent_opts.parent = opts.parent.clone();
    let parent = super::build::choose_parent(repo, &parent_opts, &host, &paths)?;

    // The command starts once the vault is locked and its index loaded,
    // so its output never piles up while we wait.
    let (mut child, reader, err_pipe): (Option<Child>, Box<dyn Read>, Option<ChildStderr>) =
        match &opts.source {
            StreamSource::Stdin => (None, Box::new(io::stdin()), None),
            StreamSource::Command(cmd) => {
                let (child, out, err) = spawn(cmd)?;
                (Some(child), Box::new(out), Some(err))
            }
        };
    let saver = BlobSaver::new(repo.clone());
    let params = ChunkerParams::new(repo.config().polynomial().unwrap_or(0));
    let shared = Shared::new(&saver, &params, progress);
    progress.scanned(1, 0);
    let workers = crate::parallel::workers();
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded(workers);
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    let mut collector = Collector::new(out_rx);
    let stderr_bytes = AtomicU64::new(0);
    let read_result: io::Result<u64> = std::thread::scope(|s| {
        for _ in 0..workers {
            let (chunks, out) = (chunk_rx.clone(), out_tx.clone());
            let sh = &shared;
            s.spawn(move || pipeline::worker(sh, chunks, out));
        }
        drop(chunk_rx);
        if let Some(err) = err_pipe {
            let counter = &stderr_bytes;
            s.spawn(move || copy_stderr(err, counter, progress));
        }
        // `chunk_stream` owns the reader: our end of the pipe closes as it
        // returns, so a command we stopped reading gets SIGPIPE.
        let result =
            pipeline::chunk_stream(&shared, 0, reader, &chunk_tx).and_then(|(chunks, bytes)| {
                shared.progress.processed(1, 0);
                out_tx
                    .send(Outcome::Done {
                        file: 0,
                        chunks,
                        bytes,
                        path: PathBuf::from(&path),
                    })
                    .map(|()| bytes)
                    .map_err(|_| io::Error::other("backup aborted"))
            });
        if result.is_err() {
            // Also ends its stderr, which the copier waits for.
            if let Some(c) = child.as_mut() {
                let _ = c.kill();
            }
        }
        drop(chunk_tx);
        drop(out_tx);
        result
    });
    let status = match child.as_mut() {
        Some(c) => Some(
            c.wait()
                .map_err(|e| Error::io("waiting for the command", e))?,
        ),
        None => None,
    };
    if let Some(e) = shared.fatal.lock().take() {
        return Err(e);
    }
    let what = match &opts.source {
        StreamSource::Stdin => "standard input".to_string(),
        StreamSource::Command(cmd) => format!("the output of `{cmd}`"),
    };
    let stderr_bytes = stderr_bytes.load(Ordering::Relaxed);
    let report = match (&opts.source, &status) {
        (StreamSource::Command(cmd), Some(st)) => Some(CommandReport {
            command: cmd.clone(),
            exit_code: st.code(),
            signal: st.signal(),
            stderr_bytes,
        }),
        _ => None,
    };
    let failure = match (&read_result, &status) {
        (Err(e), _) => Some(format!("reading {what} failed: {e}")),
        (Ok(_), Some(st)) if !st.success() => Some(format!(
            "the command `{}` failed ({})",
            report.as_ref().map_or("", |r| r.command.as_str()),
            status_text(st)
        )),
        _ => None,
    };
    if let Some(why) = failure {
        // What was saved is indexed, so a retry does not upload it again
        // and `check` finds no stray packs; nothing refers to it.
        let stats = saver.finish()?;
        let read = bytes_text(read_result.as_ref().map_or(0, |b| *b));
        let saved = match stats.data_added {
            0 => "nothing new was saved".to_string(),
            n => format!(
                "the {} of new data saved stays in the vault, unreferenced, until a prune",
                bytes_text(n)
            ),
        };
        return Err(Error::new(
            ErrorKind::Io,
            format!("{why}: no snapshot was written ({read} read; {saved})"),
        ));
    }
    let bytes_read = read_result.unwrap_or_default();
    collector.drain();
    let Some(FileContent::Stored { ids, bytes }) = collector.take(0, false) else {
        return Err(Error::new(
            ErrorKind::Io,
            format!("{what}: not stored completely"),
        ));
    };
    debug_assert_eq!(bytes, bytes_read);

    let (uid, gid) = crate::sys::uid_gid();
    let now = Local::now().fixed_offset();
    let mut node = Node::new(&opts.filename, NodeType::File);
    node.mode = 0o644;
    node.mtime = now;
    node.atime = now;
    node.ctime = now;
    node.uid = uid;
    node.gid = gid;
    node.user = crate::sys::user_name(uid).unwrap_or_default();
    node.group = crate::sys::group_name(gid).unwrap_or_default();
    node.size = bytes;
    node.links = 1;
    node.content = Some(ids);
    let mut summary = BackupSummary::default();
    let parent_tree = match &parent {
        Some((_, p)) => Some(repo.load_tree(&p.tree)?),
        None => None,
    };
    match parent_tree.as_ref().and_then(|t| t.find(&node.name)) {
        None => summary.files_new = 1,
        Some(old) if old.content == node.content => summary.files_unmodified = 1,
        Some(_) => summary.files_changed = 1,
    }
    summary.total_bytes_processed = bytes;
    let tree = saver.save_tree(Tree { nodes: vec![node] })?;
    match &parent {
        Some((_, p)) if p.tree == tree => summary.dirs_unmodified = 1,
        Some(_) => summary.dirs_changed = 1,
        None => summary.dirs_new = 1,
    }
    summary.total_files_processed = 1;
    let spec = super::build::SnapshotSpec {
        tree,
        paths,
        host,
        excludes: Vec::new(),
        tags: opts.tags.clone(),
        start: start_time,
    };
    let parent_id = parent.as_ref().map(|(id, _)| *id);
    super::build::save_snapshot(repo, saver, &mut summary, parent_id, spec, started)?;
    if let Some(r) = report.as_ref().filter(|r| r.stderr_bytes > 0) {
        summary.warnings.push(format!(
            "the command `{}` wrote {} bytes on standard error",
            r.command, r.stderr_bytes
        ));
    }
    summary.command = report;
    Ok(summary)
}

/// A byte count for messages.
fn bytes_text(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}
