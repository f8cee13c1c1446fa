//! VHD images. (Being written: until then the probe matches nothing.)

use std::io;

use super::{Container, ContainerError, Context, Disk, Probe};
use crate::io::Source;

/// The VHD format.
pub struct Vhd;

impl Container for Vhd {
    fn name(&self) -> &'static str {
        "VHD"
    }

    fn probe(&self, _: &Probe<'_>) -> io::Result<bool> {
        Ok(false)
    }

    fn open(&self, _: Source, _: &str, _: &Context<'_>) -> Result<Disk, ContainerError> {
        Err(ContainerError::Unsupported {
            format: "VHD",
            detail: "not yet readable".into(),
        })
    }
}
