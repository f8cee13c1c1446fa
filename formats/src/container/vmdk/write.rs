//! Writing VMDK files for a disk backup: a text descriptor whose extent
//! lines lay FLAT files and SPARSE files end to end, and a hosted sparse
//! (`KDMV`) extent with no grain allocated, which every reader takes as
//! zeros.
//!
//! Why not `ZERO` extent lines for ranges that read as zeros: qemu
//! (`block/vmdk.c`, 10.0) skips them when parsing a descriptor, so every
//! later extent moves up and the disk it shows is corrupt. An empty sparse
//! extent costs a header, two grain directories and two sets of grain
//! tables full of zeros (8 KiB per GiB), laid out as `qemu-img create -f
//! vmdk` lays them out, so qemu, VirtualBox and VMware read it alike.
//!
//! The sparse file is produced byte by byte on demand ([`EmptySparse`]
//! implements [`ReadAt`]), so a large extent never sits in memory.

use std::fmt::Write as _;
use std::io;

use crate::io::ReadAt;

/// Sectors per grain in the sparse extents written (64 KiB, qemu's and
/// VMware's default).
pub const GRAIN_SECTORS: u64 = 128;
/// Grain table entries per grain table (VMware's fixed value).
const GTES_PER_GT: u64 = 512;
/// Sectors one grain table covers.
const GT_COVERS: u64 = GRAIN_SECTORS * GTES_PER_GT;
/// Sectors one grain table takes (512 four-byte entries).
const GT_SECTORS: u64 = GTES_PER_GT * 4 / 512;

/// A hosted sparse extent of `capacity` sectors with no grain allocated.
#[derive(Clone, Debug)]
pub struct EmptySparse {
    capacity: u64,
    gd_entries: u64,
    gd_sectors: u64,
    rgd_offset: u64,
    gd_offset: u64,
    overhead: u64,
}

impl EmptySparse {
    /// The extent for `capacity` sectors (512 bytes each), which should be
    /// a multiple of [`GRAIN_SECTORS`]: qemu rounds a sparse extent up to
    /// whole grains and reads the extents after a shorter one shifted.
    pub fn new(capacity: u64) -> EmptySparse {
        let gd_entries = capacity.div_ceil(GT_COVERS);
        let gd_sectors = (gd_entries * 4).div_ceil(512).max(1);
        // Header in sector 0, then the redundant directory and its tables,
        // then the primary directory and its tables, as qemu writes them.
        let rgd_offset = 1;
        let gd_offset = rgd_offset + gd_sectors + gd_entries * GT_SECTORS;
        let end = gd_offset + gd_sectors + gd_entries * GT_SECTORS;
        EmptySparse {
            capacity,
            gd_entries,
            gd_sectors,
            rgd_offset,
            gd_offset,
            overhead: end.div_ceil(GRAIN_SECTORS) * GRAIN_SECTORS,
        }
    }

    /// The header sector.
    fn header(&self) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[0..4].copy_from_slice(b"KDMV");
        h[4..8].copy_from_slice(&1u32.to_le_bytes()); // version
        // Flags: valid newline-detection bytes, redundant grain table.
        h[8..12].copy_from_slice(&3u32.to_le_bytes());
        h[12..20].copy_from_slice(&self.capacity.to_le_bytes());
        h[20..28].copy_from_slice(&GRAIN_SECTORS.to_le_bytes());
        // No embedded descriptor (offset and size 0): the disk's descriptor
        // names this file.
        h[44..48].copy_from_slice(&(GTES_PER_GT as u32).to_le_bytes());
        h[48..56].copy_from_slice(&self.rgd_offset.to_le_bytes());
        h[56..64].copy_from_slice(&self.gd_offset.to_le_bytes());
        h[64..72].copy_from_slice(&self.overhead.to_le_bytes());
        h[72] = 0; // clean shutdown
        h[73..77].copy_from_slice(b"\n \r\n");
        h
    }

    /// The byte at `pos` of a grain directory starting at sector `dir`:
    /// entry `i` points at the `i`-th table, right after the directory.
    fn directory_byte(&self, dir: u64, pos: u64) -> u8 {
        let rel = pos - dir * 512;
        let entry = rel / 4;
        if entry >= self.gd_entries {
            return 0;
        }
        let table = dir + self.gd_sectors + entry * GT_SECTORS;
        // Sector numbers of tables fit 32 bits for any capacity whose
        // tables do (checked in `read_at`).
        (table as u32).to_le_bytes()[(rel % 4) as usize]
    }
}

impl ReadAt for EmptySparse {
    fn len(&self) -> u64 {
        self.overhead * 512
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if self.overhead > u64::from(u32::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a sparse extent of {} sectors is too large for 32-bit grain tables",
                    self.capacity
                ),
            ));
        }
        let n = crate::io::clamp(offset, buf.len(), self.len());
        let buf = &mut buf[..n];
        // Zeros, except the header and the two directories.
        buf.fill(0);
        let end = offset + n as u64;
        let header = self.header();
        for pos in offset..end.min(512) {
            buf[(pos - offset) as usize] = header[pos as usize];
        }
        for dir in [self.rgd_offset, self.gd_offset] {
            let (start, stop) = (dir * 512, (dir + self.gd_sectors) * 512);
            for pos in offset.max(start)..end.min(stop) {
                buf[(pos - offset) as usize] = self.directory_byte(dir, pos);
            }
        }
        Ok(n)
    }
}

/// What one extent line of a descriptor refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtentKind {
    /// `FLAT "file" 0`: the bytes of a raw file.
    Flat,
    /// `SPARSE "file"`: a hosted sparse file (here: an [`EmptySparse`]).
    Sparse,
}

/// One extent line, with a comment line written above it.
#[derive(Clone, Debug)]
pub struct DescriptorExtent {
    /// Length in 512-byte sectors.
    pub sectors: u64,
    /// FLAT or SPARSE.
    pub kind: ExtentKind,
    /// The file's name, beside the descriptor.
    pub file: String,
    /// What the extent holds (e.g. the partition), written as a comment.
    pub comment: String,
}

/// A text descriptor laying `extents` end to end, with a CHS geometry for
/// the total size (qemu's for IDE: 16 heads, 63 sectors per track).
pub fn descriptor(extents: &[DescriptorExtent], cid: u32) -> String {
    let total: u64 = extents.iter().map(|e| e.sectors).sum();
    let mut s = String::new();
    s.push_str("# Disk DescriptorFile\nversion=1\n");
    let _ = writeln!(s, "CID={cid:08x}");
    s.push_str("parentCID=ffffffff\n");
    // qemu refuses descriptors of types it does not know; monolithicFlat
    // with extra lines reads as the extents say in qemu, VirtualBox and
    // VMware.
    s.push_str("createType=\"monolithicFlat\"\n\n# Extent description\n");
    let mut at = 0u64;
    for e in extents {
        let comment: String = e
            .comment
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let _ = writeln!(
            s,
            "# {comment}: bytes {}..{}",
            at * 512,
            (at + e.sectors) * 512
        );
        match e.kind {
            ExtentKind::Flat => {
                let _ = writeln!(s, "RW {} FLAT \"{}\" 0", e.sectors, e.file);
            }
            ExtentKind::Sparse => {
                let _ = writeln!(s, "RW {} SPARSE \"{}\"", e.sectors, e.file);
            }
        }
        at += e.sectors;
    }
    let cylinders = (total / (16 * 63)).clamp(1, 16383);
    s.push_str("\n# The Disk Data Base\n#DDB\n\n");
    s.push_str("ddb.virtualHWVersion = \"4\"\n");
    let _ = writeln!(s, "ddb.geometry.cylinders = \"{cylinders}\"");
    s.push_str("ddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\n");
    s.push_str("ddb.adapterType = \"ide\"\n");
    s
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::container::{MemSiblings, open};
    use crate::io::{MemSource, Source};

    #[test]
    fn empty_sparse_reads_as_zeros_through_the_descriptor() {
        let flat: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8 + 1).collect();
        let sparse = EmptySparse::new(70_016);
        let mut bytes = vec![0u8; sparse.len() as usize];
        sparse.read_exact_at(0, &mut bytes).expect("sparse");
        let extents = vec![
            DescriptorExtent {
                sectors: 8,
                kind: ExtentKind::Flat,
                file: "a.raw".into(),
                comment: "table".into(),
            },
            DescriptorExtent {
                sectors: 70_016,
                kind: ExtentKind::Sparse,
                file: "b.vmdk".into(),
                comment: "p1 (not selected)".into(),
            },
        ];
        let text = descriptor(&extents, 0x1234);
        let mut files = std::collections::HashMap::new();
        files.insert(
            "a.raw".to_string(),
            Arc::new(MemSource::new(flat.clone())) as Source,
        );
        files.insert(
            "b.vmdk".to_string(),
            Arc::new(MemSource::new(bytes)) as Source,
        );
        let desc: Source = Arc::new(MemSource::new(text.into_bytes()));
        let disk = open(desc, "disk.vmdk", &MemSiblings(files)).expect("open");
        assert_eq!(disk.data.len(), (8 + 70_016) * 512);
        let mut head = vec![0u8; 4096];
        disk.data.read_exact_at(0, &mut head).expect("head");
        assert_eq!(head, flat);
        let mut rest = vec![1u8; 1 << 20];
        disk.data
            .read_exact_at(4096 + 12345, &mut rest)
            .expect("rest");
        assert!(rest.iter().all(|&b| b == 0));
    }
}
