//! The data pass's reading of one pack.
//!
//! The header is read first with two range reads (its length is in the last
//! four bytes), then the pack is streamed once from its start: every byte
//! goes through SHA-256, and each blob is verified as it passes. Memory is
//! one blob and a fixed piece for the bytes between blobs, never the pack:
//! a check of packs of any size runs in the same space.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::{
    Finding, Kind, Location, MAX_PACK, PackEntries, PackResult, Severity, finding, without_prefix,
};
use crate::backend::FileType;
use crate::id::{Id, PackId};
use crate::repo::Repository;
use crate::repo::pack::{BlobType, PackedBlob};
use crate::snapshot::Tree;

/// The piece in which bytes outside blobs are read and hashed.
const PIECE: usize = 1 << 20;

/// Reads one pack from start to end and checks everything in it. `entries`
/// are the index's entries for the pack, which the header must contain.
pub(super) fn check_pack(
    repo: &Repository,
    entries: Option<&PackEntries>,
    id: &PackId,
    size: u64,
) -> PackResult {
    let mut c = PackCheck {
        id,
        r: PackResult {
            findings: Vec::new(),
            lost: Some(Vec::new()),
            blobs_ok: 0,
        },
    };
    // Blob offsets are 32-bit: a larger file is no pack, and is not read.
    if size > MAX_PACK {
        c.error(
            Kind::PackHeader,
            None,
            format!("pack of {size} bytes is larger than any pack can be"),
        );
        c.r.lost = None;
        return c.r;
    }
    let header = repo.read_pack_header(id, size).map_err(|e| e.to_string());
    let mut blobs = match &header {
        Ok(b) => b.clone(),
        Err(_) => Vec::new(),
    };
    if let (Ok(_), Some(entries)) = (&header, entries) {
        c.compare_with_index(entries, &blobs);
    }
    let mut reader = match repo.backend().open(FileType::Pack, &id.to_hex()) {
        Ok(r) => r,
        Err(e) => {
            c.error(Kind::PackMissing, None, format!("reading pack: {e}"));
            c.r.lost = None;
            return c.r;
        }
    };
    blobs.sort_by_key(|b| b.offset);
    let streamed = c.stream(repo, &mut *reader, &blobs, size);
    match header {
        Ok(_) => {}
        Err(e) => {
            let e = without_prefix(e, &format!("pack {id}: "));
            c.error(Kind::PackHeader, None, e);
            c.r.lost = None;
        }
    }
    match streamed {
        Ok(hash) if hash != *id => c.error(
            Kind::PackHash,
            None,
            "SHA-256 of the content does not match the name".into(),
        ),
        Ok(_) => {}
        Err(e) => {
            c.error(Kind::PackMissing, None, e);
        }
    }
    c.r
}

struct PackCheck<'a> {
    id: &'a PackId,
    r: PackResult,
}

impl PackCheck<'_> {
    fn at(&self, blob: Option<Id>) -> Location {
        Location {
            file: Some(format!("data/{}/{}", &self.id.to_hex()[..2], self.id)),
            pack: Some(*self.id),
            blob,
            ..Location::default()
        }
    }

    fn error(&mut self, kind: Kind, blob: Option<Id>, detail: String) {
        let f: Finding = finding(Severity::Error, kind, self.at(blob), detail);
        self.r.findings.push(f);
    }

    fn lose(&mut self, b: &PackedBlob) {
        if let Some(lost) = self.r.lost.as_mut() {
            lost.push((b.blob_type, b.id));
        }
    }

    /// The index must agree with the header about every blob it lists.
    fn compare_with_index(&mut self, entries: &PackEntries, header: &[PackedBlob]) {
        for ib in &entries.blobs {
            if !header.contains(ib) {
                self.error(
                    Kind::PackHeader,
                    Some(ib.id),
                    format!(
                        "{} blob at offset {} length {} in the index is not in the pack header",
                        ib.blob_type.as_str(),
                        ib.offset,
                        ib.length
                    ),
                );
                self.lose(ib);
            }
        }
    }

    /// Streams the pack, verifying `blobs` (sorted by offset) as they pass;
    /// returns the SHA-256 of the whole file, or why it could not be read
    /// to the end (the blobs not reached are then lost).
    fn stream(
        &mut self,
        repo: &Repository,
        reader: &mut dyn Read,
        blobs: &[PackedBlob],
        size: u64,
    ) -> Result<Id, String> {
        let mut hasher = Sha256::new();
        let mut piece = vec![0u8; PIECE];
        let mut buf = Vec::new();
        let mut pos = 0u64;
        for (i, b) in blobs.iter().enumerate() {
            let start = u64::from(b.offset);
            if start < pos {
                // parse_header bounds blobs by the header, not by each other.
                self.error(
                    Kind::PackHeader,
                    Some(b.id),
                    format!(
                        "{} blob at offset {start} overlaps the blob before it",
                        b.blob_type.as_str()
                    ),
                );
                self.lose(b);
                continue;
            }
            let read = skip(reader, &mut hasher, &mut piece, start - pos).and_then(|()| {
                buf.clear();
                // Into the spare capacity, reserved at once: no zero-filling
                // of every blob, no growing in steps.
                buf.reserve(b.length as usize);
                let want = u64::from(b.length);
                let n = reader.take(want).read_to_end(&mut buf)?;
                if n as u64 == want {
                    Ok(())
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                }
            });
            if let Err(e) = read {
                for rest in &blobs[i..] {
                    self.lose(rest);
                }
                return Err(read_error(e, pos, size));
            }
            hasher.update(&buf);
            pos = start + u64::from(b.length);
            let what = format!("{} blob {}", b.blob_type.as_str(), b.id);
            let res = repo
                .decode_blob(&what, b, &mut buf)
                .and_then(|plain| match b.blob_type {
                    BlobType::Tree => Tree::decode(&b.id, &plain).map(|_| plain),
                    BlobType::Data => Ok(plain),
                });
            match res {
                Ok(plain) => {
                    self.r.blobs_ok += 1;
                    // Reuse the plaintext's allocation for the next blob.
                    buf = plain;
                }
                Err(e) => {
                    self.error(Kind::BlobDamaged, Some(b.id), e.to_string());
                    self.lose(b);
                }
            }
        }
        // The rest: the header and its length.
        loop {
            let n = match reader.read(&mut piece) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e, pos, size)),
            };
            hasher.update(&piece[..n]);
            pos += n as u64;
            if pos > size {
                return Err(format!(
                    "pack grew while it was read: more than the {size} bytes listed"
                ));
            }
        }
        if pos != size {
            return Err(format!(
                "pack ended after {pos} bytes while it was read; {size} were listed"
            ));
        }
        Ok(Id(hasher.finalize().into()))
    }
}

/// Reads and hashes `n` bytes.
fn skip(
    reader: &mut dyn Read,
    hasher: &mut Sha256,
    piece: &mut [u8],
    mut n: u64,
) -> io::Result<()> {
    while n > 0 {
        let len = n.min(piece.len() as u64) as usize;
        reader.read_exact(&mut piece[..len])?;
        hasher.update(&piece[..len]);
        n -= len as u64;
    }
    Ok(())
}

fn read_error(e: io::Error, pos: u64, size: u64) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("pack ended early while it was read, near byte {pos} of the {size} listed")
    } else {
        format!("reading pack near byte {pos}: {e}")
    }
}
