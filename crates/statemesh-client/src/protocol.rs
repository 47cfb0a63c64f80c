//! What clients ask nodes, and what nodes answer (inside request and reply
//! frames; see `PROTOCOL.md`).

use crate::GroupStatus;
use crate::Member;
use serde::{Deserialize, Serialize};
use statemesh_core::Identity;
use statemesh_core::NodeId;
use statemesh_core::session::Stamp;
use std::collections::BTreeMap;
use std::time::Duration;

/// A duration in whole milliseconds, for the wire.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Sees every write acknowledged before the read began, on any replica:
    /// the leader confirms with a quorum that it still leads and names its
    /// commit index (openraft's read index), and this replica waits until
    /// it has applied that far.
    Linearizable,
    /// This replica's state now, possibly behind the leader.
    Local,
}

/// A request frame's payload: the request and how long the node may take
/// to answer it. Encoded as the varint of `timeout_ms` followed by the
/// request, so a client encodes the request once and puts the time left in
/// front of it at each try (`call_bytes`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Call {
    pub timeout_ms: u64,
    pub request: ClientRequest,
}

/// The encoding of a [`Call`] of the already encoded `request`.
pub(crate) fn call_bytes(timeout_ms: u64, request: &[u8]) -> Vec<u8> {
    let mut out = postcard::to_allocvec(&timeout_ms).unwrap_or_default();
    out.extend_from_slice(request);
    out
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Adds or updates a member (administrators and joining nodes).
    Join { id: NodeId, member: Member },
    /// Removes a member.
    Leave { id: NodeId },
    /// The answering node's view of the cluster.
    Status,
    /// Makes sure a collection exists with this signature (creating it as
    /// `mode` says); answers [`ClientReply::Opened`].
    Open {
        collection: String,
        signature: String,
        identity: Identity,
        mode: OpenMode,
    },
    /// The collections the token may read, as the answering node knows
    /// them; answers [`ClientReply::Collections`].
    Collections,
    /// Removes a collection from the cluster, with its files on every
    /// node (administrators).
    Drop { collection: String },
    /// Runs an encoded command through the collection's leader, once
    /// however often it is sent (the stamp names it in its session).
    Execute {
        collection: String,
        signature: String,
        #[serde(with = "serde_bytes")]
        command: Vec<u8>,
        stamp: Stamp,
    },
    /// Answers an encoded query.
    Query {
        collection: String,
        signature: String,
        linearizable: bool,
        #[serde(with = "serde_bytes")]
        query: Vec<u8>,
    },
    /// Waits (up to `timeout_ms`) until the collection's version passes
    /// `after` on the answering node; answers the version.
    WaitVersion {
        collection: String,
        after: u64,
        timeout_ms: u64,
    },
    /// Asks the answering node to snapshot the collection now.
    Snapshot { collection: String },
    /// Opens a mirror's stream (a `Subscribe` frame, not a `Request`): the
    /// changes after version `from`, or the whole state if the node's
    /// history does not reach back that far, then each change as it is
    /// applied, as [`Push`]es.
    Subscribe {
        collection: String,
        signature: String,
        identity: Identity,
        from: u64,
    },
    /// A pass into the cluster's mesh for the peer named `name` (unique
    /// among the token holder's peers), good for `ttl_secs` at most;
    /// answers [`ClientReply::MeshPass`].
    MeshPass {
        name: String,
        ttl_secs: u64,
        /// The SHA-256 of the TLS certificate the peer will present
        /// (`None` in plaintext).
        certificate: Option<[u8; 32]>,
    },
    /// The answering node's mesh catalog, itself first; answers
    /// [`ClientReply::MeshPeers`].
    MeshPeers,
}

impl ClientRequest {
    /// Whether the request may change the cluster, so that one cut short
    /// may still have taken effect. Reads, waits and status never do.
    pub fn changes(&self) -> bool {
        !matches!(
            self,
            Self::Status
                | Self::Collections
                | Self::Query { .. }
                | Self::WaitVersion { .. }
                | Self::Subscribe { .. }
                | Self::MeshPass { .. }
                | Self::MeshPeers
        )
    }
}

/// Whether opening a collection may create it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpenMode {
    /// Only if it exists.
    Existing,
    /// Created if missing and the token may write it.
    OrCreate,
    /// Created; refused with [`Refusal::Exists`] if it exists.
    New,
}

/// What a node pushes to a mirror. It borrows its bytes: the node encodes
/// it from its history without copying the changes out, and the mirror
/// decodes the parts in place.
#[derive(Debug, Serialize, Deserialize)]
pub enum Push<'a> {
    /// The whole state (an encoded `SM::Snapshot`) at `version`.
    Full {
        version: u64,
        reason: Resync,
        #[serde(borrow)]
        state: &'a serde_bytes::Bytes,
    },
    /// The changes that take a copy from version `from` to `to`: each part
    /// an encoded `Vec<SM::Change>`, to apply in order (none: the version
    /// passed with no change).
    Diff {
        from: u64,
        to: u64,
        #[serde(borrow)]
        parts: Vec<&'a serde_bytes::Bytes>,
    },
}

/// Why a mirror received the whole state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resync {
    /// It asked from a version older than the node's history (or from
    /// nothing).
    Behind,
    /// It fell behind by more than the node's history while subscribed:
    /// too slow to keep up.
    TooSlow,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ClientReply {
    Done,
    Status(ClusterStatus),
    /// The encoded `Result<Response, String>` and the version; if the
    /// answering node does not lead the collection, the address of the one
    /// that does (the client sends the collection's next writes there).
    Executed {
        #[serde(with = "serde_bytes")]
        reply: Vec<u8>,
        version: u64,
        leader: Option<String>,
    },
    /// The encoded answer and the version it was read at (at least).
    Answered {
        #[serde(with = "serde_bytes")]
        answer: Vec<u8>,
        version: u64,
    },
    Version(u64),
    /// The collection is open; `created`: by this request.
    Opened {
        created: bool,
    },
    Collections(Vec<CollectionInfo>),
    /// A mesh pass (`statemesh-mesh`'s `Pass`, postcard), the key that
    /// checks every peer's pass (`PassVerifier`, postcard), and the
    /// members' addresses, which are also their mesh addresses: the
    /// seeds to join through.
    MeshPass {
        #[serde(with = "serde_bytes")]
        pass: Vec<u8>,
        #[serde(with = "serde_bytes")]
        verifier: Vec<u8>,
        seeds: Vec<String>,
    },
    /// The catalog: `statemesh-mesh`'s `Vec<Entry>`, postcard.
    MeshPeers(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// A collection, as `statemesh collections` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionInfo {
    /// Its name.
    pub name: String,
    /// Its state machine's signature (in words:
    /// [`describe`](statemesh_core::collections::describe)).
    pub signature: String,
    /// The answering node's version of it (none: the node does not host
    /// it, or could not open it).
    pub version: Option<u64>,
    /// How many entries it holds, for kinds that count them (a map's keys,
    /// a set's members, a vector's items, a queue's items, a cell's one
    /// value or none).
    pub entries: Option<u64>,
    /// Bytes its log, snapshot and large values take on the answering
    /// node's disk.
    pub disk_bytes: u64,
    /// The member that leads it, as the answering node knows.
    pub leader: Option<NodeId>,
}

/// Why a node did not do what a client asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The token does not allow it.
    #[error("the token does not allow {access} on {collection:?}")]
    Forbidden {
        /// The collection.
        collection: String,
        /// `read`, `write` or `admin`.
        access: String,
    },
    /// No collection of that name exists.
    #[error("no collection named {0:?}")]
    NoSuchCollection(String),
    /// The collection was asked to be created but exists (with the type
    /// of that signature).
    #[error(
        "{collection:?} already exists ({})",
        statemesh_core::collections::describe(signature)
    )]
    Exists {
        /// The collection.
        collection: String,
        /// Its signature.
        signature: String,
    },
    /// The collection was dropped while it was followed: its mirrors and
    /// local readers stop.
    #[error("{0:?} was dropped")]
    Dropped(String),
    /// The collection exists with another type (the signatures of both;
    /// the message says them in words).
    #[error(
        "{collection:?} is {}, not {}",
        statemesh_core::collections::describe(theirs),
        statemesh_core::collections::describe(ours)
    )]
    Mismatch {
        /// The collection.
        collection: String,
        /// The type asked for.
        ours: String,
        /// The type it has.
        theirs: String,
    },
    /// The node cannot host a collection of that type (its build does not
    /// register it).
    #[error("this node cannot host {}", statemesh_core::collections::describe(.0))]
    UnknownKind(String),
    /// No leader took it in time; it was not applied.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Fewer than a majority of the collection's voters answered the node
    /// (or the node leads but has not heard from a quorum for an election
    /// timeout, so another may lead by now): not applied. Another member
    /// may do better.
    #[error("no quorum: {reachable} of {voters} voters reachable from the node")]
    NoQuorum {
        /// Voters that answered the node recently (itself included).
        reachable: usize,
        /// The collection's voters.
        voters: usize,
    },
    /// The node's time for the request ran out. If `maybe_applied`, a
    /// leader had taken the command: sent again, it is still applied at
    /// most once.
    #[error(
        "no outcome in time ({})",
        if *maybe_applied { "it may have been applied" } else { "it was not applied" }
    )]
    Timeout {
        /// Whether the command may have been applied.
        maybe_applied: bool,
    },
    /// A leader took it but the outcome is unknown.
    #[error("the outcome is unknown: {0}")]
    Indeterminate(String),
    /// The collection exists with another identity (name, type and
    /// initial state): a copy of one would not be a copy of the other.
    #[error("collection {collection:?} has identity {theirs}, not {ours}")]
    Identity {
        /// The collection.
        collection: String,
        /// The identity asked for.
        ours: String,
        /// The collection's.
        theirs: String,
    },
    /// The request could not be decoded.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node named is not a member of the cluster.
    #[error("node {0} is not a member of the cluster")]
    NoSuchMember(NodeId),
    /// The answering node was removed from the cluster: it serves none of
    /// its collections. Another member may answer.
    #[error("this node was removed from the cluster: ask another member")]
    Removed,
}

pub type Response = Result<ClientReply, Refusal>;

/// A node's view of the cluster, as `statemesh status` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node: NodeId,
    /// The members, by node id.
    pub members: BTreeMap<NodeId, Member>,
    /// Each group the node hosts (`_cluster` first), by name.
    pub groups: Vec<(String, GroupStatus)>,
    /// Milliseconds since the node last heard from each member (it pings
    /// them four times a second); itself at 0.
    pub last_contact_ms: BTreeMap<NodeId, u64>,
    /// How many mirrors follow each collection from this node (collections
    /// none follows are left out).
    pub mirrors: BTreeMap<String, u64>,
    /// Collections of the cluster this node cannot host (its files of them
    /// are damaged, say), and why: a problem for `statemesh health`.
    pub unhosted: BTreeMap<String, String>,
}
