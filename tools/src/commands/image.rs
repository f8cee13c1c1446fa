//! `inspect --image FILE`, `cat --image FILE:PATH` and `ls --image
//! FILE[:PATH]`: a local disk image
//! read without a repository, for forensic use and to check what a disk
//! image backup will show. Extent and parent files are looked up next to
//! the image.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use vaultfs::vfs::{self, Entry, Vfs};
use vaultfs_formats::container::{Info, LocalDir};
use vaultfs_formats::fs::FsOptions;
use vaultfs_formats::image::{Image, type_name};
use vaultfs_formats::io::{FileSource, Source};
use vaultfs_formats::partition::Scheme;

use crate::exit::Outcome;
use crate::output;
use crate::plan::{Global, ImageEntry};

/// Opens a local disk image, extent and parent files next to it.
pub fn open(file: &Path) -> Result<Image> {
    let src: Source =
        Arc::new(FileSource::open(file).with_context(|| format!("opening {}", file.display()))?);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Image::open(src, &name, &LocalDir::of_file(file))
        .with_context(|| format!("{}: reading the disk image", file.display()))
}

/// The entry at `e.entry` in the contents of image `e.file`, laid out as
/// `mount --image` shows them.
pub fn entry(e: &ImageEntry, fs: &FsOptions) -> Result<Entry> {
    let image = open(&e.file)?;
    let time = std::fs::metadata(&e.file)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let root = vfs::image_dir(&image, time, fs);
    Vfs::resolve_from(&root, &e.entry).map_err(|err| {
        let mut msg = format!("{}: {err}", e.file.display());
        if err.kind() == vaultfs::ErrorKind::NotFound && !e.entry.contains('/') {
            let names: Vec<String> = match &root {
                Entry::Dir(d) => d.list().map_or_else(
                    |_| image.entries(),
                    |l| l.entries().iter().map(|(n, _)| n.clone()).collect(),
                ),
                _ => image.entries(),
            };
            msg.push_str(&format!(" (the image has: {})", names.join(", ")));
        }
        anyhow::anyhow!(msg)
    })
}

/// Streams one file of the image's contents to stdout.
pub fn cat(global: &Global, e: &ImageEntry) -> Result<Outcome> {
    let shown = format!("{}:{}", e.file.display(), e.entry);
    let src = entry(e, &global.fs)?
        .open(&e.entry)
        .with_context(|| shown.clone())?;
    crate::stream::to_stdout(&*src, &shown)?;
    Ok(Outcome::Ok)
}

/// Prints the container, its extents and the partition table.
pub fn inspect(global: &Global, file: &Path) -> Result<Outcome> {
    let image = open(file)?;
    if global.output.json {
        output::json(&inspect_json(file, &image))?;
    } else {
        output::line(inspect_text(file, &image))?;
    }
    Ok(Outcome::Ok)
}

fn container_text(out: &mut String, info: &Info, depth: usize) {
    let pad = "  ".repeat(depth);
    let variant = if info.variant.is_empty() {
        String::new()
    } else {
        format!(" {}", info.variant)
    };
    out.push_str(&format!(
        "{pad}container: {}{variant}, virtual size {} ({} bytes)",
        info.format,
        output::bytes(info.virtual_size),
        info.virtual_size
    ));
    if let Some(s) = info.logical_sector_size {
        out.push_str(&format!(", {s}-byte logical sectors"));
    }
    out.push('\n');
    if !info.extents.is_empty() {
        out.push_str(&format!(
            "{pad}  {:<8} {:>14} {:>14} {:>14}  file\n",
            "extent", "start", "length", "file offset"
        ));
        for x in &info.extents {
            out.push_str(&format!(
                "{pad}  {:<8} {:>14} {:>14} {:>14}  {}\n",
                x.kind,
                x.start,
                x.len,
                x.file_offset,
                x.file.as_deref().unwrap_or("-")
            ));
        }
    }
    for w in &info.warnings {
        out.push_str(&format!("{pad}warning: {w}\n"));
    }
    if let Some(name) = &info.parent_name {
        out.push_str(&format!("{pad}parent: {name}\n"));
    }
    if let Some(parent) = &info.parent {
        container_text(out, parent, depth + 1);
    }
}

fn inspect_text(file: &Path, image: &Image) -> String {
    let mut out = format!("image: {}\n", file.display());
    container_text(&mut out, &image.disk.info, 0);
    out.push('\n');
    out.push_str(image.partitions_txt().trim_end());
    out
}

fn container_json(info: &Info) -> Value {
    json!({
        "format": info.format,
        "variant": info.variant,
        "virtual_size": info.virtual_size,
        "logical_sector_size": info.logical_sector_size,
        "extents": info.extents.iter().map(|x| json!({
            "kind": x.kind,
            "file": x.file,
            "start": x.start,
            "length": x.len,
            "file_offset": x.file_offset,
        })).collect::<Vec<_>>(),
        "parent_name": info.parent_name,
        "parent": info.parent.as_deref().map(container_json),
        "warnings": info.warnings,
    })
}

fn inspect_json(file: &Path, image: &Image) -> Value {
    let table = match &image.table {
        Ok(t) => {
            let sector = t.sector_size;
            json!({
                "scheme": match t.scheme {
                    Scheme::Gpt => "gpt",
                    Scheme::Mbr => "mbr",
                    Scheme::None => "none",
                },
                "sector_size": sector,
                "warnings": t.warnings,
                "partitions": t.partitions.iter().map(|p| {
                    let volume = image.volumes.iter().find(|v| {
                        v.partition.as_ref().is_some_and(|q| q.index == p.index)
                    });
                    json!({
                        "index": p.index,
                        "start_sector": p.start / sector,
                        "length_sectors": p.len / sector,
                        "start": p.start,
                        "length": p.len,
                        "type": p.kind.to_string(),
                        "type_name": type_name(&p.kind),
                        "name": p.name,
                        "guid": p.guid.map(|g| g.to_string()),
                        "filesystem": volume.map(|v| match &v.fs {
                            Ok(Some(k)) => k.to_string(),
                            Ok(None) => "unknown".to_string(),
                            Err(e) => format!("error: {e}"),
                        }),
                        "entry": volume.map(|v| format!("{}.raw", v.name)),
                    })
                }).collect::<Vec<_>>(),
                "layout": image.layout().iter().map(|r| json!({
                    "slot": r.slot,
                    "start_sector": r.start / sector,
                    "length_sectors": r.len.div_ceil(sector),
                    "filesystem": r.fs,
                    "description": r.description,
                })).collect::<Vec<_>>(),
            })
        }
        Err(e) => json!({ "error": e.to_string() }),
    };
    json!({
        "image": file.display().to_string(),
        "container": container_json(&image.disk.info),
        "partition_table": table,
        "entries": image.entries(),
    })
}
