//! What a segment holds after its header: records (one log entry each) and
//! batch markers, one after each write batch.
//!
//! ```text
//! record:
//!  0       4       8               16
//! +-------+-------+---------------+------------- - -
//! | crc   | len   | index         | payload (len bytes)
//! +-------+-------+---------------+------------- - -
//!
//! marker:
//!  0       4          8               16              24       28      32
//! +-------+----------+---------------+---------------+--------+-------+
//! | crc   | FFFFFFFF | next index    | durable       | kind   | 0     |
//! +-------+----------+---------------+---------------+--------+-------+
//! ```
//!
//! Little-endian. `crc` is the CRC32C of bytes 4 to the end of the item,
//! continued from the CRC32C of the segment's random salt: so a record that
//! is torn anywhere, read at the wrong offset, or copied from another segment
//! (or smuggled inside a payload by someone who cannot read the salt) fails
//! its check. All-zero bytes fail it too.
//!
//! A length of `FFFFFFFF` marks a marker. `next` is the index the next record
//! will have; `durable` is an offset in the same segment below which every
//! byte had been made durable (`fdatasync` had returned) before the marker
//! was written. A `Batch` marker ends each write batch; an `End` marker is
//! written where the log was cut, and means that nothing after it belongs to
//! the log.

/// Bytes before a record's payload.
pub(crate) const HEADER_LEN: usize = 16;

/// Bytes of a marker.
pub(crate) const MARKER_LEN: usize = 32;

/// The length field value that marks a marker.
const MARKER_TAG: u32 = u32::MAX;

/// Largest payload one record can hold (the largest length is the marker's).
pub(crate) const MAX_PAYLOAD: u64 = u32::MAX as u64 - 1;

/// A segment's salt, and the CRC32C state every checksum in the segment
/// starts from: the CRC of the salt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Salt {
    seed: u64,
    crc: u32,
}

impl Salt {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            crc: crc32c::crc32c(&seed.to_le_bytes()),
        }
    }

    /// A salt no other segment is likely to have, under which zeros never
    /// check out as an item.
    pub(crate) fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            // `RandomState` is keyed from the operating system's randomness;
            // the count and the clock make each call differ.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            h.write_u128(now.as_nanos());
            let salt = Self::new(h.finish());
            // An empty record of index 0 in zeroed space would check out if
            // its stored checksum, zero, matched: one salt in 2^32.
            if salt.crc(&[0; HEADER_LEN - 4]) != 0 {
                return salt;
            }
        }
    }

    /// The salt itself, as the segment header records it.
    pub(crate) fn seed(self) -> u64 {
        self.seed
    }

    fn crc(self, bytes: &[u8]) -> u32 {
        crc32c::crc32c_append(self.crc, bytes)
    }
}

/// What a marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MarkerKind {
    /// Ends a write batch (or, written alone, vouches for what came before).
    Batch = 1,
    /// The log was cut here: whatever follows is not part of it.
    End = 2,
}

/// A parsed marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The index of the record that follows it.
    pub(crate) next: u64,
    /// Every byte of the segment before this offset was durable when the
    /// marker was written.
    pub(crate) durable: u64,
    pub(crate) kind: MarkerKind,
}

/// A valid item found at some offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A record with this index, `len` bytes long in all.
    Record {
        index: u64,
        len: usize,
    },
    Marker(Marker),
}

impl Item {
    /// Its encoded length.
    pub(crate) fn len(&self) -> usize {
        match self {
            Item::Record { len, .. } => *len,
            Item::Marker(_) => MARKER_LEN,
        }
    }
}

/// Appends the encoded record to `out`.
pub(crate) fn encode(salt: Salt, index: u64, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() as u64 <= MAX_PAYLOAD);
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = salt.crc(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Appends the encoded marker to `out`.
pub(crate) fn encode_marker(salt: Salt, marker: Marker, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&MARKER_TAG.to_le_bytes());
    out.extend_from_slice(&marker.next.to_le_bytes());
    out.extend_from_slice(&marker.durable.to_le_bytes());
    out.extend_from_slice(&(marker.kind as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let crc = salt.crc(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The encoded size of a record with `payload_len` bytes of payload.
pub(crate) fn encoded_len(payload_len: u64) -> u64 {
    HEADER_LEN as u64 + payload_len
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(x)
}

/// The valid item at `off`, if there is one. `index` filters records: only
/// those whose index passes it are checksummed (a search through damaged
/// bytes would otherwise checksum megabytes at most offsets).
pub(crate) fn item_at(
    bytes: &[u8],
    off: usize,
    salt: Salt,
    index: impl Fn(u64) -> bool,
) -> Option<Item> {
    let head = bytes.get(off..off.checked_add(HEADER_LEN)?)?;
    let len = u32_at(head, 4);
    if len == MARKER_TAG {
        let m = bytes.get(off..off.checked_add(MARKER_LEN)?)?;
        if salt.crc(&m[4..]) != u32_at(m, 0) || u32_at(m, 28) != 0 {
            return None;
        }
        let kind = match u32_at(m, 24) {
            1 => MarkerKind::Batch,
            2 => MarkerKind::End,
            _ => return None,
        };
        return Some(Item::Marker(Marker {
            next: u64_at(m, 8),
            durable: u64_at(m, 16),
            kind,
        }));
    }
    let record_index = u64_at(head, 8);
    if !index(record_index) {
        return None;
    }
    let total = HEADER_LEN.checked_add(len as usize)?;
    let rec = bytes.get(off..off.checked_add(total)?)?;
    (salt.crc(&rec[4..]) == u32_at(rec, 0)).then_some(Item::Record {
        index: record_index,
        len: total,
    })
}

/// Checks a record read back for `index` (`buf` holds it, possibly followed
/// by other bytes) and returns its payload.
pub(crate) fn payload(mut buf: Vec<u8>, salt: Salt, index: u64) -> Option<Vec<u8>> {
    match item_at(&buf, 0, salt, |i| i == index)? {
        Item::Record { len, .. } => {
            buf.truncate(len);
            buf.drain(..HEADER_LEN);
            Some(buf)
        }
        Item::Marker(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SALT: u64 = 0x5eed;

    proptest! {
        #[test]
        fn roundtrip_and_any_flip_is_caught(index in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..300), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
            let salt = Salt::new(SALT);
            let mut out = vec![0xAA];
            encode(salt, index, &payload, &mut out);
            let rec = out[1..].to_vec();
            prop_assert_eq!(rec.len() as u64, encoded_len(payload.len() as u64));
            prop_assert_eq!(item_at(&out, 1, salt, |_| true), Some(Item::Record { index, len: rec.len() }));
            prop_assert_eq!(super::payload(rec.clone(), salt, index), Some(payload.clone()));
            // Another segment's salt does not read it.
            prop_assert_eq!(item_at(&rec, 0, Salt::new(SALT + 1), |_| true), None);
            let mut bad = rec;
            let at = flip.index(bad.len());
            bad[at] ^= 1 << bit;
            prop_assert_eq!(item_at(&bad, 0, salt, |_| true), None);
        }

        #[test]
        fn markers_roundtrip_and_any_flip_is_caught(next in any::<u64>(), durable in any::<u64>(), end in any::<bool>(), flip in 0usize..MARKER_LEN, bit in 0u8..8) {
            let salt = Salt::new(SALT);
            let kind = if end { MarkerKind::End } else { MarkerKind::Batch };
            let marker = Marker { next, durable, kind };
            let mut out = Vec::new();
            encode_marker(salt, marker, &mut out);
            prop_assert_eq!(out.len(), MARKER_LEN);
            prop_assert_eq!(item_at(&out, 0, salt, |_| true), Some(Item::Marker(marker)));
            let mut bad = out;
            bad[flip] ^= 1 << bit;
            prop_assert_eq!(item_at(&bad, 0, salt, |_| true), None);
        }
    }

    #[test]
    fn zeros_are_not_an_item() {
        let zeros = [0u8; 64];
        for _ in 0..100 {
            assert_eq!(item_at(&zeros, 0, Salt::random(), |_| true), None);
        }
        assert_eq!(item_at(&zeros, 0, Salt::new(SALT), |_| true), None);
    }

    #[test]
    fn a_record_short_of_its_length_is_not_an_item() {
        let salt = Salt::new(SALT);
        let mut out = Vec::new();
        encode(salt, 3, b"hello", &mut out);
        out.pop();
        assert_eq!(item_at(&out, 0, salt, |_| true), None);
    }
}
