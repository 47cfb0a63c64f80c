//! The pool's background threads: one evicts past the budget, the other
//! deletes the spilled blobs of dropped and rewritten objects.
//!
//! They are plain threads, not tasks, so the pool needs no runtime. Two,
//! so that a backlog of deletions (tens of thousands of files after a burst
//! of writes) never delays eviction: deleting a file takes a system call
//! each, and evicting is what keeps memory within the budget. The evictor
//! holds the pool weakly; the deleter needs only the store. When the pool
//! goes, the evictor stops and the deleter finishes the deletions it was
//! given, then stops.
//!
//! The evictor is handed a round of eviction to run rather than the pool
//! itself: the pool imports this module to start the threads, and naming
//! the pool here would make the two modules import each other.

use crate::error::CacheError;
use crate::key::Key;
use crate::store::{Place, Store};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Deletions taken at a time, so that a spill finds stale files left to
/// reuse while the deleter works through a backlog.
const DELETE_BATCH: usize = 64;

/// Stale spilled blobs kept for spills to reuse (see `Store::respill`):
/// the deleter leaves the newest this many alone unless asked to finish.
/// Their disk is the cost: at most this many objects' worth.
const REUSE_RESERVE: usize = 256;

/// After a failed spill, how long to wait before the first retry, and at
/// most. A full disk is not hammered; a transient failure is retried soon.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Work {
    evict: bool,
    evicting: bool,
    /// The last eviction round failed to spill; retrying after a backoff.
    stalled: bool,
    deletions: VecDeque<Key>,
    deleting: bool,
    /// Someone waits for every deletion: the reserve goes too.
    flush: bool,
    shut_down: bool,
    /// Tasks waiting for [`Work::idle`] or [`Work::finished`].
    wakers: Vec<Waker>,
}

impl Work {
    /// No eviction pending or running (a stalled one waits for its retry).
    fn idle(&self) -> bool {
        (!self.evict || self.stalled) && !self.evicting
    }

    /// Idle, and every deletion done.
    fn finished(&self) -> bool {
        self.idle() && self.deletions.is_empty() && !self.deleting
    }
}

pub(crate) struct Background {
    work: Mutex<Work>,
    changed: Condvar,
    /// An eviction request is queued: further requests need no lock.
    requested: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Background {
    pub(crate) fn new() -> Self {
        Self {
            work: Mutex::new(Work::default()),
            changed: Condvar::new(),
            requested: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Work> {
        self.work.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every thread and task waiting on the work, and unlocks it.
    fn announce(&self, mut work: MutexGuard<'_, Work>) {
        let wakers = std::mem::take(&mut work.wakers);
        drop(work);
        self.changed.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// Starts the threads: the evictor runs `evict_round` whenever eviction
    /// is requested, until the pool shuts it down. A round evicts down to
    /// the budget; `Err` means a spill failed and the round is retried
    /// after a backoff.
    pub(crate) fn start(
        self: &Arc<Self>,
        evict_round: impl Fn() -> Result<(), ()> + Send + 'static,
        store: Arc<dyn Store>,
    ) -> Result<(), CacheError> {
        let spawn = |name: &str, job: Box<dyn FnOnce() + Send>| {
            thread::Builder::new()
                .name(name.into())
                .spawn(job)
                .map_err(|e| CacheError::Spawn(Arc::new(e)))
        };
        let me = self.clone();
        let evictor = spawn(
            "statemesh-cache-evict",
            Box::new(move || me.evict(&evict_round)),
        )?;
        let me = self.clone();
        let deleter = match spawn(
            "statemesh-cache-delete",
            Box::new(move || me.delete(&*store)),
        ) {
            Ok(d) => d,
            Err(e) => {
                self.shut_down();
                drop(evictor.join());
                return Err(e);
            }
        };
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([evictor, deleter]);
        Ok(())
    }

    pub(crate) fn request_eviction(&self) {
        if !self.requested.swap(true, Ordering::AcqRel) {
            let mut work = self.lock();
            work.evict = true;
            self.announce(work);
        }
    }

    pub(crate) fn delete_spill(&self, key: Key) {
        let mut work = self.lock();
        work.deletions.push_back(key);
        self.announce(work);
    }

    /// A stale spilled blob queued for deletion, taken off the queue for
    /// a spill to reuse its file.
    pub(crate) fn take_stale(&self) -> Option<Key> {
        let mut work = self.lock();
        let key = work.deletions.pop_back();
        if key.is_some() && work.deletions.is_empty() && !work.deleting {
            self.announce(work);
        }
        key
    }

    /// Blocks until no eviction is pending or running.
    pub(crate) fn wait_idle(&self) {
        self.wait_for(Work::idle, false);
    }

    /// Blocks until no eviction is pending or running and every deletion
    /// is done.
    pub(crate) fn wait_finished(&self) {
        self.wait_for(Work::finished, true);
    }

    /// Waits until `done`; with `flush`, asks the deleter for the reserve
    /// too whenever deletions are queued (an eviction finishing meanwhile
    /// can queue one).
    fn wait_for(&self, done: fn(&Work) -> bool, flush: bool) {
        let mut work = self.lock();
        while !done(&work) && !work.shut_down {
            if flush && !work.deletions.is_empty() && !work.flush {
                work.flush = true;
                self.changed.notify_all();
            }
            work = self.changed.wait(work).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// [`wait_finished`](Self::wait_finished) for a task.
    pub(crate) fn poll_finished(&self, waker: &Waker) -> Poll<()> {
        let mut work = self.lock();
        if work.finished() || work.shut_down {
            return Poll::Ready(());
        }
        if !work.deletions.is_empty() && !work.flush {
            work.flush = true;
            self.changed.notify_all();
        }
        if !work.wakers.iter().any(|w| w.will_wake(waker)) {
            work.wakers.push(waker.clone());
        }
        Poll::Pending
    }

    /// Stops the threads once the deletions are done, and waits for them
    /// unless this is one of them (it may hold the pool's last reference).
    pub(crate) fn shut_down(&self) {
        let mut work = self.lock();
        work.shut_down = true;
        self.announce(work);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            if t.thread().id() != thread::current().id() {
                let _ = t.join();
            }
        }
    }

    fn evict(&self, evict_round: &dyn Fn() -> Result<(), ()>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            {
                let mut work = self.lock();
                work.evicting = false;
                self.changed.notify_all();
                let wakers = std::mem::take(&mut work.wakers);
                for w in wakers {
                    w.wake();
                }
                while !work.evict && !work.shut_down {
                    work = self.changed.wait(work).unwrap_or_else(|e| e.into_inner());
                }
                if work.stalled && !work.shut_down {
                    // Retry the failed spill later; new requests do not
                    // shorten the wait, a shutdown does.
                    work = self
                        .changed
                        .wait_timeout(work, backoff)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                if work.shut_down {
                    return;
                }
                work.evicting = true;
                work.evict = false;
                self.requested.store(false, Ordering::Release);
            }
            let failed = evict_round().is_err();
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

    fn delete(&self, store: &dyn Store) {
        loop {
            let deletions = {
                let mut work = self.lock();
                work.deleting = false;
                if work.deletions.is_empty() {
                    work.flush = false;
                    let wakers = std::mem::take(&mut work.wakers);
                    self.changed.notify_all();
                    for w in wakers {
                        w.wake();
                    }
                }
                let due = |w: &Work| {
                    w.deletions.len() > REUSE_RESERVE
                        || (!w.deletions.is_empty() && (w.flush || w.shut_down))
                };
                while !due(&work) && !work.shut_down {
                    work = self.changed.wait(work).unwrap_or_else(|e| e.into_inner());
                }
                if work.deletions.is_empty() {
                    return;
                }
                work.deleting = true;
                // The oldest, down to the reserve unless finishing: the
                // newest are the likeliest to be reused.
                let keep = if work.flush || work.shut_down {
                    0
                } else {
                    REUSE_RESERVE
                };
                let n = work.deletions.len().saturating_sub(keep).min(DELETE_BATCH);
                work.deletions.drain(..n).collect::<Vec<_>>()
            };
            for key in deletions {
                // A blob that cannot be deleted now is deleted by the next
                // start of a store on this directory.
                let _ = store.remove(Place::Spill, key);
            }
        }
    }
}
