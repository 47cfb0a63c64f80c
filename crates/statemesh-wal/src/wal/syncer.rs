//! Making written appends durable: the syncer thread runs one `fdatasync`
//! for everything written so far, and the completer thread wakes the
//! appenders a sync covered while the syncer already runs the next one.
//! While round *k* syncs, the writer writes round *k + 1*, and every append
//! that arrives during a sync joins the next one: that is the group commit.
//!
//! How rounds become syncs is decided here, by three measured rules: a lone
//! append is synced by the writer itself ([`Syncer::sync_inline`]); once
//! appends arrive during such a sync, every round goes to the syncer
//! (pipelined mode); and the syncer holds a sync back until as many appends
//! wait as the last one carried ([`Syncer::gather`]).

use super::failure::Failure;
use super::lock::lock;
use super::queue::{Outcome, UpdateDone};
use crate::completion::Stages;
use crate::error::{AppendError, UpdateError};
use crate::segment::SEGMENT_HEADER_LEN;
use crate::storage::StorageFile;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A position in a segment below which everything is durable: what the
/// next batch marker in that segment vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Durable {
    /// The segment's first index.
    pub(crate) segment: u64,
    pub(crate) end: u64,
}

struct SyncJob<F> {
    files: Vec<Arc<F>>,
    /// How far the active segment was written when the job was made.
    upto: Option<Durable>,
    done: Vec<Arc<Stages<Outcome>>>,
    update: Option<UpdateDone>,
}

type Finished<F> = (Vec<SyncJob<F>>, Result<(), Arc<io::Error>>);

struct State<F> {
    jobs: Vec<SyncJob<F>>,
    /// Synced jobs whose completions the completer has yet to fire.
    finished: Vec<Finished<F>>,
    completing: bool,
    completer_sleeping: bool,
    busy: bool,
    /// The syncer is blocked waiting for jobs.
    sleeping: bool,
    /// The writer waits in `wait_idle`: whoever ends a sync or a
    /// completion round wakes it (and clears this).
    idle_wanted: bool,
    closed: bool,
    /// Files written since the last sync (Interval/Never policies), and how
    /// far.
    dirty: Vec<Arc<F>>,
    dirty_upto: Option<Durable>,
    /// Appends keep arriving while syncs run: every round goes to the
    /// syncer, even a round of one, so that the next is written meanwhile.
    pipelined: bool,
    /// The syncer is holding a sync back until this many appends wait
    /// (zero: it is not).
    gathering: usize,
}

/// The sync side of the log, shared by the writer, the syncer and the
/// completer.
pub(crate) struct Syncer<F> {
    state: Mutex<State<F>>,
    /// Wakes the syncer.
    ready: Condvar,
    /// Wakes the writer waiting in `wait_idle`.
    idle: Condvar,
    /// Wakes the completer.
    completions: Condvar,
    /// How far the active segment is known durable: set after each sync,
    /// read by the writer for each batch marker.
    synced: Mutex<Durable>,
    /// `SyncPolicy::Interval`: how often the syncer syncs by itself.
    interval: Option<Duration>,
}

/// What the previous sync carried and how long it took.
struct LastSync {
    appends: usize,
    took: Duration,
}

fn appends_in<F>(jobs: &[SyncJob<F>]) -> usize {
    jobs.iter().map(|j| j.done.len()).sum()
}

/// One `fdatasync` of appended data, timed into the `metrics` facade
/// (`statemesh_wal_sync_seconds`) when that feature is on.
fn timed_sync<F: StorageFile + ?Sized>(file: &F) -> io::Result<()> {
    #[cfg(feature = "metrics")]
    let started = Instant::now();
    let result = file.sync_data();
    #[cfg(feature = "metrics")]
    metrics::histogram!("statemesh_wal_sync_seconds").record(started.elapsed().as_secs_f64());
    result
}

fn complete_jobs<F>(jobs: Vec<SyncJob<F>>, result: &Result<(), Arc<io::Error>>) {
    for job in jobs {
        for d in job.done {
            d.durable
                .complete(result.clone().map_err(AppendError::Failed));
        }
        if let Some(u) = job.update {
            u.complete(result.clone().map_err(UpdateError::Failed));
        }
    }
}

impl<F: StorageFile> Syncer<F> {
    /// `synced`: how far the active segment is durable at open.
    pub(crate) fn new(synced: Durable, interval: Option<Duration>) -> Self {
        Self {
            state: Mutex::new(State {
                jobs: Vec::new(),
                finished: Vec::new(),
                completing: false,
                completer_sleeping: false,
                pipelined: false,
                gathering: 0,
                busy: false,
                sleeping: false,
                idle_wanted: false,
                closed: false,
                dirty: Vec::new(),
                dirty_upto: None,
            }),
            ready: Condvar::new(),
            idle: Condvar::new(),
            completions: Condvar::new(),
            synced: Mutex::new(synced),
            interval,
        }
    }

    /// What the next marker in `segment` may vouch for.
    pub(crate) fn durable_in(&self, segment: u64) -> u64 {
        let synced = *lock(&self.synced);
        if synced.segment == segment {
            synced.end
        } else {
            SEGMENT_HEADER_LEN
        }
    }

    /// Notes that a sync covered everything up to `upto`.
    fn note_synced(&self, upto: Durable) {
        let mut synced = lock(&self.synced);
        if (upto.segment, upto.end) > (synced.segment, synced.end) {
            *synced = upto;
        }
    }

    /// Sets how far the active segment is durable, after a cut synced it.
    pub(crate) fn set_synced(&self, upto: Durable) {
        *lock(&self.synced) = upto;
    }

    /// Notes a file written under `Interval` or `Never`, for the next sync.
    pub(crate) fn mark_dirty(&self, file: Arc<F>, upto: Durable) {
        let mut s = lock(&self.state);
        if !s.dirty.iter().any(|f| Arc::ptr_eq(f, &file)) {
            s.dirty.push(file);
        }
        s.dirty_upto = Some(upto);
    }

    /// Queues a sync of `files`, completing `done` and `update` after it.
    pub(crate) fn submit(
        &self,
        files: Vec<Arc<F>>,
        upto: Option<Durable>,
        done: Vec<Arc<Stages<Outcome>>>,
        update: Option<UpdateDone>,
    ) {
        let wake = {
            let mut s = lock(&self.state);
            s.jobs.push(SyncJob {
                files,
                upto,
                done,
                update,
            });
            if s.sleeping || (s.gathering > 0 && appends_in(&s.jobs) >= s.gathering) {
                s.sleeping = false;
                s.gathering = 0;
                true
            } else {
                false
            }
        };
        if wake {
            self.ready.notify_one();
        }
    }

    /// Blocks until no sync runs or waits and every completion has fired:
    /// truncate, purge and metadata updates go after every earlier append
    /// is durable.
    pub(crate) fn wait_idle(&self) {
        let mut s = lock(&self.state);
        while s.busy || !s.jobs.is_empty() || !s.finished.is_empty() || s.completing {
            s.idle_wanted = true;
            s = self.idle.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Stops the syncer (and then the completer) once its jobs are done.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.ready.notify_all();
    }

    /// When this round holds a single append and the syncer is idle, the
    /// writer syncs itself: handing over to the syncer would only add a
    /// thread wake-up to the latency of a lone appender. Whether the
    /// appender really is alone shows during that sync: if another append
    /// arrived meanwhile (`queued`; openraft sends its next entry as soon as
    /// the last is written, not durable), the log switches to pipelined
    /// mode, where every round goes to the syncer and the next round is
    /// written while it syncs. The syncer switches back once a sync of one
    /// append ends with nothing new to do. Returns whether it synced.
    pub(crate) fn sync_inline(
        &self,
        failure: &Failure,
        queued: impl Fn() -> bool,
        file: &Arc<F>,
        upto: Durable,
        durable: &[Arc<Stages<Outcome>>],
    ) -> bool {
        if durable.len() > 1 || queued() {
            return false;
        }
        {
            let mut s = lock(&self.state);
            if s.pipelined || s.busy || !s.jobs.is_empty() || !s.finished.is_empty() || s.completing
            {
                return false;
            }
            s.busy = true;
        }
        let result = match failure.get() {
            Some(e) => Err(e),
            None => timed_sync(&**file).map_err(|e| failure.fail(e)),
        };
        if result.is_ok() {
            self.note_synced(upto);
        }
        // Looked at before the appender is woken, which could otherwise send
        // its next entry in time to count.
        let arrived = queued();
        {
            // Only the writer waits for the syncer to be idle, and it is here.
            let mut s = lock(&self.state);
            s.busy = false;
            s.pipelined = arrived;
        }
        for d in durable {
            d.durable
                .complete(result.clone().map_err(AppendError::Failed));
        }
        true
    }

    /// Holds a sync back, for at most half the duration of the last one,
    /// until as many appends are waiting as that sync carried. Without this,
    /// many appenders split into two groups that alternate (one written
    /// while the other syncs), and each sync carries only half of them;
    /// appenders whose entries just became durable send their next ones
    /// within microseconds.
    fn gather<'a>(
        &'a self,
        mut s: MutexGuard<'a, State<F>>,
        last: &LastSync,
    ) -> MutexGuard<'a, State<F>> {
        if last.appends < 2 {
            return s;
        }
        let deadline = Instant::now() + last.took / 2;
        loop {
            let waiting = appends_in(&s.jobs);
            let now = Instant::now();
            if waiting >= last.appends || now >= deadline || s.closed {
                return s;
            }
            s.gathering = last.appends;
            s = self
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            s.gathering = 0;
        }
    }

    /// The syncer thread.
    pub(crate) fn run(&self, failure: &Failure) {
        let mut last = LastSync {
            appends: 0,
            took: Duration::ZERO,
        };
        loop {
            let (jobs, dirty, dirty_upto) = {
                let mut s = lock(&self.state);
                loop {
                    if !s.jobs.is_empty() {
                        break;
                    }
                    if s.closed {
                        drop(s);
                        self.completions.notify_all();
                        return;
                    }
                    s.sleeping = true;
                    match self.interval {
                        Some(d) => {
                            let (guard, timeout) = self
                                .ready
                                .wait_timeout(s, d)
                                .unwrap_or_else(|e| e.into_inner());
                            s = guard;
                            s.sleeping = false;
                            if timeout.timed_out() && !s.dirty.is_empty() {
                                break;
                            }
                        }
                        None => {
                            s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
                            s.sleeping = false;
                        }
                    }
                }
                if self.interval.is_none() {
                    s = self.gather(s, &last);
                }
                s.busy = true;
                (
                    std::mem::take(&mut s.jobs),
                    std::mem::take(&mut s.dirty),
                    s.dirty_upto.take(),
                )
            };
            let started = Instant::now();
            let mut files: Vec<Arc<F>> = dirty;
            for job in &jobs {
                for f in &job.files {
                    if !files.iter().any(|g| Arc::ptr_eq(f, g)) {
                        files.push(Arc::clone(f));
                    }
                }
            }
            let mut result = Ok(());
            if failure.get().is_none() {
                for f in &files {
                    if let Err(e) = timed_sync(&**f) {
                        result = Err(failure.fail(e));
                        break;
                    }
                }
            }
            if let Some(e) = failure.get() {
                result = Err(e);
            }
            if result.is_ok() {
                let written = jobs.iter().filter_map(|j| j.upto).chain(dirty_upto);
                if let Some(upto) = written.max_by_key(|d| (d.segment, d.end)) {
                    self.note_synced(upto);
                }
            }
            // Waking each appender is a system call; the completer thread does
            // it while this one already runs the next fdatasync, so the woken
            // appenders' next entries make the sync after it.
            last = LastSync {
                appends: appends_in(&jobs),
                took: started.elapsed(),
            };
            #[cfg(feature = "metrics")]
            metrics::histogram!("statemesh_wal_sync_appends").record(last.appends as f64);
            let lone = jobs.len() == 1 && jobs[0].done.len() <= 1;
            let (wake, idle) = {
                let mut s = lock(&self.state);
                if lone && s.jobs.is_empty() {
                    s.pipelined = false;
                }
                if s.jobs.is_empty() && s.finished.is_empty() && !s.completing {
                    // Nothing to sync next: waking the appenders here saves
                    // the hop to the completer. `completing` keeps the writer's
                    // truncates and purges waiting until they are woken.
                    s.completing = true;
                    drop(s);
                    complete_jobs(jobs, &result);
                    let mut s = lock(&self.state);
                    s.completing = false;
                    s.busy = false;
                    (false, std::mem::replace(&mut s.idle_wanted, false))
                } else {
                    s.finished.push((jobs, result));
                    s.busy = false;
                    (
                        std::mem::replace(&mut s.completer_sleeping, false),
                        std::mem::replace(&mut s.idle_wanted, false),
                    )
                }
            };
            if wake {
                self.completions.notify_one();
            }
            if idle {
                self.idle.notify_all();
            }
        }
    }

    /// The completer thread.
    pub(crate) fn run_completer(&self) {
        loop {
            let finished = {
                let mut s = lock(&self.state);
                while s.finished.is_empty() {
                    if s.closed {
                        return;
                    }
                    s.completer_sleeping = true;
                    s = self.completions.wait(s).unwrap_or_else(|e| e.into_inner());
                    s.completer_sleeping = false;
                }
                s.completing = true;
                std::mem::take(&mut s.finished)
            };
            for (jobs, result) in finished {
                complete_jobs(jobs, &result);
            }
            let idle = {
                let mut s = lock(&self.state);
                s.completing = false;
                std::mem::replace(&mut s.idle_wanted, false)
            };
            if idle {
                self.idle.notify_all();
            }
        }
    }
}
