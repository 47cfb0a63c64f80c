//! The log: appends with group commit, reads, truncate, purge, metadata,
//! and recovery when it opens.
//!
//! Four threads do the work, started by the first write. The *writer*
//! (`writer`) takes every queued operation, encodes appends into one buffer
//! per round, ended by a batch marker, and writes it with one `pwrite`, then
//! makes the entries readable. The *syncer* (`syncer`) runs `fdatasync` for
//! everything written so far; the *completer* wakes the appenders a sync
//! covered while the syncer runs the next one. The *preparer* (`spare`)
//! zero-fills the next segment ahead of time.
//!
//! This file is the handle callers hold; each method hands its work to
//! those modules. Nothing below imports it back.

mod append;
mod failure;
mod index;
mod lock;
mod queue;
mod rollover;
mod shared;
mod spare;
mod syncer;
mod truncate;
mod update;
mod writer;

pub use self::append::{Append, AppendFuture};
pub use self::index::Iter;
pub use self::update::UpdateFuture;

use self::index::Index;
use self::lock::{lock, read};
use self::queue::{MetaChange, Op, Payloads, Queue, UpdateDone};
use self::shared::Shared;
use crate::error::{AppendError, OpenError, ReadError, UpdateError};
use crate::meta::Meta;
use crate::options::WalOptions;
use crate::recovery::{self, Recovery};
use crate::storage::{FsStorage, Storage};
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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
        options.check()?;
        let plan = recovery::decide(&storage, &options)?;
        let mut recovered = recovery::apply(&storage, plan)?;
        let unvouched = recovered.unvouched;
        let report = std::mem::take(&mut recovered.report);
        Ok(Self {
            shared: Arc::new(Shared::new(storage, options, recovered)),
            threads: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            unvouched,
            recovery: report,
        })
    }

    /// Fails with the log's failure if it failed, and otherwise starts its
    /// threads unless they run already: every write begins here.
    fn begin(&self) -> Result<(), Arc<io::Error>> {
        if let Some(e) = self.shared.failure.get() {
            return Err(e);
        }
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
                Box::new(move |s| writer::run(s, unvouched)),
            ),
            ("statemesh-wal-syncer", Box::new(|s| s.sync.run(&s.failure))),
            (
                "statemesh-wal-completer",
                Box::new(|s| s.sync.run_completer()),
            ),
            (
                "statemesh-wal-preparer",
                Box::new(|s| s.spare.run(&s.storage)),
            ),
        ];
        for (name, f) in work {
            match spawn(name, f) {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Those already started stop when the log closes.
                    return Err(self.shared.failure.fail(e));
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
    /// [`AppendError::TooLarge`]; [`AppendError::IndexOverflow`] if the
    /// log has reached the largest index; or `Failed`/`Closed` if the log
    /// takes no more writes.
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
    /// empty log accepts any); [`AppendError::IndexOverflow`] if the entries
    /// would pass index `u64::MAX - 1`; otherwise as [`Wal::append`].
    pub fn append_at(&self, first: u64, payloads: Vec<Vec<u8>>) -> Result<Append, AppendError> {
        self.enqueue(Some(first), Payloads::Many(payloads))
    }

    fn enqueue(&self, at: Option<u64>, payloads: Payloads) -> Result<Append, AppendError> {
        append::check_sizes(&payloads)?;
        self.begin().map_err(AppendError::Failed)?;
        append::enqueue(&self.shared, at, payloads)
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
        read(&self.shared.index)
    }

    /// Reads entry `index`: `None` if it is purged, truncated or not yet
    /// written. Reads never wait for appends.
    ///
    /// # Errors
    ///
    /// [`ReadError::Corrupt`] if the record fails its checksum; `Io`.
    pub fn get(&self, index: u64) -> Result<Option<Vec<u8>>, ReadError> {
        index::get(&self.shared.storage, &self.shared.index, index)
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
        Iter::new(&self.shared.storage, &self.shared.index, start, end)
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
        self.truncate_async(from)?.wait()
    }

    /// [`Wal::truncate`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Wal::truncate`], at once for a bad index.
    pub fn truncate_async(&self, from: u64) -> Result<UpdateFuture, UpdateError> {
        self.submit(update::truncate(from))
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
    /// [`UpdateError::IndexOverflow`] for `u64::MAX`; `MetaTooLarge`;
    /// `Failed`.
    pub fn purge(&self, upto: u64, id: Vec<u8>) -> Result<(), UpdateError> {
        self.purge_async(upto, id)?.wait()
    }

    /// [`Wal::purge`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Wal::purge`], at once for a bad index.
    pub fn purge_async(&self, upto: u64, id: Vec<u8>) -> Result<UpdateFuture, UpdateError> {
        self.submit(update::purge(upto, id))
    }

    /// Makes everything written so far durable, whatever the policy.
    ///
    /// # Errors
    ///
    /// `Failed` if a sync failed.
    pub fn sync(&self) -> Result<(), UpdateError> {
        self.submit(|_, _, done| Ok(Op::Sync { done }))?.wait()
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
        self.save_vote_async(vote)?.wait()
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
        self.save_committed_async(index, id)?.wait()
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
        if let Some(e) = self.shared.failure.get() {
            return Err(UpdateError::Failed(e));
        }
        let mut meta = lock(&self.shared.meta);
        match meta.note_committed(index, id.clone()) {
            Ok(true) => Ok(()),
            Ok(false) => {
                // An id too long for a hint: the slots take it, in order,
                // and nobody needs to wait for that.
                drop(meta);
                self.save_committed_async(index, id).map(drop)
            }
            Err(e) => Err(UpdateError::Failed(self.shared.failure.fail(e))),
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

    fn submit(
        &self,
        make: impl FnOnce(&mut Queue, u64, UpdateDone) -> Result<Op, UpdateError>,
    ) -> Result<UpdateFuture, UpdateError> {
        self.begin().map_err(UpdateError::Failed)?;
        update::submit(&self.shared, make)
    }

    /// Writes and syncs everything queued, stops the log's threads and
    /// releases the directory. Dropping the log does the same.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.queue_ready.notify_all();
        self.shared.spare.close();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
        self.shared.spare.discard(&self.shared.storage);
    }
}

impl<S: Storage> Drop for Wal<S> {
    fn drop(&mut self) {
        self.shutdown();
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
