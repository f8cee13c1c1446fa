//! A source over a local file, read with positional reads (`pread`), so
//! many threads can read one file handle at once.

use std::fs::File;
use std::io;
use std::path::Path;

use super::ReadAt;

/// A local file (its length is taken when opened).
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> io::Result<FileSource> {
        let file = File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        FileSource::new(file)
    }

    /// A source over an open file.
    pub fn new(file: File) -> io::Result<FileSource> {
        let md = file.metadata()?;
        let mut len = md.len();
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            // A block device's metadata says 0 bytes; its end says more.
            if md.file_type().is_block_device() {
                use std::io::Seek;
                len = (&file).seek(io::SeekFrom::End(0))?;
            }
        }
        Ok(FileSource { file, len })
    }
}

impl ReadAt for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = super::clamp(offset, buf.len(), self.len);
        let mut done = 0;
        while done < n {
            match self.file.read_at(&mut buf[done..n], offset + done as u64) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    #[cfg(windows)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::windows::fs::FileExt;
        let n = super::clamp(offset, buf.len(), self.len);
        self.file.seek_read(&mut buf[..n], offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::model;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn matches_model(data in prop::collection::vec(any::<u8>(), 0..5000), reads in model::reads(5000)) {
            let mut f = tempfile::tempfile().map_err(|e| TestCaseError::fail(e.to_string()))?;
            std::io::Write::write_all(&mut f, &data).map_err(|e| TestCaseError::fail(e.to_string()))?;
            model::check(&FileSource::new(f).map_err(|e| TestCaseError::fail(e.to_string()))?, &data, &reads)?;
        }
    }
}
