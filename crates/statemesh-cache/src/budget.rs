//! The memory budget: how many bytes are resident, and admission of more.
//!
//! Every byte that becomes resident (an insert, a load, a copy for
//! `make_mut`) is reserved here first. A reservation that would take the
//! pool past its limit (the budget plus the slack) is refused, and the
//! caller makes room itself, by spilling, or waits for room (see
//! `Shared::admit` in `pool::shared`); so no write rate can outrun
//! eviction. The background thread keeps the pool at the budget; the slack
//! is the room writers have before they must help it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a caller that found no room sleeps before it tries again,
/// at most: room can appear without a notification (a pin dropped by a
/// thread that did not see the waiter).
const RETRY: Duration = Duration::from_millis(5);

pub(crate) struct Budget {
    /// The bytes the background thread keeps the pool to.
    budget: usize,
    /// The bytes no reservation may pass: the budget and the slack.
    limit: usize,
    resident: AtomicUsize,
    /// Callers waiting for room, and what wakes them.
    waiting: AtomicUsize,
    room: Mutex<()>,
    freed: Condvar,
}

impl Budget {
    pub(crate) fn new(budget: usize, slack: usize) -> Self {
        Self {
            budget,
            limit: budget.saturating_add(slack),
            resident: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            room: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn resident(&self) -> usize {
        self.resident.load(Ordering::Acquire)
    }

    pub(crate) fn over_budget(&self) -> bool {
        self.resident() > self.budget
    }

    /// Adds `bytes` if the pool stays within its limit, or if nothing is
    /// resident (an object larger than the limit can still be used, alone).
    pub(crate) fn try_reserve(&self, bytes: usize) -> bool {
        let mut now = self.resident();
        loop {
            let after = now.saturating_add(bytes);
            if after > self.limit && now != 0 {
                return false;
            }
            match self.resident.compare_exchange_weak(
                now,
                after,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
    }

    /// Adds `bytes` whatever the limit: growth of an object already in
    /// memory (a write guard handing its value back), which cannot be
    /// refused after the fact.
    pub(crate) fn add(&self, bytes: usize) {
        self.resident.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Removes `bytes`, and wakes callers waiting for room.
    pub(crate) fn release(&self, bytes: usize) {
        self.resident.fetch_sub(bytes, Ordering::AcqRel);
        self.wake();
    }

    /// Wakes callers waiting for room: bytes left, or a pin dropped (an
    /// object that can be evicted now).
    pub(crate) fn wake(&self) {
        if self.waiting.load(Ordering::Acquire) != 0 {
            let _room = self.room.lock().unwrap_or_else(|e| e.into_inner());
            self.freed.notify_all();
        }
    }

    /// Sleeps until woken, `until`, or a short while, whichever is first.
    pub(crate) fn wait(&self, until: Instant) {
        let left = until.saturating_duration_since(Instant::now()).min(RETRY);
        let room = self.room.lock().unwrap_or_else(|e| e.into_inner());
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _room = self
            .freed
            .wait_timeout(room, left)
            .unwrap_or_else(|e| e.into_inner());
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_limit_unless_the_pool_is_empty() {
        let b = Budget::new(100, 20);
        assert!(b.try_reserve(500), "alone, anything fits");
        assert!(!b.try_reserve(1));
        b.release(500);
        assert!(b.try_reserve(100));
        assert!(b.try_reserve(20));
        assert!(!b.try_reserve(1));
        assert!(b.over_budget());
        b.release(20);
        assert!(!b.over_budget());
        b.add(1_000);
        assert_eq!(b.resident(), 1_100);
    }

    #[test]
    fn concurrent_reservations_never_pass_the_limit() {
        let b = Budget::new(1_000, 0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        if b.try_reserve(7) {
                            assert!(b.resident() <= 1_000);
                            b.release(7);
                        }
                    }
                });
            }
        });
        assert_eq!(b.resident(), 0);
    }
}
