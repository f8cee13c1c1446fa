//! The content pipeline of a backup: reader threads open files and cut them
//! into chunks; worker threads hash, deduplicate, compress and encrypt the
//! chunks (through the [`BlobSaver`]). Chunks of one file are processed in
//! parallel; the [`Collector`] reassembles them in order.
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
    data: ChunkData,
}

/// A chunk's bytes, or just the length of a chunk of zeros: sparse images
/// are mostly maximal zero chunks, which then cost no buffer in flight.
enum ChunkData {
    Bytes(Vec<u8>),
    Zeros(usize),
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
        path: PathBuf,
    },
    Failed {
        file: usize,
        path: PathBuf,
        message: String,
    },
}

/// A file's content as stored.
#[derive(Clone)]
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
    /// Held while a reader chunks a large file.
    big_file: Mutex<()>,
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
            big_file: Mutex::new(()),
            fatal: Mutex::new(None),
            zero_ids: Mutex::new(HashMap::new()),
        }
    }

    pub fn fail(&self, e: Error) {
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
                    path: job.path.clone(),
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
    let mut send = |data: ChunkData| -> io::Result<()> {
        bytes += match &data {
            ChunkData::Bytes(b) => b.len() as u64,
            ChunkData::Zeros(n) => *n as u64,
        };
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
                send(ChunkData::Bytes(head))?;
            }
            return Ok((seq, bytes));
        }
        // It grew meanwhile: chunk what we have followed by the rest.
        let mut c = Chunker::new(sh.params, io::Cursor::new(head).chain(f));
        while let Some(chunk) = c.next_chunk()? {
            send(ChunkData::Bytes(chunk))?;
        }
        return Ok((seq, bytes));
    }
    // One large file is chunked at a time: each chunker holds up to two
    // maximal chunks (16 MiB), and the workers, not the readers, set the
    // pace; the other reader goes on with small files meanwhile.
    let _big = sh.big_file.lock();
    chunk_stream(sh, job.idx, f, chunks)
}

/// Chunks a stream of any length (a large file, a disk's extent) as file
/// `file` and sends the chunks to the workers; returns how many chunks and
/// bytes were sent. Holds at most two maximal chunks: the workers set the
/// pace through the bounded channel.
pub(crate) fn chunk_stream<R: Read>(
    sh: &Shared<'_>,
    file: usize,
    reader: R,
    chunks: &Sender<ChunkJob>,
) -> io::Result<(u32, u64)> {
    let mut seq = 0u32;
    let mut bytes = 0u64;
    let mut c = Chunker::new(sh.params, reader);
    loop {
        while let Ok(buf) = sh.pool.1.try_recv() {
            c.recycle(buf);
        }
        let Some(chunk) = c.next_chunk()? else { break };
        if sh.aborted() {
            return Err(io::Error::other("backup aborted"));
        }
        bytes += chunk.len() as u64;
        let data = if is_zero(&chunk) {
            let n = chunk.len();
            c.recycle(chunk);
            ChunkData::Zeros(n)
        } else {
            ChunkData::Bytes(chunk)
        };
        chunks
            .send(ChunkJob { file, seq, data })
            .map_err(|_| io::Error::other("backup aborted"))?;
        seq += 1;
    }
    Ok((seq, bytes))
}

fn is_zero(data: &[u8]) -> bool {
    // A vectorised OR per block, stopping at the first block with data.
    data.chunks(4096)
        .all(|c| c.iter().fold(0u8, |acc, b| acc | b) == 0)
}

/// Stores a chunk; returns its id.
fn store(sh: &Shared<'_>, data: &ChunkData) -> crate::error::Result<Id> {
    match data {
        ChunkData::Bytes(b) => {
            let id = Id::hash(b);
            sh.saver.save(BlobType::Data, id, b)?;
            Ok(id)
        }
        ChunkData::Zeros(len) => {
            // Runs of zeros of one length all hash alike: the first one is
            // hashed and stored, later ones only looked up.
            if let Some(id) = sh.zero_ids.lock().get(len).copied() {
                return Ok(id);
            }
            let zeros = vec![0u8; *len];
            let id = Id::hash(&zeros);
            sh.saver.save(BlobType::Data, id, &zeros)?;
            sh.zero_ids.lock().insert(*len, id);
            Ok(id)
        }
    }
}

/// Hashes and stores chunks.
pub(crate) fn worker(sh: &Shared<'_>, chunks: Receiver<ChunkJob>, out: Sender<Outcome>) {
    for job in chunks.iter() {
        if sh.aborted() {
            continue; // drain so readers are not blocked
        }
        let id = match store(sh, &job.data) {
            Ok(id) => id,
            Err(e) => {
                sh.fail(e);
                continue;
            }
        };
        match job.data {
            ChunkData::Bytes(b) => {
                sh.progress.processed(0, b.len() as u64);
                if b.capacity() >= MIN_SIZE {
                    let _ = sh.pool.0.try_send(b);
                }
            }
            ChunkData::Zeros(n) => sh.progress.processed(0, n as u64),
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

/// Turns the pipeline's outcomes into per-file contents as they arrive, so
/// the walk can write a directory's tree as soon as its files are stored.
pub(crate) struct Collector {
    rx: Receiver<Outcome>,
    chunks: HashMap<usize, Vec<(u32, Id)>>,
    /// Files whose reader finished, waiting for in-flight chunks.
    done: HashMap<usize, (u32, u64, PathBuf)>,
    results: HashMap<usize, FileContent>,
}

impl Collector {
    pub fn new(rx: Receiver<Outcome>) -> Collector {
        Collector {
            rx,
            chunks: HashMap::new(),
            done: HashMap::new(),
            results: HashMap::new(),
        }
    }

    fn absorb(&mut self, o: Outcome) {
        match o {
            Outcome::Chunk { file, seq, id } => {
                self.chunks.entry(file).or_default().push((seq, id));
                self.complete(file);
            }
            Outcome::Done {
                file,
                chunks,
                bytes,
                path,
            } => {
                self.done.insert(file, (chunks, bytes, path));
                self.complete(file);
            }
            Outcome::Failed {
                file,
                path,
                message,
            } => {
                self.chunks.remove(&file);
                let msg = format!("{}: {message}", path.display());
                self.results.insert(file, FileContent::Failed(msg));
            }
        }
    }

    fn complete(&mut self, file: usize) {
        let have = self.chunks.get(&file).map_or(0, Vec::len);
        if self
            .done
            .get(&file)
            .is_some_and(|(n, _, _)| *n as usize == have)
        {
            let (_, bytes, _) = self.done.remove(&file).unwrap_or_default();
            let mut v = self.chunks.remove(&file).unwrap_or_default();
            v.sort_unstable_by_key(|(s, _)| *s);
            let ids = v.into_iter().map(|(_, id)| id).collect();
            self.results
                .insert(file, FileContent::Stored { ids, bytes });
        }
    }

    /// Takes in whatever has arrived, without waiting.
    pub fn poll(&mut self) {
        while let Ok(o) = self.rx.try_recv() {
            self.absorb(o);
        }
    }

    /// Takes in everything until the pipeline has stopped; files whose
    /// chunks did not all arrive (an aborted backup) become failures.
    pub fn drain(&mut self) {
        while let Ok(o) = self.rx.recv() {
            self.absorb(o);
        }
        for (file, (n, _, path)) in std::mem::take(&mut self.done) {
            let have = self.chunks.remove(&file).map_or(0, |v| v.len());
            let msg = format!("{}: {have} of {n} chunks stored", path.display());
            self.results.insert(file, FileContent::Failed(msg));
        }
    }

    /// Is the file's content known (stored or failed)?
    pub fn ready(&self, job: usize) -> bool {
        self.results.contains_key(&job)
    }

    /// The file's content; `keep` leaves it for another name of the file.
    pub fn take(&mut self, job: usize, keep: bool) -> Option<FileContent> {
        if keep {
            self.results.get(&job).cloned()
        } else {
            self.results.remove(&job)
        }
    }
}
