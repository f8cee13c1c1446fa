//! Disk-image containers: VMDK, VHD, VHDX and raw, each detected by content
//! and opened over any [`Source`] into the virtual disk it holds.
//!
//! Files a container names (VMDK extents, the parent of a delta or
//! differencing disk) are opened through [`Siblings`], never by path, so the
//! same code reads an image on local disk and an image inside a vault
//! snapshot. Probes form an ordered list with raw last: every source opens
//! as something, and a probe that matched but then fails to open is an
//! error, never a silent fallback to raw.

pub mod raw;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::io::{FileSource, ReadAt, Source, clamp};

/// How many bytes of the head a probe is given.
pub const HEAD_LEN: usize = 4096;

/// The longest chain of parents followed (delta and differencing disks);
/// a longer chain is taken for a loop.
pub const MAX_PARENT_DEPTH: u32 = 32;

/// A container that could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The image could not be read.
    #[error("reading the image: {0}")]
    Io(#[from] io::Error),
    /// A structure is damaged or impossible.
    #[error("{structure} at byte {offset:#x}: {detail}")]
    Corrupt {
        /// The structure, e.g. "VMDK grain table".
        structure: &'static str,
        /// Its byte offset in the file that holds it.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A valid image using a feature this reader does not support.
    #[error("unsupported {format} image: {detail}")]
    Unsupported {
        /// "VMDK", "VHD", "VHDX".
        format: &'static str,
        /// What is not supported.
        detail: String,
    },
    /// A file the image names (an extent, a parent) could not be opened.
    #[error("{format} image names {name:?}, which cannot be opened: {source}")]
    Sibling {
        /// "VMDK", "VHD", "VHDX".
        format: &'static str,
        /// The name as the image gives it.
        name: String,
        /// Why it could not be opened.
        source: io::Error,
    },
    /// The image has metadata changes in a log that were never applied: its
    /// content as read would be stale.
    #[error(
        "{format} image has a log that needs replay ({detail}); its content as read may be stale"
    )]
    LogNeedsReplay {
        /// "VHDX".
        format: &'static str,
        /// Which log, which sequence.
        detail: String,
    },
}

/// Shorthand for [`ContainerError::Corrupt`].
pub(crate) fn corrupt(
    structure: &'static str,
    offset: u64,
    detail: impl Into<String>,
) -> ContainerError {
    ContainerError::Corrupt {
        structure,
        offset,
        detail: detail.into(),
    }
}

impl From<ContainerError> for io::Error {
    fn from(e: ContainerError) -> io::Error {
        match e {
            ContainerError::Io(e) => e,
            ContainerError::Sibling { ref source, .. }
                if source.kind() == io::ErrorKind::NotFound =>
            {
                io::Error::new(io::ErrorKind::NotFound, e.to_string())
            }
            ContainerError::Unsupported { .. } => io::Error::new(io::ErrorKind::Unsupported, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Opens the files an image names: extent files and parents.
pub trait Siblings: Send + Sync {
    /// Opens `name` as the image writes it (relative to the image's
    /// directory, or an absolute path of the machine that made it; Windows
    /// separators possible). A missing file is `NotFound`.
    fn open(&self, name: &str) -> io::Result<Source>;
}

/// An image that names no files, or whose siblings are not available.
pub struct NoSiblings;

impl Siblings for NoSiblings {
    fn open(&self, name: &str) -> io::Result<Source> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name:?}: no sibling files are available"),
        ))
    }
}

/// The name's path components, with `\` as a separator too; empty, `.`
/// and drive-letter components dropped.
pub fn name_components(name: &str) -> Vec<&str> {
    name.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != "." && !(c.len() == 2 && c.ends_with(':')))
        .collect()
}

/// Files in a local directory, for images on local disk. A name is looked
/// up relative to the directory; a name with directories that do not exist
/// there (an absolute path of another machine) falls back to its last
/// component, as qemu and VirtualBox do with a parent hint.
pub struct LocalDir {
    dir: PathBuf,
}

impl LocalDir {
    /// Siblings of files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> LocalDir {
        LocalDir { dir: dir.into() }
    }

    /// Siblings of the file at `path`.
    pub fn of_file(path: &Path) -> LocalDir {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        LocalDir::new(dir)
    }
}

impl Siblings for LocalDir {
    fn open(&self, name: &str) -> io::Result<Source> {
        let parts = name_components(name);
        let Some(last) = parts.last() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name:?} is not a file name"),
            ));
        };
        if parts.contains(&"..") && !name.starts_with(['/', '\\']) {
            // A relative name going up: honour it as written.
            let p = self.dir.join(parts.join("/"));
            return Ok(Arc::new(FileSource::open(&p)?));
        }
        let relative = self.dir.join(parts.join("/"));
        match FileSource::open(&relative) {
            Ok(f) => Ok(Arc::new(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && parts.len() > 1 => {
                Ok(Arc::new(FileSource::open(&self.dir.join(last))?))
            }
            Err(e) => Err(e),
        }
    }
}

/// Sibling files held in memory, by name (tests, fuzzing).
#[derive(Default, Clone)]
pub struct MemSiblings(pub HashMap<String, Source>);

impl Siblings for MemSiblings {
    fn open(&self, name: &str) -> io::Result<Source> {
        let parts = name_components(name);
        self.0
            .get(name)
            .or_else(|| parts.last().and_then(|n| self.0.get(*n)))
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name:?} not found")))
    }
}

/// One piece of a container, for `inspect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtentInfo {
    /// What kind: "FLAT", "SPARSE", "ZERO", "VMFS", "dynamic", ...
    pub kind: String,
    /// The file it lives in (`None`: the image file itself, or none).
    pub file: Option<String>,
    /// Its first byte on the virtual disk.
    pub start: u64,
    /// Its length on the virtual disk.
    pub len: u64,
    /// Where it starts in its file.
    pub file_offset: u64,
}

/// What an opened container is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// "raw", "VMDK", "VHD", "VHDX".
    pub format: &'static str,
    /// The subformat: "monolithicSparse", "streamOptimized", "dynamic",
    /// "differencing", "fixed", ... (empty for raw).
    pub variant: String,
    /// The virtual disk's size in bytes.
    pub virtual_size: u64,
    /// The logical sector size the image declares, if it does.
    pub logical_sector_size: Option<u32>,
    /// The pieces, in disk order.
    pub extents: Vec<ExtentInfo>,
    /// The parent disk of a delta or differencing image.
    pub parent: Option<Box<Info>>,
    /// The parent's name as the image gives it.
    pub parent_name: Option<String>,
    /// Recoveries and oddities met while opening.
    pub warnings: Vec<String>,
}

impl Info {
    /// Info of a container with no extents, parent or warnings yet.
    pub fn new(format: &'static str, variant: impl Into<String>, virtual_size: u64) -> Info {
        Info {
            format,
            variant: variant.into(),
            virtual_size,
            logical_sector_size: None,
            extents: Vec::new(),
            parent: None,
            parent_name: None,
            warnings: Vec::new(),
        }
    }
}

/// An opened container: the virtual disk's bytes and what it is.
pub struct Disk {
    /// The virtual disk, `info.virtual_size` bytes long.
    pub data: Source,
    /// What the container is.
    pub info: Info,
}

/// What a probe is given.
pub struct Probe<'a> {
    /// The first [`HEAD_LEN`] bytes (fewer if the source is shorter).
    pub head: &'a [u8],
    /// The whole source, for a probe that must look at the tail (a fixed
    /// VHD's footer). Such a probe reads it only when `name_hint` suggests
    /// its format, so probing a large file in a vault stays one read.
    pub src: &'a dyn ReadAt,
    /// The file's name, if known ("" otherwise).
    pub name_hint: &'a str,
}

/// Where a container is opened from: its siblings and how deep in a parent
/// chain this open is.
pub struct Context<'a> {
    /// Sibling files.
    pub siblings: &'a dyn Siblings,
    depth: u32,
}

impl<'a> Context<'a> {
    /// A top-level open.
    pub fn new(siblings: &'a dyn Siblings) -> Context<'a> {
        Context { siblings, depth: 0 }
    }

    /// Opens the sibling `name` for `format`, mapping failure to
    /// [`ContainerError::Sibling`].
    pub fn sibling(&self, format: &'static str, name: &str) -> Result<Source, ContainerError> {
        self.siblings
            .open(name)
            .map_err(|source| ContainerError::Sibling {
                format,
                name: name.to_string(),
                source,
            })
    }

    /// Opens the parent disk `name` of a `format` image, detecting its
    /// container by content. Chains deeper than [`MAX_PARENT_DEPTH`] are an
    /// error (a parent that names its child would loop).
    pub fn open_parent(&self, format: &'static str, name: &str) -> Result<Disk, ContainerError> {
        if self.depth + 1 >= MAX_PARENT_DEPTH {
            return Err(corrupt(
                "parent chain",
                0,
                format!(
                    "more than {MAX_PARENT_DEPTH} levels at {name:?} (does a parent name its child?)"
                ),
            ));
        }
        let src = self.sibling(format, name)?;
        let child = Context {
            siblings: self.siblings,
            depth: self.depth + 1,
        };
        open_with(src, name, &child)
    }
}

/// A container format.
pub trait Container: Send + Sync {
    /// "raw", "VMDK", "VHD", "VHDX".
    fn name(&self) -> &'static str;

    /// True if the source looks like this format. A probe is cheap and
    /// does not validate: `open` does.
    fn probe(&self, probe: &Probe<'_>) -> io::Result<bool>;

    /// Opens the source as this format.
    fn open(&self, src: Source, name_hint: &str, cx: &Context<'_>) -> Result<Disk, ContainerError>;
}

/// The probes in order; raw, which accepts anything, is last.
pub static CONTAINERS: &[&dyn Container] = &[&vhdx::Vhdx, &vmdk::Vmdk, &vhd::Vhd, &raw::Raw];

/// Names the container format of `src` (raw if nothing else matches).
pub fn detect(src: &dyn ReadAt, name_hint: &str) -> io::Result<&'static dyn Container> {
    let mut head = vec![0u8; clamp(0, HEAD_LEN, src.len())];
    src.read_exact_at(0, &mut head)?;
    let probe = Probe {
        head: &head,
        src,
        name_hint,
    };
    for c in CONTAINERS {
        if c.probe(&probe)? {
            return Ok(*c);
        }
    }
    Ok(&raw::Raw)
}

/// Detects the container of `src` and opens it.
pub fn open(src: Source, name_hint: &str, siblings: &dyn Siblings) -> Result<Disk, ContainerError> {
    open_with(src, name_hint, &Context::new(siblings))
}

fn open_with(src: Source, name_hint: &str, cx: &Context<'_>) -> Result<Disk, ContainerError> {
    let container = detect(&*src, name_hint)?;
    container.open(src, name_hint, cx)
}

#[cfg(test)]
mod tests;
