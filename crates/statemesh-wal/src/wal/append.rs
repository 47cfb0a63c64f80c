//! The caller's side of an append: the entries are checked, given their
//! indices and queued for the writer at once, and the caller gets an
//! [`Append`] to wait for (or await) their durability.

use super::lock::lock;
use super::queue::{Op, Outcome, Payloads};
use super::shared::Shared;
use crate::completion::Stages;
use crate::error::AppendError;
use crate::record::MAX_PAYLOAD;
use crate::storage::Storage;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A queued append: which indices it got, and when it is done.
///
/// Await it (or [`Append::wait`]) for durability under the log's
/// [`SyncPolicy`](crate::SyncPolicy). Dropping it does not cancel the
/// append.
#[must_use = "an append is durable only when it completes"]
#[derive(Clone)]
pub struct Append {
    first: u64,
    count: u64,
    stages: Arc<Stages<Outcome>>,
}

impl std::fmt::Debug for Append {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Append")
            .field("first", &self.first)
            .field("count", &self.count)
            .field("durable", &self.stages.durable.is_complete())
            .finish()
    }
}

impl Append {
    /// The index of the (first) entry.
    #[must_use]
    pub fn index(&self) -> u64 {
        self.first
    }

    /// How many entries this append holds.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Blocks until the entries are durable under the log's policy.
    ///
    /// # Errors
    ///
    /// [`AppendError::Failed`] if a write or sync failed.
    pub fn wait(&self) -> Result<(), AppendError> {
        self.stages.durable.wait()
    }

    /// Blocks until the entries are written and readable (not yet durable).
    ///
    /// # Errors
    ///
    /// [`AppendError::Failed`] if the write failed.
    pub fn wait_written(&self) -> Result<(), AppendError> {
        self.stages.written.wait()
    }

    /// Resolves once the entries are written and readable (not yet durable).
    pub fn written(&self) -> impl Future<Output = Result<(), AppendError>> + use<> {
        let stages = Arc::clone(&self.stages);
        std::future::poll_fn(move |cx| stages.written.poll(cx))
    }

    /// Calls `f` with the outcome once the entries are durable: on the
    /// log's sync thread, or at once if they already are. Keep `f` short
    /// (openraft's flush callback is the intended use).
    pub fn on_durable(&self, f: impl FnOnce(Result<(), AppendError>) + Send + 'static) {
        self.stages.durable.on_complete(Box::new(f));
    }
}

impl IntoFuture for Append {
    type Output = Result<(), AppendError>;
    type IntoFuture = AppendFuture;
    fn into_future(self) -> AppendFuture {
        AppendFuture(self.stages)
    }
}

/// The future of an [`Append`]'s durability.
pub struct AppendFuture(Arc<Stages<Outcome>>);

impl std::fmt::Debug for AppendFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppendFuture")
    }
}

impl Future for AppendFuture {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        self.0.durable.poll(cx)
    }
}

/// Refuses an entry no record can hold, before anything is queued.
pub(crate) fn check_sizes(payloads: &Payloads) -> Result<(), AppendError> {
    match payloads
        .as_slice()
        .iter()
        .find(|p| p.len() as u64 > MAX_PAYLOAD)
    {
        Some(p) => Err(AppendError::TooLarge {
            len: p.len() as u64,
        }),
        None => Ok(()),
    }
}

/// Gives the entries their indices (from `at`, if given) and queues them
/// for the writer.
pub(crate) fn enqueue<S: Storage>(
    shared: &Shared<S>,
    at: Option<u64>,
    payloads: Payloads,
) -> Result<Append, AppendError> {
    let stages = Stages::new();
    let count = payloads.as_slice().len() as u64;
    let mut wake = false;
    let first = {
        let mut q = lock(&shared.queue);
        if q.closed {
            return Err(AppendError::Closed);
        }
        let first = match at {
            Some(at) if !q.unanchored && at != q.next => {
                return Err(AppendError::NotContiguous {
                    given: at,
                    expected: q.next,
                });
            }
            Some(at) => at,
            None => q.next,
        };
        // Checked before the queue changes: `next` must stay a valid index.
        let Some(end) = first.checked_add(count) else {
            return Err(AppendError::IndexOverflow { first, count });
        };
        // An empty log anchored by an empty `append_at` still moves there.
        q.next = first;
        if count > 0 {
            q.unanchored = false;
            q.next = end;
            // Cleared only together with the push it announces: an
            // early return above must leave it set for the next one.
            wake = std::mem::replace(&mut q.writer_sleeping, false);
            q.ops.push(Op::Append {
                first,
                payloads,
                stages: Arc::clone(&stages),
            });
        }
        first
    };
    if count == 0 {
        stages.written.complete(Ok(()));
        stages.durable.complete(Ok(()));
    } else if wake {
        shared.queue_ready.notify_one();
    }
    Ok(Append {
        first,
        count,
        stages,
    })
}
