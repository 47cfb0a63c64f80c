//! A group: one Raft instance, its log and its state machine.

mod history;
mod id;
mod proposer;
mod raft_network;
pub(crate) mod rpc;
mod snapshot_file;
mod snapshot_stream;
mod store;
mod version;

pub use history::HistoryLimits;
pub use id::{GroupId, Identity};
pub use snapshot_stream::SnapshotStream;

use crate::error::{ExecuteError, QueryError};
use crate::network::{Network, NetworkError};
use crate::state_machine::StateMachine;
use crate::types::{NodeId, Raft};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use rpc::{Envelope, Refused, Reply, Request, encode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(crate) use history::{History, Item, Recorder, Recording, Since, merge as merge_history};
pub(crate) use proposer::Proposer;
pub(crate) use raft_network::GroupNetwork;
pub(crate) use store::{LoadError, Shared, SnapshotCloser, Store};
pub(crate) use version::{VersionReceiver, VersionSender};

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

/// A handle to a group hosted on this node. Cheap to clone.
pub struct Group<SM: StateMachine> {
    inner: Arc<Inner<SM>>,
}

impl<SM: StateMachine> Clone for Group<SM> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<SM: StateMachine> std::fmt::Debug for Group<SM> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("name", &self.inner.name)
            .field("id", &self.inner.id)
            .field("node", &self.inner.node)
            .field("version", &self.version())
            .finish()
    }
}

struct Inner<SM> {
    name: String,
    id: GroupId,
    node: NodeId,
    raft: Raft,
    proposer: Arc<Proposer>,
    shared: Arc<Shared<SM>>,
    network: Arc<dyn Network>,
    timeout: Duration,
}

/// How long `execute` and `query` keep looking for a leader.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl<SM: StateMachine> Group<SM> {
    pub(crate) fn new(
        name: String,
        id: GroupId,
        node: NodeId,
        raft: Raft,
        proposer: Arc<Proposer>,
        shared: Arc<Shared<SM>>,
        network: Arc<dyn Network>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                id,
                node,
                raft,
                proposer,
                shared,
                network,
                timeout: DEFAULT_TIMEOUT,
            }),
        }
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The state and version this group's handles read.
    pub(crate) fn shared(&self) -> Arc<Shared<SM>> {
        Arc::clone(&self.inner.shared)
    }

    /// Runs `read` on the state and returns the version it saw, without
    /// waiting (for remote reads, which report the version they read at).
    pub(crate) fn read_versioned<R>(&self, read: impl FnOnce(&SM) -> R) -> (R, u64) {
        // The store publishes the version under the state's lock, so the
        // two agree.
        self.read_local(|sm| (read(sm), self.version()))
    }

    /// The group's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The group's id.
    #[must_use]
    pub fn id(&self) -> GroupId {
        self.inner.id
    }

    /// The log index of the last change this replica applied.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.inner.shared.version.get()
    }

    /// The leader this replica knows of.
    #[must_use]
    pub fn leader(&self) -> Option<NodeId> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// Where this replica stands: role, term, leader, log and applied
    /// indices, snapshot, membership.
    #[must_use]
    pub fn status(&self) -> GroupStatus {
        let m = self.inner.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        GroupStatus {
            node: self.inner.node,
            role: match m.state {
                openraft::ServerState::Leader => Role::Leader,
                openraft::ServerState::Candidate => Role::Candidate,
                openraft::ServerState::Learner => Role::Learner,
                openraft::ServerState::Follower | openraft::ServerState::Shutdown => Role::Follower,
            },
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied: self.version(),
            snapshot: m.snapshot.map(|l| l.index),
            purged: m.purged.map(|l| l.index),
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
        }
    }

    /// Futures for moments in the group's life.
    #[must_use]
    pub fn when(&self) -> When {
        When {
            versions: Versions::new(self.inner.shared.version.subscribe()),
            metrics: self.inner.raft.metrics(),
        }
    }

    /// Replicates `command`, waits until it is committed and applied on the
    /// leader, and returns the state machine's response with the version
    /// (log index) it was applied at. On a follower the command is
    /// forwarded to the leader. The leader proposes commands that arrive
    /// together as one entry, applied in order: they share its version.
    ///
    /// # Errors
    ///
    /// [`ExecuteError::NoLeader`] if no leader took it within the
    /// timeout (it was not applied); [`ExecuteError::Indeterminate`] if a
    /// leader took it but the answer was lost.
    pub async fn execute(&self, command: SM::Command) -> Result<(SM::Response, u64), ExecuteError> {
        let bytes =
            postcard::to_allocvec(&command).map_err(|e| ExecuteError::Encode(e.to_string()))?;
        let (reply, index) = self.execute_encoded(bytes).await?;
        decode_reply::<SM>(&reply).map(|v| (v, index))
    }

    /// [`Group::execute`] of an encoded command; returns the encoded
    /// `Result<SM::Response, String>` (the error: the command could not be
    /// decoded on the leader) without decoding it, for a remote client.
    pub(crate) async fn execute_encoded(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(Vec<u8>, u64), ExecuteError> {
        let deadline = Instant::now() + self.inner.timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            // Proposed here when this node leads or knows of no leader (the
            // proposer then names the leader); else sent to the leader.
            let leader = match self.leader() {
                Some(l) if l != self.inner.node => Some(l),
                _ => match self.inner.proposer.propose(bytes.clone()).await {
                    Ok(done) => return Ok(done),
                    Err(Refused::NotLeader(l)) => l,
                    Err(Refused::Failed(e)) => return Err(ExecuteError::Indeterminate(e)),
                    Err(Refused::Shutdown) => return Err(ExecuteError::Shutdown),
                },
            };
            if let Some(leader) = leader.filter(|&l| l != self.inner.node) {
                match self.call(leader, Request::Execute(bytes.clone())).await {
                    Ok(Reply::Executed(Ok(done))) => return Ok(done),
                    Ok(Reply::Executed(Err(Refused::Failed(e)))) => {
                        return Err(ExecuteError::Indeterminate(e));
                    }
                    Ok(Reply::Executed(Err(Refused::Shutdown))) => {
                        return Err(ExecuteError::Indeterminate(format!(
                            "leader {leader} shut down"
                        )));
                    }
                    Err(NetworkError::ReplyLost(n)) => {
                        return Err(ExecuteError::Indeterminate(format!(
                            "the reply from leader {n} was lost"
                        )));
                    }
                    // Not delivered, or refused before it was appended: safe
                    // to try again.
                    _ => {}
                }
            }
            if Instant::now() + pause > deadline {
                return Err(ExecuteError::NoLeader(self.inner.timeout));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Runs `read` on this replica's state, after making sure it is as
    /// fresh as `consistency` asks.
    ///
    /// # Errors
    ///
    /// [`QueryError::NoLeader`] if a linearizable read found no leader that
    /// could confirm its leadership within the timeout.
    pub async fn query<R>(
        &self,
        consistency: Consistency,
        read: impl FnOnce(&SM) -> R,
    ) -> Result<R, QueryError> {
        if consistency == Consistency::Linearizable {
            let index = self.read_index().await?;
            let mut version = self.inner.shared.version.subscribe();
            version
                .wait_for(|v| v >= index)
                .await
                .map_err(|_| QueryError::Shutdown)?;
        }
        Ok(self.read_local(read))
    }

    /// Runs `read` on this replica's state now, without waiting (the
    /// same as [`Consistency::Local`]).
    pub fn read_local<R>(&self, read: impl FnOnce(&SM) -> R) -> R {
        let sm = self
            .inner
            .shared
            .sm
            .read()
            .unwrap_or_else(|e| e.into_inner());
        read(&sm)
    }

    async fn read_index(&self) -> Result<u64, QueryError> {
        let deadline = Instant::now() + self.inner.timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            let leader = match self.inner.raft.get_read_log_id().await {
                Ok((read, _)) => return Ok(read.map_or(0, |l| l.index)),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => f.leader_id,
                // No quorum confirmed the leadership: try again.
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => None,
                Err(RaftError::Fatal(_)) => return Err(QueryError::Shutdown),
            };
            if let Some(leader) = leader.filter(|&l| l != self.inner.node)
                && let Ok(Reply::ReadIndex(Ok(index))) = self.call(leader, Request::ReadIndex).await
            {
                return Ok(index);
            }
            if Instant::now() + pause > deadline {
                return Err(QueryError::NoLeader(self.inner.timeout));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn call(&self, to: NodeId, request: Request) -> Result<Reply, NetworkError> {
        let bytes = encode(&Envelope {
            group: self.inner.id,
            request,
        });
        let reply = self.inner.network.call(self.inner.node, to, bytes).await?;
        postcard::from_bytes(&reply).map_err(|_| NetworkError::ReplyLost(to))
    }

    /// Adds this node to the group as a learner, asking the voters until the
    /// leader agrees.
    pub(crate) async fn join_as_learner(&self, voters: &[NodeId]) -> Result<(), ExecuteError> {
        let deadline = Instant::now() + self.inner.timeout;
        loop {
            for &v in voters {
                let mut target = v;
                for _ in 0..2 {
                    match self
                        .call(target, Request::AddLearner(self.inner.node))
                        .await
                    {
                        Ok(Reply::LearnerAdded(Ok(()))) => return Ok(()),
                        Ok(Reply::LearnerAdded(Err(Refused::NotLeader(Some(l))))) => target = l,
                        _ => break,
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(ExecuteError::NoLeader(self.inner.timeout));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn decode_reply<SM: StateMachine>(bytes: &[u8]) -> Result<SM::Response, ExecuteError> {
    match postcard::from_bytes::<Result<SM::Response, String>>(bytes) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ExecuteError::Decode(e)),
        Err(e) => Err(ExecuteError::Decode(e.to_string())),
    }
}

/// What a replica does in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// It leads: writes go through it.
    Leader,
    /// It is asking for votes.
    Candidate,
    /// It votes and follows.
    Follower,
    /// It follows without voting.
    Learner,
}

/// A replica's view of its group; see [`Group::status`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupStatus {
    /// This replica's node.
    pub node: NodeId,
    /// What this replica does.
    pub role: Role,
    /// The Raft term it knows of.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// The index of the last entry in its log (0: empty).
    pub last_log_index: u64,
    /// The index of the last change it applied (its version).
    pub applied: u64,
    /// The index its latest snapshot covers, if it has one (built here or
    /// installed from the leader).
    pub snapshot: Option<u64>,
    /// The index up to which its log has been purged, if any.
    pub purged: Option<u64>,
    /// The voters of the group.
    pub voters: std::collections::BTreeSet<NodeId>,
    /// The learners of the group.
    pub learners: std::collections::BTreeSet<NodeId>,
}

/// Futures for a copy's versions: a replica's (inside [`When`]) or a
/// mirror's.
#[derive(Debug, Clone)]
pub struct Versions {
    version: VersionReceiver,
}

impl Versions {
    pub(crate) fn new(version: VersionReceiver) -> Self {
        Self { version }
    }

    /// Resolves once this copy has applied `version`: a local read then
    /// sees every write up to it.
    pub async fn reaches(&mut self, version: u64) {
        let _ = self.version.wait_for(|v| v >= version).await;
    }

    /// Resolves once this copy has applied `version` (`true`) or will
    /// apply nothing more (`false`: it was closed).
    pub(crate) async fn reached(&mut self, version: u64) -> bool {
        self.version.wait_for(|v| v >= version).await.is_ok()
    }

    /// Resolves at the next change this copy applies, with the version
    /// the copy has then; `None` once it will apply nothing more (it was
    /// closed), so that a loop over it ends.
    pub async fn updated(&mut self) -> Option<u64> {
        self.version.borrow_and_update();
        self.version.changed().await.ok()?;
        Some(self.version.borrow_and_update())
    }
}

/// Futures for moments in a group's life; see [`Group::when`]. The
/// version futures are [`Versions`]', which it dereferences to.
#[derive(Debug, Clone)]
pub struct When {
    versions: Versions,
    metrics: watch::Receiver<openraft::RaftMetrics<NodeId, openraft::BasicNode>>,
}

impl std::ops::Deref for When {
    type Target = Versions;
    fn deref(&self) -> &Versions {
        &self.versions
    }
}

impl std::ops::DerefMut for When {
    fn deref_mut(&mut self) -> &mut Versions {
        &mut self.versions
    }
}

impl When {
    /// Resolves once the group has a leader this replica knows of.
    pub async fn online(&mut self) {
        let _ = self.metrics.wait_for(|m| m.current_leader.is_some()).await;
    }

    /// Resolves once this replica knows of no leader.
    pub async fn offline(&mut self) {
        let _ = self.metrics.wait_for(|m| m.current_leader.is_none()).await;
    }

    /// Resolves when the leader this replica knows of changes.
    pub async fn leader_changed(&mut self) {
        let now = self.metrics.borrow().current_leader;
        let _ = self.metrics.wait_for(|m| m.current_leader != now).await;
    }
}

/// The part of a group that answers other nodes: it needs only the Raft
/// instance, so one type serves groups of every state machine.
pub(crate) struct Endpoint {
    pub(crate) name: String,
    pub(crate) signature: String,
    pub(crate) raft: Raft,
    pub(crate) proposer: Arc<Proposer>,
}

impl Endpoint {
    pub(crate) async fn handle(&self, request: Request) -> Reply {
        match request {
            Request::Hello { name, signature } => Reply::Hello(if name != self.name {
                rpc::Hello::Unknown
            } else if signature == self.signature {
                rpc::Hello::Same
            } else {
                rpc::Hello::Mismatch(self.signature.clone())
            }),
            Request::AppendEntries(r) => Reply::AppendEntries(self.raft.append_entries(r).await),
            Request::Vote(r) => Reply::Vote(self.raft.vote(r).await),
            Request::InstallSnapshot(r) => {
                Reply::InstallSnapshot(self.raft.install_snapshot(r).await)
            }
            Request::Execute(bytes) => Reply::Executed(self.proposer.propose(bytes).await),
            Request::ReadIndex => Reply::ReadIndex(match self.raft.get_read_log_id().await {
                Ok((read, _)) => Ok(read.map_or(0, |l| l.index)),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    Err(Refused::NotLeader(f.leader_id))
                }
                Err(e) => Err(Refused::Failed(e.to_string())),
            }),
            Request::AddLearner(node) => Reply::LearnerAdded(
                match self
                    .raft
                    .add_learner(node, openraft::BasicNode::default(), false)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                        Err(Refused::NotLeader(f.leader_id))
                    }
                    Err(e) => Err(Refused::Failed(e.to_string())),
                },
            ),
        }
    }
}
