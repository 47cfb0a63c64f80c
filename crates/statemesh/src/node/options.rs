//! The settings a node opens its groups with, apart from the node so the
//! defaults and their reasons can be read in one place.

use crate::large::LargeValues;
use statemesh_wal::SyncPolicy;
use std::time::Duration;

/// Raft timing and snapshot settings of the groups a node opens.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Heartbeat period (default 50 ms; elections start after 3 to 6
    /// missed heartbeats).
    pub heartbeat: Duration,
    /// Take a snapshot after this many applied entries (default 10,000).
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, for lagging followers
    /// (default 1,000).
    pub keep_after_snapshot: u64,
    /// Where the groups' Raft logs live (default: on disk, synced before
    /// every acknowledgement).
    pub log: LogStorage,
    /// Where [`Large`](crate::Large) values past a threshold go (default:
    /// 64 KiB threshold, 256 MiB in memory, the rest on disk under the
    /// node's directory). `None` keeps every value in memory.
    pub large_values: Option<LargeValues>,
    /// Size of each group's full log segments (default 8 MiB). A log
    /// zero-fills its active segment and one spare up front; a group's log
    /// starts with segments of [`first_segment_size`](Self::first_segment_size)
    /// and doubles them up to this size, so a collection costs disk in
    /// proportion to what it holds. (The log's own default of 64 MiB, from
    /// the first entry, was 128 MiB per collection and dominated the CPU
    /// of a node whose collections had just been created.)
    pub segment_size: u64,
    /// Size of a group's first log segment (default 128 KiB; at most
    /// `segment_size`): with its spare and the log's metadata, the disk an
    /// empty collection costs (under 1 MiB).
    pub first_segment_size: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(50),
            snapshot_every: 10_000,
            keep_after_snapshot: 1_000,
            log: LogStorage::Disk(SyncPolicy::Always),
            large_values: Some(LargeValues::default()),
            segment_size: 8 << 20,
            first_segment_size: 128 << 10,
        }
    }
}

/// Where a node keeps its groups' Raft logs (entries and votes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStorage {
    /// statemesh-wal segments under the group's directory, synced as the
    /// policy says. Only [`SyncPolicy::Always`] keeps Raft's promise that an
    /// acknowledged write survives the power failure of every node.
    Disk(SyncPolicy),
    /// In memory, with the same log code minus the disk: for tests, and to
    /// measure what the disk costs. Nothing survives the node, and a group
    /// opened this way starts empty (an old snapshot is discarded). A node
    /// that forgot its votes must not rejoin under the same id.
    Memory,
}
