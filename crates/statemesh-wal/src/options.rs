//! How a log is opened: segment sizes, the sync policy, batch size, where a
//! new log starts, and whether recovery may discard damage.
//!
//! Its own module, below both the log and recovery, because both read it:
//! recovery needs `first_index` and `repair` before the log exists.

use crate::error::OpenError;
use std::time::Duration;

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
    /// syncs only when a segment fills, on [`Wal::sync`](crate::Wal::sync),
    /// and on close. A process crash loses nothing acknowledged; a power
    /// failure can lose everything since the last of those.
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
    /// [`Wal::append_at`](crate::Wal::append_at) on an empty log may start
    /// anywhere instead.
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

    /// Refuses options outside their documented ranges, before anything is
    /// read or written.
    pub(crate) fn check(&self) -> Result<(), OpenError> {
        if !(4096..=1 << 30).contains(&self.segment_size) {
            return Err(OpenError::InvalidOption(format!(
                "segment_size must be in 4 KiB..=1 GiB, not {}",
                self.segment_size
            )));
        }
        if let Some(first) = self.first_segment_size
            && !(4096..=self.segment_size).contains(&first)
        {
            return Err(OpenError::InvalidOption(format!(
                "first_segment_size must be in 4 KiB..=segment_size ({}), not {first}",
                self.segment_size
            )));
        }
        if self.max_batch_bytes == 0 {
            return Err(OpenError::InvalidOption(
                "max_batch_bytes must be positive".into(),
            ));
        }
        if let SyncPolicy::Interval(d) = self.sync
            && d.is_zero()
        {
            return Err(OpenError::InvalidOption(
                "sync interval must be positive".into(),
            ));
        }
        Ok(())
    }
}
