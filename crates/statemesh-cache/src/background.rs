//! The pool's background thread: evicts past the budget and deletes the
//! spilled blobs of dropped objects.
//!
//! It is a plain thread, not a task, so the pool needs no runtime. It holds
//! the pool weakly and the store strongly: when the pool goes, the thread
//! finishes the deletions it was given and stops.

use crate::error::CacheError;
use crate::key::Key;
use crate::pool::{Shared, evict_round};
use crate::store::{Place, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// After a failed spill, how long to wait before the first retry, and at
/// most. A full disk is not hammered; a transient failure is retried soon.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Work {
    evict: bool,
    deletions: Vec<Key>,
    busy: bool,
    shut_down: bool,
    /// The last eviction round failed to spill; retrying after a backoff.
    stalled: bool,
}

impl Work {
    fn idle(&self) -> bool {
        (!self.evict || self.stalled) && self.deletions.is_empty() && !self.busy
    }
}

pub(crate) struct Background {
    work: Mutex<Work>,
    changed: Condvar,
    /// An eviction request is queued: further requests need no lock.
    requested: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Background {
    pub(crate) fn new() -> Self {
        Self {
            work: Mutex::new(Work::default()),
            changed: Condvar::new(),
            requested: AtomicBool::new(false),
            thread: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Work> {
        self.work.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn start<T: Send + Sync + 'static>(
        self: &Arc<Self>,
        pool: Weak<Shared<T>>,
        store: Arc<dyn Store>,
    ) -> Result<(), CacheError> {
        let me = self.clone();
        let handle = thread::Builder::new()
            .name("statemesh-cache-evict".into())
            .spawn(move || me.run(&pool, &*store))
            .map_err(|e| CacheError::Spawn(Arc::new(e)))?;
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(())
    }

    pub(crate) fn request_eviction(&self) {
        if !self.requested.swap(true, Ordering::AcqRel) {
            self.lock().evict = true;
            self.changed.notify_all();
        }
    }

    pub(crate) fn delete_spill(&self, key: Key) {
        self.lock().deletions.push(key);
        self.changed.notify_all();
    }

    pub(crate) fn wait_idle(&self) {
        let mut work = self.lock();
        while !work.idle() && !work.shut_down {
            work = self.changed.wait(work).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Stops the thread once its deletions are done, and waits for it
    /// unless this is that thread (it may hold the pool's last reference).
    pub(crate) fn shut_down(&self) {
        self.lock().shut_down = true;
        self.changed.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle
            && h.thread().id() != thread::current().id()
        {
            let _ = h.join();
        }
    }

    fn run<T: Send + Sync + 'static>(&self, pool: &Weak<Shared<T>>, store: &dyn Store) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (evict, deletions) = {
                let mut work = self.lock();
                work.busy = false;
                self.changed.notify_all();
                while !work.evict && work.deletions.is_empty() && !work.shut_down {
                    work = self.changed.wait(work).unwrap_or_else(|e| e.into_inner());
                }
                if work.stalled && work.deletions.is_empty() && !work.shut_down {
                    // Retry the failed spill later; new requests do not
                    // shorten the wait, a shutdown does.
                    work = self
                        .changed
                        .wait_timeout(work, backoff)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                if work.shut_down && work.deletions.is_empty() {
                    return;
                }
                work.busy = true;
                self.requested.store(false, Ordering::Release);
                (
                    std::mem::take(&mut work.evict),
                    std::mem::take(&mut work.deletions),
                )
            };
            for key in deletions {
                // A blob that cannot be deleted now is deleted by the next
                // start of a store on this directory.
                let _ = store.remove(Place::Spill, key);
            }
            if evict {
                let failed = matches!(evict_round(pool), Some(Err(())));
                let mut work = self.lock();
                work.stalled = failed;
                if failed {
                    work.evict = true;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                } else {
                    backoff = FIRST_BACKOFF;
                }
            }
        }
    }
}
