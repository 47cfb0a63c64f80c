//! [`Group`], the handle: what it holds and the reads that need no other
//! member. Writes, linearizable reads and forwarding live beside it, each
//! in its own module, as further `impl` blocks.

use super::lease::{Lease, Standing};
use super::proposer::Proposer;
use super::when::When;
use crate::network::Network;
use crate::types::{NodeId, Raft};
use statemesh_client::{GroupStatus, Role, Shared, Versions};
use statemesh_core::session::Sequencer;
use statemesh_core::{GroupId, StateMachine};
use std::sync::Arc;
use std::time::Duration;

/// A handle to a group hosted on this node. Cheap to clone.
pub struct Group<SM: StateMachine> {
    pub(super) inner: Arc<Inner<SM>>,
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

pub(super) struct Inner<SM> {
    pub(super) name: String,
    pub(super) id: GroupId,
    pub(super) node: NodeId,
    pub(super) raft: Raft,
    pub(super) proposer: Arc<Proposer>,
    pub(super) shared: Arc<Shared<SM>>,
    pub(super) network: Arc<dyn Network>,
    pub(super) lease: Arc<Lease>,
    /// This handle's writer session: its commands, retried, apply once.
    pub(super) sequencer: Sequencer,
    pub(super) timeout: Duration,
}

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

    /// Runs `read` on this replica's state now, without waiting (the
    /// same as [`Consistency::Local`](statemesh_client::Consistency::Local)).
    pub fn read_local<R>(&self, read: impl FnOnce(&SM) -> R) -> R {
        let sm = self
            .inner
            .shared
            .sm
            .read()
            .unwrap_or_else(|e| e.into_inner());
        read(&sm)
    }
}
