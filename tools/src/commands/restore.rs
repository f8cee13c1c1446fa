//! `restore SNAPSHOT[:PATH] --target DIR`: write a snapshot, or a path in
//! it, into a directory, then print a summary (or the summary as JSON).
//!
//! Entries that cannot be restored (damaged or missing blobs, failed
//! writes) are reported as they happen and the restore goes on; the command
//! then fails with status 1. Entries restored without some metadata
//! (owners, extended attributes, devices) are warnings: status 3.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use vaultfs::repo::lock;
use vaultfs::restore::archive::{ArchiveFormat, write_archive};
use vaultfs::restore::{self, Overwrite, RestoreSummary};
use vaultfs::snapshot::Node;
use vaultfs::snapshot::walk::{resolve_path, write_file_content};

use crate::exit::Outcome;
use crate::output;
use crate::plan::{ArchivePlan, Global, RestorePlan, SnapshotPath};
use crate::progress::RestoreBar;

/// The `--json` summary line (restic's `message_type` plus our counters).
#[derive(Serialize)]
struct JsonSummary<'a> {
    message_type: &'static str,
    snapshot_id: String,
    path: &'a str,
    target: String,
    #[serde(flatten)]
    summary: &'a RestoreSummary,
}

/// Runs the restore.
/// `--to-original`: where the restored path came from. The whole snapshot
/// goes into `/`; a directory's contents into its own path; a file into
/// its directory (restore puts a directory's contents, and a file itself,
/// into the target).
fn original_target(source: &SnapshotPath, target: &crate::open::Target) -> Result<PathBuf> {
    let node = match target {
        crate::open::Target::Node(node) => node,
        crate::open::Target::Tree(_) => bail!(
            "--to-original restores what was backed up, not files inside disk images: \
             give --target"
        ),
    };
    let path = Path::new(&source.path);
    if !source.explicit_path || source.path == "/" {
        return Ok(PathBuf::from("/"));
    }
    Ok(if node.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().unwrap_or(Path::new("/")).to_path_buf()
    })
}

pub fn run(global: &Global, plan: &RestorePlan) -> Result<Outcome> {
    let out = &global.output;
    let repo = Arc::new(crate::open::repository(global)?);
    let _lock = lock::acquire(&repo, false)?;
    repo.load_index().context("loading the index")?;
    if plan.raw {
        return raw(global, &repo, plan);
    }
    if let Some(a) = &plan.archive {
        return archive(global, &repo, plan, a);
    }
    if let Some(cmd) = &plan.pipe_to {
        return pipe_to(global, &repo, plan, cmd);
    }
    let (id, snap, source) =
        crate::open::snapshot_target(&repo, &plan.source, &plan.selection, &global.fs)?;
    let mut original = plan.options.clone();
    if plan.to_original {
        original.target = original_target(&plan.source, &source)?;
    }
    let opts = &original;
    let target = opts.target.display().to_string();
    if out.text() {
        let path = if plan.source.explicit_path {
            format!(", path {}", plan.source.path)
        } else {
            String::new()
        };
        let verb = if opts.dry_run {
            "dry run: checking"
        } else {
            "restoring"
        };
        output::line(format!(
            "{verb} snapshot {} of [{}] at {}{path} to {target}",
            id.short(),
            snap.paths.join(" "),
            output::local_time(&snap.time),
        ))?;
    }
    let progress = RestoreBar::new(out);
    let summary = match &source {
        crate::open::Target::Node(node) => {
            restore_with_extents(&repo, &snap.tree, &plan.source.path, node, opts, &progress)
        }
        crate::open::Target::Tree(entry) => {
            let path = &plan.source.path;
            let name = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("disk");
            restore::restore_entry(entry, name, path, opts, &progress)
        }
    }
    .with_context(|| {
        format!(
            "restoring snapshot {} to {}",
            id.short(),
            opts.target.display()
        )
    })?;
    progress.finish();
    if out.json {
        output::json(&JsonSummary {
            message_type: "summary",
            snapshot_id: id.to_hex(),
            path: &plan.source.path,
            target,
            summary: &summary,
        })?;
    } else if out.text() {
        output::line(summary_text(&summary, opts.overwrite))?;
    }
    if summary.has_errors() {
        let n = summary.error_count;
        let what = if summary.dry_run {
            "failed verification"
        } else {
            "could not be restored"
        };
        bail!(
            "{n} {} {what} (see the errors above)",
            plural(n, "entry", "entries")
        );
    }
    if summary.has_warnings() {
        let n = summary.warning_count;
        eprintln!(
            "Warning: {n} {} restored without some of their metadata (see above)",
            plural(n, "entry was", "entries were")
        );
        return Ok(Outcome::Warnings);
    }
    Ok(Outcome::Ok)
}

/// Restores `node`; a VMDK descriptor brings the extent files it names
/// from its directory of the snapshot, so the restored set opens.
fn restore_with_extents(
    repo: &Arc<vaultfs::repo::Repository>,
    root: &vaultfs::Id,
    path: &str,
    node: &Node,
    opts: &vaultfs::restore::RestoreOptions,
    progress: &RestoreBar,
) -> vaultfs::Result<RestoreSummary> {
    let mut summary = restore::restore(repo, node, opts, progress)?;
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    for name in vmdk_extents(repo, node) {
        let sibling = match resolve_path(repo, root, &format!("{dir}/{name}")) {
            Ok(n) => n,
            Err(e) if e.kind() == vaultfs::ErrorKind::NotFound => {
                // A descriptor backed up without its extents: restore what
                // there is and say what is missing.
                let w = format!("{dir}/{name}: named by {path} but not in the snapshot");
                eprintln!("warning: {w}");
                summary.warning_count += 1;
                summary.warnings.push(w);
                continue;
            }
            Err(e) => return Err(e),
        };
        let s = restore::restore(repo, &sibling, opts, progress)?;
        summary.files_restored += s.files_restored;
        summary.files_skipped += s.files_skipped;
        summary.files_unchanged += s.files_unchanged;
        summary.bytes_written += s.bytes_written;
        summary.error_count += s.error_count;
        summary.warning_count += s.warning_count;
        summary.errors.extend(s.errors);
        summary.warnings.extend(s.warnings);
        summary.duration_secs += s.duration_secs;
    }
    Ok(summary)
}

/// The largest descriptor read for its extent names.
const MAX_DESCRIPTOR: u64 = 1 << 20;

/// The files a VMDK text descriptor's extent lines name (plain names in
/// the same directory); nothing for any other file.
fn vmdk_extents(repo: &vaultfs::repo::Repository, node: &Node) -> Vec<String> {
    if !node.is_file()
        || node.size > MAX_DESCRIPTOR
        || !node.name.to_ascii_lowercase().ends_with(".vmdk")
    {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if write_file_content(repo, node, &mut bytes).is_err() || !bytes.starts_with(b"#") {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if !["RW ", "RDONLY ", "NOACCESS "]
            .iter()
            .any(|a| line.starts_with(a))
        {
            continue;
        }
        let mut quoted = line.split('"');
        if let (Some(_), Some(name)) = (quoted.next(), quoted.next())
            && !name.is_empty()
            && !name.contains('/')
            && name != node.name
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// `restore --raw`: the disk image as one flat image, into a file, a
/// directory or a block device at least as large as the image.
fn raw(
    global: &Global,
    repo: &Arc<vaultfs::repo::Repository>,
    plan: &RestorePlan,
) -> Result<Outcome> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileTypeExt;

    let path = &plan.source.path;
    let (image_path, name) = if crate::open::enters_contents(path) {
        let last = path.rsplit('/').next().unwrap_or("disk.raw").to_owned();
        (path.clone(), last)
    } else {
        let last = path.rsplit('/').next().unwrap_or("disk");
        let stem = last.rsplit_once('.').map_or(last, |(s, _)| s);
        (
            format!("{path}{}/disk.raw", vaultfs::vfs::CONTENTS_SUFFIX),
            format!("{stem}.raw"),
        )
    };
    let source = crate::plan::SnapshotPath {
        snapshot: plan.source.snapshot.clone(),
        path: image_path.clone(),
        explicit_path: true,
    };
    let (id, _, target) = crate::open::snapshot_target(repo, &source, &plan.selection, &global.fs)
        .with_context(|| format!("{path} is not a disk image that --raw can write"))?;
    let src = match target {
        crate::open::Target::Tree(entry) => entry
            .open(&image_path)
            .with_context(|| format!("snapshot {}: {image_path}", id.short()))?,
        crate::open::Target::Node(_) => {
            bail!("snapshot {}: {path} is not a disk image", id.short())
        }
    };
    let dest = &plan.options.target;
    let md = std::fs::metadata(dest).ok();
    let (mut file, sparse, written_to) = match &md {
        Some(m) if m.file_type().is_block_device() => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(dest)
                .with_context(|| format!("opening {}", dest.display()))?;
            let size = f
                .seek(SeekFrom::End(0))
                .with_context(|| format!("finding the size of {}", dest.display()))?;
            if size < src.len() {
                bail!(
                    "{} holds {size} bytes, less than the image's {} bytes:                      refusing to write a truncated disk (use a device or partition at least as large)",
                    dest.display(),
                    src.len()
                );
            }
            f.seek(SeekFrom::Start(0))?;
            (f, false, dest.clone())
        }
        Some(m) if m.is_dir() => {
            let p = dest.join(&name);
            let f =
                std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
            (f, true, p)
        }
        Some(m) if !m.is_file() => bail!(
            "{} is neither a file, a directory nor a block device",
            dest.display()
        ),
        _ => {
            let f = std::fs::File::create(dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            (f, true, dest.clone())
        }
    };
    let started = std::time::Instant::now();
    let what = format!("snapshot {}: {image_path}", id.short());
    let n = crate::stream::copy(&*src, &what, &mut file, sparse)?;
    file.sync_all()
        .with_context(|| format!("flushing {}", written_to.display()))?;
    if global.output.json {
        output::json(&serde_json::json!({
            "message_type": "summary",
            "snapshot_id": id.to_hex(),
            "path": path,
            "target": written_to.display().to_string(),
            "bytes_written": n,
        }))?;
    } else if global.output.text() {
        output::line(format!(
            "wrote {} ({n} bytes) of snapshot {} to {} in {}",
            output::bytes(n),
            id.short(),
            written_to.display(),
            output::duration(started.elapsed().as_secs_f64())
        ))?;
    }
    Ok(Outcome::Ok)
}

/// `restore --archive OUT`: the selected tree as a tar, tar.gz or zip,
/// into a file (removed again if the archive cannot be completed) or onto
/// standard output (then every message goes to stderr).
fn archive(
    global: &Global,
    repo: &Arc<vaultfs::repo::Repository>,
    plan: &RestorePlan,
    a: &ArchivePlan,
) -> Result<Outcome> {
    use std::io::Write;
    let out = &global.output;
    let (id, snap, node) = snapshot_node(global, repo, plan, "--archive")?;
    let format = match a.format {
        ArchiveFormat::Tar => "tar",
        ArchiveFormat::TarGz => "tar.gz",
        ArchiveFormat::Zip => "zip",
    };
    let dest = a.out.as_ref().map_or_else(
        || "standard output".to_string(),
        |p| p.display().to_string(),
    );
    let to_stdout = a.out.is_none();
    if out.text() {
        let line = format!(
            "writing snapshot {} of [{}] at {}{} as {format} to {dest}",
            id.short(),
            snap.paths.join(" "),
            output::local_time(&snap.time),
            if plan.source.explicit_path {
                format!(", path {}", plan.source.path)
            } else {
                String::new()
            },
        );
        if to_stdout {
            eprintln!("{line}");
        } else {
            output::line(line)?;
        }
    }
    let progress = RestoreBar::new(out);
    let filter = &plan.options.filter;
    let summary = match &a.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            let result = write_archive(repo, &node, a.format, filter, &mut w, &progress)
                .map_err(anyhow::Error::from)
                .and_then(|s| {
                    let file = w.into_inner().map_err(|e| e.into_error())?;
                    file.sync_all()?;
                    Ok(s)
                })
                .with_context(|| format!("writing {}", path.display()));
            if result.is_err() {
                // A cut-off archive must not pass for a whole one.
                let _ = std::fs::remove_file(path);
            }
            result?
        }
        None => {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            let s = write_archive(repo, &node, a.format, filter, &mut w, &progress)
                .context("writing the archive to standard output")?;
            w.flush()
                .context("writing the archive to standard output")?;
            s
        }
    };
    progress.finish();
    if out.json {
        let j = serde_json::to_string(&JsonSummary {
            message_type: "summary",
            snapshot_id: id.to_hex(),
            path: &plan.source.path,
            target: dest.clone(),
            summary: &summary,
        })?;
        if to_stdout {
            eprintln!("{j}");
        } else {
            output::line(j)?;
        }
    } else if out.text() {
        let line = format!(
            "archived {}, {} in {}",
            counts(&summary),
            output::bytes(summary.bytes_written),
            output::duration(summary.duration_secs)
        );
        if to_stdout {
            eprintln!("{line}");
        } else {
            output::line(line)?;
        }
    }
    archive_outcome(&summary)
}

/// `restore --pipe-to CMD`: one file's bytes, or a pax tar of anything
/// else, on the standard input of `sh -c CMD`. CMD's stdout and stderr are
/// ours, so every message of ours goes to stderr. CMD failing is an error
/// (status 1); CMD closing its input early is not, if it then succeeds.
fn pipe_to(
    global: &Global,
    repo: &Arc<vaultfs::repo::Repository>,
    plan: &RestorePlan,
    cmd: &str,
) -> Result<Outcome> {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let out = &global.output;
    let (id, _, node) = snapshot_node(global, repo, plan, "--pipe-to")?;
    let as_file = node.is_file();
    if out.text() {
        eprintln!(
            "writing {} of snapshot {} to `{cmd}`",
            if as_file {
                format!("file {}", plan.source.path)
            } else {
                format!("{} as a tar stream", plan.source.path)
            },
            id.short()
        );
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `sh -c {cmd}`"))?;
    let stdin = child
        .stdin
        .take()
        .context("the command's stdin was not set up")?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
    let progress = RestoreBar::new(out);
    let written: vaultfs::Result<Option<RestoreSummary>> = if as_file {
        write_file_content(repo, &node, &mut w).map(|_| None)
    } else {
        write_archive(
            repo,
            &node,
            ArchiveFormat::Tar,
            &plan.options.filter,
            &mut w,
            &progress,
        )
        .map(Some)
    };
    // Closing its input tells the command the stream is complete.
    let flushed = w.into_inner().map(drop).map_err(|e| e.into_error());
    let status = child.wait().context("waiting for the command")?;
    progress.finish();
    let broken_pipe = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    let cut_short = match (&written, &flushed) {
        (Err(e), _) => {
            let pipe = std::error::Error::source(e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .is_some_and(broken_pipe);
            if !pipe {
                // Not the command's doing: the snapshot could not be read.
                return Err(anyhow::anyhow!("{e}")).with_context(|| format!("writing to `{cmd}`"));
            }
            true
        }
        (Ok(_), Err(e)) if broken_pipe(e) => true,
        (Ok(_), Err(e)) => bail!("writing to `{cmd}`: {e}"),
        (Ok(_), Ok(())) => false,
    };
    if !status.success() {
        let how = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => "unknown status".into(),
        };
        bail!("the command `{cmd}` failed ({how})");
    }
    if cut_short && out.text() {
        eprintln!("note: `{cmd}` stopped reading before the end and exited with status 0");
    }
    match written {
        Ok(Some(summary)) => {
            if out.text() {
                eprintln!(
                    "piped {}, {} in {}",
                    counts(&summary),
                    output::bytes(summary.bytes_written),
                    output::duration(summary.duration_secs)
                );
            }
            archive_outcome(&summary)
        }
        _ => Ok(Outcome::Ok),
    }
}

/// The exit status of an archive or a pipe: errors are status 1 (the
/// archive is complete, but holds zeros for damaged data or lacks entries),
/// warnings (entries a zip cannot hold) status 3.
fn archive_outcome(summary: &RestoreSummary) -> Result<Outcome> {
    if summary.has_errors() {
        let n = summary.error_count;
        bail!(
            "{n} {} could not be archived correctly (see the errors above)",
            plural(n, "entry", "entries")
        );
    }
    if summary.has_warnings() {
        let n = summary.warning_count;
        eprintln!(
            "Warning: {n} {} left out of the archive (see above)",
            plural(n, "entry was", "entries were")
        );
        return Ok(Outcome::Warnings);
    }
    Ok(Outcome::Ok)
}

/// The snapshot node `plan.source` names; `what` (an option) does not
/// reach into disk images' contents.
fn snapshot_node(
    global: &Global,
    repo: &Arc<vaultfs::repo::Repository>,
    plan: &RestorePlan,
    what: &str,
) -> Result<(vaultfs::Id, vaultfs::snapshot::Snapshot, Node)> {
    let (id, snap, source) =
        crate::open::snapshot_target(repo, &plan.source, &plan.selection, &global.fs)?;
    match source {
        crate::open::Target::Node(node) => Ok((id, snap, *node)),
        crate::open::Target::Tree(_) => bail!(
            "{what} writes snapshot paths, not a disk image's contents ({}): \
             restore it with --target, or use `cat`",
            plan.source.path
        ),
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `N things`, leaving out zero counts except for files and dirs.
fn counts(s: &RestoreSummary) -> String {
    let mut parts = vec![
        format!(
            "{} {}",
            s.files_restored,
            plural(s.files_restored, "file", "files")
        ),
        format!(
            "{} {}",
            s.dirs_restored,
            plural(s.dirs_restored, "dir", "dirs")
        ),
    ];
    for (n, one, many) in [
        (s.symlinks_restored, "symlink", "symlinks"),
        (s.hardlinks_restored, "hard link", "hard links"),
        (s.specials_restored, "special file", "special files"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {}", plural(n, one, many)));
        }
    }
    parts.join(", ")
}

/// The final text: what was (or in a dry run, would be) restored, what was
/// left alone, and how long it took.
fn summary_text(s: &RestoreSummary, policy: Overwrite) -> String {
    let bytes = output::bytes(s.bytes_written);
    let time = output::duration(s.duration_secs);
    let mut lines = vec![if s.dry_run {
        format!(
            "dry run: would restore {}, {bytes}; read and verified in {time}, nothing written",
            counts(s)
        )
    } else {
        format!("restored {}, {bytes} in {time}", counts(s))
    }];
    let would = if s.dry_run { "would skip" } else { "skipped" };
    if s.files_skipped > 0 {
        lines.push(format!(
            "{would} {} existing {} (--overwrite {})",
            s.files_skipped,
            plural(s.files_skipped, "entry", "entries"),
            policy.as_str()
        ));
    }
    if s.files_unchanged > 0 {
        let n = s.files_unchanged;
        let files = plural(n, "file", "files");
        lines.push(if s.dry_run {
            format!(
                "would keep {n} unchanged {files} (same size and mtime), restoring only metadata"
            )
        } else {
            format!("kept {n} unchanged {files} (same size and mtime), restored only metadata")
        });
    }
    if s.error_count > 0 {
        lines.push(format!(
            "{} {}",
            s.error_count,
            plural(s.error_count, "error", "errors")
        ));
    }
    if s.warning_count > 0 {
        lines.push(format!(
            "{} {}",
            s.warning_count,
            plural(s.warning_count, "warning", "warnings")
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_texts() {
        let s = RestoreSummary {
            files_restored: 1,
            dirs_restored: 3,
            symlinks_restored: 2,
            bytes_written: 2048,
            duration_secs: 61.0,
            ..RestoreSummary::default()
        };
        assert_eq!(
            summary_text(&s, Overwrite::Always),
            "restored 1 file, 3 dirs, 2 symlinks, 2.000 KiB in 1:01"
        );
        let s = RestoreSummary {
            dry_run: true,
            files_restored: 4,
            files_skipped: 1,
            error_count: 2,
            ..RestoreSummary::default()
        };
        let text = summary_text(&s, Overwrite::Never);
        assert!(
            text.starts_with("dry run: would restore 4 files, 0 dirs, 0 B;"),
            "{text}"
        );
        assert!(
            text.contains("would skip 1 existing entry (--overwrite never)"),
            "{text}"
        );
        assert!(text.ends_with("2 errors"), "{text}");
    }
}
