//! File contents: the planned files are cut into segments of consecutive
//! blobs, and worker threads load, verify and write the segments with
//! positioned writes, so one large file (a disk image) uses every core just
//! like many small ones. Blocks of zeros are not written: they stay holes,
//! and the file gets its full length when its last segment is done.
//!
//! Memory stays bounded: a worker holds one blob at a time, the queue holds
//! a few segments, and only files with queued segments are open.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::RestoreOptions;
use super::metadata;
use super::nodes::remove_existing;
use super::overwrite::Action;
use super::plan::{Item, Kind, Plan};
use super::report::{Count, Report};
use crate::error::{Error, ErrorKind, Result};
use crate::repo::{BlobType, Repository};
use crate::snapshot::walk::blob_sizes;

/// Target size of a segment, the unit of parallel work.
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;

/// Zero detection works on blocks of this size, aligned to file offsets, so
/// the holes left match the filesystem's blocks.
const BLOCK: u64 = 4096;

/// One file being restored.
struct FileJob<'p> {
    item: &'p Item,
    index: usize,
    /// `None` in a dry run.
    file: Option<File>,
    sizes: Vec<u64>,
    remaining: AtomicUsize,
    failed: Mutex<Option<Error>>,
}

/// Blobs `first..end` of a file, starting at byte `offset`.
struct Segment<'p> {
    job: Arc<FileJob<'p>>,
    first: usize,
    end: usize,
    offset: u64,
}

/// Restores the contents and metadata of the planned regular files; returns
/// for each item whether it is now present (restored, or unchanged), which
/// hard links to it need to know.
pub(crate) fn restore_files(
    repo: &Repository,
    plan: &Plan,
    dirs_ok: &[bool],
    opts: &RestoreOptions,
    report: &Report<'_>,
    segment_bytes: u64,
) -> Vec<AtomicBool> {
    let present: Vec<AtomicBool> = plan.items.iter().map(|_| AtomicBool::new(false)).collect();
    let workers = crate::parallel::workers();
    let (tx, rx) = crossbeam_channel::bounded::<Segment<'_>>(2 * workers);
    let ctx = Ctx {
        repo,
        opts,
        report,
        present: &present,
        zero_blobs: Mutex::new(std::collections::HashSet::new()),
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            let rx = rx.clone();
            let ctx = &ctx;
            s.spawn(move || {
                for seg in rx.iter() {
                    ctx.run(seg);
                }
            });
        }
        for (index, item) in plan.items.iter().enumerate() {
            let parent_ok = item.parent.is_none_or(|p| dirs_ok.get(p) == Some(&true));
            if item.kind == Kind::File && parent_ok {
                ctx.dispatch(index, item, segment_bytes, &tx);
            }
        }
        drop(tx);
    });
    present
}

struct Ctx<'a> {
    repo: &'a Repository,
    opts: &'a RestoreOptions,
    report: &'a Report<'a>,
    present: &'a [AtomicBool],
    /// Blobs already read and found to hold only zeros (sparse images
    /// repeat one such blob many times).
    zero_blobs: Mutex<std::collections::HashSet<crate::id::Id>>,
}

impl<'a> Ctx<'a> {
    /// Opens the file and queues its segments (or finishes it right away).
    fn dispatch<'p>(
        &self,
        index: usize,
        item: &'p Item,
        segment_bytes: u64,
        tx: &crossbeam_channel::Sender<Segment<'p>>,
    ) {
        if item.action == Action::Unchanged && !self.opts.dry_run {
            self.unchanged(index, item);
            return;
        }
        let started = blob_sizes(self.repo, &item.path, &item.node).and_then(|sizes| {
            let file = match self.opts.dry_run {
                true => None,
                false => Some(create(item)?),
            };
            Ok((sizes, file))
        });
        let (sizes, file) = match started {
            Ok(s) => s,
            Err(e) => return self.failed(item, &e),
        };
        let segments = segment(&sizes, segment_bytes);
        let job = Arc::new(FileJob {
            item,
            index,
            file,
            sizes,
            remaining: AtomicUsize::new(segments.len()),
            failed: Mutex::new(None),
        });
        if segments.is_empty() {
            return self.finish(&job);
        }
        for (first, end, offset) in segments {
            let seg = Segment {
                job: job.clone(),
                first,
                end,
                offset,
            };
            // The workers live until the sender is dropped, so a send fails
            // only if they are all gone; then nothing could finish the file.
            if tx.send(seg).is_err() {
                self.report
                    .error(format!("{}: not restored: no worker left", item.path));
                return;
            }
        }
    }

    /// Loads, verifies and writes one segment; the last one finishes the file.
    fn run(&self, seg: Segment<'_>) {
        let job = &seg.job;
        if job.failed.lock().is_none() {
            if let Err(e) = self.write_segment(&seg) {
                job.failed.lock().get_or_insert(e);
            }
        }
        if job.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish(job);
        }
    }

    fn write_segment(&self, seg: &Segment<'_>) -> Result<()> {
        let job = &seg.job;
        let ids = job.item.node.content();
        let mut offset = seg.offset;
        for i in seg.first..seg.end {
            let (Some(id), Some(&want)) = (ids.get(i), job.sizes.get(i)) else {
                return Err(Error::damaged(format!(
                    "blob {i} of the file is out of range"
                )));
            };
            if self.zero_blobs.lock().contains(id) {
                // Verified earlier in this restore to be all zeros: a hole.
                offset += want;
                self.report.progress().bytes_done(want);
                continue;
            }
            // Restores read each blob about once: bypassing the blob cache
            // keeps memory flat.
            let data = self.repo.read_blob(BlobType::Data, id)?;
            if data.len() as u64 != want {
                return Err(Error::damaged(format!(
                    "data blob {id} holds {} bytes, the index says {want}",
                    data.len()
                )));
            }
            if is_zero(&data) {
                self.zero_blobs.lock().insert(*id);
            }
            if let Some(f) = &job.file {
                write_sparse(f, offset, &data).map_err(|e| {
                    let msg = format!("writing {}: {e}", job.item.target.display());
                    Error::with_source(ErrorKind::Io, msg, e)
                })?;
            }
            offset += want;
            self.report.progress().bytes_done(want);
        }
        Ok(())
    }

    /// Completes a file: full length and metadata, or removal if it failed.
    fn finish(&self, job: &FileJob<'_>) {
        let item = job.item;
        if let Some(e) = job.failed.lock().take() {
            if job.file.is_some() {
                // A partial file would pass for a restored one; remove it.
                let _ = std::fs::remove_file(&item.target);
            }
            return self.failed(item, &e);
        }
        if let Some(f) = &job.file {
            if let Err(e) = f.set_len(item.node.size) {
                let _ = std::fs::remove_file(&item.target);
                let t = item.target.display();
                return self.report.error(format!(
                    "{}: not restored: setting the length of {t}: {e}",
                    item.path
                ));
            }
            metadata::apply_to_file(f, &item.node, &item.path, self.report);
        }
        match item.action {
            // Only verified, in a dry run: the file would be left alone.
            Action::Skip => self.report.progress().file_done(&item.path),
            Action::Unchanged => {
                self.report.count(Count::Unchanged);
                self.report.progress().file_done(&item.path);
            }
            _ => self.report.file_done(&item.path, item.node.size),
        }
        if item.action != Action::Skip {
            if let Some(p) = self.present.get(job.index) {
                p.store(true, Ordering::Release);
            }
        }
    }

    fn failed(&self, item: &Item, e: &Error) {
        let msg = match self.opts.dry_run {
            true => format!("{}: {e}", item.path),
            false => format!("{}: not restored: {e}", item.path),
        };
        self.report.error(msg);
    }

    /// `if-changed` found the file as it is: restore only its metadata.
    fn unchanged(&self, index: usize, item: &Item) {
        if !self.opts.dry_run {
            let opened = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&item.target);
            match opened {
                Ok(f) => metadata::apply_to_file(&f, &item.node, &item.path, self.report),
                Err(e) => {
                    let t = item.target.display();
                    return self
                        .report
                        .error(format!("{}: opening {t}: {e}", item.path));
                }
            }
        }
        if let Some(p) = self.present.get(index) {
            p.store(true, Ordering::Release);
        }
        self.report.count(Count::Unchanged);
    }
}

/// Creates the file new (never through an existing symlink or hard link:
/// whatever was there is removed first, and `O_EXCL` refuses a newcomer).
fn create(item: &Item) -> Result<File> {
    let t = &item.target;
    let io_err = |what: &str, e: io::Error| {
        Error::with_source(ErrorKind::Io, format!("{what} {}: {e}", t.display()), e)
    };
    if item.action == Action::Replace {
        remove_existing(t).map_err(|e| io_err("removing", e))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(t)
        .map_err(|e| io_err("creating", e))
}

/// Cuts a file's blobs into `(first, end, offset)` runs of about `target`
/// bytes each.
fn segment(sizes: &[u64], target: u64) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    let (mut first, mut offset, mut acc) = (0, 0u64, 0u64);
    for (i, s) in sizes.iter().enumerate() {
        acc += s;
        if acc >= target || i + 1 == sizes.len() {
            out.push((first, i + 1, offset));
            offset += acc;
            first = i + 1;
            acc = 0;
        }
    }
    out
}

fn is_zero(block: &[u8]) -> bool {
    block.iter().fold(0u8, |acc, b| acc | b) == 0
}

/// Writes `data` at `offset`, skipping file-aligned blocks that are all
/// zeros (the file is new, so they read as zeros: holes).
pub(crate) fn write_sparse(f: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    let mut run: Option<usize> = None;
    let mut pos = 0usize;
    while pos < data.len() {
        let here = offset + pos as u64;
        let len = (BLOCK - here % BLOCK).min((data.len() - pos) as u64) as usize;
        let end = pos + len;
        match (is_zero(&data[pos..end]), run) {
            (true, Some(start)) => {
                f.write_all_at(&data[start..pos], offset + start as u64)?;
                run = None;
            }
            (false, None) => run = Some(pos),
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = run {
        f.write_all_at(&data[start..], offset + start as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_all_blobs_in_order() {
        let sizes = [5u64, 5, 5, 20, 1, 1];
        let segs = segment(&sizes, 10);
        assert_eq!(segs, vec![(0, 2, 0), (2, 4, 10), (4, 6, 35)]);
        assert!(segment(&[], 10).is_empty());
        assert_eq!(segment(&[3], 10), vec![(0, 1, 0)]);
    }

    #[test]
    fn sparse_writes_leave_holes_and_keep_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        let f = File::create(&p).expect("create");
        let mut data = vec![0u8; 3 << 20];
        data[10] = 1;
        data[5000] = 2;
        data[(2 << 20) + 7] = 3;
        let last = data.len() - 1;
        data[last] = 4;
        // Write at an unaligned offset in two parts, as two blobs would.
        write_sparse(&f, 100, &data[..1 << 20]).expect("write 1");
        write_sparse(&f, 100 + (1 << 20), &data[1 << 20..]).expect("write 2");
        f.set_len(100 + data.len() as u64).expect("set_len");
        let back = std::fs::read(&p).expect("read");
        assert_eq!(&back[100..], &data[..]);
        assert!(back[..100].iter().all(|b| *b == 0));
        use std::os::unix::fs::MetadataExt;
        let blocks = f.metadata().expect("stat").blocks() * 512;
        assert!(blocks <= 64 << 10, "{blocks} bytes allocated");
    }
}
