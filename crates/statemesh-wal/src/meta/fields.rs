//! What the metadata holds (the vote, the committed and purged ids, where
//! the segments start and end) and how those fields are encoded inside a
//! slot: each optional, a presence byte first.

/// The log's metadata. Ids are opaque bytes to the log (openraft's `Vote`
/// and `LogId`, serialised) plus, where the log needs it, an index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The last vote cast, opaque.
    pub vote: Option<Vec<u8>>,
    /// The committed index and its id, opaque.
    pub committed: Option<(u64, Vec<u8>)>,
    /// The last purged index and its id, opaque. Entries up to it are gone.
    pub purged: Option<(u64, Vec<u8>)>,
}

/// What the metadata records about the segments, so that recovery can tell
/// a missing segment from one that never existed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The first index of the first segment ever created, which is where
    /// the log starts as long as nothing is purged.
    pub(crate) origin: Option<u64>,
    /// The first index of the newest segment created. Segments from it on
    /// may exist beyond it (a creation whose record did not complete), but
    /// none before it may be missing.
    pub(crate) last_segment: Option<u64>,
}

pub(super) fn encode_fields(meta: &Meta, layout: &Layout) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, None, meta.vote.as_deref());
    for id in [&meta.committed, &meta.purged] {
        put_bytes(
            &mut out,
            id.as_ref().map(|c| c.0),
            id.as_ref().map(|c| &c.1[..]),
        );
    }
    for index in [layout.origin, layout.last_segment] {
        match index {
            None => out.push(0),
            Some(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_le_bytes());
            }
        }
    }
    out
}

pub(super) fn decode_fields(mut bytes: &[u8]) -> Option<(Meta, Layout)> {
    let vote = take_bytes(&mut bytes, false)?.map(|(_, b)| b);
    let committed = take_bytes(&mut bytes, true)?;
    let purged = take_bytes(&mut bytes, true)?;
    let origin = take_index(&mut bytes)?;
    let last_segment = take_index(&mut bytes)?;
    bytes.is_empty().then_some((
        Meta {
            vote,
            committed,
            purged,
        },
        Layout {
            origin,
            last_segment,
        },
    ))
}

/// The encoded size of the metadata with the layout at its largest, to
/// check it against [`MAX_META`](super::MAX_META): metadata that fits now still fits once
/// the layout records both of its indices.
pub(crate) fn encoded_len(meta: &Meta) -> usize {
    let full = Layout {
        origin: Some(0),
        last_segment: Some(0),
    };
    encode_fields(meta, &full).len()
}

fn put_bytes(out: &mut Vec<u8>, index: Option<u64>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            if let Some(i) = index {
                out.extend_from_slice(&i.to_le_bytes());
            }
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if bytes.len() < n {
        return None;
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Some(head)
}

fn take_u64(bytes: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(bytes, 8)?.try_into().ok()?))
}

#[allow(clippy::option_option)]
fn take_bytes(bytes: &mut &[u8], with_index: bool) -> Option<Option<(u64, Vec<u8>)>> {
    match take(bytes, 1)?[0] {
        0 => Some(None),
        1 => {
            let index = if with_index { take_u64(bytes)? } else { 0 };
            let len = u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?) as usize;
            Some(Some((index, take(bytes, len)?.to_vec())))
        }
        _ => None,
    }
}

#[allow(clippy::option_option)]
fn take_index(bytes: &mut &[u8]) -> Option<Option<u64>> {
    match take(bytes, 1)?[0] {
        0 => Some(None),
        1 => Some(Some(take_u64(bytes)?)),
        _ => None,
    }
}
