//! A wake-up that costs whoever raises it nothing while nobody waits.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Wakes the tasks waiting for a condition that the raiser has just made
/// true. A producer raises its signals at every item, and most of the
/// time nobody waits; tokio's `watch` takes eight locks per send to wake
/// its receivers, which was a fifth of a producer's time at 64-byte
/// items.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    waiting: AtomicUsize,
    notify: Notify,
}

impl Signal {
    /// Wakes every task waiting now; called after making its condition
    /// true.
    pub(crate) fn raise(&self) {
        // Pairs with the fence in `wait_until`: either the raiser sees the
        // waiter counted, or the waiter sees the condition true.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Waits until `holds` is true, or `deadline` (if any) passes; whether
    /// it holds. Safe to drop while waiting.
    pub(crate) async fn wait_until(
        &self,
        holds: impl Fn() -> bool,
        deadline: Option<Instant>,
    ) -> bool {
        if holds() {
            return true;
        }
        let _counted = Counted::new(&self.waiting);
        loop {
            // Created before the check: a raise between the check and the
            // wait still wakes it.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if holds() {
                return true;
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return holds();
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// Counts a waiter for as long as it waits.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A number that only rises, with a signal for those waiting for it to
/// pass a value: a producer's next sequence number.
#[derive(Debug, Default)]
pub(crate) struct Rising {
    value: AtomicU64,
    signal: Signal,
}

impl Rising {
    /// Raises it to `value` (a lower value changes nothing: items
    /// published or written at once may report out of order).
    pub(crate) fn raise(&self, value: u64) {
        self.value.fetch_max(value, Ordering::AcqRel);
        self.signal.raise();
    }

    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Acquire)
    }

    /// Waits until it is above `seen`.
    pub(crate) async fn past(&self, seen: u64) {
        self.signal.wait_until(|| self.get() > seen, None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiter_wakes_for_every_raise_past_what_it_saw() {
        let rising = Arc::new(Rising::default());
        let waiter = {
            let rising = Arc::clone(&rising);
            tokio::spawn(async move {
                let mut seen = 0;
                while seen < 10_000 {
                    rising.past(seen).await;
                    seen = rising.get();
                }
            })
        };
        for n in 1..=10_000 {
            rising.raise(n);
            if n % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter saw the last raise")
            .expect("the waiter did not panic");
    }

    #[tokio::test]
    async fn a_wait_gives_up_at_its_deadline_and_says_so() {
        let signal = Signal::default();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(!signal.wait_until(|| false, Some(deadline)).await);
        assert_eq!(signal.waiting.load(Ordering::Relaxed), 0);
        assert!(signal.wait_until(|| true, Some(deadline)).await);
    }
}
