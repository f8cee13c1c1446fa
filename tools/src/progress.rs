//! The backup, restore and check progress displays: a bar on stderr (bytes done of
//! the total, rate, ETA, files) when stderr is a terminal, nothing in
//! scripts. Errors and warnings are always printed on stderr, above the bar.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vaultfs::archiver::Progress;
use vaultfs::check::CheckProgress;
use vaultfs::restore::RestoreProgress;

use crate::plan::Output;

/// Progress of one backup.
pub struct BackupProgress {
    bar: Option<ProgressBar>,
    files_total: AtomicU64,
    files_done: AtomicU64,
}

const TEMPLATE: &str = "[{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} \
                        {binary_bytes_per_sec} ETA {eta} {msg}";

/// A bar if the output settings want one.
fn new_bar(output: &Output) -> Option<ProgressBar> {
    output.progress.then(|| {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style);
        }
        // Keeps elapsed time and rate moving while a large file is read.
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    })
}

/// Shows `done/total files` beside the bar.
fn show_files(bar: Option<&ProgressBar>, done: &AtomicU64, total: &AtomicU64) {
    if let Some(bar) = bar {
        bar.set_message(format!(
            "{}/{} files",
            done.load(Ordering::Relaxed),
            total.load(Ordering::Relaxed)
        ));
    }
}

/// Prints a message on stderr without tearing the bar.
fn print_above(bar: Option<&ProgressBar>, text: &str) {
    match bar {
        Some(bar) => bar.suspend(|| eprintln!("{text}")),
        None => eprintln!("{text}"),
    }
}

impl BackupProgress {
    /// A display fitting the output settings.
    pub fn new(output: &Output) -> BackupProgress {
        BackupProgress {
            bar: new_bar(output),
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
        }
    }

    fn update_message(&self) {
        show_files(self.bar.as_ref(), &self.files_done, &self.files_total);
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for BackupProgress {
    fn scanned(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
        self.update_message();
    }

    fn processed(&self, files: u64, bytes: u64) {
        self.files_done.fetch_add(files, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
        self.update_message();
    }

    fn warning(&self, path: &Path, message: &str) {
        print_above(
            self.bar.as_ref(),
            &format!("warning: {}: {message}", path.display()),
        );
    }

    fn stderr(&self, data: &[u8]) {
        use std::io::Write;
        let write = || {
            let _ = std::io::stderr().write_all(data);
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl Drop for BackupProgress {
    fn drop(&mut self) {
        // An error ends the command early; the bar must not stay on screen.
        self.finish();
    }
}

/// Progress of one restore (or dry run): content bytes written or verified
/// of those planned, and files completed.
pub struct RestoreBar {
    bar: Option<ProgressBar>,
    files_total: AtomicU64,
    files_done: AtomicU64,
}

impl RestoreBar {
    /// A display fitting the output settings.
    pub fn new(output: &Output) -> RestoreBar {
        RestoreBar {
            bar: new_bar(output),
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl RestoreProgress for RestoreBar {
    fn totals(&self, files: u64, bytes: u64) {
        self.files_total.store(files, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
        show_files(self.bar.as_ref(), &self.files_done, &self.files_total);
    }

    fn bytes_done(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn file_done(&self, _path: &str) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        show_files(self.bar.as_ref(), &self.files_done, &self.files_total);
    }

    fn error(&self, message: &str) {
        print_above(self.bar.as_ref(), &format!("error: {message}"));
    }

    fn warning(&self, message: &str) {
        print_above(self.bar.as_ref(), &format!("warning: {message}"));
    }
}

impl Drop for RestoreBar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Progress of `check --read-data`: pack bytes read of those selected,
/// and packs done.
pub struct CheckBar {
    bar: Option<ProgressBar>,
    packs_total: AtomicU64,
    packs_done: AtomicU64,
    /// No pack is started after this (`--max-duration`).
    deadline: Option<std::time::Instant>,
    /// For tests: no pack is started after this many.
    stop_after: Option<u64>,
    started: AtomicU64,
}

impl CheckBar {
    /// A display fitting the output settings.
    pub fn new(
        output: &Output,
        deadline: Option<std::time::Instant>,
        stop_after: Option<u64>,
    ) -> CheckBar {
        CheckBar {
            bar: new_bar(output),
            packs_total: AtomicU64::new(0),
            packs_done: AtomicU64::new(0),
            deadline,
            stop_after,
            started: AtomicU64::new(0),
        }
    }

    /// Removes the bar before the report is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn show_packs(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{}/{} packs",
                self.packs_done.load(Ordering::Relaxed),
                self.packs_total.load(Ordering::Relaxed)
            ));
        }
    }
}

impl CheckProgress for CheckBar {
    fn start(&self, packs: u64, bytes: u64) {
        self.packs_total.store(packs, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
        self.show_packs();
    }

    fn pack_done(&self, bytes: u64) {
        self.packs_done.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
        self.show_packs();
    }

    fn stop_requested(&self) -> bool {
        // Asked once per pack about to be started.
        let started = self.started.fetch_add(1, Ordering::Relaxed);
        self.stop_after.is_some_and(|n| started >= n)
            || self
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
    }

    fn image(&self, path: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("image {path}"));
        }
    }
}

impl Drop for CheckBar {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_valid_and_hidden_progress_counts() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        let out = Output {
            json: false,
            quiet: true,
            verbose: 0,
            progress: false,
        };
        let p = BackupProgress::new(&out);
        p.scanned(3, 100);
        p.processed(2, 60);
        assert_eq!(p.files_done.load(Ordering::Relaxed), 2);
        assert_eq!(p.files_total.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn hidden_restore_progress_counts() {
        let out = Output {
            json: false,
            quiet: true,
            verbose: 0,
            progress: false,
        };
        let p = RestoreBar::new(&out);
        p.totals(2, 10);
        p.bytes_done(4);
        p.file_done("/a");
        assert_eq!(p.files_done.load(Ordering::Relaxed), 1);
        assert_eq!(p.files_total.load(Ordering::Relaxed), 2);
    }
}
