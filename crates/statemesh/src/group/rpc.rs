//! The messages nodes exchange on behalf of their groups.

use super::GroupId;
use crate::types::{NodeId, TypeConfig};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use statemesh_core::session::Stamp;

/// A request to one group on another node.
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) group: GroupId,
    pub(crate) request: Request,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    /// Does the node host a group of this name, and with which signature?
    Hello {
        name: String,
        signature: String,
    },
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A command forwarded to the leader (the leader batches it with
    /// others into one entry), to be answered within `timeout_ms`.
    Execute {
        command: Stamped,
        timeout_ms: u64,
    },
    /// The leader's read index, after a quorum confirmed its leadership,
    /// within `timeout_ms`.
    ReadIndex {
        timeout_ms: u64,
    },
    /// Adds the sender to the group as a learner.
    AddLearner(NodeId),
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Reply {
    Hello(Hello),
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The reply bytes and the log index the command was applied at.
    Executed(Result<(Vec<u8>, u64), Refused>),
    ReadIndex(Result<u64, Refused>),
    LearnerAdded(Result<(), Refused>),
    /// The node hosts no group with this id.
    NoSuchGroup,
    /// The request could not be decoded.
    BadRequest(String),
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
pub(crate) enum Hello {
    /// Not hosted here (yet).
    Unknown,
    Same,
    /// Hosted with this other signature.
    Mismatch(String),
}

/// Why a leader-only request was not carried out.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) enum Refused {
    /// This node is not the leader; the hint is the leader it knows of.
    NotLeader(Option<NodeId>),
    /// This node leads, but no quorum has answered it for longer than an
    /// election timeout: another may lead by now. Not carried out.
    NoQuorum { reachable: usize, voters: usize },
    /// Accepted, then failed: the outcome is unknown.
    Failed(String),
    /// The command's session no longer knows whether it was applied; it
    /// was not applied now.
    Expired,
    /// The deadline passed; `maybe_applied` if a leader had taken it.
    Timeout { maybe_applied: bool },
    /// The group is shutting down on that node: the outcome is unknown.
    Shutdown,
}

/// One Raft entry's payload: commands proposed together, applied in order
/// at the entry's index.
#[derive(Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The proposing leader's clock, in milliseconds since the epoch: the
    /// clock by which writer sessions expire.
    pub(crate) time_ms: u64,
    pub(crate) commands: Vec<Stamped>,
}

/// An encoded state machine command and its place in its writer's session.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct Stamped {
    pub(crate) stamp: Stamp,
    #[serde(with = "serde_bytes")]
    pub(crate) command: Vec<u8>,
}

/// What applying a batch answers, per command: the encoded response and
/// the index it was applied at (an earlier one for a command seen before),
/// or `None` if its session had expired and it was not applied.
pub(crate) type Applied = Vec<Option<(Vec<u8>, u64)>>;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Only our own message types are encoded, and postcard cannot fail on
    // them (no maps with non-string keys, no unsupported types).
    postcard::to_allocvec(value).unwrap_or_default()
}
