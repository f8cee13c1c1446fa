//! The VMDK text descriptor: `key=value` lines (version, CID, parentCID,
//! createType, parentFileNameHint, `ddb.*`) and extent lines
//! (`RW 16384 SPARSE "disk.vmdk"`, `RW 4096 FLAT "disk-flat.vmdk" 0`),
//! as the VMware "Virtual Disk Format 1.1" specification, section "The
//! Descriptor File", describes them.
//!
//! The parser is strict about extent lines (a malformed one is an error
//! naming its line number) and lenient about everything else: unknown keys
//! and lines are ignored, as VMware and qemu ignore them.

use super::super::{ContainerError, corrupt};

/// The largest descriptor read, standalone or embedded.
pub(crate) const MAX_DESCRIPTOR: u64 = 1 << 20;

/// The most extent lines accepted (a 2 TB twoGbMaxExtent disk has ~1000).
pub(crate) const MAX_EXTENTS: usize = 8192;

/// The `parentCID` of a disk that has no parent.
pub(crate) const NO_PARENT: u32 = 0xffff_ffff;

/// Access of an extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// `RW`.
    ReadWrite,
    /// `RDONLY`.
    ReadOnly,
    /// `NOACCESS`: its content is not to be read.
    Hidden,
}

/// The type of an extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `FLAT`: the bytes, at an offset in a file.
    Flat,
    /// `SPARSE`: a hosted sparse (`KDMV`) file.
    Sparse,
    /// `ZERO`: zeros, no file.
    Zero,
    /// `VMFS`: an ESX flat file.
    Vmfs,
    /// `VMFSSPARSE`: an ESX `COWD` delta file.
    VmfsSparse,
    /// `VMFSRDM`: a raw device mapping (read like flat).
    VmfsRdm,
    /// `VMFSRAW`: a raw device (read like flat).
    VmfsRaw,
    /// `SESPARSE`: ESX space-efficient sparse.
    SeSparse,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "FLAT" => Kind::Flat,
            "SPARSE" => Kind::Sparse,
            "ZERO" => Kind::Zero,
            "VMFS" => Kind::Vmfs,
            "VMFSSPARSE" => Kind::VmfsSparse,
            "VMFSRDM" => Kind::VmfsRdm,
            "VMFSRAW" => Kind::VmfsRaw,
            "SESPARSE" => Kind::SeSparse,
            _ => return None,
        })
    }

    /// The name as written in a descriptor.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Flat => "FLAT",
            Kind::Sparse => "SPARSE",
            Kind::Zero => "ZERO",
            Kind::Vmfs => "VMFS",
            Kind::VmfsSparse => "VMFSSPARSE",
            Kind::VmfsRdm => "VMFSRDM",
            Kind::VmfsRaw => "VMFSRAW",
            Kind::SeSparse => "SESPARSE",
        }
    }
}

/// One extent line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExtentLine {
    /// Its line number (from 1).
    pub line: usize,
    /// Its byte offset in the descriptor.
    pub at: u64,
    /// Its access.
    pub access: Access,
    /// Its length in 512-byte sectors.
    pub sectors: u64,
    /// Its type.
    pub kind: Kind,
    /// The file it names (none for ZERO).
    pub file: Option<String>,
    /// Its offset in the file, in sectors (FLAT; 0 when absent).
    pub offset: u64,
}

/// The disk geometry of the `ddb.geometry.*` keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// `ddb.geometry.cylinders`.
    pub cylinders: Option<u64>,
    /// `ddb.geometry.heads`.
    pub heads: Option<u64>,
    /// `ddb.geometry.sectors`.
    pub sectors: Option<u64>,
}

/// A parsed descriptor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Descriptor {
    /// `version`.
    pub version: Option<u32>,
    /// `CID`: the content id, which a child names as its `parentCID`.
    pub cid: Option<u32>,
    /// `parentCID` ([`NO_PARENT`] for none).
    pub parent_cid: Option<u32>,
    /// `createType`.
    pub create_type: Option<String>,
    /// `parentFileNameHint`.
    pub parent_hint: Option<String>,
    /// The extent lines, in disk order.
    pub extents: Vec<ExtentLine>,
    /// `ddb.geometry.*`.
    pub geometry: Geometry,
}

impl Descriptor {
    /// The parent's name, if the disk is a delta disk.
    pub(crate) fn parent(&self) -> Option<&str> {
        match (self.parent_cid, &self.parent_hint) {
            (Some(cid), Some(hint)) if cid != NO_PARENT && !hint.is_empty() => Some(hint),
            _ => None,
        }
    }
}

/// True if `head` looks like a text descriptor: the `# Disk DescriptorFile`
/// line at the start (after a BOM and whitespace), or a `createType=` key
/// together with an extent line and no binary zeros.
pub(crate) fn looks_like(head: &[u8]) -> bool {
    let text = strip_bom(head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = text.get(start..).unwrap_or_default();
    const MARK: &[u8] = b"# disk descriptorfile";
    if text.len() >= MARK.len()
        && text
            .get(..MARK.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(MARK))
    {
        return true;
    }
    if text.contains(&0) {
        return false;
    }
    let s = String::from_utf8_lossy(text);
    let has_type = s.lines().any(|l| {
        l.split_once('=')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("createType"))
    });
    let has_extent = s.lines().any(|l| {
        let mut t = l.split_whitespace();
        matches!(t.next(), Some("RW" | "RDONLY" | "NOACCESS"))
            && t.next().is_some_and(|n| n.parse::<u64>().is_ok())
    });
    has_type && has_extent
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b)
}

/// Decodes descriptor bytes: a BOM dropped, cut at the first NUL (an
/// embedded descriptor is padded with zeros), invalid UTF-8 replaced.
pub(crate) fn text(bytes: &[u8]) -> String {
    let b = strip_bom(bytes);
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

/// Parses descriptor text that starts at byte `base` of its file (for the
/// offsets in errors).
pub(crate) fn parse(text: &str, base: u64) -> Result<Descriptor, ContainerError> {
    let mut d = Descriptor::default();
    let mut at = base;
    for (i, raw) in text.split('\n').enumerate() {
        let line_at = at;
        at = at.saturating_add(raw.len() as u64 + 1);
        let number = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            let shown: String = line.chars().take(80).collect();
            corrupt(
                "VMDK descriptor",
                line_at,
                format!("line {number}: {why}: {shown:?}"),
            )
        };
        let first = line.split_whitespace().next().unwrap_or_default();
        let access = match first {
            "RW" => Some(Access::ReadWrite),
            "RDONLY" => Some(Access::ReadOnly),
            "NOACCESS" => Some(Access::Hidden),
            _ => None,
        };
        if let Some(access) = access {
            if d.extents.len() >= MAX_EXTENTS {
                return Err(bad(&format!("more than {MAX_EXTENTS} extents")));
            }
            let e = extent_line(line, first.len(), access, number, line_at).map_err(&bad)?;
            d.extents.push(e);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue; // not a key: ignored, as VMware and qemu do
        };
        let key = key.trim();
        let value = unquote(value.trim());
        let hex = |v: &str| {
            u32::from_str_radix(v, 16).map_err(|_| bad("not a hexadecimal 32-bit content id"))
        };
        let num = |v: &str| v.parse::<u64>().ok();
        match key.to_ascii_lowercase().as_str() {
            "version" => {
                d.version = Some(value.parse().map_err(|_| bad("version is not a number"))?);
            }
            "cid" => d.cid = Some(hex(value)?),
            "parentcid" => d.parent_cid = Some(hex(value)?),
            "createtype" => d.create_type = Some(value.to_string()),
            "parentfilenamehint" => d.parent_hint = Some(value.to_string()),
            "ddb.geometry.cylinders" => d.geometry.cylinders = num(value),
            "ddb.geometry.heads" => d.geometry.heads = num(value),
            "ddb.geometry.sectors" => d.geometry.sectors = num(value),
            _ => {}
        }
    }
    Ok(d)
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`, the access word already read.
fn extent_line(
    line: &str,
    skip: usize,
    access: Access,
    number: usize,
    at: u64,
) -> Result<ExtentLine, &'static str> {
    let rest = line.get(skip..).unwrap_or_default().trim_start();
    let (sectors, rest) = token(rest);
    let sectors = sectors
        .parse::<u64>()
        .map_err(|_| "the extent size is not a number of sectors")?;
    let (kind, rest) = token(rest);
    let kind = Kind::parse(kind).ok_or("unknown extent type")?;
    let rest = rest.trim_start();
    let (file, rest) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"').ok_or("unterminated file name")?;
        (
            Some(quoted.get(..end).unwrap_or_default().to_string()),
            quoted.get(end + 1..).unwrap_or_default(),
        )
    } else if rest.is_empty() {
        (None, rest)
    } else {
        let (name, rest) = token(rest);
        (Some(name.to_string()), rest)
    };
    let (offset, rest) = token(rest.trim_start());
    let offset = if offset.is_empty() {
        0
    } else {
        offset
            .parse::<u64>()
            .map_err(|_| "the extent offset is not a number of sectors")?
    };
    if !rest.trim().is_empty() {
        return Err("unexpected text after the extent offset");
    }
    if kind != Kind::Zero && file.as_deref().is_none_or(str::is_empty) {
        return Err("the extent names no file");
    }
    Ok(ExtentLine {
        line: number,
        at,
        access,
        sectors,
        kind,
        file: if kind == Kind::Zero { None } else { file },
        offset,
    })
}

fn token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (
        s.get(..end).unwrap_or_default(),
        s.get(end..).unwrap_or_default(),
    )
}
