//! openraft's network, carried over a [`Network`](crate::network::Network).

// openraft's error types are large, and they are what its traits return.
#![allow(clippy::result_large_err)]

use super::GroupId;
use super::lease::Contacts;
use super::rpc::{Envelope, Reply, Request, encode};
use crate::network::{Network, NetworkError};
use crate::types::{NodeId, TypeConfig};
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError as RaftNetworkError, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds a client per peer for one group on one node.
pub(crate) struct GroupNetwork {
    pub(crate) group: GroupId,
    pub(crate) from: NodeId,
    pub(crate) network: Arc<dyn Network>,
    /// Where answers are noted, for the leader's lease.
    pub(crate) contacts: Arc<Contacts>,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> PeerClient {
        PeerClient {
            group: self.group,
            from: self.from,
            target,
            network: Arc::clone(&self.network),
            contacts: Arc::clone(&self.contacts),
        }
    }
}

/// Sends one group's Raft messages to one peer.
pub(crate) struct PeerClient {
    group: GroupId,
    from: NodeId,
    target: NodeId,
    network: Arc<dyn Network>,
    contacts: Arc<Contacts>,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn send<E: std::error::Error>(
        &self,
        request: Request,
    ) -> Result<Reply, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        let bytes = encode(&Envelope {
            group: self.group,
            request,
        });
        match self.network.call(self.from, self.target, bytes).await {
            Ok(reply) => {
                self.contacts.answered(self.target);
                statemesh_core::decode::from_bytes(&reply)
                    .map_err(|e| RPCError::Network(RaftNetworkError::new(&e)))
            }
            Err(e @ NetworkError::Unreachable(_)) => {
                Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(RPCError::Network(RaftNetworkError::new(&e))),
        }
    }

    fn unexpected<E: std::error::Error>(
        &self,
        reply: &Reply,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        let what = match reply {
            Reply::NoSuchGroup => {
                format!("node {} does not host group {}", self.target, self.group)
            }
            Reply::BadRequest(e) => {
                format!("node {} could not decode the request: {e}", self.target)
            }
            _ => format!("node {} sent a reply of the wrong kind", self.target),
        };
        let e = std::io::Error::other(what);
        RPCError::Unreachable(Unreachable::new(&e))
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let (sent, vote) = (Instant::now(), rpc.vote);
        match self.send(Request::AppendEntries(rpc)).await? {
            Reply::AppendEntries(r) => {
                // Anything but a higher vote accepts this leader's term.
                if vote.committed
                    && matches!(&r, Ok(a) if !matches!(a, AppendEntriesResponse::HigherVote(_)))
                {
                    self.contacts
                        .acknowledged(self.target, vote.leader_id.term, sent);
                }
                r.map_err(|e| self.remote(e))
            }
            other => Err(self.unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.send(Request::InstallSnapshot(rpc)).await? {
            Reply::InstallSnapshot(r) => r.map_err(|e| self.remote(e)),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let (sent, term) = (Instant::now(), rpc.vote.leader_id.term);
        match self.send(Request::Vote(rpc)).await? {
            Reply::Vote(r) => {
                // A granted vote starts the new leader's lease.
                if matches!(&r, Ok(v) if v.vote_granted) {
                    self.contacts.acknowledged(self.target, term, sent);
                }
                r.map_err(|e| self.remote(e))
            }
            other => Err(self.unexpected(&other)),
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // A peer that is down is retried every 100 ms, not openraft's
        // default 500 ms: groups are small and a retry is one message.
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}
