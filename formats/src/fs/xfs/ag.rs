//! Allocation group headers (kernel `xfs_format.h` `struct xfs_agf`,
//! `struct xfs_agi`; "XFS Algorithms & Data Structures", "AG Free Space
//! Management" and "AG Inode Management"): the AGF in the AG's second
//! sector and the AGI in its third. The reader needs neither to find data
//! (inode and block numbers locate themselves), so it checks them as a
//! health test of the volume: magic, version, sequence number, length and,
//! on v5, CRC and UUID.

use super::XfsFs;
use super::crc::{be32, verify};
use crate::fs::FsError;

const XAGF: u32 = 0x5841_4746;
const XAGI: u32 = 0x5841_4749;
/// Offsets of `agf_crc`, `agf_uuid`, `agi_crc` and `agi_uuid`.
const AGF_CRC: usize = 216;
const AGF_UUID: usize = 64;
const AGI_CRC: usize = 312;
const AGI_UUID: usize = 296;

impl XfsFs {
    /// Checks the AGF and AGI of AG `agno`.
    pub(crate) fn check_ag(&self, agno: u32) -> Result<(), FsError> {
        let sb = &self.sb;
        let start = sb.ag_linear(agno, 0) * u64::from(sb.block_size);
        let sect = u64::from(sb.sect_size);
        let want_len = if agno + 1 == sb.agcount {
            sb.dblocks - u64::from(agno) * u64::from(sb.agblocks)
        } else {
            u64::from(sb.agblocks)
        };
        for (name, magic, idx, crc_off, uuid_off) in [
            ("AGF", XAGF, 1, AGF_CRC, AGF_UUID),
            ("AGI", XAGI, 2, AGI_CRC, AGI_UUID),
        ] {
            let at = start + idx * sect;
            let s = self.read_meta(at, sb.sect_size as usize)?;
            let structure = format!("XFS {name} of AG {agno}");
            let bad = |d: String| FsError::corrupt(structure.clone(), at, d);
            if be32(&s, 0) != magic {
                return Err(bad(format!("bad magic {:#010x}", be32(&s, 0))));
            }
            if sb.crc() {
                verify(&self.checks, &s, crc_off, &structure, at)?;
                if s[uuid_off..uuid_off + 16] != sb.meta_uuid {
                    return Err(bad("UUID is not the filesystem's".into()));
                }
            }
            let (version, seqno, length) = (be32(&s, 4), be32(&s, 8), be32(&s, 12));
            if version != 1 || seqno != agno || u64::from(length) != want_len {
                return Err(bad(format!(
                    "version {version}, AG number {seqno}, length {length} (expected 1, {agno}, {want_len})"
                )));
            }
        }
        Ok(())
    }
}
