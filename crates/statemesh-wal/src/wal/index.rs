//! What readers see: the segments and the offset of every written (not
//! necessarily synced) record, behind one `RwLock`. A read is one short
//! read-locked lookup (a `u64` per entry) and one copy, checked against its
//! CRC; it never waits for appends.

use super::lock::read;
use super::syncer::Durable;
use crate::error::ReadError;
use crate::record::{self, Salt};
use crate::segment::Segment;
use crate::storage::{Storage, StorageFile};
use std::sync::{Arc, RwLock};

pub(crate) struct Index<F> {
    pub(crate) segments: Vec<Segment<F>>,
    /// First readable index (after purge).
    pub(crate) first: u64,
    /// One past the last written index.
    pub(crate) next: u64,
}

/// Where the active segment stands.
pub(crate) struct Position {
    pub(crate) end: u64,
    /// Zero when there is no segment yet.
    pub(crate) capacity: u64,
    pub(crate) entries: usize,
    pub(crate) salt: Salt,
}

impl<F> Index<F> {
    /// The active segment's file and how far it is written.
    pub(crate) fn active(&self) -> Option<(Arc<F>, Durable)> {
        self.segments.last().map(|s| {
            let upto = Durable {
                segment: s.first,
                end: s.end,
            };
            (Arc::clone(&s.file), upto)
        })
    }

    pub(crate) fn position(&self) -> Position {
        self.segments.last().map_or(
            Position {
                end: 0,
                capacity: 0,
                entries: 0,
                salt: Salt::new(0),
            },
            |s| Position {
                end: s.end,
                capacity: s.capacity,
                entries: s.offsets.len(),
                salt: s.salt,
            },
        )
    }
}

/// Reads entry `index`: `None` if it is purged, truncated or not yet
/// written.
pub(crate) fn get<S: Storage>(
    storage: &S,
    index_lock: &RwLock<Index<S::File>>,
    index: u64,
) -> Result<Option<Vec<u8>>, ReadError> {
    let idx = read(index_lock);
    if index < idx.first || index >= idx.next {
        return Ok(None);
    }
    let Some(pos) = idx
        .segments
        .partition_point(|s| s.first <= index)
        .checked_sub(1)
    else {
        return Ok(None);
    };
    let seg = &idx.segments[pos];
    let Some(i) = usize::try_from(index - seg.first).ok() else {
        return Ok(None);
    };
    let Some(&offset) = seg.offsets.get(i) else {
        return Ok(None);
    };
    // Up to the next record, or the segment's end: a batch marker may
    // follow the record, and `record::payload` leaves it out.
    let end = seg.offsets.get(i + 1).copied().unwrap_or(seg.end);
    let len = end - offset;
    let salt = seg.salt;
    // Copied under the read lock: see `ReadMap` for why that matters.
    let record = match seg.map.as_ref().and_then(|m| m.copy(offset, len)) {
        Some(bytes) => bytes,
        None => {
            let (file, name) = (Arc::clone(&seg.file), seg.name.clone());
            drop(idx);
            return read_record(storage, &*file, &name, salt, index, offset, len).map(Some);
        }
    };
    record::payload(record, salt, index)
        .map(Some)
        .ok_or_else(|| ReadError::Corrupt {
            path: storage.path_of(&seg.name),
            index,
            offset,
        })
}

fn read_record<S: Storage>(
    storage: &S,
    file: &S::File,
    name: &str,
    salt: Salt,
    index: u64,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, ReadError> {
    let corrupt = || ReadError::Corrupt {
        path: storage.path_of(name),
        index,
        offset,
    };
    let mut buf = vec![0u8; usize::try_from(len).map_err(|_| corrupt())?];
    file.read_at(&mut buf, offset)
        .map_err(|source| ReadError::Io {
            path: storage.path_of(name),
            source,
        })?;
    record::payload(buf, salt, index).ok_or_else(corrupt)
}

/// Iterator over a range of entries; see [`Wal::iter`](crate::Wal::iter).
pub struct Iter<'a, S: Storage> {
    storage: &'a S,
    index: &'a RwLock<Index<S::File>>,
    next: u64,
    end: u64,
}

impl<'a, S: Storage> Iter<'a, S> {
    pub(crate) fn new(
        storage: &'a S,
        index: &'a RwLock<Index<S::File>>,
        start: u64,
        end: u64,
    ) -> Self {
        let next = start.max(read(index).first);
        Self {
            storage,
            index,
            next,
            end,
        }
    }
}

impl<S: Storage> std::fmt::Debug for Iter<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("next", &self.next)
            .field("end", &self.end)
            .finish()
    }
}

impl<S: Storage> Iterator for Iter<'_, S> {
    type Item = Result<(u64, Vec<u8>), ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        match get(self.storage, self.index, index) {
            Ok(Some(bytes)) => {
                self.next += 1;
                Some(Ok((index, bytes)))
            }
            Ok(None) => None,
            Err(e) => {
                self.next = self.end;
                Some(Err(e))
            }
        }
    }
}
