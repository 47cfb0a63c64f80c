//! The writer thread: it takes every queued operation in order, encodes the
//! appends of a round into one buffer ended by a batch marker (see
//! `record`), writes it with one `pwrite`, makes the entries readable, and
//! hands their durability to the syncer (or syncs a lone append itself).
//! Truncate, purge and metadata updates run here too, once every earlier
//! append is durable.

use super::lock::{lock, read, write};
use super::queue::{Op, Outcome};
use super::rollover::{grow_active, roll};
use super::shared::Shared;
use super::syncer::Durable;
use super::truncate::{purge_now, truncate_now};
use crate::completion::{Completion, Stages};
use crate::error::{AppendError, UpdateError};
use crate::options::SyncPolicy;
use crate::record::{self, MARKER_LEN, Marker, MarkerKind};
use crate::storage::{Storage, StorageFile};
use std::io;
use std::sync::Arc;

/// The writer thread's own view of the active segment's write position.
struct Pending {
    buf: Vec<u8>,
    offsets: Vec<u64>,
    /// Appends in `buf`, to be told once it is written.
    appends: Vec<Arc<Stages<Outcome>>>,
    first: u64,
    /// The active segment holds records that no marker vouches for yet (a
    /// batch's own marker vouches only for what was durable before it).
    unvouched: bool,
}

/// The writer thread. `unvouched`: recovery left records in the last
/// segment that no marker vouches for yet.
pub(crate) fn run<S: Storage>(shared: &Shared<S>, unvouched: bool) {
    let mut pending = Pending {
        buf: Vec::new(),
        offsets: Vec::new(),
        appends: Vec::new(),
        first: 0,
        unvouched,
    };
    loop {
        let ops = {
            let mut q = lock(&shared.queue);
            while q.ops.is_empty() && !q.closed {
                q.writer_sleeping = true;
                q = shared
                    .queue_ready
                    .wait(q)
                    .unwrap_or_else(|e| e.into_inner());
                q.writer_sleeping = false;
            }
            if q.ops.is_empty() && q.closed {
                break;
            }
            std::mem::take(&mut q.ops)
        };
        for op in ops {
            if let Some(e) = shared.failure.get() {
                fail_op(op, &e);
                continue;
            }
            match op {
                Op::Append {
                    first,
                    payloads,
                    stages,
                } => {
                    if let Err(e) = write_append(shared, &mut pending, first, payloads.as_slice()) {
                        let e = shared.failure.fail(e);
                        fail_pending(&mut pending, &e);
                        fail_stages(&stages, &e);
                        continue;
                    }
                    pending.appends.push(stages);
                    if pending.buf.len() >= shared.options.max_batch_bytes {
                        flush(shared, &mut pending);
                    }
                }
                Op::Truncate { from, done } => {
                    flush(shared, &mut pending);
                    shared.sync.wait_idle();
                    let r = truncate_now(shared, from)
                        .map_err(|e| UpdateError::Failed(shared.failure.fail(e)));
                    done.complete(r);
                }
                Op::Purge { upto, id, done } => {
                    flush(shared, &mut pending);
                    shared.sync.wait_idle();
                    done.complete(purge_now(shared, upto, id));
                }
                Op::Meta { change, done } => {
                    // Ordered after every earlier append is durable, as
                    // openraft requires of vote and log IO.
                    flush(shared, &mut pending);
                    shared.sync.wait_idle();
                    done.complete(shared.change_meta(|m, _| change(m)));
                }
                Op::Sync { done } => {
                    flush(shared, &mut pending);
                    let (files, upto) = read(&shared.index).active().unzip();
                    shared
                        .sync
                        .submit(files.into_iter().collect(), upto, Vec::new(), Some(done));
                }
            }
        }
        flush(shared, &mut pending);
    }
    flush(shared, &mut pending);
    // Final sync whatever the policy, then a marker that vouches for all of
    // it (so a cleanly closed log has no torn end), then stop the syncer.
    let (files, upto) = read(&shared.index).active().unzip();
    let done = Completion::new();
    shared.sync.submit(
        files.into_iter().collect(),
        upto,
        Vec::new(),
        Some(Arc::clone(&done)),
    );
    if done.wait().is_ok() {
        vouch(shared, &mut pending);
    }
    shared.sync.close();
}

fn fail_stages(stages: &Stages<Outcome>, e: &Arc<io::Error>) {
    stages
        .written
        .complete(Err(AppendError::Failed(Arc::clone(e))));
    stages
        .durable
        .complete(Err(AppendError::Failed(Arc::clone(e))));
}

fn fail_op(op: Op, e: &Arc<io::Error>) {
    match op {
        Op::Append { stages, .. } => fail_stages(&stages, e),
        Op::Truncate { done, .. }
        | Op::Purge { done, .. }
        | Op::Sync { done }
        | Op::Meta { done, .. } => {
            done.complete(Err(UpdateError::Failed(Arc::clone(e))));
        }
    }
}

fn fail_pending(pending: &mut Pending, e: &Arc<io::Error>) {
    for stages in pending.appends.drain(..) {
        fail_stages(&stages, e);
    }
    pending.buf.clear();
    pending.offsets.clear();
}

/// Room an entry of `need` bytes takes in a segment: itself, its batch's
/// marker, and one more marker (a vouching or an End marker) after it.
pub(crate) fn room_for(need: u64) -> u64 {
    need + 2 * MARKER_LEN as u64
}

/// Encodes one append into the pending buffer, rolling to a new segment when
/// the active one is full.
fn write_append<S: Storage>(
    shared: &Shared<S>,
    pending: &mut Pending,
    first: u64,
    payloads: &[Vec<u8>],
) -> io::Result<()> {
    for (i, payload) in payloads.iter().enumerate() {
        let index = first + i as u64;
        let room = room_for(record::encoded_len(payload.len() as u64));
        let mut at = read(&shared.index).position();
        if at.end + pending.buf.len() as u64 + room > at.capacity {
            flush(shared, pending);
            if let Some(e) = shared.failure.get() {
                return Err(io::Error::new(e.kind(), e.to_string()));
            }
            at = read(&shared.index).position();
            if at.capacity > 0 && at.entries == 0 {
                // An empty active segment is simply made big enough.
                grow_active(shared, at.end + room)?;
            } else {
                roll(shared, index, room)?;
            }
            at = read(&shared.index).position();
        }
        if pending.offsets.is_empty() {
            pending.first = index;
        }
        pending.offsets.push(at.end + pending.buf.len() as u64);
        record::encode(at.salt, index, payload, &mut pending.buf);
    }
    Ok(())
}

/// Writes the pending buffer with its batch marker, makes its entries
/// readable, and hands their completions on according to the policy.
fn flush<S: Storage>(shared: &Shared<S>, pending: &mut Pending) {
    if pending.offsets.is_empty() {
        return;
    }
    let result = (|| {
        let (file, end, segment, salt) = {
            let idx = read(&shared.index);
            let s = idx
                .segments
                .last()
                .ok_or_else(|| io::Error::other("no active segment"))?;
            (Arc::clone(&s.file), s.end, s.first, s.salt)
        };
        let count = pending.offsets.len() as u64;
        let marker = Marker {
            next: pending.first + count,
            durable: shared.sync.durable_in(segment),
            kind: MarkerKind::Batch,
        };
        record::encode_marker(salt, marker, &mut pending.buf);
        file.write_at(&pending.buf, end)?;
        let upto = Durable {
            segment,
            end: end + pending.buf.len() as u64,
        };
        let mut idx = write(&shared.index);
        if let Some(s) = idx.segments.last_mut() {
            s.offsets.append(&mut pending.offsets);
            s.end = upto.end;
            s.dirty_end = s.dirty_end.max(upto.end);
        }
        if idx.next == idx.first && idx.first != pending.first {
            idx.first = pending.first;
        }
        idx.next = pending.first + count;
        Ok::<_, io::Error>((file, upto))
    })();
    pending.buf.clear();
    pending.offsets.clear();
    pending.unvouched = true;
    match result {
        Err(e) => {
            let e = shared.failure.fail(e);
            fail_pending(pending, &e);
        }
        Ok((file, upto)) => {
            for a in &pending.appends {
                a.written.complete(Ok(()));
            }
            let durable = std::mem::take(&mut pending.appends);
            match shared.options.sync {
                SyncPolicy::Always => {
                    let queued = || !lock(&shared.queue).ops.is_empty();
                    if !shared
                        .sync
                        .sync_inline(&shared.failure, queued, &file, upto, &durable)
                    {
                        shared.sync.submit(vec![file], Some(upto), durable, None);
                    }
                }
                SyncPolicy::Interval(_) | SyncPolicy::Never => {
                    for d in durable {
                        d.durable.complete(Ok(()));
                    }
                    shared.sync.mark_dirty(file, upto);
                }
            }
        }
    }
}

/// Writes a marker by itself that vouches for everything synced so far in
/// the active segment, and syncs it: damage to those records then reads as
/// damage, never as a torn end.
fn vouch<S: Storage>(shared: &Shared<S>, pending: &mut Pending) {
    if !pending.unvouched || shared.failure.get().is_some() {
        return;
    }
    let Some((file, salt, at, next, capacity, segment)) = ({
        let idx = read(&shared.index);
        idx.segments.last().map(|s| {
            let next = s.first + s.offsets.len() as u64;
            (
                Arc::clone(&s.file),
                s.salt,
                s.end,
                next,
                s.capacity,
                s.first,
            )
        })
    }) else {
        return;
    };
    if at + MARKER_LEN as u64 > capacity {
        return;
    }
    let mut buf = Vec::with_capacity(MARKER_LEN);
    let marker = Marker {
        next,
        durable: shared.sync.durable_in(segment),
        kind: MarkerKind::Batch,
    };
    record::encode_marker(salt, marker, &mut buf);
    let written = file.write_at(&buf, at).and_then(|()| file.sync_data());
    match written {
        Ok(()) => {
            let mut idx = write(&shared.index);
            if let Some(s) = idx.segments.last_mut() {
                s.end = at + MARKER_LEN as u64;
                s.dirty_end = s.dirty_end.max(s.end);
            }
            pending.unvouched = false;
        }
        Err(e) => {
            shared.failure.fail(e);
        }
    }
}
