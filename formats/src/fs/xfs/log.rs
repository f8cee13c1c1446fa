//! Is the log clean? ("XFS Algorithms & Data Structures", "Journaling Log";
//! kernel `fs/xfs/libxfs/xfs_log_format.h`, and the head search of
//! `xfs_log_recover.c` as described there.) The reader does not replay
//! the log; it only tells the user when the on-disk metadata may lag
//! behind it.
//!
//! Every 512-byte sector of the internal log starts with the cycle number
//! it was last written in (a record header, magic `0xFEEDBABE`, carries it
//! in its second word). The head is where the cycle drops; the last record
//! before it is an unmount record (one op whose flags have
//! `XLOG_UNMOUNT_TRANS`) exactly when the filesystem was unmounted cleanly.

use super::XfsFs;
use super::crc::be32;
use crate::fs::FsError;

const HEADER_MAGIC: u32 = 0xFEED_BABE;
const UNMOUNT_TRANS: u8 = 0x20;
/// How far back from the head a record header is looked for: the largest
/// record (256 KiB) and its headers.
const BACK_SECTORS: u64 = 600;

impl XfsFs {
    fn log_sector(&self, start: u64, n: u64) -> Result<[u8; 512], FsError> {
        let mut s = [0u8; 512];
        let v = self.read_meta(start + n * 512, 512)?;
        s.copy_from_slice(&v);
        Ok(s)
    }

    fn cycle(&self, start: u64, n: u64) -> Result<u32, FsError> {
        let s = self.log_sector(start, n)?;
        Ok(if be32(&s, 0) == HEADER_MAGIC {
            be32(&s, 4)
        } else {
            be32(&s, 0)
        })
    }

    /// Why the view may be stale, or `None` when the log is clean.
    pub(crate) fn log_warning(&self) -> Result<Option<String>, FsError> {
        const STALE: &str = "the view may be stale";
        let sb = &self.sb;
        if sb.inprogress {
            return Ok(Some(format!(
                "mkfs did not finish (sb_inprogress): {STALE}"
            )));
        }
        if sb.logstart == 0 {
            return Ok(Some(
                "the log is on an external device and was not checked".into(),
            ));
        }
        let start = sb.fsb_to_byte(sb.logstart).ok_or_else(|| {
            FsError::corrupt(
                "XFS superblock",
                0,
                format!("log start {:#x} outside the filesystem", sb.logstart),
            )
        })?;
        let sectors = u64::from(sb.logblocks) * u64::from(sb.block_size) / 512;
        if sectors < 2 || start + sectors * 512 > sb.size() {
            return Err(FsError::corrupt(
                "XFS superblock",
                0,
                format!("log of {} blocks", sb.logblocks),
            ));
        }
        // Binary search for the first sector of the older cycle.
        let first = self.cycle(start, 0)?;
        let last = self.cycle(start, sectors - 1)?;
        let head = if first == last {
            sectors
        } else {
            let (mut lo, mut hi) = (0u64, sectors - 1); // cycle(lo) == first, cycle(hi) != first
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if self.cycle(start, mid)? == first {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            hi
        };
        // The last record header before the head (the log is circular: a
        // record may start at its end and go on at its start).
        for k in 1..=BACK_SECTORS.min(sectors) {
            let n = (head + sectors - k) % sectors;
            let s = self.log_sector(start, n)?;
            if be32(&s, 0) != HEADER_MAGIC {
                continue;
            }
            let version = be32(&s, 8);
            let h_size = be32(&s, 320);
            let hblks = if version & 2 != 0 && h_size > 32768 {
                u64::from(h_size.div_ceil(32768))
            } else {
                1
            };
            let num_ops = be32(&s, 40);
            let op = self.log_sector(start, (n + hblks) % sectors)?;
            return Ok((num_ops != 1 || op[9] & UNMOUNT_TRANS == 0).then(|| {
                format!(
                    "the log was not cleanly unmounted (needs recovery, last record at log sector {n}): {STALE}"
                )
            }));
        }
        Ok(Some(format!(
            "no log record found before the log head (sector {head}): {STALE}"
        )))
    }
}
