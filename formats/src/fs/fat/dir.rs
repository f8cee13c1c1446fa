//! Directories: a directory's entries, fed in order, become named entries
//! (a long name joined to its short entry), and parsed directories are
//! kept in a bounded cache.
//!
//! Source: Microsoft FAT specification ("FAT: General Overview of On-Disk
//! Format", 1.03, 2005), §6: a directory is a file of 32-byte entries (the
//! FAT12/16 root a fixed region after the FATs); 0x00 ends it, 0xE5 is a
//! free (deleted) entry; `.` and `..` start every subdirectory; an entry
//! with the volume-label attribute names the volume (root only); a
//! directory holds at most 65536 entries (2 MiB).

use std::collections::HashMap;
use std::sync::Arc;

use super::codepage::CodePage;
use super::dirent::{ATTR_VOLUME_ID, FREE, ShortEntry, short_name};
use super::lfn::{ATTR_LONG_NAME, LongName};
use super::{DIR_CACHE_ENTRIES, FatFs, MAX_DIR_ENTRIES, NAME_CACHE, ROOT, kind_of};
use crate::fs::{FsError, Ino};
use crate::io::ReadAt;

/// One entry of a directory, with its name resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The long name if a valid one precedes it, else the short name.
    pub name: String,
    /// Byte offset of the short entry in the volume.
    pub offset: u64,
    /// The short entry.
    pub entry: ShortEntry,
    /// A deleted (0xE5) entry.
    pub deleted: bool,
}

/// Turns a directory's entries, fed in order, into [`Listed`] entries.
pub struct DirParser {
    cp: CodePage,
    pending: LongName,
    /// Entries so far (`.` and `..` left out).
    pub entries: Vec<Listed>,
    /// The volume label entry's name, if one was seen.
    pub label: Option<[u8; 11]>,
    /// The end-of-directory marker was met: the rest is unused.
    pub ended: bool,
}

impl DirParser {
    /// A parser decoding short names with `cp`.
    pub fn new(cp: CodePage) -> DirParser {
        DirParser {
            cp,
            pending: LongName::default(),
            entries: Vec::new(),
            label: None,
            ended: false,
        }
    }

    /// Feeds the entry `b` found at volume offset `offset`.
    pub fn feed(&mut self, offset: u64, b: &[u8; 32]) {
        if self.ended {
            return;
        }
        let first = b[0];
        if first == 0 {
            self.ended = true;
            return;
        }
        let attr = b[11];
        if attr & 0x3F == ATTR_LONG_NAME {
            if first == FREE {
                self.pending.reset();
            } else {
                self.pending.part(b);
            }
            return;
        }
        let entry = ShortEntry::parse(b);
        let long = self.pending.finish(&entry.name);
        if attr & ATTR_VOLUME_ID != 0 {
            if first != FREE && self.label.is_none() {
                self.label = Some(entry.name);
            }
            return;
        }
        if &entry.name == b".          " || &entry.name == b"..         " {
            return;
        }
        let deleted = first == FREE;
        let long = if deleted { None } else { long };
        let name = long.unwrap_or_else(|| {
            let s = short_name(&entry.name, entry.nt_case, self.cp, deleted);
            if s.is_empty() { "_".to_string() } else { s }
        });
        self.entries.push(Listed {
            name,
            offset,
            entry,
            deleted,
        });
    }
}

/// A directory, parsed.
pub(super) struct Dir {
    /// Live entries, in on-disk order.
    pub live: Vec<Listed>,
    /// Deleted (0xE5) entries.
    pub deleted: Vec<Listed>,
    /// Index in `live` by exact name (the first of equal names).
    pub by_name: HashMap<String, usize>,
    /// By lower-cased name.
    pub by_fold: HashMap<String, usize>,
    /// By lower-cased 8.3 name (the `PROGRA~1` alias).
    pub by_short: HashMap<String, usize>,
    /// Bytes the directory occupies.
    pub size: u64,
    /// The volume label entry (root only).
    pub label: Option<[u8; 11]>,
}

impl FatFs {
    /// The directory `dir`, parsed (cached).
    pub(super) fn dir(&self, dir: Ino) -> Result<Arc<Dir>, FsError> {
        if let Some(d) = self.caches.lock().dirs.get(&dir) {
            return Ok(d.clone());
        }
        let parsed = Arc::new(self.read_dir_uncached(dir)?);
        let mut c = self.caches.lock();
        if c.dir_entries + parsed.live.len() > DIR_CACHE_ENTRIES {
            c.dirs.clear();
            c.dir_entries = 0;
        }
        if c.names.len() + parsed.live.len() > NAME_CACHE {
            c.names.clear();
        }
        for l in &parsed.live {
            c.names.insert(l.offset, l.name.clone());
        }
        c.dir_entries += parsed.live.len() + parsed.deleted.len();
        c.dirs.insert(dir, parsed.clone());
        Ok(parsed)
    }

    fn read_dir_uncached(&self, dir: Ino) -> Result<Dir, FsError> {
        let mut p = DirParser::new(self.cp);
        let mut size = 0;
        let feed = |p: &mut DirParser, at: u64, len: u64| -> Result<(), FsError> {
            let mut buf = vec![0u8; len as usize];
            self.meta.read_exact_at(at, &mut buf)?;
            for (i, chunk) in buf.chunks_exact(32).enumerate() {
                let mut e = [0u8; 32];
                e.copy_from_slice(chunk);
                p.feed(at + 32 * i as u64, &e);
                if p.ended {
                    break;
                }
            }
            Ok(())
        };
        let first = if dir == ROOT {
            if let Some((at, len)) = self.geo.root_region {
                feed(&mut p, at, len)?;
                size = len;
                None
            } else {
                Some((self.geo.root_cluster, "the root directory".to_string()))
            }
        } else {
            let (e, deleted) = self.entry(dir)?;
            if deleted || !e.is_dir() {
                return Err(FsError::WrongKind {
                    ino: dir,
                    actual: kind_of(&e),
                    wanted: "directory",
                });
            }
            Some((e.first_cluster(self.fat32()), self.describe(dir, &e, false)))
        };
        if let Some((cluster, what)) = first {
            let cs = u64::from(self.geo.cluster_size);
            let most = (MAX_DIR_ENTRIES * 32).div_ceil(cs);
            let runs = self.fat.chain(cluster, most + 1, false, &what)?;
            let clusters: u64 = runs.iter().map(|r| u64::from(r.len)).sum();
            if clusters > most {
                return Err(FsError::corrupt(
                    format!("FAT chain of {what}"),
                    self.fat.entry_offset(cluster),
                    format!(
                        "more than {most} clusters: over the {MAX_DIR_ENTRIES} entries a directory may hold"
                    ),
                ));
            }
            size = clusters * cs;
            for r in runs {
                if p.ended {
                    break;
                }
                feed(
                    &mut p,
                    self.geo.cluster_offset(r.start),
                    u64::from(r.len) * cs,
                )?;
            }
        }
        let mut d = Dir {
            live: Vec::new(),
            deleted: Vec::new(),
            by_name: HashMap::new(),
            by_fold: HashMap::new(),
            by_short: HashMap::new(),
            size,
            label: p.label,
        };
        for l in p.entries {
            if l.deleted {
                d.deleted.push(l);
                continue;
            }
            let i = d.live.len();
            d.by_name.entry(l.name.clone()).or_insert(i);
            d.by_fold.entry(l.name.to_lowercase()).or_insert(i);
            d.by_short
                .entry(short_name(&l.entry.name, 0, self.cp, false).to_lowercase())
                .or_insert(i);
            d.live.push(l);
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fat::dirent::tests::short;
    use crate::fs::fat::dirent::{ATTR_ARCHIVE, ATTR_DIRECTORY};
    use crate::fs::fat::lfn::tests::long;

    fn parse(entries: &[[u8; 32]]) -> DirParser {
        let mut p = DirParser::new(CodePage::Cp850);
        for (i, e) in entries.iter().enumerate() {
            p.feed(i as u64 * 32, e);
        }
        p
    }

    #[test]
    fn long_names_assemble_and_verify() {
        let sn = b"LONGNA~1TXT";
        let name = "a long name with Ελληνικά and 日本語 characters.txt";
        let mut es = long(name, sn);
        es.push(short(sn, ATTR_ARCHIVE, 0, 5, 10));
        let p = parse(&es);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].name, name);
        assert_eq!(p.entries[0].offset, (es.len() as u64 - 1) * 32);
        // A surrogate pair (U+1F600) survives.
        let mut es = long("smile 😀.txt", sn);
        es.push(short(sn, ATTR_ARCHIVE, 0, 5, 10));
        assert_eq!(parse(&es).entries[0].name, "smile 😀.txt");
    }

    #[test]
    fn broken_long_names_fall_back_to_the_short_name() {
        let sn = b"LONGNA~1TXT";
        let name = "a name of more than thirteen units.txt";
        // Wrong checksum.
        let mut es = long(name, b"OTHER   TXT");
        es.push(short(sn, 0, 0, 5, 1));
        assert_eq!(parse(&es).entries[0].name, "LONGNA~1.TXT");
        // A missing middle part.
        let mut es = long(name, sn);
        es.remove(1);
        es.push(short(sn, 0, 0, 5, 1));
        assert_eq!(parse(&es).entries[0].name, "LONGNA~1.TXT");
        // An orphan: long entries, then a deleted entry, then the short one.
        let mut es = long(name, sn);
        es.push(short(b"\xe5ELETED TXT", 0, 0, 9, 1));
        es.push(short(sn, 0, 0, 5, 1));
        let p = parse(&es);
        assert_eq!(p.entries[0].name, "_ELETED.TXT");
        assert!(p.entries[0].deleted);
        assert_eq!(p.entries[1].name, "LONGNA~1.TXT");
        // An unpaired surrogate.
        let mut es = long("ab", sn);
        es[0][1..3].copy_from_slice(&0xD800u16.to_le_bytes());
        es.push(short(sn, 0, 0, 5, 1));
        assert_eq!(parse(&es).entries[0].name, "LONGNA~1.TXT");
        // A long name containing '/'.
        let mut es = long("a/b", sn);
        es.push(short(sn, 0, 0, 5, 1));
        assert_eq!(parse(&es).entries[0].name, "LONGNA~1.TXT");
    }

    #[test]
    fn dots_labels_and_the_end_marker() {
        let es = [
            short(b"MYLABEL    ", ATTR_VOLUME_ID, 0, 0, 0),
            short(b".          ", ATTR_DIRECTORY, 0, 3, 0),
            short(b"..         ", ATTR_DIRECTORY, 0, 0, 0),
            short(b"SUB        ", ATTR_DIRECTORY, 0, 4, 0),
            [0u8; 32],
            short(b"GHOST   TXT", 0, 0, 4, 0),
        ];
        let p = parse(&es);
        assert_eq!(p.label, Some(*b"MYLABEL    "));
        assert!(p.ended);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].name, "SUB");
        assert!(p.entries[0].entry.is_dir());
        assert_eq!(p.entries[0].entry.attr_letters(), "----D");
        assert_eq!(
            ShortEntry::parse(&short(b"X          ", 0, 0, 0x12_3456, 0)).first_cluster(true),
            0x12_3456
        );
        assert_eq!(
            ShortEntry::parse(&short(b"X          ", 0, 0, 0x12_3456, 0)).first_cluster(false),
            0x3456
        );
    }
}
