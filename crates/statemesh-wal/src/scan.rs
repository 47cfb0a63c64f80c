//! Scanning a segment's bytes for its chain of valid items, and, past
//! damage, for what the bytes after it still show: what recovery decides
//! with.

use crate::record::{self, Item, MarkerKind, Salt};
use crate::segment::SEGMENT_HEADER_LEN;

/// The items found in one segment's bytes.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Offset of each valid record, in index order from the segment's first.
    pub(crate) offsets: Vec<u64>,
    /// Where the chain of valid items stops.
    pub(crate) end: u64,
    /// The index the next record at `end` would have.
    pub(crate) next: u64,
    /// Why the chain stops.
    pub(crate) stop: Stop,
    /// The highest durable offset a marker before `end` vouches for.
    pub(crate) durable: u64,
    /// Where the last record before `end` ends.
    pub(crate) records_end: u64,
    /// One past the last byte that is not zero (at least `end`).
    pub(crate) nonzero_end: u64,
}

/// What follows the chain of valid items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Nothing, or only zeros (preallocated space).
    Clean,
    /// An `End` marker at `end`: the log was cut there, and what follows
    /// it is not part of it.
    End,
    /// Bytes that are not the next item; what a search of them found.
    Garbage(After),
}

/// What a search of the bytes after damage found among its valid items.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct After {
    /// The highest durable offset a valid marker there vouches for (a
    /// marker is believed only up to its own offset).
    pub(crate) durable: Option<u64>,
    /// Where the last valid item ends.
    pub(crate) items_end: Option<u64>,
    /// The highest index that valid items show the log held.
    pub(crate) last_index: Option<u64>,
}

/// Scans `bytes` (a whole segment file) for the chain of valid items that
/// starts after the header at index `first`.
pub(crate) fn scan(bytes: &[u8], first: u64, salt: Salt) -> Scan {
    let mut offsets = Vec::new();
    let mut off = SEGMENT_HEADER_LEN as usize;
    let mut next = first;
    let mut durable = SEGMENT_HEADER_LEN;
    let mut records_end = SEGMENT_HEADER_LEN;
    let mut end_marker = false;
    while let Some(item) = record::item_at(bytes, off, salt, |i| i == next) {
        match item {
            Item::Record { len, .. } => {
                // The log's next index would not fit after a record at
                // u64::MAX, so none is ever written: it ends the chain
                // like any other bytes that are not the next item.
                let Some(after) = next.checked_add(1) else {
                    break;
                };
                offsets.push(off as u64);
                off += len;
                next = after;
                records_end = off as u64;
            }
            Item::Marker(m) if m.next == next && m.durable <= off as u64 => {
                if m.kind == MarkerKind::End {
                    end_marker = true;
                    break;
                }
                durable = durable.max(m.durable);
                off += record::MARKER_LEN;
            }
            Item::Marker(_) => break,
        }
    }
    let nonzero_end = bytes[off.min(bytes.len())..]
        .iter()
        .rposition(|&b| b != 0)
        .map_or(off, |p| off + p + 1) as u64;
    let stop = if end_marker {
        Stop::End
    } else if nonzero_end == off as u64 {
        Stop::Clean
    } else {
        Stop::Garbage(search(bytes, off, next, salt))
    };
    Scan {
        offsets,
        end: off as u64,
        next,
        stop,
        durable,
        records_end,
        nonzero_end,
    }
}

/// Looks at every offset from `from` on for valid items that belong after
/// index `next` (byte by byte, skipping over what it finds: this runs only
/// when a segment is damaged).
fn search(bytes: &[u8], from: usize, next: u64, salt: Salt) -> After {
    let mut after = After::default();
    let mut pos = from;
    while pos < bytes.len() {
        // A record's index is at most one per 16 bytes past `next`.
        let most = next.saturating_add(((bytes.len() - pos) / record::HEADER_LEN) as u64);
        let item = record::item_at(bytes, pos, salt, |i| (next..=most).contains(&i));
        let evidence = match item {
            Some(Item::Record { index, .. }) => Some(index),
            Some(Item::Marker(m)) if m.next >= next && m.durable <= pos as u64 => {
                after.durable = after.durable.max(Some(m.durable));
                m.next.checked_sub(1).filter(|&i| i >= next)
            }
            _ => {
                pos += 1;
                continue;
            }
        };
        let len = item.map_or(1, |i| i.len());
        after.last_index = after.last_index.max(evidence);
        after.items_end = Some((pos + len) as u64);
        pos += len;
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{MARKER_LEN, Marker};
    use crate::segment::encode_header;
    use crate::segment::tests::{SALT, header};

    /// A segment holding `batches` (each a list of payloads, each followed
    /// by a batch marker vouching for the batches before it).
    fn segment(first: u64, batches: &[&[&[u8]]]) -> Vec<u8> {
        let salt = Salt::new(SALT);
        let mut b = encode_header(&header(first)).to_vec();
        let mut next = first;
        let mut durable = SEGMENT_HEADER_LEN;
        for batch in batches {
            for p in *batch {
                record::encode(salt, next, p, &mut b);
                next += 1;
            }
            let marker = Marker {
                next,
                durable,
                kind: MarkerKind::Batch,
            };
            record::encode_marker(salt, marker, &mut b);
            durable = b.len() as u64;
        }
        b
    }

    #[test]
    fn a_clean_segment_scans_to_its_end() {
        let mut seg = segment(5, &[&[b"a", b"bb"], &[b"ccc"]]);
        let full = seg.len() as u64;
        seg.extend_from_slice(&[0; 100]);
        let s = scan(&seg, 5, Salt::new(SALT));
        assert_eq!(s.offsets.len(), 3);
        assert_eq!((s.end, s.next, s.nonzero_end), (full, 8, full));
        assert_eq!(s.stop, Stop::Clean);
        // The second batch's marker vouches for the first batch.
        assert_eq!(s.durable, s.offsets[2]);
        assert_eq!(s.records_end, full - MARKER_LEN as u64);
    }

    #[test]
    fn damage_before_a_vouching_marker_is_found_with_its_evidence() {
        let seg = segment(5, &[&[b"a", b"bb"], &[b"ccc"]]);
        let salt = Salt::new(SALT);
        let clean = scan(&seg, 5, salt);
        // Damage the second record: the chain stops there, and the search
        // finds record 7 and the marker that vouches for the first batch.
        let mut bad = seg.clone();
        let second = clean.offsets[1] as usize;
        bad[second + 16] ^= 1;
        let s = scan(&bad, 5, salt);
        assert_eq!((s.end, s.next), (second as u64, 6));
        let Stop::Garbage(after) = s.stop else {
            panic!("{:?}", s.stop)
        };
        assert_eq!(after.durable, Some(clean.offsets[2]));
        assert_eq!(after.last_index, Some(7));
        assert_eq!(after.items_end, Some(seg.len() as u64));
    }

    #[test]
    fn a_torn_end_has_nothing_vouching_after_it() {
        let seg = segment(5, &[&[b"a"], &[b"bb", b"ccc"]]);
        let salt = Salt::new(SALT);
        let clean = scan(&seg, 5, salt);
        let mut torn = seg.clone();
        let last = clean.offsets[2] as usize;
        torn.truncate(last + 5);
        let s = scan(&torn, 5, salt);
        assert_eq!(s.end, last as u64);
        let Stop::Garbage(after) = s.stop else {
            panic!("{:?}", s.stop)
        };
        assert_eq!(after, After::default());
    }

    /// Found by `tests/fuzz.rs` (`fuzz_segment_scan`, a seed at the top of
    /// the index space): a checksummed record at u64::MAX overflowed `next`.
    #[test]
    fn a_record_at_u64_max_ends_the_chain() {
        let salt = Salt::new(SALT);
        let first = u64::MAX - 1;
        let mut seg = encode_header(&header(first)).to_vec();
        record::encode(salt, first, b"last", &mut seg);
        let at = seg.len() as u64;
        record::encode(salt, u64::MAX, b"past the end", &mut seg);
        let s = scan(&seg, first, salt);
        assert_eq!((s.offsets.len(), s.end, s.next), (1, at, u64::MAX));
        let Stop::Garbage(after) = s.stop else {
            panic!("{:?}", s.stop)
        };
        assert_eq!(after.last_index, Some(u64::MAX));
    }

    #[test]
    fn an_end_marker_stops_the_chain() {
        let salt = Salt::new(SALT);
        let mut seg = segment(5, &[&[b"a"]]);
        let cut = seg.len() as u64;
        let end = Marker {
            next: 6,
            durable: cut,
            kind: MarkerKind::End,
        };
        record::encode_marker(salt, end, &mut seg);
        // Left over from before the cut: ignored.
        record::encode(salt, 6, b"stale", &mut seg);
        let s = scan(&seg, 5, salt);
        assert_eq!((s.end, s.next, s.stop), (cut, 6, Stop::End));
        assert_eq!(s.nonzero_end, seg.len() as u64);
    }
}
