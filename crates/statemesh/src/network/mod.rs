//! How nodes reach each other.
//!
//! A [`Network`] carries opaque request bytes from one node to another and
//! brings the reply back; the node at the far end hands them to the
//! [`Handler`] it registered with [`Network::serve`]. Raft messages,
//! forwarded commands and read-index requests of every group travel this
//! way, so a transport needs to know nothing about groups or types.
//!
//! Two transports implement it: [`MemoryNetwork`] (in-process, with fault
//! injection, for tests) and [`TcpNetwork`] (TCP, TLS by default, framed
//! and checksummed, many requests in flight on one connection per peer;
//! the protocol is described in `PROTOCOL.md`). Peers prove they belong
//! to the cluster with its secret, clients with a token ([`auth`]).

pub mod auth;
mod certs;
mod memory;
mod reachability;
mod tcp;

pub use auth::{Access, AuthError, Authenticator, Claims, EmptyKey, Grant, Secret};
pub use certs::DevCertificates;
pub(crate) use certs::write_new;
pub use memory::MemoryNetwork;
pub use statemesh_client::network::{
    ConnectionError, FrameError, Limits, PROTOCOL_VERSION, Pushes, Security, Tls, TlsError,
    TlsFiles,
};
pub(crate) use statemesh_client::network::{connection, frame, handshake, push};
pub use tcp::{ClientHandler, TcpNetwork, TcpOptions};

use crate::types::NodeId;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Answers the requests that reach one node.
pub trait Handler: Send + Sync + 'static {
    /// Answers `request`, sent by node `from`.
    fn handle(&self, from: NodeId, request: Vec<u8>) -> BoxFuture<Vec<u8>>;
}

/// Carries requests between nodes.
pub trait Network: Send + Sync + 'static {
    /// Delivers requests addressed to `node` to `handler` from now on,
    /// replacing any earlier handler of that node.
    fn serve(&self, node: NodeId, handler: Arc<dyn Handler>);

    /// Stops delivering requests to `node`.
    fn stop(&self, node: NodeId);

    /// Sends `request` from node `from` to node `to` and returns the reply.
    fn call(
        &self,
        from: NodeId,
        to: NodeId,
        request: Vec<u8>,
    ) -> BoxFuture<Result<Vec<u8>, NetworkError>>;
}

/// Why a request got no reply.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The request was not delivered.
    #[error("node {0} is unreachable")]
    Unreachable(NodeId),
    /// The request may have been delivered, but the reply was lost.
    #[error("the reply from node {0} was lost")]
    ReplyLost(NodeId),
}
