//! The backup progress display: a bar on stderr (bytes done of the total
//! found so far, rate, ETA, files) when stderr is a terminal, nothing in
//! scripts. Warnings are always printed on stderr, above the bar.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vaultfs::archiver::Progress;

use crate::plan::Output;

/// Progress of one backup.
pub struct BackupProgress {
    bar: Option<ProgressBar>,
    files_total: AtomicU64,
    files_done: AtomicU64,
}

const TEMPLATE: &str = "[{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} \
                        {binary_bytes_per_sec} ETA {eta} {msg}";

impl BackupProgress {
    /// A display fitting the output settings.
    pub fn new(output: &Output) -> BackupProgress {
        let bar = output.progress.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
                bar.set_style(style);
            }
            // Keeps elapsed time and rate moving while a large file is read.
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        BackupProgress {
            bar,
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
        }
    }

    fn update_message(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{}/{} files",
                self.files_done.load(Ordering::Relaxed),
                self.files_total.load(Ordering::Relaxed)
            ));
        }
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
        let text = format!("warning: {}: {message}", path.display());
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

impl Drop for BackupProgress {
    fn drop(&mut self) {
        // An error ends the command early; the bar must not stay on screen.
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
}
