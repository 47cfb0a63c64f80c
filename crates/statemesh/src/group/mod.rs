//! A group: one Raft instance, its log and its state machine.

/// What the crate's fuzzing hooks reach inside a group (see
/// `crate::fuzzing`).
pub(crate) mod fuzzing;
mod history;
mod lease;
mod proposer;
mod raft_network;
pub(crate) mod rpc;
mod sessions;
mod snapshot_file;
mod snapshot_stream;
mod store;

#[cfg(test)]
mod exactly_once_tests;

pub use history::HistoryLimits;
pub use snapshot_stream::SnapshotStream;
pub(crate) use statemesh_client::protocol::millis;
pub use statemesh_client::{Consistency, GroupStatus, Role, Versions};
pub use statemesh_core::{GroupId, Identity};

use crate::error::{ExecuteError, QueryError};
use crate::network::{Network, NetworkError};
use crate::types::{NodeId, Raft};
use lease::Standing;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use rpc::{Envelope, Refused, Reply, Request, Stamped, encode};
use statemesh_core::StateMachine;
use statemesh_core::session::Sequencer;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(crate) use history::{History, Item, Recorder, Recording, Since, merge as merge_history};
pub(crate) use lease::{Contacts, Lease};
pub(crate) use proposer::Proposer;
pub(crate) use raft_network::GroupNetwork;
pub(crate) use statemesh_client::Shared;
pub(crate) use statemesh_client::VersionSender;
pub(crate) use store::{LoadError, SnapshotCloser, Store};

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
    lease: Arc<Lease>,
    /// This handle's writer session: its commands, retried, apply once.
    sequencer: Sequencer,
    timeout: Duration,
}

/// How long one voter may take to answer a request to add a learner.
const LEARNER_TRY: Duration = Duration::from_secs(1);

/// How long `execute` and `query` keep looking for a leader.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the caller can take its request to another member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redirect {
    /// Yes (a client): a node whose leadership lapsed refuses at once.
    Yes,
    /// No (a handle on this node): wait for a leader until the deadline.
    No,
}

/// How a request forwarded to the leader ended.
// One lives on the stack for the length of a match: boxing the reply would
// cost an allocation per forwarded request for nothing.
#[allow(clippy::large_enum_variant)]
enum Forwarded {
    Reply(Reply),
    /// Not delivered.
    NotSent,
    /// Delivered, no answer (lost, or the deadline passed).
    Lost,
    /// This replica learned of another leader meanwhile.
    LeaderChanged,
}

/// Time left before `deadline`, if any.
fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

/// The pause between tries: 5 ms, doubling to 100 ms, never past the
/// deadline.
struct Pause(Duration);

impl Pause {
    fn new() -> Self {
        Self(Duration::from_millis(5))
    }

    async fn wait(&mut self, deadline: Instant) {
        tokio::time::sleep_until((Instant::now() + self.0).min(deadline).into()).await;
        self.0 = (self.0 * 2).min(Duration::from_millis(100));
    }
}

impl<SM: StateMachine> Group<SM> {
    /// A handle on the group whose Raft instance `lease` watches.
    pub(crate) fn new(
        name: String,
        id: GroupId,
        proposer: Arc<Proposer>,
        shared: Arc<Shared<SM>>,
        network: Arc<dyn Network>,
        lease: Arc<Lease>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                id,
                node: lease.node,
                raft: lease.raft.clone(),
                proposer,
                shared,
                network,
                lease,
                sequencer: Sequencer::new(),
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
            no_quorum: match self.inner.lease.standing() {
                Standing::Lost { reachable, voters } => Some((reachable, voters)),
                Standing::Leads | Standing::Follows(_) => None,
            },
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
    /// [`ExecuteError::NoQuorum`] if fewer than a majority of voters
    /// answered this node until the timeout (10 s); otherwise
    /// [`ExecuteError::Timeout`], which says whether a leader had taken
    /// it. Within the timeout, a command whose answer was lost, or whose
    /// leader lost office, is sent again (to the new leader), and applied
    /// once: it carries this handle's session stamp.
    pub async fn execute(&self, command: SM::Command) -> Result<(SM::Response, u64), ExecuteError> {
        let bytes =
            postcard::to_allocvec(&command).map_err(|e| ExecuteError::Encode(e.to_string()))?;
        let (reply, index) = self.execute_encoded(bytes).await?;
        decode_reply::<SM>(&reply).map(|v| (v, index))
    }

    /// [`Group::execute`] of an encoded command; returns the encoded
    /// `Result<SM::Response, String>` (the error: the command could not be
    /// decoded on the leader) without decoding it.
    pub(crate) async fn execute_encoded(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(Vec<u8>, u64), ExecuteError> {
        let ticket = self.inner.sequencer.ticket();
        let command = Stamped {
            stamp: ticket.stamp(),
            command: bytes,
        };
        let deadline = Instant::now() + self.inner.timeout;
        self.execute_stamped(command, deadline, Redirect::No).await
    }

    /// Runs a stamped command through the leader before `deadline`. With
    /// [`Redirect::Yes`] (a client that can try another member) a node
    /// whose leadership lapsed says so at once instead of waiting.
    pub(crate) async fn execute_stamped(
        &self,
        command: Stamped,
        deadline: Instant,
        redirect: Redirect,
    ) -> Result<(Vec<u8>, u64), ExecuteError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        // Whether a leader may have taken it: then it may yet be applied
        // (once: every retry carries the same stamp).
        let mut maybe_applied = false;
        let mut pause = Pause::new();
        loop {
            let Some(remaining) = remaining(deadline) else {
                return Err(self.execute_gave_up(timeout, maybe_applied));
            };
            match self.inner.lease.standing() {
                Standing::Follows(Some(leader)) => {
                    let request = Request::Execute {
                        command: command.clone(),
                        timeout_ms: millis(remaining),
                    };
                    match self.forward(leader, request, deadline).await {
                        Forwarded::Reply(Reply::Executed(Ok(done))) => return Ok(done),
                        Forwarded::Reply(Reply::Executed(Err(refused))) => {
                            match self.after_refusal(refused, &mut maybe_applied) {
                                Some(e) => return Err(e),
                                None => pause.wait(deadline).await,
                            }
                        }
                        // The leader changed under it: straight to the new one.
                        Forwarded::LeaderChanged => maybe_applied = true,
                        Forwarded::Lost => {
                            maybe_applied = true;
                            pause.wait(deadline).await;
                        }
                        Forwarded::Reply(_) | Forwarded::NotSent => pause.wait(deadline).await,
                    }
                }
                // Taken here before the lease lapsed: it may yet commit, so
                // the caller must not hear "nothing was written".
                Standing::Lost { .. } if redirect == Redirect::Yes && maybe_applied => {
                    return Err(ExecuteError::Timeout {
                        after: timeout.saturating_sub(remaining),
                        maybe_applied,
                    });
                }
                Standing::Lost { reachable, voters } if redirect == Redirect::Yes => {
                    return Err(ExecuteError::NoQuorum { reachable, voters });
                }
                Standing::Lost { .. } => pause.wait(deadline).await,
                // Leading, or no leader known: proposed here (openraft then
                // names the leader, or says there is none yet).
                Standing::Leads | Standing::Follows(None) => {
                    let proposal = self.inner.proposer.propose(command.clone());
                    // A leader cut off while the command waits to commit
                    // stops waiting when its lease lapses, not at the
                    // deadline: the command goes elsewhere under its stamp.
                    let waited = tokio::select! {
                        r = tokio::time::timeout(remaining, proposal) => r,
                        () = self.inner.lease.lapsed() => {
                            maybe_applied = true;
                            continue;
                        }
                    };
                    match waited {
                        Ok(Ok(done)) => return Ok(done),
                        Ok(Err(refused)) => match self.after_refusal(refused, &mut maybe_applied) {
                            Some(e) => return Err(e),
                            None => pause.wait(deadline).await,
                        },
                        Err(_) => maybe_applied = true,
                    }
                }
            }
        }
    }

    /// What a refusal means for a command: a final error, or `None` to try
    /// again (noting whether it may have been applied meanwhile).
    fn after_refusal(&self, refused: Refused, maybe_applied: &mut bool) -> Option<ExecuteError> {
        match refused {
            Refused::NotLeader(_) | Refused::NoQuorum { .. } => None,
            Refused::Timeout { maybe_applied: m } => {
                *maybe_applied |= m;
                None
            }
            // Taken, then lost: safe to send again under the same stamp.
            Refused::Failed(_) | Refused::Shutdown => {
                *maybe_applied = true;
                None
            }
            Refused::Expired => Some(ExecuteError::Indeterminate(
                "the writer's session expired before the command's outcome was known".into(),
            )),
        }
    }

    fn execute_gave_up(&self, timeout: Duration, maybe_applied: bool) -> ExecuteError {
        let (reachable, voters) = self.inner.lease.reachability();
        if !maybe_applied && reachable < voters / 2 + 1 {
            ExecuteError::NoQuorum { reachable, voters }
        } else {
            ExecuteError::Timeout {
                after: timeout,
                maybe_applied,
            }
        }
    }

    fn query_gave_up(&self, timeout: Duration) -> QueryError {
        let (reachable, voters) = self.inner.lease.reachability();
        if reachable < voters / 2 + 1 {
            QueryError::NoQuorum { reachable, voters }
        } else {
            QueryError::Timeout(timeout)
        }
    }

    /// Runs `read` on this replica's state, after making sure it is as
    /// fresh as `consistency` asks.
    ///
    /// # Errors
    ///
    /// For a linearizable read: [`QueryError::NoQuorum`] if fewer than a
    /// majority of voters could be reached, [`QueryError::Timeout`] if no
    /// leader confirmed its leadership within the timeout.
    pub async fn query<R>(
        &self,
        consistency: Consistency,
        read: impl FnOnce(&SM) -> R,
    ) -> Result<R, QueryError> {
        let deadline = Instant::now() + self.inner.timeout;
        self.query_until(consistency, deadline, Redirect::No, read)
            .await
    }

    /// [`Group::query`] with a deadline; see [`Group::execute_stamped`]
    /// for `redirect`.
    pub(crate) async fn query_until<R>(
        &self,
        consistency: Consistency,
        deadline: Instant,
        redirect: Redirect,
        read: impl FnOnce(&SM) -> R,
    ) -> Result<R, QueryError> {
        if consistency == Consistency::Linearizable {
            let timeout = deadline.saturating_duration_since(Instant::now());
            let index = self.read_index(deadline, redirect).await?;
            let mut version = self.inner.shared.version.subscribe();
            match tokio::time::timeout_at(deadline.into(), version.wait_for(|v| v >= index)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(QueryError::Shutdown),
                Err(_) => return Err(QueryError::Timeout(timeout)),
            }
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

    async fn read_index(&self, deadline: Instant, redirect: Redirect) -> Result<u64, QueryError> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let mut pause = Pause::new();
        loop {
            let Some(remaining) = remaining(deadline) else {
                return Err(self.query_gave_up(timeout));
            };
            match self.inner.lease.standing() {
                Standing::Follows(Some(leader)) => {
                    let request = Request::ReadIndex {
                        timeout_ms: millis(remaining),
                    };
                    match self.forward(leader, request, deadline).await {
                        Forwarded::Reply(Reply::ReadIndex(Ok(index))) => return Ok(index),
                        Forwarded::LeaderChanged => {}
                        _ => pause.wait(deadline).await,
                    }
                }
                Standing::Lost { reachable, voters } if redirect == Redirect::Yes => {
                    return Err(QueryError::NoQuorum { reachable, voters });
                }
                Standing::Lost { .. } | Standing::Follows(None) => pause.wait(deadline).await,
                Standing::Leads => {
                    let confirmed = tokio::select! {
                        r = tokio::time::timeout(remaining, self.inner.raft.get_read_log_id()) => r,
                        // Cut off while confirming: answered as lost above.
                        () = self.inner.lease.lapsed() => continue,
                    };
                    match confirmed {
                        Ok(Ok((read, _))) => return Ok(read.map_or(0, |l| l.index)),
                        Ok(Err(RaftError::Fatal(_))) => return Err(QueryError::Shutdown),
                        // Not the leader after all, or no quorum confirmed
                        // it: try again.
                        Ok(Err(RaftError::APIError(_))) => pause.wait(deadline).await,
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// Sends `request` to `leader`, giving up at `deadline` or as soon as
    /// this replica learns of another leader (a paused or cut-off leader
    /// would otherwise hold the request for the whole fault).
    async fn forward(&self, leader: NodeId, request: Request, deadline: Instant) -> Forwarded {
        let mut metrics = self.inner.raft.metrics();
        let changed = metrics.wait_for(|m| m.current_leader != Some(leader));
        tokio::select! {
            reply = self.call(leader, request) => match reply {
                Ok(reply) => Forwarded::Reply(reply),
                Err(NetworkError::Unreachable(_)) => Forwarded::NotSent,
                Err(_) => Forwarded::Lost,
            },
            _ = changed => Forwarded::LeaderChanged,
            () = tokio::time::sleep_until(deadline.into()) => Forwarded::Lost,
        }
    }

    async fn call(&self, to: NodeId, request: Request) -> Result<Reply, NetworkError> {
        let bytes = encode(&Envelope {
            group: self.inner.id,
            request,
        });
        let reply = self.inner.network.call(self.inner.node, to, bytes).await?;
        statemesh_core::decode::from_bytes(&reply).map_err(|_| NetworkError::ReplyLost(to))
    }

    /// Adds this node to the group as a learner, asking the voters until the
    /// leader agrees.
    pub(crate) async fn join_as_learner(&self, voters: &[NodeId]) -> Result<(), ExecuteError> {
        let deadline = Instant::now() + self.inner.timeout;
        loop {
            for &v in voters {
                let mut target = v;
                for _ in 0..2 {
                    let Some(left) = remaining(deadline) else {
                        break;
                    };
                    // A voter that is paused must not hold up the others.
                    let ask = self.call(target, Request::AddLearner(self.inner.node));
                    match tokio::time::timeout(left.min(LEARNER_TRY), ask).await {
                        Ok(Ok(Reply::LearnerAdded(Ok(())))) => return Ok(()),
                        Ok(Ok(Reply::LearnerAdded(Err(Refused::NotLeader(Some(l)))))) => {
                            target = l;
                        }
                        _ => break,
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(self.execute_gave_up(self.inner.timeout, false));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn decode_reply<SM: StateMachine>(bytes: &[u8]) -> Result<SM::Response, ExecuteError> {
    match statemesh_core::decode::from_bytes::<Result<SM::Response, String>>(bytes) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ExecuteError::Decode(e)),
        Err(e) => Err(ExecuteError::Decode(e.to_string())),
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

/// Why a node that does not (or no longer) lead refuses a leader's work.
fn refusal(standing: Standing) -> Refused {
    match standing {
        Standing::Lost { reachable, voters } => Refused::NoQuorum { reachable, voters },
        Standing::Follows(leader) => Refused::NotLeader(leader),
        Standing::Leads => Refused::NotLeader(None),
    }
}

/// The part of a group that answers other nodes: it needs only the Raft
/// instance, so one type serves groups of every state machine.
pub(crate) struct Endpoint {
    pub(crate) name: String,
    pub(crate) signature: String,
    pub(crate) raft: Raft,
    pub(crate) proposer: Arc<Proposer>,
    pub(crate) lease: Arc<Lease>,
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
            Request::Execute {
                command,
                timeout_ms,
            } => Reply::Executed(match self.lease.standing() {
                Standing::Leads => {
                    let wait = Duration::from_millis(timeout_ms);
                    tokio::time::timeout(wait, self.proposer.propose(command))
                        .await
                        .unwrap_or(Err(Refused::Timeout {
                            maybe_applied: true,
                        }))
                }
                other => Err(refusal(other)),
            }),
            Request::ReadIndex { timeout_ms } => Reply::ReadIndex(match self.lease.standing() {
                Standing::Leads => {
                    let wait = Duration::from_millis(timeout_ms);
                    match tokio::time::timeout(wait, self.raft.get_read_log_id()).await {
                        Ok(Ok((read, _))) => Ok(read.map_or(0, |l| l.index)),
                        Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                            Err(Refused::NotLeader(f.leader_id))
                        }
                        Ok(Err(e)) => Err(Refused::Failed(e.to_string())),
                        Err(_) => Err(Refused::Timeout {
                            maybe_applied: false,
                        }),
                    }
                }
                other => Err(refusal(other)),
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
