//! The log: appends with group commit, reads, truncate, purge, metadata,
//! and recovery when it opens.
//!
//! Four threads do the work, started by the first write. The *writer*
//! takes every queued operation, encodes appends into one buffer per round,
//! ended by a batch marker (see `record`), and writes it with one `pwrite`,
//! then makes the entries readable. The *syncer* runs `fdatasync`
//! for everything written so far; the *completer* wakes the appenders a sync
//! covered while the syncer runs the next one. While the syncer syncs round
//! *k*, the writer already writes round *k + 1*, and every append that
//! arrives during a sync joins the next one: that is the group commit. The
//! *preparer* zero-fills the next segment ahead of time.

use crate::completion::{Completion, Stages, Wait};
use crate::error::{AppendError, OpenError, ReadError, UpdateError};
use crate::meta::{self, Layout, MAX_META, Meta, MetaFile};
use crate::record::{self, MARKER_LEN, MAX_PAYLOAD, Marker, MarkerKind, Salt};
use crate::recovery::{self, Recovery};
use crate::segment::{self, SEGMENT_HEADER_LEN};
use crate::storage::{FsStorage, Storage, StorageFile};
use std::future::{Future, IntoFuture};
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When an acknowledged append is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// An append completes only after `fdatasync` covered it. A power failure
    /// loses nothing that was acknowledged. The default.
    #[default]
    Always,
    /// An append completes once written to the operating system; the log
    /// syncs every given interval. A process crash loses nothing
    /// acknowledged; a power failure or kernel crash can lose the appends of
    /// the last interval (plus the sync's own duration).
    Interval(Duration),
    /// An append completes once written to the operating system, and the log
    /// syncs only when a segment fills, on [`Wal::sync`], and on close. A
    /// process crash loses nothing acknowledged; a power failure can lose
    /// everything since the last of those.
    Never,
}

/// How a log is opened.
#[derive(Clone, Debug)]
pub struct WalOptions {
    pub(crate) segment_size: u64,
    pub(crate) first_segment_size: Option<u64>,
    pub(crate) sync: SyncPolicy,
    pub(crate) max_batch_bytes: usize,
    pub(crate) first_index: u64,
    pub(crate) repair: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            first_segment_size: None,
            sync: SyncPolicy::Always,
            max_batch_bytes: 4 << 20,
            first_index: 1,
            repair: false,
        }
    }
}

impl WalOptions {
    /// Defaults: 64 MiB segments, [`SyncPolicy::Always`], 4 MiB batches,
    /// first index 1, no repair.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Size at which a segment is sealed and a new one started (4 KiB to
    /// 1 GiB; default 64 MiB). Segments are preallocated to this size. An
    /// entry larger than this is stored alone in a segment of its own size.
    #[must_use]
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Size of a new log's first segment (4 KiB up to `segment_size`;
    /// default: `segment_size`). Each later segment doubles the one before
    /// until it reaches `segment_size`, so a log that never grows costs
    /// little disk (its first segment and one spare of twice that size),
    /// and one that does reaches full-size segments after a few rollovers.
    #[must_use]
    pub fn first_segment_size(mut self, bytes: u64) -> Self {
        self.first_segment_size = Some(bytes);
        self
    }

    /// The size of the segment that follows one of `previous` bytes (none:
    /// the log's first).
    pub(crate) fn next_segment_size(&self, previous: Option<u64>) -> u64 {
        match previous {
            None => self.first_segment_size.unwrap_or(self.segment_size),
            Some(p) => p.saturating_mul(2).min(self.segment_size),
        }
    }

    /// When appends count as durable; see [`SyncPolicy`].
    #[must_use]
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }

    /// Most bytes the writer puts into one `pwrite` (default 4 MiB). Also
    /// bounds how much of the end of the log a crash can leave torn.
    #[must_use]
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// The index of the first entry of a new, empty log (default 1).
    /// [`Wal::append_at`] on an empty log may start anywhere instead.
    #[must_use]
    pub fn first_index(mut self, index: u64) -> Self {
        self.first_index = index;
        self
    }

    /// On damage inside the log, cut it at the last good record instead of
    /// refusing to open. Entries after the damage are deleted: use this only
    /// when they are known to be recoverable elsewhere (a Raft peer).
    #[must_use]
    pub fn repair(mut self, on: bool) -> Self {
        self.repair = on;
        self
    }
}

type Outcome = Result<(), AppendError>;

/// A queued append: which indices it got, and when it is done.
///
/// Await it (or [`Append::wait`]) for durability under the log's
/// [`SyncPolicy`]. Dropping it does not cancel the append.
#[must_use = "an append is durable only when it completes"]
#[derive(Clone)]
pub struct Append {
    first: u64,
    count: u64,
    stages: Arc<Stages<Outcome>>,
}

impl std::fmt::Debug for Append {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Append")
            .field("first", &self.first)
            .field("count", &self.count)
            .field("durable", &self.stages.durable.is_complete())
            .finish()
    }
}

impl Append {
    /// The index of the (first) entry.
    #[must_use]
    pub fn index(&self) -> u64 {
        self.first
    }

    /// How many entries this append holds.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Blocks until the entries are durable under the log's policy.
    ///
    /// # Errors
    ///
    /// [`AppendError::Failed`] if a write or sync failed.
    pub fn wait(&self) -> Result<(), AppendError> {
        self.stages.durable.wait()
    }

    /// Blocks until the entries are written and readable (not yet durable).
    ///
    /// # Errors
    ///
    /// [`AppendError::Failed`] if the write failed.
    pub fn wait_written(&self) -> Result<(), AppendError> {
        self.stages.written.wait()
    }

    /// Resolves once the entries are written and readable (not yet durable).
    pub fn written(&self) -> impl Future<Output = Result<(), AppendError>> + use<> {
        let stages = Arc::clone(&self.stages);
        std::future::poll_fn(move |cx| stages.written.poll(cx))
    }

    /// Calls `f` with the outcome once the entries are durable: on the
    /// log's sync thread, or at once if they already are. Keep `f` short
    /// (openraft's flush callback is the intended use).
    pub fn on_durable(&self, f: impl FnOnce(Result<(), AppendError>) + Send + 'static) {
        self.stages.durable.on_complete(Box::new(f));
    }
}

impl IntoFuture for Append {
    type Output = Result<(), AppendError>;
    type IntoFuture = AppendFuture;
    fn into_future(self) -> AppendFuture {
        AppendFuture(self.stages)
    }
}

/// The future of an [`Append`]'s durability.
pub struct AppendFuture(Arc<Stages<Outcome>>);

impl std::fmt::Debug for AppendFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppendFuture")
    }
}

impl Future for AppendFuture {
    type Output = Outcome;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        self.0.durable.poll(cx)
    }
}

/// The future of a truncate, purge or metadata update; see the `*_async`
/// methods of [`Wal`].
#[must_use = "the update is durable only when the future completes"]
pub struct UpdateFuture(Wait<Result<(), UpdateError>>);

impl std::fmt::Debug for UpdateFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpdateFuture")
    }
}

impl Future for UpdateFuture {
    type Output = Result<(), UpdateError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

enum Op {
    Append {
        first: u64,
        payloads: Payloads,
        stages: Arc<Stages<Outcome>>,
    },
    Truncate {
        from: u64,
        done: Arc<Completion<Result<(), UpdateError>>>,
    },
    Purge {
        upto: u64,
        id: Vec<u8>,
        done: Arc<Completion<Result<(), UpdateError>>>,
    },
    Sync {
        done: Arc<Completion<Result<(), UpdateError>>>,
    },
    Meta {
        change: MetaChange,
        done: Arc<Completion<Result<(), UpdateError>>>,
    },
}

/// The entries of one append: one (the common case, without a second
/// allocation) or several.
enum Payloads {
    One(Vec<u8>),
    Many(Vec<Vec<u8>>),
}

impl Payloads {
    fn as_slice(&self) -> &[Vec<u8>] {
        match self {
            Payloads::One(p) => std::slice::from_ref(p),
            Payloads::Many(ps) => ps,
        }
    }
}

type MetaChange = Box<dyn FnOnce(&mut Meta) + Send>;
type UpdateDone = Arc<Completion<Result<(), UpdateError>>>;

struct Queue {
    ops: Vec<Op>,
    /// The index the next append gets.
    next: u64,
    /// The log holds no entries and nothing was purged: `append_at` may start
    /// it anywhere.
    unanchored: bool,
    closed: bool,
    /// The writer is blocked waiting for work and nobody has woken it yet:
    /// only then does an enqueue pay for a wake-up (a `notify` is a system
    /// call even when nobody waits). The waker clears it.
    writer_sleeping: bool,
}

pub(crate) struct Segment<F> {
    first: u64,
    name: String,
    file: Arc<F>,
    /// The file mapped up to `capacity`, when the storage can map.
    map: Option<crate::storage::ReadMap>,
    /// Seeds every checksum in the segment.
    salt: Salt,
    offsets: Vec<u64>,
    /// Where the next batch goes: just past the last item.
    end: u64,
    /// One past the last byte that may not be zero: an End marker or
    /// ignored bytes can lie past `end`, and a cut must zero them too.
    dirty_end: u64,
    capacity: u64,
}

/// What readers see: the written (not necessarily synced) entries.
struct Index<F> {
    segments: Vec<Segment<F>>,
    /// First readable index (after purge).
    first: u64,
    /// One past the last written index.
    next: u64,
}

struct SyncJob<F> {
    files: Vec<Arc<F>>,
    /// How far the active segment was written when the job was made.
    upto: Option<Durable>,
    done: Vec<Arc<Stages<Outcome>>>,
    update: Option<Arc<Completion<Result<(), UpdateError>>>>,
}

/// A position in a segment below which everything is durable: what the
/// next batch marker in that segment vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Durable {
    /// The segment's first index.
    segment: u64,
    end: u64,
}

type Finished<F> = (Vec<SyncJob<F>>, Result<(), Arc<io::Error>>);

struct SyncState<F> {
    jobs: Vec<SyncJob<F>>,
    /// Synced jobs whose completions the completer has yet to fire.
    finished: Vec<Finished<F>>,
    completing: bool,
    completer_sleeping: bool,
    busy: bool,
    /// The syncer is blocked waiting for jobs.
    sleeping: bool,
    /// The writer waits in `wait_sync_idle`: whoever ends a sync or a
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

struct Shared<S: Storage> {
    storage: S,
    options: WalOptions,
    queue: Mutex<Queue>,
    queue_ready: Condvar,
    index: RwLock<Index<S::File>>,
    meta: Mutex<MetaFile<S::File>>,
    sync: Mutex<SyncState<S::File>>,
    sync_ready: Condvar,
    sync_idle: Condvar,
    complete_ready: Condvar,
    failed: AtomicBool,
    failure: Mutex<Option<Arc<io::Error>>>,
    spare: Mutex<Spare<S::File>>,
    spare_wanted: Condvar,
    /// How far the active segment is known durable: set after each sync,
    /// read by the writer for each batch marker.
    synced: Mutex<Durable>,
}

/// A zero-filled segment file prepared in the background, so that a
/// rollover does not stall appends while 64 MiB of zeros are written.
struct Spare<F> {
    /// A prepared file: its temporary name, the file and its size.
    ready: Option<(String, F, u64)>,
    wanted: bool,
    /// The size the next rollover needs (segments grow up to full size).
    size: u64,
    closed: bool,
    made: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The log's threads never leave shared state half-changed at a panic
    // point; a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A segmented, checksummed, crash-safe append-only log.
///
/// Cheap to share across threads by reference (`&Wal` is all the API needs);
/// put it in an `Arc` to share across tasks.
pub struct Wal<S: Storage = FsStorage> {
    shared: Arc<Shared<S>>,
    /// The log's threads, started by the first write: a log opened only to
    /// be read costs none (starting four took about 200 µs on this
    /// project's machines, most of the cost of an open).
    threads: Mutex<Vec<JoinHandle<()>>>,
    started: AtomicBool,
    /// Handed to the writer thread when it starts: the last segment holds
    /// records no marker vouches for yet.
    unvouched: bool,
    recovery: Recovery,
}

impl<S: Storage> std::fmt::Debug for Wal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("first", &self.first_index())
            .field("next", &self.next_index())
            .finish_non_exhaustive()
    }
}

impl Wal<FsStorage> {
    /// Opens (or creates) the log in directory `dir`, recovering it.
    ///
    /// # Errors
    ///
    /// [`OpenError::Locked`] if another process has it open; the recovery
    /// errors (see [`OpenError`]) if it is damaged.
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<Self, OpenError> {
        let dir = dir.as_ref();
        let storage = FsStorage::open(dir).map_err(|source| {
            if source.kind() == io::ErrorKind::WouldBlock {
                OpenError::Locked {
                    path: dir.to_path_buf(),
                }
            } else {
                OpenError::Io {
                    path: dir.to_path_buf(),
                    source,
                }
            }
        })?;
        Self::open_with(storage, options)
    }
}

impl<S: Storage> Wal<S> {
    /// Opens the log kept in `storage`, recovering it.
    ///
    /// # Errors
    ///
    /// See [`OpenError`].
    pub fn open_with(storage: S, options: WalOptions) -> Result<Self, OpenError> {
        if !(4096..=1 << 30).contains(&options.segment_size) {
            return Err(OpenError::InvalidOption(format!(
                "segment_size must be in 4 KiB..=1 GiB, not {}",
                options.segment_size
            )));
        }
        if let Some(first) = options.first_segment_size
            && !(4096..=options.segment_size).contains(&first)
        {
            return Err(OpenError::InvalidOption(format!(
                "first_segment_size must be in 4 KiB..=segment_size ({}), not {first}",
                options.segment_size
            )));
        }
        if options.max_batch_bytes == 0 {
            return Err(OpenError::InvalidOption(
                "max_batch_bytes must be positive".into(),
            ));
        }
        if let SyncPolicy::Interval(d) = options.sync
            && d.is_zero()
        {
            return Err(OpenError::InvalidOption(
                "sync interval must be positive".into(),
            ));
        }
        let plan = recovery::decide(&storage, &options)?;
        let recovered = recovery::apply(&storage, plan)?;
        let meta = recovered.meta;
        let synced = Durable {
            segment: recovered.segments.last().map_or(0, |s| s.first),
            end: recovered.segments.last().map_or(0, |s| s.end),
        };
        // The spare is made for the next rollover, whose size follows the
        // last segment's.
        let spare_size = options.next_segment_size(recovered.segments.last().map(|s| s.capacity));
        let new_log = recovered.segments.is_empty();
        let index = Index {
            segments: recovered.segments,
            first: recovered.first,
            next: recovered.next,
        };
        let queue = Queue {
            ops: Vec::new(),
            next: index.next,
            unanchored: index.segments.is_empty() && meta.get().purged.is_none(),
            closed: false,
            writer_sleeping: false,
        };
        let unvouched = recovered.unvouched;
        let shared = Arc::new(Shared {
            storage,
            options,
            queue: Mutex::new(queue),
            queue_ready: Condvar::new(),
            index: RwLock::new(index),
            meta: Mutex::new(meta),
            sync: Mutex::new(SyncState {
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
            sync_ready: Condvar::new(),
            sync_idle: Condvar::new(),
            complete_ready: Condvar::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            spare: Mutex::new(Spare {
                ready: None,
                // Wanted as soon as the preparer starts (the first write),
                // unless the log is new: its first rollover makes the first
                // segment itself, and asks for the one after.
                wanted: !new_log,
                size: spare_size,
                closed: false,
                made: 0,
            }),
            spare_wanted: Condvar::new(),
            synced: Mutex::new(synced),
        });
        Ok(Self {
            shared,
            threads: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            unvouched,
            recovery: recovered.report,
        })
    }

    /// Starts the log's threads unless they run already.
    fn start(&self) -> Result<(), Arc<io::Error>> {
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut threads = lock(&self.threads);
        if self.started.load(Ordering::Acquire) {
            return Ok(());
        }
        type Work<S> = Box<dyn FnOnce(&Shared<S>) + Send>;
        let spawn = |name: &str, f: Work<S>| {
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || f(&shared))
        };
        let unvouched = self.unvouched;
        let work: [(&str, Work<S>); 4] = [
            (
                "statemesh-wal-writer",
                Box::new(move |s| writer_loop(s, unvouched)),
            ),
            ("statemesh-wal-syncer", Box::new(syncer_loop)),
            ("statemesh-wal-completer", Box::new(completer_loop)),
            ("statemesh-wal-preparer", Box::new(preparer_loop)),
        ];
        for (name, f) in work {
            match spawn(name, f) {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Those already started stop when the log closes.
                    return Err(fail(&self.shared, e));
                }
            }
        }
        self.started.store(true, Ordering::Release);
        Ok(())
    }

    /// The storage the log works in.
    #[must_use]
    pub fn storage(&self) -> &S {
        &self.shared.storage
    }

    /// What opening the log found and did: a torn end cut off, what repair
    /// dropped, leftover files removed.
    #[must_use]
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Queues one entry; it gets the next index.
    ///
    /// # Errors
    ///
    /// [`AppendError::TooLarge`], or `Failed`/`Closed` if the log takes no
    /// more writes.
    pub fn append(&self, payload: impl Into<Vec<u8>>) -> Result<Append, AppendError> {
        self.enqueue(None, Payloads::One(payload.into()))
    }

    /// Queues entries that get consecutive indices, atomically with respect
    /// to other appends.
    ///
    /// # Errors
    ///
    /// As [`Wal::append`].
    pub fn append_batch(&self, payloads: Vec<Vec<u8>>) -> Result<Append, AppendError> {
        self.enqueue(None, Payloads::Many(payloads))
    }

    /// Queues entries that must start at index `first` (as Raft requires).
    ///
    /// # Errors
    ///
    /// [`AppendError::NotContiguous`] if `first` is not the next index (an
    /// empty log accepts any), otherwise as [`Wal::append`].
    pub fn append_at(&self, first: u64, payloads: Vec<Vec<u8>>) -> Result<Append, AppendError> {
        self.enqueue(Some(first), Payloads::Many(payloads))
    }

    fn enqueue(&self, at: Option<u64>, payloads: Payloads) -> Result<Append, AppendError> {
        if let Some(p) = payloads
            .as_slice()
            .iter()
            .find(|p| p.len() as u64 > MAX_PAYLOAD)
        {
            return Err(AppendError::TooLarge {
                len: p.len() as u64,
            });
        }
        self.check_failed().map_err(AppendError::Failed)?;
        self.start().map_err(AppendError::Failed)?;
        let stages = Stages::new();
        let count = payloads.as_slice().len() as u64;
        let mut wake = false;
        let first = {
            let mut q = lock(&self.shared.queue);
            if q.closed {
                return Err(AppendError::Closed);
            }
            if let Some(at) = at {
                if q.unanchored {
                    q.next = at;
                } else if at != q.next {
                    return Err(AppendError::NotContiguous {
                        given: at,
                        expected: q.next,
                    });
                }
            }
            let first = q.next;
            if count > 0 {
                q.unanchored = false;
                q.next += count;
                // Cleared only together with the push it announces: an
                // early return above must leave it set for the next one.
                wake = std::mem::replace(&mut q.writer_sleeping, false);
                q.ops.push(Op::Append {
                    first,
                    payloads,
                    stages: Arc::clone(&stages),
                });
            }
            first
        };
        if count == 0 {
            stages.written.complete(Ok(()));
            stages.durable.complete(Ok(()));
        } else if wake {
            self.shared.queue_ready.notify_one();
        }
        Ok(Append {
            first,
            count,
            stages,
        })
    }

    fn check_failed(&self) -> Result<(), Arc<io::Error>> {
        match failure(&self.shared) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The first index still in the log (after purges). Equal to
    /// [`Wal::next_index`] when the log is empty.
    #[must_use]
    pub fn first_index(&self) -> u64 {
        self.read_index().first
    }

    /// One past the last written entry: the index the next written entry
    /// will have (queued appends not yet written are not counted).
    #[must_use]
    pub fn next_index(&self) -> u64 {
        self.read_index().next
    }

    /// The last written index, if the log holds any entry.
    #[must_use]
    pub fn last_index(&self) -> Option<u64> {
        let index = self.read_index();
        (index.next > index.first).then(|| index.next - 1)
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index<S::File>> {
        self.shared.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads entry `index`: `None` if it is purged, truncated or not yet
    /// written. Reads never wait for appends.
    ///
    /// # Errors
    ///
    /// [`ReadError::Corrupt`] if the record fails its checksum; `Io`.
    pub fn get(&self, index: u64) -> Result<Option<Vec<u8>>, ReadError> {
        let idx = self.read_index();
        if index < idx.first || index >= idx.next {
            return Ok(None);
        }
        let Some(pos) = idx
            .segments
            .partition_point(|s| s.first <= index)
            .checked_sub(1)
        else {
            return Ok(None);
        };
        let seg = &idx.segments[pos];
        let Some(i) = usize::try_from(index - seg.first).ok() else {
            return Ok(None);
        };
        let Some(&offset) = seg.offsets.get(i) else {
            return Ok(None);
        };
        // Up to the next record, or the segment's end: a batch marker may
        // follow the record, and `record::payload` leaves it out.
        let end = seg.offsets.get(i + 1).copied().unwrap_or(seg.end);
        let len = end - offset;
        let salt = seg.salt;
        // Copied under the read lock: see `ReadMap` for why that matters.
        let record = match seg.map.as_ref().and_then(|m| m.copy(offset, len)) {
            Some(bytes) => bytes,
            None => {
                let (file, name) = (Arc::clone(&seg.file), seg.name.clone());
                drop(idx);
                let storage = &self.shared.storage;
                return read_record(storage, &*file, &name, salt, index, offset, len).map(Some);
            }
        };
        record::payload(record, salt, index)
            .map(Some)
            .ok_or_else(|| ReadError::Corrupt {
                path: self.shared.storage.path_of(&seg.name),
                index,
                offset,
            })
    }

    /// Reads the entries in `range` that are in the log, in order.
    ///
    /// # Errors
    ///
    /// As [`Wal::get`].
    pub fn range(&self, range: impl RangeBounds<u64>) -> Result<Vec<(u64, Vec<u8>)>, ReadError> {
        self.iter(range).collect()
    }

    /// Iterates over the entries in `range` that are in the log.
    pub fn iter(&self, range: impl RangeBounds<u64>) -> Iter<'_, S> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        Iter {
            wal: self,
            next: start.max(self.first_index()),
            end,
        }
    }

    /// Removes every entry from `from` on (Raft conflict resolution). When it
    /// returns, the removed entries are gone from disk for good: they cannot
    /// reappear after a crash. Appends queued before it are written and then
    /// removed if they fall in the range; later appends continue at `from`.
    ///
    /// # Errors
    ///
    /// [`UpdateError::OutOfRange`] unless `first_index <= from <= next`;
    /// `Failed` if an I/O call failed.
    pub fn truncate(&self, from: u64) -> Result<(), UpdateError> {
        self.truncate_async(from)?.0.wait()
    }

    /// [`Wal::truncate`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Wal::truncate`], at once for a bad index.
    pub fn truncate_async(&self, from: u64) -> Result<UpdateFuture, UpdateError> {
        self.submit(|q, first, done| {
            if from < first || from > q.next {
                return Err(UpdateError::OutOfRange {
                    index: from,
                    first,
                    next: q.next,
                });
            }
            q.next = from;
            Ok(Op::Truncate { from, done })
        })
    }

    /// Removes every entry up to and including `upto`, recording `id` (for
    /// example openraft's `LogId`, serialised) as the last purged id in the
    /// metadata first. Whole segments are deleted. `upto` may lie past the
    /// end (after a snapshot is installed): the log is then empty and the
    /// next append gets `upto + 1`.
    ///
    /// # Errors
    ///
    /// [`UpdateError::OutOfRange`] if `upto` is before the first index;
    /// `MetaTooLarge`; `Failed`.
    pub fn purge(&self, upto: u64, id: Vec<u8>) -> Result<(), UpdateError> {
        self.purge_async(upto, id)?.0.wait()
    }

    /// [`Wal::purge`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Wal::purge`], at once for a bad index.
    pub fn purge_async(&self, upto: u64, id: Vec<u8>) -> Result<UpdateFuture, UpdateError> {
        self.submit(|q, first, done| {
            if upto.saturating_add(1) < first {
                return Err(UpdateError::OutOfRange {
                    index: upto,
                    first,
                    next: q.next,
                });
            }
            if upto >= q.next {
                q.next = upto + 1;
            }
            q.unanchored = false;
            Ok(Op::Purge { upto, id, done })
        })
    }

    /// Makes everything written so far durable, whatever the policy.
    ///
    /// # Errors
    ///
    /// `Failed` if a sync failed.
    pub fn sync(&self) -> Result<(), UpdateError> {
        self.submit(|_, _, done| Ok(Op::Sync { done }))?.0.wait()
    }

    /// The metadata as last stored.
    #[must_use]
    pub fn meta(&self) -> Meta {
        lock(&self.shared.meta).get().clone()
    }

    /// Durably stores the vote (opaque bytes) before returning, after every
    /// append queued before it is durable.
    ///
    /// # Errors
    ///
    /// `MetaTooLarge`; `Failed` if the write or sync failed.
    pub fn save_vote(&self, vote: Vec<u8>) -> Result<(), UpdateError> {
        self.save_vote_async(vote)?.0.wait()
    }

    /// [`Wal::save_vote`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Wal::save_vote`].
    pub fn save_vote_async(&self, vote: Vec<u8>) -> Result<UpdateFuture, UpdateError> {
        self.change_meta(Box::new(move |m| m.vote = Some(vote)))
    }

    /// Durably stores the committed index and its id before returning.
    /// Recovery refuses a log that ends before it ([`OpenError::Lost`]).
    ///
    /// # Errors
    ///
    /// As [`Wal::save_vote`].
    pub fn save_committed(&self, index: u64, id: Vec<u8>) -> Result<(), UpdateError> {
        self.save_committed_async(index, id)?.0.wait()
    }

    /// Records the committed index and its id without waiting for a sync:
    /// one positional write into the metadata file, made by the caller. It
    /// survives a process crash; after a power loss recovery may read back
    /// an earlier committed index, never a later one. Raft needs no more:
    /// the committed index only spares a restarted replica from waiting for
    /// a leader before it applies what it already holds.
    ///
    /// Pass only an index whose entry is already durable here (Raft commits
    /// an entry only after that), or recovery may refuse the log after a
    /// crash as [`OpenError::Lost`]. [`Wal::save_committed`] orders itself
    /// after the pending appends instead, and syncs.
    ///
    /// # Errors
    ///
    /// `Failed` if the log failed earlier or this write failed.
    pub fn note_committed(&self, index: u64, id: Vec<u8>) -> Result<(), UpdateError> {
        self.check_failed().map_err(UpdateError::Failed)?;
        let mut meta = lock(&self.shared.meta);
        match meta.note_committed(index, id.clone()) {
            Ok(true) => Ok(()),
            Ok(false) => {
                // An id too long for a hint: the slots take it, in order,
                // and nobody needs to wait for that.
                drop(meta);
                self.save_committed_async(index, id).map(drop)
            }
            Err(e) => Err(UpdateError::Failed(fail(&self.shared, e))),
        }
    }

    /// [`Wal::save_committed`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Wal::save_vote`].
    pub fn save_committed_async(
        &self,
        index: u64,
        id: Vec<u8>,
    ) -> Result<UpdateFuture, UpdateError> {
        self.change_meta(Box::new(move |m| m.committed = Some((index, id))))
    }

    fn change_meta(&self, change: MetaChange) -> Result<UpdateFuture, UpdateError> {
        self.submit(|_, _, done| Ok(Op::Meta { change, done }))
    }

    /// Queues an update built by `make` from the queue, the first index and
    /// its completion.
    fn submit(
        &self,
        make: impl FnOnce(&mut Queue, u64, UpdateDone) -> Result<Op, UpdateError>,
    ) -> Result<UpdateFuture, UpdateError> {
        self.check_failed().map_err(UpdateError::Failed)?;
        self.start().map_err(UpdateError::Failed)?;
        let done = Completion::new();
        {
            let mut q = lock(&self.shared.queue);
            if q.closed {
                return Err(UpdateError::Closed);
            }
            let first = self.read_index().first;
            let op = make(&mut q, first, Arc::clone(&done))?;
            q.ops.push(op);
        }
        self.shared.queue_ready.notify_one();
        Ok(UpdateFuture(Wait(done)))
    }

    /// Writes and syncs everything queued, stops the log's threads and
    /// releases the directory. Dropping the log does the same.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.queue_ready.notify_all();
        lock(&self.shared.spare).closed = true;
        self.shared.spare_wanted.notify_all();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
        // An unused spare would only be deleted by the next recovery.
        if let Some((tmp, file, _)) = lock(&self.shared.spare).ready.take() {
            drop(file);
            let _ = self.shared.storage.remove(&tmp);
        }
    }
}

impl<S: Storage> Drop for Wal<S> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Iterator over a range of entries; see [`Wal::iter`].
pub struct Iter<'a, S: Storage> {
    wal: &'a Wal<S>,
    next: u64,
    end: u64,
}

impl<S: Storage> std::fmt::Debug for Iter<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("next", &self.next)
            .field("end", &self.end)
            .finish()
    }
}

impl<S: Storage> Iterator for Iter<'_, S> {
    type Item = Result<(u64, Vec<u8>), ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        match self.wal.get(index) {
            Ok(Some(bytes)) => {
                self.next += 1;
                Some(Ok((index, bytes)))
            }
            Ok(None) => None,
            Err(e) => {
                self.next = self.end;
                Some(Err(e))
            }
        }
    }
}

fn read_record<S: Storage>(
    storage: &S,
    file: &S::File,
    name: &str,
    salt: Salt,
    index: u64,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, ReadError> {
    let corrupt = || ReadError::Corrupt {
        path: storage.path_of(name),
        index,
        offset,
    };
    let mut buf = vec![0u8; usize::try_from(len).map_err(|_| corrupt())?];
    file.read_at(&mut buf, offset)
        .map_err(|source| ReadError::Io {
            path: storage.path_of(name),
            source,
        })?;
    record::payload(buf, salt, index).ok_or_else(corrupt)
}

/// Changes the stored metadata durably (both slots).
fn change_meta_now<S: Storage>(
    shared: &Shared<S>,
    change: impl FnOnce(&mut Meta, &mut Layout),
) -> Result<(), UpdateError> {
    if let Some(e) = failure(shared) {
        return Err(UpdateError::Failed(e));
    }
    let mut meta = lock(&shared.meta);
    let (mut next, mut layout) = (meta.get().clone(), meta.layout());
    change(&mut next, &mut layout);
    let len = meta::encoded_len(&next);
    if len > MAX_META {
        return Err(UpdateError::MetaTooLarge { len, max: MAX_META });
    }
    meta.store(next, layout)
        .map_err(|e| UpdateError::Failed(fail(shared, e)))
}

/// Records where the segments are, unless that is already recorded: after
/// a segment is created, before one is removed.
fn change_layout<S: Storage>(
    shared: &Shared<S>,
    change: impl FnOnce(&mut Layout),
) -> io::Result<()> {
    let mut layout = lock(&shared.meta).layout();
    change(&mut layout);
    if layout == lock(&shared.meta).layout() {
        return Ok(());
    }
    change_meta_now(shared, |_, l| *l = layout).map_err(io::Error::other)
}

/// Marks the log failed (the first error wins) and returns the error.
fn fail<S: Storage>(shared: &Shared<S>, e: io::Error) -> Arc<io::Error> {
    let mut failure = lock(&shared.failure);
    let e = failure.get_or_insert_with(|| Arc::new(e)).clone();
    shared.failed.store(true, Ordering::Release);
    e
}

fn failure<S: Storage>(shared: &Shared<S>) -> Option<Arc<io::Error>> {
    if shared.failed.load(Ordering::Acquire) {
        lock(&shared.failure).clone()
    } else {
        None
    }
}

/// The writer thread's own view of the active segment's write position.
struct Pending {
    buf: Vec<u8>,
    offsets: Vec<u64>,
    /// Appends in `buf`, to be told once it is written.
    appends: Vec<Arc<Stages<Outcome>>>,
    first: u64,
    /// The active segment holds records that no marker vouches for yet (a
    /// batch's own marker vouches only for what was durable before it).
    unvouched: bool,
}

fn writer_loop<S: Storage>(shared: &Shared<S>, unvouched: bool) {
    let mut pending = Pending {
        buf: Vec::new(),
        offsets: Vec::new(),
        appends: Vec::new(),
        first: 0,
        unvouched,
    };
    loop {
        let ops = {
            let mut q = lock(&shared.queue);
            while q.ops.is_empty() && !q.closed {
                q.writer_sleeping = true;
                q = shared
                    .queue_ready
                    .wait(q)
                    .unwrap_or_else(|e| e.into_inner());
                q.writer_sleeping = false;
            }
            if q.ops.is_empty() && q.closed {
                break;
            }
            std::mem::take(&mut q.ops)
        };
        for op in ops {
            if let Some(e) = failure(shared) {
                fail_op(op, &e);
                continue;
            }
            match op {
                Op::Append {
                    first,
                    payloads,
                    stages,
                } => {
                    if let Err(e) = write_append(shared, &mut pending, first, payloads.as_slice()) {
                        let e = fail(shared, e);
                        fail_pending(&mut pending, &e);
                        fail_stages(&stages, &e);
                        continue;
                    }
                    pending.appends.push(stages);
                    if pending.buf.len() >= shared.options.max_batch_bytes {
                        flush(shared, &mut pending);
                    }
                }
                Op::Truncate { from, done } => {
                    flush(shared, &mut pending);
                    wait_sync_idle(shared);
                    let r = truncate_now(shared, from)
                        .map_err(|e| UpdateError::Failed(fail(shared, e)));
                    done.complete(r);
                }
                Op::Purge { upto, id, done } => {
                    flush(shared, &mut pending);
                    wait_sync_idle(shared);
                    done.complete(purge_now(shared, upto, id));
                }
                Op::Meta { change, done } => {
                    // Ordered after every earlier append is durable, as
                    // openraft requires of vote and log IO.
                    flush(shared, &mut pending);
                    wait_sync_idle(shared);
                    done.complete(change_meta_now(shared, |m, _| change(m)));
                }
                Op::Sync { done } => {
                    flush(shared, &mut pending);
                    let (files, upto) = active(shared).unzip();
                    submit_sync(
                        shared,
                        files.into_iter().collect(),
                        upto,
                        Vec::new(),
                        Some(done),
                    );
                }
            }
        }
        flush(shared, &mut pending);
    }
    flush(shared, &mut pending);
    // Final sync whatever the policy, then a marker that vouches for all of
    // it (so a cleanly closed log has no torn end), then stop the syncer.
    let (files, upto) = active(shared).unzip();
    let done = Completion::new();
    submit_sync(
        shared,
        files.into_iter().collect(),
        upto,
        Vec::new(),
        Some(Arc::clone(&done)),
    );
    if done.wait().is_ok() {
        vouch(shared, &mut pending);
    }
    lock(&shared.sync).closed = true;
    shared.sync_ready.notify_all();
}

fn fail_stages(stages: &Stages<Outcome>, e: &Arc<io::Error>) {
    stages
        .written
        .complete(Err(AppendError::Failed(Arc::clone(e))));
    stages
        .durable
        .complete(Err(AppendError::Failed(Arc::clone(e))));
}

fn fail_op(op: Op, e: &Arc<io::Error>) {
    match op {
        Op::Append { stages, .. } => fail_stages(&stages, e),
        Op::Truncate { done, .. }
        | Op::Purge { done, .. }
        | Op::Sync { done }
        | Op::Meta { done, .. } => {
            done.complete(Err(UpdateError::Failed(Arc::clone(e))));
        }
    }
}

fn fail_pending(pending: &mut Pending, e: &Arc<io::Error>) {
    for stages in pending.appends.drain(..) {
        fail_stages(&stages, e);
    }
    pending.buf.clear();
    pending.offsets.clear();
}

/// The active segment's file and how far it is written.
fn active<S: Storage>(shared: &Shared<S>) -> Option<(Arc<S::File>, Durable)> {
    let idx = shared.index.read().unwrap_or_else(|e| e.into_inner());
    idx.segments.last().map(|s| {
        let upto = Durable {
            segment: s.first,
            end: s.end,
        };
        (Arc::clone(&s.file), upto)
    })
}

fn active_file<S: Storage>(shared: &Shared<S>) -> Option<Arc<S::File>> {
    active(shared).map(|(file, _)| file)
}

/// What the next marker in `segment` may vouch for.
fn durable_in<S: Storage>(shared: &Shared<S>, segment: u64) -> u64 {
    let synced = *lock(&shared.synced);
    if synced.segment == segment {
        synced.end
    } else {
        SEGMENT_HEADER_LEN
    }
}

/// Notes that a sync covered everything up to `upto`.
fn note_synced<S: Storage>(shared: &Shared<S>, upto: Durable) {
    let mut synced = lock(&shared.synced);
    if (upto.segment, upto.end) > (synced.segment, synced.end) {
        *synced = upto;
    }
}

/// Room an entry of `need` bytes takes in a segment: itself, its batch's
/// marker, and one more marker (a vouching or an End marker) after it.
fn room_for(need: u64) -> u64 {
    need + 2 * MARKER_LEN as u64
}

/// Encodes one append into the pending buffer, rolling to a new segment when
/// the active one is full.
fn write_append<S: Storage>(
    shared: &Shared<S>,
    pending: &mut Pending,
    first: u64,
    payloads: &[Vec<u8>],
) -> io::Result<()> {
    for (i, payload) in payloads.iter().enumerate() {
        let index = first + i as u64;
        let room = room_for(record::encoded_len(payload.len() as u64));
        let mut at = active_position(shared);
        if at.end + pending.buf.len() as u64 + room > at.capacity {
            flush(shared, pending);
            if let Some(e) = failure(shared) {
                return Err(io::Error::new(e.kind(), e.to_string()));
            }
            at = active_position(shared);
            if at.capacity > 0 && at.entries == 0 {
                // An empty active segment is simply made big enough.
                grow_active(shared, at.end + room)?;
            } else {
                roll(shared, index, room)?;
            }
            at = active_position(shared);
        }
        if pending.offsets.is_empty() {
            pending.first = index;
        }
        pending.offsets.push(at.end + pending.buf.len() as u64);
        record::encode(at.salt, index, payload, &mut pending.buf);
    }
    Ok(())
}

/// Where the active segment stands.
struct Position {
    end: u64,
    /// Zero when there is no segment yet.
    capacity: u64,
    entries: usize,
    salt: Salt,
}

fn active_position<S: Storage>(shared: &Shared<S>) -> Position {
    let idx = shared.index.read().unwrap_or_else(|e| e.into_inner());
    idx.segments.last().map_or(
        Position {
            end: 0,
            capacity: 0,
            entries: 0,
            salt: Salt::new(0),
        },
        |s| Position {
            end: s.end,
            capacity: s.capacity,
            entries: s.offsets.len(),
            salt: s.salt,
        },
    )
}

/// Makes the empty active segment at least `need` bytes: zeros first, then
/// the header that records the new size, so the file is never shorter
/// than its header says.
fn grow_active<S: Storage>(shared: &Shared<S>, need: u64) -> io::Result<()> {
    let mut idx = shared.index.write().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = idx.segments.last_mut() {
        let capacity = need.max(shared.options.segment_size);
        s.file.allocate(capacity)?;
        fill_zeros(&*s.file, s.capacity, capacity)?;
        s.file.sync_data()?;
        let header = segment::Header {
            first: s.first,
            capacity,
            salt: s.salt.seed(),
        };
        s.file.write_at(&segment::encode_header(&header), 0)?;
        s.file.sync_data()?;
        s.capacity = capacity;
        s.map = s.file.map(capacity)?;
    }
    Ok(())
}

/// The capacity of the active segment (none: the log has no segment).
fn active_capacity<S: Storage>(shared: &Shared<S>) -> Option<u64> {
    let idx = shared.index.read().unwrap_or_else(|e| e.into_inner());
    idx.segments.last().map(|s| s.capacity)
}

/// Seals the active segment (its data synced, so no later segment can be
/// durable while an earlier one is torn) and starts a new one at `first`.
fn roll<S: Storage>(shared: &Shared<S>, first: u64, need: u64) -> io::Result<()> {
    if let Some(file) = active_file(shared) {
        file.sync_data()?;
    }
    let previous = active_capacity(shared);
    let size = shared.options.next_segment_size(previous);
    let capacity = (SEGMENT_HEADER_LEN + need).max(size);
    let spare = {
        let mut spare = lock(&shared.spare);
        match spare.ready.take() {
            Some((tmp, file, made)) if made == capacity => Some((tmp, file)),
            Some((tmp, file, _)) => {
                // Made for a size the log has grown past.
                drop(file);
                let _ = shared.storage.remove(&tmp);
                None
            }
            None => None,
        }
    };
    let header = segment::Header {
        first,
        capacity,
        salt: Salt::random().seed(),
    };
    let seg = match spare {
        Some((tmp, file)) => install_segment(&shared.storage, tmp, file, header)?,
        None => create_segment(&shared.storage, header)?,
    };
    want_spare(shared, shared.options.next_segment_size(Some(size)));
    // Recorded before anything goes into it: from now on recovery knows the
    // segment must exist.
    change_layout(shared, |l| {
        l.origin.get_or_insert(first);
        l.last_segment = Some(first);
    })?;
    let mut idx = shared.index.write().unwrap_or_else(|e| e.into_inner());
    if idx.segments.is_empty() && idx.next == idx.first {
        idx.first = first;
        idx.next = first;
    }
    idx.segments.push(seg);
    Ok(())
}

/// Writes zeros over `from..to`. Space that `fallocate` reserved is
/// *unwritten* on ext4 and XFS: the first write into each block changes the
/// file's extent map, and `fdatasync` must then write that metadata (a
/// journal commit, where the file system has a journal) as well as the data. Written zeros make every later append a pure
/// data overwrite (measured: a 4 KiB append with `fdatasync` took 1.58x the
/// disk's own rate in fallocated space).
pub(crate) fn fill_zeros<F: StorageFile + ?Sized>(file: &F, from: u64, to: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(to.saturating_sub(from)) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK);
        file.write_at(&zeros[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

/// Turns a prepared, zero-filled file into a segment: header, sync, rename
/// into place, sync of the directory. A segment file, once visible, always
/// has a valid header and its full size.
fn install_segment<S: Storage>(
    storage: &S,
    tmp: String,
    file: S::File,
    header: segment::Header,
) -> io::Result<Segment<S::File>> {
    let name = segment::file_name(header.first);
    file.write_at(&segment::encode_header(&header), 0)?;
    file.sync_data()?;
    storage.rename(&tmp, &name)?;
    storage.sync_dir()?;
    let map = file.map(header.capacity)?;
    Ok(Segment {
        first: header.first,
        name,
        map,
        salt: Salt::new(header.salt),
        file: Arc::new(file),
        offsets: Vec::new(),
        end: SEGMENT_HEADER_LEN,
        dirty_end: SEGMENT_HEADER_LEN,
        capacity: header.capacity,
    })
}

/// Asks the preparer for the next spare segment. It is asked as soon as
/// the log starts writing and after every rollover: measured with 4 KiB entries from
/// 64 appenders, asking only once the active segment was half full left 5
/// of 13 rollovers without a spare, each zero-filling 64 MiB inline.
fn want_spare<S: Storage>(shared: &Shared<S>, size: u64) {
    let mut spare = lock(&shared.spare);
    spare.size = size;
    if spare.ready.is_none() && !spare.wanted {
        spare.wanted = true;
        drop(spare);
        shared.spare_wanted.notify_one();
    }
}

fn preparer_loop<S: Storage>(shared: &Shared<S>) {
    loop {
        let (n, size) = {
            let mut spare = lock(&shared.spare);
            while !spare.wanted && !spare.closed {
                spare = shared
                    .spare_wanted
                    .wait(spare)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if spare.closed {
                return;
            }
            spare.made += 1;
            (spare.made, spare.size)
        };
        let tmp = format!("spare-{n}.tmp");
        let made = (|| {
            let file = shared.storage.open(&tmp, true)?;
            file.set_len(0)?;
            file.allocate(size)?;
            // In steps, so that closing the log need not wait for a whole
            // segment of zeros.
            let mut at = 0;
            while at < size {
                if lock(&shared.spare).closed {
                    return Err(io::Error::other("closed while preparing"));
                }
                let to = (at + (4 << 20)).min(size);
                fill_zeros(&file, at, to)?;
                at = to;
            }
            file.sync_data()?;
            Ok::<_, io::Error>(file)
        })();
        let mut spare = lock(&shared.spare);
        // Asked again meanwhile for another size: made again.
        spare.wanted = spare.size != size;
        match made {
            Ok(file) if !spare.wanted => spare.ready = Some((tmp, file, size)),
            Ok(file) => {
                drop(file);
                let _ = shared.storage.remove(&tmp);
            }
            // A failed preparation only means the next rollover creates its
            // segment itself (and reports the error if it fails too).
            Err(_) => {
                let _ = shared.storage.remove(&tmp);
            }
        }
    }
}

/// Creates a segment file complete under a temporary name, then renames it
/// into place.
pub(crate) fn create_segment<S: Storage>(
    storage: &S,
    header: segment::Header,
) -> io::Result<Segment<S::File>> {
    let tmp = format!("{}.tmp", segment::file_name(header.first));
    let file = storage.open(&tmp, true)?;
    file.set_len(0)?;
    file.allocate(header.capacity)?;
    fill_zeros(&file, 0, header.capacity)?;
    install_segment(storage, tmp, file, header)
}

/// Writes the pending buffer with its batch marker, makes its entries
/// readable, and hands their completions on according to the policy.
fn flush<S: Storage>(shared: &Shared<S>, pending: &mut Pending) {
    if pending.offsets.is_empty() {
        return;
    }
    let result = (|| {
        let (file, end, segment, salt) = {
            let idx = shared.index.read().unwrap_or_else(|e| e.into_inner());
            let s = idx
                .segments
                .last()
                .ok_or_else(|| io::Error::other("no active segment"))?;
            (Arc::clone(&s.file), s.end, s.first, s.salt)
        };
        let count = pending.offsets.len() as u64;
        let marker = Marker {
            next: pending.first + count,
            durable: durable_in(shared, segment),
            kind: MarkerKind::Batch,
        };
        record::encode_marker(salt, marker, &mut pending.buf);
        file.write_at(&pending.buf, end)?;
        let upto = Durable {
            segment,
            end: end + pending.buf.len() as u64,
        };
        let mut idx = shared.index.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = idx.segments.last_mut() {
            s.offsets.append(&mut pending.offsets);
            s.end = upto.end;
            s.dirty_end = s.dirty_end.max(upto.end);
        }
        if idx.next == idx.first && idx.first != pending.first {
            idx.first = pending.first;
        }
        idx.next = pending.first + count;
        Ok::<_, io::Error>((file, upto))
    })();
    pending.buf.clear();
    pending.offsets.clear();
    pending.unvouched = true;
    match result {
        Err(e) => {
            let e = fail(shared, e);
            fail_pending(pending, &e);
        }
        Ok((file, upto)) => {
            for a in &pending.appends {
                a.written.complete(Ok(()));
            }
            let durable = std::mem::take(&mut pending.appends);
            match shared.options.sync {
                SyncPolicy::Always => {
                    if !sync_inline(shared, &file, upto, &durable) {
                        submit_sync(shared, vec![file], Some(upto), durable, None);
                    }
                }
                SyncPolicy::Interval(_) | SyncPolicy::Never => {
                    for d in durable {
                        d.durable.complete(Ok(()));
                    }
                    let mut s = lock(&shared.sync);
                    if !s.dirty.iter().any(|f| Arc::ptr_eq(f, &file)) {
                        s.dirty.push(file);
                    }
                    s.dirty_upto = Some(upto);
                }
            }
        }
    }
}

/// Writes a marker by itself that vouches for everything synced so far in
/// the active segment, and syncs it: damage to those records then reads as
/// damage, never as a torn end.
fn vouch<S: Storage>(shared: &Shared<S>, pending: &mut Pending) {
    if !pending.unvouched || failure(shared).is_some() {
        return;
    }
    let Some((file, salt, at, next, capacity, segment)) = ({
        let idx = shared.index.read().unwrap_or_else(|e| e.into_inner());
        idx.segments.last().map(|s| {
            let next = s.first + s.offsets.len() as u64;
            (
                Arc::clone(&s.file),
                s.salt,
                s.end,
                next,
                s.capacity,
                s.first,
            )
        })
    }) else {
        return;
    };
    if at + MARKER_LEN as u64 > capacity {
        return;
    }
    let mut buf = Vec::with_capacity(MARKER_LEN);
    let marker = Marker {
        next,
        durable: durable_in(shared, segment),
        kind: MarkerKind::Batch,
    };
    record::encode_marker(salt, marker, &mut buf);
    let written = file.write_at(&buf, at).and_then(|()| file.sync_data());
    match written {
        Ok(()) => {
            let mut idx = shared.index.write().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = idx.segments.last_mut() {
                s.end = at + MARKER_LEN as u64;
                s.dirty_end = s.dirty_end.max(s.end);
            }
            pending.unvouched = false;
        }
        Err(e) => {
            fail(shared, e);
        }
    }
}

/// One `fdatasync` of appended data, timed into the `metrics` facade
/// (`statemesh_wal_sync_seconds`) when that feature is on.
fn timed_sync<F: crate::storage::StorageFile + ?Sized>(file: &F) -> io::Result<()> {
    #[cfg(feature = "metrics")]
    let started = Instant::now();
    let result = file.sync_data();
    #[cfg(feature = "metrics")]
    metrics::histogram!("statemesh_wal_sync_seconds").record(started.elapsed().as_secs_f64());
    result
}

/// When this round holds a single append and the syncer is idle, the writer
/// syncs itself: handing over to the syncer would only add a thread wake-up
/// to the latency of a lone appender. Whether the appender really is alone
/// shows during that sync: if another append arrived meanwhile (openraft
/// sends its next entry as soon as the last is written, not durable), the
/// log switches to pipelined mode, where every round goes to the syncer and
/// the next round is written while it syncs. The syncer switches back once
/// a sync of one append ends with nothing new to do. Returns whether it
/// synced.
fn sync_inline<S: Storage>(
    shared: &Shared<S>,
    file: &Arc<S::File>,
    upto: Durable,
    durable: &[Arc<Stages<Outcome>>],
) -> bool {
    if durable.len() > 1 || !lock(&shared.queue).ops.is_empty() {
        return false;
    }
    {
        let mut s = lock(&shared.sync);
        if s.pipelined || s.busy || !s.jobs.is_empty() || !s.finished.is_empty() || s.completing {
            return false;
        }
        s.busy = true;
    }
    let result = match failure(shared) {
        Some(e) => Err(e),
        None => timed_sync(&**file).map_err(|e| fail(shared, e)),
    };
    if result.is_ok() {
        note_synced(shared, upto);
    }
    // Looked at before the appender is woken, which could otherwise send
    // its next entry in time to count.
    let arrived = !lock(&shared.queue).ops.is_empty();
    {
        // Only the writer waits for the syncer to be idle, and it is here.
        let mut s = lock(&shared.sync);
        s.busy = false;
        s.pipelined = arrived;
    }
    for d in durable {
        d.durable
            .complete(result.clone().map_err(AppendError::Failed));
    }
    true
}

fn submit_sync<S: Storage>(
    shared: &Shared<S>,
    files: Vec<Arc<S::File>>,
    upto: Option<Durable>,
    done: Vec<Arc<Stages<Outcome>>>,
    update: Option<Arc<Completion<Result<(), UpdateError>>>>,
) {
    let wake = {
        let mut s = lock(&shared.sync);
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
        shared.sync_ready.notify_one();
    }
}

fn wait_sync_idle<S: Storage>(shared: &Shared<S>) {
    let mut s = lock(&shared.sync);
    while s.busy || !s.jobs.is_empty() || !s.finished.is_empty() || s.completing {
        s.idle_wanted = true;
        s = shared.sync_idle.wait(s).unwrap_or_else(|e| e.into_inner());
    }
}

fn appends_in<F>(jobs: &[SyncJob<F>]) -> usize {
    jobs.iter().map(|j| j.done.len()).sum()
}

/// What the previous sync carried and how long it took.
struct LastSync {
    appends: usize,
    took: Duration,
}

/// Holds a sync back, for at most half the duration of the last one, until
/// as many appends are waiting as that sync carried. Without this, many
/// appenders split into two groups that alternate (one written while the
/// other syncs), and each sync carries only half of them; appenders whose
/// entries just became durable send their next ones within microseconds.
fn gather<'a, S: Storage>(
    shared: &'a Shared<S>,
    mut s: MutexGuard<'a, SyncState<S::File>>,
    last: &LastSync,
) -> MutexGuard<'a, SyncState<S::File>> {
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
        s = shared
            .sync_ready
            .wait_timeout(s, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        s.gathering = 0;
    }
}

fn syncer_loop<S: Storage>(shared: &Shared<S>) {
    let interval = match shared.options.sync {
        SyncPolicy::Interval(d) => Some(d),
        _ => None,
    };
    let mut last = LastSync {
        appends: 0,
        took: Duration::ZERO,
    };
    loop {
        let (jobs, dirty, dirty_upto) = {
            let mut s = lock(&shared.sync);
            loop {
                if !s.jobs.is_empty() {
                    break;
                }
                if s.closed {
                    drop(s);
                    shared.complete_ready.notify_all();
                    return;
                }
                s.sleeping = true;
                match interval {
                    Some(d) => {
                        let (guard, timeout) = shared
                            .sync_ready
                            .wait_timeout(s, d)
                            .unwrap_or_else(|e| e.into_inner());
                        s = guard;
                        s.sleeping = false;
                        if timeout.timed_out() && !s.dirty.is_empty() {
                            break;
                        }
                    }
                    None => {
                        s = shared.sync_ready.wait(s).unwrap_or_else(|e| e.into_inner());
                        s.sleeping = false;
                    }
                }
            }
            if interval.is_none() {
                s = gather(shared, s, &last);
            }
            s.busy = true;
            (
                std::mem::take(&mut s.jobs),
                std::mem::take(&mut s.dirty),
                s.dirty_upto.take(),
            )
        };
        let started = Instant::now();
        let mut files: Vec<Arc<S::File>> = dirty;
        for job in &jobs {
            for f in &job.files {
                if !files.iter().any(|g| Arc::ptr_eq(f, g)) {
                    files.push(Arc::clone(f));
                }
            }
        }
        let mut result = Ok(());
        if failure(shared).is_none() {
            for f in &files {
                if let Err(e) = timed_sync(&**f) {
                    result = Err(fail(shared, e));
                    break;
                }
            }
        }
        if let Some(e) = failure(shared) {
            result = Err(e);
        }
        if result.is_ok() {
            let written = jobs.iter().filter_map(|j| j.upto).chain(dirty_upto);
            if let Some(upto) = written.max_by_key(|d| (d.segment, d.end)) {
                note_synced(shared, upto);
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
            let mut s = lock(&shared.sync);
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
                let mut s = lock(&shared.sync);
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
            shared.complete_ready.notify_one();
        }
        if idle {
            shared.sync_idle.notify_all();
        }
    }
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

fn completer_loop<S: Storage>(shared: &Shared<S>) {
    loop {
        let finished = {
            let mut s = lock(&shared.sync);
            while s.finished.is_empty() {
                if s.closed {
                    return;
                }
                s.completer_sleeping = true;
                s = shared
                    .complete_ready
                    .wait(s)
                    .unwrap_or_else(|e| e.into_inner());
                s.completer_sleeping = false;
            }
            s.completing = true;
            std::mem::take(&mut s.finished)
        };
        for (jobs, result) in finished {
            complete_jobs(jobs, &result);
        }
        let idle = {
            let mut s = lock(&shared.sync);
            s.completing = false;
            std::mem::replace(&mut s.idle_wanted, false)
        };
        if idle {
            shared.sync_idle.notify_all();
        }
    }
}

/// Deletes later segments first (newest first, after recording in the
/// metadata that they go, so a crash never leaves a hole recovery would
/// refuse), then cuts the segment holding `from` behind an End marker (see
/// `recovery::cut`), so the removed records cannot be found again.
fn truncate_now<S: Storage>(shared: &Shared<S>, from: u64) -> io::Result<()> {
    let mut idx = shared.index.write().unwrap_or_else(|e| e.into_inner());
    if from >= idx.next {
        return Ok(());
    }
    let first = idx.first;
    let keep = idx
        .segments
        .iter()
        .position(|s| s.first >= from && s.first > first)
        .unwrap_or(idx.segments.len());
    if keep < idx.segments.len() {
        let last = idx.segments[..keep].last().map(|s| s.first);
        change_layout(shared, |l| l.last_segment = last)?;
        while idx.segments.len() > keep {
            if let Some(s) = idx.segments.pop() {
                shared.storage.remove(&s.name)?;
            }
        }
        shared.storage.sync_dir()?;
    }
    if let Some(s) = idx.segments.last_mut() {
        let keep = usize::try_from(from.saturating_sub(s.first)).unwrap_or(usize::MAX);
        let at = s.offsets.get(keep).copied();
        if at.is_some() || s.dirty_end > s.end {
            let at = at.unwrap_or(s.end);
            let next = s.first + keep.min(s.offsets.len()) as u64;
            let dead_end = s.end.max(s.dirty_end);
            recovery::cut(&*s.file, s.salt, at, next, dead_end, s.capacity)?;
            s.offsets.truncate(keep);
            s.end = at;
            s.dirty_end = (at + MARKER_LEN as u64).min(s.capacity).max(at);
        }
        // Everything left is durable now: the cut synced it, or an earlier
        // sync did.
        *lock(&shared.synced) = Durable {
            segment: s.first,
            end: s.end,
        };
    }
    idx.next = from;
    Ok(())
}

/// Records the purge in the metadata first, then deletes whole segments
/// that hold only purged entries (recovery finishes an interrupted delete).
fn purge_now<S: Storage>(shared: &Shared<S>, upto: u64, id: Vec<u8>) -> Result<(), UpdateError> {
    let mut idx = shared.index.write().unwrap_or_else(|e| e.into_inner());
    let beyond = upto >= idx.next;
    let doomed = (0..idx.segments.len())
        .take_while(|&i| match idx.segments.get(i + 1) {
            Some(next) => next.first <= upto + 1,
            None => beyond,
        })
        .count();
    let all = doomed == idx.segments.len();
    change_meta_now(shared, |m, l| {
        m.purged = Some((upto, id));
        if all {
            l.last_segment = None;
        }
    })?;
    let result = (|| {
        for s in idx.segments.drain(..doomed) {
            shared.storage.remove(&s.name)?;
        }
        if doomed > 0 {
            shared.storage.sync_dir()?;
        }
        Ok::<_, io::Error>(())
    })();
    idx.first = idx.first.max(upto + 1);
    if idx.next < idx.first {
        idx.next = idx.first;
    }
    result.map_err(|e| UpdateError::Failed(fail(shared, e)))
}

impl<F> Segment<F> {
    /// A segment as recovery found it: its records, where its items end,
    /// and where non-zero bytes end.
    pub(crate) fn recovered(
        first: u64,
        name: String,
        file: F,
        offsets: Vec<u64>,
        (end, dirty_end): (u64, u64),
        capacity: u64,
        salt: Salt,
    ) -> io::Result<Self>
    where
        F: StorageFile,
    {
        let map = file.map(capacity)?;
        Ok(Self {
            first,
            name,
            file: Arc::new(file),
            map,
            salt,
            offsets,
            end,
            dirty_end: dirty_end.max(end),
            capacity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let err = Wal::open(dir.path(), WalOptions::new().segment_size(10)).unwrap_err();
        assert!(matches!(err, OpenError::InvalidOption(_)), "{err}");
    }
}
