//! The NTFS boot sector (the first sector of the volume): geometry, where
//! the MFT starts, the sizes of MFT records and index blocks, the serial.
//!
//! Layout from "NTFS Documentation" (Richard Russon, Yuval Fledel;
//! linux-ntfs project), chapter "Files: $Boot", and the Linux kernel's
//! `fs/ntfs3/ntfs.h` (`struct NTFS_BOOT`): bytes per sector at 0x0B,
//! sectors per cluster at 0x0D (a value above 0x80 means 2^(256 - v)),
//! total sectors at 0x28, the LCN of $MFT at 0x30 and of $MFTMirr at 0x38,
//! clusters per MFT record at 0x40 and per index block at 0x44 (negative:
//! 2^-v bytes), the serial at 0x48, 0x55AA at 0x1FE.

use super::le::{u8_at, u16_at, u64_at};
use crate::fs::FsError;

/// What the boot sector says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Boot {
    pub sector_size: u32,
    pub cluster_size: u32,
    /// Volume size in bytes (the boot sector's count; the backup boot
    /// sector lies in the sector after it).
    pub volume_size: u64,
    pub mft_lcn: u64,
    pub mft_record_size: u32,
    pub index_block_size: u32,
    pub serial: u64,
}

/// Largest cluster NTFS defines (2 MiB since Windows 10 1709).
const MAX_CLUSTER: u32 = 2 << 20;
/// MFT records are 1 KiB or 4 KiB in practice; larger is refused.
const MAX_RECORD: u32 = 64 << 10;

fn bad(detail: impl Into<String>) -> FsError {
    FsError::corrupt("NTFS boot sector", 0, detail)
}

/// A size field counted in clusters, or in 2^-v bytes when negative.
fn size_field(v: u8, cluster: u32, what: &str) -> Result<u32, FsError> {
    let v = v as i8;
    let size = if v > 0 {
        u32::try_from(u64::from(v as u8) * u64::from(cluster)).ok()
    } else {
        let shift = u32::from(v.unsigned_abs());
        if shift < 31 {
            Some(1u32 << shift)
        } else {
            None
        }
    };
    match size {
        Some(s) if (256..=MAX_RECORD).contains(&s) && s.is_power_of_two() => Ok(s),
        _ => Err(bad(format!("{what} field {v} gives an impossible size"))),
    }
}

impl Boot {
    /// Parses the first sector (at least 512 bytes).
    pub fn parse(b: &[u8]) -> Result<Boot, FsError> {
        if b.get(3..11) != Some(b"NTFS    ") {
            return Err(bad("no \"NTFS    \" signature at byte 3"));
        }
        if u16_at(b, 0x1FE) != Some(0xAA55) {
            return Err(bad("no 0x55AA end-of-sector marker at byte 0x1fe"));
        }
        let field = |v: Option<u64>| v.ok_or_else(|| bad("the sector is short"));
        let sector_size = field(u16_at(b, 0x0B).map(u64::from))? as u32;
        if !(256..=4096).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(bad(format!("{sector_size} bytes per sector")));
        }
        let spc = field(u8_at(b, 0x0D).map(u64::from))? as u32;
        let sectors_per_cluster = match spc {
            0 => return Err(bad("0 sectors per cluster")),
            1..=0x80 => spc,
            _ if 256 - spc < 31 => 1u32 << (256 - spc),
            _ => return Err(bad(format!("sectors-per-cluster field {spc:#x}"))),
        };
        let cluster_size = sector_size
            .checked_mul(sectors_per_cluster)
            .filter(|c| c.is_power_of_two() && *c <= MAX_CLUSTER)
            .ok_or_else(|| bad(format!("{sectors_per_cluster} sectors per cluster")))?;
        let sectors = field(u64_at(b, 0x28))?;
        let volume_size = sectors
            .checked_mul(u64::from(sector_size))
            .ok_or_else(|| bad(format!("{sectors} sectors overflow")))?;
        let mft_lcn = field(u64_at(b, 0x30))?;
        if mft_lcn
            .checked_mul(u64::from(cluster_size))
            .is_none_or(|at| at >= volume_size)
        {
            return Err(bad(format!(
                "$MFT at cluster {mft_lcn} lies outside the volume"
            )));
        }
        let mft_record_size = size_field(
            field(u8_at(b, 0x40).map(u64::from))? as u8,
            cluster_size,
            "clusters per MFT record",
        )?;
        let index_block_size = size_field(
            field(u8_at(b, 0x44).map(u64::from))? as u8,
            cluster_size,
            "clusters per index block",
        )?;
        if mft_record_size < sector_size {
            return Err(bad(format!(
                "MFT records of {mft_record_size} bytes are smaller than a sector"
            )));
        }
        Ok(Boot {
            sector_size,
            cluster_size,
            volume_size,
            mft_lcn,
            mft_record_size,
            index_block_size,
            serial: field(u64_at(b, 0x48))?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A boot sector as mkfs.ntfs writes one: 512-byte sectors, 4 KiB
    /// clusters, 1 KiB records, 4 KiB index blocks.
    pub(crate) fn sample() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[3..11].copy_from_slice(b"NTFS    ");
        b[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        b[0x0D] = 8;
        b[0x28..0x30].copy_from_slice(&(2048u64 * 40).to_le_bytes());
        b[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
        b[0x40] = 0xF6; // -10: 1024 bytes
        b[0x44] = 1;
        b[0x48..0x50].copy_from_slice(&0x1234_5678_9ABC_DEF0u64.to_le_bytes());
        b[0x1FE] = 0x55;
        b[0x1FF] = 0xAA;
        b
    }

    #[test]
    fn parses_mkfs_geometry() {
        let boot = Boot::parse(&sample()).expect("boot");
        assert_eq!(boot.cluster_size, 4096);
        assert_eq!(boot.mft_record_size, 1024);
        assert_eq!(boot.index_block_size, 4096);
        assert_eq!(boot.volume_size, 40 << 20);
        assert_eq!(boot.mft_lcn, 4);
    }

    #[test]
    fn refuses_impossible_fields() {
        let cases: [(usize, u8, &str); 5] = [
            (3, b'X', "signature"),
            (0x0D, 0, "0 sectors per cluster"),
            (0x0D, 0x81, "sectors-per-cluster"),
            (0x40, 0x80, "clusters per MFT record"),
            (0x44, 0xE0, "clusters per index block"),
        ];
        for (at, v, want) in cases {
            let mut b = sample();
            b[at] = v;
            let err = Boot::parse(&b).expect_err(want).to_string();
            assert!(err.contains(want), "{err}");
        }
        let mut b = sample();
        b[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Boot::parse(&b).is_err());
        assert!(Boot::parse(&sample()[..100]).is_err());
    }
}
