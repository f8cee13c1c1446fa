//! A disk image opened all the way down: its container, its partition table
//! and the filesystem signature of each volume, with the names the
//! `<image>.contents/` tree gives them (`disk.raw`, `pN.raw`,
//! `partitions.txt`; `fs.raw` for a disk without a partition table).
//!
//! Everything above the container is best effort: a damaged partition
//! table leaves `disk.raw` readable and the damage recorded, as `mmls`
//! reports a table it cannot read without refusing the disk.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;

use crate::container::{self, ContainerError, Disk, Siblings};
use crate::fs::{FsKind, detect};
use crate::io::{Slice, Source};
use crate::partition::{self, Partition, PartitionError, PartitionType, Scheme, Table};

/// One volume: a partition, or the whole disk when there is no table.
pub struct Volume {
    /// Its name in the tree, without extension: "p1", "p5", or "fs".
    pub name: String,
    /// The partition (`None`: the whole disk).
    pub partition: Option<Partition>,
    /// The filesystem found on it; an error if its head could not be read.
    pub fs: Result<Option<FsKind>, String>,
    /// Its bytes.
    pub data: Source,
}

/// An opened disk image.
pub struct Image {
    /// The container and the virtual disk.
    pub disk: Disk,
    /// The partition table, or why it could not be read.
    pub table: Result<Table, PartitionError>,
    /// Data volumes in table order (an MBR extended container is not one).
    pub volumes: Vec<Volume>,
}

/// True for the MBR types of an extended partition: a container of EBRs,
/// not a volume.
pub fn is_extended(kind: &PartitionType) -> bool {
    matches!(kind, PartitionType::Mbr(0x05 | 0x0F | 0x85))
}

/// How many bytes of a file [`is_disk_image`] reads: enough for a GPT
/// header at 4096 and the filesystem signatures.
pub const PROBE_LEN: usize = 8192;

/// Does `src` hold a disk image: a container other than raw (VMDK, VHD,
/// VHDX), or raw bytes starting with a partition table or a known
/// filesystem? Reads the first [`PROBE_LEN`] bytes (and, for a file named
/// like a fixed VHD, its last 512).
pub fn is_disk_image(src: &dyn crate::io::ReadAt, name_hint: &str) -> io::Result<bool> {
    let mut head = vec![0u8; crate::io::clamp(0, PROBE_LEN, src.len())];
    src.read_exact_at(0, &mut head)?;
    let probe = container::Probe {
        head: &head[..head.len().min(container::HEAD_LEN)],
        src,
        name_hint,
    };
    for c in container::CONTAINERS {
        if c.name() != "raw" && c.probe(&probe)? {
            return Ok(true);
        }
    }
    Ok(raw_looks_like_disk(&head))
}

/// A partition table or a filesystem at the start of raw bytes.
fn raw_looks_like_disk(head: &[u8]) -> bool {
    let gpt = [512usize, 4096]
        .iter()
        .any(|&at| head.get(at..at + 8) == Some(b"EFI PART".as_slice()));
    let mbr = head.get(510..512) == Some(&[0x55, 0xAA]) && partition::looks_like_mbr(head);
    gpt || mbr || crate::fs::detect::detect_head(head).is_some()
}

impl Image {
    /// Opens `src` (detecting its container) down to its volumes.
    pub fn open(
        src: Source,
        name_hint: &str,
        siblings: &dyn Siblings,
    ) -> Result<Image, ContainerError> {
        Ok(Image::from_disk(container::open(src, name_hint, siblings)?))
    }

    /// Reads the partition table and volumes of an opened disk.
    pub fn from_disk(disk: Disk) -> Image {
        let table = partition::read_table_detect(&*disk.data, disk.info.logical_sector_size);
        let mut volumes = Vec::new();
        match &table {
            Ok(t) if t.scheme != Scheme::None => {
                for p in t.partitions.iter().filter(|p| !is_extended(&p.kind)) {
                    let vol = Slice::new(disk.data.clone(), p.start, p.len).map(|s| {
                        let s: Source = Arc::new(s);
                        s
                    });
                    let (data, fs) = match vol {
                        Ok(data) => {
                            let fs = detect(&*data).map_err(|e| e.to_string());
                            (data, fs)
                        }
                        Err(e) => (
                            Arc::new(crate::io::MemSource::new(Vec::new())) as Source,
                            Err(format!("partition {} lies outside the disk: {e}", p.index)),
                        ),
                    };
                    volumes.push(Volume {
                        name: format!("p{}", p.index),
                        partition: Some(p.clone()),
                        fs,
                        data,
                    });
                }
            }
            Ok(_) => volumes.push(Volume {
                name: "fs".into(),
                partition: None,
                fs: detect(&*disk.data).map_err(|e| e.to_string()),
                data: disk.data.clone(),
            }),
            Err(_) => {}
        }
        Image {
            disk,
            table,
            volumes,
        }
    }

    /// The names of the files in the image's `.contents/` directory.
    pub fn entries(&self) -> Vec<String> {
        let mut names = vec!["disk.raw".to_string(), "partitions.txt".to_string()];
        names.extend(self.volumes.iter().map(|v| format!("{}.raw", v.name)));
        names
    }

    /// Opens a file of the `.contents/` directory by name: `disk.raw`,
    /// `pN.raw`, `fs.raw`, `partitions.txt`.
    pub fn open_entry(&self, name: &str) -> io::Result<Source> {
        if name == "disk.raw" {
            return Ok(self.disk.data.clone());
        }
        if name == "partitions.txt" {
            let text = self.partitions_txt();
            return Ok(Arc::new(crate::io::MemSource::new(text.into_bytes())));
        }
        let found = name
            .strip_suffix(".raw")
            .and_then(|stem| self.volumes.iter().find(|v| v.name == stem));
        match found {
            Some(v) => match &v.fs {
                Err(e) if v.data.is_empty() => {
                    Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()))
                }
                _ => Ok(v.data.clone()),
            },
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{name:?} is not in the image (it has: {})",
                    self.entries().join(", ")
                ),
            )),
        }
    }

    /// The partition table as text, like The Sleuth Kit's `mmls`: every
    /// sector of the disk accounted for (tables, partitions, unallocated
    /// gaps), with the detected filesystem of each volume.
    pub fn partitions_txt(&self) -> String {
        let mut out = String::new();
        let size = self.disk.data.len();
        let table = match &self.table {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(out, "Partition table unreadable: {e}");
                return out;
            }
        };
        let sector = table.sector_size;
        let _ = writeln!(
            out,
            "{} partition table, {sector}-byte sectors, disk of {} sectors ({size} bytes)",
            match table.scheme {
                Scheme::Gpt => "GUID (GPT)",
                Scheme::Mbr => "DOS (MBR)",
                Scheme::None => "No",
            },
            size / sector
        );
        for w in &table.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        let _ = writeln!(
            out,
            "{:<6} {:>12} {:>12} {:>12}  {:<8} Description",
            "Slot", "Start", "End", "Length", "FS"
        );
        for row in self.layout() {
            let _ = writeln!(
                out,
                "{:<6} {:>12} {:>12} {:>12}  {:<8} {}",
                row.slot,
                row.start / sector,
                (row.start + row.len).div_ceil(sector).saturating_sub(1),
                row.len.div_ceil(sector),
                row.fs,
                row.description
            );
        }
        out
    }

    /// The rows of [`Image::partitions_txt`]: partitions in disk order with
    /// the table areas and unallocated gaps between them, in bytes.
    pub fn layout(&self) -> Vec<LayoutRow> {
        let size = self.disk.data.len();
        let Ok(table) = &self.table else {
            return Vec::new();
        };
        let sector = table.sector_size;
        let mut parts: Vec<&Partition> = table.partitions.iter().collect();
        parts.sort_by_key(|p| (p.start, is_extended(&p.kind)));
        let mut rows = Vec::new();
        match table.scheme {
            Scheme::Gpt => {
                rows.push(LayoutRow::meta(0, sector, "Protective MBR"));
                let first = table.usable.map_or(2 * sector, |u| u.0);
                rows.push(LayoutRow::meta(
                    sector,
                    first.saturating_sub(sector),
                    "GPT header and entries",
                ));
            }
            Scheme::Mbr => rows.push(LayoutRow::meta(0, sector, "MBR")),
            Scheme::None => {}
        }
        let mut covered = rows.iter().map(|r| r.start + r.len).max().unwrap_or(0);
        for p in parts {
            if is_extended(&p.kind) {
                rows.push(LayoutRow {
                    slot: "meta".into(),
                    start: p.start,
                    len: p.len,
                    fs: String::new(),
                    description: format!("Extended partition ({})", type_name(&p.kind)),
                });
                continue;
            }
            if p.start > covered {
                rows.push(LayoutRow::gap(covered, p.start - covered));
            }
            let fs = self
                .volumes
                .iter()
                .find(|v| v.partition.as_ref().is_some_and(|q| q.index == p.index))
                .map(|v| match &v.fs {
                    Ok(Some(k)) => k.to_string(),
                    Ok(None) => "unknown".into(),
                    Err(_) => "error".into(),
                })
                .unwrap_or_default();
            let mut description = type_name(&p.kind);
            if !p.name.is_empty() {
                description = format!("{description} \"{}\"", p.name);
            }
            rows.push(LayoutRow {
                slot: format!("p{}", p.index),
                start: p.start,
                len: p.len,
                fs,
                description,
            });
            covered = covered.max(p.start.saturating_add(p.len));
        }
        if let (Scheme::Gpt, Some((_, backup))) = (table.scheme, table.usable) {
            // The backup entry array and header close a GPT disk.
            if backup > covered {
                rows.push(LayoutRow::gap(covered, backup - covered));
                covered = backup;
            }
            if size > covered {
                rows.push(LayoutRow::meta(
                    covered,
                    size - covered,
                    "GPT backup entries and header",
                ));
                covered = size;
            }
        }
        if size > covered {
            rows.push(LayoutRow::gap(covered, size - covered));
        }
        rows
    }
}

/// One row of an `mmls`-like listing, in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutRow {
    /// "p1", "meta" or "-" (unallocated).
    pub slot: String,
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Detected filesystem ("" for tables and gaps).
    pub fs: String,
    /// Type name and partition name.
    pub description: String,
}

impl LayoutRow {
    fn meta(start: u64, len: u64, what: &str) -> LayoutRow {
        LayoutRow {
            slot: "meta".into(),
            start,
            len,
            fs: String::new(),
            description: what.into(),
        }
    }

    fn gap(start: u64, len: u64) -> LayoutRow {
        LayoutRow {
            slot: "-".into(),
            start,
            len,
            fs: String::new(),
            description: "Unallocated".into(),
        }
    }
}

/// A partition type's common name with its id, as `fdisk` names them.
pub fn type_name(kind: &PartitionType) -> String {
    match kind {
        PartitionType::Mbr(t) => {
            let name = match t {
                0x01 => "FAT12",
                0x04 | 0x06 | 0x0E => "FAT16",
                0x05 => "Extended",
                0x07 => "HPFS/NTFS/exFAT",
                0x0B | 0x0C => "W95 FAT32",
                0x0F => "W95 Extended (LBA)",
                0x27 => "Hidden NTFS WinRE",
                0x42 => "SFS (dynamic disk)",
                0x82 => "Linux swap",
                0x83 => "Linux",
                0x85 => "Linux extended",
                0x8E => "Linux LVM",
                0xA5 => "FreeBSD",
                0xAF => "HFS / HFS+",
                0xEE => "GPT protective",
                0xEF => "EFI (FAT-12/16/32)",
                0xFD => "Linux raid autodetect",
                _ => "Unknown",
            };
            format!("{name} (0x{t:02x})")
        }
        PartitionType::Gpt(g) => {
            let id = g.to_string();
            let name = match id.as_str() {
                "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI System",
                "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
                "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" => "Microsoft reserved",
                "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft basic data",
                "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC" => "Windows recovery environment",
                "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3" => "Microsoft LDM metadata",
                "AF9B60A0-1431-4F62-BC68-3311714A69AD" => "Microsoft LDM data",
                "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
                "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
                "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
                "A19D880F-05FC-4D3B-A006-743F0F84911E" => "Linux RAID",
                "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "Linux root (x86-64)",
                "933AC7E1-2EB4-4F13-B844-0E14E2AEF915" => "Linux home",
                "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "Linux extended boot",
                "48465300-0000-11AA-AA11-00306543ECAC" => "Apple HFS/HFS+",
                "7C3457EF-0000-11AA-AA11-00306543ECAC" => "Apple APFS",
                "516E7CB6-6ECF-11D6-8FF8-00022D09712B" => "FreeBSD UFS",
                "6A898CC3-1DD2-11B2-99A6-080020736631" => "ZFS / Solaris /usr",
                _ => "Unknown",
            };
            format!("{name} ({id})")
        }
    }
}

#[cfg(test)]
mod tests;
