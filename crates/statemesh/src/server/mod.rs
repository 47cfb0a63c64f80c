//! A node as people run it: on TCP with TLS, in a cluster that organizes
//! its own membership, serving clients.
//!
//! Every server hosts the `_cluster` group, whose state records the
//! members (id, address, role) and the collections (name, type, creator).
//! Each member hosts every collection the cluster has and its build can
//! host ([`Kinds`]). The leader of each group runs the membership policy
//! (`membership::plan`): it adds every member as a learner, promotes a
//! caught-up one to voter while the group has fewer voters than the target,
//! replaces a voter that has been unreachable past a timeout by a caught-up
//! learner, and drops members that left. All changes go through openraft's
//! joint consensus.

mod access;
mod catalog;
mod cluster_state;
mod cursor;
mod data_dir;
mod fanout;
mod inner;
mod join;
mod kinds;
mod membership;
mod mesh;
mod metrics;
mod options;
mod service;
mod subscription;
mod tasks;

pub use kinds::Kinds;
pub use options::{SYSTEM_GROUP, ServerError, ServerOptions};
pub use statemesh_client::{Member, MemberRole};

use crate::error::GroupError;
use crate::group::{GroupId, When};
use crate::network::{Network, TcpNetwork};
use crate::node::Node;
use crate::types::NodeId;
use cluster_state::{ClusterCommand, ClusterState};
use inner::{ServerInner, lock};
use join::{check_join, own_client};
use kinds::Hosted;
use statemesh_client::{ClientError, ClusterReport, ClusterStatus, Refusal};
use statemesh_core::StateMachine;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tasks::{follow_cluster, keep_membership};
use tokio::task::JoinHandle;

/// A running node of a cluster.
pub struct Server {
    inner: Arc<ServerInner>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.inner.id)
            .field("address", &self.inner.address)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts a server: opens and locks the data directory, binds, then
    /// bootstraps a cluster of one (making the cluster's id), joins through
    /// `options.join` (taking that cluster's id), or resumes. A first start
    /// that fails takes away what it made in the data directory.
    ///
    /// # Errors
    ///
    /// See [`ServerError`].
    pub async fn start(options: ServerOptions, kinds: Kinds) -> Result<Self, ServerError> {
        let data = data_dir::DataDir::open(&options.data_dir)?;
        match Self::start_in(&data, options, kinds).await {
            Ok((inner, tasks)) => {
                // The lock lives as long as the node.
                *lock(&inner.data) = Some(data);
                Ok(Self { inner, tasks })
            }
            Err(e) => {
                data.discard();
                Err(e)
            }
        }
    }

    async fn start_in(
        data: &data_dir::DataDir,
        options: ServerOptions,
        kinds: Kinds,
    ) -> Result<(Arc<ServerInner>, Vec<JoinHandle<()>>), ServerError> {
        let id = data.node_id()?;
        let stored = data.cluster_id()?;
        if let Some(ours) = stored
            && !options.join.is_empty()
        {
            check_join(&options, data, ours).await?;
        }
        let net = TcpNetwork::bind(&options.listen, options.network.clone())
            .await
            .map_err(|source| ServerError::Bind {
                address: options.listen.clone(),
                source,
            })?;
        if let Some(c) = stored {
            net.set_cluster_id(c);
        }
        let address = options
            .advertise
            .clone()
            .unwrap_or_else(|| net.local_addr().to_string());
        net.set_address(id, address.clone());
        let network: Arc<dyn Network> = net.clone();
        let node = Node::open(id, data.path(), network, options.node.clone())?;
        let opened = kinds::open_hosted(
            &node,
            SYSTEM_GROUP,
            GroupId::new(SYSTEM_GROUP, &ClusterState::default().signature()),
            ClusterState::default(),
            options.history,
        )
        .await;
        let (system, system_hosted) = match opened {
            Ok(o) => o,
            Err(e) => {
                node.close().await;
                if e.is_damage() {
                    let cure = kinds::damage_cure(id);
                    return Err(ServerError::Damaged { error: e, cure });
                }
                return Err(e.into());
            }
        };
        let mut hosted: HashMap<String, Arc<dyn Hosted>> = HashMap::new();
        hosted.insert(SYSTEM_GROUP.to_owned(), system_hosted);
        let inner = Arc::new(ServerInner {
            id,
            address: address.clone(),
            options,
            node,
            net: Arc::clone(&net),
            system,
            kinds,
            hosted: tokio::sync::Mutex::new(hosted),
            seen: Mutex::new(HashMap::new()),
            unhosted: Mutex::new(BTreeMap::new()),
            changing: Mutex::new(HashSet::new()),
            swept: tokio::sync::Mutex::new(HashSet::new()),
            publications: Mutex::new(HashMap::new()),
            regions: Mutex::new(HashMap::new()),
            reporter: tokio::sync::Mutex::new(None),
            data: Mutex::new(None),
            removed: tokio::sync::watch::Sender::new(false),
            leaving: std::sync::atomic::AtomicBool::new(false),
            mesh: Mutex::new(None),
        });
        inner.learn_addresses();
        net.serve_clients(Arc::new(service::Service(Arc::downgrade(&inner))));
        let entered = match inner.enter(data, stored).await {
            Ok(()) => inner.reserve_regions().await,
            Err(e) => Err(e),
        };
        let entered = match entered {
            Ok(()) => mesh::start(&inner).await,
            Err(e) => Err(e),
        };
        match entered {
            Ok(node_mesh) => *lock(&inner.mesh) = Some(Arc::new(node_mesh)),
            Err(e) => {
                net.close();
                inner.node.close().await;
                return Err(e);
            }
        }
        let tasks = vec![
            tokio::spawn(follow_cluster(Arc::clone(&inner))),
            tokio::spawn(keep_membership(Arc::clone(&inner))),
            tokio::spawn(metrics::report(Arc::clone(&inner))),
        ];
        tracing::info!(
            node = id,
            address = %inner.address,
            cluster = %net.cluster_id().map_or_else(|| "-".into(), |c| c.to_string()),
            "node started"
        );
        Ok((inner, tasks))
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The address others reach it at.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// This node's place in the mesh: its catalog of peers, and streams
    /// it produces and consumes. Mesh peers reach it at its own address.
    #[must_use]
    pub fn mesh(&self) -> Option<statemesh_mesh::Mesh> {
        lock(&self.inner.mesh).as_ref().map(|m| m.mesh.clone())
    }

    /// Resolves once the node learns it was removed from the cluster
    /// (`statemesh members remove`, or [`Server::leave`]): from then on it
    /// refuses clients with [`Refusal::Removed`], and a later start on its
    /// data directory needs `join` to make it a member again.
    pub async fn removed(&self) {
        let mut removed = self.inner.removed.subscribe();
        let _ = removed.wait_for(|r| *r).await;
    }

    /// This node's view of the cluster.
    pub async fn status(&self) -> ClusterStatus {
        self.inner.status().await
    }

    /// Every member's own account of itself, as `statemesh status` shows
    /// it: the node asks each member the cluster records (itself included)
    /// over the network, as a client presenting the cluster's secret would.
    ///
    /// # Errors
    ///
    /// [`ClientError`] if this node cannot be reached at its own address.
    pub async fn report(&self) -> Result<ClusterReport, ClientError> {
        let client = {
            let mut reporter = self.inner.reporter.lock().await;
            match &*reporter {
                Some(c) => c.clone(),
                None => {
                    let c = own_client(&self.inner.options, &self.inner.address).await?;
                    *reporter = Some(c.clone());
                    c
                }
            }
        };
        client.report().await
    }

    /// Futures for this node's copy of collection `name`: when it applies
    /// a version, and when the collection has a leader. A program that
    /// embeds a node learns from it when the node's own replica has a
    /// write, without asking over the network.
    ///
    /// # Errors
    ///
    /// [`Refusal::NoSuchCollection`] if the cluster has no such
    /// collection, [`Refusal::UnknownKind`] if this build cannot host its
    /// type, [`Refusal::Unavailable`] if its group could not be opened.
    pub async fn when(&self, name: &str) -> Result<When, Refusal> {
        Ok(self.inner.hosted(name).await?.when())
    }

    /// Leaves the cluster gracefully: removes this node's record, then
    /// waits (up to `timeout`) until no group counts it as a voter any more,
    /// so its departure never costs a quorum. (A learner is dropped by the
    /// leaders without telling it, so there is nothing to wait for.) Call
    /// [`Server::shutdown`] afterwards.
    ///
    /// # Errors
    ///
    /// [`ServerError::Group`] if the record could not be removed (no
    /// leader) or the groups did not let go in time.
    pub async fn leave(&self, timeout: Duration) -> Result<(), ServerError> {
        let inner = &self.inner;
        inner
            .leaving
            .store(true, std::sync::atomic::Ordering::Relaxed);
        inner
            .system
            .execute(ClusterCommand::Leave { id: inner.id })
            .await
            .map_err(|e| ServerError::Group(GroupError::Raft(format!("leaving: {e}"))))?;
        let deadline = Instant::now() + timeout;
        loop {
            let mut still = Vec::new();
            for (name, h) in inner.all_hosted().await {
                let m = h.raft().metrics().borrow().membership_config.clone();
                if m.membership().voter_ids().any(|v| v == inner.id) {
                    still.push(name);
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ServerError::Group(GroupError::Raft(format!(
                    "still a member of {still:?} after {timeout:?}"
                ))));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops serving, closes the listener and every connection, and shuts
    /// every group down.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        self.inner.reporter.lock().await.take();
        let mesh = lock(&self.inner.mesh).take();
        if let Some(node) = mesh {
            // Peers drop it now rather than after failure detection.
            node.mesh.leave().await;
        }
        self.inner.net.close();
        lock(&self.inner.publications).clear();
        self.inner.hosted.lock().await.clear();
        self.inner.node.close().await;
        // Frees the directory for the next node, whoever still holds this one.
        lock(&self.inner.data).take();
    }
}
