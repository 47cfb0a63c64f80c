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
mod kinds;
mod membership;
mod metrics;
mod service;
mod subscription;

pub use kinds::Kinds;
pub use statemesh_client::{Member, MemberRole};

use crate::Consistency;
use crate::error::{GroupError, NodeError};
use crate::group::rpc::{Envelope, Request, encode};
use crate::group::{Group, GroupId, HistoryLimits, Redirect, When};
use crate::network::{Network, TcpNetwork, TcpOptions};
use crate::node::{Node, NodeOptions};
use crate::types::{ClusterId, NodeId};
use cluster_state::{ClusterCommand, ClusterState, Collection};
use kinds::Hosted;
use membership::{Action, View};
use openraft::{BasicNode, ChangeMembers, ServerState};
use statemesh_client::local::{LocalError, LocalOptions, Publication, RegionWriter};
use statemesh_client::{Client, ClientError, ClientOptions, ClusterReport, ClusterStatus, Refusal};
use statemesh_core::StateMachine;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The name of the group that holds the cluster's own state.
pub const SYSTEM_GROUP: &str = "_cluster";

/// How far behind the leader's log a node may be and still count as
/// caught up (for promotion and replacement).
const CAUGHT_UP_LAG: u64 = 100;

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

pub(crate) struct ServerInner {
    id: NodeId,
    address: String,
    options: ServerOptions,
    node: Node,
    net: Arc<TcpNetwork>,
    system: Group<ClusterState>,
    kinds: Kinds,
    /// Hosted groups by name, `_cluster` included.
    hosted: tokio::sync::Mutex<HashMap<String, Arc<dyn Hosted>>>,
    /// When each member last answered a ping.
    seen: Mutex<HashMap<NodeId, Instant>>,
    /// Collections of the cluster this node failed to open, and why.
    unhosted: Mutex<BTreeMap<String, String>>,
    /// Groups with a membership change in flight.
    changing: Mutex<HashSet<String>>,
    /// Dropped groups whose files this node has deleted (or found gone)
    /// since it started; held while sweeping.
    swept: tokio::sync::Mutex<HashSet<GroupId>>,
    /// The collections published to shared memory, by name.
    publications: Mutex<HashMap<String, Publication>>,
    /// Regions reserved at start for collections in `publish` that this
    /// node does not host yet, by collection name.
    regions: Mutex<HashMap<String, RegionWriter>>,
    /// The client [`Server::report`] asks the members through, made at
    /// the first report.
    reporter: tokio::sync::Mutex<Option<Client>>,
    /// The data directory, locked while the node runs.
    data: Mutex<Option<data_dir::DataDir>>,
    /// Whether the node has learnt it was removed from the cluster.
    removed: tokio::sync::watch::Sender<bool>,
    /// Whether it is leaving of its own accord ([`Server::leave`]): its
    /// removal is then no news.
    leaving: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        });
        inner.learn_addresses();
        net.serve_clients(Arc::new(service::Service(Arc::downgrade(&inner))));
        let entered = match inner.enter(data, stored).await {
            Ok(()) => inner.reserve_regions().await,
            Err(e) => Err(e),
        };
        if let Err(e) = entered {
            net.close();
            inner.node.close().await;
            return Err(e);
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
        self.inner.net.close();
        lock(&self.inner.publications).clear();
        self.inner.hosted.lock().await.clear();
        self.inner.node.close().await;
        // Frees the directory for the next node, whoever still holds this one.
        lock(&self.inner.data).take();
    }
}

impl ServerInner {
    /// Takes this node into its cluster: bootstraps a new one, joins the
    /// one `join` names, or resumes the one the data directory holds
    /// (after checking that `join`, if given, names that same cluster).
    async fn enter(
        &self,
        data: &data_dir::DataDir,
        stored: Option<ClusterId>,
    ) -> Result<(), ServerError> {
        let me = Member {
            address: self.address.clone(),
            role: self.options.role,
        };
        let initialized = self
            .system
            .raft()
            .is_initialized()
            .await
            .map_err(|e| GroupError::Raft(e.to_string()))?;
        let join = &self.options.join;
        let removed = data.was_removed();
        if removed && join.is_empty() {
            return Err(ServerError::Removed {
                path: data.path().to_path_buf(),
            });
        }
        if !initialized && join.is_empty() {
            let cluster = match stored {
                Some(c) => c,
                None => {
                    let c = ClusterId::random().map_err(|e| ServerError::DataDir {
                        path: data.path().to_path_buf(),
                        reason: format!("cannot make a cluster id: {e}"),
                    })?;
                    data.set_cluster_id(c)?;
                    c
                }
            };
            self.net.set_cluster_id(cluster);
            let members = BTreeMap::from([(self.id, BasicNode::new(me.address.clone()))]);
            if let Err(e) = self.system.raft().initialize(members).await {
                tracing::debug!("initialize: {e}");
            }
            tracing::info!(cluster = %cluster, "bootstrapped a new cluster");
            return self.record(me).await;
        }
        if !initialized || removed {
            // Joining waits for a membership change, which waits for the
            // cluster's own group: more than a client's default. A node
            // that was removed joins again with its old logs: the leaders
            // add it as a learner and bring its logs up to date, as after
            // any absence.
            let client = join_client(&self.options, Duration::from_secs(10)).await?;
            if let Some(theirs) = client.cluster_id().await? {
                data.set_cluster_id(theirs)?;
                self.net.set_cluster_id(theirs);
            }
            client.join(self.id, me).await?;
            return data.clear_removed();
        }
        if !join.is_empty() {
            tracing::info!(
                "already a member: resuming from the data directory (--join is read only on a \
                 first start)"
            );
        }
        if self.system.read_local(|s| s.members.get(&self.id).cloned()) != Some(me.clone()) {
            // Restarted with another address or role: record it once a
            // leader is there.
            let inner = self.system.clone();
            let id = self.id;
            tokio::spawn(async move {
                if let Err(e) = inner.execute(ClusterCommand::Join { id, member: me }).await {
                    tracing::warn!("recording this node's address: {e}");
                }
            });
        }
        Ok(())
    }

    /// Whether the node has learnt it was removed from the cluster.
    pub(crate) fn is_removed(&self) -> bool {
        *self.removed.borrow()
    }

    /// Notes, once, that the node was removed from the cluster.
    fn note_removed(&self) {
        if self.removed.send_replace(true) {
            return;
        }
        if let Err(e) = data_dir::mark_removed(&self.options.data_dir) {
            tracing::error!("noting the removal in the data directory: {e}");
        }
        if self.leaving.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        tracing::warn!(
            node = self.id,
            "this node was removed from the cluster: it serves none of its collections now"
        );
    }

    /// Records this node as a member (through the leader).
    async fn record(&self, me: Member) -> Result<(), ServerError> {
        self.system
            .execute(ClusterCommand::Join {
                id: self.id,
                member: me,
            })
            .await
            .map_err(|e| {
                ServerError::Group(GroupError::Raft(format!("recording this node: {e}")))
            })?;
        Ok(())
    }

    /// Points the network at every member's recorded address.
    fn learn_addresses(&self) {
        let members = self.system.read_local(|s| s.members.clone());
        for (id, m) in members {
            if id != self.id && self.net.address(id).as_deref() != Some(&m.address) {
                self.net.set_address(id, m.address.clone());
            }
        }
    }

    /// The hosted group `name`, opening it if the cluster has it and this
    /// build can host it.
    pub(crate) async fn hosted(&self, name: &str) -> Result<Arc<dyn Hosted>, Refusal> {
        if let Some(h) = self.hosted.lock().await.get(name) {
            return Ok(Arc::clone(h));
        }
        let Some(c) = self.collection(name).await else {
            return Err(Refusal::NoSuchCollection(name.to_owned()));
        };
        let mut hosted = self.hosted.lock().await;
        if let Some(h) = hosted.get(name) {
            return Ok(Arc::clone(h));
        }
        let h = self
            .kinds
            .open(
                &c.signature,
                &self.node,
                name,
                c.group_id(name),
                self.options.history,
            )
            .await?;
        if c.creator == self.id
            && !h
                .raft()
                .is_initialized()
                .await
                .map_err(|e| Refusal::Unavailable(e.to_string()))?
        {
            let me = BTreeMap::from([(self.id, BasicNode::new(self.address.clone()))]);
            if let Err(e) = h.raft().initialize(me).await {
                tracing::debug!(collection = name, "initialize: {e}");
            }
        }
        hosted.insert(name.to_owned(), Arc::clone(&h));
        if self.options.publish.iter().any(|p| p == name) {
            // A collection dropped and made again needs its region anew.
            let reserved = lock(&self.regions).remove(name);
            let published = match reserved {
                Some(r) => Ok(r),
                None => self.reserve_region(name),
            }
            .and_then(|r| h.publish_local(r));
            match published {
                Ok(p) => {
                    tracing::info!(
                        collection = name,
                        region = p.name(),
                        "published to shared memory"
                    );
                    lock(&self.publications).insert(name.to_owned(), p);
                }
                Err(e) => tracing::error!(collection = name, "cannot publish: {e}"),
            }
        }
        Ok(h)
    }

    /// The cluster's record of collection `name`. One this node does not
    /// know of may have been made a moment ago through another member
    /// (this node's copy of the record can lag the leader's by a few
    /// milliseconds, and a client that has just created a collection must
    /// find it on any node), so that answer is checked with the leader.
    pub(crate) async fn collection(&self, name: &str) -> Option<Collection> {
        match self.system.read_local(|s| s.collections.get(name).cloned()) {
            Some(c) => Some(c),
            None => self.fresh(|s| s.collections.get(name).cloned()).await,
        }
    }

    /// Reads the cluster's record once this node's copy has everything
    /// the leader had committed when asked (or, if no leader answers in
    /// time, this node's copy as it is).
    pub(crate) async fn fresh<R>(&self, read: impl Fn(&ClusterState) -> R) -> R {
        self.fresh_until(Instant::now() + FRESH_CATALOG, read).await
    }

    /// [`fresh`](Self::fresh), asking the leader until `deadline` at most.
    pub(crate) async fn fresh_until<R>(
        &self,
        deadline: Instant,
        read: impl Fn(&ClusterState) -> R,
    ) -> R {
        let deadline = deadline.min(Instant::now() + FRESH_CATALOG);
        match self
            .system
            .query_until(Consistency::Linearizable, deadline, Redirect::No, &read)
            .await
        {
            Ok(r) => r,
            Err(_) => self.system.read_local(read),
        }
    }

    /// Takes the region of every collection in `publish`, so that a second
    /// publisher of any of them stops this node at start.
    async fn reserve_regions(&self) -> Result<(), ServerError> {
        // Held so that `hosted` does not publish one of them meanwhile.
        let _hosted = self.hosted.lock().await;
        for name in &self.options.publish {
            if lock(&self.publications).contains_key(name) {
                continue;
            }
            let region = self
                .reserve_region(name)
                .map_err(|source| ServerError::Publish {
                    collection: name.clone(),
                    source,
                })?;
            lock(&self.regions).insert(name.clone(), region);
        }
        Ok(())
    }

    fn reserve_region(&self, name: &str) -> Result<RegionWriter, LocalError> {
        let cluster = self.net.cluster_id().ok_or_else(|| {
            LocalError::Encode("the node has no cluster id yet to name the region by".into())
        })?;
        let region = statemesh_client::local::region_name(cluster, self.id, name);
        statemesh_client::local::reserve(&region, &self.options.local)
    }

    /// Every hosted group, copied out of the lock.
    async fn all_hosted(&self) -> Vec<(String, Arc<dyn Hosted>)> {
        self.hosted
            .lock()
            .await
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    pub(crate) async fn status(&self) -> ClusterStatus {
        let members: BTreeMap<NodeId, Member> = self
            .system
            .read_local(|s| s.members.iter().map(|(k, v)| (*k, v.clone())).collect());
        let hosted = self.all_hosted().await;
        let mirrors = hosted
            .iter()
            .map(|(n, h)| (n.clone(), h.fanout().connected()))
            .filter(|(_, m)| *m > 0)
            .collect();
        let mut groups: Vec<_> = hosted.into_iter().map(|(n, h)| (n, h.status())).collect();
        groups.sort_by(|a, b| (a.0 != SYSTEM_GROUP, &a.0).cmp(&(b.0 != SYSTEM_GROUP, &b.0)));
        let now = Instant::now();
        let last_contact_ms = lock(&self.seen)
            .iter()
            .filter(|(id, _)| members.contains_key(*id))
            .map(|(id, t)| (*id, crate::group::millis(now.duration_since(*t))))
            .collect();
        ClusterStatus {
            node: self.id,
            members,
            groups,
            last_contact_ms,
            mirrors,
            unhosted: lock(&self.unhosted).clone(),
        }
    }
}

/// How long a node asks the leader whether a collection it does not know
/// of exists, before it says there is none.
const FRESH_CATALOG: Duration = Duration::from_secs(2);

/// A client of the members `options.join` names, presenting the cluster
/// secret.
async fn join_client(options: &ServerOptions, timeout: Duration) -> Result<Client, ClientError> {
    secret_client(options, &options.join, timeout).await
}

/// A client of this node itself, presenting the cluster secret.
async fn own_client(options: &ServerOptions, address: &str) -> Result<Client, ClientError> {
    secret_client(options, &[address.to_owned()], Duration::from_secs(5)).await
}

async fn secret_client(
    options: &ServerOptions,
    addresses: &[String],
    timeout: Duration,
) -> Result<Client, ClientError> {
    let n = &options.network;
    let mut client_options = ClientOptions::new(n.cluster.clone(), n.security.clone());
    client_options.timeout = timeout;
    let secret = String::from_utf8_lossy(n.auth.secret().as_bytes()).into_owned();
    Client::connect(addresses, secret, client_options).await
}

/// Before a node that already belongs to cluster `ours` opens anything:
/// refuses a `join` that names another cluster. A restart with the flags
/// of the first start is normal; a `join` through members that cannot be
/// reached now is let pass (with a warning), since a member that has
/// already joined does not need them.
async fn check_join(
    options: &ServerOptions,
    data: &data_dir::DataDir,
    ours: ClusterId,
) -> Result<(), ServerError> {
    match join_client(options, Duration::from_secs(2)).await {
        Ok(client) => match client.cluster_id().await {
            Ok(Some(theirs)) if theirs != ours => Err(ServerError::OtherCluster {
                path: data.path().to_path_buf(),
                ours,
                address: client.address().await,
                theirs,
            }),
            _ => Ok(()),
        },
        Err(ClientError::Connection { address, error }) if error.is_permanent() => {
            Err(ClientError::Connection { address, error }.into())
        }
        Err(e) => {
            tracing::warn!(
                "cannot check that --join names this node's cluster ({e}): resuming from the \
                 data directory"
            );
            Ok(())
        }
    }
}

/// Follows the cluster's state: members' addresses, and collections to
/// host.
async fn follow_cluster(inner: Arc<ServerInner>) {
    let mut when = inner.system.when();
    // A node is not in the record until its join is applied, so only a
    // record that had it and lost it means a removal.
    let mut was_member = false;
    loop {
        inner.learn_addresses();
        let member = inner
            .system
            .read_local(|s| s.members.contains_key(&inner.id));
        if member {
            was_member = true;
            if inner.removed.send_replace(false) {
                // Added back (`statemesh members add`).
                if let Some(d) = &*lock(&inner.data)
                    && let Err(e) = d.clear_removed()
                {
                    tracing::error!("{e}");
                }
                tracing::info!(node = inner.id, "this node is a member again");
            }
        } else if was_member {
            inner.note_removed();
        }
        catalog::sweep(&inner).await;
        let names: Vec<String> = inner
            .system
            .read_local(|s| s.collections.keys().cloned().collect());
        lock(&inner.unhosted).retain(|n, _| names.contains(n));
        for name in names {
            match inner.hosted(&name).await {
                Ok(_) => {
                    lock(&inner.unhosted).remove(&name);
                }
                Err(e) => {
                    let why = e.to_string();
                    if lock(&inner.unhosted).insert(name.clone(), why.clone()) != Some(why.clone())
                    {
                        tracing::error!(collection = %name, "cannot host: {why}");
                    }
                }
            }
        }
        if let Ok(None) = tokio::time::timeout(Duration::from_secs(1), when.updated()).await {
            // The cluster's group is closed: the node is shutting down.
            return;
        }
    }
}

/// Pings the members and, in every group this node leads, carries out the
/// membership policy.
async fn keep_membership(inner: Arc<ServerInner>) {
    let ping = encode(&Envelope {
        group: inner.system.id(),
        request: Request::Hello {
            name: SYSTEM_GROUP.to_owned(),
            signature: ClusterState::default().signature(),
        },
    });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let members: BTreeMap<NodeId, Member> = inner
            .system
            .read_local(|s| s.members.iter().map(|(k, v)| (*k, v.clone())).collect());
        let mut pings = tokio::task::JoinSet::new();
        for &id in members.keys().filter(|&&id| id != inner.id) {
            let (net, ping, me) = (Arc::clone(&inner.net), ping.clone(), inner.id);
            pings.spawn(async move {
                let answered =
                    tokio::time::timeout(Duration::from_millis(500), net.call(me, id, ping))
                        .await
                        .is_ok_and(|r| r.is_ok());
                (id, answered)
            });
        }
        let now = Instant::now();
        {
            let mut seen = lock(&inner.seen);
            seen.insert(inner.id, now);
            for id in members.keys() {
                seen.entry(*id).or_insert(now);
            }
        }
        while let Some(Ok((id, answered))) = pings.join_next().await {
            if answered {
                lock(&inner.seen).insert(id, Instant::now());
            }
        }
        let unreachable: BTreeSet<NodeId> = lock(&inner.seen)
            .iter()
            .filter(|(_, t)| now.duration_since(**t) > inner.options.replace_after)
            .map(|(id, _)| *id)
            .collect();
        let roles: BTreeMap<NodeId, MemberRole> =
            members.iter().map(|(id, m)| (*id, m.role)).collect();
        for (name, group) in inner.all_hosted().await {
            let metrics = group.raft().metrics().borrow().clone();
            if metrics.state != ServerState::Leader || lock(&inner.changing).contains(&name) {
                continue;
            }
            let membership = metrics.membership_config.membership();
            let last = metrics.last_log_index.unwrap_or(0);
            let caught_up = metrics
                .replication
                .iter()
                .flatten()
                .filter(|(_, matched)| matched.map_or(0, |l| l.index) + CAUGHT_UP_LAG >= last)
                .map(|(id, _)| *id)
                .collect();
            let view = View {
                leader: inner.id,
                voters: membership.voter_ids().collect(),
                learners: membership.learner_ids().collect(),
                members: roles.clone(),
                caught_up,
                unreachable: unreachable.clone(),
                target: inner.options.target_voters.max(1),
            };
            let Some(action) = membership::plan(&view) else {
                continue;
            };
            lock(&inner.changing).insert(name.clone());
            let (inner, members) = (Arc::clone(&inner), members.clone());
            tokio::spawn(async move {
                tracing::info!(group = %name, ?action, "membership change");
                let raft = group.raft();
                let result = match action {
                    Action::AddLearner(id) => {
                        let address = members
                            .get(&id)
                            .map(|m| m.address.clone())
                            .unwrap_or_default();
                        raft.add_learner(id, BasicNode::new(address), false)
                            .await
                            .map(|_| ())
                    }
                    Action::SetVoters(voters) => raft
                        .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
                        .await
                        .map(|_| ()),
                    Action::Remove(nodes) => raft
                        .change_membership(ChangeMembers::RemoveNodes(nodes), false)
                        .await
                        .map(|_| ()),
                };
                if let Err(e) = result {
                    tracing::warn!(group = %name, "membership change failed: {e}");
                }
                lock(&inner.changing).remove(&name);
            });
        }
    }
}
