//! Errors, one enum per operation.

use crate::types::NodeId;

/// Why a command was not executed, or might not have been.
///
/// Every command carries its writer's session stamp, and a group applies a
/// stamped command at most once however often it is sent, so every error
/// here but [`ExecuteError::Indeterminate`] and a timeout with
/// `maybe_applied` says for certain that the command was not applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError {
    /// Fewer than a majority of the group's voters answered this node: no
    /// leader can commit anything. Not applied.
    #[error("no quorum: {reachable} of {voters} voters reachable")]
    NoQuorum {
        /// Voters that answered within the last few election timeouts
        /// (this node included).
        reachable: usize,
        /// The group's voters.
        voters: usize,
    },
    /// The deadline passed before the outcome was known. If
    /// `maybe_applied`, a leader had taken the command: it may still be
    /// applied, once; otherwise it was not applied.
    #[error(
        "no outcome within {after:?} ({})",
        if *maybe_applied { "it may have been applied" } else { "it was not applied" }
    )]
    Timeout {
        /// The deadline the command had.
        after: std::time::Duration,
        /// Whether it may have been applied.
        maybe_applied: bool,
    },
    /// The command's outcome is unknown and cannot be learned: its writer
    /// session expired (its retries went on longer than a session lives,
    /// ten minutes) before the outcome was known.
    #[error("the outcome is unknown: {0}")]
    Indeterminate(String),
    /// The command could not be encoded.
    #[error("the command could not be encoded: {0}")]
    Encode(String),
    /// The reply could not be decoded (a replica of another version?).
    #[error("the reply could not be decoded: {0}")]
    Decode(String),
    /// The group has shut down on this node. A command that was in flight
    /// may or may not have been applied.
    #[error("the group has shut down")]
    Shutdown,
}

/// Why a read could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Fewer than a majority of the group's voters answered this node: no
    /// leader can confirm its leadership.
    #[error("no quorum: {reachable} of {voters} voters reachable")]
    NoQuorum {
        /// Voters that answered within the last few election timeouts
        /// (this node included).
        reachable: usize,
        /// The group's voters.
        voters: usize,
    },
    /// No leader confirmed its leadership (or this replica did not catch
    /// up with it) within the deadline.
    #[error("no leader confirmed its leadership within {0:?}")]
    Timeout(std::time::Duration),
    /// The group has shut down.
    #[error("the group has shut down")]
    Shutdown,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node's directory could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The cache of large values could not be opened.
    #[error("the node's cache of large values: {0}")]
    Values(#[from] statemesh_cache::CacheError),
}

/// Why a node could not host a group.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// A peer hosts a group of this name with another state machine
    /// signature.
    #[error("node {peer} hosts group {name:?} as {theirs:?}, not {ours:?}")]
    Mismatch {
        /// The group's name.
        name: String,
        /// The peer that refused.
        peer: NodeId,
        /// Our state machine's signature.
        ours: String,
        /// The peer's.
        theirs: String,
    },
    /// This node already hosts a group of that name.
    #[error("group {0:?} is already open on this node")]
    AlreadyOpen(String),
    /// The group's log could not be opened.
    #[error("the group's log: {0}")]
    Log(#[from] statemesh_wal::OpenError),
    /// The group's snapshot or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The stored snapshot is damaged.
    #[error("{path}: damaged snapshot ({reason})")]
    CorruptSnapshot {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// openraft refused to start or initialize the group.
    #[error("raft: {0}")]
    Raft(String),
}

impl GroupError {
    /// Whether this node's files of the group are damaged (a log record
    /// or segment that fails its checks, a missing segment, a bad
    /// snapshot): opening again will fail the same way, and the cure is a
    /// fresh copy from the other members.
    #[must_use]
    pub fn is_damage(&self) -> bool {
        use statemesh_wal::OpenError as O;
        match self {
            Self::Log(e) => matches!(
                e,
                O::BadMagic { .. }
                    | O::CorruptHeader { .. }
                    | O::Corrupt { .. }
                    | O::Truncated { .. }
                    | O::MissingSegment { .. }
                    | O::Lost { .. }
                    | O::CorruptMeta { .. }
                    | O::MissingMeta { .. }
            ),
            Self::CorruptSnapshot { .. } => true,
            _ => false,
        }
    }
}
