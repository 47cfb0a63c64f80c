//! The state a running server's tasks share, and what they ask of it:
//! hosted collections, the catalog, publications, status.

use super::cluster_state::{ClusterCommand, ClusterState, Collection};
use super::data_dir;
use super::join::join_client;
use super::kinds::{Hosted, Kinds};
use super::options::{SYSTEM_GROUP, ServerError, ServerOptions};
use crate::Consistency;
use crate::error::GroupError;
use crate::group::{Group, GroupId, Redirect};
use crate::network::TcpNetwork;
use crate::node::Node;
use crate::types::{ClusterId, NodeId};
use openraft::BasicNode;
use statemesh_client::Member;
use statemesh_client::local::{LocalError, Publication, RegionWriter};
use statemesh_client::{Client, ClusterStatus, Refusal};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a running server's tasks share.
pub(crate) struct ServerInner {
    pub(super) id: NodeId,
    pub(super) address: String,
    pub(super) options: ServerOptions,
    pub(super) node: Node,
    pub(super) net: Arc<TcpNetwork>,
    pub(super) system: Group<ClusterState>,
    pub(super) kinds: Kinds,
    /// Hosted groups by name, `_cluster` included.
    pub(super) hosted: tokio::sync::Mutex<HashMap<String, Arc<dyn Hosted>>>,
    /// When each member last answered a ping.
    pub(super) seen: Mutex<HashMap<NodeId, Instant>>,
    /// Collections of the cluster this node failed to open, and why.
    pub(super) unhosted: Mutex<BTreeMap<String, String>>,
    /// Groups with a membership change in flight.
    pub(super) changing: Mutex<HashSet<String>>,
    /// Dropped groups whose files this node has deleted (or found gone)
    /// since it started; held while sweeping.
    pub(super) swept: tokio::sync::Mutex<HashSet<GroupId>>,
    /// The collections published to shared memory, by name.
    pub(super) publications: Mutex<HashMap<String, Publication>>,
    /// Regions reserved at start for collections in `publish` that this
    /// node does not host yet, by collection name.
    pub(super) regions: Mutex<HashMap<String, RegionWriter>>,
    /// The client [`Server::report`] asks the members through, made at
    /// the first report.
    pub(super) reporter: tokio::sync::Mutex<Option<Client>>,
    /// The data directory, locked while the node runs.
    pub(super) data: Mutex<Option<data_dir::DataDir>>,
    /// Whether the node has learnt it was removed from the cluster.
    pub(super) removed: tokio::sync::watch::Sender<bool>,
    /// Whether it is leaving of its own accord ([`Server::leave`]): its
    /// removal is then no news.
    pub(super) leaving: std::sync::atomic::AtomicBool,
    /// The node's mesh, once it has joined (after entering its cluster).
    /// Taken at shutdown, which ends its tasks.
    pub(super) mesh: Mutex<Option<Arc<NodeMesh>>>,
}

/// The node's place in the mesh (`super::mesh`), and the key it signs
/// passes with.
pub(crate) struct NodeMesh {
    pub(super) mesh: statemesh_mesh::Mesh,
    pub(super) issuer: statemesh_mesh::pass::PassIssuer,
}

/// Locks `m`; nothing panics while holding one of the server's locks.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ServerInner {
    /// Takes this node into its cluster: bootstraps a new one, joins the
    /// one `join` names, or resumes the one the data directory holds
    /// (after checking that `join`, if given, names that same cluster).
    pub(super) async fn enter(
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
    pub(super) fn note_removed(&self) {
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
    pub(super) async fn record(&self, me: Member) -> Result<(), ServerError> {
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
    pub(super) fn learn_addresses(&self) {
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
    pub(super) async fn reserve_regions(&self) -> Result<(), ServerError> {
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

    pub(super) fn reserve_region(&self, name: &str) -> Result<RegionWriter, LocalError> {
        let cluster = self.net.cluster_id().ok_or_else(|| {
            LocalError::Encode("the node has no cluster id yet to name the region by".into())
        })?;
        let region = statemesh_client::local::region_name(cluster, self.id, name);
        statemesh_client::local::reserve(&region, &self.options.local)
    }

    /// Every hosted group, copied out of the lock.
    pub(super) async fn all_hosted(&self) -> Vec<(String, Arc<dyn Hosted>)> {
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
