//! Data runs ("mapping pairs"): where the clusters of a non-resident
//! attribute lie.
//!
//! Source: "NTFS Documentation" (Russon, Fledel), "Concepts: Data Runs";
//! the Linux kernel's `fs/ntfs3/run.c` comments. Each run starts with a
//! header byte: the low nibble is the size of the length field, the high
//! nibble the size of the offset field; the length (unsigned) counts
//! clusters, the offset (signed) is the distance in clusters from the
//! previous run's start (the first run: from cluster 0). An offset field of
//! size 0 is a sparse run. A header byte of 0 ends the list.

/// One run: `clusters` clusters at `lcn`, or a hole (`lcn: None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DataRun {
    pub clusters: u64,
    pub lcn: Option<u64>,
}

/// Decodes the mapping pairs in `b`. `clusters_in_volume` bounds every
/// placed run. Errors are a description for the caller to name.
pub(crate) fn decode(b: &[u8], clusters_in_volume: u64) -> Result<Vec<DataRun>, String> {
    let mut runs = Vec::new();
    let mut at = 0usize;
    let mut lcn: i64 = 0;
    loop {
        let Some(&header) = b.get(at) else {
            return Err(format!("no end marker within {} bytes", b.len()));
        };
        if header == 0 {
            return Ok(runs);
        }
        let (len_size, off_size) = (usize::from(header & 0x0F), usize::from(header >> 4));
        if len_size == 0 || len_size > 8 || off_size > 8 {
            return Err(format!("run header {header:#04x} at byte {at}"));
        }
        let field = |start: usize, size: usize| {
            b.get(start..start + size)
                .ok_or_else(|| format!("run at byte {at} is cut off"))
        };
        let len_bytes = field(at + 1, len_size)?;
        let mut clusters = 0u64;
        for (i, &v) in len_bytes.iter().enumerate() {
            clusters |= u64::from(v) << (8 * i);
        }
        if clusters == 0 || clusters > (1 << 62) {
            return Err(format!("run at byte {at} of {clusters} clusters"));
        }
        let off_bytes = field(at + 1 + len_size, off_size)?;
        let run_lcn = if off_size == 0 {
            None
        } else {
            let mut delta = 0i64;
            for (i, &v) in off_bytes.iter().enumerate() {
                delta |= i64::from(v) << (8 * i);
            }
            // Sign-extend from the field's top bit.
            let bits = 8 * off_size as u32;
            if bits < 64 && delta & (1 << (bits - 1)) != 0 {
                delta |= -1i64 << bits;
            }
            lcn = lcn
                .checked_add(delta)
                .ok_or_else(|| format!("run at byte {at}: cluster offset overflows"))?;
            let start = u64::try_from(lcn)
                .map_err(|_| format!("run at byte {at} starts at cluster {lcn}"))?;
            if start
                .checked_add(clusters)
                .is_none_or(|end| end > clusters_in_volume)
            {
                return Err(format!(
                    "run at byte {at} ({clusters} clusters at cluster {start}) lies outside the volume of {clusters_in_volume} clusters"
                ));
            }
            Some(start)
        };
        runs.push(DataRun {
            clusters,
            lcn: run_lcn,
        });
        at += 1 + len_size + off_size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(clusters: u64, lcn: Option<u64>) -> DataRun {
        DataRun { clusters, lcn }
    }

    #[test]
    fn decodes_known_lists() {
        // From the Flatcap examples: 0x30 clusters at 0x2A00, then 0x10
        // clusters 0x100 further, a hole of 0x20, then 0x10 clusters back
        // 0x40 from the last placed run.
        let b = [
            0x21, 0x30, 0x00, 0x2A, 0x21, 0x10, 0x00, 0x01, 0x01, 0x20, 0x11, 0x10, 0xC0, 0x00,
        ];
        assert_eq!(
            decode(&b, 1 << 20),
            Ok(vec![
                run(0x30, Some(0x2A00)),
                run(0x10, Some(0x2B00)),
                run(0x20, None),
                run(0x10, Some(0x2AC0)),
            ])
        );
        assert_eq!(decode(&[0], 10), Ok(vec![]));
    }

    #[test]
    fn refuses_bad_lists() {
        // No end marker.
        assert!(decode(&[0x11, 0x01, 0x01], 100).is_err());
        // Cut-off field.
        assert!(decode(&[0x21, 0x01], 100).is_err());
        // Outside the volume.
        let e = decode(&[0x11, 0x05, 0x60, 0x00], 100).expect_err("outside");
        assert!(e.contains("outside the volume"), "{e}");
        // Before cluster 0.
        assert!(decode(&[0x11, 0x01, 0xFF, 0x00], 100).is_err());
        // Zero-length run, oversized fields.
        assert!(decode(&[0x11, 0x00, 0x01, 0x00], 100).is_err());
        assert!(decode(&[0x19, 0x00], 100).is_err());
        assert!(decode(&[0x90, 0x00], 100).is_err());
    }
}
