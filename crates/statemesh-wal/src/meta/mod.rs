//! The log's metadata: vote, committed id, last purged id, and where the
//! segments start and end, in one file of four pages.
//!
//! ```text
//! slot (the same copy at 0 and at 4096):
//!  0            8       12      16      20      24            32
//! +------------+-------+-------+-------+-------+-------------+------------ - -
//! | "SMWALMET" | ver=2 | crc   | len   | 0     | sequence    | fields (len bytes)
//! +------------+-------+-------+-------+-------+-------------+------------ - -
//! ```
//!
//! `crc` is the CRC32C of the slot's other bytes up to the end of the
//! fields. An update writes the first slot and syncs, then the second and
//! syncs, both with the same new sequence: so once it has returned, both
//! slots hold it, and damage to either one at rest still leaves the newest
//! copy. A crash part way leaves the first slot new and the second old, or
//! the first torn and the second old; opening takes the valid slot with the
//! higher sequence, which is the old value only when the update never
//! returned. Two valid slots with the same sequence and different fields
//! cannot come from this protocol: the file is then refused.
//!
//! **Versions.** Bytes 0 to 20 of a slot (magic, version, `crc`, `len`)
//! and what `crc` covers are the same in every format version; a later
//! version may change everything else. So a slot whose magic and checksum
//! check out but whose version is not this build's was written whole by
//! another build, not damaged: the file is refused with that version
//! (`UnsupportedVersion`), even when the other slot is valid, since the
//! other build's slot may hold the newer vote. Version 1 (no magic, one
//! slot written per update) is recognised and refused the same way.
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

mod fields;

pub use self::fields::Meta;
pub(crate) use self::fields::{Layout, encoded_len};

use self::fields::{decode_fields, encode_fields};
use crate::storage::{Storage, StorageFile};
use std::io;

/// The file name of the metadata file.
pub(crate) const META_FILE: &str = "META";
const MAGIC: [u8; 8] = *b"SMWALMET";
/// The metadata format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 2;
const SLOT_LEN: usize = 4096;
const SLOT_HEADER: usize = 32;
/// Largest encoded metadata.
pub(crate) const MAX_META: usize = SLOT_LEN - SLOT_HEADER;
/// Where the committed-index hints start, one page each.
const HINTS_AT: usize = 2 * SLOT_LEN;
const HINT_HEADER: usize = 16;
/// Largest committed id a hint holds; a longer one goes to the slots.
const MAX_HINT_ID: usize = 256;
const HINT_LEN: usize = HINT_HEADER + MAX_HINT_ID;
/// The size the file is created with: two slots and two hint pages.
const FILE_LEN: usize = 4 * SLOT_LEN;

fn slot_crc(slot: &[u8], len: usize) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&slot[..12]), &slot[16..SLOT_HEADER + len])
}

fn encode_slot(sequence: u64, fields: &[u8]) -> Vec<u8> {
    let mut slot = Vec::with_capacity(SLOT_HEADER + fields.len());
    slot.extend_from_slice(&MAGIC);
    slot.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    slot.extend_from_slice(&[0; 4]);
    slot.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    slot.extend_from_slice(&[0; 4]);
    slot.extend_from_slice(&sequence.to_le_bytes());
    slot.extend_from_slice(fields);
    let crc = slot_crc(&slot, fields.len());
    slot[12..16].copy_from_slice(&crc.to_le_bytes());
    slot
}

/// A valid slot: its sequence and its fields, raw and decoded.
struct Slot {
    sequence: u64,
    fields: Vec<u8>,
    meta: Meta,
    layout: Layout,
}

/// What one slot's bytes hold.
enum SlotRead {
    /// A valid slot of this format version.
    Valid(Slot),
    /// A whole slot of another format version: its frame checks out.
    Version(u32),
    /// Nothing to trust: damaged, torn, zeros, or version 1.
    Invalid,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn decode_slot(buf: &[u8]) -> SlotRead {
    if buf[..8] != MAGIC {
        return SlotRead::Invalid;
    }
    let len = u32_at(buf, 16) as usize;
    if len > MAX_META || slot_crc(buf, len) != u32_at(buf, 12) {
        return SlotRead::Invalid;
    }
    // Checked only once the checksum vouches for it: a flipped version bit
    // is damage, not another version.
    let version = u32_at(buf, 8);
    if version != FORMAT_VERSION {
        return SlotRead::Version(version);
    }
    if u32_at(buf, 20) != 0 {
        return SlotRead::Invalid;
    }
    let fields = buf[SLOT_HEADER..SLOT_HEADER + len].to_vec();
    let Some((meta, layout)) = decode_fields(&fields) else {
        return SlotRead::Invalid;
    };
    let mut sequence = [0u8; 8];
    sequence.copy_from_slice(&buf[24..32]);
    let sequence = u64::from_le_bytes(sequence);
    // The next update writes sequence + 1. This log never reaches u64::MAX
    // (that many updates), and wrapping to 0 would make the stale slot win.
    if sequence == u64::MAX {
        return SlotRead::Invalid;
    }
    SlotRead::Valid(Slot {
        sequence,
        fields,
        meta,
        layout,
    })
}

/// Whether `buf` holds a valid slot of format version 1 (a checksum at 0
/// over a length, a sequence and the fields; no magic).
fn is_version_1(buf: &[u8]) -> bool {
    let len = u32_at(buf, 4) as usize;
    len <= SLOT_LEN - 16 && crc32c::crc32c(&buf[4..16 + len]) == u32_at(buf, 0)
}

fn decode_hint(buf: &[u8]) -> Option<(u64, Vec<u8>)> {
    let len = u32_at(buf, 4) as usize;
    if len > MAX_HINT_ID {
        return None;
    }
    if crc32c::crc32c(&buf[4..HINT_HEADER + len]) != u32_at(buf, 0) {
        return None;
    }
    let index = u64::from_le_bytes(buf[8..16].try_into().ok()?);
    Some((index, buf[HINT_HEADER..HINT_HEADER + len].to_vec()))
}

/// Why the metadata could not be loaded.
#[derive(Debug)]
pub(crate) enum MetaProblem {
    Io(io::Error),
    /// No slot can be trusted; why.
    Corrupt(&'static str),
    /// A valid slot of another format version.
    Version(u32),
}

/// The metadata as read from an existing file.
pub(crate) struct Loaded {
    pub(crate) meta: Meta,
    pub(crate) layout: Layout,
    sequence: u64,
    /// Both slots hold the same valid copy; otherwise opening writes the
    /// chosen one to both again.
    pub(crate) whole: bool,
}

/// Reads the metadata file. Changes nothing.
pub(crate) fn load<F: StorageFile>(file: &F) -> Result<Loaded, MetaProblem> {
    // A file cut short reads as zeros where it ends, which no slot or hint
    // checks out against.
    let size = file.size().map_err(MetaProblem::Io)?;
    let mut buf = vec![0u8; FILE_LEN];
    let have = usize::try_from(size).unwrap_or(FILE_LEN).min(FILE_LEN);
    file.read_at(&mut buf[..have], 0).map_err(MetaProblem::Io)?;
    let (a, b) = (
        decode_slot(&buf[..SLOT_LEN]),
        decode_slot(&buf[SLOT_LEN..2 * SLOT_LEN]),
    );
    // Another build's slot, whatever the other one holds: that build may
    // have written the newer value, and this one cannot read it.
    for slot in [&a, &b] {
        if let SlotRead::Version(found) = slot {
            return Err(MetaProblem::Version(*found));
        }
    }
    let valid = |s: SlotRead| match s {
        SlotRead::Valid(s) => Some(s),
        SlotRead::Version(_) | SlotRead::Invalid => None,
    };
    let (slot, whole) = match (valid(a), valid(b)) {
        (None, None) => {
            if is_version_1(&buf[..SLOT_LEN]) || is_version_1(&buf[SLOT_LEN..2 * SLOT_LEN]) {
                return Err(MetaProblem::Version(1));
            }
            return Err(MetaProblem::Corrupt("neither of its two slots is valid"));
        }
        (Some(s), None) | (None, Some(s)) => (s, false),
        (Some(a), Some(b)) if a.sequence == b.sequence => {
            if a.fields != b.fields {
                return Err(MetaProblem::Corrupt(
                    "its two slots hold different values under the same sequence",
                ));
            }
            (a, true)
        }
        (Some(a), Some(b)) => (if a.sequence > b.sequence { a } else { b }, false),
    };
    let mut meta = slot.meta;
    for hint in 0..2 {
        let at = HINTS_AT + hint * SLOT_LEN;
        if let Some((index, id)) = decode_hint(&buf[at..at + HINT_LEN])
            && meta.committed.as_ref().is_none_or(|(c, _)| index > *c)
        {
            meta.committed = Some((index, id));
        }
    }
    Ok(Loaded {
        meta,
        layout: slot.layout,
        sequence: slot.sequence,
        whole,
    })
}

/// The metadata file, open.
pub(crate) struct MetaFile<F> {
    file: F,
    sequence: u64,
    /// Hints written so far; the next goes to hint `hints % 2`.
    hints: u64,
    current: Meta,
    layout: Layout,
}

impl<F: StorageFile> MetaFile<F> {
    /// Creates the metadata of a new log, complete under a temporary name
    /// and then renamed, so a crash never leaves a `META` that exists but
    /// holds no valid slot.
    pub(crate) fn create<S: Storage<File = F>>(storage: &S) -> io::Result<Self> {
        let tmp = format!("{META_FILE}.tmp");
        let file = storage.open(&tmp, true)?;
        file.set_len(0)?;
        file.allocate(FILE_LEN as u64)?;
        let mut meta = Self::loaded(
            file,
            Loaded {
                meta: Meta::default(),
                layout: Layout::default(),
                sequence: 0,
                whole: false,
            },
        );
        meta.store(Meta::default(), Layout::default())?;
        storage.rename(&tmp, META_FILE)?;
        storage.sync_dir()?;
        Ok(meta)
    }

    /// The metadata file `file`, read as `loaded`.
    pub(crate) fn loaded(file: F, loaded: Loaded) -> Self {
        Self {
            file,
            sequence: loaded.sequence,
            hints: 0,
            current: loaded.meta,
            layout: loaded.layout,
        }
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
        let at = HINTS_AT as u64 + (self.hints % 2) * SLOT_LEN as u64;
        self.file.write_at(&hint, at)?;
        self.hints += 1;
        self.current.committed = Some((index, id));
        Ok(true)
    }

    pub(crate) fn get(&self) -> &Meta {
        &self.current
    }

    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// Writes `meta` and `layout` durably into both slots, one after the
    /// other.
    pub(crate) fn store(&mut self, meta: Meta, layout: Layout) -> io::Result<()> {
        let fields = encode_fields(&meta, &layout);
        if fields.len() > MAX_META {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("metadata of {} bytes exceeds {MAX_META}", fields.len()),
            ));
        }
        // u64::MAX is never written, so that it is never read (see
        // `decode_slot`); only a file this log did not write gets here.
        let Some(sequence) = self.sequence.checked_add(1).filter(|&s| s < u64::MAX) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the metadata's update sequence is exhausted",
            ));
        };
        let slot = encode_slot(sequence, &fields);
        for at in [0, SLOT_LEN as u64] {
            self.file.write_at(&slot, at)?;
            self.file.sync_data()?;
        }
        self.sequence = sequence;
        self.current = meta;
        self.layout = layout;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStorage;

    fn sample() -> (Meta, Layout) {
        (
            Meta {
                vote: Some(b"v".to_vec()),
                committed: Some((9, b"c".to_vec())),
                purged: None,
            },
            Layout {
                origin: Some(1),
                last_segment: Some(77),
            },
        )
    }

    #[test]
    fn fields_roundtrip() {
        let (m, l) = sample();
        assert_eq!(decode_fields(&encode_fields(&m, &l)), Some((m, l)));
        let empty = (Meta::default(), Layout::default());
        assert_eq!(
            decode_fields(&encode_fields(&empty.0, &empty.1)),
            Some(empty)
        );
        assert!(decode_fields(&[2]).is_none());
        assert!(decode_fields(&[1, 1]).is_none());
    }

    fn stored() -> (MemoryStorage, crate::MemoryFile) {
        let storage = MemoryStorage::new();
        let mut file = MetaFile::create(&storage).unwrap();
        let (m, l) = sample();
        file.store(m, l).unwrap();
        let f = storage.open(META_FILE, false).unwrap();
        (storage, f)
    }

    #[test]
    fn a_store_fills_both_slots_and_any_one_flip_keeps_the_newest() {
        let (_storage, f) = stored();
        let loaded = load(&f).unwrap();
        assert!(loaded.whole);
        assert_eq!((loaded.meta.clone(), loaded.layout), sample());
        let mut bytes = vec![0u8; FILE_LEN];
        f.read_at(&mut bytes, 0).unwrap();
        // Every bit of both slots' used bytes: the newest value still loads.
        let used = SLOT_HEADER + encode_fields(&sample().0, &sample().1).len();
        for slot in [0, SLOT_LEN] {
            for at in slot..slot + used {
                for bit in 0..8 {
                    let mut bad = bytes.clone();
                    bad[at] ^= 1 << bit;
                    f.write_at(&bad, 0).unwrap();
                    let loaded = load(&f).unwrap();
                    assert!(!loaded.whole, "{at}");
                    assert_eq!((loaded.meta, loaded.layout), sample(), "{at}.{bit}");
                }
            }
        }
    }

    #[test]
    fn a_file_without_a_valid_slot_is_refused_and_version_1_is_named() {
        let (_storage, f) = stored();
        f.write_at(&[0xFF], 20).unwrap();
        f.write_at(&[0xFF], SLOT_LEN as u64 + 20).unwrap();
        assert!(matches!(load(&f), Err(MetaProblem::Corrupt(_))));
        // A version 1 slot: crc, len, sequence, fields.
        let fields = [0u8, 0, 0];
        let mut old = vec![0u8; 16];
        old[4..8].copy_from_slice(&(fields.len() as u32).to_le_bytes());
        old[8..16].copy_from_slice(&1u64.to_le_bytes());
        old.extend_from_slice(&fields);
        let crc = crc32c::crc32c(&old[4..]);
        old[..4].copy_from_slice(&crc.to_le_bytes());
        old.resize(SLOT_LEN, 0);
        f.write_at(&old, 0).unwrap();
        assert!(matches!(load(&f), Err(MetaProblem::Version(1))));
    }

    /// A whole slot as a build writing format `version` would frame it.
    fn slot_of_version(version: u32, sequence: u64) -> Vec<u8> {
        let (m, l) = sample();
        let mut slot = encode_slot(sequence, &encode_fields(&m, &l));
        slot[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = slot_crc(&slot, slot.len() - SLOT_HEADER);
        slot[12..16].copy_from_slice(&crc.to_le_bytes());
        slot
    }

    #[test]
    fn a_slot_of_another_version_is_refused_even_beside_a_valid_one() {
        for version in [3, u32::MAX, 0] {
            let (_storage, f) = stored();
            // A newer build updated the first slot and stopped: its value
            // may be the newest, so the older valid slot is not taken.
            f.write_at(&slot_of_version(version, 3), 0).unwrap();
            assert!(
                matches!(load(&f), Err(MetaProblem::Version(v)) if v == version),
                "{version}"
            );
            f.write_at(&slot_of_version(version, 3), SLOT_LEN as u64)
                .unwrap();
            assert!(matches!(load(&f), Err(MetaProblem::Version(v)) if v == version));
        }
    }

    /// The next store would compute `sequence + 1`: a checksummed slot at
    /// u64::MAX panicked the open that rewrote the slots.
    #[test]
    fn a_slot_whose_sequence_cannot_be_followed_is_invalid() {
        let (_storage, f) = stored();
        let (m, l) = sample();
        let mut other = m.clone();
        other.vote = Some(b"not this one".to_vec());
        f.write_at(&encode_slot(u64::MAX, &encode_fields(&other, &l)), 0)
            .unwrap();
        let loaded = load(&f).unwrap();
        assert_eq!((loaded.meta.clone(), loaded.layout), (m, l));
        let mut file = MetaFile::loaded(f.clone(), loaded);
        file.store(Meta::default(), Layout::default()).unwrap();
        f.write_at(
            &encode_slot(u64::MAX, &encode_fields(&other, &l)),
            SLOT_LEN as u64,
        )
        .unwrap();
        f.write_at(&encode_slot(u64::MAX, &encode_fields(&other, &l)), 0)
            .unwrap();
        assert!(matches!(load(&f), Err(MetaProblem::Corrupt(_))));
        // One below it loads, and the update after it is refused.
        f.write_at(&encode_slot(u64::MAX - 1, &encode_fields(&other, &l)), 0)
            .unwrap();
        let mut file = MetaFile::loaded(f.clone(), load(&f).unwrap());
        assert!(file.store(Meta::default(), Layout::default()).is_err());
    }

    #[test]
    fn a_version_field_that_fails_the_checksum_is_damage() {
        let (_storage, f) = stored();
        let mut slot = slot_of_version(3, 3);
        slot[12] ^= 1;
        f.write_at(&slot, 0).unwrap();
        let loaded = load(&f).unwrap();
        assert_eq!((loaded.meta, loaded.layout), sample());
    }

    #[test]
    fn slots_that_disagree_under_one_sequence_are_refused() {
        let (_storage, f) = stored();
        let (mut m, l) = sample();
        m.vote = Some(b"w".to_vec());
        // Only the second slot, under the sequence both slots hold (2).
        let slot = encode_slot(2, &encode_fields(&m, &l));
        f.write_at(&slot, SLOT_LEN as u64).unwrap();
        assert!(matches!(load(&f), Err(MetaProblem::Corrupt(_))));
    }
}
