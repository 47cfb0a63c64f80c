//! Segment files: their header, their names, and scanning their records.
//!
//! ```text
//!  0                8       12      16              24      28      32
//! +----------------+-------+-------+---------------+-------+-------+---- - -
//! | "SMWALSEG"     | ver=1 | 0     | first index   | 0     | crc   | records…
//! +----------------+-------+-------+---------------+-------+-------+---- - -
//! ```
//!
//! Little-endian; `crc` is the CRC32C of bytes 0..28. A segment is named
//! after its first index, zero-padded so names sort like indices.

use crate::record::{self, HEADER_LEN};

/// Bytes before the first record.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 32;
/// The magic at the start of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"SMWALSEG";
/// The segment format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

const SUFFIX: &str = ".wal";

/// The file name of the segment whose first index is `first`.
pub(crate) fn file_name(first: u64) -> String {
    format!("{first:020}{SUFFIX}")
}

/// The first index a segment file name encodes, if it is one.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn encode_header(first: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first.to_le_bytes());
    let crc = crc32c::crc32c(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What is wrong with a segment header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    Short,
    BadMagic,
    Version(u32),
    Checksum,
    FirstIndex(u64),
}

pub(crate) fn check_header(h: &[u8], expected_first: u64) -> Result<(), HeaderProblem> {
    if h.len() < SEGMENT_HEADER_LEN as usize {
        return Err(HeaderProblem::Short);
    }
    if h[..8] != MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    let crc = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
    if crc != crc32c::crc32c(&h[..28]) {
        return Err(HeaderProblem::Checksum);
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::Version(version));
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[16..24]);
    let first = u64::from_le_bytes(first);
    if first != expected_first {
        return Err(HeaderProblem::FirstIndex(first));
    }
    Ok(())
}

/// The records found in one segment's bytes.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Offset of each valid record, in index order from the segment's first.
    pub(crate) offsets: Vec<u64>,
    /// Offset just past the last valid record.
    pub(crate) end: u64,
    /// What follows `end`.
    pub(crate) tail: Tail,
}

/// What follows the last valid record of a segment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Nothing, or only zeros (preallocated space).
    #[default]
    Clean,
    /// Bytes that are not a valid next record. `later` is the offset of a
    /// valid record with a higher index further on, if there is one: then
    /// the bad bytes are not a torn end but damage in the middle.
    Garbage { later: Option<u64> },
}

/// Scans `bytes` (a whole segment file) for consecutive valid records
/// starting at index `first`.
pub(crate) fn scan(bytes: &[u8], first: u64) -> Scan {
    let mut offsets = Vec::new();
    let mut off = SEGMENT_HEADER_LEN as usize;
    let mut next = first;
    while let Some(len) = record_at(bytes, off, next) {
        offsets.push(off as u64);
        off += len;
        next += 1;
    }
    let rest = bytes.get(off..).unwrap_or_default();
    let tail = if rest.iter().all(|&b| b == 0) {
        Tail::Clean
    } else {
        Tail::Garbage {
            later: find_later_record(bytes, off + 1, next),
        }
    };
    Scan {
        offsets,
        end: off as u64,
        tail,
    }
}

/// The encoded length of the valid record with index `index` at `off`.
fn record_at(bytes: &[u8], off: usize, index: u64) -> Option<usize> {
    let header: &[u8; HEADER_LEN] = bytes.get(off..off + HEADER_LEN)?.try_into().ok()?;
    let h = record::parse_header(header);
    if h.index != index {
        return None;
    }
    let body = bytes.get(off + HEADER_LEN..off + HEADER_LEN + h.len as usize)?;
    record::verify(header, body).then_some(HEADER_LEN + h.len as usize)
}

/// Looks for any valid record with index at least `min_index` at or after
/// `from` (byte by byte: this runs only when a segment is damaged).
fn find_later_record(bytes: &[u8], from: usize, min_index: u64) -> Option<u64> {
    (from..bytes.len().saturating_sub(HEADER_LEN - 1)).find_map(|off| {
        let header: &[u8; HEADER_LEN] = bytes[off..off + HEADER_LEN].try_into().ok()?;
        let h = record::parse_header(header);
        if h.index < min_index {
            return None;
        }
        record_at(bytes, off, h.index).map(|_| off as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(first: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let mut b = encode_header(first).to_vec();
        for (i, p) in payloads.iter().enumerate() {
            record::encode(first + i as u64, p, &mut b);
        }
        b
    }

    #[test]
    fn names_sort_like_indices() {
        assert_eq!(parse_name(&file_name(42)), Some(42));
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_name("42.wal"), None);
        assert_eq!(parse_name("LOCK"), None);
    }

    #[test]
    fn header_checks() {
        let h = encode_header(7);
        assert_eq!(check_header(&h, 7), Ok(()));
        assert_eq!(check_header(&h, 8), Err(HeaderProblem::FirstIndex(7)));
        assert_eq!(check_header(&h[..10], 7), Err(HeaderProblem::Short));
        let mut bad = h;
        bad[0] = b'X';
        assert_eq!(check_header(&bad, 7), Err(HeaderProblem::BadMagic));
        let mut bad = h;
        bad[17] ^= 1;
        assert_eq!(check_header(&bad, 7), Err(HeaderProblem::Checksum));
    }

    #[test]
    fn scan_clean_torn_and_damaged() {
        let mut seg = segment(5, &[b"a", b"bb", b"ccc"]);
        let full = seg.len();
        seg.extend_from_slice(&[0; 100]);
        let s = scan(&seg, 5);
        assert_eq!(s.offsets.len(), 3);
        assert_eq!(s.end as usize, full);
        assert_eq!(s.tail, Tail::Clean);

        // Torn last record: garbage with nothing valid after it.
        let mut torn = seg.clone();
        torn[full - 1] ^= 0xFF;
        let s = scan(&torn, 5);
        assert_eq!(s.offsets.len(), 2);
        assert_eq!(s.tail, Tail::Garbage { later: None });

        // Damage in the middle: a later valid record is found.
        let mut mid = seg.clone();
        let second = s.offsets[1] as usize;
        mid[second + HEADER_LEN] ^= 1;
        let s = scan(&mid, 5);
        assert_eq!(s.offsets.len(), 1);
        assert!(matches!(s.tail, Tail::Garbage { later: Some(_) }));
    }
}
