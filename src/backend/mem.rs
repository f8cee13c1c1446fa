//! An in-memory backend for tests and for fault injection.

use std::collections::BTreeMap;
use std::io;

use parking_lot::RwLock;

use super::{Backend, FileInfo, FileType};

/// Files kept in a map; cheap to clone the contents for inspection.
#[derive(Default)]
pub struct MemBackend {
    files: RwLock<BTreeMap<(FileType, String), Vec<u8>>>,
}

impl MemBackend {
    /// An empty backend.
    pub fn new() -> MemBackend {
        MemBackend::default()
    }

    /// Changes a stored file in place (for damage tests).
    pub fn mutate(&self, t: FileType, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> bool {
        match self.files.write().get_mut(&(t, name.to_owned())) {
            Some(v) => {
                f(v);
                true
            }
            None => false,
        }
    }
}

fn not_found(t: FileType, name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}/{name} not found", t.dir()),
    )
}

impl Backend for MemBackend {
    fn location(&self) -> String {
        "mem:".into()
    }

    fn create(&self) -> io::Result<()> {
        if self
            .files
            .read()
            .contains_key(&(FileType::Config, "config".into()))
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "config already exists",
            ));
        }
        Ok(())
    }

    fn list(&self, t: FileType) -> io::Result<Vec<FileInfo>> {
        Ok(self
            .files
            .read()
            .iter()
            .filter(|((ft, _), _)| *ft == t)
            .map(|((_, name), v)| FileInfo {
                name: name.clone(),
                size: v.len() as u64,
            })
            .collect())
    }

    fn read(&self, t: FileType, name: &str) -> io::Result<Vec<u8>> {
        self.files
            .read()
            .get(&(t, name.to_owned()))
            .cloned()
            .ok_or_else(|| not_found(t, name))
    }

    fn read_at(&self, t: FileType, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let files = self.files.read();
        let v = files
            .get(&(t, name.to_owned()))
            .ok_or_else(|| not_found(t, name))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= v.len() => Ok(v[start..end].to_vec()),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}/{name}: range {offset}+{len} past end {}",
                    t.dir(),
                    v.len()
                ),
            )),
        }
    }

    fn size(&self, t: FileType, name: &str) -> io::Result<u64> {
        let files = self.files.read();
        files
            .get(&(t, name.to_owned()))
            .map(|v| v.len() as u64)
            .ok_or_else(|| not_found(t, name))
    }

    fn write(&self, t: FileType, name: &str, data: &[u8]) -> io::Result<()> {
        self.files
            .write()
            .insert((t, name.to_owned()), data.to_vec());
        Ok(())
    }

    fn remove(&self, t: FileType, name: &str) -> io::Result<()> {
        self.files
            .write()
            .remove(&(t, name.to_owned()))
            .map(|_| ())
            .ok_or_else(|| not_found(t, name))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        super::super::conformance::run(&super::MemBackend::new());
    }
}
