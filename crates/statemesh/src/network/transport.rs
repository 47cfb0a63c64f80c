//! What a transport is: the `Network` that carries requests between nodes,
//! the `Handler` that answers them, and why a request got no reply.

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
