//! A file's bytes: an attribute's extents merged by VCN into one run list,
//! read straight from the volume through [`Runs`] (holes and bytes past
//! the initialized size read as zeros), or, for a compressed attribute,
//! decompressed one compression unit at a time with a small cache.
//!
//! Sources: "NTFS Documentation" (Russon, Fledel), "Concepts: Compression"
//! and "Concepts: Sparse Files": a compression unit (2^compression_unit
//! clusters, 16 in practice) whose clusters are all allocated is stored
//! as is, one whose allocated clusters are followed by a hole holds LZNT1
//! data in those clusters, and one wholly sparse reads as zeros.

use std::io;
use std::sync::Arc;

use super::attr::{Attribute, Body};
use super::cache::Lru;
use super::lznt1;
use super::runlist::DataRun;
use crate::fs::FsError;
use crate::io::{MemSource, ReadAt, Run, Runs, Source, clamp};

/// A non-resident attribute, all extents merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Merged {
    pub runs: Vec<DataRun>,
    pub data_size: u64,
    pub initialized_size: u64,
    pub allocated_size: u64,
    pub compression_unit: u8,
    pub flags: u16,
}

/// An attribute's value: resident bytes or merged runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Resident { bytes: Vec<u8>, flags: u16 },
    NonResident(Merged),
}

impl Value {
    pub fn size(&self) -> u64 {
        match self {
            Value::Resident { bytes, .. } => bytes.len() as u64,
            Value::NonResident(m) => m.data_size,
        }
    }

    pub fn flags(&self) -> u16 {
        match self {
            Value::Resident { flags, .. } => *flags,
            Value::NonResident(m) => m.flags,
        }
    }
}

/// Merges the extents `parts` of one attribute (any order). `clusters` is
/// the volume's cluster count; `damage` names the structure in errors.
pub(crate) fn merge(
    parts: &[&Attribute],
    clusters: u64,
    damage: &dyn Fn(String) -> FsError,
) -> Result<Value, FsError> {
    let mut nr: Vec<_> = Vec::new();
    for a in parts {
        match &a.body {
            Body::Resident(v) if parts.len() == 1 => {
                return Ok(Value::Resident {
                    bytes: v.clone(),
                    flags: a.flags,
                });
            }
            Body::Resident(_) => {
                return Err(damage(format!(
                    "a resident extent among {} extents",
                    parts.len()
                )));
            }
            Body::NonResident(n) => nr.push((n, a.flags, a.record)),
        }
    }
    nr.sort_by_key(|(n, _, _)| n.start_vcn);
    let Some(&(first, flags, _)) = nr.first() else {
        return Err(damage("no extents".into()));
    };
    if first.start_vcn != 0 {
        return Err(damage(format!(
            "the first extent starts at VCN {}",
            first.start_vcn
        )));
    }
    let mut runs = Vec::new();
    let mut next_vcn = 0u64;
    for (n, _, record) in &nr {
        if n.start_vcn != next_vcn {
            return Err(damage(format!(
                "extent in MFT record {record} starts at VCN {}, expected {next_vcn}",
                n.start_vcn
            )));
        }
        let piece = n
            .runs(clusters)
            .map_err(|e| damage(format!("data runs in MFT record {record}: {e}")))?;
        let mapped = piece
            .iter()
            .try_fold(0u64, |acc, r| acc.checked_add(r.clusters))
            .ok_or_else(|| damage("run lengths overflow".into()))?;
        if mapped != n.extent_clusters() {
            return Err(damage(format!(
                "extent in MFT record {record} maps {mapped} clusters for VCNs {}..={}",
                n.start_vcn, n.last_vcn
            )));
        }
        next_vcn = next_vcn
            .checked_add(mapped)
            .ok_or_else(|| damage("VCNs overflow".into()))?;
        runs.extend(piece);
    }
    Ok(Value::NonResident(Merged {
        runs,
        data_size: first.data_size,
        initialized_size: first.initialized_size,
        allocated_size: first.allocated_size,
        compression_unit: first.compression_unit,
        flags,
    }))
}

/// The bytes of `value` on `vol` (clusters of `cluster` bytes).
pub(crate) fn source(
    vol: &Source,
    cluster: u64,
    value: &Value,
    what: &str,
    damage: &dyn Fn(String) -> FsError,
) -> Result<Source, FsError> {
    let m = match value {
        Value::Resident { bytes, .. } => return Ok(Arc::new(MemSource::new(bytes.clone()))),
        Value::NonResident(m) => m,
    };
    let mapped = m
        .runs
        .iter()
        .try_fold(0u64, |acc, r| acc.checked_add(r.clusters))
        .and_then(|c| c.checked_mul(cluster))
        .ok_or_else(|| damage("run lengths overflow".into()))?;
    if mapped < m.data_size {
        return Err(damage(format!(
            "runs map {mapped} bytes of a {}-byte attribute",
            m.data_size
        )));
    }
    if m.flags & super::attr::FLAG_COMPRESSED != 0 {
        return Ok(Arc::new(Compressed::new(
            vol.clone(),
            cluster,
            m,
            what,
            damage,
        )?));
    }
    let runs: Vec<Run> = m
        .runs
        .iter()
        .map(|r| Run {
            blocks: r.clusters,
            at: r.lcn,
        })
        .collect();
    let r = Runs::new(vol.clone(), cluster, &runs, m.data_size, m.initialized_size)
        .map_err(|e| damage(e.to_string()))?;
    Ok(Arc::new(r))
}

/// Decompressed units kept per open file.
const UNIT_CACHE: usize = 8;
/// Compression units larger than this are refused (NTFS uses 64 KiB).
const MAX_UNIT: u64 = 1 << 20;

/// A compressed attribute, decompressed unit by unit.
pub(crate) struct Compressed {
    vol: Source,
    cluster: u64,
    unit_clusters: u64,
    /// (first VCN, run)
    runs: Vec<(u64, DataRun)>,
    size: u64,
    initialized: u64,
    units: Lru<u64, Arc<[u8]>>,
    what: String,
}

impl Compressed {
    fn new(
        vol: Source,
        cluster: u64,
        m: &Merged,
        what: &str,
        damage: &dyn Fn(String) -> FsError,
    ) -> Result<Compressed, FsError> {
        let unit_clusters = 1u64
            .checked_shl(u32::from(m.compression_unit))
            .filter(|_| m.compression_unit > 0 && m.compression_unit < 32)
            .ok_or_else(|| {
                damage(format!(
                    "compressed with a compression unit of 2^{} clusters",
                    m.compression_unit
                ))
            })?;
        if unit_clusters.saturating_mul(cluster) > MAX_UNIT {
            return Err(FsError::Unsupported {
                fs: "NTFS",
                detail: format!("compression units of {unit_clusters} clusters of {cluster} bytes"),
            });
        }
        let mut vcn = 0u64;
        let runs = m
            .runs
            .iter()
            .map(|r| {
                let at = vcn;
                vcn += r.clusters;
                (at, *r)
            })
            .collect();
        Ok(Compressed {
            vol,
            cluster,
            unit_clusters,
            runs,
            size: m.data_size,
            initialized: m.initialized_size.min(m.data_size),
            units: Lru::new(UNIT_CACHE),
            what: what.to_string(),
        })
    }

    fn unit_len(&self) -> u64 {
        self.unit_clusters * self.cluster
    }

    fn bad(&self, unit: u64, detail: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} compression unit {unit}: {detail}", self.what),
        )
    }

    /// The decompressed bytes of unit `u`.
    fn unit(&self, u: u64) -> io::Result<Arc<[u8]>> {
        if let Some(d) = self.units.get(u) {
            return Ok(d);
        }
        let start = u * self.unit_clusters;
        let end = start + self.unit_clusters;
        // The placed pieces in VCN order, and whether a hole came first.
        let mut placed: Vec<(u64, u64)> = Vec::new();
        let mut hole_seen = false;
        let mut i = self.runs.partition_point(|(v, r)| v + r.clusters <= start);
        let mut vcn = start;
        while vcn < end {
            let Some(&(rv, r)) = self.runs.get(i) else {
                break; // past the runs: a hole
            };
            let take = (rv + r.clusters).min(end) - vcn;
            match r.lcn {
                Some(lcn) => {
                    if hole_seen {
                        return Err(self.bad(u, "allocated clusters follow a hole".into()));
                    }
                    placed.push((lcn + (vcn - rv), take));
                }
                None => hole_seen = true,
            }
            vcn += take;
            i += 1;
        }
        let total: u64 = placed.iter().map(|p| p.1).sum();
        let unit_len = self.unit_len() as usize;
        let data: Arc<[u8]> = if total == 0 {
            Arc::from(vec![0u8; unit_len])
        } else {
            let mut raw = vec![0u8; (total * self.cluster) as usize];
            let mut at = 0usize;
            for (lcn, n) in placed {
                let len = (n * self.cluster) as usize;
                self.vol
                    .read_exact_at(lcn * self.cluster, &mut raw[at..at + len])?;
                at += len;
            }
            if total == self.unit_clusters {
                Arc::from(raw)
            } else {
                Arc::from(
                    lznt1::decompress_unit(&raw, unit_len)
                        .map_err(|e| self.bad(u, format!("LZNT1 data: {e}")))?,
                )
            }
        };
        self.units.insert(u, data.clone());
        Ok(data)
    }
}

impl ReadAt for Compressed {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = clamp(offset, buf.len(), self.size);
        let unit_len = self.unit_len();
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let within = (at % unit_len) as usize;
            let take = (n - done).min(unit_len as usize - within);
            let out = &mut buf[done..done + take];
            if at >= self.initialized {
                out.fill(0);
            } else {
                let unit = self.unit(at / unit_len)?;
                out.copy_from_slice(&unit[within..within + take]);
                // Bytes past the initialized size read as zeros.
                let valid = usize::try_from(self.initialized - at).unwrap_or(usize::MAX);
                if valid < take {
                    out[valid..].fill(0);
                }
            }
            done += take;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CL: u64 = 512;

    fn run(clusters: u64, lcn: Option<u64>) -> DataRun {
        DataRun { clusters, lcn }
    }

    fn compressed(runs: Vec<DataRun>, size: u64, init: u64) -> Value {
        Value::NonResident(Merged {
            runs,
            data_size: size,
            initialized_size: init,
            allocated_size: size,
            compression_unit: 4,
            flags: 0x0001,
        })
    }

    fn damage(d: String) -> FsError {
        FsError::corrupt("test", 0, d)
    }

    fn read(src: &Source) -> io::Result<Vec<u8>> {
        let mut b = vec![0u8; src.len() as usize];
        src.read_exact_at(0, &mut b).map(|_| b)
    }

    /// Units of 16 clusters of 512 bytes: one stored (16 clusters at 0),
    /// one compressed (1 cluster at 16, then a hole of 15), one sparse.
    #[test]
    fn stored_compressed_and_sparse_units() {
        let mut vol = vec![0u8; 40 * CL as usize];
        for (i, b) in vol[..16 * CL as usize].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        // "abcdef" then a 6-byte back-reference, as an LZNT1 chunk.
        let chunk = [
            0x08, 0xB0, 0x40, b'a', b'b', b'c', b'd', b'e', b'f', 0x03, 0x50,
        ];
        vol[16 * CL as usize..16 * CL as usize + chunk.len()].copy_from_slice(&chunk);
        let vol: Source = Arc::new(MemSource::new(vol));
        let unit = 16 * CL;
        let runs = vec![
            run(16, Some(0)),
            run(1, Some(16)),
            run(15, None),
            run(16, None),
        ];
        let v = compressed(runs.clone(), 3 * unit, 3 * unit);
        let src = source(&vol, CL, &v, "test", &damage).expect("source");
        let got = read(&src).expect("read");
        assert!(
            got[..unit as usize]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 251) as u8)
        );
        assert_eq!(&got[unit as usize..unit as usize + 12], b"abcdefabcdef");
        assert!(got[unit as usize + 12..].iter().all(|&b| b == 0));
        // The initialized size cuts inside the compressed unit.
        let v = compressed(runs, 3 * unit, unit + 3);
        let got = read(&source(&vol, CL, &v, "test", &damage).expect("source")).expect("read");
        assert_eq!(&got[unit as usize..unit as usize + 4], b"abc\0");
    }

    #[test]
    fn allocated_clusters_after_a_hole_are_an_error() {
        let vol: Source = Arc::new(MemSource::new(vec![0u8; 40 * CL as usize]));
        let v = compressed(vec![run(4, None), run(12, Some(0))], 16 * CL, 16 * CL);
        let src = source(&vol, CL, &v, "NTFS MFT record 9 $DATA", &damage).expect("source");
        let e = read(&src).expect_err("hole first");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string().contains("record 9") && e.to_string().contains("follow a hole"),
            "{e}"
        );
        // Runs shorter than the data, and absurd units.
        let short = compressed(vec![run(1, Some(0))], 16 * CL, 16 * CL);
        assert!(source(&vol, CL, &short, "t", &damage).is_err());
        let mut huge = compressed(vec![run(16, Some(0))], 16 * CL, 16 * CL);
        if let Value::NonResident(m) = &mut huge {
            m.compression_unit = 40;
        }
        assert!(source(&vol, CL, &huge, "t", &damage).is_err());
    }

    #[test]
    fn extents_join_by_vcn() {
        use crate::fs::ntfs::attr::{Attribute, Body, NonResident};
        let ext = |start: u64, last: u64, pairs: &[u8]| Attribute {
            type_code: 0x80,
            name: Vec::new(),
            flags: 0,
            instance: 0,
            record: 40 + start,
            body: Body::NonResident(NonResident {
                start_vcn: start,
                last_vcn: last,
                compression_unit: 0,
                allocated_size: 8 * CL,
                data_size: 8 * CL,
                initialized_size: 8 * CL,
                mapping_pairs: pairs.to_vec(),
            }),
        };
        let a = ext(0, 3, &[0x11, 4, 2, 0]);
        let b = ext(4, 7, &[0x11, 4, 20, 0]);
        let Value::NonResident(m) = merge(&[&b, &a], 100, &damage).expect("merge") else {
            panic!("resident");
        };
        assert_eq!(m.runs, vec![run(4, Some(2)), run(4, Some(20))]);
        let gap = ext(5, 7, &[0x11, 3, 20, 0]);
        let e = merge(&[&a, &gap], 100, &damage)
            .expect_err("gap")
            .to_string();
        assert!(e.contains("expected 4"), "{e}");
        let wrong_len = ext(4, 9, &[0x11, 4, 20, 0]);
        assert!(merge(&[&a, &wrong_len], 100, &damage).is_err());
        assert!(merge(&[&b], 100, &damage).is_err());
    }
}
