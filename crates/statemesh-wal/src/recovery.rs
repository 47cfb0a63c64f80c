//! Opening a log: find the segments, check them, cut a torn end, rebuild the
//! index, and refuse (with the file and offset) anything that would lose
//! acknowledged entries silently.
//!
//! The cases, one at a time:
//!
//! * **Torn end.** A crash can leave the end of the active (last) segment
//!   with part of the last rounds of writes: at most two batches, since the
//!   writer writes round *k + 1* while round *k* syncs. Those were never
//!   acknowledged under `Always`. The first invalid record ends the log; if
//!   a valid later record exists more than two batches further on, the bad
//!   bytes cannot be a torn end and the log is refused as `Corrupt`. A cut
//!   end is zeroed (cut, then re-allocated), so the bytes after it can never
//!   be mistaken for records by a later recovery.
//! * **Damage in a sealed segment.** A segment is synced before the next one
//!   is started, so everything in it was durable: any invalid record that
//!   is not followed by zeros only is `Corrupt`.
//! * **Hole.** Consecutive segments must continue each other's indices;
//!   otherwise `MissingSegment`.
//! * **Interrupted purge or creation.** Segments entirely below the purged
//!   id are deleted (the metadata was updated first); `*.tmp` files are
//!   unfinished creations and are deleted.
//! * **Committed entries missing.** If the metadata's committed index is
//!   past the end of the log, recovery fails with `Lost`.

use crate::error::OpenError;
use crate::meta::Meta;
use crate::segment::{self, SEGMENT_HEADER_LEN, Tail};
use crate::storage::{Storage, StorageFile};
use crate::wal::{Recovered, Segment, WalOptions, header_error};
use std::io;

pub(crate) fn recover<S: Storage>(
    storage: &S,
    options: &WalOptions,
    meta: &Meta,
) -> Result<Recovered<S::File>, OpenError> {
    let io_err = |name: &str| {
        let path = storage.path_of(name);
        move |source: io::Error| OpenError::Io { path, source }
    };
    let mut firsts = Vec::new();
    for name in storage.list().map_err(io_err(""))? {
        if name.ends_with(".tmp") {
            storage.remove(&name).map_err(io_err(&name))?;
        } else if let Some(first) = segment::parse_name(&name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();

    let purged_next = meta.purged.as_ref().map(|p| p.0.saturating_add(1));
    // Segments wholly before the purge point: an interrupted purge.
    if let Some(keep_from) = purged_next {
        let mut removed = false;
        while firsts.len() >= 2 && firsts[1] <= keep_from {
            let name = segment::file_name(firsts.remove(0));
            storage.remove(&name).map_err(io_err(&name))?;
            removed = true;
        }
        if firsts.len() == 1 && firsts[0] < keep_from {
            // The only segment may hold purged entries only; it is kept as
            // the active segment if it reaches the purge point, below.
        }
        if removed {
            storage.sync_dir().map_err(io_err(""))?;
        }
    }

    let torn_window = 2 * options.max_batch_bytes as u64 + 2 * SEGMENT_HEADER_LEN;
    let mut segments: Vec<Segment<S::File>> = Vec::new();
    let mut next: Option<u64> = None;
    let count = firsts.len();
    let mut cut_after: Option<usize> = None;
    for (pos, &first) in firsts.iter().enumerate() {
        let name = segment::file_name(first);
        let path = storage.path_of(&name);
        if let Some(expected) = next
            && first != expected
        {
            if options.repair {
                cut_after = Some(pos);
                break;
            }
            return Err(OpenError::MissingSegment {
                path,
                expected,
                found: first,
            });
        }
        let file = storage.open(&name, false).map_err(io_err(&name))?;
        let len = file.size().map_err(io_err(&name))?;
        let mut bytes = vec![
            0u8;
            usize::try_from(len).map_err(|_| OpenError::CorruptHeader {
                path: path.clone(),
                detail: "file too large".into(),
            })?
        ];
        file.read_at(&mut bytes, 0).map_err(io_err(&name))?;
        segment::check_header(&bytes, first).map_err(|p| header_error(path.clone(), p))?;
        let scan = segment::scan(&bytes, first);
        let last = pos + 1 == count;
        let torn = match scan.tail {
            Tail::Clean => false,
            Tail::Garbage { later: None } if last => true,
            Tail::Garbage { later: Some(at) }
                if last && at.saturating_sub(scan.end) <= torn_window =>
            {
                true
            }
            Tail::Garbage { .. } => {
                if !options.repair {
                    return Err(OpenError::Corrupt {
                        path,
                        offset: scan.end,
                        index: first + scan.offsets.len() as u64,
                    });
                }
                cut_after = Some(pos + 1);
                true
            }
        };
        if torn {
            // Zero the tail for good: cut, then allocate and write zeros again.
            let capacity = len.max(options.segment_size);
            file.set_len(scan.end).map_err(io_err(&name))?;
            file.allocate(capacity).map_err(io_err(&name))?;
            crate::wal::fill_zeros(&file, scan.end, capacity).map_err(io_err(&name))?;
            file.sync_data().map_err(io_err(&name))?;
        }
        let capacity = file.size().map_err(io_err(&name))?.max(scan.end);
        let seg = Segment::recovered(first, name.clone(), file, scan.offsets, scan.end, capacity)
            .map_err(io_err(&name))?;
        next = Some(seg.first() + seg.len());
        segments.push(seg);
        if cut_after.is_some() {
            break;
        }
    }
    if let Some(from) = cut_after {
        // Repair: everything after the damage goes.
        for &first in firsts.iter().skip(from) {
            let name = segment::file_name(first);
            storage.remove(&name).map_err(io_err(&name))?;
        }
        storage.sync_dir().map_err(io_err(""))?;
    }

    let (first, next) = match (segments.first(), next) {
        (Some(s), Some(n)) => {
            let first = purged_next.map_or(s.first(), |p| p.max(s.first()));
            (first, n.max(first))
        }
        _ => {
            let start = purged_next.unwrap_or(options.first_index);
            (start, start)
        }
    };
    // An empty active segment that lies wholly before the purge point would
    // make the next append land at the wrong place: drop it.
    if let Some(s) = segments.last()
        && s.len() == 0
        && s.first() != next
    {
        let name = segment::file_name(s.first());
        storage.remove(&name).map_err(io_err(&name))?;
        storage.sync_dir().map_err(io_err(""))?;
        segments.pop();
    }
    if segments.len() == 1 && segments[0].first() + segments[0].len() < first {
        // Only purged entries remain: start over at the purge point.
        let name = segment::file_name(segments[0].first());
        storage.remove(&name).map_err(io_err(&name))?;
        storage.sync_dir().map_err(io_err(""))?;
        segments.clear();
    }
    if let Some((committed, _)) = &meta.committed
        && *committed >= next
        && purged_next.is_none_or(|p| *committed >= p)
    {
        return Err(OpenError::Lost {
            path: storage.path_of(""),
            committed: *committed,
            last: next.checked_sub(1).filter(|&l| l >= first),
        });
    }
    Ok(Recovered {
        segments,
        first,
        next,
    })
}
