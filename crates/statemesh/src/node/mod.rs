//! A node: one process's membership in any number of groups.

mod options;

pub use options::{LogStorage, NodeOptions};

use crate::error::{GroupError, NodeError};
use crate::group::Recorder;
use crate::group::rpc::{Envelope, Hello, Reply, Request, encode};
use crate::group::{
    Contacts, Endpoint, Group, GroupId, GroupNetwork, Lease, LoadError, Proposer, Shared,
    SnapshotCloser, Store,
};
use crate::large::ValueStore;
use crate::network::{BoxFuture, Handler, Network};
use crate::types::{NodeId, TypeConfig};
use statemesh_cache::{FsStore, Location, Pool, Raw};
use statemesh_core::StateMachine;
use statemesh_wal::{MemoryStorage, RaftLog, Wal, WalOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Starts a group's Raft instance over `wal`, whichever storage it is on.
async fn start_raft<SM: StateMachine, S: statemesh_wal::Storage>(
    id: NodeId,
    config: Arc<openraft::Config>,
    network: GroupNetwork,
    wal: Wal<S>,
    store: Store<SM>,
) -> Result<crate::types::Raft, openraft::error::Fatal<NodeId>> {
    openraft::Raft::new(
        id,
        config,
        network,
        RaftLog::<TypeConfig, _>::new(wal),
        store,
    )
    .await
}

/// The openraft settings of a group named `name`: elections after 3 to 6
/// missed heartbeats, snapshots as the node's options say.
fn raft_config(name: &str, o: &NodeOptions) -> Result<Arc<openraft::Config>, GroupError> {
    let heartbeat = u64::try_from(o.heartbeat.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let config = openraft::Config {
        cluster_name: name.to_owned(),
        heartbeat_interval: heartbeat,
        election_timeout_min: heartbeat * 3,
        election_timeout_max: heartbeat * 6,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(o.snapshot_every),
        max_in_snapshot_log_to_keep: o.keep_after_snapshot,
        ..Default::default()
    };
    Ok(Arc::new(
        config
            .validate()
            .map_err(|e| GroupError::Raft(e.to_string()))?,
    ))
}

/// How a group's membership starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start<'a> {
    /// These voters; this node initializes the group if it is one of them,
    /// else joins as a learner through them.
    Voters(&'a [NodeId]),
    /// Neither: group `id` is initialized, or will be added to, by others.
    Resume(GroupId),
}

/// One process's place in the mesh: it hosts groups, each with its own log
/// and state under `dir`, and answers other nodes through the network.
pub struct Node {
    inner: Arc<NodeInner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("dir", &self.inner.dir)
            .finish()
    }
}

struct NodeInner {
    id: NodeId,
    dir: PathBuf,
    network: Arc<dyn Network>,
    options: NodeOptions,
    values: Option<ValueStore>,
    groups: Mutex<HashMap<GroupId, Arc<Endpoint>>>,
    shutdowns: Mutex<Vec<(GroupId, crate::types::Raft, SnapshotCloser)>>,
}

impl NodeInner {
    /// Where group `id` keeps its large values.
    fn values_location(&self, id: GroupId) -> Result<Location, GroupError> {
        Location::new(format!("group-{}", id.to_hex())).map_err(|e| GroupError::Io {
            path: self.dir.join("values"),
            source: std::io::Error::other(e),
        })
    }

    /// The directories group `id` keeps files in: its own, and its large
    /// values' (if the node keeps those on disk).
    fn group_dirs(&self, id: GroupId) -> Result<Vec<PathBuf>, GroupError> {
        let mut dirs = vec![self.group_dir(id)];
        if self.values.is_some() {
            dirs.push(FsStore::location_dir(
                &self.dir.join("values"),
                &self.values_location(id)?,
            ));
        }
        Ok(dirs)
    }

    fn groups(&self) -> MutexGuard<'_, HashMap<GroupId, Arc<Endpoint>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the other voters whether they know group `id` under another
    /// type: opening it here anyway would apply their log to the wrong
    /// state machine. A voter that does not answer is no objection (it
    /// may be down; Raft sorts out the rest).
    async fn check_voters_agree(
        &self,
        id: GroupId,
        name: &str,
        signature: &str,
        voters: &[NodeId],
    ) -> Result<(), GroupError> {
        for &peer in voters.iter().filter(|&&p| p != self.id) {
            let hello = encode(&Envelope {
                group: id,
                request: Request::Hello {
                    name: name.to_owned(),
                    signature: signature.to_owned(),
                },
            });
            if let Ok(reply) = self.network.call(self.id, peer, hello).await
                && let Ok(Reply::Hello(Hello::Mismatch(theirs))) =
                    statemesh_core::decode::from_bytes(&reply)
            {
                return Err(GroupError::Mismatch {
                    name: name.to_owned(),
                    peer,
                    ours: signature.to_owned(),
                    theirs,
                });
            }
        }
        Ok(())
    }

    /// The directory group `id` keeps its snapshot and log in.
    fn group_dir(&self, id: GroupId) -> PathBuf {
        self.dir.join("groups").join(id.to_hex())
    }

    /// Makes group `id`'s directory `dir` and opens its state from the
    /// snapshot there; returns the store and the state its handles read.
    fn open_store<SM: StateMachine>(
        &self,
        id: GroupId,
        dir: &Path,
        sm: SM,
        recorder: Option<Arc<dyn Recorder<SM>>>,
    ) -> Result<(Store<SM>, Arc<Shared<SM>>), GroupError> {
        std::fs::create_dir_all(dir).map_err(|source| GroupError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let snapshot_path = dir.join("snapshot");
        if self.options.log == LogStorage::Memory {
            // The state must not outlive the log it was built from.
            match std::fs::remove_file(&snapshot_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(GroupError::Io {
                        path: snapshot_path,
                        source: e,
                    });
                }
                _ => {}
            }
        }
        let location = self.values_location(id)?;
        let (store, shared) = Store::open(
            sm,
            snapshot_path.clone(),
            self.values.clone(),
            location,
            recorder,
        )
        .map_err(|e| match e {
            LoadError::Io(source) => GroupError::Io {
                path: snapshot_path.clone(),
                source,
            },
            LoadError::Corrupt(reason) => GroupError::CorruptSnapshot {
                path: snapshot_path.clone(),
                reason,
            },
        })?;
        Ok((store, shared))
    }

    /// Opens the group's log where the node's options keep logs (on disk
    /// under `dir`, or in memory) and starts Raft over it.
    async fn start_raft_on_log<SM: StateMachine>(
        &self,
        dir: &Path,
        config: Arc<openraft::Config>,
        network: GroupNetwork,
        store: Store<SM>,
    ) -> Result<crate::types::Raft, GroupError> {
        let o = &self.options;
        let options = WalOptions::new()
            .segment_size(o.segment_size)
            .first_segment_size(o.first_segment_size.min(o.segment_size));
        match o.log {
            LogStorage::Disk(sync) => {
                let wal = Wal::open(dir.join("log"), options.sync(sync))?;
                start_raft(self.id, config, network, wal, store).await
            }
            LogStorage::Memory => {
                // Small segments: each is allocated in full, in memory.
                let options = options
                    .segment_size(4 << 20)
                    .first_segment_size(o.first_segment_size.min(4 << 20));
                let wal = Wal::open_with(MemoryStorage::new(), options)?;
                start_raft(self.id, config, network, wal, store).await
            }
        }
        .map_err(|e| GroupError::Raft(e.to_string()))
    }

    /// Makes this node a member of a group it opened with `voters`: a
    /// voter initializes the group (if no log exists yet), anyone else
    /// joins as a learner through them unless it already belongs.
    async fn enter_membership<SM: StateMachine>(
        &self,
        group: &Group<SM>,
        raft: &crate::types::Raft,
        voters: &[NodeId],
    ) -> Result<(), GroupError> {
        if voters.contains(&self.id) {
            let initialized = raft
                .is_initialized()
                .await
                .map_err(|e| GroupError::Raft(e.to_string()))?;
            if !initialized {
                let members: BTreeMap<NodeId, openraft::BasicNode> = voters
                    .iter()
                    .map(|&v| (v, openraft::BasicNode::default()))
                    .collect();
                // Every voter initializes with the same membership; openraft
                // accepts that, and refuses once a log exists.
                if let Err(e) = raft.initialize(members).await {
                    tracing::debug!(group = %group.id(), "initialize: {e}");
                }
            }
        } else if raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&self.id)
            .is_none()
        {
            group
                .join_as_learner(voters)
                .await
                .map_err(|e| GroupError::Raft(format!("joining as a learner: {e}")))?;
        }
        Ok(())
    }
}

/// Receives requests for the node's groups.
struct NodeHandler(std::sync::Weak<NodeInner>);

impl Handler for NodeHandler {
    fn handle(&self, _from: NodeId, request: Vec<u8>) -> BoxFuture<Vec<u8>> {
        let node = self.0.upgrade();
        Box::pin(async move {
            let Some(node) = node else {
                return encode(&Reply::NoSuchGroup);
            };
            let envelope: Envelope = match statemesh_core::decode::from_bytes(&request) {
                Ok(e) => e,
                Err(e) => return encode(&Reply::BadRequest(e.to_string())),
            };
            let reply = if let Request::Hello { name, signature } = envelope.request {
                // Answered by whichever group has that name, whatever its id.
                let endpoints: Vec<_> = node.groups().values().cloned().collect();
                let mut hello = Reply::Hello(Hello::Unknown);
                for e in endpoints {
                    if e.name == name {
                        hello = e
                            .handle(Request::Hello {
                                name: name.clone(),
                                signature: signature.clone(),
                            })
                            .await;
                    }
                }
                hello
            } else {
                let endpoint = node.groups().get(&envelope.group).cloned();
                match endpoint {
                    Some(e) => e.handle(envelope.request).await,
                    None => Reply::NoSuchGroup,
                }
            };
            encode(&reply)
        })
    }
}

impl Node {
    /// Starts node `id`, keeping its groups under `dir` and answering
    /// requests that reach it through `network`.
    ///
    /// # Errors
    ///
    /// [`NodeError::Io`] if `dir` cannot be created;
    /// [`NodeError::Values`] if the cache of large values cannot be opened
    /// (another process has this directory open, say).
    pub fn open(
        id: NodeId,
        dir: impl AsRef<Path>,
        network: Arc<dyn Network>,
        options: NodeOptions,
    ) -> Result<Self, NodeError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| NodeError::Io {
            path: dir.clone(),
            source,
        })?;
        let values = match options.large_values {
            Some(o) => {
                let store =
                    FsStore::open(dir.join("values")).map_err(|e| NodeError::Values(e.into()))?;
                let pool = Pool::new(store, Raw, o.memory_budget, Vec::len)?;
                Some(ValueStore {
                    pool,
                    threshold: o.threshold,
                })
            }
            None => None,
        };
        let inner = Arc::new(NodeInner {
            id,
            dir,
            network: Arc::clone(&network),
            options,
            values,
            groups: Mutex::new(HashMap::new()),
            shutdowns: Mutex::new(Vec::new()),
        });
        network.serve(id, Arc::new(NodeHandler(Arc::downgrade(&inner))));
        Ok(Self { inner })
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Memory use and disk traffic of the node's cache of
    /// [`Large`](crate::Large) values; `None` if it has none.
    #[must_use]
    pub fn large_values_stats(&self) -> Option<statemesh_cache::PoolStats> {
        self.inner.values.as_ref().map(|v| v.pool.stats())
    }

    /// Opens group `name` with `sm` as its state machine. If this node is
    /// one of `voters` it is a voter (and, on first start, the group is
    /// initialized with exactly these voters); otherwise it joins as a
    /// learner, which receives every change but never leads and never
    /// counts toward a quorum.
    ///
    /// # Errors
    ///
    /// [`GroupError::Mismatch`] if a voter hosts a group of this name with
    /// another state machine signature; storage errors.
    pub async fn open_group<SM: StateMachine>(
        &self,
        name: &str,
        sm: SM,
        voters: &[NodeId],
    ) -> Result<Group<SM>, GroupError> {
        self.open_group_as(name, sm, Start::Voters(voters), None)
            .await
    }

    pub(crate) async fn open_group_as<SM: StateMachine>(
        &self,
        name: &str,
        sm: SM,
        start: Start<'_>,
        recorder: Option<Arc<dyn Recorder<SM>>>,
    ) -> Result<Group<SM>, GroupError> {
        let node = &self.inner;
        let signature = sm.signature();
        let (voters, id) = match start {
            Start::Voters(v) => (v, GroupId::new(name, &signature)),
            Start::Resume(id) => (&[][..], id),
        };
        if node.groups().values().any(|e| e.name == name) {
            return Err(GroupError::AlreadyOpen(name.to_owned()));
        }
        node.check_voters_agree(id, name, &signature, voters)
            .await?;
        let dir = node.group_dir(id);
        let (store, shared) = node.open_store(id, &dir, sm, recorder)?;
        let closer = store.closer();
        let config = raft_config(name, &node.options)?;
        let contacts = Arc::new(Contacts::default());
        let network = GroupNetwork {
            group: id,
            from: node.id,
            network: Arc::clone(&node.network),
            contacts: Arc::clone(&contacts),
        };
        let lease_length = Duration::from_millis(config.election_timeout_max);
        let raft = node.start_raft_on_log(&dir, config, network, store).await?;
        let proposer = Proposer::start(raft.clone());
        let lease = Arc::new(Lease {
            node: node.id,
            raft: raft.clone(),
            contacts,
            length: lease_length,
        });
        node.groups().insert(
            id,
            Arc::new(Endpoint {
                name: name.to_owned(),
                signature,
                raft: raft.clone(),
                proposer: Arc::clone(&proposer),
                lease: Arc::clone(&lease),
            }),
        );
        node.shutdowns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, raft.clone(), closer));
        let group = Group::new(
            name.to_owned(),
            id,
            proposer,
            shared,
            Arc::clone(&node.network),
            lease,
        );
        if !matches!(start, Start::Resume(_)) {
            // On resume, membership is someone else's business (the
            // server's policy).
            node.enter_membership(&group, &raft, voters).await?;
        }
        Ok(group)
    }

    /// Stops every group and stops answering the network. The groups'
    /// handles fail with `Shutdown` afterwards; the node's directory is
    /// free for another node once this returns.
    pub async fn shutdown(self) {
        self.close().await;
    }

    /// [`Node::shutdown`] for a node shared with others: the directory is
    /// free once the last reference is dropped.
    pub(crate) async fn close(&self) {
        self.inner.network.stop(self.inner.id);
        let rafts = std::mem::take(
            &mut *self
                .inner
                .shutdowns
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (_, raft, snapshots) in rafts {
            let _ = raft.shutdown().await;
            snapshots.close();
        }
        self.inner.groups().clear();
    }

    /// Stops group `id` (if open here) and deletes everything it kept: its
    /// directory (log, snapshot) and its large values. For a group that
    /// is gone for good: the cluster dropped its collection.
    ///
    /// # Errors
    ///
    /// [`GroupError::Io`] naming what could not be deleted.
    pub(crate) async fn remove_group(&self, id: GroupId) -> Result<(), GroupError> {
        let node = &self.inner;
        node.groups().remove(&id);
        let running = {
            let mut all = node.shutdowns.lock().unwrap_or_else(|e| e.into_inner());
            all.iter()
                .position(|(g, ..)| *g == id)
                .map(|i| all.swap_remove(i))
        };
        if let Some((_, raft, snapshots)) = running {
            let _ = raft.shutdown().await;
            snapshots.close();
        }
        if let Some(values) = &node.values {
            let location = node.values_location(id)?;
            let io = |e: statemesh_cache::CacheError| GroupError::Io {
                path: node.dir.join("values"),
                source: std::io::Error::other(e),
            };
            for key in values.pool.list(&location).map_err(io)?.keys {
                values.pool.delete(&location, key).map_err(io)?;
            }
        }
        for dir in node.group_dirs(id)? {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(GroupError::Io {
                        path: dir,
                        source: e,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The directories group `id` keeps its files in (log, snapshot,
    /// large values).
    pub(crate) fn group_dirs(&self, id: GroupId) -> Vec<PathBuf> {
        self.inner.group_dirs(id).unwrap_or_default()
    }
}

/// The bytes of the files under `dir` (0 if it does not exist). Blocks on
/// the file system.
pub(crate) fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
