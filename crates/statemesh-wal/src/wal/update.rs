//! The caller's side of truncate, purge, sync and metadata updates: each is
//! checked against the queue, queued behind every earlier write, and
//! completed by the writer once it is durable.

use super::lock::{lock, read};
use super::queue::{Op, Queue, UpdateDone};
use super::shared::Shared;
use crate::completion::{Completion, Wait};
use crate::error::UpdateError;
use crate::storage::Storage;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The future of a truncate, purge or metadata update; see the `*_async`
/// methods of [`Wal`](crate::Wal).
#[must_use = "the update is durable only when the future completes"]
pub struct UpdateFuture(Wait<Result<(), UpdateError>>);

impl UpdateFuture {
    /// Blocks until the update is done.
    pub(crate) fn wait(&self) -> Result<(), UpdateError> {
        self.0.wait()
    }
}

impl std::fmt::Debug for UpdateFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpdateFuture")
    }
}

impl Future for UpdateFuture {
    type Output = Result<(), UpdateError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Queues the update that `make` builds from the queue, the first index and
/// its completion.
pub(crate) fn submit<S: Storage>(
    shared: &Shared<S>,
    make: impl FnOnce(&mut Queue, u64, UpdateDone) -> Result<Op, UpdateError>,
) -> Result<UpdateFuture, UpdateError> {
    let done = Completion::new();
    {
        let mut q = lock(&shared.queue);
        if q.closed {
            return Err(UpdateError::Closed);
        }
        let first = read(&shared.index).first;
        let op = make(&mut q, first, Arc::clone(&done))?;
        q.ops.push(op);
    }
    shared.queue_ready.notify_one();
    Ok(UpdateFuture(Wait(done)))
}

/// A truncation from `from` on; later appends continue at `from`.
pub(crate) fn truncate(
    from: u64,
) -> impl FnOnce(&mut Queue, u64, UpdateDone) -> Result<Op, UpdateError> {
    move |q, first, done| {
        if from < first || from > q.next {
            return Err(UpdateError::OutOfRange {
                index: from,
                first,
                next: q.next,
            });
        }
        q.next = from;
        Ok(Op::Truncate { from, done })
    }
}

/// A purge up to `upto`, which may lie past the end.
pub(crate) fn purge(
    upto: u64,
    id: Vec<u8>,
) -> impl FnOnce(&mut Queue, u64, UpdateDone) -> Result<Op, UpdateError> {
    move |q, first, done| {
        if upto.saturating_add(1) < first {
            return Err(UpdateError::OutOfRange {
                index: upto,
                first,
                next: q.next,
            });
        }
        let Some(next) = upto.checked_add(1) else {
            return Err(UpdateError::IndexOverflow { index: upto });
        };
        if upto >= q.next {
            q.next = next;
        }
        q.unanchored = false;
        Ok(Op::Purge { upto, id, done })
    }
}
