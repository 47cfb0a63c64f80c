//! The log's metadata: vote, committed id and last purged id, kept in two
//! checksummed slots of one file so that an update is one write and one
//! `fdatasync`, and a crash during it leaves the other slot intact.
//!
//! ```text
//! slot (at 0 and at 4096):
//!  0      4      8             16
//! +------+------+-------------+----------------- - -
//! | crc  | len  | sequence    | fields (len bytes)
//! +------+------+-------------+----------------- - -
//! ```
//!
//! `crc` is the CRC32C of bytes 4..16+len. The valid slot with the higher
//! sequence wins. Each update writes the other slot, so the newest complete
//! state always survives.
//!
//! The committed index changes on every commit and is only a hint (a
//! replica that reads back an older one re-applies a little more after a
//! restart), so it also has a cheaper home: two hint records, each in its
//! own page after the slots, written alternately and never synced by
//! themselves. They survive a process crash (the page cache does); after a
//! power loss one may read back older or torn, and the newest valid one of
//! the slots and the hints is used.
//!
//! ```text
//! hint (at 8192 and at 12288):
//!  0      4      8             16
//! +------+------+-------------+----------------- - -
//! | crc  | len  | index       | id (len bytes)
//! +------+------+-------------+----------------- - -
//! ```

use crate::storage::{Storage, StorageFile};
use std::io;

/// The file name of the metadata file.
pub(crate) const META_FILE: &str = "META";
const SLOT_LEN: usize = 4096;
const SLOT_HEADER: usize = 16;
/// Largest encoded metadata.
pub(crate) const MAX_META: usize = SLOT_LEN - SLOT_HEADER;
/// Where the committed-index hints start, one page each.
const HINTS_AT: u64 = 2 * SLOT_LEN as u64;
const HINT_HEADER: usize = 16;
/// Largest committed id a hint holds; a longer one goes to the slots.
const MAX_HINT_ID: usize = 256;
const HINT_LEN: usize = HINT_HEADER + MAX_HINT_ID;

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

impl Meta {
    pub(crate) fn encoded_len(&self) -> usize {
        self.encode().len()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_opt(&mut out, None, self.vote.as_deref());
        put_opt(
            &mut out,
            self.committed.as_ref().map(|c| c.0),
            self.committed.as_ref().map(|c| &c.1[..]),
        );
        put_opt(
            &mut out,
            self.purged.as_ref().map(|c| c.0),
            self.purged.as_ref().map(|c| &c.1[..]),
        );
        out
    }

    fn decode(mut bytes: &[u8]) -> Option<Self> {
        let vote = take_opt(&mut bytes, false)?.map(|(_, b)| b);
        let committed = take_opt(&mut bytes, true)?;
        let purged = take_opt(&mut bytes, true)?;
        bytes.is_empty().then_some(Self {
            vote,
            committed,
            purged,
        })
    }
}

fn put_opt(out: &mut Vec<u8>, index: Option<u64>, bytes: Option<&[u8]>) {
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

#[allow(clippy::option_option)]
fn take_opt(bytes: &mut &[u8], with_index: bool) -> Option<Option<(u64, Vec<u8>)>> {
    match take(bytes, 1)?[0] {
        0 => Some(None),
        1 => {
            let index = if with_index {
                u64::from_le_bytes(take(bytes, 8)?.try_into().ok()?)
            } else {
                0
            };
            let len = u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?) as usize;
            Some(Some((index, take(bytes, len)?.to_vec())))
        }
        _ => None,
    }
}

/// The metadata file, open.
pub(crate) struct MetaFile<F> {
    file: F,
    sequence: u64,
    /// Hints written so far; the next goes to hint `hints % 2`.
    hints: u64,
    current: Meta,
}

/// Why the metadata could not be loaded.
#[derive(Debug)]
pub(crate) enum MetaProblem {
    Io(io::Error),
    /// The file exists but neither slot is valid.
    Corrupt,
}

impl<F: StorageFile> MetaFile<F> {
    pub(crate) fn open<S: Storage<File = F>>(storage: &S) -> Result<Self, MetaProblem> {
        let fresh = match storage.open(META_FILE, false) {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(MetaProblem::Io(e)),
        };
        if fresh {
            // Created complete under a temporary name, so a crash never
            // leaves a META that exists but holds no valid slot.
            let tmp = format!("{META_FILE}.tmp");
            let file = storage.open(&tmp, true).map_err(MetaProblem::Io)?;
            file.set_len(0).map_err(MetaProblem::Io)?;
            file.allocate(2 * SLOT_LEN as u64)
                .map_err(MetaProblem::Io)?;
            let mut meta = Self {
                file,
                sequence: 0,
                hints: 0,
                current: Meta::default(),
            };
            meta.store(Meta::default()).map_err(MetaProblem::Io)?;
            storage.rename(&tmp, META_FILE).map_err(MetaProblem::Io)?;
            storage.sync_dir().map_err(MetaProblem::Io)?;
            return Ok(meta);
        }
        let file = storage.open(META_FILE, false).map_err(MetaProblem::Io)?;
        let mut best: Option<(u64, Meta)> = None;
        for slot in 0..2 {
            let mut buf = vec![0u8; SLOT_LEN];
            match file.read_at(&mut buf, (slot * SLOT_LEN) as u64) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => continue,
                Err(e) => return Err(MetaProblem::Io(e)),
            }
            if let Some((seq, meta)) = decode_slot(&buf)
                && best.as_ref().is_none_or(|(s, _)| seq > *s)
            {
                best = Some((seq, meta));
            }
        }
        let (sequence, mut current) = best.ok_or(MetaProblem::Corrupt)?;
        for hint in 0..2 {
            let mut buf = vec![0u8; HINT_LEN];
            match file.read_at(&mut buf, HINTS_AT + hint * SLOT_LEN as u64) {
                Ok(()) => {}
                // Never written (a log from before hints, or only one yet).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => continue,
                Err(e) => return Err(MetaProblem::Io(e)),
            }
            if let Some((index, id)) = decode_hint(&buf)
                && current.committed.as_ref().is_none_or(|(c, _)| index > *c)
            {
                current.committed = Some((index, id));
            }
        }
        Ok(Self {
            file,
            sequence,
            hints: 0,
            current,
        })
    }

    /// Records the committed index and its id as a hint: one positional
    /// write, no sync. Returns `false`, writing nothing, when the id is too
    /// long for a hint.
    pub(crate) fn note_committed(&mut self, index: u64, id: Vec<u8>) -> io::Result<bool> {
        if id.len() > MAX_HINT_ID {
            return Ok(false);
        }
        // Always the full record, so that reading it back is one read of a
        // known length.
        let mut hint = Vec::with_capacity(HINT_LEN);
        hint.extend_from_slice(&[0; 4]);
        hint.extend_from_slice(&(id.len() as u32).to_le_bytes());
        hint.extend_from_slice(&index.to_le_bytes());
        hint.extend_from_slice(&id);
        let crc = crc32c::crc32c(&hint[4..]);
        hint.resize(HINT_LEN, 0);
        hint[..4].copy_from_slice(&crc.to_le_bytes());
        let at = HINTS_AT + (self.hints % 2) * SLOT_LEN as u64;
        self.file.write_at(&hint, at)?;
        self.hints += 1;
        self.current.committed = Some((index, id));
        Ok(true)
    }

    pub(crate) fn get(&self) -> &Meta {
        &self.current
    }

    /// Writes `meta` durably into the older slot.
    pub(crate) fn store(&mut self, meta: Meta) -> io::Result<()> {
        let fields = meta.encode();
        if fields.len() > MAX_META {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("metadata of {} bytes exceeds {MAX_META}", fields.len()),
            ));
        }
        let sequence = self.sequence + 1;
        let mut slot = Vec::with_capacity(SLOT_HEADER + fields.len());
        slot.extend_from_slice(&[0; 4]);
        slot.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        slot.extend_from_slice(&sequence.to_le_bytes());
        slot.extend_from_slice(&fields);
        let crc = crc32c::crc32c(&slot[4..]);
        slot[..4].copy_from_slice(&crc.to_le_bytes());
        let at = (sequence % 2) * SLOT_LEN as u64;
        self.file.write_at(&slot, at)?;
        self.file.sync_data()?;
        self.sequence = sequence;
        self.current = meta;
        Ok(())
    }
}

fn decode_slot(buf: &[u8]) -> Option<(u64, Meta)> {
    let crc = u32::from_le_bytes(buf[..4].try_into().ok()?);
    let len = u32::from_le_bytes(buf[4..8].try_into().ok()?) as usize;
    if len > MAX_META {
        return None;
    }
    if crc32c::crc32c(&buf[4..SLOT_HEADER + len]) != crc {
        return None;
    }
    let seq = u64::from_le_bytes(buf[8..16].try_into().ok()?);
    Meta::decode(&buf[SLOT_HEADER..SLOT_HEADER + len]).map(|m| (seq, m))
}

fn decode_hint(buf: &[u8]) -> Option<(u64, Vec<u8>)> {
    let crc = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?);
    let len = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?) as usize;
    if len > MAX_HINT_ID {
        return None;
    }
    let record = buf.get(4..HINT_HEADER + len)?;
    if crc32c::crc32c(record) != crc {
        return None;
    }
    let index = u64::from_le_bytes(buf.get(8..16)?.try_into().ok()?);
    Some((index, buf[HINT_HEADER..HINT_HEADER + len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_roundtrip() {
        let m = Meta {
            vote: Some(b"v".to_vec()),
            committed: Some((9, b"c".to_vec())),
            purged: None,
        };
        assert_eq!(Meta::decode(&m.encode()), Some(m));
        assert_eq!(
            Meta::decode(&Meta::default().encode()),
            Some(Meta::default())
        );
        assert_eq!(Meta::decode(&[2]), None);
        assert_eq!(Meta::decode(&[1, 1]), None);
    }
}
