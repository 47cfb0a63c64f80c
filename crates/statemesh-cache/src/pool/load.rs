//! Reading an object: making its value resident and pinning it.
//!
//! A load attempt is claimed by whoever gets to it first (a blocking
//! caller, or the job spawned for an async one), so concurrent loads of one
//! object share one read and a blocked caller never waits for a thread that
//! may not come. A failed attempt fails every caller that waited on it, and
//! the next caller starts a new one.

use super::shared::Shared;
use crate::entry::{Entry, Source, State, Value, Waiting};
use crate::error::{CacheError, StoreError};
use crate::key::Key;
use crate::run;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

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

impl<T: Send + Sync + 'static> Shared<T> {
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
}

fn same_source(a: &Source, b: &Source) -> bool {
    match (a, b) {
        (Source::Spill, Source::Spill) => true,
        (Source::Persisted(x), Source::Persisted(y)) => x == y,
        _ => false,
    }
}
