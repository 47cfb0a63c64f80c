//! Replicated state over Raft: custom state machines and typed collections,
//! durable in [`statemesh_wal`], replicated by [`openraft`].
//!
//! A [`Node`] hosts any number of groups; a group is one Raft instance with
//! its own log and state machine, named by its name and the signature of
//! its state machine ([`GroupId`]), so nodes that disagree on a group's type
//! never share it. Writes go through the leader (a follower forwards them),
//! reads are local or linearizable (read index), and every write returns
//! its outcome and the version (log index) it was applied at. Concurrent
//! writes are batched into one log entry and share its version.
//!
//! [`collections`] has `Cell`, `Once`, `Map`, `Set`, `Vec` and
//! `PriorityQueue`, each with a writer handle and a read-only handle that
//! follows as a learner; any type implementing [`StateMachine`] runs the
//! same way through [`Node::open_group`]. A [`Large`] value lives in the
//! node's `statemesh-cache` pool once its encoding passes a threshold, so
//! a collection of them may be larger than memory; snapshots are files,
//! streamed, that refer to such values instead of copying them.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use statemesh::{Cell, MemoryNetwork, Node, NodeOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let net = MemoryNetwork::new();
//! let node = Node::open(1, dir.path(), net, NodeOptions::default())?;
//! let cell = Cell::<String>::open(&node, "greeting", &[1]).await?;
//! let (previous, version) = cell.write("hello".into()).await?;
//! assert_eq!(previous, None);
//! cell.when().reaches(version).await;
//! assert_eq!(cell.read().as_deref(), Some("hello"));
//! node.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod collections;
mod error;
/// Hooks for this crate's fuzz targets (`tests/fuzz.rs`). Not a stable
/// API: hidden from the documentation and free to change in any release.
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod large;
pub mod network;
mod node;
pub mod server;
mod types;

pub use collections::{
    Cell, CellReader, Json, Map, MapReader, Once, OnceReader, PriorityQueue, PriorityQueueReader,
    Reader, Set, SetReader, VecReader, View, Writer,
};
pub use error::{ExecuteError, GroupError, NodeError, QueryError};
pub use group::{
    Consistency, Group, GroupId, GroupStatus, HistoryLimits, Identity, Role, SnapshotStream,
    Versions, When,
};
pub use large::{Large, LargeError, LargeValues};
pub use network::{MemoryNetwork, Network, Security, TcpNetwork, TcpOptions, Tls};
pub use node::{LogStorage, Node, NodeOptions};
pub use server::{Kinds, Member, MemberRole, Server, ServerError, ServerOptions};
pub use statemesh_cache::PoolStats;
pub use statemesh_client::local;
pub use statemesh_client::{
    Client, ClientError, ClientOptions, ClusterReport, ClusterStatus, CollectionInfo, MemberReport,
    Refusal, Remote, RemoteCell, RemoteMap, RemoteOnce, RemotePriorityQueue, RemoteSet, RemoteVec,
    RemoteWritten, Resync,
};
pub use statemesh_client::{
    Mirror, MirrorError, MirrorFileError, MirrorOptions, MirrorStats, Update,
};
pub use statemesh_core::hooks;
pub use statemesh_core::{Changes, Mirrored, Queryable, StateMachine};
/// The mesh: peers found by gossip, and typed streams between them
/// ([`statemesh_mesh`]). Every [`Server`] is also a peer, on its own
/// address, and issues passes to token holders ([`mesh::Mesh::through`]).
pub use statemesh_mesh as mesh;
pub use statemesh_wal::SyncPolicy;
pub use types::{ClusterId, NodeId, TypeConfig};
