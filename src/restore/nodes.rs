//! The restore stages for everything but file contents: directories (made
//! first, their metadata set last), symlinks, fifos and devices, and hard
//! links. Each stage skips the entries of directories that could not be
//! made; that failure was reported once, for the directory.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::RestoreOptions;
use super::metadata;
use super::overwrite::Action;
use super::plan::{Item, Kind, Plan};
use super::report::{Count, Report};
use crate::snapshot::Node;

/// Removes whatever is at `path` without following it (a directory with
/// its contents, as restic does when a file replaces a directory).
pub(crate) fn remove_existing(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn parent_ok(parent: Option<usize>, dirs_ok: &[bool]) -> bool {
    parent.is_none_or(|p| dirs_ok.get(p) == Some(&true))
}

/// Creates the selected directories, parents first; returns which ones
/// exist now (in a dry run: which ones would).
pub(crate) fn create_dirs(plan: &Plan, opts: &RestoreOptions, report: &Report<'_>) -> Vec<bool> {
    let mut ok = vec![false; plan.dirs.len()];
    for (i, d) in plan.dirs.iter().enumerate() {
        if !d.selected || !parent_ok(d.parent, &ok) {
            continue;
        }
        let made = match (opts.dry_run, d.action) {
            (true, _) | (false, Action::Merge) => Ok(()),
            (false, Action::Replace) => {
                remove_existing(&d.target).and_then(|()| make_dir(&d.target))
            }
            (false, _) => make_dir(&d.target),
        };
        match made {
            Ok(()) => ok[i] = true,
            Err(e) => report.error(format!(
                "{}: creating directory {}: {e}; its contents were not restored",
                d.path,
                d.target.display()
            )),
        }
    }
    ok
}

/// A new directory, private until its own mode is restored at the end.
fn make_dir(path: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        r => r,
    }
}

/// Makes one kind of node at a path.
type Create = fn(&Path, &Node) -> io::Result<()>;

/// Creates symlinks, fifos and device nodes with their metadata.
pub(crate) fn create_others(
    plan: &Plan,
    dirs_ok: &[bool],
    opts: &RestoreOptions,
    report: &Report<'_>,
) {
    for item in &plan.items {
        if !matches!(item.kind, Kind::Symlink | Kind::Special) || !parent_ok(item.parent, dirs_ok) {
            continue;
        }
        let (count, create): (Count, Create) = match item.kind {
            Kind::Symlink => (Count::Symlink, metadata::create_symlink),
            _ => (Count::Special, metadata::create_special),
        };
        if opts.dry_run {
            report.count(count);
            continue;
        }
        if let Err(e) = replace(item).and_then(|()| create(&item.target, &item.node)) {
            let msg = format!("{}: creating {}: {e}", item.path, item.target.display());
            // A device needs privileges a user may lack; that is no damage.
            match item.kind {
                Kind::Special => report.warning(msg),
                _ => report.error(msg),
            }
            continue;
        }
        metadata::apply_to_path(&item.target, &item.node, &item.path, report);
        report.count(count);
    }
}

fn replace(item: &Item) -> io::Result<()> {
    match item.action {
        Action::Replace => remove_existing(&item.target),
        _ => Ok(()),
    }
}

/// Creates hard links to the files restored (or found unchanged) before.
pub(crate) fn create_links(
    plan: &Plan,
    dirs_ok: &[bool],
    present: &[AtomicBool],
    opts: &RestoreOptions,
    report: &Report<'_>,
) {
    for item in &plan.items {
        let Kind::HardLink(first) = item.kind else {
            continue;
        };
        if !parent_ok(item.parent, dirs_ok) {
            continue;
        }
        let (Some(original), Some(there)) = (plan.items.get(first), present.get(first)) else {
            continue;
        };
        if !there.load(Ordering::Acquire) {
            report.error(format!(
                "{}: not restored: it is a hard link to {}, which was not restored",
                item.path, original.path
            ));
            continue;
        }
        if item.action == Action::Unchanged {
            report.count(Count::Unchanged);
            continue;
        }
        if !opts.dry_run {
            let linked =
                replace(item).and_then(|()| std::fs::hard_link(&original.target, &item.target));
            if let Err(e) = linked {
                let (from, to) = (item.target.display(), original.target.display());
                report.error(format!("{}: linking {from} to {to}: {e}", item.path));
                continue;
            }
        }
        report.count(Count::HardLink);
    }
}

/// Sets directory metadata, children before parents, after all contents
/// are in place.
pub(crate) fn finish_dirs(
    plan: &Plan,
    dirs_ok: &[bool],
    opts: &RestoreOptions,
    report: &Report<'_>,
) {
    for (d, ok) in plan.dirs.iter().zip(dirs_ok).rev() {
        if !*ok {
            continue;
        }
        if !opts.dry_run {
            metadata::apply_to_path(&d.target, &d.node, &d.path, report);
        }
        report.count(Count::Dir);
    }
}
