//! What nodes report about the cluster: members, replicas' roles, each
//! replica's view of its group.

use serde::{Deserialize, Serialize};
use statemesh_core::NodeId;

/// What a member may do. Written in lower case, in JSON and in tables
/// alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// It may be promoted to voter (it starts as a learner and is promoted
    /// once caught up, while the cluster has fewer voters than its target).
    Voter,
    /// It stays a learner: it follows every change, never votes, never
    /// leads.
    Reader,
}

impl std::fmt::Display for MemberRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Voter => "voter",
            Self::Reader => "reader",
        })
    }
}

/// A node of the cluster, as the cluster records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Where it listens (`host:port`).
    pub address: String,
    /// What it may do.
    pub role: MemberRole,
}

/// What a replica does in its group. Written in lower case, in JSON and
/// in tables alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// It leads: writes go through it.
    Leader,
    /// It is asking for votes.
    Candidate,
    /// It votes and follows.
    Follower,
    /// It follows without voting.
    Learner,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Leader => "leader",
            Self::Candidate => "candidate",
            Self::Follower => "follower",
            Self::Learner => "learner",
        })
    }
}

/// A replica's view of its group; what `Group::status` on a node answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// This replica's node.
    pub node: NodeId,
    /// What this replica does.
    pub role: Role,
    /// The Raft term it knows of.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// The index of the last entry in its log (0: empty).
    pub last_log_index: u64,
    /// The index of the last change it applied (its version).
    pub applied: u64,
    /// The index its latest snapshot covers, if it has one (built here or
    /// installed from the leader).
    pub snapshot: Option<u64>,
    /// The index up to which its log has been purged, if any.
    pub purged: Option<u64>,
    /// The voters of the group.
    pub voters: std::collections::BTreeSet<NodeId>,
    /// The learners of the group.
    pub learners: std::collections::BTreeSet<NodeId>,
    /// When this replica leads but no quorum has acknowledged it within
    /// an election timeout (it then refuses writes and linearizable
    /// reads): how many voters did (itself included), and how many there
    /// are.
    pub no_quorum: Option<(usize, usize)>,
}
