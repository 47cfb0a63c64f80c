//! A node: one process's membership in any number of groups.

use crate::error::{GroupError, NodeError};
use crate::group::Recorder;
use crate::group::rpc::{Envelope, Hello, Reply, Request, encode};
use crate::group::{
    Contacts, Endpoint, Group, GroupId, GroupNetwork, Lease, LoadError, Proposer, SnapshotCloser,
    Store,
};
use crate::large::{LargeValues, ValueStore};
use crate::network::{BoxFuture, Handler, Network};
use crate::types::{NodeId, TypeConfig};
use statemesh_cache::{FsStore, Location, Pool, Raw};
use statemesh_core::StateMachine;
use statemesh_wal::{MemoryStorage, RaftLog, SyncPolicy, Wal, WalOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Raft timing and snapshot settings of the groups a node opens.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Heartbeat period (default 50 ms; elections start after 3 to 6
    /// missed heartbeats).
    pub heartbeat: Duration,
    /// Take a snapshot after this many applied entries (default 10,000).
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, for lagging followers
    /// (default 1,000).
    pub keep_after_snapshot: u64,
    /// Where the groups' Raft logs live (default: on disk, synced before
    /// every acknowledgement).
    pub log: LogStorage,
    /// Where [`Large`](crate::Large) values past a threshold go (default:
    /// 64 KiB threshold, 256 MiB in memory, the rest on disk under the
    /// node's directory). `None` keeps every value in memory.
    pub large_values: Option<LargeValues>,
    /// Size of each group's full log segments (default 8 MiB). A log
    /// zero-fills its active segment and one spare up front; a group's log
    /// starts with segments of [`first_segment_size`](Self::first_segment_size)
    /// and doubles them up to this size, so a collection costs disk in
    /// proportion to what it holds. (The log's own default of 64 MiB, from
    /// the first entry, was 128 MiB per collection and dominated the CPU
    /// of a node whose collections had just been created.)
    pub segment_size: u64,
    /// Size of a group's first log segment (default 128 KiB; at most
    /// `segment_size`): with its spare and the log's metadata, the disk an
    /// empty collection costs (under 1 MiB).
    pub first_segment_size: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(50),
            snapshot_every: 10_000,
            keep_after_snapshot: 1_000,
            log: LogStorage::Disk(SyncPolicy::Always),
            large_values: Some(LargeValues::default()),
            segment_size: 8 << 20,
            first_segment_size: 128 << 10,
        }
    }
}

/// Where a node keeps its groups' Raft logs (entries and votes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStorage {
    /// statemesh-wal segments under the group's directory, synced as the
    /// policy says. Only [`SyncPolicy::Always`] keeps Raft's promise that an
    /// acknowledged write survives the power failure of every node.
    Disk(SyncPolicy),
    /// In memory, with the same log code minus the disk: for tests, and to
    /// measure what the disk costs. Nothing survives the node, and a group
    /// opened this way starts empty (an old snapshot is discarded). A node
    /// that forgot its votes must not rejoin under the same id.
    Memory,
}

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
        let mut dirs = vec![self.dir.join("groups").join(id.to_hex())];
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
        for &peer in voters.iter().filter(|&&p| p != node.id) {
            let hello = encode(&Envelope {
                group: id,
                request: Request::Hello {
                    name: name.to_owned(),
                    signature: signature.clone(),
                },
            });
            if let Ok(reply) = node.network.call(node.id, peer, hello).await
                && let Ok(Reply::Hello(Hello::Mismatch(theirs))) =
                    statemesh_core::decode::from_bytes(&reply)
            {
                return Err(GroupError::Mismatch {
                    name: name.to_owned(),
                    peer,
                    ours: signature,
                    theirs,
                });
            }
        }
        let dir = node.dir.join("groups").join(id.to_hex());
        std::fs::create_dir_all(&dir).map_err(|source| GroupError::Io {
            path: dir.clone(),
            source,
        })?;
        let snapshot_path = dir.join("snapshot");
        if node.options.log == LogStorage::Memory {
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
        let location = node.values_location(id)?;
        let (store, shared) = Store::open(
            sm,
            snapshot_path.clone(),
            node.values.clone(),
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
        let closer = store.closer();
        let o = &node.options;
        let options = WalOptions::new()
            .segment_size(o.segment_size)
            .first_segment_size(o.first_segment_size.min(o.segment_size));
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
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| GroupError::Raft(e.to_string()))?,
        );
        let contacts = Arc::new(Contacts::default());
        let network = GroupNetwork {
            group: id,
            from: node.id,
            network: Arc::clone(&node.network),
            contacts: Arc::clone(&contacts),
        };
        let lease_length = Duration::from_millis(config.election_timeout_max);
        let raft = match node.options.log {
            LogStorage::Disk(sync) => {
                let wal = Wal::open(dir.join("log"), options.sync(sync))?;
                start_raft(node.id, config, network, wal, store).await
            }
            LogStorage::Memory => {
                // Small segments: each is allocated in full, in memory.
                let options = options
                    .segment_size(4 << 20)
                    .first_segment_size(o.first_segment_size.min(4 << 20));
                let wal = Wal::open_with(MemoryStorage::new(), options)?;
                start_raft(node.id, config, network, wal, store).await
            }
        }
        .map_err(|e| GroupError::Raft(e.to_string()))?;
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
        if matches!(start, Start::Resume(_)) {
            // Membership is someone else's business (the server's policy).
        } else if voters.contains(&node.id) {
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
                    tracing::debug!(group = %id, "initialize: {e}");
                }
            }
        } else if raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&node.id)
            .is_none()
        {
            group
                .join_as_learner(voters)
                .await
                .map_err(|e| GroupError::Raft(format!("joining as a learner: {e}")))?;
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
