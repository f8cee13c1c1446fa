//! VMDK images. (Being written: until then the probe matches nothing.)

use std::io;

use super::{Container, ContainerError, Context, Disk, Probe};
use crate::io::Source;

/// The VMDK format.
pub struct Vmdk;

impl Container for Vmdk {
    fn name(&self) -> &'static str {
        "VMDK"
    }

    fn probe(&self, _: &Probe<'_>) -> io::Result<bool> {
        Ok(false)
    }

    fn open(&self, _: Source, _: &str, _: &Context<'_>) -> Result<Disk, ContainerError> {
        Err(ContainerError::Unsupported {
            format: "VMDK",
            detail: "not yet readable".into(),
        })
    }
}
