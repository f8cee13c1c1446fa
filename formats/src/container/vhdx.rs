//! VHDX images. (Being written: until then the probe matches nothing.)

use std::io;

use super::{Container, ContainerError, Context, Disk, Probe};
use crate::io::Source;

/// The VHDX format.
pub struct Vhdx;

impl Container for Vhdx {
    fn name(&self) -> &'static str {
        "VHDX"
    }

    fn probe(&self, _: &Probe<'_>) -> io::Result<bool> {
        Ok(false)
    }

    fn open(&self, _: Source, _: &str, _: &Context<'_>) -> Result<Disk, ContainerError> {
        Err(ContainerError::Unsupported {
            format: "VHDX",
            detail: "not yet readable".into(),
        })
    }
}
