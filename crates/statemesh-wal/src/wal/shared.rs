//! The state the log's threads and its callers share, and the metadata
//! updates that several of them make.

use super::failure::Failure;
use super::index::Index;
use super::lock::lock;
use super::queue::Queue;
use super::spare::Spare;
use super::syncer::{Durable, Syncer};
use crate::error::UpdateError;
use crate::meta::{self, Layout, MAX_META, Meta, MetaFile};
use crate::options::{SyncPolicy, WalOptions};
use crate::recovery::Recovered;
use crate::storage::Storage;
use std::io;
use std::sync::{Condvar, Mutex, RwLock};

pub(crate) struct Shared<S: Storage> {
    pub(crate) storage: S,
    pub(crate) options: WalOptions,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) queue_ready: Condvar,
    pub(crate) index: RwLock<Index<S::File>>,
    pub(crate) meta: Mutex<MetaFile<S::File>>,
    pub(crate) sync: Syncer<S::File>,
    pub(crate) failure: Failure,
    pub(crate) spare: Spare<S::File>,
}

impl<S: Storage> Shared<S> {
    /// The state of a log that recovery found as `recovered`.
    pub(crate) fn new(storage: S, options: WalOptions, recovered: Recovered<S::File>) -> Self {
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
        let interval = match options.sync {
            SyncPolicy::Interval(d) => Some(d),
            SyncPolicy::Always | SyncPolicy::Never => None,
        };
        Self {
            storage,
            options,
            queue: Mutex::new(queue),
            queue_ready: Condvar::new(),
            index: RwLock::new(index),
            meta: Mutex::new(meta),
            sync: Syncer::new(synced, interval),
            failure: Failure::new(),
            // Wanted as soon as the preparer starts (the first write),
            // unless the log is new: its first rollover makes the first
            // segment itself, and asks for the one after.
            spare: Spare::new(!new_log, spare_size),
        }
    }

    /// Changes the stored metadata durably (both slots).
    pub(crate) fn change_meta(
        &self,
        change: impl FnOnce(&mut Meta, &mut Layout),
    ) -> Result<(), UpdateError> {
        if let Some(e) = self.failure.get() {
            return Err(UpdateError::Failed(e));
        }
        let mut meta = lock(&self.meta);
        let (mut next, mut layout) = (meta.get().clone(), meta.layout());
        change(&mut next, &mut layout);
        let len = meta::encoded_len(&next);
        if len > MAX_META {
            return Err(UpdateError::MetaTooLarge { len, max: MAX_META });
        }
        meta.store(next, layout)
            .map_err(|e| UpdateError::Failed(self.failure.fail(e)))
    }

    /// Records where the segments are, unless that is already recorded:
    /// after a segment is created, before one is removed.
    pub(crate) fn change_layout(&self, change: impl FnOnce(&mut Layout)) -> io::Result<()> {
        let mut layout = lock(&self.meta).layout();
        change(&mut layout);
        if layout == lock(&self.meta).layout() {
            return Ok(());
        }
        self.change_meta(|_, l| *l = layout)
            .map_err(io::Error::other)
    }
}
