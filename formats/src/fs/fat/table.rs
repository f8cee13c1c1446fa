//! The file allocation table: entries, cluster chains, and the choice of
//! FAT copy.
//!
//! Source: Microsoft FAT specification ("FAT: General Overview of On-Disk
//! Format", 1.03, 2005), §4 (FAT entries: 0 free, 2..=max a next cluster,
//! 0x(F)FF7 bad, 0x(F)FF8 and up end of chain; FAT32 entries use their low
//! 28 bits; entry 0 holds the media byte in its low 8 bits) and §3.1
//! (BPB_ExtFlags: FAT32 mirroring off means only one FAT is live).
//!
//! Chains are walked with a bound (the clusters a file's size needs, or the
//! most a directory may have) and turned into runs of consecutive clusters;
//! a cluster met twice (overlapping runs) is a loop. Every failure is a
//! named [`FsError::Corrupt`] naming the file and the FAT entry's offset.

use super::boot::{FIRST_CLUSTER, FatType, Geometry};
use crate::fs::FsError;
use crate::io::{ReadAt, Source};

/// FATs at most this large are compared copy against copy at open.
pub const COMPARE_LIMIT: u64 = 4 << 20;

/// What a FAT entry says comes after a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The chain goes on at this cluster (checked to be in range).
    Cluster(u32),
    /// End of chain.
    End,
    /// The entry is free (0).
    Free,
    /// The cluster is marked bad.
    Bad,
    /// A value that is neither a cluster of this volume nor a marker.
    Invalid(u32),
}

/// Interprets the raw (FAT32: masked) entry value `v`.
pub fn classify(t: FatType, max_cluster: u32, v: u32) -> Next {
    let bad = match t {
        FatType::Fat12 => 0xFF7,
        FatType::Fat16 => 0xFFF7,
        FatType::Fat32 => 0x0FFF_FFF7,
    };
    match v {
        0 => Next::Free,
        _ if v == bad => Next::Bad,
        _ if v > bad => Next::End,
        _ if (FIRST_CLUSTER..=max_cluster).contains(&v) => Next::Cluster(v),
        _ => Next::Invalid(v),
    }
}

/// Where entry `n` starts in a FAT, in bytes.
fn entry_pos(t: FatType, n: u32) -> u64 {
    let n = u64::from(n);
    match t {
        FatType::Fat12 => n + n / 2,
        FatType::Fat16 => n * 2,
        FatType::Fat32 => n * 4,
    }
}

/// Entry `n` from bytes `b` at its position (`b` starting at that
/// position: 2 bytes for FAT12/16, 4 for FAT32).
fn entry_from(t: FatType, n: u32, b: &[u8]) -> u32 {
    match t {
        FatType::Fat12 => {
            let v = u32::from(u16::from_le_bytes([b[0], b[1]]));
            if n % 2 == 1 { v >> 4 } else { v & 0x0FFF }
        }
        FatType::Fat16 => u32::from(u16::from_le_bytes([b[0], b[1]])),
        FatType::Fat32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x0FFF_FFFF,
    }
}

/// Entry `n` of a whole FAT in memory, if the FAT holds it.
pub fn entry_in(t: FatType, fat: &[u8], n: u32) -> Option<u32> {
    let at = usize::try_from(entry_pos(t, n)).ok()?;
    let width = if t == FatType::Fat32 { 4 } else { 2 };
    fat.get(at..at.checked_add(width)?)
        .map(|b| entry_from(t, n, b))
}

/// A run of `len` consecutive clusters from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterRun {
    /// The first cluster.
    pub start: u32,
    /// How many.
    pub len: u32,
}

/// One FAT copy of a volume, read through `src` (a cached view of the
/// volume).
pub struct Fat {
    src: Source,
    offset: u64,
    fat_type: FatType,
    max_cluster: u32,
}

impl Fat {
    /// FAT copy `copy` of the volume `src` with geometry `g`.
    pub fn new(src: Source, g: &Geometry, copy: u8) -> Fat {
        Fat {
            src,
            offset: g.fat_offset + u64::from(copy) * g.fat_bytes,
            fat_type: g.fat_type,
            max_cluster: g.max_cluster(),
        }
    }

    /// The byte offset in the volume of entry `n`.
    pub fn entry_offset(&self, n: u32) -> u64 {
        self.offset + entry_pos(self.fat_type, n)
    }

    /// Calls `f(start, len)` for each run of free clusters (entry 0), in
    /// ascending order, reading the FAT a block at a time.
    pub fn free_runs(&self, f: &mut dyn FnMut(u32, u32)) -> Result<(), FsError> {
        // An even number of entries per block keeps FAT12's packed pairs
        // whole (entry_pos(n) - entry_pos(base) = entry_pos(n - base)).
        const BLOCK: u32 = 1 << 16;
        let mut run: Option<(u32, u32)> = None;
        let mut base = FIRST_CLUSTER - FIRST_CLUSTER % 2;
        let mut buf = Vec::new();
        while base <= self.max_cluster {
            let last = self.max_cluster.min(base.saturating_add(BLOCK - 1));
            let from = self.entry_offset(base);
            let to = self.entry_offset(last) + 4;
            buf.resize((to - from) as usize, 0);
            let n = self.src.read_at(from, &mut buf)?;
            buf.truncate(n);
            for c in base.max(FIRST_CLUSTER)..=last {
                let free = entry_in(self.fat_type, &buf, c - base)
                    .is_some_and(|v| classify(self.fat_type, self.max_cluster, v) == Next::Free);
                run = match (run, free) {
                    (Some((s, l)), true) => Some((s, l + 1)),
                    (None, true) => Some((c, 1)),
                    (Some((s, l)), false) => {
                        f(s, l);
                        None
                    }
                    (None, false) => None,
                };
            }
            if last == u32::MAX {
                break;
            }
            base = last + 1;
        }
        if let Some((s, l)) = run {
            f(s, l);
        }
        Ok(())
    }

    /// The entry of cluster `n`.
    pub fn next(&self, n: u32) -> Result<Next, FsError> {
        let mut b = [0u8; 4];
        let width = if self.fat_type == FatType::Fat32 {
            4
        } else {
            2
        };
        self.src
            .read_exact_at(self.entry_offset(n), &mut b[..width])?;
        Ok(classify(
            self.fat_type,
            self.max_cluster,
            entry_from(self.fat_type, n, &b),
        ))
    }

    /// The chain from `first`, as runs, stopping after `want` clusters (the
    /// chain may go on; its end is then not read). `need_all`: the chain
    /// must hold `want` clusters, else it is an error naming `what`; without
    /// it, an end of chain before `want` is fine.
    pub fn chain(
        &self,
        first: u32,
        want: u64,
        need_all: bool,
        what: &str,
    ) -> Result<Vec<ClusterRun>, FsError> {
        let structure = || format!("FAT chain of {what}");
        if want == 0 {
            return Ok(Vec::new());
        }
        if !(FIRST_CLUSTER..=self.max_cluster).contains(&first) {
            return Err(FsError::corrupt(
                structure(),
                0,
                format!(
                    "first cluster {first} is outside the volume's clusters 2..={}",
                    self.max_cluster
                ),
            ));
        }
        if want > u64::from(self.max_cluster - 1) && need_all {
            return Err(FsError::corrupt(
                structure(),
                0,
                format!(
                    "needs {want} clusters, the volume has {}",
                    self.max_cluster - 1
                ),
            ));
        }
        let mut runs: Vec<ClusterRun> = Vec::new();
        let mut cur = first;
        let mut count = 0u64;
        loop {
            match runs.last_mut() {
                Some(r) if r.start.checked_add(r.len) == Some(cur) => r.len += 1,
                _ => runs.push(ClusterRun { start: cur, len: 1 }),
            }
            count += 1;
            if count >= want {
                break;
            }
            let at = self.entry_offset(cur);
            match self.next(cur)? {
                Next::Cluster(c) => cur = c,
                Next::End if need_all => {
                    return Err(FsError::corrupt(
                        structure(),
                        at,
                        format!("the chain ends after {count} clusters, the size needs {want}"),
                    ));
                }
                Next::End => break,
                Next::Free => {
                    return Err(FsError::corrupt(
                        structure(),
                        at,
                        format!("cluster {cur} is followed by a free entry inside the chain"),
                    ));
                }
                Next::Bad => {
                    return Err(FsError::corrupt(
                        structure(),
                        at,
                        format!("cluster {cur} is followed by the bad-cluster marker"),
                    ));
                }
                Next::Invalid(v) => {
                    return Err(FsError::corrupt(
                        structure(),
                        at,
                        format!(
                            "cluster {cur} is followed by {v:#x}, outside the volume's clusters 2..={}",
                            self.max_cluster
                        ),
                    ));
                }
            }
        }
        check_no_loop(&runs).map_err(|c| {
            FsError::corrupt(
                structure(),
                self.entry_offset(c),
                format!("cluster {c} appears twice: the chain loops"),
            )
        })?;
        Ok(runs)
    }
}

/// `Err(cluster)` if two runs share a cluster.
fn check_no_loop(runs: &[ClusterRun]) -> Result<(), u32> {
    let mut sorted: Vec<ClusterRun> = runs.to_vec();
    sorted.sort_unstable_by_key(|r| r.start);
    for w in sorted.windows(2) {
        if u64::from(w[0].start) + u64::from(w[0].len) > u64::from(w[1].start) {
            return Err(w[1].start);
        }
    }
    Ok(())
}

/// What is wrong with one FAT copy held in memory, or `None`.
pub fn damage(g: &Geometry, fat: &[u8]) -> Option<String> {
    let t = g.fat_type;
    let mut problems = Vec::new();
    match entry_in(t, fat, 0) {
        Some(e0) if e0 & 0xFF == u32::from(g.media) => {}
        Some(e0) => problems.push(format!(
            "entry 0 is {e0:#x}, its low byte is not the media byte {:#04x}",
            g.media
        )),
        None => problems.push("it is too short".to_string()),
    }
    let max = g.max_cluster();
    let mut out_of_range = 0u64;
    // 0 unseen, 1 on the walk in progress, 2 done.
    let mut state = vec![0u8; max as usize + 1];
    let mut looped = false;
    let next = |n: u32| entry_in(t, fat, n).map(|v| classify(t, max, v));
    for start in FIRST_CLUSTER..=max {
        if matches!(next(start), Some(Next::Invalid(_)) | None) {
            out_of_range += 1;
        }
        if looped || state[start as usize] != 0 {
            continue;
        }
        let mut path = Vec::new();
        let mut cur = start;
        loop {
            match state[cur as usize] {
                1 => {
                    looped = true;
                    break;
                }
                2 => break,
                _ => {}
            }
            state[cur as usize] = 1;
            path.push(cur);
            match next(cur) {
                Some(Next::Cluster(c)) => cur = c,
                _ => break,
            }
        }
        for p in path {
            state[p as usize] = 2;
        }
    }
    if out_of_range > 0 {
        problems.push(format!("{out_of_range} entries point outside the volume"));
    }
    if looped {
        problems.push("a cluster chain loops".to_string());
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Which FAT copy to read, and warnings for the user: the first copy
/// unless it is damaged and the second is not.
pub fn choose_copy(vol: &dyn ReadAt, g: &Geometry) -> Result<(u8, Vec<String>), FsError> {
    if let Some(active) = g.active_fat {
        return Ok((active, Vec::new()));
    }
    if g.num_fats < 2 {
        return Ok((0, Vec::new()));
    }
    let copy_at = |k: u8| g.fat_offset + u64::from(k) * g.fat_bytes;
    if g.fat_bytes > COMPARE_LIMIT {
        // Too large to compare at open: only entry 0 decides.
        let media_ok = |k: u8| -> Result<bool, FsError> {
            let mut b = [0u8; 1];
            vol.read_exact_at(copy_at(k), &mut b)?;
            Ok(b[0] == g.media)
        };
        if !media_ok(0)? && media_ok(1)? {
            return Ok((
                1,
                vec![format!(
                    "FAT copy 1 at byte {:#x} is damaged (entry 0 does not hold the media byte {:#04x}); reading copy 2 at byte {:#x}",
                    copy_at(0),
                    g.media,
                    copy_at(1)
                )],
            ));
        }
        return Ok((0, Vec::new()));
    }
    let read = |k: u8| -> Result<Vec<u8>, FsError> {
        let mut b = vec![0u8; g.fat_bytes as usize];
        vol.read_exact_at(copy_at(k), &mut b)?;
        Ok(b)
    };
    let (first, second) = (read(0)?, read(1)?);
    if first == second {
        return Ok((0, Vec::new()));
    }
    let differ = first.iter().zip(&second).filter(|(a, b)| a != b).count();
    Ok(match (damage(g, &first), damage(g, &second)) {
        (Some(why), None) => (
            1,
            vec![format!(
                "FAT copy 1 at byte {:#x} is damaged ({why}); reading copy 2 at byte {:#x}",
                copy_at(0),
                copy_at(1)
            )],
        ),
        (None, _) => (
            0,
            vec![format!(
                "the FAT copies differ in {differ} bytes; copy 1 looks sound and is read"
            )],
        ),
        (Some(a), Some(b)) => (
            0,
            vec![format!(
                "both FAT copies are damaged (copy 1: {a}; copy 2: {b}); reading copy 1"
            )],
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat12_entries_are_packed_in_three_bytes_per_pair() {
        // Entries 0..4 = 0xFF8, 0xFFF, 0x003, 0xABC packed as 12-bit pairs.
        let fat = [0xF8, 0xFF, 0xFF, 0x03, 0xC0, 0xAB];
        let t = FatType::Fat12;
        assert_eq!(entry_in(t, &fat, 0), Some(0xFF8));
        assert_eq!(entry_in(t, &fat, 1), Some(0xFFF));
        assert_eq!(entry_in(t, &fat, 2), Some(0x003));
        assert_eq!(entry_in(t, &fat, 3), Some(0xABC));
        assert_eq!(entry_in(t, &fat, 4), None);
        // Entry 341 starts at byte 511 and ends in the next sector.
        let mut two = vec![0u8; 1024];
        two[511] = 0x34;
        two[512] = 0x12;
        assert_eq!(entry_pos(t, 341), 511);
        assert_eq!(entry_in(t, &two, 341), Some(0x123));
        assert_eq!(entry_in(t, &two, 340), Some(0x400));
    }

    #[test]
    fn markers_by_width() {
        assert_eq!(classify(FatType::Fat12, 100, 0xFF7), Next::Bad);
        assert_eq!(classify(FatType::Fat12, 100, 0xFF8), Next::End);
        assert_eq!(classify(FatType::Fat16, 100, 0xFFFF), Next::End);
        assert_eq!(classify(FatType::Fat16, 100, 101), Next::Invalid(101));
        assert_eq!(classify(FatType::Fat16, 100, 1), Next::Invalid(1));
        assert_eq!(classify(FatType::Fat32, 100, 0x0FFF_FFFF), Next::End);
        assert_eq!(classify(FatType::Fat32, 100, 0), Next::Free);
        assert_eq!(classify(FatType::Fat32, 100, 100), Next::Cluster(100));
        let fat = [0xF8, 0xFF, 0xFF, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(entry_in(FatType::Fat32, &fat, 1), Some(0x0FFF_FFFF));
    }

    #[test]
    fn overlapping_runs_are_a_loop() {
        let r = |start, len| ClusterRun { start, len };
        assert_eq!(check_no_loop(&[r(5, 3), r(2, 3)]), Ok(()));
        assert_eq!(check_no_loop(&[r(5, 3), r(7, 1)]), Err(7));
    }
}
