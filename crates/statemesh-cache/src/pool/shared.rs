//! [`Shared`]: what a pool's clones and handles share, and the admission
//! of bytes into its budget.
//!
//! The operations on it are split by what they do to an object: `load`,
//! `write` (write guards and the last handle), `evict` and `persist`, each
//! an `impl Shared` of its own. This module holds what they all use.

use super::stats::{Counters, PoolStats};
use crate::background::Background;
use crate::budget::Budget;
use crate::codec::{Codec, CodecError};
use crate::entry::{Entry, Value};
use crate::error::{CacheError, Rejected};
use crate::key::Key;
use crate::policy::S3Fifo;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

pub(crate) type Weigher<T> = dyn Fn(&T) -> usize + Send + Sync;

pub(crate) struct Shared<T> {
    pub(super) store: Arc<dyn Store>,
    pub(super) codec: Box<dyn Codec<T>>,
    weigher: Box<Weigher<T>>,
    pub(super) budget: Budget,
    /// How long a caller may wait for room before it gets
    /// [`CacheError::OverBudget`].
    admit_timeout: Duration,
    /// Live entries by key: one entry per key, so that two handles of one
    /// key share one spilled blob.
    pub(super) index: Mutex<HashMap<Key, Weak<Entry<T>>>>,
    pub(super) policy: Mutex<S3Fifo<Arc<Entry<T>>>>,
    /// Dropped entries still in the policy's queues.
    pub(super) dead_queued: AtomicUsize,
    pub(super) background: Arc<Background>,
    next_id: AtomicU64,
    pub(super) next_attempt: AtomicU64,
    pub(super) counters: Counters,
}

pub(super) fn lock<V>(m: &Mutex<V>) -> MutexGuard<'_, V> {
    // Nothing panics while holding these locks (user code runs outside
    // them), so a poisoned lock still guards a consistent value.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Send + Sync + 'static> Shared<T> {
    /// The state of a new pool, with its background threads started.
    ///
    /// # Errors
    ///
    /// [`CacheError::Spawn`] if a background thread cannot start.
    pub(super) fn start(
        store: Arc<dyn Store>,
        codec: Box<dyn Codec<T>>,
        weigher: Box<Weigher<T>>,
        budget: Budget,
        admit_timeout: Duration,
    ) -> Result<Arc<Self>, CacheError> {
        let background = Arc::new(Background::new());
        let shared = Arc::new(Shared {
            store: store.clone(),
            codec,
            weigher,
            policy: Mutex::new(S3Fifo::new(budget.budget())),
            budget,
            admit_timeout,
            index: Mutex::new(HashMap::new()),
            dead_queued: AtomicUsize::new(0),
            background: background.clone(),
            next_id: AtomicU64::new(0),
            next_attempt: AtomicU64::new(0),
            counters: Counters::default(),
        });
        // Weakly: the evictor must not keep a pool alive that nothing
        // else uses (the last reference going stops it).
        let pool = Arc::downgrade(&shared);
        let evict_round = move || pool.upgrade().map_or(Ok(()), |s| s.evict_to_budget());
        background.start(evict_round, store)?;
        Ok(shared)
    }

    pub(super) fn weigh(&self, value: &T) -> usize {
        (self.weigher)(value)
    }

    /// Reserves `bytes` of the budget for a value about to become
    /// resident. Past the limit the caller makes room itself, spilling
    /// objects on its own thread, and when nothing can go (everything in
    /// memory is pinned or being written) waits for room up to the pool's
    /// admission timeout.
    ///
    /// # Errors
    ///
    /// [`CacheError::OverBudget`] when the time is up.
    pub(super) fn admit(&self, bytes: usize) -> Result<(), CacheError> {
        let started = Instant::now();
        let deadline = started + self.admit_timeout;
        loop {
            if self.budget.try_reserve(bytes) {
                if self.budget.over_budget() {
                    self.background.request_eviction();
                }
                return Ok(());
            }
            let room_for = self.budget.limit().saturating_sub(bytes);
            let evicted = self.evict_until(room_for);
            // Room made here, or by others meanwhile: try again at once.
            if matches!(evicted, Ok(n) if n > 0) || self.budget.resident() <= room_for {
                continue;
            }
            if Instant::now() >= deadline {
                return Err(CacheError::OverBudget {
                    needed: bytes,
                    resident: self.budget.resident(),
                    limit: self.budget.limit(),
                    waited: started.elapsed(),
                });
            }
            self.background.request_eviction();
            self.budget.wait(deadline);
        }
    }

    pub(super) fn release_bytes(&self, bytes: usize) {
        self.budget.release(bytes);
    }

    /// A weight changed from `old` to `new` (a write guard dropped). Growth
    /// is counted at once (the value exists already) and the next
    /// admission makes room for it.
    pub(super) fn reweigh(&self, old: usize, new: usize) {
        if new >= old {
            self.budget.add(new - old);
            if self.budget.over_budget() {
                self.background.request_eviction();
            }
        } else {
            self.release_bytes(old - new);
        }
    }

    /// Queues a resident object for eviction.
    pub(super) fn queue(&self, entry: &Arc<Entry<T>>, weight: usize) {
        lock(&self.policy).admit(entry.clone(), weight);
    }

    pub(super) fn new_entry(&self, key: Key, value: Value<T>, weight: usize) -> Arc<Entry<T>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(Entry::new(id, key, value, weight))
    }

    /// A new object holding `value`, once there is room for it; its entry
    /// counts one handle, for the caller to make.
    pub(crate) fn insert(&self, value: T) -> Result<Arc<Entry<T>>, Rejected<T>> {
        let weight = self.weigh(&value);
        if let Err(error) = self.admit(weight) {
            return Err(Rejected { value, error });
        }
        let key = Key::random();
        let entry = self.new_entry(key, Value::Resident(Arc::new(value)), weight);
        lock(&self.index).insert(key, Arc::downgrade(&entry));
        self.queue(&entry, weight);
        // Again now that it is queued: a round that `admit` woke may have
        // run before, found nothing to evict, and left the pool over budget.
        if self.over_budget() {
            self.background.request_eviction();
        }
        Ok(entry)
    }

    /// Encodes with the user's codec. A panic in it is an error like any
    /// other: eviction runs on the background thread and on callers short
    /// of room, and an unwinding spill would leave its object marked as
    /// being written, with write guards waiting for it forever.
    pub(super) fn encode(&self, key: Key, value: &T) -> Result<Vec<u8>, CacheError> {
        let mut bytes = Vec::new();
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.codec.encode(value, &mut bytes)
        }))
        .unwrap_or_else(|_| Err(CodecError::new(std::io::Error::other("the codec panicked"))));
        encoded.map_err(|source| CacheError::Codec { key, source })?;
        Ok(bytes)
    }

    pub(super) fn stats(&self) -> PoolStats {
        self.counters.report(lock(&self.index).len(), &self.budget)
    }
}

impl<T> Shared<T> {
    pub(super) fn over_budget(&self) -> bool {
        self.budget.over_budget()
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        self.background.shut_down();
    }
}
