//! Removing the end of the log (truncate) and its start (purge), run by
//! the writer once every earlier append is durable. Both record in the
//! metadata what goes before anything is removed, so that a crash never
//! leaves a hole that recovery would refuse.

use super::lock::write;
use super::shared::Shared;
use super::syncer::Durable;
use crate::error::UpdateError;
use crate::record::MARKER_LEN;
use crate::segment;
use crate::storage::Storage;
use std::io;

/// Deletes later segments first (newest first, after recording in the
/// metadata that they go), then cuts the segment holding `from` behind an
/// End marker (see `segment::cut`), so the removed records cannot be found
/// again.
pub(crate) fn truncate_now<S: Storage>(shared: &Shared<S>, from: u64) -> io::Result<()> {
    let mut idx = write(&shared.index);
    if from >= idx.next {
        return Ok(());
    }
    let first = idx.first;
    let keep = idx
        .segments
        .iter()
        .position(|s| s.first >= from && s.first > first)
        .unwrap_or(idx.segments.len());
    if keep < idx.segments.len() {
        let last = idx.segments[..keep].last().map(|s| s.first);
        shared.change_layout(|l| l.last_segment = last)?;
        while idx.segments.len() > keep {
            if let Some(s) = idx.segments.pop() {
                shared.storage.remove(&s.name)?;
            }
        }
        shared.storage.sync_dir()?;
    }
    if let Some(s) = idx.segments.last_mut() {
        let keep = usize::try_from(from.saturating_sub(s.first)).unwrap_or(usize::MAX);
        let at = s.offsets.get(keep).copied();
        if at.is_some() || s.dirty_end > s.end {
            let at = at.unwrap_or(s.end);
            let next = s.first + keep.min(s.offsets.len()) as u64;
            let dead_end = s.end.max(s.dirty_end);
            segment::cut(&*s.file, s.salt, at, next, dead_end, s.capacity)?;
            s.offsets.truncate(keep);
            s.end = at;
            s.dirty_end = (at + MARKER_LEN as u64).min(s.capacity).max(at);
        }
        // Everything left is durable now: the cut synced it, or an earlier
        // sync did.
        shared.sync.set_synced(Durable {
            segment: s.first,
            end: s.end,
        });
    }
    idx.next = from;
    Ok(())
}

/// Records the purge in the metadata first, then deletes whole segments
/// that hold only purged entries (recovery finishes an interrupted delete).
pub(crate) fn purge_now<S: Storage>(
    shared: &Shared<S>,
    upto: u64,
    id: Vec<u8>,
) -> Result<(), UpdateError> {
    let mut idx = write(&shared.index);
    let beyond = upto >= idx.next;
    let doomed = (0..idx.segments.len())
        .take_while(|&i| match idx.segments.get(i + 1) {
            Some(next) => next.first <= upto + 1,
            None => beyond,
        })
        .count();
    let all = doomed == idx.segments.len();
    shared.change_meta(|m, l| {
        m.purged = Some((upto, id));
        if all {
            l.last_segment = None;
        }
    })?;
    let result = (|| {
        for s in idx.segments.drain(..doomed) {
            shared.storage.remove(&s.name)?;
        }
        if doomed > 0 {
            shared.storage.sync_dir()?;
        }
        Ok::<_, io::Error>(())
    })();
    idx.first = idx.first.max(upto + 1);
    if idx.next < idx.first {
        idx.next = idx.first;
    }
    result.map_err(|e| UpdateError::Failed(shared.failure.fail(e)))
}
