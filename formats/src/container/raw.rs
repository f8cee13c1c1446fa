//! A raw disk image: the bytes are the disk.

use std::io;

use super::{Container, ContainerError, Context, Disk, ExtentInfo, Info, Probe};
use crate::io::Source;

/// The raw format, which accepts anything.
pub struct Raw;

impl Container for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn probe(&self, _: &Probe<'_>) -> io::Result<bool> {
        Ok(true)
    }

    fn open(&self, src: Source, _: &str, _: &Context<'_>) -> Result<Disk, ContainerError> {
        let len = src.len();
        let mut info = Info::new("raw", "", len);
        info.extents.push(ExtentInfo {
            kind: "FLAT".into(),
            file: None,
            start: 0,
            len,
            file_offset: 0,
        });
        Ok(Disk { data: src, info })
    }
}
