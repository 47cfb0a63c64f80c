//! What a server is started with, and why it may fail to start.

use crate::error::{GroupError, NodeError};
use crate::group::HistoryLimits;
use crate::network::TcpOptions;
use crate::node::NodeOptions;
use crate::types::ClusterId;
use statemesh_client::ClientError;
use statemesh_client::MemberRole;
use statemesh_client::local::{LocalError, LocalOptions};
use std::path::PathBuf;
use std::time::Duration;

/// The name of the group that holds the cluster's own state.
pub const SYSTEM_GROUP: &str = "_cluster";

/// How far behind the leader's log a node may be and still count as
/// caught up (for promotion and replacement).
pub(super) const CAUGHT_UP_LAG: u64 = 100;

/// What a server needs to start.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where it keeps its id, logs, snapshots and large values.
    pub data_dir: PathBuf,
    /// Where it listens (`host:port`).
    pub listen: String,
    /// The address others reach it at (default: the address it listens
    /// on, once bound).
    pub advertise: Option<String>,
    /// Members to join through; empty: start a cluster of one (on first
    /// start; later starts resume whatever the data directory holds).
    pub join: Vec<String>,
    /// Whether it may vote.
    pub role: MemberRole,
    /// Cluster name, TLS settings, tokens and limits.
    pub network: TcpOptions,
    /// How many voters the policy aims for (default 3).
    pub target_voters: usize,
    /// How long a voter may stay unreachable before a caught-up learner
    /// replaces it (default 10 s).
    pub replace_after: Duration,
    /// Raft timing and storage.
    pub node: NodeOptions,
    /// How many recent versions' changes each collection keeps for mirrors
    /// (a mirror further behind receives the whole state).
    pub history: HistoryLimits,
    /// Collections this node publishes to shared memory for processes on
    /// its host, each as the region of its own name (see
    /// [`local`](crate::local)). A collection not created yet is published
    /// once it is.
    pub publish: Vec<String>,
    /// Where those regions are.
    pub local: LocalOptions,
    /// Tags this node shows in the mesh (`region=eu`), for producers and
    /// consumers that choose peers by tag.
    pub tags: Vec<String>,
}

impl ServerOptions {
    /// Options with the defaults above.
    #[must_use]
    pub fn new(
        data_dir: impl Into<PathBuf>,
        listen: impl Into<String>,
        network: TcpOptions,
    ) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: listen.into(),
            advertise: None,
            join: Vec::new(),
            role: MemberRole::Voter,
            network,
            target_voters: 3,
            replace_after: Duration::from_secs(10),
            history: HistoryLimits::default(),
            node: NodeOptions::default(),
            publish: Vec::new(),
            local: LocalOptions::new(),
            tags: Vec::new(),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The data directory (or a file in it) cannot be used: it is a
    /// file, cannot be created or written, another node has it open, or a
    /// file in it is damaged.
    #[error("{path}: {reason}")]
    DataDir {
        /// The directory or file.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// The node was removed from its cluster (it learnt so while it ran),
    /// and `join` is empty. Nothing was changed.
    #[error(
        "{path}: this node was removed from its cluster; to make it a member again start it \
         with --join ADDR (or with an empty --data-dir)"
    )]
    Removed {
        /// The data directory.
        path: PathBuf,
    },
    /// `join` names a cluster other than the one the data directory
    /// belongs to. Nothing was changed.
    #[error(
        "{path} holds the data of cluster {ours}, but {address} belongs to cluster {theirs}: \
         to join that cluster give an empty --data-dir; to resume cluster {ours} drop --join"
    )]
    OtherCluster {
        /// The data directory.
        path: PathBuf,
        /// The cluster it belongs to.
        ours: ClusterId,
        /// The member joined through.
        address: String,
        /// That member's cluster.
        theirs: ClusterId,
    },
    /// The listen address could not be bound.
    #[error("listening on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The node could not start.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The cluster group could not be opened.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// This node's files of the cluster group are damaged; `cure` says
    /// what an operator does about it.
    #[error("{error}{cure}")]
    Damaged {
        /// What is damaged.
        error: GroupError,
        /// What to do.
        cure: String,
    },
    /// The node could not join the mesh.
    #[error("joining the mesh: {0}")]
    Mesh(#[from] statemesh_mesh::MeshError),
    /// Joining through the given members failed.
    #[error("joining the cluster: {0}")]
    Join(#[from] ClientError),
    /// A collection named in `publish` cannot be published: most often
    /// another process already publishes its region (the same node started
    /// twice from copies of one data directory).
    #[error("cannot publish {collection:?} to shared memory: {source}")]
    Publish {
        /// The collection.
        collection: String,
        /// Why.
        source: LocalError,
    },
}
