//! What a mirror received: counted by the follower on every push and read
//! by the handle, so the counters sit apart from both.

use std::sync::atomic::{AtomicBool, AtomicU64};

/// Counts of what a mirror received, for monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorStats {
    /// Whole states received.
    pub full_states: u64,
    /// Runs of changes received.
    pub diffs: u64,
    /// Subscriptions made after the first (reconnections).
    pub resubscriptions: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) full_states: AtomicU64,
    pub(super) diffs: AtomicU64,
    pub(super) resubscriptions: AtomicU64,
    /// [`Mirror::updates`](super::Mirror::updates) was called: changes are decoded a second time,
    /// for its receivers. Asking the channel instead (`receiver_count`)
    /// takes its lock, a cache miss for every push to every mirror in a
    /// process that holds many; this flag shares a line with `diffs`, which
    /// every push touches anyway. It stays set: a receiver dropped later
    /// costs only the second decoding.
    pub(super) watched: AtomicBool,
    /// The copy's version, as the follower last set it. Checked against
    /// each push instead of the version the copy publishes: that one is
    /// watched from other threads, and reading it before setting it costs
    /// a transfer of its cache line more per push.
    pub(super) applied: AtomicU64,
}
