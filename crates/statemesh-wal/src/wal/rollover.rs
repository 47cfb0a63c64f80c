//! Where the active segment ends: rolling over to a new segment (the
//! prepared spare if there is one), or growing an empty one for an entry
//! larger than it.

use super::lock::{read, write};
use super::shared::Shared;
use crate::record::Salt;
use crate::segment::{self, SEGMENT_HEADER_LEN, fill_zeros};
use crate::storage::{Storage, StorageFile};
use std::io;

/// Makes the empty active segment at least `need` bytes: zeros first, then
/// the header that records the new size, so the file is never shorter
/// than its header says.
pub(crate) fn grow_active<S: Storage>(shared: &Shared<S>, need: u64) -> io::Result<()> {
    let mut idx = write(&shared.index);
    if let Some(s) = idx.segments.last_mut() {
        let capacity = need.max(shared.options.segment_size);
        s.file.allocate(capacity)?;
        fill_zeros(&*s.file, s.capacity, capacity)?;
        s.file.sync_data()?;
        let header = segment::Header {
            first: s.first,
            capacity,
            salt: s.salt.seed(),
        };
        s.file.write_at(&segment::encode_header(&header), 0)?;
        s.file.sync_data()?;
        s.capacity = capacity;
        s.map = s.file.map(capacity)?;
    }
    Ok(())
}

/// Seals the active segment (its data synced, so no later segment can be
/// durable while an earlier one is torn) and starts a new one at `first`.
pub(crate) fn roll<S: Storage>(shared: &Shared<S>, first: u64, need: u64) -> io::Result<()> {
    let (active, previous) = {
        let idx = read(&shared.index);
        let active = idx.active().map(|(file, _)| file);
        (active, idx.segments.last().map(|s| s.capacity))
    };
    if let Some(file) = active {
        file.sync_data()?;
    }
    let size = shared.options.next_segment_size(previous);
    let capacity = (SEGMENT_HEADER_LEN + need).max(size);
    let spare = shared.spare.take(&shared.storage, capacity);
    let header = segment::Header {
        first,
        capacity,
        salt: Salt::random().seed(),
    };
    let seg = match spare {
        Some((tmp, file)) => segment::install(&shared.storage, tmp, file, header)?,
        None => segment::create(&shared.storage, header)?,
    };
    shared
        .spare
        .want(shared.options.next_segment_size(Some(size)));
    // Recorded before anything goes into it: from now on recovery knows the
    // segment must exist.
    shared.change_layout(|l| {
        l.origin.get_or_insert(first);
        l.last_segment = Some(first);
    })?;
    let mut idx = write(&shared.index);
    if idx.segments.is_empty() && idx.next == idx.first {
        idx.first = first;
        idx.next = first;
    }
    idx.segments.push(seg);
    Ok(())
}
