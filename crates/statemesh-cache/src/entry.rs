//! One object of a pool: where its value is, and who waits for it.
//!
//! Every change of an entry's [`State`] happens under its mutex, and every
//! change someone may wait for is announced with [`Entry::announce`], which
//! wakes blocked threads (a condition variable) and async tasks (wakers
//! registered under the same mutex, so no wake-up is ever lost).

use crate::error::CacheError;
use crate::key::Key;
use crate::policy::Tracked;
use crate::store::{Location, Place};
use std::sync::atomic::{AtomicU8, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;

/// Where an object's value is.
pub(crate) enum Value<T> {
    /// In memory.
    Resident(Arc<T>),
    /// In memory, and being written to the spill area by the evictor, which
    /// holds a second reference. A load takes it back (it becomes resident
    /// again); the evictor notices when it finishes.
    Evicting(Arc<T>),
    /// Taken out by a write guard.
    Mutating,
    /// Being read from the store. The attempt is done by whoever claims it
    /// first: the task spawned for it, or a blocking caller, so a caller
    /// blocked on a load never waits for a thread that may not come.
    Loading { attempt: u64, claimed: bool },
    /// Only on disk (the entry has a spilled or persisted blob).
    Absent,
}

impl<T> Value<T> {
    /// Whether the value occupies memory (counts against the budget).
    pub(crate) fn in_memory(&self) -> bool {
        matches!(
            self,
            Value::Resident(_) | Value::Evicting(_) | Value::Mutating
        )
    }
}

pub(crate) struct State<T> {
    pub(crate) key: Key,
    pub(crate) value: Value<T>,
    /// The value's weight while it is in memory.
    pub(crate) weight: usize,
    /// Read and write guards alive; a pinned value is never evicted.
    pub(crate) pins: usize,
    /// Callers waiting for a load of this object. A value they wait for is
    /// not evicted before they take it (a load that puts the pool over
    /// budget wakes the evictor at once, and the new object is its first
    /// candidate): otherwise they would only read it again.
    pub(crate) waiters: usize,
    /// A blob of the current key is in the spill area.
    pub(crate) spilled: bool,
    /// Locations holding a blob of the current key.
    pub(crate) persisted: Vec<Location>,
    /// The last handle has dropped.
    pub(crate) dropped: bool,
    /// How the last failed load attempt failed, for everyone who waited on
    /// it.
    pub(crate) failure: Option<(u64, CacheError)>,
    wakers: Vec<Waker>,
}

impl<T> State<T> {
    /// Where a copy of the current key can be read, the spill area first
    /// (it is deleted only with the entry, persisted blobs can be deleted
    /// by the user).
    pub(crate) fn source(&self) -> Option<Source> {
        if self.spilled {
            Some(Source::Spill)
        } else {
            self.persisted.first().cloned().map(Source::Persisted)
        }
    }

    /// Whether the value may be dropped from memory without writing it.
    pub(crate) fn on_disk(&self) -> bool {
        self.spilled || !self.persisted.is_empty()
    }

    /// Registers `waker` to be woken at the next announcement.
    pub(crate) fn wake_me(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|w| w.will_wake(waker)) {
            self.wakers.push(waker.clone());
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

/// A place a blob of an entry can be read from, owned.
#[derive(Clone)]
pub(crate) enum Source {
    Spill,
    Persisted(Location),
}

impl Source {
    pub(crate) fn place(&self) -> Place<'_> {
        match self {
            Source::Spill => Place::Spill,
            Source::Persisted(l) => Place::Persisted(l),
        }
    }
}

pub(crate) struct Entry<T> {
    id: u64,
    state: Mutex<State<T>>,
    changed: Condvar,
    /// Handles alive. Counted apart from the `Arc`, which the evictor and
    /// background jobs also hold.
    pub(crate) handles: AtomicUsize,
    freq: AtomicU8,
}

impl<T> Entry<T> {
    pub(crate) fn new(id: u64, key: Key, value: Value<T>, weight: usize) -> Self {
        Self {
            id,
            state: Mutex::new(State {
                key,
                value,
                weight,
                pins: 0,
                waiters: 0,
                spilled: false,
                persisted: Vec::new(),
                dropped: false,
                failure: None,
                wakers: Vec::new(),
            }),
            changed: Condvar::new(),
            handles: AtomicUsize::new(1),
            freq: AtomicU8::new(0),
        }
    }

    /// Counts a hit for the eviction policy.
    pub(crate) fn hit(&self) {
        crate::policy::record_hit(&self.freq);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock (user code runs outside
        // it), so a poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until the next announcement.
    pub(crate) fn wait<'a>(&'a self, state: MutexGuard<'a, State<T>>) -> MutexGuard<'a, State<T>> {
        self.changed.wait(state).unwrap_or_else(|e| e.into_inner())
    }

    /// Releases the lock and wakes everyone waiting for a change.
    pub(crate) fn announce(&self, mut state: MutexGuard<'_, State<T>>) {
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        self.changed.notify_all();
        for w in wakers {
            w.wake();
        }
    }
}

impl<T> Tracked for Arc<Entry<T>> {
    fn id(&self) -> u64 {
        self.id
    }

    fn freq(&self) -> &AtomicU8 {
        &self.freq
    }
}
