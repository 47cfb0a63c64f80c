//! Reaching other members: forwarding to the leader, asking voters to
//! add a learner, and the pacing every retry loop of a handle shares.

use super::handle::Group;
use super::rpc::{Envelope, Refused, Reply, Request, encode};
use crate::error::ExecuteError;
use crate::network::NetworkError;
use crate::types::NodeId;
use statemesh_core::StateMachine;
use std::time::{Duration, Instant};

/// How long one voter may take to answer a request to add a learner.
const LEARNER_TRY: Duration = Duration::from_secs(1);

/// How a request forwarded to the leader ended.
// One lives on the stack for the length of a match: boxing the reply would
// cost an allocation per forwarded request for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Forwarded {
    Reply(Reply),
    /// Not delivered.
    NotSent,
    /// Delivered, no answer (lost, or the deadline passed).
    Lost,
    /// This replica learned of another leader meanwhile.
    LeaderChanged,
}

/// Time left before `deadline`, if any.
pub(super) fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

/// The pause between tries: 5 ms, doubling to 100 ms, never past the
/// deadline.
pub(super) struct Pause(Duration);

impl Pause {
    pub(super) fn new() -> Self {
        Self(Duration::from_millis(5))
    }

    pub(super) async fn wait(&mut self, deadline: Instant) {
        tokio::time::sleep_until((Instant::now() + self.0).min(deadline).into()).await;
        self.0 = (self.0 * 2).min(Duration::from_millis(100));
    }
}

impl<SM: StateMachine> Group<SM> {
    /// Sends `request` to `leader`, giving up at `deadline` or as soon as
    /// this replica learns of another leader (a paused or cut-off leader
    /// would otherwise hold the request for the whole fault).
    pub(super) async fn forward(
        &self,
        leader: NodeId,
        request: Request,
        deadline: Instant,
    ) -> Forwarded {
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

    pub(super) async fn call(&self, to: NodeId, request: Request) -> Result<Reply, NetworkError> {
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
