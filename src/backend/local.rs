//! A repository in a local directory, laid out as restic's "default layout":
//! `config`, `keys/`, `snapshots/`, `index/`, `locks/`, `data/xx/<id>`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;

use super::{Backend, FileInfo, FileType};

/// A repository directory on a local filesystem.
pub struct LocalBackend {
    root: PathBuf,
    /// Directories with renamed packs whose entries are not yet synced.
    unsynced: parking_lot::Mutex<std::collections::HashSet<PathBuf>>,
}

impl LocalBackend {
    /// A backend rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend {
            root: root.into(),
            unsynced: Default::default(),
        }
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir_of(&self, t: FileType, name: &str) -> PathBuf {
        match t {
            FileType::Config => self.root.clone(),
            FileType::Pack => self.root.join("data").join(name.get(..2).unwrap_or("00")),
            _ => self.root.join(t.dir()),
        }
    }

    fn path(&self, t: FileType, name: &str) -> PathBuf {
        self.dir_of(t, name).join(name)
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Block size for direct I/O.
const DIRECT_ALIGN: usize = 4096;

/// Creates `path` holding `data`. Large, block-aligned buffers (packs) are
/// written with `O_DIRECT`: it spares the page-cache copy, which on the
/// benchmark machine cost as much CPU as a fifth of the whole backup; the
/// unaligned tail, and any filesystem refusing direct I/O, take the
/// ordinary path.
fn write_new(path: &Path, data: &[u8]) -> io::Result<File> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    };
    let aligned = data.len() / DIRECT_ALIGN * DIRECT_ALIGN;
    if aligned >= (1 << 20) && data.as_ptr() as usize % DIRECT_ALIGN == 0 {
        let direct = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        match direct {
            Ok(f) => {
                let done = write_direct(&f, &data[..aligned]);
                drop(f);
                let mut f = OpenOptions::new().write(true).open(path)?;
                // A short or refused direct write leaves the rest to the
                // buffered path; positioned writes keep the bytes in place.
                let done = done.unwrap_or(0);
                f.write_all_at(&data[done..], done as u64)?;
                f.flush()?;
                return Ok(f);
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Some filesystems create the file before refusing O_DIRECT.
                let _ = fs::remove_file(path);
            }
            Err(e) => return Err(e),
        }
    }
    let mut f = create()?;
    f.write_all(data)?;
    Ok(f)
}

/// Writes `data` (block-aligned in memory and length) with direct I/O;
/// returns how many bytes were written, always a multiple of the block.
fn write_direct(f: &File, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match f.write_at(&data[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n - n % DIRECT_ALIGN,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
        }
        if done % DIRECT_ALIGN != 0 {
            break;
        }
    }
    Ok(done)
}

fn list_dir(dir: &Path, out: &mut Vec<FileInfo>) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(with_path(e, dir)),
    };
    for entry in rd {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of interrupted writes are not part of the repository.
        if name.starts_with('.') || name.contains("-tmp-") {
            continue;
        }
        let md = entry.metadata()?;
        if md.is_file() {
            out.push(FileInfo {
                name,
                size: md.len(),
            });
        }
    }
    Ok(())
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> io::Result<()> {
        let config = self.root.join("config");
        if config.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: a repository already exists here", self.root.display()),
            ));
        }
        fs::create_dir_all(&self.root).map_err(|e| with_path(e, &self.root))?;
        for t in FileType::DIRS {
            fs::create_dir_all(self.root.join(t.dir()))?;
        }
        for i in 0..=255u8 {
            fs::create_dir_all(self.root.join("data").join(format!("{i:02x}")))?;
        }
        Ok(())
    }

    fn list(&self, t: FileType) -> io::Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        match t {
            FileType::Config => {
                if let Ok(md) = fs::metadata(self.root.join("config")) {
                    out.push(FileInfo {
                        name: "config".into(),
                        size: md.len(),
                    });
                }
            }
            FileType::Pack => {
                let data = self.root.join("data");
                let rd = match fs::read_dir(&data) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(with_path(e, &data)),
                };
                for sub in rd {
                    let sub = sub?;
                    if sub.file_type()?.is_dir() {
                        list_dir(&sub.path(), &mut out)?;
                    }
                }
            }
            _ => list_dir(&self.root.join(t.dir()), &mut out)?,
        }
        Ok(out)
    }

    fn read(&self, t: FileType, name: &str) -> io::Result<Vec<u8>> {
        let p = self.path(t, name);
        fs::read(&p).map_err(|e| with_path(e, &p))
    }

    fn open(&self, t: FileType, name: &str) -> io::Result<Box<dyn io::Read + Send + '_>> {
        let p = self.path(t, name);
        let f = File::open(&p).map_err(|e| with_path(e, &p))?;
        Ok(Box::new(f))
    }

    fn read_at(&self, t: FileType, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let p = self.path(t, name);
        let f = File::open(&p).map_err(|e| with_path(e, &p))?;
        // `offset` and `len` come from index entries: check them against the
        // file before allocating `len` bytes.
        let size = f.metadata().map_err(|e| with_path(e, &p))?.len();
        if offset.checked_add(len as u64).is_none_or(|end| end > size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: range {offset}+{len} past end {size}", p.display()),
            ));
        }
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: reading {len} bytes at {offset}: {e}", p.display()),
            )
        })?;
        Ok(buf)
    }

    fn size(&self, t: FileType, name: &str) -> io::Result<u64> {
        let p = self.path(t, name);
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| with_path(e, &p))
    }

    fn write(&self, t: FileType, name: &str, data: &[u8]) -> io::Result<()> {
        let dir = self.dir_of(t, name);
        let final_path = dir.join(name);
        let tmp = dir.join(format!(
            ".{name}-tmp-{:016x}",
            rand::thread_rng().next_u64()
        ));
        let result = (|| {
            let f = write_new(&tmp, data)?;
            f.sync_all()?;
            // Stored files never change; read-only guards against accidents.
            f.set_permissions(fs::Permissions::from_mode(0o400))?;
            drop(f);
            fs::rename(&tmp, &final_path)?;
            if t == FileType::Pack {
                self.unsynced.lock().insert(dir.clone());
                Ok(())
            } else {
                File::open(&dir)?.sync_all()
            }
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| with_path(e, &final_path))
    }

    fn remove(&self, t: FileType, name: &str) -> io::Result<()> {
        let p = self.path(t, name);
        fs::remove_file(&p).map_err(|e| with_path(e, &p))
    }

    fn sync(&self) -> io::Result<()> {
        let dirs = std::mem::take(&mut *self.unsynced.lock());
        for dir in dirs {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| with_path(e, &dir))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = super::LocalBackend::new(dir.path().join("repo"));
        super::super::conformance::run(&b);
        // No temporary files are left behind.
        let stray: Vec<_> = walk(dir.path())
            .into_iter()
            .filter(|p| p.contains("-tmp-"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    }

    /// Packs are written with direct I/O when aligned; the bytes must come
    /// back the same, with an unaligned tail, on a filesystem that refuses
    /// O_DIRECT (tmpfs) too.
    #[test]
    fn direct_io_writes_round_trip() {
        use super::super::{Backend, FileType};
        let len = (2 << 20) + 123;
        let mut buf: Vec<u8> = Vec::with_capacity(len + super::DIRECT_ALIGN);
        let pad = (super::DIRECT_ALIGN - buf.as_ptr() as usize % super::DIRECT_ALIGN)
            % super::DIRECT_ALIGN;
        buf.resize(pad, 0);
        buf.extend((0..len).map(|i| (i * 7 + i / 4096) as u8));
        let data = &buf[pad..];
        assert_eq!(data.as_ptr() as usize % super::DIRECT_ALIGN, 0);
        let disk = tempfile::tempdir().expect("tempdir");
        let mut roots = vec![disk.path().to_path_buf()];
        let shm = std::path::Path::new("/dev/shm");
        let shm_dir = shm
            .is_dir()
            .then(|| tempfile::tempdir_in(shm).expect("shm tempdir"));
        roots.extend(shm_dir.as_ref().map(|d| d.path().to_path_buf()));
        for root in roots {
            let b = super::LocalBackend::new(root.join("repo"));
            b.create().expect("create");
            let name = "cd".repeat(32);
            b.write(FileType::Pack, &name, data).expect("write");
            assert!(
                b.read(FileType::Pack, &name).expect("read") == data,
                "{}",
                root.display()
            );
            b.sync().expect("sync");
        }
    }

    fn walk(p: &std::path::Path) -> Vec<String> {
        let mut out = vec![];
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            out.push(e.path().display().to_string());
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            }
        }
        out
    }
}
