//! Entry points for the fuzz targets in `tests/fuzz.rs`: thin wrappers over
//! the decoders that read bytes the log did not write (items, segment
//! headers and names, whole segments as recovery reads them, `META`), plus
//! the encoders and checksum fixers the targets need to make seeds and to
//! let edits reach past a checksum.
//!
//! **Not a stable API.** Hidden from the docs; it changes whenever the
//! decoders do, in any release. Use the log through [`crate::Wal`].

use crate::error::OpenError;
use crate::memory::MemoryStorage;
use crate::meta::{self, Meta};
use crate::record::{self, HEADER_LEN, MARKER_LEN, Marker, MarkerKind, Salt};
use crate::recovery::read::read_segment;
use crate::scan::Stop;
use crate::segment::{self, Header, SEGMENT_HEADER_LEN};
use crate::storage::Storage;
use std::collections::BTreeMap;

/// An item found by [`decode_item`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A record: its index, and its length with the header.
    Record {
        /// Its index.
        index: u64,
        /// Bytes it takes, header included.
        len: usize,
    },
    /// A marker.
    Marker {
        /// The index of the record after it.
        next: u64,
        /// The offset it vouches for.
        durable: u64,
        /// An End marker (otherwise a batch marker).
        end: bool,
    },
}

/// A record of `payload` at `index`, checksummed under `salt`.
#[must_use]
pub fn encode_record(salt: u64, index: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode(Salt::new(salt), index, payload, &mut out);
    out
}

/// A marker, checksummed under `salt`.
#[must_use]
pub fn encode_marker(salt: u64, next: u64, durable: u64, end: bool) -> Vec<u8> {
    let kind = if end {
        MarkerKind::End
    } else {
        MarkerKind::Batch
    };
    let mut out = Vec::new();
    let marker = Marker {
        next,
        durable,
        kind,
    };
    record::encode_marker(Salt::new(salt), marker, &mut out);
    out
}

/// The item at the start of `bytes`, whatever its index.
#[must_use]
pub fn decode_item(salt: u64, bytes: &[u8]) -> Option<Item> {
    Some(
        match record::item_at(bytes, 0, Salt::new(salt), |_| true)? {
            record::Item::Record { index, len } => Item::Record { index, len },
            record::Item::Marker(m) => Item::Marker {
                next: m.next,
                durable: m.durable,
                end: m.kind == MarkerKind::End,
            },
        },
    )
}

/// The payload of the record at the start of `bytes`, as a read of entry
/// `index` checks it.
#[must_use]
pub fn record_payload(salt: u64, bytes: &[u8], index: u64) -> Option<Vec<u8>> {
    record::payload(bytes.to_vec(), Salt::new(salt), index)
}

/// Recomputes the checksum of the item at `at`, as far as its length field
/// says it reaches; returns where it ends, or `None` if it does not fit.
fn reseal_item_at(salt: Salt, bytes: &mut [u8], at: usize) -> Option<usize> {
    let head = bytes.get(at..at.checked_add(HEADER_LEN)?)?;
    let len = u32::from_le_bytes(head[4..8].try_into().ok()?);
    let end = if len == u32::MAX {
        at.checked_add(MARKER_LEN)?
    } else {
        at.checked_add(HEADER_LEN)?.checked_add(len as usize)?
    };
    let body = bytes.get(at + 4..end)?;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&salt.seed().to_le_bytes()), body);
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    Some(end)
}

/// Fixes the checksum of the item at the start of `bytes`.
pub fn reseal_item(salt: u64, bytes: &mut [u8]) {
    reseal_item_at(Salt::new(salt), bytes, 0);
}

/// A segment header.
#[must_use]
pub fn encode_segment_header(first: u64, capacity: u64, salt: u64) -> Vec<u8> {
    let header = Header {
        first,
        capacity,
        salt,
    };
    segment::encode_header(&header).to_vec()
}

/// The header at the start of `bytes`, read from a file named after
/// `expected_first`: `(first, capacity, salt)`, or what is wrong.
///
/// # Errors
///
/// What is wrong with the header, in words.
pub fn parse_segment_header(bytes: &[u8], expected_first: u64) -> Result<(u64, u64, u64), String> {
    segment::parse_header(bytes, expected_first)
        .map(|h| (h.first, h.capacity, h.salt))
        .map_err(|p| format!("{p:?}"))
}

/// Fixes a segment header's checksum.
pub fn reseal_segment_header(bytes: &mut [u8]) {
    let len = SEGMENT_HEADER_LEN as usize;
    if bytes.len() >= len {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..12]), &bytes[16..len]);
        bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Fixes a whole segment's checksums: the header's, then each item's in
/// turn, as far as the length fields chain them, up to zeros.
pub fn reseal_segment(bytes: &mut [u8]) {
    reseal_segment_header(bytes);
    let Some(seed) = bytes.get(32..40) else {
        return;
    };
    let salt = Salt::new(u64::from_le_bytes(seed.try_into().unwrap_or_default()));
    let mut at = SEGMENT_HEADER_LEN as usize;
    while bytes
        .get(at..at + HEADER_LEN)
        .is_some_and(|h| h.iter().any(|&b| b != 0))
    {
        match reseal_item_at(salt, bytes, at) {
            Some(end) => at = end,
            None => break,
        }
    }
}

/// What recovery read from one segment file.
#[derive(Clone, Debug)]
pub struct SegmentScan {
    /// The size the header says the file was created with.
    pub capacity: u64,
    /// The file's length.
    pub len: u64,
    /// The offset of each record of the chain.
    pub offsets: Vec<u64>,
    /// Where the chain of valid items stops.
    pub end: u64,
    /// The index the next record would have.
    pub next: u64,
    /// The highest offset a marker of the chain vouches for.
    pub durable: u64,
    /// One past the last byte that is not zero.
    pub nonzero_end: u64,
    /// Why the chain stops, in words.
    pub stop: String,
}

/// Reads `bytes` as recovery reads segment file `first` (header, then a
/// scan of every item, and a search past damage).
///
/// # Errors
///
/// The open error recovery would give for the header.
pub fn read_segment_file(bytes: &[u8], first: u64) -> Result<SegmentScan, OpenError> {
    let name = segment::file_name(first);
    let storage = MemoryStorage::from_contents(BTreeMap::from([(name, bytes.to_vec())]));
    let s = read_segment(&storage, first)?;
    Ok(SegmentScan {
        capacity: s.capacity,
        len: s.len,
        offsets: s.scan.offsets,
        end: s.scan.end,
        next: s.scan.next,
        durable: s.scan.durable,
        nonzero_end: s.scan.nonzero_end,
        stop: match s.scan.stop {
            Stop::Clean => "clean".into(),
            Stop::End => "end marker".into(),
            Stop::Garbage(after) => format!("{after:?}"),
        },
    })
}

/// The file name of segment `first`.
#[must_use]
pub fn segment_file_name(first: u64) -> String {
    segment::file_name(first)
}

/// The first index a segment file name stands for, if it is one.
#[must_use]
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    segment::parse_name(name)
}

/// Reads `bytes` as the `META` file.
///
/// # Errors
///
/// The open error recovery would give for it.
pub fn load_meta(bytes: &[u8]) -> Result<Meta, OpenError> {
    let storage =
        MemoryStorage::from_contents(BTreeMap::from([(meta::META_FILE.into(), bytes.to_vec())]));
    let file = storage
        .open(meta::META_FILE, false)
        .map_err(|source| OpenError::Io {
            path: storage.path_of(meta::META_FILE),
            source,
        })?;
    crate::recovery::read::load_meta(&file, storage.path_of(meta::META_FILE)).map(|l| l.meta)
}

/// Fixes the checksums of `META`'s two slots and two hints, as far as
/// their length fields reach.
pub fn reseal_meta(bytes: &mut [u8]) {
    const PAGE: usize = 4096;
    for at in [0, PAGE] {
        let Some(len) = bytes.get(at + 16..at + 20) else {
            continue;
        };
        let end = at + 32 + u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        if end <= (at + PAGE).min(bytes.len()) {
            let crc =
                crc32c::crc32c_append(crc32c::crc32c(&bytes[at..at + 12]), &bytes[at + 16..end]);
            bytes[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
        }
    }
    for at in [2 * PAGE, 3 * PAGE] {
        let Some(len) = bytes.get(at + 4..at + 8) else {
            continue;
        };
        let end = at + 16 + u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        if end <= (at + PAGE).min(bytes.len()) {
            let crc = crc32c::crc32c(&bytes[at + 4..end]);
            bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        }
    }
}
