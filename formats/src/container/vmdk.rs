//! VMDK images, after VMware's "Virtual Disk Format 1.1" specification
//! (and, where the specification is silent, what qemu's `block/vmdk.c`
//! and VMware's tools do).
//!
//! Two kinds of file open as a VMDK disk:
//! - a hosted sparse file (`KDMV` magic: monolithicSparse, streamOptimized),
//!   whose embedded descriptor gives the create type and the parent;
//! - a text descriptor (monolithicFlat, twoGbMaxExtentFlat/Sparse, vmfs,
//!   custom and hand-written multi-extent forms) whose extent lines name
//!   FLAT/VMFS files (read at a sector offset), SPARSE files (hosted sparse
//!   extents, their own descriptors ignored) and ZERO ranges; the disk is
//!   the extents laid end to end.
//!
//! A delta disk (`parentFileNameHint` and a `parentCID` other than
//! `ffffffff`) reads its unallocated grains from its parent, opened through
//! [`Context::open_parent`] and detected by content. ESX `COWD` sparse
//! files and SESPARSE extents are recognised and refused as unsupported.

mod descriptor;
mod sparse;
pub mod write;

use std::io;
use std::sync::Arc;

use descriptor::{Access, Descriptor, Kind};
use sparse::Sparse;

use super::{Container, ContainerError, Context, Disk, ExtentInfo, Info, Probe, corrupt};
use crate::io::{Extents, ReadAt, Source, Target};

/// The magic of ESX vmfsSparse (`COWD`) files.
const COWD: &[u8; 4] = b"COWD";

/// The VMDK format.
pub struct Vmdk;

impl Container for Vmdk {
    fn name(&self) -> &'static str {
        "VMDK"
    }

    fn probe(&self, probe: &Probe<'_>) -> io::Result<bool> {
        let head = probe.head;
        Ok(head.starts_with(sparse::MAGIC)
            || head.starts_with(COWD)
            || descriptor::looks_like(head))
    }

    fn open(&self, src: Source, name_hint: &str, cx: &Context<'_>) -> Result<Disk, ContainerError> {
        let mut magic = [0u8; 4];
        if src.len() >= 4 {
            src.read_exact_at(0, &mut magic)?;
        }
        if &magic == sparse::MAGIC {
            open_sparse(src, name_hint, cx)
        } else if &magic == COWD {
            Err(cowd(name_hint))
        } else {
            open_descriptor(&*src, cx)
        }
    }
}

fn cowd(name: &str) -> ContainerError {
    ContainerError::Unsupported {
        format: "VMDK",
        detail: format!("{name:?} is an ESX vmfsSparse (COWD) file"),
    }
}

/// A monolithicSparse or streamOptimized file opened on its own.
fn open_sparse(src: Source, name: &str, cx: &Context<'_>) -> Result<Disk, ContainerError> {
    let sp = Sparse::open(src, name)?;
    let desc = match sp.descriptor_bytes()? {
        Some(bytes) => {
            let base = sp.header.descriptor_offset.saturating_mul(512);
            descriptor::parse(&descriptor::text(&bytes), base)?
        }
        None => Descriptor::default(),
    };
    let variant = desc.create_type.clone().unwrap_or_else(|| {
        if sp.header.compressed() {
            "streamOptimized".into()
        } else {
            "monolithicSparse".into()
        }
    });
    let len = sp.capacity_bytes();
    let mut info = Info::new("VMDK", variant, len);
    info.warnings.extend(sp.warnings.iter().cloned());
    info.extents.push(ExtentInfo {
        kind: "SPARSE".into(),
        file: None,
        start: 0,
        len,
        file_offset: 0,
    });
    let parent = parent(&desc, cx, &mut info)?;
    let data = sp.into_source(len, parent.map(|p| (p, 0)));
    Ok(Disk { data, info })
}

/// A text descriptor and the extents it names.
fn open_descriptor(src: &dyn ReadAt, cx: &Context<'_>) -> Result<Disk, ContainerError> {
    let len = src.len();
    if len > descriptor::MAX_DESCRIPTOR {
        return Err(corrupt(
            "VMDK descriptor",
            0,
            format!(
                "{len} bytes: larger than the {} a descriptor may have",
                descriptor::MAX_DESCRIPTOR
            ),
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    src.read_exact_at(0, &mut bytes)?;
    let desc = descriptor::parse(&descriptor::text(&bytes), 0)?;
    if desc.extents.is_empty() {
        return Err(corrupt("VMDK descriptor", 0, "no extent lines"));
    }
    let variant = desc.create_type.clone().unwrap_or_default();
    if variant.is_empty() {
        return Err(corrupt("VMDK descriptor", 0, "no createType"));
    }
    let mut info = Info::new("VMDK", variant, 0);
    let parent = parent(&desc, cx, &mut info)?;
    let mut pieces = Vec::with_capacity(desc.extents.len());
    let mut start = 0u64;
    for e in &desc.extents {
        let line = e.line;
        let bad = |detail: String| {
            corrupt(
                "VMDK descriptor",
                e.at,
                format!("line {line} ({} extent): {detail}", e.kind.name()),
            )
        };
        let bytes = e
            .sectors
            .checked_mul(512)
            .ok_or_else(|| bad(format!("{} sectors overflow", e.sectors)))?;
        let file = e.file.clone().unwrap_or_default();
        let mut file_offset = 0;
        let target = if e.access == Access::Hidden {
            info.warnings.push(format!(
                "line {line}: NOACCESS extent of {} sectors reads as zeros",
                e.sectors
            ));
            Target::Zero
        } else {
            match e.kind {
                Kind::Zero => Target::Zero,
                Kind::Flat | Kind::Vmfs | Kind::VmfsRdm | Kind::VmfsRaw => {
                    let f = cx.sibling("VMDK", &file)?;
                    let offset = e
                        .offset
                        .checked_mul(512)
                        .ok_or_else(|| bad(format!("offset {} sectors overflows", e.offset)))?;
                    if offset.checked_add(bytes).is_none_or(|end| end > f.len()) {
                        return Err(bad(format!(
                            "{file:?} needs bytes {offset:#x}..{:#x} but has {:#x}",
                            offset.saturating_add(bytes),
                            f.len()
                        )));
                    }
                    file_offset = offset;
                    Target::Source { src: f, offset }
                }
                Kind::Sparse | Kind::VmfsSparse => {
                    let f = cx.sibling("VMDK", &file)?;
                    let mut magic = [0u8; 4];
                    if f.len() >= 4 {
                        f.read_exact_at(0, &mut magic)?;
                    }
                    if &magic == COWD {
                        return Err(cowd(&file));
                    }
                    if &magic != sparse::MAGIC {
                        return Err(bad(format!("{file:?} is not a hosted sparse (KDMV) file")));
                    }
                    let sp = Sparse::open(f, &file)?;
                    if sp.capacity_bytes() < bytes {
                        return Err(bad(format!(
                            "{file:?} holds {} sectors, fewer than the extent's {}",
                            sp.capacity_bytes() / 512,
                            e.sectors
                        )));
                    }
                    info.warnings.extend(sp.warnings.iter().cloned());
                    let data = sp.into_source(bytes, parent.clone().map(|p| (p, start)));
                    Target::Source {
                        src: data,
                        offset: 0,
                    }
                }
                Kind::SeSparse => {
                    return Err(ContainerError::Unsupported {
                        format: "VMDK",
                        detail: format!("line {line}: SESPARSE extent {file:?}"),
                    });
                }
            }
        };
        info.extents.push(ExtentInfo {
            kind: e.kind.name().into(),
            file: e.file.clone(),
            start,
            len: bytes,
            file_offset,
        });
        pieces.push((bytes, target));
        start = start
            .checked_add(bytes)
            .ok_or_else(|| bad("the extents add up to more than 2^64 bytes".into()))?;
    }
    let data = Extents::new(pieces).map_err(|e| corrupt("VMDK descriptor", 0, e.to_string()))?;
    info.virtual_size = data.len();
    Ok(Disk {
        data: Arc::new(data),
        info,
    })
}

/// Opens the parent of a delta disk, if `desc` names one, and records it.
fn parent(
    desc: &Descriptor,
    cx: &Context<'_>,
    info: &mut Info,
) -> Result<Option<Source>, ContainerError> {
    let Some(hint) = desc.parent() else {
        if let (Some(hint), Some(descriptor::NO_PARENT)) = (&desc.parent_hint, desc.parent_cid) {
            info.warnings.push(format!(
                "names parent {hint:?} but its parentCID is ffffffff: the parent is not used"
            ));
        } else if desc.parent_cid.is_some_and(|c| c != descriptor::NO_PARENT) {
            info.warnings.push(
                "has a parentCID but no parentFileNameHint: unallocated grains read as zeros"
                    .into(),
            );
        }
        return Ok(None);
    };
    let disk = cx.open_parent("VMDK", hint)?;
    let want = desc.parent_cid.unwrap_or(descriptor::NO_PARENT);
    match parent_cid(cx, hint, &disk.info) {
        Some(cid) if cid == want => {}
        Some(cid) => info.warnings.push(format!(
            "parent {hint:?} has CID {cid:08x}, not the parentCID {want:08x}: it changed after this delta disk was made"
        )),
        None => info.warnings.push(format!(
            "parent {hint:?} has no VMDK content id (CID) to check against parentCID {want:08x}"
        )),
    }
    info.parent_name = Some(hint.to_string());
    info.parent = Some(Box::new(disk.info));
    Ok(Some(disk.data))
}

/// The CID of a parent (its descriptor, standalone or embedded).
fn parent_cid(cx: &Context<'_>, name: &str, parent: &Info) -> Option<u32> {
    if parent.format != "VMDK" {
        return None;
    }
    let src = cx.sibling("VMDK", name).ok()?;
    let mut magic = [0u8; 4];
    src.read_exact_at(0, &mut magic).ok()?;
    let bytes = if &magic == sparse::MAGIC {
        Sparse::open(src, name).ok()?.descriptor_bytes().ok()??
    } else {
        let len = src.len().min(descriptor::MAX_DESCRIPTOR) as usize;
        let mut b = vec![0u8; len];
        src.read_exact_at(0, &mut b).ok()?;
        b
    };
    descriptor::parse(&descriptor::text(&bytes), 0).ok()?.cid
}

#[cfg(test)]
mod tests;
