//! The openraft configuration shared by every group.
//!
//! Commands and replies cross the log and the network as bytes (the
//! postcard encoding of the group's state machine types), so one openraft
//! type configuration serves groups of every state machine, and a node can
//! route a message to a group without knowing its types.

openraft::declare_raft_types!(
    /// Every group's openraft types: `Vec<u8>` commands and replies, `u64`
    /// node ids, [`openraft::BasicNode`] addresses, snapshots as files
    /// (streamed in chunks, never whole in memory).
    pub TypeConfig:
        D = Vec<u8>,
        R = Vec<u8>,
        SnapshotData = crate::group::SnapshotStream,
);

pub use statemesh_core::types::{ClusterId, NodeId};

/// The Raft instance of one group.
pub(crate) type Raft = openraft::Raft<TypeConfig>;
