//! What clients ask nodes, and what nodes answer (inside request and reply
//! frames; see `PROTOCOL.md`).

use crate::group::{GroupStatus, Identity};
use crate::server::Member;
use crate::types::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ClientRequest {
    /// Adds or updates a member (administrators and joining nodes).
    Join { id: NodeId, member: Member },
    /// Removes a member.
    Leave { id: NodeId },
    /// The answering node's view of the cluster.
    Status,
    /// Makes sure a collection exists with this signature (creating it if
    /// `create` and it does not).
    Open {
        collection: String,
        signature: String,
        identity: Identity,
        create: bool,
    },
    /// Runs an encoded command through the collection's leader.
    Execute {
        collection: String,
        signature: String,
        #[serde(with = "serde_bytes")]
        command: Vec<u8>,
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
}

/// What a node pushes to a mirror. It borrows its bytes: the node encodes
/// it from its history without copying the changes out, and the mirror
/// decodes the parts in place.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Push<'a> {
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
pub(crate) enum ClientReply {
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
    /// The collection exists with another type.
    #[error("collection {collection:?} is a {theirs}, not a {ours}")]
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
    #[error("this node cannot host a {0}")]
    UnknownKind(String),
    /// No leader took it in time; it was not applied.
    #[error("unavailable: {0}")]
    Unavailable(String),
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
}

pub(crate) type Response = Result<ClientReply, Refusal>;

/// A node's view of the cluster, as `statemesh status` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node: NodeId,
    /// The members, by node id.
    pub members: BTreeMap<NodeId, Member>,
    /// Each group the node hosts (`_cluster` first), by name.
    pub groups: Vec<(String, GroupStatus)>,
}
