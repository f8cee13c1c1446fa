//! The running tally of a restore, shared by the worker threads: counters,
//! errors and warnings (kept up to a bound, counted in full), forwarded to
//! the caller's progress sink as they happen.

use parking_lot::Mutex;

use super::{MAX_MESSAGES, RestoreProgress, RestoreSummary};

pub(crate) struct Report<'a> {
    progress: &'a dyn RestoreProgress,
    summary: Mutex<RestoreSummary>,
}

/// The counters a stage may bump.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    Dir,
    Symlink,
    HardLink,
    Special,
    Skipped,
    Unchanged,
}

impl<'a> Report<'a> {
    pub(crate) fn new(progress: &'a dyn RestoreProgress, dry_run: bool) -> Report<'a> {
        Report {
            progress,
            summary: Mutex::new(RestoreSummary {
                dry_run,
                ..RestoreSummary::default()
            }),
        }
    }

    pub(crate) fn progress(&self) -> &dyn RestoreProgress {
        self.progress
    }

    /// An entry was not restored.
    pub(crate) fn error(&self, message: String) {
        self.progress.error(&message);
        let mut s = self.summary.lock();
        s.error_count += 1;
        if s.errors.len() < MAX_MESSAGES {
            s.errors.push(message);
        }
    }

    /// An entry was restored incompletely.
    pub(crate) fn warning(&self, message: String) {
        self.progress.warning(&message);
        let mut s = self.summary.lock();
        s.warning_count += 1;
        if s.warnings.len() < MAX_MESSAGES {
            s.warnings.push(message);
        }
    }

    pub(crate) fn count(&self, what: Count) {
        let mut s = self.summary.lock();
        let c = match what {
            Count::Dir => &mut s.dirs_restored,
            Count::Symlink => &mut s.symlinks_restored,
            Count::HardLink => &mut s.hardlinks_restored,
            Count::Special => &mut s.specials_restored,
            Count::Skipped => &mut s.files_skipped,
            Count::Unchanged => &mut s.files_unchanged,
        };
        *c += 1;
    }

    /// A file's content is complete.
    pub(crate) fn file_done(&self, path: &str, bytes: u64) {
        {
            let mut s = self.summary.lock();
            s.files_restored += 1;
            s.bytes_written += bytes;
        }
        self.progress.file_done(path);
    }

    pub(crate) fn into_summary(self, duration_secs: f64) -> RestoreSummary {
        let mut s = self.summary.into_inner();
        s.duration_secs = duration_secs;
        s
    }
}
