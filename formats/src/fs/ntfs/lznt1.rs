//! LZNT1 decompression of one NTFS compression unit.
//!
//! Sources: [MS-XCA] "Xpress Compression Algorithm" §2.5 (LZNT1): the
//! compressed buffer is a sequence of chunks, each with a 16-bit header
//! (bits 0–11: chunk size − 3 counting the header, bit 15: compressed);
//! an uncompressed chunk holds 4096 literal bytes; a compressed chunk is a
//! sequence of flag bytes each governing eight tokens, a clear bit a
//! literal byte, a set bit a 16-bit back-reference whose split between
//! offset and length depends on how far into the chunk's 4096 bytes the
//! output is (the offset field is the smallest of 4..=12 bits that can
//! reach the start of the chunk). "NTFS Documentation" (Russon, Fledel),
//! "Concepts: Compression", for how NTFS stores units: a chunk that ends
//! short of 4096 bytes is followed by zeros, and a header of 0 or the end
//! of the allocated clusters ends the unit, the rest of which is zeros.

/// Bytes one chunk decompresses to.
pub(crate) const CHUNK: usize = 4096;

/// Decompresses `input` (the allocated clusters of a unit) into a unit of
/// `unit_len` bytes. The error describes where the data is damaged.
pub(crate) fn decompress_unit(input: &[u8], unit_len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; unit_len];
    let mut src = 0usize;
    let mut chunk_start = 0usize;
    while src + 2 <= input.len() {
        let header = u16::from_le_bytes([input[src], input[src + 1]]);
        if header == 0 {
            break;
        }
        if chunk_start >= unit_len {
            return Err(format!(
                "chunk at byte {src} lies past the unit's {unit_len} bytes"
            ));
        }
        let size = usize::from(header & 0x0FFF) + 1;
        let data = input.get(src + 2..src + 2 + size).ok_or_else(|| {
            format!(
                "chunk at byte {src} of {size} bytes runs past the {} compressed bytes",
                input.len()
            )
        })?;
        let dest_end = (chunk_start + CHUNK).min(unit_len);
        let dest = &mut out[chunk_start..dest_end];
        if header & 0x8000 == 0 {
            if size > dest.len() {
                return Err(format!("stored chunk at byte {src} holds {size} bytes"));
            }
            dest[..size].copy_from_slice(data);
        } else {
            decompress_chunk(data, dest).map_err(|e| format!("chunk at byte {src}: {e}"))?;
        }
        src += 2 + size;
        chunk_start += CHUNK;
    }
    Ok(out)
}

/// Decompresses one compressed chunk into `dest` (at most 4096 bytes);
/// what it does not fill stays zero.
fn decompress_chunk(data: &[u8], dest: &mut [u8]) -> Result<usize, String> {
    let mut pos = 0usize;
    let mut i = 0usize;
    while i < data.len() {
        let flags = data[i];
        i += 1;
        for bit in 0..8 {
            if i >= data.len() {
                break;
            }
            if flags & (1 << bit) == 0 {
                if pos >= dest.len() {
                    return Err(format!("a literal at {i} overflows the chunk"));
                }
                dest[pos] = data[i];
                pos += 1;
                i += 1;
            } else {
                let Some(t) = data.get(i..i + 2) else {
                    return Err(format!("back-reference at {i} is cut off"));
                };
                let token = u16::from_le_bytes([t[0], t[1]]);
                i += 2;
                if pos == 0 {
                    return Err("back-reference before any output".into());
                }
                let mut offset_bits = 4u32;
                while offset_bits < 12 && (1usize << offset_bits) < pos {
                    offset_bits += 1;
                }
                let length_bits = 16 - offset_bits;
                let offset = usize::from(token >> length_bits) + 1;
                let length = usize::from(token & ((1u16 << length_bits) - 1)) + 3;
                if offset > pos {
                    return Err(format!(
                        "back-reference at {} reaches {offset} bytes back from output byte {pos}",
                        i - 2
                    ));
                }
                if pos + length > dest.len() {
                    return Err(format!(
                        "back-reference at {} of {length} bytes overflows the chunk",
                        i - 2
                    ));
                }
                for k in 0..length {
                    dest[pos + k] = dest[pos + k - offset];
                }
                pos += length;
            }
        }
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk header: compressed flag, signature 3, size − 3.
    fn header(data_len: usize, compressed: bool) -> [u8; 2] {
        let v = (data_len + 2 - 3) as u16 | 0x3000 | if compressed { 0x8000 } else { 0 };
        v.to_le_bytes()
    }

    #[test]
    fn known_vectors() {
        // "Hello world" as the `lznt1` crate's documentation shows it
        // compressed: one chunk of 13 bytes, eleven literals.
        let hello = [
            0x0c, 0xb0, 0x00, b'H', b'e', b'l', b'l', b'o', b' ', b'w', b'o', 0x00, b'r', b'l',
            b'd',
        ];
        let out = decompress_unit(&hello, 4096).expect("decompress");
        assert_eq!(&out[..11], b"Hello world");
        assert!(out[11..].iter().all(|&b| b == 0));

        // "abcdef" as literals, then a back-reference of 6 bytes 6 back
        // (4 offset bits at output position 6): token (5 << 12) | 3.
        let body = [0x40, b'a', b'b', b'c', b'd', b'e', b'f', 0x03, 0x50];
        let mut input = header(body.len(), true).to_vec();
        input.extend_from_slice(&body);
        let out = decompress_unit(&input, 8192).expect("decompress");
        assert_eq!(&out[..12], b"abcdefabcdef");
        assert!(out[12..].iter().all(|&b| b == 0));

        // A run of one byte repeated: overlapping copy (offset 1, length 18).
        let body = [0x02, b'x', 0x0F, 0x00];
        let mut input = header(body.len(), true).to_vec();
        input.extend_from_slice(&body);
        let out = decompress_unit(&input, 4096).expect("decompress");
        assert_eq!(&out[..19], &[b'x'; 19]);
        assert_eq!(out[19], 0);

        // An uncompressed chunk, then a compressed one, then the end.
        let mut input = header(CHUNK, false).to_vec();
        input.extend(std::iter::repeat_n(7u8, CHUNK));
        input.extend_from_slice(&header(2, true));
        input.extend_from_slice(&[0x00, b'z']);
        input.extend_from_slice(&[0, 0]);
        let out = decompress_unit(&input, 3 * CHUNK).expect("decompress");
        assert!(out[..CHUNK].iter().all(|&b| b == 7));
        assert_eq!(out[CHUNK], b'z');
        assert!(out[CHUNK + 1..].iter().all(|&b| b == 0));
    }

    #[test]
    fn offset_bits_grow_with_the_position() {
        // 17 literals, then a reference at position 17: 5 offset bits,
        // 11 length bits; offset 17, length 3.
        let mut body = vec![0x00];
        body.extend_from_slice(b"ABCDEFGH");
        body.push(0x00);
        body.extend_from_slice(b"IJKLMNOP");
        body.push(0x02);
        body.push(b'Q');
        body.extend_from_slice(&(16u16 << 11).to_le_bytes());
        let mut input = header(body.len(), true).to_vec();
        input.extend_from_slice(&body);
        let out = decompress_unit(&input, 4096).expect("decompress");
        assert_eq!(&out[..20], b"ABCDEFGHIJKLMNOPQABC");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // A reference before any output.
        let mut input = header(3, true).to_vec();
        input.extend_from_slice(&[0x01, 0x00, 0x00]);
        assert!(decompress_unit(&input, 4096).is_err());
        // A reference too far back.
        let mut input = header(4, true).to_vec();
        input.extend_from_slice(&[0x02, b'a', 0x00, 0xF0]);
        assert!(decompress_unit(&input, 4096).is_err());
        // A chunk longer than the input.
        assert!(decompress_unit(&[0xFF, 0xBF, 1, 2], 4096).is_err());
        // More chunks than the unit holds.
        let mut input = Vec::new();
        for _ in 0..3 {
            input.extend_from_slice(&header(2, true));
            input.extend_from_slice(&[0x00, b'z']);
        }
        assert!(decompress_unit(&input, 8192).is_err());
        // Pseudo-random garbage never panics.
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let junk: Vec<u8> = (0..300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = decompress_unit(&junk, 16384);
        }
    }
}
