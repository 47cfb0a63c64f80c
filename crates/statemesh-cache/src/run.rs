//! Running the store's blocking calls away from async tasks.
//!
//! On a tokio runtime they go to its blocking pool; anywhere else (another
//! executor, or none) to a thread of their own. Either way a job runs to its
//! end even if the future waiting for it is dropped, which is what makes
//! every async call of the pool cancel-safe: the job's effect on the pool is
//! complete or absent, never half done.

use crate::error::CacheError;
use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;

/// Starts `job` away from the calling task.
pub(crate) fn spawn(job: impl FnOnce() + Send + 'static) -> Result<(), CacheError> {
    #[cfg(feature = "tokio")]
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        drop(runtime.spawn_blocking(job));
        return Ok(());
    }
    thread::Builder::new()
        .name("statemesh-cache-io".into())
        .spawn(job)
        .map(drop)
        .map_err(|e| CacheError::Spawn(Arc::new(e)))
}

type Outcome<R> = thread::Result<R>;

struct Slot<R> {
    outcome: Option<Outcome<R>>,
    waker: Option<Waker>,
}

/// Runs `job` away from the calling task and waits for its result. A panic
/// in the job (in user code: a codec or weigher) resumes in the caller.
pub(crate) async fn off_thread<R: Send + 'static>(
    job: impl FnOnce() -> R + Send + 'static,
) -> Result<R, CacheError> {
    let slot = Arc::new(Mutex::new(Slot {
        outcome: None,
        waker: None,
    }));
    let theirs = slot.clone();
    spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(job));
        let waker = {
            let mut s = theirs.lock().unwrap_or_else(|e| e.into_inner());
            s.outcome = Some(outcome);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    })?;
    let outcome = poll_fn(|cx| {
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        match s.outcome.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await;
    match outcome {
        Ok(r) => Ok(r),
        Err(panic) => resume_unwind(panic),
    }
}
