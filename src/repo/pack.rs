//! Pack files: `EncryptedBlob1 || … || EncryptedBlobN || EncryptedHeader ||
//! Header_Length (u32 LE)`.
//!
//! Header entries are 37 bytes (type 0/1: length u32, id) or 41 bytes (type
//! 2/3, compressed: length u32, uncompressed length u32, id). Offsets follow
//! from the lengths. Every parse is bounded by the pack's size.

use crate::crypto::{Key, OVERHEAD};
use crate::error::{Error, Result};
use crate::id::Id;

/// Data or tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobType {
    /// File content.
    Data,
    /// A directory listing (JSON).
    Tree,
}

impl BlobType {
    /// The name used in index JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BlobType::Data => "data",
            BlobType::Tree => "tree",
        }
    }
}

/// One blob's place in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedBlob {
    /// Data or tree.
    pub blob_type: BlobType,
    /// SHA-256 of the plaintext.
    pub id: Id,
    /// Offset of the encrypted blob in the pack.
    pub offset: u32,
    /// Length of the encrypted blob.
    pub length: u32,
    /// Plaintext length if the blob is zstd-compressed, else `None`.
    pub uncompressed_length: Option<u32>,
}

impl PackedBlob {
    /// The plaintext length: uncompressed length, or encrypted length minus
    /// the crypto overhead.
    pub fn plain_len(&self) -> u32 {
        self.uncompressed_length
            .unwrap_or_else(|| self.length.saturating_sub(OVERHEAD as u32))
    }
}

const ENTRY_LEN: usize = 37;
const ENTRY_LEN_COMPRESSED: usize = 41;
/// restic refuses headers beyond 16 MiB; so do we.
pub const MAX_HEADER_LEN: u32 = 16 << 20;

/// Alignment of pack data in memory, so the local backend can write packs
/// with direct I/O.
pub const PACK_ALIGN: usize = 4096;

/// Builds one pack in memory. The pack starts at `base` inside `data`,
/// chosen so that it is [`PACK_ALIGN`]-aligned in memory when the buffer
/// was made with room for it.
#[derive(Default)]
pub struct PackBuilder {
    data: Vec<u8>,
    base: usize,
    blobs: Vec<PackedBlob>,
}

/// A finished pack: its bytes are `buf[start..]`.
pub struct FinishedPack {
    /// The buffer (returned for reuse once written).
    pub buf: Vec<u8>,
    /// Where the pack starts in `buf`.
    pub start: usize,
    /// SHA-256 of the pack: its file name.
    pub id: Id,
    /// The blobs it holds.
    pub blobs: Vec<PackedBlob>,
}

impl FinishedPack {
    /// The pack file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

impl PackBuilder {
    /// An empty pack with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> PackBuilder {
        PackBuilder::from_buffer(Vec::with_capacity(capacity + PACK_ALIGN))
    }

    /// An empty pack reusing `buf`'s allocation.
    pub fn from_buffer(mut buf: Vec<u8>) -> PackBuilder {
        buf.clear();
        let misalign = buf.as_ptr() as usize % PACK_ALIGN;
        let base = if buf.capacity() > PACK_ALIGN && misalign != 0 {
            PACK_ALIGN - misalign
        } else {
            0
        };
        buf.resize(base, 0);
        PackBuilder {
            data: buf,
            base,
            blobs: Vec::new(),
        }
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> usize {
        self.data.len() - self.base
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Number of blobs.
    pub fn count(&self) -> usize {
        self.blobs.len()
    }

    /// Encrypts `payload` straight into the pack; returns the stored length.
    pub fn add_encrypting(
        &mut self,
        key: &Key,
        blob_type: BlobType,
        id: Id,
        payload: &[u8],
        uncompressed: Option<u32>,
    ) -> u32 {
        let offset = self.len();
        key.encrypt_into(payload, &mut self.data);
        let length = (self.len() - offset) as u32;
        self.blobs.push(PackedBlob {
            blob_type,
            id,
            offset: offset as u32,
            length,
            uncompressed_length: uncompressed,
        });
        length
    }

    /// Appends an already encrypted blob.
    pub fn add(
        &mut self,
        blob_type: BlobType,
        id: Id,
        encrypted: &[u8],
        uncompressed: Option<u32>,
    ) {
        let offset = self.len() as u32;
        self.data.extend_from_slice(encrypted);
        self.blobs.push(PackedBlob {
            blob_type,
            id,
            offset,
            length: encrypted.len() as u32,
            uncompressed_length: uncompressed,
        });
    }

    /// Appends the encrypted header and its length.
    pub fn finish(mut self, key: &Key) -> FinishedPack {
        let mut header = Vec::with_capacity(self.blobs.len() * ENTRY_LEN_COMPRESSED);
        for b in &self.blobs {
            let t: u8 = match (b.blob_type, b.uncompressed_length.is_some()) {
                (BlobType::Data, false) => 0,
                (BlobType::Tree, false) => 1,
                (BlobType::Data, true) => 2,
                (BlobType::Tree, true) => 3,
            };
            header.push(t);
            header.extend_from_slice(&b.length.to_le_bytes());
            if let Some(u) = b.uncompressed_length {
                header.extend_from_slice(&u.to_le_bytes());
            }
            header.extend_from_slice(&b.id.0);
        }
        let before = self.data.len();
        key.encrypt_into(&header, &mut self.data);
        let hlen = (self.data.len() - before) as u32;
        self.data.extend_from_slice(&hlen.to_le_bytes());
        let id = Id::hash(&self.data[self.base..]);
        FinishedPack {
            buf: self.data,
            start: self.base,
            id,
            blobs: self.blobs,
        }
    }
}

/// Where the encrypted header sits, from the pack's last 4 bytes.
pub fn header_range(pack_size: u64, trailer: [u8; 4], pack: &Id) -> Result<(u64, u32)> {
    let hlen = u32::from_le_bytes(trailer);
    let bad = |m: String| Error::damaged(format!("pack {pack}: {m}"));
    if hlen > MAX_HEADER_LEN {
        return Err(bad(format!(
            "header length {hlen} exceeds the {MAX_HEADER_LEN} limit"
        )));
    }
    let start = pack_size
        .checked_sub(4)
        .and_then(|v| v.checked_sub(u64::from(hlen)))
        .ok_or_else(|| {
            bad(format!(
                "header length {hlen} larger than the pack ({pack_size} bytes)"
            ))
        })?;
    if (hlen as usize) < OVERHEAD {
        return Err(bad(format!("header length {hlen} too small")));
    }
    Ok((start, hlen))
}

/// Parses a decrypted header; `header_start` is where the blobs must end.
pub fn parse_header(plain: &[u8], header_start: u64, pack: &Id) -> Result<Vec<PackedBlob>> {
    let bad = |m: String| Error::damaged(format!("pack {pack}: header: {m}"));
    let mut blobs = Vec::with_capacity(plain.len() / ENTRY_LEN);
    let mut pos = 0usize;
    let mut offset: u64 = 0;
    while pos < plain.len() {
        let t = plain[pos];
        let (blob_type, compressed) = match t {
            0 => (BlobType::Data, false),
            1 => (BlobType::Tree, false),
            2 => (BlobType::Data, true),
            3 => (BlobType::Tree, true),
            _ => return Err(bad(format!("entry at {pos}: unknown blob type {t}"))),
        };
        let n = if compressed {
            ENTRY_LEN_COMPRESSED
        } else {
            ENTRY_LEN
        };
        let e = plain
            .get(pos..pos + n)
            .ok_or_else(|| bad(format!("entry at {pos} truncated")))?;
        let length = u32::from_le_bytes([e[1], e[2], e[3], e[4]]);
        let (uncompressed_length, id_at) = if compressed {
            (Some(u32::from_le_bytes([e[5], e[6], e[7], e[8]])), 9)
        } else {
            (None, 5)
        };
        let mut id = [0u8; 32];
        id.copy_from_slice(&e[id_at..id_at + 32]);
        if (length as usize) < OVERHEAD {
            return Err(bad(format!(
                "entry at {pos}: blob length {length} too small"
            )));
        }
        let off32 = u32::try_from(offset).map_err(|_| bad("pack larger than 4 GiB".into()))?;
        blobs.push(PackedBlob {
            blob_type,
            id: Id(id),
            offset: off32,
            length,
            uncompressed_length,
        });
        offset += u64::from(length);
        pos += n;
    }
    if offset != header_start {
        return Err(bad(format!(
            "blobs cover {offset} bytes but the header starts at {header_start}"
        )));
    }
    Ok(blobs)
}

/// The size a pack must have for these entries: the blobs, the encrypted
/// header (37 or 41 bytes per entry) and its 4-byte length.
pub fn expected_size(blobs: &[PackedBlob]) -> u64 {
    let mut size = OVERHEAD as u64 + 4;
    for b in blobs {
        size += u64::from(b.length);
        size += if b.uncompressed_length.is_some() {
            ENTRY_LEN_COMPRESSED as u64
        } else {
            ENTRY_LEN as u64
        };
    }
    size
}

/// The blobs a whole pack's header lists (length, decryption, entries).
pub fn header_of_pack(key: &Key, pack: &Id, data: &[u8]) -> Result<Vec<PackedBlob>> {
    let n = data.len();
    let trailer: [u8; 4] = data
        .get(n.saturating_sub(4)..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| Error::damaged(format!("pack {pack}: pack shorter than 4 bytes")))?;
    let (start, hlen) = header_range(n as u64, trailer, pack)?;
    let enc = data
        .get(start as usize..start as usize + hlen as usize)
        .ok_or_else(|| Error::damaged(format!("pack {pack}: header outside the pack")))?;
    let plain = key
        .decrypt(enc)
        .map_err(|e| Error::crypto(format!("pack {pack}: header"), e))?;
    parse_header(&plain, start, pack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse() {
        let key = Key::random();
        let mut b = PackBuilder::default();
        let e1 = key.encrypt(b"one");
        let e2 = key.encrypt(b"compressed-ish");
        b.add(BlobType::Data, Id::hash(b"one"), &e1, None);
        b.add(BlobType::Tree, Id::hash(b"two"), &e2, Some(99));
        let fin = b.finish(&key);
        let (bytes, id, blobs) = (fin.bytes().to_vec(), fin.id, fin.blobs);
        assert_eq!(id, Id::hash(&bytes));
        let n = bytes.len();
        let trailer = [bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]];
        let (start, hlen) = header_range(n as u64, trailer, &id).expect("range");
        let plain = key
            .decrypt(&bytes[start as usize..start as usize + hlen as usize])
            .expect("dec");
        assert_eq!(plain.len(), 37 + 41);
        assert_eq!(parse_header(&plain, start, &id).expect("parse"), blobs);
        assert_eq!(blobs[1].offset as usize, e1.len());
        // Hostile: a header claiming more bytes than the pack has.
        assert!(header_range(10, 100u32.to_le_bytes(), &id).is_err());
        assert!(parse_header(&plain[..40], start, &id).is_err());
        let mut bad = plain.clone();
        bad[0] = 7;
        assert!(parse_header(&bad, start, &id).is_err());
    }
}
