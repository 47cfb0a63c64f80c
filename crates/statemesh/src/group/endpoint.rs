//! The side of a group that answers other nodes: typed only by its Raft
//! instance, so the node routes to any group without knowing its state
//! machine.

use super::lease::{Lease, Standing};
use super::proposer::Proposer;
use super::rpc::{self, Refused, Reply, Request};
use crate::types::Raft;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use std::sync::Arc;
use std::time::Duration;

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
