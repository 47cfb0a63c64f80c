//! What a published collection looks like in shared memory: one rkyv
//! archive per version, read in place.
//!
//! Keys and values are the collection's own encodings (postcard), back to
//! back in one byte array; a table of spans, sorted by key bytes, finds
//! them. A lookup is a binary search over that table comparing bytes, so a
//! reader decodes nothing but the one value it asked for, and user types
//! need no rkyv support.

/// One published version of a collection.
#[derive(rkyv::Archive, rkyv::Serialize)]
pub(super) struct Snapshot {
    /// The collection's version (log index) this is the state at.
    pub(crate) version: u64,
    /// The state machine's signature: a reader of another type is refused.
    pub(crate) signature: String,
    /// Every key and value, encoded.
    pub(crate) bytes: Vec<u8>,
    /// Where each entry's key and value are in `bytes`, sorted by key.
    pub(crate) spans: Vec<Span>,
    /// When it was published, in milliseconds since the Unix epoch: how old
    /// the data is, once its publisher has gone.
    pub(crate) published_ms: u64,
    /// The collection was dropped: the last snapshot of the region, empty.
    pub(crate) dropped: bool,
}

/// Entry `i`: its key is `bytes[key..value]`, its value `bytes[value..end]`.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Clone, Copy)]
pub(super) struct Span {
    pub(crate) key: u32,
    pub(crate) value: u32,
    pub(crate) end: u32,
}

impl ArchivedSnapshot {
    /// Entry `i`'s key and value, if its span lies inside `bytes` (a span
    /// another process wrote may not).
    pub(super) fn entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let span = self.spans.get(i)?;
        let (key, value, end) = (
            span.key.to_native() as usize,
            span.value.to_native() as usize,
            span.end.to_native() as usize,
        );
        if key > value || value > end {
            return None;
        }
        Some((self.bytes.get(key..value)?, self.bytes.get(value..end)?))
    }

    /// Checks every span lies inside `bytes` and the keys are strictly
    /// increasing: what lookups rely on. Run once per version.
    pub(super) fn check(&self) -> Result<(), String> {
        let mut previous: Option<&[u8]> = None;
        for i in 0..self.spans.len() {
            let (key, _) = self
                .entry(i)
                .ok_or_else(|| format!("entry {i} lies outside the snapshot's bytes"))?;
            if previous.is_some_and(|p| p >= key) {
                return Err(format!("entry {i} is out of key order"));
            }
            previous = Some(key);
        }
        Ok(())
    }

    /// The index of the entry with this encoded key.
    pub(super) fn find(&self, key: &[u8]) -> Option<usize> {
        let (mut low, mut high) = (0, self.spans.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let (k, _) = self.entry(mid)?;
            match k.cmp(key) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

/// Keys and values as their encoded bytes.
pub(crate) type EncodedEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// A published snapshot's bytes as a reader in another process gets them:
/// validated as an archive, its entries checked, then every entry (key and
/// value bytes) as a lookup by its key finds it. What the fuzz target of
/// local reads drives.
pub(crate) fn read_archived(bytes: &[u8]) -> Result<(u64, EncodedEntries), String> {
    // Shared memory hands readers aligned bytes; so does this copy.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    let archived = rkyv::access::<ArchivedSnapshot, rkyv::rancor::Error>(&aligned)
        .map_err(|e| e.to_string())?;
    archived.check()?;
    let mut entries = Vec::with_capacity(archived.spans.len());
    for i in 0..archived.spans.len() {
        let (key, value) = archived
            .entry(i)
            .ok_or("checked, yet an entry is outside")?;
        if archived.find(key) != Some(i) {
            return Err(format!("checked, yet entry {i} is not found by its key"));
        }
        entries.push((key.to_vec(), value.to_vec()));
    }
    Ok((archived.version.to_native(), entries))
}
