//! [`Pool`]: objects under a memory budget, over a [`Store`].
//!
//! The moving parts: each object is an [`Entry`] whose state says where its
//! value is; the [`S3Fifo`] policy orders the resident ones for eviction;
//! a background thread ([`crate::background`]) evicts past the budget and
//! deletes the spilled blobs of dropped objects. Loads run on the caller's
//! thread (blocking API) or away from the caller's task (async API), and
//! concurrent loads of one object share one read.

use crate::background::Background;
use crate::budget::Budget;
use crate::codec::Codec;
use crate::entry::{Entry, Source, State, Value};
use crate::error::{CacheError, StoreError};
use crate::handle::Handle;
use crate::key::Key;
use crate::policy::S3Fifo;
use crate::run;
use crate::store::{Listing, Location, Place, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use std::{fmt, mem};

/// A caller of a load, counted in its entry's `waiters` from the moment
/// it waits for a load attempt until it takes the value, fails, or gives
/// up (dropped: a cancelled future).
pub(crate) struct Waiter<'a, T> {
    shared: &'a Shared<T>,
    entry: &'a Arc<Entry<T>>,
    /// The load attempt waited on, whose failure is this caller's.
    attempt: Option<u64>,
    counted: bool,
}

impl<'a, T> Waiter<'a, T> {
    pub(crate) fn new(shared: &'a Shared<T>, entry: &'a Arc<Entry<T>>) -> Self {
        Self {
            shared,
            entry,
            attempt: None,
            counted: false,
        }
    }

    fn waits_for(&mut self, attempt: u64, st: &mut State<T>) {
        self.attempt = Some(attempt);
        if !self.counted {
            self.counted = true;
            st.waiters += 1;
        }
    }

    /// Counts the access for the eviction policy if the value was in
    /// memory. The access that had to load it is the miss that admitted
    /// it, not a hit: counted as one, every object would look reused and
    /// S3-FIFO would keep one-time objects like LRU does.
    fn count_hit(&self) {
        if self.attempt.is_none() {
            self.entry.hit();
        }
    }

    fn stop_counting(&mut self, st: &mut State<T>) {
        if self.counted {
            self.counted = false;
            st.waiters -= 1;
        }
    }
}

impl<T> Drop for Waiter<'_, T> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut st = self.entry.lock();
        st.waiters -= 1;
        // A value kept for this caller alone may go now.
        let evictable = st.waiters == 0 && st.pins == 0 && st.value.in_memory();
        drop(st);
        if evictable && self.shared.over_budget() {
            self.shared.background.request_eviction();
        }
    }
}

/// How a caller waits for an object's state to change.
#[derive(Clone, Copy)]
pub(crate) enum Waiting<'a> {
    /// On the entry's condition variable.
    Block,
    /// By registering the task's waker and returning `Pending`.
    Task(&'a Waker),
}

/// What an eviction attempt did.
pub(crate) enum Evicted {
    /// The value left memory.
    Done,
    /// The entry is dropped, or not in memory: forget it.
    Gone,
    /// In use (pinned, changing, or taken back by a load): queue it again.
    Busy(usize),
    /// Writing it failed; it stays in memory.
    Failed(usize),
}

/// Counters of what a pool has done, and the state of its memory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolStats {
    /// Objects alive (with at least one handle).
    pub objects: usize,
    /// Bytes of the objects in memory, by the pool's weigher.
    pub resident_bytes: usize,
    /// The budget: the background thread evicts past it.
    pub budget_bytes: usize,
    /// The budget and the slack: no insert or load takes the pool past it
    /// (see [`PoolOptions::slack`]).
    pub limit_bytes: usize,
    /// Objects read back from the store.
    pub loads: u64,
    /// Objects written to the spill area to evict them.
    pub spills: u64,
    /// Objects dropped from memory.
    pub evictions: u64,
    /// Spill writes that failed (the object stayed in memory).
    pub spill_failures: u64,
    /// The last spill failure, if any.
    pub last_spill_error: Option<CacheError>,
}

#[derive(Default)]
struct Counters {
    loads: AtomicU64,
    spills: AtomicU64,
    evictions: AtomicU64,
    spill_failures: AtomicU64,
    last_spill_error: Mutex<Option<CacheError>>,
}

type Weigher<T> = dyn Fn(&T) -> usize + Send + Sync;

pub(crate) struct Shared<T> {
    pub(crate) store: Arc<dyn Store>,
    codec: Box<dyn Codec<T>>,
    weigher: Box<Weigher<T>>,
    pub(crate) budget: Budget,
    /// How long a caller may wait for room before it gets
    /// [`CacheError::OverBudget`].
    admit_timeout: Duration,
    /// Live entries by key: one entry per key, so that two handles of one
    /// key share one spilled blob.
    index: Mutex<HashMap<Key, Weak<Entry<T>>>>,
    policy: Mutex<S3Fifo<Arc<Entry<T>>>>,
    /// Dropped entries still in the policy's queues.
    dead_queued: AtomicUsize,
    pub(crate) background: Arc<Background>,
    next_id: AtomicU64,
    next_attempt: AtomicU64,
    counters: Counters,
}

fn lock<V>(m: &Mutex<V>) -> MutexGuard<'_, V> {
    // Nothing panics while holding these locks (user code runs outside
    // them), so a poisoned lock still guards a consistent value.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Send + Sync + 'static> Shared<T> {
    pub(crate) fn weigh(&self, value: &T) -> usize {
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
    fn admit(&self, bytes: usize) -> Result<(), CacheError> {
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

    fn release_bytes(&self, bytes: usize) {
        self.budget.release(bytes);
    }

    /// A weight changed from `old` to `new` (a write guard dropped). Growth
    /// is counted at once (the value exists already) and the next
    /// admission makes room for it.
    pub(crate) fn reweigh(&self, old: usize, new: usize) {
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
    fn queue(&self, entry: &Arc<Entry<T>>, weight: usize) {
        lock(&self.policy).admit(entry.clone(), weight);
    }

    pub(crate) fn new_entry(&self, key: Key, value: Value<T>, weight: usize) -> Arc<Entry<T>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Arc::new(Entry::new(id, key, value, weight))
    }

    pub(crate) fn insert(self: &Arc<Self>, value: T) -> Result<Handle<T>, Rejected<T>> {
        let weight = self.weigh(&value);
        if let Err(error) = self.admit(weight) {
            return Err(Rejected { value, error });
        }
        let key = Key::random();
        let entry = self.new_entry(key, Value::Resident(Arc::new(value)), weight);
        lock(&self.index).insert(key, Arc::downgrade(&entry));
        self.queue(&entry, weight);
        Ok(Handle::new(self.clone(), entry))
    }

    /// Encodes with the user's codec. A panic in it is an error like any
    /// other: eviction runs on the background thread and on callers short
    /// of room, and an unwinding spill would leave its object marked as
    /// being written, with write guards waiting for it forever.
    fn encode(&self, key: Key, value: &T) -> Result<Vec<u8>, CacheError> {
        let mut bytes = Vec::new();
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.codec.encode(value, &mut bytes)
        }))
        .unwrap_or_else(|_| {
            Err(crate::codec::CodecError::new(std::io::Error::other(
                "the codec panicked",
            )))
        });
        encoded.map_err(|source| CacheError::Codec { key, source })?;
        Ok(bytes)
    }

    // ---- reading ----

    /// The value if it is in memory, pinned; no waiting, no I/O. An object
    /// on its way out (being spilled) is not returned.
    pub(crate) fn try_resident(&self, entry: &Entry<T>) -> Option<Arc<T>> {
        let mut st = entry.lock();
        let Value::Resident(v) = &st.value else {
            return None;
        };
        let v = v.clone();
        st.pins += 1;
        drop(st);
        entry.hit();
        Some(v)
    }

    /// Makes the value resident and pins it for `waiter`.
    pub(crate) fn poll_resident(
        self: &Arc<Self>,
        waiter: &mut Waiter<'_, T>,
        how: Waiting<'_>,
    ) -> Poll<Result<Arc<T>, CacheError>> {
        let entry = waiter.entry;
        let mut st = entry.lock();
        loop {
            match &mut st.value {
                Value::Resident(v) => {
                    let v = v.clone();
                    st.pins += 1;
                    waiter.stop_counting(&mut st);
                    drop(st);
                    waiter.count_hit();
                    return Poll::Ready(Ok(v));
                }
                Value::Evicting(v) => {
                    // Taken back: the evictor sees it and keeps it.
                    let v = v.clone();
                    st.value = Value::Resident(v.clone());
                    st.pins += 1;
                    waiter.stop_counting(&mut st);
                    drop(st);
                    waiter.count_hit();
                    return Poll::Ready(Ok(v));
                }
                Value::Loading { attempt, claimed } => {
                    let attempt = *attempt;
                    // Do it here rather than wait for a thread that a
                    // saturated blocking pool may never start.
                    let claim = matches!(how, Waiting::Block) && !*claimed;
                    *claimed |= claim;
                    waiter.waits_for(attempt, &mut st);
                    if claim {
                        drop(st);
                        self.load_claimed(entry, attempt);
                        st = entry.lock();
                        continue;
                    }
                    match how {
                        Waiting::Block => st = entry.wait(st),
                        Waiting::Task(waker) => {
                            st.wake_me(waker);
                            return Poll::Pending;
                        }
                    }
                }
                Value::Mutating => match how {
                    // Only the handle's own write guard mutates, and it
                    // borrows the handle: not reachable through a handle,
                    // but waiting is the right answer if it were.
                    Waiting::Block => st = entry.wait(st),
                    Waiting::Task(waker) => {
                        st.wake_me(waker);
                        return Poll::Pending;
                    }
                },
                Value::Absent => {
                    if let (Some(w), Some((failed, err))) = (waiter.attempt, &st.failure)
                        && w == *failed
                    {
                        let err = err.clone();
                        waiter.stop_counting(&mut st);
                        return Poll::Ready(Err(err));
                    }
                    let attempt = self.next_attempt.fetch_add(1, Ordering::Relaxed);
                    waiter.waits_for(attempt, &mut st);
                    match how {
                        Waiting::Block => {
                            st.value = Value::Loading {
                                attempt,
                                claimed: true,
                            };
                            drop(st);
                            self.load_claimed(entry, attempt);
                            st = entry.lock();
                        }
                        Waiting::Task(waker) => {
                            st.value = Value::Loading {
                                attempt,
                                claimed: false,
                            };
                            st.wake_me(waker);
                            drop(st);
                            let (shared, job_entry) = (self.clone(), entry.clone());
                            let spawned = run::spawn(move || {
                                shared.load_if_unclaimed(&job_entry, attempt);
                            });
                            if let Err(e) = spawned {
                                let mut st = entry.lock();
                                if matches!(st.value, Value::Loading { attempt: a, claimed: false } if a == attempt)
                                {
                                    st.value = Value::Absent;
                                    st.failure = Some((attempt, e));
                                }
                                entry.announce(st);
                            }
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }

    fn load_if_unclaimed(&self, entry: &Arc<Entry<T>>, attempt: u64) {
        let mut st = entry.lock();
        match &mut st.value {
            Value::Loading {
                attempt: a,
                claimed,
            } if *a == attempt && !*claimed => *claimed = true,
            _ => return,
        }
        drop(st);
        self.load_claimed(entry, attempt);
    }

    /// Reads, decodes and installs the value for a claimed attempt, and
    /// announces the outcome.
    fn load_claimed(&self, entry: &Arc<Entry<T>>, attempt: u64) {
        // If the codec or weigher panics, the attempt fails for everyone
        // waiting on it instead of leaving them waiting forever.
        struct Unfinished<'a, T> {
            entry: &'a Entry<T>,
            attempt: u64,
            key: Key,
            armed: bool,
        }
        impl<T> Drop for Unfinished<'_, T> {
            fn drop(&mut self) {
                if self.armed {
                    let mut st = self.entry.lock();
                    st.value = Value::Absent;
                    let problem = std::io::Error::other("the codec or weigher panicked");
                    st.failure = Some((
                        self.attempt,
                        CacheError::Codec {
                            key: self.key,
                            source: crate::codec::CodecError::new(problem),
                        },
                    ));
                    self.entry.announce(st);
                }
            }
        }
        let (key, mut source) = {
            let st = entry.lock();
            (st.key, st.source())
        };
        let mut guard = Unfinished {
            entry,
            attempt,
            key,
            armed: true,
        };
        let loaded = loop {
            let Some(from) = source.take() else {
                // Not reachable: an absent value always has a blob.
                break Err(CacheError::Store(StoreError::NotFound {
                    key,
                    place: "memory or any store location".into(),
                }));
            };
            match self.store.read(from.place(), key) {
                Ok(bytes) => {
                    break self
                        .codec
                        .decode_owned(bytes)
                        .map_err(|source| CacheError::Codec { key, source })
                        .map(|v| {
                            let w = self.weigh(&v);
                            (v, w)
                        });
                }
                // The user deleted that copy meanwhile (see `delete`):
                // another may have been made.
                Err(StoreError::NotFound { .. }) if !matches!(from, Source::Spill) => {
                    let st = entry.lock();
                    source = st.source().filter(|s| !same_source(s, &from));
                    if source.is_none() {
                        break Err(CacheError::Store(StoreError::NotFound {
                            key,
                            place: from.place().to_string(),
                        }));
                    }
                }
                Err(e) => break Err(e.into()),
            }
        };
        // Room for it before it counts as resident (this may spill others).
        let loaded = loaded.and_then(|(v, w)| self.admit(w).map(|()| (v, w)));
        guard.armed = false;
        let mut st = entry.lock();
        let installed = match loaded {
            Ok((_, weight)) if st.dropped => {
                st.value = Value::Absent;
                self.release_bytes(weight);
                None
            }
            _ if st.dropped => {
                st.value = Value::Absent;
                None
            }
            Ok((value, weight)) => {
                st.value = Value::Resident(Arc::new(value));
                st.weight = weight;
                st.failure = None;
                Some(weight)
            }
            Err(e) => {
                st.value = Value::Absent;
                st.failure = Some((attempt, e));
                None
            }
        };
        if installed.is_some() {
            // Before waking anyone, so a caller that got the value sees its
            // load counted.
            self.counters.loads.fetch_add(1, Ordering::Relaxed);
        }
        entry.announce(st);
        if let Some(weight) = installed {
            self.queue(entry, weight);
            if self.budget.over_budget() {
                self.background.request_eviction();
            }
        }
    }

    /// Adds a pin to a value pinned already.
    pub(crate) fn pin_again(&self, entry: &Entry<T>) {
        entry.lock().pins += 1;
    }

    /// Releases one pin taken by a load.
    pub(crate) fn unpin(&self, entry: &Entry<T>) {
        let mut st = entry.lock();
        st.pins -= 1;
        let idle = st.pins == 0;
        drop(st);
        if idle {
            // Callers waiting for room may evict it now.
            self.budget.wake();
            if self.over_budget() {
                self.background.request_eviction();
            }
        }
    }

    // ---- changing ----

    /// Gives the object a new key, for a write: its blobs keep the old
    /// bytes under the old key. Fails if other handles share the object.
    pub(crate) fn rename(&self, entry: &Arc<Entry<T>>) -> Result<(), CacheError> {
        let mut index = lock(&self.index);
        let mut st = entry.lock();
        if entry.handles.load(Ordering::Acquire) != 1 {
            return Err(CacheError::Shared { key: st.key });
        }
        let old = st.key;
        let new = Key::random();
        st.key = new;
        st.persisted.clear();
        st.failure = None;
        let spilled = mem::take(&mut st.spilled);
        drop(st);
        index.remove(&old);
        index.insert(new, Arc::downgrade(entry));
        drop(index);
        if spilled {
            self.background.delete_spill(old);
        }
        Ok(())
    }

    /// Whether other handles share the object.
    pub(crate) fn is_shared(&self, entry: &Entry<T>) -> bool {
        entry.handles.load(Ordering::Acquire) != 1
    }

    /// Takes the (pinned, resident) value out for a write guard, once no
    /// background job holds a reference to it.
    pub(crate) fn poll_take(&self, entry: &Entry<T>, how: Waiting<'_>) -> Poll<T> {
        let mut st = entry.lock();
        loop {
            // Pinned by the caller, so never evicting or absent; anything
            // but a resident value is left as it was.
            match mem::replace(&mut st.value, Value::Mutating) {
                Value::Resident(v) => match Arc::try_unwrap(v) {
                    Ok(v) => return Poll::Ready(v),
                    Err(v) => st.value = Value::Resident(v),
                },
                other => st.value = other,
            }
            match how {
                Waiting::Block => st = entry.wait(st),
                Waiting::Task(waker) => {
                    st.wake_me(waker);
                    return Poll::Pending;
                }
            }
        }
    }

    /// Takes the resident, pinned value out for a write guard if nothing
    /// else holds it now; no waiting.
    pub(crate) fn try_take(&self, entry: &Entry<T>) -> Option<T> {
        let mut st = entry.lock();
        match mem::replace(&mut st.value, Value::Mutating) {
            Value::Resident(v) => match Arc::try_unwrap(v) {
                Ok(v) => Some(v),
                Err(v) => {
                    st.value = Value::Resident(v);
                    None
                }
            },
            other => {
                st.value = other;
                None
            }
        }
    }

    /// Puts a written value back (a write guard dropped).
    pub(crate) fn put_back(&self, entry: &Entry<T>, value: T) {
        let weight = self.weigh(&value);
        let mut st = entry.lock();
        let old = mem::replace(&mut st.weight, weight);
        st.value = Value::Resident(Arc::new(value));
        entry.announce(st);
        self.reweigh(old, weight);
    }

    /// The last handle of `entry` dropped.
    pub(crate) fn release(&self, entry: &Arc<Entry<T>>) {
        {
            let mut index = lock(&self.index);
            // `register` may have handed out a new handle meanwhile.
            if entry.handles.load(Ordering::Acquire) != 0 {
                return;
            }
            let key = entry.lock().key;
            if index
                .get(&key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(entry)))
            {
                index.remove(&key);
            }
        }
        let mut st = entry.lock();
        st.dropped = true;
        let value = mem::replace(&mut st.value, Value::Absent);
        if value.in_memory() {
            self.release_bytes(st.weight);
        }
        let spilled = mem::take(&mut st.spilled).then_some(st.key);
        entry.announce(st);
        drop(value);
        if let Some(key) = spilled {
            self.background.delete_spill(key);
        }
        self.forget_dead();
    }

    /// Counts a dropped entry that may still sit in the policy's queues and
    /// sweeps them once such entries are a third of what is queued, so the
    /// queues stay proportional to the live objects at O(1) amortised cost.
    fn forget_dead(&self) {
        let dead = self.dead_queued.fetch_add(1, Ordering::Relaxed) + 1;
        if dead < 64 {
            return;
        }
        let mut policy = lock(&self.policy);
        if dead * 3 >= policy.len() {
            policy.retain(|e| !e.lock().dropped);
            self.dead_queued.store(0, Ordering::Relaxed);
        }
    }

    // ---- evicting (the background thread) ----

    /// Encodes `value` and spills it under `key`, then lets go of the
    /// value before the caller announces the outcome: a write guard waits
    /// for the only reference.
    fn spill_value(&self, key: Key, value: Arc<T>) -> Result<(), CacheError> {
        let written = self
            .encode(key, &value)
            .and_then(|bytes| Ok(self.spill(key, &bytes)?));
        drop(value);
        written
    }

    /// Writes a blob to the spill area, in the file of a stale blob waiting
    /// for deletion if there is one (see [`Store::respill`]).
    fn spill(&self, key: Key, bytes: &[u8]) -> Result<(), StoreError> {
        let Some(stale) = self.background.take_stale() else {
            return self.store.write(Place::Spill, key, bytes);
        };
        let reused = self.store.respill(stale, key, bytes);
        if !matches!(reused, Ok(true)) {
            // Still there, or perhaps: removed like any other.
            self.background.delete_spill(stale);
        }
        reused.map(drop)
    }

    /// Evicts until the pool is within budget, or nothing more can go.
    /// `Err` after a failed spill, so the caller can back off.
    pub(crate) fn evict_to_budget(&self) -> Result<(), ()> {
        self.evict_until(self.budget.budget()).map(drop)
    }

    /// Evicts until at most `target` bytes are resident, or nothing more
    /// can go now; how many objects left memory. `Err` after a failed
    /// spill. The background thread and callers short of room run it at
    /// once, on different victims (each takes its own off the queue).
    fn evict_until(&self, target: usize) -> Result<usize, ()> {
        let (mut busy_in_a_row, mut evicted) = (0, 0);
        while self.budget.resident() > target {
            let Some((entry, weight)) = lock(&self.policy).next_victim() else {
                break;
            };
            match self.evict(&entry, weight) {
                Evicted::Done => {
                    busy_in_a_row = 0;
                    evicted += 1;
                }
                Evicted::Gone => busy_in_a_row = 0,
                Evicted::Busy(weight) => {
                    let mut policy = lock(&self.policy);
                    policy.requeue(entry, weight);
                    busy_in_a_row += 1;
                    // Everything queued is in use: wait for a guard to drop.
                    if busy_in_a_row > policy.len() {
                        break;
                    }
                }
                Evicted::Failed(weight) => {
                    lock(&self.policy).requeue(entry, weight);
                    return Err(());
                }
            }
        }
        Ok(evicted)
    }

    fn evict(&self, entry: &Arc<Entry<T>>, queued_weight: usize) -> Evicted {
        let mut st = entry.lock();
        if st.dropped {
            return Evicted::Gone;
        }
        let value = match &st.value {
            Value::Resident(v) if st.pins == 0 && st.waiters == 0 => v.clone(),
            Value::Absent | Value::Loading { .. } => return Evicted::Gone,
            _ => return Evicted::Busy(queued_weight.max(st.weight)),
        };
        let weight = st.weight;
        if st.on_disk() {
            st.value = Value::Absent;
            drop(st);
            drop(value);
            self.release_bytes(weight);
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            return Evicted::Done;
        }
        st.value = Value::Evicting(value.clone());
        let key = st.key;
        drop(st);
        let written = self.spill_value(key, value);
        let mut st = entry.lock();
        let outcome = if st.dropped {
            // `release` accounted for the memory; the blob is ours to delete.
            if written.is_ok() {
                self.background.delete_spill(key);
            }
            Evicted::Gone
        } else {
            match written {
                Ok(()) => {
                    self.counters.spills.fetch_add(1, Ordering::Relaxed);
                    if st.key != key {
                        self.background.delete_spill(key);
                    } else {
                        st.spilled = true;
                    }
                    if matches!(st.value, Value::Evicting(_)) {
                        st.value = Value::Absent;
                        self.release_bytes(weight);
                        self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                        Evicted::Done
                    } else {
                        Evicted::Busy(st.weight)
                    }
                }
                Err(e) => {
                    // Back to resident, unless a load took it back already.
                    st.value = match mem::replace(&mut st.value, Value::Absent) {
                        Value::Evicting(v) => Value::Resident(v),
                        other => other,
                    };
                    self.counters.spill_failures.fetch_add(1, Ordering::Relaxed);
                    *lock(&self.counters.last_spill_error) = Some(e);
                    Evicted::Failed(weight)
                }
            }
        };
        entry.announce(st);
        outcome
    }

    // ---- persisting ----

    /// Writes the object to the spill area now, if it has no blob yet, and
    /// keeps it in memory: evicting it later costs no write.
    pub(crate) fn write_now(&self, entry: &Arc<Entry<T>>) -> Result<(), CacheError> {
        let mut st = entry.lock();
        let (key, value) = loop {
            if st.on_disk() || st.dropped {
                return Ok(());
            }
            match &st.value {
                Value::Resident(v) => break (st.key, v.clone()),
                // An eviction writing it, or its own guard changing it:
                // what they leave decides.
                Value::Evicting(_) | Value::Mutating => st = entry.wait(st),
                // Not in memory: it has a blob.
                Value::Loading { .. } | Value::Absent => return Ok(()),
            }
        };
        drop(st);
        let written = self.spill_value(key, value);
        let mut st = entry.lock();
        if written.is_ok() {
            if st.key == key && !st.dropped {
                st.spilled = true;
            } else {
                self.background.delete_spill(key);
            }
        }
        entry.announce(st);
        written
    }

    /// Makes the object durable in `location` (blocking).
    pub(crate) fn persist(
        &self,
        entry: &Arc<Entry<T>>,
        location: &Location,
    ) -> Result<(), CacheError> {
        enum From<T> {
            Memory(Arc<T>),
            Blob(Source),
        }
        let mut st = entry.lock();
        let (key, from) = loop {
            if st.persisted.contains(location) {
                return Ok(());
            }
            match (&st.value, st.source()) {
                (Value::Resident(v) | Value::Evicting(v), _) => {
                    break (st.key, From::Memory(v.clone()));
                }
                (_, Some(source)) => break (st.key, From::Blob(source)),
                // Being changed by its own handle's guard: wait for it.
                (_, None) => st = entry.wait(st),
            }
        };
        drop(st);
        let written = match from {
            From::Memory(v) => {
                let bytes = self.encode(key, &v);
                // Before announcing: a write guard waits for the only
                // reference.
                drop(v);
                bytes.and_then(|b| Ok(self.store.write(Place::Persisted(location), key, &b)?))
            }
            From::Blob(source) => {
                Ok(self
                    .store
                    .copy(source.place(), Place::Persisted(location), key)?)
            }
        };
        let mut st = entry.lock();
        if written.is_ok() && st.key == key && !st.persisted.contains(location) {
            st.persisted.push(location.clone());
        }
        entry.announce(st);
        written
    }

    // ---- locations ----

    pub(crate) fn register(
        self: &Arc<Self>,
        location: &Location,
        key: Key,
    ) -> Result<Handle<T>, CacheError> {
        if !self.store.contains(Place::Persisted(location), key)? {
            return Err(StoreError::NotFound {
                key,
                place: Place::Persisted(location).to_string(),
            }
            .into());
        }
        let mut index = lock(&self.index);
        if let Some(entry) = index.get(&key).and_then(Weak::upgrade) {
            entry.handles.fetch_add(1, Ordering::AcqRel);
            let mut st = entry.lock();
            if !st.persisted.contains(location) {
                st.persisted.push(location.clone());
            }
            drop(st);
            return Ok(Handle::from_registered(self.clone(), entry));
        }
        let entry = self.new_entry(key, Value::Absent, 0);
        entry.lock().persisted.push(location.clone());
        index.insert(key, Arc::downgrade(&entry));
        drop(index);
        Ok(Handle::new(self.clone(), entry))
    }

    /// Deletes a persisted blob. A live object that relies on it gets a
    /// spilled copy first, so nothing it may still load is lost.
    pub(crate) fn delete(&self, location: &Location, key: Key) -> Result<bool, CacheError> {
        let live = lock(&self.index).get(&key).and_then(Weak::upgrade);
        if let Some(entry) = live {
            let mut st = entry.lock();
            if st.key == key && st.persisted.contains(location) {
                let only_copy = !st.spilled && st.persisted.len() == 1;
                drop(st);
                if only_copy {
                    self.store
                        .copy(Place::Persisted(location), Place::Spill, key)?;
                }
                st = entry.lock();
                if st.key == key {
                    st.spilled |= only_copy;
                    st.persisted.retain(|l| l != location);
                } else if only_copy {
                    self.background.delete_spill(key);
                }
            }
        }
        Ok(self.store.remove(Place::Persisted(location), key)?)
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            objects: lock(&self.index).len(),
            resident_bytes: self.budget.resident(),
            budget_bytes: self.budget.budget(),
            limit_bytes: self.budget.limit(),
            loads: self.counters.loads.load(Ordering::Relaxed),
            spills: self.counters.spills.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
            spill_failures: self.counters.spill_failures.load(Ordering::Relaxed),
            last_spill_error: lock(&self.counters.last_spill_error).clone(),
        }
    }
}

fn same_source(a: &Source, b: &Source) -> bool {
    match (a, b) {
        (Source::Spill, Source::Spill) => true,
        (Source::Persisted(x), Source::Persisted(y)) => x == y,
        _ => false,
    }
}

impl<T> Shared<T> {
    fn over_budget(&self) -> bool {
        self.budget.over_budget()
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        self.background.shut_down();
    }
}

/// A pool of objects of type `T` kept in memory under a byte budget, the
/// rest in a [`Store`].
///
/// Cloning a pool is cheap and gives another reference to the same pool.
/// The pool lives while any clone or [`Handle`] does; a background thread
/// evicts objects past the budget and deletes the spilled blobs of dropped
/// objects, and is stopped (its queued deletions done) when the pool goes.
pub struct Pool<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Pool<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("budget", &self.shared.budget.budget())
            .field("resident", &self.shared.budget.resident())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Pool<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        Self { shared }
    }

    /// A pool over `store` that encodes objects with `codec` and keeps
    /// `budget` bytes of them in memory, as measured by `weigher` (for
    /// example `|v: &Vec<u8>| v.len()`), with the default
    /// [`PoolOptions`]: at most an eighth more while writers outrun the
    /// background thread.
    ///
    /// # Errors
    ///
    /// [`CacheError::Spawn`] if a background thread cannot start.
    pub fn new(
        store: impl Store,
        codec: impl Codec<T>,
        budget: usize,
        weigher: impl Fn(&T) -> usize + Send + Sync + 'static,
    ) -> Result<Self, CacheError> {
        Self::with_options(store, codec, weigher, PoolOptions::new(budget))
    }

    /// A pool with the given options.
    ///
    /// # Errors
    ///
    /// [`CacheError::Spawn`] if a background thread cannot start.
    pub fn with_options(
        store: impl Store,
        codec: impl Codec<T>,
        weigher: impl Fn(&T) -> usize + Send + Sync + 'static,
        options: PoolOptions,
    ) -> Result<Self, CacheError> {
        let budget = options.budget;
        let store: Arc<dyn Store> = Arc::new(store);
        let background = Arc::new(Background::new());
        let shared = Arc::new(Shared {
            store: store.clone(),
            codec: Box::new(codec),
            weigher: Box::new(weigher),
            budget: Budget::new(budget, options.slack.unwrap_or(budget / 8)),
            admit_timeout: options.admit_timeout,
            index: Mutex::new(HashMap::new()),
            policy: Mutex::new(S3Fifo::new(budget)),
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
        Ok(Self { shared })
    }

    /// Adds an object; it stays in memory until the budget needs its room.
    ///
    /// When the pool is at its limit (see [`PoolOptions::slack`]), this
    /// thread makes room first, writing cold objects to the spill area, or
    /// waits for pinned objects to be released, up to
    /// [`PoolOptions::admit_timeout`]. So it may block: from async code,
    /// call it where blocking is allowed (`spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`Rejected`], holding the value, with [`CacheError::OverBudget`] if no
    /// room was made in time (what is in memory is pinned or cannot be
    /// spilled).
    pub fn insert(&self, value: T) -> Result<Handle<T>, Rejected<T>> {
        self.shared.insert(value)
    }

    /// A handle to the object persisted under `key` in `location`, without
    /// loading it. If the pool already holds that key, the handle shares
    /// the object. The check that the blob exists runs away from the
    /// calling task.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] (as [`CacheError::Store`]) if the location
    /// has no such blob; an I/O failure checking it.
    pub async fn register(&self, location: &Location, key: Key) -> Result<Handle<T>, CacheError> {
        let (shared, location) = (self.shared.clone(), location.clone());
        run::off_thread(move || shared.register(&location, key)).await?
    }

    /// [`register`](Pool::register) on this thread.
    ///
    /// # Errors
    ///
    /// As [`register`](Pool::register).
    pub fn blocking_register(
        &self,
        location: &Location,
        key: Key,
    ) -> Result<Handle<T>, CacheError> {
        self.shared.register(location, key)
    }

    /// The keys persisted in `location`, and files there the store did not
    /// write (reported, never deleted).
    ///
    /// # Errors
    ///
    /// An I/O failure reading the location.
    pub fn list(&self, location: &Location) -> Result<Listing, CacheError> {
        Ok(self.shared.store.list(location)?)
    }

    /// Reads the blob of `key` in `location` and checks its checksum and
    /// that the codec decodes it.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::Corrupt`], an I/O failure,
    /// or [`CacheError::Codec`].
    pub fn check(&self, location: &Location, key: Key) -> Result<(), CacheError> {
        let bytes = self.shared.store.read(Place::Persisted(location), key)?;
        self.shared
            .codec
            .decode_owned(bytes)
            .map(drop)
            .map_err(|source| CacheError::Codec { key, source })
    }

    /// Deletes the blob of `key` from `location`; returns whether there was
    /// one. Objects in the pool stay loadable: one that relied on this blob
    /// gets a spilled copy first (a hard link with the file store).
    ///
    /// # Errors
    ///
    /// An I/O failure; the blob is then still there.
    pub fn delete(&self, location: &Location, key: Key) -> Result<bool, CacheError> {
        self.shared.delete(location, key)
    }

    /// Counters and memory use.
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// Blocks until no eviction is pending: the pool is within budget, or
    /// everything over it is in use (or its spill failed and waits for a
    /// retry). It does not wait for deletions of stale spilled blobs,
    /// which never hold up eviction; [`wait_finished`](Pool::wait_finished)
    /// does.
    pub fn wait_idle(&self) {
        self.shared.background.wait_idle();
    }

    /// Blocks until all background work is done: no eviction pending and
    /// the spilled blobs of dropped and rewritten objects deleted.
    pub fn wait_finished(&self) {
        self.shared.background.wait_finished();
    }

    /// [`wait_finished`](Pool::wait_finished) for async code.
    pub async fn finished(&self) {
        let background = &self.shared.background;
        std::future::poll_fn(|cx| background.poll_finished(cx.waker())).await;
    }
}

/// How a [`Pool`] keeps to its budget.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolOptions {
    /// Bytes of objects in memory (by the weigher) that the background
    /// thread keeps the pool to.
    pub budget: usize,
    /// How far past the budget inserts and loads may take the pool before
    /// the caller must make room itself: `None` for an eighth of the
    /// budget. Resident bytes never pass `budget + slack`, except for one
    /// object larger than that alone in memory, and the growth of objects
    /// handed back by write guards until the next insert or load makes
    /// room.
    pub slack: Option<usize>,
    /// How long an insert or load waits for room when everything in memory
    /// is pinned or cannot be spilled, before it fails with
    /// [`CacheError::OverBudget`]. Default 5 s.
    pub admit_timeout: Duration,
}

impl PoolOptions {
    /// The defaults for a budget of `budget` bytes.
    #[must_use]
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            slack: None,
            admit_timeout: Duration::from_secs(5),
        }
    }

    /// Sets [`slack`](PoolOptions::slack) in bytes.
    #[must_use]
    pub fn slack(mut self, bytes: usize) -> Self {
        self.slack = Some(bytes);
        self
    }

    /// Sets [`admit_timeout`](PoolOptions::admit_timeout).
    #[must_use]
    pub fn admit_timeout(mut self, timeout: Duration) -> Self {
        self.admit_timeout = timeout;
        self
    }
}

/// An insert that found no room: the value, given back, and why.
pub struct Rejected<T> {
    /// The value that was not inserted.
    pub value: T,
    /// Why ([`CacheError::OverBudget`]).
    pub error: CacheError,
}

impl<T> fmt::Debug for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not inserted: {}", self.error)
    }
}

// No `source`: the message includes the error already.
impl<T> std::error::Error for Rejected<T> {}

impl<T> From<Rejected<T>> for CacheError {
    fn from(r: Rejected<T>) -> Self {
        r.error
    }
}
