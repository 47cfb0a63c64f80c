//! One log entry on disk: a 16-byte header and the payload.
//!
//! ```text
//!  0       4       8               16
//! +-------+-------+---------------+------------- - -
//! | crc   | len   | index         | payload (len bytes)
//! +-------+-------+---------------+------------- - -
//! ```
//!
//! Little-endian. `crc` is the CRC32C of bytes 4..16+len: the length, the
//! index and the payload, so a record that is torn anywhere, or read at the
//! wrong offset, or left over from an earlier use of the same space, fails
//! its check. All-zero bytes (preallocated, never written space) fail it too:
//! the CRC32C of twelve zero bytes is not zero.

/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 16;

/// Largest payload one record can hold.
pub(crate) const MAX_PAYLOAD: u64 = u32::MAX as u64;

/// Appends the encoded record to `out`.
pub(crate) fn encode(index: u64, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() as u64 <= MAX_PAYLOAD);
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The encoded size of a record with `payload_len` bytes of payload.
pub(crate) fn encoded_len(payload_len: u64) -> u64 {
    HEADER_LEN as u64 + payload_len
}

/// A parsed record header (not yet checked against its payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) crc: u32,
    pub(crate) len: u32,
    pub(crate) index: u64,
}

pub(crate) fn parse_header(bytes: &[u8; HEADER_LEN]) -> Header {
    let u32_at =
        |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let mut index = [0u8; 8];
    index.copy_from_slice(&bytes[8..16]);
    Header {
        crc: u32_at(0),
        len: u32_at(4),
        index: u64::from_le_bytes(index),
    }
}

/// Whether a complete record (header bytes and payload) checks out.
pub(crate) fn verify(header_bytes: &[u8; HEADER_LEN], payload: &[u8]) -> bool {
    let header = parse_header(header_bytes);
    if header.len as usize != payload.len() {
        return false;
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header_bytes[4..]), payload);
    crc == header.crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip_and_any_flip_is_caught(index in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..300), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut out = vec![0xAA];
            encode(index, &payload, &mut out);
            let rec = &out[1..];
            prop_assert_eq!(rec.len() as u64, encoded_len(payload.len() as u64));
            let h: [u8; HEADER_LEN] = rec[..HEADER_LEN].try_into().unwrap();
            prop_assert_eq!(parse_header(&h), Header { crc: parse_header(&h).crc, len: payload.len() as u32, index });
            prop_assert!(verify(&h, &rec[HEADER_LEN..]));
            let mut bad = rec.to_vec();
            let at = flip.index(bad.len());
            bad[at] ^= 1 << bit;
            let hb: [u8; HEADER_LEN] = bad[..HEADER_LEN].try_into().unwrap();
            let body_len = (parse_header(&hb).len as usize).min(bad.len() - HEADER_LEN);
            prop_assert!(!verify(&hb, &bad[HEADER_LEN..HEADER_LEN + body_len]));
        }
    }

    #[test]
    fn zeros_are_not_a_record() {
        let zeros = [0u8; HEADER_LEN];
        assert!(!verify(&zeros, &[]));
    }
}
