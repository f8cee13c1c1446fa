//! Restore from the virtual tree (`crate::vfs`): paths that enter a disk
//! image's `.contents/` (its disk, its partitions, later its filesystems)
//! restore like snapshot paths, entry by entry. Files are copied in 1 MiB
//! reads; all-zero stretches are left as holes, so a disk image restores
//! sparse. Regular snapshot paths use the parallel restore instead.

use std::fs::{self, File as FsFile};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use filetime::FileTime;

use super::report::{Count, Report};
use super::{Overwrite, RestoreOptions, RestoreProgress, RestoreSummary, prepare_target};
use crate::error::Result;
use crate::vfs::{Entry, Kind};

const COPY_BYTES: usize = 1 << 20;

/// Restores `entry` (found at `path`): a directory's contents go into
/// `opts.target`, anything else goes there under `name`.
pub fn restore_entry(
    entry: &Entry,
    name: &str,
    path: &str,
    opts: &RestoreOptions,
    progress: &dyn RestoreProgress,
) -> Result<RestoreSummary> {
    let start = Instant::now();
    prepare_target(opts)?;
    let report = Report::new(progress, opts.dry_run);
    let (files, bytes) = totals(entry);
    progress.totals(files, bytes);
    match entry {
        Entry::Dir(_) => restore_children(entry, path, "", &opts.target, opts, &report),
        _ => restore_one(entry, path, name, &opts.target.join(name), opts, &report),
    }
    Ok(report.into_summary(start.elapsed().as_secs_f64()))
}

/// Files and bytes below `entry`, for the progress bar (directories that
/// cannot be listed count as empty; they are reported when restored).
fn totals(entry: &Entry) -> (u64, u64) {
    match entry {
        Entry::File(f) => (1, f.attr().size),
        Entry::Dir(d) => d.list().map_or((0, 0), |l| {
            l.entries().iter().fold((0, 0), |(n, b), (_, e)| {
                let (n2, b2) = totals(e);
                (n + n2, b + b2)
            })
        }),
        _ => (0, 0),
    }
}

fn restore_children(
    entry: &Entry,
    path: &str,
    rel: &str,
    dest: &Path,
    opts: &RestoreOptions,
    report: &Report<'_>,
) {
    let listing = match entry.as_dir(path).and_then(|d| d.list()) {
        Ok(l) => l,
        Err(e) => {
            report.error(format!("{path}: {e}"));
            return;
        }
    };
    for (name, child) in listing.entries() {
        let child_rel = format!("{rel}/{name}");
        if opts.filter.excluded(&child_rel) {
            continue;
        }
        let child_path = format!("{}/{name}", path.trim_end_matches('/'));
        if opts.filter.has_includes()
            && !opts.filter.included(&child_rel)
            && !matches!(child, Entry::Dir(_))
        {
            continue;
        }
        restore_at(
            child,
            &child_path,
            &child_rel,
            &dest.join(name),
            opts,
            report,
        );
    }
}

fn restore_at(
    entry: &Entry,
    path: &str,
    rel: &str,
    dest: &Path,
    opts: &RestoreOptions,
    report: &Report<'_>,
) {
    if let Entry::Dir(_) = entry {
        if !opts.dry_run
            && let Err(e) = fs::create_dir_all(dest)
        {
            report.error(format!("{path}: creating {}: {e}", dest.display()));
            return;
        }
        restore_children(entry, path, rel, dest, opts, report);
        report.count(Count::Dir);
        if !opts.dry_run {
            finish_meta(entry, dest, path, report);
        }
        return;
    }
    restore_one(entry, path, rel, dest, opts, report);
}

fn restore_one(
    entry: &Entry,
    path: &str,
    _rel: &str,
    dest: &Path,
    opts: &RestoreOptions,
    report: &Report<'_>,
) {
    let attr = entry.attr();
    match entry {
        Entry::File(_) | Entry::Broken(_) if attr.kind != Kind::Dir => {
            if let Ok(m) = fs::symlink_metadata(dest) {
                let same = m.len() == attr.size
                    && FileTime::from_last_modification_time(&m)
                        == FileTime::from_system_time(attr.mtime);
                let skip = match opts.overwrite {
                    Overwrite::Always => false,
                    Overwrite::Never => true,
                    Overwrite::IfChanged => same,
                    Overwrite::IfNewer => {
                        FileTime::from_last_modification_time(&m)
                            >= FileTime::from_system_time(attr.mtime)
                    }
                };
                if skip {
                    report.count(if same {
                        Count::Unchanged
                    } else {
                        Count::Skipped
                    });
                    return;
                }
            }
            match copy_file(entry, path, dest, opts.dry_run, report) {
                Ok(n) => {
                    if !opts.dry_run {
                        finish_meta(entry, dest, path, report);
                    }
                    report.file_done(path, n);
                }
                Err(e) => report.error(format!("{path}: {e}")),
            }
        }
        Entry::Symlink(s) => {
            if opts.dry_run {
                report.count(Count::Symlink);
                return;
            }
            let _ = fs::remove_file(dest);
            let target = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&s.target);
            match std::os::unix::fs::symlink(target, dest) {
                Ok(()) => report.count(Count::Symlink),
                Err(e) => report.error(format!("{path}: creating symlink {}: {e}", dest.display())),
            }
        }
        _ => report.warning(format!("{path}: not restored (a special file in the tree)")),
    }
}

/// Copies a file's bytes, leaving holes where whole reads are zeros.
/// Returns the bytes read.
fn copy_file(
    entry: &Entry,
    path: &str,
    dest: &Path,
    dry_run: bool,
    report: &Report<'_>,
) -> Result<u64, String> {
    let src = entry.open(path).map_err(|e| e.to_string())?;
    let len = src.len();
    let mut out = if dry_run {
        None
    } else {
        let _ = fs::remove_file(dest);
        Some(FsFile::create(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?)
    };
    let mut buf = vec![0u8; COPY_BYTES];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from(len - at).map_or(COPY_BYTES, |l| l.min(COPY_BYTES));
        src.read_exact_at(at, &mut buf[..n])
            .map_err(|e| format!("reading at byte {at}: {e}"))?;
        if let Some(f) = out.as_mut() {
            let written = if buf[..n].iter().all(|&b| b == 0) {
                f.seek(SeekFrom::Current(n as i64)).map(|_| ())
            } else {
                f.write_all(&buf[..n])
            };
            written.map_err(|e| format!("writing {}: {e}", dest.display()))?;
        }
        at += n as u64;
        report.progress().bytes_done(n as u64);
    }
    if let Some(f) = out {
        f.set_len(len)
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("writing {}: {e}", dest.display()))?;
    }
    Ok(len)
}

/// Mode and times from the tree; ownership only as root.
fn finish_meta(entry: &Entry, dest: &Path, path: &str, report: &Report<'_>) {
    let attr = entry.attr();
    if let Err(e) = fs::set_permissions(dest, fs::Permissions::from_mode(attr.perm)) {
        report.warning(format!("{path}: setting mode on {}: {e}", dest.display()));
    }
    if nix::unistd::geteuid().is_root() {
        let _ = std::os::unix::fs::chown(dest, Some(attr.uid), Some(attr.gid));
    }
    let mtime = FileTime::from_system_time(attr.mtime);
    let atime = FileTime::from_system_time(attr.atime);
    if let Err(e) = filetime::set_file_times(dest, atime, mtime) {
        report.warning(format!("{path}: setting times on {}: {e}", dest.display()));
    }
}
