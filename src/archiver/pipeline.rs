//! The content pipeline of a backup: reader threads open files and cut them
//! into chunks; worker threads hash, deduplicate, compress and encrypt the
//! chunks (through the [`BlobSaver`]). Chunks of one file are processed in
//! parallel; results are reassembled in order by the caller.
//!
//! Memory is bounded by the channel capacities: at most a few maximal
//! chunks per thread are in flight.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::Progress;
use crate::chunker::{Chunker, ChunkerParams, MIN_SIZE};
use crate::error::Error;
use crate::id::Id;
use crate::repo::BlobType;
use crate::repo::saver::BlobSaver;

/// A file to read.
pub(crate) struct FileJob {
    pub idx: usize,
    pub path: PathBuf,
    pub size: u64,
}

/// One chunk to store.
pub(crate) struct ChunkJob {
    file: usize,
    seq: u32,
    data: Vec<u8>,
}

/// What the pipeline reports back, per chunk and per file.
pub(crate) enum Outcome {
    Chunk {
        file: usize,
        seq: u32,
        id: Id,
    },
    Done {
        file: usize,
        chunks: u32,
        bytes: u64,
    },
    Failed {
        file: usize,
        path: PathBuf,
        message: String,
    },
}

/// A file's content as stored.
pub(crate) enum FileContent {
    Stored { ids: Vec<Id>, bytes: u64 },
    Failed(String),
}

/// State shared by all pipeline threads.
pub(crate) struct Shared<'a> {
    pub saver: &'a BlobSaver,
    pub params: &'a ChunkerParams,
    pub progress: &'a dyn Progress,
    pub abort: AtomicBool,
    /// Chunk buffers done with, for the readers to reuse.
    pool: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    pub fatal: Mutex<Option<Error>>,
    zero_ids: Mutex<HashMap<usize, Id>>,
}

impl<'a> Shared<'a> {
    pub fn new(
        saver: &'a BlobSaver,
        params: &'a ChunkerParams,
        progress: &'a dyn Progress,
    ) -> Self {
        Shared {
            saver,
            params,
            progress,
            abort: AtomicBool::new(false),
            pool: crossbeam_channel::bounded(2),
            fatal: Mutex::new(None),
            zero_ids: Mutex::new(HashMap::new()),
        }
    }

    fn fail(&self, e: Error) {
        self.fatal.lock().get_or_insert(e);
        self.abort.store(true, Ordering::SeqCst);
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
}

fn open_noatime(path: &PathBuf) -> io::Result<File> {
    // O_NOATIME keeps backups from touching access times; the kernel only
    // allows it to the owner (or root), so fall back to a plain open.
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        Err(e) => Err(e),
    }
}

/// Reads files and sends their chunks to the workers.
pub(crate) fn reader(
    sh: &Shared<'_>,
    jobs: Receiver<FileJob>,
    chunks: Sender<ChunkJob>,
    out: Sender<Outcome>,
) {
    for job in jobs.iter() {
        if sh.aborted() {
            break;
        }
        let outcome = match read_file(sh, &job, &chunks) {
            Ok((n, bytes)) => {
                sh.progress.processed(1, 0);
                Outcome::Done {
                    file: job.idx,
                    chunks: n,
                    bytes,
                }
            }
            Err(e) => {
                sh.progress.warning(&job.path, &e.to_string());
                Outcome::Failed {
                    file: job.idx,
                    path: job.path.clone(),
                    message: e.to_string(),
                }
            }
        };
        if out.send(outcome).is_err() {
            break;
        }
    }
}

fn read_file(sh: &Shared<'_>, job: &FileJob, chunks: &Sender<ChunkJob>) -> io::Result<(u32, u64)> {
    let mut f = open_noatime(&job.path)?;
    let mut seq = 0u32;
    let mut bytes = 0u64;
    let mut send = |data: Vec<u8>| -> io::Result<()> {
        bytes += data.len() as u64;
        let job = ChunkJob {
            file: job.idx,
            seq,
            data,
        };
        seq += 1;
        chunks
            .send(job)
            .map_err(|_| io::Error::other("backup aborted"))
    };
    if job.size < MIN_SIZE as u64 {
        // Small files: one read, one chunk (what the chunker would cut too).
        let mut head = Vec::with_capacity(job.size as usize + 1);
        (&mut f).take(MIN_SIZE as u64 + 1).read_to_end(&mut head)?;
        if head.len() <= MIN_SIZE {
            if !head.is_empty() {
                send(head)?;
            }
            return Ok((seq, bytes));
        }
        // It grew meanwhile: chunk what we have followed by the rest.
        let mut c = Chunker::new(sh.params, io::Cursor::new(head).chain(f));
        while let Some(chunk) = c.next_chunk()? {
            send(chunk)?;
        }
        return Ok((seq, bytes));
    }
    let mut c = Chunker::new(sh.params, f);
    loop {
        while let Ok(buf) = sh.pool.1.try_recv() {
            c.recycle(buf);
        }
        let Some(chunk) = c.next_chunk()? else { break };
        if sh.aborted() {
            return Err(io::Error::other("backup aborted"));
        }
        send(chunk)?;
    }
    Ok((seq, bytes))
}

fn is_zero(data: &[u8]) -> bool {
    static ZEROS: [u8; 4096] = [0; 4096];
    data.chunks(4096).all(|c| c == &ZEROS[..c.len()])
}

/// Hashes and stores chunks.
pub(crate) fn worker(sh: &Shared<'_>, chunks: Receiver<ChunkJob>, out: Sender<Outcome>) {
    for job in chunks.iter() {
        if sh.aborted() {
            continue; // drain so readers are not blocked
        }
        let len = job.data.len();
        // Runs of zeros (sparse images, preallocated files) are common and
        // all hash alike: remember their id per length.
        let zero = is_zero(&job.data);
        let cached = if zero {
            sh.zero_ids.lock().get(&len).copied()
        } else {
            None
        };
        let id = cached.unwrap_or_else(|| Id::hash(&job.data));
        if zero && cached.is_none() {
            sh.zero_ids.lock().insert(len, id);
        }
        if !(cached.is_some() && sh.saver.known(BlobType::Data, &id))
            && let Err(e) = sh.saver.save(BlobType::Data, id, &job.data)
        {
            sh.fail(e);
            continue;
        }
        sh.progress.processed(0, len as u64);
        if job.data.capacity() >= MIN_SIZE {
            let _ = sh.pool.0.try_send(job.data);
        }
        if out
            .send(Outcome::Chunk {
                file: job.file,
                seq: job.seq,
                id,
            })
            .is_err()
        {
            break;
        }
    }
}

/// Collects outcomes into per-file contents.
pub(crate) fn assemble(results: Receiver<Outcome>) -> HashMap<usize, FileContent> {
    let mut ids: HashMap<usize, Vec<(u32, Id)>> = HashMap::new();
    let mut done: HashMap<usize, FileContent> = HashMap::new();
    let mut pending: Vec<(usize, u32, u64)> = Vec::new();
    for o in results.iter() {
        match o {
            Outcome::Chunk { file, seq, id } => ids.entry(file).or_default().push((seq, id)),
            Outcome::Done {
                file,
                chunks,
                bytes,
            } => pending.push((file, chunks, bytes)),
            Outcome::Failed {
                file,
                path,
                message,
            } => {
                done.insert(
                    file,
                    FileContent::Failed(format!("{}: {message}", path.display())),
                );
            }
        }
    }
    for (file, chunks, bytes) in pending {
        let mut v = ids.remove(&file).unwrap_or_default();
        v.sort_unstable_by_key(|(s, _)| *s);
        let content = if v.len() == chunks as usize {
            FileContent::Stored {
                ids: v.into_iter().map(|(_, id)| id).collect(),
                bytes,
            }
        } else {
            FileContent::Failed(format!("{} of {chunks} chunks stored", v.len()))
        };
        done.insert(file, content);
    }
    done
}
