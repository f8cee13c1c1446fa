//! The progress file of a data pass, so an interrupted `--read-data` run can
//! continue where it stopped (a 10 TB vault verified in nightly slices).
//!
//! The file is JSON lines: a header naming the repository, the selection
//! and the packs chosen (so a random subset continues with the same
//! packs), then one line per pack read with its findings and lost blobs.
//! Each line is written whole and flushed as soon as its pack is done, so a
//! run killed at any moment leaves a file whose complete lines are true; a
//! torn last line is ignored. The file is removed when the pass completes.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{Finding, PackResult};
use crate::id::{Id, PackId};
use crate::repo::pack::BlobType;

const FORMAT: &str = "vaultfs-check-progress/1";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    repository: String,
    selection: String,
    packs: Vec<(PackId, u64)>,
}

/// One pack's result as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    pack: PackId,
    size: u64,
    blobs_ok: u64,
    findings: Vec<Finding>,
    /// `None`: the whole pack is lost; else `(type, id)` pairs.
    lost: Option<Vec<(String, Id)>>,
}

/// What an earlier, interrupted run left.
pub(super) struct Saved {
    /// The packs it had chosen, with their sizes.
    pub packs: Vec<(PackId, u64)>,
    /// Results of the packs it read, by pack.
    pub done: HashMap<PackId, (u64, PackResult)>,
    /// The length of the file's complete lines (a torn last line is cut
    /// off before the file is continued).
    pub valid: u64,
}

/// The progress file of one data pass, opened by the caller (so a file that
/// cannot be written stops the command before it starts).
#[derive(Debug)]
pub struct ProgressFile {
    path: PathBuf,
    /// Read from an existing file when resuming, with the length of its
    /// complete lines.
    saved: Mutex<Option<(Header, Vec<Done>, u64)>>,
    out: Mutex<Option<File>>,
}

impl ProgressFile {
    /// Opens the progress file at `path`. With `resume`, an existing file is
    /// read (and continued if it matches the check); without, it is
    /// replaced when the data pass starts.
    pub fn open(path: &Path, resume: bool) -> io::Result<ProgressFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let saved = if resume {
            match File::open(path) {
                Ok(f) => read(BufReader::new(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        Ok(ProgressFile {
            path: path.to_owned(),
            saved: Mutex::new(saved),
            out: Mutex::new(None),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes what an earlier run saved for this repository and selection;
    /// `Err` says why saved progress was not used.
    pub(super) fn take_saved(
        &self,
        repository: &str,
        selection: &str,
    ) -> Result<Option<Saved>, String> {
        let Some((header, done, valid)) = self.saved.lock().take() else {
            return Ok(None);
        };
        if header.repository != repository {
            return Err("the saved progress is of another repository; starting over".into());
        }
        if header.selection != selection {
            return Err(format!(
                "the saved progress is of --read-data-subset {}, not {selection}; starting over",
                header.selection
            ));
        }
        let done = done
            .into_iter()
            .map(|d| {
                let lost = d.lost.map(|l| {
                    l.into_iter()
                        .map(|(t, id)| {
                            let t = if t == "tree" {
                                BlobType::Tree
                            } else {
                                BlobType::Data
                            };
                            (t, id)
                        })
                        .collect()
                });
                let r = PackResult {
                    findings: d.findings,
                    lost,
                    blobs_ok: d.blobs_ok,
                };
                (d.pack, (d.size, r))
            })
            .collect();
        Ok(Some(Saved {
            packs: header.packs,
            done,
            valid,
        }))
    }

    /// Starts the file anew for this pass, or with `continuing` (the length
    /// of the saved complete lines) continues it.
    pub(super) fn begin(
        &self,
        repository: &str,
        selection: &str,
        packs: &[(PackId, u64)],
        continuing: Option<u64>,
    ) -> io::Result<()> {
        let f = if let Some(valid) = continuing {
            let f = OpenOptions::new().write(true).open(&self.path)?;
            f.set_len(valid)?;
            let mut f = f;
            f.seek(SeekFrom::End(0))?;
            f
        } else {
            let mut f = File::create(&self.path)?;
            let header = Header {
                format: FORMAT.into(),
                repository: repository.into(),
                selection: selection.into(),
                packs: packs.to_vec(),
            };
            write_line(&mut f, &header)?;
            f
        };
        *self.out.lock() = Some(f);
        Ok(())
    }

    /// Records one pack's result.
    pub(super) fn record(&self, pack: &PackId, size: u64, r: &PackResult) -> io::Result<()> {
        let done = Done {
            pack: *pack,
            size,
            blobs_ok: r.blobs_ok,
            findings: r.findings.clone(),
            lost: r.lost.as_ref().map(|l| {
                l.iter()
                    .map(|(t, id)| (t.as_str().to_owned(), *id))
                    .collect()
            }),
        };
        let mut out = self.out.lock();
        match out.as_mut() {
            Some(f) => write_line(f, &done),
            None => Ok(()),
        }
    }

    /// The pass is complete: the file is no longer needed.
    pub(super) fn finish(&self) -> io::Result<()> {
        *self.out.lock() = None;
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn write_line(f: &mut File, value: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
    line.push(b'\n');
    // One write per line: a run killed meanwhile leaves whole lines and at
    // most one torn last line, which `read` ignores.
    f.write_all(&line)
}

/// The header, the complete result lines and their length in bytes;
/// `None` if the file is not a progress file of this format.
fn read(mut r: impl BufRead) -> Option<(Header, Vec<Done>, u64)> {
    let mut line = Vec::new();
    let mut next = |line: &mut Vec<u8>| -> Option<usize> {
        line.clear();
        let n = r.read_until(b'\n', line).ok()?;
        // Only a line with its newline was written completely.
        (n > 0 && line.ends_with(b"\n")).then_some(n)
    };
    let mut valid = next(&mut line)? as u64;
    let header: Header = serde_json::from_slice(&line).ok()?;
    if header.format != FORMAT {
        return None;
    }
    let mut done = Vec::new();
    while let Some(n) = next(&mut line) {
        match serde_json::from_slice::<Done>(&line) {
            Ok(d) => done.push(d),
            Err(_) => break,
        }
        valid += n as u64;
    }
    Some((header, done, valid))
}
