//! `Reader::changed()`: waiting for a new version from async code.
//!
//! The future needs no runtime. While pending, one helper thread sleeps in the
//! same kernel wait as [`Reader::wait_for_change`](crate::Reader::wait_for_change)
//! and wakes the task when a newer version is published. Dropping the future
//! stops the helper within its next wake-up (at most 50 ms).

use crate::layout::Control;
use crate::notify::wait_newer;
use crate::version::Version;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Resolves to the newer version once one is published.
/// Made by [`Reader::changed`](crate::Reader::changed).
#[must_use = "futures do nothing unless polled"]
pub struct Changed {
    control: Arc<Control>,
    last: Option<Version>,
    shared: Option<Arc<Shared>>,
}

struct Shared {
    waker: Mutex<Option<Waker>>,
    stop: AtomicBool,
}

impl Changed {
    pub(crate) fn new(control: Arc<Control>, last: Option<Version>) -> Self {
        Self {
            control,
            last,
            shared: None,
        }
    }

    fn newer(&self) -> Option<Version> {
        // A zero timeout only looks; it never sleeps.
        wait_newer(&self.control, self.last, Duration::ZERO)
            .ok()
            .flatten()
    }
}

impl std::fmt::Debug for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changed").field("last", &self.last).finish()
    }
}

impl Future for Changed {
    type Output = Version;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Version> {
        let this = self.get_mut();
        if let Some(v) = this.newer() {
            return Poll::Ready(v);
        }
        match &this.shared {
            Some(shared) => {
                let mut waker = shared.waker.lock().unwrap_or_else(|e| e.into_inner());
                *waker = Some(cx.waker().clone());
            }
            None => {
                let shared = Arc::new(Shared {
                    waker: Mutex::new(Some(cx.waker().clone())),
                    stop: AtomicBool::new(false),
                });
                let control = Arc::clone(&this.control);
                let last = this.last;
                let helper = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("statemesh-shm-changed".into())
                    .spawn(move || {
                        while !helper.stop.load(Ordering::Acquire) {
                            match wait_newer(&control, last, Duration::from_millis(50)) {
                                Ok(None) => continue,
                                // A newer version, or a corrupt word the
                                // poll will not report: wake either way.
                                Ok(Some(_)) | Err(_) => break,
                            }
                        }
                        let waker = helper
                            .waker
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take();
                        if let Some(w) = waker {
                            w.wake();
                        }
                    })
                    .ok();
                this.shared = Some(shared);
            }
        }
        // Re-check after registering: a publish in between is not missed.
        match this.newer() {
            Some(v) => Poll::Ready(v),
            None => Poll::Pending,
        }
    }
}

impl Drop for Changed {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.stop.store(true, Ordering::Release);
        }
    }
}
